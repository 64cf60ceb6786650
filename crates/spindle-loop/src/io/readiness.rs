//! The readiness of one I/O source, shared by its home loop and every task that uses it.
//!
//! # Protocol (after tokio's `ScheduledIo`)
//!
//! `state` holds two readiness bits (`READABLE`, `WRITABLE`), two closed bits (`READ_CLOSED`,
//! `WRITE_CLOSED`: end of stream or an error; a short transfer never clears them), a
//! `SHUTDOWN` bit (the home loop closed: every waiter gets an error from then on) and a
//! **tick** in the high bits, counting
//! the events the home loop has delivered. Beside it, two waker slots (a reader and a writer)
//! under one mutex.
//!
//! - **Home loop, on an event** ([`Readiness::deliver`]): sets the bits and bumps the tick with
//!   one `fetch_update` (AcqRel), *then* locks the slots and takes the matching wakers, and
//!   wakes them after unlocking.
//! - **A task, before a syscall** ([`Readiness::poll_ready`]): reads `state` (Acquire); if its
//!   bit is set, it returns at once with the tick it saw. Else it locks the slots, stores its
//!   waker, and reads `state` again **under the lock**: the home loop's lock comes after its
//!   bit store, so either the loop finds the waker (the loop locked after the store) or the
//!   re-read finds the bit (the loop locked before). No event is lost between "the syscall said
//!   `WouldBlock`" and "the waker is stored" (loom: `io_readiness`).
//! - **A task, after `WouldBlock`** ([`Readiness::clear`]): clears its bit only if the tick is
//!   still the one it saw (compare-exchange): an event delivered after that syscall keeps its
//!   bit, so the next poll tries the syscall again instead of sleeping through it.
//!
//! - **A task, after a short transfer on a byte stream** ([`Readiness::clear_ready`]): the
//!   kernel buffer was drained (filled), so the readiness bit goes the same way, but a closed
//!   bit stays: data and the peer's FIN can arrive in one edge, and the read returning end of
//!   stream must still be tried.
//!
//! A new source starts with both bits set: the first operation always tries its syscall, and
//! the source is registered with a loop only when that says `WouldBlock` (see `Source`).

use std::task::{Context, Poll, Waker};

use crate::sync::{AtomicUsize, Mutex, Ordering};

/// The source can be read (or accepted from) without blocking, as far as the loop knows.
pub(crate) const READABLE: usize = 1 << 0;
/// The source can be written (or its connect has finished), as far as the loop knows.
pub(crate) const WRITABLE: usize = 1 << 1;
/// The home loop closed: waiters get an error, no event will come.
pub(crate) const SHUTDOWN: usize = 1 << 2;
/// The peer closed its writing side, or the socket has an error: a read returns at once (end
/// of stream or the error). Never cleared by a short read: data and the FIN may come in one
/// edge, and the read after the data must still be tried (tokio keeps the same bit).
pub(crate) const READ_CLOSED: usize = 1 << 3;
/// The connection is gone for writing (hang-up or error): a write returns its error at once.
pub(crate) const WRITE_CLOSED: usize = 1 << 4;
const READINESS_BITS: usize = READABLE | WRITABLE | SHUTDOWN | READ_CLOSED | WRITE_CLOSED;
/// The tick lives above the readiness bits; it wraps, which only matters if a task is
/// preempted for 2^61 events between its syscall and its `clear` (it would then keep a stale
/// bit and try the syscall once more: harmless).
const TICK_SHIFT: u32 = 5;

/// Which side of a source an operation waits on.
#[cfg_attr(loom, allow(dead_code))] // the loom models wait on reads only
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    fn bit(self) -> usize {
        match self {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        }
    }

    fn closed_bit(self) -> usize {
        match self {
            Direction::Read => READ_CLOSED,
            Direction::Write => WRITE_CLOSED,
        }
    }
}

/// What [`Readiness::poll_ready`] saw: the tick to clear against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadyEvent {
    tick: usize,
    bit: usize,
    closed: usize,
}

/// Why a wait ended without readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shutdown;

#[derive(Default)]
struct Waiters {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// The readiness state of one source (see the module docs).
pub(crate) struct Readiness {
    state: AtomicUsize,
    waiters: Mutex<Waiters>,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new()
    }
}

impl Readiness {
    /// Both directions ready: the first operations try their syscalls.
    pub(crate) fn new() -> Self {
        Readiness {
            state: AtomicUsize::new(READABLE | WRITABLE),
            waiters: Mutex::new(Waiters::default()),
        }
    }

    fn lock(&self) -> impl std::ops::DerefMut<Target = Waiters> + '_ {
        // Only `Option<Waker>` assignments happen under the lock: a poisoned one is consistent.
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Task side: `Ready` with the current tick if `direction` is ready (or an error once the
    /// home loop is gone); else stores `cx`'s waker and returns `Pending`.
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<Result<ReadyEvent, Shutdown>> {
        // Acquire pairs with `deliver`'s AcqRel update: what the loop saw before the event
        // (nothing of ours, but the tick's order) is visible.
        if let Some(ready) = Self::check(self.state.load(Ordering::Acquire), direction) {
            return Poll::Ready(ready);
        }
        let mut waiters = self.lock();
        let slot = match direction {
            Direction::Read => &mut waiters.reader,
            Direction::Write => &mut waiters.writer,
        };
        let old = match slot {
            Some(current) if current.will_wake(cx.waker()) => None,
            _ => slot.replace(cx.waker().clone()),
        };
        // Under the lock: `deliver` stores its bits before it locks (see the module docs).
        let again = Self::check(self.state.load(Ordering::Acquire), direction);
        drop(waiters);
        // A waker's drop may run a task's destructor: never under the lock.
        drop(old);
        match again {
            Some(ready) => Poll::Ready(ready),
            None => Poll::Pending,
        }
    }

    /// The readiness event `direction` would be cleared against now (`None` if it is not
    /// ready): for a caller that learns only after its syscall that it drained the source.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn last_seen(&self, direction: Direction) -> Option<ReadyEvent> {
        Self::check(self.state.load(Ordering::Acquire), direction).and_then(Result::ok)
    }

    fn check(state: usize, direction: Direction) -> Option<Result<ReadyEvent, Shutdown>> {
        if state & SHUTDOWN != 0 {
            return Some(Err(Shutdown));
        }
        let bit = direction.bit();
        let closed = direction.closed_bit();
        (state & (bit | closed) != 0).then_some(Ok(ReadyEvent {
            tick: state >> TICK_SHIFT,
            bit,
            closed,
        }))
    }

    /// Task side, after the syscall said `WouldBlock`: forget the readiness `event` reported
    /// (its closed bit too: a closed side does not say `WouldBlock`), unless a newer event
    /// came since.
    pub(crate) fn clear(&self, event: ReadyEvent) {
        self.clear_bits(event, event.bit | event.closed);
    }

    /// Task side, after a short read or write of a byte stream: the buffer was drained (or
    /// filled), so forget the readiness, but keep a closed bit: the end of stream (or the
    /// error) is still to be read.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn clear_ready(&self, event: ReadyEvent) {
        self.clear_bits(event, event.bit);
    }

    fn clear_bits(&self, event: ReadyEvent, bits: usize) {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current >> TICK_SHIFT != event.tick {
                return; // a newer event: its readiness stands
            }
            let new = current & !bits;
            if new == current {
                return;
            }
            // AcqRel pairs with `deliver`: exactly one of the two orders wins the word.
            match self.state.compare_exchange_weak(
                current,
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Home loop side: the poller reported `bits` (`READABLE` / `WRITABLE`, or `SHUTDOWN` at
    /// close). Sets them, bumps the tick, and wakes the waiters of the directions now ready.
    pub(crate) fn deliver(&self, bits: usize) {
        let bits = bits & READINESS_BITS;
        if bits == 0 {
            return;
        }
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let tick = (current >> TICK_SHIFT).wrapping_add(1);
            let new = (tick << TICK_SHIFT) | (current & READINESS_BITS) | bits;
            // AcqRel: the waiter's Acquire re-read under the lock sees this store (module docs).
            match self.state.compare_exchange_weak(
                current,
                new,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        let (reader, writer) = {
            let mut waiters = self.lock();
            let wake_all = bits & SHUTDOWN != 0;
            let reader = if wake_all || bits & (READABLE | READ_CLOSED) != 0 {
                waiters.reader.take()
            } else {
                None
            };
            let writer = if wake_all || bits & (WRITABLE | WRITE_CLOSED) != 0 {
                waiters.writer.take()
            } else {
                None
            };
            (reader, writer)
        };
        if let Some(waker) = reader {
            waker.wake();
        }
        if let Some(waker) = writer {
            waker.wake();
        }
    }

    /// Whether the home loop has shut this source down.
    #[cfg(test)]
    pub(crate) fn is_shutdown(&self) -> bool {
        self.state.load(Ordering::Acquire) & SHUTDOWN != 0
    }

    /// Drops the stored wakers (the source is going away; its tasks no longer wait on it).
    pub(crate) fn clear_wakers(&self) -> (Option<Waker>, Option<Waker>) {
        let mut waiters = self.lock();
        (waiters.reader.take(), waiters.writer.take())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize as Count, Ordering as O};
    use std::sync::Arc;
    use std::task::Wake;

    struct Counter(Count);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, O::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter(Count::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_new_source_is_ready_both_ways_so_the_first_syscall_is_tried() {
        let r = Readiness::new();
        let (_, w) = counter();
        let mut cx = Context::from_waker(&w);
        assert!(matches!(
            r.poll_ready(&mut cx, Direction::Read),
            Poll::Ready(Ok(_))
        ));
        assert!(matches!(
            r.poll_ready(&mut cx, Direction::Write),
            Poll::Ready(Ok(_))
        ));
    }

    #[test]
    fn clearing_after_would_block_waits_for_the_next_event_which_wakes_the_reader_only() {
        let r = Readiness::new();
        let (reads, rw) = counter();
        let (writes, ww) = counter();
        let Poll::Ready(Ok(ev)) = r.poll_ready(&mut Context::from_waker(&rw), Direction::Read)
        else {
            panic!("ready at first")
        };
        r.clear(ev);
        let Poll::Ready(Ok(wev)) = r.poll_ready(&mut Context::from_waker(&ww), Direction::Write)
        else {
            panic!("write still ready")
        };
        r.clear(wev);
        assert!(r
            .poll_ready(&mut Context::from_waker(&rw), Direction::Read)
            .is_pending());
        assert!(r
            .poll_ready(&mut Context::from_waker(&ww), Direction::Write)
            .is_pending());
        r.deliver(READABLE);
        assert_eq!(reads.0.load(O::SeqCst), 1);
        assert_eq!(writes.0.load(O::SeqCst), 0);
        assert!(r
            .poll_ready(&mut Context::from_waker(&rw), Direction::Read)
            .is_ready());
    }

    #[test]
    fn an_event_after_the_syscall_survives_the_stale_clear() {
        let r = Readiness::new();
        let (_, w) = counter();
        let Poll::Ready(Ok(ev)) = r.poll_ready(&mut Context::from_waker(&w), Direction::Read)
        else {
            panic!("ready at first")
        };
        // The syscall said WouldBlock, then an event arrived before the task cleared.
        r.deliver(READABLE);
        r.clear(ev);
        assert!(r
            .poll_ready(&mut Context::from_waker(&w), Direction::Read)
            .is_ready());
    }

    #[test]
    fn shutdown_wakes_both_waiters_and_fails_every_later_poll() {
        let r = Readiness::new();
        let (reads, rw) = counter();
        let (writes, ww) = counter();
        for (w, d) in [(&rw, Direction::Read), (&ww, Direction::Write)] {
            let Poll::Ready(Ok(ev)) = r.poll_ready(&mut Context::from_waker(w), d) else {
                panic!()
            };
            r.clear(ev);
            assert!(r.poll_ready(&mut Context::from_waker(w), d).is_pending());
        }
        r.deliver(SHUTDOWN);
        assert_eq!(reads.0.load(O::SeqCst) + writes.0.load(O::SeqCst), 2);
        assert!(r.is_shutdown());
        assert!(matches!(
            r.poll_ready(&mut Context::from_waker(&rw), Direction::Read),
            Poll::Ready(Err(Shutdown))
        ));
    }
}
