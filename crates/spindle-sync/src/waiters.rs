//! The FIFO waiter list under the queues, locks, semaphores, conditions and barriers.
//!
//! Why our own and not `event-listener`: asyncio's primitives *hand off*. A released permit, a
//! put item or a notification goes to one chosen waiter, the first in line, and is that
//! waiter's from then on: a task that comes later cannot barge in ahead of it, and a waiter
//! that is cancelled after it was chosen must give what it received back (to the next waiter,
//! or to the primitive). `event-listener` wakes listeners that then race for the resource
//! again, which is neither FIFO nor exact about who owns what.
//!
//! # Protocol
//!
//! A [`WaitList`] lives inside its primitive's mutex: every operation on it happens under that
//! lock, so there is no cross-thread protocol here beyond the mutex itself. A waiter is a node
//! of a slab (no allocation per wait once the slab has grown) linked into a doubly linked FIFO;
//! the waiting future keeps its node's key. A node is in one of two states:
//! - `Waiting(W)`: linked, holding what the waiter brought (a queue putter's item);
//! - `Granted(G)`: unlinked, holding what it was given, until its future collects it.
//!
//! The node is removed only by its own future, when it collects its grant or when it is
//! dropped ([`WaitList::remove`] then tells whether it was still waiting or had been granted,
//! so the primitive can pass the grant on). Wakers are returned to the caller to be woken
//! after the primitive's mutex is released ([`Wakers`]).

use std::task::Waker;

use slab::Slab;

const NIL: usize = usize::MAX;

enum Slot<W, G> {
    Waiting(W),
    Granted(G),
    /// Taken off the line by [`WaitList::take_front`], granted right after (same lock).
    Taken,
}

struct Node<W, G> {
    prev: usize,
    next: usize,
    waker: Option<Waker>,
    slot: Slot<W, G>,
}

/// What a removed waiter left behind.
pub(crate) enum Left<W, G> {
    /// It was still in line: what it brought.
    Waiting(W),
    /// It had been granted: what it received and never collected.
    Granted(G),
}

/// A FIFO of waiters; `W` is what a waiter holds while it waits, `G` what it is granted.
pub(crate) struct WaitList<W, G> {
    nodes: Slab<Node<W, G>>,
    head: usize,
    tail: usize,
    waiting: usize,
}

impl<W, G> WaitList<W, G> {
    pub(crate) const fn new() -> Self {
        WaitList {
            nodes: Slab::new(),
            head: NIL,
            tail: NIL,
            waiting: 0,
        }
    }

    /// No waiter is in line (granted ones that have not collected do not count).
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    /// How many waiters are in line.
    pub(crate) fn len(&self) -> usize {
        self.waiting
    }

    /// Puts a waiter at the back of the line; returns its key.
    pub(crate) fn push(&mut self, value: W, waker: Option<&Waker>) -> usize {
        let key = self.nodes.insert(Node {
            prev: self.tail,
            next: NIL,
            waker: waker.cloned(),
            slot: Slot::Waiting(value),
        });
        match self.tail {
            NIL => self.head = key,
            tail => self.nodes[tail].next = key,
        }
        self.tail = key;
        self.waiting += 1;
        key
    }

    fn unlink(&mut self, key: usize) {
        let (prev, next) = (self.nodes[key].prev, self.nodes[key].next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n].prev = prev,
        }
        self.waiting -= 1;
    }

    /// Takes the first waiter off the line: its key and what it brought. The caller grants it
    /// ([`grant`](Self::grant)) before it releases the lock.
    pub(crate) fn take_front(&mut self) -> Option<(usize, W)> {
        let key = self.head;
        if key == NIL {
            return None;
        }
        self.unlink(key);
        match std::mem::replace(&mut self.nodes[key].slot, Slot::Taken) {
            Slot::Waiting(value) => Some((key, value)),
            Slot::Granted(_) | Slot::Taken => unreachable!("only waiting nodes are linked"),
        }
    }

    /// Grants `value` to the waiter `key` (just taken off the line); returns the waker to wake.
    pub(crate) fn grant(&mut self, key: usize, value: G) -> Option<Waker> {
        let node = &mut self.nodes[key];
        node.slot = Slot::Granted(value);
        node.waker.take()
    }

    /// The waiter `key` polls: its grant if it has one (the node is then gone), else `None`
    /// after storing `waker`.
    pub(crate) fn poll(&mut self, key: usize, waker: &Waker) -> Option<G> {
        let node = &mut self.nodes[key];
        if matches!(node.slot, Slot::Granted(_)) {
            return match self.nodes.remove(key).slot {
                Slot::Granted(value) => Some(value),
                Slot::Waiting(_) | Slot::Taken => None,
            };
        }
        match &mut node.waker {
            Some(old) if old.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        None
    }

    /// The waiter `key` gives up (its future was dropped): removes it, returns what it left.
    pub(crate) fn remove(&mut self, key: usize) -> Left<W, G> {
        if matches!(self.nodes[key].slot, Slot::Waiting(_)) {
            self.unlink(key);
        }
        match self.nodes.remove(key).slot {
            Slot::Waiting(value) => Left::Waiting(value),
            Slot::Granted(value) => Left::Granted(value),
            Slot::Taken => unreachable!("a taken node is granted under the same lock"),
        }
    }
}

/// Wakers to wake once the primitive's lock is released: declare it *before* the lock guard,
/// so that it drops (and wakes) after the guard. Up to [`Wakers::INLINE`] wakers are kept
/// without allocating; past that the oldest are woken at once (a wake never runs the task
/// inline, so waking under the lock is only slower, never wrong).
pub(crate) struct Wakers {
    list: [Option<Waker>; Wakers::INLINE],
    len: usize,
}

impl Wakers {
    /// Enough for the common operations (a get that refills from one putter wakes two); kept
    /// small because every operation builds and drops one: with 8 slots `queue_pingpong`
    /// read 0.70-0.77 of tokio, with 2 slots 0.48-0.64 (three alternating runs of each build).
    const INLINE: usize = 2;

    pub(crate) const fn new() -> Self {
        Wakers {
            list: [const { None }; Wakers::INLINE],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        if self.len == Self::INLINE {
            self.wake_all();
        }
        self.list[self.len] = Some(waker);
        self.len += 1;
    }

    fn wake_all(&mut self) {
        for slot in &mut self.list[..self.len] {
            if let Some(waker) = slot.take() {
                waker.wake();
            }
        }
        self.len = 0;
    }
}

impl Drop for Wakers {
    fn drop(&mut self) {
        self.wake_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_are_granted_in_arrival_order_and_removal_keeps_the_order() {
        let mut list: WaitList<u32, u32> = WaitList::new();
        let a = list.push(1, None);
        let b = list.push(2, None);
        let c = list.push(3, None);
        assert!(matches!(list.remove(b), Left::Waiting(2)));
        assert_eq!(list.len(), 2);
        let (key, value) = list.take_front().unwrap();
        assert_eq!((key, value), (a, 1));
        list.grant(key, 10);
        assert!(matches!(list.remove(a), Left::Granted(10)));
        let (key, value) = list.take_front().unwrap();
        assert_eq!((key, value), (c, 3));
        list.grant(key, 30);
        assert!(list.is_empty());
        assert!(list.take_front().is_none());
        assert_eq!(list.poll(c, Waker::noop()), Some(30));
    }
}
