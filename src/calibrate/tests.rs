use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::catalog;
use crate::hardware::cost::CostModel;

/// The coefficients the synthetic measurements are generated with.
const TRUTH: (f64, f64, f64) = (0.62, 0.47, 2.3e-3);

fn deployment(gpu: &str, tp: u32) -> Deployment {
    let gpu = catalog::gpu(gpu).unwrap();
    Deployment::new(gpu, tp, crate::model::Dtype::Bf16)
}

fn truth(d: &Deployment) -> Efficiency {
    Efficiency {
        mbu: TRUTH.0,
        mfu: TRUTH.1,
        step_overhead_s: TRUTH.2,
        ..d.efficiency
    }
}

/// A mix of decode-bound, prefill-bound and mixed steps, timed by kvsim's own
/// roofline with the true coefficients, each multiplied by a uniform noise
/// factor in `1 +- noise`.
fn synthetic_steps(
    model: &Model,
    d: &Deployment,
    n: usize,
    noise: f64,
    seed: u64,
) -> Vec<Measurement> {
    let cost = RooflineCost::new(model, d, &truth(d));
    let layout = kv_layout(model, Dtype::Bf16, d.tp, None);
    let max_tokens = (d.gpu.vram_bytes / 2 * u64::from(d.tp) / layout.bytes_per_token()) as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let batch = 1u32 << rng.random_range(0..=8u32);
            // At most half the GPUs' memory in KV: more would not fit, and
            // calibrate refuses such rows.
            let context = rng.random_range(100..=8000u32).min(max_tokens / batch);
            let (batch, prefill_tokens, prefill_seqs) = match i % 3 {
                0 => (batch, 0, 0),
                1 => (
                    0,
                    rng.random_range(16..=8192u32),
                    rng.random_range(1..=4u32),
                ),
                _ => (batch.min(64), rng.random_range(1..=2048u32), 1),
            };
            let mut m = Measurement {
                batch,
                context_tokens: context,
                prefill_tokens,
                prefill_seqs,
                step_s: 0.0,
                line: i as u64 + 2,
                kind: MeasurementKind::Step,
            };
            let t = cost.step_time(&m.work(&layout)).as_secs_f64();
            m.step_s = t * (1.0 + noise * rng.random_range(-1.0..=1.0f64));
            m
        })
        .collect()
}

fn assert_close(name: &str, got: f64, want: f64, tolerance: f64) {
    let err = (got / want - 1.0).abs();
    assert!(
        err <= tolerance,
        "{name}: fitted {got}, true {want}, error {:.3} % > {:.3} %",
        err * 100.0,
        tolerance * 100.0
    );
}

/// The fit is within `tolerance` of the truth for mbu and mfu, and within
/// `overhead_tolerance` for the step overhead (a small share of every step,
/// so noise moves it most).
fn assert_recovers(fit: &Fit, tolerance: f64, overhead_tolerance: f64) {
    assert_close("mbu", fit.mbu, TRUTH.0, tolerance);
    assert_close("mfu", fit.mfu, TRUTH.1, tolerance);
    assert_close(
        "step_overhead_s",
        fit.step_overhead_s,
        TRUTH.2,
        overhead_tolerance,
    );
    assert!(
        fit.mape_after < fit.mape_before && fit.max_err_after < fit.max_err_before,
        "{fit:?}"
    );
    assert!(
        fit.memory_bound_rows > 0 && fit.compute_bound_rows > 0,
        "{fit:?}"
    );
    assert!(fit.warnings().is_empty());
}

#[test]
fn step_latencies_without_noise_give_back_the_coefficients() {
    // Dense tp 1; tensor-parallel with all-reduces; MoE; sliding-window layers.
    for (model, gpu, tp) in [
        ("llama-3.1-8b", "h100-sxm", 1),
        ("llama-3.1-70b", "h100-sxm", 4),
        ("mixtral-8x7b", "a100-80gb", 2),
        ("gemma-2-9b", "l40s", 1),
    ] {
        let m = catalog::model(model).unwrap();
        let d = deployment(gpu, tp);
        let rows = synthetic_steps(&m, &d, 300, 0.0, 7);
        let fit = fit(&m, &d, &rows).unwrap();
        eprintln!(
            "{model} on {gpu} tp {tp}: mbu {:.5} mfu {:.5} overhead {:.6} s; \
             mape {:.2} % -> {:.4} %, max {:.2} % -> {:.4} %",
            fit.mbu,
            fit.mfu,
            fit.step_overhead_s,
            fit.mape_before,
            fit.mape_after,
            fit.max_err_before,
            fit.max_err_after
        );
        // Only the nanosecond rounding of step_time separates data and model.
        assert_recovers(&fit, 1e-3, 1e-3);
        assert!(fit.mape_after < 1e-3, "{fit:?}");
    }
}

#[test]
fn step_latencies_with_three_percent_noise_give_the_coefficients_within_a_few_percent() {
    let m = catalog::model("llama-3.1-8b").unwrap();
    let d = deployment("h100-sxm", 1);
    for seed in [1, 2, 3] {
        let rows = synthetic_steps(&m, &d, 400, 0.03, seed);
        let fit = fit(&m, &d, &rows).unwrap();
        eprintln!(
            "seed {seed}: mbu {:.4} mfu {:.4} overhead {:.6} s; mape {:.2} % -> {:.2} %",
            fit.mbu, fit.mfu, fit.step_overhead_s, fit.mape_before, fit.mape_after
        );
        assert_recovers(&fit, 0.03, 0.05);
        // Uniform noise of +-3 % has a mean absolute value of 1.5 %.
        assert!(fit.mape_after < 1.7, "{fit:?}");
    }
}

/// Per-request rows: TTFT is the prompt's prefill step beside `c - 1` decoders,
/// TPOT the mean of the request's actual decode steps (contexts prompt + 1 ..
/// prompt + output - 1), not the mean-context step the fit assumes.
fn synthetic_requests(model: &Model, d: &Deployment, n: usize, noise: f64, seed: u64) -> String {
    let cost = RooflineCost::new(model, d, &truth(d));
    let layout = kv_layout(model, Dtype::Bf16, d.tp, None);
    let time = |m: Measurement| cost.step_time(&m.work(&layout)).as_secs_f64();
    let step = |batch, context_tokens, prefill_tokens| Measurement {
        batch,
        context_tokens,
        prefill_tokens,
        prefill_seqs: u32::from(prefill_tokens > 0),
        step_s: 0.0,
        line: 0,
        kind: MeasurementKind::Step,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut csv = String::from("prompt_tokens,output_tokens,ttft_s,tpot_s,concurrency\n");
    for _ in 0..n {
        let prompt = rng.random_range(16..=6000u32);
        let output = rng.random_range(1..=400u32);
        let c = 1u32 << rng.random_range(0..=6u32);
        let mean = prompt + output / 2;
        let ttft = time(step(c - 1, if c > 1 { mean } else { 0 }, prompt));
        let tpot = if output > 1 {
            (1..output)
                .map(|j| time(step(c, prompt + j, 0)))
                .sum::<f64>()
                / f64::from(output - 1)
        } else {
            0.0
        };
        let mut noisy = |t: f64| t * (1.0 + noise * rng.random_range(-1.0..=1.0f64));
        let (ttft, tpot) = (noisy(ttft), noisy(tpot));
        csv += &format!("{prompt},{output},{ttft:.6},{tpot:.6},{c}\n");
    }
    csv
}

#[test]
fn per_request_results_give_back_the_coefficients() {
    let m = catalog::model("llama-3.1-8b").unwrap();
    let d = deployment("h100-sxm", 1);
    let path = Path::new("requests.csv");
    for (noise, tolerance) in [(0.0, 0.01), (0.03, 0.03)] {
        let csv = synthetic_requests(&m, &d, 300, noise, 11);
        let rows = parse_measurements(&csv, path).unwrap();
        assert!(rows.iter().any(|r| r.kind == MeasurementKind::Ttft));
        assert!(rows.iter().any(|r| r.kind == MeasurementKind::Tpot));
        let fit = fit(&m, &d, &rows).unwrap();
        eprintln!(
            "requests, noise {noise}: mbu {:.4} mfu {:.4} overhead {:.6} s; mape {:.2} % -> {:.3} %",
            fit.mbu, fit.mfu, fit.step_overhead_s, fit.mape_before, fit.mape_after
        );
        assert_recovers(&fit, tolerance, tolerance);
    }
}

#[test]
fn small_batch_decode_data_leaves_mfu_at_the_default_and_warns() {
    // Up to 64 sequences every kernel is memory-bound; at 256 the 8B's GEMMs
    // on an H100 turn compute-bound and would determine mfu.
    let m = catalog::model("llama-3.1-8b").unwrap();
    let d = deployment("h100-sxm", 1);
    let rows: Vec<Measurement> = synthetic_steps(&m, &d, 300, 0.0, 5)
        .into_iter()
        .filter(|r| r.prefill_tokens == 0 && r.batch <= 64)
        .collect();
    let fit = fit(&m, &d, &rows).unwrap();
    assert_close("mbu", fit.mbu, TRUTH.0, 1e-3);
    assert_close("step_overhead_s", fit.step_overhead_s, TRUTH.2, 1e-3);
    assert_eq!(fit.compute_bound_rows, 0);
    assert!((fit.mfu - d.efficiency.mfu).abs() < 1e-3, "{fit:?}");
    assert!(fit.warnings()[0].contains("mfu is not determined"));
}

#[test]
fn too_few_or_unusable_measurements_are_a_usage_error() {
    let m = catalog::model("llama-3.1-8b").unwrap();
    let d = deployment("h100-sxm", 1);
    let mut rows = synthetic_steps(&m, &d, 2, 0.0, 5);
    assert!(matches!(fit(&m, &d, &rows), Err(Error::Usage(_))));
    rows.extend(synthetic_steps(&m, &d, 3, 0.0, 6));
    rows[3].step_s = f64::NAN;
    let Err(Error::Usage(message)) = fit(&m, &d, &rows) else {
        panic!("NaN accepted")
    };
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn work_matches_the_engine_accounting() {
    let m = catalog::model("llama-3.1-8b").unwrap();
    let layout = kv_layout(&m, Dtype::Bf16, 1, None);
    let bpt = layout.bytes_per_token();
    assert_eq!(bpt, 131_072);
    let work = Measurement {
        batch: 4,
        context_tokens: 1000,
        prefill_tokens: 11,
        prefill_seqs: 2,
        step_s: 1.0,
        line: 0,
        kind: MeasurementKind::Step,
    }
    .work(&layout);
    assert_eq!(work.decode_tokens, 4);
    assert_eq!(work.prefill_tokens, 11);
    assert_eq!(work.prefill_seqs, 2);
    assert_eq!(work.kv_read_bytes, 4 * 1000 * bpt);
    assert_eq!(work.kv_write_bytes, 15 * bpt);
    // Decoders: 1001 pairs each; prompts of 6 and 5 tokens: 21 + 15 pairs;
    // 32 layers of 4 * 32 heads * 128 FLOPs per pair.
    assert_eq!(
        work.attention_flops,
        32 * (4 * 1001 + 21 + 15) * (4 * 32 * 128)
    );
}

fn data_error(text: &str) -> (Option<u64>, String) {
    match parse_measurements(text, Path::new("m.csv")) {
        Err(Error::DataFile { path, line, reason }) => {
            assert_eq!(path, Path::new("m.csv"));
            (line, reason)
        }
        other => panic!("expected a data-file error, got {other:?}"),
    }
}

#[test]
fn malformed_measurements_name_the_line_and_column() {
    let header = "batch,context_tokens,prefill_tokens,step_s\n";
    for (body, line, needle) in [
        (
            "1,100,0,0.01\n\n# comment\n2,100,0,NaN\n",
            5,
            "column `step_s`",
        ),
        ("1,100,0,0.01\n2,100,0,-0.01\n", 3, "negative"),
        ("1,100,0,0\n", 2, "must be > 0"),
        ("1,100,0,inf\n", 2, "not a finite"),
        ("1.5,100,0,0.01\n", 2, "column `batch`"),
        ("x,100,0,0.01\n", 2, "`x` is not a number"),
        ("1,100,0.01\n", 2, "3 fields but the header has 4"),
        ("0,100,0,0.01\n", 2, "does nothing"),
        ("1,100,,0.01\n", 2, "column `prefill_tokens`: empty"),
    ] {
        let (l, reason) = data_error(&format!("{header}{body}"));
        assert_eq!(l, Some(line), "{body:?}: {reason}");
        assert!(reason.contains(needle), "{body:?}: {reason}");
    }
    let requests = "prompt_tokens,output_tokens,ttft_s,tpot_s\r\n";
    for (body, line, needle) in [
        (
            "100,10,0.05,0.01\r\n100,10,0.05,0\r\n",
            3,
            "column `tpot_s`",
        ),
        ("0,10,0.05,0.01\r\n", 2, "column `prompt_tokens`"),
        ("100,10,-1,0.01\r\n", 2, "column `ttft_s`"),
    ] {
        let (l, reason) = data_error(&format!("{requests}{body}"));
        assert_eq!(l, Some(line), "{body:?}: {reason}");
        assert!(reason.contains(needle), "{body:?}: {reason}");
    }
    // Headers.
    let (l, reason) = data_error("a,b\n1,2\n");
    assert_eq!(l, Some(1));
    assert!(reason.contains("unknown format"), "{reason}");
    let (_, reason) = data_error("batch,context_tokens,step_s\n1,2,3\n");
    assert!(reason.contains("lacks column `prefill_tokens`"), "{reason}");
    let (_, reason) = data_error("step_s,ttft_s\n");
    assert!(reason.contains("one format per file"), "{reason}");
    let (l, reason) = data_error("");
    assert_eq!(l, None);
    assert!(reason.contains("empty"), "{reason}");
    let (_, reason) = data_error(header);
    assert!(reason.contains("no rows"), "{reason}");
}

#[test]
fn per_request_rows_become_ttft_and_tpot_steps() {
    let text = "# from vllm bench serve\nprompt_tokens,output_tokens,ttft_s,tpot_s,concurrency,id\n\
                1000,101,0.08,0.012,4,a\n500,1,0.05,,1,b\n";
    let rows = parse_measurements(text, Path::new("r.csv")).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        Measurement {
            batch: 3,
            context_tokens: 1051,
            prefill_tokens: 1000,
            prefill_seqs: 1,
            step_s: 0.08,
            line: 3,
            kind: MeasurementKind::Ttft,
        }
    );
    assert_eq!(
        rows[1],
        Measurement {
            batch: 4,
            context_tokens: 1051,
            prefill_tokens: 0,
            prefill_seqs: 0,
            step_s: 0.012,
            line: 3,
            kind: MeasurementKind::Tpot,
        }
    );
    assert_eq!(rows[2].kind, MeasurementKind::Ttft);
    assert_eq!((rows[2].batch, rows[2].context_tokens), (0, 0));
}

#[test]
fn calibration_file_round_trips() {
    let m = catalog::model("llama-3.1-8b").unwrap();
    let d = deployment("h100-sxm", 1);
    let rows = synthetic_steps(&m, &d, 60, 0.0, 9);
    let fit = fit(&m, &d, &rows).unwrap();
    let text = fit.to_toml();
    assert!(
        text.starts_with(
            "# kvsim calibration: fitted from 60 measurements of llama-3.1-8b on h100-sxm (tp 1) \
             by kvsim calibrate\n"
        ),
        "{text}"
    );
    assert!(text.contains("\nmbu = 0.6200\n"), "{text}");
    assert!(text.contains("\nstep_overhead_s = 0.002300\n"), "{text}");
    let back = parse_calibration(&text, Path::new("cal.toml")).unwrap();
    let want = fit.calibration();
    for (got, want) in [
        (back.mbu, want.mbu),
        (back.mfu, want.mfu),
        (back.step_overhead_s, want.step_overhead_s),
    ] {
        assert!((got / want - 1.0).abs() < 1e-3, "{got} vs {want}");
    }
    let e = back.apply(d.efficiency);
    assert_eq!(e.allreduce_latency_s, d.efficiency.allreduce_latency_s);
    assert_eq!(e.mbu, back.mbu);
}

#[test]
fn bad_calibration_values_are_rejected_naming_the_key() {
    let good = "mbu = 0.7\nmfu = 0.5\nstep_overhead_s = 0.001\n";
    assert!(parse_calibration(good, Path::new("c.toml")).is_ok());
    for (text, key, needle) in [
        (
            "mbu = 0.0\nmfu = 0.5\nstep_overhead_s = 0.001\n",
            "mbu",
            "(0, 1]",
        ),
        (
            "mbu = 0.7\nmfu = 1.5\nstep_overhead_s = 0.001\n",
            "mfu",
            "(0, 1]",
        ),
        (
            "mbu = nan\nmfu = 0.5\nstep_overhead_s = 0.001\n",
            "mbu",
            "(0, 1]",
        ),
        (
            "mbu = 0.7\nmfu = 0.5\nstep_overhead_s = -0.001\n",
            "step_overhead_s",
            ">= 0",
        ),
        (
            "mbu = 0.7\nmfu = 0.5\nstep_overhead_s = inf\n",
            "step_overhead_s",
            ">= 0",
        ),
        ("mbu = 0.7\nmfu = 0.5\n", "step_overhead_s", "missing"),
        (
            "mbu = 0.7\nmfu = 0.5\nstep_overhead_s = 0.001\nmbuu = 1.0\n",
            "mbuu",
            "unknown",
        ),
        (
            "mbu = \"high\"\nmfu = 0.5\nstep_overhead_s = 0.001\n",
            "mbu",
            "invalid type",
        ),
    ] {
        match parse_calibration(text, Path::new("c.toml")) {
            Err(Error::Scenario { path, source }) => {
                assert_eq!(path, Path::new("c.toml"));
                assert_eq!(source.key, key, "{text}: {source}");
                assert!(source.reason.contains(needle), "{text}: {source}");
            }
            other => panic!("{text}: expected an error, got {other:?}"),
        }
    }
    let Err(Error::Scenario { source, .. }) = parse_calibration("mbu = ", Path::new("c.toml"))
    else {
        panic!("syntax error accepted")
    };
    assert!(source.reason.contains("line 1"), "{source}");
}

#[test]
fn significant_digits_keep_a_decimal_point() {
    assert_eq!(significant(0.7312345), "0.7312");
    assert_eq!(significant(1.0), "1.000");
    assert_eq!(significant(0.00141), "0.001410");
    assert_eq!(significant(0.0), "0.0");
    assert_eq!(significant(12.5), "12.50");
}

#[test]
fn many_noisy_rows_pin_the_coefficients_down() {
    // 20,000 rows: the wedge scan is linear in the rows, and averaging the
    // noise brings each coefficient within 1 %.
    let m = catalog::model("llama-3.1-8b").unwrap();
    let d = deployment("h100-sxm", 1);
    let rows = synthetic_steps(&m, &d, 20_000, 0.03, 4);
    let start = std::time::Instant::now();
    let fit = fit(&m, &d, &rows).unwrap();
    eprintln!("20,000 rows fitted in {:?}: {fit:?}", start.elapsed());
    assert_recovers(&fit, 0.01, 0.01);
}

/// The bundled example measurements (`examples/calibration/`): synthetic,
/// generated here with [`TRUTH`] and +-3 % noise, 48 rows each.
fn example_files() -> [(&'static str, String); 2] {
    let m = catalog::model("llama-3.1-8b").unwrap();
    let d = deployment("h100-sxm", 1);
    let header = format!(
        "# SYNTHETIC example, not a measurement: generated by kvsim's own roofline for\n\
         # llama-3.1-8b on h100-sxm (tp 1) with mbu {}, mfu {}, step_overhead_s {} (plus the\n\
         # GPU's {} us per layer) and +-3 % noise. Replace with your own measurements.\n\
         # Regenerate: cargo test --release --lib calibrate::tests::write_example_files -- --ignored\n",
        TRUTH.0,
        TRUTH.1,
        TRUTH.2,
        d.efficiency.layer_overhead_s * 1e6
    );
    let mut steps = header.clone() + "batch,context_tokens,prefill_tokens,step_s,prefill_seqs\n";
    for r in synthetic_steps(&m, &d, 48, 0.03, 2024) {
        steps += &format!(
            "{},{},{},{:.6},{}\n",
            r.batch, r.context_tokens, r.prefill_tokens, r.step_s, r.prefill_seqs
        );
    }
    let requests = header + &synthetic_requests(&m, &d, 48, 0.03, 2025);
    [("steps.csv", steps), ("requests.csv", requests)]
}

fn example_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/calibration")
}

#[test]
fn example_files_are_what_the_generator_writes() {
    for (name, text) in example_files() {
        let committed = std::fs::read_to_string(example_dir().join(name)).unwrap();
        assert!(
            committed == text,
            "examples/calibration/{name} is stale: regenerate it with `cargo test --release \
             --lib calibrate::tests::write_example_files -- --ignored`"
        );
    }
}

#[test]
#[ignore = "rewrites examples/calibration/"]
fn write_example_files() {
    for (name, text) in example_files() {
        std::fs::write(example_dir().join(name), text).unwrap();
    }
}
