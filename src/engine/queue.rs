//! The event queue: a min-heap keyed by (time, insertion sequence).
//!
//! The sequence number breaks ties between events at the same instant in the
//! order they were scheduled (FIFO), so runs are deterministic whatever the heap
//! does internally.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::units::SimTime;

/// A scheduled event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Entry<E> {
    time: SimTime,
    seq: u64,
    event: E,
}

impl<E: Eq> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

impl<E: Eq> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A priority queue of events of type `E`, earliest first, FIFO among equals.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    /// One event kept beside the heap ([`EventQueue::push_aside`]): ordered
    /// with the heap's by the same key, it skips the heap's sifts.
    aside: Option<Entry<E>>,
    next_seq: u64,
}

impl<E: Eq> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            aside: None,
            next_seq: 0,
        }
    }
}

impl<E: Eq + Copy> EventQueue<E> {
    /// Schedules `event` at `time`.
    pub fn push(&mut self, time: SimTime, event: E) {
        let entry = self.entry(time, event);
        self.heap.push(entry);
    }

    /// Schedules `event` at `time` like [`EventQueue::push`], in the slot
    /// beside the heap if it is free: for an event that is pushed and popped
    /// once per step (the engine's step end), which then costs two
    /// comparisons instead of a push and a pop of the heap.
    pub fn push_aside(&mut self, time: SimTime, event: E) {
        let entry = self.entry(time, event);
        match self.aside {
            None => self.aside = Some(entry),
            Some(_) => self.heap.push(entry),
        }
    }

    fn entry(&mut self, time: SimTime, event: E) -> Entry<E> {
        let seq = self.next_seq;
        self.next_seq += 1;
        Entry { time, seq, event }
    }

    /// Removes and returns the earliest event.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        // `Entry`'s order is reversed: the earlier entry is the greater.
        let entry = match (&self.aside, self.heap.peek()) {
            (Some(a), Some(h)) if h > a => self.heap.pop(),
            (Some(_), _) => self.aside.take(),
            (None, _) => self.heap.pop(),
        };
        entry.map(|e| (e.time, e.event))
    }

    /// When the earliest event is due, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        let heap = self.heap.peek().map(|e| e.time);
        match (self.aside.map(|a| a.time), heap) {
            (Some(a), Some(h)) => Some(a.min(h)),
            (a, h) => a.or(h),
        }
    }

    /// The earliest event and when it is due, if any, without removing it.
    pub fn peek(&self) -> Option<(SimTime, &E)> {
        let entry = match (&self.aside, self.heap.peek()) {
            (Some(a), Some(h)) if h > a => Some(h),
            (Some(a), _) => Some(a),
            (None, h) => h,
        };
        entry.map(|e| (e.time, &e.event))
    }

    /// Events pushed so far (either way): unchanged between two reads, no
    /// event was scheduled in between.
    pub fn pushed(&self) -> u64 {
        self.next_seq
    }

    /// Events still scheduled.
    pub fn len(&self) -> usize {
        self.heap.len() + usize::from(self.aside.is_some())
    }

    /// Whether no event is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty() && self.aside.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_fifo_among_ties() {
        let mut q = EventQueue::default();
        q.push(SimTime::from_nanos(5), 'a');
        q.push(SimTime::from_nanos(1), 'b');
        q.push(SimTime::from_nanos(5), 'c');
        q.push(SimTime::from_nanos(1), 'd');
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!['b', 'd', 'a', 'c']);
    }

    proptest::proptest! {
        /// Events pushed aside come out in the same order as if every one
        /// had gone through the heap, and `peek` shows the one `pop` takes.
        #[test]
        fn the_slot_aside_keeps_the_order(
            ops in proptest::collection::vec((0u64..8, proptest::bool::ANY, proptest::bool::ANY), 1..60),
        ) {
            let (mut q, mut all) = (EventQueue::default(), EventQueue::default());
            let (mut got, mut want) = (Vec::new(), Vec::new());
            for (i, &(t, aside, pop)) in ops.iter().enumerate() {
                let t = SimTime::from_nanos(t);
                if aside {
                    q.push_aside(t, i);
                } else {
                    q.push(t, i);
                }
                all.push(t, i);
                proptest::prop_assert_eq!(q.len(), all.len());
                proptest::prop_assert_eq!(q.peek_time(), all.peek_time());
                proptest::prop_assert_eq!(q.peek(), all.peek());
                if pop {
                    let next = q.peek().map(|(t, &e)| (t, e));
                    got.push(q.pop());
                    proptest::prop_assert_eq!(next, *got.last().unwrap());
                    want.push(all.pop());
                }
            }
            while !all.is_empty() {
                got.push(q.pop());
                want.push(all.pop());
            }
            proptest::prop_assert!(q.is_empty());
            proptest::prop_assert_eq!(got, want);
        }
    }
}
