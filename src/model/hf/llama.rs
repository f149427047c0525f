//! The GQA transformers of Llama's lineage: attention with grouped KV heads
//! on every layer, a gated MLP (dense, or routed experts). Llama, Mistral,
//! Qwen2/2.5, Qwen3, Phi-3 and gemma-2/3 are dense ([`Reader::dense`]; which
//! of gemma's layers are windowed is in `gemma.rs`); Mixtral and Qwen3-MoE
//! route ([`Reader::moe_transformer`]). Sliding windows are transformers':
//! every layer or none (`sliding_window`, Mistral, Mixtral, Phi-3), or Qwen's
//! `use_sliding_window` from `max_window_layers` on (or as `layer_types`
//! says).

use super::base::Base;
use super::layers::Layers;
use super::moe::{mlps, unused_experts};
use super::params::{gqa, p};
use super::{Family, Parts, Reader};
use crate::error::SpecError;

impl Reader<'_> {
    /// Llama, Mistral, Qwen2/2.5, Qwen3, gemma-2, gemma-3, Phi-3: dense
    /// gated MLPs, GQA attention.
    pub(super) fn dense(&mut self, b: &Base) -> Result<Parts, SpecError> {
        let t = self.text;
        let f = self.family;
        let inter = t.u32("intermediate_size")?;
        self.source("intermediate", t.key("intermediate_size"));
        let bias = t.opt_bool("attention_bias")?.unwrap_or(false);
        let mlp_bias = t.opt_bool("mlp_bias")?.unwrap_or(false);
        let (h, i, hd) = (u64::from(b.hidden), u64::from(inter), u64::from(b.head_dim));
        // Qwen2 always has q/k/v biases; the others when attention_bias.
        let attn = match f {
            Family::Qwen2 => gqa(b, 1, true, false),
            _ => gqa(b, 1, bias, bias),
        };
        let qk_norm = match f {
            Family::Qwen3 | Family::Gemma3 | Family::Gemma3Multimodal => 2 * hd,
            _ => 0,
        };
        // gemma-2/3: pre- and post-norms around attention and MLP.
        let norms = match f {
            Family::Gemma2 | Family::Gemma3 | Family::Gemma3Multimodal => 4 * h,
            _ => 2 * h,
        };
        let mlp = p(&[3, h, i]).saturating_add(if mlp_bias { u128::from(2 * i + h) } else { 0 });
        let layer = attn
            .saturating_add(mlp)
            .saturating_add(u128::from(qk_norm + norms));
        let layers = match f {
            Family::Llama => Layers {
                full: b.layers,
                ..Layers::default()
            },
            // Every layer windowed, or none (a null window).
            Family::Mistral | Family::Phi3 => self.windowed_or_full(b.layers)?,
            Family::Qwen2 | Family::Qwen3 => self.qwen_windows(b.layers)?,
            Family::Gemma2 | Family::Gemma3 | Family::Gemma3Multimodal => {
                self.gemma_layers(b.layers)?
            }
            _ => unreachable!("dense() reads the dense families"),
        };
        Ok(Parts {
            layers,
            intermediate: inter,
            moe: None,
            mla: None,
            params: layer.saturating_mul(u128::from(b.layers)),
            inactive: 0,
        })
    }

    /// Qwen2/3 windows: none unless `use_sliding_window` (false by default);
    /// then the layers from `max_window_layers` on are windowed (or as
    /// `layer_types` says).
    fn qwen_windows(&mut self, layers: u32) -> Result<Layers, SpecError> {
        let t = self.text;
        let mut l = match self.full_and_sliding(layers)? {
            Some(l) => l,
            None if !t.opt_bool("use_sliding_window")?.unwrap_or(false) => {
                return Ok(Layers {
                    full: layers,
                    ..Layers::default()
                });
            }
            None => {
                let from = t
                    .opt_u32("max_window_layers")?
                    .unwrap_or(layers)
                    .min(layers);
                Layers {
                    full: from,
                    sliding: layers - from,
                    pattern: t.key("max_window_layers"),
                    ..Layers::default()
                }
            }
        };
        if l.sliding > 0 {
            l.window = Some(self.sliding_window()?);
        }
        Ok(l)
    }

    /// Mixtral and Qwen3-MoE: GQA attention, routed experts (Qwen3-MoE: on
    /// the layers `decoder_sparse_step` and `mlp_only_layers` leave MoE).
    pub(super) fn moe_transformer(&mut self, b: &Base) -> Result<Parts, SpecError> {
        let t = self.text;
        let (h, hd) = (u64::from(b.hidden), u64::from(b.head_dim));
        let bias = t.opt_bool("attention_bias")?.unwrap_or(false);
        let (layers, intermediate);
        let (moe, expert_inter, dense_inter, moe_layers, qk_norm) = match self.family {
            Family::Mixtral => {
                let moe = self.routing(&["num_local_experts"])?;
                let inter = t.u32("intermediate_size")?;
                self.source("intermediate", t.key("intermediate_size"));
                intermediate = inter;
                layers = self.windowed_or_full(b.layers)?;
                (moe, inter, inter, b.layers, 0)
            }
            _ => {
                let moe = self.routing(&["num_experts"])?;
                let expert_inter = t.u32("moe_intermediate_size")?;
                let dense_inter = t.u32("intermediate_size")?;
                let moe_layers = self.sparse_layers(b.layers)?;
                intermediate = self.widest_mlp(b.layers, moe_layers, dense_inter, expert_inter);
                layers = self.qwen_windows(b.layers)?;
                (moe, expert_inter, dense_inter, moe_layers, 2 * hd)
            }
        };
        let expert = p(&[3, h, u64::from(expert_inter)]);
        let router = p(&[h, u64::from(moe.experts)]);
        let moe_mlp = expert
            .saturating_mul(u128::from(moe.experts))
            .saturating_add(router);
        let dense_mlp = p(&[3, h, u64::from(dense_inter)]);
        let per_layer = gqa(b, 1, bias, bias).saturating_add(u128::from(qk_norm + 2 * h));
        let params = per_layer
            .saturating_mul(u128::from(b.layers))
            .saturating_add(mlps(b.layers, moe_layers, moe_mlp, dense_mlp));
        Ok(Parts {
            layers,
            intermediate,
            moe: Some(moe),
            mla: None,
            params,
            inactive: unused_experts(expert, moe, moe_layers),
        })
    }
}
