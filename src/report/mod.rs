//! Outputs: `summary.json`, `requests.csv`, `timeline.csv`, and terminal tables.
//!
//! Every file is written to a temporary name in its directory and renamed into
//! place, so an interrupted run never leaves a partial file behind. Simulated
//! nanoseconds become seconds here and nowhere else.

pub mod plot;
mod table;

pub use table::{print_kv_report, summary_table};

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::RunOutput;
use crate::error::Error;
use crate::metrics::{RequestRecord, Summary, TimelineRow};
use crate::scenario::Scenario;
use crate::units::SimTime;

/// Writes `bytes` to `path` atomically: a sibling temporary file, fsync'd, then
/// renamed over the destination.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Creates `dir` (and parents) and checks that it is writable, before any
/// simulation starts.
pub fn prepare_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let probe = dir.join(format!(".kvsim-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| Error::io(dir, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn secs(t: Option<SimTime>) -> String {
    t.map(|t| format!("{:.9}", t.as_secs_f64()))
        .unwrap_or_default()
}

/// `requests.csv`: one row per request, in arrival order; times in seconds.
pub fn requests_csv(records: &[RequestRecord]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(records.len() * 96));
    w.write_record([
        "id",
        "arrival",
        "admitted",
        "first_token",
        "finished",
        "prompt_tokens",
        "output_tokens",
        "output_target",
        "max_tokens",
        "samples",
        "session",
        "turn",
        "preemptions",
        "outcome",
    ])?;
    for r in records {
        w.write_record([
            r.id.to_string(),
            secs(Some(r.arrival)),
            secs(r.admitted),
            secs(r.first_token),
            secs(r.finished),
            r.prompt_tokens.to_string(),
            r.output_tokens.to_string(),
            r.output_target.to_string(),
            r.max_tokens.to_string(),
            r.samples.to_string(),
            r.session.map(|s| s.to_string()).unwrap_or_default(),
            r.turn.to_string(),
            r.preemptions.to_string(),
            r.outcome.map(|o| o.name()).unwrap_or("").to_string(),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// `timeline.csv`: the server at each step (or sampling instant).
pub fn timeline_csv(rows: &[TimelineRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 64));
    w.write_record([
        "time",
        "running",
        "waiting",
        "kv_used_bytes",
        "kv_frac",
        "waste_used",
        "waste_reserved",
        "waste_internal",
        "waste_external",
        "step_s",
    ])?;
    for r in rows {
        w.write_record([
            format!("{:.9}", r.time.as_secs_f64()),
            r.running.to_string(),
            r.waiting.to_string(),
            r.kv_used_bytes.to_string(),
            format!("{:.6}", r.kv_frac),
            format!("{:.6}", r.levels.used),
            format!("{:.6}", r.levels.reserved),
            format!("{:.6}", r.levels.internal),
            format!("{:.6}", r.levels.external),
            format!("{:.9}", r.step.as_secs_f64()),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// The document written to `summary.json`.
#[derive(Serialize)]
struct SummaryDoc<'a> {
    kvsim_version: &'static str,
    scenario: &'a str,
    seed: u64,
    model: &'a str,
    gpu: &'a str,
    tp: u32,
    policy: &'static str,
    kv_dtype: &'static str,
    admission: &'static str,
    on_oom: &'static str,
    budget: &'a crate::hardware::budget::KvBudget,
    metrics: &'a Summary,
    resolved_scenario: &'a crate::scenario::ScenarioSpec,
}

/// `summary.json`: the configuration that ran and its metrics.
pub fn summary_json(
    scenario: &Scenario,
    seed: u64,
    summary: &Summary,
) -> Result<Vec<u8>, serde_json::Error> {
    let doc = SummaryDoc {
        kvsim_version: env!("CARGO_PKG_VERSION"),
        scenario: &scenario.name,
        seed,
        model: &scenario.model.name,
        gpu: &scenario.deployment.gpu.name,
        tp: scenario.deployment.tp,
        policy: scenario.cache.policy.name(),
        kv_dtype: scenario.cache.kv_dtype.name(),
        admission: scenario.scheduler.admission.name(),
        on_oom: scenario.scheduler.on_oom.name(),
        budget: &scenario.budget,
        metrics: summary,
        resolved_scenario: &scenario.spec,
    };
    let mut bytes = serde_json::to_vec_pretty(&doc)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes the three files of a run into `dir` and returns their paths.
pub fn write_run(
    dir: &Path,
    scenario: &Scenario,
    seed: u64,
    out: &RunOutput,
) -> Result<Vec<PathBuf>, Error> {
    let csv_err = |path: &Path, e: csv::Error| Error::io(path, std::io::Error::other(e));
    let files = [
        (
            dir.join("summary.json"),
            summary_json(scenario, seed, &out.summary)
                .map_err(|e| Error::io(dir, std::io::Error::other(e)))?,
        ),
        (
            dir.join("requests.csv"),
            requests_csv(&out.records).map_err(|e| csv_err(dir, e))?,
        ),
        (
            dir.join("timeline.csv"),
            timeline_csv(&out.timeline).map_err(|e| csv_err(dir, e))?,
        ),
    ];
    let mut written = Vec::new();
    for (path, bytes) in files {
        write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}
