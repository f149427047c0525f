//! `kvsim run`: one scenario, with the up-front size and memory checks.

use std::path::{Path, PathBuf};

use super::{GuardArgs, RunArgs, say};
use crate::engine::{Limits, Stopped, estimate_work, simulate_limited};
use crate::error::Error;
use crate::hardware::cost::RooflineCost;
use crate::interrupt::INTERRUPTED;
use crate::output::OutputDir;
use crate::report;
use crate::scenario::Scenario;

/// The directory a run writes to.
pub(super) fn out_dir(out: &Option<PathBuf>, name: &str) -> PathBuf {
    out.clone()
        .unwrap_or_else(|| Path::new("output").join(name))
}

/// Requests one run may issue: the engine indexes them with 32 bits, and an
/// estimate (of a random process) needs slack below that.
pub(super) const MAX_RUN_REQUESTS: f64 = (1u64 << 31) as f64;

/// Refuses (exit 2) a run projected to need more memory than the machine
/// has, unless `--allow-large`; warns above half of it. `runs` runs on
/// `threads` threads hold `min(runs, threads)` runs' records at once; a
/// `--max-events` or `--time-limit` bounds what one run can accumulate.
fn memory_check(
    scenario: &Scenario,
    work: &crate::engine::WorkEstimate,
    runs: u64,
    threads: usize,
    guard: &GuardArgs,
    warn: &mut dyn FnMut(String),
) -> Result<(), Error> {
    let total_mem = crate::engine::physical_memory_bytes();
    let Some(total) = total_mem else {
        return Ok(());
    };
    let m = crate::engine::estimate_memory(scenario, work);
    let mut share: f64 = 1.0;
    if let Some(n) = guard.max_events {
        // Every request arrives and every step ends through an event.
        share = share.min(n as f64 / (work.requests + work.steps).max(1.0));
    }
    if let Some(t) = guard.time_limit {
        share = share.min(t / work.wall_s.max(1e-9));
    }
    let at_once = runs.max(1).min(threads.max(1) as u64) as f64;
    // A sweep also keeps every run's summary until its table is built.
    let need = crate::engine::BASE_BYTES
        + m.bytes * share * at_once
        + runs as f64 * crate::sweep::BYTES_PER_RUN_KEPT;
    let runs_note = if at_once > 1.0 {
        format!(" ({at_once:.0} runs at once)")
    } else {
        String::new()
    };
    let what = format!(
        "about {:.1} GiB of memory{runs_note} (~{:.3e} requests' records and ~{:.3e} timeline \
         rows kept until the run ends)",
        need / GIB_F,
        m.requests,
        m.rows
    );
    use crate::engine::MemoryVerdict;
    let verdict = crate::engine::memory_verdict(need, total_mem);
    if verdict == MemoryVerdict::Refuse && !guard.allow_large {
        let key = stop_key(scenario);
        return Err(Error::Scenario {
            path: scenario.path.clone(),
            source: crate::SpecError::new(
                key,
                format!(
                    "the run is projected to need {what}, more than this machine's {:.1} GiB \
                     (MemTotal, or ulimit -v if lower); shorten duration_s or requests, lower the rate, set \
                     output.timeline_interval_s, bound it with --max-events N, or pass --allow-large \
                     to run anyway",
                    total as f64 / GIB_F
                ),
            ),
        });
    }
    if verdict != MemoryVerdict::Fine {
        warn(format!(
            "warning: {}: the run is projected to need {what}, more than half of this machine's \
             {:.1} GiB",
            scenario.path.display(),
            total as f64 / GIB_F
        ));
    }
    Ok(())
}

/// The key that sets how long `scenario` runs, for messages about its size.
pub(super) fn stop_key(scenario: &Scenario) -> &'static str {
    match scenario.stop {
        crate::scenario::Stop::Duration(_) => "duration_s",
        _ => "requests",
    }
}

/// Bytes per GiB, as a float.
pub(super) const GIB_F: f64 = (1u64 << 30) as f64;

/// Passes a scenario's load-time warnings to `warn`, each as the line the
/// command line prints on stderr.
fn print_warnings(scenario: &Scenario, warn: &mut dyn FnMut(String)) {
    for w in scenario.warnings() {
        warn(format!("warning: {}: {w}", scenario.path.display()));
    }
}

/// Refuses a scenario too large to run at all; warns (through `warn`, each
/// warning the line the command line prints on stderr) when it would take
/// long (`runs` runs on `threads` threads).
pub(super) fn size_check(
    scenario: &Scenario,
    runs: u64,
    threads: usize,
    guard: &GuardArgs,
    warn: &mut dyn FnMut(String),
) -> Result<(), Error> {
    let e = estimate_work(scenario);
    if e.requests > MAX_RUN_REQUESTS {
        let key = stop_key(scenario);
        return Err(Error::Scenario {
            path: scenario.path.clone(),
            source: crate::SpecError::new(
                key,
                format!(
                    "one run would issue ~{:.3e} requests, more than the {MAX_RUN_REQUESTS:.0} a run \
                     can hold; shorten duration_s, lower the rate or split the run",
                    e.requests
                ),
            ),
        });
    }
    print_warnings(scenario, warn);
    memory_check(scenario, &e, runs, threads, guard, warn)?;
    let wall = e.wall_s * runs as f64 / threads.max(1) as f64;
    if wall > crate::engine::WARN_WALL_S {
        warn(format!(
            "warning: {}: a large simulation: {e} per run; {} run{} in about {} of wall time. \
             Bound it with --max-events N or --time-limit SECONDS (exit 3 when hit).",
            scenario.path.display(),
            runs,
            if runs == 1 { "" } else { "s" },
            crate::engine::human_secs(wall),
        ));
    }
    Ok(())
}

pub(super) fn run(a: &RunArgs) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let scenario = Scenario::load(&a.input.scenario, &a.input.overrides)?;
    let dir = OutputDir::begin(
        &out_dir(&a.out, &scenario.name),
        "run",
        &[&a.input.scenario],
    )?;
    size_check(&scenario, 1, 1, &a.guard, &mut super::eprint_line)?;
    let format = a.format.unwrap_or(scenario.table_format);
    // Refused before simulating, not after.
    report::require_format(format)?;
    let seed = a.seed.unwrap_or(scenario.seed);
    let cost = RooflineCost::new(
        &scenario.model,
        &scenario.deployment,
        &scenario.deployment.efficiency,
    );
    let limits = Limits {
        interrupt: Some(&INTERRUPTED),
        ..a.guard.limits(started)
    };
    let unchanged = format!(
        "nothing was written and {} is as it was",
        dir.target().display()
    );
    let out =
        simulate_limited(&scenario, seed, cost, &limits).map_err(|stopped| match stopped {
            // The metrics of part of a run would count only the requests that
            // happened to finish early: a stopped run keeps nothing.
            Stopped::Interrupted => Error::Interrupted {
                kept: format!("the run stopped before it finished; {unchanged}"),
            },
            // Past the horizon is bad input (exit 2); the limits exit 3.
            stopped => stopped.into_error(&scenario.path, &unchanged),
        })?;
    let wall = started.elapsed();
    if out.streamed && scenario.records == crate::scenario::spec::RecordsMode::Auto {
        eprintln!(
            "note: {}: streaming mode (output.records = \"auto\" and more than {:.0e} requests \
             expected): percentiles from sketches within {} % of exact, no requests.csv; set \
             output.records = \"exact\" to keep every record",
            scenario.path.display(),
            crate::scenario::AUTO_STREAMING_REQUESTS,
            crate::metrics::stream::RELATIVE_ERROR * 100.0
        );
    }
    let written = report::write_run(&dir, &scenario, seed, &out, format)?;
    dir.commit()?;
    if a.json {
        say(serde_json::to_string_pretty(&out.summary).expect("serializable"))?;
    } else {
        let per_replica = out.cluster.as_ref().map_or(&[][..], |c| &c.replicas[..]);
        let width = (!a.wide).then_some(report::TERMINAL_WIDTH);
        say(report::summary_table(
            &scenario,
            &out.summary,
            per_replica,
            width,
        ))?;
        let names: Vec<_> = written.iter().map(|p| p.display().to_string()).collect();
        say(format_args!(
            "simulated {} requests in {:.2} s of wall time; wrote {}",
            out.summary.requests,
            wall.as_secs_f64(),
            names.join(", ")
        ))?;
    }
    Ok(())
}
