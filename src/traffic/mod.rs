//! Traffic: when requests arrive and how long their prompts and outputs are.
//!
//! A scenario's `[traffic]` table deserializes into a [`TrafficSpec`];
//! [`TrafficPlan::from_spec`] validates it (naming the dotted key of any bad
//! value) and loads its files once; [`TrafficPlan::instantiate`] then builds a
//! cheap, seeded [`Traffic`] generator per run.
//!
//! Each random component draws from its own [`stream_rng`] stream (arrivals,
//! prompt, output, max_tokens, think, paired, prefix, session turns, session
//! think, samples), so changing, say, the output distribution never shifts
//! the arrival times of the same seed, and turning on shared prefixes,
//! sessions or parallel sampling leaves every other draw as it was.
//!
//! Open loop: [`Traffic::next_arrival`] yields absolute, nondecreasing arrival
//! times with each request's [`Lengths`]. Closed loop: the engine keeps
//! `users` requests in flight and calls [`Traffic::next_lengths`] and
//! [`Traffic::think_time`] itself.
//!
//! Three features shape where KV memory goes, and traffic only draws their
//! numbers; the engine composes the requests:
//!
//! - Shared system prompts (`prefix`): a request's [`Lengths::prefix`] names
//!   the system prompt its prompt starts with, for prefix caching.
//! - Multi-turn sessions (`session`, see [`TrafficPlan::session`]): every
//!   open-loop arrival, or every closed-loop user's next start, begins a
//!   conversation of [`Traffic::session_turns`] turns. The first turn's
//!   lengths come from `next_arrival` (open loop) or `next_lengths` (closed
//!   loop); each later turn's new message and output from
//!   [`Traffic::next_message`], sent [`Traffic::session_think`] after the
//!   previous turn ends, with the history prepended by the engine. In a
//!   closed loop, [`Traffic::think_time`] separates a user's conversations.
//!   A cluster draws a session's later turns and the think times between
//!   them from the session's own stream instead
//!   ([`Traffic::next_message_from`], [`Traffic::session_think_from`]): the
//!   order in which turns end there depends on the router.
//! - Parallel sampling (`n`, see [`TrafficPlan::samples`]): a request's
//!   extra samples draw their true output lengths from
//!   [`Traffic::sample_output`].

mod arrival;
mod data;
mod formats;
mod lengths;
mod spec;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, Gamma};

use crate::cache::{BlockChains, Content};
use crate::error::{Error, SpecError};
use crate::ranges::{self, Range};
use crate::rng::{stream, stream_rng};
use crate::units::{NANOS_PER_SEC, SimDuration, SimTime};

pub use formats::MAX_CONVERSATION_BYTES;
pub use spec::{
    ArrivalSpec, LengthSpec, MixtureComponent, PairedSpec, PrefixSpec, SessionSpec, ThinkKind,
    Tokenizer, TraceFormat, TrafficSpec, ZeroTokens,
};

use arrival::{Clock, Next, Process, Ramp};
use data::{Columns, Shared, TraceRow, Window};
use formats::{Conversations, ReadOpts};
use lengths::{Sampler, Unit, mean_min, merge_pmf, pmf_mean};

/// Token lengths of one request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Lengths {
    /// Prompt tokens (>= 1), including any shared prefix.
    pub prompt: u32,
    /// True output tokens the model will generate (>= 1, <= `max_tokens`).
    pub output: u32,
    /// The request's output cap, what a contiguous `max-tokens` reservation uses.
    pub max_tokens: u32,
    /// The shared content the prompt starts with (its first `tokens` tokens,
    /// `tokens <= prompt`), or `None` if the whole prompt is the request's own.
    pub prefix: Option<SharedPrefix>,
    /// The ShareGPT conversation this request starts (an index of the
    /// file's replayable conversations), or [`Lengths::NO_CONVERSATION`].
    /// The engine then replays its turns ([`Traffic::conversation_turn`]).
    pub conversation: u32,
}

impl Lengths {
    /// [`Lengths::conversation`] of a request that starts no conversation.
    pub const NO_CONVERSATION: u32 = u32::MAX;
}

/// Shared content at the start of a prompt: a system prompt, a trace's
/// `prefix_id`/`prefix_tokens`, or a Mooncake trace's hash ids.
///
/// Requests with the same `id` agree on their leading tokens; with a
/// `traffic.prefix` spec every prefix of one id has the same `tokens`, while
/// trace rows may differ and then share the shorter length. A `chain` prefix
/// is different: `id` is where the request's hash-id chain starts in the
/// trace's [`BlockChains`], and requests share the blocks their chains share.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SharedPrefix {
    /// Which shared content (system prompt `0..count` for a spec; the trace's
    /// `prefix_id`; for a chain, its offset in [`TrafficPlan::block_chains`]).
    pub id: u32,
    /// Tokens of the shared content in this prompt (>= 1).
    pub tokens: u32,
    /// Whether `id` names a hash-id chain rather than one whole content.
    pub chain: bool,
}

impl SharedPrefix {
    /// What the cache knows of it, for prefix caching.
    pub fn content(self) -> Content {
        if self.chain {
            Content::chain(self.id, self.tokens)
        } else {
            Content {
                key: u64::from(self.id),
                reusable: self.tokens,
                lineage: self.tokens,
            }
        }
    }
}

/// Open loop (arrivals independent of service) or closed loop (N users).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LoopKind {
    /// Arrivals come from a process or trace, whatever the server does.
    Open,
    /// `users` users each send a request, wait for it to end, think, repeat.
    Closed {
        /// Concurrent users.
        users: u32,
    },
}

/// The most closed-loop users a scenario may have.
pub const MAX_USERS: u32 = 1 << 24;

/// Where validation errors point: the scenario file and its directory.
pub(crate) struct Ctx<'a> {
    scenario: &'a Path,
    base_dir: &'a Path,
}

impl Ctx<'_> {
    /// A scenario error at the dotted `key`.
    pub(crate) fn err(&self, key: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Scenario {
            path: self.scenario.to_path_buf(),
            source: SpecError::new(key, reason),
        }
    }

    /// `v` if it is a positive finite number, else an error at `key`.
    pub(crate) fn positive(&self, key: &str, v: f64) -> Result<f64, Error> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.err(
                key,
                format!(
                    "must be a positive finite number, got {}",
                    crate::ranges::number(v)
                ),
            ))
        }
    }

    /// `v` if it is a finite number >= 0, else an error at `key`.
    pub(crate) fn non_negative(&self, key: &str, v: f64) -> Result<f64, Error> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(self.err(
                key,
                format!(
                    "must be a finite number >= 0, got {}",
                    crate::ranges::number(v)
                ),
            ))
        }
    }

    /// `v` if it lies in its physical `range`, else an error at `key`.
    pub(crate) fn in_range(&self, key: &str, v: f64, range: &Range) -> Result<f64, Error> {
        range.check(key, v).map_err(|source| Error::Scenario {
            path: self.scenario.to_path_buf(),
            source,
        })
    }

    /// `path` relative to the scenario file's directory (absolute paths stay).
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }
}

/// `secs` as an instant, saturating instead of asserting: the input boundary
/// has already rejected NaN and negatives, and huge values mean "never".
pub(crate) fn secs_to_time(secs: f64) -> SimTime {
    if secs.is_nan() || secs <= 0.0 {
        SimTime::ZERO
    } else if secs >= u64::MAX as f64 / NANOS_PER_SEC as f64 {
        SimTime::MAX
    } else {
        SimTime::from_secs_f64(secs)
    }
}

/// `secs` as a span, saturating like [`secs_to_time`].
fn secs_to_duration(secs: f64) -> SimDuration {
    SimDuration::from_nanos(secs_to_time(secs).as_nanos())
}

/// How arrivals happen.
#[derive(Clone, Debug)]
enum ArrivalPlan {
    Open(Process),
    Closed { users: u32, think: Think },
}

/// Think time (closed loop, or between session turns).
#[derive(Copy, Clone, Debug, PartialEq)]
enum Think {
    Fixed(SimDuration),
    Exponential { mean_s: f64 },
}

impl Think {
    /// Validated from a `think_s` at `key` and its distribution kind.
    fn build(think_s: f64, kind: ThinkKind, key: &str, ctx: &Ctx<'_>) -> Result<Think, Error> {
        let think_s = ctx.in_range(key, think_s, &ranges::THINK_S)?;
        Ok(match kind {
            ThinkKind::Fixed => Think::Fixed(secs_to_duration(think_s)),
            ThinkKind::Exponential => Think::Exponential { mean_s: think_s },
        })
    }

    /// One think time. A fixed one draws nothing from `rng`.
    fn draw(&self, rng: &mut ChaCha8Rng) -> SimDuration {
        match *self {
            Think::Fixed(d) => d,
            Think::Exponential { mean_s } => {
                let e: f64 = Exp1.sample(rng);
                secs_to_duration(e * mean_s)
            }
        }
    }
}

/// Validated `traffic.prefix`.
#[derive(Copy, Clone, Debug, PartialEq)]
struct PrefixPlan {
    /// Distinct system prompts (>= 1).
    count: u32,
    /// Tokens of each (>= 1).
    tokens: u32,
    /// Probability that a request uses one, in [0, 1].
    fraction: f64,
}

impl PrefixPlan {
    /// Whether a request uses a system prompt, and which.
    ///
    /// One uniform draw `u` decides both: used iff `u < fraction`, and then
    /// `u / fraction` is uniform on [0, 1), so `floor(count * u / fraction)`
    /// is uniform over the ids. A fixed one draw per request keeps the stream
    /// aligned with request order, and a larger `fraction` at the same seed
    /// gives a superset of the requests that use a prefix (a cleaner sweep).
    fn draw(&self, rng: &mut ChaCha8Rng) -> Option<SharedPrefix> {
        let u: f64 = rng.random();
        if u < self.fraction {
            // `u / fraction` can round up to 1.0; clamp onto the last id.
            let id = (u / self.fraction * f64::from(self.count)) as u32;
            Some(SharedPrefix {
                id: id.min(self.count - 1),
                tokens: self.tokens,
                chain: false,
            })
        } else {
            None
        }
    }
}

/// Validated `traffic.session`.
#[derive(Clone, Debug)]
struct SessionPlan {
    /// Turns per session (every draw >= 1); `None` for ShareGPT
    /// conversations, whose turns come from the file.
    turns: Option<Sampler>,
    /// Think time between turns.
    think: Think,
}

/// Where a request's (prompt, output) come from.
#[derive(Clone, Debug)]
enum LengthPlan {
    /// Independent prompt and output distributions.
    Independent { prompt: Sampler, output: Sampler },
    /// Uniformly random rows of a file.
    Paired(Shared<(u32, u32)>),
    /// The arrival trace's own rows (open loop); `next_lengths` draws random
    /// rows of it.
    Trace(Shared<TraceRow>),
    /// ShareGPT conversations: each session replays the next one.
    Conversations(Conversations),
}

/// Validated traffic, ready to be instantiated for a seed.
///
/// Cheap to clone and `Send + Sync`: loaded files are shared behind `Arc`s.
#[derive(Clone, Debug)]
pub struct TrafficPlan {
    arrival: ArrivalPlan,
    lengths: LengthPlan,
    /// A drawn per-request cap, or `None` for the fixed `default_cap`.
    max_tokens: Option<Sampler>,
    /// The largest output the lengths can produce: the cap when `max_tokens`
    /// is not given.
    default_cap: u32,
    /// Shared system prompts, `None` without a `prefix` spec.
    prefix: Option<PrefixPlan>,
    /// Multi-turn sessions, `None` without a `session` spec.
    session: Option<SessionPlan>,
    /// Parallel samples per request (>= 1).
    samples: u32,
    /// Probability of keeping each trace row or conversation (1: all).
    sample: f64,
    /// A Mooncake trace's block identities.
    chains: Option<BlockChains>,
}

impl TrafficPlan {
    /// Validates `spec`, loading any trace or empirical file relative to `base_dir`.
    ///
    /// Bad values are [`Error::Scenario`] against `scenario` with the full
    /// dotted key (e.g. `traffic.arrival.rate`); bad data files are
    /// [`Error::DataFile`] with the 1-based line (the header is line 1).
    pub fn from_spec(spec: &TrafficSpec, base_dir: &Path, scenario: &Path) -> Result<Self, Error> {
        let ctx = Ctx { scenario, base_dir };
        // Which keys are present is checked before any file is read, so a
        // conflict is reported as such rather than as a missing file.
        let source = length_source(spec, &ctx)?;
        let prefix = spec
            .prefix
            .as_ref()
            .map(|p| build_prefix(p, &ctx))
            .transpose()?;
        let conversations = matches!(
            spec.lengths,
            Some(PairedSpec::Trace {
                format: TraceFormat::Sharegpt,
                ..
            })
        );
        let session = build_session(spec.session.as_ref(), conversations, &ctx)?;
        if spec.n == 0 {
            return Err(ctx.err(
                "traffic.n",
                "must be at least 1 (the number of outputs each request asks for), got 0",
            ));
        }
        let (arrival, chains) = build_arrival(&spec.arrival, &ctx)?;
        let mut sample = match &spec.arrival {
            ArrivalSpec::Trace { sample, .. } => {
                ctx.in_range("traffic.arrival.sample", *sample, &ranges::SAMPLE)?
            }
            _ => 1.0,
        };
        let lengths = match (source, &arrival) {
            (Source::Independent(prompt, output), _) => LengthPlan::Independent {
                prompt: Sampler::build(prompt, "traffic.prompt", &ctx)?,
                output: Sampler::build(output, "traffic.output", &ctx)?,
            },
            (Source::Paired(paired), _) => {
                let (plan, kept) = build_paired(paired, &ctx)?;
                sample = kept;
                plan
            }
            (Source::Trace, ArrivalPlan::Open(Process::Trace(rows))) => {
                LengthPlan::Trace(rows.clone())
            }
            (Source::Trace, _) => {
                // `length_source` says Trace only for a trace arrival.
                return Err(ctx.err("traffic.arrival", "internal error: expected a trace"));
            }
        };
        let max_tokens = spec
            .max_tokens
            .as_ref()
            .map(|m| Sampler::build(m, "traffic.max_tokens", &ctx))
            .transpose()?;
        let default_cap = match &lengths {
            LengthPlan::Independent { output, .. } => output.upper_bound(),
            LengthPlan::Paired(rows) => rows.iter().map(|r| r.1).max().unwrap_or(1),
            LengthPlan::Trace(rows) => rows.iter().map(|r| r.output).max().unwrap_or(1),
            LengthPlan::Conversations(c) => c.turns.iter().map(|t| t.1).max().unwrap_or(1),
        };
        let plan = TrafficPlan {
            arrival,
            lengths,
            max_tokens,
            default_cap,
            prefix,
            session,
            samples: spec.n,
            sample,
            chains,
        };
        if let Some(p) = &plan.prefix {
            let longest = plan.user_prompt_bound();
            if longest.checked_add(p.tokens).is_none() {
                return Err(ctx.err(
                    "traffic.prefix.tokens",
                    format!(
                        "{} tokens plus the longest prompt ({longest}) exceed {} tokens",
                        p.tokens,
                        u32::MAX
                    ),
                ));
            }
        }
        Ok(plan)
    }

    /// A generator for one run: every component seeded from its own stream of
    /// `seed`, so equal seeds give equal sequences.
    pub fn instantiate(&self, seed: u64) -> Traffic {
        let (process, think) = match &self.arrival {
            ArrivalPlan::Open(p) => (Some(p.clone()), None),
            ArrivalPlan::Closed { think, .. } => (None, Some(*think)),
        };
        Traffic {
            process,
            clock: Clock::new(),
            think,
            lengths: self.lengths.clone(),
            max_tokens: self.max_tokens.clone(),
            default_cap: self.default_cap,
            prefix: self.prefix,
            session: self.session.clone(),
            arrival_rng: stream_rng(seed, stream::ARRIVALS),
            prompt_rng: stream_rng(seed, stream::PROMPT),
            output_rng: stream_rng(seed, stream::OUTPUT),
            max_tokens_rng: stream_rng(seed, stream::MAX_TOKENS),
            think_rng: stream_rng(seed, stream::THINK),
            paired_rng: stream_rng(seed, stream::PAIRED),
            prefix_rng: stream_rng(seed, stream::PREFIX),
            turns_rng: stream_rng(seed, stream::SESSION_TURNS),
            session_think_rng: stream_rng(seed, stream::SESSION_THINK),
            samples_rng: stream_rng(seed, stream::SAMPLES),
            sample: self.sample,
            sample_rng: stream_rng(seed, stream::TRACE_SAMPLE),
            next_conversation: 0,
        }
    }

    /// The block identities of a Mooncake trace's hash ids, which the engine
    /// hands to its cache ([`crate::cache::PagedCache::attach_chains`]);
    /// `None` for every other traffic.
    pub fn block_chains(&self) -> Option<&BlockChains> {
        self.chains.as_ref()
    }

    /// Whether requests come in multi-turn sessions (a `traffic.session`
    /// spec): the engine then starts a conversation of
    /// [`Traffic::session_turns`] turns at every arrival (open loop) or every
    /// closed-loop user's start, and sends turn k + 1
    /// [`Traffic::session_think`] after turn k ends, its prompt being turn
    /// k's prompt and output plus [`Traffic::next_message`]'s new message.
    pub fn session(&self) -> bool {
        self.session.is_some()
    }

    /// Parallel samples per request (`traffic.n`, vLLM's `n`; >= 1, default
    /// 1). The first sample's output is the request's [`Lengths::output`];
    /// each of the other `samples() - 1` draws its own from
    /// [`Traffic::sample_output`].
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// Open or closed loop.
    pub fn loop_kind(&self) -> LoopKind {
        match self.arrival {
            ArrivalPlan::Open(_) => LoopKind::Open,
            ArrivalPlan::Closed { users, .. } => LoopKind::Closed { users },
        }
    }

    /// The number of requests a trace replay holds (after any skipped rows
    /// and the window; before `sample`, which keeps each with its
    /// probability); `None` for an arrival process, which never runs out.
    pub fn trace_len(&self) -> Option<usize> {
        match &self.arrival {
            ArrivalPlan::Open(Process::Trace(rows)) => Some(rows.len()),
            _ => None,
        }
    }

    /// Whether arrivals replay a trace (which may stand in for `requests`).
    pub fn is_trace_replay(&self) -> bool {
        self.trace_len().is_some()
    }

    /// Load-time warnings about lengths: each normal or log-normal
    /// distribution whose clamping to `[min, max]` moves its mean by more
    /// than 10 % (a log-normal with `sigma = 50` makes every length its
    /// `min`), naming the key, the requested mean and the effective one.
    pub fn clamping_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let LengthPlan::Independent { prompt, output } = &self.lengths {
            prompt.mean_shift_warnings("traffic.prompt", &mut out);
            output.mean_shift_warnings("traffic.output", &mut out);
        }
        if let Some(m) = &self.max_tokens {
            m.mean_shift_warnings("traffic.max_tokens", &mut out);
        }
        if let Some(turns) = self.session.as_ref().and_then(|s| s.turns.as_ref()) {
            turns.mean_shift_warnings("traffic.session.turns", &mut out);
        }
        out
    }

    /// The largest prompt, true output and `max_tokens` any request can have,
    /// e.g. to check requests against a model's context length.
    ///
    /// The prompt includes the system prompt when a request may use one
    /// (`prefix: None` here: this is a bound, not a request). With sessions
    /// this bounds a session's first turn and each later turn's new message;
    /// later turns' prompts also carry the history, which only the engine
    /// knows.
    pub fn max_lengths(&self) -> Lengths {
        let output = match &self.lengths {
            LengthPlan::Independent { output, .. } => output.upper_bound(),
            LengthPlan::Paired(rows) => rows.iter().map(|r| r.1).max().unwrap_or(1),
            LengthPlan::Trace(rows) => rows.iter().map(|r| r.output).max().unwrap_or(1),
            LengthPlan::Conversations(c) => c.turns.iter().map(|t| t.1).max().unwrap_or(1),
        };
        let prefix = self
            .prefix
            .filter(|p| p.fraction > 0.0)
            .map_or(0, |p| p.tokens);
        let max_tokens = self
            .max_tokens
            .as_ref()
            .map_or(self.default_cap, Sampler::upper_bound);
        Lengths {
            // Validated not to overflow in `from_spec`.
            prompt: self.user_prompt_bound().saturating_add(prefix),
            output: output.min(max_tokens),
            max_tokens,
            prefix: None,
            conversation: Lengths::NO_CONVERSATION,
        }
    }

    /// The largest prompt the lengths themselves produce, before any system
    /// prompt is added (a trace's prompts already hold their prefixes).
    fn user_prompt_bound(&self) -> u32 {
        match &self.lengths {
            LengthPlan::Independent { prompt, .. } => prompt.upper_bound(),
            LengthPlan::Paired(rows) => rows.iter().map(|r| r.0).max().unwrap_or(1),
            LengthPlan::Trace(rows) => rows.iter().map(|r| r.prompt).max().unwrap_or(1),
            LengthPlan::Conversations(c) => c.turns.iter().map(|t| t.0).max().unwrap_or(1),
        }
    }

    /// The expected prompt tokens and true output tokens (after clamping and
    /// the `max_tokens` cap) of one request, for analytic estimates such as
    /// the batch ceiling.
    ///
    /// Exact (to ~1e-7) for fixed, uniform, normal and log-normal lengths
    /// whose `[min, max]` spans at most 2^20 integers (the rounded, clamped
    /// probabilities come from the normal CDF), for mixtures of those, and for
    /// files (empirical columns, paired rows, traces: their exact means; a
    /// trace's means are over its rows, not its arrival order). Wider
    /// parametric ranges are estimated from 200,000 draws of a fixed seed,
    /// so the result is deterministic. A drawn `max_tokens` is independent of
    /// the output, so the mean output is `E[min(output, max_tokens)]`.
    ///
    /// The mean prompt includes shared system prompts (`fraction * tokens`
    /// on average; a trace's prompts hold their prefixes already). It does
    /// not include what sessions add: a later turn's prompt carries the
    /// conversation's history, which grows with every turn and which the
    /// engine composes, so here a session turn counts its new message only.
    /// Parallel samples are not counted either: the output is one sample's.
    ///
    /// Cost: up to tens of milliseconds for wide parametric ranges; call once
    /// per plan, not per request.
    pub fn mean_lengths(&self) -> (f64, f64) {
        let (prompt, output) = match &self.lengths {
            LengthPlan::Independent { prompt, output } => (prompt.pmf(), output.pmf()),
            LengthPlan::Paired(rows) => (
                equal_weights(rows.iter().map(|r| r.0)),
                equal_weights(rows.iter().map(|r| r.1)),
            ),
            LengthPlan::Trace(rows) => (
                equal_weights(rows.iter().map(|r| r.prompt)),
                equal_weights(rows.iter().map(|r| r.output)),
            ),
            LengthPlan::Conversations(c) => (
                equal_weights(c.turns.iter().map(|t| t.0)),
                equal_weights(c.turns.iter().map(|t| t.1)),
            ),
        };
        let cap = match &self.max_tokens {
            Some(m) => m.pmf(),
            None => vec![(self.default_cap, 1.0)],
        };
        let prefix = self
            .prefix
            .map_or(0.0, |p| p.fraction * f64::from(p.tokens));
        (pmf_mean(&prompt) + prefix, mean_min(&output, &cap))
    }
}

/// The pmf of equally likely observations.
fn equal_weights(values: impl ExactSizeIterator<Item = u32>) -> Vec<(u32, f64)> {
    let p = 1.0 / values.len().max(1) as f64;
    merge_pmf(values.map(|v| (v, p)).collect())
}

fn build_arrival(
    spec: &ArrivalSpec,
    ctx: &Ctx<'_>,
) -> Result<(ArrivalPlan, Option<BlockChains>), Error> {
    const KEY: &str = "traffic.arrival";
    if let ArrivalSpec::Trace { .. } = spec {
        return build_trace(spec, ctx);
    }
    Ok((
        match spec {
            ArrivalSpec::Poisson { rate } => {
                let rate = ctx.in_range("traffic.arrival.rate", *rate, &ranges::RATE)?;
                ArrivalPlan::Open(Process::Poisson {
                    mean_gap: 1.0 / rate,
                })
            }
            ArrivalSpec::Gamma { rate, burstiness } => {
                let rate = ctx.in_range("traffic.arrival.rate", *rate, &ranges::RATE)?;
                let k = ctx.in_range(
                    "traffic.arrival.burstiness",
                    *burstiness,
                    &ranges::BURSTINESS,
                )?;
                // vLLM: shape k, scale 1 / (rate k), so the mean gap is 1 / rate.
                let scale = 1.0 / (rate * k);
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(ctx.err(
                        KEY,
                        format!(
                            "rate ({rate}) times burstiness ({k}) is out of range: \
                         the gamma scale 1 / (rate * burstiness) is {scale}"
                        ),
                    ));
                }
                let gamma = Gamma::new(k, scale).map_err(|e| ctx.err(KEY, e.to_string()))?;
                ArrivalPlan::Open(Process::Gamma(gamma))
            }
            ArrivalSpec::Constant { rate } => {
                let rate = ctx.in_range("traffic.arrival.rate", *rate, &ranges::RATE)?;
                ArrivalPlan::Open(Process::Constant { rate })
            }
            ArrivalSpec::Ramp { from, to, over_s } => {
                let from = ctx.in_range("traffic.arrival.from", *from, &ranges::RAMP_FROM)?;
                let to = ctx.in_range("traffic.arrival.to", *to, &ranges::RATE)?;
                let over = ctx.in_range("traffic.arrival.over_s", *over_s, &ranges::SPAN_S)?;
                ArrivalPlan::Open(Process::Ramp(Ramp::new(from, to, over)))
            }
            ArrivalSpec::Closed {
                users,
                think_s,
                think,
            } => {
                if *users == 0 {
                    return Err(ctx.err("traffic.arrival.users", "must be at least 1, got 0"));
                }
                // Every user is an event queued at time 0 (tens of bytes each):
                // 4 billion of them would exhaust memory before the first step.
                if *users > MAX_USERS {
                    return Err(ctx.err(
                        "traffic.arrival.users",
                        format!("{users} is more than a simulation can hold (at most {MAX_USERS})"),
                    ));
                }
                let think = Think::build(*think_s, *think, "traffic.arrival.think_s", ctx)?;
                ArrivalPlan::Closed {
                    users: *users,
                    think,
                }
            }
            ArrivalSpec::Trace { .. } => unreachable!("handled above"),
        },
        None,
    ))
}

/// The default of `traffic.arrival.trace_block_tokens`: Mooncake's 512.
pub const DEFAULT_TRACE_BLOCK_TOKENS: u32 = 512;

/// A replayed trace of any format, and a Mooncake trace's block identities.
fn build_trace(
    spec: &ArrivalSpec,
    ctx: &Ctx<'_>,
) -> Result<(ArrivalPlan, Option<BlockChains>), Error> {
    const KEY: &str = "traffic.arrival";
    let ArrivalSpec::Trace {
        path,
        arrival_column,
        prompt_column,
        output_column,
        zero_tokens,
        format,
        start_s,
        duration_s,
        speedup,
        sample: _,
        trace_block_tokens,
        model,
    } = spec
    else {
        unreachable!("build_trace takes a trace");
    };
    let format = *format;
    let name = format.name();
    if format == TraceFormat::Sharegpt {
        return Err(ctx.err(
            "traffic.arrival.format",
            "`sharegpt` has no arrival times: give it as `traffic.lengths = { kind = \
             \"trace\", format = \"sharegpt\", path = ... }` with an arrival process \
             (e.g. `traffic.arrival = { kind = \"poisson\", rate = 1 }`)",
        ));
    }
    if format != TraceFormat::Kvsim {
        kvsim_columns_only(
            KEY,
            name,
            &[
                ("arrival_column", arrival_column.as_str(), "arrival_s"),
                ("prompt_column", prompt_column.as_str(), "prompt_tokens"),
                ("output_column", output_column.as_str(), "output_tokens"),
            ],
            ctx,
        )?;
    }
    if trace_block_tokens.is_some() && format != TraceFormat::Mooncake {
        return Err(ctx.err(
            format!("{KEY}.trace_block_tokens"),
            format!("is for `format = \"mooncake\"` only (the format is `{name}`)"),
        ));
    }
    if model.is_some() && format != TraceFormat::Burstgpt {
        return Err(ctx.err(
            format!("{KEY}.model"),
            format!("is for `format = \"burstgpt\"` only (the format is `{name}`)"),
        ));
    }
    let start = ctx.in_range("traffic.arrival.start_s", *start_s, &ranges::TRACE_START_S)?;
    let end = match duration_s {
        Some(d) => start + ctx.in_range("traffic.arrival.duration_s", *d, &ranges::SPAN_S)?,
        None => f64::INFINITY,
    };
    let speedup = ctx.in_range("traffic.arrival.speedup", *speedup, &ranges::SPEEDUP)?;
    let window = Window {
        start,
        end,
        speedup,
    };
    let path = ctx.resolve(path);
    let read = ReadOpts {
        window,
        zero: *zero_tokens,
        setting: KEY,
    };
    let (rows, chains) = match format {
        TraceFormat::Kvsim => {
            let cols = Columns {
                prompt: prompt_column,
                output: output_column,
                zero: *zero_tokens,
                setting: KEY,
            };
            (
                data::load_trace(&path, arrival_column, &cols, &window)?,
                None,
            )
        }
        TraceFormat::Azure => (formats::load_azure(&path, &read)?, None),
        TraceFormat::Burstgpt => (
            formats::load_burstgpt(&path, &read, model.as_deref())?,
            None,
        ),
        TraceFormat::Mooncake => {
            let block = trace_block_tokens.unwrap_or(DEFAULT_TRACE_BLOCK_TOKENS);
            let block = ctx.in_range(
                "traffic.arrival.trace_block_tokens",
                f64::from(block),
                &ranges::TRACE_BLOCK_TOKENS,
            )? as u32;
            let (rows, chains) = formats::load_mooncake(&path, &read, block)?;
            (rows, Some(chains))
        }
        TraceFormat::Sharegpt => unreachable!("refused above"),
    };
    Ok((ArrivalPlan::Open(Process::Trace(Shared::new(rows))), chains))
}

/// Where lengths come from, decided from which keys are present.
enum Source<'a> {
    Independent(&'a LengthSpec, &'a LengthSpec),
    Paired(&'a PairedSpec),
    Trace,
}

fn length_source<'a>(spec: &'a TrafficSpec, ctx: &Ctx<'_>) -> Result<Source<'a>, Error> {
    if matches!(spec.arrival, ArrivalSpec::Trace { .. }) {
        let given = [
            ("prompt", spec.prompt.is_some()),
            ("output", spec.output.is_some()),
            ("lengths", spec.lengths.is_some()),
        ];
        if let Some((name, _)) = given.iter().find(|(_, g)| *g) {
            return Err(ctx.err(
                format!("traffic.{name}"),
                "must not be given with `traffic.arrival.kind = \"trace\"`: \
                 the trace supplies every request's prompt and output lengths",
            ));
        }
        if spec.prefix.is_some() {
            return Err(ctx.err(
                "traffic.prefix",
                "must not be given with `traffic.arrival.kind = \"trace\"`: \
                 the trace says which requests share a prefix, in its \
                 `prefix_id` and `prefix_tokens` columns",
            ));
        }
        if spec.session.is_some() {
            return Err(ctx.err(
                "traffic.session",
                "must not be given with `traffic.arrival.kind = \"trace\"`: \
                 a trace replays each request at its own time, so it cannot \
                 also generate conversations",
            ));
        }
        return Ok(Source::Trace);
    }
    match (&spec.prompt, &spec.output, &spec.lengths) {
        (Some(prompt), Some(output), None) => Ok(Source::Independent(prompt, output)),
        (None, None, Some(paired)) => Ok(Source::Paired(paired)),
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(ctx.err(
            "traffic.lengths",
            "cannot be combined with `traffic.prompt` or `traffic.output`: \
             give either paired `lengths` or `prompt` and `output`",
        )),
        (Some(_), None, None) => Err(ctx.err(
            "traffic.output",
            "is required with `traffic.prompt` (or give paired `traffic.lengths` instead)",
        )),
        (None, Some(_), None) => Err(ctx.err(
            "traffic.prompt",
            "is required with `traffic.output` (or give paired `traffic.lengths` instead)",
        )),
        (None, None, None) => Err(ctx.err(
            "traffic.prompt",
            "is required: give `prompt` and `output` length distributions, \
             or paired `lengths` from a file",
        )),
    }
}

fn build_prefix(spec: &PrefixSpec, ctx: &Ctx<'_>) -> Result<PrefixPlan, Error> {
    let PrefixSpec {
        count,
        tokens,
        fraction,
    } = *spec;
    if count == 0 {
        return Err(ctx.err(
            "traffic.prefix.count",
            "must be at least 1 (the number of distinct system prompts), got 0",
        ));
    }
    if tokens == 0 {
        return Err(ctx.err(
            "traffic.prefix.tokens",
            "must be at least 1 (the tokens of each system prompt), got 0",
        ));
    }
    if !(fraction.is_finite() && (0.0..=1.0).contains(&fraction)) {
        return Err(ctx.err(
            "traffic.prefix.fraction",
            format!(
                "must be a probability in [0, 1] (the share of requests using a \
                 system prompt), got {}",
                crate::ranges::number(fraction)
            ),
        ));
    }
    Ok(PrefixPlan {
        count,
        tokens,
        fraction,
    })
}

/// `traffic.session`; with ShareGPT `conversations` sessions are on even
/// without one (think time 0), and their turns come from the file.
fn build_session(
    spec: Option<&SessionSpec>,
    conversations: bool,
    ctx: &Ctx<'_>,
) -> Result<Option<SessionPlan>, Error> {
    const TURNS: &str = "traffic.session.turns";
    let Some(spec) = spec else {
        return Ok(conversations.then_some(SessionPlan {
            turns: None,
            think: Think::Fixed(SimDuration::ZERO),
        }));
    };
    let turns = match (&spec.turns, conversations) {
        (Some(_), true) => {
            return Err(ctx.err(
                TURNS,
                "must not be given with `traffic.lengths.format = \"sharegpt\"`: each \
                 session replays a conversation of the file, with its own turns",
            ));
        }
        (None, true) => None,
        (Some(t), false) => Some(Sampler::build_counting(t, TURNS, Unit::Turns, ctx)?),
        (None, false) => {
            return Err(ctx.err(
                TURNS,
                "is required: the number of turns per session (e.g. `{ kind = \"fixed\", \
                 value = 4 }`)",
            ));
        }
    };
    Ok(Some(SessionPlan {
        turns,
        think: Think::build(spec.think_s, spec.think, "traffic.session.think_s", ctx)?,
    }))
}

/// Refuses a column-name key (`(key, value, default)`) changed from its
/// default under a public `format` (`name`), which names its own columns.
fn kvsim_columns_only(
    table: &str,
    name: &str,
    columns: &[(&str, &str, &str)],
    ctx: &Ctx<'_>,
) -> Result<(), Error> {
    match columns.iter().find(|(_, v, d)| v != d) {
        Some((key, _, _)) => Err(ctx.err(
            format!("{table}.{key}"),
            format!(
                "is for `format = \"kvsim\"` only; the `{name}` format names its own columns \
                 (docs/traces.md)"
            ),
        )),
        None => Ok(()),
    }
}

/// `traffic.lengths`, and the probability of keeping each conversation
/// (`sample`, ShareGPT only; 1 otherwise).
fn build_paired(spec: &PairedSpec, ctx: &Ctx<'_>) -> Result<(LengthPlan, f64), Error> {
    const KEY: &str = "traffic.lengths";
    let PairedSpec::Trace {
        path,
        prompt_column,
        output_column,
        zero_tokens,
        format,
        sample,
        tokenizer,
    } = spec;
    let name = format.name();
    if *format != TraceFormat::Kvsim {
        kvsim_columns_only(
            KEY,
            name,
            &[
                ("prompt_column", prompt_column.as_str(), "prompt_tokens"),
                ("output_column", output_column.as_str(), "output_tokens"),
            ],
            ctx,
        )?;
    }
    if *format != TraceFormat::Sharegpt {
        if *sample != 1.0 {
            return Err(ctx.err(
                format!("{KEY}.sample"),
                "is for `format = \"sharegpt\"` only: paired rows are drawn at random, \
                 so keeping a fraction of them changes nothing",
            ));
        }
        if *tokenizer != Tokenizer::default() {
            return Err(ctx.err(
                format!("{KEY}.tokenizer"),
                format!("is for `format = \"sharegpt\"` only (the format is `{name}`)"),
            ));
        }
    }
    let path = ctx.resolve(path);
    let read = ReadOpts {
        window: Window::ALL,
        zero: *zero_tokens,
        setting: KEY,
    };
    let pairs = |rows: Vec<TraceRow>| -> Vec<(u32, u32)> {
        rows.iter().map(|r| (r.prompt, r.output)).collect()
    };
    let rows = match format {
        TraceFormat::Kvsim => {
            let cols = Columns {
                prompt: prompt_column,
                output: output_column,
                zero: *zero_tokens,
                setting: KEY,
            };
            data::load_pairs(&path, &cols)?
        }
        TraceFormat::Azure => pairs(formats::load_azure(&path, &read)?),
        TraceFormat::Burstgpt => pairs(formats::load_burstgpt(&path, &read, None)?),
        TraceFormat::Mooncake => {
            pairs(formats::load_mooncake(&path, &read, DEFAULT_TRACE_BLOCK_TOKENS)?.0)
        }
        TraceFormat::Sharegpt => {
            let sample = ctx.in_range("traffic.lengths.sample", *sample, &ranges::SAMPLE)?;
            let c = formats::load_sharegpt(&path, *zero_tokens, *tokenizer, KEY)?;
            return Ok((LengthPlan::Conversations(c), sample));
        }
    };
    Ok((LengthPlan::Paired(Shared::new(rows)), 1.0))
}

/// A generator of requests for one run.
///
/// Every call is O(1) and allocation-free.
#[derive(Clone, Debug)]
pub struct Traffic {
    /// The open-loop process, `None` in a closed loop.
    process: Option<Process>,
    clock: Clock,
    /// The closed-loop think time, `None` in an open loop.
    think: Option<Think>,
    lengths: LengthPlan,
    max_tokens: Option<Sampler>,
    default_cap: u32,
    prefix: Option<PrefixPlan>,
    session: Option<SessionPlan>,
    arrival_rng: ChaCha8Rng,
    prompt_rng: ChaCha8Rng,
    output_rng: ChaCha8Rng,
    max_tokens_rng: ChaCha8Rng,
    think_rng: ChaCha8Rng,
    paired_rng: ChaCha8Rng,
    prefix_rng: ChaCha8Rng,
    turns_rng: ChaCha8Rng,
    session_think_rng: ChaCha8Rng,
    samples_rng: ChaCha8Rng,
    /// Probability of keeping each trace row or conversation.
    sample: f64,
    /// Draws which trace rows or conversations are kept (none when `sample`
    /// is 1).
    sample_rng: ChaCha8Rng,
    /// ShareGPT: the next conversation to consider, in file order.
    next_conversation: u32,
}

impl Traffic {
    /// Open loop: the next arrival and its lengths, nondecreasing in time.
    ///
    /// `None` once a trace is exhausted, and always in a closed loop (whose
    /// requests the engine starts itself with [`Traffic::next_lengths`]).
    /// With sessions, each arrival is a conversation's first turn.
    pub fn next_arrival(&mut self) -> Option<(SimTime, Lengths)> {
        let process = self.process.as_ref()?;
        loop {
            return match process.next(&mut self.clock, &mut self.arrival_rng) {
                Next::At(at) => Some((at, self.next_lengths())),
                Next::Row(row) => {
                    if !keep(self.sample, &mut self.sample_rng) {
                        continue;
                    }
                    Some((row.at, self.capped(row.prompt, row.output, row.prefix)))
                }
                Next::End => None,
            };
        }
    }

    /// The number of turns of the session that `first` (a first turn from
    /// [`Traffic::next_arrival`] or [`Traffic::next_lengths`]) begins: its
    /// conversation's, for ShareGPT, else [`Traffic::session_turns`].
    pub fn turns_of(&mut self, first: &Lengths) -> u32 {
        match (&self.lengths, first.conversation) {
            (LengthPlan::Conversations(c), conv) if conv != Lengths::NO_CONVERSATION => {
                c.of(conv).len().max(1) as u32
            }
            _ => self.session_turns(),
        }
    }

    /// Turn `turn` (0-based; turn 0 came with the session's first lengths)
    /// of ShareGPT conversation `conv`: its new message (as `prompt`; the
    /// engine prepends the history) and output. Draws nothing.
    pub fn conversation_turn(&mut self, conv: u32, turn: u32) -> Lengths {
        let (prompt, output) = match &self.lengths {
            LengthPlan::Conversations(c) => {
                let turns = c.of(conv);
                turns[(turn as usize).min(turns.len() - 1)]
            }
            // Only conversations number their sessions.
            _ => (1, 1),
        };
        self.capped(prompt, output, None)
    }

    /// Closed loop: the lengths of a user's next request (with sessions: the
    /// first turn of its next conversation).
    ///
    /// With a `prefix` spec the request may start with a system prompt:
    /// `prompt` is then its tokens plus the drawn prompt length (the user's
    /// part). Also usable in an open loop; with a trace it draws a uniformly
    /// random row, prefix included (from the paired stream), leaving the
    /// replay order untouched.
    pub fn next_lengths(&mut self) -> Lengths {
        let (prompt, output, row_prefix, conversation) = self.draw_pair();
        let (prompt, prefix) = match &self.prefix {
            // A trace (the only source of row prefixes) excludes a spec.
            None => (prompt, row_prefix),
            Some(plan) => match plan.draw(&mut self.prefix_rng) {
                // Validated in `from_spec` not to overflow; saturate anyway.
                Some(p) => (prompt.saturating_add(p.tokens), Some(p)),
                None => (prompt, None),
            },
        };
        Lengths {
            conversation,
            ..self.capped(prompt, output, prefix)
        }
    }

    /// A later turn of a session: the new message's tokens (as `prompt`),
    /// the turn's true output and its `max_tokens`; `prefix` is `None`.
    ///
    /// The same draws as [`Traffic::next_lengths`] without a system prompt,
    /// which belongs to the conversation's first turn only; the engine
    /// prepends the history (the previous turn's prompt and output).
    pub fn next_message(&mut self) -> Lengths {
        let (prompt, output, _, _) = self.draw_pair();
        self.capped(prompt, output, None)
    }

    /// Closed loop: a user's think time before the next request (with
    /// sessions: before its next conversation).
    ///
    /// Zero in an open loop, where nobody thinks.
    pub fn think_time(&mut self) -> SimDuration {
        match self.think {
            None => SimDuration::ZERO,
            Some(think) => think.draw(&mut self.think_rng),
        }
    }

    /// The least time from a request's end to anything it sends next: the
    /// shortest think time this traffic can draw, a closed-loop user's
    /// (before the next request) or a session's (before the next turn).
    /// Zero where one can be zero (exponential, or `think_s = 0`); `None`
    /// when a request's end sends nothing (open loop, no sessions).
    pub fn least_think(&self) -> Option<SimDuration> {
        let least = |think: &Think| match *think {
            Think::Fixed(d) => d,
            Think::Exponential { .. } => SimDuration::ZERO,
        };
        let user = self.think.as_ref().map(least);
        let turn = self.session.as_ref().map(|s| least(&s.think));
        match (user, turn) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The number of turns (requests) of a new session, >= 1, from its own
    /// stream; 1 without sessions.
    pub fn session_turns(&mut self) -> u32 {
        match self.session.as_ref().and_then(|s| s.turns.as_ref()) {
            None => 1,
            Some(turns) => turns.sample(&mut self.turns_rng).max(1),
        }
    }

    /// The time between a session turn's end and the next turn's arrival,
    /// from its own stream; zero without sessions.
    pub fn session_think(&mut self) -> SimDuration {
        match &self.session {
            None => SimDuration::ZERO,
            Some(s) => s.think.draw(&mut self.session_think_rng),
        }
    }

    /// The true output tokens of one extra parallel sample of a request whose
    /// cap is `max_tokens`: a fresh draw from the output distribution (with
    /// paired lengths or a trace, the output of a uniformly random row), from
    /// its own stream, capped at `max_tokens` and at least 1.
    pub fn sample_output(&mut self, max_tokens: u32) -> u32 {
        let output = match &self.lengths {
            LengthPlan::Independent { output, .. } => output.sample(&mut self.samples_rng),
            LengthPlan::Paired(rows) => rows[self.samples_rng.random_range(0..rows.len())].1,
            LengthPlan::Trace(rows) => rows[self.samples_rng.random_range(0..rows.len())].output,
            LengthPlan::Conversations(c) => {
                c.turns[self.samples_rng.random_range(0..c.turns.len())].1
            }
        };
        output.min(max_tokens).max(1)
    }

    /// One (prompt, output, trace prefix) from the length plan, and the
    /// conversation it starts (ShareGPT).
    fn draw_pair(&mut self) -> (u32, u32, Option<SharedPrefix>, u32) {
        let none = Lengths::NO_CONVERSATION;
        match &self.lengths {
            LengthPlan::Independent { prompt, output } => (
                prompt.sample(&mut self.prompt_rng),
                output.sample(&mut self.output_rng),
                None,
                none,
            ),
            LengthPlan::Paired(rows) => {
                let (prompt, output) = rows[self.paired_rng.random_range(0..rows.len())];
                (prompt, output, None, none)
            }
            LengthPlan::Trace(rows) => {
                let row = rows[self.paired_rng.random_range(0..rows.len())];
                (row.prompt, row.output, row.prefix, none)
            }
            LengthPlan::Conversations(c) => {
                // The next kept conversation in file order, starting over at
                // the end.
                let n = c.len() as u32;
                let conv = loop {
                    let conv = self.next_conversation;
                    self.next_conversation = (conv + 1) % n;
                    if keep(self.sample, &mut self.sample_rng) {
                        break conv;
                    }
                };
                let (prompt, output) = c.of(conv)[0];
                (prompt, output, None, conv)
            }
        }
    }

    /// A session's later turn, like [`Traffic::next_message`], but with
    /// every draw (the pair, then the cap) taken from `rng`: a cluster gives
    /// each session a stream of its own, so that a turn's lengths do not
    /// depend on the order in which the replicas finish other sessions'
    /// turns (see `engine::cluster`).
    pub fn next_message_from(&self, rng: &mut ChaCha8Rng) -> Lengths {
        let (prompt, output) = match &self.lengths {
            LengthPlan::Independent { prompt, output } => (prompt.sample(rng), output.sample(rng)),
            LengthPlan::Paired(rows) => rows[rng.random_range(0..rows.len())],
            LengthPlan::Trace(rows) => {
                let row = rows[rng.random_range(0..rows.len())];
                (row.prompt, row.output)
            }
            // Conversations replay their own turns
            // ([`Traffic::conversation_turn_from`]); a message outside one
            // is a uniformly random turn of the file.
            LengthPlan::Conversations(c) => c.turns[rng.random_range(0..c.turns.len())],
        };
        let max_tokens = self.draw_cap(rng);
        self.cap(max_tokens, prompt, output, None)
    }

    /// [`Traffic::conversation_turn`] with its cap drawn from `rng` (a
    /// session's own stream, see [`Traffic::next_message_from`]).
    pub fn conversation_turn_from(&self, conv: u32, turn: u32, rng: &mut ChaCha8Rng) -> Lengths {
        let (prompt, output) = match &self.lengths {
            LengthPlan::Conversations(c) => {
                let turns = c.of(conv);
                turns[(turn as usize).min(turns.len() - 1)]
            }
            _ => (1, 1),
        };
        let max_tokens = self.draw_cap(rng);
        self.cap(max_tokens, prompt, output, None)
    }

    /// [`Traffic::session_think`] drawn from `rng` (a session's own stream,
    /// see [`Traffic::next_message_from`]).
    pub fn session_think_from(&self, rng: &mut ChaCha8Rng) -> SimDuration {
        match &self.session {
            None => SimDuration::ZERO,
            Some(s) => s.think.draw(rng),
        }
    }

    /// A request's `max_tokens`: drawn from `rng`, or the fixed default.
    fn draw_cap(&self, rng: &mut ChaCha8Rng) -> u32 {
        match &self.max_tokens {
            Some(m) => m.sample(rng),
            None => self.default_cap,
        }
    }

    /// Draws the request's cap and applies it to the true output.
    fn capped(&mut self, prompt: u32, output: u32, prefix: Option<SharedPrefix>) -> Lengths {
        let max_tokens = match &self.max_tokens {
            Some(m) => m.sample(&mut self.max_tokens_rng),
            None => self.default_cap,
        };
        self.cap(max_tokens, prompt, output, prefix)
    }

    /// The lengths of a request with true output `output` under the cap
    /// `max_tokens`.
    fn cap(
        &self,
        max_tokens: u32,
        prompt: u32,
        output: u32,
        prefix: Option<SharedPrefix>,
    ) -> Lengths {
        let lengths = Lengths {
            prompt,
            output: output.min(max_tokens),
            max_tokens,
            prefix,
            conversation: Lengths::NO_CONVERSATION,
        };
        invariant!(lengths.prompt >= 1 && lengths.output >= 1);
        invariant!(lengths.output <= lengths.max_tokens);
        invariant!(prefix.is_none_or(|p| p.tokens >= 1 && p.tokens <= prompt));
        lengths
    }
}

/// Whether to keep one trace row or conversation: always when `sample` is 1
/// (drawing nothing, so such runs are as before), else with probability
/// `sample` from `rng`.
#[inline]
fn keep(sample: f64, rng: &mut ChaCha8Rng) -> bool {
    sample >= 1.0 || rng.random::<f64>() < sample
}
