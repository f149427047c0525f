//! Continuous (iteration-level) batching, as vLLM does it
//! (docs/ARCHITECTURE.md#engine-loop).
//!
//! Every step, running sequences decode one token each (oldest first); then
//! waiting requests are admitted first-come-first-served while `max_num_seqs`,
//! `max_batched_tokens` and the cache allow. Prompts are prefilled whole, or in
//! chunks when `chunked_prefill` is on. When a running sequence cannot grow, the
//! [`OnOom`] rule decides what happens. The engine (`crate::engine`) applies the
//! decisions and owns time; this module owns the rules.

use serde::{Deserialize, Serialize};

use crate::model::Span;
use crate::units::SimDuration;

/// When a waiting request may be admitted.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Admission {
    /// Only when the policy's whole reservation fits (no OOM can follow).
    Reserve,
    /// As soon as the prompt fits now (growth may fail later).
    Optimistic,
}

impl Admission {
    /// The name used in scenario files.
    pub const fn name(self) -> &'static str {
        match self {
            Admission::Reserve => "reserve",
            Admission::Optimistic => "optimistic",
        }
    }
}

/// Where a cluster's load balancer sends each request (`hardware.router`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Router {
    /// Each replica in turn, blind to load (nginx's and Kubernetes
    /// Services' default).
    #[default]
    RoundRobin,
    /// The replica with the fewest unfinished requests (waiting, running or
    /// swapped), as Envoy's `LEAST_REQUEST` and vLLM's production stack do.
    LeastOutstanding,
    /// The replica with the least KV memory allocated: memory-aware
    /// balancing, which keeps long requests from piling onto one replica.
    LeastKv,
    /// The replica that was last sent the request's shared prefix, so its
    /// cached blocks are reused (SGLang's cache-aware router, llm-d's
    /// prefix scorer), unless it has more than `hardware.session_imbalance`
    /// (default [`DEFAULT_IMBALANCE`]) unfinished requests above the least
    /// loaded replica; requests without a shared prefix go to the least
    /// loaded replica.
    PrefixAware,
    /// A session's turns go to the replica that served its previous turn,
    /// whose cache holds the conversation so far: llm-d's
    /// `session-affinity-scorer` (`llm-d/llm-d-inference-scheduler`,
    /// `pkg/epp/framework/plugins/scheduling/scorer/sessionaffinity/session_affinity.go`),
    /// which scores 1 for the endpoint that served the session's earlier
    /// requests (named in its `x-session-token` header) and 0 for the others. llm-d adds the score to its other scorers' weighted sum;
    /// kvsim keeps the prefix-aware router's balance rule instead: unless
    /// that replica has more than `hardware.session_imbalance` (default
    /// [`DEFAULT_IMBALANCE`]) unfinished requests above the least loaded
    /// one, in which case the least loaded one serves the turn and becomes
    /// the session's home. First turns and requests outside sessions go to
    /// the least loaded replica.
    SessionAffinity,
    /// The replica with the lowest cost in NVIDIA Dynamo's KV router
    /// (`ai-dynamo/dynamo`, `lib/kv-router/src/scheduling/selector.rs`,
    /// `DefaultWorkerSelector::worker_logit`; docs/design/kv-tiers.md 3.1):
    /// the prefill blocks it would still have to compute (its queued prompt
    /// work plus this prompt, less the blocks of this prompt it already
    /// caches) plus the KV blocks it would hold with the request (those it
    /// holds now and the request's blocks its live sequences do not already
    /// hold). See [`KvRouterConfig::logit`]. Ties go to the lowest replica
    /// index (Dynamo breaks them at random).
    KvAware,
}

/// Unfinished requests a session's or a shared prefix's home replica may
/// have above the least loaded replica before an affinity router
/// ([`Router::SessionAffinity`], [`Router::PrefixAware`]) sends the request
/// elsewhere: cache affinity is worth some queueing, not unbounded queueing
/// (SGLang's router balances the same way, with an absolute threshold on
/// outstanding requests). `hardware.session_imbalance` overrides it.
pub const DEFAULT_IMBALANCE: u32 = 8;

/// How many leading blocks of a request's prompt a replica holds in each KV
/// tier, the overlap Dynamo's router credits (docs/design/kv-tiers.md 3.1).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TierOverlap {
    /// Leading blocks published in the replica's GPU cache (its prefix
    /// index): Dynamo's device overlap.
    pub hbm: u64,
    /// Of `hbm`, the blocks the replica's live sequences hold: the request
    /// would share them, so they add nothing to its active blocks.
    pub hbm_held: u64,
    /// Further blocks in host memory (a lower KV tier).
    pub host: u64,
    /// Further blocks on local disk.
    pub ssd: u64,
    /// Further blocks in a remote tier shared by the replicas.
    pub remote: u64,
}

/// The weights of [`Router::KvAware`]'s cost (`[hardware.kv_router]`), named
/// and defaulted as Dynamo's `KvRouterConfig` (`lib/kv-router/src/config.rs`,
/// `impl Default for KvRouterConfig`).
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct KvRouterConfig {
    /// Multiplies the prefill term (Dynamo's default 1.0; the deprecated
    /// `overlap_score_weight` sets it).
    pub prefill_load_scale: f64,
    /// Prefill blocks saved per block the replica holds in GPU memory
    /// (default 1.0, range 0 to 1).
    pub overlap_score_credit: f64,
    /// Prefill blocks saved per block in host memory (default 0.75).
    pub host_cache_hit_weight: f64,
    /// Prefill blocks saved per block on disk (default 0.25).
    pub disk_cache_hit_weight: f64,
    /// Prefill blocks saved per block in the shared remote tier: 0.5, the
    /// value Dynamo's CLI sets when the shared cache is on ("each shared
    /// cache hit counts as half a device-local hit"; the library's default
    /// is 0, for no shared cache).
    pub shared_cache_multiplier: f64,
}

impl Default for KvRouterConfig {
    fn default() -> Self {
        KvRouterConfig {
            prefill_load_scale: 1.0,
            overlap_score_credit: 1.0,
            host_cache_hit_weight: 0.75,
            disk_cache_hit_weight: 0.25,
            shared_cache_multiplier: 0.5,
        }
    }
}

impl KvRouterConfig {
    /// Dynamo's cost of sending a prompt of `isl` tokens to a replica that
    /// has `active_prefill_tokens` prompt tokens still to prefill, holds
    /// `held_blocks` KV blocks of `block_size` tokens and caches `overlap`
    /// of the prompt's leading blocks; lower is better:
    ///
    /// ```text
    /// prefill_load_scale × max(0, (active_prefill_tokens + isl) / block_size − credit)
    ///   + decode_blocks
    /// credit        = overlap_score_credit × hbm + host_cache_hit_weight × host
    ///               + disk_cache_hit_weight × ssd + shared_cache_multiplier × remote
    /// decode_blocks = held_blocks + ceil(isl / block_size) − hbm_held
    /// ```
    ///
    /// `decode_blocks` is Dynamo's `potential_decode_blocks`: the blocks
    /// active on the replica once the request joins, i.e. those held now
    /// plus the request's blocks not already held by a live sequence there
    /// (`WorkerLoadProjection::additional_active_blocks`, "request blocks not
    /// already shared with active sequences on this worker"). Left out, as
    /// their defaults are 0 or unconfirmed (kv-tiers.md 3.1): the overlap
    /// credit's decay with load imbalance, the active-request term and
    /// temperature sampling (temperature 0 is the minimum). Plain `f64`
    /// arithmetic in a fixed order: the same inputs give the same cost on
    /// every machine.
    pub fn logit(
        &self,
        block_size: u32,
        active_prefill_tokens: u64,
        isl: u32,
        overlap: TierOverlap,
        held_blocks: u64,
    ) -> f64 {
        let bs = block_size.max(1);
        let raw_prefill_blocks = (active_prefill_tokens as f64 + f64::from(isl)) / f64::from(bs);
        let credit = self.overlap_score_credit * overlap.hbm as f64
            + self.host_cache_hit_weight * overlap.host as f64
            + self.disk_cache_hit_weight * overlap.ssd as f64
            + self.shared_cache_multiplier * overlap.remote as f64;
        let request_blocks = u64::from(isl.div_ceil(bs));
        let decode_blocks = held_blocks + request_blocks - overlap.hbm_held.min(request_blocks);
        self.prefill_load_scale * (raw_prefill_blocks - credit).max(0.0) + decode_blocks as f64
    }
}

impl Router {
    /// The name used in scenario files.
    pub const fn name(self) -> &'static str {
        match self {
            Router::RoundRobin => "round-robin",
            Router::LeastOutstanding => "least-outstanding",
            Router::LeastKv => "least-kv",
            Router::PrefixAware => "prefix-aware",
            Router::SessionAffinity => "session-affinity",
            Router::KvAware => "kv-aware",
        }
    }
}

/// What happens when a running sequence cannot grow.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnOom {
    /// The naive server of the seeds: the process dies, every request in it
    /// fails, and it is down for `restart_s`.
    Crash,
    /// The sequence that cannot grow fails; others go on.
    Reject,
    /// vLLM's default: the most recently admitted sequence is evicted, requeued
    /// at the front, and its prompt and generated tokens prefilled again later.
    PreemptRecompute,
    /// vLLM V0's alternative: the evicted sequence's KV is copied to host
    /// memory over PCIe (time charged to the step) and copied back before it
    /// resumes; recompute when host memory (`swap_bytes`) is full.
    PreemptSwap,
}

impl OnOom {
    /// The name used in scenario files.
    pub const fn name(self) -> &'static str {
        match self {
            OnOom::Crash => "crash",
            OnOom::Reject => "reject",
            OnOom::PreemptRecompute => "preempt-recompute",
            OnOom::PreemptSwap => "preempt-swap",
        }
    }
}

/// Validated scheduler settings.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SchedulerConfig {
    /// Most sequences running at once.
    pub max_num_seqs: u32,
    /// Most tokens (decode + prefill) in one step.
    pub max_batched_tokens: u32,
    /// Whether prompts may be split across steps.
    pub chunked_prefill: bool,
    /// Admission rule.
    pub admission: Admission,
    /// Out-of-memory rule.
    pub on_oom: OnOom,
    /// Downtime after a crash.
    pub restart: SimDuration,
    /// Longest wait for admission before a request times out.
    pub queue_timeout: Option<SimDuration>,
    /// Host memory for swapped-out KV, bytes (whole replica).
    pub swap_bytes: u64,
}

/// Query-key pairs scored when `k` new tokens are appended to a sequence that
/// already has `p` tokens, each new token attending to what its layer keeps
/// (`span`): `sum over j in 1..=k of span.kept(p + j)`. In closed form, so a
/// prefill of a million tokens costs no more to price than a decode step.
pub fn attention_pairs(p: u32, k: u32, span: Span) -> u64 {
    let (p, k) = (u64::from(p), u64::from(k));
    // Sum of (p+1) ..= (p+k), in u128: for contexts near u32::MAX the product
    // of two u32-sized terms leaves 64 bits (then saturates; it is a price).
    let tri = |from: u64, to: u64| {
        let t = (u128::from(from) + u128::from(to)) * u128::from(to + 1 - from) / 2;
        u64::try_from(t).unwrap_or(u64::MAX)
    };
    if k == 0 {
        return 0;
    }
    match span {
        Span::Window(w) if p + k > u64::from(w) => {
            let w = u64::from(w);
            // Terms below the window grow; the rest are capped at w.
            let uncapped_to = w.max(p); // the last term that is not capped
            let growing = if p < uncapped_to {
                tri(p + 1, uncapped_to)
            } else {
                0
            };
            let growing_terms = uncapped_to.saturating_sub(p);
            growing.saturating_add((k - growing_terms).saturating_mul(w))
        }
        Span::Chunk(c) => {
            // S(n) = sum over j in 1..=n of ((j - 1) mod c) + 1: whole chunks
            // contribute c(c+1)/2 each, the last partial one r(r+1)/2.
            let c = u128::from(c.max(1));
            let s = |n: u64| {
                let (q, r) = (u128::from(n) / c, u128::from(n) % c);
                q * (c * (c + 1) / 2) + r * (r + 1) / 2
            };
            u64::try_from(s(p + k) - s(p)).unwrap_or(u64::MAX)
        }
        _ => tri(p + 1, p + k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(p: u32, k: u32, span: Span) -> u64 {
        (1..=k).map(|j| u64::from(span.kept(p + j))).sum()
    }

    #[test]
    fn kv_router_logit_is_dynamos_cost() {
        let kv = KvRouterConfig::default();
        let none = TierOverlap::default();
        // 160 queued tokens and a 100-token prompt: 260 / 16 = 16.25
        // prefill blocks; 40 held blocks plus the prompt's 7.
        assert_eq!(kv.logit(16, 160, 100, none, 40), 16.25 + 47.0);
        // 5 cached blocks (2 held by a live sequence), 3 host and 4 on disk:
        // a credit of 5 + 0.75 * 3 + 0.25 * 4 = 8.25; 5 new active blocks.
        let tiers = TierOverlap {
            hbm: 5,
            hbm_held: 2,
            host: 3,
            ssd: 4,
            remote: 0,
        };
        assert_eq!(kv.logit(16, 160, 100, tiers, 40), 8.0 + 45.0);
        // The prefill term never goes below 0; the remote tier counts half.
        let remote = TierOverlap {
            remote: 100,
            ..none
        };
        assert_eq!(kv.logit(16, 0, 100, remote, 0), 7.0);
        assert_eq!(
            kv.logit(16, 0, 160, TierOverlap { remote: 2, ..none }, 0),
            9.0 + 10.0
        );
        // Weights scale their terms.
        let scaled = KvRouterConfig {
            prefill_load_scale: 2.0,
            overlap_score_credit: 0.5,
            ..kv
        };
        let hbm = TierOverlap { hbm: 4, ..none };
        assert_eq!(scaled.logit(16, 0, 160, hbm, 0), 2.0 * (10.0 - 2.0) + 10.0);
    }

    #[test]
    fn attention_pairs_match_the_sum() {
        for p in [0, 1, 5, 15, 16, 100] {
            for k in [0, 1, 2, 7, 64] {
                for span in [
                    Span::All,
                    Span::Window(1),
                    Span::Window(8),
                    Span::Window(16),
                    Span::Window(50),
                    Span::Window(1000),
                    Span::Chunk(1),
                    Span::Chunk(8),
                    Span::Chunk(16),
                    Span::Chunk(50),
                    Span::Chunk(1000),
                ] {
                    assert_eq!(
                        attention_pairs(p, k, span),
                        brute(p, k, span),
                        "p={p} k={k} span={span:?}"
                    );
                }
            }
        }
    }
}
