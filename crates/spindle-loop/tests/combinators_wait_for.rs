//! Issue 5: `wait_for`, `wait_for_task`, `timeout`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

mod combinators_support;

use combinators_support::{cancel_after, one_iteration, DropFlag, HOUR};
use spindle_loop::{
    all_tasks, sleep, timeout, wait_for, wait_for_task, EventLoop, Task, TaskError,
};

#[test]
fn wait_for_returns_the_value_when_the_work_beats_the_deadline() {
    let lp = EventLoop::new().unwrap();
    let work = async {
        sleep(Duration::from_millis(1)).await;
        "done"
    };
    let out = lp
        .run_until_complete(wait_for(work, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(out, Ok("done"));
    // run_until_complete returns one iteration after the work (asyncio's stop callback),
    // which may already have dropped the cancelled entry: no live timer is left either way.
    let stats = lp.stats();
    assert_eq!(
        stats.timers - stats.cancelled_timers,
        0,
        "the deadline's timer was cancelled"
    );
    one_iteration(&lp);
    assert_eq!(lp.stats().timers, 0);
}

#[test]
fn at_the_deadline_wait_for_cancels_the_work_and_waits_until_it_has_finished() {
    let lp = EventLoop::new().unwrap();
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let work = async move {
        let _flag = DropFlag(d);
        sleep(HOUR).await;
    };
    let start = Instant::now();
    let out = lp
        .run_until_complete(wait_for(work, Duration::from_millis(20)))
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(out, Err(TaskError::Timeout));
    assert!(
        dropped.get(),
        "the work had finished when wait_for returned"
    );
    assert_eq!(lp.stats().tasks, 0);
}

#[test]
fn a_task_that_finishes_with_a_value_while_being_cancelled_gives_that_value() {
    // The work is a task on a loop in another thread, in the middle of a step when the deadline
    // passes: the cancellation request cannot stop that step, which then returns a value.
    let (task_tx, task_rx) = mpsc::channel::<Task<u32>>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    let worker = std::thread::spawn(move || {
        let lp = EventLoop::new().unwrap();
        let task = lp
            .create_task(async move {
                started_tx.send(()).unwrap();
                while !r.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1)); // a step that blocks
                }
                42
            })
            .unwrap();
        let watched = task.task_ref();
        task_tx.send(task).unwrap();
        while !watched.done() {
            one_iteration(&lp);
        }
    });
    let task = task_rx.recv().unwrap();
    started_rx.recv().unwrap(); // the step is under way before the deadline can pass
    let watched = task.task_ref();
    let lp = EventLoop::new().unwrap();
    // Released only after the deadline (timers run in deadline order on this loop).
    lp.call_later(Duration::from_millis(30), move || {
        release.store(true, Ordering::Release)
    })
    .unwrap();
    let out = lp
        .run_until_complete(wait_for_task(task, Duration::from_millis(10)))
        .unwrap();
    worker.join().unwrap();
    assert_eq!(out, Ok(42));
    assert!(!watched.cancelled());
}

#[test]
fn a_zero_delay_on_a_finished_task_returns_its_result() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(async { 8 }).unwrap();
    one_iteration(&lp);
    assert!(task.done());
    let out = lp
        .run_until_complete(wait_for_task(task, Duration::ZERO))
        .unwrap();
    assert_eq!(out, Ok(8));
}

#[test]
fn a_zero_delay_on_unfinished_work_cancels_it_at_once() {
    let lp = EventLoop::new().unwrap();
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let out = lp
        .run_until_complete(wait_for(async move { s.set(true) }, Duration::ZERO))
        .unwrap();
    assert_eq!(out, Err(TaskError::Timeout));
    assert!(!started.get(), "the work never ran a step");
}

#[test]
fn the_error_of_the_work_passes_through() {
    let lp = EventLoop::new().unwrap();
    let out = lp
        .run_until_complete(wait_for(
            async {
                sleep(Duration::from_millis(1)).await;
                panic!("broken")
            },
            Duration::from_secs(10),
        ))
        .unwrap();
    assert_eq!(out, Err::<(), _>(TaskError::Panicked("broken".into())));
}

#[test]
fn a_task_cancelled_by_someone_else_before_the_deadline_is_cancelled_not_timed_out() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(sleep(HOUR)).unwrap();
    cancel_after(&lp, task.task_ref(), 2);
    let out = lp
        .run_until_complete(wait_for_task(task, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(out, Err(TaskError::Cancelled));
}

#[test]
fn cancelling_the_awaiter_of_wait_for_cancels_the_work() {
    let lp = EventLoop::new().unwrap();
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let outer = lp
        .create_task(wait_for(
            async move {
                let _flag = DropFlag(d);
                sleep(HOUR).await;
            },
            HOUR,
        ))
        .unwrap();
    one_iteration(&lp);
    one_iteration(&lp);
    assert!(!dropped.get());
    assert!(outer.cancel());
    assert_eq!(
        lp.run_until_complete(outer).unwrap(),
        Err(TaskError::Cancelled)
    );
    one_iteration(&lp);
    assert!(dropped.get());
}

#[test]
fn the_timeout_error_says_what_to_do() {
    let text = TaskError::Timeout.to_string();
    assert!(
        text.contains("deadline") && text.contains("shield"),
        "{text}"
    );
    assert!(TaskError::Timeout.is_timeout());
}

#[test]
fn timeout_is_a_plain_deadline_that_drops_the_future_inline() {
    let lp = EventLoop::new().unwrap();
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let (out, live, dropped_at_return) = lp
        .run_until_complete(async move {
            let flag = d.clone();
            let work = async move {
                let _flag = DropFlag(flag);
                sleep(HOUR).await;
            };
            let live = Rc::new(Cell::new(0));
            let l = live.clone();
            let watched = async move {
                l.set(all_tasks().len());
                work.await
            };
            let start = Instant::now();
            let out = timeout(Duration::from_millis(15), watched).await;
            assert!(start.elapsed() >= Duration::from_millis(15));
            (out, live.get(), d.get())
        })
        .unwrap();
    assert_eq!(out, Err(TaskError::Timeout));
    assert_eq!(live, 1, "no task was created for the inner future");
    assert!(
        dropped_at_return,
        "the inner future was dropped at the deadline"
    );
    assert!(dropped.get());
}

#[test]
fn timeout_returns_the_output_of_a_ready_future_even_with_zero_delay() {
    let lp = EventLoop::new().unwrap();
    let out = lp
        .run_until_complete(timeout(Duration::ZERO, std::future::ready(3)))
        .unwrap();
    assert_eq!(out, Ok(3));
    let late = lp
        .run_until_complete(timeout(Duration::ZERO, sleep(HOUR)))
        .unwrap();
    assert_eq!(late, Err(TaskError::Timeout));
}

#[test]
fn deadlines_are_send_when_the_work_is() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    assert_send(&wait_for(async { 1 }, HOUR));
    assert_send_sync(&timeout(HOUR, sleep(HOUR)));
    let lp = EventLoop::new().unwrap();
    assert_send(&wait_for_task(lp.create_task(async { 1 }).unwrap(), HOUR));
}
