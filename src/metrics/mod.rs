//! Per-request records, per-step observations and the run summary
//! (DESIGN.md section 8). Times are [`SimTime`] here and seconds in `summary`.

mod summary;

pub use summary::{Summary, percentile, summarize};

use serde::Serialize;

use crate::units::{SimDuration, SimTime};

/// How a request ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Generated all its output tokens.
    Ok,
    /// Failed because its sequence could not grow (`on_oom = "reject"`, or a
    /// sequence that cannot fit even alone).
    Oom,
    /// Could never fit (prompt or reservation larger than an empty cache, the
    /// model's context, or the step budget without chunked prefill).
    Unservable,
    /// Lost in, or refused during, a server crash.
    Crashed,
    /// Waited longer than `queue_timeout_s` for admission.
    Timeout,
}

impl Outcome {
    /// The name used in CSV files.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Oom => "oom",
            Outcome::Unservable => "unservable",
            Outcome::Crashed => "crashed",
            Outcome::Timeout => "timeout",
        }
    }

    /// Whether this outcome is a failure for memory (counted by `oom_rate`).
    pub const fn is_memory_failure(self) -> bool {
        matches!(self, Outcome::Oom | Outcome::Unservable | Outcome::Crashed)
    }
}

/// Everything kvsim knows about one request; a row of `requests.csv`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Arrival order, from 0.
    pub id: u64,
    /// When it arrived.
    pub arrival: SimTime,
    /// When it was first admitted to the batch.
    pub admitted: Option<SimTime>,
    /// When its first output token was emitted.
    pub first_token: Option<SimTime>,
    /// When it ended (any outcome).
    pub finished: Option<SimTime>,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens the model would generate if nothing failed.
    pub output_target: u32,
    /// Output tokens actually emitted.
    pub output_tokens: u32,
    /// The request's output cap.
    pub max_tokens: u32,
    /// Times it was preempted.
    pub preemptions: u32,
    /// How it ended (`None` while in flight).
    pub outcome: Option<Outcome>,
}

impl RequestRecord {
    /// Time to first token.
    pub fn ttft(&self) -> Option<SimDuration> {
        self.first_token.map(|t| t - self.arrival)
    }

    /// Time per output token after the first, in seconds (vLLM benchmark
    /// definition); `None` for fewer than two tokens.
    pub fn tpot_s(&self) -> Option<f64> {
        match (self.first_token, self.finished) {
            (Some(first), Some(end)) if self.output_tokens > 1 => {
                Some((end - first).as_secs_f64() / f64::from(self.output_tokens - 1))
            }
            _ => None,
        }
    }

    /// End-to-end latency.
    pub fn e2e(&self) -> Option<SimDuration> {
        self.finished.map(|t| t - self.arrival)
    }
}

/// One row of `timeline.csv`: the server right after a step was scheduled.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TimelineRow {
    /// Start of the step.
    pub time: SimTime,
    /// Sequences in the step's batch.
    pub running: u32,
    /// Requests waiting for admission.
    pub waiting: u32,
    /// KV bytes held by sequences.
    pub kv_used_bytes: u64,
    /// `kv_used_bytes` over the KV budget.
    pub kv_frac: f64,
    /// The step's duration.
    pub step: SimDuration,
}

/// Time-weighted and per-step statistics gathered while the engine runs.
///
/// Occupancy is a step function of time; [`Collector::level`] is called
/// whenever it may change, and integrates the previous level over the elapsed
/// span. Nothing here grows with the run: it is O(1) memory.
#[derive(Clone, Debug, Default)]
pub struct Collector {
    last_time: SimTime,
    last_frac: f64,
    /// Integral of KV occupancy over time, fraction-nanoseconds.
    kv_frac_integral: f64,
    /// Nanoseconds spent at or above 90 % occupancy.
    above_90_ns: u64,
    /// Highest occupancy seen.
    pub kv_peak_frac: f64,
    /// Engine steps run.
    pub steps: u64,
    /// Sum over steps of their batch size.
    batch_sum: u64,
    /// Largest batch in a step.
    pub batch_peak: u32,
    /// Nanoseconds the engine spent running steps.
    pub busy_ns: u64,
    /// Server crashes plus growth failures.
    pub oom_events: u64,
    /// Sequences evicted to make room.
    pub preemptions: u64,
}

/// Occupancy at or above which seed 000 says one long prompt can crash a server.
pub const HIGH_OCCUPANCY: f64 = 0.9;

impl Collector {
    /// Records that KV occupancy is `frac` from `now` on.
    pub fn level(&mut self, now: SimTime, frac: f64) {
        let dt = now.saturating_since(self.last_time).as_nanos();
        self.kv_frac_integral += self.last_frac * dt as f64;
        if self.last_frac >= HIGH_OCCUPANCY {
            self.above_90_ns += dt;
        }
        self.last_time = now;
        self.last_frac = frac;
        if frac > self.kv_peak_frac {
            self.kv_peak_frac = frac;
        }
    }

    /// Records one engine step of `batch` sequences lasting `duration`.
    pub fn step(&mut self, batch: u32, duration: SimDuration) {
        self.steps += 1;
        self.batch_sum += u64::from(batch);
        self.batch_peak = self.batch_peak.max(batch);
        self.busy_ns += duration.as_nanos();
    }

    /// Mean KV occupancy over `[0, end]`.
    pub fn kv_mean_frac(&self, end: SimTime) -> f64 {
        let mut c = self.clone();
        c.level(end, 0.0);
        if end.as_nanos() == 0 {
            0.0
        } else {
            c.kv_frac_integral / end.as_nanos() as f64
        }
    }

    /// Fraction of `[0, end]` spent at or above 90 % occupancy.
    pub fn kv_time_above_90(&self, end: SimTime) -> f64 {
        let mut c = self.clone();
        c.level(end, 0.0);
        if end.as_nanos() == 0 {
            0.0
        } else {
            c.above_90_ns as f64 / end.as_nanos() as f64
        }
    }

    /// Mean sequences per step.
    pub fn batch_mean(&self) -> f64 {
        if self.steps == 0 {
            0.0
        } else {
            self.batch_sum as f64 / self.steps as f64
        }
    }
}
