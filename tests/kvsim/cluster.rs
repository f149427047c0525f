//! Clusters: replicas behind a router. Conservation, determinism, and what
//! each router is for.

use std::path::Path;

use kvsim::engine::{RunOutput, simulate};
use kvsim::hardware::cost::RooflineCost;
use kvsim::metrics::Outcome;
use kvsim::scenario::Scenario;

fn run(text: &str, dir: &Path, overrides: &[&str]) -> RunOutput {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let s = Scenario::from_toml(text, &dir.join("cluster.toml"), &overrides).unwrap();
    let d = &s.deployment;
    simulate(&s, s.seed, RooflineCost::new(&s.model, d, &d.efficiency)).unwrap()
}

/// Chat traffic whose prompts all start with one of 400 long system prompts:
/// more shared prefixes than one replica's KV cache holds.
const SHARED_PREFIXES: &str = r#"
name = "prefixes"
seed = 4
requests = 2000

[model]
preset = "llama-3.1-8b"

[hardware]
gpu = "h100-sxm"
replicas = 4

[traffic]
arrival = { kind = "poisson", rate = 20.0 }
prompt = { kind = "fixed", value = 3500 }
output = { kind = "lognormal", mean = 200, sigma = 0.8, min = 1, max = 2048 }
prefix = { count = 400, tokens = 3000, fraction = 1.0 }

[cache]
prefix_caching = true
"#;

#[test]
fn every_request_ends_once_on_exactly_one_replica() {
    let dir = tempfile::tempdir().unwrap();
    for router in [
        "round-robin",
        "least-outstanding",
        "least-kv",
        "prefix-aware",
    ] {
        let out = run(
            SHARED_PREFIXES,
            dir.path(),
            &[&format!("hardware.router=\"{router}\"")],
        );
        let c = out.cluster.as_ref().expect("a cluster run");
        assert_eq!(out.records.len(), 2000, "{router}");
        assert_eq!(c.replica_of_request.len(), 2000);
        assert_eq!(c.replicas.len(), 4);
        // Conservation: per-replica counts add up to the whole, outcome by
        // outcome; ids are the global arrival order.
        let per: u64 = c.replicas.iter().map(|r| r.requests).sum();
        assert_eq!(per, 2000);
        let ok: u64 = c.replicas.iter().map(|r| r.ok).sum();
        assert_eq!(ok, out.summary.ok);
        assert!(out.records.iter().all(|r| r.outcome.is_some()));
        for (k, r) in out.records.iter().enumerate() {
            assert_eq!(r.id, k as u64);
        }
        assert!(out.records.windows(2).all(|w| w[0].arrival <= w[1].arrival));
        assert!(c.replica_of_request.iter().all(|&r| r < 4));
        assert_eq!(c.replica_of_row.len(), out.timeline.len());
    }
}

#[test]
fn round_robin_deals_requests_in_turn_and_runs_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(SHARED_PREFIXES, dir.path(), &[]);
    let c = a.cluster.as_ref().unwrap();
    for (k, &r) in c.replica_of_request.iter().enumerate() {
        assert_eq!(r as usize, k % 4);
    }
    let b = run(SHARED_PREFIXES, dir.path(), &[]);
    assert_eq!(a.records, b.records);
    assert_eq!(a.summary, b.summary);
}

#[test]
fn prefix_aware_routing_beats_round_robin_on_shared_prefixes() {
    // Round-robin sprays each system prompt over all four replicas, whose
    // caches then hold a quarter of the prefixes each and keep evicting;
    // routing by prefix gives each replica its own quarter of them.
    let dir = tempfile::tempdir().unwrap();
    let rr = run(SHARED_PREFIXES, dir.path(), &[]).summary;
    let pa = run(
        SHARED_PREFIXES,
        dir.path(),
        &["hardware.router=\"prefix-aware\""],
    )
    .summary;
    assert!(
        pa.prefix_hit_rate > 2.0 * rr.prefix_hit_rate,
        "hit rate {} vs {}",
        pa.prefix_hit_rate,
        rr.prefix_hit_rate
    );
    assert!(pa.ttft_p99.unwrap() < rr.ttft_p99.unwrap());
    assert!(pa.throughput_tok_s >= rr.throughput_tok_s * 0.99);
}

#[test]
fn least_kv_routing_avoids_the_oom_round_robin_hits_on_a_skewed_workload() {
    // Every other request is a 25k-token document with a 5k-token answer:
    // round-robin sends all eight to replica 0, whose KV (144k tokens on an
    // A100-40GB) cannot hold the five it admits once they grow; routing by
    // KV in use splits them four and four.
    let dir = tempfile::tempdir().unwrap();
    let mut trace = String::from("arrival_s,prompt_tokens,output_tokens\n");
    for i in 0..16 {
        let (p, o) = if i % 2 == 0 {
            (25_000, 5_000)
        } else {
            (200, 200)
        };
        trace.push_str(&format!("{i}.0,{p},{o}\n"));
    }
    std::fs::write(dir.path().join("skew.csv"), trace).unwrap();
    let text = r#"
name = "skew"
seed = 1

[model]
preset = "llama-3.1-8b"

[hardware]
gpu = "a100-40gb"
replicas = 2

[traffic]
arrival = { kind = "trace", path = "skew.csv" }

[scheduler]
on_oom = "reject"
"#;
    let rr = run(text, dir.path(), &[]);
    let kv = run(text, dir.path(), &["hardware.router=\"least-kv\""]);
    assert!(rr.summary.oom > 0, "round-robin: {:?}", rr.summary.oom);
    assert_eq!(kv.summary.oom, 0);
    assert!(kv.records.iter().all(|r| r.outcome == Some(Outcome::Ok)));
    // Round-robin put every long request on replica 0.
    let c = rr.cluster.as_ref().unwrap();
    for (k, r) in rr.records.iter().enumerate() {
        if r.prompt_tokens == 25_000 {
            assert_eq!(c.replica_of_request[k], 0);
        }
    }
}

#[test]
fn clusters_need_open_loop_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let text = SHARED_PREFIXES.replace(
        "{ kind = \"poisson\", rate = 20.0 }",
        "{ kind = \"closed\", users = 8 }",
    );
    let e = Scenario::from_toml(&text, &dir.path().join("c.toml"), &[]).unwrap_err();
    assert!(e.to_string().contains("hardware.replicas"), "{e}");
    let bad = SHARED_PREFIXES.replace("replicas = 4", "replicas = 4\nrouter = \"random\"");
    let e = Scenario::from_toml(&bad, &dir.path().join("c.toml"), &[]).unwrap_err();
    assert!(e.to_string().contains("router"), "{e}");
}

#[test]
fn replicas_and_router_are_sweep_axes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.toml");
    let text = SHARED_PREFIXES.replace("requests = 2000", "requests = 300")
        + "\n[sweep]\n\"hardware.replicas\" = [1, 2, 4]\n\"hardware.router\" = [\"round-robin\", \"prefix-aware\"]\n";
    std::fs::write(&path, text).unwrap();
    let out = assert_cmd::Command::cargo_bin("kvsim")
        .unwrap()
        .args(["sweep", path.to_str().unwrap(), "--no-plots", "--out"])
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(dir.path().join("o/sweep.csv")).unwrap();
    assert!(
        csv.starts_with("point,hardware.replicas,hardware.router,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 6);
}
