use super::*;
use crate::cache::{Content, KvGroup, Reserve};
use crate::model::{Dtype, Span};
use proptest::prelude::*;

/// Bytes per token of the tests: Llama-3-8B-like, 32 layers x 8 KV heads x
/// 128 x 2 (K and V) x 2 bytes. Any value works; a real one catches slips
/// between slots and bytes.
const BPT: u64 = 131_072;

fn layout(window: Option<u32>) -> KvLayout {
    KvLayout::uniform(BPT, window, 32, 1, Dtype::Bf16)
}

/// A two-group layout: `b0` and `b1` bytes per token, the second windowed.
fn hybrid(b0: u64, w0: Option<u32>, b1: u64, w1: Option<u32>) -> KvLayout {
    let group = |bytes_per_token, w: Option<u32>| KvGroup {
        bytes_per_token,
        span: w.map_or(Span::All, Span::Window),
        layers: 1,
        state_bytes: 0,
        flops_per_pair: 0,
    };
    KvLayout::new(&[group(b0, w0), group(b1, w1)], 1, Dtype::Bf16)
}

/// A cache of exactly `slots` slots (plus a few stray bytes that must not
/// count).
fn cache(slots: u64, window: Option<u32>) -> ContiguousCache {
    ContiguousCache::new(slots * BPT + BPT - 1, layout(window), Allocator::FirstFit)
}

fn seq(id: SeqId, tokens: u32, reserve: u32) -> SeqInfo {
    SeqInfo {
        id,
        tokens,
        reserve,
        content: None,
    }
}

fn usage(allocated: u64, stored: u64, slots: u64) -> MemoryUsage {
    MemoryUsage {
        budget: slots * BPT,
        allocated: allocated * BPT,
        stored: stored * BPT,
        free: (slots - allocated) * BPT,
        cached: 0,
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
    let none = ContiguousCache::new(BPT - 1, layout(None), Allocator::FirstFit);
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
#[should_panic(expected = "admitting live sequence")]
fn admitting_a_live_id_is_a_bug() {
    let mut c = cache(10, None);
    c.admit(&seq(0, 1, 1)).unwrap();
    let _ = c.admit(&seq(0, 1, 1));
}

#[test]
#[should_panic(expected = "releasing dead sequence")]
fn releasing_a_dead_id_is_a_bug() {
    cache(10, None).release(7);
}

#[test]
fn fork_copies_the_whole_region() {
    let mut c = cache(100, None);
    c.admit(&seq(0, 10, 30)).unwrap();
    c.fork(0, 1).unwrap();
    assert_eq!(c.region(1), Some(30..60), "a copy of the parent's capacity");
    assert_eq!(c.usage(), usage(60, 20, 100));
    assert_eq!(c.held_bytes(1), 30 * BPT);
    assert_eq!(c.attended_bytes(1), 10 * BPT);
    // They grow independently.
    c.grow(1, 25).unwrap();
    assert_eq!(
        c.region(1),
        Some(30..65),
        "extended in place past its capacity"
    );
    assert_eq!(c.region(0), Some(0..30));
    c.release(0);
    assert_eq!(c.usage(), usage(35, 35, 100));
    c.release(1);
    assert_eq!(c.usage(), usage(0, 0, 100));
    c.check_invariants();
}

#[test]
fn fork_without_a_fitting_hole_changes_nothing() {
    let mut c = cache(50, None);
    c.admit(&seq(0, 10, 30)).unwrap();
    let before = (c.usage(), c.holes());
    assert_eq!(c.fork(0, 1), Err(NoRoom));
    assert_eq!((c.usage(), c.holes()), before);
    assert_eq!(c.region(1), None);
    // An empty parent forks for free.
    c.admit(&seq(2, 0, 0)).unwrap();
    c.fork(2, 3).unwrap();
    assert_eq!(c.region(3), Some(0..0));
    c.check_invariants();
}

#[test]
fn hybrid_region_costs_the_group_weighted_bytes() {
    // 256 B/token of full-context layers, 128 B/token of layers with a
    // 32-token window: granule gcd(256, 128) = 128 bytes.
    let l = hybrid(256, None, 128, Some(32));
    let mut c = ContiguousCache::new(1000 * 128 + 127, l, Allocator::FirstFit);
    assert_eq!(c.granule(), 128);
    assert_eq!(c.usage().budget, 1000 * 128);
    // Capacity 20 tokens: 20 * 256 + 20 * 128 = 7680 bytes = 60 granules.
    c.admit(&seq(0, 20, 20)).unwrap();
    assert_eq!(c.region(0), Some(0..60));
    // 32 tokens: both groups still keep all: 32 * 384 = 96 granules.
    c.grow(0, 12).unwrap();
    assert_eq!(c.region(0), Some(0..96));
    // 40 tokens: the windowed group keeps 32 -> 40 * 2 + 32 = 112 granules.
    c.grow(0, 8).unwrap();
    assert_eq!(c.region(0), Some(0..112));
    assert_eq!(c.held_bytes(0), 112 * 128);
    assert_eq!(c.attended_bytes(0), 40 * 256 + 32 * 128);
    assert_eq!(c.usage().stored, 40 * 256 + 32 * 128);
    // A reservation of 100 tokens: 100 * 256 + 32 * 128 = 232 granules.
    c.admit(&seq(1, 10, 100)).unwrap();
    assert_eq!(c.region(1), Some(112..344));
    assert_eq!(c.usage().stored, 40 * 256 + 32 * 128 + 10 * 384);
    assert_eq!(c.usage().allocated, 344 * 128);
    // Past the window only the full-context group grows: 50 more tokens past
    // the reservation cost 50 * 256 bytes = 100 granules.
    c.grow(1, 140).unwrap();
    assert_eq!(c.region(1), Some(112..444));
    // An empty cache holds 484 * 2 + 32 = 1000 granules, not 485 tokens.
    assert!(c.fits_when_empty(&seq(2, 484, 484)));
    assert!(!c.fits_when_empty(&seq(2, 485, 485)));
    c.check_invariants();
}

#[test]
fn hybrid_with_only_windowed_groups_stops_growing() {
    // Two windows (as the sliding policy on gemma-2): 64 B/token windowed at
    // 8, 192 B/token windowed at 4. Granule 64 bytes.
    let l = hybrid(64, Some(8), 192, Some(4));
    let mut c = ContiguousCache::new(100 * 64, l, Allocator::FirstFit);
    c.admit(&seq(0, 2, 2)).unwrap();
    // 2 * 1 + 2 * 3 = 8 granules.
    assert_eq!(c.region(0), Some(0..8));
    c.grow(0, 1000).unwrap();
    // 8 * 1 + 4 * 3 = 20 granules, whatever the length.
    assert_eq!(c.region(0), Some(0..20));
    assert_eq!(c.attended_bytes(0), 8 * 64 + 4 * 192);
    c.check_invariants();
}

#[test]
fn unusable_free_bytes_are_the_holes_too_small() {
    let mut c = cache(100, None);
    // Regions of 10, 5, 20, 5, 30, 5 from 0; [75, 100) stays free.
    for (id, n) in [(0, 10), (1, 5), (2, 20), (3, 5), (4, 30), (5, 5)] {
        c.admit(&seq(id, n, n)).unwrap();
    }
    c.release(0); // [0, 10)
    c.release(2); // [15, 35)
    c.release(4); // [40, 70)
    // Holes of 10, 20, 30 and 25 slots; 85 free.
    assert_eq!(c.usage().free, 85 * BPT);
    let unusable = |c: &ContiguousCache, need: u32| c.unusable_free_bytes(&seq(9, need, need));
    assert_eq!(unusable(&c, 10), 0, "every hole holds 10");
    assert_eq!(unusable(&c, 11), 10 * BPT);
    assert_eq!(unusable(&c, 21), 30 * BPT, "10 + 20");
    assert_eq!(unusable(&c, 26), 55 * BPT, "10 + 20 + 25");
    assert_eq!(
        unusable(&c, 31),
        85 * BPT,
        "nothing fits: all free is unusable"
    );
    assert_eq!(unusable(&c, 0), 0);
    // The reservation is what must fit.
    assert_eq!(c.unusable_free_bytes(&seq(9, 5, 21)), 30 * BPT);
    c.check_invariants();

    // Hybrid: a request for 20 tokens of 256 + 128 B/token (window 32) needs
    // 60 granules of 128 bytes; for 100 tokens, 232.
    let mut h = ContiguousCache::new(
        400 * 128,
        hybrid(256, None, 128, Some(32)),
        Allocator::FirstFit,
    );
    h.admit(&seq(0, 20, 20)).unwrap(); // [0, 60)
    h.admit(&seq(1, 10, 10)).unwrap(); // [60, 90)
    h.release(0);
    // Holes of 60 and 310 granules.
    assert_eq!(h.unusable_free_bytes(&seq(2, 20, 20)), 0);
    assert_eq!(h.unusable_free_bytes(&seq(2, 21, 21)), 60 * 128);
    assert_eq!(h.unusable_free_bytes(&seq(2, 100, 100)), 60 * 128);
    assert_eq!(h.unusable_free_bytes(&seq(2, 200, 200)), 370 * 128);
    h.check_invariants();
}

#[test]
fn content_is_ignored_without_prefix_caching() {
    let mut c = cache(100, None);
    let content = Some(Content {
        key: 7,
        reusable: 64,
        lineage: 64,
    });
    for id in 0..2 {
        let a = c
            .admit(&SeqInfo {
                content,
                ..seq(id, 40, 40)
            })
            .unwrap();
        assert_eq!(a.cached_tokens, 0);
    }
    assert_eq!(c.usage(), usage(80, 80, 100));
}

/// A group's recurrent state, held from the first token on.
fn state(g: &KvGroup, tokens: u32) -> u64 {
    if tokens > 0 { g.state_bytes } else { 0 }
}

/// Reference model: a granule map with the same placement rules, scanned
/// linearly. Obviously correct, O(space) per operation.
struct Model {
    owner: Vec<Option<SeqId>>,
    /// (start, len, cap, tokens) per slot.
    regions: Vec<Option<(u64, u64, u32, u32)>>,
    layout: KvLayout,
    granule: u64,
}

impl Model {
    /// Granules of a region of `cap` tokens, group by group.
    fn len_for(&self, cap: u32) -> u64 {
        let bytes: u64 = self
            .layout
            .groups()
            .iter()
            .map(|g| u64::from(g.span.peak(cap)) * g.bytes_per_token + state(g, cap))
            .sum();
        bytes / self.granule
    }

    fn kept_bytes(&self, t: u32) -> u64 {
        self.layout
            .groups()
            .iter()
            .map(|g| u64::from(g.span.kept(t)) * g.bytes_per_token + state(g, t))
            .sum()
    }

    fn is_free(&self, start: u64, len: u64) -> bool {
        let end = start + len;
        end <= self.owner.len() as u64
            && self.owner[start as usize..end as usize]
                .iter()
                .all(Option::is_none)
    }

    fn first_fit(&self, len: u64) -> Option<u64> {
        if len == 0 {
            return Some(0);
        }
        (0..self.owner.len() as u64).find(|&s| self.is_free(s, len))
    }

    fn fill(&mut self, start: u64, len: u64, who: Option<SeqId>) {
        for o in &mut self.owner[start as usize..(start + len) as usize] {
            *o = who;
        }
    }

    fn admit(&mut self, s: &SeqInfo) -> bool {
        let cap = s.tokens.max(s.reserve);
        let len = self.len_for(cap);
        let Some(start) = self.first_fit(len) else {
            return false;
        };
        self.fill(start, len, Some(s.id));
        self.regions[s.id as usize] = Some((start, len, cap, s.tokens));
        true
    }

    fn fork(&mut self, parent: SeqId, child: SeqId) -> bool {
        let (_, len, cap, tokens) = self.regions[parent as usize].unwrap();
        let Some(start) = self.first_fit(len) else {
            return false;
        };
        self.fill(start, len, Some(child));
        self.regions[child as usize] = Some((start, len, cap, tokens));
        true
    }

    fn grow(&mut self, id: SeqId, n: u32) -> bool {
        let (start, len, cap, tokens) = self.regions[id as usize].unwrap();
        let t = tokens + n;
        let cap2 = cap.max(t);
        let len2 = self.len_for(cap2);
        let mut start2 = start;
        if len2 > len {
            if len > 0 && self.is_free(start + len, len2 - len) {
                // in place
            } else {
                self.fill(start, len, None);
                match self.first_fit(len2) {
                    Some(s) => start2 = s,
                    None => {
                        self.fill(start, len, Some(id));
                        return false;
                    }
                }
            }
            self.fill(start2, len2, Some(id));
        }
        self.regions[id as usize] = Some((start2, len2.max(len), cap2, t));
        true
    }

    fn release(&mut self, id: SeqId) {
        let (start, len, _, _) = self.regions[id as usize].take().unwrap();
        self.fill(start, len, None);
    }

    /// Free runs of the granule map.
    fn runs(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let mut run = 0;
        for o in self.owner.iter().chain([&Some(0)]) {
            if o.is_none() {
                run += 1;
            } else {
                if run > 0 {
                    out.push(run);
                }
                run = 0;
            }
        }
        out
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
    /// Fork `parent` into `child` if the one is live and the other dead.
    Fork {
        parent: SeqId,
        child: SeqId,
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
        2 => (0u32..10, 0u32..10).prop_map(|(parent, child)| Op::Fork { parent, child }),
        3 => (0u32..10).prop_map(|id| Op::Release { id }),
        1 => Just(Op::Reset),
    ]
}

/// Layouts of the property test: uniform or two groups, keeping all tokens,
/// a window or a chunk, with bytes per token that are small multiples of a
/// unit (so granules vary), and a recurrent state or not.
fn layouts() -> impl Strategy<Value = KvLayout> {
    let span = || {
        prop_oneof![
            Just(Span::All),
            (1u32..48).prop_map(Span::Window),
            (1u32..48).prop_map(Span::Chunk),
        ]
    };
    (1u64..4, span(), 0u64..4, span(), 0u64..3).prop_map(|(b0, s0, b1, s1, state)| {
        let group = |bytes_per_token, span| KvGroup {
            bytes_per_token,
            span,
            layers: 1,
            state_bytes: 0,
            flops_per_pair: 0,
        };
        let recurrent = KvGroup {
            state_bytes: state * 6144,
            ..group(0, Span::All)
        };
        KvLayout::new(
            &[group(b0 * 4096, s0), group(b1 * 4096, s1), recurrent],
            1,
            Dtype::Bf16,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random admit/grow/fork/release/reset against the granule-map model:
    /// same outcomes, same placements, consistent counters, no overlap.
    #[test]
    fn matches_granule_map_model(
        space in 0u64..160,
        layout in layouts(),
        ops in prop::collection::vec(op(), 1..120),
        probe in 0u32..60,
    ) {
        let granule = layout
            .groups()
            .iter()
            .fold(0, |a, g| gcd(gcd(a, g.bytes_per_token), g.state_bytes));
        let mut c = ContiguousCache::new(space * granule + granule - 1, layout, Allocator::FirstFit);
        let mut m = Model {
            owner: vec![None; space as usize],
            regions: vec![None; 10],
            layout,
            granule,
        };
        for op in ops {
            let before = c.usage();
            let ok = match op {
                Op::Admit { id, tokens, extra } if m.regions[id as usize].is_none() => {
                    let s = seq(id, tokens, tokens + extra);
                    let ok = c.admit(&s).is_ok();
                    prop_assert_eq!(ok, m.admit(&s));
                    prop_assert_eq!(c.fits_when_empty(&s), m.len_for(tokens + extra) <= space);
                    ok
                }
                Op::Admit { id, extra: n, .. } | Op::Grow { id, n }
                    if m.regions[id as usize].is_some() =>
                {
                    let ok = c.grow(id, n % 16).is_ok();
                    prop_assert_eq!(ok, m.grow(id, n % 16));
                    ok
                }
                Op::Admit { id, .. } | Op::Grow { id, .. } => {
                    let n = match op { Op::Grow { n, .. } => n, _ => 0 };
                    let s = seq(id, n, n);
                    let ok = c.admit(&s).is_ok();
                    prop_assert_eq!(ok, m.admit(&s));
                    ok
                }
                Op::Fork { parent, child }
                    if m.regions[parent as usize].is_some() && m.regions[child as usize].is_none() =>
                {
                    let ok = c.fork(parent, child).is_ok();
                    prop_assert_eq!(ok, m.fork(parent, child));
                    if ok {
                        prop_assert_eq!(c.held_bytes(child), c.held_bytes(parent));
                    }
                    ok
                }
                Op::Fork { .. } => true,
                Op::Release { id } if m.regions[id as usize].is_some() => {
                    let held = c.held_bytes(id);
                    c.release(id);
                    m.release(id);
                    prop_assert_eq!(c.usage().free, before.free + held);
                    true
                }
                Op::Release { .. } => true,
                Op::Reset => {
                    c.reset();
                    m.owner.iter_mut().for_each(|o| *o = None);
                    m.regions.iter_mut().for_each(|r| *r = None);
                    prop_assert_eq!(c.usage().allocated, 0);
                    true
                }
            };
            let u = c.usage();
            if !ok {
                prop_assert_eq!(u, before, "NoRoom changed the counters");
            }
            prop_assert_eq!(u.allocated + u.free, u.budget);
            prop_assert!(u.allocated <= u.budget && u.stored <= u.allocated);
            prop_assert_eq!(u.budget, space * granule);
            prop_assert_eq!(u.cached, 0);
            let (mut alloc, mut stored) = (0, 0);
            for id in 0..10 {
                let want = m.regions[id as usize].map(|(s, len, _, _)| s..s + len);
                prop_assert_eq!(c.region(id), want);
                if let Some((_, len, _, t)) = m.regions[id as usize] {
                    alloc += len;
                    stored += m.kept_bytes(t);
                    prop_assert_eq!(c.attended_bytes(id), m.kept_bytes(t));
                    prop_assert_eq!(c.held_bytes(id), len * granule);
                }
            }
            prop_assert_eq!(u, MemoryUsage::new(space * granule, alloc * granule, stored));
            let runs = m.runs();
            prop_assert_eq!(c.holes(), runs.len());
            prop_assert_eq!(c.largest_hole_bytes(), runs.iter().copied().max().unwrap_or(0) * granule);
            let need = m.len_for(probe);
            let below: u64 = runs.iter().filter(|&&r| r < need).sum();
            prop_assert_eq!(c.unusable_free_bytes(&seq(11, probe, probe)), below * granule);
            c.check_invariants();
        }
    }

    /// Random admit/grow/fork/release/reset on a buddy-allocated cache: blocks
    /// stay aligned powers of two that tile the space with the free blocks,
    /// no free buddies are left unmerged, a refusal changes nothing, and the
    /// counters match the regions.
    #[test]
    fn buddy_keeps_its_invariants(
        space in 0u64..300,
        layout in layouts(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let granule = ContiguousCache::granule_of(&layout);
        let mut c = ContiguousCache::new(space * granule + granule - 1, layout, Allocator::Buddy);
        for op in ops {
            let before = c.usage();
            let live = |c: &ContiguousCache, id: SeqId| c.region(id).is_some();
            let ok = match op {
                Op::Admit { id, tokens, extra } if !live(&c, id) => {
                    c.admit(&seq(id, tokens, tokens + extra)).is_ok()
                }
                Op::Admit { id, extra: n, .. } | Op::Grow { id, n } if live(&c, id) => {
                    c.grow(id, n % 16).is_ok()
                }
                Op::Admit { id, .. } | Op::Grow { id, .. } => c.admit(&seq(id, 0, 0)).is_ok(),
                Op::Fork { parent, child } if live(&c, parent) && !live(&c, child) => {
                    c.fork(parent, child).is_ok()
                }
                Op::Fork { .. } | Op::Release { .. } => true,
                Op::Reset => {
                    c.reset();
                    true
                }
            };
            if let Op::Release { id } = op {
                if live(&c, id) {
                    let held = c.held_bytes(id);
                    c.release(id);
                    prop_assert_eq!(c.usage().free, before.free + held);
                }
            }
            if !ok {
                prop_assert_eq!(c.usage(), before, "NoRoom changed the counters");
            }
            let u = c.usage();
            prop_assert_eq!(u.allocated + u.free, u.budget);
            let mut slack = 0;
            for id in 0..10 {
                if let Some(r) = c.region(id) {
                    let len = r.end - r.start;
                    prop_assert!(len == 0 || len.is_power_of_two());
                    slack += c.allocator_slack_bytes(id);
                    prop_assert!(c.allocator_slack_bytes(id) < len.max(1) * granule);
                }
            }
            prop_assert!(slack + u.stored <= u.allocated);
            c.check_invariants();
        }
    }
}

/// A buddy-allocated cache of exactly `slots` slots.
fn buddy(slots: u64) -> ContiguousCache {
    ContiguousCache::new(slots * BPT + BPT - 1, layout(None), Allocator::Buddy)
}

#[test]
fn buddy_rounds_regions_to_aligned_powers_of_two_and_reports_the_rounding() {
    let mut c = buddy(1024);
    // 25 slots of capacity take a block of 32; the 7 extra are the
    // allocator's, not the sequence's.
    c.admit(&seq(0, 20, 25)).unwrap();
    assert_eq!(c.region(0), Some(0..32));
    assert_eq!(c.held_bytes(0), 32 * BPT);
    assert_eq!(c.allocator_slack_bytes(0), 7 * BPT);
    assert_eq!(c.usage(), usage(32, 20, 1024));
    // 33 slots take 64, aligned to 64: the block at 32 stays free.
    c.admit(&seq(1, 33, 33)).unwrap();
    assert_eq!(c.region(1), Some(64..128));
    assert_eq!(c.allocator_slack_bytes(1), 31 * BPT);
    c.admit(&seq(2, 30, 30)).unwrap();
    assert_eq!(c.region(2), Some(32..64));
    // Growing within the block costs nothing; past it moves to a larger one.
    c.grow(0, 5).unwrap();
    assert_eq!(c.region(0), Some(0..32));
    assert_eq!(c.allocator_slack_bytes(0), 7 * BPT);
    c.grow(0, 10).unwrap();
    assert_eq!(c.region(0), Some(128..192));
    assert_eq!(c.allocator_slack_bytes(0), (64 - 35) * BPT);
    c.check_invariants();
    // Paged and first-fit placement never round.
    let mut f = cache(1000, None);
    f.admit(&seq(0, 20, 25)).unwrap();
    assert_eq!(f.allocator_slack_bytes(0), 0);
}

#[test]
fn buddy_serves_nothing_larger_than_its_largest_block() {
    // 1000 slots are blocks of 512, 256, 128, 64, 32 and 8: 600 never fit.
    let mut c = buddy(1000);
    assert_eq!(c.holes(), 6);
    assert_eq!(c.largest_hole_bytes(), 512 * BPT);
    assert!(c.fits_when_empty(&seq(0, 500, 512)));
    assert!(!c.fits_when_empty(&seq(0, 500, 513)));
    assert!(c.fits_when_empty(&seq(0, 0, 0)));
    // A block comes from the smallest order that has one: 32 slots take the
    // free block of 32 at 960 rather than splitting the 512 at 0.
    c.admit(&seq(0, 32, 32)).unwrap();
    assert_eq!(c.region(0), Some(960..992));
    c.check_invariants();
}

#[test]
fn buddy_free_memory_in_small_blocks_is_unusable_for_a_large_request() {
    let mut c = buddy(64);
    for id in 0..4 {
        c.admit(&seq(id, 16, 16)).unwrap();
    }
    // Blocks 16..32 and 32..48 are free and adjacent, but not buddies: a
    // 32-slot request finds no block.
    c.release(1);
    c.release(2);
    assert_eq!(c.usage().free, 32 * BPT);
    assert_eq!(c.holes(), 2);
    assert_eq!(c.unusable_free_bytes(&seq(9, 20, 20)), 32 * BPT);
    assert_eq!(c.unusable_free_bytes(&seq(9, 16, 16)), 0);
    assert_eq!(c.admit(&seq(9, 20, 20)), Err(NoRoom));
    // Releasing 0 merges 0..16 with its buddy 16..32.
    c.release(0);
    c.admit(&seq(9, 20, 20)).unwrap();
    assert_eq!(c.region(9), Some(0..32));
    c.check_invariants();
}

#[test]
fn buddy_grow_and_fork_without_room_change_nothing() {
    let mut c = buddy(64);
    c.admit(&seq(0, 30, 32)).unwrap();
    c.admit(&seq(1, 30, 32)).unwrap();
    let before = c.usage();
    assert_eq!(c.grow(0, 3), Err(NoRoom));
    assert_eq!(c.fork(0, 2), Err(NoRoom));
    assert_eq!(c.usage(), before);
    assert_eq!(c.region(0), Some(0..32));
    c.check_invariants();
}
