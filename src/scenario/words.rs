//! Scenario errors in the user's words: serde describes what it expected by
//! the Rust type it was filling (`untagged enum GpuSpec`, `struct
//! SlidingWindow`), which means nothing to someone writing TOML. This module
//! names the accepted shapes instead, diagnoses the shapes serde gives up on
//! (an inline GPU table with a missing field), and lets an inline GPU start
//! from a catalog entry (`gpu = { base = "h100-sxm", hbm_bandwidth = 3.0e12 }`).

use crate::catalog;
use crate::error::SpecError;

/// What each spec type accepts, in TOML terms. Every type a scenario
/// deserializes into that serde may name in a message is listed; a test
/// feeds a wrong type to every key of a full scenario and fails on a message
/// that still names a Rust type.
const SHAPES: [(&str, &str); 29] = [
    (
        "GpuSpec",
        "a GPU: a catalog name such as \"h100-sxm\" (`kvsim catalog gpus`), or a table of its \
         fields, optionally starting from a catalog entry: { base = \"h100-sxm\", hbm_bandwidth \
         = 3.0e12 }",
    ),
    (
        "CalibrationSpec",
        "a calibration: the path of a file `kvsim calibrate` wrote, or a table { mbu, mfu, \
         step_overhead_s }",
    ),
    (
        "Calibration",
        "a table { mbu = ..., mfu = ..., step_overhead_s = ... }",
    ),
    (
        "LengthSpec",
        "a length distribution: a table whose `kind` is fixed, uniform, normal, lognormal, \
         mixture or empirical, e.g. { kind = \"fixed\", value = 100 }",
    ),
    (
        "ArrivalSpec",
        "an arrival process: a table whose `kind` is poisson, gamma, constant, ramp, closed or \
         trace, e.g. { kind = \"poisson\", rate = 10.0 }",
    ),
    (
        "PairedSpec",
        "paired prompt and output lengths: a table whose `kind` is trace or empirical, with a \
         `path`",
    ),
    (
        "MixtureComponent",
        "a mixture component: a table { weight = ..., dist = { kind = ... } }",
    ),
    (
        "SlidingWindow",
        "a sliding window: a table { window = tokens, layers = how many layers use it }",
    ),
    (
        "Mla",
        "multi-head latent attention: a table { kv_lora_rank = ..., qk_rope_dim = ... }",
    ),
    (
        "Moe",
        "a mixture of experts: a table { experts = ..., experts_per_token = ... }",
    ),
    ("Efficiency", "a table { mbu, mfu, step_overhead_s, ... }"),
    ("Gpu", "a table of a GPU's fields"),
    (
        "ModelSpec",
        "a table: [model] with `preset` or the model's fields",
    ),
    ("HardwareSpec", "a table: [hardware]"),
    (
        "KvRouterSpec",
        "a table: [hardware.kv_router] { prefill_load_scale, overlap_score_credit, \
         host_cache_hit_weight, disk_cache_hit_weight, shared_cache_multiplier }",
    ),
    ("EngineSpec", "a table: [engine]"),
    ("CacheSpec", "a table: [cache]"),
    ("SchedulerSpec", "a table: [scheduler]"),
    ("SloSpec", "a table: [slo]"),
    ("OutputSpec", "a table: [output]"),
    ("TrafficSpec", "a table: [traffic]"),
    (
        "PrefixSpec",
        "a table: prefix = { count, tokens, fraction }",
    ),
    (
        "SessionSpec",
        "a table: session = { turns = { kind = ... }, think_s }",
    ),
    ("PlanSpec", "a table: [plan]"),
    ("CrossoverSpec", "a table: [plan.crossover]"),
    ("DeploymentSpec", "a table: [deployment]"),
    ("LinkSpec", "a table: [deployment.link]"),
    (
        "PoolSpec",
        "a table: [deployment.prefill] or [deployment.decode]",
    ),
    ("CheckSpec", "a table: [check] with rtol and rtol_by_metric"),
];

/// `message` with every Rust type serde named replaced by the TOML shapes
/// it accepts.
pub fn in_user_words(message: &str) -> String {
    let mut out = message.to_string();
    // Serde names the Rust type it wanted; say what a TOML value must be.
    for (rust, toml) in [
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected u64", "expected a whole number >= 0"),
        ("expected u32", "expected a whole number >= 0"),
        ("expected u16", "expected a whole number >= 0"),
        ("expected u8", "expected a whole number >= 0"),
        ("expected usize", "expected a whole number >= 0"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        (
            "expected variant identifier",
            "expected one of the names listed for this key",
        ),
        ("expected a borrowed string", "expected a string"),
    ] {
        out = out.replace(rust, toml);
    }
    // Longest names first, so `Calibration` does not eat `CalibrationSpec`.
    let mut shapes = SHAPES;
    shapes.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, shape) in shapes {
        for prefix in [
            "data did not match any variant of untagged enum ",
            "internally tagged enum ",
            "untagged enum ",
            "struct variant ",
            "struct ",
            "enum ",
        ] {
            let from = format!("{prefix}{name}");
            if out.contains(&from) {
                let to = if prefix.starts_with("data did not match") {
                    format!("expected {shape}")
                } else {
                    shape.to_string()
                };
                out = out.replace(&from, &to);
            }
        }
    }
    out
}

/// A key path's value in `table`, if every step is a table.
fn at<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.').filter(|p| !p.is_empty());
    let first = table.get(parts.next()?)?;
    parts.try_fold(first, |v, p| v.as_table()?.get(p))
}

/// Serde's "did not match any variant of untagged enum" says nothing about
/// which field is wrong. For an inline table, deserialize it as the table
/// variant to name the missing or mistyped field.
pub fn diagnose_untagged(table: &toml::Table, key: &str, message: &str) -> Option<SpecError> {
    let value = at(table, key)?;
    let inline = value.as_table()?;
    let (result, shape): (Result<(), _>, &str) = if message.contains("enum GpuSpec") {
        (
            serde_path_to_error::deserialize::<_, crate::hardware::Gpu>(toml::Value::Table(
                inline.clone(),
            ))
            .map(|_| ()),
            "GpuSpec",
        )
    } else if message.contains("enum CalibrationSpec") {
        (
            serde_path_to_error::deserialize::<_, crate::calibrate::Calibration>(
                toml::Value::Table(inline.clone()),
            )
            .map(|_| ()),
            "CalibrationSpec",
        )
    } else {
        return None;
    };
    let e = result.err()?;
    let inner = e.path().to_string();
    let field_key = if inner == "." {
        key.to_string()
    } else {
        format!("{key}.{inner}")
    };
    let reason = e.into_inner().to_string();
    let reason = reason.trim_end().lines().next().unwrap_or_default();
    Some(SpecError::new(
        field_key,
        format!(
            "{} (the table is read as {})",
            in_user_words(reason),
            SHAPES
                .iter()
                .find(|(n, _)| *n == shape)
                .map_or("", |(_, s)| s)
        ),
    ))
}

/// `hardware.gpu = { base = "h100-sxm", ... }`: the catalog entry's fields,
/// with the table's own fields over them (the efficiency table merged field
/// by field). Without a `name`, the GPU is called `<base>-custom`, so no
/// output passes a modified GPU off as the catalog's.
pub fn expand_gpu_base(table: &mut toml::Table) -> Result<(), SpecError> {
    let Some(gpu) = table
        .get_mut("hardware")
        .and_then(toml::Value::as_table_mut)
        .and_then(|h| h.get_mut("gpu"))
        .and_then(toml::Value::as_table_mut)
    else {
        return Ok(());
    };
    let Some(base) = gpu.remove("base") else {
        return Ok(());
    };
    let Some(name) = base.as_str() else {
        return Err(SpecError::new(
            "hardware.gpu.base",
            format!("expected a catalog GPU name such as \"h100-sxm\", got {base}"),
        ));
    };
    let entry = catalog::gpu(name).ok_or_else(|| {
        let known: Vec<_> = catalog::gpus().into_iter().map(|e| e.gpu.name).collect();
        SpecError::new(
            "hardware.gpu.base",
            format!("unknown GPU `{name}`; known: {}", known.join(", ")),
        )
    })?;
    let toml::Value::Table(mut merged) =
        toml::Value::try_from(&entry).expect("a catalog GPU serializes")
    else {
        unreachable!("a GPU serializes as a table")
    };
    merged.insert("name".into(), toml::Value::String(format!("{name}-custom")));
    for (field, value) in std::mem::take(gpu) {
        match (merged.get_mut(&field), value) {
            (Some(toml::Value::Table(into)), toml::Value::Table(over)) => {
                into.extend(over);
            }
            (_, value) => {
                merged.insert(field, value);
            }
        }
    }
    *gpu = merged;
    Ok(())
}

/// An error at the first place `input` has a list where `resolved` (the
/// same scenario deserialized and written back) has a table: serde reads a
/// list into a table's fields by position, which no one means.
pub fn lists_for_tables(
    input: &toml::Table,
    resolved: &toml::Table,
    prefix: &str,
) -> Result<(), SpecError> {
    for (k, v) in input {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let Some(r) = resolved.get(k) {
            list_for_table(v, r, &key)?;
        }
    }
    Ok(())
}

fn list_for_table(input: &toml::Value, resolved: &toml::Value, key: &str) -> Result<(), SpecError> {
    match (input, resolved) {
        (toml::Value::Array(_), toml::Value::Table(_)) => Err(SpecError::new(
            key,
            "is a list, but this key takes a table (`{ name = value, ... }`); a list would be \
             read into the table's fields by position",
        )),
        (toml::Value::Table(a), toml::Value::Table(b)) => lists_for_tables(a, b, key),
        (toml::Value::Array(a), toml::Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                list_for_table(x, y, &format!("{key}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_become_toml_shapes() {
        let m =
            in_user_words("invalid type: integer `5`, expected internally tagged enum LengthSpec");
        assert!(m.contains("a length distribution"), "{m}");
        assert!(!m.contains("LengthSpec") && !m.contains("enum"), "{m}");
        let m = in_user_words("data did not match any variant of untagged enum CalibrationSpec");
        assert!(m.starts_with("expected a calibration"), "{m}");
        assert!(!m.contains("CalibrationSpec"), "{m}");
    }

    #[test]
    fn a_gpu_table_can_start_from_a_catalog_entry() {
        let mut t: toml::Table = toml::from_str(
            "[hardware]\ngpu = { base = \"h100-sxm\", hbm_bandwidth = 3.0e12, \
             efficiency = { mbu = 0.5 } }",
        )
        .unwrap();
        expand_gpu_base(&mut t).unwrap();
        let gpu: crate::hardware::Gpu = at(&t, "hardware.gpu").unwrap().clone().try_into().unwrap();
        let h100 = catalog::gpu("h100-sxm").unwrap();
        assert_eq!(gpu.name, "h100-sxm-custom");
        assert_eq!(gpu.hbm_bandwidth, 3.0e12);
        assert_eq!(gpu.efficiency.mbu, 0.5);
        assert_eq!(gpu.efficiency.mfu, h100.efficiency.mfu);
        assert_eq!(gpu.vram_bytes, h100.vram_bytes);
        let mut bad: toml::Table = toml::from_str("[hardware]\ngpu = { base = \"h999\" }").unwrap();
        let e = expand_gpu_base(&mut bad).unwrap_err();
        assert_eq!(e.key, "hardware.gpu.base");
        assert!(e.reason.contains("unknown GPU `h999`"), "{e}");
    }
}
