//! Paged placement: vLLM's PagedAttention (Kwon et al., SOSP 2023), with
//! hybrid layer groups, copy-on-write forks and automatic prefix caching.
//!
//! # Blocks and groups
//!
//! Each layer group of the [`KvLayout`] has its own blocks of `block_size`
//! tokens (`block_size * bytes_per_token` bytes of that group's layers). A
//! sequence holds, per group, the blocks that cover the tokens the group keeps:
//! all of them, the last `window` (blocks wholly before the window are freed
//! as the sequence grows, so a windowed group never holds more than
//! `ceil(W / block_size) + 1` blocks), or the current chunk (a chunk is a
//! whole number of blocks, so at each chunk boundary the previous chunk's
//! blocks are freed at once). A recurrent layer's state is one fixed
//! allocation per sequence, taken at admission and given back at release, as
//! vLLM's hybrid allocator gives each request one state slot per Mamba layer. Blocks of every group come out of one
//! pool of bytes, the KV budget, so there is no fragmentation between groups
//! and none within one: any free byte serves any block. The only waste is the
//! unfilled tail of a last block (internal fragmentation) and blocks reserved
//! ahead of the tokens (reserve admission).
//!
//! Non-empty groups with the same span keep the same tokens, so they are
//! merged into one *physical* group whose blocks span all their layers: the
//! byte counts are identical and every block operation happens once, not twice.
//! A uniform model is one physical group; gemma-2 under its own window is two.
//!
//! The usable budget is the KV budget rounded down to a multiple of the gcd of
//! the physical groups' block bytes (and the state bytes): every allocation is
//! a multiple of that, so the remainder could never be used.
//!
//! vLLM's hybrid KV cache manager (docs/design/hybrid_kv_cache_manager.md;
//! vllm/v1/core/kv_cache_coordinator.py, `HybridKVCacheCoordinator`, and
//! one `SingleTypeKVCacheManager` per attention type in
//! vllm/v1/core/single_type_kv_cache_manager.py) also keeps one pool for every group, but of
//! pages of one size: it picks each group's block size so that all pages have
//! the same bytes, and pads Mamba state pages to that size. kvsim lets every
//! group keep the scenario's block size and takes exactly each group's bytes
//! from the shared budget, which equals vLLM's accounting when the page sizes
//! unify without padding, and is below it by the padding otherwise.
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
//! [`KvCache::fork`](super::KvCache::fork) copies the parent's table into the child, sharing its
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

mod blocks;
mod kv_cache;
mod prefix;

pub use prefix::{BlockNamer, IdentHasher};
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

#[cfg(test)]
use super::KvCache;
use super::{CachedPrefix, Content, KvLayout, MAX_LAYER_GROUPS, SeqId, SeqInfo};
use crate::model::Span;
use prefix::PrefixIndex;

/// Index of a physical block within its physical group.
type BlockId = u32;

/// One physical group: layer groups that keep the same tokens, and its blocks.
#[derive(Clone, Debug, Default)]
struct Group {
    /// KV bytes per token of the group's layers.
    bpt: u64,
    /// Tokens kept.
    span: Span,
    /// Bytes of one block: `block_size * bpt`.
    block_bytes: u64,
    /// Which layout groups this physical group stands for.
    members: [bool; MAX_LAYER_GROUPS],
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
        u64::from(self.span.kept(t))
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
        peak_blocks(bs, self.span, tokens, tokens.max(reserve))
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
    tables: [Table; MAX_LAYER_GROUPS],
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
    groups: [Group; MAX_LAYER_GROUPS],
    /// Physical groups in use (0 for a layout with no bytes per token).
    ngroups: usize,
    /// One physical group that keeps every token, and no prefix cache: a
    /// new sequence's table is a count whose blocks follow from its length
    /// and reservation, so admission and release take a closed-form path
    /// (see [`PagedCache::admit_plain`]).
    plain: bool,
    /// Bytes of recurrent state each live sequence holds (all layers).
    state: u64,
    /// Live sequences (each holds `state` bytes).
    live_seqs: u64,
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
    /// Bytes of blocks charged to `allocated` by [`PagedCache::defer`] that
    /// no sequence's table maps yet, less those of blocks released that a
    /// table still maps (see there).
    deferred: i128,
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
        let mut groups: [Group; MAX_LAYER_GROUPS] = Default::default();
        let mut ngroups = 0;
        for (i, g) in layout.groups().iter().enumerate() {
            if g.bytes_per_token == 0 {
                continue;
            }
            if let Span::Chunk(c) = g.span {
                invariant!(
                    u64::from(c) % bs == 0,
                    "a chunk is a whole number of blocks"
                );
            }
            // Same span as a group already placed: same tokens, same blocks.
            if let Some(p) = groups[..ngroups].iter_mut().find(|p| p.span == g.span) {
                p.bpt += g.bytes_per_token;
                p.members[i] = true;
                continue;
            }
            let p = &mut groups[ngroups];
            p.bpt = g.bytes_per_token;
            p.span = g.span;
            p.members[i] = true;
            ngroups += 1;
        }
        let state = layout.state_bytes();
        let mut unit = state;
        for p in &mut groups[..ngroups] {
            p.block_bytes = bs.saturating_mul(p.bpt);
            unit = gcd(unit, p.block_bytes);
        }
        let budget = match unit {
            0 => 0,
            u => budget_bytes / u * u,
        };
        invariant!(
            !prefix_caching || layout.is_linear(),
            "prefix caching needs a layout without windows or recurrent state"
        );
        let mut prefix =
            (prefix_caching && layout.is_linear() && ngroups == 1).then(PrefixIndex::new);
        if let Some(px) = prefix.as_mut() {
            // Every block gets an id the first time it is used: room for
            // the ids the budget holds (at most a few million; capacity
            // only, untouched until used) spares the tables' regrowth.
            let ids = (budget / groups[0].block_bytes.max(1)).min(1 << 22) as usize;
            px.reserve(ids);
            groups[0].refs.reserve(ids);
        }
        let plain = prefix.is_none() && ngroups == 1 && groups[0].span == Span::All;
        PagedCache {
            layout,
            bs,
            groups,
            ngroups,
            plain,
            state,
            live_seqs: 0,
            budget,
            allocated: 0,
            cached: 0,
            prefix,
            seqs: Vec::new(),
            scratch: Vec::new(),
            deferred: 0,
        }
    }

    /// Whether [`PagedCache::defer`] and [`PagedCache::settle`] apply: no
    /// prefix caching, so every table stays anonymous unless forked, and no
    /// chunked group, so a growing sequence needs a block in every group
    /// exactly when its length crosses a multiple of the block size, and a
    /// window drops one exactly when the window's start does.
    pub fn defers(&self) -> bool {
        self.prefix.is_none()
            && self.groups[..self.ngroups]
                .iter()
                .all(|p| matches!(p.span, Span::All | Span::Window(1..)))
    }

    /// Whether full blocks are named for the prefix cache. Then a growing
    /// sequence needs the cache only when it passes its
    /// [`PagedCache::growth`] limit (a block to map or one to publish), and
    /// the engine's fast path grows it lazily up to there: see `engine::fast`.
    pub fn names_blocks(&self) -> bool {
        self.prefix.is_some()
    }

    /// Tokens live sequence `seq` holds, and the most it can grow to with
    /// no block work: growing it to that many one token at a time or at
    /// once does the same.
    pub fn growth(&self, seq: SeqId) -> (u32, u64) {
        let s = &self.seqs[seq as usize];
        invariant!(s.live, "growth of a dead sequence");
        (s.tokens, s.limit)
    }

    /// Bytes admitting `seq` takes from the free bytes when no block of its
    /// prefix is cached: its recurrent state and every block it holds
    /// (what [`KvCache::admit`](super::KvCache::admit) checks the free
    /// bytes against, prefix caching off).
    pub fn admission_bytes(&self, seq: &SeqInfo) -> u64 {
        self.need_bytes(seq, 0)
    }

    /// [`PagedCache::admission_bytes`] when `shared` of the first group's
    /// blocks are prefix hits other sequences hold (they take no new
    /// bytes; cached hits do, as they leave the free bytes).
    #[inline]
    pub(super) fn need_bytes(&self, seq: &SeqInfo, shared: u64) -> u64 {
        if self.plain {
            // No prefix cache, so nothing is shared.
            invariant_eq!(shared, 0, "shared blocks without a prefix cache");
            let held = u64::from(seq.tokens.max(seq.reserve)).div_ceil(self.bs);
            return self.state + held * self.groups[0].block_bytes;
        }
        self.need_bytes_by_group(seq, shared)
    }

    /// [`PagedCache::need_bytes`], group by group.
    #[inline(never)]
    fn need_bytes_by_group(&self, seq: &SeqInfo, shared: u64) -> u64 {
        let mut need = self.state;
        for (g, p) in self.groups[..self.ngroups].iter().enumerate() {
            let held = p.target(self.bs, seq.tokens, seq.reserve);
            need += (held - if g == 0 { shared } else { 0 }) * p.block_bytes;
        }
        need
    }

    /// Bytes no sequence holds (cached blocks included: they are evicted
    /// when a block is needed).
    pub fn free_bytes(&self) -> u64 {
        self.budget - self.allocated
    }

    /// The physical groups: what each keeps, and the bytes of one of its
    /// blocks.
    pub fn pools(&self) -> impl Iterator<Item = (Span, u64)> + '_ {
        self.groups[..self.ngroups]
            .iter()
            .map(|p| (p.span, p.block_bytes))
    }

    /// Charges `map_bytes` of new blocks to `allocated`, and releases
    /// `drop_bytes` of blocks that slid out of windows, without changing any
    /// sequence's table yet, if the new blocks fit in the free bytes (not
    /// counting the released ones); `false` (and no change) otherwise.
    ///
    /// This is the engine's fast path (see `engine::fast`): when a decode step
    /// grows every running sequence by one token, the blocks that step needs
    /// are those of the sequences whose length is a multiple of the block
    /// size, and those it releases those of the sequences whose window's
    /// start crosses one: counts the engine keeps without visiting them.
    /// Charging them here keeps `allocated`, and so admission, exact; each
    /// sequence's table catches up later, in one [`PagedCache::settle`].
    /// Until then the `stored` counter of [`KvCache::usage`](super::KvCache::usage) lags (the engine
    /// does not read it). Only valid when [`PagedCache::defers`].
    pub fn defer(&mut self, map_bytes: u64, drop_bytes: u64) -> bool {
        invariant!(self.defers());
        if map_bytes > self.budget - self.allocated {
            return false;
        }
        self.allocated = self.allocated + map_bytes - drop_bytes;
        self.deferred += i128::from(map_bytes) - i128::from(drop_bytes);
        true
    }

    /// Grows `seq` by `n` tokens whose blocks [`PagedCache::defer`] charged
    /// and released earlier, one token at a time: its tables catch up
    /// (`allocated` already counts them).
    pub fn settle(&mut self, seq: SeqId, n: u32) {
        invariant!(self.defers());
        let s = &self.seqs[seq as usize];
        invariant!(s.live && !s.forked, "settling a live, unshared sequence");
        let (t0, reserve) = (s.tokens, s.reserve);
        let t1 = t0 + n;
        if self.plain {
            // Every token kept from block 0: the table maps `ceil(t1 / bs)`
            // blocks, and may grow to their end with no block work.
            let (bs, bb) = (self.bs, self.groups[0].block_bytes);
            let end = u64::from(t1).div_ceil(bs);
            let s = &mut self.seqs[seq as usize];
            let tab = &mut s.tables[0];
            invariant!(
                tab.spare == 0 && !tab.named && tab.first == 0,
                "growing one token at a time holds no spare block"
            );
            self.deferred -= i128::from((end - tab.len) * bb);
            tab.len = end;
            s.tokens = t1;
            s.limit = end * bs;
            self.groups[0].kept_tokens += u64::from(n);
            return;
        }
        let mut net = 0i128;
        for g in 0..self.ngroups {
            let tab = &self.seqs[seq as usize].tables[g];
            let plan = self.plan(g, tab, t1, reserve);
            invariant!(
                tab.spare == 0 && plan.spare == 0 && !tab.named,
                "growing one token at a time holds no spare block"
            );
            net += i128::from(plan.map) * i128::from(self.groups[g].block_bytes)
                - i128::from(plan.drop) * i128::from(self.groups[g].block_bytes);
            let tab = &mut self.seqs[seq as usize].tables[g];
            tab.len = tab.len - plan.drop + plan.map;
            tab.first = plan.first;
        }
        self.deferred -= net;
        self.seqs[seq as usize].tokens = t1;
        for p in &mut self.groups[..self.ngroups] {
            p.kept_tokens += p.kept(t1) - p.kept(t0);
        }
        self.seqs[seq as usize].limit = self.limit(seq);
    }

    /// Blocks a live sequence holds in each layer group of the layout (spare
    /// blocks included; 0 for a group that holds only state), or `None` if it
    /// is not live.
    pub fn blocks_of(&self, seq: SeqId) -> Option<Vec<u64>> {
        let s = self.live(seq)?;
        let mut out = vec![0; self.layout.groups().len()];
        for (p, t) in self.groups[..self.ngroups].iter().zip(&s.tables) {
            for (o, &m) in out.iter_mut().zip(&p.members) {
                if m {
                    *o = t.len + t.spare;
                }
            }
        }
        Some(out)
    }

    /// Leading blocks of `content` published in the prefix index
    /// (referenced by a live sequence or cached), which a sequence admitted
    /// with it would share, and how many of them live sequences hold:
    /// identities from block 0 up to `content.reusable / block_size`,
    /// stopping at the first miss, as admission looks them up. Read-only
    /// (no LRU order changes, nothing evicted), so a router may ask every
    /// replica without disturbing any; nothing without prefix caching.
    /// O(blocks walked).
    pub fn leading_published_blocks(&self, content: &Content) -> CachedPrefix {
        let mut found = CachedPrefix::default();
        let Some(px) = &self.prefix else {
            return found;
        };
        let refs = &self.groups[0].refs;
        let most = u32::try_from(u64::from(content.reusable) / self.bs).unwrap_or(u32::MAX);
        found.blocks = u64::from(px.leading(content.key, most, |id| {
            found.held += u64::from(refs[id as usize] > 0);
        }));
        found
    }

    /// Blocks kept for prefix reuse that no live sequence references.
    pub fn cached_blocks(&self) -> u64 {
        self.prefix.as_ref().map_or(0, PrefixIndex::cached)
    }
}

/// The most blocks of `bs` tokens a sequence needs at any length in
/// `[from, to]` (`from <= to`), keeping the tokens of `span`.
///
/// Keeping every token, that is simply the blocks of the longest length. With
/// a window `W` the count rises until `W` and then oscillates with period
/// `bs` (the window straddles one more block at some offsets), so the
/// maximum is found in closed form instead of by scanning lengths; it never
/// exceeds what the window needs, however large the reservation. A chunk of
/// `C` (a whole number of blocks) holds `ceil(kept / bs)` blocks, most at a
/// chunk's last token.
pub fn peak_blocks(bs: u64, span: Span, from: u32, to: u32) -> u64 {
    let window = match span {
        Span::All => None,
        Span::Window(w) => Some(w),
        Span::Chunk(c) => {
            let (a, b, c) = (
                u64::from(from.max(1)),
                u64::from(to.max(from)),
                u64::from(c),
            );
            if c == 0 || b == 0 {
                return 0;
            }
            // A chunk's last token lies in [a, b]: the whole chunk is held.
            if b / c * c >= a && b >= c {
                return c.div_ceil(bs);
            }
            return u64::from(span.kept(to.max(from))).div_ceil(bs);
        }
    };
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
