//! `kvsim plan --crossover`: goodput per GPU of colocated and disaggregated
//! serving across input/output length ratios.
//!
//! At each ratio `I:O` of `[plan.crossover]` the scenario's prompt and
//! output length distributions are rescaled (every length, bound and mean
//! times one factor each, so their shapes stay) to means `T I / (I + O)`
//! and `T O / (I + O)` for a fixed total `T` of tokens per request (default:
//! the scenario's mean prompt plus mean output); a drawn `max_tokens` scales
//! with the output. Then the plan's shapes (`[plan] disaggregated = true`)
//! are searched as `kvsim plan` searches them, bounds and pruning included,
//! without the target load's sizing and check: the point of each mode is its
//! best shape's sustainable rate over its GPUs. Disaggregation *wins* at a
//! ratio where its best goodput per GPU is higher; the crossover is the
//! ratio from which it wins at every larger ratio, interpolated on the
//! logarithm of the ratio between the last ratio it loses and the first it
//! wins.

use std::path::Path;

use plotters::style::RGBColor;
use rayon::prelude::*;

use super::report_shapes::goodput_per_gpu;
use super::{COLOCATED, CandidateResult, DISAGGREGATED, Evaluate, Plan, Shape, spec_error};
use crate::error::Error;
use crate::report::plot::{Axis, Body, Figure, LegendEntry, Line, PALETTE, Point, Sample, Stroke};
use crate::scenario::Scenario;

/// The ratios `[plan.crossover]` defaults to.
pub const DEFAULT_RATIOS: [&str; 9] = [
    "1:8", "1:4", "1:2", "1:1", "2:1", "4:1", "8:1", "16:1", "32:1",
];

/// One input:output length ratio.
#[derive(Clone, Debug, PartialEq)]
pub struct Ratio {
    /// As written, e.g. `1:8`.
    pub label: String,
    /// Input over output.
    pub value: f64,
}

impl Ratio {
    /// Reads `I:O` (positive numbers).
    pub fn parse(text: &str) -> Result<Ratio, String> {
        let bad = || {
            format!(
                "`{text}` is not an input:output length ratio: write two positive numbers \
                 with a colon, e.g. \"1:8\" or \"32:1\""
            )
        };
        let (i, o) = text.split_once(':').ok_or_else(bad)?;
        let (i, o): (f64, f64) = (
            i.trim().parse().map_err(|_| bad())?,
            o.trim().parse().map_err(|_| bad())?,
        );
        if !(i.is_finite() && o.is_finite() && i > 0.0 && o > 0.0) {
            return Err(bad());
        }
        Ok(Ratio {
            label: text.trim().to_string(),
            value: i / o,
        })
    }
}

/// A validated `[plan.crossover]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Crossover {
    /// Mean prompt plus mean output tokens at every ratio.
    pub tokens: f64,
    /// The ratios, ascending.
    pub ratios: Vec<Ratio>,
}

impl Crossover {
    /// The crossover of scenario table `base` (read from `path`), whose
    /// plan must be one of shapes.
    pub fn from_table(base: &toml::Table, path: &Path) -> Result<Crossover, Error> {
        let scenario = Scenario::from_table(base.clone(), path)?;
        let spec = scenario
            .spec
            .plan
            .as_ref()
            .and_then(|p| p.crossover.clone())
            .unwrap_or_default();
        let (prompt, output) = scenario.traffic.mean_lengths();
        let tokens = spec.tokens.unwrap_or(prompt + output);
        if !(tokens.is_finite() && (2.0..=1e7).contains(&tokens)) {
            return Err(spec_error(
                path,
                "plan.crossover.tokens",
                format!("must be a token count in [2, 1e7], got {tokens}"),
            ));
        }
        let texts: Vec<String> = spec
            .ratios
            .unwrap_or_else(|| DEFAULT_RATIOS.iter().map(|s| s.to_string()).collect());
        if texts.is_empty() {
            return Err(spec_error(
                path,
                "plan.crossover.ratios",
                "must list at least one ratio, e.g. [\"1:8\", \"32:1\"]",
            ));
        }
        let mut ratios = Vec::with_capacity(texts.len());
        for t in &texts {
            ratios.push(Ratio::parse(t).map_err(|r| spec_error(path, "plan.crossover.ratios", r))?);
        }
        ratios.sort_by(|a, b| a.value.total_cmp(&b.value));
        ratios.dedup_by(|a, b| a.value == b.value);
        Ok(Crossover { tokens, ratios })
    }
}

/// Multiplies every length of length distribution `v` (a `traffic.prompt`,
/// `output` or `max_tokens` table) by `factor`: `value`, `min`, `max`,
/// `mean` and `std`, through mixtures' components; lengths stay whole and
/// at least 1.
pub fn scale_lengths(v: &mut toml::Value, factor: f64) -> Result<(), String> {
    let toml::Value::Table(t) = v else {
        return Err("is not a length distribution table".into());
    };
    let kind = t
        .get("kind")
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_string();
    match kind.as_str() {
        "fixed" | "uniform" | "normal" | "lognormal" => {
            for key in ["value", "min", "max"] {
                if let Some(x) = t.get_mut(key) {
                    let n = x.as_integer().map(|i| i as f64).or_else(|| x.as_float());
                    if let Some(n) = n {
                        *x = toml::Value::Integer((n * factor).round().max(1.0) as i64);
                    }
                }
            }
            for key in ["mean", "std"] {
                if let Some(x) = t.get_mut(key) {
                    let n = x.as_integer().map(|i| i as f64).or_else(|| x.as_float());
                    if let Some(n) = n {
                        *x = toml::Value::Float(n * factor);
                    }
                }
            }
            Ok(())
        }
        "mixture" => match t.get_mut("components") {
            Some(toml::Value::Array(parts)) => {
                for part in parts {
                    match part.get_mut("dist") {
                        Some(d) => scale_lengths(d, factor)?,
                        None => return Err("a mixture component has no `dist`".into()),
                    }
                }
                Ok(())
            }
            _ => Err("a mixture without `components`".into()),
        },
        other => Err(format!(
            "a `{other}` length distribution cannot be rescaled to other means: use fixed, \
             uniform, normal, lognormal or a mixture of them"
        )),
    }
}

/// The best shape of one mode at one ratio.
#[derive(Clone, Debug, PartialEq)]
pub struct Best {
    /// Its shape.
    pub shape: Shape,
    /// Requests per second the deployment sustains.
    pub rate: f64,
    /// `rate` over its GPUs.
    pub goodput_per_gpu: f64,
    /// Whether the rate is only a floor (it passed at `plan.max_rate`).
    pub floor: bool,
}

/// One ratio's outcome.
#[derive(Clone, Debug)]
pub struct CrossoverPoint {
    /// The ratio.
    pub ratio: Ratio,
    /// Mean prompt and output tokens there (after rescaling).
    pub prompt: f64,
    /// See `prompt`.
    pub output: f64,
    /// The best colocated shape (`None`: none is feasible).
    pub colocated: Option<Best>,
    /// The best disaggregated shape.
    pub disaggregated: Option<Best>,
    /// Shapes simulated, pruned and infeasible without a probe, and probes.
    pub simulated: usize,
    /// See `simulated`.
    pub pruned: usize,
    /// See `simulated`.
    pub infeasible: usize,
    /// See `simulated`.
    pub probes: u32,
}

impl CrossoverPoint {
    /// Disaggregated over colocated goodput per GPU (`None` unless both
    /// modes are feasible).
    pub fn advantage(&self) -> Option<f64> {
        Some(
            self.disaggregated.as_ref()?.goodput_per_gpu / self.colocated.as_ref()?.goodput_per_gpu,
        )
    }
}

/// What [`run_crossover`] found.
#[derive(Clone, Debug)]
pub struct CrossoverRun {
    /// The plan at the scenario's own lengths (for its objectives and GPUs).
    pub plan: Plan,
    /// The study.
    pub crossover: Crossover,
    /// One point per ratio, ascending.
    pub points: Vec<CrossoverPoint>,
    /// Whether a simulation was stopped (Ctrl-C): the points are then
    /// incomplete and not to be written.
    pub interrupted: bool,
}

impl CrossoverRun {
    /// The ratio (input over output) from which disaggregation wins at every
    /// larger ratio, interpolated between the last ratio where colocated
    /// serving does at least as well and the first where disaggregation
    /// does better; the smallest ratio when it wins everywhere; `None` when
    /// it does not win at the largest ratio (or a mode is infeasible there).
    pub fn crossover_ratio(&self) -> Option<f64> {
        let adv: Vec<Option<f64>> = self.points.iter().map(CrossoverPoint::advantage).collect();
        let last = self.points.len().checked_sub(1)?;
        if !adv[last].is_some_and(|a| a > 1.0) {
            return None;
        }
        let mut first = last;
        while first > 0 && adv[first - 1].is_some_and(|a| a > 1.0) {
            first -= 1;
        }
        if first == 0 {
            return Some(self.points[0].ratio.value);
        }
        let (lo, hi) = (&self.points[first - 1], &self.points[first]);
        let (x0, x1) = (lo.ratio.value.ln(), hi.ratio.value.ln());
        match adv[first - 1] {
            Some(a0) => {
                // ln(advantage) linear in ln(ratio), through 0.
                let (y0, y1) = (a0.ln(), adv[first].unwrap_or(1.0).ln());
                let x = if y1 > y0 {
                    x0 + (x1 - x0) * (-y0 / (y1 - y0))
                } else {
                    x1
                };
                Some(x.clamp(x0, x1).exp())
            }
            None => Some(hi.ratio.value),
        }
    }
}

/// The best feasible shape of `mode` among `results`.
fn best_of(results: &[CandidateResult], mode: &str) -> Option<Best> {
    results
        .iter()
        .filter(|r| r.shape.is_some_and(|s| s.mode() == mode))
        .filter_map(|r| {
            let search = r.search.as_ref()?;
            let best = search.best.as_ref()?;
            Some((
                Best {
                    shape: r.shape?,
                    rate: best.rate,
                    goodput_per_gpu: goodput_per_gpu(r)?,
                    floor: search.is_floor(),
                },
                best.excess,
            ))
        })
        // Between equals, the one with more headroom at its rate (as the
        // plan ranks them), then the first in grid order.
        .rev()
        .max_by(|a, b| {
            a.0.goodput_per_gpu
                .total_cmp(&b.0.goodput_per_gpu)
                .then(b.1.total_cmp(&a.1))
        })
        .map(|(best, _)| best)
}

/// Scenario table `base` with its prompt and output lengths rescaled to
/// means `prompt` and `output` (from the current `means`).
fn at_lengths(
    base: &toml::Table,
    path: &Path,
    means: (f64, f64),
    prompt: f64,
    output: f64,
) -> Result<toml::Table, Error> {
    let mut table = base.clone();
    let traffic = match table.get_mut("traffic") {
        Some(toml::Value::Table(t)) => t,
        _ => return Err(spec_error(path, "traffic", "missing")),
    };
    for (key, factor) in [
        ("prompt", prompt / means.0),
        ("output", output / means.1),
        ("max_tokens", output / means.1),
    ] {
        if let Some(v) = traffic.get_mut(key) {
            scale_lengths(v, factor).map_err(|reason| {
                spec_error(
                    path,
                    &format!("traffic.{key}"),
                    format!("--crossover rescales it: {reason}"),
                )
            })?;
        } else if key != "max_tokens" {
            return Err(spec_error(
                path,
                &format!("traffic.{key}"),
                "--crossover rescales the prompt and output distributions: give both",
            ));
        }
    }
    Ok(table)
}

/// Runs the crossover study of scenario table `base` (`slo_override`:
/// `--slo`), with `evaluate` running one probe replicate.
pub fn run_crossover(
    base: &toml::Table,
    path: &Path,
    slo_override: Option<&str>,
    evaluate: &Evaluate<'_>,
) -> Result<CrossoverRun, Error> {
    let plan = Plan::from_table(base, path, slo_override)?;
    if !plan.by_shape {
        return Err(spec_error(
            path,
            "plan.disaggregated",
            "--crossover compares colocated and disaggregated deployments: set \
             `plan.disaggregated = true` (or give a `shape` axis in [plan.candidates])",
        ));
    }
    let crossover = Crossover::from_table(base, path)?;
    let scenario = Scenario::from_table(base.clone(), path)?;
    let means = scenario.traffic.mean_lengths();
    // Every ratio's plan is built (and validated) before any probe runs.
    let mut tables = Vec::with_capacity(crossover.ratios.len());
    for ratio in &crossover.ratios {
        let prompt = crossover.tokens * ratio.value / (1.0 + ratio.value);
        let output = crossover.tokens - prompt;
        let table = at_lengths(base, path, means, prompt, output)?;
        let p = Plan::from_table(&table, path, slo_override)?;
        let realised = Scenario::from_table(table.clone(), path)?
            .traffic
            .mean_lengths();
        tables.push((table, p, realised));
    }
    let runs: Vec<_> = tables
        .par_iter()
        .map(|(table, p, _)| super::disagg::run_shapes(table, path, p, evaluate, false))
        .collect();
    let interrupted = runs.iter().any(|r| r.interrupted);
    let points = crossover
        .ratios
        .iter()
        .zip(tables.iter().zip(runs))
        .map(|(ratio, ((_, _, realised), run))| {
            let r = &run.finished;
            CrossoverPoint {
                ratio: ratio.clone(),
                prompt: realised.0,
                output: realised.1,
                colocated: best_of(r, COLOCATED),
                disaggregated: best_of(r, DISAGGREGATED),
                simulated: r.iter().filter(|c| c.search.is_some()).count(),
                pruned: r.iter().filter(|c| c.pruned.is_some()).count(),
                infeasible: r
                    .iter()
                    .filter(|c| c.search.is_none() && c.pruned.is_none())
                    .count(),
                probes: r
                    .iter()
                    .filter_map(|c| c.search.as_ref().map(|s| s.probes))
                    .sum(),
            }
        })
        .collect();
    Ok(CrossoverRun {
        plan,
        crossover,
        points,
        interrupted,
    })
}

fn fmt_best(b: &Option<Best>) -> (String, String) {
    match b {
        Some(b) => (
            b.shape.to_string(),
            format!(
                "{}{:.3}",
                if b.floor { ">= " } else { "" },
                b.goodput_per_gpu
            ),
        ),
        None => ("none feasible".into(), "-".into()),
    }
}

/// The crossover's table: one row per ratio.
pub fn crossover_table(run: &CrossoverRun) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "ISL:OSL",
        "prompt",
        "output",
        "best colocated",
        "goodput/GPU",
        "best disaggregated",
        "goodput/GPU",
        "disagg / coloc",
        "shapes sim / pruned",
    ]);
    for p in &run.points {
        let (cs, cg) = fmt_best(&p.colocated);
        let (ds, dg) = fmt_best(&p.disaggregated);
        t.add_row(vec![
            p.ratio.label.clone(),
            format!("{:.0}", p.prompt),
            format!("{:.0}", p.output),
            cs,
            cg,
            ds,
            dg,
            p.advantage().map_or("-".into(), |a| format!("{a:.2}")),
            format!("{} / {}", p.simulated, p.pruned),
        ]);
    }
    t
}

/// `crossover.csv`: one row per ratio.
pub fn crossover_csv(run: &CrossoverRun) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "ratio",
        "isl_over_osl",
        "prompt_mean",
        "output_mean",
        "colocated_shape",
        "colocated_rate",
        "colocated_goodput_per_gpu",
        "disaggregated_shape",
        "disaggregated_rate",
        "disaggregated_goodput_per_gpu",
        "disaggregated_over_colocated",
        "shapes_simulated",
        "shapes_pruned",
        "shapes_infeasible",
        "probes",
    ])?;
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    for p in &run.points {
        let c = p.colocated.as_ref();
        let d = p.disaggregated.as_ref();
        w.write_record([
            p.ratio.label.clone(),
            format!("{}", p.ratio.value),
            format!("{}", p.prompt),
            format!("{}", p.output),
            c.map(|b| b.shape.to_string()).unwrap_or_default(),
            opt(c.map(|b| b.rate)),
            opt(c.map(|b| b.goodput_per_gpu)),
            d.map(|b| b.shape.to_string()).unwrap_or_default(),
            opt(d.map(|b| b.rate)),
            opt(d.map(|b| b.goodput_per_gpu)),
            opt(p.advantage()),
            p.simulated.to_string(),
            p.pruned.to_string(),
            p.infeasible.to_string(),
            p.probes.to_string(),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// `ratio` (input over output) as `I:O`, to one decimal where needed.
pub fn ratio_label(ratio: f64) -> String {
    let short = |x: f64| {
        if (x - x.round()).abs() < 0.05 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    if ratio >= 1.0 {
        format!("{}:1", short(ratio))
    } else {
        format!("1:{}", short(1.0 / ratio))
    }
}

/// The crossover chart: goodput per GPU of the best colocated and the best
/// disaggregated shape at each ratio.
pub fn crossover_figure(run: &CrossoverRun) -> Figure {
    let names: Vec<String> = run.points.iter().map(|p| p.ratio.label.clone()).collect();
    let series = |mode: fn(&CrossoverPoint) -> Option<&Best>| -> Vec<Point> {
        run.points
            .iter()
            .enumerate()
            .map(|(i, p)| Point {
                x: i as f64,
                y: mode(p).map(|b| b.goodput_per_gpu),
                err: None,
            })
            .collect()
    };
    let colocated = series(|p| p.colocated.as_ref());
    let disaggregated = series(|p| p.disaggregated.as_ref());
    let ys: Vec<f64> = colocated
        .iter()
        .chain(&disaggregated)
        .filter_map(|p| p.y)
        .collect();
    let (blue, orange): (RGBColor, RGBColor) = (PALETTE[0], PALETTE[1]);
    let lines = vec![
        Line {
            color: blue,
            stroke: Stroke::Solid,
            width: 3,
            markers: true,
            points: colocated,
        },
        Line {
            color: orange,
            stroke: Stroke::Dashed,
            width: 3,
            markers: true,
            points: disaggregated,
        },
    ];
    let gpus = run
        .plan
        .gpus
        .map_or(String::new(), |g| format!("{g} GPUs, "));
    let o = &run.plan.objectives;
    let verdict = match run.crossover_ratio() {
        Some(r) if run.points.first().is_some_and(|p| p.ratio.value >= r) => {
            "disaggregated wins at every ratio".to_string()
        }
        Some(r) => format!("disaggregated wins from ISL:OSL ~{}", ratio_label(r)),
        None => "colocated wins at the largest ratio".to_string(),
    };
    Figure {
        title: format!("Goodput per GPU: {verdict}"),
        subtitle: Some(format!(
            "best shape of each mode; {gpus}{:.0} tokens per request; {}",
            run.crossover.tokens,
            o.describe()
                .into_iter()
                .filter(|d| !d.starts_with("oom_rate"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        x_title: "input:output length ratio (ISL:OSL)".into(),
        y_title: "goodput per GPU (req/s)".into(),
        x: Axis::categories(names),
        y: Axis::auto(&ys, true),
        body: Body::Lines(lines),
        references: Vec::new(),
        legend_title: Some("mode (best shape)".into()),
        legend: vec![
            LegendEntry {
                label: COLOCATED.into(),
                color: blue,
                sample: Sample::Solid,
            },
            LegendEntry {
                label: DISAGGREGATED.into(),
                color: orange,
                sample: Sample::Dashed,
            },
        ],
    }
}
