//! The public trace formats through `kvsim run` (issue 16, item 4): Azure,
//! BurstGPT, Mooncake and ShareGPT fixtures of `tests/data/traces/`, their
//! window, speedup and sample keys, the Mooncake hash ids driving prefix
//! caching (checked against a hand computation), and bad inputs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn kvsim() -> Command {
    Command::cargo_bin("kvsim").unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/traces")
        .join(name)
}

/// A scenario on Llama-3.1-8B and one H100 (room for ~470k tokens of KV,
/// far more than any fixture holds) with `traffic` and `extra` TOML.
fn scenario(dir: &Path, traffic: &str, extra: &str) -> PathBuf {
    let path = dir.join("s.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"traces\"\nseed = 3\n{extra}\n[model]\npreset = \"llama-3.1-8b\"\n\
             [hardware]\ngpu = \"h100-sxm\"\n[traffic]\n{traffic}\n"
        ),
    )
    .unwrap();
    path
}

/// Runs `scenario` with `--set`s; the summary and requests.csv rows.
fn run(dir: &Path, scenario: &Path, sets: &[&str]) -> (serde_json::Value, Vec<Vec<String>>) {
    let out = dir.join("o");
    let mut cmd = kvsim();
    cmd.args(["run", scenario.to_str().unwrap(), "--json", "--out"])
        .arg(&out);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let res = cmd.output().unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let summary = serde_json::from_slice(&res.stdout).unwrap();
    let csv = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    let rows = csv
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (summary, rows)
}

/// The column `name` of requests.csv rows (the header first).
fn column(rows: &[Vec<String>], name: &str) -> Vec<f64> {
    let i = rows[0].iter().position(|h| h == name).unwrap();
    rows[1..].iter().map(|r| r[i].parse().unwrap()).collect()
}

fn requests(summary: &serde_json::Value) -> u64 {
    summary["requests"].as_u64().unwrap()
}

fn arrival(path: &Path, format: &str, extra: &str) -> String {
    format!(
        "arrival = {{ kind = \"trace\", format = \"{format}\", path = {:?}{extra} }}",
        path.to_str().unwrap()
    )
}

#[test]
fn azure_and_burstgpt_replay_every_row_and_the_window_speedup_and_sample() {
    let dir = tempfile::tempdir().unwrap();
    let az = scenario(
        dir.path(),
        &arrival(&fixture("azure_conv.csv"), "azure", ""),
        "",
    );
    let (s, rows) = run(dir.path(), &az, &[]);
    assert_eq!(requests(&s), 40);
    // One second apart from the first row's TIMESTAMP.
    let at = column(&rows, "arrival");
    assert!(
        at.iter()
            .enumerate()
            .all(|(i, a)| (a - i as f64).abs() < 1e-6)
    );
    // Rows at [10, 30) s, from 0 at twice the speed.
    let sets = [
        "traffic.arrival.start_s=10",
        "traffic.arrival.duration_s=20",
        "traffic.arrival.speedup=2",
    ];
    let (s, rows) = run(dir.path(), &az, &sets);
    assert_eq!(requests(&s), 20);
    let at = column(&rows, "arrival");
    assert!((at[19] - 9.5).abs() < 1e-6, "{at:?}");
    // Half of them, by the seed; the same seed keeps the same ones.
    let half = [&sets[..], &["traffic.arrival.sample=0.5"]].concat();
    let (a, _) = run(dir.path(), &az, &half);
    let (b, _) = run(dir.path(), &az, &half);
    assert_eq!(requests(&a), requests(&b));
    assert!((3..=17).contains(&requests(&a)), "{}", requests(&a));

    let burst = scenario(
        dir.path(),
        &arrival(
            &fixture("burstgpt.csv"),
            "burstgpt",
            ", zero_tokens = \"skip\"",
        ),
        "",
    );
    let (s, _) = run(dir.path(), &burst, &[]);
    assert_eq!(requests(&s), 37, "three failed rows skipped");
    let (s, _) = run(dir.path(), &burst, &["traffic.arrival.model=GPT-4"]);
    assert_eq!(requests(&s), 9);
}

/// One Mooncake request: prompt tokens and hash ids.
struct Row {
    prompt: u64,
    ids: Vec<u64>,
}

fn mooncake_rows(path: &Path) -> Vec<Row> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Row {
                prompt: v["input_length"].as_u64().unwrap(),
                ids: v["hash_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap())
                    .collect(),
            }
        })
        .collect()
}

/// The prefix hit rate of replaying `rows` in order into an infinite cache
/// of `bs`-token blocks, from the hash ids alone, by the engine's rule:
///
/// - cache block `j` of a request holds tokens `[j bs, (j + 1) bs)`, inside
///   trace block `k = j bs / t`; its content is named by the request's ids
///   through `k` (prefix-chained) and its place `(j bs mod t) / bs` in it;
/// - the ids cover `covered = min(prompt, ids * t)` tokens; a request makes
///   the full cache blocks within them, `j < covered / bs`, available to
///   later requests;
/// - a request is served its leading blocks that an earlier request made
///   available, stopping at the first that none did, and never its last
///   prompt token (vLLM computes at least one): `j < min(covered, prompt -
///   1) / bs`;
/// - hit rate = blocks served * bs, over all prompt tokens.
fn hand_hit_rate(rows: &[Row], bs: u64, t: u64) -> (u64, f64) {
    let mut seen: HashSet<(Vec<u64>, u64)> = HashSet::new();
    let name = |r: &Row, j: u64| (r.ids[..=(j * bs / t) as usize].to_vec(), (j * bs % t) / bs);
    let (mut hit, mut total) = (0u64, 0u64);
    for r in rows {
        let covered = r.prompt.min(r.ids.len() as u64 * t);
        let most = covered.min(r.prompt - 1) / bs;
        let served = (0..most)
            .take_while(|&j| seen.contains(&name(r, j)))
            .count() as u64;
        hit += served * bs;
        total += r.prompt;
        for j in 0..covered / bs {
            seen.insert(name(r, j));
        }
    }
    (hit, hit as f64 / total as f64)
}

#[test]
fn mooncake_hash_ids_drive_prefix_caching_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let trace = fixture("mooncake.jsonl");
    let rows = mooncake_rows(&trace);
    let sc = scenario(
        dir.path(),
        &arrival(&trace, "mooncake", ""),
        "[cache]\npolicy = \"paged\"\nprefix_caching = true",
    );
    for bs in [16u64, 64, 512] {
        let (s, _) = run(dir.path(), &sc, &[&format!("cache.block_size={bs}")]);
        assert_eq!(requests(&s), 40);
        let (hit, rate) = hand_hit_rate(&rows, bs, 512);
        assert!(hit > 0, "the fixture shares prefixes");
        assert_eq!(s["prefix_hit_tokens"].as_u64().unwrap(), hit, "block {bs}");
        assert_eq!(s["prefix_hit_rate"].as_f64().unwrap(), rate, "block {bs}");
    }
    // Smaller trace blocks: the same ids name 256 tokens each.
    let (s, _) = run(
        dir.path(),
        &sc,
        &[
            "traffic.arrival.trace_block_tokens=256",
            "cache.block_size=16",
        ],
    );
    let (hit, _) = hand_hit_rate(&rows, 16, 256);
    assert_eq!(s["prefix_hit_tokens"].as_u64().unwrap(), hit);
    // Without prefix caching nothing is served from cache.
    let (s, _) = run(dir.path(), &sc, &["cache.prefix_caching=false"]);
    assert_eq!(s["prefix_hit_tokens"].as_u64().unwrap(), 0);
    // A block size that does not divide the trace's blocks is refused.
    let out = kvsim()
        .args(["run", sc.to_str().unwrap(), "--set", "cache.block_size=48"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`cache.block_size`") && err.contains("`traffic.arrival.trace_block_tokens`"),
        "{err}"
    );
}

/// A ShareGPT conversation's exchanges by the documented rule, counted with
/// cl100k_base.
fn sharegpt_turns(path: &Path) -> Vec<Vec<(u64, u64)>> {
    let bpe = tiktoken_rs::cl100k_base().unwrap();
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for c in file.as_array().unwrap() {
        let mut turns: Vec<(u64, u64)> = Vec::new();
        let (mut prompt, mut asked) = (0u64, false);
        for m in c["conversations"].as_array().unwrap() {
            let n = bpe.encode_ordinary(m["value"].as_str().unwrap()).len() as u64;
            match (m["from"].as_str().unwrap(), asked) {
                ("human" | "system", _) => {
                    prompt += n;
                    asked = true;
                }
                ("gpt", true) => {
                    turns.push((prompt, n));
                    (prompt, asked) = (0, false);
                }
                ("gpt", false) if !turns.is_empty() => turns.last_mut().unwrap().1 += n,
                ("gpt", false) => prompt += n,
                (other, _) => panic!("{other}"),
            }
        }
        if !turns.is_empty() {
            out.push(turns);
        }
    }
    out
}

#[test]
fn sharegpt_conversations_replay_as_sessions_turn_by_turn() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("sharegpt.json");
    let convs = sharegpt_turns(&file);
    assert_eq!(convs.len(), 15);
    let total: usize = convs.iter().map(Vec::len).sum();
    // One user, so conversations run one after another, once each.
    let sc = scenario(
        dir.path(),
        &format!(
            "arrival = {{ kind = \"closed\", users = 1 }}\n\
             lengths = {{ kind = \"trace\", format = \"sharegpt\", path = {:?} }}\n\
             max_tokens = {{ kind = \"fixed\", value = 4096 }}",
            file.to_str().unwrap()
        ),
        &format!("requests = {total}"),
    );
    let (s, rows) = run(dir.path(), &sc, &[]);
    assert_eq!(requests(&s), total as u64);
    let (prompt, output) = (
        column(&rows, "prompt_tokens"),
        column(&rows, "output_tokens"),
    );
    let (session, turn) = (column(&rows, "session"), column(&rows, "turn"));
    let mut i = 0;
    for (c, turns) in convs.iter().enumerate() {
        let mut history = 0u64;
        for (k, &(message, reply)) in turns.iter().enumerate() {
            assert_eq!((session[i], turn[i]), (c as f64, (k + 1) as f64));
            assert_eq!(
                prompt[i],
                (history + message) as f64,
                "conversation {c} turn {k}"
            );
            assert_eq!(output[i], reply as f64, "conversation {c} turn {k}");
            history += message + reply;
            i += 1;
        }
    }
    // A Poisson arrival of conversations, some skipped by `sample`.
    let open = scenario(
        dir.path(),
        &format!(
            "arrival = {{ kind = \"poisson\", rate = 0.5 }}\n\
             lengths = {{ kind = \"trace\", format = \"sharegpt\", path = {:?}, sample = 0.5 }}\n\
             session = {{ think_s = 2 }}",
            file.to_str().unwrap()
        ),
        "requests = 30",
    );
    let (s, _) = run(dir.path(), &open, &[]);
    assert_eq!(requests(&s), 30);
}

#[test]
fn sharegpt_conversations_replay_turn_by_turn_on_a_cluster() {
    // Three users on two replicas: the cluster holds the sessions, and the
    // n-th session it starts replays conversation n of the file (in file
    // order, starting over at the end), whichever replica serves its turns.
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("sharegpt.json");
    let convs = sharegpt_turns(&file);
    let sc = scenario(
        dir.path(),
        &format!(
            "arrival = {{ kind = \"closed\", users = 3 }}\n\
             lengths = {{ kind = \"trace\", format = \"sharegpt\", path = {:?} }}\n\
             max_tokens = {{ kind = \"fixed\", value = 4096 }}",
            file.to_str().unwrap()
        ),
        "requests = 80",
    );
    for router in ["round-robin", "session-affinity", "kv-aware"] {
        let (s, rows) = run(
            dir.path(),
            &sc,
            &[
                "hardware.replicas=2",
                &format!("hardware.router=\"{router}\""),
            ],
        );
        assert_eq!(requests(&s), 80);
        let (prompt, output) = (
            column(&rows, "prompt_tokens"),
            column(&rows, "output_tokens"),
        );
        let (session, turn) = (column(&rows, "session"), column(&rows, "turn"));
        let mut history = std::collections::HashMap::new();
        let mut sessions = HashSet::new();
        for i in 0..prompt.len() {
            let n = session[i] as usize;
            sessions.insert(n);
            let k = turn[i] as usize - 1;
            let (message, reply) = convs[n % convs.len()][k];
            let h = history.entry(n).or_insert(0u64);
            assert_eq!(
                prompt[i],
                (*h + message) as f64,
                "{router}: session {n} turn {k}"
            );
            assert_eq!(output[i], reply as f64, "{router}: session {n} turn {k}");
            *h += message + reply;
        }
        assert!(sessions.len() > convs.len(), "{router}: {}", sessions.len());
    }
}

/// `kvsim run` on a scenario replaying `data` must exit 2 naming the file,
/// the line and `needle`.
fn refused(format: &str, data: &str, name: &str, line: u64, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, data).unwrap();
    let traffic = if format == "sharegpt" {
        format!(
            "arrival = {{ kind = \"poisson\", rate = 1 }}\n\
             lengths = {{ kind = \"trace\", format = \"sharegpt\", path = {:?} }}",
            file.to_str().unwrap()
        )
    } else {
        arrival(&file, format, "")
    };
    let sc = scenario(dir.path(), &traffic, "requests = 10");
    let out = kvsim()
        .args(["run", sc.to_str().unwrap(), "--out"])
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(name), "file not named: {err}");
    assert!(
        err.contains(&format!("line {line}")),
        "line {line} not named: {err}"
    );
    assert!(err.contains(needle), "`{needle}` not said: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_trace_files_are_refused_naming_file_and_line() {
    let az = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
    refused(
        "azure",
        &format!("{az}2023-11-16 18:15:46.6805900,10,5\n2023-11-16 18:15:4x.1,10,5\n"),
        "az.csv",
        3,
        "`TIMESTAMP` must be a date-time",
    );
    refused(
        "azure",
        &format!("{az}2023-11-16 18:15:46.5,10,5\n2023-11-16 18:15:45.5,10,5\n"),
        "az.csv",
        3,
        "nondecreasing",
    );
    refused(
        "burstgpt",
        "Timestamp,Model,Request tokens,Total tokens,Log Type\n1,ChatGPT,5,9,API log\n",
        "burst.csv",
        1,
        "no column `Response tokens`",
    );
    refused(
        "mooncake",
        "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 5, \"hash_ids\": [0]}\n\
         {\"timestamp\": 5, \"input_length\": 10, \"output_length\": 5, \"hash_ids\": [0,}\n",
        "moon.jsonl",
        2,
        "not a Mooncake trace line",
    );
    refused(
        "mooncake",
        "{\"timestamp\": 0, \"input_length\": 10, \"hash_ids\": [0]}\n",
        "moon.jsonl",
        1,
        "missing field `output_length`",
    );
    refused(
        "sharegpt",
        "[\n  {\"id\": \"a\", \"conversations\": [\n    {\"from\": \"human\", \"value\": \"hi\"},\n    {\"from\": \"gpt\" \"value\": \"hello\"}\n  ]}\n]\n",
        "share.json",
        4,
        "not a ShareGPT file",
    );
    refused(
        "sharegpt",
        "[{\"id\": \"a\", \"conversations\": [{\"from\": \"robot\", \"value\": \"hi\"}]}]\n",
        "share.json",
        1,
        "unknown speaker",
    );
}

#[test]
fn the_bundled_mooncake_replay_runs_and_hits_its_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let sc = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/mooncake-replay.toml");
    let (s, _) = run(dir.path(), &sc, &[]);
    // The README's "hit rate ~53 %" and the header's "about half", of 300
    // requests.
    assert_eq!(requests(&s), 300);
    let rate = s["prefix_hit_rate"].as_f64().unwrap();
    assert_eq!((rate * 100.0).round(), 53.0, "{rate}");
}

/// kvsim's column-name keys do not apply to a public format, which names its
/// own columns: changing one is refused under either table, naming the key.
#[test]
fn column_keys_are_for_the_kvsim_format_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("azure_conv.csv");
    for (traffic, key) in [
        (
            arrival(&file, "azure", ", arrival_column = \"TIMESTAMP\""),
            "traffic.arrival.arrival_column",
        ),
        (
            format!(
                "arrival = {{ kind = \"poisson\", rate = 1 }}\n\
                 lengths = {{ kind = \"trace\", format = \"azure\", path = {:?}, \
                 output_column = \"GeneratedTokens\" }}",
                file.to_str().unwrap()
            ),
            "traffic.lengths.output_column",
        ),
    ] {
        let sc = scenario(dir.path(), &traffic, "requests = 10");
        let out = kvsim()
            .args(["run", sc.to_str().unwrap(), "--out"])
            .arg(dir.path().join("o"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(key) && err.contains("is for `format = \"kvsim\"` only"),
            "{err}"
        );
    }
}
