//! The library's error type.
//!
//! Every error that reaches the user names where it came from (a file, a key, a
//! line) and why. Input errors map to exit code 2 in the binary.

use std::path::PathBuf;

/// A validation failure at one key of an input, before the file is known.
///
/// Builders (traffic, cache, hardware) return this; the scenario loader wraps it
/// with the file name into [`Error::Scenario`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SpecError {
    /// Dotted path of the offending key, e.g. `traffic.arrival.rate`.
    pub key: String,
    /// What is wrong and what was expected.
    pub reason: String,
}

impl std::fmt::Display for SpecError {
    /// The key and the reason, each quoted value in them cut to
    /// [`QUOTE_CHARS`](crate::input::QUOTE_CHARS) characters: a key or a
    /// value may be whatever a user's file holds, megabytes included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = shorten_quoted(&self.reason);
        if self.key.is_empty() {
            f.write_str(&reason)
        } else {
            write!(f, "`{}`: {reason}", crate::input::quote(&self.key))
        }
    }
}

/// `text` with every span between backticks or double quotes (a quoted
/// value) longer than [`QUOTE_CHARS`](crate::input::QUOTE_CHARS) characters
/// cut short; the words around them are kvsim's and stay whole.
fn shorten_quoted(text: &str) -> String {
    let limit = crate::input::QUOTE_CHARS;
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len().min(4 * limit));
    let mut rest = text;
    while let Some(open) = rest.find(['`', '"']) {
        let mark = &rest[open..open + 1];
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        match rest.find(mark) {
            Some(close) => {
                out.push_str(&crate::input::quote(&rest[..close]));
                out.push_str(mark);
                rest = &rest[close + 1..];
            }
            None => break,
        }
    }
    // The message's own words stay whole.
    out.push_str(rest);
    out
}

impl SpecError {
    /// An error at `key` explaining `reason`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The same error with `prefix.` put before its key (for nested specs).
    pub fn under(mut self, prefix: &str) -> Self {
        self.key = if self.key.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.key)
        };
        self
    }
}

/// Everything that can go wrong in kvsim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario file is malformed or inconsistent.
    #[error("{}: {source}", path.display())]
    Scenario {
        /// The scenario file.
        path: PathBuf,
        /// The key and reason.
        source: SpecError,
    },
    /// A data file (trace, empirical lengths, measurements) is malformed.
    #[error("{}{}: {reason}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    DataFile {
        /// The data file.
        path: PathBuf,
        /// 1-based line of the offending record, if one.
        line: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// A command-line argument is wrong.
    #[error("{0}")]
    Usage(String),
    /// Some points of a sweep could not run; the finished ones were kept.
    #[error("{point} failed: {source}; {kept}")]
    SweepPoint {
        /// The first failed point, described by its axis values.
        point: String,
        /// Why it failed.
        source: Box<Error>,
        /// What was kept, e.g. `the 3 finished points are in out/sweep.partial.csv`.
        kept: String,
    },
    /// The command was interrupted (Ctrl-C) and stopped at a check point.
    #[error("interrupted (Ctrl-C): {kept}")]
    Interrupted {
        /// What was kept, e.g. `nothing was written; out is as it was`.
        kept: String,
    },
    /// A `--max-events` or `--time-limit` guard stopped a run before it
    /// finished; nothing of that run was written.
    #[error("{}: {reason}", path.display())]
    Limit {
        /// The scenario file.
        path: PathBuf,
        /// Which guard, its limit, and how far the run had got.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The process exit code this error maps to: 2 for an input, usage or
    /// file-system problem, 3 when a `--max-events` or `--time-limit` guard
    /// stopped a run, 130 for an interruption (exit 1 is reserved for a
    /// `check` regression or an infeasible `plan`). A failed sweep point
    /// exits with the code of its cause.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Scenario { .. }
            | Error::DataFile { .. }
            | Error::Usage(_)
            | Error::Io { .. } => 2,
            Error::SweepPoint { source, .. } => source.exit_code(),
            Error::Limit { .. } => EXIT_LIMIT,
            // 128 + SIGINT, what shells report for Ctrl-C.
            Error::Interrupted { .. } => 130,
        }
    }
}

/// Exit code of a run stopped by a `--max-events` or `--time-limit` guard:
/// distinct from bad input (2) so scripts can tell "too big" from "wrong".
pub const EXIT_LIMIT: u8 = 3;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_and_quoted_values_are_cut() {
        let long = "p".repeat(5000);
        let e = SpecError::new(
            "cache.policy",
            format!("unknown variant `{long}`, expected one of `paged`, `contiguous`"),
        );
        let text = e.to_string();
        assert!(text.len() < 400, "{}", text.len());
        assert!(
            text.contains("(4800 more characters)`, expected one of `paged`"),
            "{text}"
        );
        let e = SpecError::new("k".repeat(3000), "unknown field");
        assert!(e.to_string().len() < 300);
        // Short messages are left alone.
        let e = SpecError::new("a", "`x` and \"y\"");
        assert_eq!(e.to_string(), "`a`: `x` and \"y\"");
    }
}
