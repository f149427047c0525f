//! Paged placement: vLLM's PagedAttention (Kwon et al., SOSP 2023), with
//! hybrid layer groups, copy-on-write forks and automatic prefix caching.
//!
//! # Blocks and groups
//!
//! Each layer group of the [`KvLayout`] has its own blocks of `block_size`
//! tokens (`block_size * bytes_per_token` bytes of that group's layers). A
//! sequence holds, per group, the blocks that cover the tokens the group keeps:
//! all of them, or the last `window` (blocks wholly before the window are freed
//! as the sequence grows, so a windowed group never holds more than
//! `ceil(W / block_size) + 1` blocks). Blocks of every group come out of one
//! pool of bytes, the KV budget, so there is no fragmentation between groups
//! and none within one: any free byte serves any block. The only waste is the
//! unfilled tail of a last block (internal fragmentation) and blocks reserved
//! ahead of the tokens (reserve admission).
//!
//! Two non-empty groups with the same window keep the same tokens, so they are
//! merged into one *physical* group whose blocks span all their layers: the
//! byte counts are identical and every block operation happens once, not twice.
//! A uniform model is one physical group; gemma-2 under its own window is two.
//!
//! The usable budget is the KV budget rounded down to a multiple of the block
//! bytes (one physical group) or of the gcd of both groups' block bytes (two):
//! every allocation is a multiple of that, so the remainder could never be used.
//!
//! # Block tables and sharing
//!
//! Blocks have ids (dense per physical group, recycled through a free stack)
//! and reference counts; a sequence has a block table per group: logical
//! blocks `[first, first + len)` (windows drop from the front), plus a count of
//! *spare* blocks held ahead of its tokens for its reservation. Ids are given
//! lazily: a sequence that shares nothing holds anonymous blocks, a mere count
//! (the counting design of the first version, and as fast), and its table is
//! *named* (ids in a `VecDeque`, one reference each) only when something must
//! tell its blocks apart: prefix caching, from admission on, or a fork, which
//! names the parent's blocks once. Bytes, not ids, are what is scarce: ids are
//! labels handed out on demand, and every held block, named or not, is counted
//! in `allocated`.
//!
//! [`KvCache::fork`] copies the parent's table into the child, sharing its
//! full blocks (reference count + 1) and copying the partial last block, if
//! any, into a fresh one: the copy-on-write that vLLM performs at the first
//! append, done at fork time. Only full blocks are ever shared, so appends
//! always write into a private block.
//!
//! # Prefix caching
//!
//! With prefix caching (which the scenario loader only allows without windows,
//! so there is one physical group), full blocks whose index lies within their
//! content's `lineage` are published under `(content key, block index)` when
//! they fill, the first block to compute an identity keeping it. Admission looks
//! up the leading identities of `seq.content` and shares the hits. Published
//! blocks whose last reference goes stay cached: they count as free but keep
//! their identity in a least-recently-used list, and are evicted (oldest first)
//! only when free blocks run out. See [`prefix`] for the index.
//!
//! A releasing sequence appends its blocks to that list last block first, as
//! vLLM does, so under pressure a prefix loses its tail before its head (a
//! lookup stops at the first miss, so a lost head would strand the rest).
//!
//! # Counters
//!
//! `allocated` is the bytes of every block sequences hold (anonymous or
//! referenced, shared ones once) and of their spare blocks; `cached` the bytes
//! of unreferenced cached blocks (inside `free`). `stored` counts every
//! distinct block's kept tokens once: per group it is `Σ kept tokens of live
//! sequences − block_size × (extra references to shared blocks)`, exact
//! without windows. Under a window, a shared block at the front of a holder's
//! window counts whole even though some of its tokens slid out of that window
//! (tracking the union of every holder's window per block would cost work per
//! token); each holder's correction is refreshed on its own steps, so `stored`
//! over-counts by less than one block per such holder and never exceeds
//! `allocated`.
//!
//! # Complexity
//!
//! Each sequence caches the length up to which it can grow with no block work
//! (no block to map, drop or publish), so `grow` by one token is a comparison
//! and counter updates; past it, closed-form arithmetic plus O(1) per block
//! mapped or dropped. Without sharing, `admit` and `release` are O(1) whatever
//! the length; with named tables they are linear in the blocks they take, hit
//! or free (O(1) each, never per token), and `fork` in the parent's blocks.
//! `usage`, `held_bytes` and `attended_bytes` are O(1). Steady state allocates
//! nothing: tables keep their capacity across the slot's sequences.

mod prefix;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use super::{Admitted, Content, KvCache, KvLayout, MemoryUsage, NoRoom, SeqId, SeqInfo};
use prefix::PrefixIndex;

/// Index of a physical block within its physical group.
type BlockId = u32;

/// One physical group: layer groups that keep the same tokens, and its blocks.
#[derive(Clone, Debug)]
struct Group {
    /// KV bytes per token of the group's layers.
    bpt: u64,
    /// Tokens kept (`None`: all).
    window: Option<u32>,
    /// Bytes of one block: `block_size * bpt`.
    block_bytes: u64,
    /// Which layout groups this physical group stands for.
    members: [bool; 2],
    /// Reference count per block id (0: free or cached).
    refs: Vec<u32>,
    /// Ids with no reference that are not cached, for reuse.
    free_ids: Vec<BlockId>,
    /// `Σ max(0, refs - 1)` over blocks: references beyond the first.
    extra_refs: u64,
    /// `Σ kept tokens` over live sequences, shared tokens counted per holder.
    kept_tokens: u64,
    /// `Σ slide` over live sequences (see [`Table::slide`]).
    shared_slide: u64,
}

impl Group {
    /// Tokens of a `t`-token sequence this group keeps.
    #[inline]
    fn kept(&self, t: u32) -> u64 {
        u64::from(match self.window {
            Some(w) => t.min(w),
            None => t,
        })
    }

    /// Logical blocks `[front, end)` covering the kept span of a `t`-token
    /// sequence (`front == end`: nothing kept).
    #[inline]
    fn span(&self, bs: u64, t: u32) -> (u64, u64) {
        let kept = self.kept(t);
        let t = u64::from(t);
        let end = t.div_ceil(bs);
        if kept == 0 {
            (end, end)
        } else {
            ((t - kept) / bs, end)
        }
    }

    /// Blocks to hold at `tokens` so that growing to `reserve` needs none more.
    #[inline]
    fn target(&self, bs: u64, tokens: u32, reserve: u32) -> u64 {
        peak_blocks(bs, self.window, tokens, tokens.max(reserve))
    }

    /// A block id with no reference (recycled or fresh), now referenced once.
    fn take_id(&mut self) -> BlockId {
        let id = match self.free_ids.pop() {
            Some(id) => id,
            None => {
                self.refs.push(0);
                BlockId::try_from(self.refs.len() - 1).expect("block id overflow")
            }
        };
        invariant_eq!(self.refs[id as usize], 0);
        self.refs[id as usize] = 1;
        id
    }

    /// Adds a reference to a referenced block (sharing it).
    #[inline]
    fn share(&mut self, id: BlockId) {
        let r = &mut self.refs[id as usize];
        invariant!(*r > 0, "sharing unreferenced block {id}");
        *r += 1;
        self.extra_refs += 1;
    }

    /// Tokens stored in this group's distinct blocks (see the module docs).
    fn stored_tokens(&self, bs: u64) -> u64 {
        self.kept_tokens + self.shared_slide - bs * self.extra_refs
    }
}

/// What a sequence holds in one physical group.
///
/// Block ids are given lazily: a sequence that shares nothing (no prefix
/// caching, never forked) holds *anonymous* blocks, a mere count, so that
/// admitting, growing and releasing it is O(1) whatever its length, as cheap
/// as counting blocks. The table is *named* (every mapped block gets an id and
/// a reference) when something must tell its blocks apart: prefix caching
/// (from admission on) or a fork (the parent's blocks are named then, once).
#[derive(Clone, Debug, Default)]
struct Table {
    /// Logical index of the first mapped block: the first of the kept span.
    first: u64,
    /// Mapped blocks: logical blocks `[first, first + len)`.
    len: u64,
    /// Whether the mapped blocks have ids (in `ids`) and references.
    named: bool,
    /// Ids of the mapped blocks, in logical order, when named (else empty).
    ids: VecDeque<BlockId>,
    /// Blocks held for the reservation that no token uses yet (no ids).
    spare: u64,
    /// This sequence's term of [`Group::shared_slide`]: if its front block is
    /// shared, the tokens of it that slid out of its window (so that the block
    /// counts whole once), else 0. Refreshed when it grows or forks.
    slide: u64,
}

/// A live (or dead, `live == false`) sequence slot.
#[derive(Clone, Debug, Default)]
struct SeqState {
    /// Whether the slot holds a sequence.
    live: bool,
    /// Whether it took part in a fork: its front block may be shared, so its
    /// [`Table::slide`] is refreshed as it grows.
    forked: bool,
    /// Tokens of the sequence so far (all of them, not just the window).
    tokens: u32,
    /// Tokens of capacity promised at admission.
    reserve: u32,
    /// Growing to at most this many tokens needs no block work: no block to
    /// map or drop, no spare to change, none to publish (see
    /// [`PagedCache::limit`]). Makes the per-token path one comparison.
    limit: u64,
    /// Its content identity, for publishing blocks as they fill.
    content: Option<Content>,
    /// Blocks per physical group.
    tables: [Table; 2],
}

/// How one physical group changes when a sequence grows.
#[derive(Copy, Clone, Debug, Default)]
struct Plan {
    /// Blocks leaving the window, taken from the front of the table.
    drop: u64,
    /// Of those, blocks this sequence alone references (freed).
    freed: u64,
    /// New logical blocks appended.
    map: u64,
    /// Spare blocks afterwards.
    spare: u64,
    /// First logical block afterwards.
    first: u64,
}

impl Plan {
    /// Private blocks to allocate (beyond the spares consumed), and spare
    /// blocks to give back; at most one is non-zero.
    fn net(&self, spare_before: u64) -> (u64, u64) {
        let want = self.map + self.spare;
        (
            want.saturating_sub(spare_before),
            spare_before.saturating_sub(want),
        )
    }
}

/// Fixed-size blocks allocated on demand per layer group, optionally keeping
/// only a sliding window, sharing blocks between forks and cached prefixes.
#[derive(Clone, Debug)]
pub struct PagedCache {
    /// Geometry as given: layer groups, windows, block size.
    layout: KvLayout,
    /// `layout.block_size` as a `u64`, at least 1.
    bs: u64,
    /// Physical groups; only the first `ngroups` are used.
    groups: [Group; 2],
    /// Physical groups in use (0 for a layout with no bytes per token).
    ngroups: usize,
    /// Usable bytes: the budget rounded down to whole allocation units.
    budget: u64,
    /// Bytes of mapped and spare blocks held by sequences (shared ones once).
    allocated: u64,
    /// Bytes of unreferenced cached blocks (inside the free bytes).
    cached: u64,
    /// The prefix index, when prefix caching is on (physical group 0 only).
    prefix: Option<PrefixIndex>,
    /// Per-sequence state, indexed by `SeqId`.
    seqs: Vec<SeqState>,
    /// Scratch list of block ids (prefix hits, forked blocks), kept to avoid
    /// allocating per call.
    scratch: Vec<BlockId>,
    /// Blocks charged to `allocated` by [`PagedCache::defer`] that no
    /// sequence's table maps yet (see there).
    deferred: u64,
}

/// Greatest common divisor.
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl PagedCache {
    /// A cache over `budget_bytes` of KV memory with `layout`, sharing cached
    /// prefix blocks if `prefix_caching` (which requires a layout without
    /// windows; with one it is ignored, and debug builds panic).
    pub fn new(budget_bytes: u64, layout: KvLayout, prefix_caching: bool) -> Self {
        invariant!(layout.block_size > 0, "block size must be positive");
        let bs = u64::from(layout.block_size.max(1));
        let empty = Group {
            bpt: 0,
            window: None,
            block_bytes: 0,
            members: [false; 2],
            refs: Vec::new(),
            free_ids: Vec::new(),
            extra_refs: 0,
            kept_tokens: 0,
            shared_slide: 0,
        };
        let mut groups = [empty.clone(), empty];
        let mut ngroups = 0;
        for (i, g) in layout.groups.iter().enumerate() {
            if g.bytes_per_token == 0 {
                continue;
            }
            // Same window as a group already placed: same tokens, same blocks.
            if let Some(p) = groups[..ngroups].iter_mut().find(|p| p.window == g.window) {
                p.bpt += g.bytes_per_token;
                p.members[i] = true;
                continue;
            }
            let p = &mut groups[ngroups];
            p.bpt = g.bytes_per_token;
            p.window = g.window;
            p.members[i] = true;
            ngroups += 1;
        }
        let mut unit = 0;
        for p in &mut groups[..ngroups] {
            p.block_bytes = bs.saturating_mul(p.bpt);
            unit = gcd(unit, p.block_bytes);
        }
        let budget = match unit {
            0 => 0,
            u => budget_bytes / u * u,
        };
        invariant!(
            !(prefix_caching && layout.has_window()),
            "prefix caching needs a layout without windows"
        );
        let prefix =
            (prefix_caching && !layout.has_window() && ngroups == 1).then(PrefixIndex::new);
        PagedCache {
            layout,
            bs,
            groups,
            ngroups,
            budget,
            allocated: 0,
            cached: 0,
            prefix,
            seqs: Vec::new(),
            scratch: Vec::new(),
            deferred: 0,
        }
    }

    /// Whether [`PagedCache::defer`] and [`PagedCache::settle`] apply: one
    /// physical group, no window, no prefix caching, so every table stays
    /// anonymous unless forked and a block is needed exactly when a
    /// sequence's length crosses a multiple of the block size.
    pub fn defers(&self) -> bool {
        self.ngroups == 1 && self.groups[0].window.is_none() && self.prefix.is_none()
    }

    /// Charges `blocks` new blocks to `allocated` without mapping them to a
    /// sequence yet, if they fit in the free bytes; `false` (and no change)
    /// otherwise.
    ///
    /// This is the engine's fast path (see `engine::fast`): when a decode step
    /// grows every running sequence by one token, the blocks that step needs
    /// are those of the sequences whose length is a multiple of the block
    /// size, a count the engine keeps without visiting them. Charging them
    /// here keeps `allocated`, and so admission, exact; each sequence's table
    /// catches up later, in one [`PagedCache::settle`]. Until then the
    /// `stored` counter of [`KvCache::usage`] lags (the engine does not read
    /// it). Only valid when [`PagedCache::defers`].
    pub fn defer(&mut self, blocks: u64) -> bool {
        invariant!(self.defers());
        let bytes = blocks * self.groups[0].block_bytes;
        if bytes > self.budget - self.allocated {
            return false;
        }
        self.allocated += bytes;
        self.deferred += blocks;
        true
    }

    /// Grows `seq` by `n` tokens whose `blocks` new blocks were charged by
    /// [`PagedCache::defer`] earlier: the charge moves to the sequence's table.
    pub fn settle(&mut self, seq: SeqId, n: u32, blocks: u64) {
        invariant!(self.defers() && blocks <= self.deferred);
        self.deferred -= blocks;
        self.allocated -= blocks * self.groups[0].block_bytes;
        let grown = self.grow(seq, n);
        invariant!(grown.is_ok(), "deferred blocks cover the growth");
    }

    /// Blocks a live sequence holds in each layer group of the layout (spare
    /// blocks included; 0 for an empty group), or `None` if it is not live.
    pub fn blocks_of(&self, seq: SeqId) -> Option<[u64; 2]> {
        let s = self.live(seq)?;
        let mut out = [0; 2];
        for (p, t) in self.groups[..self.ngroups].iter().zip(&s.tables) {
            for (o, &m) in out.iter_mut().zip(&p.members) {
                if m {
                    *o = t.len + t.spare;
                }
            }
        }
        Some(out)
    }

    /// Blocks kept for prefix reuse that no live sequence references.
    pub fn cached_blocks(&self) -> u64 {
        self.prefix.as_ref().map_or(0, PrefixIndex::cached)
    }

    /// The state of `seq` if it is live.
    #[inline]
    fn live(&self, seq: SeqId) -> Option<&SeqState> {
        self.seqs.get(seq as usize).filter(|s| s.live)
    }

    /// The most tokens sequence `seq` can grow to without block work: before
    /// a group needs a new block, before a window's start leaves its front
    /// block, before a block fills that must be published; not at all while
    /// a windowed group's spare count may change (a reservation not yet
    /// reached under a window).
    fn limit(&self, seq: SeqId) -> u64 {
        let s = &self.seqs[seq as usize];
        let (bs, t) = (self.bs, u64::from(s.tokens));
        let mut limit = u64::MAX;
        for (p, tab) in self.groups[..self.ngroups].iter().zip(&s.tables) {
            limit = limit.min((tab.first + tab.len) * bs);
            if let Some(w) = p.window {
                if s.tokens < s.reserve {
                    return t;
                }
                if tab.len > 0 {
                    limit = limit.min((tab.first + 1) * bs + u64::from(w) - 1);
                }
            }
        }
        if let (Some(_), Some(c)) = (&self.prefix, s.content) {
            if t / bs < u64::from(c.lineage) / bs {
                limit = limit.min((t / bs + 1) * bs - 1);
            }
        }
        limit
    }

    /// Free bytes no cached block occupies.
    #[inline]
    fn uncached_free(&self) -> u64 {
        self.budget - self.allocated - self.cached
    }

    /// Charges `n` new private blocks of group `g` to `allocated`, evicting
    /// least recently used cached blocks if the uncached free bytes do not
    /// cover them. The caller has checked that `n` blocks fit in the free bytes.
    fn charge(&mut self, g: usize, n: u64) {
        let bytes = n * self.groups[g].block_bytes;
        let short = bytes.saturating_sub(self.uncached_free());
        if short > 0 {
            let p = self
                .prefix
                .as_mut()
                .expect("only cached blocks can be short");
            let b = self.groups[g].block_bytes;
            for _ in 0..short.div_ceil(b) {
                let id = p.evict().expect("free bytes cover the charge");
                self.groups[g].free_ids.push(id);
                self.cached -= b;
            }
        }
        self.allocated += bytes;
    }

    /// Drops one reference to block `id` of group `g`: at the last one the
    /// block becomes cached (if published) or free.
    fn unref(&mut self, g: usize, id: BlockId) {
        let p = &mut self.groups[g];
        let r = &mut p.refs[id as usize];
        invariant!(*r > 0, "freeing unreferenced block {id}");
        *r -= 1;
        if *r > 0 {
            p.extra_refs -= 1;
            return;
        }
        self.allocated -= p.block_bytes;
        match &mut self.prefix {
            Some(px) if g == 0 && px.is_published(id) => {
                px.push_lru(id);
                self.cached += p.block_bytes;
            }
            _ => p.free_ids.push(id),
        }
    }

    /// Maps `n` new private blocks (already charged) at the end of `seq`'s
    /// table in group `g`: ids for a named table, a count for an anonymous one.
    fn map_blocks(&mut self, seq: SeqId, g: usize, n: u64) {
        let p = &mut self.groups[g];
        let t = &mut self.seqs[seq as usize].tables[g];
        t.len += n;
        if t.named {
            for _ in 0..n {
                let id = p.take_id();
                if let Some(px) = self.prefix.as_mut() {
                    px.ensure(id);
                }
                t.ids.push_back(id);
            }
        }
    }

    /// Unmaps the first `n` blocks of `seq`'s table in group `g` (they slid
    /// out of the window), freeing those it alone held.
    fn drop_front(&mut self, seq: SeqId, g: usize, n: u64) {
        let t = &mut self.seqs[seq as usize].tables[g];
        t.len -= n;
        if !t.named {
            self.allocated -= n * self.groups[g].block_bytes;
            return;
        }
        for _ in 0..n {
            let t = &mut self.seqs[seq as usize].tables[g];
            let id = t.ids.pop_front().expect("dropping held blocks");
            self.unref(g, id);
        }
    }

    /// Gives ids to the anonymous blocks of `seq`'s table in group `g`, so
    /// that they can be shared. Their bytes are already held.
    fn name(&mut self, seq: SeqId, g: usize) {
        let p = &mut self.groups[g];
        let t = &mut self.seqs[seq as usize].tables[g];
        if t.named {
            return;
        }
        t.named = true;
        invariant!(t.ids.is_empty());
        for _ in 0..t.len {
            let id = p.take_id();
            if let Some(px) = self.prefix.as_mut() {
                px.ensure(id);
            }
            t.ids.push_back(id);
        }
    }

    /// Recomputes `seq`'s [`Table::slide`] in group `g`.
    fn refresh_slide(&mut self, seq: SeqId, g: usize) {
        let p = &mut self.groups[g];
        let s = &mut self.seqs[seq as usize];
        let t = &mut s.tables[g];
        let slide = match (p.window, t.ids.front()) {
            (Some(w), Some(&id)) if s.forked && p.refs[id as usize] > 1 => {
                (u64::from(s.tokens).saturating_sub(u64::from(w))).saturating_sub(t.first * self.bs)
            }
            _ => 0,
        };
        p.shared_slide = p.shared_slide - t.slide + slide;
        t.slide = slide;
    }

    /// Publishes `seq`'s blocks that are full at `to` tokens but were not at
    /// `from`, within its content's lineage (prefix caching only).
    fn publish(&mut self, seq: SeqId, from: u32, to: u32) {
        let Some(px) = self.prefix.as_mut() else {
            return;
        };
        let s = &self.seqs[seq as usize];
        let Some(c) = s.content else {
            return;
        };
        let bs = self.bs;
        let lo = u64::from(from) / bs;
        let hi = (u64::from(to) / bs).min(u64::from(c.lineage) / bs);
        let t = &s.tables[0];
        invariant!(lo >= hi || t.named, "prefix caching names every table");
        for idx in lo..hi {
            // No window with prefix caching: the table starts at block 0.
            let id = t.ids[(idx - t.first) as usize];
            // A hit or an already-published block is skipped: an identity
            // keeps its first block.
            if !px.is_published(id) {
                px.publish((c.key, idx as u32), id);
            }
        }
    }

    /// How group `g`'s table `tab` changes when its sequence grows to `t1`
    /// tokens with reservation `reserve`.
    fn plan(&self, g: usize, tab: &Table, t1: u32, reserve: u32) -> Plan {
        let p = &self.groups[g];
        let (f1, e1) = p.span(self.bs, t1);
        let (f0, e0) = (tab.first, tab.first + tab.len);
        let (drop, map) = if tab.len == 0 {
            (0, e1 - f1)
        } else {
            // Fronts only move forward; blocks past the old end that already
            // slid out of the window are never mapped.
            (f1.min(e0) - f0, e1 - e0.max(f1))
        };
        let freed = if tab.named {
            tab.ids
                .iter()
                .take(drop as usize)
                .filter(|&&id| p.refs[id as usize] == 1)
                .count() as u64
        } else {
            drop
        };
        Plan {
            drop,
            freed,
            map,
            spare: p.target(self.bs, t1, reserve) - (e1 - f1),
            first: f1,
        }
    }

    /// Checks the block and byte accounting from scratch (test helper):
    /// reference counts match the tables, every block is exactly one of
    /// referenced, cached or free, and the counters add up.
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut allocated = 0;
        for (g, p) in self.groups[..self.ngroups].iter().enumerate() {
            let mut refs = vec![0u32; p.refs.len()];
            let (mut kept, mut slide) = (0, 0);
            for (i, s) in self.seqs.iter().enumerate().filter(|(_, s)| s.live) {
                let t = &s.tables[g];
                let (f, e) = p.span(self.bs, s.tokens);
                assert_eq!(t.len, e - f, "table covers the kept span");
                if t.len > 0 {
                    assert_eq!(t.first, f);
                }
                assert_eq!(t.len + t.spare, p.target(self.bs, s.tokens, s.reserve));
                assert!(
                    u64::from(s.tokens) <= s.limit && s.limit == self.limit(i as SeqId),
                    "stale limit"
                );
                if t.named {
                    assert_eq!(t.ids.len() as u64, t.len);
                    for &id in &t.ids {
                        refs[id as usize] += 1;
                    }
                    // Only full blocks are shared: the last, if partial, is
                    // private.
                    if let Some(&last) = t.ids.back() {
                        if u64::from(s.tokens) % self.bs != 0 {
                            assert_eq!(p.refs[last as usize], 1, "partial block {last} shared");
                        }
                    }
                } else {
                    assert!(t.ids.is_empty() && t.slide == 0);
                    assert!(self.prefix.is_none(), "prefix caching names every table");
                    allocated += t.len * p.block_bytes;
                }
                kept += p.kept(s.tokens);
                slide += t.slide;
                allocated += t.spare * p.block_bytes;
            }
            assert_eq!(refs, p.refs, "reference counts match the tables");
            let extra: u64 = refs.iter().map(|&r| u64::from(r.saturating_sub(1))).sum();
            assert_eq!(extra, p.extra_refs);
            assert_eq!(kept, p.kept_tokens);
            assert_eq!(slide, p.shared_slide);
            let referenced = refs.iter().filter(|&&r| r > 0).count() as u64;
            allocated += referenced * p.block_bytes;
            // Every id is referenced, cached or free, exactly once.
            let mut state = vec![0u8; refs.len()];
            for &id in &p.free_ids {
                assert_eq!(refs[id as usize], 0, "free block {id} is referenced");
                state[id as usize] += 1;
            }
            let lru = match (&self.prefix, g) {
                (Some(px), 0) => px.lru(),
                _ => Vec::new(),
            };
            for &id in &lru {
                assert_eq!(refs[id as usize], 0, "cached block {id} is referenced");
                state[id as usize] += 1;
            }
            for (id, &r) in refs.iter().enumerate() {
                state[id] += u8::from(r > 0);
            }
            assert!(state.iter().all(|&s| s == 1), "block states {state:?}");
            if let (Some(px), 0) = (&self.prefix, g) {
                assert_eq!(lru.len() as u64 * p.block_bytes, self.cached);
                for (_, id) in px.published() {
                    // A published block is referenced or cached, never free.
                    assert!(px.is_published(id));
                    assert!(refs[id as usize] > 0 || lru.contains(&id));
                }
            }
        }
        allocated += self.deferred * self.groups[0].block_bytes;
        assert_eq!(allocated, self.allocated);
        assert!(self.allocated + self.cached <= self.budget);
        let u = self.usage();
        assert!(u.stored <= u.allocated, "{u:?}");
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
            invariant_violated!("admitting live sequence {}", seq.id);
            return Err(NoRoom);
        }
        let bs = self.bs;
        // Prefix hits: leading identities of the content, never all tokens.
        self.scratch.clear();
        let mut hits_cached = 0;
        if let (Some(px), Some(c)) = (&self.prefix, seq.content) {
            let most = u64::from(c.reusable.min(seq.tokens.saturating_sub(1))) / bs;
            for idx in 0..most {
                let Some(id) = px.lookup((c.key, idx as u32)) else {
                    break;
                };
                hits_cached += u64::from(self.groups[0].refs[id as usize] == 0);
                self.scratch.push(id);
            }
        }
        let hits = self.scratch.len() as u64;
        // Bytes needed: every held block except referenced hits (cached hits
        // leave the free bytes too).
        let mut need = 0;
        for (g, p) in self.groups[..self.ngroups].iter().enumerate() {
            let held = p.target(bs, seq.tokens, seq.reserve);
            let shared = if g == 0 { hits - hits_cached } else { 0 };
            need += (held - shared) * p.block_bytes;
        }
        if need > self.budget - self.allocated {
            return Err(NoRoom);
        }

        let i = seq.id as usize;
        if i >= self.seqs.len() {
            self.seqs.resize_with(i + 1, SeqState::default);
        }
        let s = &mut self.seqs[i];
        s.live = true;
        s.forked = false;
        s.tokens = seq.tokens;
        s.reserve = seq.reserve;
        s.content = seq.content;
        let named = self.prefix.is_some();
        for g in 0..self.ngroups {
            let p = &mut self.groups[g];
            let (front, end) = p.span(bs, seq.tokens);
            let held = p.target(bs, seq.tokens, seq.reserve);
            p.kept_tokens += p.kept(seq.tokens);
            let t = &mut self.seqs[i].tables[g];
            invariant!(t.len == 0 && t.ids.is_empty() && t.slide == 0);
            t.first = front;
            t.spare = held - (end - front);
            t.named = named;
            let mut shared = 0;
            if g == 0 && hits > 0 {
                // Hits first, so that the eviction below cannot take them.
                for k in 0..self.scratch.len() {
                    let id = self.scratch[k];
                    let p = &mut self.groups[0];
                    if p.refs[id as usize] == 0 {
                        self.prefix
                            .as_mut()
                            .expect("hits need the index")
                            .unlink(id);
                        self.cached -= p.block_bytes;
                        self.allocated += p.block_bytes;
                        p.refs[id as usize] = 1;
                    } else {
                        p.share(id);
                    }
                    self.seqs[i].tables[0].ids.push_back(id);
                }
                self.seqs[i].tables[0].len = hits;
                shared = hits;
            }
            self.charge(g, held - shared);
            self.map_blocks(seq.id, g, end - front - shared);
        }
        self.publish(seq.id, 0, seq.tokens);
        self.seqs[i].limit = self.limit(seq.id);
        Ok(Admitted {
            cached_tokens: (hits * bs) as u32,
        })
    }

    fn grow(&mut self, seq: SeqId, n: u32) -> Result<(), NoRoom> {
        let Some(s) = self.live(seq) else {
            invariant_violated!("growing dead sequence {seq}");
            return Err(NoRoom);
        };
        let t0 = s.tokens;
        let t1 = t0.checked_add(n).ok_or(NoRoom)?;
        if u64::from(t1) > s.limit {
            let mut plans = [Plan::default(); 2];
            let (mut need, mut gain) = (0, 0);
            for (g, slot) in plans.iter_mut().enumerate().take(self.ngroups) {
                let t = &s.tables[g];
                let plan = self.plan(g, t, t1, s.reserve);
                let (alloc, back) = plan.net(t.spare);
                let b = self.groups[g].block_bytes;
                need += alloc * b;
                gain += (back + plan.freed) * b;
                *slot = plan;
            }
            if need > self.budget - self.allocated + gain {
                return Err(NoRoom);
            }
            // Give back first (drops and spares of every group), then take.
            for (g, plan) in plans.iter().enumerate().take(self.ngroups) {
                let (_, back) = plan.net(self.seqs[seq as usize].tables[g].spare);
                self.allocated -= back * self.groups[g].block_bytes;
                self.drop_front(seq, g, plan.drop);
            }
            for (g, plan) in plans.iter().enumerate().take(self.ngroups) {
                let t = &mut self.seqs[seq as usize].tables[g];
                let (alloc, _) = plan.net(t.spare);
                t.first = plan.first;
                t.spare = plan.spare;
                self.charge(g, alloc);
                self.map_blocks(seq, g, plan.map);
            }
        }
        let s = &mut self.seqs[seq as usize];
        s.tokens = t1;
        let (forked, limit) = (s.forked, s.limit);
        for p in &mut self.groups[..self.ngroups] {
            p.kept_tokens += p.kept(t1) - p.kept(t0);
        }
        if forked {
            for g in 0..self.ngroups {
                self.refresh_slide(seq, g);
            }
        }
        if u64::from(t1) > limit {
            self.publish(seq, t0, t1);
            self.seqs[seq as usize].limit = self.limit(seq);
        }
        Ok(())
    }

    fn fork(&mut self, parent: SeqId, child: SeqId) -> Result<(), NoRoom> {
        let Some(s) = self.live(parent) else {
            invariant_violated!("forking dead sequence {parent}");
            return Err(NoRoom);
        };
        if self.live(child).is_some() || parent == child {
            invariant_violated!("forking into live sequence {child}");
            return Err(NoRoom);
        }
        let tokens = s.tokens;
        // The partial last block of each group is copied; full ones shared.
        let ends_partial = u64::from(tokens) % self.bs != 0;
        let partial = |t: &Table| u64::from(t.len > 0 && ends_partial);
        let need: u64 = (0..self.ngroups)
            .map(|g| partial(&s.tables[g]) * self.groups[g].block_bytes)
            .sum();
        if need > self.budget - self.allocated {
            return Err(NoRoom);
        }
        let content = s.content.map(|c| Content {
            // The child's continuation differs from the parent's: the parent
            // carries the lineage on, the child publishes nothing new.
            lineage: c.lineage.min(tokens),
            ..c
        });
        let i = child as usize;
        if i >= self.seqs.len() {
            self.seqs.resize_with(i + 1, SeqState::default);
        }
        for g in 0..self.ngroups {
            self.name(parent, g);
            let pt = &self.seqs[parent as usize].tables[g];
            let copy = partial(pt);
            let (first, full) = (pt.first, pt.len - copy);
            self.scratch.clear();
            self.scratch.extend(pt.ids.iter().take(full as usize));
            for k in 0..self.scratch.len() {
                self.groups[g].share(self.scratch[k]);
            }
            let ct = &mut self.seqs[i].tables[g];
            invariant!(ct.len == 0 && ct.ids.is_empty() && ct.slide == 0);
            ct.first = first;
            ct.len = full;
            ct.named = true;
            ct.spare = 0;
            ct.ids.extend(self.scratch.iter().copied());
            self.charge(g, copy);
            self.map_blocks(child, g, copy);
            let p = &mut self.groups[g];
            p.kept_tokens += p.kept(tokens);
        }
        let c = &mut self.seqs[i];
        c.live = true;
        c.forked = true;
        c.tokens = tokens;
        // The child reserves nothing beyond its tokens: a fork costs at most
        // a block per group until it grows.
        c.reserve = tokens;
        c.content = content;
        self.seqs[parent as usize].forked = true;
        for g in 0..self.ngroups {
            self.refresh_slide(parent, g);
            self.refresh_slide(child, g);
        }
        self.seqs[i].limit = self.limit(child);
        Ok(())
    }

    fn release(&mut self, seq: SeqId) {
        if self.live(seq).is_none() {
            invariant_violated!("releasing dead sequence {seq}");
            return;
        }
        for g in 0..self.ngroups {
            let t = &mut self.seqs[seq as usize].tables[g];
            let (len, spare, slide, named) = (t.len, t.spare, t.slide, t.named);
            (t.len, t.spare, t.slide, t.named) = (0, 0, 0, false);
            let p = &mut self.groups[g];
            p.shared_slide -= slide;
            self.allocated -= spare * p.block_bytes;
            if !named {
                self.allocated -= len * p.block_bytes;
                continue;
            }
            let mut ids = std::mem::take(&mut t.ids);
            // Last block first: the LRU list then evicts a prefix's tail
            // before its head.
            for &id in ids.iter().rev() {
                self.unref(g, id);
            }
            ids.clear();
            self.seqs[seq as usize].tables[g].ids = ids;
        }
        let s = &mut self.seqs[seq as usize];
        s.live = false;
        let tokens = s.tokens;
        for p in &mut self.groups[..self.ngroups] {
            p.kept_tokens -= p.kept(tokens);
        }
    }

    fn reset(&mut self) {
        for s in &mut self.seqs {
            s.live = false;
            for t in &mut s.tables {
                t.ids.clear();
                (t.len, t.spare, t.slide, t.named) = (0, 0, 0, false);
            }
        }
        for p in &mut self.groups {
            p.refs.clear();
            p.free_ids.clear();
            p.extra_refs = 0;
            p.kept_tokens = 0;
            p.shared_slide = 0;
        }
        if let Some(px) = &mut self.prefix {
            px.clear();
        }
        self.allocated = 0;
        self.cached = 0;
        self.deferred = 0;
    }

    fn attended_bytes(&self, seq: SeqId) -> u64 {
        match self.live(seq) {
            Some(s) => self.layout.attended_bytes(s.tokens),
            None => {
                invariant_violated!("attended bytes of dead sequence {seq}");
                0
            }
        }
    }

    fn held_bytes(&self, seq: SeqId) -> u64 {
        self.live(seq).map_or(0, |s| {
            self.groups[..self.ngroups]
                .iter()
                .zip(&s.tables)
                .map(|(p, t)| (t.len + t.spare) * p.block_bytes)
                .sum()
        })
    }

    fn fits_when_empty(&self, seq: &SeqInfo) -> bool {
        let need: u64 = self.groups[..self.ngroups]
            .iter()
            .map(|p| p.target(self.bs, seq.tokens, seq.reserve) * p.block_bytes)
            .sum();
        need <= self.budget
    }

    fn unusable_free_bytes(&self, _seq: &SeqInfo) -> u64 {
        0
    }

    fn usage(&self) -> MemoryUsage {
        let stored = self.groups[..self.ngroups]
            .iter()
            .map(|p| p.stored_tokens(self.bs) * p.bpt)
            .sum();
        MemoryUsage {
            cached: self.cached,
            ..MemoryUsage::new(self.budget, self.allocated, stored)
        }
    }

    fn layout(&self) -> &KvLayout {
        &self.layout
    }

    fn as_paged_mut(&mut self) -> Option<&mut PagedCache> {
        Some(self)
    }
}
