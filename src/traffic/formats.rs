//! Readers of the public trace layouts (`docs/traces.md`): Azure LLM
//! inference 2023/2024 and BurstGPT (CSV), Mooncake (JSONL with hash ids) and
//! ShareGPT (a JSON array of conversations).
//!
//! Every reader streams (one CSV record, JSONL line or conversation at a
//! time), charges what it keeps to a [`RowBudget`], and names the file and
//! line of every error ([`Error::DataFile`], exit 2).

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::{BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::cache::BlockChains;
use crate::error::Error;
use crate::input::{RowBudget, require_text, text_lines};
use crate::ranges::HORIZON_S;

use super::data::{Shared, TraceRow, Window, data_err, for_each_row_with, nonzero, parse_tokens};
use super::spec::{Tokenizer, ZeroTokens};
use super::{SharedPrefix, secs_to_time};

/// Azure's columns: invocation time, context (prompt) and generated tokens.
pub(crate) const AZURE_COLUMNS: [&str; 3] = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"];

/// BurstGPT's columns kvsim reads (`Total tokens` and `Log Type` are ignored).
pub(crate) const BURSTGPT_COLUMNS: [&str; 4] =
    ["Timestamp", "Model", "Request tokens", "Response tokens"];

/// The most bytes one ShareGPT conversation may take in the file: the
/// array's elements are read one at a time, and this bounds the one in hand.
pub const MAX_CONVERSATION_BYTES: u64 = 64 << 20;

/// What a reader needs besides the file: the window, the zero-token policy
/// and the spec key for messages.
pub(crate) struct ReadOpts<'a> {
    /// The replayed part of the time axis.
    pub window: Window,
    /// What to do with 0-token rows.
    pub zero: ZeroTokens,
    /// The spec key of the file (`traffic.arrival`, `traffic.lengths`).
    pub setting: &'a str,
}

/// Nondecreasing arrival times, with the previous row's text for messages.
struct Order {
    last: f64,
    last_text: String,
}

impl Order {
    fn new() -> Self {
        Order {
            last: f64::NEG_INFINITY,
            last_text: String::new(),
        }
    }

    /// `secs` (read from `text` of column `column`) must not precede the
    /// previous row's time.
    fn check(&mut self, column: &str, secs: f64, text: &str) -> Result<(), String> {
        if secs < self.last {
            return Err(format!(
                "arrival times must be nondecreasing: `{column}` = {} comes after {}; \
                 sort the file by time",
                crate::input::quote(text),
                crate::input::quote(&self.last_text)
            ));
        }
        self.last = secs;
        self.last_text.clear();
        self.last_text.push_str(text);
        Ok(())
    }
}

/// Checks a time on the file's axis, seconds: finite, >= 0, within the
/// horizon.
fn check_secs(column: &str, secs: f64, text: &str, unit_hint: &str) -> Result<f64, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "`{column}` must be a finite time >= 0, got `{}`",
            crate::input::quote(text)
        ));
    }
    if secs > HORIZON_S {
        return Err(format!(
            "`{column}` = {text} is past the {HORIZON_S:e} s (~317 years) a run can \
             simulate{unit_hint}"
        ));
    }
    Ok(secs)
}

/// The row's (prompt, output) after the zero-token policy, `None` to drop it.
fn lengths(
    (pcol, prompt): (&str, u32),
    (ocol, output): (&str, u32),
    read: &ReadOpts<'_>,
) -> Result<Option<(u32, u32)>, String> {
    let prompt = nonzero(prompt, pcol, read.zero, read.setting)?;
    let output = nonzero(output, ocol, read.zero, read.setting)?;
    Ok(prompt.zip(output))
}

/// Parses a CSV row's prompt and output counts (`(column, text)`), applies
/// the zero-token policy and the time window, and keeps the row at `secs`.
fn keep_csv_row(
    rows: &mut Vec<TraceRow>,
    budget: &mut RowBudget,
    read: &ReadOpts<'_>,
    secs: f64,
    (prompt_col, prompt): (&str, &str),
    (output_col, output): (&str, &str),
) -> Result<(), String> {
    let prompt = parse_tokens(prompt_col, prompt)?;
    let output = parse_tokens(output_col, output)?;
    let Some((prompt, output)) = lengths((prompt_col, prompt), (output_col, output), read)? else {
        return Ok(());
    };
    if let Some(at) = read.window.place(secs) {
        budget.charge(std::mem::size_of::<TraceRow>())?;
        rows.push(row_at(at, prompt, output, None));
    }
    Ok(())
}

/// Loads an Azure LLM inference trace (2023 or 2024): `TIMESTAMP` date-times
/// (arrival = seconds since the first row's), `ContextTokens` (prompt),
/// `GeneratedTokens` (output).
pub(crate) fn load_azure(path: &Path, read: &ReadOpts<'_>) -> Result<Vec<TraceRow>, Error> {
    let [ts_col, prompt_col, output_col] = AZURE_COLUMNS;
    let mut rows = Vec::new();
    let mut budget = RowBudget::for_machine();
    let mut first: Option<i128> = None;
    let mut order = Order::new();
    let wanted = format!("{}.format = \"azure\"", read.setting);
    for_each_row_with(
        path,
        AZURE_COLUMNS,
        [],
        (read.setting, &wanted),
        |_| Ok(()),
        |[ts, prompt, output], []| {
            let nanos = parse_datetime(ts).map_err(|why| {
                format!(
                    "`{ts_col}` must be a date-time such as `2023-11-16 18:15:46.6805900`, got \
                     `{}`: {why}",
                    crate::input::quote(ts)
                )
            })?;
            let t0 = *first.get_or_insert(nanos);
            let secs = (nanos - t0) as f64 / 1e9;
            order.check(ts_col, secs, ts)?;
            let secs = check_secs(ts_col, secs, ts, "")?;
            keep_csv_row(
                &mut rows,
                &mut budget,
                read,
                secs,
                (prompt_col, prompt),
                (output_col, output),
            )
        },
    )?;
    read.window.nonempty(path, rows.len())?;
    Ok(rows)
}

/// Loads a BurstGPT trace: `Timestamp` seconds, `Request tokens` (prompt),
/// `Response tokens` (output; 0 marks a failed request, handled by the
/// zero-token policy), `Model` (kept when it equals `model`, if given).
pub(crate) fn load_burstgpt(
    path: &Path,
    read: &ReadOpts<'_>,
    model: Option<&str>,
) -> Result<Vec<TraceRow>, Error> {
    let [ts_col, model_col, prompt_col, output_col] = BURSTGPT_COLUMNS;
    let mut rows = Vec::new();
    let mut budget = RowBudget::for_machine();
    let mut order = Order::new();
    let mut models_seen = 0u64;
    let wanted = format!("{}.format = \"burstgpt\"", read.setting);
    for_each_row_with(
        path,
        BURSTGPT_COLUMNS,
        [],
        (read.setting, &wanted),
        |_| Ok(()),
        |[ts, row_model, prompt, output], []| {
            let secs: f64 = ts.parse().map_err(|_| {
                format!(
                    "`{ts_col}` must be a number of seconds, got `{}`",
                    crate::input::quote(ts)
                )
            })?;
            let secs = check_secs(ts_col, secs, ts, "")?;
            order.check(ts_col, secs, ts)?;
            if model.is_some_and(|m| m != row_model) {
                return Ok(());
            }
            models_seen += 1;
            keep_csv_row(
                &mut rows,
                &mut budget,
                read,
                secs,
                (prompt_col, prompt),
                (output_col, output),
            )
        },
    )?;
    if let (Some(m), 0) = (model, models_seen) {
        return Err(data_err(
            path,
            None,
            format!(
                "no row has `{model_col}` = `{}` (`{}.model`); BurstGPT's models are \
                 `ChatGPT` and `GPT-4`",
                crate::input::quote(m),
                read.setting
            ),
        ));
    }
    read.window.nonempty(path, rows.len())?;
    Ok(rows)
}

/// One line of a Mooncake trace. Unknown fields are ignored.
#[derive(Deserialize)]
struct MooncakeLine {
    /// Arrival, milliseconds since the trace's start.
    timestamp: f64,
    /// Prompt tokens.
    input_length: u64,
    /// Output tokens.
    output_length: u64,
    /// One id per `block_tokens` tokens of the prompt, prefix-chained.
    #[serde(default)]
    hash_ids: Vec<u64>,
}

/// Loads a Mooncake JSONL trace and the block identities of its hash ids.
///
/// Each kept request's hash ids become one chain of the returned
/// [`BlockChains`], as nodes of the prefix tree of all chains (a node per
/// distinct sequence of ids from the start), and its prefix
/// ([`SharedPrefix::chain`]) covers `min(input_length, ids * block_tokens)`
/// tokens. Ids past `ceil(input_length / block_tokens)` name no token of the
/// prompt and are ignored. The last id of a prompt that is not a multiple of
/// `block_tokens` names a partial trace block; its full cache blocks are
/// shared like any others (a partial cache block never is).
pub(crate) fn load_mooncake(
    path: &Path,
    read: &ReadOpts<'_>,
    block_tokens: u32,
) -> Result<(Vec<TraceRow>, BlockChains), Error> {
    const ROOT: u32 = u32::MAX;
    let mut rows = Vec::new();
    let mut nodes: Vec<u32> = Vec::new();
    let mut tree: HashMap<(u32, u64), u32> = HashMap::new();
    let mut budget = RowBudget::for_machine();
    let mut order = Order::new();
    let err = |line: u64, reason: String| data_err(path, Some(line), reason);
    for item in text_lines(path, "Mooncake trace")? {
        let (line, text) = item?;
        if text.trim().is_empty() {
            continue;
        }
        let ObjectOnly(row) =
            serde_json::from_str::<ObjectOnly<MooncakeLine>>(&text).map_err(|e| {
                err(
                    line,
                    format!(
                        "not a Mooncake trace line (a JSON object with `timestamp`, \
                     `input_length`, `output_length`, `hash_ids`): {}",
                        json_reason(&e)
                    ),
                )
            })?;
        let ts_text = row.timestamp.to_string();
        let secs = check_secs(
            "timestamp",
            row.timestamp / 1000.0,
            &ts_text,
            "; Mooncake timestamps are milliseconds since the trace's start",
        )
        .and_then(|secs| order.check("timestamp", secs, &ts_text).map(|()| secs))
        .map_err(|why| err(line, why))?;
        let tokens = |name: &str, v: u64| {
            u32::try_from(v).map_err(|_| {
                err(
                    line,
                    format!("`{name}` = {v} is too large (at most {})", u32::MAX),
                )
            })
        };
        let prompt = tokens("input_length", row.input_length)?;
        let output = tokens("output_length", row.output_length)?;
        let Some((prompt, output)) =
            lengths(("input_length", prompt), ("output_length", output), read)
                .map_err(|why| err(line, why))?
        else {
            continue;
        };
        let Some(at) = read.window.place(secs) else {
            continue;
        };
        let used = row
            .hash_ids
            .len()
            .min(prompt.div_ceil(block_tokens) as usize);
        let offset = u32::try_from(nodes.len())
            .ok()
            .filter(|o| o.checked_add(used as u32).is_some())
            .ok_or_else(|| {
                err(
                    line,
                    format!("more than {} hash ids in all; use a window", u32::MAX),
                )
            })?;
        let mut parent = ROOT;
        for &id in &row.hash_ids[..used] {
            let fresh = tree.len() as u32;
            let node = *tree.entry((parent, id)).or_insert_with(|| fresh);
            if node == fresh {
                budget.charge(32).map_err(|why| err(line, why))?;
            }
            nodes.push(node);
            parent = node;
        }
        budget
            .charge(std::mem::size_of::<TraceRow>() + 4 * used)
            .map_err(|why| err(line, why))?;
        let prefix = (used > 0).then(|| SharedPrefix {
            id: offset,
            tokens: prompt
                .min((used as u64 * u64::from(block_tokens)).min(u64::from(u32::MAX)) as u32),
            chain: true,
        });
        rows.push(row_at(at, prompt, output, prefix));
    }
    read.window.nonempty(path, rows.len())?;
    Ok((rows, BlockChains::new(nodes, block_tokens)))
}

fn row_at(at: f64, prompt: u32, output: u32, prefix: Option<SharedPrefix>) -> TraceRow {
    TraceRow {
        at: secs_to_time(at),
        prompt,
        output,
        prefix,
    }
}

/// A serde_json error's message without its "at line 1 column 5" (the
/// caller names the file's line), with the column kept when there is one.
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let bare = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(head, _)| head);
    let bare = crate::input::quote(bare);
    if e.column() > 0 {
        format!("{bare} (column {})", e.column())
    } else {
        bare
    }
}

/// Nanoseconds since 1970-01-01 of a naive UTC date-time
/// `YYYY-MM-DD HH:MM:SS[.fffffffff]` (a `T` may stand for the space, and a
/// trailing `Z` is allowed; 0 to 9 fractional digits). In `i128`: years 0000
/// to 9999 span 3.2e20 ns, beyond 64 bits, and the difference of two such
/// instants must not wrap.
pub(crate) fn parse_datetime(text: &str) -> Result<i128, String> {
    let s = text.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    let b = s.as_bytes();
    if b.len() < 19 {
        return Err("too short for `YYYY-MM-DD HH:MM:SS`".into());
    }
    let num = |from: usize, len: usize, what: &str| -> Result<i128, String> {
        let part = &b[from..from + len];
        if part.iter().all(u8::is_ascii_digit) {
            Ok(part
                .iter()
                .fold(0i128, |acc, d| acc * 10 + i128::from(d - b'0')))
        } else {
            Err(format!("the {what} is not {len} digits"))
        }
    };
    let sep = |at: usize, want: &[u8], what: &str| -> Result<(), String> {
        if want.contains(&b[at]) {
            Ok(())
        } else {
            Err(format!("expected {what} at character {}", at + 1))
        }
    };
    let year = num(0, 4, "year")?;
    sep(4, b"-", "`-`")?;
    let month = num(5, 2, "month")?;
    sep(7, b"-", "`-`")?;
    let day = num(8, 2, "day")?;
    sep(10, b" T", "a space or `T`")?;
    let hour = num(11, 2, "hour")?;
    sep(13, b":", "`:`")?;
    let minute = num(14, 2, "minute")?;
    sep(16, b":", "`:`")?;
    let second = num(17, 2, "second")?;
    let mut nanos = 0i128;
    if b.len() > 19 {
        sep(19, b".", "`.` and fractional seconds")?;
        let frac = &b[20..];
        if frac.len() > 9 || !frac.iter().all(u8::is_ascii_digit) {
            return Err("fractional seconds must be 0 to 9 digits".into());
        }
        for i in 0..9 {
            nanos = nanos * 10 + frac.get(i).map_or(0, |d| i128::from(d - b'0'));
        }
    }
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} is not 1 to 12"));
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day < 1 || day > days_in[(month - 1) as usize] {
        return Err(format!("day {day} is not in month {month} of {year}"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!(
            "{hour:02}:{minute:02}:{second:02} is not a time of day"
        ));
    }
    // Days from 1970-01-01 to the date (proleptic Gregorian), after
    // H. Hinnant's `days_from_civil`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(secs * 1_000_000_000 + nanos)
}

/// ShareGPT conversations as replayable turns.
#[derive(Clone, Debug)]
pub(crate) struct Conversations {
    /// Every conversation's turns, concatenated: (new prompt tokens, output
    /// tokens) per (human, gpt) exchange.
    pub turns: Shared<(u32, u32)>,
    /// Where each conversation's turns start in `turns`, plus the end: `n + 1`
    /// entries.
    pub starts: Shared<u32>,
}

impl Conversations {
    /// Conversations held.
    pub(crate) fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// The turns of conversation `c`.
    pub(crate) fn of(&self, c: u32) -> &[(u32, u32)] {
        let c = c as usize;
        &self.turns[self.starts[c] as usize..self.starts[c + 1] as usize]
    }
}

/// One ShareGPT message; other fields are ignored.
#[derive(Deserialize)]
struct Message {
    from: String,
    value: String,
}

/// A JSON object read into `T`, refusing any other JSON value. serde reads
/// a struct from a JSON array too, by position, so without this a line such
/// as `[1, 2, 3]` would silently become a request (timestamp 1, 2 tokens in,
/// 3 out).
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Object(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// One ShareGPT conversation; other fields (`model`, ...) are ignored.
#[derive(Deserialize)]
struct Conversation {
    #[serde(default)]
    id: Option<serde_json::Value>,
    conversations: Vec<ObjectOnly<Message>>,
}

/// Which side of the exchange a message is on.
fn side(from: &str) -> Option<bool> {
    match from {
        "human" | "user" | "system" => Some(true),
        "gpt" | "assistant" | "chatgpt" | "bing" | "bard" | "model" => Some(false),
        _ => None,
    }
}

/// A reader that counts the lines it has passed and refuses more than
/// [`MAX_CONVERSATION_BYTES`] since the last `mark`.
struct Counting<R> {
    inner: R,
    line: Rc<Cell<u64>>,
    since: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // serde_json reads a byte at a time through its own buffer-less
        // `IoRead`, so the count is where parsing stands.
        let n = self.inner.read(buf)?;
        let newlines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        self.line.set(self.line.get() + newlines);
        self.since.set(self.since.get() + n as u64);
        if self.since.get() > MAX_CONVERSATION_BYTES {
            return Err(std::io::Error::other(TooLong));
        }
        Ok(n)
    }
}

/// The error [`Counting`] raises.
#[derive(Debug)]
struct TooLong;

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "one conversation takes more than {MAX_CONVERSATION_BYTES} bytes of the file; \
             is this the right file?"
        )
    }
}

impl std::error::Error for TooLong {}

/// Loads a ShareGPT file: a JSON array of `{"id", "conversations": [{"from",
/// "value"}, ...]}`, read one conversation at a time.
///
/// A turn is one exchange: the prompt is the tokens of the human (or
/// system) messages since the previous response, the output the next
/// response's (`gpt`, also `assistant`, `chatgpt`, `bing`, `bard`, `model`).
/// Responses in a row add to the same output; responses before the first
/// human message count as prompt; a trailing prompt with no response is
/// dropped. A conversation with no exchange is skipped. Tokens are counted by
/// `tokenizer` on each message's text (no chat template).
pub(crate) fn load_sharegpt(
    path: &Path,
    zero: ZeroTokens,
    tokenizer: Tokenizer,
    setting: &str,
) -> Result<Conversations, Error> {
    require_text(path, "ShareGPT file")?;
    let file = std::fs::File::open(path).map_err(|e| {
        data_err(
            path,
            None,
            format!("cannot open the file given by `{setting}.path`: {e}"),
        )
    })?;
    let bpe = match tokenizer {
        Tokenizer::Cl100kBase => tiktoken_rs::cl100k_base(),
        Tokenizer::O200kBase => tiktoken_rs::o200k_base(),
    }
    .map_err(|e| data_err(path, None, format!("cannot build the tokenizer: {e}")))?;
    let line = Rc::new(Cell::new(1u64));
    let since = Rc::new(Cell::new(0u64));
    let reader = Counting {
        inner: BufReader::with_capacity(64 << 10, file),
        line: line.clone(),
        since: since.clone(),
    };
    let mut out = Collect {
        turns: Vec::new(),
        starts: vec![0],
        budget: RowBudget::for_machine(),
        zero,
        setting,
        count: &|text: &str| bpe.encode_ordinary(text).len(),
        since: since.clone(),
        failure: None,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = (&mut de)
        .deserialize_seq(SeqVisitor(&mut out))
        .and_then(|()| de.end());
    let at = line.get();
    if let Some(reason) = out.failure.take() {
        return Err(data_err(path, Some(at), reason));
    }
    if let Err(e) = result {
        let too_long = e.io_error_kind().is_some() && since.get() > MAX_CONVERSATION_BYTES;
        let reason = if too_long {
            TooLong.to_string()
        } else {
            format!(
                "not a ShareGPT file (a JSON array of {{\"id\", \"conversations\": \
                 [{{\"from\", \"value\"}}, ...]}}): {}",
                json_reason(&e)
            )
        };
        let line = if e.line() > 0 { e.line() as u64 } else { at };
        return Err(data_err(path, Some(line), reason));
    }
    if out.turns.is_empty() {
        return Err(data_err(
            path,
            None,
            "no conversation has a (human, gpt) exchange to replay",
        ));
    }
    Ok(Conversations {
        turns: Shared::new(out.turns),
        starts: Shared::new(out.starts),
    })
}

/// What the ShareGPT visitor fills in.
struct Collect<'a> {
    turns: Vec<(u32, u32)>,
    starts: Vec<u32>,
    budget: RowBudget,
    zero: ZeroTokens,
    setting: &'a str,
    count: &'a dyn Fn(&str) -> usize,
    since: Rc<Cell<u64>>,
    /// A reason to stop that is not a JSON error (named at the current line).
    failure: Option<String>,
}

impl Collect<'_> {
    /// Adds one conversation's exchanges.
    fn add(&mut self, c: &Conversation) -> Result<(), String> {
        let id = c.id.as_ref().map_or_else(String::new, |v| {
            format!(" (id {})", crate::input::quote(&v.to_string()))
        });
        let first = self.turns.len();
        let mut prompt = 0u64;
        let mut asked = false;
        for ObjectOnly(m) in &c.conversations {
            let tokens = (self.count)(&m.value) as u64;
            match side(&m.from) {
                Some(true) => {
                    prompt += tokens;
                    asked = true;
                }
                Some(false) if asked => {
                    let p = u32::try_from(prompt).unwrap_or(u32::MAX);
                    let o = u32::try_from(tokens).unwrap_or(u32::MAX);
                    let p = nonzero(p, "human turn", self.zero, self.setting)
                        .map_err(|e| format!("conversation{id}: {e}"))?;
                    let o = nonzero(o, "gpt turn", self.zero, self.setting)
                        .map_err(|e| format!("conversation{id}: {e}"))?;
                    if let Some(turn) = p.zip(o) {
                        self.budget.charge(8)?;
                        self.turns.push(turn);
                    }
                    prompt = 0;
                    asked = false;
                }
                // A response right after a response: the same output.
                Some(false) if self.turns.len() > first => {
                    let last = self.turns.last_mut().expect("a turn of this conversation");
                    last.1 = last
                        .1
                        .saturating_add(u32::try_from(tokens).unwrap_or(u32::MAX));
                }
                // A response before any question: context of the first prompt.
                Some(false) => prompt += tokens,
                None => {
                    return Err(format!(
                        "conversation{id}: unknown speaker `from` = `{}`; expected `human`, \
                         `gpt` or `system` (also `user`, `assistant`, `chatgpt`, `bing`, \
                         `bard`, `model`)",
                        crate::input::quote(&m.from)
                    ));
                }
            }
        }
        if self.turns.len() > first {
            let end = u32::try_from(self.turns.len())
                .map_err(|_| format!("more than {} turns in all", u32::MAX))?;
            self.budget.charge(4)?;
            self.starts.push(end);
        }
        Ok(())
    }
}

/// Visits the top-level array, one conversation at a time.
struct SeqVisitor<'c, 'a>(&'c mut Collect<'a>);

impl<'de> Visitor<'de> for SeqVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of conversations")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.0.since.set(0);
            let Some(ObjectOnly(c)) = seq.next_element::<ObjectOnly<Conversation>>()? else {
                return Ok(());
            };
            if let Err(reason) = self.0.add(&c) {
                self.0.failure = Some(reason);
                return Err(de::Error::custom("stopped"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_to_exact_nanoseconds() {
        assert_eq!(parse_datetime("1970-01-01 00:00:00"), Ok(0));
        assert_eq!(
            parse_datetime("1970-01-02 00:00:01.5"),
            Ok(86_401_500_000_000)
        );
        let a = parse_datetime("2023-11-16 18:15:46.6805900").unwrap();
        let b = parse_datetime("2023-11-16T18:15:47.680590000Z").unwrap();
        assert_eq!(b - a, 1_000_000_000);
        // 2023-11-16 is day 19677 since the epoch.
        assert_eq!(
            a,
            (19_677 * 86_400 + 18 * 3600 + 15 * 60 + 46) * 1_000_000_000 + 680_590_000
        );
        // Leap day, and across a year boundary.
        let feb29 = parse_datetime("2024-02-29 00:00:00").unwrap();
        let mar1 = parse_datetime("2024-03-01 00:00:00").unwrap();
        assert_eq!(mar1 - feb29, 86_400 * 1_000_000_000);
        for bad in [
            "2023-11-16",
            "2023-13-01 00:00:00",
            "2023-02-29 00:00:00",
            "2023-11-16 24:00:00",
            "2023-11-16 18:15:46.1234567890",
            "2023/11/16 18:15:46",
            "2023-11-16 18:15:46,5",
            "abcd-11-16 18:15:46",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
        // The extremes of four-digit years neither wrap nor saturate: their
        // difference is the exact 3.2e20 ns, which the loader then refuses
        // as past the horizon.
        let first = parse_datetime("0000-01-01 00:00:00").unwrap();
        let last = parse_datetime("9999-12-31 23:59:59").unwrap();
        assert_eq!(last - first, (3_652_425 * 86_400 - 1) * 1_000_000_000);
    }

    /// A JSON array where an object belongs is refused, not read into the
    /// object's fields by position.
    #[test]
    fn objects_are_not_read_from_arrays() {
        let line = serde_json::from_str::<ObjectOnly<MooncakeLine>>("[1, 2, 3]");
        let e = line
            .err()
            .expect("an array is not a Mooncake line")
            .to_string();
        assert!(e.contains("expected a JSON object"), "{e}");
        let ok = serde_json::from_str::<ObjectOnly<MooncakeLine>>(
            r#"{"timestamp": 1, "input_length": 2, "output_length": 3, "hash_ids": []}"#,
        );
        assert!(ok.is_ok());
        let message = serde_json::from_str::<ObjectOnly<Message>>(r#"["human", "hi"]"#);
        assert!(message.is_err());
    }
}
