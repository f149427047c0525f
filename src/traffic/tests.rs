//! Tests of the traffic module: spec parsing, validation, statistics of every
//! process and distribution (fixed seeds, tolerances of several standard
//! errors), determinism, and file loading.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Top {
    traffic: TrafficSpec,
}

fn parse(src: &str) -> Result<TrafficSpec, toml::de::Error> {
    toml::from_str::<Top>(src).map(|t| t.traffic)
}

const SCENARIO: &str = "scenarios/test.toml";

fn plan_in(src: &str, base_dir: &Path) -> Result<TrafficPlan, Error> {
    let spec = parse(src).unwrap_or_else(|e| panic!("spec does not parse: {e}\n{src}"));
    TrafficPlan::from_spec(&spec, base_dir, Path::new(SCENARIO))
}

fn plan(src: &str) -> TrafficPlan {
    plan_in(src, Path::new(".")).unwrap_or_else(|e| panic!("plan fails: {e}\n{src}"))
}

/// The (key, reason) of a scenario error.
fn spec_err(src: &str) -> (String, String) {
    match plan_in(src, Path::new(".")) {
        Err(Error::Scenario { path, source }) => {
            assert_eq!(path, Path::new(SCENARIO));
            (source.key, source.reason)
        }
        Err(e) => panic!("expected a scenario error, got {e}"),
        Ok(_) => panic!("expected a scenario error, got a plan\n{src}"),
    }
}

/// The (line, reason) of a data-file error.
fn data_err(src: &str, dir: &Path) -> (PathBuf, Option<u64>, String) {
    match plan_in(src, dir) {
        Err(Error::DataFile { path, line, reason }) => (path, line, reason),
        Err(e) => panic!("expected a data-file error, got {e}"),
        Ok(_) => panic!("expected a data-file error, got a plan\n{src}"),
    }
}

const LENGTHS: &str = r#"
prompt = { kind = "fixed", value = 100 }
output = { kind = "fixed", value = 10 }
"#;

fn open_plan(arrival: &str) -> TrafficPlan {
    plan(&format!("[traffic]\narrival = {arrival}\n{LENGTHS}"))
}

/// Inter-arrival gaps in seconds of the first `n` arrivals.
fn gaps(plan: &TrafficPlan, seed: u64, n: usize) -> Vec<f64> {
    let mut t = plan.instantiate(seed);
    let mut last = SimTime::ZERO;
    (0..n)
        .map(|_| {
            let (at, _) = t.next_arrival().expect("open process never ends");
            assert!(at >= last, "arrivals went backwards: {at} after {last}");
            let gap = (at - last).as_secs_f64();
            last = at;
            gap
        })
        .collect()
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Draws `n` lengths from the plan's `next_lengths`.
fn draws(plan: &TrafficPlan, seed: u64, n: usize) -> Vec<Lengths> {
    let mut t = plan.instantiate(seed);
    (0..n).map(|_| t.next_lengths()).collect()
}

fn lengths_plan(prompt: &str, output: &str, extra: &str) -> TrafficPlan {
    plan(&format!(
        "[traffic]\narrival = {{ kind = \"poisson\", rate = 1.0 }}\nprompt = {prompt}\noutput = {output}\n{extra}"
    ))
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

// ---------------------------------------------------------------- spec parsing

#[test]
fn spec_rejects_unknown_fields_everywhere() {
    for (src, field) in [
        (
            "[traffic]\narrival = { kind = \"poisson\", rate = 1, foo = 2 }",
            "foo",
        ),
        (
            "[traffic]\narrival = { kind = \"gamma\", rate = 1, burstines = 0.5 }",
            "burstines",
        ),
        (
            "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\nfoo = 1",
            "foo",
        ),
        (
            "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
             prompt = { kind = \"fixed\", value = 1, min = 1 }\noutput = { kind = \"fixed\", value = 1 }",
            "min",
        ),
        (
            "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
             prompt = { kind = \"mixture\", components = [{ weight = 1, dist = { kind = \"fixed\", value = 1 }, w = 2 }] }\n\
             output = { kind = \"fixed\", value = 1 }",
            "w",
        ),
        (
            "[traffic]\narrival = { kind = \"trace\", path = \"a.csv\", arrival_col = \"t\" }",
            "arrival_col",
        ),
    ] {
        let err = parse(src).expect_err(src).to_string();
        assert!(
            err.contains(field),
            "error for `{field}` does not name it: {err}"
        );
    }
}

#[test]
fn spec_rejects_unknown_kinds_and_missing_fields() {
    for src in [
        "[traffic]\narrival = { kind = \"weibull\", rate = 1 }",
        "[traffic]\narrival = { rate = 1 }",
        "[traffic]\narrival = { kind = \"poisson\" }",
        "[traffic]\narrival = { kind = \"gamma\", rate = 1 }",
        "[traffic]\narrival = { kind = \"ramp\", from = 1, to = 2 }",
        "[traffic]\narrival = { kind = \"closed\", think_s = 1 }",
        "[traffic]\narrival = { kind = \"trace\" }",
        "[traffic]\nprompt = { kind = \"fixed\", value = 1 }",
        "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
         prompt = { kind = \"lognormal\", mean = 700, sigma = 1 }\noutput = { kind = \"fixed\", value = 1 }",
        "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
         prompt = { kind = \"empirical\", path = \"x.csv\" }\noutput = { kind = \"fixed\", value = 1 }",
        "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\nlengths = { kind = \"trace\" }",
        // Wrong types: a negative or fractional token count.
        "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
         prompt = { kind = \"fixed\", value = -1 }\noutput = { kind = \"fixed\", value = 1 }",
        "[traffic]\narrival = { kind = \"closed\", users = 2.5 }",
        "[traffic]\narrival = { kind = \"closed\", users = 2, think = \"gaussian\" }",
    ] {
        assert!(parse(src).is_err(), "accepted: {src}");
    }
}

#[test]
fn spec_accepts_the_documented_syntax_and_round_trips() {
    let src = r#"
[traffic]
arrival = { kind = "gamma", rate = 12, burstiness = 0.5 }
prompt  = { kind = "lognormal", mean = 700, sigma = 1.0, min = 4, max = 8192 }
output  = { kind = "mixture", components = [
    { weight = 0.98, dist = { kind = "normal", mean = 200, std = 50, min = 1, max = 2048 } },
    { weight = 0.02, dist = { kind = "uniform", min = 1000, max = 4000 } },
] }
max_tokens = { kind = "fixed", value = 2048 }
"#;
    let spec = parse(src).unwrap();
    assert_eq!(
        spec.arrival,
        ArrivalSpec::Gamma {
            rate: 12.0,
            burstiness: 0.5
        }
    );
    let echoed = toml::to_string(&Top2 {
        traffic: spec.clone(),
    })
    .unwrap();
    assert_eq!(parse(&echoed).unwrap(), spec, "echo:\n{echoed}");

    // Defaults are filled in and echoed, so the resolved scenario is explicit.
    let closed = parse("[traffic]\narrival = { kind = \"closed\", users = 3 }").unwrap();
    assert_eq!(
        closed.arrival,
        ArrivalSpec::Closed {
            users: 3,
            think_s: 0.0,
            think: ThinkKind::Fixed
        }
    );
    let trace = parse("[traffic]\narrival = { kind = \"trace\", path = \"t.csv\" }").unwrap();
    let echoed = toml::to_string(&Top2 { traffic: trace }).unwrap();
    for key in ["arrival_s", "prompt_tokens", "output_tokens", "zero_tokens"] {
        assert!(echoed.contains(key), "echo lacks {key}:\n{echoed}");
    }
}

#[derive(serde::Serialize)]
struct Top2 {
    traffic: TrafficSpec,
}

// ---------------------------------------------------------- arrival processes

#[test]
fn poisson_gaps_are_exponential() {
    let rate = 12.0;
    let g = gaps(
        &open_plan("{ kind = \"poisson\", rate = 12.0 }"),
        1,
        100_000,
    );
    let (mean, var) = mean_var(&g);
    assert!(
        (mean * rate - 1.0).abs() < 0.02,
        "mean gap {mean}, want {}",
        1.0 / rate
    );
    let cv = var.sqrt() / mean;
    assert!((cv - 1.0).abs() < 0.03, "CV {cv}, want 1");
}

#[test]
fn gamma_burstiness_sets_the_squared_cv() {
    for k in [0.25, 0.5, 1.0, 4.0] {
        let rate = 5.0;
        let g = gaps(
            &open_plan(&format!(
                "{{ kind = \"gamma\", rate = {rate}, burstiness = {k} }}"
            )),
            2,
            100_000,
        );
        let (mean, var) = mean_var(&g);
        assert!(
            (mean * rate - 1.0).abs() < 0.02,
            "k = {k}: mean gap {mean}, want {}",
            1.0 / rate
        );
        let cv2 = var / (mean * mean);
        assert!(
            (cv2 * k - 1.0).abs() < 0.08,
            "k = {k}: CV^2 {cv2}, want {}",
            1.0 / k
        );
    }
}

#[test]
fn constant_gaps_are_exact_without_drift() {
    let mut t = open_plan("{ kind = \"constant\", rate = 4.0 }").instantiate(0);
    for k in 1..=1000u64 {
        assert_eq!(t.next_arrival().unwrap().0.as_nanos(), k * 250_000_000);
    }
    // 1/3 s is not representable; the millionth arrival is still exactly
    // 1,000,000 / 3 s rounded once, not a million rounding errors summed.
    let mut t = open_plan("{ kind = \"constant\", rate = 3.0 }").instantiate(0);
    let mut last = SimTime::ZERO;
    for _ in 0..999_999 {
        last = t.next_arrival().unwrap().0;
    }
    assert_eq!(last.as_nanos(), 333_333_000_000_000);
    assert_eq!(t.next_arrival().unwrap().0.as_nanos(), 333_333_333_333_333);
}

#[test]
fn ramp_counts_follow_the_rate() {
    let plan = open_plan("{ kind = \"ramp\", from = 1.0, to = 20.0, over_s = 600 }");
    // Expected counts: the integral of the rate over each window.
    // [0, 60): 60 + 19 * 60^2 / 1200 = 117; [540, 600): 1143; [600, 660): 1200.
    let windows = [
        (0.0, 60.0, 117.0),
        (540.0, 600.0, 1143.0),
        (600.0, 660.0, 1200.0),
    ];
    let seeds = 20;
    let mut counts = [0u64; 3];
    for seed in 0..seeds {
        let mut t = plan.instantiate(seed);
        while let Some((at, _)) = t.next_arrival() {
            let s = at.as_secs_f64();
            if s >= 660.0 {
                break;
            }
            for (c, (lo, hi, _)) in counts.iter_mut().zip(windows) {
                if s >= lo && s < hi {
                    *c += 1;
                }
            }
        }
    }
    for (c, (lo, hi, want)) in counts.iter().zip(windows) {
        let mean = *c as f64 / seeds as f64;
        // Poisson: sd of the mean over 20 seeds is sqrt(want / 20); allow 4 sd.
        let tol = 4.0 * (want / seeds as f64).sqrt();
        assert!(
            (mean - want).abs() < tol,
            "[{lo}, {hi}): {mean} arrivals on average, want {want} +- {tol}"
        );
    }
}

#[test]
fn ramp_down_and_from_zero_work() {
    for arrival in [
        "{ kind = \"ramp\", from = 0.0, to = 10.0, over_s = 100 }",
        "{ kind = \"ramp\", from = 10.0, to = 1.0, over_s = 100 }",
    ] {
        let plan = open_plan(arrival);
        let mut t = plan.instantiate(3);
        let mut n = 0;
        while let Some((at, _)) = t.next_arrival() {
            if at.as_secs_f64() >= 100.0 {
                break;
            }
            n += 1;
        }
        // Both ramps expect 500 arrivals in the first 100 s (sd ~22).
        assert!((n as f64 - 500.0).abs() < 90.0, "{arrival}: {n} arrivals");
    }
}

#[test]
fn every_open_process_is_nondecreasing_and_starts_after_zero() {
    for arrival in [
        "{ kind = \"poisson\", rate = 1e6 }",
        "{ kind = \"gamma\", rate = 100, burstiness = 0.05 }",
        "{ kind = \"constant\", rate = 1e7 }",
        "{ kind = \"ramp\", from = 0, to = 1e5, over_s = 0.01 }",
    ] {
        // `gaps` asserts monotonicity.
        let g = gaps(&open_plan(arrival), 9, 20_000);
        assert!(g.iter().all(|g| *g >= 0.0));
    }
}

#[test]
fn rates_below_the_physical_range_are_refused_and_the_slowest_stays_finite() {
    // 1e-300 requests/s once saturated the clock: every arrival at the end
    // of time, and requests "finished" with zero latency.
    let (key, reason) = spec_err(&format!(
        "[traffic]\narrival = {{ kind = \"poisson\", rate = 1e-300 }}\n{LENGTHS}"
    ));
    assert_eq!(key, "traffic.arrival.rate");
    assert!(reason.contains("1e-300 is outside"), "{reason}");
    // The slowest legal rate: arrivals days apart, far from saturating.
    let mut t = open_plan("{ kind = \"poisson\", rate = 1e-6 }").instantiate(0);
    let (first, _) = t.next_arrival().unwrap();
    let (second, _) = t.next_arrival().unwrap();
    assert!(first < second && second.as_secs_f64() < 1e8, "{second:?}");
}

// ------------------------------------------------------------------ closed loop

#[test]
fn closed_loop_draws_lengths_and_think_times() {
    let p = plan(&format!(
        "[traffic]\narrival = {{ kind = \"closed\", users = 50, think_s = 2.0 }}\n{LENGTHS}"
    ));
    assert_eq!(p.loop_kind(), LoopKind::Closed { users: 50 });
    let mut t = p.instantiate(1);
    assert_eq!(t.next_arrival(), None);
    assert_eq!(t.think_time(), SimDuration::from_nanos(2_000_000_000));
    assert_eq!(
        t.next_lengths(),
        Lengths {
            prompt: 100,
            output: 10,
            max_tokens: 10,
            prefix: None,
            conversation: Lengths::NO_CONVERSATION,
        }
    );

    let p = plan(&format!(
        "[traffic]\narrival = {{ kind = \"closed\", users = 1, think_s = 2.0, think = \"exponential\" }}\n{LENGTHS}"
    ));
    let mut t = p.instantiate(1);
    let thinks: Vec<f64> = (0..100_000).map(|_| t.think_time().as_secs_f64()).collect();
    let (mean, var) = mean_var(&thinks);
    assert!((mean - 2.0).abs() < 0.04, "mean think {mean}");
    assert!((var.sqrt() / mean - 1.0).abs() < 0.03, "think CV");

    let p = plan(&format!(
        "[traffic]\narrival = {{ kind = \"closed\", users = 1, think = \"exponential\" }}\n{LENGTHS}"
    ));
    assert_eq!(p.instantiate(0).think_time(), SimDuration::ZERO);
    assert_eq!(
        open_plan("{ kind = \"poisson\", rate = 1 }").loop_kind(),
        LoopKind::Open
    );
    assert_eq!(
        open_plan("{ kind = \"poisson\", rate = 1 }")
            .instantiate(0)
            .think_time(),
        SimDuration::ZERO
    );
}

// ------------------------------------------------------------------ lengths

#[test]
fn lognormal_mean_is_the_arithmetic_mean() {
    let p = lengths_plan(
        "{ kind = \"lognormal\", mean = 700, sigma = 1.0, min = 1, max = 10000000 }",
        "{ kind = \"lognormal\", mean = 200, sigma = 0.5, min = 1, max = 10000000 }",
        "",
    );
    let d = draws(&p, 5, 100_000);
    let prompts: Vec<f64> = d.iter().map(|l| f64::from(l.prompt)).collect();
    let outputs: Vec<f64> = d.iter().map(|l| f64::from(l.output)).collect();
    let (pm, _) = mean_var(&prompts);
    let (om, _) = mean_var(&outputs);
    assert!((pm / 700.0 - 1.0).abs() < 0.03, "prompt mean {pm}");
    assert!((om / 200.0 - 1.0).abs() < 0.03, "output mean {om}");
    // sigma is the sd of the log.
    let logs: Vec<f64> = prompts.iter().map(|x| x.ln()).collect();
    let (_, lv) = mean_var(&logs);
    assert!((lv.sqrt() - 1.0).abs() < 0.03, "sd of log {}", lv.sqrt());
}

#[test]
fn clamps_are_respected_and_reached() {
    let p = lengths_plan(
        "{ kind = \"normal\", mean = 100, std = 500, min = 10, max = 150 }",
        "{ kind = \"lognormal\", mean = 200, sigma = 2.0, min = 5, max = 300 }",
        "",
    );
    let d = draws(&p, 6, 20_000);
    assert!(d.iter().all(|l| (10..=150).contains(&l.prompt)));
    assert!(d.iter().all(|l| (5..=300).contains(&l.output)));
    for (v, name) in [(10, "prompt min"), (150, "prompt max")] {
        assert!(d.iter().any(|l| l.prompt == v), "{name} never drawn");
    }
    for (v, name) in [(5, "output min"), (300, "output max")] {
        assert!(d.iter().any(|l| l.output == v), "{name} never drawn");
    }
    assert!(d.iter().all(|l| l.max_tokens == 300));
}

#[test]
fn uniform_bounds_are_inclusive() {
    let p = lengths_plan(
        "{ kind = \"uniform\", min = 3, max = 7 }",
        "{ kind = \"uniform\", min = 1, max = 1 }",
        "",
    );
    let mut counts = [0u32; 8];
    for l in draws(&p, 7, 50_000) {
        counts[l.prompt as usize] += 1;
        assert_eq!(l.output, 1);
    }
    assert_eq!(&counts[..3], &[0, 0, 0]);
    for c in &counts[3..] {
        // 10,000 expected each; sd ~ 90.
        assert!((f64::from(*c) - 10_000.0).abs() < 500.0, "{counts:?}");
    }
}

#[test]
fn mixture_proportions_follow_the_weights() {
    let p = lengths_plan(
        r#"{ kind = "mixture", components = [
            { weight = 0.98, dist = { kind = "lognormal", mean = 700, sigma = 1.0, min = 4, max = 8192 } },
            { weight = 0.02, dist = { kind = "fixed", value = 100000 } },
        ] }"#,
        // Unnormalized weights: 3:1.
        r#"{ kind = "mixture", components = [
            { weight = 3, dist = { kind = "fixed", value = 10 } },
            { weight = 1, dist = { kind = "fixed", value = 20 } },
        ] }"#,
        "",
    );
    let n = 100_000;
    let d = draws(&p, 8, n);
    let long = d.iter().filter(|l| l.prompt == 100_000).count() as f64 / n as f64;
    assert!((long - 0.02).abs() < 0.002, "long fraction {long}");
    assert!(d.iter().all(|l| l.prompt == 100_000 || l.prompt <= 8192));
    let tens = d.iter().filter(|l| l.output == 10).count() as f64 / n as f64;
    assert!((tens - 0.75).abs() < 0.01, "3:1 mixture gave {tens}");
    assert!(d.iter().all(|l| l.output == 10 || l.output == 20));
    // The default cap is the mixture's largest bound.
    assert!(d.iter().all(|l| l.max_tokens == 20));
}

#[test]
fn max_tokens_caps_the_output() {
    // Drawn cap from its own stream.
    let p = lengths_plan(
        "{ kind = \"fixed\", value = 10 }",
        "{ kind = \"uniform\", min = 1, max = 1000 }",
        "max_tokens = { kind = \"uniform\", min = 100, max = 600 }",
    );
    let d = draws(&p, 10, 50_000);
    assert!(d.iter().all(|l| l.output >= 1 && l.output <= l.max_tokens));
    assert!(d.iter().all(|l| (100..=600).contains(&l.max_tokens)));
    assert!(d.iter().any(|l| l.output == l.max_tokens));
    assert!(d.iter().any(|l| l.output < l.max_tokens));
    assert_eq!(
        p.max_lengths(),
        Lengths {
            prompt: 10,
            output: 600,
            max_tokens: 600,
            prefix: None,
            conversation: Lengths::NO_CONVERSATION,
        }
    );

    // A fixed cap below every output truncates them all.
    let p = lengths_plan(
        "{ kind = \"fixed\", value = 10 }",
        "{ kind = \"uniform\", min = 50, max = 100 }",
        "max_tokens = { kind = \"fixed\", value = 20 }",
    );
    assert!(
        draws(&p, 0, 100)
            .iter()
            .all(|l| l.output == 20 && l.max_tokens == 20)
    );
    let (pm, om) = p.mean_lengths();
    assert_eq!(pm, 10.0);
    assert!((om - 20.0).abs() < 1e-9, "{om}");
}

#[test]
fn mean_lengths_are_exact_or_close() {
    let p = lengths_plan(
        "{ kind = \"uniform\", min = 1, max = 100 }",
        "{ kind = \"fixed\", value = 7 }",
        "",
    );
    assert_eq!(p.mean_lengths(), (50.5, 7.0));

    // E[min(U{1..1000}, U{100..600})], computed by brute force.
    let p = lengths_plan(
        "{ kind = \"fixed\", value = 10 }",
        "{ kind = \"uniform\", min = 1, max = 1000 }",
        "max_tokens = { kind = \"uniform\", min = 100, max = 600 }",
    );
    let mut sum = 0u64;
    for o in 1..=1000u64 {
        for m in 100..=600u64 {
            sum += o.min(m);
        }
    }
    let want = sum as f64 / (1000.0 * 501.0);
    let (_, got) = p.mean_lengths();
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");

    // Clamped parametric: the CDF-based mean matches a large sample.
    for (prompt, output) in [
        (
            "{ kind = \"lognormal\", mean = 700, sigma = 1.0, min = 4, max = 8192 }",
            "{ kind = \"normal\", mean = 200, std = 150, min = 1, max = 400 }",
        ),
        (
            // Wider than the exact limit: estimated by sampling.
            "{ kind = \"lognormal\", mean = 700, sigma = 1.0, min = 4, max = 100000000 }",
            "{ kind = \"uniform\", min = 1, max = 10000000 }",
        ),
    ] {
        let p = lengths_plan(prompt, output, "");
        let (pm, om) = p.mean_lengths();
        assert_eq!(p.mean_lengths(), (pm, om), "not deterministic");
        let d = draws(&p, 11, 400_000);
        let sp = d.iter().map(|l| f64::from(l.prompt)).sum::<f64>() / d.len() as f64;
        let so = d.iter().map(|l| f64::from(l.output)).sum::<f64>() / d.len() as f64;
        assert!(
            (pm / sp - 1.0).abs() < 0.01,
            "{prompt}: {pm} vs sampled {sp}"
        );
        assert!(
            (om / so - 1.0).abs() < 0.01,
            "{output}: {om} vs sampled {so}"
        );
    }

    // A zero-variance normal is a point mass at its rounded, clamped mean.
    let p = lengths_plan(
        "{ kind = \"normal\", mean = 41.6, std = 0, min = 1, max = 100 }",
        "{ kind = \"lognormal\", mean = 500, sigma = 0, min = 1, max = 300 }",
        "",
    );
    assert_eq!(p.mean_lengths(), (42.0, 300.0));
    assert!(
        draws(&p, 0, 10)
            .iter()
            .all(|l| l.prompt == 42 && l.output == 300)
    );
}

// ---------------------------------------------------------------- determinism

#[test]
fn same_seed_same_sequence_different_seed_different() {
    let p = plan(
        r#"[traffic]
arrival = { kind = "gamma", rate = 10, burstiness = 0.5 }
prompt = { kind = "lognormal", mean = 700, sigma = 1.0, min = 4, max = 8192 }
output = { kind = "normal", mean = 200, std = 80, min = 1, max = 2048 }
max_tokens = { kind = "uniform", min = 100, max = 2048 }
"#,
    );
    let run = |seed| {
        let mut t = p.instantiate(seed);
        (0..2000)
            .map(|_| t.next_arrival().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    let (a, b) = (run(42), run(43));
    assert!(a.iter().zip(&b).all(|(x, y)| x.0 != y.0), "arrivals shared");
    assert!(a.iter().zip(&b).filter(|(x, y)| x.1 == y.1).count() < 20);

    // A clone of the plan generates the same sequence.
    let q = p.clone();
    let mut t = q.instantiate(42);
    assert_eq!(
        (0..2000)
            .map(|_| t.next_arrival().unwrap())
            .collect::<Vec<_>>(),
        a
    );
}

#[test]
fn components_use_independent_streams() {
    // Changing the output distribution leaves arrival times and prompts alone.
    let a = plan(
        "[traffic]\narrival = { kind = \"poisson\", rate = 3 }\n\
         prompt = { kind = \"uniform\", min = 1, max = 1000 }\n\
         output = { kind = \"uniform\", min = 1, max = 1000 }",
    );
    let b = plan(
        "[traffic]\narrival = { kind = \"poisson\", rate = 3 }\n\
         prompt = { kind = \"uniform\", min = 1, max = 1000 }\n\
         output = { kind = \"lognormal\", mean = 100, sigma = 1, min = 1, max = 1000 }\n\
         max_tokens = { kind = \"fixed\", value = 500 }",
    );
    let (mut ta, mut tb) = (a.instantiate(5), b.instantiate(5));
    for _ in 0..1000 {
        let (x, y) = (ta.next_arrival().unwrap(), tb.next_arrival().unwrap());
        assert_eq!(x.0, y.0);
        assert_eq!(x.1.prompt, y.1.prompt);
    }
}

#[test]
fn plan_is_clone_send_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<TrafficPlan>();
    fn check_send<T: Send>() {}
    check_send::<Traffic>();
}

// --------------------------------------------------------------------- files

#[test]
fn trace_replays_rows_in_order_then_ends() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "arrivals.csv",
        "arrival_s,prompt_tokens,output_tokens,user,session_id\n\
         0.0,10,5,a,1\n0.5,20,7,,2\n0.5,30,1,b,\n2.25,40,9,c,3\n",
    );
    let p = plan_in(
        "[traffic]\narrival = { kind = \"trace\", path = \"arrivals.csv\" }",
        dir.path(),
    )
    .unwrap();
    assert_eq!(p.loop_kind(), LoopKind::Open);
    assert_eq!(p.trace_len(), Some(4));
    let mut t = p.instantiate(0);
    let got: Vec<_> = std::iter::from_fn(|| t.next_arrival()).collect();
    let l = |prompt, output| Lengths {
        prompt,
        output,
        max_tokens: 9,
        prefix: None,
        conversation: Lengths::NO_CONVERSATION,
    };
    assert_eq!(
        got,
        vec![
            (SimTime::ZERO, l(10, 5)),
            (SimTime::from_nanos(500_000_000), l(20, 7)),
            (SimTime::from_nanos(500_000_000), l(30, 1)),
            (SimTime::from_nanos(2_250_000_000), l(40, 9)),
        ]
    );
    assert_eq!(t.next_arrival(), None);
    assert_eq!(p.mean_lengths(), (25.0, 5.5));
    // Random rows for `next_lengths` come from the trace.
    let mut t = p.instantiate(0);
    for _ in 0..100 {
        let x = t.next_lengths();
        assert!(got.iter().any(|(_, y)| *y == x));
    }
}

#[test]
fn trace_columns_can_be_renamed_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "t.csv",
        "\u{feff}arrived_at, num_prefill_tokens, num_decode_tokens\n1, 100, 300\n2.0, 200.0, 50\n",
    );
    let p = plan_in(
        r#"[traffic]
arrival = { kind = "trace", path = "t.csv", arrival_column = "arrived_at", prompt_column = "num_prefill_tokens", output_column = "num_decode_tokens" }
max_tokens = { kind = "fixed", value = 128 }
"#,
        dir.path(),
    )
    .unwrap();
    let mut t = p.instantiate(0);
    assert_eq!(
        t.next_arrival(),
        Some((
            SimTime::from_nanos(1_000_000_000),
            Lengths {
                prompt: 100,
                output: 128,
                max_tokens: 128,
                prefix: None,
                conversation: Lengths::NO_CONVERSATION,
            }
        ))
    );
    assert_eq!(t.next_arrival().unwrap().1.output, 50);
    assert_eq!(t.next_arrival(), None);
}

#[test]
fn paired_sampling_yields_only_existing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [(10, 1000), (2000, 3), (500, 500), (7, 7)];
    let mut csv = String::from("p,o,extra\n");
    for (p, o) in rows {
        csv.push_str(&format!("{p},{o},x\n"));
    }
    write(dir.path(), "conv.csv", &csv);
    let p = plan_in(
        r#"[traffic]
arrival = { kind = "poisson", rate = 2 }
lengths = { kind = "trace", path = "conv.csv", prompt_column = "p", output_column = "o" }
"#,
        dir.path(),
    )
    .unwrap();
    let mut seen = [0u32; 4];
    for l in draws(&p, 3, 4000) {
        let i = rows
            .iter()
            .position(|r| *r == (l.prompt, l.output))
            .unwrap_or_else(|| panic!("{l:?} is not a row"));
        seen[i] += 1;
        assert_eq!(l.max_tokens, 1000);
    }
    assert!(seen.iter().all(|c| (800..1200).contains(c)), "{seen:?}");
    assert_eq!(p.mean_lengths(), (629.25, 377.5));
    assert_eq!(
        p.max_lengths(),
        Lengths {
            prompt: 2000,
            output: 1000,
            max_tokens: 1000,
            prefix: None,
            conversation: Lengths::NO_CONVERSATION,
        }
    );
}

#[test]
fn empirical_lengths_sample_a_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "lens.csv",
        "id,tokens\na,5\nb,50\nc,500\nd,5000\n",
    );
    let p = plan_in(
        r#"[traffic]
arrival = { kind = "poisson", rate = 2 }
prompt = { kind = "empirical", path = "lens.csv", column = "tokens" }
output = { kind = "empirical", path = "lens.csv", column = "tokens", min = 10, max = 1000 }
"#,
        dir.path(),
    )
    .unwrap();
    let d = draws(&p, 4, 4000);
    assert!(d.iter().all(|l| [5, 50, 500, 5000].contains(&l.prompt)));
    assert!(d.iter().all(|l| [10, 50, 500, 1000].contains(&l.output)));
    assert!(d.iter().all(|l| l.max_tokens == 1000));
    for v in [5, 50, 500, 5000] {
        assert!(d.iter().any(|l| l.prompt == v));
    }
    assert_eq!(p.mean_lengths(), (1388.75, 390.0));
}

#[test]
fn absolute_paths_ignore_the_base_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "t.csv",
        "arrival_s,prompt_tokens,output_tokens\n0,1,1\n",
    );
    let src = format!(
        "[traffic]\narrival = {{ kind = \"trace\", path = {:?} }}",
        path.to_str().unwrap()
    );
    assert!(plan_in(&src, Path::new("/nonexistent")).is_ok());
}

#[test]
fn zero_token_rows_error_by_default_or_follow_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "z.csv",
        "arrival_s,prompt_tokens,output_tokens\n0,10,5\n1,10,0\n2,0,4\n3,10,6\n",
    );
    let (path, line, reason) = data_err(
        "[traffic]\narrival = { kind = \"trace\", path = \"z.csv\" }",
        dir.path(),
    );
    assert_eq!(path, dir.path().join("z.csv"));
    assert_eq!(line, Some(3));
    assert!(
        reason.contains("output_tokens") && reason.contains("zero_tokens"),
        "{reason}"
    );

    let p = plan_in(
        "[traffic]\narrival = { kind = \"trace\", path = \"z.csv\", zero_tokens = \"skip\" }",
        dir.path(),
    )
    .unwrap();
    assert_eq!(p.trace_len(), Some(2));
    let mut t = p.instantiate(0);
    let outs: Vec<_> = std::iter::from_fn(|| t.next_arrival())
        .map(|(at, l)| (at.as_secs_f64(), l.prompt, l.output))
        .collect();
    assert_eq!(outs, vec![(0.0, 10, 5), (3.0, 10, 6)]);

    let p = plan_in(
        "[traffic]\narrival = { kind = \"trace\", path = \"z.csv\", zero_tokens = \"one\" }",
        dir.path(),
    )
    .unwrap();
    let mut t = p.instantiate(0);
    let outs: Vec<_> = std::iter::from_fn(|| t.next_arrival())
        .map(|(_, l)| (l.prompt, l.output))
        .collect();
    assert_eq!(outs, vec![(10, 5), (10, 1), (1, 4), (10, 6)]);

    // The same policy applies to paired and empirical lengths.
    let (_, line, reason) = data_err(
        "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
         lengths = { kind = \"trace\", path = \"z.csv\" }",
        dir.path(),
    );
    assert_eq!(line, Some(3));
    assert!(reason.contains("traffic.lengths"), "{reason}");
    let (_, line, _) = data_err(
        "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
         prompt = { kind = \"empirical\", path = \"z.csv\", column = \"prompt_tokens\" }\n\
         output = { kind = \"fixed\", value = 1 }",
        dir.path(),
    );
    assert_eq!(line, Some(4));
    assert!(
        plan_in(
            "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
         lengths = { kind = \"trace\", path = \"z.csv\", zero_tokens = \"skip\" }",
            dir.path(),
        )
        .is_ok()
    );

    // Skipping every row leaves nothing to replay.
    write(
        dir.path(),
        "all0.csv",
        "arrival_s,prompt_tokens,output_tokens\n0,1,0\n",
    );
    let (_, line, reason) = data_err(
        "[traffic]\narrival = { kind = \"trace\", path = \"all0.csv\", zero_tokens = \"skip\" }",
        dir.path(),
    );
    assert_eq!(line, None);
    assert!(reason.contains("skip"), "{reason}");
}

#[test]
fn data_file_errors_name_the_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let header = "arrival_s,prompt_tokens,output_tokens\n";
    let cases: &[(&str, &str, Option<u64>, &[&str])] = &[
        ("empty.csv", "", None, &["empty"]),
        ("header.csv", header, None, &["no data rows"]),
        (
            "nocol.csv",
            "time,prompt_tokens,output_tokens\n0,1,1\n",
            Some(1),
            &[
                "`arrival_s`",
                "time, prompt_tokens, output_tokens",
                "traffic.arrival",
            ],
        ),
        (
            "dup.csv",
            "arrival_s,prompt_tokens,output_tokens,prompt_tokens\n0,1,1,1\n",
            Some(1),
            &["more than once"],
        ),
        (
            "text.csv",
            "arrival_s,prompt_tokens,output_tokens\n0,1,1\n1,many,1\n",
            Some(3),
            &["prompt_tokens", "`many`"],
        ),
        (
            "frac.csv",
            "arrival_s,prompt_tokens,output_tokens\n0,1,1.5\n",
            Some(2),
            &["output_tokens", "whole number"],
        ),
        (
            "negtok.csv",
            "arrival_s,prompt_tokens,output_tokens\n0,-4,1\n",
            Some(2),
            &["negative"],
        ),
        (
            "negtime.csv",
            "arrival_s,prompt_tokens,output_tokens\n-1,1,1\n",
            Some(2),
            &[">= 0"],
        ),
        (
            "nantime.csv",
            "arrival_s,prompt_tokens,output_tokens\n0,1,1\nNaN,1,1\n",
            Some(3),
            &["finite"],
        ),
        (
            "back.csv",
            "arrival_s,prompt_tokens,output_tokens\n0,1,1\n5,1,1\n\n4.5,1,1\n",
            Some(5),
            &["nondecreasing", "4.5", "5"],
        ),
        (
            "ragged.csv",
            "arrival_s,prompt_tokens,output_tokens\n0,1,1\n1,1\n",
            Some(3),
            &["2 fields", "header has 3"],
        ),
        (
            "crlf.csv",
            "arrival_s,prompt_tokens,output_tokens\r\n0,1,1\r\n\r\n1,1,1\r\n2,x,1\r\n",
            Some(5),
            &["`x`"],
        ),
        (
            "ragged_after_blank.csv",
            "arrival_s,prompt_tokens,output_tokens\n0,1,1\n\n\n1,1\n",
            Some(5),
            &["2 fields"],
        ),
        (
            "quoted.csv",
            "arrival_s,prompt_tokens,output_tokens,text\n0,1,1,\"two\nlines\"\n1,0.5,1,x\n",
            Some(4),
            &["whole number"],
        ),
        (
            "huge.csv",
            "arrival_s,prompt_tokens,output_tokens\n0,99999999999,1\n",
            Some(2),
            &["too large"],
        ),
    ];
    for (name, contents, want_line, needles) in cases {
        write(dir.path(), name, contents);
        let (path, line, reason) = data_err(
            &format!("[traffic]\narrival = {{ kind = \"trace\", path = \"{name}\" }}"),
            dir.path(),
        );
        assert_eq!(path, dir.path().join(name));
        assert_eq!(line, *want_line, "{name}: {reason}");
        for needle in *needles {
            assert!(
                reason.contains(needle),
                "{name}: `{reason}` lacks `{needle}`"
            );
        }
    }

    let (path, line, reason) = data_err(
        "[traffic]\narrival = { kind = \"trace\", path = \"missing.csv\" }",
        dir.path(),
    );
    assert_eq!(path, dir.path().join("missing.csv"));
    assert_eq!(line, None);
    assert!(reason.contains("cannot open"), "{reason}");

    // Empirical: a missing column names the spec key that asked for it.
    write(dir.path(), "lens.csv", "a,b\n1,2\n");
    let (_, line, reason) = data_err(
        "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
         prompt = { kind = \"fixed\", value = 1 }\n\
         output = { kind = \"empirical\", path = \"lens.csv\", column = \"tokens\" }",
        dir.path(),
    );
    assert_eq!(line, Some(1));
    assert!(
        reason.contains("`tokens`") && reason.contains("a, b") && reason.contains("traffic.output"),
        "{reason}"
    );
}

// --------------------------------------------------------------- validation

#[test]
fn bad_values_name_their_key() {
    let arrival = |a: &str| format!("[traffic]\narrival = {a}\n{LENGTHS}");
    let lengths = |p: &str| {
        format!(
            "[traffic]\narrival = {{ kind = \"poisson\", rate = 1 }}\nprompt = {p}\n\
             output = {{ kind = \"fixed\", value = 1 }}"
        )
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            arrival("{ kind = \"poisson\", rate = -3 }"),
            "traffic.arrival.rate",
            "-3 is outside its physical range [1e-6, 1e7] requests/s",
        ),
        (
            arrival("{ kind = \"poisson\", rate = 0 }"),
            "traffic.arrival.rate",
            "0 is outside",
        ),
        (
            arrival("{ kind = \"poisson\", rate = nan }"),
            "traffic.arrival.rate",
            "NaN",
        ),
        (
            arrival("{ kind = \"constant\", rate = inf }"),
            "traffic.arrival.rate",
            "inf",
        ),
        (
            arrival("{ kind = \"gamma\", rate = 1, burstiness = 0 }"),
            "traffic.arrival.burstiness",
            "0 is outside its physical range [0.001, 1000]",
        ),
        (
            arrival("{ kind = \"gamma\", rate = 1e-200, burstiness = 1 }"),
            "traffic.arrival.rate",
            "1e-200 is outside",
        ),
        (
            arrival("{ kind = \"ramp\", from = -1, to = 2, over_s = 10 }"),
            "traffic.arrival.from",
            "-1 is outside its physical range [0, 1e7]",
        ),
        (
            arrival("{ kind = \"ramp\", from = 1, to = 0, over_s = 10 }"),
            "traffic.arrival.to",
            "0 is outside",
        ),
        (
            arrival("{ kind = \"ramp\", from = 1, to = 2, over_s = 0 }"),
            "traffic.arrival.over_s",
            "0 is outside its physical range (0, 1e10] s",
        ),
        (
            arrival("{ kind = \"closed\", users = 0 }"),
            "traffic.arrival.users",
            "at least 1",
        ),
        (
            arrival("{ kind = \"closed\", users = 2, think_s = -1 }"),
            "traffic.arrival.think_s",
            "-1 is outside its physical range [0, 86400] s",
        ),
        (
            lengths("{ kind = \"fixed\", value = 0 }"),
            "traffic.prompt.value",
            "at least 1",
        ),
        (
            lengths("{ kind = \"uniform\", min = 9, max = 3 }"),
            "traffic.prompt.max",
            "must be >= min (9), got 3",
        ),
        (
            lengths("{ kind = \"uniform\", min = 0, max = 3 }"),
            "traffic.prompt.min",
            "at least 1",
        ),
        (
            lengths("{ kind = \"normal\", mean = 10, std = -1, min = 1, max = 3 }"),
            "traffic.prompt.std",
            ">= 0",
        ),
        (
            lengths("{ kind = \"normal\", mean = -10, std = 1, min = 1, max = 3 }"),
            "traffic.prompt.mean",
            "positive",
        ),
        (
            lengths("{ kind = \"lognormal\", mean = 700, sigma = -1, min = 1, max = 3 }"),
            "traffic.prompt.sigma",
            ">= 0",
        ),
        (
            lengths("{ kind = \"lognormal\", mean = 700, sigma = 1e200, min = 1, max = 3 }"),
            "traffic.prompt.sigma",
            "too large",
        ),
        (
            lengths("{ kind = \"lognormal\", mean = 0, sigma = 1, min = 1, max = 3 }"),
            "traffic.prompt.mean",
            "positive",
        ),
        (
            lengths("{ kind = \"mixture\", components = [] }"),
            "traffic.prompt.components",
            "at least one",
        ),
        (
            lengths(
                "{ kind = \"mixture\", components = [\
                 { weight = 1, dist = { kind = \"fixed\", value = 1 } },\
                 { weight = 0, dist = { kind = \"fixed\", value = 2 } }] }",
            ),
            "traffic.prompt.components[1].weight",
            "positive",
        ),
        (
            lengths(
                "{ kind = \"mixture\", components = [\
                 { weight = 1, dist = { kind = \"mixture\", components = [\
                 { weight = 1, dist = { kind = \"lognormal\", mean = 1, sigma = nan, min = 1, max = 2 } }] } }] }",
            ),
            "traffic.prompt.components[0].dist.components[0].dist.sigma",
            "NaN",
        ),
        (
            lengths(
                "{ kind = \"mixture\", components = [\
                 { weight = 1e308, dist = { kind = \"fixed\", value = 1 } },\
                 { weight = 1e308, dist = { kind = \"fixed\", value = 2 } }] }",
            ),
            "traffic.prompt.components",
            "not finite",
        ),
        (
            lengths("{ kind = \"empirical\", path = \"x.csv\", column = \"c\", min = 5, max = 4 }"),
            "traffic.prompt.max",
            "min (5)",
        ),
        (
            format!(
                "[traffic]\narrival = {{ kind = \"poisson\", rate = 1 }}\n{LENGTHS}\
                 max_tokens = {{ kind = \"uniform\", min = 0, max = 4 }}"
            ),
            "traffic.max_tokens.min",
            "at least 1",
        ),
        // Combinations.
        (
            format!("[traffic]\narrival = {{ kind = \"trace\", path = \"t.csv\" }}\n{LENGTHS}"),
            "traffic.prompt",
            "trace",
        ),
        (
            "[traffic]\narrival = { kind = \"trace\", path = \"t.csv\" }\n\
             lengths = { kind = \"trace\", path = \"t.csv\" }"
                .to_string(),
            "traffic.lengths",
            "trace",
        ),
        (
            format!(
                "[traffic]\narrival = {{ kind = \"poisson\", rate = 1 }}\n{LENGTHS}\
                 lengths = {{ kind = \"trace\", path = \"t.csv\" }}"
            ),
            "traffic.lengths",
            "either",
        ),
        (
            "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
             prompt = { kind = \"fixed\", value = 1 }"
                .to_string(),
            "traffic.output",
            "required",
        ),
        (
            "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
             output = { kind = \"fixed\", value = 1 }"
                .to_string(),
            "traffic.prompt",
            "required",
        ),
        (
            "[traffic]\narrival = { kind = \"closed\", users = 1 }".to_string(),
            "traffic.prompt",
            "required",
        ),
    ];
    for (src, key, needle) in cases {
        let (got_key, reason) = spec_err(&src);
        assert_eq!(got_key, key, "{src}\nreason: {reason}");
        assert!(
            reason.contains(needle),
            "{src}\n`{reason}` lacks `{needle}`"
        );
    }
}

#[test]
fn the_error_message_names_file_key_and_reason() {
    let spec = parse(&format!(
        "[traffic]\narrival = {{ kind = \"poisson\", rate = -3 }}\n{LENGTHS}"
    ))
    .unwrap();
    let err = TrafficPlan::from_spec(&spec, Path::new("."), Path::new("s.toml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "s.toml: `traffic.arrival.rate`: -3 is outside its physical range [1e-6, 1e7] \
         requests/s (from one request in ~12 days to ten million a second)"
    );
}

proptest::proptest! {
    /// Arbitrary numbers (NaN, infinities, huge, tiny) never panic: they are
    /// rejected, or they produce valid requests.
    #[test]
    fn arbitrary_values_never_panic(
        rate in proptest::num::f64::ANY,
        k in proptest::num::f64::ANY,
        mean in proptest::num::f64::ANY,
        spread in proptest::num::f64::ANY,
        lo in 0u32..5000,
        hi in 0u32..=u32::MAX,
        kind in 0usize..5,
        dist in 0usize..3,
    ) {
        let fmt = |x: f64| if x.is_nan() { "nan".to_string() } else if x.is_infinite() {
            if x > 0.0 { "inf".to_string() } else { "-inf".to_string() }
        } else { format!("{x:e}") };
        let arrival = match kind {
            0 => format!("{{ kind = \"poisson\", rate = {} }}", fmt(rate)),
            1 => format!("{{ kind = \"gamma\", rate = {}, burstiness = {} }}", fmt(rate), fmt(k)),
            2 => format!("{{ kind = \"constant\", rate = {} }}", fmt(rate)),
            3 => format!("{{ kind = \"ramp\", from = {}, to = {}, over_s = {} }}", fmt(k), fmt(rate), fmt(spread)),
            _ => format!("{{ kind = \"closed\", users = {lo}, think_s = {}, think = \"exponential\" }}", fmt(k)),
        };
        let length = match dist {
            0 => format!("{{ kind = \"normal\", mean = {}, std = {}, min = {lo}, max = {hi} }}", fmt(mean), fmt(spread)),
            1 => format!("{{ kind = \"lognormal\", mean = {}, sigma = {}, min = {lo}, max = {hi} }}", fmt(mean), fmt(spread)),
            _ => format!("{{ kind = \"uniform\", min = {lo}, max = {hi} }}"),
        };
        let src = format!("[traffic]\narrival = {arrival}\nprompt = {length}\noutput = {length}\n");
        let spec = parse(&src).unwrap();
        if let Ok(p) = TrafficPlan::from_spec(&spec, Path::new("."), Path::new("p.toml")) {
            let mut t = p.instantiate(1);
            let mut last = SimTime::ZERO;
            for _ in 0..50 {
                let l = match t.next_arrival() {
                    Some((at, l)) => { proptest::prop_assert!(at >= last); last = at; l }
                    None => t.next_lengths(),
                };
                proptest::prop_assert!(l.prompt >= 1 && l.output >= 1 && l.output <= l.max_tokens);
                let _ = t.think_time();
            }
        }
    }
}

// ------------------------------------------------------- the Splitwise trace

const SPLITWISE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/traces/splitwise_conv.csv"
);

const SPLITWISE_COLUMNS: &str = "arrival_column = \"arrived_at\", \
    prompt_column = \"num_prefill_tokens\", output_column = \"num_decode_tokens\"";

#[test]
fn splitwise_trace_replays_and_pairs() {
    if !Path::new(SPLITWISE).exists() {
        eprintln!(
            "SKIPPED splitwise_trace_replays_and_pairs: {SPLITWISE} is absent (no ../shared checkout)"
        );
        return;
    }
    let p = plan(&format!(
        "[traffic]\narrival = {{ kind = \"trace\", path = {SPLITWISE:?}, {SPLITWISE_COLUMNS} }}"
    ));
    assert_eq!(p.trace_len(), Some(19_366));
    let mut t = p.instantiate(0);
    let first: Vec<_> = (0..4).map(|_| t.next_arrival().unwrap()).collect();
    let row = |at: u64, prompt, output| {
        (
            SimTime::from_nanos(at),
            Lengths {
                prompt,
                output,
                max_tokens: 1000,
                prefix: None,
                conversation: Lengths::NO_CONVERSATION,
            },
        )
    };
    assert_eq!(
        first,
        vec![
            row(0, 374, 44),
            row(4_314_579_000, 396, 109),
            row(4_541_877_000, 879, 55),
            row(4_710_427_000, 91, 16),
        ]
    );
    let mut n = 4;
    let mut last = first[3].0;
    while let Some((at, l)) = t.next_arrival() {
        assert!(at >= last && l.prompt >= 1 && l.output >= 1);
        last = at;
        n += 1;
    }
    assert_eq!(n, 19_366);
    assert_eq!(last, SimTime::from_nanos(3_501_721_937_000));
    let (pm, om) = p.mean_lengths();
    assert!(
        (pm - 1154.6974).abs() < 1e-3 && (om - 211.1259).abs() < 1e-3,
        "{pm} {om}"
    );

    // Paired sampling with Poisson arrivals keeps the file's pairs.
    let q = plan(&format!(
        "[traffic]\narrival = {{ kind = \"poisson\", rate = 5 }}\n\
         lengths = {{ kind = \"trace\", path = {SPLITWISE:?}, prompt_column = \"num_prefill_tokens\", output_column = \"num_decode_tokens\" }}"
    ));
    let mut rows = std::collections::HashSet::new();
    let mut t = p.instantiate(0);
    while let Some((_, l)) = t.next_arrival() {
        rows.insert((l.prompt, l.output));
    }
    assert_eq!(q.mean_lengths(), p.mean_lengths());
    for l in draws(&q, 1, 10_000) {
        assert!(
            rows.contains(&(l.prompt, l.output)),
            "{l:?} is not in the trace"
        );
    }
}

// ------------------------------------------- shared prefixes, sessions, n

/// An open-loop plan with uniform user prompts of 1..=100 tokens, uniform
/// outputs of 1..=1000, and `extra` keys.
fn feature_plan(extra: &str) -> TrafficPlan {
    plan(&format!(
        "[traffic]\narrival = {{ kind = \"poisson\", rate = 4 }}\n\
         prompt = {{ kind = \"uniform\", min = 1, max = 100 }}\n\
         output = {{ kind = \"uniform\", min = 1, max = 1000 }}\n{extra}"
    ))
}

#[test]
fn new_keys_parse_with_defaults_and_round_trip() {
    let src = r#"
[traffic]
arrival = { kind = "poisson", rate = 2 }
prompt = { kind = "fixed", value = 10 }
output = { kind = "fixed", value = 10 }
prefix = { count = 4, tokens = 1024, fraction = 0.8 }
session = { turns = { kind = "uniform", min = 5, max = 30 }, think_s = 20.0, think = "exponential" }
n = 4
"#;
    let spec = parse(src).unwrap();
    assert_eq!(
        spec.prefix,
        Some(PrefixSpec {
            count: 4,
            tokens: 1024,
            fraction: 0.8
        })
    );
    assert_eq!(
        spec.session,
        Some(SessionSpec {
            turns: Some(LengthSpec::Uniform { min: 5, max: 30 }),
            think_s: 20.0,
            think: ThinkKind::Exponential
        })
    );
    assert_eq!(spec.n, 4);
    let echoed = toml::to_string(&Top2 {
        traffic: spec.clone(),
    })
    .unwrap();
    assert_eq!(parse(&echoed).unwrap(), spec, "echo:\n{echoed}");

    // Defaults: every request uses a system prompt, back-to-back fixed
    // turns, one sample; no keys, no features.
    let spec = parse(&format!(
        "[traffic]\narrival = {{ kind = \"poisson\", rate = 2 }}\n{LENGTHS}\
         prefix = {{ count = 1, tokens = 8 }}\n\
         session = {{ turns = {{ kind = \"fixed\", value = 3 }} }}"
    ))
    .unwrap();
    assert_eq!(spec.prefix.as_ref().unwrap().fraction, 1.0);
    let session = spec.session.as_ref().unwrap();
    assert_eq!((session.think_s, session.think), (0.0, ThinkKind::Fixed));
    assert_eq!(spec.n, 1);
    let p = open_plan("{ kind = \"poisson\", rate = 1 }");
    assert!(!p.session());
    assert_eq!(p.samples(), 1);
    let mut t = p.instantiate(0);
    assert_eq!(t.session_turns(), 1);
    assert_eq!(t.session_think(), SimDuration::ZERO);
    assert!(draws(&p, 0, 100).iter().all(|l| l.prefix.is_none()));
}

#[test]
fn new_tables_reject_unknown_fields_and_bad_types() {
    let base = format!("[traffic]\narrival = {{ kind = \"poisson\", rate = 1 }}\n{LENGTHS}");
    for (extra, field) in [
        ("prefix = { count = 1, tokens = 8, share = 0.5 }", "share"),
        (
            "session = { turns = { kind = \"fixed\", value = 3 }, think = \"fixed\", pause_s = 1 }",
            "pause_s",
        ),
        (
            "session = { turns = { kind = \"fixed\", value = 3, min = 1 } }",
            "min",
        ),
    ] {
        let err = parse(&format!("{base}{extra}"))
            .expect_err(extra)
            .to_string();
        assert!(err.contains(field), "`{field}` not named: {err}");
    }
    for extra in [
        "prefix = { count = 1 }",
        "prefix = { tokens = 8 }",
        "prefix = { count = -1, tokens = 8 }",
        "prefix = { count = 1, tokens = 8.5 }",
        "session = { turns = { kind = \"fixed\", value = 3 }, think = \"weibull\" }",
        "n = 0.5",
        "n = -2",
        "n = \"4\"",
    ] {
        assert!(
            parse(&format!("{base}{extra}")).is_err(),
            "accepted: {extra}"
        );
    }
}

#[test]
fn new_keys_are_validated_naming_the_key() {
    let with = |extra: &str| {
        format!("[traffic]\narrival = {{ kind = \"poisson\", rate = 1 }}\n{LENGTHS}{extra}")
    };
    let trace = |extra: &str| {
        format!("[traffic]\narrival = {{ kind = \"trace\", path = \"t.csv\" }}\n{extra}")
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            with("prefix = { count = 0, tokens = 8 }"),
            "traffic.prefix.count",
            "at least 1",
        ),
        (
            with("prefix = { count = 2, tokens = 0 }"),
            "traffic.prefix.tokens",
            "at least 1",
        ),
        (
            with("prefix = { count = 2, tokens = 8, fraction = 1.5 }"),
            "traffic.prefix.fraction",
            "in [0, 1] (the share of requests using a system prompt), got 1.5",
        ),
        (
            with("prefix = { count = 2, tokens = 8, fraction = -0.1 }"),
            "traffic.prefix.fraction",
            "got -0.1",
        ),
        (
            with("prefix = { count = 2, tokens = 8, fraction = nan }"),
            "traffic.prefix.fraction",
            "NaN",
        ),
        (
            // 100 + 4294967200 tokens do not fit a u32 prompt.
            with("prefix = { count = 2, tokens = 4294967200 }"),
            "traffic.prefix.tokens",
            "longest prompt (100)",
        ),
        (
            with("session = { turns = { kind = \"uniform\", min = 0, max = 3 } }"),
            "traffic.session.turns.min",
            "at least one turn",
        ),
        (
            with("session = { turns = { kind = \"fixed\", value = 0 } }"),
            "traffic.session.turns.value",
            "at least one turn",
        ),
        (
            with(
                "session = { turns = { kind = \"mixture\", components = [\
                 { weight = 1, dist = { kind = \"uniform\", min = 4, max = 2 } }] } }",
            ),
            "traffic.session.turns.components[0].dist.max",
            "min (4)",
        ),
        (
            with("session = { turns = { kind = \"fixed\", value = 2 }, think_s = -1 }"),
            "traffic.session.think_s",
            "-1 is outside its physical range [0, 86400] s",
        ),
        (
            with("session = { turns = { kind = \"fixed\", value = 2 }, think_s = inf }"),
            "traffic.session.think_s",
            "inf",
        ),
        (with("n = 0"), "traffic.n", "at least 1"),
        // Conflicts with a trace are reported before its (missing) file is read.
        (
            trace("prefix = { count = 1, tokens = 8 }"),
            "traffic.prefix",
            "prefix_id",
        ),
        (
            trace("session = { turns = { kind = \"fixed\", value = 2 } }"),
            "traffic.session",
            "trace",
        ),
    ];
    for (src, key, needle) in cases {
        let (got_key, reason) = spec_err(&src);
        assert_eq!(got_key, key, "{src}\nreason: {reason}");
        assert!(
            reason.contains(needle),
            "{src}\n`{reason}` lacks `{needle}`"
        );
    }
}

#[test]
fn prefix_share_and_ids_follow_the_spec() {
    let n = 100_000;
    let p = feature_plan("prefix = { count = 4, tokens = 1024, fraction = 0.8 }");
    let base = feature_plan("");
    let (with, without) = (draws(&p, 21, n), draws(&base, 21, n));
    let mut per_id = [0u32; 4];
    for (l, b) in with.iter().zip(&without) {
        match l.prefix {
            Some(SharedPrefix { id, tokens, .. }) => {
                assert_eq!(tokens, 1024);
                per_id[id as usize] += 1;
                // The prompt is the system prompt plus the user's part, which
                // is the same draw as without a prefix.
                assert_eq!(l.prompt, 1024 + b.prompt);
            }
            None => assert_eq!(l.prompt, b.prompt),
        }
        assert_eq!((l.output, l.max_tokens), (b.output, b.max_tokens));
    }
    let used: u32 = per_id.iter().sum();
    let share = f64::from(used) / n as f64;
    // sd of the share is 0.0013; the spec asks for 1 %.
    assert!((share - 0.8).abs() < 0.01, "share {share}");
    for c in per_id {
        // Uniform over the 4 ids: 25 % of the users each, sd 0.15 %.
        let f = f64::from(c) / f64::from(used);
        assert!((f - 0.25).abs() < 0.01, "ids {per_id:?}");
    }

    // Open-loop arrivals carry prefixes too, and other fractions hold.
    for (fraction, seed) in [(0.05, 1), (0.5, 2)] {
        let p = feature_plan(&format!(
            "prefix = {{ count = 3, tokens = 10, fraction = {fraction} }}"
        ));
        let mut t = p.instantiate(seed);
        let used = (0..n)
            .filter(|_| t.next_arrival().unwrap().1.prefix.is_some())
            .count();
        let share = used as f64 / n as f64;
        assert!((share - fraction).abs() < 0.01, "{fraction}: {share}");
    }

    // Fraction 0: never; fraction 1 (the default): always, every id used.
    let p = feature_plan("prefix = { count = 4, tokens = 1024, fraction = 0 }");
    assert!(draws(&p, 3, 10_000).iter().all(|l| l.prefix.is_none()));
    let p = feature_plan("prefix = { count = 3, tokens = 7 }");
    let d = draws(&p, 3, 10_000);
    assert!(
        d.iter()
            .all(|l| l.prefix.is_some_and(|x| x.id < 3 && x.tokens == 7))
    );
    assert!(d.iter().all(|l| (8..=107).contains(&l.prompt)));
    for id in 0..3 {
        assert!(d.iter().any(|l| l.prefix.unwrap().id == id));
    }
    // One system prompt: every id is 0.
    let p = feature_plan("prefix = { count = 1, tokens = 7 }");
    assert!(draws(&p, 4, 1000).iter().all(|l| l.prefix.unwrap().id == 0));
}

#[test]
fn prefix_counts_in_mean_and_max_lengths() {
    let base = feature_plan("");
    let p = feature_plan("prefix = { count = 4, tokens = 1024, fraction = 0.8 }");
    let (bp, bo) = base.mean_lengths();
    assert_eq!(bp, 50.5);
    let (pp, po) = p.mean_lengths();
    assert!((pp - (50.5 + 0.8 * 1024.0)).abs() < 1e-9, "{pp}");
    assert_eq!(po, bo);
    // The sampled mean agrees.
    let d = draws(&p, 8, 200_000);
    let sampled = d.iter().map(|l| f64::from(l.prompt)).sum::<f64>() / d.len() as f64;
    assert!((sampled / pp - 1.0).abs() < 0.01, "{sampled} vs {pp}");
    assert_eq!(
        p.max_lengths(),
        Lengths {
            prompt: 1124,
            output: 1000,
            max_tokens: 1000,
            prefix: None,
            conversation: Lengths::NO_CONVERSATION,
        }
    );
    // Nobody uses a prefix at fraction 0, so it lengthens nothing.
    let p = feature_plan("prefix = { count = 4, tokens = 1024, fraction = 0 }");
    assert_eq!(p.max_lengths(), base.max_lengths());
    assert_eq!(p.mean_lengths(), base.mean_lengths());
}

#[test]
fn prefix_applies_to_paired_lengths() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pairs.csv",
        "prompt_tokens,output_tokens\n10,100\n30,300\n",
    );
    let p = plan_in(
        "[traffic]\narrival = { kind = \"closed\", users = 2 }\n\
         lengths = { kind = \"trace\", path = \"pairs.csv\" }\n\
         prefix = { count = 2, tokens = 50, fraction = 0.5 }",
        dir.path(),
    )
    .unwrap();
    let d = draws(&p, 9, 4000);
    for l in &d {
        let user = l.prompt - l.prefix.map_or(0, |x| x.tokens);
        assert!(
            [(10, 100), (30, 300)].contains(&(user, l.output)),
            "{l:?} is not a row plus a prefix"
        );
    }
    assert!(d.iter().any(|l| l.prefix.is_some()) && d.iter().any(|l| l.prefix.is_none()));
    assert_eq!(p.mean_lengths(), (45.0, 200.0));
    assert_eq!(p.max_lengths().prompt, 80);
}

#[test]
fn trace_prefix_columns_are_read() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.csv",
        "arrival_s,prompt_tokens,output_tokens,prefix_id,prefix_tokens,session_id\n\
         0,100,5,3,64,a\n\
         1,20,7,,,b\n\
         2,64,9,3.0,64.0,\n\
         3,500,9,0,500,\n",
    );
    let p = plan_in(
        "[traffic]\narrival = { kind = \"trace\", path = \"p.csv\" }",
        dir.path(),
    )
    .unwrap();
    let mut t = p.instantiate(0);
    let got: Vec<_> = std::iter::from_fn(|| t.next_arrival())
        .map(|(_, l)| (l.prompt, l.prefix))
        .collect();
    let sp = |id, tokens| {
        Some(SharedPrefix {
            id,
            tokens,
            chain: false,
        })
    };
    let want = vec![
        (100, sp(3, 64)),
        (20, None),
        (64, sp(3, 64)),
        (500, sp(0, 500)),
    ];
    assert_eq!(got, want);
    // The trace's prompts already hold their prefixes.
    assert_eq!(p.mean_lengths().0, 171.0);
    assert_eq!(p.max_lengths().prompt, 500);
    // Random rows (`next_lengths`) keep their prefix.
    let mut t = p.instantiate(1);
    for _ in 0..200 {
        let l = t.next_lengths();
        assert!(want.contains(&(l.prompt, l.prefix)), "{l:?}");
    }

    // Zero-token policies apply before the prefix check: a skipped row is
    // not checked, a 0 counted as 1 is.
    write(
        dir.path(),
        "z.csv",
        "arrival_s,prompt_tokens,output_tokens,prefix_id,prefix_tokens\n\
         0,0,5,1,1\n1,10,0,1,99\n2,10,4,,\n",
    );
    let (_, line, reason) = data_err(
        "[traffic]\narrival = { kind = \"trace\", path = \"z.csv\", zero_tokens = \"one\" }",
        dir.path(),
    );
    assert_eq!(line, Some(3), "{reason}");
    let p = plan_in(
        "[traffic]\narrival = { kind = \"trace\", path = \"z.csv\", zero_tokens = \"skip\" }",
        dir.path(),
    )
    .unwrap();
    assert_eq!(p.trace_len(), Some(1));
}

#[test]
fn trace_prefix_errors_name_the_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let header = "arrival_s,prompt_tokens,output_tokens,prefix_id,prefix_tokens\n";
    let cases: Vec<(&str, String, Option<u64>, &[&str])> = vec![
        (
            "long.csv",
            format!("{header}0,100,5,1,64\n1,100,5,1,101\n"),
            Some(3),
            &["`prefix_tokens` = 101", "`prompt_tokens` = 100"],
        ),
        (
            "only_id.csv",
            "arrival_s,prompt_tokens,output_tokens,prefix_id\n0,100,5,1\n".to_string(),
            Some(1),
            &["no `prefix_tokens`", "`prefix_id`"],
        ),
        (
            "only_tokens.csv",
            "arrival_s,prompt_tokens,output_tokens,prefix_tokens\n0,100,5,1\n".to_string(),
            Some(1),
            &["no `prefix_id`"],
        ),
        (
            "text_id.csv",
            format!("{header}0,100,5,1,8\n1,100,5,sys,8\n"),
            Some(3),
            &["`prefix_id`", "`sys`", "whole number"],
        ),
        (
            "neg_id.csv",
            format!("{header}0,100,5,-1,8\n"),
            Some(2),
            &["`prefix_id`", "`-1`"],
        ),
        (
            "frac_tokens.csv",
            format!("{header}0,100,5,1,8.5\n"),
            Some(2),
            &["`prefix_tokens`", "whole number"],
        ),
        (
            "zero_tokens.csv",
            format!("{header}0,100,5,1,0\n"),
            Some(2),
            &["`prefix_tokens` is 0"],
        ),
        (
            "half_row.csv",
            format!("{header}0,100,5,,\n1,100,5,2,\n"),
            Some(3),
            &["`prefix_tokens` is empty"],
        ),
        (
            "other_half.csv",
            format!("{header}0,100,5,,16\n"),
            Some(2),
            &["`prefix_id` is empty"],
        ),
        (
            "dup.csv",
            "arrival_s,prompt_tokens,output_tokens,prefix_id,prefix_tokens,prefix_id\n0,1,1,1,1,1\n"
                .to_string(),
            Some(1),
            &["`prefix_id` appears more than once"],
        ),
    ];
    for (name, contents, want_line, needles) in cases {
        write(dir.path(), name, &contents);
        let (path, line, reason) = data_err(
            &format!("[traffic]\narrival = {{ kind = \"trace\", path = \"{name}\" }}"),
            dir.path(),
        );
        assert_eq!(path, dir.path().join(name));
        assert_eq!(line, want_line, "{name}: {reason}");
        for needle in needles {
            assert!(
                reason.contains(needle),
                "{name}: `{reason}` lacks `{needle}`"
            );
        }
    }
    // Paired lengths and empirical columns do not read prefix columns.
    write(
        dir.path(),
        "pairs.csv",
        "prompt_tokens,output_tokens,prefix_id\n10,1,x\n",
    );
    assert!(
        plan_in(
            "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
             lengths = { kind = \"trace\", path = \"pairs.csv\" }",
            dir.path(),
        )
        .is_ok()
    );
}

#[test]
fn session_turns_and_think_times_follow_the_spec() {
    let p = feature_plan(
        "session = { turns = { kind = \"uniform\", min = 5, max = 30 }, think_s = 20.0, think = \"exponential\" }",
    );
    assert!(p.session());
    let mut t = p.instantiate(12);
    let n = 100_000;
    let turns: Vec<u32> = (0..n).map(|_| t.session_turns()).collect();
    assert!(turns.iter().all(|k| (5..=30).contains(k)));
    assert!(turns.contains(&5) && turns.contains(&30));
    let mean = turns.iter().map(|&k| f64::from(k)).sum::<f64>() / n as f64;
    // Uniform 5..=30: mean 17.5, sd 7.5, sd of the mean 0.024.
    assert!((mean - 17.5).abs() < 0.1, "mean turns {mean}");
    let thinks: Vec<f64> = (0..n).map(|_| t.session_think().as_secs_f64()).collect();
    let (mean, var) = mean_var(&thinks);
    assert!((mean / 20.0 - 1.0).abs() < 0.02, "mean think {mean}");
    assert!((var.sqrt() / mean - 1.0).abs() < 0.03, "think CV");

    // Fixed think (the default kind); a lognormal number of turns.
    let p = feature_plan(
        "session = { turns = { kind = \"lognormal\", mean = 6, sigma = 0.8, min = 1, max = 50 }, think_s = 2.5 }",
    );
    let mut t = p.instantiate(13);
    for _ in 0..100 {
        assert_eq!(t.session_think(), SimDuration::from_nanos(2_500_000_000));
    }
    let turns: Vec<u32> = (0..n).map(|_| t.session_turns()).collect();
    assert!(turns.iter().all(|k| (1..=50).contains(k)));
    let mean = turns.iter().map(|&k| f64::from(k)).sum::<f64>() / n as f64;
    // The exact mean of the clamped, rounded distribution.
    let want = match Sampler::build_counting(
        &LengthSpec::Lognormal {
            mean: 6.0,
            sigma: 0.8,
            min: 1,
            max: 50,
        },
        "k",
        lengths::Unit::Turns,
        &Ctx {
            scenario: Path::new("x"),
            base_dir: Path::new("."),
        },
    ) {
        Ok(s) => lengths::pmf_mean(&s.pmf()),
        Err(e) => panic!("{e}"),
    };
    assert!((mean / want - 1.0).abs() < 0.01, "{mean} vs {want}");

    // A fixed number of turns, in a closed loop whose own think time stays.
    let p = plan(&format!(
        "[traffic]\narrival = {{ kind = \"closed\", users = 3, think_s = 1 }}\n{LENGTHS}\
         session = {{ turns = {{ kind = \"fixed\", value = 4 }} }}"
    ));
    assert!(p.session());
    let mut t = p.instantiate(0);
    assert_eq!(t.session_turns(), 4);
    assert_eq!(t.session_think(), SimDuration::ZERO);
    assert_eq!(t.think_time(), SimDuration::from_nanos(1_000_000_000));
}

#[test]
fn later_turns_draw_a_message_without_the_system_prompt() {
    let p = feature_plan(
        "prefix = { count = 2, tokens = 500 }\n\
         session = { turns = { kind = \"fixed\", value = 3 } }",
    );
    let base = feature_plan("");
    let (mut t, mut b) = (p.instantiate(5), base.instantiate(5));
    for _ in 0..1000 {
        // First turn: system prompt + message; later turns: message only.
        let (_, first) = t.next_arrival().unwrap();
        let (_, plain) = b.next_arrival().unwrap();
        assert_eq!(first.prompt, 500 + plain.prompt);
        assert!(first.prefix.is_some());
        for _ in 1..t.session_turns() {
            let m = t.next_message();
            let plain = b.next_lengths();
            assert_eq!(m, plain, "a message is a prefix-free request");
            assert!(m.prefix.is_none() && (1..=100).contains(&m.prompt));
        }
    }
}

#[test]
fn sample_output_draws_the_output_distribution_capped() {
    let p = feature_plan("n = 4");
    assert_eq!(p.samples(), 4);
    let n = 100_000;
    let mut t = p.instantiate(14);
    // Uncapped (cap at the largest output): uniform 1..=1000, mean 500.5.
    let free: Vec<u32> = (0..n).map(|_| t.sample_output(1000)).collect();
    assert!(free.iter().all(|o| (1..=1000).contains(o)));
    let mean = free.iter().map(|&o| f64::from(o)).sum::<f64>() / n as f64;
    // sd 288.7, sd of the mean 0.91.
    assert!((mean - 500.5).abs() < 4.0, "mean sample {mean}");
    // Capped at 300: E[min(U, 300)] = (300 * 301 / 2 + 700 * 300) / 1000.
    let capped: Vec<u32> = (0..n).map(|_| t.sample_output(300)).collect();
    assert!(capped.iter().all(|o| (1..=300).contains(o)));
    let mean = capped.iter().map(|&o| f64::from(o)).sum::<f64>() / n as f64;
    assert!((mean - 255.15).abs() < 2.0, "mean capped sample {mean}");
    // A cap of 0 still yields one token.
    assert_eq!(t.sample_output(0), 1);

    // Its own stream: interleaving samples changes no other draw, and the
    // samples are not the requests' outputs replayed.
    let (mut a, mut b) = (p.instantiate(15), feature_plan("").instantiate(15));
    let mut same = 0;
    for _ in 0..1000 {
        let (x, y) = (a.next_arrival().unwrap(), b.next_arrival().unwrap());
        assert_eq!(x, y);
        for _ in 1..p.samples() {
            if a.sample_output(x.1.max_tokens) == x.1.output {
                same += 1;
            }
        }
    }
    assert!(same < 20, "{same} samples equal their request's output");
}

#[test]
fn sample_output_with_files_draws_output_rows() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "t.csv",
        "arrival_s,prompt_tokens,output_tokens\n0,10,5\n1,10,50\n2,10,500\n3,10,5000\n",
    );
    let trace = plan_in(
        "[traffic]\narrival = { kind = \"trace\", path = \"t.csv\" }\nn = 2",
        dir.path(),
    )
    .unwrap();
    let paired = plan_in(
        "[traffic]\narrival = { kind = \"poisson\", rate = 1 }\n\
         lengths = { kind = \"trace\", path = \"t.csv\" }\nn = 3",
        dir.path(),
    )
    .unwrap();
    assert_eq!((trace.samples(), paired.samples()), (2, 3));
    for p in [trace, paired] {
        let mut t = p.instantiate(16);
        let mut counts = [0u32; 4];
        for _ in 0..8000 {
            let o = t.sample_output(1000);
            let i = [5, 50, 500, 1000].iter().position(|&v| v == o);
            counts[i.unwrap_or_else(|| panic!("{o} is not a capped row"))] += 1;
        }
        // 2000 expected each; sd ~39.
        assert!(
            counts.iter().all(|c| (1800..2200).contains(c)),
            "{counts:?}"
        );
        // The replay itself is untouched by the samples.
        if p.is_trace_replay() {
            let outs: Vec<u32> = std::iter::from_fn(|| t.next_arrival())
                .map(|(_, l)| l.output)
                .collect();
            assert_eq!(outs, vec![5, 50, 500, 5000]);
        }
    }
}

/// FNV-1a style fold of draws, to pin long sequences in one number.
fn fingerprint(values: impl IntoIterator<Item = u64>) -> u64 {
    values.into_iter().fold(0xcbf2_9ce4_8422_2325, |acc, v| {
        (acc ^ v).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn lengths_words(l: &Lengths) -> [u64; 3] {
    [l.prompt.into(), l.output.into(), l.max_tokens.into()]
}

#[test]
fn existing_streams_are_unchanged_by_the_new_keys() {
    // Fingerprints of the first 1000 draws, recorded with the code before
    // prefixes, sessions and `n` existed: the same seed and keys must keep
    // giving byte-identical traffic.
    const OPEN: &str = r#"[traffic]
arrival = { kind = "gamma", rate = 10, burstiness = 0.5 }
prompt = { kind = "lognormal", mean = 700, sigma = 1.0, min = 4, max = 8192 }
output = { kind = "normal", mean = 200, std = 80, min = 1, max = 2048 }
max_tokens = { kind = "uniform", min = 100, max = 2048 }
"#;
    const CLOSED: &str = "[traffic]\narrival = { kind = \"closed\", users = 4, think_s = 2.0, think = \"exponential\" }\n\
         prompt = { kind = \"uniform\", min = 1, max = 1000 }\n\
         output = { kind = \"uniform\", min = 1, max = 1000 }\n";
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pairs.csv",
        "prompt_tokens,output_tokens\n10,1000\n2000,3\n500,500\n7,7\n",
    );
    const PAIRED: &str = "[traffic]\narrival = { kind = \"poisson\", rate = 2 }\n\
         lengths = { kind = \"trace\", path = \"pairs.csv\" }\n";
    // The fingerprint and how many requests had a system prompt.
    let open_run = |p: &TrafficPlan, with_new_calls: bool| {
        let mut t = p.instantiate(42);
        let mut words = Vec::new();
        let mut prefixed = 0;
        for _ in 0..1000 {
            let (at, l) = t.next_arrival().unwrap();
            prefixed += usize::from(l.prefix.is_some());
            // Take the user's part: the system prompt is the only addition.
            let user = Lengths {
                prompt: l.prompt - l.prefix.map_or(0, |x| x.tokens),
                ..l
            };
            words.push(at.as_nanos());
            words.extend(lengths_words(&user));
            if with_new_calls {
                for _ in 1..t.session_turns() {
                    let _ = t.session_think();
                    let _ = t.sample_output(l.max_tokens);
                }
            }
        }
        (fingerprint(words), prefixed)
    };
    let closed_run = |p: &TrafficPlan, with_new_calls: bool| {
        let mut t = p.instantiate(42);
        let mut words = Vec::new();
        let mut prefixed = 0;
        for _ in 0..1000 {
            let l = t.next_lengths();
            prefixed += usize::from(l.prefix.is_some());
            let user = Lengths {
                prompt: l.prompt - l.prefix.map_or(0, |x| x.tokens),
                ..l
            };
            let think = t.think_time();
            words.push(think.as_nanos());
            words.extend(lengths_words(&user));
            if with_new_calls {
                let _ = t.session_turns();
                let _ = t.session_think();
                let _ = t.sample_output(l.max_tokens);
            }
        }
        (fingerprint(words), prefixed)
    };
    let extra = "prefix = { count = 4, tokens = 1024, fraction = 0.8 }\n\
                 session = { turns = { kind = \"uniform\", min = 1, max = 5 }, think_s = 3, think = \"exponential\" }\n\
                 n = 4\n";
    for (src, golden, closed) in [
        (OPEN, 0xf7db_8f64_9be3_1316, false),
        (CLOSED, 0xb3a9_0842_8898_df16, true),
        (PAIRED, 0x320a_4845_ae3e_5f8d, false),
    ] {
        let plain = plan_in(src, dir.path()).unwrap();
        let featured = plan_in(&format!("{src}{extra}"), dir.path()).unwrap();
        assert!(featured.session() && featured.samples() == 4);
        let run = if closed { closed_run } else { open_run };
        assert_eq!(run(&plain, false), (golden, 0), "{src}");
        let (fp, prefixed) = run(&featured, true);
        assert_eq!(fp, golden, "{src} with {extra}");
        // The new draws did happen: about 80 % of requests have a prefix.
        assert!((700..900).contains(&prefixed), "{prefixed} prefixed");
    }
}

proptest::proptest! {
    /// Arbitrary prefix, session and `n` values never panic: they are
    /// rejected, or every request is valid.
    #[test]
    fn arbitrary_new_values_never_panic(
        count in 0u32..5,
        tokens in proptest::prop_oneof![0u32..3000, proptest::num::u32::ANY],
        fraction in proptest::num::f64::ANY,
        lo in 0u32..20,
        hi in 0u32..40,
        think_s in proptest::num::f64::ANY,
        n in 0u32..5,
        closed in proptest::bool::ANY,
    ) {
        let fmt = |x: f64| if x.is_nan() { "nan".to_string() } else if x.is_infinite() {
            if x > 0.0 { "inf".to_string() } else { "-inf".to_string() }
        } else { format!("{x:e}") };
        let arrival = if closed {
            "{ kind = \"closed\", users = 2 }"
        } else {
            "{ kind = \"poisson\", rate = 3 }"
        };
        let src = format!(
            "[traffic]\narrival = {arrival}\n\
             prompt = {{ kind = \"uniform\", min = 1, max = 4000 }}\n\
             output = {{ kind = \"uniform\", min = 1, max = 100 }}\n\
             prefix = {{ count = {count}, tokens = {tokens}, fraction = {} }}\n\
             session = {{ turns = {{ kind = \"uniform\", min = {lo}, max = {hi} }}, think_s = {}, think = \"exponential\" }}\n\
             n = {n}\n",
            fmt(fraction), fmt(think_s)
        );
        let spec = parse(&src).unwrap();
        if let Ok(p) = TrafficPlan::from_spec(&spec, Path::new("."), Path::new("p.toml")) {
            proptest::prop_assert!(p.samples() >= 1);
            let max = p.max_lengths();
            let mut t = p.instantiate(1);
            for _ in 0..50 {
                let l = match t.next_arrival() {
                    Some((_, l)) => l,
                    None => t.next_lengths(),
                };
                proptest::prop_assert!(l.prompt >= 1 && l.output >= 1 && l.output <= l.max_tokens);
                proptest::prop_assert!(l.prompt <= max.prompt);
                if let Some(x) = l.prefix {
                    proptest::prop_assert!(x.id < count && x.tokens == tokens && x.tokens < l.prompt);
                }
                let k = t.session_turns();
                proptest::prop_assert!(k >= lo.max(1) && k <= hi);
                let _ = t.session_think();
                let m = t.next_message();
                proptest::prop_assert!(m.prefix.is_none() && m.prompt <= 4000);
                let o = t.sample_output(l.max_tokens);
                proptest::prop_assert!(o >= 1 && o <= l.max_tokens);
            }
        }
    }
}

/// Clamping that moves a normal or log-normal length's mean by more than
/// 10 % is warned about with the key, the requested and the effective mean;
/// a spread the clamp barely touches (or a uniform, which has no requested
/// mean) is not; mixtures are checked component by component.
#[test]
fn clamping_that_moves_the_mean_warns() {
    use crate::traffic::lengths::MEAN_SHIFT_WARN;
    assert_eq!(MEAN_SHIFT_WARN, 0.10);
    let warnings = |lengths: &str| -> Vec<String> {
        let text = format!("arrival = {{ kind = \"poisson\", rate = 1.0 }}\n{lengths}");
        let spec: crate::traffic::TrafficSpec = toml::from_str(&text).unwrap();
        crate::traffic::TrafficPlan::from_spec(&spec, Path::new("."), Path::new("t.toml"))
            .unwrap()
            .clamping_warnings()
    };
    let w = warnings(
        "prompt = { kind = \"lognormal\", mean = 161, sigma = 50.0, min = 1, max = 4096 }\n\
         output = { kind = \"lognormal\", mean = 338, sigma = 1.0, min = 1, max = 2048 }",
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("`traffic.prompt`")
            && w[0].contains("[min, max] = [1, 4096]")
            && w[0].contains("the requested 161 to 1 (-99 %)"),
        "{w:?}"
    );
    // A normal whose max cuts off most of it: mean 1000, max 500.
    let w = warnings(
        "prompt = { kind = \"normal\", mean = 1000, std = 100, min = 1, max = 500 }\n\
         output = { kind = \"uniform\", min = 1, max = 10 }",
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("the requested 1000 to 500"), "{w:?}");
    // Within 10 %: quiet.
    assert!(
        warnings(
            "prompt = { kind = \"lognormal\", mean = 161, sigma = 1.0, min = 4, max = 4096 }\n\
             output = { kind = \"normal\", mean = 100, std = 10, min = 1, max = 1000 }",
        )
        .is_empty()
    );
    let w = warnings(
        "prompt = { kind = \"fixed\", value = 10 }\n\
         output = { kind = \"mixture\", components = [\
           { weight = 1.0, dist = { kind = \"fixed\", value = 5 } },\
           { weight = 1.0, dist = { kind = \"lognormal\", mean = 300, sigma = 40.0, min = 2, max = 100 } },\
         ] }",
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("`traffic.output.components[1].dist`"),
        "{w:?}"
    );
}

/// The traces of `tests/data/traces/` (the repository's, from the crate root).
fn fixture(name: &str) -> String {
    format!("{}/tests/data/traces/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Every arrival of a trace replay under `seed`, in seconds.
fn arrivals(plan: &TrafficPlan, seed: u64) -> Vec<(f64, Lengths)> {
    let mut t = plan.instantiate(seed);
    std::iter::from_fn(|| t.next_arrival())
        .map(|(at, l)| (at.as_secs_f64(), l))
        .collect()
}

fn trace_plan(format: &str, file: &str, extra: &str) -> TrafficPlan {
    plan(&format!(
        "[traffic]\narrival = {{ kind = \"trace\", format = \"{format}\", path = \"{}\"{extra} }}\n",
        fixture(file)
    ))
}

#[test]
fn a_session_needs_turns_unless_it_replays_conversations() {
    let (key, reason) = spec_err(&format!(
        "[traffic]\narrival = {{ kind = \"poisson\", rate = 1 }}\n{LENGTHS}session = {{ think_s = 1 }}\n"
    ));
    assert_eq!(key, "traffic.session.turns");
    assert!(reason.contains("is required"), "{reason}");
    let (key, reason) = spec_err(&format!(
        "[traffic]\narrival = {{ kind = \"poisson\", rate = 1 }}\n\
         lengths = {{ kind = \"trace\", format = \"sharegpt\", path = \"{}\" }}\n\
         session = {{ turns = {{ kind = \"fixed\", value = 2 }} }}\n",
        fixture("sharegpt.json")
    ));
    assert_eq!(key, "traffic.session.turns");
    assert!(reason.contains("sharegpt"), "{reason}");
}

#[test]
fn azure_times_are_seconds_since_the_first_row_and_the_window_places_them() {
    let all = arrivals(&trace_plan("azure", "azure_conv.csv", ""), 1);
    assert_eq!(all.len(), 40);
    for (i, (at, _)) in all.iter().enumerate() {
        assert!((at - i as f64).abs() < 1e-9, "row {i} at {at}");
    }
    assert_eq!((all[0].1.prompt, all[0].1.output), (1530, 485));
    // Rows at 10 s .. 29 s, replayed from 0 at twice the speed.
    let window = trace_plan(
        "azure",
        "azure_conv.csv",
        ", start_s = 10, duration_s = 20, speedup = 2",
    );
    assert_eq!(window.trace_len(), Some(20));
    let w = arrivals(&window, 1);
    for (k, (at, l)) in w.iter().enumerate() {
        assert!((at - k as f64 / 2.0).abs() < 1e-9, "{k}: {at}");
        assert_eq!(l.prompt, all[10 + k].1.prompt);
    }
}

#[test]
fn sampling_keeps_a_seeded_subset_and_draws_nothing_at_one() {
    let full = trace_plan("azure", "azure_conv.csv", "");
    let half = trace_plan("azure", "azure_conv.csv", ", sample = 0.5");
    let all = arrivals(&full, 3);
    let a = arrivals(&half, 3);
    assert_eq!(a, arrivals(&half, 3), "the same seed keeps the same rows");
    assert_ne!(a, arrivals(&half, 4), "another seed keeps other rows");
    assert!((8..=32).contains(&a.len()), "{} of 40 kept", a.len());
    // The kept rows are rows of the file, in order, at their own times.
    let mut rest = all.iter();
    for kept in &a {
        assert!(rest.any(|r| r == kept), "{kept:?} is not a row in order");
    }
    let (key, reason) = spec_err(&format!(
        "[traffic]\narrival = {{ kind = \"trace\", format = \"azure\", path = \"{}\", sample = 0 }}\n",
        fixture("azure_conv.csv")
    ));
    assert_eq!(key, "traffic.arrival.sample");
    assert!(
        reason.contains("outside its physical range (0, 1]"),
        "{reason}"
    );
}

#[test]
fn burstgpt_failures_follow_the_zero_token_policy_and_models_filter() {
    let src = |extra: &str| {
        format!(
            "[traffic]\narrival = {{ kind = \"trace\", format = \"burstgpt\", path = \"{}\"{extra} }}\n",
            fixture("burstgpt.csv")
        )
    };
    let (path, line, reason) = data_err(&src(""), Path::new("."));
    assert!(path.ends_with("burstgpt.csv"));
    assert_eq!(line, Some(9), "row 7 (line 9) failed");
    assert!(reason.contains("`Response tokens` is 0"), "{reason}");
    assert_eq!(plan(&src(", zero_tokens = \"skip\"")).trace_len(), Some(37));
    assert_eq!(plan(&src(", zero_tokens = \"one\"")).trace_len(), Some(40));
    let gpt4 = plan(&src(", zero_tokens = \"skip\", model = \"GPT-4\""));
    // Every 4th row is GPT-4's: 10, one of which (row 7) failed.
    assert_eq!(gpt4.trace_len(), Some(9));
    let (_, _, reason) = data_err(&src(", model = \"Claude\""), Path::new("."));
    assert!(reason.contains("no row has `Model` = `Claude`"), "{reason}");
    let (key, _) = spec_err(&src(", zero_tokens = \"skip\", trace_block_tokens = 16"));
    assert_eq!(key, "traffic.arrival.trace_block_tokens");
}

#[test]
fn mooncake_rows_carry_their_hash_id_chains() {
    let p = trace_plan("mooncake", "mooncake.jsonl", "");
    let rows = arrivals(&p, 1);
    assert_eq!(rows.len(), 40);
    let chains = p.block_chains().expect("a Mooncake trace has chains");
    assert_eq!(chains.block_tokens(), 512);
    // Row 0: ids [0, 1, 2] over 1434 tokens; row 2: [0, 1, 7, 8, 9]: the
    // first two nodes are shared, the third is not.
    let (p0, p2) = (rows[0].1.prefix.unwrap(), rows[2].1.prefix.unwrap());
    assert!(p0.chain && p2.chain);
    assert_eq!((p0.tokens, rows[0].1.prompt), (1434, 1434));
    let node = |p: SharedPrefix, k: usize| chains.node(p.id as usize + k);
    assert_eq!((node(p0, 0), node(p0, 1)), (node(p2, 0), node(p2, 1)));
    assert_ne!(node(p0, 2), node(p2, 2));
    assert_eq!(
        p0.content().key & crate::cache::CHAIN_KEY,
        crate::cache::CHAIN_KEY
    );
    // Times are milliseconds: the last row's `timestamp` is 17000.
    assert!((rows[39].0 - 17.0).abs() < 1e-9, "{}", rows[39].0);
    let bigger = trace_plan("mooncake", "mooncake.jsonl", ", trace_block_tokens = 1024");
    assert_eq!(bigger.block_chains().unwrap().block_tokens(), 1024);
}

#[test]
fn sharegpt_conversations_are_sessions_with_their_own_turns() {
    let p = plan(&format!(
        "[traffic]\narrival = {{ kind = \"poisson\", rate = 1 }}\n\
         lengths = {{ kind = \"trace\", format = \"sharegpt\", path = \"{}\" }}\n",
        fixture("sharegpt.json")
    ));
    assert!(p.session(), "conversations are sessions");
    let mut t = p.instantiate(5);
    // 15 conversations have an exchange (one is empty); the 16th start is
    // the first again.
    let starts: Vec<u32> = (0..16)
        .map(|_| t.next_arrival().unwrap().1.conversation)
        .collect();
    assert_eq!(starts, (0..15).chain([0]).collect::<Vec<u32>>());
    let first = t.next_lengths();
    let turns = t.turns_of(&first);
    assert!(turns >= 1);
    for k in 1..turns {
        let l = t.conversation_turn(first.conversation, k);
        assert!(l.prompt >= 1 && l.output >= 1);
        assert_eq!(l.conversation, Lengths::NO_CONVERSATION);
    }
    let (key, reason) = spec_err(&format!(
        "[traffic]\narrival = {{ kind = \"trace\", format = \"sharegpt\", path = \"{}\" }}\n",
        fixture("sharegpt.json")
    ));
    assert_eq!(key, "traffic.arrival.format");
    assert!(reason.contains("has no arrival times"), "{reason}");
}

#[test]
fn other_formats_serve_as_paired_lengths() {
    for (format, file, rows) in [
        ("azure", "azure_conv.csv", 40),
        ("mooncake", "mooncake.jsonl", 40),
    ] {
        let p = plan(&format!(
            "[traffic]\narrival = {{ kind = \"poisson\", rate = 1 }}\n\
             lengths = {{ kind = \"trace\", format = \"{format}\", path = \"{}\" }}\n",
            fixture(file)
        ));
        let l = p.instantiate(1).next_lengths();
        assert!(l.prompt >= 1 && l.prefix.is_none(), "{format}: {rows} rows");
    }
}
