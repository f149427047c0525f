//! The exact least-squares fit of the roofline's three free coefficients.
//!
//! With `a = 1/mbu` and `b = 1/mfu`, row `i` predicts
//! `t_i = o + max(b * C_i1, a * M_i1) + max(b * C_i2, a * M_i2) + K_i`: its
//! two kernel groups (linear layers and attention), each with compute and
//! memory seconds at full efficiency, and its fixed communication time `K_i`.
//! Whether a group is memory-bound depends only on the ratio `rho = a / b`:
//! it is when `rho >= q = C / M`. Sorting the `2N` groups by `q` splits the
//! `(o, a, b)` space into at most `2N + 1` wedges, in each of which every
//! group's regime is fixed, every prediction is linear in `(o, a, b)` and the
//! sum of squared relative errors is a convex quadratic. Its minimum over the
//! wedge (a small polytope: `o >= 0`, `a >= 1`, `b >= 1` and the two wedge
//! walls) is found exactly by trying every set of at most three active
//! constraints; the best over all wedges is the global minimum. Crossing a
//! wall flips one group, which changes one row's terms of the normal
//! equations, so the sweep costs `O(N log N)`. This is deterministic and has
//! no starting point to get wrong, which Gauss-Newton on the kinked `max`es
//! does not guarantee.
//!
//! Coefficients the data cannot determine (no compute-bound group says
//! anything about `mfu`) would make the quadratic singular; a ridge term of
//! weight `1e-9` per row pulls them towards the starting coefficients and is
//! negligible for the determined ones (it moves them by about 1e-9 relative).

use crate::hardware::cost::Roof;

/// One measured step reduced to the numbers the fit needs, seconds.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Point {
    /// Measured step time.
    pub y: f64,
    /// The linear layers' compute and memory time at mfu = mbu = 1.
    pub linear: Roof,
    /// Attention's compute and memory time at mfu = mbu = 1.
    pub attention: Roof,
    /// Fixed time (all-reduces, per-layer costs).
    pub comm: f64,
}

impl Point {
    fn groups(&self) -> [Roof; 2] {
        [self.linear, self.attention]
    }
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
        self.overhead_s + self.group_time(&p.linear) + self.group_time(&p.attention) + p.comm
    }

    fn group_time(&self, g: &Roof) -> f64 {
        (self.inv_mfu * g.compute).max(self.inv_mbu * g.memory)
    }

    /// Whether kernel group `g` is memory-bound under these coefficients.
    pub fn memory_bound(&self, g: &Roof) -> bool {
        self.inv_mbu * g.memory >= self.inv_mfu * g.compute
    }
}

/// Ridge weight per row; see the module docs.
const RIDGE_PER_ROW: f64 = 1e-9;

/// A symmetric 3x3 normal matrix and its right-hand side, accumulated over
/// rows.
#[derive(Copy, Clone, Default)]
struct Normal {
    g: [[f64; 3]; 3],
    h: [f64; 3],
}

impl Normal {
    /// Adds (`sign` 1) or removes (`sign` -1) one row's terms.
    fn add(&mut self, x: [f64; 3], z: f64, sign: f64) {
        for i in 0..3 {
            for j in 0..3 {
                self.g[i][j] += sign * x[i] * x[j];
            }
            self.h[i] += sign * x[i] * z;
        }
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

/// One row's regression terms in the current wedge: the memory seconds of
/// its memory-bound groups and the compute seconds of its compute-bound ones.
#[derive(Copy, Clone)]
struct RowTerms {
    memory: f64,
    compute: f64,
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
    let x_of = |p: &Point, t: RowTerms| [s / p.y, t.memory / p.y, t.compute / p.y];
    let z_of = |p: &Point| 1.0 - p.comm / p.y;

    // Every group that takes time, by its threshold q = C / M (infinite for a
    // group without bytes: compute-bound at any rho).
    let mut walls: Vec<(f64, usize, Roof)> = points
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.groups().into_iter().map(move |g| (i, g)))
        .filter(|(_, g)| g.compute > 0.0 || g.memory > 0.0)
        .map(|(i, g)| {
            let q = if g.memory > 0.0 {
                g.compute / g.memory
            } else {
                f64::INFINITY
            };
            (q, i, g)
        })
        .collect();
    walls.sort_by(|x, y| x.0.total_cmp(&y.0));

    // The first wedge, rho below every wall: every group compute-bound.
    let mut terms: Vec<RowTerms> = points
        .iter()
        .map(|p| RowTerms {
            memory: 0.0,
            compute: p.linear.compute + p.attention.compute,
        })
        .collect();
    let mut normal = Normal::default();
    let mut zz = 0.0;
    for (p, t) in points.iter().zip(&terms) {
        let z = z_of(p);
        zz += z * z;
        normal.add(x_of(p, *t), z, 1.0);
    }

    let n = walls.len();
    let mut best: Option<(f64, [f64; 3])> = None;
    for k in 0..=n {
        if k > 0 {
            // Crossing wall k - 1 makes its group memory-bound.
            let (_, i, g) = walls[k - 1];
            let p = &points[i];
            let z = z_of(p);
            normal.add(x_of(p, terms[i]), z, -1.0);
            terms[i].compute -= g.compute;
            terms[i].memory += g.memory;
            normal.add(x_of(p, terms[i]), z, 1.0);
        }
        let lo = if k == 0 { 0.0 } else { walls[k - 1].0 };
        let hi = if k == n { f64::INFINITY } else { walls[k].0 };
        if k > 0 && k < n && lo >= hi {
            // A single ray, covered by the neighbouring wedges.
            continue;
        }
        if !lo.is_finite() {
            // Past the walls of byte-less groups: the same wedge as before.
            continue;
        }
        let mut wedge = normal;
        for (i, t0) in theta0.iter().enumerate() {
            wedge.g[i][i] += ridge;
            wedge.h[i] += ridge * t0;
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
        if let Some((value, theta)) = minimize(&wedge, &constraints, &theta0, ridge, zz) {
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

    fn roof(compute: f64, memory: f64) -> Roof {
        Roof { compute, memory }
    }

    fn point(c: Coefficients, linear: Roof, attention: Roof) -> Point {
        let mut p = Point {
            y: 0.0,
            linear,
            attention,
            comm: 0.0,
        };
        p.y = c.predict(&p);
        p
    }

    fn start() -> Coefficients {
        Coefficients {
            overhead_s: 0.001,
            inv_mbu: 1.25,
            inv_mfu: 1.6,
        }
    }

    fn assert_recovered(fit: Coefficients, truth: Coefficients) {
        assert!(
            (fit.overhead_s / truth.overhead_s - 1.0).abs() < 1e-6,
            "{fit:?}"
        );
        assert!((fit.inv_mbu / truth.inv_mbu - 1.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.inv_mfu / truth.inv_mfu - 1.0).abs() < 1e-6, "{fit:?}");
    }

    const TRUTH: Coefficients = Coefficients {
        overhead_s: 0.002,
        inv_mbu: 1.0 / 0.6,
        inv_mfu: 1.0 / 0.45,
    };

    #[test]
    fn recovers_exact_coefficients_of_both_regimes() {
        let points: Vec<Point> = [
            (0.001, 0.010),
            (0.002, 0.030),
            (0.003, 0.050),
            (0.050, 0.012),
            (0.100, 0.013),
            (0.200, 0.020),
        ]
        .iter()
        .map(|&(c, m)| point(TRUTH, roof(c, m), roof(0.0, 0.0)))
        .collect();
        assert_recovered(solve(&points, start()), TRUTH);
    }

    #[test]
    fn recovers_coefficients_when_the_groups_are_in_different_regimes() {
        // Large-batch decode: compute-bound GEMMs beside memory-bound
        // attention, no row wholly in one regime.
        let points: Vec<Point> = [
            (0.020, 0.010, 0.0005, 0.004),
            (0.040, 0.010, 0.0010, 0.009),
            (0.080, 0.010, 0.0020, 0.020),
            (0.001, 0.010, 0.0001, 0.002),
            (0.002, 0.010, 0.0001, 0.030),
            (0.100, 0.010, 0.0500, 0.001),
        ]
        .iter()
        .map(|&(lc, lm, ac, am)| point(TRUTH, roof(lc, lm), roof(ac, am)))
        .collect();
        assert_recovered(solve(&points, start()), TRUTH);
    }

    #[test]
    fn undetermined_mfu_stays_at_the_start_and_bounds_hold() {
        // Only memory-bound rows, measured faster than mbu = 1 allows.
        let points: Vec<Point> = (1..6)
            .map(|i| Point {
                y: 0.5 * 0.01 * f64::from(i),
                linear: roof(1e-5, 0.01 * f64::from(i)),
                attention: roof(0.0, 0.0),
                comm: 0.0,
            })
            .collect();
        let fit = solve(&points, start());
        assert_eq!(fit.inv_mbu, 1.0);
        assert!(fit.overhead_s.abs() < 1e-12, "{fit:?}");
        assert!((fit.inv_mfu - 1.6).abs() < 1e-6, "{fit:?}");
    }
}
