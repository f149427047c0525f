//! The `[traffic]` table as written in a scenario file.
//!
//! These structs mirror the TOML exactly and reject anything they do not know
//! (`deny_unknown_fields` everywhere), so a typo such as `burstines` is a parse
//! error naming the key rather than a silently ignored setting. Value checks
//! (positive rates, `min <= max`, files that exist) happen later, in
//! [`TrafficPlan::from_spec`](super::TrafficPlan::from_spec), which knows the
//! key path of every field.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `[traffic]` table of a scenario file, as written.
///
/// With `arrival.kind = "trace"` the trace supplies every request's lengths
/// and shared prefixes, so `prompt`, `output`, `lengths`, `prefix` and
/// `session` must be absent. Otherwise exactly one of (`prompt` and `output`)
/// or `lengths` is required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// When requests arrive (open loop) or how many users send them (closed loop).
    pub arrival: ArrivalSpec,
    /// Prompt length distribution, tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<LengthSpec>,
    /// True output length distribution, tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<LengthSpec>,
    /// Per-request output cap distribution, tokens. When absent the cap is the
    /// largest output the traffic can produce (the output distribution's upper
    /// bound, or the largest output in a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<LengthSpec>,
    /// Paired (prompt, output) lengths sampled jointly from a file, instead of
    /// independent `prompt` and `output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lengths: Option<PairedSpec>,
    /// Shared system prompts (prefix caching's subject). Not allowed with a
    /// trace, whose `prefix_id` and `prefix_tokens` columns say it instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PrefixSpec>,
    /// Multi-turn conversations: every arrival (open loop) or every user's
    /// next start (closed loop) begins a session of several turns. Not
    /// allowed with a trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionSpec>,
    /// Parallel samples per request (vLLM's `n`, e.g. for best-of-n), >= 1.
    #[serde(default = "default_samples")]
    pub n: u32,
}

/// Shared system prompts: `traffic.prefix`.
///
/// There are `count` distinct system prompts of `tokens` tokens each. Every
/// request independently starts with one of them with probability
/// `fraction`, chosen uniformly; its prompt is then `tokens` plus the drawn
/// prompt length (the user's part).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixSpec {
    /// Distinct system prompts (>= 1).
    pub count: u32,
    /// Tokens of each system prompt (>= 1).
    pub tokens: u32,
    /// Probability that a request uses a system prompt, in [0, 1]. Default 1:
    /// every request does.
    #[serde(default = "default_fraction")]
    pub fraction: f64,
}

/// Multi-turn sessions: `traffic.session`.
///
/// A session is a conversation of `turns` requests. Turn k + 1 is sent
/// `think_s` after turn k ends, and its prompt carries the whole history
/// (turn k's prompt and output) plus a new message; the engine composes it.
/// In a closed loop the arrival's own `think_s` separates a user's sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Turns per session, a length-style distribution (every draw >= 1).
    /// Required, except with ShareGPT conversations (`traffic.lengths.format
    /// = "sharegpt"`), whose turns come from the file and where it must be
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<LengthSpec>,
    /// Think time between a turn's response and the next turn, seconds (the
    /// mean when `think = "exponential"`). Default 0: the next turn is sent
    /// at once.
    #[serde(default)]
    pub think_s: f64,
    /// Think time distribution.
    #[serde(default)]
    pub think: ThinkKind,
}

/// The arrival process: `traffic.arrival`.
///
/// The parametric processes start at time 0 and their first request arrives
/// one gap later (at `1 / rate` for `constant`), as in a renewal process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ArrivalSpec {
    /// Poisson arrivals: exponential gaps with mean `1 / rate`.
    Poisson {
        /// Mean arrival rate, requests per second.
        rate: f64,
    },
    /// Gamma-distributed gaps, vLLM's `--burstiness`: shape `k = burstiness`,
    /// scale `1 / (rate * k)`. `k = 1` is Poisson; `k < 1` is burstier
    /// (squared coefficient of variation of the gaps is `1 / k`).
    Gamma {
        /// Mean arrival rate, requests per second.
        rate: f64,
        /// Gamma shape `k` (> 0).
        burstiness: f64,
    },
    /// Evenly spaced arrivals, `1 / rate` apart.
    Constant {
        /// Arrival rate, requests per second.
        rate: f64,
    },
    /// A non-homogeneous Poisson process whose rate moves linearly from `from`
    /// to `to` over `over_s` seconds and stays at `to` afterwards.
    Ramp {
        /// Rate at time 0, requests per second (>= 0).
        from: f64,
        /// Rate at `over_s` and after, requests per second (> 0).
        to: f64,
        /// Length of the ramp, seconds (> 0).
        over_s: f64,
    },
    /// Closed loop: `users` users each send a request, wait for it to finish,
    /// think, and send the next.
    Closed {
        /// Number of concurrent users (>= 1).
        users: u32,
        /// Think time between a response and the next request, seconds (the
        /// mean when `think = "exponential"`). Default 0: back-to-back requests.
        #[serde(default)]
        think_s: f64,
        /// Think time distribution.
        #[serde(default)]
        think: ThinkKind,
    },
    /// Replay arrival times and lengths from a trace file, in file order and
    /// at the file's own times (not shifted to start at 0; with `start_s`,
    /// from the window's start), in one of the layouts of `format`
    /// (`docs/traces.md`).
    ///
    /// For the default `kvsim` layout (a CSV file):
    /// Optional columns `prefix_id` (a whole number naming shared content)
    /// and `prefix_tokens` (1 to the row's prompt tokens) mark a row whose
    /// prompt starts with that many tokens of shared content; they go
    /// together, and a row with both cells empty has no shared prefix. Rows
    /// with the same id agree on their leading tokens, so two rows with
    /// different `prefix_tokens` share the shorter length. Other extra
    /// columns (e.g. `session_id`) are allowed and ignored.
    Trace {
        /// The trace file, relative to the scenario file's directory.
        path: PathBuf,
        /// Column of arrival times, seconds since the start, nondecreasing.
        #[serde(default = "default_arrival_column")]
        arrival_column: String,
        /// Column of prompt token counts.
        #[serde(default = "default_prompt_column")]
        prompt_column: String,
        /// Column of output token counts.
        #[serde(default = "default_output_column")]
        output_column: String,
        /// What to do with rows whose prompt or output is 0 tokens.
        #[serde(default)]
        zero_tokens: ZeroTokens,
        /// The file's layout (`docs/traces.md`): `kvsim` (the CSV above,
        /// the default), `azure`, `burstgpt` or `mooncake`. The column keys
        /// belong to `kvsim` only.
        #[serde(default)]
        format: TraceFormat,
        /// Start of the replayed window on the file's time axis, seconds
        /// (default 0). Rows before it are dropped and the replay's clock
        /// starts there: a row at `start_s + x` arrives at `x / speedup`.
        #[serde(default)]
        start_s: f64,
        /// Length of the replayed window on the file's time axis, seconds
        /// (default: to the end of the file). Rows at or past
        /// `start_s + duration_s` are dropped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<f64>,
        /// Rate scale: the file's times since `start_s` are divided by it,
        /// so 2 replays the window twice as fast (twice the load). Default 1.
        #[serde(default = "default_one")]
        speedup: f64,
        /// Probability of keeping each request, independently, from the
        /// seed's own stream (`rng::stream::TRACE_SAMPLE`). Default 1: all.
        #[serde(default = "default_one")]
        sample: f64,
        /// `mooncake` only: tokens named by each hash id (default 512, as in
        /// the Mooncake traces). `cache.block_size` must divide it when
        /// prefix caching is on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace_block_tokens: Option<u32>,
        /// `burstgpt` only: keep the rows whose `Model` is this (e.g.
        /// `ChatGPT` or `GPT-4`); default all rows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
    },
}

/// The layout of a trace file (`traffic.arrival.format`,
/// `traffic.lengths.format`); `docs/traces.md` maps every column.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceFormat {
    /// kvsim's own CSV: arrival seconds, prompt and output tokens, optional
    /// `prefix_id` and `prefix_tokens`; column names are keys.
    #[default]
    Kvsim,
    /// Azure LLM inference traces 2023 and 2024 (CSV: `TIMESTAMP`,
    /// `ContextTokens`, `GeneratedTokens`).
    Azure,
    /// BurstGPT (CSV: `Timestamp`, `Model`, `Request tokens`, `Response
    /// tokens`, `Total tokens`, `Log Type`).
    Burstgpt,
    /// Mooncake / Kimi JSONL (`timestamp` ms, `input_length`,
    /// `output_length`, `hash_ids`): the hash ids drive prefix caching.
    Mooncake,
    /// ShareGPT JSON conversations, replayed as multi-turn sessions (no
    /// timestamps: a `traffic.lengths` format only).
    Sharegpt,
}

impl TraceFormat {
    /// The name a scenario file uses.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Kvsim => "kvsim",
            TraceFormat::Azure => "azure",
            TraceFormat::Burstgpt => "burstgpt",
            TraceFormat::Mooncake => "mooncake",
            TraceFormat::Sharegpt => "sharegpt",
        }
    }
}

/// The offline tokenizer that counts a ShareGPT file's tokens
/// (`traffic.lengths.tokenizer`). Both are OpenAI's BPE vocabularies, shipped
/// inside the `tiktoken-rs` crate: counts are approximate for models with
/// another tokenizer.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokenizer {
    /// GPT-3.5 / GPT-4's `cl100k_base`.
    #[default]
    Cl100kBase,
    /// GPT-4o's `o200k_base`.
    O200kBase,
}

/// Distribution of closed-loop think times.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThinkKind {
    /// Every think time is exactly `think_s`.
    #[default]
    Fixed,
    /// Exponential think times with mean `think_s`.
    Exponential,
}

/// What to do with a data-file row whose prompt or output length is 0.
///
/// A request with no prompt or no output token does not exist in a real server
/// (even an immediately stopped request emits one token), so such rows are an
/// error unless the user says how to read them. The Splitwise conversation
/// trace has none; other exports (e.g. of cancelled requests) may.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZeroTokens {
    /// Reject the file, naming the first such line.
    #[default]
    Error,
    /// Drop such rows (for a trace: the request never arrives).
    Skip,
    /// Count a 0 as 1 token.
    One,
}

/// A token length distribution: `traffic.prompt`, `traffic.output`,
/// `traffic.max_tokens`, or a mixture component; also the distribution of
/// `traffic.session.turns` (whose "tokens" are then turns).
///
/// Every draw is clamped to `[min, max]`, then rounded to the nearest integer;
/// `min >= 1`, so every length is at least one token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LengthSpec {
    /// Always `value` tokens.
    Fixed {
        /// Tokens (>= 1).
        value: u32,
    },
    /// Uniform over the integers `min..=max`.
    Uniform {
        /// Smallest length, tokens (>= 1).
        min: u32,
        /// Largest length, tokens (>= `min`).
        max: u32,
    },
    /// Normal, clamped to `[min, max]`.
    Normal {
        /// Mean before clamping, tokens (> 0).
        mean: f64,
        /// Standard deviation before clamping, tokens (>= 0).
        std: f64,
        /// Smallest length, tokens (>= 1).
        min: u32,
        /// Largest length, tokens (>= `min`).
        max: u32,
    },
    /// Log-normal, clamped to `[min, max]`. `mean` is the arithmetic mean in
    /// tokens (what dataset statistics publish), `sigma` the standard
    /// deviation of the log, so the log-mean is `ln(mean) - sigma^2 / 2`.
    Lognormal {
        /// Arithmetic mean before clamping, tokens (> 0).
        mean: f64,
        /// Standard deviation of `ln(length)` (>= 0).
        sigma: f64,
        /// Smallest length, tokens (>= 1).
        min: u32,
        /// Largest length, tokens (>= `min`).
        max: u32,
    },
    /// A weighted mixture, e.g. 98 % chat turns and 2 % long documents.
    Mixture {
        /// The components; weights are positive and need not sum to 1.
        components: Vec<MixtureComponent>,
    },
    /// Uniform draws from the values of one column of a CSV file.
    Empirical {
        /// The CSV file, relative to the scenario file's directory.
        path: PathBuf,
        /// The column holding token counts.
        column: String,
        /// Optional lower clamp, tokens (>= 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<u32>,
        /// Optional upper clamp, tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u32>,
        /// What to do with values of 0.
        #[serde(default)]
        zero_tokens: ZeroTokens,
    },
}

/// One component of a [`LengthSpec::Mixture`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureComponent {
    /// Relative weight (> 0); weights are normalized by their sum.
    pub weight: f64,
    /// The component's distribution.
    pub dist: LengthSpec,
}

/// Paired lengths: `traffic.lengths`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum PairedSpec {
    /// Each request takes the (prompt, output) of a uniformly random row of a
    /// CSV file, so the correlation between the two survives.
    ///
    /// With `format = "sharegpt"` the file holds conversations instead: each
    /// session (every arrival) replays the next conversation of the file, in
    /// file order and starting over at its end, one request per
    /// (human, gpt) exchange; `traffic.session` then gives only the think
    /// time (its `turns` must be absent).
    Trace {
        /// The file, relative to the scenario file's directory.
        path: PathBuf,
        /// Column of prompt token counts.
        #[serde(default = "default_prompt_column")]
        prompt_column: String,
        /// Column of output token counts.
        #[serde(default = "default_output_column")]
        output_column: String,
        /// What to do with rows whose prompt or output is 0 tokens.
        #[serde(default)]
        zero_tokens: ZeroTokens,
        /// The file's layout: `kvsim` (the CSV above, the default), `azure`,
        /// `burstgpt`, `mooncake` (their rows' lengths; times and hash ids
        /// are ignored) or `sharegpt` (conversations).
        #[serde(default)]
        format: TraceFormat,
        /// `sharegpt` only: probability of replaying each conversation when
        /// its turn comes, from the seed's own stream. Default 1.
        #[serde(default = "default_one")]
        sample: f64,
        /// `sharegpt` only: the vocabulary that counts tokens.
        #[serde(default)]
        tokenizer: Tokenizer,
    },
}

fn default_one() -> f64 {
    1.0
}

fn default_samples() -> u32 {
    1
}

fn default_fraction() -> f64 {
    1.0
}

fn default_arrival_column() -> String {
    "arrival_s".to_string()
}

fn default_prompt_column() -> String {
    "prompt_tokens".to_string()
}

fn default_output_column() -> String {
    "output_tokens".to_string()
}
