//! Built-in models and GPUs, every number traceable to a public source.
//!
//! The catalog is plain data: [`models()`] and [`gpus()`] list every entry with
//! a short `source` string, and the comments next to each entry (in
//! `models.rs` and `gpus.rs`) cite the config file, datasheet, log or
//! measurement each number comes from and show how derived numbers were
//! derived. Scenario files refer to entries by name (`preset = "llama-3.1-8b"`,
//! `gpu = "h100-sxm"`); the names are stable keys.
//!
//! Models: llama-2-7b, llama-2-13b, llama-2-70b, llama-3.1-8b, llama-3.1-70b,
//! llama-3.1-405b, mistral-7b-v0.1, mixtral-8x7b, qwen2.5-7b, qwen2.5-72b,
//! opt-13b, falcon-7b, gemma-2-9b, deepseek-v3, qwen3-32b, qwen3-30b-a3b,
//! gpt-oss-20b, gpt-oss-120b, llama-4-scout-17b-16e, gemma-3-27b,
//! deepseek-v3.1, qwen3-next-80b-a3b.
//!
//! GPUs: a100-40gb, a100-80gb, h100-sxm, h100-pcie, h200, l4, l40s, mi300x,
//! b200, b300, gb200, h20, mi325x, mi355x, rtx-pro-6000-se. The efficiency
//! defaults and their derivations (and the documented default of an
//! architecture with no calibration row) are at the top of `gpus.rs`.
//!
//! Serving engines (`[engine] preset`): vllm, sglang, trtllm, vllm-0.1; their
//! defaults and sources are in `engines.rs`.

mod engines;
mod gpus;
mod models;

pub use engines::{EngineDefaults, EngineEntry, EngineName, engine_defaults, engines};

use crate::hardware::Gpu;
use crate::model::Model;

/// A catalog model with the public source of its numbers.
#[derive(Clone, Debug)]
pub struct ModelEntry {
    /// The model's shape.
    pub model: Model,
    /// Where its numbers come from (short form; the full citations are in the
    /// comments next to the entry).
    pub source: &'static str,
}

/// A catalog GPU with the public source of its numbers.
#[derive(Clone, Debug)]
pub struct GpuEntry {
    /// The GPU's numbers.
    pub gpu: Gpu,
    /// Where its numbers come from (short form; the full citations and the
    /// efficiency derivations are in the comments next to the entry).
    pub source: &'static str,
}

/// Every built-in model, in catalog order.
pub fn models() -> Vec<ModelEntry> {
    models::all()
}

/// Every built-in GPU, in catalog order.
pub fn gpus() -> Vec<GpuEntry> {
    gpus::all()
}

/// The built-in model entry (shape and source) called `name`, if any.
pub fn model_entry(name: &str) -> Option<ModelEntry> {
    models().into_iter().find(|e| e.model.name == name)
}

/// The built-in GPU entry (numbers and source) called `name`, if any.
pub fn gpu_entry(name: &str) -> Option<GpuEntry> {
    gpus().into_iter().find(|e| e.gpu.name == name)
}

/// The built-in model called `name`, if any.
pub fn model(name: &str) -> Option<Model> {
    model_entry(name).map(|e| e.model)
}

/// The built-in GPU called `name`, if any.
pub fn gpu(name: &str) -> Option<Gpu> {
    gpu_entry(name).map(|e| e.gpu)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::Dtype;

    const MODEL_NAMES: [&str; 22] = [
        "llama-2-7b",
        "llama-2-13b",
        "llama-2-70b",
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "mistral-7b-v0.1",
        "mixtral-8x7b",
        "qwen2.5-7b",
        "qwen2.5-72b",
        "opt-13b",
        "falcon-7b",
        "gemma-2-9b",
        "deepseek-v3",
        "qwen3-32b",
        "qwen3-30b-a3b",
        "gpt-oss-20b",
        "gpt-oss-120b",
        "llama-4-scout-17b-16e",
        "gemma-3-27b",
        "deepseek-v3.1",
        "qwen3-next-80b-a3b",
    ];

    const GPU_NAMES: [&str; 15] = [
        "a100-40gb",
        "a100-80gb",
        "h100-sxm",
        "h100-pcie",
        "h200",
        "l4",
        "l40s",
        "mi300x",
        "b200",
        "b300",
        "gb200",
        "h20",
        "mi325x",
        "mi355x",
        "rtx-pro-6000-se",
    ];

    fn m(name: &str) -> Model {
        model(name).unwrap_or_else(|| panic!("model {name} missing"))
    }

    fn g(name: &str) -> Gpu {
        gpu(name).unwrap_or_else(|| panic!("gpu {name} missing"))
    }

    /// Whether the weights fit in `tp` GPUs at `util` of their memory (weights
    /// only: the KV cache and activations need more on top).
    fn fits(model: &str, gpu: &str, tp: u64, util: f64) -> bool {
        let budget = g(gpu).vram_bytes as f64 * tp as f64 * util;
        (m(model).weight_bytes() as f64) <= budget
    }

    #[test]
    fn every_required_model_is_present_in_order_and_unique() {
        let names: Vec<String> = models().into_iter().map(|e| e.model.name).collect();
        assert_eq!(names, MODEL_NAMES);
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        for name in MODEL_NAMES {
            assert_eq!(m(name).name, name);
            assert_eq!(model_entry(name).map(|e| e.model.name), Some(name.into()));
        }
        assert!(model("llama-4").is_none());
        assert!(model("").is_none());
    }

    #[test]
    fn every_required_gpu_is_present_in_order_and_unique() {
        let names: Vec<String> = gpus().into_iter().map(|e| e.gpu.name).collect();
        assert_eq!(names, GPU_NAMES);
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        for name in GPU_NAMES {
            assert_eq!(g(name).name, name);
            assert_eq!(gpu_entry(name).map(|e| e.gpu.name), Some(name.into()));
        }
        assert!(gpu("h100").is_none());
    }

    /// KV bytes per token in bf16, by hand: layers * 2 * kv_heads * head_dim
    /// * 2 bytes, or layers * (kv_lora_rank + qk_rope_dim) * 2 bytes for MLA.
    #[test]
    fn kv_bytes_per_token_match_hand_computed_figures() {
        let cases: [(&str, u64); 22] = [
            ("llama-2-7b", 32 * 2 * 32 * 128 * 2),     // 524,288
            ("llama-2-13b", 40 * 2 * 40 * 128 * 2),    // 819,200
            ("llama-2-70b", 80 * 2 * 8 * 128 * 2),     // 327,680
            ("llama-3.1-8b", 32 * 2 * 8 * 128 * 2),    // 131,072
            ("llama-3.1-70b", 80 * 2 * 8 * 128 * 2),   // 327,680
            ("llama-3.1-405b", 126 * 2 * 8 * 128 * 2), // 516,096
            ("mistral-7b-v0.1", 32 * 2 * 8 * 128 * 2), // 131,072
            ("mixtral-8x7b", 32 * 2 * 8 * 128 * 2),    // 131,072
            ("qwen2.5-7b", 28 * 2 * 4 * 128 * 2),      // 57,344
            ("qwen2.5-72b", 80 * 2 * 8 * 128 * 2),     // 327,680
            ("opt-13b", 40 * 2 * 40 * 128 * 2),        // 819,200
            ("falcon-7b", 32 * 2 * 128),               // 8,192 (MQA)
            ("gemma-2-9b", 42 * 2 * 8 * 256 * 2),      // 344,064
            ("deepseek-v3", 61 * (512 + 64) * 2),      // 70,272 (MLA)
            ("qwen3-32b", 64 * 2 * 8 * 128 * 2),       // 262,144
            ("qwen3-30b-a3b", 48 * 2 * 4 * 128 * 2),   // 98,304
            // Per token over every layer, windows aside (the window's cap is
            // in the next test); recurrent layers keep nothing per token.
            ("gpt-oss-20b", 24 * 2 * 8 * 64 * 2),  // 49,152
            ("gpt-oss-120b", 36 * 2 * 8 * 64 * 2), // 73,728
            ("llama-4-scout-17b-16e", 48 * 2 * 8 * 128 * 2), // 196,608
            ("gemma-3-27b", 62 * 2 * 16 * 128 * 2), // 507,904
            ("deepseek-v3.1", 61 * (512 + 64) * 2), // 70,272
            ("qwen3-next-80b-a3b", 12 * 2 * 2 * 256 * 2), // 24,576
        ];
        for (name, want) in cases {
            assert_eq!(m(name).kv_bytes_per_token(Dtype::Bf16), want, "{name}");
        }
        // The figures the brief and the seeds quote, literally.
        assert_eq!(m("llama-3.1-8b").kv_bytes_per_token(Dtype::Bf16), 131_072);
        assert_eq!(m("llama-2-7b").kv_bytes_per_token(Dtype::Bf16), 524_288);
        assert_eq!(m("llama-2-70b").kv_bytes_per_token(Dtype::Bf16), 327_680);
        assert_eq!(m("falcon-7b").kv_bytes_per_token(Dtype::Bf16), 8_192);
        assert_eq!(m("opt-13b").kv_bytes_per_token(Dtype::Bf16), 819_200);
        assert_eq!(m("deepseek-v3").kv_bytes_per_token(Dtype::Bf16), 70_272);
        // fp8 KV halves it exactly.
        assert_eq!(m("llama-3.1-8b").kv_bytes_per_token(Dtype::Fp8), 65_536);
    }

    /// One sequence's KV bytes (bf16) and recurrent state at 8k and 128k
    /// tokens for the models with layer groups, computed by hand from their
    /// config.json numbers: a full layer keeps every token, a sliding one
    /// the last `window`, a chunked one the tokens of the current chunk
    /// (((n - 1) mod C) + 1), MLA its latent, a recurrent layer a fixed state.
    #[test]
    fn per_sequence_kv_bytes_at_8k_and_128k_match_hand_computed_figures() {
        const K8: u64 = 8192;
        const K128: u64 = 131_072;
        // bytes per token per layer: 2 (K, V) x kv_heads x head_dim x 2 (bf16)
        let per_layer = |kv_heads: u64, head_dim: u64| 2 * kv_heads * head_dim * 2;
        let gpt_oss = |layers: u64, n: u64| {
            // layer_types alternate: half sliding (128), half full.
            layers / 2 * per_layer(8, 64) * n.min(128) + layers / 2 * per_layer(8, 64) * n
        };
        // Llama-4 Scout: 36 chunked (8192) and 12 global layers.
        let scout =
            |n: u64| 12 * per_layer(8, 128) * n + 36 * per_layer(8, 128) * ((n - 1) % 8192 + 1);
        // Gemma-3 27B: 52 sliding (1024) and 10 global layers.
        let gemma3 = |n: u64| 10 * per_layer(16, 128) * n + 52 * per_layer(16, 128) * n.min(1024);
        // Qwen3-Next: 12 gated-attention layers with 2 KV heads of 256; 36
        // Gated DeltaNet layers of (32*128*128 + (2*16*128 + 32*128)*(4-1))
        // bf16 elements each.
        let next_state = 36 * (32 * 128 * 128 + (2 * 16 * 128 + 32 * 128) * 3) * 2;
        let next = |n: u64| 12 * per_layer(2, 256) * n + next_state;
        // Mistral 7B: every layer windowed at 4096; Gemma-2 9B: 21 of 42.
        let mistral = |n: u64| 32 * per_layer(8, 128) * n.min(4096);
        let gemma2 = |n: u64| 21 * per_layer(8, 256) * n + 21 * per_layer(8, 256) * n.min(4096);
        // Uniform models keep every token in every layer.
        let uniform = |layers: u64, kv_heads: u64, head_dim: u64| {
            let bpt = layers * per_layer(kv_heads, head_dim);
            (bpt * K8, bpt * K128)
        };
        let mla = |n: u64| 61 * (512 + 64) * 2 * n;
        let mut cases: Vec<(&str, u64, u64, u64)> = [
            ("llama-2-7b", 32, 32, 128),
            ("llama-2-13b", 40, 40, 128),
            ("llama-2-70b", 80, 8, 128),
            ("llama-3.1-8b", 32, 8, 128),
            ("llama-3.1-70b", 80, 8, 128),
            ("llama-3.1-405b", 126, 8, 128),
            ("mixtral-8x7b", 32, 8, 128),
            ("qwen2.5-7b", 28, 4, 128),
            ("qwen2.5-72b", 80, 8, 128),
            ("opt-13b", 40, 40, 128),
            ("falcon-7b", 32, 1, 64),
        ]
        .into_iter()
        .map(|(name, l, h, d)| {
            let (a, b) = uniform(l, h, d);
            (name, a, b, 0)
        })
        .collect();
        cases.extend([
            ("mistral-7b-v0.1", mistral(K8), mistral(K128), 0),
            ("gemma-2-9b", gemma2(K8), gemma2(K128), 0),
            ("deepseek-v3", mla(K8), mla(K128), 0),
        ]);
        // (model, 8k bytes, 128k bytes, state bytes)
        cases.extend([
            (
                "qwen3-32b",
                64 * per_layer(8, 128) * K8,
                64 * per_layer(8, 128) * K128,
                0,
            ),
            (
                "qwen3-30b-a3b",
                48 * per_layer(4, 128) * K8,
                48 * per_layer(4, 128) * K128,
                0,
            ),
            ("gpt-oss-20b", gpt_oss(24, K8), gpt_oss(24, K128), 0),
            ("gpt-oss-120b", gpt_oss(36, K8), gpt_oss(36, K128), 0),
            ("llama-4-scout-17b-16e", scout(K8), scout(K128), 0),
            ("gemma-3-27b", gemma3(K8), gemma3(K128), 0),
            ("deepseek-v3.1", 61 * 576 * 2 * K8, 61 * 576 * 2 * K128, 0),
            ("qwen3-next-80b-a3b", next(K8), next(K128), next_state),
        ]);
        // Every catalog model, once.
        assert_eq!(cases.len(), models().len());
        for (name, at_8k, at_128k, state) in cases {
            let x = m(name);
            let held = |n: u64| -> u64 {
                x.layer_groups()
                    .iter()
                    .map(|g| {
                        u64::from(g.span().kept(n as u32))
                            * g.bytes_per_token(Dtype::Bf16, 1).unwrap()
                    })
                    .sum::<u64>()
                    + x.state_bytes_per_seq().unwrap()
            };
            assert_eq!(held(K8), at_8k, "{name} at 8k");
            assert_eq!(held(K128), at_128k, "{name} at 128k");
            assert_eq!(x.state_bytes_per_seq(), Some(state), "{name} state");
            let layers: u32 = x.layer_groups().iter().map(|g| g.layers).sum();
            assert_eq!(layers, x.layers, "{name}: groups cover the layers");
        }
        // The headline figures, literally.
        assert_eq!(gpt_oss(36, K8), 306_708_480);
        assert_eq!(scout(K128), 7_650_410_496);
        assert_eq!(gemma3(K8), 1_107_296_256);
        assert_eq!(next_state, 39_518_208);
        assert_eq!(next(K128), 3_260_743_680);
    }

    /// Parameter counts and weight bytes of the refreshed models against
    /// their model cards (rounded there, exact here), and the MXFP4 experts
    /// of gpt-oss at 4.25 bits.
    #[test]
    fn refreshed_models_match_their_cards() {
        // (model, total, active, card total B, card active B)
        let cards: [(&str, f64, f64); 8] = [
            ("qwen3-32b", 32.8, 32.8),
            ("qwen3-30b-a3b", 30.5, 3.3),
            ("gpt-oss-20b", 20.91, 3.61 + 0.58), // card leaves out the input embedding
            ("gpt-oss-120b", 116.83, 5.13 + 0.58),
            ("llama-4-scout-17b-16e", 109.0 - 0.9, 17.0), // card's total has the vision encoder
            ("gemma-3-27b", 27.0, 27.0),
            ("deepseek-v3.1", 671.0, 37.0),
            ("qwen3-next-80b-a3b", 80.0, 3.0 + 0.62), // card leaves out the embeddings
        ];
        for (name, total, active) in cards {
            let x = m(name);
            let (t, a) = (x.params as f64 / 1e9, x.active_params as f64 / 1e9);
            assert!((t - total).abs() / total < 0.02, "{name}: {t} vs {total}");
            assert!(
                (a - active).abs() / active < 0.25,
                "{name}: {a} vs {active}"
            );
        }
        // gpt-oss-120b: 114,701,598,720 expert params at 4.25 bits and the
        // other 2,127,557,952 in bf16: 65.19 GB (the checkpoint is ~65 GB).
        let oss = m("gpt-oss-120b");
        assert_eq!(oss.expert_dtype, Some(Dtype::Int4));
        let want = 2_127_557_952.0 * 2.0 + 114_701_598_720.0 * 4.25 / 8.0;
        assert!(
            (oss.weight_bytes() as f64 - want).abs() < 1e3,
            "{}",
            oss.weight_bytes()
        );
        // The layer kinds.
        let kinds = |name: &str| -> Vec<(u32, &'static str)> {
            m(name)
                .layer_groups()
                .iter()
                .map(|g| (g.layers, g.kind_name()))
                .collect()
        };
        assert_eq!(kinds("gpt-oss-120b"), [(18, "sliding"), (18, "full")]);
        assert_eq!(
            kinds("llama-4-scout-17b-16e"),
            [(12, "full"), (36, "chunked")]
        );
        assert_eq!(kinds("gemma-3-27b"), [(10, "full"), (52, "sliding")]);
        assert_eq!(
            kinds("qwen3-next-80b-a3b"),
            [(12, "full"), (36, "recurrent")]
        );
        assert_eq!(kinds("deepseek-v3.1"), [(61, "mla")]);
    }

    /// tests/data/hf holds the public config.json fields of the refreshed
    /// models (trimmed, with the URL under `_source`); the catalog's shape
    /// fields are those values.
    #[test]
    fn the_hf_config_files_agree_with_the_catalog() {
        // Every config under tests/data/hf named after a catalog model,
        // imported as `kvsim kv --hf-config` would: the same model.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/hf");
        let mut compared = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let Some(x) = model(&name) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let source = v["_source"].as_str().unwrap();
            assert!(source.starts_with("https://huggingface.co/"), "{name}");
            let got = crate::model::hf::parse(&v, &name)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .model;
            // The same groups, in whatever order.
            let sorted = |m: &crate::model::Model| {
                let mut g: Vec<String> =
                    m.layer_groups().iter().map(|g| format!("{g:?}")).collect();
                g.sort();
                g
            };
            assert_eq!(sorted(&got), sorted(&x), "{name}: groups");
            assert_eq!(
                got.kv_bytes_per_token(Dtype::Bf16),
                x.kv_bytes_per_token(Dtype::Bf16),
                "{name}"
            );
            assert_eq!(got.state_bytes_per_seq(), x.state_bytes_per_seq(), "{name}");
            assert_eq!(
                (got.layers, got.hidden, got.heads, got.vocab),
                (x.layers, x.hidden, x.heads, x.vocab),
                "{name}"
            );
            assert_eq!(got.max_model_len, x.max_model_len, "{name}: context");
            assert_eq!(
                (got.params, got.active_params),
                (x.params, x.active_params),
                "{name}"
            );
            assert_eq!(
                (got.weight_dtype, got.expert_dtype),
                (x.weight_dtype, x.expert_dtype),
                "{name}"
            );
            assert_eq!(got.moe, x.moe, "{name}");
            compared.push(name);
        }
        compared.sort();
        assert_eq!(
            compared,
            [
                "deepseek-v3",
                "deepseek-v3.1",
                "gemma-2-9b",
                "gemma-3-27b",
                "gpt-oss-120b",
                "gpt-oss-20b",
                "llama-3.1-8b",
                "llama-4-scout-17b-16e",
                "mistral-7b-v0.1",
                "mixtral-8x7b",
                "qwen2.5-7b",
                "qwen3-30b-a3b",
                "qwen3-32b",
                "qwen3-next-80b-a3b",
            ]
        );
    }

    #[test]
    fn every_model_is_internally_consistent() {
        for e in models() {
            let x = &e.model;
            let n = &x.name;
            assert!(!e.source.is_empty(), "{n}: source");
            assert!(x.params > 0 && x.active_params > 0, "{n}: params");
            assert!(x.active_params <= x.params, "{n}: active > total");
            assert_eq!(
                x.is_moe(),
                x.active_params < x.params,
                "{n}: MoE iff active < total"
            );
            assert!(
                x.layers > 0 && x.hidden > 0 && x.vocab > 0 && x.max_model_len > 0,
                "{n}"
            );
            assert!(
                x.heads > 0 && x.kv_heads > 0 && x.head_dim > 0,
                "{n}: heads"
            );
            assert_eq!(x.heads % x.kv_heads, 0, "{n}: kv_heads must divide heads");
            if let Some(w) = x.sliding_window {
                assert!(w.window > 0 && w.layers > 0, "{n}: window");
                assert!(w.layers <= x.layers, "{n}: window layers");
                assert!(w.window <= x.max_model_len, "{n}: window beyond context");
            }
            if let Some(moe) = x.moe {
                assert!(moe.experts_per_token > 0, "{n}");
                assert!(moe.experts_per_token < moe.experts, "{n}: routing");
            }
            if let Some(mla) = x.mla {
                assert!(mla.kv_lora_rank > 0 && mla.qk_rope_dim > 0, "{n}");
                // MLA convention: kv_heads = heads (query heads).
                assert_eq!(x.kv_heads, x.heads, "{n}: MLA kv_heads");
            }
            assert!(
                x.intermediate > x.hidden / 4,
                "{n}: implausible intermediate size"
            );
        }
    }

    #[test]
    fn the_architectural_features_are_where_the_brief_says() {
        let mistral = m("mistral-7b-v0.1");
        let w = mistral.sliding_window.expect("mistral window");
        assert_eq!((w.window, w.layers), (4096, 32));

        let gemma = m("gemma-2-9b");
        let w = gemma.sliding_window.expect("gemma window");
        assert_eq!((w.window, w.layers, gemma.layers), (4096, 21, 42));
        assert_eq!(gemma.head_dim, 256);

        let mixtral = m("mixtral-8x7b");
        let moe = mixtral.moe.expect("mixtral moe");
        assert_eq!((moe.experts, moe.experts_per_token), (8, 2));
        assert_eq!(mixtral.params / 100_000_000, 467); // 46.7B
        assert_eq!(mixtral.active_params / 100_000_000, 128); // 12.9B, rounded down

        let ds = m("deepseek-v3");
        let mla = ds.mla.expect("deepseek mla");
        assert_eq!((mla.kv_lora_rank, mla.qk_rope_dim), (512, 64));
        let moe = ds.moe.expect("deepseek moe");
        assert_eq!((moe.experts, moe.experts_per_token), (256, 8));
        assert_eq!(ds.layers, 61);
        assert_eq!(ds.params / 1_000_000_000, 671);
        assert_eq!(ds.active_params / 1_000_000_000, 37);
        assert_eq!(ds.weight_dtype, Dtype::Fp8);
        assert_eq!(ds.weight_bytes(), ds.params);

        let falcon = m("falcon-7b");
        assert_eq!((falcon.heads, falcon.kv_heads), (71, 1));

        let opt = m("opt-13b");
        assert_eq!((opt.weight_dtype, opt.max_model_len), (Dtype::Fp16, 2048));
        assert_eq!(opt.kv_heads, opt.heads);

        assert_eq!(m("llama-3.1-8b").params, 8_030_261_248);
        for name in ["llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"] {
            assert_eq!(m(name).max_model_len, 131_072, "{name}");
        }
    }

    /// Recompute Llama-architecture parameter counts from the shape fields
    /// (untied embeddings, RMSNorm, SwiGLU MLP, no biases) to check that the
    /// catalog's params, heads, kv_heads, head_dim, vocab and intermediate
    /// agree with one another.
    #[test]
    fn llama_family_params_match_their_shapes() {
        for name in [
            "llama-2-7b",
            "llama-2-13b",
            "llama-2-70b",
            "llama-3.1-8b",
            "llama-3.1-70b",
            "llama-3.1-405b",
            "mistral-7b-v0.1",
            "mixtral-8x7b",
        ] {
            let e = model_entry(name).unwrap();
            let x = &e.model;
            let h = u64::from(x.hidden);
            let q = u64::from(x.heads) * u64::from(x.head_dim);
            let kv = u64::from(x.kv_heads) * u64::from(x.head_dim);
            let ffn = u64::from(e.model.intermediate);
            let (experts, active, router) = match x.moe {
                Some(moe) => (
                    u64::from(moe.experts),
                    u64::from(moe.experts_per_token),
                    u64::from(moe.experts) * h,
                ),
                None => (1, 1, 0),
            };
            let attn = h * q + 2 * h * kv + q * h;
            let per_layer = |n: u64| attn + n * 3 * h * ffn + router + 2 * h;
            let embed = 2 * u64::from(x.vocab) * h;
            let total = embed + u64::from(x.layers) * per_layer(experts) + h;
            let used = embed + u64::from(x.layers) * per_layer(active) + h;
            assert_eq!(x.params, total, "{name}: params");
            assert_eq!(x.active_params, used, "{name}: active params");
        }
    }

    #[test]
    fn every_gpu_is_sane() {
        for e in gpus() {
            let x = &e.gpu;
            let n = &x.name;
            assert!(!e.source.is_empty(), "{n}: source");
            // Between 16 GiB and 320 GiB: catches a GB/GiB or MiB slip.
            assert!(
                x.vram_bytes > 16 << 30 && x.vram_bytes < 320 << 30,
                "{n}: vram"
            );
            for (what, v) in [
                ("hbm_bandwidth", x.hbm_bandwidth),
                ("peak_flops", x.peak_flops),
                ("interconnect_bandwidth", x.interconnect_bandwidth),
                ("pcie_bandwidth", x.pcie_bandwidth),
            ] {
                assert!(v.is_finite() && v > 0.0, "{n}: {what}");
            }
            // Plausible ranges: 100 GB/s - 10 TB/s, 50 TFLOP/s - 5 PFLOP/s.
            assert!(
                (1e11..=1e13).contains(&x.hbm_bandwidth),
                "{n}: bandwidth unit"
            );
            assert!((5e13..=5e15).contains(&x.peak_flops), "{n}: flops unit");
            // One direction of a GPU-GPU link is never faster than HBM, and a
            // dedicated link is never slower than the host link.
            assert!(x.interconnect_bandwidth < x.hbm_bandwidth, "{n}");
            assert!(x.interconnect_bandwidth >= x.pcie_bandwidth, "{n}");
            if let Some(p) = x.price_per_hour {
                assert!(p.is_finite() && p > 0.0 && p < 100.0, "{n}: price");
            }
            let f = x.efficiency;
            for (what, v) in [("mbu", f.mbu), ("mfu", f.mfu)] {
                assert!(v > 0.0 && v <= 1.0, "{n}: {what} out of (0, 1]");
            }
            assert!(
                f.step_overhead_s >= 0.0 && f.step_overhead_s < 0.1,
                "{n}: overhead"
            );
            assert!(
                f.layer_overhead_s > 0.0 && f.layer_overhead_s < 1e-3,
                "{n}: per-layer overhead"
            );
            // Lower precisions are at least as fast as bf16, at most 2x per
            // halving of the bits (dense), and present in the order the
            // hardware generations added them. The one exception is
            // Blackwell Ultra's NVFP4, 6x its bf16 (HGX B300: 108 PF dense
            // FP4 against 18 PF dense BF16 per 8 GPUs).
            for (what, peak, ratio) in [
                ("fp8", x.peak_flops_fp8, 2.0),
                ("int8", x.peak_flops_int8, 2.0),
                ("fp4", x.peak_flops_fp4, if n == "b300" { 6.0 } else { 4.0 }),
            ] {
                if let Some(p) = peak {
                    let r = p / x.peak_flops;
                    // (Datasheets round: the L40S's 733 fp8 TFLOP/s is 2.02x its 362.05 bf16.)
                    assert!(r > 1.0 && r <= ratio * 1.03, "{n}: {what} / bf16 = {r}");
                }
            }
            if x.peak_flops_fp4.is_some() {
                assert!(x.peak_flops_fp8.is_some(), "{n}: fp4 without fp8");
            }
            assert!(
                f.allreduce_latency_s > 0.0 && f.allreduce_latency_s < 1e-3,
                "{n}: all-reduce latency"
            );
        }
    }

    /// The runtime reports a little less than the label. Vendors' "GB" for
    /// GPU memory is binary here: an H200's "141 GB" is 141 GiB of HBM3e of
    /// which CUDA reports 139.8 GiB, a B200's "180 GB" 180 GiB (178.4 GiB
    /// reported); read as 10^9 bytes the labels would be below what CUDA sees.
    #[test]
    fn reported_memory_is_a_little_below_the_marketed_size() {
        let marketed_gib: [(&str, u64); 15] = [
            ("a100-40gb", 40),
            ("a100-80gb", 80),
            ("h100-sxm", 80),
            ("h100-pcie", 80),
            ("h200", 141),
            ("l4", 24),
            ("l40s", 48),
            ("mi300x", 192),
            ("b200", 180),
            ("b300", 270),
            ("gb200", 186),
            ("h20", 96),
            ("mi325x", 256),
            ("mi355x", 288),
            ("rtx-pro-6000-se", 96),
        ];
        for (name, gib) in marketed_gib {
            let label = gib << 30;
            let vram = g(name).vram_bytes;
            assert!(vram <= label, "{name}: {vram} > marketed {label}");
            assert!(
                vram as f64 >= 0.9 * label as f64,
                "{name}: {vram} far below {label}"
            );
        }
    }

    /// Guards against the usual slip of copying the "with sparsity" figure:
    /// datasheets give dense bf16 directly (A100, L40S, MI300X) or only the
    /// sparse figure, which is twice the dense one (H100, H200, L4, B200).
    #[test]
    fn peak_flops_are_dense_bf16() {
        let dense_tflops: [(&str, f64); 15] = [
            ("a100-40gb", 312.0),
            ("a100-80gb", 312.0),
            ("h100-sxm", 1979.0 / 2.0),
            ("h100-pcie", 1513.0 / 2.0),
            ("h200", 1979.0 / 2.0),
            ("l4", 242.0 / 2.0),
            ("l40s", 362.05),
            ("mi300x", 1307.4),
            ("b200", 4500.0 / 2.0),
            // HGX B300: 36 PFLOPS sparse per 8 GPUs.
            ("b300", 36_000.0 / 8.0 / 2.0),
            // GB200 NVL72: 360 PFLOPS sparse per 72 GPUs.
            ("gb200", 360_000.0 / 72.0 / 2.0),
            ("h20", 148.0),
            ("mi325x", 1307.4),
            // AMD's "2.5 PFLOPS" is 2,400 MHz x 1,024 x 512 x 2.
            ("mi355x", 2400e6 * 1024.0 * 512.0 * 2.0 / 1e12),
            ("rtx-pro-6000-se", 1007.6 / 2.0),
        ];
        for (name, want) in dense_tflops {
            let got = g(name).peak_flops / 1e12;
            assert!((got - want).abs() < 0.5, "{name}: {got} vs {want}");
        }
    }

    /// The dense peaks of the lower precisions, as the datasheets give them
    /// (half the starred sparse figure where only that is printed).
    #[test]
    fn low_precision_peaks_follow_the_datasheets() {
        /// (gpu, fp8, int8, fp4) dense TFLOP/s.
        type Peaks = (&'static str, Option<f64>, Option<f64>, Option<f64>);
        let tflops: [Peaks; 15] = [
            ("a100-40gb", None, Some(624.0), None),
            ("a100-80gb", None, Some(624.0), None),
            ("h100-sxm", Some(3958.0 / 2.0), Some(3958.0 / 2.0), None),
            ("h100-pcie", Some(3026.0 / 2.0), Some(3026.0 / 2.0), None),
            ("h200", Some(3958.0 / 2.0), Some(3958.0 / 2.0), None),
            ("l4", Some(485.0 / 2.0), Some(485.0 / 2.0), None),
            ("l40s", Some(733.0), Some(733.0), None),
            ("mi300x", Some(2614.9), Some(2614.9), None),
            (
                "b200",
                Some(9000.0 / 2.0),
                Some(9000.0 / 2.0),
                Some(18000.0 / 2.0),
            ),
            // HGX B300 per 8 GPUs: FP8 72 PF sparse, FP4 108 PF dense; no int8.
            ("b300", Some(72_000.0 / 16.0), None, Some(108_000.0 / 8.0)),
            // GB200 NVL72 per 72 GPUs: 720 sparse, 720 POPS sparse, 720 dense.
            (
                "gb200",
                Some(720_000.0 / 144.0),
                Some(720_000.0 / 144.0),
                Some(720_000.0 / 72.0),
            ),
            ("h20", Some(296.0), Some(296.0), None),
            ("mi325x", Some(2614.9), Some(2614.9), None),
            ("mi355x", Some(5033.2), Some(5033.2), Some(10066.3)),
            (
                "rtx-pro-6000-se",
                Some(2015.2 / 2.0),
                Some(2015.2 / 2.0),
                Some(4030.4 / 2.0),
            ),
        ];
        for (name, fp8, int8, fp4) in tflops {
            let x = g(name);
            for (what, got, want) in [
                ("fp8", x.peak_flops_fp8, fp8),
                ("int8", x.peak_flops_int8, int8),
                ("fp4", x.peak_flops_fp4, fp4),
            ] {
                match (got, want) {
                    (None, None) => {}
                    (Some(g), Some(w)) => {
                        assert!((g / 1e12 - w).abs() < 0.5, "{name} {what}: {g} vs {w}")
                    }
                    _ => panic!("{name} {what}: {got:?} vs {want:?}"),
                }
            }
        }
    }

    /// The headline numbers of the GPUs added in the 2026 refresh, typed by
    /// hand from their citations (gpus.rs): the runtime-reported memory in
    /// MiB, HBM (or GDDR) bandwidth in TB/s, the GPU-GPU link per direction
    /// in GB/s, the host link per direction in GB/s and the price.
    #[test]
    fn refreshed_gpus_match_their_datasheets() {
        /// (gpu, MiB, TB/s, link GB/s, host GB/s, $/h)
        type Headline = (&'static str, u64, f64, f64, f64, Option<f64>);
        let rows: [Headline; 6] = [
            // 267.69 GiB x 1024; "270 GB HBM3E | 7.7 TB/s"; NVLink 5 1.8 TB/s;
            // Gen5 hosts; RunPod $7.89.
            ("b300", 274_115, 7.7, 1800.0 / 2.0, 128.0 / 2.0, Some(7.89)),
            // 184.31 GiB x 1024; 576 TB/s / 72; 130 TB/s / 72 = 1.8; NVLink-C2C
            // 900 GB/s shared by two GPUs; CoreWeave $42.00 per 4 GPUs.
            (
                "gb200",
                188_733,
                576.0 / 72.0,
                1800.0 / 2.0,
                900.0 / 4.0,
                Some(42.00 / 4.0),
            ),
            // total_memory=97285MB; 4.0 TB/s; NVLink 900 GB/s; Gen5 x16.
            ("h20", 97_285, 4.0, 900.0 / 2.0, 128.0 / 2.0, None),
            // 255.98 GiB x 1024; 6 TB/s; 7 x 128 GB/s Infinity Fabric.
            ("mi325x", 262_124, 6.0, 7.0 * 128.0 / 2.0, 64.0, None),
            // 287.98 GiB x 1024; 8 TB/s; 7 x 153.6 GB/s Infinity Fabric.
            ("mi355x", 294_892, 8.0, 7.0 * 153.6 / 2.0, 64.0, None),
            // total_memory=97250MB; 1597 GB/s; PCIe Gen5 only; Akash $2.04.
            ("rtx-pro-6000-se", 97_250, 1.597, 64.0, 64.0, Some(2.04)),
        ];
        for (name, mib, tbs, link, host, price) in rows {
            let x = g(name);
            assert_eq!(x.vram_bytes, mib << 20, "{name}: vram");
            assert!(
                (x.hbm_bandwidth / 1e12 - tbs).abs() < 1e-9,
                "{name}: bandwidth"
            );
            assert!(
                (x.interconnect_bandwidth / 1e9 - link).abs() < 0.05,
                "{name}: link {}",
                x.interconnect_bandwidth
            );
            assert!(
                (x.pcie_bandwidth / 1e9 - host).abs() < 1e-9,
                "{name}: host link"
            );
            match (x.price_per_hour, price) {
                (None, None) => {}
                (Some(got), Some(want)) => assert!((got - want).abs() < 1e-9, "{name}: price"),
                (got, want) => panic!("{name}: price {got:?} vs {want:?}"),
            }
            assert!(
                !gpu_entry(name).unwrap().source.is_empty(),
                "{name}: source"
            );
        }
        // Efficiency: the same family reuses its fitted (or, for AMD, its
        // estimated) factors; a new architecture gets the documented default.
        assert_eq!(g("b300").efficiency, g("b200").efficiency);
        assert_eq!(g("gb200").efficiency, g("b200").efficiency);
        assert_eq!(g("h20").efficiency, g("h100-sxm").efficiency);
        assert_eq!(g("mi325x").efficiency, g("mi300x").efficiency);
        for (name, allreduce) in [("mi355x", 15e-6), ("rtx-pro-6000-se", 40e-6)] {
            let f = g(name).efficiency;
            // Mean fitted mbu (0.81, 0.71, 0.52) and mfu (0.55, 0.39).
            assert!((f.mbu - (0.81 + 0.71 + 0.52) / 3.0).abs() < 0.005, "{name}");
            assert!((f.mfu - (0.55 + 0.39) / 2.0).abs() < 0.005, "{name}");
            assert_eq!(f.allreduce_latency_s, allreduce, "{name}");
            assert_eq!(f.layer_overhead_s, g("b200").efficiency.layer_overhead_s);
            let source = gpu_entry(name).unwrap().source;
            assert!(source.contains("uncalibrated"), "{name}: {source}");
        }
    }

    #[test]
    fn weights_fit_or_do_not_fit_as_expected() {
        // Single GPU, raw capacity (util 1.0).
        assert!(!fits("llama-3.1-70b", "h100-sxm", 1, 1.0));
        assert!(fits("llama-3.1-8b", "h100-sxm", 1, 1.0));
        assert!(!fits("mixtral-8x7b", "h100-sxm", 1, 1.0));
        assert!(!fits("llama-2-70b", "a100-80gb", 1, 1.0));

        // Single GPU at vLLM's default gpu_memory_utilization 0.9.
        assert!(fits("llama-3.1-8b", "l4", 1, 0.9));
        assert!(fits("llama-3.1-8b", "a100-40gb", 1, 0.9));
        assert!(fits("opt-13b", "a100-40gb", 1, 0.9));
        assert!(!fits("opt-13b", "l4", 1, 0.9));
        assert!(fits("mixtral-8x7b", "h200", 1, 0.9));
        assert!(!fits("llama-3.1-70b", "h200", 1, 0.9)); // 141.1 GB > 135.1 GB
        assert!(fits("llama-3.1-70b", "mi300x", 1, 0.9));
        assert!(fits("llama-2-70b", "mi300x", 1, 0.9));
        assert!(fits("qwen2.5-72b", "b200", 1, 0.9));
        assert!(!fits("qwen2.5-72b", "h200", 1, 0.9));

        // Tensor parallel.
        assert!(fits("llama-3.1-70b", "h100-sxm", 2, 0.9));
        assert!(!fits("llama-3.1-405b", "h100-sxm", 8, 0.9));
        assert!(fits("llama-3.1-405b", "h200", 8, 0.9));
        assert!(fits("llama-3.1-405b", "mi300x", 8, 0.9));
        // DeepSeek-V3 in fp8 (671 GB) needs more than one 8x H100 node.
        assert!(!fits("deepseek-v3", "h100-sxm", 8, 0.9));
        assert!(fits("deepseek-v3", "h200", 8, 0.9));
        assert!(fits("deepseek-v3", "b200", 8, 0.9));
        // The larger memories of the refresh: 70B in bf16 fits one B300,
        // MI325X, MI355X or GB200, and DeepSeek-V3 in fp8 four B300s or four
        // GB200s but not four H20s; the H20's 96 GB holds an 8B, not a 70B.
        for gpu in ["b300", "mi325x", "mi355x", "gb200"] {
            assert!(fits("llama-3.1-70b", gpu, 1, 0.9), "{gpu}");
        }
        assert!(fits("deepseek-v3", "b300", 4, 0.9));
        assert!(fits("deepseek-v3", "gb200", 4, 0.9));
        assert!(!fits("deepseek-v3", "h20", 4, 0.9));
        assert!(fits("llama-3.1-8b", "h20", 1, 0.9));
        assert!(!fits("llama-3.1-70b", "h20", 1, 0.9));
        assert!(fits("llama-3.1-70b", "rtx-pro-6000-se", 2, 0.9));
    }
}
