//! `kvsim sweep` (whole or one shard), `kvsim merge` (shards into one
//! `sweep.csv`) and `kvsim check` (a fresh sweep against a baseline).

use std::path::{Path, PathBuf};

use super::run::{out_dir, size_check};
use super::{CheckArgs, GuardArgs, MergeArgs, ShardArg, SweepArgs, say, threads_for};
use crate::engine::Limits;
use crate::error::Error;
use crate::interrupt::INTERRUPTED;
use crate::output::OutputDir;
use crate::{output, report};

/// The scenario table of `path` with `--set` overrides applied, and its name.
pub(super) fn scenario_table(
    path: &Path,
    overrides: &[String],
) -> Result<(toml::Table, String), Error> {
    let mut table = crate::scenario::read_table(path)?;
    crate::scenario::apply_cli_overrides(&mut table, overrides)?;
    let name = table_name(&table, path)?;
    Ok((table, name))
}

/// The `name` of scenario table `table` (read from `path`); an error if it
/// has none.
pub(super) fn table_name(table: &toml::Table, path: &Path) -> Result<String, Error> {
    match table.get("name") {
        Some(toml::Value::String(n)) => Ok(n.clone()),
        _ => Err(Error::Scenario {
            path: path.to_path_buf(),
            source: crate::SpecError::new("name", "missing: every scenario needs a `name`"),
        }),
    }
}

/// What [`run_sweep_with`] produced: the table of the finished points, and
/// why the others did not finish, if some did not.
pub(super) struct SweepOutcome {
    /// The finished points.
    pub(super) table: crate::sweep::SweepTable,
    /// Why the others did not finish.
    pub(super) stop: Option<SweepStop>,
}

/// Why a sweep did not finish every point.
pub(super) enum SweepStop {
    /// A point could not run (the first in grid order).
    Failed { point: String, source: Error },
    /// Ctrl-C.
    Interrupted,
}

impl SweepStop {
    /// The error to report, `kept` saying what was kept of the finished points.
    pub(super) fn into_error(self, kept: String) -> Error {
        match self {
            SweepStop::Failed { point, source } => Error::SweepPoint {
                point,
                source: Box::new(source),
                kept,
            },
            SweepStop::Interrupted => Error::Interrupted { kept },
        }
    }
}

/// Runs a sweep with a progress bar (when stderr is a terminal), stopping at
/// Ctrl-C; the caller decides what to keep of a sweep that did not finish.
fn run_sweep_cli(
    path: &Path,
    table: &toml::Table,
    threads: Option<usize>,
    shard: Option<crate::sweep::Shard>,
    limits: Limits,
    guard: &GuardArgs,
) -> Result<SweepOutcome, Error> {
    run_sweep_with(
        path,
        table,
        threads,
        shard,
        limits,
        guard,
        &INTERRUPTED,
        true,
        &mut super::eprint_line,
    )
}

/// [`run_sweep_cli`] stopping when `interrupted` is set, drawing the
/// progress bar only if `progress` (and stderr is a terminal), and passing
/// its notes and warnings to `warn` (each the line the command line prints).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_sweep_with(
    path: &Path,
    table: &toml::Table,
    threads: Option<usize>,
    shard: Option<crate::sweep::Shard>,
    limits: Limits,
    guard: &GuardArgs,
    interrupted: &'static std::sync::atomic::AtomicBool,
    progress: bool,
    warn: &mut dyn FnMut(String),
) -> Result<SweepOutcome, Error> {
    use std::io::IsTerminal;

    let grid = crate::sweep::grid_of(table, path)?;
    let owned = (0..grid.len())
        .filter(|&p| shard.is_none_or(|s| s.owns(p)))
        .count() as u64;
    // The size of the first point stands for all; an invalid point is
    // reported with the others when the sweep runs.
    let first = crate::sweep::point_scenario(table, path, &grid.point(0));
    let replicates = first.as_ref().map_or(1, |s| u64::from(s.replicates));
    let threads = threads_for(threads, owned * replicates, warn);
    if let Ok(first) = first {
        let threads = threads.unwrap_or_else(rayon::current_num_threads);
        size_check(&first, owned * replicates, threads, guard, warn)?;
    }
    let bar = if progress && std::io::stderr().is_terminal() {
        let replicates = table
            .get("replicates")
            .and_then(toml::Value::as_integer)
            .unwrap_or(1)
            .max(1) as u64;
        let bar = indicatif::ProgressBar::new(owned * replicates);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} runs, eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let tick = || bar.inc(1);
    let opts = crate::sweep::SweepOptions {
        threads,
        shard,
        on_job_done: Some(&tick),
        interrupted: Some(interrupted),
        limits,
    };
    let result = crate::sweep::run_sweep(table, path, &opts)?;
    bar.finish_and_clear();
    let keys: Vec<String> = grid.axes.iter().map(|a| a.key.clone()).collect();
    let t = crate::sweep::SweepTable::from_points(&keys, &result.points);
    let stop = match result.failures.into_iter().next() {
        Some(crate::sweep::PointFailure {
            index: p,
            assignments,
            error: source,
        }) => {
            let axes: Vec<String> = assignments
                .iter()
                .map(|(k, v)| format!("{k}={}", crate::sweep::cell_of(v)))
                .collect();
            Some(SweepStop::Failed {
                point: format!("point {p} ({})", axes.join(", ")),
                source,
            })
        }
        None if result.interrupted => Some(SweepStop::Interrupted),
        None => None,
    };
    Ok(SweepOutcome { table: t, stop })
}

/// The headline metrics of a sweep's terminal table, most telling first:
/// columns are dropped from the end to fit [`report::TERMINAL_WIDTH`].
const SWEEP_TABLE_METRICS: [&str; 8] = [
    "oom_rate",
    "batch_peak",
    "batch_ceiling",
    "tpot_p99",
    "ttft_p99",
    "throughput_tok_s",
    "tpot_p50",
    "preemptions",
];

/// A compact view of a sweep table: axes and headline metrics, in at most
/// [`report::TERMINAL_WIDTH`] columns unless `wide` (metrics that do not fit
/// are left out, and a line says so). Axis columns are headed by their last
/// dotted segment (`users` for `traffic.arrival.users`) where that is unique.
fn sweep_summary(t: &crate::sweep::SweepTable, wide: bool) -> String {
    let axes = t.axis_columns().to_vec();
    let short: Vec<String> = axes
        .iter()
        .map(|a| a.rsplit('.').next().unwrap_or(a).to_string())
        .collect();
    let unique = (0..short.len()).all(|i| !short[..i].contains(&short[i]));
    let headers = if unique { short } else { axes.clone() };
    let build = |metrics: &[&str]| {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header(
            headers
                .iter()
                .map(String::as_str)
                .chain(metrics.iter().copied()),
        );
        for r in 0..t.rows.len() {
            let cells = axes
                .iter()
                .map(|c| t.get(r, c).unwrap_or("").to_string())
                .chain(metrics.iter().map(|&c| {
                    let v = t.get(r, c).unwrap_or("");
                    match (c, v.parse::<f64>()) {
                        ("oom_rate", Ok(x)) => format!("{:.1} %", x * 100.0),
                        ("tpot_p50" | "tpot_p99", Ok(x)) => format!("{:.1} ms", x * 1e3),
                        ("ttft_p99", Ok(x)) => format!("{x:.3} s"),
                        ("throughput_tok_s", Ok(x)) => format!("{x:.0}"),
                        ("batch_ceiling" | "batch_peak" | "preemptions", Ok(x))
                            if x.fract() != 0.0 =>
                        {
                            format!("{x:.1}")
                        }
                        _ => v.to_string(),
                    }
                }));
            table.add_row(cells);
        }
        table.to_string()
    };
    let width = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut shown = SWEEP_TABLE_METRICS.len();
    let mut text = build(&SWEEP_TABLE_METRICS);
    while !wide && shown > 1 && width(&text) > usize::from(report::TERMINAL_WIDTH) {
        shown -= 1;
        text = build(&SWEEP_TABLE_METRICS[..shown]);
    }
    if shown < SWEEP_TABLE_METRICS.len() {
        text.push_str(&format!(
            "\n{} more with --wide: {}",
            SWEEP_TABLE_METRICS.len() - shown,
            SWEEP_TABLE_METRICS[shown..].join(", ")
        ));
    }
    text
}

pub(super) fn sweep(a: &SweepArgs) -> Result<(), Error> {
    let shard = resolve_shard(a.shard)?;
    let (table, name) = scenario_table(&a.input.scenario, &a.input.overrides)?;
    let target = out_dir(&a.out, &name);
    match shard {
        Some(shard) => sweep_shard(a, &table, &target, shard),
        None => sweep_whole(a, &table, &target),
    }
}

/// The shard `--shard` asks for; `auto` reads this process's environment
/// (the one place kvsim does) and says on stderr what it found.
fn resolve_shard(arg: Option<ShardArg>) -> Result<Option<crate::sweep::Shard>, Error> {
    match arg {
        None => Ok(None),
        Some(ShardArg::Given(shard)) => Ok(Some(shard)),
        Some(ShardArg::Auto { count }) => {
            // A value that is not UTF-8 is kept (lossily) so that the error
            // quotes it, rather than read as unset.
            let var = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
            let found = crate::sweep::Shard::from_env(count, &var).map_err(Error::Usage)?;
            eprintln!(
                "shard {}/{} (from {})",
                found.shard.index, found.shard.count, found.source
            );
            Ok(Some(found.shard))
        }
    }
}

/// A whole sweep: `sweep.csv` and `plots/` (or `sweep.partial.csv`) replace
/// the output directory together.
fn sweep_whole(a: &SweepArgs, table: &toml::Table, target: &Path) -> Result<(), Error> {
    let dir = OutputDir::begin(target, "sweep", &[&a.input.scenario])?;
    let started = std::time::Instant::now();
    let outcome = run_sweep_cli(
        &a.input.scenario,
        table,
        a.threads,
        None,
        a.guard.limits(started),
        &a.guard,
    )?;
    let t = outcome.table;
    if let Some(stop) = outcome.stop {
        let kept = if t.rows.is_empty() {
            format!(
                "no point had finished; nothing was written and {} is as it was",
                dir.target().display()
            )
        } else {
            let partial = dir.write("sweep.partial.csv", &t.to_csv())?;
            dir.commit()?;
            format!(
                "the {} finished points are in {}",
                t.rows.len(),
                partial.display()
            )
        };
        return Err(stop.into_error(kept));
    }
    let csv = t.to_csv();
    let file = dir.write("sweep.csv", &csv)?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut charts = None;
    if !a.no_plots {
        let opts = crate::report::plot::PlotOptions {
            format: a.format,
            ..Default::default()
        };
        let table = crate::report::plot::Table::parse(&file, &csv)?;
        let drawn = crate::report::plot::render_charts(table, &opts)?;
        let plots = dir.subdir("plots")?;
        for (name, bytes) in &drawn {
            dir.write(&format!("plots/{name}"), bytes)?;
        }
        // Its own marker lets `kvsim plot` redraw plots/ alone.
        dir.mark_subdir("plots")?;
        charts = Some((drawn.len(), plots));
    }
    dir.write(
        "report.html",
        &crate::report::html::sweep_html(&a.input.scenario, table, &csv)?,
    )?;
    dir.commit()?;
    say(sweep_summary(&t, a.wide))?;
    say(format_args!(
        "{} points in {elapsed:.2} s of wall time; wrote {}",
        t.rows.len(),
        file.display()
    ))?;
    if let Some((n, plots)) = charts {
        say(format_args!("drew {n} charts in {}", plots.display()))?;
    }
    Ok(())
}

/// One shard of a sweep: the shards share their output directory, so each
/// writes its one file (atomically, under a lock of its own) and replaces no
/// directory. It draws no charts: a shard is a part of a table.
fn sweep_shard(
    a: &SweepArgs,
    table: &toml::Table,
    target: &Path,
    s: crate::sweep::Shard,
) -> Result<(), Error> {
    output::create_dir(target)?;
    let stem = format!("sweep.shard-{}-of-{}", s.index, s.count);
    let file = target.join(format!("{stem}.csv"));
    let partial = target.join(format!("{stem}.partial.csv"));
    let _lock = output::Lock::acquire(&file, "sweep")?;
    let started = std::time::Instant::now();
    let outcome = run_sweep_cli(
        &a.input.scenario,
        table,
        a.threads,
        Some(s),
        a.guard.limits(started),
        &a.guard,
    )?;
    let t = outcome.table;
    if let Some(stop) = outcome.stop {
        let kept = if t.rows.is_empty() {
            format!(
                "no point of the shard had finished; nothing was written to {}",
                target.display()
            )
        } else {
            report::write_atomic(&partial, &t.to_csv())?;
            // An earlier run's complete shard beside this partial one would
            // be merged as if it were current.
            remove_stale(&file);
            format!(
                "the {} finished points are in {}",
                t.rows.len(),
                partial.display()
            )
        };
        return Err(stop.into_error(kept));
    }
    // The fingerprint lets `kvsim merge` refuse parts of other runs.
    let points = crate::sweep::grid_of(table, &a.input.scenario)?.len();
    let fp = crate::sweep::Fingerprint::new(table, &a.input.overrides, s, points);
    let mut bytes = fp.line().into_bytes();
    bytes.extend(t.to_csv());
    report::write_atomic(&file, &bytes)?;
    remove_stale(&partial);
    say(sweep_summary(&t, a.wide))?;
    say(format_args!(
        "{} points in {:.2} s of wall time; wrote {}",
        t.rows.len(),
        started.elapsed().as_secs_f64(),
        file.display()
    ))
}

/// Deletes `path`, an earlier run's result that the new one supersedes.
fn remove_stale(path: &Path) {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => eprintln!(
            "warning: cannot delete {}, an earlier run's result ({e}); delete it by hand",
            path.display()
        ),
        _ => {}
    }
}

/// Whether `a` and `b` name the same file: the same path once symlinks and
/// `..` are resolved, or (on Unix) the same inode, for hard links. A path
/// that does not exist yet is resolved through its directory.
fn same_file(a: &Path, b: &Path) -> bool {
    fn resolve(p: &Path) -> Option<PathBuf> {
        if let Ok(c) = p.canonicalize() {
            return Some(c);
        }
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new(".")).canonicalize().ok()?;
        Some(dir.join(p.file_name()?))
    }
    if resolve(a).is_some_and(|x| resolve(b).is_some_and(|y| x == y)) {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

pub(super) fn merge(a: &MergeArgs) -> Result<(), Error> {
    // Before reading anything: writing over a shard would destroy an input.
    for p in &a.parts {
        if !p.exists() {
            return Err(Error::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such shard file"),
            ));
        }
        if same_file(p, &a.out) {
            return Err(Error::Usage(format!(
                "--out {} is the input shard {}: merging would overwrite it; choose another --out",
                a.out.display(),
                p.display()
            )));
        }
    }
    for (i, p) in a.parts.iter().enumerate() {
        if let Some(q) = a.parts[..i].iter().find(|q| same_file(q, p)) {
            return Err(Error::Usage(format!(
                "{} and {} are the same file: give each shard once",
                q.display(),
                p.display()
            )));
        }
    }
    let parts = a
        .parts
        .iter()
        .map(|p| crate::sweep::read_shard(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = crate::sweep::merge(&parts)?;
    // A temporary file in the same directory, then a rename: a reader never
    // sees half a table, and a failed merge leaves the old file intact.
    output::write_file(&a.out, &merged.to_csv())?;
    say(format_args!(
        "merged {} points from {} shards into {}",
        merged.rows.len(),
        parts.len(),
        a.out.display()
    ))
}

/// Runs `kvsim check`; returns whether the check passes under `--fail-on`.
/// A failing check exits 1 (by the caller), so this returns an error only for
/// bad input.
pub fn check(a: &CheckArgs) -> Result<bool, Error> {
    let (table, name) = scenario_table(&a.input.scenario, &a.input.overrides)?;
    // Loading the scenario validates its [check] table.
    let spec = crate::scenario::Scenario::from_table(table.clone(), &a.input.scenario)?
        .spec
        .check;
    let rtol = match a.rtol {
        Some(r) => crate::check::rtol_in_range(r)
            .map_err(|reason| Error::Usage(format!("--rtol {r}: {reason}")))?,
        None => spec.rtol.unwrap_or(crate::check::DEFAULT_RTOL),
    };
    // A baseline that cannot be compared is refused before the sweep runs.
    let baseline = if a.update {
        None
    } else {
        Some(crate::check::read_baseline(&a.baseline)?)
    };
    let outcome = run_sweep_cli(
        &a.input.scenario,
        &table,
        a.threads,
        None,
        Limits::default(),
        &GuardArgs {
            allow_large: a.allow_large,
            ..GuardArgs::default()
        },
    )?;
    if let Some(stop) = outcome.stop {
        // A comparison (or a new baseline) needs every point.
        let kept = if a.update {
            format!(
                "nothing was written and {} is as it was",
                a.baseline.display()
            )
        } else {
            "nothing was compared".to_string()
        };
        return Err(stop.into_error(kept));
    }
    let fresh = outcome.table;
    crate::check::check_fresh(&fresh)?;
    let Some(baseline) = baseline else {
        output::write_file(&a.baseline, &fresh.to_csv())?;
        say(format_args!(
            "wrote {} point{} to {}",
            fresh.rows.len(),
            if fresh.rows.len() == 1 { "" } else { "s" },
            a.baseline.display()
        ))?;
        return Ok(true);
    };
    let tol = crate::check::Tolerances {
        rtol,
        by_metric: spec.rtol_by_metric,
    };
    let cmp = crate::check::compare(&baseline, &fresh, &tol);
    let text = crate::check::report(&cmp, a.fail_on);
    if !text.is_empty() {
        say(text.trim_end())?;
    }
    use crate::check::Verdict;
    let count = |n: usize, what: &str| match (n, what) {
        (1, _) => format!("1 {what}"),
        (_, "mismatch") => format!("{n} mismatches"),
        _ => format!("{n} {what}s"),
    };
    let fails = cmp.fails(a.fail_on);
    let fail_on = match a.fail_on {
        crate::check::FailOn::Regression => "regression",
        crate::check::FailOn::Change => "change",
    };
    if cmp.mismatches.is_empty() && cmp.moved.is_empty() {
        say(format_args!(
            "{}: {} within tolerance of {} (counts exact, other metrics within {:.2} %)",
            name,
            count(cmp.points_compared, "point"),
            a.baseline.display(),
            rtol * 100.0
        ))?;
    } else {
        say(format_args!(
            "{}: {}, {}, {}, {}, {} against {} over {} compared: {} (--fail-on {fail_on})",
            name,
            count(cmp.mismatches.len(), "mismatch"),
            count(cmp.with_verdict(Verdict::Regression).len(), "regression"),
            count(cmp.with_verdict(Verdict::Change).len(), "change"),
            count(cmp.with_verdict(Verdict::Shift).len(), "shift"),
            count(cmp.with_verdict(Verdict::Improvement).len(), "improvement"),
            a.baseline.display(),
            count(cmp.points_compared, "point"),
            if fails { "FAIL" } else { "pass" },
        ))?;
    }
    Ok(!fails)
}
