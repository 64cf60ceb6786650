//! Issue 5: `shield`.

use std::time::Duration;

mod combinators_support;

use combinators_support::{cancel_after, one_iteration, value_task as slow_value, HOUR};
use spindle_loop::{shield, sleep, timeout, wait_for, EventLoop, TaskError};

#[test]
fn a_shield_passes_the_output_through() {
    let lp = EventLoop::new().unwrap();
    let ok = slow_value(&lp, 1, 6);
    assert_eq!(lp.run_until_complete(shield(ok)).unwrap(), Ok(6));
    let failing = lp
        .create_task(async { panic!("inside the shield") })
        .unwrap();
    assert_eq!(
        lp.run_until_complete(shield::<(), _>(failing)).unwrap(),
        Err(TaskError::Panicked("inside the shield".into()))
    );
}

#[test]
fn cancelling_the_awaiter_leaves_the_shielded_task_running_to_completion() {
    let lp = EventLoop::new().unwrap();
    let task = slow_value(&lp, 100, 1);
    let inner = task.task_ref();
    let awaiter = lp.create_task(shield(task)).unwrap();
    one_iteration(&lp);
    one_iteration(&lp);
    assert!(awaiter.cancel());
    assert_eq!(
        lp.run_until_complete(awaiter).unwrap(),
        Err(TaskError::Cancelled)
    );
    one_iteration(&lp);
    assert!(!inner.cancelled() && !inner.done(), "still running");
    lp.run_until_complete(sleep(Duration::from_millis(120)))
        .unwrap();
    assert!(inner.done() && !inner.cancelled(), "ran to completion");
}

#[test]
fn without_a_shield_cancelling_the_awaiter_cancels_the_task() {
    // The contrast that makes the shield worth having: awaiting a task links the two.
    let lp = EventLoop::new().unwrap();
    let task = slow_value(&lp, 100, 1);
    let inner = task.task_ref();
    let awaiter = lp.create_task(task).unwrap();
    one_iteration(&lp);
    one_iteration(&lp);
    assert!(awaiter.cancel());
    let _ = lp.run_until_complete(awaiter).unwrap();
    one_iteration(&lp);
    assert!(inner.cancelled());
}

#[test]
fn a_wait_for_around_a_shield_times_out_and_the_task_still_completes() {
    let lp = EventLoop::new().unwrap();
    let task = slow_value(&lp, 100, 5);
    let inner = task.task_ref();
    let out = lp
        .run_until_complete(wait_for(shield(task), Duration::from_millis(5)))
        .unwrap();
    assert_eq!(out, Err(TaskError::Timeout));
    assert!(!inner.cancelled() && !inner.done());
    lp.run_until_complete(sleep(Duration::from_millis(120)))
        .unwrap();
    assert!(inner.done() && !inner.cancelled());
}

#[test]
fn a_shield_over_a_borrowed_task_leaves_it_to_await_after_a_timeout() {
    let lp = EventLoop::new().unwrap();
    let spawner = lp.clone();
    let (timed_out, later) = lp
        .run_until_complete(async move {
            let mut task = slow_value(&spawner, 20, 11);
            let timed_out = timeout(Duration::from_millis(5), shield(&mut task)).await;
            (timed_out, task.await)
        })
        .unwrap();
    assert_eq!(timed_out, Err(TaskError::Timeout));
    assert_eq!(later, Ok(11));
}

#[test]
fn a_cancelled_inner_task_cancels_the_shield() {
    let lp = EventLoop::new().unwrap();
    let task = slow_value(&lp, 3_600_000, 1);
    cancel_after(&lp, task.task_ref(), 2);
    assert_eq!(
        lp.run_until_complete(shield(task)).unwrap(),
        Err(TaskError::Cancelled)
    );
}

#[test]
fn a_shield_is_send_when_the_output_is() {
    fn assert_send<T: Send>(_: &T) {}
    let lp = EventLoop::new().unwrap();
    let s = shield(lp.create_task(sleep(HOUR)).unwrap());
    assert_send(&s);
    drop(s);
}
