//! Contiguous placement: the Orca-style baselines of the PagedAttention paper
//! (Kwon et al., SOSP 2023).
//!
//! The KV budget is a linear address space of *granules*: `granule` is the gcd
//! of the layer groups' bytes per token and recurrent state bytes (for a
//! uniform model, exactly one
//! token's KV, so a granule is a token slot), and the space is
//! `floor(budget / granule)` granules long. Every region size is a whole number
//! of granules, so nothing is lost to rounding inside the space, and addresses
//! stay as small as tokens for the common uniform case.
//!
//! Every live sequence owns one region `[start, start + len)` holding its KV
//! for a *capacity* of `cap` tokens (its reservation at admission, at least its
//! tokens): each layer group keeps at most `peak_g(cap)` tokens of it (all,
//! its window, or its chunk) at its bytes per token, and a recurrent group its
//! state, so `len = (Σ_g peak_g(cap) * bpt_g + state) / granule`. Growth past
//! a group's window or chunk costs that group nothing more. Free
//! space is a set of coalesced holes; placement is first-fit (the
//! lowest-address hole that is big enough). Because a region must be one
//! piece, free memory can exceed a request while no hole fits it: that is the
//! external fragmentation this policy exists to show, measured per waiting
//! request by [`KvCache::unusable_free_bytes`].
//!
//! Growing past the capacity behaves like `realloc`: extend in place into the
//! hole right after the region if it is big enough, otherwise move the region to
//! the first hole that fits the new size (the region's own granules count as
//! free for that search, as a `memmove` may overlap them). Regions cannot be
//! shared, so a fork copies the parent's whole region; there is no prefix
//! caching.
//!
//! With `allocator = "buddy"` the same regions come from a binary buddy
//! allocator instead (`contiguous/buddy.rs`), as the PagedAttention paper
//! assumes for its Orca baselines: a region takes the smallest power-of-two
//! block of granules that holds it, aligned to its size, and freed blocks merge
//! only with their buddies. The rounding is held but holds nothing; it is
//! reported by [`KvCache::allocator_slack_bytes`] and counted as external
//! fragmentation, as the paper's Fig. 2 counts it. A region that outgrows its
//! block moves to a larger one (allocated before the old one is freed, as
//! `realloc` over a buddy system does).
//!
//! Complexity: holes live in an address-ordered treap augmented with subtree
//! maximum lengths (`contiguous/holes.rs`), so first-fit, coalescing and
//! relocation are O(log n) in live sequences; per-sequence state is a `Vec`
//! indexed by [`SeqId`]; the memory counters are maintained incrementally, so
//! [`KvCache::usage`] is O(1). [`KvCache::unusable_free_bytes`] visits the
//! holes big enough for the request (O(holes) at worst, once per step). The
//! buddy system keeps an address-ordered set of free blocks per order: an
//! allocation or a free is O(orders x log blocks), and only admissions,
//! relocations and releases touch it, never a token within a block.

mod buddy;
mod holes;

use std::ops::Range;

use super::{Admitted, Allocator, KvCache, KvLayout, MemoryUsage, NoRoom, SeqId, SeqInfo};
use buddy::{Buddy, order_for};
use holes::Holes;

/// The free space and how regions are carved from it.
#[derive(Clone, Debug)]
enum Free {
    /// Coalesced holes, first-fit.
    FirstFit(Holes),
    /// Power-of-two blocks of a buddy system.
    Buddy(Buddy),
}

impl Free {
    /// A free space of `space` granules for `allocator` (empty until
    /// [`Free::reset`]).
    fn new(allocator: Allocator, space: u64) -> Self {
        match allocator {
            Allocator::FirstFit => Free::FirstFit(Holes::new()),
            Allocator::Buddy => Free::Buddy(Buddy::new(space)),
        }
    }

    /// Frees the whole space `[0, space)`.
    fn reset(&mut self, space: u64) {
        match self {
            Free::FirstFit(holes) => {
                holes.clear();
                if space > 0 {
                    holes.insert(0, space);
                }
            }
            Free::Buddy(b) => b.reset(),
        }
    }

    /// Takes `len > 0` granules (a size [`granules_given`] gave); their
    /// start, if there is room.
    fn take(&mut self, len: u64) -> Option<u64> {
        match self {
            Free::FirstFit(holes) => {
                let (start, _) = holes.first_fit(len)?;
                carve(holes, start, len);
                Some(start)
            }
            Free::Buddy(b) => b.alloc(order_for(len)),
        }
    }

    /// Returns `[start, start + len)`, merged with the free space around it
    /// as the allocator merges.
    fn give_back(&mut self, start: u64, len: u64) {
        match self {
            Free::FirstFit(holes) => coalesce(holes, start, len),
            Free::Buddy(b) => b.free(start, order_for(len)),
        }
    }

    /// Moves or extends region `r` to `next.len > r.len` granules, setting
    /// `next.start`; nothing changes on failure.
    fn grow(&mut self, r: &Region, next: &mut Region) -> Result<(), NoRoom> {
        let holes = match self {
            Free::FirstFit(holes) => holes,
            Free::Buddy(b) => {
                // A larger block while the old one is still held, then the
                // old one back (realloc over a buddy system).
                next.start = b.alloc(order_for(next.len)).ok_or(NoRoom)?;
                if r.len > 0 {
                    b.free(r.start, order_for(r.len));
                }
                return Ok(());
            }
        };
        let end = r.start + r.len;
        let extra = next.len - r.len;
        if r.len > 0 && holes.take_front(end, extra) {
            // realloc's fast path: the hole right after is big enough.
            return Ok(());
        }
        // Move: the old granules count as free for the search (memmove).
        if r.len > 0 {
            coalesce(holes, r.start, r.len);
        }
        match holes.first_fit(next.len) {
            Some((start, _)) => {
                carve(holes, start, next.len);
                next.start = start;
                Ok(())
            }
            None => {
                // Holes are canonical (maximal), so carving the old region
                // back out restores exactly the previous set.
                if r.len > 0 {
                    carve(holes, r.start, r.len);
                }
                Err(NoRoom)
            }
        }
    }

    /// The largest piece that could be taken now, granules.
    fn largest(&self) -> u64 {
        match self {
            Free::FirstFit(holes) => holes.largest(),
            Free::Buddy(b) => b.largest(),
        }
    }

    /// The largest piece an empty space of `space` granules offers.
    fn largest_when_empty(&self, space: u64) -> u64 {
        match self {
            Free::FirstFit(_) => space,
            // The block at 0.
            Free::Buddy(_) => space.checked_ilog2().map_or(0, |o| 1 << o),
        }
    }

    /// Number of separate free pieces.
    fn pieces(&self) -> usize {
        match self {
            Free::FirstFit(holes) => holes.len(),
            Free::Buddy(b) => b.blocks(),
        }
    }

    /// Free granules in pieces that could hold `len > 0` granules (a size
    /// [`granules_given`] gave).
    fn fitting(&self, len: u64) -> u64 {
        match self {
            Free::FirstFit(holes) => holes.total_fitting(len),
            Free::Buddy(b) => b.total_fitting(order_for(len)),
        }
    }
}

/// Granules `allocator` gives a region that needs `need`: a buddy system
/// rounds up to a power of two.
fn granules_given(allocator: Allocator, need: u64) -> u64 {
    match allocator {
        Allocator::Buddy if need > 0 => need.next_power_of_two(),
        _ => need,
    }
}

/// Adds `[start, start + len)` to the holes, merged with the holes that touch
/// it so holes stay maximal. A hole it touches grows in place
/// ([`Holes::reshape`]); only a range between two holes removes one.
fn coalesce(holes: &mut Holes, start: u64, len: u64) {
    let hi = start + len;
    let after = holes.get(hi);
    let before = start
        .checked_sub(1)
        .and_then(|a| holes.at_or_before(a))
        .filter(|&(s, l)| {
            invariant!(s + l <= start, "freeing a range that overlaps a hole");
            s + l == start
        });
    match (before, after) {
        (Some((s, l)), Some(a)) => {
            holes.remove(hi);
            holes.reshape(s, s, l + len + a);
        }
        (Some((s, l)), None) => holes.reshape(s, s, l + len),
        (None, Some(a)) => holes.reshape(hi, start, len + a),
        (None, None) => holes.insert(start, len),
    }
}

/// Carves `[start, start + len)` out of the hole that contains it: the hole
/// shrinks in place, and only a carve from its middle adds one (first-fit
/// carves from the start).
fn carve(holes: &mut Holes, start: u64, len: u64) {
    invariant!(len > 0);
    let Some((s, l)) = holes.at_or_before(start) else {
        unreachable!("taking granules {start}.. that are not free");
    };
    invariant!(start + len <= s + l, "taking granules that are not free");
    let rest = s + l - (start + len);
    match (start - s, rest) {
        (0, 0) => {
            holes.remove(s);
        }
        (0, rest) => holes.reshape(s, start + len, rest),
        (head, 0) => holes.reshape(s, s, head),
        (head, rest) => {
            holes.reshape(s, s, head);
            holes.insert(start + len, rest);
        }
    }
}

/// The region a live sequence owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Region {
    /// First granule of the region (0, and meaningless, when `len == 0`).
    start: u64,
    /// Granules held: the bytes of `cap` tokens over every layer group
    /// (rounded up to a power of two by a buddy allocator).
    len: u64,
    /// Tokens of capacity: `max(tokens, reserve)` at admission, raised to the
    /// tokens when they outgrow it.
    cap: u32,
    /// Tokens of the sequence so far (all of them, not just a window).
    tokens: u32,
}

/// One contiguous region per sequence in a linear address space, first-fit or
/// from a buddy system.
///
/// Under a window (or a chunk) a group's part of a region never exceeds
/// `window` (`chunk`) tokens: it is used as a ring buffer, so a sequence whose
/// groups are all windowed and full grows no more.
#[derive(Clone, Debug)]
pub struct ContiguousCache {
    /// Geometry (layer groups, windows); `block_size` is ignored.
    layout: KvLayout,
    /// Bytes per granule: gcd of the non-empty groups' bytes per token and
    /// state bytes (0 if every group is empty).
    granule: u64,
    /// Size of the address space in granules.
    space: u64,
    /// Without any window, bytes grow linearly with tokens: these bytes and
    /// granules per token replace the per-group sums on the per-token path.
    linear: Option<(u64, u64)>,
    /// How regions are allocated.
    allocator: Allocator,
    /// The free space.
    free: Free,
    /// Per-sequence regions, indexed by `SeqId`; `None` for dead slots.
    seqs: Vec<Option<Region>>,
    /// Sum of `len` over live sequences, granules.
    allocated: u64,
    /// Sum of kept bytes over live sequences.
    stored_bytes: u64,
}

/// Greatest common divisor.
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl ContiguousCache {
    /// A cache over `budget_bytes` of KV memory with `layout`: an address space
    /// of `floor(budget_bytes / granule)` granules, where `granule` is the gcd
    /// of the layer groups' bytes per token (no space at all if every group is
    /// empty, which no real model is).
    pub fn new(budget_bytes: u64, layout: KvLayout, allocator: Allocator) -> Self {
        let granule = Self::granule_of(&layout);
        let space = budget_bytes.checked_div(granule).unwrap_or(0);
        let bpt = layout.bytes_per_token();
        let linear = (layout.is_linear() && granule > 0).then(|| (bpt, bpt / granule));
        let mut cache = ContiguousCache {
            layout,
            granule,
            space,
            linear,
            allocator,
            free: Free::new(allocator, space),
            seqs: Vec::new(),
            allocated: 0,
            stored_bytes: 0,
        };
        cache.reset();
        cache
    }

    /// Bytes per granule of a contiguous space for `layout`: the gcd of its
    /// layer groups' bytes per token (0 if every group is empty).
    pub fn granule_of(layout: &KvLayout) -> u64 {
        layout
            .groups()
            .iter()
            .fold(0, |acc, g| gcd(gcd(acc, g.bytes_per_token), g.state_bytes))
    }

    /// Bytes a region with a capacity of `cap` tokens holds under `layout`
    /// and `allocator`, without building a cache (for capacity estimates).
    pub fn region_bytes(layout: &KvLayout, allocator: Allocator, cap: u32) -> u64 {
        let granule = Self::granule_of(layout);
        if granule == 0 {
            return 0;
        }
        granules_given(allocator, layout.peak_bytes(cap) / granule) * granule
    }

    /// Bytes per granule, the unit of [`ContiguousCache::region`].
    pub fn granule(&self) -> u64 {
        self.granule
    }

    /// Size of the largest free hole in bytes: the largest region that could
    /// be placed right now. `usage().free` minus this is free memory that no
    /// single request of that size can use (external fragmentation). With a
    /// buddy allocator, the largest free block. O(1) first-fit, O(orders)
    /// buddy.
    pub fn largest_hole_bytes(&self) -> u64 {
        self.free.largest() * self.granule
    }

    /// Number of separate free holes (first-fit: coalesced, no two adjacent;
    /// buddy: free blocks, which may touch without being buddies). More holes
    /// for the same free memory means a more fragmented space.
    pub fn holes(&self) -> usize {
        self.free.pieces()
    }

    /// The granules a live sequence owns, or `None` if it is not live. An
    /// empty range for a sequence holding nothing (no tokens, no reservation).
    pub fn region(&self, seq: SeqId) -> Option<Range<u64>> {
        self.live(seq).map(|r| r.start..r.start + r.len)
    }

    /// Whether a decoding sequence's region grows by the same bytes every
    /// token (no window, chunk or state): then the engine's fast path may
    /// grow it lazily, in place, up to [`ContiguousCache::room`].
    pub fn grows_linearly(&self) -> bool {
        self.linear.is_some()
    }

    /// Bytes `allocated` grows by per token a sequence in place grows by
    /// (linear layouts): a first-fit region takes the token's granules, a
    /// buddy block already holds them.
    pub fn held_per_token(&self) -> u64 {
        match (self.allocator, self.linear) {
            (Allocator::FirstFit, Some((bpt, _))) => bpt,
            _ => 0,
        }
    }

    /// The most tokens live sequence `seq` can grow to with no move
    /// (linear layouts): first-fit, its region and the hole right after it;
    /// buddy, its block. Growing to that many one token at a time or at
    /// once does the same, and the limit stays the same as it does (the
    /// region takes from the hole only it can extend into). Only a
    /// placement into that hole lowers it; a release next to it raises it.
    pub fn room(&self, seq: SeqId) -> u64 {
        let Some(r) = self.live(seq) else {
            invariant_violated!("room of dead sequence {seq}");
            return 0;
        };
        let Some((_, per_token)) = self.linear else {
            invariant_violated!("room under a non-linear layout");
            return u64::from(r.tokens);
        };
        let granules = match &self.free {
            Free::FirstFit(holes) if r.len > 0 => r.len + holes.get(r.start + r.len).unwrap_or(0),
            _ => r.len,
        };
        granules / per_token
    }

    /// Whether `regions` live regions may each grow by a token, in turn, in
    /// place or moved first-fit, with no move failing (first-fit, linear
    /// layouts): the largest hole holds every region once more, and twice
    /// a token's granules per region besides. Growth in place and moves
    /// take at most that much from it (a move carves from a hole's start,
    /// so that hole stays one piece), so each move finds it big enough.
    pub fn moves_surely(&self, regions: u64) -> bool {
        match (&self.free, self.linear) {
            (Free::FirstFit(holes), Some((_, per_token))) => {
                holes.largest() >= self.allocated + 2 * (regions + 1) * per_token
            }
            _ => false,
        }
    }

    /// Charges the counters for `tokens` more tokens over sequences that
    /// grow in place lazily (the engine's fast path, linear layouts): their
    /// regions catch up in [`ContiguousCache::settle`].
    pub fn defer(&mut self, tokens: u64) {
        let Some((bpt, per_token)) = self.linear else {
            invariant_violated!("deferred growth under a non-linear layout");
            return;
        };
        if self.allocator == Allocator::FirstFit {
            self.allocated += tokens * per_token;
        }
        self.stored_bytes += tokens * bpt;
    }

    /// Grows `seq` to `tokens` tokens in place, within its
    /// [`ContiguousCache::room`], without charging the counters
    /// ([`ContiguousCache::defer`] did): its region and the hole after it
    /// catch up. Nothing happens if it holds that many already.
    pub fn settle(&mut self, seq: SeqId, tokens: u32) {
        let Some(&r) = self.live(seq) else {
            invariant_violated!("settling dead sequence {seq}");
            return;
        };
        if tokens <= r.tokens {
            return;
        }
        let next = self.grown(&r, tokens);
        if next.len > r.len {
            let extended = match &mut self.free {
                Free::FirstFit(holes) => {
                    r.len > 0 && holes.take_front(r.start + r.len, next.len - r.len)
                }
                Free::Buddy(_) => false,
            };
            invariant!(extended, "a lazy growth within the room");
        }
        self.seqs[seq as usize] = Some(next);
    }

    /// Region `r` holding `tokens` tokens, where it is: its capacity raised
    /// to them if they outgrow it, and its length with it (before the free
    /// space is asked for the difference).
    fn grown(&self, r: &Region, tokens: u32) -> Region {
        if tokens > r.cap {
            Region {
                tokens,
                cap: tokens,
                len: self.len_for(tokens),
                ..*r
            }
        } else {
            Region { tokens, ..*r }
        }
    }

    /// Granules a region with a capacity of `cap` tokens holds: what it needs,
    /// rounded up to a power of two by a buddy allocator.
    #[inline]
    fn len_for(&self, cap: u32) -> u64 {
        granules_given(self.allocator, self.need_for(cap))
    }

    /// Granules a capacity of `cap` tokens needs: each group's most kept
    /// tokens at its bytes per token (a chunked group's whole chunk), plus
    /// the recurrent state.
    #[inline]
    fn need_for(&self, cap: u32) -> u64 {
        match (self.linear, self.granule) {
            (Some((_, per_token)), _) => u64::from(cap) * per_token,
            (None, 0) => 0,
            (None, g) => self.layout.peak_bytes(cap) / g,
        }
    }

    /// Bytes a `t`-token sequence keeps over every layer group.
    #[inline]
    fn kept_bytes(&self, t: u32) -> u64 {
        match self.linear {
            Some((bpt, _)) => u64::from(t) * bpt,
            None => self.layout.kept_bytes(t),
        }
    }

    /// The region of `seq` if it is live.
    fn live(&self, seq: SeqId) -> Option<&Region> {
        self.seqs.get(seq as usize).and_then(Option::as_ref)
    }

    /// Stores `r` as the region of slot `seq`.
    fn set(&mut self, seq: SeqId, r: Region) {
        let i = seq as usize;
        if i >= self.seqs.len() {
            self.seqs.resize(i + 1, None);
        }
        self.seqs[i] = Some(r);
    }

    /// Places a new region of `len` granules (a size [`Self::len_for`]
    /// gave); its start, if there is room (0 for an empty region, which
    /// needs none).
    fn place(&mut self, len: u64) -> Option<u64> {
        if len == 0 {
            return Some(0);
        }
        self.free.take(len)
    }

    /// Checks that regions and holes tile the address space exactly and that
    /// the counters match (test helper).
    #[cfg(test)]
    fn check_invariants(&self) {
        let free = match &self.free {
            Free::FirstFit(h) => {
                h.check();
                h.to_vec()
            }
            Free::Buddy(b) => {
                b.check();
                assert_eq!(b.free_total(), self.space - self.allocated);
                b.to_vec()
            }
        };
        let coalesced = matches!(self.free, Free::FirstFit(_));
        let mut spans: Vec<(u64, u64, bool)> =
            free.into_iter().map(|(s, l)| (s, l, true)).collect();
        let (mut alloc, mut stored) = (0, 0);
        for r in self.seqs.iter().flatten() {
            alloc += r.len;
            stored += self.kept_bytes(r.tokens);
            assert!(r.tokens <= r.cap, "{r:?} holds fewer tokens than it has");
            assert_eq!(r.len, self.len_for(r.cap), "{r:?}");
            if !coalesced && r.len > 0 {
                assert_eq!(r.start % r.len, 0, "buddy block {r:?} is misaligned");
            }
            if r.len > 0 {
                spans.push((r.start, r.len, false));
            }
        }
        assert_eq!(alloc, self.allocated);
        assert_eq!(stored, self.stored_bytes);
        spans.sort_unstable();
        let mut at = 0;
        let mut prev_hole = false;
        for (s, l, hole) in spans {
            assert_eq!(s, at, "gap or overlap at granule {at}");
            assert!(
                !(coalesced && hole && prev_hole),
                "adjacent holes at {s} were not coalesced"
            );
            at = s + l;
            prev_hole = hole;
        }
        assert_eq!(at, self.space, "regions and holes do not cover the space");
    }
}

impl KvCache for ContiguousCache {
    fn admit(&mut self, seq: &SeqInfo) -> Result<Admitted, NoRoom> {
        if self.live(seq.id).is_some() {
            invariant_violated!("admitting live sequence {}", seq.id);
            return Err(NoRoom);
        }
        let cap = seq.tokens.max(seq.reserve);
        let len = self.len_for(cap);
        let start = self.place(len).ok_or(NoRoom)?;
        self.set(
            seq.id,
            Region {
                start,
                len,
                cap,
                tokens: seq.tokens,
            },
        );
        self.allocated += len;
        self.stored_bytes += self.kept_bytes(seq.tokens);
        // Regions are private: nothing is ever served from a cache.
        Ok(Admitted::default())
    }

    fn grow(&mut self, seq: SeqId, n: u32) -> Result<(), NoRoom> {
        let Some(&r) = self.live(seq) else {
            invariant_violated!("growing dead sequence {seq}");
            return Err(NoRoom);
        };
        let tokens = r.tokens.checked_add(n).ok_or(NoRoom)?;
        let mut next = self.grown(&r, tokens);
        if next.len > r.len {
            self.free.grow(&r, &mut next)?;
            self.allocated += next.len - r.len;
        }
        // A chunked group keeps fewer tokens after a chunk boundary.
        self.stored_bytes = self.stored_bytes + self.kept_bytes(tokens) - self.kept_bytes(r.tokens);
        self.seqs[seq as usize] = Some(next);
        Ok(())
    }

    fn fork(&mut self, parent: SeqId, child: SeqId) -> Result<(), NoRoom> {
        let Some(&r) = self.live(parent) else {
            invariant_violated!("forking dead sequence {parent}");
            return Err(NoRoom);
        };
        if self.live(child).is_some() {
            invariant_violated!("forking into live sequence {child}");
            return Err(NoRoom);
        }
        // No sharing: the child copies the parent's whole region.
        let start = self.place(r.len).ok_or(NoRoom)?;
        self.set(child, Region { start, ..r });
        self.allocated += r.len;
        self.stored_bytes += self.kept_bytes(r.tokens);
        Ok(())
    }

    fn release(&mut self, seq: SeqId) {
        let Some(r) = self.seqs.get_mut(seq as usize).and_then(Option::take) else {
            invariant_violated!("releasing dead sequence {seq}");
            return;
        };
        if r.len > 0 {
            invariant!(r.start + r.len <= self.space);
            self.free.give_back(r.start, r.len);
        }
        self.allocated -= r.len;
        self.stored_bytes -= self.kept_bytes(r.tokens);
    }

    fn reset(&mut self) {
        // `Region` is `Copy`, so clearing is O(1); the capacity is kept.
        self.seqs.clear();
        self.free.reset(self.space);
        self.allocated = 0;
        self.stored_bytes = 0;
    }

    fn attended_bytes(&self, seq: SeqId) -> u64 {
        match self.live(seq) {
            Some(r) => self.layout.attended_bytes(r.tokens),
            None => {
                invariant_violated!("attended bytes of dead sequence {seq}");
                0
            }
        }
    }

    fn held_bytes(&self, seq: SeqId) -> u64 {
        self.live(seq).map_or(0, |r| r.len * self.granule)
    }

    fn allocator_slack_bytes(&self, seq: SeqId) -> u64 {
        self.live(seq)
            .map_or(0, |r| (r.len - self.need_for(r.cap)) * self.granule)
    }

    fn fits_when_empty(&self, seq: &SeqInfo) -> bool {
        self.len_for(seq.tokens.max(seq.reserve)) <= self.free.largest_when_empty(self.space)
    }

    fn unusable_free_bytes(&self, seq: &SeqInfo) -> u64 {
        let need = self.len_for(seq.tokens.max(seq.reserve));
        let free = self.space - self.allocated;
        let fitting = if need == 0 {
            free
        } else {
            self.free.fitting(need)
        };
        (free - fitting) * self.granule
    }

    fn usage(&self) -> MemoryUsage {
        MemoryUsage::new(
            self.space * self.granule,
            self.allocated * self.granule,
            self.stored_bytes,
        )
    }

    fn layout(&self) -> &KvLayout {
        &self.layout
    }

    fn as_contiguous_mut(&mut self) -> Option<&mut ContiguousCache> {
        Some(self)
    }

    fn as_contiguous(&self) -> Option<&ContiguousCache> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
