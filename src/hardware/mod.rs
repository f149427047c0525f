//! The simulated GPU: its memory budget and the price of each engine step.
//!
//! [`Gpu`] is catalog data; [`Deployment`] puts a model on `tp` of them;
//! [`budget`] derives the KV budget the vLLM way; [`cost`] prices engine steps
//! with a memory-bandwidth-bound roofline.

pub mod budget;
pub mod cost;

use serde::{Deserialize, Serialize};

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
    /// Peak dense bf16 tensor throughput, FLOP per second (no sparsity).
    pub peak_flops: f64,
    /// GPU-to-GPU bandwidth per GPU, one direction, bytes per second (NVLink,
    /// Infinity Fabric, or PCIe where there is no dedicated link).
    pub interconnect_bandwidth: f64,
    /// Host-to-device bandwidth, one direction, bytes per second.
    pub pcie_bandwidth: f64,
    /// On-demand cloud price per GPU-hour in US dollars, if a public one exists.
    pub price_per_hour: Option<f64>,
    /// Default efficiency factors for this GPU.
    pub efficiency: Efficiency,
}

/// How close real kernels get to the datasheet, and the fixed cost of a step.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Efficiency {
    /// Model bandwidth utilization: achieved / peak HBM bandwidth, in (0, 1].
    pub mbu: f64,
    /// Model FLOPs utilization: achieved / peak tensor FLOP/s, in (0, 1].
    pub mfu: f64,
    /// Fixed per-step cost (kernel launches, scheduling, sampling), seconds.
    pub step_overhead_s: f64,
    /// Latency of one tensor-parallel all-reduce before bandwidth, seconds.
    pub allreduce_latency_s: f64,
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
    /// Fraction of each GPU's memory the server may use (vLLM's
    /// `gpu_memory_utilization`).
    pub memory_utilization: f64,
    /// Efficiency factors in force (the GPU's defaults unless the scenario or a
    /// calibration overrides them).
    pub efficiency: Efficiency,
    /// Per-GPU runtime reserve in bytes, when the scenario overrides kvsim's
    /// estimate ([`budget::RUNTIME_BYTES_PER_GPU`] plus NCCL buffers at tp > 1).
    pub runtime_reserve: Option<u64>,
}
