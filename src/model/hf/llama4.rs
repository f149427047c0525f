//! Llama-4 (`Llama4TextConfig`, under `text_config` in
//! `Llama4ForConditionalGeneration`): chunked local attention on the RoPE
//! layers and global attention on the NoPE layers (`no_rope_layers`, else
//! every `no_rope_layer_interval`-th layer NoPE); MoE layers (routed experts
//! and one shared expert) every `interleave_moe_layer_step` (or as
//! `moe_layers` lists them), dense layers of `intermediate_size_mlp`
//! between.

use super::base::Base;
use super::json::at_least_one;
use super::layers::Layers;
use super::moe::{mlps, unused_experts};
use super::params::{gqa, p};
use super::{Parts, Reader};
use crate::error::SpecError;

impl Reader<'_> {
    /// Llama-4: chunked local attention on RoPE layers, global attention on
    /// NoPE layers (`no_rope_layers`: 1 = RoPE, chunked; 0 = NoPE, global);
    /// MoE layers (routed experts and one shared expert of
    /// `intermediate_size`) every `interleave_moe_layer_step`, dense layers
    /// of `intermediate_size_mlp` between.
    pub(super) fn llama4(&mut self, b: &Base) -> Result<Parts, SpecError> {
        let t = self.text;
        let moe = self.routing(&["num_local_experts"])?;
        let inter = t.u32("intermediate_size")?;
        let bias = t.opt_bool("attention_bias")?.unwrap_or(false);
        let moe_layers = match t.opt_u32_list("moe_layers")? {
            Some(list) if !list.is_empty() => {
                let mut seen = list.clone();
                seen.sort_unstable();
                seen.dedup();
                if seen.iter().any(|&i| i >= b.layers) || seen.len() != list.len() {
                    return Err(SpecError::new(
                        t.key("moe_layers"),
                        format!(
                            "must list distinct layers below num_hidden_layers ({})",
                            b.layers
                        ),
                    ));
                }
                seen.len() as u32
            }
            _ => {
                // Llama4TextConfig: layers step-1, 2*step-1, ... are MoE.
                let step = at_least_one(
                    t.key("interleave_moe_layer_step"),
                    t.opt_u32("interleave_moe_layer_step")?.unwrap_or(1),
                )?;
                b.layers / step
            }
        };
        let dense_inter = if moe_layers < b.layers {
            let d = t.u32("intermediate_size_mlp")?;
            self.source("intermediate", t.key("intermediate_size_mlp"));
            d
        } else {
            self.source("intermediate", t.key("intermediate_size"));
            inter
        };
        let rope_layers = match t.opt_u32_list("no_rope_layers")? {
            Some(list) if !list.is_empty() => {
                if list.len() != b.layers as usize {
                    return Err(SpecError::new(
                        t.key("no_rope_layers"),
                        format!(
                            "has {} entries but num_hidden_layers is {}: one per layer",
                            list.len(),
                            b.layers
                        ),
                    ));
                }
                if let Some(i) = list.iter().position(|&v| v > 1) {
                    return Err(SpecError::new(
                        format!("{}[{i}]", t.key("no_rope_layers")),
                        "expected 1 (RoPE, chunked attention) or 0 (NoPE, global attention)",
                    ));
                }
                list.iter().filter(|&&v| v == 1).count() as u32
            }
            _ => {
                // Llama4TextConfig: every no_rope_layer_interval-th layer
                // (default 4) is NoPE.
                let every = at_least_one(
                    t.key("no_rope_layer_interval"),
                    t.opt_u32("no_rope_layer_interval")?.unwrap_or(4),
                )?;
                b.layers - b.layers / every
            }
        };
        let pattern = match t.opt_list("no_rope_layers")? {
            Some(list) if !list.is_empty() => t.key("no_rope_layers"),
            _ => format!("{} (default 4)", t.key("no_rope_layer_interval")),
        };
        let mut layers = Layers {
            pattern,
            ..Layers::default()
        };
        match t.opt_u32("attention_chunk_size")? {
            Some(c) => {
                layers.chunked = rope_layers;
                layers.full = b.layers - rope_layers;
                layers.chunk = Some((c, t.key("attention_chunk_size")));
            }
            None => layers.full = b.layers,
        }
        let h = u64::from(b.hidden);
        let expert = p(&[3, h, u64::from(inter)]);
        let moe_mlp = expert
            .saturating_mul(u128::from(moe.experts) + 1)
            .saturating_add(p(&[h, u64::from(moe.experts)]));
        let dense_mlp = p(&[3, h, u64::from(dense_inter)]);
        let params = gqa(b, 1, bias, bias)
            .saturating_add(u128::from(2 * h))
            .saturating_mul(u128::from(b.layers))
            .saturating_add(mlps(b.layers, moe_layers, moe_mlp, dense_mlp));
        Ok(Parts {
            layers,
            intermediate: dense_inter,
            moe: Some(moe),
            mla: None,
            params,
            inactive: unused_experts(expert, moe, moe_layers),
        })
    }
}
