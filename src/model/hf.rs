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

use std::path::Path;

use serde_json::{Map, Value};

use super::{Dtype, LayerGroup, LayerKind, Mla, Model, Moe, SlidingWindow};
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
        let arch = first.as_str().ok_or_else(|| {
            SpecError::new(
                "architectures[0]",
                format!("expected a string, found {}", describe(first)),
            )
        })?;
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

/// A JSON object and the key path it sits at (`""` or `"text_config."`).
#[derive(Copy, Clone)]
struct Obj<'a> {
    map: &'a Map<String, Value>,
    at: &'static str,
}

/// Words for a JSON value in an error: `string "x"`, `a list`.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) => format!("string \"{}\"", crate::input::quote(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

impl<'a> Obj<'a> {
    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.at)
    }

    /// The value at `k`; `null` counts as absent (configs write `null` for
    /// "not used": `sliding_window`, `q_lora_rank`, `rope_scaling`).
    fn get(&self, k: &str) -> Option<&'a Value> {
        self.map.get(k).filter(|v| !v.is_null())
    }

    fn opt_u32(&self, k: &str) -> Result<Option<u32>, SpecError> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                SpecError::new(
                    self.key(k),
                    format!(
                        "expected a whole number of at most {}, found {}",
                        u32::MAX,
                        describe(v)
                    ),
                )
            })
    }

    fn u32(&self, k: &str) -> Result<u32, SpecError> {
        self.opt_u32(k)?.ok_or_else(|| self.missing(k))
    }

    fn missing(&self, k: &str) -> SpecError {
        let what = if self.map.contains_key(k) {
            "is null"
        } else {
            "missing"
        };
        SpecError::new(self.key(k), what)
    }

    fn opt_f64(&self, k: &str) -> Result<Option<f64>, SpecError> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        v.as_f64().map(Some).ok_or_else(|| {
            SpecError::new(
                self.key(k),
                format!("expected a number, found {}", describe(v)),
            )
        })
    }

    fn opt_bool(&self, k: &str) -> Result<Option<bool>, SpecError> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        v.as_bool().map(Some).ok_or_else(|| {
            SpecError::new(
                self.key(k),
                format!("expected true or false, found {}", describe(v)),
            )
        })
    }

    fn opt_str(&self, k: &str) -> Result<Option<&'a str>, SpecError> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        v.as_str().map(Some).ok_or_else(|| {
            SpecError::new(
                self.key(k),
                format!("expected a string, found {}", describe(v)),
            )
        })
    }

    fn opt_list(&self, k: &str) -> Result<Option<&'a Vec<Value>>, SpecError> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        v.as_array().map(Some).ok_or_else(|| {
            SpecError::new(
                self.key(k),
                format!("expected a list, found {}", describe(v)),
            )
        })
    }

    /// The object at `k`, its errors under `at` (`"text_config."`).
    fn opt_obj(&self, k: &str, at: &'static str) -> Result<Option<Obj<'a>>, SpecError> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        v.as_object()
            .map(|map| Some(Obj { map, at }))
            .ok_or_else(|| {
                SpecError::new(
                    self.key(k),
                    format!("expected an object, found {}", describe(v)),
                )
            })
    }

    /// The strings of the list at `k`.
    fn opt_str_list(&self, k: &str) -> Result<Option<Vec<&'a str>>, SpecError> {
        let Some(list) = self.opt_list(k)? else {
            return Ok(None);
        };
        list.iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    SpecError::new(
                        format!("{}[{i}]", self.key(k)),
                        format!("expected a string, found {}", describe(v)),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The whole numbers of the list at `k`.
    fn opt_u32_list(&self, k: &str) -> Result<Option<Vec<u32>>, SpecError> {
        let Some(list) = self.opt_list(k)? else {
            return Ok(None);
        };
        list.iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        SpecError::new(
                            format!("{}[{i}]", self.key(k)),
                            format!("expected a whole number, found {}", describe(v)),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// `v` unless it is zero (a divisor or a count the reader needs).
fn at_least_one(key: String, v: u32) -> Result<u32, SpecError> {
    if v == 0 {
        Err(SpecError::new(key, "must be at least 1"))
    } else {
        Ok(v)
    }
}

/// How many layers of each kind, and each kind's parameters.
#[derive(Clone, Debug, Default)]
struct Layers {
    full: u32,
    sliding: u32,
    chunked: u32,
    mla: u32,
    recurrent: u32,
    none: u32,
    /// The sliding layers' window, and the field it came from.
    window: Option<(u32, String)>,
    /// The chunked layers' chunk, and the field it came from.
    chunk: Option<(u32, String)>,
    /// The recurrent layers' state bytes per sequence, and the fields.
    state: Option<(u64, String)>,
    /// The field that said which layer is which.
    pattern: String,
}

/// Saturating products and sums of parameter counts: any shape large enough
/// to saturate is refused by the count's bound, never wrapped.
fn p(factors: &[u64]) -> u128 {
    factors
        .iter()
        .fold(1u128, |acc, &f| acc.saturating_mul(u128::from(f)))
}

/// The most parameters an imported model may have (the scenario's bound on
/// `params`).
const MAX_PARAMS: u128 = 1_000_000_000_000_000_000;

struct Reader<'a> {
    family: Family,
    top: Obj<'a>,
    text: Obj<'a>,
    sources: Vec<(String, String)>,
}

/// The common shape fields.
struct Base {
    layers: u32,
    hidden: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    vocab: u32,
    tie: bool,
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

impl<'a> Reader<'a> {
    fn source(&mut self, key: &str, field: String) {
        self.sources.push((key.to_string(), field));
    }

    fn model(&mut self, name: &str) -> Result<Model, SpecError> {
        let t = self.text;
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
        let embeddings = p(&[u64::from(base.vocab), u64::from(base.hidden)])
            .saturating_mul(if base.tie { 1 } else { 2 });
        // The final norm before lm_head.
        let params = parts
            .params
            .saturating_add(embeddings)
            .saturating_add(u128::from(base.hidden));
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
        let (weight_dtype, expert_dtype) = self.weights(parts.moe.is_some())?;
        let max_model_len = self.max_model_len()?;
        let mut model = Model {
            name: name.to_string(),
            params: params as u64,
            active_params: active as u64,
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

    /// The base shape every family has.
    fn base(&mut self) -> Result<Base, SpecError> {
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
        let mut head_dim = None;
        for k in head_dim_keys {
            if let Some(d) = t.opt_u32(k)? {
                self.source("head_dim", t.key(k));
                head_dim = Some(d);
                break;
            }
        }
        let head_dim = match head_dim {
            Some(d) => d,
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
    fn max_model_len(&mut self) -> Result<u32, SpecError> {
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
    fn weights(&mut self, moe: bool) -> Result<(Dtype, Option<Dtype>), SpecError> {
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

    /// Counts of each `layer_types` entry among `allowed` (in order), or
    /// `None` when the field is absent.
    fn layer_types(
        &mut self,
        layers: u32,
        allowed: &[&str],
    ) -> Result<Option<Vec<u32>>, SpecError> {
        let t = self.text;
        let Some(types) = t.opt_str_list("layer_types")? else {
            return Ok(None);
        };
        if types.len() != layers as usize {
            return Err(SpecError::new(
                t.key("layer_types"),
                format!(
                    "has {} entries but num_hidden_layers is {layers}: one per layer",
                    types.len()
                ),
            ));
        }
        let mut counts = vec![0u32; allowed.len()];
        for (i, ty) in types.iter().enumerate() {
            let Some(k) = allowed.iter().position(|a| a == ty) else {
                return Err(SpecError::new(
                    format!("{}[{i}]", t.key("layer_types")),
                    format!(
                        "`{}` is not a layer type of this family ({})",
                        crate::input::quote(ty),
                        allowed.join(", ")
                    ),
                ));
            };
            counts[k] += 1;
        }
        Ok(Some(counts))
    }

    /// Attention parameters of one GQA layer: q (`q_mult` times wider for an
    /// output gate), k, v, o, with optional biases on q/k/v and o.
    fn gqa(b: &Base, q_mult: u64, qkv_bias: bool, o_bias: bool) -> u128 {
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

    /// The sliding window on the layers that have one: `sliding_window`,
    /// `None` if null or absent.
    fn window(&self) -> Result<Option<(u32, String)>, SpecError> {
        let t = self.text;
        Ok(t.opt_u32("sliding_window")?
            .map(|w| (w, t.key("sliding_window"))))
    }

    /// Llama, Mistral, Qwen2/2.5, Qwen3, gemma-2, gemma-3, Phi-3: dense
    /// gated MLPs, GQA attention.
    fn dense(&mut self, b: &Base) -> Result<Parts, SpecError> {
        let t = self.text;
        let f = self.family;
        let inter = t.u32("intermediate_size")?;
        self.source("intermediate", t.key("intermediate_size"));
        let bias = t.opt_bool("attention_bias")?.unwrap_or(false);
        let mlp_bias = t.opt_bool("mlp_bias")?.unwrap_or(false);
        let (h, i, hd) = (u64::from(b.hidden), u64::from(inter), u64::from(b.head_dim));
        // Qwen2 always has q/k/v biases; the others when attention_bias.
        let attn = match f {
            Family::Qwen2 => Self::gqa(b, 1, true, false),
            _ => Self::gqa(b, 1, bias, bias),
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
        let mut layers = Layers::default();
        match f {
            Family::Llama => layers.full = b.layers,
            // Every layer windowed, or none (a null window).
            Family::Mistral | Family::Phi3 => {
                layers.window = self.window()?;
                if layers.window.is_some() {
                    layers.sliding = b.layers;
                    layers.pattern = t.key("sliding_window");
                } else {
                    layers.full = b.layers;
                }
            }
            Family::Qwen2 | Family::Qwen3 => self.qwen_windows(b, &mut layers)?,
            Family::Gemma2 => {
                // transformers' Gemma2: layer i is local (windowed) when i is
                // even, global when odd.
                if let Some(c) =
                    self.layer_types(b.layers, &["full_attention", "sliding_attention"])?
                {
                    (layers.full, layers.sliding) = (c[0], c[1]);
                    layers.pattern = t.key("layer_types");
                } else {
                    layers.sliding = b.layers.div_ceil(2);
                    layers.full = b.layers / 2;
                    layers.pattern = "(gemma-2: even layers local, odd layers global)".into();
                }
                layers.window = Some(self.window()?.ok_or_else(|| t.missing("sliding_window"))?);
            }
            Family::Gemma3 | Family::Gemma3Multimodal => {
                if let Some(c) =
                    self.layer_types(b.layers, &["full_attention", "sliding_attention"])?
                {
                    (layers.full, layers.sliding) = (c[0], c[1]);
                    layers.pattern = t.key("layer_types");
                } else {
                    // Gemma3TextConfig: layer i is global when (i + 1) is a
                    // multiple of sliding_window_pattern (default 6: five
                    // local layers, then one global).
                    let pattern = at_least_one(
                        t.key("sliding_window_pattern"),
                        t.opt_u32("sliding_window_pattern")?.unwrap_or(6),
                    )?;
                    layers.full = b.layers / pattern;
                    layers.sliding = b.layers - layers.full;
                    layers.pattern = format!("{} (default 6)", t.key("sliding_window_pattern"));
                }
                layers.window = Some(self.window()?.ok_or_else(|| t.missing("sliding_window"))?);
            }
            _ => unreachable!("dense() reads the dense families"),
        }
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
    fn qwen_windows(&mut self, b: &Base, layers: &mut Layers) -> Result<(), SpecError> {
        let t = self.text;
        if let Some(c) = self.layer_types(b.layers, &["full_attention", "sliding_attention"])? {
            (layers.full, layers.sliding) = (c[0], c[1]);
            layers.pattern = t.key("layer_types");
            if layers.sliding > 0 {
                layers.window = Some(self.window()?.ok_or_else(|| t.missing("sliding_window"))?);
            }
            return Ok(());
        }
        if !t.opt_bool("use_sliding_window")?.unwrap_or(false) {
            layers.full = b.layers;
            return Ok(());
        }
        let from = t
            .opt_u32("max_window_layers")?
            .unwrap_or(b.layers)
            .min(b.layers);
        layers.full = from;
        layers.sliding = b.layers - from;
        layers.pattern = t.key("max_window_layers");
        if layers.sliding > 0 {
            layers.window = Some(self.window()?.ok_or_else(|| t.missing("sliding_window"))?);
        }
        Ok(())
    }

    /// The routing of a MoE family: (experts, experts per token), their
    /// fields recorded.
    fn routing(&mut self, experts_keys: &[&str]) -> Result<Moe, SpecError> {
        let t = self.text;
        let mut experts = None;
        for k in experts_keys {
            if let Some(e) = t.opt_u32(k)? {
                self.source("moe.experts", t.key(k));
                experts = Some(e);
                break;
            }
        }
        let experts = experts.ok_or_else(|| t.missing(experts_keys[0]))?;
        let mut per_token = None;
        for k in ["num_experts_per_tok", "experts_per_token"] {
            if let Some(e) = t.opt_u32(k)? {
                self.source("moe.experts_per_token", t.key(k));
                per_token = Some(e);
                break;
            }
        }
        let experts_per_token = per_token.ok_or_else(|| t.missing("num_experts_per_tok"))?;
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

    /// Mixtral and Qwen3-MoE: GQA attention, routed experts (Qwen3-MoE: on
    /// the layers `decoder_sparse_step` and `mlp_only_layers` leave MoE).
    fn moe_transformer(&mut self, b: &Base) -> Result<Parts, SpecError> {
        let t = self.text;
        let (h, hd) = (u64::from(b.hidden), u64::from(b.head_dim));
        let bias = t.opt_bool("attention_bias")?.unwrap_or(false);
        let mut layers = Layers::default();
        let (moe, expert_inter, dense_inter, moe_layers, qk_norm) = match self.family {
            Family::Mixtral => {
                let moe = self.routing(&["num_local_experts"])?;
                let inter = t.u32("intermediate_size")?;
                self.source("intermediate", t.key("intermediate_size"));
                layers.window = self.window()?;
                if layers.window.is_some() {
                    layers.sliding = b.layers;
                    layers.pattern = t.key("sliding_window");
                } else {
                    layers.full = b.layers;
                }
                (moe, inter, inter, b.layers, 0)
            }
            _ => {
                let moe = self.routing(&["num_experts"])?;
                let expert_inter = t.u32("moe_intermediate_size")?;
                let dense_inter = t.u32("intermediate_size")?;
                let moe_layers = self.sparse_layers(b.layers)?;
                // The widest MLP a token runs: the dense layers' where there
                // are any, else one expert's.
                if moe_layers < b.layers {
                    self.source("intermediate", t.key("intermediate_size"));
                } else {
                    self.source("intermediate", t.key("moe_intermediate_size"));
                }
                self.qwen_windows(b, &mut layers)?;
                (moe, expert_inter, dense_inter, moe_layers, 2 * hd)
            }
        };
        let expert = p(&[3, h, u64::from(expert_inter)]);
        let router = p(&[h, u64::from(moe.experts)]);
        let moe_mlp = expert
            .saturating_mul(u128::from(moe.experts))
            .saturating_add(router);
        let dense_mlp = p(&[3, h, u64::from(dense_inter)]);
        let per_layer = Self::gqa(b, 1, bias, bias).saturating_add(u128::from(qk_norm + 2 * h));
        let dense_layers = b.layers - moe_layers;
        let params = per_layer
            .saturating_mul(u128::from(b.layers))
            .saturating_add(moe_mlp.saturating_mul(u128::from(moe_layers)))
            .saturating_add(dense_mlp.saturating_mul(u128::from(dense_layers)));
        let inactive = expert
            .saturating_mul(u128::from(moe.experts - moe.experts_per_token))
            .saturating_mul(u128::from(moe_layers));
        Ok(Parts {
            layers,
            intermediate: if moe_layers < b.layers {
                dense_inter
            } else {
                expert_inter
            },
            moe: Some(moe),
            mla: None,
            params,
            inactive,
        })
    }

    /// How many of `layers` layers are MoE in the Qwen MoE families: layer i
    /// is when it is not in `mlp_only_layers` and (i + 1) is a multiple of
    /// `decoder_sparse_step` (default 1).
    fn sparse_layers(&mut self, layers: u32) -> Result<u32, SpecError> {
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

    /// DeepSeek-V2/V3: MLA on every layer; the first `first_k_dense_replace`
    /// layers dense, then routed and shared experts every `moe_layer_freq`.
    fn deepseek(&mut self, b: &Base) -> Result<Parts, SpecError> {
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
        if moe_layers < b.layers {
            self.source("intermediate", t.key("intermediate_size"));
        } else {
            self.source("intermediate", t.key("moe_intermediate_size"));
        }
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
            .saturating_add(moe_mlp.saturating_mul(u128::from(moe_layers)))
            .saturating_add(dense_mlp.saturating_mul(u128::from(b.layers - moe_layers)));
        let inactive = expert
            .saturating_mul(u128::from(moe.experts - moe.experts_per_token))
            .saturating_mul(u128::from(moe_layers));
        Ok(Parts {
            layers: Layers {
                mla: b.layers,
                ..Layers::default()
            },
            intermediate: if moe_layers < b.layers {
                dense_inter
            } else {
                moe_inter
            },
            moe: Some(moe),
            mla: Some(Mla {
                kv_lora_rank: kv_lora,
                qk_rope_dim: rope,
            }),
            params,
            inactive,
        })
    }

    /// gpt-oss: sliding and full attention by `layer_types`, attention
    /// biases and per-head sinks, every layer MoE with biased experts.
    fn gpt_oss(&mut self, b: &Base) -> Result<Parts, SpecError> {
        let t = self.text;
        let moe = self.routing(&["num_local_experts"])?;
        let inter = t.u32("intermediate_size")?;
        self.source("intermediate", t.key("intermediate_size"));
        let bias = t.opt_bool("attention_bias")?.unwrap_or(true);
        let counts = self
            .layer_types(b.layers, &["full_attention", "sliding_attention"])?
            .ok_or_else(|| t.missing("layer_types"))?;
        let mut layers = Layers {
            full: counts[0],
            sliding: counts[1],
            pattern: t.key("layer_types"),
            ..Layers::default()
        };
        if layers.sliding > 0 {
            layers.window = Some(self.window()?.ok_or_else(|| t.missing("sliding_window"))?);
        }
        let (h, i, e) = (
            u64::from(b.hidden),
            u64::from(inter),
            u64::from(moe.experts),
        );
        let attn = Self::gqa(b, 1, bias, bias).saturating_add(u128::from(b.heads));
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
            inactive: expert
                .saturating_mul(u128::from(moe.experts - moe.experts_per_token))
                .saturating_mul(u128::from(b.layers)),
        })
    }

    /// Llama-4: chunked local attention on RoPE layers, global attention on
    /// NoPE layers (`no_rope_layers`: 1 = RoPE, chunked; 0 = NoPE, global);
    /// MoE layers (routed experts and one shared expert of
    /// `intermediate_size`) every `interleave_moe_layer_step`, dense layers
    /// of `intermediate_size_mlp` between.
    fn llama4(&mut self, b: &Base) -> Result<Parts, SpecError> {
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
        let params = Self::gqa(b, 1, bias, bias)
            .saturating_add(u128::from(2 * h))
            .saturating_mul(u128::from(b.layers))
            .saturating_add(moe_mlp.saturating_mul(u128::from(moe_layers)))
            .saturating_add(dense_mlp.saturating_mul(u128::from(b.layers - moe_layers)));
        Ok(Parts {
            layers,
            intermediate: dense_inter,
            moe: Some(moe),
            mla: None,
            params,
            inactive: expert
                .saturating_mul(u128::from(moe.experts - moe.experts_per_token))
                .saturating_mul(u128::from(moe_layers)),
        })
    }

    /// Qwen3-Next: Gated DeltaNet (linear attention) layers with a recurrent
    /// state, a gated full-attention layer every `full_attention_interval`
    /// (or as `layer_types` says), MoE with a gated shared expert.
    fn qwen3_next(&mut self, b: &Base) -> Result<Parts, SpecError> {
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
        if moe_layers < b.layers {
            self.source("intermediate", t.key("intermediate_size"));
        } else {
            self.source("intermediate", t.key("moe_intermediate_size"));
        }
        let (h, hd) = (u64::from(b.hidden), u64::from(b.head_dim));
        // The attention's output gate doubles q_proj (attn_output_gate,
        // default true); q and k norms.
        let gate = t.opt_bool("attn_output_gate")?.unwrap_or(true);
        let bias = t.opt_bool("attention_bias")?.unwrap_or(false);
        let attn =
            Self::gqa(b, if gate { 2 } else { 1 }, bias, bias).saturating_add(u128::from(2 * hd));
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
            .saturating_add(moe_mlp.saturating_mul(u128::from(moe_layers)))
            .saturating_add(dense_mlp.saturating_mul(u128::from(b.layers - moe_layers)));
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
            intermediate: if moe_layers < b.layers {
                dense_inter
            } else {
                expert_inter
            },
            moe: Some(moe),
            mla: None,
            params,
            inactive: expert
                .saturating_mul(u128::from(moe.experts - moe.experts_per_token))
                .saturating_mul(u128::from(moe_layers)),
        })
    }

    /// Nemotron-H: `hybrid_override_pattern`, one character per layer: `M`
    /// Mamba-2 (a recurrent state), `*` attention, `-` an MLP (no cache).
    fn nemotron_h(&mut self, b: &Base) -> Result<Parts, SpecError> {
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
            .saturating_add(Self::gqa(b, 1, bias, bias).saturating_mul(u128::from(layers.full)))
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

    /// Sets `model`'s layer structure from the counts: the uniform shape's
    /// fields where they say it (all full; full and sliding alike; all MLA),
    /// else one group per kind.
    fn shape(&mut self, model: &mut Model, mut l: Layers, b: &Base) -> Result<(), SpecError> {
        // A window at least as long as the context keeps every token.
        if let Some((w, _)) = &l.window {
            if *w >= model.max_model_len {
                l.full += l.sliding;
                l.sliding = 0;
            }
        }
        let total = [l.full, l.sliding, l.chunked, l.mla, l.recurrent, l.none]
            .iter()
            .map(|&n| u64::from(n))
            .sum::<u64>();
        debug_assert_eq!(total, u64::from(b.layers), "every layer has one kind");
        let window = l.window.as_ref().map(|(w, _)| *w);
        let uniform = l.chunked == 0 && l.recurrent == 0 && l.none == 0;
        if uniform && l.mla == 0 {
            if l.sliding > 0 {
                let (w, key) = l.window.clone().expect("sliding layers have a window");
                model.sliding_window = Some(SlidingWindow {
                    window: w,
                    layers: l.sliding,
                });
                self.source("sliding_window.window", key);
                self.source("sliding_window.layers", l.pattern.clone());
            }
            return Ok(());
        }
        if uniform && l.mla == b.layers {
            return Ok(());
        }
        let (kv_heads, head_dim) = (b.kv_heads, b.head_dim);
        let mut groups = Vec::new();
        let mut push = |r: &mut Self, layers: u32, kind: LayerKind, extra: &[(&str, String)]| {
            if layers == 0 {
                return;
            }
            let i = groups.len();
            groups.push(LayerGroup {
                layers,
                kind,
                kv_dtype: None,
            });
            r.source(&format!("groups[{i}].layers"), l.pattern.clone());
            for (k, v) in extra {
                r.source(&format!("groups[{i}].{k}"), v.clone());
            }
            if matches!(
                kind,
                LayerKind::Full { .. } | LayerKind::Sliding { .. } | LayerKind::Chunked { .. }
            ) {
                let kv = r.source_of("kv_heads");
                let hd = r.source_of("head_dim");
                if let Some(kv) = kv {
                    r.source(&format!("groups[{i}].kv_heads"), kv);
                }
                if let Some(hd) = hd {
                    r.source(&format!("groups[{i}].head_dim"), hd);
                }
            }
        };
        push(self, l.full, LayerKind::Full { kv_heads, head_dim }, &[]);
        if let Some(w) = window {
            let key = l
                .window
                .as_ref()
                .map(|(_, k)| k.clone())
                .unwrap_or_default();
            push(
                self,
                l.sliding,
                LayerKind::Sliding {
                    kv_heads,
                    head_dim,
                    window: w,
                },
                &[("window", key)],
            );
        }
        if let Some((c, key)) = l.chunk.clone() {
            push(
                self,
                l.chunked,
                LayerKind::Chunked {
                    kv_heads,
                    head_dim,
                    chunk: c,
                },
                &[("chunk", key)],
            );
        }
        if let Some(m) = model.mla {
            push(
                self,
                l.mla,
                LayerKind::Mla {
                    kv_lora_rank: m.kv_lora_rank,
                    qk_rope_dim: m.qk_rope_dim,
                },
                &[],
            );
        }
        if let Some((s, key)) = l.state.clone() {
            push(
                self,
                l.recurrent,
                LayerKind::Recurrent { state_bytes: s },
                &[("state_bytes", key)],
            );
        }
        push(self, l.none, LayerKind::None, &[]);
        model.groups = groups;
        model.mla = None;
        model.sliding_window = None;
        Ok(())
    }

    fn source_of(&self, key: &str) -> Option<String> {
        self.sources
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, s)| s.clone())
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

#[cfg(test)]
mod tests;
