//! The peers of the bridge workloads: tokio (an unbounded mpsc into a current-thread task;
//! `Handle::spawn` plus a blocking oneshot) and bare crossbeam-channel floors. Each mirrors the
//! function of the same workload in [`crate::bridge_spindle`].

use crate::clock::{Clock, Sample};
use std::thread;

use crate::peers::tokio_current_thread;
use crate::{sink, threadsafe_closures};

type Closure = Box<dyn FnOnce() + Send>;

/// `call_soon_threadsafe` on tokio: one producer thread sends `n` boxed closures through an
/// unbounded mpsc to a task on a current-thread runtime on this thread, which runs each.
pub fn call_soon_threadsafe_tokio(n: u64) -> Sample {
    let rt = tokio_current_thread();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Closure>();
    threadsafe_closures(
        n,
        move |i| tx.send(Box::new(move || sink(i))).expect("receiver alive"),
        || {
            rt.block_on(async {
                while let Some(f) = rx.recv().await {
                    f();
                }
            })
        },
    )
}

/// `call_soon_threadsafe` floor: the same boxed closures through a bare unbounded
/// crossbeam-channel, received and run on this thread.
pub fn call_soon_threadsafe_crossbeam(n: u64) -> Sample {
    let (tx, rx) = crossbeam_channel::unbounded::<Closure>();
    threadsafe_closures(
        n,
        move |i| tx.send(Box::new(move || sink(i))).expect("receiver alive"),
        || {
            for f in rx.iter() {
                f();
            }
        },
    )
}

/// `run_coroutine_threadsafe` on tokio: a current-thread runtime driven by its own thread;
/// from this thread, `n` sequential `Handle::spawn(async move { reply.send(i + 1) })` each
/// followed by a blocking receive on a oneshot.
pub fn round_trip_tokio(n: u64) -> Sample {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = thread::spawn(move || {
        let rt = tokio_current_thread();
        handle_tx.send(rt.handle().clone()).expect("bench alive");
        let _ = rt.block_on(shutdown_rx);
    });
    let handle = handle_rx.recv().expect("driver started");
    let clock = Clock::start();
    for i in 0..n {
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        drop(handle.spawn(async move {
            let _ = reply_tx.send(i + 1);
        }));
        assert_eq!(reply_rx.blocking_recv().expect("reply"), i + 1);
    }
    let sample = clock.stop();
    let _ = shutdown_tx.send(());
    driver.join().expect("driver thread");
    sample
}

/// `run_coroutine_threadsafe` floor: a crossbeam-channel ping-pong with a server thread
/// (`bounded(1)` both ways; crossbeam spins briefly before it blocks).
pub fn round_trip_crossbeam(n: u64) -> Sample {
    let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(1);
    let (rep_tx, rep_rx) = crossbeam_channel::bounded::<u64>(1);
    let server = thread::spawn(move || {
        for i in req_rx.iter() {
            if rep_tx.send(i + 1).is_err() {
                break;
            }
        }
    });
    let clock = Clock::start();
    for i in 0..n {
        req_tx.send(i).expect("server alive");
        assert_eq!(rep_rx.recv().expect("reply"), i + 1);
    }
    let sample = clock.stop();
    drop(req_tx);
    server.join().expect("server thread");
    sample
}

/// `idle_loop_thread` on tokio: a current-thread runtime blocked on a oneshot in its own
/// thread, left alone for `ms` milliseconds after it has settled.
pub fn idle_loop_thread_tokio(ms: u64) -> Sample {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = thread::spawn(move || {
        let rt = tokio_current_thread();
        let _ = rt.block_on(stop_rx);
    });
    crate::settle();
    let clock = Clock::start();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let sample = clock.stop();
    let _ = stop_tx.send(());
    driver.join().expect("driver thread");
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_peers_run_small() {
        call_soon_threadsafe_tokio(1_000);
        call_soon_threadsafe_crossbeam(1_000);
        round_trip_tokio(100);
        round_trip_crossbeam(100);
        idle_loop_thread_tokio(1);
    }
}
