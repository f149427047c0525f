//! Shard files and `kvsim merge`.
//!
//! A shard's first line is a fingerprint of what produced it, a comment that
//! CSV readers skip:
//!
//! ```text
//! # kvsim shard {"kvsim":"0.1.0","scenario":"fnv1a64:…","seed":9,"overrides":[],"shard":0,"of":3,"points":6}
//! ```
//!
//! A comment line rather than a sidecar file, because it cannot be left behind
//! when the CSVs are copied (`results/sweep.shard-*.csv`). `merge` joins only
//! shards whose fingerprints agree on everything but the shard index, and only
//! a complete set of them, so parts of different experiments never mix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

use super::{Shard, SweepTable};

/// What starts a shard's fingerprint line.
pub const FINGERPRINT_PREFIX: &str = crate::output::SHARD_FINGERPRINT_PREFIX;

/// What produced a shard file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// kvsim's version (a new version may compute other numbers).
    pub kvsim: String,
    /// Hash of the canonical scenario table after `--set` overrides: keys
    /// sorted, values typed, formatting and comments dropped. Files the
    /// scenario names (traces, calibrations) are covered by their paths, not
    /// their contents.
    pub scenario: String,
    /// The scenario's seed (after overrides).
    pub seed: u64,
    /// The `--set` overrides, in command-line order.
    pub overrides: Vec<String>,
    /// This shard's index, `0..of`.
    pub shard: usize,
    /// Number of shards of the split.
    pub of: usize,
    /// Points of the whole grid.
    pub points: usize,
}

impl Fingerprint {
    /// The fingerprint of shard `shard` of the sweep of `table` (the scenario
    /// after `overrides`), whose grid has `points` points.
    pub fn new(table: &toml::Table, overrides: &[String], shard: Shard, points: usize) -> Self {
        let seed = table
            .get("seed")
            .and_then(toml::Value::as_integer)
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0);
        Fingerprint {
            kvsim: env!("CARGO_PKG_VERSION").to_string(),
            scenario: scenario_hash(table),
            seed,
            overrides: overrides.to_vec(),
            shard: shard.index,
            of: shard.count,
            points,
        }
    }

    /// The comment line, newline included.
    pub fn line(&self) -> String {
        let json = serde_json::to_string(self).expect("a fingerprint serializes");
        format!("{FINGERPRINT_PREFIX}{json}\n")
    }

    /// What differs between `self` and `other`, other than the shard index:
    /// each item names the field and both values.
    pub fn differences(&self, other: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        if self.scenario != other.scenario {
            out.push(format!(
                "scenario (after --set overrides): {} vs {}",
                self.scenario, other.scenario
            ));
        }
        if self.seed != other.seed {
            out.push(format!("seed: {} vs {}", self.seed, other.seed));
        }
        if self.overrides != other.overrides {
            out.push(format!(
                "--set overrides: {:?} vs {:?}",
                self.overrides, other.overrides
            ));
        }
        if self.of != other.of {
            out.push(format!(
                "split: {}/{} vs {}/{}",
                self.shard, self.of, other.shard, other.of
            ));
        }
        if self.points != other.points {
            out.push(format!("grid points: {} vs {}", self.points, other.points));
        }
        if self.kvsim != other.kvsim {
            out.push(format!("kvsim version: {} vs {}", self.kvsim, other.kvsim));
        }
        out
    }
}

/// `fnv1a64:` and 16 hex digits of the canonical form of `table`.
pub fn scenario_hash(table: &toml::Table) -> String {
    let mut text = String::new();
    canonical(&toml::Value::Table(table.clone()), &mut text);
    format!("fnv1a64:{:016x}", fnv1a64(text.as_bytes()))
}

/// FNV-1a, 64 bits: defined by its two constants, so the hash is the same on
/// every platform and Rust version (std's hasher promises neither). It
/// guards against accidents, not adversaries.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Writes `v` in a form that depends only on its content: tables with sorted
/// keys, strings quoted, integers and floats told apart (`2` is not `2.0`
/// to the scenario parser either).
fn canonical(v: &toml::Value, out: &mut String) {
    let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
    match v {
        toml::Value::String(s) => out.push_str(&quote(s)),
        toml::Value::Integer(i) => out.push_str(&i.to_string()),
        toml::Value::Float(f) => out.push_str(&format!("{f:?}")),
        toml::Value::Boolean(b) => out.push_str(&b.to_string()),
        toml::Value::Datetime(d) => out.push_str(&format!("datetime({d})")),
        toml::Value::Array(a) => {
            out.push('[');
            for x in a {
                canonical(x, out);
                out.push(',');
            }
            out.push(']');
        }
        toml::Value::Table(t) => {
            let mut keys: Vec<&String> = t.keys().collect();
            keys.sort();
            out.push('{');
            for k in keys {
                out.push_str(&quote(k));
                out.push('=');
                canonical(&t[k.as_str()], out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

/// A shard file as read back.
#[derive(Clone, Debug)]
pub struct ShardFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// What produced it.
    pub fingerprint: Fingerprint,
    /// Its rows.
    pub table: SweepTable,
    /// The 1-based line of each row.
    pub lines: Vec<u64>,
}

/// Reads a shard file written by `kvsim sweep --shard`; refuses a file
/// without a fingerprint (a whole `sweep.csv`, or a shard of an older kvsim).
pub fn read_shard(path: &Path) -> Result<ShardFile, Error> {
    let err = |reason: String| Error::DataFile {
        path: path.to_path_buf(),
        line: Some(1),
        reason,
    };
    let first = match crate::input::text_lines(path, "sweep shard")?.next() {
        Some(line) => line?.1,
        None => String::new(),
    };
    let Some(json) = first.trim_end().strip_prefix(FINGERPRINT_PREFIX) else {
        return Err(err(format!(
            "no `{}` fingerprint line: not a shard written by `kvsim sweep --shard I/N` \
             (merge only joins shards, so that parts of different runs cannot mix)",
            FINGERPRINT_PREFIX.trim_end()
        )));
    };
    let fingerprint: Fingerprint =
        serde_json::from_str(json).map_err(|e| err(format!("malformed shard fingerprint: {e}")))?;
    if fingerprint.of == 0 || fingerprint.shard >= fingerprint.of {
        return Err(err(format!(
            "malformed shard fingerprint: shard {} of {}",
            fingerprint.shard, fingerprint.of
        )));
    }
    let (table, lines) = super::read_table_lines(path)?;
    Ok(ShardFile {
        path: path.to_path_buf(),
        fingerprint,
        table,
        lines,
    })
}

/// Joins shards into the table a single run gives: same header, rows sorted
/// by point, every point of the grid exactly once. Refuses shards of
/// different experiments (any fingerprint field but the index differs), a
/// shard given twice, a missing shard, and rows a shard should not hold.
pub fn merge(parts: &[ShardFile]) -> Result<SweepTable, Error> {
    let first = parts
        .first()
        .ok_or_else(|| Error::Usage("merge needs at least one shard".into()))?;
    let fp = &first.fingerprint;
    let name = |p: &ShardFile| p.path.display().to_string();
    for p in &parts[1..] {
        let diffs = fp.differences(&p.fingerprint);
        if !diffs.is_empty() {
            return Err(Error::Usage(format!(
                "{} and {} are not shards of one sweep; they differ in {}",
                name(first),
                name(p),
                diffs.join("; ")
            )));
        }
    }
    let mut holder: Vec<Option<&ShardFile>> = vec![None; fp.of];
    for p in parts {
        let i = p.fingerprint.shard;
        if let Some(q) = holder[i] {
            return Err(Error::Usage(format!(
                "{} and {} are both shard {i}/{}: give each shard once",
                name(q),
                name(p),
                fp.of
            )));
        }
        holder[i] = Some(p);
    }
    let missing: Vec<String> = (0..fp.of)
        .filter(|&i| holder[i].is_none())
        .map(|i| format!("{i}/{} (sweep.shard-{i}-of-{}.csv)", fp.of, fp.of))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "shard{} {} missing: merge needs all {} shards of the split (did every shard finish?)",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            fp.of
        )));
    }
    let mut rows: Vec<Option<Vec<String>>> = vec![None; fp.points];
    for p in parts {
        if p.table.header != first.table.header {
            return Err(Error::Usage(format!(
                "{} and {} have different columns: they are not parts of one sweep",
                name(first),
                name(p)
            )));
        }
        let shard = Shard {
            index: p.fingerprint.shard,
            count: fp.of,
        };
        for (row, &line) in p.table.rows.iter().zip(&p.lines) {
            let bad = |reason: String| Error::DataFile {
                path: p.path.clone(),
                line: Some(line),
                reason,
            };
            // read_table_lines checked that it parses.
            let point: usize = row[0].parse().unwrap_or(usize::MAX);
            if point >= fp.points || !shard.owns(point) {
                return Err(bad(format!(
                    "point {point} is not in shard {}/{} of a {}-point grid",
                    shard.index, shard.count, fp.points
                )));
            }
            if rows[point].is_some() {
                return Err(bad(format!("point {point} appears twice")));
            }
            rows[point] = Some(row.clone());
        }
    }
    let missing: Vec<String> = (0..fp.points)
        .filter(|&p| rows[p].is_none())
        .map(|p| format!("{p} (shard {}/{})", p % fp.of, fp.of))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "points {} are missing: did every shard finish?",
            missing.join(", ")
        )));
    }
    Ok(SweepTable {
        header: first.table.header.clone(),
        rows: rows.into_iter().flatten().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(shard: usize) -> Fingerprint {
        Fingerprint::new(
            &"seed = 9\n[sweep]\na = [1, 2, 3]".parse().unwrap(),
            &[],
            Shard {
                index: shard,
                count: 2,
            },
            3,
        )
    }

    #[test]
    fn the_hash_ignores_order_and_formatting_but_not_values_or_types() {
        let h = |s: &str| scenario_hash(&s.parse().unwrap());
        assert_eq!(h("a = 1\nb = \"x\""), h("b = 'x'   # c\na = 1"));
        assert_eq!(h("[t]\nx = 1\ny = 2"), h("t = { y = 2, x = 1 }"));
        assert_ne!(h("a = 1"), h("a = 2"));
        assert_ne!(h("a = 1"), h("a = 1.0"));
        assert_ne!(h("a = [1, 2]"), h("a = [2, 1]"));
        assert_ne!(h("a = \"1\""), h("a = 1"));
        // Pinned: the hash must not change across platforms or releases.
        assert_eq!(h(""), "fnv1a64:08f44b07b5901a25");
    }

    #[test]
    fn fingerprints_round_trip_and_name_what_differs() {
        let a = fp(0);
        let line = a.line();
        assert!(line.starts_with("# kvsim shard {") && line.ends_with("}\n"));
        let back: Fingerprint =
            serde_json::from_str(line.trim_end().strip_prefix(FINGERPRINT_PREFIX).unwrap())
                .unwrap();
        assert_eq!(back, a);
        assert!(a.differences(&fp(1)).is_empty());
        let mut b = fp(1);
        b.seed = 10;
        b.kvsim = "9.9.9".into();
        let d = a.differences(&b);
        assert_eq!(
            d,
            [
                "seed: 9 vs 10".to_string(),
                format!("kvsim version: {} vs 9.9.9", env!("CARGO_PKG_VERSION"))
            ]
        );
    }
}
