//! Regression checks: a fresh sweep against a baseline `sweep.csv`, point by
//! point. Counts must match exactly; times, rates and fractions within a
//! relative tolerance (`--rtol`, or per metric in the scenario's `[check]`
//! table). A point missing from either side is a failure: the grid changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sweep::SweepTable;

/// Metrics that are counts: compared exactly.
pub const COUNTS: [&str; 17] = [
    "requests",
    "ok",
    "oom",
    "unservable",
    "crashed",
    "timeout",
    "oom_events",
    "preemptions",
    "batch_ceiling",
    "batch_peak",
    "steps",
    "swaps",
    "swap_bytes",
    "prefix_hit_tokens",
    "prefix_saved_bytes",
    "kv_budget_bytes",
    "kv_bytes_per_token",
];

/// Default relative tolerance for non-count metrics: the simulator is
/// deterministic, so anything beyond float noise on the same platform is a
/// change in the model or the code; 1 % leaves room for other platforms' libm.
pub const DEFAULT_RTOL: f64 = 0.01;

/// `[check]` in a scenario file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Relative tolerance for every non-count metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    /// Per-metric relative tolerances, e.g. `{ tpot_p99 = 0.05 }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rtol_by_metric: BTreeMap<String, f64>,
}

/// Tolerances in force.
#[derive(Clone, Debug, PartialEq)]
pub struct Tolerances {
    /// For metrics without their own.
    pub rtol: f64,
    /// Per metric.
    pub by_metric: BTreeMap<String, f64>,
}

impl Tolerances {
    fn of(&self, metric: &str) -> f64 {
        self.by_metric.get(metric).copied().unwrap_or(self.rtol)
    }
}

/// One way the fresh sweep differs from the baseline.
#[derive(Clone, Debug, PartialEq)]
pub enum Difference {
    /// A metric moved beyond its tolerance at a point.
    Moved {
        /// The point, described by its axis values.
        point: String,
        /// The metric.
        metric: String,
        /// Baseline value (empty: none).
        baseline: String,
        /// Fresh value (empty: none).
        current: String,
        /// Relative change, if both are numbers.
        change: Option<f64>,
        /// The tolerance it exceeded (0 for counts).
        tolerance: f64,
    },
    /// A point of the baseline that the sweep no longer has.
    Missing(String),
    /// A point of the sweep that the baseline does not have.
    Extra(String),
    /// The baseline has a metric column the sweep does not.
    MissingMetric(String),
}

fn describe(t: &SweepTable, row: usize) -> String {
    let axes: Vec<String> = t
        .axis_columns()
        .iter()
        .map(|k| format!("{k}={}", t.get(row, k).unwrap_or("")))
        .collect();
    let point = t.rows[row][0].clone();
    if axes.is_empty() {
        format!("point {point}")
    } else {
        format!("point {point} ({})", axes.join(", "))
    }
}

/// The identity of a row: its point index and axis values.
fn key(t: &SweepTable, row: usize) -> Vec<String> {
    let n = 1 + t.axis_columns().len();
    t.rows[row][..n].to_vec()
}

/// Compares `current` with `baseline`.
pub fn compare(baseline: &SweepTable, current: &SweepTable, tol: &Tolerances) -> Vec<Difference> {
    let mut out = Vec::new();
    let metrics: Vec<&String> = baseline
        .header
        .iter()
        .skip(1 + baseline.axis_columns().len() + 1)
        .filter(|h| !h.ends_with("_ci95") && !h.starts_with("slo_"))
        .collect();
    for m in &metrics {
        if !current.header.contains(m) {
            out.push(Difference::MissingMetric((*m).clone()));
        }
    }
    let current_rows: BTreeMap<Vec<String>, usize> = (0..current.rows.len())
        .map(|r| (key(current, r), r))
        .collect();
    let baseline_keys: std::collections::BTreeSet<Vec<String>> =
        (0..baseline.rows.len()).map(|r| key(baseline, r)).collect();
    for b in 0..baseline.rows.len() {
        let Some(&c) = current_rows.get(&key(baseline, b)) else {
            out.push(Difference::Missing(describe(baseline, b)));
            continue;
        };
        for m in &metrics {
            let (Some(bv), Some(cv)) = (baseline.get(b, m), current.get(c, m)) else {
                continue;
            };
            let count = COUNTS.contains(&m.as_str());
            let tolerance = if count { 0.0 } else { tol.of(m) };
            let moved = match (bv.parse::<f64>(), cv.parse::<f64>()) {
                (Ok(x), Ok(y)) => {
                    let scale = x.abs().max(y.abs());
                    let change = if scale == 0.0 {
                        0.0
                    } else {
                        (y - x).abs() / scale
                    };
                    (change > tolerance).then_some(Some(if x == 0.0 {
                        f64::INFINITY
                    } else {
                        (y - x) / x.abs()
                    }))
                }
                _ => (bv != cv).then_some(None),
            };
            if let Some(change) = moved {
                out.push(Difference::Moved {
                    point: describe(baseline, b),
                    metric: (*m).clone(),
                    baseline: bv.to_string(),
                    current: cv.to_string(),
                    change,
                    tolerance,
                });
            }
        }
    }
    for c in 0..current.rows.len() {
        if !baseline_keys.contains(&key(current, c)) {
            out.push(Difference::Extra(describe(current, c)));
        }
    }
    out
}

/// The differences as a terminal table.
pub fn difference_table(diffs: &[Difference]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "point",
        "metric",
        "baseline",
        "now",
        "change",
        "tolerance",
    ]);
    for d in diffs {
        match d {
            Difference::Moved {
                point,
                metric,
                baseline,
                current,
                change,
                tolerance,
            } => t.add_row(vec![
                point.clone(),
                metric.clone(),
                baseline.clone(),
                current.clone(),
                change
                    .map(|c| format!("{:+.2} %", c * 100.0))
                    .unwrap_or_else(|| "changed".into()),
                if *tolerance == 0.0 {
                    "exact".into()
                } else {
                    format!("{:.2} %", tolerance * 100.0)
                },
            ]),
            Difference::Missing(p) => {
                t.add_row(vec![p.clone(), "(point missing from the sweep)".into()])
            }
            Difference::Extra(p) => {
                t.add_row(vec![p.clone(), "(point not in the baseline)".into()])
            }
            Difference::MissingMetric(m) => {
                t.add_row(vec!["all".into(), format!("{m} (column missing)")])
            }
        };
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&[&str]]) -> SweepTable {
        SweepTable {
            header: [
                "point",
                "cache.policy",
                "replicates",
                "ok",
                "tpot_p99",
                "slo_tpot_p99",
            ]
            .map(String::from)
            .to_vec(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect(),
        }
    }

    fn tol() -> Tolerances {
        Tolerances {
            rtol: 0.05,
            by_metric: BTreeMap::new(),
        }
    }

    #[test]
    fn identical_tables_pass_and_small_moves_are_tolerated() {
        let b = table(&[&["0", "paged", "1", "100", "0.020", "0.05"]]);
        assert!(compare(&b, &b, &tol()).is_empty());
        let c = table(&[&["0", "paged", "1", "100", "0.0205", "0.05"]]);
        assert!(compare(&b, &c, &tol()).is_empty());
    }

    #[test]
    fn counts_are_exact_and_rates_relative() {
        let b = table(&[&["0", "paged", "1", "100", "0.020", ""]]);
        let c = table(&[&["0", "paged", "1", "99", "0.030", ""]]);
        let d = compare(&b, &c, &tol());
        assert_eq!(d.len(), 2);
        assert!(
            matches!(&d[0], Difference::Moved { metric, tolerance, .. } if metric == "ok" && *tolerance == 0.0)
        );
        assert!(
            matches!(&d[1], Difference::Moved { metric, change: Some(c), .. } if metric == "tpot_p99" && (*c - 0.5).abs() < 1e-9)
        );
        let loose = Tolerances {
            rtol: 0.05,
            by_metric: [("tpot_p99".to_string(), 0.6)].into(),
        };
        assert_eq!(compare(&b, &c, &loose).len(), 1);
    }

    #[test]
    fn missing_and_extra_points_fail() {
        let b = table(&[
            &["0", "paged", "1", "1", "1", ""],
            &["1", "contiguous", "1", "1", "1", ""],
        ]);
        let c = table(&[
            &["0", "paged", "1", "1", "1", ""],
            &["2", "sliding", "1", "1", "1", ""],
        ]);
        let d = compare(&b, &c, &tol());
        assert!(d.contains(&Difference::Missing(
            "point 1 (cache.policy=contiguous)".into()
        )));
        assert!(d.contains(&Difference::Extra("point 2 (cache.policy=sliding)".into())));
    }
}
