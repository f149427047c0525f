//! Calibration: fitting the roofline's free coefficients to measured latencies.
//!
//! The roofline of [`crate::hardware::cost`] prices a step as
//! `step_overhead + layers * layer_overhead + t_linear + t_attention + comm`,
//! each kernel group taking `max(flops / (peak * tp * mfu), bytes / (bw * tp *
//! mbu))` of its own FLOPs and bytes. The datasheet gives `peak` and `bw`;
//! `mbu`, `mfu` and `step_overhead_s` are the GPU's defaults until
//! measurements of a real server replace them. [`fit`] finds the three values
//! that minimize the sum of squared relative errors between predicted and
//! measured step times (the all-reduce latency and the per-layer cost stay at
//! the deployment's values: for one model the per-layer cost is a constant
//! per step that the step overhead absorbs), and [`Fit::to_toml`] writes them as a
//! calibration file that [`read_calibration`] reads back.
//!
//! # Measurement files
//!
//! CSV with a header; the format is told by the header. Blank lines and lines
//! starting with `#` are skipped, extra columns are ignored, and every error
//! names the file, the line and the column.
//!
//! **Step latencies** (`batch,context_tokens,prefill_tokens,step_s`), one
//! engine step a row, e.g. from a profiler trace of the model's forward pass:
//!
//! | column | meaning |
//! |---|---|
//! | `batch` | sequences decoding one token each in the step (may be 0 for a pure prefill step) |
//! | `context_tokens` | **mean** context per decoding sequence, tokens (prompt plus tokens generated so far; decimals are rounded) |
//! | `prefill_tokens` | prompt tokens computed in the step (0 for a pure decode step) |
//! | `step_s` | measured step time, seconds (> 0) |
//! | `prefill_seqs` | optional: prompts the prefill tokens are split between, evenly, each from an empty cache (default 1 when `prefill_tokens > 0`) |
//!
//! **Per-request benchmark results** (`prompt_tokens,output_tokens,ttft_s,tpot_s`,
//! optional `concurrency`, default 1), one request a row: what
//! `vllm bench serve` / `benchmark_serving.py --save-detailed` report per
//! request (`input_lens`, `output_lens`, `ttfts`, and
//! `tpot = (latency - ttft) / (output_len - 1)`), at a fixed
//! `--max-concurrency`. Each row gives two step measurements:
//!
//! - TTFT is taken as one step prefilling the whole prompt alongside
//!   `concurrency - 1` decoding sequences at the mean context below. Queueing,
//!   chunked prefill and network time are ignored, so use runs where requests
//!   do not wait (concurrency 1 is exact apart from those).
//! - TPOT (rows with `output_tokens >= 2`; otherwise `tpot_s` is not read) is
//!   taken as one decode step of `concurrency` sequences at the request's mean
//!   context `prompt_tokens + output_tokens / 2`. Within one regime step time is
//!   linear in context, so the mean context gives the mean step time; the
//!   prefills of other requests that interrupt the decode at concurrency > 1
//!   are ignored, which biases TPOT-derived coefficients slightly slow.
//!
//! Latencies must be finite and > 0; counts are whole numbers >= 0.
//!
//! # Calibration files
//!
//! ```toml
//! # kvsim calibration: fitted from 400 measurements of llama-3.1-8b on h100-sxm (tp 1) by kvsim calibrate
//! mbu = 0.7312
//! mfu = 0.5123
//! step_overhead_s = 0.001410
//! ```
//!
//! `mbu` and `mfu` are in (0, 1], `step_overhead_s` >= 0 (seconds); no other
//! keys are allowed.

mod input;
mod solve;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cache::KvLayout;
use crate::error::{Error, SpecError};
use crate::hardware::budget::kv_layout;
use crate::hardware::cost::{RooflineCost, StepWork};
use crate::hardware::{Deployment, Efficiency};
use crate::model::{Dtype, Model};
use crate::ranges;

pub use input::{parse_measurements, read_measurements};

use solve::{Coefficients, Point};

/// Where a [`Measurement`] came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MeasurementKind {
    /// A row of a step-latency file.
    Step,
    /// The time to first token of a per-request row.
    Ttft,
    /// The time per output token of a per-request row.
    Tpot,
}

impl fmt::Display for MeasurementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MeasurementKind::Step => "step",
            MeasurementKind::Ttft => "ttft",
            MeasurementKind::Tpot => "tpot",
        })
    }
}

/// One measured engine step: its shape and its time.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Sequences decoding one token each.
    pub batch: u32,
    /// Mean context of each decoding sequence, tokens (what its attention reads).
    pub context_tokens: u32,
    /// Prompt tokens computed in the step.
    pub prefill_tokens: u32,
    /// Prompts the prefill tokens are split between, evenly, each starting from
    /// an empty cache (0 when `prefill_tokens` is 0).
    pub prefill_seqs: u32,
    /// Measured step time, seconds.
    pub step_s: f64,
    /// The 1-based line of the file it was read from (0 if built in code).
    pub line: u64,
    /// What the row measured.
    pub kind: MeasurementKind,
}

impl Measurement {
    /// The work of this step for a cache of `layout`, accounted as the engine
    /// does (`engine::Engine::launch_step`): each decoding sequence reads its
    /// attended context and scores one query against it, each prompt reads
    /// nothing earlier and scores its causal triangle, and every new token
    /// writes one token of KV.
    pub fn work(&self, layout: &KvLayout) -> StepWork {
        let flops = |p: u32, k: u32| layout.attention_flops(p, k);
        let batch = u64::from(self.batch);
        // A prompt needs a sequence to belong to, whatever `prefill_seqs` says.
        let seqs = self.prefill_seqs.max(u32::from(self.prefill_tokens > 0));
        let mut work = StepWork {
            decode_tokens: self.batch,
            prefill_tokens: self.prefill_tokens,
            prefill_seqs: seqs,
            kv_read_bytes: batch.saturating_mul(layout.attended_bytes(self.context_tokens)),
            attention_flops: batch.saturating_mul(flops(self.context_tokens, 1)),
            ..StepWork::default()
        };
        if let Some(chunk) = self.prefill_tokens.checked_div(seqs) {
            let longer = self.prefill_tokens % seqs;
            work.attention_flops = work
                .attention_flops
                .saturating_add(u64::from(longer).saturating_mul(flops(0, chunk + 1)))
                .saturating_add(u64::from(seqs - longer).saturating_mul(flops(0, chunk)));
        }
        work.kv_write_bytes = u64::from(work.tokens()) * layout.bytes_per_token();
        work
    }
}

/// Fitted coefficients, as a scenario's `[hardware.calibration]` table or a
/// calibration file holds them.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Model bandwidth utilization, in (0, 1].
    pub mbu: f64,
    /// Model FLOPs utilization, in (0, 1].
    pub mfu: f64,
    /// Fixed per-step cost, seconds, >= 0.
    pub step_overhead_s: f64,
}

impl Calibration {
    /// Checks every value's range; the error names the key.
    pub fn validate(&self) -> Result<(), SpecError> {
        for (key, v) in [("mbu", self.mbu), ("mfu", self.mfu)] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(SpecError::new(key, format!("{v} is not in (0, 1]")));
            }
        }
        let o = self.step_overhead_s;
        if !(o.is_finite() && o >= 0.0) {
            return Err(SpecError::new(
                "step_overhead_s",
                format!("{o} is not a finite number of seconds >= 0"),
            ));
        }
        Ok(())
    }

    /// `base` with this calibration's three coefficients (the all-reduce
    /// latency is kept).
    pub fn apply(&self, base: Efficiency) -> Efficiency {
        Efficiency {
            mbu: self.mbu,
            mfu: self.mfu,
            step_overhead_s: self.step_overhead_s,
            ..base
        }
    }
}

/// Reads and validates a calibration file. Errors are [`Error::Scenario`]
/// naming the file and the key (`mbu`, `mfu`, `step_overhead_s`, or the
/// unknown one).
pub fn read_calibration(path: &Path) -> Result<Calibration, Error> {
    let text = crate::input::read_small_text(
        path,
        crate::input::MAX_CALIBRATION_BYTES,
        "calibration file",
    )?;
    parse_calibration(&text, path)
}

/// [`read_calibration`] on text already read from `path` (`path` only names
/// the file in errors).
pub fn parse_calibration(text: &str, path: &Path) -> Result<Calibration, Error> {
    let err = |source: SpecError| Error::Scenario {
        path: path.to_path_buf(),
        source,
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(SpecError::new("", e.to_string().trim_end())))?;
    let calibration: Calibration = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| {
            let key = e.path().to_string();
            let message = e.into_inner().to_string();
            let message = message.trim_end();
            // Missing and unknown fields are reported at the table (path
            // "."); the key is in the message.
            let key = if key == "." {
                message
                    .split('`')
                    .nth(1)
                    .filter(|_| message.contains("field `"))
                    .unwrap_or_default()
                    .to_string()
            } else {
                key
            };
            let message = match message.rsplit_once('\n') {
                Some((head, tail)) if tail.starts_with("in `") => head,
                _ => message,
            };
            err(SpecError::new(key, crate::scenario::in_user_words(message)))
        })?;
    calibration.validate().map_err(err)?;
    Ok(calibration)
}

/// The result of [`fit`]: the coefficients and how well they explain the data.
///
/// Errors are relative (`|predicted - measured| / measured`), in percent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fit {
    /// Model name.
    pub model: String,
    /// GPU name.
    pub gpu: String,
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Fitted model bandwidth utilization, in (0, 1].
    pub mbu: f64,
    /// Fitted model FLOPs utilization, in (0, 1].
    pub mfu: f64,
    /// Fitted fixed per-step cost, seconds.
    pub step_overhead_s: f64,
    /// The coefficients before the fit (the deployment's efficiency).
    pub before: Efficiency,
    /// Measurements fitted.
    pub rows: usize,
    /// Measurements with a kernel group (linear layers or attention) the
    /// fitted roofline puts in the memory-bound regime; if 0, `mbu` is not
    /// determined by the data and stays near its start.
    pub memory_bound_rows: usize,
    /// Measurements with a kernel group in the compute-bound regime; if 0,
    /// `mfu` is not determined by the data and stays near its start. A
    /// large-batch decode step counts in both: compute-bound GEMMs beside
    /// attention bound by its KV reads.
    pub compute_bound_rows: usize,
    /// Mean absolute percentage error with the starting coefficients.
    pub mape_before: f64,
    /// Mean absolute percentage error with the fitted coefficients.
    pub mape_after: f64,
    /// Largest absolute percentage error with the starting coefficients.
    pub max_err_before: f64,
    /// Largest absolute percentage error with the fitted coefficients.
    pub max_err_after: f64,
    /// Line of the measurement with the largest error after the fit.
    pub worst_line: u64,
}

impl Fit {
    /// The fitted coefficients.
    pub fn calibration(&self) -> Calibration {
        Calibration {
            mbu: self.mbu,
            mfu: self.mfu,
            step_overhead_s: self.step_overhead_s,
        }
    }

    /// Whether the fit explains the measurements too poorly to use: a mean
    /// error above [`POOR_FIT_MAPE`] percent after fitting means the
    /// roofline does not describe this server (or the rows mix setups), and
    /// its coefficients would mislead.
    pub fn is_poor(&self) -> bool {
        self.mape_after > POOR_FIT_MAPE
    }

    /// Warnings about coefficients the data did not determine.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.compute_bound_rows == 0 {
            w.push(format!(
                "no measurement is compute-bound: mfu is not determined and stays at {:.4}; \
                 add long prefills (thousands of prompt tokens) or large-batch decode steps",
                self.mfu
            ));
        }
        if self.memory_bound_rows == 0 {
            w.push(format!(
                "no measurement is memory-bound: mbu is not determined and stays at {:.4}; \
                 add decode steps",
                self.mbu
            ));
        }
        w
    }

    /// The calibration file: a comment saying where it came from, then the
    /// three keys with four significant digits.
    pub fn to_toml(&self) -> String {
        format!(
            "# kvsim calibration: fitted from {} measurements of {} on {} (tp {}) by kvsim calibrate\n\
             # mean abs error {:.1} % before (mbu {}, mfu {}, step_overhead_s {}), {:.1} % after; \
             max {:.1} % before, {:.1} % after\n\
             mbu = {}\nmfu = {}\nstep_overhead_s = {}\n",
            self.rows,
            self.model,
            self.gpu,
            self.tp,
            self.mape_before,
            self.before.mbu,
            self.before.mfu,
            self.before.step_overhead_s,
            self.mape_after,
            self.max_err_before,
            self.max_err_after,
            significant(self.mbu),
            significant(self.mfu),
            significant(self.step_overhead_s),
        )
    }
}

/// The mean absolute percentage error above which a fit is refused unless
/// the user insists (`kvsim calibrate --allow-poor-fit`): synthetic rows
/// with +-3 % noise fit to about 1.5 %, real servers' rows to a few percent.
pub const POOR_FIT_MAPE: f64 = 20.0;

/// `v` with four significant digits as a TOML float (always with a point).
fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0.0".into();
    }
    let decimals = (3 - v.abs().log10().floor() as i32).clamp(1, 17) as usize;
    format!("{v:.decimals$}")
}

/// Fits `mbu`, `mfu` and `step_overhead_s` of `model` on `deployment` to
/// `rows`, with a bf16 KV cache (see [`fit_with_kv_dtype`]).
pub fn fit(model: &Model, deployment: &Deployment, rows: &[Measurement]) -> Result<Fit, Error> {
    fit_with_kv_dtype(model, deployment, Dtype::Bf16, rows)
}

/// Fits `mbu`, `mfu` and `step_overhead_s` of `model` on `deployment`, whose
/// cache holds KV in `kv_dtype`, to `rows` by least squares on the relative
/// error. `deployment.efficiency` is the starting point, the "before" of the
/// reported errors, and the source of the all-reduce latency, which is not
/// fitted. Needs at least 3 measurements, each with a finite step time > 0
/// (an [`Error::Usage`] otherwise; [`read_measurements`] guarantees the
/// latter).
pub fn fit_with_kv_dtype(
    model: &Model,
    deployment: &Deployment,
    kv_dtype: Dtype,
    rows: &[Measurement],
) -> Result<Fit, Error> {
    if rows.len() < 3 {
        return Err(Error::Usage(format!(
            "calibration needs at least 3 measurements to fit 3 coefficients, got {}",
            rows.len()
        )));
    }
    if let Some(bad) = rows
        .iter()
        .find(|m| !(m.step_s.is_finite() && m.step_s > 0.0))
    {
        return Err(Error::Usage(format!(
            "measurement of line {} ({}): step time {} s is not finite and > 0",
            bad.line, bad.kind, bad.step_s
        )));
    }
    // A context the model cannot hold was not measured on this model.
    if let Some(bad) = rows.iter().find(|m| {
        let chunk = m.prefill_tokens.div_ceil(m.prefill_seqs.max(1));
        m.context_tokens.max(chunk) > model.max_model_len
    }) {
        return Err(Error::Usage(format!(
            "measurement of line {} ({}): context_tokens {} / prefill_tokens {} exceed {}'s \
             max_model_len ({}); was it measured on another model?",
            bad.line,
            bad.kind,
            bad.context_tokens,
            bad.prefill_tokens,
            model.name,
            model.max_model_len
        )));
    }
    let before = deployment.efficiency;
    let unit = Efficiency {
        mbu: 1.0,
        mfu: 1.0,
        step_overhead_s: 0.0,
        ..before
    };
    let roofline = RooflineCost::new(model, deployment, &unit);
    let layout = kv_layout(model, kv_dtype, deployment.tp, None);
    // The per-layer cost is held at the GPU's default: for one model it is a
    // constant per step, indistinguishable from step_overhead_s, so the fit
    // attributes the rest of the fixed time to the step.
    let layer_fixed_s = f64::from(model.layers) * before.layer_overhead_s;
    let points: Vec<Point> = rows
        .iter()
        .map(|m| {
            let parts = roofline.parts(&m.work(&layout));
            Point {
                y: m.step_s,
                linear: parts.linear,
                attention: parts.attention,
                comm: parts.comm + layer_fixed_s,
            }
        })
        .collect();
    refuse_impossible_rows(model, deployment, rows, &points, &layout, layer_fixed_s)?;
    let start = Coefficients {
        overhead_s: before.step_overhead_s.max(0.0),
        inv_mbu: 1.0 / before.mbu.clamp(1e-6, 1.0),
        inv_mfu: 1.0 / before.mfu.clamp(1e-6, 1.0),
    };
    let fitted = solve::solve(&points, start);
    let (mape_before, max_err_before, _) = errors(&points, rows, &start);
    let (mape_after, max_err_after, worst_line) = errors(&points, rows, &fitted);
    let step_overhead_s = fitted.overhead_s.max(0.0);
    if step_overhead_s > ranges::STEP_OVERHEAD_S.hi {
        return Err(Error::Usage(format!(
            "the fit puts {step_overhead_s:.3} s of fixed cost on every step, outside the \
             physical range of step_overhead_s {}: the measurements are not steps of {} on \
             {} x {} (were they end-to-end request latencies in the step-latency format?)",
            ranges::STEP_OVERHEAD_S.interval(),
            model.name,
            deployment.tp,
            deployment.gpu.name
        )));
    }
    let with = |memory: bool| {
        points
            .iter()
            .filter(|p| {
                [p.linear, p.attention].iter().any(|g| {
                    (g.compute > 0.0 || g.memory > 0.0) && fitted.memory_bound(g) == memory
                })
            })
            .count()
    };
    let (memory_bound_rows, compute_bound_rows) = (with(true), with(false));
    Ok(Fit {
        model: model.name.clone(),
        gpu: deployment.gpu.name.clone(),
        tp: deployment.tp,
        mbu: 1.0 / fitted.inv_mbu,
        mfu: 1.0 / fitted.inv_mfu,
        step_overhead_s,
        before,
        rows: rows.len(),
        memory_bound_rows,
        compute_bound_rows,
        mape_before,
        mape_after,
        max_err_before,
        max_err_after,
        worst_line,
    })
}

/// Measurements no server could have produced on this deployment are an
/// error naming their lines (at most five): a step faster than the roofline
/// at the datasheet's peaks (mbu or mfu would exceed 1), or a batch whose KV
/// cache alone exceeds the GPUs' memory. Such rows come from another GPU,
/// model or tensor parallelism, or from a unit slip; fitting them would
/// write coefficients no hardware has.
fn refuse_impossible_rows(
    model: &Model,
    deployment: &Deployment,
    rows: &[Measurement],
    points: &[Point],
    layout: &KvLayout,
    layer_fixed_s: f64,
) -> Result<(), Error> {
    const SHOWN: usize = 5;
    let listed = |lines: &[String]| {
        let more = if lines.len() > SHOWN { "; ..." } else { "" };
        format!("{}{more}", lines[..lines.len().min(SHOWN)].join("; "))
    };
    let setup = format!(
        "{} on {} x {}",
        model.name, deployment.tp, deployment.gpu.name
    );
    let gib = crate::units::GIB as f64;
    let vram = deployment.gpu.vram_bytes as f64;
    let too_big: Vec<String> = rows
        .iter()
        .filter_map(|m| {
            let per_gpu = m.work(layout).kv_read_bytes as f64 / f64::from(deployment.tp);
            (per_gpu > vram).then(|| {
                format!(
                    "line {} ({}): {} sequences at {} tokens hold {:.1} GiB of KV per GPU",
                    m.line,
                    m.kind,
                    m.batch,
                    m.context_tokens,
                    per_gpu / gib
                )
            })
        })
        .collect();
    if !too_big.is_empty() {
        return Err(Error::Usage(format!(
            "{} more KV memory than {setup} has ({:.1} GiB per GPU): {}",
            count(too_big.len(), "measurement needs", "measurements need"),
            vram / gib,
            listed(&too_big)
        )));
    }
    // The floor: every kernel at the datasheet's peaks, the all-reduces,
    // and no fixed cost at all (not even the per-layer one).
    let fast: Vec<String> = points
        .iter()
        .zip(rows)
        .filter_map(|(p, m)| {
            let floor = p.linear.time() + p.attention.time() + (p.comm - layer_fixed_s);
            (p.y < floor).then(|| {
                format!(
                    "line {} ({}): {:.4} ms, but at least {:.4} ms",
                    m.line,
                    m.kind,
                    p.y * 1e3,
                    floor * 1e3
                )
            })
        })
        .collect();
    if !fast.is_empty() {
        return Err(Error::Usage(format!(
            "{} faster than {setup} can run at its datasheet peaks (mbu or mfu would exceed 1): \
             {}; were they measured on another GPU, model or tensor parallelism, or in other \
             units than seconds?",
            count(fast.len(), "measurement is", "measurements are"),
            listed(&fast)
        )));
    }
    Ok(())
}

/// `1 measurement is`, `3 measurements are`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Mean and largest absolute percentage error of `c` over `points`, and the
/// line of the largest.
fn errors(points: &[Point], rows: &[Measurement], c: &Coefficients) -> (f64, f64, u64) {
    let mut sum = 0.0;
    let (mut max, mut line) = (0.0, 0);
    for (p, m) in points.iter().zip(rows) {
        let e = 100.0 * (c.predict(p) - p.y).abs() / p.y;
        sum += e;
        if e > max {
            (max, line) = (e, m.line);
        }
    }
    (sum / points.len() as f64, max, line)
}
