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
//! # Timers cancelled from any thread: the sleep slab
//!
//! A `Send` sleep must be cancellable wherever its future is dropped, but the queue and the
//! callback cells are the loop thread's (`Rc`, `Cell`). So a sleep's timer is a *slot* of the
//! loop's [`SleepSlab`]: an atomic state word and the sleeper's waker, in chunks of
//! [`CHUNK_SLOTS`] that never move and that the slab and every waiting sleep share (`Arc`).
//! The queue entry holds the slot's index; the sleep holds a [`WakeTimer`]: its chunk, the
//! slot, and the slot's *generation* when the sleep took it. Cancelling sets a flag that the
//! queue reads as "cancelled"; when the entry leaves the queue due, its index goes to the
//! ready queue (`Ready::Wake`), where the loop fires it (takes the sleeper's waker and wakes
//! it) in its turn, as it would run a callback. No allocation per sleep, neither a callback
//! cell nor a timer object: a slot freed by one sleep is taken by the next, last freed first
//! (measured on 100,000 shuffled sleeps: an `Arc` timer per sleep was a malloc and a free
//! each; the slab took ~210 instructions off each timer, see the README).
//!
//! A due entry is handed to the ready queue without reading its slot (the entry holds the
//! deadline): whether the sleep was cancelled meanwhile is read when the item runs
//! ([`SleepSlab::fire_due`]), and a cancelled one then only leaves. So the queue's pops stay in
//! the queue's own memory and a due timer is reached once, when it fires (with the loop's
//! prefetch of the items ahead, see `Ready::prefetch`). Until its item runs (or `close()`
//! discards it) such an entry still counts as in the queue for the protocol below.
//!
//! **Generations.** The state word is the slot's generation above three flags. Only the loop
//! thread moves the generation on, in the one atomic swap with which the queue lets go of the
//! slot (fired, or dropped as cancelled): the swap clears the flags and adds one to the
//! generation, and the slot is then free for the next sleep. A sleep whose generation is no
//! longer the slot's is over: it fired (only its own drop cancels it). A sleep's handle
//! writes to the slot only while the generation is still its own, checked inside the step that
//! writes: its compare-exchange on the state carries the generation, and it registers or takes
//! its waker under the waker's lock after reading the generation there. The fire takes the
//! waker under that lock *after* its swap, and the slot is freed only after that; so a poll
//! registering a new waker either did so before the fire took it (and is woken) or reads the
//! new generation (and is over), and a stale sleep never writes to its slot's next sleep. A
//! canceller takes its waker first, then publishes `CANCELLED`, so the loop never holds a
//! cancelled sleep's waker to drop. At `close()` a slot leaves the queue without a new
//! generation and is never reused: its sleep stays pending, as asyncio's does when its loop
//! closes. (The state word keeps 61 bits of generation, a sleep's ticket the low
//! 64 - [`INDEX_BITS`] of them: a slot freed and retaken every 100 ns would take ~57 years to
//! come back to a generation a stale sleep could mistake for its own.)
//!
//! **The second poll.** A sleep polled on the loop that holds its timer, with a deadline not
//! later than the clock reading of the last due-timers pass whose batch has run
//! (`Inner::timer_fired_by`), is over without reading its slot: that pass popped every entry
//! due at that reading and the batch fired each one. So the common case (woken by its timer,
//! the task polled in the next iteration) does not reach the slot again, a cache miss the
//! loop's prefetch of the task could not hide; the slot is then already another sleep's.
//!
//! **Counting** a cancellation towards the rebuild happens on the cancelling thread, through
//! the queue's shared `external` counter, with the three flags: `IN_HEAP` (set at push,
//! cleared only by the loop thread when it lets go of the slot: dropped by a rebuild or as a
//! cancelled top, fired, or discarded at `close()`), `CANCELLED`, and `COUNTED` (this
//! cancellation was added to the counter). The canceller increments the counter *before*
//! publishing `CANCELLED | COUNTED` with a compare-exchange that also checks `IN_HEAP` and the
//! generation, and takes the increment back if the exchange fails; the loop thread decrements
//! only if it finds `COUNTED` when it clears `IN_HEAP`. So every decrement follows its
//! increment (the counter never wraps), and an entry is counted at most once and only while
//! it is in the queue. The loom models in `loom-tests/tests/timers.rs` check these protocols,
//! the reuse of a slot included.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::panic::Location;
use std::sync::Arc;
use std::task::Waker;

use std::time::{Duration, Instant};

use crate::callback::Callback;
use crate::event_loop::Ready;
// The waker's lock is part of the fire/poll handshake: `WakerCell` uses loom's under loom.
use crate::sync::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering, WakerCell};

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
    /// A `Send` sleep's timer: the index of its slot in the loop's [`SleepSlab`]; no callback
    /// cell, neither in the queue nor in the ready queue (see the module docs).
    Wake(usize),
}

impl Item {
    fn is_cancelled(&self, slab: &SleepSlab) -> bool {
        match self {
            Item::Call(callback) => callback.is_cancelled(),
            Item::Wake(index) => slab.is_cancelled(*index),
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

    /// The queue lets go of a cancelled entry (a cancelled top, or rebuilt away).
    fn left_queue(&self, slab: &mut SleepSlab) {
        match self {
            Item::Call(callback) => callback.set_in_heap(false),
            Item::Wake(index) => slab.drop_cancelled(*index),
        }
    }

    /// The ready-queue item the loop runs (or, at `close()`, discards) for this entry. A
    /// callback leaves the queue now; a sleep's slot stays `IN_HEAP`, unread, until
    /// [`SleepSlab::fire_due`] or [`SleepSlab::discard`] lets go of it (module docs).
    fn hand_over(self) -> Ready {
        match self {
            Item::Call(callback) => {
                callback.set_in_heap(false);
                Ready::Callback(callback)
            }
            Item::Wake(index) => Ready::Wake(index),
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
    /// Cancelled sleep entries still in the queue, counted by whichever thread cancelled
    /// them (see the module docs).
    external: Arc<AtomicUsize>,
    /// The `Send` sleeps' timer slots.
    slab: SleepSlab,
    next_seq: u64,
}

impl Default for Timers {
    /// A queue for no loop in particular (loop id 0, which no loop has): tests.
    fn default() -> Self {
        Timers::new(0)
    }
}

impl Timers {
    /// The queue of the loop `loop_id` (its sleeps' handles name it, see [`WakeTimer`]).
    pub(crate) fn new(loop_id: u64) -> Self {
        let now = Instant::now();
        let external = Arc::<AtomicUsize>::default();
        Timers {
            front: BinaryHeap::new(),
            front_tick: 0,
            buckets: BTreeMap::new(),
            in_buckets: 0,
            // Shortly after boot the monotonic clock may not reach back that far.
            origin: now.checked_sub(ORIGIN_BEFORE).unwrap_or(now),
            run: VecDeque::new(),
            cancelled: 0,
            slab: SleepSlab::new(external.clone(), loop_id),
            external,
            next_seq: 0,
        }
    }
}

impl Timers {
    /// Pushes a timer that wakes `waker` at `when` and that any thread may cancel: the
    /// sleep's handle, and a waker the reused slot still held (none, normally) for the caller
    /// to drop after its borrow of the queue.
    pub(crate) fn push_wake(
        &mut self,
        when: Instant,
        waker: &Waker,
        created_at: &'static Location<'static>,
    ) -> (WakeTimer, Option<Waker>) {
        // The slot starts in the queue (`IN_HEAP`).
        let (index, timer, old) = self.slab.push(waker, created_at);
        self.push_item(when, Item::Wake(index));
        (timer, old)
    }

    /// The sleep slots, for the ready queue's fire and prefetch of a due sleep.
    pub(crate) fn slab(&mut self) -> &mut SleepSlab {
        &mut self.slab
    }

    /// The sleep slots, read only (prefetch, reports).
    pub(crate) fn slab_ref(&self) -> &SleepSlab {
        &self.slab
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
            let slab = &mut self.slab;
            let mut keep = |e: &TimerEntry| {
                let keep = !e.item.is_cancelled(slab);
                if !keep {
                    e.item.left_queue(slab);
                }
                keep
            };
            self.front.retain(&mut keep);
            for bucket in self.buckets.values_mut() {
                bucket.retain(&mut keep);
            }
            // `retain` keeps the order: the run stays sorted.
            self.run.retain(&mut keep);
            self.buckets.retain(|_, bucket| !bucket.is_empty());
            self.in_buckets = self.buckets.values().map(Vec::len).sum();
            self.cancelled = 0;
        }
    }

    /// The earliest entry, cancelled or not, and the side that holds it (call `refill_front`
    /// first; decided once, so popping it does not compare the two sides again).
    fn peek_earliest(&self) -> Option<(Side, &TimerEntry)> {
        match (self.front.peek(), self.run.front()) {
            (Some(front), Some(run)) if front.key() < run.key() => Some((Side::Front, front)),
            (_, Some(run)) => Some((Side::Run, run)),
            (front, None) => front.map(|front| (Side::Front, front)),
        }
    }

    /// Pops cancelled entries off the top, then returns the earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        loop {
            self.refill_front();
            let (side, top) = self.peek_earliest()?;
            if !top.item.is_cancelled(&self.slab) {
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
            self.refill_front();
            let (side, top) = self.peek_earliest()?;
            let not_due = top.when > now;
            // For the first entry not due, one read of its flag per call lets a cancelled sleep
            // at the top leave now rather than when due (or at a rebuild).
            if top.item.is_locally_cancelled() || (not_due && top.item.is_cancelled(&self.slab)) {
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
            entry.item.left_queue(&mut self.slab);
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

/// How many slots a chunk of the sleep slab holds. Under loom, two: the models reach a second
/// chunk and reuse a slot within a few steps.
#[cfg(not(loom))]
const INDEX_BITS: u32 = 10;
#[cfg(loom)]
const INDEX_BITS: u32 = 1;
const CHUNK_SLOTS: usize = 1 << INDEX_BITS;

/// Slot state: the queue holds the slot's entry (set at push; cleared only by the loop thread,
/// when the entry leaves: fired, dropped cancelled, or discarded at `close()`).
const IN_HEAP: u64 = 1 << 0;
/// The sleep was dropped before its timer fired.
const CANCELLED: u64 = 1 << 1;
/// The cancellation is included in the queue's `external` count.
const COUNTED: u64 = 1 << 2;
/// The bits above the flags are the slot's generation.
const GENERATION_SHIFT: u32 = 3;

/// The generation a slot state carries (see the module docs).
fn generation(state: u64) -> u64 {
    state >> GENERATION_SHIFT
}

/// A sleep's ticket: the generation of its slot (as many low bits as fit) above the slot's
/// index in its chunk, one word in the `Sleep` (a task's future holds it).
fn ticket(generation: u64, index: usize) -> u64 {
    (generation << INDEX_BITS) | index as u64
}

/// One sleep's timer, in the loop's slab (see the module docs).
struct SleepSlot {
    /// The generation and the flags.
    state: AtomicU64,
    /// The sleeper's waker (taken by the fire, or by the cancel).
    waker: WakerCell,
}

/// A fixed run of slots. The loop's slab and every sleep waiting in one of its slots share it
/// (`Arc`), so the slots never move and outlive whichever of the two lets go last.
pub(crate) struct SlotChunk {
    slots: Box<[SleepSlot]>,
    /// The queue's count of cancelled sleeps still inside it (`Timers::external`).
    counter: Arc<AtomicUsize>,
    /// The loop whose queue holds the slots' timers.
    loop_id: u64,
}

/// The loop's timer slots for `Send` sleeps (see the module docs): chunks that never move,
/// and the free slots, reused last freed first (likely still in cache). Loop thread only.
pub(crate) struct SleepSlab {
    chunks: Vec<Arc<SlotChunk>>,
    free: Vec<usize>,
    /// Where each slot's sleep was created (debug mode's reports), by slot index: read only
    /// when a report needs it, so a fire does not touch it.
    sites: Vec<&'static Location<'static>>,
    counter: Arc<AtomicUsize>,
    loop_id: u64,
}

impl SleepSlab {
    /// The slots of the loop `loop_id`, counting cancellations into `counter`.
    pub(crate) fn new(counter: Arc<AtomicUsize>, loop_id: u64) -> Self {
        SleepSlab {
            chunks: Vec::new(),
            free: Vec::new(),
            sites: Vec::new(),
            counter,
            loop_id,
        }
    }

    fn slot(&self, index: usize) -> &SleepSlot {
        &self.chunks[index / CHUNK_SLOTS].slots[index % CHUNK_SLOTS]
    }

    /// Takes a free slot (a new chunk if none is free) for a sleep that `waker` wakes: the
    /// slot's index for the queue entry, the sleep's handle, and the waker the slot held
    /// before (none, normally), for the caller to drop after its borrow of the queue.
    pub(crate) fn push(
        &mut self,
        waker: &Waker,
        created_at: &'static Location<'static>,
    ) -> (usize, WakeTimer, Option<Waker>) {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let base = self.chunks.len() * CHUNK_SLOTS;
                let slots = (0..CHUNK_SLOTS)
                    .map(|_| SleepSlot {
                        state: AtomicU64::new(0),
                        waker: WakerCell::empty(),
                    })
                    .collect();
                self.chunks.push(Arc::new(SlotChunk {
                    slots,
                    counter: self.counter.clone(),
                    loop_id: self.loop_id,
                }));
                self.sites.resize(base + CHUNK_SLOTS, created_at);
                // Popped lowest first, so a fresh chunk fills in address order.
                self.free.extend((base + 1..base + CHUNK_SLOTS).rev());
                base
            }
        };
        self.sites[index] = created_at;
        let slot = self.slot(index);
        let old = slot.waker.replace(waker);
        // Relaxed: only this thread changes a slot's generation (at release); a free slot's
        // flags are clear.
        let generation = generation(slot.state.load(AtomicOrdering::Relaxed));
        // Release: a handle that reads this generation sees the waker stored above (the
        // handle itself is made here, on this thread, and reaches others through a waker).
        slot.state.store(
            (generation << GENERATION_SHIFT) | IN_HEAP,
            AtomicOrdering::Release,
        );
        let timer = WakeTimer {
            chunk: self.chunks[index / CHUNK_SLOTS].clone(),
            ticket: ticket(generation, index % CHUNK_SLOTS),
        };
        (index, timer, old)
    }

    /// Whether the sleep of a slot the queue holds was cancelled.
    pub(crate) fn is_cancelled(&self, index: usize) -> bool {
        self.slot(index).state.load(AtomicOrdering::Acquire) & CANCELLED != 0
    }

    /// The queue lets go of a slot: its generation moves on (the sleep's handle now reads
    /// "over") and the slot is free for the next sleep. Returns the state it had.
    ///
    /// One atomic step both clears the flags and moves the generation on, so a concurrent
    /// `cancel` either published `CANCELLED | COUNTED` before it (seen here and uncounted)
    /// or fails its exchange and then sees the new generation.
    fn release(&mut self, index: usize) -> u64 {
        let slot = self.slot(index);
        let generation = generation(slot.state.load(AtomicOrdering::Relaxed));
        // AcqRel: pairs with the canceller's exchange (its count comes before), and with the
        // sleeper's Acquire load of the generation (the fire's wake-up comes after).
        let prev = slot
            .state
            .swap((generation + 1) << GENERATION_SHIFT, AtomicOrdering::AcqRel);
        if prev & COUNTED != 0 {
            self.counter.fetch_sub(1, AtomicOrdering::AcqRel);
        }
        prev
    }

    /// A cancelled slot leaves the queue (a cancelled top, a rebuild). The canceller took its
    /// waker before it published `CANCELLED`, so the slot holds none.
    pub(crate) fn drop_cancelled(&mut self, index: usize) {
        self.release(index);
        self.free.push(index);
    }

    /// Loop thread, as the ready queue reaches a due slot `pop_due` handed over: the queue
    /// lets go of it and, unless the sleep was cancelled (then the slot is free at once and
    /// this returns `None`), returns the sleeper's waker to wake (none if it was taken
    /// meanwhile). The waker is taken under the lock after the generation moved on: a poll
    /// registering a new waker either did so before (this takes it) or sees the new
    /// generation (see [`WakeTimer::poll_fired`]). A fired slot is freed by [`free_fired`]
    /// (Self::free_fired), after the wake-up: until then its site stays for a report.
    pub(crate) fn fire_due(&mut self, index: usize) -> Option<Option<Waker>> {
        let prev = self.release(index);
        if prev & CANCELLED != 0 {
            self.free.push(index);
            return None;
        }
        Some(self.slot(index).waker.take())
    }

    /// A slot [`fire_due`](Self::fire_due) fired is free for the next sleep.
    pub(crate) fn free_fired(&mut self, index: usize) {
        self.free.push(index);
    }

    /// Loop thread, at `close()`: the queue lets go of a slot without firing it. The slot
    /// keeps its generation and is never reused (the loop is closed), so its sleep stays
    /// pending; returns the sleeper's waker for the caller to drop after its borrow.
    pub(crate) fn discard(&mut self, index: usize) -> Option<Waker> {
        let slot = self.slot(index);
        let prev = slot.state.fetch_and(!IN_HEAP, AtomicOrdering::AcqRel);
        if prev & COUNTED != 0 {
            self.counter.fetch_sub(1, AtomicOrdering::AcqRel);
        }
        slot.waker.take()
    }

    /// Where the sleep of a slot was created.
    pub(crate) fn created_at(&self, index: usize) -> &'static Location<'static> {
        self.sites[index]
    }

    /// Starts loading a due slot (the ready queue's prefetch, see `Ready::prefetch`).
    pub(crate) fn prefetch(&self, index: usize) {
        crate::prefetch::prefetch_around(std::ptr::from_ref(self.slot(index)).cast());
    }

    /// Starts loading what firing a slot will touch besides the slot itself: the memory its
    /// waker points at (a spindle task's cell). Called on a slot already in cache.
    pub(crate) fn prefetch_waker(&self, index: usize) {
        if let Some(data) = self.slot(index).waker.peek_data() {
            crate::prefetch::prefetch_around(data.cast());
        }
    }
}

/// A `Send` sleep's handle on its slot: the chunk (kept alive by it) and the sleep's ticket,
/// the slot's index and the generation it had when the sleep took it. See the module docs for
/// the protocol.
pub(crate) struct WakeTimer {
    chunk: Arc<SlotChunk>,
    ticket: u64,
}

impl WakeTimer {
    fn slot(&self) -> &SleepSlot {
        &self.chunk.slots[(self.ticket % CHUNK_SLOTS as u64) as usize]
    }

    /// The loop whose queue holds the timer.
    pub(crate) fn loop_id(&self) -> u64 {
        self.chunk.loop_id
    }

    /// Whether a slot state is of this sleep's generation (compared on the bits the ticket
    /// keeps: 64 - [`INDEX_BITS`], too many to wrap).
    fn is_mine(&self, state: u64) -> bool {
        ticket(generation(state), 0) == self.ticket & !(CHUNK_SLOTS as u64 - 1)
    }

    /// Whether the slot still belongs to this sleep (its timer has not left the queue, or
    /// left it discarded at `close()`).
    fn is_current(&self) -> bool {
        // Acquire: pairs with the release's swap, so a sleeper that sees the new generation
        // sees everything the loop did before its fire.
        self.is_mine(self.slot().state.load(AtomicOrdering::Acquire))
    }

    /// Any thread, the sleeper's poll: whether the timer fired; if not, `waker` is the one it
    /// will wake. The generation is checked again under the waker's lock: the fire moves it
    /// on before it takes the waker under that lock, so either it finds the new waker or this
    /// sees the new generation; and a slot already reused is never written.
    pub(crate) fn poll_fired(&self, waker: &Waker) -> bool {
        !self.is_current() || !self.slot().waker.register_if(waker, || self.is_current())
    }

    /// Any thread: the sleep was dropped early. Lets go of the sleeper's waker (while the
    /// slot is still this sleep's: checked under the lock), then counts the entry as
    /// cancelled if the queue still holds it. Returns whether the cancellation is recorded
    /// (false: the timer fired first, or it was cancelled already).
    pub(crate) fn cancel(&self) -> bool {
        // First the waker, so that the loop never has one to drop for a cancelled slot; a
        // fire in between wakes nobody, and the exchange below then sees its generation.
        drop(self.slot().waker.take_if(|| self.is_current())); // after the lock
        let slot = self.slot();
        let mut state = slot.state.load(AtomicOrdering::Acquire);
        loop {
            if !self.is_mine(state) || state & CANCELLED != 0 {
                return false;
            }
            let in_heap = state & IN_HEAP != 0;
            if in_heap {
                // Before the exchange publishes COUNTED: the loop's decrement (which needs
                // COUNTED) always comes after this increment.
                self.chunk.counter.fetch_add(1, AtomicOrdering::AcqRel);
            }
            let next = state | CANCELLED | if in_heap { COUNTED } else { 0 };
            match slot.state.compare_exchange(
                state,
                next,
                AtomicOrdering::AcqRel,
                AtomicOrdering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => {
                    if in_heap {
                        self.chunk.counter.fetch_sub(1, AtomicOrdering::AcqRel);
                    }
                    state = actual;
                }
            }
        }
    }

    /// Whether this sleep's cancellation is recorded in its slot (loom models).
    #[cfg(loom)]
    pub(crate) fn is_cancelled(&self) -> bool {
        let state = self.slot().state.load(AtomicOrdering::Acquire);
        self.is_mine(state) && state & CANCELLED != 0
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
    fn run(timers: &mut Timers, item: Ready) -> bool {
        match item {
            Ready::Callback(callback) => {
                callback.run();
                true
            }
            Ready::Wake(index) => {
                let Some(waker) = timers.slab().fire_due(index) else {
                    return false;
                };
                if let Some(waker) = waker {
                    waker.wake();
                }
                timers.slab().free_fired(index);
                true
            }
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
            let _ = run(&mut timers, item);
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
                let _ = run(&mut timers, item);
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
            let _ = run(&mut timers, item);
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
            let _ = run(&mut timers, item);
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

    fn counting_waker() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    /// A due sleep's timer leaves the queue as its slot, the one the sleep's handle points
    /// at: no callback cell is made for it.
    #[test]
    fn a_due_sleep_timer_leaves_the_queue_as_its_slot_not_as_a_callback_cell() {
        let (counter, waker) = counting_waker();
        let mut timers = Timers::default();
        let base = Instant::now();
        let (timer, _) = timers.push_wake(base, &waker, Location::caller());
        let item = timers.pop_due(base).expect("the timer is due");
        let Ready::Wake(index) = item else {
            panic!("a sleep's timer became a callback");
        };
        assert!(std::ptr::eq(timers.slab_ref().slot(index), timer.slot()));
        let _ = run(&mut timers, item);
        assert_eq!(counter.0.load(AtomicOrdering::Relaxed), 1);
    }

    /// A fired slot is reused by the next sleep (no allocation per sleep), and the first
    /// sleep's handle, now stale, reads its sleep as over: its poll registers nothing and its
    /// cancel cancels nothing in the slot's new sleep, which fires and wakes its own waker.
    #[test]
    fn a_fired_slot_is_reused_and_its_stale_handle_never_touches_the_next_sleep() {
        let (first_wakes, first) = counting_waker();
        let (second_wakes, second) = counting_waker();
        let (stray_wakes, stray) = counting_waker();
        let mut timers = Timers::default();
        let base = Instant::now();
        let (old, _) = timers.push_wake(base, &first, Location::caller());
        let Some(item) = timers.pop_due(base) else {
            panic!("due")
        };
        assert!(run(&mut timers, item));
        assert_eq!(first_wakes.0.load(AtomicOrdering::Relaxed), 1);
        let (new, _) = timers.push_wake(base, &second, Location::caller());
        assert!(std::ptr::eq(old.slot(), new.slot()), "the slot is reused");
        assert!(old.poll_fired(&stray), "the first sleep is over");
        assert!(!old.cancel(), "a stale handle cancels nothing");
        assert_eq!(timers.cancelled(), 0, "the new sleep is not cancelled");
        assert!(!new.poll_fired(&second), "the new sleep waits");
        let Some(item) = timers.pop_due(base) else {
            panic!("due")
        };
        assert!(run(&mut timers, item), "the new sleep fires");
        assert_eq!(second_wakes.0.load(AtomicOrdering::Relaxed), 1);
        assert_eq!(stray_wakes.0.load(AtomicOrdering::Relaxed), 0);
        assert!(new.poll_fired(&second));
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
        let handles: Vec<WakeTimer> = (0..600)
            .map(|_| {
                let when = base + Duration::from_micros(lcg(&mut x) % 8_000);
                timers.push_wake(when, &waker, Location::caller()).0
            })
            .collect();
        std::thread::scope(|s| {
            s.spawn(|| handles.iter().step_by(3).for_each(|t| assert!(t.cancel())));
        });
        assert_eq!(timers.cancelled(), 200);
        let mut ran = 0;
        while let Some(item) = timers.pop_due(base + Duration::from_secs(1)) {
            ran += usize::from(run(&mut timers, item));
        }
        assert_eq!(ran, 400, "cancelled entries fire nothing");
        assert_eq!(counter.0.load(AtomicOrdering::Relaxed), 400);
        assert!(timers.is_empty());
        assert_eq!(timers.cancelled(), 0);
    }
}
