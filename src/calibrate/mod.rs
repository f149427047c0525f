//! Calibration: fit the roofline's free coefficients (`mbu`, `mfu`,
//! `step_overhead_s`) to measured latencies by least squares.
//!
//! # Accepted measurements (CSV with a header; the header picks the format)
//!
//! * **Engine steps**: `batch,context_tokens,prefill_tokens,step_s`: one
//!   engine step in which `batch` sequences decode one token each, attending
//!   to `context_tokens` tokens on average, plus `prefill_tokens` prompt tokens
//!   of one new sequence; `step_s` its measured duration in seconds.
//! * **Requests** (what vLLM's `benchmark_serving.py` / `vllm bench serve`
//!   per-request results convert to): `prompt_tokens,output_tokens,ttft_s,tpot_s`
//!   with an optional `concurrency` column (default 1). Each row gives two
//!   steps: TTFT is taken as the prefill of the prompt (queueing ignored: use
//!   low-concurrency runs), TPOT as a decode step of `concurrency` sequences at
//!   the mean context `prompt + output / 2`.
//!
//! # The fit
//!
//! A step costs `overhead + max(M / mbu, F / mfu) + comm`, where `M` and `F`
//! are its memory and compute times at 100 % efficiency (the roofline's own
//! [`RooflineCost::components`]) and `comm` its fixed all-reduce time. For a
//! given assignment of each step to its bound (memory or compute) the time is
//! linear in `(overhead, 1/mbu, 1/mfu)`: solve that by least squares on the
//! relative error, reassign, repeat until the assignment is stable. Starting
//! points: the GPU's defaults and a small grid; the best fit wins.
//! Deterministic.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cache::KvLayout;
use crate::error::{Error, SpecError};
use crate::hardware::budget::kv_layout;
use crate::hardware::cost::{RooflineCost, StepWork};
use crate::hardware::{Deployment, Efficiency};
use crate::model::Model;
use crate::scheduler::attention_pairs;

/// A fitted (or hand-written) set of efficiency coefficients: the contents of a
/// calibration file, included by a scenario as `[hardware] calibration`.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Model bandwidth utilization, in (0, 1].
    pub mbu: f64,
    /// Model FLOPs utilization, in (0, 1].
    pub mfu: f64,
    /// Fixed per-step cost, seconds.
    pub step_overhead_s: f64,
}

impl Calibration {
    /// Checks every value, naming the key of a bad one.
    pub fn validate(&self) -> Result<(), SpecError> {
        for (key, v) in [("mbu", self.mbu), ("mfu", self.mfu)] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(SpecError::new(key, format!("must be in (0, 1], got {v}")));
            }
        }
        if !(self.step_overhead_s.is_finite() && self.step_overhead_s >= 0.0) {
            return Err(SpecError::new(
                "step_overhead_s",
                format!("must be a finite number >= 0, got {}", self.step_overhead_s),
            ));
        }
        Ok(())
    }
}

/// Reads and validates a calibration file.
pub fn read_calibration(path: &Path) -> Result<Calibration, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |source: SpecError| Error::Scenario {
        path: path.to_path_buf(),
        source,
    };
    let c: Calibration =
        toml::from_str(&text).map_err(|e| bad(SpecError::new("", e.to_string().trim_end())))?;
    c.validate().map_err(bad)?;
    Ok(c)
}

/// One measured engine step.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Sequences decoding one token each.
    pub batch: u32,
    /// Mean tokens each decoding sequence attends to.
    pub context_tokens: u32,
    /// Prompt tokens of one new sequence in the step.
    pub prefill_tokens: u32,
    /// Measured duration, seconds.
    pub step_s: f64,
}

/// Reads measurements in either accepted format (see the module docs).
pub fn read_measurements(path: &Path) -> Result<Vec<Measurement>, Error> {
    let err = |line: Option<u64>, reason: String| Error::DataFile {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| err(None, e.to_string()))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| err(Some(1), e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let steps = ["batch", "context_tokens", "prefill_tokens", "step_s"];
    let requests = ["prompt_tokens", "output_tokens", "ttft_s", "tpot_s"];
    let is_steps = steps.iter().all(|c| col(c).is_some());
    let is_requests = requests.iter().all(|c| col(c).is_some());
    if !is_steps && !is_requests {
        return Err(err(
            Some(1),
            format!(
                "expected the columns {} (engine steps) or {} (requests); found {}",
                steps.join(","),
                requests.join(","),
                header.join(",")
            ),
        ));
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| err(Some(line), e.to_string()))?;
        let cell = |name: &str| -> Result<f64, Error> {
            let c = col(name).expect("checked above");
            let raw = rec.get(c).unwrap_or("");
            raw.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    err(
                        Some(line),
                        format!("column `{name}`: `{raw}` is not a number >= 0"),
                    )
                })
        };
        let tokens = |name: &str| -> Result<u32, Error> {
            let v = cell(name)?;
            if v.fract() != 0.0 || v > f64::from(u32::MAX) {
                return Err(err(
                    Some(line),
                    format!("column `{name}`: `{v}` is not a token count"),
                ));
            }
            Ok(v as u32)
        };
        let latency = |name: &str| -> Result<f64, Error> {
            let v = cell(name)?;
            if v <= 0.0 {
                return Err(err(
                    Some(line),
                    format!("column `{name}`: a latency must be positive"),
                ));
            }
            Ok(v)
        };
        if is_steps {
            let m = Measurement {
                batch: tokens("batch")?,
                context_tokens: tokens("context_tokens")?,
                prefill_tokens: tokens("prefill_tokens")?,
                step_s: latency("step_s")?,
            };
            if m.batch == 0 && m.prefill_tokens == 0 {
                return Err(err(
                    Some(line),
                    "an empty step (batch 0, no prefill) has nothing to time".into(),
                ));
            }
            out.push(m);
        } else {
            let prompt = tokens("prompt_tokens")?.max(1);
            let output = tokens("output_tokens")?;
            let concurrency = match col("concurrency") {
                Some(_) => tokens("concurrency")?.max(1),
                None => 1,
            };
            out.push(Measurement {
                batch: 0,
                context_tokens: 0,
                prefill_tokens: prompt,
                step_s: latency("ttft_s")?,
            });
            out.push(Measurement {
                batch: concurrency,
                context_tokens: prompt + output / 2,
                prefill_tokens: 0,
                step_s: latency("tpot_s")?,
            });
        }
    }
    if out.is_empty() {
        return Err(err(None, "no measurements".into()));
    }
    Ok(out)
}

/// The work of a measured step, priced as the engine prices its steps.
pub fn step_work(layout: &KvLayout, m: &Measurement) -> StepWork {
    let pairs = |p: u32, k: u32| -> u64 {
        layout
            .groups
            .iter()
            .map(|g| u64::from(g.layers) * attention_pairs(p, k, g.window))
            .sum()
    };
    let decode = u64::from(m.batch);
    let work = StepWork {
        decode_tokens: m.batch,
        prefill_tokens: m.prefill_tokens,
        prefill_seqs: u32::from(m.prefill_tokens > 0),
        kv_read_bytes: decode * layout.attended_bytes(m.context_tokens),
        kv_write_bytes: 0,
        attention_layer_pairs: decode * pairs(m.context_tokens, 1) + pairs(0, m.prefill_tokens),
        swap_bytes: 0,
    };
    StepWork {
        kv_write_bytes: u64::from(work.tokens()) * layout.bytes_per_token(),
        ..work
    }
}

/// The result of a fit.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// The fitted coefficients.
    pub calibration: Calibration,
    /// Measurements used.
    pub rows: usize,
    /// Mean absolute relative error with the GPU's default coefficients.
    pub mape_before: f64,
    /// Mean absolute relative error with the fitted coefficients.
    pub mape_after: f64,
    /// Largest absolute relative error before.
    pub max_err_before: f64,
    /// Largest absolute relative error after.
    pub max_err_after: f64,
}

impl Fit {
    /// The calibration file a scenario includes as `[hardware] calibration`.
    pub fn to_toml(&self, model: &Model, deployment: &Deployment) -> String {
        let c = &self.calibration;
        format!(
            "# kvsim calibration: fitted from {} measurements of {} on {} (tp {}) by kvsim calibrate.\n\
             # Mean absolute error {:.1} % with the defaults, {:.1} % fitted.\n\
             mbu = {}\nmfu = {}\nstep_overhead_s = {}\n",
            self.rows,
            model.name,
            deployment.gpu.name,
            deployment.tp,
            self.mape_before * 100.0,
            self.mape_after * 100.0,
            c.mbu,
            c.mfu,
            c.step_overhead_s
        )
    }
}

/// Per-measurement (memory time at mbu 1, compute time at mfu 1, fixed time).
fn unit_times(
    model: &Model,
    deployment: &Deployment,
    rows: &[Measurement],
) -> Vec<(f64, f64, f64, f64)> {
    let unit = Efficiency {
        mbu: 1.0,
        mfu: 1.0,
        step_overhead_s: 0.0,
        ..deployment.efficiency
    };
    let cost = RooflineCost::new(model, deployment, &unit);
    let layout = kv_layout(model, crate::model::Dtype::Bf16, deployment.tp, None);
    rows.iter()
        .map(|m| {
            let (compute, memory, comm) = cost.components(&step_work(&layout, m));
            (memory, compute, comm, m.step_s)
        })
        .collect()
}

fn predict(x: &[f64; 3], (mem, comp, comm, _): (f64, f64, f64, f64)) -> f64 {
    x[0] + (x[1] * mem).max(x[2] * comp) + comm
}

fn errors(x: &[f64; 3], data: &[(f64, f64, f64, f64)]) -> (f64, f64) {
    let rel: Vec<f64> = data
        .iter()
        .map(|&d| (predict(x, d) - d.3).abs() / d.3)
        .collect();
    (
        rel.iter().sum::<f64>() / rel.len() as f64,
        rel.iter().cloned().fold(0.0, f64::max),
    )
}

/// Solves the 3x3 system `a x = b` (Gaussian elimination with pivoting);
/// `None` if singular.
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    for i in 0..3 {
        let p = (i..3).max_by(|&r, &s| a[r][i].abs().total_cmp(&a[s][i].abs()))?;
        if a[p][i].abs() < 1e-300 {
            return None;
        }
        a.swap(i, p);
        b.swap(i, p);
        let pivot = a[i];
        for r in i + 1..3 {
            let f = a[r][i] / pivot[i];
            for (x, p) in a[r].iter_mut().zip(pivot).skip(i) {
                *x -= f * p;
            }
            b[r] -= f * b[i];
        }
    }
    let mut x = [0.0; 3];
    for i in (0..3).rev() {
        x[i] = (b[i] - (i + 1..3).map(|c| a[i][c] * x[c]).sum::<f64>()) / a[i][i];
    }
    Some(x)
}

/// Alternating least squares from `x` (overhead, 1/mbu, 1/mfu).
fn refine(mut x: [f64; 3], data: &[(f64, f64, f64, f64)]) -> [f64; 3] {
    for _ in 0..100 {
        // Each step's features under its current bound, weighted by 1/t so the
        // residual is relative.
        let mut ata = [[0.0; 3]; 3];
        let mut atb = [0.0; 3];
        for &(mem, comp, comm, t) in data {
            let memory_bound = x[1] * mem >= x[2] * comp;
            let f = if memory_bound {
                [1.0, mem, 0.0]
            } else {
                [1.0, 0.0, comp]
            };
            let w = 1.0 / (t * t);
            for r in 0..3 {
                for c in 0..3 {
                    ata[r][c] += w * f[r] * f[c];
                }
                atb[r] += w * f[r] * (t - comm);
            }
        }
        // A bound no step is in leaves its coefficient where it is.
        for k in 1..3 {
            if ata[k][k] == 0.0 {
                ata[k] = [0.0; 3];
                ata[k][k] = 1.0;
                atb[k] = x[k];
            }
        }
        let Some(mut next) = solve3(ata, atb) else {
            break;
        };
        // Physical bounds: efficiencies at most 1, overhead not negative.
        next[0] = next[0].max(0.0);
        next[1] = next[1].max(1.0);
        next[2] = next[2].max(1.0);
        let moved = (0..3)
            .map(|k| (next[k] - x[k]).abs() / x[k].abs().max(1e-12))
            .fold(0.0, f64::max);
        x = next;
        if moved < 1e-12 {
            break;
        }
    }
    x
}

/// Fits `mbu`, `mfu` and `step_overhead_s` of `deployment` (its all-reduce
/// latency is kept) to `rows` measured on `model`.
pub fn fit(model: &Model, deployment: &Deployment, rows: &[Measurement]) -> Result<Fit, Error> {
    if rows.is_empty() {
        return Err(Error::Usage("no measurements to fit".into()));
    }
    let data = unit_times(model, deployment, rows);
    let e = deployment.efficiency;
    let defaults = [e.step_overhead_s, 1.0 / e.mbu, 1.0 / e.mfu];
    let mut starts = vec![defaults];
    for overhead in [0.0, 0.002, 0.01] {
        for mbu in [0.3, 0.6, 0.9] {
            for mfu in [0.2, 0.5, 0.8] {
                starts.push([overhead, 1.0 / mbu, 1.0 / mfu]);
            }
        }
    }
    let best = starts
        .into_iter()
        .map(|s| refine(s, &data))
        .min_by(|a, b| {
            let sse = |x: &[f64; 3]| {
                data.iter()
                    .map(|&d| ((predict(x, d) - d.3) / d.3).powi(2))
                    .sum::<f64>()
            };
            sse(a).total_cmp(&sse(b))
        })
        .expect("there are starting points");
    let (mape_before, max_err_before) = errors(&defaults, &data);
    let (mape_after, max_err_after) = errors(&best, &data);
    Ok(Fit {
        calibration: Calibration {
            mbu: 1.0 / best[1],
            mfu: 1.0 / best[2],
            step_overhead_s: best[0],
        },
        rows: rows.len(),
        mape_before,
        mape_after,
        max_err_before,
        max_err_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use crate::hardware::cost::CostModel;
    use rand::{RngExt, SeedableRng};

    fn deployment(eff: Efficiency) -> Deployment {
        let gpu = catalog::gpu("h100-sxm").unwrap();
        Deployment {
            gpu,
            tp: 1,
            replicas: 1,
            memory_utilization: 0.9,
            efficiency: eff,
        }
    }

    /// Steps timed by kvsim's own roofline with known coefficients, optionally
    /// with deterministic multiplicative noise.
    fn synthetic(noise: f64) -> (Model, Vec<Measurement>) {
        let model = catalog::model("llama-3.1-8b").unwrap();
        let truth = Efficiency {
            mbu: 0.62,
            mfu: 0.47,
            step_overhead_s: 0.0023,
            allreduce_latency_s: 10e-6,
        };
        let d = deployment(truth);
        let cost = RooflineCost::new(&model, &d, &truth);
        let layout = kv_layout(&model, crate::model::Dtype::Bf16, 1, None);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut rows = Vec::new();
        for batch in [1, 4, 16, 64, 256] {
            for context in [100, 1000, 8000] {
                for prefill in [0, 512, 8192] {
                    let mut m = Measurement {
                        batch,
                        context_tokens: context,
                        prefill_tokens: prefill,
                        step_s: 0.0,
                    };
                    let t = cost.step_time(&step_work(&layout, &m)).as_secs_f64();
                    m.step_s = t * (1.0 + noise * (rng.random::<f64>() * 2.0 - 1.0));
                    rows.push(m);
                }
            }
        }
        (model, rows)
    }

    #[test]
    fn recovers_known_coefficients_from_exact_data() {
        let (model, rows) = synthetic(0.0);
        let d = deployment(catalog::gpu("h100-sxm").unwrap().efficiency);
        let f = fit(&model, &d, &rows).unwrap();
        let c = f.calibration;
        assert!((c.mbu - 0.62).abs() / 0.62 < 0.01, "{c:?}");
        assert!((c.mfu - 0.47).abs() / 0.47 < 0.01, "{c:?}");
        assert!((c.step_overhead_s - 0.0023).abs() / 0.0023 < 0.01, "{c:?}");
        assert!(f.mape_after < 1e-6 && f.mape_before > 0.05, "{f:?}");
    }

    #[test]
    fn recovers_them_within_a_few_percent_through_noise() {
        let (model, rows) = synthetic(0.03);
        let d = deployment(catalog::gpu("h100-sxm").unwrap().efficiency);
        let c = fit(&model, &d, &rows).unwrap().calibration;
        assert!((c.mbu - 0.62).abs() / 0.62 < 0.03, "{c:?}");
        assert!((c.mfu - 0.47).abs() / 0.47 < 0.05, "{c:?}");
        assert!((c.step_overhead_s - 0.0023).abs() / 0.0023 < 0.10, "{c:?}");
    }

    #[test]
    fn calibration_files_round_trip_and_bad_values_are_named() {
        let (model, rows) = synthetic(0.0);
        let d = deployment(catalog::gpu("h100-sxm").unwrap().efficiency);
        let f = fit(&model, &d, &rows).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cal.toml");
        std::fs::write(&p, f.to_toml(&model, &d)).unwrap();
        assert_eq!(read_calibration(&p).unwrap(), f.calibration);
        std::fs::write(&p, "mbu = 1.5\nmfu = 0.5\nstep_overhead_s = 0.001\n").unwrap();
        let e = read_calibration(&p).unwrap_err().to_string();
        assert!(e.contains("cal.toml") && e.contains("`mbu`"), "{e}");
    }

    #[test]
    fn measurement_files_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(
            &p,
            "prompt_tokens,output_tokens,ttft_s,tpot_s,concurrency\n512,128,0.05,0.008,4\n",
        )
        .unwrap();
        let rows = read_measurements(&p).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].prefill_tokens, rows[0].batch), (512, 0));
        assert_eq!((rows[1].batch, rows[1].context_tokens), (4, 576));
        std::fs::write(
            &p,
            "batch,context_tokens,prefill_tokens,step_s\n8,100,0,0.01\n8,abc,0,0.01\n",
        )
        .unwrap();
        let e = read_measurements(&p).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("context_tokens"), "{e}");
        std::fs::write(
            &p,
            "batch,context_tokens,prefill_tokens,step_s\n8,100,0,0\n",
        )
        .unwrap();
        assert!(
            read_measurements(&p)
                .unwrap_err()
                .to_string()
                .contains("positive")
        );
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        assert!(
            read_measurements(&p)
                .unwrap_err()
                .to_string()
                .contains("expected the columns")
        );
    }
}
