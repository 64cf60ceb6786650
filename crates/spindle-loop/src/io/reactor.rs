//! One loop's I/O registrations: which fds its poller watches, and for whom.
//!
//! # Invariants
//!
//! - **The poller never watches a closed fd.** An fd is added to the poller and entered in the
//!   slab under one lock, and deleted from the poller and removed from the slab under the same
//!   lock. Its owner (a `Source`, or the loop's reader/writer watch) deregisters before it closes
//!   the fd, and `close` deletes every fd still entered: an fd is open for as long as its entry
//!   is in the slab, and that is what makes `delete` by raw fd sound.
//! - **Stale events are ignored.** An event's key is the entry's slot plus the slot's
//!   generation, bumped at every removal: an event already in the loop's buffer for an entry
//!   removed since (a socket dropped on another thread) finds another generation and is
//!   dropped.
//! - **Wakers are woken outside the lock.** Dispatch copies what the events concern under the
//!   lock and delivers after it, so a waker that drops a socket (and so deregisters) cannot
//!   deadlock.
//!
//! The lock is taken once per registration, deregistration and non-empty poll, never per
//! syscall of a socket.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::readiness::{Readiness, READABLE, READ_CLOSED, SHUTDOWN, WRITABLE, WRITE_CLOSED};
use super::IoError;
use crate::remote::poller::{Events, Mode};
use crate::remote::Remote;

/// How an event key splits into slot and generation: half the bits each. The top bit of the
/// generation is kept clear so no key is `usize::MAX`, which `polling` reserves.
const GENERATION_SHIFT: u32 = usize::BITS / 2;
const SLOT_MASK: usize = (1 << GENERATION_SHIFT) - 1;
const GENERATION_MASK: usize = SLOT_MASK >> 1;

/// What one registered fd is for.
#[derive(Clone)]
pub(crate) enum Entry {
    /// A source's readiness (edge-triggered): its waiters are woken.
    Source(RawFd, Arc<Readiness>),
    /// The loop's `add_reader` / `add_writer` callbacks on this fd (level-triggered).
    Watch(RawFd),
}

impl Entry {
    fn fd(&self) -> RawFd {
        match self {
            Entry::Source(fd, _) | Entry::Watch(fd) => *fd,
        }
    }
}

struct Slot {
    generation: usize,
    entry: Option<Entry>,
}

#[derive(Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Vec<usize>,
    closed: bool,
}

impl Slab {
    fn insert(&mut self, entry: Entry) -> usize {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.entry = Some(entry);
        (slot.generation << GENERATION_SHIFT) | index
    }

    fn get(&self, key: usize) -> Option<&Entry> {
        let slot = self.slots.get(key & SLOT_MASK)?;
        if slot.generation != key >> GENERATION_SHIFT {
            return None;
        }
        slot.entry.as_ref()
    }

    fn remove(&mut self, key: usize) -> Option<Entry> {
        let index = key & SLOT_MASK;
        let slot = self.slots.get_mut(index)?;
        if slot.generation != key >> GENERATION_SHIFT {
            return None;
        }
        let entry = slot.entry.take()?;
        slot.generation = (slot.generation + 1) & GENERATION_MASK;
        self.free.push(index);
        Some(entry)
    }
}

/// `dispatch`'s buffers, kept by the loop between polls.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) sources: Vec<(Arc<Readiness>, usize)>,
    pub(crate) watches: Vec<(RawFd, bool, bool)>,
}

/// The registrations of one loop's poller (see the module docs). `Send + Sync`: sources
/// deregister from whatever thread drops them.
pub(crate) struct Reactor {
    remote: Arc<Remote>,
    slab: Mutex<Slab>,
    /// Entries in the slab: the loop polls its poller every iteration only while this is not 0.
    registered: AtomicUsize,
}

impl Reactor {
    pub(crate) fn new(remote: Arc<Remote>) -> Self {
        Reactor {
            remote,
            slab: Mutex::new(Slab::default()),
            registered: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slab> {
        // Every critical section leaves the slab consistent before anything can panic.
        self.slab.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any fd is registered (the loop then polls every iteration).
    pub(crate) fn has_registrations(&self) -> bool {
        // Relaxed: a registration made on another thread reaches this loop's poller through
        // the kernel; the count only decides whether a busy loop makes a zero-timeout poll.
        self.registered.load(Ordering::Relaxed) != 0
    }

    /// The loop's inbox and poller.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// The loop's id (for error messages and routing checks).
    pub(crate) fn loop_id(&self) -> u64 {
        self.remote.loop_id()
    }

    /// Enters `entry` and adds `fd` to the poller with `interest` in `mode`; returns the key.
    ///
    /// The fd must stay open until [`deregister`](Self::deregister) with that key returns, or
    /// until the loop closes (the module's first invariant; `Source` and the watches keep it).
    pub(crate) fn register(
        &self,
        fd: BorrowedFd<'_>,
        entry: Entry,
        readable: bool,
        writable: bool,
        mode: Mode,
    ) -> io::Result<usize> {
        let mut slab = self.lock();
        if slab.closed {
            return Err(IoError::LoopClosed.into());
        }
        let key = slab.insert(entry);
        // SAFETY: the poller's contract for `add`: the fd is deleted from it before it is
        // closed. It is, by the module's first invariant: its owner deregisters (under this
        // lock) before closing it, and `close` deletes it if the owner has not yet.
        let added = unsafe { self.remote.poller().add(fd, key, readable, writable, mode) };
        if let Err(e) = added {
            slab.remove(key);
            return Err(e);
        }
        self.registered.fetch_add(1, Ordering::Relaxed);
        Ok(key)
    }

    /// Changes what the poller watches `key`'s fd for (level-triggered watches).
    pub(crate) fn modify(
        &self,
        fd: BorrowedFd<'_>,
        key: usize,
        readable: bool,
        writable: bool,
        mode: Mode,
    ) -> io::Result<()> {
        let slab = self.lock();
        if slab.get(key).is_none() {
            return Err(IoError::LoopClosed.into());
        }
        self.remote
            .poller()
            .modify(fd, key, readable, writable, mode)
    }

    /// Removes `key`'s entry and deletes its fd from the poller (a no-op if `close` did
    /// already). Call before closing the fd.
    pub(crate) fn deregister(&self, key: usize) {
        let mut slab = self.lock();
        if let Some(entry) = slab.remove(key) {
            self.delete(entry.fd());
        }
    }

    fn delete(&self, fd: RawFd) {
        // SAFETY: the fd is open: its entry was in the slab until just now, under the lock we
        // hold, and entries leave the slab before their fd closes (module docs).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        // An error means the kernel no longer watches it (it cannot be closed, see above);
        // nothing is left to undo.
        if let Err(e) = self.remote.poller().delete(fd) {
            tracing::debug!(fd = fd.as_raw_fd(), error = %e, "spindle: poller delete failed");
        }
        self.registered.fetch_sub(1, Ordering::Relaxed);
    }

    /// Home loop thread, after a wait: hands each event to its entry. Sources' readiness is
    /// delivered here (their wakers woken, outside the lock); watches' events are returned in
    /// `watches` as `(fd, readable, writable)` for the loop to queue their callbacks.
    pub(crate) fn dispatch(
        &self,
        events: &Events,
        sources: &mut Vec<(Arc<Readiness>, usize)>,
        watches: &mut Vec<(RawFd, bool, bool)>,
    ) {
        if events.is_empty() {
            return;
        }
        {
            let slab = self.lock();
            for event in events.iter() {
                match slab.get(event.key) {
                    Some(Entry::Source(_, readiness)) => {
                        let bits = (event.readable as usize * READABLE)
                            | (event.writable as usize * WRITABLE)
                            | (event.read_closed as usize * READ_CLOSED)
                            | (event.write_closed as usize * WRITE_CLOSED);
                        sources.push((readiness.clone(), bits));
                    }
                    // Level-triggered callbacks see a hang-up as readiness, as asyncio's do.
                    Some(Entry::Watch(fd)) => watches.push((
                        *fd,
                        event.readable || event.read_closed,
                        event.writable || event.write_closed,
                    )),
                    None => {} // stale: removed since the poller reported it
                }
            }
        }
        for (readiness, bits) in sources.drain(..) {
            readiness.deliver(bits);
        }
    }

    /// The loop is closing: delete every fd, refuse registrations from now on, and wake every
    /// source's waiters with an error.
    pub(crate) fn close(&self) {
        let entries: Vec<Entry> = {
            let mut slab = self.lock();
            slab.closed = true;
            let keys: Vec<usize> = slab
                .slots
                .iter()
                .enumerate()
                .filter(|(_, slot)| slot.entry.is_some())
                .map(|(index, slot)| (slot.generation << GENERATION_SHIFT) | index)
                .collect();
            let mut entries = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(entry) = slab.remove(key) {
                    self.delete(entry.fd());
                    entries.push(entry);
                }
            }
            entries
        };
        for entry in entries {
            if let Entry::Source(_, readiness) = entry {
                readiness.deliver(SHUTDOWN);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_slot_s_old_key_no_longer_finds_its_reuse() {
        let mut slab = Slab::default();
        let a = slab.insert(Entry::Watch(3));
        assert!(slab.remove(a).is_some());
        let b = slab.insert(Entry::Watch(4));
        assert_eq!(a & SLOT_MASK, b & SLOT_MASK, "the slot is reused");
        assert!(slab.get(a).is_none(), "a stale event is ignored");
        assert!(matches!(slab.get(b), Some(Entry::Watch(4))));
        assert!(slab.remove(a).is_none());
    }

    #[test]
    fn no_key_is_polling_s_reserved_usize_max() {
        let mut slab = Slab::default();
        slab.slots.push(Slot {
            generation: GENERATION_MASK,
            entry: None,
        });
        slab.free.push(0);
        let key = slab.insert(Entry::Watch(0));
        assert_ne!(key, usize::MAX);
        slab.remove(key);
        assert_eq!(
            slab.slots[0].generation, 0,
            "the generation wraps inside its mask"
        );
    }
}
