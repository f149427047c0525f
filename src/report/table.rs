//! Terminal tables for `kvsim run` and `kvsim kv`.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use crate::cache::Placement;
use crate::cache::tiers::{TierKind, TierPlan};
use crate::metrics::{BatchLimit, Summary};
use crate::scenario::Scenario;
use crate::scenario::disagg::{Disagg, ReserveMode, Sharing, TransferMode};
use crate::units::gib;

fn ms(v: Option<f64>) -> String {
    v.map(|s| format!("{:.1} ms", s * 1e3))
        .unwrap_or_else(|| "-".into())
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.3} s")).unwrap_or_else(|| "-".into())
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

/// The width terminal tables fit unless asked otherwise: a classic terminal.
pub const TERMINAL_WIDTH: u16 = 80;

/// The readable summary `kvsim run` prints (with a line per replica for a
/// cluster: `per_replica` empty otherwise), its values wrapped to fit
/// `width` characters (`None`: one line each, however long).
pub fn summary_table(
    scenario: &Scenario,
    s: &Summary,
    per_replica: &[Summary],
    width: Option<u16>,
) -> Table {
    let b = &scenario.budget;
    let mut rows: Vec<(&str, String)> = vec![
        (
            "configuration",
            format!(
                "{} on {} | {} ({}{}, {} admission, on_oom {})",
                scenario.model.name,
                match &scenario.disagg {
                    Some(g) => format!(
                        "prefill {} x TP{} {} + decode {} x TP{} {} (KV budget, batch and \
                         occupancy below are one decode replica's)",
                        g.prefill.deployment.replicas,
                        g.prefill.deployment.tp,
                        g.prefill.deployment.gpu.name,
                        scenario.deployment.replicas,
                        scenario.deployment.tp,
                        scenario.deployment.gpu.name
                    ),
                    None => format!(
                        "{} x {}{}",
                        scenario.deployment.tp,
                        scenario.deployment.gpu.name,
                        match scenario.deployment.replicas {
                            1 => String::new(),
                            r => format!(
                                " | {r} replicas, {} router (KV budget and occupancy per replica)",
                                scenario.deployment.router.name()
                            ),
                        }
                    ),
                },
                scenario.cache.policy.name(),
                scenario.cache.kv_dtype,
                match scenario.cache.placement {
                    Placement::Contiguous => format!(
                        ", reserve {}, {} allocator",
                        scenario.cache.reserve.name(),
                        scenario.cache.allocator.name()
                    ),
                    Placement::Paged { .. } => String::new(),
                },
                scenario.scheduler.admission.name(),
                scenario.scheduler.on_oom.name()
            ),
        ),
        (
            "KV budget",
            format!(
                "{:.2} GiB = {} (weights {:.2} GiB/GPU)",
                gib(b.kv_bytes),
                b.capacity_words(),
                gib(b.weights_per_gpu)
            ),
        ),
        (
            "requests",
            format!(
                "{} arrived: {} ok, {} oom, {} unservable, {} crashed, {} timeout",
                s.requests, s.ok, s.oom, s.unservable, s.crashed, s.timeout
            ),
        ),
        (
            "OOM rate",
            format!(
                "{} ({} OOM events, {} preemptions)",
                pct(s.oom_rate),
                s.oom_events,
                s.preemptions
            ),
        ),
        (
            "batch",
            format!(
                "peak {} | mean {:.1} | fits {} in flight, {} at full length",
                s.batch_peak, s.batch_mean, s.batch_ceiling_inflight, s.batch_ceiling
            ),
        ),
        ("bound by", bound_by(s)),
        (
            "TTFT",
            format!(
                "p50 {} | p90 {} | p99 {}",
                secs(s.ttft_p50),
                secs(s.ttft_p90),
                secs(s.ttft_p99)
            ),
        ),
        (
            "TPOT",
            format!(
                "p50 {} | p90 {} | p99 {} | mean {}",
                ms(s.tpot_p50),
                ms(s.tpot_p90),
                ms(s.tpot_p99),
                ms(s.tpot_mean)
            ),
        ),
        (
            "E2E",
            format!("p50 {} | p99 {}", secs(s.e2e_p50), secs(s.e2e_p99)),
        ),
        (
            "throughput",
            format!(
                "{:.0} output tok/s | goodput {:.2} req/s",
                s.throughput_tok_s, s.goodput_rps
            ),
        ),
        (
            "KV occupancy",
            format!(
                "peak {} | mean {} | time above 90 %: {}",
                pct(s.kv_peak_frac),
                pct(s.kv_mean_frac),
                pct(s.kv_time_above_90)
            ),
        ),
        (
            "where KV goes",
            format!(
                "used {} | reserved {} | internal {} | external {} (time-averaged share of the budget)",
                pct(s.waste_used),
                pct(s.waste_reserved),
                pct(s.waste_internal),
                pct(s.waste_external)
            ),
        ),
    ];
    if let Some(g) = &scenario.disagg {
        rows.extend(disagg_rows(g, s));
    }
    if !per_replica.is_empty() {
        let np = scenario
            .disagg
            .as_ref()
            .map_or(0, |g| g.prefill.deployment.replicas as usize);
        let lines: Vec<String> = per_replica
            .iter()
            .enumerate()
            .map(|(i, r)| {
                format!(
                    "#{i}{}: {} requests, {} oom | batch mean {:.1} | TTFT p99 {} | TPOT p99 {} | KV peak {}",
                    match (np, i < np) {
                        (0, _) => "",
                        (_, true) => " prefill",
                        (_, false) => " decode",
                    },
                    r.requests,
                    r.oom + r.unservable + r.crashed,
                    r.batch_mean,
                    secs(r.ttft_p99),
                    ms(r.tpot_p99),
                    pct(r.kv_peak_frac)
                )
            })
            .collect();
        rows.push(("replicas", lines.join("\n")));
    }
    if scenario.cache.prefix_caching {
        rows.push((
            "prefix cache",
            format!(
                "hit rate {} | {} prompt tokens not recomputed ({:.2} GiB of KV) | cached blocks hold {} of the budget",
                pct(s.prefix_hit_rate),
                s.prefix_hit_tokens,
                gib(s.prefix_saved_bytes),
                pct(s.kv_cached_frac)
            ),
        ));
    }
    if let Some(plan) = &scenario.tiers {
        rows.extend(tier_rows(plan, s));
    }
    if s.swaps > 0 {
        rows.push((
            "swapping",
            format!(
                "{} sequences swapped out, {:.2} GiB over PCIe",
                s.swaps,
                gib(s.swap_bytes)
            ),
        ));
    }
    rows.push((
        "simulated",
        format!(
            "{:.1} s in {} steps (busy {})",
            s.duration_s,
            s.steps,
            pct(s.busy_frac)
        ),
    ));
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    if let Some(width) = width {
        t.set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width);
    }
    t.set_header(vec![Cell::new(&scenario.name), Cell::new("")]);
    for (k, v) in rows {
        t.add_row(vec![
            Cell::new(k).set_alignment(CellAlignment::Right),
            Cell::new(v),
        ]);
    }
    t
}

/// Gigabytes (1e9 bytes, the unit of `capacity_gb`).
fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

/// The rows of a run with KV tiers below HBM: each configured tier's hits,
/// traffic and evictions, the links' busy shares, and TTFT's parts.
fn tier_rows(plan: &TierPlan, s: &Summary) -> [(&'static str, String); 3] {
    let mut tiers = Vec::with_capacity(5);
    tiers.push(format!(
        "all: hit rate {} (HBM prefix cache {}) | {} prompt tokens loaded, not recomputed{}",
        pct(s.total_hit_rate),
        pct(s.prefix_hit_rate),
        s.recompute_avoided_tokens,
        match s.loads_declined {
            0 => String::new(),
            n => format!(" | {n} loads declined as slower than recompute"),
        }
    ));
    let mut links = vec![
        format!("PCIe to GPU {}", pct(s.pcie_h2d_util)),
        format!("PCIe from GPU {}", pct(s.pcie_d2h_util)),
    ];
    for t in plan.configured() {
        let (rate, tokens, stored, loaded, evicted) = match t.kind {
            TierKind::Host => (
                s.host_hit_rate,
                s.host_hit_tokens,
                s.host_stored_bytes,
                s.host_loaded_bytes,
                s.host_evicted_blocks,
            ),
            TierKind::Ssd => (
                s.ssd_hit_rate,
                s.ssd_hit_tokens,
                s.ssd_stored_bytes,
                s.ssd_loaded_bytes,
                s.ssd_evicted_blocks,
            ),
            TierKind::Remote => (
                s.remote_hit_rate,
                s.remote_hit_tokens,
                s.remote_stored_bytes,
                s.remote_loaded_bytes,
                s.remote_evicted_blocks,
            ),
        };
        tiers.push(format!(
            "{}: hit rate {} ({tokens} tokens) | stored {} | loaded {} | {evicted} blocks evicted",
            t.kind.name(),
            pct(rate),
            gb(stored),
            gb(loaded)
        ));
        match t.kind {
            TierKind::Ssd => links.push(format!("SSD {}", pct(s.ssd_util))),
            TierKind::Remote => links.push(format!("NIC {}", pct(s.nic_util))),
            TierKind::Host => {}
        }
    }
    [
        ("KV tiers", tiers.join("\n")),
        ("tier links busy", links.join(" | ")),
        (
            "TTFT parts",
            format!(
                "queue p50 {} p99 {} | load p50 {} p99 {} | prefill p50 {} p99 {}",
                ms(s.ttft_queue_p50),
                ms(s.ttft_queue_p99),
                ms(s.ttft_load_p50),
                ms(s.ttft_load_p99),
                ms(s.ttft_prefill_p50),
                ms(s.ttft_prefill_p99)
            ),
        ),
    ]
}

/// The rows of a disaggregated run: TTFT's four parts, the transfers and
/// their links, decode-side stalls, and each pool.
fn disagg_rows(g: &Disagg, s: &Summary) -> [(&'static str, String); 4] {
    [
        (
            "TTFT parts",
            format!(
                "queue p50 {} p99 {} | prefill p50 {} p99 {} | transfer p50 {} p99 {} | first \
                 step p50 {} p99 {}",
                ms(s.ttft_queue_p50),
                ms(s.ttft_queue_p99),
                ms(s.ttft_prefill_p50),
                ms(s.ttft_prefill_p99),
                ms(s.ttft_transfer_p50),
                ms(s.ttft_transfer_p99),
                ms(s.ttft_first_step_p50),
                ms(s.ttft_first_step_p99)
            ),
        ),
        (
            "KV transfers",
            format!(
                "{} moved over {} at {:.1} GB/s per GPU, {} ({} {}) | one transfer p50 {} p99 {} \
                 | links busy mean {} max {}",
                gb(s.kv_transfer_bytes),
                g.link.kind.name(),
                g.link.bytes_per_s as f64 / 1e9,
                match g.link.sharing {
                    Sharing::Fair => "shared",
                    Sharing::Fifo => "one at a time",
                },
                match g.transfer {
                    TransferMode::AfterPrefill => "after the prefill",
                    TransferMode::Layerwise => "layer by layer",
                },
                match g.reserve {
                    ReserveMode::AfterPrefill => "reserved after it",
                    ReserveMode::BeforePrefill => "reserved before it",
                },
                ms(s.kv_transfer_p50),
                ms(s.kv_transfer_p99),
                pct(s.kv_link_util),
                pct(s.kv_link_util_max)
            ),
        ),
        (
            "decode stalls",
            format!(
                "{} of requests waited for room | p50 {} p99 {}",
                pct(s.decode_stall_rate),
                ms(s.decode_stall_p50),
                ms(s.decode_stall_p99)
            ),
        ),
        (
            "pools",
            format!(
                "prefill: batch mean {:.1} | KV mean {} peak {} | OOM rate {}\n\
                 decode: batch mean {:.1} | KV mean {} peak {} | OOM rate {}\n\
                 {} GPUs | goodput {:.3} req/s per GPU",
                s.prefill_batch_mean,
                pct(s.prefill_kv_mean_frac),
                pct(s.prefill_kv_peak_frac),
                pct(s.prefill_oom_rate),
                s.decode_batch_mean,
                pct(s.decode_kv_mean_frac),
                pct(s.decode_kv_peak_frac),
                pct(s.decode_oom_rate),
                s.gpus,
                s.goodput_per_gpu
            ),
        ),
    ]
}

/// The table `kvsim kv` prints: rows of (label, value).
pub fn print_kv_report(rows: &[(String, String)]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    for (k, v) in rows {
        t.add_row(vec![
            Cell::new(k).set_alignment(CellAlignment::Right),
            Cell::new(v),
        ]);
    }
    t
}

/// The limits that held the batch, longest first, with their shares of busy
/// time: `KV memory 82 % | max_num_seqs 18 %`.
fn bound_by(s: &Summary) -> String {
    let mut shares: Vec<(BatchLimit, f64)> = BatchLimit::ALL
        .into_iter()
        .zip([
            s.batch_bound_load,
            s.batch_bound_kv,
            s.batch_bound_seqs,
            s.batch_bound_tokens,
        ])
        .filter(|&(_, share)| share >= 0.005)
        .collect();
    if shares.is_empty() {
        return "no steps".into();
    }
    // Stable: ties keep the order of `BatchLimit::ALL`, as `batch_limit` does.
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    shares
        .iter()
        .map(|(limit, share)| format!("{} {:.0} %", limit.name(), share * 100.0))
        .collect::<Vec<_>>()
        .join(" | ")
}
