//! A run's tables (`requests.*`, `timeline.*`): the bounded default
//! timeline, bytes that do not depend on the thread count, and Parquet
//! (with the `parquet` feature: the same content as the CSV; without it, a
//! clear refusal).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use kvsim::engine::{RunOutput, simulate};
use kvsim::hardware::cost::RooflineCost;
use kvsim::report::columns::{Requests, Rows, Timeline};
use kvsim::report::fastcsv::{Text, csv_bytes};
use kvsim::scenario::Scenario;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &str, sets: &[&str]) -> Scenario {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Scenario::load(&root().join(path), &sets).unwrap()
}

fn run(s: &Scenario) -> RunOutput {
    let d = &s.deployment;
    simulate(s, s.seed, RooflineCost::new(&s.model, d, &d.efficiency)).unwrap()
}

/// The first of `times` (nanoseconds) in each interval of `width`.
fn first_of_each(times: &[u64], width: u64) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for &t in times {
        if out.last().is_none_or(|&l| l / width != t / width) {
            out.push(t);
        }
    }
    out
}

/// By default a run's timeline keeps every step up to
/// `output.timeline_max_rows` rows; past it, the first step of each interval
/// of the narrowest width of 1 ms, 2 ms, 10 ms, 20 ms, ... that fits,
/// picked from every step. The bound changes no metric.
#[test]
fn the_default_timeline_keeps_every_step_up_to_its_bound_then_thins() {
    let every = run(&load(
        "scenarios/quickstart.toml",
        &["output.timeline_max_rows=1000000"],
    ));
    let default = run(&load("scenarios/quickstart.toml", &[]));
    // 12,918 steps: within the default bound, every one is a row.
    assert_eq!(every.timeline.len() as u64, every.summary.steps);
    assert_eq!(default.timeline, every.timeline);

    let times: Vec<u64> = every.timeline.iter().map(|r| r.time.as_nanos()).collect();
    let bounded = run(&load(
        "scenarios/quickstart.toml",
        &["output.timeline_max_rows=500"],
    ));
    assert_eq!(bounded.summary, every.summary);
    assert_eq!(bounded.records, every.records);
    let got: Vec<u64> = bounded.timeline.iter().map(|r| r.time.as_nanos()).collect();
    assert!(got.len() <= 500, "{} rows", got.len());
    let ladder = [1u64, 2, 10, 20, 100, 200, 1_000, 2_000, 10_000].map(|ms| ms * 1_000_000);
    let width = ladder
        .into_iter()
        .find(|&w| first_of_each(&times, w).len() <= 500)
        .unwrap();
    assert_eq!(got, first_of_each(&times, width), "width {width} ns");
    // Each kept row is the step's row as recorded when every step was.
    for row in &bounded.timeline {
        let i = times.binary_search(&row.time.as_nanos()).unwrap();
        assert_eq!(*row, every.timeline[i]);
    }
}

/// `table` as CSV spelt cell by cell, as the Parquet writer reads it.
fn cell_by_cell(table: &impl Rows) -> Vec<u8> {
    let mut text = Text::with_capacity(0);
    let names: Vec<&str> = table.columns().iter().map(|(n, _)| *n).collect();
    text.extend(names.join(",").as_bytes());
    text.push(b'\n');
    for row in 0..table.len() {
        for col in 0..names.len() {
            if col > 0 {
                text.push(b',');
            }
            text.cell(table.cell(row, col));
        }
        text.push(b'\n');
    }
    text.as_bytes().to_vec()
}

/// The CSV writer's rows, spelt straight from the records, are the cells
/// every format reads, for runs with every kind of column: sessions,
/// failures and requests in flight, a cluster's replicas, a disaggregated
/// deployment's transfers.
#[test]
fn csv_rows_are_the_cells_every_format_reads() {
    let cases: [(&str, &[&str]); 5] = [
        ("scenarios/quickstart.toml", &[]),
        ("scenarios/multi-turn-creep.toml", &[]),
        (
            "scenarios/long-context-crash.toml",
            &["scheduler.on_oom=\"crash\""],
        ),
        (
            "scenarios/quickstart.toml",
            &["hardware.replicas=3", "requests=900"],
        ),
        ("scenarios/disagg-70b-short-prompts.toml", &[]),
    ];
    for (path, sets) in cases {
        let s = load(path, sets);
        let out = run(&s);
        let cluster = out.cluster.as_ref();
        let requests = Requests::new(
            &out.records,
            cluster.map(|c| c.replica_of_request.as_slice()),
            cluster.and_then(|c| c.flights.as_deref()),
        );
        let timeline = Timeline::new(&out.timeline, cluster.map(|c| c.replica_of_row.as_slice()));
        assert_eq!(
            csv_bytes(&requests),
            cell_by_cell(&requests),
            "{path} {sets:?}"
        );
        assert_eq!(
            csv_bytes(&timeline),
            cell_by_cell(&timeline),
            "{path} {sets:?}"
        );
    }
}

/// Writes `out` as `kvsim run` does into `dir` on a rayon pool of `threads`.
fn write_with_threads(
    s: &Scenario,
    out: &RunOutput,
    dir: &Path,
    threads: usize,
    format: kvsim::scenario::spec::TableFormat,
) -> Vec<PathBuf> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let target = kvsim::output::OutputDir::begin(dir, "run", &[]).unwrap();
        let written = kvsim::report::write_run(&target, s, s.seed, out, format).unwrap();
        target.commit().unwrap();
        written
    })
}

/// Large tables are formatted in blocks on several threads; the files are
/// byte for byte those of one thread, and the CSV is the one the in-memory
/// writers make.
#[test]
fn run_files_do_not_depend_on_the_thread_count() {
    // 70,000 requests: more than four blocks of rows, the parallel path.
    let s = load(
        "scenarios/quickstart.toml",
        &["requests=70000", "traffic.arrival.rate=40"],
    );
    let out = run(&s);
    let tmp = tempfile::tempdir().unwrap();
    let csv = kvsim::scenario::spec::TableFormat::Csv;
    let one = write_with_threads(&s, &out, &tmp.path().join("one"), 1, csv);
    let three = write_with_threads(&s, &out, &tmp.path().join("three"), 3, csv);
    // Two threads format the five blocks in three rounds, each written
    // while the next is formatted.
    let two = write_with_threads(&s, &out, &tmp.path().join("two"), 2, csv);
    let names: Vec<_> = one.iter().map(|p| p.file_name().unwrap()).collect();
    assert_eq!(
        names,
        [
            "summary.json",
            "requests.csv",
            "timeline.csv",
            "report.html"
        ]
    );
    for ((a, b), c) in one.iter().zip(&three).zip(&two) {
        let a_bytes = std::fs::read(a).unwrap();
        assert_eq!(a_bytes, std::fs::read(b).unwrap(), "{a:?}");
        assert_eq!(a_bytes, std::fs::read(c).unwrap(), "{a:?}");
    }
    assert_eq!(
        std::fs::read(&one[1]).unwrap(),
        kvsim::report::requests_csv(&out.records).unwrap()
    );
    assert_eq!(
        std::fs::read(&one[2]).unwrap(),
        kvsim::report::timeline_csv(&out.timeline).unwrap()
    );
}

/// `kvsim run ARGS` in a temporary directory; (exit code, stderr, out dir).
fn kvsim_run(args: &[&str], tmp: &Path, out: &str) -> (Option<i32>, String, PathBuf) {
    let dir = tmp.join(out);
    let result = Command::cargo_bin("kvsim")
        .unwrap()
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    (
        result.status.code(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
        dir,
    )
}

/// Without the `parquet` feature, asking for Parquet (flag or scenario key)
/// exits 2 before simulating, says how to build with it, and writes nothing.
#[cfg(not(feature = "parquet"))]
#[test]
fn parquet_without_the_feature_is_refused_with_how_to_enable_it() {
    let tmp = tempfile::tempdir().unwrap();
    let quickstart = root().join("scenarios/quickstart.toml");
    let q = quickstart.to_str().unwrap();
    for (i, args) in [
        vec![q, "--format", "parquet"],
        vec![q, "--set", "output.format=\"parquet\""],
    ]
    .into_iter()
    .enumerate()
    {
        let (code, err, dir) = kvsim_run(&args, tmp.path(), &format!("out{i}"));
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("built without Parquet output"), "{err}");
        assert!(err.contains("--features parquet"), "{err}");
        assert!(!dir.exists(), "{dir:?} was written");
    }
    // The flag wins over the key.
    let (code, err, dir) = kvsim_run(
        &[q, "--set", "output.format=\"parquet\"", "--format", "csv"],
        tmp.path(),
        "csv",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(dir.join("requests.csv").is_file());
}

#[cfg(feature = "parquet")]
mod parquet_files {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    /// The rows of a Parquet file: column names, then each row's fields.
    fn read_parquet(path: &Path) -> (Vec<String>, Vec<Vec<Field>>) {
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let names = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let rows = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| {
                r.unwrap()
                    .get_column_iter()
                    .map(|(_, f)| f.clone())
                    .collect()
            })
            .collect();
        (names, rows)
    }

    /// Every cell of `parquet` equals the CSV's text of it: integers and
    /// doubles as a CSV reader parses them (to the bit), words as written,
    /// nulls where the CSV is empty.
    fn assert_same_content(csv_path: &Path, parquet_path: &Path) -> usize {
        let (names, rows) = read_parquet(parquet_path);
        let mut csv = csv::Reader::from_path(csv_path).unwrap();
        let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(names, header, "{parquet_path:?}");
        let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), records.len(), "{parquet_path:?}");
        for (i, (row, rec)) in rows.iter().zip(&records).enumerate() {
            for (c, (field, text)) in row.iter().zip(rec.iter()).enumerate() {
                let same = match field {
                    Field::Null => text.is_empty(),
                    Field::Long(v) => text.parse::<i64>() == Ok(*v),
                    Field::Double(x) => text.parse::<f64>().map(f64::to_bits) == Ok(x.to_bits()),
                    Field::Str(s) => text == s,
                    _ => false,
                };
                assert!(
                    same,
                    "{parquet_path:?} row {i} column {}: {field:?} against `{text}`",
                    names[c]
                );
            }
        }
        rows.len()
    }

    /// `kvsim run --format parquet` writes requests.parquet and
    /// timeline.parquet holding what requests.csv and timeline.csv hold,
    /// for a single server, a cluster (its `replica` column) and a
    /// disaggregated deployment (its transfer columns); the rest of the
    /// directory is the same, and `kvsim report` rebuilds the same page
    /// from the Parquet timeline.
    #[test]
    fn parquet_tables_read_back_equal_to_the_csv() {
        let tmp = tempfile::tempdir().unwrap();
        let quickstart = root().join("scenarios/quickstart.toml");
        let disagg = root().join("scenarios/disagg-70b-short-prompts.toml");
        let (q, d) = (quickstart.to_str().unwrap(), disagg.to_str().unwrap());
        let cases: [(&str, Vec<&str>); 3] = [
            ("single", vec![q]),
            (
                "cluster",
                vec![q, "--set", "hardware.replicas=3", "--set", "requests=600"],
            ),
            ("disagg", vec![d]),
        ];
        for (name, args) in cases {
            let (code, err, csv_dir) = kvsim_run(&args, tmp.path(), &format!("{name}-csv"));
            assert_eq!(code, Some(0), "{err}");
            let mut pq_args = args.clone();
            pq_args.extend(["--format", "parquet"]);
            let (code, err, pq_dir) = kvsim_run(&pq_args, tmp.path(), &format!("{name}-pq"));
            assert_eq!(code, Some(0), "{err}");
            assert!(!pq_dir.join("requests.csv").exists());
            for table in ["requests", "timeline"] {
                let n = assert_same_content(
                    &csv_dir.join(format!("{table}.csv")),
                    &pq_dir.join(format!("{table}.parquet")),
                );
                assert!(n > 0, "{name}: empty {table}");
            }
            for f in ["summary.json", "report.html"] {
                assert_eq!(
                    std::fs::read(csv_dir.join(f)).unwrap(),
                    std::fs::read(pq_dir.join(f)).unwrap(),
                    "{name}: {f}"
                );
            }
            let before = std::fs::read(pq_dir.join("report.html")).unwrap();
            Command::cargo_bin("kvsim")
                .unwrap()
                .arg("report")
                .arg(&pq_dir)
                .assert()
                .success();
            assert_eq!(
                std::fs::read(pq_dir.join("report.html")).unwrap(),
                before,
                "{name}: kvsim report"
            );
        }
    }

    /// The scenario key asks for Parquet as the flag does.
    #[test]
    fn output_format_parquet_in_the_scenario_writes_parquet() {
        let tmp = tempfile::tempdir().unwrap();
        let q = root().join("scenarios/quickstart.toml");
        let (code, err, dir) = kvsim_run(
            &[
                q.to_str().unwrap(),
                "--set",
                "output.format=\"parquet\"",
                "--set",
                "requests=50",
            ],
            tmp.path(),
            "key",
        );
        assert_eq!(code, Some(0), "{err}");
        assert!(dir.join("requests.parquet").is_file());
        assert!(dir.join("timeline.parquet").is_file());
        assert!(!dir.join("timeline.csv").exists());
    }
}

/// docs/outputs.md lists every column of both tables, in file order, with
/// the Parquet type the writer gives it.
#[test]
fn docs_outputs_md_lists_every_column_with_its_parquet_type() {
    use kvsim::report::columns::ColumnKind;
    let doc = std::fs::read_to_string(root().join("docs/outputs.md")).unwrap();
    let tables: [(&str, Vec<(&str, ColumnKind)>); 2] = [
        (
            "## `requests.csv` / `requests.parquet`",
            Requests::new(&[], Some(&[]), Some(&[])).columns().to_vec(),
        ),
        (
            "## `timeline.csv` / `timeline.parquet`",
            Timeline::new(&[], Some(&[])).columns().to_vec(),
        ),
    ];
    for (heading, columns) in tables {
        let section = doc
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("docs/outputs.md lacks {heading}"));
        let listed: Vec<&str> = section
            .lines()
            .skip_while(|l| !l.starts_with("| column |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let want: Vec<String> = columns
            .iter()
            .map(|&(name, kind)| {
                let ty = match kind {
                    ColumnKind::Int => "`INT64`",
                    ColumnKind::OptInt => "`INT64` (nullable)",
                    ColumnKind::Secs | ColumnKind::Frac => "`DOUBLE`",
                    ColumnKind::OptSecs => "`DOUBLE` (nullable)",
                    ColumnKind::OptText => "`STRING` (nullable)",
                };
                format!("| `{name}` | {ty} |")
            })
            .collect();
        let got: Vec<String> = listed
            .iter()
            .map(|l| l.splitn(4, '|').take(3).collect::<Vec<_>>().join("|") + "|")
            .collect();
        assert_eq!(got, want, "{heading}");
    }
}
