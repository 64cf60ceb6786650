//! Per-thread context: which loop is running on this thread right now.
//!
//! The slot is set by `run_forever` for the duration of the run and restored on the way out
//! (also on unwinding). It is what makes a task wake-up on the loop's own thread a plain push onto
//! the ready queue, and what [`EventLoop::running`](crate::EventLoop::running) and
//! `current_task()` read.

use std::cell::RefCell;
use std::rc::Rc;

use crate::event_loop::Inner;

thread_local! {
    static RUNNING: RefCell<Option<Rc<Inner>>> = const { RefCell::new(None) };
}

/// Calls `f` with the loop running on this thread, if any.
pub(crate) fn with_running<R>(f: impl FnOnce(Option<&Rc<Inner>>) -> R) -> R {
    RUNNING.with(|slot| f(slot.borrow().as_ref()))
}

/// Whether any loop is running on this thread.
pub(crate) fn is_any_running() -> bool {
    RUNNING.with(|slot| slot.borrow().is_some())
}

/// Installs `inner` as this thread's running loop until the guard drops.
pub(crate) fn enter(inner: Rc<Inner>) -> RunningGuard {
    RUNNING.with(|slot| *slot.borrow_mut() = Some(inner));
    RunningGuard {
        _not_send: std::marker::PhantomData,
    }
}

pub(crate) struct RunningGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        // Take it out first, drop it after the borrow ends: dropping the last `Rc<Inner>` runs
        // the loop's close, which reads this slot again.
        let inner = RUNNING.with(|slot| slot.borrow_mut().take());
        drop(inner);
    }
}

/// Stops the loop with id `loop_id` if it is the one running on this thread (the target of a
/// threadsafe `stop()`, which runs on the loop's thread).
pub(crate) fn stop_running(loop_id: u64) {
    with_running(|running| {
        if let Some(inner) = running {
            if inner.id() == loop_id {
                inner.stop();
            }
        }
    });
}
