//! A scheduled callback's cell, shared by the ready queue (or the timer heap) and the user's
//! [`Handle`](crate::Handle) / [`TimerHandle`](crate::TimerHandle).
//!
//! A scheduled callback is one allocation: a `CallbackCell` holding its state, where it was
//! scheduled and the closure (`Cell<Option<F>>`), unsized to `CallbackCell<dyn CallSlot>` so
//! the ready queue holds a two-word [`Callback`] per item. Cancelling sets a flag in the cell and
//! drops the closure at once (asyncio clears the callback on `cancel()`), and the loop skips a
//! cancelled cell when its turn comes, even within the batch in which it was cancelled.
//!
//! [`Callback`] is a single-threaded reference count like `Rc`, without `Rc`'s weak count:
//! nothing holds a cell weakly, and those 8 bytes decide the allocation's size class. A closure
//! that captures one pointer makes a 24-byte cell, the 32-byte malloc chunk a
//! `Box<dyn FnOnce()>` of the same closure takes; with `Rc` it was 40 bytes, a 48-byte chunk,
//! and `call_soon` of a million such callbacks ran ~20% slower (memory traffic: the cells of a
//! big batch do not fit in cache).
//!
//! A `Send` sleep's timer is no cell: the timer queue and then the ready queue hold the index
//! of its slot in the loop's [`SleepSlab`](crate::timers::SleepSlab) (see [`crate::timers`]).

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::Location;
use std::ptr::NonNull;
use std::rc::Weak;

use crate::event_loop::Inner;

/// The callback was cancelled.
const CANCELLED: u8 = 1 << 0;
/// The callback sits in the timer heap (cancelling it counts towards the heap's rebuild).
const IN_HEAP: u8 = 1 << 1;

/// The type-erased part of a scheduled callback: call it once, or drop it.
pub(crate) trait CallSlot {
    /// Takes the closure out and calls it; does nothing if it was already taken.
    fn call(&self);
    /// Drops the closure now, on the loop's thread.
    fn clear(&self);
    /// The closure's type name, for reports.
    fn name(&self) -> &'static str;
    /// Whether this stands for a threadsafe callback (see [`new_inbox_marker`]).
    fn is_threadsafe(&self) -> bool {
        false
    }
}

/// The ready queue's stand-in for the next threadsafe callback drained from the inbox: those
/// wait in the loop's own FIFO (`Inner::inbox_calls`), and each is represented in the ready
/// queue by a clone of this one cell, so the ready queue's item stays three words (a fat
/// callback pointer and the tag; an inline threadsafe call would make every item
/// as large as `InlineCall`'s storage).
struct InboxSlot(Weak<Inner>);

impl CallSlot for InboxSlot {
    fn call(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.run_next_inbox_call();
        }
    }

    /// `close()` runs the threadsafe callbacks the inbox accepted instead of dropping them:
    /// their producers were told they would run (see `Remote`).
    fn clear(&self) {
        self.call();
    }

    fn name(&self) -> &'static str {
        "threadsafe callback"
    }

    fn is_threadsafe(&self) -> bool {
        true
    }
}

impl<F: FnOnce()> CallSlot for Cell<Option<F>> {
    fn call(&self) {
        if let Some(f) = self.take() {
            f();
        }
    }

    fn clear(&self) {
        drop(self.take());
    }

    fn name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

/// One scheduled callback: its state, where it was scheduled, and the closure.
pub(crate) struct CallbackCell<S: ?Sized> {
    /// How many [`Callback`]s point here; the cell is freed when the last one goes.
    refs: Cell<u32>,
    state: Cell<u8>,
    created_at: &'static Location<'static>,
    slot: S,
}

/// A counted reference to a [`CallbackCell`]: `Rc` without the weak count (see the module
/// docs). `!Send` and `!Sync` like `Rc` (it holds a `NonNull` and a `PhantomData` of an `Rc`-like
/// owner), so every count change happens on the loop's thread.
pub(crate) struct Callback {
    cell: NonNull<CallbackCell<dyn CallSlot>>,
    /// Owns a `CallbackCell` (for drop check) and is `!Send`.
    _owns: PhantomData<(Box<CallbackCell<dyn CallSlot>>, *const ())>,
}

impl Callback {
    /// Where the cell lies (the loop's prefetch before running it); not for dereferencing.
    pub(crate) fn cell_address(&self) -> *const u8 {
        self.cell.as_ptr().cast::<u8>().cast_const()
    }

    fn new<S: CallSlot + 'static>(
        state: u8,
        created_at: &'static Location<'static>,
        slot: S,
    ) -> Self {
        let cell: Box<CallbackCell<dyn CallSlot>> = Box::new(CallbackCell {
            refs: Cell::new(1),
            state: Cell::new(state),
            created_at,
            slot,
        });
        Callback {
            cell: NonNull::from(Box::leak(cell)),
            _owns: PhantomData,
        }
    }
}

impl Deref for Callback {
    type Target = CallbackCell<dyn CallSlot>;

    #[inline]
    fn deref(&self) -> &Self::Target {
        // SAFETY: `cell` came from `Box::leak` and is freed only when the last `Callback`
        // pointing to it drops (`refs` reaches zero), and `self` is one of those.
        unsafe { self.cell.as_ref() }
    }
}

impl Clone for Callback {
    #[inline]
    fn clone(&self) -> Self {
        let refs = &self.refs;
        // Like `Rc`: a count that would wrap is a leak of 4 billion handles; abort rather than
        // free a cell that is still referenced.
        let Some(more) = refs.get().checked_add(1) else {
            std::process::abort()
        };
        refs.set(more);
        Callback {
            cell: self.cell,
            _owns: PhantomData,
        }
    }
}

impl Drop for Callback {
    #[inline]
    fn drop(&mut self) {
        let refs = &self.refs;
        let left = refs.get() - 1;
        refs.set(left);
        if left == 0 {
            // SAFETY: this was the last `Callback` pointing at the cell (the count only
            // changes on this thread, see the type's docs), so nothing can reach it after
            // this; it was allocated by `Box` in `Callback::new`.
            drop(unsafe { Box::from_raw(self.cell.as_ptr()) });
        }
    }
}

pub(crate) fn new_callback<F: FnOnce() + 'static>(
    f: F,
    created_at: &'static Location<'static>,
) -> Callback {
    Callback::new(0, created_at, Cell::new(Some(f)))
}

/// The one cell a loop queues for each threadsafe callback it drains (see `InboxSlot`).
#[track_caller]
pub(crate) fn new_inbox_marker(inner: Weak<Inner>) -> Callback {
    Callback::new(0, Location::caller(), InboxSlot(inner))
}

impl CallbackCell<dyn CallSlot> {
    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.get() & CANCELLED != 0
    }

    /// Marks it cancelled and drops the closure. Returns whether it was sitting in the timer heap
    /// (then the caller counts it towards the heap's lazy removal).
    pub(crate) fn cancel(&self) -> bool {
        let state = self.state.get();
        if state & CANCELLED != 0 {
            return false;
        }
        self.state.set(state | CANCELLED);
        self.slot.clear();
        state & IN_HEAP != 0
    }

    pub(crate) fn set_in_heap(&self, in_heap: bool) {
        let state = self.state.get();
        self.state.set(if in_heap {
            state | IN_HEAP
        } else {
            state & !IN_HEAP
        });
    }

    pub(crate) fn run(&self) {
        self.slot.call();
    }

    pub(crate) fn clear(&self) {
        self.slot.clear();
    }

    pub(crate) fn name(&self) -> &'static str {
        self.slot.name()
    }

    /// Whether this is the stand-in for a threadsafe callback (see `new_inbox_marker`).
    pub(crate) fn is_threadsafe(&self) -> bool {
        self.slot.is_threadsafe()
    }

    pub(crate) fn created_at(&self) -> &'static Location<'static> {
        self.created_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_one_pointer_closure_makes_a_24_byte_cell() {
        let captured = Rc::new(());
        let cell = CallbackCell {
            refs: Cell::new(1),
            state: Cell::new(0),
            created_at: Location::caller(),
            slot: Cell::new(Some(move || drop(captured))),
        };
        assert_eq!(std::mem::size_of_val(&cell), 24);
    }

    #[test]
    fn the_closure_drops_once_when_the_last_reference_goes() {
        let captured = Rc::new(());
        let probe = captured.clone();
        let first = new_callback(move || drop(captured), Location::caller());
        let second = first.clone();
        let third = second.clone();
        drop(first);
        drop(third);
        assert_eq!(
            Rc::strong_count(&probe),
            2,
            "two of three gone: still alive"
        );
        drop(second);
        assert_eq!(Rc::strong_count(&probe), 1, "freed with the last reference");
    }

    #[test]
    fn running_through_one_reference_is_seen_through_the_others() {
        let ran = Rc::new(Cell::new(0));
        let r = ran.clone();
        let queued = new_callback(move || r.set(r.get() + 1), Location::caller());
        let handle = queued.clone();
        queued.run();
        handle.run();
        assert_eq!(ran.get(), 1, "the closure runs once");
    }
}
