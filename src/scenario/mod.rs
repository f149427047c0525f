//! Scenario files: TOML -> [`ScenarioSpec`] (as written) -> [`Scenario`]
//! (validated runtime objects). The engine never parses or defaults.
//!
//! Loading goes: read the file, parse it as a TOML table (syntax errors carry
//! line and column), apply `--set key.path=value` overrides to the table,
//! deserialize with the key path of any type error, then validate values and
//! their combinations. Every error names the file, the key and the reason.

pub mod commands;
pub mod disagg;
mod overrides;
pub mod spec;
mod tiers;
mod words;

pub use words::in_user_words;

pub use overrides::{apply_override, parse_override};
pub use spec::ScenarioSpec;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cache::tiers::TierPlan;
use crate::cache::{CacheConfig, KvLayout, MAX_LAYER_GROUPS, Placement, PolicyName, Reserve};
use crate::catalog;
use crate::error::{Error, SpecError};
use crate::hardware::budget::{KvBudget, kv_budget, kv_layout};
use crate::hardware::{ComputeDtype, Deployment, Efficiency, Gpu, MemoryRule};
use crate::model::{Dtype, LayerGroup, LayerKind, Model, Span};
use crate::ranges;
use crate::scheduler::{Admission, KvRouterConfig, OnOom, Router, SchedulerConfig};
use crate::traffic::TrafficPlan;
use crate::units::GIB;
use crate::units::{SimDuration, SimTime};

/// When a run stops issuing requests.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Stop {
    /// After this many requests (or when a trace ends, if sooner).
    Requests(u64),
    /// After this instant (or when a trace ends, if sooner).
    Duration(SimTime),
    /// When the trace ends.
    TraceEnd,
}

impl Stop {
    /// Whether the `issued + 1`-th request, arriving at `at`, is still issued.
    pub fn admits(&self, at: SimTime, issued: u64) -> bool {
        match *self {
            Stop::Requests(n) => issued < n,
            Stop::Duration(d) => at < d,
            Stop::TraceEnd => true,
        }
    }
}

/// Service-level objectives, seconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize)]
pub struct Slo {
    /// Time to first token.
    pub ttft: Option<f64>,
    /// Time per output token.
    pub tpot: Option<f64>,
    /// End-to-end latency.
    pub e2e: Option<f64>,
}

/// Runs expected to issue more requests than this keep no per-request
/// records under `output.records = "auto"` (streaming mode): at the
/// ~330 bytes a kept request costs (`engine::guard::BYTES_PER_REQUEST`),
/// 1.65 GB.
pub const AUTO_STREAMING_REQUESTS: f64 = 5_000_000.0;

/// Why `output.records = "streaming"` is refused with disaggregation.
const STREAMING_DISAGGREGATED: &str = "\"streaming\" is not available for a disaggregated \
    deployment yet: its requests are composed from both pools' records at the end of the run; \
    use \"exact\"";

/// Whether tensor parallelism of `tp` can split `model`: its attention heads
/// must divide evenly (an MLA model's latent cache is replicated instead).
/// The reason it cannot, otherwise.
pub fn tp_splits(model: &Model, tp: u32) -> Result<(), String> {
    if tp > 1 && model.mla.is_none() && model.heads % tp != 0 {
        return Err(format!(
            "{tp} does not divide the model's {} attention heads",
            model.heads
        ));
    }
    Ok(())
}

/// The longest scenario `name`: it names the output directory, and file
/// systems allow 255 bytes.
pub const MAX_NAME_CHARS: usize = 100;

/// The most replicates a scenario may ask for.
pub const MAX_REPLICATES: u32 = 10_000;

/// A validated scenario, ready to simulate.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Scenario name (output directory name).
    pub name: String,
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// Seed of every random stream.
    pub seed: u64,
    /// When to stop issuing requests.
    pub stop: Stop,
    /// Runs per sweep point.
    pub replicates: u32,
    /// The model.
    pub model: Model,
    /// GPUs, parallelism and efficiency.
    pub deployment: Deployment,
    /// Traffic, ready to instantiate per seed.
    pub traffic: TrafficPlan,
    /// KV cache policy.
    pub cache: CacheConfig,
    /// Batching and OOM rules.
    pub scheduler: SchedulerConfig,
    /// Objectives for goodput.
    pub slo: Slo,
    /// Where each GPU's memory goes.
    pub budget: KvBudget,
    /// Per-token KV geometry of a replica (layer groups and their windows).
    pub layout: KvLayout,
    /// KV tiers below HBM and their links (`None`: HBM only).
    pub tiers: Option<TierPlan>,
    /// Timeline sampling period (`None`: every step, thinned to
    /// `timeline_max_rows`).
    pub timeline_interval: Option<SimDuration>,
    /// `output.records` as written (`auto` is resolved per run, by the
    /// engine's work estimate: `engine::streams`).
    pub records: spec::RecordsMode,
    /// Without `timeline_interval`, the most rows a replica's timeline keeps
    /// (see [`crate::metrics::timeline`]).
    pub timeline_max_rows: u64,
    /// The format of `kvsim run`'s tables (`output.format`).
    pub table_format: spec::TableFormat,
    /// The resolved spec (after overrides), echoed into `summary.json`.
    pub spec: ScenarioSpec,
    /// Prefill/decode disaggregation: the prefill pool and the transfer
    /// (`None`: colocated). When present, the rest of this scenario is the
    /// decode pool.
    pub disagg: Option<Box<disagg::Disagg>>,
}

impl Scenario {
    /// Load-time warnings: settings that are valid but make traffic other
    /// than the file says (clamping that moves a length's mean), or requests
    /// that can never be served. `kvsim run`, `sweep` and `plan` print them
    /// on stderr.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.traffic.clamping_warnings();
        let longest = self.traffic.max_lengths().prompt;
        if longest >= self.model.max_model_len {
            out.push(format!(
                "prompts of up to {longest} tokens reach {}'s max_model_len ({}); \
                 such requests fail at once as `unservable`",
                self.model.name, self.model.max_model_len
            ));
        }
        let budget = self.scheduler.max_batched_tokens;
        if !self.scheduler.chunked_prefill && longest > budget {
            out.push(format!(
                "`scheduler.chunked_prefill` is off and `scheduler.max_batched_tokens` is {budget}, \
                 but the traffic can draw prompts of up to {longest} tokens: a prompt longer than \
                 one step can never be scheduled (vLLM refuses this configuration at start-up), \
                 so such requests fail at once as `unservable`; turn chunked_prefill on or raise \
                 max_batched_tokens to at least {longest}"
            ));
        }
        out
    }

    /// Reads and validates the scenario at `path`, applying `overrides`
    /// (`key.path=value` strings, as given to `--set`).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Scenario, Error> {
        let mut table = read_table(path)?;
        apply_cli_overrides(&mut table, overrides)?;
        Scenario::from_table(table, path)
    }

    /// Validates scenario `text` as if read from `path` (relative data paths
    /// resolve against `path`'s directory).
    pub fn from_toml(text: &str, path: &Path, overrides: &[String]) -> Result<Scenario, Error> {
        let mut table = parse_table(text, path)?;
        apply_cli_overrides(&mut table, overrides)?;
        Scenario::from_table(table, path)
    }

    /// Validates an already parsed (and overridden) scenario table as if read
    /// from `path`.
    pub fn from_table(table: toml::Table, path: &Path) -> Result<Scenario, Error> {
        if let Some(s) = disagg::load(&table, path)? {
            // The pools are built without `[deployment]`: the refusal of
            // `validate` is repeated here, where the mode is known.
            if s.records == spec::RecordsMode::Streaming {
                return Err(Error::Scenario {
                    path: path.to_path_buf(),
                    source: SpecError::new("output.records", STREAMING_DISAGGREGATED),
                });
            }
            return Ok(s);
        }
        let spec = spec_from_table(table).map_err(|source| Error::Scenario {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::from_spec(spec, path)
    }

    /// Validates a spec read from `path`.
    pub fn from_spec(spec: ScenarioSpec, path: &Path) -> Result<Scenario, Error> {
        let scenario_err = |source: SpecError| Error::Scenario {
            path: path.to_path_buf(),
            source,
        };
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let traffic = TrafficPlan::from_spec(&spec.traffic, base_dir, path)?;
        // A model read from a Hugging Face config.json: its errors name the
        // scenario and its `model.hf_config` key, then that file and its
        // field.
        let imported = match &spec.model.hf_config {
            Some(p) => Some(
                import_hf_config(&base_dir.join(p))
                    .map_err(|e| scenario_err(SpecError::new("model.hf_config", e.to_string())))?,
            ),
            None => None,
        };
        validate(spec, path, traffic, imported).map_err(scenario_err)
    }
}

/// Parses scenario `text` (read from `path`) into a TOML table; syntax errors
/// name the line and column.
pub fn parse_table(text: &str, path: &Path) -> Result<toml::Table, Error> {
    text.parse().map_err(|e: toml::de::Error| Error::Scenario {
        path: path.to_path_buf(),
        // The parser quotes the offending line, which may be megabytes.
        source: SpecError::new("", crate::input::quote_lines(e.to_string().trim_end())),
    })
}

/// Reads and parses the scenario file at `path` into a TOML table. A file
/// over a megabyte, or one that is not text, is refused before parsing.
pub fn read_table(path: &Path) -> Result<toml::Table, Error> {
    let text =
        crate::input::read_small_text(path, crate::input::MAX_SCENARIO_BYTES, "scenario file")?;
    parse_table(&text, path)
}

/// Applies `--set key.path=value` strings to `table`.
pub fn apply_cli_overrides(table: &mut toml::Table, overrides: &[String]) -> Result<(), Error> {
    for o in overrides {
        let (key, value) =
            parse_override(o).map_err(|e| Error::Usage(format!("--set {o}: {e}")))?;
        apply_override(table, &key, value).map_err(|e| Error::Usage(format!("--set {o}: {e}")))?;
    }
    Ok(())
}

/// Deserializes a TOML table into a spec, naming the key path of any error.
pub fn spec_from_table(mut table: toml::Table) -> Result<ScenarioSpec, SpecError> {
    words::expand_gpu_base(&mut table)?;
    // Kept to point into on error (scenario tables are small).
    let original = table.clone();
    let spec: ScenarioSpec =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            let message = e.into_inner().to_string();
            // The toml deserializer ends its message with "in `key`", which the
            // key path already says.
            let message = match message.trim_end().rsplit_once('\n') {
                Some((head, tail)) if tail.starts_with("in `") => head.to_string(),
                _ => message.trim_end().to_string(),
            };
            if let Some(diagnosed) = words::diagnose_untagged(&original, &key, &message) {
                return diagnosed;
            }
            let key = refine_key(&original, key, &message);
            SpecError::new(key, words::in_user_words(&message))
        })?;
    // Serde fills a table's fields from a list by position (`cache =
    // ["contiguous"]` would set the policy): refuse a list wherever the
    // scenario has a table, comparing the input with the spec written back.
    if let Ok(toml::Value::Table(resolved)) = toml::Value::try_from(&spec) {
        words::lists_for_tables(&original, &resolved, "")?;
    }
    Ok(spec)
}

/// Serde loses the path inside internally tagged enums (`arrival = { kind =
/// "poisson", rate = "fast" }` fails at `traffic.arrival`); if exactly one
/// field of the table at `key` holds the value the message quotes, the error
/// is about that field.
fn refine_key(table: &toml::Table, key: String, message: &str) -> String {
    let Some(unexpected) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|m| m.split(", expected").next())
    else {
        return key;
    };
    let mut at = Some(table);
    for part in key.split('.').filter(|p| !p.is_empty()) {
        at = at.and_then(|t| t.get(part)).and_then(toml::Value::as_table);
    }
    let Some(at) = at else { return key };
    let quoted = |v: &toml::Value| match v {
        toml::Value::String(s) => Some(format!("string {s:?}")),
        toml::Value::Integer(i) => Some(format!("integer `{i}`")),
        toml::Value::Float(f) => Some(format!("floating point `{f}`")),
        toml::Value::Boolean(b) => Some(format!("boolean `{b}`")),
        _ => None,
    };
    let mut hits = at
        .iter()
        .filter(|(_, v)| quoted(v).is_some_and(|q| q == unexpected));
    match (hits.next(), hits.next()) {
        (Some((field, _)), None) if key.is_empty() => field.clone(),
        (Some((field, _)), None) => format!("{key}.{field}"),
        _ => key,
    }
}

fn validate(
    spec: ScenarioSpec,
    path: &Path,
    traffic: TrafficPlan,
    imported: Option<Model>,
) -> Result<Scenario, SpecError> {
    if spec.name.trim().is_empty() {
        return Err(SpecError::new("name", "must not be empty"));
    }
    if spec.name.chars().count() > MAX_NAME_CHARS || spec.name.contains(char::is_control) {
        return Err(SpecError::new(
            "name",
            format!(
                "`{}` is used as a directory name: at most {MAX_NAME_CHARS} characters, no \
                 control characters",
                crate::input::quote(&spec.name.escape_debug().to_string())
            ),
        ));
    }
    if spec.name.contains(['/', '\\']) || spec.name == "." || spec.name == ".." {
        return Err(SpecError::new(
            "name",
            format!("`{}` is used as a directory name: no slashes", spec.name),
        ));
    }
    let trace_driven = traffic.is_trace_replay();
    let stop = match (spec.requests, spec.duration_s) {
        (Some(_), Some(_)) => {
            return Err(SpecError::new(
                "requests",
                "give either `requests` or `duration_s`, not both",
            ));
        }
        (Some(0), None) => return Err(SpecError::new("requests", "must be at least 1")),
        // The engine numbers requests with 32 bits.
        (Some(n), None) if n > u64::from(u32::MAX) => {
            return Err(SpecError::new(
                "requests",
                format!("{n} is more than one run can hold (at most {})", u32::MAX),
            ));
        }
        (Some(n), None) => Stop::Requests(n),
        (None, Some(d)) => {
            let d = ranges::SPAN_S.check("duration_s", d)?;
            Stop::Duration(SimTime::from_secs_f64(d))
        }
        (None, None) if trace_driven => Stop::TraceEnd,
        (None, None) => {
            return Err(SpecError::new(
                "requests",
                "missing: give `requests = N` or `duration_s = S` (only trace replay may omit both)",
            ));
        }
    };
    let replicates = match spec.replicates {
        Some(0) => return Err(SpecError::new("replicates", "must be at least 1")),
        Some(r) if r > MAX_REPLICATES => {
            return Err(SpecError::new(
                "replicates",
                format!(
                    "{r} is more than {MAX_REPLICATES}: a 95 % confidence interval narrows with \
                     the square root of the replicates, so 10,000 already gives 1 % of one \
                     run's spread"
                ),
            ));
        }
        Some(r) => r,
        None => 1,
    };

    let model = resolve_model(&spec.model, imported).map_err(|e| e.under("model"))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let gpu = resolve_gpu(&spec.hardware.gpu).map_err(|e| e.under("hardware"))?;
    let engine = match spec.engine.preset {
        Some(name) => catalog::engine_defaults(name, &gpu, spec.hardware.tp.unwrap_or(1)),
        None => catalog::EngineDefaults::KVSIM,
    };
    let deployment = resolve_hardware(
        &spec.hardware,
        &spec.engine,
        &engine,
        gpu,
        &model,
        spec.model.compute_dtype,
        base_dir,
    )?;
    let cache = resolve_cache(&spec.cache, &model, &engine).map_err(|e| e.under("cache"))?;
    let scheduler = resolve_scheduler(&spec.scheduler, &cache, deployment.tp, &engine)
        .map_err(|e| e.under("scheduler"))?;
    let slo = Slo {
        ttft: spec
            .slo
            .ttft_p99
            .map(|v| ranges::LATENCY_S.check("slo.ttft_p99", v))
            .transpose()?,
        tpot: spec
            .slo
            .tpot_p99
            .map(|v| ranges::LATENCY_S.check("slo.tpot_p99", v))
            .transpose()?,
        e2e: spec
            .slo
            .e2e_p99
            .map(|v| ranges::LATENCY_S.check("slo.e2e_p99", v))
            .transpose()?,
    };
    let timeline_interval = spec
        .output
        .timeline_interval_s
        .map(|v| {
            ranges::TIMELINE_INTERVAL_S
                .check("output.timeline_interval_s", v)
                .map(SimDuration::from_secs_f64)
        })
        .transpose()?;
    let records = spec.output.records.unwrap_or_default();
    let disaggregated = spec
        .deployment
        .as_ref()
        .is_some_and(|d| d.mode == disagg::Mode::Disaggregated);
    if records == spec::RecordsMode::Streaming && disaggregated {
        return Err(SpecError::new("output.records", STREAMING_DISAGGREGATED));
    }
    let timeline_max_rows = match (spec.output.timeline_max_rows, timeline_interval) {
        (Some(0), _) => {
            return Err(SpecError::new(
                "output.timeline_max_rows",
                "must be at least 1 (the rows the timeline keeps)",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(SpecError::new(
                "output.timeline_max_rows",
                "bounds the default timeline, which records every step; with \
                 output.timeline_interval_s every interval is recorded: set one of the two",
            ));
        }
        (rows, _) => rows.unwrap_or(crate::metrics::DEFAULT_TIMELINE_MAX_ROWS),
    };
    if traffic.samples() > scheduler.max_num_seqs {
        // vLLM schedules a request's samples together, each a sequence
        // counted against max_num_seqs: such a request could never start.
        return Err(SpecError::new(
            "traffic.n",
            format!(
                "{} samples per request exceed scheduler.max_num_seqs = {}: a request's samples \
                 run at once, each counted as a sequence, so it could never be admitted",
                traffic.samples(),
                scheduler.max_num_seqs
            ),
        ));
    }
    let budget = kv_budget(
        &model,
        &deployment,
        cache.kv_dtype,
        scheduler.max_batched_tokens,
        scheduler.max_num_seqs,
    )?;
    // A chunk the sliding policy's window would cut is two spans at once,
    // which no layer group expresses.
    for g in model.layer_groups() {
        if let (Span::Chunk(c), Some(w)) = (g.span(), cache.window) {
            if c > w {
                return Err(SpecError::new(
                    "cache.window",
                    format!(
                        "{w} is shorter than {}'s attention chunk ({c} tokens): the sliding \
                         policy over chunked layers is modelled only for windows of at least \
                         the chunk; use policy = \"paged\"",
                        model.name
                    ),
                ));
            }
        }
        if let (Span::Chunk(c), Placement::Paged { block_size }) = (g.span(), cache.placement) {
            if c % block_size != 0 {
                return Err(SpecError::new(
                    "cache.block_size",
                    format!(
                        "{block_size} does not divide {}'s attention chunk ({c} tokens): a chunk \
                         must be whole blocks, so that its blocks are freed together when the \
                         next chunk starts",
                        model.name
                    ),
                ));
            }
        }
    }
    let layout = kv_layout(&model, cache.kv_dtype, deployment.tp, cache.window);
    invariant_eq!(layout.bytes_per_token(), budget.bytes_per_token);
    if cache.prefix_caching && !layout.is_linear() {
        let what = if layout.state_bytes() > 0 {
            "recurrent layers (their state at a prefix's end is not kept)"
        } else {
            "sliding-window or chunked layers"
        };
        return Err(SpecError::new(
            "cache.prefix_caching",
            format!(
                "prefix caching with {what} is not supported ({} has them); use a model \
                 whose every layer keeps every token, or set prefix_caching = false",
                model.name
            ),
        ));
    }
    let block_bytes = match cache.placement {
        Placement::Paged { block_size } => Some(u64::from(block_size) * budget.bytes_per_token),
        Placement::Contiguous => None,
    };
    let tiers = tiers::resolve_tiers(
        &spec.cache,
        &spec.hardware,
        &deployment,
        &scheduler,
        stop,
        block_bytes,
        cache.prefix_caching,
        layout.is_linear(),
    )?;
    if let (Placement::Paged { block_size }, Some(chains), true) = (
        cache.placement,
        traffic.block_chains(),
        cache.prefix_caching || tiers.is_some(),
    ) {
        let trace_block = chains.block_tokens();
        if trace_block % block_size != 0 {
            return Err(SpecError::new(
                "cache.block_size",
                format!(
                    "{block_size} tokens does not divide \
                     `traffic.arrival.trace_block_tokens` = {trace_block}: each hash id of \
                     the trace names {trace_block} tokens, and prefix caching shares whole \
                     cache blocks, so a cache block must lie within one trace block (pick a \
                     block size that divides it, e.g. 16)"
                ),
            ));
        }
    }
    if let Placement::Paged { block_size } = cache.placement {
        let block_bytes = u64::from(block_size) * budget.bytes_per_token;
        if budget.kv_bytes < block_bytes {
            return Err(SpecError::new(
                "cache.block_size",
                format!(
                    "the KV budget ({} bytes) is smaller than one block of {block_size} tokens ({block_bytes} bytes)",
                    budget.kv_bytes
                ),
            ));
        }
    }
    spec.check.validate()?;
    for (key, values) in &spec.sweep {
        match values {
            toml::Value::Array(a) if !a.is_empty() => {}
            toml::Value::Array(_) => {
                return Err(SpecError::new(
                    format!("sweep.\"{key}\""),
                    "empty list of values",
                ));
            }
            _ => {
                return Err(SpecError::new(
                    format!("sweep.\"{key}\""),
                    "must be a list of values, e.g. [1, 2, 4]",
                ));
            }
        }
    }

    Ok(Scenario {
        name: spec.name.clone(),
        path: path.to_path_buf(),
        seed: spec.seed,
        stop,
        replicates,
        model,
        deployment,
        traffic,
        cache,
        scheduler,
        slo,
        budget,
        layout,
        tiers,
        timeline_interval,
        records,
        timeline_max_rows,
        table_format: spec.output.format.unwrap_or_default(),
        spec,
        disagg: None,
    })
}

/// Upper bounds of model shape fields. Far beyond any real model (the largest
/// have ~130 layers, 128 heads, hidden 16k, vocab 256k, 10M-token contexts),
/// they keep every product of shapes, lengths and batch sizes the simulator
/// forms within 64 bits.
const SHAPE_LIMITS: [(&str, u32); 8] = [
    ("layers", 4096),
    ("heads", 1 << 16),
    ("kv_heads", 1 << 16),
    ("head_dim", 1 << 16),
    ("hidden", 1 << 20),
    ("intermediate", 1 << 24),
    ("vocab", 1 << 24),
    ("max_model_len", 1 << 30),
];

/// The largest KV bytes per token (bf16, all layers) a model may have: 1 GiB,
/// ~400x the largest real model, so tokens x bytes fits 64 bits.
const MAX_KV_BYTES_PER_TOKEN: u128 = 1 << 30;

/// `v` unless it exceeds `max`.
fn at_most(key: &str, v: u32, max: u32) -> Result<u32, SpecError> {
    if v > max {
        Err(SpecError::new(
            key,
            format!("{v} is implausibly large (at most {max})"),
        ))
    } else {
        Ok(v)
    }
}

/// `v` if it is a positive finite number.
fn positive(key: &str, v: f64) -> Result<f64, SpecError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(SpecError::new(
            key,
            format!(
                "must be a positive finite number, got {}",
                crate::ranges::number(v)
            ),
        ))
    }
}

/// `v` if it is a finite number in `(0, 1]`.
fn fraction(key: &str, v: f64) -> Result<f64, SpecError> {
    ranges::UTILIZATION.check(key, v)
}

/// `v` if it is a finite number `>= 0`.
/// The most a layer's fixed cost per step may be: 10 ms, 250 times the
/// fitted 42 us (kernel launch gaps are microseconds; more is a unit slip).
const MAX_LAYER_OVERHEAD_S: f64 = 0.01;

/// A per-layer fixed cost: non-negative and at most [`MAX_LAYER_OVERHEAD_S`].
fn layer_overhead(key: &str, v: f64) -> Result<f64, SpecError> {
    let v = non_negative(key, v)?;
    if v > MAX_LAYER_OVERHEAD_S {
        return Err(SpecError::new(
            key,
            format!(
                "{v} s per layer is implausibly large (at most {MAX_LAYER_OVERHEAD_S} s; the \
                 catalog's is 4.2e-5): was it given in microseconds?"
            ),
        ));
    }
    Ok(v)
}

fn non_negative(key: &str, v: f64) -> Result<f64, SpecError> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(SpecError::new(
            key,
            format!(
                "must be a finite number >= 0, got {}",
                crate::ranges::number(v)
            ),
        ))
    }
}

fn count(key: &str, v: f64) -> Result<u64, SpecError> {
    if (1.0..1e18).contains(&v) {
        Ok(v.round() as u64)
    } else {
        Err(SpecError::new(
            key,
            format!("must be a positive count, got {}", crate::ranges::number(v)),
        ))
    }
}

fn nonzero(key: &str, v: u32) -> Result<u32, SpecError> {
    if v == 0 {
        Err(SpecError::new(key, "must be at least 1"))
    } else {
        Ok(v)
    }
}

/// Reads the Hugging Face `config.json` at `path` into a model, validated as
/// a scenario's `[model]` is (every range and consistency check of
/// `resolve_model`). Errors name the file and the config's field
/// (`config.json: \`num_key_value_heads\`: missing`); a scenario's
/// `model.hf_config` puts the scenario file and that key before them.
pub fn import_hf_config(path: &Path) -> Result<Model, Error> {
    let imported = crate::model::hf::read(path)?;
    resolve_model(&model_spec_of(&imported.model), None).map_err(|e| {
        let reason = match imported.source_of(&e.key) {
            Some(field) => format!("`{field}`: {}", e.reason),
            None => format!("`model.{}` (derived from the config): {}", e.key, e.reason),
        };
        Error::DataFile {
            path: path.to_path_buf(),
            line: None,
            reason,
        }
    })
}

/// The `[model]` table that says everything `model` says, for validating a
/// model that did not come from a scenario file.
fn model_spec_of(model: &Model) -> spec::ModelSpec {
    let groups = (!model.groups.is_empty()).then(|| {
        model
            .groups
            .iter()
            .map(|g| {
                let mut s = spec::LayerGroupSpec {
                    layers: g.layers,
                    attention: spec::AttentionName::Full,
                    window: None,
                    chunk: None,
                    kv_heads: None,
                    head_dim: None,
                    kv_lora_rank: None,
                    qk_rope_dim: None,
                    state_bytes: None,
                    kv_dtype: g.kv_dtype,
                };
                if let Some((kv, d)) = g.heads() {
                    (s.kv_heads, s.head_dim) = (Some(kv), Some(d));
                }
                match g.kind {
                    LayerKind::Full { .. } => {}
                    LayerKind::Sliding { window, .. } => {
                        s.attention = spec::AttentionName::Sliding;
                        s.window = Some(window);
                    }
                    LayerKind::Chunked { chunk, .. } => {
                        s.attention = spec::AttentionName::Chunked;
                        s.chunk = Some(chunk);
                    }
                    LayerKind::Mla {
                        kv_lora_rank,
                        qk_rope_dim,
                    } => {
                        s.attention = spec::AttentionName::Mla;
                        (s.kv_lora_rank, s.qk_rope_dim) = (Some(kv_lora_rank), Some(qk_rope_dim));
                    }
                    LayerKind::Recurrent { state_bytes } => {
                        s.attention = spec::AttentionName::Recurrent;
                        s.state_bytes = Some(state_bytes);
                    }
                    LayerKind::None => s.attention = spec::AttentionName::None,
                }
                s
            })
            .collect()
    });
    spec::ModelSpec {
        preset: None,
        hf_config: None,
        name: Some(model.name.clone()),
        params: Some(model.params as f64),
        active_params: Some(model.active_params as f64),
        layers: Some(model.layers),
        hidden: Some(model.hidden),
        heads: Some(model.heads),
        kv_heads: Some(model.kv_heads),
        head_dim: Some(model.head_dim),
        intermediate: Some(model.intermediate),
        vocab: Some(model.vocab),
        max_model_len: Some(model.max_model_len),
        sliding_window: model.sliding_window,
        mla: model.mla,
        moe: model.moe,
        weight_dtype: Some(model.weight_dtype),
        expert_dtype: model.expert_dtype,
        groups,
        all_global: None,
        compute_dtype: None,
    }
}

/// `spec` resolved against its base: the catalog preset it names, else the
/// model `imported` from its `hf_config`, else none (every field given).
fn resolve_model(spec: &spec::ModelSpec, imported: Option<Model>) -> Result<Model, SpecError> {
    if spec.preset.is_some() && spec.hf_config.is_some() {
        return Err(SpecError::new(
            "hf_config",
            "give either `preset` (a catalog model) or `hf_config` (a config.json), not both",
        ));
    }
    let base = match &spec.preset {
        Some(name) => Some(catalog::model(name).ok_or_else(|| {
            let known: Vec<_> = catalog::models()
                .into_iter()
                .map(|e| e.model.name)
                .collect();
            SpecError::new(
                "preset",
                format!("unknown model `{name}`; known: {}", known.join(", ")),
            )
        })?),
        None => imported,
    };
    // Every field comes from the spec if given, else from the preset; without a
    // preset, a missing field is an error (never a silent default).
    macro_rules! field {
        ($name:ident) => {
            match (spec.$name, base.as_ref()) {
                (Some(v), _) => v,
                (None, Some(b)) => b.$name,
                (None, None) => {
                    return Err(SpecError::new(
                        stringify!($name),
                        "missing: give `preset = \"...\"`, `hf_config = \"config.json\"` or every shape field",
                    ))
                }
            }
        };
    }
    let params = match (spec.params, base.as_ref()) {
        (Some(v), _) => count("params", v)?,
        (None, Some(b)) => b.params,
        (None, None) => {
            return Err(SpecError::new(
                "params",
                "missing: give `preset`, `hf_config` or `params`",
            ));
        }
    };
    let active_params = match (spec.active_params, base.as_ref()) {
        (Some(v), _) => count("active_params", v)?,
        (None, Some(b)) if spec.params.is_none() => b.active_params,
        _ => params,
    };
    let model = Model {
        name: spec
            .name
            .clone()
            .or_else(|| base.as_ref().map(|b| b.name.clone()))
            .unwrap_or_else(|| "custom".into()),
        params,
        active_params,
        layers: nonzero("layers", field!(layers))?,
        hidden: nonzero("hidden", field!(hidden))?,
        heads: nonzero("heads", field!(heads))?,
        kv_heads: nonzero("kv_heads", field!(kv_heads))?,
        head_dim: nonzero("head_dim", field!(head_dim))?,
        intermediate: nonzero("intermediate", field!(intermediate))?,
        vocab: nonzero("vocab", field!(vocab))?,
        max_model_len: nonzero("max_model_len", field!(max_model_len))?,
        sliding_window: spec
            .sliding_window
            .or(base.as_ref().and_then(|b| b.sliding_window)),
        mla: spec.mla.or(base.as_ref().and_then(|b| b.mla)),
        moe: spec.moe.or(base.as_ref().and_then(|b| b.moe)),
        weight_dtype: spec
            .weight_dtype
            .or(base.as_ref().map(|b| b.weight_dtype))
            .unwrap_or(Dtype::Bf16),
        expert_dtype: spec
            .expert_dtype
            .or(base.as_ref().and_then(|b| b.expert_dtype)),
        groups: Vec::new(),
    };
    let mut model = model;
    if model.expert_dtype.is_some() && model.moe.is_none() {
        return Err(SpecError::new(
            "expert_dtype",
            "applies to mixture-of-experts models only (give `moe` too)",
        ));
    }
    match &spec.groups {
        Some(groups) => {
            if spec.sliding_window.is_some() || spec.mla.is_some() {
                let key = if spec.mla.is_some() {
                    "mla"
                } else {
                    "sliding_window"
                };
                return Err(SpecError::new(
                    key,
                    "give either `groups` or the uniform shape's `sliding_window` / `mla`, \
                     not both: a group of attention = \"sliding\" or \"mla\" says it",
                ));
            }
            model.sliding_window = None;
            model.mla = None;
            model.groups = layer_groups(groups, &model)?;
        }
        None => {
            // A preset's groups hold unless the spec changes the uniform
            // shape's window or latent, which then describe every layer.
            if spec.sliding_window.is_none() && spec.mla.is_none() {
                model.groups = base.as_ref().map(|b| b.groups.clone()).unwrap_or_default();
            }
        }
    }
    if spec.all_global == Some(true) {
        model = model.all_global();
    }
    if !model.groups.is_empty() {
        let total: u64 = model.groups.iter().map(|g| u64::from(g.layers)).sum();
        if total != u64::from(model.layers) {
            return Err(SpecError::new(
                "groups",
                format!(
                    "the groups have {total} layers in all but the model has layers = {}",
                    model.layers
                ),
            ));
        }
    }
    for (key, max) in SHAPE_LIMITS {
        let v = match key {
            "layers" => model.layers,
            "heads" => model.heads,
            "kv_heads" => model.kv_heads,
            "head_dim" => model.head_dim,
            "hidden" => model.hidden,
            "intermediate" => model.intermediate,
            "vocab" => model.vocab,
            _ => model.max_model_len,
        };
        at_most(key, v, max)?;
    }
    if let Some(m) = model.mla {
        at_most("mla.kv_lora_rank", m.kv_lora_rank, 1 << 20)?;
        at_most("mla.qk_rope_dim", m.qk_rope_dim, 1 << 20)?;
    }
    // In u128: the shape fields are bounded, but their product is the point.
    let vectors: u128 = model
        .layer_groups()
        .iter()
        .map(|g| {
            let (count, len) = g.vectors_per_layer_per_gpu(1);
            u128::from(g.layers) * u128::from(count) * u128::from(len)
        })
        .sum();
    if vectors * 2 > MAX_KV_BYTES_PER_TOKEN {
        return Err(SpecError::new(
            "layers",
            format!(
                "the shape gives {} bytes of KV per token (bf16), implausibly large (at most {MAX_KV_BYTES_PER_TOKEN})",
                vectors * 2
            ),
        ));
    }
    if model.active_params > model.params {
        return Err(SpecError::new(
            "active_params",
            format!(
                "{} exceeds params ({}): active parameters are a subset",
                model.active_params, model.params
            ),
        ));
    }
    if model.heads % model.kv_heads != 0 {
        return Err(SpecError::new(
            "kv_heads",
            format!(
                "{} does not divide heads ({}): each KV head serves a whole group of query heads",
                model.kv_heads, model.heads
            ),
        ));
    }
    if let Some(w) = model.sliding_window {
        nonzero("sliding_window.window", w.window)?;
        if w.layers == 0 || w.layers > model.layers {
            return Err(SpecError::new(
                "sliding_window.layers",
                format!(
                    "must be between 1 and layers ({}), got {}",
                    model.layers, w.layers
                ),
            ));
        }
    }
    if let Some(m) = model.mla {
        nonzero("mla.kv_lora_rank", m.kv_lora_rank)?;
    }
    if let Some(moe) = model.moe {
        if moe.experts_per_token == 0 || moe.experts_per_token > moe.experts {
            return Err(SpecError::new(
                "moe.experts_per_token",
                format!(
                    "must be between 1 and experts ({}), got {}",
                    moe.experts, moe.experts_per_token
                ),
            ));
        }
    }
    Ok(model)
}

/// The most bytes one layer's recurrent state per sequence may have: 1 GiB
/// (Mamba-2 and Gated DeltaNet layers hold 0.1-2 MiB), so that a batch of
/// states stays far within 64 bits.
const MAX_STATE_BYTES: u64 = 1 << 30;

/// Validates `[[model.groups]]` against the rest of the model's shape.
fn layer_groups(
    specs: &[spec::LayerGroupSpec],
    model: &Model,
) -> Result<Vec<LayerGroup>, SpecError> {
    use spec::AttentionName as A;
    if specs.is_empty() {
        return Err(SpecError::new(
            "groups",
            "is empty: give at least one group, or leave `groups` out for a uniform model",
        ));
    }
    if specs.len() > MAX_LAYER_GROUPS {
        return Err(SpecError::new(
            "groups",
            format!(
                "{} groups; kvsim keeps at most {MAX_LAYER_GROUPS} (merge groups of the same kind)",
                specs.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(specs.len());
    for (i, g) in specs.iter().enumerate() {
        let key = |field: &str| format!("groups[{i}].{field}");
        let name = match g.attention {
            A::Full => "full",
            A::Sliding => "sliding",
            A::Chunked => "chunked",
            A::Mla => "mla",
            A::Recurrent => "recurrent",
            A::None => "none",
        };
        // Which optional fields the kind takes.
        let (heads, window, chunk, mla, state) = match g.attention {
            A::Full => (true, false, false, false, false),
            A::Sliding => (true, true, false, false, false),
            A::Chunked => (true, false, true, false, false),
            A::Mla => (false, false, false, true, false),
            A::Recurrent => (false, false, false, false, true),
            A::None => (false, false, false, false, false),
        };
        for (field, given, allowed) in [
            ("window", g.window.is_some(), window),
            ("chunk", g.chunk.is_some(), chunk),
            ("kv_heads", g.kv_heads.is_some(), heads),
            ("head_dim", g.head_dim.is_some(), heads),
            ("kv_lora_rank", g.kv_lora_rank.is_some(), mla),
            ("qk_rope_dim", g.qk_rope_dim.is_some(), mla),
            ("state_bytes", g.state_bytes.is_some(), state),
            (
                "kv_dtype",
                g.kv_dtype.is_some(),
                !matches!(g.attention, A::Recurrent | A::None),
            ),
        ] {
            if given && !allowed {
                return Err(SpecError::new(
                    key(field),
                    format!("does not apply to a group of attention = \"{name}\""),
                ));
            }
        }
        let required = |field: &str, v: Option<u32>| -> Result<u32, SpecError> {
            let v = v.ok_or_else(|| {
                SpecError::new(
                    key(field),
                    format!("missing: a group of attention = \"{name}\" needs it"),
                )
            })?;
            nonzero(&key(field), v)
        };
        let layers = nonzero(&key("layers"), g.layers)?;
        let kv_heads = at_most(
            &key("kv_heads"),
            nonzero(&key("kv_heads"), g.kv_heads.unwrap_or(model.kv_heads))?,
            1 << 16,
        )?;
        let head_dim = at_most(
            &key("head_dim"),
            nonzero(&key("head_dim"), g.head_dim.unwrap_or(model.head_dim))?,
            1 << 16,
        )?;
        if heads && model.heads % kv_heads != 0 {
            return Err(SpecError::new(
                key("kv_heads"),
                format!(
                    "{kv_heads} does not divide heads ({}): each KV head serves a whole group \
                     of query heads",
                    model.heads
                ),
            ));
        }
        let kind = match g.attention {
            A::Full => LayerKind::Full { kv_heads, head_dim },
            A::Sliding => LayerKind::Sliding {
                kv_heads,
                head_dim,
                window: required("window", g.window)?,
            },
            A::Chunked => LayerKind::Chunked {
                kv_heads,
                head_dim,
                chunk: required("chunk", g.chunk)?,
            },
            A::Mla => LayerKind::Mla {
                kv_lora_rank: at_most(
                    &key("kv_lora_rank"),
                    required("kv_lora_rank", g.kv_lora_rank)?,
                    1 << 20,
                )?,
                qk_rope_dim: at_most(
                    &key("qk_rope_dim"),
                    g.qk_rope_dim.ok_or_else(|| {
                        SpecError::new(key("qk_rope_dim"), "missing: an MLA group needs it")
                    })?,
                    1 << 20,
                )?,
            },
            A::Recurrent => {
                let state_bytes = g.state_bytes.ok_or_else(|| {
                    SpecError::new(
                        key("state_bytes"),
                        "missing: a recurrent group needs its state per sequence per layer",
                    )
                })?;
                if state_bytes == 0 || state_bytes > MAX_STATE_BYTES {
                    return Err(SpecError::new(
                        key("state_bytes"),
                        format!(
                            "must be between 1 and {MAX_STATE_BYTES} bytes per sequence per \
                             layer, got {state_bytes}"
                        ),
                    ));
                }
                LayerKind::Recurrent { state_bytes }
            }
            A::None => LayerKind::None,
        };
        out.push(LayerGroup {
            layers,
            kind,
            kv_dtype: g.kv_dtype,
        });
    }
    if out.iter().all(|g| g.kind == LayerKind::None) {
        return Err(SpecError::new(
            "groups",
            "every group is attention = \"none\": a model keeps something per sequence \
             (give its attention or recurrent layers)",
        ));
    }
    Ok(out)
}

fn resolve_gpu(spec: &spec::GpuSpec) -> Result<Gpu, SpecError> {
    let gpu = match spec {
        spec::GpuSpec::Name(name) => catalog::gpu(name).ok_or_else(|| {
            let known: Vec<_> = catalog::gpus().into_iter().map(|e| e.gpu.name).collect();
            SpecError::new(
                "gpu",
                format!("unknown GPU `{name}`; known: {}", known.join(", ")),
            )
        })?,
        spec::GpuSpec::Inline(g) => {
            let g = (**g).clone();
            if g.vram_bytes == 0 {
                return Err(SpecError::new("gpu.vram_bytes", "must be positive"));
            }
            positive("gpu.hbm_bandwidth", g.hbm_bandwidth)?;
            positive("gpu.peak_flops", g.peak_flops)?;
            for (key, peak) in [
                ("gpu.peak_flops_fp8", g.peak_flops_fp8),
                ("gpu.peak_flops_int8", g.peak_flops_int8),
                ("gpu.peak_flops_fp4", g.peak_flops_fp4),
            ] {
                if let Some(p) = peak {
                    positive(key, p)?;
                }
            }
            positive("gpu.interconnect_bandwidth", g.interconnect_bandwidth)?;
            positive("gpu.pcie_bandwidth", g.pcie_bandwidth)?;
            fraction("gpu.efficiency.mbu", g.efficiency.mbu)?;
            fraction("gpu.efficiency.mfu", g.efficiency.mfu)?;
            non_negative(
                "gpu.efficiency.step_overhead_s",
                g.efficiency.step_overhead_s,
            )?;
            layer_overhead(
                "gpu.efficiency.layer_overhead_s",
                g.efficiency.layer_overhead_s,
            )?;
            non_negative(
                "gpu.efficiency.allreduce_latency_s",
                g.efficiency.allreduce_latency_s,
            )?;
            if let Some(p) = g.price_per_hour {
                crate::ranges::PRICE_PER_HOUR.check("gpu.price_per_hour", p)?;
            }
            g
        }
    };
    if gpu.vram_bytes > MAX_VRAM_BYTES {
        return Err(SpecError::new(
            "gpu.vram_bytes",
            format!(
                "{} is implausibly large (at most {MAX_VRAM_BYTES}, 1 PiB)",
                gpu.vram_bytes
            ),
        ));
    }
    Ok(gpu)
}

/// The KV memory rule: `engine.memory_rule` and `engine.memory_fraction`, or
/// `hardware.memory_utilization` (the total-fraction rule's fraction), over
/// the engine preset's rule.
fn resolve_memory_rule(
    hardware: &spec::HardwareSpec,
    spec: &spec::EngineSpec,
    engine: &catalog::EngineDefaults,
) -> Result<MemoryRule, SpecError> {
    let default = engine.memory;
    let rule = spec
        .memory_rule
        .unwrap_or(spec::MemoryRuleName::of(default));
    // The rule with a placeholder fraction, for its names in messages.
    let named = rule.with(default.fraction());
    let fraction = match (hardware.memory_utilization, spec.memory_fraction) {
        (Some(_), Some(_)) => {
            return Err(SpecError::new(
                "hardware.memory_utilization",
                "give either hardware.memory_utilization or engine.memory_fraction, not both",
            ));
        }
        (Some(_), None) if !matches!(named, MemoryRule::TotalFraction(_)) => {
            return Err(SpecError::new(
                "hardware.memory_utilization",
                format!(
                    "is vLLM's gpu_memory_utilization (a fraction of the whole GPU), but the \
                     memory rule is {} (the engine's {}): set engine.memory_fraction instead",
                    named.name(),
                    named.engine_key()
                ),
            ));
        }
        (Some(u), None) => fraction("hardware.memory_utilization", u)?,
        (None, Some(f)) => fraction("engine.memory_fraction", f)?,
        (None, None) if spec::MemoryRuleName::of(default) == rule => default.fraction(),
        (None, None) => {
            return Err(SpecError::new(
                "engine.memory_fraction",
                format!(
                    "missing: engine.memory_rule = \"{}\" is not the rule of the engine \
                     defaults in force (the preset's, or vLLM's total-fraction without one), so \
                     give the fraction it takes",
                    named.name()
                ),
            ));
        }
    };
    Ok(rule.with(fraction))
}

/// The compute precision: `model.compute_dtype`, or the default for the
/// weights' format on this GPU; the GPU must have tensor cores for it.
fn resolve_compute_dtype(
    given: Option<ComputeDtype>,
    model: &Model,
    gpu: &Gpu,
) -> Result<ComputeDtype, SpecError> {
    let dtype = given.unwrap_or_else(|| ComputeDtype::default_for(model.weight_dtype, gpu));
    if gpu.peak_for(dtype).is_none() {
        return Err(SpecError::new(
            "model.compute_dtype",
            format!(
                "{} has no {dtype} tensor cores (its datasheet gives no {dtype} peak); use bf16 \
                 (weight-only quantization) or a GPU with {dtype} support",
                gpu.name
            ),
        ));
    }
    // Computing in a wider format than the weights are stored in is the
    // weight-only path; computing in a narrower one needs weights quantized
    // to it (activations are quantized on the fly, weights are not).
    let narrower = match dtype {
        ComputeDtype::Fp8 | ComputeDtype::Int8 => model.weight_dtype.bits() > 8,
        ComputeDtype::Fp4 => model.weight_dtype.bits() > 4,
        ComputeDtype::Bf16 | ComputeDtype::Fp16 => false,
    };
    if narrower {
        return Err(SpecError::new(
            "model.compute_dtype",
            format!(
                "{dtype} compute needs weights stored in {dtype} or narrower, but weight_dtype is \
                 {}: set model.weight_dtype too",
                model.weight_dtype
            ),
        ));
    }
    Ok(dtype)
}

#[allow(clippy::too_many_arguments)]
fn resolve_hardware(
    spec: &spec::HardwareSpec,
    engine_spec: &spec::EngineSpec,
    engine: &catalog::EngineDefaults,
    gpu: Gpu,
    model: &Model,
    compute_dtype: Option<ComputeDtype>,
    base_dir: &Path,
) -> Result<Deployment, SpecError> {
    let memory = resolve_memory_rule(spec, engine_spec, engine)?;
    let compute_dtype = resolve_compute_dtype(compute_dtype, model, &gpu)?;
    resolve_deployment(spec, gpu, model, memory, compute_dtype, engine, base_dir)
        .map_err(|e| e.under("hardware"))
}

fn resolve_deployment(
    spec: &spec::HardwareSpec,
    gpu: Gpu,
    model: &Model,
    memory: MemoryRule,
    compute_dtype: ComputeDtype,
    engine: &catalog::EngineDefaults,
    base_dir: &Path,
) -> Result<Deployment, SpecError> {
    let tp = at_most("tp", nonzero("tp", spec.tp.unwrap_or(1))?, 1024)?;
    tp_splits(model, tp).map_err(|reason| SpecError::new("tp", reason))?;
    // Precedence: explicit keys, then a calibration, then the GPU's defaults.
    let mut d = gpu.efficiency;
    if let Some(cal) = &spec.calibration {
        let c = match cal {
            spec::CalibrationSpec::File(file) => {
                let p = base_dir.join(file);
                crate::calibrate::read_calibration(&p)
                    .map_err(|e| SpecError::new("calibration", e.to_string()))?
            }
            spec::CalibrationSpec::Inline(c) => {
                c.validate().map_err(|e| e.under("calibration"))?;
                *c
            }
        };
        d.mbu = c.mbu;
        d.mfu = c.mfu;
        d.step_overhead_s = c.step_overhead_s;
    }
    // An error names where the value came from: the key itself, the
    // calibration (mbu, mfu and step overhead only), or the GPU's factors.
    let calibrated = spec.calibration.is_some();
    let key = |name: &str, explicit: bool, from_calibration: bool| {
        if explicit {
            name.to_string()
        } else if calibrated && from_calibration {
            format!("calibration.{name}")
        } else {
            format!("gpu.efficiency.{name}")
        }
    };
    let efficiency = Efficiency {
        mbu: fraction(
            &key("mbu", spec.mbu.is_some(), true),
            spec.mbu.unwrap_or(d.mbu),
        )?,
        mfu: fraction(
            &key("mfu", spec.mfu.is_some(), true),
            spec.mfu.unwrap_or(d.mfu),
        )?,
        step_overhead_s: ranges::STEP_OVERHEAD_S.check(
            &key("step_overhead_s", spec.step_overhead_s.is_some(), true),
            spec.step_overhead_s.unwrap_or(d.step_overhead_s),
        )?,
        layer_overhead_s: layer_overhead(
            &key("layer_overhead_s", spec.layer_overhead_s.is_some(), false),
            spec.layer_overhead_s.unwrap_or(d.layer_overhead_s),
        )?,
        allreduce_latency_s: ranges::ALLREDUCE_LATENCY_S.check(
            &key(
                "allreduce_latency_s",
                spec.allreduce_latency_s.is_some(),
                false,
            ),
            spec.allreduce_latency_s.unwrap_or(d.allreduce_latency_s),
        )?,
    };
    let router = spec.router.unwrap_or_default();
    let (session_imbalance, kv_router) = resolve_router_keys(spec, router)?;
    Ok(Deployment {
        gpu,
        tp,
        replicas: at_most(
            "replicas",
            nonzero("replicas", spec.replicas.unwrap_or(1))?,
            // Each replica is a whole engine with its own cache.
            1024,
        )?,
        router,
        session_imbalance,
        kv_router,
        memory,
        compute_dtype,
        efficiency,
        runtime_reserve: spec
            .runtime_reserve_gib
            .map(|g| {
                ranges::RUNTIME_RESERVE_GIB
                    .check("runtime_reserve_gib", g)
                    .map(|g| (g * GIB as f64) as u64)
            })
            .transpose()?
            .or(engine.runtime_reserve),
    })
}

/// The routers' own keys: `session_imbalance` for the affinity routers and
/// `[kv_router]` for `kv-aware`, each refused with any other router (a key
/// that would silently do nothing is a mistake in the file).
fn resolve_router_keys(
    spec: &spec::HardwareSpec,
    router: Router,
) -> Result<(u32, KvRouterConfig), SpecError> {
    let imbalance = match spec.session_imbalance {
        Some(_) if !matches!(router, Router::SessionAffinity | Router::PrefixAware) => {
            return Err(SpecError::new(
                "session_imbalance",
                format!(
                    "applies only with router = \"session-affinity\" or \"prefix-aware\", \
                     not \"{}\"",
                    router.name()
                ),
            ));
        }
        Some(n) => n,
        None => crate::scheduler::DEFAULT_IMBALANCE,
    };
    let mut kv = KvRouterConfig::default();
    if let Some(t) = &spec.kv_router {
        if router != Router::KvAware {
            return Err(SpecError::new(
                "kv_router",
                format!(
                    "applies only with router = \"kv-aware\", not \"{}\"",
                    router.name()
                ),
            ));
        }
        let weight = |name: &str, v: Option<f64>, default: f64, range: &ranges::Range| {
            v.map_or(Ok(default), |v| {
                range.check(&format!("kv_router.{name}"), v)
            })
        };
        kv = KvRouterConfig {
            prefill_load_scale: weight(
                "prefill_load_scale",
                t.prefill_load_scale,
                kv.prefill_load_scale,
                &ranges::PREFILL_LOAD_SCALE,
            )?,
            overlap_score_credit: weight(
                "overlap_score_credit",
                t.overlap_score_credit,
                kv.overlap_score_credit,
                &ranges::CACHE_HIT_WEIGHT,
            )?,
            host_cache_hit_weight: weight(
                "host_cache_hit_weight",
                t.host_cache_hit_weight,
                kv.host_cache_hit_weight,
                &ranges::CACHE_HIT_WEIGHT,
            )?,
            disk_cache_hit_weight: weight(
                "disk_cache_hit_weight",
                t.disk_cache_hit_weight,
                kv.disk_cache_hit_weight,
                &ranges::CACHE_HIT_WEIGHT,
            )?,
            shared_cache_multiplier: weight(
                "shared_cache_multiplier",
                t.shared_cache_multiplier,
                kv.shared_cache_multiplier,
                &ranges::CACHE_HIT_WEIGHT,
            )?,
        };
    }
    Ok((imbalance, kv))
}

/// The most memory one GPU may have (1 PiB): budgets times `tp` stay in 64 bits.
const MAX_VRAM_BYTES: u64 = 1 << 50;

fn resolve_cache(
    spec: &spec::CacheSpec,
    model: &Model,
    engine: &catalog::EngineDefaults,
) -> Result<CacheConfig, SpecError> {
    let policy = spec.policy.unwrap_or(PolicyName::Paged);
    // A preset's prefix caching applies where it can: not to contiguous
    // placement, and not to models with sliding-window, chunked or recurrent
    // layers (vLLM and SGLang turn it off for those too; kvsim models it
    // only where every layer keeps every token).
    let every_token_kept = model
        .layer_groups()
        .iter()
        .all(|g| g.span().is_all() && matches!(g.state_bytes(), Some(0)));
    let prefix_caching = spec.prefix_caching.unwrap_or(
        engine.prefix_caching
            && policy != PolicyName::Contiguous
            && every_token_kept
            && spec.window.is_none(),
    );
    if prefix_caching && policy == PolicyName::Contiguous {
        return Err(SpecError::new(
            "prefix_caching",
            "needs blocks to share: use a paged-family policy, not contiguous",
        ));
    }
    let block_size = nonzero("block_size", spec.block_size.unwrap_or(engine.block_size))?;
    let placement = match policy {
        // Contiguous placement is token by token: a block size written for the
        // paged presets is not used, so one file can sweep every policy.
        PolicyName::Contiguous => Placement::Contiguous,
        _ => Placement::Paged { block_size },
    };
    // The window is what the sliding preset keeps; the other presets do not
    // use it (as contiguous placement does not use a block size), so one
    // [cache] table can sweep every policy.
    let window = match (spec.window, policy) {
        (Some(w), PolicyName::Sliding) => Some(nonzero("window", w)?),
        (Some(w), _) => {
            nonzero("window", w)?;
            None
        }
        (None, PolicyName::Sliding) => Some(model.sliding_window.map(|w| w.window).ok_or_else(|| {
            SpecError::new(
                "window",
                format!(
                    "the sliding policy needs a window: {} has no sliding_window, so set cache.window",
                    model.name
                ),
            )
        })?),
        (None, _) => None,
    };
    if let Some(w) = window {
        if w > model.max_model_len {
            return Err(SpecError::new(
                "window",
                format!(
                    "{w} exceeds the model's max_model_len ({}): the window would never apply",
                    model.max_model_len
                ),
            ));
        }
    }
    let kv_dtype = spec.kv_dtype.unwrap_or(match policy {
        PolicyName::Quantized => Dtype::Fp8,
        _ => Dtype::Bf16,
    });
    if policy == PolicyName::Quantized && matches!(kv_dtype, Dtype::Fp16 | Dtype::Bf16) {
        return Err(SpecError::new(
            "kv_dtype",
            format!("the quantized policy needs fp8, int8 or int4, got {kv_dtype}"),
        ));
    }
    Ok(CacheConfig {
        policy,
        placement,
        reserve: spec.reserve.unwrap_or(Reserve::MaxTokens),
        allocator: spec.allocator.unwrap_or_default(),
        window,
        kv_dtype,
        prefix_caching,
    })
}

/// vLLM's default `swap_space`: 4 GiB of host memory per GPU.
const SWAP_BYTES_PER_GPU: u64 = 4 << 30;

fn resolve_scheduler(
    spec: &spec::SchedulerSpec,
    cache: &CacheConfig,
    tp: u32,
    engine: &catalog::EngineDefaults,
) -> Result<SchedulerConfig, SpecError> {
    let admission = spec
        .admission
        .or(engine.admission)
        .unwrap_or(match cache.placement {
            Placement::Contiguous => Admission::Reserve,
            Placement::Paged { .. } => Admission::Optimistic,
        });
    let restart_s = ranges::RESTART_S.check("restart_s", spec.restart_s.unwrap_or(60.0))?;
    Ok(SchedulerConfig {
        max_num_seqs: at_most(
            "max_num_seqs",
            nonzero(
                "max_num_seqs",
                spec.max_num_seqs.unwrap_or(engine.max_num_seqs),
            )?,
            1 << 24,
        )?,
        max_batched_tokens: at_most(
            "max_batched_tokens",
            nonzero(
                "max_batched_tokens",
                spec.max_batched_tokens.unwrap_or(engine.max_batched_tokens),
            )?,
            1 << 30,
        )?,
        chunked_prefill: spec.chunked_prefill.unwrap_or(engine.chunked_prefill),
        admission,
        on_oom: spec.on_oom.unwrap_or(OnOom::PreemptRecompute),
        restart: SimDuration::from_secs_f64(restart_s),
        queue_timeout: spec
            .queue_timeout_s
            .map(|v| {
                ranges::LATENCY_S
                    .check("queue_timeout_s", v)
                    .map(SimDuration::from_secs_f64)
            })
            .transpose()?,
        swap_bytes: match spec.swap_bytes {
            Some(v) => ranges::SWAP_BYTES.check("swap_bytes", v)? as u64,
            None => SWAP_BYTES_PER_GPU * u64::from(tp),
        },
    })
}

#[cfg(test)]
mod tests;
