//! Memory: the levels recorded after every step (used, reserved, internal
//! and external waste, cached), releasing a sequence's KV, preemption
//! (recompute or swap) and a simulated crash.

use super::{Engine, Event, Seq, Swapped, Waiting};
use crate::cache::{MemoryUsage, SeqId, SeqInfo};
use crate::hardware::cost::CostModel;
use crate::metrics::{ByteLevels, Outcome};
use crate::scheduler::OnOom;

impl<'s, C: CostModel> Engine<'s, C> {
    /// Where the KV budget is now: stored tokens, reservations that will be
    /// filled, slack that never will be, and free space the head of the queue
    /// cannot use.
    pub(super) fn memory_levels(&self) -> ByteLevels {
        if self.dead > 0 || self.fast.as_ref().is_some_and(|f| f.lazy) {
            return self.fast_levels();
        }
        let usage = self.cache.usage();
        let (reserved, internal, slack) = match self.running_slack.get() {
            Some(sums) if self.busy => sums,
            _ => {
                let sums = self.running_slack();
                if self.busy {
                    self.running_slack.set(Some(sums));
                }
                sums
            }
        };
        let external = self.unusable_for_head();
        // What is held and is not slack holds tokens. (This equals the cache's
        // stored bytes, except where a forked sequence shares a block that has
        // partly slid out of a window: the cache counts such a block whole.)
        levels_of_usage(&usage, reserved, internal, external, slack)
    }

    /// The running sequences' reserved, internal and rounding bytes, each
    /// read from the cache. O(running).
    fn running_slack(&self) -> (u64, u64, u64) {
        let (mut reserved, mut internal, mut slack) = (0u64, 0u64, 0u64);
        for s in &self.running {
            // An allocator's rounding is held but belongs to no token, now or
            // later: external fragmentation (as the PagedAttention paper's
            // Fig. 2 counts a buddy allocator's), not this sequence's slack.
            let rounding = self.cache.allocator_slack_bytes(s.slot);
            slack += rounding;
            let held = self.cache.held_bytes(s.slot) - rounding;
            let kept = self.layout.kept_bytes(s.cached_tokens()).min(held);
            let fill = s.final_bytes.min(held).max(kept);
            reserved += fill - kept;
            internal += held - fill;
        }
        (reserved, internal, slack)
    }

    /// Free bytes the sample at the head of the queue cannot use (holes too
    /// small for it: external fragmentation); 0 with nothing waiting.
    pub(super) fn unusable_for_head(&self) -> u64 {
        if !self.holes {
            return 0;
        }
        self.waiting.front().map_or(0, |w| {
            let tokens = self.records[w.req as usize].prompt_tokens + w.generated;
            self.cache.unusable_free_bytes(&SeqInfo {
                id: 0,
                tokens,
                reserve: self.reservation(w.req, w.output, tokens),
                content: None,
            })
        })
    }

    /// Integrates memory levels up to now and records the current ones.
    pub(super) fn record_levels(&mut self) -> ByteLevels {
        let levels = self.memory_levels();
        self.stats.level(self.now, levels);
        levels
    }

    pub(super) fn release(&mut self, slot: SeqId) {
        self.cache.release(slot);
        self.free_slots.push(slot);
    }

    /// Evicts `seq` to make room: its KV goes to host memory if the scheduler
    /// swaps and host memory has room, else it is dropped and recomputed later.
    pub(super) fn preempt(&mut self, seq: Seq) {
        self.stats.preemptions += 1;
        self.records[seq.req as usize].preemptions += 1;
        let bytes = self.cache.held_bytes(seq.slot);
        let swappable = self.cfg.on_oom == OnOom::PreemptSwap && seq.decoding();
        self.release(seq.slot);
        if swappable && self.swap_used + bytes <= self.swap_capacity {
            self.swap_used += bytes;
            self.pending_swap_bytes += bytes;
            self.stats.swaps += 1;
            self.stats.swap_bytes += bytes;
            self.swapped.push_back(Swapped { seq, bytes });
        } else {
            let content = self.contents.put(seq.content);
            self.push_waiting_front(Waiting {
                req: seq.req,
                output: seq.output,
                generated: seq.generated,
                fork: seq.fork,
                content,
            });
        }
    }

    /// The server process dies: every request in it fails, and it is down for
    /// `restart_s`.
    pub(super) fn crash(&mut self) {
        let back = self.now + self.cfg.restart;
        self.down_until = Some(back);
        self.events.push(back, Event::Restart);
        self.cache.reset();
        self.free_slots.clear();
        self.next_slot = 0;
        self.swap_used = 0;
        self.pending_swap_bytes = 0;
        let mut in_flight: Vec<u32> = self.running.drain(..).map(|s| s.req).collect();
        in_flight.extend(self.waiting.drain(..).map(|w| w.req));
        self.waiting_tokens = 0;
        self.contents.clear();
        in_flight.extend(self.swapped.drain(..).map(|s| s.seq.req));
        for id in in_flight {
            // Samples of one request share its record: end it once.
            if self.records[id as usize].outcome.is_none() {
                self.end_request(id, Outcome::Crashed);
            }
        }
        self.stats.level(self.now, ByteLevels::default());
    }
}

/// The memory levels of a cache of `budget` bytes with `allocated` held and
/// `cached` in unreferenced prefix blocks, of whose allocated bytes
/// `reserved`, `internal` and the allocator's `rounding` are slack, plus
/// `external` unusable free bytes: what holds tokens is the rest of the
/// allocation. Rounding is reported as external fragmentation.
#[inline(always)]
pub(super) fn levels_of(
    budget: u64,
    allocated: u64,
    cached: u64,
    reserved: u64,
    internal: u64,
    external: u64,
    rounding: u64,
) -> ByteLevels {
    let slack = (reserved + internal + rounding).min(allocated);
    ByteLevels {
        budget,
        kv: allocated,
        used: allocated - slack,
        reserved,
        internal,
        external: external + rounding,
        cached,
    }
}

/// [`levels_of`] a cache with `usage`.
#[inline(always)]
pub(super) fn levels_of_usage(
    usage: &MemoryUsage,
    reserved: u64,
    internal: u64,
    external: u64,
    rounding: u64,
) -> ByteLevels {
    levels_of(
        usage.budget,
        usage.allocated,
        usage.cached,
        reserved,
        internal,
        external,
        rounding,
    )
}
