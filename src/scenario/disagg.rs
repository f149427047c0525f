//! `[deployment]`: prefill/decode disaggregation
//! (docs/ARCHITECTURE.md#disaggregation, docs/design/disaggregation.md).
//!
//! A disaggregated deployment has two pools. Each pool is the top-level
//! scenario with the pool's own `[deployment.<pool>.hardware]`, `.engine`,
//! `.cache` and `.scheduler` tables laid over the top-level ones, key by
//! key, so whatever a pool does not set it inherits; the model, the traffic,
//! the SLOs and the stop rule are the deployment's. Each pool is then
//! validated exactly as a colocated scenario is (its weights must fit its
//! GPUs at its TP, its KV budget comes from its own memory rule), and its
//! errors name the pool's key when the pool set it.
//!
//! The [`Scenario`] a disaggregated file loads into is its **decode** pool
//! (where requests finish and what `hardware.*` reads as), with the prefill
//! pool and the transfer in [`Scenario::disagg`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Scenario;
use crate::error::{Error, SpecError};
use crate::ranges;
use crate::units::SimDuration;

/// `[deployment]` as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// `colocated` (default: every replica prefills and decodes) or
    /// `disaggregated`.
    #[serde(default)]
    pub mode: Mode,
    /// When the KV leaves the prefill pool (default `after-prefill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferMode>,
    /// When the decode pool reserves room for it (default `after-prefill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<ReserveMode>,
    /// The link the KV moves over.
    #[serde(default, skip_serializing_if = "LinkSpec::is_empty")]
    pub link: LinkSpec,
    /// The prefill pool's tables.
    #[serde(default, skip_serializing_if = "PoolSpec::is_empty")]
    pub prefill: PoolSpec,
    /// The decode pool's tables.
    #[serde(default, skip_serializing_if = "PoolSpec::is_empty")]
    pub decode: PoolSpec,
}

/// `deployment.mode`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every replica prefills and decodes its own requests.
    #[default]
    Colocated,
    /// A prefill pool and a decode pool, KV moved between them.
    Disaggregated,
}

/// `deployment.transfer`: when the KV moves.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferMode {
    /// The whole prompt's KV after its last prefill step (vLLM's
    /// `NixlConnector`: the decode side pulls once the prefill request
    /// finished; DistServe).
    #[default]
    AfterPrefill,
    /// Layer by layer during the last prefill step, each layer sent as it is
    /// computed (Mooncake, Splitwise); needs the destination reserved
    /// before the prefill.
    Layerwise,
}

/// `deployment.reserve`: when the decode replica reserves room.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReserveMode {
    /// When the prefill ends (vLLM, llm-d): while the decode replica has no
    /// room, the request's KV stays on the prefill replica.
    #[default]
    AfterPrefill,
    /// When the request arrives, before it enters the prefill queue
    /// (SGLang's `DecodePreallocQueue`, Dynamo, Mooncake): the prefill
    /// replica never holds KV waiting for a destination.
    BeforePrefill,
}

/// `deployment.link.kind`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    /// Between nodes over an RDMA NIC (default).
    #[default]
    Infiniband,
    /// Between nodes over RDMA on Ethernet: the same defaults.
    Roce,
    /// Within a node, GPU to GPU.
    Nvlink,
}

impl LinkKind {
    /// The name used in scenario files.
    pub const fn name(self) -> &'static str {
        match self {
            LinkKind::Infiniband => "infiniband",
            LinkKind::Roce => "roce",
            LinkKind::Nvlink => "nvlink",
        }
    }
}

/// `[deployment.link]` as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// `infiniband` (default), `roce` or `nvlink`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<LinkKind>,
    /// GB/s per GPU, one direction (default: `hardware.nic_gbps` between
    /// nodes, the GPU's NVLink at NCCL's achieved fraction within one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gbps: Option<f64>,
    /// Fixed cost of one transfer, microseconds (default:
    /// `hardware.nic_latency_us`; 10 on NVLink).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<f64>,
    /// How concurrent transfers share a link: `fair` (default after the
    /// prefill) or `fifo` (the only way for layer-wise transfers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<Sharing>,
}

/// `deployment.link.sharing`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// Processor sharing: the transfers on a link move at once, each at its
    /// share of every link on its path (RDMA reads posted together share a
    /// NIC).
    #[default]
    Fair,
    /// One at a time, in the order they were issued.
    Fifo,
}

impl LinkSpec {
    fn is_empty(&self) -> bool {
        *self == LinkSpec::default()
    }
}

/// `[deployment.prefill]` or `[deployment.decode]` as written: tables laid
/// over the top-level ones of the same name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Over `[hardware]`: `gpu`, `tp`, `replicas`, `router`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<toml::Table>,
    /// Over `[engine]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<toml::Table>,
    /// Over `[cache]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<toml::Table>,
    /// Over `[scheduler]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<toml::Table>,
}

impl PoolSpec {
    fn is_empty(&self) -> bool {
        *self == PoolSpec::default()
    }
}

/// The link the KV moves over, resolved.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct KvLink {
    /// What it is.
    pub kind: LinkKind,
    /// Bytes per second per GPU, one direction.
    pub bytes_per_s: u64,
    /// Fixed cost of one transfer.
    pub latency: SimDuration,
    /// How concurrent transfers share it.
    pub sharing: Sharing,
}

/// A validated disaggregated deployment: the prefill pool (a whole scenario
/// of its own) and how KV moves to the decode pool (the [`Scenario`] that
/// holds this).
#[derive(Clone, Debug)]
pub struct Disagg {
    /// The prefill pool: its hardware, cache, scheduler, budget and layout.
    pub prefill: Scenario,
    /// When the KV moves.
    pub transfer: TransferMode,
    /// When the decode side reserves.
    pub reserve: ReserveMode,
    /// The link.
    pub link: KvLink,
}

impl Disagg {
    /// GPUs of the prefill pool.
    pub fn prefill_gpus(&self) -> u64 {
        let d = &self.prefill.deployment;
        u64::from(d.tp) * u64::from(d.replicas.max(1))
    }

    /// Bytes per second of one request's transfer from a prefill replica of
    /// `tp_p` GPUs to a decode replica of `tp_d`: each GPU of the smaller
    /// group sends its shard over its own link (kvsim's choice,
    /// docs/design/disaggregation.md 5.10).
    pub fn transfer_rate(&self, tp_p: u32, tp_d: u32) -> u64 {
        self.link
            .bytes_per_s
            .saturating_mul(u64::from(tp_p.min(tp_d).max(1)))
    }
}

/// Loads `table` (read from `path`) as a disaggregated deployment when its
/// `[deployment]` says so; `Ok(None)` for a colocated one.
pub(super) fn load(table: &toml::Table, path: &Path) -> Result<Option<Scenario>, Error> {
    if !table.contains_key("deployment") {
        return Ok(None);
    }
    let scenario_err = |source: SpecError| Error::Scenario {
        path: path.to_path_buf(),
        source,
    };
    // The whole file as one spec: `[deployment]`'s own keys are checked
    // here, and the spec is what `summary.json` echoes.
    let spec = super::spec_from_table(table.clone()).map_err(scenario_err)?;
    let Some(dep) = spec.deployment.clone() else {
        return Ok(None);
    };
    if dep.mode == Mode::Colocated {
        let set = dep.transfer.is_some()
            || dep.reserve.is_some()
            || !dep.link.is_empty()
            || !dep.prefill.is_empty()
            || !dep.decode.is_empty();
        if set {
            return Err(scenario_err(SpecError::new(
                "deployment.mode",
                "the transfer, reservation, link and pool keys describe a disaggregated \
                 deployment: set `deployment.mode = \"disaggregated\"` or remove them",
            )));
        }
        return Ok(None);
    }
    let pool = |name: &str, overlay: &PoolSpec| -> Result<Scenario, Error> {
        let mut t = table.clone();
        t.remove("deployment");
        // Sweep axes are the whole deployment's; a pool is one point.
        t.remove("sweep");
        let sections = [
            ("hardware", &overlay.hardware),
            ("engine", &overlay.engine),
            ("cache", &overlay.cache),
            ("scheduler", &overlay.scheduler),
        ];
        for (section, over) in sections {
            let Some(over) = over else { continue };
            let entry = t
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(base) = entry else {
                return Err(scenario_err(SpecError::new(
                    section,
                    "must be a table when a pool lays its own over it",
                )));
            };
            for (k, v) in over {
                base.insert(k.clone(), v.clone());
            }
        }
        Scenario::from_table(t, path).map_err(|e| match e {
            Error::Scenario { path, source } => Error::Scenario {
                path,
                source: pool_error(name, overlay, source),
            },
            other => other,
        })
    };
    let mut decode = pool("decode", &dep.decode)?;
    let prefill = pool("prefill", &dep.prefill)?;
    let disagg = resolve(&dep, &decode, prefill).map_err(scenario_err)?;
    decode.spec = spec;
    decode.disagg = Some(Box::new(disagg));
    Ok(Some(decode))
}

/// An error of pool `name`'s scenario, in the file's terms: at the pool's
/// key when the pool set it, else at the inherited key, saying which pool.
fn pool_error(name: &str, overlay: &PoolSpec, e: SpecError) -> SpecError {
    let mut parts = e.key.splitn(2, '.');
    let (section, rest) = (parts.next().unwrap_or(""), parts.next());
    let table = match section {
        "hardware" => overlay.hardware.as_ref(),
        "engine" => overlay.engine.as_ref(),
        "cache" => overlay.cache.as_ref(),
        "scheduler" => overlay.scheduler.as_ref(),
        _ => None,
    };
    let first = rest.and_then(|r| r.split(['.', '[']).next());
    match (table, first) {
        (Some(t), Some(k)) if t.contains_key(k) => {
            SpecError::new(format!("deployment.{name}.{}", e.key), e.reason)
        }
        _ => SpecError::new(e.key, format!("{} (in the {name} pool)", e.reason)),
    }
}

/// The deployment-wide keys and the checks that need both pools.
fn resolve(
    dep: &DeploymentSpec,
    decode: &Scenario,
    prefill: Scenario,
) -> Result<Disagg, SpecError> {
    let transfer = dep.transfer.unwrap_or_default();
    let reserve = dep.reserve.unwrap_or_default();
    if transfer == TransferMode::Layerwise && reserve == ReserveMode::AfterPrefill {
        return Err(SpecError::new(
            "deployment.transfer",
            "a layer-wise transfer starts during the prefill, so the decode replica must be \
             reserved before it: set `deployment.reserve = \"before-prefill\"` (kvsim refuses \
             rather than reserve early silently)",
        ));
    }
    for (name, pool) in [("prefill", &prefill), ("decode", decode)] {
        pool_supported(name, pool)?;
    }
    let mut link = resolve_link(&dep.link, decode, &prefill)?;
    link.sharing = match (transfer, dep.link.sharing) {
        (TransferMode::Layerwise, Some(Sharing::Fair)) => {
            return Err(SpecError::new(
                "deployment.link.sharing",
                "layer-wise transfers queue on their links one at a time: use \"fifo\" (the \
                 default for them) or `deployment.transfer = \"after-prefill\"`",
            ));
        }
        (TransferMode::Layerwise, _) => Sharing::Fifo,
        (TransferMode::AfterPrefill, s) => s.unwrap_or_default(),
    };
    // A decode replica must be able to receive the largest request the
    // traffic can send (its prompt, capped by the context length, and one
    // output token): otherwise the request at the head of its reservation
    // queue would wait forever.
    let longest = decode
        .traffic
        .max_lengths()
        .prompt
        .min(decode.model.max_model_len.saturating_sub(1))
        .max(1);
    let need = decode.layout.peak_bytes(longest + 1);
    let budget = decode.budget.kv_bytes;
    if need > budget {
        return Err(SpecError::new(
            "deployment.decode",
            format!(
                "the KV budget of one decode replica ({} bytes) cannot receive a request of \
                 {longest} prompt tokens ({need} bytes), the longest the traffic can send: give \
                 the decode pool more GPUs (`deployment.decode.hardware.tp`), a larger GPU, or \
                 a smaller `cache.kv_dtype`, or shorten the prompts",
                budget
            ),
        ));
    }
    let p_need = prefill.layout.peak_bytes(longest);
    if p_need > prefill.budget.kv_bytes {
        return Err(SpecError::new(
            "deployment.prefill",
            format!(
                "the KV budget of one prefill replica ({} bytes) cannot hold a prompt of \
                 {longest} tokens ({p_need} bytes), the longest the traffic can send",
                prefill.budget.kv_bytes
            ),
        ));
    }
    Ok(Disagg {
        prefill,
        transfer,
        reserve,
        link,
    })
}

/// What a pool may not use in this version, refused by name.
fn pool_supported(name: &str, pool: &Scenario) -> Result<(), SpecError> {
    let refuse =
        |key: &str, why: &str| Err(SpecError::new(key, format!("{why} (the {name} pool)")));
    if pool.tiers.is_some() {
        return refuse(
            "cache.tiers",
            "KV tiers below HBM are not modelled in a disaggregated deployment yet",
        );
    }
    if pool.scheduler.on_oom == crate::scheduler::OnOom::Crash {
        return refuse(
            "scheduler.on_oom",
            "\"crash\" is not modelled in a disaggregated deployment (a crash would drop KV \
             in flight between the pools): use \"preempt-recompute\" or \"reject\"",
        );
    }
    if pool.scheduler.on_oom == crate::scheduler::OnOom::PreemptSwap {
        return refuse(
            "scheduler.on_oom",
            "\"preempt-swap\" is not modelled in a disaggregated deployment: use \
             \"preempt-recompute\" or \"reject\"",
        );
    }
    if pool.traffic.samples() > 1 {
        return refuse(
            "traffic.samples",
            "parallel samples are not modelled in a disaggregated deployment",
        );
    }
    Ok(())
}

fn resolve_link(
    spec: &LinkSpec,
    decode: &Scenario,
    prefill: &Scenario,
) -> Result<KvLink, SpecError> {
    let kind = spec.kind.unwrap_or_default();
    let hw = &decode.spec.hardware;
    let (gbps, latency_us) = match kind {
        LinkKind::Infiniband | LinkKind::Roce => (
            hw.nic_gbps.unwrap_or(super::tiers::NIC_GBPS),
            hw.nic_latency_us.unwrap_or(super::tiers::NIC_LATENCY_US),
        ),
        // NVLink at the fraction NCCL's bus bandwidth reaches (the cost
        // model's all-reduce rate), of the slower pool's GPU.
        LinkKind::Nvlink => {
            let line = decode
                .deployment
                .gpu
                .interconnect_bandwidth
                .min(prefill.deployment.gpu.interconnect_bandwidth);
            (
                line * crate::hardware::cost::LINK_EFFICIENCY / 1e9,
                super::tiers::NIC_LATENCY_US,
            )
        }
    };
    let gbps = ranges::LINK_GBPS.check("deployment.link.gbps", spec.gbps.unwrap_or(gbps))?;
    let latency_us = ranges::TRANSFER_LATENCY_US.check(
        "deployment.link.latency_us",
        spec.latency_us.unwrap_or(latency_us),
    )?;
    Ok(KvLink {
        kind,
        bytes_per_s: (gbps * 1e9).round() as u64,
        latency: SimDuration::from_nanos((latency_us * 1e3).round() as u64),
        sharing: Sharing::Fair,
    })
}
