//! Hugging Face `config.json` import (`model = { hf_config = ... }`,
//! `kvsim kv --hf-config`): every fixture in `tests/data/hf/` against figures
//! computed here by hand from its config numbers (KV bytes per token in
//! bf16, recurrent state per sequence, layer groups, context, parameters
//! against the model card), bad configs refused with exit 2 naming the file
//! and the field, and a scenario that reads one end to end.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use kvsim::model::{Dtype, Model, Span};
use kvsim::scenario::import_hf_config;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/hf")
        .join(format!("{name}.json"))
}

fn import(name: &str) -> Model {
    import_hf_config(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The model's layer groups as (kind, layers, what each keeps).
fn groups(m: &Model) -> Vec<(&'static str, u32, Span)> {
    m.layer_groups()
        .iter()
        .map(|g| (g.kind_name(), g.layers, g.span()))
        .collect()
}

/// `actual` is within `tolerance` (a fraction) of the card's `card` figure.
fn near_card(what: &str, actual: u64, card: f64, tolerance: f64) {
    let off = (actual as f64 - card).abs() / card;
    assert!(
        off <= tolerance,
        "{what}: {actual} is {:.2} % from the card's {card:e}",
        off * 100.0
    );
}

/// The checks every fixture gets: KV bytes per token (bf16), state per
/// sequence, groups, context.
fn shape(m: &Model, kv: u64, state: u64, expect: &[(&str, u32, Span)], context: u32) {
    assert_eq!(
        m.kv_bytes_per_token(Dtype::Bf16),
        kv,
        "{}: KV B/token",
        m.name
    );
    assert_eq!(m.state_bytes_per_seq(), Some(state), "{}: state", m.name);
    assert_eq!(groups(m), expect, "{}: groups", m.name);
    assert_eq!(m.max_model_len, context, "{}: context", m.name);
}

#[test]
fn llama_3_1_8b() {
    let m = import("llama-3.1-8b");
    // 32 layers x 2 (K, V) x 8 KV heads x head_dim 4096/32 = 128 x 2 bytes.
    // max_position_embeddings 131072; rope_scaling llama3 is not a factor
    // vLLM applies.
    shape(
        &m,
        32 * 2 * 8 * 128 * 2,
        0,
        &[("full", 32, Span::All)],
        131_072,
    );
    // embed + lm_head + 32 x (q, o + k, v + gated MLP + 2 norms) + final norm.
    let params = 2 * 128_256 * 4096
        + 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14_336 + 2 * 4096)
        + 4096;
    assert_eq!((m.params, m.active_params), (params, params));
    assert_eq!(params, 8_030_261_248);
    // Card (meta-llama/Llama-3.1-8B): 8.03B.
    near_card("params", m.params, 8.03e9, 0.01);
    assert_eq!(m.weight_dtype, Dtype::Bf16);
    assert_eq!(m.name, "llama-3.1-8b");
}

#[test]
fn mistral_7b_v0_1() {
    let m = import("mistral-7b-v0.1");
    // Every layer windowed at sliding_window 4096 (of a 32768 context).
    shape(
        &m,
        32 * 2 * 8 * 128 * 2,
        0,
        &[("sliding", 32, Span::Window(4096))],
        32_768,
    );
    let params = 2 * 32_000 * 4096
        + 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14_336 + 2 * 4096)
        + 4096;
    assert_eq!(m.params, params);
    // Card: 7.24B.
    near_card("params", m.params, 7.24e9, 0.01);
}

#[test]
fn mixtral_8x7b() {
    let m = import("mixtral-8x7b");
    // sliding_window null: every layer full.
    shape(
        &m,
        32 * 2 * 8 * 128 * 2,
        0,
        &[("full", 32, Span::All)],
        32_768,
    );
    let moe = m.moe.unwrap();
    assert_eq!((moe.experts, moe.experts_per_token), (8, 2));
    let expert = 3 * 4096 * 14_336;
    let params = 2 * 32_000 * 4096
        + 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 8 * expert + 8 * 4096 + 2 * 4096)
        + 4096;
    assert_eq!(m.params, params);
    assert_eq!(m.active_params, params - 32 * 6 * expert);
    // Card / paper (arXiv:2401.04088): 46.7B total, 12.9B active.
    near_card("params", m.params, 46.7e9, 0.01);
    near_card("active", m.active_params, 12.9e9, 0.01);
    assert_eq!(m.intermediate, 14_336, "one expert's width");
}

#[test]
fn qwen2_5_7b() {
    let m = import("qwen2.5-7b");
    // use_sliding_window false: no window although sliding_window is set.
    // head_dim 3584/28 = 128.
    shape(
        &m,
        28 * 2 * 4 * 128 * 2,
        0,
        &[("full", 28, Span::All)],
        131_072,
    );
    // q/k/v carry biases (3584 + 2 x 512).
    let params = 2 * 152_064 * 3584
        + 28 * (2 * 3584 * 3584 + 3584 + 2 * 3584 * 512 + 2 * 512 + 3 * 3584 * 18_944 + 2 * 3584)
        + 3584;
    assert_eq!(m.params, params);
    // Card: 7.61B.
    near_card("params", m.params, 7.61e9, 0.01);
}

#[test]
fn qwen3_8b() {
    let m = import("qwen3-8b");
    shape(
        &m,
        36 * 2 * 8 * 128 * 2,
        0,
        &[("full", 36, Span::All)],
        40_960,
    );
    // q 4096x(32x128), k and v 4096x(8x128), o, q/k norms of head_dim 128.
    let layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 2 * 128 + 3 * 4096 * 12_288 + 2 * 4096;
    let params = 2 * 151_936 * 4096 + 36 * layer + 4096;
    assert_eq!(m.params, params);
    // Card: 8.2B (6.95B non-embedding).
    near_card("params", m.params, 8.2e9, 0.01);
    near_card("non-embedding", m.params - 2 * 151_936 * 4096, 6.95e9, 0.01);
}

#[test]
fn qwen3_30b_a3b() {
    let m = import("qwen3-30b-a3b");
    shape(
        &m,
        48 * 2 * 4 * 128 * 2,
        0,
        &[("full", 48, Span::All)],
        40_960,
    );
    let moe = m.moe.unwrap();
    assert_eq!((moe.experts, moe.experts_per_token), (128, 8));
    let expert = 3 * 2048 * 768;
    // q 2048x4096, k and v 2048x512, o 4096x2048, q/k norms, router
    // 2048x128, 128 experts, 2 norms.
    let layer =
        2048 * 4096 + 2 * 2048 * 512 + 4096 * 2048 + 2 * 128 + 2048 * 128 + 128 * expert + 2 * 2048;
    let params = 2 * 151_936 * 2048 + 48 * layer + 2048;
    assert_eq!(m.params, params);
    assert_eq!(m.active_params, params - 48 * 120 * expert);
    // Card: 30.5B total, 3.3B activated.
    near_card("params", m.params, 30.5e9, 0.01);
    near_card("active", m.active_params, 3.3e9, 0.02);
    assert_eq!(m.intermediate, 768, "no dense layers: one expert's width");
}

#[test]
fn gemma_2_9b() {
    let m = import("gemma-2-9b");
    // 42 layers x 2 x 8 x 256 x 2; HF's Gemma2 windows the even layers:
    // 21 local (4096), 21 global.
    shape(
        &m,
        42 * 2 * 8 * 256 * 2,
        0,
        &[("full", 21, Span::All), ("sliding", 21, Span::Window(4096))],
        8192,
    );
    assert_eq!(
        m.sliding_window.map(|w| (w.window, w.layers)),
        Some((4096, 21))
    );
    // Tied embeddings, 4 norms per layer.
    let layer = 3584 * 4096 + 2 * 3584 * 2048 + 4096 * 3584 + 3 * 3584 * 14_336 + 4 * 3584;
    let params = 256_000 * 3584 + 42 * layer + 3584;
    assert_eq!(m.params, params);
    // Card: 9.24B.
    near_card("params", m.params, 9.24e9, 0.01);
}

#[test]
fn gemma_3_27b() {
    let m = import("gemma-3-27b");
    // text_config: 62 layers, 16 KV heads of 128; sliding_window_pattern
    // absent, so Gemma3TextConfig's 6: five local (1024) then one global,
    // 62 / 6 = 10 global, 52 local. max_position_embeddings absent: the
    // class default 131072, which vLLM does not scale by the rope factor 8.
    shape(
        &m,
        62 * 2 * 16 * 128 * 2,
        0,
        &[("full", 10, Span::All), ("sliding", 52, Span::Window(1024))],
        131_072,
    );
    // vocab_size absent: the default 262208; tied embeddings; q/k norms and
    // 4 norms per layer.
    let layer =
        5376 * 4096 + 2 * 5376 * 2048 + 4096 * 5376 + 2 * 128 + 3 * 5376 * 21_504 + 4 * 5376;
    let params = 262_208 * 5376 + 62 * layer + 5376;
    assert_eq!(m.params, params);
    // Card: 27B (HF lists 27.4B: the 0.4B SigLIP vision tower, not counted
    // here, is the difference).
    near_card("params", m.params, 27e9, 0.01);
}

#[test]
fn phi_3_mini_4k() {
    let m = import("phi-3-mini-4k");
    // MHA: 32 KV heads of 3072/32 = 96; sliding_window 2047 on every layer
    // (of a 4096 context).
    shape(
        &m,
        32 * 2 * 32 * 96 * 2,
        0,
        &[("sliding", 32, Span::Window(2047))],
        4096,
    );
    let params = 2 * 32_064 * 3072 + 32 * (4 * 3072 * 3072 + 3 * 3072 * 8192 + 2 * 3072) + 3072;
    assert_eq!(m.params, params);
    // Card: 3.8B.
    near_card("params", m.params, 3.8e9, 0.01);
}

#[test]
fn deepseek_v2_lite() {
    let m = import("deepseek-v2-lite");
    // MLA: 27 layers x (kv_lora_rank 512 + qk_rope_head_dim 64) x 2 bytes.
    // Context: yarn, original_max_position_embeddings 4096 x factor 40.
    shape(
        &m,
        27 * (512 + 64) * 2,
        0,
        &[("mla", 27, Span::All)],
        4096 * 40,
    );
    // q_lora_rank null: q_proj 2048 x 16 x (128 + 64); kv_a_proj 2048 x
    // (512 + 64), its norm 512, kv_b_proj 512 x 16 x (128 + 128), o_proj
    // 16 x 128 x 2048; 2 norms.
    let attn = 2048 * 16 * 192 + 2048 * 576 + 512 + 512 * 16 * 256 + 16 * 128 * 2048 + 2 * 2048;
    let expert = 3 * 2048 * 1408;
    // Layer 0 dense (first_k_dense_replace 1); 26 MoE layers of 64 routed
    // and 2 shared experts and a 2048 x 64 router.
    let params =
        2 * 102_400 * 2048 + 27 * attn + 3 * 2048 * 10_944 + 26 * (66 * expert + 2048 * 64) + 2048;
    assert_eq!(m.params, params);
    assert_eq!(m.active_params, params - 26 * 58 * expert);
    // Card: 15.7B total, 2.4B activated; the card's active count leaves out
    // the 0.21B input embedding (a lookup), which ours includes:
    // 2.66B - 0.21B = 2.45B.
    near_card("params", m.params, 15.7e9, 0.01);
    near_card("active", m.active_params - 102_400 * 2048, 2.4e9, 0.025);
}

#[test]
fn deepseek_v3() {
    let m = import("deepseek-v3");
    shape(
        &m,
        61 * (512 + 64) * 2,
        0,
        &[("mla", 61, Span::All)],
        4096 * 40,
    );
    assert_eq!(m.weight_dtype, Dtype::Fp8, "quantization_config fp8");
    // q through the 1536 latent and its norm; the rest as V2-Lite with 128
    // heads (the catalog's arithmetic).
    let attn = 7168 * 1536
        + 1536
        + 1536 * 128 * 192
        + 7168 * 576
        + 512
        + 512 * 128 * 256
        + 128 * 128 * 7168;
    assert_eq!(attn, 187_107_328);
    let expert = 3 * 7168 * 2048;
    // 3 dense layers, 58 MoE layers: 256 routed + 1 shared expert, router
    // 7168 x 256 and its 256 correction biases (topk_method noaux_tc).
    let params = 2 * 129_280 * 7168
        + 61 * (attn + 2 * 7168)
        + 3 * 3 * 7168 * 18_432
        + 58 * (257 * expert + 7168 * 256 + 256)
        + 7168;
    assert_eq!(m.params, params);
    assert_eq!(params, 671_026_419_200, "the catalog's figure");
    assert_eq!(m.active_params, params - 58 * 248 * expert);
    // Paper (arXiv:2412.19437): 671B total (without the 14B MTP module),
    // 37B activated.
    near_card("params", m.params, 671e9, 0.01);
    near_card("active", m.active_params, 37e9, 0.02);
}

#[test]
fn gpt_oss_20b() {
    let m = import("gpt-oss-20b");
    // layer_types alternate: 12 sliding (128), 12 full; 8 KV heads of 64.
    // Context: yarn 4096 x 32.
    shape(
        &m,
        24 * 2 * 8 * 64 * 2,
        0,
        &[("full", 12, Span::All), ("sliding", 12, Span::Window(128))],
        4096 * 32,
    );
    assert_eq!(m.expert_dtype, Some(Dtype::Int4), "mxfp4 experts");
    assert_eq!(m.weight_dtype, Dtype::Bf16);
    // q 2880 x 4096, k and v 2880 x 512, o 4096 x 2880, all with biases;
    // 64 sinks. Experts: gate_up 2880 x 5760 and down 2880 x 2880 with
    // biases. Router 2880 x 32 with bias.
    let attn = 2880 * 4096 + 4096 + 2 * (2880 * 512 + 512) + 4096 * 2880 + 2880 + 64;
    let expert = 2880 * 5760 + 5760 + 2880 * 2880 + 2880;
    let layer = attn + 32 * expert + 2880 * 32 + 32 + 2 * 2880;
    let params = 2 * 201_088 * 2880 + 24 * layer + 2880;
    assert_eq!(m.params, params);
    assert_eq!(m.active_params, params - 24 * 28 * expert);
    // Card: 20.9B total, 3.6B active. OpenAI's active count leaves out the
    // 0.58B input embedding: 4.19B - 0.58B = 3.61B.
    near_card("params", m.params, 20.9e9, 0.01);
    near_card("active", m.active_params - 201_088 * 2880, 3.61e9, 0.01);
}

#[test]
fn llama_4_scout() {
    let m = import("llama-4-scout");
    // text_config: no_rope_layers [1, 1, 1, 0] x 12: 36 RoPE layers with
    // chunked attention (8192), 12 NoPE global layers; 8 KV heads of 128.
    // rope_scaling llama3: context max_position_embeddings.
    shape(
        &m,
        48 * 2 * 8 * 128 * 2,
        0,
        &[("full", 12, Span::All), ("chunked", 36, Span::Chunk(8192))],
        262_144,
    );
    // Every layer MoE (interleave_moe_layer_step 1): 16 routed experts and
    // one shared expert of intermediate_size 8192, router 5120 x 16.
    let expert = 3 * 5120 * 8192;
    let layer = 5120 * 5120 + 2 * 5120 * 1024 + 5120 * 5120 + 17 * expert + 5120 * 16 + 2 * 5120;
    let params = 2 * 202_048 * 5120 + 48 * layer + 5120;
    assert_eq!(m.params, params);
    assert_eq!(m.active_params, params - 48 * 15 * expert);
    // Card: 109B total, 17B active. The card counts the multimodal
    // checkpoint, whose vision encoder and projector (~0.9B) this text-only
    // count leaves out: 107.8B is 1.1 % under.
    near_card("params", m.params, 109e9, 0.015);
    near_card("active", m.active_params, 17e9, 0.015);
}

#[test]
fn qwen3_next_80b_a3b() {
    let m = import("qwen3-next-80b-a3b");
    // full_attention_interval 4: 12 full-attention layers (2 KV heads of
    // 256), 36 Gated DeltaNet layers.
    // State per layer (vLLM gated_delta_net_state_shape, bf16):
    //   conv (4 - 1) x (2 x 16 x 128 + 32 x 128) = 24,576 elements,
    //   temporal 32 x 128 x 128 = 524,288 elements; x 2 bytes.
    let per_layer = (3 * (2 * 16 * 128 + 32 * 128) + 32 * 128 * 128) * 2;
    assert_eq!(per_layer, 1_097_728);
    // The README's "37.7 MiB per sequence beside the 24.0 KiB per token".
    assert_eq!(
        format!("{:.1}", (36 * per_layer) as f64 / 1048576.0),
        "37.7"
    );
    assert_eq!(
        format!("{:.1}", (12 * 2 * 2 * 256 * 2) as f64 / 1024.0),
        "24.0"
    );
    shape(
        &m,
        12 * 2 * 2 * 256 * 2,
        36 * per_layer,
        &[("full", 12, Span::All), ("recurrent", 36, Span::All)],
        262_144,
    );
    // Attention: q 2048 x (16 x 256 x 2, the output gate), k and v 2048 x
    // 512, o 4096 x 2048, q/k norms. Gated DeltaNet: in_proj_qkvz 2048 x
    // (2 x 2048 + 2 x 4096), in_proj_ba 2048 x 64, conv 8192 x 4, dt_bias
    // and A_log 32 each, norm 128, out_proj 4096 x 2048. MoE: 512 experts
    // of 3 x 2048 x 512, a shared one and its 2048 gate, router 2048 x 512.
    let attn = 2048 * 8192 + 2 * 2048 * 512 + 4096 * 2048 + 2 * 256;
    let gdn = 2048 * 12_288 + 2048 * 64 + 8192 * 4 + 2 * 32 + 128 + 4096 * 2048;
    let expert = 3 * 2048 * 512;
    let moe = 512 * expert + expert + 2048 + 2048 * 512;
    let params = 2 * 151_936 * 2048 + 12 * attn + 36 * gdn + 48 * (moe + 2 * 2048) + 2048;
    assert_eq!(m.params, params);
    assert_eq!(m.active_params, params - 48 * 502 * expert);
    // Card: 80B total, 3B activated (HF lists 81.3B: the MTP layer, not
    // counted here). Our active count includes the 0.62B embedding and
    // lm_head; without them 3.25B, which the card rounds to 3B.
    near_card("params", m.params, 80e9, 0.01);
    near_card(
        "active without embeddings",
        m.active_params - 2 * 151_936 * 2048,
        3.25e9,
        0.01,
    );
}

#[test]
fn nemotron_h_8b() {
    let m = import("nemotron-h-8b");
    // hybrid_override_pattern: 24 M (Mamba-2), 4 * (attention), 24 -
    // (MLP, no cache).
    // State per Mamba-2 layer (vLLM mamba2_state_shape; conv in bf16, the
    // SSM state in float32, NemotronHForCausalLMConfig's default):
    //   conv (4 - 1) x (128 x 64 + 2 x 8 x 128) = 30,720 elements x 2 B,
    //   temporal 128 x 64 x 128 = 1,048,576 elements x 4 B.
    let per_layer = 3 * (128 * 64 + 2 * 8 * 128) * 2 + 128 * 64 * 128 * 4;
    assert_eq!(per_layer, 4_255_744);
    shape(
        &m,
        4 * 2 * 8 * 128 * 2,
        24 * per_layer,
        &[
            ("full", 4, Span::All),
            ("recurrent", 24, Span::All),
            ("none", 24, Span::All),
        ],
        8192,
    );
    // Mamba-2 block: in_proj 4096 x (2 x 8192 + 2 x 8 x 128 + 128), conv
    // 10240 x 4 with bias, dt_bias/A_log/D 3 x 128, norm 8192, out_proj
    // 8192 x 4096. Attention: q, k, v, o. MLP: up and down 4096 x 21504.
    // One norm per block.
    let mamba = 4096 * 18_560 + 10_240 * 4 + 10_240 + 3 * 128 + 8192 + 8192 * 4096 + 4096;
    let attn = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 4096;
    let mlp = 2 * 4096 * 21_504 + 4096;
    let params = 2 * 131_072 * 4096 + 24 * mamba + 4 * attn + 24 * mlp + 4096;
    assert_eq!(m.params, params);
    // Card: "8B", a rounded figure (the family's cards say 4B, 8B, 47B,
    // 56B): 8.10B is 1.3 % over it.
    near_card("params", m.params, 8e9, 0.015);
}

/// `kvsim kv --hf-config` prints the imported groups: gemma-3-27b at its
/// 131,072-token context keeps 10 global layers' whole context and 52
/// local layers' last 1024 tokens.
#[test]
fn kv_reads_a_config_file() {
    let out = Command::cargo_bin("kvsim")
        .unwrap()
        .args(["kv", "--hf-config"])
        .arg(fixture("gemma-3-27b"))
        .args(["--seq-len", "131072", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"], "gemma-3-27b");
    assert_eq!(v["bytes_per_token"], 62 * 2 * 16 * 128 * 2);
    // 10 x 8,192 B/token x 131,072 tokens + 52 x 8,192 B/token x 1,024.
    let seq = 10u64 * 8192 * 131_072 + 52 * 8192 * 1024;
    assert_eq!(v["bytes_per_sequence"], seq);
    assert_eq!(v["groups"][0]["kind"], "full");
    assert_eq!(v["groups"][1]["keeps"], "window 1024");
    assert_eq!(v["groups"][1]["kept_tokens"], 1024);
    // Against every layer global: 62 x 8,192 x 131,072.
    assert_eq!(v["savings"]["saved_bytes"], 62 * 8192 * 131_072u64 - seq);
    let table = Command::cargo_bin("kvsim")
        .unwrap()
        .args(["kv", "--hf-config"])
        .arg(fixture("gemma-3-27b"))
        .args(["--seq-len", "131072"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    for row in [
        "62 layers in 2 groups, bf16",
        "10 x full, 16 x 128",
        "81,920 B/token x 131,072 = 10,737,418,240",
        "52 x sliding 1024, 16 x 128",
        "425,984 B/token x 1,024 = 436,207,616",
        "11,173,625,856 bytes (10.406 GiB)",
    ] {
        assert!(text.contains(row), "no `{row}` in\n{text}");
    }
    // A hybrid's state and its cache-less layers are listed too.
    let out = Command::cargo_bin("kvsim")
        .unwrap()
        .args(["kv", "--hf-config"])
        .arg(fixture("nemotron-h-8b"))
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state_bytes_per_sequence"], 24 * 4_255_744u64);
    assert_eq!(v["groups"][2]["kind"], "none");
    assert_eq!(v["groups"][2]["layers"], 24);
}

#[test]
fn hf_config_conflicts_with_the_other_shape_flags() {
    for extra in [
        &["--model", "llama-3.1-8b"][..],
        &["--layers", "32", "--kv-heads", "8", "--head-dim", "128"],
    ] {
        Command::cargo_bin("kvsim")
            .unwrap()
            .args(["kv", "--hf-config"])
            .arg(fixture("qwen3-8b"))
            .args(extra)
            .assert()
            .code(2)
            .stderr(predicates::str::contains("cannot be used with"));
    }
}

/// Writes `text` as `name` in a fresh directory and runs `kvsim kv
/// --hf-config` on it: its exit code and stderr.
fn kv_on(name: &str, text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::cargo_bin("kvsim")
        .unwrap()
        .args(["kv", "--hf-config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fixture's JSON with `edit` applied.
fn edited(
    name: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap();
    edit(v.as_object_mut().unwrap());
    v.to_string()
}

/// Values the scenario refuses are refused from a config too, at the
/// config's field: a KV head count that does not divide the heads, a layer
/// count beyond the bounds, a window of 0.
#[test]
fn imported_values_go_through_the_scenario_checks() {
    let cases = [
        (
            edited("llama-3.1-8b", |m| {
                m.insert("num_key_value_heads".into(), 3.into());
            }),
            "`num_key_value_heads`: 3 does not divide heads (32)",
        ),
        (
            edited("llama-3.1-8b", |m| {
                m.insert("num_hidden_layers".into(), 5000.into());
            }),
            "`num_hidden_layers`: 5000 is implausibly large (at most 4096)",
        ),
        (
            edited("mistral-7b-v0.1", |m| {
                m.insert("sliding_window".into(), 0.into());
            }),
            "`sliding_window`: must be at least 1",
        ),
        (
            edited("gemma-3-27b", |m| {
                m["text_config"]
                    .as_object_mut()
                    .unwrap()
                    .insert("num_key_value_heads".into(), 0.into());
            }),
            "`text_config.num_key_value_heads`: must be at least 1",
        ),
    ];
    for (text, want) in cases {
        let (code, err) = kv_on("model.json", &text);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("model.json: "), "{err}");
        assert!(err.contains(want), "no `{want}` in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A scenario reads `hf_config` relative to its own directory, and the
/// other model keys override what the config gives; `kvsim run` runs it.
#[test]
fn a_scenario_runs_an_imported_model() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hf-scenario.toml");
    let out = tempfile::tempdir().unwrap();
    Command::cargo_bin("kvsim")
        .unwrap()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap())
            .unwrap();
    let text = summary.to_string();
    assert!(text.contains("qwen3-next-fp8"), "the name override: {text}");
    assert_eq!(summary["metrics"]["ok"], 200, "{}", summary["metrics"]);
    // The library sees the same: the config's shape with the overrides.
    let s = kvsim::scenario::Scenario::load(&scenario, &[]).unwrap();
    assert_eq!(s.model.name, "qwen3-next-fp8");
    assert_eq!(s.model.weight_dtype, Dtype::Fp8);
    assert_eq!(s.model.max_model_len, 32_768);
    assert_eq!(s.model.params, import("qwen3-next-80b-a3b").params);
    assert_eq!(s.model.state_bytes_per_seq(), Some(36 * 1_097_728));
    // preset and hf_config together are refused.
    let err = kvsim::scenario::Scenario::load(&scenario, &["model.preset=llama-3.1-8b".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`model.hf_config`: give either `preset`"),
        "{err}"
    );
    // A missing file names the path relative to the scenario.
    let err = kvsim::scenario::Scenario::load(&scenario, &["model.hf_config=hf/nope.json".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("hf/nope.json"), "{err}");
}

/// A bad config that a scenario reads is named after the scenario and its
/// `model.hf_config` key, then the config and its field, and exits 2: the
/// library's error and the binary's message alike.
#[test]
fn a_bad_config_names_the_scenario_key_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("llama-3.1-8b")).unwrap()).unwrap();
    config.as_object_mut().unwrap().remove("vocab_size");
    std::fs::create_dir(dir.path().join("hf")).unwrap();
    let config_path = dir.path().join("hf/config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let scenario = dir.path().join("scenario.toml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hf-scenario.toml"),
    )
    .unwrap()
    .replace("hf/qwen3-next-80b-a3b.json", "hf/config.json");
    std::fs::write(&scenario, text).unwrap();
    let want = format!(
        "{}: `model.hf_config`: {}: `vocab_size`: missing",
        scenario.display(),
        config_path.display()
    );
    let err = kvsim::scenario::Scenario::load(&scenario, &[]).unwrap_err();
    assert_eq!(err.to_string(), want);
    assert_eq!(err.exit_code(), 2);
    match &err {
        kvsim::Error::Scenario { path, source } => {
            assert_eq!(path, &scenario);
            assert_eq!(source.key, "model.hf_config");
        }
        other => panic!("{other:?}"),
    }
    let out = Command::cargo_bin("kvsim")
        .unwrap()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&want), "{stderr}");
    // A config that is not there: the same key, then the path.
    let err = kvsim::scenario::Scenario::load(&scenario, &["model.hf_config=hf/nope.json".into()])
        .unwrap_err()
        .to_string();
    let head = format!("{}: `model.hf_config`: ", scenario.display());
    assert!(err.starts_with(&head), "{err}");
    assert!(err.contains("hf/nope.json"), "{err}");
}

/// No edit of one field of a fixture (a zero, a huge number, a negative
/// one, a string, null, a list, an object, the field removed) panics: each
/// is read or refused, and a refusal names a field.
#[test]
fn no_single_field_edit_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let values: Vec<serde_json::Value> = vec![
        0.into(),
        1.into(),
        4_294_967_296u64.into(),
        u64::MAX.into(),
        (-1).into(),
        1e300.into(),
        "x".into(),
        serde_json::Value::Null,
        serde_json::json!([]),
        serde_json::json!([1, "a"]),
        serde_json::json!({}),
        true.into(),
    ];
    let mut tried = 0;
    for entry in std::fs::read_dir(fixture("x").parent().unwrap()).unwrap() {
        let original: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        let nested = original.get("text_config").is_some();
        let keys: Vec<(bool, String)> = original
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (false, k.clone()))
            .chain(
                original
                    .get("text_config")
                    .and_then(|t| t.as_object())
                    .into_iter()
                    .flat_map(|t| t.keys().map(|k| (true, k.clone()))),
            )
            .collect();
        for (inner, key) in keys {
            for value in values.iter().map(Some).chain([None]) {
                let mut v = original.clone();
                let map = if inner && nested {
                    v["text_config"].as_object_mut().unwrap()
                } else {
                    v.as_object_mut().unwrap()
                };
                match value {
                    Some(x) => {
                        map.insert(key.clone(), x.clone());
                    }
                    None => {
                        map.remove(&key);
                    }
                }
                std::fs::write(&path, v.to_string()).unwrap();
                if let Err(e) = import_hf_config(&path) {
                    let text = e.to_string();
                    assert!(text.contains('`'), "{key} = {value:?}: {text}");
                }
                tried += 1;
            }
        }
    }
    assert!(tried > 3000, "{tried}");
}
