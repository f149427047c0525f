//! The commands without their files, for programs that embed kvsim (the
//! Python package in `python/` calls these): `run`, `sweep` and `plan` of a
//! scenario table, with the results in memory.
//!
//! Each does what its command does up to the point where the command would
//! write files: the same validation, size and memory checks, seeds, thread
//! clamping and error messages. What the command prints on stderr (notes and
//! warnings) goes to a `warn` callback instead, each the line the command
//! would print. Each stops when its `interrupted` flag is set (the caller's
//! Ctrl-C), as the commands stop at kvsim's own [`crate::interrupt`] flag,
//! and then returns [`Error::Interrupted`].

use std::path::Path;
use std::sync::atomic::AtomicBool;

use super::GuardArgs;
use crate::engine::{Limits, RunOutput, Stopped, simulate_limited};
use crate::error::Error;
use crate::hardware::cost::RooflineCost;
use crate::scenario::Scenario;
use crate::sweep::SweepTable;

pub use super::kv::{catalog_json, kv_json};

/// A run in memory: what `kvsim run` writes, before it is written.
pub struct RunResult {
    /// The validated scenario.
    pub scenario: Scenario,
    /// The seed it ran with.
    pub seed: u64,
    /// The run's records, timeline and metrics
    /// ([`crate::report::columnar`] makes them tables).
    pub output: RunOutput,
    /// `summary.json`, as a JSON value.
    pub summary: serde_json::Value,
    /// Wall-clock seconds of the simulation alone (the engine, from the
    /// validated scenario to its records and summary).
    pub simulate_s: f64,
}

/// `kvsim run` of scenario table `table` (as read from `path`, `--set`
/// overrides applied) with `seed` (default: the scenario's) under the
/// guard's limits.
pub fn run(
    table: toml::Table,
    path: &Path,
    seed: Option<u64>,
    guard: &GuardArgs,
    interrupted: &'static AtomicBool,
    warn: &mut dyn FnMut(String),
) -> Result<RunResult, Error> {
    let started = std::time::Instant::now();
    let scenario = Scenario::from_table(table, path)?;
    super::run::size_check(&scenario, 1, 1, guard, warn)?;
    let seed = seed.unwrap_or(scenario.seed);
    let d = &scenario.deployment;
    let cost = RooflineCost::new(&scenario.model, d, &d.efficiency);
    let limits = Limits {
        interrupt: Some(interrupted),
        ..guard.limits(started)
    };
    let engine = std::time::Instant::now();
    let output =
        simulate_limited(&scenario, seed, cost, &limits).map_err(|stopped| match stopped {
            Stopped::Interrupted => Error::Interrupted {
                kept: "the run stopped before it finished; nothing was kept".into(),
            },
            stopped => stopped.into_error(&scenario.path, "nothing was kept"),
        })?;
    let simulate_s = engine.elapsed().as_secs_f64();
    let summary =
        crate::report::summary_value(&scenario, seed, &output.summary, output.cluster.as_ref())
            .map_err(|e| {
                Error::io(
                    path,
                    std::io::Error::other(format!("cannot format summary.json: {e}")),
                )
            })?;
    Ok(RunResult {
        scenario,
        seed,
        output,
        summary,
        simulate_s,
    })
}

/// A sweep in memory: `sweep.csv`, or the finished points of a sweep that
/// did not finish and why.
pub struct SweepResult {
    /// The finished points, in grid order: every point unless `error`.
    pub table: SweepTable,
    /// Why some points did not finish: the first point that failed
    /// ([`Error::SweepPoint`]) or Ctrl-C ([`Error::Interrupted`]).
    pub error: Option<Error>,
}

/// `kvsim sweep` of scenario table `table` (as read from `path`, overrides
/// applied; its `[sweep]` table is the grid) on `threads` worker threads
/// (default: one per core) under the guard's limits.
pub fn sweep(
    table: &toml::Table,
    path: &Path,
    threads: Option<usize>,
    guard: &GuardArgs,
    interrupted: &'static AtomicBool,
    warn: &mut dyn FnMut(String),
) -> Result<SweepResult, Error> {
    super::sweep::table_name(table, path)?;
    let started = std::time::Instant::now();
    let outcome = super::sweep::run_sweep_with(
        path,
        table,
        threads,
        None,
        guard.limits(started),
        guard,
        interrupted,
        false,
        warn,
    )?;
    let finished = outcome.table.rows.len();
    let error = outcome.stop.map(|stop| {
        stop.into_error(match finished {
            0 => "no point had finished".to_string(),
            1 => "the 1 finished point was kept".to_string(),
            n => format!("the {n} finished points were kept"),
        })
    });
    Ok(SweepResult {
        table: outcome.table,
        error,
    })
}

/// A plan in memory.
pub struct PlanResult {
    /// `plan.csv` (or, for a crossover, `crossover.csv`).
    pub csv: Vec<u8>,
    /// Whether some candidate meets the objectives (for a crossover: whether
    /// both modes were feasible at some ratio); `kvsim plan` exits 1 if not.
    pub feasible: bool,
    /// For a crossover, the input/output length ratio from which
    /// disaggregation wins, if it does.
    pub crossover_ratio: Option<f64>,
}

/// `kvsim plan` (or, with `crossover`, `kvsim plan --crossover`) of
/// scenario table `table` (as read from `path`, overrides applied) with
/// `slo` as `--slo` gives it, on `threads` worker threads (default: one per
/// core).
#[allow(clippy::too_many_arguments)]
pub fn plan(
    table: &toml::Table,
    path: &Path,
    slo: Option<&str>,
    threads: Option<usize>,
    allow_large: bool,
    crossover: bool,
    interrupted: &'static AtomicBool,
    warn: &mut dyn FnMut(String),
) -> Result<PlanResult, Error> {
    use super::plan as cli;
    super::sweep::table_name(table, path)?;
    let stopped = || Error::Interrupted {
        kept: "the plan stopped before it finished; nothing was kept".into(),
    };
    let csv_error = |e: csv::Error| {
        Error::io(
            path,
            std::io::Error::other(format!("cannot format the plan's table: {e}")),
        )
    };
    if crossover {
        let threads = cli::prepare_crossover(table, path, slo, threads, allow_large, warn)?;
        let run = cli::execute_crossover(table, path, slo, threads, interrupted)?;
        if run.interrupted {
            return Err(stopped());
        }
        return Ok(PlanResult {
            csv: crate::plan::crossover::crossover_csv(&run).map_err(csv_error)?,
            feasible: run.points.iter().any(|p| p.advantage().is_some()),
            crossover_ratio: run.crossover_ratio(),
        });
    }
    let (plan, threads) = cli::prepare_plan(table, path, slo, threads, allow_large, warn)?;
    let run = cli::execute_plan(table, path, &plan, threads, interrupted, warn)?;
    if run.interrupted {
        return Err(stopped());
    }
    let results = run.finished;
    for line in cli::floor_warnings(&results, path) {
        warn(line);
    }
    Ok(PlanResult {
        csv: crate::plan::plan_csv(&results, &plan).map_err(csv_error)?,
        feasible: results.iter().any(|r| r.sizing.is_some()),
        crossover_ratio: None,
    })
}
