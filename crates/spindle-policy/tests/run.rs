//! Issue 4: run() and Runner.

use std::cell::Cell;
use std::rc::Rc;
use std::thread;

use spindle_policy::{run, PolicyError, Runner};

struct RecordDrop(Rc<Cell<Option<thread::ThreadId>>>);

impl Drop for RecordDrop {
    fn drop(&mut self) {
        self.0.set(Some(thread::current().id()));
    }
}

#[test]
fn run_returns_the_output_and_closes_its_loop() {
    let lp_slot = Rc::new(std::cell::RefCell::new(None));
    let s = lp_slot.clone();
    let out = run(async move {
        *s.borrow_mut() = Some(spindle_policy::get_running_loop().unwrap());
        "ok"
    })
    .unwrap();
    assert_eq!(out, "ok");
    let lp = lp_slot.borrow_mut().take().unwrap();
    assert!(lp.is_closed());
}

#[test]
fn run_cancels_a_hanging_task_and_its_drop_runs_on_the_loop_thread_before_returning() {
    let dropped_on = Rc::new(Cell::new(None));
    let d = dropped_on.clone();
    run(async move {
        let guard = RecordDrop(d);
        let _hanging = spindle_policy::spawn_local(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        })
        .unwrap();
        // Let it start, then return while it hangs.
        spindle_loop::EventLoop::running().unwrap();
    })
    .unwrap();
    assert_eq!(dropped_on.get(), Some(thread::current().id()));
}

#[test]
fn run_inside_run_is_an_error_not_a_deadlock() {
    let inner = run(async { run(async { 1 }).map(|_| ()) }).unwrap();
    assert_eq!(inner, Err(PolicyError::AlreadyRunning));
    assert!(PolicyError::AlreadyRunning
        .to_string()
        .contains("cannot be called while an event loop is running"));
}

#[test]
fn run_unsets_the_threads_current_loop() {
    let policy = spindle_policy::get_event_loop_policy();
    run(async {}).unwrap();
    // The test thread is not "main": no loop is created, and run() left none set.
    assert!(policy.get_event_loop().is_err());
}

#[test]
fn run_reports_a_panic_as_an_error_after_cleanup() {
    let err = run(async { panic!("boom") }).unwrap_err();
    assert_eq!(
        err,
        PolicyError::Loop(spindle_loop::LoopError::Task(
            spindle_loop::TaskError::Panicked("boom".into())
        ))
    );
}

#[test]
fn runner_reuses_one_loop_for_several_runs() {
    let runner = Runner::new();
    let a = runner
        .run(async { spindle_policy::get_running_loop().unwrap().id() })
        .unwrap();
    let b = runner
        .run(async { spindle_policy::get_running_loop().unwrap().id() })
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn runner_close_is_idempotent_and_use_after_close_is_an_error() {
    let runner = Runner::new();
    runner.run(async {}).unwrap();
    let lp = runner.get_loop().unwrap();
    runner.close().unwrap();
    runner.close().unwrap();
    assert!(lp.is_closed());
    assert_eq!(runner.run(async {}).unwrap_err(), PolicyError::RunnerClosed);
    assert_eq!(runner.get_loop().unwrap_err(), PolicyError::RunnerClosed);
    assert!(PolicyError::RunnerClosed
        .to_string()
        .contains("create a new Runner"));
}

#[test]
fn runner_run_from_inside_a_running_loop_is_an_error() {
    let out = run(async {
        let runner = Runner::new();
        runner.run(async {}).map(|_| ())
    })
    .unwrap();
    assert_eq!(out, Err(PolicyError::AlreadyRunning));
}

#[test]
fn runner_close_cancels_leftover_tasks() {
    let dropped_on = Rc::new(Cell::new(None));
    let d = dropped_on.clone();
    let runner = Runner::new();
    runner
        .run(async move {
            let guard = RecordDrop(d);
            spindle_policy::spawn_local(async move {
                let _guard = guard;
                std::future::pending::<()>().await
            })
            .unwrap();
        })
        .unwrap();
    assert!(dropped_on.get().is_none(), "still pending between runs");
    runner.close().unwrap();
    assert_eq!(dropped_on.get(), Some(thread::current().id()));
}

/// Issue 13.8: `run()` waits for the loop's blocking pool (asyncio's
/// `shutdown_default_executor`): a `to_thread` job started and not awaited, queued or running,
/// still finishes before `run()` returns.
#[test]
fn run_waits_for_the_loop_s_blocking_pool_before_returning() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let finished = Arc::new(AtomicUsize::new(0));
    let f = finished.clone();
    run(async move {
        for _ in 0..3 {
            let f = f.clone();
            let _job = spindle_bridge::to_thread(move || {
                thread::sleep(std::time::Duration::from_millis(20));
                f.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
    })
    .unwrap();
    assert_eq!(finished.load(Ordering::SeqCst), 3);
}

/// Issue 13.8: a job that outlives the (settable) timeout is reported, and close goes on.
#[test]
fn a_blocking_job_outliving_the_executor_shutdown_timeout_is_reported() {
    use std::sync::mpsc;
    let runner = Runner::new();
    runner.set_executor_shutdown_timeout(std::time::Duration::from_millis(10));
    let lp = runner.get_loop().unwrap();
    let reports = Rc::new(Cell::new(0));
    let r = reports.clone();
    lp.set_exception_handler(Some(Rc::new(
        move |_: &spindle_loop::EventLoop, ctx: &spindle_loop::ExceptionContext| {
            if ctx.kind == spindle_loop::ExceptionKind::ExecutorShutdownTimeout {
                r.set(r.get() + 1);
            }
        },
    )));
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let job = spindle_bridge::EventLoopExt::run_in_executor(&lp, move || {
        started_tx.send(()).unwrap();
        // Bounded: released right after close() below.
        let _ = release_rx.recv_timeout(std::time::Duration::from_secs(30));
    })
    .unwrap();
    started_rx.recv().unwrap();
    runner.close().unwrap();
    assert_eq!(reports.get(), 1);
    assert!(lp.is_closed());
    release_tx.send(()).unwrap();
    assert_eq!(job.result(), Ok(()));
}
