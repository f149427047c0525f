//! Prefill/decode disaggregation (issue 18): the hand-computed two-request
//! example of docs/design/disaggregation.md 5.8 with exact transfer and TTFT
//! times, its no-room variants under both reservation modes, the layer-wise
//! pipeline, conservation across pools, the load-time refusals and
//! determinism.

use kvsim::engine::{RunOutput, simulate, simulate_reference};
use kvsim::hardware::cost::FixedCost;
use kvsim::metrics::Outcome;
use kvsim::scenario::Scenario;
use kvsim::units::SimDuration;

/// Every step costs 10 ms plus 10 us per prompt token, on both pools.
fn cost() -> FixedCost {
    FixedCost {
        per_step: SimDuration::from_nanos(10_000_000),
        per_prefill_token: SimDuration::from_nanos(10_000),
        per_swap_kib: SimDuration::ZERO,
    }
}

/// Llama-3.1-70B (BF16 KV: 80 × 8 × 128 × 2 × 2 = 327,680 B per token), one
/// TP4 prefill replica and one TP4 decode replica on H100s, a 40.96 GB/s
/// link per GPU with 10 us per transfer (163.84 GB/s for a TP4 pair), and
/// `extra` TOML after `[deployment]`'s keys.
fn scenario(trace: &str, deployment: &str, extra: &str) -> (tempfile::TempDir, Scenario) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.csv"), trace).unwrap();
    let text = format!(
        r#"
name = "hand"
[model]
preset = "llama-3.1-70b"
[hardware]
gpu = "h100-sxm"
tp = 4
[traffic]
arrival = {{ kind = "trace", path = "t.csv" }}
[cache]
policy = "paged"
block_size = 16
prefix_caching = false
[scheduler]
max_batched_tokens = 8192
[deployment]
mode = "disaggregated"
{deployment}
[deployment.link]
gbps = 40.96
latency_us = 10
{extra}
"#
    );
    let s = Scenario::from_toml(&text, &dir.path().join("s.toml"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    (dir, s)
}

/// R1 at 0 ms (1,000-token prompt, 4 output tokens), R2 at 5 ms (2,000, 2).
const TWO: &str = "arrival_s,prompt_tokens,output_tokens\n0,1000,4\n0.005,2000,2\n";

const BPT: u64 = 327_680;

fn run(s: &Scenario) -> RunOutput {
    let out = simulate(s, s.seed, cost()).unwrap();
    let reference = simulate_reference(s, s.seed, cost()).unwrap();
    assert_eq!(
        format!("{:?}", out.records),
        format!("{:?}", reference.records),
        "the fast path and the reference engine agree"
    );
    assert_eq!(out.summary, reference.summary);
    out
}

fn ms(t: Option<kvsim::units::SimTime>) -> f64 {
    t.expect("set").as_nanos() as f64 / 1e6
}

#[test]
fn two_requests_after_prefill_transfer_exactly() {
    let (_d, s) = scenario(TWO, "", "");
    let out = run(&s);
    let [r1, r2] = [out.records[0], out.records[1]];
    // P: step 1 [0, 20] ms prefills R1; step 2 [20, 50] prefills R2.
    // R1's 327,680,000 B at 163.84 GB/s: 2 ms + 10 us, [20, 22.010].
    // D: R1's first token [22.010, 32.020] (10 ms + one recomputed token),
    // then three decode steps to 62.020.
    assert_eq!(ms(r1.admitted), 0.0);
    assert_eq!(ms(r1.first_token), 32.02);
    assert_eq!(ms(r1.finished), 62.02);
    assert_eq!(r1.output_tokens, 4);
    // R2's transfer [50, 54.010]; D is mid-step until 62.020, then R2's first
    // token [62.020, 72.030] and its second [72.030, 82.030].
    assert_eq!(ms(r2.admitted), 20.0);
    assert_eq!(ms(r2.first_token), 72.03);
    assert_eq!(ms(r2.finished), 82.03);
    assert_eq!(r2.output_tokens, 2);
    assert!(out.records.iter().all(|r| r.outcome == Some(Outcome::Ok)));
    let m = &out.summary;
    assert_eq!(m.kv_transfer_bytes, 3000 * BPT);
    assert_eq!(m.kv_transfer_bytes, 983_040_000);
    // TTFT parts: R1 0 / 20 / 2.010 / 10.010 ms, R2 15 / 30 / 4.010 / 18.020.
    let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
    assert!(
        close(m.ttft_p50, (32.02 + 67.03) / 2.0 / 1e3),
        "{:?}",
        m.ttft_p50
    );
    assert!(close(m.ttft_queue_p50, 0.0075), "{:?}", m.ttft_queue_p50);
    assert!(close(m.ttft_prefill_p50, 0.025), "{:?}", m.ttft_prefill_p50);
    assert!(
        close(m.ttft_transfer_p50, 0.00301),
        "{:?}",
        m.ttft_transfer_p50
    );
    assert!(
        close(m.ttft_first_step_p50, 0.014015),
        "{:?}",
        m.ttft_first_step_p50
    );
    assert!(close(m.kv_transfer_p50, 0.00301), "{:?}", m.kv_transfer_p50);
    assert_eq!(m.decode_stall_rate, 0.0);
    // The link was busy 6.020 ms of the run's 82.030 (both directions: the
    // prefill replica's out and the decode replica's in).
    assert!((m.kv_link_util_max - 6.02 / 82.03).abs() < 1e-12);
    assert_eq!(m.gpus, 8);
}
