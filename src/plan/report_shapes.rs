//! The table and `plan.csv` of a plan of deployment shapes (`[plan]
//! disaggregated = true`, or a `shape` axis): each row a whole deployment,
//! its mode, shape and GPU count, the rate it sustains and its goodput per
//! GPU, the copies the target load needs and what they cost.

use super::report::{at_rate, fmt_rate, why_not, worst};
use super::{CandidateResult, Plan, SHAPE, pareto_front, ranking};
use crate::sweep::cell_of;

/// The other axes of a shape candidate, `key=value` joined (empty without).
fn others(r: &CandidateResult) -> String {
    r.assignments
        .iter()
        .filter(|(k, _)| k != SHAPE)
        .map(|(k, v)| format!("{}={}", k.rsplit('.').next().unwrap_or(k), cell_of(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Its shape as the table writes it (the `shape` cell when it did not
/// parse, which the plan refuses before it starts).
fn shape_text(r: &CandidateResult) -> String {
    match r.shape {
        Some(s) => s.to_string(),
        None => r
            .assignments
            .iter()
            .find(|(k, _)| k == SHAPE)
            .map(|(_, v)| cell_of(v))
            .unwrap_or_default(),
    }
}

fn mode_text(r: &CandidateResult) -> &'static str {
    match r.shape {
        Some(s) => s.mode(),
        None if shape_text(r).contains('+') => super::DISAGGREGATED,
        None => super::COLOCATED,
    }
}

/// GPUs of one deployment of the candidate's shape.
fn shape_gpus(r: &CandidateResult) -> Option<u64> {
    r.shape.map(super::Shape::gpus)
}

/// Requests per second per GPU the deployment sustains.
pub fn goodput_per_gpu(r: &CandidateResult) -> Option<f64> {
    let rate = r.search.as_ref()?.best.as_ref()?.rate;
    Some(rate / shape_gpus(r)? as f64)
}

/// Why a pruned candidate was not simulated.
fn pruned_note(r: &CandidateResult) -> Option<String> {
    let p = r.pruned.as_ref()?;
    Some(format!(
        "pruned: its roofline bound is {} req/s, below the {} req/s {} sustained",
        fmt_rate(p.bound),
        fmt_rate(p.rate),
        p.by
    ))
}

/// Why a shape is not feasible, without the scenario file's path that
/// every row would repeat.
fn why_not_shape(r: &CandidateResult, plan: &Plan) -> String {
    if let Some(note) = pruned_note(r) {
        return note;
    }
    let why = why_not(r, plan);
    match why.split_once(": `") {
        Some((_, rest)) if r.error.is_some() => format!("`{rest}"),
        _ => why,
    }
}

/// The ranked table of a plan of shapes.
pub fn shape_table(results: &[CandidateResult], plan: &Plan) -> comfy_table::Table {
    let front = pareto_front(results);
    let with_axes = results.iter().any(|r| !others(r).is_empty());
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    let mut header: Vec<&str> = vec!["#"];
    if with_axes {
        header.push("candidate");
    }
    header.extend([
        "mode",
        "shape",
        "gpu",
        "GPUs",
        "req/s",
        "goodput/GPU",
        "copies",
        "$/hour",
        "$/M out tok",
        "ttft p99",
        "tpot p99",
        "cluster sim",
        "",
    ]);
    t.set_header(header);
    for (rank, &i) in ranking(results).iter().enumerate() {
        let r = &results[i];
        let gpu = if r.gpu.is_empty() {
            "-".to_string()
        } else {
            r.gpu.clone()
        };
        let mut row: Vec<String> = Vec::new();
        let feasible = r
            .sizing
            .as_ref()
            .zip(r.search.as_ref().and_then(|s| s.best.as_ref()));
        row.push(match feasible {
            Some(_) => (rank + 1).to_string(),
            None => "-".into(),
        });
        if with_axes {
            row.push(others(r));
        }
        row.extend([
            mode_text(r).to_string(),
            shape_text(r),
            gpu,
            shape_gpus(r).map_or("-".into(), |g| g.to_string()),
        ]);
        match feasible {
            Some((s, best)) => {
                let m = at_rate(best);
                let capped = r.search.as_ref().is_some_and(|s| s.is_floor());
                let floor = if capped { ">= " } else { "" };
                row.extend([
                    format!("{floor}{}", fmt_rate(s.rate_per_replica)),
                    goodput_per_gpu(r).map_or("-".into(), |g| format!("{floor}{g:.3}")),
                    s.replicas.to_string(),
                    s.usd_per_hour
                        .map_or("no price".into(), |u| format!("{u:.2}")),
                    s.usd_per_m_output_tokens
                        .map_or("-".into(), |u| format!("{u:.3}")),
                    m.ttft_p99.map_or("-".into(), |v| format!("{v:.3} s")),
                    m.tpot_p99
                        .map_or("-".into(), |v| format!("{:.1} ms", v * 1e3)),
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
                ]);
            }
            None => {
                row.push(if r.pruned.is_some() {
                    "pruned".into()
                } else {
                    "infeasible".into()
                });
                row.extend(std::iter::repeat_n("-".to_string(), 7));
                row.push(why_not_shape(r, plan));
            }
        }
        t.add_row(row);
    }
    t
}

/// `plan.csv` of a plan of shapes: one row per candidate in rank order,
/// axis columns first (`shape` among them). A *replica* here is one whole
/// deployment of the shape: `rate_per_replica` is what it sustains,
/// `replicas` the copies the target load needs, `gpus` all their GPUs.
pub fn shape_csv(results: &[CandidateResult], plan: &Plan) -> Result<Vec<u8>, csv::Error> {
    let front = pareto_front(results);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["rank".into()];
    header.extend(plan.candidates.axes.iter().map(|a| a.key.clone()));
    header.extend(
        [
            "mode",
            "gpu",
            "deployment_gpus",
            "feasible",
            "rate_per_replica",
            "rate_is_floor",
            "goodput_per_gpu",
            "rate_bound",
            "target_rate",
            "replicas",
            "gpus",
            "usd_per_gpu_hour",
            "usd_per_hour",
            "usd_per_m_output_tokens",
            "output_tokens_per_request",
            "ttft_p99",
            "tpot_p99",
            "e2e_p99",
            "ttft_transfer_p99",
            "decode_stall_rate",
            "oom_rate",
            "batch_mean",
            "prefill_batch_mean",
            "decode_batch_mean",
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
        let search = r.search.as_ref();
        let best = search.and_then(|s| s.best.as_ref());
        let feasible = r.sizing.is_some() && best.is_some();
        let mut row: Vec<String> = Vec::with_capacity(header.len());
        row.push(if feasible {
            (rank + 1).to_string()
        } else {
            String::new()
        });
        row.extend(r.assignments.iter().map(|(_, v)| cell_of(v)));
        row.extend([
            mode_text(r).to_string(),
            r.gpu.clone(),
            opt(shape_gpus(r).map(|g| g as f64)),
            feasible.to_string(),
        ]);
        let bound = opt(r.bounds.map(|b| b.rate()).filter(|b| b.is_finite()));
        match (&r.sizing, best) {
            (Some(s), Some(b)) => {
                let m = at_rate(b);
                let n = b.runs.len().max(1) as f64;
                let mean =
                    |f: fn(&crate::metrics::Summary) -> f64| b.runs.iter().map(f).sum::<f64>() / n;
                row.extend([
                    format!("{}", s.rate_per_replica),
                    search.is_some_and(|s| s.is_floor()).to_string(),
                    opt(goodput_per_gpu(r)),
                    bound,
                    format!("{}", plan.target_rate),
                    s.replicas.to_string(),
                    s.gpus.to_string(),
                    opt(r.price_per_gpu_hour),
                    opt(s.usd_per_hour),
                    opt(s.usd_per_m_output_tokens),
                    format!("{}", s.output_tokens_per_request),
                    opt(m.ttft_p99),
                    opt(m.tpot_p99),
                    opt(m.e2e_p99),
                    opt(worst(&b.runs, |x| x.ttft_transfer_p99)),
                    format!("{}", mean(|x| x.decode_stall_rate)),
                    format!("{}", m.oom_rate),
                    format!("{}", m.batch_mean),
                    format!("{}", mean(|x| x.prefill_batch_mean)),
                    format!("{}", mean(|x| x.decode_batch_mean)),
                    front[i].to_string(),
                    s.verified.map(|v| v.to_string()).unwrap_or_default(),
                    search.map_or(0, |s| s.probes).to_string(),
                    String::new(),
                ]);
            }
            _ => {
                row.extend(std::iter::repeat_n(String::new(), 3));
                row.push(bound);
                row.push(format!("{}", plan.target_rate));
                row.extend(std::iter::repeat_n(String::new(), 2));
                row.push(opt(r.price_per_gpu_hour));
                row.extend(std::iter::repeat_n(String::new(), 12));
                row.push("false".into());
                row.push(String::new());
                row.push(search.map_or(0, |s| s.probes).to_string());
                row.push(why_not_shape(r, plan));
            }
        }
        w.write_record(&row)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
