//! DeepSeek-V2 and V3 (`DeepseekV2Config`, `DeepseekV3Config`): multi-head
//! latent attention (MLA) on every layer, which caches a `kv_lora_rank`
//! latent and a `qk_rope_head_dim` key per token instead of per-head keys
//! and values; the first `first_k_dense_replace` layers dense, then routed
//! and shared experts every `moe_layer_freq`. By the catalog's convention an
//! MLA model's KV heads are its query heads and its head dimension is
//! `v_head_dim` (`base.rs`).

use super::base::Base;
use super::json::at_least_one;
use super::layers::Layers;
use super::moe::{mlps, unused_experts};
use super::params::p;
use super::{Parts, Reader};
use crate::error::SpecError;
use crate::model::Mla;

impl Reader<'_> {
    /// DeepSeek-V2/V3: MLA on every layer; the first `first_k_dense_replace`
    /// layers dense, then routed and shared experts every `moe_layer_freq`.
    pub(super) fn deepseek(&mut self, b: &Base) -> Result<Parts, SpecError> {
        let t = self.text;
        let kv_lora = t.u32("kv_lora_rank")?;
        let rope = t.u32("qk_rope_head_dim")?;
        let nope = t.u32("qk_nope_head_dim")?;
        let v = t.u32("v_head_dim")?;
        let q_lora = t.opt_u32("q_lora_rank")?;
        self.source("mla.kv_lora_rank", t.key("kv_lora_rank"));
        self.source("mla.qk_rope_dim", t.key("qk_rope_head_dim"));
        let moe = self.routing(&["n_routed_experts"])?;
        let moe_inter = t.u32("moe_intermediate_size")?;
        let dense_inter = t.u32("intermediate_size")?;
        let shared = t.opt_u32("n_shared_experts")?.unwrap_or(0);
        let first_dense = t.opt_u32("first_k_dense_replace")?.unwrap_or(0);
        let freq = at_least_one(
            t.key("moe_layer_freq"),
            t.opt_u32("moe_layer_freq")?.unwrap_or(1),
        )?;
        // Layers i >= first_k_dense_replace with i a multiple of
        // moe_layer_freq, counted (num_hidden_layers is not bounded yet).
        let multiples_below = |n: u32| u64::from(n).div_ceil(u64::from(freq));
        let moe_layers = multiples_below(b.layers)
            .saturating_sub(multiples_below(first_dense.min(b.layers)))
            as u32;
        let intermediate = self.widest_mlp(b.layers, moe_layers, dense_inter, moe_inter);
        let (h, heads) = (u64::from(b.hidden), u64::from(b.heads));
        let qk = u64::from(nope) + u64::from(rope);
        // Queries: through a low-rank latent with its norm (V3), or direct
        // (V2-Lite: q_lora_rank null).
        let q = match q_lora {
            Some(r) => p(&[h, u64::from(r)])
                .saturating_add(u128::from(r))
                .saturating_add(p(&[u64::from(r), heads, qk])),
            None => p(&[h, heads, qk]),
        };
        // kv_a_proj_with_mqa (latent + rope key), its norm, kv_b_proj (nope
        // keys and values per head), o_proj.
        let attn = q
            .saturating_add(p(&[h, u64::from(kv_lora) + u64::from(rope)]))
            .saturating_add(u128::from(kv_lora))
            .saturating_add(p(&[
                u64::from(kv_lora),
                heads,
                u64::from(nope) + u64::from(v),
            ]))
            .saturating_add(p(&[heads, u64::from(v), h]));
        let expert = p(&[3, h, u64::from(moe_inter)]);
        // V3's router carries a per-expert score correction bias
        // (topk_method "noaux_tc").
        let router_bias = match t.opt_str("topk_method")? {
            Some("noaux_tc") => u64::from(moe.experts),
            _ => 0,
        };
        let moe_mlp = expert
            .saturating_mul(u128::from(moe.experts) + u128::from(shared))
            .saturating_add(p(&[h, u64::from(moe.experts)]))
            .saturating_add(u128::from(router_bias));
        let dense_mlp = p(&[3, h, u64::from(dense_inter)]);
        let params = attn
            .saturating_add(u128::from(2 * h))
            .saturating_mul(u128::from(b.layers))
            .saturating_add(mlps(b.layers, moe_layers, moe_mlp, dense_mlp));
        Ok(Parts {
            layers: Layers {
                mla: b.layers,
                ..Layers::default()
            },
            intermediate,
            moe: Some(moe),
            mla: Some(Mla {
                kv_lora_rank: kv_lora,
                qk_rope_dim: rope,
            }),
            params,
            inactive: unused_experts(expert, moe, moe_layers),
        })
    }
}
