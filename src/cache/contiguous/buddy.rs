//! A binary buddy allocator over a contiguous address space of granules: the
//! allocator the PagedAttention paper assumes for its Orca baselines (Kwon et
//! al., SOSP 2023, sec. 6.1: "We assume Orca uses the buddy allocation
//! algorithm to determine the memory address to store KV cache").
//!
//! Every block is `2^order` granules long and starts at a multiple of its
//! length. A request for `n` granules takes a block of the smallest order that
//! holds it, splitting a larger free block in halves as needed; a freed block
//! merges with its *buddy* (the other half of the block they were split from)
//! whenever that buddy is free too, recursively. Only buddies merge: two free
//! neighbours from different parents stay apart, which is the fragmentation a
//! buddy system trades for its O(log n) bookkeeping.
//!
//! The space need not be a power of two: it starts as the maximal aligned
//! blocks that tile `[0, space)`, largest first, and a block whose buddy would
//! reach past the end never merges.
//!
//! Free blocks of each order are kept in address order, and allocation takes
//! the lowest-addressed block of the smallest fitting order, so runs are
//! reproducible.

use std::collections::BTreeSet;

/// Orders go up to 63: a block of `2^63` granules is the largest a `u64`
/// address space holds.
const ORDERS: usize = 64;

/// Free blocks of a buddy system, by order.
#[derive(Clone, Debug)]
pub(super) struct Buddy {
    /// Size of the address space in granules.
    space: u64,
    /// Start addresses of the free blocks of each order.
    free: Vec<BTreeSet<u64>>,
    /// Free granules in all.
    free_total: u64,
}

/// The order of the smallest block that holds `len` granules (`len >= 1`).
pub(super) fn order_for(len: u64) -> u32 {
    invariant!(len > 0);
    len.next_power_of_two().trailing_zeros()
}

impl Buddy {
    /// The free space `[0, space)` as its maximal aligned blocks.
    pub(super) fn new(space: u64) -> Self {
        let mut b = Buddy {
            space,
            free: vec![BTreeSet::new(); ORDERS],
            free_total: 0,
        };
        b.reset();
        b
    }

    /// Frees everything.
    pub(super) fn reset(&mut self) {
        for f in &mut self.free {
            f.clear();
        }
        let mut at = 0u64;
        while at < self.space {
            // The largest block that is aligned at `at` and ends in the space
            // (0 is aligned to every order; `fits` is at most 63).
            let fits = (self.space - at).ilog2();
            let order = at.trailing_zeros().min(fits);
            self.free[order as usize].insert(at);
            at += 1 << order;
        }
        self.free_total = self.space;
    }

    /// Allocates a block of `2^order` granules; its start, if any free block
    /// is large enough.
    pub(super) fn alloc(&mut self, order: u32) -> Option<u64> {
        let from = (order as usize..ORDERS).find(|&o| !self.free[o].is_empty())?;
        let start = self.free[from].pop_first()?;
        // Split down: keep the lower half, free the upper one, at each order.
        for o in (order as usize..from).rev() {
            self.free[o].insert(start + (1 << o));
        }
        self.free_total -= 1 << order;
        Some(start)
    }

    /// Returns the block `[start, start + 2^order)` and merges it with its
    /// free buddies.
    pub(super) fn free(&mut self, mut start: u64, mut order: u32) {
        invariant!(start.trailing_zeros() >= order, "misaligned block");
        self.free_total += 1 << order;
        while (order as usize) < ORDERS - 1 {
            let buddy = start ^ (1 << order);
            if !self.free[order as usize].remove(&buddy) {
                break;
            }
            start = start.min(buddy);
            order += 1;
        }
        self.free[order as usize].insert(start);
    }

    /// Free granules in all.
    #[cfg(test)]
    pub(super) fn free_total(&self) -> u64 {
        self.free_total
    }

    /// Length of the largest free block, 0 if none.
    pub(super) fn largest(&self) -> u64 {
        (0..ORDERS)
            .rev()
            .find(|&o| !self.free[o].is_empty())
            .map_or(0, |o| 1 << o)
    }

    /// Number of free blocks.
    pub(super) fn blocks(&self) -> usize {
        self.free.iter().map(BTreeSet::len).sum()
    }

    /// Free granules in blocks of `order` or more: the free space a block of
    /// that order could come from (the rest cannot hold it).
    pub(super) fn total_fitting(&self, order: u32) -> u64 {
        (order as usize..ORDERS)
            .map(|o| self.free[o].len() as u64 * (1 << o))
            .sum()
    }

    /// Every free block as `(start, len)`, in address order (for invariant
    /// checks in tests).
    #[cfg(test)]
    pub(super) fn to_vec(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = (0..ORDERS)
            .flat_map(|o| self.free[o].iter().map(move |&s| (s, 1u64 << o)))
            .collect();
        out.sort_unstable();
        out
    }

    /// Checks alignment, bounds, the free total, and that no two free buddies
    /// were left unmerged.
    #[cfg(test)]
    pub(super) fn check(&self) {
        let mut total = 0;
        for (o, set) in self.free.iter().enumerate() {
            for &s in set {
                let len = 1u64 << o;
                assert_eq!(s % len, 0, "block {s} of order {o} is misaligned");
                assert!(
                    s + len <= self.space,
                    "block {s} of order {o} leaves the space"
                );
                assert!(
                    !set.contains(&(s ^ len)),
                    "free buddies {s} and {} of order {o} were not merged",
                    s ^ len
                );
                total += len;
            }
        }
        assert_eq!(total, self.free_total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_space_that_is_not_a_power_of_two_starts_as_its_aligned_blocks() {
        let b = Buddy::new(13);
        assert_eq!(b.to_vec(), vec![(0, 8), (8, 4), (12, 1)]);
        assert_eq!(b.free_total(), 13);
        assert_eq!(b.largest(), 8);
        b.check();
    }

    #[test]
    fn allocation_splits_the_lowest_block_of_the_smallest_order() {
        let mut b = Buddy::new(16);
        assert_eq!(b.alloc(1), Some(0));
        // 16 split into 8 + 8, 8 into 4 + 4, 4 into 2 + 2: the upper halves
        // stay free.
        assert_eq!(b.to_vec(), vec![(2, 2), (4, 4), (8, 8)]);
        // The next order-1 block is the free one of that order, not a split.
        assert_eq!(b.alloc(1), Some(2));
        assert_eq!(b.alloc(3), Some(8));
        assert_eq!(b.alloc(3), None);
        assert_eq!(b.free_total(), 4);
        b.check();
    }

    #[test]
    fn only_buddies_merge() {
        let mut b = Buddy::new(8);
        let [x, y, z, w] = [1, 1, 1, 1].map(|o| b.alloc(o).unwrap());
        assert_eq!([x, y, z, w], [0, 2, 4, 6]);
        // 2 and 4 are neighbours but not buddies: two blocks of 2 stay apart,
        // and a request for 4 granules finds no block although 4 are free.
        b.free(y, 1);
        b.free(z, 1);
        assert_eq!(b.to_vec(), vec![(2, 2), (4, 2)]);
        assert_eq!(b.total_fitting(2), 0);
        assert_eq!(b.alloc(2), None);
        // Freeing 0 merges it with its buddy 2 into [0, 4).
        b.free(x, 1);
        assert_eq!(b.to_vec(), vec![(0, 4), (4, 2)]);
        b.free(w, 1);
        assert_eq!(b.to_vec(), vec![(0, 8)]);
        b.check();
    }

    #[test]
    fn the_orders_of_sizes() {
        assert_eq!(order_for(1), 0);
        assert_eq!(order_for(2), 1);
        assert_eq!(order_for(3), 2);
        assert_eq!(order_for(1024), 10);
        assert_eq!(order_for(1025), 11);
    }
}
