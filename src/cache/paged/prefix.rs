//! The prefix-caching index of a paged cache: which physical block holds which
//! `(content key, block index)`, and the least-recently-used order of cached
//! blocks that no live sequence references.
//!
//! vLLM's automatic prefix caching hashes a block's tokens together with its
//! prefix; here a block's identity is given by the traffic model instead: the
//! `key` of the content it belongs to and its index within it. The map is only
//! ever looked up, never iterated, so its (deterministic) hash order cannot
//! influence results. The LRU list is intrusive (`prev`/`next` arrays indexed
//! by block id), so taking a block out of it on a hit, appending on release and
//! evicting the oldest are all O(1) and allocation-free in steady state.

use std::hash::Hasher;

use super::{BlockId, PagedCache};
use crate::cache::ident_map::IdentMap;
use crate::cache::lru::LruList;
use crate::cache::{BlockChains, CHAIN_KEY};

/// The identity of a published block: `(content key, block index)`.
pub(super) type Ident = crate::cache::BlockIdent;

/// A small multiplicative hasher for the identity map.
///
/// Keys are already well spread (content keys are drawn at random) so a
/// cryptographic hash buys nothing; unlike `RandomState` this one is the same in
/// every run, so even the map's memory layout is reproducible.
#[derive(Default, Clone, Copy)]
pub struct IdentHasher(u64);

impl Hasher for IdentHasher {
    fn finish(&self) -> u64 {
        // A final avalanche so the low bits the table indexes by depend on
        // every input bit.
        let mut z = self.0;
        z = (z ^ (z >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        z ^ (z >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A block's index when it is published under no identity.
const UNPUBLISHED: u32 = u32::MAX;

/// Published block identities and the LRU list of unreferenced cached blocks.
#[derive(Clone, Debug, Default)]
pub(super) struct PrefixIndex {
    /// Identity -> the block holding it.
    map: IdentMap,
    /// Per block id: the key and index of the identity it is published
    /// under; [`UNPUBLISHED`] as the index if none. Two arrays, so the check
    /// every release makes reads 4 bytes a block.
    ident_key: Vec<u64>,
    ident_idx: Vec<u32>,
    /// Unreferenced cached blocks, least recently released (evicted first)
    /// to most.
    lru: LruList,
    /// How blocks are named (a trace's hash-id chains, when attached:
    /// [`PagedCache::attach_chains`]).
    namer: BlockNamer,
    /// Identities evicted since the engine last took them, when a KV tier
    /// below HBM stores evicted blocks ([`PagedCache::log_evictions`]).
    evicted: Option<Vec<Ident>>,
}

/// Names block `idx` of content `key`: `(key, idx)`, except for a hash-id
/// chain's key ([`CHAIN_KEY`]), whose blocks are named by the chain's nodes
/// (see [`PagedCache::attach_chains`]). The prefix index and the KV tiers
/// below HBM name blocks alike, so a block found in one is found in the other.
#[derive(Clone, Debug, Default)]
pub struct BlockNamer {
    /// The chains and the cache blocks per trace block.
    chains: Option<(BlockChains, u32)>,
}

impl BlockNamer {
    /// A namer for cache blocks of `block_size` tokens, of a trace's
    /// `chains` if it has any.
    pub fn new(chains: Option<&BlockChains>, block_size: u32) -> Self {
        BlockNamer {
            chains: chains.map(|c| {
                let per = (c.block_tokens() / block_size.max(1)).max(1);
                (c.clone(), per)
            }),
        }
    }

    /// The identity of block `idx` of content `key`. One branch for every
    /// key but a chain's, so runs without chains pay nothing.
    #[inline]
    pub fn ident(&self, key: u64, idx: u32) -> Ident {
        if key & CHAIN_KEY == 0 {
            return (key, idx);
        }
        match &self.chains {
            Some((chains, per)) => {
                let at = (key & !CHAIN_KEY) as usize + (idx / per) as usize;
                (CHAIN_KEY | u64::from(chains.node(at)), idx % per)
            }
            None => {
                invariant_violated!("a chain content without the trace's chains");
                (key, idx)
            }
        }
    }
}

impl PagedCache {
    /// Names the blocks of [`Content::chain`](crate::cache::Content::chain)
    /// contents by `chains`: cache block `j` of a request whose chain starts
    /// at `offset` is published and looked up as `(CHAIN_KEY | node, j %
    /// per)`, where `node` is the table's entry `offset + j / per` and `per =
    /// block_tokens / block_size` cache blocks make one trace block. The
    /// scenario checks that the block size divides `block_tokens`. Without
    /// prefix caching it does nothing.
    pub fn attach_chains(&mut self, chains: &BlockChains) {
        let bs = self.bs;
        if let Some(px) = self.prefix.as_mut() {
            let block_tokens = u64::from(chains.block_tokens());
            invariant!(
                block_tokens % bs == 0,
                "block size {bs} does not divide the trace's {block_tokens}-token blocks"
            );
            let per = u32::try_from((block_tokens / bs).max(1)).unwrap_or(u32::MAX);
            px.namer = BlockNamer {
                chains: Some((chains.clone(), per)),
            };
        }
    }
}

impl PagedCache {
    /// From now on, remembers the identity of every cached block the prefix
    /// cache evicts, for a KV tier below HBM that stores evicted blocks
    /// ([`take_evicted`](Self::take_evicted) hands them over). Without prefix
    /// caching nothing is ever evicted.
    pub fn log_evictions(&mut self) {
        if let Some(px) = self.prefix.as_mut() {
            px.evicted.get_or_insert_with(Vec::new);
        }
    }

    /// Moves the identities evicted since the last call into `out`, oldest
    /// eviction first.
    pub fn take_evicted(&mut self, out: &mut Vec<Ident>) {
        if let Some(log) = self.prefix.as_mut().and_then(|px| px.evicted.as_mut()) {
            out.append(log);
        }
    }
}

impl PrefixIndex {
    /// An empty index.
    pub(super) fn new() -> Self {
        PrefixIndex::default()
    }

    /// Forgets every identity and cached block.
    pub(super) fn clear(&mut self) {
        self.map.clear();
        self.ident_key.clear();
        self.ident_idx.clear();
        self.lru.clear();
    }

    /// Reserves room for the bookkeeping of `ids` blocks.
    pub(super) fn reserve(&mut self, ids: usize) {
        self.ident_key.reserve(ids);
        self.ident_idx.reserve(ids);
        self.lru.reserve(ids);
    }

    /// Makes room for block `id`'s bookkeeping (ids are created densely).
    #[inline]
    pub(super) fn ensure(&mut self, id: BlockId) {
        if self.ident_idx.len() <= id as usize {
            self.grow_to(id);
        }
    }

    /// [`PrefixIndex::ensure`]'s rare part, out of line, making room for
    /// twice the ids (see [`LruList::ensure`]).
    #[cold]
    #[inline(never)]
    fn grow_to(&mut self, id: BlockId) {
        let len = crate::cache::lru::grown_len(id, self.ident_idx.len());
        self.ident_key.resize(len, 0);
        self.ident_idx.resize(len, UNPUBLISHED);
        self.lru.ensure(id);
    }

    /// The identity of block `idx` of content `key` ([`BlockNamer::ident`]).
    #[inline]
    pub(super) fn ident(&self, key: u64, idx: u32) -> Ident {
        self.namer.ident(key, idx)
    }

    /// The block published under `ident`, if any (referenced or cached).
    #[cfg(test)]
    pub(super) fn lookup(&self, ident: Ident) -> Option<BlockId> {
        self.map.get(ident)
    }

    /// Calls `f` with the blocks published as blocks `0..most` of content
    /// `key`, in order, stopping at the first identity not published;
    /// returns how many it found (an admission's hits). The map is read
    /// chunk by chunk ([`crate::cache::ident_map::Reader`]).
    #[inline]
    pub(super) fn leading(&self, key: u64, most: u32, mut f: impl FnMut(BlockId)) -> u32 {
        let mut reader = self.map.reader();
        for idx in 0..most {
            let Some(id) = reader.get(self.ident(key, idx)) else {
                return idx;
            };
            f(id);
        }
        most
    }

    /// Whether block `id` is published under some identity.
    #[inline]
    pub(super) fn is_published(&self, id: BlockId) -> bool {
        self.ident_idx
            .get(id as usize)
            .is_some_and(|&i| i != UNPUBLISHED)
    }

    /// Publishes block `id` under `ident` unless that identity is already
    /// taken (the first block to compute a prefix keeps it; a concurrent
    /// duplicate stays private). Returns whether it was published.
    #[inline]
    pub(super) fn publish(&mut self, ident: Ident, id: BlockId) -> bool {
        invariant!(!self.is_published(id), "block {id} published twice");
        if !self.map.insert_new(ident, id) {
            return false;
        }
        invariant!(
            ident.1 != UNPUBLISHED,
            "block index {} is the unpublished mark",
            ident.1
        );
        self.ensure(id);
        self.ident_key[id as usize] = ident.0;
        self.ident_idx[id as usize] = ident.1;
        true
    }

    /// Unreferenced cached blocks.
    pub(super) fn cached(&self) -> u64 {
        self.lru.len()
    }

    /// Appends an unreferenced published block as the most recently used.
    pub(super) fn push_lru(&mut self, id: BlockId) {
        invariant!(self.is_published(id));
        self.lru.push_back(id);
    }

    /// Takes a cached block out of the LRU list (a hit references it again).
    pub(super) fn unlink(&mut self, id: BlockId) {
        self.lru.unlink(id);
    }

    /// Evicts the least recently used cached block: unlinks it and forgets
    /// its identity, so it is an ordinary free block again.
    #[inline]
    pub(super) fn evict(&mut self) -> Option<BlockId> {
        let id = self.lru.pop_front()?;
        let idx = std::mem::replace(&mut self.ident_idx[id as usize], UNPUBLISHED);
        invariant!(idx != UNPUBLISHED, "cached block {id} is not published");
        let ident = (self.ident_key[id as usize], idx);
        self.map.remove(ident);
        if let Some(log) = self.evicted.as_mut() {
            log.push(ident);
        }
        Some(id)
    }

    /// Identities published, as `(ident, block)` pairs sorted by identity
    /// (test helper: sorting makes the map's order irrelevant).
    #[cfg(test)]
    pub(super) fn published(&self) -> Vec<(Ident, BlockId)> {
        let mut v: Vec<_> = self.map.entries().collect();
        v.sort_unstable();
        v
    }

    /// The cached blocks from least to most recently used (test helper).
    #[cfg(test)]
    pub(super) fn lru(&self) -> Vec<BlockId> {
        self.lru.order().expect("a consistent LRU list")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_oldest_and_unlinks_anywhere() {
        let mut p = PrefixIndex::new();
        for id in 0..4 {
            assert!(p.publish((1, id), id));
            p.push_lru(id);
        }
        assert!(!p.publish((1, 0), 9), "an identity keeps its first block");
        p.unlink(2);
        assert_eq!(p.lru(), vec![0, 1, 3]);
        p.unlink(0);
        p.unlink(3);
        assert_eq!(p.lru(), vec![1]);
        p.push_lru(3);
        assert_eq!(p.evict(), Some(1));
        assert_eq!(p.lookup((1, 1)), None);
        assert_eq!(p.lookup((1, 3)), Some(3));
        assert_eq!(p.evict(), Some(3));
        assert_eq!(p.evict(), None);
        assert_eq!(p.cached(), 0);
        assert_eq!(p.published(), vec![((1, 0), 0), ((1, 2), 2)]);
    }

    #[test]
    fn chain_contents_are_named_by_their_nodes_and_others_by_key() {
        let mut p = PrefixIndex::new();
        // Two chains: [7, 8] at offset 0 and [7, 9] at offset 2; 4 cache
        // blocks per trace block.
        p.namer = BlockNamer {
            chains: Some((BlockChains::new(vec![7, 8, 7, 9], 64), 4)),
        };
        let a = crate::cache::Content::chain(0, 128).key;
        let b = crate::cache::Content::chain(2, 128).key;
        for j in 0..4 {
            assert_eq!(p.ident(a, j), (CHAIN_KEY | 7, j));
            assert_eq!(p.ident(a, j), p.ident(b, j), "block {j} is shared");
        }
        assert_eq!(p.ident(a, 5), (CHAIN_KEY | 8, 1));
        assert_eq!(p.ident(b, 5), (CHAIN_KEY | 9, 1));
        // Session and system-prompt keys are untouched.
        assert_eq!(p.ident(1 << 63 | 5, 3), (1 << 63 | 5, 3));
        assert_eq!(p.ident(42, 9), (42, 9));
    }
}
