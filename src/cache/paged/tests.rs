use std::collections::BTreeMap;

use super::*;
use crate::cache::{Admitted, CachedPrefix, KvGroup, MemoryUsage, NoRoom, SeqInfo};
use crate::model::{Dtype, Span};
use proptest::prelude::*;

/// Bytes per token of the tests (Llama-3-8B-like, bf16).
const BPT: u64 = 131_072;

fn layout(block_size: u32, window: Option<u32>, bpt: u64) -> KvLayout {
    KvLayout::uniform(bpt, window, 32, block_size, Dtype::Bf16)
}

/// A two-group layout (full-context group, then windowed group).
fn hybrid(bs: u32, b0: u64, w0: Option<u32>, b1: u64, w1: Option<u32>) -> KvLayout {
    let span = |w: Option<u32>| w.map_or(Span::All, Span::Window);
    spans(bs, b0, span(w0), b1, span(w1), 0)
}

/// A two-group layout of any spans, plus `state` bytes of recurrent state
/// per sequence (a third group).
fn spans(bs: u32, b0: u64, s0: Span, b1: u64, s1: Span, state: u64) -> KvLayout {
    let group = |bytes_per_token, span| KvGroup {
        bytes_per_token,
        span,
        layers: 1,
        state_bytes: 0,
        flops_per_pair: 0,
    };
    let recurrent = KvGroup {
        state_bytes: state,
        ..group(0, Span::All)
    };
    KvLayout::new(&[group(b0, s0), group(b1, s1), recurrent], bs, Dtype::Bf16)
}

/// A cache of exactly `blocks` blocks (plus stray bytes that must not count).
fn cache(blocks: u64, block_size: u32, window: Option<u32>) -> PagedCache {
    let bytes = blocks * u64::from(block_size) * BPT;
    PagedCache::new(
        bytes + u64::from(block_size) * BPT - 1,
        layout(block_size, window, BPT),
        false,
    )
}

/// A prefix-caching cache of exactly `blocks` blocks of 16 tokens.
fn prefix_cache(blocks: u64) -> PagedCache {
    PagedCache::new(blocks * 16 * BPT, layout(16, None, BPT), true)
}

fn seq(id: SeqId, tokens: u32, reserve: u32) -> SeqInfo {
    SeqInfo {
        id,
        tokens,
        reserve,
        content: None,
    }
}

/// A sequence of `tokens` tokens with content `key`.
fn with(id: SeqId, tokens: u32, key: u64, reusable: u32, lineage: u32) -> SeqInfo {
    SeqInfo {
        content: Some(Content {
            key,
            reusable,
            lineage,
        }),
        ..seq(id, tokens, tokens)
    }
}

/// Bytes of `n` blocks of 16 tokens at [`BPT`].
const fn blocks16(n: u64) -> u64 {
    n * 16 * BPT
}

/// Free blocks of a uniform cache with blocks of `bs` tokens.
fn free_blocks(c: &PagedCache, bs: u32) -> u64 {
    c.usage().free / (u64::from(bs) * BPT)
}

#[test]
fn seventeen_tokens_take_two_blocks_of_sixteen() {
    let mut c = cache(100, 16, None);
    assert_eq!(c.admit(&seq(0, 17, 17)), Ok(Admitted { cached_tokens: 0 }));
    assert_eq!(c.usage().allocated, 32 * BPT);
    assert_eq!(c.usage().stored, 17 * BPT);
    c.grow(0, 15).unwrap();
    assert_eq!(
        c.usage().allocated,
        32 * BPT,
        "32 tokens still fit 2 blocks"
    );
    c.grow(0, 1).unwrap();
    assert_eq!(
        c.usage().allocated,
        48 * BPT,
        "the 33rd token opens a 3rd block"
    );
    assert_eq!(c.usage().stored, 33 * BPT);
    assert_eq!(c.attended_bytes(0), 33 * BPT);
    assert_eq!(c.held_bytes(0), 48 * BPT);
    assert_eq!(free_blocks(&c, 16), 97);
    c.release(0);
    assert_eq!(c.usage().allocated, 0);
    assert_eq!(free_blocks(&c, 16), 100);
    c.check_invariants();
}

#[test]
fn budget_is_whole_blocks() {
    let c = cache(10, 16, None);
    let u = c.usage();
    assert_eq!(u.budget, 10 * 16 * BPT);
    assert_eq!(
        (u.allocated, u.stored, u.free, u.cached),
        (0, 0, u.budget, 0)
    );
    assert!(c.fits_when_empty(&seq(0, 160, 160)));
    assert!(!c.fits_when_empty(&seq(0, 161, 161)));
    assert!(
        !c.fits_when_empty(&seq(0, 1, 161)),
        "the reservation counts"
    );
    assert_eq!(c.unusable_free_bytes(&seq(0, 161, 161)), 0);
    let none = PagedCache::new(100, layout(16, None, 0), false);
    assert_eq!(none.usage(), MemoryUsage::default());
}

#[test]
fn reservation_is_held_up_front_and_growth_inside_it_is_free() {
    let mut c = cache(4, 16, None);
    c.admit(&seq(0, 10, 40)).unwrap();
    assert_eq!(c.blocks_of(0), Some(vec![3]));
    assert_eq!(c.held_bytes(0), 48 * BPT);
    assert_eq!(c.usage().stored, 10 * BPT);
    c.grow(0, 30).unwrap();
    assert_eq!(c.blocks_of(0), Some(vec![3]));
    assert_eq!(c.admit(&seq(1, 17, 17)), Err(NoRoom));
    c.admit(&seq(1, 16, 16)).unwrap();
    let before = c.usage();
    assert_eq!(before.free, 0);
    assert_eq!(c.grow(0, 9), Err(NoRoom));
    assert_eq!(c.usage(), before);
    assert_eq!(c.attended_bytes(0), 40 * BPT);
    c.grow(0, 8).unwrap();
    assert_eq!(c.blocks_of(0), Some(vec![3]));
    c.check_invariants();
}

#[test]
fn sliding_window_keeps_memory_flat_past_the_window() {
    let (w, bs) = (4096u32, 16u32);
    let cap = (u64::from(w / bs) + 1) * u64::from(bs) * BPT;
    // Room for exactly one windowed sequence.
    let mut c = cache(u64::from(w / bs) + 1, bs, Some(w));
    c.admit(&seq(0, 100, 100)).unwrap();
    let mut at_cap = 0;
    let mut tokens = 100u32;
    while tokens < 20_000 {
        c.grow(0, 1).unwrap();
        tokens += 1;
        let u = c.usage();
        assert!(
            u.allocated <= cap,
            "{tokens} tokens hold {} bytes",
            u.allocated
        );
        assert!(u.stored <= u.allocated);
        if tokens > w {
            // Straddling: 257 blocks unless the window starts on a boundary.
            let want = if tokens % bs == 0 {
                cap - u64::from(bs) * BPT
            } else {
                cap
            };
            assert_eq!(u.allocated, want, "at {tokens} tokens");
            assert_eq!(u.stored, u64::from(w) * BPT);
            assert_eq!(c.attended_bytes(0), u64::from(w) * BPT);
            at_cap += u64::from(u.allocated == cap);
        }
    }
    assert!(at_cap > 10_000);
    c.check_invariants();
    // Growing in big chunks lands on the same counts.
    let mut d = cache(1000, bs, Some(w));
    d.admit(&seq(0, 5000, 5000)).unwrap();
    assert_eq!(d.usage().allocated, cap);
    d.grow(0, 15_000).unwrap();
    assert_eq!(d.usage().allocated, 256 * 16 * BPT);
    assert_eq!(d.attended_bytes(0), 4096 * BPT);
    d.check_invariants();
}

#[test]
fn reservation_under_a_window_is_capped_by_the_window() {
    let mut c = cache(1000, 16, Some(4096));
    c.admit(&seq(0, 100, 100_000)).unwrap();
    assert_eq!(c.blocks_of(0), Some(vec![257]));
    // Reserving less than the window: just the blocks of the reservation.
    c.admit(&seq(1, 100, 1000)).unwrap();
    assert_eq!(c.blocks_of(1), Some(vec![63]));
    // Reservation growth never allocates; past it, the window does.
    c.grow(0, 99_900).unwrap();
    assert_eq!(
        c.blocks_of(0),
        Some(vec![256]),
        "100,000 is a block boundary"
    );
    assert!(c.fits_when_empty(&seq(2, 1_000_000, 1_000_000)));
    c.check_invariants();
}

/// Blocks covering the kept span of `t` tokens, by definition.
fn blocks_at(bs: u32, window: Option<u32>, t: u32) -> u64 {
    let start = window.map_or(0, |w| t.saturating_sub(w));
    if start == t {
        0
    } else {
        // Blocks [floor(start / bs), ceil(t / bs)) cover [start, t).
        u64::from(t.div_ceil(bs) - start / bs)
    }
}

#[test]
fn chunk_blocks_closed_form_matches_a_scan() {
    for bs in 1..=6u32 {
        for chunks in 1..=5u32 {
            let c = chunks * bs;
            let span = Span::Chunk(c);
            // Blocks of the current chunk at length t: chunks are block
            // aligned, so ceil(kept / bs).
            let at = |t: u32| u64::from(span.kept(t).div_ceil(bs));
            for a in 0..=60u32 {
                for b in a..=a + 2 * c + 3 {
                    let scan = (a..=b).map(at).max().unwrap();
                    let closed = peak_blocks(u64::from(bs), span, a, b);
                    assert_eq!(closed, scan, "bs {bs} chunk {c} [{a}, {b}]");
                }
            }
        }
    }
}

/// A chunked group frees the previous chunk's blocks when the next chunk
/// starts; a recurrent state is held once per sequence, forks copy it.
#[test]
fn chunks_free_their_blocks_and_state_is_per_sequence() {
    // 4-token blocks of 100 B/token: 400 B; chunks of 8 tokens (2 blocks);
    // 1000 B of state per sequence.
    let l = spans(4, 100, Span::Chunk(8), 0, Span::All, 1000);
    let mut c = PagedCache::new(100_000, l, false);
    c.admit(&seq(0, 5, 5)).unwrap();
    // 5 tokens: chunk 0 holds tokens 0-4 in 2 blocks, plus the state.
    assert_eq!(c.held_bytes(0), 2 * 400 + 1000);
    c.grow(0, 3).unwrap(); // 8 tokens: the chunk is full, still 2 blocks.
    assert_eq!(c.held_bytes(0), 2 * 400 + 1000);
    c.grow(0, 1).unwrap(); // token 9 opens chunk 1: its first block only.
    assert_eq!(c.held_bytes(0), 400 + 1000);
    assert_eq!(c.usage().stored, 100 + 1000);
    c.check_invariants();
    c.fork(0, 1).unwrap();
    // The child copies the partial block and the state.
    assert_eq!(c.usage().allocated, 2 * (400 + 1000));
    c.release(0);
    c.release(1);
    assert_eq!(c.usage().allocated, 0);
    c.check_invariants();
    // The state counts when the cache is full: 100,000 B hold 71 states of
    // 1,000 B with one 400 B block each (1,400 B), not 250 blocks.
    let mut c = PagedCache::new(100_000, l, false);
    let admitted = (0..100)
        .take_while(|&i| c.admit(&seq(i, 4, 4)).is_ok())
        .count();
    assert_eq!(admitted, 100_000 / 1400);
    c.check_invariants();
}

#[test]
fn window_blocks_closed_form_matches_a_scan() {
    for bs in 1..=9u32 {
        for w in 0..=30u32 {
            for a in 0..=70u32 {
                for b in a..=a + 2 * bs + 3 {
                    let scan = (a..=b).map(|t| blocks_at(bs, Some(w), t)).max().unwrap();
                    let closed = peak_blocks(u64::from(bs), Span::Window(w), a, b);
                    assert_eq!(closed, scan, "bs {bs} w {w} [{a}, {b}]");
                }
            }
            // Never above the window's bound.
            let bound = u64::from(w.div_ceil(bs)) + 1;
            assert!(peak_blocks(u64::from(bs), Span::Window(w), 0, 10_000) <= bound);
        }
    }
}

#[test]
fn quantized_dtypes_only_change_bytes_per_token() {
    // int8 with group scales: 512 vectors x 132 bytes per token.
    let bpt = 512 * 132;
    let mut c = PagedCache::new(10 * 16 * bpt, layout(16, None, bpt), false);
    c.admit(&seq(0, 17, 17)).unwrap();
    assert_eq!(c.usage().allocated, 32 * bpt);
    assert_eq!(c.attended_bytes(0), 17 * bpt);
}

#[test]
fn reset_frees_everything() {
    let mut c = cache(8, 4, None);
    c.admit(&seq(5, 9, 9)).unwrap();
    c.admit(&seq(1, 4, 4)).unwrap();
    c.reset();
    assert_eq!(free_blocks(&c, 4), 8);
    assert_eq!(c.usage().allocated, 0);
    assert_eq!(c.usage().stored, 0);
    assert_eq!(c.blocks_of(5), None);
    c.admit(&seq(5, 32, 32)).unwrap();
    c.check_invariants();
}

#[test]
#[should_panic(expected = "growing dead sequence")]
fn growing_a_dead_id_is_a_bug() {
    let _ = cache(8, 4, None).grow(3, 1);
}

#[test]
#[should_panic(expected = "prefix caching needs a layout without windows")]
fn prefix_caching_with_a_window_is_a_bug() {
    let _ = PagedCache::new(1 << 30, layout(16, Some(64), BPT), true);
}

#[test]
fn prefix_blocks_are_shared_cached_and_evicted_lru() {
    let mut c = prefix_cache(12);
    // The first sequence computes everything and publishes blocks 0..4
    // (lineage 64 = 4 blocks); its 5th block is beyond the lineage.
    assert_eq!(
        c.admit(&with(0, 80, 7, 64, 64)),
        Ok(Admitted { cached_tokens: 0 })
    );
    assert_eq!(c.usage().allocated, blocks16(5));
    // The second shares the 4 blocks: only its 5th is new.
    assert_eq!(
        c.admit(&with(1, 80, 7, 64, 64)),
        Ok(Admitted { cached_tokens: 64 })
    );
    assert_eq!(c.usage().allocated, blocks16(6));
    assert_eq!(
        c.held_bytes(1),
        blocks16(5),
        "shared blocks count for each holder"
    );
    assert_eq!(
        c.usage().stored,
        (80 + 16) * BPT,
        "shared tokens count once"
    );
    c.check_invariants();
    // Released, the published blocks stay cached (inside free); the
    // unpublished 5th blocks are plain free blocks.
    c.release(0);
    assert_eq!(
        c.usage().allocated,
        blocks16(5),
        "1 still holds the shared 4"
    );
    assert_eq!(c.usage().cached, 0);
    c.release(1);
    let u = c.usage();
    assert_eq!((u.allocated, u.stored, u.cached), (0, 0, blocks16(4)));
    assert_eq!(u.free, u.budget);
    assert_eq!(c.cached_blocks(), 4);
    c.check_invariants();
    // A third sequence hits them, taking them out of the cache.
    assert_eq!(
        c.admit(&with(2, 80, 7, 64, 64)),
        Ok(Admitted { cached_tokens: 64 })
    );
    assert_eq!((c.usage().allocated, c.usage().cached), (blocks16(5), 0));
    c.release(2);
    assert_eq!(c.usage().cached, blocks16(4));
    // Pressure: 8 blocks fit in the uncached free space without evicting.
    c.admit(&seq(3, 128, 128)).unwrap();
    assert_eq!(c.usage().cached, blocks16(4));
    // 2 more blocks evict 2 cached ones, least recently used first: the
    // prefix released its tail first, so blocks 3 and 2 go, 0 and 1 stay.
    c.admit(&seq(4, 32, 32)).unwrap();
    assert_eq!(c.usage().cached, blocks16(2));
    assert_eq!(c.usage().free, blocks16(2));
    c.check_invariants();
    c.release(3);
    c.release(4);
    assert_eq!(
        c.admit(&with(5, 80, 7, 64, 64)),
        Ok(Admitted { cached_tokens: 32 })
    );
    c.release(5);
    // A sequence needing the whole cache evicts everything; the next lookup
    // misses.
    c.admit(&seq(6, 192, 192)).unwrap();
    assert_eq!(c.usage().cached, 0);
    c.release(6);
    assert_eq!(
        c.admit(&with(7, 80, 7, 64, 64)),
        Ok(Admitted { cached_tokens: 0 })
    );
    c.check_invariants();
}

#[test]
fn multi_turn_lineage_is_reused_by_the_next_turn() {
    let mut c = prefix_cache(100);
    // Turn 1: 20 prompt tokens, decoded one token at a time to 100.
    assert_eq!(
        c.admit(&with(0, 20, 9, 0, u32::MAX)).unwrap().cached_tokens,
        0
    );
    for _ in 20..100 {
        c.grow(0, 1).unwrap();
    }
    c.release(0);
    // 6 full blocks were published as they filled; the partial 7th was not.
    assert_eq!(c.cached_blocks(), 6);
    assert_eq!(c.usage().cached, blocks16(6));
    // Turn 2 carries the 100 tokens of history: 6 whole blocks are cached.
    let next = with(1, 150, 9, 100, u32::MAX);
    assert_eq!(c.admit(&next).unwrap().cached_tokens, 96);
    assert_eq!(c.usage().allocated, blocks16(10));
    // Another session misses.
    assert_eq!(
        c.admit(&with(2, 150, 10, 100, u32::MAX))
            .unwrap()
            .cached_tokens,
        0
    );
    c.check_invariants();
}

#[test]
fn leading_published_blocks_count_what_admission_would_hit_and_change_nothing() {
    let mut c = prefix_cache(100);
    // Session 9's first turn: 100 tokens, 6 whole blocks published.
    c.admit(&with(0, 20, 9, 0, u32::MAX)).unwrap();
    for _ in 20..100 {
        c.grow(0, 1).unwrap();
    }
    let content = |key, reusable| Content {
        key,
        reusable,
        lineage: u32::MAX,
    };
    let found = |c: &PagedCache, key, reusable| {
        let f = c.leading_published_blocks(&content(key, reusable));
        (f.blocks, f.held)
    };
    // Referenced blocks count (the turn is still live), as held ...
    assert_eq!(found(&c, 9, 100), (6, 6));
    c.release(0);
    // ... and cached ones, up to `reusable / block_size`.
    assert_eq!(found(&c, 9, 100), (6, 0));
    assert_eq!(found(&c, 9, 40), (2, 0));
    assert_eq!(found(&c, 9, 15), (0, 0));
    assert_eq!(found(&c, 10, 100), (0, 0));
    assert_eq!(
        c.cached_prefix(&content(9, 100)),
        CachedPrefix { blocks: 6, held: 0 }
    );
    // Looking moved nothing: the LRU order and the counters are as before,
    // and admission then hits exactly the counted blocks.
    let lru = c.prefix.as_ref().unwrap().lru();
    let usage = c.usage();
    let _ = c.leading_published_blocks(&content(9, 100));
    assert_eq!(c.prefix.as_ref().unwrap().lru(), lru);
    assert_eq!(c.usage(), usage);
    assert_eq!(
        c.admit(&with(1, 150, 9, 100, u32::MAX))
            .unwrap()
            .cached_tokens,
        96
    );
    assert_eq!(found(&c, 9, 100), (6, 6), "held again");
    // The walk stops at the first miss: a released prefix loses its tail
    // first, and only the blocks before it count.
    let mut gap = prefix_cache(100);
    gap.admit(&with(0, 64, 5, 64, 64)).unwrap();
    gap.release(0);
    assert_eq!(found(&gap, 5, 64), (4, 0));
    gap.prefix.as_mut().unwrap().evict();
    assert_eq!(found(&gap, 5, 64), (3, 0));
    // Without prefix caching there is no index to look in.
    assert_eq!(found(&cache(10, 16, None), 5, 64), (0, 0));
    c.check_invariants();
}

#[test]
fn cached_tokens_never_cover_the_whole_sequence() {
    let mut c = prefix_cache(100);
    c.admit(&with(0, 64, 5, 64, 64)).unwrap();
    assert_eq!(c.cached_blocks() + c.usage().allocated / blocks16(1), 4);
    // 64 tokens, all reusable: at least the last token is computed, so only
    // floor(63 / 16) = 3 blocks are hits.
    assert_eq!(c.admit(&with(1, 64, 5, 64, 64)).unwrap().cached_tokens, 48);
    assert_eq!(c.usage().allocated, blocks16(5));
    // A 1-token sequence never hits.
    assert_eq!(c.admit(&with(2, 1, 5, 64, 64)).unwrap().cached_tokens, 0);
    c.check_invariants();
}

#[test]
fn concurrent_duplicates_stay_private() {
    let mut c = prefix_cache(100);
    // Two sequences of one session decode the same block index at once
    // (neither may reuse anything): the first to fill it publishes it.
    c.admit(&with(0, 10, 3, 0, u32::MAX)).unwrap();
    c.admit(&with(1, 10, 3, 0, u32::MAX)).unwrap();
    c.grow(0, 6).unwrap();
    c.grow(1, 6).unwrap();
    c.release(1);
    assert_eq!(c.cached_blocks(), 0, "1's copy was never published");
    c.release(0);
    assert_eq!(c.cached_blocks(), 1);
    c.check_invariants();
}

#[test]
fn no_room_with_prefix_hits_changes_nothing() {
    let mut c = prefix_cache(6);
    c.admit(&with(0, 64, 1, 64, 64)).unwrap();
    c.release(0);
    c.admit(&seq(1, 32, 32)).unwrap();
    // 4 cached + 2 held. 100 tokens need 7 blocks: 3 hits (cached) + 4 new.
    let before = c.usage();
    assert_eq!(c.admit(&with(2, 100, 1, 64, 64)), Err(NoRoom));
    assert_eq!(c.usage(), before);
    assert_eq!(c.cached_blocks(), 4);
    // fits_when_empty ignores the cache: 7 blocks > 6, 6 blocks fit.
    assert!(!c.fits_when_empty(&with(2, 100, 1, 64, 64)));
    assert!(c.fits_when_empty(&with(2, 96, 1, 64, 64)));
    // 64 tokens: 3 hits from the cache plus 1 new, evicting 1 cached block.
    assert_eq!(c.admit(&with(2, 64, 1, 64, 64)).unwrap().cached_tokens, 48);
    assert_eq!(c.usage().free, 0);
    c.check_invariants();
    c.reset();
    assert_eq!(
        c.usage(),
        PagedCache::new(6 * 16 * BPT, layout(16, None, BPT), true).usage()
    );
    assert_eq!(
        c.admit(&with(0, 64, 1, 64, 64)).unwrap().cached_tokens,
        0,
        "reset drops the cache"
    );
}

#[test]
fn fork_shares_full_blocks_and_copies_the_partial_one() {
    let mut c = cache(100, 16, None);
    // 40 tokens: 2 full blocks and a partial one.
    c.admit(&seq(0, 40, 40)).unwrap();
    assert_eq!(c.usage().allocated, blocks16(3));
    c.fork(0, 1).unwrap();
    assert_eq!(c.usage().allocated, blocks16(4), "the fork costs one block");
    assert_eq!(c.held_bytes(1), blocks16(3));
    assert_eq!(c.usage().stored, (40 + 8) * BPT, "shared tokens count once");
    assert_eq!(c.attended_bytes(1), 40 * BPT);
    c.check_invariants();
    // They grow independently: the parent fills its own third block, the
    // child opens a fourth.
    c.grow(0, 8).unwrap();
    c.grow(1, 9).unwrap();
    assert_eq!(c.usage().allocated, blocks16(5));
    assert_eq!(c.usage().stored, (48 + 17) * BPT);
    // Releasing the parent keeps the shared blocks for the child.
    c.release(0);
    assert_eq!(c.usage().allocated, blocks16(4));
    assert_eq!(c.usage().stored, 49 * BPT);
    c.check_invariants();
    c.release(1);
    assert_eq!(c.usage().allocated, 0);
    assert_eq!(c.usage().stored, 0);
    c.check_invariants();
}

#[test]
fn fork_of_a_block_aligned_parent_is_free_and_no_room_changes_nothing() {
    let mut c = cache(3, 16, None);
    c.admit(&seq(0, 32, 32)).unwrap();
    c.fork(0, 1).unwrap();
    assert_eq!(c.usage().allocated, blocks16(2), "nothing partial to copy");
    c.grow(1, 1).unwrap();
    c.grow(0, 1).unwrap_err();
    // Now 0 is at 32 tokens and 1 at 33 with its own third block: forking 1
    // needs a copy and the cache is full.
    let before = c.usage();
    assert_eq!(c.fork(1, 2), Err(NoRoom));
    assert_eq!(c.usage(), before);
    assert_eq!(c.blocks_of(2), None);
    // Releasing 0 frees nothing: 1 still holds the shared blocks.
    c.release(0);
    assert_eq!(c.usage(), before);
    assert_eq!(c.fork(1, 2), Err(NoRoom));
    c.check_invariants();
}

#[test]
fn fork_under_a_window_shares_the_kept_blocks() {
    // Window 20, blocks of 16: 40 tokens keep [20, 40): block 1 (full,
    // partly slid out) and block 2 (8 tokens).
    let mut c = cache(100, 16, Some(20));
    c.admit(&seq(0, 40, 40)).unwrap();
    assert_eq!(c.blocks_of(0), Some(vec![2]));
    c.fork(0, 1).unwrap();
    assert_eq!(c.usage().allocated, blocks16(3));
    // The shared front block counts whole once: 16 + 8 + 8.
    assert_eq!(c.usage().stored, 32 * BPT);
    c.check_invariants();
    // At 49 tokens the window [29, 49) still starts in block 1: both open a
    // 4th block (the parent's 3rd is full, the child's copy too).
    c.grow(0, 9).unwrap();
    c.grow(1, 9).unwrap();
    assert_eq!(c.blocks_of(0), Some(vec![3]));
    assert_eq!(c.usage().allocated, blocks16(5));
    // 13 of block 1's tokens slid out of both windows; it still counts whole.
    assert_eq!(c.usage().stored, (16 + 16 + 1 + 16 + 1) * BPT);
    c.check_invariants();
    // At 52 tokens the window [32, 52) has left block 1: it is freed.
    c.grow(0, 3).unwrap();
    c.grow(1, 3).unwrap();
    assert_eq!(c.blocks_of(0), Some(vec![2]));
    assert_eq!(c.usage().allocated, blocks16(4));
    assert_eq!(c.usage().stored, 40 * BPT, "two private windows");
    c.release(0);
    c.release(1);
    assert_eq!(c.usage(), cache(100, 16, Some(20)).usage());
    c.check_invariants();
}

#[test]
fn fork_child_shares_cached_prefix_but_publishes_nothing_new() {
    let mut c = prefix_cache(100);
    c.admit(&with(0, 40, 4, 0, u32::MAX)).unwrap();
    c.fork(0, 1).unwrap();
    // The child's own continuation is not the session's lineage.
    c.grow(1, 30).unwrap();
    c.grow(0, 30).unwrap();
    c.release(1);
    c.release(0);
    // Blocks 0..4 are published by the parent (70 tokens).
    assert_eq!(c.cached_blocks(), 4);
    c.check_invariants();
}

#[test]
fn hybrid_groups_hold_their_own_blocks_from_one_pool() {
    // Group 0: 128 B/token, all tokens; group 1: 128 B/token, window 32.
    let l = hybrid(16, 128, None, 128, Some(32));
    let block = 16 * 128;
    let mut c = PagedCache::new(100 * block, l, false);
    c.admit(&seq(0, 1, 1)).unwrap();
    for _ in 1..200 {
        c.grow(0, 1).unwrap();
        let g1 = c.blocks_of(0).unwrap()[1];
        assert!(g1 <= 3, "a window of 32 spans at most 3 blocks of 16");
    }
    // [0, 200) in 13 blocks; [168, 200) in blocks 10..13.
    assert_eq!(c.blocks_of(0), Some(vec![13, 3]));
    assert_eq!(c.held_bytes(0), 16 * block);
    assert_eq!(c.attended_bytes(0), 200 * 128 + 32 * 128);
    let u = c.usage();
    assert_eq!(u.stored, 200 * 128 + 32 * 128);
    assert_eq!(u.allocated, 16 * block);
    // One pool: 84 blocks left, of either group.
    assert_eq!(u.free, 84 * block);
    c.check_invariants();
    // 84 blocks: a 1000-token sequence needs 63 + 3 ([968, 1000) starts
    // mid-block) = 66 and fits; 40 tokens need 3 + 3 ([8, 40)) of the 18 left.
    c.admit(&seq(1, 1000, 1000)).unwrap();
    assert_eq!(c.blocks_of(1), Some(vec![63, 3]));
    c.admit(&seq(2, 40, 40)).unwrap();
    assert_eq!(c.usage().free, 12 * block);
    // 200 tokens need 13 + 3 blocks: more than the 12 free.
    assert_eq!(c.admit(&seq(3, 200, 200)), Err(NoRoom));
    c.release(0);
    c.release(1);
    c.release(2);
    assert_eq!(c.usage().allocated, 0);
    c.check_invariants();
}

#[test]
fn hybrid_budget_rounds_to_the_gcd_of_the_block_bytes() {
    // Blocks of 4 tokens: 4 * 384 = 1536 and 4 * 256 = 1024 bytes; gcd 512.
    let l = hybrid(4, 384, None, 256, Some(8));
    let c = PagedCache::new(10_000, l, false);
    assert_eq!(c.usage().budget, 9728);
    // Same windows merge into one group: blocks of 4 * 640 bytes.
    let m = PagedCache::new(10_000, hybrid(4, 384, Some(8), 256, Some(8)), false);
    assert_eq!(m.usage().budget, 7680);
    let mut m = m;
    m.admit(&seq(0, 9, 9)).unwrap();
    assert_eq!(
        m.blocks_of(0),
        Some(vec![3, 3]),
        "both layer groups hold the blocks"
    );
    assert_eq!(m.held_bytes(0), 3 * 4 * 640);
    m.check_invariants();
}

// ---------------------------------------------------------------------------
// Property test: a per-block simulation with no shortcuts.

/// A block of the model.
#[derive(Clone, Debug, Default)]
struct MBlock {
    refs: u32,
    ident: Option<(u64, u32)>,
}

/// A sequence of the model: per physical group `(logical index, block)`
/// pairs and spare blocks.
#[derive(Clone, Debug)]
struct MSeq {
    tokens: u32,
    reserve: u32,
    content: Option<Content>,
    blocks: Vec<Vec<(u64, usize)>>,
    spare: Vec<u64>,
}

/// A physical group of the model: `(bpt, window, block bytes)` and blocks.
#[derive(Clone, Debug)]
struct MGroup {
    bpt: u64,
    window: Span,
    bb: u64,
    blocks: Vec<MBlock>,
}

/// The reference: every block an object, allocations one at a time, eviction
/// from a plain `Vec` in LRU order, identities in a `BTreeMap`.
#[derive(Clone, Debug)]
struct Model {
    bs: u64,
    budget: u64,
    prefix: bool,
    /// Recurrent state bytes per live sequence.
    state: u64,
    groups: Vec<MGroup>,
    seqs: Vec<Option<MSeq>>,
    /// Cached blocks of group 0, least recently used first.
    lru: Vec<usize>,
    idents: BTreeMap<(u64, u32), usize>,
}

impl Model {
    fn new(budget: u64, l: &KvLayout, prefix: bool) -> Self {
        let bs = u64::from(l.block_size);
        let mut groups: Vec<MGroup> = Vec::new();
        for g in l.groups().iter().filter(|g| g.bytes_per_token > 0) {
            match groups.iter_mut().find(|p| p.window == g.span) {
                Some(p) => p.bpt += g.bytes_per_token,
                None => groups.push(MGroup {
                    bpt: g.bytes_per_token,
                    window: g.span,
                    bb: 0,
                    blocks: Vec::new(),
                }),
            }
        }
        let mut unit = l.state_bytes();
        for p in &mut groups {
            p.bb = p.bpt * bs;
            unit = gcd(unit, p.bb);
        }
        Model {
            bs,
            budget: budget.checked_div(unit).map_or(0, |n| n * unit),
            prefix,
            state: l.state_bytes(),
            groups,
            seqs: vec![None; 12],
            lru: Vec::new(),
            idents: BTreeMap::new(),
        }
    }

    fn kept(window: Span, t: u32) -> u32 {
        window.kept(t)
    }

    /// Logical blocks covering the kept span.
    fn needed(&self, g: usize, t: u32) -> std::ops::Range<u64> {
        let kept = Self::kept(self.groups[g].window, t);
        let end = u64::from(t).div_ceil(self.bs);
        if kept == 0 {
            return end..end;
        }
        u64::from(t - kept) / self.bs..end
    }

    /// Blocks held at `t` for reservation `r`: the most needed at any length
    /// up to the reservation, by scanning.
    fn target(&self, g: usize, t: u32, r: u32) -> u64 {
        (t..=t.max(r))
            .map(|x| {
                let n = self.needed(g, x);
                n.end - n.start
            })
            .max()
            .unwrap()
    }

    fn allocated(&self) -> u64 {
        let mut a = self.seqs.iter().flatten().count() as u64 * self.state;
        for (g, p) in self.groups.iter().enumerate() {
            a += p.blocks.iter().filter(|b| b.refs > 0).count() as u64 * p.bb;
            a += self.seqs.iter().flatten().map(|s| s.spare[g]).sum::<u64>() * p.bb;
        }
        a
    }

    fn cached(&self) -> u64 {
        self.lru.len() as u64 * self.groups.first().map_or(0, |p| p.bb)
    }

    /// Makes room for one block of group `g`, evicting if needed.
    fn room(&mut self, g: usize) -> bool {
        let bb = self.groups[g].bb;
        if self.budget - self.allocated() - self.cached() >= bb {
            return true;
        }
        if g != 0 || self.lru.is_empty() {
            return false;
        }
        let id = self.lru.remove(0);
        let ident = self.groups[0].blocks[id].ident.take().unwrap();
        self.idents.remove(&ident);
        true
    }

    /// A new block of group `g` with one reference.
    fn alloc(&mut self, g: usize) -> Option<usize> {
        if !self.room(g) {
            return None;
        }
        let p = &mut self.groups[g];
        p.blocks.push(MBlock {
            refs: 1,
            ident: None,
        });
        Some(p.blocks.len() - 1)
    }

    fn unref(&mut self, g: usize, id: usize) {
        let b = &mut self.groups[g].blocks[id];
        b.refs -= 1;
        if b.refs == 0 && b.ident.is_some() {
            self.lru.push(id);
        }
    }

    fn publish(&mut self, id: SeqId, from: u32, to: u32) {
        let s = self.seqs[id as usize].as_ref().unwrap();
        let Some(c) = s.content.filter(|_| self.prefix) else {
            return;
        };
        for idx in u64::from(from) / self.bs..(u64::from(to).min(u64::from(c.lineage)) / self.bs) {
            let (_, b) = *s.blocks[0].iter().find(|&&(l, _)| l == idx).unwrap();
            let key = (c.key, idx as u32);
            if !self.idents.contains_key(&key) && self.groups[0].blocks[b].ident.is_none() {
                self.idents.insert(key, b);
                self.groups[0].blocks[b].ident = Some(key);
            }
        }
    }

    /// Admits on a copy; returns the cached tokens if everything fit.
    fn admit(&mut self, s: &SeqInfo) -> Option<u32> {
        let mut m = self.clone();
        let mut hits = Vec::new();
        if let (true, Some(c)) = (m.prefix, s.content) {
            let most = u64::from(c.reusable.min(s.tokens.saturating_sub(1))) / m.bs;
            for idx in 0..most {
                match m.idents.get(&(c.key, idx as u32)) {
                    Some(&b) => hits.push(b),
                    None => break,
                }
            }
        }
        for &b in &hits {
            if m.groups[0].blocks[b].refs == 0 {
                m.lru.retain(|&x| x != b);
            }
            m.groups[0].blocks[b].refs += 1;
        }
        let n = m.groups.len();
        let mut st = MSeq {
            tokens: s.tokens,
            reserve: s.reserve,
            content: s.content,
            blocks: vec![Vec::new(); n],
            spare: vec![0; n],
        };
        m.seqs[s.id as usize] = Some(st.clone());
        if m.allocated() + m.cached() > m.budget {
            // Its recurrent state does not fit (no cached block to evict:
            // prefix caching needs a layout without state).
            return None;
        }
        for g in 0..n {
            let need = m.needed(g, s.tokens);
            let spare = m.target(g, s.tokens, s.reserve) - (need.end - need.start);
            for l in need {
                let b = match hits.get(l as usize).filter(|_| g == 0) {
                    Some(&b) => b,
                    None => m.alloc(g)?,
                };
                st.blocks[g].push((l, b));
                m.seqs[s.id as usize] = Some(st.clone());
            }
            for _ in 0..spare {
                if !m.room(g) {
                    return None;
                }
                st.spare[g] += 1;
                m.seqs[s.id as usize] = Some(st.clone());
            }
        }
        m.publish(s.id, 0, s.tokens);
        *self = m;
        Some(hits.len() as u32 * self.bs as u32)
    }

    /// Grows on a copy: drops every group's slid blocks and surplus spares,
    /// then allocates.
    fn grow(&mut self, id: SeqId, n: u32) -> bool {
        let mut m = self.clone();
        let mut s = m.seqs[id as usize].clone().unwrap();
        let t0 = s.tokens;
        let t1 = t0 + n;
        let groups = m.groups.len();
        let mut fresh = vec![Vec::new(); groups];
        let mut spare_to = vec![0; groups];
        for g in 0..groups {
            let need = m.needed(g, t1);
            let (keep, drop): (Vec<_>, Vec<_>) =
                s.blocks[g].iter().partition(|&&(l, _)| l >= need.start);
            for (_, b) in drop {
                m.unref(g, b);
            }
            s.blocks[g] = keep;
            fresh[g] = need
                .filter(|l| !s.blocks[g].iter().any(|&(x, _)| x == *l))
                .collect::<Vec<_>>();
            spare_to[g] = m.target(g, t1, s.reserve) - m.needed(g, t1).count() as u64;
            // Spares cover new blocks first; a surplus goes back now.
            let keep_spare = spare_to[g] + fresh[g].len() as u64;
            s.spare[g] = s.spare[g].min(keep_spare);
            m.seqs[id as usize] = Some(s.clone());
        }
        for g in 0..groups {
            for &l in &fresh[g] {
                let b = if s.spare[g] > 0 {
                    s.spare[g] -= 1;
                    m.groups[g].blocks.push(MBlock {
                        refs: 1,
                        ident: None,
                    });
                    m.groups[g].blocks.len() - 1
                } else {
                    match m.alloc(g) {
                        Some(b) => b,
                        None => return false,
                    }
                };
                s.blocks[g].push((l, b));
                m.seqs[id as usize] = Some(s.clone());
            }
            while s.spare[g] < spare_to[g] {
                if !m.room(g) {
                    return false;
                }
                s.spare[g] += 1;
                m.seqs[id as usize] = Some(s.clone());
            }
        }
        s.tokens = t1;
        m.seqs[id as usize] = Some(s);
        m.publish(id, t0, t1);
        *self = m;
        true
    }

    fn fork(&mut self, parent: SeqId, child: SeqId) -> bool {
        let mut m = self.clone();
        let p = m.seqs[parent as usize].clone().unwrap();
        let mut c = MSeq {
            reserve: p.tokens,
            content: p.content.map(|c| Content {
                lineage: c.lineage.min(p.tokens),
                ..c
            }),
            blocks: vec![Vec::new(); m.groups.len()],
            spare: vec![0; m.groups.len()],
            ..p.clone()
        };
        m.seqs[child as usize] = Some(c.clone());
        if m.allocated() + m.cached() > m.budget {
            return false;
        }
        for g in 0..m.groups.len() {
            for &(l, b) in &p.blocks[g] {
                if (l + 1) * m.bs <= u64::from(p.tokens) {
                    m.groups[g].blocks[b].refs += 1;
                    c.blocks[g].push((l, b));
                } else {
                    match m.alloc(g) {
                        Some(nb) => c.blocks[g].push((l, nb)),
                        None => return false,
                    }
                }
                m.seqs[child as usize] = Some(c.clone());
            }
        }
        m.seqs[child as usize] = Some(c);
        *self = m;
        true
    }

    fn release(&mut self, id: SeqId) {
        let s = self.seqs[id as usize].take().unwrap();
        for (g, blocks) in s.blocks.iter().enumerate() {
            for &(_, b) in blocks.iter().rev() {
                self.unref(g, b);
            }
        }
    }

    fn reset(&mut self) {
        for p in &mut self.groups {
            p.blocks.clear();
        }
        self.seqs.iter_mut().for_each(|s| *s = None);
        self.lru.clear();
        self.idents.clear();
    }

    /// Bytes of distinct kept tokens: per block, the positions inside some
    /// holder's kept span.
    fn stored_exact(&self) -> u64 {
        let mut total = self.seqs.iter().flatten().count() as u64 * self.state;
        for (g, p) in self.groups.iter().enumerate() {
            let mut union: BTreeMap<usize, u64> = BTreeMap::new();
            for s in self.seqs.iter().flatten() {
                let start = u64::from(s.tokens - Self::kept(p.window, s.tokens));
                for &(l, b) in &s.blocks[g] {
                    let mut mask = 0u64;
                    for pos in l * self.bs..((l + 1) * self.bs).min(u64::from(s.tokens)) {
                        if pos >= start {
                            mask |= 1 << (pos - l * self.bs);
                        }
                    }
                    *union.entry(b).or_default() |= mask;
                }
            }
            total += union
                .values()
                .map(|m| u64::from(m.count_ones()))
                .sum::<u64>()
                * p.bpt;
        }
        total
    }
}

#[derive(Clone, Debug)]
enum Op {
    Admit {
        id: SeqId,
        tokens: u32,
        extra: u32,
        content: Option<Content>,
    },
    Grow {
        id: SeqId,
        n: u32,
    },
    Fork {
        parent: SeqId,
        child: SeqId,
    },
    Release {
        id: SeqId,
    },
    Reset,
}

fn content() -> impl Strategy<Value = Option<Content>> {
    prop::option::weighted(
        0.8,
        (0u64..3, 0u32..60, prop_oneof![0u32..60, Just(u32::MAX)]).prop_map(
            |(key, reusable, lineage)| Content {
                key,
                reusable,
                lineage,
            },
        ),
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..10, 0u32..50, 0u32..30, content()).prop_map(|(id, tokens, extra, content)| {
            Op::Admit { id, tokens, extra, content }
        }),
        6 => (0u32..10, 0u32..20).prop_map(|(id, n)| Op::Grow { id, n }),
        2 => (0u32..10, 0u32..10).prop_map(|(parent, child)| Op::Fork { parent, child }),
        3 => (0u32..10).prop_map(|id| Op::Release { id }),
        1 => Just(Op::Reset),
    ]
}

/// A layout of the property test and whether prefix caching is on (only
/// without windows, as the scenario loader guarantees).
fn setup() -> impl Strategy<Value = (KvLayout, bool)> {
    // All, a window of 1-39 tokens, or a chunk of 1-4 blocks.
    let span = || {
        prop_oneof![
            Just(None),
            (1u32..40).prop_map(|w| Some(Span::Window(w))),
            (1u32..5).prop_map(|c| Some(Span::Chunk(c))),
        ]
    };
    (
        1u32..9,
        1u64..4,
        span(),
        0u64..4,
        span(),
        0u64..3,
        any::<bool>(),
    )
        .prop_map(|(bs, b0, s0, b1, s1, state, prefix)| {
            // Half the cases cache prefixes, which drops the windows.
            let (s0, s1) = if prefix { (None, None) } else { (s0, s1) };
            // Chunks are whole blocks.
            let span = |s: Option<Span>| match s {
                None => Span::All,
                Some(Span::Chunk(c)) => Span::Chunk(c * bs),
                Some(s) => s,
            };
            // Recurrent state only without prefix caching, as the loader
            // requires.
            let state = if prefix { 0 } else { state * 1536 };
            let l = spans(bs, b0 * 1024, span(s0), b1 * 1024, span(s1), state);
            (l, prefix)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random admit/grow/fork/release/reset, with prefix content, hybrid
    /// layouts, windows, chunks and recurrent state, against the per-block
    /// model.
    #[test]
    fn matches_block_model(
        (l, prefix) in setup(),
        units in 0u64..200,
        ops in prop::collection::vec(op(), 1..100),
    ) {
        // Up to ~3 MiB: from nothing to ~60 blocks of the largest kind.
        let budget = units * 8 * 1024 + 777;
        let mut c = PagedCache::new(budget, l, prefix);
        let mut m = Model::new(budget, &l, prefix);
        let windowed = l.has_window();
        for op in ops {
            let before = c.usage();
            let live = |m: &Model, id: SeqId| m.seqs[id as usize].is_some();
            let ok = match op {
                Op::Admit { id, tokens, extra, content } if !live(&m, id) => {
                    let s = SeqInfo { id, tokens, reserve: tokens + extra, content };
                    let fits = Model::new(budget, &l, false).admit(&s).is_some();
                    prop_assert_eq!(c.fits_when_empty(&s), fits);
                    let got = c.admit(&s).ok().map(|a| a.cached_tokens);
                    prop_assert_eq!(got, m.admit(&s));
                    prop_assert_eq!(c.unusable_free_bytes(&s), 0);
                    got.is_some()
                }
                Op::Admit { id, extra: n, .. } | Op::Grow { id, n } if live(&m, id) => {
                    let ok = c.grow(id, n).is_ok();
                    prop_assert_eq!(ok, m.grow(id, n));
                    ok
                }
                Op::Admit { id, .. } | Op::Grow { id, .. } => {
                    let n = match op { Op::Grow { n, .. } => n, _ => 0 };
                    let s = seq(id, n, n);
                    let got = c.admit(&s).ok().map(|a| a.cached_tokens);
                    prop_assert_eq!(got, m.admit(&s));
                    got.is_some()
                }
                Op::Fork { parent, child } if live(&m, parent) && !live(&m, child) => {
                    let ok = c.fork(parent, child).is_ok();
                    prop_assert_eq!(ok, m.fork(parent, child));
                    ok
                }
                Op::Fork { .. } => true,
                Op::Release { id } if live(&m, id) => {
                    c.release(id);
                    m.release(id);
                    true
                }
                Op::Release { .. } => true,
                Op::Reset => {
                    c.reset();
                    m.reset();
                    prop_assert_eq!(c.usage().cached, 0);
                    true
                }
            };
            let u = c.usage();
            if !ok {
                prop_assert_eq!(u, before, "NoRoom changed the counters");
            }
            c.check_invariants();
            prop_assert_eq!(u.budget, m.budget);
            prop_assert_eq!(u.allocated, m.allocated());
            prop_assert_eq!(u.cached, m.cached());
            prop_assert_eq!(u.allocated + u.free, u.budget);
            prop_assert!(u.cached <= u.free && u.stored <= u.allocated);
            let exact = m.stored_exact();
            if windowed {
                // A shared block at a window's front counts whole.
                prop_assert!(exact <= u.stored, "{} < {}", u.stored, exact);
            } else {
                prop_assert_eq!(u.stored, exact);
            }
            // Identities published: the same set as the model's.
            if let Some(px) = &c.prefix {
                let got: Vec<_> = px.published().into_iter().map(|(k, _)| k).collect();
                let want: Vec<_> = m.idents.keys().copied().collect();
                prop_assert_eq!(got, want);
            }
            for id in 0..10 {
                match &m.seqs[id as usize] {
                    Some(s) => {
                        let held: u64 = m.state + m.groups.iter().enumerate()
                            .map(|(g, p)| (s.blocks[g].len() as u64 + s.spare[g]) * p.bb)
                            .sum::<u64>();
                        prop_assert_eq!(c.held_bytes(id), held);
                        prop_assert_eq!(c.attended_bytes(id), l.attended_bytes(s.tokens));
                    }
                    None => prop_assert_eq!(c.blocks_of(id), None),
                }
            }
        }
        // Releasing everything returns every byte (cached blocks stay free).
        for id in 0..10 {
            if m.seqs[id as usize].is_some() {
                c.release(id);
            }
        }
        let u = c.usage();
        prop_assert_eq!((u.allocated, u.stored), (0, 0));
        prop_assert_eq!(u.free, u.budget);
        c.check_invariants();
    }
}

proptest! {
    /// Deferred growth ends where growth one token at a time does: a cache
    /// charged and released step by step through `defer` (with the blocks
    /// each sequence's spans gain and lose) and settled in one go per
    /// sequence holds exactly what a cache grown token by token holds, in
    /// every group of every kind `defer` covers.
    #[test]
    fn deferred_growth_settles_to_token_by_token_growth(
        bs in 1u32..20,
        w0 in proptest::option::of(1u32..70),
        w1 in proptest::option::of(1u32..70),
        state in 0u64..3000,
        starts in prop::collection::vec(1u32..200, 1..6),
        steps in 1u32..150,
    ) {
        let span = |w: Option<u32>| w.map_or(Span::All, Span::Window);
        let layout = spans(bs, 256, span(w0), 512, span(w1), state);
        let mut stepped = PagedCache::new(u64::MAX / 4, layout, false);
        prop_assert!(stepped.defers());
        for (id, &t) in starts.iter().enumerate() {
            prop_assert!(stepped.admit(&seq(id as SeqId, t, t)).is_ok());
        }
        let mut deferred = stepped.clone();
        let bs = u64::from(bs);
        for step in 0..steps {
            let (mut mapped, mut dropped) = (0, 0);
            for &t0 in &starts {
                let t0 = t0 + step;
                for p in &deferred.groups[..deferred.ngroups] {
                    let ((f0, e0), (f1, e1)) = (p.span(bs, t0), p.span(bs, t0 + 1));
                    mapped += (e1 - e0) * p.block_bytes;
                    dropped += (f1 - f0) * p.block_bytes;
                }
            }
            prop_assert!(deferred.defer(mapped, dropped));
            for id in 0..starts.len() {
                prop_assert!(stepped.grow(id as SeqId, 1).is_ok());
            }
            prop_assert_eq!(deferred.allocated, stepped.allocated);
        }
        for id in 0..starts.len() {
            deferred.settle(id as SeqId, steps);
            let id = id as SeqId;
            prop_assert_eq!(deferred.held_bytes(id), stepped.held_bytes(id));
            prop_assert_eq!(deferred.blocks_of(id), stepped.blocks_of(id));
            prop_assert_eq!(deferred.growth(id), stepped.growth(id));
        }
        prop_assert_eq!(deferred.deferred, 0);
        prop_assert_eq!(deferred.usage(), stepped.usage());
        deferred.check_invariants();
    }
}
