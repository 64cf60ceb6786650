//! Issue 5's main rules again inside a work-stealing runtime with 2 workers: the combinators
//! run in `Send` (stealable) tasks, whose steps may move between the workers' loops.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spindle::{
    current_task, gather, gather_tasks, shield, sleep, spawn, timeout, wait, wait_for, yield_now,
    ReturnWhen, Runtime, Task, TaskError, TaskRef,
};

const HOUR: Duration = Duration::from_secs(3600);

fn runtime() -> Runtime {
    Runtime::builder().worker_threads(2).build().unwrap()
}

/// Runs `body` as a stealable task on `rt` and waits for its value.
fn on_runtime<F>(rt: &Runtime, body: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = rt.spawn(body).unwrap();
    rt.block_on(task).unwrap().unwrap()
}

/// Sleeps in 1 ms steps until `task` is done; gives up (and lets the caller's assertion fail)
/// after 10 s, so a broken runtime fails the test instead of hanging it.
async fn until_done(task: &TaskRef) {
    for _ in 0..10_000 {
        if task.done() {
            return;
        }
        sleep(Duration::from_millis(1)).await;
    }
}

fn spawn_task<F>(future: F) -> Task<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match spawn(future) {
        Ok(task) => task,
        Err(e) => panic!("spawn: {e}"),
    }
}

#[test]
fn sleeps_in_stealable_tasks_last_at_least_their_duration_on_any_worker() {
    let rt = runtime();
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let t = threads.clone();
    let elapsed = on_runtime(&rt, async move {
        let start = Instant::now();
        let sleepers: Vec<_> = (0..20)
            .map(|_| {
                let t = t.clone();
                spawn_task(async move {
                    let start = Instant::now();
                    for _ in 0..3 {
                        t.lock().unwrap().insert(std::thread::current().id());
                        sleep(Duration::from_millis(5)).await;
                        yield_now().await;
                    }
                    start.elapsed()
                })
            })
            .collect();
        let each = gather_tasks(sleepers).await.unwrap();
        (start.elapsed(), each)
    });
    assert!(elapsed.0 >= Duration::from_millis(15));
    assert!(elapsed.1.iter().all(|e| *e >= Duration::from_millis(15)));
    assert!(!threads.lock().unwrap().is_empty());
}

#[test]
fn gather_in_a_stealable_task_keeps_argument_order_and_fails_fast() {
    let rt = runtime();
    let (ordered, failed, survivor_done) = on_runtime(&rt, async {
        let ordered = gather([30u64, 10, 20].map(|ms| async move {
            sleep(Duration::from_millis(ms)).await;
            ms
        }))
        .await;
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let failing = spawn_task(async {
            sleep(Duration::from_millis(1)).await;
            panic!("boom on a worker")
        });
        let survivor = spawn_task(async move {
            sleep(Duration::from_millis(20)).await;
            d.store(true, Ordering::SeqCst);
        });
        let watched = survivor.task_ref();
        let failed = gather_tasks([failing, survivor]).await;
        assert!(!watched.cancelled());
        until_done(&watched).await;
        (ordered, failed, done.load(Ordering::SeqCst))
    });
    assert_eq!(ordered, Ok(vec![30, 10, 20]));
    assert_eq!(failed, Err(TaskError::Panicked("boom on a worker".into())));
    assert!(survivor_done, "the other child kept running");
}

#[test]
fn cancelling_a_gathering_stealable_task_cancels_its_children() {
    let rt = runtime();
    let child = Arc::new(Mutex::new(None));
    let c = child.clone();
    let outer = rt
        .spawn(async move {
            let long = spawn_task(sleep(HOUR));
            *c.lock().unwrap() = Some(long.task_ref());
            gather_tasks([long]).await
        })
        .unwrap();
    let child = loop {
        if let Some(child) = child.lock().unwrap().clone() {
            break child;
        }
        std::thread::yield_now();
    };
    assert!(outer.cancel());
    assert_eq!(rt.block_on(outer).unwrap(), Err(TaskError::Cancelled));
    let watched = child.clone();
    rt.block_on(async move { until_done(&watched).await })
        .unwrap();
    assert!(child.cancelled());
}

#[test]
fn wait_for_in_a_stealable_task_cancels_the_work_and_times_out() {
    let rt = runtime();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let (out, took) = on_runtime(&rt, async move {
        let start = Instant::now();
        let out = wait_for(
            async move {
                sleep(HOUR).await;
                f.store(true, Ordering::SeqCst);
            },
            Duration::from_millis(20),
        )
        .await;
        (out, start.elapsed())
    });
    assert_eq!(out, Err(TaskError::Timeout));
    assert!(took >= Duration::from_millis(20));
    assert!(!finished.load(Ordering::SeqCst));
}

#[test]
fn timeout_in_a_stealable_task_is_a_plain_deadline() {
    let rt = runtime();
    let (late, early) = on_runtime(&rt, async {
        let late = timeout(Duration::from_millis(5), sleep(HOUR)).await;
        let early = timeout(HOUR, async { 3 }).await;
        (late, early)
    });
    assert_eq!(late, Err(TaskError::Timeout));
    assert_eq!(early, Ok(3));
}

#[test]
fn wait_first_completed_on_stealable_tasks_returns_done_and_pending() {
    let rt = runtime();
    let (done, pending) = on_runtime(&rt, async {
        let tasks = [1u64, 3_600_000].map(|ms| {
            spawn_task(async move {
                sleep(Duration::from_millis(ms)).await;
                ms
            })
        });
        let (done, pending) = wait(tasks, None, ReturnWhen::FirstCompleted).await.unwrap();
        let out = (done.len(), pending.len());
        for t in &pending {
            assert!(!t.cancelled());
            t.cancel();
        }
        out
    });
    assert_eq!((done, pending), (1, 1));
}

#[test]
fn a_shielded_stealable_task_survives_a_wait_for_timeout() {
    let rt = runtime();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let (out, cancelled) = on_runtime(&rt, async move {
        let task = spawn_task(async move {
            sleep(Duration::from_millis(20)).await;
            f.store(true, Ordering::SeqCst);
        });
        let watched = task.task_ref();
        let out = wait_for(shield(task), Duration::from_millis(2)).await;
        until_done(&watched).await;
        (out, watched.cancelled())
    });
    assert_eq!(out, Err(TaskError::Timeout));
    assert!(!cancelled);
    assert!(finished.load(Ordering::SeqCst), "it ran to completion");
}

#[test]
fn current_task_stays_correct_in_interleaving_stealable_tasks() {
    let rt = runtime();
    let mismatches = on_runtime(&rt, async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                spawn_task(async {
                    let me = current_task().unwrap().id();
                    let mut wrong = 0;
                    for _ in 0..50 {
                        yield_now().await;
                        if current_task().map(|t| t.id()) != Some(me) {
                            wrong += 1;
                        }
                    }
                    wrong
                })
            })
            .collect();
        gather_tasks(tasks).await.unwrap().into_iter().sum::<u32>()
    });
    assert_eq!(mismatches, 0);
}
