//! Reading measurement CSV files (the two formats of the module docs).
//!
//! The parser is hand-written rather than the csv crate's because every error
//! must name the exact 1-based line (the csv crate miscounts after blank lines
//! and CRLF endings) and the column, and the files are plain numbers: no
//! quoting beyond an optional pair of double quotes around a field.

use std::collections::HashMap;
use std::path::Path;

use crate::error::Error;

use super::{Measurement, MeasurementKind};

/// The columns of the step-latency format; `prefill_seqs` is optional.
const STEP_COLUMNS: [&str; 4] = ["batch", "context_tokens", "prefill_tokens", "step_s"];
/// The columns of the per-request format; `concurrency` is optional.
const REQUEST_COLUMNS: [&str; 4] = ["prompt_tokens", "output_tokens", "ttft_s", "tpot_s"];

fn data_err(path: &Path, line: u64, reason: impl Into<String>) -> Error {
    Error::DataFile {
        path: path.to_path_buf(),
        line: Some(line),
        reason: reason.into(),
    }
}

/// Reads a measurement file: step latencies or per-request benchmark results,
/// told apart by the header (a `step_s` column or a `ttft_s` column).
///
/// A per-request row yields a TTFT measurement and, when it has at least two
/// output tokens, a TPOT measurement (see the module docs for the model of
/// each). Blank lines and lines starting with `#` are skipped; columns not
/// named in the format are ignored. Errors are [`Error::DataFile`] naming the
/// file, the 1-based line (the header is the first non-comment line) and the
/// column.
pub fn read_measurements(path: &Path) -> Result<Vec<Measurement>, Error> {
    parse_lines(crate::input::text_lines(path, "measurement file")?, path)
}

/// [`read_measurements`] on text already read from `path` (`path` only names
/// the file in errors).
pub fn parse_measurements(text: &str, path: &Path) -> Result<Vec<Measurement>, Error> {
    let lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| Ok((i as u64 + 1, l.trim_end_matches('\r').to_string())));
    parse_lines(lines, path)
}

/// Parses numbered lines (streamed: one is held at a time).
fn parse_lines(
    lines: impl Iterator<Item = Result<(u64, String), Error>>,
    path: &Path,
) -> Result<Vec<Measurement>, Error> {
    let mut lines = lines.filter(|line| match line {
        Ok((_, l)) => !l.trim().is_empty() && !l.trim_start().starts_with('#'),
        Err(_) => true,
    });
    let Some((header_line, header)) = lines.next().transpose()? else {
        return Err(Error::DataFile {
            path: path.to_path_buf(),
            line: None,
            reason: format!(
                "the file is empty: expected a header `{}` or `{}`",
                STEP_COLUMNS.join(","),
                REQUEST_COLUMNS.join(",")
            ),
        });
    };
    // Spreadsheets start a file with a UTF-8 byte-order mark.
    let header = header.trim_start_matches('\u{feff}');
    let names: Vec<String> = split(header).map(str::to_string).collect();
    let mut index = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        if index.insert(name.as_str(), i).is_some() {
            return Err(data_err(
                path,
                header_line,
                format!("column `{name}` appears twice in the header"),
            ));
        }
    }
    let format = match (index.contains_key("step_s"), index.contains_key("ttft_s")) {
        (true, false) => Format::Step,
        (false, true) => Format::Request,
        (true, true) => {
            return Err(data_err(
                path,
                header_line,
                "the header has both `step_s` (step latencies) and `ttft_s` (per-request \
                 results): use one format per file",
            ));
        }
        (false, false) => {
            return Err(data_err(
                path,
                header_line,
                format!(
                    "unknown format: expected a header `{}` (step latencies) or `{}[,concurrency]` \
                     (per-request results), found `{}`",
                    STEP_COLUMNS.join(","),
                    REQUEST_COLUMNS.join(","),
                    crate::input::quote(header.trim())
                ),
            ));
        }
    };
    let required = match format {
        Format::Step => STEP_COLUMNS,
        Format::Request => REQUEST_COLUMNS,
    };
    if let Some(missing) = required.iter().find(|c| !index.contains_key(*c)) {
        return Err(data_err(
            path,
            header_line,
            format!(
                "the header lacks column `{missing}` (expected `{}`)",
                required.join(",")
            ),
        ));
    }
    let mut out = Vec::new();
    let mut budget = crate::input::RowBudget::for_machine();
    for line in lines {
        let (line, text) = line?;
        let fields: Vec<&str> = split(&text).collect();
        if fields.len() != names.len() {
            return Err(data_err(
                path,
                line,
                format!(
                    "the row has {} fields but the header has {}",
                    fields.len(),
                    names.len()
                ),
            ));
        }
        let row = Row {
            fields,
            index: &index,
            path,
            line,
        };
        match format {
            Format::Step => out.push(step_row(&row)?),
            Format::Request => request_rows(&row, &mut out)?,
        }
        budget
            .charge(2 * std::mem::size_of::<Measurement>())
            .map_err(|reason| data_err(path, line, reason))?;
    }
    if out.is_empty() {
        return Err(data_err(
            path,
            header_line,
            "the file has a header but no rows",
        ));
    }
    Ok(out)
}

#[derive(Copy, Clone)]
enum Format {
    Step,
    Request,
}

/// Splits a CSV line into trimmed fields, dropping one pair of surrounding
/// double quotes.
fn split(line: &str) -> impl Iterator<Item = &str> {
    line.split(',').map(|f| {
        let f = f.trim();
        f.strip_prefix('"')
            .and_then(|f| f.strip_suffix('"'))
            .unwrap_or(f)
            .trim()
    })
}

/// One data row and what is needed to name its errors.
struct Row<'a> {
    fields: Vec<&'a str>,
    index: &'a HashMap<&'a str, usize>,
    path: &'a Path,
    line: u64,
}

impl Row<'_> {
    /// The raw field of `column`, if the header has it.
    fn raw(&self, column: &str) -> Option<&str> {
        self.index.get(column).map(|&i| self.fields[i])
    }

    fn err(&self, column: &str, reason: impl std::fmt::Display) -> Error {
        data_err(self.path, self.line, format!("column `{column}`: {reason}"))
    }

    /// A finite number >= 0 (an integer count when `integer`).
    fn number(&self, column: &str, integer: bool) -> Result<f64, Error> {
        let raw = self.raw(column).unwrap_or_default();
        if raw.is_empty() {
            return Err(self.err(column, "empty"));
        }
        let value: f64 = raw.parse().map_err(|_| {
            self.err(
                column,
                format!("`{}` is not a number", crate::input::quote(raw)),
            )
        })?;
        if !value.is_finite() {
            return Err(self.err(
                column,
                format!("`{}` is not a finite number", crate::input::quote(raw)),
            ));
        }
        if value < 0.0 {
            return Err(self.err(column, format!("{} is negative", crate::input::quote(raw))));
        }
        if integer && (value.fract() != 0.0 || value > f64::from(u32::MAX)) {
            return Err(self.err(
                column,
                format!(
                    "`{}` is not a whole number of tokens or sequences",
                    crate::input::quote(raw)
                ),
            ));
        }
        Ok(value)
    }

    fn count(&self, column: &str) -> Result<u32, Error> {
        Ok(self.number(column, true)? as u32)
    }

    /// A latency in seconds: finite and > 0.
    fn seconds(&self, column: &str) -> Result<f64, Error> {
        let s = self.number(column, false)?;
        if s == 0.0 {
            return Err(self.err(column, "a latency must be > 0 seconds"));
        }
        Ok(s)
    }
}

fn step_row(row: &Row<'_>) -> Result<Measurement, Error> {
    let batch = row.count("batch")?;
    let context = row.number("context_tokens", false)?;
    if context > f64::from(u32::MAX) {
        return Err(row.err("context_tokens", "too large"));
    }
    let prefill_tokens = row.count("prefill_tokens")?;
    let prefill_seqs = match row.raw("prefill_seqs") {
        Some(raw) if !raw.is_empty() => row.count("prefill_seqs")?,
        _ => u32::from(prefill_tokens > 0),
    };
    if prefill_tokens > 0 && !(1..=prefill_tokens).contains(&prefill_seqs) {
        return Err(row.err(
            "prefill_seqs",
            format!("{prefill_seqs} sequences cannot share {prefill_tokens} prompt tokens"),
        ));
    }
    if prefill_tokens == 0 && prefill_seqs > 0 {
        return Err(row.err(
            "prefill_seqs",
            format!("{prefill_seqs} prefill sequences but prefill_tokens is 0"),
        ));
    }
    if batch == 0 && prefill_tokens == 0 {
        return Err(row.err(
            "batch",
            "the step does nothing: batch and prefill_tokens are both 0",
        ));
    }
    let step_s = row.seconds("step_s")?;
    Ok(Measurement {
        batch,
        context_tokens: context.round() as u32,
        prefill_tokens,
        prefill_seqs,
        step_s,
        line: row.line,
        kind: MeasurementKind::Step,
    })
}

fn request_rows(row: &Row<'_>, out: &mut Vec<Measurement>) -> Result<(), Error> {
    let prompt = row.count("prompt_tokens")?;
    if prompt == 0 {
        return Err(row.err("prompt_tokens", "a request has at least 1 prompt token"));
    }
    let output = row.count("output_tokens")?;
    if output == 0 {
        return Err(row.err("output_tokens", "a request has at least 1 output token"));
    }
    let concurrency = match row.raw("concurrency") {
        Some(raw) if !raw.is_empty() => row.count("concurrency")?,
        _ => 1,
    };
    if concurrency == 0 {
        return Err(row.err("concurrency", "must be >= 1"));
    }
    let ttft_s = row.seconds("ttft_s")?;
    // The decode steps of the request see contexts prompt + 1 ..= prompt +
    // output - 1 (the engine's decode context includes the last emitted
    // token): their mean is prompt + output / 2.
    let mean_context = (f64::from(prompt) + f64::from(output) / 2.0).round() as u32;
    // The other sequences of the batch are, on average, as far along as this
    // one: they decode at the mean context while this prompt is prefilled.
    out.push(Measurement {
        batch: concurrency - 1,
        context_tokens: if concurrency > 1 { mean_context } else { 0 },
        prefill_tokens: prompt,
        prefill_seqs: 1,
        step_s: ttft_s,
        line: row.line,
        kind: MeasurementKind::Ttft,
    });
    // With one output token there are no decode steps and TPOT is undefined
    // (vLLM reports 0): the column is not read.
    if output >= 2 {
        out.push(Measurement {
            batch: concurrency,
            context_tokens: mean_context,
            prefill_tokens: 0,
            prefill_seqs: 0,
            step_s: row.seconds("tpot_s")?,
            line: row.line,
            kind: MeasurementKind::Tpot,
        });
    }
    Ok(())
}
