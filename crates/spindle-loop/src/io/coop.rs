//! A cooperative budget per task step (after tokio's `coop`): a task whose sockets are always
//! ready would otherwise never return `Pending`, and its loop would run nothing else.
//!
//! Every task step starts with [`BUDGET`] operations (reset where the step begins, see
//! `task::CurrentTask`). Each I/O operation that completes uses one; an operation started
//! with none left wakes its task and returns `Pending`, so the task goes to the back of its
//! loop's ready queue and the callbacks, timers and tasks ahead of it run first. Outside a
//! task step (a future polled by `block_on` on a plain thread) there is no budget.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Operations per task step: tokio's figure, large enough that a busy connection rarely
/// yields early (one yield costs about one extra wake-up per 128 operations).
pub(crate) const BUDGET: u32 = 128;

thread_local! {
    static REMAINING: Cell<u32> = const { Cell::new(BUDGET) };
}

/// A task step begins: a full budget.
#[inline]
pub(crate) fn reset() {
    REMAINING.with(|r| r.set(BUDGET));
}

/// `Pending` (after waking the task) if the running task's budget is spent; else `Ready`.
#[cfg_attr(loom, allow(dead_code))] // its callers (sources) need a poller
#[inline]
pub(crate) fn poll_budget(cx: &mut Context<'_>) -> Poll<()> {
    if !crate::task::in_task_step() {
        return Poll::Ready(());
    }
    if REMAINING.with(Cell::get) == 0 {
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    Poll::Ready(())
}

/// An operation completed: it used one unit of the budget.
#[cfg_attr(loom, allow(dead_code))]
#[inline]
pub(crate) fn consume() {
    REMAINING.with(|r| r.set(r.get().saturating_sub(1)));
}
