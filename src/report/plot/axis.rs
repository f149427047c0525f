//! One axis type for every chart: linear, logarithmic or categorical.
//!
//! plotters gives linear and log axes different Rust types, which would make
//! every chart generic over four combinations; one enum implementing
//! [`Ranged`] keeps a single drawing path and lets the tick choice and the
//! label format (decimals follow the tick step) live together.

use std::ops::Range;

use plotters::coord::ranged1d::{
    KeyPointHint, NoDefaultFormatting, Ranged, ReversibleRanged, ValueFormatter,
};

/// How many major ticks a numeric axis aims for.
const TARGET_TICKS: usize = 7;

/// Whether values belong on a log axis: their positive values span more than
/// two decades, and none is zero or negative (a log axis cannot place those,
/// and silently dropping a 0 % OOM rate would mislead more than a squashed
/// linear axis).
pub fn use_log(values: &[f64]) -> bool {
    let mut lo = f64::INFINITY;
    let mut hi = 0.0f64;
    for &v in values.iter().filter(|v| v.is_finite()) {
        if v <= 0.0 {
            return false;
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    lo.is_finite() && hi / lo > 100.0
}

/// A chart axis: its range, ticks and how tick labels read.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    lo: f64,
    hi: f64,
    kind: Kind,
    ticks: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Ticks every `step`; labels carry the decimals the step needs.
    Linear { step: f64 },
    /// Ticks at powers of ten; `lo` and `hi` are powers of ten.
    Log,
    /// One tick per name, at 0, 1, 2...
    Categories(Vec<String>),
}

impl Axis {
    /// A linear axis over exactly `lo..hi`, ticks at a round step inside it.
    pub fn linear(lo: f64, hi: f64) -> Axis {
        let (lo, hi) = widen(lo, hi);
        let step = nice_step((hi - lo) / TARGET_TICKS as f64);
        let first = (lo / step - 1e-9).ceil() as i64;
        let last = (hi / step + 1e-9).floor() as i64;
        let ticks = (first..=last).map(|k| k as f64 * step).collect();
        Axis {
            lo,
            hi,
            kind: Kind::Linear { step },
            ticks,
        }
    }

    /// A linear axis whose ends are rounded outward to ticks: for values
    /// (`min`, `max` of the data), starting at 0 when `from_zero` and the
    /// data are not negative.
    pub fn linear_nice(min: f64, max: f64, from_zero: bool) -> Axis {
        let (mut lo, mut hi) = widen(min, max);
        if from_zero && lo >= 0.0 {
            lo = 0.0;
        }
        // A little headroom so the highest line does not run along the frame.
        hi += (hi - lo) * 0.04;
        let step = nice_step((hi - lo) / TARGET_TICKS as f64);
        lo = (lo / step + 1e-9).floor() * step;
        hi = (hi / step - 1e-9).ceil() * step;
        Axis::linear(lo, hi)
    }

    /// A linear axis over the data padded by a few percent on each side, so
    /// markers at the ends are not cut by the frame (for x axes).
    pub fn linear_padded(min: f64, max: f64) -> Axis {
        let (lo, hi) = widen(min, max);
        let pad = (hi - lo) * 0.04;
        let lo = if lo >= 0.0 {
            (lo - pad).max(0.0)
        } else {
            lo - pad
        };
        Axis::linear(lo, hi + pad)
    }

    /// A log axis over `min..max` (both positive) padded by a few percent of
    /// its span, as the linear x axes are: snapping to whole decades would
    /// waste up to a decade of width on each side. Labels at 1, 2 and 5 times
    /// powers of ten for spans of up to about three decades, at powers of ten
    /// (every other one, and so on, when there are many) beyond.
    pub fn log(min: f64, max: f64) -> Axis {
        let (min, max) = if min > 0.0 && max >= min && max.is_finite() {
            (min, max)
        } else {
            (1.0, 10.0)
        };
        let pad = (max / min).max(10.0).powf(0.04);
        let (lo, hi) = (min / pad, max * pad);
        let decades = (hi / lo).log10();
        let mantissas: &[f64] = if decades <= 3.2 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let stride = ((decades / (TARGET_TICKS + 2) as f64).ceil() as i32).max(1);
        let first = lo.log10().floor() as i32;
        let last = hi.log10().ceil() as i32;
        let ticks = (first..=last)
            // Thinned decades stay on multiples of the stride, so 1 (10^0)
            // is labelled whenever it is in range.
            .filter(|e| e.rem_euclid(stride) == 0)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|&v| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9))
            .collect();
        Axis {
            lo,
            hi,
            kind: Kind::Log,
            ticks,
        }
    }

    /// A log axis if [`use_log`] says so, otherwise a nice linear one (from 0
    /// when `from_zero`); `values` are the data the axis must show.
    pub fn auto(values: &[f64], from_zero: bool) -> Axis {
        let (min, max) = min_max(values);
        if use_log(values) {
            Axis::log(min, max)
        } else {
            Axis::linear_nice(min, max, from_zero)
        }
    }

    /// Like [`Axis::auto`] but padded rather than rounded (for x axes).
    pub fn auto_padded(values: &[f64]) -> Axis {
        let (min, max) = min_max(values);
        if use_log(values) {
            Axis::log(min, max)
        } else {
            Axis::linear_padded(min, max)
        }
    }

    /// A categorical axis: names at 0, 1, 2... with half a slot of margin.
    pub fn categories(names: Vec<String>) -> Axis {
        let n = names.len().max(1);
        Axis {
            lo: -0.5,
            hi: n as f64 - 0.5,
            ticks: (0..names.len()).map(|i| i as f64).collect(),
            kind: Kind::Categories(names),
        }
    }

    /// The names of a categorical axis.
    pub fn category_names(&self) -> Option<&[String]> {
        match &self.kind {
            Kind::Categories(names) => Some(names),
            _ => None,
        }
    }

    /// Whether the axis is logarithmic.
    pub fn is_log(&self) -> bool {
        self.kind == Kind::Log
    }

    /// The axis range.
    pub fn bounds(&self) -> (f64, f64) {
        (self.lo, self.hi)
    }

    /// Whether `v` can be drawn on this axis (a log axis cannot take v <= 0).
    pub fn can_show(&self, v: f64) -> bool {
        v.is_finite() && (!self.is_log() || v > 0.0)
    }

    /// `v` moved inside the axis range (used for error bars that would reach
    /// below zero on a log axis).
    pub fn clamp(&self, v: f64) -> f64 {
        v.clamp(self.lo, self.hi)
    }

    /// The major tick positions.
    pub fn ticks(&self) -> &[f64] {
        &self.ticks
    }

    /// Position of `v` as a fraction of the axis (0 at `lo`, 1 at `hi`).
    fn fraction(&self, v: f64) -> f64 {
        let f = if self.is_log() {
            // Values a log axis cannot show land well outside; callers skip them.
            let v = if v > 0.0 { v } else { self.lo * 1e-3 };
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        if f.is_finite() { f } else { 0.0 }
    }

    /// The minor (light grid) positions: 2..9 within each decade of a log axis
    /// of few decades, so values can be read off between the labels.
    fn minor_ticks(&self) -> Vec<f64> {
        if !self.is_log() || self.hi / self.lo > 1e6 {
            return Vec::new();
        }
        let first = self.lo.log10().floor() as i32;
        let last = self.hi.log10().ceil() as i32;
        (first..=last)
            .flat_map(|e| (1..10).map(move |m| f64::from(m) * 10f64.powi(e)))
            .filter(|&v| v >= self.lo && v <= self.hi)
            .collect()
    }

    /// The label of a tick at `v`.
    pub fn label(&self, v: f64) -> String {
        match &self.kind {
            Kind::Linear { step } => {
                let decimals = (-step.log10().floor()).max(0.0) as usize;
                if v.abs() >= 1e7 {
                    format!("{v:.1e}")
                } else {
                    // `-0` reads as a bug on an axis.
                    let s = format!("{v:.decimals$}");
                    if s.trim_start_matches('-')
                        .chars()
                        .all(|c| c == '0' || c == '.')
                    {
                        s.trim_start_matches('-').to_string()
                    } else {
                        s
                    }
                }
            }
            Kind::Log => {
                let exp = (v.log10() + 1e-9).floor() as i32;
                let mantissa = (v / 10f64.powi(exp)).round();
                if (-4..=6).contains(&exp) {
                    format!("{:.*}", (-exp).max(0) as usize, mantissa * 10f64.powi(exp))
                } else {
                    format!("{mantissa}e{exp}")
                }
            }
            Kind::Categories(names) => {
                let i = v.round();
                if i >= 0.0 && (i as usize) < names.len() {
                    names[i as usize].clone()
                } else {
                    String::new()
                }
            }
        }
    }
}

/// The smallest and largest finite value (0..1 when there is none).
fn min_max(values: &[f64]) -> (f64, f64) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// A non-empty range around `lo..hi`: a flat line (all values equal) still
/// needs an axis with some height.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    if hi - lo > hi.abs().max(lo.abs()) * 1e-9 {
        (lo, hi)
    } else if lo == 0.0 {
        (0.0, 1.0)
    } else {
        let d = lo.abs() * 0.1;
        (lo - d, hi + d)
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = if norm <= 1.0 + 1e-9 {
        1.0
    } else if norm <= 2.0 + 1e-9 {
        2.0
    } else if norm <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    m * mag
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = self.fraction(*value);
        let px = f64::from(limit.0) + f * f64::from(limit.1 - limit.0);
        px.round().clamp(-1e6, 1e6) as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let max = hint.max_num_points();
        let mut points = if hint.weight().allow_light_points() {
            self.minor_ticks()
        } else {
            self.ticks.clone()
        };
        if points.len() > max {
            // Thin evenly rather than cutting off one end.
            let stride = points.len().div_ceil(max.max(1));
            points = points.into_iter().step_by(stride).collect();
            points.truncate(max);
        }
        points
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ReversibleRanged for Axis {
    fn unmap(&self, input: i32, limit: (i32, i32)) -> Option<f64> {
        if limit.0 == limit.1 {
            return None;
        }
        let f = f64::from(input - limit.0) / f64::from(limit.1 - limit.0);
        Some(if self.is_log() {
            10f64.powf(self.lo.log10() + f * (self.hi.log10() - self.lo.log10()))
        } else {
            self.lo + f * (self.hi - self.lo)
        })
    }
}

impl ValueFormatter<f64> for Axis {
    fn format_ext(&self, value: &f64) -> String {
        self.label(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_needs_more_than_two_decades_of_positive_values() {
        assert!(
            !use_log(&[1.0, 10.0, 100.0]),
            "exactly two decades stays linear"
        );
        assert!(use_log(&[1.0, 10.0, 100.5]));
        assert!(use_log(&[0.002, 0.5, 3.0]));
        assert!(!use_log(&[5.0, 50.0, 400.0]));
        assert!(!use_log(&[]));
        assert!(!use_log(&[3.0]));
    }

    #[test]
    fn log_refused_when_a_value_cannot_be_placed() {
        assert!(!use_log(&[0.0, 1.0, 1000.0]), "a zero would vanish");
        assert!(!use_log(&[-1.0, 1.0, 1000.0]));
        // Non-finite values are not data (they were empty cells).
        assert!(use_log(&[f64::NAN, 1.0, 1000.0]));
    }

    #[test]
    fn auto_picks_the_scale() {
        assert!(Axis::auto(&[0.5, 2.0, 8.0, 64.0, 256.0], true).is_log());
        assert!(!Axis::auto(&[0.5, 2.0, 8.0], true).is_log());
        assert!(!Axis::auto(&[0.0, 2.0, 8000.0], true).is_log());
    }

    fn labels(a: &Axis) -> Vec<String> {
        a.ticks().iter().map(|&t| a.label(t)).collect()
    }

    #[test]
    fn log_axis_is_padded_and_labels_decades() {
        let a = Axis::log(0.003, 42.0);
        let (lo, hi) = a.bounds();
        // 4 % of the span (in decades) on each side.
        assert!(
            lo < 0.003 && lo > 0.0015 && hi > 42.0 && hi < 70.0,
            "{lo} {hi}"
        );
        assert_eq!(labels(&a), ["0.01", "0.1", "1", "10"]);
        // Equal ratios get equal distances.
        let d1 = a.map(&0.1, (0, 1000)) - a.map(&0.01, (0, 1000));
        let d2 = a.map(&10.0, (0, 1000)) - a.map(&1.0, (0, 1000));
        assert!((d1 - d2).abs() <= 1 && d2 > 0, "{d1} {d2}");
        assert!(!a.can_show(0.0));
        assert_eq!(labels(&Axis::log(1e-9, 1e9)).last().unwrap(), "1e9");
    }

    #[test]
    fn short_log_spans_label_one_two_five() {
        let a = Axis::log(0.5, 64.0);
        assert_eq!(labels(&a), ["0.5", "1", "2", "5", "10", "20", "50"]);
    }

    #[test]
    fn linear_axis_rounds_to_nice_ticks() {
        let a = Axis::linear_nice(0.3, 47.0, true);
        assert_eq!(a.bounds().0, 0.0);
        assert!(
            a.bounds().1 >= 47.0 && a.bounds().1 <= 60.0,
            "{:?}",
            a.bounds()
        );
        let step = a.ticks()[1] - a.ticks()[0];
        assert!([5.0, 10.0].contains(&step), "{step}");
        assert_eq!(a.label(10.0), "10");
        // Decimals follow the step (0.01 here).
        let b = Axis::linear_nice(0.0, 0.042, true);
        assert_eq!(b.ticks()[1], 0.01);
        assert_eq!(b.label(0.02), "0.02");
        assert_eq!(b.label(-0.0), "0.00");
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(6.0), 10.0);
    }

    #[test]
    fn flat_and_empty_data_still_get_an_axis() {
        let a = Axis::linear_nice(0.0, 0.0, true);
        assert!(a.bounds().1 > 0.0);
        let b = Axis::linear_padded(4.0, 4.0);
        assert!(b.bounds().0 < 4.0 && b.bounds().1 > 4.0);
        let c = Axis::auto(&[], true);
        assert!(c.bounds().1 > c.bounds().0);
    }

    #[test]
    fn categories_label_their_slots() {
        let a = Axis::categories(vec!["paged".into(), "contiguous".into()]);
        assert_eq!(a.bounds(), (-0.5, 1.5));
        assert_eq!(a.label(1.0), "contiguous");
        assert_eq!(a.label(7.0), "");
    }
}
