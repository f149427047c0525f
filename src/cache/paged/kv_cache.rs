//! [`KvCache`] for [`PagedCache`]: admission (with prefix hits), growth,
//! copy-on-write forks, release (full blocks stay cached), reset and the
//! byte accounting the engine reads.

use super::{PagedCache, Plan, SeqState, Table};
use crate::cache::{
    Admitted, CachedPrefix, Content, KvCache, KvLayout, MAX_LAYER_GROUPS, MemoryUsage, NoRoom,
    SeqId, SeqInfo,
};

impl KvCache for PagedCache {
    fn admit(&mut self, seq: &SeqInfo) -> Result<Admitted, NoRoom> {
        if self.plain {
            return self.admit_plain(seq);
        }
        if self.live(seq.id).is_some() {
            invariant_violated!("admitting live sequence {}", seq.id);
            return Err(NoRoom);
        }
        let bs = self.bs;
        // Prefix hits: leading identities of the content, never all tokens.
        self.scratch.clear();
        let mut hits_cached = 0;
        if let (Some(px), Some(c)) = (&self.prefix, seq.content) {
            let most = c.reusable.min(seq.tokens.saturating_sub(1)) / bs as u32;
            let (refs, scratch) = (&self.groups[0].refs, &mut self.scratch);
            px.leading(c.key, most, |id| {
                hits_cached += u64::from(refs[id as usize] == 0);
                scratch.push(id);
            });
        }
        let hits = self.scratch.len() as u64;
        // Bytes needed: every held block except referenced hits (cached hits
        // leave the free bytes too).
        if self.need_bytes(seq, hits - hits_cached) > self.budget - self.allocated {
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
        self.allocated += self.state;
        self.live_seqs += 1;
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
        // The hits are published already.
        self.publish(seq.id, (hits * bs) as u32, seq.tokens);
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
            let mut plans = [Plan::default(); MAX_LAYER_GROUPS];
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
        // The child's recurrent state is a copy, never shared.
        let need: u64 = self.state
            + (0..self.ngroups)
                .map(|g| partial(&s.tables[g]) * self.groups[g].block_bytes)
                .sum::<u64>();
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
        self.allocated += self.state;
        self.live_seqs += 1;
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
        if self.plain && !self.seqs[seq as usize].tables[0].named {
            self.release_plain(seq);
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
        self.allocated -= self.state;
        self.live_seqs -= 1;
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
        self.live_seqs = 0;
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
            self.state
                + self.groups[..self.ngroups]
                    .iter()
                    .zip(&s.tables)
                    .map(|(p, t)| (t.len + t.spare) * p.block_bytes)
                    .sum::<u64>()
        })
    }

    fn fits_when_empty(&self, seq: &SeqInfo) -> bool {
        self.need_bytes(seq, 0) <= self.budget
    }

    fn unusable_free_bytes(&self, _seq: &SeqInfo) -> u64 {
        0
    }

    fn usage(&self) -> MemoryUsage {
        let stored = self.live_seqs * self.state
            + self.groups[..self.ngroups]
                .iter()
                .map(|p| p.stored_tokens(self.bs) * p.bpt)
                .sum::<u64>();
        MemoryUsage {
            cached: self.cached,
            ..MemoryUsage::new(self.budget, self.allocated, stored)
        }
    }

    fn layout(&self) -> &KvLayout {
        &self.layout
    }

    fn cached_prefix(&self, content: &Content) -> CachedPrefix {
        self.leading_published_blocks(content)
    }

    fn as_paged_mut(&mut self) -> Option<&mut PagedCache> {
        Some(self)
    }

    fn as_paged(&self) -> Option<&PagedCache> {
        Some(self)
    }
}

impl PagedCache {
    /// [`KvCache::admit`] of a plain cache (one group keeping every token,
    /// no prefix cache): no hits, so the sequence holds
    /// `ceil(max(tokens, reserve) / bs)` anonymous blocks, `ceil(tokens /
    /// bs)` of them mapped from block 0, and grows with no block work up to
    /// the end of its last mapped block. The general path computes the
    /// same, group by group (`matches_block_model` checks both against a
    /// per-block model).
    fn admit_plain(&mut self, seq: &SeqInfo) -> Result<Admitted, NoRoom> {
        let i = seq.id as usize;
        if self.seqs.get(i).is_some_and(|s| s.live) {
            invariant_violated!("admitting live sequence {}", seq.id);
            return Err(NoRoom);
        }
        let bs = self.bs;
        let mapped = u64::from(seq.tokens).div_ceil(bs);
        let held = u64::from(seq.tokens.max(seq.reserve)).div_ceil(bs);
        let need = self.need_bytes(seq, 0);
        if need > self.budget - self.allocated {
            return Err(NoRoom);
        }
        // No prefix cache, so nothing is cached: the free bytes are
        // uncached, and no eviction makes room.
        self.groups[0].kept_tokens += u64::from(seq.tokens);
        self.allocated += need;
        self.live_seqs += 1;
        if i >= self.seqs.len() {
            self.seqs.resize_with(i + 1, SeqState::default);
        }
        let s = &mut self.seqs[i];
        s.live = true;
        s.forked = false;
        s.tokens = seq.tokens;
        s.reserve = seq.reserve;
        s.content = seq.content;
        s.limit = mapped * bs;
        let t = &mut s.tables[0];
        invariant!(t.len == 0 && t.ids.is_empty() && t.slide == 0 && !t.named);
        t.first = 0;
        t.len = mapped;
        t.spare = held - mapped;
        Ok(Admitted { cached_tokens: 0 })
    }

    /// [`KvCache::release`] of a live sequence of a plain cache whose table
    /// is anonymous (never forked): its blocks and state go back at once.
    fn release_plain(&mut self, seq: SeqId) {
        let s = &mut self.seqs[seq as usize];
        let t = &mut s.tables[0];
        let p = &mut self.groups[0];
        invariant!(t.slide == 0, "an anonymous table shares no front block");
        self.allocated -= (t.len + t.spare) * p.block_bytes + self.state;
        (t.len, t.spare) = (0, 0);
        p.kept_tokens -= u64::from(s.tokens);
        self.live_seqs -= 1;
        s.live = false;
    }
}
