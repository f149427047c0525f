//! Which engine steps become rows of `timeline.csv`, and the rows.
//!
//! With `output.timeline_interval_s` the first step at or after each sampling
//! instant is recorded, the next instant one interval after that step. By
//! default every step is recorded while the timeline holds at most
//! `output.timeline_max_rows` rows ([`DEFAULT_TIMELINE_MAX_ROWS`]); a longer
//! run keeps the first step of each interval of a width, the smallest of
//! 1 ms, 2 ms, 10 ms, 20 ms, 100 ms, 200 ms, 1 s, 2 s, 10 s, ... that leaves
//! at most that many rows. Each width divides the next, so the rows kept at
//! one width include those of every wider one: the recorder thins what it
//! holds whenever it passes the bound, memory stays bounded, and the rows
//! are those the final width would have picked from every step.

use super::TimelineRow;
use crate::units::{SimDuration, SimTime};

/// Rows the timeline keeps by default: every step of a run of up to about
/// 23,000 requests of the quickstart's chat traffic (4.3 steps a request),
/// and at most about 8 MB of `timeline.csv` and 22 MB of memory for any
/// longer run (`benches/fleet-1m.toml`, a million requests: one row a
/// simulated second, 37,112 rows). The charts draw at most 2,000 buckets of
/// it anyway.
pub const DEFAULT_TIMELINE_MAX_ROWS: u64 = 100_000;

/// The first thinning width, nanoseconds (1 ms).
const FIRST_WIDTH_NS: u64 = 1_000_000;

/// The width after `w` (0: every step): 1 ms, then alternately twice and
/// five times the previous one.
fn next_width(w: u64) -> u64 {
    if w == 0 {
        return FIRST_WIDTH_NS;
    }
    // w is 10^k ms or 2 * 10^k ms: the digit after the leading one tells.
    let mut lead = w / FIRST_WIDTH_NS;
    while lead >= 10 {
        lead /= 10;
    }
    if lead == 1 {
        w.saturating_mul(2)
    } else {
        w.saturating_mul(5)
    }
}

/// How steps are picked.
#[derive(Clone, Debug)]
enum Rule {
    /// `output.timeline_interval_s`: the first step at or after `next`, then
    /// `next` moves to one interval after it.
    Every {
        interval: SimDuration,
        next: SimTime,
    },
    /// The default: the first step of each `width` nanoseconds (0: every
    /// step) while the rows fit `max_rows`; `next` is the start of the
    /// next interval (nanoseconds).
    Bounded {
        max_rows: usize,
        width: u64,
        next: u64,
    },
    /// No step: a run read for its summary alone (sweeps, plans), which
    /// never writes its timeline.
    Off,
}

/// The rows of a timeline being recorded, and which steps become rows.
#[derive(Clone, Debug)]
pub struct TimelineRecorder {
    rule: Rule,
    rows: Vec<TimelineRow>,
}

impl TimelineRecorder {
    /// Records every `interval` when given; otherwise every step, thinned to
    /// at most `max_rows` rows (at least 1) as the module describes.
    pub fn new(interval: Option<SimDuration>, max_rows: u64) -> Self {
        let rule = match interval {
            Some(interval) => Rule::Every {
                interval,
                next: SimTime::ZERO,
            },
            None => Rule::Bounded {
                max_rows: usize::try_from(max_rows.max(1)).unwrap_or(usize::MAX),
                width: 0,
                next: 0,
            },
        };
        TimelineRecorder {
            rule,
            rows: Vec::new(),
        }
    }

    /// A recorder that records no step (see [`Rule::Off`]).
    pub fn off() -> Self {
        TimelineRecorder {
            rule: Rule::Off,
            rows: Vec::new(),
        }
    }

    /// Whether the step starting at `now` is recorded; if it is, the caller
    /// [`push`](Self::push)es its row before the next step.
    #[inline]
    pub fn due(&mut self, now: SimTime) -> bool {
        match &mut self.rule {
            Rule::Every { interval, next } => {
                if now >= *next {
                    *next = now + *interval;
                    true
                } else {
                    false
                }
            }
            Rule::Bounded { width, next, .. } => {
                let t = now.as_nanos();
                if t >= *next {
                    // With a width of 0 `next` stays 0: every step is due.
                    *next = t
                        .checked_div(*width)
                        .map_or(0, |b| (b + 1).saturating_mul(*width));
                    true
                } else {
                    false
                }
            }
            Rule::Off => false,
        }
    }

    /// Records `row`, a step [`due`](Self::due) said to record.
    #[inline]
    pub fn push(&mut self, row: TimelineRow) {
        self.rows.push(row);
        if let Rule::Bounded { max_rows, .. } = self.rule {
            if self.rows.len() > max_rows {
                self.thin();
            }
        }
    }

    /// Makes room at once for every row a bounded timeline can hold (up to
    /// [`DEFAULT_TIMELINE_MAX_ROWS`], and the one over it at which it
    /// thins), for a run that keeps its timeline. Doubling as the rows came
    /// copied them again into each larger vector and faulted in each new
    /// one: in a short run, whose steps are cheap, a few percent of its
    /// instructions (docs/speed-history.md, round 17). Capacity never
    /// touched costs address space, not memory. Past that bound, and under
    /// a fixed interval, the vector doubles.
    pub fn reserve(&mut self) {
        if let Rule::Bounded { max_rows, .. } = self.rule {
            self.rows
                .reserve(max_rows.min(DEFAULT_TIMELINE_MAX_ROWS as usize) + 1);
        }
    }

    /// Widens the interval until the rows fit, keeping the first row of each.
    #[cold]
    fn thin(&mut self) {
        let Rule::Bounded {
            max_rows,
            width,
            next,
        } = &mut self.rule
        else {
            return;
        };
        while self.rows.len() > *max_rows {
            *width = next_width(*width);
            let w = *width;
            let mut last: Option<u64> = None;
            self.rows.retain(|r| {
                let bucket = r.time.as_nanos() / w;
                let keep = last != Some(bucket);
                last = Some(bucket);
                keep
            });
        }
        let last = self.rows.last().map_or(0, |r| r.time.as_nanos());
        *next = (last / *width + 1).saturating_mul(*width);
    }

    /// Rows recorded so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was recorded.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in step order.
    pub fn into_rows(self) -> Vec<TimelineRow> {
        self.rows
    }

    /// The rows, in step order, leaving the recorder empty.
    pub fn take_rows(&mut self) -> Vec<TimelineRow> {
        std::mem::take(&mut self.rows)
    }

    /// The thinning width reached, nanoseconds (0: every step, or a fixed
    /// interval).
    pub fn width_ns(&self) -> u64 {
        match self.rule {
            Rule::Bounded { width, .. } => width,
            Rule::Every { .. } | Rule::Off => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ns: u64) -> TimelineRow {
        TimelineRow {
            time: SimTime::from_nanos(ns),
            running: 1,
            waiting: 0,
            levels: Default::default(),
            step: SimDuration::from_nanos(1),
        }
    }

    fn record(times: &[u64], max_rows: u64) -> TimelineRecorder {
        let mut r = TimelineRecorder::new(None, max_rows);
        for &t in times {
            if r.due(SimTime::from_nanos(t)) {
                r.push(row(t));
            }
        }
        r
    }

    /// A bounded timeline prepared for a run holds its rows, and the one
    /// over the bound that makes it thin, without growing; the room it
    /// takes at once stops at the default bound.
    #[test]
    fn a_prepared_timeline_holds_its_rows_without_growing() {
        for max_rows in [1u64, 7, 1000] {
            let mut r = TimelineRecorder::new(None, max_rows);
            r.reserve();
            let room = r.rows.capacity();
            assert!(
                room > max_rows as usize,
                "{room} rows of room for {max_rows}"
            );
            for t in 0..=max_rows {
                assert!(r.due(SimTime::from_nanos(t)));
                r.push(row(t));
            }
            assert_eq!(r.rows.capacity(), room, "grew under {max_rows} rows");
        }
        let mut huge = TimelineRecorder::new(None, u64::MAX);
        huge.reserve();
        assert!(huge.rows.capacity() <= 2 * (DEFAULT_TIMELINE_MAX_ROWS as usize + 1));
        // A fixed interval's rows (as many as the run is long) grow as they come.
        let mut every = TimelineRecorder::new(Some(SimDuration::from_nanos(10)), 1);
        every.reserve();
        assert_eq!(every.rows.capacity(), 0);
    }

    /// The first of `times` in each interval of `w` nanoseconds.
    fn first_of_each(times: &[u64], w: u64) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for &t in times {
            if out.last().is_none_or(|&l| l / w != t / w) {
                out.push(t);
            }
        }
        out
    }

    #[test]
    fn widths_climb_one_two_ten() {
        let mut w = 0;
        let mut seen = Vec::new();
        for _ in 0..8 {
            w = next_width(w);
            seen.push(w / FIRST_WIDTH_NS);
        }
        assert_eq!(seen, [1, 2, 10, 20, 100, 200, 1000, 2000]);
    }

    #[test]
    fn a_short_run_keeps_every_step() {
        let times: Vec<u64> = (0..1000).map(|i| i * 7_000_000 + 3).collect();
        let r = record(&times, 1000);
        assert_eq!(r.width_ns(), 0);
        let got: Vec<u64> = r.into_rows().iter().map(|r| r.time.as_nanos()).collect();
        assert_eq!(got, times);
    }

    #[test]
    fn a_long_run_keeps_what_the_final_width_picks_from_every_step() {
        // Irregular steps: bursts of short ones and long gaps.
        let mut times = Vec::new();
        let mut t = 5u64;
        for i in 0..200_000u64 {
            t += 1_000_000
                + (i * 7919 % 13) * 3_000_000
                + if i % 977 == 0 { 4_000_000_000 } else { 0 };
            times.push(t);
        }
        for max in [1u64, 2, 10, 1000, 50_000, 199_999, 200_000] {
            let r = record(&times, max);
            let w = r.width_ns();
            let got: Vec<u64> = r.into_rows().iter().map(|r| r.time.as_nanos()).collect();
            assert!(got.len() as u64 <= max, "{max}");
            if w == 0 {
                assert_eq!(got, times, "{max}");
                continue;
            }
            assert_eq!(got, first_of_each(&times, w), "{max}");
            // The narrower width would not have fit.
            let narrower = {
                let mut v = 0;
                while next_width(v) != w {
                    v = next_width(v);
                }
                v
            };
            let n = if narrower == 0 {
                times.len()
            } else {
                first_of_each(&times, narrower).len()
            };
            assert!(
                n as u64 > max,
                "{max}: {n} rows would have fit at {narrower} ns"
            );
        }
    }

    #[test]
    fn a_fixed_interval_samples_one_interval_after_the_last_row() {
        let mut r = TimelineRecorder::new(Some(SimDuration::from_nanos(10)), 1);
        let mut kept = Vec::new();
        for t in [0u64, 4, 9, 10, 12, 21, 25, 31, 100] {
            if r.due(SimTime::from_nanos(t)) {
                r.push(row(t));
                kept.push(t);
            }
        }
        assert_eq!(kept, [0, 10, 21, 31, 100]);
        assert_eq!(r.len(), 5, "a fixed interval is not bounded");
    }
}
