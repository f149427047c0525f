//! The free holes of a contiguous address space, indexed for first-fit.
//!
//! A hole is a maximal run of free granules, `(start, len)`. The set is kept
//! in a treap ordered by `start` whose every node also records the largest `len`
//! in its subtree. That one augmentation is what makes first-fit O(log n): the
//! descent goes left whenever the left subtree holds a big enough hole, so it
//! finds the *lowest-address* fitting hole, not merely some fitting hole. A
//! `BTreeMap<start, len>` would give the same ordering but first-fit would be a
//! linear scan over the holes, and the `KvCache` contract asks for O(log n).
//!
//! Priorities are a hash of the key, not random draws, so the tree shape (and so
//! nothing at all) depends on anything but the sequence of operations: runs stay
//! reproducible. Nodes live in an arena (`Vec`) with a free list, so steady-state
//! operation allocates nothing.
//!
//! Coalescing is the caller's job (see `ContiguousCache`); this type only stores
//! what it is given, and debug-asserts that keys are unique.

/// Index of a node in the arena; `NIL` is the empty tree.
type Link = u32;

/// The empty subtree.
const NIL: Link = u32::MAX;

/// One hole and the bookkeeping of its subtree.
#[derive(Copy, Clone, Debug)]
struct Node {
    /// First free granule of the hole (the ordering key).
    start: u64,
    /// Free granules in the hole (> 0).
    len: u64,
    /// Heap priority: a hash of `start`, so shapes are deterministic.
    prio: u64,
    /// Largest `len` in this node's subtree (itself included).
    max_len: u64,
    /// Subtree of lower addresses.
    left: Link,
    /// Subtree of higher addresses.
    right: Link,
}

/// Address-ordered free holes with O(log n) first-fit, predecessor and update,
/// and O(1) largest hole and count.
#[derive(Clone, Debug)]
pub(super) struct Holes {
    /// Arena of nodes; entries listed in `spare` are unused.
    nodes: Vec<Node>,
    /// Arena slots free for reuse.
    spare: Vec<Link>,
    /// Root of the treap.
    root: Link,
    /// Number of holes in the tree.
    count: usize,
}

/// SplitMix64 finalizer: a cheap, well-mixed hash of a hole's start address, so
/// consecutive addresses get unrelated priorities and the treap stays balanced
/// in expectation.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Holes {
    /// An empty set.
    pub(super) fn new() -> Self {
        Holes {
            nodes: Vec::new(),
            spare: Vec::new(),
            root: NIL,
            count: 0,
        }
    }

    /// Removes every hole (keeps the arena's capacity).
    pub(super) fn clear(&mut self) {
        self.nodes.clear();
        self.spare.clear();
        self.root = NIL;
        self.count = 0;
    }

    /// Number of holes.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// Length of the largest hole, 0 if there is none.
    pub(super) fn largest(&self) -> u64 {
        self.max_of(self.root)
    }

    /// The hole that starts exactly at `start`, as its length.
    pub(super) fn get(&self, start: u64) -> Option<u64> {
        let mut t = self.root;
        while t != NIL {
            let n = &self.nodes[t as usize];
            if start == n.start {
                return Some(n.len);
            }
            t = if start < n.start { n.left } else { n.right };
        }
        None
    }

    /// The hole with the largest start `<= addr`, as `(start, len)`.
    pub(super) fn at_or_before(&self, addr: u64) -> Option<(u64, u64)> {
        let mut t = self.root;
        let mut best = None;
        while t != NIL {
            let n = &self.nodes[t as usize];
            if n.start <= addr {
                best = Some((n.start, n.len));
                t = n.right;
            } else {
                t = n.left;
            }
        }
        best
    }

    /// First fit: the lowest-address hole with `len >= need`, as `(start, len)`.
    pub(super) fn first_fit(&self, need: u64) -> Option<(u64, u64)> {
        // Every hole has len >= 1, so asking for 1 finds the same hole as 0,
        // and an empty subtree (max 0) can never look like a fit.
        let need = need.max(1);
        let mut t = self.root;
        if self.max_of(t) < need {
            return None;
        }
        // Invariant: the subtree at `t` holds a fitting hole.
        loop {
            let n = &self.nodes[t as usize];
            if self.max_of(n.left) >= need {
                t = n.left;
            } else if n.len >= need {
                return Some((n.start, n.len));
            } else {
                t = n.right;
            }
        }
    }

    /// Total length of the holes at least `need` long: the free space that
    /// could hold a region of `need` granules (the rest of the free space
    /// cannot).
    ///
    /// Subtrees whose largest hole is too short are skipped whole, so the walk
    /// only visits the holes that fit and their ancestors: O(fitting holes ×
    /// log n), and the recursion is as deep as the treap. (A subtree sum
    /// augmentation would make this O(log n) but cost every insert and
    /// removal, which are far more frequent.)
    pub(super) fn total_fitting(&self, need: u64) -> u64 {
        fn walk(h: &Holes, t: Link, need: u64) -> u64 {
            if t == NIL {
                return 0;
            }
            let n = &h.nodes[t as usize];
            if n.max_len < need {
                return 0;
            }
            let own = if n.len >= need { n.len } else { 0 };
            walk(h, n.left, need) + own + walk(h, n.right, need)
        }
        walk(self, self.root, need.max(1))
    }

    /// Adds the hole `(start, len)`; `start` must not already be a hole.
    pub(super) fn insert(&mut self, start: u64, len: u64) {
        invariant!(len > 0, "empty hole at {start}");
        invariant!(self.get(start).is_none(), "duplicate hole at {start}");
        let node = Node {
            start,
            len,
            prio: mix(start),
            max_len: len,
            left: NIL,
            right: NIL,
        };
        let id = match self.spare.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                Link::try_from(self.nodes.len() - 1).expect("hole arena overflow")
            }
        };
        let (l, r) = self.split(self.root, start);
        let l = self.merge(l, id);
        self.root = self.merge(l, r);
        self.count += 1;
    }

    /// Takes the first `n > 0` granules of the hole starting at `start`, if
    /// there is one that long (a region right before it growing in place);
    /// returns whether it took them.
    ///
    /// The rest of the hole keeps its node: its key moves up by `n` past no
    /// other key (holes are disjoint), so the order holds, and the node keeps
    /// its priority, so the heap holds too (priorities are a hash of the key
    /// a node was inserted with: still a function of the operations alone).
    /// One descent and `max_len` updates on the way back, instead of the
    /// removal and reinsertion's splits and merges: a region growing by one
    /// token a step does this every step.
    pub(super) fn take_front(&mut self, start: u64, n: u64) -> bool {
        invariant!(n > 0);
        match self.get(start) {
            Some(len) if len > n => {
                self.reshape(start, start + n, len - n);
                true
            }
            Some(len) if len == n => {
                self.remove(start);
                true
            }
            _ => false,
        }
    }

    /// Makes the hole that starts at `start` the hole `[to, to + len)`, in
    /// place: no other hole may start between `start` and `to` (the order
    /// holds) and `len > 0`. Its node keeps its priority, as
    /// [`Holes::take_front`]'s does: one descent and `max_len` updates on
    /// the way back, where a removal and an insertion split and merge.
    /// A region freed next to a hole, or carved from a hole's start or end,
    /// changes that hole's ends only.
    pub(super) fn reshape(&mut self, start: u64, to: u64, len: u64) {
        invariant!(len > 0, "an empty hole");
        self.reshape_in(self.root, start, to, len);
    }

    /// [`Holes::reshape`] within the subtree at `t`.
    fn reshape_in(&mut self, t: Link, start: u64, to: u64, len: u64) {
        if t == NIL {
            invariant_violated!("reshaping a hole at {start} that does not exist");
            return;
        }
        let n = self.nodes[t as usize];
        if start == n.start {
            let node = &mut self.nodes[t as usize];
            node.start = to;
            node.len = len;
        } else if start < n.start {
            self.reshape_in(n.left, start, to, len);
        } else {
            self.reshape_in(n.right, start, to, len);
        }
        self.pull(t);
    }

    /// Removes the hole starting at `start` and returns its length.
    pub(super) fn remove(&mut self, start: u64) -> Option<u64> {
        let (l, r) = self.split(self.root, start);
        // Keys are < the address-space size <= u64::MAX, so `start + 1` cannot
        // overflow for a key that exists; saturating keeps a bogus query harmless.
        let (m, r) = self.split(r, start.saturating_add(1));
        self.root = self.merge(l, r);
        if m == NIL {
            return None;
        }
        invariant!(self.nodes[m as usize].left == NIL && self.nodes[m as usize].right == NIL);
        self.spare.push(m);
        self.count -= 1;
        Some(self.nodes[m as usize].len)
    }

    /// Every hole in address order (for invariant checks in tests).
    #[cfg(test)]
    pub(super) fn to_vec(&self) -> Vec<(u64, u64)> {
        fn walk(h: &Holes, t: Link, out: &mut Vec<(u64, u64)>) {
            if t == NIL {
                return;
            }
            let n = h.nodes[t as usize];
            walk(h, n.left, out);
            out.push((n.start, n.len));
            walk(h, n.right, out);
        }
        let mut out = Vec::with_capacity(self.count);
        walk(self, self.root, &mut out);
        out
    }

    /// Checks the heap, order and `max_len` invariants of the whole tree.
    #[cfg(test)]
    pub(super) fn check(&self) {
        fn walk(h: &Holes, t: Link, lo: Option<u64>, hi: Option<u64>) -> (u64, usize) {
            if t == NIL {
                return (0, 0);
            }
            let n = h.nodes[t as usize];
            assert!(lo.is_none_or(|lo| n.start > lo) && hi.is_none_or(|hi| n.start < hi));
            for c in [n.left, n.right] {
                assert!(c == NIL || h.nodes[c as usize].prio <= n.prio, "heap order");
            }
            let (lm, lc) = walk(h, n.left, lo, Some(n.start));
            let (rm, rc) = walk(h, n.right, Some(n.start), hi);
            assert_eq!(n.max_len, n.len.max(lm).max(rm), "max_len at {}", n.start);
            (n.max_len, lc + rc + 1)
        }
        let (_, count) = walk(self, self.root, None, None);
        assert_eq!(count, self.count);
        assert_eq!(self.nodes.len(), self.count + self.spare.len());
    }

    /// `max_len` of a subtree (0 for the empty one).
    fn max_of(&self, t: Link) -> u64 {
        if t == NIL {
            0
        } else {
            self.nodes[t as usize].max_len
        }
    }

    /// Recomputes `max_len` of `t` from its children.
    fn pull(&mut self, t: Link) {
        let n = self.nodes[t as usize];
        self.nodes[t as usize].max_len = n.len.max(self.max_of(n.left)).max(self.max_of(n.right));
    }

    /// Splits `t` into (keys `< key`, keys `>= key`).
    ///
    /// Recursion depth is the treap's height, O(log n) in expectation.
    fn split(&mut self, t: Link, key: u64) -> (Link, Link) {
        if t == NIL {
            return (NIL, NIL);
        }
        let n = self.nodes[t as usize];
        if n.start < key {
            let (l, r) = self.split(n.right, key);
            self.nodes[t as usize].right = l;
            self.pull(t);
            (t, r)
        } else {
            let (l, r) = self.split(n.left, key);
            self.nodes[t as usize].left = r;
            self.pull(t);
            (l, t)
        }
    }

    /// Joins two treaps where every key of `a` is below every key of `b`.
    fn merge(&mut self, a: Link, b: Link) -> Link {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio >= self.nodes[b as usize].prio {
            let r = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = r;
            self.pull(a);
            a
        } else {
            let l = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = l;
            self.pull(b);
            b
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn first_fit_is_lowest_address_not_best_fit() {
        let mut h = Holes::new();
        h.insert(100, 5);
        h.insert(10, 50);
        h.insert(200, 20);
        h.insert(300, 8);
        assert_eq!(h.first_fit(8), Some((10, 50)));
        assert_eq!(h.first_fit(51), None);
        assert_eq!(h.first_fit(5), Some((10, 50)));
        h.remove(10);
        assert_eq!(h.first_fit(8), Some((200, 20)));
        assert_eq!(h.first_fit(21), None);
        assert_eq!(h.largest(), 20);
        assert_eq!(h.len(), 3);
        assert_eq!(h.at_or_before(199), Some((100, 5)));
        assert_eq!(h.at_or_before(200), Some((200, 20)));
        assert_eq!(h.at_or_before(99), None);
        // Holes 5, 20 and 8 long: at least 8 long are 20 + 8.
        assert_eq!(h.total_fitting(8), 28);
        assert_eq!(h.total_fitting(21), 0);
        assert_eq!(h.total_fitting(1), 33);
        assert_eq!(h.total_fitting(0), 33);
        h.check();
    }

    proptest! {
        /// The treap answers every query like a `BTreeMap` scanned linearly.
        #[test]
        fn matches_a_scanned_btreemap(
            ops in prop::collection::vec((0u64..64, 1u64..20, 0u8..4), 1..200),
            queries in prop::collection::vec(0u64..25, 1..20),
        ) {
            let mut h = Holes::new();
            let mut m = BTreeMap::new();
            for (start, len, op) in ops {
                if op == 0 && !m.contains_key(&start) {
                    h.insert(start, len);
                    m.insert(start, len);
                } else if op == 1 {
                    // Only where no other hole starts within the granules
                    // taken (real holes are disjoint).
                    if m.range(start + 1..=start + len).next().is_none() {
                        let took = match m.get(&start).copied() {
                            Some(l) if l >= len => {
                                m.remove(&start);
                                if l > len {
                                    m.insert(start + len, l - len);
                                }
                                true
                            }
                            _ => false,
                        };
                        prop_assert_eq!(h.take_front(start, len), took);
                    }
                } else if op == 3 {
                    // Reshape the first hole at or after `start` to begin
                    // anywhere from its predecessor's start (exclusive) to
                    // its own, `len` long: keys keep their order.
                    if let Some((&s, _)) = m.range(start..).next() {
                        let low = m.range(..s).next_back().map_or(0, |(&p, _)| p + 1);
                        let to = low.max(s.saturating_sub(len % 7));
                        if m.range(s + 1..).next().is_none_or(|(&n, _)| to < n) {
                            m.remove(&s);
                            m.insert(to, len);
                            h.reshape(s, to, len);
                        }
                    }
                } else {
                    prop_assert_eq!(h.remove(start), m.remove(&start));
                }
                h.check();
                prop_assert_eq!(h.len(), m.len());
                prop_assert_eq!(h.largest(), m.values().copied().max().unwrap_or(0));
                for &q in &queries {
                    let want = m.iter().find(|&(_, &l)| l >= q).map(|(&s, &l)| (s, l));
                    prop_assert_eq!(h.first_fit(q), want);
                    let want = m.range(..=q).next_back().map(|(&s, &l)| (s, l));
                    prop_assert_eq!(h.at_or_before(q), want);
                    prop_assert_eq!(h.get(q), m.get(&q).copied());
                    let fitting: u64 = m.values().filter(|&&l| l >= q).sum();
                    prop_assert_eq!(h.total_fitting(q), fitting);
                }
            }
            prop_assert_eq!(h.to_vec(), m.into_iter().collect::<Vec<_>>());
        }
    }
}
