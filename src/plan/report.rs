//! What `kvsim plan` prints and writes: the ranked table, `plan.csv` and the
//! cost-against-capacity chart with its Pareto front.

use plotters::style::RGBColor;

use super::{CandidateResult, Plan, Probe, pareto_front, ranking};
use crate::metrics::Summary;
use crate::report::plot::{Axis, Body, Figure, LegendEntry, Line, PALETTE, Point, Sample, Stroke};
use crate::sweep::cell_of;

/// The worst value of an optional latency over a probe's replicates.
pub(super) fn worst(runs: &[Summary], f: impl Fn(&Summary) -> Option<f64>) -> Option<f64> {
    runs.iter()
        .map(f)
        .try_fold(0.0_f64, |a, v| v.map(|v| a.max(v)))
}

/// The metrics a row shows at the sustainable rate (worst replicate for the
/// objectives, mean for the batch).
pub(super) struct AtRate {
    pub ttft_p99: Option<f64>,
    pub tpot_p99: Option<f64>,
    pub e2e_p99: Option<f64>,
    pub oom_rate: f64,
    pub batch_mean: f64,
}

pub(super) fn at_rate(p: &Probe) -> AtRate {
    let n = p.runs.len().max(1) as f64;
    AtRate {
        ttft_p99: worst(&p.runs, |m| m.ttft_p99),
        tpot_p99: worst(&p.runs, |m| m.tpot_p99),
        e2e_p99: worst(&p.runs, |m| m.e2e_p99),
        oom_rate: p.runs.iter().map(|m| m.oom_rate).fold(0.0, f64::max),
        batch_mean: p.runs.iter().map(|m| m.batch_mean).sum::<f64>() / n,
    }
}

/// A candidate's axis values, `key=value` joined.
fn label(r: &CandidateResult) -> String {
    if r.assignments.is_empty() {
        return "(the scenario)".into();
    }
    r.assignments
        .iter()
        .map(|(k, v)| format!("{}={}", k.rsplit('.').next().unwrap_or(k), cell_of(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any candidate has KV tiers, so the cost splits into GPUs and
/// tiers (a plan without tiers prints and writes what it always did).
fn tiers_priced(results: &[CandidateResult]) -> bool {
    results.iter().any(|r| r.tier_cost.is_some())
}

/// The KV tiers, router and mode of a candidate as a chart's legend says
/// them, from its `host_gb`, `ssd_gb`, `router` and `shape` assignments
/// (`key`, cell text; other keys are left out): `host 64 GB, no ssd tier,
/// kv-aware`, `disaggregated`. Empty when it has none of them.
pub fn series_detail<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let size = |tier: &str, gb: &str| match gb.parse::<f64>() {
        Ok(0.0) => format!("no {tier} tier"),
        _ => format!("{tier} {gb} GB"),
    };
    pairs
        .into_iter()
        .filter_map(|(key, cell)| match key {
            super::HOST_GB => Some(size("host", cell)),
            super::SSD_GB => Some(size("ssd", cell)),
            super::ROUTER => Some(cell.to_string()),
            super::SHAPE => super::Shape::parse(cell).ok().map(|s| s.mode().to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`series_detail`] of a candidate's assignments.
fn detail_of(r: &CandidateResult) -> String {
    let cells: Vec<(&str, String)> = r
        .assignments
        .iter()
        .map(|(k, v)| (k.as_str(), cell_of(v)))
        .collect();
    series_detail(cells.iter().map(|(k, v)| (*k, v.as_str())))
}

/// Why a candidate is not feasible, in words.
pub(super) fn why_not(r: &CandidateResult, plan: &Plan) -> String {
    if let Some(e) = &r.error {
        return e.clone();
    }
    match r.search.as_ref().and_then(|s| s.nearest_miss.as_ref()) {
        Some(p) if p.unsteady => format!(
            "a probe at {} req/s would need over {:.0e} arrivals to reach a steady state",
            fmt_rate(p.rate),
            super::MAX_PROBE_ARRIVALS
        ),
        Some(p) if p.worst == "oom_rate" && plan.objectives.oom_rate == 0.0 => format!(
            "oom_rate {:.1} % (limit 0) even at {} req/s",
            (p.excess - 1.0) * 100.0,
            fmt_rate(p.rate)
        ),
        Some(p) => format!(
            "{} at {:.0} % of its limit even at {} req/s",
            p.worst,
            p.excess * 100.0,
            fmt_rate(p.rate)
        ),
        None => format!(
            "no rate down to {} req/s met the objectives",
            fmt_rate(plan.search.min_rate)
        ),
    }
}

pub(super) fn fmt_rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 1.0 {
        format!("{r:.2}")
    } else if r >= 0.01 {
        format!("{r:.3}")
    } else {
        format!("{r:.1e}")
    }
}

/// The ranked table printed by `kvsim plan`.
pub fn plan_table(results: &[CandidateResult], plan: &Plan) -> comfy_table::Table {
    if plan.by_shape {
        return super::report_shapes::shape_table(results, plan);
    }
    let front = pareto_front(results);
    let split = tiers_priced(results);
    // The cost of the KV tiers, within $/hour, when any candidate has them.
    let with_tiers = |mut row: Vec<String>, tiers: String| {
        if split {
            row.insert(7, tiers);
        }
        row
    };
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(with_tiers(
        [
            "#",
            "candidate",
            "gpu x tp",
            "req/s per replica",
            "replicas",
            "GPUs",
            "$/hour",
            "$/M out tok",
            "ttft p99",
            "tpot p99",
            "batch",
            "cluster sim",
            "",
        ]
        .map(String::from)
        .to_vec(),
        "of which tiers".into(),
    ));
    for (rank, &i) in ranking(results).iter().enumerate() {
        let r = &results[i];
        let gpu = if r.gpu.is_empty() {
            "-".to_string()
        } else {
            format!("{} x {}", r.gpu, r.tp)
        };
        match (&r.sizing, r.search.as_ref().and_then(|s| s.best.as_ref())) {
            (Some(s), Some(best)) => {
                let m = at_rate(best);
                let capped = r.search.as_ref().is_some_and(|s| s.is_floor());
                let row = vec![
                    format!("{}", rank + 1),
                    label(r),
                    gpu,
                    format!(
                        "{}{}",
                        if capped { ">= " } else { "" },
                        fmt_rate(s.rate_per_replica)
                    ),
                    s.replicas.to_string(),
                    s.gpus.to_string(),
                    s.usd_per_hour
                        .map_or("no price".into(), |u| format!("{u:.2}")),
                    s.usd_per_m_output_tokens
                        .map_or("-".into(), |u| format!("{u:.3}")),
                    m.ttft_p99.map_or("-".into(), |v| format!("{v:.3} s")),
                    m.tpot_p99
                        .map_or("-".into(), |v| format!("{:.1} ms", v * 1e3)),
                    format!("{:.1}", m.batch_mean),
                    match s.verified {
                        Some(true) => "meets SLOs".into(),
                        Some(false) => "MISSES SLOs".into(),
                        None => "not run".into(),
                    },
                    if front[i] {
                        "pareto".into()
                    } else {
                        String::new()
                    },
                ];
                t.add_row(with_tiers(row, format!("{:.2}", s.usd_per_hour_tiers)));
            }
            _ => {
                let row = vec![
                    "-".into(),
                    label(r),
                    gpu,
                    "infeasible".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    why_not(r, plan),
                ];
                t.add_row(with_tiers(row, "-".into()));
            }
        }
    }
    t
}

/// `plan.csv`: one row per candidate in rank order, axis columns first.
pub fn plan_csv(results: &[CandidateResult], plan: &Plan) -> Result<Vec<u8>, csv::Error> {
    if plan.by_shape {
        return super::report_shapes::shape_csv(results, plan);
    }
    let front = pareto_front(results);
    let split = tiers_priced(results);
    let keys: Vec<String> = plan.candidates.axes.iter().map(|a| a.key.clone()).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["rank".into()];
    header.extend(keys.iter().cloned());
    // The cost split into GPUs and KV tiers when any candidate has tiers.
    let split_columns: &[&str] = if split {
        &["usd_per_hour_gpus", "usd_per_hour_tiers"]
    } else {
        &[]
    };
    header.extend(
        [
            "gpu",
            "tp",
            "feasible",
            "rate_per_replica",
            "rate_is_floor",
            "target_rate",
            "replicas",
            "gpus",
            "usd_per_gpu_hour",
            "usd_per_hour",
        ]
        .map(String::from),
    );
    header.extend(split_columns.iter().map(|c| c.to_string()));
    header.extend(
        [
            "usd_per_m_output_tokens",
            "output_tokens_per_request",
            "ttft_p99",
            "tpot_p99",
            "e2e_p99",
            "oom_rate",
            "batch_mean",
            "pareto",
            "cluster_verified",
            "probes",
            "note",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    for (rank, &i) in ranking(results).iter().enumerate() {
        let r = &results[i];
        let mut row: Vec<String> = Vec::with_capacity(header.len());
        let feasible = r.sizing.is_some();
        row.push(if feasible {
            (rank + 1).to_string()
        } else {
            String::new()
        });
        for (_, v) in &r.assignments {
            row.push(cell_of(v));
        }
        row.push(r.gpu.clone());
        row.push(r.tp.to_string());
        row.push(feasible.to_string());
        let search = r.search.as_ref();
        let best = search.and_then(|s| s.best.as_ref());
        match (&r.sizing, best) {
            (Some(s), Some(b)) => {
                let m = at_rate(b);
                row.extend([
                    format!("{}", s.rate_per_replica),
                    search.is_some_and(|s| s.is_floor()).to_string(),
                    format!("{}", plan.target_rate),
                    s.replicas.to_string(),
                    s.gpus.to_string(),
                    opt(r.price_per_gpu_hour),
                    opt(s.usd_per_hour),
                ]);
                if split {
                    row.push(opt(r.price_per_gpu_hour.map(|p| p * s.gpus as f64)));
                    row.push(format!("{}", s.usd_per_hour_tiers));
                }
                row.extend([
                    opt(s.usd_per_m_output_tokens),
                    format!("{}", s.output_tokens_per_request),
                    opt(m.ttft_p99),
                    opt(m.tpot_p99),
                    opt(m.e2e_p99),
                    format!("{}", m.oom_rate),
                    format!("{}", m.batch_mean),
                    front[i].to_string(),
                    s.verified.map(|v| v.to_string()).unwrap_or_default(),
                    search.map_or(0, |s| s.probes).to_string(),
                    String::new(),
                ]);
            }
            _ => {
                row.extend(std::iter::repeat_n(String::new(), 2));
                row.push(format!("{}", plan.target_rate));
                row.extend(std::iter::repeat_n(String::new(), 2));
                row.push(opt(r.price_per_gpu_hour));
                row.extend(std::iter::repeat_n(String::new(), 8 + split_columns.len()));
                row.push("false".into());
                row.push(String::new());
                row.push(search.map_or(0, |s| s.probes).to_string());
                row.push(why_not(r, plan));
            }
        }
        w.write_record(&row)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Cost (dollars per million output tokens) against capacity (sustainable
/// requests per second per replica), one marker series per GPU type (and per
/// KV tiers and router, where the candidates vary them), the Pareto front drawn as a line through its candidates. `None` when fewer
/// than one priced feasible candidate exists.
pub fn plan_figure(results: &[CandidateResult], plan: &Plan) -> Option<Figure> {
    let front = pareto_front(results);
    let points: Vec<CostPoint> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.sizing.and_then(|s| {
                s.usd_per_m_output_tokens.map(|c| CostPoint {
                    gpu: r.gpu.clone(),
                    detail: detail_of(r),
                    rate: s.rate_per_replica,
                    cost: c,
                    pareto: front[i],
                })
            })
        })
        .collect();
    let mut fig = cost_figure(&points, plan.target_rate)?;
    if plan.by_shape {
        // A replica of a plan of shapes is a whole deployment.
        fig.x_title = "sustainable rate per deployment (req/s)".into();
        fig.legend_title = Some("GPU, mode".into());
    }
    Some(fig)
}

/// A priced feasible candidate on the cost-against-capacity chart.
#[derive(Clone, Debug, PartialEq)]
pub struct CostPoint {
    /// Catalog name of its GPU (one marker series per GPU and `detail`).
    pub gpu: String,
    /// Its KV tiers and router where the candidates vary them
    /// ([`series_detail`]; empty otherwise).
    pub detail: String,
    /// Sustainable requests per second per replica.
    pub rate: f64,
    /// USD per million output tokens at the target load.
    pub cost: f64,
    /// Whether it is on the Pareto front.
    pub pareto: bool,
}

/// [`plan_figure`] of the priced candidates `points` (`report.html` draws it
/// from `plan.csv`). `None` when there is none.
pub fn cost_figure(points: &[CostPoint], target_rate: f64) -> Option<Figure> {
    let priced: Vec<(usize, f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p.rate, p.cost))
        .collect();
    if priced.is_empty() {
        return None;
    }
    let xs: Vec<f64> = priced.iter().map(|p| p.1).collect();
    let ys: Vec<f64> = priced.iter().map(|p| p.2).collect();
    // One series per GPU, and per tiers and router where they vary.
    let series_of = |p: &CostPoint| {
        if p.detail.is_empty() {
            p.gpu.clone()
        } else {
            format!("{}, {}", p.gpu, p.detail)
        }
    };
    let mut gpus: Vec<String> = priced.iter().map(|p| series_of(&points[p.0])).collect();
    gpus.sort_unstable();
    gpus.dedup();
    let mut lines = Vec::new();
    let mut legend = Vec::new();
    for (g, gpu) in gpus.iter().enumerate() {
        let color = PALETTE[g % PALETTE.len()];
        let mut pts: Vec<(f64, f64)> = priced
            .iter()
            .filter(|p| series_of(&points[p.0]) == *gpu)
            .map(|p| (p.1, p.2))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Markers only: a gap (no y) between points breaks the line.
        let mut points = Vec::with_capacity(pts.len() * 2);
        for (k, (x, y)) in pts.iter().enumerate() {
            if k > 0 {
                points.push(Point {
                    x: 0.5 * (pts[k - 1].0 + x),
                    y: None,
                    err: None,
                });
            }
            points.push(Point {
                x: *x,
                y: Some(*y),
                err: None,
            });
        }
        lines.push(Line {
            color,
            stroke: Stroke::Solid,
            width: 2,
            markers: true,
            points,
        });
        legend.push(LegendEntry {
            label: gpu.clone(),
            color,
            sample: Sample::Solid,
        });
    }
    let mut frontier: Vec<(f64, f64)> = priced
        .iter()
        .filter(|p| points[p.0].pareto)
        .map(|p| (p.1, p.2))
        .collect();
    frontier.sort_by(|a, b| a.0.total_cmp(&b.0));
    let black = RGBColor(20, 20, 20);
    lines.push(Line {
        color: black,
        stroke: Stroke::Dashed,
        width: 2,
        markers: true,
        points: frontier
            .iter()
            .map(|&(x, y)| Point {
                x,
                y: Some(y),
                err: None,
            })
            .collect(),
    });
    legend.push(LegendEntry {
        label: "Pareto front".into(),
        color: black,
        sample: Sample::Dashed,
    });
    Some(Figure {
        title: "Cost against capacity".into(),
        subtitle: Some(format!(
            "each marker a candidate at its sustainable rate; target {} req/s",
            fmt_rate(target_rate)
        )),
        x_title: "sustainable rate per replica (req/s)".into(),
        y_title: "$ per million output tokens".into(),
        x: Axis::auto_padded(&xs),
        y: Axis::auto(&ys, true),
        body: Body::Lines(lines),
        references: Vec::new(),
        legend_title: Some(if points.iter().all(|p| p.detail.is_empty()) {
            "GPU".into()
        } else {
            "GPU, KV tiers, router".into()
        }),
        legend,
    })
}
