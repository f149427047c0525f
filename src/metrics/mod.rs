//! Per-request records, per-step observations and the run summary
//! (docs/ARCHITECTURE.md#metrics). Times are [`SimTime`] here and seconds in `summary`.

pub mod directions;
pub mod disagg;
mod select;
pub mod stream;
mod summary;
pub mod timeline;

pub use summary::{Latencies, RecordTotals, Summary, percentile, summarize, summary_of};
pub use timeline::{DEFAULT_TIMELINE_MAX_ROWS, TimelineRecorder};

use serde::Serialize;

use crate::units::{SimDuration, SimTime};

/// How a request ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Generated all its output tokens.
    Ok,
    /// Failed because its sequence could not grow (`on_oom = "reject"`, or a
    /// sequence that cannot fit even alone).
    Oom,
    /// Could never fit (prompt or reservation larger than an empty cache, the
    /// model's context, or the step budget without chunked prefill).
    ///
    /// A prompt longer than `scheduler.max_batched_tokens` with chunked
    /// prefill off is this outcome, not `oom`, both at arrival and when a
    /// preempted sample's recomputed prompt (prompt plus what it had
    /// generated) outgrows the step: no amount of free memory would let a
    /// step take it (vLLM refuses such a configuration at start-up and ignores
    /// such a prompt). It is kept in this outcome rather than a new one
    /// because the definition above already names it; like every
    /// unservable request it counts in `oom_rate`, not in `oom` or
    /// `oom_events`.
    Unservable,
    /// Lost in, or refused during, a server crash.
    Crashed,
    /// Waited longer than `queue_timeout_s` for admission.
    Timeout,
}

impl Outcome {
    /// The name used in CSV files.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Oom => "oom",
            Outcome::Unservable => "unservable",
            Outcome::Crashed => "crashed",
            Outcome::Timeout => "timeout",
        }
    }

    /// Whether this outcome is a failure for memory (counted by `oom_rate`).
    pub const fn is_memory_failure(self) -> bool {
        matches!(self, Outcome::Oom | Outcome::Unservable | Outcome::Crashed)
    }
}

/// Everything kvsim knows about one request; a row of `requests.csv`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Arrival order, from 0.
    pub id: u64,
    /// When it arrived.
    pub arrival: SimTime,
    /// When it was first admitted to the batch.
    pub admitted: Option<SimTime>,
    /// When its first output token was emitted.
    pub first_token: Option<SimTime>,
    /// When it ended (any outcome).
    pub finished: Option<SimTime>,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens the model would generate if nothing failed.
    pub output_target: u32,
    /// Output tokens actually emitted.
    pub output_tokens: u32,
    /// The request's output cap.
    pub max_tokens: u32,
    /// Outputs it asked for (`n`); token counts above are summed over them.
    pub samples: u32,
    /// The multi-turn session it belongs to, numbered from 0 in start order.
    pub session: Option<u64>,
    /// Its turn in that session, from 1 (1 outside sessions).
    pub turn: u32,
    /// Times it was preempted.
    pub preemptions: u32,
    /// Prompt tokens found in HBM's prefix cache at its first admission.
    pub hbm_hit_tokens: u32,
    /// Prompt tokens loaded from KV tiers below HBM at its first admission.
    pub tier_hit_tokens: u32,
    /// How long that load took, from admission (zero without one).
    pub load: SimDuration,
    /// How it ended (`None` while in flight).
    pub outcome: Option<Outcome>,
}

impl RequestRecord {
    /// Time to first token.
    pub fn ttft(&self) -> Option<SimDuration> {
        self.first_token.map(|t| t - self.arrival)
    }

    /// Time per output token after the first, in seconds (vLLM benchmark
    /// definition; with `n` samples, per token of the mean sample); `None` for
    /// fewer than two tokens per sample.
    pub fn tpot_s(&self) -> Option<f64> {
        let per_sample = f64::from(self.output_tokens) / f64::from(self.samples.max(1));
        match (self.first_token, self.finished) {
            (Some(first), Some(end)) if per_sample > 1.0 => {
                Some((end - first).as_secs_f64() / (per_sample - 1.0))
            }
            _ => None,
        }
    }

    /// End-to-end latency.
    pub fn e2e(&self) -> Option<SimDuration> {
        self.finished.map(|t| t - self.arrival)
    }

    /// The queue part of TTFT: from arrival to first admission.
    pub fn queue(&self) -> Option<SimDuration> {
        self.admitted.map(|a| a.saturating_since(self.arrival))
    }

    /// The prefill part of TTFT: TTFT minus its queue part and its load
    /// (`load`), at least zero; `None` without a first token.
    pub fn prefill(&self) -> Option<SimDuration> {
        let rest = self
            .ttft()?
            .as_nanos()
            .saturating_sub(self.queue()?.as_nanos())
            .saturating_sub(self.load.as_nanos());
        Some(SimDuration::from_nanos(rest))
    }
}

/// One row of `timeline.csv`: the server right after a step was scheduled.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TimelineRow {
    /// Start of the step.
    pub time: SimTime,
    /// Sequences in the step's batch.
    pub running: u32,
    /// Requests waiting for admission.
    pub waiting: u32,
    /// Where the budget is, bytes (`kv`: held by sequences). The file's
    /// fractions are divided out when it is written.
    pub levels: ByteLevels,
    /// The step's duration.
    pub step: SimDuration,
}

impl TimelineRow {
    /// KV bytes held by sequences.
    pub fn kv_used_bytes(&self) -> u64 {
        self.levels.kv
    }

    /// Where the budget is, fractions of it (`kv`: `kv_used_bytes` over the
    /// budget).
    pub fn fractions(&self) -> MemoryLevels {
        self.levels.fractions()
    }
}

/// Where the KV budget is at one instant, as fractions of it (the
/// PagedAttention paper's memory-waste categories, Kwon et al. SOSP 2023 Fig. 2).
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct MemoryLevels {
    /// Held by sequences (`used + reserved + internal` plus any allocator
    /// rounding, shared blocks once).
    pub kv: f64,
    /// Token states actually stored.
    pub used: f64,
    /// Slots held for tokens not generated yet that will be.
    pub reserved: f64,
    /// Slots held that will never hold a token: beyond the true final length,
    /// or the unused tail of a block.
    pub internal: f64,
    /// Free memory the request at the head of the queue cannot use (holes too
    /// small for it in a contiguous address space), plus memory an allocator
    /// holds beyond what sequences asked for (a buddy allocator's rounding to
    /// a power of two; the PagedAttention paper's Fig. 2 counts both as
    /// external fragmentation).
    pub external: f64,
    /// Free memory holding cached prefix blocks no sequence references (kept
    /// for reuse, evicted least recently used first).
    pub cached: f64,
}

impl MemoryLevels {
    fn scaled_add(&mut self, other: &MemoryLevels, w: f64) {
        self.kv += other.kv * w;
        self.used += other.used * w;
        self.reserved += other.reserved * w;
        self.internal += other.internal * w;
        self.external += other.external * w;
        self.cached += other.cached * w;
    }
}

/// Where the KV budget is at one instant, in bytes: [`MemoryLevels`] before
/// the division by the budget. The engine records these, as integers, so
/// that their time integrals are exact: any grouping of steps (one at a
/// time, or a leap's in bulk) sums to the same bytes-nanoseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ByteLevels {
    /// The KV budget the levels are shares of.
    pub budget: u64,
    /// Held by sequences ([`MemoryLevels::kv`]).
    pub kv: u64,
    /// Token states actually stored.
    pub used: u64,
    /// Slots held for tokens not generated yet that will be.
    pub reserved: u64,
    /// Slots held that will never hold a token.
    pub internal: u64,
    /// Free memory the head of the queue cannot use, plus allocator rounding.
    pub external: u64,
    /// Free memory holding unreferenced cached prefix blocks.
    pub cached: u64,
}

impl ByteLevels {
    /// The levels as fractions of the budget (of 1 byte for an empty one).
    pub fn fractions(&self) -> MemoryLevels {
        MemoryLevels {
            kv: self.share(self.kv),
            used: self.share(self.used),
            reserved: self.share(self.reserved),
            internal: self.share(self.internal),
            external: self.share(self.external),
            cached: self.share(self.cached),
        }
    }

    /// `bytes` as a fraction of the budget (of 1 byte for an empty one).
    pub fn share(&self, bytes: u64) -> f64 {
        bytes as f64 / self.budget.max(1) as f64
    }

    /// Whether occupancy is at or above [`HIGH_OCCUPANCY`] (exactly 9/10 of
    /// the budget, in integers).
    fn high(&self) -> bool {
        u128::from(self.kv) * 10 >= u128::from(self.budget) * 9 && self.budget > 0
    }

    /// Adds the levels held for `ns` nanoseconds to `integral`, in the order
    /// of [`Collector::integral`].
    #[inline]
    fn integrate(&self, ns: u64, integral: &mut [u128; 6]) {
        let ns = u128::from(ns);
        let parts = [
            self.kv,
            self.used,
            self.reserved,
            self.internal,
            self.external,
            self.cached,
        ];
        for (sum, part) in integral.iter_mut().zip(parts) {
            *sum += u128::from(part) * ns;
        }
    }
}

/// Memory levels recorded over a run of steps in bulk (a leap's): each
/// step's levels times its duration, summed apart from the collector and
/// added to it once by [`Collector::absorb`]. The sums are integers, so the
/// collector ends as it would recording each step by [`Collector::level`].
#[derive(Clone, Debug)]
pub struct LevelSums {
    integral: [u128; 6],
    above_90_ns: u64,
    kv_peak_bytes: u64,
    /// The least `kv` at or above [`HIGH_OCCUPANCY`] of the budget
    /// ([`ByteLevels::high`] without its multiplications).
    high_from: u64,
}

impl LevelSums {
    /// Sums of levels of a cache of `budget` bytes.
    pub fn new(budget: u64) -> Self {
        // `kv * 10 >= budget * 9` is `kv >= ceil(budget * 9 / 10)`, which
        // is `budget - floor(budget / 10)` (with `budget = 10q + r`, both
        // are `9q + r`): a division by a constant, where the product's 128
        // bits took a call (every leap starts here).
        let high_from = if budget == 0 {
            u64::MAX
        } else {
            budget - budget / 10
        };
        LevelSums {
            integral: [0; 6],
            above_90_ns: 0,
            kv_peak_bytes: 0,
            high_from,
        }
    }

    /// Memory held at `levels` for `ns` nanoseconds.
    #[inline(always)]
    pub fn add(&mut self, levels: &ByteLevels, ns: u64) {
        levels.integrate(ns, &mut self.integral);
        invariant!(levels.high() == (levels.kv >= self.high_from));
        if levels.kv >= self.high_from {
            self.above_90_ns += ns;
        }
        self.kv_peak_bytes = self.kv_peak_bytes.max(levels.kv);
    }
}

/// Time-weighted and per-step statistics gathered while the engine runs.
///
/// Memory levels are a step function of time; [`Collector::level`] is called
/// whenever they may change, and integrates the previous levels over the
/// elapsed span. Nothing here grows with the run: it is O(1) memory.
#[derive(Clone, Debug, Default)]
pub struct Collector {
    last_time: SimTime,
    last: ByteLevels,
    /// The budget the levels are shares of (the last nonzero one recorded:
    /// an engine's cache keeps one budget).
    budget: u64,
    /// Integral of the levels over time, byte-nanoseconds: `kv`, `used`,
    /// `reserved`, `internal`, `external`, `cached`. Integers, so exact.
    integral: [u128; 6],
    /// Integral of the levels of merged replicas, fraction-nanoseconds
    /// ([`Collector::merge_replicas`]).
    merged: MemoryLevels,
    /// Nanoseconds spent at or above 90 % occupancy.
    above_90_ns: u64,
    /// Highest occupancy seen, bytes of `budget`.
    kv_peak_bytes: u64,
    /// Highest occupancy of merged replicas, a fraction of one's budget.
    merged_peak_frac: f64,
    /// Engine steps run.
    pub steps: u64,
    /// Sum over steps of their batch size.
    batch_sum: u64,
    /// Largest batch in a step.
    pub batch_peak: u32,
    /// Integral over steps of their batch, sequence-nanoseconds (the
    /// time-averaged batch while busy is this over `busy_ns`).
    pub batch_ns: u128,
    /// Nanoseconds of steps whose batch each [`BatchLimit`] held, in the
    /// order of [`BatchLimit::ALL`].
    pub limit_ns: [u64; 4],
    /// Nanoseconds the engine spent running steps.
    pub busy_ns: u64,
    /// Server crashes plus growth failures.
    pub oom_events: u64,
    /// Sequences evicted to make room.
    pub preemptions: u64,
    /// Of those, sequences swapped to host memory.
    pub swaps: u64,
    /// Bytes copied between GPU and host memory (both directions).
    pub swap_bytes: u64,
    /// Prompt tokens looked up for prefix reuse at admission.
    pub prefix_lookup_tokens: u64,
    /// Of those, tokens served from cached blocks (prefill skipped).
    pub prefix_hit_tokens: u64,
    /// KV tiers below HBM: hits, bytes moved, link time.
    pub tiers: TierTotals,
    /// Replicas merged into these statistics (0 or 1: one engine's).
    pub replicas: u64,
}

/// What a run's KV tiers below HBM did, per tier in the order host, ssd,
/// remote (`cache::tiers::TierKind::ALL`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TierTotals {
    /// Prompt tokens loaded from each tier instead of prefilled.
    pub hit_tokens: [u64; 3],
    /// Bytes read out of each tier for hits.
    pub loaded_bytes: [u64; 3],
    /// Bytes written into each tier.
    pub stored_bytes: [u64; 3],
    /// Blocks each tier evicted to make room.
    pub evicted_blocks: [u64; 3],
    /// Blocks each tier holds at the end of the run (every store complete).
    pub resident_blocks: [u64; 3],
    /// Nanoseconds each link was busy: PCIe host-to-GPU, PCIe GPU-to-host,
    /// SSD (the busier direction), NIC (the busier direction).
    pub link_busy_ns: [u64; 4],
    /// Admissions that loaded blocks from a tier.
    pub loads: u64,
    /// Tier hits recomputed because that was faster (`cache.load_if_cheaper`).
    pub loads_declined: u64,
    /// Replicas summed into these totals (link utilisation is per replica).
    pub parts: u64,
}

impl TierTotals {
    /// Adds `other`'s counts (a cluster's replicas).
    pub fn add(&mut self, other: &TierTotals) {
        fn sum<const N: usize>(a: &mut [u64; N], b: &[u64; N]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        sum(&mut self.hit_tokens, &other.hit_tokens);
        sum(&mut self.loaded_bytes, &other.loaded_bytes);
        sum(&mut self.stored_bytes, &other.stored_bytes);
        sum(&mut self.evicted_blocks, &other.evicted_blocks);
        sum(&mut self.resident_blocks, &other.resident_blocks);
        sum(&mut self.link_busy_ns, &other.link_busy_ns);
        self.loads += other.loads;
        self.loads_declined += other.loads_declined;
        self.parts += other.parts;
    }

    /// Tokens loaded from every tier.
    pub fn hit_tokens_total(&self) -> u64 {
        self.hit_tokens.iter().sum()
    }
}

/// What kept a step's batch from growing: the first of the engine's limits
/// that stopped admission (or made it evict), in the order the scheduler
/// meets them. A run's [`Summary`](summary::Summary) reports the share of
/// busy time each one held and names the one that held longest.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum BatchLimit {
    /// Nothing was waiting: the offered load, not the server, set the batch.
    #[default]
    Load,
    /// The KV cache could not take another sequence, or a running one could
    /// not grow (preemption, OOM).
    KvMemory,
    /// `scheduler.max_num_seqs` sequences were running.
    MaxNumSeqs,
    /// The step's token budget (`scheduler.max_batched_tokens`) was spent,
    /// or the prompt at the head of the queue does not fit what is left of
    /// it without chunked prefill.
    TokenBudget,
}

impl BatchLimit {
    /// Every limit, in the order of [`Collector::limit_ns`].
    pub const ALL: [BatchLimit; 4] = [
        BatchLimit::Load,
        BatchLimit::KvMemory,
        BatchLimit::MaxNumSeqs,
        BatchLimit::TokenBudget,
    ];

    /// How `summary.json` and the terminal summary name it.
    pub const fn name(self) -> &'static str {
        match self {
            BatchLimit::Load => "offered load",
            BatchLimit::KvMemory => "KV memory",
            BatchLimit::MaxNumSeqs => "max_num_seqs",
            BatchLimit::TokenBudget => "token budget",
        }
    }
}

/// Occupancy at or above which seed 000 says one long prompt can crash a server.
pub const HIGH_OCCUPANCY: f64 = 0.9;

impl Collector {
    /// Records that memory is at `levels` from `now` on.
    #[inline(always)]
    pub fn level(&mut self, now: SimTime, levels: ByteLevels) {
        let dt = now.saturating_since(self.last_time).as_nanos();
        // Levels recorded again at the same instant (a release and a
        // reservation in one event) held for no time: nothing to add.
        if dt > 0 {
            self.last.integrate(dt, &mut self.integral);
            if self.last.high() {
                self.above_90_ns += dt;
            }
        }
        self.last_time = now;
        self.last = levels;
        if levels.budget > 0 {
            invariant!(self.budget == 0 || self.budget == levels.budget);
            self.budget = levels.budget;
        }
        self.kv_peak_bytes = self.kv_peak_bytes.max(levels.kv);
    }

    /// Records steps run one after another from `start` to `end` whose
    /// levels `sums` adds up, the last at `last`: as [`Collector::level`]
    /// at each step's start would, `last` held from then on.
    pub fn absorb(&mut self, start: SimTime, sums: &LevelSums, last: ByteLevels, end: SimTime) {
        // The levels before the steps, up to their start.
        self.level(start, last);
        // The steps' own, `last` included up to `end`.
        for (total, part) in self.integral.iter_mut().zip(sums.integral) {
            *total += part;
        }
        self.above_90_ns += sums.above_90_ns;
        self.kv_peak_bytes = self.kv_peak_bytes.max(sums.kv_peak_bytes);
        self.last_time = end;
    }

    /// Highest occupancy seen, a fraction of the budget (of a replica's,
    /// merged).
    pub fn kv_peak_frac(&self) -> f64 {
        let own = self.kv_peak_bytes as f64 / self.budget.max(1) as f64;
        own.max(self.merged_peak_frac)
    }

    /// The integral of the levels over `[0, end]`, fraction-nanoseconds.
    fn integral_fractions(&self, end: SimTime) -> MemoryLevels {
        let mut c = self.clone();
        c.level(end, ByteLevels::default());
        let [kv, used, reserved, internal, external, cached] = c.integral;
        let budget = c.budget.max(1) as f64;
        let mut out = c.merged;
        out.scaled_add(
            &MemoryLevels {
                kv: kv as f64,
                used: used as f64,
                reserved: reserved as f64,
                internal: internal as f64,
                external: external as f64,
                cached: cached as f64,
            },
            1.0 / budget,
        );
        out
    }

    /// Time-averaged levels over `[0, end]`.
    pub fn mean_levels(&self, end: SimTime) -> MemoryLevels {
        let mut mean = MemoryLevels::default();
        if end.as_nanos() > 0 {
            mean.scaled_add(&self.integral_fractions(end), 1.0 / end.as_nanos() as f64);
        }
        mean
    }

    /// Records one engine step of `batch` sequences lasting `duration`, whose
    /// batch `limit` kept from growing.
    pub fn step(&mut self, batch: u32, duration: SimDuration, limit: BatchLimit) {
        self.steps(batch, 1, duration.as_nanos(), limit);
    }

    /// Records `count` engine steps of `batch` sequences lasting `ns`
    /// nanoseconds together, each held by `limit`: as many calls of
    /// [`Collector::step`] (the sums are integers).
    #[inline(always)]
    pub fn steps(&mut self, batch: u32, count: u64, ns: u64, limit: BatchLimit) {
        self.steps += count;
        self.batch_sum += u64::from(batch) * count;
        if count > 0 {
            self.batch_peak = self.batch_peak.max(batch);
        }
        self.busy_ns += ns;
        self.batch_ns += u128::from(batch) * u128::from(ns);
        self.limit_ns[limit as usize] += ns;
    }

    /// The share of step time during which `limit` held the batch (0 without
    /// steps).
    pub fn limit_share(&self, limit: BatchLimit) -> f64 {
        let total: u64 = self.limit_ns.iter().sum();
        if total == 0 {
            0.0
        } else {
            self.limit_ns[limit as usize] as f64 / total as f64
        }
    }

    /// Fraction of `[0, end]` spent at or above 90 % occupancy.
    pub fn kv_time_above_90(&self, end: SimTime) -> f64 {
        let mut c = self.clone();
        c.level(end, ByteLevels::default());
        if end.as_nanos() == 0 {
            0.0
        } else {
            c.above_90_ns as f64 / end.as_nanos() as f64
        }
    }

    /// The statistics of a cluster from its replicas', all observed up to
    /// `end`: memory levels are the replicas' mean (each is a fraction of a
    /// replica's budget, and the budgets are equal), so are the time above
    /// 90 % and the busy time; the KV peak and the batch peak are the largest
    /// any replica reached (the one that runs out is the one that matters);
    /// steps, batch sums and event counts add up, so `batch_mean` is the mean
    /// batch of a step on any replica; the time integral of the batch is a
    /// replica's mean, and the time each limit held adds up.
    pub fn merge_replicas(parts: &[Collector], end: SimTime) -> Collector {
        let mut out = Collector {
            last_time: end,
            replicas: parts.len() as u64,
            ..Collector::default()
        };
        if parts.is_empty() {
            return out;
        }
        let share = 1.0 / parts.len() as f64;
        let (mut above, mut busy, mut batch_ns) = (0u64, 0u64, 0u128);
        for p in parts {
            let mut c = p.clone();
            c.level(end, ByteLevels::default());
            out.merged.scaled_add(&c.integral_fractions(end), share);
            above += c.above_90_ns;
            busy += c.busy_ns;
            out.merged_peak_frac = out.merged_peak_frac.max(c.kv_peak_frac());
            out.steps += c.steps;
            out.batch_sum += c.batch_sum;
            out.batch_peak = out.batch_peak.max(c.batch_peak);
            batch_ns += c.batch_ns;
            for (sum, part) in out.limit_ns.iter_mut().zip(c.limit_ns) {
                *sum += part;
            }
            out.oom_events += c.oom_events;
            out.preemptions += c.preemptions;
            out.swaps += c.swaps;
            out.swap_bytes += c.swap_bytes;
            out.prefix_lookup_tokens += c.prefix_lookup_tokens;
            out.prefix_hit_tokens += c.prefix_hit_tokens;
            out.tiers.add(&c.tiers);
        }
        out.above_90_ns = above / parts.len() as u64;
        out.busy_ns = busy / parts.len() as u64;
        // A replica's mean, as the levels are, so that batch over occupancy
        // is one replica's.
        out.batch_ns = batch_ns / parts.len() as u128;
        out
    }

    /// Mean sequences per step.
    pub fn batch_mean(&self) -> f64 {
        if self.steps == 0 {
            0.0
        } else {
            self.batch_sum as f64 / self.steps as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leap's threshold of high occupancy is the collector's: `kv` at or
    /// above 90 % of the budget by the products' 128 bits, checked around
    /// it for budgets of every remainder modulo 10, up to the largest.
    #[test]
    fn high_occupancy_starts_where_the_products_say() {
        let budgets = (0..40u64).chain([1 << 40, (1 << 40) + 7, u64::MAX - 9, u64::MAX]);
        for budget in budgets {
            let sums = LevelSums::new(budget);
            let exact = (u128::from(budget) * 9).div_ceil(10);
            for kv in [exact.saturating_sub(1), exact, exact + 1] {
                let Ok(kv) = u64::try_from(kv) else { continue };
                let levels = ByteLevels {
                    budget,
                    kv,
                    ..ByteLevels::default()
                };
                assert_eq!(
                    kv >= sums.high_from,
                    levels.high(),
                    "budget {budget}, kv {kv}"
                );
            }
        }
    }
}
