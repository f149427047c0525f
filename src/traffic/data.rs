//! Loading traces and length columns from CSV files.
//!
//! Files are read once, when the plan is built; every problem becomes an
//! [`Error::DataFile`] naming the file, the 1-based line (the header is line 1)
//! and what is wrong, so a user can open the file at that line and fix it.

use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::input::{CsvFile, CsvOptions, RowBudget};
use crate::units::SimTime;

use super::spec::ZeroTokens;
use super::{SharedPrefix, secs_to_time};
use crate::ranges::HORIZON_S;

/// The trace column naming a row's shared prefix content.
pub(crate) const PREFIX_ID_COLUMN: &str = "prefix_id";

/// The trace column holding a row's shared prefix length, tokens.
pub(crate) const PREFIX_TOKENS_COLUMN: &str = "prefix_tokens";

/// Immutable data shared by a plan and every generator built from it.
///
/// A newtype so that `Debug` prints a row count instead of 19,000 rows.
#[derive(Clone, PartialEq)]
pub(crate) struct Shared<T>(Arc<[T]>);

impl<T> Shared<T> {
    pub(crate) fn new(rows: Vec<T>) -> Self {
        Shared(Arc::from(rows))
    }
}

impl<T> Deref for Shared<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} rows]", self.0.len())
    }
}

/// One request of a replayed trace.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct TraceRow {
    /// Arrival time.
    pub at: SimTime,
    /// Prompt tokens (>= 1).
    pub prompt: u32,
    /// Output tokens (>= 1).
    pub output: u32,
    /// The shared content the prompt starts with (`tokens <= prompt`).
    pub prefix: Option<SharedPrefix>,
}

pub(super) fn data_err(path: &Path, line: Option<u64>, reason: impl Into<String>) -> Error {
    Error::DataFile {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

/// Reads the CSV file at `path` and calls `row(fields)` for every data row
/// with the fields of `columns`, in that order. `row` returns a reason on a
/// bad row, which becomes an error at that line. The file must have a header
/// naming every column in `columns` exactly once; other columns are ignored.
/// `setting` names the spec key that chose the columns, for the error message.
pub(super) fn for_each_row<const N: usize>(
    path: &Path,
    columns: [&str; N],
    setting: &str,
    mut row: impl FnMut([&str; N]) -> Result<(), String>,
) -> Result<(), Error> {
    for_each_row_with(
        path,
        columns,
        [],
        (setting, setting),
        |_| Ok(()),
        |fields, []| row(fields),
    )
}

/// [`for_each_row`] with `optional` columns too: `header` learns which of
/// them the file has (a reason it returns becomes an error at line 1), and
/// `row` gets their fields, `None` for an absent column. `(setting, wanted)`:
/// the spec key whose `.path` names the file, and what a missing column is
/// wanted by (the same key, or its `format`).
pub(super) fn for_each_row_with<const N: usize, const M: usize>(
    path: &Path,
    columns: [&str; N],
    optional: [&str; M],
    (setting, wanted): (&str, &str),
    header_check: impl FnOnce([bool; M]) -> Result<(), String>,
    mut row: impl FnMut([&str; N], [Option<&str>; M]) -> Result<(), String>,
) -> Result<(), Error> {
    let mut file = CsvFile::open(
        path,
        &format!("file given by `{setting}.path`"),
        CsvOptions {
            trim: true,
            comment: None,
        },
    )
    .map_err(|e| match e {
        Error::Io { source, .. } => data_err(
            path,
            None,
            format!("cannot open the file given by `{setting}.path`: {source}"),
        ),
        e => e,
    })?;
    let (header, _) = file.header()?;
    // `header()` refused duplicate names, so the first match is the only one.
    let find = |name: &str| header.iter().position(|h| h == name);
    let mut index = [0usize; N];
    for (slot, name) in index.iter_mut().zip(columns) {
        *slot = find(name).ok_or_else(|| {
            data_err(
                path,
                Some(1),
                format!(
                    "no column `{name}` (wanted by `{wanted}`); the header has columns: {}",
                    crate::input::quote(&header.join(", "))
                ),
            )
        })?;
    }
    let mut optional_index = [None; M];
    for (slot, name) in optional_index.iter_mut().zip(optional) {
        *slot = find(name);
    }
    header_check(optional_index.map(|i| i.is_some()))
        .map_err(|reason| data_err(path, Some(1), reason))?;
    let mut record = csv::StringRecord::new();
    let mut rows = 0u64;
    while let Some(line) = file.next_record(&mut record)? {
        if record.len() != header.len() {
            return Err(file.unequal(line, record.len(), header.len()));
        }
        rows += 1;
        let fields = index.map(|i| record.get(i).unwrap_or(""));
        let optional_fields = optional_index.map(|i| i.map(|i| record.get(i).unwrap_or("")));
        row(fields, optional_fields).map_err(|reason| data_err(path, Some(line), reason))?;
    }
    if rows == 0 {
        return Err(data_err(
            path,
            None,
            "the file has a header but no data rows",
        ));
    }
    Ok(())
}

/// A token count: a non-negative whole number. Integral floats (`44.0`, as
/// pandas writes integer columns with missing values) are accepted.
pub(super) fn parse_tokens(column: &str, text: &str) -> Result<u32, String> {
    if let Ok(v) = text.parse::<u64>() {
        return u32::try_from(v)
            .map_err(|_| format!("`{column}` = {text} is too large (at most {})", u32::MAX));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 => {
            Ok(v as u32)
        }
        Ok(v) if v < 0.0 => Err(format!(
            "`{column}` = {text} is negative; token counts must be >= 1"
        )),
        _ => Err(format!(
            "`{column}` must be a whole number of tokens, got `{}`",
            crate::input::quote(text)
        )),
    }
}

/// A shared-content id: a non-negative whole number (integral floats too,
/// as for token counts).
fn parse_id(column: &str, text: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "`{column}` must be a whole number >= 0 naming shared content, got `{}`",
            crate::input::quote(text)
        )
    };
    if let Ok(v) = text.parse::<u64>() {
        return u32::try_from(v)
            .map_err(|_| format!("`{column}` = {text} is too large (at most {})", u32::MAX));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 => {
            Ok(v as u32)
        }
        _ => Err(bad()),
    }
}

/// The shared prefix of a trace row from its `prefix_id` and `prefix_tokens`
/// cells (`None` where the file lacks the columns). Both cells empty: no
/// prefix; one empty: an error, since half a prefix cannot be meant. Checks
/// `prefix_tokens >= 1`; the caller checks it against the prompt.
fn parse_prefix(id: Option<&str>, tokens: Option<&str>) -> Result<Option<SharedPrefix>, String> {
    let (Some(id), Some(tokens)) = (id, tokens) else {
        return Ok(None);
    };
    match (id.is_empty(), tokens.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Err(format!(
            "`{PREFIX_ID_COLUMN}` is {id} but `{PREFIX_TOKENS_COLUMN}` is empty; \
             give both, or leave both empty for a request without a shared prefix"
        )),
        (true, false) => Err(format!(
            "`{PREFIX_TOKENS_COLUMN}` is {tokens} but `{PREFIX_ID_COLUMN}` is empty; \
             give both, or leave both empty for a request without a shared prefix"
        )),
        (false, false) => {
            let id = parse_id(PREFIX_ID_COLUMN, id)?;
            let tokens = parse_tokens(PREFIX_TOKENS_COLUMN, tokens)?;
            if tokens == 0 {
                return Err(format!(
                    "`{PREFIX_TOKENS_COLUMN}` is 0; a shared prefix has at least one token \
                     (leave both prefix cells empty for a request without one)"
                ));
            }
            Ok(Some(SharedPrefix {
                id,
                tokens,
                chain: false,
            }))
        }
    }
}

/// The header check of a trace's prefix columns: both or neither.
fn prefix_columns_paired([has_id, has_tokens]: [bool; 2]) -> Result<(), String> {
    let missing = match (has_id, has_tokens) {
        (true, false) => PREFIX_TOKENS_COLUMN,
        (false, true) => PREFIX_ID_COLUMN,
        _ => return Ok(()),
    };
    let present = if has_id {
        PREFIX_ID_COLUMN
    } else {
        PREFIX_TOKENS_COLUMN
    };
    Err(format!(
        "the header has `{present}` but no `{missing}`; shared prefixes need both columns"
    ))
}

/// Applies the zero-token policy: `Ok(None)` drops the row.
pub(super) fn nonzero(
    value: u32,
    column: &str,
    policy: ZeroTokens,
    setting: &str,
) -> Result<Option<u32>, String> {
    match (value, policy) {
        (0, ZeroTokens::Error) => Err(format!(
            "`{column}` is 0, but a request needs at least one token; set \
             `zero_tokens = \"skip\"` (drop such rows) or `zero_tokens = \"one\"` \
             (count them as 1) in `{setting}` to accept them"
        )),
        (0, ZeroTokens::Skip) => Ok(None),
        (0, ZeroTokens::One) => Ok(Some(1)),
        (v, _) => Ok(Some(v)),
    }
}

pub(super) fn all_skipped(path: &Path) -> Error {
    data_err(
        path,
        None,
        "every row has a 0-token length and `zero_tokens = \"skip\"` dropped them all",
    )
}

/// Column names and zero policy of a file holding token counts.
pub(crate) struct Columns<'a> {
    /// Prompt column.
    pub prompt: &'a str,
    /// Output column.
    pub output: &'a str,
    /// Zero-token policy.
    pub zero: ZeroTokens,
    /// The spec key of the file, for messages (e.g. `traffic.arrival`).
    pub setting: &'a str,
}

/// Loads a trace: arrival times (seconds, finite, >= 0, nondecreasing),
/// lengths and optional shared prefixes, in file order; rows outside
/// `window` are dropped and the others' times placed by it.
pub(crate) fn load_trace(
    path: &Path,
    arrival_column: &str,
    cols: &Columns<'_>,
    window: &Window,
) -> Result<Vec<TraceRow>, Error> {
    let mut rows = Vec::new();
    let mut budget = RowBudget::for_machine();
    let mut last = 0.0f64;
    let mut last_text = String::new();
    for_each_row_with(
        path,
        [arrival_column, cols.prompt, cols.output],
        [PREFIX_ID_COLUMN, PREFIX_TOKENS_COLUMN],
        (cols.setting, cols.setting),
        prefix_columns_paired,
        |[at, prompt, output], [prefix_id, prefix_tokens]| {
            let secs: f64 = at.parse().map_err(|_| {
                format!(
                    "`{arrival_column}` must be a number of seconds, got `{}`",
                    crate::input::quote(at)
                )
            })?;
            if !secs.is_finite() || secs < 0.0 {
                return Err(format!(
                    "`{arrival_column}` must be a finite number of seconds >= 0, got {at}"
                ));
            }
            if secs > HORIZON_S {
                return Err(format!(
                    "`{arrival_column}` = {at} s is past the {HORIZON_S:e} s (~317 years) a run \
                     can simulate; are the timestamps in milliseconds or epoch time? (make them \
                     seconds from the trace's start)"
                ));
            }
            if secs < last {
                return Err(format!(
                    "arrival times must be nondecreasing: `{arrival_column}` = {at} comes after {last_text}"
                ));
            }
            last = secs;
            last_text.clear();
            last_text.push_str(at);
            let prompt = parse_tokens(cols.prompt, prompt)?;
            let output = parse_tokens(cols.output, output)?;
            let prefix = parse_prefix(prefix_id, prefix_tokens)?;
            let prompt = nonzero(prompt, cols.prompt, cols.zero, cols.setting)?;
            let output = nonzero(output, cols.output, cols.zero, cols.setting)?;
            let Some(secs) = window.place(secs) else {
                return Ok(());
            };
            if let (Some(prompt), Some(output)) = (prompt, output) {
                if let Some(p) = prefix.filter(|p| p.tokens > prompt) {
                    return Err(format!(
                        "`{PREFIX_TOKENS_COLUMN}` = {} exceeds `{}` = {prompt}: the shared \
                         prefix is part of the prompt",
                        p.tokens, cols.prompt
                    ));
                }
                budget.charge(std::mem::size_of::<TraceRow>())?;
                rows.push(TraceRow {
                    at: secs_to_time(secs),
                    prompt,
                    output,
                    prefix,
                });
            }
            Ok(())
        },
    )?;
    window.nonempty(path, rows.len())?;
    Ok(rows)
}

/// The part of a trace's time axis a replay keeps, and how fast it plays:
/// `traffic.arrival`'s `start_s`, `duration_s` and `speedup`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) struct Window {
    /// First kept instant, seconds on the file's axis.
    pub start: f64,
    /// First instant past the window (infinite: to the end).
    pub end: f64,
    /// Times since `start` are divided by it (> 0).
    pub speedup: f64,
}

impl Window {
    /// Every row, at its own time.
    pub(crate) const ALL: Window = Window {
        start: 0.0,
        end: f64::INFINITY,
        speedup: 1.0,
    };

    /// The replayed arrival of a row at `secs` on the file's axis, or `None`
    /// when it lies outside the window.
    pub(crate) fn place(&self, secs: f64) -> Option<f64> {
        if secs < self.start || secs >= self.end {
            return None;
        }
        Some((secs - self.start) / self.speedup)
    }

    /// The error for a trace left with no request: every row fell outside
    /// the window, or was skipped for 0 tokens.
    pub(crate) fn nonempty(&self, path: &Path, kept: usize) -> Result<(), Error> {
        if kept > 0 {
            Ok(())
        } else if *self == Window::ALL {
            Err(all_skipped(path))
        } else {
            Err(data_err(
                path,
                None,
                format!(
                    "no request is left: every row lies outside the window \
                     [start_s, start_s + duration_s) = [{}, {}) s or was skipped \
                     by `zero_tokens = \"skip\"`",
                    self.start, self.end
                ),
            ))
        }
    }
}

/// Loads (prompt, output) pairs.
pub(crate) fn load_pairs(path: &Path, cols: &Columns<'_>) -> Result<Vec<(u32, u32)>, Error> {
    let mut rows = Vec::new();
    let mut budget = RowBudget::for_machine();
    for_each_row(
        path,
        [cols.prompt, cols.output],
        cols.setting,
        |[prompt, output]| {
            let prompt = parse_tokens(cols.prompt, prompt)?;
            let output = parse_tokens(cols.output, output)?;
            let prompt = nonzero(prompt, cols.prompt, cols.zero, cols.setting)?;
            let output = nonzero(output, cols.output, cols.zero, cols.setting)?;
            if let (Some(prompt), Some(output)) = (prompt, output) {
                budget.charge(std::mem::size_of::<(u32, u32)>())?;
                rows.push((prompt, output));
            }
            Ok(())
        },
    )?;
    if rows.is_empty() {
        return Err(all_skipped(path));
    }
    Ok(rows)
}

/// Loads one column of token counts.
pub(crate) fn load_column(
    path: &Path,
    column: &str,
    zero: ZeroTokens,
    setting: &str,
) -> Result<Vec<u32>, Error> {
    let mut values = Vec::new();
    let mut budget = RowBudget::for_machine();
    for_each_row(path, [column], setting, |[value]| {
        if let Some(v) = nonzero(parse_tokens(column, value)?, column, zero, setting)? {
            budget.charge(std::mem::size_of::<u32>())?;
            values.push(v);
        }
        Ok(())
    })?;
    if values.is_empty() {
        return Err(all_skipped(path));
    }
    Ok(values)
}
