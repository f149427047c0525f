//! Streaming CSV files with exact line numbers and bounded memory.
//!
//! The csv crate reads through a small buffer, so a file is never held
//! whole; but its own `Position::line` miscounts after blank lines, comment
//! lines and CRLF endings, and the byte offset it gives for a record may
//! point at the terminator or the blank lines before it. [`LineCounted`] sits
//! between the file and the parser: it sees every byte once, remembers where
//! each line with content starts (only for the bytes the parser has read
//! ahead, so a few KiB), and turns the parser's offsets into the line a user
//! sees in an editor. It also refuses a line longer than [`MAX_LINE_BYTES`],
//! which bounds the one record the parser holds.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The longest line a CSV reader accepts. A trace or table line is tens to
/// hundreds of bytes; a megabyte is a wrong file (a one-line JSON document,
/// a file without line breaks), refused before it is held.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Read-ahead of the parser, bytes.
const BUFFER_BYTES: usize = 64 << 10;

/// Where a line with content starts.
#[derive(Copy, Clone, Debug)]
struct LineStart {
    /// Offset of its first byte.
    content: u64,
    /// Offset where the run of line breaks (and blank or comment lines)
    /// before it starts: an offset in between belongs to this line.
    gap: u64,
    /// Its 1-based line number.
    line: u64,
}

/// A line over [`MAX_LINE_BYTES`], carried through the parser as an I/O error.
#[derive(Debug)]
struct LineTooLong {
    line: u64,
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} is longer than {MAX_LINE_BYTES} bytes; is this the right file? (a CSV \
             line here is a few hundred bytes at most)",
            self.line
        )
    }
}

impl std::error::Error for LineTooLong {}

/// A reader that counts lines as bytes pass through it (see the module docs).
pub struct LineCounted<R> {
    inner: R,
    /// Offset of the next byte.
    offset: u64,
    /// Line of the next byte: line breaks seen + 1 (`\n`, `\r\n` and a lone
    /// `\r` each count once, as the csv crate splits records).
    line: u64,
    after_cr: bool,
    /// Whether the bytes since `gap` are line breaks, blank or comment lines.
    in_gap: bool,
    gap: u64,
    /// Whether the current line is a comment (its first byte was `comment`).
    in_comment: bool,
    comment: Option<u8>,
    line_bytes: usize,
    /// Starts of lines read but not yet asked about, in order.
    starts: VecDeque<LineStart>,
    /// The last start passed by a query.
    last: Option<LineStart>,
}

impl<R: Read> LineCounted<R> {
    /// Counts the lines of `inner`; lines whose first byte is `comment` are
    /// skipped like blank ones (as the csv crate skips them).
    pub fn new(inner: R, comment: Option<u8>) -> Self {
        LineCounted {
            inner,
            offset: 0,
            line: 1,
            after_cr: false,
            in_gap: true,
            gap: 0,
            in_comment: false,
            comment,
            line_bytes: 0,
            starts: VecDeque::new(),
            last: None,
        }
    }

    fn line_break(&mut self) {
        if !self.in_gap {
            self.in_gap = true;
            self.gap = self.offset;
        }
        self.in_comment = false;
        self.line_bytes = 0;
    }

    fn see(&mut self, b: u8) -> io::Result<()> {
        match b {
            b'\n' => {
                if !self.after_cr {
                    self.line += 1;
                }
                self.after_cr = false;
                self.line_break();
            }
            b'\r' => {
                self.line += 1;
                self.after_cr = true;
                self.line_break();
            }
            _ => {
                self.after_cr = false;
                if self.in_gap && !self.in_comment {
                    if Some(b) == self.comment && self.line_bytes == 0 {
                        self.in_comment = true;
                    } else {
                        self.starts.push_back(LineStart {
                            content: self.offset,
                            gap: self.gap,
                            line: self.line,
                        });
                        self.in_gap = false;
                    }
                }
                self.line_bytes += 1;
                if self.line_bytes > MAX_LINE_BYTES {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        LineTooLong { line: self.line },
                    ));
                }
            }
        }
        self.offset += 1;
        Ok(())
    }

    /// The 1-based line of the record the parser says starts at `byte`
    /// (which may point at the line breaks or skipped lines before it).
    /// Offsets must not go back; earlier ones are answered as well as the
    /// remembered starts allow.
    pub fn line_at(&mut self, byte: u64) -> u64 {
        while let Some(&front) = self.starts.front() {
            if front.content >= byte {
                break;
            }
            self.last = Some(front);
            self.starts.pop_front();
        }
        match self.starts.front() {
            Some(next) if next.gap <= byte => next.line,
            Some(_) => self.last.map_or(1, |l| l.line),
            // Past every start read: in the trailing gap, the line after it.
            None if self.in_gap && self.gap <= byte => self.line,
            None => self.last.map_or(1, |l| l.line),
        }
    }
}

impl<R: Read> Read for LineCounted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            self.see(b)?;
        }
        Ok(n)
    }
}

/// How a CSV file is read.
#[derive(Copy, Clone, Debug, Default)]
pub struct CsvOptions {
    /// Trim spaces around fields.
    pub trim: bool,
    /// Lines starting with this byte are comments.
    pub comment: Option<u8>,
}

/// A CSV file read record by record, every error naming its line.
pub struct CsvFile<R: Read> {
    path: PathBuf,
    reader: csv::Reader<LineCounted<R>>,
}

impl CsvFile<std::fs::File> {
    /// Opens the file at `path` after checking that it is text; `what`
    /// names its role in messages (`trace`, `sweep table`).
    pub fn open(path: &Path, what: &str, options: CsvOptions) -> Result<Self, Error> {
        super::require_text(path, what)?;
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(CsvFile::new(path, file, options))
    }
}

impl<R: Read> CsvFile<R> {
    /// Reads CSV from `source`; `path` names it in errors.
    pub fn new(path: &Path, source: R, options: CsvOptions) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .buffer_capacity(BUFFER_BYTES)
            .trim(if options.trim {
                csv::Trim::All
            } else {
                csv::Trim::None
            })
            .comment(options.comment)
            // Rows of different lengths are checked against the header here,
            // with the line, rather than by the crate.
            .flexible(true)
            .from_reader(LineCounted::new(source, options.comment));
        CsvFile {
            path: path.to_path_buf(),
            reader,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A data-file error at `line`.
    pub fn error(&self, line: Option<u64>, reason: impl Into<String>) -> Error {
        Error::DataFile {
            path: self.path.clone(),
            line,
            reason: reason.into(),
        }
    }

    /// Reads the next record into `record`; its 1-based line, or `None` at
    /// the end of the file.
    pub fn next_record(&mut self, record: &mut csv::StringRecord) -> Result<Option<u64>, Error> {
        match self.reader.read_record(record) {
            Ok(true) => {
                let byte = record.position().map_or(0, |p| p.byte());
                Ok(Some(self.reader.get_mut().line_at(byte)))
            }
            Ok(false) => Ok(None),
            Err(e) => Err(self.csv_error(e)),
        }
    }

    /// Reads the header: its cells (a byte-order mark and spaces trimmed off
    /// the first, as spreadsheets write one) and its line. An empty file, or
    /// one with only blank or comment lines, is an error.
    pub fn header(&mut self) -> Result<(Vec<String>, u64), Error> {
        let mut record = csv::StringRecord::new();
        let Some(line) = self.next_record(&mut record)? else {
            return Err(self.error(
                None,
                "the file is empty; expected a header line naming the columns",
            ));
        };
        let header: Vec<String> = record
            .iter()
            .enumerate()
            .map(|(i, h)| {
                if i == 0 {
                    h.trim_start_matches('\u{feff}').trim().to_string()
                } else {
                    h.to_string()
                }
            })
            .collect();
        if header.iter().all(String::is_empty) {
            return Err(self.error(
                Some(line),
                "the header line is empty; expected the names of the columns",
            ));
        }
        if let Some(dup) = (1..header.len()).find(|&i| header[..i].contains(&header[i])) {
            return Err(self.error(
                Some(line),
                format!(
                    "column `{}` appears more than once in the header",
                    super::quote(&header[dup])
                ),
            ));
        }
        Ok((header, line))
    }

    /// An error for a row at `line` whose field count differs from the header's.
    pub fn unequal(&self, line: u64, len: usize, header_len: usize) -> Error {
        self.error(
            Some(line),
            format!("the row has {len} fields but the header has {header_len}"),
        )
    }

    fn csv_error(&mut self, e: csv::Error) -> Error {
        let line = e
            .position()
            .map(|p| self.reader.get_mut().line_at(p.byte()));
        match e.kind() {
            csv::ErrorKind::Utf8 { .. } => self.error(
                line,
                "the row is not valid UTF-8 (save the file as UTF-8 text)",
            ),
            csv::ErrorKind::Io(io) => match io.get_ref().and_then(|e| e.downcast_ref()) {
                Some(LineTooLong { line }) => self.error(
                    Some(*line),
                    format!(
                        "the line is longer than {MAX_LINE_BYTES} bytes; is this the right \
                         file? (a CSV line here is a few hundred bytes at most)"
                    ),
                ),
                None => Error::io(&self.path, io::Error::new(io.kind(), io.to_string())),
            },
            _ => self.error(line, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of every record of `text` as [`CsvFile`] reports it.
    fn lines_of(text: &str, comment: Option<u8>) -> Vec<(String, u64)> {
        let mut file = CsvFile::new(
            Path::new("t.csv"),
            text.as_bytes(),
            CsvOptions {
                trim: true,
                comment,
            },
        );
        let mut record = csv::StringRecord::new();
        let mut out = Vec::new();
        while let Some(line) = file.next_record(&mut record).unwrap() {
            out.push((record[0].to_string(), line));
        }
        out
    }

    #[test]
    fn lines_are_counted_as_an_editor_shows_them() {
        let expect = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(s, l)| (s.to_string(), *l)).collect()
        };
        assert_eq!(
            lines_of("a\nb\n\n\nc\n", None),
            expect(&[("a", 1), ("b", 2), ("c", 5)])
        );
        assert_eq!(
            lines_of("a\r\nb\r\n\r\n\r\nc", None),
            expect(&[("a", 1), ("b", 2), ("c", 5)])
        );
        assert_eq!(
            lines_of("\n\na\rb\r\rc\n", None),
            expect(&[("a", 3), ("b", 4), ("c", 6)])
        );
        assert_eq!(
            lines_of("# fingerprint\nh\n# note\n\n1\n", Some(b'#')),
            expect(&[("h", 2), ("1", 5)])
        );
        // A field with a quoted line break: the record starts on its first line.
        assert_eq!(
            lines_of("h,x\n1,\"two\nlines\"\n2,y\n", None),
            expect(&[("h", 1), ("1", 2), ("2", 4)])
        );
    }

    #[test]
    fn lines_are_counted_across_the_read_ahead_buffer() {
        // Far more than one buffer, with blank lines and CRLF mixed in.
        let mut text = String::new();
        let mut want = Vec::new();
        let mut line = 1;
        for i in 0..40_000u64 {
            text.push_str(&format!("{i},x\r\n"));
            want.push((i.to_string(), line));
            line += 1;
            if i % 7 == 0 {
                text.push('\n');
                line += 1;
            }
        }
        assert_eq!(lines_of(&text, None), want);
    }

    #[test]
    fn errors_name_their_line_and_long_lines_are_refused() {
        let mut file = CsvFile::new(
            Path::new("t.csv"),
            &b"a,b\n\n1,\xff\n"[..],
            CsvOptions::default(),
        );
        let mut record = csv::StringRecord::new();
        file.next_record(&mut record).unwrap();
        let e = file.next_record(&mut record).unwrap_err().to_string();
        assert!(
            e.contains("t.csv, line 3: the row is not valid UTF-8"),
            "{e}"
        );

        let long = format!("a\n1\n{}\n", "9".repeat(MAX_LINE_BYTES + 1));
        let mut file = CsvFile::new(Path::new("t.csv"), long.as_bytes(), CsvOptions::default());
        let e = loop {
            match file.next_record(&mut record) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a line over the limit was read"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(
            e.contains("t.csv, line 3: the line is longer than 1048576 bytes"),
            "{e}"
        );
    }
}
