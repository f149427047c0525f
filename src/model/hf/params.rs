//! Parameter counting shared by the families. Every count is recomputed from
//! the config's shapes: embeddings, attention projections with their biases
//! and norms, MLPs, norms, `lm_head` unless tied (the families' own layers
//! are counted in their files; routed experts in `moe.rs`). Multi-token-
//! prediction layers and vision towers are not counted: serving does not run
//! them per token. Products and sums saturate rather than wrap, and a total
//! at or above [`MAX_PARAMS`] is refused, so a shape large enough to saturate
//! is an error, never a wrong count.

use super::base::Base;
use super::{Parts, Reader};
use crate::error::SpecError;

/// Saturating products and sums of parameter counts: any shape large enough
/// to saturate is refused by the count's bound, never wrapped.
pub(super) fn p(factors: &[u64]) -> u128 {
    factors
        .iter()
        .fold(1u128, |acc, &f| acc.saturating_mul(u128::from(f)))
}

/// The most parameters an imported model may have (the scenario's bound on
/// `params`).
const MAX_PARAMS: u128 = 1_000_000_000_000_000_000;

/// Attention parameters of one GQA layer: q (`q_mult` times wider for an
/// output gate), k, v, o, with optional biases on q/k/v and o.
pub(super) fn gqa(b: &Base, q_mult: u64, qkv_bias: bool, o_bias: bool) -> u128 {
    let (h, q, kv) = (
        u64::from(b.hidden),
        u64::from(b.heads) * u64::from(b.head_dim),
        u64::from(b.kv_heads) * u64::from(b.head_dim),
    );
    let mut n = p(&[h, q, q_mult])
        .saturating_add(p(&[2, h, kv]))
        .saturating_add(p(&[q, h]));
    if qkv_bias {
        n = n
            .saturating_add(p(&[q, q_mult]))
            .saturating_add(p(&[2, kv]));
    }
    if o_bias {
        n = n.saturating_add(u128::from(h));
    }
    n
}

impl Reader<'_> {
    /// The model's parameters, total and active: the family's layers
    /// (`parts`), the embeddings (twice unless tied: `lm_head`) and the
    /// final norm; active is the total less the routed experts a token does
    /// not use. A total of [`MAX_PARAMS`] or more is refused.
    pub(super) fn totals(&mut self, b: &Base, parts: &Parts) -> Result<(u64, u64), SpecError> {
        let t = self.text;
        let embeddings =
            p(&[u64::from(b.vocab), u64::from(b.hidden)]).saturating_mul(if b.tie { 1 } else { 2 });
        // The final norm before lm_head.
        let params = parts
            .params
            .saturating_add(embeddings)
            .saturating_add(u128::from(b.hidden));
        if params >= MAX_PARAMS {
            return Err(SpecError::new(
                t.key("num_hidden_layers"),
                format!(
                    "the shapes give {params} parameters, implausibly many (at most {MAX_PARAMS})"
                ),
            ));
        }
        let active = params - parts.inactive.min(params);
        self.source(
            "params",
            "(the parameter count recomputed from the shapes)".into(),
        );
        self.source(
            "active_params",
            "(the active parameter count recomputed from the shapes)".into(),
        );
        Ok((params as u64, active as u64))
    }
}
