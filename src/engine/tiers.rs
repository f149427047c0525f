//! The engine's side of KV tiers below HBM (docs/ARCHITECTURE.md#kv-tiers):
//! what goes down and when, what a request finds below HBM at admission,
//! and where the load's time is charged.
//!
//! - **Write-through** tiers receive every full block of named content (a
//!   session's turns, a shared system prompt, a trace's hash-id chain) at the
//!   end of the step that computed it, one batched transfer per tier per step,
//!   asynchronously: nothing waits for it (vLLM's offloading connector submits
//!   the step's stores at the start of the next step, the same instant). A
//!   block becomes visible in its tier when its transfer ends.
//! - **On-evict** tiers receive what the tier above evicts: the first such
//!   tier below HBM takes the prefix cache's victims, and the copy must end
//!   before their space is reused, so the step that evicted them lasts at
//!   least until it does (SGLang's `write_back` waits the same way); a lower
//!   on-evict tier takes the victims of the tier above it, asynchronously.
//! - **At admission**, after HBM's own prefix hits, the request's next blocks
//!   are looked up in the tiers, fastest first, until the first block held
//!   nowhere (every engine's lookup stops there); the run found is loaded,
//!   one transfer per tier, on FIFO links. `async` holds the request out of
//!   every batch until its load ends; `layerwise` admits it at once and
//!   pipelines the load with its step's compute.
//!
//! kvsim's simplifications (docs/design/kv-tiers.md 5.14): a block's HBM copy
//! is not pinned while it is being written down (vLLM keeps a finished
//! request's blocks until its stores end; a 2 MB block's copy takes ~45 us);
//! a block being loaded is touched to the most recently used end of its tier
//! rather than pinned; tiers keep their contents across a simulated crash.

use std::cell::RefCell;
use std::rc::Rc;

use super::Engine;
use crate::cache::tiers::{
    Channel, Found, LoadMode, StorePolicy, TierConfig, TierKind, TierPlan, TierReader, TierStore,
    Transfer, reserve, transfer_end,
};
use crate::cache::{BlockIdent, BlockNamer, Content, SeqId};
use crate::hardware::cost::{CostModel, StepWork};
use crate::metrics::TierTotals;
use crate::units::{SimDuration, SimTime};

/// A remote tier shared by every replica of a deployment, with its media's
/// read and write bandwidth (each replica reaches it through its own NIC).
#[derive(Debug)]
pub(crate) struct SharedRemote {
    pub(crate) store: TierStore,
    pub(crate) read: Channel,
    pub(crate) write: Channel,
}

impl SharedRemote {
    /// An empty remote tier of `cfg`'s capacity in blocks of `block_bytes`.
    pub(crate) fn new(cfg: &TierConfig, block_bytes: u64) -> Self {
        SharedRemote {
            store: TierStore::new(cfg.capacity_bytes / block_bytes.max(1)),
            read: Channel::default(),
            write: Channel::default(),
        }
    }
}

/// The deployment's remote tier, when the scenario has one.
pub(super) fn shared_remote(
    scenario: &crate::scenario::Scenario,
) -> Option<Rc<RefCell<SharedRemote>>> {
    let plan = scenario.tiers?;
    let cfg = plan.tier(TierKind::Remote)?;
    let crate::cache::Placement::Paged { block_size } = scenario.cache.placement else {
        return None;
    };
    let block_bytes = u64::from(block_size) * scenario.layout.bytes_per_token();
    Some(Rc::new(RefCell::new(SharedRemote::new(cfg, block_bytes))))
}

/// Per replica: its local tiers, its links, the shared remote tier, and the
/// per-sequence progress of write-through.
pub(super) struct EngineTiers {
    plan: TierPlan,
    namer: BlockNamer,
    block_size: u32,
    block_bytes: u64,
    /// Host and SSD stores (per replica), in [`TierKind::ALL`] order; the
    /// remote one is `remote`.
    local: [Option<TierStore>; 2],
    remote: Option<Rc<RefCell<SharedRemote>>>,
    h2d: Channel,
    d2h: Channel,
    ssd_read: Channel,
    ssd_write: Channel,
    nic_in: Channel,
    nic_out: Channel,
    /// Per cache slot: blocks of its content already handed to the tiers.
    stored_blocks: Vec<u32>,
    /// Per cache slot: when its load ends (async loads keep it out of
    /// batches until then).
    ready: Vec<SimTime>,
    /// Per tier: identities to store at the end of this step.
    outbox: [Vec<BlockIdent>; 3],
    /// Victims of a tier, passed to the tier below (reused buffer).
    evicted: Vec<BlockIdent>,
    /// The run of blocks found at an admission: where, in which tier
    /// (reused).
    found: Vec<(Found, TierKind)>,
    /// The first tier stores on eviction: HBM's victims go down (fixed by
    /// the plan; read every step).
    hbm_victims_down: bool,
    /// HBM's victims of the step being formed (reused buffer).
    hbm_victims: Vec<BlockIdent>,
    /// The step being formed may not end before this (blocking stores of
    /// HBM's victims).
    pub(super) step_floor: SimTime,
    /// Loads pipelined with the step being formed end at this instant.
    pub(super) step_load_end: SimTime,
    /// What happened, for the summary.
    pub(super) totals: TierTotals,
}

/// What a request found below HBM at admission.
#[derive(Copy, Clone, Debug, Default)]
pub(super) struct Loaded {
    /// Tokens loaded instead of prefilled.
    pub(super) tokens: u32,
    /// When the load ends (admission time if nothing is loaded).
    pub(super) ready: SimTime,
}

impl EngineTiers {
    /// The tiers of `plan` for a replica whose blocks are `block_size`
    /// tokens of `block_bytes`, sharing `remote` with the other replicas.
    pub(super) fn new(
        plan: TierPlan,
        namer: BlockNamer,
        block_size: u32,
        block_bytes: u64,
        remote: Option<Rc<RefCell<SharedRemote>>>,
    ) -> Self {
        let local = [TierKind::Host, TierKind::Ssd].map(|k| {
            plan.tier(k)
                .map(|c| TierStore::new(c.capacity_bytes / block_bytes.max(1)))
        });
        EngineTiers {
            plan,
            namer,
            block_size,
            block_bytes,
            local,
            remote,
            h2d: Channel::default(),
            d2h: Channel::default(),
            ssd_read: Channel::default(),
            ssd_write: Channel::default(),
            nic_in: Channel::default(),
            nic_out: Channel::default(),
            stored_blocks: Vec::new(),
            ready: Vec::new(),
            outbox: Default::default(),
            evicted: Vec::new(),
            found: Vec::new(),
            hbm_victims_down: plan
                .configured()
                .next()
                .is_some_and(|t| t.store == StorePolicy::OnEvict),
            hbm_victims: Vec::new(),
            step_floor: SimTime::ZERO,
            step_load_end: SimTime::ZERO,
            totals: TierTotals::default(),
        }
    }

    /// Whether the first tier below HBM stores what HBM's prefix cache evicts.
    pub(super) fn stores_hbm_victims(&self) -> bool {
        self.hbm_victims_down
    }

    fn cfg(&self, kind: TierKind) -> &TierConfig {
        self.plan.tier(kind).expect("a configured tier")
    }

    /// Whether slot `slot` is still waiting for its load at `now`.
    #[inline]
    pub(super) fn loading(&self, slot: SeqId, now: SimTime) -> bool {
        self.ready.get(slot as usize).is_some_and(|&r| r > now)
    }

    fn slot_entry(&mut self, slot: SeqId) -> usize {
        let i = slot as usize;
        if self.ready.len() <= i {
            self.ready.resize(i + 1, SimTime::ZERO);
            self.stored_blocks.resize(i + 1, 0);
        }
        i
    }

    /// A sample forked from `parent` into `child` shares its blocks, already
    /// handed down.
    pub(super) fn forked(&mut self, parent: SeqId, child: SeqId) {
        let p = self.slot_entry(parent);
        let stored = self.stored_blocks[p];
        let c = self.slot_entry(child);
        self.stored_blocks[c] = stored;
        self.ready[c] = SimTime::ZERO;
    }

    /// Completes every store due by `now`, in every tier, passing victims
    /// down to a tier below that stores on eviction.
    fn settle(&mut self, now: SimTime) {
        for k in [TierKind::Host, TierKind::Ssd] {
            let Some(store) = self.local[k.index()].as_mut() else {
                continue;
            };
            self.evicted.clear();
            store.complete(now, &mut self.evicted);
            if !self.evicted.is_empty() {
                self.cascade(k, now);
            }
        }
        if let Some(remote) = &self.remote {
            self.evicted.clear();
            remote.borrow_mut().store.complete(now, &mut self.evicted);
        }
    }

    /// Stores the victims `self.evicted` of tier `from` into the next tier
    /// below, if that tier stores on eviction.
    fn cascade(&mut self, from: TierKind, now: SimTime) {
        let below = TierKind::ALL[from.index() + 1..]
            .iter()
            .copied()
            .find(|k| self.plan.tier(*k).is_some());
        if let Some(k) = below {
            if self.cfg(k).store == StorePolicy::OnEvict {
                let victims = std::mem::take(&mut self.evicted);
                self.outbox[k.index()].extend_from_slice(&victims);
                self.evicted = victims;
                self.flush_tier(k, now);
            }
        }
    }

    /// Calls `f` with where each block of content `key` from block `from`
    /// up to block `most` is in the fastest tier holding it, and that tier,
    /// stopping at the first block held nowhere. `now`: stores due by then
    /// count as done (after [`Self::settle`] they are; a router reads
    /// without settling). Each tier is read chunk by chunk.
    fn walk(
        &self,
        key: u64,
        from: u32,
        most: u32,
        now: SimTime,
        mut f: impl FnMut(Found, TierKind),
    ) {
        let remote = self.remote.as_ref().map(|r| r.borrow());
        let mut host = self.local[0].as_ref().map(|s| s.reader(now));
        let mut ssd = self.local[1].as_ref().map(|s| s.reader(now));
        let mut far = remote.as_ref().map(|r| r.store.reader(now));
        let find = |r: &mut Option<TierReader<'_>>, ident| r.as_mut().and_then(|r| r.find(ident));
        for idx in from..most {
            let ident = self.namer.ident(key, idx);
            let (at, kind) = if let Some(at) = find(&mut host, ident) {
                (at, TierKind::Host)
            } else if let Some(at) = find(&mut ssd, ident) {
                (at, TierKind::Ssd)
            } else if let Some(at) = find(&mut far, ident) {
                (at, TierKind::Remote)
            } else {
                break;
            };
            f(at, kind);
        }
    }

    /// Blocks of `content` after its first `from` held in each tier (host,
    /// ssd, remote) at `now`, walking until the first block held nowhere, up
    /// to block `most`: a router's view, read only (stores due by `now`
    /// count as done).
    pub(super) fn overlap(
        &self,
        content: &Content,
        from: u32,
        most: u32,
        now: SimTime,
    ) -> [u32; 3] {
        let mut per = [0u32; 3];
        self.walk(content.key, from, most, now, |_, k| per[k.index()] += 1);
        per
    }

    /// Blocks of `block_size` tokens.
    pub(super) fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Makes this replica use `remote`, the deployment's shared remote tier.
    pub(super) fn share_remote(&mut self, remote: Rc<RefCell<SharedRemote>>) {
        if self.remote.is_some() {
            self.remote = Some(remote);
        }
    }

    /// The transfer that loads `blocks` blocks from `kind`, and its path.
    fn load_transfer(&self, kind: TierKind, blocks: u64) -> Transfer {
        let cfg = self.cfg(kind);
        let links = &self.plan.links;
        let (rate, latency, per_block) = match kind {
            // An SSD's blocks reach the GPU through host memory and PCIe.
            TierKind::Host | TierKind::Ssd => (
                links.pcie_bps.min(cfg.read_bps),
                cfg.latency_ns,
                links.pcie_block_ns,
            ),
            TierKind::Remote => (
                links.nic_bps.min(cfg.read_bps),
                cfg.latency_ns + links.nic_latency_ns,
                0,
            ),
        };
        Transfer {
            blocks,
            block_bytes: self.block_bytes,
            rate_bps: rate,
            latency_ns: latency,
            per_block_ns: per_block,
        }
    }

    /// When loading `blocks` from `kind` at `now` would end, reserving the
    /// links if `commit`.
    fn load_end(&mut self, kind: TierKind, blocks: u64, now: SimTime, commit: bool) -> SimTime {
        let t = self.load_transfer(kind, blocks);
        match (kind, commit) {
            (TierKind::Host, false) => transfer_end(now, &[&self.h2d], &t),
            (TierKind::Host, true) => reserve(now, &mut [&mut self.h2d], &t),
            (TierKind::Ssd, false) => transfer_end(now, &[&self.ssd_read, &self.h2d], &t),
            (TierKind::Ssd, true) => reserve(now, &mut [&mut self.ssd_read, &mut self.h2d], &t),
            (TierKind::Remote, _) => {
                let remote = Rc::clone(self.remote.as_ref().expect("a remote tier"));
                let mut r = remote.borrow_mut();
                if commit {
                    reserve(now, &mut [&mut r.read, &mut self.nic_in], &t)
                } else {
                    transfer_end(now, &[&r.read, &self.nic_in], &t)
                }
            }
        }
    }

    /// Queues `idents` (blocks of a sequence just computed) for every
    /// write-through tier.
    fn write_through(&mut self, key: u64, from: u32, to: u32) {
        for k in TierKind::ALL {
            if self
                .plan
                .tier(k)
                .is_some_and(|c| c.store == StorePolicy::WriteThrough)
            {
                for idx in from..to {
                    let ident = self.namer.ident(key, idx);
                    self.outbox[k.index()].push(ident);
                }
            }
        }
    }

    /// Calls `f` with tier `kind`'s store (the shared one for a remote tier).
    fn with_store<R>(&mut self, kind: TierKind, f: impl FnOnce(&mut TierStore) -> R) -> R {
        match kind {
            TierKind::Remote => {
                let remote = self.remote.as_ref().expect("a remote tier");
                f(&mut remote.borrow_mut().store)
            }
            _ => f(self.local[kind.index()].as_mut().expect("a local tier")),
        }
    }

    /// Issues the stores queued for tier `kind` as one transfer ending at the
    /// returned instant (`now` if nothing was new to it).
    fn flush_tier(&mut self, kind: TierKind, now: SimTime) -> SimTime {
        let mut idents = std::mem::take(&mut self.outbox[kind.index()]);
        // Blocks the tier holds or is already writing are not written again,
        // nor is a block two sequences of one content queued in one step
        // twice: the first is kept, in order (the order is the tier's LRU
        // order). What is left is queued, to end when the transfer does.
        self.with_store(kind, |s| s.begin_stores(&mut idents));
        let mut end = now;
        if !idents.is_empty() {
            let blocks = idents.len() as u64;
            let cfg = *self.cfg(kind);
            let links = self.plan.links;
            let host_above = self.plan.tier(TierKind::Host).is_some();
            let mut t = Transfer {
                blocks,
                block_bytes: self.block_bytes,
                rate_bps: cfg.write_bps,
                latency_ns: cfg.latency_ns,
                per_block_ns: 0,
            };
            end = match kind {
                TierKind::Host => {
                    t.rate_bps = t.rate_bps.min(links.pcie_bps);
                    t.per_block_ns = links.pcie_block_ns;
                    reserve(now, &mut [&mut self.d2h], &t)
                }
                // Written from host memory when a host tier is above it.
                TierKind::Ssd if host_above => reserve(now, &mut [&mut self.ssd_write], &t),
                TierKind::Ssd => {
                    t.rate_bps = t.rate_bps.min(links.pcie_bps);
                    t.per_block_ns = links.pcie_block_ns;
                    reserve(now, &mut [&mut self.d2h, &mut self.ssd_write], &t)
                }
                TierKind::Remote => {
                    t.rate_bps = t.rate_bps.min(links.nic_bps);
                    t.latency_ns += links.nic_latency_ns;
                    let remote = Rc::clone(self.remote.as_ref().expect("a remote tier"));
                    let mut r = remote.borrow_mut();
                    reserve(now, &mut [&mut self.nic_out, &mut r.write], &t)
                }
            };
            self.with_store(kind, |s| s.end_stores(idents.len(), end));
            self.totals.stored_bytes[kind.index()] += blocks * self.block_bytes;
        }
        idents.clear();
        self.outbox[kind.index()] = idents;
        end
    }

    /// Issues every queued store (end of a step).
    pub(super) fn flush(&mut self, now: SimTime) {
        for k in TierKind::ALL {
            if !self.outbox[k.index()].is_empty() {
                self.flush_tier(k, now);
            }
        }
    }

    /// HBM's prefix cache evicted `self.hbm_victims`: the first tier stores
    /// them (it stores on eviction), and the step being formed lasts until
    /// that copy ends.
    fn hbm_evicted(&mut self, now: SimTime) {
        let Some(first) = self.plan.configured().next().map(|c| c.kind) else {
            return;
        };
        let victims = std::mem::take(&mut self.hbm_victims);
        self.outbox[first.index()].extend_from_slice(&victims);
        self.hbm_victims = victims;
        self.hbm_victims.clear();
        let end = self.flush_tier(first, now);
        self.step_floor = self.step_floor.max(end);
    }

    /// Blocks of slot `slot`'s content now full (`tokens` stored, of which
    /// the first `lineage` belong to the content): those not handed down
    /// yet go to the write-through tiers at the end of this step.
    #[inline]
    pub(super) fn computed(&mut self, slot: SeqId, content: &Content, tokens: u32) {
        let full = tokens.min(content.lineage) / self.block_size;
        let i = self.slot_entry(slot);
        let done = self.stored_blocks[i];
        if full > done {
            self.stored_blocks[i] = full;
            self.write_through(content.key, done, full);
        }
    }

    /// Looks the blocks of `content` after HBM's `cached` tokens up in the
    /// tiers for a sequence in slot `slot` admitted at `now` with `tokens`
    /// to prefill, and loads what it finds unless `recompute_ns` (the cost
    /// of prefilling `n` tokens after the cached ones) says recomputing is
    /// faster and the plan asks for that comparison.
    pub(super) fn admit(
        &mut self,
        slot: SeqId,
        content: Option<&Content>,
        tokens: u32,
        cached: u32,
        now: SimTime,
        recompute_ns: impl Fn(u32) -> u64,
    ) -> Loaded {
        let i = self.slot_entry(slot);
        self.ready[i] = SimTime::ZERO;
        self.stored_blocks[i] = cached / self.block_size;
        let none = Loaded {
            tokens: 0,
            ready: now,
        };
        let Some(content) = content else {
            return none;
        };
        self.settle(now);
        let bs = self.block_size;
        let most = content.reusable.min(tokens.saturating_sub(1)) / bs;
        let mut per = [0u32; 3];
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        self.walk(content.key, cached / bs, most, now, |at, k| {
            per[k.index()] += 1;
            found.push((at, k));
        });
        self.found = found;
        let blocks = self.found.len() as u32;
        if blocks == 0 {
            return none;
        }
        let mut ready = now;
        for k in TierKind::ALL {
            if per[k.index()] > 0 {
                ready = ready.max(self.load_end(k, u64::from(per[k.index()]), now, false));
            }
        }
        let loaded = blocks * bs;
        if self.plan.load_if_cheaper && ready.as_nanos() - now.as_nanos() >= recompute_ns(loaded) {
            self.totals.loads_declined += 1;
            return none;
        }
        for k in TierKind::ALL {
            let n = per[k.index()];
            if n == 0 {
                continue;
            }
            self.load_end(k, u64::from(n), now, true);
            self.totals.hit_tokens[k.index()] += u64::from(n * bs);
            self.totals.loaded_bytes[k.index()] += u64::from(n) * self.block_bytes;
        }
        // Touch what was read, in block order (vLLM's `touch` on lookup),
        // where the walk found it: nothing was stored, completed or evicted
        // since.
        for &(at, k) in &self.found {
            match k {
                TierKind::Remote => {
                    let mut r = self.remote.as_ref().expect("a remote tier").borrow_mut();
                    r.store.touch_found(at);
                    r.store.count_loaded(1);
                }
                _ => {
                    let store = self.local[k.index()].as_mut().expect("a local tier");
                    store.touch_found(at);
                    store.count_loaded(1);
                }
            }
        }
        self.stored_blocks[i] = cached / bs + blocks;
        self.totals.loads += 1;
        match self.plan.load {
            LoadMode::Async => self.ready[i] = ready,
            LoadMode::Layerwise => self.step_load_end = self.step_load_end.max(ready),
        }
        Loaded {
            tokens: loaded,
            ready,
        }
    }

    /// The end of a run at `end`: stores still in flight complete, and the
    /// links' and tiers' counters go to the totals.
    pub(super) fn finish(&mut self, end: SimTime) {
        self.flush(end);
        self.settle(SimTime::MAX);
        let busy = |c: &Channel| c.busy_ns;
        self.totals.link_busy_ns = [
            busy(&self.h2d),
            busy(&self.d2h),
            busy(&self.ssd_read).max(busy(&self.ssd_write)),
            busy(&self.nic_in).max(busy(&self.nic_out)),
        ];
        for k in [TierKind::Host, TierKind::Ssd] {
            if let Some(s) = &self.local[k.index()] {
                self.totals.evicted_blocks[k.index()] = s.counters.evicted_blocks;
                self.totals.resident_blocks[k.index()] = s.resident();
            }
        }
        // A shared remote tier's evictions are the deployment's, counted once
        // by the cluster; a replica alone owns its remote tier.
        if let Some(r) = &self.remote {
            if Rc::strong_count(r) == 1 {
                let r = r.borrow();
                self.totals.evicted_blocks[TierKind::Remote.index()] =
                    r.store.counters.evicted_blocks;
                self.totals.resident_blocks[TierKind::Remote.index()] = r.store.resident();
            }
        }
        self.totals.parts = 1;
    }

    /// Checks every tier's bookkeeping (tests and `invariants`).
    pub(super) fn check(&self) -> Result<(), String> {
        for s in self.local.iter().flatten() {
            s.check()?;
        }
        if let Some(r) = &self.remote {
            r.borrow().store.check()?;
        }
        Ok(())
    }

    /// The layer-by-layer pipeline of a load of `load_ns` with a compute of
    /// `compute_ns` over `layers` layers: `T_l/L + (L-1)/L × max(T_l, T_c) +
    /// T_c/L` (a two-stage pipeline with one stage of lead), rounded up.
    pub(super) fn pipelined(load_ns: u64, compute_ns: u64, layers: u32) -> u64 {
        let l = u128::from(layers.max(1));
        let (tl, tc) = (u128::from(load_ns), u128::from(compute_ns));
        let total = (tl + (l - 1) * tl.max(tc) + tc).div_ceil(l);
        u64::try_from(total).unwrap_or(u64::MAX)
    }
}

impl<C: CostModel> Engine<'_, C> {
    /// The duration of the step being launched, whose compute takes
    /// `compute`: at least until HBM's victims are copied down (on-evict),
    /// and with the loads of its admissions pipelined layer by layer
    /// (`layerwise`).
    pub(super) fn tier_step_time(&mut self, compute: SimDuration) -> SimDuration {
        let now = self.now;
        let layers = self.scenario.model.layers;
        let Some(t) = self.tiers.as_mut() else {
            return compute;
        };
        if t.stores_hbm_victims() {
            if let Some(paged) = self.cache.as_paged_mut() {
                paged.take_evicted(&mut t.hbm_victims);
            }
            if !t.hbm_victims.is_empty() {
                t.hbm_evicted(now);
            }
        }
        let mut ns = compute.as_nanos();
        if t.step_load_end > now {
            let load = t.step_load_end.as_nanos() - now.as_nanos();
            ns = EngineTiers::pipelined(load, ns, layers);
        }
        if t.step_floor > now {
            ns = ns.max(t.step_floor.as_nanos() - now.as_nanos());
        }
        t.step_load_end = SimTime::ZERO;
        t.step_floor = SimTime::ZERO;
        SimDuration::from_nanos(ns)
    }

    /// Prefill time of `n` tokens after `cached` ones, alone in a step, in
    /// nanoseconds (what a loaded hit saves).
    pub(super) fn recompute_ns(&self, cached: u32, n: u32) -> u64 {
        let work = StepWork {
            prefill_tokens: n,
            prefill_seqs: 1,
            kv_read_bytes: self.layout.attended_bytes(cached),
            kv_write_bytes: u64::from(n) * self.layout.bytes_per_token(),
            attention_flops: self.layout.attention_flops(cached, n),
            ..StepWork::default()
        };
        self.cost.step_time(&work).as_nanos()
    }
}
