//! The engine's fast path against the straightforward engine: identical
//! records, timelines and summaries, bit for bit, on scenarios that exercise
//! every case the fast path covers and every one it hands back (memory
//! pressure, each `on_oom`, swaps, chunked and whole prefills, closed loops,
//! sessions, timeouts, block sizes, policies it does not cover at all).

use std::path::Path;

use kvsim::engine::{RunOutput, simulate, simulate_reference};
use kvsim::hardware::cost::{FixedCost, RooflineCost};
use kvsim::scenario::Scenario;
use kvsim::units::SimDuration;

use crate::common::scenario_with;

/// Fails unless both engines produce the same output.
fn same(name: &str, fast: &RunOutput, reference: &RunOutput) {
    assert_eq!(
        fast.records.len(),
        reference.records.len(),
        "{name}: requests"
    );
    for (a, b) in fast.records.iter().zip(&reference.records) {
        assert_eq!(a, b, "{name}: request {}", b.id);
    }
    // Debug prints floats in shortest round-trip form: equal text, equal bits.
    assert_eq!(
        format!("{:?}", fast.timeline),
        format!("{:?}", reference.timeline),
        "{name}: timeline"
    );
    assert_eq!(
        format!("{:?}", fast.summary),
        format!("{:?}", reference.summary),
        "{name}: summary"
    );
}

/// Runs `s` both ways with a cost that depends on prefill tokens and swaps.
fn check_fixed(name: &str, s: &Scenario) {
    let cost = FixedCost {
        per_step: SimDuration::from_nanos(7_000_000),
        per_prefill_token: SimDuration::from_nanos(13_000),
        per_swap_kib: SimDuration::from_nanos(1_000),
    };
    same(
        name,
        &simulate(s, s.seed, cost).unwrap(),
        &simulate_reference(s, s.seed, cost).unwrap(),
    );
}

/// Runs `s` both ways with its roofline.
fn check_roofline(name: &str, s: &Scenario) {
    let d = &s.deployment;
    let cost = || RooflineCost::new(&s.model, d, &d.efficiency);
    same(
        name,
        &simulate(s, s.seed, cost()).unwrap(),
        &simulate_reference(s, s.seed, cost()).unwrap(),
    );
}

/// An open-loop body with lognormal lengths around `prompt` / `output`.
fn open(requests: u32, rate: f64, prompt: u32, output: u32, extra: &str) -> String {
    format!(
        r#"
name = "fast"
seed = 11
requests = {requests}
[traffic]
arrival = {{ kind = "poisson", rate = {rate} }}
prompt = {{ kind = "lognormal", mean = {prompt}, sigma = 0.9, min = 1, max = 3000 }}
output = {{ kind = "lognormal", mean = {output}, sigma = 0.9, min = 1, max = 1500 }}
{extra}
"#
    )
}

/// 30 closed-loop users thinking 0.2 s on average, `requests` requests,
/// then `extra` (a `[traffic]` key or later tables).
fn closed_loop(requests: u32, extra: &str) -> String {
    format!(
        r#"
name = "closed"
requests = {requests}
[traffic]
arrival = {{ kind = "closed", users = 30, think_s = 0.2, think = "exponential" }}
prompt = {{ kind = "lognormal", mean = 90, sigma = 1.0, min = 1, max = 2000 }}
output = {{ kind = "lognormal", mean = 50, sigma = 1.0, min = 1, max = 1000 }}
{extra}"#
    )
}

/// `requests` requests of multi-turn sessions of 1 to `max_turns` turns,
/// 50 ms of thinking between turns, short lengths.
fn sessions(requests: u32, max_turns: u32) -> String {
    format!(
        r#"
name = "sessions"
requests = {requests}
[traffic]
arrival = {{ kind = "poisson", rate = 30.0 }}
prompt = {{ kind = "lognormal", mean = 60, sigma = 0.8, min = 1, max = 800 }}
output = {{ kind = "lognormal", mean = 40, sigma = 0.8, min = 1, max = 400 }}
session = {{ turns = {{ kind = "uniform", min = 1, max = {max_turns} }}, think_s = 0.05 }}
"#
    )
}

#[test]
fn tiny_model_under_every_pressure() {
    let schedulers = [
        "on_oom = \"preempt-recompute\"",
        "on_oom = \"preempt-recompute\"\nchunked_prefill = false",
        "on_oom = \"reject\"",
        "on_oom = \"crash\"\nrestart_s = 0.5",
        "on_oom = \"preempt-swap\"\nswap_bytes = 200000",
        "on_oom = \"preempt-recompute\"\nqueue_timeout_s = 0.3",
        "on_oom = \"preempt-recompute\"\nmax_num_seqs = 8\nmax_batched_tokens = 300",
    ];
    for (k, sched) in schedulers.iter().enumerate() {
        for bs in [1, 7, 16] {
            for (budget, rate) in [(4_000, 40.0), (40_000, 400.0), (1_000_000, 60.0)] {
                let extra = format!(
                    "[cache]\npolicy = \"paged\"\nblock_size = {bs}\n[scheduler]\n\
                     max_batched_tokens = 512\n{sched}"
                );
                let body = open(400, rate, 120, 60, &extra);
                // The last scheduler sets max_batched_tokens again: keep its.
                let body = if k == schedulers.len() - 1 {
                    body.replacen("max_batched_tokens = 512\n", "", 1)
                } else {
                    body
                };
                let s = scenario_with(&body, budget, &[]);
                check_fixed(&format!("sched {k}, bs {bs}, budget {budget}"), &s);
            }
        }
    }
}

#[test]
fn closed_loops_and_sessions() {
    let bodies = [
        &closed_loop(
            600,
            "[scheduler]\non_oom = \"preempt-recompute\"\nmax_batched_tokens = 256\n",
        ),
        &format!(
            "{}[scheduler]\non_oom = \"preempt-recompute\"\nmax_batched_tokens = 1024\n",
            sessions(500, 6)
        ),
    ];
    for (i, body) in bodies.iter().enumerate() {
        for budget in [3_000, 30_000, 10_000_000] {
            let s = scenario_with(body, budget, &[]);
            check_fixed(&format!("body {i}, budget {budget}"), &s);
        }
    }
}

#[test]
fn policies_the_fast_path_hands_back() {
    // Contiguous placement with optimistic admission and forks run on the
    // straightforward engine; the entry points must agree anyway (sliding
    // windows, prefix caching and quantized KV have fast cases of their own
    // above and below).
    let extras = [
        "[cache]\npolicy = \"contiguous\"\n[scheduler]\nadmission = \"optimistic\"",
        "[cache]\npolicy = \"sliding\"\nwindow = 100",
        "[cache]\npolicy = \"paged\"\nprefix_caching = true",
        "[cache]\npolicy = \"quantized\"",
    ];
    for (i, extra) in extras.iter().enumerate() {
        let s = scenario_with(&open(300, 80.0, 100, 50, extra), 8_000, &[]);
        check_fixed(&format!("extra {i}"), &s);
    }
    let forks = open(300, 80.0, 100, 50, "").replace("[traffic]\n", "[traffic]\nn = 3\n");
    check_fixed("forks", &scenario_with(&forks, 8_000, &[]));
}

/// The schedulers under which a cache's fast path is tried: each `on_oom`,
/// a queue timeout with whole prefills, and a small batch cap.
const PRESSURES: [&str; 6] = [
    "on_oom = \"preempt-recompute\"",
    "on_oom = \"reject\"",
    "on_oom = \"crash\"\nrestart_s = 0.5",
    "on_oom = \"preempt-swap\"\nswap_bytes = 200000",
    "on_oom = \"preempt-recompute\"\nqueue_timeout_s = 0.3\nchunked_prefill = false",
    "on_oom = \"preempt-recompute\"\nmax_num_seqs = 8",
];

/// Runs each `[cache]` body of `caches` with `admission` under every one of
/// [`PRESSURES`] and three budgets (tight, loaded, ample), both ways.
fn under_every_pressure(caches: &[&str], admission: &str) {
    for (c, cache) in caches.iter().enumerate() {
        for (k, sched) in PRESSURES.iter().enumerate() {
            for (budget, rate) in [(6_000, 40.0), (40_000, 400.0), (1_000_000, 60.0)] {
                let extra = format!(
                    "[cache]\n{cache}\n[scheduler]\nadmission = \"{admission}\"\n\
                     max_batched_tokens = 512\n{sched}"
                );
                let s = scenario_with(&open(300, rate, 120, 60, &extra), budget, &[]);
                check_fixed(&format!("cache {c}, sched {k}, budget {budget}"), &s);
            }
        }
    }
}

/// Reserve admission: every sequence holds its final length from the start,
/// in a contiguous region (first-fit or buddy, each reservation rule) or in
/// paged blocks, so decode steps allocate nothing; under every kind of
/// memory pressure and with external fragmentation in the levels.
#[test]
fn reservations_under_every_pressure() {
    under_every_pressure(
        &[
            "policy = \"contiguous\"",
            "policy = \"contiguous\"\nallocator = \"buddy\"",
            "policy = \"contiguous\"\nreserve = \"oracle\"",
            "policy = \"contiguous\"\nreserve = \"pow2-output\"\nallocator = \"buddy\"",
            "policy = \"contiguous\"\nreserve = \"pow2\"",
            "policy = \"paged\"\nblock_size = 7",
        ],
        "reserve",
    );
}

/// Optimistic admission into contiguous regions (first-fit or buddy): each
/// decoder grows in place while the hole after its region (or its buddy
/// block) has room, and the step where one outgrows it (a move, or no room
/// at all) is the straightforward engine's; under every kind of memory
/// pressure, with admissions carving the holes decoders grow into and the
/// head's unusable holes in the levels, and in a closed loop.
#[test]
fn contiguous_growth_under_every_pressure() {
    let caches = [
        "policy = \"contiguous\"",
        "policy = \"contiguous\"\nallocator = \"buddy\"",
        "policy = \"contiguous\"\nkv_dtype = \"fp8\"\nallocator = \"buddy\"",
    ];
    under_every_pressure(&caches, "optimistic");
    for (c, cache) in caches.iter().enumerate() {
        let body = format!("[cache]\n{cache}\n[scheduler]\nadmission = \"optimistic\"\n");
        let s = scenario_with(&closed_loop(400, &body), 20_000, &[]);
        check_fixed(&format!("cache {c}, closed loop"), &s);
    }
}

#[test]
fn shipped_scenarios_with_the_roofline() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases: [(&str, &[&str]); 8] = [
        ("benches/saturated-chat.toml", &["requests=3000"]),
        (
            "benches/saturated-chat.toml",
            &["requests=2000", "scheduler.chunked_prefill=false"],
        ),
        (
            "benches/saturated-chat.toml",
            &["requests=2000", "hardware.memory_utilization=0.3"],
        ),
        ("scenarios/quickstart.toml", &["requests=1500"]),
        ("scenarios/multi-turn-creep.toml", &[]),
        ("scenarios/batch-size-wall.toml", &[]),
        ("scenarios/long-context-crash.toml", &[]),
        (
            "scenarios/batch-size-wall.toml",
            &["cache.policy=paged", "scheduler.on_oom=preempt-recompute"],
        ),
    ];
    for (path, overrides) in cases {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let s = Scenario::load(&root.join(path), &overrides).unwrap_or_else(|e| panic!("{e}"));
        check_roofline(&format!("{path} {overrides:?}"), &s);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Random corners of the fast path's case and of its hand-backs.
    #[test]
    fn random_scenarios_agree(
        seed in 0u64..1000,
        rate in 5.0f64..500.0,
        budget in 500u64..200_000,
        bs in 1u32..40,
        max_num_seqs in 1u32..64,
        max_batched_tokens in 64u32..2048,
        chunked in proptest::bool::ANY,
        on_oom in 0usize..4,
    ) {
        let on_oom = ["preempt-recompute", "reject", "crash", "preempt-swap"][on_oom];
        let extra = format!(
            "[cache]\npolicy = \"paged\"\nblock_size = {bs}\n[scheduler]\n\
             max_num_seqs = {max_num_seqs}\nmax_batched_tokens = {max_batched_tokens}\n\
             chunked_prefill = {chunked}\non_oom = \"{on_oom}\"\nrestart_s = 0.2\n\
             swap_bytes = 100000"
        );
        let body = open(150, rate, 80, 40, &extra).replace("seed = 11", &format!("seed = {seed}"));
        let s = scenario_with(&body, budget, &[]);
        check_fixed(&format!("{body} budget {budget}"), &s);
    }
}

/// A four-layer model whose layers are `groups` (`[[model.groups]]`), on
/// the GPU of the other tests, with the KV budget set to `budget_tokens`
/// tokens of a layer's KV times four.
fn grouped(body: &str, groups: &str, budget_tokens: u64) -> Scenario {
    let model = crate::common::TINY_MODEL.replace("layers = 1", "layers = 4");
    let text = format!("{body}\n{model}\n{groups}\n{}", crate::common::BIG_GPU);
    let mut s =
        Scenario::from_toml(&text, Path::new("groups.toml"), &[]).unwrap_or_else(|e| panic!("{e}"));
    s.budget.kv_bytes = budget_tokens * 4 * crate::common::TINY_BPT;
    s
}

/// Windowed layers and recurrent state on the fast path: a sliding window
/// of every size against the block size (below it, a multiple of it, not
/// one), full and sliding layers together, recurrent and full layers
/// together, under every kind of memory pressure.
#[test]
fn windows_and_state_under_every_pressure() {
    let schedulers = [
        "on_oom = \"preempt-recompute\"",
        "on_oom = \"reject\"",
        "on_oom = \"crash\"\nrestart_s = 0.5",
        "on_oom = \"preempt-swap\"\nswap_bytes = 2000000",
        "on_oom = \"preempt-recompute\"\nqueue_timeout_s = 0.3\nchunked_prefill = false",
    ];
    let layers = [
        "[[model.groups]]\nlayers = 4\nattention = \"sliding\"\nwindow = 1",
        "[[model.groups]]\nlayers = 4\nattention = \"sliding\"\nwindow = 5",
        "[[model.groups]]\nlayers = 4\nattention = \"sliding\"\nwindow = 32",
        "[[model.groups]]\nlayers = 1\nattention = \"full\"\n\
         [[model.groups]]\nlayers = 3\nattention = \"sliding\"\nwindow = 100",
        "[[model.groups]]\nlayers = 2\nattention = \"sliding\"\nwindow = 40\n\
         [[model.groups]]\nlayers = 1\nattention = \"sliding\"\nwindow = 9\n\
         [[model.groups]]\nlayers = 1\nattention = \"full\"",
        "[[model.groups]]\nlayers = 3\nattention = \"recurrent\"\nstate_bytes = 5000\n\
         [[model.groups]]\nlayers = 1\nattention = \"full\"",
        "[[model.groups]]\nlayers = 2\nattention = \"recurrent\"\nstate_bytes = 700\n\
         [[model.groups]]\nlayers = 2\nattention = \"sliding\"\nwindow = 64",
    ];
    for (l, groups) in layers.iter().enumerate() {
        for bs in [1, 7, 16] {
            for (k, sched) in schedulers.iter().enumerate() {
                for (budget, rate) in [(3_000, 40.0), (30_000, 400.0), (1_000_000, 60.0)] {
                    let extra = format!(
                        "[cache]\npolicy = \"paged\"\nblock_size = {bs}\n[scheduler]\n\
                         max_batched_tokens = 512\n{sched}"
                    );
                    let s = grouped(&open(300, rate, 120, 60, &extra), groups, budget);
                    check_fixed(
                        &format!("layers {l}, bs {bs}, sched {k}, budget {budget}"),
                        &s,
                    );
                }
            }
        }
    }
    // The `sliding` policy's window over a uniform model.
    for window in [1, 16, 33, 100] {
        for bs in [1, 16] {
            let extra = format!(
                "[cache]\npolicy = \"sliding\"\nwindow = {window}\nblock_size = {bs}\n\
                 [scheduler]\nmax_batched_tokens = 512\non_oom = \"preempt-recompute\""
            );
            let s = scenario_with(&open(400, 200.0, 120, 60, &extra), 8_000, &[]);
            check_fixed(&format!("sliding policy, window {window}, bs {bs}"), &s);
        }
    }
}

/// The bundled scenarios with windowed and recurrent layers, and clusters
/// of replicas behind routers, priced by their rooflines.
#[test]
fn windowed_and_hybrid_models_with_the_roofline() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases: [(&str, &[&str]); 11] = [
        (
            "scenarios/policies.toml",
            &[
                "cache.policy=contiguous",
                "hardware.replicas=3",
                "hardware.router=least-kv",
                "traffic.arrival.users=96",
            ],
        ),
        (
            "scenarios/policies.toml",
            &[
                "cache.policy=sliding",
                "hardware.replicas=2",
                "hardware.router=least-outstanding",
                "traffic.arrival.users=128",
            ],
        ),
        (
            "scenarios/hybrid-capacity.toml",
            &[
                "requests=200",
                "hardware.replicas=2",
                "model.preset=qwen2.5-72b",
            ],
        ),
        (
            "scenarios/window-long-context.toml",
            &["requests=60", "hardware.replicas=2"],
        ),
        ("scenarios/window-long-context.toml", &["requests=60"]),
        // Decode replicas of a disaggregated deployment, and replicas
        // behind a router.
        (
            "scenarios/disagg-70b-long-prompts.toml",
            &["requests=150", "model.preset=gemma-3-27b"],
        ),
        (
            "scenarios/hybrid-capacity.toml",
            &["requests=200", "hardware.replicas=2"],
        ),
        (
            "scenarios/window-long-context.toml",
            &["requests=60", "traffic.arrival.users=16"],
        ),
        ("scenarios/hybrid-capacity.toml", &["requests=200"]),
        (
            "benches/saturated-chat.toml",
            &["requests=2000", "cache.policy=sliding", "cache.window=1024"],
        ),
        (
            "scenarios/policies.toml",
            &["cache.policy=sliding", "traffic.arrival.users=128"],
        ),
    ];
    for (path, overrides) in cases {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let s = Scenario::load(&root.join(path), &overrides).unwrap_or_else(|e| panic!("{e}"));
        check_roofline(&format!("{path} {overrides:?}"), &s);
    }
}

/// Prefix caching: full blocks named and published as they fill, shared by
/// later prompts, cached when freed and evicted least recently used first.
/// The fast path grows a decoder's table only at the launches where it maps
/// or publishes a block, in batch order; under every kind of memory
/// pressure, with contents of their own, multi-turn sessions (each turn's
/// prompt is the conversation so far, the last answer's blocks included),
/// system prompts shared from a trace, and closed loops.
#[test]
fn prefix_caching_under_every_pressure() {
    let dir = tempfile::tempdir().unwrap();
    // 400 requests 20 ms apart; four system prompts of 40 to 300 tokens,
    // one request in five without one.
    let mut trace = String::from("arrival_s,prompt_tokens,output_tokens,prefix_id,prefix_tokens\n");
    for i in 0u32..400 {
        let (id, shared) = (i % 4, [40, 100, 200, 300][(i % 4) as usize]);
        let prompt = shared + 1 + i * 37 % 150;
        let output = 1 + i * 53 % 90;
        let prefix = if i % 5 == 4 {
            ",".to_string()
        } else {
            format!("{id},{shared}")
        };
        trace.push_str(&format!(
            "{},{prompt},{output},{prefix}\n",
            f64::from(i) * 0.02
        ));
    }
    let path = dir.path().join("shared.csv");
    std::fs::write(&path, trace).unwrap();
    let traffic = [
        open(300, 80.0, 100, 50, ""),
        sessions(400, 8),
        format!(
            "name = \"shared\"\n[traffic]\narrival = {{ kind = \"trace\", path = {:?} }}\n",
            path.display().to_string()
        ),
        closed_loop(
            400,
            "session = { turns = { kind = \"fixed\", value = 3 }, think_s = 0.02 }\n",
        ),
    ];
    let schedulers = [
        "on_oom = \"preempt-recompute\"",
        "on_oom = \"preempt-recompute\"\nchunked_prefill = false\nmax_batched_tokens = 700",
        "on_oom = \"reject\"",
        "on_oom = \"crash\"\nrestart_s = 0.5",
        "on_oom = \"preempt-swap\"\nswap_bytes = 200000\nqueue_timeout_s = 0.4",
    ];
    for (t, body) in traffic.iter().enumerate() {
        for bs in [1, 7, 16] {
            for (k, sched) in schedulers.iter().enumerate() {
                for budget in [3_000, 20_000, 1_000_000] {
                    let body = format!(
                        "{body}\n[cache]\npolicy = \"paged\"\nblock_size = {bs}\n\
                         prefix_caching = true\n[scheduler]\n{sched}\n"
                    );
                    let s = scenario_with(&body, budget, &[]);
                    check_fixed(
                        &format!("traffic {t}, bs {bs}, sched {k}, budget {budget}"),
                        &s,
                    );
                }
            }
        }
    }
}

/// Prefix caching on the roofline: the bundled Mooncake trace (shared
/// prefix chains), alone and on two replicas behind the KV-aware router;
/// the decode pool of a disaggregated deployment (received requests carry
/// no content); multi-turn sessions on one replica, under memory pressure,
/// and on two behind the prefix-aware router; the saturated chat with its
/// blocks named, and the same under memory pressure.
#[test]
fn prefix_caching_with_the_roofline() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases: [(&str, &[&str]); 8] = [
        ("scenarios/mooncake-replay.toml", &[]),
        (
            "scenarios/mooncake-replay.toml",
            &["hardware.replicas=2", "hardware.router=kv-aware"],
        ),
        (
            "scenarios/disagg-70b-short-prompts.toml",
            &["requests=300", "cache.prefix_caching=true"],
        ),
        (
            "scenarios/multi-turn-creep.toml",
            &[
                "cache.prefix_caching=true",
                "duration_s=600",
                "hardware.memory_utilization=0.35",
                "traffic.arrival.rate=1.0",
            ],
        ),
        (
            "scenarios/multi-turn-creep.toml",
            &["cache.prefix_caching=true", "duration_s=600"],
        ),
        (
            "scenarios/multi-turn-creep.toml",
            &[
                "cache.prefix_caching=true",
                "duration_s=600",
                "hardware.replicas=2",
                "hardware.router=prefix-aware",
                "traffic.arrival.rate=0.5",
            ],
        ),
        (
            "benches/saturated-chat.toml",
            &["requests=2000", "cache.prefix_caching=true"],
        ),
        (
            "benches/saturated-chat.toml",
            &[
                "requests=2000",
                "cache.prefix_caching=true",
                "hardware.memory_utilization=0.3",
            ],
        ),
    ];
    for (path, overrides) in cases {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let s = Scenario::load(&root.join(path), &overrides).unwrap_or_else(|e| panic!("{e}"));
        check_roofline(&format!("{path} {overrides:?}"), &s);
    }
}

/// KV tiers below HBM on the fast path: each block a decoder fills goes
/// down at the end of the step whose launch visited it, and a prefill that
/// waits for its load hands the steps back until it has loaded. Sessions
/// and shared system prompts; write-through and on-evict tiers (host, host
/// over SSD, host over a remote store), async and layer-wise loads over a
/// fast link and one slow enough that loads span steps, under memory
/// pressure and with room to spare, each `on_oom`, alone and on two
/// replicas sharing the remote store behind the KV-aware router.
#[test]
fn kv_tiers_under_every_pressure() {
    // Blocks of 16 tokens of the tiny model: 4,096 B.
    let gb = |blocks: u32| f64::from(blocks) * 4096.0 / 1e9;
    let tier = |kind: &str, blocks: u32, store: &str| {
        format!(
            "[[cache.tiers]]\nkind = \"{kind}\"\ncapacity_gb = {}\nstore = \"{store}\"\n",
            gb(blocks)
        )
    };
    let tiers = [
        tier("host", 200, "write-through"),
        tier("host", 40, "on-evict"),
        tier("host", 24, "write-through") + &tier("ssd", 400, "on-evict"),
        tier("host", 16, "on-evict") + &tier("remote", 600, "write-through"),
    ];
    let traffic = [
        sessions(300, 6),
        open(
            300,
            60.0,
            120,
            60,
            "prefix = { count = 3, tokens = 48, fraction = 0.8 }",
        ),
    ];
    for (t, body) in traffic.iter().enumerate() {
        for (k, tiers) in tiers.iter().enumerate() {
            for load in ["async", "layerwise"] {
                // A 4 KB block over PCIe in 0.1 us, and in 3 ms.
                for block_us in ["0.0", "3000.0"] {
                    for sched in ["preempt-recompute", "reject", "crash"] {
                        for budget in [1_500, 1_000_000] {
                            let body = format!(
                                "{body}[scheduler]\non_oom = \"{sched}\"\nrestart_s = 0.5\n\
                                 max_batched_tokens = 512\n[cache]\npolicy = \"paged\"\n\
                                 prefix_caching = true\nload = \"{load}\"\n{tiers}"
                            );
                            let pcie = format!("hardware.pcie_block_us={block_us}");
                            let s = scenario_with(&body, budget, &[&pcie]);
                            let name = format!(
                                "traffic {t}, tiers {k}, {load}, {block_us} us, {sched}, {budget}"
                            );
                            check_fixed(&name, &s);
                            if k == 3 && budget > 1_500 {
                                let two = ["hardware.replicas=2", "hardware.router=kv-aware"];
                                let s = scenario_with(&body, budget, &[&pcie, two[0], two[1]]);
                                check_fixed(&format!("{name}, two replicas"), &s);
                            }
                        }
                    }
                }
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Random tiers below a small HBM (the tier properties' cases: samples,
    /// sessions or shared prompts, prefix caching or not, host, SSD and
    /// remote tiers storing through or on eviction, async or layer-wise
    /// loads, `load_if_cheaper`, each `on_oom`) over a PCIe link from fast
    /// to slow enough that loads span many steps: both engines agree.
    #[test]
    fn random_tiers_agree(
        (toml, budget) in crate::tiers::properties::cases(),
        block_us in proptest::sample::select(vec![0.0f64, 50.0, 2000.0]),
    ) {
        let pcie = format!("hardware.pcie_block_us={block_us}");
        let s = scenario_with(&toml, budget, &[&pcie]);
        check_fixed(&format!("{toml} budget {budget}, {pcie}"), &s);
    }
}

/// The bundled scenario with tiers, every setup of its sweep (one GPU with
/// and without tiers below it, four behind each router with host tiers and
/// a shared remote store), over its first five minutes, priced by its
/// roofline.
#[test]
fn the_multi_turn_tiers_setups_with_the_roofline() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/multi-turn-tiers.toml");
    let mut base = kvsim::scenario::read_table(&path).unwrap();
    base.insert("duration_s".into(), toml::Value::Integer(300));
    let grid = kvsim::sweep::grid_of(&base, &path).unwrap();
    assert_eq!(grid.len(), 7, "the setups");
    for p in 0..grid.len() {
        let s = kvsim::sweep::point_scenario(&base, &path, &grid.point(p)).unwrap();
        check_roofline(&format!("setup {p}"), &s);
    }
}

/// Quiet decode steps (nothing waiting, no finisher, no visit) run in one
/// loop up to the next event (`Engine::leap`); on a cluster, up to the next
/// event of the cluster or of any other replica that can reach this one
/// (none under open loops without sessions, the other pool's replicas when
/// disaggregated). Where the outside world
/// steps in at the instant a leap would start: closed-loop users with no
/// think time (a replica's end sends the user's next request at once, to
/// either replica), sessions, a decode pool whose transfers wait for its
/// memory, and prefix caching; each alone and on replicas behind routers.
#[test]
fn leaps_stop_where_the_outside_steps_in() {
    let users = |users: u32, think: &str| {
        format!(
            "name = \"leaps\"\nrequests = 300\n[traffic]\narrival = {{ kind = \"closed\", \
             users = {users}, think_s = {think} }}\n\
             prompt = {{ kind = \"lognormal\", mean = 200, sigma = 1.0, min = 1, max = 2000 }}\n\
             output = {{ kind = \"lognormal\", mean = 60, sigma = 1.0, min = 1, max = 1000 }}\n"
        )
    };
    let cases: [(String, &[&str]); 10] = [
        (users(3, "0.0"), &[]),
        (users(3, "0.0"), &["hardware.replicas=2"]),
        (
            users(5, "0.0"),
            &["hardware.replicas=2", "hardware.router=least-kv"],
        ),
        (users(4, "0.01"), &["hardware.replicas=3"]),
        (sessions(200, 6), &["hardware.replicas=2"]),
        (
            sessions(200, 6),
            &[
                "hardware.replicas=2",
                "hardware.router=prefix-aware",
                "cache.prefix_caching=true",
            ],
        ),
        (users(3, "0.0"), &["cache.prefix_caching=true"]),
        (open(200, 3.0, 300, 80, ""), &["hardware.replicas=2"]),
        // Contiguous regions growing in place on replicas that a router
        // reads between their steps.
        (
            users(5, "0.0"),
            &[
                "hardware.replicas=2",
                "hardware.router=least-kv",
                "cache.policy=contiguous",
                "scheduler.admission=optimistic",
            ],
        ),
        (
            open(200, 3.0, 300, 80, ""),
            &[
                "hardware.replicas=3",
                "cache.policy=contiguous",
                "cache.allocator=buddy",
                "scheduler.admission=optimistic",
            ],
        ),
    ];
    for (body, overrides) in &cases {
        for budget in [4_000, 1_000_000] {
            let s = scenario_with(body, budget, overrides);
            check_fixed(&format!("{overrides:?}, budget {budget}"), &s);
            check_roofline(&format!("{overrides:?}, budget {budget}, roofline"), &s);
        }
    }
    // A decode pool with room to spare, and one so small that transfers
    // queue for its memory (half to most of the requests wait). Then pools
    // of two and three replicas, whose leaps are bounded by the other
    // pool's replicas alone: decode memory reserved after the prefill and
    // before it (when a decode replica's freed memory routes a prefill),
    // transfers after the prefill and layer by layer, links shared fairly
    // and first come first served, decode replicas picked by their KV.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let small = "deployment.decode.hardware.memory_utilization=0.35";
    let two = "deployment.decode.hardware.replicas=2";
    let three = "deployment.decode.hardware.replicas=3";
    let by_kv = "deployment.decode.hardware.router=least-kv";
    let early = "deployment.reserve=before-prefill";
    let layerwise = "deployment.transfer=layerwise";
    let fifo = "deployment.link.sharing=fifo";
    for overrides in [
        &["requests=120"][..],
        &["requests=120", "traffic.arrival.rate=2", small],
        &["requests=120", "traffic.arrival.rate=1.5", small],
        &["requests=160", "traffic.arrival.rate=3", two, small],
        &["requests=160", "traffic.arrival.rate=3", three, by_kv],
        &["requests=160", "traffic.arrival.rate=3", two, small, early],
        &["requests=160", "traffic.arrival.rate=3", three, early, fifo],
        &[
            "requests=160",
            "traffic.arrival.rate=3",
            two,
            small,
            early,
            layerwise,
        ],
    ] {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let path = root.join("scenarios/disagg-70b-long-prompts.toml");
        let s = Scenario::load(&path, &overrides).unwrap_or_else(|e| panic!("{e}"));
        check_roofline(&format!("disaggregated {overrides:?}"), &s);
    }
}

/// Leaps over a queue whose head stays blocked: by `max_num_seqs`, by the
/// token budget (whole prefills), by KV memory (blocks on demand, which only
/// fill between ends; reservations in contiguous holes), each with queue
/// timeouts that take the head off at the start of a step. Sliding windows
/// free blocks as they slide, so a head blocked by memory may fit a few
/// steps on: those steps are not leapt (block sizes and windows chosen so
/// that drops and maps fall on different steps).
#[test]
fn leaps_over_a_blocked_queue() {
    let schedulers = [
        "on_oom = \"preempt-recompute\"",
        "on_oom = \"preempt-recompute\"\nmax_num_seqs = 6",
        "on_oom = \"preempt-recompute\"\nchunked_prefill = false\nmax_batched_tokens = 400",
        "on_oom = \"preempt-recompute\"\nqueue_timeout_s = 0.4",
        "on_oom = \"preempt-recompute\"\nmax_num_seqs = 5\nqueue_timeout_s = 0.25",
    ];
    let caches = [
        "policy = \"paged\"\nblock_size = 16",
        "policy = \"paged\"\nblock_size = 16\nprefix_caching = true",
        "policy = \"contiguous\"",
        "policy = \"contiguous\"\nallocator = \"buddy\"",
    ];
    for (k, sched) in schedulers.iter().enumerate() {
        for (c, cache) in caches.iter().enumerate() {
            for budget in [2_500, 6_000, 1_000_000] {
                let extra = format!("[cache]\n{cache}\n[scheduler]\n{sched}\n");
                let s = scenario_with(&open(300, 400.0, 60, 200, &extra), budget, &[]);
                let name = format!("sched {k}, cache {c}, budget {budget}");
                check_fixed(&name, &s);
                if c == 0 {
                    check_roofline(&format!("{name}, roofline"), &s);
                }
            }
        }
    }
    let layers = [
        "[[model.groups]]\nlayers = 4\nattention = \"sliding\"\nwindow = 5",
        "[[model.groups]]\nlayers = 4\nattention = \"sliding\"\nwindow = 32",
        "[[model.groups]]\nlayers = 1\nattention = \"full\"\n\
         [[model.groups]]\nlayers = 3\nattention = \"sliding\"\nwindow = 20",
    ];
    for (l, groups) in layers.iter().enumerate() {
        for bs in [1, 4, 7, 16] {
            for budget in [1_500, 2_500, 4_000, 6_000, 9_000] {
                let extra = format!(
                    "[cache]\npolicy = \"paged\"\nblock_size = {bs}\n[scheduler]\n\
                     max_batched_tokens = 512\non_oom = \"preempt-recompute\""
                );
                let s = grouped(&open(300, 400.0, 60, 200, &extra), groups, budget);
                check_fixed(&format!("layers {l}, bs {bs}, budget {budget}"), &s);
            }
        }
    }
}

/// A request routed to a replica in the middle of a step is issued at once
/// on the fast path's runs, and by an event of its own (its arrival) on the
/// straightforward engine's (`Engine::inject`): closed-loop users and
/// sessions on busy replicas, some of whose prompts no replica can hold
/// (past the context, or the memory: they end at once, and the cluster must
/// hear of it at the instant it would have, or the users' next requests
/// move), and open loops arriving faster than the replicas serve.
#[test]
fn requests_routed_mid_step_are_issued_as_their_arrivals_would_be() {
    let users = |users: u32, think: &str| {
        format!(
            "name = \"mid-step\"\nrequests = 400\n[traffic]\narrival = {{ kind = \"closed\", \
             users = {users}, think_s = {think}, think = \"exponential\" }}\n\
             prompt = {{ kind = \"lognormal\", mean = 400, sigma = 1.3, min = 1, max = 6000 }}\n\
             output = {{ kind = \"lognormal\", mean = 40, sigma = 1.0, min = 1, max = 500 }}\n"
        )
    };
    let wide_sessions = sessions(300, 5).replace("max = 800", "max = 6000");
    let cases: [(String, &[&str]); 6] = [
        (users(12, "0.02"), &["hardware.replicas=2"]),
        (
            users(20, "0.0"),
            &["hardware.replicas=3", "hardware.router=least-outstanding"],
        ),
        (
            users(16, "0.05"),
            &["hardware.replicas=2", "hardware.router=least-kv"],
        ),
        (wide_sessions.clone(), &["hardware.replicas=2"]),
        (
            wide_sessions,
            &[
                "hardware.replicas=3",
                "scheduler.on_oom=preempt-swap",
                "scheduler.swap_bytes=100000",
            ],
        ),
        (open(300, 400.0, 300, 40, ""), &["hardware.replicas=2"]),
    ];
    for (body, overrides) in &cases {
        for budget in [2_500, 40_000] {
            let s = scenario_with(body, budget, overrides);
            check_fixed(&format!("{overrides:?}, budget {budget}"), &s);
        }
    }
}
