//! Open-loop arrival processes.
//!
//! Every process keeps its clock as an absolute quantity (accumulated f64
//! seconds, an arrival index, or a cumulative intensity) and converts each
//! absolute time to nanoseconds on its own, so rounding to the nanosecond never
//! accumulates into drift.

use rand::Rng;
use rand_distr::{Distribution, Exp1, Gamma};

use crate::units::SimTime;

use super::data::{Shared, TraceRow};
use super::secs_to_time;

/// A validated open-loop arrival process.
#[derive(Clone, Debug)]
pub(crate) enum Process {
    /// Exponential gaps with this mean, seconds.
    Poisson { mean_gap: f64 },
    /// Gamma gaps (mean `1 / rate`).
    Gamma(Gamma<f64>),
    /// Gaps of exactly `1 / rate`.
    Constant { rate: f64 },
    /// Linearly changing rate.
    Ramp(Ramp),
    /// Replayed arrivals.
    Trace(Shared<TraceRow>),
}

/// The state of a process during one run.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    /// Poisson and gamma: the last arrival, seconds. Ramp: the cumulative
    /// intensity (sum of unit-exponential draws) of the last arrival.
    acc: f64,
    /// Constant: arrivals so far. Trace: index of the next row.
    count: u64,
    /// The last instant returned, so that output is nondecreasing even where
    /// floating-point inversion wobbles by an ulp.
    last: SimTime,
}

/// The next arrival of a trace, or a time and `None` for a parametric process.
pub(crate) enum Next {
    /// A parametric arrival at this time; lengths are drawn separately.
    At(SimTime),
    /// A trace row.
    Row(TraceRow),
    /// The trace is exhausted.
    End,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            acc: 0.0,
            count: 0,
            last: SimTime::ZERO,
        }
    }
}

impl Process {
    /// The next arrival. The first arrival of a parametric process comes one
    /// gap after time 0 (a renewal process started at 0), not at 0 itself.
    pub(crate) fn next<R: Rng + ?Sized>(&self, clock: &mut Clock, rng: &mut R) -> Next {
        let secs = match self {
            Process::Poisson { mean_gap } => {
                let e: f64 = Exp1.sample(rng);
                clock.acc += e * mean_gap;
                clock.acc
            }
            Process::Gamma(gamma) => {
                clock.acc += gamma.sample(rng);
                clock.acc
            }
            Process::Constant { rate } => {
                // k / rate from the index, not a running sum of 1 / rate.
                clock.count += 1;
                clock.count as f64 / rate
            }
            Process::Ramp(ramp) => {
                let e: f64 = Exp1.sample(rng);
                clock.acc += e;
                ramp.time_at(clock.acc)
            }
            Process::Trace(rows) => {
                let i = clock.count as usize;
                return match rows.get(i) {
                    Some(row) => {
                        clock.count += 1;
                        Next::Row(*row)
                    }
                    None => Next::End,
                };
            }
        };
        let at = secs_to_time(secs).max(clock.last);
        clock.last = at;
        Next::At(at)
    }
}

/// A non-homogeneous Poisson process with rate `from + (to - from) * t / over`
/// for `t < over` and `to` afterwards, sampled by exact inversion of its
/// cumulative intensity: the n-th arrival is at `Λ⁻¹(E_1 + ... + E_n)` for
/// unit-exponential `E_i`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct Ramp {
    from: f64,
    to: f64,
    over: f64,
    /// Half the slope of the rate, `(to - from) / (2 over)`: Λ(t) = from t + a t².
    a: f64,
    /// Λ(over), the expected arrivals during the ramp.
    at_end: f64,
}

impl Ramp {
    /// `from >= 0`, `to > 0`, `over > 0`, all finite (validated by the caller).
    pub(crate) fn new(from: f64, to: f64, over: f64) -> Self {
        Ramp {
            from,
            to,
            over,
            a: (to - from) / (2.0 * over),
            at_end: (from + to) / 2.0 * over,
        }
    }

    /// Λ⁻¹(cum): the time by which `cum` arrivals are expected.
    pub(crate) fn time_at(&self, cum: f64) -> f64 {
        if cum <= 0.0 {
            return 0.0;
        }
        if cum <= self.at_end {
            // Root of a t² + from t - cum = 0 in the form that is stable for
            // a -> 0 and for a < 0 (a ramp down): 2 cum / (from + sqrt(disc)).
            let disc = (self.from * self.from + 4.0 * self.a * cum).max(0.0);
            (2.0 * cum / (self.from + disc.sqrt())).min(self.over)
        } else {
            self.over + (cum - self.at_end) / self.to
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big_lambda(r: &Ramp, t: f64) -> f64 {
        if t <= r.over {
            r.from * t + r.a * t * t
        } else {
            r.at_end + r.to * (t - r.over)
        }
    }

    #[test]
    fn ramp_inversion_round_trips() {
        for (from, to) in [(1.0, 20.0), (0.0, 5.0), (20.0, 1.0), (3.0, 3.0)] {
            let r = Ramp::new(from, to, 600.0);
            for t in [0.5, 10.0, 299.0, 599.9, 600.0, 601.0, 5000.0] {
                let back = r.time_at(big_lambda(&r, t));
                assert!(
                    (back - t).abs() < 1e-9 * t.max(1.0),
                    "ramp {from}->{to}: t = {t}, got {back}"
                );
            }
        }
    }
}
