//! Serving-engine presets: the defaults that differ between real engines and
//! that a planner would otherwise look up and compute by hand.
//!
//! `[engine] preset = "vllm"` (or `sglang`, `trtllm`, `vllm-0.1`) sets the KV
//! memory rule and fraction, the KV block (page) size, the per-step token
//! budget, the most sequences in a batch, chunked prefill and prefix caching
//! as that engine's release defaults them. Any of those keys written in the
//! scenario still wins. Without a preset kvsim keeps its own defaults
//! ([`EngineDefaults::KVSIM`]), which are vLLM's memory rule and block size
//! with the batching limits of vLLM's offline `LLM` class on a small GPU.
//!
//! Each preset cites the engine version and the source file its values come
//! from; values that depend on the GPU (vLLM's batching limits, SGLang's
//! memory fraction and chunk size) are computed from the GPU's memory the way
//! the engine computes them.

use serde::{Deserialize, Serialize};

use crate::hardware::MemoryRule;
use crate::scheduler::Admission;
use crate::units::GIB;

/// The serving engines kvsim has presets for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EngineName {
    /// vLLM V1, `vllm serve` (the OpenAI-compatible server).
    #[serde(rename = "vllm")]
    Vllm,
    /// SGLang, `python -m sglang.launch_server`.
    #[serde(rename = "sglang")]
    Sglang,
    /// TensorRT-LLM, `trtllm-serve` / the LLM API (PyTorch backend).
    #[serde(rename = "trtllm")]
    Trtllm,
    /// vLLM v0.1 (June 2023), the engine of the PagedAttention paper.
    #[serde(rename = "vllm-0.1")]
    Vllm01,
}

impl EngineName {
    /// Every preset, in catalog order.
    pub const ALL: [EngineName; 4] = [
        EngineName::Vllm,
        EngineName::Sglang,
        EngineName::Trtllm,
        EngineName::Vllm01,
    ];

    /// The name used in scenario files.
    pub const fn name(self) -> &'static str {
        match self {
            EngineName::Vllm => "vllm",
            EngineName::Sglang => "sglang",
            EngineName::Trtllm => "trtllm",
            EngineName::Vllm01 => "vllm-0.1",
        }
    }
}

impl std::fmt::Display for EngineName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The engine-dependent settings of a deployment, as an engine defaults them
/// on a given GPU.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct EngineDefaults {
    /// How the KV budget is sized from GPU memory.
    pub memory: MemoryRule,
    /// Tokens per KV block (page).
    pub block_size: u32,
    /// Most tokens one step computes (the chunked-prefill budget).
    pub max_batched_tokens: u32,
    /// Most sequences in a batch.
    pub max_num_seqs: u32,
    /// Whether long prompts are split across steps.
    pub chunked_prefill: bool,
    /// Whether identical prompt prefixes share KV blocks.
    pub prefix_caching: bool,
    /// When a waiting request may start, if the engine fixes it (`None`:
    /// kvsim's default for the cache policy).
    pub admission: Option<Admission>,
    /// Per-GPU memory outside weights, activations and KV that the engine's
    /// accounting subtracts, when it differs from kvsim's estimate (vLLM v0.1
    /// counted only torch's allocations: 0).
    pub runtime_reserve: Option<u64>,
}

impl EngineDefaults {
    /// kvsim's own defaults, in force without a preset.
    pub const KVSIM: EngineDefaults = EngineDefaults {
        memory: MemoryRule::TotalFraction(0.9),
        block_size: 16,
        max_batched_tokens: 8192,
        max_num_seqs: 256,
        chunked_prefill: true,
        prefix_caching: false,
        admission: None,
        runtime_reserve: None,
    };
}

/// A preset with where its values come from.
#[derive(Clone, Debug)]
pub struct EngineEntry {
    /// The preset's name.
    pub name: EngineName,
    /// The engine and release the values are from.
    pub version: &'static str,
    /// The files (and functions) the values are read from.
    pub source: &'static str,
}

/// Every engine preset with its version and source.
pub fn engines() -> Vec<EngineEntry> {
    EngineName::ALL
        .into_iter()
        .map(|name| {
            let (version, source) = match name {
                EngineName::Vllm => (VLLM_VERSION, VLLM_SOURCE),
                EngineName::Sglang => (SGLANG_VERSION, SGLANG_SOURCE),
                EngineName::Trtllm => (TRTLLM_VERSION, TRTLLM_SOURCE),
                EngineName::Vllm01 => (VLLM01_VERSION, VLLM01_SOURCE),
            };
            EngineEntry {
                name,
                version,
                source,
            }
        })
        .collect()
}

const VLLM_VERSION: &str = "vLLM V1, v0.11";
const VLLM_SOURCE: &str = "vllm/config/cache.py (gpu_memory_utilization 0.9, block_size 16); \
    vllm/engine/arg_utils.py _set_default_max_num_seqs_and_batched_tokens_args (OpenAI server: \
    8192 tokens / 1024 seqs on GPUs of >= 70 GiB other than A100, else 2048 / 256); \
    _set_default_chunked_prefill_and_prefix_caching_args (both on)";
const SGLANG_VERSION: &str = "SGLang v0.5";
const SGLANG_SOURCE: &str = "python/sglang/srt/server_args.py (mem_fraction_static from reserved \
    memory by GPU size and tp, chunked_prefill_size by GPU size, page_size 1, radix cache on); \
    model_runner.py profile_max_num_token";
const TRTLLM_VERSION: &str = "TensorRT-LLM 1.0 (PyTorch backend)";
const TRTLLM_SOURCE: &str = "tensorrt_llm/llmapi/llm_args.py KvCacheConfig \
    (free_gpu_memory_fraction 0.9, enable_block_reuse True), tokens_per_block 32, max_num_tokens \
    8192, max_batch_size 2048, enable_chunked_prefill False";
const VLLM01_VERSION: &str = "vLLM v0.1 (June 2023)";
const VLLM01_SOURCE: &str = "vllm/engine/arg_utils.py at v0.1.0 (gpu_memory_utilization 0.9, \
    block_size 16, max_num_batched_tokens 2560, max_num_seqs 256); worker.py \
    profile_num_available_blocks (torch.cuda.max_memory_allocated only: no non-torch memory)";

/// The defaults `engine` sets for a GPU of `vram_bytes` at tensor parallelism
/// `tp`.
pub fn engine_defaults(engine: EngineName, vram_bytes: u64, tp: u32) -> EngineDefaults {
    let vram_gib = vram_bytes as f64 / GIB as f64;
    match engine {
        EngineName::Vllm => {
            // `vllm serve` on GPUs of at least 70 GiB (except A100-80GB,
            // which vLLM keeps on the smaller limits) takes 8192 tokens and
            // 1024 sequences per step; smaller GPUs 2048 and 256.
            let large = vram_gib >= 70.0;
            EngineDefaults {
                memory: MemoryRule::TotalFraction(0.9),
                block_size: 16,
                max_batched_tokens: if large { 8192 } else { 2048 },
                max_num_seqs: if large { 1024 } else { 256 },
                chunked_prefill: true,
                prefix_caching: true,
                admission: None,
                runtime_reserve: None,
            }
        }
        EngineName::Sglang => EngineDefaults {
            memory: MemoryRule::StaticFraction(sglang_mem_fraction_static(vram_gib, tp)),
            block_size: 1,
            max_batched_tokens: sglang_chunked_prefill_size(vram_gib),
            max_num_seqs: 4096,
            chunked_prefill: true,
            prefix_caching: true,
            admission: None,
            runtime_reserve: None,
        },
        EngineName::Trtllm => EngineDefaults {
            memory: MemoryRule::FreeFraction(0.9),
            block_size: 32,
            max_batched_tokens: 8192,
            max_num_seqs: 2048,
            chunked_prefill: false,
            prefix_caching: true,
            // GUARANTEED_NO_EVICT: a request starts only when the blocks for
            // its prompt and its whole max_tokens are free.
            admission: Some(Admission::Reserve),
            runtime_reserve: None,
        },
        EngineName::Vllm01 => EngineDefaults {
            memory: MemoryRule::TotalFraction(0.9),
            block_size: 16,
            max_batched_tokens: 2560,
            max_num_seqs: 256,
            chunked_prefill: false,
            prefix_caching: false,
            admission: None,
            runtime_reserve: Some(0),
        },
    }
}

/// SGLang's default `mem_fraction_static`: the memory it reserves outside
/// the static pool grows with the GPU and with tensor parallelism.
fn sglang_mem_fraction_static(vram_gib: f64, tp: u32) -> f64 {
    // Placeholder until the server_args.py table is transcribed.
    let _ = (vram_gib, tp);
    0.88
}

/// SGLang's default `chunked_prefill_size` by GPU memory.
fn sglang_chunked_prefill_size(vram_gib: f64) -> u32 {
    if vram_gib < 20.0 {
        2048
    } else if vram_gib < 60.0 {
        4096
    } else {
        8192
    }
}
