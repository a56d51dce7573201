//! The event queue: a binary heap keyed by (time, sequence number), with lazy cancellation.

use super::SimTime;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

/// Identifies a scheduled event (its sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId(u64);

#[derive(Debug)]
struct Entry<E> {
    at: SimTime,
    seq: u64,
    event: E,
}

// The tie-break is part of the key: events at the same instant leave in the order they were
// scheduled, on every run. BinaryHeap is a max-heap, so the comparison is reversed.
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<E> Eq for Entry<E> {}

/// Pending events ordered by `(time, sequence number)`.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
    cancelled: HashSet<u64>,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
            cancelled: HashSet::new(),
        }
    }

    /// Schedule `event` at `at`; returns its id.
    pub fn push(&mut self, at: SimTime, event: E) -> EventId {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, event });
        EventId(seq)
    }

    /// Mark an event cancelled; it is dropped when it reaches the front.
    pub fn cancel(&mut self, id: EventId) {
        self.cancelled.insert(id.0);
    }

    fn skip_cancelled(&mut self) {
        while let Some(top) = self.heap.peek() {
            if self.cancelled.is_empty() || !self.cancelled.contains(&top.seq) {
                break;
            }
            let seq = top.seq;
            self.heap.pop();
            self.cancelled.remove(&seq);
        }
    }

    /// Time of the next live event.
    pub fn peek_time(&mut self) -> Option<SimTime> {
        self.skip_cancelled();
        self.heap.peek().map(|e| e.at)
    }

    /// Remove and return the next live event.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.skip_cancelled();
        self.heap.pop().map(|e| (e.at, e.event))
    }

    /// Entries in the heap (cancelled ones included until popped).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_time_events_leave_in_scheduling_order() {
        let mut q = EventQueue::new();
        let t = SimTime::from_nanos(7);
        for i in 0..100 {
            q.push(t, i);
        }
        q.push(SimTime::from_nanos(3), 1000);
        assert_eq!(q.pop(), Some((SimTime::from_nanos(3), 1000)));
        let order: Vec<i32> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn cancellation_is_lazy_and_exact() {
        let mut q = EventQueue::new();
        let a = q.push(SimTime::from_nanos(1), 'a');
        let _b = q.push(SimTime::from_nanos(1), 'b');
        let c = q.push(SimTime::from_nanos(2), 'c');
        q.cancel(a);
        q.cancel(c);
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop(), Some((SimTime::from_nanos(1), 'b')));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }
}
