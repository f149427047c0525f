//! `kvsim plan`: capacity planning from the scenario's `[plan]` table.

use super::run::{GIB_F, MAX_RUN_REQUESTS, out_dir, stop_key};
use super::sweep::scenario_table;
use super::{PlanArgs, say, threads_for};
use crate::engine::{Limits, Stopped, estimate_work, simulate_summary};
use crate::error::Error;
use crate::hardware::cost::RooflineCost;
use crate::interrupt::INTERRUPTED;
use crate::output::OutputDir;
use crate::scenario::Scenario;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// `kvsim plan`: prints the ranked candidates, writes `plan.csv` and the
/// chart; returns whether any candidate meets the objectives (exit 1 if not).
/// Interrupted (Ctrl-C), it keeps the candidates that finished in
/// `plan.partial.csv`.
pub fn plan(a: &PlanArgs) -> Result<bool, Error> {
    let (table, name) = scenario_table(&a.input.scenario, &a.input.overrides)?;
    if a.crossover {
        return crossover(a, &table, &name);
    }
    let warn = &mut super::eprint_line;
    let path = &a.input.scenario;
    let (plan, threads) = prepare_plan(
        &table,
        path,
        a.slo.as_deref(),
        a.threads,
        a.allow_large,
        warn,
    )?;
    let dir = OutputDir::begin(&out_dir(&a.out, &name), "plan", &[path])?;
    let started = std::time::Instant::now();
    let run = execute_plan(&table, path, &plan, threads, &INTERRUPTED, warn)?;
    let elapsed = started.elapsed().as_secs_f64();
    let results = run.finished;
    let csv_of = |name: &str| {
        crate::plan::plan_csv(&results, &plan).map_err(|e| Error::Io {
            path: dir.final_path(name),
            source: std::io::Error::other(e),
        })
    };
    if run.interrupted {
        let kept = if results.is_empty() {
            format!(
                "no candidate had finished; nothing was written and {} is as it was",
                dir.target().display()
            )
        } else {
            let csv = csv_of("plan.partial.csv")?;
            let partial = dir.write("plan.partial.csv", &csv)?;
            dir.commit()?;
            format!(
                "the {} of {} candidates that finished are in {}",
                results.len(),
                plan.candidates.len(),
                partial.display()
            )
        };
        return Err(Error::Interrupted { kept });
    }
    let csv = csv_of("plan.csv")?;
    let mut written = vec![dir.write("plan.csv", &csv)?.display().to_string()];
    if let Some(fig) = crate::plan::plan_figure(&results, &plan) {
        let name = format!("plan.{}", a.format.extension());
        let bytes = crate::report::plot::render(&fig, a.format).map_err(|source| Error::Io {
            path: dir.final_path(&name),
            source,
        })?;
        written.push(dir.write(&name, &bytes)?.display().to_string());
    }
    let html = crate::report::html::plan_html(&a.input.scenario, &table, &plan, &csv)?;
    written.push(dir.write("report.html", &html)?.display().to_string());
    dir.commit()?;
    let o = &plan.objectives;
    let slo = o.describe();
    say(format_args!(
        "plan for {} req/s ({}), {} replicates per probe:",
        plan.target_rate,
        slo.join(", "),
        plan.replicates
    ))?;
    say(crate::plan::plan_table(&results, &plan))?;
    let probes: u32 = results
        .iter()
        .filter_map(|r| r.search.as_ref().map(|s| s.probes))
        .sum();
    say(format_args!(
        "{} candidates, {probes} probes in {elapsed:.2} s of wall time; wrote {}",
        results.len(),
        written.join(", ")
    ))?;
    for line in floor_warnings(&results, path) {
        eprintln!("{line}");
    }
    let feasible = results.iter().any(|r| r.sizing.is_some());
    if !feasible {
        eprintln!("no candidate meets the objectives; the nearest miss is ranked first");
    }
    Ok(feasible)
}

/// The plan of scenario table `table` (read from `path`, `slo` the
/// `--slo` objectives) and the worker threads to plan it on (`threads` as
/// `--threads` asked); refused, as `kvsim plan` refuses it, if its probes
/// would not fit this machine unless `allow_large`. Notes and warnings go
/// to `warn`, each the line `kvsim plan` prints on stderr.
pub(super) fn prepare_plan(
    table: &toml::Table,
    path: &Path,
    slo: Option<&str>,
    threads: Option<usize>,
    allow_large: bool,
    warn: &mut dyn FnMut(String),
) -> Result<(crate::plan::Plan, Option<usize>), Error> {
    let plan = crate::plan::Plan::from_table(table, path, slo)?;
    let threads = threads_for(threads, plan.candidates.len() as u64, warn);
    plan_size_check(&plan, table, path, allow_large, threads, warn)?;
    Ok((plan, threads))
}

/// Plans every candidate of `plan` on `threads` worker threads (default:
/// rayon's pool), stopping when `interrupted` is set. Each candidate's
/// load-time warnings go to `warn` first, once each.
pub(super) fn execute_plan(
    table: &toml::Table,
    path: &Path,
    plan: &crate::plan::Plan,
    threads: Option<usize>,
    interrupted: &'static AtomicBool,
    warn: &mut dyn FnMut(String),
) -> Result<crate::plan::PlanRun, Error> {
    let limits = Limits {
        interrupt: Some(interrupted),
        ..Limits::default()
    };
    let evaluate = |s: &Scenario, seed: u64| evaluate(s, seed, &limits);
    let work = || crate::plan::run_plan_stoppable(table, path, plan, &evaluate);
    // Each candidate's load-time warnings, once each (a plan's candidates
    // usually share their traffic); a candidate that does not build is
    // reported in the table.
    let mut warned = std::collections::BTreeSet::new();
    for i in 0..plan.candidates.len() {
        let point = plan.candidates.point(i);
        let built = crate::plan::candidate_table(table, path, &point)
            .and_then(|t| Scenario::from_table(t, path));
        if let Ok(s) = built {
            for w in s.warnings() {
                if warned.insert(w.clone()) {
                    warn(format!("warning: {}: {w}", path.display()));
                }
            }
        }
    }
    Ok(match threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Usage(format!("--threads {n}: {e}")))?
            .install(work),
        None => work(),
    })
}

/// The warnings `kvsim plan` prints after its table: each candidate whose
/// sustainable rate is only a floor (its next probe would not have reached
/// a steady state).
pub(super) fn floor_warnings(results: &[crate::plan::CandidateResult], path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for r in results {
        let Some(search) = &r.search else { continue };
        if let (Some(best), Some(miss)) = (&search.best, &search.nearest_miss) {
            if miss.unsteady {
                out.push(format!(
                    "warning: {}: candidate {}: {} req/s is only a floor: a probe at {} req/s \
                     would need more than {:.0e} arrivals to reach a steady state, so it was \
                     not called sustainable",
                    path.display(),
                    r.index + 1,
                    best.rate,
                    miss.rate,
                    crate::plan::MAX_PROBE_ARRIVALS
                ));
            }
        }
    }
    out
}
/// Refuses (exit 2) a plan whose probes would not fit: one larger than a
/// run can hold, or, unless `--allow-large`, the largest probe times the
/// probes in flight at once (one per candidate planned in parallel) plus
/// the summaries the plan keeps beyond the machine's memory; warns above
/// half of it.
fn plan_size_check(
    plan: &crate::plan::Plan,
    table: &toml::Table,
    path: &Path,
    allow_large: bool,
    threads: Option<usize>,
    warn: &mut dyn FnMut(String),
) -> Result<(), Error> {
    let probes = plan.largest_probes(table, path);
    let mut largest: Option<(f64, &Scenario, crate::engine::MemoryEstimate)> = None;
    for s in &probes {
        let e = estimate_work(s);
        if e.requests > MAX_RUN_REQUESTS {
            return Err(Error::Scenario {
                path: s.path.clone(),
                source: crate::SpecError::new(
                    stop_key(s),
                    format!(
                        "a probe of the plan would issue ~{:.3e} requests, more than the \
                         {MAX_RUN_REQUESTS:.0} a run can hold; lower requests (the plan \
                         lengthens probes itself as far as a steady state needs)",
                        e.requests
                    ),
                ),
            });
        }
        let m = crate::engine::estimate_memory(s, &e);
        if largest.as_ref().is_none_or(|l| m.bytes > l.0) {
            largest = Some((m.bytes, s, m));
        }
    }
    let total_mem = crate::engine::physical_memory_bytes();
    let (Some(total), Some((bytes, scenario, m))) = (total_mem, largest) else {
        return Ok(());
    };
    let threads = threads.unwrap_or_else(rayon::current_num_threads);
    let at_once = (plan.candidates.len().max(1)).min(threads.max(1)) as f64;
    // Each candidate keeps its best and nearest-miss probes and the one it
    // is running, a summary per replicate each.
    let kept = plan.candidates.len() as f64
        * 3.0
        * f64::from(plan.replicates)
        * std::mem::size_of::<crate::metrics::Summary>() as f64;
    let need = crate::engine::BASE_BYTES + bytes * at_once + kept;
    let what = format!(
        "about {:.1} GiB of memory ({at_once:.0} probes at once, the largest with ~{:.3e} \
         requests' records and ~{:.3e} timeline rows)",
        need / GIB_F,
        m.requests,
        m.rows
    );
    use crate::engine::MemoryVerdict;
    let verdict = crate::engine::memory_verdict(need, total_mem);
    if verdict == MemoryVerdict::Refuse && !allow_large {
        return Err(Error::Scenario {
            path: scenario.path.clone(),
            source: crate::SpecError::new(
                stop_key(scenario),
                format!(
                    "the plan is projected to need {what}, more than this machine's {:.1} GiB \
                     (MemTotal, or ulimit -v if lower); lower requests or shorten duration_s, plan fewer candidates at \
                     once (--threads), or pass --allow-large to plan anyway",
                    total as f64 / GIB_F
                ),
            ),
        });
    }
    if verdict != MemoryVerdict::Fine {
        warn(format!(
            "warning: {}: the plan is projected to need {what}, more than half of this \
             machine's {:.1} GiB",
            scenario.path.display(),
            total as f64 / GIB_F
        ));
    }
    Ok(())
}

/// One probe replicate of `kvsim plan`: the roofline simulation of `s` on
/// `seed`; `None` when it was stopped (Ctrl-C). The only limit is Ctrl-C; a
/// run past the simulated horizon has wrong inputs, which fails its probe.
fn evaluate(
    s: &Scenario,
    seed: u64,
    limits: &Limits,
) -> Result<Option<crate::metrics::Summary>, Error> {
    let d = &s.deployment;
    match simulate_summary(
        s,
        seed,
        RooflineCost::new(&s.model, d, &d.efficiency),
        limits,
    ) {
        Ok(summary) => Ok(Some(summary)),
        Err(Stopped::Interrupted) => Ok(None),
        Err(stopped) => Err(stopped.into_error(&s.path, "the probe was not finished")),
    }
}

/// [`prepare_plan`] for `kvsim plan --crossover`: validates the plan and
/// its `[plan.crossover]` ratios; returns the worker threads.
pub(super) fn prepare_crossover(
    table: &toml::Table,
    path: &Path,
    slo: Option<&str>,
    threads: Option<usize>,
    allow_large: bool,
    warn: &mut dyn FnMut(String),
) -> Result<Option<usize>, Error> {
    let plan = crate::plan::Plan::from_table(table, path, slo)?;
    crate::plan::crossover::Crossover::from_table(table, path)?;
    let threads = threads_for(threads, plan.candidates.len() as u64, warn);
    plan_size_check(&plan, table, path, allow_large, threads, warn)?;
    Ok(threads)
}

/// Runs the crossover study of `table` (read from `path`) on `threads`
/// worker threads (default: rayon's pool), stopping when `interrupted` is
/// set (the run then says it was interrupted).
pub(super) fn execute_crossover(
    table: &toml::Table,
    path: &Path,
    slo: Option<&str>,
    threads: Option<usize>,
    interrupted: &'static AtomicBool,
) -> Result<crate::plan::crossover::CrossoverRun, Error> {
    let limits = Limits {
        interrupt: Some(interrupted),
        ..Limits::default()
    };
    let evaluate = |s: &Scenario, seed: u64| evaluate(s, seed, &limits);
    let work = || crate::plan::crossover::run_crossover(table, path, slo, &evaluate);
    match threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Usage(format!("--threads {n}: {e}")))?
            .install(work),
        None => work(),
    }
}

/// `kvsim plan --crossover`: the best colocated and disaggregated
/// deployments at each input/output length ratio of `[plan.crossover]`;
/// prints the table, writes crossover.csv and the chart. Returns whether
/// both modes were feasible at some ratio.
fn crossover(a: &PlanArgs, table: &toml::Table, name: &str) -> Result<bool, Error> {
    let path = &a.input.scenario;
    let slo = a.slo.as_deref();
    // Validates the plan and the ratios before any directory is touched.
    let threads = prepare_crossover(
        table,
        path,
        slo,
        a.threads,
        a.allow_large,
        &mut super::eprint_line,
    )?;
    let dir = OutputDir::begin(
        &out_dir(&a.out, &format!("{name}-crossover")),
        "plan",
        &[path],
    )?;
    let started = std::time::Instant::now();
    let run = execute_crossover(table, path, slo, threads, &INTERRUPTED)?;
    let elapsed = started.elapsed().as_secs_f64();
    if run.interrupted {
        return Err(Error::Interrupted {
            kept: format!(
                "the crossover was not finished; nothing was written and {} is as it was",
                dir.target().display()
            ),
        });
    }
    let csv = crate::plan::crossover::crossover_csv(&run).map_err(|e| Error::Io {
        path: dir.final_path("crossover.csv"),
        source: std::io::Error::other(e),
    })?;
    let mut written = vec![dir.write("crossover.csv", &csv)?.display().to_string()];
    let chart = format!("crossover.{}", a.format.extension());
    let bytes =
        crate::report::plot::render(&crate::plan::crossover::crossover_figure(&run), a.format)
            .map_err(|source| Error::Io {
                path: dir.final_path(&chart),
                source,
            })?;
    written.push(dir.write(&chart, &bytes)?.display().to_string());
    dir.commit()?;
    say(format_args!(
        "goodput per GPU at each input:output length ratio, {:.0} tokens per request ({}), \
         {} replicates per probe:",
        run.crossover.tokens,
        run.plan.objectives.describe().join(", "),
        run.plan.replicates
    ))?;
    say(crate::plan::crossover::crossover_table(&run))?;
    match run.crossover_ratio() {
        Some(r) if run.points.first().is_some_and(|p| p.ratio.value >= r) => {
            say(format_args!("disaggregation wins at every ratio"))?
        }
        Some(r) => say(format_args!(
            "crossover: disaggregation wins from ISL:OSL ~{} (input/output {r:.2}) up",
            crate::plan::crossover::ratio_label(r)
        ))?,
        None => say(format_args!(
            "no crossover: disaggregation does not win at the largest ratio"
        ))?,
    }
    let probes: u32 = run.points.iter().map(|p| p.probes).sum();
    say(format_args!(
        "{} ratios, {probes} probes in {elapsed:.2} s of wall time; wrote {}",
        run.points.len(),
        written.join(", ")
    ))?;
    Ok(run.points.iter().any(|p| p.advantage().is_some()))
}
