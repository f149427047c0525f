//! Reading user files defensively: a binary file is refused before it is
//! read whole, small files (scenarios, calibrations) have a size cap, and an
//! error quotes at most [`QUOTE_CHARS`] characters of what it found.
//!
//! A 3 GB file of zeros given as a trace used to be read whole (and then
//! split into one enormous field) before any error; now its first bytes say
//! it is not text and nothing more is read.

use std::io::Read;
use std::path::Path;

use crate::error::Error;

/// The most characters of an offending value or line an error quotes.
pub const QUOTE_CHARS: usize = 200;

/// Bytes read to decide whether a file is text.
const SNIFF_BYTES: usize = 64 << 10;

/// The largest scenario file: scenarios are a few KiB, so a megabyte is a
/// wrong file, not a big scenario.
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;

/// The largest calibration file (a few lines).
pub const MAX_CALIBRATION_BYTES: u64 = 64 << 10;

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
}
