//! `--set key.path=value` overrides and sweep assignments, applied to the parsed
//! TOML table before deserialization, so they are validated exactly like the
//! file itself.

/// Splits `key.path=value` into the key path and a TOML value. The value is
/// parsed as TOML (`4`, `0.5`, `true`, `"fp8"`, `[1, 2]`, `{ kind = "poisson",
/// rate = 2 }`); anything that does not parse is taken as a bare string, so
/// `--set cache.policy=paged` works without quotes.
pub fn parse_override(s: &str) -> Result<(String, toml::Value), String> {
    let (key, raw) = s
        .split_once('=')
        .ok_or_else(|| "expected key.path=value".to_string())?;
    let key = key.trim();
    key_parts(key)?;
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(format!("no value given for `{key}`"));
    }
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        // One key, or the value held a line break and a second `key = ...`
        // that would be dropped silently.
        Ok(t) if t.len() > 1 => {
            return Err(format!(
                "the value of `{key}` holds a line break followed by more keys; one --set \
                 sets one key: give each its own --set"
            ));
        }
        Ok(mut t) => t
            .remove("v")
            .ok_or_else(|| format!("no value given for `{key}`"))?,
        Err(_) if raw.contains(['\n', '\r']) => {
            return Err(format!(
                "the value of `{key}` holds a line break; one --set sets one key to one value"
            ));
        }
        Err(_) => toml::Value::String(raw.to_string()),
    };
    Ok((key.to_string(), value))
}

/// Sets `key` (a dotted path such as `traffic.arrival.rate`) to `value` in
/// `table`, creating intermediate tables as needed. Fails if the path runs
/// through a value that is not a table.
pub fn apply_override(
    table: &mut toml::Table,
    key: &str,
    value: toml::Value,
) -> Result<(), String> {
    let parts = key_parts(key)?;
    let (last, parents) = parts.split_last().ok_or_else(|| "empty key".to_string())?;
    let mut cur = table;
    for (i, part) in parents.iter().enumerate() {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            other => {
                return Err(format!(
                    "`{}` is a {}, not a table, so `{key}` cannot be set",
                    parts[..=i].join("."),
                    other.type_str()
                ));
            }
        };
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

/// The parts of a dotted key, read as TOML reads one: bare parts split at
/// dots, quoted parts kept whole, so `sweep."traffic.arrival.users"` names
/// the sweep axis whose own name has dots.
fn key_parts(key: &str) -> Result<Vec<String>, String> {
    let not_a_key = || {
        format!(
            "`{key}` is not a dotted key path (parts are bare words or quoted, e.g. \
             traffic.arrival.rate or sweep.\"cache.policy\")"
        )
    };
    let mut table: toml::Table = format!("{key} = 0").parse().map_err(|_| not_a_key())?;
    let mut parts = Vec::new();
    loop {
        let mut entries = std::mem::take(&mut table).into_iter();
        let (Some((part, value)), None) = (entries.next(), entries.next()) else {
            return Err(not_a_key());
        };
        parts.push(part);
        match value {
            toml::Value::Table(inner) => table = inner,
            _ => return Ok(parts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_toml_or_fall_back_to_strings() {
        let (k, v) = parse_override("traffic.arrival.rate=4.5").unwrap();
        assert_eq!(k, "traffic.arrival.rate");
        assert_eq!(v, toml::Value::Float(4.5));
        assert_eq!(
            parse_override("cache.policy=paged").unwrap().1,
            toml::Value::String("paged".into())
        );
        assert_eq!(
            parse_override("a=\"x y\"").unwrap().1,
            toml::Value::String("x y".into())
        );
        assert!(parse_override("no-equals").is_err());
        assert!(parse_override("a..b=1").is_err());
        // A quoted part keeps its dots: a sweep axis named by a dotted key.
        let mut t = toml::Table::new();
        let (k, v) = parse_override("sweep.\"traffic.arrival.users\"=[4, 8]").unwrap();
        apply_override(&mut t, &k, v).unwrap();
        assert_eq!(
            t["sweep"]["traffic.arrival.users"].as_array().map(Vec::len),
            Some(2)
        );
        assert!(parse_override("a=").is_err());
    }

    #[test]
    fn overrides_reach_into_inline_tables_and_create_missing_ones() {
        let mut t: toml::Table = "[traffic]\narrival = { kind = \"poisson\", rate = 1.0 }\n"
            .parse()
            .unwrap();
        apply_override(&mut t, "traffic.arrival.rate", toml::Value::Float(8.0)).unwrap();
        assert_eq!(t["traffic"]["arrival"]["rate"].as_float(), Some(8.0));
        apply_override(
            &mut t,
            "cache.policy",
            toml::Value::String("sliding".into()),
        )
        .unwrap();
        assert_eq!(t["cache"]["policy"].as_str(), Some("sliding"));
        let err = apply_override(&mut t, "cache.policy.x", toml::Value::Integer(1)).unwrap_err();
        assert!(err.contains("`cache.policy` is a string"), "{err}");
    }
}
