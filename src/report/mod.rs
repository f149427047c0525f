//! Outputs: `summary.json`, `requests.csv`, `timeline.csv`, and terminal tables.
//!
//! This module makes the bytes; [`crate::output`] puts them on disk, all of a
//! command's files together or none. Simulated nanoseconds become seconds here
//! and nowhere else.

pub mod columnar;
pub mod columns;
pub mod fastcsv;
pub mod html;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod plot;
mod table;

pub use crate::output::write_atomic;
pub use table::{TERMINAL_WIDTH, print_kv_report, summary_table};

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::{ClusterOutput, RunOutput};
use crate::error::Error;
use crate::metrics::disagg::FlightTimes;
use crate::metrics::{RequestRecord, Summary, TimelineRow};
use crate::output::OutputDir;
use crate::scenario::Scenario;
use crate::scenario::spec::TableFormat;

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
    Ok(fastcsv::csv_bytes(&columns::Requests::new(
        records, replica_of, flights,
    )))
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
    Ok(fastcsv::csv_bytes(&columns::Timeline::new(
        rows, replica_of,
    )))
}

/// The columns of `rows` the timeline charts draw, as a reader of
/// `timeline.csv` gets them back from its text (seconds to the nanosecond,
/// fractions to 6 decimals), so charts drawn from memory and from the file
/// agree to the bit.
pub fn timeline_series(rows: &[TimelineRow]) -> plot::TimelineSeries {
    let finite = |x: f64| x.is_finite().then_some(x);
    plot::TimelineSeries {
        time: rows
            .iter()
            .map(|r| finite(fastcsv::secs_value(r.time.as_nanos())))
            .collect(),
        running: rows.iter().map(|r| Some(f64::from(r.running))).collect(),
        waiting: rows.iter().map(|r| Some(f64::from(r.waiting))).collect(),
        kv_frac: rows
            .iter()
            .map(|r| finite(fastcsv::frac_value(r.levels.share(r.levels.kv))))
            .collect(),
        waste_used: rows
            .iter()
            .map(|r| finite(fastcsv::frac_value(r.levels.share(r.levels.used))))
            .collect(),
    }
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
/// `timeline.csv`, by name, in memory (a run in streaming mode kept no
/// records: no `requests.csv`). `path` (the scenario) names the run in
/// errors. (`kvsim run` streams them to disk with [`write_run`].)
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

/// Whether this build writes `format` (Parquet needs the `parquet` feature):
/// an error (exit 2) saying how to get a build that does, otherwise.
pub fn require_format(format: TableFormat) -> Result<(), Error> {
    if format == TableFormat::Parquet && !cfg!(feature = "parquet") {
        return Err(Error::Usage(
            "this kvsim was built without Parquet output (--format parquet, output.format = \
             \"parquet\"); build it with the `parquet` feature: cargo build --release \
             --features parquet (or cargo install --path . --features parquet), or write CSV"
                .into(),
        ));
    }
    Ok(())
}

/// Writes `table` as `name` in `format` into `dir`.
fn write_table<T: columns::Rows>(
    dir: &OutputDir,
    name: &str,
    table: &T,
    format: TableFormat,
) -> Result<PathBuf, Error> {
    match format {
        TableFormat::Csv => dir.write_with(name, |f| fastcsv::write_csv(table, f)),
        #[cfg(feature = "parquet")]
        TableFormat::Parquet => dir.write_with(name, |f| parquet::write_parquet(table, f)),
        #[cfg(not(feature = "parquet"))]
        TableFormat::Parquet => Err(require_format(format).expect_err("no parquet feature")),
    }
}

/// Writes a run's files into `dir`: `summary.json`, `requests.<ext>` (not in
/// streaming mode, which kept no records) and
/// `timeline.<ext>` in `format` (see [`columns`]) and `report.html`; returns
/// where each will be once `dir` is committed, in that order.
///
/// The tables are streamed to disk (memory does not grow with them) and the
/// files are written at once on rayon's threads, a large CSV formatted in
/// blocks on several; the bytes do not depend on the threads. On an error
/// the first in that order is returned (`dir`, not committed, is dropped
/// with whatever was written).
pub fn write_run(
    dir: &OutputDir,
    scenario: &Scenario,
    seed: u64,
    out: &RunOutput,
    format: TableFormat,
) -> Result<Vec<PathBuf>, Error> {
    require_format(format)?;
    let cluster = out.cluster.as_ref();
    let requests = columns::Requests::new(
        &out.records,
        cluster.map(|c| c.replica_of_request.as_slice()),
        cluster.and_then(|c| c.flights.as_deref()),
    );
    let timeline =
        columns::Timeline::new(&out.timeline, cluster.map(|c| c.replica_of_row.as_slice()));
    let ext = format.extension();
    let (requests_name, timeline_name) = (format!("requests.{ext}"), format!("timeline.{ext}"));
    let failed = |what: &str, e: String| {
        Error::io(
            &scenario.path,
            std::io::Error::other(format!("cannot format {what}: {e}")),
        )
    };
    let (mut summary, mut report) = (None, None);
    let (mut requests_file, mut timeline_file) = (None, None);
    rayon::scope(|s| {
        // A run in streaming mode kept no records: no requests table.
        if !out.streamed {
            s.spawn(|_| requests_file = Some(write_table(dir, &requests_name, &requests, format)));
        }
        s.spawn(|_| timeline_file = Some(write_table(dir, &timeline_name, &timeline, format)));
        summary = Some(
            summary_json(scenario, seed, &out.summary, cluster)
                .map_err(|e| failed("summary.json", e.to_string()))
                .and_then(|bytes| dir.write("summary.json", &bytes)),
        );
        report = Some(
            html::run_html(scenario, seed, out, format)
                .and_then(|bytes| dir.write("report.html", &bytes)),
        );
    });
    let done = |r: Option<Result<PathBuf, Error>>| r.expect("the scope ran every write");
    let mut written = vec![done(summary)?];
    if let Some(requests) = requests_file {
        written.push(requests?);
    }
    written.push(done(timeline_file)?);
    written.push(done(report)?);
    Ok(written)
}
