//! The tables of a scenario file that configure a command rather than the
//! simulation: `[check]` (tolerances of `kvsim check`) and `[plan]` (the load,
//! candidates and search knobs of `kvsim plan`). They live here, with the rest
//! of the file's spec types, so that reading a scenario does not depend on the
//! commands; [`crate::check`] and [`crate::plan`] re-export them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::SpecError;
use crate::metrics::directions::{COUNTS, better, toleranced_metrics};

/// Default relative tolerance for non-count metrics: the simulator is
/// deterministic, so anything beyond float noise on the same platform is a
/// change in the model or the code; 1 % leaves room for other platforms' libm.
pub const DEFAULT_RTOL: f64 = 0.01;

/// Largest tolerance accepted. The change is measured as |fresh - baseline| /
/// max(|fresh|, |baseline|), which is at most 1 unless the sign flips, so a
/// tolerance of 1 already forgives every move of a positive metric; a larger
/// one is a typo (5 for 5 %), not a wish.
pub const MAX_RTOL: f64 = 1.0;

/// Checks that `v` is a usable relative tolerance; the reason otherwise.
pub fn rtol_in_range(v: f64) -> Result<f64, String> {
    if v.is_finite() && (0.0..=MAX_RTOL).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "must be a relative tolerance in [0, {MAX_RTOL}] (0.05 is 5 %), got {}",
            crate::ranges::number(v)
        ))
    }
}

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

impl CheckSpec {
    /// Refuses tolerances out of range and metric names a sweep does not
    /// write (a misspelt name would otherwise be silently ignored).
    pub fn validate(&self) -> Result<(), SpecError> {
        if let Some(r) = self.rtol {
            rtol_in_range(r).map_err(|reason| SpecError::new("check.rtol", reason))?;
        }
        for (metric, r) in &self.rtol_by_metric {
            let key = format!("check.rtol_by_metric.{metric}");
            if COUNTS.contains(&metric.as_str()) {
                return Err(SpecError::new(
                    key,
                    format!(
                        "`{metric}` is a count, compared exactly: a tolerance does not apply; \
                         metrics that take one: {}",
                        toleranced_metrics().join(", ")
                    ),
                ));
            }
            if better(metric).is_none() {
                return Err(SpecError::new(
                    key,
                    format!(
                        "unknown metric `{metric}`; known metrics: {} (counts, compared \
                         exactly: {})",
                        toleranced_metrics().join(", "),
                        COUNTS.join(", ")
                    ),
                ));
            }
            rtol_in_range(*r).map_err(|reason| SpecError::new(key, reason))?;
        }
        Ok(())
    }
}

/// `[plan]`: what load to plan for, the candidates and the search's knobs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// Arrival rate the whole deployment must serve, requests per second, with
    /// the scenario's traffic shape (lengths, burstiness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// Highest acceptable OOM rate (default 0: no request may fail for memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_rate: Option<f64>,
    /// Runs per probe, on the sweep's replicate seeds (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicates: Option<u32>,
    /// Bisection stops when the bracket is narrower than this fraction of its
    /// lower end (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
    /// First rate probed, requests per second (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_rate: Option<f64>,
    /// Highest rate probed; a candidate that passes there is reported as
    /// sustaining at least this much (default 1e5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<f64>,
    /// Candidate axes, `"dotted.key" = [values]`: their cartesian product, as
    /// in `[sweep]` (empty: the scenario itself is the only candidate).
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub candidates: toml::Table,
    /// USD per GPU-hour by catalog GPU name, overriding the catalog's price.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prices: BTreeMap<String, f64>,
    /// Search prefill/decode disaggregated deployments (every xPyD split of
    /// `gpus` GPUs over the `tp` degrees) against colocated ones of the same
    /// GPU count (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disaggregated: Option<bool>,
    /// GPUs of every deployment a disaggregated plan compares (default: the
    /// scenario's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// Tensor-parallel degrees a disaggregated plan tries in each pool and
    /// for colocated replicas (default [1, 2, 4, 8]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tp: Option<Vec<u32>>,
    /// The input/output length ratios of `kvsim plan --crossover`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossover: Option<CrossoverSpec>,
}

/// `[plan.crossover]`: the ratios `kvsim plan --crossover` compares colocated
/// and disaggregated serving at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossoverSpec {
    /// Mean prompt plus mean output tokens of a request at every ratio
    /// (default: the scenario's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<f64>,
    /// Input:output length ratios, `"1:8"` to `"32:1"` (default: the powers
    /// of two from 1:8 to 32:1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratios: Option<Vec<String>>,
}
