//! `sweep.csv`: one row per grid point. Columns: `point`, one per axis (the
//! dotted key), `replicates`, the metrics (docs/ARCHITECTURE.md#metrics;
//! means over replicates, with a `<metric>_ci95` half-width after each
//! headline metric when there are several), then `slo_ttft_p99` and
//! `slo_tpot_p99`.

use std::path::Path;

use crate::error::Error;
use crate::input::{CsvFile, CsvOptions, RowBudget};
use crate::metrics::Summary;

use super::PointResult;

/// Metrics that get a 95 % confidence half-width column with replicates.
pub const HEADLINE: [&str; 9] = [
    "oom_rate",
    "batch_peak",
    "ttft_p99",
    "tpot_p50",
    "tpot_p99",
    "throughput_tok_s",
    "goodput_rps",
    "kv_peak_frac",
    "kv_mean_frac",
];

/// A sweep's results as text cells, ready to write or compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepTable {
    /// Column names.
    pub header: Vec<String>,
    /// One row per point, in grid order; `row[0]` is the point index.
    pub rows: Vec<Vec<String>>,
}

/// Two-sided 97.5 % quantiles of Student's t for 1..=30 degrees of freedom
/// (then the normal 1.96).
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Mean and 95 % confidence half-width of `xs` (half-width 0 for one value).
pub fn mean_ci95(xs: &[f64]) -> (f64, f64) {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
    let t = T_975.get(n - 2).copied().unwrap_or(1.96);
    (mean, t * (var / n as f64).sqrt())
}

/// Renders an axis value as a cell: strings bare, a named setup
/// ([`SETUP_AXIS`](super::SETUP_AXIS)) by its name, everything else as TOML.
pub fn cell(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Table(t) if t.get("name").is_some_and(toml::Value::is_str) => t
            .get("name")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_string(),
        other => other.to_string(),
    }
}

fn number(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
}

fn format_number(x: f64, integral: bool) -> String {
    if integral && x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl SweepTable {
    /// The table of finished `points` of a grid with axes `keys`.
    pub fn from_points(keys: &[String], points: &[PointResult]) -> SweepTable {
        let metric_names = Summary::column_names();
        let with_ci = points.iter().any(|p| p.replicates.len() > 1);
        let mut header = vec!["point".to_string()];
        header.extend(keys.iter().map(|k| axis_column(k)));
        header.push("replicates".into());
        for m in &metric_names {
            header.push(m.clone());
            if with_ci && HEADLINE.contains(&m.as_str()) {
                header.push(format!("{m}_ci95"));
            }
        }
        header.push("slo_ttft_p99".into());
        header.push("slo_tpot_p99".into());
        let rows = points
            .iter()
            .map(|p| {
                let mut row = vec![p.index.to_string()];
                row.extend(p.assignments.iter().map(|(_, v)| cell(v)));
                row.push(p.replicates.len().to_string());
                let values: Vec<serde_json::Map<String, serde_json::Value>> = p
                    .replicates
                    .iter()
                    .map(|s| match serde_json::to_value(s) {
                        Ok(serde_json::Value::Object(m)) => m,
                        _ => unreachable!("a summary serializes to an object"),
                    })
                    .collect();
                for m in &metric_names {
                    let xs: Vec<f64> = values
                        .iter()
                        .filter_map(|v| v.get(m).and_then(number))
                        .collect();
                    let integral = values
                        .iter()
                        .all(|v| v.get(m).is_some_and(|x| x.is_u64() || x.is_i64()));
                    let (mean, ci) = if xs.is_empty() {
                        (f64::NAN, f64::NAN)
                    } else {
                        mean_ci95(&xs)
                    };
                    row.push(if xs.is_empty() {
                        String::new()
                    } else {
                        format_number(mean, integral)
                    });
                    if with_ci && HEADLINE.contains(&m.as_str()) {
                        row.push(if xs.is_empty() {
                            String::new()
                        } else {
                            format!("{ci}")
                        });
                    }
                }
                row.push(p.slo.ttft.map(|v| format!("{v}")).unwrap_or_default());
                row.push(p.slo.tpot.map(|v| format!("{v}")).unwrap_or_default());
                row
            })
            .collect();
        SweepTable { header, rows }
    }

    /// The CSV bytes.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.header)
            .expect("writing to memory cannot fail");
        for r in &self.rows {
            w.write_record(r).expect("writing to memory cannot fail");
        }
        w.into_inner().expect("writing to memory cannot fail")
    }

    /// The cell of `row` in column `name`, if the column exists.
    pub fn get(&self, row: usize, name: &str) -> Option<&str> {
        let c = self.header.iter().position(|h| h == name)?;
        self.rows.get(row).map(|r| r[c].as_str())
    }

    /// Axis columns: those between `point` and `replicates`.
    pub fn axis_columns(&self) -> &[String] {
        let end = self
            .header
            .iter()
            .position(|h| h == "replicates")
            .unwrap_or(1);
        &self.header[1.min(end)..end]
    }
}

/// Reads a `sweep.csv` (a full sweep, a shard or a baseline).
pub fn read_table(path: &Path) -> Result<SweepTable, Error> {
    read_table_lines(path).map(|(t, _)| t)
}

/// [`read_table`], with the 1-based line each row starts on (for errors that
/// point into the file). Lines starting with `#` are skipped: a shard's
/// fingerprint is one.
pub fn read_table_lines(path: &Path) -> Result<(SweepTable, Vec<u64>), Error> {
    let mut file = CsvFile::open(
        path,
        "sweep table",
        CsvOptions {
            trim: false,
            comment: Some(b'#'),
        },
    )?;
    let (header, header_line) = file.header()?;
    if header.first().map(String::as_str) != Some("point")
        || !header.iter().any(|h| h == "replicates")
    {
        return Err(file.error(
            Some(header_line),
            "not a kvsim sweep table: the header must start with `point` and have a \
             `replicates` column",
        ));
    }
    let mut budget = RowBudget::for_machine();
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut record = csv::StringRecord::new();
    while let Some(line) = file.next_record(&mut record)? {
        if record.len() != header.len() {
            return Err(file.unequal(line, record.len(), header.len()));
        }
        if record[0].parse::<usize>().is_err() {
            return Err(file.error(
                Some(line),
                format!(
                    "`point` is `{}`, not a point index",
                    crate::input::quote(&record[0])
                ),
            ));
        }
        budget
            .charge(record.as_slice().len() + record.len() * std::mem::size_of::<String>())
            .map_err(|reason| file.error(Some(line), reason))?;
        rows.push(record.iter().map(str::to_string).collect());
        lines.push(line);
    }
    Ok((SweepTable { header, rows }, lines))
}

/// The column of sweep axis `key`: the key itself, or `sweep.<key>` when it
/// is also the name of another column of the table (sweeping `duration_s` or
/// `requests`, which are metrics too), so that no reader sees a column twice.
pub fn axis_column(key: &str) -> String {
    let base = key.strip_suffix("_ci95").unwrap_or(key);
    let taken = matches!(key, "point" | "replicates")
        || key.starts_with("slo_")
        || Summary::column_names().iter().any(|m| m == base);
    if taken {
        format!("sweep.{key}")
    } else {
        key.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_half_width_uses_student_t() {
        let (m, ci) = mean_ci95(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        // sd = 1, n = 3, t(2) = 4.303.
        assert!((ci - 4.303 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(mean_ci95(&[5.0]), (5.0, 0.0));
    }

    #[test]
    fn an_axis_named_like_a_column_gets_a_column_of_its_own() {
        assert_eq!(axis_column("traffic.arrival.rate"), "traffic.arrival.rate");
        assert_eq!(axis_column("duration_s"), "sweep.duration_s");
        assert_eq!(axis_column("requests"), "sweep.requests");
        assert_eq!(axis_column("replicates"), "sweep.replicates");
    }

    #[test]
    fn cells_render_strings_bare_and_numbers_as_toml() {
        assert_eq!(cell(&toml::Value::String("paged".into())), "paged");
        assert_eq!(cell(&toml::Value::Integer(4)), "4");
        assert_eq!(cell(&toml::Value::Float(0.5)), "0.5");
    }
}
