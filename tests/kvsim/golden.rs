//! The seeds' worked examples, exact to the byte, through the library and
//! through `kvsim kv`.

use assert_cmd::Command;
use kvsim::catalog;
use kvsim::model::{Dtype, kv_bytes};

/// `kvsim kv ARGS --json` (ARGS split at whitespace), parsed.
fn kv_json(args: &str) -> serde_json::Value {
    let out = Command::cargo_bin("kvsim")
        .unwrap()
        .arg("kv")
        .args(args.split_whitespace())
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Seed 002, section 3: 80 layers, 8 KV heads, head_dim 128, bf16, 8192 tokens.
#[test]
fn seed_002_worked_example_70b_style() {
    let v = kv_json("--layers 80 --kv-heads 8 --head-dim 128 --seq-len 8192");
    assert_eq!(v["total_bytes"], 2_684_354_560u64);
    assert_eq!(v["total_gib"], 2.5);
    assert_eq!(v["double_seq_len_bytes"], 5_368_709_120u64);
    // "At 8 concurrent requests ~20 GiB; at 16, ~40 GiB."
    let b8 = kv_json("--layers 80 --kv-heads 8 --head-dim 128 --batch 8");
    assert_eq!(b8["total_bytes"], 8 * 2_684_354_560u64);
    assert_eq!(b8["total_gib"], 20.0);
    let b16 = kv_json("--layers 80 --kv-heads 8 --head-dim 128 --batch 16");
    assert_eq!(b16["total_gib"], 40.0);
}

/// Seed 002's exercise: 32 layers, 8 KV heads, 4096 tokens, batch 4 = 2 GiB;
/// doubling the batch doubles it.
#[test]
fn seed_002_exercise_is_two_gib_then_four() {
    let v = kv_json("--layers 32 --kv-heads 8 --head-dim 128 --seq-len 4096 --batch 4");
    assert_eq!(v["total_bytes"], 2_147_483_648u64);
    assert_eq!(v["double_batch_bytes"], 4_294_967_296u64);
}

/// Seed 001: 80 layers x 64 KV heads x 128 x 2 x 2 bytes = 2.6 MB per token;
/// 100K tokens = 260 GB.
#[test]
fn seed_001_mha_70b_per_token_and_100k_tokens() {
    let v = kv_json("--layers 80 --kv-heads 64 --head-dim 128 --seq-len 100000");
    assert_eq!(v["bytes_per_token"], 2_621_440u64);
    assert_eq!(v["total_bytes"], 262_144_000_000u64);
}

/// Seed 000: Llama 3 70B at 128k context needs "upwards of 40 GB" for one user.
#[test]
fn seed_000_llama3_70b_128k_context_is_over_40_gb() {
    let m = catalog::model("llama-3.1-70b").expect("in the catalog");
    let bytes = kv_bytes(m.kv_bytes_per_token(Dtype::Bf16), 131_072, 1).unwrap();
    assert_eq!(bytes, 42_949_672_960); // exactly 40 GiB = 42.9 GB
}

#[test]
fn mqa_mla_and_integer_formats() {
    // falcon-7b: MQA, 32 layers x 1 KV head x 64.
    let falcon = catalog::model("falcon-7b").unwrap();
    assert_eq!(falcon.kv_bytes_per_token(Dtype::Bf16), 32 * 2 * 64 * 2);
    // deepseek-v3: MLA, 61 layers x (512 + 64) latent.
    let ds = catalog::model("deepseek-v3").unwrap();
    assert_eq!(ds.kv_bytes_per_token(Dtype::Bf16), 61 * 576 * 2);
    // int8 / int4 on a Llama-3.1-8B shape: 512 vectors of 128 per token; each
    // vector carries one fp16 scale per 64 elements.
    let v = kv_json("--model llama-3.1-8b --kv-dtype int8 --seq-len 1");
    assert_eq!(v["bytes_per_token"], 512 * (128 + 4));
    let v = kv_json("--model llama-3.1-8b --kv-dtype int4 --seq-len 1");
    assert_eq!(v["bytes_per_token"], 512 * (64 + 4));
    let v = kv_json("--model llama-3.1-8b --kv-dtype fp8 --seq-len 1");
    assert_eq!(v["bytes_per_token"], 512 * 128);
}

#[test]
fn quantized_weights_do_not_shrink_the_kv_cache() {
    // Seed 002's trap: a 4-bit weight file still has a bf16 KV cache.
    let mut m = catalog::model("llama-3.1-70b").unwrap();
    let bf16 = m.kv_bytes_per_token(Dtype::Bf16);
    m.weight_dtype = Dtype::Int4;
    assert_eq!(m.kv_bytes_per_token(Dtype::Bf16), bf16);
    assert!(m.weight_bytes() < 40 << 30);
}
