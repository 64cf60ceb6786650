//! Blocking work: to_thread, run_in_executor and BlockingPool (bounds, panics, cancellation,
//! shutdown, and the loop's pool closing with the loop).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{wait, HANG};
use spindle_bridge::{to_thread, BlockingPool, BridgeError, EventLoopExt};
use spindle_loop::EventLoop;

/// A job that signals once it runs, then blocks until released, then returns `value`; with the
/// receiver of its "started" signal and the sender that releases it.
fn blocking_job<T: Send + 'static>(
    value: T,
) -> (
    impl FnOnce() -> T + Send + 'static,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let job = move || {
        started_tx.send(()).unwrap();
        release_rx.recv_timeout(HANG).unwrap();
        value
    };
    (job, started_rx, release_tx)
}

#[test]
fn to_thread_runs_the_function_on_another_thread_and_returns_its_value() {
    let lp = EventLoop::new().unwrap();
    let out = lp
        .run_until_complete(async {
            let here = thread::current().id();
            let there = to_thread(|| {
                (
                    thread::current().id(),
                    thread::current().name().map(String::from),
                )
            })
            .unwrap()
            .await
            .unwrap();
            (here, there)
        })
        .unwrap();
    assert_ne!(out.0, out.1 .0);
    assert!(out.1 .1.unwrap().starts_with("spindle-blocking-"));
    lp.close().unwrap();
}

#[test]
fn to_thread_without_a_running_loop_gives_the_function_back() {
    let err = to_thread(|| 5).unwrap_err();
    assert_eq!(err.reason(), &BridgeError::NoRunningLoop);
    assert!(err
        .to_string()
        .contains("no event loop is running on this thread"));
    assert!(err.to_string().contains("BlockingPool::spawn"));
    assert_eq!((err.into_inner())(), 5);
}

#[test]
fn a_panic_in_blocking_work_comes_back_as_panicked() {
    let lp = EventLoop::new().unwrap();
    let out = lp
        .run_until_complete(async {
            to_thread(|| -> u8 { panic!("blocking call failed") })
                .unwrap()
                .await
        })
        .unwrap();
    assert_eq!(
        out,
        Err(BridgeError::Panicked("blocking call failed".into()))
    );
    lp.close().unwrap();
}

#[test]
fn run_in_executor_results_can_be_awaited_or_blocked_on() {
    let lp = EventLoop::new().unwrap();
    let awaited = lp.run_in_executor(|| 1 + 1).unwrap();
    assert_eq!(lp.run_until_complete(awaited).unwrap(), Ok(2));
    let blocked = lp.run_in_executor(|| 3 * 3).unwrap();
    assert_eq!(wait(&blocked), Ok(9));
    lp.close().unwrap();
}

#[test]
fn the_pool_runs_at_most_max_threads_jobs_at_once() {
    let pool = BlockingPool::new(2);
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
    let jobs: Vec<_> = (0..6)
        .map(|i| {
            let (running, peak, started, release) = (
                running.clone(),
                peak.clone(),
                started_tx.clone(),
                release_rx.clone(),
            );
            pool.spawn(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                started.send(i).unwrap();
                release.lock().unwrap().recv_timeout(HANG).unwrap();
                running.fetch_sub(1, Ordering::SeqCst);
                i
            })
            .unwrap()
        })
        .collect();
    // Two run at once (the pool does use its threads) ...
    started_rx.recv_timeout(HANG).unwrap();
    started_rx.recv_timeout(HANG).unwrap();
    // ... and no third one can start while both are busy.
    assert_eq!(pool.threads(), 2);
    assert!(started_rx.try_recv().is_err());
    for _ in 0..6 {
        release_tx.send(()).unwrap();
    }
    let results: Vec<_> = jobs.iter().map(|j| wait(j).unwrap()).collect();
    assert_eq!(results, [0, 1, 2, 3, 4, 5]);
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

#[test]
fn idle_threads_are_reused() {
    let pool = BlockingPool::new(4);
    for i in 0..20 {
        assert_eq!(wait(&pool.spawn(move || i).unwrap()), Ok(i));
    }
    assert_eq!(pool.threads(), 1, "sequential jobs need one thread");
}

#[test]
fn a_queued_job_can_be_cancelled_and_a_running_one_cannot() {
    let pool = BlockingPool::new(1);
    let (job, started_rx, release_tx) = blocking_job("finished");
    let running = pool.spawn(job).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let queued = pool.spawn(move || r.store(true, Ordering::SeqCst)).unwrap();
    started_rx.recv_timeout(HANG).unwrap();
    assert!(!running.cancel(), "a started job runs to the end");
    assert!(queued.cancel());
    release_tx.send(()).unwrap();
    assert_eq!(wait(&running), Ok("finished"));
    assert_eq!(wait(&queued), Err(BridgeError::Cancelled));
    // Run one more job to be sure the cancelled one was passed over, not delayed.
    assert_eq!(wait(&pool.spawn(|| ()).unwrap()), Ok(()));
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn shutdown_refuses_new_work_resolves_queued_jobs_and_lets_threads_exit() {
    let pool = BlockingPool::new(1);
    let (job, started_rx, release_tx) = blocking_job(1);
    let running = pool.spawn(job).unwrap();
    let queued = pool.spawn(|| 2).unwrap();
    started_rx.recv_timeout(HANG).unwrap();
    pool.shutdown();
    assert!(pool.is_shut_down());
    let err = wait(&queued).unwrap_err();
    assert_eq!(err, BridgeError::PoolShutDown);
    assert!(
        err.to_string().contains("create a new BlockingPool"),
        "{err}"
    );
    let refused = pool.spawn(|| 3).unwrap_err();
    assert_eq!(refused.reason(), &BridgeError::PoolShutDown);
    assert_eq!((refused.into_inner())(), 3);
    release_tx.send(()).unwrap();
    assert_eq!(wait(&running), Ok(1), "a running job finishes");
    let deadline = Instant::now() + HANG;
    while pool.threads() > 0 {
        assert!(Instant::now() < deadline, "pool threads did not exit");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn closing_the_loop_shuts_its_pool_down() {
    let lp = EventLoop::new().unwrap();
    let size = BlockingPool::default_size();
    // Fill every thread of the loop's pool, and queue one more.
    let mut releases = Vec::new();
    let busy: Vec<_> = (0..size)
        .map(|_| {
            let (job, started, release) = blocking_job("done");
            let fut = lp.run_in_executor(job).unwrap();
            releases.push((started, release));
            fut
        })
        .collect();
    for (started, _) in &releases {
        started.recv_timeout(HANG).unwrap();
    }
    let queued = lp.run_in_executor(|| "never").unwrap();
    lp.close().unwrap();
    assert_eq!(wait(&queued), Err(BridgeError::Closed));
    let refused = lp.run_in_executor(|| ()).unwrap_err();
    assert_eq!(refused.reason(), &BridgeError::Closed);
    for (_, release) in &releases {
        release.send(()).unwrap();
    }
    for job in &busy {
        assert_eq!(wait(job), Ok("done"), "running jobs finish after close");
    }
}

#[test]
fn default_size_follows_asyncio() {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(BlockingPool::default_size(), (cores + 4).min(32));
    assert!(BlockingPool::default_size() <= 32);
}

#[test]
fn a_zero_sized_pool_still_runs_work() {
    let pool = BlockingPool::new(0);
    assert_eq!(pool.max_threads(), 1);
    assert_eq!(wait(&pool.spawn(|| "ok").unwrap()), Ok("ok"));
}
