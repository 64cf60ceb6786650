//! ConcurrentFuture on its own: done-callbacks (where, when, how often), handing out values and
//! errors, non-blocking polls, and waking blocked and awaiting callers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{wait, LoopThread, HANG};
use spindle_bridge::{run_coroutine_threadsafe, BlockingPool, BridgeError, ConcurrentFuture};
use spindle_loop::EventLoop;

/// A future resolved by sending on the returned channel (a one-thread pool runs the wait).
fn gated(pool: &BlockingPool) -> (ConcurrentFuture<u32>, mpsc::Sender<u32>) {
    let (tx, rx) = mpsc::channel::<u32>();
    let fut = pool
        .spawn(move || rx.recv_timeout(HANG).expect("the test sends a value"))
        .unwrap();
    (fut, tx)
}

#[test]
fn a_done_callback_runs_on_the_thread_that_resolves_the_future() {
    let lt = LoopThread::start();
    let pool = BlockingPool::new(1);
    let (gate, release) = gated(&pool);
    let fut = run_coroutine_threadsafe(gate, &lt.handle).unwrap();
    let (tx, rx) = mpsc::channel();
    fut.add_done_callback(move |done| {
        tx.send((thread::current().id(), done.done())).unwrap();
    });
    release.send(1).unwrap();
    assert_eq!(rx.recv_timeout(HANG).unwrap(), (lt.thread_id, true));
    assert_eq!(wait(&fut), Ok(Ok(1)));
    lt.finish();
}

#[test]
fn a_done_callback_added_to_a_done_future_runs_at_once_on_this_thread() {
    let pool = BlockingPool::new(1);
    let fut = pool.spawn(|| 3).unwrap();
    while !fut.done() {
        thread::yield_now();
    }
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    fut.add_done_callback(move |_| *s.lock().unwrap() = Some(thread::current().id()));
    assert_eq!(*seen.lock().unwrap(), Some(thread::current().id()));
}

#[test]
fn done_callbacks_run_once_each_in_order_and_a_panicking_one_does_not_stop_the_rest() {
    let pool = BlockingPool::new(1);
    let (fut, release) = gated(&pool);
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..5 {
        let log = log.clone();
        fut.add_done_callback(move |_| {
            log.lock().unwrap().push(i);
            if i == 2 {
                panic!("callback {i} fails");
            }
        });
    }
    let (last_tx, last_rx) = mpsc::channel();
    fut.add_done_callback(move |_| last_tx.send(()).unwrap());
    release.send(0).unwrap();
    assert_eq!(wait(&fut), Ok(0));
    // Callbacks run on the resolving thread, after waiters are woken: wait for the last one.
    last_rx.recv_timeout(HANG).unwrap();
    assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 4]);
}

#[test]
fn cancel_runs_the_callbacks_on_the_cancelling_thread() {
    let pool = BlockingPool::new(1);
    let (busy, release) = gated(&pool);
    let queued = pool.spawn(|| 0u32).unwrap();
    let (tx, rx) = mpsc::channel();
    queued.add_done_callback(move |done| {
        tx.send((thread::current().id(), done.cancelled())).unwrap();
    });
    let canceller = thread::spawn(move || {
        assert!(queued.cancel());
        thread::current().id()
    });
    let canceller_id = canceller.join().unwrap();
    assert_eq!(rx.recv_timeout(HANG).unwrap(), (canceller_id, true));
    release.send(0).unwrap();
    assert_eq!(wait(&busy), Ok(0));
}

#[test]
fn a_value_is_handed_out_once_and_errors_are_sticky() {
    let pool = BlockingPool::new(1);
    let fut = pool.spawn(|| String::from("once")).unwrap();
    assert_eq!(wait(&fut), Ok("once".to_owned()));
    let err = fut.result_timeout(Duration::ZERO).unwrap_err();
    assert_eq!(err, BridgeError::ResultTaken);
    assert!(
        err.to_string().contains("hands its value out once"),
        "{err}"
    );
    assert_eq!(fut.result(), Err(BridgeError::ResultTaken));

    let failed = pool.spawn(|| -> u8 { panic!("sticky") }).unwrap();
    let first = wait(&failed).unwrap_err();
    assert_eq!(first, BridgeError::Panicked("sticky".into()));
    assert_eq!(failed.result_timeout(Duration::ZERO), Err(first.clone()));
    assert_eq!(failed.result(), Err(first));
}

#[test]
fn result_timeout_zero_asks_without_waiting() {
    let pool = BlockingPool::new(1);
    let (fut, release) = gated(&pool);
    assert_eq!(
        fut.result_timeout(Duration::ZERO),
        Err(BridgeError::Timeout(Duration::ZERO))
    );
    release.send(5).unwrap();
    assert_eq!(wait(&fut), Ok(5));
}

#[test]
fn every_thread_blocked_in_result_timeout_is_woken() {
    let pool = BlockingPool::new(1);
    let (fut, release) = gated(&pool);
    let fut = Arc::new(fut);
    let woken = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (fut, woken) = (fut.clone(), woken.clone());
            thread::spawn(move || {
                let out = fut.result_timeout(HANG);
                woken.fetch_add(1, Ordering::SeqCst);
                out
            })
        })
        .collect();
    release.send(9).unwrap();
    let mut outcomes: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    outcomes.sort_by_key(|o| o.is_err());
    // One of them took the value; the others learn it was taken.
    assert_eq!(outcomes[0], Ok(9));
    assert_eq!(outcomes[1], Err(BridgeError::ResultTaken));
    assert_eq!(outcomes[2], Err(BridgeError::ResultTaken));
    assert_eq!(woken.load(Ordering::SeqCst), 3);
}

#[test]
fn an_awaiting_task_is_woken_by_a_resolution_on_another_thread() {
    let pool = BlockingPool::new(1);
    let (fut, release) = gated(&pool);
    let lp = EventLoop::new().unwrap();
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(2));
        release.send(11).unwrap();
    });
    assert_eq!(lp.run_until_complete(fut).unwrap(), Ok(11));
    releaser.join().unwrap();
    lp.close().unwrap();
}

#[test]
fn awaiting_a_future_whose_value_was_taken_gives_result_taken() {
    let pool = BlockingPool::new(1);
    let fut = pool.spawn(|| 1).unwrap();
    assert_eq!(wait(&fut), Ok(1));
    let lp = EventLoop::new().unwrap();
    assert_eq!(
        lp.run_until_complete(fut).unwrap(),
        Err(BridgeError::ResultTaken)
    );
}

#[test]
fn debug_output_shows_done_and_cancelled() {
    let pool = BlockingPool::new(1);
    let (fut, release) = gated(&pool);
    assert_eq!(
        format!("{fut:?}"),
        "ConcurrentFuture { done: false, cancelled: false }"
    );
    release.send(0).unwrap();
    wait(&fut).unwrap();
    assert_eq!(
        format!("{fut:?}"),
        "ConcurrentFuture { done: true, cancelled: false }"
    );
}
