//! Issue 5: `gather`, `gather_tasks`, `gather!`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

mod combinators_support;

use combinators_support::{capture, fail_after, one_iteration, value_after, DropFlag, HOUR};
use spindle_loop::{
    all_tasks, current_task, gather, gather_tasks, sleep, yield_now, EventLoop, ExceptionKind,
    Gather, Spawn, Task, TaskError, TaskRef,
};

async fn after(ms: u64, value: u32, log: Rc<RefCell<Vec<u32>>>) -> u32 {
    let value = value_after(ms, value).await;
    log.borrow_mut().push(value);
    value
}

#[test]
fn results_come_in_argument_order_not_completion_order() {
    let lp = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let children = [(30, 1), (10, 2), (20, 3)].map(|(ms, v)| after(ms, v, log.clone()));
    let out = lp.run_until_complete(gather(children)).unwrap();
    assert_eq!(out, Ok(vec![1, 2, 3]));
    assert_eq!(*log.borrow(), [2, 3, 1], "they completed in another order");
}

#[test]
fn gather_runs_each_future_as_its_own_task_on_the_running_loop() {
    let lp = EventLoop::new().unwrap();
    let out = lp
        .run_until_complete(async {
            let parent = current_task().unwrap().id();
            let child = || async {
                // Every child yields in its first step, so all of them are live here.
                let live = all_tasks().len();
                yield_now().await;
                (current_task().unwrap().id(), live)
            };
            let seen = gather([child(), child(), child()]).await.unwrap();
            (parent, seen)
        })
        .unwrap();
    let (parent, seen) = out;
    let mut ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct tasks");
    assert!(!ids.contains(&parent));
    assert!(
        seen.iter().all(|(_, live)| *live == 4),
        "the parent and its three children were live: {seen:?}"
    );
}

#[test]
fn gather_builds_before_any_loop_runs_and_spawns_at_its_first_poll() {
    let g = gather((1..=2).map(|i| async move { i }));
    let lp = EventLoop::new().unwrap();
    assert_eq!(lp.stats().tasks, 0);
    assert_eq!(lp.run_until_complete(g).unwrap(), Ok(vec![1, 2]));
}

#[test]
fn fail_fast_ends_with_the_first_error_while_the_other_children_keep_running() {
    let lp = EventLoop::new().unwrap();
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    let spawner = lp.clone();
    // Released by hand, not by a clock: printing the panic (with a backtrace) may take longer
    // than any sleep would.
    let release = lp.create_future::<()>();
    let released = release.clone();
    let (out, slow) = lp
        .run_until_complete(async move {
            let failing = spawner.create_task(fail_after(1, "boom")).unwrap();
            let slow = spawner
                .create_task(async move {
                    let _ = released.await;
                    f.set(true);
                    5u32
                })
                .unwrap();
            let slow_ref = slow.task_ref();
            (gather_tasks([failing, slow]).await, slow_ref)
        })
        .unwrap();
    assert_eq!(out, Err(TaskError::Panicked("boom".into())));
    assert!(!slow.done() && !slow.cancelled(), "the other child runs on");
    release.set_result(()).unwrap();
    lp.run_until_complete(sleep(Duration::from_millis(1)))
        .unwrap();
    assert!(slow.done() && !slow.cancelled());
    assert!(finished.get());
}

#[test]
fn later_errors_of_the_other_children_are_not_reported_as_unretrieved() {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    let spawner = lp.clone();
    let (out, late) = lp
        .run_until_complete(async move {
            let first = spawner.create_task(fail_after(1, "first")).unwrap();
            let late = spawner.create_task(fail_after(10, "late")).unwrap();
            let late_ref = late.task_ref();
            (gather_tasks([first, late]).await, late_ref)
        })
        .unwrap();
    assert_eq!(out.unwrap_err(), TaskError::Panicked("first".into()));
    lp.run_until_complete(sleep(Duration::from_millis(20)))
        .unwrap();
    one_iteration(&lp);
    assert!(late.panicked(), "the other child did fail later");
    assert!(
        !seen
            .borrow()
            .iter()
            .any(|ctx| ctx.kind == ExceptionKind::UnretrievedTaskError),
        "no unretrieved-error report: {:?}",
        seen.borrow()
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn settled_mode_gives_every_outcome_in_argument_order() {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    let spawner = lp.clone();
    let out = lp
        .run_until_complete(async move {
            let ok = spawner.create_task(async { 1u32 }).unwrap();
            let failing = spawner.create_task(fail_after(1, "bad")).unwrap();
            let cancelled = spawner.create_task(sleep(HOUR).then_value(3u32)).unwrap();
            let victim = cancelled.task_ref();
            spawner.call_soon(move || assert!(victim.cancel())).unwrap();
            gather_tasks([ok, failing, cancelled]).settled().await
        })
        .unwrap();
    assert_eq!(
        out,
        vec![
            Ok(1),
            Err(TaskError::Panicked("bad".into())),
            Err(TaskError::Cancelled)
        ]
    );
    one_iteration(&lp);
    assert!(seen.borrow().is_empty(), "every error was retrieved");
}

#[test]
fn a_child_cancelled_by_someone_else_ends_a_fail_fast_gather_with_cancelled() {
    let lp = EventLoop::new().unwrap();
    let spawner = lp.clone();
    let (out, other) = lp
        .run_until_complete(async move {
            let victim = spawner.create_task(sleep(HOUR).then_value(1)).unwrap();
            let other = spawner
                .create_task(sleep(Duration::from_millis(5)).then_value(2))
                .unwrap();
            let (v, o) = (victim.task_ref(), other.task_ref());
            spawner.call_soon(move || assert!(v.cancel())).unwrap();
            (gather_tasks([victim, other]).await, o)
        })
        .unwrap();
    assert_eq!(out, Err(TaskError::Cancelled));
    assert!(
        !other.cancelled(),
        "the gather did not cancel the other child"
    );
}

#[test]
fn cancelling_the_gather_cancels_every_child_not_yet_done() {
    let lp = EventLoop::new().unwrap();
    let spawner = lp.clone();
    let refs: Rc<RefCell<Vec<TaskRef>>> = Rc::default();
    let r = refs.clone();
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let outer = lp
        .create_task(async move {
            let quick = spawner.create_task(async { 1 }).unwrap();
            let slow = spawner.create_task(sleep(HOUR).then_value(2)).unwrap();
            r.borrow_mut().extend([quick.task_ref(), slow.task_ref()]);
            let as_future = async move {
                let _flag = DropFlag(d);
                sleep(HOUR).await;
                3
            };
            let out = spindle_loop::gather!(quick, slow, as_future).await;
            out.map(|(a, b, c)| a + b + c)
        })
        .unwrap();
    for _ in 0..3 {
        one_iteration(&lp);
    }
    let (quick, slow) = (refs.borrow()[0].clone(), refs.borrow()[1].clone());
    assert!(quick.done() && !slow.done());
    assert!(outer.cancel());
    assert_eq!(
        lp.run_until_complete(outer).unwrap(),
        Err(TaskError::Cancelled)
    );
    one_iteration(&lp);
    assert!(slow.cancelled(), "a task child was cancelled");
    assert!(dropped.get(), "a future child's task was cancelled");
    assert!(!quick.cancelled(), "a finished child stays finished");
}

#[test]
fn dropping_a_gather_that_was_never_polled_starts_nothing() {
    let lp = EventLoop::new().unwrap();
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    drop(gather([async move { s.set(true) }]));
    one_iteration(&lp);
    assert!(!started.get());
    assert_eq!(lp.stats().tasks, 0);
}

#[test]
fn an_empty_gather_completes_at_once() {
    let mut cx = Context::from_waker(Waker::noop());
    let empty: Vec<std::future::Ready<u8>> = Vec::new();
    assert_eq!(pin!(gather(empty)).poll(&mut cx), Poll::Ready(Ok(vec![])));
    let no_tasks: Vec<Task<u8>> = Vec::new();
    assert_eq!(
        pin!(gather_tasks(no_tasks).settled()).poll(&mut cx),
        Poll::Ready(vec![])
    );
    assert_eq!(
        pin!(spindle_loop::gather!()).poll(&mut cx),
        Poll::Ready(Ok(()))
    );
}

#[test]
fn the_macro_takes_tasks_and_futures_of_different_types() {
    let lp = EventLoop::new().unwrap();
    let spawner = lp.clone();
    let out = lp
        .run_until_complete(async move {
            let task = spawner.create_task(async { 7u64 }).unwrap();
            let fut = async { "seven".to_string() };
            spindle_loop::gather!(task, fut, std::future::ready('7'),).await
        })
        .unwrap();
    assert_eq!(out, Ok((7, "seven".to_string(), '7')));
}

#[test]
fn the_macro_in_settled_mode_gives_a_tuple_of_results() {
    let lp = EventLoop::new().unwrap();
    let out = lp
        .run_until_complete(spindle_loop::gather!(fail_after(1, "nope"), async { 'x' }).settled())
        .unwrap();
    assert_eq!(out, (Err(TaskError::Panicked("nope".into())), Ok('x')));
}

#[test]
fn gathering_already_finished_tasks_gives_their_results() {
    let lp = EventLoop::new().unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|i| lp.create_task(async move { i * 2 }).unwrap())
        .collect();
    one_iteration(&lp);
    assert!(tasks.iter().all(|t| t.done()));
    assert_eq!(
        lp.run_until_complete(gather_tasks(tasks)).unwrap(),
        Ok(vec![0, 2, 4, 6])
    );
}

#[test]
fn a_large_gather_collects_every_child() {
    let lp = EventLoop::new().unwrap();
    let children = (0..2000u32).map(|i| async move {
        for _ in 0..(i % 3) {
            yield_now().await;
        }
        i
    });
    let out = lp.run_until_complete(gather(children)).unwrap().unwrap();
    assert_eq!(out, (0..2000).collect::<Vec<_>>());
}

#[test]
fn gather_new_takes_a_vec_or_a_tuple_of_tasks_and_spawns() {
    let lp = EventLoop::new().unwrap();
    let t = lp.create_task(async { 1i8 }).unwrap();
    let g = Gather::new((t, Spawn::new(async { [2u8; 2] })));
    assert_eq!(lp.run_until_complete(g).unwrap(), Ok((1, [2, 2])));
}

#[test]
fn gathers_are_send_when_their_children_are() {
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&gather([async { 1 }]));
    assert_send(&gather([async { 1 }]).settled());
    assert_send(&spindle_loop::gather!(async { 1 }, async { "a" }));
    let lp = EventLoop::new().unwrap();
    assert_send(&gather_tasks([lp.create_task(async { 1 }).unwrap()]));
}

#[test]
#[should_panic(expected = "needs a running event loop")]
fn a_gather_of_futures_polled_outside_a_running_loop_panics_with_a_message_saying_so() {
    let mut g = pin!(gather([async { 1 }]));
    let _ = g.as_mut().poll(&mut Context::from_waker(Waker::noop()));
}

/// `fut.then_value(v)`: await `fut`, then produce `v`.
trait ThenValue: Future + Sized {
    fn then_value<T>(self, value: T) -> impl Future<Output = T> {
        async move {
            self.await;
            value
        }
    }
}

impl<F: Future> ThenValue for F {}
