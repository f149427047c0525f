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

#[test]
fn quickstart_claims() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    run(&["run", "scenarios/quickstart.toml", "--out", out]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
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
}

#[test]
fn policies_claims() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    run(&[
        "sweep",
        "scenarios/policies.toml",
        "--out",
        out,
        "--no-plots",
    ]);
    let mut sweep = csv::Reader::from_path(dir.path().join("sweep.csv")).unwrap();
    let headers = sweep.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (users, policy, used) = (
        col("traffic.arrival.users"),
        col("cache.policy"),
        col("waste_used"),
    );
    let rows: Vec<csv::StringRecord> = sweep.records().map(|r| r.unwrap()).collect();
    let used_at_96 = |p: &str| -> f64 {
        let row = rows
            .iter()
            .find(|r| &r[users] == "96" && &r[policy] == p)
            .expect("a 96-user row");
        row[used].parse().unwrap()
    };
    says("leave only 30 % of the KV budget holding token states");
    assert_eq!(format!("{:.0}", used_at_96("contiguous") * 100.0), "30");
    says("Paged allocation stores tokens in 93 % of the same memory");
    assert_eq!(format!("{:.0}", used_at_96("paged") * 100.0), "93");
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
