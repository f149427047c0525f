//! Contiguous placement: the Orca-style baselines of the PagedAttention paper
//! (Kwon et al., SOSP 2023).
//!
//! The KV budget is a linear address space of `slots = floor(budget / bytes per
//! token)` token slots. Every live sequence owns one region `[start, start +
//! cap)` of it, where `cap` is its reservation (at least its tokens, at most its
//! window). Free space is a set of coalesced holes; placement is first-fit (the
//! lowest-address hole that is big enough). Because a region must be one piece,
//! free memory can exceed a request while no hole fits it: that is the external
//! fragmentation this policy exists to show.
//!
//! Growing past the reservation behaves like `realloc`: extend in place into the
//! hole right after the region if it is big enough, otherwise move the region to
//! the first hole that fits the new size (the region's own slots count as free
//! for that search, as a `memmove` may overlap them).
//!
//! Complexity: holes live in an address-ordered treap augmented with subtree
//! maximum lengths (`contiguous/holes.rs`), so first-fit, coalescing and
//! relocation are O(log n) in live sequences; per-sequence state is a `Vec`
//! indexed by [`SeqId`]; the memory counters are maintained incrementally, so
//! [`KvCache::usage`] is O(1).

mod holes;

use std::ops::Range;

use super::{Admitted, KvCache, KvLayout, MemoryUsage, NoRoom, SeqId, SeqInfo};
use holes::Holes;

/// The region a live sequence owns.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Region {
    /// First slot of the region (0, and meaningless, when `cap == 0`).
    start: u64,
    /// Slots held: `max(tokens, reserve)` at admission, grown on demand, never
    /// more than the window.
    cap: u64,
    /// Tokens of the sequence so far (all of them, not just the window).
    tokens: u32,
}

/// One contiguous region per sequence in a linear address space, first-fit.
///
/// Under a window a sequence's region never exceeds `window` slots: it is used
/// as a ring buffer, so a windowed sequence that has filled it grows no more.
#[derive(Clone, Debug)]
pub struct ContiguousCache {
    /// Geometry (bytes per token, window); `block_size` is ignored.
    layout: KvLayout,
    /// Size of the address space in token slots.
    slots: u64,
    /// Free holes, coalesced: no two are adjacent.
    holes: Holes,
    /// Per-sequence regions, indexed by `SeqId`; `None` for dead slots.
    seqs: Vec<Option<Region>>,
    /// Sum of `cap` over live sequences.
    allocated_slots: u64,
    /// Sum of kept tokens (`min(tokens, window)`) over live sequences.
    stored_tokens: u64,
}

impl ContiguousCache {
    /// A cache over `budget_bytes` of KV memory with `layout`: an address space
    /// of `floor(budget_bytes / layout.bytes_per_token())` slots (none if the
    /// bytes per token are zero, which no real model has).
    pub fn new(budget_bytes: u64, layout: KvLayout) -> Self {
        let slots = budget_bytes
            .checked_div(layout.bytes_per_token())
            .unwrap_or(0);
        let mut cache = ContiguousCache {
            layout,
            slots,
            holes: Holes::new(),
            seqs: Vec::new(),
            allocated_slots: 0,
            stored_tokens: 0,
        };
        cache.reset();
        cache
    }

    /// Size of the largest free hole in bytes: the largest region that could
    /// be placed right now. `usage().free` minus this is free memory that no
    /// single request of that size can use (external fragmentation). O(1).
    pub fn largest_hole_bytes(&self) -> u64 {
        self.holes.largest() * self.layout.bytes_per_token()
    }

    /// Number of separate free holes (coalesced: no two are adjacent). More
    /// holes for the same free memory means a more fragmented space. O(1).
    pub fn holes(&self) -> usize {
        self.holes.len()
    }

    /// The slots (token positions in the address space) a live sequence owns,
    /// or `None` if it is not live. An empty range for a sequence holding
    /// nothing (no tokens, no reservation).
    pub fn region(&self, seq: SeqId) -> Option<Range<u64>> {
        self.live(seq).map(|r| r.start..r.start + r.cap)
    }

    /// Slots a sequence keeps for `tokens` tokens: all of them, or the window.
    fn kept(&self, tokens: u32) -> u64 {
        u64::from(self.layout.groups[0].kept_tokens(tokens))
    }

    /// The region of `seq` if it is live.
    fn live(&self, seq: SeqId) -> Option<&Region> {
        self.seqs.get(seq as usize).and_then(Option::as_ref)
    }

    /// Returns `[start, start + len)` to the free space, merging it with the
    /// holes that touch it so holes stay maximal.
    fn free_range(&mut self, start: u64, len: u64) {
        debug_assert!(len > 0 && start + len <= self.slots);
        let (mut lo, mut hi) = (start, start + len);
        if let Some(after) = self.holes.remove(hi) {
            hi += after;
        }
        if let Some((s, l)) = start
            .checked_sub(1)
            .and_then(|a| self.holes.at_or_before(a))
        {
            debug_assert!(s + l <= start, "freeing a range that overlaps a hole");
            if s + l == start {
                self.holes.remove(s);
                lo = s;
            }
        }
        self.holes.insert(lo, hi - lo);
    }

    /// Carves `[start, start + len)` out of the hole that contains it.
    fn take_range(&mut self, start: u64, len: u64) {
        debug_assert!(len > 0);
        let Some((s, l)) = self.holes.at_or_before(start) else {
            unreachable!("taking slots {start}.. that are not free");
        };
        debug_assert!(start + len <= s + l, "taking slots that are not free");
        self.holes.remove(s);
        if start > s {
            self.holes.insert(s, start - s);
        }
        if s + l > start + len {
            self.holes.insert(start + len, s + l - (start + len));
        }
    }

    /// Places a new region of `need > 0` slots first-fit; its start, if any
    /// hole is big enough.
    fn place(&mut self, need: u64) -> Option<u64> {
        let (start, _) = self.holes.first_fit(need)?;
        self.take_range(start, need);
        Some(start)
    }

    /// Checks that regions and holes tile the address space exactly and that
    /// the counters match (test helper).
    #[cfg(test)]
    fn check_invariants(&self) {
        self.holes.check();
        let mut spans: Vec<(u64, u64, bool)> = self
            .holes
            .to_vec()
            .into_iter()
            .map(|(s, l)| (s, l, true))
            .collect();
        let (mut alloc, mut stored) = (0, 0);
        for r in self.seqs.iter().flatten() {
            alloc += r.cap;
            stored += self.kept(r.tokens);
            assert!(
                self.kept(r.tokens) <= r.cap,
                "{r:?} holds fewer slots than it keeps"
            );
            assert!(
                self.layout.groups[0]
                    .window
                    .is_none_or(|w| r.cap <= u64::from(w))
            );
            if r.cap > 0 {
                spans.push((r.start, r.cap, false));
            }
        }
        assert_eq!(alloc, self.allocated_slots);
        assert_eq!(stored, self.stored_tokens);
        spans.sort_unstable();
        let mut at = 0;
        let mut prev_hole = false;
        for (s, l, hole) in spans {
            assert_eq!(s, at, "gap or overlap at slot {at}");
            assert!(
                !(hole && prev_hole),
                "adjacent holes at {s} were not coalesced"
            );
            at = s + l;
            prev_hole = hole;
        }
        assert_eq!(at, self.slots, "regions and holes do not cover the space");
    }
}

impl KvCache for ContiguousCache {
    fn admit(&mut self, seq: &SeqInfo) -> Result<Admitted, NoRoom> {
        if self.live(seq.id).is_some() {
            debug_assert!(false, "admitting live sequence {}", seq.id);
            return Err(NoRoom);
        }
        let need = self.kept(seq.tokens.max(seq.reserve));
        let start = if need == 0 {
            0
        } else {
            self.place(need).ok_or(NoRoom)?
        };
        let i = seq.id as usize;
        if i >= self.seqs.len() {
            self.seqs.resize(i + 1, None);
        }
        self.seqs[i] = Some(Region {
            start,
            cap: need,
            tokens: seq.tokens,
        });
        self.allocated_slots += need;
        self.stored_tokens += self.kept(seq.tokens);
        Ok(Admitted::default())
    }

    fn fork(&mut self, _parent: SeqId, _child: SeqId) -> Result<(), NoRoom> {
        todo!("interim: being rewritten")
    }

    fn held_bytes(&self, seq: SeqId) -> u64 {
        self.live(seq)
            .map_or(0, |r| r.cap * self.layout.bytes_per_token())
    }

    fn unusable_free_bytes(&self, _seq: &SeqInfo) -> u64 {
        0
    }

    fn grow(&mut self, seq: SeqId, n: u32) -> Result<(), NoRoom> {
        let Some(&r) = self.live(seq) else {
            debug_assert!(false, "growing dead sequence {seq}");
            return Err(NoRoom);
        };
        let tokens = r.tokens.checked_add(n).ok_or(NoRoom)?;
        let need = self.kept(tokens);
        let mut next = Region { tokens, ..r };
        if need > r.cap {
            let extra = need - r.cap;
            let end = r.start + r.cap;
            if r.cap > 0 && self.holes.get(end).is_some_and(|len| len >= extra) {
                // realloc's fast path: the hole right after is big enough.
                self.take_range(end, extra);
            } else {
                // Move: the old slots count as free for the search (memmove).
                if r.cap > 0 {
                    self.free_range(r.start, r.cap);
                }
                match self.holes.first_fit(need) {
                    Some((start, _)) => {
                        self.take_range(start, need);
                        next.start = start;
                    }
                    None => {
                        // Holes are canonical (maximal), so carving the old
                        // region back out restores exactly the previous set.
                        if r.cap > 0 {
                            self.take_range(r.start, r.cap);
                        }
                        return Err(NoRoom);
                    }
                }
            }
            next.cap = need;
            self.allocated_slots += extra;
        }
        self.stored_tokens += need - self.kept(r.tokens);
        self.seqs[seq as usize] = Some(next);
        Ok(())
    }

    fn release(&mut self, seq: SeqId) {
        let Some(r) = self.seqs.get_mut(seq as usize).and_then(Option::take) else {
            debug_assert!(false, "releasing dead sequence {seq}");
            return;
        };
        if r.cap > 0 {
            self.free_range(r.start, r.cap);
        }
        self.allocated_slots -= r.cap;
        self.stored_tokens -= self.kept(r.tokens);
    }

    fn reset(&mut self) {
        // `Region` is `Copy`, so clearing is O(1); the capacity is kept.
        self.seqs.clear();
        self.holes.clear();
        if self.slots > 0 {
            self.holes.insert(0, self.slots);
        }
        self.allocated_slots = 0;
        self.stored_tokens = 0;
    }

    fn attended_bytes(&self, seq: SeqId) -> u64 {
        match self.live(seq) {
            Some(r) => self.layout.attended_bytes(r.tokens),
            None => {
                debug_assert!(false, "attended bytes of dead sequence {seq}");
                0
            }
        }
    }

    fn fits_when_empty(&self, seq: &SeqInfo) -> bool {
        self.kept(seq.tokens.max(seq.reserve)) <= self.slots
    }

    fn usage(&self) -> MemoryUsage {
        let bpt = self.layout.bytes_per_token();
        let budget = self.slots * bpt;
        let allocated = self.allocated_slots * bpt;
        MemoryUsage::new(budget, allocated, self.stored_tokens * bpt)
    }

    fn layout(&self) -> &KvLayout {
        &self.layout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Reserve;
    use crate::model::Dtype;
    use proptest::prelude::*;

    /// Bytes per token of the tests: Llama-3-8B-like, 32 layers x 8 KV heads x
    /// 128 x 2 (K and V) x 2 bytes. Any value works; a real one catches slips
    /// between slots and bytes.
    const BPT: u64 = 131_072;

    fn layout(window: Option<u32>) -> KvLayout {
        KvLayout {
            bytes_per_token: BPT,
            window,
            block_size: 1,
            kv_dtype: Dtype::Bf16,
        }
    }

    /// A cache of exactly `slots` slots (plus a few stray bytes that must not
    /// count).
    fn cache(slots: u64, window: Option<u32>) -> ContiguousCache {
        ContiguousCache::new(slots * BPT + BPT - 1, layout(window))
    }

    fn seq(id: SeqId, tokens: u32, reserve: u32) -> SeqInfo {
        SeqInfo {
            id,
            tokens,
            reserve,
        }
    }

    fn usage(allocated: u64, stored: u64, slots: u64) -> MemoryUsage {
        MemoryUsage {
            budget: slots * BPT,
            allocated: allocated * BPT,
            stored: stored * BPT,
            free: (slots - allocated) * BPT,
        }
    }

    #[test]
    fn pow2_reservation_of_prompt_20_final_25_holds_32_slots() {
        let reserve = Reserve::Pow2.tokens(20, 100, 25, 4096);
        assert_eq!(reserve, 32);
        let mut c = cache(1000, None);
        c.admit(&seq(0, 20, reserve)).unwrap();
        assert_eq!(c.usage(), usage(32, 20, 1000));
        assert_eq!(c.usage().allocated, 32 * BPT);
        assert_eq!(c.usage().stored, 20 * BPT);
        // Growing inside the reservation only counts tokens.
        c.grow(0, 5).unwrap();
        assert_eq!(c.usage(), usage(32, 25, 1000));
        assert_eq!(c.region(0), Some(0..32));
        assert_eq!(c.attended_bytes(0), 25 * BPT);
        c.check_invariants();
    }

    #[test]
    fn budget_is_whole_slots() {
        let c = cache(7, None);
        assert_eq!(c.usage(), usage(0, 0, 7));
        assert_eq!(c.largest_hole_bytes(), 7 * BPT);
        assert_eq!(c.holes(), 1);
        assert!(c.fits_when_empty(&seq(0, 3, 7)));
        assert!(!c.fits_when_empty(&seq(0, 3, 8)));
        let none = ContiguousCache::new(BPT - 1, layout(None));
        assert_eq!(none.usage(), MemoryUsage::default());
        assert_eq!(none.holes(), 0);
        assert!(none.fits_when_empty(&seq(0, 0, 0)));
        assert!(!none.fits_when_empty(&seq(0, 1, 1)));
    }

    #[test]
    fn fragmentation_refuses_a_request_that_total_free_memory_could_hold() {
        let mut c = cache(30, None);
        for id in 0..3 {
            c.admit(&seq(id, 10, 10)).unwrap();
        }
        assert_eq!(c.usage().free, 0);
        c.release(0);
        c.release(2);
        // 20 slots free in two holes of 10: a 15-slot request does not fit.
        assert_eq!(c.usage().free, 20 * BPT);
        assert_eq!(c.holes(), 2);
        assert_eq!(c.largest_hole_bytes(), 10 * BPT);
        let before = c.usage();
        assert_eq!(c.admit(&seq(3, 15, 15)), Err(NoRoom));
        assert_eq!(c.usage(), before);
        assert_eq!(c.region(3), None);
        // Freeing the middle one coalesces all three into one hole.
        c.release(1);
        assert_eq!(c.holes(), 1);
        assert_eq!(c.largest_hole_bytes(), 30 * BPT);
        c.admit(&seq(3, 15, 15)).unwrap();
        assert_eq!(c.region(3), Some(0..15));
        c.check_invariants();
    }

    #[test]
    fn first_fit_takes_the_lowest_hole_that_fits() {
        let mut c = cache(100, None);
        for (id, n) in [(0, 5), (1, 10), (2, 20), (3, 10)] {
            c.admit(&seq(id, n, n)).unwrap();
        }
        c.release(0); // hole [0, 5)
        c.release(2); // hole [15, 35), and [45, 100) at the end
        c.admit(&seq(4, 8, 8)).unwrap();
        assert_eq!(c.region(4), Some(15..23), "skips the 5-slot hole");
        c.admit(&seq(5, 4, 4)).unwrap();
        assert_eq!(c.region(5), Some(0..4), "lowest address, not best fit");
        c.check_invariants();
    }

    #[test]
    fn grow_extends_in_place_into_the_hole_after() {
        let mut c = cache(100, None);
        c.admit(&seq(0, 10, 10)).unwrap();
        c.admit(&seq(1, 10, 10)).unwrap();
        c.release(1);
        c.grow(0, 5).unwrap();
        assert_eq!(c.region(0), Some(0..15));
        assert_eq!(c.usage(), usage(15, 15, 100));
        assert_eq!(c.holes(), 1);
        c.check_invariants();
    }

    #[test]
    fn grow_relocates_when_the_neighbour_is_taken() {
        let mut c = cache(100, None);
        c.admit(&seq(0, 10, 10)).unwrap();
        c.admit(&seq(1, 10, 10)).unwrap();
        c.grow(0, 5).unwrap();
        // 1 sits right after 0, so 0 moves to the first hole of 15 slots,
        // [20, 100) (its own [0, 10) is too small); [0, 10) becomes a hole.
        assert_eq!(c.region(0), Some(20..35));
        assert_eq!(c.region(1), Some(10..20));
        assert_eq!(c.usage(), usage(25, 25, 100));
        assert_eq!(c.holes(), 2);
        assert_eq!(c.largest_hole_bytes(), 65 * BPT);
        c.check_invariants();
    }

    #[test]
    fn grow_may_move_into_a_hole_that_overlaps_its_old_slots() {
        let mut c = cache(40, None);
        for id in 0..3 {
            c.admit(&seq(id, 10, 10)).unwrap();
        }
        c.release(0);
        // Holes [0, 10) and [30, 40); the region [10, 20) of 1 needs 15: the
        // hole after it is taken and [30, 40) is too small, but its own slots
        // plus the hole before make [0, 20): a memmove down.
        c.grow(1, 5).unwrap();
        assert_eq!(c.region(1), Some(0..15));
        assert_eq!(c.usage(), usage(25, 25, 40));
        assert_eq!(c.holes(), 2);
        c.check_invariants();
    }

    #[test]
    fn grow_without_a_fitting_hole_changes_nothing() {
        let mut c = cache(50, None);
        for id in 0..5 {
            c.admit(&seq(id, 10, 10)).unwrap();
        }
        c.release(0);
        c.release(3);
        // 20 slots free, but 2 needs 22 in one piece: [20, 30) plus the hole
        // after makes 20, the other hole is 10.
        let before = (c.usage(), c.holes(), c.largest_hole_bytes());
        assert_eq!(c.grow(2, 12), Err(NoRoom));
        assert_eq!((c.usage(), c.holes(), c.largest_hole_bytes()), before);
        assert_eq!(c.region(2), Some(20..30));
        assert_eq!(c.attended_bytes(2), 10 * BPT);
        c.check_invariants();
        // A smaller step still fits in place.
        c.grow(2, 10).unwrap();
        assert_eq!(c.region(2), Some(20..40));
        c.check_invariants();
    }

    #[test]
    fn window_caps_the_region_as_a_ring_buffer() {
        let mut c = cache(100, Some(8));
        c.admit(&seq(0, 5, 32)).unwrap();
        assert_eq!(c.region(0), Some(0..8), "reservation capped at the window");
        assert_eq!(c.usage(), usage(8, 5, 100));
        c.grow(0, 1000).unwrap();
        assert_eq!(c.usage(), usage(8, 8, 100));
        assert_eq!(c.attended_bytes(0), 8 * BPT);
        // A long recomputed sequence needs only the window to be servable.
        assert!(c.fits_when_empty(&seq(1, 5000, 5000)));
        c.admit(&seq(1, 5000, 5000)).unwrap();
        assert_eq!(c.region(1), Some(8..16));
        c.check_invariants();
    }

    #[test]
    fn release_and_reset_free_everything() {
        let mut c = cache(64, None);
        c.admit(&seq(3, 10, 20)).unwrap();
        c.admit(&seq(0, 1, 1)).unwrap();
        c.release(3);
        assert_eq!(c.usage(), usage(1, 1, 64));
        c.admit(&seq(3, 2, 2)).unwrap();
        c.reset();
        assert_eq!(c.usage(), usage(0, 0, 64));
        assert_eq!(c.holes(), 1);
        assert_eq!(c.region(3), None);
        c.admit(&seq(3, 64, 64)).unwrap();
        c.check_invariants();
    }

    #[test]
    fn empty_sequences_hold_no_slots() {
        let mut c = cache(4, None);
        c.admit(&seq(0, 4, 4)).unwrap();
        c.admit(&seq(1, 0, 0)).unwrap();
        assert_eq!(c.region(1), Some(0..0));
        assert_eq!(c.grow(1, 1), Err(NoRoom));
        c.release(0);
        c.grow(1, 1).unwrap();
        assert_eq!(c.region(1), Some(0..1));
        c.check_invariants();
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "admitting live sequence")]
    fn admitting_a_live_id_is_a_bug() {
        let mut c = cache(10, None);
        c.admit(&seq(0, 1, 1)).unwrap();
        let _ = c.admit(&seq(0, 1, 1));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "releasing dead sequence")]
    fn releasing_a_dead_id_is_a_bug() {
        cache(10, None).release(7);
    }

    /// Reference model: a slot map with the same placement rules, scanned
    /// linearly. Obviously correct, O(slots) per operation.
    struct Model {
        owner: Vec<Option<SeqId>>,
        regions: Vec<Option<(u64, u64, u32)>>,
        window: Option<u32>,
    }

    impl Model {
        fn kept(&self, t: u32) -> u64 {
            u64::from(self.window.map_or(t, |w| t.min(w)))
        }

        fn is_free(&self, start: u64, len: u64) -> bool {
            let end = start + len;
            end <= self.owner.len() as u64
                && self.owner[start as usize..end as usize]
                    .iter()
                    .all(Option::is_none)
        }

        fn first_fit(&self, len: u64) -> Option<u64> {
            (0..self.owner.len() as u64).find(|&s| self.is_free(s, len))
        }

        fn fill(&mut self, start: u64, len: u64, who: Option<SeqId>) {
            for o in &mut self.owner[start as usize..(start + len) as usize] {
                *o = who;
            }
        }

        fn admit(&mut self, s: &SeqInfo) -> bool {
            let need = self.kept(s.tokens.max(s.reserve));
            let start = if need == 0 {
                0
            } else {
                match self.first_fit(need) {
                    Some(st) => st,
                    None => return false,
                }
            };
            self.fill(start, need, Some(s.id));
            self.regions[s.id as usize] = Some((start, need, s.tokens));
            true
        }

        fn grow(&mut self, id: SeqId, n: u32) -> bool {
            let (start, cap, tokens) = self.regions[id as usize].unwrap();
            let need = self.kept(tokens + n);
            let mut start2 = start;
            if need > cap {
                if cap > 0 && self.is_free(start + cap, need - cap) {
                    // in place
                } else {
                    self.fill(start, cap, None);
                    match self.first_fit(need) {
                        Some(s) => start2 = s,
                        None => {
                            self.fill(start, cap, Some(id));
                            return false;
                        }
                    }
                }
                self.fill(start2, need, Some(id));
            }
            self.regions[id as usize] = Some((start2, need.max(cap), tokens + n));
            true
        }

        fn release(&mut self, id: SeqId) {
            let (start, cap, _) = self.regions[id as usize].take().unwrap();
            self.fill(start, cap, None);
        }

        /// Free runs of the slot map as (count, largest).
        fn holes(&self) -> (usize, u64) {
            let (mut count, mut largest, mut run) = (0, 0, 0);
            for o in self.owner.iter().chain([&Some(0)]) {
                if o.is_none() {
                    run += 1;
                } else {
                    if run > 0 {
                        count += 1;
                        largest = largest.max(run);
                    }
                    run = 0;
                }
            }
            (count, largest)
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Admit if dead, else grow by `extra % 16`.
        Admit {
            id: SeqId,
            tokens: u32,
            extra: u32,
        },
        /// Grow if live, else admit with no reservation.
        Grow {
            id: SeqId,
            n: u32,
        },
        /// Release if live.
        Release {
            id: SeqId,
        },
        Reset,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u32..10, 0u32..40, 0u32..40)
                .prop_map(|(id, tokens, extra)| Op::Admit { id, tokens, extra }),
            6 => (0u32..10, 0u32..12).prop_map(|(id, n)| Op::Grow { id, n }),
            3 => (0u32..10).prop_map(|id| Op::Release { id }),
            1 => Just(Op::Reset),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Random admit/grow/release/reset against the slot-map model: same
        /// outcomes, same placements, consistent counters, no overlap.
        #[test]
        fn matches_slot_map_model(
            slots in 0u64..120,
            window in prop::option::of(1u32..48),
            ops in prop::collection::vec(op(), 1..120),
        ) {
            let mut c = cache(slots, window);
            let mut m = Model {
                owner: vec![None; slots as usize],
                regions: vec![None; 10],
                window,
            };
            for op in ops {
                let before = c.usage();
                let id = match op {
                    Op::Admit { id, .. } | Op::Grow { id, .. } | Op::Release { id } => id,
                    Op::Reset => 0,
                };
                let live = m.regions[id as usize].is_some();
                let ok = match op {
                    Op::Admit { tokens, extra, .. } if !live => {
                        let s = seq(id, tokens, tokens + extra);
                        let ok = c.admit(&s).is_ok();
                        prop_assert_eq!(ok, m.admit(&s));
                        prop_assert_eq!(c.fits_when_empty(&s), m.kept(tokens + extra) <= slots);
                        ok
                    }
                    Op::Admit { extra: n, .. } | Op::Grow { n, .. } if live => {
                        let ok = c.grow(id, n % 16).is_ok();
                        prop_assert_eq!(ok, m.grow(id, n % 16));
                        ok
                    }
                    Op::Admit { .. } | Op::Grow { .. } => {
                        let n = match op { Op::Grow { n, .. } => n, _ => 0 };
                        let s = seq(id, n, n);
                        let ok = c.admit(&s).is_ok();
                        prop_assert_eq!(ok, m.admit(&s));
                        ok
                    }
                    Op::Release { .. } if live => {
                        let cap = c.region(id).unwrap().end - c.region(id).unwrap().start;
                        c.release(id);
                        m.release(id);
                        prop_assert_eq!(c.usage().free, before.free + cap * BPT);
                        true
                    }
                    Op::Release { .. } => true,
                    Op::Reset => {
                        c.reset();
                        m.owner.iter_mut().for_each(|o| *o = None);
                        m.regions.iter_mut().for_each(|r| *r = None);
                        prop_assert_eq!(c.usage(), usage(0, 0, slots));
                        true
                    }
                };
                let u = c.usage();
                if !ok {
                    prop_assert_eq!(u, before, "NoRoom changed the counters");
                }
                prop_assert_eq!(u.allocated + u.free, u.budget);
                prop_assert!(u.allocated <= u.budget && u.stored <= u.allocated);
                prop_assert_eq!(u.budget, slots * BPT);
                let mut alloc = 0;
                let mut stored = 0;
                for id in 0..10 {
                    let want = m.regions[id as usize].map(|(s, cap, _)| s..s + cap);
                    prop_assert_eq!(c.region(id), want);
                    if let Some((_, cap, t)) = m.regions[id as usize] {
                        alloc += cap;
                        stored += m.kept(t);
                        prop_assert_eq!(c.attended_bytes(id), m.kept(t) * BPT);
                    }
                }
                prop_assert_eq!(u, usage(alloc, stored, slots));
                let (count, largest) = m.holes();
                prop_assert_eq!((c.holes(), c.largest_hole_bytes()), (count, largest * BPT));
                c.check_invariants();
            }
        }
    }
}
