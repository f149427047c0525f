//! The fast path: decode steps in O(1) work, plus O(log batch) per sequence
//! event (joining the batch, entering its last block, finishing).
//!
//! # Why it is exact
//!
//! In the common case (one sample,
//! `max_num_seqs <= max_batched_tokens`; paged placement with optimistic
//! admission, prefix caching or not (KV tiers below HBM with it);
//! contiguous placement with optimistic
//! admission and no window or state; or reserve admission with any
//! placement and no window or prefix caching) a step
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
//! - Step work: a group that keeps every token reads `bytes_per_token *
//!   context` bytes and does `(context + 1) * layers * flops_per_pair` FLOPs
//!   per decoding sequence, so the batch's totals follow from the sum of
//!   contexts, which grows by the number of decoders per step; a windowed
//!   group's follow from sums of contexts capped at its window (see
//!   [`Windows`]), and recurrent state adds a constant per sequence. Integer
//!   sums, so the step times (and everything downstream) are bit-identical.
//! - New blocks: a sequence needs one (in every physical group) exactly when
//!   its context is a multiple of the block size. Context minus fast steps is
//!   constant per sequence, so sequences are counted by that *phase* modulo
//!   the block size, and a step needs `count[phase]` blocks, charged to the
//!   cache at once ([`PagedCache::defer`]); a window drops its front block
//!   when the window's start crosses a block boundary, counted by phase among
//!   the sequences past it. Each sequence's table catches up when it is next
//!   looked at ([`PagedCache::settle`]). A step whose new blocks do not fit
//!   the free memory (not counting the blocks dropped in the same step) goes
//!   to the straightforward engine: when they do fit, no sequence can fail to
//!   grow in batch order, whatever the order of drops.
//! - Finishing: a sequence finishes after a known number of steps; a
//!   [`Calendar`] of steps yields the step's finishers, sorted by entry order
//!   (batch order, the order the straightforward engine ends them in, which
//!   fixes the order of follow-up events and random draws).
//! - Memory waste: held minus stored is `allocated - bytes_per_token * Σ
//!   tokens`; of it, the part never to be filled (*internal*) is, per
//!   sequence, 0 until it enters the block its final token falls in and a
//!   constant from then on, so it changes only at that (calendar-scheduled)
//!   step. Recurrent state with no window (a hybrid of full and linear
//!   attention) is the same with each decoder's state added: held and kept
//!   alike, so none of it is waste ([`Fast::state`]). With one window `W`
//!   on every layer (a multiple of the block size), a decoder's waste
//!   follows from its phase and which side of `W` it is on, so it is
//!   counted by phase ([`Uniform`]); with other windows it is read from
//!   every decoder each step ([`Engine::fast_levels`]).
//!
//! - Prefix caching: full blocks are named (published for later prompts to
//!   share, cached when freed, evicted least recently used first), so the
//!   order in which sequences take, publish and free blocks matters and
//!   blocks cannot be charged in aggregate. A sequence's cache table needs
//!   work only when it passes its growth limit (a block to map, a full one
//!   to publish: [`PagedCache::growth`]); until then growing it one token
//!   at a time or at once is the same counters. So each decoder is visited
//!   at the launch where it passes its limit (a [`Calendar`] of visits),
//!   the step's visitors grow in batch order before admission, as the
//!   straightforward step grows every decoder, if their new blocks fit the
//!   free memory (cached blocks included); the others catch up when next
//!   looked at. Shared blocks make `allocated` no measure of what the
//!   decoders hold, so their blocks are counted (visits add them).
//! - KV tiers, with prefix caching only (without it, no visit marks the
//!   launch at which a decoder fills a block): the straightforward step's end
//!   hands every scheduled sequence's newly full blocks down to the
//!   write-through tiers, in batch order. A decoder's block fills only at a
//!   launch that visits it (to publish the block), so the fast step's end
//!   hands down its visitors' blocks, then its prefills', the same blocks
//!   in the same order. Loads, on-evict stores and their floor on the
//!   step's time happen at admissions and visits, in code both engines
//!   share. A prefill waiting for its `async` load is not scheduled, so
//!   sequences admitted after it may decode before it: the straightforward
//!   engine runs such steps (see [`Engine::try_fast_step`]).

//! - Reservations: with reserve admission every sequence holds room for its
//!   final length from its admission (in a contiguous region, first-fit or
//!   buddy, or in paged blocks with spares), so a decode step allocates
//!   nothing and cannot run out of memory, and each decoder's waste is
//!   constant while it decodes: what it holds beyond its final length is
//!   internal, the allocator's rounding external, and the rest of its final
//!   length reserved. The head of the queue's unusable holes (external
//!   fragmentation) are looked up at each step as the straightforward engine
//!   does.
//! - Regions on demand: with optimistic admission a contiguous region
//!   grows a token at a launch, in place while the hole right after it
//!   (first-fit) or its buddy block has room, and only the region itself
//!   can grow into that hole. So up to that room, growing it a token at a
//!   time or at once is the same, and the counters are charged at once
//!   ([`ContiguousCache::defer`], by the decoder count); each region
//!   catches up when next looked at ([`ContiguousCache::settle`]). Each
//!   decoder is visited (a [`Calendar`]) at the launch at which it would
//!   outgrow its room. If its room has not grown since (a neighbour
//!   ended), the region moves: where first-fit surely finds room for every
//!   region that may move ([`ContiguousCache::moves_surely`]), every
//!   decoder grows at that launch as the straightforward step grows it (in
//!   batch order, in place or moved) and every visit is rescheduled;
//!   otherwise the step goes to the straightforward engine, which may find
//!   no room and do what `on_oom` says. An admission places
//!   a region at the start of a hole, which may be the hole a decoder grows
//!   into, and the head of the queue's unusable holes are measured, so
//!   whenever the queue is not empty at a launch every region is settled
//!   first, and after an admission every decoder's visit is rescheduled
//!   (the older entry goes stale). A decoder holds exactly its tokens, but
//!   for a buddy block's rounding (external fragmentation).
//!
//! - Leaps: between events, a step in which nothing is admitted (nothing
//!   waits, or the head of the queue stays blocked: no sequence has ended
//!   since the launch that found it blocked, and memory only fills, or,
//!   under windows, which drop blocks, stays short of what the head takes;
//!   not for regions on demand, whose holes shrink under the head), no
//!   sequence finishes or is visited and the new blocks fit does the same
//!   as any other fast step that admits nothing, so [`Engine::leap`] runs such
//!   steps in one loop up to the next event (on a cluster, the next event
//!   from outside), each priced, recorded and ended as the event loop
//!   would, with its memory levels taken from the aggregates.
//!
//! Whatever does not fit (a step that would run out of blocks, so the
//! scheduler must preempt or fail sequences; a region to move where a move
//! might fail; a swapped
//! sequence to bring back; an empty batch) is done by the straightforward engine after
//! [`Engine::materialize_all`] brings every sequence up to date; the fast path
//! picks up again at the next step.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Engine, Seq, Stopped};
use crate::cache::{
    Content, ContiguousCache, KvCache, KvLayout, MemoryUsage, PagedCache, Placement, SeqId,
};
use crate::hardware::cost::{CostModel, StepWork};
use crate::metrics::{BatchLimit, ByteLevels, LevelSums, Outcome};
use crate::model::Span;
use crate::scheduler::Admission;
use crate::units::{SimDuration, SimTime};

/// Values due at future fast steps: a ring of lists, one per step of the
/// next [`Calendar::SPAN`], and a heap for later ones. O(1) per entry for
/// anything due within the span (most sequences), O(log n) beyond. The
/// lists' nodes live in one slab whose freed nodes are reused, so a run
/// allocates only as its pending values peak (a bucket of its own per step
/// cost an allocation the first time each of them was used, in every run).
/// A step's values come out in the order they reached its list: pushed
/// within the span, or brought within it from the heap by a take.
#[derive(Debug)]
struct Calendar {
    /// Per step of the span, its first and last node ([`NIL`]: none).
    first: Vec<u32>,
    last: Vec<u32>,
    /// Each node's value, the next node of its step (or of the free list)
    /// and its step's place in the ring ([`NIL`]: a free node), so that a
    /// clear resets only the steps that hold values.
    nodes: Vec<(u64, u32, u32)>,
    /// The first free node ([`NIL`]: none).
    free: u32,
    later: BinaryHeap<Reverse<(u64, u64)>>,
}

/// No node.
const NIL: u32 = u32::MAX;

/// No visit due ([`Fast::visit_at`]).
const NO_VISIT: u64 = u64::MAX;

impl Calendar {
    /// Steps the ring covers.
    const SPAN: u64 = 512;

    fn new() -> Self {
        Calendar {
            first: vec![NIL; Self::SPAN as usize],
            last: vec![NIL; Self::SPAN as usize],
            nodes: Vec::new(),
            free: NIL,
            later: BinaryHeap::new(),
        }
    }

    /// Appends `value` to the list of step `at` (within the span).
    fn append(&mut self, at: u64, value: u64) {
        let b = (at % Self::SPAN) as usize;
        let node = if self.free == NIL {
            self.nodes.push((value, NIL, b as u32));
            u32::try_from(self.nodes.len() - 1).expect("fewer than 2^32 values pending")
        } else {
            let node = self.free;
            self.free = self.nodes[node as usize].1;
            self.nodes[node as usize] = (value, NIL, b as u32);
            node
        };
        match self.last[b] {
            NIL => self.first[b] = node,
            tail => self.nodes[tail as usize].1 = node,
        }
        self.last[b] = node;
    }

    /// Schedules `value` at step `at`; `now` is the earliest step not yet
    /// taken (`at >= now`).
    fn push(&mut self, now: u64, at: u64, value: u64) {
        invariant!(at >= now, "scheduled in the past");
        if at - now < Self::SPAN {
            self.append(at, value);
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
            self.append(when, value);
        }
        out.clear();
        let b = (at % Self::SPAN) as usize;
        let mut node = self.first[b];
        while node != NIL {
            let (value, next, _) = self.nodes[node as usize];
            out.push(value);
            self.nodes[node as usize] = (0, self.free, NIL);
            self.free = node;
            node = next;
        }
        self.first[b] = NIL;
        self.last[b] = NIL;
    }

    /// Whether nothing is due at step `at`, where every step before it was
    /// taken or quiet. A quiet step may be passed without
    /// [`Calendar::take`]: the next take moves what the heap holds for the
    /// steps after it into the ring.
    fn quiet_at(&self, at: u64) -> bool {
        self.first[(at % Self::SPAN) as usize] == NIL
            && self
                .later
                .peek()
                .is_none_or(|&Reverse((when, _))| when > at)
    }

    fn clear(&mut self) {
        // The fast path leaves lazy form at every step it hands back: with
        // few values pending, reset their steps rather than the whole ring.
        if self.nodes.len() < Self::SPAN as usize / 4 {
            for &(_, _, b) in &self.nodes {
                if b != NIL {
                    self.first[b as usize] = NIL;
                    self.last[b as usize] = NIL;
                }
            }
        } else {
            self.first.fill(NIL);
            self.last.fill(NIL);
        }
        self.nodes.clear();
        self.free = NIL;
        self.later.clear();
    }
}

/// A length at which a windowed group's per-sequence terms stop growing,
/// and the lazy decoders below it: `Σ min(context, at)` over `n` decoders is
/// `below_sum + at * (n - below)`.
#[derive(Debug)]
struct Threshold {
    at: u64,
    /// Decoders whose context is below `at`.
    below: u64,
    /// Σ context of those, as of now.
    below_sum: u64,
    /// Phase of each decoder below, at the fast step its context reaches
    /// `at` (if it does before it finishes).
    cross: Calendar,
    /// At a physical group's window: the decoders whose context is `at` or
    /// more (whose window has started to slide), by phase.
    above: Option<Vec<u32>>,
}

/// The fast path's aggregates for a layout with windowed groups or
/// recurrent state (paged, blocks on demand).
///
/// A windowed group of window `W` keeps `min(context, W)` tokens and a
/// decode step scores `min(context + 1, W)` pairs, so a step's work needs
/// `Σ min(context, T)` for `T` in `W` and `W - 1`: kept per [`Threshold`].
/// A physical group of window `W` maps a block when the context is a
/// multiple of the block size (as a full group does) and drops its front
/// block when the context is `W` or more and `W - 1` modulo the block size.
/// Waste is aggregated for a [`Uniform`] window only: in general a window's
/// held blocks change with the phase while its kept tokens stay `W`, and
/// whether a decoder's blocks exceed its final KV depends on both, so
/// [`Engine::fast_levels`] visits the decoders (O(batch) integer work a
/// step, against the straightforward step's growing, pricing and reading of
/// every table).
#[derive(Debug)]
struct Windows {
    thresholds: Vec<Threshold>,
    /// Per windowed layer group: the thresholds `W` and `W - 1`, its KV
    /// bytes per token and its attention FLOPs per pair (all layers).
    groups: Vec<(usize, usize, u64, u64)>,
    /// Per physical group: bytes of a block, and the threshold at its
    /// window if it has one.
    pools: Vec<(u64, Option<usize>)>,
    /// Recurrent state bytes per sequence.
    state: u64,
    /// KV bytes per token of the groups that keep every token (the
    /// windowed groups' are in `groups`).
    all_bpt: u64,
    /// Tokens per block.
    bs: u64,
    /// `log2(bs)` when the block size is a power of two (every engine's
    /// default): [`Windows::held`] may run for every decoder at every step,
    /// and a shift costs a cycle where a division costs tens.
    bs_shift: Option<u32>,
    /// The waste's aggregates when every group keeps the same window.
    uniform: Option<Uniform>,
    /// What a decoder past the window holds and keeps in closed form, when
    /// every windowed group keeps the same window.
    past: Option<PastWindow>,
}

/// A layout whose windowed groups all keep one window `W`, a multiple of
/// the block size, beside groups that keep every token (local and global
/// layers, as Gemma 3's): a decoder holding `t >= W` tokens, `q` full
/// blocks and `nz` (0 or 1) a part-filled one, holds
/// `state + B_w * W / bs + F * (q + nz) + B_w * nz` (`F`: a block of the
/// pools that keep every token; `B_w`: one of the window's, whose front has
/// slid `q - W / bs` blocks) and keeps `state + bpt * t + bpt_w * W` (`bpt`,
/// `bpt_w`: the bytes per token of the full and the windowed groups). Without
/// waste sums for such a layout ([`Uniform`] needs every group windowed),
/// [`Engine::windowed_slack`] reads every decoder at every leapt step; in
/// closed form a decoder costs a shift and a few multiplications, where
/// [`Windows::held`] and [`Windows::kept`] loop over the pools and groups.
#[derive(Debug)]
struct PastWindow {
    window: u64,
    /// `state + B_w * W / bs`.
    held_base: u64,
    /// `F` and `B_w`.
    full_block: u64,
    window_block: u64,
    /// `state + bpt_w * W`, and the full groups' bytes per token.
    kept_base: u64,
    all_bpt: u64,
}

/// A layout whose every group that holds tokens keeps the same window `W`,
/// a multiple of the block size (a model served with one sliding window on
/// every layer): a decoder's waste then follows from its phase and which
/// side of `W` it is on, so [`Engine::fast_levels`] reads it from a sum
/// and counts by phase kept as decoders come, go and cross `W` (O(1) a
/// step, not O(batch)).
///
/// A decoder holding `t` tokens (`t = context + 1` at a launch) keeps
/// `state + bpt * min(t, W)` and holds `state + block_bytes *
/// (ceil(t / bs) - floor(max(t - W, 0) / bs))`; with `r = (-t) mod bs`:
///
/// - `t <= W`: it holds `bpt * r` more than it keeps. Its final KV keeps
///   `m = min(final length, W)` tokens; while `t` is short of the block
///   `m` ends in, it holds no more than that (reserved), and from there
///   `bpt * (bs * ceil(m / bs) - m)` of it never fills (internal; 0 when
///   `m = W`, a multiple of the block size).
/// - `t > W`: it keeps `W` tokens, its final length's (reserved: none), and
///   holds one block more than the window when `r != 0` (internal).
#[derive(Debug)]
struct Uniform {
    /// `W`, and its [`Threshold`] (whose `above` counts the decoders past
    /// it by phase).
    window: u64,
    threshold: usize,
    /// KV bytes per token over all groups, and of a block over all of them.
    bpt: u64,
    block_bytes: u64,
    /// Σ internal waste of the decoders in the block their final KV ends
    /// in (final KV shorter than `W`), and that waste of each decoder not
    /// yet there, at the fast step from which its context is there.
    internal: u64,
    entering: Calendar,
    /// Σ `r` over the decoders within the window, as of the current fast
    /// step: kept as decoders join, leave and cross `W`, and moved on a
    /// step in O(1) (every `r` falls by one but the zeros, which wrap to
    /// `bs - 1`).
    within: u64,
}

impl Windows {
    /// The aggregates for `layout` in `cache`; `None` if a group keeps
    /// something other than every token or a window (a chunk).
    fn new(layout: &KvLayout, cache: &PagedCache) -> Option<Windows> {
        let mut w = Windows {
            thresholds: Vec::new(),
            groups: Vec::new(),
            pools: Vec::new(),
            state: layout.state_bytes(),
            all_bpt: 0,
            bs: u64::from(layout.block_size),
            bs_shift: layout
                .block_size
                .is_power_of_two()
                .then(|| layout.block_size.trailing_zeros()),
            uniform: None,
            past: None,
        };
        for g in layout.groups() {
            match g.span {
                Span::All => w.all_bpt += g.bytes_per_token,
                Span::Window(win) if win > 0 => {
                    let at = w.threshold(u64::from(win));
                    let below = w.threshold(u64::from(win) - 1);
                    let flops = u64::from(g.layers) * g.flops_per_pair;
                    w.groups.push((at, below, g.bytes_per_token, flops));
                }
                _ => return None,
            }
        }
        for (span, block_bytes) in cache.pools() {
            let window = match span {
                Span::Window(win) => {
                    let t = w.threshold(u64::from(win));
                    w.thresholds[t].above = Some(vec![0; w.bs as usize]);
                    Some(t)
                }
                _ => None,
            };
            w.pools.push((block_bytes, window));
        }
        w.uniform = Uniform::of(layout, &w);
        w.past = PastWindow::of(&w);
        Some(w)
    }

    /// The index of the threshold at `at`, added if new.
    fn threshold(&mut self, at: u64) -> usize {
        if let Some(i) = self.thresholds.iter().position(|t| t.at == at) {
            return i;
        }
        self.thresholds.push(Threshold {
            at,
            below: 0,
            below_sum: 0,
            cross: Calendar::new(),
            above: None,
        });
        self.thresholds.len() - 1
    }

    /// Adds a decoder of `context` and `phase` at fast step `steps`, which
    /// finishes `left` steps on with `final_bytes` of KV.
    fn join(&mut self, context: u64, steps: u64, left: u64, phase: usize, final_bytes: u64) {
        if let Some(u) = self.uniform.as_mut() {
            if let Some((from, waste)) = u.last_block(final_bytes, self.state, self.bs) {
                if from <= context {
                    u.internal += waste;
                } else {
                    u.entering.push(steps + 1, steps + from - context, waste);
                }
            }
            if context < u.window {
                u.within += rest(self.bs, phase, steps);
            }
        }
        for t in &mut self.thresholds {
            if context < t.at {
                t.below += 1;
                t.below_sum += context;
                if t.at - context <= left {
                    t.cross
                        .push(steps + 1, steps + t.at - context, phase as u64);
                }
            } else if let Some(above) = t.above.as_mut() {
                above[phase] += 1;
            }
        }
    }

    /// Removes a decoder of `context`, `phase` and `final_bytes` of KV at
    /// fast step `steps` (finishing: in the block its final KV ends in
    /// since its last launch).
    fn leave(&mut self, context: u64, phase: usize, final_bytes: u64, steps: u64) {
        if let Some(u) = self.uniform.as_mut() {
            if let Some((_, waste)) = u.last_block(final_bytes, self.state, self.bs) {
                u.internal -= waste;
            }
            if context < u.window {
                u.within -= rest(self.bs, phase, steps);
            }
        }
        for t in &mut self.thresholds {
            if context < t.at {
                t.below -= 1;
                t.below_sum -= context;
            } else if let Some(above) = t.above.as_mut() {
                above[phase] -= 1;
            }
        }
    }

    /// Fast step `steps` has just completed: every decoder (counted by
    /// phase in `phase`) is a token longer, and those reaching a threshold
    /// pass it.
    fn advance(&mut self, steps: u64, scratch: &mut Vec<u64>, phase: &[u32]) {
        if let Some(u) = self.uniform.as_mut() {
            // Within the window, the phase whose `r` was 0 wraps to
            // `bs - 1`, every other falls by one.
            let t = &self.thresholds[u.threshold];
            let wrapped = phase_diff(0, steps, self.bs);
            let above = t.above.as_ref().expect("a window's counts")[wrapped as usize];
            let wrapped = u64::from(phase[wrapped as usize] - above);
            u.within = u.within + self.bs * wrapped - t.below;
            // (Most steps nobody crosses: checked before taking.)
            if !u.entering.quiet_at(steps) {
                u.entering.take(steps, scratch);
                u.internal += scratch.iter().sum::<u64>();
            }
        }
        for (i, t) in self.thresholds.iter_mut().enumerate() {
            t.below_sum += t.below;
            if t.cross.quiet_at(steps) {
                continue;
            }
            t.cross.take(steps, scratch);
            for &p in scratch.iter() {
                t.below -= 1;
                t.below_sum -= t.at;
                if let Some(above) = t.above.as_mut() {
                    above[p as usize] += 1;
                }
                if let Some(u) = self.uniform.as_mut().filter(|u| u.threshold == i) {
                    u.within -= rest(self.bs, p as usize, steps);
                }
            }
        }
    }

    /// Whether no decoder reaches a threshold at fast step `steps`.
    fn quiet_at(&self, steps: u64) -> bool {
        self.thresholds.iter().all(|t| t.cross.quiet_at(steps))
    }

    /// What [`Windows::work`] grows by a step in which no decoder reaches a
    /// threshold: each sum of contexts capped at one grows by the decoders
    /// below it.
    fn growth(&self) -> (u64, u64) {
        let (mut read, mut flops) = (0, 0);
        for &(at, below, bpt, per_pair) in &self.groups {
            read += bpt * self.thresholds[at].below;
            flops += per_pair * self.thresholds[below].below;
        }
        (read, flops)
    }

    /// `Σ min(context, at)` over the `n` decoders, for threshold `t`.
    fn capped(&self, t: usize, n: u64) -> u64 {
        let t = &self.thresholds[t];
        t.below_sum + t.at * (n - t.below)
    }

    /// The windowed groups' KV bytes read (with the recurrent state) and
    /// attention FLOPs of a decode step over the `n` decoders.
    fn work(&self, n: u64) -> (u64, u64) {
        let (mut read, mut flops) = (n * self.state, 0);
        for &(at, below, bpt, per_pair) in &self.groups {
            read += bpt * self.capped(at, n);
            flops += per_pair * (self.capped(below, n) + n);
        }
        (read, flops)
    }

    /// Bytes of the blocks the step launched at fast step `steps` drops:
    /// of the decoders past a window whose context is `W - 1` modulo the
    /// block size, in each windowed physical group.
    #[inline]
    fn dropped_bytes(&self, steps: u64) -> u64 {
        let bs = self.bs;
        self.pools
            .iter()
            .filter_map(|&(block_bytes, t)| {
                let t = &self.thresholds[t?];
                let phase = phase_diff(t.at - 1, steps, bs);
                Some(block_bytes * u64::from(t.above.as_ref()?[phase as usize]))
            })
            .sum()
    }

    /// Whether the layout has recurrent state and no window: nothing that
    /// changes a sequence's holdings but its blocks of every token.
    fn state_only(&self) -> bool {
        self.groups.is_empty() && self.pools.iter().all(|&(_, t)| t.is_none())
    }

    /// What a sequence holding `tokens` tokens holds: its blocks in every
    /// physical group and its state, bytes.
    #[inline]
    fn held(&self, tokens: u64) -> u64 {
        let blocks = |t: u64| match self.bs_shift {
            Some(shift) => t >> shift,
            None => t / self.bs,
        };
        let end = blocks(tokens + self.bs - 1);
        let blocks = self.pools.iter().map(|&(block_bytes, t)| {
            let front = t.map_or(0, |t| blocks(tokens.saturating_sub(self.thresholds[t].at)));
            block_bytes * (end - front)
        });
        self.state + blocks.sum::<u64>()
    }

    /// What a sequence holding `tokens` tokens (at least one) keeps, bytes:
    /// [`KvLayout::kept_bytes`] from the sums kept here (every group keeps
    /// all its tokens or a window), without its match on each group's span.
    #[inline]
    fn kept(&self, tokens: u64) -> u64 {
        let windowed = self
            .groups
            .iter()
            .map(|&(at, _, bpt, _)| bpt * tokens.min(self.thresholds[at].at));
        self.state + self.all_bpt * tokens + windowed.sum::<u64>()
    }

    /// [`Windows::held`] and [`Windows::kept`] of a sequence holding
    /// `tokens` tokens (at least one): in closed form past a [`PastWindow`].
    /// (Inlined into the leaps, which read it for every decoder at every
    /// step: the call cost more than the closed form.)
    #[inline(always)]
    fn held_kept(&self, tokens: u64) -> (u64, u64) {
        if let Some(p) = self.past.as_ref().filter(|p| tokens >= p.window) {
            let q = match self.bs_shift {
                Some(shift) => tokens >> shift,
                None => tokens / self.bs,
            };
            let nz = u64::from(q * self.bs != tokens);
            let held = p.held_base + p.full_block * (q + nz) + p.window_block * nz;
            let kept = p.kept_base + p.all_bpt * tokens;
            invariant_eq!(
                (held, kept),
                (self.held(tokens), self.kept(tokens)),
                "a decoder past the window, in closed form"
            );
            return (held, kept);
        }
        self.held_kept_by_group(tokens)
    }

    /// [`Windows::held_kept`] group by group.
    #[inline(never)]
    fn held_kept_by_group(&self, tokens: u64) -> (u64, u64) {
        (self.held(tokens), self.kept(tokens))
    }

    fn clear(&mut self) {
        if let Some(u) = self.uniform.as_mut() {
            u.internal = 0;
            u.entering.clear();
            u.within = 0;
        }
        for t in &mut self.thresholds {
            t.below = 0;
            t.below_sum = 0;
            t.cross.clear();
            if let Some(above) = t.above.as_mut() {
                above.fill(0);
            }
        }
    }
}

impl PastWindow {
    /// The closed form for the windows `w` keeps, if every windowed group
    /// keeps the same window, a multiple of the block size, and so does
    /// every windowed physical group.
    fn of(w: &Windows) -> Option<PastWindow> {
        let &(first, ..) = w.groups.first()?;
        let window = w.thresholds[first].at;
        if window % w.bs != 0 || w.groups.iter().any(|&(at, ..)| at != first) {
            return None;
        }
        let (mut full_block, mut window_block) = (0, 0);
        for &(block_bytes, t) in &w.pools {
            match t {
                None => full_block += block_bytes,
                Some(t) if t == first => window_block += block_bytes,
                Some(_) => return None,
            }
        }
        let window_bpt: u64 = w.groups.iter().map(|&(_, _, bpt, _)| bpt).sum();
        Some(PastWindow {
            window,
            held_base: w.state + window_block * (window / w.bs),
            full_block,
            window_block,
            kept_base: w.state + window_bpt * window,
            all_bpt: w.all_bpt,
        })
    }
}

impl Uniform {
    /// The uniform window of `layout` whose aggregates `w` keeps, if it has
    /// one.
    fn of(layout: &KvLayout, w: &Windows) -> Option<Uniform> {
        let holding = || layout.groups().iter().filter(|g| g.bytes_per_token > 0);
        let Span::Window(window) = holding().next()?.span else {
            return None;
        };
        let window = u64::from(window);
        let one = |span: Span| span == Span::Window(window as u32);
        let threshold = w.thresholds.iter().position(|t| t.at == window)?;
        let bpt: u64 = holding().map(|g| g.bytes_per_token).sum();
        let block_bytes: u64 = w.pools.iter().map(|&(b, _)| b).sum();
        let uniform = holding().all(|g| one(g.span))
            && w.pools.iter().all(|&(_, t)| t == Some(threshold))
            && window % w.bs == 0
            && block_bytes == w.bs * bpt
            && w.thresholds[threshold].above.is_some();
        uniform.then(|| Uniform {
            window,
            threshold,
            bpt,
            block_bytes,
            internal: 0,
            entering: Calendar::new(),
            within: 0,
        })
    }

    /// For a decoder whose final KV is `final_bytes` (`state` of it its
    /// recurrent state) and shorter than the window, in blocks of `bs`
    /// tokens: the context from which it is in the block that KV ends in,
    /// and the internal waste there.
    fn last_block(&self, final_bytes: u64, state: u64, bs: u64) -> Option<(u64, u64)> {
        let m = (final_bytes - state) / self.bpt;
        let blocks = m.div_ceil(bs);
        let waste = (blocks * bs - m) * self.bpt;
        (m < self.window && waste > 0).then(|| ((blocks - 1) * bs, waste))
    }

    /// The decoders' reserved and internal bytes at fast step `steps`:
    /// `past` of them are past the window, `above` of those by phase.
    fn slack(&self, past: u64, above: &[u32], steps: u64) -> (u64, u64) {
        let bs = above.len() as u64;
        // Those past it whose `r` is 0 hold no block beyond it.
        let full = above[phase_diff(0, steps + 1, bs) as usize];
        let beyond = past - u64::from(full);
        (
            self.bpt * self.within - self.internal,
            self.internal + self.block_bytes * beyond,
        )
    }
}

/// `r = (-t) mod bs` for a decoder of `phase` at fast step `steps`, which
/// holds `t = phase + steps + 1` tokens modulo the block size `bs`: what
/// its last block has left to fill.
fn rest(bs: u64, phase: usize, steps: u64) -> u64 {
    phase_diff(0, phase as u64 + steps + 1, bs)
}

/// `(a - b) mod bs`, the phase arithmetic of every per-step count: by a
/// mask of the wrapped difference where the block size is a power of two
/// (every engine's default; 2^64 is a multiple of it), where a division by
/// a size known only at run time would cost tens of cycles a step.
#[inline]
fn phase_diff(a: u64, b: u64, bs: u64) -> u64 {
    if bs.is_power_of_two() {
        a.wrapping_sub(b) & (bs - 1)
    } else {
        (a % bs + bs - b % bs) % bs
    }
}

/// Prices a leap's next steps into `durations`: the first does `work`,
/// each next one `growth` more (KV bytes read, attention FLOPs: every
/// decoder a token longer), while `quiet(j)` says nothing changes the
/// batch or its work at the `j`-th of them and the steps, launched at
/// `now`, end before `bound`. Returns how many were priced: the steps then
/// run without these checks ([`CostModel::price_run`] prices each next one
/// by additions).
fn price_steps<C: CostModel>(
    cost: &C,
    memo: &mut crate::hardware::cost::StepMemo,
    (now, bound): (SimTime, SimTime),
    work: StepWork,
    growth: (u64, u64),
    quiet: impl Fn(u64) -> bool,
    durations: &mut [SimDuration],
) -> usize {
    let mut end = now;
    cost.price_run(work, growth, memo, durations, |j, d| {
        end += d;
        quiet(j as u64) && end < bound
    })
}

/// A lazy decoder at the launch of fast step `k`: its context then, and
/// the fast step of its last launch (it has `output - generated` tokens to
/// go).
fn at_launch(s: &Seq, k: u64) -> (u64, u64) {
    let gone = k - s.since;
    let last = k + u64::from(s.output) - (u64::from(s.generated) + gone) - 1;
    (u64::from(s.context) + gone, last)
}

/// What `cache` holds for `slot`, and how much of it is the allocator's
/// rounding ([`Fast::join`]'s arguments).
fn held_parts(cache: &dyn KvCache, slot: SeqId) -> (u64, u64) {
    (cache.held_bytes(slot), cache.allocator_slack_bytes(slot))
}

/// The cache's counters as a leap's steps map their blocks, kept in
/// scalars (the steps charge the cache at once, after them), and the free
/// bytes the head of the queue cannot use (constant while only decoders
/// run: reservations allocate nothing while decoding).
#[derive(Debug)]
struct LeapMemory {
    budget: u64,
    allocated: u64,
    cached: u64,
    external: u64,
    /// Bytes of blocks mapped and not yet charged to the cache.
    mapped: u64,
    /// Tokens the decoders grew by, not yet charged to the cache (charged
    /// by tokens, not bytes, to contiguous regions growing in place).
    grown: u64,
}

impl LeapMemory {
    fn new(usage: MemoryUsage, external: u64) -> Self {
        LeapMemory {
            budget: usage.budget,
            allocated: usage.allocated,
            cached: usage.cached,
            external,
            mapped: 0,
            grown: 0,
        }
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
    /// KV bytes per token of the groups that keep every token (all layers,
    /// in a linear layout).
    bpt: u64,
    /// Attention FLOPs per query-key pair, summed over the layers of the
    /// groups that keep every token.
    flops_per_token_pair: u64,
    /// The aggregates of windowed groups (and recurrent state), for a
    /// layout that has them (paged, blocks on demand).
    windows: Option<Box<Windows>>,
    /// Recurrent state bytes per sequence of a layout with state and no
    /// window (a hybrid of full attention and linear attention, blocks on
    /// demand, no prefix caching): constant while a sequence decodes, so
    /// the aggregates of a linear layout cover it, each decoder `state`
    /// bytes more; 0 otherwise (with windows, [`Windows`] counts it).
    state: u64,
    /// Bytes of one block in every physical group: what a sequence needing
    /// blocks takes in a step (0 for contiguous placement).
    block_bytes: u64,
    /// Whether every sequence holds room for its final length from its
    /// admission on (reserve admission): decode steps allocate nothing, so
    /// no block is counted and no step can run out of memory.
    reserved: bool,
    /// Prefix caching (blocks on demand, full ones named): a lazy decoder's
    /// table is grown at the launches where it needs the cache (a block to
    /// map or to publish), found by [`Fast::visit`]; its other tokens catch
    /// up in [`Engine::materialize`].
    named: bool,
    /// Contiguous regions grown on demand (optimistic admission, a linear
    /// layout): a lazy decoder grows in place, into the hole right after its
    /// region (first-fit) or within its block (buddy), up to its room
    /// ([`ContiguousCache::room`]); at the launch at which it would outgrow
    /// it, the region moves ([`Engine::move_regions`], or the
    /// straightforward engine where a move might fail).
    regions: bool,
    /// `named`: the slot of each lazy decoder, at the fast step at whose
    /// launch it next needs the cache. `regions`: at the launch at which it
    /// would outgrow its room.
    visit: Calendar,
    /// `regions` only: per slot, the fast step of its decoder's one valid
    /// visit ([`NO_VISIT`]: none). An admission into the hole after a
    /// region lowers its room, so its visit is rescheduled and the older
    /// entry goes stale.
    visit_at: Vec<u64>,
    /// `named` only: Σ blocks of the lazy decoders (as of the last launch).
    blocks: u64,
    /// Scratch for the decoders visited at a launch (slots, then their
    /// indices in `running`).
    visiting: Vec<u64>,
    /// With KV tiers: the decoders visited at the launch of the step in
    /// flight, in batch order, with their content and their tokens after
    /// it: at its end their blocks that filled go down to the
    /// write-through tiers, as the straightforward step's end hands down
    /// every scheduled sequence's (the others filled none).
    computed: Vec<(SeqId, Content, u32)>,
    /// Where each sequence is in `running`, by slot, for the entries
    /// `running[..indexed]`: finishers and visitors are found from their
    /// slots in O(1). Entries are only appended to `running` while it is
    /// lazy, so the index grows with it; removing dead entries shifts
    /// them, and empties it.
    index: Vec<u32>,
    indexed: usize,
    /// Lazy decoding sequences alive.
    decoders: u32,
    /// Σ context of the lazy decoders, as of now.
    context_sum: u64,
    /// Lazy decoders by phase: `(context - steps) mod bs`.
    phase: Vec<u32>,
    /// Slot of each lazy decoder, at the fast step count after which it
    /// finishes.
    finish: Calendar,
    /// Internal waste in bytes of each lazy decoder whose waste is not yet
    /// counted, at the fast step at whose launch it enters its last block.
    last_block: Calendar,
    /// Scratch for values taken from a calendar.
    due: Vec<u64>,
    /// Scratch for a second calendar.
    crossing: Vec<u64>,
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
    /// Fast steps run by [`Engine::leap`] (of `steps`).
    pub(super) leapt: u64,
    /// The last fast step's launch found the head of the queue blocked
    /// (by [`Engine::limit`]) and admitted nothing, and no sequence has
    /// ended since: a quiet step would find it blocked again (see
    /// [`Fast::stays_blocked`]).
    blocked: bool,
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
        // Windows and recurrent state only with blocks on demand, where
        // the cache can defer a window's dropped blocks too.
        let windowed = !layout.is_linear();
        let on_demand = !reserved
            && paged
            && layout.block_size > 0
            && engine.cache.as_paged().is_some_and(PagedCache::defers);
        // Prefix caching names full blocks: blocks on demand, each growth
        // that maps or publishes one done at its own launch.
        let named = !reserved
            && paged
            && layout.block_size > 0
            && engine
                .cache
                .as_paged()
                .is_some_and(PagedCache::names_blocks);
        // Contiguous regions grow on demand, in place while they can, when
        // every token adds the same bytes. (On a decode replica room is
        // also reserved between steps, for KV on its way: not covered.)
        let regions = !reserved
            && s.cache.placement == Placement::Contiguous
            && engine.role == super::Role::Colocated
            && engine
                .cache
                .as_contiguous()
                .is_some_and(ContiguousCache::grows_linearly);
        // KV tiers below HBM receive a decoder's blocks as they fill: only
        // named blocks visit a decoder then (see `Fast::computed`).
        let covered = ((reserved && !windowed || on_demand || regions) && !s.cache.prefix_caching
            || named)
            && (s.tiers.is_none() || named)
            && engine.role != super::Role::Prefill
            && engine.samples == 1
            && cfg.max_num_seqs <= cfg.max_batched_tokens;
        if !covered {
            return None;
        }
        let mut windows = match engine.cache.as_paged() {
            Some(cache) if windowed => Some(Box::new(Windows::new(layout, cache)?)),
            _ => None,
        };
        // State and no window: the linear layout's aggregates, plus the
        // state (prefix caching counts each decoder's own blocks, which
        // hold no state: it keeps the windows' per-decoder levels).
        let mut state = 0;
        if let Some(w) = windows.as_ref() {
            if w.state_only() && !named {
                state = w.state;
                windows = None;
            }
        }
        // Block phases matter only to blocks on demand.
        let bs = if reserved || regions {
            1
        } else {
            u64::from(layout.block_size)
        };
        let every_token = || layout.groups().iter().filter(|g| g.span.is_all());
        Some(Fast {
            lazy: false,
            steps: 0,
            bs,
            bpt: every_token().map(|g| g.bytes_per_token).sum(),
            flops_per_token_pair: every_token()
                .map(|g| u64::from(g.layers) * g.flops_per_pair)
                .sum(),
            windows,
            state,
            // Regions grow a token at a time: a "block" of one token, of
            // the bytes a region takes for it (none within a buddy block).
            block_bytes: match (engine.cache.as_paged(), engine.cache.as_contiguous()) {
                (Some(c), _) => c.pools().map(|(_, b)| b).sum(),
                (None, Some(c)) if regions => c.held_per_token(),
                _ => 0,
            },
            reserved,
            named,
            regions,
            visit: Calendar::new(),
            visit_at: Vec::new(),
            blocks: 0,
            visiting: Vec::new(),
            computed: Vec::new(),
            index: Vec::new(),
            indexed: 0,
            decoders: 0,
            context_sum: 0,
            phase: vec![0; bs as usize],
            finish: Calendar::new(),
            last_block: Calendar::new(),
            due: Vec::new(),
            crossing: Vec::new(),
            internal: 0,
            final_bytes: 0,
            rounding: 0,
            tail: 0,
            leapt: 0,
            blocked: false,
        })
    }

    /// The phase of a sequence of `context` tokens as of fast step `since`.
    fn phase_of(&self, context: u32, since: u64) -> usize {
        phase_diff(u64::from(context), since, self.bs) as usize
    }

    /// Schedules the next visit of the lazy decoder in `slot`: at the
    /// launch of fast step `from` it grows to `tokens` tokens, and one more
    /// at each launch after; it needs the cache at the first launch that
    /// takes it past `limit`, unless that comes after `last`, its last
    /// launch.
    fn schedule_visit(&mut self, slot: SeqId, from: u64, tokens: u64, limit: u64, last: u64) {
        let at = from + (limit + 1).saturating_sub(tokens);
        if at <= last {
            self.visit.push(self.steps, at, u64::from(slot));
        }
    }

    /// `regions`: schedules the visit of the lazy decoder in `slot` at the
    /// launch at which it would outgrow its room `limit` (as
    /// [`Fast::schedule_visit`]), replacing any earlier one.
    fn schedule_move(&mut self, slot: SeqId, from: u64, tokens: u64, limit: u64, last: u64) {
        let at = from + (limit + 1).saturating_sub(tokens);
        let i = slot as usize;
        if self.visit_at.len() <= i {
            self.visit_at.resize(i + 1, NO_VISIT);
        }
        self.visit_at[i] = if at <= last { at } else { NO_VISIT };
        if at <= last {
            self.visit.push(self.steps, at, u64::from(slot));
        }
    }

    /// The most tokens `slot` can grow to before it needs the cache at a
    /// launch: with prefix caching, its block work; with regions on demand,
    /// a move (0 otherwise: unused).
    fn growth_limit(&self, cache: &dyn KvCache, slot: SeqId) -> u64 {
        if self.named {
            cache.as_paged().map_or(0, |c| c.growth(slot).1)
        } else if self.regions {
            cache.as_contiguous().map_or(0, |c| c.room(slot))
        } else {
            0
        }
    }

    /// Whether a queue head that `limit` blocked at a step's launch stays
    /// blocked through quiet steps (nothing ends, nothing is admitted): the
    /// sequences and the token budget do not change, and memory only
    /// fills, unless prefix caching may evict cached blocks to admit, or
    /// windows drop blocks as they slide: then a leap checks at each step
    /// that the head still does not fit ([`Engine::leap_windowed_steps`]).
    fn stays_blocked(&self, limit: BatchLimit) -> bool {
        match limit {
            BatchLimit::Load => false,
            BatchLimit::MaxNumSeqs | BatchLimit::TokenBudget => true,
            BatchLimit::KvMemory => !self.named,
        }
    }

    /// The lazy decoders' part of a fast step's work (the KV written
    /// aside): each reads its context, scores its context and new token.
    #[inline(always)]
    fn decoders_work(&self) -> StepWork {
        let n = u64::from(self.decoders);
        let (windowed_read, windowed_flops) = self
            .windows
            .as_ref()
            .map_or((n * self.state, 0), |w| w.work(n));
        StepWork {
            decode_tokens: self.decoders,
            kv_read_bytes: self.bpt * self.context_sum + windowed_read,
            attention_flops: self.flops_per_token_pair * (self.context_sum + n) + windowed_flops,
            ..StepWork::default()
        }
    }

    /// The bytes of the blocks the decoders map at fast step `steps`'s
    /// launch (blocks on demand, not named): those whose context is a
    /// multiple of the block size.
    fn mapped_bytes(&self) -> u64 {
        u64::from(self.phase[self.mapping_phase()]) * self.block_bytes
    }

    /// The phase whose decoders map a block at fast step `steps`'s launch:
    /// those whose context is then a multiple of the block size.
    fn mapping_phase(&self) -> usize {
        phase_diff(0, self.steps, self.bs) as usize
    }

    /// Tokens of a decoder whose final KV is `final_bytes` (its state
    /// aside).
    fn final_tokens(&self, final_bytes: u64) -> u64 {
        (final_bytes - self.state)
            .checked_div(self.bpt)
            .unwrap_or(0)
    }

    /// The lazy decoders' reserved and internal bytes and allocator
    /// rounding at a launch, where each holds `context + 1` tokens (no
    /// windows); `held` is what they hold, used with blocks on demand
    /// that are not named.
    fn decoder_slack(&self, held: u64) -> (u64, u64, u64) {
        let n = u64::from(self.decoders);
        let kept = self.bpt * (self.context_sum + n) + self.state * n;
        if self.reserved {
            // Each holds its final length, fills it up to the end.
            (self.final_bytes - kept, self.internal, self.rounding)
        } else if self.regions {
            // Each holds what it keeps, rounded up to a buddy block.
            (0, 0, held - kept)
        } else if self.named {
            // Full blocks may be shared: each decoder's own blocks.
            let own = self.block_bytes * self.blocks;
            (own - kept - self.internal, self.internal, 0)
        } else {
            (held - kept - self.internal, self.internal, 0)
        }
    }

    /// Adds `seq` (decoding, up to date as of now) to the aggregates;
    /// `held` is what the cache holds for it, `rounding` of which is the
    /// allocator's (both constant while it decodes, when `reserved`);
    /// `limit` the most tokens it can grow to with no block work (when
    /// `named`).
    fn join(&mut self, seq: &mut Seq, held: u64, rounding: u64, limit: u64) {
        seq.since = self.steps;
        self.decoders += 1;
        self.context_sum += u64::from(seq.context);
        let p = self.phase_of(seq.context, seq.since);
        self.phase[p] += 1;
        // It finishes once `generated` reaches `output`.
        let left = u64::from(seq.output - seq.generated);
        self.finish
            .push(self.steps + 1, self.steps + left, u64::from(seq.slot));
        if let Some(w) = self.windows.as_mut() {
            // Its waste is counted a step at a time (`Engine::fast_levels`).
            w.join(u64::from(seq.context), self.steps, left, p, seq.final_bytes);
            return;
        }
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
        if self.named {
            // It holds `context` tokens in whole blocks, and grows to
            // `context + 1` at the next launch.
            let context = u64::from(seq.context);
            invariant!(
                held == self.block_bytes * context.div_ceil(self.bs),
                "blocks on demand hold no spare"
            );
            self.blocks += context.div_ceil(self.bs);
            self.schedule_visit(
                seq.slot,
                self.steps,
                context + 1,
                limit,
                self.steps + left - 1,
            );
        }
        if self.regions {
            // It holds `context` tokens, and grows in place to `context +
            // 1` at the next launch, and on while its room lasts.
            self.schedule_move(
                seq.slot,
                self.steps,
                u64::from(seq.context) + 1,
                limit,
                self.steps + left - 1,
            );
        }
        // Its final KV is `final_bytes / bpt` tokens; in the last block the
        // tail beyond them is internal waste. A step scheduled at context `c`
        // holds `c + 1` tokens, in that block once `c + 1 > (blocks - 1) * bs`.
        let final_tokens = self.final_tokens(seq.final_bytes);
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
        s.context += delta;
        s.generated += delta;
        let (req, slot, context) = (s.req, s.slot, s.context);
        let (reserved, named, regions) = (f.reserved, f.named, f.regions);
        self.records[req as usize].output_tokens += delta;
        if reserved {
            // Within its reservation: no allocation.
            let grown = self.cache.grow(slot, delta);
            invariant!(grown.is_ok(), "a reservation covers the growth");
        } else if named {
            // Up to its growth limit (it was visited wherever it passed
            // one); a visit at this step's launch may have grown it already.
            let (tokens, limit) = self.paged().growth(slot);
            invariant!(u64::from(context) <= limit, "a lazy growth past its limit");
            if context > tokens {
                let grown = self.cache.grow(slot, context - tokens);
                invariant!(grown.is_ok(), "growth within the limit");
            }
        } else if regions {
            // In place, within its room (a launch may have settled it).
            self.contiguous().settle(slot, context);
        } else {
            self.paged().settle(slot, delta);
        }
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
        f.visit.clear();
        f.blocks = 0;
        if let Some(w) = f.windows.as_mut() {
            w.clear();
        }
        f.tail = self.running.len();
    }

    /// Removes dead sequences from `running`, keeping the order.
    fn compact(&mut self) {
        if self.dead > 0 {
            self.running.retain(|s| !s.dead);
            self.dead = 0;
            if let Some(f) = self.fast.as_mut() {
                f.indexed = 0;
            }
        }
    }

    /// Replaces the slots in `slots` (of lazy sequences) by their indices in
    /// `running`, sorted: batch order.
    fn positions(&mut self, slots: &mut [u64]) {
        let f = self.fast.as_mut().expect("lazy implies the fast path");
        for (i, s) in self.running.iter().enumerate().skip(f.indexed) {
            let slot = s.slot as usize;
            if f.index.len() <= slot {
                f.index.resize(slot + 1, 0);
            }
            f.index[slot] = i as u32;
        }
        f.indexed = self.running.len();
        for v in slots.iter_mut() {
            let i = f.index[*v as usize];
            invariant!(
                u64::from(self.running[i as usize].slot) == *v && !self.running[i as usize].dead,
                "a lazy sequence's index"
            );
            *v = u64::from(i);
        }
        slots.sort_unstable();
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
            let (held, rounding) = held_parts(&*self.cache, s.slot);
            let limit = f.growth_limit(&*self.cache, s.slot);
            f.join(s, held, rounding, limit);
        }
        f.lazy = true;
        f.tail = decoders;
        f.indexed = 0;
        true
    }

    /// Starts the next step on the fast path if it covers it: every running
    /// sequence decodes one token and the cache has a block for each that
    /// needs one; then admission as usual. Returns whether it did.
    pub(super) fn try_fast_step(&mut self) -> bool {
        if let Some(f) = self.fast.as_mut() {
            f.blocked = false;
        }
        if self.fast.is_none()
            || !self.swapped.is_empty()
            || self.running.len() == self.dead
            || !self.enter_lazy()
        {
            return false;
        }
        let f = self.fast.as_ref().expect("checked above");
        let decoders = f.decoders;
        if let Some(t) = self.tiers.as_ref() {
            if self
                .running
                .get(f.tail)
                .is_some_and(|s| t.loading(s.slot, self.now))
            {
                // The pending prefill waits for its blocks from a lower
                // tier: admissions may pass it, and sequences admitted
                // after it decode before it, which lazy form does not hold.
                return false;
            }
        }
        if f.named {
            if !self.visit_growing() {
                return false;
            }
        } else if f.regions {
            if self.visit_regions() {
                self.contiguous().defer(u64::from(decoders));
            } else if !self.move_regions() {
                // A region outgrows its room and first-fit may find none:
                // the straightforward step moves what it can and does what
                // `on_oom` says for the rest.
                return false;
            }
        } else if !f.reserved {
            let mapped = f.mapped_bytes();
            let dropped = f.windows.as_ref().map_or(0, |w| w.dropped_bytes(f.steps));
            if !self.paged().defer(mapped, dropped) {
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
        // Regions on demand: an admission places a region first-fit, and the
        // head's unusable holes are measured, so the holes must be as this
        // launch leaves them: every region grown in place to its tokens.
        let settled =
            self.fast.as_ref().expect("checked above").regions && !self.waiting.is_empty();
        if settled {
            self.settle_regions(1);
        }
        let before = self.running.len();
        self.limit = self.admit_waiting(&mut budget);
        if settled && self.running.len() > before {
            // A region placed at the start of the hole after a decoder's
            // leaves it no room there.
            self.reschedule_moves();
        }
        let f = self.fast.as_mut().expect("checked above");
        // Nothing pending, nothing admitted, the head blocked.
        f.blocked = f.tail == self.running.len() && f.stays_blocked(self.limit);
        self.fast_launch();
        true
    }

    /// The cache, paged (blocks on demand).
    fn paged(&mut self) -> &mut PagedCache {
        self.cache
            .as_paged_mut()
            .expect("blocks on demand run on a paged cache")
    }

    /// The cache, contiguous (regions on demand).
    fn contiguous(&mut self) -> &mut ContiguousCache {
        self.cache
            .as_contiguous_mut()
            .expect("regions on demand run on a contiguous cache")
    }

    /// Regions on demand, at a fast step's launch: checks the lazy decoders
    /// due a visit (those whose room was to run out now); `false` if one
    /// would outgrow its room, which may have grown since it was scheduled
    /// (a neighbour ended): then it is rescheduled.
    #[inline(never)]
    fn visit_regions(&mut self) -> bool {
        let f = self.fast.as_mut().expect("fast step");
        let k = f.steps;
        let mut visiting = std::mem::take(&mut f.visiting);
        f.visit.take(k, &mut visiting);
        // Entries a later schedule replaced are stale.
        visiting.retain(|&slot| f.visit_at.get(slot as usize) == Some(&k));
        visiting.sort_unstable();
        visiting.dedup();
        self.positions(&mut visiting);
        let mut fits = true;
        for &i in &visiting {
            let s = self.running[i as usize];
            let (context, last) = at_launch(&s, k);
            let f = self.fast.as_mut().expect("fast step");
            let limit = f.growth_limit(&*self.cache, s.slot);
            if context + 1 > limit {
                fits = false;
                break;
            }
            f.schedule_move(s.slot, k, context + 1, limit, last);
        }
        visiting.clear();
        self.fast.as_mut().expect("fast step").visiting = visiting;
        fits
    }

    /// Regions on demand, at a launch at which a decoder outgrows its room:
    /// grows every decoder as the straightforward step would (each settled
    /// to its tokens, then a token more in batch order, in place or moved
    /// first-fit, the counters charged as it goes) and reschedules every
    /// visit, where no move can fail (see
    /// [`ContiguousCache::moves_surely`]); `false` otherwise, with the
    /// regions settled as [`Engine::materialize_all`] settles them.
    #[inline(never)]
    fn move_regions(&mut self) -> bool {
        let f = self.fast.as_ref().expect("fast step");
        let (tail, n) = (f.tail, u64::from(f.decoders));
        self.settle_regions(0);
        if !self.contiguous().moves_surely(n) {
            return false;
        }
        for i in 0..tail {
            let s = self.running[i];
            if !s.dead {
                let grown = self.cache.grow(s.slot, 1);
                invariant!(grown.is_ok(), "a move into the largest hole");
            }
        }
        self.reschedule_moves();
        true
    }

    /// Regions on demand: grows every lazy decoder's region in place to
    /// its context at this launch and `ahead` tokens more (1: what it holds
    /// once the launch has grown it, the counters charged already; 0: as
    /// before the launch). O(batch).
    #[inline(never)]
    fn settle_regions(&mut self, ahead: u64) {
        let f = self.fast.as_ref().expect("fast step");
        let (k, tail) = (f.steps, f.tail);
        for i in 0..tail {
            let s = self.running[i];
            if !s.dead {
                let tokens = at_launch(&s, k).0 + ahead;
                let tokens = u32::try_from(tokens).expect("a sequence's tokens fit 32 bits");
                self.contiguous().settle(s.slot, tokens);
            }
        }
    }

    /// Regions on demand, after an admission this launch: every lazy
    /// decoder's visit again, from its room now. O(batch).
    #[inline(never)]
    fn reschedule_moves(&mut self) {
        let f = self.fast.as_ref().expect("fast step");
        let (k, tail) = (f.steps, f.tail);
        for i in 0..tail {
            let s = self.running[i];
            if s.dead {
                continue;
            }
            let (context, last) = at_launch(&s, k);
            let f = self.fast.as_mut().expect("fast step");
            let limit = f.growth_limit(&*self.cache, s.slot);
            f.schedule_move(s.slot, k + 1, context + 2, limit, last);
        }
    }

    /// Prefix caching, at a fast step's launch: grows the lazy decoders that
    /// need the cache now (a block to map, a full one to publish), in batch
    /// order as the straightforward step grows every decoder, and schedules
    /// their next visits; `false`, with nothing grown, when their new blocks
    /// do not fit the free memory (the straightforward step decides). The
    /// other decoders' growth is counters only, whatever its order.
    fn visit_growing(&mut self) -> bool {
        let f = self.fast.as_mut().expect("fast step");
        let (k, bs, block_bytes) = (f.steps, f.bs, f.block_bytes);
        let mut visiting = std::mem::take(&mut f.visiting);
        f.visit.take(k, &mut visiting);
        // Their indices in `running`, in batch order.
        self.positions(&mut visiting);
        // A visitor's context at this launch: it grows a block exactly when
        // its blocks are full.
        let need: u64 = visiting
            .iter()
            .map(|&i| u64::from(at_launch(&self.running[i as usize], k).0 % bs == 0) * block_bytes)
            .sum();
        let fits = need <= self.paged().free_bytes();
        if fits {
            for &i in &visiting {
                let s = self.running[i as usize];
                let (context, last) = at_launch(&s, k);
                let (tokens, _) = self.paged().growth(s.slot);
                let grown = self
                    .cache
                    .grow(s.slot, (context + 1 - u64::from(tokens)) as u32);
                invariant!(grown.is_ok(), "the visitors' blocks fit");
                let (_, limit) = self.paged().growth(s.slot);
                let f = self.fast.as_mut().expect("fast step");
                if let (Some(c), true) = (s.content, self.tiers.is_some()) {
                    f.computed.push((s.slot, c, (context + 1) as u32));
                }
                f.blocks += u64::from(context % bs == 0);
                f.schedule_visit(s.slot, k + 1, context + 2, limit, last);
            }
        }
        visiting.clear();
        self.fast.as_mut().expect("fast step").visiting = visiting;
        fits
    }

    /// Prices the fast step in flight from the aggregates and the sequences
    /// admitted in it.
    fn fast_launch(&mut self) {
        let f = self.fast.as_mut().expect("fast step");
        // Sequences entering their last block in this step start counting
        // their internal waste.
        f.last_block.take(f.steps, &mut f.due);
        f.internal += f.due.iter().sum::<u64>();
        let mut work = f.decoders_work();
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

    /// Whether [`Engine::leap`] may run steps now: between steps, in lazy
    /// form, with only decoders running, nothing to admit (an empty queue,
    /// or a head that stays blocked), bring back or copy (a step then only
    /// decodes, and admits nothing), and no end the cluster has yet to
    /// follow up (it may send this replica more at the same instant).
    fn may_leap(&self) -> bool {
        self.fast.as_ref().is_some_and(|f| {
            f.lazy
                && f.decoders > 0
                && f.tail == self.running.len()
                && (self.waiting.is_empty() || f.blocked && !f.regions)
        }) && !self.busy
            && self.down_until.is_none()
            && self.received.is_empty()
            && self.swapped.is_empty()
            && self.pending_swap_bytes == 0
            && self.done.is_empty()
            && self.routed.is_empty()
    }

    /// Runs, in one loop, the fast steps that start now and end before
    /// `bound()` (the next event, its own or from outside) in which only the
    /// lazy decoders run and none finishes or needs the cache beyond a
    /// counted block: each step is priced, recorded and ended as
    /// [`Engine::try_fast_step`] and [`Engine::fast_finish`] would, without
    /// an event per step or the scheduler's checks. A step's admission
    /// finds nothing (limit `Load`) or the head blocked as at the last
    /// launch (by the same limit); a step is left to the event loop if its
    /// end is not before `bound` (what is due then may change the batch) or
    /// its start not before the head's queue timeout, if a sequence
    /// finishes at its end or is visited at its launch, or if its new
    /// blocks do not fit.
    pub(super) fn leap(&mut self, bound: impl FnOnce() -> SimTime) -> Result<(), Stopped> {
        /// Steps priced at once, in a loop of their own that also finds
        /// how many stay quiet and end before the bound.
        const CHUNK: usize = 32;
        // Most often, with a large batch, a decoder finishes at the next
        // step's end: nothing to leap, and nothing to set up.
        let quiet_next = self
            .fast
            .as_ref()
            .is_some_and(|f| f.lazy && f.finish.quiet_at(f.steps + 1));
        if !quiet_next || !self.may_leap() {
            return Ok(());
        }
        // A queue's head stays blocked (`Fast::blocked`), by the limit that
        // blocked it, until a timeout takes it off the queue at the start
        // of a step: no step may start from then on.
        let limit = if self.waiting.is_empty() {
            BatchLimit::Load
        } else {
            self.limit
        };
        let bound = match self.head_expiry() {
            Some(expiry) if expiry <= self.now => return Ok(()),
            Some(expiry) => bound().min(expiry),
            None => bound(),
        };
        if let Some(w) = self.fast.as_ref().and_then(|f| f.windows.as_ref()) {
            if w.uniform.is_none() && self.dead > 0 {
                // Mixed windows read every decoder's waste at every leapt
                // step (`windowed_slack`), dead entries passed over: drop
                // them first (only decoders run: `may_leap`).
                self.compact();
                self.fast.as_mut().expect("may_leap").tail = self.running.len();
            }
            // Windows drop blocks as they slide: a head blocked by memory
            // may fit at a later launch.
            let head_need = (limit == BatchLimit::KvMemory).then(|| self.head_need());
            return self.leap_windowed(bound, limit, head_need);
        }
        let bytes_per_token = self.layout.bytes_per_token();
        let mut durations = [SimDuration::ZERO; CHUNK];
        // What the steps charge the cache, kept here and charged at once
        // (`PagedCache::defer` adds up), and the holes the head of the queue
        // cannot use (reservations allocate nothing while decoding: they
        // stay as they are); read once a step is to run.
        let mut memory = None;
        loop {
            let f = self.fast.as_ref().expect("may_leap");
            // The next steps that end before `bound`, at whose end no
            // decoder finishes and at whose launch none is visited, and
            // their prices: each decoder a token longer a step.
            let n = u64::from(f.decoders);
            let mut work = f.decoders_work();
            work.kv_write_bytes = n * bytes_per_token;
            let priced = price_steps(
                &self.cost,
                &mut self.step_memo,
                (self.now, bound),
                work,
                (f.bpt * n, f.flops_per_token_pair * n),
                |j| {
                    let k = f.steps + j;
                    f.finish.quiet_at(k + 1) && (!f.named && !f.regions || f.visit.quiet_at(k))
                },
                &mut durations,
            );
            if priced == 0 {
                return Ok(());
            }
            let memory = match memory.as_mut() {
                Some(m) => m,
                None => {
                    let external = if f.reserved {
                        self.unusable_for_head()
                    } else {
                        0
                    };
                    memory.insert(LeapMemory::new(self.cache.usage(), external))
                }
            };
            let ran = self.leap_steps(&durations[..priced], memory, limit);
            if self.fast.as_ref().is_some_and(|f| f.regions) {
                self.contiguous().defer(memory.grown);
                memory.grown = 0;
                memory.mapped = 0;
            } else if memory.mapped > 0 {
                let charged = self.paged().defer(memory.mapped, 0);
                invariant!(charged, "a leap's blocks fit");
                memory.mapped = 0;
            }
            if ran? < CHUNK {
                return Ok(());
            }
        }
    }

    /// Runs leapt steps of `durations` in turn (each launched, recorded and
    /// ended as `launch_work`, the step end's event and `fast_finish` with
    /// no finisher would) while their blocks fit in `memory`; the blocks
    /// they map are left in `memory.mapped` for the caller to charge the
    /// cache. Returns how many ran. The steps' memory is tracked in scalars
    /// and their statistics recorded in bulk (integer sums: the same as one
    /// at a time).
    #[inline(always)]
    fn leap_steps(
        &mut self,
        durations: &[SimDuration],
        memory: &mut LeapMemory,
        limit: BatchLimit,
    ) -> Result<usize, Stopped> {
        let f = self.fast.as_mut().expect("may_leap");
        let batch = f.decoders;
        let n = u64::from(batch);
        let charge = !f.reserved && !f.named;
        // The phase whose decoders map a block at this step's launch, one
        // earlier each step.
        let mut due = f.mapping_phase();
        let mut ran = 0;
        let mut busy = 0;
        let mut stopped = Ok(());
        let start = self.now;
        let mut sums = LevelSums::new(memory.budget);
        let (mut last_kv, mut last_reserved, mut last_internal, mut last_rounding) = (0, 0, 0, 0);
        for &duration in durations {
            // The step runs: its launch, as `try_fast_step` and
            // `fast_launch` with nothing to admit, then its record and end.
            let f = self.fast.as_mut().expect("may_leap");
            if charge {
                let mapped = u64::from(f.phase[due]) * f.block_bytes;
                if mapped > memory.budget - memory.allocated {
                    break;
                }
                memory.allocated += mapped;
                memory.mapped += mapped;
                memory.grown += n;
            }
            if !f.last_block.quiet_at(f.steps) {
                f.last_block.take(f.steps, &mut f.due);
                f.internal += f.due.iter().sum::<u64>();
            }
            let (reserved, internal, rounding) =
                f.decoder_slack(memory.allocated - self.receiving_bytes);
            let levels = super::levels_of(
                memory.budget,
                memory.allocated,
                memory.cached,
                reserved,
                internal,
                memory.external,
                rounding,
            );
            invariant_eq!(
                levels,
                self.uncharged_levels(memory.mapped),
                "a leap's levels"
            );
            // (Field by field: a copy of the whole struct, read back from the
            // stack in wider loads than it was written with, stalls.)
            (last_kv, last_reserved, last_internal, last_rounding) =
                (levels.kv, reserved, internal, rounding);
            let ended = self.leapt(batch, duration, levels, &mut sums);
            busy += duration.as_nanos();
            ran += 1;
            if let Err(e) = ended {
                stopped = Err(e);
                break;
            }
            let f = self.fast.as_mut().expect("may_leap");
            f.steps += 1;
            f.context_sum += n;
            f.leapt += 1;
            due = if due == 0 { f.bs as usize - 1 } else { due - 1 };
        }
        if ran > 0 {
            self.limit = limit;
            self.stats.steps(batch, ran as u64, busy, limit);
            let last = super::levels_of(
                memory.budget,
                last_kv,
                memory.cached,
                last_reserved,
                last_internal,
                memory.external,
                last_rounding,
            );
            self.stats.absorb(start, &sums, last, self.now);
        }
        stopped.map(|()| ran)
    }

    /// [`Engine::leap`] with windows: each step priced from the windows'
    /// sums as they stand (a decoder crossing a window changes the next
    /// step's work), its blocks mapped and dropped by phase, and its levels
    /// taken as [`Engine::fast_levels`] takes them.
    fn leap_windowed(
        &mut self,
        bound: SimTime,
        limit: BatchLimit,
        head_need: Option<u64>,
    ) -> Result<(), Stopped> {
        /// Steps priced at once, as [`Engine::leap`] does.
        const CHUNK: usize = 32;
        let bytes_per_token = self.layout.bytes_per_token();
        let mut durations = [SimDuration::ZERO; CHUNK];
        loop {
            // The next steps that end before `bound`, at whose end no
            // decoder finishes and at whose launch (after the first) none
            // crosses a window: each one's work is the last one's plus what
            // a token more on every decoder adds.
            let f = self.fast.as_ref().expect("may_leap");
            let w = f.windows.as_deref().expect("windows");
            let n = u64::from(f.decoders);
            let mut work = f.decoders_work();
            work.kv_write_bytes = n * bytes_per_token;
            let (read, flops) = w.growth();
            let priced = price_steps(
                &self.cost,
                &mut self.step_memo,
                (self.now, bound),
                work,
                (read + f.bpt * n, flops + f.flops_per_token_pair * n),
                |j| f.finish.quiet_at(f.steps + j + 1) && (j == 0 || w.quiet_at(f.steps + j)),
                &mut durations,
            );
            if priced == 0 || !self.leap_windowed_steps(&durations[..priced], limit, head_need)? {
                return Ok(());
            }
        }
    }

    /// Runs leapt steps of `durations` under windows in turn, as
    /// [`Engine::leap_steps`] runs them, while their blocks fit; returns
    /// whether all ran. Each step maps and drops its blocks by phase, and
    /// takes its levels as [`Engine::fast_levels`] would, from the bytes
    /// allocated kept in a scalar (under windows, blocks are on demand and
    /// anonymous: no tail runs in a leap, no block is cached and no hole is
    /// unusable); the steps' statistics are recorded in bulk, as
    /// [`Engine::leap_steps`] records them. With `head_need` (the bytes the
    /// head of the queue, blocked by memory, would take), a step stops the
    /// leap where its launch would admit the head: the blocks the windows
    /// drop leave that much free.
    #[inline(always)]
    fn leap_windowed_steps(
        &mut self,
        durations: &[SimDuration],
        limit: BatchLimit,
        head_need: Option<u64>,
    ) -> Result<bool, Stopped> {
        let usage = self.cache.usage();
        let (budget, mut allocated) = (usage.budget, usage.allocated);
        let f = self.fast.as_ref().expect("may_leap");
        let batch = f.decoders;
        let n = u64::from(batch);
        let mut sums = LevelSums::new(budget);
        let start = self.now;
        let (mut ran, mut busy) = (0, 0);
        let mut last = None;
        let mut all = Ok(true);
        for &duration in durations {
            // The step runs: its launch, as `try_fast_step` and
            // `fast_launch` with nothing to admit, then its record and end.
            let f = self.fast.as_ref().expect("may_leap");
            let w = f.windows.as_deref().expect("windows");
            let (mapped, dropped) = (f.mapped_bytes(), w.dropped_bytes(f.steps));
            // As `try_fast_step`: the decoders' blocks first (if they fit),
            // then the head's admission, which the cache grants when the
            // free bytes cover it.
            if head_need.is_some_and(|need| {
                mapped <= budget - allocated && need <= budget - (allocated + mapped - dropped)
            }) {
                all = Ok(false);
                break;
            }
            if !self.paged().defer(mapped, dropped) {
                all = Ok(false);
                break;
            }
            allocated = allocated + mapped - dropped;
            let f = self.fast.as_ref().expect("may_leap");
            let (reserved, internal) = self.windows_waste(f.windows.as_deref().expect("windows"));
            let levels =
                super::levels_of(budget, allocated, usage.cached, reserved, internal, 0, 0);
            invariant_eq!(levels, self.fast_levels(), "a windowed leap's levels");
            last = Some(levels);
            let ended = self.leapt(batch, duration, levels, &mut sums);
            busy += duration.as_nanos();
            ran += 1;
            if let Err(e) = ended {
                all = Err(e);
                break;
            }
            let f = self.fast.as_mut().expect("may_leap");
            f.steps += 1;
            f.context_sum += n;
            let w = f.windows.as_mut().expect("windows");
            w.advance(f.steps, &mut f.crossing, &f.phase);
            f.leapt += 1;
        }
        if let Some(last) = last {
            self.limit = limit;
            self.stats.steps(batch, ran, busy, limit);
            self.stats.absorb(start, &sums, last, self.now);
        }
        all
    }

    /// A leapt step of `batch` decoders launched now, lasting `duration`
    /// at `levels`, is recorded as `launched` records it (its levels added
    /// to `sums`, recorded in bulk) and ends as `fast_finish` with no
    /// finisher ends it: the clock moves on and the guard counts it. The
    /// caller moves the decoders on.
    #[inline(always)]
    fn leapt(
        &mut self,
        batch: u32,
        duration: SimDuration,
        levels: ByteLevels,
        sums: &mut LevelSums,
    ) -> Result<(), Stopped> {
        self.step_started = self.now;
        sums.add(&levels, duration.as_nanos());
        self.timeline_row(batch, duration, levels);
        self.now += duration;
        self.guard.tick(self.now)
    }

    /// The bytes the head of the queue would take from the free bytes if
    /// admitted now, as `admit_waiting` admits it (no prefix caching under
    /// windows).
    fn head_need(&self) -> u64 {
        let w = self.waiting.front().expect("a head blocked by memory");
        self.cache
            .as_paged()
            .expect("windows are paged")
            .admission_bytes(&self.waiting_seq(w, 0))
    }

    /// When a step starting then would find the head of the queue waited
    /// past `scheduler.queue_timeout_s` and take it off the queue (as
    /// `start_step` does); `None` if none would.
    fn head_expiry(&self) -> Option<SimTime> {
        let limit = self.cfg.queue_timeout?;
        let r = &self.records[self.waiting.front()?.req as usize];
        r.admitted.is_none().then(|| r.arrival + limit)
    }

    /// Memory levels in lazy form: the decoders from the aggregates (at
    /// launch, when each holds `context + 1` tokens), the sequences admitted
    /// in the step in flight one by one, as [`Engine::memory_levels`].
    pub(super) fn fast_levels(&self) -> ByteLevels {
        self.uncharged_levels(0)
    }

    /// [`Engine::fast_levels`] with `uncharged` more bytes allocated: blocks
    /// the decoders have mapped that the cache is yet to be charged (a
    /// leap's, charged after its steps).
    fn uncharged_levels(&self, uncharged: u64) -> ByteLevels {
        let f = self.fast.as_ref().expect("lazy implies the fast path");
        let mut usage = self.cache.usage();
        usage.allocated += uncharged;
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
        if let Some(w) = f.windows.as_ref() {
            let (r, i) = self.windows_waste(w);
            reserved += r;
            internal += i;
        } else if f.decoders > 0 {
            // Held by decoders (blocks on demand, not named): everything
            // allocated but the tail's blocks and the room reserved for KV
            // being received.
            let (r, i, rounding) =
                f.decoder_slack(usage.allocated - tail_held - self.receiving_bytes);
            reserved += r;
            internal += i;
            slack += rounding;
        }
        // Blocks on demand leave no external fragmentation; contiguous
        // regions may (their holes are settled whenever a head waits).
        let external = if f.reserved || f.regions {
            self.unusable_for_head()
        } else {
            0
        };
        super::levels_of_usage(&usage, reserved, internal, external, slack)
    }

    /// The lazy decoders' reserved and internal bytes under windows (each
    /// holding `context + 1` tokens at launch): from the sums of a uniform
    /// window, or decoder by decoder.
    #[inline(always)]
    fn windows_waste(&self, w: &Windows) -> (u64, u64) {
        let f = self.fast.as_ref().expect("lazy implies the fast path");
        match w.uniform.as_ref() {
            Some(u) => {
                let above = w.thresholds[u.threshold].above.as_deref();
                let past = u64::from(f.decoders) - w.thresholds[u.threshold].below;
                let slack = u.slack(past, above.expect("a window's counts"), f.steps);
                invariant_eq!(slack, self.windowed_slack(w), "a uniform window's waste");
                slack
            }
            None => self.windowed_slack(w),
        }
    }

    /// The lazy decoders' reserved and internal bytes under windows, each
    /// decoder visited (holding `context + 1` tokens at launch).
    #[inline(always)]
    fn windowed_slack(&self, w: &Windows) -> (u64, u64) {
        let f = self.fast.as_ref().expect("lazy implies the fast path");
        let (mut reserved, mut internal) = (0, 0);
        for s in self.running[..f.tail].iter().filter(|s| !s.dead) {
            let tokens = s.context + (f.steps - s.since) as u32 + 1;
            let (held, kept) = w.held_kept(u64::from(tokens));
            invariant_eq!(
                kept,
                self.layout.kept_bytes(tokens),
                "a windowed decoder's kept bytes"
            );
            let kept = kept.min(held);
            let fill = s.final_bytes.min(held).max(kept);
            reserved += fill - kept;
            internal += held - fill;
        }
        (reserved, internal)
    }

    /// The fast step in flight ends: every decoder advances a token (by the
    /// clock), finishers end in batch order, then the sequences admitted in
    /// the step emit their first token and join the decoders.
    pub(super) fn fast_finish(&mut self) {
        self.busy = false;
        self.running_slack.set(None);
        self.step_fast = false;
        let f = self.fast.as_mut().expect("fast step");
        f.steps += 1;
        f.context_sum += u64::from(f.decoders);
        if let Some(w) = f.windows.as_mut() {
            w.advance(f.steps, &mut f.crossing, &f.phase);
        }
        if let Some(t) = self.tiers.as_mut() {
            // The visitors' blocks that filled, first in batch order as
            // they are the first decoders to have filled any.
            for &(slot, content, tokens) in &f.computed {
                t.computed(slot, &content, tokens);
            }
            f.computed.clear();
        }
        f.finish.take(f.steps, &mut f.due);
        // An end frees memory and a seat: the head may fit now.
        f.blocked &= f.due.is_empty();
        let mut due = std::mem::take(&mut f.due);
        // Their indices in `running`, in batch order.
        self.positions(&mut due);
        for &i in &due {
            let i = i as usize;
            self.materialize(i);
            let s = self.running[i];
            invariant!(!s.dead && s.generated == s.output);
            let f = self.fast.as_mut().expect("fast step");
            f.decoders -= 1;
            f.context_sum -= u64::from(s.context);
            let p = f.phase_of(s.context, s.since);
            f.phase[p] -= 1;
            if let Some(w) = f.windows.as_mut() {
                w.leave(u64::from(s.context), p, s.final_bytes, f.steps);
            } else if f.reserved {
                let (held, rounding) = held_parts(&*self.cache, s.slot);
                f.internal -= held - rounding - s.final_bytes;
                f.final_bytes -= s.final_bytes;
                f.rounding -= rounding;
            } else {
                if f.named {
                    f.blocks -= u64::from(s.context).div_ceil(f.bs);
                }
                // It has been in its last block since its last step at the
                // latest.
                if let Some(at) = f.visit_at.get_mut(s.slot as usize) {
                    // Its slot may be taken again before its entry is due.
                    *at = NO_VISIT;
                }
                let final_tokens = f.final_tokens(s.final_bytes);
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
        // The first sequence still prefilling, if any.
        let mut pending = None;
        for i in tail..self.running.len() {
            let mut s = self.running[i];
            if s.scheduled == 0 {
                // A pending chunked prefill the budget did not reach, or a
                // sequence waiting for its load from a lower tier.
                pending = pending.or(Some(i));
                continue;
            }
            s.prefilled += s.scheduled;
            s.context = s.prefilled;
            s.scheduled = 0;
            if let (Some(t), Some(c)) = (self.tiers.as_mut(), s.content.as_ref()) {
                t.computed(s.slot, c, s.context);
            }
            if s.prefilled < s.prefill_target {
                // Part of a chunked prefill: the rest in later steps.
                self.running[i] = s;
                pending = pending.or(Some(i));
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
                let (held, rounding) = held_parts(&*self.cache, s.slot);
                let f = self.fast.as_mut().expect("fast step");
                let limit = f.growth_limit(&*self.cache, s.slot);
                f.join(&mut s, held, rounding, limit);
                self.running[i] = s;
            }
        }
        if let Some(t) = self.tiers.as_mut() {
            t.flush(self.now);
        }
        if pending.is_some_and(|i| i + 1 < self.running.len()) {
            // A sequence waiting for its load, admitted ahead of sequences
            // now decoding: not lazy form (decoders, then at most one
            // prefill). The straightforward engine runs until it loads.
            invariant!(self.tiers.is_some(), "only a load holds a prefill back");
            self.materialize_all();
        } else {
            // Dead entries go once they are half of `running`: amortized O(1).
            if self.dead > 32 && self.dead * 2 > self.running.len() {
                self.compact();
            }
            // A pending prefill is the last sequence: admissions stop when
            // the budget runs out (or pass a sequence that loads).
            let pending = pending.is_some();
            invariant!(!pending || self.running.last().is_some_and(|s| !s.decoding()));
            self.fast.as_mut().expect("fast step").tail = self.running.len() - usize::from(pending);
        }
        let live = self.running.len() - self.dead;
        if live == 0 {
            self.record_levels();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Calendar;
    use std::collections::BTreeSet;

    /// Every value comes out once, at its step: those pushed within the
    /// span in the order they were pushed, those beyond it where a take
    /// brought them within it (by step, then value), as a ring of `Vec`s
    /// and a heap would give them; through wrap-arounds of the ring, quiet
    /// steps skipped, node reuse and a clear.
    #[test]
    fn a_calendar_yields_each_value_at_its_step() {
        let span = Calendar::SPAN;
        let mut c = Calendar::new();
        let mut ring: Vec<Vec<u64>> = vec![Vec::new(); (4 * span) as usize];
        let mut heap = BTreeSet::new();
        let mut out = Vec::new();
        let mut value = 0;
        for now in 0..3 * span {
            // Due now, soon, at the span's edge, and beyond it.
            for ahead in [0, 1, 7, span - 1, span, span + 3, 2 * span] {
                let at = now + ahead;
                if (at as usize) < ring.len() && (now + value) % 3 != 0 {
                    c.push(now, at, value);
                    if ahead < span {
                        ring[at as usize].push(value);
                    } else {
                        heap.insert((at, value));
                    }
                }
                value += 1;
            }
            let quiet = ring[now as usize].is_empty() && heap.first().is_none_or(|&(w, _)| w > now);
            assert_eq!(c.quiet_at(now), quiet, "step {now}");
            if quiet && now % 2 == 0 {
                continue;
            }
            while let Some(&(when, v)) = heap.first().filter(|&&(w, _)| w < now + span) {
                heap.remove(&(when, v));
                ring[when as usize].push(v);
            }
            c.take(now, &mut out);
            assert_eq!(out, std::mem::take(&mut ring[now as usize]), "step {now}");
        }
        // Nodes freed by the takes were reused: no more than were pending.
        assert!(
            c.nodes.len() <= 6 * span as usize,
            "{} nodes",
            c.nodes.len()
        );
        c.clear();
        for at in 3 * span..4 * span {
            assert!(c.quiet_at(at));
        }
        c.push(0, 5, 42);
        c.take(5, &mut out);
        assert_eq!(out, [42]);
    }
}
