//! Sweeps: the cartesian product of a scenario's `[sweep]` axes, each point
//! run `replicates` times, in parallel, with results in grid order.
//!
//! # Seeds: common random numbers
//!
//! Replicate `r` of every point draws from the same seed: the scenario's seed
//! for `r = 0` (so a sweep without axes reproduces `kvsim run`), a
//! splitmix64-derived one for later replicates. Comparing two policies, or two
//! loads, on identical draws makes the comparison paired: differences are the
//! configuration's, not the dice's, curves come out smooth, and CI regression
//! checks do not flicker. Replicates are independent of each other.
//!
//! # Determinism
//!
//! Each (point, replicate) job is a pure function of the scenario and its seed;
//! rayon's indexed `collect` keeps grid order; reductions over replicates run
//! sequentially in replicate order. The CSV is byte-identical for any thread
//! count and any sharding.

pub mod job_array;
mod shard;
mod table;

pub use job_array::EnvShard;
pub use shard::{FINGERPRINT_PREFIX, Fingerprint, ShardFile, merge, read_shard, scenario_hash};
pub use table::{
    SweepTable, cell as cell_of, mean_ci95, read_table as read_sweep_table, read_table_lines,
};

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::engine::{Limits, Stopped, simulate_summary};
use crate::error::{Error, SpecError};
use crate::hardware::cost::RooflineCost;
use crate::metrics::Summary;
use crate::scenario::{Scenario, apply_override};

/// One swept key and its values, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Dotted scenario key, e.g. `traffic.arrival.rate`.
    pub key: String,
    /// Values to sweep, as written.
    pub values: Vec<toml::Value>,
}

/// The grid of a sweep: the cartesian product of its axes, first axis
/// outermost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grid {
    /// The axes, in file order.
    pub axes: Vec<Axis>,
}

impl Grid {
    /// The grid of a `[sweep]` table (validated: every value a non-empty list).
    pub fn from_table(sweep: &toml::Table) -> Result<Grid, SpecError> {
        let mut axes = Vec::with_capacity(sweep.len());
        for (key, values) in sweep {
            match values {
                toml::Value::Array(a) if !a.is_empty() => axes.push(Axis {
                    key: key.clone(),
                    values: a.clone(),
                }),
                _ => {
                    return Err(SpecError::new(
                        format!("sweep.\"{key}\""),
                        "must be a non-empty list of values, e.g. [1, 2, 4]",
                    ));
                }
            }
        }
        Ok(Grid { axes })
    }

    /// Points in the grid (1 when there are no axes).
    pub fn len(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    /// Whether the grid has no points (never: an empty grid has one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key assignments of point `index` (mixed radix, last axis fastest).
    pub fn point(&self, index: usize) -> Vec<(String, toml::Value)> {
        let mut rest = index;
        let mut out: Vec<(String, toml::Value)> = self
            .axes
            .iter()
            .rev()
            .map(|a| {
                let v = a.values[rest % a.values.len()].clone();
                rest /= a.values.len();
                (a.key.clone(), v)
            })
            .collect();
        out.reverse();
        out
    }
}

/// Which slice of the grid this process runs: points `p` with `p % count ==
/// index` (0-based, like `SLURM_ARRAY_TASK_ID` with `--array=0-(N-1)` and a
/// Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`; [`Shard::from_env`] reads
/// it from either). Strided slices spread slow and fast points evenly.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected I/N, e.g. 0/4 (0-based shard I of N)"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: `{i}` is not a shard index"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: `{n}` is not a shard count"))?;
        if count == 0 || index >= count {
            return Err(format!("`{s}`: need 0 <= I < N (shards are 0-based)"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether grid point `point` belongs to this shard.
    pub fn owns(&self, point: usize) -> bool {
        point % self.count == self.index
    }
}

/// How to run a sweep.
#[derive(Default)]
pub struct SweepOptions<'a> {
    /// Worker threads (default: one per core).
    pub threads: Option<usize>,
    /// Run only this slice of the grid.
    pub shard: Option<Shard>,
    /// Called once per finished (point, replicate) job, from any thread.
    pub on_job_done: Option<&'a (dyn Fn() + Sync)>,
    /// Set from outside (Ctrl-C) to stop the sweep: jobs not started are
    /// skipped and those in flight stop at their next check.
    pub interrupted: Option<&'static AtomicBool>,
    /// Limits of every run (`--max-events` per run, `--time-limit` for the
    /// whole sweep: its deadline is shared). A run that hits one fails its
    /// point with [`Error::Limit`]; finished points are kept.
    pub limits: Limits,
}

pub use crate::rng::replicate_seed;

/// One finished grid point.
#[derive(Clone, Debug)]
pub struct PointResult {
    /// Its index in the grid.
    pub index: usize,
    /// Its key assignments.
    pub assignments: Assignments,
    /// One summary per replicate, in replicate order.
    pub replicates: Vec<Summary>,
    /// Its objectives (for the SLO columns and lines).
    pub slo: crate::scenario::Slo,
}

/// Bytes a sweep holds per run until its table is built: its job and
/// assignments, the run's [`Summary`] (fewer than 64 numbers) and its row of
/// the table as text. Measured (December 2026, Linux): a 4,000,000-point
/// grid allocates 10.05 GB at once before any run, 2,512 bytes a point;
/// rounded up for the summaries and rows that follow.
pub const BYTES_PER_RUN_KEPT: f64 = 4096.0;

/// A grid point's key assignments, in axis order.
pub type Assignments = Vec<(String, toml::Value)>;

/// A grid point that could not run.
#[derive(Debug)]
pub struct PointFailure {
    /// Its index in the grid.
    pub index: usize,
    /// Its key assignments.
    pub assignments: Assignments,
    /// Why.
    pub error: Error,
}

/// What a sweep produced: every point it ran, or the ones that finished and
/// why the others did not.
#[derive(Debug)]
pub struct SweepRun {
    /// Finished points, in grid order.
    pub points: Vec<PointResult>,
    /// Points that could not run (grid order).
    pub failures: Vec<PointFailure>,
    /// Whether the sweep stopped early because it was interrupted.
    pub interrupted: bool,
    /// Points in the whole grid (before sharding).
    pub grid_len: usize,
}

/// The grid of the scenario table `base` (read from `path`, CLI overrides
/// already applied).
pub fn grid_of(base: &toml::Table, path: &Path) -> Result<Grid, Error> {
    let sweep = match base.get("sweep") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t.clone(),
        Some(_) => {
            return Err(Error::Scenario {
                path: path.to_path_buf(),
                source: SpecError::new("sweep", "must be a table of `\"dotted.key\" = [values]`"),
            });
        }
    };
    Grid::from_table(&sweep).map_err(|source| Error::Scenario {
        path: path.to_path_buf(),
        source,
    })
}

/// The axis of named setups: each value is a table `{ name = "...",
/// "dotted.key" = value, ... }` whose keys are set together, so configurations
/// that differ in several keys at once (one GPU at 0.25 sessions/s, four
/// replicas at 1.0) are one axis rather than a cartesian product of them.
/// Its `sweep.csv` column holds each setup's name.
pub const SETUP_AXIS: &str = "setup";

/// The scenario of grid point `assignments`.
pub fn point_scenario(
    base: &toml::Table,
    path: &Path,
    assignments: &[(String, toml::Value)],
) -> Result<Scenario, Error> {
    let mut table = base.clone();
    let err = |key: String, reason: String| Error::Scenario {
        path: path.to_path_buf(),
        source: SpecError::new(key, reason),
    };
    for (key, value) in assignments {
        if key == SETUP_AXIS {
            let setup = match value {
                toml::Value::Table(t) if t.get("name").is_some_and(toml::Value::is_str) => t,
                _ => {
                    return Err(err(
                        format!("sweep.{SETUP_AXIS}"),
                        "each setup is a table `{ name = \"...\", \"dotted.key\" = value, ... }`"
                            .into(),
                    ));
                }
            };
            for (k, v) in setup.iter().filter(|(k, _)| *k != "name") {
                apply_override(&mut table, k, v.clone())
                    .map_err(|reason| err(format!("sweep.{SETUP_AXIS}.\"{k}\""), reason))?;
            }
            continue;
        }
        apply_override(&mut table, key, value.clone())
            .map_err(|reason| err(format!("sweep.\"{key}\""), reason))?;
    }
    Scenario::from_table(table, path)
}

/// Runs the sweep of scenario table `base` (read from `path`).
///
/// Every point is validated first, so a point whose configuration is
/// impossible (a model that does not fit a swept GPU, say) is reported with
/// the others still run; see [`SweepRun::failures`].
pub fn run_sweep(
    base: &toml::Table,
    path: &Path,
    opts: &SweepOptions<'_>,
) -> Result<SweepRun, Error> {
    let grid = grid_of(base, path)?;
    let owned: Vec<usize> = (0..grid.len())
        .filter(|&p| opts.shard.is_none_or(|s| s.owns(p)))
        .collect();
    let mut scenarios = Vec::with_capacity(owned.len());
    let mut failures = Vec::new();
    // Points are validated in parallel too (in grid order): with short runs,
    // building 64 scenarios one after the other was a serial fraction that
    // kept a second thread from doubling throughput.
    let built = || {
        owned
            .par_iter()
            .map(|&p| {
                let assignments = grid.point(p);
                let scenario = point_scenario(base, path, &assignments);
                (p, assignments, scenario)
            })
            .collect::<Vec<_>>()
    };
    let pool = match opts.threads {
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::Usage(format!("--threads {n}: {e}")))?,
        ),
        None => None,
    };
    let built = match &pool {
        Some(pool) => pool.install(built),
        None => built(),
    };
    for (p, assignments, scenario) in built {
        match scenario {
            Ok(s) => scenarios.push((p, assignments, s)),
            Err(error) => failures.push(PointFailure {
                index: p,
                assignments,
                error,
            }),
        }
    }
    let jobs: Vec<(usize, u32)> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(i, (_, _, s))| (0..s.replicates).map(move |r| (i, r)))
        .collect();
    // Ctrl-C also stops the runs in flight, not only the ones not started.
    let limits = Limits {
        interrupt: opts.interrupted,
        ..opts.limits
    };
    let work = || {
        jobs.par_iter()
            .map(|&(i, r)| {
                if opts.interrupted.is_some_and(|f| f.load(Ordering::Relaxed)) {
                    return None;
                }
                let s = &scenarios[i].2;
                let d = &s.deployment;
                let cost = RooflineCost::new(&s.model, d, &d.efficiency);
                let summary = match simulate_summary(s, replicate_seed(s.seed, r), cost, &limits) {
                    Ok(summary) => Ok(summary),
                    // Interrupted in flight: not finished, like a job not started.
                    Err(Stopped::Interrupted) => return None,
                    Err(stopped) => Err(stopped.into_error(path, &format!("replicate {r}"))),
                };
                if let Some(done) = opts.on_job_done {
                    done();
                }
                Some(summary)
            })
            .collect::<Vec<Option<Result<Summary, Error>>>>()
    };
    let results = match &pool {
        Some(pool) => pool.install(work),
        None => work(),
    };
    // Regroup per point, in replicate order; a point with a missing replicate
    // (interrupted) is not finished.
    let mut per_point: Vec<Vec<Summary>> = vec![Vec::new(); scenarios.len()];
    // A point whose replicate hit a limit fails with the first such error.
    let mut stopped: Vec<Option<Error>> = (0..scenarios.len()).map(|_| None).collect();
    let mut interrupted = false;
    for (&(i, _), r) in jobs.iter().zip(results) {
        match r {
            Some(Ok(summary)) => per_point[i].push(summary),
            Some(Err(e)) => {
                stopped[i].get_or_insert(e);
            }
            None => interrupted = true,
        }
    }
    let mut points = Vec::with_capacity(scenarios.len());
    for (((index, assignments, s), replicates), stop) in
        scenarios.into_iter().zip(per_point).zip(stopped)
    {
        if let Some(error) = stop {
            failures.push(PointFailure {
                index,
                assignments,
                error,
            });
        } else if replicates.len() == s.replicates as usize {
            points.push(PointResult {
                index,
                assignments,
                replicates,
                slo: s.slo,
            });
        }
    }
    failures.sort_by_key(|f| f.index);
    Ok(SweepRun {
        points,
        failures,
        interrupted,
        grid_len: grid.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_points_are_the_cartesian_product_first_axis_outermost() {
        let sweep: toml::Table = "a = [1, 2]\nb = [\"x\", \"y\", \"z\"]".parse().unwrap();
        let g = Grid::from_table(&sweep).unwrap();
        assert_eq!(g.len(), 6);
        let p = |i| {
            g.point(i)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(p(0), "a=1,b=\"x\"");
        assert_eq!(p(2), "a=1,b=\"z\"");
        assert_eq!(p(3), "a=2,b=\"x\"");
        assert_eq!(Grid::default().len(), 1);
        assert!(Grid::from_table(&"a = []".parse().unwrap()).is_err());
    }

    #[test]
    fn shards_partition_the_grid() {
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for p in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.owns(p)).count(), 1);
        }
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }
}
