//! An intrusive least-recently-used list over dense `u32` ids: `prev` and
//! `next` arrays indexed by id, so appending, taking out anywhere and popping
//! the oldest are O(1) and allocation-free in steady state. The prefix index
//! keeps its cached blocks in one (`paged/prefix.rs`), every KV tier below
//! HBM its resident blocks (`tiers.rs`).

/// End of the list (no id).
pub(crate) const NIL: u32 = u32::MAX;

/// The list: ids from least (head) to most (tail) recently used.
#[derive(Clone, Debug)]
pub(crate) struct LruList {
    prev: Vec<u32>,
    next: Vec<u32>,
    head: u32,
    tail: u32,
    len: u64,
}

impl Default for LruList {
    fn default() -> Self {
        LruList {
            prev: Vec::new(),
            next: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl LruList {
    /// Forgets every id.
    pub(crate) fn clear(&mut self) {
        *self = LruList {
            prev: std::mem::take(&mut self.prev),
            next: std::mem::take(&mut self.next),
            ..LruList::default()
        };
        self.prev.clear();
        self.next.clear();
    }

    /// Reserves room for `ids` ids.
    pub(crate) fn reserve(&mut self, ids: usize) {
        self.prev.reserve(ids);
        self.next.reserve(ids);
    }

    /// Makes room for id `id` (ids are created densely).
    #[inline]
    pub(crate) fn ensure(&mut self, id: u32) {
        if self.prev.len() <= id as usize {
            self.grow_to(id);
        }
    }

    /// [`LruList::ensure`]'s rare part, out of line: inlined, its
    /// reallocation made every append save and restore a dozen registers
    /// (appends are the prefix cache's commonest operation). It makes room
    /// for twice the ids, so that ids created one at a time call it
    /// O(log ids) times.
    #[cold]
    #[inline(never)]
    fn grow_to(&mut self, id: u32) {
        let len = grown_len(id, self.prev.len());
        self.prev.resize(len, NIL);
        self.next.resize(len, NIL);
    }

    /// Ids in the list.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The least recently used id, if any.
    pub(crate) fn head(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// Appends `id` (not in the list) as the most recently used.
    pub(crate) fn push_back(&mut self, id: u32) {
        self.ensure(id);
        let i = id as usize;
        self.prev[i] = self.tail;
        self.next[i] = NIL;
        if self.tail == NIL {
            self.head = id;
        } else {
            self.next[self.tail as usize] = id;
        }
        self.tail = id;
        self.len += 1;
    }

    /// Takes `id` (in the list) out of it.
    #[inline]
    pub(crate) fn unlink(&mut self, id: u32) {
        let i = id as usize;
        let (p, n) = (self.prev[i], self.next[i]);
        if p == NIL {
            invariant_eq!(self.head, id, "id {id} is not in the list");
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
        self.prev[i] = NIL;
        self.next[i] = NIL;
        self.len -= 1;
    }

    /// Takes the least recently used id out of the list.
    pub(crate) fn pop_front(&mut self) -> Option<u32> {
        let id = self.head()?;
        self.unlink(id);
        Some(id)
    }

    /// The ids from least to most recently used, checking the back links
    /// (O(len): tests and invariant checks).
    pub(crate) fn order(&self) -> Result<Vec<u32>, String> {
        let mut out = Vec::new();
        let (mut at, mut prev) = (self.head, NIL);
        while at != NIL {
            if self.prev[at as usize] != prev {
                return Err(format!("id {at}'s back link is broken"));
            }
            out.push(at);
            if out.len() as u64 > self.len {
                return Err("the list is longer than its count".into());
            }
            prev = at;
            at = self.next[at as usize];
        }
        if out.len() as u64 != self.len || prev != self.tail {
            return Err(format!(
                "the list holds {} ids, its count says {}",
                out.len(),
                self.len
            ));
        }
        Ok(out)
    }
}

/// The length a table indexed by dense ids grows to, from `len`, to hold id
/// `id`: at least twice `len` (and 64), so that ids created one at a time
/// grow it O(log ids) times. The LRU lists and the prefix index share it.
pub(crate) fn grown_len(id: u32, len: usize) -> usize {
    (id as usize + 1).max(2 * len).max(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_unlinks_anywhere_and_pops_the_oldest() {
        let mut l = LruList::default();
        for id in [3, 0, 7, 1] {
            l.push_back(id);
        }
        l.unlink(7);
        assert_eq!(l.order().unwrap(), vec![3, 0, 1]);
        assert_eq!(l.pop_front(), Some(3));
        l.push_back(3);
        assert_eq!(l.order().unwrap(), vec![0, 1, 3]);
        l.unlink(3);
        l.unlink(0);
        assert_eq!((l.len(), l.head()), (1, Some(1)));
        l.clear();
        assert_eq!((l.len(), l.pop_front()), (0, None));
    }
}
