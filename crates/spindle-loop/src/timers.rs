//! The timer heap: a min-heap of `(deadline, sequence)` with lazy removal of cancelled entries,
//! beside a sorted run.
//!
//! **The sorted run.** Timers mostly arrive in deadline order (`call_later` with one delay,
//! periodic sleeps, everything due "now"), and popping a binary heap costs a sift through all
//! its levels, a cache miss each once it outgrows the cache. So an entry whose deadline is not
//! earlier than the newest entry of `run` (a FIFO kept sorted) is appended there instead, and
//! only out-of-order entries go to the heap. The earliest timer is the smaller of the heap's
//! top and the run's front. (Measured: 100,000 timers due at once, ~200 -> ~115 ns each.)
//!
//! Invariants:
//! - entries with equal deadlines pop in the order they were pushed (the sequence number breaks
//!   ties; stricter than CPython, and deterministic);
//! - a cancelled entry stays in the heap until it reaches the top or the heap is rebuilt;
//!   `cancelled` counts the cancelled entries still inside;
//! - the heap is rebuilt without its cancelled entries when it holds more than
//!   [`REBUILD_MIN_LEN`] entries and more than half of them are cancelled (asyncio's rule: it
//!   bounds memory held by cancelled timers while keeping cancel O(1)).
//!
//! # Timers cancelled from any thread ([`WakeTimer`])
//!
//! A `Send` sleep must be cancellable wherever its future is dropped, but the heap and its
//! cells are the loop thread's (`Rc`, `Cell`). So a sleep's timer is a normal heap cell whose
//! slot shares a [`WakeTimer`] (an `Arc`) with the sleep: firing takes the sleeper's waker
//! and wakes it; cancelling sets a flag that the heap reads as "cancelled".
//!
//! Counting such a cancellation towards the rebuild happens on the cancelling thread, through
//! the heap's shared `external` counter, with three bits of the timer's state: `IN_HEAP` (set
//! at push, cleared only by the loop thread when the heap lets go of the cell), `CANCELLED`,
//! and `COUNTED` (this cancellation was added to the counter). The canceller increments the
//! counter *before* publishing `CANCELLED | COUNTED` with a compare-exchange that also checks
//! `IN_HEAP`, and takes the increment back if the exchange fails; the loop thread decrements
//! only if it finds `COUNTED` when it clears `IN_HEAP`. So every decrement follows its
//! increment (the counter never wraps), and an entry is counted at most once and only while
//! it is in the heap.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::panic::Location;
use std::sync::Arc;
use std::task::Waker;

use std::time::Instant;

use crate::callback::{new_wake_callback, Callback};
// The waker's lock is part of the fire/poll handshake: `WakerCell` uses loom's under loom.
use crate::sync::{AtomicUsize, Ordering as AtomicOrdering, WakerCell};

/// How far ahead a deadline that overflows `Instant` is put: far enough never to fire.
const FAR_FUTURE: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The deadline `delay` from now (`call_later`, `sleep`). A delay too large for the clock (even
/// `Duration::MAX`) gives a deadline so far ahead that it never fires, never a panic.
pub(crate) fn deadline_after(delay: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(delay)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .or_else(|| now.checked_add(crate::event_loop::MAX_WAIT))
        .unwrap_or(now)
}

/// Below this many entries a rebuild is not worth it (asyncio's `_MIN_SCHEDULED_TIMER_HANDLES`).
pub(crate) const REBUILD_MIN_LEN: usize = 100;

pub(crate) struct TimerEntry {
    pub(crate) when: Instant,
    seq: u64,
    pub(crate) callback: Callback,
}

impl TimerEntry {
    /// Earliest first: the order timers fire in.
    fn key(&self) -> (Instant, u64) {
        (self.when, self.seq)
    }
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

/// Where a timer entry sits (see the module docs).
#[derive(Clone, Copy)]
enum Side {
    Heap,
    Run,
}

#[derive(Default)]
pub(crate) struct Timers {
    /// The entries that came out of order.
    heap: BinaryHeap<TimerEntry>,
    /// The entries that came in order, earliest first (see the module docs).
    run: VecDeque<TimerEntry>,
    /// Cancelled entries cancelled through a `TimerHandle` (on this thread).
    cancelled: usize,
    /// Cancelled [`WakeTimer`] entries still in the heap, counted by whichever thread cancelled
    /// them (see the module docs).
    external: Arc<AtomicUsize>,
    next_seq: u64,
}

impl Timers {
    /// Pushes a timer that wakes `waker` at `when` and that any thread may cancel.
    pub(crate) fn push_wake(
        &mut self,
        when: Instant,
        waker: &Waker,
        created_at: &'static Location<'static>,
    ) -> Arc<WakeTimer> {
        let timer = Arc::new(WakeTimer::new(waker, self.external.clone()));
        self.push(when, new_wake_callback(timer.clone(), created_at));
        timer
    }

    pub(crate) fn push(&mut self, when: Instant, callback: Callback) {
        callback.set_in_heap(true);
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = TimerEntry {
            when,
            seq,
            callback,
        };
        // `seq` only grows, so a deadline not earlier than the run's newest keeps it sorted.
        if self.run.back().is_none_or(|newest| newest.when <= when) {
            self.run.push_back(entry);
        } else {
            self.heap.push(entry);
        }
    }

    pub(crate) fn note_cancelled(&mut self) {
        self.cancelled += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len() + self.run.len()
    }

    pub(crate) fn cancelled(&self) -> usize {
        // Relaxed: the count is a statistic and a rebuild hint; the heap decides what to skip
        // from each entry's own flag.
        self.cancelled + self.external.load(AtomicOrdering::Relaxed)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty() && self.run.is_empty()
    }

    /// Drops the cancelled entries if they are more than half of a large heap.
    pub(crate) fn maybe_rebuild(&mut self) {
        let len = self.len();
        if len > REBUILD_MIN_LEN && self.cancelled() * 2 > len {
            let keep = |e: &TimerEntry| {
                let keep = !e.callback.is_cancelled();
                if !keep {
                    e.callback.set_in_heap(false);
                }
                keep
            };
            self.heap.retain(keep);
            // `retain` keeps the order: the run stays sorted.
            self.run.retain(keep);
            self.cancelled = 0;
        }
    }

    /// The earliest entry, cancelled or not, and the side that holds it (decided once, so
    /// popping it does not compare the two sides again).
    fn earliest(&self) -> Option<(Side, &TimerEntry)> {
        match (self.heap.peek(), self.run.front()) {
            (Some(heap), Some(run)) if heap.key() < run.key() => Some((Side::Heap, heap)),
            (_, Some(run)) => Some((Side::Run, run)),
            (heap, None) => heap.map(|heap| (Side::Heap, heap)),
        }
    }

    /// Pops cancelled entries off the top, then returns the earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        loop {
            let (side, top) = self.earliest()?;
            if !top.callback.is_cancelled() {
                return Some(top.when);
            }
            self.pop_from(side);
        }
    }

    /// Pops the next entry due at `now`, skipping cancelled ones.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Callback> {
        loop {
            let (side, top) = self.earliest()?;
            if top.callback.is_cancelled() {
                self.pop_from(side);
                continue;
            }
            if top.when > now {
                return None;
            }
            return self.pop_from(side).map(|entry| entry.callback);
        }
    }

    /// Pops the earliest entry of `side` (the side `earliest` named).
    fn pop_from(&mut self, side: Side) -> Option<TimerEntry> {
        let entry = match side {
            Side::Heap => self.heap.pop(),
            Side::Run => self.run.pop_front(),
        }?;
        entry.callback.set_in_heap(false);
        if entry.callback.is_locally_cancelled() {
            self.cancelled = self.cancelled.saturating_sub(1);
        }
        Some(entry)
    }

    /// Removes every entry, for `close()`; the caller drops the closures.
    pub(crate) fn drain(&mut self) -> Vec<Callback> {
        self.cancelled = 0;
        self.heap
            .drain()
            .chain(self.run.drain(..))
            .map(|e| {
                e.callback.set_in_heap(false);
                e.callback
            })
            .collect()
    }
}

/// `WakeTimer` state: the heap still holds the entry (written by the loop thread only).
const IN_HEAP: usize = 1 << 0;
/// The sleep was dropped before the timer fired.
const CANCELLED: usize = 1 << 1;
/// The cancellation is included in the heap's `external` count.
const COUNTED: usize = 1 << 2;
/// The timer fired (the sleep is over).
const FIRED: usize = 1 << 3;

/// The thread-safe half of a `Send` sleep's timer, shared by the sleep and the heap's cell.
/// See the module docs for the counting protocol.
pub(crate) struct WakeTimer {
    state: AtomicUsize,
    waker: WakerCell,
    counter: Arc<AtomicUsize>,
}

impl WakeTimer {
    /// A timer as the heap holds it (`IN_HEAP`), counting its cancellation into `counter`.
    pub(crate) fn new(waker: &Waker, counter: Arc<AtomicUsize>) -> Self {
        WakeTimer {
            state: AtomicUsize::new(IN_HEAP),
            waker: WakerCell::new(waker),
            counter,
        }
    }

    /// Loop thread, from the heap's cell: the deadline passed.
    pub(crate) fn fire(&self) {
        // AcqRel: pairs with the Acquire load in `fired`, so a sleeper that sees FIRED is done.
        let prev = self.state.fetch_or(FIRED, AtomicOrdering::AcqRel);
        if prev & CANCELLED != 0 {
            return;
        }
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Whether the timer fired.
    fn fired(&self) -> bool {
        self.state.load(AtomicOrdering::Acquire) & FIRED != 0
    }

    /// Any thread, the sleeper's poll: whether the timer fired; if not, `waker` is the one it
    /// will wake. FIRED is checked again after the waker is set: `fire` sets FIRED before it
    /// takes the waker under the lock, so either it finds the new waker or this sees FIRED.
    pub(crate) fn poll_fired(&self, waker: &Waker) -> bool {
        self.fired() || {
            self.waker.register(waker);
            self.fired()
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.load(AtomicOrdering::Acquire) & CANCELLED != 0
    }

    /// Any thread: the sleep was dropped early. Counts the entry as cancelled if the heap
    /// still holds it, and lets go of the sleeper's waker at once.
    pub(crate) fn cancel(&self) {
        let mut state = self.state.load(AtomicOrdering::Acquire);
        loop {
            if state & (CANCELLED | FIRED) != 0 {
                return;
            }
            let in_heap = state & IN_HEAP != 0;
            if in_heap {
                // Before the exchange publishes COUNTED: the loop's decrement (which needs
                // COUNTED) always comes after this increment.
                self.counter.fetch_add(1, AtomicOrdering::AcqRel);
            }
            let next = state | CANCELLED | if in_heap { COUNTED } else { 0 };
            match self.state.compare_exchange(
                state,
                next,
                AtomicOrdering::AcqRel,
                AtomicOrdering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => {
                    if in_heap {
                        self.counter.fetch_sub(1, AtomicOrdering::AcqRel);
                    }
                    state = actual;
                }
            }
        }
        drop(self.waker.take()); // after the lock: see `WakerCell::register`
    }

    /// Loop thread: the heap popped, rebuilt away or drained the entry.
    pub(crate) fn left_heap(&self) {
        let prev = self.state.fetch_and(!IN_HEAP, AtomicOrdering::AcqRel);
        if prev & COUNTED != 0 {
            self.counter.fetch_sub(1, AtomicOrdering::AcqRel);
        }
    }

    /// Loop thread, at `close()`: drop the sleeper's waker here.
    pub(crate) fn clear(&self) {
        drop(self.waker.take()); // after the lock: see `WakerCell::register`
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::new_callback;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    /// Pushes deadlines in a scrambled order (so both the run and the heap fill), pops all, and
    /// checks they come out earliest first, ties in push order, whichever side held them.
    #[test]
    fn mixed_order_pushes_pop_earliest_first_ties_in_push_order() {
        let base = Instant::now();
        let fired = Rc::new(RefCell::new(Vec::new()));
        let mut timers = Timers::default();
        let mut expected = Vec::new();
        let mut x: u64 = 12345;
        for i in 0..2000u64 {
            // Mostly increasing (the run), sometimes earlier (the heap), with repeats (ties).
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let offset = if (x >> 33) % 4 == 0 {
                (x >> 40) % 500
            } else {
                i / 2
            };
            let when = base + Duration::from_micros(offset);
            let log = fired.clone();
            timers.push(
                when,
                new_callback(move || log.borrow_mut().push(i), Location::caller()),
            );
            expected.push((when, i));
        }
        assert!(
            !timers.heap.is_empty() && !timers.run.is_empty(),
            "both sides used"
        );
        expected.sort();
        let far = base + Duration::from_secs(1);
        while let Some(callback) = timers.pop_due(far) {
            callback.run();
        }
        let order: Vec<u64> = expected.iter().map(|&(_, i)| i).collect();
        assert_eq!(*fired.borrow(), order);
        assert!(timers.is_empty());
    }
}
