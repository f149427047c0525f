//! What every family reads alike: the base shape (layers, hidden size,
//! heads, KV heads, head dimension, vocabulary, tied embeddings), the
//! context (`max_position_embeddings` scaled by `rope_scaling` as vLLM's
//! `_get_and_verify_max_len` in `vllm/config/model.py` does) and the
//! weights' format (`torch_dtype`, `quantization_config`); the rules are in
//! the [module documentation](super). Where a transformers config class has
//! a default that released configs rely on (gemma-3's `vocab_size` and
//! `max_position_embeddings`, gemma's tied embeddings), the default applies
//! and the comment says so.

use super::json::{Obj, at_least_one};
use super::{Family, Reader};
use crate::error::SpecError;
use crate::model::Dtype;

/// The common shape fields.
pub(super) struct Base {
    pub(super) layers: u32,
    pub(super) hidden: u32,
    pub(super) heads: u32,
    pub(super) kv_heads: u32,
    pub(super) head_dim: u32,
    pub(super) vocab: u32,
    pub(super) tie: bool,
}

impl Reader<'_> {
    /// The base shape every family has.
    pub(super) fn base(&mut self) -> Result<Base, SpecError> {
        let t = self.text;
        let layers = t.u32("num_hidden_layers")?;
        let hidden = t.u32("hidden_size")?;
        let heads = at_least_one(t.key("num_attention_heads"), t.u32("num_attention_heads")?)?;
        // MLA models cache a latent, not per-head keys: their KV heads are
        // the query heads (the catalog's convention), whatever
        // num_key_value_heads says.
        let kv_heads = match self.family {
            Family::DeepseekV2 | Family::DeepseekV3 => heads,
            _ => t.u32("num_key_value_heads")?,
        };
        let head_dim_keys: &[&str] = match self.family {
            Family::DeepseekV2 | Family::DeepseekV3 => &["v_head_dim"],
            Family::NemotronH => &["head_dim", "attention_head_dim"],
            _ => &["head_dim"],
        };
        let head_dim = match t.first_u32(head_dim_keys)? {
            Some((k, d)) => {
                self.source("head_dim", t.key(k));
                d
            }
            None if matches!(self.family, Family::DeepseekV2 | Family::DeepseekV3) => {
                return Err(t.missing("v_head_dim"));
            }
            None => {
                if hidden % heads != 0 {
                    return Err(SpecError::new(
                        t.key("num_attention_heads"),
                        format!(
                            "{heads} does not divide hidden_size ({hidden}) and there is no \
                             head_dim: the head dimension is hidden_size / num_attention_heads"
                        ),
                    ));
                }
                self.source(
                    "head_dim",
                    format!(
                        "{} / {}",
                        t.key("hidden_size"),
                        t.key("num_attention_heads")
                    ),
                );
                hidden / heads
            }
        };
        // Gemma-3's released configs leave vocab_size to Gemma3TextConfig's
        // default (262,208).
        let vocab = match (self.family, t.opt_u32("vocab_size")?) {
            (_, Some(v)) => v,
            (Family::Gemma3 | Family::Gemma3Multimodal, None) => 262_208,
            (_, None) => return Err(t.missing("vocab_size")),
        };
        // transformers' default: tied for Gemma, untied for the others. A
        // multimodal wrapper says it at its top level.
        let tie_default = matches!(
            self.family,
            Family::Gemma2 | Family::Gemma3 | Family::Gemma3Multimodal
        );
        let tie = match t.opt_bool("tie_word_embeddings")? {
            Some(b) => b,
            None => self
                .top
                .opt_bool("tie_word_embeddings")?
                .unwrap_or(tie_default),
        };
        for (key, field) in [
            ("layers", "num_hidden_layers"),
            ("hidden", "hidden_size"),
            ("heads", "num_attention_heads"),
            ("vocab", "vocab_size"),
        ] {
            self.source(key, t.key(field));
        }
        let kv_field = match self.family {
            Family::DeepseekV2 | Family::DeepseekV3 => "num_attention_heads",
            _ => "num_key_value_heads",
        };
        self.source("kv_heads", t.key(kv_field));
        Ok(Base {
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            vocab,
            tie,
        })
    }

    /// The longest context, as vLLM derives it from `max_position_embeddings`
    /// and `rope_scaling` (see the module documentation).
    pub(super) fn max_model_len(&mut self) -> Result<u32, SpecError> {
        let t = self.text;
        // Gemma-3's released configs leave it to Gemma3TextConfig's default.
        let base = match (self.family, t.opt_u32("max_position_embeddings")?) {
            (_, Some(v)) => v,
            (Family::Gemma3 | Family::Gemma3Multimodal, None) => 131_072,
            (_, None) => return Err(t.missing("max_position_embeddings")),
        };
        self.source("max_model_len", t.key("max_position_embeddings"));
        // vllm/config/model.py: "Gemma3's max_model_len (128K) is already
        // scaled by RoPE scaling, so we skip applying the scaling factor".
        if matches!(self.family, Family::Gemma3 | Family::Gemma3Multimodal) {
            return Ok(base);
        }
        // transformers v5 writes rope_parameters where v4 wrote rope_scaling.
        let scaling = t.get("rope_scaling").is_some();
        let (key, at) = match (scaling, t.at.is_empty()) {
            (true, true) => ("rope_scaling", "rope_scaling."),
            (true, false) => ("rope_scaling", "text_config.rope_scaling."),
            (false, true) => ("rope_parameters", "rope_parameters."),
            (false, false) => ("rope_parameters", "text_config.rope_parameters."),
        };
        let Some(rope) = t.opt_obj(key, at)? else {
            return Ok(base);
        };
        let kind = match rope.opt_str("rope_type")? {
            Some(k) => k,
            None => rope.opt_str("type")?.unwrap_or("default"),
        };
        if matches!(kind, "su" | "longrope" | "llama3") {
            return Ok(base);
        }
        let factor = rope.opt_f64("factor")?.unwrap_or(1.0);
        let start = if kind == "yarn" {
            rope.u32("original_max_position_embeddings")?
        } else {
            base
        };
        let len = (f64::from(start) * factor).floor();
        if !(1.0..=f64::from(u32::MAX)).contains(&len) {
            return Err(SpecError::new(
                rope.key("factor"),
                format!(
                    "{factor} gives a context of {len} tokens, outside 1..={}",
                    u32::MAX
                ),
            ));
        }
        self.sources.retain(|(k, _)| k != "max_model_len");
        self.source(
            "max_model_len",
            format!(
                "{} x {}",
                if kind == "yarn" {
                    rope.key("original_max_position_embeddings")
                } else {
                    t.key("max_position_embeddings")
                },
                rope.key("factor")
            ),
        );
        Ok(len as u32)
    }

    /// The weights' format, and the routed experts' when they differ.
    pub(super) fn weights(&mut self, moe: bool) -> Result<(Dtype, Option<Dtype>), SpecError> {
        let mut dtype = None;
        for o in [self.text, self.top] {
            for k in ["torch_dtype", "dtype"] {
                if dtype.is_none() {
                    if let Some(s) = o.opt_str(k)? {
                        dtype = Some((s, o.key(k)));
                    }
                }
            }
        }
        // No 32-bit format: vLLM's dtype = "auto" serves float32 checkpoints
        // in 16 bits too. Absent (gpt-oss): bf16, what such checkpoints hold.
        let weight = match dtype {
            None => Dtype::Bf16,
            Some(("bfloat16" | "float32", _)) => Dtype::Bf16,
            Some(("float16", _)) => Dtype::Fp16,
            Some((other, key)) => {
                return Err(SpecError::new(
                    key,
                    format!(
                        "`{}` is not a weight format kvsim reads (bfloat16, float16, float32)",
                        crate::input::quote(other)
                    ),
                ));
            }
        };
        let quant = match self
            .top
            .opt_obj("quantization_config", "quantization_config.")?
        {
            Some(q) => Some(q),
            None => self
                .text
                .opt_obj("quantization_config", "text_config.quantization_config.")?,
        };
        let Some(q) = quant else {
            return Ok((weight, None));
        };
        let method = q
            .opt_str("quant_method")?
            .ok_or_else(|| q.missing("quant_method"))?;
        self.source("weight_dtype", q.key("quant_method"));
        let bits = |q: Obj<'_>| -> Result<Dtype, SpecError> {
            match q.u32("bits")? {
                4 => Ok(Dtype::Int4),
                8 => Ok(Dtype::Int8),
                b => Err(SpecError::new(
                    q.key("bits"),
                    format!("{b}-bit weights are not a format kvsim has (4 or 8)"),
                )),
            }
        };
        match method {
            "fp8" | "fbgemm_fp8" => Ok((Dtype::Fp8, None)),
            // gpt-oss: MXFP4 routed experts (4 bits and one 8-bit scale per
            // 32), the rest in bf16: int4 with its scales is the same 4.25
            // bits per parameter (Model::expert_dtype).
            "mxfp4" if moe => {
                self.sources.retain(|(k, _)| k != "weight_dtype");
                self.source("expert_dtype", q.key("quant_method"));
                Ok((weight, Some(Dtype::Int4)))
            }
            "mxfp4" => Err(SpecError::new(
                q.key("quant_method"),
                "mxfp4 quantizes the routed experts, and this model has none",
            )),
            "gptq" | "awq" => Ok((bits(q)?, None)),
            "bitsandbytes" => {
                if q.opt_bool("load_in_4bit")?.unwrap_or(false) {
                    Ok((Dtype::Int4, None))
                } else if q.opt_bool("load_in_8bit")?.unwrap_or(false) {
                    Ok((Dtype::Int8, None))
                } else {
                    Err(SpecError::new(
                        q.key("load_in_4bit"),
                        "bitsandbytes without load_in_4bit or load_in_8bit: which?",
                    ))
                }
            }
            other => Err(SpecError::new(
                q.key("quant_method"),
                format!(
                    "`{}` is not a quantization kvsim reads (fp8, fbgemm_fp8, mxfp4, gptq, awq, \
                     bitsandbytes); remove quantization_config and set model.weight_dtype",
                    crate::input::quote(other)
                ),
            )),
        }
    }
}
