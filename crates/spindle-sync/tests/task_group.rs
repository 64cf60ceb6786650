//! asyncio's `TaskGroup` rules, one test each.

mod common;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{local, run, runtime, settle};
use spindle_loop::TaskError;
use spindle_sync::{TaskGroup, TaskGroupRefusal};

/// Counts its drops: a child's `Drop` observed.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A child that waits forever holding a [`DropCounter`] of `dropped`: it ends only cancelled.
fn pending_child(dropped: &Arc<AtomicUsize>) -> impl std::future::Future<Output = ()> + Send {
    let guard = DropCounter(dropped.clone());
    async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    }
}

#[test]
fn task_group_is_send_and_sync() {
    common::assert_send_sync::<TaskGroup>();
}

#[test]
fn run_waits_for_every_child_even_those_the_body_did_not_await() {
    let finished = Arc::new(AtomicUsize::new(0));
    let f = finished.clone();
    let out = run(TaskGroup::run(move |tg| async move {
        for i in 0..5 {
            let f = f.clone();
            tg.create_task(async move {
                settle(i).await;
                f.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        "body done"
    }));
    assert_eq!(out.unwrap(), "body done");
    assert_eq!(finished.load(Ordering::SeqCst), 5);
}

#[test]
fn a_failing_child_cancels_its_siblings_and_the_body_and_their_drops_run_before_run_returns() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let body_went_on = Arc::new(AtomicUsize::new(0));
    let (d, b) = (dropped.clone(), body_went_on.clone());
    let err = run(TaskGroup::run(move |tg| async move {
        for _ in 0..3 {
            tg.create_task(pending_child(&d)).unwrap();
        }
        tg.create_task(async {
            settle(2).await;
            panic!("child failed");
        })
        .unwrap();
        let _body_guard = DropCounter(d.clone());
        settle(10).await;
        b.fetch_add(1, Ordering::SeqCst);
    }))
    .unwrap_err();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        4,
        "three siblings and the body were dropped"
    );
    assert_eq!(
        body_went_on.load(Ordering::SeqCst),
        0,
        "the body was cancelled"
    );
    assert_eq!(err.failures().len(), 1);
    assert!(matches!(err.failures()[0].error(), TaskError::Panicked(m) if &**m == "child failed"));
}

#[test]
fn an_err_output_of_a_try_task_fails_the_group() {
    let err = run(TaskGroup::run(|tg| async move {
        tg.create_try_task(async { Ok::<_, std::io::Error>(1) })
            .unwrap();
        tg.create_try_task(async { Err::<(), _>(std::io::Error::other("disk full")) })
            .unwrap();
    }))
    .unwrap_err();
    assert_eq!(err.failures().len(), 1);
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(matches!(err.failures()[0].error(), TaskError::Exception(_)));
}

/// Blocks its thread until `parties` threads arrived (or 10 s passed: then the test fails on
/// its assertions instead of hanging).
fn rendezvous(state: &(Mutex<usize>, Condvar), parties: usize) {
    let (count, cv) = state;
    let mut n = count.lock().unwrap();
    *n += 1;
    cv.notify_all();
    let deadline = Instant::now() + Duration::from_secs(10);
    while *n < parties && Instant::now() < deadline {
        n = cv.wait_timeout(n, Duration::from_millis(50)).unwrap().0;
    }
}

#[test]
fn failures_of_children_running_at_the_same_time_are_all_listed() {
    let rt = runtime();
    let meet = Arc::new((Mutex::new(0usize), Condvar::new()));
    let out = rt
        .block_on(TaskGroup::run(move |tg| async move {
            for name in ["first error", "second error"] {
                let meet = meet.clone();
                tg.try_spawn(async move {
                    // Both children are mid-step, on the two workers, when they fail:
                    // neither can be cancelled before it fails.
                    rendezvous(&meet, 2);
                    Err::<(), _>(name)
                })
                .unwrap();
            }
        }))
        .unwrap();
    rt.shutdown();
    let err = out.unwrap_err();
    let text = err.to_string();
    assert_eq!(err.failures().len(), 2, "{text}");
    assert!(
        text.contains("first error") && text.contains("second error"),
        "{text}"
    );
}

#[test]
fn an_err_output_of_a_plain_task_is_just_its_value() {
    let out = run(TaskGroup::run(|tg| async move {
        tg.create_task(async { Err::<(), _>("a value, not a failure") })
            .unwrap()
            .await
    }));
    assert_eq!(out.unwrap(), Ok(Err("a value, not a failure")));
}

#[test]
fn a_child_handle_yields_the_failure_as_a_task_error() {
    let err = run(TaskGroup::run(|tg| async move {
        let child = tg
            .create_try_task(async { Err::<u8, _>("bad input") })
            .unwrap();
        let seen = child.await;
        assert!(matches!(seen, Err(TaskError::Exception(ref e)) if e.to_string() == "bad input"));
        std::future::pending::<()>().await; // cancelled by the failure
    }))
    .unwrap_err();
    assert_eq!(err.failures().len(), 1);
}

#[test]
fn a_cancelled_child_is_not_a_failure() {
    let out = run(TaskGroup::run(|tg| async move {
        let child = tg.create_task(std::future::pending::<()>()).unwrap();
        child.cancel();
        child.await
    }));
    assert_eq!(out.unwrap(), Err(TaskError::Cancelled));
}

#[test]
fn cancelling_the_task_running_the_group_cancels_the_children() {
    run(async {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let parent = local(TaskGroup::run(move |tg| async move {
            for _ in 0..3 {
                tg.create_task(pending_child(&d)).unwrap();
            }
            std::future::pending::<()>().await;
        }));
        settle(3).await;
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        parent.cancel();
        assert_eq!(parent.await.map(|_| ()), Err(TaskError::Cancelled));
        settle(3).await; // the children's futures drop at their next step
        assert_eq!(dropped.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn a_panicking_body_cancels_the_children_and_the_panic_reaches_the_task_running_the_group() {
    run(async {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let parent = local(TaskGroup::run(move |tg| async move {
            for _ in 0..2 {
                tg.create_task(pending_child(&d)).unwrap();
            }
            settle(2).await;
            panic!("body failed");
        }));
        assert!(matches!(parent.await, Err(TaskError::Panicked(m)) if &*m == "body failed"));
        settle(3).await; // the children's futures drop at their next step
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn no_child_can_be_created_once_the_group_finished_or_while_it_shuts_down() {
    run(async {
        let escaped = TaskGroup::run(|tg| async move { tg }).await.unwrap();
        let refused = escaped.create_task(async { 1 }).unwrap_err();
        assert_eq!(refused.reason(), &TaskGroupRefusal::Finished);
        assert_eq!(
            futures_lite::future::block_on(refused.into_inner()),
            1,
            "future given back"
        );

        // A sibling being cancelled tries to start a child from its Drop.
        struct StartsAChildOnDrop(TaskGroup, Arc<Mutex<Option<TaskGroupRefusal>>>);
        impl Drop for StartsAChildOnDrop {
            fn drop(&mut self) {
                let refused = self.0.create_task(async {}).map(|_| ()).unwrap_err();
                *self.1.lock().unwrap() = Some(refused.reason().clone());
            }
        }
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        let err = TaskGroup::run(move |tg| async move {
            let guard = StartsAChildOnDrop(tg.clone(), s);
            tg.create_task(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            })
            .unwrap();
            tg.create_task(async { panic!("first") }).unwrap();
            std::future::pending::<()>().await;
        })
        .await
        .unwrap_err();
        assert_eq!(err.failures().len(), 1);
        assert_eq!(*seen.lock().unwrap(), Some(TaskGroupRefusal::ShuttingDown));
    });
}

#[test]
fn children_may_start_children_and_the_group_waits_for_all_of_them() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    run(TaskGroup::run(move |tg| async move {
        let tg2 = tg.clone();
        tg.create_task(async move {
            for _ in 0..3 {
                let c = c.clone();
                tg2.create_task(async move {
                    settle(2).await;
                    c.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
        })
        .unwrap();
    }))
    .unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[test]
fn local_children_may_hold_non_send_state() {
    let out = run(TaskGroup::run(|tg| async move {
        let shared = Rc::new(std::cell::Cell::new(0));
        for _ in 0..3 {
            let s = shared.clone();
            tg.create_task(async move { s.set(s.get() + 1) }).unwrap();
        }
        settle(2).await;
        shared.get()
    }));
    assert_eq!(out.unwrap(), 3);
}

#[test]
fn on_a_runtime_spawned_children_fail_fast_and_siblings_are_cancelled_across_workers() {
    let rt = runtime();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let out = rt
        .block_on(TaskGroup::run(move |tg| async move {
            for _ in 0..6 {
                tg.spawn(pending_child(&d)).unwrap();
            }
            tg.try_spawn(async {
                spindle_loop::yield_now().await;
                Err::<(), _>("worker failed")
            })
            .unwrap();
            std::future::pending::<()>().await;
        }))
        .unwrap();
    rt.shutdown();
    let err = out.unwrap_err();
    assert!(err.to_string().contains("worker failed"));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        6,
        "every sibling's Drop ran before run returned"
    );
}

#[test]
fn spawn_outside_a_runtime_is_refused_with_the_future_back() {
    run(TaskGroup::run(|tg| async move {
        let refused = tg.spawn(async { 5 }).unwrap_err();
        assert!(matches!(refused.reason(), TaskGroupRefusal::Runtime(_)));
        assert!(refused.to_string().contains("runtime"));
    }))
    .unwrap();
}
