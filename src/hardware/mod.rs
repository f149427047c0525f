//! The simulated GPU: its memory budget and the price of each engine step.
//!
//! [`Gpu`] is catalog data; [`Deployment`] puts a model on `tp` of them;
//! [`budget`] derives the KV budget the vLLM way; [`cost`] prices engine steps
//! with a memory-bandwidth-bound roofline.

pub mod budget;
pub mod cost;
pub mod price;

use serde::{Deserialize, Serialize};

pub use budget::MemoryRule;

use crate::model::Dtype;

/// A GPU's datasheet numbers and the efficiency factors kvsim uses for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// Catalog name (e.g. `h100-sxm`).
    pub name: String,
    /// Device memory, bytes.
    pub vram_bytes: u64,
    /// Peak HBM bandwidth, bytes per second.
    pub hbm_bandwidth: f64,
    /// Peak dense bf16 (and fp16) tensor throughput, FLOP per second (no
    /// sparsity).
    pub peak_flops: f64,
    /// Peak dense fp8 tensor throughput, FLOP per second; `None` where the
    /// GPU has no fp8 tensor cores (Ampere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_flops_fp8: Option<f64>,
    /// Peak dense int8 tensor throughput, operations per second; `None` where
    /// the datasheet gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_flops_int8: Option<f64>,
    /// Peak dense fp4 tensor throughput, FLOP per second; `None` before
    /// Blackwell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_flops_fp4: Option<f64>,
    /// GPU-to-GPU bandwidth per GPU, one direction, bytes per second (NVLink,
    /// Infinity Fabric, or PCIe where there is no dedicated link): the line
    /// rate; all-reduces move data at [`cost::LINK_EFFICIENCY`] of it.
    pub interconnect_bandwidth: f64,
    /// Host-to-device bandwidth, one direction, bytes per second.
    pub pcie_bandwidth: f64,
    /// On-demand cloud price per GPU-hour in US dollars, if a public one exists.
    pub price_per_hour: Option<f64>,
    /// Default efficiency factors for this GPU.
    pub efficiency: Efficiency,
}

impl Gpu {
    /// The dense tensor peak for `precision`, if this GPU has tensor cores
    /// for it (fp16 runs at the bf16 rate on every catalog GPU).
    pub fn peak_for(&self, precision: ComputeDtype) -> Option<f64> {
        match precision {
            ComputeDtype::Bf16 | ComputeDtype::Fp16 => Some(self.peak_flops),
            ComputeDtype::Fp8 => self.peak_flops_fp8,
            ComputeDtype::Int8 => self.peak_flops_int8,
            ComputeDtype::Fp4 => self.peak_flops_fp4,
        }
    }
}

/// The precision the tensor cores multiply in (`model.compute_dtype`).
///
/// It is not the weights' storage format: weight-only quantization (AWQ and
/// GPTQ int4, Marlin's fp8 on Ampere: "w4a16", "w8a16") reads fewer weight
/// bytes but dequantizes to bf16 before the matrix product, so it computes at
/// the bf16 peak. fp8 weights with fp8 activations (TensorRT-LLM's and vLLM's
/// fp8 path on Hopper and later, "w8a8") and int8 SmoothQuant run on the
/// 8-bit tensor cores at twice the bf16 peak; NVFP4 on Blackwell at four times.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDtype {
    /// bfloat16 (the default for 16-bit and weight-only quantized models).
    Bf16,
    /// IEEE half precision (the bf16 rate).
    Fp16,
    /// 8-bit float activations and weights (w8a8 fp8).
    Fp8,
    /// 8-bit integer activations and weights (SmoothQuant w8a8).
    Int8,
    /// 4-bit float activations and weights (NVFP4).
    Fp4,
}

impl ComputeDtype {
    /// The name used in scenario files.
    pub const fn name(self) -> &'static str {
        match self {
            ComputeDtype::Bf16 => "bf16",
            ComputeDtype::Fp16 => "fp16",
            ComputeDtype::Fp8 => "fp8",
            ComputeDtype::Int8 => "int8",
            ComputeDtype::Fp4 => "fp4",
        }
    }

    /// The precision a model whose weights are stored in `weights` computes
    /// in on `gpu` when the scenario does not say: fp8 weights take the fp8
    /// tensor cores where the GPU has them (the w8a8 path of TensorRT-LLM and
    /// vLLM) and run weight-only (bf16) where it does not (vLLM's Marlin fp8
    /// kernels on Ampere); integer weights are weight-only (AWQ, GPTQ, and
    /// int8 weight-only), which is what a checkpoint of that format runs as
    /// unless it says it is SmoothQuant; 16-bit weights compute in their own
    /// format.
    pub fn default_for(weights: Dtype, gpu: &Gpu) -> ComputeDtype {
        match weights {
            Dtype::Fp16 => ComputeDtype::Fp16,
            Dtype::Fp8 if gpu.peak_flops_fp8.is_some() => ComputeDtype::Fp8,
            Dtype::Bf16 | Dtype::Fp8 | Dtype::Int8 | Dtype::Int4 => ComputeDtype::Bf16,
        }
    }
}

impl std::fmt::Display for ComputeDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How close real kernels get to the datasheet, and the fixed cost of a step.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Efficiency {
    /// Model bandwidth utilization: achieved / peak HBM bandwidth, in (0, 1].
    pub mbu: f64,
    /// Model FLOPs utilization: achieved / peak tensor FLOP/s, in (0, 1].
    pub mfu: f64,
    /// Fixed per-step cost (scheduling, sampling, the host side of a step),
    /// seconds.
    pub step_overhead_s: f64,
    /// Fixed cost per layer per step (kernel launch gaps and tails, which a
    /// step pays once per layer whatever its bytes), seconds. 0 when absent
    /// from an inline table.
    #[serde(default)]
    pub layer_overhead_s: f64,
    /// Latency of one tensor-parallel all-reduce before bandwidth, seconds.
    pub allreduce_latency_s: f64,
}

impl Deployment {
    /// One replica of a model whose weights are stored in `weights` on `tp`
    /// of `gpu`, with the GPU's efficiency factors, kvsim's default memory
    /// rule (vLLM's `gpu_memory_utilization` 0.9) and the weights' default
    /// compute precision: what `kvsim calibrate` prices steps with.
    pub fn new(gpu: Gpu, tp: u32, weights: Dtype) -> Deployment {
        Deployment {
            efficiency: gpu.efficiency,
            runtime_reserve: None,
            compute_dtype: ComputeDtype::default_for(weights, &gpu),
            gpu,
            tp,
            replicas: 1,
            router: crate::scheduler::Router::RoundRobin,
            session_imbalance: crate::scheduler::DEFAULT_IMBALANCE,
            kv_router: crate::scheduler::KvRouterConfig::default(),
            memory: MemoryRule::TotalFraction(0.9),
        }
    }

    /// The dense tensor peak of one GPU at the deployment's compute precision
    /// (checked when the scenario loads, so always present for a resolved
    /// deployment; the bf16 peak otherwise).
    pub fn compute_peak(&self) -> f64 {
        self.gpu
            .peak_for(self.compute_dtype)
            .unwrap_or(self.gpu.peak_flops)
    }
}

/// A model served on `tp` GPUs per replica.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deployment {
    /// The GPU type.
    pub gpu: Gpu,
    /// Tensor-parallel degree (GPUs per replica).
    pub tp: u32,
    /// Replicas behind the router.
    pub replicas: u32,
    /// How requests are spread over the replicas.
    pub router: crate::scheduler::Router,
    /// Unfinished requests an affinity router's home replica may have above
    /// the least loaded one (`hardware.session_imbalance`).
    pub session_imbalance: u32,
    /// The `kv-aware` router's weights (`[hardware.kv_router]`).
    pub kv_router: crate::scheduler::KvRouterConfig,
    /// How the serving engine sizes its KV cache from each GPU's memory.
    pub memory: MemoryRule,
    /// The precision the tensor cores compute in (resolved from
    /// `model.compute_dtype` or the weights' format).
    pub compute_dtype: ComputeDtype,
    /// Efficiency factors in force (the GPU's defaults unless the scenario or a
    /// calibration overrides them).
    pub efficiency: Efficiency,
    /// Per-GPU runtime reserve in bytes, when the scenario overrides kvsim's
    /// estimate ([`budget::RUNTIME_BYTES_PER_GPU`] plus NCCL buffers at tp > 1).
    pub runtime_reserve: Option<u64>,
}
