//! The run summary: one row of `sweep.csv`, the `metrics` of `summary.json`.

use serde::Serialize;

use crate::cache::tiers::TierKind;
use crate::cache::{CacheConfig, Placement};
use crate::hardware::price::{HOST_GB_HOUR, SSD_GB_HOUR};

use crate::scenario::{Scenario, Slo};
use crate::scheduler::Admission;
use crate::units::{SimDuration, SimTime};

use super::select::{f64_key, f64_of_key, percentiles_of_keys};
use super::{BatchLimit, Collector, Outcome, RequestRecord};

/// The metrics of one run (docs/ARCHITECTURE.md#metrics). Times in seconds, fractions
/// in [0, 1]. Latency percentiles are over requests that completed (`ok`);
/// `None` when no request qualifies.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Requests that arrived.
    pub requests: u64,
    /// Requests that completed.
    pub ok: u64,
    /// Requests that failed because their sequence could not grow.
    pub oom: u64,
    /// Requests that could never fit.
    pub unservable: u64,
    /// Requests lost in or refused during a crash.
    pub crashed: u64,
    /// Requests that timed out waiting for admission.
    pub timeout: u64,
    /// (oom + crashed + unservable) / requests.
    pub oom_rate: f64,
    /// Server crashes plus growth failures.
    pub oom_events: u64,
    /// Sequences evicted to make room (not failures).
    pub preemptions: u64,
    /// Most sequences that fit in the KV budget at once at full length: the
    /// typical request (mean prompt + mean output) at the end of its
    /// generation, under the policy and admission rule (analytic). The batch
    /// the memory holds even if every sequence reached its end together; a
    /// running batch exceeds it without any memory pressure, since sequences
    /// in flight are on average half-way through their output.
    pub batch_ceiling: u64,
    /// Most sequences that fit in the KV budget at the run's in-flight
    /// footprint: the time-averaged batch over the time-averaged KV
    /// occupancy, i.e. the budget over the KV a running sequence held on
    /// average (reservations, block tails and sharing included). A peak above
    /// it means the batch peaked when its sequences were younger than usual.
    pub batch_ceiling_inflight: u64,
    /// Most sequences in one step.
    pub batch_peak: u32,
    /// Mean sequences per step.
    pub batch_mean: f64,
    /// Share of busy time in which nothing was left waiting: the offered load
    /// set the batch.
    pub batch_bound_load: f64,
    /// Share of busy time in which KV memory kept the batch from growing: a
    /// waiting request did not fit, or a running one could not grow
    /// (preemption, OOM).
    pub batch_bound_kv: f64,
    /// Share of busy time in which `scheduler.max_num_seqs` sequences were
    /// running with requests waiting.
    pub batch_bound_seqs: f64,
    /// Share of busy time in which the step's token budget
    /// (`scheduler.max_batched_tokens`) was spent with requests waiting.
    pub batch_bound_tokens: f64,
    /// Time to first token, median, seconds.
    pub ttft_p50: Option<f64>,
    /// Time to first token, 90th percentile, seconds.
    pub ttft_p90: Option<f64>,
    /// Time to first token, 99th percentile, seconds.
    pub ttft_p99: Option<f64>,
    /// Time per output token, median, seconds.
    pub tpot_p50: Option<f64>,
    /// Time per output token, 90th percentile, seconds.
    pub tpot_p90: Option<f64>,
    /// Time per output token, 99th percentile, seconds.
    pub tpot_p99: Option<f64>,
    /// Time per output token, mean, seconds.
    pub tpot_mean: Option<f64>,
    /// End-to-end latency, median, seconds.
    pub e2e_p50: Option<f64>,
    /// End-to-end latency, 99th percentile, seconds.
    pub e2e_p99: Option<f64>,
    /// Output tokens of completed requests per second of simulated time.
    pub throughput_tok_s: f64,
    /// Completed requests meeting every SLO, per second of the arrival
    /// window (time 0 to the last arrival; the whole run if every request
    /// arrived at 0), so the drain after the last arrival does not dilute it:
    /// at a sustainable load it approaches the arrival rate times the share
    /// meeting the SLOs.
    pub goodput_rps: f64,
    /// Highest KV occupancy.
    pub kv_peak_frac: f64,
    /// Time-averaged KV occupancy.
    pub kv_mean_frac: f64,
    /// Fraction of time at or above 90 % occupancy.
    pub kv_time_above_90: f64,
    /// Time-averaged fraction of the budget holding actual token states.
    pub waste_used: f64,
    /// Time-averaged fraction reserved for tokens not generated yet.
    pub waste_reserved: f64,
    /// Time-averaged fraction held but never to be filled (over-reservation
    /// beyond the true final length, unused block tails).
    pub waste_internal: f64,
    /// Time-averaged fraction free but unusable by the waiting request at the
    /// head of the queue (holes too small for it), plus what a buddy
    /// allocator holds beyond the sequences' needs (its rounding).
    pub waste_external: f64,
    /// Time-averaged fraction of the budget holding cached prefix blocks that
    /// no running sequence references (free, but kept for reuse).
    pub kv_cached_frac: f64,
    /// Sequences swapped to host memory (a subset of `preemptions`).
    pub swaps: u64,
    /// Bytes copied over PCIe by swapping, both directions.
    pub swap_bytes: u64,
    /// Prompt tokens served from cached prefix blocks over prompt tokens
    /// admitted (0 without prefix caching).
    pub prefix_hit_rate: f64,
    /// Prompt tokens whose prefill was skipped thanks to cached blocks.
    pub prefix_hit_tokens: u64,
    /// KV bytes those tokens did not have to compute and store again.
    pub prefix_saved_bytes: u64,
    /// Prompt tokens loaded from the host tier over prompt tokens admitted
    /// (docs/ARCHITECTURE.md#kv-tiers; 0 without one).
    pub host_hit_rate: f64,
    /// Prompt tokens loaded from the SSD tier over prompt tokens admitted.
    pub ssd_hit_rate: f64,
    /// Prompt tokens loaded from the remote tier over prompt tokens admitted.
    pub remote_hit_rate: f64,
    /// Prompt tokens served from HBM's prefix cache or any tier over prompt
    /// tokens admitted.
    pub total_hit_rate: f64,
    /// Prompt tokens loaded from the host tier.
    pub host_hit_tokens: u64,
    /// Prompt tokens loaded from the SSD tier.
    pub ssd_hit_tokens: u64,
    /// Prompt tokens loaded from the remote tier.
    pub remote_hit_tokens: u64,
    /// Bytes written into the host tier.
    pub host_stored_bytes: u64,
    /// Bytes read out of the host tier for hits.
    pub host_loaded_bytes: u64,
    /// Bytes written into the SSD tier.
    pub ssd_stored_bytes: u64,
    /// Bytes read out of the SSD tier for hits.
    pub ssd_loaded_bytes: u64,
    /// Bytes written into the remote tier.
    pub remote_stored_bytes: u64,
    /// Bytes read out of the remote tier for hits.
    pub remote_loaded_bytes: u64,
    /// Blocks the host tier evicted to make room.
    pub host_evicted_blocks: u64,
    /// Blocks the SSD tier evicted to make room.
    pub ssd_evicted_blocks: u64,
    /// Blocks the remote tier evicted to make room.
    pub remote_evicted_blocks: u64,
    /// Fraction of the run the host-to-GPU PCIe link was busy (per replica).
    pub pcie_h2d_util: f64,
    /// Fraction of the run the GPU-to-host PCIe link was busy (per replica).
    pub pcie_d2h_util: f64,
    /// Fraction of the run the SSD was busy, its busier direction.
    pub ssd_util: f64,
    /// Fraction of the run the NIC to the remote tier was busy, its busier
    /// direction.
    pub nic_util: f64,
    /// Prompt tokens loaded from a tier instead of recomputed.
    pub recompute_avoided_tokens: u64,
    /// Tier hits recomputed because that was faster (`cache.load_if_cheaper`).
    pub loads_declined: u64,
    /// Time from arrival to first admission, median, seconds (the queue part
    /// of TTFT).
    pub ttft_queue_p50: Option<f64>,
    /// Time from arrival to first admission, 99th percentile, seconds.
    pub ttft_queue_p99: Option<f64>,
    /// Time loading KV from tiers after admission, median, seconds (the load
    /// part of TTFT; under `layerwise` it overlaps the prefill).
    pub ttft_load_p50: Option<f64>,
    /// Time loading KV from tiers after admission, 99th percentile, seconds.
    pub ttft_load_p99: Option<f64>,
    /// TTFT minus its queue and load parts, median, seconds (prefill).
    pub ttft_prefill_p50: Option<f64>,
    /// TTFT minus its queue and load parts, 99th percentile, seconds.
    pub ttft_prefill_p99: Option<f64>,
    /// What the deployment costs an hour, USD: its GPUs at the catalog's price
    /// (or `hardware.gpu`'s own `price_per_hour`) plus its KV tiers' memory at
    /// `hardware::price`'s defaults (host memory and a remote store as DRAM,
    /// SSD as local SSD); `None` for a GPU without a price.
    pub usd_per_hour: Option<f64>,
    /// `usd_per_hour` over the output tokens an hour the run produced, per
    /// million tokens.
    pub usd_per_m_output_tokens: Option<f64>,
    /// GPUs of the deployment: every replica's, both pools'.
    pub gpus: u64,
    /// `goodput_rps` per GPU of the deployment.
    pub goodput_per_gpu: f64,
    /// Disaggregated: time from the prefill's end to the KV's arrival on the
    /// decode replica, median, seconds (the transfer part of TTFT, with any
    /// wait for room on the decode side under `reserve = "after-prefill"`
    /// and for the link); `None` when colocated.
    pub ttft_transfer_p50: Option<f64>,
    /// The transfer part of TTFT, 99th percentile, seconds.
    pub ttft_transfer_p99: Option<f64>,
    /// Disaggregated: time from the KV's arrival to the first token (waiting
    /// for a batch, and that step), median, seconds.
    pub ttft_first_step_p50: Option<f64>,
    /// The first-step part of TTFT, 99th percentile, seconds.
    pub ttft_first_step_p99: Option<f64>,
    /// Disaggregated: KV bytes moved from the prefill to the decode pool.
    pub kv_transfer_bytes: u64,
    /// Disaggregated: one transfer's time from its issue to its end (link
    /// queueing included), median, seconds.
    pub kv_transfer_p50: Option<f64>,
    /// One transfer's time, 99th percentile, seconds.
    pub kv_transfer_p99: Option<f64>,
    /// Disaggregated: fraction of the run the KV links were busy, mean over
    /// every replica's link (each prefill replica's out, each decode
    /// replica's in).
    pub kv_link_util: f64,
    /// The busiest KV link's busy fraction.
    pub kv_link_util_max: f64,
    /// Disaggregated: share of requests that waited for room on their decode
    /// replica.
    pub decode_stall_rate: f64,
    /// Time waiting for room on the decode replica, median over requests
    /// that completed, seconds.
    pub decode_stall_p50: Option<f64>,
    /// Time waiting for room on the decode replica, 99th percentile, seconds.
    pub decode_stall_p99: Option<f64>,
    /// Disaggregated: mean batch of the prefill pool's steps.
    pub prefill_batch_mean: f64,
    /// Disaggregated: the prefill pool's mean KV occupancy (prompts being
    /// prefilled and KV held for transfer) over its budget.
    pub prefill_kv_mean_frac: f64,
    /// The prefill pool's peak KV occupancy over its budget.
    pub prefill_kv_peak_frac: f64,
    /// Share of requests that failed in the prefill pool for memory.
    pub prefill_oom_rate: f64,
    /// Disaggregated: mean batch of the decode pool's steps.
    pub decode_batch_mean: f64,
    /// Disaggregated: the decode pool's mean KV occupancy over its budget
    /// (received, reserved and decoding sequences).
    pub decode_kv_mean_frac: f64,
    /// The decode pool's peak KV occupancy over its budget.
    pub decode_kv_peak_frac: f64,
    /// Share of requests that failed in the decode pool for memory.
    pub decode_oom_rate: f64,
    /// Simulated time from 0 to the last request's end, seconds.
    pub duration_s: f64,
    /// Engine steps run.
    pub steps: u64,
    /// Fraction of the duration the engine was running steps.
    pub busy_frac: f64,
    /// KV budget of one replica, bytes.
    pub kv_budget_bytes: u64,
    /// KV bytes per token of one replica (dtype and TP replication included).
    pub kv_bytes_per_token: u64,
}

impl Summary {
    /// The limit that held the batch for the largest share of busy time
    /// (ties: the order of [`BatchLimit::ALL`]); the offered load for a run
    /// without steps.
    pub fn batch_limit(&self) -> BatchLimit {
        let shares = [
            self.batch_bound_load,
            self.batch_bound_kv,
            self.batch_bound_seqs,
            self.batch_bound_tokens,
        ];
        let mut best = 0;
        for (i, &share) in shares.iter().enumerate() {
            if share > shares[best] {
                best = i;
            }
        }
        BatchLimit::ALL[best]
    }

    /// The metric names, in column order: the field names as `summary.json`
    /// and `sweep.csv` write them (one source, so readers cannot drift).
    pub fn column_names() -> Vec<String> {
        match serde_json::to_value(Summary::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => unreachable!("a summary serializes to an object"),
        }
    }
}

/// The `q`-th percentile (0-100) of `sorted` by linear interpolation between
/// closest ranks (NumPy's default, which vLLM's benchmark uses).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// `buf` holding the nanoseconds of `durations` (and nothing else).
pub(crate) fn refill(
    buf: &mut Vec<u64>,
    durations: impl Iterator<Item = SimDuration>,
) -> &mut [u64] {
    buf.clear();
    buf.extend(durations.map(SimDuration::as_nanos));
    buf
}

/// `a` and `b` holding the nanoseconds of two durations of `items`, in one
/// pass: `first`'s of the items that have one, and `second`'s. Two
/// latencies of the same records taken together read the records once
/// rather than twice (at a million requests they are some 100 MB a pass).
pub(crate) fn refill_pair<'b, T>(
    a: &'b mut Vec<u64>,
    b: &'b mut Vec<u64>,
    items: impl Iterator<Item = T>,
    mut first: impl FnMut(&T) -> Option<SimDuration>,
    second: impl Fn(&T) -> Option<SimDuration>,
) -> (&'b mut [u64], &'b mut [u64]) {
    a.clear();
    b.clear();
    for item in items {
        if let Some(d) = first(&item) {
            a.push(d.as_nanos());
        }
        if let Some(d) = second(&item) {
            b.push(d.as_nanos());
        }
    }
    (a, b)
}

/// The percentiles `qs` of durations given as nanoseconds, in seconds: the
/// same, bit for bit, as those of their seconds (seconds are non-decreasing
/// in nanoseconds, so the order statistics are the same durations), with one
/// division by 10^9 for each percentile instead of one for each request.
/// `nanos` is scratch (see [`percentiles_of_keys`]).
pub(crate) fn duration_percentiles<const N: usize>(
    nanos: &mut [u64],
    qs: [f64; N],
) -> [Option<f64>; N] {
    percentiles_of_keys(nanos, qs, |ns| SimDuration::from_nanos(ns).as_secs_f64())
}

/// Whether a completed request met every objective.
fn meets(slo: &Slo, r: &RequestRecord) -> bool {
    let ttft_ok = slo
        .ttft
        .is_none_or(|l| r.ttft().is_some_and(|t| t.as_secs_f64() <= l));
    let tpot_ok = slo.tpot.is_none_or(|l| r.tpot_s().is_none_or(|t| t <= l));
    let e2e_ok = slo
        .e2e
        .is_none_or(|l| r.e2e().is_some_and(|t| t.as_secs_f64() <= l));
    ttft_ok && tpot_ok && e2e_ok
}

/// Most sequences of a typical request that fit in the budget at once: the
/// typical request has the mean prompt, output and output cap of the run's
/// requests (`totals`).
pub fn batch_ceiling(scenario: &Scenario, cache: &CacheConfig, totals: &RecordTotals) -> u64 {
    if totals.requests == 0 {
        return 0;
    }
    // Sums of u32s: exact in u64, and in f64 below 2^53, as the per-record
    // f64 sums they replace were.
    let n = totals.requests as f64;
    let mean = |sum: u64| (sum as f64 / n).round() as u32;
    let prompt = mean(totals.prompt_tokens);
    let output = mean(totals.output_target);
    let max_tokens = mean(totals.max_tokens);
    let mml = scenario.model.max_model_len;
    let typical = (prompt + output).saturating_sub(1).clamp(1, mml);
    let reserved = match (scenario.scheduler.admission, cache.placement) {
        (Admission::Reserve, _) => cache.reserve.tokens(prompt, max_tokens, typical, mml),
        (Admission::Optimistic, Placement::Contiguous | Placement::Paged { .. }) => typical,
    };
    let footprint = cache
        .footprint_bytes(&scenario.layout, typical, reserved)
        .max(1);
    scenario.budget.kv_bytes / footprint
}

/// What a summary takes from the per-request records apart from their
/// latencies: counts and sums, gathered one record at a time (from the kept
/// records, or as each request ends in streaming mode) and mergeable.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct RecordTotals {
    /// Requests.
    pub requests: u64,
    /// Requests by outcome.
    pub ok: u64,
    /// See [`Summary::oom`].
    pub oom: u64,
    /// See [`Summary::unservable`].
    pub unservable: u64,
    /// See [`Summary::crashed`].
    pub crashed: u64,
    /// See [`Summary::timeout`].
    pub timeout: u64,
    /// The latest arrival.
    pub last_arrival: SimTime,
    /// Output tokens of completed requests.
    pub output_tokens: u64,
    /// Completed requests that met every objective.
    pub good: u64,
    /// Sums over every request (for the typical request of
    /// [`batch_ceiling`]).
    pub prompt_tokens: u64,
    /// Σ output target.
    pub output_target: u64,
    /// Σ output cap.
    pub max_tokens: u64,
}

impl RecordTotals {
    /// Counts record `r` (ended), judged against `slo`.
    pub fn add(&mut self, r: &RequestRecord, slo: &Slo) {
        self.requests += 1;
        self.last_arrival = self.last_arrival.max(r.arrival);
        self.prompt_tokens += u64::from(r.prompt_tokens);
        self.output_target += u64::from(r.output_target);
        self.max_tokens += u64::from(r.max_tokens);
        match r.outcome {
            Some(Outcome::Ok) => {
                self.ok += 1;
                self.output_tokens += u64::from(r.output_tokens);
                self.good += u64::from(meets(slo, r));
            }
            Some(Outcome::Oom) => self.oom += 1,
            Some(Outcome::Unservable) => self.unservable += 1,
            Some(Outcome::Crashed) => self.crashed += 1,
            Some(Outcome::Timeout) => self.timeout += 1,
            None => {}
        }
    }

    /// Adds another part's totals (another replica's).
    pub fn merge(&mut self, o: &RecordTotals) {
        self.requests += o.requests;
        self.ok += o.ok;
        self.oom += o.oom;
        self.unservable += o.unservable;
        self.crashed += o.crashed;
        self.timeout += o.timeout;
        self.last_arrival = self.last_arrival.max(o.last_arrival);
        self.output_tokens += o.output_tokens;
        self.good += o.good;
        self.prompt_tokens += o.prompt_tokens;
        self.output_target += o.output_target;
        self.max_tokens += o.max_tokens;
    }
}

/// The latency percentiles of a summary, seconds, over completed requests.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Latencies {
    /// TTFT p50, p90, p99.
    pub ttft: [Option<f64>; 3],
    /// End-to-end p50, p99.
    pub e2e: [Option<f64>; 2],
    /// TPOT p50, p90, p99.
    pub tpot: [Option<f64>; 3],
    /// Mean TPOT.
    pub tpot_mean: Option<f64>,
    /// TTFT's queue part p50, p99.
    pub queue: [Option<f64>; 2],
    /// TTFT's load part p50, p99.
    pub load: [Option<f64>; 2],
    /// TTFT's prefill part p50, p99.
    pub prefill: [Option<f64>; 2],
}

impl Latencies {
    /// Exact percentiles of `records` (interpolated between order
    /// statistics, as NumPy's default).
    pub fn exact(records: &[RequestRecord]) -> Latencies {
        // The latencies go through two buffers, two metrics at a time (one
        // pass over the records for both), so the summary adds 16 bytes per
        // request to the run's peak memory rather than 40 or more (at ten
        // million requests the records alone are 1 GB).
        let ok = || records.iter().filter(|r| r.outcome == Some(Outcome::Ok));
        // Durations as nanoseconds (see [`duration_percentiles`]): TTFT,
        // end to end, and TTFT's parts: queue (to first admission), load
        // (from a tier), the rest.
        let mut nanos: Vec<u64> = Vec::with_capacity(records.len());
        let mut more: Vec<u64> = Vec::with_capacity(records.len());
        // The same requests' loads, seen on the way: without a tier they are
        // all zero, and a pass for them can be saved.
        let mut loaded = false;
        let (ttft, e2e) = refill_pair(
            &mut nanos,
            &mut more,
            ok(),
            |r| {
                loaded |= r.load > SimDuration::ZERO;
                r.ttft()
            },
            |r| r.e2e(),
        );
        let with_ttft = ttft.len();
        let ttft = duration_percentiles(ttft, [50.0, 90.0, 99.0]);
        let e2e = duration_percentiles(e2e, [50.0, 99.0]);
        let (queue, prefill) =
            refill_pair(&mut nanos, &mut more, ok(), |r| r.queue(), |r| r.prefill());
        let queue = duration_percentiles(queue, [50.0, 99.0]);
        let prefill = duration_percentiles(prefill, [50.0, 99.0]);
        drop(more);
        let load = if loaded {
            duration_percentiles(
                refill(
                    &mut nanos,
                    ok().filter(|r| r.ttft().is_some()).map(|r| r.load),
                ),
                [50.0, 99.0],
            )
        } else {
            // Zeros, or none: the percentiles of one zero are those of any
            // number of them.
            let zeros: &mut [u64] = if with_ttft > 0 { &mut [0] } else { &mut [] };
            duration_percentiles(zeros, [50.0, 99.0])
        };
        drop(nanos);
        // TPOT's mean is summed in the records' order (request ids: the
        // same for a seed on any thread count).
        let mut latencies: Vec<f64> = Vec::with_capacity(records.len());
        latencies.extend(ok().filter_map(RequestRecord::tpot_s));
        let tpot_mean =
            (!latencies.is_empty()).then(|| latencies.iter().sum::<f64>() / latencies.len() as f64);
        // Selected by their order's integer keys (the collect reuses the
        // buffer).
        let mut keys: Vec<u64> = latencies.into_iter().map(f64_key).collect();
        let tpot = percentiles_of_keys(&mut keys, [50.0, 90.0, 99.0], f64_of_key);
        Latencies {
            ttft,
            e2e,
            tpot,
            tpot_mean,
            queue,
            load,
            prefill,
        }
    }
}

/// Summarizes a finished run. `records` must all have ended; `end` is when the
/// last one did.
pub fn summarize(
    scenario: &Scenario,
    records: &[RequestRecord],
    stats: &Collector,
    end: SimTime,
) -> Summary {
    let mut totals = RecordTotals::default();
    for r in records {
        totals.add(r, &scenario.slo);
    }
    summary_of(scenario, &totals, &Latencies::exact(records), stats, end)
}

/// The summary of a run whose requests add up to `totals` and `latencies`
/// and whose steps to `stats`.
pub fn summary_of(
    scenario: &Scenario,
    totals: &RecordTotals,
    latencies: &Latencies,
    stats: &Collector,
    end: SimTime,
) -> Summary {
    let good = totals.good;
    let last_arrival = totals.last_arrival;
    let output_tokens = totals.output_tokens;
    let goodput_rps = if last_arrival > SimTime::ZERO {
        good as f64 / last_arrival.as_secs_f64()
    } else if end.as_nanos() > 0 {
        good as f64 / end.as_secs_f64()
    } else {
        0.0
    };
    let [ttft_p50, ttft_p90, ttft_p99] = latencies.ttft;
    let [e2e_p50, e2e_p99] = latencies.e2e;
    let [ttft_queue_p50, ttft_queue_p99] = latencies.queue;
    let [ttft_load_p50, ttft_load_p99] = latencies.load;
    let [ttft_prefill_p50, ttft_prefill_p99] = latencies.prefill;
    let (oom, unservable, crashed) = (totals.oom, totals.unservable, totals.crashed);
    let tiers = &stats.tiers;
    let of_lookups = |tokens: u64| {
        if stats.prefix_lookup_tokens == 0 {
            0.0
        } else {
            tokens as f64 / stats.prefix_lookup_tokens as f64
        }
    };
    // One replica's share of the deployment's price (a cluster's per-replica
    // summaries) or all of it.
    let replicas = f64::from(scenario.deployment.replicas.max(1));
    let share = stats.replicas.max(1) as f64 / replicas;
    let usd_per_hour = scenario.deployment.gpu.price_per_hour.map(|gpu| {
        let gpus = f64::from(scenario.deployment.tp) * replicas;
        let tier_gb = |k: TierKind| {
            scenario
                .tiers
                .and_then(|p| p.tier(k).map(|t| t.capacity_bytes as f64 / 1e9))
                .unwrap_or(0.0)
        };
        let memory = (tier_gb(TierKind::Host) * replicas + tier_gb(TierKind::Remote))
            * HOST_GB_HOUR
            + tier_gb(TierKind::Ssd) * replicas * SSD_GB_HOUR;
        (gpu * gpus + memory) * share
    });
    let usd_per_m_output_tokens = usd_per_hour.and_then(|usd| {
        let end_s = end.as_secs_f64();
        let per_hour = if end_s > 0.0 {
            output_tokens as f64 / end_s * 3600.0
        } else {
            0.0
        };
        (per_hour > 0.0).then(|| usd / per_hour * 1e6)
    });
    let link_util = |i: usize| {
        let span = end.as_nanos() as f64 * tiers.parts.max(1) as f64;
        if span > 0.0 {
            tiers.link_busy_ns[i] as f64 / span
        } else {
            0.0
        }
    };
    let requests = totals.requests;
    let duration_s = end.as_secs_f64();
    let per_s = |x: f64| {
        if duration_s > 0.0 {
            x / duration_s
        } else {
            0.0
        }
    };
    let mean = stats.mean_levels(end);
    Summary {
        requests,
        ok: totals.ok,
        oom,
        unservable,
        crashed,
        timeout: totals.timeout,
        oom_rate: if requests == 0 {
            0.0
        } else {
            (oom + unservable + crashed) as f64 / requests as f64
        },
        oom_events: stats.oom_events,
        preemptions: stats.preemptions,
        batch_ceiling: batch_ceiling(scenario, &scenario.cache, totals),
        batch_ceiling_inflight: if mean.kv > 0.0 && end.as_nanos() > 0 {
            // Both means are over [0, end]: their ratio is sequences per
            // budget at the average running sequence's footprint.
            let batch = stats.batch_ns as f64 / end.as_nanos() as f64;
            (batch / mean.kv).floor() as u64
        } else {
            0
        },
        batch_peak: stats.batch_peak,
        batch_mean: stats.batch_mean(),
        batch_bound_load: stats.limit_share(BatchLimit::Load),
        batch_bound_kv: stats.limit_share(BatchLimit::KvMemory),
        batch_bound_seqs: stats.limit_share(BatchLimit::MaxNumSeqs),
        batch_bound_tokens: stats.limit_share(BatchLimit::TokenBudget),
        ttft_p50,
        ttft_p90,
        ttft_p99,
        tpot_p50: latencies.tpot[0],
        tpot_p90: latencies.tpot[1],
        tpot_p99: latencies.tpot[2],
        tpot_mean: latencies.tpot_mean,
        e2e_p50,
        e2e_p99,
        throughput_tok_s: per_s(output_tokens as f64),
        goodput_rps,
        kv_peak_frac: stats.kv_peak_frac(),
        kv_mean_frac: mean.kv,
        kv_time_above_90: stats.kv_time_above_90(end),
        waste_used: mean.used,
        waste_reserved: mean.reserved,
        waste_internal: mean.internal,
        waste_external: mean.external,
        kv_cached_frac: mean.cached,
        swaps: stats.swaps,
        swap_bytes: stats.swap_bytes,
        prefix_hit_rate: if stats.prefix_lookup_tokens == 0 {
            0.0
        } else {
            stats.prefix_hit_tokens as f64 / stats.prefix_lookup_tokens as f64
        },
        prefix_hit_tokens: stats.prefix_hit_tokens,
        prefix_saved_bytes: stats.prefix_hit_tokens * scenario.budget.bytes_per_token,
        host_hit_rate: of_lookups(tiers.hit_tokens[0]),
        ssd_hit_rate: of_lookups(tiers.hit_tokens[1]),
        remote_hit_rate: of_lookups(tiers.hit_tokens[2]),
        total_hit_rate: of_lookups(stats.prefix_hit_tokens + tiers.hit_tokens_total()),
        host_hit_tokens: tiers.hit_tokens[0],
        ssd_hit_tokens: tiers.hit_tokens[1],
        remote_hit_tokens: tiers.hit_tokens[2],
        host_stored_bytes: tiers.stored_bytes[0],
        host_loaded_bytes: tiers.loaded_bytes[0],
        ssd_stored_bytes: tiers.stored_bytes[1],
        ssd_loaded_bytes: tiers.loaded_bytes[1],
        remote_stored_bytes: tiers.stored_bytes[2],
        remote_loaded_bytes: tiers.loaded_bytes[2],
        host_evicted_blocks: tiers.evicted_blocks[0],
        ssd_evicted_blocks: tiers.evicted_blocks[1],
        remote_evicted_blocks: tiers.evicted_blocks[2],
        pcie_h2d_util: link_util(0),
        pcie_d2h_util: link_util(1),
        ssd_util: link_util(2),
        nic_util: link_util(3),
        recompute_avoided_tokens: tiers.hit_tokens_total(),
        loads_declined: tiers.loads_declined,
        ttft_queue_p50,
        ttft_queue_p99,
        ttft_load_p50,
        ttft_load_p99,
        ttft_prefill_p50,
        ttft_prefill_p99,
        usd_per_hour,
        usd_per_m_output_tokens,
        gpus: u64::from(scenario.deployment.tp) * u64::from(scenario.deployment.replicas.max(1)),
        goodput_per_gpu: goodput_rps / (f64::from(scenario.deployment.tp) * replicas).max(1.0),
        ttft_transfer_p50: None,
        ttft_transfer_p99: None,
        ttft_first_step_p50: None,
        ttft_first_step_p99: None,
        kv_transfer_bytes: 0,
        kv_transfer_p50: None,
        kv_transfer_p99: None,
        kv_link_util: 0.0,
        kv_link_util_max: 0.0,
        decode_stall_rate: 0.0,
        decode_stall_p50: None,
        decode_stall_p99: None,
        prefill_batch_mean: 0.0,
        prefill_kv_mean_frac: 0.0,
        prefill_kv_peak_frac: 0.0,
        prefill_oom_rate: 0.0,
        decode_batch_mean: 0.0,
        decode_kv_mean_frac: 0.0,
        decode_kv_peak_frac: 0.0,
        decode_oom_rate: 0.0,
        duration_s,
        steps: stats.steps,
        busy_frac: if end.as_nanos() == 0 {
            0.0
        } else {
            stats.busy_ns as f64 / end.as_nanos() as f64
        },
        kv_budget_bytes: scenario.budget.kv_bytes,
        kv_bytes_per_token: scenario.budget.bytes_per_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_unstable_by(f64::total_cmp);
        v
    }

    #[test]
    fn selected_percentiles_equal_sorted_ones() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for n in [1usize, 2, 3, 10, 101, 1000, 5000] {
            let v: Vec<f64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Few distinct values: ties must not matter.
                    (x % 97) as f64 / 7.0
                })
                .collect();
            let s = sorted(v.clone());
            let qs = [0.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0];
            let mut keys: Vec<u64> = v.iter().copied().map(f64_key).collect();
            let got = percentiles_of_keys(&mut keys, qs, f64_of_key);
            for (q, g) in qs.iter().zip(got) {
                assert_eq!(g.map(f64::to_bits), percentile(&s, *q).map(f64::to_bits));
            }
        }
        assert_eq!(percentiles_of_keys(&mut [], [50.0], f64_of_key), [None]);
    }

    /// Durations selected as nanoseconds give the percentiles of their
    /// seconds, bit for bit, ties and the full range of a `u64` included.
    #[test]
    fn duration_percentiles_are_those_of_the_seconds() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for n in [1usize, 2, 3, 10, 101, 1000, 5000] {
            for spread in [7, 1_000_000_007, u64::MAX] {
                let mut nanos: Vec<u64> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x % spread
                    })
                    .collect();
                let secs: Vec<f64> = nanos
                    .iter()
                    .map(|&ns| SimDuration::from_nanos(ns).as_secs_f64())
                    .collect();
                let s = sorted(secs);
                let qs = [0.0, 50.0, 90.0, 99.0, 100.0];
                let got = duration_percentiles(&mut nanos, qs);
                for (q, g) in qs.iter().zip(got) {
                    assert_eq!(g.map(f64::to_bits), percentile(&s, *q).map(f64::to_bits));
                }
            }
        }
    }

    /// TTFT's load part: zero at every percentile when nothing loaded from
    /// a tier (the pass over it skipped), `None` when no request had a
    /// first token, and the loads' own percentiles when one did load.
    #[test]
    fn load_percentiles_with_and_without_loads() {
        let record = |i: u64, load_ns: u64| RequestRecord {
            id: i,
            arrival: SimTime::from_nanos(i),
            admitted: Some(SimTime::from_nanos(i + 10)),
            first_token: Some(SimTime::from_nanos(i + 1_000 + load_ns)),
            finished: Some(SimTime::from_nanos(i + 5_000 + load_ns)),
            prompt_tokens: 10,
            output_target: 5,
            output_tokens: 5,
            max_tokens: 5,
            samples: 1,
            session: None,
            turn: 1,
            preemptions: 0,
            hbm_hit_tokens: 0,
            tier_hit_tokens: 0,
            load: SimDuration::from_nanos(load_ns),
            outcome: Some(Outcome::Ok),
        };
        let unloaded: Vec<_> = (0..1000).map(|i| record(i, 0)).collect();
        assert_eq!(Latencies::exact(&unloaded).load, [Some(0.0); 2]);
        let no_first_token: Vec<_> = unloaded
            .iter()
            .map(|r| RequestRecord {
                first_token: None,
                ..*r
            })
            .collect();
        assert_eq!(Latencies::exact(&no_first_token).load, [None; 2]);
        // One request in ten loaded, for 1..=100 microseconds.
        let loaded: Vec<_> = (0..1000)
            .map(|i| record(i, if i % 10 == 0 { (i / 10 + 1) * 1_000 } else { 0 }))
            .collect();
        let secs: Vec<f64> = loaded.iter().map(|r| r.load.as_secs_f64()).collect();
        let s = sorted(secs);
        let got = Latencies::exact(&loaded).load;
        for (q, g) in [50.0, 99.0].iter().zip(got) {
            assert_eq!(g.map(f64::to_bits), percentile(&s, *q).map(f64::to_bits));
        }
        assert!(got[1].unwrap() > 0.0);
    }

    /// TPOT's percentiles and mean: none when no completed request has more
    /// than one token a sample (as on a prefill replica), else those of
    /// `tpot_s` over the requests that have it (`n` samples of 3 tokens in
    /// all: 1.5 a sample, so a TPOT).
    #[test]
    fn tpot_needs_more_than_one_token_a_sample() {
        let record = |i: u64, tokens: u32, samples: u32| RequestRecord {
            id: i,
            arrival: SimTime::from_nanos(i),
            admitted: Some(SimTime::from_nanos(i + 10)),
            first_token: Some(SimTime::from_nanos(i + 1_000)),
            finished: Some(SimTime::from_nanos(i + 5_000 + 7 * i)),
            prompt_tokens: 10,
            output_target: tokens,
            output_tokens: tokens,
            max_tokens: tokens,
            samples,
            session: None,
            turn: 1,
            preemptions: 0,
            hbm_hit_tokens: 0,
            tier_hit_tokens: 0,
            load: SimDuration::ZERO,
            outcome: Some(Outcome::Ok),
        };
        let one_each: Vec<_> = (0..1000)
            .map(|i| record(i, (i % 3 + 1) as u32, (i % 3 + 1) as u32))
            .collect();
        let l = Latencies::exact(&one_each);
        assert_eq!((l.tpot, l.tpot_mean), ([None; 3], None));
        let mixed: Vec<_> = (0..1000)
            .map(|i| match i % 4 {
                0 => record(i, 3, 2),
                1 => record(i, 1, 1),
                2 => record(i, 2, 2),
                _ => record(i, 2 + (i % 5) as u32, 1),
            })
            .collect();
        let tpots: Vec<f64> = mixed.iter().filter_map(RequestRecord::tpot_s).collect();
        assert_eq!(tpots.len(), 500);
        let l = Latencies::exact(&mixed);
        let s = sorted(tpots.clone());
        for (q, g) in [50.0, 90.0, 99.0].iter().zip(l.tpot) {
            assert_eq!(g.map(f64::to_bits), percentile(&s, *q).map(f64::to_bits));
        }
        let mean = tpots.iter().sum::<f64>() / tpots.len() as f64;
        assert_eq!(l.tpot_mean.map(f64::to_bits), Some(mean.to_bits()));
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), Some(2.5));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 100.0), Some(4.0));
        assert!((percentile(&v, 99.0).unwrap() - 3.97).abs() < 1e-12);
        assert_eq!(percentile(&[], 50.0), None);
    }
}
