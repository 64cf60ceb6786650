//! The timer heap: a min-heap of `(deadline, sequence)` with lazy removal of cancelled entries.
//!
//! Invariants:
//! - entries with equal deadlines pop in the order they were pushed (the sequence number breaks
//!   ties; stricter than CPython, and deterministic);
//! - a cancelled entry stays in the heap until it reaches the top or the heap is rebuilt;
//!   `cancelled` counts the cancelled entries still inside;
//! - the heap is rebuilt without its cancelled entries when it holds more than
//!   [`REBUILD_MIN_LEN`] entries and more than half of them are cancelled (asyncio's rule: it
//!   bounds memory held by cancelled timers while keeping cancel O(1)).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::handle::Callback;

/// Below this many entries a rebuild is not worth it (asyncio's `_MIN_SCHEDULED_TIMER_HANDLES`).
pub(crate) const REBUILD_MIN_LEN: usize = 100;

pub(crate) struct TimerEntry {
    pub(crate) when: Instant,
    seq: u64,
    pub(crate) callback: Callback,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        self.when == other.when && self.seq == other.seq
    }
}

impl Eq for TimerEntry {}

impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TimerEntry {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest deadline first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.when, other.seq).cmp(&(self.when, self.seq))
    }
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<TimerEntry>,
    cancelled: usize,
    next_seq: u64,
}

impl Timers {
    pub(crate) fn push(&mut self, when: Instant, callback: Callback) {
        callback.set_in_heap(true);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(TimerEntry {
            when,
            seq,
            callback,
        });
    }

    pub(crate) fn note_cancelled(&mut self) {
        self.cancelled += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn cancelled(&self) -> usize {
        self.cancelled
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drops the cancelled entries if they are more than half of a large heap.
    pub(crate) fn maybe_rebuild(&mut self) {
        if self.heap.len() > REBUILD_MIN_LEN && self.cancelled * 2 > self.heap.len() {
            self.heap.retain(|e| {
                let keep = !e.callback.is_cancelled();
                if !keep {
                    e.callback.set_in_heap(false);
                }
                keep
            });
            self.cancelled = 0;
        }
    }

    /// Pops cancelled entries off the top, then returns the earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(top) = self.heap.peek() {
            if !top.callback.is_cancelled() {
                return Some(top.when);
            }
            self.pop_top();
        }
        None
    }

    /// Pops the next entry due at `now`, skipping cancelled ones.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Callback> {
        loop {
            let top = self.heap.peek()?;
            if top.callback.is_cancelled() {
                self.pop_top();
                continue;
            }
            if top.when > now {
                return None;
            }
            let entry = self.pop_top()?;
            return Some(entry.callback);
        }
    }

    fn pop_top(&mut self) -> Option<TimerEntry> {
        let entry = self.heap.pop()?;
        entry.callback.set_in_heap(false);
        if entry.callback.is_cancelled() {
            self.cancelled = self.cancelled.saturating_sub(1);
        }
        Some(entry)
    }

    /// Removes every entry, for `close()`; the caller drops the closures.
    pub(crate) fn drain(&mut self) -> Vec<Callback> {
        self.cancelled = 0;
        self.heap
            .drain()
            .map(|e| {
                e.callback.set_in_heap(false);
                e.callback
            })
            .collect()
    }
}
