//! KV tiers below HBM: host memory, local SSD and a remote store shared by a
//! deployment's replicas, the links that reach them, and what each tier holds
//! (docs/ARCHITECTURE.md#kv-tiers; the engines each choice mirrors are in
//! docs/design/kv-tiers.md).
//!
//! A tier is an LRU set of block identities (the `(content key, block
//! index)` names of the prefix index, so a session's history, a shared system
//! prompt and a trace's hash-id chain are found the same way) with a byte
//! capacity. Tiers are *inclusive*: a block may be in HBM and in any tiers at
//! once, as vLLM's offloading connector, LMCache, SGLang's HiCache and
//! Dynamo's KVBM all keep copies.
//!
//! This module is time-free bookkeeping plus FIFO link arithmetic; the engine
//! (`src/engine/tiers.rs`) decides when blocks go down and come back up.
//!
//! # Links
//!
//! Every link direction is a FIFO [`Channel`]: a transfer issued at `t` starts
//! at `max(t, free)` on every channel of its path and occupies them all for
//! `latency + blocks × per_block + bytes / rate` at the slowest rate on the
//! path. FIFO gives the link its whole bandwidth at every instant (bytes and
//! utilisation are those of fair sharing; the order in which concurrent
//! transfers finish differs) at O(1) per transfer and without re-timing
//! transfers in flight, as one DMA stream copying in submission order does
//! (vLLM's `transfer_async` submits loads and stores in order). Times are
//! integer nanoseconds: `ceil(bytes × 1e9 / rate)` in `u128`, exact.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::BlockIdent;
use super::ident_map::{IdentMap, Reader};
use super::lru::LruList;
use crate::units::{NANOS_PER_SEC, SimTime};

/// Which tier: the order is the lookup order, fastest first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TierKind {
    /// Host DRAM of the replica's node, over PCIe (vLLM's CPU offloading,
    /// LMCache `local_cpu`, HiCache L2, KVBM G2).
    Host,
    /// Local NVMe, through host memory and PCIe (LMCache `local_disk`,
    /// KVBM G3).
    Ssd,
    /// A store shared by every replica of the deployment, over each replica's
    /// NIC (Mooncake Store, HiCache L3, KVBM G4, LMCache `remote_url`).
    Remote,
}

impl TierKind {
    /// Every kind, in lookup order (the index of a tier in per-tier arrays).
    pub const ALL: [TierKind; 3] = [TierKind::Host, TierKind::Ssd, TierKind::Remote];

    /// The name used in scenario files and metric names.
    pub const fn name(self) -> &'static str {
        match self {
            TierKind::Host => "host",
            TierKind::Ssd => "ssd",
            TierKind::Remote => "remote",
        }
    }

    /// Index into per-tier arrays.
    pub const fn index(self) -> usize {
        match self {
            TierKind::Host => 0,
            TierKind::Ssd => 1,
            TierKind::Remote => 2,
        }
    }
}

/// What goes down into a tier, and when.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorePolicy {
    /// Every full block of named content (prompt and generated tokens) as soon
    /// as it is computed, asynchronously: vLLM's offloading connector
    /// (`_get_reqs_to_store` each step), LMCache (every backend), HiCache
    /// `write_through`, KVBM.
    #[default]
    WriteThrough,
    /// Only blocks evicted from the tier above (HBM's prefix cache for the
    /// first tier), copied before their space is reused, so the copy is on the
    /// critical path of the step that needed the space: HiCache `write_back`
    /// (`writing_check(write_back=True)` waits). Preempted sequences' blocks
    /// go down this way when the prefix cache evicts them.
    OnEvict,
}

/// Where a hit's transfer time is charged.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadMode {
    /// The request waits, holding its blocks, until its load completes, then
    /// prefills the rest; other requests keep running (vLLM's
    /// `WAITING_FOR_REMOTE_KVS`, KVBM): its TTFT pays the whole transfer.
    #[default]
    Async,
    /// The load of the requests admitted in a step is pipelined layer by layer
    /// with the step's compute (HiCache's compute-transfer overlap, LMCache
    /// `use_layerwise`, CachedAttention): the step takes
    /// `T_l/L + (L-1)/L × max(T_l, T_c) + T_c/L` over `L` layers, so a load
    /// shorter than the compute costs one layer's share of it.
    Layerwise,
}

/// One validated tier.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct TierConfig {
    /// Which tier.
    pub kind: TierKind,
    /// Bytes it holds (per replica; for `remote`, for the whole deployment).
    pub capacity_bytes: u64,
    /// Media read bandwidth, bytes per second (`u64::MAX`: the link bounds it).
    pub read_bps: u64,
    /// Media write bandwidth, bytes per second (`u64::MAX`: the link bounds it).
    pub write_bps: u64,
    /// Fixed cost of each transfer to or from it, nanoseconds.
    pub latency_ns: u64,
    /// What goes down into it.
    pub store: StorePolicy,
}

/// The links of one replica (already multiplied by its tensor-parallel
/// degree: each GPU moves its own shard over its own link).
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct Links {
    /// PCIe, each direction, bytes per second.
    pub pcie_bps: u64,
    /// Fixed cost per block copied over PCIe, nanoseconds.
    pub pcie_block_ns: u64,
    /// The NIC that reaches the remote tier, bytes per second.
    pub nic_bps: u64,
    /// Fixed cost of each transfer over the NIC, nanoseconds.
    pub nic_latency_ns: u64,
}

/// Every tier of a scenario and how hits load.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct TierPlan {
    /// Per kind, in [`TierKind::ALL`] order.
    pub tiers: [Option<TierConfig>; 3],
    /// The replica's links.
    pub links: Links,
    /// Where a hit's transfer time is charged.
    pub load: LoadMode,
    /// Load a hit only if its transfer (queue included) ends before the cost
    /// model could recompute those tokens (Mooncake's rule, FAST'25 §2.2 and
    /// Algorithm 1); vLLM, LMCache and SGLang load every hit.
    pub load_if_cheaper: bool,
}

impl TierPlan {
    /// The tier of `kind`, if configured.
    pub fn tier(&self, kind: TierKind) -> Option<&TierConfig> {
        self.tiers[kind.index()].as_ref()
    }

    /// The configured tiers, fastest first.
    pub fn configured(&self) -> impl Iterator<Item = &TierConfig> {
        self.tiers.iter().flatten()
    }
}

/// One direction of a link (or a store's media bandwidth): transfers queue on
/// it first in, first out.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Channel {
    /// When the last transfer queued on it ends.
    pub free_at: SimTime,
    /// Nanoseconds it has been busy.
    pub busy_ns: u64,
    /// Bytes it has moved.
    pub bytes: u64,
}

/// A transfer's shape: what it moves and at what rate.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Blocks moved.
    pub blocks: u64,
    /// Bytes per block.
    pub block_bytes: u64,
    /// The slowest rate on its path, bytes per second (> 0).
    pub rate_bps: u64,
    /// Fixed cost of the transfer, nanoseconds.
    pub latency_ns: u64,
    /// Fixed cost per block, nanoseconds.
    pub per_block_ns: u64,
}

impl Transfer {
    /// Bytes moved.
    pub fn bytes(&self) -> u64 {
        self.blocks.saturating_mul(self.block_bytes)
    }

    /// How long it occupies its path: `latency + blocks × per_block +
    /// ceil(bytes × 1e9 / rate)` nanoseconds, saturating at `u64::MAX`.
    pub fn duration_ns(&self) -> u64 {
        let bytes = u128::from(self.blocks) * u128::from(self.block_bytes);
        let rate = u128::from(self.rate_bps.max(1));
        let wire = (bytes * u128::from(NANOS_PER_SEC)).div_ceil(rate);
        let fixed =
            u128::from(self.latency_ns) + u128::from(self.blocks) * u128::from(self.per_block_ns);
        u64::try_from(wire + fixed).unwrap_or(u64::MAX)
    }
}

/// When a transfer issued at `now` on `path` would end, without reserving it.
pub fn transfer_end(now: SimTime, path: &[&Channel], t: &Transfer) -> SimTime {
    let start = path.iter().map(|c| c.free_at).fold(now, SimTime::max);
    SimTime::from_nanos(start.as_nanos().saturating_add(t.duration_ns()))
}

/// Reserves a transfer issued at `now` on every channel of `path` and
/// returns when it ends.
pub fn reserve(now: SimTime, path: &mut [&mut Channel], t: &Transfer) -> SimTime {
    let start = path.iter().map(|c| c.free_at).fold(now, SimTime::max);
    let dur = t.duration_ns();
    let end = SimTime::from_nanos(start.as_nanos().saturating_add(dur));
    for c in path.iter_mut() {
        c.free_at = end;
        c.busy_ns = c.busy_ns.saturating_add(dur);
        c.bytes = c.bytes.saturating_add(t.bytes());
    }
    end
}

/// Counters of one tier.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TierCounters {
    /// Blocks whose store completed (written into the tier).
    pub stored_blocks: u64,
    /// Blocks read out of the tier for hits.
    pub loaded_blocks: u64,
    /// Blocks evicted to make room.
    pub evicted_blocks: u64,
}

/// The blocks one tier holds: an LRU set of identities with a block
/// capacity, and the stores in flight into it (in completion order: every
/// store into a tier queues on the same FIFO channel, so completions are in
/// issue order).
///
/// Each identity resident or being written owns a slot; the map gives its
/// slot, marked [`PENDING`] while its store is in flight, so a lookup of a
/// resident block reads the map alone.
#[derive(Clone, Debug)]
pub struct TierStore {
    capacity_blocks: u64,
    /// Identity -> its slot, `| PENDING` while being written.
    map: IdentMap,
    /// Per slot: the identity there.
    ident: Vec<BlockIdent>,
    /// Per slot being written: when its store completes.
    done: Vec<SimTime>,
    free_slots: Vec<u32>,
    /// Resident slots, least recently used (evicted first) to most.
    lru: LruList,
    /// Stores in flight, in completion order: their slots.
    pending: VecDeque<u32>,
    /// What happened in it.
    pub counters: TierCounters,
}

/// Reads a tier's identities one after another ([`TierStore::reader`]).
pub struct TierReader<'a> {
    store: &'a TierStore,
    map: Reader<'a>,
    now: SimTime,
}

/// Where a [`TierReader`] found a visible identity, for touching it without
/// looking it up again ([`TierStore::touch_found`]); valid until the tier
/// next stores, completes or evicts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Found(u32);

impl TierReader<'_> {
    /// Where `ident` is, if it is visible at the reader's instant: resident,
    /// or written by then.
    #[inline]
    pub fn find(&mut self, ident: BlockIdent) -> Option<Found> {
        let v = self.map.get(ident)?;
        (v & PENDING == 0 || self.store.done[(v & !PENDING) as usize] <= self.now)
            .then_some(Found(v))
    }
}

/// The map's mark of a slot whose store is in flight (not yet visible to
/// lookups: vLLM `complete_store` marks a block ready; Mooncake `PutEnd`).
const PENDING: u32 = 1 << 31;

impl TierStore {
    /// An empty tier holding at most `capacity_blocks` blocks.
    pub fn new(capacity_blocks: u64) -> Self {
        TierStore {
            capacity_blocks,
            map: IdentMap::default(),
            ident: Vec::new(),
            done: Vec::new(),
            free_slots: Vec::new(),
            lru: LruList::default(),
            pending: VecDeque::new(),
            counters: TierCounters::default(),
        }
    }

    /// Blocks it can hold.
    pub fn capacity_blocks(&self) -> u64 {
        self.capacity_blocks
    }

    /// Blocks resident now.
    pub fn resident(&self) -> u64 {
        self.lru.len()
    }

    /// Stores in flight.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether `ident` is resident (visible to lookups).
    #[inline]
    pub fn contains(&self, ident: BlockIdent) -> bool {
        self.map.get(ident).is_some_and(|v| v & PENDING == 0)
    }

    /// A reader of identity after identity at `now`, as a reader that
    /// cannot complete stores sees them (a router's view: resident, or
    /// written by then), probing the map once per chunk of a content's
    /// blocks.
    pub fn reader(&self, now: SimTime) -> TierReader<'_> {
        TierReader {
            store: self,
            map: self.map.reader(),
            now,
        }
    }

    /// Queues a store of `ident` that completes at `done` (which must not be
    /// before the stores already queued). Returns false, doing nothing, for a
    /// duplicate, a tier of no capacity, or a tier already tracking 2^31
    /// blocks resident or being written (the most its slots can name; their
    /// bookkeeping alone would take tens of gigabytes).
    pub fn begin_store(&mut self, ident: BlockIdent, done: SimTime) -> bool {
        if self.capacity_blocks == 0 {
            return false;
        }
        let slot = match self.free_slots.last() {
            Some(&s) => s,
            None => match u32::try_from(self.ident.len()) {
                Ok(s) if s < PENDING => s,
                _ => {
                    invariant_violated!("a tier tracking 2^31 blocks");
                    return false;
                }
            },
        };
        if !self.map.insert_new(ident, slot | PENDING) {
            return false;
        }
        invariant!(
            self.pending
                .back()
                .is_none_or(|&p| self.done[p as usize] <= done)
        );
        if self.free_slots.pop().is_none() {
            self.ident.push(ident);
            self.done.push(done);
        } else {
            self.ident[slot as usize] = ident;
            self.done[slot as usize] = done;
        }
        self.pending.push_back(slot);
        true
    }

    /// Queues stores of `idents`, in order, all to complete at the instant
    /// [`end_stores`](Self::end_stores) sets: keeps in `idents` those
    /// queued, dropping those resident, being written or earlier in
    /// `idents` (and every one, in a tier of no capacity). The tier
    /// deduplicates by identity, as HiCache writes to L3 "only data not
    /// already present" and vLLM's `prepare_store` skips stored blocks.
    pub fn begin_stores(&mut self, idents: &mut Vec<BlockIdent>) {
        // Until `end_stores`, the latest instant: never due, and in order.
        idents.retain(|&ident| self.begin_store(ident, SimTime::MAX));
    }

    /// The last `n` stores queued (by [`begin_stores`](Self::begin_stores))
    /// complete at `done`, which must not be before the stores queued
    /// ahead of them.
    pub fn end_stores(&mut self, n: usize, done: SimTime) {
        let from = self.pending.len() - n;
        invariant!(
            from == 0 || self.done[self.pending[from - 1] as usize] <= done,
            "stores complete out of order"
        );
        for &slot in self.pending.range(from..) {
            self.done[slot as usize] = done;
        }
    }

    /// Completes every store due by `now`, evicting the least recently used
    /// blocks to make room; the victims are appended to `evicted` (for a
    /// tier below that stores on eviction).
    pub fn complete(&mut self, now: SimTime, evicted: &mut Vec<BlockIdent>) {
        while let Some(&slot) = self.pending.front() {
            if self.done[slot as usize] > now {
                break;
            }
            self.pending.pop_front();
            if self.lru.len() >= self.capacity_blocks {
                if let Some(victim) = self.evict_lru() {
                    evicted.push(victim);
                }
            }
            self.map.set(self.ident[slot as usize], slot);
            self.lru.push_back(slot);
            self.counters.stored_blocks += 1;
        }
    }

    /// Moves a resident block to the most recently used end (a lookup hit or
    /// a load touches it, as vLLM's `LRUOffloadingManager.touch` does), where
    /// a reader of this tier found it since the tier last stored, completed
    /// or evicted: no second lookup. A block still being written stays put.
    #[inline]
    pub fn touch_found(&mut self, found: Found) {
        let Found(v) = found;
        if v & PENDING == 0 {
            self.lru.unlink(v);
            self.lru.push_back(v);
        }
    }

    /// Counts blocks read out for a hit.
    pub fn count_loaded(&mut self, blocks: u64) {
        self.counters.loaded_blocks += blocks;
    }

    fn evict_lru(&mut self) -> Option<BlockIdent> {
        let slot = self.lru.pop_front()?;
        let ident = self.ident[slot as usize];
        self.map.remove(ident);
        self.free_slots.push(slot);
        self.counters.evicted_blocks += 1;
        Some(ident)
    }

    /// Checks the tier's bookkeeping: resident blocks within capacity, the
    /// LRU list holding exactly the resident identities once each, every
    /// pending store in the map as pending, completions in order. O(blocks):
    /// for tests and the `invariants` feature.
    pub fn check(&self) -> Result<(), String> {
        let resident = self.lru.len();
        if resident > self.capacity_blocks {
            return Err(format!(
                "{resident} blocks resident over a capacity of {}",
                self.capacity_blocks
            ));
        }
        for slot in self.lru.order()? {
            let ident = self.ident[slot as usize];
            if self.map.get(ident) != Some(slot) {
                return Err(format!(
                    "slot {slot} holds {ident:?}, which the map does not place there"
                ));
            }
        }
        for &slot in &self.pending {
            let ident = self.ident[slot as usize];
            if self.map.get(ident) != Some(slot | PENDING) {
                return Err(format!(
                    "slot {slot} is being written with {ident:?}, which the map does not mark so"
                ));
            }
        }
        if self.map.len() as u64 != resident + self.pending.len() as u64 {
            return Err("the map holds identities that are neither resident nor pending".into());
        }
        if self
            .pending
            .iter()
            .zip(self.pending.iter().skip(1))
            .any(|(&a, &b)| self.done[a as usize] > self.done[b as usize])
        {
            return Err("stores complete out of order".into());
        }
        Ok(())
    }

    /// The resident identities from least to most recently used (tests).
    pub fn lru_order(&self) -> Vec<BlockIdent> {
        let slots = self.lru.order().unwrap_or_default();
        slots.iter().map(|&s| self.ident[s as usize]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ns: u64) -> SimTime {
        SimTime::from_nanos(ns)
    }

    #[test]
    fn a_transfer_takes_latency_per_block_cost_and_bytes_over_rate() {
        // 64 blocks of 2 MiB at 51.2 GB/s: 134,217,728 B / 51.2e9 B/s =
        // 2,621,440 ns exactly; 3.3 us per block adds 211,200 ns.
        let x = Transfer {
            blocks: 64,
            block_bytes: 2 << 20,
            rate_bps: 51_200_000_000,
            latency_ns: 0,
            per_block_ns: 0,
        };
        assert_eq!(x.duration_ns(), 2_621_440);
        let y = Transfer {
            per_block_ns: 3_300,
            latency_ns: 10_000,
            ..x
        };
        assert_eq!(y.duration_ns(), 2_621_440 + 211_200 + 10_000);
        // A byte at 3 B/s rounds up to a whole nanosecond.
        let z = Transfer {
            blocks: 1,
            block_bytes: 1,
            rate_bps: 3,
            latency_ns: 0,
            per_block_ns: 0,
        };
        assert_eq!(z.duration_ns(), 333_333_334);
    }

    #[test]
    fn transfers_queue_first_in_first_out_on_every_channel_of_a_path() {
        let (mut a, mut b) = (Channel::default(), Channel::default());
        let x = Transfer {
            blocks: 1,
            block_bytes: 1_000,
            rate_bps: 1_000_000_000,
            latency_ns: 0,
            per_block_ns: 0,
        };
        assert_eq!(reserve(t(0), &mut [&mut a], &x), t(1_000));
        // The second starts when the first ends, on both channels of its path.
        assert_eq!(transfer_end(t(500), &[&a, &b], &x), t(2_000));
        assert_eq!(reserve(t(500), &mut [&mut a, &mut b], &x), t(2_000));
        assert_eq!((a.busy_ns, a.bytes, b.busy_ns), (2_000, 2_000, 1_000));
        // An idle link starts at once.
        assert_eq!(reserve(t(5_000), &mut [&mut b], &x), t(6_000));
    }

    #[test]
    fn stores_become_visible_when_they_complete_and_lru_evicts_the_oldest() {
        let mut s = TierStore::new(2);
        let mut evicted = Vec::new();
        assert!(s.begin_store((1, 0), t(10)));
        assert!(
            !s.begin_store((1, 0), t(10)),
            "a pending block is not stored twice"
        );
        assert!(s.begin_store((1, 1), t(20)));
        assert!(s.begin_store((1, 2), t(30)));
        s.complete(t(15), &mut evicted);
        assert!(s.contains((1, 0)) && !s.contains((1, 1)));
        s.complete(t(30), &mut evicted);
        assert_eq!(evicted, vec![(1, 0)], "the oldest went to make room");
        assert_eq!(s.lru_order(), vec![(1, 1), (1, 2)]);
        let found = s.reader(t(30)).find((1, 1)).expect("resident");
        s.touch_found(found);
        assert_eq!(s.lru_order(), vec![(1, 2), (1, 1)]);
        assert!(s.begin_store((2, 0), t(40)));
        s.complete(t(40), &mut evicted);
        assert_eq!(evicted, vec![(1, 0), (1, 2)]);
        assert_eq!(s.counters.stored_blocks, 4);
        assert_eq!(s.counters.evicted_blocks, 2);
        s.check().unwrap();
        let mut none = TierStore::new(0);
        assert!(!none.begin_store((1, 0), t(0)));
    }

    #[test]
    fn a_batch_of_stores_keeps_new_blocks_once_in_order_and_ends_together() {
        let mut s = TierStore::new(8);
        let mut evicted = Vec::new();
        assert!(s.begin_store((1, 0), t(5)));
        s.complete(t(5), &mut evicted);
        assert!(s.begin_store((1, 1), t(10)));
        let mut batch = vec![(2, 0), (1, 0), (2, 1), (1, 1), (2, 0), (3, 0)];
        s.begin_stores(&mut batch);
        assert_eq!(
            batch,
            vec![(2, 0), (2, 1), (3, 0)],
            "resident, pending and repeated blocks are dropped"
        );
        s.end_stores(batch.len(), t(20));
        s.check().unwrap();
        let mut reader = s.reader(t(19));
        let mut visible = |ident| reader.find(ident).is_some();
        assert!(visible((1, 0)) && visible((1, 1)) && !visible((2, 0)));
        s.complete(t(20), &mut evicted);
        assert_eq!(s.lru_order(), vec![(1, 0), (1, 1), (2, 0), (2, 1), (3, 0)]);
        let mut none = TierStore::new(0);
        let mut batch = vec![(1, 0)];
        none.begin_stores(&mut batch);
        assert!(batch.is_empty(), "a tier of no capacity stores nothing");
    }
}
