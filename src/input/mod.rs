//! Reading user files defensively, in bounded memory.
//!
//! - A binary file is refused from its first 64 KiB, before anything else.
//! - Small files (scenarios, calibrations) have a size cap and are read whole.
//! - Data files (traces, length tables, measurements, sweep tables) stream:
//!   [`CsvFile`] and [`text_lines`] hold one line at a time, refuse a line
//!   over [`MAX_LINE_BYTES`], and name the exact line of every error.
//! - What a reader keeps (a trace's rows) is charged to a [`RowBudget`], a
//!   quarter of the machine's memory, so no file can exhaust it.
//! - An error quotes at most [`QUOTE_CHARS`] characters of what it found.
//!
//! A 3 GB file of zeros given as a trace used to be read whole (and then
//! split into one enormous field) before any error; now its first bytes say
//! it is not text and nothing more is read.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::Error;

mod csv_file;

pub use csv_file::{CsvFile, CsvOptions, MAX_LINE_BYTES};

/// The most characters of an offending value or line an error quotes.
pub const QUOTE_CHARS: usize = 200;

/// Bytes read to decide whether a file is text.
const SNIFF_BYTES: usize = 64 << 10;

/// The largest scenario file: scenarios are a few KiB, so a megabyte is a
/// wrong file, not a big scenario.
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;

/// The largest calibration file (a few lines).
pub const MAX_CALIBRATION_BYTES: u64 = 64 << 10;

/// The largest Hugging Face `config.json`: configs are a few KiB (the
/// longest, with per-layer lists and long-RoPE factor tables, tens of KiB),
/// so a megabyte is a wrong file.
pub const MAX_HF_CONFIG_BYTES: u64 = 1 << 20;

/// `s`, or its first [`QUOTE_CHARS`] characters and how many were left out.
pub fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        None => s.to_string(),
        Some((cut, _)) => format!(
            "{}... ({} more characters)",
            &s[..cut],
            s[cut..].chars().count()
        ),
    }
}

/// `message` with every line cut to [`QUOTE_CHARS`] characters (parser
/// errors quote the offending line, which may be megabytes long).
pub fn quote_lines(message: &str) -> String {
    message.lines().map(quote).collect::<Vec<_>>().join("\n")
}

/// An error if the start of `path` shows a binary file: a NUL byte in its
/// first 64 KiB, which no text format here contains. (Invalid UTF-8 is left
/// to the parsers, which name the line.) `what` names the file's role in
/// the message (`trace`, `scenario`).
pub fn require_text(path: &Path, what: &str) -> Result<(), Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    file.take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    if let Some(at) = head.iter().position(|&b| b == 0) {
        return Err(not_text(path, what, &format!("a zero byte at offset {at}")));
    }
    Ok(())
}

fn not_text(path: &Path, what: &str, found: &str) -> Error {
    Error::DataFile {
        path: path.to_path_buf(),
        line: None,
        reason: format!(
            "is not a text file ({found}); a {what} is UTF-8 text, so nothing more was read"
        ),
    }
}

/// The text of a small file: at most `limit` bytes, UTF-8, no NUL bytes.
pub fn read_small_text(path: &Path, limit: u64, what: &str) -> Result<String, Error> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if size > limit {
        return Err(Error::DataFile {
            path: path.to_path_buf(),
            line: None,
            reason: format!(
                "is {size} bytes; a {what} is at most {limit} bytes (is this the right file?)"
            ),
        });
    }
    require_text(path, what)?;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(|e| Error::io(path, e))?
        // The size may have changed since: read no more than the limit.
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::DataFile {
            path: path.to_path_buf(),
            line: None,
            reason: format!("grew past {limit} bytes while it was read"),
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() as u64;
        Error::DataFile {
            path: path.to_path_buf(),
            line: Some(line),
            reason: format!("bytes that are not UTF-8 at offset {at}; a {what} is UTF-8 text"),
        }
    })
}

/// The lines of the text file at `path`, streamed: each with its 1-based
/// number, its line break (`\n` or `\r\n`) removed. A line over
/// [`MAX_LINE_BYTES`] or one that is not UTF-8 is an error naming it; `what`
/// names the file's role in messages.
pub fn text_lines(
    path: &Path,
    what: &str,
) -> Result<impl Iterator<Item = Result<(u64, String), Error>>, Error> {
    require_text(path, what)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let path: PathBuf = path.to_path_buf();
    let what = what.to_string();
    let mut line = 0u64;
    let mut buf = Vec::new();
    let mut done = false;
    Ok(std::iter::from_fn(move || {
        if done {
            return None;
        }
        line += 1;
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 2)
            .read_until(b'\n', &mut buf);
        let err = |reason: String| {
            Some(Err(Error::DataFile {
                path: path.clone(),
                line: Some(line),
                reason,
            }))
        };
        match read {
            Err(e) => {
                done = true;
                Some(Err(Error::io(&path, e)))
            }
            Ok(0) => {
                done = true;
                None
            }
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                if buf.len() > MAX_LINE_BYTES {
                    done = true;
                    return err(format!(
                        "the line is longer than {MAX_LINE_BYTES} bytes; is this the right file?"
                    ));
                }
                match String::from_utf8(std::mem::take(&mut buf)) {
                    Ok(text) => Some(Ok((line, text))),
                    Err(_) => {
                        done = true;
                        err(format!("the line is not UTF-8; a {what} is UTF-8 text"))
                    }
                }
            }
        }
    }))
}

/// Memory the rows a reader keeps may take, so that no file, however long,
/// exhausts the machine while it loads: a quarter of physical memory, or
/// [`ROW_BUDGET_UNKNOWN`] where that cannot be read. A run needs several
/// times its input's rows (every request's record), so an input past this
/// budget could not be run anyway.
#[derive(Clone, Debug)]
pub struct RowBudget {
    limit: u64,
    used: u64,
}

/// The row budget where the machine's memory is unknown (not Linux).
pub const ROW_BUDGET_UNKNOWN: u64 = 4 << 30;

impl RowBudget {
    /// A quarter of this machine's memory.
    pub fn for_machine() -> Self {
        let limit = crate::machine::physical_memory_bytes().map_or(ROW_BUDGET_UNKNOWN, |m| m / 4);
        RowBudget::with_limit(limit)
    }

    /// A budget of `limit` bytes.
    pub fn with_limit(limit: u64) -> Self {
        RowBudget { limit, used: 0 }
    }

    /// Charges `bytes` for one more row kept; the reason to stop once the
    /// rows kept pass the limit.
    pub fn charge(&mut self, bytes: usize) -> Result<(), String> {
        self.used = self.used.saturating_add(bytes as u64);
        if self.used > self.limit {
            return Err(format!(
                "the rows up to here take more than {:.1} GiB once loaded, a quarter of this \
                 machine's memory; a file this large cannot be used whole (keep its first \
                 rows, e.g. with `head -n`, or sample it)",
                self.limit as f64 / f64::from(1u32 << 30)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_quoted_in_part() {
        assert_eq!(quote("short"), "short");
        let long = "x".repeat(1000);
        let q = quote(&long);
        assert!(q.starts_with(&"x".repeat(200)), "{q}");
        assert!(q.ends_with("... (800 more characters)"), "{q}");
        assert!(q.len() < 250);
        // Characters, not bytes: no cut inside a multi-byte character.
        let wide = "é".repeat(300);
        assert!(quote(&wide).ends_with("(100 more characters)"));
    }

    #[test]
    fn binary_files_are_refused_from_their_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = dir.path().join("zeros.csv");
        std::fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
        let e = require_text(&zeros, "trace").unwrap_err().to_string();
        assert!(
            e.contains("is not a text file (a zero byte at offset 0)"),
            "{e}"
        );
        let latin1 = dir.path().join("latin1.toml");
        std::fs::write(&latin1, b"a = 1\nb = \"caf\xe9\"\n").unwrap();
        let e = read_small_text(&latin1, 1000, "scenario")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2: bytes that are not UTF-8 at offset 14"),
            "{e}"
        );
        let ok = dir.path().join("ok.csv");
        std::fs::write(&ok, "a,b\n1,2\n").unwrap();
        require_text(&ok, "trace").unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, "#".repeat(2000)).unwrap();
        let e = read_small_text(&big, 1000, "scenario")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is 2000 bytes; a scenario is at most 1000 bytes"),
            "{e}"
        );
    }

    #[test]
    fn text_lines_stream_with_numbers_and_refuse_long_or_binary_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, "a,b\r\n\n1,2\n3,4").unwrap();
        let lines: Vec<_> = text_lines(&path, "measurement file")
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            lines,
            [
                (1, "a,b".to_string()),
                (2, String::new()),
                (3, "1,2".to_string()),
                (4, "3,4".to_string())
            ]
        );
        let mut long = b"a,b\n".to_vec();
        long.extend(std::iter::repeat_n(b'7', MAX_LINE_BYTES + 1));
        std::fs::write(&path, &long).unwrap();
        let e = text_lines(&path, "measurement file")
            .unwrap()
            .find_map(Result::err)
            .unwrap()
            .to_string();
        assert!(
            e.contains("line 2: the line is longer than 1048576 bytes"),
            "{e}"
        );
        std::fs::write(&path, b"a,b\n1,\xe9\n").unwrap();
        let e = text_lines(&path, "measurement file")
            .unwrap()
            .find_map(Result::err)
            .unwrap()
            .to_string();
        assert!(
            e.contains("line 2: the line is not UTF-8; a measurement file is UTF-8 text"),
            "{e}"
        );
    }

    #[test]
    fn the_row_budget_stops_a_reader_past_its_limit() {
        let mut budget = RowBudget::with_limit(100);
        for _ in 0..3 {
            budget.charge(32).unwrap();
        }
        let e = budget.charge(32).unwrap_err();
        assert!(e.contains("a file this large cannot be used whole"), "{e}");
    }
}
