//! Outputs: `summary.json`, `requests.csv`, `timeline.csv`, and terminal tables.
//!
//! This module makes the bytes; [`crate::output`] puts them on disk, all of a
//! command's files together or none. Simulated nanoseconds become seconds here
//! and nowhere else.

pub mod columns;
pub mod html;
pub mod plot;
mod table;

pub use crate::output::write_atomic;
pub use table::{TERMINAL_WIDTH, print_kv_report, summary_table};

use std::path::Path;

use serde::Serialize;

use crate::engine::{ClusterOutput, RunOutput};
use crate::error::Error;
use crate::metrics::disagg::FlightTimes;
use crate::metrics::{RequestRecord, Summary, TimelineRow};
use crate::scenario::Scenario;
use crate::units::{SimDuration, SimTime};

fn secs(t: Option<SimTime>) -> String {
    t.map(|t| format!("{:.9}", t.as_secs_f64()))
        .unwrap_or_default()
}

fn span(d: Option<SimDuration>) -> String {
    d.map(|d| format!("{:.9}", d.as_secs_f64()))
        .unwrap_or_default()
}

/// `requests.csv`: one row per request, in arrival order; times in seconds.
/// After `outcome`: prompt tokens found in HBM's prefix cache and loaded from
/// KV tiers at first admission, and TTFT's parts as the summary defines them
/// (`queue_s` to first admission, `load_s` loading from tiers, `prefill_s`
/// the rest; empty where the request never got that far).
pub fn requests_csv(records: &[RequestRecord]) -> Result<Vec<u8>, csv::Error> {
    requests_csv_of(records, None, None)
}

/// [`requests_csv`] with a last `replica` column when `replica_of` (one
/// entry per record) is given: a cluster run's (for a disaggregated one,
/// the decode replica). With `flights` (a disaggregated run's, one per
/// record) `prefill_s` is the prefill alone and the columns `transfer_s`,
/// `first_step_s`, `decode_stall_s`, `kv_transfer_bytes` and
/// `prefill_replica` follow.
pub fn requests_csv_of(
    records: &[RequestRecord],
    replica_of: Option<&[u32]>,
    flights: Option<&[FlightTimes]>,
) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(records.len() * 136));
    let mut header = vec![
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
        "hbm_hit_tokens",
        "tier_hit_tokens",
        "queue_s",
        "load_s",
        "prefill_s",
    ];
    if replica_of.is_some() {
        header.push("replica");
    }
    if flights.is_some() {
        header.extend([
            "transfer_s",
            "first_step_s",
            "decode_stall_s",
            "kv_transfer_bytes",
            "prefill_replica",
        ]);
    }
    w.write_record(&header)?;
    for (i, r) in records.iter().enumerate() {
        let replica = replica_of.map(|of| of[i].to_string());
        let flight = flights.map(|f| f[i]);
        let prefill = match flight {
            Some(f) => f.prefill_end.and_then(|e| Some(e - r.admitted?)),
            None => r.prefill(),
        };
        let disagg = flight.map(|f| {
            [
                span(f.prefill_end.and_then(|p| Some(f.transfer_end? - p))),
                span(f.transfer_end.and_then(|t| Some(r.first_token? - t))),
                span(f.stall),
                f.bytes.to_string(),
                if f.prefill_replica == u32::MAX {
                    String::new()
                } else {
                    f.prefill_replica.to_string()
                },
            ]
        });
        let cells = [
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
            r.hbm_hit_tokens.to_string(),
            r.tier_hit_tokens.to_string(),
            span(r.queue()),
            span(r.admitted.map(|_| r.load)),
            span(prefill),
        ];
        w.write_record(
            cells
                .iter()
                .map(String::as_str)
                .chain(replica.as_deref())
                .chain(disagg.iter().flatten().map(String::as_str)),
        )?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// `timeline.csv`: the server at each step (or sampling instant).
pub fn timeline_csv(rows: &[TimelineRow]) -> Result<Vec<u8>, csv::Error> {
    timeline_csv_of(rows, None)
}

/// [`timeline_csv`] with a last `replica` column when `replica_of` (one entry
/// per row) is given: a cluster run's, each replica's rows in turn.
pub fn timeline_csv_of(
    rows: &[TimelineRow],
    replica_of: Option<&[u32]>,
) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 64));
    let mut header = vec![
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
    ];
    if replica_of.is_some() {
        header.push("replica");
    }
    w.write_record(&header)?;
    for (i, r) in rows.iter().enumerate() {
        let replica = replica_of.map(|of| of[i].to_string());
        let cells = [
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
        ];
        w.write_record(cells.iter().map(String::as_str).chain(replica.as_deref()))?;
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
    /// The limit that held the batch longest (`metrics.batch_bound_*` give
    /// each one's share of busy time).
    batch_limit: &'static str,
    metrics: &'a Summary,
    /// A cluster's router and each replica's metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterDoc<'a>>,
    resolved_scenario: &'a crate::scenario::ScenarioSpec,
}

/// The cluster part of `summary.json`.
#[derive(Serialize)]
struct ClusterDoc<'a> {
    replicas: u32,
    router: &'static str,
    per_replica: &'a [Summary],
}

/// `summary.json`: the configuration that ran and its metrics.
pub fn summary_json(
    scenario: &Scenario,
    seed: u64,
    summary: &Summary,
    cluster: Option<&ClusterOutput>,
) -> Result<Vec<u8>, serde_json::Error> {
    let doc = summary_doc(scenario, seed, summary, cluster);
    let mut bytes = serde_json::to_vec_pretty(&doc)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The document [`summary_json`] writes, as a JSON value: the same keys in
/// the same order, the same numbers.
pub fn summary_value(
    scenario: &Scenario,
    seed: u64,
    summary: &Summary,
    cluster: Option<&ClusterOutput>,
) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::to_value(summary_doc(scenario, seed, summary, cluster))
}

fn summary_doc<'a>(
    scenario: &'a Scenario,
    seed: u64,
    summary: &'a Summary,
    cluster: Option<&'a ClusterOutput>,
) -> SummaryDoc<'a> {
    SummaryDoc {
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
        batch_limit: summary.batch_limit().name(),
        metrics: summary,
        cluster: cluster.map(|c| ClusterDoc {
            replicas: scenario.deployment.replicas,
            router: scenario.deployment.router.name(),
            per_replica: &c.replicas,
        }),
        resolved_scenario: &scenario.spec,
    }
}

/// The three files of a run: `summary.json`, `requests.csv` and
/// `timeline.csv`, by name (a run in streaming mode kept no records: no
/// `requests.csv`). `path` (the scenario) names the run in errors.
pub fn run_files(
    path: &Path,
    scenario: &Scenario,
    seed: u64,
    out: &RunOutput,
) -> Result<Vec<(&'static str, Vec<u8>)>, Error> {
    let failed = |what: &str, e: String| {
        Error::io(
            path,
            std::io::Error::other(format!("cannot format {what}: {e}")),
        )
    };
    let mut files = vec![(
        "summary.json",
        summary_json(scenario, seed, &out.summary, out.cluster.as_ref())
            .map_err(|e| failed("summary.json", e.to_string()))?,
    )];
    if !out.streamed {
        files.push((
            "requests.csv",
            requests_csv_of(
                &out.records,
                out.cluster
                    .as_ref()
                    .map(|c| c.replica_of_request.as_slice()),
                out.cluster.as_ref().and_then(|c| c.flights.as_deref()),
            )
            .map_err(|e| failed("requests.csv", e.to_string()))?,
        ));
    }
    files.push((
        "timeline.csv",
        timeline_csv_of(
            &out.timeline,
            out.cluster.as_ref().map(|c| c.replica_of_row.as_slice()),
        )
        .map_err(|e| failed("timeline.csv", e.to_string()))?,
    ));
    Ok(files)
}
