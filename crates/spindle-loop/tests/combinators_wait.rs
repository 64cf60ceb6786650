//! Issue 5: `wait(tasks, timeout, return_when)`.

use std::time::{Duration, Instant};

mod combinators_support;

use combinators_support::{
    cancel_after, failing_task as failer, one_iteration, value_task as sleeper, HOUR,
};
use spindle_loop::{sleep, wait, EventLoop, LoopError, ReturnWhen, Task, TaskError};

fn ids(tasks: &[Task<u32>]) -> Vec<u64> {
    tasks.iter().map(Task::id).collect()
}

type Split = (Vec<Task<u32>>, Vec<Task<u32>>);

fn run_wait(
    lp: &EventLoop,
    tasks: Vec<Task<u32>>,
    timeout: Option<Duration>,
    when: ReturnWhen,
) -> Split {
    lp.run_until_complete(wait(tasks, timeout, when))
        .unwrap()
        .unwrap()
}

#[test]
fn first_completed_returns_as_soon_as_one_task_is_done() {
    let lp = EventLoop::new().unwrap();
    let tasks = vec![
        sleeper(&lp, 3_600_000, 0),
        sleeper(&lp, 5, 1),
        sleeper(&lp, 3_600_000, 2),
    ];
    let order = ids(&tasks);
    let (mut done, pending) = run_wait(&lp, tasks, None, ReturnWhen::FirstCompleted);
    assert_eq!(ids(&done), [order[1]]);
    assert_eq!(
        ids(&pending),
        [order[0], order[2]],
        "pending keep the given order"
    );
    assert_eq!(
        done[0].result().unwrap(),
        Ok(1),
        "the result is still there"
    );
    assert!(pending.iter().all(|t| !t.done() && !t.cancelled()));
    for t in &pending {
        t.cancel();
    }
}

#[test]
fn all_completed_waits_for_every_task_and_leaves_the_results_in_them() {
    let lp = EventLoop::new().unwrap();
    let tasks = vec![sleeper(&lp, 10, 1), sleeper(&lp, 1, 2), failer(&lp, 5)];
    let (mut done, pending) = run_wait(&lp, tasks, None, ReturnWhen::AllCompleted);
    assert!(pending.is_empty());
    assert_eq!(done.len(), 3);
    assert_eq!(done[0].result().unwrap(), Ok(1));
    assert_eq!(done[1].result().unwrap(), Ok(2));
    assert!(done[2].result().unwrap().unwrap_err().is_panic());
}

#[test]
fn first_exception_returns_at_the_first_failure() {
    let lp = EventLoop::new().unwrap();
    let tasks = vec![
        sleeper(&lp, 3_600_000, 1),
        failer(&lp, 5),
        sleeper(&lp, 1, 3),
    ];
    let order = ids(&tasks);
    let (mut done, pending) = run_wait(&lp, tasks, None, ReturnWhen::FirstException);
    assert_eq!(ids(&done), [order[1], order[2]]);
    assert_eq!(ids(&pending), [order[0]]);
    assert!(done[0].result().unwrap().unwrap_err().is_panic());
    pending[0].cancel();
}

#[test]
fn first_exception_ignores_cancellations() {
    let lp = EventLoop::new().unwrap();
    let cancelled = sleeper(&lp, 3_600_000, 1);
    cancel_after(&lp, cancelled.task_ref(), 1);
    let tasks = vec![cancelled, sleeper(&lp, 20, 2)];
    let start = Instant::now();
    let (mut done, pending) = run_wait(&lp, tasks, None, ReturnWhen::FirstException);
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "it waited for the other"
    );
    assert!(pending.is_empty());
    assert_eq!(done[0].result().unwrap(), Err(TaskError::Cancelled));
    assert_eq!(done[1].result().unwrap(), Ok(2));
}

#[test]
fn first_exception_without_failures_behaves_like_all_completed() {
    let lp = EventLoop::new().unwrap();
    let tasks = vec![sleeper(&lp, 15, 1), sleeper(&lp, 1, 2)];
    let (done, pending) = run_wait(&lp, tasks, None, ReturnWhen::FirstException);
    assert_eq!(done.len(), 2);
    assert!(pending.is_empty());
}

#[test]
fn a_timeout_returns_done_and_pending_and_cancels_nothing() {
    let lp = EventLoop::new().unwrap();
    let tasks = vec![sleeper(&lp, 1, 1), sleeper(&lp, 3_600_000, 2)];
    let start = Instant::now();
    let (done, pending) = run_wait(
        &lp,
        tasks,
        Some(Duration::from_millis(20)),
        ReturnWhen::AllCompleted,
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!((done.len(), pending.len()), (1, 1));
    one_iteration(&lp);
    assert!(!pending[0].done(), "still running after the timeout");
    assert!(pending[0].cancel());
}

#[test]
fn a_condition_already_met_returns_without_waiting_an_iteration() {
    let lp = EventLoop::new().unwrap();
    let tasks = vec![sleeper(&lp, 0, 1), sleeper(&lp, 3_600_000, 2)];
    lp.run_until_complete(sleep(Duration::from_millis(2)))
        .unwrap();
    let iterations = lp
        .run_until_complete(async move {
            let lp = EventLoop::running().unwrap();
            let before = lp.stats().iterations;
            let (done, pending) = wait(tasks, None, ReturnWhen::FirstCompleted).await.unwrap();
            pending[0].cancel();
            assert_eq!(done.len(), 1);
            lp.stats().iterations - before
        })
        .unwrap();
    assert_eq!(iterations, 0);
}

#[test]
fn an_empty_wait_is_a_typed_error_that_says_what_to_do() {
    let lp = EventLoop::new().unwrap();
    let out = lp
        .run_until_complete(wait(Vec::<Task<()>>::new(), None, ReturnWhen::AllCompleted))
        .unwrap();
    let err = out.unwrap_err();
    assert_eq!(err, LoopError::EmptyWait);
    assert!(err.to_string().contains("no tasks"), "{err}");
}

#[test]
fn cancelling_the_waiter_leaves_the_tasks_running() {
    let lp = EventLoop::new().unwrap();
    let task = sleeper(&lp, 100, 9);
    let watched = task.task_ref();
    let waiter = lp
        .create_task(async move { wait([task], None, ReturnWhen::AllCompleted).await.is_ok() })
        .unwrap();
    one_iteration(&lp);
    one_iteration(&lp);
    assert!(waiter.cancel());
    assert_eq!(
        lp.run_until_complete(waiter).unwrap(),
        Err(TaskError::Cancelled)
    );
    assert!(!watched.cancelled());
    lp.run_until_complete(sleep(Duration::from_millis(120)))
        .unwrap();
    assert!(watched.done() && !watched.cancelled());
}

#[test]
fn wait_is_send_when_the_outputs_are() {
    fn assert_send<T: Send>(_: &T) {}
    let lp = EventLoop::new().unwrap();
    let w = wait([sleeper(&lp, 1, 1)], Some(HOUR), ReturnWhen::FirstCompleted);
    assert_send(&w);
    let (done, _) = lp.run_until_complete(w).unwrap().unwrap();
    assert_eq!(done.len(), 1);
}
