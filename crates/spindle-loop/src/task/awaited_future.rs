//! The [`LoopFuture`](crate::LoopFuture) a task's step is suspended on: asyncio's
//! `_fut_waiter`, which `task.cancel()` cancels (other awaiters of that future then see it
//! cancelled, and a later `set_result` on it is an `InvalidState` error).
//!
//! # Protocol
//!
//! A loop future is `!Send` (`Rc`/`RefCell` inside), so the link cannot live in the task's
//! header, which other threads read. It lives in a table of the thread that runs the task (a
//! local task's loop thread), keyed by the task's id (unique in the process); the header's
//! `AWAITING_FUTURE` bit says an entry may exist.
//! - `LoopFuture::poll` sets it when it returns `Pending` inside a task's step;
//! - it is removed when the task's next step begins (stale), when the task completes, or when
//!   it is followed: by `request_cancel` on the task's own thread (asyncio's "at once") or by the
//!   task's cancelled step. A `request_cancel` on another thread finds nothing in its own
//!   thread's table and leaves it to the step, which runs on the task's thread.
//!
//! - it is also removed when the future handle that set it is dropped inside the task's step
//!   (a `timeout` or `select` that let go of it): the task no longer awaits that future.
//!
//! The link is weak: it never keeps a future alive that nobody else holds.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

/// A loop future that can be cancelled through the link.
pub(crate) trait CancelAwaited {
    /// Cancels the future (a no-op if it is done); `true` if this call cancelled it.
    fn cancel_awaited(self: Rc<Self>) -> bool;
}

/// What the table keeps for a task.
pub(crate) type Link = Weak<dyn CancelAwaited>;

thread_local! {
    static AWAITED: RefCell<HashMap<u64, Link>> = RefCell::new(HashMap::new());
}

/// Records `link` as what task `id` is suspended on (replacing an earlier one).
pub(super) fn set(id: u64, link: Link) {
    // During thread teardown the table may be gone: then nothing can cancel the task here
    // any more, and there is nothing to record.
    let _ = AWAITED.try_with(|table| table.borrow_mut().insert(id, link));
}

/// Removes task `id`'s link; the future if it is still alive.
pub(super) fn take(id: u64) -> Option<Rc<dyn CancelAwaited>> {
    // The borrow ends before the caller cancels (which runs wakers and schedules callbacks).
    let link = AWAITED
        .try_with(|table| table.borrow_mut().remove(&id))
        .ok()
        .flatten()?;
    link.upgrade()
}

/// Removes task `id`'s link if it names the future at `cell`.
pub(super) fn forget(id: u64, cell: *const ()) {
    let _ = AWAITED.try_with(|table| {
        let mut table = table.borrow_mut();
        if table
            .get(&id)
            .is_some_and(|link| link.as_ptr().cast::<()>() == cell)
        {
            table.remove(&id);
        }
    });
}
