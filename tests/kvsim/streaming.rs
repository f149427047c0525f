//! Streaming mode (`output.records = "streaming"`): the summary without
//! per-request records, its percentiles from DDSketches. It must agree with
//! the exact mode: counts, token totals and step statistics exactly,
//! percentiles within the sketch's documented bound, and keep memory flat.

use std::path::Path;

use kvsim::engine::{RunOutput, simulate};
use kvsim::hardware::cost::RooflineCost;
use kvsim::metrics::RequestRecord;
use kvsim::metrics::stream::RELATIVE_ERROR;
use kvsim::scenario::Scenario;

/// Quickstart traffic (llama-3.1-8b on one H100, chat lengths) near
/// saturation, with SLOs so goodput counts, and a queue timeout so one more
/// outcome occurs.
const CHAT: &str = r#"
name = "streaming"
seed = 11
requests = 20000
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[scheduler]
queue_timeout_s = 2.0
[traffic]
arrival = { kind = "poisson", rate = 34.0 }
prompt = { kind = "lognormal", mean = 400, sigma = 1.0, min = 4, max = 8192 }
output = { kind = "lognormal", mean = 300, sigma = 1.0, min = 1, max = 2048 }
max_tokens = { kind = "fixed", value = 2048 }
[slo]
ttft_p99 = 0.5
tpot_p99 = 0.05
"#;

fn run(sets: &[&str]) -> (Scenario, RunOutput) {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let s = Scenario::from_toml(CHAT, Path::new("streaming.toml"), &sets).unwrap();
    let d = &s.deployment;
    let out = simulate(&s, s.seed, RooflineCost::new(&s.model, d, &d.efficiency)).unwrap();
    (s, out)
}

/// The latencies the exact summary takes its percentiles of, sorted.
fn sorted(records: &[RequestRecord], f: impl Fn(&RequestRecord) -> Option<f64>) -> Vec<f64> {
    let mut v: Vec<f64> = records
        .iter()
        .filter(|r| r.outcome == Some(kvsim::metrics::Outcome::Ok))
        .filter_map(f)
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// `got` (the sketch's percentile `q` of `values`) lies within the
/// documented bound: 1 % around the order statistic of rank
/// `floor(q (n - 1))`; the exact mode interpolates up to the next one.
fn within_bound(name: &str, q: f64, values: &[f64], got: Option<f64>, exact: Option<f64>) {
    let got = got.unwrap_or_else(|| panic!("{name}: no sketch value"));
    let exact = exact.unwrap();
    let rank = q / 100.0 * (values.len() - 1) as f64;
    let (lo, hi) = (values[rank.floor() as usize], values[rank.ceil() as usize]);
    assert!(
        got >= lo * (1.0 - RELATIVE_ERROR) && got <= hi * (1.0 + RELATIVE_ERROR),
        "{name}: sketch {got} outside [{lo}, {hi}] +- 1 % (exact {exact})"
    );
    // What a reader compares: the two modes' numbers, within 1 % plus the
    // gap between neighbouring order statistics (small at 20,000 requests).
    let gap = (hi - lo) / exact.max(f64::MIN_POSITIVE);
    assert!(
        ((got - exact) / exact).abs() <= RELATIVE_ERROR + gap,
        "{name}: {got} vs exact {exact}"
    );
}

/// Both modes on one engine and on a two-replica cluster (each replica's
/// sketches merged): everything but the latency percentiles identical, the
/// percentiles within the bound.
#[test]
fn streaming_agrees_with_exact_within_the_sketch_bound() {
    for sets in [
        &[][..],
        &["hardware.replicas=2", "traffic.arrival.rate=68.0"][..],
    ] {
        let mut exact_sets = sets.to_vec();
        exact_sets.push("output.records=\"exact\"");
        let mut stream_sets = sets.to_vec();
        stream_sets.push("output.records=\"streaming\"");
        let (_, exact) = run(&exact_sets);
        let (_, streamed) = run(&stream_sets);
        assert!(!exact.streamed && streamed.streamed);
        assert!(streamed.records.is_empty());
        assert_eq!(exact.records.len(), 20_000);
        let (e, s) = (&exact.summary, &streamed.summary);
        // The run is the same; only what is kept of it differs.
        assert!(
            e.ok > 1000 && e.timeout > 0 && e.ok + e.timeout + e.oom == e.requests,
            "{e:?}"
        );
        let latency_fields = [
            "ttft_p50",
            "ttft_p90",
            "ttft_p99",
            "tpot_p50",
            "tpot_p90",
            "tpot_p99",
            "tpot_mean",
            "e2e_p50",
            "e2e_p99",
            "ttft_queue_p50",
            "ttft_queue_p99",
            "ttft_load_p50",
            "ttft_load_p99",
            "ttft_prefill_p50",
            "ttft_prefill_p99",
        ];
        let (ej, sj) = (
            serde_json::to_value(e).unwrap(),
            serde_json::to_value(s).unwrap(),
        );
        for (k, v) in ej.as_object().unwrap() {
            if !latency_fields.contains(&k.as_str()) {
                assert_eq!(&sj[k], v, "{sets:?}: {k}");
            }
        }
        let recs = &exact.records;
        let secs = |d: Option<kvsim::units::SimDuration>| d.map(|d| d.as_secs_f64());
        let ttft = sorted(recs, |r| secs(r.ttft()));
        within_bound("ttft_p50", 50.0, &ttft, s.ttft_p50, e.ttft_p50);
        within_bound("ttft_p90", 90.0, &ttft, s.ttft_p90, e.ttft_p90);
        within_bound("ttft_p99", 99.0, &ttft, s.ttft_p99, e.ttft_p99);
        let tpot = sorted(recs, RequestRecord::tpot_s);
        within_bound("tpot_p50", 50.0, &tpot, s.tpot_p50, e.tpot_p50);
        within_bound("tpot_p99", 99.0, &tpot, s.tpot_p99, e.tpot_p99);
        let e2e = sorted(recs, |r| secs(r.e2e()));
        within_bound("e2e_p50", 50.0, &e2e, s.e2e_p50, e.e2e_p50);
        within_bound("e2e_p99", 99.0, &e2e, s.e2e_p99, e.e2e_p99);
        let queue = sorted(recs, |r| secs(r.queue()));
        within_bound(
            "ttft_queue_p99",
            99.0,
            &queue,
            s.ttft_queue_p99,
            e.ttft_queue_p99,
        );
        let prefill = sorted(recs, |r| secs(r.prefill()));
        within_bound(
            "ttft_prefill_p50",
            50.0,
            &prefill,
            s.ttft_prefill_p50,
            e.ttft_prefill_p50,
        );
        let (em, sm) = (e.tpot_mean.unwrap(), s.tpot_mean.unwrap());
        assert!(((em - sm) / em).abs() < 1e-12, "tpot_mean {em} vs {sm}");
        if let (Some(ec), Some(sc)) = (&exact.cluster, &streamed.cluster) {
            assert_eq!(ec.replicas.len(), 2);
            for (er, sr) in ec.replicas.iter().zip(&sc.replicas) {
                assert_eq!(
                    (er.requests, er.ok, er.steps),
                    (sr.requests, sr.ok, sr.steps)
                );
            }
            assert!(sc.replica_of_request.is_empty());
        }
    }
}

/// Streaming changes what is kept of the requests, not of the steps: the
/// timeline is the exact run's, bounded by default or sampled.
#[test]
fn a_streamed_timeline_is_the_exact_runs() {
    for extra in [None, Some("output.timeline_interval_s=10")] {
        let with = |mode: &'static str| {
            let mut sets = vec![mode];
            sets.extend(extra);
            run(&sets).1.timeline
        };
        let exact = with("output.records=\"exact\"");
        assert!(exact.len() > 50, "{}", exact.len());
        assert_eq!(with("output.records=\"streaming\""), exact);
    }
}

/// `"auto"` keeps records up to five million expected requests and streams
/// beyond; a disaggregated deployment always keeps them.
#[test]
fn auto_streams_only_beyond_five_million_requests() {
    let load = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Scenario::from_toml(CHAT, Path::new("auto.toml"), &sets).unwrap()
    };
    assert!(!kvsim::engine::streams(&load(&["requests=5000000"])));
    assert!(kvsim::engine::streams(&load(&["requests=5000001"])));
    assert!(!kvsim::engine::streams(&load(&[
        "requests=6000000",
        "output.records=\"exact\""
    ])));
    // A duration at a rate: 34 req/s for 140,000 s is 4.76 million, for
    // 150,000 s 5.1 million.
    let timed = |d: &str| {
        let text = CHAT.replace("requests = 20000", &format!("duration_s = {d}"));
        Scenario::from_toml(&text, Path::new("auto.toml"), &[]).unwrap()
    };
    assert!(!kvsim::engine::streams(&timed("140000")));
    assert!(kvsim::engine::streams(&timed("150000")));
    let disagg = "\n[deployment]\nmode = \"disaggregated\"\n";
    let text = format!(
        "{}{disagg}",
        CHAT.replace("requests = 20000", "requests = 6000000")
    );
    let s = Scenario::from_toml(&text, Path::new("auto.toml"), &[]).unwrap();
    assert!(!kvsim::engine::streams(&s));
}

/// The command line: no `requests.csv` in streaming mode, the same counts
/// in `summary.json`.
#[test]
fn kvsim_run_in_streaming_mode_writes_no_requests_csv() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("s.toml");
    std::fs::write(&sc, CHAT.replace("requests = 20000", "requests = 3000")).unwrap();
    let summary = |mode: &str| {
        let out = dir.path().join(mode);
        let r = assert_cmd::Command::cargo_bin("kvsim")
            .unwrap()
            .args(["run", sc.to_str().unwrap(), "--set"])
            .arg(format!("output.records=\"{mode}\""))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(out.join("requests.csv").exists(), mode == "exact");
        assert!(out.join("timeline.csv").exists() && out.join("report.html").exists());
        let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["metrics"].clone()
    };
    let (e, s) = (summary("exact"), summary("streaming"));
    for k in [
        "requests",
        "ok",
        "timeout",
        "steps",
        "throughput_tok_s",
        "goodput_rps",
    ] {
        assert_eq!(e[k], s[k], "{k}");
    }
}

/// Runs [`CHAT`] in streaming mode for `KVSIM_STREAM_REQUESTS` requests at
/// 60 req/s and prints how far the run raised this process's peak RSS. Run
/// alone in a process of its own by
/// `streaming_memory_does_not_grow_with_the_requests`.
#[test]
#[ignore = "run in a process of its own by streaming_memory_does_not_grow_with_the_requests"]
fn measure_the_peak_memory_of_a_streamed_run() {
    let base = kvsim::engine::peak_rss_bytes().expect("Linux /proc");
    let n = std::env::var("KVSIM_STREAM_REQUESTS").unwrap();
    let (_, out) = run(&[
        &format!("requests={n}"),
        "traffic.arrival.rate=20.0",
        "output.records=\"streaming\"",
    ]);
    assert_eq!(out.summary.requests.to_string(), n);
    let peak = kvsim::engine::peak_rss_bytes().unwrap();
    println!("MEASURED delta={}", peak - base);
}

/// Ten times the requests, the same memory: a streamed run of 2,000,000
/// requests raises the peak RSS by at most 16 MiB more than one of 200,000
/// (exact mode would keep ~700 MB more records). Linux only.
#[cfg(target_os = "linux")]
#[test]
fn streaming_memory_does_not_grow_with_the_requests() {
    let delta = |n: u64| -> f64 {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "streaming::measure_the_peak_memory_of_a_streamed_run",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KVSIM_STREAM_REQUESTS", n.to_string())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        text.lines()
            .find_map(|l| {
                l.split_once("MEASURED delta=")
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("{text}"))
            .parse()
            .unwrap()
    };
    let (small, large) = (delta(200_000), delta(2_000_000));
    eprintln!("streamed: 200,000 requests +{small} bytes, 2,000,000 +{large} bytes");
    assert!(large <= small + 16.0 * 1048576.0, "{large} vs {small}");
}
