//! The timer queue: timers in buckets of about a millisecond with lazy removal of cancelled
//! entries, beside a sorted run.
//!
//! **The sorted run.** Timers mostly arrive in deadline order (`call_later` with one delay,
//! periodic sleeps, everything due "now"), and an entry whose deadline is not earlier than the
//! newest entry of `run` (a FIFO kept sorted) is appended there and popped in O(1). (Measured:
//! 100,000 timers due at once, ~200 -> ~115 ns each.)
//!
//! **Buckets.** An out-of-order entry goes by its *tick* (its deadline in units of
//! [`TICK_NANOS`], about 1 ms, counted from an origin an hour before the queue was made) into
//! a bucket: an unsorted `Vec` in a `BTreeMap` keyed by tick. Only the earliest bucket is kept
//! in order, as a binary heap (`front`): when `front` runs empty, the earliest bucket is taken
//! out of the map and heapified. So a pop sifts through a heap of one bucket's entries (a few
//! thousand at most, in cache) instead of one heap of every timer (measured on 100,000 shuffled
//! timers: the big heap's pop, a cache miss per level, was the largest single cost), and a push
//! is a map lookup among a few hundred buckets and a `Vec` push.
//!
//! Invariants:
//! - every entry in `buckets` has a tick greater than `front_tick`; an entry whose tick is not
//!   greater goes into `front`. So `front` holds the earliest out-of-order entry whenever it is
//!   not empty, and the earliest bucket when it is refilled;
//! - entries pop earliest deadline first, and entries with equal deadlines in the order they
//!   were pushed (the sequence number breaks ties; stricter than CPython, and deterministic):
//!   equal deadlines have equal ticks, so they meet in the same bucket, ordered there by the
//!   heap, or in the run, ordered by arrival; the earliest of the run and `front` is compared
//!   on `(deadline, sequence)`;
//! - a cancelled entry stays where it is until it reaches the front or the queue is rebuilt;
//!   `cancelled` counts the cancelled entries still inside;
//! - the queue is rebuilt without its cancelled entries when it holds more than
//!   [`REBUILD_MIN_LEN`] entries and more than half of them are cancelled (asyncio's rule: it
//!   bounds memory held by cancelled timers while keeping cancel O(1)).
//!
//! # Timers cancelled from any thread ([`WakeTimer`])
//!
//! A `Send` sleep must be cancellable wherever its future is dropped, but the queue and the
//! callback cells are the loop thread's (`Rc`, `Cell`). So a sleep's timer is an entry holding
//! a [`WakeTimer`] (an `Arc`) shared with the sleep: cancelling sets a flag that the queue
//! reads as "cancelled"; when the entry leaves the queue due, the `WakeTimer` itself goes to
//! the ready queue (`Ready::Wake`), where the loop fires it (takes the sleeper's waker and
//! wakes it) in its turn, as it would run a callback. A sleep is one allocation, the
//! `WakeTimer`: no callback cell is made for it, neither while it waits nor when it is due
//! (measured on 100,000 shuffled sleeps: a cell per due timer was a malloc and a free per
//! timer and one more object to reach through a pointer).
//!
//! A due entry is handed to the ready queue without reading its `WakeTimer` (the entry holds
//! the deadline): whether the sleep was cancelled meanwhile is read when the item runs
//! ([`WakeTimer::fire_due`]), and a cancelled one then only leaves. So the queue's pops stay in
//! the queue's own memory and a due timer is reached once, when it fires (with the loop's
//! prefetch of the items ahead, see `Ready::prefetch`). Until its item runs (or `close()`
//! discards it) such an entry still counts as in the queue for the protocol below.
//!
//! Counting such a cancellation towards the rebuild happens on the cancelling thread, through
//! the heap's shared `external` counter, with three bits of the timer's state: `IN_HEAP` (set
//! at push, cleared only by the loop thread when it lets go of the entry: dropped by a rebuild
//! or as a cancelled top, fired, or discarded at `close()`), `CANCELLED`, and `COUNTED` (this
//! cancellation was added to the counter). The canceller increments the
//! counter *before* publishing `CANCELLED | COUNTED` with a compare-exchange that also checks
//! `IN_HEAP`, and takes the increment back if the exchange fails; the loop thread decrements
//! only if it finds `COUNTED` when it clears `IN_HEAP`. So every decrement follows its
//! increment (the counter never wraps), and an entry is counted at most once and only while
//! it is in the heap.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::panic::Location;
use std::sync::Arc;
use std::task::Waker;

use std::time::{Duration, Instant};

use crate::callback::Callback;
use crate::event_loop::Ready;
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

/// A bucket's width: 2^20 ns, about 1 ms (tokio's wheel resolution). Narrower buckets make
/// smaller heaps but more of them to look up; at 100,000 timers over 50 ms a bucket holds
/// about 2,000.
const TICK_NANOS: u64 = 1 << 20;

/// How far before the queue's creation its tick origin lies: deadlines up to this far in the
/// past still get buckets of their own (earlier ones all share tick 0, which is correct, only
/// slower).
const ORIGIN_BEFORE: Duration = Duration::from_secs(3600);

pub(crate) struct TimerEntry {
    pub(crate) when: Instant,
    seq: u64,
    item: Item,
}

/// What a timer entry fires.
enum Item {
    /// A callback (`call_at`, `call_later`), its cell shared with the user's `TimerHandle`.
    Call(Callback),
    /// A `Send` sleep's timer: no callback cell, neither in the queue nor in the ready queue
    /// (see the module docs).
    Wake(Arc<WakeTimer>),
}

impl Item {
    fn is_cancelled(&self) -> bool {
        match self {
            Item::Call(callback) => callback.is_cancelled(),
            Item::Wake(timer) => timer.is_cancelled(),
        }
    }

    /// Cancelled through a `TimerHandle` on this thread (counted in `Timers::cancelled`; a
    /// sleep's cancellation is counted in `external` by its [`WakeTimer`]).
    fn is_locally_cancelled(&self) -> bool {
        match self {
            Item::Call(callback) => callback.is_cancelled(),
            Item::Wake(..) => false,
        }
    }

    /// The queue lets go of the entry (popped, rebuilt away or drained).
    fn left_queue(&self) {
        match self {
            Item::Call(callback) => callback.set_in_heap(false),
            Item::Wake(timer) => timer.left_heap(),
        }
    }

    /// The ready-queue item the loop runs (or, at `close()`, discards) for this entry. A
    /// callback leaves the queue now; a sleep's timer stays `IN_HEAP`, unread, until
    /// [`WakeTimer::fire_due`] or [`WakeTimer::discard`] lets go of it (module docs).
    fn hand_over(self) -> Ready {
        match self {
            Item::Call(callback) => {
                callback.set_in_heap(false);
                Ready::Callback(callback)
            }
            Item::Wake(timer) => Ready::Wake(timer),
        }
    }
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
    Front,
    Run,
}

pub(crate) struct Timers {
    /// The out-of-order entries of the earliest ticks, in order (see the module docs).
    front: BinaryHeap<TimerEntry>,
    /// The greatest tick whose entries go to `front`.
    front_tick: u64,
    /// The other out-of-order entries, by tick, unsorted within a bucket.
    buckets: BTreeMap<u64, Vec<TimerEntry>>,
    /// How many entries `buckets` holds.
    in_buckets: usize,
    /// Tick 0 (see [`ORIGIN_BEFORE`]).
    origin: Instant,
    /// The entries that came in order, earliest first (see the module docs).
    run: VecDeque<TimerEntry>,
    /// Cancelled entries cancelled through a `TimerHandle` (on this thread).
    cancelled: usize,
    /// Cancelled [`WakeTimer`] entries still in the queue, counted by whichever thread cancelled
    /// them (see the module docs).
    external: Arc<AtomicUsize>,
    next_seq: u64,
}

impl Default for Timers {
    fn default() -> Self {
        let now = Instant::now();
        Timers {
            front: BinaryHeap::new(),
            front_tick: 0,
            buckets: BTreeMap::new(),
            in_buckets: 0,
            // Shortly after boot the monotonic clock may not reach back that far.
            origin: now.checked_sub(ORIGIN_BEFORE).unwrap_or(now),
            run: VecDeque::new(),
            cancelled: 0,
            external: Arc::default(),
            next_seq: 0,
        }
    }
}

impl Timers {
    /// Pushes a timer that wakes `waker` at `when` and that any thread may cancel.
    pub(crate) fn push_wake(
        &mut self,
        when: Instant,
        waker: &Waker,
        created_at: &'static Location<'static>,
    ) -> Arc<WakeTimer> {
        // `WakeTimer::new` starts in the queue (`IN_HEAP`).
        let timer = Arc::new(WakeTimer::new(waker, self.external.clone(), created_at));
        self.push_item(when, Item::Wake(timer.clone()));
        timer
    }

    pub(crate) fn push(&mut self, when: Instant, callback: Callback) {
        callback.set_in_heap(true);
        self.push_item(when, Item::Call(callback));
    }

    fn push_item(&mut self, when: Instant, item: Item) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = TimerEntry { when, seq, item };
        // `seq` only grows, so a deadline not earlier than the run's newest keeps it sorted.
        if self.run.back().is_none_or(|newest| newest.when <= when) {
            self.run.push_back(entry);
            return;
        }
        let tick = self.tick(when);
        if tick <= self.front_tick {
            self.front.push(entry);
        } else {
            self.buckets.entry(tick).or_default().push(entry);
            self.in_buckets += 1;
        }
    }

    /// The bucket of a deadline: whole [`TICK_NANOS`] since `origin` (0 before it).
    fn tick(&self, when: Instant) -> u64 {
        let nanos = when.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos / u128::from(TICK_NANOS)).unwrap_or(u64::MAX)
    }

    /// Refills an empty `front` with the earliest bucket (see the module docs).
    fn refill_front(&mut self) {
        if !self.front.is_empty() {
            return;
        }
        if let Some((tick, bucket)) = self.buckets.pop_first() {
            self.in_buckets -= bucket.len();
            self.front_tick = tick;
            self.front = BinaryHeap::from(bucket);
        }
    }

    pub(crate) fn note_cancelled(&mut self) {
        self.cancelled += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.front.len() + self.in_buckets + self.run.len()
    }

    pub(crate) fn cancelled(&self) -> usize {
        // Relaxed: the count is a statistic and a rebuild hint; the heap decides what to skip
        // from each entry's own flag.
        self.cancelled + self.external.load(AtomicOrdering::Relaxed)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the cancelled entries if they are more than half of a large heap.
    pub(crate) fn maybe_rebuild(&mut self) {
        let len = self.len();
        if len > REBUILD_MIN_LEN && self.cancelled() * 2 > len {
            let keep = |e: &TimerEntry| {
                let keep = !e.item.is_cancelled();
                if !keep {
                    e.item.left_queue();
                }
                keep
            };
            self.front.retain(keep);
            for bucket in self.buckets.values_mut() {
                bucket.retain(keep);
            }
            self.buckets.retain(|_, bucket| !bucket.is_empty());
            self.in_buckets = self.buckets.values().map(Vec::len).sum();
            // `retain` keeps the order: the run stays sorted.
            self.run.retain(keep);
            self.cancelled = 0;
        }
    }

    /// The earliest entry, cancelled or not, and the side that holds it (decided once, so
    /// popping it does not compare the two sides again).
    fn earliest(&mut self) -> Option<(Side, &TimerEntry)> {
        self.refill_front();
        match (self.front.peek(), self.run.front()) {
            (Some(front), Some(run)) if front.key() < run.key() => Some((Side::Front, front)),
            (_, Some(run)) => Some((Side::Run, run)),
            (front, None) => front.map(|front| (Side::Front, front)),
        }
    }

    /// Pops cancelled entries off the top, then returns the earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        loop {
            let (side, top) = self.earliest()?;
            if !top.item.is_cancelled() {
                return Some(top.when);
            }
            self.drop_top(side);
        }
    }

    /// Pops the next entry due at `now` as the item the ready queue runs, skipping cancelled
    /// callbacks (and cancelled entries at the top that are not due yet). A due sleep's entry
    /// is handed over without reading its [`WakeTimer`] (whether it was cancelled is decided
    /// when the item runs, see [`WakeTimer::fire_due`]): the entry
    /// holds its deadline, so the pops stay within the queue's own memory, and the timer is
    /// reached once, by the fire (measured on 100,000 shuffled sleeps: touching every due
    /// timer in the pop and again in the fire was a cache miss more per timer).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Ready> {
        loop {
            let (side, top) = self.earliest()?;
            let not_due = top.when > now;
            // For the first entry not due, one read of its flag per call lets a cancelled sleep
            // at the top leave now rather than when due (or at a rebuild).
            if top.item.is_locally_cancelled() || (not_due && top.item.is_cancelled()) {
                self.drop_top(side);
                continue;
            }
            if not_due {
                return None;
            }
            return self.pop_from(side).map(|entry| entry.item.hand_over());
        }
    }

    /// Pops the earliest entry of `side` and lets go of it (a cancelled top).
    fn drop_top(&mut self, side: Side) {
        if let Some(entry) = self.pop_from(side) {
            entry.item.left_queue();
        }
    }

    /// Pops the earliest entry of `side` (the side `earliest` named); the caller lets go of
    /// its item ([`Item::left_queue`]) or hands it over.
    fn pop_from(&mut self, side: Side) -> Option<TimerEntry> {
        let entry = match side {
            Side::Front => self.front.pop(),
            Side::Run => self.run.pop_front(),
        }?;
        if entry.item.is_locally_cancelled() {
            self.cancelled = self.cancelled.saturating_sub(1);
        }
        Some(entry)
    }

    /// Removes every entry, for `close()`; the caller drops the closures.
    pub(crate) fn drain(&mut self) -> Vec<Ready> {
        self.cancelled = 0;
        self.in_buckets = 0;
        let buckets = std::mem::take(&mut self.buckets);
        self.front
            .drain()
            .chain(buckets.into_values().flatten())
            .chain(self.run.drain(..))
            .map(|e| e.item.hand_over())
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
    /// Where the sleep was created (debug mode's reports).
    created_at: &'static Location<'static>,
}

impl WakeTimer {
    /// A timer as the heap holds it (`IN_HEAP`), counting its cancellation into `counter`.
    pub(crate) fn new(
        waker: &Waker,
        counter: Arc<AtomicUsize>,
        created_at: &'static Location<'static>,
    ) -> Self {
        WakeTimer {
            state: AtomicUsize::new(IN_HEAP),
            waker: WakerCell::new(waker),
            counter,
            created_at,
        }
    }

    /// Where the sleep was created.
    pub(crate) fn created_at(&self) -> &'static Location<'static> {
        self.created_at
    }

    /// Loop thread, as the ready queue reaches the item `pop_due` handed over: the queue lets
    /// go of the entry and, unless the sleep was cancelled, the timer fires (its sleeper's
    /// waker is woken). Returns whether it fired.
    ///
    /// One atomic step both clears `IN_HEAP` and sets `FIRED` (the entry was in the queue and
    /// only this thread fires: the exclusive or flips exactly those two bits), so a concurrent
    /// `cancel` either published `CANCELLED | COUNTED` before it (seen in `prev`: uncounted
    /// here, nothing woken) or fails its exchange and then sees `FIRED`.
    pub(crate) fn fire_due(&self) -> bool {
        // AcqRel: pairs with the Acquire load in `fired`, so a sleeper that sees FIRED is done;
        // and with the canceller's exchange, as `left_heap`.
        let prev = self
            .state
            .fetch_xor(IN_HEAP | FIRED, AtomicOrdering::AcqRel);
        debug_assert_eq!(
            prev & (IN_HEAP | FIRED),
            IN_HEAP,
            "fired once, from the queue"
        );
        if prev & COUNTED != 0 {
            self.counter.fetch_sub(1, AtomicOrdering::AcqRel);
        }
        if prev & CANCELLED != 0 {
            return false;
        }
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        true
    }

    /// Starts loading what firing will touch besides the timer itself: the memory the
    /// sleeper's waker points at (a spindle task's cell). Called on a timer already in cache.
    pub(crate) fn prefetch_waker(&self) {
        if let Some(data) = self.waker.peek_data() {
            crate::prefetch::prefetch_around(data.cast());
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

    /// Loop thread: the queue let go of the entry without firing it (a rebuild, a cancelled
    /// top, `close()`).
    pub(crate) fn left_heap(&self) {
        let prev = self.state.fetch_and(!IN_HEAP, AtomicOrdering::AcqRel);
        if prev & COUNTED != 0 {
            self.counter.fetch_sub(1, AtomicOrdering::AcqRel);
        }
    }

    /// Loop thread, at `close()`: the queue lets go of an entry `pop_due` or `drain` handed
    /// over without firing it; the sleeper's waker is dropped here.
    pub(crate) fn discard(&self) {
        self.left_heap();
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

    /// Runs a due item as the loop's `run_item` would: a callback runs, a sleep's timer fires
    /// unless its sleep was cancelled. Returns whether something ran.
    fn run(item: Ready) -> bool {
        match item {
            Ready::Callback(callback) => {
                callback.run();
                true
            }
            Ready::Wake(timer) => timer.fire_due(),
            Ready::Task(_) => unreachable!("the timer queue holds no tasks"),
        }
    }

    /// Pushes deadlines in a scrambled order (so both the run and the buckets fill), pops all, and
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
            timers.in_buckets > 0 && !timers.run.is_empty(),
            "both sides used"
        );
        expected.sort();
        let far = base + Duration::from_secs(1);
        while let Some(item) = timers.pop_due(far) {
            let _ = run(item);
        }
        let order: Vec<u64> = expected.iter().map(|&(_, i)| i).collect();
        assert_eq!(*fired.borrow(), order);
        assert!(timers.is_empty());
    }

    /// A deterministic pseudo-random sequence for the tests.
    fn lcg(x: &mut u64) -> u64 {
        *x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *x >> 33
    }

    /// Deadlines shuffled over many buckets (and before the origin, and in the past), pushed
    /// while earlier ones are being popped: the pops come out earliest first, ties in push
    /// order, and pushes below the refilled front's tick are found too.
    #[test]
    fn pushes_between_pops_across_buckets_keep_the_order() {
        let base = Instant::now();
        let fired = Rc::new(RefCell::new(Vec::new()));
        let mut timers = Timers::default();
        let mut pending: Vec<(Instant, u64)> = Vec::new();
        let mut expected = Vec::new();
        let mut x = 99u64;
        let mut next_id = 0u64;
        let mut push = |timers: &mut Timers, pending: &mut Vec<(Instant, u64)>, when: Instant| {
            let id = next_id;
            next_id += 1;
            let log = fired.clone();
            timers.push(
                when,
                new_callback(move || log.borrow_mut().push(id), Location::caller()),
            );
            pending.push((when, id));
        };
        let when_of = |x: &mut u64| match lcg(x) % 10 {
            // Far in the past (before the origin: tick 0).
            0 => base - Duration::from_secs(7200),
            // A tie with another timer.
            1 => base + Duration::from_millis(3),
            _ => base + Duration::from_micros(lcg(x) % 20_000),
        };
        for _ in 0..3000 {
            let when = when_of(&mut x);
            push(&mut timers, &mut pending, when);
        }
        // Pop up to a moving "now", pushing more in between (some below the front's tick).
        for step in 1..=25u64 {
            let now = base + Duration::from_millis(step);
            pending.sort();
            let (due, rest): (Vec<_>, Vec<_>) = pending.iter().partition(|&&(w, _)| w <= now);
            expected.extend(due.iter().map(|&(_, id)| id));
            pending = rest;
            while let Some(item) = timers.pop_due(now) {
                let _ = run(item);
            }
            assert_eq!(*fired.borrow(), expected, "step {step}");
            for _ in 0..100 {
                let when =
                    now + Duration::from_micros(lcg(&mut x) % 3_000) - Duration::from_micros(500);
                push(&mut timers, &mut pending, when);
            }
        }
        pending.sort();
        expected.extend(pending.iter().map(|&(_, id)| id));
        while let Some(item) = timers.pop_due(base + Duration::from_secs(1)) {
            let _ = run(item);
        }
        assert_eq!(*fired.borrow(), expected);
        assert!(timers.is_empty());
    }

    /// Cancelled entries in every part (run, front, buckets) are skipped, and a rebuild drops
    /// them all and keeps the order of the rest.
    #[test]
    fn cancelled_entries_are_skipped_and_rebuilt_away_in_every_part() {
        let base = Instant::now();
        let fired = Rc::new(RefCell::new(Vec::new()));
        let mut timers = Timers::default();
        let mut kept = Vec::new();
        let mut x = 7u64;
        for i in 0..1000u64 {
            let when = base + Duration::from_micros(lcg(&mut x) % 10_000);
            let log = fired.clone();
            let cb = new_callback(move || log.borrow_mut().push(i), Location::caller());
            timers.push(when, cb.clone());
            if i % 3 == 0 {
                kept.push((when, i));
            } else {
                assert!(cb.cancel(), "the entry sits in the queue");
                timers.note_cancelled();
            }
        }
        // One pop refills the front; then the rebuild.
        assert!(timers.next_deadline().is_some());
        timers.maybe_rebuild();
        assert_eq!(timers.len(), kept.len());
        assert_eq!(timers.cancelled(), 0);
        kept.sort();
        while let Some(item) = timers.pop_due(base + Duration::from_secs(1)) {
            let _ = run(item);
        }
        let order: Vec<u64> = kept.iter().map(|&(_, i)| i).collect();
        assert_eq!(*fired.borrow(), order);
    }

    /// Counts its wake-ups.
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, AtomicOrdering::Relaxed);
        }
    }

    /// A due sleep's timer leaves the queue as itself, the `WakeTimer` the sleep holds: no
    /// callback cell is made for it.
    #[test]
    fn a_due_sleep_timer_leaves_the_queue_as_itself_not_as_a_callback_cell() {
        let counter = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut timers = Timers::default();
        let base = Instant::now();
        let timer = timers.push_wake(base, &waker, Location::caller());
        let item = timers.pop_due(base).expect("the timer is due");
        assert!(matches!(&item, Ready::Wake(due) if Arc::ptr_eq(due, &timer)));
        let _ = run(item);
        assert_eq!(counter.0.load(AtomicOrdering::Relaxed), 1);
    }

    /// Sleep timers spread over buckets, a third cancelled from another thread: the cancelled
    /// ones are counted while queued and never wake, the others wake once each when popped
    /// and run, and the external count is back to zero once the queue is empty.
    #[test]
    fn wake_timers_cancelled_elsewhere_are_counted_skipped_and_released() {
        let base = Instant::now();
        let counter = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut timers = Timers::default();
        let mut x = 3u64;
        let handles: Vec<Arc<WakeTimer>> = (0..600)
            .map(|_| {
                let when = base + Duration::from_micros(lcg(&mut x) % 8_000);
                timers.push_wake(when, &waker, Location::caller())
            })
            .collect();
        std::thread::scope(|s| {
            s.spawn(|| handles.iter().step_by(3).for_each(|t| t.cancel()));
        });
        assert_eq!(timers.cancelled(), 200);
        let mut ran = 0;
        while let Some(item) = timers.pop_due(base + Duration::from_secs(1)) {
            ran += usize::from(run(item));
        }
        assert_eq!(ran, 400, "cancelled entries fire nothing");
        assert_eq!(counter.0.load(AtomicOrdering::Relaxed), 400);
        assert!(timers.is_empty());
        assert_eq!(timers.cancelled(), 0);
    }
}
