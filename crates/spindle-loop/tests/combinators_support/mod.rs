//! Helpers shared by the `combinators_*` tests.

// Each test file uses its own subset.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use spindle_loop::{sleep, EventLoop, ExceptionContext, Task, TaskRef};

/// Long enough never to end during a test.
pub const HOUR: Duration = Duration::from_secs(3600);

/// Runs exactly one iteration of `lp`.
pub fn one_iteration(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().unwrap();
}

/// Installs an exception handler that keeps every report.
pub fn capture(lp: &EventLoop) -> Rc<RefCell<Vec<ExceptionContext>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    lp.set_exception_handler(Some(Rc::new(
        move |_: &EventLoop, ctx: &ExceptionContext| s.borrow_mut().push(ctx.clone()),
    )));
    seen
}

/// Sets its flag when dropped: shows that a future was dropped (cancelled, or timed out).
pub struct DropFlag(pub Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Sleeps `ms`, then returns `value`.
pub async fn value_after(ms: u64, value: u32) -> u32 {
    sleep(Duration::from_millis(ms)).await;
    value
}

/// Sleeps `ms`, then panics with `message`.
pub async fn fail_after(ms: u64, message: &'static str) -> u32 {
    sleep(Duration::from_millis(ms)).await;
    panic!("{message}")
}

/// A task on `lp` running [`value_after`].
pub fn value_task(lp: &EventLoop, ms: u64, value: u32) -> Task<u32> {
    lp.create_task(value_after(ms, value)).unwrap()
}

/// A task on `lp` running [`fail_after`].
pub fn failing_task(lp: &EventLoop, ms: u64) -> Task<u32> {
    lp.create_task(fail_after(ms, "failed on purpose")).unwrap()
}

/// Cancels `task` from a timer callback `ms` from now: "cancelled by someone else".
pub fn cancel_after(lp: &EventLoop, task: TaskRef, ms: u64) {
    lp.call_later(Duration::from_millis(ms), move || {
        task.cancel();
    })
    .unwrap();
}
