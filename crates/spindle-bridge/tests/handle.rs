//! LoopHandle and call_soon_threadsafe: where callbacks run, their order, cancellation, closed
//! loops, threadsafe stop, state queries and wake-up coalescing.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use common::{LoopThread, HANG};
use spindle_bridge::{BridgeError, EventLoopExt, LoopHandle, SubmitError, ThreadsafeHandle};
use spindle_loop::EventLoop;

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

#[test]
fn handles_are_send_sync_and_clone() {
    assert_send_sync_clone::<LoopHandle>();
    assert_send_sync_clone::<ThreadsafeHandle>();
}

#[test]
fn threadsafe_callback_runs_on_the_loop_thread() {
    let lt = LoopThread::start();
    let (tx, rx) = mpsc::channel();
    lt.handle
        .call_soon_threadsafe(move || tx.send(thread::current().id()).unwrap())
        .unwrap();
    assert_eq!(rx.recv_timeout(HANG).unwrap(), lt.thread_id);
    lt.finish();
}

#[test]
fn callbacks_from_one_thread_run_in_submission_order() {
    let lt = LoopThread::start();
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..1000 {
        let log = log.clone();
        lt.handle
            .call_soon_threadsafe(move || log.lock().unwrap().push(i))
            .unwrap();
    }
    let (tx, rx) = mpsc::channel();
    lt.handle
        .call_soon_threadsafe(move || tx.send(()).unwrap())
        .unwrap();
    rx.recv_timeout(HANG).unwrap();
    assert_eq!(*log.lock().unwrap(), (0..1000).collect::<Vec<_>>());
    lt.finish();
}

/// Counts drops of its clones' shared counter's owner (one value, one drop).
struct Dropped(Arc<AtomicUsize>);
impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn small_and_large_callbacks_keep_their_order_and_each_is_dropped_once() {
    // Small closures travel inline through the inbox, large ones boxed; cancelled ones of both
    // kinds are dropped unrun. Receipts come from chunks of 32, so 100 spans several.
    let lt = LoopThread::start();
    let log = Arc::new(Mutex::new(Vec::new()));
    let drops = Arc::new(AtomicUsize::new(0));
    let mut cancelled = Vec::new();
    for i in 0..100usize {
        let (log, guard) = (log.clone(), Dropped(drops.clone()));
        let receipt = if i % 2 == 0 {
            lt.handle
                .call_soon_threadsafe(move || {
                    let _guard = guard;
                    log.lock().unwrap().push(i);
                })
                .map_err(drop)
        } else {
            let ballast = [i; 16];
            lt.handle
                .call_soon_threadsafe(move || {
                    let _guard = guard;
                    log.lock().unwrap().push(ballast[15]);
                })
                .map_err(drop)
        }
        .unwrap();
        if i % 5 == 0 && receipt.cancel() {
            cancelled.push(i);
        }
    }
    let (tx, rx) = mpsc::channel();
    lt.handle
        .call_soon_threadsafe(move || tx.send(()).unwrap())
        .unwrap();
    rx.recv_timeout(HANG).unwrap();
    let expected: Vec<usize> = (0..100).filter(|i| !cancelled.contains(i)).collect();
    assert_eq!(*log.lock().unwrap(), expected);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        100,
        "every closure dropped exactly once"
    );
    lt.finish();
}

#[test]
fn threadsafe_and_call_soon_callbacks_interleave_in_one_queue() {
    // Same thread, loop running: the order of scheduling is the order of running.
    let lp = EventLoop::new().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (inner, handle, l) = (lp.clone(), lp.handle(), log.clone());
    lp.call_soon(move || {
        for i in 0..6 {
            let l = l.clone();
            if i % 3 == 0 {
                handle
                    .call_soon_threadsafe(move || l.lock().unwrap().push(i))
                    .unwrap();
            } else {
                inner.call_soon(move || l.lock().unwrap().push(i)).unwrap();
            }
        }
    })
    .unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
}

#[test]
fn closed_loop_gives_the_closure_back_with_an_error_that_says_what_to_do() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    lp.close().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let err: SubmitError<_> = handle
        .call_soon_threadsafe(move || r.store(true, Ordering::SeqCst))
        .unwrap_err();
    assert_eq!(err.reason(), &BridgeError::Closed);
    let text = err.to_string();
    assert!(text.contains("the event loop is closed"), "{text}");
    assert!(text.contains("EventLoop::new()"), "{text}");
    assert!(text.contains("into_inner()"), "{text}");
    assert!(!ran.load(Ordering::SeqCst));
    let f = err.into_inner();
    f();
    assert!(
        ran.load(Ordering::SeqCst),
        "the closure that came back is the one submitted"
    );
}

/// Records on which thread it is dropped.
struct DropProbe(mpsc::Sender<thread::ThreadId>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        let _ = self.0.send(thread::current().id());
    }
}

#[test]
fn cancelled_callback_never_runs_and_is_dropped_on_the_loop_thread() {
    let lt = LoopThread::gated();
    let ran = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let probe = DropProbe(tx);
    let r = ran.clone();
    let receipt = lt
        .handle
        .call_soon_threadsafe(move || {
            let _probe = &probe;
            r.store(true, Ordering::SeqCst);
        })
        .unwrap();
    assert!(receipt.cancel());
    assert!(receipt.cancelled());
    assert!(!receipt.cancel(), "a second cancel changes nothing");
    lt.run();
    assert_eq!(rx.recv_timeout(HANG).unwrap(), lt.thread_id);
    assert!(!ran.load(Ordering::SeqCst));
    lt.finish();
}

#[test]
fn cancel_after_the_callback_ran_returns_false() {
    let lt = LoopThread::start();
    let (tx, rx) = mpsc::channel();
    let receipt = lt
        .handle
        .call_soon_threadsafe(move || tx.send(()).unwrap())
        .unwrap();
    rx.recv_timeout(HANG).unwrap();
    assert!(!receipt.cancel());
    assert!(!receipt.cancelled());
    lt.finish();
}

#[test]
fn accepted_callbacks_run_when_the_loop_closes_without_running() {
    let lt = LoopThread::gated();
    let (tx, rx) = mpsc::channel();
    lt.handle
        .call_soon_threadsafe(move || tx.send(thread::current().id()).unwrap())
        .unwrap();
    let loop_thread = lt.thread_id;
    lt.close_unrun();
    assert_eq!(rx.recv_timeout(HANG).unwrap(), loop_thread);
}

#[test]
fn stop_from_another_thread_stops_the_loop() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let stopper = thread::spawn(move || handle.stop());
    assert_eq!(stopper.join().unwrap(), Ok(()));
    lp.run_forever().unwrap();
    // And a running loop, stopped from outside:
    let lt = LoopThread::start();
    lt.handle.stop().unwrap();
    lt.finish();
}

#[test]
fn stop_on_a_closed_loop_is_an_error() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    lp.close().unwrap();
    assert_eq!(handle.stop(), Err(BridgeError::Closed));
}

#[test]
fn is_running_and_is_closed_follow_the_loop_from_another_thread() {
    let lt = LoopThread::gated();
    let handle = lt.handle.clone();
    assert!(!handle.is_running());
    assert!(!handle.is_closed());
    lt.run();
    let (tx, rx) = mpsc::channel();
    let h = handle.clone();
    handle
        .call_soon_threadsafe(move || tx.send(h.is_running()).unwrap())
        .unwrap();
    assert!(rx.recv_timeout(HANG).unwrap());
    lt.finish();
    assert!(!handle.is_running());
    assert!(handle.is_closed());
}

#[test]
fn current_handle_is_the_running_loop_s() {
    assert!(LoopHandle::current().is_none());
    let lp = EventLoop::new().unwrap();
    let id = lp.id();
    let seen = lp
        .run_until_complete(async { LoopHandle::current().map(|h| h.loop_id()) })
        .unwrap();
    assert_eq!(seen, Some(id));
}

#[test]
fn a_burst_into_a_busy_loop_costs_at_most_one_wakeup() {
    let lt = LoopThread::start();
    let handle = lt.handle.clone();
    let before = handle.wakeups();
    // Keep the loop busy in one callback while a burst arrives.
    let (busy_tx, busy_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    handle
        .call_soon_threadsafe(move || {
            busy_tx.send(()).unwrap();
            release_rx.recv_timeout(HANG).unwrap();
        })
        .unwrap();
    busy_rx.recv_timeout(HANG).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..10_000 {
        let ran = ran.clone();
        handle
            .call_soon_threadsafe(move || {
                ran.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
    }
    // The loop was busy the whole burst: no submission had to wake it. Only the first one (the
    // busy callback, which may have found the loop parked) may have cost a wake-up.
    assert!(
        handle.wakeups() - before <= 1,
        "{} wake-ups for one burst",
        handle.wakeups() - before
    );
    release_tx.send(()).unwrap();
    let (tx, rx) = mpsc::channel();
    handle
        .call_soon_threadsafe(move || tx.send(()).unwrap())
        .unwrap();
    rx.recv_timeout(HANG).unwrap();
    assert_eq!(ran.load(Ordering::Relaxed), 10_000);
    lt.finish();
}

#[test]
fn debug_output_names_the_state() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let text = format!("{handle:?}");
    assert!(
        text.contains("LoopHandle") && text.contains("closed: false"),
        "{text}"
    );
    let receipt = handle.call_soon_threadsafe(|| ()).unwrap();
    assert!(format!("{receipt:?}").contains("pending"));
    receipt.cancel();
    assert!(format!("{receipt:?}").contains("cancelled"));
}

/// Issue 13.6: asyncio has one ready queue: a threadsafe submission that happened before a
/// `call_soon` runs before it, whether it came from the loop's thread or from another one.
#[test]
fn call_soon_threadsafe_shares_the_loop_s_fifo_with_call_soon() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let log = Arc::new(Mutex::new(Vec::new()));
    let push = |name: &'static str| {
        let log = log.clone();
        move || log.lock().unwrap().push(name)
    };
    lp.call_soon(push("a")).unwrap();
    handle.call_soon_threadsafe(push("b")).unwrap();
    lp.call_soon(push("c")).unwrap();
    let from_elsewhere = handle.clone();
    let d = push("d");
    thread::spawn(move || from_elsewhere.call_soon_threadsafe(d).unwrap())
        .join()
        .unwrap();
    lp.call_soon(push("e")).unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(*log.lock().unwrap(), ["a", "b", "c", "d", "e"]);
    lp.close().unwrap();
}
