//! `kvsim plan`: capacity planning from the scenario's `[plan]` table.

use super::run::out_dir;
use super::sweep::scenario_table;
use super::{PlanArgs, say, threads_for};
use crate::engine::{Limits, Stopped, simulate_limited};
use crate::error::Error;
use crate::hardware::cost::RooflineCost;
use crate::interrupt::INTERRUPTED;
use crate::output::OutputDir;
use crate::scenario::Scenario;

/// `kvsim plan`: prints the ranked candidates, writes `plan.csv` and the
/// chart; returns whether any candidate meets the objectives (exit 1 if not).
/// Interrupted (Ctrl-C), it keeps the candidates that finished in
/// `plan.partial.csv`.
pub fn plan(a: &PlanArgs) -> Result<bool, Error> {
    let (table, name) = scenario_table(&a.input.scenario, &a.input.overrides)?;
    let plan = crate::plan::Plan::from_table(&table, &a.input.scenario, a.slo.as_deref())?;
    let dir = OutputDir::begin(&out_dir(&a.out, &name), "plan", &[&a.input.scenario])?;
    let started = std::time::Instant::now();
    let limits = Limits {
        interrupt: Some(&INTERRUPTED),
        ..Limits::default()
    };
    // The only limit is Ctrl-C; a run past the simulated horizon has wrong
    // inputs, which fails its probe.
    let evaluate = |s: &Scenario, seed: u64| {
        let d = &s.deployment;
        match simulate_limited(
            s,
            seed,
            RooflineCost::new(&s.model, d, &d.efficiency),
            &limits,
        ) {
            Ok(out) => Ok(Some(out.summary)),
            Err(Stopped::Interrupted) => Ok(None),
            Err(stopped) => Err(stopped.into_error(&s.path, "the probe was not finished")),
        }
    };
    let work = || crate::plan::run_plan_stoppable(&table, &a.input.scenario, &plan, &evaluate);
    // Each candidate's load-time warnings, once each (a plan's candidates
    // usually share their traffic); a candidate that does not build is
    // reported in the table.
    let mut warned = std::collections::BTreeSet::new();
    for i in 0..plan.candidates.len() {
        let point = plan.candidates.point(i);
        if let Ok(s) = crate::sweep::point_scenario(&table, &a.input.scenario, &point) {
            for w in s.warnings() {
                if warned.insert(w.clone()) {
                    eprintln!("warning: {}: {w}", a.input.scenario.display());
                }
            }
        }
    }
    let threads = threads_for(a.threads, plan.candidates.len() as u64);
    let run = match threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Usage(format!("--threads {n}: {e}")))?
            .install(work),
        None => work(),
    };
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
    dir.commit()?;
    let o = &plan.objectives;
    let slo: Vec<String> = [
        o.ttft_p99.map(|v| format!("ttft_p99 <= {v} s")),
        o.tpot_p99.map(|v| format!("tpot_p99 <= {} ms", v * 1e3)),
        o.e2e_p99.map(|v| format!("e2e_p99 <= {v} s")),
        Some(format!("oom_rate <= {}", o.oom_rate)),
    ]
    .into_iter()
    .flatten()
    .collect();
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
    let feasible = results.iter().any(|r| r.sizing.is_some());
    if !feasible {
        eprintln!("no candidate meets the objectives; the nearest miss is ranked first");
    }
    Ok(feasible)
}
