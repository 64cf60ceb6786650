//! The queue under a loop's remote inbox: unbounded, many producers, one consumer (the loop's
//! thread), and a tail word that carries the inbox's flags beside the tail position.
//!
//! The layout is crossbeam-channel's list flavour cut down to one consumer: a linked list of
//! blocks of `BLOCK_CAP` slots. A producer claims a slot by moving the tail with one
//! compare-and-swap, writes its value into the slot, and marks the slot `WRITTEN`. The consumer
//! reads slots in order and frees a block once it has read its last slot.
//!
//! # Why the flags live in the tail word
//!
//! A producer's compare-and-swap on the tail is the one locked instruction of a submission; the
//! inbox's other two protocols ride on it instead of adding their own:
//!
//! - **Submit vs close** (`CLOSED`). The loop sets `CLOSED` with a `fetch_or`, which returns
//!   the tail position at that instant. A producer whose swap succeeded did so on a word without
//!   `CLOSED`, so its slot lies below that position; a producer that sees `CLOSED` claims
//!   nothing and takes its value back. After `close`, `pop` waits for every slot below the
//!   closing position to be written, so each value is either drained by the loop or handed back
//!   to its producer, never both, never neither.
//! - **Submit vs park** (`PARKED`). The loop sets `PARKED` with a compare-and-swap that only
//!   succeeds while the tail position equals its head (nothing claimed and unread), and every
//!   producer's swap clears it. The tail word has one modification order: either the producer's
//!   swap comes first (the loop's swap then fails and it sees the claim), or the loop's does
//!   (the producer's swap returns a word with `PARKED`, and that producer wakes the loop). So no
//!   wake-up is lost, and exactly one producer per park issues it.
//! - `FINAL`: the loop has drained for the last time (see `Remote`).
//! - `INSTALL_WAIT`: a producer sleeps until the next block is installed (below).
//!
//! # Waiting for the next block
//!
//! The producer that claims a block's last slot leaves the tail at the block's end (a position
//! that is no slot) until it has installed the next block; other producers cannot claim
//! anything meanwhile. If it is preempted there, they would spin for as long as it is off its
//! core (and under loom, two threads yielding to each other while the installer waits is an
//! unbounded execution). So a waiting producer spins `INSTALL_SPINS` yields, then announces
//! itself with `INSTALL_WAIT` (a compare-and-swap that only succeeds while the tail is still at
//! the block's end) under the `installing` lock, and sleeps on `installed`. The installer moves
//! the tail past the block's end and clears `INSTALL_WAIT` in one compare-and-swap; if the bit
//! was set, it takes the lock and wakes every sleeper. A sleeper announced itself holding the
//! lock and sleeps by releasing it, so the installer's lock-then-notify cannot come between.
//!
//! A slot that is claimed but not yet written makes `pop` return `None` (the producer is between
//! its swap and its write) while `is_empty` says `false`, so the loop comes back to it instead of
//! parking until the write lands; after `STALL_SPINS` such returns in a row it yields its core
//! on each (the writer may be waiting for it).

use std::mem::MaybeUninit;
use std::ptr;

use crate::sync::{
    spin_hint, spin_wait, AtomicPtr, AtomicUsize, Condvar, Mutex, Ordering, UnsafeCell,
};

/// The loop is parked (or about to): the producer that clears it wakes the loop.
pub(crate) const PARKED: usize = 1 << 0;
/// Callbacks are refused.
pub(crate) const CLOSED: usize = 1 << 1;
/// The loop has drained for the last time.
pub(crate) const FINAL: usize = 1 << 2;
/// A producer sleeps until the next block is installed (see the module docs).
const INSTALL_WAIT: usize = 1 << 3;
/// The tail position sits above the flag bits.
const SHIFT: usize = 4;

/// Yields a producer makes, waiting for the next block, before it sleeps: installing takes a
/// few stores, so the wait is over within a yield or two unless the installer lost its core.
/// Under loom it sleeps at once (yields only add states).
#[cfg(not(loom))]
const INSTALL_SPINS: u32 = 16;
#[cfg(loom)]
const INSTALL_SPINS: u32 = 0;
/// `pop`s in a row that found the next slot claimed but unwritten before the loop starts
/// yielding its core on each: until then, a spin hint (the write is a few instructions away).
const STALL_SPINS: usize = 64;

/// Positions per block, one of which (the last) is never a slot: a tail resting there means a
/// producer is installing the next block.
#[cfg(not(loom))]
const LAP: usize = 32;
/// Small under loom, so the models cross block boundaries.
#[cfg(loom)]
const LAP: usize = 3;
const BLOCK_CAP: usize = LAP - 1;

/// A slot's state bit: its value is written.
const WRITTEN: usize = 1;

struct Slot<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    state: AtomicUsize,
}

struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK_CAP],
}

impl<T> Block<T> {
    fn new() -> Box<Self> {
        Box::new(Block {
            next: AtomicPtr::new(ptr::null_mut()),
            slots: std::array::from_fn(|_| Slot {
                value: UnsafeCell::new(MaybeUninit::uninit()),
                state: AtomicUsize::new(0),
            }),
        })
    }
}

/// The producers' end: written by every submission.
struct Tail<T> {
    /// Position `<< SHIFT` | flags.
    index: AtomicUsize,
    /// The block the tail position is in.
    block: AtomicPtr<Block<T>>,
    /// Held by a producer announcing `INSTALL_WAIT`, and by the installer waking it.
    installing: Mutex<()>,
    /// Where producers sleep until the next block is installed.
    installed: Condvar,
}

/// The consumer's end: only the loop's thread touches it (relaxed atomics, no unsafe needed).
struct Head<T> {
    /// Position (no flags).
    index: AtomicUsize,
    block: AtomicPtr<Block<T>>,
    /// Positions below this one were claimed before `CLOSED`: `pop` waits for them.
    closed_at: AtomicUsize,
    /// `pop`s in a row that found the next slot claimed but unwritten.
    stalls: AtomicUsize,
}

/// A value alone on its cache line (128 bytes: adjacent-line prefetch pairs 64-byte lines), so
/// producers writing the tail do not keep stealing the line the consumer reads its head from.
#[repr(align(128))]
struct CacheLine<T>(T);

/// See the module docs.
pub(crate) struct Inbox<T> {
    tail: CacheLine<Tail<T>>,
    head: CacheLine<Head<T>>,
}

// SAFETY: values cross from producers to the consumer (so `T: Send`); slots are handed over
// through the tail swap (one producer per slot) and the slot's `WRITTEN` bit (Release/Acquire),
// and only the consumer reads a slot and frees a block.
unsafe impl<T: Send> Send for Inbox<T> {}
// SAFETY: as above: every shared access goes through the protocol in the module docs.
unsafe impl<T: Send> Sync for Inbox<T> {}

impl<T> Inbox<T> {
    pub(crate) fn new() -> Self {
        let first = Box::into_raw(Block::new());
        Inbox {
            tail: CacheLine(Tail {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(first),
                installing: Mutex::new(()),
                installed: Condvar::new(),
            }),
            head: CacheLine(Head {
                index: AtomicUsize::new(0),
                block: AtomicPtr::new(first),
                closed_at: AtomicUsize::new(0),
                stalls: AtomicUsize::new(0),
            }),
        }
    }

    /// Producer: queues `make(value)` unless the tail word has one of the `refuse` flags, in
    /// which case `value` comes back untouched. `Ok(true)` means this push cleared `PARKED`:
    /// the caller must wake the loop.
    pub(crate) fn push<V>(
        &self,
        value: V,
        make: impl FnOnce(V) -> T,
        refuse: usize,
    ) -> Result<bool, V> {
        let tail = &self.tail.0;
        let mut next_block: Option<Box<Block<T>>> = None;
        let mut index = tail.index.load(Ordering::Acquire);
        let mut block = tail.block.load(Ordering::Acquire);
        let mut spins = 0;
        loop {
            if index & refuse != 0 {
                return Err(value);
            }
            let offset = (index >> SHIFT) % LAP;
            if offset == BLOCK_CAP {
                // Another producer took the block's last slot and is installing the next block:
                // a few yields, then sleep until it is done (see the module docs).
                // Under loom `INSTALL_SPINS` is 0 and this is always false, on purpose.
                #[cfg_attr(loom, allow(clippy::absurd_extreme_comparisons))]
                let spin = spins < INSTALL_SPINS;
                if spin {
                    spins += 1;
                    spin_wait();
                } else {
                    self.wait_for_install(index);
                }
                index = tail.index.load(Ordering::Acquire);
                block = tail.block.load(Ordering::Acquire);
                continue;
            }
            if offset + 1 == BLOCK_CAP && next_block.is_none() {
                // Allocated before the swap, so the tail rests at the block's end only briefly.
                next_block = Some(Block::new());
            }
            let claimed = (index + (1 << SHIFT)) & !PARKED;
            // SeqCst: this swap is also the producer's half of submit-vs-park and
            // submit-vs-close (see the module docs); Acquire on failure pairs with the Release
            // of the block install below, for the block pointer reloaded next.
            match tail.index.compare_exchange_weak(
                index,
                claimed,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + 1 == BLOCK_CAP {
                        let next = Box::into_raw(next_block.take().expect("allocated above"));
                        // The block pointer first, then the position past the block's end
                        // (Release: a producer that sees the new position sees the new block).
                        tail.block.store(next, Ordering::Release);
                        self.finish_install();
                        // SAFETY: `block` is live: the consumer frees it only after reading
                        // its last slot, which is this producer's and not yet written.
                        unsafe { (*block).next.store(next, Ordering::Release) };
                    }
                    // SAFETY: the swap gave this producer slot `offset` of `block` (the tail
                    // position and its block pointer were read in that order, see above), and
                    // the block stays live until the consumer has read this slot.
                    let slot = unsafe { &(*block).slots[offset] };
                    let item = make(value);
                    // SAFETY: nobody else writes this slot, and the consumer reads it only
                    // after the Release store of `WRITTEN` below.
                    slot.value.with_mut(|p| unsafe { (*p).write(item) });
                    slot.state.store(WRITTEN, Ordering::Release);
                    return Ok(index & PARKED != 0);
                }
                Err(now) => {
                    index = now;
                    block = tail.block.load(Ordering::Acquire);
                }
            }
        }
    }

    /// Producer that installed the next block: moves the tail past the old block's end and
    /// clears `INSTALL_WAIT` in one step; wakes the producers that announced themselves.
    fn finish_install(&self) {
        let tail = &self.tail.0;
        let mut now = tail.index.load(Ordering::Relaxed);
        // Release: a producer that sees the new position sees the new block (stored before).
        let before = loop {
            let moved = (now + (1 << SHIFT)) & !INSTALL_WAIT;
            match tail
                .index
                .compare_exchange_weak(now, moved, Ordering::Release, Ordering::Relaxed)
            {
                Ok(before) => break before,
                Err(actual) => now = actual,
            }
        };
        if before & INSTALL_WAIT != 0 {
            // Under the lock: a sleeper announced itself holding it, so it is asleep by now
            // (see the module docs). A poisoned lock guards no data here.
            let _guard = tail.installing.lock().unwrap_or_else(|e| e.into_inner());
            tail.installed.notify_all();
        }
    }

    /// Producer: sleeps until the tail leaves the block end it was seen at (`seen`).
    fn wait_for_install(&self, mut seen: usize) {
        let tail = &self.tail.0;
        let mut guard = tail.installing.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if (seen >> SHIFT) % LAP != BLOCK_CAP {
                return; // installed meanwhile
            }
            if seen & INSTALL_WAIT == 0 {
                // Fails if the tail word changed (the install, or a flag): look again.
                match tail.index.compare_exchange(
                    seen,
                    seen | INSTALL_WAIT,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {}
                    Err(now) => {
                        seen = now;
                        continue;
                    }
                }
            }
            guard = tail
                .installed
                .wait(guard)
                .unwrap_or_else(|e| e.into_inner());
            seen = tail.index.load(Ordering::Acquire);
        }
    }

    /// Consumer: the next value, or `None` if nothing is queued or the next claimed slot is
    /// still being written (after `close`, it waits for slots claimed before the close).
    pub(crate) fn pop(&self) -> Option<T> {
        let head = &self.head.0;
        let position = head.index.load(Ordering::Relaxed);
        let block = head.block.load(Ordering::Relaxed);
        // Acquire pairs with the block install's Release (a position past a block's end).
        if position == self.tail.0.index.load(Ordering::Acquire) >> SHIFT {
            return None;
        }
        let offset = position % LAP;
        // SAFETY: the consumer's block is freed only by the consumer, below, after its last
        // slot is read; `offset < BLOCK_CAP` because the head skips each block's end.
        let slot = unsafe { &(*block).slots[offset] };
        // Acquire pairs with the producer's Release store of `WRITTEN`.
        while slot.state.load(Ordering::Acquire) & WRITTEN == 0 {
            if position >= head.closed_at.load(Ordering::Relaxed) {
                // The caller comes back soon (the queue is not empty, so the loop won't park);
                // past a bound, it gives its core to the writer each time.
                let stalls = head.stalls.load(Ordering::Relaxed) + 1;
                head.stalls.store(stalls, Ordering::Relaxed);
                if stalls >= STALL_SPINS {
                    spin_wait();
                } else {
                    spin_hint();
                }
                return None;
            }
            // Claimed before the close: its producer is writing it and was promised a run.
            spin_wait();
        }
        head.stalls.store(0, Ordering::Relaxed);
        // SAFETY: the slot is written (Acquire above) and read once: the head moves past it.
        let value = slot.value.with(|p| unsafe { ptr::read(p).assume_init() });
        if offset + 1 == BLOCK_CAP {
            // SAFETY: as above, `block` is still live.
            let next = unsafe { &(*block).next };
            let mut next_block = next.load(Ordering::Acquire);
            while next_block.is_null() {
                // Stored before the last slot was written, so not reached in practice.
                spin_wait();
                next_block = next.load(Ordering::Acquire);
            }
            head.block.store(next_block, Ordering::Relaxed);
            head.index.store(position + 2, Ordering::Relaxed);
            // SAFETY: every slot of `block` has been read, every producer of it is done with
            // it (the installer stored `next` before writing its slot), and the tail has moved
            // on, so nothing can reach it any more. It came from `Box::into_raw`.
            drop(unsafe { Box::from_raw(block) });
        } else {
            head.index.store(position + 1, Ordering::Relaxed);
        }
        Some(value)
    }

    /// Consumer: whether nothing is claimed and unread.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.0.index.load(Ordering::Relaxed)
            == self.tail.0.index.load(Ordering::Acquire) >> SHIFT
    }

    /// Consumer: how many slots are claimed and unread (a snapshot).
    pub(crate) fn len(&self) -> usize {
        let head = self.head.0.index.load(Ordering::Relaxed);
        let tail = self.tail.0.index.load(Ordering::Acquire) >> SHIFT;
        // Every lap crossed holds one position that is not a slot.
        (tail - head).saturating_sub(tail / LAP - head / LAP)
    }

    /// Consumer: sets `PARKED` if nothing is queued; returns whether it did.
    pub(crate) fn try_park(&self) -> bool {
        let head = self.head.0.index.load(Ordering::Relaxed);
        let index = &self.tail.0.index;
        let mut now = index.load(Ordering::Acquire);
        loop {
            if now >> SHIFT != head {
                return false;
            }
            // SeqCst: the loop's half of submit-vs-park (see the module docs).
            match index.compare_exchange_weak(
                now,
                now | PARKED,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => now = actual,
            }
        }
    }

    /// Clears `PARKED`; returns whether this call cleared it (whoever clears it owes the loop
    /// its wake-up, unless it is the loop itself).
    pub(crate) fn clear_parked(&self) -> bool {
        let index = &self.tail.0.index;
        index.load(Ordering::Relaxed) & PARKED != 0
            && index.fetch_and(!PARKED, Ordering::AcqRel) & PARKED != 0
    }

    /// Consumer: refuse further pushes that check `CLOSED`. Slots claimed before this call
    /// stay due: `pop` waits for their writes.
    pub(crate) fn close(&self) {
        let index = self.tail.0.index.fetch_or(CLOSED, Ordering::AcqRel);
        self.head
            .0
            .closed_at
            .store(index >> SHIFT, Ordering::Relaxed);
    }

    /// Consumer: the loop will never drain again.
    pub(crate) fn finalize(&self) {
        self.tail.0.index.fetch_or(FINAL, Ordering::AcqRel);
    }

    /// The tail word's flags, for readers on any thread.
    pub(crate) fn flags(&self) -> usize {
        self.tail.0.index.load(Ordering::Acquire) & (PARKED | CLOSED | FINAL)
    }
}

impl<T> Drop for Inbox<T> {
    fn drop(&mut self) {
        // `&mut self`: no producer is left, so every claimed slot is written; drop the values
        // still queued, then the last block.
        self.head.0.closed_at.store(usize::MAX, Ordering::Relaxed);
        while self.pop().is_some() {}
        let block = self.head.0.block.load(Ordering::Relaxed);
        // SAFETY: the consumer's current block is live and no one else can reach it now.
        drop(unsafe { Box::from_raw(block) });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn values_come_out_in_order_across_blocks() {
        let inbox = Inbox::new();
        for i in 0..LAP * 5 {
            assert_eq!(inbox.push(i, |v| v, CLOSED), Ok(false));
        }
        assert_eq!(inbox.len(), LAP * 5);
        for i in 0..LAP * 5 {
            assert_eq!(inbox.pop(), Some(i));
        }
        assert_eq!(inbox.pop(), None);
        assert!(inbox.is_empty());
        assert_eq!(inbox.len(), 0);
    }

    #[test]
    fn a_closed_inbox_hands_the_value_back_unless_the_flag_is_not_checked() {
        let inbox = Inbox::new();
        inbox.push(1, |v| v, CLOSED).unwrap();
        inbox.close();
        assert_eq!(inbox.push(2, |v| v, CLOSED), Err(2));
        assert_eq!(
            inbox.push(3, |v| v, FINAL),
            Ok(false),
            "a task wake-up still gets in"
        );
        inbox.finalize();
        assert_eq!(inbox.push(4, |v| v, FINAL), Err(4));
        assert_eq!(
            (inbox.pop(), inbox.pop(), inbox.pop()),
            (Some(1), Some(3), None)
        );
    }

    #[test]
    fn the_push_that_finds_the_loop_parked_is_told_to_wake_it() {
        let inbox = Inbox::new();
        assert!(inbox.try_park());
        assert_eq!(inbox.push('a', |v| v, CLOSED), Ok(true));
        assert_eq!(inbox.push('b', |v| v, CLOSED), Ok(false), "only the first");
        assert!(!inbox.try_park(), "not while something is queued");
        inbox.pop();
        inbox.pop();
        assert!(inbox.try_park());
        assert!(inbox.clear_parked());
        assert!(!inbox.clear_parked());
    }

    #[test]
    fn values_left_inside_are_dropped_with_the_inbox() {
        let probe = Arc::new(());
        let inbox = Inbox::new();
        for _ in 0..LAP + 3 {
            inbox.push(probe.clone(), |v| v, CLOSED).unwrap();
        }
        drop(inbox.pop());
        drop(inbox);
        assert_eq!(Arc::strong_count(&probe), 1);
    }

    /// Issue 13.13: a producer that finds the tail at a block's end while the installer is
    /// off its core announces itself and sleeps (instead of spinning for as long as the
    /// installer is away), and the install wakes it.
    #[test]
    fn a_producer_waiting_for_a_preempted_installer_sleeps_until_the_install() {
        let inbox = Arc::new(Inbox::new());
        for i in 0..BLOCK_CAP - 1 {
            inbox.push(i, |v| v, CLOSED).unwrap();
        }
        // The "installer": claims the block's last slot, then stops there (preempted).
        let tail = &inbox.tail.0;
        let index = tail.index.load(Ordering::Acquire);
        let block = tail.block.load(Ordering::Acquire);
        tail.index.store(index + (1 << SHIFT), Ordering::Release);
        let producer = {
            let inbox = inbox.clone();
            std::thread::spawn(move || inbox.push(100, |v| v, CLOSED).unwrap())
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while tail.index.load(Ordering::Acquire) & INSTALL_WAIT == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the waiting producer never went to sleep"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The installer comes back: the next block, the tail moved on, its own slot written.
        let next = Box::into_raw(Block::new());
        tail.block.store(next, Ordering::Release);
        inbox.finish_install();
        // SAFETY: `block` is the inbox's live tail block; its last slot is the one claimed
        // above and written by nobody else; the consumer reads it only after `WRITTEN`.
        unsafe {
            (*block).next.store(next, Ordering::Release);
            let slot = &(*block).slots[BLOCK_CAP - 1];
            slot.value.with_mut(|p| (*p).write(BLOCK_CAP - 1));
            slot.state.store(WRITTEN, Ordering::Release);
        }
        producer.join().unwrap();
        let drained: Vec<usize> = std::iter::from_fn(|| inbox.pop()).collect();
        let mut expected: Vec<usize> = (0..BLOCK_CAP).collect();
        expected.push(100);
        assert_eq!(drained, expected);
    }

    #[test]
    fn four_producers_each_keep_their_order() {
        // Miri runs this as well, with fewer values: it interprets every access.
        const PER: usize = if cfg!(miri) { 50 } else { 20_000 };
        let inbox = Arc::new(Inbox::new());
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let inbox = inbox.clone();
                std::thread::spawn(move || {
                    for i in 0..PER {
                        inbox.push((p, i), |v| v, CLOSED).unwrap();
                    }
                })
            })
            .collect();
        let mut next = [0; 4];
        let mut seen = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while seen < 4 * PER {
            assert!(std::time::Instant::now() < deadline, "stalled at {seen}");
            match inbox.pop() {
                Some((p, i)) => {
                    assert_eq!(i, next[p], "producer {p} out of order");
                    next[p] += 1;
                    seen += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert!(inbox.is_empty());
    }
}
