//! Loom models of the task cell (crates/spindle-loop/src/cell/): the state word shared by a
//! task's step, its wakers on other threads, and its handle.
//!
//! The tasks are real ones (`spawn_stealable`), with a scheduler that queues their steps for
//! the model to run. Checked: a wake from another thread during a step is never lost (the task
//! finishes once the queue is drained); a task that wakes itself during a step while another
//! thread wakes it too has exactly one step queued at a time; an awaiter on another thread gets
//! the output, or `Cancelled` if the step was dropped, and is never left hanging; a handle
//! dropped on another thread while the task completes frees the output exactly once (loom
//! reports a leaked `Arc`); a cancel from another thread while the task's cancelled step may
//! already run reaches the task it awaits (issue 13.1).
#![cfg(loom)]

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use spindle_loop::{spawn_stealable, Runnable, Scheduler, TaskError, TaskSet};

/// Queues steps for the model to run; at most one step of the (single) task at a time.
#[derive(Default)]
struct Queue {
    set: TaskSet,
    steps: std::sync::Mutex<VecDeque<Runnable>>,
}

impl Scheduler for Queue {
    fn schedule(&self, runnable: Runnable) {
        let mut steps = self.steps.lock().unwrap();
        assert!(steps.is_empty(), "a task has one step owed at a time");
        steps.push_back(runnable);
    }

    fn task_set(&self) -> &TaskSet {
        &self.set
    }
}

impl Queue {
    /// Runs queued steps until none is left.
    fn drain(&self) {
        loop {
            let step = self.steps.lock().unwrap().pop_front();
            let Some(step) = step else { return };
            step.run();
        }
    }
}

/// Finishes once `go` is set; otherwise leaves its waker in `slot` (stored before `go` is
/// read, so the future itself loses no wake-up) and, if `yield_first`, wakes itself on its
/// first poll, as a yield does.
struct WaitForGo {
    go: Arc<AtomicBool>,
    slot: Arc<Mutex<Option<Waker>>>,
    yield_first: bool,
}

impl Future for WaitForGo {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        if self.go.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if std::mem::take(&mut self.yield_first) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// Sets `go`, then wakes whatever waker the future left.
fn release(go: &AtomicBool, slot: &Mutex<Option<Waker>>) {
    go.store(true, Ordering::SeqCst);
    let waker = slot.lock().unwrap().take();
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Polls `future` on this loom thread, parking between polls; its waker unparks the thread.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

fn wake_from_another_thread(yield_first: bool) {
    loom::model(move || {
        let queue = std::sync::Arc::new(Queue::default());
        let go = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None));
        let future = WaitForGo {
            go: go.clone(),
            slot: slot.clone(),
            yield_first,
        };
        let Ok((first, task)) = spawn_stealable(future, &queue) else {
            panic!("spawn refused")
        };
        let waker = thread::spawn(move || release(&go, &slot));
        first.run();
        if yield_first && !task.done() {
            // The task woke itself during the step: whatever the other thread did, one step
            // is owed (the self-wake is not lost, nor doubled).
            assert_eq!(
                queue.steps.lock().unwrap().len(),
                1,
                "the self-wake was lost"
            );
        }
        // Steps the wake-up or the yield queued meanwhile.
        queue.drain();
        waker.join().unwrap();
        queue.drain();
        assert!(task.done(), "the wake-up was lost");
    });
}

#[test]
fn a_wake_from_another_thread_during_a_step_is_not_lost() {
    wake_from_another_thread(false);
}

#[test]
fn a_self_wake_and_a_wake_from_another_thread_owe_one_step() {
    wake_from_another_thread(true);
}

/// A task awaited on another thread while this one runs its first step (`run`) or drops it;
/// returns what the awaiter got.
fn await_on_another_thread(run: bool) -> Result<u8, TaskError> {
    let queue = std::sync::Arc::new(Queue::default());
    let Ok((first, task)) = spawn_stealable(async { 7u8 }, &queue) else {
        panic!("spawn refused")
    };
    let awaiter = thread::spawn(move || block_on(task));
    if run {
        first.run();
    } else {
        drop(first);
    }
    awaiter.join().unwrap()
}

#[test]
fn an_awaiter_on_another_thread_gets_the_output() {
    loom::model(|| assert_eq!(await_on_another_thread(true), Ok(7)));
}

#[test]
fn an_awaiter_of_a_dropped_step_gets_cancelled() {
    loom::model(|| assert_eq!(await_on_another_thread(false), Err(TaskError::Cancelled)));
}

#[test]
fn a_handle_dropped_while_the_task_completes_frees_the_output_once() {
    loom::model(|| {
        let queue = std::sync::Arc::new(Queue::default());
        let output = Arc::new(());
        let Ok((first, task)) = spawn_stealable(async move { output }, &queue) else {
            panic!("spawn refused")
        };
        let dropper = thread::spawn(move || drop(task));
        first.run();
        dropper.join().unwrap();
    });
}

/// Issue 13.1: task A awaits task B; another thread cancels A while this one runs whatever
/// steps of A are queued (so A's cancelled step may run, and complete, in the middle of
/// `cancel()`). Whatever the interleaving, B is cancelled.
#[test]
fn a_cancel_racing_with_the_cancelled_step_still_reaches_the_awaited_task() {
    loom::model(|| {
        let queue_a = std::sync::Arc::new(Queue::default());
        let queue_b = std::sync::Arc::new(Queue::default());
        let Ok((first_b, b)) = spawn_stealable(std::future::pending::<()>(), &queue_b) else {
            panic!("spawn refused")
        };
        let b_ref = b.task_ref();
        let Ok((first_a, a)) = spawn_stealable(b, &queue_a) else {
            panic!("spawn refused")
        };
        first_a.run(); // A now awaits B: the await link is set
        let a_ref = a.task_ref();
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        let canceller = thread::spawn(move || {
            assert!(a_ref.cancel());
            flag.store(true, Ordering::SeqCst);
        });
        // A worker running A's steps as they come, also in the middle of `cancel()`.
        while !cancelled.load(Ordering::SeqCst) {
            queue_a.drain();
            thread::yield_now();
        }
        canceller.join().unwrap();
        queue_a.drain();
        assert!(a.done() && a.cancelled());
        first_b.run();
        queue_b.drain();
        assert!(
            b_ref.cancelled(),
            "the cancel did not reach the awaited task"
        );
    });
}
