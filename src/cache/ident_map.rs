//! A map from block identities to small values (a block id, a tier's slot)
//! that keeps the entries of [`CHUNK`] consecutive indices of one key in one
//! hash bucket.
//!
//! Every user of a block identity walks a content's blocks in index order:
//! an admission looks a prompt's blocks up from the first until a miss, a
//! decoding sequence publishes its blocks one after the other, a finished
//! sequence's blocks reach the prefix cache's LRU list together and are
//! evicted together, and a tier stores and evicts them in the order they were
//! computed. A map with one bucket per block pays a cache miss for each of
//! those (the prefix index and the tiers hold tens of thousands of blocks,
//! megabytes of buckets); here one miss brings the next fifteen blocks'
//! entries with it (a chunk's values fill one 64-byte line).
//!
//! The map is only ever looked up, never iterated in an order that reaches
//! results, so its layout cannot influence them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasherDefault;

use super::{BlockIdent, IdentHasher};

/// Consecutive indices of one key per bucket.
pub(crate) const CHUNK: u32 = 16;

/// A value slot holding nothing.
const ABSENT: u32 = u32::MAX;

/// The values of one key's indices `[base, base + CHUNK)`.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    vals: [u32; CHUNK as usize],
    /// Values present.
    live: u32,
}

impl Chunk {
    const EMPTY: Chunk = Chunk {
        vals: [ABSENT; CHUNK as usize],
        live: 0,
    };
}

/// Block identity -> `u32` value (any but `u32::MAX`).
#[derive(Clone, Debug, Default)]
pub(crate) struct IdentMap {
    chunks: HashMap<BlockIdent, Chunk, BuildHasherDefault<IdentHasher>>,
    len: usize,
}

/// The chunk holding `ident` and its place in it.
#[inline]
fn split(ident: BlockIdent) -> (BlockIdent, usize) {
    ((ident.0, ident.1 / CHUNK), (ident.1 % CHUNK) as usize)
}

impl IdentMap {
    /// The value of `ident`, if any.
    #[inline]
    pub(crate) fn get(&self, ident: BlockIdent) -> Option<u32> {
        let (at, i) = split(ident);
        let v = self.chunks.get(&at)?.vals[i];
        (v != ABSENT).then_some(v)
    }

    /// A reader of this map ([`Reader`]).
    pub(crate) fn reader(&self) -> Reader<'_> {
        Reader {
            map: self,
            at: None,
            chunk: None,
        }
    }

    /// Identities with a value.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Gives `ident` the value `v` unless it has one: returns whether it did.
    #[inline(always)]
    pub(crate) fn insert_new(&mut self, ident: BlockIdent, v: u32) -> bool {
        invariant!(v != ABSENT, "{v} is the map's absent marker");
        let (at, i) = split(ident);
        let chunk = self.chunks.entry(at).or_insert(Chunk::EMPTY);
        if chunk.vals[i] != ABSENT {
            return false;
        }
        chunk.vals[i] = v;
        chunk.live += 1;
        self.len += 1;
        true
    }

    /// Gives `ident` the value `v`, replacing any it had.
    #[inline]
    pub(crate) fn set(&mut self, ident: BlockIdent, v: u32) {
        invariant!(v != ABSENT, "{v} is the map's absent marker");
        let (at, i) = split(ident);
        let chunk = self.chunks.entry(at).or_insert(Chunk::EMPTY);
        if chunk.vals[i] == ABSENT {
            chunk.live += 1;
            self.len += 1;
        }
        chunk.vals[i] = v;
    }

    /// Takes `ident`'s value out, if it has one. A chunk left empty goes,
    /// so the map holds no more buckets than it has live chunks.
    #[inline]
    pub(crate) fn remove(&mut self, ident: BlockIdent) -> Option<u32> {
        let (at, i) = split(ident);
        let Entry::Occupied(mut slot) = self.chunks.entry(at) else {
            return None;
        };
        let chunk = slot.get_mut();
        let v = std::mem::replace(&mut chunk.vals[i], ABSENT);
        if v == ABSENT {
            return None;
        }
        chunk.live -= 1;
        if chunk.live == 0 {
            slot.remove();
        }
        self.len -= 1;
        Some(v)
    }

    /// Forgets every identity.
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Every `(identity, value)`, in no particular order (tests).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = (BlockIdent, u32)> + '_ {
        self.chunks.iter().flat_map(|(&(key, c), chunk)| {
            (0..CHUNK).filter_map(move |i| {
                let v = chunk.vals[i as usize];
                (v != ABSENT).then_some(((key, c * CHUNK + i), v))
            })
        })
    }
}

/// A reader of one identity after another that keeps the last chunk it
/// probed: walking a content's blocks in order probes the map once per
/// chunk, not once per block.
pub(crate) struct Reader<'a> {
    map: &'a IdentMap,
    at: Option<BlockIdent>,
    chunk: Option<&'a Chunk>,
}

impl<'a> Reader<'a> {
    /// The value of `ident`, if any.
    #[inline]
    pub(crate) fn get(&mut self, ident: BlockIdent) -> Option<u32> {
        let (at, i) = split(ident);
        if self.at != Some(at) {
            self.at = Some(at);
            self.chunk = self.map.chunks.get(&at);
        }
        let v = self.chunk?.vals[i];
        (v != ABSENT).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn keeps_neighbours_in_one_chunk_and_drops_empty_ones() {
        let mut m = IdentMap::default();
        for idx in 0..CHUNK + 1 {
            assert!(m.insert_new((7, idx), idx));
        }
        assert!(!m.insert_new((7, 3), 99), "an identity keeps its value");
        assert_eq!((m.len(), m.chunks.len()), (17, 2));
        assert_eq!(m.remove((7, CHUNK)), Some(CHUNK));
        assert_eq!(m.chunks.len(), 1, "the emptied chunk goes");
        assert_eq!(m.remove((7, CHUNK)), None);
        m.set((7, 3), 30);
        assert_eq!(
            (m.get((7, 3)), m.get((8, 3)), m.len()),
            (Some(30), None, 16)
        );
        m.clear();
        assert_eq!((m.len(), m.get((7, 0))), (0, None));
    }

    proptest! {
        /// The map agrees with an ordinary one under any mix of operations.
        #[test]
        fn behaves_as_a_map(ops in prop::collection::vec(
            (0u8..4, 0u64..3, 0u32..40, 0u32..1000), 0..400))
        {
            let mut m = IdentMap::default();
            let mut want = BTreeMap::new();
            for (op, key, idx, v) in ops {
                let ident = (key, idx);
                match op {
                    0 => {
                        let fresh = !want.contains_key(&ident);
                        if fresh {
                            want.insert(ident, v);
                        }
                        prop_assert_eq!(m.insert_new(ident, v), fresh);
                    }
                    1 => {
                        want.insert(ident, v);
                        m.set(ident, v);
                    }
                    2 => prop_assert_eq!(m.remove(ident), want.remove(&ident)),
                    _ => prop_assert_eq!(m.get(ident), want.get(&ident).copied()),
                }
                // A reader over `v % 40` identities from `idx`, across keys.
                let mut reader = m.reader();
                for i in idx..idx + v % 40 {
                    let ident = (key + u64::from(i % 3 == 0), i);
                    prop_assert_eq!(reader.get(ident), want.get(&ident).copied());
                }
                prop_assert_eq!(m.len(), want.len());
            }
            let mut got: Vec<_> = m.entries().collect();
            got.sort_unstable();
            prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
            let live: u32 = m.chunks.values().map(|c| c.live).sum();
            prop_assert!(m.chunks.values().all(|c| c.live > 0));
            prop_assert_eq!(live as usize, m.len());
        }
    }
}
