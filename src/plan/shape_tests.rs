//! Plans of deployment shapes with the mock server (every step 10 ms): the
//! generated shape axis, its refusals, whole-deployment searches, pruning,
//! the crossover's arithmetic.

use std::sync::Mutex;

use super::crossover::{Crossover, CrossoverPoint, CrossoverRun, Ratio, scale_lengths};
use super::*;
use crate::engine::simulate;

/// Llama-3.1-8B on H100s, 16-token prompts and 10-token answers, four
/// sequences per replica; a plan of every shape of `gpus` single GPUs.
fn mock_shapes(gpus: u32) -> String {
    format!(
        r#"
name = "mock-shapes"
seed = 3
requests = 2000

[model]
preset = "llama-3.1-8b"

[hardware]
gpu = "h100-sxm"

[traffic]
arrival = {{ kind = "constant", rate = 1.0 }}
prompt = {{ kind = "fixed", value = 16 }}
output = {{ kind = "fixed", value = 10 }}

[scheduler]
max_num_seqs = 4

[slo]
ttft_p99 = 0.5

[plan]
target_rate = 100.0
replicates = 1
precision = 0.01
disaggregated = true
gpus = {gpus}
tp = [1]
"#
    )
}

/// The mock server: every step costs 10 ms whatever it holds.
fn ten_ms_steps(s: &Scenario, seed: u64) -> Result<Summary, Error> {
    use crate::hardware::cost::FixedCost;
    use crate::units::SimDuration;
    let cost = FixedCost {
        per_step: SimDuration::from_nanos(10_000_000),
        per_prefill_token: SimDuration::ZERO,
        per_swap_kib: SimDuration::ZERO,
    };
    Ok(simulate(s, seed, cost).unwrap().summary)
}

fn plan_of(text: &str) -> (toml::Table, Plan) {
    let table: toml::Table = text.parse().unwrap();
    let plan = Plan::from_table(&table, Path::new("mock.toml"), None).unwrap();
    (table, plan)
}

fn shape_axis_of(plan: &Plan) -> Vec<String> {
    let axis = plan.candidates.axes.last().unwrap();
    assert_eq!(axis.key, SHAPE);
    axis.values
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_disaggregated_plan_makes_every_shape_of_its_gpus() {
    let (_, plan) = plan_of(&mock_shapes(3));
    assert!(plan.by_shape);
    assert_eq!(plan.gpus, Some(3));
    assert_eq!(
        shape_axis_of(&plan),
        ["3xTP1", "1xTP1 + 2xTP1", "2xTP1 + 1xTP1"]
    );
    // The GPU count defaults to the scenario's own: 2 replicas of TP 4.
    let text = mock_shapes(3)
        .replace("gpus = 3\n", "")
        .replace("tp = [1]", "tp = [2, 4]")
        .replace(
            "gpu = \"h100-sxm\"",
            "gpu = \"h100-sxm\"\ntp = 4\nreplicas = 2",
        );
    let (_, plan) = plan_of(&text);
    assert_eq!(plan.gpus, Some(8));
    assert_eq!(shape_axis_of(&plan).len(), 2 + 6);
}

#[test]
fn shape_plans_refuse_what_a_shape_sets_itself() {
    for (from, to, needle) in [
        ("gpus = 3", "gpus = 0", "plan.gpus"),
        ("tp = [1]", "tp = []", "plan.tp"),
        ("tp = [1]", "tp = [4]", "plan.tp"),
        (
            "tp = [1]",
            "tp = [1]\n[plan.candidates]\n\"hardware.tp\" = [1, 2]",
            "plan.candidates.\"hardware.tp\"",
        ),
        (
            "tp = [1]",
            "tp = [1]\n[plan.candidates]\nshape = [\"1xTP1\"]",
            "plan.candidates.shape",
        ),
        ("disaggregated = true", "disaggregated = false", "plan.gpus"),
    ] {
        let text = mock_shapes(3).replace(from, to);
        let table: toml::Table = text.parse().unwrap();
        let e = Plan::from_table(&table, Path::new("m.toml"), None).unwrap_err();
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
    // Shapes listed by hand, without `disaggregated`: a plan of shapes too;
    // one that does not read is refused before any probe.
    let listed = mock_shapes(3)
        .replace("disaggregated = true\ngpus = 3\ntp = [1]\n", "")
        .replace(
            "precision = 0.01",
            "precision = 0.01\n[plan.candidates]\nshape = [\"2xTP1\", \"1xTP1 + 1xTP1\"]",
        );
    let (_, plan) = plan_of(&listed);
    assert!(plan.by_shape && plan.gpus.is_none());
    let bad = listed.replace("\"2xTP1\"", "\"2xTP\"");
    let table: toml::Table = bad.parse().unwrap();
    let e = Plan::from_table(&table, Path::new("m.toml"), None).unwrap_err();
    assert!(e.to_string().contains("not a deployment shape"), "{e}");
}

#[test]
fn a_shape_is_searched_and_sized_as_a_whole_deployment() {
    // Two GPUs: two colocated replicas of four slots, each request holding
    // its slot 10 steps of 10 ms, sustain ~80 req/s together; split, the
    // decode replica alone paces every token (its first step recomputes the
    // last prompt token, then nine more: 10 steps per request), ~40.
    let (table, plan) = plan_of(&mock_shapes(2));
    assert_eq!(shape_axis_of(&plan), ["2xTP1", "1xTP1 + 1xTP1"]);
    let results = run_plan(&table, Path::new("mock.toml"), &plan, &ten_ms_steps);
    let rate = |i: usize| results[i].sizing.expect("feasible").rate_per_replica;
    assert!((76.0..=82.0).contains(&rate(0)), "colocated {}", rate(0));
    assert!((38.0..=41.0).contains(&rate(1)), "split {}", rate(1));
    for r in &results {
        // A replica of a plan of shapes is the whole deployment.
        assert_eq!(r.tp, 2);
        let s = r.sizing.unwrap();
        assert_eq!(s.gpus, 2 * s.replicas);
        assert_eq!(s.verified, Some(true));
    }
    // 100 req/s: two copies of the colocated pair, three of the split.
    assert_eq!(results[0].sizing.unwrap().replicas, 2);
    assert_eq!(results[1].sizing.unwrap().replicas, 3);
    assert_eq!(ranking(&results), [0, 1]);
    let csv = String::from_utf8(plan_csv(&results, &plan).unwrap()).unwrap();
    assert!(
        csv.starts_with("rank,shape,mode,gpu,deployment_gpus,feasible,rate_per_replica,"),
        "{csv}"
    );
    assert!(
        csv.contains(",1xTP1 + 1xTP1,disaggregated,h100-sxm,2,true,"),
        "{csv}"
    );
    let table = plan_table(&results, &plan).to_string();
    assert!(
        table.contains("goodput/GPU") && table.contains("colocated"),
        "{table}"
    );
}

#[test]
fn a_shape_bounded_below_a_sustained_rate_is_pruned_unsimulated() {
    // Three GPUs, two splits: one prefill and two decode replicas, or two
    // and one. The roofline's decode-slot bound of a single decode replica
    // of four slots is below what two decode replicas sustain on the mock
    // server, so the second split is pruned: never simulated.
    let (table, plan) = plan_of(&mock_shapes(3));
    let simulated = Mutex::new(Vec::new());
    let eval = |s: &Scenario, seed: u64| {
        // Prefill and decode replicas (copies of a shape included).
        let p = s.disagg.as_ref().map(|d| d.prefill.deployment.replicas);
        simulated
            .lock()
            .unwrap()
            .push(p.map(|p| (p, s.deployment.replicas)));
        ten_ms_steps(s, seed).map(Some)
    };
    let run = run_plan_stoppable(&table, Path::new("mock.toml"), &plan, &eval);
    assert!(!run.interrupted);
    let r = &run.finished;
    assert_eq!(r.len(), 3);
    let one_two = r[1].sizing.expect("1 + 2 feasible").rate_per_replica;
    let pruned = r[2].pruned.as_ref().expect("2 + 1 pruned");
    assert_eq!(pruned.by.to_string(), "1xTP1 + 2xTP1");
    assert_eq!(pruned.rate, one_two);
    let bound = r[2].bounds.unwrap();
    assert!(pruned.bound == bound.rate() && bound.rate() < one_two);
    assert!(r[2].search.is_none() && r[2].sizing.is_none());
    assert!(
        !simulated
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .any(|&(p, d)| p > d),
        "the pruned split was simulated"
    );
    // Pruned shapes rank last and say why.
    assert_eq!(*ranking(r).last().unwrap(), 2);
    let table = plan_table(r, &plan).to_string();
    assert!(table.contains("pruned: its roofline bound is"), "{table}");
}

#[test]
fn the_bounds_are_the_roofline_arithmetic() {
    // Llama-3.1-70B in FP8 on H100s, 8,192-token prompts, 256-token answers.
    let text = r#"
name = "bounds"
requests = 10
[model]
preset = "llama-3.1-70b"
weight_dtype = "fp8"
[hardware]
gpu = "h100-sxm"
tp = 4
[traffic]
arrival = { kind = "poisson", rate = 1.0 }
prompt = { kind = "fixed", value = 8192 }
output = { kind = "fixed", value = 256 }
[deployment]
mode = "disaggregated"
[deployment.prefill.hardware]
tp = 2
replicas = 3
"#;
    let s = Scenario::from_toml(text, Path::new("b.toml"), &[]).unwrap();
    let b = Bounds::of(&s).unwrap();
    let p = &s.disagg.as_ref().unwrap().prefill.deployment;
    let flops = 2.0 * s.model.active_params as f64 * 8192.0;
    let rate = p.compute_peak() * 2.0 * p.efficiency.mfu;
    assert!((b.prefill - 3.0 / (flops / rate)).abs() < 1e-9 * b.prefill);
    // 255 decode steps holding 8,192 + i tokens of 327,680 B.
    let token_steps = 255.0 * 8192.0 + 255.0 * 256.0 / 2.0;
    let kv = s.budget.kv_bytes as f64 / (327_680.0 * token_steps * b.decode_step_s);
    assert!((b.kv - kv).abs() < 1e-9 * kv, "{} {kv}", b.kv);
    let slots = f64::from(s.scheduler.max_num_seqs) / (255.0 * b.decode_step_s);
    assert!((b.slots - slots).abs() < 1e-9 * slots);
    assert_eq!(b.rate(), b.prefill.min(b.kv).min(b.slots));
    // Shared system prompts: no bound applies.
    let shared = text.replace(
        "output = { kind = \"fixed\", value = 256 }",
        "output = { kind = \"fixed\", value = 256 }\nprefix = { count = 1, tokens = 100 }",
    );
    let s = Scenario::from_toml(&shared, Path::new("b.toml"), &[]).unwrap();
    assert!(Bounds::of(&s).is_none());
}

#[test]
fn a_decode_step_above_the_tpot_objective_is_infeasible_without_a_probe() {
    let text = mock_shapes(2).replace("ttft_p99 = 0.5", "ttft_p99 = 0.5\ntpot_p99 = 0.0001");
    let (table, plan) = plan_of(&text);
    let eval = |_: &Scenario, _: u64| -> Result<Option<Summary>, Error> {
        panic!("no shape should be simulated")
    };
    let run = run_plan_stoppable(&table, Path::new("mock.toml"), &plan, &eval);
    assert_eq!(run.finished.len(), 2);
    for r in &run.finished {
        assert!(r.search.is_none());
        assert!(
            r.error.as_ref().unwrap().contains("above tpot_p99"),
            "{r:?}"
        );
    }
}

#[test]
fn lengths_rescale_with_their_shape() {
    let mut v: toml::Value = toml::Value::Table(
        "kind = \"lognormal\"\nmean = 8192\nsigma = 0.2\nmin = 2048\nmax = 16384\n"
            .parse()
            .unwrap(),
    );
    scale_lengths(&mut v, 0.125).unwrap();
    assert_eq!(v["mean"].as_float(), Some(1024.0));
    assert_eq!(v["sigma"].as_float(), Some(0.2));
    assert_eq!(
        (v["min"].as_integer(), v["max"].as_integer()),
        (Some(256), Some(2048))
    );
    let mut mix: toml::Value = toml::Value::Table(
        "kind = \"mixture\"\ncomponents = [{ weight = 1, dist = { kind = \"fixed\", value = 3 } }]"
            .parse()
            .unwrap(),
    );
    scale_lengths(&mut mix, 0.1).unwrap();
    assert_eq!(mix["components"][0]["dist"]["value"].as_integer(), Some(1));
    let mut file: toml::Value =
        toml::Value::Table("kind = \"empirical\"\npath = \"x.csv\"".parse().unwrap());
    assert!(scale_lengths(&mut file, 2.0).is_err());
    assert!(Ratio::parse("1:0").is_err() && Ratio::parse("8").is_err());
    assert_eq!(Ratio::parse(" 1:8 ").unwrap().value, 0.125);
}

#[test]
fn the_crossover_interpolates_between_the_ratios_that_bracket_it() {
    let (_, plan) = plan_of(&mock_shapes(2));
    let best = |g: f64| {
        Some(crossover::Best {
            shape: Shape::parse("2xTP1").unwrap(),
            rate: 2.0 * g,
            goodput_per_gpu: g,
            floor: false,
        })
    };
    let point = |value: f64, coloc: f64, dis: f64| CrossoverPoint {
        ratio: Ratio {
            label: crossover::ratio_label(value),
            value,
        },
        prompt: 0.0,
        output: 0.0,
        colocated: best(coloc),
        disaggregated: best(dis),
        simulated: 2,
        pruned: 0,
        infeasible: 0,
        probes: 0,
    };
    let run = |points| CrossoverRun {
        plan: plan.clone(),
        crossover: Crossover {
            tokens: 100.0,
            ratios: Vec::new(),
        },
        points,
        interrupted: false,
    };
    // Advantage 0.5 at 1:1, 2 at 4:1: ln(advantage) crosses 0 half-way in
    // ln(ratio), at 2:1.
    let r = run(vec![
        point(0.25, 1.0, 0.2),
        point(1.0, 1.0, 0.5),
        point(4.0, 1.0, 2.0),
        point(16.0, 1.0, 3.0),
    ]);
    assert!((r.crossover_ratio().unwrap() - 2.0).abs() < 1e-12);
    assert_eq!(crossover::ratio_label(2.0), "2:1");
    assert_eq!(crossover::ratio_label(0.125), "1:8");
    // A win only at a smaller ratio is no crossover.
    let r = run(vec![point(1.0, 1.0, 2.0), point(4.0, 1.0, 0.5)]);
    assert_eq!(r.crossover_ratio(), None);
    let fig = crossover::crossover_figure(&run(vec![point(1.0, 1.0, 0.5), point(4.0, 1.0, 2.0)]));
    assert!(
        fig.title.contains("disaggregated wins from ISL:OSL ~2:1"),
        "{}",
        fig.title
    );
}
