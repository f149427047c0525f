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
    /// prefix scorer), unless it has `8` more unfinished requests than the
    /// least loaded replica; requests without a shared prefix go to the least
    /// loaded replica.
    PrefixAware,
}

impl Router {
    /// The name used in scenario files.
    pub const fn name(self) -> &'static str {
        match self {
            Router::RoundRobin => "round-robin",
            Router::LeastOutstanding => "least-outstanding",
            Router::LeastKv => "least-kv",
            Router::PrefixAware => "prefix-aware",
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
