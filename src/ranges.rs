//! Physical ranges of kvsim's numeric inputs: the values a key can take and
//! still describe something real.
//!
//! A value outside its range is refused when the file is loaded (exit 2,
//! naming the key, the value and the range), never clamped or saturated:
//! an arrival rate of 1e-9 requests/s or a step overhead of 1e9 s would
//! otherwise push the simulated clock to the end of its 64-bit nanoseconds,
//! where every later instant is the same and requests "finish" with zero
//! latency. The bounds are wide (orders of magnitude beyond any deployment)
//! so no real scenario meets them; they exist to catch unit slips and typos.
//!
//! [`ALL`] lists every range with the keys it governs; `docs/ranges.md` is
//! generated from it (`cargo test --release --lib ranges` fails when the file
//! is stale). As a backstop for combinations no single range can see (a
//! million requests at one per hour), the engine stops any run whose
//! simulated clock passes [`HORIZON_S`].

use std::fmt::Write as _;

use crate::error::SpecError;

/// The latest simulated instant a run may reach, seconds (~317 years): well
/// inside the 584 years of u64 nanoseconds, so no instant a run computes
/// saturates.
pub const HORIZON_S: f64 = 1e10;

/// A closed interval of meaningful values, the low end optionally open.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Range {
    /// Smallest value (excluded when `lo_open`).
    pub lo: f64,
    /// Whether `lo` itself is excluded (a rate of 0 is not a rate).
    pub lo_open: bool,
    /// Largest value, included.
    pub hi: f64,
    /// Unit, as the docs and messages print it.
    pub unit: &'static str,
    /// Why the bounds are where they are.
    pub why: &'static str,
}

impl Range {
    /// `v` when it lies in the range; otherwise an error at `key` giving the
    /// value and the range.
    pub fn check(&self, key: &str, v: f64) -> Result<f64, SpecError> {
        let above_lo = if self.lo_open {
            v > self.lo
        } else {
            v >= self.lo
        };
        if v.is_finite() && above_lo && v <= self.hi {
            Ok(v)
        } else {
            Err(SpecError::new(
                key,
                format!(
                    "{} is outside its physical range {} ({})",
                    number(v),
                    self.interval(),
                    self.why
                ),
            ))
        }
    }

    /// The range as `(0, 1e7] requests/s`.
    pub fn interval(&self) -> String {
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        format!(
            "{}{}, {}]{unit}",
            if self.lo_open { '(' } else { '[' },
            number(self.lo),
            number(self.hi)
        )
    }
}

/// `1e7`, `0.01`, `86400`: short, and exact for the bounds used here.
pub fn number(v: f64) -> String {
    if v.is_finite() && v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

const fn closed(lo: f64, hi: f64, unit: &'static str, why: &'static str) -> Range {
    Range {
        lo,
        lo_open: false,
        hi,
        unit,
        why,
    }
}

const fn open(lo: f64, hi: f64, unit: &'static str, why: &'static str) -> Range {
    Range {
        lo,
        lo_open: true,
        hi,
        unit,
        why,
    }
}

/// Arrival rates of open-loop traffic.
pub const RATE: Range = closed(
    1e-6,
    1e7,
    "requests/s",
    "from one request in ~12 days to ten million a second",
);
/// A ramp's starting rate, which may be 0.
pub const RAMP_FROM: Range = closed(0.0, 1e7, "requests/s", "at most ten million a second");
/// Gamma arrivals' burstiness (shape): below 1e-3 nearly every gap is 0.
pub const BURSTINESS: Range = closed(
    1e-3,
    1e3,
    "",
    "a gamma shape: 1 is Poisson, smaller is burstier",
);
/// Spans of simulated time: a ramp, a run's duration.
pub const SPAN_S: Range = open(0.0, HORIZON_S, "s", "what 64-bit nanoseconds can simulate");
/// Think times between a user's requests or a session's turns.
pub const THINK_S: Range = closed(0.0, 86_400.0, "s", "at most a day between turns");
/// Latency objectives and timeouts.
pub const LATENCY_S: Range = open(0.0, 86_400.0, "s", "at most a day");
/// Fixed host cost of one engine step.
pub const STEP_OVERHEAD_S: Range = closed(
    0.0,
    1.0,
    "s",
    "a step's fixed host cost is microseconds to milliseconds",
);
/// Latency of one small all-reduce.
pub const ALLREDUCE_LATENCY_S: Range = closed(
    0.0,
    0.01,
    "s",
    "small all-reduces take microseconds, even over PCIe",
);
/// Time a crashed server takes to come back.
pub const RESTART_S: Range = closed(0.0, 86_400.0, "s", "at most a day");
/// Interval between timeline rows.
pub const TIMELINE_INTERVAL_S: Range = open(0.0, 86_400.0, "s", "at most a day");
/// Memory set aside per GPU beyond weights and activations.
pub const RUNTIME_RESERVE_GIB: Range =
    closed(0.0, 4096.0, "GiB", "no GPU has more than a few hundred GiB");
/// Bytes one swap may move in a step.
pub const SWAP_BYTES: Range = closed(0.0, 1e15, "bytes", "at most a petabyte");
/// Bandwidth and FLOP/s fractions.
pub const UTILIZATION: Range = open(
    0.0,
    1.0,
    "",
    "a fraction of a whole: bandwidth, FLOP/s or memory",
);
/// The multiple of the prefill term in the kv-aware router's cost.
pub const PREFILL_LOAD_SCALE: Range = closed(
    0.0,
    1000.0,
    "",
    "a weight of prefill blocks against held blocks; 0 ignores prefill load",
);
/// Prefill blocks a cached prompt block saves in the kv-aware router's cost.
pub const CACHE_HIT_WEIGHT: Range = closed(
    0.0,
    1.0,
    "",
    "a cached block saves at most the one block it spares from prefill",
);

/// GPU prices, USD per GPU-hour (0: hardware already paid for).
pub const PRICE_PER_HOUR: Range = closed(
    0.0,
    1000.0,
    "USD per GPU-hour",
    "on-demand cloud GPUs cost about 0.5-10 USD an hour",
);
/// Prices of host memory and SSD, USD per GB-hour (0: already paid for).
pub const PRICE_PER_GB_HOUR: Range = closed(
    0.0,
    0.1,
    "USD per GB-hour",
    "cloud DRAM costs about 0.004 and local SSD about 0.0001 USD per GB-hour; a price per \
     GB-month is 730 times more",
);
/// Relative precision of `kvsim plan`'s rate search.
pub const PLAN_PRECISION: Range = closed(
    1e-3,
    0.5,
    "",
    "a fraction of the rate; each probe spans objective / precision seconds of arrivals, so \
     finer than 0.1 % needs probes thousands of objectives long",
);
/// Runs per probe of `kvsim plan`.
pub const PLAN_REPLICATES: Range = closed(
    1.0,
    1000.0,
    "runs",
    "seeds per probe; beyond a few dozen only the run time grows",
);

/// Where a trace replay's window starts on the file's time axis.
pub const TRACE_START_S: Range =
    closed(0.0, HORIZON_S, "s", "what 64-bit nanoseconds can simulate");
/// A trace replay's rate scale.
pub const SPEEDUP: Range = closed(
    1e-6,
    1e6,
    "",
    "from a million times slower to a million times faster than the file",
);
/// The share of a trace's requests (or conversations) a replay keeps.
pub const SAMPLE: Range = open(0.0, 1.0, "", "a probability; 0 would keep nothing");
/// Tokens each hash id of a Mooncake trace names.
pub const TRACE_BLOCK_TOKENS: Range = closed(
    1.0,
    1_048_576.0,
    "tokens",
    "a block of at least one token, at most a million",
);

/// A KV tier's capacity.
pub const TIER_CAPACITY_GB: Range = open(
    0.0,
    1e7,
    "GB",
    "at most ten petabytes; a tier of 0 GB is no tier (leave it out)",
);
/// Bandwidth of a link or a tier's media.
pub const LINK_GBPS: Range = open(
    0.0,
    1e5,
    "GB/s",
    "a transfer needs a positive rate; no link moves 100 TB/s",
);
/// Fixed cost of a transfer or of one block copy.
pub const TRANSFER_LATENCY_US: Range = closed(0.0, 1e6, "us", "at most a second per transfer");

/// Every range and the keys it governs, for `docs/ranges.md`.
pub const ALL: [(&Range, &[&str]); 26] = [
    (
        &RATE,
        &[
            "traffic.arrival.rate (poisson, gamma, constant)",
            "traffic.arrival.to (ramp)",
            "plan.target_rate",
            "plan.start_rate",
            "plan.max_rate",
        ],
    ),
    (&RAMP_FROM, &["traffic.arrival.from (ramp)"]),
    (&BURSTINESS, &["traffic.arrival.burstiness (gamma)"]),
    (
        &SPAN_S,
        &[
            "duration_s",
            "traffic.arrival.over_s (ramp)",
            "traffic.arrival.duration_s (trace)",
        ],
    ),
    (&TRACE_START_S, &["traffic.arrival.start_s (trace)"]),
    (&SPEEDUP, &["traffic.arrival.speedup (trace)"]),
    (
        &SAMPLE,
        &[
            "traffic.arrival.sample (trace)",
            "traffic.lengths.sample (sharegpt)",
        ],
    ),
    (
        &TRACE_BLOCK_TOKENS,
        &["traffic.arrival.trace_block_tokens (mooncake)"],
    ),
    (
        &THINK_S,
        &[
            "traffic.arrival.think_s (closed)",
            "traffic.session.think_s",
        ],
    ),
    (
        &LATENCY_S,
        &[
            "slo.ttft_p99",
            "slo.tpot_p99",
            "slo.e2e_p99",
            "scheduler.queue_timeout_s",
        ],
    ),
    (&STEP_OVERHEAD_S, &["hardware.step_overhead_s"]),
    (&ALLREDUCE_LATENCY_S, &["hardware.allreduce_latency_s"]),
    (&TIER_CAPACITY_GB, &["cache.tiers[].capacity_gb"]),
    (
        &LINK_GBPS,
        &[
            "cache.tiers[].read_gbps",
            "cache.tiers[].write_gbps",
            "hardware.pcie_gbps",
            "hardware.nic_gbps",
            "deployment.link.gbps",
        ],
    ),
    (
        &TRANSFER_LATENCY_US,
        &[
            "cache.tiers[].latency_us",
            "hardware.pcie_block_us",
            "hardware.nic_latency_us",
            "deployment.link.latency_us",
        ],
    ),
    (&RESTART_S, &["scheduler.restart_s"]),
    (
        &PREFILL_LOAD_SCALE,
        &["hardware.kv_router.prefill_load_scale"],
    ),
    (
        &CACHE_HIT_WEIGHT,
        &[
            "hardware.kv_router.overlap_score_credit",
            "hardware.kv_router.host_cache_hit_weight",
            "hardware.kv_router.disk_cache_hit_weight",
            "hardware.kv_router.shared_cache_multiplier",
        ],
    ),
    (&TIMELINE_INTERVAL_S, &["output.timeline_interval_s"]),
    (&RUNTIME_RESERVE_GIB, &["hardware.runtime_reserve_gib"]),
    (&SWAP_BYTES, &["scheduler.swap_bytes"]),
    (
        &UTILIZATION,
        &[
            "hardware.mbu",
            "hardware.mfu",
            "hardware.memory_utilization",
            "engine.memory_fraction",
        ],
    ),
    (
        &PRICE_PER_HOUR,
        &["hardware.gpu.price_per_hour (inline GPU)", "plan.prices"],
    ),
    (
        &PRICE_PER_GB_HOUR,
        &["plan.prices.host_gb_hour", "plan.prices.ssd_gb_hour"],
    ),
    (&PLAN_PRECISION, &["plan.precision"]),
    (&PLAN_REPLICATES, &["plan.replicates"]),
];

/// `docs/ranges.md`: every range as a table row.
pub fn markdown() -> String {
    let mut s = String::from(
        "# Physical ranges of numeric keys\n\n\
         <!-- Generated from src/ranges.rs. Do not edit by hand: `cargo test --release --lib \
         ranges` fails when this file differs from the generator's output. -->\n\n\
         A value outside its range is refused when the scenario is loaded (exit 2, naming the \
         key, the value and the range); nothing is clamped. The bounds lie far beyond any real \
         deployment: they catch unit slips, not unusual setups. Beyond them, a run whose \
         simulated clock passes 1e10 s (~317 years) stops with exit 2. Counts and model \
         shapes have their own limits, given in the messages.\n\n\
         | keys | range | why |\n|---|---|---|\n",
    );
    for (range, keys) in ALL {
        // "traffic.arrival.rate (poisson)": the key in code, the note not.
        let keys: Vec<String> = keys
            .iter()
            .map(|k| match k.split_once(' ') {
                Some((key, note)) => format!("`{key}` {note}"),
                None => format!("`{k}`"),
            })
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            keys.join(", "),
            range.interval(),
            range.why
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_are_refused_with_key_value_and_range() {
        assert_eq!(RATE.check("traffic.arrival.rate", 25.0), Ok(25.0));
        let e = RATE
            .check("traffic.arrival.rate", 1e-9)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`traffic.arrival.rate`: 1e-9 is"), "{e}");
        assert!(e.contains("[1e-6, 1e7] requests/s"), "{e}");
        for bad in [f64::NAN, f64::INFINITY, -1.0, 2e7] {
            assert!(RATE.check("k", bad).is_err(), "{bad}");
        }
        // An open low end excludes it; a closed one includes it.
        assert!(UTILIZATION.check("k", 0.0).is_err());
        assert_eq!(UTILIZATION.check("k", 1.0), Ok(1.0));
        assert_eq!(THINK_S.check("k", 0.0), Ok(0.0));
        assert_eq!(UTILIZATION.interval(), "(0, 1]");
    }

    #[test]
    fn every_range_is_well_formed() {
        for (r, keys) in ALL {
            assert!(r.lo.is_finite() && r.hi.is_finite() && r.lo < r.hi, "{r:?}");
            assert!(!keys.is_empty() && !r.why.is_empty());
            // No span or rate reaches past the horizon.
            if r.unit == "s" {
                assert!(r.hi <= HORIZON_S, "{r:?}");
            }
        }
    }

    #[test]
    fn docs_ranges_md_is_generated_not_edited() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ranges.md");
        if std::env::var_os("KVSIM_WRITE_DOCS").is_some() {
            std::fs::write(&path, markdown()).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == markdown(),
            "docs/ranges.md is stale: regenerate it with \
             `KVSIM_WRITE_DOCS=1 cargo test --release --lib ranges`"
        );
    }
}
