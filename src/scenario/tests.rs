//! Engine presets, memory rules and compute precision as a scenario resolves
//! them.

use std::path::Path;

use super::Scenario;
use crate::cache::Placement;
use crate::hardware::{ComputeDtype, MemoryRule};
use crate::scheduler::Admission;

fn build(gpu: &str, model: &str, extra: &[&str]) -> Result<Scenario, String> {
    let toml = format!(
        r#"
name = "t"
requests = 1
[model]
preset = "{model}"
[hardware]
gpu = "{gpu}"
[traffic]
arrival = {{ kind = "poisson", rate = 1.0 }}
prompt = {{ kind = "fixed", value = 10 }}
output = {{ kind = "fixed", value = 10 }}
"#
    );
    let overrides: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Scenario::from_toml(&toml, Path::new("t.toml"), &overrides).map_err(|e| e.to_string())
}

fn block_size(s: &Scenario) -> u32 {
    match s.cache.placement {
        Placement::Paged { block_size } => block_size,
        Placement::Contiguous => 0,
    }
}

#[test]
fn without_a_preset_the_defaults_are_kvsims() {
    let s = build("h100-sxm", "llama-3.1-8b", &[]).unwrap();
    assert_eq!(s.deployment.memory, MemoryRule::TotalFraction(0.9));
    assert_eq!(block_size(&s), 16);
    assert_eq!(s.scheduler.max_num_seqs, 256);
    assert_eq!(s.scheduler.max_batched_tokens, 8192);
    assert!(s.scheduler.chunked_prefill);
    assert!(!s.cache.prefix_caching);
    assert_eq!(s.scheduler.admission, Admission::Optimistic);
    assert_eq!(s.deployment.runtime_reserve, None);
}

#[test]
fn a_preset_sets_its_engines_defaults() {
    let s = build("h100-sxm", "llama-3.1-8b", &["engine.preset=\"trtllm\""]).unwrap();
    assert_eq!(s.deployment.memory, MemoryRule::FreeFraction(0.9));
    assert_eq!(block_size(&s), 32);
    assert_eq!(s.scheduler.max_num_seqs, 2048);
    assert_eq!(s.scheduler.max_batched_tokens, 8192);
    assert!(!s.scheduler.chunked_prefill);
    assert!(s.cache.prefix_caching);
    assert_eq!(s.scheduler.admission, Admission::Reserve);

    let s = build("h100-sxm", "llama-3.1-8b", &["engine.preset=\"vllm\""]).unwrap();
    assert_eq!(s.deployment.memory, MemoryRule::TotalFraction(0.9));
    assert!(s.cache.prefix_caching && s.scheduler.chunked_prefill);

    let s = build("h100-sxm", "llama-3.1-8b", &["engine.preset=\"sglang\""]).unwrap();
    assert!(matches!(s.deployment.memory, MemoryRule::StaticFraction(_)));
    assert_eq!(block_size(&s), 1);

    let s = build("a100-40gb", "opt-13b", &["engine.preset=\"vllm-0.1\""]).unwrap();
    assert_eq!(s.deployment.runtime_reserve, Some(0));
    assert_eq!(s.scheduler.max_batched_tokens, 2560);
    assert!(!s.scheduler.chunked_prefill && !s.cache.prefix_caching);
}

#[test]
fn explicit_keys_win_over_the_preset() {
    let s = build(
        "h100-sxm",
        "llama-3.1-8b",
        &[
            "engine.preset=\"trtllm\"",
            "engine.memory_fraction=0.8",
            "cache.block_size=64",
            "cache.prefix_caching=false",
            "scheduler.max_num_seqs=128",
            "scheduler.max_batched_tokens=4096",
            "scheduler.chunked_prefill=true",
            "scheduler.admission=\"optimistic\"",
        ],
    )
    .unwrap();
    assert_eq!(s.deployment.memory, MemoryRule::FreeFraction(0.8));
    assert_eq!(block_size(&s), 64);
    assert!(!s.cache.prefix_caching);
    assert_eq!(s.scheduler.max_num_seqs, 128);
    assert_eq!(s.scheduler.max_batched_tokens, 4096);
    assert!(s.scheduler.chunked_prefill);
    assert_eq!(s.scheduler.admission, Admission::Optimistic);
    // A rule of its own, with its own fraction.
    let s = build(
        "h100-sxm",
        "llama-3.1-8b",
        &[
            "engine.memory_rule=\"static-fraction\"",
            "engine.memory_fraction=0.85",
        ],
    )
    .unwrap();
    assert_eq!(s.deployment.memory, MemoryRule::StaticFraction(0.85));
}

#[test]
fn preset_prefix_caching_stays_off_where_it_cannot_apply() {
    // mistral-7b's sliding-window layers, and contiguous placement.
    let s = build("h100-sxm", "mistral-7b-v0.1", &["engine.preset=\"vllm\""]).unwrap();
    assert!(!s.cache.prefix_caching);
    let s = build(
        "h100-sxm",
        "llama-3.1-8b",
        &["engine.preset=\"vllm\"", "cache.policy=\"contiguous\""],
    )
    .unwrap();
    assert!(!s.cache.prefix_caching);
}

#[test]
fn compute_precision_follows_the_weights_and_the_gpu() {
    let compute = |gpu: &str, extra: &[&str]| {
        build(gpu, "llama-3.1-8b", extra)
            .map(|s| (s.deployment.compute_dtype, s.deployment.compute_peak()))
    };
    let fp8 = ["model.weight_dtype=\"fp8\""];
    let (d, peak) = compute("h100-sxm", &fp8).unwrap();
    assert_eq!(d, ComputeDtype::Fp8);
    assert_eq!(peak, 1978.9e12);
    // Ampere has no fp8 tensor cores: fp8 weights run weight-only.
    assert_eq!(compute("a100-80gb", &fp8).unwrap().0, ComputeDtype::Bf16);
    for w in ["int8", "int4"] {
        let set = format!("model.weight_dtype=\"{w}\"");
        assert_eq!(compute("h100-sxm", &[&set]).unwrap().0, ComputeDtype::Bf16);
    }
    assert_eq!(
        compute("h100-sxm", &[]).unwrap(),
        (ComputeDtype::Bf16, 989.4e12)
    );
    // SmoothQuant int8 and NVFP4 when asked for, where the GPU has them.
    let int8 = compute(
        "a100-80gb",
        &[
            "model.weight_dtype=\"int8\"",
            "model.compute_dtype=\"int8\"",
        ],
    )
    .unwrap();
    assert_eq!(int8, (ComputeDtype::Int8, 624e12));
    let fp4 = ["model.weight_dtype=\"int4\"", "model.compute_dtype=\"fp4\""];
    assert_eq!(compute("b200", &fp4).unwrap(), (ComputeDtype::Fp4, 9.0e15));
    let err = compute("h100-sxm", &fp4).unwrap_err();
    assert!(err.contains("no fp4 tensor cores"), "{err}");
    let err = compute(
        "a100-80gb",
        &["model.weight_dtype=\"fp8\"", "model.compute_dtype=\"fp8\""],
    )
    .unwrap_err();
    assert!(err.contains("a100-80gb has no fp8 tensor cores"), "{err}");
}

/// Every dotted key of `table` (tables and their leaves).
fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let toml::Value::Table(t) = v {
            keys(t, &key, out);
        }
        out.push(key);
    }
}

/// A word that reads like a Rust type (`GpuSpec`, `SlidingWindow`) or
/// serde's vocabulary for one.
fn names_a_rust_type(message: &str) -> Option<String> {
    for word in ["untagged", "struct ", "enum ", "variant of"] {
        if message.contains(word) {
            return Some(word.to_string());
        }
    }
    message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| {
            let upper = w.chars().filter(char::is_ascii_uppercase).count();
            w.len() > 3 && w.starts_with(|c: char| c.is_ascii_uppercase()) && upper >= 2
                // Units and acronyms in messages (GiB, KV, NaN) are not types.
                && w.chars().any(|c| c.is_ascii_lowercase())
                && !["GiB", "MiB", "NaN", "TiB", "GPUs"].contains(w)
        })
        .map(str::to_string)
}

#[test]
fn a_wrong_type_at_any_key_is_reported_in_toml_words() {
    // Every key of every bundled scenario, plus keys they leave out, set to
    // values of the wrong shape.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut checked = 0;
    let extra = [
        "model.sliding_window",
        "model.mla",
        "model.moe",
        "hardware.calibration",
        "hardware.gpu",
        "hardware.kv_router",
        "hardware.session_imbalance",
        "traffic.session",
        "traffic.prefix",
        "traffic.lengths",
        "plan",
        "check",
        "check.rtol_by_metric",
    ];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let mut all = Vec::new();
        keys(&table, "", &mut all);
        all.extend(extra.iter().map(|k| k.to_string()));
        for key in all {
            for value in ["5", "\"x\"", "{ zzz = 1 }", "[1, 2]", "true"] {
                let set = vec![format!("{key}={value}")];
                let Err(e) = Scenario::from_toml(&text, &path, &set) else {
                    continue;
                };
                let message = e.to_string();
                assert!(
                    names_a_rust_type(&message).is_none(),
                    "--set {key}={value} on {}: `{}` names a Rust type: {message}",
                    path.display(),
                    names_a_rust_type(&message).unwrap()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "only {checked} errors checked");
}
