//! `validation-held-out.csv`: the held-out rows of `VALIDATION.md` with the
//! catalog GPU and model each ran, so that `report.html` can say how far
//! kvsim was off on a run's hardware without running the cases (about a
//! minute and a half). Generated from [`super::run_cases`] like
//! `VALIDATION.md`, never edited: a test fails when the committed file differs.

use super::{CaseResult, Role, Tolerance};

/// The committed table, compiled in.
pub const HELD_OUT_CSV: &str = include_str!("../../validation-held-out.csv");

/// The table's header.
const HEADER: &str = "id,origin,gpu,model,tp,metric,error,error_kind,error_label,target,within";

/// One held-out row as the table keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldOutRow {
    /// The case id in `VALIDATION.md`.
    pub id: String,
    /// Its source's short name.
    pub origin: String,
    /// Catalog GPU.
    pub gpu: String,
    /// Catalog model.
    pub model: String,
    /// GPUs per replica.
    pub tp: u32,
    /// What is compared.
    pub metric: String,
    /// The signed error: a fraction when `relative`, else in the case's unit.
    pub error: f64,
    /// Whether `error` is relative (a fraction) or absolute (points).
    pub relative: bool,
    /// The error as `VALIDATION.md` prints it.
    pub error_label: String,
    /// The target as `VALIDATION.md` prints it.
    pub target: String,
    /// Whether the row met its target.
    pub within: bool,
}

/// Renders the held-out rows of `rows` (those that ran on a GPU) as the
/// committed CSV.
pub fn held_out_csv(rows: &[CaseResult]) -> String {
    let mut out = format!("{HEADER}\n");
    for r in rows.iter().filter(|r| r.role == Role::HeldOut) {
        let Some(on) = &r.ran_on else { continue };
        let kind = match r.tolerance {
            Tolerance::Absolute(_) => "absolute",
            Tolerance::Exact | Tolerance::Relative(_) => "relative",
        };
        let cells = [
            r.id.to_string(),
            r.origin.to_string(),
            on.gpu.clone(),
            on.model.clone(),
            on.tp.to_string(),
            r.metric.to_string(),
            format!("{:.6}", r.error()),
            kind.to_string(),
            r.error_label(),
            r.tolerance.label(),
            if r.within() { "yes" } else { "no" }.to_string(),
        ];
        let quoted: Vec<String> = cells
            .iter()
            .map(|c| {
                if c.contains([',', '"']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.clone()
                }
            })
            .collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
    out
}

/// The rows of the committed table.
pub fn held_out_rows() -> Vec<HeldOutRow> {
    let mut reader = csv::Reader::from_reader(HELD_OUT_CSV.as_bytes());
    reader
        .records()
        .map(|rec| {
            let rec = rec.expect("validation-held-out.csv is generated well-formed");
            let cell = |i: usize| rec.get(i).unwrap_or("").to_string();
            HeldOutRow {
                id: cell(0),
                origin: cell(1),
                gpu: cell(2),
                model: cell(3),
                tp: cell(4).parse().unwrap_or(0),
                metric: cell(5),
                error: cell(6).parse().unwrap_or(f64::NAN),
                relative: cell(7) == "relative",
                error_label: cell(8),
                target: cell(9),
                within: cell(10) == "yes",
            }
        })
        .collect()
}
