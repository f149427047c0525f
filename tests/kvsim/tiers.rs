//! KV tiers below HBM (issue 17): hand-computed host-tier hits with their
//! exact transfer times, FIFO links, visibility of stores in flight, the
//! layer-wise pipeline, block conservation across tiers, determinism and the
//! refusals of bad tier keys.

use kvsim::engine::{RunOutput, simulate};
use kvsim::hardware::cost::FixedCost;
use kvsim::metrics::{Outcome, RequestRecord};
use kvsim::scenario::Scenario;
use kvsim::units::SimDuration;

use super::common::{BIG_GPU, TINY_MODEL};

/// One block of the tiny model: 16 tokens × 256 B.
const BLOCK_BYTES: u64 = 16 * 256;

/// Every step costs 10 ms plus 1 us per prompt token.
fn cost() -> FixedCost {
    FixedCost {
        per_step: SimDuration::from_nanos(10_000_000),
        per_prefill_token: SimDuration::from_nanos(1_000),
        per_swap_kib: SimDuration::ZERO,
    }
}

/// A Mooncake-format line: `blocks` hash ids `0..blocks` (one 16-token
/// block each) plus `extra` fresh ids, at `ms`.
fn line(ms: f64, blocks: u32, extra: &[u32], output: u32) -> String {
    let ids: Vec<String> = (0..blocks)
        .chain(extra.iter().copied())
        .map(|i| i.to_string())
        .collect();
    let tokens = 16 * (blocks + extra.len() as u32);
    format!(
        "{{\"timestamp\": {ms}, \"input_length\": {tokens}, \"output_length\": {output}, \
         \"hash_ids\": [{}]}}\n",
        ids.join(", ")
    )
}

/// Runs the tiny model (with `model` replacing its text) on a trace of
/// `lines` with `cache` TOML in `[cache]` (its tiers included) and PCIe at
/// `pcie_gbps` with `block_us` per block.
fn run_with(lines: &[String], cache: &str, pcie: (f64, f64), model: &str) -> RunOutput {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.jsonl"), lines.concat()).unwrap();
    let (gbps, block_us) = pcie;
    let text = format!(
        r#"
name = "tiers"
[traffic]
arrival = {{ kind = "trace", format = "mooncake", path = "t.jsonl", trace_block_tokens = 16 }}
[cache]
policy = "paged"
block_size = 16
{cache}
{model}
[hardware]
pcie_gbps = {gbps}
pcie_block_us = {block_us}
{BIG_GPU}
"#
    );
    let s = Scenario::from_toml(&text, &dir.path().join("s.toml"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    simulate(&s, s.seed, cost()).unwrap()
}

/// HBM prefix caching off (every hit comes from the tier), a 1 GB host
/// tier, PCIe at 51.2 GB/s with no per-block cost.
fn run(lines: &[String]) -> RunOutput {
    run_with(
        lines,
        &format!("prefix_caching = false\n{HOST}"),
        (51.2, 0.0),
        TINY_MODEL,
    )
}

const HOST: &str = "[[cache.tiers]]\nkind = \"host\"\ncapacity_gb = 1\n";

fn ttft_ns(r: &RequestRecord) -> u64 {
    r.ttft().unwrap().as_nanos()
}

/// 64 blocks of 4,096 B = 262,144 B at 51.2 GB/s: 262,144 × 1e9 / 51.2e9 =
/// 5,120 ns exactly.
const LOAD_64_NS: u64 = 5_120;

/// R1 with 64 blocks at 0, R2 with the same 64 blocks and one more at 1 s.
fn r1_r2() -> [String; 2] {
    [line(0.0, 64, &[], 1), line(1000.0, 64, &[9999], 1)]
}

#[test]
fn a_host_tier_hit_loads_in_exactly_its_transfer_time() {
    // R1 (1,024 tokens, one output token) prefills in one step: 10 ms +
    // 1,024 us. Its 64 blocks are written through over PCIe when that step
    // ends, in 5,120 ns. R2 arrives at 1 s with the same 1,024 tokens and 16
    // new ones: it loads 64 blocks (5,120 ns), then prefills 16 tokens in a
    // step of 10 ms + 16 us.
    let out = run(&r1_r2());
    let [r1, r2] = &out.records[..] else {
        panic!("two requests")
    };
    assert_eq!(ttft_ns(r1), 10_000_000 + 1_024_000);
    assert_eq!(r2.tier_hit_tokens, 1_024);
    assert_eq!(r2.hbm_hit_tokens, 0);
    assert_eq!(r2.load.as_nanos(), LOAD_64_NS);
    assert_eq!(ttft_ns(r2), LOAD_64_NS + 10_000_000 + 16_000);
    let m = &out.summary;
    assert_eq!(m.host_hit_tokens, 1_024);
    assert_eq!(
        m.host_stored_bytes,
        65 * BLOCK_BYTES,
        "R1's 64 blocks and R2's new one"
    );
    assert_eq!(m.host_loaded_bytes, 64 * BLOCK_BYTES);
    assert_eq!(m.recompute_avoided_tokens, 1_024);
    assert!((m.host_hit_rate - 1_024.0 / 2_064.0).abs() < 1e-12);
    // R1 loaded nothing, R2 5,120 ns: the 99th percentile interpolates.
    let p99 = m.ttft_load_p99.unwrap();
    assert!(
        (p99 - 0.99 * LOAD_64_NS as f64 / 1e9).abs() < 1e-15,
        "{p99}"
    );
}

#[test]
fn the_per_block_cost_adds_to_every_block_copied() {
    // 3.3 us per block: 64 × 3,300 = 211,200 ns more.
    let cache = format!("prefix_caching = false\n{HOST}");
    let out = run_with(&r1_r2(), &cache, (51.2, 3.3), TINY_MODEL);
    assert_eq!(out.records[1].load.as_nanos(), LOAD_64_NS + 211_200);
}

#[test]
fn a_store_in_flight_is_not_visible() {
    // R1's store ends 5,120 ns after its step does (at 11,024,000 ns); R2
    // arrives 1,000 ns after the step ends, finds nothing and recomputes
    // every token.
    let r2_at_ms = (11_024_000.0 + 1_000.0) / 1e6;
    let out = run(&[line(0.0, 64, &[], 1), line(r2_at_ms, 64, &[9999], 1)]);
    let r2 = &out.records[1];
    assert_eq!(r2.tier_hit_tokens, 0);
    assert_eq!(r2.load, SimDuration::ZERO);
    assert_eq!(ttft_ns(r2), 10_000_000 + 1_040_000);
}

#[test]
fn concurrent_loads_share_the_link_first_in_first_out() {
    // R2 and R3 arrive together with R1's content: R2's load ends at 5,120
    // ns, R3's queues behind it and ends at 10,240 ns.
    let out = run(&[
        line(0.0, 64, &[], 1),
        line(1000.0, 64, &[9998], 1),
        line(1000.0, 64, &[9999], 1),
    ]);
    assert_eq!(out.records[1].load.as_nanos(), LOAD_64_NS);
    assert_eq!(out.records[2].load.as_nanos(), 2 * LOAD_64_NS);
    // R2 steps as soon as its load ends; R3's load ends during that step,
    // so it prefills in the next one.
    assert_eq!(ttft_ns(&out.records[1]), LOAD_64_NS + 10_016_000);
    assert_eq!(ttft_ns(&out.records[2]), LOAD_64_NS + 2 * 10_016_000);
    assert!(out.records.iter().all(|r| r.outcome == Some(Outcome::Ok)));
}

#[test]
fn a_layerwise_load_is_pipelined_with_the_step_it_joins() {
    // Four layers: 1,024 B per token, 64 blocks of 16,384 B load in 20,480
    // ns. The step's compute is 10,016 us; pipelined over 4 layers it lasts
    // (T_l + 3 max(T_l, T_c) + T_c) / 4 = T_c + T_l / 4.
    let model = TINY_MODEL.replace("layers = 1", "layers = 4");
    let cache = format!("prefix_caching = false\nload = \"layerwise\"\n{HOST}");
    let out = run_with(&r1_r2(), &cache, (51.2, 0.0), &model);
    let r2 = &out.records[1];
    assert_eq!(r2.load.as_nanos(), 20_480);
    assert_eq!(ttft_ns(r2), 10_016_000 + 20_480 / 4);
}

#[test]
fn hbm_prefix_hits_come_before_the_tiers() {
    // With prefix caching R1's blocks are still cached in HBM when R2
    // arrives: every hit is HBM's, and nothing is loaded.
    let out = run_with(
        &r1_r2(),
        &format!("prefix_caching = true\n{HOST}"),
        (51.2, 0.0),
        TINY_MODEL,
    );
    let r2 = &out.records[1];
    assert_eq!((r2.hbm_hit_tokens, r2.tier_hit_tokens), (1_024, 0));
    assert_eq!(ttft_ns(r2), 10_016_000);
    assert_eq!(out.summary.host_loaded_bytes, 0);
}

#[test]
fn load_if_cheaper_recomputes_when_the_link_is_slower() {
    // At 1 MB/s the 262,144 B take 262 ms to load; prefilling the 1,024
    // tokens takes 11.024 ms, so Mooncake's rule recomputes them.
    let cache =
        |cheaper: bool| format!("prefix_caching = false\nload_if_cheaper = {cheaper}\n{HOST}");
    let slow = (0.001, 0.0);
    let loads = run_with(&r1_r2(), &cache(false), slow, TINY_MODEL);
    assert_eq!(ttft_ns(&loads.records[1]), 262_144_000 + 10_016_000);
    let declines = run_with(&r1_r2(), &cache(true), slow, TINY_MODEL);
    assert_eq!(ttft_ns(&declines.records[1]), 10_000_000 + 1_040_000);
    assert_eq!(declines.summary.loads_declined, 1);
    assert_eq!(declines.summary.host_hit_tokens, 0);
}

pub(crate) mod properties {
    use proptest::prelude::*;

    use super::super::common::{TINY_BPT, scenario_with, ten_ms};
    use kvsim::engine::simulate;
    use kvsim::metrics::Outcome;

    /// A random workload with content to reuse and random tiers below a small
    /// HBM: `(toml, budget_tokens)`.
    pub(crate) fn cases() -> impl Strategy<Value = (String, u64)> {
        (
            (0u64..(i64::MAX as u64), 1u32..80, any::<bool>(), 1u32..3),
            (any::<bool>(), 64u64..1500),
            (
                prop::sample::select(vec![0u32, 2, 8, 64]),
                prop::sample::select(vec![0u32, 4, 32]),
                prop::sample::select(vec![0u32, 8, 128]),
            ),
            (any::<bool>(), any::<bool>(), any::<bool>()),
            (any::<bool>(), any::<bool>()),
            prop::sample::select(vec!["reject", "preempt-recompute", "crash"]),
        )
            .prop_map(
                |(
                    (seed, requests, sessions, n),
                    (prefix_caching, budget),
                    (host, ssd, remote),
                    (host_evict, ssd_evict, remote_evict),
                    (layerwise, cheaper),
                    on_oom,
                )| {
                    let traffic = if sessions {
                        "session = { turns = { kind = \"uniform\", min = 1, max = 6 }, think_s = 0.02 }\n"
                            .to_string()
                    } else {
                        format!("n = {n}\nprefix = {{ count = 3, tokens = 48, fraction = 0.8 }}\n")
                    };
                    // Capacities in blocks of 16 tokens × 256 B = 4,096 B.
                    let gb = |blocks: u32| f64::from(blocks) * 4096.0 / 1e9;
                    let mut tiers = String::new();
                    let mut above = prefix_caching;
                    for (kind, blocks, evict) in [
                        ("host", host, host_evict),
                        ("ssd", ssd, ssd_evict),
                        ("remote", remote, remote_evict),
                    ] {
                        if blocks == 0 {
                            continue;
                        }
                        let store = if evict && above { "on-evict" } else { "write-through" };
                        tiers += &format!(
                            "[[cache.tiers]]\nkind = \"{kind}\"\ncapacity_gb = {}\nstore = \"{store}\"\n",
                            gb(blocks)
                        );
                        above = true;
                    }
                    if tiers.is_empty() {
                        tiers = format!("[[cache.tiers]]\nkind = \"host\"\ncapacity_gb = {}\n", gb(4));
                    }
                    let load = if layerwise { "layerwise" } else { "async" };
                    let toml = format!(
                        r#"
name = "tier-prop"
seed = {seed}
requests = {requests}
[traffic]
arrival = {{ kind = "poisson", rate = 40 }}
prompt = {{ kind = "uniform", min = 1, max = 200 }}
output = {{ kind = "uniform", min = 1, max = 60 }}
{traffic}
[scheduler]
on_oom = "{on_oom}"
max_batched_tokens = 512
restart_s = 0.5
[cache]
policy = "paged"
prefix_caching = {prefix_caching}
load = "{load}"
load_if_cheaper = {cheaper}
{tiers}
"#
                    );
                    (toml, budget)
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
            ..ProptestConfig::default()
        })]

        /// Every request ends once; every block a tier was sent is resident
        /// or was evicted (stores are never lost or doubled); no tier holds
        /// more than its capacity; hits never exceed what was looked up; and
        /// a run is a pure function of its scenario and seed.
        #[test]
        fn blocks_are_conserved_across_tiers((toml, budget) in cases()) {
            let s = scenario_with(&toml, budget, &[]);
            let out = simulate(&s, s.seed, ten_ms()).unwrap();
            let m = &out.summary;
            prop_assert_eq!(m.ok + m.oom + m.unservable + m.crashed + m.timeout, m.requests);
            prop_assert!(out.records.iter().all(|r| r.outcome.is_some()));
            let block = 16 * TINY_BPT;
            let plan = s.tiers.unwrap();
            let t = &out.stats.tiers;
            for (i, cfg) in plan.tiers.iter().enumerate() {
                let Some(cfg) = cfg else {
                    prop_assert_eq!(t.stored_bytes[i] + t.resident_blocks[i], 0);
                    continue;
                };
                prop_assert_eq!(t.stored_bytes[i] % block, 0);
                prop_assert_eq!(
                    t.stored_bytes[i] / block,
                    t.resident_blocks[i] + t.evicted_blocks[i],
                    "tier {}: stored = resident + evicted", i
                );
                prop_assert!(t.resident_blocks[i] <= cfg.capacity_bytes / block);
                prop_assert!(t.loaded_bytes[i] == t.hit_tokens[i] / 16 * block);
            }
            let hits = m.prefix_hit_tokens + t.hit_tokens_total();
            prop_assert!(hits <= out.stats.prefix_lookup_tokens);
            for r in out.records.iter().filter(|r| r.outcome == Some(Outcome::Ok)) {
                prop_assert!(r.hbm_hit_tokens + r.tier_hit_tokens < r.prompt_tokens.max(1));
            }
            let again = simulate(&s, s.seed, ten_ms()).unwrap();
            prop_assert_eq!(&again.summary, m);
            prop_assert_eq!(again.records, out.records);
        }
    }
}

/// `scenarios/multi-turn-tiers.toml`'s sweep with `threads`: its rows.
fn multi_turn_sweep(threads: &str) -> (String, Vec<std::collections::HashMap<String, String>>) {
    let dir = tempfile::tempdir().unwrap();
    let scenario =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/multi-turn-tiers.toml");
    let out = dir.path().join("o");
    assert_cmd::Command::cargo_bin("kvsim")
        .unwrap()
        .args([
            "sweep",
            scenario.to_str().unwrap(),
            "--no-plots",
            "--threads",
            threads,
        ])
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let text = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows = lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect();
    (text, rows)
}

#[test]
fn the_multi_turn_scenario_says_what_its_tiers_do() {
    // What scenarios/multi-turn-tiers.toml's header and the README say, and
    // the same table for any thread count.
    let (text, rows) = multi_turn_sweep("1");
    let (again, _) = multi_turn_sweep("2");
    assert_eq!(text, again, "sweep.csv depends on the thread count");
    let get = |setup: &str, metric: &str| -> f64 {
        let row = rows
            .iter()
            .find(|r| r["setup"] == setup)
            .unwrap_or_else(|| panic!("no setup {setup}"));
        row[metric].parse().unwrap()
    };
    let pct = |v: f64| format!("{:.1}", v * 100.0);
    assert_eq!(pct(get("1 GPU", "prefix_hit_rate")), "70.8");
    assert_eq!(pct(get("1 GPU + host", "total_hit_rate")), "95.9");
    assert_eq!(format!("{:.2}", get("1 GPU", "ttft_p99")), "0.49");
    assert_eq!(format!("{:.2}", get("1 GPU + host", "ttft_p99")), "0.06");
    assert!(get("1 GPU + host + SSD", "ssd_hit_rate") > 0.1);
    assert_eq!(
        format!("{:.2}", get("4 GPUs RR + host", "prefix_hit_rate")),
        "0.20"
    );
    assert_eq!(pct(get("4 GPUs RR + remote", "total_hit_rate")), "95.9");
    assert!(get("4 GPUs RR + remote", "remote_hit_rate") > 0.5);
    assert_eq!(
        format!("{:.2}", get("4 GPUs affinity + host", "prefix_hit_rate")),
        "0.75"
    );
    // The KV-aware router finds more in HBM than round-robin does.
    assert!(
        get("4 GPUs KV-aware + remote", "prefix_hit_rate")
            > 1.5 * get("4 GPUs RR + remote", "prefix_hit_rate")
    );
    // Host memory costs money: the deployment's price per hour grows with it.
    assert!(get("1 GPU + host", "usd_per_hour") > get("1 GPU", "usd_per_hour"));
}
