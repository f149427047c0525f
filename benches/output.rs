//! Whole-process speed and the output writers alone.
//!
//! `cargo bench --bench output` runs:
//!
//! - `whole_process`: the built `kvsim` binary's `run benches/fleet-1m.toml`
//!   (a million requests of the benchmark chat at 60 req/s) into a fresh
//!   directory, every file it writes by default: on every core, and on one
//!   core (`taskset -c 0` where there is one, and one rayon thread);
//!   simulated requests per second of wall time of the whole process;
//! - `writer`: the same run's `requests.csv` (1M rows, 139 MB) and its
//!   timeline of every step (1.3M rows, 100 MB) formatted into a sink, on 1
//!   and 2 rayon threads, bytes per second; `writer_before` formats them as
//!   `kvsim` did before its fast CSV path (the `csv` crate, a `String` per
//!   field), for the ratio; `writer_to_file` streams `requests.csv` into a
//!   file (the kernel's copy included, no fsync); and, built with
//!   `--features parquet`, `requests.parquet` into a sink.
//!
//! The run is simulated once, before the writer benches.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use divan::counter::{BytesCount, ItemsCount};
use kvsim::engine::{RunOutput, simulate};
use kvsim::hardware::cost::RooflineCost;
use kvsim::metrics::{RequestRecord, TimelineRow};
use kvsim::report::columns::{Requests, Rows, Timeline};
use kvsim::report::fastcsv::write_csv;
use kvsim::scenario::Scenario;

fn main() {
    divan::main();
}

/// Requests in `benches/fleet-1m.toml`.
const REQUESTS: u64 = 1_000_000;

fn fleet_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fleet-1m.toml")
}

/// `kvsim run benches/fleet-1m.toml` as a user runs it, each sample into a
/// directory made fresh beforehand (replacing an earlier run's results
/// would add deleting them). `KVSIM_BIN` names another build to time (an
/// earlier commit's, for a before-and-after).
#[divan::bench(args = ["all-cores", "one-core"], sample_count = 5, sample_size = 1)]
fn whole_process(bencher: divan::Bencher, cores: &str) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let out = tmp.path().join("fleet-1m");
    let bin = std::env::var_os("KVSIM_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_kvsim").into());
    let taskset = cores == "one-core"
        && std::process::Command::new("taskset")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
    bencher
        .counter(ItemsCount::new(REQUESTS))
        .with_inputs(|| {
            let _ = std::fs::remove_dir_all(&out);
        })
        .bench_values(|()| {
            let mut cmd = if taskset {
                let mut c = std::process::Command::new("taskset");
                c.args(["-c", "0"]).arg(&bin);
                c
            } else {
                std::process::Command::new(&bin)
            };
            if cores == "one-core" {
                cmd.env("RAYON_NUM_THREADS", "1");
            }
            let status = cmd
                .arg("run")
                .arg(fleet_path())
                .arg("--out")
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .status()
                .expect("the kvsim binary runs");
            assert!(status.success());
        });
}

/// The fleet run with a timeline row per step, simulated once.
fn fleet() -> &'static RunOutput {
    static RUN: OnceLock<RunOutput> = OnceLock::new();
    RUN.get_or_init(|| {
        let s = Scenario::load(
            &fleet_path(),
            &["output.timeline_max_rows=100000000".into()],
        )
        .expect("the bench scenario is valid");
        let d = &s.deployment;
        simulate(&s, s.seed, RooflineCost::new(&s.model, d, &d.efficiency))
            .expect("the bench scenario runs")
    })
}

/// Bytes `table` takes as CSV.
fn csv_len(table: &(impl Rows + ?Sized)) -> u64 {
    struct Count(u64);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    write_csv(table, &mut c).expect("counting cannot fail");
    c.0
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

#[divan::bench(args = ["requests.csv", "timeline.csv"], consts = [1, 2], sample_count = 5, sample_size = 1)]
fn writer<const THREADS: usize>(bencher: divan::Bencher, file: &str) {
    let out = fleet();
    let pool = pool(THREADS);
    // Each table as its own type, as `kvsim run` writes it.
    fn bench_table(bencher: divan::Bencher, pool: &rayon::ThreadPool, table: &impl Rows) {
        bencher.counter(BytesCount::new(csv_len(table))).bench(|| {
            pool.install(|| write_csv(table, &mut std::io::sink()).expect("a sink takes anything"))
        });
    }
    if file == "requests.csv" {
        bench_table(bencher, &pool, &Requests::new(&out.records, None, None));
    } else {
        bench_table(bencher, &pool, &Timeline::new(&out.timeline, None));
    }
}

#[divan::bench(args = ["requests.csv", "timeline.csv"], sample_count = 3, sample_size = 1)]
fn writer_before(bencher: divan::Bencher, file: &str) {
    let out = fleet();
    let bytes = if file == "requests.csv" {
        before::requests_csv(&out.records)
    } else {
        before::timeline_csv(&out.timeline)
    };
    // The same text as the fast path's.
    assert_eq!(
        bytes,
        if file == "requests.csv" {
            kvsim::report::requests_csv(&out.records).unwrap()
        } else {
            kvsim::report::timeline_csv(&out.timeline).unwrap()
        }
    );
    bencher.counter(BytesCount::new(bytes.len())).bench(|| {
        if file == "requests.csv" {
            before::requests_csv(&out.records).len()
        } else {
            before::timeline_csv(&out.timeline).len()
        }
    });
}

#[divan::bench(consts = [1, 2], sample_count = 5, sample_size = 1)]
fn writer_to_file<const THREADS: usize>(bencher: divan::Bencher) {
    let out = fleet();
    let requests = Requests::new(&out.records, None, None);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let path = tmp.path().join("requests.csv");
    let pool = pool(THREADS);
    bencher
        .counter(BytesCount::new(csv_len(&requests)))
        .with_inputs(|| {
            let _ = std::fs::remove_file(&path);
        })
        .bench_values(|()| {
            let mut f = std::fs::File::create(&path).expect("a file");
            pool.install(|| write_csv(&requests, &mut f).expect("written"));
        });
}

#[cfg(feature = "parquet")]
#[divan::bench(sample_count = 3, sample_size = 1)]
fn writer_parquet(bencher: divan::Bencher) {
    let out = fleet();
    let requests = Requests::new(&out.records, None, None);
    let len = kvsim::report::parquet::parquet_bytes(&requests)
        .expect("in memory")
        .len();
    bencher.counter(BytesCount::new(len)).bench(|| {
        kvsim::report::parquet::write_parquet(&requests, std::io::sink()).expect("a sink")
    });
}

/// The writers as they were before the fast CSV path (commit 5734b08's
/// `src/report/mod.rs`, without the cluster columns): a `csv::Writer` fed
/// one `String` per field.
mod before {
    use super::{RequestRecord, TimelineRow};

    fn secs(t: Option<kvsim::units::SimTime>) -> String {
        t.map(|t| format!("{:.9}", t.as_secs_f64()))
            .unwrap_or_default()
    }

    fn span(d: Option<kvsim::units::SimDuration>) -> String {
        d.map(|d| format!("{:.9}", d.as_secs_f64()))
            .unwrap_or_default()
    }

    pub fn requests_csv(records: &[RequestRecord]) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::with_capacity(records.len() * 136));
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
            "hbm_hit_tokens",
            "tier_hit_tokens",
            "queue_s",
            "load_s",
            "prefill_s",
        ])
        .unwrap();
        for r in records {
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
                span(r.prefill()),
            ];
            w.write_record(cells.iter().map(String::as_str)).unwrap();
        }
        w.into_inner().unwrap()
    }

    pub fn timeline_csv(rows: &[TimelineRow]) -> Vec<u8> {
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
        ])
        .unwrap();
        for r in rows {
            let levels = r.fractions();
            let cells = [
                format!("{:.9}", r.time.as_secs_f64()),
                r.running.to_string(),
                r.waiting.to_string(),
                r.kv_used_bytes().to_string(),
                format!("{:.6}", levels.kv),
                format!("{:.6}", levels.used),
                format!("{:.6}", levels.reserved),
                format!("{:.6}", levels.internal),
                format!("{:.6}", levels.external),
                format!("{:.9}", r.step.as_secs_f64()),
            ];
            w.write_record(cells.iter().map(String::as_str)).unwrap();
        }
        w.into_inner().unwrap()
    }
}
