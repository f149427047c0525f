//! Routed experts, shared by the MoE families (Mixtral, Qwen3-MoE,
//! DeepSeek-V2/V3, gpt-oss, Llama-4, Qwen3-Next): the routing fields
//! (experts, experts per token), which layers are MoE under Qwen's rule
//! (`decoder_sparse_step`, `mlp_only_layers`), the MLP width a token runs
//! widest, and the parameters of the routed experts a token does not use
//! (the difference between `params` and `active_params`).

use super::Reader;
use super::json::at_least_one;
use crate::error::SpecError;
use crate::model::Moe;

/// Parameters of the routed experts a token does not use, over `moe_layers`
/// layers of `moe.experts` experts of `expert` parameters each.
pub(super) fn unused_experts(expert: u128, moe: Moe, moe_layers: u32) -> u128 {
    expert
        .saturating_mul(u128::from(moe.experts - moe.experts_per_token))
        .saturating_mul(u128::from(moe_layers))
}

/// The MLPs of `layers` layers: `moe_layers` of them MoE (`moe_mlp`
/// parameters each), the rest dense (`dense_mlp` each).
pub(super) fn mlps(layers: u32, moe_layers: u32, moe_mlp: u128, dense_mlp: u128) -> u128 {
    moe_mlp
        .saturating_mul(u128::from(moe_layers))
        .saturating_add(dense_mlp.saturating_mul(u128::from(layers - moe_layers)))
}

impl Reader<'_> {
    /// The routing of a MoE family: (experts, experts per token), their
    /// fields recorded.
    pub(super) fn routing(&mut self, experts_keys: &[&str]) -> Result<Moe, SpecError> {
        let t = self.text;
        let (k, experts) = t
            .first_u32(experts_keys)?
            .ok_or_else(|| t.missing(experts_keys[0]))?;
        self.source("moe.experts", t.key(k));
        let (k, experts_per_token) = t
            .first_u32(&["num_experts_per_tok", "experts_per_token"])?
            .ok_or_else(|| t.missing("num_experts_per_tok"))?;
        self.source("moe.experts_per_token", t.key(k));
        if experts_per_token > experts {
            return Err(SpecError::new(
                t.key("num_experts_per_tok"),
                format!("{experts_per_token} exceeds the {experts} experts"),
            ));
        }
        Ok(Moe {
            experts,
            experts_per_token,
        })
    }

    /// How many of `layers` layers are MoE in the Qwen MoE families: layer i
    /// is when it is not in `mlp_only_layers` and (i + 1) is a multiple of
    /// `decoder_sparse_step` (default 1).
    pub(super) fn sparse_layers(&mut self, layers: u32) -> Result<u32, SpecError> {
        let t = self.text;
        let step = at_least_one(
            t.key("decoder_sparse_step"),
            t.opt_u32("decoder_sparse_step")?.unwrap_or(1),
        )?;
        let mut dense_only = t.opt_u32_list("mlp_only_layers")?.unwrap_or_default();
        dense_only.sort_unstable();
        dense_only.dedup();
        // Counted, not iterated: num_hidden_layers is not bounded yet.
        let listed = dense_only
            .iter()
            .filter(|&&i| i < layers && (i + 1) % step == 0)
            .count() as u32;
        Ok(layers / step - listed)
    }

    /// The widest MLP a token runs, its field recorded: the dense layers'
    /// (`intermediate_size`, `dense`) where some of the `layers` are not
    /// among the `moe_layers`, else one expert's (`moe_intermediate_size`,
    /// `expert`).
    pub(super) fn widest_mlp(
        &mut self,
        layers: u32,
        moe_layers: u32,
        dense: u32,
        expert: u32,
    ) -> u32 {
        let t = self.text;
        if moe_layers < layers {
            self.source("intermediate", t.key("intermediate_size"));
            dense
        } else {
            self.source("intermediate", t.key("moe_intermediate_size"));
            expert
        }
    }
}
