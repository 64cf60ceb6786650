//! Issue 6: the work-stealing Runtime.

use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use spindle_loop::EventLoop;
use spindle_policy::{get_event_loop, get_running_loop, PolicyError, Runtime};

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().worker_threads(workers).build().unwrap()
}

/// A `Send` sleep built from the running loop's `call_later`, as a user would write one: the
/// timer lives on the loop where it is first polled, and wakes the task's waker.
async fn sleep_on_running_loop(d: Duration) {
    let deadline = Instant::now() + d;
    let mut armed = false;
    std::future::poll_fn(move |cx| {
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        if !armed {
            armed = true;
            let waker = cx.waker().clone();
            let lp = EventLoop::running().expect("polled on a worker loop");
            lp.call_at(deadline, move || waker.wake()).unwrap();
        }
        Poll::Pending
    })
    .await
}

#[test]
fn every_spawned_task_runs_exactly_once_under_stealing() {
    const TASKS: usize = 100_000;
    let rt = runtime(2);
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..TASKS).map(|_| AtomicUsize::new(0)).collect());
    let r = runs.clone();
    let total = rt
        .block_on(async move {
            // Spawned from a worker-less thread (injector) and from inside tasks (local queues).
            let mut handles = Vec::with_capacity(TASKS / 100);
            for chunk in 0..TASKS / 1000 {
                let r = r.clone();
                handles.push(
                    spindle_policy::spawn(async move {
                        let inner: Vec<_> = (0..1000)
                            .map(|i| {
                                let r = r.clone();
                                spindle_policy::spawn(async move {
                                    r[chunk * 1000 + i].fetch_add(1, Ordering::Relaxed);
                                })
                                .unwrap()
                            })
                            .collect();
                        for t in inner {
                            t.await.unwrap();
                        }
                    })
                    .unwrap(),
                );
            }
            for h in handles {
                h.await.unwrap();
            }
            r.iter().map(|c| c.load(Ordering::Relaxed)).sum::<usize>()
        })
        .unwrap();
    assert_eq!(total, TASKS);
    assert!(runs.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    let polled: u64 = rt.metrics().iter().map(|m| m.tasks_polled).sum();
    assert!(polled >= TASKS as u64);
}

/// From worker 0: queues 20 stealable tasks on worker 0's own queue (each records the thread
/// it ran on in `done_on`), then blocks worker 0 synchronously until they are all done (at
/// most `bound`). Gives the number done while it was stuck, and worker 0's thread.
fn queue_twenty_then_get_stuck(
    rt: &Runtime,
    done_on: &Arc<Mutex<Vec<ThreadId>>>,
    bound: Duration,
) -> spindle_bridge::ConcurrentFuture<(usize, ThreadId)> {
    let d = done_on.clone();
    rt.spawn_on(0, move || async move {
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let d = d.clone();
                spindle_policy::spawn(async move {
                    d.lock().unwrap().push(thread::current().id());
                })
                .unwrap()
            })
            .collect();
        let started = Instant::now();
        while d.lock().unwrap().len() < 20 && started.elapsed() < bound {
            thread::sleep(Duration::from_millis(1)); // a long synchronous callback
        }
        drop(tasks);
        let done = d.lock().unwrap().len();
        (done, thread::current().id())
    })
    .unwrap()
}

#[test]
fn a_worker_stuck_in_a_long_callback_does_not_hold_back_tasks_queued_behind_it() {
    let rt = runtime(2);
    let done_on = Arc::new(Mutex::new(Vec::new()));
    // Worker 1 is idle: its search must steal them.
    let (done, stuck_thread) = queue_twenty_then_get_stuck(&rt, &done_on, Duration::from_secs(20))
        .result()
        .unwrap();
    assert_eq!(
        done, 20,
        "all queued tasks completed while worker 0 was stuck"
    );
    assert!(done_on.lock().unwrap().iter().all(|t| *t != stuck_thread));
    assert!(rt.metrics()[1].steals >= 1);
}

#[test]
fn a_busy_worker_takes_the_tasks_queued_on_a_stuck_sibling() {
    let rt = runtime(2);
    let sibling_busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let busy = sibling_busy.clone();
    // Worker 1 always has work (a local task that keeps yielding), so it never searches:
    // only the look for a stalled sibling can make it steal.
    let busy_thread = rt
        .spawn_on(1, move || async move {
            let started = Instant::now();
            while busy.load(std::sync::atomic::Ordering::SeqCst)
                && started.elapsed() < Duration::from_secs(30)
            {
                yield_once().await;
            }
            thread::current().id()
        })
        .unwrap();
    let done_on = Arc::new(Mutex::new(Vec::new()));
    let (done_while_stuck, _) = queue_twenty_then_get_stuck(&rt, &done_on, Duration::from_secs(10))
        .result()
        .unwrap();
    sibling_busy.store(false, std::sync::atomic::Ordering::SeqCst);
    let busy_thread = busy_thread.result().unwrap();
    assert_eq!(
        done_while_stuck, 20,
        "the queued tasks waited for their stuck worker"
    );
    assert!(done_on.lock().unwrap().iter().all(|t| *t == busy_thread));
}

#[test]
fn spawn_local_tasks_always_run_on_their_worker() {
    let rt = runtime(2);
    for worker in 0..2 {
        let (spawned_on, ran_on) = rt
            .spawn_on(worker, || async {
                let here = thread::current().id();
                let seen: Rc<Cell<Option<ThreadId>>> = Rc::new(Cell::new(None));
                let mut tasks = Vec::new();
                for _ in 0..50 {
                    let seen = seen.clone();
                    tasks.push(
                        spindle_policy::spawn_local(async move {
                            for _ in 0..3 {
                                sleep_on_running_loop(Duration::from_millis(1)).await;
                                let now = thread::current().id();
                                if seen.get().is_some_and(|t| t != now) {
                                    panic!("moved");
                                }
                                seen.set(Some(now));
                            }
                        })
                        .unwrap(),
                    );
                }
                for t in tasks {
                    t.await.unwrap();
                }
                (here, seen.get().unwrap())
            })
            .unwrap()
            .result()
            .unwrap();
        assert_eq!(spawned_on, ran_on);
    }
}

#[test]
fn a_sleeping_stolen_task_wakes_on_time() {
    let rt = runtime(2);
    let out = rt
        .block_on(async {
            let tasks: Vec<_> = (0..40)
                .map(|_| {
                    spindle_policy::spawn(async {
                        let first = thread::current().id();
                        let start = Instant::now();
                        sleep_on_running_loop(Duration::from_millis(20)).await;
                        (first, start.elapsed())
                    })
                    .unwrap()
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        })
        .unwrap();
    for (_, slept) in &out {
        assert!(*slept >= Duration::from_millis(20));
        assert!(*slept < Duration::from_secs(10), "woken, not stranded");
    }
}

#[test]
fn inside_a_worker_the_running_loop_and_event_loop_are_the_workers_loop() {
    let rt = runtime(2);
    let loop_ids: HashSet<u64> = rt.loops().iter().map(|l| l.loop_id()).collect();
    let (running, current, via_call_later) = rt
        .spawn_on(1, || async {
            let lp = get_running_loop().unwrap();
            let fut = lp.create_future::<u64>();
            let f = fut.clone();
            let id = lp.id();
            lp.call_later(Duration::from_millis(1), move || f.set_result(id).unwrap())
                .unwrap();
            let by_timer = fut.await.unwrap();
            (lp.id(), get_event_loop().unwrap().id(), by_timer)
        })
        .unwrap()
        .result()
        .unwrap();
    assert!(loop_ids.contains(&running));
    assert_eq!(running, current);
    assert_eq!(running, via_call_later);
    assert_eq!(running, rt.loops()[1].loop_id());
}

#[test]
fn shutdown_with_ten_thousand_pending_tasks_drops_each_exactly_once_on_its_own_thread() {
    struct CountDrop {
        drops: Arc<AtomicUsize>,
        must_drop_on: Option<ThreadId>,
        wrong_thread: Arc<AtomicUsize>,
    }
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
            if self
                .must_drop_on
                .is_some_and(|t| t != thread::current().id())
            {
                self.wrong_thread.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let rt = runtime(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(AtomicUsize::new(0));
    // 9,000 stealable tasks pending forever.
    for _ in 0..9_000 {
        let guard = CountDrop {
            drops: drops.clone(),
            must_drop_on: None,
            wrong_thread: wrong.clone(),
        };
        rt.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        })
        .unwrap();
    }
    // 1,000 !Send local tasks, 500 on each worker, pending forever.
    for worker in 0..2 {
        let (d, w) = (drops.clone(), wrong.clone());
        rt.spawn_on(worker, move || async move {
            for _ in 0..500 {
                let guard = CountDrop {
                    drops: d.clone(),
                    must_drop_on: Some(thread::current().id()),
                    wrong_thread: w.clone(),
                };
                let not_send = Rc::new(());
                spindle_policy::spawn_local(async move {
                    let _guard = guard;
                    let _rc = not_send;
                    std::future::pending::<()>().await
                })
                .unwrap();
            }
        })
        .unwrap()
        .result()
        .unwrap();
    }
    rt.shutdown();
    assert_eq!(drops.load(Ordering::SeqCst), 10_000);
    assert_eq!(wrong.load(Ordering::SeqCst), 0);
}

#[test]
fn spawning_after_shutdown_is_a_typed_error_and_the_future_comes_back() {
    let rt = runtime(1);
    let handle = rt.handle().clone();
    rt.shutdown();
    let err = handle.spawn(async { 9 }).unwrap_err();
    assert_eq!(err.reason(), &PolicyError::ShutDown);
    assert_eq!(spindle_policy::run(err.into_inner()).unwrap(), 9);
    let err = handle.spawn_on(0, || async {}).unwrap_err();
    assert_eq!(err.reason(), &PolicyError::ShutDown);
}

#[test]
fn panics_in_tasks_do_not_take_a_worker_down() {
    let rt = runtime(2);
    let out = rt
        .block_on(async {
            let panics: Vec<_> = (0..20)
                .map(|i| spindle_policy::spawn(async move { panic!("task {i} failed") }).unwrap())
                .collect();
            let mut failed = 0;
            for p in panics {
                failed += usize::from(p.await.unwrap_err().is_panic());
            }
            let after = spindle_policy::spawn(async { "still working" }).unwrap();
            (failed, after.await.unwrap())
        })
        .unwrap();
    assert_eq!(out, (20, "still working"));
    for worker in 0..2 {
        let alive = rt.spawn_on(worker, || async { 1 }).unwrap().result();
        assert_eq!(alive.unwrap(), 1);
    }
}

#[test]
fn bad_settings_are_typed_errors() {
    assert_eq!(
        Runtime::builder().worker_threads(0).build().unwrap_err(),
        PolicyError::NoWorkers
    );
    let rt = runtime(1);
    let err = rt.spawn_on(5, || async {}).unwrap_err();
    assert_eq!(
        err.reason(),
        &PolicyError::NoSuchWorker {
            index: 5,
            workers: 1
        }
    );
    assert!(err.reason().to_string().contains("no worker 5"));
}

#[test]
fn a_worker_that_fails_to_start_stops_the_ones_already_running() {
    // Worker 1 dies in its start hook; worker 0 is up and running its loop by then (or soon).
    // `build()` must stop worker 0 and report the failure, not wait on it forever.
    let stopped = Arc::new(AtomicUsize::new(0));
    let t = stopped.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let built = Runtime::builder()
            .worker_threads(2)
            .thread_name("fails")
            .on_thread_start(|| {
                if thread::current().name() == Some("fails-1") {
                    panic!("worker 1 refuses to start");
                }
            })
            .on_thread_stop(move || {
                t.fetch_add(1, Ordering::SeqCst);
            })
            .build();
        let _ = done_tx.send(built.map(drop));
    });
    let built = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("build() hung after a worker failed to start");
    let err = built.unwrap_err();
    assert!(
        err.to_string().contains("exited while starting"),
        "unexpected error: {err}"
    );
    // Worker 0 ran its stop hook: it was stopped and joined, not left running.
    assert_eq!(stopped.load(Ordering::SeqCst), 1);
}

#[test]
fn worker_threads_are_named_and_run_the_start_and_stop_hooks() {
    let started = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let (s, t) = (started.clone(), stopped.clone());
    let rt = Runtime::builder()
        .worker_threads(2)
        .thread_name("io")
        .on_thread_start(move || {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move || {
            t.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let name = rt
        .spawn_on(1, || async {
            thread::current().name().unwrap().to_string()
        })
        .unwrap()
        .result()
        .unwrap();
    assert_eq!(name, "io-1");
    assert_eq!(started.load(Ordering::SeqCst), 2);
    assert!(rt.shutdown_timeout(Duration::from_secs(30)));
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
}

#[test]
fn spawn_outside_a_runtime_gives_the_future_back() {
    let err = spindle_policy::spawn(async { 1 }).unwrap_err();
    assert_eq!(err.reason(), &PolicyError::NoRuntime);
}

#[test]
fn metrics_count_polls_parks_and_callbacks_per_worker() {
    let rt = runtime(2);
    rt.spawn_on(0, || async {
        let lp = get_running_loop().unwrap();
        for _ in 0..10 {
            lp.call_soon(|| ()).unwrap();
        }
    })
    .unwrap()
    .result()
    .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..1000)
            .map(|_| spindle_policy::spawn(async {}).unwrap())
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    })
    .unwrap();
    thread::sleep(Duration::from_millis(50)); // let the workers go idle
    let metrics = rt.metrics();
    assert_eq!(metrics.iter().map(|m| m.tasks_polled).sum::<u64>(), 1000);
    assert!(metrics.iter().map(|m| m.times_parked).sum::<u64>() >= 1);
    // The 10 call_soon callbacks, plus the threadsafe one that started the task.
    assert!(metrics[0].callbacks_run >= 11, "{:?}", metrics[0]);
}

/// Wakes its own task and returns `Pending` once: a bare yield, independent of any combinator.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

#[test]
fn a_yielding_task_goes_behind_the_tasks_already_queued() {
    // One worker, so the order is the worker's queue order. A task that wakes itself must not
    // take the slot that makes a just-woken task run next: it yielded to the others.
    let rt = runtime(1);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l, m) = (log.clone(), log.clone());
    let started = rt
        .spawn(async move {
            // Spawned first, so the yielder (spawned last) takes the slot and runs first.
            let other = spindle_policy::spawn(async move {
                m.lock().unwrap().push("b".to_string());
            })
            .unwrap();
            let yielder = spindle_policy::spawn(async move {
                for i in 0..3 {
                    l.lock().unwrap().push(format!("a{i}"));
                    yield_once().await;
                }
            })
            .unwrap();
            (yielder, other)
        })
        .unwrap();
    let (yielder, other) = rt.block_on(started).unwrap().unwrap();
    rt.block_on(async move {
        yielder.await.unwrap();
        other.await.unwrap();
    })
    .unwrap();
    assert_eq!(*log.lock().unwrap(), ["a0", "b", "a1", "a2"]);
}

/// Issue 13.1: `cancel()` from another thread while the outer task may run on either worker.
/// The awaited task must be cancelled in every round, whoever runs the outer task's cancelled
/// step first. Bounded: 200 rounds, each waiting at most 10 s for the inner task's drop.
#[test]
fn cancelling_a_stealable_task_from_another_thread_always_cancels_the_task_it_awaits() {
    const ROUNDS: usize = 200;
    let rt = runtime(2);
    for round in 0..ROUNDS {
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
        let (awaiting_tx, awaiting_rx) = std::sync::mpsc::channel::<()>();
        struct OnDrop(std::sync::mpsc::Sender<()>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let outer = rt
            .spawn(async move {
                let inner = spindle_policy::spawn(async move {
                    let _guard = OnDrop(dropped_tx);
                    std::future::pending::<()>().await
                })
                .unwrap();
                // Yield once so the inner task has a chance to start elsewhere, then await it.
                let mut told = false;
                let mut inner = inner;
                std::future::poll_fn(move |cx| {
                    let polled = std::pin::Pin::new(&mut inner).poll(cx);
                    if !told {
                        told = true;
                        let _ = awaiting_tx.send(());
                    }
                    polled
                })
                .await
            })
            .unwrap();
        awaiting_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the outer task awaits");
        assert!(outer.cancel());
        // Dropped before its first step (a closed channel) or after (a message): both are a
        // cancelled task; only a timeout means it was left running.
        assert_ne!(
            dropped_rx.recv_timeout(Duration::from_secs(10)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout),
            "round {round}: the awaited task was left running"
        );
    }
    rt.shutdown();
}

/// A 2-worker runtime whose `on_thread_stop` hook reports on `stopped`.
fn runtime_reporting_stops(stopped: std::sync::mpsc::Sender<()>) -> Runtime {
    let stopped = std::sync::Mutex::new(stopped);
    Runtime::builder()
        .worker_threads(2)
        .on_thread_stop(move || {
            let _ = stopped.lock().unwrap().send(());
        })
        .build()
        .unwrap()
}

/// Issue 13.11: the runtime, moved into one of its own tasks, is ended there by `end`; the
/// task reports what `end` returned, and both workers must stop.
fn end_a_runtime_inside_its_own_task<R: Send + 'static>(
    end: impl FnOnce(Runtime) -> R + Send + 'static,
) -> R {
    let (stopped_tx, stopped_rx) = std::sync::mpsc::channel();
    let rt = runtime_reporting_stops(stopped_tx);
    let handle = rt.handle().clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let _task = handle
        .spawn(async move {
            let _ = done_tx.send(end(rt));
        })
        .unwrap();
    let out = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ending the runtime from its own task returned (no panic, no full wait)");
    for _ in 0..2 {
        stopped_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("every worker stopped");
    }
    out
}

#[test]
fn dropping_a_runtime_inside_its_own_task_stops_every_worker_without_panicking() {
    end_a_runtime_inside_its_own_task(drop);
}

#[test]
fn shutdown_timeout_inside_a_runtime_s_own_task_returns_once_the_other_workers_are_done() {
    // An hour: waiting for the caller's own worker would fail the 30 s bound above.
    let finished =
        end_a_runtime_inside_its_own_task(|rt| rt.shutdown_timeout(Duration::from_secs(3600)));
    assert!(finished);
}

/// Issue 13.12: the depth is read from the queue when the metrics are taken, not remembered
/// from the worker's last batch.
#[test]
fn local_queue_depth_is_current_when_read() {
    let rt = runtime(1);
    let (queued_tx, queued_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let spawner = rt
        .spawn(async move {
            let tasks: Vec<_> = (0..10)
                .map(|_| spindle_policy::spawn(async {}).unwrap())
                .collect();
            // Hold the only worker while the test reads its queue.
            queued_tx.send(()).unwrap();
            go_rx.recv_timeout(Duration::from_secs(30)).unwrap();
            for task in tasks {
                task.await.unwrap();
            }
        })
        .unwrap();
    queued_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    // Ten spawned on the worker: nine in its queue, the last one maybe in its LIFO slot.
    let depth = rt.metrics()[0].local_queue_depth;
    assert!(depth >= 9, "depth while ten tasks wait: {depth}");
    go_tx.send(()).unwrap();
    rt.block_on(spawner).unwrap().unwrap();
    assert_eq!(rt.metrics()[0].local_queue_depth, 0);
    rt.shutdown();
}
