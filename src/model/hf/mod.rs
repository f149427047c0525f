//! Reading a Hugging Face `config.json` into a [`Model`], offline
//! (docs/ARCHITECTURE.md#hugging-face-import).
//!
//! The `architectures` entry (else `model_type`) picks the family; each
//! family's reader takes the fields its transformers config class defines
//! and ignores the rest (configs carry many: tokens, initializers, `_source`
//! notes). A missing required field, or one of the wrong type, is an error
//! naming it (`num_key_value_heads`: missing); where the transformers class
//! has a default that released configs rely on (gemma-3's `vocab_size`,
//! `tie_word_embeddings`), the default applies and the reader's comment says
//! so.
//!
//! What is derived, and how:
//!
//! - **Layer groups**: every layer's kind (full, sliding window, chunked,
//!   MLA, recurrent, none) from the family's fields (`layer_types`,
//!   `sliding_window_pattern`, `no_rope_layers`, `hybrid_override_pattern`,
//!   ...), counted into at most one group per kind. A window at least as long
//!   as the context keeps every token, so such layers are full.
//! - **Recurrent state**: per layer per sequence, the way vLLM sizes it
//!   (`vllm/model_executor/layers/mamba/mamba_utils.py`,
//!   `MambaStateShapeCalculator`), see [`gated_delta_net_state_bytes`] and
//!   [`mamba2_state_bytes`].
//! - **Context**: `max_position_embeddings`, scaled by `rope_scaling` as
//!   vLLM's `_get_and_verify_max_len` (`vllm/config/model.py`) does: a
//!   `factor` multiplies it unless the type is `llama3`, `longrope` or `su`
//!   (or the model is gemma-3, whose length is already scaled); for `yarn`
//!   the factor multiplies `original_max_position_embeddings` instead.
//! - **Parameters**: recomputed from the shapes (embeddings, attention
//!   projections with their biases and norms, MLA's low-rank projections,
//!   Gated DeltaNet and Mamba-2 projections, dense MLPs, routed and shared
//!   experts with their router, norms, `lm_head` unless tied). Multi-token-
//!   prediction layers and vision towers are not counted (serving does not
//!   run them per token; the fixture tests say where a card counts them).
//!   `active_params` is the total less the routed experts a token does not
//!   use.
//! - **Weights**: `torch_dtype` (or `dtype`); a `quantization_config` of
//!   `fp8` makes them fp8, `mxfp4` stores the routed experts as `int4`
//!   ([`Model::expert_dtype`]), GPTQ/AWQ/bitsandbytes 4 and 8 bits make them
//!   int4 and int8.
//!
//! The code, by file:
//!
//! - `mod.rs`: the public API ([`read`], [`parse`], [`Imported`],
//!   [`known_architectures`]), the family table, and the `Reader` that
//!   dispatches to a family's reader and assembles the model.
//! - `json.rs`: typed reads of a config's fields, each error naming the
//!   field.
//! - `base.rs`: what every family reads alike: the base shape, the context
//!   (`rope_scaling`), the weights' format (`quantization_config`).
//! - `layers.rs`: which layer is which (`layer_types`, `sliding_window`),
//!   and the counts made into layer groups.
//! - `params.rs`: parameter counting shared by the families: saturating
//!   products, GQA attention, the model's total and active parameters.
//! - `moe.rs`: routed experts: the routing fields, which layers are MoE, the
//!   experts a token does not use.
//! - One file per family group: `llama.rs` (Llama, Mistral, Mixtral,
//!   Qwen2/2.5, Qwen3, Qwen3-MoE, Phi-3, and gemma's shared shape),
//!   `gemma.rs` (gemma-2 and gemma-3's layer pattern and defaults),
//!   `deepseek.rs` (MLA), `gpt_oss.rs`, `llama4.rs` (chunked attention),
//!   `hybrid.rs` (Qwen3-Next and Nemotron-H, with the recurrent-state
//!   sizes).

mod base;
mod deepseek;
mod gemma;
mod gpt_oss;
mod hybrid;
mod json;
mod layers;
mod llama;
mod llama4;
mod moe;
mod params;

use std::path::Path;

use serde_json::Value;

pub use hybrid::{gated_delta_net_state_bytes, mamba2_state_bytes};
use json::{Obj, describe, expected};
use layers::Layers;

use super::{Mla, Model, Moe};
use crate::error::{Error, SpecError};

/// The families kvsim reads: an `architectures` value, the `model_type`
/// that names the same family, and the reader.
const FAMILIES: &[(&str, &str, Family)] = &[
    ("LlamaForCausalLM", "llama", Family::Llama),
    ("MistralForCausalLM", "mistral", Family::Mistral),
    ("MixtralForCausalLM", "mixtral", Family::Mixtral),
    ("Qwen2ForCausalLM", "qwen2", Family::Qwen2),
    ("Qwen3ForCausalLM", "qwen3", Family::Qwen3),
    ("Qwen3MoeForCausalLM", "qwen3_moe", Family::Qwen3Moe),
    ("Gemma2ForCausalLM", "gemma2", Family::Gemma2),
    ("Gemma3ForCausalLM", "gemma3_text", Family::Gemma3),
    (
        "Gemma3ForConditionalGeneration",
        "gemma3",
        Family::Gemma3Multimodal,
    ),
    ("Phi3ForCausalLM", "phi3", Family::Phi3),
    ("DeepseekV2ForCausalLM", "deepseek_v2", Family::DeepseekV2),
    ("DeepseekV3ForCausalLM", "deepseek_v3", Family::DeepseekV3),
    ("GptOssForCausalLM", "gpt_oss", Family::GptOss),
    ("Llama4ForCausalLM", "llama4_text", Family::Llama4),
    (
        "Llama4ForConditionalGeneration",
        "llama4",
        Family::Llama4Multimodal,
    ),
    ("Qwen3NextForCausalLM", "qwen3_next", Family::Qwen3Next),
    ("NemotronHForCausalLM", "nemotron_h", Family::NemotronH),
];

/// The `architectures` values kvsim reads, in the order it lists them.
pub fn known_architectures() -> Vec<&'static str> {
    FAMILIES.iter().map(|(a, _, _)| *a).collect()
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Family {
    Llama,
    Mistral,
    Mixtral,
    Qwen2,
    Qwen3,
    Qwen3Moe,
    Gemma2,
    Gemma3,
    Gemma3Multimodal,
    Phi3,
    DeepseekV2,
    DeepseekV3,
    GptOss,
    Llama4,
    Llama4Multimodal,
    Qwen3Next,
    NemotronH,
}

/// A model read from a `config.json`, before the scenario's validation, and
/// where each of its keys came from.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The model, every field derived from the config.
    pub model: Model,
    /// `(model key, config field)` pairs: `("layers",
    /// "num_hidden_layers")`, `("groups[1].window", "sliding_window")`, so a
    /// validation error on a model key can name the field it came from.
    pub sources: Vec<(String, String)>,
}

impl Imported {
    /// The config field a model key (`layers`, `groups[0].window`) came
    /// from, if it came from one.
    pub fn source_of(&self, key: &str) -> Option<&str> {
        self.sources
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, s)| s.as_str())
    }
}

/// Reads the `config.json` at `path` (through [`crate::input`]: a size cap,
/// refused if not text) and derives its model. The model is named after the
/// file (`gemma-3-27b.json` is `gemma-3-27b`), or after its directory when
/// the file is called `config.json`. Errors name the file and the field.
pub fn read(path: &Path) -> Result<Imported, Error> {
    let text = crate::input::read_small_text(
        path,
        crate::input::MAX_HF_CONFIG_BYTES,
        "Hugging Face config.json",
    )?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::DataFile {
        path: path.to_path_buf(),
        line: Some(e.line() as u64),
        reason: format!(
            "is not JSON ({}); a Hugging Face config.json is one JSON object",
            crate::input::quote(&e.to_string())
        ),
    })?;
    parse(&value, &name_of(path)).map_err(|e| Error::DataFile {
        path: path.to_path_buf(),
        line: None,
        reason: e.to_string(),
    })
}

/// The model name a config file gives: its directory's name for a file
/// called `config.json`, else the file's stem.
fn name_of(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned());
    match dir {
        Some(d) if stem == "config" && !d.is_empty() => d,
        _ if stem.is_empty() => "hf-config".to_string(),
        _ => stem,
    }
}

/// Derives the model a parsed `config.json` describes, named `name`.
/// Errors are at the config's field (`text_config.num_hidden_layers`).
pub fn parse(root: &Value, name: &str) -> Result<Imported, SpecError> {
    let top = match root {
        Value::Object(map) => Obj { map, at: "" },
        other => {
            return Err(SpecError::new(
                "",
                format!(
                    "the top level is {}; a Hugging Face config.json is one JSON object",
                    describe(other)
                ),
            ));
        }
    };
    let family = family_of(top)?;
    let text = match family {
        Family::Gemma3Multimodal | Family::Llama4Multimodal => {
            top.opt_obj("text_config", "text_config.")?.ok_or_else(|| {
                SpecError::new(
                    "text_config",
                    "missing: the language model's fields are under text_config in this family",
                )
            })?
        }
        _ => top,
    };
    let mut r = Reader {
        family,
        top,
        text,
        sources: Vec::new(),
    };
    let model = r.model(name)?;
    Ok(Imported {
        model,
        sources: r.sources,
    })
}

/// Which family `top` is: its `architectures` entry, else its `model_type`.
fn family_of(top: Obj<'_>) -> Result<Family, SpecError> {
    let known = || known_architectures().join(", ");
    if let Some(list) = top.opt_list("architectures")? {
        let first = list.first().ok_or_else(|| {
            SpecError::new(
                "architectures",
                format!("is empty; kvsim reads {}", known()),
            )
        })?;
        let arch = first
            .as_str()
            .ok_or_else(|| expected("architectures[0]", "a string", first))?;
        return FAMILIES
            .iter()
            .find(|(a, _, _)| *a == arch)
            .map(|(_, _, f)| *f)
            .ok_or_else(|| {
                SpecError::new(
                    "architectures",
                    format!(
                        "`{}` is not a family kvsim reads; known: {}",
                        crate::input::quote(arch),
                        known()
                    ),
                )
            });
    }
    let Some(model_type) = top.opt_str("model_type")? else {
        return Err(SpecError::new(
            "architectures",
            format!(
                "missing (and no `model_type`): kvsim needs one to know the family; known: {}",
                known()
            ),
        ));
    };
    FAMILIES
        .iter()
        .find(|(_, t, _)| *t == model_type)
        .map(|(_, _, f)| *f)
        .ok_or_else(|| {
            SpecError::new(
                "model_type",
                format!(
                    "`{}` is not a family kvsim reads; known architectures: {}",
                    crate::input::quote(model_type),
                    known()
                ),
            )
        })
}

/// Reads one config: its family, its top-level object, the object holding
/// the language model's fields (`text_config` in a multimodal wrapper, else
/// the top level), and where each model key came from. The family readers
/// are its methods, one file per family group.
struct Reader<'a> {
    family: Family,
    top: Obj<'a>,
    text: Obj<'a>,
    sources: Vec<(String, String)>,
}

/// What a family's reader derives besides the base shape.
struct Parts {
    layers: Layers,
    intermediate: u32,
    moe: Option<Moe>,
    mla: Option<Mla>,
    /// Parameters, all of them.
    params: u128,
    /// Parameters of the routed experts a token does not use, all layers.
    inactive: u128,
}

impl Reader<'_> {
    /// Records that model key `key` came from config field(s) `field`.
    fn source(&mut self, key: &str, field: String) {
        self.sources.push((key.to_string(), field));
    }

    /// The model: the base shape, the family's parts, the parameter counts,
    /// the weights' format, the context and the layer groups, in that order
    /// (the first error found is the one reported).
    fn model(&mut self, name: &str) -> Result<Model, SpecError> {
        let base = self.base()?;
        let parts = match self.family {
            Family::Llama
            | Family::Mistral
            | Family::Qwen2
            | Family::Qwen3
            | Family::Gemma2
            | Family::Gemma3
            | Family::Gemma3Multimodal
            | Family::Phi3 => self.dense(&base)?,
            Family::Mixtral | Family::Qwen3Moe => self.moe_transformer(&base)?,
            Family::DeepseekV2 | Family::DeepseekV3 => self.deepseek(&base)?,
            Family::GptOss => self.gpt_oss(&base)?,
            Family::Llama4 | Family::Llama4Multimodal => self.llama4(&base)?,
            Family::Qwen3Next => self.qwen3_next(&base)?,
            Family::NemotronH => self.nemotron_h(&base)?,
        };
        let (params, active_params) = self.totals(&base, &parts)?;
        let (weight_dtype, expert_dtype) = self.weights(parts.moe.is_some())?;
        let max_model_len = self.max_model_len()?;
        let mut model = Model {
            name: name.to_string(),
            params,
            active_params,
            layers: base.layers,
            hidden: base.hidden,
            heads: base.heads,
            kv_heads: base.kv_heads,
            head_dim: base.head_dim,
            intermediate: parts.intermediate,
            vocab: base.vocab,
            max_model_len,
            sliding_window: None,
            mla: parts.mla,
            moe: parts.moe,
            weight_dtype,
            expert_dtype,
            groups: Vec::new(),
        };
        self.shape(&mut model, parts.layers, &base)?;
        Ok(model)
    }

    /// The config field(s) model key `key` came from, if recorded.
    fn source_of(&self, key: &str) -> Option<String> {
        self.sources
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, s)| s.clone())
    }
}

#[cfg(test)]
mod tests;
