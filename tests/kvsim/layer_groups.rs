//! Models of several layer groups (`[[model.groups]]`): sliding, chunked and
//! recurrent layers next to full ones. What a run holds equals the KV
//! arithmetic byte for byte, requests are conserved under every placement,
//! and a group that does not make sense is refused with its key.

use std::path::Path;

use kvsim::cache::paged_held_bytes;
use kvsim::engine::simulate;
use kvsim::metrics::Outcome;
use kvsim::model::Span;
use kvsim::scenario::Scenario;

use crate::common::ten_ms;

/// A Llama-3.1-8B-shaped model on an H100 whose 32 layers are `groups`.
fn text(groups: &str, policy: &str, traffic: &str) -> String {
    format!(
        r#"
name = "groups"
requests = 1
[model]
preset = "llama-3.1-8b"
{groups}
[hardware]
gpu = "h100-sxm"
[cache]
policy = "{policy}"
{traffic}
"#
    )
}

/// One request of a 20,000-token prompt and 2 output tokens: the last step
/// holds 20,001 tokens' KV.
const ONE_LONG: &str = r#"
[traffic]
arrival = { kind = "closed", users = 1, think_s = 0.0 }
prompt = { kind = "fixed", value = 20000 }
output = { kind = "fixed", value = 2 }
"#;

/// Many short and long requests competing for a small budget.
const BUSY: &str = r#"
[traffic]
arrival = { kind = "closed", users = 48, think_s = 0.0 }
prompt = { kind = "uniform", min = 10, max = 3000 }
output = { kind = "uniform", min = 1, max = 600 }
"#;

fn load(text: &str) -> Result<Scenario, String> {
    Scenario::from_toml(text, Path::new("groups.toml"), &[]).map_err(|e| e.to_string())
}

const SLIDING: &str = r#"
[[model.groups]]
layers = 8
attention = "full"
[[model.groups]]
layers = 24
attention = "sliding"
window = 1024
"#;

const CHUNKED: &str = r#"
[[model.groups]]
layers = 24
attention = "chunked"
chunk = 8192
[[model.groups]]
layers = 8
attention = "full"
"#;

const RECURRENT: &str = r#"
[[model.groups]]
layers = 24
attention = "recurrent"
state_bytes = 1179648
[[model.groups]]
layers = 8
attention = "full"
"#;

/// Per layer, Llama-3.1-8B keeps 2 x 8 heads x 128 x 2 B = 4,096 B per token.
const LAYER_BPT: u64 = 4096;

#[test]
fn a_run_holds_what_the_arithmetic_says_for_every_kind() {
    // (groups, bytes a 20,001-token sequence keeps, by hand)
    let cases = [
        // 8 full layers keep 20,001 tokens, 24 sliding ones 1,024.
        (SLIDING, LAYER_BPT * (8 * 20_001 + 24 * 1024)),
        // 24 chunked layers keep the current chunk: 20,001 = 2 x 8,192 +
        // 3,617 tokens; 8 full layers all 20,001.
        (CHUNKED, LAYER_BPT * (24 * 3617 + 8 * 20_001)),
        // 24 recurrent layers hold 1,179,648 B each whatever the length.
        (RECURRENT, 24 * 1_179_648 + LAYER_BPT * 8 * 20_001),
    ];
    for (groups, kept) in cases {
        let s = load(&text(groups, "paged", ONE_LONG)).unwrap();
        assert_eq!(s.layout.kept_bytes(20_001), kept, "{groups}");
        let out = simulate(&s, s.seed, ten_ms()).unwrap();
        assert_eq!(out.records[0].outcome, Some(Outcome::Ok));
        // At 20,001 tokens the run holds exactly the paged blocks of what
        // each group keeps.
        let want = paged_held_bytes(&s.layout, 16, 20_001).unwrap();
        assert!(
            out.timeline.iter().any(|t| t.kv_used_bytes() == want),
            "{groups}: no step held {want}"
        );
        // Within a block per group of the exact bytes.
        assert!(want >= kept && want - kept <= 2 * 16 * 32 * LAYER_BPT);
    }
}

#[test]
fn the_groups_are_what_the_scenario_says() {
    let s = load(&text(CHUNKED, "paged", ONE_LONG)).unwrap();
    let g = s.layout.groups();
    assert_eq!(g.len(), 2);
    assert_eq!((g[0].layers, g[0].span), (24, Span::Chunk(8192)));
    assert_eq!((g[1].layers, g[1].span), (8, Span::All));
    assert_eq!(s.layout.bytes_per_token(), 32 * LAYER_BPT);
    // Attention FLOPs per pair: 4 x 32 query heads x 128.
    assert_eq!(g[0].flops_per_pair, 4 * 32 * 128);
    let s = load(&text(RECURRENT, "paged", ONE_LONG)).unwrap();
    assert_eq!(s.layout.bytes_per_token(), 8 * LAYER_BPT);
    assert_eq!(s.layout.state_bytes(), 24 * 1_179_648);
    assert_eq!(s.layout.groups()[0].flops_per_pair, 0);
}

/// Every request ends exactly once and runs are deterministic, under paged
/// and contiguous placement, for each kind of group.
#[test]
fn requests_are_conserved_under_every_placement() {
    for groups in [SLIDING, CHUNKED, RECURRENT] {
        for policy in ["paged", "contiguous"] {
            let body = text(groups, policy, BUSY).replace("requests = 1", "requests = 400");
            let mut s = load(&body).unwrap();
            // A budget of ~40,000 tokens of the full layers: a wall to hit.
            s.budget.kv_bytes = 40_000 * s.layout.bytes_per_token();
            let a = simulate(&s, s.seed, ten_ms()).unwrap();
            let b = simulate(&s, s.seed, ten_ms()).unwrap();
            assert_eq!(a.records.len(), 400, "{policy} {groups}");
            assert!(
                a.records.iter().all(|r| r.outcome.is_some()),
                "{policy} {groups}: every request ends"
            );
            let ok = a
                .records
                .iter()
                .filter(|r| r.outcome == Some(Outcome::Ok))
                .count();
            assert!(ok > 0, "{policy} {groups}");
            assert_eq!(a.summary, b.summary, "{policy} {groups}: deterministic");
            let peak = a.timeline.iter().map(|t| t.kv_used_bytes()).max().unwrap();
            assert!(peak <= s.budget.kv_bytes, "{policy} {groups}");
        }
    }
}

#[test]
fn groups_that_make_no_sense_are_refused_with_their_key() {
    let cases = [
        (
            "[[model.groups]]\nlayers = 32\nattention = \"full\"\nwindow = 10\n",
            "model.groups[0].window",
            "does not apply",
        ),
        (
            "[[model.groups]]\nlayers = 32\nattention = \"sliding\"\n",
            "model.groups[0].window",
            "missing",
        ),
        (
            "[[model.groups]]\nlayers = 30\nattention = \"full\"\n",
            "model.groups",
            "30 layers",
        ),
        (
            "[[model.groups]]\nlayers = 32\nattention = \"recurrent\"\nstate_bytes = 0\n",
            "model.groups[0].state_bytes",
            "between 1",
        ),
        (
            "[[model.groups]]\nlayers = 32\nattention = \"full\"\nkv_heads = 5\n",
            "model.groups[0].kv_heads",
            "does not divide",
        ),
        (
            "sliding_window = { window = 10, layers = 2 }\n[[model.groups]]\nlayers = 32\nattention = \"full\"\n",
            "model.sliding_window",
            "not both",
        ),
        (
            "[[model.groups]]\nlayers = 32\nattention = \"none\"\n",
            "model.groups",
            "keeps something",
        ),
    ];
    for (groups, key, why) in cases {
        let e = load(&text(groups, "paged", ONE_LONG)).unwrap_err();
        assert!(e.contains(key) && e.contains(why), "{groups}: {e}");
    }
    // A chunk that is not whole blocks, prefix caching over recurrent
    // layers, and a sliding policy window shorter than a chunk.
    let chunk_100 = CHUNKED.replace("8192", "100");
    let e = load(&text(&chunk_100, "paged", ONE_LONG)).unwrap_err();
    assert!(e.contains("cache.block_size") && e.contains("chunk"), "{e}");
    let prefix = text(RECURRENT, "paged", ONE_LONG).replace(
        "policy = \"paged\"",
        "policy = \"paged\"\nprefix_caching = true",
    );
    let e = load(&prefix).unwrap_err();
    assert!(
        e.contains("cache.prefix_caching") && e.contains("recurrent"),
        "{e}"
    );
    let sliding = text(CHUNKED, "sliding", ONE_LONG).replace(
        "policy = \"sliding\"",
        "policy = \"sliding\"\nwindow = 4096",
    );
    let e = load(&sliding).unwrap_err();
    assert!(e.contains("cache.window") && e.contains("chunk"), "{e}");
}

/// The README's `[[model.groups]]` example is a valid model section: 24
/// chunked and 8 full layers of Llama-3.1-8B's shape.
#[test]
fn the_readme_example_of_groups_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains("[[model.groups]]"))
        .expect("the README shows [[model.groups]]");
    let text = format!(
        "name = \"readme\"\nrequests = 1\n{block}\n[hardware]\ngpu = \"h100-sxm\"\n{ONE_LONG}"
    );
    let s = load(&text).unwrap();
    let g = s.layout.groups();
    assert_eq!((g[0].layers, g[0].span), (24, Span::Chunk(8192)));
    assert_eq!((g[1].layers, g[1].span), (8, Span::All));
}

/// Runs `kvsim sweep` on a bundled scenario and returns its sweep.csv rows.
fn sweep_rows(scenario: &str) -> Vec<std::collections::HashMap<String, String>> {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("kvsim")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["sweep", scenario, "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = csv::Reader::from_path(dir.path().join("sweep.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|row| {
            let row = row.unwrap();
            headers
                .iter()
                .zip(row.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(row: &std::collections::HashMap<String, String>, key: &str) -> f64 {
    row[key].parse().unwrap()
}

/// scenarios/window-long-context.toml's header: 6 conversations with the
/// window, 1 without; over 3x the tokens per second at 8 users; p99 TTFT
/// past two minutes without the window at 8 users; the byte figures.
#[test]
fn the_window_scenario_shows_what_the_window_buys() {
    let rows = sweep_rows("scenarios/window-long-context.toml");
    assert_eq!(rows.len(), 10);
    let at = |global: &str, users: &str| {
        rows.iter()
            .find(|r| r["model.all_global"] == global && r["traffic.arrival.users"] == users)
            .unwrap()
    };
    for users in ["1", "2", "4", "8", "16"] {
        assert_eq!(num(at("false", users), "batch_ceiling"), 6.0);
        assert_eq!(num(at("true", users), "batch_ceiling"), 1.0);
        assert_eq!(num(at("true", users), "ok"), 120.0, "every request served");
    }
    let (win, all) = (at("false", "8"), at("true", "8"));
    assert!(num(win, "throughput_tok_s") > 3.0 * num(all, "throughput_tok_s"));
    assert!(num(all, "ttft_p99") > 120.0);
    // 18.6 GB of KV memory; 3.1 GB (window) and 16.6 GB (all global) per
    // 32k-token sequence, 2.7 GB of it in the global layers.
    assert_eq!((num(win, "kv_budget_bytes") / 1e8).round(), 186.0);
    let s = load(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/window-long-context.toml"
        ))
        .unwrap(),
    )
    .unwrap();
    let g = s.layout.groups();
    assert_eq!(
        (g[0].layers, g[1].layers, g[1].span),
        (10, 52, Span::Window(1024))
    );
    assert_eq!(((g[0].bytes_per_token * 32768) as f64 / 1e8).round(), 27.0);
    assert_eq!(((g[1].bytes_per_token * 1024) as f64 / 1e8).round(), 4.0);
    assert_eq!((s.layout.kept_bytes(32768) as f64 / 1e8).round(), 31.0);
    assert_eq!(
        ((s.layout.bytes_per_token() * 32768) as f64 / 1e8).round(),
        166.0
    );
    assert_eq!(s.model.weight_bytes() / 1_000_000_000, 54);
}

/// scenarios/hybrid-capacity.toml's header: the dense model's ceiling is 11
/// sequences and its users queue from 16 on; the hybrid's is 129 and all 128
/// users run at once; the per-token and per-sequence figures.
#[test]
fn the_hybrid_scenario_shows_its_capacity() {
    let rows = sweep_rows("scenarios/hybrid-capacity.toml");
    let at = |model: &str, users: &str| {
        rows.iter()
            .find(|r| r["model.preset"] == model && r["traffic.arrival.users"] == users)
            .unwrap()
    };
    for users in ["8", "16", "32", "64", "128"] {
        assert_eq!(num(at("qwen2.5-72b", users), "batch_ceiling"), 11.0);
        assert_eq!(num(at("qwen3-next-80b-a3b", users), "batch_ceiling"), 129.0);
    }
    assert_eq!(num(at("qwen2.5-72b", "16"), "batch_peak"), 11.0);
    assert_eq!(num(at("qwen3-next-80b-a3b", "128"), "batch_peak"), 128.0);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/hybrid-capacity.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let hybrid = load(&text).unwrap();
    let dense = load(&text.replace(
        "preset = \"qwen3-next-80b-a3b\"",
        "preset = \"qwen2.5-72b\"",
    ))
    .unwrap();
    assert_eq!(dense.layout.bytes_per_token(), 327_680);
    assert_eq!(hybrid.layout.bytes_per_token(), 24_576);
    // 1.05 MiB per layer, 40 MB per sequence; 10.7 GB and 0.8 GB at 32k.
    let per_layer = hybrid.layout.state_bytes() / 36;
    assert_eq!((per_layer as f64 / 1048576.0 * 100.0).round(), 105.0);
    assert_eq!((hybrid.layout.state_bytes() as f64 / 1e6).round(), 40.0);
    assert_eq!((dense.layout.kept_bytes(32768) as f64 / 1e8).round(), 107.0);
    assert_eq!(((24_576u64 * 32768) as f64 / 1e8).round(), 8.0);
}
