use super::*;
use crate::hardware::cost::RooflineCost;

/// The saturated bench workload runs nearly every step on the fast path
/// (a silent fallback would keep results right and lose the speed), with
/// blocks on demand and with reservations (contiguous, either allocator),
/// with windows (a sliding policy, a model with sliding layers) and
/// recurrent state (a hybrid model).
#[test]
fn saturated_chat_takes_the_fast_path() {
    for overrides in [
        &[][..],
        &["cache.policy=contiguous"],
        &["cache.policy=contiguous", "cache.allocator=buddy"],
        &["cache.policy=sliding", "cache.window=1024"],
        &[
            "cache.policy=sliding",
            "cache.window=100",
            "cache.block_size=7",
        ],
        &["model.preset=gemma-3-27b", "traffic.arrival.rate=2"],
        &[
            "model.preset=qwen3-next-80b-a3b",
            "hardware.gpu=h200",
            "hardware.tp=2",
        ],
    ] {
        with_bench_engine(2000, overrides, |engine| {
            engine.fast = fast::Fast::new(engine);
            assert!(
                engine.fast.is_some(),
                "{overrides:?}: the scenario is in the fast path's case"
            );
            engine.run().expect("no limits");
            let fast_steps = engine.fast.as_ref().map_or(0, |f| f.steps);
            assert!(
                fast_steps * 100 >= engine.stats.steps * 99,
                "{overrides:?}: {fast_steps} of {} steps on the fast path",
                engine.stats.steps
            );
        });
    }
}

/// With prefix caching too: the saturated chat (every request's blocks
/// named and published, none shared), the bundled Mooncake trace (shared
/// prefix chains) and 20-turn sessions (each turn's prompt is the last
/// one's conversation).
#[test]
fn prefix_caching_takes_the_fast_path() {
    let cases: [(&str, &[&str], u64); 3] = [
        (
            "benches/saturated-chat.toml",
            &["requests=2000", "cache.prefix_caching=true"],
            99,
        ),
        ("scenarios/mooncake-replay.toml", &[], 90),
        (
            "scenarios/multi-turn-creep.toml",
            &["cache.prefix_caching=true"],
            90,
        ),
    ];
    for (path, overrides, percent) in cases {
        with_engine(path, overrides, |engine| {
            engine.fast = fast::Fast::new(engine);
            assert!(engine.fast.is_some(), "{path} {overrides:?}: in the case");
            engine.run().expect("no limits");
            let fast_steps = engine.fast.as_ref().map_or(0, |f| f.steps);
            assert!(
                fast_steps * 100 >= engine.stats.steps * percent,
                "{path} {overrides:?}: {fast_steps} of {} steps on the fast path",
                engine.stats.steps
            );
        });
    }
}

/// A small batch between arrivals (a 70B model at 1 request/s, about 70
/// decode steps a request: the README says 79 % of its steps are leapt;
/// two users of a model with sliding-window layers) runs most of its decode
/// steps in leaps, one loop from one event to the next; the bit-for-bit
/// comparisons in `tests/kvsim/fast_path.rs` check what they do.
#[test]
fn quiet_steps_are_leapt() {
    let cases: [(&str, &[&str], Option<&str>); 2] = [
        ("scenarios/llama70b-long-context.toml", &[], Some("79")),
        (
            "scenarios/window-long-context.toml",
            &["traffic.arrival.users=2"],
            None,
        ),
    ];
    for (path, overrides, percent) in cases {
        with_engine(path, overrides, |engine| {
            engine.fast = fast::Fast::new(engine);
            engine.run().expect("no limits");
            let leapt = engine.fast.as_ref().map_or(0, |f| f.leapt);
            let steps = engine.stats.steps;
            assert!(
                leapt * 100 >= steps * 70,
                "{path}: {leapt} of {steps} steps leapt"
            );
            if let Some(percent) = percent {
                let share = leapt as f64 * 100.0 / steps as f64;
                assert_eq!(format!("{share:.0}"), percent, "{path}");
            }
        });
    }
}

/// Under windows a head of the queue blocked by memory does not stop a
/// leap: `window-long-context`'s eight users of ~30k-token prompts wait
/// for memory most of the time, and the README says its base point leaps
/// 7,546 of its 8,248 steps.
#[test]
fn leaps_pass_a_head_blocked_by_memory_under_windows() {
    with_engine("scenarios/window-long-context.toml", &[], |engine| {
        engine.fast = fast::Fast::new(engine);
        engine.run().expect("no limits");
        let leapt = engine.fast.as_ref().map_or(0, |f| f.leapt);
        assert_eq!((leapt, engine.stats.steps), (7_546, 8_248));
    });
}

/// Runs `f` on an engine for the bench's saturated-chat scenario cut to
/// `requests` requests, with `overrides`, on the roofline.
fn with_bench_engine(requests: u32, overrides: &[&str], f: impl FnOnce(&mut Engine<RooflineCost>)) {
    let mut sets = vec![format!("requests={requests}")];
    sets.extend(overrides.iter().map(|s| s.to_string()));
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    with_engine("benches/saturated-chat.toml", &sets, f);
}

/// Runs `f` on an engine for scenario `path` (from the repository's root)
/// with `overrides`, on the roofline.
fn with_engine(path: &str, overrides: &[&str], f: impl FnOnce(&mut Engine<RooflineCost>)) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let sets: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let s = Scenario::load(&path, &sets).expect("scenario");
    let cache = build_cache(&s);
    let d = &s.deployment;
    let cost = RooflineCost::new(&s.model, d, &d.efficiency);
    let mut engine = Engine::new(&s, cache, cost, s.traffic.instantiate(s.seed));
    f(&mut engine);
}

/// The engine's own checks are on in the builds that check invariants (CI
/// runs this module with `--features invariants`): ending a request twice,
/// which would count it in two outcomes, stops the run.
#[test]
#[should_panic(expected = "request 0 ended twice")]
fn a_request_cannot_end_twice() {
    with_bench_engine(20, &[], |engine| {
        engine.run().expect("no limits");
        engine.end_request(0, Outcome::Ok);
    });
}

/// What a run keeps per request: its record (returned to the caller) and
/// the engine's per-request state. The README quotes the sum.
#[test]
fn bytes_kept_per_request() {
    assert_eq!(std::mem::size_of::<RequestRecord>(), 104);
    assert_eq!(std::mem::size_of::<Live>(), 16);
    // Not per request, but an overloaded run queues most of them.
    assert_eq!(std::mem::size_of::<Waiting>(), 20);
}
