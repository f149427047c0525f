//! Offline maximum-throughput rows: TensorRT-LLM's published performance
//! overview, every request queued at once, as `trtllm-bench throughput` runs
//! them.
//!
//! Source: NVIDIA/TensorRT-LLM `docs/source/performance/perf-overview.md`
//! (the v1.0 overview, commit 00f37686aa854010d68bcbd0f4ab000221541ca6),
//! "Throughput Measurements", tables "Llama 3.1 8B", "Llama 3.3 70B" and
//! "Llama 3.1 405B": `Total Output Throughput (tokens/sec)` of NVIDIA's
//! ModelOpt FP8 checkpoints (FP8 weights, activations and KV cache) on DGX
//! H100 and DGX H200, and FP4 checkpoints on DGX B200; PyTorch backend,
//! synthetic prompts of exactly ISL tokens and outputs of exactly OSL tokens,
//! `$num_requests` from the document's own table.
//!
//! The benchmark's engine settings are not left at the library defaults:
//! `trtllm-bench` sizes `max_batch_size` and `max_num_tokens` from the KV
//! memory it expects (`tensorrt_llm/bench/build/tuning.py`,
//! `calc_engine_setting` and `finetune_setting`), which [`bench_settings`]
//! reproduces; the document says the KV cache took 0.95 of free memory "in
//! many cases" (`--kv_cache_free_gpu_mem_fraction 0.95`). Prefill is chunked:
//! the tuned `max_num_tokens` is often no larger than one prompt (2048 at
//! 2048/2048, where unchunked contexts could never share a step with
//! decodes), and the overview's earlier C++ workflow ran `gptManagerBenchmark
//! --enable_chunked_context`. Every other setting is the `trtllm` preset's.

use rayon::prelude::*;

use crate::catalog;
use crate::hardware::cost::{CostModel, Roof, RooflineCost, StepWork};
use crate::metrics::Summary;
use crate::model::Model;
use crate::scenario::Scenario;
use crate::units::GIB;

use super::fit::{B200_MBU, B200_MFU, HOPPER_MFU};
use super::{CaseResult, RanOn, Role, Tolerance, ran_on};

/// What the B200 calibration column sets.
const B200_FITS: &[&str] = &[B200_MBU, B200_MFU];

/// What the H200 calibration column sets.
const HOPPER_FITS: &[&str] = &[HOPPER_MFU];

/// The defaults each calibration column sets, one column each, fitted one
/// column at a time (no default depends on another column's rows).
pub(super) const CALIBRATION_COLUMNS: [&[&str]; 2] = [HOPPER_FITS, B200_FITS];

/// Which columns [`rows`] simulates.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Columns {
    /// Every column.
    All,
    /// The calibration column of one set of defaults (what the second
    /// fitting stage evaluates for them).
    Fitting(&'static [&'static str]),
}

/// The group these rows print under.
pub(super) const THROUGHPUT: &str = "Offline throughput";

const SOURCE: &str = "NVIDIA/TensorRT-LLM docs/source/performance/perf-overview.md (v1.0, \
    commit 00f37686), \"Throughput Measurements\", Total Output Throughput (tokens/sec); \
    trtllm-bench throughput, PyTorch backend, ModelOpt FP8 (H100, H200) and FP4 (B200) checkpoints";

/// ISL/OSL pairs of the document's tables, with the `$num_requests` its
/// reproduction table gives for each.
const SHAPES: [(u32, u32, u32); 10] = [
    (128, 128, 30000),
    (128, 2048, 3000),
    (128, 4096, 1500),
    (500, 2000, 3000),
    (1000, 1000, 3000),
    (1000, 2000, 1500),
    (2048, 128, 3000),
    (2048, 2048, 1500),
    (5000, 500, 1500),
    (20000, 2000, 1000),
];

/// One column of a table: a model on `tp` of a GPU in a precision, with its
/// published throughput per row of [`SHAPES`] (`None` where the table is
/// blank).
struct Column {
    id: &'static str,
    table: &'static str,
    model: &'static str,
    gpu: &'static str,
    tp: u32,
    fp4: bool,
    /// The defaults the column is a calibration point for (the Hopper mfu
    /// and the B200 factors are fitted to one column each); empty for a
    /// held-out column.
    fits: &'static [&'static str],
    tokens_s: [Option<f64>; 10],
}

const COLUMNS: [Column; 8] = [
    Column {
        id: "trtllm-llama8b-h200-tp1",
        table: "Llama 3.1 8B, H200 TP1 (FP8)",
        model: "llama-3.1-8b",
        gpu: "h200",
        tp: 1,
        fits: &[],
        fp4: false,
        tokens_s: [
            Some(27911.0),
            Some(26221.0),
            Some(18027.0),
            Some(20770.0),
            Some(17744.0),
            Some(16828.0),
            Some(3538.0),
            Some(12194.0),
            Some(3902.0),
            Some(1804.0),
        ],
    },
    Column {
        id: "trtllm-llama8b-h100-tp1",
        table: "Llama 3.1 8B, H100 TP1 (FP8)",
        model: "llama-3.1-8b",
        gpu: "h100-sxm",
        tp: 1,
        fits: &[],
        fp4: false,
        tokens_s: [
            Some(28312.0),
            Some(22714.0),
            Some(14325.0),
            Some(17660.0),
            Some(15220.0),
            Some(13899.0),
            Some(3450.0),
            Some(9305.0),
            Some(3459.0),
            Some(1351.0),
        ],
    },
    Column {
        id: "trtllm-llama70b-h200-tp1",
        table: "Llama 3.3 70B, H200 TP1 (FP8)",
        model: "llama-3.1-70b",
        gpu: "h200",
        tp: 1,
        fits: HOPPER_FITS,
        fp4: false,
        tokens_s: [
            Some(3803.0),
            Some(4336.0),
            Some(2872.0),
            Some(3666.0),
            Some(2909.0),
            Some(2994.0),
            Some(442.0),
            Some(2003.0),
            Some(566.0),
            Some(283.0),
        ],
    },
    Column {
        id: "trtllm-llama70b-h100-tp2",
        table: "Llama 3.3 70B, H100 TP2 (FP8)",
        model: "llama-3.1-70b",
        gpu: "h100-sxm",
        tp: 2,
        fits: &[],
        fp4: false,
        tokens_s: [
            Some(6378.0),
            Some(6651.0),
            Some(4199.0),
            Some(5222.0),
            Some(4205.0),
            Some(4146.0),
            Some(762.0),
            Some(3082.0),
            Some(898.0),
            Some(437.0),
        ],
    },
    Column {
        id: "trtllm-llama70b-b200-tp1",
        table: "Llama 3.3 70B, B200 TP1 (FP4)",
        model: "llama-3.1-70b",
        gpu: "b200",
        tp: 1,
        fits: B200_FITS,
        fp4: true,
        tokens_s: [
            Some(11147.0),
            Some(9922.0),
            Some(6831.0),
            Some(7762.0),
            Some(7007.0),
            Some(6271.0),
            Some(1339.0),
            Some(4783.0),
            Some(1459.0),
            Some(665.0),
        ],
    },
    Column {
        id: "trtllm-llama405b-h200-tp8",
        table: "Llama 3.1 405B, H200 TP8 (FP8)",
        model: "llama-3.1-405b",
        gpu: "h200",
        tp: 8,
        fits: &[],
        fp4: false,
        tokens_s: [
            Some(3814.0),
            Some(5348.0),
            Some(4741.0),
            Some(4724.0),
            Some(3330.0),
            Some(3722.0),
            Some(456.0),
            Some(2948.0),
            Some(650.0),
            Some(505.0),
        ],
    },
    Column {
        id: "trtllm-llama405b-h100-tp8",
        table: "Llama 3.1 405B, H100 TP8 (FP8)",
        model: "llama-3.1-405b",
        gpu: "h100-sxm",
        tp: 8,
        fits: &[],
        fp4: false,
        tokens_s: [
            Some(3627.0),
            Some(4340.0),
            Some(3116.0),
            Some(3994.0),
            Some(2919.0),
            Some(2895.0),
            Some(453.0),
            Some(2296.0),
            Some(610.0),
            Some(345.0),
        ],
    },
    Column {
        id: "trtllm-llama405b-b200-tp4",
        table: "Llama 3.1 405B, B200 TP4 (FP4)",
        model: "llama-3.1-405b",
        gpu: "b200",
        tp: 4,
        fits: &[],
        fp4: true,
        tokens_s: [
            Some(6281.0),
            Some(8020.0),
            Some(6345.0),
            Some(6244.0),
            Some(5209.0),
            Some(4933.0),
            Some(749.0),
            Some(4212.0),
            Some(1048.0),
            Some(672.0),
        ],
    },
];

/// The KV fraction of free memory the document says its runs used.
const KV_FRACTION: f64 = 0.95;

/// `trtllm-bench`'s `max_batch_size` and `max_num_tokens` for `model` on
/// `tp` GPUs of `vram` bytes at `isl`/`osl` (`calc_engine_setting` and
/// `finetune_setting` in `tensorrt_llm/bench/build/tuning.py`): the requests
/// whose whole sequence fits in the KV memory it estimates, rounded up.
fn bench_settings(
    model: &Model,
    weight_bytes_per_param: f64,
    vram: u64,
    tp: u32,
    isl: u32,
    osl: u32,
) -> (u32, u32) {
    let gib = GIB as f64;
    let kv_heads = f64::from(tp.max(model.kv_heads));
    // fp8 KV: one byte per element.
    let bytes_per_token =
        2.0 * f64::from(model.layers) * kv_heads * f64::from(model.head_dim) / gib;
    let engine = model.params as f64 * weight_bytes_per_param / gib;
    let available = vram as f64 / gib * f64::from(tp) - engine;
    let cache = available * KV_FRACTION;
    let requests = cache / (bytes_per_token * f64::from(isl + osl));
    let raw_bs = requests.min(4096.0);
    let raw_token = (raw_bs * (1.0 + f64::from(isl) / f64::from(osl))).min(32768.0);
    let round_up = |x: f64, step: f64| step * (x / step).ceil();
    let max_bs = if raw_bs < 256.0 {
        64f64.max(round_up(raw_bs, 32.0))
    } else if raw_bs < 1024.0 {
        round_up(raw_bs, 128.0)
    } else {
        round_up(raw_bs, 256.0)
    };
    let max_tokens = if raw_token < 4096.0 {
        2048f64.max(round_up(raw_token, 256.0))
    } else if raw_token < 8192.0 {
        round_up(raw_token, 512.0)
    } else {
        round_up(raw_token, 1024.0)
    };
    (max_bs as u32, max_tokens as u32)
}

/// The rows of the `which` columns, simulated by `sim` (a scenario's TOML to
/// its output token throughput and a note), in parallel and in table order.
pub(super) fn rows(
    sim: &(dyn Fn(&str) -> (Scenario, Summary) + Sync),
    which: Columns,
) -> Vec<CaseResult> {
    let mut cases = Vec::new();
    for c in COLUMNS.iter().filter(|c| match which {
        Columns::All => true,
        Columns::Fitting(fits) => c.fits == fits,
    }) {
        let model = catalog::model(c.model).expect("catalog model");
        let gpu = catalog::gpu(c.gpu).expect("catalog gpu");
        let (weights, compute, per_param) = if c.fp4 {
            ("int4", "fp4", 0.5)
        } else {
            ("fp8", "fp8", 1.0)
        };
        for (&(isl, osl, requests), published) in SHAPES.iter().zip(c.tokens_s) {
            let Some(published) = published else {
                continue;
            };
            let (max_bs, max_tokens) =
                bench_settings(&model, per_param, gpu.vram_bytes, c.tp, isl, osl);
            let toml = offline_toml(&Offline {
                name: "trtllm-bench",
                model: c.model,
                weights,
                compute,
                gpu: c.gpu,
                tp: c.tp,
                memory_fraction: Some(KV_FRACTION),
                requests,
                isl,
                osl,
                max_num_seqs: max_bs,
                max_batched_tokens: max_tokens,
                chunked: true,
            });
            cases.push((
                toml,
                isl,
                osl,
                CaseResult {
                    ran_on: Some(RanOn {
                        gpu: c.gpu.into(),
                        model: c.model.into(),
                        tp: c.tp,
                    }),
                    id: leak(format!("{}-{isl}-{osl}", c.id)),
                    group: THROUGHPUT,
                    source: SOURCE,
                    origin: "trtllm-perf-overview",
                    role: if c.fits.is_empty() {
                        Role::HeldOut
                    } else {
                        Role::Calibration(c.fits)
                    },
                    configuration: format!(
                        "{}: {} weights and compute, fp8 KV, {} x {}, engine preset trtllm with \
                     engine.memory_fraction {KV_FRACTION}, max_num_seqs {max_bs} and \
                     max_batched_tokens {max_tokens} (trtllm-bench's tuning), chunked prefill, \
                     {requests} requests of {isl} / {osl} tokens queued at once",
                        c.table,
                        if c.fp4 { "NVFP4 (4-bit)" } else { "fp8" },
                        c.tp,
                        c.gpu,
                    ),
                    metric: "output throughput",
                    unit: "tok/s",
                    published,
                    kvsim: f64::NAN,
                    tolerance: Tolerance::Relative(0.25),
                    note: String::new(),
                },
            ));
        }
    }
    cases
        .into_par_iter()
        .map(|(toml, isl, osl, mut case)| {
            let (s, m) = sim(&toml);
            case.kvsim = m.throughput_tok_s;
            case.note = step_note(&s, &m, isl, osl, case.published);
            case
        })
        .collect()
}

/// Where the time of kvsim's average step goes, and how long the step would
/// have to be for the published throughput at kvsim's batch: the computed
/// account of a row's error.
///
/// In the steady state of an offline run every decoding sequence also brings
/// `isl / osl` prompt tokens per step (its prompt is prefilled once over its
/// `osl` steps) and reads a context of `isl + osl / 2` tokens on average.
fn step_note(s: &Scenario, m: &Summary, isl: u32, osl: u32, published: f64) -> String {
    let batch = m.batch_mean;
    let context = f64::from(isl) + f64::from(osl) / 2.0;
    let prefill = batch * f64::from(isl) / f64::from(osl);
    let flops_per_pair: u64 = s
        .layout
        .groups()
        .iter()
        .map(|g| u64::from(g.layers) * g.flops_per_pair)
        .sum();
    let work = StepWork {
        decode_tokens: batch.round() as u32,
        prefill_tokens: prefill.round() as u32,
        prefill_seqs: 1,
        kv_read_bytes: (batch * context) as u64 * s.budget.bytes_per_token,
        kv_write_bytes: (batch + prefill) as u64 * s.budget.bytes_per_token,
        attention_flops: (batch * context) as u64 * flops_per_pair
            + (prefill * context) as u64 * flops_per_pair,
        swap_bytes: 0,
    };
    let cost = RooflineCost::new(&s.model, &s.deployment, &s.deployment.efficiency);
    let parts = cost.parts(&work);
    let step = cost.step_time(&work).as_secs_f64();
    let group = |g: &Roof| {
        let bound = if g.memory_bound() {
            "memory"
        } else {
            "compute"
        };
        format!(
            "{:.1} ms ({bound}-bound: compute {:.1}, memory {:.1})",
            g.time() * 1e3,
            g.compute * 1e3,
            g.memory * 1e3
        )
    };
    format!(
        "KV {:.1} GiB per GPU; batch mean {:.0}, peak {}; {} preemptions. kvsim's mean step \
         takes {:.1} ms; the published throughput at this batch means {:.1} ms. A steady-state \
         step ({:.0} decodes at {:.0}-token contexts, {:.0} prompt tokens) in kvsim: linear \
         layers {}, attention {}, all-reduce {:.1} ms, {:.1} ms in all with the fixed costs",
        s.budget.kv_per_gpu as f64 / GIB as f64,
        batch,
        m.batch_peak,
        m.preemptions,
        1e3 * batch / m.throughput_tok_s,
        1e3 * batch / published,
        batch,
        context,
        prefill,
        group(&parts.linear),
        group(&parts.attention),
        parts.comm * 1e3,
        step * 1e3,
    )
}

const LAUNCH_SOURCE: &str = "NVIDIA/TensorRT-LLM docs/source/blogs/H200launch.md (commit 1555478c), \
    \"H200 FP8 Max throughput\" table: TensorRT-LLM v0.5.0, TensorRT 9.1.0.4, preliminary \
    measurements, FP8, out tok/s per GPU at the largest power-of-two batch that fits";

/// The H200 launch blog's table: model, batch, tp, ISL, OSL, output tokens/s
/// per GPU.
/// Its seventh row (Llama-70B, batch 512, 128/2048) is left out: the
/// stored file says TP 2 and 1,654 tok/s per GPU, an earlier copy of the
/// same blog TP 4 and 6,616 tok/s in all (1,654 x 4), so its configuration
/// is not known.
const LAUNCH: [(&str, &str, u32, u32, u32, u32, f64); 6] = [
    (
        "trtllm05-h200-llama13b-bs1024-128-128",
        "llama-2-13b",
        1024,
        1,
        128,
        128,
        11819.0,
    ),
    (
        "trtllm05-h200-llama13b-bs128-128-2048",
        "llama-2-13b",
        128,
        1,
        128,
        2048,
        4750.0,
    ),
    (
        "trtllm05-h200-llama13b-bs64-2048-128",
        "llama-2-13b",
        64,
        1,
        2048,
        128,
        1349.0,
    ),
    (
        "trtllm05-h200-llama70b-bs512-128-128",
        "llama-2-70b",
        512,
        1,
        128,
        128,
        3014.0,
    ),
    (
        "trtllm05-h200-llama70b-bs64-2048-128",
        "llama-2-70b",
        64,
        1,
        2048,
        128,
        341.0,
    ),
    (
        "trtllm05-h200-llama70b-bs32-2048-128",
        "llama-2-70b",
        32,
        1,
        2048,
        128,
        303.0,
    ),
];

/// The H200 launch blog's rows. TensorRT-LLM v0.5's benchmark ran one
/// static batch: every prompt of the batch prefilled in one step, then the
/// batch decoded together, throughput being the batch's output tokens over
/// its whole latency (the batch size is the table's). kvsim runs the same:
/// `users = requests = batch`, a step budget that holds every prompt, no
/// chunking. FP8 weights, activations and KV cache (`--enable_fp8
/// --fp8_kv_cache`, that release's FP8 recipe).
pub(super) fn launch_rows(sim: &(dyn Fn(&str) -> (Scenario, Summary) + Sync)) -> Vec<CaseResult> {
    LAUNCH
        .par_iter()
        .map(|&(id, model, batch, tp, isl, osl, published)| {
            let toml = offline_toml(&Offline {
                name: "trtllm-0.5-static-batch",
                model,
                weights: "fp8",
                compute: "fp8",
                gpu: "h200",
                tp,
                memory_fraction: None,
                requests: batch,
                isl,
                osl,
                max_num_seqs: batch,
                max_batched_tokens: batch * isl,
                chunked: false,
            });
            let (s, m) = sim(&toml);
            CaseResult {
                ran_on: ran_on(&s),
                id,
                group: THROUGHPUT,
                source: LAUNCH_SOURCE,
                origin: "trtllm-0.5-h200-launch",
                role: Role::HeldOut,
                configuration: format!(
                    "{model} fp8 weights, compute and KV on {tp} x h200, engine preset trtllm, one \
                     static batch of {batch} requests of {isl} / {osl} tokens (max_num_seqs {batch}, \
                     a step budget holding every prompt, no chunking); output tokens/s per GPU"
                ),
                metric: "output throughput per GPU",
                unit: "tok/s",
                published,
                kvsim: m.throughput_tok_s / f64::from(tp),
                tolerance: Tolerance::Relative(0.25),
                note: step_note(&s, &m, isl, osl, published * f64::from(tp)),
            }
        })
        .collect()
}

const LMDEPLOY_SOURCE: &str = "InternLM/lmdeploy docs/en/benchmark/a100_fp16.md (commit 3e391df4), \
    \"Benchmark on A100 (FP16)\": lmdeploy v0.1.0a1 TurboMind, (x8) A100-80G, profile_generation \
    (concurrency threads, 10 rounds; TokenThroughput = generated tokens / total time, prefill \
    included)";

/// A row of LMDeploy's table: id, model, tp, concurrency, ISL, OSL,
/// max_batch_size of its benchmark script, output tokens/s.
type LmdeployRow = (&'static str, &'static str, u32, u32, u32, u32, u32, f64);

/// LMDeploy's table.
const LMDEPLOY: [LmdeployRow; 10] = [
    (
        "lmdeploy-a100-llama7b-c1-128-2048",
        "llama-2-7b",
        1,
        1,
        128,
        2048,
        128,
        98.92,
    ),
    (
        "lmdeploy-a100-llama7b-c64-128-128",
        "llama-2-7b",
        1,
        64,
        128,
        128,
        128,
        3024.07,
    ),
    (
        "lmdeploy-a100-llama7b-c64-128-2048",
        "llama-2-7b",
        1,
        64,
        128,
        2048,
        128,
        1852.06,
    ),
    (
        "lmdeploy-a100-llama7b-c64-2048-2048",
        "llama-2-7b",
        1,
        64,
        2048,
        2048,
        128,
        755.65,
    ),
    (
        "lmdeploy-a100-llama13b-c32-128-128",
        "llama-2-13b",
        1,
        32,
        128,
        128,
        128,
        1301.27,
    ),
    (
        "lmdeploy-a100-llama13b-c64-128-2048",
        "llama-2-13b",
        1,
        64,
        128,
        2048,
        128,
        998.86,
    ),
    (
        "lmdeploy-a100-llama70b-tp4-c1-128-2048",
        "llama-2-70b",
        4,
        1,
        128,
        2048,
        256,
        32.38,
    ),
    (
        "lmdeploy-a100-llama70b-tp4-c64-128-2048",
        "llama-2-70b",
        4,
        64,
        128,
        2048,
        256,
        1391.8,
    ),
    (
        "lmdeploy-a100-llama70b-tp4-c64-2048-128",
        "llama-2-70b",
        4,
        64,
        2048,
        128,
        256,
        270.47,
    ),
    (
        "lmdeploy-a100-llama70b-tp4-c16-2048-2048",
        "llama-2-70b",
        4,
        16,
        2048,
        2048,
        256,
        399.42,
    ),
];

/// LMDeploy's closed-loop rows: `concurrency` threads each sending its next
/// request when the last returns, ten rounds, fp16 weights and KV on
/// A100-80GB, kvsim's default engine settings (LMDeploy has no preset; its
/// KV pool filled the GPU, about 74-78 GB in use at every batch) with the
/// benchmark script's `max_batch_size`.
pub(super) fn lmdeploy_rows(sim: &(dyn Fn(&str) -> (Scenario, Summary) + Sync)) -> Vec<CaseResult> {
    LMDEPLOY
        .par_iter()
        .map(|&(id, model, tp, users, isl, osl, max_bs, published)| {
            let requests = 10 * users;
            let toml = format!(
                r#"
name = "lmdeploy-profile-generation"
seed = 1
requests = {requests}

[model]
preset = "{model}"
weight_dtype = "fp16"

[hardware]
gpu = "a100-80gb"
tp = {tp}

[traffic]
arrival = {{ kind = "closed", users = {users} }}
prompt = {{ kind = "fixed", value = {isl} }}
output = {{ kind = "fixed", value = {osl} }}
max_tokens = {{ kind = "fixed", value = {osl} }}

[cache]
policy = "paged"
kv_dtype = "fp16"

[scheduler]
max_num_seqs = {max_bs}
"#
            );
            let (s, m) = sim(&toml);
            CaseResult {
                ran_on: ran_on(&s),
                id,
                group: THROUGHPUT,
                source: LMDEPLOY_SOURCE,
                origin: "lmdeploy-a100",
                role: Role::HeldOut,
                configuration: format!(
                    "{model} fp16 weights and KV on {tp} x a100-80gb, kvsim's default engine \
                     settings with max_num_seqs {max_bs}, {users} closed-loop users, {isl} / {osl} \
                     tokens, 10 rounds ({requests} requests)"
                ),
                metric: "output throughput",
                unit: "tok/s",
                published,
                kvsim: m.throughput_tok_s,
                tolerance: Tolerance::Relative(0.25),
                note: step_note(&s, &m, isl, osl, published),
            }
        })
        .collect()
}

/// An offline benchmark as a scenario: `requests` requests of `isl` /
/// `osl` tokens queued at once on the `trtllm` preset, fp8 KV, no prefix
/// sharing (the prompts are random tokens), the benchmark's batch limits.
struct Offline<'a> {
    name: &'a str,
    model: &'a str,
    weights: &'a str,
    compute: &'a str,
    gpu: &'a str,
    tp: u32,
    memory_fraction: Option<f64>,
    requests: u32,
    isl: u32,
    osl: u32,
    max_num_seqs: u32,
    max_batched_tokens: u32,
    chunked: bool,
}

/// The scenario file of `o`.
fn offline_toml(o: &Offline) -> String {
    let fraction = o
        .memory_fraction
        .map(|f| format!("memory_fraction = {f}\n"))
        .unwrap_or_default();
    format!(
        r#"
name = "{name}"
seed = 1
requests = {requests}

[model]
preset = "{model}"
weight_dtype = "{weights}"
compute_dtype = "{compute}"

[hardware]
gpu = "{gpu}"
tp = {tp}

[engine]
preset = "trtllm"
{fraction}
[traffic]
arrival = {{ kind = "closed", users = {requests} }}
prompt = {{ kind = "fixed", value = {isl} }}
output = {{ kind = "fixed", value = {osl} }}
max_tokens = {{ kind = "fixed", value = {osl} }}

[cache]
policy = "paged"
kv_dtype = "fp8"
prefix_caching = false

[scheduler]
max_num_seqs = {max_num_seqs}
max_batched_tokens = {max_batched_tokens}
chunked_prefill = {chunked}
"#,
        name = o.name,
        requests = o.requests,
        model = o.model,
        weights = o.weights,
        compute = o.compute,
        gpu = o.gpu,
        tp = o.tp,
        isl = o.isl,
        osl = o.osl,
        max_num_seqs = o.max_num_seqs,
        max_batched_tokens = o.max_batched_tokens,
        chunked = o.chunked,
    )
}

/// A row id built at run time, kept for the life of the process (the ids
/// are `&'static str` like the hand-written ones; a few dozen short strings).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `finetune_setting`'s rounding, by hand: 8B fp8 on one H200 has
    /// (139.8 - 7.5) x 0.95 = 125.7 GiB for KV at 64 KiB per token, 1,030
    /// requests of 2,000 tokens: the batch rounds up to 1,280 (multiples of
    /// 256) and the tokens, 2,060, to 2,304 (multiples of 256 below 4,096);
    /// 70B at 20000/2000 fits a few dozen requests, so the floors apply.
    #[test]
    fn bench_settings_follow_trtllm_bench() {
        let h200 = catalog::gpu("h200").unwrap().vram_bytes;
        let m8 = catalog::model("llama-3.1-8b").unwrap();
        assert_eq!(bench_settings(&m8, 1.0, h200, 1, 1000, 1000), (1280, 2304));
        let m70 = catalog::model("llama-3.1-70b").unwrap();
        let (bs, tokens) = bench_settings(&m70, 1.0, h200, 1, 20000, 2000);
        assert_eq!(bs, 64);
        assert_eq!(tokens, 2048);
        assert!(20000 > tokens, "these prompts run chunked");
    }
}
