//! `[[cache.tiers]]`, `cache.load`, `cache.load_if_cheaper` and the link keys
//! of `[hardware]` into a validated [`TierPlan`] (docs/ARCHITECTURE.md#kv-tiers).
//!
//! Defaults and their sources (docs/design/kv-tiers.md, section 2):
//! - PCIe: 0.8 of the GPU's nominal per-direction bandwidth (51.2 GB/s on
//!   Gen5 x16) and 3.3 us per block copied: kvsim's fit to vLLM's measured
//!   CPU<->GPU copy throughput by block size ("Inside vLLM's New KV Offloading
//!   Connector", blog.vllm.ai, 2026-01-08, Figures 3 and 4: ~51 GB/s at 16 MB
//!   blocks, ~47.7 GB/s at 2 MB); Voltage Park's H100 node measured H2D
//!   54.8 GB/s, D2H 46.8 GB/s.
//! - SSD: 6.5 GB/s read, 3.5 GB/s write (Samsung PM9A3, the PCIe Gen4 U.2
//!   drive common in H100 servers, datasheet), 60 us per transfer (Micron
//!   9550 datasheet's typical read latency).
//! - NIC: 45 GB/s per GPU (a 400 Gb/s NIC per GPU, as DGX H100 wires them, at
//!   90 % of line rate: Mooncake's transfer engine reached 87 %, an
//!   NFS-over-RDMA GPUDirect test 96 %), 10 us per transfer (kvsim's choice).
//! - A remote store's media: the NICs of the deployment's GPUs (Mooncake
//!   Store pools the GPU nodes' DRAM, FAST'25 §3).

use super::Stop;
use super::spec::{CacheSpec, HardwareSpec};
use crate::cache::tiers::{Links, StorePolicy, TierConfig, TierKind, TierPlan};
use crate::error::SpecError;
use crate::hardware::Deployment;
use crate::ranges;
use crate::scheduler::{OnOom, SchedulerConfig};

/// Fraction of the nominal PCIe bandwidth a KV copy achieves (vLLM blog,
/// Figure 4: ~51.5 GB/s of Gen5's 64 GB/s at the 2-16 MB blocks of vLLM
/// 0.12's layout).
pub const PCIE_EFFICIENCY: f64 = 0.8;
/// Fixed cost per block copied over PCIe, microseconds (same fit).
pub const PCIE_BLOCK_US: f64 = 3.3;
/// NIC bandwidth per GPU, GB/s.
pub const NIC_GBPS: f64 = 45.0;
/// Fixed cost of a transfer over the NIC, microseconds.
pub const NIC_LATENCY_US: f64 = 10.0;
/// Local SSD media, GB/s read and write, and microseconds per transfer.
pub const SSD_READ_GBPS: f64 = 6.5;
/// See [`SSD_READ_GBPS`].
pub const SSD_WRITE_GBPS: f64 = 3.5;
/// See [`SSD_READ_GBPS`].
pub const SSD_LATENCY_US: f64 = 60.0;

fn gbps(key: &str, v: f64) -> Result<u64, SpecError> {
    Ok((ranges::LINK_GBPS.check(key, v)? * 1e9).round() as u64)
}

fn micros(key: &str, v: f64) -> Result<u64, SpecError> {
    Ok((ranges::TRANSFER_LATENCY_US.check(key, v)? * 1e3).round() as u64)
}

/// What the scenario says about tiers, validated; `None` without tiers.
/// `block_bytes` is one KV block of a replica; `prefix_caching` whether HBM
/// keeps released blocks; `linear` whether every layer keeps every token.
#[allow(clippy::too_many_arguments)]
pub(super) fn resolve_tiers(
    cache: &CacheSpec,
    hardware: &HardwareSpec,
    deployment: &Deployment,
    scheduler: &SchedulerConfig,
    stop: Stop,
    block_bytes: Option<u64>,
    prefix_caching: bool,
    linear: bool,
) -> Result<Option<TierPlan>, SpecError> {
    let link_keys = [
        ("hardware.pcie_gbps", hardware.pcie_gbps),
        ("hardware.pcie_block_us", hardware.pcie_block_us),
        ("hardware.nic_gbps", hardware.nic_gbps),
        ("hardware.nic_latency_us", hardware.nic_latency_us),
    ];
    // An empty list is no tiers (so a sweep can set `cache.tiers = []`).
    let specs = match cache.tiers.as_deref() {
        Some(t) if !t.is_empty() => t,
        _ => {
            let stray = [
                ("cache.load", cache.load.is_some()),
                ("cache.load_if_cheaper", cache.load_if_cheaper.is_some()),
            ]
            .into_iter()
            .chain(link_keys.iter().map(|&(k, v)| (k, v.is_some())))
            .find(|&(_, set)| set);
            if let Some((key, _)) = stray {
                return Err(SpecError::new(
                    key,
                    "applies to KV tiers below HBM, and the scenario has none: add a \
                     [[cache.tiers]] entry or remove the key",
                ));
            }
            return Ok(None);
        }
    };
    let Some(block_bytes) = block_bytes else {
        return Err(SpecError::new(
            "cache.tiers",
            "KV tiers hold blocks: use a paged-family policy, not contiguous",
        ));
    };
    if !linear {
        return Err(SpecError::new(
            "cache.tiers",
            "KV tiers hold prefix blocks, which kvsim models only for models whose every layer \
             keeps every token (as prefix caching): this model has sliding-window, chunked or \
             recurrent layers",
        ));
    }
    if scheduler.on_oom == OnOom::PreemptSwap {
        return Err(SpecError::new(
            "scheduler.on_oom",
            "preempt-swap copies sequences to host memory outside the KV tiers: two models of \
             one host memory; use preempt-recompute (the tiers keep the preempted blocks, as \
             vLLM's offloading connector does)",
        ));
    }
    let tp = u64::from(deployment.tp.max(1));
    let gpus = tp * u64::from(deployment.replicas.max(1));
    let pcie_gpu = match hardware.pcie_gbps {
        Some(v) => gbps("hardware.pcie_gbps", v)?,
        None => (deployment.gpu.pcie_bandwidth * PCIE_EFFICIENCY).round() as u64,
    };
    let nic_gpu = gbps("hardware.nic_gbps", hardware.nic_gbps.unwrap_or(NIC_GBPS))?;
    let links = Links {
        pcie_bps: pcie_gpu.saturating_mul(tp),
        pcie_block_ns: micros(
            "hardware.pcie_block_us",
            hardware.pcie_block_us.unwrap_or(PCIE_BLOCK_US),
        )?,
        nic_bps: nic_gpu.saturating_mul(tp),
        nic_latency_ns: micros(
            "hardware.nic_latency_us",
            hardware.nic_latency_us.unwrap_or(NIC_LATENCY_US),
        )?,
    };
    let mut tiers: [Option<TierConfig>; 3] = [None; 3];
    for (i, t) in specs.iter().enumerate() {
        let key = |field: &str| format!("cache.tiers[{i}].{field}");
        if tiers[t.kind.index()].is_some() {
            return Err(SpecError::new(
                key("kind"),
                format!(
                    "a second {} tier: each kind appears at most once",
                    t.kind.name()
                ),
            ));
        }
        let capacity_gb = ranges::TIER_CAPACITY_GB.check(&key("capacity_gb"), t.capacity_gb)?;
        let capacity_bytes = (capacity_gb * 1e9) as u64;
        if capacity_bytes < block_bytes {
            return Err(SpecError::new(
                key("capacity_gb"),
                format!(
                    "{capacity_gb} GB holds no whole KV block ({block_bytes} bytes): a tier \
                     holds whole blocks"
                ),
            ));
        }
        let (read_default, write_default, latency_default) = match t.kind {
            TierKind::Host => (None, None, 0.0),
            TierKind::Ssd => (Some(SSD_READ_GBPS), Some(SSD_WRITE_GBPS), SSD_LATENCY_US),
            TierKind::Remote => {
                let pooled = nic_gpu as f64 * gpus as f64 / 1e9;
                (Some(pooled), Some(pooled), 0.0)
            }
        };
        let media = |field: &str, given: Option<f64>, default: Option<f64>| {
            given
                .or(default)
                .map_or(Ok(u64::MAX), |v| gbps(&key(field), v))
        };
        tiers[t.kind.index()] = Some(TierConfig {
            kind: t.kind,
            capacity_bytes,
            read_bps: media("read_gbps", t.read_gbps, read_default)?,
            write_bps: media("write_gbps", t.write_gbps, write_default)?,
            latency_ns: micros(&key("latency_us"), t.latency_us.unwrap_or(latency_default))?,
            store: t.store.unwrap_or_default(),
        });
    }
    let plan = TierPlan {
        tiers,
        links,
        load: cache.load.unwrap_or_default(),
        load_if_cheaper: cache.load_if_cheaper.unwrap_or(false),
    };
    for (i, t) in specs.iter().enumerate() {
        let cfg = plan.tier(t.kind).copied().expect("resolved above");
        let key = |field: &str| format!("cache.tiers[{i}].{field}");
        // The tier above this one: what it stores on eviction comes from.
        let above = TierKind::ALL[..t.kind.index()]
            .iter()
            .rev()
            .find(|k| plan.tier(**k).is_some());
        if cfg.store == StorePolicy::OnEvict && above.is_none() && !prefix_caching {
            return Err(SpecError::new(
                key("store"),
                "on-evict stores blocks the HBM prefix cache evicts, and without \
                 cache.prefix_caching HBM keeps no released blocks to evict: set \
                 prefix_caching = true or store = \"write-through\"",
            ));
        }
        // A tier its write path can never fill within the run is a
        // capacity nobody can have meant (a unit slip: GB for MB).
        if let Stop::Duration(end) = stop {
            let rate = store_rate(&plan, t.kind).min(cfg.write_bps);
            let most = rate as f64 * end.as_secs_f64();
            if (cfg.capacity_bytes as f64) > most {
                return Err(SpecError::new(
                    key("capacity_gb"),
                    format!(
                        "{} GB can never fill: its write path moves at most {:.3} GB/s, {:.1} GB \
                         in the run's {} s; a smaller capacity gives the same result",
                        cfg.capacity_bytes as f64 / 1e9,
                        rate as f64 / 1e9,
                        most / 1e9,
                        end.as_secs_f64()
                    ),
                ));
            }
        }
    }
    Ok(Some(plan))
}

/// The slowest link a store into `kind` crosses (its media aside), bytes
/// per second: PCIe for host and SSD (an SSD below a host tier is written
/// from host memory, so only its media bounds it), the NIC for remote.
pub fn store_rate(plan: &TierPlan, kind: TierKind) -> u64 {
    match kind {
        TierKind::Host => plan.links.pcie_bps,
        TierKind::Ssd if plan.tier(TierKind::Host).is_some() => u64::MAX,
        TierKind::Ssd => plan.links.pcie_bps,
        TierKind::Remote => plan.links.nic_bps,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::cache::tiers::{LoadMode, StorePolicy, TierKind};
    use crate::scenario::Scenario;

    fn load(extra: &str, tp: u32, replicas: u32) -> Scenario {
        let text = format!(
            "name = \"t\"\nduration_s = 600\n[model]\npreset = \"llama-3.1-8b\"\n\
             [hardware]\ngpu = \"h100-sxm\"\ntp = {tp}\nreplicas = {replicas}\n\
             [traffic]\narrival = {{ kind = \"poisson\", rate = 1 }}\n\
             prompt = {{ kind = \"fixed\", value = 100 }}\noutput = {{ kind = \"fixed\", value = 10 }}\n\
             [cache]\nprefix_caching = true\n{extra}"
        );
        Scenario::from_toml(&text, Path::new("t.toml"), &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = load(
            "[[cache.tiers]]\nkind = \"host\"\ncapacity_gb = 64\n\
             [[cache.tiers]]\nkind = \"ssd\"\ncapacity_gb = 1000\n\
             [[cache.tiers]]\nkind = \"remote\"\ncapacity_gb = 2000\n",
            2,
            2,
        );
        let p = s.tiers.unwrap();
        // PCIe: 0.8 x 64 GB/s per GPU = 51.2 GB/s, times tp = 2; 3.3 us a block.
        assert_eq!(p.links.pcie_bps, 2 * 51_200_000_000);
        assert_eq!(p.links.pcie_block_ns, 3_300);
        // NIC: 45 GB/s per GPU, 10 us.
        assert_eq!(p.links.nic_bps, 2 * 45_000_000_000);
        assert_eq!(p.links.nic_latency_ns, 10_000);
        let host = p.tier(TierKind::Host).unwrap();
        assert_eq!(
            (host.read_bps, host.write_bps, host.latency_ns),
            (u64::MAX, u64::MAX, 0)
        );
        assert_eq!(host.capacity_bytes, 64_000_000_000);
        assert_eq!(host.store, StorePolicy::WriteThrough);
        let ssd = p.tier(TierKind::Ssd).unwrap();
        assert_eq!(
            (ssd.read_bps, ssd.write_bps, ssd.latency_ns),
            (6_500_000_000, 3_500_000_000, 60_000)
        );
        // The remote store's media: the NICs of all 4 GPUs.
        let remote = p.tier(TierKind::Remote).unwrap();
        assert_eq!(remote.read_bps, 4 * 45_000_000_000);
        assert_eq!(p.load, LoadMode::Async);
        assert!(!p.load_if_cheaper);
        assert!(load("", 1, 1).tiers.is_none());
    }
}
