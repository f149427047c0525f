//! The scenario file as written: serde structs that mirror the TOML, with
//! `deny_unknown_fields` so a misspelt key is an error, not a silent default.
//! Validation into runtime types happens in [`super::Scenario::from_spec`].

use serde::{Deserialize, Serialize};

use crate::cache::{Allocator, PolicyName, Reserve};
use crate::model::{Dtype, Mla, Moe, SlidingWindow};
use crate::scheduler::{Admission, OnOom};
use crate::traffic::TrafficSpec;

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Name of the scenario; outputs go to `output/<name>/` by default.
    pub name: String,
    /// Free-text description, echoed in `summary.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seed of every random stream (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Stop issuing requests after this many (exclusive with `duration_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Stop issuing requests after this many simulated seconds (exclusive with
    /// `requests`). In-flight requests are always run to completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Independent runs per sweep point (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicates: Option<u32>,
    /// The model.
    pub model: ModelSpec,
    /// GPUs and their efficiency factors.
    pub hardware: HardwareSpec,
    /// Arrivals and lengths.
    pub traffic: TrafficSpec,
    /// The serving engine whose defaults apply (memory rule, block size,
    /// batching limits, prefix caching).
    #[serde(default, skip_serializing_if = "EngineSpec::is_empty")]
    pub engine: EngineSpec,
    /// KV cache policy.
    #[serde(default)]
    pub cache: CacheSpec,
    /// Batching limits and out-of-memory behaviour.
    #[serde(default)]
    pub scheduler: SchedulerSpec,
    /// Service-level objectives for goodput.
    #[serde(default)]
    pub slo: SloSpec,
    /// What to record.
    #[serde(default)]
    pub output: OutputSpec,
    /// Tolerances of `kvsim check`.
    #[serde(default)]
    pub check: super::commands::CheckSpec,
    /// Capacity planning (used by `kvsim plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<super::commands::PlanSpec>,
    /// Sweep axes: dotted key path = list of values (used by `kvsim sweep`).
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub sweep: toml::Table,
    /// Prefill/decode disaggregation (absent: colocated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<super::disagg::DeploymentSpec>,
}

/// `[model]`: a catalog preset, optionally with fields overridden, or every
/// field given inline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // each field is the `Model` field of the same name
pub struct ModelSpec {
    /// Catalog name (`kvsim catalog models`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// A Hugging Face `config.json` to read the model from (relative to the
    /// scenario file's directory), instead of a preset; the other keys
    /// override what it gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf_config: Option<std::path::PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_params: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_heads: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<SlidingWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mla: Option<Mla>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<Moe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_dtype: Option<Dtype>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_dtype: Option<Dtype>,
    /// The layers by kind (`[[model.groups]]`), for models whose layers are
    /// not alike: sliding, chunked, MLA, recurrent or cache-less groups.
    /// Replaces `sliding_window` and `mla`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<LayerGroupSpec>>,
    /// What-if: every sliding, chunked and recurrent layer made a full
    /// attention layer keeping every token (default false), to measure what
    /// the model's windows, chunks and states buy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_global: Option<bool>,
    /// The precision the tensor cores compute in: `bf16`, `fp16`, `fp8`,
    /// `int8` or `fp4` (default: fp8 for fp8 weights on a GPU with fp8 tensor
    /// cores, bf16 for weight-only int8/int4 and on older GPUs, the weights'
    /// own format for 16-bit models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_dtype: Option<crate::hardware::ComputeDtype>,
}

/// The attention kind of a `[[model.groups]]` entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionName {
    /// Attention over the whole context.
    Full,
    /// Attention over the last `window` tokens.
    Sliding,
    /// Attention within chunks of `chunk` tokens.
    Chunked,
    /// Multi-head latent attention (`kv_lora_rank`, `qk_rope_dim`).
    Mla,
    /// A recurrent state of `state_bytes` per sequence per layer.
    Recurrent,
    /// No cache at all (MLP-only layers).
    None,
}

/// One `[[model.groups]]` entry: `layers` layers of one kind. Fields that
/// do not belong to the kind are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerGroupSpec {
    /// Layers in the group.
    pub layers: u32,
    /// What they are: `full`, `sliding`, `chunked`, `mla`, `recurrent`, `none`.
    pub attention: AttentionName,
    /// Tokens a sliding layer attends to (`sliding` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
    /// Tokens per chunk (`chunked` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u32>,
    /// KV heads (full, sliding, chunked; default: `model.kv_heads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_heads: Option<u32>,
    /// Head dimension (full, sliding, chunked; default: `model.head_dim`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u32>,
    /// Rank of the compressed KV latent (`mla` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_lora_rank: Option<u32>,
    /// Dimension of the decoupled rotary key (`mla` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qk_rope_dim: Option<u32>,
    /// Bytes of one layer's state per sequence (`recurrent` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_bytes: Option<u64>,
    /// Element format of this group's cache (default: `cache.kv_dtype`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_dtype: Option<Dtype>,
}

/// `gpu = "h100-sxm"` or an inline table with the [`crate::hardware::Gpu`] fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GpuSpec {
    /// A catalog name (`kvsim catalog gpus`).
    Name(String),
    /// A GPU described inline.
    Inline(Box<crate::hardware::Gpu>),
}

/// `[hardware]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareSpec {
    /// The GPU type.
    pub gpu: GpuSpec,
    /// Tensor-parallel degree (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tp: Option<u32>,
    /// Replicas (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// How a cluster's load balancer routes requests (default round-robin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<crate::scheduler::Router>,
    /// Unfinished requests a session's (`session-affinity`) or a shared
    /// prefix's (`prefix-aware`) home replica may have above the least
    /// loaded replica before a request goes elsewhere (default 8). Only with
    /// those routers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_imbalance: Option<u32>,
    /// The `kv-aware` router's weights (`[hardware.kv_router]`). Only with
    /// `router = "kv-aware"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_router: Option<KvRouterSpec>,
    /// vLLM's `gpu_memory_utilization`: the fraction of each GPU's whole
    /// memory for weights, activations, runtime and KV (default 0.9, vLLM's
    /// default). Only with the `total-fraction` memory rule; the general key
    /// is `engine.memory_fraction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_utilization: Option<f64>,
    /// Override of the GPU's default model bandwidth utilization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mbu: Option<f64>,
    /// Override of the GPU's default model FLOPs utilization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfu: Option<f64>,
    /// Override of the GPU's default per-step overhead, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_overhead_s: Option<f64>,
    /// Override of the GPU's default fixed cost per layer per step, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_overhead_s: Option<f64>,
    /// Override of the GPU's default all-reduce latency, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allreduce_latency_s: Option<f64>,
    /// Effective PCIe bandwidth per GPU per direction for KV tiers, GB/s
    /// (default 0.8 of the GPU's nominal link: 51.2 GB/s on Gen5 x16, as
    /// vLLM's blog measured for 2 MB block copies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_gbps: Option<f64>,
    /// Fixed cost per KV block copied over PCIe, microseconds (default 3.3,
    /// fitted to vLLM's published copy throughput by block size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_block_us: Option<f64>,
    /// NIC bandwidth per GPU to a remote KV tier, GB/s (default 45: a
    /// 400 Gb/s NIC per GPU at 90 % of line rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic_gbps: Option<f64>,
    /// Fixed cost of each transfer over the NIC, microseconds (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic_latency_us: Option<f64>,
    /// Override of the per-GPU runtime reserve (CUDA context, library
    /// workspaces, NCCL buffers), GiB. The default is vLLM V1's measured
    /// non-torch memory; 0 reproduces vLLM before v0.4, which counted only
    /// torch allocations (`torch.cuda.max_memory_allocated()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_reserve_gib: Option<f64>,
    /// Fitted efficiency coefficients (`kvsim calibrate`): a file path
    /// (relative to the scenario) or an inline `{ mbu, mfu, step_overhead_s }`.
    /// Explicit `mbu`, `mfu`, `step_overhead_s` keys still take precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationSpec>,
}

/// `[hardware.kv_router]`: the weights of NVIDIA Dynamo's KV router cost
/// (see [`crate::scheduler::KvRouterConfig`], which gives the defaults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvRouterSpec {
    /// Multiplies the prefill term (default 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_load_scale: Option<f64>,
    /// Prefill blocks saved per prompt block cached in GPU memory (default
    /// 1.0, at most 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_score_credit: Option<f64>,
    /// Prefill blocks saved per prompt block in host memory (default 0.75).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cache_hit_weight: Option<f64>,
    /// Prefill blocks saved per prompt block on disk (default 0.25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_cache_hit_weight: Option<f64>,
    /// Prefill blocks saved per prompt block in a remote tier shared by the
    /// replicas (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_cache_multiplier: Option<f64>,
}

/// `calibration = "file.toml"` or `calibration = { mbu, mfu, step_overhead_s }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CalibrationSpec {
    /// A calibration file written by `kvsim calibrate`.
    File(String),
    /// The coefficients inline.
    Inline(crate::calibrate::Calibration),
}

/// `[engine]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSpec {
    /// A serving engine's defaults (`kvsim catalog engines`): `vllm`,
    /// `sglang`, `trtllm` or `vllm-0.1`. Explicit keys still override them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<crate::catalog::EngineName>,
    /// How the KV budget is sized from GPU memory: `total-fraction` (vLLM),
    /// `free-fraction` (TensorRT-LLM) or `static-fraction` (SGLang).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_rule: Option<MemoryRuleName>,
    /// The fraction the memory rule takes, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_fraction: Option<f64>,
}

impl EngineSpec {
    /// Whether no key is set (the table is then left out of echoes).
    pub fn is_empty(&self) -> bool {
        *self == EngineSpec::default()
    }
}

/// `engine.memory_rule` values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)] // see `crate::hardware::MemoryRule`
pub enum MemoryRuleName {
    TotalFraction,
    FreeFraction,
    StaticFraction,
}

impl MemoryRuleName {
    /// The name of `rule`'s kind.
    pub fn of(rule: crate::hardware::MemoryRule) -> Self {
        use crate::hardware::MemoryRule as R;
        match rule {
            R::TotalFraction(_) => MemoryRuleName::TotalFraction,
            R::FreeFraction(_) => MemoryRuleName::FreeFraction,
            R::StaticFraction(_) => MemoryRuleName::StaticFraction,
        }
    }

    /// The rule of this kind taking `fraction`.
    pub fn with(self, fraction: f64) -> crate::hardware::MemoryRule {
        use crate::hardware::MemoryRule as R;
        match self {
            MemoryRuleName::TotalFraction => R::TotalFraction(fraction),
            MemoryRuleName::FreeFraction => R::FreeFraction(fraction),
            MemoryRuleName::StaticFraction => R::StaticFraction(fraction),
        }
    }
}

/// `[cache]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// Preset: `contiguous`, `paged` (default), `sliding` or `quantized`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyName>,
    /// Contiguous reservation rule (default `max-tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<Reserve>,
    /// How contiguous regions are allocated: `first-fit` (default) or `buddy`;
    /// not used by paged placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocator: Option<Allocator>,
    /// Tokens per block for paged placement (default 16, vLLM's default);
    /// not used by contiguous placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// Tokens the `sliding` policy keeps per sequence in every layer (default:
    /// the model's window); not used by the other policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
    /// KV element format (default bf16; fp8 for `quantized`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_dtype: Option<Dtype>,
    /// Share full blocks of identical prefixes, vLLM's automatic prefix caching
    /// (default false; paged family only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_caching: Option<bool>,
    /// KV tiers below HBM (`[[cache.tiers]]`): host memory, local SSD, a
    /// remote store shared by the replicas; at most one of each kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<TierSpec>>,
    /// Where a tier hit's transfer time is charged: `async` (default, vLLM:
    /// the request waits for its load) or `layerwise` (SGLang, LMCache
    /// `use_layerwise`: overlapped with the step's compute). Only with tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::cache::tiers::LoadMode>,
    /// Load a tier hit only when its transfer ends before the tokens could be
    /// recomputed (Mooncake's rule; default false, as vLLM, LMCache and
    /// SGLang load every hit). Only with tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_if_cheaper: Option<bool>,
}

/// One `[[cache.tiers]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// `host`, `ssd` or `remote`.
    pub kind: crate::cache::tiers::TierKind,
    /// GB (1e9 bytes) it holds: per replica for `host` and `ssd`, for the
    /// whole deployment for `remote`.
    pub capacity_gb: f64,
    /// Media read bandwidth, GB/s (default: `host` as fast as its PCIe link,
    /// `ssd` 6.5, `remote` the NICs of every GPU of the deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_gbps: Option<f64>,
    /// Media write bandwidth, GB/s (default: `host` as fast as its PCIe link,
    /// `ssd` 3.5, `remote` the NICs of every GPU of the deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_gbps: Option<f64>,
    /// Fixed cost of each transfer, microseconds (default: `host` 0, `ssd`
    /// 60, `remote` 0 beyond the NIC's own latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<f64>,
    /// What goes down: `write-through` (default: every computed block) or
    /// `on-evict` (blocks evicted from the tier above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<crate::cache::tiers::StorePolicy>,
}

/// `[scheduler]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSpec {
    /// Most sequences running at once (default 256, vLLM's `max_num_seqs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_num_seqs: Option<u32>,
    /// Most tokens in one step (default 8192, vLLM's `max_num_batched_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batched_tokens: Option<u32>,
    /// Split long prompts across steps (default true, as vLLM V1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunked_prefill: Option<bool>,
    /// `reserve` or `optimistic` (default: reserve for contiguous, optimistic otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
    /// What happens when a running sequence cannot grow (default `preempt-recompute`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_oom: Option<OnOom>,
    /// Seconds a crashed server is down before it serves again (default 60: an
    /// assumption, not a measurement; reloading weights and warming up takes
    /// tens of seconds for 7-8B models and minutes for 70B ones, so set your own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_s: Option<f64>,
    /// Host memory for KV swapped out by `preempt-swap`, bytes per replica
    /// (default 4 GiB per GPU, vLLM's `swap_space`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_bytes: Option<f64>,
    /// Seconds a request may wait for admission before it times out (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_timeout_s: Option<f64>,
}

/// `[slo]`: per-request objectives; a request meeting all of them counts toward goodput.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Time to first token, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_p99: Option<f64>,
    /// Time per output token, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_p99: Option<f64>,
    /// End-to-end latency, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_p99: Option<f64>,
}

/// `[output]`: what a run records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Timeline sampling period in seconds (default: one row per engine
    /// step, thinned to at most `timeline_max_rows` rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline_interval_s: Option<f64>,
    /// Without `timeline_interval_s`, the most rows the timeline keeps per
    /// replica (default [`crate::metrics::DEFAULT_TIMELINE_MAX_ROWS`]): every
    /// step while they fit, then the first step of each interval of the
    /// narrowest of 1 ms, 2 ms, 10 ms, 20 ms, 100 ms, ... that fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline_max_rows: Option<u64>,
    /// Format of `kvsim run`'s per-request and per-step tables (default
    /// `csv`; `--format` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TableFormat>,
    /// Whether every request's record is kept (default `"auto"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<RecordsMode>,
}

/// The format of a run's `requests` and `timeline` tables.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// `requests.csv` and `timeline.csv`.
    #[default]
    Csv,
    /// `requests.parquet` and `timeline.parquet` (builds with the `parquet`
    /// feature).
    Parquet,
}

impl TableFormat {
    /// The file extension of the tables.
    pub const fn extension(self) -> &'static str {
        match self {
            TableFormat::Csv => "csv",
            TableFormat::Parquet => "parquet",
        }
    }
}

/// `output.records`: what a run keeps of each request.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordsMode {
    /// Exact for runs expected to issue at most
    /// [`AUTO_STREAMING_REQUESTS`](crate::scenario::AUTO_STREAMING_REQUESTS)
    /// requests, streaming beyond.
    #[default]
    Auto,
    /// Every record kept until the run ends: `requests.csv`, exact
    /// percentiles; memory grows with the requests.
    Exact,
    /// Each record folded into the summary as its request ends and dropped:
    /// percentiles from sketches (1 % relative error), no `requests.csv`,
    /// a bounded timeline; memory constant in the requests.
    Streaming,
}
