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
    // The links moved data 6.000 ms of the run's 82.030 (the prefill
    // replica's out and the decode replica's in; a transfer's latency is a
    // delay, not bandwidth).
    assert!((m.kv_link_util_max - 6.0 / 82.03).abs() < 1e-12);
    assert_eq!(m.gpus, 8);
}

/// `s` with the decode replica's KV budget `d_blocks` and the prefill
/// replica's `p_blocks` 16-token blocks (0: as loaded).
fn budgets(mut s: Scenario, d_blocks: u64, p_blocks: u64) -> Scenario {
    if d_blocks > 0 {
        s.budget.kv_bytes = d_blocks * 16 * BPT;
    }
    if p_blocks > 0 {
        s.disagg.as_mut().unwrap().prefill.budget.kv_bytes = p_blocks * 16 * BPT;
    }
    s
}

#[test]
fn no_room_on_decode_late_reservation_holds_kv_on_prefill() {
    // D holds 128 blocks: R1 takes 63, R2 needs 125, so R2 reserves only
    // when R1 ends at 62.020. Its KV waits on P meanwhile; the transfer runs
    // [62.020, 66.030] and D, idle, runs R2's first step [66.030, 76.040].
    let (_d, s) = scenario(TWO, "", "");
    let out = run(&budgets(s, 128, 0));
    let r2 = out.records[1];
    assert_eq!(ms(r2.first_token), 76.04);
    assert_eq!(ms(r2.first_token) - ms(Some(r2.arrival)), 71.04);
    assert_eq!(ms(r2.finished), 86.04);
    let m = &out.summary;
    assert_eq!(m.decode_stall_rate, 0.5);
    assert!((m.decode_stall_p99.unwrap() - (0.01202 * 0.99)).abs() < 1e-12);
}

#[test]
fn no_room_on_decode_early_reservation_waits_before_prefill() {
    // R2 waits from its arrival (5 ms) to 62.020 before it enters P's queue;
    // prefill [62.020, 92.020], transfer [92.020, 96.030], first step
    // [96.030, 106.040]: TTFT 101.040 ms, and P never holds KV waiting.
    let (_d, s) = scenario(TWO, "reserve = \"before-prefill\"", "");
    let out = run(&budgets(s, 128, 0));
    let [r1, r2] = [out.records[0], out.records[1]];
    assert_eq!(ms(r1.first_token), 32.02);
    assert_eq!(ms(r2.admitted), 62.02);
    assert_eq!(ms(r2.first_token), 106.04);
    assert_eq!(ms(r2.first_token) - ms(Some(r2.arrival)), 101.04);
}

#[test]
fn held_kv_fills_the_prefill_replica_and_stops_its_admissions() {
    // Three 1,000-token prompts at 0 with 2 output tokens. D holds one
    // request (70 blocks), P two (130 blocks). P prefills R1 and R2 in
    // [0, 30]; R1 reserves and moves [30, 32.010]; R2's KV stays on P, so
    // R3 is admitted only when R1's is released, at 32.010 ([32.010,
    // 52.010]). D: R1 [32.010, 52.020]; R2 reserves at 52.020, moves
    // [52.020, 54.030], decodes [54.030, 74.040]; R3 (queued since 52.010)
    // reserves at 74.040, moves [74.040, 76.050], decodes to 96.060.
    let trace = "arrival_s,prompt_tokens,output_tokens\n0,1000,2\n0,1000,2\n0,1000,2\n";
    let (_d, s) = scenario(trace, "", "");
    let out = run(&budgets(s, 70, 130));
    let r = &out.records;
    assert_eq!(ms(r[0].finished), 52.02);
    assert_eq!(ms(r[1].first_token), 64.04);
    assert_eq!(ms(r[1].finished), 74.04);
    assert_eq!(ms(r[2].admitted), 32.01, "held KV kept R3 out of P");
    assert_eq!(ms(r[2].first_token), 86.06);
    assert_eq!(ms(r[2].finished), 96.06);
    let m = &out.summary;
    assert!((m.decode_stall_rate - 2.0 / 3.0).abs() < 1e-12);
    // P was full (126 of 130 blocks) while it held R1 and R2.
    assert!((m.prefill_kv_peak_frac - 126.0 / 130.0).abs() < 1e-12);
}

#[test]
fn transfers_from_one_step_share_the_link_or_queue_on_it() {
    // Two 1,000-token prompts prefilled in one step [0, 30] to the same
    // decode replica. Fair sharing (the default): one latency, then
    // 655,360,000 B at the full 163.84 GB/s shared by two: both end at
    // 34.010, and D runs both first tokens in one step [34.010, 44.030].
    let trace = "arrival_s,prompt_tokens,output_tokens\n0,1000,2\n0,1000,2\n";
    let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
    let (_d, s) = scenario(trace, "", "");
    let out = run(&s);
    assert!(
        close(out.summary.kv_transfer_p50, 0.00401),
        "{:?}",
        out.summary.kv_transfer_p50
    );
    assert_eq!(ms(out.records[0].first_token), 44.03);
    assert_eq!(ms(out.records[1].first_token), 44.03);
    // FIFO: [30, 32.010] and [32.010, 34.020]; D is busy with R1's first
    // step until 42.020, and R2 joins the next one.
    let (_d, s) = scenario(trace, "", "sharing = \"fifo\"\n");
    let out = run(&s);
    assert!(
        close(out.summary.kv_transfer_p50, 0.003015),
        "{:?}",
        out.summary.kv_transfer_p50
    );
    assert_eq!(ms(out.records[0].first_token), 42.02);
    assert_eq!(ms(out.records[1].first_token), 52.03);
}

#[test]
fn layerwise_transfer_overlaps_the_last_prefill_step() {
    // R1 alone: the step [0, 20] ms, wire 2 ms, 80 layers: the transfer ends
    // at 0.010 + max(20 + 2/80, 20/80 + 2) = 20.035 ms; TTFT 30.045 ms.
    let trace = "arrival_s,prompt_tokens,output_tokens\n0,1000,4\n";
    let (_d, s) = scenario(
        trace,
        "reserve = \"before-prefill\"\ntransfer = \"layerwise\"",
        "",
    );
    let out = run(&s);
    assert_eq!(ms(out.records[0].first_token), 30.045);
}

#[test]
fn pools_take_their_own_hardware_and_inherit_the_rest() {
    let (_d, s) = scenario(
        TWO,
        "",
        "[deployment.prefill.hardware]\ntp = 2\nreplicas = 3\n[deployment.decode.hardware]\ntp = 8\n",
    );
    let p = &s.disagg.as_ref().unwrap().prefill;
    assert_eq!((p.deployment.tp, p.deployment.replicas), (2, 3));
    assert_eq!((s.deployment.tp, s.deployment.replicas), (8, 1));
    assert_eq!(p.deployment.gpu.name, s.deployment.gpu.name);
    assert_eq!(p.model.name, s.model.name);
    // min(2, 8) GPUs' links carry a transfer.
    assert_eq!(
        s.disagg.as_ref().unwrap().transfer_rate(2, 8),
        2 * 40_960_000_000
    );
    let out = run(&s);
    assert_eq!(out.summary.gpus, 3 * 2 + 8);
    assert_eq!(out.summary.ok, 2);
}

mod properties {
    use super::super::common::{BIG_GPU, TINY_BPT, TINY_MODEL};
    use kvsim::engine::{simulate, simulate_reference};
    use kvsim::metrics::Outcome;
    use kvsim::scenario::Scenario;
    use proptest::prelude::*;

    /// A random disaggregated deployment of the tiny model and budgets (in
    /// tokens) for its decode and prefill replicas.
    fn cases() -> impl Strategy<Value = (String, u64, u64)> {
        (
            (1u32..4, 1u32..4, 0usize..3, 1u32..30, 0.5f64..40.0),
            (1u32..300, 1u32..80, any::<bool>(), any::<bool>(), 1u32..64),
            (600u64..3000, 300u64..3000, 0u64..1000, any::<bool>()),
        )
            .prop_map(|(a, b, c)| {
                let (p_reps, d_reps, mode, requests, rate) = a;
                let (prompt, output, chunked, reject, seqs) = b;
                let (d_budget, p_budget, seed, fifo) = c;
                let sharing = if fifo || mode == 2 { "fifo" } else { "fair" };
                let deployment = match mode {
                    0 => "",
                    1 => "reserve = \"before-prefill\"",
                    _ => "reserve = \"before-prefill\"\ntransfer = \"layerwise\"",
                };
                let on_oom = if reject {
                    "reject"
                } else {
                    "preempt-recompute"
                };
                let toml = format!(
                    r#"
name = "prop"
seed = {seed}
requests = {requests}
[traffic]
arrival = {{ kind = "poisson", rate = {rate} }}
prompt = {{ kind = "uniform", min = 1, max = {prompt} }}
output = {{ kind = "uniform", min = 1, max = {output} }}
[cache]
policy = "paged"
block_size = 16
prefix_caching = false
[scheduler]
chunked_prefill = {chunked}
max_batched_tokens = 512
max_num_seqs = {seqs}
on_oom = "{on_oom}"
[deployment]
mode = "disaggregated"
{deployment}
[deployment.link]
gbps = 0.001
latency_us = 5
sharing = "{sharing}"
[deployment.prefill.hardware]
replicas = {p_reps}
[deployment.decode.hardware]
replicas = {d_reps}
{TINY_MODEL}
{BIG_GPU}
"#
                );
                (toml, d_budget, p_budget)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
            ..ProptestConfig::default()
        })]

        /// Every request ends once, in one outcome; a completed request's KV
        /// left the prefill pool only after its prefill and reached the
        /// decode pool before its first token; the bytes on the wire are
        /// exactly the completed prefills' prompts; no pool's KV passes its
        /// budget and no link is busy longer than the run; the fast path and
        /// the reference engine agree; a run is a pure function of its
        /// scenario and seed, and its summary the same when read alone.
        #[test]
        fn requests_and_kv_are_conserved_across_pools((toml, d_budget, p_budget) in cases()) {
            let mut s = Scenario::from_toml(&toml, std::path::Path::new("p.toml"), &[])
                .unwrap_or_else(|e| panic!("{e}"));
            s.budget.kv_bytes = d_budget * TINY_BPT;
            s.disagg.as_mut().unwrap().prefill.budget.kv_bytes = p_budget * TINY_BPT;
            let out = simulate(&s, s.seed, super::cost()).unwrap();
            let m = &out.summary;
            prop_assert_eq!(m.ok + m.oom + m.unservable + m.crashed + m.timeout, m.requests);
            prop_assert_eq!(m.crashed, 0);
            prop_assert!(out.records.iter().all(|r| r.outcome.is_some()));
            let flights = out.cluster.as_ref().unwrap().flights.as_ref().unwrap();
            prop_assert_eq!(flights.len(), out.records.len());
            let mut bytes = 0;
            for (r, f) in out.records.iter().zip(flights) {
                if f.transfer_end.is_some() {
                    bytes += u64::from(r.prompt_tokens) * TINY_BPT;
                    prop_assert_eq!(f.bytes, u64::from(r.prompt_tokens) * TINY_BPT);
                }
                if r.outcome != Some(Outcome::Ok) {
                    continue;
                }
                let (admitted, end, start, arrived) = (
                    r.admitted.unwrap(),
                    f.prefill_end.unwrap(),
                    f.transfer_start.unwrap(),
                    f.transfer_end.unwrap(),
                );
                prop_assert!(r.arrival <= admitted && admitted < end);
                prop_assert!(end <= start && start < arrived);
                prop_assert!(arrived < r.first_token.unwrap());
                prop_assert!(r.first_token <= r.finished);
                prop_assert_eq!(r.output_tokens, r.output_target);
            }
            prop_assert_eq!(m.kv_transfer_bytes, bytes);
            prop_assert!(m.prefill_kv_peak_frac <= 1.0 && m.decode_kv_peak_frac <= 1.0);
            prop_assert!(m.kv_link_util_max <= 1.0 + 1e-12);
            let reference = simulate_reference(&s, s.seed, super::cost()).unwrap();
            prop_assert_eq!(format!("{:?}", reference.records), format!("{:?}", out.records));
            prop_assert_eq!(&reference.summary, m);
            let again = simulate(&s, s.seed, super::cost()).unwrap();
            prop_assert_eq!(&again.summary, m);
            // A summary alone counts each pool's failures from the records,
            // a full run from the replicas' summaries.
            let alone = kvsim::engine::simulate_summary(
                &s, s.seed, super::cost(), &kvsim::engine::Limits::default(),
            ).unwrap();
            prop_assert_eq!(&alone, m);
        }
    }
}

#[test]
fn a_disaggregated_run_writes_its_metrics_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.csv"), TWO).unwrap();
    let (_d, s) = scenario(TWO, "", "");
    let text = toml::to_string(&s.spec).unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    let out = assert_cmd::Command::cargo_bin("kvsim")
        .unwrap()
        .args(["run", path.to_str().unwrap(), "--out"])
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("prefill 1 x TP4 h100-sxm"), "{stdout}");
    assert!(stdout.contains("KV transfers"), "{stdout}");
    let o = dir.path().join("o");
    let csv = std::fs::read_to_string(o.join("requests.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.ends_with(
        "prefill_s,replica,transfer_s,first_step_s,decode_stall_s,kv_transfer_bytes,prefill_replica"
    ));
    // R1 (the roofline prices its steps; the link does not depend on it):
    // transfer 2.010 ms, no stall, 327,680,000 bytes, from prefill replica 0
    // to decode replica 1.
    let r1: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let n = r1.len();
    assert_eq!(r1[n - 6..n - 4], ["1", "0.002010000"]);
    assert_eq!(r1[n - 3..], ["0.000000000", "327680000", "0"]);
    assert!(r1[n - 4].parse::<f64>().unwrap() > 0.0);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["metrics"]["kv_transfer_bytes"], 983_040_000u64);
    assert_eq!(summary["metrics"]["gpus"], 8);
    let html = std::fs::read_to_string(o.join("report.html")).unwrap();
    assert!(html.contains("Disaggregation"));
}

/// A disaggregated sweep: rates, reservation modes and prefill replicas.
const SWEPT: &str = r#"
name = "disagg-sweep"
seed = 3
requests = 400
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = { kind = "poisson", rate = 10.0 }
prompt = { kind = "lognormal", mean = 2000, sigma = 0.8, min = 16, max = 8000 }
output = { kind = "lognormal", mean = 200, sigma = 0.8, min = 1, max = 1000 }
[cache]
prefix_caching = false
[deployment]
mode = "disaggregated"
[deployment.prefill.hardware]
replicas = 2
[sweep]
"traffic.arrival.rate" = [5.0, 40.0]
"deployment.reserve" = ["after-prefill", "before-prefill"]
"deployment.prefill.hardware.replicas" = [1, 3]
"#;

#[test]
fn a_disaggregated_sweep_is_the_same_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(&path, SWEPT).unwrap();
    let sweep = |threads: &str| {
        let out = dir.path().join(format!("o{threads}"));
        assert_cmd::Command::cargo_bin("kvsim")
            .unwrap()
            .args([
                "sweep",
                path.to_str().unwrap(),
                "--no-plots",
                "--threads",
                threads,
            ])
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        std::fs::read_to_string(out.join("sweep.csv")).unwrap()
    };
    let one = sweep("1");
    assert_eq!(one, sweep("2"), "sweep.csv depends on the thread count");
    let mut lines = one.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 8);
    for r in &rows {
        // One decode GPU and one or three prefill GPUs; every request's KV
        // crossed the link.
        let p: u64 = r[col("deployment.prefill.hardware.replicas")]
            .parse()
            .unwrap();
        assert_eq!(r[col("gpus")].parse::<u64>().unwrap(), p + 1);
        assert!(r[col("kv_transfer_bytes")].parse::<u64>().unwrap() > 0);
    }
}

#[test]
fn link_defaults_are_the_nic_and_nvlink_at_nccl_efficiency() {
    // README: "infiniband" | "roce" (45 GB/s per GPU, 10 us); NVLink at the
    // fraction of its line rate NCCL's bus bandwidth reaches (370 of 450 GB/s
    // on an H100).
    let (_d, s) = scenario(TWO, "", "");
    let link = |kind: &str| {
        let text = toml::to_string(&s.spec).unwrap();
        let mut t: toml::Table = text.parse().unwrap();
        let dep = t["deployment"].as_table_mut().unwrap();
        dep.insert(
            "link".into(),
            toml::Value::Table(toml::toml! { kind = kind }.try_into().unwrap()),
        );
        let s = Scenario::from_table(t, &_d.path().join("s.toml")).unwrap();
        s.disagg.unwrap().link
    };
    for kind in ["infiniband", "roce"] {
        let l = link(kind);
        assert_eq!(
            (l.bytes_per_s, l.latency.as_nanos()),
            (45_000_000_000, 10_000)
        );
    }
    let nv = link("nvlink");
    assert_eq!(nv.bytes_per_s, 370_000_000_000);
}

#[test]
fn kv_moves_in_the_prefill_layout_and_lands_in_the_decode_one() {
    // A bf16 prefill pool and an fp8 decode pool: the wire carries the
    // prefill replica's bf16 bytes (converted on arrival, free), the decode
    // replica holds half as many per token.
    let (_d, s) = scenario(TWO, "", "[deployment.decode.cache]\nkv_dtype = \"fp8\"\n");
    assert_eq!(s.layout.bytes_per_token(), BPT / 2);
    let out = run(&s);
    assert_eq!(out.summary.kv_transfer_bytes, 3000 * BPT);
    assert_eq!(out.summary.kv_bytes_per_token, BPT / 2);
    assert_eq!(ms(out.records[0].first_token), 32.02);
}

#[test]
fn the_decode_router_spreads_kv_by_its_policy() {
    // Two decode replicas of 128 blocks, each with room for one long
    // request; long (1,800-token) and short (100-token) requests of 200
    // output tokens alternate. Round-robin sends every long one to replica
    // 0, which decodes them one after another (four 2-second decodes);
    // routing by KV in use (reservations and requests on their way
    // included) or by Dynamo's decode cost spreads them, two per replica, and the run ends about two seconds earlier
    // (head-of-line waits for room remain: one long request per replica).
    let mut trace = String::from("arrival_s,prompt_tokens,output_tokens\n");
    for i in 0..8 {
        let p = if i % 2 == 0 { 1800 } else { 100 };
        trace.push_str(&format!("{},{p},200\n", f64::from(i) * 0.05));
    }
    let run_with = |router: &str| {
        let (_d, s) = scenario(
            &trace,
            "",
            &format!("[deployment.decode.hardware]\nreplicas = 2\nrouter = \"{router}\"\n"),
        );
        let out = run(&budgets(s, 128, 0));
        assert_eq!(out.summary.ok, 8, "{router}");
        let c = out.cluster.as_ref().unwrap();
        // Decode replica 0 is the cluster's replica 1 (the prefill one is 0).
        let longs_on_first = out
            .records
            .iter()
            .zip(&c.replica_of_request)
            .filter(|(r, d)| r.prompt_tokens == 1800 && **d == 1)
            .count();
        (out.summary.duration_s, longs_on_first)
    };
    let (rr, rr_first) = run_with("round-robin");
    assert_eq!(
        rr_first, 4,
        "round-robin: every long request on decode replica 0"
    );
    assert!(rr > 8.0, "{rr}");
    // Counting requests alone alternates like round-robin on this trace.
    assert_eq!(run_with("least-outstanding").1, 4);
    for router in ["least-kv", "kv-aware"] {
        let (duration, first) = run_with(router);
        assert_eq!(first, 2, "{router}");
        assert!(duration < rr - 1.5, "{router}: {duration} vs {rr}");
    }
}

#[test]
fn the_long_prompt_scenario_spans_many_small_decode_steps() {
    // README, Speed: the bundled 70B scenario's decode batch is 3.5 on
    // average at 1 request/s, so each request spans about 70 decode steps.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/disagg-70b-long-prompts.toml");
    let s = Scenario::load(&path, &["requests=20000".into()]).unwrap();
    let d = &s.deployment;
    let cost = kvsim::hardware::cost::RooflineCost::new(&s.model, d, &d.efficiency);
    let out = simulate(&s, s.seed, cost).unwrap();
    let m = &out.summary;
    assert_eq!(format!("{:.1}", m.decode_batch_mean), "3.5");
    let steps_per_request = m.steps as f64 / m.requests as f64;
    assert!(
        (65.0..75.0).contains(&steps_per_request),
        "{steps_per_request}"
    );
}

#[test]
fn sessions_and_closed_loop_users_run_across_the_pools() {
    // Multi-turn sessions (the prefill pool's prefix cache keeps each
    // conversation) and closed-loop users: every turn is routed through both
    // pools, and the next one follows its predecessor's end.
    let dir = tempfile::tempdir().unwrap();
    let text = |arrival: &str, session: &str| {
        format!(
            r#"
name = "sessions"
seed = 5
requests = 120
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = {arrival}
prompt = {{ kind = "fixed", value = 300 }}
output = {{ kind = "fixed", value = 40 }}
{session}
[cache]
prefix_caching = true
[deployment]
mode = "disaggregated"
[deployment.prefill.hardware]
replicas = 2
router = "session-affinity"
[deployment.decode.hardware]
replicas = 2
router = "least-kv"
"#
        )
    };
    let sessions = text(
        "{ kind = \"poisson\", rate = 2.0 }",
        "session = { turns = { kind = \"fixed\", value = 4 }, think_s = 0.5 }",
    );
    let s = Scenario::from_toml(&sessions, &dir.path().join("s.toml"), &[]).unwrap();
    let out = run(&s);
    let m = &out.summary;
    assert_eq!((m.requests, m.ok), (120, 120));
    // Each conversation's turns in order, each turn after the previous
    // one's end, its prompt carrying the history.
    let mut by_session: std::collections::BTreeMap<u64, Vec<_>> = Default::default();
    for r in &out.records {
        by_session.entry(r.session.unwrap()).or_default().push(*r);
    }
    for turns in by_session.values() {
        for w in turns.windows(2) {
            assert_eq!(w[1].turn, w[0].turn + 1);
            assert!(w[1].arrival >= w[0].finished.unwrap());
            assert_eq!(
                w[1].prompt_tokens,
                w[0].prompt_tokens + w[0].output_tokens + 300
            );
        }
    }
    // Later turns hit the prefill replica's prefix cache.
    assert!(m.prefix_hit_rate > 0.3, "{}", m.prefix_hit_rate);
    let users = text("{ kind = \"closed\", users = 6, think_s = 0.2 }", "");
    let s = Scenario::from_toml(&users, &dir.path().join("u.toml"), &[]).unwrap();
    let out = run(&s);
    assert_eq!((out.summary.requests, out.summary.ok), (120, 120));
}

/// Why the bundled 70B disaggregated scenario is slow per request (the
/// README's Speed section): its small decode batch takes about 70 engine
/// steps a request, 42,230 for its 600.
#[test]
fn the_long_prompt_scenario_takes_seventy_steps_a_request() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/disagg-70b-long-prompts.toml");
    let s = Scenario::load(&path, &[]).unwrap();
    let cost =
        kvsim::hardware::cost::RooflineCost::new(&s.model, &s.deployment, &s.deployment.efficiency);
    let out = simulate(&s, s.seed, cost).unwrap();
    assert_eq!(out.summary.requests, 600);
    assert_eq!(out.summary.steps, 42_230);
    assert!(
        out.summary.decode_batch_mean < 4.0,
        "{}",
        out.summary.decode_batch_mean
    );
}

#[test]
fn the_link_bound_bench_keeps_its_link_busy() {
    // README, Speed (the eleventh round): `benches/disagg.toml` on a 2 GB/s
    // link, 20,000 requests (the bench's `link-bound` case), keeps the link
    // busy 98.7 % of the time, and every request's KV crosses it.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/disagg.toml");
    let sets = ["deployment.link.gbps=2".into(), "requests=20000".into()];
    let s = Scenario::load(&path, &sets).unwrap();
    let d = &s.deployment;
    let cost = kvsim::hardware::cost::RooflineCost::new(&s.model, d, &d.efficiency);
    let m = simulate(&s, s.seed, cost).unwrap().summary;
    assert_eq!(format!("{:.1}", m.kv_link_util * 100.0), "98.7");
    assert_eq!(m.ok, 20_000);
}
