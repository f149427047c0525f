//! Paged placement: vLLM's PagedAttention (Kwon et al., SOSP 2023).
//!
//! The KV budget is cut into `num_blocks = floor(budget / (block_size * bytes
//! per token))` blocks of `block_size` tokens. A sequence holds the blocks that
//! cover its kept tokens, allocated on demand as it crosses block boundaries, so
//! the only waste is the unfilled tail of its last block (internal
//! fragmentation) and there is no external fragmentation: any free block serves
//! any sequence.
//!
//! Under a sliding window of `W` tokens only positions `[tokens - W, tokens)`
//! are kept; blocks wholly before the window are freed as the sequence grows,
//! so a sequence never holds more than `ceil(W / block_size) + 1` blocks (the
//! window straddles one extra block when it does not start on a boundary).
//!
//! Quantized `kv_dtype`s need nothing here: `bytes_per_token` already includes
//! the element size and the scales.
//!
//! Blocks are only counted for now. Per-sequence state is a `Vec` indexed by
//! [`SeqId`] whose entries can later carry a block table (the logical blocks
//! `[floor(start / bs), floor(start / bs) + held)` map one to one onto physical
//! ids), and [`BlockPool`] is the one place that hands out and takes back
//! blocks, where a free list with reference counts (prefix caching) would go.
//!
//! Complexity: every operation is O(1); the block count of a sequence is a
//! closed form of its length, never a loop over tokens or blocks.

use super::{Admitted, KvCache, KvLayout, MemoryUsage, NoRoom, SeqId, SeqInfo};

/// The physical blocks: how many exist and how many are held.
///
/// Counting is enough while blocks are interchangeable; prefix caching will
/// turn this into a free list of block ids with reference counts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct BlockPool {
    /// Blocks in the budget.
    total: u64,
    /// Blocks held by live sequences.
    used: u64,
}

impl BlockPool {
    /// Blocks not held by anyone.
    fn free(&self) -> u64 {
        self.total - self.used
    }

    /// Moves a sequence from holding `from` blocks to holding `to`: takes or
    /// returns the difference. Fails, changing nothing, if too few are free.
    fn resize(&mut self, from: u64, to: u64) -> Result<(), NoRoom> {
        if to > from {
            if to - from > self.free() {
                return Err(NoRoom);
            }
            self.used += to - from;
        } else {
            self.used -= from - to;
        }
        Ok(())
    }
}

/// What a live sequence holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct SeqState {
    /// Tokens of the sequence so far (all of them, not just the window).
    tokens: u32,
    /// Tokens of capacity promised at admission (`>= tokens` then).
    reserve: u32,
    /// Blocks held now.
    blocks: u64,
}

/// Fixed-size blocks allocated on demand, optionally keeping only a sliding
/// window of the most recent tokens.
#[derive(Clone, Debug)]
pub struct PagedCache {
    /// Geometry: bytes per token, window, block size.
    layout: KvLayout,
    /// `layout.block_size` as a `u64`, at least 1.
    block_size: u64,
    /// Bytes of one block.
    block_bytes: u64,
    /// The blocks of the budget.
    pool: BlockPool,
    /// Per-sequence state, indexed by `SeqId`; `None` for dead slots.
    seqs: Vec<Option<SeqState>>,
    /// Sum of kept tokens (`min(tokens, window)`) over live sequences.
    stored_tokens: u64,
}

impl PagedCache {
    /// A cache over `budget_bytes` of KV memory with `layout`: `floor(budget /
    /// (block_size * bytes_per_token))` blocks (none if a block would have zero
    /// bytes, which no real model has).
    pub fn new(budget_bytes: u64, layout: KvLayout, _prefix_caching: bool) -> Self {
        debug_assert!(layout.block_size > 0, "block size must be positive");
        let block_size = u64::from(layout.block_size.max(1));
        let block_bytes = block_size.saturating_mul(layout.bytes_per_token());
        let total = budget_bytes.checked_div(block_bytes).unwrap_or(0);
        PagedCache {
            layout,
            block_size,
            block_bytes,
            pool: BlockPool { total, used: 0 },
            seqs: Vec::new(),
            stored_tokens: 0,
        }
    }

    /// Blocks in the budget.
    pub fn total_blocks(&self) -> u64 {
        self.pool.total
    }

    /// Blocks not held by any sequence.
    pub fn free_blocks(&self) -> u64 {
        self.pool.free()
    }

    /// Blocks a live sequence holds, or `None` if it is not live.
    pub fn blocks_of(&self, seq: SeqId) -> Option<u64> {
        self.live(seq).map(|s| s.blocks)
    }

    /// The state of `seq` if it is live.
    fn live(&self, seq: SeqId) -> Option<&SeqState> {
        self.seqs.get(seq as usize).and_then(Option::as_ref)
    }

    /// Tokens a sequence of `tokens` tokens keeps: all, or the window.
    fn kept(&self, tokens: u32) -> u64 {
        u64::from(self.layout.groups[0].kept_tokens(tokens))
    }

    /// Blocks a sequence of `tokens` tokens needs now: those covering its kept
    /// span `[tokens - kept, tokens)`, i.e. `ceil(tokens / bs) - floor(start / bs)`.
    #[cfg(test)]
    fn blocks_at(&self, tokens: u32) -> u64 {
        let (t, bs) = (u64::from(tokens), self.block_size);
        let start = t - self.kept(tokens);
        if start == t {
            0
        } else {
            t.div_ceil(bs) - start / bs
        }
    }

    /// Blocks a sequence of `tokens` tokens must hold so that it can grow to
    /// `reserve` tokens without allocating (see [`peak_blocks`]).
    fn blocks_for(&self, tokens: u32, reserve: u32) -> u64 {
        peak_blocks(
            self.block_size,
            self.layout.groups[0].window,
            tokens,
            tokens.max(reserve),
        )
    }
}

/// The most blocks of `bs` tokens a sequence needs at any length in
/// `[from, to]` (`from <= to`), keeping only the last `window` tokens if set.
///
/// Without a window that is simply the blocks of the longest length. With a
/// window `W` the count rises until `W` and then oscillates with period
/// `bs` (the window straddles one more block at some offsets), so the
/// maximum is found in closed form instead of by scanning lengths; it never
/// exceeds what the window needs, however large the reservation.
pub fn peak_blocks(bs: u64, window: Option<u32>, from: u32, to: u32) -> u64 {
    let (a, b) = (u64::from(from), u64::from(to.max(from)));
    let w = match window {
        None => return b.div_ceil(bs),
        Some(0) => return 0,
        Some(w) => u64::from(w),
    };
    if b <= w {
        // Nothing falls out of the window yet: blocks grow with length.
        return b.div_ceil(bs);
    }
    // Past the window, a length t >= W holds ceil(W / bs) blocks plus one
    // when t mod bs lies in [1, r - 1], where r = W mod bs, or bs if W is a
    // multiple of bs: then the kept span starts and ends inside blocks.
    // (For t <= W the count is at most ceil(W / bs), so only t > W can add
    // the extra block.)
    let base = w.div_ceil(bs);
    let r = match w % bs {
        0 => bs,
        r => r,
    };
    if r < 2 {
        return base;
    }
    let c = a.max(w + 1);
    let straddles = if b - c + 1 >= bs {
        // The range covers every residue.
        true
    } else {
        let (x, y) = (c % bs, b % bs);
        if x <= y {
            x < r && y >= 1
        } else {
            // Wraps: residues [x, bs) and [0, y].
            x < r || y >= 1
        }
    };
    base + u64::from(straddles)
}

impl KvCache for PagedCache {
    fn admit(&mut self, seq: &SeqInfo) -> Result<Admitted, NoRoom> {
        if self.live(seq.id).is_some() {
            debug_assert!(false, "admitting live sequence {}", seq.id);
            return Err(NoRoom);
        }
        let blocks = self.blocks_for(seq.tokens, seq.reserve);
        self.pool.resize(0, blocks)?;
        let i = seq.id as usize;
        if i >= self.seqs.len() {
            self.seqs.resize(i + 1, None);
        }
        self.seqs[i] = Some(SeqState {
            tokens: seq.tokens,
            reserve: seq.reserve,
            blocks,
        });
        self.stored_tokens += self.kept(seq.tokens);
        Ok(Admitted::default())
    }

    fn fork(&mut self, _parent: SeqId, _child: SeqId) -> Result<(), NoRoom> {
        todo!("interim: being rewritten")
    }

    fn held_bytes(&self, seq: SeqId) -> u64 {
        self.live(seq).map_or(0, |s| s.blocks * self.block_bytes)
    }

    fn unusable_free_bytes(&self, _seq: &SeqInfo) -> u64 {
        0
    }

    fn grow(&mut self, seq: SeqId, n: u32) -> Result<(), NoRoom> {
        let Some(&s) = self.live(seq) else {
            debug_assert!(false, "growing dead sequence {seq}");
            return Err(NoRoom);
        };
        let tokens = s.tokens.checked_add(n).ok_or(NoRoom)?;
        // May be fewer than now: blocks that slid out of the window are freed.
        let blocks = self.blocks_for(tokens, s.reserve);
        self.pool.resize(s.blocks, blocks)?;
        self.stored_tokens += self.kept(tokens) - self.kept(s.tokens);
        self.seqs[seq as usize] = Some(SeqState {
            tokens,
            blocks,
            ..s
        });
        Ok(())
    }

    fn release(&mut self, seq: SeqId) {
        let Some(s) = self.seqs.get_mut(seq as usize).and_then(Option::take) else {
            debug_assert!(false, "releasing dead sequence {seq}");
            return;
        };
        self.pool.used -= s.blocks;
        self.stored_tokens -= self.kept(s.tokens);
    }

    fn reset(&mut self) {
        // `SeqState` is `Copy`, so clearing is O(1); the capacity is kept.
        self.seqs.clear();
        self.pool.used = 0;
        self.stored_tokens = 0;
    }

    fn attended_bytes(&self, seq: SeqId) -> u64 {
        match self.live(seq) {
            Some(s) => self.layout.attended_bytes(s.tokens),
            None => {
                debug_assert!(false, "attended bytes of dead sequence {seq}");
                0
            }
        }
    }

    fn fits_when_empty(&self, seq: &SeqInfo) -> bool {
        self.blocks_for(seq.tokens, seq.reserve) <= self.pool.total
    }

    fn usage(&self) -> MemoryUsage {
        let budget = self.pool.total * self.block_bytes;
        let allocated = self.pool.used * self.block_bytes;
        MemoryUsage::new(
            budget,
            allocated,
            self.stored_tokens * self.layout.bytes_per_token(),
        )
    }

    fn layout(&self) -> &KvLayout {
        &self.layout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dtype;
    use proptest::prelude::*;

    /// Bytes per token of the tests (Llama-3-8B-like, bf16).
    const BPT: u64 = 131_072;

    fn layout(block_size: u32, window: Option<u32>, bpt: u64) -> KvLayout {
        KvLayout {
            bytes_per_token: bpt,
            window,
            block_size,
            kv_dtype: Dtype::Bf16,
        }
    }

    /// A cache of exactly `blocks` blocks (plus stray bytes that must not count).
    fn cache(blocks: u64, block_size: u32, window: Option<u32>) -> PagedCache {
        let bytes = blocks * u64::from(block_size) * BPT;
        PagedCache::new(
            bytes + u64::from(block_size) * BPT - 1,
            layout(block_size, window, BPT),
        )
    }

    fn seq(id: SeqId, tokens: u32, reserve: u32) -> SeqInfo {
        SeqInfo {
            id,
            tokens,
            reserve,
        }
    }

    #[test]
    fn seventeen_tokens_take_two_blocks_of_sixteen() {
        let mut c = cache(100, 16, None);
        c.admit(&seq(0, 17, 17)).unwrap();
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
        assert_eq!(c.free_blocks(), 97);
        c.release(0);
        assert_eq!(c.usage().allocated, 0);
        assert_eq!(c.free_blocks(), 100);
    }

    #[test]
    fn budget_is_whole_blocks() {
        let c = cache(10, 16, None);
        let u = c.usage();
        assert_eq!(u.budget, 10 * 16 * BPT);
        assert_eq!((u.allocated, u.stored, u.free), (0, 0, u.budget));
        assert!(c.fits_when_empty(&seq(0, 160, 160)));
        assert!(!c.fits_when_empty(&seq(0, 161, 161)));
        assert!(
            !c.fits_when_empty(&seq(0, 1, 161)),
            "the reservation counts"
        );
        let none = PagedCache::new(100, layout(16, None, 0));
        assert_eq!(none.usage(), MemoryUsage::default());
    }

    #[test]
    fn reservation_is_held_up_front_and_growth_inside_it_is_free() {
        let mut c = cache(4, 16, None);
        c.admit(&seq(0, 10, 40)).unwrap();
        assert_eq!(c.blocks_of(0), Some(3));
        assert_eq!(c.usage().stored, 10 * BPT);
        c.grow(0, 30).unwrap();
        assert_eq!(c.blocks_of(0), Some(3));
        assert_eq!(c.admit(&seq(1, 17, 17)), Err(NoRoom));
        c.admit(&seq(1, 16, 16)).unwrap();
        let before = c.usage();
        assert_eq!(before.free, 0);
        assert_eq!(c.grow(0, 9), Err(NoRoom));
        assert_eq!(c.usage(), before);
        assert_eq!(c.attended_bytes(0), 40 * BPT);
        c.grow(0, 8).unwrap();
        assert_eq!(c.blocks_of(0), Some(3));
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
        // Growing in big chunks lands on the same counts.
        let mut d = cache(1000, bs, Some(w));
        d.admit(&seq(0, 5000, 5000)).unwrap();
        assert_eq!(d.usage().allocated, cap);
        d.grow(0, 15_000).unwrap();
        assert_eq!(d.usage().allocated, 256 * 16 * BPT);
        assert_eq!(d.attended_bytes(0), 4096 * BPT);
    }

    #[test]
    fn reservation_under_a_window_is_capped_by_the_window() {
        let mut c = cache(1000, 16, Some(4096));
        c.admit(&seq(0, 100, 100_000)).unwrap();
        assert_eq!(c.blocks_of(0), Some(257));
        // Reserving less than the window: just the blocks of the reservation.
        c.admit(&seq(1, 100, 1000)).unwrap();
        assert_eq!(c.blocks_of(1), Some(63));
        // Reservation growth never allocates; past it, the window does.
        c.grow(0, 99_900).unwrap();
        assert_eq!(c.blocks_of(0), Some(256), "100,000 is a block boundary");
        assert!(c.fits_when_empty(&seq(2, 1_000_000, 1_000_000)));
    }

    #[test]
    fn window_blocks_closed_form_matches_a_scan() {
        for bs in 1..=9u32 {
            for w in 0..=30u32 {
                let c = cache(0, bs, Some(w));
                for a in 0..=70u32 {
                    for b in a..=a + 2 * bs + 3 {
                        let scan = (a..=b).map(|t| c.blocks_at(t)).max().unwrap();
                        assert_eq!(c.blocks_for(a, b), scan, "bs {bs} w {w} [{a}, {b}]");
                    }
                }
                // Never above the window's bound.
                let bound = u64::from(w.div_ceil(bs)) + 1;
                assert!(c.blocks_for(0, 10_000) <= bound);
            }
        }
    }

    #[test]
    fn quantized_dtypes_only_change_bytes_per_token() {
        // int8 with group scales: 512 vectors x 132 bytes per token.
        let bpt = 512 * 132;
        let mut c = PagedCache::new(10 * 16 * bpt, layout(16, None, bpt));
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
        assert_eq!(c.free_blocks(), 8);
        assert_eq!(c.usage().allocated, 0);
        assert_eq!(c.usage().stored, 0);
        assert_eq!(c.blocks_of(5), None);
        c.admit(&seq(5, 32, 32)).unwrap();
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "growing dead sequence")]
    fn growing_a_dead_id_is_a_bug() {
        let _ = cache(8, 4, None).grow(3, 1);
    }

    /// Reference model: block counts by brute force over every length.
    fn model_blocks(bs: u32, window: Option<u32>, tokens: u32, reserve: u32) -> u64 {
        (tokens..=tokens.max(reserve))
            .map(|t| {
                let start = window.map_or(0, |w| t.saturating_sub(w));
                // Blocks [floor(start / bs), ceil(t / bs)) cover [start, t).
                (start / bs..t.div_ceil(bs)).count() as u64
            })
            .max()
            .unwrap()
    }

    #[derive(Clone, Debug)]
    enum Op {
        Admit { id: SeqId, tokens: u32, extra: u32 },
        Grow { id: SeqId, n: u32 },
        Release { id: SeqId },
        Reset,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u32..10, 0u32..60, 0u32..60)
                .prop_map(|(id, tokens, extra)| Op::Admit { id, tokens, extra }),
            6 => (0u32..10, 0u32..20).prop_map(|(id, n)| Op::Grow { id, n }),
            3 => (0u32..10).prop_map(|id| Op::Release { id }),
            1 => Just(Op::Reset),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Random admit/grow/release/reset against plain per-sequence counts.
        #[test]
        fn matches_counting_model(
            total in 0u64..40,
            bs in 1u32..9,
            window in prop::option::of(1u32..40),
            ops in prop::collection::vec(op(), 1..120),
        ) {
            let mut c = cache(total, bs, window);
            // (tokens, reserve) per live sequence.
            let mut m: Vec<Option<(u32, u32)>> = vec![None; 10];
            let blocks = |m: &Vec<Option<(u32, u32)>>| -> u64 {
                m.iter().flatten().map(|&(t, r)| model_blocks(bs, window, t, r)).sum()
            };
            let kept = |t: u32| u64::from(window.map_or(t, |w| t.min(w)));
            for op in ops {
                let before = c.usage();
                let id = match op {
                    Op::Admit { id, .. } | Op::Grow { id, .. } | Op::Release { id } => id,
                    Op::Reset => 0,
                };
                let mut next = m.clone();
                let ok = match (op, m[id as usize]) {
                    (Op::Admit { tokens, extra, .. }, None) => {
                        let s = seq(id, tokens, tokens + extra);
                        prop_assert_eq!(
                            c.fits_when_empty(&s),
                            model_blocks(bs, window, tokens, tokens + extra) <= total
                        );
                        next[id as usize] = Some((tokens, tokens + extra));
                        c.admit(&s).is_ok()
                    }
                    (Op::Grow { n, .. }, None) => {
                        next[id as usize] = Some((n, n));
                        c.admit(&seq(id, n, n)).is_ok()
                    }
                    (Op::Admit { extra: n, .. } | Op::Grow { n, .. }, Some((t, r))) => {
                        next[id as usize] = Some((t + n, r));
                        c.grow(id, n).is_ok()
                    }
                    (Op::Release { .. }, Some((t, r))) => {
                        next[id as usize] = None;
                        c.release(id);
                        let freed = model_blocks(bs, window, t, r) * u64::from(bs) * BPT;
                        prop_assert_eq!(c.usage().free, before.free + freed);
                        true
                    }
                    (Op::Release { .. }, None) => true,
                    (Op::Reset, _) => {
                        next.iter_mut().for_each(|s| *s = None);
                        c.reset();
                        true
                    }
                };
                // The model accepts exactly when the new total fits.
                prop_assert_eq!(ok, blocks(&next) <= total);
                if ok {
                    m = next;
                } else {
                    prop_assert_eq!(c.usage(), before, "NoRoom changed the counters");
                }
                let u = c.usage();
                let block = u64::from(bs) * BPT;
                prop_assert_eq!(u.budget, total * block);
                prop_assert_eq!(u.allocated, blocks(&m) * block);
                let stored: u64 = m.iter().flatten().map(|&(t, _)| kept(t)).sum();
                prop_assert_eq!(u.stored, stored * BPT);
                prop_assert_eq!(u.allocated + u.free, u.budget);
                prop_assert!(u.allocated <= u.budget && u.stored <= u.allocated);
                for (i, s) in m.iter().enumerate() {
                    let i = i as SeqId;
                    prop_assert_eq!(c.blocks_of(i), s.map(|(t, r)| model_blocks(bs, window, t, r)));
                    if let Some((t, _)) = *s {
                        prop_assert_eq!(c.attended_bytes(i), kept(t) * BPT);
                    }
                }
            }
        }
    }
}
