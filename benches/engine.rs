//! Engine throughput: simulated requests per second of wall time, one core;
//! and the parts it is made of.
//!
//! `cargo bench --bench engine` runs:
//!
//! - `saturated_chat`: a saturated chat workload (Llama-3.1-8B on one H100,
//!   ShareGPT-like lengths, arrivals faster than the GPU can serve so the batch
//!   sits above 150) for each cache policy and paged with prefix caching
//!   (`prefix-caching`: every full block named and published, none shared),
//!   full metrics, requests/s via
//!   divan's item counter; `saturated_chat_reference` the same on the
//!   straightforward engine (what `simulate` did before the fast path);
//! - `saturated_chat_scaling`: the paged run at 100k and 1M requests (cost
//!   per request must stay flat);
//! - `event_queue`: push/pop throughput of the engine's event queue;
//! - `cache_grow`: one decode step's growth (256 sequences, one token each)
//!   under each placement;
//! - `sweep_64`: a 64-point sweep on 1 and 2 threads;
//! - `multi_turn_tiers`: `scenarios/multi-turn-tiers.toml` (20-turn sessions
//!   with prefix caching, 3,303 requests) with no tier, a host tier, and host
//!   plus SSD tiers: what tier bookkeeping costs per simulated request, and
//!   `multi_turn_fast`, the same conversations without prefix caching or
//!   tiers, on the fast path, for scale.
//! - `disaggregated`: `benches/disagg.toml`, a saturated chat service on one
//!   prefill and one decode H100, against the same two GPUs colocated, and
//!   on a 2 GB/s link its transfers keep busy (`link-bound`: many share it
//!   at once) (`KVSIM_DISAGG=<case>` runs one of the three, for
//!   profiling); and `disaggregated_long_prompts`, the bundled
//!   `scenarios/disagg-70b-long-prompts.toml` at 20,000 requests (its decode
//!   batch is small, so each request spans some 70 decode steps).
//! - `host_probe`: two probes of the machine rather than of kvsim, to tell which
//!   of its speeds the other figures were taken at (see `fn host_probe`).

use std::path::Path;

use divan::counter::ItemsCount;
use kvsim::cache::{CacheConfig, KvCache, SeqInfo};
use kvsim::engine::{EventQueue, simulate, simulate_reference};
use kvsim::hardware::cost::RooflineCost;
use kvsim::scenario::{Scenario, Stop};
use kvsim::sweep::{SweepOptions, run_sweep};
use kvsim::units::SimTime;

fn main() {
    divan::main();
}

/// Requests in `benches/saturated-chat.toml`.
const REQUESTS: u64 = 20_000;

fn path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/saturated-chat.toml")
}

fn saturated(policy: &str, requests: u64) -> Scenario {
    // `prefix-caching`: paged, every full block named and published.
    let mut overrides = vec![
        format!("cache.policy={}", policy.replace("prefix-caching", "paged")),
        format!("requests={requests}"),
    ];
    if policy == "sliding" {
        overrides.push("cache.window=1024".into());
    }
    if policy == "prefix-caching" {
        overrides.push("cache.prefix_caching=true".into());
    }
    let s = Scenario::load(&path(), &overrides).expect("the bench scenario is valid");
    assert_eq!(s.stop, Stop::Requests(requests));
    s
}

fn roofline(s: &Scenario) -> RooflineCost {
    let d = &s.deployment;
    RooflineCost::new(&s.model, d, &d.efficiency)
}

#[divan::bench(
    args = ["paged", "contiguous", "sliding", "quantized", "prefix-caching"],
    sample_count = 5,
    sample_size = 1
)]
fn saturated_chat(bencher: divan::Bencher, policy: &str) {
    let scenario = saturated(policy, REQUESTS);
    bencher.counter(ItemsCount::new(REQUESTS)).bench(|| {
        let out = simulate(&scenario, scenario.seed, roofline(&scenario)).unwrap();
        assert!(out.summary.batch_peak > 100 || policy == "contiguous");
        divan::black_box(out.summary.ok)
    });
}

#[divan::bench(args = ["paged", "quantized", "prefix-caching"], sample_count = 5, sample_size = 1)]
fn saturated_chat_reference(bencher: divan::Bencher, policy: &str) {
    let scenario = saturated(policy, REQUESTS);
    bencher.counter(ItemsCount::new(REQUESTS)).bench(|| {
        let out = simulate_reference(&scenario, scenario.seed, roofline(&scenario)).unwrap();
        divan::black_box(out.summary.ok)
    });
}

#[divan::bench(args = [100_000, 1_000_000], sample_count = 3, sample_size = 1)]
fn saturated_chat_scaling(bencher: divan::Bencher, requests: u64) {
    let scenario = saturated("paged", requests);
    bencher.counter(ItemsCount::new(requests)).bench(|| {
        let out = simulate(&scenario, scenario.seed, roofline(&scenario)).unwrap();
        divan::black_box(out.summary.ok)
    });
}

/// `scenarios/multi-turn-tiers.toml` with its first setup's keys and
/// `overrides`.
fn multi_turn(overrides: &[&str]) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/multi-turn-tiers.toml");
    let mut sets = vec!["sweep={}".to_string()];
    sets.extend(overrides.iter().map(|s| s.to_string()));
    Scenario::load(&path, &sets).expect("the bundled scenario is valid")
}

/// The tiers of each `multi_turn_tiers` case.
fn tiers_of(case: &str) -> &'static str {
    match case {
        "hbm-only" => "cache.tiers=[]",
        "host" => "cache.tiers=[{ kind = \"host\", capacity_gb = 128 }]",
        _ => {
            "cache.tiers=[{ kind = \"host\", capacity_gb = 32 }, { kind = \"ssd\", capacity_gb = 1000 }]"
        }
    }
}

/// Simulated requests per second of `scenario`: one warm-up run counts them.
fn bench_requests(bencher: divan::Bencher, scenario: &Scenario) {
    let requests = simulate(scenario, scenario.seed, roofline(scenario))
        .unwrap()
        .summary
        .requests;
    bencher.counter(ItemsCount::new(requests)).bench(|| {
        let out = simulate(scenario, scenario.seed, roofline(scenario)).unwrap();
        divan::black_box(out.summary.total_hit_rate)
    });
}

#[divan::bench(args = ["hbm-only", "host", "host+ssd"], sample_count = 5, sample_size = 1)]
fn multi_turn_tiers(bencher: divan::Bencher, case: &str) {
    bench_requests(bencher, &multi_turn(&[tiers_of(case)]));
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn multi_turn_fast(bencher: divan::Bencher) {
    bench_requests(
        bencher,
        &multi_turn(&["cache.tiers=[]", "cache.prefix_caching=false"]),
    );
}

/// Events in flight, as in a saturated run (one step end, one arrival, a few
/// hundred closed-loop users at most).
#[divan::bench(args = [4, 256, 4096])]
fn event_queue(bencher: divan::Bencher, in_flight: u64) {
    const OPS: u64 = 100_000;
    bencher.counter(ItemsCount::new(OPS)).bench(|| {
        let mut q = EventQueue::default();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..in_flight {
            q.push(SimTime::from_nanos(i * 1000), i);
        }
        for _ in 0..OPS {
            let (t, e) = q.pop().expect("refilled every time");
            q.push(
                SimTime::from_nanos(t.as_nanos() + xorshift(&mut x) % 50_000),
                e,
            );
        }
        divan::black_box(q.len())
    });
}

/// One decode step's growth: 256 sequences of ~700 tokens, one token each,
/// through the `KvCache` trait object as the straightforward engine calls it.
#[divan::bench(args = ["paged", "contiguous", "sliding", "quantized"])]
fn cache_grow(bencher: divan::Bencher, policy: &str) {
    const SEQS: u32 = 256;
    const STEPS: u32 = 64;
    let scenario = saturated(policy, REQUESTS);
    let config: CacheConfig = scenario.cache;
    bencher
        .counter(ItemsCount::new(u64::from(SEQS * STEPS)))
        .with_inputs(|| {
            let mut cache = config.build(scenario.budget.kv_bytes, scenario.layout);
            for id in 0..SEQS {
                let tokens = 500 + (id * 37) % 400;
                let info = SeqInfo {
                    id,
                    tokens,
                    reserve: tokens + 300,
                    content: None,
                };
                cache.admit(&info).expect("256 sequences fit");
            }
            cache
        })
        .bench_local_values(|mut cache: Box<dyn KvCache>| {
            for _ in 0..STEPS {
                for id in 0..SEQS {
                    cache.grow(id, 1).expect("room to grow");
                }
            }
            divan::black_box(cache.usage().allocated)
        });
}

/// 64 points (rate x memory utilization x max_num_seqs) of 10,000 requests.
#[divan::bench(args = [1, 2], sample_count = 3, sample_size = 1)]
fn sweep_64(bencher: divan::Bencher, threads: usize) {
    let text = std::fs::read_to_string(path()).expect("bench scenario");
    let mut base: toml::Table = toml::from_str(&text).expect("valid TOML");
    base.insert("requests".into(), toml::Value::Integer(10_000));
    let sweep: toml::Table = toml::from_str(
        r#"
"traffic.arrival.rate" = [20.0, 40.0, 80.0, 160.0]
"hardware.memory_utilization" = [0.5, 0.7, 0.8, 0.9]
"scheduler.max_num_seqs" = [64, 128, 192, 256]
"#,
    )
    .expect("valid TOML");
    base.insert("sweep".into(), toml::Value::Table(sweep));
    let opts = SweepOptions {
        threads: Some(threads),
        ..SweepOptions::default()
    };
    bencher.counter(ItemsCount::new(64u64)).bench(|| {
        let run = run_sweep(&base, &path(), &opts).expect("the sweep runs");
        assert_eq!(run.points.len(), 64);
        divan::black_box(run.points.len())
    });
}

/// A disaggregated deployment: `benches/disagg.toml`, colocated or with its
/// pools, and how fast each runs per simulated request; `link-bound`, its
/// pools on a 2 GB/s link, which the transfers keep busy (98.7 % of the
/// time; hundreds move at once, sharing it).
fn disagg(case: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/disagg.toml");
    let mut table = kvsim::scenario::read_table(&path).expect("bench scenario");
    let overrides: &[String] = match case {
        // The same GPUs, every replica prefilling and decoding.
        "colocated" => {
            table.remove("deployment");
            &["hardware.replicas=2".into()]
        }
        "link-bound" => &["deployment.link.gbps=2".into(), "requests=20000".into()],
        _ => &[],
    };
    kvsim::scenario::apply_cli_overrides(&mut table, overrides).expect("overrides");
    Scenario::from_table(table, &path).expect("the bench scenario is valid")
}

#[divan::bench(
    args = ["disaggregated", "colocated", "link-bound"],
    sample_count = 5,
    sample_size = 1
)]
fn disaggregated(bencher: divan::Bencher, case: &str) {
    // `KVSIM_DISAGG=<case>` runs only that case (for profiling).
    if std::env::var("KVSIM_DISAGG").is_ok_and(|only| only != case) {
        return;
    }
    bench_requests(bencher, &disagg(case));
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn disaggregated_long_prompts(bencher: divan::Bencher) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/disagg-70b-long-prompts.toml");
    let s = Scenario::load(&path, &["requests=20000".into()]).expect("bundled scenario");
    bench_requests(bencher, &s);
}

/// Every sweep point of bundled scenario `scenarios/<name>.toml`, as `kvsim
/// sweep` builds them (scenarios without a sweep are one point).
fn bundled_points(name: &str) -> Vec<Scenario> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml"));
    let base = kvsim::scenario::read_table(&path).expect("bundled scenario");
    let grid = kvsim::sweep::grid_of(&base, &path).expect("its grid");
    // A scenario without a sweep is a grid of one point with no axes.
    (0..grid.len())
        .map(|p| kvsim::sweep::point_scenario(&base, &path, &grid.point(p)).expect("a valid point"))
        .collect()
}

/// Every bundled scenario, each of its points simulated in turn on one
/// thread: simulated requests per second of wall time (the simulation only;
/// no outputs written).
#[divan::bench(
    args = [
        "batch-size-wall", "disagg-70b-long-prompts", "disagg-70b-short-prompts",
        "hybrid-capacity", "llama70b-long-context", "long-context-crash",
        "mooncake-replay", "multi-turn-creep", "multi-turn-tiers", "plan-llama70b",
        "policies", "quickstart", "window-long-context",
    ],
    sample_count = 3,
    sample_size = 1
)]
fn bundled(bencher: divan::Bencher, name: &str) {
    // `KVSIM_BUNDLED=<name>` runs only that scenario (for profiling).
    if std::env::var("KVSIM_BUNDLED").is_ok_and(|only| only != name) {
        return;
    }
    let mut points = bundled_points(name);
    // `KVSIM_BUNDLED_POINTS=<i>,<j>,...` runs only those sweep points (their
    // indices as `kvsim sweep` numbers them, last axis fastest).
    if let Ok(list) = std::env::var("KVSIM_BUNDLED_POINTS") {
        let keep: Vec<usize> = list
            .split(',')
            .map(|i| i.trim().parse().expect("KVSIM_BUNDLED_POINTS=<i>,<j>,..."))
            .collect();
        points = keep.iter().map(|&i| points[i].clone()).collect();
    }
    let run = |p: &Scenario| simulate(p, p.seed, roofline(p)).unwrap().summary.requests;
    let requests: u64 = points.iter().map(run).sum();
    bencher.counter(ItemsCount::new(requests)).bench(|| {
        let total: u64 = points.iter().map(run).sum();
        divan::black_box(total)
    });
}

/// Probes of the host, not of kvsim: a walk of dependent loads over 16 KiB
/// (a random cycle through 2,048 slots, so every load waits for the one
/// before it and hits the first-level data cache), and a chain of dependent
/// multiply-adds in registers; a million of each a sample.
///
/// The shared 2-core machine these benches were measured on runs at two
/// speeds (docs/speed-history.md, "After round 17: the host's two speeds"):
/// in its slow periods the walk's loads take 1.25-1.54 times as long while
/// the chain's multiply-adds mostly take 1.05-1.08 times, so the core's
/// clock is much the same and what slows is its memory, the simulator's
/// too. The periods change within seconds: a probe says what the host is
/// doing around another bench, not what that bench's samples met.
#[divan::bench(args = ["l1-walk", "multiply-chain"])]
fn host_probe(bencher: divan::Bencher, probe: &str) {
    const OPS: u64 = 1_000_000;
    const SLOTS: usize = 16 * 1024 / 8;
    // Sattolo's shuffle: one cycle through every slot.
    let mut next: Vec<usize> = (0..SLOTS).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..SLOTS).rev() {
        next.swap(i, (xorshift(&mut x) % i as u64) as usize);
    }
    let walk = probe == "l1-walk";
    bencher.counter(ItemsCount::new(OPS)).bench(|| {
        if walk {
            let mut at = 0usize;
            for _ in 0..OPS {
                at = next[at];
            }
            at as u64
        } else {
            let mut v = 1u64;
            for i in 0..OPS {
                v = divan::black_box(v.wrapping_mul(0x5851_F42D_4C95_7F2D).wrapping_add(i));
            }
            v
        }
    });
}

/// The next state of a xorshift64 generator (Marsaglia's 13, 7, 17): cheap
/// pseudo-random numbers for the benches' own inputs.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}
