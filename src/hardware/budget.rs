//! The KV budget of one replica (docs/ARCHITECTURE.md#hardware), by the rule of the
//! serving engine ([`MemoryRule`]):
//!
//! ```text
//! vLLM (total fraction f):          vram * f - weights/tp - activation_peak - runtime
//! TensorRT-LLM (free fraction f):   f * (vram - weights/tp - activation_peak - runtime)
//! SGLang (static fraction f):       vram * f - weights/tp - runtime
//! replica:  per-GPU budget * tp, at per-GPU bytes-per-token * tp
//! ```
//!
//! vLLM measures the activation peak by running one forward pass of
//! `max_num_batched_tokens` dummy tokens (`profile_run`), and the non-torch
//! memory (CUDA context, cuBLAS workspaces, NCCL buffers, CUDA graphs) from the
//! driver. kvsim estimates both from the model shape; see [`activation_peak_bytes`]
//! and [`RUNTIME_BYTES_PER_GPU`] for the log the estimates reproduce.

use serde::Serialize;

use crate::cache::{KvGroup, KvLayout};
use crate::error::SpecError;
use crate::model::{Dtype, LayerKind, Model};
use crate::units::{GIB, gib};

use super::Deployment;

/// Memory outside weights, activations and KV that a serving process holds on
/// each GPU (CUDA context, library workspaces, CUDA graphs), bytes.
///
/// vLLM PR #10511 (Dec 2024) logs `non_torch_memory 1.79GiB` for
/// Meta-Llama-3-8B on one H100 and 3.58 GiB per GPU at tp = 2 (NCCL buffers are
/// the difference); see [`NCCL_BYTES_PER_GPU`].
pub const RUNTIME_BYTES_PER_GPU: u64 = 1_922_000_000; // 1.79 GiB

/// Extra per-GPU memory for NCCL communicators when `tp > 1` (the 1.79 GiB
/// difference between the tp = 1 and tp = 2 logs of vLLM PR #10511).
pub const NCCL_BYTES_PER_GPU: u64 = 1_922_000_000;

/// Bytes per element assumed for activations in the profiling forward pass.
///
/// Intermediates of the MLP and norms are partly kept in fp32; 4 bytes per
/// element over (2 * intermediate + 2 * hidden) elements per token reproduces
/// vLLM's measured `PyTorch activation peak memory 1.26GiB` for Llama-3-8B with
/// 8192 batched tokens and 256 sequences (kvsim: 1.25 GiB, vLLM PR #10511).
const ACTIVATION_ELEM_BYTES: u64 = 4;

/// Bytes of one fp32 logit.
const LOGIT_BYTES: u64 = 4;

/// The peak activation memory of one GPU's forward pass over
/// `max_batched_tokens` tokens, plus fp32 logits for `max_num_seqs` sequences.
///
/// `intermediate` is the MLP width (per expert for MoE); tensor parallelism splits
/// the intermediate and the vocabulary, not the hidden state.
pub fn activation_peak_bytes(
    model: &Model,
    max_batched_tokens: u32,
    max_num_seqs: u32,
    tp: u32,
) -> u64 {
    let tp = u64::from(tp.max(1));
    let per_token = 2 * (u64::from(model.intermediate) / tp) + 2 * u64::from(model.hidden);
    let activations = u64::from(max_batched_tokens) * per_token * ACTIVATION_ELEM_BYTES;
    let logits = u64::from(max_num_seqs) * (u64::from(model.vocab).div_ceil(tp)) * LOGIT_BYTES;
    activations + logits
}

/// The per-token KV geometry of one replica: for each layer group of the
/// model, replica-wide bytes per token (per-GPU bytes times `tp`, so
/// replicated KV heads count on every GPU that holds them), what it keeps,
/// its recurrent state per sequence and its attention FLOPs per query-key
/// pair.
///
/// `cache_window` (the `sliding` policy) caps every attention layer's span;
/// a chunked group whose chunk exceeds it keeps its chunk (the scenario
/// loader refuses that combination, `cache.window`).
pub fn kv_layout(model: &Model, dtype: Dtype, tp: u32, cache_window: Option<u32>) -> KvLayout {
    let groups: Vec<KvGroup> = model
        .layer_groups()
        .iter()
        .map(|g| {
            let span = g.span();
            let heads = u64::from(model.heads);
            let flops_per_pair = match g.kind {
                LayerKind::Recurrent { .. } | LayerKind::None => 0,
                // MLA scores with the query/key head dimension (`head_dim`).
                LayerKind::Mla { .. } => 4 * heads * u64::from(model.head_dim),
                _ => 4 * heads * u64::from(g.heads().map_or(0, |(_, d)| d)),
            };
            KvGroup {
                bytes_per_token: g
                    .bytes_per_token(dtype, tp)
                    .expect("validated shapes keep KV bytes per token within 64 bits"),
                span: span.capped(cache_window).unwrap_or(span),
                layers: g.layers,
                state_bytes: g.state_bytes().expect("validated state sizes"),
                flops_per_pair,
            }
        })
        .collect();
    KvLayout::new(&groups, 1, dtype)
}

/// KV bytes per token on one GPU of a `tp`-way replica (all layer groups).
///
/// Tensor parallelism splits KV heads across GPUs; with fewer KV heads than GPUs
/// each head is replicated (vLLM: `max(1, kv_heads / tp)` heads per GPU). MLA's
/// latent cache is not split by heads, so every GPU holds all of it.
pub fn kv_bytes_per_token_per_gpu(model: &Model, dtype: Dtype, tp: u32) -> u64 {
    kv_layout(model, dtype, tp, None).bytes_per_token() / u64::from(tp.max(1))
}

/// How a serving engine turns each GPU's memory into a KV budget.
///
/// The three rules differ in what the configured fraction is a fraction of,
/// which is why the same `0.9` gives different budgets on different engines.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "rule", content = "fraction", rename_all = "kebab-case")]
pub enum MemoryRule {
    /// vLLM's `gpu_memory_utilization`: the fraction of the whole GPU that
    /// holds weights, the profiled activation peak, non-torch runtime memory
    /// and the KV cache (vllm/v1/worker/gpu_worker.py, `determine_available_memory`).
    TotalFraction(f64),
    /// TensorRT-LLM's `KvCacheConfig.free_gpu_memory_fraction`: the fraction
    /// of the memory still free once the model is loaded and its activations
    /// and runtime are in place.
    FreeFraction(f64),
    /// SGLang's `mem_fraction_static`: the fraction of the whole GPU that
    /// holds weights and the KV pool ("static" memory); activations live in
    /// the remainder (python/sglang/srt/model_executor/model_runner.py,
    /// `profile_max_num_token`).
    StaticFraction(f64),
}

impl MemoryRule {
    /// The configured fraction.
    pub fn fraction(self) -> f64 {
        match self {
            MemoryRule::TotalFraction(f)
            | MemoryRule::FreeFraction(f)
            | MemoryRule::StaticFraction(f) => f,
        }
    }

    /// The scenario key value naming the rule.
    pub fn name(self) -> &'static str {
        match self {
            MemoryRule::TotalFraction(_) => "total-fraction",
            MemoryRule::FreeFraction(_) => "free-fraction",
            MemoryRule::StaticFraction(_) => "static-fraction",
        }
    }

    /// The scenario key that sets the fraction, for messages
    /// (`engine.memory_fraction` sets any rule's; this names the usual one).
    pub fn scenario_key(self) -> &'static str {
        match self {
            MemoryRule::TotalFraction(_) => "hardware.memory_utilization",
            _ => "engine.memory_fraction",
        }
    }

    /// The engine setting the fraction stands for, for messages.
    pub fn engine_key(self) -> &'static str {
        match self {
            MemoryRule::TotalFraction(_) => "gpu_memory_utilization",
            MemoryRule::FreeFraction(_) => "free_gpu_memory_fraction",
            MemoryRule::StaticFraction(_) => "mem_fraction_static",
        }
    }
}

/// Where each GPU's memory goes, and the KV budget that is left.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KvBudget {
    /// Memory of one GPU the engine lets weights, activations, runtime and KV
    /// use together under its [`MemoryRule`], bytes (for the SGLang rule,
    /// which keeps activations outside its fraction, the activations are
    /// counted on top of the fraction).
    pub usable_per_gpu: u64,
    /// Weights on one GPU, bytes.
    pub weights_per_gpu: u64,
    /// Peak activation memory on one GPU, bytes.
    pub activation_per_gpu: u64,
    /// CUDA context, workspaces, graphs and NCCL buffers on one GPU, bytes.
    pub runtime_per_gpu: u64,
    /// KV memory on one GPU, bytes.
    pub kv_per_gpu: u64,
    /// KV bytes per token on one GPU.
    pub bytes_per_token_per_gpu: u64,
    /// KV memory of the whole replica (`kv_per_gpu * tp`), bytes.
    pub kv_bytes: u64,
    /// KV bytes per token of the whole replica (`bytes_per_token_per_gpu * tp`),
    /// including any replication of KV heads across GPUs.
    pub bytes_per_token: u64,
}

impl KvBudget {
    /// Tokens of KV the replica can hold.
    pub fn token_capacity(&self) -> u64 {
        self.kv_bytes / self.bytes_per_token.max(1)
    }

    /// The budget in tokens for reports: `436,427 tokens at 131072 B/token`
    /// (every layer keeping every token), or, for a model whose layers keep
    /// no per-token KV (recurrent layers only), what the bytes hold instead.
    pub fn capacity_words(&self) -> String {
        if self.bytes_per_token == 0 {
            "no per-token KV (recurrent state only)".to_string()
        } else {
            format!(
                "{} tokens at {} B/token",
                self.token_capacity(),
                self.bytes_per_token
            )
        }
    }
}

/// The words of the error a deployment gets when the model leaves no room
/// for KV (see [`does_not_fit`]).
const DOES_NOT_FIT: &str = "does not fit on";

/// Whether `e` is the error of a model that does not fit its deployment's
/// memory: a configuration that is valid but infeasible (`kvsim plan`
/// reports such a candidate as infeasible rather than refusing the plan).
pub fn does_not_fit(e: &SpecError) -> bool {
    e.key == "hardware.tp" && e.reason.contains(DOES_NOT_FIT)
}

/// Computes the KV budget of one replica of `model` on `deployment` with KV
/// elements in `kv_dtype`. Fails, naming the numbers and a `tp` that would fit,
/// when the weights and activations leave no room for KV.
pub fn kv_budget(
    model: &Model,
    deployment: &Deployment,
    kv_dtype: Dtype,
    max_batched_tokens: u32,
    max_num_seqs: u32,
) -> Result<KvBudget, SpecError> {
    let tp = deployment.tp.max(1);
    let vram = deployment.gpu.vram_bytes as f64;
    let rule = deployment.memory;
    // One GPU's memory at tensor-parallel degree `t`: weights, activations,
    // runtime, what the engine's rule lets it use, and KV bytes per token.
    let at = |t: u32| {
        let weights = model.weight_bytes().div_ceil(u64::from(t));
        let activation = activation_peak_bytes(model, max_batched_tokens, max_num_seqs, t);
        let runtime = deployment
            .runtime_reserve
            .unwrap_or(RUNTIME_BYTES_PER_GPU + if t > 1 { NCCL_BYTES_PER_GPU } else { 0 });
        let fixed = weights + activation + runtime;
        let usable = match rule {
            MemoryRule::TotalFraction(f) => (vram * f) as u64,
            // The fraction applies to what is free after the fixed parts, so
            // the usable memory is those parts plus that share of the rest
            // (all of the GPU when nothing is free: the check below fails).
            MemoryRule::FreeFraction(f) => fixed + (f * (vram - fixed as f64).max(0.0)) as u64,
            // Weights and KV live inside the fraction; the activations come
            // out of the rest of the GPU.
            MemoryRule::StaticFraction(f) => (vram * f) as u64 + activation,
        };
        let bpt = kv_bytes_per_token_per_gpu(model, kv_dtype, t);
        let fits = fixed < usable && usable - fixed >= bpt;
        (weights, activation, runtime, fixed, usable, bpt, fits)
    };
    let (
        weights_per_gpu,
        activation_per_gpu,
        runtime_per_gpu,
        fixed,
        usable_per_gpu,
        bytes_per_token_per_gpu,
        fits,
    ) = at(tp);
    if !fits {
        // The degree suggested is one that fits by the same arithmetic and
        // splits the model's heads.
        let suggestion = (1..=10)
            .map(|p| 1u32 << p)
            .filter(|&t| t > tp && crate::scenario::tp_splits(model, t).is_ok())
            .find(|&t| at(t).6)
            .map(|t| format!("; hardware.tp = {t} would fit"))
            .unwrap_or_else(|| {
                "; no tensor-parallel degree up to 1024 fits: use a larger GPU, quantized \
                 weights, or lower what takes the memory"
                    .into()
            });
        // Name the key behind the largest part: the weights are split by
        // tp; activations grow with the step's tokens; a runtime reserve the
        // user set is theirs; a tiny usable share is the memory rule's.
        let key = if usable_per_gpu < weights_per_gpu.min(activation_per_gpu.max(1)) {
            rule.scenario_key()
        } else if activation_per_gpu >= weights_per_gpu && activation_per_gpu >= runtime_per_gpu {
            "scheduler.max_batched_tokens"
        } else if runtime_per_gpu > weights_per_gpu && deployment.runtime_reserve.is_some() {
            "hardware.runtime_reserve_gib"
        } else {
            "hardware.tp"
        };
        let why = if key == "scheduler.max_batched_tokens" {
            " (activations grow with scheduler.max_batched_tokens and scheduler.max_num_seqs)"
        } else {
            ""
        };
        return Err(SpecError::new(
            key,
            format!(
                "{} {DOES_NOT_FIT} {} x {}: each GPU can use {:.2} of its {:.2} GiB ({} {}) \
                 but needs {:.2} GiB of weights + {:.2} GiB of activations + {:.2} GiB of runtime, \
                 leaving no room for KV{why}{suggestion}",
                model.name,
                tp,
                deployment.gpu.name,
                gib(usable_per_gpu),
                gib(deployment.gpu.vram_bytes),
                rule.engine_key(),
                crate::ranges::number(rule.fraction()),
                gib(weights_per_gpu),
                gib(activation_per_gpu),
                gib(runtime_per_gpu),
            ),
        ));
    }
    let kv_per_gpu = usable_per_gpu - fixed;
    Ok(KvBudget {
        usable_per_gpu,
        weights_per_gpu,
        activation_per_gpu,
        runtime_per_gpu,
        kv_per_gpu,
        bytes_per_token_per_gpu,
        kv_bytes: kv_per_gpu * u64::from(tp),
        bytes_per_token: bytes_per_token_per_gpu * u64::from(tp),
    })
}

/// Bytes as a short GiB string, for messages.
pub fn fmt_gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / GIB as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;
    use crate::hardware::Deployment;

    fn budget(rule: MemoryRule) -> KvBudget {
        let model = catalog::model("llama-3.1-8b").expect("catalog model");
        let mut d = Deployment::new(
            catalog::gpu("h100-sxm").expect("catalog gpu"),
            1,
            model.weight_dtype,
        );
        d.memory = rule;
        kv_budget(&model, &d, Dtype::Bf16, 8192, 256).expect("fits")
    }

    /// The three engines' rules on one GPU, each by hand from the same parts.
    #[test]
    fn each_engine_rule_takes_its_fraction_of_its_own_base() {
        let vram = catalog::gpu("h100-sxm").expect("catalog gpu").vram_bytes as f64;
        let vllm = budget(MemoryRule::TotalFraction(0.9));
        let (w, a, r) = (
            vllm.weights_per_gpu,
            vllm.activation_per_gpu,
            vllm.runtime_per_gpu,
        );
        let fixed = (w + a + r) as f64;
        assert_eq!(vllm.kv_per_gpu, (vram * 0.9) as u64 - (w + a + r));
        let trt = budget(MemoryRule::FreeFraction(0.9));
        let want = (0.9 * (vram - fixed)) as u64;
        assert!(
            trt.kv_per_gpu.abs_diff(want) <= 1,
            "{} vs {want}",
            trt.kv_per_gpu
        );
        let sglang = budget(MemoryRule::StaticFraction(0.88));
        assert_eq!(sglang.kv_per_gpu, (vram * 0.88) as u64 - w - r);
        // At the same 0.9 a fraction of the free memory is the largest budget:
        // it leaves a tenth of the free memory unused, vLLM a tenth of all.
        assert!(trt.kv_per_gpu > vllm.kv_per_gpu);
    }

    #[test]
    fn a_rule_with_no_room_is_an_error_naming_the_engine_key() {
        let model = catalog::model("llama-3.1-70b").expect("catalog model");
        for (rule, key) in [
            (MemoryRule::TotalFraction(0.9), "gpu_memory_utilization 0.9"),
            (
                MemoryRule::FreeFraction(0.9),
                "free_gpu_memory_fraction 0.9",
            ),
            (MemoryRule::StaticFraction(0.88), "mem_fraction_static 0.88"),
        ] {
            let mut d = Deployment::new(
                catalog::gpu("h100-sxm").expect("catalog gpu"),
                1,
                model.weight_dtype,
            );
            d.memory = rule;
            let err = kv_budget(&model, &d, Dtype::Bf16, 8192, 256).expect_err("70B on one H100");
            assert!(err.to_string().contains(key), "{err}");
        }
    }
}
