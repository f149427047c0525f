//! The block bookkeeping behind [`PagedCache`]'s trait methods: what a
//! sequence may hold, charging and unreferencing blocks, mapping and dropping
//! a sequence's blocks, naming full blocks for the prefix cache, the plan of
//! a growth, and the invariant check.

use super::{BlockId, PagedCache, Plan, SeqState, Table};
#[cfg(test)]
use crate::cache::KvCache;
use crate::cache::SeqId;
use crate::model::Span;

impl PagedCache {
    /// The state of `seq` if it is live.
    #[inline]
    pub(super) fn live(&self, seq: SeqId) -> Option<&SeqState> {
        self.seqs.get(seq as usize).filter(|s| s.live)
    }

    /// The most tokens sequence `seq` can grow to without block work: before
    /// a group needs a new block, before a window's start leaves its front
    /// block, before a block fills that must be published; not at all while
    /// a windowed group's spare count may change (a reservation not yet
    /// reached under a window).
    pub(super) fn limit(&self, seq: SeqId) -> u64 {
        let s = &self.seqs[seq as usize];
        let (bs, t) = (self.bs, u64::from(s.tokens));
        let mut limit = u64::MAX;
        for (p, tab) in self.groups[..self.ngroups].iter().zip(&s.tables) {
            limit = limit.min((tab.first + tab.len) * bs);
            match p.span {
                Span::All => {}
                _ if s.tokens < s.reserve => return t,
                Span::Window(w) => {
                    if tab.len > 0 {
                        limit = limit.min((tab.first + 1) * bs + u64::from(w) - 1);
                    }
                }
                // The front moves when the next chunk starts: after the
                // current chunk's last token.
                Span::Chunk(c) => {
                    let c = u64::from(c);
                    limit = limit.min(t.div_ceil(c).max(1) * c);
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
    pub(super) fn uncached_free(&self) -> u64 {
        self.budget - self.allocated - self.cached
    }

    /// Charges `n` new private blocks of group `g` to `allocated`, evicting
    /// least recently used cached blocks if the uncached free bytes do not
    /// cover them. The caller has checked that `n` blocks fit in the free bytes.
    pub(super) fn charge(&mut self, g: usize, n: u64) {
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
    pub(super) fn unref(&mut self, g: usize, id: BlockId) {
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
    pub(super) fn map_blocks(&mut self, seq: SeqId, g: usize, n: u64) {
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
    pub(super) fn drop_front(&mut self, seq: SeqId, g: usize, n: u64) {
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
    pub(super) fn name(&mut self, seq: SeqId, g: usize) {
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
    pub(super) fn refresh_slide(&mut self, seq: SeqId, g: usize) {
        let p = &mut self.groups[g];
        let s = &mut self.seqs[seq as usize];
        let t = &mut s.tables[g];
        let slide = match t.ids.front() {
            Some(&id) if !p.span.is_all() && s.forked && p.refs[id as usize] > 1 => {
                let dropped = u64::from(s.tokens) - p.kept(s.tokens);
                dropped.saturating_sub(t.first * self.bs)
            }
            _ => 0,
        };
        p.shared_slide = p.shared_slide - t.slide + slide;
        t.slide = slide;
    }

    /// Publishes `seq`'s blocks that are full at `to` tokens but were not at
    /// `from`, within its content's lineage (prefix caching only).
    pub(super) fn publish(&mut self, seq: SeqId, from: u32, to: u32) {
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
                let ident = px.ident(c.key, idx as u32);
                px.publish(ident, id);
            }
        }
    }

    /// How group `g`'s table `tab` changes when its sequence grows to `t1`
    /// tokens with reservation `reserve`.
    pub(super) fn plan(&self, g: usize, tab: &Table, t1: u32, reserve: u32) -> Plan {
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
    pub(super) fn check_invariants(&self) {
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
        let mut allocated = u64::try_from(i128::from(allocated) + self.deferred).unwrap();
        let live = self.seqs.iter().filter(|s| s.live).count() as u64;
        assert_eq!(live, self.live_seqs);
        allocated += live * self.state;
        assert_eq!(allocated, self.allocated);
        assert!(self.allocated + self.cached <= self.budget);
        let u = self.usage();
        assert!(u.stored <= u.allocated, "{u:?}");
    }
}
