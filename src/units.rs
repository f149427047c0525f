//! Simulated time and byte-size helpers.
//!
//! Time is an integer count of nanoseconds (never `f64`) so that event ordering
//! is exact and runs are reproducible; conversion to seconds happens only at the
//! edges (scenario parsing and `report/`).

use std::fmt;
use std::num::NonZeroU64;
use std::ops::{Add, AddAssign, Sub};

use serde::{Serialize, Serializer};

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// One gibibyte (2^30 bytes).
pub const GIB: u64 = 1 << 30;

/// An instant of simulated time, in nanoseconds since the simulation started.
///
/// Stored as nanoseconds + 1 in a `NonZeroU64` so that `Option<SimTime>` is
/// 8 bytes, not 16: a request record holds three optional instants, and a
/// ten-million-request run keeps ten million records. The offset preserves
/// order, cancels in differences, and costs one add or subtract at the
/// conversions; the only instant lost is the last nanosecond before
/// [`SimTime::MAX`] ("never"), which `u64::MAX` nanoseconds also maps to.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(NonZeroU64);

/// A span of simulated time, in nanoseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SimDuration(u64);

impl SimTime {
    /// The start of the simulation.
    pub const ZERO: SimTime = SimTime(NonZeroU64::MIN);
    /// The latest representable instant (about 584 years): "never".
    pub const MAX: SimTime = SimTime(NonZeroU64::MAX);

    /// An instant `nanos` nanoseconds after the start (saturating at
    /// [`SimTime::MAX`]).
    pub const fn from_nanos(nanos: u64) -> Self {
        SimTime(NonZeroU64::MIN.saturating_add(nanos))
    }

    /// Nanoseconds since the start.
    pub const fn as_nanos(self) -> u64 {
        self.0.get() - 1
    }

    /// Seconds since the start (for reports only).
    pub fn as_secs_f64(self) -> f64 {
        self.as_nanos() as f64 / NANOS_PER_SEC as f64
    }

    /// The instant `secs` seconds after the start, rounded to the nearest
    /// nanosecond and saturating at [`SimTime::MAX`]. `secs` must be finite and
    /// non-negative (validated at the input boundary).
    pub fn from_secs_f64(secs: f64) -> Self {
        SimTime::from_nanos(secs_to_nanos(secs))
    }

    /// The span from `earlier` to `self`; zero if `earlier` is later.
    pub fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.get().saturating_sub(earlier.0.get()))
    }
}

impl Default for SimTime {
    fn default() -> Self {
        SimTime::ZERO
    }
}

impl fmt::Debug for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SimTime").field(&self.as_nanos()).finish()
    }
}

impl Serialize for SimTime {
    /// As its nanoseconds, like the plain newtype it was.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct("SimTime", &self.as_nanos())
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);

    /// A span of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Self {
        SimDuration(nanos)
    }

    /// The span in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The span in seconds (for reports only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// A span of `secs` seconds, rounded to the nearest nanosecond and saturating.
    pub fn from_secs_f64(secs: f64) -> Self {
        SimDuration(secs_to_nanos(secs))
    }
}

fn secs_to_nanos(secs: f64) -> u64 {
    invariant!(secs.is_finite() && secs >= 0.0, "invalid seconds {secs}");
    let nanos = secs * NANOS_PER_SEC as f64;
    if nanos >= u64::MAX as f64 {
        u64::MAX
    } else if nanos > 0.0 {
        round_half_up(nanos)
    } else {
        0
    }
}

/// `x.round() as u64` for `0 < x < 2^64`, without the libm call `round` is
/// on x86-64's baseline (no SSE4.1): every engine step prices its duration
/// through here. Exact: below 2^52 the truncation is exact in `f64`, so is
/// `x - whole` (the bits of `x` below its unit), and ties round up as
/// `round` rounds them away from zero; from 2^52 up `x` is whole.
///
/// Below 2^63 (292 years of nanoseconds: every step) the conversions go
/// through `i64`, one instruction each way on that baseline, where `u64`'s
/// take a compare and a branch or a fix-up sequence; the values are the same.
///
/// From 1 to 2^52 (every step but the sub-nanosecond) it is one addition
/// and one truncation, half the dependent instructions: `x + 0.5` is exact
/// there unless it reaches the next power of two `2^k`, where it rounds to
/// a neighbour in `[2^k, 2^k + 0.5]`, whose integer part is `2^k` as the
/// exact sum's is.
#[inline]
fn round_half_up(x: f64) -> u64 {
    const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    const EXACT_HALF_LIMIT: f64 = 4_503_599_627_370_496.0; // 2^52
    if (1.0..EXACT_HALF_LIMIT).contains(&x) {
        return (x + 0.5) as i64 as u64;
    }
    if x < I64_LIMIT {
        let whole = x as i64;
        let up = x - whole as f64 >= 0.5;
        return whole as u64 + u64::from(up);
    }
    let whole = x as u64;
    if x - whole as f64 >= 0.5 {
        whole + 1
    } else {
        whole
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    /// Saturating: adding to "never" stays "never".
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}

impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        *self = *self + d;
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}

impl AddAssign for SimDuration {
    fn add_assign(&mut self, d: SimDuration) {
        *self = *self + d;
    }
}

impl Sub for SimTime {
    type Output = SimDuration;
    /// The span between two instants. Subtracting a later instant is a bug.
    fn sub(self, earlier: SimTime) -> SimDuration {
        invariant!(earlier <= self, "time went backwards");
        self.saturating_since(earlier)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6} s", self.as_secs_f64())
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6} s", self.as_secs_f64())
    }
}

/// Bytes as GiB, for display.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / GIB as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_trip_to_the_nanosecond() {
        let t = SimTime::from_secs_f64(1.5);
        assert_eq!(t.as_nanos(), 1_500_000_000);
        assert_eq!(t.as_secs_f64(), 1.5);
        assert_eq!(SimDuration::from_secs_f64(0.000_000_001_4).as_nanos(), 1);
    }

    proptest::proptest! {
        /// The hand-rolled rounding is `f64::round`'s, ties and all.
        #[test]
        fn rounding_matches_the_standard_library(bits in 0u64..0x43F0_0000_0000_0000) {
            let x = f64::from_bits(bits);
            proptest::prop_assume!(x > 0.0);
            proptest::prop_assert_eq!(round_half_up(x), x.round() as u64);
        }
    }

    /// The addition's rounding at every power of two from 1 to 2^52, on
    /// both sides and at the ties around it, and at the ties of every
    /// binade.
    #[test]
    fn rounding_at_the_powers_of_two() {
        for k in 0..=53 {
            let p = 2f64.powi(k);
            let mut x = p;
            for _ in 0..64 {
                x = f64::from_bits(x.to_bits() - 1);
            }
            for _ in 0..128 {
                assert_eq!(round_half_up(x), x.round() as u64, "{x:e}");
                x = f64::from_bits(x.to_bits() + 1);
            }
            for tie in [p - 0.5, p + 0.5, 1.5 * p + 0.5, p - 1.5] {
                for step in [-2i64, -1, 0, 1, 2] {
                    let y = f64::from_bits(tie.to_bits().wrapping_add_signed(step));
                    if y > 0.0 {
                        assert_eq!(round_half_up(y), y.round() as u64, "{y:e}");
                    }
                }
            }
        }
    }

    #[test]
    fn rounding_ties_go_up() {
        for (x, n) in [
            (0.5, 1),
            (1.5, 2),
            (2.5, 3),
            (0.49999999999999994, 0),
            (4503599627370495.5, 4503599627370496),
        ] {
            assert_eq!(round_half_up(x), n, "{x}");
            assert_eq!(x.round() as u64, n, "{x}");
        }
    }

    #[test]
    fn adding_to_never_stays_never() {
        assert_eq!(SimTime::MAX + SimDuration::from_nanos(5), SimTime::MAX);
        assert_eq!(SimTime::from_secs_f64(1e30), SimTime::MAX);
    }

    #[test]
    fn an_optional_instant_takes_no_more_room_than_an_instant() {
        assert_eq!(std::mem::size_of::<Option<SimTime>>(), 8);
        assert_eq!(SimTime::default(), SimTime::ZERO);
        assert_eq!(SimTime::ZERO.as_nanos(), 0);
        assert_eq!(SimTime::from_nanos(u64::MAX), SimTime::MAX);
        assert!(SimTime::from_nanos(7) < SimTime::from_nanos(8));
        assert_eq!(format!("{:?}", SimTime::from_nanos(42)), "SimTime(42)");
    }

    #[test]
    fn saturating_since_is_zero_for_later_instants() {
        let a = SimTime::from_nanos(10);
        let b = SimTime::from_nanos(20);
        assert_eq!(a.saturating_since(b), SimDuration::ZERO);
        assert_eq!((b - a).as_nanos(), 10);
    }
}
