//! A run's `requests.csv` and `timeline.csv` as typed columns in memory, for
//! programs that embed kvsim (the Python package builds its DataFrames from
//! them): the cells every file format writes ([`super::columns`], the one
//! definition of the tables), as numbers instead of text and with no
//! rounding (the CSV writes times to the nanosecond and fractions to six
//! decimals). Each table is written into a [`ColumnSink`], so an embedding
//! can put the values straight where they go; [`Columns`] is the sink that
//! keeps them in vectors. Rows go in blocks of [`BLOCK`], every column of a
//! block before the next block, so a block's records stay in the CPU's cache
//! while its columns are written.

use super::columns::{Cell, ColumnKind, Requests, Rows, Timeline};
use crate::metrics::disagg::FlightTimes;
use crate::metrics::{RequestRecord, TimelineRow};
use crate::units::SimDuration;

/// Rows per block of a table written into a [`ColumnSink`]: a block of
/// records stays in the CPU's cache while its columns are written.
pub const BLOCK: usize = 4096;

/// Where a table's columns go. First [`ColumnSink::rows`] says how many rows
/// the table has; then the rows come in blocks, and for each block one call
/// per column, in CSV order, gives the column's name and that block's values.
/// The first block names every column (a table without rows has one empty
/// block); each later block continues the columns in the same order.
pub trait ColumnSink {
    /// The table has `n` rows (called once, first).
    fn rows(&mut self, n: usize) {
        let _ = n;
    }
    /// Whole numbers: ids, counts, bytes.
    fn int(&mut self, name: &'static str, values: impl ExactSizeIterator<Item = i64>);
    /// Whole numbers, `None` where the CSV cell is empty.
    fn opt_int(&mut self, name: &'static str, values: impl ExactSizeIterator<Item = Option<i64>>);
    /// Seconds or fractions, NaN where the CSV cell is empty.
    fn float(&mut self, name: &'static str, values: impl ExactSizeIterator<Item = f64>);
    /// Words, `None` where the CSV cell is empty.
    fn text(
        &mut self,
        name: &'static str,
        values: impl ExactSizeIterator<Item = Option<&'static str>>,
    );
}

/// One column of a table, held in a vector.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Whole numbers: ids, counts, bytes.
    Int(Vec<i64>),
    /// Whole numbers, `None` where the CSV cell is empty.
    OptInt(Vec<Option<i64>>),
    /// Seconds or fractions, NaN where the CSV cell is empty.
    Float(Vec<f64>),
    /// Words, `None` where the CSV cell is empty.
    Text(Vec<Option<&'static str>>),
}

impl Column {
    /// Rows in the column.
    pub fn len(&self) -> usize {
        match self {
            Column::Int(v) => v.len(),
            Column::OptInt(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A table: named columns of equal length, in CSV order.
pub type Columns = Vec<(&'static str, Column)>;

/// The column of `cols` named `name`, made by `new` if there is none yet.
fn column<'a>(cols: &'a mut Columns, name: &'static str, new: fn() -> Column) -> &'a mut Column {
    let at = match cols.iter().position(|(n, _)| *n == name) {
        Some(at) => at,
        None => {
            cols.push((name, new()));
            cols.len() - 1
        }
    };
    &mut cols[at].1
}

impl ColumnSink for Columns {
    fn int(&mut self, name: &'static str, values: impl ExactSizeIterator<Item = i64>) {
        if let Column::Int(v) = column(self, name, || Column::Int(Vec::new())) {
            v.extend(values);
        }
    }
    fn opt_int(&mut self, name: &'static str, values: impl ExactSizeIterator<Item = Option<i64>>) {
        if let Column::OptInt(v) = column(self, name, || Column::OptInt(Vec::new())) {
            v.extend(values);
        }
    }
    fn float(&mut self, name: &'static str, values: impl ExactSizeIterator<Item = f64>) {
        if let Column::Float(v) = column(self, name, || Column::Float(Vec::new())) {
            v.extend(values);
        }
    }
    fn text(
        &mut self,
        name: &'static str,
        values: impl ExactSizeIterator<Item = Option<&'static str>>,
    ) {
        if let Column::Text(v) = column(self, name, || Column::Text(Vec::new())) {
            v.extend(values);
        }
    }
}

/// The blocks of a table of `n` rows (one empty block if `n` is 0).
fn blocks(n: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..n.div_ceil(BLOCK).max(1)).map(move |b| b * BLOCK..((b + 1) * BLOCK).min(n))
}

/// The columns of `requests.csv` (see [`super::requests_csv_of`], whose
/// arguments these are).
pub fn requests_columns(
    records: &[RequestRecord],
    replica_of: Option<&[u32]>,
    flights: Option<&[FlightTimes]>,
) -> Columns {
    let mut cols = Columns::new();
    write_requests(records, replica_of, flights, &mut cols);
    cols
}

/// [`requests_columns`] into `sink`.
pub fn write_requests(
    records: &[RequestRecord],
    replica_of: Option<&[u32]>,
    flights: Option<&[FlightTimes]>,
    sink: &mut impl ColumnSink,
) {
    write_rows(&Requests::new(records, replica_of, flights), sink);
}

/// The columns of `timeline.csv` (see [`super::timeline_csv_of`], whose
/// arguments these are).
pub fn timeline_columns(rows: &[TimelineRow], replica_of: Option<&[u32]>) -> Columns {
    let mut cols = Columns::new();
    write_timeline(rows, replica_of, &mut cols);
    cols
}

/// [`timeline_columns`] into `sink`.
pub fn write_timeline(
    rows: &[TimelineRow],
    replica_of: Option<&[u32]>,
    sink: &mut impl ColumnSink,
) {
    write_rows(&Timeline::new(rows, replica_of), sink);
}

/// `table`'s columns into `sink`, block by block: the cells every file
/// format writes ([`super::columns`]), as numbers. Times are seconds
/// unrounded, fractions unrounded, absent cells `None` or NaN.
fn write_rows(table: &impl Rows, sink: &mut impl ColumnSink) {
    sink.rows(table.len());
    for rows in blocks(table.len()) {
        for (col, &(name, kind)) in table.columns().iter().enumerate() {
            let cells = rows.clone().map(|row| table.cell(row, col));
            match kind {
                ColumnKind::Int => sink.int(name, cells.map(|c| int(c).unwrap_or(i64::MAX))),
                ColumnKind::OptInt => sink.opt_int(name, cells.map(int)),
                ColumnKind::Secs | ColumnKind::OptSecs | ColumnKind::Frac => {
                    sink.float(name, cells.map(float));
                }
                ColumnKind::OptText => sink.text(name, cells.map(text)),
            }
        }
    }
}

/// A count or an index (`None` if absent). Every count kvsim keeps is far
/// below 2^63.
fn int(cell: Cell) -> Option<i64> {
    match cell {
        Cell::Int(x) => Some(i64::try_from(x).unwrap_or(i64::MAX)),
        _ => None,
    }
}

/// Seconds or a fraction, NaN if absent.
fn float(cell: Cell) -> f64 {
    match cell {
        Cell::Nanos(n) => SimDuration::from_nanos(n).as_secs_f64(),
        Cell::Frac(x) => x,
        _ => f64::NAN,
    }
}

/// A word, `None` if absent.
fn text(cell: Cell) -> Option<&'static str> {
    match cell {
        Cell::Text(t) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::simulate;
    use crate::hardware::cost::RooflineCost;
    use crate::scenario::Scenario;

    /// Every column is the CSV's: the same names in the same order, and each
    /// cell the CSV's text read back (times to the nanosecond, fractions to
    /// six decimals, empty cells absent).
    fn assert_matches_csv(cols: &Columns, csv: &[u8], decimals: &dyn Fn(&str) -> usize) {
        let mut r = csv::Reader::from_reader(csv);
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
        assert_eq!(header, names);
        let records: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        for (c, (name, col)) in cols.iter().enumerate() {
            assert_eq!(col.len(), records.len(), "{name}");
            for (i, rec) in records.iter().enumerate() {
                let cell = &rec[c];
                let ours = match col {
                    Column::Int(v) => v[i].to_string(),
                    Column::OptInt(v) => v[i].map(|x| x.to_string()).unwrap_or_default(),
                    Column::Float(v) if v[i].is_nan() => String::new(),
                    Column::Float(v) => format!("{:.*}", decimals(name), v[i]),
                    Column::Text(v) => v[i].unwrap_or("").to_string(),
                };
                assert_eq!(ours, cell, "{name}, row {i}");
            }
        }
    }

    fn check(text: &str) {
        check_scenario(Scenario::from_toml(text, "t.toml".as_ref(), &[]).unwrap());
    }

    fn check_scenario(s: Scenario) {
        let d = &s.deployment;
        let out = simulate(&s, s.seed, RooflineCost::new(&s.model, d, &d.efficiency)).unwrap();
        let files = crate::report::run_files("t.toml".as_ref(), &s, s.seed, &out).unwrap();
        let cluster = out.cluster.as_ref();
        let requests = requests_columns(
            &out.records,
            cluster.map(|c| c.replica_of_request.as_slice()),
            cluster.and_then(|c| c.flights.as_deref()),
        );
        let timeline =
            timeline_columns(&out.timeline, cluster.map(|c| c.replica_of_row.as_slice()));
        assert!(!requests[0].1.is_empty());
        assert_matches_csv(&requests, &files[1].1, &|_| 9);
        let timeline_decimals = |name: &str| {
            if name == "time" || name == "step_s" {
                9
            } else {
                6
            }
        };
        assert_matches_csv(&timeline, &files[2].1, &timeline_decimals);
    }

    const BASE: &str = r#"
name = "t"
seed = 3
requests = 300
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = { kind = "poisson", rate = 40.0 }
prompt = { kind = "lognormal", mean = 800, sigma = 1.0, min = 4, max = 8192 }
output = { kind = "lognormal", mean = 300, sigma = 1.0, min = 1, max = 2048 }
[cache]
policy = "paged"
"#;

    #[test]
    fn columns_are_the_csv_files_of_a_run() {
        check(BASE);
    }

    #[test]
    fn columns_cross_blocks_and_an_empty_table_has_them_all() {
        // 9,000 requests: three blocks of records, more of timeline rows.
        check(&BASE.replace("requests = 300", "requests = 9000"));
        let cols = timeline_columns(&[], None);
        assert_eq!(cols.len(), 10);
        assert!(cols.iter().all(|(_, c)| c.is_empty()));
        let ranges: Vec<_> = blocks(2 * BLOCK + 1).collect();
        assert_eq!(
            ranges,
            [0..BLOCK, BLOCK..2 * BLOCK, 2 * BLOCK..2 * BLOCK + 1]
        );
        let empty: Vec<_> = blocks(0).collect();
        assert_eq!(empty.len(), 1);
        assert!(empty[0].is_empty());
    }

    #[test]
    fn columns_are_the_csv_files_of_a_cluster_run() {
        check(&BASE.replace("[hardware]\n", "[hardware]\nreplicas = 2\n"));
    }

    #[test]
    fn columns_are_the_csv_files_of_a_disaggregated_run() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/disagg-70b-short-prompts.toml"
        );
        let s = Scenario::load(path.as_ref(), &["requests=60".to_string()]).unwrap();
        assert!(s.disagg.is_some());
        check_scenario(s);
    }
}
