//! Built-in GPUs: datasheet numbers, the memory CUDA/ROCm reports, a public
//! on-demand price, and efficiency factors grounded in public measurements.
//!
//! # Conventions
//!
//! - `vram_bytes` is the total device memory the runtime reports
//!   (`torch.cuda.get_device_properties().total_memory`, which is what
//!   `torch.cuda.mem_get_info()` calls total and what vLLM multiplies by
//!   `gpu_memory_utilization`). It is a little below the marketed size and
//!   below what `nvidia-smi` prints (the driver keeps a few hundred MiB), and
//!   it moves by a few MiB between driver versions. Each entry cites a public
//!   log; where only a GiB figure rounded to 0.01 was found, the MiB value is
//!   that figure times 1024 (exact to about 5 MiB).
//! - Bandwidths are bytes per second in one direction. NVLink/Infinity Fabric
//!   datasheets quote both directions summed ("900 GB/s" on H100 SXM is 18
//!   links x 25 GB/s x 2 directions), so the value here is half; PCIe Gen4 x16
//!   is 32 GB/s and Gen5 x16 64 GB/s per direction (datasheets: "64 GB/s" /
//!   "128 GB/s" bidirectional).
//! - Prices are on-demand USD per GPU-hour from the provider's public price
//!   list, with the date it was read (`None` if no public price was found).
//!
//! - `peak_flops` is dense bf16 tensor throughput: datasheets quote the 2:4
//!   sparsity figure with an asterisk, which is twice the dense one.
//!   `peak_flops_fp8`, `peak_flops_int8` and `peak_flops_fp4` are the dense
//!   peaks of the lower precisions from the same datasheet (half the starred
//!   sparse figure), `None` where the GPU has no tensor cores for them. The
//!   roofline takes the peak of the deployment's compute precision
//!   (`model.compute_dtype`, see `crate::hardware::ComputeDtype`).
//!
//! # Efficiency factors
//!
//! The roofline prices a step as `step_overhead + layers * layer_overhead +
//! t_linear + t_attention + t_comm`, each kernel group taking
//! `max(flops / (peak * mfu), bytes / (bandwidth * mbu))` of its own FLOPs and
//! bytes (`crate::hardware::cost`). `mbu` is the fraction of HBM bandwidth the
//! decode kernels sustain, `mfu` the fraction of the tensor peak the
//! compute-bound kernels (prefill, large-batch GEMMs) sustain, `layer_overhead_s`
//! the fixed cost every layer pays per step whatever its bytes (kernel launch
//! gaps and tails, even under CUDA graphs), `step_overhead_s` the fixed cost
//! per step (the host's scheduling and sampling where it is not overlapped).
//!
//! **Seven of them are fitted to the calibration rows of
//! VALIDATION.md** by `kvsim validate` (`src/validate/fit.rs`: least squares
//! on relative errors, each row simulated exactly as a user's scenario would
//! be). A test fails if the values here drift from that fit by more than
//! their rounding. The rows:
//!
//! - `A100.mbu` = **0.81**: gpt-fast's batch-1 decode on A100-80GB
//!   (pytorch-labs/gpt-fast README, Llama-2-7B at TP1/2/4/8 and Llama-2-70B
//!   at TP2/4/8, bf16, 330 W power cap): 7 rows.
//! - `HOPPER_SXM.mbu` = **0.71**: vLLM's H200 CI latency runs (buildkite
//!   vllm/performance-benchmark build 9515, Llama-3.1-8B TP1 and 70B TP4,
//!   batch 8) and NVIDIA NIM's 1-user ITL for Llama-3.3-70B fp8 on 2 x H100:
//!   3 rows.
//! - `layer_overhead_s` = **42 us** (every GPU) and `step_overhead_s` =
//!   **0** (every GPU): all 10 rows. The 7B (32 layers) and 70B (80 layers)
//!   gpt-fast rows are what separate the two: at batch 1 the 70B rows were
//!   3.2-3.5 ms slower than their bytes at every TP, a cost that scales with
//!   layers, not with a step. With it, the fit puts the whole fixed cost on
//!   layers and none on the step: an engine that overlaps its host work
//!   (CUDA graphs, vLLM V1's and TensorRT-LLM's asynchronous schedulers) pays
//!   no per-step cost the GPU waits for.
//! - `HOPPER_SXM.mfu` = **0.55**, and `BLACKWELL.mbu` = **0.52** and
//!   `BLACKWELL.mfu` = **0.39** (B200), in a second stage with the above
//!   held, each fitted to one column of TensorRT-LLM v1.0's published
//!   offline throughput (docs/source/performance/perf-overview.md): Llama
//!   3.3 70B in fp8 on one H200 (10 rows) for the Hopper mfu, and the same
//!   model in NVFP4 on one B200 (10 rows) for the B200. At these batches the
//!   linear layers turn compute-bound, which is what sets `mfu`. The table's
//!   other columns (8B on H100 and H200, 70B on two H100s, 405B on eight
//!   H100s, eight H200s and four B200s) are held out.
//!
//! The leave-one-source-out table in VALIDATION.md shows what each source
//! alone does to the fit. Cross-check on a row that is not in the fit: J.
//! Musgrave's vLLM sweep on A100-40GB (johnmusgrave.com, "vLLM
//! throughput-latency sweep on NVIDIA A100", Llama-3.1-8B bf16, 1024-token
//! prompts, concurrency 1) measured about 75 tok/s (13.3 ms); the fitted
//! factors give 16.06 GB / (1.555 TB/s * 0.81) + 32 * 42 us = 14.1 ms (+6 %).
//!
//! Earlier (unfitted) values, for the record: mbu 0.83 on A100 from the
//! gpt-fast README's own remark "empirically, peak bandwidth is about 1700
//! GB/s", 0.78 on H100 from Hazy Research's fused megakernel ("Look Ma, No
//! Bubbles!", 2025-05-27: 78 % of bandwidth, against "at most 50%" for vLLM
//! and SGLang on Llama-3.2-1B), and 1 ms of step overhead from engine
//! profiles (vLLM blog "vLLM v0.6.0: 2.7x throughput improvement", 2024-09-05:
//! 33 % of an 8B step in the HTTP server and 29 % in scheduling before
//! v0.6.0's overlap). Those engines' host costs are real where the host is
//! not overlapped: set `hardware.step_overhead_s` for an engine that blocks
//! on its scheduler.
//!
//! `mfu` (prefill): **A100 0.70** from text-generation-inference's benchmark on
//! A100 (huggingface/text-generation-inference PR #1243, Llama-2-13B, 40-token
//! prompts, batch 100-400: 4000 tokens in 370.8 ms .. 16000 in 1753 ms, i.e.
//! 2 * 12.69e9 non-lm_head params * tokens / time = 0.74-0.88 of 312 TFLOP/s),
//! lowered to 0.70 because those prompts have no attention cost and
//! FlashAttention-2 reaches 50-73% of A100 peak (arXiv:2307.08691).
//! **Hopper 0.55 and Blackwell 0.39** are fitted (above). For the record,
//! the estimate they replace was 0.60: FlashAttention-3 reaches 75% of H100
//! bf16 peak in its best case (arXiv:2407.08608) and H100/B200 GEMMs
//! "sustain up to 93%" of rated throughput (aiweekly.co summary of a Yahoo
//! Finance report, below), while norms, rotary and small chunked-prefill
//! GEMMs pull a whole step below that. Estimates are marked as such on each
//! entry.
//!
//! **Uncalibrated architectures.** A GPU whose architecture has no
//! calibration row in VALIDATION.md gets the documented default
//! ([`uncalibrated`]): the shared fitted fixed costs (42 us per layer, no step
//! cost), `mbu` **0.68**, the mean of the three fitted per-family values (A100
//! 0.81, Hopper 0.71, Blackwell 0.52), and `mfu` **0.47**, the mean of the two
//! fitted ones (Hopper 0.55, Blackwell 0.39). Its entry says it is
//! uncalibrated. A GPU of a calibrated family (the same die or tensor-core
//! generation, the same memory type and the same serving kernels) reuses that
//! family's fitted factors and says so.
//!
//! All-reduce bandwidth: the catalog's `interconnect_bandwidth` is the
//! link's line rate; the roofline moves data at `LINK_EFFICIENCY` (370 / 450)
//! of it, NCCL's protocol overhead as its maintainer puts it
//! (`crate::hardware::cost::LINK_EFFICIENCY`).
//!
//! `allreduce_latency_s`: small-message (<= 32 KB) all-reduce time.
//! NVLink: A100-SXM4-40GB NCCL all_reduce_perf, 32 B, 2 GPUs: 10.1 us
//! (NVIDIA/nccl#583); H100 vLLM custom all-reduce, 512 B, TP 2/4/8:
//! 9.5/9.1/10.1 us without CUDA graphs (sgl-project/sglang PR #2904); NCCL
//! NVLSTree on 2 H100 with CUDA graphs about 6 us (NVIDIA/nccl#1259). We take
//! **10 us** on NVLink. PCIe without NVLink: 8-byte all_reduce_perf on 8 RTX
//! 4090 over PCIe 42 us (NVIDIA/nccl#1530; AD102, the L40S die) and on 8 RTX
//! 3090 54 us (NVIDIA/nccl#1439): **40 us**.

use super::GpuEntry;
use crate::hardware::{Efficiency, Gpu};

/// One mebibyte.
const MIB: u64 = 1 << 20;

/// Bytes of `mib` mebibytes.
const fn mib(mib: u64) -> u64 {
    mib * MIB
}

/// The fitted fixed costs shared by every GPU (module docs).
const LAYER_OVERHEAD_S: f64 = 42e-6;
const STEP_OVERHEAD_S: f64 = 0.0;

/// A100 (40 GB and 80 GB SXM4): mbu fitted to gpt-fast's rows, mfu from
/// TGI's A100 prefill benchmark, all-reduce from nccl#583 (see the module
/// docs).
const A100: Efficiency = Efficiency {
    mbu: 0.81,
    mfu: 0.70,
    step_overhead_s: STEP_OVERHEAD_S,
    layer_overhead_s: LAYER_OVERHEAD_S,
    allreduce_latency_s: 10e-6,
};

/// Hopper SXM (H100 SXM, reused for H200): all-reduce from sglang#2904 /
/// nccl#1259 (see the module docs).
///
/// mbu 0.71 is fitted to the Hopper serving rows (vLLM's H200 CI latency
/// runs, NVIDIA NIM's 1-user ITL on 2 x H100) together with the shared
/// fixed costs; mfu 0.55 to TensorRT-LLM's offline throughput of Llama 3.3
/// 70B fp8 on one H200. See the module docs and VALIDATION.md.
const HOPPER_SXM: Efficiency = Efficiency {
    mbu: 0.71,
    mfu: 0.55,
    step_overhead_s: STEP_OVERHEAD_S,
    layer_overhead_s: LAYER_OVERHEAD_S,
    allreduce_latency_s: 10e-6,
};

/// Blackwell (B200): mbu and mfu fitted to TensorRT-LLM's published offline
/// throughput of Llama 3.3 70B in NVFP4 on one B200 (the v1.0 performance
/// overview; see the module docs and VALIDATION.md, where the 405B column of
/// the same table is held out). All-reduce over NVLink 5 as Hopper's.
const BLACKWELL: Efficiency = Efficiency {
    mbu: 0.52,
    mfu: 0.39,
    step_overhead_s: STEP_OVERHEAD_S,
    layer_overhead_s: LAYER_OVERHEAD_S,
    allreduce_latency_s: 10e-6,
};

/// H100 PCIe: the H100 SXM kernel factors (same GH100 die and software;
/// no separate PCIe-card measurement found),
/// all-reduce over PCIe.
const HOPPER_PCIE: Efficiency = Efficiency {
    allreduce_latency_s: 40e-6,
    ..HOPPER_SXM
};

/// Ada Lovelace PCIe cards (L4, L40S). No public batch-1 decode or prefill
/// measurement on these cards was found. mbu: the A100 fitted value (0.81)
/// rounded down to 0.80 for GDDR6 (estimate). mfu 0.50, the middle of the usual
/// 0.4-0.6 range, below A100's because both boards are power-capped (72 W and
/// 350 W) and their tensor peaks are quoted at boost clock. All-reduce over
/// PCIe from nccl#1530 (8 RTX 4090, the L40S's AD102 die): 42 us.
const ADA_PCIE: Efficiency = Efficiency {
    mbu: 0.80,
    mfu: 0.50,
    step_overhead_s: STEP_OVERHEAD_S,
    layer_overhead_s: LAYER_OVERHEAD_S,
    allreduce_latency_s: 40e-6,
};

/// MI300X. Reported achieved fractions of peak on real workloads: about 45% of
/// the dense FLOP/s and about 81% of the 5.3 TB/s bandwidth (aiweekly.co,
/// "AMD MI300X hits only 45% of peak FLOPs in practice", summarising a Yahoo
/// Finance report; SemiAnalysis "MI300X vs H100 vs H200 Benchmark Part 1:
/// Training", 2024-12, found the on-paper specs "not representative").
/// mfu 0.45 from the first. mbu 0.58 (estimate): the 81% is a bandwidth
/// ceiling, and at low concurrency H200 (4.8 TB/s * 0.71 = 3.41 TB/s
/// effective here) serves each query faster than MI300X (Artificial Analysis,
/// "Independent Performance Analysis of Leading GPUs: AMD MI300X, NVIDIA
/// H100, NVIDIA H200", as summarised by secondary write-ups), which bounds
/// MI300X's effective decode bandwidth below 3.41 / 5.3 = 0.64 of peak.
/// All-reduce: no MI300X small-message RCCL figure was found; RCCL on MI250X
/// took about 25 us for 8-byte all-reduces across 16 GCDs before its 1-shot
/// algorithm (ROCm/rccl PR #929) and xGMI links are 64 GB/s each way, so 15 us
/// (estimate, between the NVLink 10 us and that 25 us).
const MI300X: Efficiency = Efficiency {
    mbu: 0.58,
    mfu: 0.45,
    step_overhead_s: STEP_OVERHEAD_S,
    layer_overhead_s: LAYER_OVERHEAD_S,
    allreduce_latency_s: 15e-6,
};

/// The documented default for an architecture with no calibration row (module
/// docs): the mean fitted `mbu` and `mfu` with the shared fitted fixed costs;
/// `allreduce_latency_s` is the link's (10 us NVLink, 15 us Infinity Fabric,
/// 40 us PCIe, as above).
const fn uncalibrated(allreduce_latency_s: f64) -> Efficiency {
    Efficiency {
        mbu: 0.68,
        mfu: 0.47,
        step_overhead_s: STEP_OVERHEAD_S,
        layer_overhead_s: LAYER_OVERHEAD_S,
        allreduce_latency_s,
    }
}

/// Every built-in GPU, in catalog order.
pub(super) fn all() -> Vec<GpuEntry> {
    vec![
        // A100 SXM4 40GB (the p4d / a2-highgpu part; the PCIe 40GB card has the
        // same memory and bandwidth but no NVSwitch).
        // vram: 40536 MiB, the total_memory Paddle's get_device_properties
        // docs print for A100-SXM4-40GB and the "39.59 GiB total capacity" in
        // PyTorch OOM messages on Colab A100-40GB (recent drivers' nvidia-smi
        // prints 40960 MiB; a deviceQuery on one HPC system prints 40441 MiB).
        // Marketed: 40 GB.
        // NVIDIA A100 datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4):
        // HBM2 1,555 GB/s; BF16 tensor 312 TFLOPS (624 with sparsity); NVLink
        // 600 GB/s (300 per direction); PCIe Gen4 64 GB/s (32 per direction).
        // Price: Lambda, 1x or 8x A100 SXM 40 GB, $1.99/GPU-hour (lambda.ai
        // pricing page as transcribed 2026-09-20 in api-evangelist/lambda-labs
        // and checked 2026-09-25 in tgarg01/silybench-data).
        GpuEntry {
            gpu: Gpu {
                name: "a100-40gb".into(),
                vram_bytes: mib(40_536),
                hbm_bandwidth: 1.555e12,
                peak_flops: 312e12,
                peak_flops_fp8: None,
                peak_flops_int8: Some(624e12),
                peak_flops_fp4: None,
                interconnect_bandwidth: 300e9,
                pcie_bandwidth: 32e9,
                price_per_hour: Some(1.99),
                efficiency: A100,
            },
            source: "NVIDIA A100 datasheet; total_memory 40536 MiB (Paddle docs, PyTorch OOM 39.59 GiB); \
                     Lambda $1.99/h 2026-09; gpt-fast README (mbu and fixed costs fitted), TGI PR #1243 (mfu), nccl#583",
        },
        // A100 SXM4 80GB.
        // vram: PyTorch OOM messages on A100 80GB print "79.15 GiB total
        // capacity" = 81,050 MiB (older drivers' nvidia-smi: 81251 MiB,
        // newer: 81920 MiB). Marketed: 80 GB.
        // Datasheet: HBM2e 2,039 GB/s (SXM; the PCIe card is 1,935 GB/s), BF16
        // 312 TFLOPS dense, NVLink 600 GB/s, PCIe Gen4.
        // Price: Lambda 8x A100 SXM 80 GB, $2.79/GPU-hour (lambda.ai, 2026-09-20).
        GpuEntry {
            gpu: Gpu {
                name: "a100-80gb".into(),
                vram_bytes: mib(81_050),
                hbm_bandwidth: 2.039e12,
                peak_flops: 312e12,
                peak_flops_fp8: None,
                peak_flops_int8: Some(624e12),
                peak_flops_fp4: None,
                interconnect_bandwidth: 300e9,
                pcie_bandwidth: 32e9,
                price_per_hour: Some(2.79),
                efficiency: A100,
            },
            source: "NVIDIA A100 datasheet; PyTorch OOM 79.15 GiB total capacity; Lambda $2.79/h 2026-09; \
                     gpt-fast README A100-80GB (mbu 0.81 and fixed costs fitted), TGI PR #1243 (mfu), nccl#583",
        },
        // H100 SXM5 80GB HBM3.
        // vram: _CudaDeviceProperties(name='NVIDIA H100 80GB HBM3', ...,
        // total_memory=81089MB) with torch 2.7 / CUDA 12.8 (log of the
        // ml-engineering all_reduce_bench script; other public logs show
        // 81082-81090 MiB); nvidia-smi prints 81559 MiB. Marketed: 80 GB.
        // H100 datasheet: HBM3 3.35 TB/s; BF16 tensor 1,979 TFLOPS with
        // sparsity = 989.4 dense; NVLink 900 GB/s (450 per direction; NCCL's
        // maintainer: "900 GB/s is the sum of both directions", nccl#1442);
        // PCIe Gen5 128 GB/s (64 per direction).
        // Price: Lambda 8x H100 SXM, $3.99/GPU-hour (1x: $4.29) (lambda.ai,
        // 2026-09-20).
        GpuEntry {
            gpu: Gpu {
                name: "h100-sxm".into(),
                vram_bytes: mib(81_089),
                hbm_bandwidth: 3.35e12,
                peak_flops: 989.4e12,
                peak_flops_fp8: Some(1978.9e12),
                peak_flops_int8: Some(1978.9e12),
                peak_flops_fp4: None,
                interconnect_bandwidth: 450e9,
                pcie_bandwidth: 64e9,
                price_per_hour: Some(3.99),
                efficiency: HOPPER_SXM,
            },
            source: "NVIDIA H100 datasheet; total_memory 81089 MiB (ml-engineering log); Lambda $3.99/h 2026-09; \
                     mbu 0.71 fitted to the Hopper serving rows of VALIDATION.md (vLLM CI, NVIDIA NIM), sglang PR #2904 (all-reduce)",
        },
        // H100 PCIe 80GB (HBM2e).
        // vram: _CudaDeviceProperties(name='NVIDIA H100 PCIe', ...,
        // total_memory=81008MB); nvidia-smi prints 81559 MiB.
        // H100 PCIe product brief PB-11133-001: memory bandwidth "greater than
        // 2,000 GB/s" (datasheet: 2 TB/s); BF16 1,513 TFLOPS with sparsity =
        // 756.5 dense; PCIe Gen5 x16. An optional NVLink bridge pairs two cards
        // at 600 GB/s, but cloud single-card instances have none, so GPU-GPU
        // traffic uses PCIe Gen5 (64 GB/s per direction).
        // Price: Lambda 1x H100 PCIe, $3.29/GPU-hour (lambda.ai, 2026-09-20).
        GpuEntry {
            gpu: Gpu {
                name: "h100-pcie".into(),
                vram_bytes: mib(81_008),
                hbm_bandwidth: 2.0e12,
                peak_flops: 756.5e12,
                peak_flops_fp8: Some(1513e12),
                peak_flops_int8: Some(1513e12),
                peak_flops_fp4: None,
                interconnect_bandwidth: 64e9,
                pcie_bandwidth: 64e9,
                price_per_hour: Some(3.29),
                efficiency: HOPPER_PCIE,
            },
            source: "NVIDIA H100 PCIe product brief PB-11133-001 and datasheet; total_memory 81008 MiB (public torch log); \
                     Lambda $3.29/h 2026-09; efficiency reused from h100-sxm, all-reduce over PCIe (nccl#1530)",
        },
        // H200 SXM 141GB HBM3e.
        // vram: _CudaDeviceProperties(name='NVIDIA H200', ...,
        // total_memory=143156MB) (Modal log); nvidia-smi prints 143771 MiB.
        // Marketed: "141 GB", which is binary (141 GiB = 144,384 MiB of HBM3e;
        // CUDA sees 139.8 GiB).
        // H200 datasheet: 4.8 TB/s; same GH100 compute as H100 SXM (BF16
        // 1,979 TFLOPS with sparsity = 989.4 dense); NVLink 900 GB/s; PCIe Gen5.
        // Price: Nebius HGX H200, $4.50/GPU-hour (nebius.com/prices, checked
        // 2026-09-25 in tgarg01/silybench-data; RunPod Secure Cloud $4.59).
        // Efficiency: no H200-specific decode or prefill measurement found;
        // H100 SXM factors reused (same die and kernels).
        GpuEntry {
            gpu: Gpu {
                name: "h200".into(),
                vram_bytes: mib(143_156),
                hbm_bandwidth: 4.8e12,
                peak_flops: 989.4e12,
                peak_flops_fp8: Some(1978.9e12),
                peak_flops_int8: Some(1978.9e12),
                peak_flops_fp4: None,
                interconnect_bandwidth: 450e9,
                pcie_bandwidth: 64e9,
                price_per_hour: Some(4.50),
                efficiency: HOPPER_SXM,
            },
            source: "NVIDIA H200 datasheet; total_memory 143156 MiB (public torch log); Nebius $4.50/h 2026-09; \
                     efficiency reused from h100-sxm",
        },
        // L4 (Ada Lovelace, 24 GB GDDR6, 72 W, PCIe Gen4 x16, no NVLink).
        // vram: "NVIDIA L4 (22.03 GiB visible to PyTorch)" and PyTorch OOM
        // "total capacity of 22.03 GiB" = 22,559 MiB; nvidia-smi prints
        // 23034 MiB. Marketed: 24 GB.
        // L4 datasheet: 300 GB/s; FP16/BF16 tensor 242 TFLOPS with sparsity
        // = 121 dense; PCIe Gen4 x16 64 GB/s (32 per direction).
        // Price: Modal L4, $0.80/GPU-hour ($0.000222/s; modal.com/pricing as
        // reported by techbytes.app, verified 2026-05-07).
        GpuEntry {
            gpu: Gpu {
                name: "l4".into(),
                vram_bytes: mib(22_559),
                hbm_bandwidth: 300e9,
                peak_flops: 121e12,
                peak_flops_fp8: Some(242.5e12),
                peak_flops_int8: Some(242.5e12),
                peak_flops_fp4: None,
                interconnect_bandwidth: 32e9,
                pcie_bandwidth: 32e9,
                price_per_hour: Some(0.80),
                efficiency: ADA_PCIE,
            },
            source: "NVIDIA L4 datasheet; PyTorch 22.03 GiB total capacity; Modal $0.80/h 2026-05; \
                     efficiency estimated (no public L4 measurement found), all-reduce nccl#1530",
        },
        // L40S (Ada Lovelace AD102, 48 GB GDDR6 ECC, 350 W, PCIe Gen4 x16,
        // NVLink not supported).
        // vram: _CudaDeviceProperties(name='NVIDIA L40S', major=8, minor=9,
        // total_memory=45589MB); nvidia-smi prints 46068 MiB. Marketed: 48 GB.
        // L40S datasheet: 864 GB/s; BF16 tensor 362.05 TFLOPS (733 with
        // sparsity); "PCIe Gen4 x16: 64GB/s bidirectional".
        // Price: RunPod Secure Cloud L40S, $1.09/GPU-hour (runpod.io/pricing,
        // checked 2026-09-25 in tgarg01/silybench-data; Nebius: $1.55).
        GpuEntry {
            gpu: Gpu {
                name: "l40s".into(),
                vram_bytes: mib(45_589),
                hbm_bandwidth: 864e9,
                peak_flops: 362.05e12,
                peak_flops_fp8: Some(733e12),
                peak_flops_int8: Some(733e12),
                peak_flops_fp4: None,
                interconnect_bandwidth: 32e9,
                pcie_bandwidth: 32e9,
                price_per_hour: Some(1.09),
                efficiency: ADA_PCIE,
            },
            source: "NVIDIA L40S datasheet; total_memory 45589 MiB (public torch log); RunPod $1.09/h 2026-09; \
                     efficiency estimated (no public L40S measurement found), all-reduce nccl#1530",
        },
        // AMD Instinct MI300X (192 GB HBM3, OAM).
        // vram: torch.cuda.get_device_properties on ROCm:
        // _CudaDeviceProperties(name='AMD Instinct MI300X', ...,
        // total_memory=196592MB) (ROCm/ROCm#4203 and an HPC-site log).
        // Marketed: 192 GB.
        // AMD MI300X data sheet: 5.3 TB/s; peak BF16 dense 1,307.4 TFLOPS
        // (2,614.9 with sparsity); 7 Infinity Fabric links of 128 GB/s
        // bidirectional each = 896 GB/s aggregate, 448 GB/s per direction;
        // PCIe Gen5 x16 (64 GB/s per direction).
        // Price: Vultr MI300X, $1.85/GPU-hour (cliffcenter.com research note
        // 2026-05-18, which lists TensorWave $1.50, Vultr $1.85, Azure and
        // Oracle $6).
        GpuEntry {
            gpu: Gpu {
                name: "mi300x".into(),
                vram_bytes: mib(196_592),
                hbm_bandwidth: 5.3e12,
                peak_flops: 1307.4e12,
                peak_flops_fp8: Some(2614.9e12),
                peak_flops_int8: Some(2614.9e12),
                peak_flops_fp4: None,
                interconnect_bandwidth: 448e9,
                pcie_bandwidth: 64e9,
                price_per_hour: Some(1.85),
                efficiency: MI300X,
            },
            source: "AMD Instinct MI300X data sheet; total_memory 196592 MiB (ROCm/ROCm#4203); Vultr $1.85/h 2026-05; \
                     efficiency from reported 45% FLOPs / 81% bandwidth, partly estimated",
        },
        // B200 (HGX B200 SXM6, 1000 W).
        // vram: _CudaDeviceProperties(name='NVIDIA B200', major=10, minor=0,
        // total_memory=182642MB) (Modal log; another log shows 182631);
        // nvidia-smi prints 183359 MiB. Marketed: "180 GB" per GPU in HGX B200
        // (1.44 TB per 8 GPUs; early announcements said 192 GB), binary like
        // the H200's: CUDA sees 178.4 GiB.
        // HGX B200 spec (per GPU, as tabulated by glennklockwood.com/garden/
        // processors/B200): HBM3e 8 TB/s; FP16/BF16 tensor 4.5 PFLOPS with
        // sparsity = 2.25 dense; NVLink 5 1.8 TB/s (900 GB/s per direction).
        // Host link: the same page lists PCIe Gen6 for the GPU, but the hosts
        // of shipping HGX/DGX B200 systems (e.g. Xeon Platinum 8570) are PCIe
        // Gen5, so host transfers run at Gen5 x16 (64 GB/s per direction).
        // Price: Lambda 8x B200 SXM6, $6.69/GPU-hour (lambda.ai, 2026-09-20).
        // Efficiency: fitted to TensorRT-LLM's published B200 throughput
        // (BLACKWELL above).
        GpuEntry {
            gpu: Gpu {
                name: "b200".into(),
                vram_bytes: mib(182_642),
                hbm_bandwidth: 8.0e12,
                peak_flops: 2.25e15,
                peak_flops_fp8: Some(4.5e15),
                peak_flops_int8: Some(4.5e15),
                peak_flops_fp4: Some(9.0e15),
                interconnect_bandwidth: 900e9,
                pcie_bandwidth: 64e9,
                price_per_hour: Some(6.69),
                efficiency: BLACKWELL,
            },
            source: "NVIDIA HGX B200 spec; total_memory 182642 MiB (public torch log); Lambda $6.69/h 2026-09; \
                     mbu and mfu fitted to TensorRT-LLM v1.0's B200 Llama 3.3 70B FP4 throughput",
        },
        // B300 (HGX B300, Blackwell Ultra, per GPU; CUDA name "NVIDIA B300 SXM6
        // AC", sm_103, 1100 W).
        // vram: PyTorch OOM messages on 8x B300 nodes print "GPU 0 has a total
        // capacity of 267.69 GiB" (two public logs: a Megatron training report
        // and a vLLM/FlashInfer NVFP4 MoE log) = 274,115 MiB; nvidia-smi
        // --query-gpu=memory.total prints 275040 MiB (driver 580.126.09, a
        // public B300 characterization). Marketed: 288 GB of HBM3e on the
        // package, of which the HGX part exposes 270 GB (the Blackwell Ultra
        // datasheet's HGX B300 column, "270 GB HBM3E | 7.7 TB/s"; one of
        // sixteen memory controllers is fused off, 288 x 15/16 = 270), binary
        // like the B200's: CUDA sees 267.7 GiB.
        // Peaks, NVIDIA HGX page (nvidia.com/en-us/data-center/hgx, HGX B300
        // column, per 8 GPUs, read 2026-08 as transcribed in public research
        // notes): FP4 "144 PFLOPS | 108 PFLOPS" (sparse | dense) = 13.5 PF
        // dense per GPU (the Blackwell Ultra datasheet's per-GPU row rounds it
        // to 18 | 14); FP8/FP6 72 PF and FP16/BF16 36 PF, both sparse ("Dense
        // is 1/2 sparse spec shown"): 4.5 and 2.25 PF dense per GPU, the B200's
        // (torchtitan PR #2884 and NVIDIA/cosmos-framework PR #114 use the
        // same 2.25e15). INT8: Blackwell Ultra cut the 8-bit integer rate to
        // a few hundred TOPS, below its bf16 rate (HGX page "INT8 3 POPS" per
        // 8 GPUs, datasheet "307 TOPS" per GPU, sparse or dense not stated),
        // so no engine runs w8a8 int8 on it; None, so a scenario that asks
        // for int8 compute is refused rather than priced on an ambiguous
        // figure. NVFP4 at 6x bf16 is the one dense ratio above 4x in the
        // catalog.
        // Bandwidth 7.7 TB/s (datasheet HGX column; CUDA reports a 7680-bit
        // bus at 3996 MHz = 7.67 TB/s). NVLink 5 1.8 TB/s (900 GB/s per
        // direction). Host link: the GPU is PCIe Gen6, but the hosts of
        // shipping HGX B300 systems (DGX B300: Xeon 6776P) are Gen5 and the
        // public characterization measures "PCIe Gen 6 x16 (Gen 5 effective)",
        // so 64 GB/s per direction, as for the B200.
        // Price: RunPod B300, $7.89/GPU-hour (runpod.io/pricing read
        // 2026-10-07, transcribed in api-evangelist/runpod; the same in the
        // privum/ai-compute-prices snapshot of 2026-08-19; Hyperstack $7.40).
        // Efficiency: no B300 calibration row; the B200's fitted Blackwell
        // factors are reused (same tensor-core generation, HBM3e and
        // TensorRT-LLM/vLLM kernels).
        GpuEntry {
            gpu: Gpu {
                name: "b300".into(),
                vram_bytes: mib(274_115),
                hbm_bandwidth: 7.7e12,
                peak_flops: 2.25e15,
                peak_flops_fp8: Some(4.5e15),
                peak_flops_int8: None,
                peak_flops_fp4: Some(13.5e15),
                interconnect_bandwidth: 900e9,
                pcie_bandwidth: 64e9,
                price_per_hour: Some(7.89),
                efficiency: BLACKWELL,
            },
            source: "NVIDIA HGX page (HGX B300) and Blackwell Ultra datasheet; PyTorch OOM 267.69 GiB total capacity; \
                     RunPod $7.89/h 2026-10; efficiency reused from b200 (fitted Blackwell)",
        },
        // GB200 (one Blackwell GPU of a GB200 NVL72, 1200 W).
        // vram: PyTorch OOM messages on GB200 print "GPU 0 has a total
        // capacity of 184.31 GiB" (several public logs: vLLM DeepSeek decode,
        // FSDP2 and cudagraph-capture reports) = 188,733 MiB; nvidia-smi
        // prints 189471 MiB (TACC Vista and other public logs). Marketed:
        // "186 GB" per GPU (13.4 TB per 72 GPUs; NVIDIA's MIG table; CoreWeave
        // lists 186 GB), binary: CUDA sees 184.3 GiB.
        // Peaks, NVIDIA GB200 NVL72 page (nvidia.com/en-us/data-center/
        // gb200-nvl72, per 72 GPUs; "Specification in sparse. Dense is
        // one-half sparse spec shown"): NVFP4 "1,440 | 720 PFLOPS" (sparse |
        // dense) = 10 PF dense per GPU; FP8/FP6 720 PF, INT8 720 POPS and
        // FP16/BF16 360 PF sparse = 5, 5 and 2.5 PF dense per GPU (the B200
        // die run at 1200 W, about 11 % above the HGX B200's 1000 W figures).
        // "13.4 TB HBM3E | 576 TB/s" = 8 TB/s per GPU; NVLink 130 TB/s per 72
        // GPUs = 1.8 TB/s per GPU (900 GB/s per direction).
        // Host link: NVLink-C2C to the Grace CPU, 900 GB/s bidirectional per
        // superchip (one Grace, two GPUs): 225 GB/s per GPU per direction if
        // the two GPUs share it evenly (estimate).
        // Price: CoreWeave GB200 NVL72, $42.00/hour per 4-GPU instance =
        // $10.50/GPU-hour (coreweave.com/pricing read 2026-09-20, transcribed
        // in api-evangelist/coreweave).
        // Efficiency: no GB200 calibration row; the B200's fitted Blackwell
        // factors are reused (the same die and kernels).
        GpuEntry {
            gpu: Gpu {
                name: "gb200".into(),
                vram_bytes: mib(188_733),
                hbm_bandwidth: 8.0e12,
                peak_flops: 2.5e15,
                peak_flops_fp8: Some(5.0e15),
                peak_flops_int8: Some(5.0e15),
                peak_flops_fp4: Some(10.0e15),
                interconnect_bandwidth: 900e9,
                pcie_bandwidth: 225e9,
                price_per_hour: Some(10.50),
                efficiency: BLACKWELL,
            },
            source: "NVIDIA GB200 NVL72 page (per 72 GPUs); PyTorch OOM 184.31 GiB total capacity; \
                     CoreWeave $42.00/h per 4 GPUs 2026-09; efficiency reused from b200 (fitted Blackwell)",
        },
        // H20 (Hopper, the export-compliant part for China; 96 GB HBM3, 400 W,
        // 8-way HGX).
        // vram: _CudaDeviceProperties(name='NVIDIA H20', major=9, minor=0,
        // total_memory=97285MB, multi_processor_count=78) (public code
        // comments); nvidia-smi prints 97871 MiB (several public logs).
        // Marketed: 96 GB.
        // NVIDIA publishes no H20 datasheet. The launch figures (Baidu Baike's
        // H20 entry, data as of 2025-04-17; TechPowerUp 2025-04-16): HBM3 4.0
        // TB/s; FP16/BF16 148 TFLOPS, FP8 and INT8 296; NVLink 900 GB/s (not
        // cut, 450 per direction); PCIe Gen5 x16 128 GB/s (64 per direction).
        // 148 is the dense figure: the launch reports give it as 15 % of the
        // H100's dense 989 (awtmt.com, 2023-11-28), and 296 = 2 x 148.
        // Price: none in USD (sold in China; no on-demand list price on the
        // price lists searched).
        // Efficiency: no H20 row; the H100's fitted Hopper factors are reused
        // (a GH100 part with HBM3 and the same kernels). Its tensor peak is
        // 15 % of the H100's, so prefill turns compute-bound much sooner.
        GpuEntry {
            gpu: Gpu {
                name: "h20".into(),
                vram_bytes: mib(97_285),
                hbm_bandwidth: 4.0e12,
                peak_flops: 148e12,
                peak_flops_fp8: Some(296e12),
                peak_flops_int8: Some(296e12),
                peak_flops_fp4: None,
                interconnect_bandwidth: 450e9,
                pcie_bandwidth: 64e9,
                price_per_hour: None,
                efficiency: HOPPER_SXM,
            },
            source: "H20 launch figures (no NVIDIA datasheet: Baidu Baike H20 entry, TechPowerUp 2025-04-16); \
                     total_memory 97285 MiB (public torch log); no public USD price; efficiency reused from h100-sxm",
        },
        // AMD Instinct MI325X (CDNA 3, 256 GB HBM3E, OAM, 1000 W).
        // vram: ROCm PyTorch reports "255.98 GiB" per GPU (vllm-project/vllm
        // #41962: "AMD MI325X x 8 (255.98 GiB HBM each)", and its HIP OOM
        // message "total capacity of 255.98 GiB") = 262,124 MiB. Marketed:
        // 256 GB (binary, like the MI300X's 192).
        // AMD MI325X product page (amd.com/en/products/accelerators/instinct/
        // mi300/mi325x.html): 6 TB/s; the MI300X's compute, peak FP16/BF16
        // 1,307.4 TFLOPS dense (2,614.9 with sparsity), FP8 and INT8 2,614.9
        // dense; 7 Infinity Fabric links of 128 GB/s bidirectional (448 GB/s
        // per direction); PCIe Gen5 x16. (stas00/ml-engineering's accelerator
        // table: "MI325X is the same compute as MI300X"; Vultr's ROCm
        // cookbook: 256 GB, 6.0 TB/s, 1,307 TFLOPS FP16.)
        // Price: none found (Crusoe's price list of 2026-09-20 lists only the
        // MI300X).
        // Efficiency: the MI300X's factors reused (same CDNA 3 compute dies and
        // ROCm kernels); those are partly estimated, not fitted.
        GpuEntry {
            gpu: Gpu {
                name: "mi325x".into(),
                vram_bytes: mib(262_124),
                hbm_bandwidth: 6.0e12,
                peak_flops: 1307.4e12,
                peak_flops_fp8: Some(2614.9e12),
                peak_flops_int8: Some(2614.9e12),
                peak_flops_fp4: None,
                interconnect_bandwidth: 448e9,
                pcie_bandwidth: 64e9,
                price_per_hour: None,
                efficiency: MI300X,
            },
            source: "AMD Instinct MI325X product page; ROCm 255.98 GiB (vllm-project/vllm#41962); no public price found; \
                     efficiency reused from mi300x (partly estimated)",
        },
        // AMD Instinct MI355X (CDNA 4, 288 GB HBM3E, OAM, 1400 W,
        // liquid-cooled).
        // vram: HIP OOM messages on 288 GB gfx950 nodes (MI355X and MI350X
        // share the memory) print "GPU 3 has a total capacity of 287.98 GiB"
        // (several public sglang and vLLM logs) = 294,892 MiB. Marketed: 288
        // GB (binary).
        // AMD MI355X product page (amd.com/en/products/accelerators/instinct/
        // mi350/mi355x.html), dense figures: FP16/BF16 2.5 PFLOPS (2,400 MHz x
        // 1,024 matrix cores x 512 FMA x 2 = 2,516.6 TFLOPS, stas00/
        // ml-engineering), FP8 and INT8 5.0 (5,033.2; "with Structured
        // Sparsity" 10.1), MXFP4 (and MXFP6) 10.1 (10,066.3; no sparsity
        // qualifier); 8 TB/s; 7 Infinity Fabric links of 153.6 GB/s
        // bidirectional = 1,075.2 GB/s (537.6 per direction); PCIe Gen5 x16.
        // Price: none found.
        // Efficiency: CDNA 4 has no calibration row: the documented default
        // (module docs), uncalibrated; all-reduce over Infinity Fabric as the
        // MI300X's estimate (15 us).
        GpuEntry {
            gpu: Gpu {
                name: "mi355x".into(),
                vram_bytes: mib(294_892),
                hbm_bandwidth: 8.0e12,
                peak_flops: 2516.6e12,
                peak_flops_fp8: Some(5033.2e12),
                peak_flops_int8: Some(5033.2e12),
                peak_flops_fp4: Some(10066.3e12),
                interconnect_bandwidth: 537.6e9,
                pcie_bandwidth: 64e9,
                price_per_hour: None,
                efficiency: uncalibrated(15e-6),
            },
            source: "AMD Instinct MI355X product page; HIP OOM 287.98 GiB total capacity (public logs); no public price found; \
                     efficiency uncalibrated (documented default: no CDNA 4 calibration row)",
        },
        // RTX PRO 6000 Blackwell Server Edition (GB202, sm_120, 96 GB GDDR7
        // ECC, passive, up to 600 W, PCIe Gen5 x16, no NVLink).
        // vram: _CudaDeviceProperties(name='NVIDIA RTX PRO 6000 Blackwell
        // Server Edition', major=12, minor=0, total_memory=97250MB,
        // multi_processor_count=188) (public torch log); nvidia-smi prints
        // 97,887 MiB. Marketed: 96 GB (32 x 3 GB GDDR7, binary).
        // Bandwidth: 1,597 GB/s (NVIDIA Server Edition product page and its
        // datasheet of 2025-12; the Workstation Edition is 1,792 GB/s).
        // Peaks: the Server Edition datasheet gives no tensor figures and its
        // product page rounds the sparse ones ("1 PFLOPS" FP16/BF16, "4
        // PFLOPS" FP4); the dense figures are the RTX Blackwell architecture
        // whitepaper's for the RTX PRO 6000 Blackwell: FP16/BF16 503.8 (with
        // FP32 accumulate; 1,007.6 sparse), FP8 and INT8 1,007.6, FP4 2,015.2
        // TFLOPS (as tabulated by hmc-tech.com). They are the Workstation
        // Edition's boost-clock figures; the Server Edition may run a few
        // percent lower.
        // Link: no NVLink; GPU-GPU and host traffic over PCIe Gen5 x16, 64
        // GB/s per direction.
        // Price: Akash Network, "Pro 6000 SE 96GB PCIe" from $2.04/GPU-hour
        // (akash.network/pricing/gpus read 2026-09-20, transcribed in
        // api-evangelist/akash; a marketplace "starting at" price).
        // Efficiency: no calibration row for GB202 (GDDR7, sm_120 tensor
        // cores without the B200's TMEM kernels): the documented default,
        // uncalibrated; all-reduce over PCIe as the Ada cards' (40 us).
        GpuEntry {
            gpu: Gpu {
                name: "rtx-pro-6000-se".into(),
                vram_bytes: mib(97_250),
                hbm_bandwidth: 1597e9,
                peak_flops: 503.8e12,
                peak_flops_fp8: Some(1007.6e12),
                peak_flops_int8: Some(1007.6e12),
                peak_flops_fp4: Some(2015.2e12),
                interconnect_bandwidth: 64e9,
                pcie_bandwidth: 64e9,
                price_per_hour: Some(2.04),
                efficiency: uncalibrated(40e-6),
            },
            source: "NVIDIA RTX PRO 6000 Blackwell Server Edition page and datasheet (1597 GB/s), RTX Blackwell whitepaper \
                     (tensor peaks); total_memory 97250 MiB (public torch log); Akash $2.04/h 2026-09; \
                     efficiency uncalibrated (documented default: no GB202 calibration row)",
        },
    ]
}
