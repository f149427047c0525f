//! The fast path: decode steps in O(1) work, plus O(log batch) per sequence
//! event (joining the batch, entering its last block, finishing).
//!
//! # Why it is exact
//!
//! In the common case (no window, no prefix caching, one sample,
//! `max_num_seqs <= max_batched_tokens`; paged placement with optimistic
//! admission, or reserve admission with any placement) a step
//! that has enough free memory for every running sequence to grow does the
//! same thing to each decoding sequence: its context and its generated count
//! go up by one. (Decoders always come first in the batch: only the most
//! recently admitted sequence can be part-way through a chunked prefill, so
//! the decoders take their tokens before the budget can run out.) So a running sequence is kept *lazily*: its
//! `context` and `generated` are as of [`Seq::since`], and each fast step
//! completed since adds one to both. Everything a step needs from the decoders is
//! an integer aggregate kept as sequences join and leave; the few sequences
//! prefilling in the step (a pending chunked prefill, the step's admissions)
//! are visited one by one, as the straightforward engine does:
//!
//! - Step work: with no window, attention reads `bytes_per_token * context`
//!   bytes and does `(context + 1) * Σ_g layers_g * flops_per_pair_g` FLOPs
//!   per decoding sequence,
//!   so the batch's totals follow from the sum of contexts, which grows by the
//!   number of decoders per step. Integer sums, so the step times (and
//!   everything downstream) are bit-identical.
//! - New blocks: a sequence needs one exactly when its context is a multiple of
//!   the block size. Context minus fast steps is constant per sequence, so
//!   sequences are counted by that *phase* modulo the block size, and a step
//!   needs `count[phase]` blocks, charged to the cache at once
//!   ([`PagedCache::defer`](crate::cache::PagedCache::defer)); each sequence's
//!   table catches up when it is next looked at
//!   ([`PagedCache::settle`](crate::cache::PagedCache::settle)).
//! - Finishing: a sequence finishes after a known number of steps; a
//!   [`Calendar`] of steps yields the step's finishers, sorted by entry order
//!   (batch order, the order the straightforward engine ends them in, which
//!   fixes the order of follow-up events and random draws).
//! - Memory waste: held minus stored is `allocated - bytes_per_token * Σ
//!   tokens`; of it, the part never to be filled (*internal*) is, per
//!   sequence, 0 until it enters the block its final token falls in and a
//!   constant from then on, so it changes only at that (calendar-scheduled)
//!   step.
//!
//! - Reservations: with reserve admission every sequence holds room for its
//!   final length from its admission (in a contiguous region, first-fit or
//!   buddy, or in paged blocks with spares), so a decode step allocates
//!   nothing and cannot run out of memory, and each decoder's waste is
//!   constant while it decodes: what it holds beyond its final length is
//!   internal, the allocator's rounding external, and the rest of its final
//!   length reserved. The head of the queue's unusable holes (external
//!   fragmentation) are looked up at each step as the straightforward engine
//!   does.
//!
//! Whatever does not fit (a step that would run out of blocks, so the
//! scheduler must preempt or fail sequences; a swapped sequence to bring
//! back; an empty batch) is done by the straightforward engine after
//! [`Engine::materialize_all`] brings every sequence up to date; the fast path
//! picks up again at the next step.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Engine, Seq};
use crate::cache::Placement;
use crate::hardware::cost::{CostModel, StepWork};
use crate::metrics::{MemoryLevels, Outcome};
use crate::scheduler::Admission;

/// Values due at future fast steps: a ring of buckets, one per step of the
/// next [`Calendar::SPAN`], and a heap for later ones. O(1) per entry for
/// anything due within the span (most sequences), O(log n) beyond; buckets
/// keep their capacity, so steady state allocates nothing.
#[derive(Debug)]
struct Calendar {
    ring: Vec<Vec<u64>>,
    later: BinaryHeap<Reverse<(u64, u64)>>,
}

impl Calendar {
    /// Steps the ring covers.
    const SPAN: u64 = 512;

    fn new() -> Self {
        Calendar {
            ring: (0..Self::SPAN).map(|_| Vec::new()).collect(),
            later: BinaryHeap::new(),
        }
    }

    /// Schedules `value` at step `at`; `now` is the earliest step not yet
    /// taken (`at >= now`).
    fn push(&mut self, now: u64, at: u64, value: u64) {
        invariant!(at >= now, "scheduled in the past");
        if at - now < Self::SPAN {
            self.ring[(at % Self::SPAN) as usize].push(value);
        } else {
            self.later.push(Reverse((at, value)));
        }
    }

    /// Moves the values due at step `at` into `out` (replacing its
    /// contents). Every step must be taken in turn.
    fn take(&mut self, at: u64, out: &mut Vec<u64>) {
        while let Some(&Reverse((when, value))) = self.later.peek() {
            if when >= at + Self::SPAN {
                break;
            }
            self.later.pop();
            self.ring[(when % Self::SPAN) as usize].push(value);
        }
        out.clear();
        std::mem::swap(out, &mut self.ring[(at % Self::SPAN) as usize]);
    }

    fn clear(&mut self) {
        self.ring.iter_mut().for_each(Vec::clear);
        self.later.clear();
    }
}

/// The fast path's aggregates over the lazy decoding sequences.
#[derive(Debug)]
pub(super) struct Fast {
    /// Whether `running` is in lazy form (false: every field of every
    /// sequence is up to date and the aggregates below are empty).
    pub(super) lazy: bool,
    /// Fast steps completed (the clock of [`Seq::since`]).
    pub(super) steps: u64,
    /// Tokens per block.
    bs: u64,
    /// KV bytes per token (all layers).
    bpt: u64,
    /// Attention FLOPs per query-key pair, summed over layers and groups.
    flops_per_token_pair: u64,
    /// Whether every sequence holds room for its final length from its
    /// admission on (reserve admission): decode steps allocate nothing, so
    /// no block is counted and no step can run out of memory.
    reserved: bool,
    /// Lazy decoding sequences alive.
    decoders: u32,
    /// Σ context of the lazy decoders, as of now.
    context_sum: u64,
    /// Lazy decoders by phase: `(context - steps) mod bs`.
    phase: Vec<u32>,
    /// Uid of each lazy decoder, at the fast step count after which it
    /// finishes.
    finish: Calendar,
    /// Internal waste in bytes of each lazy decoder whose waste is not yet
    /// counted, at the fast step at whose launch it enters its last block.
    last_block: Calendar,
    /// Scratch for values taken from a calendar.
    due: Vec<u64>,
    /// Σ internal waste (bytes) of the lazy decoders: with blocks on demand,
    /// of those in their last block; `reserved`, of all (what each holds
    /// beyond its final length).
    internal: u64,
    /// `reserved` only: Σ final KV bytes of the lazy decoders.
    final_bytes: u64,
    /// `reserved` only: Σ allocator rounding of the lazy decoders (held,
    /// counted as external fragmentation).
    rounding: u64,
    /// Index in `running` of the first sequence that is not a lazy decoder:
    /// a chunked prefill still pending (always the last), then the
    /// sequences admitted in the step in flight.
    tail: usize,
}

impl Fast {
    /// The fast path's state for `engine`'s scenario, if the scenario is in
    /// the case it covers.
    pub(super) fn new<C: CostModel>(engine: &Engine<'_, C>) -> Option<Fast> {
        let s = engine.scenario;
        let cfg = &engine.cfg;
        let layout = &engine.layout;
        let paged = matches!(s.cache.placement, Placement::Paged { .. });
        // Reserve admission holds every sequence's final length from the
        // start (every `cache.reserve` rule covers it), whatever the
        // placement; optimistic admission grows paged blocks on demand.
        let reserved = cfg.admission == Admission::Reserve;
        let covered = (reserved || paged && layout.block_size > 0)
            && !s.cache.prefix_caching
            && s.tiers.is_none()
            && engine.role != super::Role::Prefill
            && layout.is_linear()
            && engine.samples == 1
            && cfg.max_num_seqs <= cfg.max_batched_tokens;
        if !covered {
            return None;
        }
        // Block phases matter only to blocks on demand.
        let bs = if reserved {
            1
        } else {
            u64::from(layout.block_size)
        };
        let bpt = layout.bytes_per_token();
        Some(Fast {
            lazy: false,
            steps: 0,
            bs,
            bpt,
            flops_per_token_pair: layout
                .groups()
                .iter()
                .map(|g| u64::from(g.layers) * g.flops_per_pair)
                .sum(),
            reserved,
            decoders: 0,
            context_sum: 0,
            phase: vec![0; bs as usize],
            finish: Calendar::new(),
            last_block: Calendar::new(),
            due: Vec::new(),
            internal: 0,
            final_bytes: 0,
            rounding: 0,
            tail: 0,
        })
    }

    /// The phase of a sequence of `context` tokens as of fast step `since`.
    fn phase_of(&self, context: u32, since: u64) -> usize {
        let bs = self.bs;
        ((u64::from(context) % bs + bs - since % bs) % bs) as usize
    }

    /// Adds `seq` (decoding, up to date as of now) to the aggregates;
    /// `held` is what the cache holds for it, `rounding` of which is the
    /// allocator's (both constant while it decodes, when `reserved`).
    fn join(&mut self, seq: &mut Seq, held: u64, rounding: u64) {
        seq.since = self.steps;
        self.decoders += 1;
        self.context_sum += u64::from(seq.context);
        let p = self.phase_of(seq.context, seq.since);
        self.phase[p] += 1;
        // It finishes once `generated` reaches `output`.
        let left = u64::from(seq.output - seq.generated);
        self.finish.push(self.steps + 1, self.steps + left, seq.uid);
        if self.reserved {
            // It holds its final length already: what it holds beyond is
            // internal waste from now to its end.
            invariant!(
                held - rounding >= seq.final_bytes,
                "a reservation covers the end"
            );
            self.internal += held - rounding - seq.final_bytes;
            self.final_bytes += seq.final_bytes;
            self.rounding += rounding;
            return;
        }
        // Its final KV is `final_bytes / bpt` tokens; in the last block the
        // tail beyond them is internal waste. A step scheduled at context `c`
        // holds `c + 1` tokens, in that block once `c + 1 > (blocks - 1) * bs`.
        let final_tokens = seq.final_bytes.checked_div(self.bpt).unwrap_or(0);
        let blocks = final_tokens.div_ceil(self.bs);
        let waste = (blocks * self.bs - final_tokens) * self.bpt;
        if waste > 0 {
            let enter = ((blocks - 1) * self.bs).saturating_sub(u64::from(seq.context));
            self.last_block.push(self.steps, self.steps + enter, waste);
        }
    }
}

impl<C: CostModel> Engine<'_, C> {
    /// Brings lazy `seq` (at `running[i]`) up to date: context, generated
    /// count, its record's output tokens and its cache table.
    fn materialize(&mut self, i: usize) {
        let Some(f) = self.fast.as_ref() else {
            return;
        };
        let s = &mut self.running[i];
        let delta = f.steps - s.since;
        s.since = f.steps;
        if delta == 0 {
            return;
        }
        let delta = delta as u32;
        let (c0, c1) = (u64::from(s.context), u64::from(s.context + delta));
        let blocks = c1.div_ceil(f.bs) - c0.div_ceil(f.bs);
        s.context += delta;
        s.generated += delta;
        let (req, slot) = (s.req, s.slot);
        self.records[req as usize].output_tokens += delta;
        if f.reserved {
            // Within its reservation: no allocation.
            let grown = self.cache.grow(slot, delta);
            invariant!(grown.is_ok(), "a reservation covers the growth");
        } else {
            self.cache
                .as_paged_mut()
                .expect("blocks on demand run on a paged cache")
                .settle(slot, delta, blocks);
        }
    }

    /// What the cache holds for `slot` beyond the allocator's rounding, and
    /// the rounding ([`Fast::join`]'s arguments).
    fn held_parts(&self, slot: crate::cache::SeqId) -> (u64, u64) {
        (
            self.cache.held_bytes(slot),
            self.cache.allocator_slack_bytes(slot),
        )
    }

    /// Leaves lazy form: every sequence up to date, dead ones removed, the
    /// aggregates empty. O(batch); a no-op when not lazy.
    pub(super) fn materialize_all(&mut self) {
        if !self.fast.as_ref().is_some_and(|f| f.lazy) {
            return;
        }
        // The lazy decoders: what follows them (a pending prefill) is up to
        // date already.
        let tail = self.fast.as_ref().map_or(0, |f| f.tail);
        for i in 0..tail {
            if !self.running[i].dead {
                self.materialize(i);
            }
        }
        self.compact();
        let f = self.fast.as_mut().expect("lazy implies the fast path");
        f.lazy = false;
        f.decoders = 0;
        f.context_sum = 0;
        f.phase.fill(0);
        f.finish.clear();
        f.last_block.clear();
        f.internal = 0;
        f.final_bytes = 0;
        f.rounding = 0;
        f.tail = self.running.len();
    }

    /// Removes dead sequences from `running`, keeping the order.
    fn compact(&mut self) {
        if self.dead > 0 {
            self.running.retain(|s| !s.dead);
            self.dead = 0;
        }
    }

    /// Enters lazy form, if not in it: every running sequence must be
    /// decoding (true between steps without chunked prefill). Returns
    /// whether it is in lazy form.
    fn enter_lazy(&mut self) -> bool {
        let Some(f) = self.fast.as_mut() else {
            return false;
        };
        if f.lazy {
            return true;
        }
        // Decoders, then at most one pending prefill.
        let pending = self.running.last().is_some_and(|s| !s.decoding());
        let decoders = self.running.len() - usize::from(pending);
        if !self.running.iter().all(|s| s.scheduled == 0)
            || !self.running[..decoders].iter().all(Seq::decoding)
        {
            return false;
        }
        for s in &mut self.running[..decoders] {
            let (held, rounding) = (
                self.cache.held_bytes(s.slot),
                self.cache.allocator_slack_bytes(s.slot),
            );
            f.join(s, held, rounding);
        }
        f.lazy = true;
        f.tail = decoders;
        true
    }

    /// Starts the next step on the fast path if it covers it: every running
    /// sequence decodes one token and the cache has a block for each that
    /// needs one; then admission as usual. Returns whether it did.
    pub(super) fn try_fast_step(&mut self) -> bool {
        if self.fast.is_none()
            || !self.swapped.is_empty()
            || self.running.len() == self.dead
            || !self.enter_lazy()
        {
            return false;
        }
        let f = self.fast.as_ref().expect("checked above");
        let decoders = f.decoders;
        if !f.reserved {
            let due = (f.bs - f.steps % f.bs) % f.bs;
            let blocks = u64::from(f.phase[due as usize]);
            let paged = self
                .cache
                .as_paged_mut()
                .expect("blocks on demand run on a paged cache");
            if !paged.defer(blocks) {
                // Some sequence cannot grow: the straightforward scheduler
                // decides whom to preempt or fail.
                return false;
            }
        }
        // Decodes never exceed the token budget (max_num_seqs <= it); a
        // pending chunked prefill takes what is left, as in
        // `schedule_running`; nothing is swapped out to bring back.
        let mut budget = self.cfg.max_batched_tokens - decoders;
        let tail = self.fast.as_ref().expect("checked above").tail;
        let len = self.running.len();
        if let Some(s) = self.running.get_mut(tail) {
            invariant!(tail + 1 == len && !s.decoding());
            if budget > 0 {
                let chunk = (s.prefill_target - s.prefilled).min(budget);
                s.scheduled = chunk;
                budget -= chunk;
            }
        }
        self.limit = self.admit_waiting(&mut budget);
        self.fast_launch();
        true
    }

    /// Prices the fast step in flight from the aggregates and the sequences
    /// admitted in it.
    fn fast_launch(&mut self) {
        let f = self.fast.as_mut().expect("fast step");
        // Sequences entering their last block in this step start counting
        // their internal waste.
        f.last_block.take(f.steps, &mut f.due);
        f.internal += f.due.iter().sum::<u64>();
        let mut work = StepWork {
            decode_tokens: f.decoders,
            kv_read_bytes: f.bpt * f.context_sum,
            attention_flops: f.flops_per_token_pair * (f.context_sum + u64::from(f.decoders)),
            ..StepWork::default()
        };
        let mut batch = f.decoders;
        for s in self.running[f.tail..].iter().filter(|s| s.scheduled > 0) {
            invariant!(!s.decoding());
            batch += 1;
            work.prefill_tokens += s.scheduled;
            work.prefill_seqs += 1;
            work.kv_read_bytes += self.layout.attended_bytes(s.prefilled);
            work.attention_flops += self.layout.attention_flops(s.prefilled, s.scheduled);
        }
        work.kv_write_bytes = u64::from(work.tokens()) * self.layout.bytes_per_token();
        self.step_fast = true;
        self.launch_work(work, batch);
    }

    /// Memory levels in lazy form: the decoders from the aggregates (at
    /// launch, when each holds `context + 1` tokens), the sequences admitted
    /// in the step in flight one by one, as [`Engine::memory_levels`].
    pub(super) fn fast_levels(&self) -> MemoryLevels {
        let f = self.fast.as_ref().expect("lazy implies the fast path");
        let usage = self.cache.usage();
        let (mut reserved, mut internal, mut tail_held, mut slack) = (0u64, 0u64, 0u64, 0u64);
        for s in &self.running[f.tail..] {
            let rounding = self.cache.allocator_slack_bytes(s.slot);
            slack += rounding;
            let held = self.cache.held_bytes(s.slot);
            tail_held += held;
            let held = held - rounding;
            let kept = self.layout.kept_bytes(s.cached_tokens()).min(held);
            let fill = s.final_bytes.min(held).max(kept);
            reserved += fill - kept;
            internal += held - fill;
        }
        if f.decoders > 0 {
            // Each decoder holds `context + 1` tokens at launch.
            let kept = f.bpt * (f.context_sum + u64::from(f.decoders));
            if f.reserved {
                // Each holds its final length, fills it up to the end.
                reserved += f.final_bytes - kept;
                slack += f.rounding;
            } else {
                // Held by decoders: everything allocated but the tail's
                // blocks and the room reserved for KV being received.
                let held = usage.allocated - tail_held - self.receiving_bytes;
                reserved += held - kept - f.internal;
            }
            internal += f.internal;
        }
        // Blocks on demand leave no external fragmentation; reservations
        // (contiguous ones) may.
        let external = if f.reserved {
            self.unusable_for_head()
        } else {
            0
        };
        super::levels_of(&usage, reserved, internal, external, slack)
    }

    /// The fast step in flight ends: every decoder advances a token (by the
    /// clock), finishers end in batch order, then the sequences admitted in
    /// the step emit their first token and join the decoders.
    pub(super) fn fast_finish(&mut self) {
        self.busy = false;
        self.step_fast = false;
        let f = self.fast.as_mut().expect("fast step");
        f.steps += 1;
        f.context_sum += u64::from(f.decoders);
        f.finish.take(f.steps, &mut f.due);
        // Batch order.
        f.due.sort_unstable();
        let mut due = std::mem::take(&mut f.due);
        for &uid in &due {
            let i = self
                .running
                .binary_search_by_key(&uid, |s| s.uid)
                .expect("finishers are running");
            self.materialize(i);
            let s = self.running[i];
            invariant!(!s.dead && s.generated == s.output);
            let f = self.fast.as_mut().expect("fast step");
            f.decoders -= 1;
            f.context_sum -= u64::from(s.context);
            let p = f.phase_of(s.context, s.since);
            f.phase[p] -= 1;
            if f.reserved {
                let (held, rounding) = (
                    self.cache.held_bytes(s.slot),
                    self.cache.allocator_slack_bytes(s.slot),
                );
                f.internal -= held - rounding - s.final_bytes;
                f.final_bytes -= s.final_bytes;
                f.rounding -= rounding;
            } else {
                // It has been in its last block since its last step at the
                // latest.
                let final_tokens = s.final_bytes.checked_div(f.bpt).unwrap_or(0);
                f.internal -= (final_tokens.div_ceil(f.bs) * f.bs - final_tokens) * f.bpt;
            }
            self.running[i].dead = true;
            self.dead += 1;
            self.release(s.slot);
            self.sample_ended(s.req, false, Outcome::Ok);
        }
        due.clear();
        self.fast.as_mut().expect("fast step").due = due;
        let tail = self.fast.as_ref().expect("fast step").tail;
        let mut pending = false;
        for i in tail..self.running.len() {
            let mut s = self.running[i];
            if s.scheduled == 0 {
                // A pending chunked prefill the budget did not reach.
                pending = true;
                continue;
            }
            s.prefilled += s.scheduled;
            s.context = s.prefilled;
            s.scheduled = 0;
            if s.prefilled < s.prefill_target {
                // Part of a chunked prefill: the rest in later steps.
                self.running[i] = s;
                pending = true;
                continue;
            }
            // Its prefill completes: it emits the first token.
            s.generated += 1;
            let r = &mut self.records[s.req as usize];
            r.output_tokens += 1;
            r.first_token.get_or_insert(self.now);
            if s.generated >= s.output {
                s.dead = true;
                self.running[i] = s;
                self.dead += 1;
                self.release(s.slot);
                self.sample_ended(s.req, false, Outcome::Ok);
            } else {
                let (held, rounding) = self.held_parts(s.slot);
                self.fast
                    .as_mut()
                    .expect("fast step")
                    .join(&mut s, held, rounding);
                self.running[i] = s;
            }
        }
        // Dead entries go once they are half of `running`: amortized O(1).
        if self.dead > 32 && self.dead * 2 > self.running.len() {
            self.compact();
        }
        let live = self.running.len() - self.dead;
        // A pending prefill is the last sequence: admissions stop when the
        // budget runs out.
        invariant!(!pending || self.running.last().is_some_and(|s| !s.decoding()));
        self.fast.as_mut().expect("fast step").tail = self.running.len() - usize::from(pending);
        if live == 0 {
            self.record_levels();
        }
    }
}
