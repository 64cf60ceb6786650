//! The raw parts of a new task's waker, without a reference-count round trip.
//!
//! A [`Task`](crate::Task) handle keeps its task's waker as raw parts, borrowed: its async-task
//! handle keeps the allocation alive (see `Task`'s fields). Getting them from
//! `Runnable::waker()` clones the waker, and dropping the clone releases it again: two locked
//! instructions on the task's state for every spawn (perf: ~7% of a spawn-and-finish).
//!
//! The parts are the task pointer, which the runnable already holds (`Runnable::into_raw`), and
//! the vtable async-task uses for every task of one future type (a constant of its generic raw
//! task). So the first spawn of a future type on a thread clones once, checks that the clone's
//! data pointer is the task pointer, and remembers the vtable for that type; the next spawns of
//! the same type reuse it. Should the check ever fail (an async-task that builds its wakers
//! differently), nothing is remembered and every spawn clones as before.

use std::any::TypeId;
use std::cell::Cell;
use std::task::RawWakerVTable;

use crate::task::TaskRunnable;

/// A task's waker as raw parts, borrowed from the task (no reference count of its own).
#[derive(Clone, Copy)]
pub(crate) struct WakerParts {
    pub(crate) data: *const (),
    pub(crate) vtable: &'static RawWakerVTable,
}

thread_local! {
    /// The future type spawned last on this thread and its tasks' waker vtable. One entry: a
    /// program that spawns one kind of task in a burst (the case worth the saving) hits it.
    static LAST_SPAWNED: Cell<Option<(TypeId, &'static RawWakerVTable)>> =
        const { Cell::new(None) };
}

/// The waker parts of the task `runnable` belongs to. `Key` must be a type that determines
/// async-task's vtable for it: the future type async-task was given (which, in this crate,
/// names the schedule function through its owner type).
pub(crate) fn waker_parts<Key: 'static>(runnable: TaskRunnable) -> (TaskRunnable, WakerParts) {
    let task = runnable.into_raw();
    // SAFETY: `task` came from `into_raw` just above: this restores exactly that ownership.
    let runnable = unsafe { TaskRunnable::from_raw(task) };
    let data = task.as_ptr() as *const ();
    let key = TypeId::of::<Key>();
    if let Some((seen, vtable)) = LAST_SPAWNED.with(Cell::get) {
        if seen == key {
            return (runnable, WakerParts { data, vtable });
        }
    }
    let waker = runnable.waker();
    let parts = WakerParts {
        data: waker.data(),
        vtable: waker.vtable(),
    };
    if parts.data == data {
        LAST_SPAWNED.with(|last| last.set(Some((key, parts.vtable))));
    }
    // Dropping the clone leaves the parts valid: they are borrowed, the task keeps them alive.
    (runnable, parts)
}
