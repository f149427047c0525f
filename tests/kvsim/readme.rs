//! The README's numbers about the two bundled runs it shows are what kvsim
//! computes: each claim is found in the README, then checked against a run.

use std::path::Path;

use assert_cmd::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

fn says(text: &str) {
    let flat = readme().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains(text), "the README no longer says: {text}");
}

/// The README's Speed section keeps where kvsim's speed stands; how it got
/// there, round by round, is in this file, whose numbers are claims too.
const SPEED_HISTORY: &str = "docs/speed-history.md";

/// [`says`], in the README or in [`SPEED_HISTORY`].
fn documents(text: &str) {
    let flat = |doc: String| doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let history =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEED_HISTORY))
            .expect(SPEED_HISTORY);
    assert!(
        flat(readme()).contains(text) || flat(history).contains(text),
        "neither the README nor {SPEED_HISTORY} says: {text}"
    );
}

fn run(args: &[&str]) {
    Command::cargo_bin("kvsim")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .assert()
        .success();
}

/// Runs `kvsim run scenarios/quickstart.toml` with `sets` and returns its
/// `summary.json`.
fn quickstart(sets: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let mut args = vec!["run", "scenarios/quickstart.toml", "--out", out];
    for set in sets {
        args.extend(["--set", set]);
    }
    run(&args);
    serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
        .unwrap()
}

#[test]
fn quickstart_claims() {
    let summary = quickstart(&[]);
    let m = &summary["metrics"];
    says("Llama-3.1-8B on one H100 gets a 53.27 GiB KV budget");
    let kv = summary["budget"]["kv_bytes"].as_f64().unwrap() / (1u64 << 30) as f64;
    assert_eq!(format!("{kv:.2}"), "53.27");
    says("batch peaks at 136 sequences, far below the 909 that fit, so nothing is preempted");
    assert_eq!(m["batch_peak"], 136);
    assert_eq!(m["batch_ceiling"], 909);
    assert_eq!(m["preemptions"], 0);
    says("TPOT stays near 11 ms");
    let tpot = m["tpot_p50"].as_f64().unwrap() * 1e3;
    assert!((10.5..11.5).contains(&tpot), "{tpot}");
    says(
        "The `bound by` row says which limit kept the batch from growing, and for what share of the time: here the offered load.",
    );
    assert_eq!(summary["batch_limit"], "offered load");

    // At 60 requests/s max_num_seqs binds first.
    says(
        "Push the rate with `--set traffic.arrival.rate=60` and the batch runs into `max_num_seqs` (256) long before the KV memory: bound by max_num_seqs 65 % of the time, occupancy peaks at 35 %, nothing is preempted.",
    );
    let summary = quickstart(&["traffic.arrival.rate=60"]);
    let m = &summary["metrics"];
    assert_eq!(summary["batch_limit"], "max_num_seqs");
    assert_eq!(m["batch_peak"], 256);
    assert_eq!(
        format!("{:.0}", m["batch_bound_seqs"].as_f64().unwrap() * 100.0),
        "65"
    );
    assert_eq!(
        format!("{:.0}", m["kv_peak_frac"].as_f64().unwrap() * 100.0),
        "35"
    );
    assert_eq!(m["preemptions"], 0);

    // Without the cap, KV memory is the wall.
    says(
        "(`--set traffic.arrival.rate=100 --set scheduler.max_num_seqs=2048`) and KV memory is the wall: occupancy reaches 100 %, 257 sequences are preempted and TPOT p50 climbs from 11 ms to 72.5 ms.",
    );
    let summary = quickstart(&["traffic.arrival.rate=100", "scheduler.max_num_seqs=2048"]);
    let m = &summary["metrics"];
    assert_eq!(
        format!("{:.0}", m["kv_peak_frac"].as_f64().unwrap() * 100.0),
        "100"
    );
    assert_eq!(m["preemptions"], 257);
    assert!(m["batch_bound_kv"].as_f64().unwrap() > 0.1, "{m}");
    assert_eq!(
        format!("{:.1}", m["tpot_p50"].as_f64().unwrap() * 1e3),
        "72.5"
    );
}

/// The rows of a `sweep.csv` as maps from column to cell.
fn sweep_rows(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut sweep = csv::Reader::from_path(dir.join("sweep.csv")).unwrap();
    let headers = sweep.headers().unwrap().clone();
    sweep
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The main sweep, with `sets`: its rows.
fn policies(sets: &[&str]) -> Vec<std::collections::HashMap<String, String>> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let mut args = vec![
        "sweep",
        "scenarios/policies.toml",
        "--out",
        out,
        "--no-plots",
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    run(&args);
    sweep_rows(dir.path())
}

/// Column `metric` of the main sweep's row for `users` and `policy`.
fn at(
    rows: &[std::collections::HashMap<String, String>],
    users: u32,
    policy: &str,
    metric: &str,
) -> f64 {
    let row = rows
        .iter()
        .find(|r| r["traffic.arrival.users"] == users.to_string() && r["cache.policy"] == policy)
        .unwrap_or_else(|| panic!("no row for {users} users, {policy}"));
    row[metric].parse().unwrap_or(f64::NAN)
}

/// The headline: where each policy hits the memory wall on a server that
/// crashes on OOM (issue 15: zero OOM at the lowest load, non-zero for at
/// least three policies at the highest).
#[test]
fn policies_wall_claims() {
    let rows = policies(&[]);
    let users: Vec<u32> = {
        let mut u: Vec<u32> = rows
            .iter()
            .map(|r| r["traffic.arrival.users"].parse().unwrap())
            .collect();
        u.sort();
        u.dedup();
        u
    };
    let (lowest, highest) = (users[0], *users.last().unwrap());
    says("chat users from 8 to 128");
    assert_eq!((lowest, highest), (8, 128));
    says("Llama-2-13B on one A100-40GB (~8.4 GiB of KV)");
    let kv = at(&rows, 8, "paged", "kv_budget_bytes") / (1u64 << 30) as f64;
    assert_eq!(format!("{kv:.1}"), "8.4");
    let policies = ["contiguous", "paged", "sliding", "quantized"];
    for p in policies {
        assert_eq!(
            at(&rows, lowest, p, "oom_rate"),
            0.0,
            "{p} at {lowest} users"
        );
    }
    let failing = policies
        .iter()
        .filter(|p| at(&rows, highest, p, "oom_rate") > 0.0)
        .count();
    assert!(failing >= 3, "{failing} policies fail at {highest} users");

    says(
        "Paged allocation fits ~21 sequences at full length; from 24 users its batch passes that line and the OOM rate leaves 0 (35 % of requests fail at 24 users, every one from 64 on).",
    );
    assert_eq!(at(&rows, 24, "paged", "batch_ceiling"), 21.0);
    assert_eq!(at(&rows, 16, "paged", "oom_rate"), 0.0);
    assert!(at(&rows, 24, "paged", "batch_peak") > 21.0);
    assert_eq!(
        format!("{:.0}", at(&rows, 24, "paged", "oom_rate") * 100.0),
        "35"
    );
    for u in [64, 96, 128] {
        assert_eq!(at(&rows, u, "paged", "oom_rate"), 1.0, "paged at {u} users");
    }
    says(
        "A sliding window of 256 tokens and an fp8 KV cache each roughly double what fits (40 and 44 sequences) and move the wall to 48 users.",
    );
    assert_eq!(at(&rows, 48, "sliding", "batch_ceiling"), 40.0);
    assert_eq!(at(&rows, 48, "quantized", "batch_ceiling"), 44.0);
    for p in ["sliding", "quantized"] {
        assert_eq!(at(&rows, 32, p, "oom_rate"), 0.0, "{p} at 32 users");
        assert!(at(&rows, 48, p, "oom_rate") > 0.0, "{p} at 48 users");
    }
    says(
        "Contiguous reservations never run out, because every sequence reserves its maximum up front, but they fit only 9, so requests queue instead: TTFT p99 is 3.1 s at 8 users and 151 s at 128",
    );
    for u in &users {
        assert_eq!(at(&rows, *u, "contiguous", "oom_rate"), 0.0);
    }
    assert_eq!(at(&rows, 8, "contiguous", "batch_ceiling"), 9.0);
    assert_eq!(
        format!("{:.1}", at(&rows, 8, "contiguous", "ttft_p99")),
        "3.1"
    );
    assert_eq!(
        format!("{:.0}", at(&rows, 128, "contiguous", "ttft_p99")),
        "151"
    );
    says(
        "TPOT p99 climbs with the batch, from 25 ms to 56 ms for fp8 at 96 users, past the 50 ms objective.",
    );
    assert_eq!(
        format!("{:.0}", at(&rows, 8, "quantized", "tpot_p99") * 1e3),
        "25"
    );
    assert_eq!(
        format!("{:.0}", at(&rows, 96, "quantized", "tpot_p99") * 1e3),
        "56"
    );
}

/// The memory breakdown of the main sweep on vLLM's preempting server.
#[test]
fn policies_waste_claims() {
    says(
        "On vLLM's server, which preempts instead of crashing (`--set scheduler.on_oom=preempt-recompute`), no request fails",
    );
    let rows = policies(&["scheduler.on_oom=preempt-recompute"]);
    assert!(
        rows.iter().all(|r| r["oom_rate"] == "0"),
        "a request failed"
    );
    says("leave only 31 % of the KV budget holding token states");
    assert_eq!(
        format!("{:.0}", at(&rows, 128, "contiguous", "waste_used") * 100.0),
        "31"
    );
    says("Paged allocation stores tokens in 93 % of the same memory");
    assert_eq!(
        format!("{:.0}", at(&rows, 128, "paged", "waste_used") * 100.0),
        "93"
    );
}

#[test]
fn shard_fingerprint_example() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    run(&[
        "sweep",
        "scenarios/policies.toml",
        "--shard",
        "1/3",
        "--out",
        out,
    ]);
    let text = std::fs::read_to_string(dir.path().join("sweep.shard-1-of-3.csv")).unwrap();
    let first = text.lines().next().unwrap();
    // The README shows the line whole, in a code block of its own.
    assert!(
        readme().lines().any(|l| l == first),
        "the README does not show shard 1/3's fingerprint: {first}"
    );
}

// ---------------------------------------------------------------------------
// Every command the README shows runs.
//
// `shown_commands` finds each command in the README's code blocks: a line
// after a `$ ` prompt in any block, every line of a shell block (`sh`) that is
// not a comment, a `kvsim <subcommand>` inside a comment of a shell block or a
// YAML manifest, and a YAML `command: ["kvsim", ...]`; a line ending in `\`
// continues on the next. (The TOML block's comments name commands shown
// elsewhere; they are not commands.) `--shard auto` runs as the job array
// would run it: once per task of the block's `#SBATCH --array=A-B`, or, as
// `auto/N`, once per index of an N-pod Indexed Job, each with the variables
// Slurm or Kubernetes set.
// `readme_commands_run` runs each kvsim command with the built binary in a
// sandbox: whatever it writes (its `--out`, or its default `output/<name>/`)
// goes under a temporary directory, the inputs it would change (a baseline
// under `check --update`) are copied there first, and committed files are
// compared before and after. A command that cannot be mapped fails the test,
// naming it, unless `NOT_RUN` lists it with the reason.

/// The subcommands of kvsim.
const SUBCOMMANDS: &[&str] = &[
    "report",
    "kv",
    "catalog",
    "run",
    "sweep",
    "merge",
    "check",
    "plot",
    "plan",
    "validate",
    "calibrate",
];

/// A file and a text it must hold.
type Needle = (&'static str, &'static str);

/// Commands the README shows that this test does not run, each with why and
/// what is checked instead: `(command, why, [(file, text it must hold)])`.
/// Keep it minimal: every kvsim command runs.
const NOT_RUN: &[(&str, &str, &[Needle])] = &[
    (
        // This test is part of that suite.
        "cargo test --release",
        "the test suite that runs this very test",
        &[("tests/kvsim/main.rs", "mod readme;")],
    ),
    (
        "cargo bench --bench engine",
        "timings (minutes, and meaningless on a shared CI machine): the Speed table's figures",
        &[
            ("Cargo.toml", "name = \"engine\""),
            ("benches/engine.rs", "fn saturated_chat("),
            ("benches/engine.rs", "fn saturated_chat_reference("),
            ("benches/engine.rs", "fn sweep_64("),
        ],
    ),
    (
        "cargo bench --bench engine -- saturated_chat",
        "a timing (the Speed table's requests/s)",
        &[("benches/engine.rs", "fn saturated_chat(")],
    ),
    (
        "cargo bench --bench fleet",
        "100 million requests (a minute or more), for a timing and a peak RSS",
        &[
            ("Cargo.toml", "name = \"fleet\""),
            ("benches/fleet.rs", "KVSIM_FLEET_REQUESTS"),
            ("benches/fleet.rs", "peak_rss_bytes()"),
        ],
    ),
    (
        "cargo bench --bench output",
        "timings of a million-request run and of the writers (a minute, meaningless on a \
         shared CI machine): the Speed section's whole-process and writer figures",
        &[
            ("Cargo.toml", "name = \"output\""),
            ("benches/output.rs", "fn whole_process("),
            ("benches/output.rs", "fn writer<"),
        ],
    ),
    (
        "cargo build --release --example scale",
        "a second release build of the whole crate inside the test run",
        &[("examples/scale.rs", "fn main()")],
    ),
    (
        "/usr/bin/time -v target/release/examples/scale 10000000",
        "ten million requests: a minute of wall time and 1.34 GiB, for a timing",
        &[("examples/scale.rs", "args.next()")],
    ),
    (
        "/usr/bin/time -v target/release/examples/scale 1000000 reference",
        "the straightforward engine on a million requests: seconds per run, for a timing",
        &[("examples/scale.rs", "Some(\"reference\")")],
    ),
    (
        "pip install ./python",
        "builds the Python package (a second release build, and packages from PyPI); \
         ci/python.sh runs this very command and the package's tests",
        &[
            (
                "ci/python.sh",
                "-m pip install --quiet --disable-pip-version-check ./python",
            ),
            ("python/pyproject.toml", "build-backend = \"maturin\""),
        ],
    ),
    (
        "PROPTEST_CASES=100000 KVSIM_FUZZ_STATS=1 KVSIM_FUZZ_LOG=/tmp/last.toml cargo test --release fuzz -- --nocapture",
        "a fuzzing campaign of hours (CI runs the same tests with a few dozen cases)",
        &[
            ("tests/kvsim/fuzz.rs", "\"PROPTEST_CASES\""),
            ("tests/kvsim/fuzz.rs", "\"KVSIM_FUZZ_STATS\""),
            ("tests/kvsim/fuzz.rs", "\"KVSIM_FUZZ_LOG\""),
        ],
    ),
];

/// Files a README command names that are the reader's own: the bundled file
/// that stands in for each (a command naming one runs once per stand-in).
const STAND_INS: &[(&str, &[&str])] = &[
    // The reader's big sweep, in the Slurm script and the Kubernetes Job.
    ("big.toml", &["scenarios/policies.toml"]),
    ("/scenarios/big.toml", &["scenarios/policies.toml"]),
    // The reader's measurements: the bundled examples, one of each format.
    (
        "measured.csv",
        &[
            "examples/calibration/steps.csv",
            "examples/calibration/requests.csv",
        ],
    ),
];

/// A command shown in one of the README's code blocks.
#[derive(Debug, Clone)]
struct Shown {
    /// Its line in README.md (1-based).
    line: usize,
    /// The command, whitespace collapsed, without prompt or trailing comment.
    command: String,
    /// The output shown after a `$ ` command in the same block.
    output: Vec<String>,
    /// The task ids of a `#SBATCH --array=A-B` line earlier in its block.
    array: Option<(u32, u32)>,
}

/// `text` without a trailing ` # comment`.
fn without_comment(text: &str) -> &str {
    match text.find(" #") {
        Some(i) => text[..i].trim_end(),
        None => text,
    }
}

/// Every command shown in the README's code blocks (see above).
fn shown_commands() -> Vec<Shown> {
    let text = readme();
    let lines: Vec<&str> = text.lines().collect();
    let mut shown: Vec<Shown> = Vec::new();
    let mut lang: Option<String> = None;
    let mut prompt_output = false;
    let mut array = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(rest) = line.trim_start().strip_prefix("```") {
            lang = match lang {
                Some(_) => None,
                None => Some(rest.trim().to_string()),
            };
            prompt_output = false;
            array = None;
            i += 1;
            continue;
        }
        let Some(block) = lang.as_deref() else {
            i += 1;
            continue;
        };
        let start = i + 1;
        let mut full = line.trim().to_string();
        while full.ends_with('\\') && i + 1 < lines.len() {
            full.pop();
            i += 1;
            full = format!("{} {}", full.trim_end(), lines[i].trim());
        }
        i += 1;
        let shell = block == "sh";
        if let Some(ids) = full.strip_prefix("#SBATCH --array=") {
            let (a, b) = ids.split_once('-').expect("#SBATCH --array=A-B");
            array = Some((a.parse().unwrap(), b.parse().unwrap()));
        }
        let exec_form = (block == "yaml")
            .then(|| full.strip_prefix("command: "))
            .flatten()
            .and_then(|list| serde_json::from_str::<Vec<String>>(list).ok())
            .filter(|words| words.first().is_some_and(|w| w == "kvsim"));
        let command = if let Some(words) = exec_form {
            Some(words.join(" "))
        } else if let Some(c) = full.strip_prefix("$ ") {
            Some(without_comment(c).to_string())
        } else if shell && !full.is_empty() && !full.starts_with('#') {
            Some(without_comment(&full).to_string())
        } else if shell || block == "yaml" {
            SUBCOMMANDS.iter().find_map(|sub| {
                let at = full.find(&format!("kvsim {sub} "))?;
                let c = &full[at..];
                Some(without_comment(c.split('"').next().unwrap()).to_string())
            })
        } else {
            None
        };
        match command {
            Some(c) => {
                prompt_output = full.starts_with("$ ");
                shown.push(Shown {
                    line: start,
                    command: c.split_whitespace().collect::<Vec<_>>().join(" "),
                    output: Vec::new(),
                    array,
                });
            }
            None if prompt_output => shown.last_mut().unwrap().output.push(line.to_string()),
            None => {}
        }
    }
    shown
}

/// Splits a shell command line into words (single and double quotes).
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut any = false;
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), _) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            _ => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

/// The root of the repository.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The scenario's `name` (its default output directory under `output/`).
fn scenario_name(path: &str) -> String {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    table["name"].as_str().unwrap().to_string()
}

/// Where a path a README command writes (or reads from an earlier command)
/// lives in the sandbox: under `sandbox`, relative paths and absolute ones
/// alike (`results` and `/results` are the same shared directory).
fn in_sandbox(sandbox: &Path, path: &str) -> std::path::PathBuf {
    sandbox.join(path.trim_start_matches('/'))
}

/// The files in the sandbox matching `pattern` (one `*` in the file name).
fn glob(sandbox: &Path, pattern: &str) -> Vec<String> {
    let path = in_sandbox(sandbox, pattern);
    let dir = path.parent().unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let (head, tail) = name.split_once('*').unwrap();
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .filter(|n| n.len() >= head.len() + tail.len() && n.starts_with(head) && n.ends_with(tail))
        .map(|n| dir.join(n).to_str().unwrap().to_string())
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "nothing in the sandbox matches {pattern}"
    );
    found
}

/// What marks a word of an invocation as a variable of its environment
/// (`env:NAME=value`, before the command's words).
const ENV: &str = "env:";

/// An invocation's environment (`NAME`, `value`) and its words.
fn split_env(args: &[String]) -> (Vec<(String, String)>, &[String]) {
    let n = args.iter().take_while(|a| a.starts_with(ENV)).count();
    let env = args[..n]
        .iter()
        .map(|a| {
            let (k, v) = a[ENV.len()..].split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    (env, &args[n..])
}

/// The environment of each task of the job array a `--shard` value `auto`
/// or `auto/N` runs in (see the comment above `SUBCOMMANDS`), as `env:` words.
fn job_array_tasks(shard: &str, array: Option<(u32, u32)>, command: &str) -> Vec<Vec<String>> {
    if let Some(n) = shard.strip_prefix("auto/") {
        let n: u32 = n.parse().unwrap();
        return (0..n)
            .map(|i| vec![format!("{ENV}JOB_COMPLETION_INDEX={i}")])
            .collect();
    }
    let (min, max) =
        array.unwrap_or_else(|| panic!("`{command}`: --shard auto without #SBATCH --array=A-B"));
    (min..=max)
        .map(|id| {
            [
                ("SLURM_ARRAY_TASK_ID", id),
                ("SLURM_ARRAY_TASK_COUNT", max - min + 1),
                ("SLURM_ARRAY_TASK_MIN", min),
                ("SLURM_ARRAY_TASK_MAX", max),
                ("SLURM_ARRAY_TASK_STEP", 1),
            ]
            .iter()
            .map(|(k, v)| format!("{ENV}{k}={v}"))
            .collect()
        })
        .collect()
}

/// The invocations one shown command stands for: optional `[...]` arguments
/// left out and given, a shell variable holding a shard index (`$VAR/N`)
/// taking every index, `--shard auto` every task of its job array (`array`:
/// the block's `#SBATCH --array=A-B`), a reader's file each of its stand-ins.
/// Arguments are still as written; a job array's variables come first, as
/// `env:` words.
fn variants(command: &str, array: Option<(u32, u32)>) -> Vec<Vec<String>> {
    let mut all = vec![Vec::<String>::new()];
    let mut optional = false;
    let mut previous = String::new();
    for w in words(command) {
        if previous == "--shard" && w.starts_with("auto") {
            let tasks = job_array_tasks(&w, array, command);
            all = all
                .iter()
                .flat_map(|a| {
                    tasks
                        .iter()
                        .map(|env| [env.clone(), a.clone(), vec![w.clone()]].concat())
                })
                .collect();
            previous = w;
            continue;
        }
        previous = w.clone();
        if let Some(w) = w.strip_prefix('[') {
            optional = true;
            let with: Vec<Vec<String>> = all
                .iter()
                .map(|a| {
                    let mut a = a.clone();
                    a.push(w.trim_end_matches(']').to_string());
                    a
                })
                .collect();
            all.extend(with);
            if w.ends_with(']') {
                optional = false;
            }
            continue;
        }
        if optional {
            // The rest of an optional group: only the variants that took it.
            let n = all.len() / 2;
            optional = !w.ends_with(']');
            let w = w.trim_end_matches(']').to_string();
            for a in &mut all[n..] {
                a.push(w.clone());
            }
            continue;
        }
        let choices: Vec<String> = if w.starts_with('$') && w.contains('/') {
            let n: u32 = w.rsplit('/').next().unwrap().parse().unwrap();
            (0..n).map(|i| format!("{i}/{n}")).collect()
        } else if let Some((_, s)) = STAND_INS.iter().find(|(f, _)| *f == w) {
            s.iter().map(|s| s.to_string()).collect()
        } else {
            vec![w]
        };
        all = all
            .into_iter()
            .flat_map(|a| {
                choices.iter().map(move |c| {
                    let mut a = a.clone();
                    a.push(c.clone());
                    a
                })
            })
            .collect();
    }
    all
}

/// The value of option `name` in `args`.
fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .map(|i| args[i + 1].as_str())
}

/// Runs one shown kvsim command (its arguments after `kvsim`) in `sandbox`
/// and checks what it wrote.
fn run_shown(shown: &Shown, args: &[String], sandbox: &Path) {
    let (env, args) = split_env(args);
    let what = format!("README line {}: `{}` {env:?}", shown.line, shown.command);
    let sub = args[0].as_str();
    assert!(
        SUBCOMMANDS.contains(&sub),
        "{what}: unknown subcommand {sub}"
    );
    let mut args: Vec<String> = args.to_vec();
    // Paths: a path the command writes, or one an earlier command wrote, goes
    // to the sandbox; the bundled inputs are read where they are.
    let mut out = None;
    for i in 1..args.len() {
        let a = args[i].clone();
        if args[i - 1] == "--out" {
            let p = in_sandbox(sandbox, &a);
            out = Some(p.clone());
            args[i] = p.to_str().unwrap().to_string();
        } else if args[i - 1] == "--baseline" {
            // `check --update` rewrites its baseline: the copy is.
            let p = in_sandbox(sandbox, &a);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::copy(root().join(&a), &p).unwrap();
            args[i] = p.to_str().unwrap().to_string();
        }
    }
    let positional: Vec<usize> = (1..args.len())
        .filter(|&i| !args[i].starts_with("--") && !args[i - 1].starts_with("--"))
        .collect();
    let mut expanded = Vec::new();
    for (k, a) in args.iter().enumerate() {
        if positional.contains(&k) && a.contains('*') {
            expanded.extend(glob(sandbox, a));
        } else if positional.contains(&k) && (sub == "plot" || sub == "report") {
            // Its input is an earlier command's output.
            let p = in_sandbox(sandbox, a);
            assert!(p.exists(), "{what}: no earlier command wrote {a}");
            expanded.push(p.to_str().unwrap().to_string());
        } else {
            expanded.push(a.clone());
        }
    }
    let mut args = expanded;
    // Where it writes by default, in the sandbox too.
    if out.is_none() {
        let default = match sub {
            "run" | "sweep" | "plan" => Some(format!("output/{}", scenario_name(&args[1]))),
            "validate" => Some("VALIDATION.md".to_string()),
            "calibrate" => Some("calibration.toml".to_string()),
            _ => None,
        };
        if let Some(d) = default {
            let p = in_sandbox(sandbox, &d);
            args.extend(["--out".to_string(), p.to_str().unwrap().to_string()]);
            out = Some(p);
        }
    }
    let mut cmd = Command::cargo_bin("kvsim").unwrap();
    for name in [
        "SLURM_JOB_ID",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "SLURM_ARRAY_TASK_STEP",
        "JOB_COMPLETION_INDEX",
    ] {
        cmd.env_remove(name);
    }
    let result = cmd
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root())
        .args(&args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(
        result.status.code(),
        Some(0),
        "{what} ({args:?}) failed\n{stderr}"
    );
    if !shown.output.is_empty() {
        let got: Vec<&str> = stdout.lines().map(str::trim_end).collect();
        let want: Vec<&str> = shown.output.iter().map(|l| l.trim_end()).collect();
        assert_eq!(got, want, "{what}: the output shown is not what it prints");
    }
    if args.iter().any(|a| a == "--json") {
        serde_json::from_str::<serde_json::Value>(&stdout)
            .unwrap_or_else(|e| panic!("{what}: --json printed no JSON ({e})"));
    } else {
        assert!(!stdout.trim().is_empty(), "{what} printed nothing");
    }
    let out = out.as_deref();
    let exists =
        |p: std::path::PathBuf| assert!(p.exists(), "{what} did not write {}", p.display());
    match sub {
        "run" => exists(out.unwrap().join("summary.json")),
        "report" => exists(Path::new(&args[1]).join("report.html")),
        "sweep" => match option(&args, "--shard") {
            Some(s) => {
                let (i, n) = match s.strip_prefix("auto") {
                    // The shard the job array's variables give.
                    Some(n) => {
                        let var = |name: &str| {
                            let (_, v) = env.iter().find(|(k, _)| k == name).unwrap();
                            v.parse::<u32>().unwrap()
                        };
                        let (i, n) = match n.strip_prefix('/') {
                            Some(n) => (var("JOB_COMPLETION_INDEX"), n.parse().unwrap()),
                            None => (
                                var("SLURM_ARRAY_TASK_ID") - var("SLURM_ARRAY_TASK_MIN"),
                                var("SLURM_ARRAY_TASK_COUNT"),
                            ),
                        };
                        let said = format!("shard {i}/{n} (from ");
                        assert!(stderr.contains(&said), "{what}: no `{said}` in {stderr}");
                        (i.to_string(), n.to_string())
                    }
                    None => {
                        let (i, n) = s.split_once('/').unwrap();
                        (i.to_string(), n.to_string())
                    }
                };
                exists(out.unwrap().join(format!("sweep.shard-{i}-of-{n}.csv")))
            }
            None => {
                exists(out.unwrap().join("sweep.csv"));
                exists(out.unwrap().join("plots/wall.png"));
            }
        },
        "plan" if args.iter().any(|a| a == "--crossover") => {
            exists(out.unwrap().join("crossover.csv"));
            exists(out.unwrap().join("crossover.png"));
            shown_rows(
                &what,
                &stdout,
                "(`kvsim plan scenarios/disagg-70b-long-prompts.toml --crossover` prints):",
            );
        }
        "plan" => {
            exists(out.unwrap().join("plan.csv"));
            exists(out.unwrap().join("plan.png"));
            if option(&args, "--slo").is_none() {
                match scenario_name(&args[1]).as_str() {
                    "disagg-70b-long-prompts" => shown_rows(
                        &what,
                        &stdout,
                        "First rows (`kvsim plan scenarios/disagg-70b-long-prompts.toml`):",
                    ),
                    "disagg-70b-short-prompts" => shown_rows(
                        &what,
                        &stdout,
                        "First rows (`kvsim plan scenarios/disagg-70b-short-prompts.toml`):",
                    ),
                    _ => plan_example(&stdout, &out.unwrap().join("plan.csv")),
                }
            }
        }
        "plot" => {
            let input = Path::new(&args[1]);
            let dir = out.map_or_else(|| input.parent().unwrap().join("plots"), Path::to_path_buf);
            let format = option(&args, "--format").unwrap_or("png");
            let mut charts: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
                .filter(|n| n.ends_with(&format!(".{format}")))
                .collect();
            charts.sort();
            let want: &[&str] = if option(&args, "--y").is_some() {
                &["throughput_tok_s_vs_traffic.arrival.users"]
            } else if input.ends_with("timeline.csv") {
                &["occupancy", "queue"]
            } else {
                // "the six default sweep charts"
                &["batch", "oom_rate", "tpot", "ttft_p99", "wall", "waste"]
            };
            let want: Vec<String> = want.iter().map(|c| format!("{c}.{format}")).collect();
            assert_eq!(charts, want, "{what}: charts in {}", dir.display());
        }
        "merge" => {
            // "the `sweep.csv` a single run gives, byte for byte"
            let single = sandbox.join("single");
            run(&[
                "sweep",
                STAND_INS[0].1[0],
                "--no-plots",
                "--out",
                single.to_str().unwrap(),
            ]);
            assert_eq!(
                std::fs::read_to_string(out.unwrap()).unwrap(),
                std::fs::read_to_string(single.join("sweep.csv")).unwrap(),
                "{what}: the merged shards differ from a single run"
            );
        }
        "validate" => assert_eq!(
            std::fs::read_to_string(out.unwrap()).unwrap(),
            std::fs::read_to_string(root().join("VALIDATION.md")).unwrap(),
            "{what}: VALIDATION.md is not what the command writes"
        ),
        "calibrate" => {
            let text = std::fs::read_to_string(out.unwrap()).unwrap();
            assert!(text.contains("mbu"), "{what}: {text}");
        }
        _ => {}
    }
}

/// The committed files the README's commands read (or would write without
/// the sandbox), path by path.
fn committed_inputs() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![
        root().join("baselines"),
        root().join("scenarios"),
        root().join("examples"),
        root().join("output"),
    ];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                files.push((p, bytes));
            }
        }
    }
    files.push((
        root().join("VALIDATION.md"),
        std::fs::read(root().join("VALIDATION.md")).unwrap(),
    ));
    files.sort();
    files
}

/// The shown commands to run, with `validate`'s apart (`keep`), as
/// `(shown, invocations)`; fails naming any command it cannot map.
fn runnable(keep: impl Fn(&str) -> bool) -> Vec<(Shown, Vec<Vec<String>>)> {
    let mut runs = Vec::new();
    for shown in shown_commands() {
        if NOT_RUN.iter().any(|(c, _, _)| *c == shown.command) {
            continue;
        }
        let invocations: Vec<Vec<String>> = variants(&shown.command, shown.array)
            .into_iter()
            .map(|v| {
                // A job array's variables, then the command.
                let n = v.iter().take_while(|w| w.starts_with(ENV)).count();
                let (env, v) = v.split_at(n);
                let rest = if v[0] == "kvsim" {
                    &v[1..]
                } else if v.len() > 3 && v[..4] == ["cargo", "run", "--release", "--"] {
                    &v[4..]
                } else {
                    panic!(
                        "README line {}: `{}` is a command this test cannot run: map it in \
                         tests/kvsim/readme.rs, or list it in NOT_RUN with the reason",
                        shown.line, shown.command
                    )
                };
                [env, rest].concat()
            })
            .collect();
        if keep(&split_env(&invocations[0]).1[0]) {
            runs.push((shown, invocations));
        }
    }
    runs
}

/// Each kvsim command in the README's code blocks runs, in README order, in
/// one sandbox (a later command reads what an earlier one wrote, as a reader
/// following the README would); `validate` runs in its own test, in parallel.
#[test]
fn readme_commands_run() {
    let before = committed_inputs();
    let sandbox = tempfile::tempdir().unwrap();
    let runs = runnable(|sub| sub != "validate");
    assert!(runs.len() >= 25, "{} commands found", runs.len());
    for (shown, invocations) in &runs {
        for args in invocations {
            run_shown(shown, args, sandbox.path());
        }
    }
    assert!(
        before == committed_inputs(),
        "a README command changed a committed file"
    );
}

/// `kvsim validate` rewrites VALIDATION.md as committed. Ignored in the
/// default run: it takes 1.5 to 5 minutes on a 2-core machine, and the unit
/// test `validation_md_is_generated_not_edited` already runs the same cases
/// and compares the same file (`cargo test --release --test kvsim readme --
/// --ignored` runs it; it passed when added).
#[test]
#[ignore = "minutes; validation_md_is_generated_not_edited covers the same output"]
fn readme_validate_command_runs() {
    let sandbox = tempfile::tempdir().unwrap();
    let runs = runnable(|sub| sub == "validate");
    assert_eq!(runs.len(), 1, "{runs:?}");
    for (shown, invocations) in &runs {
        for args in invocations {
            run_shown(shown, args, sandbox.path());
        }
    }
}

/// The README's job arrays run as their tasks: the Slurm script's
/// `--shard auto` once per id of its `#SBATCH --array=0-15`, the Indexed
/// Job's `--shard auto/16` once per completion index, each with the
/// variables set (`readme_commands_run` then checks each task's shard file).
#[test]
fn readme_job_arrays_run_as_their_tasks() {
    let runs = runnable(|sub| sub == "sweep");
    let tasks = |shard: &str| -> Vec<Vec<(String, String)>> {
        runs.iter()
            .flat_map(|(_, invocations)| invocations)
            .filter(|args| args.iter().any(|a| a == shard))
            .map(|args| split_env(args).0)
            .collect()
    };
    let slurm = tasks("auto");
    // One stand-in scenario, 16 tasks, ids 0 to 15.
    assert_eq!(slurm.len(), 16, "{slurm:?}");
    for (id, env) in slurm.iter().enumerate() {
        let want = |k: &str, v: usize| env.contains(&(k.to_string(), v.to_string()));
        assert!(want("SLURM_ARRAY_TASK_ID", id), "{env:?}");
        assert!(want("SLURM_ARRAY_TASK_COUNT", 16), "{env:?}");
        assert!(want("SLURM_ARRAY_TASK_MIN", 0), "{env:?}");
    }
    let k8s = tasks("auto/16");
    assert_eq!(k8s.len(), 16, "{k8s:?}");
    for (i, env) in k8s.iter().enumerate() {
        assert_eq!(env, &[("JOB_COMPLETION_INDEX".to_string(), i.to_string())]);
    }
}

/// Every command NOT_RUN lists is still shown (no stale entry) and what it
/// measures with exists.
#[test]
fn readme_commands_not_run_are_few_and_exist() {
    let shown: Vec<String> = shown_commands().into_iter().map(|s| s.command).collect();
    for (command, why, needles) in NOT_RUN {
        assert!(!why.is_empty());
        assert!(
            shown.iter().any(|s| s == command),
            "NOT_RUN lists `{command}`, which the README no longer shows"
        );
        for (file, text) in *needles {
            let body = std::fs::read_to_string(root().join(file)).unwrap();
            assert!(body.contains(text), "{file} lacks {text} (for `{command}`)");
        }
    }
    assert!(NOT_RUN.len() <= 10, "keep NOT_RUN minimal");
}

// ---------------------------------------------------------------------------
// Every sentence that states a number or an effect is checked.

/// README sentences checked by a test elsewhere: `(fragment of the sentence,
/// test that checks it)`. `readme_claims_name_their_tests` finds each
/// fragment in the README and each test in the tests' sources (tests/ and
/// the unit tests in src/). The sentences this file checks itself are the
/// `says(...)` calls above and below.
const CLAIMS: &[(&str, &str)] = &[
    (
        "a step's price is summed in integers (its parts in 2^-64 ns, rounded to the nanosecond once;",
        "integer_prices_are_the_roofline_to_the_nanosecond",
    ),
    (
        "leaps 7,546 of its 8,248 steps",
        "leaps_pass_a_head_blocked_by_memory_under_windows",
    ),
    (
        "2 GB/s link, 98.7 % busy",
        "the_link_bound_bench_keeps_its_link_busy",
    ),
    (
        "they take 17 and 70 engine steps a request (the README's table of engine steps per request)",
        "steps_per_request_table",
    ),
    (
        "a new test (closed loops, sessions and open loops on busy replicas, prompts no replica can hold) fails when the instant of a request that ends at once is dropped",
        "requests_routed_mid_step_are_issued_as_their_arrivals_would_be",
    ),
    (
        "checks every end against the transfer-by-transfer sharing to the nanosecond",
        "pair_clocks_end_transfers_as_sharing_transfer_by_transfer_does",
    ),
    (
        "so the fast step's end hands down its visitors' blocks, then its prefills', the same blocks in the same order.",
        "kv_tiers_under_every_pressure",
    ),
    (
        "Tests compare the two engines on 192 tier setups and on every setup of `multi-turn-tiers` (`tests/kvsim/fast_path.rs`).",
        "the_multi_turn_tiers_setups_with_the_roofline",
    ),
    (
        "such steps go to the straightforward engine until it has loaded.",
        "kv_tiers_under_every_pressure",
    ),
    (
        "into 2^11 buckets by the 11 bits below those every key shares, the",
        "selects_exact_order_statistics",
    ),
    (
        "the last few keys are sorted (`src/metrics/select.rs`; tests compare it with sorting).",
        "any_ranks_of_any_keys",
    ),
    (
        "the summary skips the pass over TTFT's load part when nothing loaded from a tier;",
        "load_percentiles_with_and_without_loads",
    ),
    (
        "nanoseconds too and rounds its transfers' ends up without libm's `ceil`;",
        "ceil_u64_is_ceil",
    ),
    (
        "so the map now keeps 16 consecutive indices of one key in one bucket",
        "keeps_neighbours_in_one_chunk_and_drops_empty_ones",
    ),
    (
        "contiguous growth under every kind of memory pressure, with the",
        "contiguous_growth_under_every_pressure",
    ),
    (
        "base run: 42,230 steps for 600 requests; a million requests a second would",
        "the_long_prompt_scenario_takes_seventy_steps_a_request",
    ),
    // Streaming mode.
    (
        "the timeline is bounded as in every run",
        "a_streamed_timeline_is_the_exact_runs",
    ),
    (
        "Every percentile is then within 1 % of the value at its rank",
        "streaming_agrees_with_exact_within_the_sketch_bound",
    ),
    (
        "issue up to 5,000,000 requests and streaming beyond",
        "auto_streams_only_beyond_five_million_requests",
    ),
    (
        "A disaggregated deployment always keeps them",
        "auto_streams_only_beyond_five_million_requests",
    ),
    (
        "about 330 bytes a request",
        "the_memory_estimate_covers_a_measured_run",
    ),
    // A run's files.
    (
        "written in row order (the bytes do not depend on the thread count)",
        "run_files_do_not_depend_on_the_thread_count",
    ),
    (
        "the same text `format!` made: a test compares them over every 7th value below 10^8",
        "eight_digits_are_those_of_format",
    ),
    (
        "the timeline keeps at most 100,000 rows by default",
        "the_default_timeline_keeps_every_step_up_to_its_bound_then_thins",
    ),
    (
        "without it the flag is refused (exit 2) before anything runs",
        "parquet_without_the_feature_is_refused_with_how_to_enable_it",
    ),
    // Disaggregation.
    (
        "ranks a 2xTP2 + 1xTP4 split first (0.172 req/s per GPU against 0.126 colocated)",
        "the_long_prompt_plan_prefers_disaggregation",
    ),
    (
        "colocated 2xTP4 ranks first (0.906 req/s per GPU against 0.495 for the best split)",
        "the_short_prompt_plan_prefers_colocation",
    ),
    (
        "its decode batch is small (3.5 on average at 1 request/s)",
        "the_long_prompt_scenario_spans_many_small_decode_steps",
    ),
    (
        "request spans about 70 decode steps",
        "the_long_prompt_scenario_spans_many_small_decode_steps",
    ),
    (
        "cannot receive the longest prompt the traffic sends is",
        "every_bad_input_is_refused_with_a_message_that_says_where_and_why",
    ),
    // KV tiers in the outputs.
    (
        "`queue_s` + `load_s` + `prefill_s` = TTFT",
        "requests_csv_splits_each_ttft_into_queue_load_and_prefill",
    ),
    (
        "a scenario without tiers prints neither",
        "the_tier_section_shows_only_with_tiers",
    ),
    (
        "`hit_rate_tiers` when the sweep's KV tiers stored anything",
        "a_tiered_sweep_charts_its_hit_rate_per_tier",
    ),
    (
        "`hit_rate_tiers` when the sweep's KV tiers stored anything",
        "tiers_that_stored_something_get_a_hit_rate_chart",
    ),
    // Traces.
    (
        "its hash ids decide which blocks are shared (hit rate ~53 %)",
        "the_bundled_mooncake_replay_runs_and_hits_its_prefixes",
    ),
    // Layer groups.
    (
        "6 conversations at once, against 1 were every layer global",
        "the_window_scenario_shows_what_the_window_buys",
    ),
    (
        "KV ceilings of 129 and 11 sequences at ~30k tokens",
        "the_hybrid_scenario_shows_its_capacity",
    ),
    // The seeds' worked examples.
    (
        "8192 tokens: 2,684,354,560 bytes, ~2.5 GiB",
        "seed_002_worked_example_70b_style",
    ),
    (
        "x8 concurrency ~20 GiB, x16 ~40 GiB",
        "seed_002_worked_example_70b_style",
    ),
    (
        "4096 tokens, batch 4 = 2 GiB; doubling the batch doubles it",
        "seed_002_exercise_is_two_gib_then_four",
    ),
    (
        "= 2.6 MB per token; 100K tokens = 260 GB",
        "seed_001_mha_70b_per_token_and_100k_tokens",
    ),
    (
        "\"upwards of 40 gigabytes\" for one user",
        "seed_000_llama3_70b_128k_context_is_over_40_gb",
    ),
    (
        "holds 0.500 GiB, not the 2.000 GiB of a full-context cache",
        "the_kv_calculator_and_a_run_agree_on_a_windowed_model",
    ),
    (
        "kvsim reproduces all sixteen bars of that figure within 10 points",
        "every_case_meets_its_target_or_its_known_miss_bound",
    ),
    // Hugging Face import.
    (
        "keeps every token in its 10 global layers and the last 1,024 in its 52 local ones",
        "gemma_3_27b",
    ),
    (
        "36 Gated DeltaNet layers keep 37.7 MiB per sequence beside the 24.0 KiB per token of its 12 attention layers",
        "qwen3_next_80b_a3b",
    ),
    (
        "A file kvsim cannot read is refused with exit code 2",
        "every_bad_input_is_refused_with_a_message_that_says_where_and_why",
    ),
    // Planning with KV tiers.
    (
        "so two replicas do what three do without it ($10.00 an hour, $2.02 of it host memory, against $11.97), while 64 GB saves no replica and only adds its price ($12.73)",
        "host_memory_against_more_gpus_on_multi_turn_chat",
    ),
    (
        "256 GB of host memory raises the rate one H100 sustains by over half",
        "host_memory_against_more_gpus_on_multi_turn_chat",
    ),
    (
        "host memory $0.003946 per GB-hour, N2 memory at $0.004237 per GiB-hour",
        "tier_prices_add_exactly",
    ),
    (
        "SSD $0.00010206 per GB-hour, Local SSD at $0.08 per GiB-month / 730 hours",
        "tier_prices_add_exactly",
    ),
    (
        "memory prices in [0, 0.1] USD per GB-hour",
        "tier_prices_are_checked_at_load",
    ),
    // Catalog and defaults.
    (
        "Models: llama-2-7b/13b/70b, llama-3.1-8b/70b/405b",
        "catalog_lists_every_required_entry",
    ),
    (
        "the tables fit 80 columns and list each entry's source under them, and `--wide` prints every column with the source in the table",
        "catalog_tables_fit_80_columns_and_show_every_source",
    ),
    (
        "GPUs: a100-40gb, a100-80gb, h100-sxm, h100-pcie, h200, l4, l40s, mi300x, b200, b300, gb200, h20, mi325x, mi355x, rtx-pro-6000-se",
        "catalog_lists_every_required_entry",
    ),
    (
        "defaults follow vLLM (block 16, `max_num_seqs` 256, `max_batched_tokens` 8192",
        "without_a_preset_the_defaults_are_kvsims",
    ),
    (
        "a preset replaces them with its engine's, and keys written in the file win over both",
        "explicit_keys_win_over_the_preset",
    ),
    (
        "`scenarios/batch-size-wall.toml` | seed 000's batch-size wall: fine at 10 users, crashes at 50; paged + preemption does not",
        "naive_server_is_fine_at_10_users_and_crashes_at_50",
    ),
    (
        "fine at 10 users, crashes at 50; paged + preemption does not",
        "paged_with_preemption_serves_50_users_without_oom",
    ),
    (
        "Decode is memory-bound, so TPOT rises with batch and context",
        "tpot_rises_with_concurrency",
    ),
    // Exit codes, guards, output directories, Ctrl-C.
    (
        "2 bad input or usage (the message names the file, the key or line, and the reason; no partial output is written)",
        "every_bad_input_is_refused_with_a_message_that_says_where_and_why",
    ),
    (
        "3 a run stopped by `--max-events` or `--time-limit`",
        "a_long_run_is_announced_and_stopped_by_max_events_with_exit_3",
    ),
    (
        "130 interrupted (Ctrl-C, below)",
        "ctrl_c_stops_a_long_run_keeping_the_previous_results_and_no_lock",
    ),
    (
        "an error, a full disk or Ctrl-C removes the temporary directory and leaves the target exactly as it was",
        "a_failure_mid_write_leaves_the_previous_results_intact",
    ),
    (
        "leaves no old chart or `sweep.csv` behind",
        "a_rerun_leaves_exactly_the_new_run_s_files",
    ),
    (
        "is refused with exit 2, the message naming the directory and (up to three of) the files",
        "a_directory_with_a_file_kvsim_did_not_write_is_refused_and_left_alone",
    ),
    (
        "makes a second kvsim writing the same directory exit 2 while the first runs",
        "a_held_lock_makes_a_second_writer_exit_2_and_a_stale_one_is_reclaimed",
    ),
    (
        "`sweep` keeps the finished points in `sweep.partial.csv`",
        "ctrl_c_during_a_sweep_keeps_finished_points_and_exits_130",
    ),
    (
        "`plan` keeps the candidates that had finished in `plan.partial.csv`",
        "ctrl_c_stops_a_plan_and_says_what_it_kept",
    ),
    (
        "prints a warning on stderr when it would take more than a minute",
        "a_long_run_is_announced_and_stopped_by_max_events_with_exit_3",
    ),
    (
        "the points finished by then are kept in `sweep.partial.csv`",
        "a_time_limit_stops_a_run_and_a_sweep_keeps_its_finished_points",
    ),
    (
        "more than 4096 layers, 2^30 tokens of context, 1 GiB of KV per token",
        "the_kv_calculator_refuses_shapes_that_overflow",
    ),
    (
        "A scenario that could never run is refused (exit 2)",
        "guard_flags_refuse_nonsense",
    ),
    (
        "or pass `--allow-large`. Above half of the machine's memory it warns.",
        "a_run_beyond_the_machines_memory_runs_when_bounded_or_allowed",
    ),
    (
        "bytes per request and per engine step calibrated against a real run's peak RSS",
        "the_memory_estimate_covers_a_measured_run",
    ),
    (
        "prompts that reach the model's `max_model_len` (they fail as `unservable`)",
        "the_cli_warns_when_prompts_reach_max_model_len",
    ),
    (
        "moves its mean by more than 10 %",
        "load_time_warnings_reach_run_and_sweep",
    ),
    // Sweeps, shards, merge.
    (
        "it is clamped to the smaller of the two with a note on stderr",
        "too_many_threads_are_clamped_with_a_note",
    ),
    (
        "(`--threads 0` is refused, exit 2)",
        "zero_threads_is_refused",
    ),
    (
        "It is byte-identical for any thread count and any sharding",
        "one_thread_and_two_threads_write_identical_bytes",
    ),
    (
        "the finished points are written to `sweep.partial.csv`",
        "a_failing_point_keeps_the_finished_rows_and_names_itself",
    ),
    (
        "joins the parts into the `sweep.csv` a single run gives, byte for byte",
        "shards_merge_into_the_single_run",
    ),
    (
        "a `#` comment that `kvsim plot` skips too",
        "a_shard_starts_with_its_fingerprint_and_still_reads_as_a_table",
    ),
    (
        "shards whose fingerprints differ in anything but the shard index",
        "shards_of_other_runs_are_refused_naming_what_differs",
    ),
    (
        "a shard given twice; a missing shard of the split",
        "repeated_missing_and_unfingerprinted_shards_are_refused",
    ),
    (
        "an `--out` that is one of its inputs, however spelt",
        "out_may_not_be_one_of_the_shards",
    ),
    (
        "so `--array=0-15` and `--array=1-16` both run shards 0 to 15",
        "a_slurm_array_from_min_counts_from_min",
    ),
    (
        "so `--array=0-15` and `--array=1-16` both run shards 0 to 15",
        "shard_auto_in_a_slurm_array_and_an_indexed_job_merges_into_the_single_run",
    ),
    (
        "an array with a step (`--array=0-30:2`, `SLURM_ARRAY_TASK_STEP` not 1) or a list with gaps",
        "slurm_arrays_with_gaps_are_refused",
    ),
    (
        "inside a Slurm array, `auto/N` checks `N` against `SLURM_ARRAY_TASK_COUNT`",
        "a_count_given_with_slurm_must_be_slurms",
    ),
    (
        "is refused before anything runs (exit 2, naming the variable and why)",
        "shard_auto_refusals_name_the_variable_and_exit_2",
    ),
    (
        "A variable set to the empty string counts as unset.",
        "slurm_needs_only_the_id_and_the_count",
    ),
    (
        "so its file is the one `--shard 3/16` writes and `kvsim merge` joins the parts as above",
        "shard_auto_in_a_slurm_array_and_an_indexed_job_merges_into_the_single_run",
    ),
    // Plots.
    (
        "For a sweep: `wall` (the headline: OOM rate, batch and TPOT p99 side by side)",
        "sweep_defaults_render_as_png_and_svg",
    ),
    (
        "For a run: `occupancy` (with the 90 % line seed 000 warns about)",
        "timeline_defaults_render_as_png_and_svg",
    ),
    // check.
    (
        "A tolerance must lie in [0, 1]",
        "tolerances_must_name_known_metrics_and_lie_in_range",
    ),
    (
        "A renamed axis column, or a column or point missing on either side, is named and fails",
        "missing_and_extra_points_and_columns_are_named_and_fail",
    ),
    (
        "A point the baseline holds twice, or a cell that is not a number, is refused before the sweep runs",
        "a_repeated_point_or_an_unreadable_cell_is_bad_input_naming_the_line",
    ),
    (
        "a number against NaN, an infinity or an empty cell",
        "a_baseline_of_nan_infinities_or_empty_cells_never_passes",
    ),
    (
        "A move beyond tolerance is a regression, an improvement, a change",
        "direction_decides_regression_improvement_or_change",
    ),
    (
        "Exit codes: 0 pass, 1 fail, 2 bad input.",
        "improvements_pass_unless_fail_on_change_and_regressions_always_fail",
    ),
    // plan, validate, calibrate.
    (
        "It prints a ranked table, writes `plan.csv`",
        "plan_ranks_candidates_and_writes_csv_and_chart",
    ),
    (
        "exits 1 with the nearest miss when nothing is feasible",
        "an_impossible_objective_exits_1_with_the_nearest_miss",
    ),
    // Disaggregated plans (issue 18).
    (
        "the 2xTP2 + 1xTP4 split sustains 1.37 req/s on its 8 GPUs (0.172 per GPU) against 1.01 (0.126) for the best colocated shape, so three copies serve the load for $95.76 an hour where colocated serving needs four ($127.68)",
        "the_long_prompt_plan_prefers_disaggregation",
    ),
    (
        "the two modes tie (2.05 req/s colocated 2xTP4, 2.00 for 3xTP2 + 1xTP2)",
        "at_50_ms_tpot_the_long_prompt_plan_is_a_tie",
    ),
    (
        "colocated 2xTP4 sustains 7.25 req/s (0.906 per GPU), the best split 3.96 (0.495), so three copies of 2xTP4 ($95.76 an hour) do what five copies of the split do ($159.60)",
        "the_short_prompt_plan_prefers_colocation",
    ),
    (
        "colocated serving wins up to 4:1 (the best split reaches 0.72 of its goodput per GPU there, 0.40 at 1:8,",
        "the_crossover_lies_between_4_1_and_8_1",
    ),
    (
        "0.40 at 1:8, where the split's 4 decode GPUs",
        "the_crossover_chart_is_written_and_the_modes_cross",
    ),
    (
        "disaggregation from 8:1 (1.19 there, 1.36 at 32:1); the ratio where they cross, interpolated on the logarithms, is ISL:OSL ~6.3:1",
        "the_crossover_lies_between_4_1_and_8_1",
    ),
    (
        "1.36 at 32:1",
        "the_crossover_chart_is_written_and_the_modes_cross",
    ),
    (
        "one whose bound is below the rate an earlier shape of its mode sustained is pruned, not simulated",
        "a_shape_bounded_below_a_sustained_rate_is_pruned_unsimulated",
    ),
    (
        "one whose decode step alone (one sequence, the weights read once) is longer than the TPOT objective is infeasible without a probe",
        "a_decode_step_above_the_tpot_objective_is_infeasible_without_a_probe",
    ),
    (
        "a test fails if the committed file differs from what the command writes",
        "validation_md_is_generated_not_edited",
    ),
    (
        "recovers them within 0.1 %",
        "step_latencies_without_noise_give_back_the_coefficients",
    ),
    (
        "through ±3 % noise, mbu and mfu within 3 % and the step overhead within 5 %",
        "step_latencies_with_three_percent_noise_give_the_coefficients_within_a_few_percent",
    ),
    // Speed and memory.
    (
        "Results are bit-identical",
        "shipped_scenarios_with_the_roofline",
    ),
    ("Results are bit-identical", "random_scenarios_agree"),
    (
        "in `llama70b-long-context` 79 % of the steps are leapt",
        "quiet_steps_are_leapt",
    ),
    ("its `RequestRecord` (104 bytes", "bytes_kept_per_request"),
    ("and 16 bytes of engine state", "bytes_kept_per_request"),
    ("(20 bytes an entry", "bytes_kept_per_request"),
    // Robustness.
    (
        "checks the exit code (2), that nothing is written",
        "every_bad_input_is_refused_with_a_message_that_says_where_and_why",
    ),
    (
        "each input is accepted (and simulated for a few hundred events) or refused with exit code 2",
        "mutated_scenarios_never_panic",
    ),
    (
        "a file whose first 64 KiB hold a zero byte is refused as not text",
        "binary_files_are_refused_from_their_first_bytes",
    ),
    (
        "a line over 1 MiB is refused",
        "text_lines_stream_with_numbers_and_refuse_long_or_binary_lines",
    ),
    (
        "errors quote at most 200 characters of what they found",
        "long_values_are_quoted_in_part",
    ),
    (
        "charged to a quarter of the machine's memory",
        "the_row_budget_stops_a_reader_past_its_limit",
    ),
    (
        "checks that the peak RSS grows by less than 16 MiB",
        "readers_hold_a_line_not_the_file",
    ),
    (
        "time never goes back, every request ends exactly once",
        "invariants_hold_on_random_scenarios",
    ),
];

/// Timings and measurements of this machine, which a test cannot assert:
/// `(fragment, the command that measures it, file and text showing that
/// command's benchmark or example exists)`.
const TIMINGS: &[(&str, &str, &str, &str)] = &[
    (
        "| `long-context-crash` | 2.64M | **2.47M** (6.5 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `policies` | 335.38M | **318.18M** (5.1 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `plan-llama70b` | 20.95M | **20.08M** (4.2 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `multi-turn-creep` | 55.84M | **53.98M** (3.3 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `mooncake-replay` | 63.17M | **61.41M** (2.8 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `llama70b-long-context` | 22.70M | 22.35M (1.5 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `quickstart` | 35.41M | 35.14M (0.8 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `batch-size-wall` | 63.60M | 63.15M (0.7 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `multi-turn-tiers` | 24.35G | 24.23G (0.5 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `hybrid-capacity` | 206.80M | 206.26M (0.3 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `window-long-context` | 249.51M | 248.95M (0.2 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "A first version checked for room on each row's push, which shifted the disaggregated scenarios' code by 0.45 % more instructions",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "The disaggregated bench's three cases and both 70B disaggregated scenarios ran the same counts within 0.01 %",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "`policies` ran about 2 % faster (16.45 ms to 16.12 ms, 16.30 to 16.00, 16.28 to 15.97: about 958,000 requests a second), `plan-llama70b` about 1 % (1.087 ms to 1.072 ms, 1.074 to 1.065, 1.081 to 1.066, 1.087 to 1.073).",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| fat link-time optimization (`CARGO_PROFILE_BENCH_LTO=fat`), disaggregated bench | 1,629.3M | 1,627.2M (0.13 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| `panic = \"abort\"`, `kvsim run benches/disagg.toml --set requests=20000` (the release binary) | 163.7M | 162.5M (0.8 % fewer) |",
        "kvsim run scenarios/quickstart.toml",
        "benches/disagg.toml",
        "cargo run --release -- run benches/disagg.toml",
    ),
    (
        "| the memory levels' two paths (settled, lazy) out of line, disaggregated bench | 1,629.3M | 1,629.9M (0.04 % more) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| a summary's latencies stored without a branch a record, disaggregated bench | 1,629.3M | 1,650.3M (1.3 % more) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| the recency list's append inlined, `multi-turn-tiers`' second point alone | 938.2M | 934.4M (0.4 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "A bench build from scratch with it took 3 min 34 s.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "not worth 0.8 %. (Outputs were the same bytes either way.)",
        "kvsim run scenarios/quickstart.toml",
        "benches/disagg.toml",
        "cargo run --release -- run benches/disagg.toml",
    ),
    (
        "The disaggregated bench's 8,146 a request are spread as in round 16: no function takes more than 2.5 % of them on its own (the radix selection's)",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "(the transfer's links about 760 of them: joining, ending and resharing under fair sharing).",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "`multi-turn-tiers` (24.23G, some 197,000 instructions a request) is per-block work",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "admission took 37.8 % (the HBM cache's admission 23.9 %: charging new blocks, with the least recently used cached blocks evicted for them, 7.8 %, publishing 6.8 %; the tiers' 13.5 %, completing stores to host memory 6.5 %), growing sequences 12.1 %, releasing them 8.7 % (each freed block appended to the recency list: 3.8 %), storing to tiers 7.3 %, and the KV-aware router's walk of each replica's tiers 6.0 %.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "the run's end took 11.2 % and 10.5 % of the time in two runs against 11.5 % and 10.8 % without them",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "The group-by-group path had cost an admission about 360 instructions",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| `disaggregated/disaggregated` | 1,825.1M | **1,629.3M** (10.7 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| `disaggregated/colocated` | 932.0M | **825.7M** (11.4 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| `disaggregated/link-bound` | 1,141.0M | **1,010.7M** (11.4 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| `quickstart` | 38.56M | **35.41M** (8.2 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `plan-llama70b` | 22.52M | **20.95M** (7.0 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `llama70b-long-context` | 24.26M | **22.70M** (6.4 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `multi-turn-creep` | 58.80M | **55.84M** (5.0 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `disagg-70b-short-prompts` | 23.16M | **21.99M** (5.0 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `disagg-70b-long-prompts` | 36.27M | **34.96M** (3.6 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `hybrid-capacity` | 213.06M | 206.80M (2.9 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `policies` | 341.66M | 335.38M (1.8 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `window-long-context` | 250.33M | 249.51M (0.3 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `multi-turn-tiers` | 24.30G | 24.35G (0.2 % more) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "`long-context-crash`, `batch-size-wall` and `mooncake-replay` ran within 0.2 % of their count.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "Of the disaggregated bench's 10.7 %, the plain cache took 9.6 %, the head's unusable bytes and the pools' failures 0.7 %, the summaries' pairs 0.7 %; the four tables add 0.1 % back, for the wall clock.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "compiled to 17 % more instructions of its own (426.3M to 498.9M) once the summaries changed.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "the selection took 2.74 % of the time before and 2.42 % after.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "(`quickstart` ran 0.9 % more instructions, `disagg-70b-short-prompts` 4.0 %).",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "This round's fastest samples were 96.8 ms and 97.4 ms in its quicker periods (about 1,033,000 and 1,027,000 requests a second; a median of 100.9 ms in the last round), 0b57f57's 105.8 ms at best (about 945,000).",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "Over the eight rounds the medians' medians were 151 ms against 174 ms, about 1.15x. In the host's slower periods this round ran 150-159 ms at best.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "the host's speed moved by up to 1.7x from round to round.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "saved: 4.0M more instructions in the disaggregated bench.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "A release build with one codegen unit ran the same instructions (1,638.19M against 1,638.31M) and took 5 minutes to build with one job.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "Where the disaggregated bench's 8,146 instructions a request go now: the two engines' steps about 3,040; the cluster's loop, its events and the pools about 3,380 (issuing the request to each replica about 550 of it); the run's end about 1,120 (the two replicas' own summaries about 510); drawing the traffic about 610.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "`windowed_slack` was 21 % of the scenario's instructions (60.4M of 281.9M).",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "a call per step cost more than the closed form: 263.0M instructions with it out of line",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `window-long-context` | 281.93M | **250.33M** (11.2 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `policies` | 342.96M | 341.66M (0.4 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "The other eleven bundled scenarios and the disaggregated bench ran within 0.13 % of their count",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "this round ran 57,100-59,500 requests a second where ddb7683 ran 53,500-54,700 in four of its rounds (104,000 in a fifth, a faster period of the host's), about 1.08x.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "gave the same outputs but doubled `summarize` (159.1M to 306.6M instructions):",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| `disaggregated/disaggregated` | 1,968.0M | **1,911.9M** (2.9 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| `disaggregated/colocated` | 1,033.1M | **1,018.8M** (1.4 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| `disaggregated/link-bound` | 1,237.8M | 1,228.5M (0.8 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "Of the disaggregated bench's 2.9 %, the arrival beside the heap took 0.9 % and the chained joins 1.9 %;",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "the best of each build, 131.3 ms against 134.9 ms, differ by about 1.03x, as the instructions say.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "ran `Latencies::exact` 9 % more instructions (132.1M to 144.0M).",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "one pass fewer a summary, ran 0.2 % more instructions in all,",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "a request's share of `run_mode` (9,120 in all): the two engines' steps about 3,530",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "the cluster's events and the pools about 3,790",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "the run's end about 1,190 (the two replicas' own summaries 515,",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "drawing the traffic about 610.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "reservation and each release of held KV, is about 360 of it.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| `disagg-70b-short-prompts` | 23.37M | 23.15M (0.9 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `disagg-70b-long-prompts` | 36.49M | 36.26M (0.6 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `mooncake-replay` | 63.46M | 63.07M (0.6 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `multi-turn-tiers` | 24.47G | 24.30G (0.7 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "the prefix-caching scenarios ran 1.1 % (`mooncake-replay`) and 2.4 % (`multi-turn-tiers`) more instructions",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "The other eight bundled scenarios ran within 0.01 % of their count.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "the chains cost the bundled 70B scenarios 0.1-0.2 % back.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "the 2-core development machine is shared with other builds, and its speed moved by up to 2.3x from one period to another,",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `window-long-context` | 303.75M | **281.93M** (7.2 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `disagg-70b-long-prompts` | 39.05M | **36.49M** (6.6 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `hybrid-capacity` | 225.51M | **212.81M** (5.6 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `policies` | 353.66M | 342.96M (3.0 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `multi-turn-creep` | 60.91M | 58.77M (3.5 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `batch-size-wall` | 65.89M | 63.50M (3.6 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `quickstart` | 37.94M | 38.53M (1.6 % more) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `multi-turn-tiers` | 24.34G | 24.47G (0.5 % more) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `disaggregated/disaggregated` | 1,958.7M | 1,970.0M (0.6 % more) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "`disagg-70b-long-prompts` ran 1.07-1.13x faster in medians of 10 (four pairs), `hybrid-capacity` 1.04-1.12x (three pairs), `policies` 0.98-1.06x (five pairs), `quickstart` 0.95-1.05x (six pairs) and the disaggregated bench 0.84-1.58x (six pairs, median 1.04).",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `quickstart` | 5,857 | 1,360 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `plan-llama70b` | 6,693 | 959 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `llama70b-long-context` | 7,451 | 763 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `multi-turn-creep` | 9,378 | 547 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `policies` | 10,395 | 597 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `hybrid-capacity` | 17,189 | 440 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `disagg-70b-short-prompts` | 18,326 | 1,061 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `long-context-crash` | 24,192 | 694 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `disagg-70b-long-prompts` | 29,130 | 414 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `batch-size-wall` | 55,198 | 742 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `mooncake-replay` | 102,343 | 1,074 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `window-long-context` | 103,731 | 356 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `multi-turn-tiers` | 197,118 | 8,354 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `benches/disagg.toml`, disaggregated (`disaggregated/disaggregated`) | ~8,150 | |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"disaggregated\", \"colocated\", \"link-bound\"]",
    ),
    (
        "| the same two GPUs colocated (`disaggregated/colocated`) | ~4,130 | |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"disaggregated\", \"colocated\", \"link-bound\"]",
    ),
    (
        "disaggregated bench at about a million: after round 17, its fastest samples up to ~1,049,000 and its best medians up to ~1,038,000 in the host's quick periods, ~523,000-672,000 in its slow ones.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"disaggregated\", \"colocated\", \"link-bound\"]",
    ),
    (
        "In the slow periods a load from the nearest cache takes 1.25-1.54 times as long and a multiply-add mostly 1.05-1.08 times: the clock is much the same",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn host_probe(bencher: divan::Bencher, probe: &str)",
    ),
    (
        "| `l1-walk` (a million loads) | 1.541 ms | 1.93-2.37 ms (1.25-1.54x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "let walk = probe == \"l1-walk\";",
    ),
    (
        "| `multiply-chain` (a million multiply-adds) | 1.233 ms | 1.29-1.33 ms (1.05-1.08x), at times 1.54 ms |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "v.wrapping_mul(0x5851_F42D_4C95_7F2D)",
    ),
    (
        "| the fastest | 95.3 ms at best (~1,049,000 requests a second); 18 runs at 100 ms or less (a million or more) | 148.8-191.3 ms (~523,000-672,000) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "| the median | 96.3 ms at best (~1,038,000); 8 runs at 100 ms or less | 158.5-193.3 ms in the runs slow throughout |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "counts 48 instruction-cache misses and 98 data-cache misses a disaggregated request",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "ran 1,629.9M instructions against 1,629.3M and missed the instruction cache 2.8 % more often: not kept.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "counts 36 mispredictions a request",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_DISAGG",
    ),
    (
        "At the roughly ten billion instructions a second these runs reached on this machine in its quieter periods (the history's tables), a million requests a second allows about 10,000 instructions a request.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "The rounds measured `quickstart`, `plan-llama70b`, `llama70b-long-context` and `multi-turn-creep` at a million requests a second or more",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "A step costs a few hundred instructions even where most are leapt (the run's work over its steps: 356 in `window-long-context`)",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "The four scenarios the rounds measured at a million requests a second or more are its top four rows.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(bencher: divan::Bencher, name: &str)",
    ),
    (
        "| `disaggregated/disaggregated`, instructions | 2,127.5M | **1,962.4M** (7.8 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"disaggregated\", \"colocated\", \"link-bound\"]",
    ),
    (
        "| same, requests/s, twelve alternating pairs | ~398,000-709,000 | **~383,000-881,000** (faster in 10 pairs; median ratio 1.18) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"disaggregated\", \"colocated\", \"link-bound\"]",
    ),
    (
        "| same, five alternating pairs in a steadier minute (load about 1.4) | ~714,000-760,000 | **~896,000-944,000** (1.23-1.27x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"disaggregated\", \"colocated\", \"link-bound\"]",
    ),
    (
        "a host whose load moved one build's medians by up to 2.3x",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"disaggregated\", \"colocated\", \"link-bound\"]",
    ),
    (
        "| `disaggregated/colocated` (the same two GPUs colocated), instructions | 1,102.5M | **1,030.1M** (6.6 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "\"colocated\" => {",
    ),
    (
        "| `disaggregated/link-bound`, instructions | 1,266.2M | 1,235.6M (2.4 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "\"link-bound\" => &[\"deployment.link.gbps=2\".into(), \"requests=20000\".into()]",
    ),
    (
        "| `disagg-70b-long-prompts` (`-- bundled`), instructions | 39.69M | 39.05M (1.6 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "\"batch-size-wall\", \"disagg-70b-long-prompts\", \"disagg-70b-short-prompts\",",
    ),
    (
        "| `disagg-70b-short-prompts` (`-- bundled`), instructions | 24.15M | 23.58M (2.4 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "\"batch-size-wall\", \"disagg-70b-long-prompts\", \"disagg-70b-short-prompts\",",
    ),
    (
        "| `multi-turn-tiers` (`-- bundled`), instructions | 24.38G | 24.34G |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "\"mooncake-replay\", \"multi-turn-creep\", \"multi-turn-tiers\", \"plan-llama70b\",",
    ),
    (
        "at about a sixth of it and first touches of fresh memory (page faults) at about a fourteenth",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "106.6 ms a run against 117 ms in the same minute",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "Alone on an idle host the bench ran 0.91-0.94 million requests a second before this round",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "`window-long-context` went from 311.2M to 303.7M instructions",
        "cargo bench --bench engine",
        "src/engine/fast.rs",
        "Mixed windows read every decoder's waste at every leapt",
    ),
    (
        "`hybrid-capacity` ran 225.50M and 225.47M instructions",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "\"hybrid-capacity\"",
    ),
    (
        "of `policies` 262.64M and 262.69M",
        "kvsim sweep scenarios/policies.toml",
        "scenarios/policies.toml",
        "\"cache.policy\" = [\"contiguous\", \"paged\", \"sliding\", \"quantized\"]",
    ),
    (
        "of `multi-turn-creep` 55.17M and 54.90M",
        "kvsim sweep scenarios/policies.toml",
        "scenarios/multi-turn-creep.toml",
        "name = \"multi-turn-creep\"",
    ),
    (
        "of `mooncake-replay` 64.44M and 64.29M",
        "kvsim sweep scenarios/policies.toml",
        "scenarios/mooncake-replay.toml",
        "name = \"mooncake-replay\"",
    ),
    (
        "with up to 1.2 % more or fewer instructions than before",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `window-long-context` (`-- bundled`), instructions | 333.5M | **310.6M** (7 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "\"window-long-context\"",
    ),
    (
        "| `disaggregated/link-bound` (`benches/disagg.toml` on a 2 GB/s link, 98.7 % busy; 20,000 requests), instructions | 2,994M | **1,264M** (2.4x fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "\"link-bound\" => &[\"deployment.link.gbps=2\".into(), \"requests=20000\".into()]",
    ),
    (
        "| same, requests/s | ~101,000-115,000 | **~174,000-320,000** (loaded machine) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "\"link-bound\"",
    ),
    (
        "| `disaggregated/disaggregated`, instructions | 2,203M | **2,127M** (3.4 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"disaggregated\", \"colocated\", \"link-bound\"]",
    ),
    (
        "219-237 ms to 132-137 ms of CPU",
        "kvsim run scenarios/quickstart.toml",
        "scenarios/hybrid-capacity.toml",
        "arrival = { kind = \"closed\", users = 64, think_s = 1.0 }",
    ),
    (
        "| `kvsim plan scenarios/disagg-70b-long-prompts.toml`, instructions | 23.58G | **7.83G** (3.0x fewer) |",
        "kvsim plan scenarios/disagg-70b-long-prompts.toml",
        "src/engine/cluster.rs",
        "enum Reach {",
    ),
    (
        "| `kvsim plan scenarios/disagg-70b-short-prompts.toml`, instructions | 21.44G | **11.48G** (1.9x fewer) |",
        "kvsim plan scenarios/disagg-70b-short-prompts.toml",
        "src/engine/cluster.rs",
        "enum Reach {",
    ),
    (
        "| `kvsim plan scenarios/plan-llama70b.toml`, instructions | 47.20G | **35.23G** (25 % fewer) |",
        "kvsim plan scenarios/plan-llama70b.toml",
        "src/engine/cluster.rs",
        "enum Reach {",
    ),
    (
        "| `kvsim plan scenarios/disagg-70b-long-prompts.toml --crossover`, CPU time | 22.5-31.2 s | **7.0-8.0 s** |",
        "kvsim plan scenarios/disagg-70b-long-prompts.toml --crossover",
        "src/engine/cluster.rs",
        "enum Reach {",
    ),
    (
        "| `policies`, instructions | 362.4M | **349.8M** (3.5 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `window-long-context`, instructions | 355.9M | **333.5M** (6.3 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "The other bundled scenarios measured run 0.2 % to 1.2 % fewer instructions (`mooncake-replay` the most; `multi-turn-tiers` was not measured).",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "for Gemma-3's mixed windows in `window-long-context`, its waste read decoder by decoder (a fifth of that scenario's instructions).",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "a clean `cargo build --release` took 159 s with it and 125 s without, and the first command 2 min 26 s (272 s of CPU) without the feature and 2 min 32 s (285 s) with it.",
        "cargo run --release -- sweep scenarios/policies.toml",
        "Cargo.toml",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ),
    (
        "| `multi-turn-tiers` (every setup), instructions | 37.00G | **24.56G** (33.6 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `multi-turn-tiers`, requests/s (three alternations) | ~13,600-23,100 | **~22,900-27,500** |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| a 128 GB host tier (`multi_turn_tiers/host`), requests/s | ~20,800-21,200 | **~32,300-32,500** (1.5x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn multi_turn_tiers(",
    ),
    (
        "| host 32 GB and SSD 1 TB (`multi_turn_tiers/host+ssd`), requests/s | ~18,600-19,000 | **~27,500-28,000** (1.5x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn multi_turn_tiers(",
    ),
    (
        "| `mooncake-replay`, instructions | 66.7M | 64.8M (2.8 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "The other bundled scenarios run 0.2 % to 0.8 % more instructions (`hybrid-capacity` the most):",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "9def950 runs the disaggregated bench alone at ~434,000-446,000 requests a second):",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| `kvsim run benches/fleet-1m.toml`, the whole process, instructions | 6,586M | 6,451M (2.1 % fewer) |",
        "cargo bench --bench output",
        "benches/output.rs",
        "fn whole_process(",
    ),
    (
        "The other bundled scenarios run 1.0 % (`long-context-crash`) to 4.6 % (`window-long-context`) fewer instructions, but `multi-turn-tiers`, which runs 0.4 % more:",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `disaggregated/disaggregated`, instructions | 2,283M | **2,118M** (7.3 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| `disaggregated/disaggregated` alone (`--bench \"disaggregated$\"`), requests/s | ~865,000-930,000 | **~911,000-938,000** |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| `disaggregated/disaggregated` after the colocated runs (`--bench disaggregated`) | ~665,000-685,000 | **~774,000-797,000** |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| `disaggregated_long_prompts` in the same group | ~346,000-350,000 | ~356,000-360,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated_long_prompts(",
    ),
    (
        "| `disagg-70b-long-prompts`, instructions | 41.0M | 39.2M (4.5 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `quickstart`, instructions | 39.5M | 37.9M (4.0 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `multi-turn-creep`, instructions | 63.6M | 60.3M (5.1 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `policies`, instructions | 370.7M | 361.5M (2.5 % fewer) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "Alone, the disaggregated bench runs at 0.9-1.0 million requests a second (1,007,000 in one run outside this series), not reliably above a million.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| `multi-turn-tiers` (`KVSIM_BUNDLED=multi-turn-tiers`, medians of 3) | ~11,900 | **~24,700** (2.1x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `mooncake-replay` | ~45,900 | **~114,600** (2.5x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| prefix caching, no tier (`multi_turn_tiers/hbm-only`) | ~62,400 | **~110,500** (1.8x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn multi_turn_tiers(",
    ),
    (
        "| a 128 GB host tier (`multi_turn_tiers/host`) | ~28,900 | **~47,600** (1.6x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn multi_turn_tiers(",
    ),
    (
        "| host 32 GB and SSD 1 TB (`multi_turn_tiers/host+ssd`) | ~25,200 | **~38,200** (1.5x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn multi_turn_tiers(",
    ),
    (
        "`disaggregated_long_prompts` stayed at ~355,000.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated_long_prompts(",
    ),
    (
        "`disaggregated/disaggregated` went from ~700,000 to ~731,000 requests a",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| `batch-size-wall` | ~45,900 | **~170,000** (3.7x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "(`batch-size-wall`'s medians ranged from ~110,000 to ~170,000 from run to",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `long-context-crash` | ~111,700 | **~414,000** (3.7x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `quickstart` | ~1,521,000 | **~1,658,000** (1.09x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `plan-llama70b` | ~1,352,000 | **~1,492,000** (1.10x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `llama70b-long-context` | ~1,301,000 | **~1,392,000** (1.07x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `multi-turn-creep` | ~858,000 | **~1,100,000** |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `policies` | ~638,000 | **~990,000** (1.55x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `hybrid-capacity` | ~647,000 | ~655,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `disagg-70b-short-prompts` | ~535,000 | ~560,000 (1.05x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `disagg-70b-long-prompts` | ~353,000 | ~369,000 (1.05x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `long-context-crash` | ~116,000 | ~125,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `mooncake-replay` | ~87,000 | ~95,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `window-long-context` | ~85,000 | **~97,000** (1.14x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `batch-size-wall` | ~46,900 | ~47,100 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `multi-turn-tiers` | ~12,900 | ~12,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "~999,000-1,007,000 (three medians of 5; ~929,000-960,000 without the",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "went from ~987,000-1,024,000 to ~1,016,000-1,056,000",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "(`KVSIM_BUNDLED_POINTS=14,18,10,6,2`) went from ~296,000 to ~681,000",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `disaggregated/colocated` | ~1,523,000 | ~1,590,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| `disaggregated/disaggregated` | ~682,000 | ~708,000 (1.04x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| `disaggregated_long_prompts` | ~351,000 | ~353,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated_long_prompts(",
    ),
    (
        "| **0.11 s** (the balanced setting: 380 KB of charts against 383 KB) |",
        "cargo run --release -- sweep scenarios/policies.toml",
        "src/report/plot/mod.rs",
        "png::Compression::Balanced",
    ),
    (
        "replica's 100,000-row timeline and thin it, went from 4.82 s to 2.51 s of",
        "kvsim plan scenarios/plan-llama70b.toml",
        "src/engine/mod.rs",
        "pub fn simulate_summary<",
    ),
    (
        "| `quickstart` | ~1,637,000 | ~1,619,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `plan-llama70b` | ~1,443,000 | ~1,442,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `llama70b-long-context` | ~1,341,000 | ~1,333,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `multi-turn-creep` | ~1,026,000 | **~1,092,000** (1.06x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `policies` | ~562,000 | **~671,000** (1.19x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `hybrid-capacity` | ~637,000 | ~650,000 (1.02x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `disagg-70b-short-prompts` | ~506,000 | ~530,000 (1.05x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `disagg-70b-long-prompts` | ~339,000 | ~352,000 (1.04x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `long-context-crash` | ~124,000 | ~126,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `mooncake-replay` | ~94,000 | ~94,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `window-long-context` | ~84,000 | ~84,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `batch-size-wall` | ~45,800 | ~47,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `multi-turn-tiers` | ~15,900 | ~16,200 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `disaggregated/colocated` | ~1,518,000 | ~1,667,000 (1.10x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| `disaggregated/disaggregated` | ~701,000 | ~701,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| `disaggregated_long_prompts` | ~334,000 | ~354,000 (1.06x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated_long_prompts(",
    ),
    (
        "rounding ~3-5 % on `disagg-70b-long-prompts`, `hybrid-capacity`,",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_BUNDLED",
    ),
    (
        "half its rate above there (~48,000, either build). These are medians of",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_BUNDLED",
    ),
    (
        "Qwen2.5-72B point at 16 users (`KVSIM_BUNDLED_POINTS=6`) runs at ~290,000",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "KVSIM_BUNDLED_POINTS",
    ),
    (
        "gain (~1.48M to ~1.54M, the two builds alone; the integer percentiles",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "195 ms and 23,100 page faults either way); repeated runs fault fewer pages",
        "cargo bench --bench engine",
        "src/engine/mod.rs",
        "fn presized(",
    ),
    (
        "| `quickstart` | ~1,462,000 | ~1,473,000 | **~1,627,000** (1.10x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `plan-llama70b` | ~1,120,000 | ~1,225,000 | **~1,428,000** (1.17x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `llama70b-long-context` | ~927,000 | ~1,161,000 | **~1,313,000** (1.13x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `multi-turn-creep` | ~588,000 | ~839,000 | **~1,042,000** (1.24x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `policies` | ~367,000 | ~490,000 | ~561,000 (1.14x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `disagg-70b-short-prompts` | ~379,000 | ~482,000 | ~509,000 (1.06x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `disagg-70b-long-prompts` | ~145,000 | ~283,000 | ~330,000 (1.17x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `hybrid-capacity` | ~196,000 | ~266,000 | **~624,000** (2.35x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `long-context-crash` (contiguous, growing in place) | ~123,000 | ~118,000 | ~121,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `mooncake-replay` (prefix caching) | ~64,900 | ~87,300 | ~93,000 (1.07x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `window-long-context` | ~35,700 | ~65,900 | ~86,200 (1.31x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `batch-size-wall` (contiguous, growing in place) | ~44,000 | ~45,300 | ~45,300 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| `multi-turn-tiers` (about 5 s a run; 13,000-16,000 from run to run) | ~10,900 | ~16,000 | ~16,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "Four scenarios now reach a million. The rest take",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "against f3bd677 the checks for it cost about 3 %, and the",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "falls short there of 1M requests/s by a factor of about 3 (its",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "taken quickstart, `plan-llama70b` and `llama70b-long-context` from ~1,341,000, ~908,000 and ~637,000 (commit d231e79)",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "and `mooncake-replay` from ~52,900 by running prefix caching on the fast path.",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn bundled(",
    ),
    (
        "| 6.4 MiB |",
        "cargo bench --bench fleet",
        "benches/fleet.rs",
        "fn main(",
    ),
    (
        "| 6.8 MiB |",
        "cargo bench --bench fleet",
        "benches/fleet.rs",
        "fn main(",
    ),
    (
        "| ~1,310,000 | ~1,453,000 | ~1,545,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| ~637,000 | ~635,000 | ~633,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated(",
    ),
    (
        "| ~121,000 | ~281,000 | **~334,000** (1.19x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn disaggregated_long_prompts(",
    ),
    (
        "| ~596,000 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn multi_turn_fast(",
    ),
    (
        "| ~51,000 | **~81,000** (1.6x) |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn multi_turn_tiers(",
    ),
    (
        "| ~33,700 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn multi_turn_tiers(",
    ),
    (
        "| ~30,700 |",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn multi_turn_tiers(",
    ),
    (
        "(under 0.1 s of simulation once built)",
        "cargo run --release -- sweep scenarios/policies.toml",
        "src/cli/sweep.rs",
        "of wall time",
    ),
    (
        "7.7 ms, **~2,600,000 req/s**",
        "cargo bench --bench engine -- saturated_chat",
        "benches/engine.rs",
        "fn saturated_chat(",
    ),
    (
        "105 ms, ~190,000 req/s (`saturated_chat_reference`)",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn saturated_chat_reference(",
    ),
    (
        "0.54 s, **~1,840,000 req/s**",
        "/usr/bin/time -v target/release/examples/scale 10000000",
        "examples/scale.rs",
        "simulate(",
    ),
    (
        "5.5 s, ~182,000 req/s",
        "/usr/bin/time -v target/release/examples/scale 1000000 reference",
        "examples/scale.rs",
        "simulate_reference(",
    ),
    (
        "Measured: 1M requests peak at 142 MiB, 10M at 1.34",
        "/usr/bin/time -v target/release/examples/scale 10000000",
        "examples/scale.rs",
        "fn main()",
    ),
    (
        "runs the 64 points in 389.5 ms on one thread and 186.3 ms on two",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn sweep_64(",
    ),
    (
        "`saturated_chat/prefix-caching` (every full block",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"paged\", \"quantized\", \"prefix-caching\"]",
    ),
    (
        "named and published) runs at ~825,000 req/s against ~150,000 on the",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn saturated_chat_reference(",
    ),
    (
        "(the paged run without prefix caching: ~2,800,000)",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "fn saturated_chat(",
    ),
    (
        "`saturated_chat/contiguous` went from ~151,000 to ~806,000 req/s",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"paged\", \"contiguous\", \"sliding\", \"quantized\", \"prefix-caching\"]",
    ),
    (
        "`saturated_chat/sliding` went from ~141,000 to ~560,000 req/s",
        "cargo bench --bench engine",
        "benches/engine.rs",
        "args = [\"paged\", \"contiguous\", \"sliding\", \"quantized\", \"prefix-caching\"]",
    ),
    (
        "| wall time, both cores (`whole_process/all-cores`) | 5.04 s | **0.74 s** (6.8x less) |",
        "cargo bench --bench output",
        "benches/output.rs",
        "fn whole_process(",
    ),
    (
        "| wall time, one core (`whole_process/one-core`: `taskset -c 0`, one rayon thread) | 4.94 s | **0.81 s** (6.1x less) |",
        "cargo bench --bench output",
        "benches/output.rs",
        "\"one-core\"",
    ),
    (
        "| peak RSS | 811 MB | 155 MB |",
        "cargo bench --bench output",
        "benches/output.rs",
        "fn whole_process(",
    ),
    (
        "| `requests.csv`, 1M rows, 139 MB | ~110 MB/s | **~1.0 GB/s** (~9x) | ~1.9 GB/s on idle cores |",
        "cargo bench --bench output",
        "benches/output.rs",
        "fn writer_before(",
    ),
    (
        "| `timeline.csv`, 782,856 rows, 75 MB | ~115 MB/s | ~0.9 GB/s (~8x) | ~1.7 GB/s on idle cores |",
        "cargo bench --bench output",
        "benches/output.rs",
        "fn writer<",
    ),
    (
        "0.36 s (45 MB, ~126 MB/s of Parquet)",
        "cargo bench --bench output",
        "benches/output.rs",
        "fn writer_parquet(",
    ),
    (
        "`writer_to_file` adds the kernel's copy into the page cache: ~0.6-0.9 GB/s.",
        "cargo bench --bench output",
        "benches/output.rs",
        "fn writer_to_file<",
    ),
    (
        "Before (the straightforward engine, 200k requests): the engine loop 50 %",
        "/usr/bin/time -v target/release/examples/scale 1000000 reference",
        "examples/scale.rs",
        "reference",
    ),
];

/// The sources of every test: tests/ and src/ (unit tests).
fn test_sources() -> String {
    let mut text = String::new();
    let mut dirs = vec![root().join("tests"), root().join("src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    text
}

/// The README's table of a run's files lists the columns of `requests.csv`
/// and `timeline.csv` as the writers write them.
#[test]
fn readme_lists_the_csv_columns() {
    let header = |csv: Vec<u8>| String::from_utf8(csv).unwrap().trim_end().to_string();
    let requests = header(kvsim::report::requests_csv(&[]).unwrap());
    says(&format!("| `requests.csv` | `{requests}` (times in s;"));
    let timeline = header(kvsim::report::timeline_csv(&[]).unwrap());
    says(&format!(
        "| `timeline.csv` | `{timeline}`, one row per engine step"
    ));
}

#[test]
fn readme_claims_name_their_tests() {
    let sources = test_sources();
    for (fragment, test) in CLAIMS {
        documents(fragment);
        assert!(
            sources.contains(&format!("fn {test}(")),
            "no test {test} (for the README's \"{fragment}\")"
        );
    }
    let shown = shown_commands();
    for (fragment, command, file, text) in TIMINGS {
        documents(fragment);
        let command = command.trim_start_matches("$ ");
        assert!(
            shown.iter().any(|s| s.command == command),
            "the README no longer shows `{command}`, which measures \"{fragment}\""
        );
        let body = std::fs::read_to_string(root().join(file)).unwrap();
        assert!(
            body.contains(text),
            "{file} lacks {text} (measures \"{fragment}\")"
        );
    }
}

/// `kvsim run scenarios/quickstart.toml` prints the table the README shows,
/// line for line (its last line, with the wall time, up to that time).
#[test]
fn quickstart_output_is_shown() {
    says("`cargo run --release -- run scenarios/quickstart.toml` prints:");
    let text = readme();
    let block: Vec<&str> = text
        .split("`cargo run --release -- run scenarios/quickstart.toml` prints:")
        .nth(1)
        .unwrap()
        .split("```")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .collect();
    // Written where the README says, but in a sandbox: `output/quickstart`.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("output/quickstart");
    let result = Command::cargo_bin("kvsim")
        .unwrap()
        .current_dir(dir.path())
        .args([
            "run",
            root().join("scenarios/quickstart.toml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(result.status.success());
    assert!(out.join("summary.json").exists());
    let stdout = String::from_utf8(result.stdout).unwrap();
    let got: Vec<&str> = stdout.lines().map(str::trim_end).collect();
    let (last_want, table_want) = block.split_last().unwrap();
    let (last_got, table_got) = got.split_last().unwrap();
    assert_eq!(table_got, table_want, "the quickstart table changed");
    let wall = |l: &str| {
        let (head, tail) = l.split_once(" in ").unwrap();
        let (_, tail) = tail.split_once(" s of wall time").unwrap();
        format!("{head}{tail}")
    };
    assert_eq!(wall(last_got), wall(last_want));
}

/// The Speed section's workload: the batch at its cap, its mean at 20,000
/// requests and at a million, and the steps per request.
#[test]
fn speed_workload_claims() {
    says(
        "faster than the GPU serves, so the batch sits at its 256 cap (mean 232 at 20,000 requests, 255 at a million)",
    );
    says("about 0.8 steps per request");
    for (requests, mean) in [(20_000, "232"), (1_000_000, "255")] {
        let dir = tempfile::tempdir().unwrap();
        let n = format!("requests={requests}");
        run(&[
            "run",
            "benches/saturated-chat.toml",
            "--set",
            &n,
            "--out",
            dir.path().to_str().unwrap(),
        ]);
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("summary.json")).unwrap(),
        )
        .unwrap();
        let m = &summary["metrics"];
        assert_eq!(m["batch_peak"], 256, "{requests} requests");
        assert_eq!(
            format!("{:.0}", m["batch_mean"].as_f64().unwrap()),
            mean,
            "{requests} requests"
        );
        if requests == 1_000_000 {
            // "about 0.8 steps per request", at the scale the profile ran.
            let steps = m["steps"].as_f64().unwrap() / requests as f64;
            assert_eq!(format!("{steps:.1}"), "0.8");
        }
    }
}

/// The toolchain the README asks for is the one Cargo.toml declares.
#[test]
fn requirements_claim() {
    says("Requirements: a Rust toolchain (1.85+).");
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(cargo.contains("rust-version = \"1.85\""));
}

/// Every line of the ```text block after `intro` in the README is a line
/// `what` printed (whitespace runs collapsed).
fn shown_rows(what: &str, stdout: &str, intro: &str) {
    let flat = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let printed: Vec<String> = stdout.lines().map(flat).collect();
    let full = readme().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        full.contains(&flat(intro)),
        "the README no longer says {intro}"
    );
    let text = readme();
    let head = intro.split_whitespace().last().unwrap();
    let block = text
        .split(head)
        .find_map(|rest| {
            let (before, after) = rest.split_once("```text")?;
            before.trim().is_empty().then_some(after)
        })
        .and_then(|after| after.split("```").next())
        .unwrap_or_else(|| panic!("no ```text block after {intro}"));
    let mut n = 0;
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        n += 1;
        assert!(
            printed.contains(&flat(line)),
            "{what} no longer prints the README's row:\n{line}\n{stdout}"
        );
    }
    assert!(n >= 5, "{n} rows shown after {intro}");
}

/// The README's plan example: its candidates, its probes, and its rows as
/// printed.
fn plan_example(stdout: &str, plan_csv: &Path) {
    let intro = "first rows (`kvsim plan scenarios/plan-llama70b.toml`: 165 probes plus the cluster checks;";
    says(
        "Llama-3.1-70B chat at 20 req/s, 18 candidates (A100-80GB / H100 / H200 × tp 2, 4, 8 × bf16 / fp8 KV)",
    );
    says(intro);
    let rows = csv::Reader::from_path(plan_csv).unwrap().records().count();
    assert_eq!(rows, 18, "candidates in {}", plan_csv.display());
    assert!(stdout.contains("18 candidates, 165 probes in "), "{stdout}");
    let flat = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let printed: Vec<String> = stdout.lines().map(flat).collect();
    // The ```text block after the intro.
    let full = readme();
    let block = full
        .split("165 probes plus the cluster checks;")
        .nth(1)
        .unwrap()
        .split("```")
        .nth(1)
        .unwrap();
    let mut n = 0;
    for line in block.lines().skip(1) {
        n += 1;
        assert!(
            printed.contains(&flat(line)),
            "the plan no longer prints the README's row:\n{line}\n{stdout}"
        );
    }
    assert!(n >= 5, "{n} plan rows in the README");
}

/// The README's table of engine steps per request: each bundled scenario
/// run as `cargo bench --bench engine -- bundled` runs it (every sweep
/// point in turn, each priced by its roofline), the sum of its runs'
/// `steps` over the sum of their `requests`, and the nanoseconds a step
/// would have at a million requests a second.
#[test]
fn steps_per_request_table() {
    use kvsim::engine::{Limits, simulate_summary};
    use kvsim::hardware::cost::RooflineCost;
    let thousands = |n: u64| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    let mut rows = Vec::new();
    for path in crate::common::bundled_scenarios() {
        let base = kvsim::scenario::read_table(&path).expect("a bundled scenario");
        let grid = kvsim::sweep::grid_of(&base, &path).expect("its grid");
        let (mut requests, mut steps, mut name) = (0, 0, String::new());
        // A scenario without a sweep is a grid of one point with no axes.
        for p in 0..grid.len() {
            let s = kvsim::sweep::point_scenario(&base, &path, &grid.point(p)).expect("a point");
            let cost = RooflineCost::new(&s.model, &s.deployment, &s.deployment.efficiency);
            let m = simulate_summary(&s, s.seed, cost, &Limits::default()).expect("runs");
            requests += m.requests;
            steps += m.steps;
            name = s.name.clone();
        }
        let per_request = steps as f64 / requests as f64;
        let row = format!(
            "| `{name}` | {} | {} | {} | {per_request:.1} | {:.1} |",
            grid.len(),
            thousands(requests),
            thousands(steps),
            1000.0 / per_request
        );
        rows.push((per_request, row));
    }
    assert!(rows.len() >= 13, "{} bundled scenarios", rows.len());
    // Every scenario, in order of steps a request.
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rows: Vec<String> = rows.into_iter().map(|(_, row)| row).collect();
    says(&rows.join(" "));
}
