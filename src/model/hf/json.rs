//! Typed reads of a `config.json`'s fields. [`Obj`] is one JSON object and
//! the key path it sits at (`""`, `"text_config."`), so every error names
//! the field as the config spells it (`text_config.num_hidden_layers`): a
//! required field that is absent is `missing` (or `is null`), one of the
//! wrong type says what was expected and what was found (`expected a whole
//! number of at most 4294967295, found string "32"`). `null` reads as absent,
//! as configs write it for "not used".

use serde_json::{Map, Value};

use crate::error::SpecError;

/// A JSON object and the key path it sits at (`""` or `"text_config."`).
#[derive(Copy, Clone)]
pub(super) struct Obj<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) at: &'static str,
}

/// Words for a JSON value in an error: `string "x"`, `a list`.
pub(super) fn describe(v: &Value) -> String {
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
    /// The full key of field `k` (`text_config.k`), as errors name it.
    pub(super) fn key(&self, k: &str) -> String {
        format!("{}{k}", self.at)
    }

    /// The value at `k`; `null` counts as absent (configs write `null` for
    /// "not used": `sliding_window`, `q_lora_rank`, `rope_scaling`).
    pub(super) fn get(&self, k: &str) -> Option<&'a Value> {
        self.map.get(k).filter(|v| !v.is_null())
    }

    /// The value at `k` as `read` takes it, `None` if absent; an error
    /// (`expected {what}, found ...`) if `read` does not take it.
    fn opt_as<T>(
        &self,
        k: &str,
        what: &str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, SpecError> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        read(v)
            .map(Some)
            .ok_or_else(|| expected(self.key(k), what, v))
    }

    /// Each item of the list at `k` as `read` takes it, `None` if absent; an
    /// error at the item (`k[2]`) that `read` does not take.
    fn opt_items<T>(
        &self,
        k: &str,
        what: &str,
        read: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<Vec<T>>, SpecError> {
        let Some(list) = self.opt_list(k)? else {
            return Ok(None);
        };
        list.iter()
            .enumerate()
            .map(|(i, v)| read(v).ok_or_else(|| expected(format!("{}[{i}]", self.key(k)), what, v)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The whole number at `k` (at most `u32::MAX`), `None` if absent.
    pub(super) fn opt_u32(&self, k: &str) -> Result<Option<u32>, SpecError> {
        let what = format!("a whole number of at most {}", u32::MAX);
        self.opt_as(k, &what, as_u32)
    }

    /// The whole number at `k`, an error if absent.
    pub(super) fn u32(&self, k: &str) -> Result<u32, SpecError> {
        self.opt_u32(k)?.ok_or_else(|| self.missing(k))
    }

    /// The whole number at the first of `keys` present, and that key;
    /// `None` if none is.
    pub(super) fn first_u32<'k>(
        &self,
        keys: &[&'k str],
    ) -> Result<Option<(&'k str, u32)>, SpecError> {
        for k in keys {
            if let Some(v) = self.opt_u32(k)? {
                return Ok(Some((k, v)));
            }
        }
        Ok(None)
    }

    /// The error for a required field `k` that is absent (or null).
    pub(super) fn missing(&self, k: &str) -> SpecError {
        let what = if self.map.contains_key(k) {
            "is null"
        } else {
            "missing"
        };
        SpecError::new(self.key(k), what)
    }

    /// The number at `k`, `None` if absent.
    pub(super) fn opt_f64(&self, k: &str) -> Result<Option<f64>, SpecError> {
        self.opt_as(k, "a number", Value::as_f64)
    }

    /// The boolean at `k`, `None` if absent.
    pub(super) fn opt_bool(&self, k: &str) -> Result<Option<bool>, SpecError> {
        self.opt_as(k, "true or false", Value::as_bool)
    }

    /// The string at `k`, `None` if absent.
    pub(super) fn opt_str(&self, k: &str) -> Result<Option<&'a str>, SpecError> {
        self.opt_as(k, "a string", Value::as_str)
    }

    /// The list at `k`, `None` if absent.
    pub(super) fn opt_list(&self, k: &str) -> Result<Option<&'a Vec<Value>>, SpecError> {
        self.opt_as(k, "a list", Value::as_array)
    }

    /// The object at `k`, its errors under `at` (`"text_config."`).
    pub(super) fn opt_obj(&self, k: &str, at: &'static str) -> Result<Option<Obj<'a>>, SpecError> {
        self.opt_as(k, "an object", |v| v.as_object().map(|map| Obj { map, at }))
    }

    /// The strings of the list at `k`.
    pub(super) fn opt_str_list(&self, k: &str) -> Result<Option<Vec<&'a str>>, SpecError> {
        self.opt_items(k, "a string", Value::as_str)
    }

    /// The whole numbers of the list at `k`.
    pub(super) fn opt_u32_list(&self, k: &str) -> Result<Option<Vec<u32>>, SpecError> {
        self.opt_items(k, "a whole number", as_u32)
    }
}

/// `v` as a whole number of at most `u32::MAX`.
fn as_u32(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// The error for `v` at `key` where `what` was expected.
pub(super) fn expected(key: impl Into<String>, what: &str, v: &Value) -> SpecError {
    SpecError::new(key, format!("expected {what}, found {}", describe(v)))
}

/// `v` unless it is zero (a divisor or a count the reader needs).
pub(super) fn at_least_one(key: String, v: u32) -> Result<u32, SpecError> {
    if v == 0 {
        Err(SpecError::new(key, "must be at least 1"))
    } else {
        Ok(v)
    }
}
