//! CSV of a run's tables without an allocation per field: every cell is
//! formatted straight into one reusable buffer, written out in large pieces.
//!
//! The text is byte for byte what `format!` wrote before this module existed
//! (`{:.9}` seconds of `SimTime::as_secs_f64`, `{:.6}` fractions, plain
//! integers), so files, tests and tools that read them see no change. The
//! fast paths print from integers; the rare values where that could differ
//! from `format!` (instants past 48 days, fractions within a hair of a
//! rounding tie, negative or non-finite numbers) go through `format!` itself.
//!
//! A large table is formatted in blocks on rayon's threads when there are
//! several: blocks are written in row order, so the bytes do not depend on
//! the thread count, and only a few blocks are held at once, so memory does
//! not grow with the table.

use std::io::{self, Write};

use super::columns::{Cell, Rows};

/// Nanoseconds below which seconds are printed from the integer: 2^22 s
/// (about 48.5 days). There `ns as f64 / 1e9` is within a quarter of a
/// nanosecond of `ns` nanoseconds (both are below 2^53, and the division
/// rounds correctly to a double whose spacing is under 2^-30 s), so rounding
/// it to 9 decimals, as `{:.9}` does, gives back exactly `ns`.
const EXACT_NANOS: u64 = (1 << 22) * NANOS;

const NANOS: u64 = 1_000_000_000;
const MICROS: u64 = 1_000_000;

/// Fractions below this are printed from an integer number of millionths;
/// `x * 1e6` is then within 2^-23 of the exact product.
const FAST_FRAC_BELOW: f64 = 1024.0;

/// Two decimal digits of 0..100, in order.
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// The 8 decimal digits of `v` (below 10^8) as ASCII, first digit in the
/// lowest byte: two 4-digit halves in 32-bit lanes, split into pairs in
/// 16-bit lanes, then digits in bytes, each by a multiplication that
/// divides every lane at once (P. Khuong's method, as D. Lemire describes
/// it in "Converting integers to fixed-digit representations quickly",
/// 2021). Checked against `format!` for every value in the tests.
#[inline]
fn eight_digits(v: u64) -> u64 {
    let merged = (v / 10_000) | ((v % 10_000) << 32);
    let top = ((merged * 10_486) >> 20) & ((0x7F << 32) | 0x7F);
    let bottom = merged - 100 * top;
    let hundreds = (bottom << 16) + top;
    let mut tens = (hundreds * 103) >> 10;
    tens &= (0xF << 48) | (0xF << 32) | (0xF << 16) | 0xF;
    tens += (hundreds - 10 * tens) << 8;
    tens + 0x3030_3030_3030_3030
}

/// Text being formatted: a buffer kept at its full length, so that digits
/// go straight to their place without a copy or a length check per byte,
/// and how much of it is filled.
pub struct Text {
    buf: Vec<u8>,
    len: usize,
}

impl Text {
    /// Empty, with room for `capacity` bytes before it grows.
    pub fn with_capacity(capacity: usize) -> Text {
        Text {
            buf: vec![0; capacity.max(64)],
            len: 0,
        }
    }

    /// The text so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Empties it, keeping its room.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Makes room for `n` more bytes.
    #[inline]
    fn reserve(&mut self, n: usize) {
        if self.buf.len() - self.len < n {
            self.grow(n);
        }
    }

    #[cold]
    fn grow(&mut self, n: usize) {
        let want = (self.len + n).max(2 * self.buf.len());
        self.buf.resize(want, 0);
    }

    /// Appends one byte.
    #[inline]
    pub fn push(&mut self, b: u8) {
        self.reserve(1);
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// Appends `s`.
    #[inline]
    pub fn extend(&mut self, s: &[u8]) {
        self.reserve(s.len());
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// Appends the `n` low decimal digits of `v` (below `10^n`), with
    /// leading zeros.
    #[inline]
    fn digits(&mut self, mut v: u64, n: usize) {
        self.reserve(n);
        let out = &mut self.buf[self.len..self.len + n];
        let mut i = n;
        while i >= 2 {
            let d = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            out[i] = PAIRS[d];
            out[i + 1] = PAIRS[d + 1];
        }
        if i == 1 {
            out[0] = b'0' + (v % 10) as u8;
        }
        self.len += n;
    }

    /// Appends the 8 decimal digits of `v` (below 10^8), with leading
    /// zeros, keeping the last `n` of them.
    #[inline]
    fn eight_digits_last(&mut self, v: u64, n: usize) {
        self.reserve(8);
        let ascii = eight_digits(v).to_le_bytes();
        self.buf[self.len..self.len + n].copy_from_slice(&ascii[8 - n..]);
        self.len += n;
    }

    /// Appends `v` in decimal.
    #[inline]
    pub fn u64(&mut self, v: u64) {
        let n = v.checked_ilog10().unwrap_or(0) as usize + 1;
        // Up to 4 digits (token counts) two pairs are cheaper than the
        // fixed work of eight at once.
        if (5..=8).contains(&n) {
            self.eight_digits_last(v, n);
        } else {
            self.digits(v, n);
        }
    }

    /// Appends `ns` nanoseconds as seconds with 9 decimals, as
    /// `format!("{:.9}", ns as f64 / 1e9)` does.
    #[inline]
    pub fn secs(&mut self, ns: u64) {
        if ns < EXACT_NANOS {
            let frac = ns % NANOS;
            self.u64(ns / NANOS);
            self.push(b'.');
            self.push(b'0' + (frac / 100_000_000) as u8);
            self.eight_digits_last(frac % 100_000_000, 8);
        } else {
            self.extend(format!("{:.9}", ns as f64 / NANOS as f64).as_bytes());
        }
    }

    /// Appends the fraction `x` with 6 decimals, as `format!("{:.6}", x)`
    /// does.
    #[inline]
    pub fn frac(&mut self, x: f64) {
        match millionths(x) {
            Some(m) => {
                self.u64(m / MICROS);
                self.push(b'.');
                self.eight_digits_last(m % MICROS, 6);
            }
            None => self.extend(format!("{x:.6}").as_bytes()),
        }
    }

    /// Appends `cell` as CSV text.
    #[inline]
    pub fn cell(&mut self, cell: Cell) {
        match cell {
            Cell::Null => {}
            Cell::Int(v) => self.u64(v),
            Cell::Nanos(ns) => self.secs(ns),
            Cell::Frac(x) => self.frac(x),
            Cell::Text(s) => self.extend(s.as_bytes()),
        }
    }
}

/// The number a CSV reader gets back from [`Text::secs`]'s text: the double
/// nearest `ns` nanoseconds in seconds.
pub fn secs_value(ns: u64) -> f64 {
    if ns < EXACT_NANOS {
        // The text is exactly ns / 1e9, and the division of two exact
        // doubles rounds to the double nearest that quotient, as parsing does.
        ns as f64 / NANOS as f64
    } else {
        reparse(format!("{:.9}", ns as f64 / NANOS as f64))
    }
}

/// `x` in millionths, rounded as `{:.6}` rounds it, when that is certain
/// from `x * 1e6`; `None` for the values left to `format!`.
#[inline]
fn millionths(x: f64) -> Option<u64> {
    // Also false for NaN; -0.0 is printed with its sign, so it goes to format!.
    if !(x.is_sign_positive() && x < FAST_FRAC_BELOW) {
        return None;
    }
    let y = x * MICROS as f64;
    let floor = y.floor();
    let rest = y - floor;
    // `y` is within 2^-23 of the exact product: away from a tie the rounding
    // direction is the exact one's; near one, only the exact decimal knows.
    if (rest - 0.5).abs() < 1e-6 {
        return None;
    }
    Some(floor as u64 + u64::from(rest > 0.5))
}

/// The number a CSV reader gets back from [`Text::frac`]'s text.
pub fn frac_value(x: f64) -> f64 {
    match millionths(x) {
        // As for seconds: m / 1e6 rounds to the double nearest the text.
        Some(m) => m as f64 / MICROS as f64,
        None => reparse(format!("{x:.6}")),
    }
}

fn reparse(text: String) -> f64 {
    text.parse().unwrap_or(f64::NAN)
}

/// Appends the header line of `table`.
fn push_header<T: Rows + ?Sized>(out: &mut Text, table: &T) {
    for (i, (name, _)) in table.columns().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(name.as_bytes());
    }
    out.push(b'\n');
}

/// Appends the data rows `rows` of `table`.
fn push_rows<T: Rows + ?Sized>(out: &mut Text, table: &T, rows: std::ops::Range<usize>) {
    for row in rows {
        table.push_csv_row(row, out);
    }
}

/// Rows formatted before the text goes to the writer, in the single-thread
/// path; and rows per block in the parallel one. A block of `requests.csv`
/// is about 2 MB: large writes, few blocks in memory.
const BLOCK_ROWS: usize = 16 * 1024;

/// Bytes a block's text starts with room for (a row of `requests.csv` is
/// about 140).
const BLOCK_BYTES: usize = BLOCK_ROWS * 160;

/// Writes `table` as CSV (a header line, then one line per row) to `w`.
/// Formats on rayon's threads when it has more than one and the table is
/// large; the bytes are the same either way.
pub fn write_csv<T: Rows + ?Sized, W: Write + Send + ?Sized>(
    table: &T,
    w: &mut W,
) -> io::Result<()> {
    let mut text = Text::with_capacity(BLOCK_BYTES);
    push_header(&mut text, table);
    let threads = rayon::current_num_threads();
    let n = table.len();
    if threads < 2 || n < 4 * BLOCK_ROWS {
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK_ROWS).min(n);
            push_rows(&mut text, table, start..end);
            w.write_all(text.as_bytes())?;
            text.clear();
            start = end;
        }
        return w.write_all(text.as_bytes());
    }
    w.write_all(text.as_bytes())?;
    // A round formats one block per thread; the next round is formatted
    // while this one is written. Each round's blocks are new: a block
    // cannot be reused while it is being written.
    let format_round = |first_block: usize| -> Vec<Text> {
        use rayon::prelude::*;
        (first_block..first_block + threads)
            .into_par_iter()
            .map(|b| {
                let start = (b * BLOCK_ROWS).min(n);
                let end = ((b + 1) * BLOCK_ROWS).min(n);
                let mut out = Text::with_capacity(BLOCK_BYTES);
                push_rows(&mut out, table, start..end);
                out
            })
            .collect()
    };
    let blocks = n.div_ceil(BLOCK_ROWS);
    let mut ready = format_round(0);
    let mut next = threads;
    loop {
        let more = next < blocks;
        let (written, formatted) = rayon::join(
            || ready.iter().try_for_each(|b| w.write_all(b.as_bytes())),
            || more.then(|| format_round(next)),
        );
        written?;
        match formatted {
            Some(f) => ready = f,
            None => return Ok(()),
        }
        next += threads;
    }
}

/// `table` as CSV bytes in memory.
pub fn csv_bytes<T: Rows + ?Sized>(table: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(table.len() * 100 + 256);
    write_csv(table, &mut out).expect("writing to memory cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(ns: u64) -> String {
        let mut t = Text::with_capacity(0);
        t.secs(ns);
        String::from_utf8(t.as_bytes().to_vec()).unwrap()
    }

    fn frac(x: f64) -> String {
        let mut t = Text::with_capacity(0);
        t.frac(x);
        String::from_utf8(t.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn eight_digits_are_those_of_format() {
        // Every value would take a while in a debug build: every 7th, and
        // the edges of each power of ten.
        let edges = (0..9).flat_map(|k| {
            let p = 10u64.pow(k);
            [p.saturating_sub(1), p, p + 1]
        });
        for v in (0..100_000_000u64)
            .step_by(7)
            .chain(edges)
            .filter(|&v| v < 100_000_000)
        {
            assert_eq!(
                eight_digits(v).to_le_bytes(),
                *format!("{v:08}").as_bytes(),
                "{v}"
            );
        }
    }

    #[test]
    fn integers_are_spelt_as_format_spells_them() {
        let mut t = Text::with_capacity(0);
        let edges = [0, 1, 9, 10, 99, 100, 101, 999, 1000, u64::MAX - 1, u64::MAX];
        let powers = (0..20).flat_map(|k| {
            let p = 10u64.pow(k);
            [p - 1, p, p + 1]
        });
        for v in edges.into_iter().chain(powers).chain(values(100_000)) {
            t.clear();
            t.u64(v);
            assert_eq!(t.as_bytes(), v.to_string().as_bytes());
        }
        // Past the first room, the text grows.
        t.clear();
        for _ in 0..100 {
            t.u64(u64::MAX);
        }
        assert_eq!(t.as_bytes(), u64::MAX.to_string().repeat(100).as_bytes());
    }

    /// A deterministic stream of varied 64-bit values (SplitMix64).
    fn values(n: usize) -> impl Iterator<Item = u64> {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        (0..n).map(move |_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    }

    #[test]
    fn seconds_are_spelt_as_format_spells_them() {
        let edges = [
            0,
            1,
            999_999_999,
            NANOS,
            EXACT_NANOS - 1,
            EXACT_NANOS,
            EXACT_NANOS + 1,
            (1 << 53) - 1,
            1 << 53,
            u64::MAX - 1,
        ];
        let shifted = values(200_000).map(|v| v >> (v % 64));
        for ns in edges.into_iter().chain(shifted) {
            let want = format!("{:.9}", ns as f64 / 1e9);
            assert_eq!(secs(ns), want, "{ns} ns");
            assert_eq!(
                secs_value(ns).to_bits(),
                want.parse::<f64>().unwrap().to_bits(),
                "{ns} ns"
            );
        }
    }

    #[test]
    fn fractions_are_spelt_as_format_spells_them() {
        let edges = [
            0.0,
            -0.0,
            1.0,
            0.5,
            0.0078125, // an exact tie at the 7th decimal
            0.0000005,
            0.9999995,
            0.99999949999,
            1.0 / 3.0,
            1023.9999999,
            1024.0,
            1e300,
            -0.25,
            f64::NAN,
            f64::INFINITY,
            f64::MIN_POSITIVE,
        ];
        let random = values(300_000).map(|v| {
            let unit = (v >> 11) as f64 / (1u64 << 53) as f64;
            match v % 4 {
                0 => unit,
                1 => unit * 2.0,
                // Near ties: k + 0.5 millionths, nudged by a few ulps.
                2 => ((v % 2_000_000) as f64 + 0.5) / 1e6,
                _ => f64::from_bits(v >> 2),
            }
        });
        for x in edges.into_iter().chain(random) {
            let want = format!("{x:.6}");
            assert_eq!(frac(x), want, "{x:e}");
            let back = want.parse::<f64>().unwrap_or(f64::NAN);
            let got = frac_value(x);
            assert!(
                got.to_bits() == back.to_bits() || (got.is_nan() && back.is_nan()),
                "{x:e}: {got} != {back}"
            );
        }
    }
}
