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

use crate::hardware::{Gpu, MemoryRule};
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

const VLLM_VERSION: &str = "vLLM V1 (v0.10-v0.11), `vllm serve`";
const VLLM_SOURCE: &str = "vllm/config/cache.py (gpu_memory_utilization 0.9, block_size 16); \
    vllm/engine/arg_utils.py EngineArgs.get_batch_defaults (OpenAI server: 8192 tokens and 1024 \
    sequences per step when the device has >= 70 GiB and is not an A100, else 2048 and 256; \
    \"Setting large max_num_batched_tokens for A100 reduces throughput, see PR #17885\"); \
    V1 turns chunked prefill and prefix caching on";
const SGLANG_VERSION: &str = "SGLang v0.5, `python -m sglang.launch_server`";
const SGLANG_SOURCE: &str = "python/sglang/srt/server_args.py _handle_gpu_memory_settings \
    (chunked_prefill_size and cuda_graph_max_bs by GPU memory; mem_fraction_static = (gpu_mem - \
    reserved) / gpu_mem with reserved = 512 MB + 1.5 MB per chunked-prefill token + 2 MB per \
    CUDA-graph batch + tp / 8 GB, at least 10 GB above 60 GB of memory); page_size 1; radix \
    cache on";
const TRTLLM_VERSION: &str = "TensorRT-LLM 1.0 (PyTorch backend), trtllm-serve / LLM API";
const TRTLLM_SOURCE: &str = "tensorrt_llm/llmapi/llm_args.py: KvCacheConfig \
    (free_gpu_memory_fraction \"Default is 90%\", tokens_per_block 32, enable_block_reuse on), \
    max_batch_size 2048, max_num_tokens 8192, enable_chunked_prefill off, \
    SchedulerConfig capacity_scheduler_policy GUARANTEED_NO_EVICT";
const VLLM01_VERSION: &str = "vLLM v0.1 (June 2023)";
const VLLM01_SOURCE: &str = "vllm/engine/arg_utils.py at v0.1.0 (gpu_memory_utilization 0.9, \
    block_size 16, max_num_batched_tokens 2560, max_num_seqs 256); worker.py \
    profile_num_available_blocks (torch.cuda.max_memory_allocated only: no non-torch memory)";

/// The defaults `engine` sets on `gpu` at tensor parallelism `tp`.
pub fn engine_defaults(engine: EngineName, gpu: &Gpu, tp: u32) -> EngineDefaults {
    let vram_gib = gpu.vram_bytes as f64 / GIB as f64;
    match engine {
        EngineName::Vllm => {
            // `vllm serve` on GPUs of at least 70 GiB other than the A100
            // takes 8192 tokens and 1024 sequences per step; the rest 2048
            // and 256.
            let large = vram_gib >= 70.0 && !gpu.name.contains("a100");
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
            memory: MemoryRule::StaticFraction(sglang_mem_fraction_static(gpu.vram_bytes, tp)),
            block_size: 1,
            max_batched_tokens: sglang_sizes(gpu.vram_bytes, tp).0,
            // SGLang derives max_running_requests from the KV pool; kvsim
            // leaves the batch to the KV budget with a limit no pool reaches.
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

/// SGLang's `chunked_prefill_size` and `cuda_graph_max_bs` by the GPU's
/// memory (MB) and tp, the buckets of `_handle_gpu_memory_settings` from
/// 20 GB up (no catalog GPU is smaller; below 20 GB SGLang has a bucket of
/// its own that kvsim does not transcribe, and uses the 20-35 GB one).
fn sglang_sizes(vram_bytes: u64, tp: u32) -> (u32, u32) {
    let mb = vram_bytes as f64 / (1u64 << 20) as f64;
    let small_tp = tp < 4;
    if mb < 35.0 * 1024.0 {
        (2048, if small_tp { 24 } else { 80 })
    } else if mb < 60.0 * 1024.0 {
        (4096, if small_tp { 32 } else { 160 })
    } else if mb < 160.0 * 1024.0 {
        (8192, if small_tp { 256 } else { 512 })
    } else {
        (16384, 512)
    }
}

/// SGLang's default `mem_fraction_static`: the GPU's memory less what it
/// reserves for activations, CUDA graphs and parallelism, as a fraction
/// rounded to 0.001 (`_handle_gpu_memory_settings`).
fn sglang_mem_fraction_static(vram_bytes: u64, tp: u32) -> f64 {
    let mb = vram_bytes as f64 / (1u64 << 20) as f64;
    let (chunk, graph_bs) = sglang_sizes(vram_bytes, tp);
    let mut reserved = 512.0
        + f64::from(chunk.max(2048)) * 1.5
        + f64::from(graph_bs) * 2.0
        + f64::from(tp) / 8.0 * 1024.0;
    if mb > 60.0 * 1024.0 {
        reserved = reserved.max(10.0 * 1024.0);
    }
    ((mb - reserved) / mb * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    /// The limits as each engine's source computes them for catalog GPUs.
    #[test]
    fn gpu_dependent_defaults_follow_the_engines() {
        let g = |n: &str| catalog::gpu(n).expect("catalog gpu");
        let vllm = |n: &str| engine_defaults(EngineName::Vllm, &g(n), 1);
        assert_eq!(
            (
                vllm("h100-sxm").max_batched_tokens,
                vllm("h100-sxm").max_num_seqs
            ),
            (8192, 1024)
        );
        // The A100-80GB has 79 GiB but vLLM keeps it on the small limits.
        assert_eq!(
            (
                vllm("a100-80gb").max_batched_tokens,
                vllm("a100-80gb").max_num_seqs
            ),
            (2048, 256)
        );
        assert_eq!(vllm("l40s").max_batched_tokens, 2048);
        // SGLang on an H100 (81089 MiB): 512 + 8192 x 1.5 + 256 x 2 + 128 MB
        // reserved = 13440 MB, so (81089 - 13440) / 81089 = 0.834.
        let sg = engine_defaults(EngineName::Sglang, &g("h100-sxm"), 1);
        assert_eq!(sg.memory, MemoryRule::StaticFraction(0.834));
        assert_eq!(sg.max_batched_tokens, 8192);
        // A B200 (182642 MiB) takes 16k chunks: 512 + 24576 + 1024 + 128.
        let sg = engine_defaults(EngineName::Sglang, &g("b200"), 1);
        assert_eq!(sg.max_batched_tokens, 16384);
        let want = ((182642.0 - 26240.0) / 182642.0 * 1000.0_f64).round() / 1000.0;
        assert_eq!(sg.memory, MemoryRule::StaticFraction(want));
        // The 10 GB floor above 60 GB: an L40S (45589 MiB) is below it.
        let sg = engine_defaults(EngineName::Sglang, &g("l40s"), 1);
        let want =
            ((45589.0 - (512.0 + 6144.0 + 64.0 + 128.0)) / 45589.0 * 1000.0_f64).round() / 1000.0;
        assert_eq!(sg.memory, MemoryRule::StaticFraction(want));
    }
}
