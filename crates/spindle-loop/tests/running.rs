//! Issue behaviours 4-6: run_until_complete, nested runs, close().

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use spindle_loop::{EventLoop, ExceptionKind, LoopError, TaskError};

/// A future that is pending until `flag` is set.
struct WaitFor(Rc<Cell<bool>>);

impl Future for WaitFor {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.get() {
            Poll::Ready(())
        } else {
            // Busy-wait through the loop: wake ourselves so the next iteration polls again.
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Counts drops, to observe destructors.
struct DropCounter(Rc<Cell<u32>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn run_until_complete_returns_the_future_output() {
    let lp = EventLoop::new().unwrap();
    assert_eq!(lp.run_until_complete(async { 7 * 6 }).unwrap(), 42);
}

#[test]
fn run_until_complete_stopped_first_is_an_error_and_the_task_resumes_later() {
    let lp = EventLoop::new().unwrap();
    let release = Rc::new(Cell::new(false));
    let progressed = Rc::new(Cell::new(0));
    let (r, p) = (release.clone(), progressed.clone());
    let stopper = lp.clone();
    lp.call_soon(move || stopper.stop()).unwrap();
    let err = lp
        .run_until_complete(async move {
            p.set(1);
            WaitFor(r).await;
            p.set(2);
        })
        .unwrap_err();
    assert_eq!(err, LoopError::StoppedBeforeComplete);
    assert!(err
        .to_string()
        .contains("stopped before the future completed"));
    assert_eq!(progressed.get(), 1);
    assert_eq!(lp.all_tasks().len(), 1, "the task stays pending");
    release.set(true);
    // A later run resumes it; its completion must not stop this unrelated run early.
    let done = lp
        .run_until_complete(async {
            for _ in 0..3 {
                spindle_loop::yield_now().await;
            }
            "second"
        })
        .unwrap();
    assert_eq!(done, "second");
    assert_eq!(progressed.get(), 2);
}

#[test]
fn run_until_complete_reports_a_panic_as_a_task_error() {
    let lp = EventLoop::new().unwrap();
    let err = lp
        .run_until_complete(async { panic!("kaput") })
        .unwrap_err();
    assert_eq!(err, LoopError::Task(TaskError::Panicked("kaput".into())));
}

#[test]
fn run_forever_inside_the_running_loop_is_an_error_and_changes_nothing() {
    let lp = EventLoop::new().unwrap();
    let inner = lp.clone();
    let out = lp
        .run_until_complete(async move {
            let forever = inner.run_forever();
            let until = inner.run_until_complete(async {});
            (forever, until.map(|_| ()), inner.is_running())
        })
        .unwrap();
    assert_eq!(out.0, Err(LoopError::Running));
    assert_eq!(out.1, Err(LoopError::Running));
    assert!(out.2, "still running after the refused nested run");
    assert!(!lp.is_running());
}

#[test]
fn running_another_loop_on_the_same_thread_is_an_error() {
    let lp = EventLoop::new().unwrap();
    let other = EventLoop::new().unwrap();
    let o = other.clone();
    let out = lp
        .run_until_complete(async move {
            (
                o.run_forever(),
                o.run_until_complete(async { 1 }).map(|_| ()),
            )
        })
        .unwrap();
    assert_eq!(out.0, Err(LoopError::OtherLoopRunning));
    assert_eq!(out.1, Err(LoopError::OtherLoopRunning));
    assert!(!other.is_running());
    // Both loops are fine afterwards.
    assert_eq!(other.run_until_complete(async { 5 }).unwrap(), 5);
}

#[test]
fn close_while_running_is_an_error() {
    let lp = EventLoop::new().unwrap();
    let inner = lp.clone();
    let out = lp.run_until_complete(async move { inner.close() }).unwrap();
    assert_eq!(out, Err(LoopError::Running));
    assert!(!lp.is_closed());
}

#[test]
fn close_is_idempotent_and_drops_pending_work_on_the_loop_thread() {
    let lp = EventLoop::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    lp.set_exception_handler(Some(Rc::new(move |_, ctx| r.borrow_mut().push(ctx.kind))));
    let thread = std::thread::current().id();
    let drop_thread = Rc::new(Cell::new(None));

    let guard = DropCounter(drops.clone());
    lp.call_soon(move || drop(guard)).unwrap();
    let guard = DropCounter(drops.clone());
    lp.call_later(Duration::from_secs(60), move || drop(guard))
        .unwrap();
    // A task that started and is now idle (its runnable lives in a waker).
    let guard = DropCounter(drops.clone());
    let dt = drop_thread.clone();
    let idle = lp
        .create_task(async move {
            let _guard = guard;
            struct RecordThread(Rc<Cell<Option<std::thread::ThreadId>>>);
            impl Drop for RecordThread {
                fn drop(&mut self) {
                    self.0.set(Some(std::thread::current().id()));
                }
            }
            let _record = RecordThread(dt);
            std::future::pending::<()>().await;
        })
        .unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    // A task that never started.
    let guard = DropCounter(drops.clone());
    let never = lp.create_task(async move { drop(guard) }).unwrap();

    lp.close().unwrap();
    assert_eq!(
        drops.get(),
        4,
        "callback, timer, idle task, unstarted task all dropped"
    );
    assert_eq!(drop_thread.get(), Some(thread));
    assert!(idle.done() && idle.cancelled());
    assert!(never.done());
    assert_eq!(
        reports
            .borrow()
            .iter()
            .filter(|k| **k == ExceptionKind::TaskDestroyedPending)
            .count(),
        2
    );
    lp.close().unwrap();
}

#[test]
fn after_close_every_scheduling_call_and_run_is_a_closed_error() {
    let lp = EventLoop::new().unwrap();
    lp.close().unwrap();
    assert_eq!(
        lp.call_soon(|| ()).unwrap_err().reason(),
        &LoopError::Closed
    );
    assert_eq!(
        lp.call_later(Duration::ZERO, || ()).unwrap_err().reason(),
        &LoopError::Closed
    );
    assert_eq!(
        lp.call_at(lp.time(), || ()).unwrap_err().reason(),
        &LoopError::Closed
    );
    assert_eq!(
        lp.create_task(async {}).unwrap_err().reason(),
        &LoopError::Closed
    );
    assert_eq!(lp.run_forever(), Err(LoopError::Closed));
    assert_eq!(lp.run_until_complete(async {}), Err(LoopError::Closed));
    assert!(lp.remote().submit(|| ()).is_err());
    // What was handed over comes back.
    let came_back = Rc::new(Cell::new(false));
    let c = came_back.clone();
    let f = lp.call_soon(move || c.set(true)).unwrap_err().into_inner();
    f();
    assert!(came_back.get());
}

#[test]
fn awaiting_a_task_destroyed_by_close_gives_cancelled() {
    let lp = EventLoop::new().unwrap();
    let mut t = lp.create_task(std::future::pending::<()>()).unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    lp.close().unwrap();
    assert_eq!(t.result().unwrap(), Err(TaskError::Cancelled));
}

#[test]
fn a_wake_while_not_parked_costs_one_early_return_not_a_busy_loop() {
    let lp = EventLoop::new().unwrap();
    // Nobody is parked: the wake is kept for the next park, which returns at once.
    lp.remote().wake();
    let stopper = lp.clone();
    lp.call_later(std::time::Duration::from_millis(100), move || {
        stopper.stop()
    })
    .unwrap();
    lp.run_forever().unwrap();
    // Then the loop waits for its timer. One that kept returning early would have turned
    // thousands of times in those 100 ms, at full CPU.
    let iterations = lp.stats().iterations;
    assert!(iterations < 20, "{iterations} iterations");
}

/// Issue 13.5: asyncio stops `run_until_complete` from a done-callback of the future, so what
/// its last step scheduled with `call_soon` and its own done-callbacks run before it returns.
#[test]
fn run_until_complete_runs_what_the_last_step_scheduled_and_the_done_callbacks_before_returning() {
    let lp = EventLoop::new().unwrap();
    let soon = Rc::new(Cell::new(false));
    let done_callback = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (inner, s, d) = (lp.clone(), soon.clone(), done_callback.clone());
    let out = lp
        .run_until_complete(async move {
            inner.call_soon(move || s.set(true)).unwrap();
            spindle_loop::current_task()
                .unwrap()
                .add_done_callback(move |_| d.store(true, std::sync::atomic::Ordering::SeqCst));
            7
        })
        .unwrap();
    assert_eq!(out, 7);
    assert!(soon.get(), "the last step's call_soon ran");
    assert!(done_callback.load(std::sync::atomic::Ordering::SeqCst));
    // The stop it schedules is left over when a stop() ended the run first; it must not stop
    // a later run.
    let stopper = lp.clone();
    let first = lp.run_until_complete(async move {
        stopper.stop();
        1
    });
    assert_eq!(first, Ok(1));
    let later = lp.run_until_complete(async {
        spindle_loop::yield_now().await;
        spindle_loop::yield_now().await;
        2
    });
    assert_eq!(later, Ok(2));
    lp.close().unwrap();
}
