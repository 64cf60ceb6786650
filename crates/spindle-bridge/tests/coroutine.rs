//! run_coroutine_threadsafe and its !Send variant: output, panics and cancellation both ways,
//! closed loops, awaiting from another loop, and where the coroutine lives.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::thread;

use common::{wait, LoopThread, HANG};
use spindle_bridge::{
    run_coroutine_threadsafe, run_coroutine_threadsafe_with, BlockingPool, BridgeError,
    ConcurrentFuture, EventLoopExt,
};
use spindle_loop::EventLoop;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn concurrent_future_is_send_and_sync() {
    assert_send_sync::<ConcurrentFuture<u64>>();
    assert_send_sync::<ConcurrentFuture<Vec<String>>>();
}

#[test]
fn result_returns_the_coroutine_output() {
    let lt = LoopThread::start();
    let fut =
        run_coroutine_threadsafe(async { String::from("hello") + " loop" }, &lt.handle).unwrap();
    assert_eq!(fut.result(), Ok("hello loop".to_owned()));
    lt.finish();
}

#[test]
fn the_coroutine_runs_on_the_loop_thread_as_a_task() {
    let lt = LoopThread::start();
    let fut = run_coroutine_threadsafe(
        async {
            (
                thread::current().id(),
                spindle_loop::current_task().is_some(),
            )
        },
        &lt.handle,
    )
    .unwrap();
    assert_eq!(wait(&fut), Ok((lt.thread_id, true)));
    lt.finish();
}

#[test]
fn a_panic_in_the_coroutine_comes_back_as_panicked() {
    let lt = LoopThread::start();
    let fut = run_coroutine_threadsafe(
        async {
            if thread::current().name() != Some("never") {
                panic!("coroutine blew up");
            }
            1
        },
        &lt.handle,
    )
    .unwrap();
    let err = wait(&fut).unwrap_err();
    assert_eq!(err, BridgeError::Panicked("coroutine blew up".into()));
    assert!(err.is_panic());
    let text = err.to_string();
    assert!(
        text.contains("coroutine blew up") && text.contains("caught"),
        "{text}"
    );
    // The loop survived it.
    let after = run_coroutine_threadsafe(async { 2 }, &lt.handle).unwrap();
    assert_eq!(wait(&after), Ok(2));
    lt.finish();
}

/// A future that never completes and reports where it is dropped.
struct Forever {
    dropped: mpsc::Sender<thread::ThreadId>,
    started: Option<mpsc::Sender<()>>,
}

impl Future for Forever {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        if let Some(started) = self.started.take() {
            let _ = started.send(());
        }
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        let _ = self.dropped.send(thread::current().id());
    }
}

fn forever() -> (
    Forever,
    mpsc::Receiver<thread::ThreadId>,
    mpsc::Receiver<()>,
) {
    let (dropped, dropped_rx) = mpsc::channel();
    let (started, started_rx) = mpsc::channel();
    (
        Forever {
            dropped,
            started: Some(started),
        },
        dropped_rx,
        started_rx,
    )
}

#[test]
fn cancel_from_the_caller_cancels_the_task_on_its_loop() {
    let lt = LoopThread::start();
    let (coroutine, dropped, started) = forever();
    let fut = run_coroutine_threadsafe(coroutine, &lt.handle).unwrap();
    started.recv_timeout(HANG).unwrap();
    assert!(!fut.done());
    assert!(fut.cancel());
    assert!(fut.done() && fut.cancelled());
    assert!(!fut.cancel(), "already resolved");
    assert_eq!(wait(&fut), Err(BridgeError::Cancelled));
    // The coroutine was dropped on its loop's thread by the task's cancellation.
    assert_eq!(dropped.recv_timeout(HANG).unwrap(), lt.thread_id);
    lt.finish();
}

#[test]
fn cancellation_on_the_loop_side_propagates_to_the_caller() {
    let lt = LoopThread::start();
    let (coroutine, dropped, started) = forever();
    let fut = run_coroutine_threadsafe(coroutine, &lt.handle).unwrap();
    started.recv_timeout(HANG).unwrap();
    lt.handle
        .call_soon_threadsafe(|| {
            for task in spindle_loop::all_tasks() {
                task.cancel();
            }
        })
        .unwrap();
    assert_eq!(wait(&fut), Err(BridgeError::Cancelled));
    assert!(fut.cancelled());
    assert_eq!(dropped.recv_timeout(HANG).unwrap(), lt.thread_id);
    lt.finish();
}

#[test]
fn cancel_before_the_coroutine_reaches_the_loop_means_it_never_starts() {
    let lt = LoopThread::gated();
    let built = Arc::new(AtomicBool::new(false));
    let polled = Arc::new(AtomicBool::new(false));
    let (b, p) = (built.clone(), polled.clone());
    let fut = run_coroutine_threadsafe_with(
        move || {
            b.store(true, Ordering::SeqCst);
            async move { p.store(true, Ordering::SeqCst) }
        },
        &lt.handle,
    )
    .unwrap();
    let p2 = polled.clone();
    let send_fut =
        run_coroutine_threadsafe(async move { p2.store(true, Ordering::SeqCst) }, &lt.handle)
            .unwrap();
    assert!(fut.cancel());
    assert!(send_fut.cancel());
    lt.run();
    // Everything submitted before this marker has been through the loop.
    let marker = run_coroutine_threadsafe(async {}, &lt.handle).unwrap();
    wait(&marker).unwrap();
    assert!(!built.load(Ordering::SeqCst));
    assert!(!polled.load(Ordering::SeqCst));
    assert_eq!(wait(&fut), Err(BridgeError::Cancelled));
    lt.finish();
}

#[test]
fn result_timeout_times_out_without_cancelling() {
    let lt = LoopThread::start();
    let pool = BlockingPool::new(1);
    let (tx, rx) = mpsc::channel::<u32>();
    let blocked = pool.spawn(move || rx.recv_timeout(HANG).unwrap()).unwrap();
    let fut =
        run_coroutine_threadsafe(async move { blocked.await.unwrap() + 1 }, &lt.handle).unwrap();
    let short = std::time::Duration::from_millis(5);
    let err = fut.result_timeout(short).unwrap_err();
    assert_eq!(err, BridgeError::Timeout(short));
    assert!(err.to_string().contains("still running"), "{err}");
    assert!(!fut.done() && !fut.cancelled());
    tx.send(41).unwrap();
    assert_eq!(wait(&fut), Ok(42));
    lt.finish();
}

#[test]
fn the_future_is_awaitable_from_another_loop() {
    let lt = LoopThread::start();
    let handle = lt.handle.clone();
    let here = EventLoop::new().unwrap();
    let out = here
        .run_until_complete(async move {
            let remote =
                run_coroutine_threadsafe(async { thread::current().id() }, &handle).unwrap();
            remote.await
        })
        .unwrap();
    assert_eq!(out, Ok(lt.thread_id));
    here.close().unwrap();
    lt.finish();
}

#[test]
fn loop_closed_before_the_coroutine_ran_resolves_with_closed() {
    let lt = LoopThread::gated();
    let built = Arc::new(AtomicBool::new(false));
    let b = built.clone();
    let fut = run_coroutine_threadsafe_with(
        move || {
            b.store(true, Ordering::SeqCst);
            async {}
        },
        &lt.handle,
    )
    .unwrap();
    let (coroutine, dropped, _started) = forever();
    let send_fut = run_coroutine_threadsafe(coroutine, &lt.handle).unwrap();
    let loop_thread = lt.thread_id;
    lt.close_unrun();
    let err = wait(&fut).unwrap_err();
    assert_eq!(err, BridgeError::Closed);
    assert!(err.to_string().contains("closed"), "{err}");
    assert_eq!(wait(&send_fut), Err(BridgeError::Closed));
    assert!(
        !built.load(Ordering::SeqCst),
        "never built on a closing loop"
    );
    // The Send coroutine that never ran was dropped on the loop's thread.
    assert_eq!(dropped.recv_timeout(HANG).unwrap(), loop_thread);
}

#[test]
fn loop_closed_while_the_coroutine_is_pending_resolves_with_closed() {
    let lt = LoopThread::start();
    let (coroutine, dropped, started) = forever();
    let fut = run_coroutine_threadsafe(coroutine, &lt.handle).unwrap();
    started.recv_timeout(HANG).unwrap();
    let loop_thread = lt.thread_id;
    lt.finish(); // stop, then close: the pending task is destroyed on its thread
    assert_eq!(wait(&fut), Err(BridgeError::Closed));
    assert_eq!(dropped.recv_timeout(HANG).unwrap(), loop_thread);
}

#[test]
fn a_closed_loop_gives_the_coroutine_back() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    lp.close().unwrap();
    let err = run_coroutine_threadsafe(async { 7 }, &handle).unwrap_err();
    assert_eq!(err.reason(), &BridgeError::Closed);
    let coroutine = err.into_inner();
    let other = EventLoop::new().unwrap();
    assert_eq!(other.run_until_complete(coroutine).unwrap(), 7);

    let err = run_coroutine_threadsafe_with(|| async { 8 }, &handle).unwrap_err();
    let make = err.into_inner();
    assert_eq!(other.run_until_complete(make()).unwrap(), 8);
}

#[test]
fn a_non_send_coroutine_is_built_and_run_on_the_loop_thread() {
    let lt = LoopThread::start();
    let fut = run_coroutine_threadsafe_with(
        || {
            let built_on = thread::current().id();
            let shared = Rc::new(std::cell::Cell::new(1));
            let lp = EventLoop::running().expect("built inside the running loop");
            async move {
                let inner = shared.clone();
                let child = lp
                    .create_task(async move { inner.set(inner.get() + 1) })
                    .unwrap();
                child.await.unwrap();
                (built_on, thread::current().id(), shared.get())
            }
        },
        &lt.handle,
    )
    .unwrap();
    assert_eq!(wait(&fut), Ok((lt.thread_id, lt.thread_id, 2)));
    lt.finish();
}

#[test]
fn a_panic_while_building_the_coroutine_comes_back_as_panicked() {
    let lt = LoopThread::start();
    let fut = run_coroutine_threadsafe_with(
        || -> std::future::Ready<u8> { panic!("could not build") },
        &lt.handle,
    )
    .unwrap();
    assert_eq!(
        wait(&fut),
        Err(BridgeError::Panicked("could not build".into()))
    );
    lt.finish();
}

/// Issue 13.7: besides resolving the future, the builder's panic is reported on the loop it
/// happened on, like any panicking callback.
#[test]
fn a_panic_while_building_the_coroutine_is_also_reported_to_the_loop_s_handler() {
    let (handle_tx, handle_rx) = mpsc::channel();
    let (report_tx, report_rx) = mpsc::channel();
    let loop_thread = thread::spawn(move || {
        let lp = EventLoop::new().unwrap();
        let report_tx = std::sync::Mutex::new(report_tx);
        lp.set_exception_handler(Some(Rc::new(
            move |_: &EventLoop, ctx: &spindle_loop::ExceptionContext| {
                let panic = ctx.panic.as_deref().map(str::to_owned);
                let _ = report_tx.lock().unwrap().send((ctx.kind, panic));
            },
        )));
        handle_tx.send(lp.handle()).unwrap();
        lp.run_forever().unwrap();
        lp.close().unwrap();
    });
    let handle = handle_rx.recv().unwrap();
    let fut = run_coroutine_threadsafe_with(
        || -> std::future::Ready<u8> { panic!("could not build") },
        &handle,
    )
    .unwrap();
    assert_eq!(
        wait(&fut),
        Err(BridgeError::Panicked("could not build".into()))
    );
    let (kind, panic) = report_rx.recv_timeout(HANG).expect("reported");
    assert_eq!(kind, spindle_loop::ExceptionKind::CallbackPanicked);
    assert_eq!(panic.as_deref(), Some("could not build"));
    handle.stop().unwrap();
    loop_thread.join().unwrap();
}

#[test]
fn dropping_the_future_detaches_the_work() {
    let lt = LoopThread::start();
    let (tx, rx) = mpsc::channel();
    let fut = run_coroutine_threadsafe(async move { tx.send("ran anyway").unwrap() }, &lt.handle)
        .unwrap();
    drop(fut);
    assert_eq!(rx.recv_timeout(HANG).unwrap(), "ran anyway");
    lt.finish();
}

#[test]
fn cancel_racing_completion_always_resolves_consistently() {
    let lt = LoopThread::start();
    let rounds = if cfg!(debug_assertions) { 300 } else { 3_000 };
    let (mut values, mut cancels) = (0, 0);
    for i in 0..rounds {
        let fut = run_coroutine_threadsafe(async move { i }, &lt.handle).unwrap();
        if i % 3 != 0 {
            std::hint::spin_loop();
        }
        let cancelled = fut.cancel();
        match wait(&fut) {
            Ok(v) => {
                assert!(!cancelled && !fut.cancelled());
                assert_eq!(v, i);
                values += 1;
            }
            Err(BridgeError::Cancelled) => {
                assert!(cancelled && fut.cancelled());
                cancels += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(values + cancels, rounds);
    lt.finish();
}

#[test]
fn many_threads_can_submit_to_one_loop() {
    let lt = LoopThread::start();
    let total = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (handle, total) = (lt.handle.clone(), total.clone());
            thread::spawn(move || {
                for i in 0..100 {
                    let fut =
                        run_coroutine_threadsafe(async move { t * 1000 + i }, &handle).unwrap();
                    assert_eq!(wait(&fut), Ok(t * 1000 + i));
                    total.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(total.load(Ordering::Relaxed), 400);
    lt.finish();
}

#[test]
fn result_on_the_coroutine_s_own_loop_thread_is_an_error_not_a_hang() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let out = lp
        .run_until_complete(async move {
            let fut = run_coroutine_threadsafe(async { 3 }, &handle).unwrap();
            let blocked = fut.result();
            // Awaiting it is the way on the loop's own thread; the value is still there.
            (blocked, fut.await)
        })
        .unwrap();
    assert_eq!(out.0, Err(BridgeError::WouldDeadlock));
    assert!(out.0.unwrap_err().to_string().contains(".await"));
    assert_eq!(out.1, Ok(3));
}
