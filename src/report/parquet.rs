//! A run's tables as Parquet (`kvsim run --format parquet`): the columns and
//! values of the CSV files ([`super::columns`]), typed. Built with the
//! `parquet` cargo feature.
//!
//! Types: counts and indexes `INT64`; seconds and fractions `DOUBLE` (the
//! number a reader of the CSV gets back from its text: seconds to the
//! nanosecond, fractions to 6 decimals); `outcome` a UTF-8 string. A cell
//! empty in the CSV is null. Snappy-compressed, in row groups of 2^20 rows;
//! the bytes depend on nothing but the rows.

use std::io::{self, Write};
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnPath, Type};

use super::columns::{Cell, ColumnKind, Rows};
use super::fastcsv::{frac_value, secs_value};

/// Rows per row group: large enough for readers' column scans, small
/// enough that one column of it (8 MB of values) is all the writer holds.
const ROW_GROUP: usize = 1 << 20;

fn schema(columns: &[(&'static str, ColumnKind)]) -> parquet::errors::Result<Type> {
    let fields = columns
        .iter()
        .map(|&(name, kind)| {
            let (physical, repetition, logical) = match kind {
                ColumnKind::Int => (Physical::INT64, Repetition::REQUIRED, None),
                ColumnKind::OptInt => (Physical::INT64, Repetition::OPTIONAL, None),
                ColumnKind::Secs | ColumnKind::Frac => {
                    (Physical::DOUBLE, Repetition::REQUIRED, None)
                }
                ColumnKind::OptSecs => (Physical::DOUBLE, Repetition::OPTIONAL, None),
                ColumnKind::OptText => (
                    Physical::BYTE_ARRAY,
                    Repetition::OPTIONAL,
                    Some(LogicalType::String),
                ),
            };
            Type::primitive_type_builder(name, physical)
                .with_repetition(repetition)
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        })
        .collect::<parquet::errors::Result<Vec<_>>>()?;
    Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
}

fn properties(columns: &[(&'static str, ColumnKind)]) -> WriterProperties {
    let mut b = WriterProperties::builder().set_compression(Compression::SNAPPY);
    // Times and fractions are nearly all distinct: a dictionary would be
    // built only to be abandoned. Counts and words repeat.
    for &(name, kind) in columns {
        if matches!(
            kind,
            ColumnKind::Secs | ColumnKind::OptSecs | ColumnKind::Frac
        ) || name == "id"
        {
            b = b.set_column_dictionary_enabled(ColumnPath::from(name), false);
        }
    }
    b.build()
}

fn io_error(e: parquet::errors::ParquetError) -> io::Error {
    match e {
        parquet::errors::ParquetError::External(e) => io::Error::other(e),
        e => io::Error::other(e.to_string()),
    }
}

/// The number a cell holds in a `DOUBLE` column (`None`: null).
fn double(cell: Cell) -> Option<f64> {
    match cell {
        Cell::Nanos(ns) => Some(secs_value(ns)),
        Cell::Frac(x) => Some(frac_value(x)),
        Cell::Int(v) => Some(v as f64),
        Cell::Null | Cell::Text(_) => None,
    }
}

/// The values of `cells` (`value` of each; `None`: null) and, for an
/// optional column, their definition levels (1 present, 0 null).
fn gather<T: Rows, V>(
    table: &T,
    col: usize,
    rows: std::ops::Range<usize>,
    optional: bool,
    value: impl Fn(Cell) -> Option<V>,
) -> (Vec<V>, Vec<i16>) {
    let mut values = Vec::with_capacity(rows.len());
    let mut defs = Vec::with_capacity(if optional { rows.len() } else { 0 });
    table.column_cells(col, rows, &mut |cell| {
        let v = value(cell);
        if optional {
            defs.push(i16::from(v.is_some()));
        }
        if let Some(v) = v {
            values.push(v);
        }
    });
    (values, defs)
}

/// Writes `table` as a Parquet file to `w`.
pub fn write_parquet<T: Rows, W: Write + Send>(table: &T, w: W) -> io::Result<()> {
    let columns = table.columns();
    let schema = Arc::new(schema(columns).map_err(io_error)?);
    let mut writer =
        SerializedFileWriter::new(w, schema, Arc::new(properties(columns))).map_err(io_error)?;
    let n = table.len();
    let mut start = 0;
    // An empty table still gets its schema (and no row group).
    while start < n {
        let end = (start + ROW_GROUP).min(n);
        let mut group = writer.next_row_group().map_err(io_error)?;
        let mut col = 0;
        while let Some(mut column) = group.next_column().map_err(io_error)? {
            let (_, kind) = columns[col];
            let optional = matches!(
                kind,
                ColumnKind::OptInt | ColumnKind::OptSecs | ColumnKind::OptText
            );
            match kind {
                ColumnKind::Int | ColumnKind::OptInt => {
                    let (values, defs) = gather(table, col, start..end, optional, |c| match c {
                        // Counts and indexes are far below 2^63.
                        Cell::Int(v) => Some(v as i64),
                        _ => None,
                    });
                    column
                        .typed::<Int64Type>()
                        .write_batch(&values, optional.then_some(&defs[..]), None)
                        .map_err(io_error)?;
                }
                ColumnKind::Secs | ColumnKind::OptSecs | ColumnKind::Frac => {
                    let (values, defs) = gather(table, col, start..end, optional, double);
                    column
                        .typed::<DoubleType>()
                        .write_batch(&values, optional.then_some(&defs[..]), None)
                        .map_err(io_error)?;
                }
                ColumnKind::OptText => {
                    let (values, defs) = gather(table, col, start..end, optional, |c| match c {
                        Cell::Text(s) => Some(ByteArray::from(s)),
                        _ => None,
                    });
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&values, optional.then_some(&defs[..]), None)
                        .map_err(io_error)?;
                }
            }
            column.close().map_err(io_error)?;
            col += 1;
        }
        group.close().map_err(io_error)?;
        start = end;
    }
    writer.close().map_err(io_error)?;
    Ok(())
}

/// `table` as Parquet bytes in memory.
pub fn parquet_bytes<T: Rows>(table: &T) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    write_parquet(table, &mut out)?;
    Ok(out)
}

/// The columns of a `timeline.parquet` the charts draw, for `kvsim report`.
pub fn timeline_series(path: &std::path::Path) -> Result<super::plot::TimelineSeries, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    let names: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let index = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("missing column `{name}`"))
    };
    let wanted = [
        index("time")?,
        index("running")?,
        index("waiting")?,
        index("kv_frac")?,
        index("waste_used")?,
    ];
    let mut series = super::plot::TimelineSeries::default();
    let number = |f: &Field| match f {
        Field::Double(x) => Some(*x).filter(|x| x.is_finite()),
        Field::Long(v) => Some(*v as f64),
        _ => None,
    };
    for row in reader.get_row_iter(None).map_err(|e| e.to_string())? {
        let row = row.map_err(|e| e.to_string())?;
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let at = |i: usize| fields.get(i).and_then(|f| number(f));
        series.time.push(at(wanted[0]));
        series.running.push(at(wanted[1]));
        series.waiting.push(at(wanted[2]));
        series.kv_frac.push(at(wanted[3]));
        series.waste_used.push(at(wanted[4]));
    }
    Ok(series)
}
