//! Model shapes and the exact KV-cache arithmetic
//! (docs/ARCHITECTURE.md#kv-arithmetic).
//!
//! ```text
//! per layer group g (its layers L_g, kind and format):
//! bytes_per_token_g = L_g * 2 * kv_heads * head_dim * kv_elem_bytes         (full, sliding, chunked)
//!                   = L_g * (kv_lora_rank + qk_rope_dim) * kv_elem_bytes     (MLA)
//!                   = 0                                                      (recurrent, none)
//! state_bytes_g     = L_g * state_bytes                                      (recurrent)
//! KV bytes of a sequence of n tokens = sum_g kept_g(n) * bytes_per_token_g + state_bytes_g
//!   kept_g(n) = n (full, MLA), min(n, W) (sliding W), ((n - 1) mod C) + 1 (chunked C)
//! ```
//!
//! A uniform model (one full or MLA group) reduces to the seeds' formula:
//! `seq_len * batch * layers * 2 * kv_heads * head_dim * kv_elem_bytes`.
//!
//! [`hf`] reads a Hugging Face `config.json` into a [`Model`]: its layer
//! groups, recurrent state, context and recomputed parameter counts.
//!
//! Quantized integer formats add one fp16 scale per group of [`QUANT_GROUP`]
//! elements of each cached vector. Weight precision and KV precision are
//! independent: a 4-bit model file still has a bf16 KV cache unless `kv_dtype`
//! says otherwise.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod hf;

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

/// Which tokens one group of layers keeps for each sequence, and in what form.
///
/// Models of 2025-26 mix layer kinds: gemma-3 and gpt-oss interleave sliding
/// and global attention, Llama-4 puts chunked local attention on three of four
/// layers, DeepSeek caches a latent (MLA), and hybrid models (Qwen3-Next,
/// Nemotron-H, Jamba) keep a constant-size recurrent state in most layers. A
/// model is a list of [`LayerGroup`]s, each of one kind
/// (docs/ARCHITECTURE.md#kv-arithmetic).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "attention", rename_all = "kebab-case")]
pub enum LayerKind {
    /// Softmax attention over the whole context: a key and a value of
    /// `head_dim` per KV head per token.
    Full {
        /// Key/value heads.
        kv_heads: u32,
        /// Dimension of one head.
        head_dim: u32,
    },
    /// Softmax attention over the last `window` tokens (Mistral, gemma-2/3,
    /// gpt-oss): the cache keeps at most `window` tokens of each sequence.
    Sliding {
        /// Key/value heads.
        kv_heads: u32,
        /// Dimension of one head.
        head_dim: u32,
        /// Tokens each layer attends to and keeps.
        window: u32,
    },
    /// Chunked local attention (Llama-4's `attention_chunk_size`): a token
    /// attends to the earlier tokens of its own chunk of `chunk` tokens, so
    /// the cache keeps only the current chunk.
    Chunked {
        /// Key/value heads.
        kv_heads: u32,
        /// Dimension of one head.
        head_dim: u32,
        /// Tokens per chunk.
        chunk: u32,
    },
    /// Multi-head latent attention (DeepSeek-V2/V3): one latent of
    /// `kv_lora_rank + qk_rope_dim` elements per token per layer, shared by
    /// every head.
    Mla {
        /// Rank of the compressed KV latent.
        kv_lora_rank: u32,
        /// Dimension of the decoupled rotary key.
        qk_rope_dim: u32,
    },
    /// A recurrent layer (linear attention, SSM): a state of `state_bytes`
    /// per sequence per layer, whatever the context length.
    Recurrent {
        /// Bytes of one layer's state for one sequence (convolution and
        /// recurrent state together, in the dtype the engine keeps them).
        state_bytes: u64,
    },
    /// Layers that keep nothing per sequence (Nemotron-H's MLP-only layers).
    None,
}

/// Which tokens of a sequence a layer keeps: all, the last `W`, or those of
/// the current chunk of `C`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "keeps", content = "tokens", rename_all = "kebab-case")]
pub enum Span {
    /// Every token.
    #[default]
    All,
    /// The last `W` tokens.
    Window(u32),
    /// The tokens of the chunk the last token belongs to (chunks of `C`).
    Chunk(u32),
}

impl Span {
    /// Tokens of a `context`-token sequence kept (and attended to by its
    /// last token): `context`, `min(context, W)`, or `((context - 1) mod C)
    /// + 1`.
    #[inline]
    pub const fn kept(self, context: u32) -> u32 {
        match self {
            Span::All => context,
            Span::Window(w) => {
                if context < w {
                    context
                } else {
                    w
                }
            }
            Span::Chunk(c) => {
                if context == 0 || c == 0 {
                    0
                } else {
                    (context - 1) % c + 1
                }
            }
        }
    }

    /// The most tokens kept at any length up to `context`: `kept` for all and
    /// windows (it never falls), `min(context, C)` for chunks.
    #[inline]
    pub const fn peak(self, context: u32) -> u32 {
        match self {
            Span::Chunk(c) => {
                if context < c {
                    context
                } else {
                    c
                }
            }
            s => s.kept(context),
        }
    }

    /// Whether every token is kept.
    pub const fn is_all(self) -> bool {
        matches!(self, Span::All)
    }

    /// The tighter of this span and a cache-wide window `cap` (the `sliding`
    /// policy), or `None` when the two cannot be expressed as one span (a
    /// chunk longer than the cap).
    pub const fn capped(self, cap: Option<u32>) -> Option<Span> {
        let Some(w) = cap else {
            return Some(self);
        };
        match self {
            Span::All => Some(Span::Window(w)),
            Span::Window(a) => Some(Span::Window(if a < w { a } else { w })),
            Span::Chunk(c) if c <= w => Some(self),
            Span::Chunk(_) => None,
        }
    }

    /// Words for reports: `all`, `window 1024`, `chunk 8192`.
    pub fn describe(self) -> String {
        match self {
            Span::All => "all".into(),
            Span::Window(w) => format!("window {w}"),
            Span::Chunk(c) => format!("chunk {c}"),
        }
    }
}

/// Layers of one kind: how many, what they keep, and in which format.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerGroup {
    /// Layers in the group.
    pub layers: u32,
    /// What each layer keeps.
    #[serde(flatten)]
    pub kind: LayerKind,
    /// Element format of this group's cache (`None`: the cache's `kv_dtype`).
    /// Not used by recurrent groups, whose `state_bytes` are exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_dtype: Option<Dtype>,
}

impl LayerGroup {
    /// The attention kinds' `(kv_heads, head_dim)`, `None` for the others.
    pub const fn heads(&self) -> Option<(u32, u32)> {
        match self.kind {
            LayerKind::Full { kv_heads, head_dim }
            | LayerKind::Sliding {
                kv_heads, head_dim, ..
            }
            | LayerKind::Chunked {
                kv_heads, head_dim, ..
            } => Some((kv_heads, head_dim)),
            _ => None,
        }
    }

    /// Which tokens the group keeps (`All` for MLA; recurrent and empty
    /// groups keep no tokens, which their zero bytes per token say).
    pub const fn span(&self) -> Span {
        match self.kind {
            LayerKind::Sliding { window, .. } => Span::Window(window),
            LayerKind::Chunked { chunk, .. } => Span::Chunk(chunk),
            _ => Span::All,
        }
    }

    /// Cached vectors per token of one layer on one GPU of a `tp`-way
    /// replica, and their length: `(count, len)`; `(0, 0)` for recurrent and
    /// empty layers. Tensor parallelism splits KV heads (replicating them when
    /// there are fewer heads than GPUs: vLLM keeps `max(1, kv_heads / tp)` per
    /// GPU); MLA's latent is not split by heads, so every GPU holds all of it.
    pub const fn vectors_per_layer_per_gpu(&self, tp: u32) -> (u64, u64) {
        let tp = if tp == 0 { 1 } else { tp };
        match self.kind {
            LayerKind::Mla {
                kv_lora_rank,
                qk_rope_dim,
            } => (1, kv_lora_rank as u64 + qk_rope_dim as u64),
            LayerKind::Recurrent { .. } | LayerKind::None => (0, 0),
            _ => match self.heads() {
                Some((kv_heads, head_dim)) => (2 * kv_heads.div_ceil(tp) as u64, head_dim as u64),
                None => (0, 0),
            },
        }
    }

    /// Exact KV bytes per token of the group's layers, replica-wide (per-GPU
    /// bytes times `tp`, so replicated heads count on every GPU holding
    /// them), in the group's format or else `cache_dtype`; `None` on overflow.
    pub fn bytes_per_token(&self, cache_dtype: Dtype, tp: u32) -> Option<u64> {
        let (count, len) = self.vectors_per_layer_per_gpu(tp);
        let dtype = self.kv_dtype.unwrap_or(cache_dtype);
        u64::from(self.layers)
            .checked_mul(count)?
            .checked_mul(dtype.vector_bytes(len))?
            .checked_mul(u64::from(tp.max(1)))
    }

    /// Bytes of recurrent state per sequence, all the group's layers
    /// (replica-wide: tensor parallelism splits a state's heads), `None` on
    /// overflow.
    pub fn state_bytes(&self) -> Option<u64> {
        match self.kind {
            LayerKind::Recurrent { state_bytes } => u64::from(self.layers).checked_mul(state_bytes),
            _ => Some(0),
        }
    }

    /// The scenario-file name of the group's kind.
    pub const fn kind_name(&self) -> &'static str {
        match self.kind {
            LayerKind::Full { .. } => "full",
            LayerKind::Sliding { .. } => "sliding",
            LayerKind::Chunked { .. } => "chunked",
            LayerKind::Mla { .. } => "mla",
            LayerKind::Recurrent { .. } => "recurrent",
            LayerKind::None => "none",
        }
    }

    /// Words for reports: `sliding 1024, 8 x 128`, `mla 512+64`,
    /// `recurrent, 1072.0 KiB/seq` (per layer).
    pub fn describe(&self) -> String {
        match self.kind {
            LayerKind::Full { kv_heads, head_dim } => format!("full, {kv_heads} x {head_dim}"),
            LayerKind::Sliding {
                kv_heads,
                head_dim,
                window,
            } => format!("sliding {window}, {kv_heads} x {head_dim}"),
            LayerKind::Chunked {
                kv_heads,
                head_dim,
                chunk,
            } => format!("chunked {chunk}, {kv_heads} x {head_dim}"),
            LayerKind::Mla {
                kv_lora_rank,
                qk_rope_dim,
            } => format!("mla {kv_lora_rank}+{qk_rope_dim}"),
            LayerKind::Recurrent { state_bytes } => {
                format!("recurrent, {:.1} KiB/seq", state_bytes as f64 / 1024.0)
            }
            LayerKind::None => "no cache".into(),
        }
    }
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
    /// Format of the routed experts' weights when it differs from
    /// `weight_dtype` (gpt-oss ships MXFP4 experts and bf16 attention:
    /// `int4`, whose scales make the same 4.25 bits per parameter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_dtype: Option<Dtype>,
    /// The layers by kind, when they are not uniform (empty: every layer is
    /// alike, as `kv_heads`, `head_dim`, `sliding_window` and `mla` say; see
    /// [`Model::layer_groups`]). Their layers add up to `layers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<LayerGroup>,
}

impl Model {
    /// The layers by kind: [`Model::groups`] when given, else the uniform
    /// shape's one or two groups (MLA on every layer; or `sliding_window.layers`
    /// windowed layers and the rest full).
    pub fn layer_groups(&self) -> Vec<LayerGroup> {
        if !self.groups.is_empty() {
            return self.groups.clone();
        }
        let group = |layers, kind| LayerGroup {
            layers,
            kind,
            kv_dtype: None,
        };
        let (kv_heads, head_dim) = (self.kv_heads, self.head_dim);
        if let Some(m) = self.mla {
            return vec![group(
                self.layers,
                LayerKind::Mla {
                    kv_lora_rank: m.kv_lora_rank,
                    qk_rope_dim: m.qk_rope_dim,
                },
            )];
        }
        let windowed = self.sliding_window.map_or(0, |w| w.layers.min(self.layers));
        let mut out = Vec::with_capacity(2);
        if windowed < self.layers {
            out.push(group(
                self.layers - windowed,
                LayerKind::Full { kv_heads, head_dim },
            ));
        }
        if let Some(w) = self.sliding_window.filter(|_| windowed > 0) {
            out.push(group(
                windowed,
                LayerKind::Sliding {
                    kv_heads,
                    head_dim,
                    window: w.window,
                },
            ));
        }
        out
    }

    /// Exact KV bytes per token, all layers, in `dtype` where a group does
    /// not set its own (scales included; recurrent state is per sequence, see
    /// [`Model::state_bytes_per_seq`]).
    pub fn kv_bytes_per_token(&self, dtype: Dtype) -> u64 {
        self.checked_kv_bytes_per_token(dtype)
            .expect("validated shapes keep KV bytes per token within 64 bits")
    }

    /// [`Model::kv_bytes_per_token`], or `None` if it overflows 64 bits (for
    /// shapes from a command line, which no scenario validation has bounded).
    pub fn checked_kv_bytes_per_token(&self, dtype: Dtype) -> Option<u64> {
        self.layer_groups()
            .iter()
            .try_fold(0u64, |acc, g| acc.checked_add(g.bytes_per_token(dtype, 1)?))
    }

    /// Bytes of recurrent state each sequence holds, all layers (0 for a
    /// model without recurrent layers), `None` on overflow.
    pub fn state_bytes_per_seq(&self) -> Option<u64> {
        self.layer_groups()
            .iter()
            .try_fold(0u64, |acc, g| acc.checked_add(g.state_bytes()?))
    }

    /// The same model with every sliding, chunked and recurrent layer made a
    /// full-attention layer that keeps every token (recurrent layers with the
    /// model's `kv_heads` x `head_dim`): the layout a model's windows, chunks
    /// and states are measured against (`model.all_global`, `kvsim kv`).
    pub fn all_global(&self) -> Model {
        let groups = self
            .layer_groups()
            .into_iter()
            .map(|g| {
                let (kv_heads, head_dim) = g.heads().unwrap_or((self.kv_heads, self.head_dim));
                let kind = match g.kind {
                    LayerKind::Mla { .. } | LayerKind::None | LayerKind::Full { .. } => g.kind,
                    _ => LayerKind::Full { kv_heads, head_dim },
                };
                LayerGroup { kind, ..g }
            })
            .collect();
        Model {
            groups,
            sliding_window: None,
            mla: None,
            ..self.clone()
        }
    }

    /// Whether every layer keeps every token in the same form (one full or
    /// MLA group): the shape the seeds' formula describes.
    pub fn is_uniform(&self) -> bool {
        let groups = self.layer_groups();
        groups.len() == 1
            && matches!(
                groups[0].kind,
                LayerKind::Full { .. } | LayerKind::Mla { .. }
            )
    }

    /// Parameters of one routed expert (all layers) and of every routed
    /// expert together: with `params = shared + E * e` and `active = shared +
    /// k * e`, `e = (params - active) / (E - k)`. `(0, 0)` for a dense model.
    pub fn routed_expert_params(&self) -> (f64, f64) {
        match self.moe {
            Some(moe) if moe.experts > moe.experts_per_token => {
                let e = (self.params - self.active_params.min(self.params)) as f64
                    / f64::from(moe.experts - moe.experts_per_token);
                (e, e * f64::from(moe.experts))
            }
            _ => (0.0, 0.0),
        }
    }

    /// Bytes per parameter of the routed experts: `expert_dtype`'s bits and
    /// its group scales (int4: 4 + 16/64 = 4.25 bits, exactly MXFP4's 4 bits
    /// and one 8-bit scale per 32), or the weights' own format.
    pub fn expert_bytes_per_param(&self) -> f64 {
        match self.expert_dtype {
            Some(d) => d.vector_bytes(QUANT_GROUP) as f64 / QUANT_GROUP as f64,
            None => self.weight_dtype.bits() as f64 / 8.0,
        }
    }

    /// Bytes of the weights in memory (all experts, all layers, whole model).
    pub fn weight_bytes(&self) -> u64 {
        let all = (u128::from(self.params) * u128::from(self.weight_dtype.bits())).div_ceil(8);
        if self.expert_dtype.is_none() {
            return all as u64;
        }
        let (_, experts) = self.routed_expert_params();
        let shared = (self.params as f64 - experts).max(0.0);
        (shared * self.weight_dtype.bits() as f64 / 8.0 + experts * self.expert_bytes_per_param())
            .ceil() as u64
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
            expert_dtype: None,
            groups: Vec::new(),
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
