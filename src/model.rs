//! Model shapes and the exact KV-cache arithmetic
//! (docs/ARCHITECTURE.md#kv-arithmetic).
//!
//! ```text
//! kv_bytes_per_token = layers * 2 * kv_heads * head_dim * kv_elem_bytes        (MHA/GQA/MQA)
//!                    = layers * (kv_lora_rank + qk_rope_dim) * kv_elem_bytes    (MLA)
//! KV bytes           = seq_len * batch * kv_bytes_per_token
//! ```
//!
//! Quantized integer formats add one fp16 scale per group of [`QUANT_GROUP`]
//! elements of each cached vector. Weight precision and KV precision are
//! independent: a 4-bit model file still has a bf16 KV cache unless `kv_dtype`
//! says otherwise.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Elements that share one fp16 scale in the integer KV formats (int8, int4).
///
/// Group-wise quantization with groups of 32-128 elements is what published KV
/// quantizers use (KIVI, Liu et al. 2024, arXiv:2402.02750, groups of 32-128;
/// KVQuant, Hooper et al. 2024, arXiv:2401.18079). 64 divides every head
/// dimension in the catalog.
pub const QUANT_GROUP: u64 = 64;

/// Bytes of one fp16 quantization scale.
const SCALE_BYTES: u64 = 2;

/// Numeric format of stored elements (weights or KV).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// IEEE half precision, 2 bytes.
    Fp16,
    /// bfloat16, 2 bytes.
    Bf16,
    /// 8-bit float (e4m3) with a per-tensor scale (vLLM `fp8` KV cache), 1 byte.
    Fp8,
    /// 8-bit integer with one fp16 scale per [`QUANT_GROUP`] elements.
    Int8,
    /// 4-bit integer with one fp16 scale per [`QUANT_GROUP`] elements.
    Int4,
}

impl Dtype {
    /// Every format, in declaration order.
    pub const ALL: [Dtype; 5] = [
        Dtype::Fp16,
        Dtype::Bf16,
        Dtype::Fp8,
        Dtype::Int8,
        Dtype::Int4,
    ];

    /// Bits per element, excluding scales.
    pub const fn bits(self) -> u64 {
        match self {
            Dtype::Fp16 | Dtype::Bf16 => 16,
            Dtype::Fp8 | Dtype::Int8 => 8,
            Dtype::Int4 => 4,
        }
    }

    /// Whether the format stores a per-group scale next to the data.
    pub const fn has_group_scales(self) -> bool {
        matches!(self, Dtype::Int8 | Dtype::Int4)
    }

    /// Exact bytes of one stored vector of `len` elements, scales included.
    pub const fn vector_bytes(self, len: u64) -> u64 {
        let data = (len * self.bits()).div_ceil(8);
        if self.has_group_scales() {
            data + len.div_ceil(QUANT_GROUP) * SCALE_BYTES
        } else {
            data
        }
    }

    /// The name used in scenario files and CSV columns.
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::Fp16 => "fp16",
            Dtype::Bf16 => "bf16",
            Dtype::Fp8 => "fp8",
            Dtype::Int8 => "int8",
            Dtype::Int4 => "int4",
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Dtype::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown dtype `{s}` (expected fp16, bf16, fp8, int8 or int4)"))
    }
}

/// Multi-head latent attention (DeepSeek-V2/V3): one compressed latent vector of
/// `kv_lora_rank` elements plus a decoupled RoPE key of `qk_rope_dim` elements is
/// cached per token per layer, instead of full keys and values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mla {
    /// Rank of the compressed KV latent.
    pub kv_lora_rank: u32,
    /// Dimension of the decoupled rotary key.
    pub qk_rope_dim: u32,
}

/// Mixture-of-experts routing: each token goes to `experts_per_token` of
/// `experts` routed experts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moe {
    /// Routed experts per MoE layer.
    pub experts: u32,
    /// Routed experts each token activates.
    pub experts_per_token: u32,
}

/// A sliding attention window on some or all layers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlidingWindow {
    /// Tokens each windowed layer attends to (and needs to keep).
    pub window: u32,
    /// How many of the model's layers use the window; the rest attend to the whole
    /// context (gemma-2 alternates local and global layers: half of them).
    pub layers: u32,
}

/// The shape of a transformer, as far as serving memory and time are concerned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Catalog or user-given name.
    pub name: String,
    /// Total parameters.
    pub params: u64,
    /// Parameters used per token (equal to `params` for dense models).
    pub active_params: u64,
    /// Transformer layers.
    pub layers: u32,
    /// Hidden (model) dimension.
    pub hidden: u32,
    /// Query heads.
    pub heads: u32,
    /// Key/value heads (= `heads` for MHA, 1 for MQA, in between for GQA).
    pub kv_heads: u32,
    /// Dimension of one attention head.
    pub head_dim: u32,
    /// MLP intermediate width (`intermediate_size` in `config.json`): one
    /// expert's width for Mixtral, the dense layers' width for DeepSeek-V3.
    pub intermediate: u32,
    /// Vocabulary size.
    pub vocab: u32,
    /// Longest context (prompt + output) the model accepts.
    pub max_model_len: u32,
    /// Sliding-window attention, if the architecture has it.
    pub sliding_window: Option<SlidingWindow>,
    /// Multi-head latent attention, if the architecture has it.
    pub mla: Option<Mla>,
    /// Mixture-of-experts routing, if the architecture has it.
    pub moe: Option<Moe>,
    /// Format of the weights in memory.
    pub weight_dtype: Dtype,
}

impl Model {
    /// Cached vectors per token and their length: `(count, len)`.
    ///
    /// MHA/GQA/MQA cache one key and one value vector of `head_dim` per KV head
    /// per layer; MLA caches one latent of `kv_lora_rank + qk_rope_dim` per layer.
    pub fn kv_vectors_per_token(&self) -> (u64, u64) {
        match self.mla {
            Some(m) => (
                u64::from(self.layers),
                u64::from(m.kv_lora_rank) + u64::from(m.qk_rope_dim),
            ),
            None => (
                u64::from(self.layers) * 2 * u64::from(self.kv_heads),
                u64::from(self.head_dim),
            ),
        }
    }

    /// Cached elements per token, all layers.
    pub fn kv_elements_per_token(&self) -> u64 {
        let (count, len) = self.kv_vectors_per_token();
        count * len
    }

    /// Exact KV bytes per token, all layers, in `dtype` (scales included).
    pub fn kv_bytes_per_token(&self, dtype: Dtype) -> u64 {
        let (count, len) = self.kv_vectors_per_token();
        count * dtype.vector_bytes(len)
    }

    /// [`Model::kv_bytes_per_token`], or `None` if it overflows 64 bits (for
    /// shapes from a command line, which no scenario validation has bounded).
    pub fn checked_kv_bytes_per_token(&self, dtype: Dtype) -> Option<u64> {
        let (count, len) = match self.mla {
            Some(m) => (
                u64::from(self.layers),
                u64::from(m.kv_lora_rank) + u64::from(m.qk_rope_dim),
            ),
            None => (
                u64::from(self.layers)
                    .checked_mul(2)?
                    .checked_mul(u64::from(self.kv_heads))?,
                u64::from(self.head_dim),
            ),
        };
        count.checked_mul(dtype.vector_bytes(len))
    }

    /// Bytes of the weights in memory (all experts, all layers, whole model).
    pub fn weight_bytes(&self) -> u64 {
        (u128::from(self.params) * u128::from(self.weight_dtype.bits())).div_ceil(8) as u64
    }

    /// Bytes of the weights that one token touches (active parameters).
    pub fn active_weight_bytes(&self) -> u64 {
        (u128::from(self.active_params) * u128::from(self.weight_dtype.bits())).div_ceil(8) as u64
    }

    /// Whether this is a mixture-of-experts model.
    pub fn is_moe(&self) -> bool {
        self.moe.is_some()
    }
}

/// Exact KV bytes for `batch` sequences of `seq_len` tokens at
/// `bytes_per_token`, or `None` if the product overflows `u64`.
pub fn kv_bytes(bytes_per_token: u64, seq_len: u64, batch: u64) -> Option<u64> {
    bytes_per_token.checked_mul(seq_len)?.checked_mul(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(layers: u32, kv_heads: u32, head_dim: u32) -> Model {
        Model {
            name: "test".into(),
            params: 1,
            active_params: 1,
            layers,
            hidden: kv_heads * head_dim,
            heads: kv_heads,
            kv_heads,
            head_dim,
            intermediate: 4 * kv_heads * head_dim,
            vocab: 1,
            max_model_len: 1 << 20,
            sliding_window: None,
            mla: None,
            moe: None,
            weight_dtype: Dtype::Bf16,
        }
    }

    /// Seed 002's worked example: 80 layers, 8 KV heads, head_dim 128, bf16,
    /// 8192 tokens, batch 1.
    #[test]
    fn seed_70b_style_example_is_exact() {
        let m = shape(80, 8, 128);
        let bpt = m.kv_bytes_per_token(Dtype::Bf16);
        assert_eq!(bpt, 327_680);
        assert_eq!(kv_bytes(bpt, 8192, 1), Some(2_684_354_560));
        assert_eq!(kv_bytes(bpt, 8192, 8), Some(8 * 2_684_354_560));
        assert_eq!(kv_bytes(bpt, 8192, 16), Some(16 * 2_684_354_560));
    }

    /// Seed 002's exercise: 32 layers, 8 KV heads, 4096 tokens, batch 4 = 2 GiB.
    #[test]
    fn seed_exercise_is_two_gib() {
        let m = shape(32, 8, 128);
        assert_eq!(
            kv_bytes(m.kv_bytes_per_token(Dtype::Bf16), 4096, 4),
            Some(2 << 30)
        );
    }

    /// Seed 001: 80 layers x 64 KV heads x 128 x 2 x 2 = 2.6 MB per token.
    #[test]
    fn seed_mha_70b_is_2_6_mb_per_token() {
        assert_eq!(
            shape(80, 64, 128).kv_bytes_per_token(Dtype::Bf16),
            2_621_440
        );
    }

    #[test]
    fn integer_formats_pay_for_their_scales() {
        let m = shape(32, 8, 128);
        // 512 vectors of 128 elements; int8: 128 B + 2 scales x 2 B = 132 B each.
        assert_eq!(m.kv_bytes_per_token(Dtype::Int8), 512 * 132);
        // int4: 64 B + 4 B of scales.
        assert_eq!(m.kv_bytes_per_token(Dtype::Int4), 512 * 68);
        assert_eq!(m.kv_bytes_per_token(Dtype::Fp8), 512 * 128);
    }

    #[test]
    fn overflow_is_reported_not_wrapped() {
        assert_eq!(kv_bytes(u64::MAX / 2, 3, 1), None);
    }

    #[test]
    fn dtype_names_round_trip() {
        for d in Dtype::ALL {
            assert_eq!(d.name().parse::<Dtype>(), Ok(d));
        }
        assert!("fp4".parse::<Dtype>().is_err());
    }
}
