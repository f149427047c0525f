//! Fidelity validation: kvsim against published measurements.
//!
//! [`run_cases`] recomputes every case (exact KV arithmetic, the PagedAttention
//! paper's OPT-13B setup, batch-1 decode latencies, a concurrency curve, the
//! capacity effect of an fp8 KV cache, offline throughput, a host KV tier
//! against vLLM's CPU offloading connector, disaggregated prefill/decode
//! against DistServe's simulator and Dynamo's single-node benchmark) and [`render_markdown`] turns the
//! results into the repository's `VALIDATION.md`. The file is generated, never
//! edited by hand: a test fails when the committed file differs from
//! `render_markdown(&run_cases())`.
//!
//! Each case names its public source and the published figure as the source
//! prints it, the configuration kvsim ran, and a tolerance. A case that misses
//! its target stays in the table as a miss, with its error: the point of the
//! file is to say where the model stands, not to pass.

mod cases;
mod disagg;
mod fit;
mod held_out;
mod render;
mod throughput;
mod tiers;

pub use cases::{Validation, run_cases};
pub use fit::{Fitted, LeaveOneOut};
pub use held_out::{HELD_OUT_CSV, HeldOutRow, held_out_csv, held_out_rows};
pub use render::{Headline, headline, missed, render_markdown};

/// The catalog GPU and model a case ran (`None` for arithmetic rows that run
/// nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct RanOn {
    /// Catalog GPU name.
    pub gpu: String,
    /// Catalog model name.
    pub model: String,
    /// GPUs per replica.
    pub tp: u32,
}

/// What `s` ran on.
pub(crate) fn ran_on(s: &crate::scenario::Scenario) -> Option<RanOn> {
    Some(RanOn {
        gpu: s.deployment.gpu.name.clone(),
        model: s.model.name.clone(),
        tp: s.deployment.tp,
    })
}

/// What a row is for, which decides whether it counts toward accuracy.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// An identity or exact formula (KV bytes, a capacity ratio): it checks
    /// the arithmetic, cannot measure accuracy, and is listed, not scored.
    Arithmetic,
    /// A row some default was fitted to: it names the defaults, and is
    /// evidence of nothing.
    Calibration(&'static [&'static str]),
    /// A row no fit used: only these measure accuracy.
    HeldOut,
}

/// How close kvsim's figure must be to the published one.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Tolerance {
    /// Equal (to 1e-9 relative: the figures are integers held in `f64`).
    Exact,
    /// `|kvsim - published| / |published| <= r`.
    Relative(f64),
    /// `|kvsim - published| <= a`, in the case's unit (e.g. percentage points).
    Absolute(f64),
}

impl Tolerance {
    /// The tolerance as the table prints it.
    pub fn label(&self) -> String {
        match *self {
            Tolerance::Exact => "exact".into(),
            Tolerance::Relative(r) => format!("±{} %", trim(r * 100.0)),
            Tolerance::Absolute(a) => format!("±{}", trim(a)),
        }
    }
}

/// A number without trailing zeros (`10`, `0.5`).
fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One validation case: a published figure and kvsim's figure for the same
/// configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    /// Stable identifier, e.g. `paged-fig2-max-internal`.
    pub id: &'static str,
    /// The table the case belongs to in `VALIDATION.md`.
    pub group: &'static str,
    /// Where the published figure comes from (paper section, page, URL).
    pub source: &'static str,
    /// The source's short name (one per document or benchmark), the unit the
    /// leave-one-source-out refits leave out.
    pub origin: &'static str,
    /// Whether the row is arithmetic, a calibration point or held out.
    pub role: Role,
    /// What kvsim ran: model, GPU, parallelism, lengths, load, policy.
    pub configuration: String,
    /// The catalog GPU and model it ran on (for `report.html`'s validation
    /// status, through `validation-held-out.csv`).
    pub ran_on: Option<RanOn>,
    /// What is compared.
    pub metric: &'static str,
    /// Unit of `published` and `kvsim`.
    pub unit: &'static str,
    /// The figure the source prints (converted to `unit` where noted).
    pub published: f64,
    /// kvsim's figure.
    pub kvsim: f64,
    /// The target the case is held to.
    pub tolerance: Tolerance,
    /// Caveats: derivations, assumptions, why a miss misses.
    pub note: String,
}

impl CaseResult {
    /// The error in the tolerance's terms: relative (a fraction, signed:
    /// positive when kvsim is higher) for [`Tolerance::Exact`] and
    /// [`Tolerance::Relative`], absolute (signed, in `unit`) for
    /// [`Tolerance::Absolute`].
    pub fn error(&self) -> f64 {
        match self.tolerance {
            Tolerance::Absolute(_) => self.kvsim - self.published,
            Tolerance::Exact | Tolerance::Relative(_) => {
                if self.published == 0.0 {
                    if self.kvsim == 0.0 {
                        0.0
                    } else {
                        f64::INFINITY
                    }
                } else {
                    (self.kvsim - self.published) / self.published.abs()
                }
            }
        }
    }

    /// Whether kvsim's figure meets the case's target.
    pub fn within(&self) -> bool {
        let e = self.error().abs();
        match self.tolerance {
            Tolerance::Exact => e <= 1e-9,
            Tolerance::Relative(r) => e <= r,
            Tolerance::Absolute(a) => e <= a,
        }
    }

    /// The error as the table prints it: `+3.1 %` or `-4.2 pp`-style.
    pub fn error_label(&self) -> String {
        let e = self.error();
        match self.tolerance {
            Tolerance::Absolute(_) => format!("{e:+.1}"),
            Tolerance::Exact if e == 0.0 => "0".into(),
            _ => format!("{:+.1} %", e * 100.0),
        }
    }
}

#[cfg(test)]
mod tests;
