//! The efficiency defaults that were fitted to published rows, the fit
//! itself, and the leave-one-source-out refits that show how much each
//! source alone moves them.
//!
//! Catalog defaults are fitted to the calibration rows of
//! `VALIDATION.md` (every row whose role is [`super::Role::Calibration`]):
//!
//! - `A100.mbu`: the A100 entries' model bandwidth utilization;
//! - `HOPPER_SXM.mbu`: the Hopper entries' (H100 SXM, H200, and the H100
//!   PCIe and B200 entries that reuse it);
//! - `layer_overhead_s` and `step_overhead_s`: the fixed costs per layer and
//!   per step, shared by every GPU (kernel launch gaps and tails; the host's
//!   share of a step).
//!
//! Then, in a second stage with those held, the compute-side factors that
//! only large batches reveal are fitted to two columns of TensorRT-LLM's
//! offline throughput table (the other columns are held out): the Hopper
//! entries' `HOPPER_SXM.mfu` to Llama 3.3 70B in fp8 on one H200, and the
//! B200's two factors (`BLACKWELL.mbu`, `BLACKWELL.mfu`) to the same model in
//! NVFP4 on one B200. The stages are separate because these rows are whole
//! offline benchmarks, far slower to simulate than the latency rows, and
//! hardly depend on the fixed costs.
//!
//! The objective is the sum of squared relative errors over the rows, each
//! row simulated as `kvsim validate` simulates it with the candidate values
//! set as `hardware.mbu` and `hardware.layer_overhead_s`; a Nelder-Mead
//! simplex minimizes it. `step_overhead_s` (1 ms) is not fitted: it is the
//! host's per-step cost, taken from engine profiles that are not rows here
//! (`src/catalog/gpus.rs`).

use crate::catalog;

/// How many defaults are fitted.
const N: usize = 7;

/// Values of the fitted defaults.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Fitted {
    /// Model bandwidth utilization of the A100 entries.
    pub a100_mbu: f64,
    /// Model bandwidth utilization of the Hopper entries.
    pub hopper_mbu: f64,
    /// Fixed cost per layer per step, seconds (every GPU).
    pub layer_overhead_s: f64,
    /// Fixed cost per step, seconds (every GPU).
    pub step_overhead_s: f64,
    /// Model FLOPs utilization of the Hopper entries.
    pub hopper_mfu: f64,
    /// Model bandwidth utilization of the Blackwell entry (B200).
    pub b200_mbu: f64,
    /// Model FLOPs utilization of the Blackwell entry (B200).
    pub b200_mfu: f64,
}

/// The default names, as calibration rows cite them.
pub(super) const A100_MBU: &str = "A100.mbu";
pub(super) const HOPPER_MBU: &str = "HOPPER_SXM.mbu";
pub(super) const LAYER_OVERHEAD: &str = "layer_overhead_s";
pub(super) const STEP_OVERHEAD: &str = "step_overhead_s";
pub(super) const HOPPER_MFU: &str = "HOPPER_SXM.mfu";
pub(super) const B200_MBU: &str = "BLACKWELL.mbu";
pub(super) const B200_MFU: &str = "BLACKWELL.mfu";

impl Fitted {
    /// The values the catalog holds.
    pub fn catalog() -> Fitted {
        let a100 = catalog::gpu("a100-80gb").expect("catalog gpu").efficiency;
        let hopper = catalog::gpu("h100-sxm").expect("catalog gpu").efficiency;
        let blackwell = catalog::gpu("b200").expect("catalog gpu").efficiency;
        Fitted {
            a100_mbu: a100.mbu,
            hopper_mbu: hopper.mbu,
            layer_overhead_s: a100.layer_overhead_s,
            step_overhead_s: a100.step_overhead_s,
            hopper_mfu: hopper.mfu,
            b200_mbu: blackwell.mbu,
            b200_mfu: blackwell.mfu,
        }
    }

    /// `--set` overrides that put these values on `gpu` (a catalog name).
    pub(super) fn overrides(&self, gpu: &str) -> Vec<String> {
        let (mbu, mfu) = if gpu.starts_with("a100") {
            (Some(self.a100_mbu), None)
        } else if ["h100-sxm", "h100-pcie", "h200"].contains(&gpu) {
            (Some(self.hopper_mbu), Some(self.hopper_mfu))
        } else if gpu == "b200" {
            (Some(self.b200_mbu), Some(self.b200_mfu))
        } else {
            (None, None)
        };
        let mut set = vec![
            format!("hardware.layer_overhead_s={:e}", self.layer_overhead_s),
            format!("hardware.step_overhead_s={:e}", self.step_overhead_s),
        ];
        if let Some(m) = mbu {
            set.push(format!("hardware.mbu={m}"));
        }
        if let Some(f) = mfu {
            set.push(format!("hardware.mfu={f}"));
        }
        set
    }

    /// The value of the default called `name` (one of the names above).
    pub fn get(&self, name: &str) -> f64 {
        match name {
            A100_MBU => self.a100_mbu,
            HOPPER_MBU => self.hopper_mbu,
            STEP_OVERHEAD => self.step_overhead_s,
            HOPPER_MFU => self.hopper_mfu,
            B200_MBU => self.b200_mbu,
            B200_MFU => self.b200_mfu,
            _ => self.layer_overhead_s,
        }
    }

    fn to_vec(self) -> [f64; N] {
        // The fixed costs in microseconds, so the simplex steps are alike.
        [
            self.a100_mbu,
            self.hopper_mbu,
            self.layer_overhead_s * 1e6,
            self.step_overhead_s * 1e6,
            self.hopper_mfu,
            self.b200_mbu,
            self.b200_mfu,
        ]
    }

    fn from_vec(x: [f64; N]) -> Fitted {
        Fitted {
            a100_mbu: x[0],
            hopper_mbu: x[1],
            layer_overhead_s: x[2] * 1e-6,
            step_overhead_s: x[3] * 1e-6,
            hopper_mfu: x[4],
            b200_mbu: x[5],
            b200_mfu: x[6],
        }
    }
}

/// Where the full fit starts: a fixed point, so the fit does not depend on
/// the values the catalog holds (which the fit is checked against).
pub(super) const START: Fitted = Fitted {
    a100_mbu: 0.7,
    hopper_mbu: 0.7,
    layer_overhead_s: 20e-6,
    step_overhead_s: 500e-6,
    hopper_mfu: 0.6,
    b200_mbu: 0.7,
    b200_mfu: 0.6,
};

/// The defaults of the first stage, fitted jointly to the latency rows.
pub(super) const FIRST_STAGE: [&str; 4] = [A100_MBU, HOPPER_MBU, LAYER_OVERHEAD, STEP_OVERHEAD];

/// Every fitted default's name, in table order.
pub const FITTED_DEFAULTS: [&str; N] = [
    A100_MBU,
    HOPPER_MBU,
    LAYER_OVERHEAD,
    STEP_OVERHEAD,
    HOPPER_MFU,
    B200_MBU,
    B200_MFU,
];

/// One calibration row evaluated under candidate values: its source and its
/// relative error.
pub(super) struct Residual {
    pub origin: &'static str,
    pub error: f64,
}

/// A refit without one source, and that source's errors under it.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaveOneOut {
    /// The source left out.
    pub origin: &'static str,
    /// The defaults refitted to the other sources' rows. A default no other
    /// source constrains keeps its full-fit value (see `held`).
    pub refit: Fitted,
    /// Defaults no remaining row constrains.
    pub held: Vec<&'static str>,
    /// The left-out source's rows: id, error under the full fit, error under
    /// the refit (relative, signed).
    pub rows: Vec<(&'static str, f64, f64)>,
}

/// Minimizes the squared relative errors of `rows(values)` over the rows
/// whose source is not `exclude`, starting from `start`. `free[i]` says
/// whether parameter `i` may move (a parameter no included row depends on,
/// or one another stage fits, stays where it starts).
pub(super) fn fit(
    rows: &dyn Fn(&Fitted) -> Vec<Residual>,
    exclude: Option<&str>,
    start: Fitted,
    free: [bool; N],
) -> Fitted {
    let objective = |x: [f64; N]| -> f64 {
        let f = Fitted::from_vec(x);
        // Physical ranges: a bandwidth fraction in (0.2, 1], a non-negative
        // per-layer cost below 1 ms.
        if !(0.2..=1.0).contains(&f.a100_mbu)
            || !(0.2..=1.0).contains(&f.hopper_mbu)
            || !(0.1..=1.0).contains(&f.hopper_mfu)
            || !(0.1..=1.0).contains(&f.b200_mbu)
            || !(0.1..=1.0).contains(&f.b200_mfu)
            || !(0.0..1e-3).contains(&f.layer_overhead_s)
            || !(0.0..0.1).contains(&f.step_overhead_s)
        {
            return f64::INFINITY;
        }
        rows(&f)
            .iter()
            .filter(|r| Some(r.origin) != exclude)
            .map(|r| r.error * r.error)
            .sum()
    };
    let x = nelder_mead(
        objective,
        start.to_vec(),
        [0.05, 0.05, 10.0, 300.0, 0.05, 0.05, 0.05],
        free,
    );
    Fitted::from_vec(x)
}

/// Nelder-Mead simplex minimization (Nelder and Mead 1965, with the standard
/// coefficients) over the coordinates marked free, restarted from its result
/// with fresh steps until a restart no longer improves (a simplex can
/// collapse short of the minimum; restarting is the usual remedy). Bounded
/// iterations and restarts keep it deterministic and finite.
fn nelder_mead(
    f: impl Fn([f64; N]) -> f64,
    start: [f64; N],
    step: [f64; N],
    free: [bool; N],
) -> [f64; N] {
    let mut x = start;
    let mut fx = f(x);
    for _ in 0..4 {
        let next = simplex_search(&f, x, step, free);
        let fnext = f(next);
        let improved = fnext < fx - 1e-12 * (1.0 + fx.abs());
        if fnext <= fx {
            (x, fx) = (next, fnext);
        }
        if !improved {
            break;
        }
    }
    x
}

/// One Nelder-Mead run from `start`.
fn simplex_search(
    f: &impl Fn([f64; N]) -> f64,
    start: [f64; N],
    step: [f64; N],
    free: [bool; N],
) -> [f64; N] {
    let dims: Vec<usize> = (0..N).filter(|&i| free[i]).collect();
    if dims.is_empty() {
        return start;
    }
    let mut simplex: Vec<([f64; N], f64)> = vec![(start, f(start))];
    for &d in &dims {
        let mut x = start;
        x[d] += step[d];
        simplex.push((x, f(x)));
    }
    let combine = |a: &[f64; N], b: &[f64; N], t: f64| -> [f64; N] {
        let mut x = *a;
        for &d in &dims {
            x[d] = a[d] + t * (b[d] - a[d]);
        }
        x
    };
    for _ in 0..400 {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[simplex.len() - 1].1);
        // Converged when the values agree, or when every vertex is within a
        // hundredth of a starting step of the best one in every coordinate
        // (a finer fit than the catalog's rounding needs).
        let best_x = simplex[0].0;
        let tight = simplex.iter().all(|(x, _)| {
            dims.iter()
                .all(|&d| (x[d] - best_x[d]).abs() <= step[d] * 1e-2)
        });
        if (worst - best).abs() <= 1e-12 * (1.0 + best.abs()) || tight {
            break;
        }
        let n = simplex.len() - 1;
        let mut centroid = [0.0; N];
        for (x, _) in &simplex[..n] {
            for d in 0..N {
                centroid[d] += x[d] / n as f64;
            }
        }
        let worst_x = simplex[n].0;
        let reflected = combine(&centroid, &worst_x, -1.0);
        let fr = f(reflected);
        if fr < simplex[0].1 {
            let expanded = combine(&centroid, &worst_x, -2.0);
            let fe = f(expanded);
            simplex[n] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflected, fr);
        } else {
            let contracted = combine(&centroid, &worst_x, 0.5);
            let fc = f(contracted);
            if fc < simplex[n].1 {
                simplex[n] = (contracted, fc);
            } else {
                let best_x = simplex[0].0;
                for point in simplex.iter_mut().skip(1) {
                    let x = combine(&best_x, &point.0, 0.5);
                    *point = (x, f(x));
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex[0].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nelder_mead_finds_a_quadratic_minimum_and_leaves_fixed_coordinates() {
        let f = |x: [f64; N]| {
            (x[0] - 0.7).powi(2)
                + (x[1] - 0.4).powi(2)
                + (x[2] - 30.0).powi(2)
                + (x[3] - 500.0).powi(2) / 100.0
        };
        // The simplex stops within a hundredth of a step of the minimum.
        let step = [0.05, 0.05, 10.0, 300.0, 0.05, 0.05, 0.05];
        let start = [0.5, 0.5, 10.0, 1000.0, 0.3, 0.3, 0.3];
        let free = [true, true, true, true, false, false, false];
        let x = nelder_mead(f, start, step, free);
        assert!(
            (x[0] - 0.7).abs() < 1e-3 && (x[1] - 0.4).abs() < 1e-3,
            "{x:?}"
        );
        assert!(
            (x[2] - 30.0).abs() < 0.2 && (x[3] - 500.0).abs() < 6.0,
            "{x:?}"
        );
        assert_eq!(
            (x[4], x[5], x[6]),
            (0.3, 0.3, 0.3),
            "fixed coordinates stay"
        );
        let y = nelder_mead(
            f,
            start,
            step,
            [true, false, true, true, false, false, false],
        );
        assert_eq!(y[1], 0.5);
        assert!((y[0] - 0.7).abs() < 1e-3);
    }
}
