//! Guards against runs that would not end in reasonable time: a cap on the
//! events one run may handle (`--max-events`), a wall-clock deadline
//! (`--time-limit`), and an up-front estimate of a scenario's work so a run
//! that would take hours says so before it starts.
//!
//! The engine calls [`Guard::tick`] once per event. It is one increment and
//! one comparison; the clock is read only every [`CHECK_EVERY`] events, so the
//! guard costs nothing measurable in the hot loop.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::{Error, SpecError};
use crate::ranges::HORIZON_S;
use crate::scenario::{Scenario, Stop};
use crate::traffic::ArrivalSpec;
use crate::units::{NANOS_PER_SEC, SimTime};

/// Events between two reads of the wall clock when a deadline is set. An
/// event takes well under a microsecond, so a deadline is overshot by a few
/// milliseconds at most.
pub const CHECK_EVERY: u64 = 4096;

/// Limits on one run's work. The default sets none.
#[derive(Copy, Clone, Debug, Default)]
pub struct Limits {
    /// Most events one run may handle (arrivals, step ends, restarts, ...).
    pub max_events: Option<u64>,
    /// Wall-clock instant after which a run stops.
    pub deadline: Option<Instant>,
    /// Set from outside (Ctrl-C) to stop the run, checked as often as the
    /// deadline.
    pub interrupt: Option<&'static AtomicBool>,
}

/// Why a guarded run stopped before it finished.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It needed more than `limit` events.
    MaxEvents {
        /// The limit.
        limit: u64,
        /// Simulated time it had reached.
        at: SimTime,
    },
    /// The wall-clock deadline passed.
    TimeLimit {
        /// Events it had handled.
        events: u64,
        /// Simulated time it had reached.
        at: SimTime,
    },
    /// The interrupt flag was set.
    Interrupted,
    /// The simulated clock passed [`HORIZON_S`]: an input (an arrival rate
    /// near zero for many requests, long think times, a trace's timestamps,
    /// a huge step cost) makes time run away. Not a limit the user set: the
    /// inputs are wrong, and nothing computed past it would be right.
    Horizon {
        /// Simulated time of the event that passed it.
        at: SimTime,
    },
}

impl Stopped {
    /// The error a command reports for this stop of the run of the scenario
    /// at `path`; `context` ends the message (what was kept). A run past the
    /// horizon is bad input (exit 2); the limits exit 3.
    pub fn into_error(self, path: &Path, context: &str) -> Error {
        match self {
            Stopped::Horizon { .. } => Error::Scenario {
                path: path.to_path_buf(),
                source: SpecError::new("", format!("{self}; {context}")),
            },
            _ => Error::Limit {
                path: path.to_path_buf(),
                reason: format!("{self}; {context}"),
            },
        }
    }
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Stopped::MaxEvents { limit, at } => write!(
                f,
                "stopped by --max-events {limit} at simulated time {:.3} s, before the run \
                 finished; raise the limit or shrink the scenario (fewer requests, a shorter \
                 duration_s)",
                at.as_secs_f64()
            ),
            Stopped::TimeLimit { events, at } => write!(
                f,
                "stopped by --time-limit after {events} events, at simulated time {:.3} s, \
                 before the run finished; raise the limit or shrink the scenario",
                at.as_secs_f64()
            ),
            Stopped::Interrupted => f.write_str("interrupted"),
            Stopped::Horizon { at } => write!(
                f,
                "the simulated clock passed {HORIZON_S:e} s (~317 years), reaching {:.3e} s, \
                 before the run finished: an input makes time run away (an arrival rate near \
                 zero for many requests, think times, a trace's timestamps or a step cost far \
                 too large); see docs/ranges.md",
                at.as_secs_f64()
            ),
        }
    }
}

/// The engine's side of [`Limits`]: counts events, checks the limits.
#[derive(Clone, Debug)]
pub(super) struct Guard {
    limits: Limits,
    events: u64,
    /// The event count at which the limits are next checked.
    next_check: u64,
}

impl Guard {
    pub(super) fn new(limits: Limits) -> Self {
        let mut g = Guard {
            limits,
            events: 0,
            next_check: 0,
        };
        g.next_check = g.following_check();
        g
    }

    fn following_check(&self) -> u64 {
        let by_clock = if self.limits.deadline.is_some() || self.limits.interrupt.is_some() {
            self.events + 1 + (self.events > 0) as u64 * (CHECK_EVERY - 1)
        } else {
            u64::MAX
        };
        let by_count = self
            .limits
            .max_events
            .map_or(u64::MAX, |m| m.saturating_add(1));
        by_clock.min(by_count)
    }

    /// Counts one event handled where it was raised, within the horizon (a
    /// request handed to a replica mid-step): the limits are checked at the
    /// next [`Guard::tick`].
    #[inline(always)]
    pub(super) fn count(&mut self) {
        self.events += 1;
    }

    /// Counts one event at simulated time `now`; an error once a limit is hit
    /// or the clock has passed the horizon.
    #[inline(always)]
    pub(super) fn tick(&mut self, now: SimTime) -> Result<(), Stopped> {
        beyond_horizon(now)?;
        self.events += 1;
        if self.events < self.next_check {
            return Ok(());
        }
        self.check(now)
    }

    #[cold]
    fn check(&mut self, now: SimTime) -> Result<(), Stopped> {
        if let Some(limit) = self.limits.max_events {
            if self.events > limit {
                return Err(Stopped::MaxEvents { limit, at: now });
            }
        }
        if self
            .limits
            .interrupt
            .is_some_and(|f| f.load(Ordering::Relaxed))
        {
            return Err(Stopped::Interrupted);
        }
        if let Some(deadline) = self.limits.deadline {
            if Instant::now() >= deadline {
                return Err(Stopped::TimeLimit {
                    events: self.events,
                    at: now,
                });
            }
        }
        self.next_check = self.following_check();
        Ok(())
    }
}

/// The horizon in simulated nanoseconds.
const HORIZON_NS: u64 = (HORIZON_S * NANOS_PER_SEC as f64) as u64;

/// An error when `now` lies past the horizon. One comparison: every event
/// and the run's last instant go through it.
#[inline(always)]
pub(super) fn beyond_horizon(now: SimTime) -> Result<(), Stopped> {
    if now.as_nanos() > HORIZON_NS {
        return Err(Stopped::Horizon { at: now });
    }
    Ok(())
}

/// Engine speed assumed by [`estimate_work`]: wall seconds per sequence-step
/// (one output token of one sequence) and per engine step (its event, pricing,
/// memory accounting and timeline row). Measured with a month of 20 req/s
/// chat traffic on one shared core: ~1.7 us per step at batch ~20.
const SECS_PER_TOKEN_STEP: f64 = 10e-9;
const SECS_PER_STEP: f64 = 1.5e-6;

/// Above this estimated wall time, `run` and `sweep` warn before starting.
pub const WARN_WALL_S: f64 = 60.0;

/// A rough size of one run, from the scenario alone (nothing is simulated).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct WorkEstimate {
    /// Requests it is expected to issue.
    pub requests: f64,
    /// Sequence-steps: one per output token of every sample.
    pub token_steps: f64,
    /// Engine steps, at a batch guessed from the load (Little's law).
    pub steps: f64,
    /// Wall-clock seconds the engine is expected to need.
    pub wall_s: f64,
}

impl fmt::Display for WorkEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "~{:.3e} requests, ~{:.3e} token steps in ~{:.3e} engine steps, about {}",
            self.requests,
            self.token_steps,
            self.steps,
            human_secs(self.wall_s)
        )
    }
}

/// `3725.0` -> `1.0 h`.
pub fn human_secs(s: f64) -> String {
    if !s.is_finite() {
        "forever".into()
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 2.0 * 86400.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86400.0)
    }
}

/// Estimates the work of one run of `scenario`: expected requests times mean
/// output tokens (samples included) gives the sequence-steps; a batch from
/// Little's law (arrival rate times a decode-bound latency, capped by
/// `max_num_seqs`) turns them into engine steps. Sessions' later turns and
/// preemptions' recomputation are not counted, so it can be low by their
/// factor; it exists to say "hours" before a run starts, not to schedule.
pub fn estimate_work(scenario: &Scenario) -> WorkEstimate {
    let (_, mean_output) = scenario.traffic.mean_lengths();
    let samples = f64::from(scenario.traffic.samples().max(1));
    let d = &scenario.deployment;
    let tp = f64::from(d.tp.max(1));
    // A decode step cannot be faster than reading the weights once.
    let step_floor = d.efficiency.step_overhead_s
        + f64::from(scenario.model.layers) * d.efficiency.layer_overhead_s
        + scenario.model.weight_bytes() as f64 / (d.gpu.hbm_bandwidth * tp * d.efficiency.mbu);
    let latency = mean_output.max(1.0) * step_floor;
    let seqs = f64::from(scenario.scheduler.max_num_seqs);
    let trace = scenario.traffic.trace_len().map(|n| n as f64);
    let stated = stated_requests(scenario);
    let (requests, batch) = match (&scenario.spec.traffic.arrival, scenario.stop) {
        // A trace (or its end) sets the count; the batch is the engine's cap.
        (_, stop @ (Stop::TraceEnd | Stop::Requests(_)))
            if trace.is_some() || stop == Stop::TraceEnd =>
        {
            (stated.unwrap_or(0.0), seqs)
        }
        (ArrivalSpec::Closed { users, think_s, .. }, stop) => {
            let users = f64::from(*users);
            let n = match stop {
                Stop::Duration(t) => users * t.as_secs_f64() / (think_s.max(0.0) + latency),
                _ => stated.unwrap_or(0.0),
            };
            (n, users.min(seqs))
        }
        (arrival, stop) => {
            let rate = mean_rate(arrival, stop);
            let n = match stop {
                Stop::Duration(t) => rate * t.as_secs_f64(),
                _ => stated.unwrap_or(0.0),
            };
            (n, (rate * latency).clamp(1.0, seqs))
        }
    };
    let token_steps = requests * samples * mean_output.max(1.0);
    let steps = (token_steps / batch.max(1.0)).max(requests);
    WorkEstimate {
        requests,
        token_steps,
        steps,
        wall_s: token_steps * SECS_PER_TOKEN_STEP + steps * SECS_PER_STEP,
    }
}

/// The requests a run of `scenario` is expected to issue, as
/// [`estimate_work`] counts them, without its mean lengths when the scenario
/// states the count (a request count or a trace): those come from the
/// length distributions' probability tables, which cost far more than a
/// short run's simulation.
pub fn expected_requests(scenario: &Scenario) -> f64 {
    stated_requests(scenario).unwrap_or_else(|| estimate_work(scenario).requests)
}

/// A bound on the requests [`expected_requests`] finds, read without the
/// length distributions' probability tables (which cost a run of a few
/// hundred requests about a fifth of its time): the stated count, an
/// open-loop rate's over the duration, or a closed loop's users each
/// sending one request per think time (no service time at all); `None`
/// where none is that cheap (a closed loop that does not think).
pub fn requests_at_most(scenario: &Scenario) -> Option<f64> {
    if let Some(n) = stated_requests(scenario) {
        return Some(n);
    }
    let Stop::Duration(t) = scenario.stop else {
        return None;
    };
    match &scenario.spec.traffic.arrival {
        ArrivalSpec::Closed { users, think_s, .. } => {
            (*think_s > 0.0).then(|| f64::from(*users) * t.as_secs_f64() / think_s)
        }
        arrival => Some(mean_rate(arrival, scenario.stop) * t.as_secs_f64()),
    }
}

/// The requests a run issues when the scenario states them: its request
/// count (a trace's length if shorter), or a trace's length when it runs to
/// the trace's end; `None` when it runs for a duration.
fn stated_requests(scenario: &Scenario) -> Option<f64> {
    let trace = scenario.traffic.trace_len().map(|n| n as f64);
    match scenario.stop {
        Stop::Requests(n) => Some(trace.map_or(n as f64, |t| t.min(n as f64))),
        Stop::TraceEnd => Some(trace.unwrap_or(0.0)),
        Stop::Duration(_) => None,
    }
}

/// Bytes a run holds per request until it ends: its record, the engine's
/// per-request state and the summary's per-request latencies (the files are
/// streamed to disk, a few blocks of rows at a time).
///
/// Measured (Linux, release build, this repository, December 2026) by
/// `tests/kvsim/extreme.rs::the_memory_estimate_covers_a_measured_run`, which
/// runs quickstart traffic (llama-3.1-8b on h100-sxm, 25 req/s) for 200,000
/// requests in a process of its own, writes its files as `kvsim run` does
/// and reads its peak RSS (`VmHWM`): with one timeline row per step
/// (698,914 rows, `output.timeline_max_rows = 1000000`) the run raised VmHWM
/// by 195.7 MB; with `output.timeline_interval_s = 3600` (3 rows) by 43.2 MB,
/// i.e. 216 bytes per request and (195.7 - 43.2) MB / 698,914 = 218 bytes per
/// row; with the default timeline (80,008 rows) by 64.0 MB. (Before the
/// files were streamed, `requests.csv` was built in memory first: 267 bytes
/// per request.) Vectors that grow by doubling hold between 1x and 2x their
/// contents, so the constants are those measurements times 1.5.
pub const BYTES_PER_REQUEST: f64 = 330.0;

/// Bytes a run holds per timeline row (one per engine step, up to
/// `output.timeline_max_rows` by default): the row and the numbers
/// `report.html`'s charts read from it. Measured with [`BYTES_PER_REQUEST`]
/// (218 bytes, times 1.5).
pub const BYTES_PER_STEP: f64 = 330.0;

/// Memory of the process apart from the run's records (binary, allocator,
/// loaded files, thread stacks), bytes.
pub const BASE_BYTES: f64 = 64.0 * 1024.0 * 1024.0;

/// Memory one run of a scenario is expected to hold at its peak.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// Requests whose records it keeps.
    pub requests: f64,
    /// Timeline rows it keeps.
    pub rows: f64,
    /// Bytes, the process's own base memory excluded.
    pub bytes: f64,
}

/// Estimates the memory one run of `scenario` holds at its peak from its
/// work estimate: every request's record (none in streaming mode) and every
/// timeline row are kept until the run ends and its files are written.
pub fn estimate_memory(scenario: &Scenario, work: &WorkEstimate) -> MemoryEstimate {
    // Simulated seconds: the duration, or an open loop's requests over its rate.
    let simulated = match (scenario.stop, &scenario.spec.traffic.arrival) {
        (Stop::Duration(t), _) => Some(t.as_secs_f64()),
        (Stop::Requests(n), arrival) => {
            let rate = mean_rate(arrival, scenario.stop);
            (rate > 0.0).then(|| n as f64 / rate)
        }
        _ => None,
    };
    let rows = match (scenario.timeline_interval, simulated) {
        (Some(every), Some(t)) if every.as_secs_f64() > 0.0 => {
            work.steps.min(t / every.as_secs_f64() + 1.0)
        }
        (Some(_), _) => work.steps,
        // The default timeline keeps at most its bound per replica.
        (None, _) => work.steps.min(
            scenario.timeline_max_rows as f64 * f64::from(scenario.deployment.replicas.max(1)),
        ),
    };
    // Streaming mode keeps the records of requests in flight only.
    let requests = if super::streams(scenario) {
        0.0
    } else {
        work.requests
    };
    MemoryEstimate {
        requests,
        rows,
        bytes: requests * BYTES_PER_REQUEST + rows * BYTES_PER_STEP,
    }
}

/// What to do about a run projected to need `need` bytes on a machine with
/// `total` bytes of physical memory (`None`: unknown).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MemoryVerdict {
    /// Well within the machine (or its memory is unknown).
    Fine,
    /// More than half of the machine's memory: warn.
    Warn,
    /// More than all of it: refuse unless `--allow-large` (then warn).
    Refuse,
}

/// [`MemoryVerdict`] of `need` bytes against `total`.
pub fn memory_verdict(need: f64, total: Option<u64>) -> MemoryVerdict {
    match total {
        Some(t) if need > t as f64 => MemoryVerdict::Refuse,
        Some(t) if need > t as f64 / 2.0 => MemoryVerdict::Warn,
        _ => MemoryVerdict::Fine,
    }
}

/// The mean arrival rate of an open-loop process over the run.
fn mean_rate(arrival: &ArrivalSpec, stop: Stop) -> f64 {
    match *arrival {
        ArrivalSpec::Poisson { rate }
        | ArrivalSpec::Gamma { rate, .. }
        | ArrivalSpec::Constant { rate } => rate,
        ArrivalSpec::Ramp { from, to, over_s } => match stop {
            Stop::Duration(t) if t.as_secs_f64() < over_s => (from + to) / 2.0,
            _ => to,
        },
        ArrivalSpec::Closed { .. } | ArrivalSpec::Trace { .. } => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request count `streams` reads without the length tables is
    /// the work estimate's, and the cheap bound that can spare it reading
    /// them bounds it (so the streaming decision it short-cuts is the
    /// same), for every bundled scenario (request counts, durations, closed
    /// loops, sessions, traces) and for each stop rule.
    #[test]
    fn expected_requests_are_the_work_estimates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("scenarios/")
            .map(|e| e.expect("an entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        names.sort();
        assert!(names.len() >= 10);
        let mut bounded = 0;
        for path in names {
            for sets in [&[][..], &["requests=40"], &["duration_s=30"]] {
                let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
                // Some scenarios set one stop rule and refuse the other.
                let Ok(s) = Scenario::load(&path, &sets) else {
                    continue;
                };
                let expected = expected_requests(&s);
                assert_eq!(
                    expected,
                    estimate_work(&s).requests,
                    "{} {sets:?}",
                    path.display()
                );
                if let Some(bound) = requests_at_most(&s) {
                    assert!(
                        expected <= bound,
                        "{} {sets:?}: {expected} > {bound}",
                        path.display()
                    );
                    bounded += 1;
                }
            }
        }
        assert!(bounded >= 20, "{bounded} bounds checked");
    }

    #[test]
    fn the_event_cap_allows_exactly_its_count() {
        let mut g = Guard::new(Limits {
            max_events: Some(3),
            ..Limits::default()
        });
        for _ in 0..3 {
            assert!(g.tick(SimTime::ZERO).is_ok());
        }
        assert!(matches!(
            g.tick(SimTime::ZERO),
            Err(Stopped::MaxEvents { limit: 3, .. })
        ));
    }

    #[test]
    fn a_passed_deadline_stops_at_the_first_event_and_then_every_check() {
        let mut g = Guard::new(Limits {
            deadline: Some(Instant::now()),
            ..Limits::default()
        });
        assert!(matches!(
            g.tick(SimTime::ZERO),
            Err(Stopped::TimeLimit { events: 1, .. })
        ));
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        let mut g = Guard::new(Limits {
            max_events: Some(10_000),
            deadline: Some(far),
            ..Limits::default()
        });
        for _ in 0..10_000 {
            assert!(g.tick(SimTime::ZERO).is_ok());
        }
        assert!(g.tick(SimTime::ZERO).is_err());
    }

    #[test]
    fn an_interrupt_stops_at_the_next_check() {
        static FLAG: AtomicBool = AtomicBool::new(false);
        let mut g = Guard::new(Limits {
            interrupt: Some(&FLAG),
            ..Limits::default()
        });
        assert!(g.tick(SimTime::ZERO).is_ok());
        FLAG.store(true, Ordering::Relaxed);
        let stopped = (0..=CHECK_EVERY).find_map(|_| g.tick(SimTime::ZERO).err());
        assert_eq!(stopped, Some(Stopped::Interrupted));
    }

    #[test]
    fn no_limits_never_stop() {
        let mut g = Guard::new(Limits::default());
        assert_eq!(g.next_check, u64::MAX);
        for _ in 0..100_000 {
            assert!(g.tick(SimTime::ZERO).is_ok());
        }
    }

    #[test]
    fn memory_beyond_the_machine_is_refused_and_beyond_half_warned() {
        let gib = 1u64 << 30;
        assert_eq!(memory_verdict(1e9, Some(16 * gib)), MemoryVerdict::Fine);
        assert_eq!(
            memory_verdict(9.0 * gib as f64, Some(16 * gib)),
            MemoryVerdict::Warn
        );
        assert_eq!(
            memory_verdict(17.0 * gib as f64, Some(16 * gib)),
            MemoryVerdict::Refuse
        );
        // Unknown memory: never refused.
        assert_eq!(memory_verdict(1e18, None), MemoryVerdict::Fine);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_secs(30.0), "30 s");
        assert_eq!(human_secs(600.0), "10 min");
        assert_eq!(human_secs(3.0 * 3600.0), "3.0 h");
        assert_eq!(human_secs(30.0 * 86400.0), "30.0 days");
    }
}
