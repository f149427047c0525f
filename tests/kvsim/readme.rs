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
