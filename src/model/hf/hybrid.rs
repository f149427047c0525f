//! The hybrids, whose layers mix attention with a recurrent state of fixed
//! size per sequence: Qwen3-Next (`Qwen3NextConfig`: Gated DeltaNet linear
//! attention, a gated full-attention layer every `full_attention_interval`,
//! MoE with a gated shared expert) and Nemotron-H (`NemotronHConfig`:
//! Mamba-2, attention and MLP layers by `hybrid_override_pattern`). The
//! state per layer per sequence is sized the way vLLM sizes it
//! (`vllm/model_executor/layers/mamba/mamba_utils.py`,
//! `MambaStateShapeCalculator`): [`gated_delta_net_state_bytes`] and
//! [`mamba2_state_bytes`].

use super::base::Base;
use super::json::at_least_one;
use super::layers::Layers;
use super::moe::{mlps, unused_experts};
use super::params::{gqa, p};
use super::{Parts, Reader};
use crate::error::SpecError;

impl Reader<'_> {
    /// Qwen3-Next: Gated DeltaNet (linear attention) layers with a recurrent
    /// state, a gated full-attention layer every `full_attention_interval`
    /// (or as `layer_types` says), MoE with a gated shared expert.
    pub(super) fn qwen3_next(&mut self, b: &Base) -> Result<Parts, SpecError> {
        let t = self.text;
        let (full, linear) =
            match self.layer_types(b.layers, &["full_attention", "linear_attention"])? {
                Some(c) => (c[0], c[1]),
                None => {
                    // Qwen3NextConfig: layer i is full attention when (i + 1) is
                    // a multiple of full_attention_interval (default 4).
                    let every = at_least_one(
                        t.key("full_attention_interval"),
                        t.opt_u32("full_attention_interval")?.unwrap_or(4),
                    )?;
                    (b.layers / every, b.layers - b.layers / every)
                }
            };
        let pattern = if t.get("layer_types").is_some() {
            t.key("layer_types")
        } else {
            t.key("full_attention_interval")
        };
        let nk = t.u32("linear_num_key_heads")?;
        let nv = t.u32("linear_num_value_heads")?;
        let dk = t.u32("linear_key_head_dim")?;
        let dv = t.u32("linear_value_head_dim")?;
        let kernel = at_least_one(
            t.key("linear_conv_kernel_dim"),
            t.u32("linear_conv_kernel_dim")?,
        )?;
        let state = gated_delta_net_state_bytes(nk, nv, dk, dv, kernel, 2).ok_or_else(|| {
            SpecError::new(
                t.key("linear_num_value_heads"),
                "the Gated DeltaNet state overflows 64-bit bytes",
            )
        })?;
        let moe = self.routing(&["num_experts"])?;
        let expert_inter = t.u32("moe_intermediate_size")?;
        let shared_inter = t.opt_u32("shared_expert_intermediate_size")?.unwrap_or(0);
        let dense_inter = t.u32("intermediate_size")?;
        let moe_layers = self.sparse_layers(b.layers)?;
        let intermediate = self.widest_mlp(b.layers, moe_layers, dense_inter, expert_inter);
        let (h, hd) = (u64::from(b.hidden), u64::from(b.head_dim));
        // The attention's output gate doubles q_proj (attn_output_gate,
        // default true); q and k norms.
        let gate = t.opt_bool("attn_output_gate")?.unwrap_or(true);
        let bias = t.opt_bool("attention_bias")?.unwrap_or(false);
        let attn = gqa(b, if gate { 2 } else { 1 }, bias, bias).saturating_add(u128::from(2 * hd));
        // Gated DeltaNet: in_proj_qkvz (q, k, v, z), in_proj_ba (beta and
        // alpha per value head), the causal conv over q, k, v (no bias),
        // dt_bias and A_log per value head, the gated norm over a value
        // head, out_proj.
        let (key_dim, value_dim) = (u64::from(nk) * u64::from(dk), u64::from(nv) * u64::from(dv));
        // Sums saturate like products: a shape this large is refused by the
        // parameter bound.
        let conv_dim = key_dim.saturating_mul(2).saturating_add(value_dim);
        let gdn = p(&[h, key_dim.saturating_add(value_dim).saturating_mul(2)])
            .saturating_add(p(&[h, 2 * u64::from(nv)]))
            .saturating_add(p(&[conv_dim, u64::from(kernel)]))
            .saturating_add(u128::from(2 * u64::from(nv) + u64::from(dv)))
            .saturating_add(p(&[value_dim, h]));
        let expert = p(&[3, h, u64::from(expert_inter)]);
        let shared = if shared_inter > 0 {
            p(&[3, h, u64::from(shared_inter)]).saturating_add(u128::from(h))
        } else {
            0
        };
        let moe_mlp = expert
            .saturating_mul(u128::from(moe.experts))
            .saturating_add(p(&[h, u64::from(moe.experts)]))
            .saturating_add(shared);
        let dense_mlp = p(&[3, h, u64::from(dense_inter)]);
        let params = attn
            .saturating_mul(u128::from(full))
            .saturating_add(gdn.saturating_mul(u128::from(linear)))
            .saturating_add(u128::from(2 * h).saturating_mul(u128::from(b.layers)))
            .saturating_add(mlps(b.layers, moe_layers, moe_mlp, dense_mlp));
        Ok(Parts {
            layers: Layers {
                full,
                recurrent: linear,
                state: Some((
                    state,
                    format!(
                        "{} / {} / {} / {} / {}",
                        t.key("linear_num_key_heads"),
                        t.key("linear_num_value_heads"),
                        t.key("linear_key_head_dim"),
                        t.key("linear_value_head_dim"),
                        t.key("linear_conv_kernel_dim")
                    ),
                )),
                pattern,
                ..Layers::default()
            },
            intermediate,
            moe: Some(moe),
            mla: None,
            params,
            inactive: unused_experts(expert, moe, moe_layers),
        })
    }

    /// Nemotron-H: `hybrid_override_pattern`, one character per layer: `M`
    /// Mamba-2 (a recurrent state), `*` attention, `-` an MLP (no cache).
    pub(super) fn nemotron_h(&mut self, b: &Base) -> Result<Parts, SpecError> {
        let t = self.text;
        let pattern = t
            .opt_str("hybrid_override_pattern")?
            .ok_or_else(|| t.missing("hybrid_override_pattern"))?;
        if pattern.chars().count() != b.layers as usize {
            return Err(SpecError::new(
                t.key("hybrid_override_pattern"),
                format!(
                    "has {} characters but num_hidden_layers is {}: one per layer",
                    pattern.chars().count(),
                    b.layers
                ),
            ));
        }
        let mut layers = Layers {
            pattern: t.key("hybrid_override_pattern"),
            ..Layers::default()
        };
        for (i, c) in pattern.chars().enumerate() {
            match c {
                'M' => layers.recurrent += 1,
                '*' => layers.full += 1,
                '-' => layers.none += 1,
                other => {
                    return Err(SpecError::new(
                        t.key("hybrid_override_pattern"),
                        format!(
                            "`{other}` at position {i}: kvsim reads M (Mamba-2), * (attention) \
                             and - (MLP) layers"
                        ),
                    ));
                }
            }
        }
        let inter = t.u32("intermediate_size")?;
        self.source("intermediate", t.key("intermediate_size"));
        let heads = t.u32("mamba_num_heads")?;
        let head_dim = t.u32("mamba_head_dim")?;
        let state_size = t.u32("ssm_state_size")?;
        let groups = t.u32("n_groups")?;
        let kernel = at_least_one(t.key("conv_kernel"), t.u32("conv_kernel")?)?;
        // vLLM's NemotronHForCausalLMConfig sets the SSM state's dtype from
        // config.json's mamba_ssm_cache_dtype, else float32 ("only float32
        // is known to have no accuracy issues"); the conv state is in the
        // model's dtype.
        let ssm_bytes = match t.opt_str("mamba_ssm_cache_dtype")? {
            None | Some("float32") => 4,
            Some("bfloat16" | "float16") => 2,
            Some(other) => {
                return Err(SpecError::new(
                    t.key("mamba_ssm_cache_dtype"),
                    format!(
                        "`{}` is not a state format kvsim reads (float32, bfloat16, float16)",
                        crate::input::quote(other)
                    ),
                ));
            }
        };
        let state = mamba2_state_bytes(heads, head_dim, state_size, groups, kernel, 2, ssm_bytes)
            .ok_or_else(|| {
            SpecError::new(
                t.key("mamba_num_heads"),
                "the Mamba-2 state overflows 64-bit bytes",
            )
        })?;
        layers.state = Some((
            state,
            format!(
                "{} / {} / {} / {} / {}",
                t.key("mamba_num_heads"),
                t.key("mamba_head_dim"),
                t.key("ssm_state_size"),
                t.key("n_groups"),
                t.key("conv_kernel")
            ),
        ));
        let h = u64::from(b.hidden);
        let inner = u64::from(heads) * u64::from(head_dim);
        let gn = p(&[2, u64::from(groups), u64::from(state_size)]).min(u128::from(u64::MAX)) as u64;
        let proj_bias = t.opt_bool("mamba_proj_bias")?.unwrap_or(false);
        let conv_bias = t.opt_bool("use_conv_bias")?.unwrap_or(true);
        // in_proj (z, x, B, C, dt), the depthwise conv over x, B, C with its
        // bias, dt_bias, A_log and D per head, the gated norm, out_proj.
        // Sums saturate like products: a shape this large is refused by the
        // parameter bound.
        let conv_dim = inner.saturating_add(gn);
        let in_proj = inner
            .saturating_mul(2)
            .saturating_add(gn)
            .saturating_add(u64::from(heads));
        let mamba = p(&[h, in_proj])
            .saturating_add(p(&[conv_dim, u64::from(kernel)]))
            .saturating_add(if conv_bias { u128::from(conv_dim) } else { 0 })
            .saturating_add(u128::from(3 * u64::from(heads)) + u128::from(inner))
            .saturating_add(p(&[inner, h]))
            .saturating_add(if proj_bias {
                u128::from(in_proj) + u128::from(h)
            } else {
                0
            });
        let bias = t.opt_bool("attention_bias")?.unwrap_or(false);
        let mlp_bias = t.opt_bool("mlp_bias")?.unwrap_or(false);
        // A squared-ReLU MLP: up and down, no gate.
        let mlp = p(&[2, h, u64::from(inter)]).saturating_add(if mlp_bias {
            u128::from(u64::from(inter) + h)
        } else {
            0
        });
        // One norm per block.
        let params = mamba
            .saturating_mul(u128::from(layers.recurrent))
            .saturating_add(gqa(b, 1, bias, bias).saturating_mul(u128::from(layers.full)))
            .saturating_add(mlp.saturating_mul(u128::from(layers.none)))
            .saturating_add(u128::from(h).saturating_mul(u128::from(b.layers)));
        Ok(Parts {
            layers,
            intermediate: inter,
            moe: None,
            mla: None,
            params,
            inactive: 0,
        })
    }
}

/// Bytes of one Gated DeltaNet layer's state for one sequence (Qwen3-Next's
/// linear attention), replica-wide, as vLLM sizes it
/// (`vllm/model_executor/layers/mamba/mamba_utils.py`,
/// `MambaStateShapeCalculator.gated_delta_net_state_shape`, at
/// `tp_world_size` 1; dtypes from
/// `MambaStateDtypeCalculator.gated_delta_net_state_dtype`, both the model's
/// dtype under the default `mamba_cache_dtype = mamba_ssm_cache_dtype =
/// "auto"`, `vllm/config/cache.py`):
///
/// ```text
/// conv state     (conv_kernel - 1) x (2 * num_k_heads * head_k_dim + num_v_heads * head_v_dim)
/// temporal state num_v_heads x head_v_dim x head_k_dim
/// ```
///
/// `elem_bytes` is the dtype's size (2 for bf16). `None` on overflow.
pub fn gated_delta_net_state_bytes(
    num_k_heads: u32,
    num_v_heads: u32,
    head_k_dim: u32,
    head_v_dim: u32,
    conv_kernel: u32,
    elem_bytes: u64,
) -> Option<u64> {
    let (nk, nv, dk, dv) = (
        u64::from(num_k_heads),
        u64::from(num_v_heads),
        u64::from(head_k_dim),
        u64::from(head_v_dim),
    );
    let conv_dim = nk
        .checked_mul(dk)?
        .checked_mul(2)?
        .checked_add(nv.checked_mul(dv)?)?;
    let conv = u64::from(conv_kernel.checked_sub(1)?).checked_mul(conv_dim)?;
    let temporal = nv.checked_mul(dv)?.checked_mul(dk)?;
    conv.checked_add(temporal)?.checked_mul(elem_bytes)
}

/// Bytes of one Mamba-2 layer's state for one sequence (Nemotron-H),
/// replica-wide, as vLLM sizes it (`vllm/model_executor/layers/mamba/
/// mamba_utils.py`, `MambaStateShapeCalculator.mamba2_state_shape` at
/// `tp_world_size` 1, with `intermediate_size = mamba_num_heads *
/// mamba_head_dim` as `NemotronHForCausalLM.get_mamba_state_shape_from_config`
/// passes it):
///
/// ```text
/// conv state     (conv_kernel - 1) x (intermediate_size + 2 * n_groups * ssm_state_size)   in conv_bytes
/// temporal state mamba_num_heads x mamba_head_dim x ssm_state_size                          in ssm_bytes
/// ```
///
/// `None` on overflow.
pub fn mamba2_state_bytes(
    num_heads: u32,
    head_dim: u32,
    state_size: u32,
    n_groups: u32,
    conv_kernel: u32,
    conv_bytes: u64,
    ssm_bytes: u64,
) -> Option<u64> {
    let (h, p, n, g) = (
        u64::from(num_heads),
        u64::from(head_dim),
        u64::from(state_size),
        u64::from(n_groups),
    );
    let conv_dim = h
        .checked_mul(p)?
        .checked_add(g.checked_mul(n)?.checked_mul(2)?)?;
    let conv = u64::from(conv_kernel.checked_sub(1)?)
        .checked_mul(conv_dim)?
        .checked_mul(conv_bytes)?;
    let temporal = h.checked_mul(p)?.checked_mul(n)?.checked_mul(ssm_bytes)?;
    conv.checked_add(temporal)
}
