//! Regression checks: a fresh sweep against a baseline `sweep.csv`, point by
//! point. Counts must match exactly; times, rates and fractions within a
//! relative tolerance (`--rtol`, or per metric in the scenario's `[check]`
//! table). Each metric knows which way is better, so a difference beyond
//! tolerance is a regression, an improvement, or (for metrics with no better
//! direction, and for values that cannot be compared) a change.
//!
//! A baseline is only comparable if it describes the same experiment: the same
//! axis columns, the same points and the same columns. Anything else is a
//! mismatch, named and failing, so that a renamed axis, a truncated file or a
//! column of NaN can never read as "within tolerance".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::Error;
use crate::sweep::SweepTable;

pub use crate::metrics::directions::{Better, COUNTS, DIRECTIONS, better, toleranced_metrics};
pub use crate::scenario::commands::{CheckSpec, DEFAULT_RTOL, MAX_RTOL, rtol_in_range};

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

/// What `kvsim check` fails on (`--fail-on`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Regressions and changes without a better direction fail; improvements
    /// are reported and pass.
    #[default]
    Regression,
    /// Every difference beyond tolerance fails, improvements included.
    Change,
}

/// How a metric moved beyond its tolerance.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The worse way.
    Regression,
    /// The better way.
    Improvement,
    /// A metric that defines the experiment moved, or the two values cannot
    /// be compared (a number against nothing, a finite value against NaN or
    /// an infinity).
    Change,
    /// A metric with no better direction that follows from the others moved
    /// (steps, batch sizes, KV occupancy).
    Shift,
}

/// A metric that moved beyond its tolerance at a point.
#[derive(Clone, Debug, PartialEq)]
pub struct Moved {
    /// The point, described by its axis values.
    pub point: String,
    /// The metric (or `replicates`, `slo_*`).
    pub metric: String,
    /// Baseline cell (empty: none).
    pub baseline: String,
    /// Fresh cell (empty: none).
    pub fresh: String,
    /// (fresh - baseline) / |baseline|, when both are finite numbers.
    pub change: Option<f64>,
    /// The tolerance it exceeded (0: compared exactly).
    pub tolerance: f64,
    /// Which way it moved.
    pub verdict: Verdict,
}

/// A way the baseline does not describe the same experiment as the sweep.
#[derive(Clone, Debug, PartialEq)]
pub enum Mismatch {
    /// An axis column of the baseline that is not an axis of the sweep.
    AxisNotInSweep(String),
    /// An axis of the sweep that the baseline does not have.
    AxisNotInBaseline(String),
    /// The same axes in another order.
    AxisOrder {
        /// The baseline's axis columns.
        baseline: Vec<String>,
        /// The sweep's.
        sweep: Vec<String>,
    },
    /// A column of the baseline the sweep does not write.
    ColumnNotInSweep(String),
    /// A column of the sweep the baseline does not have.
    ColumnNotInBaseline(String),
    /// A point of the baseline the sweep does not have.
    PointNotInSweep(String),
    /// A point of the sweep the baseline does not have.
    PointNotInBaseline(String),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::AxisNotInSweep(a) => write!(
                f,
                "axis column `{a}` of the baseline is not an axis of the sweep"
            ),
            Mismatch::AxisNotInBaseline(a) => {
                write!(f, "axis `{a}` of the sweep is not a column of the baseline")
            }
            Mismatch::AxisOrder { baseline, sweep } => write!(
                f,
                "axis columns in another order: baseline ({}), sweep ({})",
                baseline.join(", "),
                sweep.join(", ")
            ),
            Mismatch::ColumnNotInSweep(c) => {
                write!(f, "column `{c}` of the baseline is not in the sweep")
            }
            Mismatch::ColumnNotInBaseline(c) => {
                write!(f, "column `{c}` of the sweep is not in the baseline")
            }
            Mismatch::PointNotInSweep(p) => write!(f, "{p} of the baseline is not in the sweep"),
            Mismatch::PointNotInBaseline(p) => write!(f, "{p} of the sweep is not in the baseline"),
        }
    }
}

/// The outcome of comparing a sweep with its baseline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// Metrics that moved beyond tolerance, in point then column order.
    pub moved: Vec<Moved>,
    /// Ways the two do not describe the same experiment.
    pub mismatches: Vec<Mismatch>,
    /// Points compared value by value (0 when the axes differ).
    pub points_compared: usize,
    /// Whether the axes differ, so no point could be compared.
    pub axes_differ: bool,
}

impl Comparison {
    /// The moves with verdict `v`.
    pub fn with_verdict(&self, v: Verdict) -> Vec<&Moved> {
        self.moved.iter().filter(|m| m.verdict == v).collect()
    }

    /// Whether the check fails under `fail_on`: any mismatch, regression or
    /// change does; an improvement or a shift only under [`FailOn::Change`].
    pub fn fails(&self, fail_on: FailOn) -> bool {
        !self.mismatches.is_empty()
            || self.moved.iter().any(|m| match m.verdict {
                Verdict::Regression | Verdict::Change => true,
                Verdict::Improvement | Verdict::Shift => fail_on == FailOn::Change,
            })
    }
}

/// Describes row `row` of `t` by its point index and axis values.
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

/// Columns holding settings of the run rather than results: compared
/// exactly, any difference a change.
fn is_setting(column: &str) -> bool {
    column == "replicates" || column.starts_with("slo_")
}

/// Columns whose cells must be numbers (or empty): settings, metrics and
/// confidence half-widths.
fn is_numeric(column: &str) -> bool {
    is_setting(column) || column.ends_with("_ci95") || better(column).is_some()
}

/// What a finite `v` in `column` violates, if it is outside what any run
/// can produce: shares are fractions in [0, 1]; every other metric (counts,
/// latencies, rates, sizes) and every confidence half-width is at least 0.
/// Non-finite values pass here: compared with a finite fresh value they are
/// differences.
fn impossible(column: &str, v: f64) -> Option<&'static str> {
    if !v.is_finite() || is_setting(column) {
        return None;
    }
    // A confidence half-width is only >= 0: with few replicates Student's t
    // makes that of a fraction larger than 1.
    let half_width = column.ends_with("_ci95");
    let base = column;
    let share = !half_width && base.ends_with("_frac")
        || base.starts_with("waste_")
        || base.starts_with("batch_bound_")
        || base.ends_with("_hit_rate")
        || matches!(base, "oom_rate" | "kv_time_above_90");
    if share && !(0.0..=1.0).contains(&v) {
        Some("not a fraction in [0, 1]")
    } else if v < 0.0 {
        Some("negative")
    } else {
        None
    }
}

/// Two rows of one table that are the same point: the same point index, or
/// the same axis values (a sweep without axes has one point).
fn duplicate(t: &SweepTable) -> Option<(usize, usize)> {
    let mut by_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_axes: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for r in 0..t.rows.len() {
        if let Some(&first) = by_index.get(t.rows[r][0].as_str()) {
            return Some((first, r));
        }
        by_index.insert(t.rows[r][0].as_str(), r);
        let axes = key(t, r)[1..].to_vec();
        if let Some(&first) = by_axes.get(&axes) {
            return Some((first, r));
        }
        by_axes.insert(axes, r);
    }
    None
}

/// Reads a baseline `sweep.csv` and checks that it can be compared at all:
/// no column twice, every metric cell a number or empty (NaN and infinities
/// parse, and are then differences), no point twice. Errors name the file,
/// the line and the column.
pub fn read_baseline(path: &Path) -> Result<SweepTable, Error> {
    let (table, lines) = crate::sweep::read_table_lines(path)?;
    let err = |line: u64, reason: String| Error::DataFile {
        path: path.to_path_buf(),
        line: Some(line),
        reason,
    };
    for (i, h) in table.header.iter().enumerate() {
        if let Some(j) = table.header[..i].iter().position(|g| g == h) {
            return Err(err(
                1,
                format!(
                    "column `{h}` appears twice (columns {} and {})",
                    j + 1,
                    i + 1
                ),
            ));
        }
    }
    for (r, row) in table.rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let column = &table.header[c];
            if !is_numeric(column) || cell.is_empty() {
                continue;
            }
            let Ok(v) = cell.trim().parse::<f64>() else {
                return Err(err(
                    lines[r],
                    format!(
                        "column `{column}`: `{}` is not a number",
                        crate::input::quote(cell)
                    ),
                ));
            };
            if let Some(range) = impossible(column, v) {
                return Err(err(
                    lines[r],
                    format!(
                        "column `{column}`: {cell} is {range}; kvsim never writes such a value, \
                         so the baseline was edited or is not a kvsim sweep.csv"
                    ),
                ));
            }
        }
    }
    if let Some((a, b)) = duplicate(&table) {
        return Err(err(
            lines[b],
            format!(
                "{} repeats line {}: a baseline holds each point once",
                describe(&table, b),
                lines[a]
            ),
        ));
    }
    Ok(table)
}

/// A cell as a number; `None` for an empty cell (a metric no request
/// qualified for) and for text, which [`read_baseline`] has refused.
fn number(cell: &str) -> Option<f64> {
    cell.trim().parse().ok()
}

/// How `fresh` compares with `baseline` for a metric that is better `b`,
/// within tolerance `tol`: `None` when within it, else the verdict and the
/// relative change (when both are finite).
fn judge(baseline: &str, fresh: &str, b: Better, tol: f64) -> Option<(Verdict, Option<f64>)> {
    let (x, y) = match (number(baseline), number(fresh)) {
        (None, None) => return None,
        (Some(x), Some(y)) => (x, y),
        _ => return Some((Verdict::Change, None)),
    };
    if !x.is_finite() || !y.is_finite() {
        // Two NaNs, or the same infinity, are the same value; anything else
        // involving a non-finite value has no meaningful relative change.
        let same = (x.is_nan() && y.is_nan()) || x == y;
        return (!same).then_some((Verdict::Change, None));
    }
    let scale = x.abs().max(y.abs());
    let moved = if scale == 0.0 {
        0.0
    } else {
        (y - x).abs() / scale
    };
    if moved <= tol {
        return None;
    }
    let change = if x == 0.0 {
        f64::INFINITY.copysign(y)
    } else {
        (y - x) / x.abs()
    };
    let verdict = match b {
        Better::Lower if y < x => Verdict::Improvement,
        Better::Higher if y > x => Verdict::Improvement,
        Better::Lower | Better::Higher => Verdict::Regression,
        Better::Neither => Verdict::Change,
        Better::Follows => Verdict::Shift,
    };
    Some((verdict, Some(change)))
}

/// Compares `fresh` with `baseline` (read by [`read_baseline`]).
pub fn compare(baseline: &SweepTable, fresh: &SweepTable, tol: &Tolerances) -> Comparison {
    let mut out = Comparison::default();
    let (b_axes, f_axes) = (baseline.axis_columns(), fresh.axis_columns());
    if b_axes != f_axes {
        for a in b_axes.iter().filter(|a| !f_axes.contains(a)) {
            out.mismatches.push(Mismatch::AxisNotInSweep(a.clone()));
        }
        for a in f_axes.iter().filter(|a| !b_axes.contains(a)) {
            out.mismatches.push(Mismatch::AxisNotInBaseline(a.clone()));
        }
        if out.mismatches.is_empty() {
            out.mismatches.push(Mismatch::AxisOrder {
                baseline: b_axes.to_vec(),
                sweep: f_axes.to_vec(),
            });
        }
        // Points are identified by their axis values: with other axes there
        // is nothing to pair them by.
        out.axes_differ = true;
        return out;
    }
    let values = |t: &SweepTable| t.header[1 + t.axis_columns().len()..].to_vec();
    let (b_cols, f_cols) = (values(baseline), values(fresh));
    for c in b_cols.iter().filter(|c| !f_cols.contains(c)) {
        out.mismatches.push(Mismatch::ColumnNotInSweep(c.clone()));
    }
    for c in f_cols.iter().filter(|c| !b_cols.contains(c)) {
        out.mismatches
            .push(Mismatch::ColumnNotInBaseline(c.clone()));
    }
    // Half-widths are not compared: they say how sure a mean is, and move
    // with it; their columns must still be on both sides (checked above).
    let compared: Vec<&String> = f_cols
        .iter()
        .filter(|c| b_cols.contains(c) && !c.ends_with("_ci95"))
        .collect();
    let fresh_rows: BTreeMap<Vec<String>, usize> =
        (0..fresh.rows.len()).map(|r| (key(fresh, r), r)).collect();
    let baseline_keys: BTreeSet<Vec<String>> =
        (0..baseline.rows.len()).map(|r| key(baseline, r)).collect();
    for b in 0..baseline.rows.len() {
        let Some(&f) = fresh_rows.get(&key(baseline, b)) else {
            out.mismatches
                .push(Mismatch::PointNotInSweep(describe(baseline, b)));
            continue;
        };
        out.points_compared += 1;
        for m in &compared {
            let (Some(bv), Some(fv)) = (baseline.get(b, m), fresh.get(f, m)) else {
                continue;
            };
            let exact = is_setting(m) || COUNTS.contains(&m.as_str());
            let tolerance = if exact { 0.0 } else { tol.of(m) };
            let direction = better(m).unwrap_or(Better::Neither);
            if let Some((verdict, change)) = judge(bv, fv, direction, tolerance) {
                out.moved.push(Moved {
                    point: describe(baseline, b),
                    metric: (*m).clone(),
                    baseline: bv.to_string(),
                    fresh: fv.to_string(),
                    change,
                    tolerance,
                    verdict,
                });
            }
        }
    }
    for f in 0..fresh.rows.len() {
        if !baseline_keys.contains(&key(fresh, f)) {
            out.mismatches
                .push(Mismatch::PointNotInBaseline(describe(fresh, f)));
        }
    }
    out
}

/// Checks that a freshly run sweep holds each point once (it does by
/// construction; this keeps "no duplicates on either side" a checked fact).
pub fn check_fresh(t: &SweepTable) -> Result<(), Error> {
    match duplicate(t) {
        Some((_, b)) => Err(Error::Usage(format!(
            "the fresh sweep holds {} twice (a kvsim bug; please report it)",
            describe(t, b)
        ))),
        None => Ok(()),
    }
}

/// `moves` as a terminal table: metric, point, baseline, fresh value,
/// relative change and tolerance.
fn moved_table(moves: &[&Moved]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "metric",
        "point",
        "baseline",
        "fresh",
        "change",
        "tolerance",
    ]);
    let shown = |cell: &str| {
        if cell.is_empty() {
            "(empty)".to_string()
        } else {
            cell.to_string()
        }
    };
    for m in moves {
        t.add_row(vec![
            m.metric.clone(),
            m.point.clone(),
            shown(&m.baseline),
            shown(&m.fresh),
            m.change
                .map(|c| format!("{:+.2} %", c * 100.0))
                .unwrap_or_else(|| "not comparable".into()),
            if m.tolerance == 0.0 {
                "exact".into()
            } else {
                format!("{:.2} %", m.tolerance * 100.0)
            },
        ]);
    }
    t
}

/// The comparison as text for the terminal: mismatches, then regressions,
/// changes and improvements, each group under its own heading, and whether
/// it fails under `fail_on`.
pub fn report(c: &Comparison, fail_on: FailOn) -> String {
    let mut out = String::new();
    if !c.mismatches.is_empty() {
        out.push_str("the baseline does not match the sweep (fails):\n");
        for m in &c.mismatches {
            out.push_str(&format!("  {m}\n"));
        }
        if c.axes_differ {
            out.push_str("  points were not compared: they are identified by their axis values\n");
        }
    }
    let groups = [
        (
            Verdict::Regression,
            "regressions (worse beyond tolerance; fail)",
        ),
        (
            Verdict::Change,
            "changes (the experiment itself, or not comparable; fail)",
        ),
        (
            Verdict::Shift,
            match fail_on {
                FailOn::Regression => {
                    "shifts (no better direction, following from the rest; pass with \
                     --fail-on regression)"
                }
                FailOn::Change => {
                    "shifts (no better direction, following from the rest; fail with \
                     --fail-on change)"
                }
            },
        ),
        (
            Verdict::Improvement,
            match fail_on {
                FailOn::Regression => {
                    "improvements (better beyond tolerance; pass with --fail-on regression)"
                }
                FailOn::Change => {
                    "improvements (better beyond tolerance; fail with --fail-on change)"
                }
            },
        ),
    ];
    for (verdict, heading) in groups {
        let moves = c.with_verdict(verdict);
        if !moves.is_empty() {
            out.push_str(&format!("{heading}:\n{}\n", moved_table(&moves)));
        }
    }
    out
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
                "steps",
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
    fn every_sweep_metric_column_has_a_direction() {
        let columns = crate::metrics::Summary::column_names();
        let without: Vec<&String> = columns.iter().filter(|c| better(c).is_none()).collect();
        assert!(
            without.is_empty(),
            "no direction in DIRECTIONS: {without:?}"
        );
        let stale: Vec<&str> = DIRECTIONS
            .iter()
            .map(|(m, _)| *m)
            .filter(|m| !columns.iter().any(|c| c == m))
            .collect();
        assert!(stale.is_empty(), "not a sweep column: {stale:?}");
        for c in COUNTS {
            assert!(better(c).is_some(), "{c}");
        }
    }

    #[test]
    fn identical_tables_pass_and_small_moves_are_tolerated() {
        let b = table(&[&["0", "paged", "1", "100", "0.020", "7", "0.05"]]);
        let same = compare(&b, &b, &tol());
        assert_eq!(
            same,
            Comparison {
                points_compared: 1,
                ..Default::default()
            }
        );
        let c = table(&[&["0", "paged", "1", "100", "0.0205", "7", "0.05"]]);
        assert!(compare(&b, &c, &tol()).moved.is_empty());
    }

    #[test]
    fn direction_decides_regression_improvement_or_change() {
        let b = table(&[&["0", "paged", "1", "100", "0.020", "7", ""]]);
        // Fewer completions, slower tokens, more steps.
        let worse = table(&[&["0", "paged", "1", "99", "0.030", "8", ""]]);
        let d = compare(&b, &worse, &tol());
        let verdicts: Vec<(&str, Verdict)> = d
            .moved
            .iter()
            .map(|m| (m.metric.as_str(), m.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("ok", Verdict::Regression),
                ("tpot_p99", Verdict::Regression),
                ("steps", Verdict::Shift)
            ]
        );
        assert!(
            matches!(&d.moved[1], Moved { change: Some(c), tolerance, .. } if (*c - 0.5).abs() < 1e-9 && *tolerance == 0.05)
        );
        assert_eq!(d.moved[0].tolerance, 0.0);
        // The reverse is better on both directed metrics.
        let d = compare(&worse, &b, &tol());
        assert_eq!(d.with_verdict(Verdict::Improvement).len(), 2);
        assert_eq!(d.with_verdict(Verdict::Shift).len(), 1);
        let better_only = table(&[&["0", "paged", "1", "101", "0.010", "7", ""]]);
        let d = compare(&b, &better_only, &tol());
        assert!(!d.fails(FailOn::Regression));
        assert!(d.fails(FailOn::Change));
        // A faster engine also takes fewer steps: that alone fails only
        // with --fail-on change.
        let fewer_steps = table(&[&["0", "paged", "1", "101", "0.010", "6", ""]]);
        let d = compare(&b, &fewer_steps, &tol());
        assert_eq!(d.with_verdict(Verdict::Shift).len(), 1);
        assert!(!d.fails(FailOn::Regression));
        assert!(d.fails(FailOn::Change));
        let loose = Tolerances {
            rtol: 0.05,
            by_metric: [("tpot_p99".to_string(), 0.6)].into(),
        };
        assert_eq!(compare(&b, &worse, &loose).moved.len(), 2);
    }

    #[test]
    fn non_finite_and_missing_values_are_changes() {
        let b = table(&[&["0", "paged", "1", "100", "0.020", "7", ""]]);
        for cell in ["NaN", "inf", "-inf", ""] {
            let nan = table(&[&["0", "paged", "1", "100", cell, "7", ""]]);
            for (x, y) in [(&nan, &b), (&b, &nan)] {
                let d = compare(x, y, &tol());
                assert_eq!(d.moved.len(), 1, "{cell}");
                assert_eq!(d.moved[0].verdict, Verdict::Change);
                assert_eq!(d.moved[0].change, None);
                assert!(d.fails(FailOn::Regression));
            }
            assert!(compare(&nan, &nan, &tol()).moved.is_empty(), "{cell}");
        }
        let inf = table(&[&["0", "paged", "1", "100", "inf", "7", ""]]);
        let minus = table(&[&["0", "paged", "1", "100", "-inf", "7", ""]]);
        assert_eq!(compare(&inf, &minus, &tol()).moved.len(), 1);
        // A setting column is compared exactly.
        let slo = table(&[&["0", "paged", "1", "100", "0.020", "7", "0.1"]]);
        let d = compare(&b, &slo, &tol());
        assert_eq!(d.moved[0].metric, "slo_tpot_p99");
        assert_eq!(d.moved[0].verdict, Verdict::Change);
    }

    #[test]
    fn missing_and_extra_points_and_columns_fail() {
        let b = table(&[
            &["0", "paged", "1", "1", "1", "1", ""],
            &["1", "contiguous", "1", "1", "1", "1", ""],
        ]);
        let c = table(&[
            &["0", "paged", "1", "1", "1", "1", ""],
            &["2", "sliding", "1", "1", "1", "1", ""],
        ]);
        let d = compare(&b, &c, &tol());
        assert_eq!(
            d.mismatches,
            [
                Mismatch::PointNotInSweep("point 1 (cache.policy=contiguous)".into()),
                Mismatch::PointNotInBaseline("point 2 (cache.policy=sliding)".into()),
            ]
        );
        assert!(d.fails(FailOn::Regression));
        let mut fewer = b.clone();
        fewer.header[5] = "stepz".into();
        let d = compare(&fewer, &b, &tol());
        assert_eq!(
            d.mismatches,
            [
                Mismatch::ColumnNotInSweep("stepz".into()),
                Mismatch::ColumnNotInBaseline("steps".into()),
            ]
        );
        let mut renamed = b.clone();
        renamed.header[1] = "cache.polcy".into();
        let d = compare(&renamed, &b, &tol());
        assert!(d.axes_differ && d.points_compared == 0);
        assert_eq!(
            d.mismatches,
            [
                Mismatch::AxisNotInSweep("cache.polcy".into()),
                Mismatch::AxisNotInBaseline("cache.policy".into()),
            ]
        );
    }

    #[test]
    fn duplicates_are_found_by_index_or_by_axis_values() {
        let by_index = table(&[
            &["0", "paged", "1", "1", "1", "1", ""],
            &["0", "contiguous", "1", "1", "1", "1", ""],
        ]);
        assert_eq!(duplicate(&by_index), Some((0, 1)));
        let by_axes = table(&[
            &["0", "paged", "1", "1", "1", "1", ""],
            &["1", "contiguous", "1", "1", "1", "1", ""],
            &["2", "paged", "1", "1", "1", "1", ""],
        ]);
        assert_eq!(duplicate(&by_axes), Some((0, 2)));
        assert!(check_fresh(&by_axes).is_err());
    }

    #[test]
    fn the_largest_tolerance_forgives_any_move_that_keeps_the_sign() {
        for (x, y) in [("1e-9", "1e9"), ("0", "5"), ("7", "0"), ("-3", "-1e6")] {
            assert_eq!(judge(x, y, Better::Lower, MAX_RTOL), None, "{x} -> {y}");
        }
        assert!(judge("-1", "1", Better::Lower, MAX_RTOL).is_some());
    }

    #[test]
    fn tolerances_are_checked() {
        let spec = |rtol: Option<f64>, by: &[(&str, f64)]| CheckSpec {
            rtol,
            rtol_by_metric: by.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        assert!(spec(Some(0.05), &[("tpot_p99", 0.1)]).validate().is_ok());
        assert!(spec(Some(1.0), &[]).validate().is_ok());
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let e = spec(Some(bad), &[]).validate().unwrap_err();
            assert_eq!(e.key, "check.rtol");
            let e = spec(None, &[("tpot_p99", bad)]).validate().unwrap_err();
            assert_eq!(e.key, "check.rtol_by_metric.tpot_p99");
        }
        let e = spec(None, &[("tpot_p999", 0.1)]).validate().unwrap_err();
        assert_eq!(e.key, "check.rtol_by_metric.tpot_p999");
        assert!(e.reason.contains("unknown metric") && e.reason.contains("tpot_p99,"));
        let e = spec(None, &[("ok", 0.1)]).validate().unwrap_err();
        assert!(e.reason.contains("compared exactly"), "{}", e.reason);
    }
}
