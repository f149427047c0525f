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
//! - `peak_flops` is dense bf16 tensor throughput: datasheets quote the 2:4
//!   sparsity figure with an asterisk, which is twice the dense one.
//! - Prices are on-demand USD per GPU-hour from the provider's public price
//!   list, with the date it was read (`None` if no public price was found).
//!
//! # Efficiency factors
//!
//! The roofline prices a step as `step_overhead + max(flops / (peak * mfu),
//! bytes / (bandwidth * mbu)) + t_comm`. `mbu` is therefore the fraction of
//! HBM bandwidth the decode kernels sustain *excluding* the fixed per-step
//! cost, and `step_overhead_s` is the fixed cost (CPU scheduling, launches,
//! sampling, small-kernel tails) that a batch-1 decode pays on top. The two
//! are fitted jointly from published batch-1 decode latencies
//! `t = overhead + weight_bytes / (bandwidth * mbu)`:
//!
//! - **gpt-fast on A100-80GB** (pytorch-labs/gpt-fast README, batch 1, bf16
//!   Llama-2-7B, 5-token prompt, CUDA graphs, GPUs power-capped to 330 W):
//!   TP1 104.9 tok/s, TP2 168.84, TP4 254.02, TP8 328.43. Fitting
//!   `t = c + 64*a*(tp>1) + X/tp` (64 all-reduces per token) to TP1/2/4 gives
//!   X = 7.94 ms, c = 1.59 ms, a = 5.7 us, and predicts TP8 = 2.94 ms
//!   (measured 3.04 ms). X means 13.48 GB / (2.039 TB/s * 7.94 ms) =
//!   **mbu 0.83**; the README's own remark "empirically, peak bandwidth is
//!   about 1700 GB/s" is the same 0.83 of 2039 GB/s.
//! - **vLLM on A100-40GB** (J. Musgrave, "vLLM throughput-latency sweep on
//!   NVIDIA A100", johnmusgrave.com, Llama-3.1-8B bf16, 1024-token prompts,
//!   concurrency 1): about 75 tok/s, "roughly 77% of the memory-bandwidth
//!   ceiling". With mbu 0.83: 16.06 GB / (1.555 TB/s * 0.83) = 12.4 ms of the
//!   13.3 ms, leaving **0.9 ms per step** of overhead.
//! - **vLLM/SGLang on H100** (Hazy Research, "Look Ma, No Bubbles!",
//!   2025-05-27, Llama-3.2-1B bf16, batch 1): the engines reach "at most 50%"
//!   of bandwidth; their fused megakernel reaches **78%**, a kernel-level
//!   ceiling. kvsim first took 0.78 as the H100 default; the serving
//!   measurements in VALIDATION.md (vLLM's H200 CI runs, NVIDIA NIM on H100)
//!   were all slower than it predicted, and **mbu 0.65** fits them (see
//!   `HOPPER_SXM`). 2.47 GB at 50% is 1.48 ms per token, of which 0.95 ms is
//!   bandwidth at 0.78, leaving >= 0.53 ms of per-step overhead even for a
//!   16-layer model.
//! - Cross-check, **vLLM (Aug/Sep 2024) on A100-80GB and H100**
//!   (LambdaLabsML/vllm-benchmark, results/prompt_10, Mistral-7B-Instruct-v0.3,
//!   14.50 GB bf16, 10 concurrent ShareGPT prompts): median TPOT 11.35 ms
//!   (A100) and 8.32 ms (H100). With mbu 0.83 and 0.78 both imply the same
//!   2.8 ms of per-step cost, as expected from one engine version on two GPUs
//!   (that older engine's CPU cost is what vLLM v0.6.0 removed: the blog
//!   "vLLM v0.6.0: 2.7x throughput improvement and 5x latency reduction",
//!   2024-09-05, profiled Llama 3 8B on one H100 spending 33% of the time in
//!   the HTTP server and 29% in scheduling).
//!
//! `step_overhead_s` = **1 ms** for every GPU: 0.5-0.9 ms for current engines
//! above, 1.6 ms in gpt-fast's fit, 2.8 ms in 2024 vLLM. It is host-bound, so
//! it is taken as GPU-independent.
//!
//! `mfu` (prefill): **A100 0.70** from text-generation-inference's benchmark on
//! A100 (huggingface/text-generation-inference PR #1243, Llama-2-13B, 40-token
//! prompts, batch 100-400: 4000 tokens in 370.8 ms .. 16000 in 1753 ms, i.e.
//! 2 * 12.69e9 non-lm_head params * tokens / time = 0.74-0.88 of 312 TFLOP/s),
//! lowered to 0.70 because those prompts have no attention cost and
//! FlashAttention-2 reaches 50-73% of A100 peak (arXiv:2307.08691).
//! **Hopper/Blackwell 0.60** (estimate): no serving prefill measurement was
//! found; FlashAttention-3 reaches 75% of H100 bf16 peak in its best case
//! (arXiv:2407.08608) and H100/B200 GEMMs "sustain up to 93%" of rated
//! throughput (aiweekly.co summary of a Yahoo Finance report, below), while
//! norms, rotary and small chunked-prefill GEMMs pull a whole step below
//! that; 0.60 is the top of the usual 0.4-0.6 serving range. Estimates are
//! marked as such on each entry.
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

/// A100 (40 GB and 80 GB SXM4): mbu from gpt-fast's TP fit, overhead from
/// the vLLM A100-40GB sweep, mfu from TGI's A100 prefill benchmark,
/// all-reduce from nccl#583 (see the module docs).
const A100: Efficiency = Efficiency {
    mbu: 0.83,
    mfu: 0.70,
    step_overhead_s: 1.0e-3,
    layer_overhead_s: 0.0,
    allreduce_latency_s: 10e-6,
};

/// Hopper SXM (H100 SXM, reused for H200 and B200): mfu an estimate,
/// all-reduce from sglang#2904 / nccl#1259 (see the module docs).
///
/// mbu 0.65 is what serving engines reach, not the 78 % of Hazy Research's
/// hand-fused H100 megakernel (the first default): with 0.78, kvsim
/// under-predicted every Hopper serving measurement in VALIDATION.md (vLLM's
/// H200 CI latency runs by 18 % and 25 %, NVIDIA NIM's Llama-3.3-70B on 2 x H100
/// batch-1 token latency by 12 %). 0.65 lies between what vLLM implies (~0.61
/// at 1 ms of overhead) and what TensorRT-LLM implies (~0.68), and brings those
/// cases to -4.9 %, -13.5 % and +2.3 % (`kvsim validate`).
const HOPPER_SXM: Efficiency = Efficiency {
    mbu: 0.65,
    mfu: 0.60,
    step_overhead_s: 1.0e-3,
    layer_overhead_s: 0.0,
    allreduce_latency_s: 10e-6,
};

/// H100 PCIe: the H100 SXM kernel factors (same GH100 die and software;
/// no separate PCIe-card measurement found), all-reduce over PCIe.
const HOPPER_PCIE: Efficiency = Efficiency {
    mbu: 0.65,
    mfu: 0.60,
    step_overhead_s: 1.0e-3,
    layer_overhead_s: 0.0,
    allreduce_latency_s: 40e-6,
};

/// Ada Lovelace PCIe cards (L4, L40S). No public batch-1 decode or prefill
/// measurement on these cards was found. mbu: the A100 kernel-level value
/// (0.83) rounded down to 0.80 for GDDR6. mfu 0.50, the middle of the usual
/// 0.4-0.6 range, below A100's because both boards are power-capped (72 W and
/// 350 W) and their tensor peaks are quoted at boost clock. All-reduce over
/// PCIe from nccl#1530 (8 RTX 4090, the L40S's AD102 die): 42 us.
const ADA_PCIE: Efficiency = Efficiency {
    mbu: 0.80,
    mfu: 0.50,
    step_overhead_s: 1.0e-3,
    layer_overhead_s: 0.0,
    allreduce_latency_s: 40e-6,
};

/// MI300X. Reported achieved fractions of peak on real workloads: about 45% of
/// the dense FLOP/s and about 81% of the 5.3 TB/s bandwidth (aiweekly.co,
/// "AMD MI300X hits only 45% of peak FLOPs in practice", summarising a Yahoo
/// Finance report; SemiAnalysis "MI300X vs H100 vs H200 Benchmark Part 1:
/// Training", 2024-12, found the on-paper specs "not representative").
/// mfu 0.45 from the first. mbu 0.58 (estimate): the 81% is a bandwidth
/// ceiling, and at low concurrency H200 (4.8 TB/s * 0.65 = 3.12 TB/s
/// effective here) serves each query faster than MI300X (Artificial Analysis,
/// "Independent Performance Analysis of Leading GPUs: AMD MI300X, NVIDIA
/// H100, NVIDIA H200", as summarised by secondary write-ups), which bounds
/// MI300X's effective decode bandwidth below 3.12 / 5.3 = 0.59 of peak.
/// All-reduce: no MI300X small-message RCCL figure was found; RCCL on MI250X
/// took about 25 us for 8-byte all-reduces across 16 GCDs before its 1-shot
/// algorithm (ROCm/rccl PR #929) and xGMI links are 64 GB/s each way, so 15 us
/// (estimate, between the NVLink 10 us and that 25 us).
const MI300X: Efficiency = Efficiency {
    mbu: 0.58,
    mfu: 0.45,
    step_overhead_s: 1.0e-3,
    layer_overhead_s: 0.0,
    allreduce_latency_s: 15e-6,
};

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
                     Lambda $1.99/h 2026-09; gpt-fast README, vLLM A100 sweep (mbu/overhead), TGI PR #1243 (mfu), nccl#583",
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
                     gpt-fast README A100-80GB (mbu 0.83), TGI PR #1243 (mfu), nccl#583",
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
                     mbu 0.65 from the Hopper serving cases of VALIDATION.md (vLLM CI, NVIDIA NIM), sglang PR #2904 (all-reduce)",
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
        // Efficiency: no B200 decode/prefill measurement found; H100 SXM
        // factors reused.
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
                efficiency: HOPPER_SXM,
            },
            source: "NVIDIA HGX B200 spec; total_memory 182642 MiB (public torch log); Lambda $6.69/h 2026-09; \
                     efficiency reused from h100-sxm",
        },
    ]
}
