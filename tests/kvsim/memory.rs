//! Where the memory goes: hand-computed waste breakdowns, and swapping against
//! recomputation.

use kvsim::engine::simulate;
use kvsim::hardware::cost::FixedCost;
use kvsim::metrics::Outcome;
use kvsim::model::Span;
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
        assert_eq!(t.levels.internal * 5, t.levels.budget * 4);
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
    for t in &out.timeline {
        assert_eq!(t.levels.budget, s.budget.kv_bytes);
        let slack = t.levels.reserved + t.levels.internal;
        assert!(
            slack < u64::from(t.running) * 16 * TINY_BPT,
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
        simulate(&s, 0, cost).unwrap()
    };
    let swap = {
        let s = scenario(&body("preempt-swap", "swap_bytes = 65536"), 64);
        simulate(&s, 0, cost).unwrap()
    };
    let no_room = {
        let s = scenario(&body("preempt-swap", "swap_bytes = 4096"), 64);
        simulate(&s, 0, cost).unwrap()
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

/// Two requests with a 64-token shared system prompt (block 16): the second
/// finds the first's 4 blocks still cached after it finished, and skips their
/// prefill.
#[test]
fn a_shared_prefix_is_served_from_cached_blocks() {
    let s = scenario(
        &closed(
            1,
            2,
            16,
            4,
            "prefix = { count = 1, tokens = 64, fraction = 1.0 }\n[cache]\nblock_size = 16\nprefix_caching = true",
        ),
        1000,
    );
    let out = run(&s);
    assert!(
        out.records
            .iter()
            .all(|r| r.prompt_tokens == 80 && r.outcome == Some(Outcome::Ok))
    );
    assert_eq!(out.summary.prefix_hit_tokens, 64);
    assert_eq!(out.summary.prefix_saved_bytes, 64 * TINY_BPT);
    assert!((out.summary.prefix_hit_rate - 64.0 / 160.0).abs() < 1e-12);
    // Without prefix caching the same traffic computes every token.
    let plain = run(&scenario(
        &closed(
            1,
            2,
            16,
            4,
            "prefix = { count = 1, tokens = 64, fraction = 1.0 }\n[cache]\nblock_size = 16",
        ),
        1000,
    ));
    assert_eq!(plain.summary.prefix_hit_tokens, 0);
}

/// Parallel sampling shares the prompt's blocks copy-on-write: one request
/// with n = 4 holds far less KV than 4 independent requests of the same
/// lengths, and all 4 samples finish.
#[test]
fn parallel_samples_share_the_prompt_blocks() {
    let shared = run(&scenario(
        &closed(1, 1, 320, 10, "n = 4\n[cache]\nblock_size = 16"),
        10_000,
    ));
    let r = &shared.records[0];
    assert_eq!(r.outcome, Some(Outcome::Ok));
    assert_eq!(r.samples, 4);
    assert_eq!(r.output_tokens, r.output_target);
    let independent = run(&scenario(
        &closed(4, 4, 320, 10, "[cache]\nblock_size = 16"),
        10_000,
    ));
    assert!(
        independent
            .records
            .iter()
            .all(|r| r.outcome == Some(Outcome::Ok))
    );
    // 320 prompt tokens = 20 blocks once, plus at most one block per sample,
    // against 4 x 20 blocks.
    let peak =
        |o: &kvsim::engine::RunOutput| o.timeline.iter().map(|t| t.kv_used_bytes()).max().unwrap();
    assert!(
        peak(&shared) <= (20 + 4) * 16 * TINY_BPT,
        "{}",
        peak(&shared)
    );
    assert!(peak(&independent) >= 4 * 20 * 16 * TINY_BPT);
}

/// gemma-2-style hybrid layers: one of two layers keeps a 32-token window.
/// A 500-token sequence holds 500 tokens of the full layer and at most 48 of
/// the windowed one (3 blocks of 16): memory is not counted as if every layer
/// kept everything.
#[test]
fn hybrid_layers_are_accounted_per_group() {
    let s = scenario_with(
        &closed(1, 1, 16, 485, "[cache]\nblock_size = 16"),
        100_000,
        &[
            "model.layers=2",
            "model.sliding_window={ window = 32, layers = 1 }",
        ],
    );
    assert_eq!(s.layout.groups()[0].bytes_per_token, TINY_BPT);
    assert_eq!(s.layout.groups()[1].bytes_per_token, TINY_BPT);
    assert_eq!(s.layout.groups()[1].span, Span::Window(32));
    let out = run(&s);
    assert_eq!(out.records[0].outcome, Some(Outcome::Ok));
    let peak = out
        .timeline
        .iter()
        .map(|t| t.kv_used_bytes())
        .max()
        .unwrap();
    // 500 tokens: 32 blocks of the full layer + at most 3 of the windowed one.
    assert!(peak <= (32 + 3) * 16 * TINY_BPT, "{peak}");
    assert!(peak >= 32 * 16 * TINY_BPT);
}

/// gemma-2-9b alternates global and local (4096-token window) layers: 21 of
/// each. Its KV is accounted per layer group, so an 8,000-token sequence
/// holds about three quarters of what all-global layers would, and reads the
/// same.
#[test]
fn gemma_2_local_layers_keep_only_their_window() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.toml");
    let s =
        kvsim::scenario::Scenario::load(&path, &["model.preset=gemma-2-9b".to_string()]).unwrap();
    let [global, local] = s.layout.groups() else {
        panic!("two groups")
    };
    assert_eq!((global.layers, local.layers), (21, 21));
    assert_eq!((global.span, local.span), (Span::All, Span::Window(4096)));
    assert_eq!(global.bytes_per_token, local.bytes_per_token);
    let per_group = global.bytes_per_token;
    assert_eq!(s.layout.attended_bytes(8000), per_group * (8000 + 4096));
    let hybrid = s.cache.footprint_bytes(&s.layout, 8000, 8000);
    let all_global = 2 * per_group * 8000;
    let ratio = hybrid as f64 / all_global as f64;
    assert!((0.75..0.78).contains(&ratio), "{ratio}");
}

/// `kvsim kv` applies a model's sliding window as the simulator does:
/// mistral-7b-v0.1 (window 4096 on every layer) at 16,384 tokens holds what
/// its window keeps in `kv` and in a simulated run alike (the run's paged
/// cache within one block of it, and exactly `kv`'s paged bytes), not the
/// 2 GiB of a full-context cache.
#[test]
fn the_kv_calculator_and_a_run_agree_on_a_windowed_model() {
    let out = assert_cmd::Command::cargo_bin("kvsim")
        .unwrap()
        .args([
            "kv",
            "--model",
            "mistral-7b-v0.1",
            "--seq-len",
            "16384",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let kv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bpt = kv["bytes_per_token"].as_u64().unwrap();
    assert_eq!(bpt, 131_072);
    let held = kv["total_bytes"].as_u64().unwrap();
    assert_eq!(held, 4096 * bpt);
    assert_eq!(
        kv["savings"]["all_global_bytes"].as_u64().unwrap(),
        16_384 * bpt
    );
    assert_eq!(
        kv["savings"]["saved_bytes"].as_u64().unwrap(),
        (16_384 - 4096) * bpt
    );

    let text = r#"
name = "mistral-16k"
requests = 1
[model]
preset = "mistral-7b-v0.1"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = { kind = "closed", users = 1, think_s = 0.0 }
prompt = { kind = "fixed", value = 16383 }
output = { kind = "fixed", value = 2 }
[cache]
policy = "paged"
block_size = 16
"#;
    let s = kvsim::scenario::Scenario::from_toml(text, std::path::Path::new("m.toml"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let run = run(&s);
    assert_eq!(run.records[0].outcome, Some(Outcome::Ok));
    // The last step holds all 16,384 tokens' worth of context.
    let peak = run
        .timeline
        .iter()
        .map(|t| t.kv_used_bytes())
        .max()
        .unwrap();
    assert!(
        peak >= held && peak - held <= 16 * bpt,
        "the run held {peak} bytes, kv says {held}"
    );
    // Byte for byte: when the sequence has 16,384 tokens the run holds the
    // paged blocks `kv` prices (256 blocks; at 16,383 tokens the window
    // straddled one more, the peak above).
    assert_eq!(kv["block_size"].as_u64(), Some(16));
    let paged = kv["paged_bytes_per_sequence"].as_u64().unwrap();
    assert_eq!(paged, 256 * 16 * bpt);
    assert!(run.timeline.iter().any(|t| t.kv_used_bytes() == paged));
}
