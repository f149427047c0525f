//! The validation cases: each builds kvsim's configuration from the source's
//! description, runs it (or does the arithmetic) and records both figures.

use std::path::Path;

use crate::catalog;
use crate::engine::{Limits, RunOutput, simulate_without_timeline};
use crate::hardware::cost::RooflineCost;
use crate::metrics::{Outcome, Summary};
use crate::model::{Dtype, kv_bytes};
use crate::scenario::Scenario;
use crate::scenario::spec::GpuSpec;
use crate::sweep::{mean_ci95, replicate_seed};
use crate::units::GIB;

use super::disagg::{self, DISAGG};
use super::fit::{FIRST_STAGE, FITTED_DEFAULTS, Fitted, LeaveOneOut, Residual, START, fit};
use super::throughput::{self, THROUGHPUT};
use super::tiers::{self, TIERED};
use super::{CaseResult, Role, Tolerance, ran_on};

/// Group names, in the order `VALIDATION.md` prints them.
pub(super) const GROUPS: [&str; 7] = [ARITHMETIC, PAGED, DECODE, CURVE, THROUGHPUT, TIERED, DISAGG];
pub(super) const ARITHMETIC: &str = "KV arithmetic";
pub(super) const PAGED: &str = "PagedAttention (OPT-13B, A100-40GB)";
pub(super) const DECODE: &str = "Decode latency";
pub(super) const CURVE: &str = "Concurrency curve";

/// Every row, the fit of the defaults to the calibration rows, and the
/// leave-one-source-out refits.
#[derive(Clone, Debug)]
pub struct Validation {
    /// Every row, in table order.
    pub rows: Vec<CaseResult>,
    /// The catalog's values of the fitted defaults.
    pub catalog: Fitted,
    /// The defaults refitted to every calibration row.
    pub fitted: Fitted,
    /// One refit per calibration source, without that source.
    pub leave_one_out: Vec<LeaveOneOut>,
}

/// Every case, in table order, and the fits. Takes about a minute in release
/// builds on two cores, most of it the B200 fit (each evaluation simulates
/// ten whole offline benchmarks).
pub fn run_cases() -> Validation {
    let mut out = Vec::new();
    arithmetic(&mut out);
    quantization(&mut out);
    paged_attention(&mut out);
    decode_latency(&mut out, None);
    mi300x_batch_latency(&mut out);
    concurrency_curve(&mut out, None, &NIM_USERS);
    out.extend(throughput::rows(
        &|toml| offline_throughput(toml, None),
        throughput::Columns::All,
    ));
    out.extend(throughput::launch_rows(&|toml| {
        offline_throughput(toml, None)
    }));
    out.extend(throughput::lmdeploy_rows(&|toml| {
        offline_throughput(toml, None)
    }));
    out.extend(tiers::rows());
    out.extend(disagg::rows());
    for r in &mut out {
        if let Some((_, bound)) = KNOWN_MISSES.iter().find(|(id, _)| *id == r.id) {
            let bound = match r.tolerance {
                Tolerance::Absolute(_) => format!("{bound}"),
                _ => format!("{:.0} %", bound * 100.0),
            };
            r.note.push_str(&format!(
                ". Known miss: the tests hold it to |error| <= {bound} instead, so a regression \
                 still fails"
            ));
        }
    }
    let catalog = Fitted::catalog();
    let residuals = |rows: Vec<CaseResult>| {
        rows.into_iter()
            .map(|r| Residual {
                origin: r.origin,
                error: r.error(),
            })
            .collect::<Vec<_>>()
    };
    let serving = |f: &Fitted| residuals(serving_calibration_rows(Some(f)));
    let at_catalog = calibration_rows(None);
    // Which defaults of a stage the rows of each set of sources constrain.
    let free = |stage: &[&str], exclude: Option<&str>| {
        FITTED_DEFAULTS.map(|d| {
            stage.contains(&d)
                && at_catalog.iter().any(|r| {
                    Some(r.origin) != exclude
                        && matches!(r.role, Role::Calibration(names) if names.contains(&d))
                })
        })
    };
    let stage1 = &FIRST_STAGE;
    let first = fit(&serving, None, START, free(stage1, None));
    // The second stage, one throughput column at a time: each sets its own
    // defaults and no other column's.
    let fitted = throughput::CALIBRATION_COLUMNS
        .iter()
        .fold(first, |fitted, &defaults| {
            let column = |f: &Fitted| {
                residuals(throughput::rows(
                    &|toml| offline_throughput(toml, Some(f)),
                    throughput::Columns::Fitting(defaults),
                ))
            };
            fit(&column, None, fitted, free(defaults, None))
        });
    let under_full = calibration_rows(Some(&fitted));
    let mut origins: Vec<&'static str> = at_catalog.iter().map(|r| r.origin).collect();
    origins.dedup();
    let leave_one_out = origins
        .into_iter()
        .map(|origin| {
            // The second stage's factors are kept from the full fit in every
            // refit (they are fitted after the rest, and hardly depend on
            // it), except that they are unconstrained without their own
            // source.
            let free1 = free(stage1, Some(origin));
            let refit = fit(&serving, Some(origin), fitted, free1);
            let under_refit = calibration_rows(Some(&refit));
            let rows = under_full
                .iter()
                .zip(&under_refit)
                .filter(|(a, _)| a.origin == origin)
                .map(|(a, b)| (a.id, a.error(), b.error()))
                .collect();
            let all_free = free(&FITTED_DEFAULTS, Some(origin));
            LeaveOneOut {
                origin,
                refit,
                held: FITTED_DEFAULTS
                    .iter()
                    .zip(all_free)
                    .filter(|(_, f)| !f)
                    .map(|(d, _)| *d)
                    .collect(),
                rows,
            }
        })
        .collect();
    Validation {
        rows: out,
        catalog,
        fitted,
        leave_one_out,
    }
}

/// Every calibration row, simulated with the catalog's values (`None`) or
/// with candidate values of the fitted defaults.
pub(super) fn calibration_rows(fit: Option<&Fitted>) -> Vec<CaseResult> {
    let mut out = serving_calibration_rows(fit);
    out.extend(throughput_calibration_rows(fit));
    out
}

/// The latency rows of the first fitting stage.
fn serving_calibration_rows(fit: Option<&Fitted>) -> Vec<CaseResult> {
    let mut out = Vec::new();
    decode_latency(&mut out, fit);
    concurrency_curve(&mut out, fit, &[1]);
    out.retain(|r| matches!(r.role, Role::Calibration(_)));
    out
}

/// The throughput rows of the second fitting stage (one H200 and one B200
/// column of TensorRT-LLM's table).
fn throughput_calibration_rows(fit: Option<&Fitted>) -> Vec<CaseResult> {
    throughput::CALIBRATION_COLUMNS
        .iter()
        .flat_map(|&defaults| {
            throughput::rows(
                &|toml| offline_throughput(toml, fit),
                throughput::Columns::Fitting(defaults),
            )
        })
        .collect()
}

/// Cases that miss their target today, with the wider bound on `|error()|`
/// the tests assert for them (relative fraction or absolute, as the case's
/// tolerance; about five points beyond today's error): the misses are
/// reported with their computed cause, and may not silently get worse.
pub(super) const KNOWN_MISSES: [(&str, f64); 23] = [
    ("paged-fig13a-vs-oracle", 0.45),
    ("paged-fig13a-vs-max", 0.52),
    ("oci-mi300x-405b-bs64", 0.39),
    ("oci-mi300x-405b-bs128", 0.48),
    ("oci-mi300x-405b-bs256", 0.52),
    ("nim-70b-c5-ttft", 0.36),
    ("nim-70b-c25-ttft", 0.5),
    ("nim-70b-c50-ttft", 0.6),
    ("trtllm-llama405b-h100-tp8-128-2048", 0.34),
    ("trtllm-llama405b-h100-tp8-128-4096", 0.46),
    ("trtllm-llama405b-h100-tp8-1000-2000", 0.34),
    ("trtllm-llama405b-b200-tp4-500-2000", 0.31),
    ("trtllm-llama405b-b200-tp4-1000-2000", 0.32),
    ("lmdeploy-a100-llama70b-tp4-c64-128-2048", 0.53),
    ("lmdeploy-a100-llama70b-tp4-c16-2048-2048", 0.33),
    ("vllm-offload-ttft-10k-compute", 0.41),
    ("vllm-offload-ttft-50k-compute", 0.26),
    ("vllm-offload-ttft-100k-compute", 0.23),
    ("vllm-offload-thr-hit0", 0.25),
    // At the bisection's ceiling: the largest error the search can give.
    ("distserve-sim-opt13b-per-gpu-rate", 2.15),
    ("dynamo-1node-agg-c128-tps-gpu", 0.42),
    ("dynamo-1node-disagg-c128-tps-user", 0.37),
    ("dynamo-1node-disagg-over-agg-at-same-user-rate", 0.68),
];

/// Runs `s` with `seed` on the roofline with its own efficiency factors.
pub(super) fn run(s: &Scenario, seed: u64) -> RunOutput {
    let cost = RooflineCost::new(&s.model, &s.deployment, &s.deployment.efficiency);
    // The cases are built in and short: none comes near the horizon. None
    // reads the timeline.
    simulate_without_timeline(s, seed, cost, &Limits::default())
        .expect("a validation case ran past the horizon")
}

/// Runs an offline-throughput scenario (under `fit`'s values, if any).
fn offline_throughput(toml: &str, fit: Option<&Fitted>) -> (Scenario, Summary) {
    let s = scenario_under(toml, fit);
    let m = run(&s, s.seed).summary;
    (s, m)
}

/// Seeds each stochastic PagedAttention experiment runs with.
const PAGED_REPLICATES: u32 = 5;

/// [`sim`] over `n` seeds (the sweep's replicate seeds, so the first is the
/// scenario's own).
fn sim_replicates(toml: &str, n: u32) -> Vec<Summary> {
    let s = scenario(toml);
    (0..n)
        .map(|k| run(&s, replicate_seed(s.seed, k)).summary)
        .collect()
}

/// Builds a validation scenario: a user's configuration, with catalog
/// hardware and factors only (panics otherwise, so a case that builds its
/// own cannot pass).
fn scenario(toml: &str) -> Scenario {
    scenario_at(toml, Path::new("validate.toml"))
}

/// [`scenario`] read as if from `path` (whose directory holds the files it
/// names, such as a trace).
pub(super) fn scenario_at(toml: &str, path: &Path) -> Scenario {
    let s = Scenario::from_toml(toml, path, &[])
        .unwrap_or_else(|e| panic!("validation scenario does not build: {e}\n{toml}"));
    if let Err(why) = catalog_only(&s) {
        panic!("a validation case {why}:\n{toml}");
    }
    s
}

/// Builds a scenario for a fit: `toml` with `fit`'s values set (or
/// [`scenario`] when `fit` is `None`).
fn scenario_under(toml: &str, fit: Option<&Fitted>) -> Scenario {
    let Some(fit) = fit else {
        return scenario(toml);
    };
    let s = scenario(toml);
    Scenario::from_toml(
        toml,
        Path::new("validate.toml"),
        &fit.overrides(&s.deployment.gpu.name),
    )
    .unwrap_or_else(|e| panic!("refit scenario does not build: {e}\n{toml}"))
}

/// The `[hardware]` keys that set efficiency factors, memory reserves or
/// link rates by hand: none may appear in a case, at the top level or in a
/// pool's `[deployment.<pool>.hardware]`.
const FACTOR_KEYS: [&str; 11] = [
    "mbu",
    "mfu",
    "step_overhead_s",
    "layer_overhead_s",
    "allreduce_latency_s",
    "calibration",
    "runtime_reserve_gib",
    "pcie_gbps",
    "pcie_block_us",
    "nic_gbps",
    "nic_latency_us",
];

/// Why `s` is not exactly what a user gets from the catalog and the scenario
/// keys: an inline GPU, an efficiency factor, memory reserve or KV-tier link
/// rate set by hand, a deployment whose GPU or factors differ from the
/// catalog entry, or (disaggregated) the same in a pool's overlay, or a KV
/// link's rate or latency set by hand (`deployment.link.gbps`,
/// `latency_us`: no anchor here states its link, so the defaults for the
/// link's kind stand).
pub(super) fn catalog_only(s: &Scenario) -> Result<(), String> {
    let h = &s.spec.hardware;
    if let GpuSpec::Inline(_) = &h.gpu {
        return Err("builds its own GPU (an inline hardware.gpu)".into());
    }
    let set = |key: &str| match key {
        "mbu" => h.mbu.is_some(),
        "mfu" => h.mfu.is_some(),
        "step_overhead_s" => h.step_overhead_s.is_some(),
        "layer_overhead_s" => h.layer_overhead_s.is_some(),
        "allreduce_latency_s" => h.allreduce_latency_s.is_some(),
        "calibration" => h.calibration.is_some(),
        "runtime_reserve_gib" => h.runtime_reserve_gib.is_some(),
        "pcie_gbps" => h.pcie_gbps.is_some(),
        "pcie_block_us" => h.pcie_block_us.is_some(),
        "nic_gbps" => h.nic_gbps.is_some(),
        "nic_latency_us" => h.nic_latency_us.is_some(),
        _ => false,
    };
    if let Some(key) = FACTOR_KEYS.iter().find(|k| set(k)) {
        return Err(format!(
            "sets hardware.{key}, a factor the catalog and the engine presets do not give"
        ));
    }
    if let Some(dep) = &s.spec.deployment {
        for (pool, spec) in [("prefill", &dep.prefill), ("decode", &dep.decode)] {
            let Some(t) = &spec.hardware else { continue };
            if let Some(key) = FACTOR_KEYS.iter().find(|k| t.contains_key(**k)) {
                return Err(format!(
                    "sets deployment.{pool}.hardware.{key}, a factor the catalog and the engine \
                     presets do not give"
                ));
            }
            if matches!(t.get("gpu"), Some(toml::Value::Table(_))) {
                return Err(format!(
                    "builds its own GPU (an inline deployment.{pool}.hardware.gpu)"
                ));
            }
        }
        for (key, set) in [
            ("gbps", dep.link.gbps.is_some()),
            ("latency_us", dep.link.latency_us.is_some()),
        ] {
            if set {
                return Err(format!(
                    "sets deployment.link.{key} by hand: a case takes the link kind's defaults \
                     unless its anchor states the link"
                ));
            }
        }
    }
    // The deployment as resolved (the decode pool's, when disaggregated).
    let name = &s.deployment.gpu.name;
    let entry =
        catalog::gpu(name).ok_or_else(|| format!("names a GPU not in the catalog: {name}"))?;
    if s.deployment.gpu != entry || s.deployment.efficiency != entry.efficiency {
        return Err(format!(
            "runs {name} with numbers that are not the catalog's"
        ));
    }
    match &s.disagg {
        Some(d) => catalog_only(&d.prefill).map_err(|e| format!("{e} (the prefill pool)")),
        None => Ok(()),
    }
}

fn bpt(model: &str, dtype: Dtype) -> u64 {
    catalog::model(model)
        .unwrap_or_else(|| panic!("catalog model {model}"))
        .kv_bytes_per_token(dtype)
}

// ---------------------------------------------------------------------------
// KV arithmetic

const SEEDS: &str = "kvsim seed documents (README, \"The seeds' worked examples\")";

fn arithmetic(out: &mut Vec<CaseResult>) {
    let b70 = bpt("llama-3.1-70b", Dtype::Bf16);
    out.push(CaseResult {
        ran_on: None,
        id: "seed-70b-8192",
        group: ARITHMETIC,
        origin: "seeds",
        role: Role::Arithmetic,
        source: SEEDS,
        configuration: "80 layers x 8 KV heads x 128, bf16, 8192 tokens, batch 1".into(),
        metric: "KV bytes",
        unit: "B",
        published: 2_684_354_560.0,
        kvsim: kv_bytes(b70, 8192, 1).expect("fits u64") as f64,
        tolerance: Tolerance::Exact,
        note: "llama-3.1-70b from the catalog".into(),
    });
    let b8 = bpt("llama-3.1-8b", Dtype::Bf16);
    out.push(CaseResult {
        ran_on: None,
        id: "seed-32l-batch4",
        group: ARITHMETIC,
        origin: "seeds",
        role: Role::Arithmetic,
        source: SEEDS,
        configuration: "32 layers x 8 KV heads x 128, bf16, 4096 tokens, batch 4".into(),
        metric: "KV bytes",
        unit: "B",
        published: 2_147_483_648.0,
        kvsim: kv_bytes(b8, 4096, 4).expect("fits u64") as f64,
        tolerance: Tolerance::Exact,
        note: "llama-3.1-8b from the catalog; the seed's 2 GiB".into(),
    });
    // 80 layers x 64 KV heads (Llama-2-70B with MHA, the seed's "no GQA" case).
    let mha = crate::model::Model {
        kv_heads: 64,
        ..catalog::model("llama-2-70b").expect("catalog model")
    };
    out.push(CaseResult {
        ran_on: None,
        id: "seed-80x64-per-token",
        group: ARITHMETIC,
        origin: "seeds",
        role: Role::Arithmetic,
        source: SEEDS,
        configuration: "80 layers x 64 KV heads x 128 x 2 (K, V) x 2 B".into(),
        metric: "KV bytes per token",
        unit: "B",
        published: 2_621_440.0,
        kvsim: mha.kv_bytes_per_token(Dtype::Bf16) as f64,
        tolerance: Tolerance::Exact,
        note: "llama-2-70b with kv_heads = 64".into(),
    });
    let opt = bpt("opt-13b", Dtype::Fp16);
    out.push(CaseResult {
        ran_on: None,
        id: "paged-opt13b-per-token",
        group: ARITHMETIC,
        origin: "paged-attention",
        role: Role::Arithmetic,
        source: "Kwon et al., SOSP 2023 (arXiv:2309.06180), sec. 3: \"the KV cache of a single \
                 token demands 800 KB of space, calculated as 2 x 5120 x 40 x 2\"",
        configuration: "opt-13b, fp16".into(),
        metric: "KV bytes per token",
        unit: "B",
        published: 819_200.0,
        kvsim: opt as f64,
        tolerance: Tolerance::Exact,
        note: "the paper's product 2 x 5120 x 40 x 2 = 819,200 B (800 KiB)".into(),
    });
    out.push(CaseResult {
        ran_on: None,
        id: "paged-opt13b-request",
        group: ARITHMETIC,
        origin: "paged-attention",
        role: Role::Arithmetic,
        source: "Kwon et al., SOSP 2023, sec. 3: \"the memory required to store the KV cache \
                 of one request can be as much as 1.6 GB\" (2048 tokens)",
        configuration: "opt-13b, fp16, 2048 tokens".into(),
        metric: "KV of one 2048-token request",
        unit: "GiB",
        published: 1.6,
        kvsim: kv_bytes(opt, 2048, 1).expect("fits u64") as f64 / GIB as f64,
        tolerance: Tolerance::Absolute(0.05),
        note: "the paper rounds 2048 x 800 KiB = 1.5625 GiB to one decimal; the tolerance is \
               that rounding"
            .into(),
    });
    // Qwen3-0.6B (Qwen/Qwen3-0.6B config.json: 28 layers, 8 KV heads, head_dim 128).
    let qwen = qwen3_06b_bpt(Dtype::Bf16);
    let mem = 69.66 * GIB as f64;
    out.push(CaseResult {
        ran_on: None,
        id: "vllm-qwen3-0.6b-tokens",
        group: ARITHMETIC,
        origin: "vllm-pr-24577",
        role: Role::Arithmetic,
        source: "vLLM PR #24577 (A100, Qwen3-0.6B, bf16 KV): log \"Available KV cache memory: \
                 69.66 GiB\" then \"GPU KV cache size: 652,144 tokens\"",
        configuration: "Qwen3-0.6B (28 layers x 8 KV heads x 128), bf16 KV, 69.66 GiB of KV \
                        memory"
            .into(),
        metric: "KV cache tokens",
        unit: "tokens",
        published: 652_144.0,
        kvsim: (mem / qwen as f64).floor(),
        tolerance: Tolerance::Relative(0.001),
        note: format!(
            "{qwen} B/token; the log rounds the memory to 0.01 GiB (±0.007 %) and vLLM rounds \
             down to whole 16-token blocks per layer group"
        ),
    });
}

/// KV bytes per token of Qwen3-0.6B.
fn qwen3_06b_bpt(dtype: Dtype) -> u64 {
    28 * 2 * 8 * dtype.vector_bytes(128)
}

// ---------------------------------------------------------------------------
// PagedAttention

/// The paper's OPT-13B / ShareGPT serving setup (sec. 6.1-6.2, Fig. 11, Fig. 13a):
/// one A100-40GB, Poisson arrivals at 2 req/s, ShareGPT-like lengths, on the
/// engine the paper measured: vLLM v0.1 (2023), kvsim's `vllm-0.1` preset.
///
/// vLLM v0.1 sized the KV cache as `total * gpu_memory_utilization -
/// torch.cuda.max_memory_allocated()` after a profiling pass of
/// `max_num_batched_tokens = 2560` tokens and `max_num_seqs = 256` (its
/// defaults): memory outside torch's allocator (CUDA context, cuBLAS
/// workspaces) was not subtracted. Prompts were prefilled whole (no chunked
/// prefill before v0.4). The preset holds all of that.
fn paged_setup(policy: &str) -> String {
    format!(
        r#"
name = "paged"
seed = 2023
requests = 2400

[model]
preset = "opt-13b"

[hardware]
gpu = "a100-40gb"

[engine]
preset = "vllm-0.1"

[traffic]
arrival = {{ kind = "poisson", rate = 2.0 }}
prompt = {{ kind = "lognormal", mean = 161.31, sigma = 1.0, min = 4, max = 1024 }}
output = {{ kind = "lognormal", mean = 337.99, sigma = 1.0, min = 1, max = 1024 }}
max_tokens = {{ kind = "fixed", value = 1024 }}

[cache]
{policy}
"#
    )
}

/// The paper's Orca baselines (sec. 6.1): a buddy allocator, and a
/// reservation of the model's whole context (Max), of the output rounded up to
/// a power of two (Pow2), or of the true length (Oracle).
const ORCA_MAX: &str =
    "policy = \"contiguous\"\nallocator = \"buddy\"\nreserve = \"max-model-len\"";
const ORCA_POW2: &str = "policy = \"contiguous\"\nallocator = \"buddy\"\nreserve = \"pow2-output\"";
const ORCA_ORACLE: &str = "policy = \"contiguous\"\nallocator = \"buddy\"\nreserve = \"oracle\"";

/// The configuration column of every PagedAttention row.
const PAGED_CONFIG: &str = "opt-13b on 1 x a100-40gb, engine preset vllm-0.1 \
    (gpu_memory_utilization 0.9 of torch's memory only, 2560 profiled tokens, no chunked prefill)";

fn paged_attention(out: &mut Vec<CaseResult>) {
    let s = scenario(&paged_setup("policy = \"paged\""));
    let b = s.budget;
    out.push(CaseResult {
        ran_on: ran_on(&s),
        id: "paged-table1-kv-memory",
        group: PAGED,
        origin: "paged-attention",
        role: Role::HeldOut,
        source: "Kwon et al., SOSP 2023, Table 1: OPT-13B, 1 x A100 40 GB, parameters 26 GB, \
                 \"Memory for KV cache 12 GB\"",
        configuration: PAGED_CONFIG.into(),
        metric: "KV cache memory",
        unit: "GiB",
        published: 12.0,
        kvsim: b.kv_bytes as f64 / GIB as f64,
        tolerance: Tolerance::Relative(0.10),
        note: format!(
            "kvsim: {:.2} GiB usable - {:.2} GiB weights - {:.2} GiB activations - {:.2} GiB \
             runtime; the paper's 12 GB is GiB (12 GiB / 800 KiB = 15.7K slots). With vLLM V1's \
             accounting (non-torch runtime memory subtracted, 8192 profiled tokens) kvsim gives \
             8.3 GiB: the difference between the two engines' profilers is 3 GiB on a 40 GB GPU",
            b.usable_per_gpu as f64 / GIB as f64,
            b.weights_per_gpu as f64 / GIB as f64,
            b.activation_per_gpu as f64 / GIB as f64,
            b.runtime_per_gpu as f64 / GIB as f64,
        ),
    });
    out.push(CaseResult {
        ran_on: ran_on(&s),
        id: "paged-table1-slots",
        group: PAGED,
        origin: "paged-attention",
        role: Role::HeldOut,
        source: "Kwon et al., SOSP 2023, Table 1: OPT-13B on 1 x A100 40 GB, \"Max. # KV cache \
                 slots 15.7K\"",
        configuration: PAGED_CONFIG.into(),
        metric: "KV cache slots (tokens)",
        unit: "tokens",
        published: 15_700.0,
        kvsim: b.token_capacity() as f64,
        tolerance: Tolerance::Relative(0.10),
        note: "follows the KV memory above at 819,200 B per token".into(),
    });

    // Fig. 2 as printed (token states, reservation, internal frag., external
    // frag. & others), in percent of the KV memory.
    let systems: [(&str, &str, &str, [f64; 4]); 4] = [
        ("max", "Orca (Max)", ORCA_MAX, [20.4, 13.3, 57.3, 8.9]),
        ("pow2", "Orca (Pow2)", ORCA_POW2, [26.8, 17.9, 13.6, 41.6]),
        (
            "oracle",
            "Orca (Oracle)",
            ORCA_ORACLE,
            [38.2, 25.2, 0.0, 36.6],
        ),
        (
            "paged",
            "vLLM",
            "policy = \"paged\"\nblock_size = 16",
            [96.3, 0.0, 0.0, 3.7],
        ),
    ];
    let mut batch = Vec::new();
    for (key, name, policy, fig2) in systems {
        let runs = sim_replicates(&paged_setup(policy), PAGED_REPLICATES);
        // Fig. 2's bars have no "free" category: shares of the memory that
        // holds or strands sequences, kvsim's free-and-usable memory excluded.
        let shares = |m: &Summary| {
            let held = (1.0 - free_share(m)).max(f64::MIN_POSITIVE);
            [
                m.waste_used / held,
                m.waste_reserved / held,
                m.waste_internal / held,
                m.waste_external / held,
            ]
        };
        let across =
            |f: &dyn Fn(&Summary) -> f64| mean_ci95(&runs.iter().map(f).collect::<Vec<_>>());
        let (batch_mean, batch_ci) = across(&|m| m.batch_mean);
        let (free, _) = across(&free_share);
        let batch_peak = runs.iter().map(|m| m.batch_peak).max().unwrap_or(0);
        batch.push((key, batch_mean, batch_ci));
        let labels = [
            "token states",
            "reservation",
            "internal frag.",
            "external frag. & others",
        ];
        for (i, label) in labels.iter().enumerate() {
            let (share, ci) = across(&|m| shares(m)[i]);
            out.push(CaseResult {
                ran_on: ran_on(&s),
                id: fig2_id(key, i),
                group: PAGED,
                origin: "paged-attention",
                role: Role::HeldOut,
                source: "Kwon et al., SOSP 2023, Fig. 2 (average share of KV memory during the \
                         sec. 6.2 experiment), bar labels",
                configuration: format!(
                    "{name} ({}): {PAGED_CONFIG}, ShareGPT-like lengths (lognormal, means \
                     161.31 / 337.99, sigma 1), Poisson 2 req/s, 2400 requests, \
                     {PAGED_REPLICATES} seeds",
                    policy.replace('\n', ", ")
                ),
                metric: fig2_metric(i),
                unit: "% of KV memory",
                published: fig2[i],
                kvsim: share * 100.0,
                tolerance: Tolerance::Absolute(10.0),
                note: format!(
                    "{label}{}: mean of {PAGED_REPLICATES} seeds, 95 % CI +-{:.1} points; \
                     {:.1} % of the budget was free on average and is left out; batch mean \
                     {batch_mean:.1}, peak {batch_peak}",
                    if i == 3 && key != "paged" {
                        " (holes too small for the next request, and the buddy allocator's \
                         rounding of each region to a power of two, which the paper counts \
                         here)"
                    } else {
                        ""
                    },
                    ci * 100.0,
                    free * 100.0,
                ),
            });
        }
    }
    let get = |k: &str| {
        batch
            .iter()
            .find(|(x, _, _)| *x == k)
            .map(|&(_, v, ci)| (v, ci))
            .unwrap_or((0.0, 0.0))
    };
    for (id, other, name, published) in [
        ("paged-fig13a-vs-oracle", "oracle", "Orca (Oracle)", 2.2),
        ("paged-fig13a-vs-max", "max", "Orca (Max)", 4.3),
    ] {
        out.push(CaseResult {
            ran_on: ran_on(&s),
            id,
            group: PAGED,
            origin: "paged-attention",
            role: Role::HeldOut,
            source: "Kwon et al., SOSP 2023, sec. 6.2 / Fig. 13(a): \"for OPT-13B vLLM processes \
                     2.2x more requests at the same time than Orca (Oracle) and 4.3x more \
                     requests than Orca (Max)\" (ShareGPT, 2 req/s)",
            configuration: format!("mean batch, paged / {name}, same setup as Fig. 2"),
            metric: "batching ratio",
            unit: "x",
            published,
            kvsim: get("paged").0 / get(other).0,
            tolerance: Tolerance::Relative(0.30),
            note: format!(
                "kvsim mean batch over {PAGED_REPLICATES} seeds: paged {:.1} +- {:.1}, {name} \
                 {:.1} +- {:.1} (95 % CI). The contiguous baselines are memory-bound (see the \
                 free share in the Fig. 2 rows) and batch as the paper's do: kvsim's Orca (Max) \
                 batch {:.1} and the paper's ratios put vLLM near {:.1} and Orca (Oracle) near \
                 {:.1}. kvsim's paged batch is not memory-bound: at 2 req/s and kvsim's 1 ms \
                 step overhead its requests finish {:.1}x as fast as that batch implies for the \
                 paper's 2023 engine (Little's law), so the batch is set by arrival rate x \
                 latency. vLLM v0.1 ran eagerly (no CUDA graphs) with a Python scheduler, so its \
                 steps carried more fixed cost than kvsim's default; no public measurement of \
                 it was found, so the row keeps the catalog's factors",
                get("paged").0,
                get("paged").1,
                get(other).0,
                get(other).1,
                get("max").0,
                4.3 * get("max").0,
                4.3 * get("max").0 / 2.2,
                4.3 * get("max").0 / get("paged").0,
            ),
        });
    }
}

/// Share of the KV memory that holds nothing (free and usable): the rest of
/// the four categories.
fn free_share(m: &Summary) -> f64 {
    (1.0 - m.waste_used - m.waste_reserved - m.waste_internal - m.waste_external).max(0.0)
}

fn fig2_metric(i: usize) -> &'static str {
    [
        "token states",
        "reservation",
        "internal fragmentation",
        "external frag. & others",
    ][i]
}

fn fig2_id(system: &str, i: usize) -> &'static str {
    const IDS: [[&str; 4]; 4] = [
        [
            "paged-fig2-max-used",
            "paged-fig2-max-reserved",
            "paged-fig2-max-internal",
            "paged-fig2-max-external",
        ],
        [
            "paged-fig2-pow2-used",
            "paged-fig2-pow2-reserved",
            "paged-fig2-pow2-internal",
            "paged-fig2-pow2-external",
        ],
        [
            "paged-fig2-oracle-used",
            "paged-fig2-oracle-reserved",
            "paged-fig2-oracle-internal",
            "paged-fig2-oracle-external",
        ],
        [
            "paged-fig2-paged-used",
            "paged-fig2-paged-reserved",
            "paged-fig2-paged-internal",
            "paged-fig2-paged-external",
        ],
    ];
    let row = ["max", "pow2", "oracle", "paged"]
        .iter()
        .position(|s| *s == system)
        .expect("known system");
    IDS[row][i]
}

// ---------------------------------------------------------------------------
// Decode latency

/// A closed loop of `users` back-to-back users sending `requests` requests of
/// fixed lengths to `model` on `tp` x `gpu` (catalog names), under `engine`'s
/// preset if one is named.
#[allow(clippy::too_many_arguments)]
fn fixed_load(
    model: &str,
    weight_dtype: Option<&str>,
    gpu: &str,
    tp: u32,
    kv_dtype: &str,
    engine: Option<&str>,
    users: u32,
    requests: u32,
    prompt: u32,
    output: u32,
) -> String {
    let wd = weight_dtype
        .map(|d| format!("weight_dtype = \"{d}\"\n"))
        .unwrap_or_default();
    let engine = engine
        .map(|e| format!("[engine]\npreset = \"{e}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
name = "fixed"
seed = 1
requests = {requests}

[model]
preset = "{model}"
{wd}
[hardware]
gpu = "{gpu}"
tp = {tp}

{engine}
[traffic]
arrival = {{ kind = "closed", users = {users} }}
prompt = {{ kind = "fixed", value = {prompt} }}
output = {{ kind = "fixed", value = {output} }}
max_tokens = {{ kind = "fixed", value = {output} }}

[cache]
policy = "paged"
kv_dtype = "{kv_dtype}"
"#
    )
}

const GPT_FAST: &str = "pytorch-labs/gpt-fast README, \"Benchmarks\" (8 x A100-80GB power-limited \
                        to 330 W, batch size 1, 5-token prompt, bf16)";

/// What the gpt-fast rows calibrate: the A100 bandwidth fraction and, with
/// the 70B rows' 80 layers against the 7B's 32, the per-layer cost.
const GPT_FAST_FITS: &[&str] = &[
    super::fit::A100_MBU,
    super::fit::LAYER_OVERHEAD,
    super::fit::STEP_OVERHEAD,
];
/// What the Hopper serving rows calibrate.
const HOPPER_FITS: &[&str] = &[
    super::fit::HOPPER_MBU,
    super::fit::LAYER_OVERHEAD,
    super::fit::STEP_OVERHEAD,
];

/// Batch-1 and batch-8 decode latency: gpt-fast on A100 and vLLM's CI on
/// H200, every row a calibration point (`fit` as in [`calibration_rows`]).
fn decode_latency(out: &mut Vec<CaseResult>, fit: Option<&Fitted>) {
    // gpt-fast: tokens/s at batch 1; TPOT = 1000 / (tokens/s) ms. 200 output
    // tokens (gpt-fast's default max_new_tokens).
    for (id, model, tp, tok_s) in [
        ("gptfast-llama2-7b-tp1", "llama-2-7b", 1, 104.9),
        ("gptfast-llama2-7b-tp2", "llama-2-7b", 2, 168.84),
        ("gptfast-llama2-7b-tp4", "llama-2-7b", 4, 254.02),
        ("gptfast-llama2-7b-tp8", "llama-2-7b", 8, 328.43),
        ("gptfast-llama2-70b-tp2", "llama-2-70b", 2, 21.32),
        ("gptfast-llama2-70b-tp4", "llama-2-70b", 4, 38.01),
        ("gptfast-llama2-70b-tp8", "llama-2-70b", 8, 62.50),
    ] {
        let s = scenario_under(
            &fixed_load(model, None, "a100-80gb", tp, "bf16", None, 1, 3, 5, 200),
            fit,
        );
        let m = run(&s, s.seed).summary;
        out.push(CaseResult {
            ran_on: ran_on(&s),
            id,
            group: DECODE,
            source: GPT_FAST,
            origin: "gpt-fast",
            role: Role::Calibration(GPT_FAST_FITS),
            configuration: format!(
                "{model} bf16 on {tp} x a100-80gb, batch 1, 5-token prompt, 200 output tokens \
                 (published {tok_s} tok/s)"
            ),
            metric: "TPOT",
            unit: "ms",
            published: 1000.0 / tok_s,
            kvsim: m.tpot_p50.unwrap_or(f64::NAN) * 1000.0,
            tolerance: Tolerance::Relative(0.15),
            note: "batch 1 decode is the weights' bytes plus fixed costs: the 7B (32 layers) and \
                   70B (80 layers) rows together separate the per-layer cost from the bandwidth"
                .into(),
        });
    }

    // vLLM nightly latency tests on H200: llm.generate on a fixed batch of 8,
    // 32 prompt tokens, 128 output tokens; mean end-to-end latency.
    for (id, model, tp, published, label) in [
        (
            "vllm-ci-h200-llama8b-tp1",
            "llama-3.1-8b",
            1,
            833.421,
            "latency_llama8B_tp1",
        ),
        (
            "vllm-ci-h200-llama70b-tp4",
            "llama-3.1-70b",
            4,
            2077.53,
            "latency_llama70B_tp4",
        ),
    ] {
        let s = scenario_under(
            &fixed_load(model, None, "h200", tp, "bf16", Some("vllm"), 8, 8, 32, 128),
            fit,
        );
        let m = run(&s, s.seed).summary;
        out.push(CaseResult {
            ran_on: ran_on(&s),
            id,
            group: DECODE,
            source: "vLLM performance benchmark, buildkite.com/vllm/performance-benchmark/builds/9515, \
                     \"Latency tests\" (input 32, output 128, batch size 8, mean latency)",
            origin: "vllm-ci",
            role: Role::Calibration(HOPPER_FITS),
            configuration: format!(
                "{model} bf16 on {tp} x h200, engine preset vllm, one batch of 8 requests, \
                 32-token prompts, 128 output tokens ({label})"
            ),
            metric: "batch end-to-end latency",
            unit: "ms",
            published,
            kvsim: m.e2e_p50.unwrap_or(f64::NAN) * 1000.0,
            tolerance: Tolerance::Relative(0.15),
            note: "batch 8 rather than 1, still weight-bound; the CI's llama-3 70B is modelled \
                   with llama-3.1-70b (same shape)"
                .into(),
        });
    }
}

/// Oracle's Llama 3.1 405B FP8 latency table on 8 x MI300X: batch size,
/// average latency (s) of one batch of 128-token prompts generating 128
/// tokens each.
const OCI_MI300X: [(u32, f64); 9] = [
    (1, 3.530),
    (2, 3.583),
    (4, 3.734),
    (8, 3.974),
    (16, 4.375),
    (32, 5.130),
    (64, 6.919),
    (128, 10.340),
    (256, 17.750),
];

const OCI_IDS: [&str; 9] = [
    "oci-mi300x-405b-bs1",
    "oci-mi300x-405b-bs2",
    "oci-mi300x-405b-bs4",
    "oci-mi300x-405b-bs8",
    "oci-mi300x-405b-bs16",
    "oci-mi300x-405b-bs32",
    "oci-mi300x-405b-bs64",
    "oci-mi300x-405b-bs128",
    "oci-mi300x-405b-bs256",
];

/// Decode latency from weight-bound to KV- and compute-bound on AMD: one
/// batch of `batch` requests (vLLM's `benchmark_latency.py`), 405B in FP8 on
/// 8 x MI300X, every row held out (the MI300X factors are estimates no row
/// was fitted to).
fn mi300x_batch_latency(out: &mut Vec<CaseResult>) {
    let first = out.len();
    for (&(batch, seconds), id) in OCI_MI300X.iter().zip(OCI_IDS) {
        let s = scenario(&fixed_load(
            "llama-3.1-405b",
            Some("fp8"),
            "mi300x",
            8,
            "fp8",
            Some("vllm"),
            batch,
            batch,
            128,
            128,
        ));
        let m = run(&s, s.seed).summary;
        out.push(CaseResult {
            ran_on: ran_on(&s),
            id,
            group: DECODE,
            source: "Oracle Cloud Infrastructure blog, \"Serving Llama 3.1 405B model with AMD \
                     Instinct MI300X GPUs\" (blogs.oracle.com/cloud-infrastructure), \"Latency \
                     measurements\": vLLM benchmark_latency.py, input 128 / output 128, average \
                     latency per batch size",
            origin: "oci-mi300x-blog",
            role: Role::HeldOut,
            configuration: format!(
                "llama-3.1-405b fp8 weights (fp8 compute), fp8 KV, 8 x mi300x, engine preset \
                 vllm, one batch of {batch} requests of 128 / 128 tokens"
            ),
            metric: "batch end-to-end latency",
            unit: "s",
            published: seconds,
            kvsim: m.e2e_p50.unwrap_or(f64::NAN),
            tolerance: Tolerance::Relative(0.25),
            note: format!(
                "TPOT {:.1} ms (published: {:.1} ms per token over the whole request); the \
                 MI300X's mbu 0.58 and mfu 0.45 are estimates (src/catalog/gpus.rs)",
                m.tpot_p50.unwrap_or(f64::NAN) * 1e3,
                seconds * 1e3 / 128.0
            ),
        });
    }
    // What the misses share: the part of a batch's latency that grows with
    // the batch (GEMM FLOPs, KV reads, the prompts' prefill) is far larger in
    // the measurement than in kvsim, while batch 1 (the weights' bytes)
    // agrees.
    let rows = &mut out[first..];
    let (p1, k1) = (rows[0].published, rows[0].kvsim);
    let last = rows.len() - 1;
    let growth = (rows[last].published - p1) / (rows[last].kvsim - k1);
    for r in rows.iter_mut().skip(1) {
        r.note.push_str(&format!(
            ". From batch 1 the published latency grows {:.2} s, kvsim's {:.2} s; at batch 256 \
             the growth is {growth:.1}x kvsim's: the batch-dependent work runs that much slower \
             on this 2024 ROCm build than the MI300X's estimated mfu 0.45 of its fp8 peak \
             allows, while batch 1 (the weights' bytes) is within {:.0} %",
            r.published - p1,
            r.kvsim - k1,
            100.0 * (k1 / p1 - 1.0).abs(),
        ));
    }
}

// ---------------------------------------------------------------------------
// Concurrency curve

const NIM: &str = "NVIDIA NIM LLM benchmarking, \"Performance\" \
                   (docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance), \
                   Llama-3.3-70b-instruct, NIM 1.8.0, 2 x H100 80G, fp8 TP2, 5000 input / 500 \
                   output tokens";

/// NIM's table: concurrency, TTFT (ms), ITL (ms).
const NIM_CURVE: [(u32, f64, f64); 6] = [
    (1, 406.77, 18.58),
    (5, 546.7, 21.83),
    (25, 688.69, 38.75),
    (50, 834.51, 59.73),
    (100, 7996.25, 92.91),
    (250, 88605.32, 93.2),
];

/// The concurrencies of NIM's table.
const NIM_USERS: [u32; 6] = [1, 5, 25, 50, 100, 250];

const CURVE_IDS: [(&str, &str); 6] = [
    ("nim-70b-c1-itl", "nim-70b-c1-ttft"),
    ("nim-70b-c5-itl", "nim-70b-c5-ttft"),
    ("nim-70b-c25-itl", "nim-70b-c25-ttft"),
    ("nim-70b-c50-itl", "nim-70b-c50-ttft"),
    ("nim-70b-c100-itl", "nim-70b-c100-ttft"),
    ("nim-70b-c250-itl", "nim-70b-c250-ttft"),
];

/// NIM's curve at the concurrencies in `users`. NIM serves with
/// TensorRT-LLM: the `trtllm` preset (KV from 0.9 of the memory left free,
/// 32-token blocks, no chunked prefill) on the catalog's H100 SXM, whose fp8
/// weights compute at the fp8 tensor peak. The 1-user ITL is a calibration
/// point of the Hopper bandwidth fraction; the other rows are held out.
fn concurrency_curve(out: &mut Vec<CaseResult>, fit: Option<&Fitted>, users: &[u32]) {
    let mut ttft_c1 = f64::NAN;
    for ((users, ttft, itl), (itl_id, ttft_id)) in NIM_CURVE
        .into_iter()
        .zip(CURVE_IDS)
        .filter(|((u, _, _), _)| users.contains(u))
    {
        // genai-perf reports means over measurement windows it takes once the
        // load is stable. Every user starts at once, so the first round of
        // requests queues behind one another's prefills: that round is the
        // benchmark's warm-up. kvsim runs ten rounds and averages the last
        // nine.
        let requests = CURVE_ROUNDS * users;
        let toml = fixed_load(
            "llama-3.1-70b",
            Some("fp8"),
            "h100-sxm",
            2,
            "fp8",
            Some("trtllm"),
            users,
            requests,
            5000,
            500,
        );
        let s = scenario_under(&toml, fit);
        let result = run(&s, s.seed);
        let m = &result.summary;
        let ok = |first: u64| {
            result
                .records
                .iter()
                .filter(move |r| r.id >= first && r.outcome == Some(Outcome::Ok))
        };
        let ttft_mean =
            |first| mean_of(ok(first).filter_map(|r| r.ttft().map(|d| d.as_secs_f64() * 1000.0)));
        let steady = u64::from(users);
        let ttft_steady = ttft_mean(steady);
        let itl_steady = mean_of(ok(steady).filter_map(|r| r.tpot_s().map(|t| t * 1000.0)));
        if users == 1 {
            ttft_c1 = ttft_steady;
        }
        let config = format!(
            "llama-3.1-70b (the 3.3 shape) fp8 weights (fp8 compute), fp8 KV, 2 x h100-sxm, \
             engine preset trtllm (KV {:.1} GiB per GPU), {users} closed-loop users, 5000 / 500 \
             tokens, {CURVE_ROUNDS} rounds ({requests} requests), means over rounds \
             2-{CURVE_ROUNDS}",
            s.budget.kv_per_gpu as f64 / GIB as f64
        );
        out.push(CaseResult {
            ran_on: ran_on(&s),
            id: itl_id,
            group: CURVE,
            source: NIM,
            origin: "nim",
            role: if users == 1 {
                Role::Calibration(HOPPER_FITS)
            } else {
                Role::HeldOut
            },
            configuration: config.clone(),
            metric: "ITL (TPOT)",
            unit: "ms",
            published: itl,
            kvsim: itl_steady,
            tolerance: Tolerance::Relative(0.25),
            note: format!(
                "batch mean {:.1}, peak {}, ceiling {}",
                m.batch_mean, m.batch_peak, m.batch_ceiling
            ),
        });
        out.push(CaseResult {
            ran_on: ran_on(&s),
            id: ttft_id,
            group: CURVE,
            source: NIM,
            origin: "nim",
            role: Role::HeldOut,
            configuration: config,
            metric: "TTFT",
            unit: "ms",
            published: ttft,
            kvsim: ttft_steady,
            tolerance: Tolerance::Relative(0.25),
            note: format!(
                "with the warm-up round: mean {:.1} ms, p50 {:.1} ms{}",
                ttft_mean(0),
                m.ttft_p50.unwrap_or(f64::NAN) * 1000.0,
                curve_ttft_note(users, ttft_steady, ttft_c1, itl_steady, m)
            ),
        });
    }
}

/// NIM's output throughput at 100 users (tokens/s), same table: with the
/// ITL it gives how many sequences NIM decoded at once (Little's law).
const NIM_C100_THROUGHPUT: f64 = 917.26;

/// What explains a concurrency-curve TTFT row, where one explanation helps.
/// `ttft_c1` is kvsim's 1-user TTFT (ms), `itl` this row's ITL (ms), `m` its
/// run.
fn curve_ttft_note(users: u32, ttft: f64, ttft_c1: f64, itl: f64, m: &Summary) -> String {
    let nim_c1 = NIM_CURVE[0].1;
    let nim_ttft = NIM_CURVE
        .iter()
        .find(|(u, _, _)| *u == users)
        .map(|&(_, t, _)| t)
        .unwrap_or(f64::NAN);
    // A request that arrived at a random instant would wait for the step in
    // flight: half a prefill step while one runs (the share of time prefill
    // steps take, from this run's own lengths), half a decode step otherwise.
    let cycle = ttft + 499.0 * itl;
    let prefill_share = (f64::from(users) * ttft_c1 / cycle).min(1.0);
    let wait = prefill_share * ttft_c1 / 2.0 + (1.0 - prefill_share) * itl / 2.0;
    let arrival_note = format!(
        ". kvsim's closed-loop users send their next request at the step boundary where the \
         last one finished, so with the trtllm preset's unchunked prefill a prompt never waits \
         for a step in flight nor meets another prompt: kvsim's TTFT stays one prefill step. A \
         request landing at a random instant would wait for the step in flight: prefill steps \
         take {:.0} % of the time here, so {wait:.0} ms on average, {:.0} % of NIM's rise of \
         {:.0} ms over 1 user; the rest (front-end queueing, prompts colliding) kvsim does not \
         model",
        prefill_share * 100.0,
        100.0 * wait / (nim_ttft - nim_c1),
        nim_ttft - nim_c1,
    );
    match users {
        1 => format!(
            ". Prefill alone: the {:.0} ms between kvsim and NIM is per-request work outside \
             the engine step (tokenizing 5,000 tokens, the HTTP server, streaming), which kvsim \
             does not model, and prefill efficiency",
            nim_c1 - ttft
        ),
        5 | 25 => arrival_note,
        50 => format!(
            "{arrival_note}. fp8 KV assumed (NIM's fp8 profiles quantize the KV cache too): a \
             bf16 cache would hold about {} of these sequences, below the 50 users NIM serves \
             without queueing",
            m.batch_ceiling / 2
        ),
        100 => {
            let nim_batch = NIM_C100_THROUGHPUT * NIM_CURVE[4].2 / 1000.0;
            format!(
                ". The batch is memory-bound: TTFT is mostly waiting for KV room, (users - \
                 batch) / completion rate, so it moves steeply with the KV budget. kvsim \
                 decodes {:.1} sequences on average ({:.1} queue); NIM's throughput ({} tok/s) \
                 x ITL implies {:.1} ({:.1} queue)",
                m.batch_mean,
                f64::from(users) - m.batch_mean,
                NIM_C100_THROUGHPUT,
                nim_batch,
                f64::from(users) - nim_batch
            )
        }
        _ => String::new(),
    }
}

/// Rounds of requests per closed-loop user in the concurrency-curve cases.
const CURVE_ROUNDS: u32 = 10;

/// The mean of `xs` (NaN if empty, so an empty case cannot pass).
fn mean_of(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = xs.fold((0.0, 0u32), |(s, n), x| (s + x, n + 1));
    sum / f64::from(n)
}

// ---------------------------------------------------------------------------
// KV quantization

fn quantization(out: &mut Vec<CaseResult>) {
    let bf16 = qwen3_06b_bpt(Dtype::Bf16);
    let fp8 = qwen3_06b_bpt(Dtype::Fp8);
    out.push(CaseResult {
        ran_on: None,
        id: "fp8-capacity-qwen3-0.6b",
        group: ARITHMETIC,
        origin: "mini-sglang-pr-132",
        role: Role::Arithmetic,
        source: "sgl-project/mini-sglang PR #132, \"Capacity (always 2x exact)\": Qwen3-0.6B \
                 FP16 43,928 tokens, FP8 87,857 tokens",
        configuration: "Qwen3-0.6B, same KV memory, fp8 vs bf16 KV".into(),
        metric: "KV token capacity ratio",
        unit: "x",
        published: 87_857.0 / 43_928.0,
        kvsim: bf16 as f64 / fp8 as f64,
        tolerance: Tolerance::Relative(0.02),
        note: format!("kvsim: {bf16} vs {fp8} B/token (per-tensor fp8 scale, no per-group scales)"),
    });
    // The same effect through kvsim's whole budget, for the quickstart pair.
    let budget = |kv: &str| {
        scenario(&fixed_load(
            "llama-3.1-8b",
            None,
            "h100-sxm",
            1,
            kv,
            None,
            1,
            1,
            10,
            10,
        ))
        .budget
        .token_capacity() as f64
    };
    out.push(CaseResult {
        ran_on: None,
        id: "fp8-capacity-llama8b-h100",
        group: ARITHMETIC,
        origin: "vllm-pr-24577",
        role: Role::Arithmetic,
        source: "vLLM PR #24577 (mgoin, A100, FP8 KV cache): \"See the available concurrency \
                 doubles\"; vLLM docs, FP8 E4M3 KV cache: quantizing to FP8 \"increases the number \
                 of tokens that can be stored in the cache\"",
        configuration: "llama-3.1-8b on 1 x h100-sxm, memory_utilization 0.9, fp8 vs bf16 KV"
            .into(),
        metric: "KV token capacity ratio",
        unit: "x",
        published: 2.0,
        kvsim: budget("fp8") / budget("bf16"),
        tolerance: Tolerance::Relative(0.02),
        note: "the KV memory is the same for both dtypes (weights and activations do not change)"
            .into(),
    });
}
