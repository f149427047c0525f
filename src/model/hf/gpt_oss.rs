//! gpt-oss (`GptOssConfig`): sliding and full attention by `layer_types`,
//! attention biases and a learned sink per head, every layer MoE with biased
//! experts (`gate_up_proj` and `down_proj`) and a biased router. Its routed
//! experts ship in MXFP4 (`quantization_config.quant_method = "mxfp4"`, read
//! in `base.rs`).

use super::base::Base;
use super::moe::unused_experts;
use super::params::{gqa, p};
use super::{Parts, Reader};
use crate::error::SpecError;

impl Reader<'_> {
    /// gpt-oss: sliding and full attention by `layer_types`, attention
    /// biases and per-head sinks, every layer MoE with biased experts.
    pub(super) fn gpt_oss(&mut self, b: &Base) -> Result<Parts, SpecError> {
        let t = self.text;
        let moe = self.routing(&["num_local_experts"])?;
        let inter = t.u32("intermediate_size")?;
        self.source("intermediate", t.key("intermediate_size"));
        let bias = t.opt_bool("attention_bias")?.unwrap_or(true);
        let mut layers = self
            .full_and_sliding(b.layers)?
            .ok_or_else(|| t.missing("layer_types"))?;
        if layers.sliding > 0 {
            layers.window = Some(self.sliding_window()?);
        }
        let (h, i, e) = (
            u64::from(b.hidden),
            u64::from(inter),
            u64::from(moe.experts),
        );
        let attn = gqa(b, 1, bias, bias).saturating_add(u128::from(b.heads));
        // gate_up_proj (h x 2i) and down_proj (i x h), each with its bias.
        let expert = p(&[h, 2 * i])
            .saturating_add(u128::from(2 * i))
            .saturating_add(p(&[i, h]))
            .saturating_add(u128::from(h));
        let router = p(&[h, e]).saturating_add(u128::from(e));
        let layer = attn
            .saturating_add(expert.saturating_mul(u128::from(e)))
            .saturating_add(router)
            .saturating_add(u128::from(2 * h));
        Ok(Parts {
            layers,
            intermediate: inter,
            moe: Some(moe),
            mla: None,
            params: layer.saturating_mul(u128::from(b.layers)),
            inactive: unused_experts(expert, moe, b.layers),
        })
    }
}
