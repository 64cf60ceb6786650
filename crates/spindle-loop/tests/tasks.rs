//! Issue behaviour 9: tasks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use spindle_loop::{all_tasks, current_task, EventLoop, TaskError};

fn one_iteration(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().unwrap();
}

#[test]
fn create_task_does_not_start_the_body_before_the_next_iteration() {
    let lp = EventLoop::new().unwrap();
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let _task = lp.create_task(async move { s.set(true) }).unwrap();
    assert!(!started.get());
    one_iteration(&lp);
    assert!(started.get());
}

#[test]
fn cancel_before_the_first_step_means_the_body_never_runs() {
    let lp = EventLoop::new().unwrap();
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let task = lp.create_task(async move { s.set(true) }).unwrap();
    assert!(task.cancel());
    assert_eq!(
        lp.run_until_complete(task).unwrap(),
        Err(TaskError::Cancelled)
    );
    assert!(!started.get());
}

#[test]
fn cancelling_a_task_that_awaits_another_task_cancels_that_one_too() {
    let lp = EventLoop::new().unwrap();
    let inner_dropped = Rc::new(Cell::new(false));
    let d = inner_dropped.clone();
    let spawner = lp.clone();
    let outer = lp
        .create_task(async move {
            let inner = spawner
                .create_task(async move {
                    struct OnDrop(Rc<Cell<bool>>);
                    impl Drop for OnDrop {
                        fn drop(&mut self) {
                            self.0.set(true);
                        }
                    }
                    let _guard = OnDrop(d);
                    std::future::pending::<()>().await
                })
                .unwrap();
            let inner_ref = inner.task_ref();
            (inner.await, inner_ref)
        })
        .unwrap();
    let outer_ref = outer.task_ref();
    for _ in 0..3 {
        one_iteration(&lp);
    }
    let inner_ref = lp
        .all_tasks()
        .into_iter()
        .find(|t| *t != outer_ref)
        .expect("inner task is live");
    assert!(outer.cancel());
    assert_eq!(
        lp.run_until_complete(outer).unwrap(),
        Err(TaskError::Cancelled)
    );
    one_iteration(&lp);
    assert!(
        inner_ref.cancelled(),
        "cancellation flowed down the await chain"
    );
    assert!(inner_dropped.get());
}

#[test]
fn cancel_on_a_done_task_returns_false() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(async { 1 }).unwrap();
    let r = task.task_ref();
    assert_eq!(lp.run_until_complete(task).unwrap(), Ok(1));
    assert!(r.done());
    assert!(!r.cancel());
    assert!(!r.cancelled());
}

#[test]
fn a_cancelled_tasks_awaiters_get_cancelled_and_its_done_callbacks_run() {
    let lp = EventLoop::new().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let victim = lp.create_task(std::future::pending::<u32>()).unwrap();
    let c = calls.clone();
    victim.add_done_callback(move |t| {
        assert!(t.cancelled());
        c.fetch_add(1, Ordering::SeqCst);
    });
    let victim_ref = victim.task_ref();
    // A task awaiting the victim's handle (a `Task` is itself a future).
    let awaiter = lp.create_task(victim).unwrap();
    one_iteration(&lp);
    victim_ref.cancel();
    // The awaiter itself finishes normally; what it awaited says Cancelled.
    assert_eq!(
        lp.run_until_complete(awaiter).unwrap(),
        Ok(Err(TaskError::Cancelled))
    );
    one_iteration(&lp);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_task_cancelled_while_awaiting_drops_its_future_at_the_next_step() {
    let lp = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let task = lp
        .create_task(async move {
            struct OnDrop(Rc<RefCell<Vec<&'static str>>>);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    self.0.borrow_mut().push("dropped");
                }
            }
            let _guard = OnDrop(l.clone());
            l.borrow_mut().push("started");
            std::future::pending::<()>().await
        })
        .unwrap();
    one_iteration(&lp);
    task.cancel();
    assert_eq!(*log.borrow(), ["started"], "not dropped inside cancel()");
    assert_eq!(
        lp.run_until_complete(task).unwrap(),
        Err(TaskError::Cancelled)
    );
    assert_eq!(*log.borrow(), ["started", "dropped"]);
}

#[test]
fn dropping_an_unawaited_task_handle_detaches_it() {
    let lp = EventLoop::new().unwrap();
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    drop(
        lp.create_task(async move {
            spindle_loop::yield_now().await;
            f.set(true);
        })
        .unwrap(),
    );
    for _ in 0..3 {
        one_iteration(&lp);
    }
    assert!(finished.get());
}

#[test]
fn task_names_default_to_task_id_and_can_be_set() {
    let lp = EventLoop::new().unwrap();
    let t = lp
        .create_task(async { current_task().unwrap().name() })
        .unwrap();
    assert_eq!(t.name(), format!("Task-{}", t.id()));
    t.set_name("renamed");
    assert_eq!(lp.run_until_complete(t).unwrap(), Ok("renamed".to_string()));
}

#[test]
fn current_task_and_all_tasks_track_the_running_loop() {
    let lp = EventLoop::new().unwrap();
    assert!(current_task().is_none());
    let spawner = lp.clone();
    let (ids_match, live) = lp
        .run_until_complete(async move {
            let me = current_task().unwrap();
            let child = spawner
                .create_task(async { current_task().unwrap().id() })
                .unwrap();
            let child_id = child.id();
            let live = all_tasks().len();
            let seen = child.await.unwrap();
            (seen == child_id && current_task().unwrap() == me, live)
        })
        .unwrap();
    assert!(ids_match);
    assert_eq!(live, 2);
    assert!(lp.all_tasks().is_empty());
}

#[test]
fn task_result_is_invalid_state_until_done_then_taken_once() {
    let lp = EventLoop::new().unwrap();
    let mut t = lp.create_task(async { 5 }).unwrap();
    assert!(t.result().is_err());
    one_iteration(&lp);
    assert_eq!(t.result().unwrap(), Ok(5));
    assert!(t.result().is_err(), "already taken");
}

#[test]
fn a_task_is_woken_from_another_thread_through_the_inbox() {
    let lp = EventLoop::new().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let waker_thread = std::thread::spawn(move || {
        let waker = rx.recv().unwrap();
        d.store(true, Ordering::SeqCst);
        waker.wake();
    });
    let flag = done.clone();
    let mut sent = Some(tx);
    let out = lp
        .run_until_complete(std::future::poll_fn(move |cx| {
            if flag.load(Ordering::SeqCst) {
                return Poll::Ready("woken");
            }
            if let Some(tx) = sent.take() {
                tx.send(cx.waker().clone()).unwrap();
            }
            Poll::Pending
        }))
        .unwrap();
    waker_thread.join().unwrap();
    assert_eq!(out, "woken");
    assert!(lp.stats().wakeups <= 1);
}

#[test]
fn module_level_spawn_local_records_its_callers_location() {
    let lp = EventLoop::new().unwrap();
    let (line, recorded) = lp
        .run_until_complete(async {
            let t = spindle_loop::spawn_local(async {}).unwrap();
            (line!() - 1, t.task_ref().created_at().line())
        })
        .unwrap();
    assert_eq!(recorded, line);
}

/// Issue 13.2: asyncio's `task.cancel()` cancels the future the task waits on, at once.
#[test]
fn cancelling_a_task_suspended_on_a_loop_future_cancels_that_future() {
    let lp = EventLoop::new().unwrap();
    let fut = lp.create_future::<u8>();
    let waited = fut.clone();
    let task = lp.create_task(waited).unwrap();
    let other = fut.clone();
    let bystander = lp.create_task(other).unwrap();
    one_iteration(&lp);
    assert!(!fut.done());
    assert!(task.cancel());
    assert!(fut.cancelled(), "cancelled at once, with the task");
    assert!(matches!(
        fut.set_result(1),
        Err(spindle_loop::LoopError::InvalidState(_))
    ));
    assert_eq!(
        lp.run_until_complete(bystander).unwrap(),
        Ok(Err(TaskError::Cancelled))
    );
    assert_eq!(
        lp.run_until_complete(task).unwrap(),
        Err(TaskError::Cancelled)
    );
}

/// Issue 13.2: a future the task awaited in an earlier step, and no longer, is left alone.
#[test]
fn cancelling_a_task_leaves_a_loop_future_it_no_longer_awaits_alone() {
    let lp = EventLoop::new().unwrap();
    let fut = lp.create_future::<u8>();
    let waited = fut.clone();
    let task = lp
        .create_task(async move {
            let once = spindle_loop::timeout(std::time::Duration::ZERO, waited).await;
            assert!(once.is_err());
            std::future::pending::<()>().await
        })
        .unwrap();
    for _ in 0..3 {
        one_iteration(&lp);
    }
    assert!(!fut.done());
    assert!(task.cancel());
    assert!(!fut.done());
    assert_eq!(
        lp.run_until_complete(task).unwrap(),
        Err(TaskError::Cancelled)
    );
    assert!(!fut.done());
}

/// Issue 13.3: asyncio's `_must_cancel`: the cancel request wins over the value.
#[test]
fn a_task_that_cancels_itself_and_returns_without_awaiting_ends_cancelled() {
    let lp = EventLoop::new().unwrap();
    let task = lp
        .create_task(async {
            assert!(current_task().unwrap().cancel());
            5
        })
        .unwrap();
    let r = task.task_ref();
    assert_eq!(
        lp.run_until_complete(task).unwrap(),
        Err(TaskError::Cancelled)
    );
    assert!(r.cancelled());
}

/// Issue 13.3: the code after the await never runs.
#[test]
fn a_task_that_cancels_itself_and_then_awaits_is_cancelled_at_that_await() {
    let lp = EventLoop::new().unwrap();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    let task = lp
        .create_task(async move {
            current_task().unwrap().cancel();
            spindle_loop::yield_now().await;
            a.set(true);
        })
        .unwrap();
    assert_eq!(
        lp.run_until_complete(task).unwrap(),
        Err(TaskError::Cancelled)
    );
    assert!(!after.get());
}

/// Issue 13.4: awaiting its own handle fails at once (asyncio: "Task cannot await on itself").
#[test]
fn a_task_awaiting_its_own_handle_gets_an_error_at_once() {
    let lp = EventLoop::new().unwrap();
    let slot: Rc<RefCell<Option<spindle_loop::Task<&str>>>> = Rc::default();
    let mine = slot.clone();
    let task = lp
        .create_task(async move {
            let mut me = mine.borrow_mut().take().unwrap();
            assert_eq!((&mut me).await, Err(TaskError::AwaitedItself));
            // Also through shield, which polls without the await link.
            assert_eq!(
                spindle_loop::shield(&mut me).await,
                Err(TaskError::AwaitedItself)
            );
            "went on"
        })
        .unwrap();
    let r = task.task_ref();
    *slot.borrow_mut() = Some(task);
    one_iteration(&lp);
    assert!(r.done() && !r.cancelled() && !r.panicked());
}

/// Completion has a short path (nothing registered on the task, nothing to report) and a full
/// one. Detached tasks that end in their first step, one of each kind: each finishes once (the
/// done-callback runs once, with its task; the panic is reported once), and none is left
/// counted as live.
#[test]
fn detached_tasks_ending_in_their_first_step_each_finish_once_and_leave_no_live_task() {
    let lp = EventLoop::new().unwrap();
    let reports = Rc::new(Cell::new(0));
    let r = reports.clone();
    lp.set_exception_handler(Some(Rc::new(
        move |_: &EventLoop, _: &spindle_loop::ExceptionContext| r.set(r.get() + 1),
    )));
    let ran = Rc::new(Cell::new(0));
    let body = |ran: &Rc<Cell<u32>>| {
        let ran = ran.clone();
        async move { ran.set(ran.get() + 1) }
    };
    drop(lp.create_task(body(&ran)).unwrap()); // finished
    let cancelled = lp.create_task(body(&ran)).unwrap();
    assert!(cancelled.cancel()); // cancelled before its first step: the body never runs
    drop(cancelled);
    drop(lp.create_task(async { panic!("first step") }).unwrap()); // panicked
    let with_callback = lp.create_task(body(&ran)).unwrap();
    let callback_runs = Arc::new(AtomicUsize::new(0));
    let (c, id) = (callback_runs.clone(), with_callback.id());
    with_callback.add_done_callback(move |task| {
        assert_eq!(task.id(), id);
        c.fetch_add(1, Ordering::SeqCst);
    });
    drop(with_callback);
    assert_eq!(lp.stats().tasks, 4);
    for _ in 0..3 {
        one_iteration(&lp);
    }
    assert_eq!(
        ran.get(),
        2,
        "the finished task and the one with a callback ran"
    );
    assert_eq!(callback_runs.load(Ordering::SeqCst), 1);
    assert_eq!(reports.get(), 1, "the panic, reported once");
    assert_eq!(lp.stats().tasks, 0);
    assert!(lp.all_tasks().is_empty());
    lp.close().unwrap();
}

/// A handle dropped after its task finished takes the output out of the cell and drops it
/// (the detach's slow path; the fast one is for a task that never ran).
#[test]
fn a_handle_dropped_after_its_task_finished_drops_the_output() {
    struct Counted(Rc<Cell<u32>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let lp = EventLoop::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let task = lp.create_task(async move { Counted(d) }).unwrap();
    one_iteration(&lp);
    assert!(task.done());
    assert_eq!(
        drops.get(),
        0,
        "the output waits in the cell for the handle"
    );
    drop(task);
    assert_eq!(drops.get(), 1);
    lp.close().unwrap();
}
