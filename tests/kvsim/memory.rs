//! Where the memory goes: hand-computed waste breakdowns, and swapping against
//! recomputation.

use kvsim::engine::simulate;
use kvsim::hardware::cost::FixedCost;
use kvsim::metrics::Outcome;
use kvsim::units::SimDuration;

use crate::common::{TINY_BPT, closed, run, scenario, scenario_with};

/// Orca Max: a contiguous reservation of the whole context (500 tokens) for a
/// request whose final footprint is a fifth of it (50 + 51 - 1 = 100 tokens)
/// leaves 80 % of the budget as internal waste for the request's whole life.
#[test]
fn max_model_len_reservation_wastes_four_fifths() {
    let s = scenario_with(
        &closed(
            1,
            1,
            50,
            51,
            "[cache]\npolicy = \"contiguous\"\nreserve = \"max-model-len\"",
        ),
        500,
        &["model.max_model_len=500"],
    );
    let out = run(&s);
    assert_eq!(out.records[0].outcome, Some(Outcome::Ok));
    let m = &out.summary;
    assert!(
        (m.waste_internal - 0.8).abs() < 1e-9,
        "internal {}",
        m.waste_internal
    );
    // Stored tokens grow from 50 to 99 while the reservation's first 100
    // slots fill: used + reserved is the other fifth.
    assert!((m.waste_used + m.waste_reserved - 0.2).abs() < 1e-9);
    assert!(m.waste_used > 0.1 && m.waste_used < 0.2);
    assert!((m.kv_mean_frac - 1.0).abs() < 1e-9);
    // Every step saw the same split.
    for t in &out.timeline {
        assert!((t.levels.internal - 0.8).abs() < 1e-9);
    }
}

/// Oracle reservations waste nothing beyond what is still to be generated.
#[test]
fn oracle_reservation_has_no_internal_waste() {
    let s = scenario_with(
        &closed(
            1,
            1,
            50,
            51,
            "[cache]\npolicy = \"contiguous\"\nreserve = \"oracle\"",
        ),
        500,
        &["model.max_model_len=500"],
    );
    let m = run(&s).summary;
    assert!(m.waste_internal.abs() < 1e-12);
    assert!(m.waste_reserved > 0.0);
}

/// Paged allocation on demand: whatever is allocated but not stored is less
/// than one block per running sequence, at every step.
#[test]
fn paged_waste_is_below_one_block_per_sequence() {
    let s = scenario(
        r#"
name = "paged-waste"
seed = 3
requests = 300
[traffic]
arrival = { kind = "poisson", rate = 40.0 }
prompt = { kind = "uniform", min = 1, max = 300 }
output = { kind = "uniform", min = 1, max = 300 }
[cache]
policy = "paged"
block_size = 16
"#,
        100_000,
    );
    let out = run(&s);
    let budget = s.budget.kv_bytes as f64;
    for t in &out.timeline {
        let slack = (t.levels.reserved + t.levels.internal) * budget;
        assert!(
            slack < f64::from(t.running) * 16.0 * TINY_BPT as f64 + 1e-6,
            "{slack} at {:?}",
            t.time
        );
    }
    assert!(out.summary.waste_external == 0.0);
}

/// Swap and recompute preempt the same sequence and end with the same
/// outcomes; they differ in what the eviction costs: PCIe copies against a
/// prefill of the prompt and generated tokens. Host capacity is respected.
#[test]
fn swap_and_recompute_agree_on_outcomes_and_differ_in_latency() {
    let body = |on_oom: &str, swap: &str| {
        closed(
            2,
            2,
            16,
            40,
            &format!("[cache]\nblock_size = 16\n[scheduler]\non_oom = \"{on_oom}\"\n{swap}"),
        )
    };
    // 1 ms per prompt token, 1 ms per KiB over PCIe, 10 ms per step.
    let cost = FixedCost {
        per_step: SimDuration::from_nanos(10_000_000),
        per_prefill_token: SimDuration::from_nanos(1_000_000),
        per_swap_kib: SimDuration::from_nanos(1_000_000),
    };
    let recompute = {
        let s = scenario(&body("preempt-recompute", ""), 64);
        simulate(&s, 0, cost)
    };
    let swap = {
        let s = scenario(&body("preempt-swap", "swap_bytes = 65536"), 64);
        simulate(&s, 0, cost)
    };
    let no_room = {
        let s = scenario(&body("preempt-swap", "swap_bytes = 4096"), 64);
        simulate(&s, 0, cost)
    };
    for out in [&recompute, &swap, &no_room] {
        assert!(out.records.iter().all(|r| r.outcome == Some(Outcome::Ok)));
        assert_eq!(out.summary.preemptions, 1);
    }
    // B held 2 blocks (32 tokens x 256 B = 8 KiB) when evicted: 8 ms out and
    // 8 ms back in, against a 33-token recompute prefill (33 ms).
    assert_eq!(swap.summary.swaps, 1);
    assert_eq!(swap.summary.swap_bytes, 2 * 8192);
    let b_end = |o: &kvsim::engine::RunOutput| o.records[1].finished.unwrap().as_nanos();
    assert_eq!(
        b_end(&recompute) - b_end(&swap),
        33_000_000 - 2 * 8_000_000 + 8_000_000 - 8_000_000
    );
    // 4 KiB of host memory cannot take 8 KiB: it falls back to recompute.
    assert_eq!(no_room.summary.swaps, 0);
    assert_eq!(b_end(&no_room), b_end(&recompute));
}
