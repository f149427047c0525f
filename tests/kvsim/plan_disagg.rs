//! `kvsim plan` over prefill/decode splits (issue 18): the two bundled 70B
//! scenarios, where the plan prefers disaggregation (long prompts) and
//! colocation (short prompts), and the crossover between them. Every number
//! the scenarios' comments, README.md and docs/ARCHITECTURE.md quote about
//! them is checked here.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use kvsim::plan::{CandidateResult, Plan, ranking, roofline_run, run_plan};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"))
}

/// The plan of bundled scenario `name` (with `slo` over its `[slo]`), run as
/// `kvsim plan` runs it, and its candidates.
fn planned(name: &str, slo: Option<&str>) -> (Plan, Vec<CandidateResult>) {
    let path = scenario(name);
    let table = kvsim::scenario::read_table(&path).unwrap();
    let plan = Plan::from_table(&table, &path, slo).unwrap();
    let results = run_plan(&table, &path, &plan, &roofline_run);
    (plan, results)
}

/// A feasible candidate as the plan's table prints it: shape, rate of the
/// deployment, goodput per GPU, copies for the target, $/hour.
#[derive(Debug, PartialEq)]
struct Row {
    shape: String,
    mode: &'static str,
    rate: String,
    per_gpu: String,
    copies: u64,
    usd: String,
}

fn row(r: &CandidateResult) -> Row {
    let shape = r.shape.expect("a plan of shapes");
    let s = r.sizing.expect("feasible");
    Row {
        shape: shape.to_string(),
        mode: shape.mode(),
        rate: format!("{:.2}", s.rate_per_replica),
        per_gpu: format!("{:.3}", s.rate_per_replica / shape.gpus() as f64),
        copies: s.replicas,
        usd: format!("{:.2}", s.usd_per_hour.unwrap()),
    }
}

/// The ranked feasible rows, and the first (best) of each mode.
fn ranked(results: &[CandidateResult]) -> Vec<Row> {
    ranking(results)
        .into_iter()
        .filter(|&i| results[i].sizing.is_some())
        .map(|i| row(&results[i]))
        .collect()
}

fn first_of<'a>(rows: &'a [Row], mode: &str) -> &'a Row {
    rows.iter().find(|r| r.mode == mode).unwrap()
}

/// Long prompts, short answers: the plan ranks the 2xTP2 + 1xTP4 split
/// first (the shape of Dynamo's single-node recipe), ahead of every
/// colocated shape of the same 8 GPUs, and it is cheaper for the target.
#[test]
fn the_long_prompt_plan_prefers_disaggregation() {
    let (plan, results) = planned("disagg-70b-long-prompts", None);
    assert_eq!(plan.gpus, Some(8));
    assert_eq!(results.len(), 9, "3 colocated and 6 split shapes");
    let rows = ranked(&results);
    let best = &rows[0];
    assert_eq!(best.mode, "disaggregated");
    assert_eq!(
        *best,
        Row {
            shape: "2xTP2 + 1xTP4".into(),
            mode: "disaggregated",
            rate: "1.37".into(),
            per_gpu: "0.172".into(),
            copies: 3,
            usd: "95.76".into(),
        }
    );
    let coloc = first_of(&rows, "colocated");
    assert_eq!(
        (&coloc.rate, &coloc.per_gpu, coloc.copies, &coloc.usd),
        (
            &"1.01".to_string(),
            &"0.126".to_string(),
            4,
            &"127.68".to_string()
        )
    );
    // Every sized deployment met the objectives when simulated whole.
    assert!(
        results
            .iter()
            .filter_map(|r| r.sizing)
            .all(|s| s.verified == Some(true))
    );
}

/// Short prompts, long answers: colocated 2xTP4 first; the best split
/// sustains about half as much and needs more copies.
#[test]
fn the_short_prompt_plan_prefers_colocation() {
    let (_, results) = planned("disagg-70b-short-prompts", None);
    let rows = ranked(&results);
    assert_eq!(
        rows[0],
        Row {
            shape: "2xTP4".into(),
            mode: "colocated",
            rate: "7.25".into(),
            per_gpu: "0.906".into(),
            copies: 3,
            usd: "95.76".into(),
        }
    );
    let split = first_of(&rows, "disaggregated");
    assert_eq!(
        (&split.rate, &split.per_gpu, split.copies, &split.usd),
        (
            &"3.96".to_string(),
            &"0.495".to_string(),
            5,
            &"159.60".to_string()
        )
    );
}

/// With a 50 ms TPOT objective the long-prompt scenario's two modes tie
/// within the search's 5 % precision: the tight TPOT is what makes the
/// split pay.
#[test]
fn at_50_ms_tpot_the_long_prompt_plan_is_a_tie() {
    let (_, results) = planned("disagg-70b-long-prompts", Some("tpot_p99=0.05"));
    let rows = ranked(&results);
    let coloc = first_of(&rows, "colocated");
    let split = first_of(&rows, "disaggregated");
    assert_eq!(
        (coloc.shape.as_str(), coloc.rate.as_str()),
        ("2xTP4", "2.05")
    );
    assert_eq!(
        (split.shape.as_str(), split.rate.as_str()),
        ("3xTP2 + 1xTP2", "2.00")
    );
    let ratio: f64 = split.rate.parse::<f64>().unwrap() / coloc.rate.parse::<f64>().unwrap();
    assert!((ratio - 1.0).abs() < 0.05, "{ratio}");
}

/// `kvsim plan --crossover` writes the chart and crossover.csv; at the
/// smallest ratio (1:8) colocated serving has the higher goodput per GPU,
/// at the largest (32:1) disaggregated serving. (The ratios between run in
/// `the_crossover_lies_between_4_1_and_8_1` and in the README's command.)
#[test]
fn the_crossover_chart_is_written_and_the_modes_cross() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("kvsim")
        .unwrap()
        .args(["plan"])
        .arg(scenario("disagg-70b-long-prompts"))
        .args([
            "--crossover",
            "--set",
            "plan.crossover.ratios=[\"1:8\", \"32:1\"]",
            "--out",
        ])
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("crossover: disaggregation wins from"),
        "{stdout}"
    );
    let png = std::fs::read(dir.path().join("x/crossover.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let csv = std::fs::read_to_string(dir.path().join("x/crossover.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    let num = |r: &csv::StringRecord, name: &str| r[col(name)].parse::<f64>().unwrap();
    let (low, high) = (&records[0], &records[1]);
    assert_eq!((&low[col("ratio")], &high[col("ratio")]), ("1:8", "32:1"));
    // 939 tokens in and 7,509 out at 1:8; 8,192 and 256 at 32:1.
    assert_eq!(format!("{:.0}", num(low, "prompt_mean")), "939");
    assert_eq!(format!("{:.0}", num(low, "output_mean")), "7509");
    assert_eq!(format!("{:.0}", num(high, "prompt_mean")), "8192");
    let at = |r: &csv::StringRecord| {
        (
            format!("{:.3}", num(r, "colocated_goodput_per_gpu")),
            format!("{:.3}", num(r, "disaggregated_goodput_per_gpu")),
            format!("{:.2}", num(r, "disaggregated_over_colocated")),
        )
    };
    assert!(num(low, "disaggregated_over_colocated") < 1.0);
    assert!(num(high, "disaggregated_over_colocated") > 1.0);
    assert_eq!(at(low), ("0.098".into(), "0.039".into(), "0.40".into()));
    assert_eq!(at(high), ("0.126".into(), "0.172".into(), "1.36".into()));
}

/// Between 4:1 (colocated still ahead) and 8:1 (the split ahead) the
/// advantage crosses 1 at ISL:OSL ~6.3:1.
#[test]
fn the_crossover_lies_between_4_1_and_8_1() {
    let path = scenario("disagg-70b-long-prompts");
    let mut table = kvsim::scenario::read_table(&path).unwrap();
    kvsim::scenario::apply_override(
        &mut table,
        "plan.crossover.ratios",
        toml::Value::Array(vec!["4:1".into(), "8:1".into()]),
    )
    .unwrap();
    let evaluate = |s: &kvsim::scenario::Scenario, seed: u64| roofline_run(s, seed).map(Some);
    let run = kvsim::plan::crossover::run_crossover(&table, &path, None, &evaluate).unwrap();
    let adv: Vec<f64> = run.points.iter().map(|p| p.advantage().unwrap()).collect();
    assert!(adv[0] < 1.0 && adv[1] > 1.0, "{adv:?}");
    let r = run.crossover_ratio().unwrap();
    assert_eq!(kvsim::plan::crossover::ratio_label(r), "6.3:1", "{r}");
    assert_eq!(format!("{:.2}", adv[0]), "0.72");
    assert_eq!(format!("{:.2}", adv[1]), "1.19");
}

/// `--crossover` compares the two modes: a plan without shapes is refused
/// (exit 2) naming the key to set, before anything is written.
#[test]
fn a_crossover_needs_a_disaggregated_plan() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("kvsim")
        .unwrap()
        .args(["plan"])
        .arg(scenario("plan-llama70b"))
        .args(["--crossover", "--out"])
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`plan.disaggregated`"), "{err}");
    assert!(!dir.path().join("x").exists());
}
