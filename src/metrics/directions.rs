//! The metric vocabulary: every metric column a sweep writes, which of them
//! are counts, and which way each is better. `kvsim check` judges moves by it
//! and a scenario's `[check]` table is validated against it.

/// Metrics that are counts: compared exactly.
pub const COUNTS: [&str; 34] = [
    "requests",
    "ok",
    "oom",
    "unservable",
    "crashed",
    "timeout",
    "oom_events",
    "preemptions",
    "batch_ceiling",
    "batch_ceiling_inflight",
    "batch_peak",
    "steps",
    "swaps",
    "swap_bytes",
    "prefix_hit_tokens",
    "prefix_saved_bytes",
    "host_hit_tokens",
    "ssd_hit_tokens",
    "remote_hit_tokens",
    "host_stored_bytes",
    "host_loaded_bytes",
    "ssd_stored_bytes",
    "ssd_loaded_bytes",
    "remote_stored_bytes",
    "remote_loaded_bytes",
    "host_evicted_blocks",
    "ssd_evicted_blocks",
    "remote_evicted_blocks",
    "recompute_avoided_tokens",
    "loads_declined",
    "kv_budget_bytes",
    "kv_bytes_per_token",
    "gpus",
    "kv_transfer_bytes",
];

/// Which way a metric is better.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Better {
    /// Smaller values are better (latencies, failures, waste).
    Lower,
    /// Larger values are better (throughput, completions).
    Higher,
    /// No better direction, and the metric describes the experiment itself
    /// (requests, the KV budget): a move means a different experiment, so it
    /// always fails.
    Neither,
    /// No better direction, and the metric follows from the others (steps,
    /// batch sizes, KV occupancy): a faster engine moves it too, so a move
    /// fails only with `--fail-on change`.
    Follows,
}

/// Every metric column a sweep writes and which way it is better. A unit test
/// fails when a sweep column has no entry here, so a new metric cannot slip
/// past `kvsim check` without a decision.
///
/// Where better is arguable the metric has no direction: [`Better::Neither`]
/// for what defines the experiment (any move fails), [`Better::Follows`] for
/// what follows from the rest (a move fails only with `--fail-on change`:
/// an engine that got faster also takes fewer steps). Batch sizes, the
/// in-flight ceiling, the shares of time each limit held the batch and KV
/// occupancy follow, because more sequences or more KV in use can mean
/// better packing or a longer queue; `waste_used` is the share holding
/// actual tokens, not waste. Bytes a KV tier stored or loaded, link
/// utilisations and declined loads follow too: more traffic below HBM can
/// mean more reuse or more churn; a tier's hits and the recompute they
/// avoided are better higher, its evictions lower.
pub const DIRECTIONS: [(&str, Better); 98] = [
    ("requests", Better::Neither),
    ("ok", Better::Higher),
    ("oom", Better::Lower),
    ("unservable", Better::Lower),
    ("crashed", Better::Lower),
    ("timeout", Better::Lower),
    ("oom_rate", Better::Lower),
    ("oom_events", Better::Lower),
    ("preemptions", Better::Lower),
    ("batch_ceiling", Better::Higher),
    ("batch_ceiling_inflight", Better::Follows),
    ("batch_peak", Better::Follows),
    ("batch_mean", Better::Follows),
    ("batch_bound_load", Better::Follows),
    ("batch_bound_kv", Better::Follows),
    ("batch_bound_seqs", Better::Follows),
    ("batch_bound_tokens", Better::Follows),
    ("ttft_p50", Better::Lower),
    ("ttft_p90", Better::Lower),
    ("ttft_p99", Better::Lower),
    ("tpot_p50", Better::Lower),
    ("tpot_p90", Better::Lower),
    ("tpot_p99", Better::Lower),
    ("tpot_mean", Better::Lower),
    ("e2e_p50", Better::Lower),
    ("e2e_p99", Better::Lower),
    ("throughput_tok_s", Better::Higher),
    ("goodput_rps", Better::Higher),
    ("kv_peak_frac", Better::Follows),
    ("kv_mean_frac", Better::Follows),
    ("kv_time_above_90", Better::Follows),
    ("waste_used", Better::Follows),
    ("waste_reserved", Better::Lower),
    ("waste_internal", Better::Lower),
    ("waste_external", Better::Lower),
    ("kv_cached_frac", Better::Follows),
    ("swaps", Better::Lower),
    ("swap_bytes", Better::Lower),
    ("prefix_hit_rate", Better::Higher),
    ("prefix_hit_tokens", Better::Higher),
    ("prefix_saved_bytes", Better::Higher),
    ("host_hit_rate", Better::Higher),
    ("ssd_hit_rate", Better::Higher),
    ("remote_hit_rate", Better::Higher),
    ("total_hit_rate", Better::Higher),
    ("host_hit_tokens", Better::Higher),
    ("ssd_hit_tokens", Better::Higher),
    ("remote_hit_tokens", Better::Higher),
    ("host_stored_bytes", Better::Follows),
    ("host_loaded_bytes", Better::Follows),
    ("ssd_stored_bytes", Better::Follows),
    ("ssd_loaded_bytes", Better::Follows),
    ("remote_stored_bytes", Better::Follows),
    ("remote_loaded_bytes", Better::Follows),
    ("host_evicted_blocks", Better::Lower),
    ("ssd_evicted_blocks", Better::Lower),
    ("remote_evicted_blocks", Better::Lower),
    ("pcie_h2d_util", Better::Follows),
    ("pcie_d2h_util", Better::Follows),
    ("ssd_util", Better::Follows),
    ("nic_util", Better::Follows),
    ("recompute_avoided_tokens", Better::Higher),
    ("loads_declined", Better::Follows),
    ("ttft_queue_p50", Better::Lower),
    ("ttft_queue_p99", Better::Lower),
    ("ttft_load_p50", Better::Lower),
    ("ttft_load_p99", Better::Lower),
    ("ttft_prefill_p50", Better::Lower),
    ("ttft_prefill_p99", Better::Lower),
    ("usd_per_hour", Better::Lower),
    ("usd_per_m_output_tokens", Better::Lower),
    ("gpus", Better::Neither),
    ("goodput_per_gpu", Better::Higher),
    ("ttft_transfer_p50", Better::Lower),
    ("ttft_transfer_p99", Better::Lower),
    ("ttft_first_step_p50", Better::Lower),
    ("ttft_first_step_p99", Better::Lower),
    ("kv_transfer_bytes", Better::Follows),
    ("kv_transfer_p50", Better::Lower),
    ("kv_transfer_p99", Better::Lower),
    ("kv_link_util", Better::Follows),
    ("kv_link_util_max", Better::Follows),
    ("decode_stall_rate", Better::Lower),
    ("decode_stall_p50", Better::Lower),
    ("decode_stall_p99", Better::Lower),
    ("prefill_batch_mean", Better::Follows),
    ("prefill_kv_mean_frac", Better::Follows),
    ("prefill_kv_peak_frac", Better::Follows),
    ("prefill_oom_rate", Better::Lower),
    ("decode_batch_mean", Better::Follows),
    ("decode_kv_mean_frac", Better::Follows),
    ("decode_kv_peak_frac", Better::Follows),
    ("decode_oom_rate", Better::Lower),
    ("duration_s", Better::Follows),
    ("steps", Better::Follows),
    ("busy_frac", Better::Follows),
    ("kv_budget_bytes", Better::Neither),
    ("kv_bytes_per_token", Better::Neither),
];

/// Which way `metric` is better, if it is a metric a sweep writes.
pub fn better(metric: &str) -> Option<Better> {
    DIRECTIONS
        .iter()
        .find(|(m, _)| *m == metric)
        .map(|(_, b)| *b)
}

/// Metrics that take a tolerance: every metric but the counts.
pub fn toleranced_metrics() -> Vec<&'static str> {
    DIRECTIONS
        .iter()
        .map(|(m, _)| *m)
        .filter(|m| !COUNTS.contains(m))
        .collect()
}
