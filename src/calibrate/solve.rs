//! The exact least-squares fit of the roofline's three free coefficients.
//!
//! With `a = 1/mbu` and `b = 1/mfu`, row `i` predicts
//! `t_i = o + max(b * C_i, a * M_i) + K_i`, where `C_i` and `M_i` are the
//! step's compute and memory seconds at full efficiency and `K_i` its fixed
//! communication time. Whether a row is memory-bound depends only on the ratio
//! `rho = a / b`: it is when `rho >= q_i = C_i / M_i`. Sorting the rows by `q`
//! splits the `(o, a, b)` space into `N + 1` wedges, in each of which every
//! row's regime is fixed and the sum of squared relative errors is a convex
//! quadratic. Its minimum over the wedge (a small polytope: `o >= 0`,
//! `a >= 1`, `b >= 1` and the two wedge walls) is found exactly by trying every
//! set of at most three active constraints; the best over all wedges is the
//! global minimum. This is deterministic and has no starting point to get wrong,
//! which Gauss-Newton on the kinked `max` does not guarantee.
//!
//! Coefficients the data cannot determine (no compute-bound row says anything
//! about `mfu`) would make the quadratic singular; a ridge term of weight
//! `1e-9` per row pulls them towards the starting coefficients and is
//! negligible for the determined ones (it moves them by about 1e-9 relative).

/// One measured step reduced to the numbers the fit needs, seconds.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Point {
    /// Measured step time.
    pub y: f64,
    /// Compute time at mfu = 1.
    pub compute: f64,
    /// Memory time at mbu = 1.
    pub memory: f64,
    /// Fixed communication time (all-reduces).
    pub comm: f64,
}

/// The fitted `(overhead seconds, 1/mbu, 1/mfu)`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct Coefficients {
    pub overhead_s: f64,
    pub inv_mbu: f64,
    pub inv_mfu: f64,
}

impl Coefficients {
    /// The predicted step time of `p`.
    pub fn predict(&self, p: &Point) -> f64 {
        self.overhead_s + (self.inv_mfu * p.compute).max(self.inv_mbu * p.memory) + p.comm
    }

    /// Whether `p` is memory-bound under these coefficients.
    pub fn memory_bound(&self, p: &Point) -> bool {
        self.inv_mbu * p.memory >= self.inv_mfu * p.compute
    }
}

/// Ridge weight per row; see the module docs.
const RIDGE_PER_ROW: f64 = 1e-9;

/// A symmetric 3x3 normal matrix, its right-hand side, accumulated over rows.
#[derive(Copy, Clone, Default)]
struct Normal {
    g: [[f64; 3]; 3],
    h: [f64; 3],
}

impl Normal {
    fn add(&mut self, x: [f64; 3], z: f64) {
        for i in 0..3 {
            for j in 0..3 {
                self.g[i][j] += x[i] * x[j];
            }
            self.h[i] += x[i] * z;
        }
    }

    fn plus(&self, other: &Normal) -> Normal {
        let mut n = *self;
        for i in 0..3 {
            for j in 0..3 {
                n.g[i][j] += other.g[i][j];
            }
            n.h[i] += other.h[i];
        }
        n
    }
}

/// A constraint `n . theta >= d` with `n` of unit length.
#[derive(Copy, Clone)]
struct Constraint {
    n: [f64; 3],
    d: f64,
}

impl Constraint {
    fn new(n: [f64; 3], d: f64) -> Self {
        let len = n.iter().map(|v| v * v).sum::<f64>().sqrt();
        Constraint {
            n: n.map(|v| v / len),
            d: d / len,
        }
    }
}

/// Minimizes the sum of squared relative errors over `points` (at least one),
/// with `start` the coefficients the ridge pulls undetermined ones towards.
pub(crate) fn solve(points: &[Point], start: Coefficients) -> Coefficients {
    // Work in theta = (o / s, a, b) with s the median step time, so the three
    // unknowns and the matrix entries are all of order one.
    let mut ys: Vec<f64> = points.iter().map(|p| p.y).collect();
    ys.sort_by(f64::total_cmp);
    let s = ys[ys.len() / 2];
    let theta0 = [start.overhead_s / s, start.inv_mbu, start.inv_mfu];
    let ridge = RIDGE_PER_ROW * points.len() as f64;

    let mut sorted: Vec<(f64, &Point)> = points
        .iter()
        .map(|p| (p.compute / p.memory.max(f64::MIN_POSITIVE), p))
        .collect();
    sorted.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = sorted.len();
    // memory[k]: rows 0..k memory-bound; compute[k]: rows k..n compute-bound.
    let mut memory = vec![Normal::default(); n + 1];
    let mut compute = vec![Normal::default(); n + 1];
    let mut zz = 0.0;
    for (k, (_, p)) in sorted.iter().enumerate() {
        let z = 1.0 - p.comm / p.y;
        zz += z * z;
        memory[k + 1] = memory[k];
        memory[k + 1].add([s / p.y, p.memory / p.y, 0.0], z);
    }
    for k in (0..n).rev() {
        let p = sorted[k].1;
        compute[k] = compute[k + 1];
        compute[k].add([s / p.y, 0.0, p.compute / p.y], 1.0 - p.comm / p.y);
    }

    let mut best: Option<(f64, [f64; 3])> = None;
    for k in 0..=n {
        let lo = if k == 0 { 0.0 } else { sorted[k - 1].0 };
        let hi = if k == n { f64::INFINITY } else { sorted[k].0 };
        if k > 0 && k < n && lo >= hi {
            // A single ray, covered by the neighbouring wedges.
            continue;
        }
        let mut normal = memory[k].plus(&compute[k]);
        for (i, t0) in theta0.iter().enumerate() {
            normal.g[i][i] += ridge;
            normal.h[i] += ridge * t0;
        }
        let mut constraints = vec![
            Constraint::new([1.0, 0.0, 0.0], 0.0),
            Constraint::new([0.0, 1.0, 0.0], 1.0),
            Constraint::new([0.0, 0.0, 1.0], 1.0),
        ];
        if lo > 0.0 {
            constraints.push(Constraint::new([0.0, 1.0, -lo], 0.0));
        }
        if hi.is_finite() {
            constraints.push(Constraint::new([0.0, -1.0, hi], 0.0));
        }
        if let Some((value, theta)) = minimize(&normal, &constraints, &theta0, ridge, zz) {
            if best.is_none_or(|(b, _)| value < b) {
                best = Some((value, theta));
            }
        }
    }
    // The start itself is always feasible; it is the answer only if no wedge
    // gave a candidate, which needs degenerate input.
    let theta = best.map_or(theta0, |(_, t)| t);
    // Active bounds are met to rounding error only (1 - 3e-16 would make
    // mbu > 1): clamp onto them.
    Coefficients {
        overhead_s: (theta[0] * s).max(0.0),
        inv_mbu: theta[1].max(1.0),
        inv_mfu: theta[2].max(1.0),
    }
}

/// The minimum of `theta' G theta - 2 h' theta + zz + ridge |theta - theta0|^2`
/// (the ridge already folded into `normal`) subject to `constraints`, and
/// where it is.
fn minimize(
    normal: &Normal,
    constraints: &[Constraint],
    theta0: &[f64; 3],
    ridge: f64,
    zz: f64,
) -> Option<(f64, [f64; 3])> {
    let objective = |t: &[f64; 3]| {
        let mut v = zz + ridge * theta0.iter().map(|x| x * x).sum::<f64>();
        for i in 0..3 {
            v -= 2.0 * normal.h[i] * t[i];
            for j in 0..3 {
                v += t[i] * normal.g[i][j] * t[j];
            }
        }
        v
    };
    let mut best: Option<(f64, [f64; 3])> = None;
    let m = constraints.len();
    // Every subset of at most three constraints, as a bit mask.
    for mask in 0u32..(1 << m) {
        if mask.count_ones() > 3 {
            continue;
        }
        let active: Vec<&Constraint> = (0..m)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| &constraints[i])
            .collect();
        let Some(theta) = kkt(normal, &active) else {
            continue;
        };
        let feasible = constraints
            .iter()
            .all(|c| c.n.iter().zip(&theta).map(|(a, b)| a * b).sum::<f64>() - c.d >= -1e-9);
        if !feasible {
            continue;
        }
        let value = objective(&theta);
        if best.is_none_or(|(b, _)| value < b) {
            best = Some((value, theta));
        }
    }
    best
}

/// Solves `min theta' G theta - 2 h' theta` with `active` as equalities, by its
/// KKT system; `None` when the system is singular.
fn kkt(normal: &Normal, active: &[&Constraint]) -> Option<[f64; 3]> {
    let size = 3 + active.len();
    let mut a = vec![vec![0.0; size + 1]; size];
    for (row, (g, h)) in a.iter_mut().zip(normal.g.iter().zip(&normal.h)) {
        row[..3].copy_from_slice(g);
        row[size] = *h;
    }
    for (k, c) in active.iter().enumerate() {
        for (i, n) in c.n.iter().enumerate() {
            a[i][3 + k] = *n;
        }
        a[3 + k][..3].copy_from_slice(&c.n);
        a[3 + k][size] = c.d;
    }
    let x = gauss(a)?;
    Some([x[0], x[1], x[2]])
}

/// Gaussian elimination with partial pivoting on the augmented matrix `a`.
fn gauss(mut a: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let n = a.len();
    let scale = a
        .iter()
        .flat_map(|r| r[..n].iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return None;
    }
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-13 * scale {
            return None;
        }
        a.swap(col, pivot);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for row in rest {
            let f = row[col] / pivot_row[col];
            if f != 0.0 {
                for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (a[row][n] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(c: Coefficients, compute: f64, memory: f64) -> Point {
        let mut p = Point {
            y: 0.0,
            compute,
            memory,
            comm: 0.0,
        };
        p.y = c.predict(&p);
        p
    }

    #[test]
    fn recovers_exact_coefficients_of_both_regimes() {
        let truth = Coefficients {
            overhead_s: 0.002,
            inv_mbu: 1.0 / 0.6,
            inv_mfu: 1.0 / 0.45,
        };
        let points: Vec<Point> = [
            (0.001, 0.010),
            (0.002, 0.030),
            (0.003, 0.050),
            (0.050, 0.012),
            (0.100, 0.013),
            (0.200, 0.020),
        ]
        .iter()
        .map(|&(c, m)| point(truth, c, m))
        .collect();
        let start = Coefficients {
            overhead_s: 0.001,
            inv_mbu: 1.25,
            inv_mfu: 1.6,
        };
        let fit = solve(&points, start);
        assert!(
            (fit.overhead_s / truth.overhead_s - 1.0).abs() < 1e-6,
            "{fit:?}"
        );
        assert!((fit.inv_mbu / truth.inv_mbu - 1.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.inv_mfu / truth.inv_mfu - 1.0).abs() < 1e-6, "{fit:?}");
    }

    #[test]
    fn undetermined_mfu_stays_at_the_start_and_bounds_hold() {
        // Only memory-bound rows, measured faster than mbu = 1 allows.
        let points: Vec<Point> = (1..6)
            .map(|i| Point {
                y: 0.5 * 0.01 * f64::from(i),
                compute: 1e-5,
                memory: 0.01 * f64::from(i),
                comm: 0.0,
            })
            .collect();
        let start = Coefficients {
            overhead_s: 0.001,
            inv_mbu: 1.25,
            inv_mfu: 1.6,
        };
        let fit = solve(&points, start);
        assert_eq!(fit.inv_mbu, 1.0);
        assert!(fit.overhead_s.abs() < 1e-12, "{fit:?}");
        assert!((fit.inv_mfu - 1.6).abs() < 1e-6, "{fit:?}");
    }
}
