//! Reading `sweep.csv` and `timeline.csv` back for plotting.
//!
//! Cells stay text until a chart asks for a column, so that unknown columns
//! (the metric list grows) cost nothing and string-valued sweep axes
//! (`cache.policy = paged`) survive. Every error names the file, the 1-based
//! line and the column, because a user fixing a hand-edited CSV needs all three.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::input::{CsvFile, CsvOptions, RowBudget};

/// Whether a `sweep.csv` column must hold numbers (or nothing): every metric
/// kvsim writes and the SLO columns; checked eagerly so a bad cell is reported
/// even when no chart reads it.
fn is_numeric_sweep_column(name: &str) -> bool {
    name == "slo_ttft_p99"
        || name == "slo_tpot_p99"
        || crate::metrics::Summary::column_names()
            .iter()
            .any(|m| m == name)
}

/// The columns of `timeline.csv` the charts read.
pub(super) const TIMELINE_COLUMNS: &[&str] =
    &["time", "running", "waiting", "kv_frac", "waste_used"];

/// A CSV file as text cells, with the line each record started on.
#[derive(Debug, Clone)]
pub struct Table {
    path: PathBuf,
    headers: Vec<String>,
    rows: Vec<Row>,
}

#[derive(Debug, Clone)]
struct Row {
    line: u64,
    cells: Vec<String>,
}

/// Which of kvsim's CSV outputs a table is, told by its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `sweep.csv`: one row per sweep point, first column `point`.
    Sweep,
    /// `timeline.csv`: one row per engine step, with `time` and `kv_frac`.
    Timeline,
}

impl Table {
    /// Parses `bytes` as CSV with a header; `path` is only used in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Table, Error> {
        Table::from_csv(CsvFile::new(path, bytes, Self::OPTIONS))
    }

    /// Reads and parses the CSV file at `path`, streaming.
    pub fn read(path: &Path) -> Result<Table, Error> {
        Table::from_csv(CsvFile::open(
            path,
            "sweep or timeline table",
            Self::OPTIONS,
        )?)
    }

    /// `#` lines are comments: a shard's fingerprint is one, and a shard
    /// plots like any sweep.csv.
    const OPTIONS: CsvOptions = CsvOptions {
        trim: true,
        comment: Some(b'#'),
    };

    fn from_csv<R: std::io::Read>(mut file: CsvFile<R>) -> Result<Table, Error> {
        let (headers, header_line) = file.header()?;
        let mut budget = RowBudget::for_machine();
        let mut rows = Vec::new();
        let mut record = csv::StringRecord::new();
        while let Some(line) = file.next_record(&mut record)? {
            if record.len() != headers.len() {
                return Err(file.unequal(line, record.len(), headers.len()));
            }
            budget
                .charge(record.as_slice().len() + record.len() * std::mem::size_of::<String>())
                .map_err(|reason| file.error(Some(line), reason))?;
            rows.push(Row {
                line,
                cells: record.iter().map(str::to_string).collect(),
            });
        }
        if rows.is_empty() {
            return Err(file.error(Some(header_line), "no data rows after the header"));
        }
        Ok(Table {
            path: file.path().to_path_buf(),
            headers,
            rows,
        })
    }

    /// The file this table came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Column names in file order.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no data rows (never true for a parsed table).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Index of the column named `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// Index of the column named `name`, or an error on the header line saying
    /// it is missing.
    pub fn require(&self, name: &str) -> Result<usize, Error> {
        self.column(name)
            .ok_or_else(|| self.error(Some(1), format!("missing column `{name}`")))
    }

    /// A data-file error in this table.
    pub fn error(&self, line: Option<u64>, reason: String) -> Error {
        Error::DataFile {
            path: self.path.clone(),
            line,
            reason,
        }
    }

    /// The text of column `col` in each row.
    pub fn texts(&self, col: usize) -> impl Iterator<Item = &str> + '_ {
        self.rows.iter().map(move |r| r.cells[col].as_str())
    }

    /// Column `col` as numbers: an empty cell (or a non-finite number, which a
    /// chart cannot place) is `None`; any other non-number is an error naming
    /// the line and the column.
    pub fn numbers(&self, col: usize) -> Result<Vec<Option<f64>>, Error> {
        self.rows
            .iter()
            .map(|r| {
                let cell = r.cells[col].as_str();
                parse_cell(cell).ok_or_else(|| {
                    self.error(
                        Some(r.line),
                        format!("column `{}`: `{cell}` is not a number", self.headers[col]),
                    )
                })
            })
            .collect()
    }

    /// Column `name` as numbers (see [`Table::numbers`]); missing is an error.
    pub fn numbers_of(&self, name: &str) -> Result<Vec<Option<f64>>, Error> {
        self.numbers(self.require(name)?)
    }

    /// Whether every non-empty cell of column `col` is a number and at least
    /// one is: such an axis is plotted on a numeric scale, others as categories.
    pub fn is_numeric(&self, col: usize) -> bool {
        let mut any = false;
        for cell in self.texts(col) {
            match parse_cell(cell) {
                Some(Some(_)) => any = true,
                Some(None) => {}
                None => return false,
            }
        }
        any
    }

    /// Tells a sweep from a timeline by the header.
    pub fn kind(&self) -> Result<Kind, Error> {
        if self.headers.first().map(String::as_str) == Some("point") {
            Ok(Kind::Sweep)
        } else if self.column("time").is_some() && self.column("kv_frac").is_some() {
            Ok(Kind::Timeline)
        } else {
            Err(self.error(
                Some(1),
                "neither a sweep.csv (first column `point`) nor a timeline.csv \
                 (columns `time` and `kv_frac`)"
                    .into(),
            ))
        }
    }
}

/// `Some(None)` for an empty or non-finite cell, `Some(Some(x))` for a number,
/// `None` for text.
fn parse_cell(cell: &str) -> Option<Option<f64>> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Some(None);
    }
    cell.parse::<f64>().ok().map(|x| x.is_finite().then_some(x))
}

/// A validated `sweep.csv`.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The rows as read.
    pub table: Table,
    /// Indexes of the sweep axis columns (between `point` and `replicates`).
    pub axes: Vec<usize>,
    /// The scenario's TTFT p99 objective in seconds, if it has one.
    pub slo_ttft_p99: Option<f64>,
    /// The scenario's TPOT p99 objective in seconds, if it has one.
    pub slo_tpot_p99: Option<f64>,
}

impl Sweep {
    /// Checks the structure of a sweep table: `point` first, a `replicates`
    /// column, and numbers in every known metric (and `_ci95`) column present.
    pub fn new(table: Table) -> Result<Sweep, Error> {
        let replicates = table.require("replicates")?;
        table.numbers(0)?;
        table.numbers(replicates)?;
        for (col, name) in table.headers().iter().enumerate() {
            let base = name.strip_suffix("_ci95").unwrap_or(name);
            if col > replicates && is_numeric_sweep_column(base) {
                table.numbers(col)?;
            }
        }
        let slo = |name: &str| -> Result<Option<f64>, Error> {
            Ok(match table.column(name) {
                Some(c) => table.numbers(c)?.into_iter().flatten().next(),
                None => None,
            })
        };
        let slo_ttft_p99 = slo("slo_ttft_p99")?;
        let slo_tpot_p99 = slo("slo_tpot_p99")?;
        Ok(Sweep {
            axes: (1..replicates).collect(),
            table,
            slo_ttft_p99,
            slo_tpot_p99,
        })
    }
}

/// A validated `timeline.csv`.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The rows as read.
    pub table: Table,
}

impl Timeline {
    /// Checks that the columns the charts read are present and numeric.
    pub fn new(table: Table) -> Result<Timeline, Error> {
        for name in TIMELINE_COLUMNS {
            table.numbers_of(name)?;
        }
        Ok(Timeline { table })
    }
}
