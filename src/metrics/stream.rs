//! Streaming mode: a run's summary without its per-request records.
//!
//! Each request is folded in as it ends: counts and sums exactly
//! ([`RecordTotals`]), latencies into DDSketches (Masson, Rim and Lee,
//! "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with Relative-Error
//! Guarantees", VLDB 2019), through the `sketches-ddsketch` crate (Vector's
//! port of Datadog's Go implementation).
//!
//! # Why DDSketch
//!
//! Its error is *relative*: every quantile it reports is within
//! [`RELATIVE_ERROR`] (1 %) of the value of the order statistic at that
//! rank, whether the latency is 20 ms or 20 minutes, which suits latencies
//! spanning orders of magnitude (a TTFT tail under queueing). An HDR
//! histogram bounds the relative error too, but allocates every bucket of its
//! range up front (hundreds of KiB per metric at nanosecond resolution over
//! hours); a DDSketch grows bins only where values fall (about 700 for
//! latencies between 100 µs and an hour, 8 bytes each) and merges bin by
//! bin, so a cluster's replicas each keep one and the summary merges them,
//! in any order, to the same result.
//!
//! # The bound
//!
//! For quantile `q` of `n` values, the sketch reports a value within 1 % of
//! the order statistic of rank `floor(q (n - 1))` (0-based). The exact mode
//! interpolates between that order statistic and the next one up (NumPy's
//! default), so the two agree within 1 % plus the gap between those two
//! neighbours, which vanishes as runs grow (tested in
//! `tests/kvsim/streaming.rs`). Minimum and maximum (`q` = 0, 1) are exact.
//! The mean TPOT is exact up to the order of floating-point additions.

use sketches_ddsketch::{Config, DDSketch};

use super::summary::{Latencies, RecordTotals};
use super::{Outcome, RequestRecord};
use crate::scenario::Slo;

/// The sketches' relative accuracy: each reported quantile is within this
/// fraction of the value at its rank.
pub const RELATIVE_ERROR: f64 = 0.01;

/// Most bins a sketch grows to (its lowest ones are merged beyond): with
/// 1 % accuracy, 4,096 bins span a factor of 10^35, far more than
/// nanoseconds to centuries (10^19).
const MAX_BINS: u32 = 4096;

/// The sketch configuration of every latency. Values are nanoseconds, so the
/// smallest nonzero one is 1: anything below half of it is a zero.
fn config() -> Config {
    Config::new(RELATIVE_ERROR, MAX_BINS, 0.5)
}

/// One latency's sketch, fed in nanoseconds, read in seconds.
#[derive(Clone)]
struct Sketch(DDSketch);

impl Sketch {
    fn new() -> Self {
        Sketch(DDSketch::new(config()))
    }

    fn add_secs(&mut self, secs: f64) {
        self.0.add(secs * 1e9);
    }

    fn add_nanos(&mut self, nanos: u64) {
        self.0.add(nanos as f64);
    }

    fn merge(&mut self, o: &Sketch) {
        self.0
            .merge(&o.0)
            .expect("every sketch has the same configuration");
    }

    /// Percentiles `qs` (0..=100), seconds; `None` when empty.
    fn percentiles<const N: usize>(&self, qs: [f64; N]) -> [Option<f64>; N] {
        qs.map(|q| {
            self.0
                .quantile(q / 100.0)
                .expect("percentiles are within 0..=100")
                .map(|ns| ns / 1e9)
        })
    }
}

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sketch({} values)", self.0.count())
    }
}

/// A run's summary inputs, folded in one ended request at a time: O(1)
/// memory in the number of requests.
#[derive(Clone, Debug)]
pub struct RecordStream {
    totals: RecordTotals,
    ttft: Sketch,
    e2e: Sketch,
    tpot: Sketch,
    /// Σ TPOT (seconds) and how many.
    tpot_sum: f64,
    queue: Sketch,
    load: Sketch,
    prefill: Sketch,
}

impl Default for RecordStream {
    fn default() -> Self {
        RecordStream {
            totals: RecordTotals::default(),
            ttft: Sketch::new(),
            e2e: Sketch::new(),
            tpot: Sketch::new(),
            tpot_sum: 0.0,
            queue: Sketch::new(),
            load: Sketch::new(),
            prefill: Sketch::new(),
        }
    }
}

impl RecordStream {
    /// Folds in the record of a request that has ended, judged against `slo`.
    /// The latencies are those [`Latencies::exact`] takes: completed
    /// requests' only.
    pub fn add(&mut self, r: &RequestRecord, slo: &Slo) {
        self.totals.add(r, slo);
        if r.outcome != Some(Outcome::Ok) {
            return;
        }
        if let Some(t) = r.ttft() {
            self.ttft.add_nanos(t.as_nanos());
            self.load.add_nanos(r.load.as_nanos());
        }
        if let Some(t) = r.e2e() {
            self.e2e.add_nanos(t.as_nanos());
        }
        if let Some(t) = r.tpot_s() {
            self.tpot.add_secs(t);
            self.tpot_sum += t;
        }
        if let Some(t) = r.queue() {
            self.queue.add_nanos(t.as_nanos());
        }
        if let Some(t) = r.prefill() {
            self.prefill.add_nanos(t.as_nanos());
        }
    }

    /// Adds another part's requests (another replica's).
    pub fn merge(&mut self, o: &RecordStream) {
        self.totals.merge(&o.totals);
        self.ttft.merge(&o.ttft);
        self.e2e.merge(&o.e2e);
        self.tpot.merge(&o.tpot);
        self.tpot_sum += o.tpot_sum;
        self.queue.merge(&o.queue);
        self.load.merge(&o.load);
        self.prefill.merge(&o.prefill);
    }

    /// The counts and sums so far.
    pub fn totals(&self) -> &RecordTotals {
        &self.totals
    }

    /// The latency percentiles so far, from the sketches.
    pub fn latencies(&self) -> Latencies {
        let n = self.tpot.0.count();
        Latencies {
            ttft: self.ttft.percentiles([50.0, 90.0, 99.0]),
            e2e: self.e2e.percentiles([50.0, 99.0]),
            tpot: self.tpot.percentiles([50.0, 90.0, 99.0]),
            tpot_mean: (n > 0).then(|| self.tpot_sum / n as f64),
            queue: self.queue.percentiles([50.0, 99.0]),
            load: self.load.percentiles([50.0, 99.0]),
            prefill: self.prefill.percentiles([50.0, 99.0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented bound, on values spread over six orders of magnitude:
    /// each percentile within 1 % of the order statistic at its rank.
    #[test]
    fn sketch_percentiles_are_within_the_relative_error_of_their_rank() {
        let mut s = Sketch::new();
        let mut values: Vec<u64> = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = 1_000 + x % 1_000_000_000 / (1 + x % 977);
            values.push(v);
            s.add_nanos(v);
        }
        values.sort_unstable();
        for q in [1.0, 10.0, 50.0, 90.0, 99.0, 99.9] {
            let rank = (q / 100.0 * (values.len() - 1) as f64) as usize;
            let exact = values[rank] as f64 / 1e9;
            let got = s.percentiles([q])[0].unwrap();
            assert!(
                (got - exact).abs() <= RELATIVE_ERROR * exact,
                "p{q}: {got} vs {exact}"
            );
        }
        let [lo, hi] = s.percentiles([0.0, 100.0]);
        assert_eq!(lo, Some(values[0] as f64 / 1e9));
        assert_eq!(hi, Some(*values.last().unwrap() as f64 / 1e9));
    }

    /// Merging is exact: two halves merged report what one sketch of all
    /// does, whatever the order.
    #[test]
    fn merged_sketches_equal_one_sketch_of_everything() {
        let (mut a, mut b, mut all) = (Sketch::new(), Sketch::new(), Sketch::new());
        for v in 1..20_000u64 {
            let ns = v * v % 7_919 * 1_000 + 1;
            if v % 3 == 0 { &mut a } else { &mut b }.add_nanos(ns);
            all.add_nanos(ns);
        }
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b;
        ba.merge(&a);
        let qs = [0.0, 50.0, 90.0, 99.0, 100.0];
        assert_eq!(ab.percentiles(qs), all.percentiles(qs));
        assert_eq!(ba.percentiles(qs), all.percentiles(qs));
    }

    #[test]
    fn zero_latencies_are_zeros_and_an_empty_sketch_has_none() {
        let mut s = Sketch::new();
        assert_eq!(s.percentiles([50.0]), [None]);
        for _ in 0..10 {
            s.add_nanos(0);
        }
        s.add_nanos(5);
        assert_eq!(s.percentiles([50.0, 100.0]), [Some(0.0), Some(5e-9)]);
    }
}
