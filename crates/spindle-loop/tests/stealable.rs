//! Stealable tasks driven by a hand-written scheduler, on a running loop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use spindle_loop::{spawn_stealable, EventLoop, Runnable, Scheduler, TaskSet};

/// Keeps steps for the test to run.
#[derive(Default)]
struct Queue {
    set: TaskSet,
    steps: Mutex<Vec<Runnable>>,
}

impl Scheduler for Queue {
    fn schedule(&self, runnable: Runnable) {
        self.steps.lock().unwrap().push(runnable);
    }
    fn task_set(&self) -> &TaskSet {
        &self.set
    }
}

#[test]
fn a_stealable_task_that_finishes_in_its_first_step_runs_its_done_callbacks() {
    let lp = EventLoop::new().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    lp.run_until_complete(async move {
        let queue = Arc::new(Queue::default());
        let (first, task) = spawn_stealable(async { 1 }, &queue).unwrap();
        task.add_done_callback(move |t| {
            assert!(t.done());
            c.fetch_add(1, Ordering::SeqCst);
        });
        first.run(); // never goes idle: never registered in the set
        assert!(task.done());
    })
    .unwrap();
    lp.stop();
    lp.run_forever().unwrap(); // done-callbacks run in the iteration after completion
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_stealable_task_that_went_idle_runs_its_done_callbacks() {
    let lp = EventLoop::new().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    lp.run_until_complete(async move {
        let queue = Arc::new(Queue::default());
        let (first, task) = spawn_stealable(spindle_loop::yield_now(), &queue).unwrap();
        task.add_done_callback(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        first.run(); // yields: woken, rescheduled into the queue
        let next = queue.steps.lock().unwrap().pop().unwrap();
        next.run();
        assert!(task.done());
    })
    .unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A task holds a weak reference to its scheduler until its future is gone, whichever way it
/// goes: finished, cancelled while idle (the wake-up after cancel goes through the scheduler),
/// or dropped unrun. None is leaked (the scheduler's allocation would outlive it).
#[test]
fn a_task_releases_its_scheduler_reference_when_its_future_is_dropped() {
    let queue = Arc::new(Queue::default());
    let run_all = |queue: &Queue| loop {
        let steps = std::mem::take(&mut *queue.steps.lock().unwrap());
        if steps.is_empty() {
            break;
        }
        for step in steps {
            step.run();
        }
    };

    // Finished.
    let (first, task) = spawn_stealable(async { 1 }, &queue).unwrap();
    assert_eq!(Arc::weak_count(&queue), 1);
    first.run();
    assert_eq!(Arc::weak_count(&queue), 0);
    drop(task);

    // Cancelled while idle: the cancel wakes it through the scheduler, the step drops it.
    let (first, task) = spawn_stealable(std::future::pending::<()>(), &queue).unwrap();
    first.run();
    assert_eq!(Arc::weak_count(&queue), 1);
    assert!(task.cancel());
    run_all(&queue);
    assert!(task.cancelled());
    assert_eq!(Arc::weak_count(&queue), 0);

    // Never run.
    let (first, task) = spawn_stealable(async {}, &queue).unwrap();
    drop((first, task));
    assert_eq!(Arc::weak_count(&queue), 0);
    assert_eq!(Arc::strong_count(&queue), 1);
}
