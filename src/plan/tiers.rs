//! KV tiers in `kvsim plan`: the candidate keys `host_gb`, `ssd_gb` and
//! `router`, and what a candidate's tiers cost an hour.
//!
//! Prices: `crate::hardware::price` (defaults and their sources).

use crate::cache::tiers::TierKind;
use crate::scenario::apply_override;

pub use crate::hardware::price::{HOST_GB_HOUR, SSD_GB_HOUR};

/// The `[plan.prices]` key of the host memory price.
pub const HOST_PRICE_KEY: &str = "host_gb_hour";
/// The `[plan.prices]` key of the SSD price.
pub const SSD_PRICE_KEY: &str = "ssd_gb_hour";

/// The candidate key of the host tier's size, GB per replica.
pub const HOST_GB: &str = "host_gb";
/// The candidate key of the SSD tier's size, GB per replica.
pub const SSD_GB: &str = "ssd_gb";
/// The candidate key of the router (`hardware.router`).
pub const ROUTER: &str = "router";

/// USD per GB-hour of the memory below HBM.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TierPrices {
    /// Host memory (and a remote tier's pooled DRAM).
    pub host_gb_hour: f64,
    /// Local SSD.
    pub ssd_gb_hour: f64,
}

impl Default for TierPrices {
    fn default() -> Self {
        TierPrices {
            host_gb_hour: HOST_GB_HOUR,
            ssd_gb_hour: SSD_GB_HOUR,
        }
    }
}

/// What a deployment's KV tiers cost, USD per hour.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct TierCost {
    /// Per replica: its host and SSD tiers.
    pub per_replica: f64,
    /// Once for the whole deployment: a remote tier.
    pub shared: f64,
}

impl TierCost {
    /// The cost of `tiers` (a scenario's `[[cache.tiers]]`) at `prices`:
    /// host and SSD capacities are per replica, a remote tier's is the
    /// deployment's, priced as host memory. `None` without tiers.
    pub fn of(
        tiers: Option<&[crate::scenario::spec::TierSpec]>,
        prices: &TierPrices,
    ) -> Option<Self> {
        let tiers = tiers.filter(|t| !t.is_empty())?;
        let mut cost = TierCost::default();
        for t in tiers {
            match t.kind {
                TierKind::Host => cost.per_replica += t.capacity_gb * prices.host_gb_hour,
                TierKind::Ssd => cost.per_replica += t.capacity_gb * prices.ssd_gb_hour,
                TierKind::Remote => cost.shared += t.capacity_gb * prices.host_gb_hour,
            }
        }
        Some(cost)
    }

    /// USD per hour for `replicas` replicas.
    pub fn for_replicas(&self, replicas: u64) -> f64 {
        self.per_replica * replicas as f64 + self.shared
    }
}

/// Applies candidate assignment `key = value` to scenario table `table`:
/// `host_gb` and `ssd_gb` set the size of that kind's `[[cache.tiers]]`
/// entry (0: no such tier), `router` sets `hardware.router`, `shape` sets a
/// deployment shape ([`super::Shape::apply`]), any other key is a dotted
/// scenario key (as in `[sweep]`). The reason when it cannot be
/// applied.
pub fn apply_candidate(
    table: &mut toml::Table,
    key: &str,
    value: toml::Value,
) -> Result<(), String> {
    match key {
        HOST_GB => set_tier(table, TierKind::Host, gigabytes(&value)?),
        SSD_GB => set_tier(table, TierKind::Ssd, gigabytes(&value)?),
        ROUTER => apply_override(table, "hardware.router", value),
        super::SHAPE => match &value {
            toml::Value::String(text) => super::Shape::parse(text)?.apply(table),
            other => Err(format!(
                "must be a deployment shape such as \"2xTP4\" or \"2xTP2 + 1xTP4\", got the {} {}",
                other.type_str(),
                crate::sweep::cell_of(other)
            )),
        },
        _ => apply_override(table, key, value),
    }
}

/// A tier size: a number of GB, at least 0.
fn gigabytes(value: &toml::Value) -> Result<f64, String> {
    let gb = match value {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(f) => *f,
        other => {
            return Err(format!(
                "must be a size in GB (0: no such tier), got the {} {}",
                other.type_str(),
                crate::sweep::cell_of(other)
            ));
        }
    };
    if gb.is_finite() && gb >= 0.0 {
        Ok(gb)
    } else {
        Err(format!(
            "must be a size in GB, at least 0 (0: no such tier), got {}",
            crate::ranges::number(gb)
        ))
    }
}

/// Keys that only apply to tiers: removed with the last tier, so a
/// candidate without tiers is a valid scenario.
const TIER_ONLY: [(&str, &str); 6] = [
    ("cache", "load"),
    ("cache", "load_if_cheaper"),
    ("hardware", "pcie_gbps"),
    ("hardware", "pcie_block_us"),
    ("hardware", "nic_gbps"),
    ("hardware", "nic_latency_us"),
];

/// Gives the `[[cache.tiers]]` entry of `kind` in `table` `capacity_gb`:
/// an existing entry keeps its other fields, a new one takes the defaults;
/// 0 removes it (and, with the last tier, the keys that only apply to
/// tiers).
pub fn set_tier(table: &mut toml::Table, kind: TierKind, capacity_gb: f64) -> Result<(), String> {
    let cache = match table
        .entry("cache")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
    {
        toml::Value::Table(t) => t,
        other => return Err(format!("`cache` is a {}, not a table", other.type_str())),
    };
    let mut tiers = match cache.remove("tiers") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a,
        Some(other) => {
            return Err(format!(
                "`cache.tiers` is a {}, not a list of tiers",
                other.type_str()
            ));
        }
    };
    let kind_of = |t: &toml::Value| {
        t.get("kind")
            .and_then(toml::Value::as_str)
            .and_then(|k| TierKind::ALL.into_iter().find(|x| x.name() == k))
    };
    if capacity_gb == 0.0 {
        tiers.retain(|t| kind_of(t) != Some(kind));
    } else if let Some(entry) = tiers.iter_mut().find(|t| kind_of(t) == Some(kind)) {
        match entry {
            toml::Value::Table(t) => {
                t.insert("capacity_gb".into(), toml::Value::Float(capacity_gb));
            }
            other => {
                return Err(format!(
                    "a `cache.tiers` entry is a {}, not a table",
                    other.type_str()
                ));
            }
        }
    } else {
        let mut entry = toml::Table::new();
        entry.insert("kind".into(), toml::Value::String(kind.name().into()));
        entry.insert("capacity_gb".into(), toml::Value::Float(capacity_gb));
        // In kind order (host, ssd, remote), as people write them.
        let at = tiers
            .iter()
            .position(|t| kind_of(t).is_some_and(|k| k.index() > kind.index()))
            .unwrap_or(tiers.len());
        tiers.insert(at, toml::Value::Table(entry));
    }
    if tiers.is_empty() {
        for (section, key) in TIER_ONLY {
            if let Some(toml::Value::Table(t)) = table.get_mut(section) {
                t.remove(key);
            }
        }
    } else if let Some(toml::Value::Table(cache)) = table.get_mut("cache") {
        cache.insert("tiers".into(), toml::Value::Array(tiers));
    }
    Ok(())
}
