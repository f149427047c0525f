//! The metrics only a disaggregated deployment has
//! (docs/ARCHITECTURE.md#disaggregation): TTFT split into queue, prefill,
//! transfer and first step, transfers and their links, decode-side stalls
//! and each pool's batch, KV occupancy and OOM rate.

use super::{Outcome, RequestRecord, Summary};
use crate::units::{SimDuration, SimTime};

/// The times of one request's way between the pools.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FlightTimes {
    /// When its prefill ended on the prefill replica.
    pub prefill_end: Option<SimTime>,
    /// When its transfer was issued and when it ended.
    pub transfer_start: Option<SimTime>,
    /// See `transfer_start`.
    pub transfer_end: Option<SimTime>,
    /// How long it waited for room on its decode replica (`None`: it never
    /// queued for room).
    pub stall: Option<SimDuration>,
    /// KV bytes it moved.
    pub bytes: u64,
    /// Its prefill replica (of the cluster's replicas; `u32::MAX`: none).
    pub prefill_replica: u32,
}

/// What the two pools did, for [`fill`].
#[derive(Clone, Debug)]
pub struct Pools<'a> {
    /// The prefill pool's own summary (its requests end at their handoff).
    pub prefill: &'a Summary,
    /// The decode pool's own summary.
    pub decode: &'a Summary,
    /// Busy nanoseconds of every KV link.
    pub link_busy_ns: &'a [u64],
}

/// Fills `summary`'s disaggregation fields from the composed `records`,
/// their `times` (same order) and the pools'; `end` is the run's end.
pub fn fill(
    summary: &mut Summary,
    records: &[RequestRecord],
    times: &[FlightTimes],
    pools: &Pools<'_>,
    end: SimTime,
) {
    let ok = || {
        records
            .iter()
            .zip(times)
            .filter(|(r, _)| r.outcome == Some(Outcome::Ok))
    };
    // Durations selected as nanoseconds: the percentiles of their seconds,
    // two at a time (one pass over the records and their times for both).
    let mut nanos: Vec<u64> = Vec::with_capacity(records.len());
    let mut more: Vec<u64> = Vec::with_capacity(records.len());
    let p50_p99 = |nanos: &mut [u64]| {
        let [p50, p99] = super::summary::duration_percentiles(nanos, [50.0, 99.0]);
        (p50, p99)
    };
    // Prefill: first admission on the prefill replica to its prefill's end;
    // transfer: the prefill's end to the KV's arrival.
    let (prefill, transfer) = super::summary::refill_pair(
        &mut nanos,
        &mut more,
        ok(),
        |(r, t)| Some(t.prefill_end? - r.admitted?),
        |(_, t)| Some(t.transfer_end? - t.prefill_end?),
    );
    (summary.ttft_prefill_p50, summary.ttft_prefill_p99) = p50_p99(prefill);
    (summary.ttft_transfer_p50, summary.ttft_transfer_p99) = p50_p99(transfer);
    let (first_step, moving) = super::summary::refill_pair(
        &mut nanos,
        &mut more,
        ok(),
        |(r, t)| Some(r.first_token? - t.transfer_end?),
        |(_, t)| Some(t.transfer_end? - t.transfer_start?),
    );
    (summary.ttft_first_step_p50, summary.ttft_first_step_p99) = p50_p99(first_step);
    (summary.kv_transfer_p50, summary.kv_transfer_p99) = p50_p99(moving);
    drop(more);
    (summary.decode_stall_p50, summary.decode_stall_p99) = p50_p99(super::summary::refill(
        &mut nanos,
        ok().filter_map(|(_, t)| t.stall),
    ));
    drop(nanos);
    summary.ttft_load_p50 = None;
    summary.ttft_load_p99 = None;
    summary.kv_transfer_bytes = times.iter().map(|t| t.bytes).sum();
    let stalled = times
        .iter()
        .filter(|t| t.stall.is_some_and(|s| s > SimDuration::ZERO))
        .count();
    summary.decode_stall_rate = if times.is_empty() {
        0.0
    } else {
        stalled as f64 / times.len() as f64
    };
    let run = end.as_nanos().max(1) as f64;
    let utils = pools.link_busy_ns.iter().map(|&b| b as f64 / run);
    let n = pools.link_busy_ns.len().max(1) as f64;
    summary.kv_link_util = utils.clone().sum::<f64>() / n;
    summary.kv_link_util_max = utils.fold(0.0, f64::max);
    let (p, d) = (pools.prefill, pools.decode);
    // Prompts are looked up in the prefill pool's prefix cache (a received
    // request carries no content to look up on the decode side).
    summary.prefix_hit_rate = p.prefix_hit_rate;
    summary.prefix_hit_tokens = p.prefix_hit_tokens;
    summary.prefix_saved_bytes = p.prefix_saved_bytes;
    summary.total_hit_rate = p.total_hit_rate;
    summary.prefill_batch_mean = p.batch_mean;
    summary.prefill_kv_mean_frac = p.kv_mean_frac;
    summary.prefill_kv_peak_frac = p.kv_peak_frac;
    summary.prefill_oom_rate = p.oom_rate;
    summary.decode_batch_mean = d.batch_mean;
    summary.decode_kv_mean_frac = d.kv_mean_frac;
    summary.decode_kv_peak_frac = d.kv_peak_frac;
    summary.decode_oom_rate = d.oom_rate;
    // The deployment is both pools: GPUs, and their price.
    summary.gpus = p.gpus + d.gpus;
    summary.goodput_per_gpu = summary.goodput_rps / summary.gpus.max(1) as f64;
    summary.usd_per_hour = match (p.usd_per_hour, d.usd_per_hour) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
    let per_hour = summary.throughput_tok_s * 3600.0;
    summary.usd_per_m_output_tokens = summary
        .usd_per_hour
        .and_then(|usd| (per_hour > 0.0).then(|| usd / per_hour * 1e6));
}
