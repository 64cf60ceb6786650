//! Spindle's side of the bridge workloads: `call_soon_threadsafe` throughput and the
//! `run_coroutine_threadsafe` round trip. Each mirrors the function of the same workload in
//! [`crate::bridge_peers`]; building loops and threads stays outside the clock.

use std::sync::mpsc;
use std::thread;

use spindle::{run_coroutine_threadsafe, ConcurrentFuture, EventLoopExt, LoopHandle};

use crate::clock::{Clock, Sample};
use crate::spindle_side::{close, new_loop};
use crate::{expect_ok, sink, threadsafe_closures};

/// `call_soon_threadsafe`: one producer thread submits `n` closures (each adding its index to
/// the loop thread's sink), then a threadsafe `stop()` (it runs after them: one FIFO), to a loop
/// running on this thread. Charged: from the producer's first submission until `run_forever`
/// returns (all ran).
pub fn call_soon_threadsafe(n: u64) -> Sample {
    let lp = new_loop();
    let handle = lp.handle();
    let sample = threadsafe_closures(
        n,
        move |i| {
            let _ = expect_ok(
                handle.call_soon_threadsafe(move || sink(i)),
                "call_soon_threadsafe",
            );
            if i + 1 == n {
                expect_ok(handle.stop(), "LoopHandle::stop");
            }
        },
        || expect_ok(lp.run_forever(), "EventLoop::run_forever"),
    );
    close(lp);
    sample
}

/// A loop running on its own thread until stopped.
struct LoopThread {
    handle: LoopHandle,
    thread: thread::JoinHandle<()>,
}

impl LoopThread {
    fn start() -> LoopThread {
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let lp = new_loop();
            expect_ok(tx.send(lp.handle()), "send handle");
            expect_ok(lp.run_forever(), "EventLoop::run_forever");
            close(lp);
        });
        let handle = expect_ok(rx.recv(), "loop thread start");
        LoopThread { handle, thread }
    }

    fn stop(self) {
        expect_ok(self.handle.stop(), "LoopHandle::stop");
        expect_ok(self.thread.join().map_err(|_| "panicked"), "loop thread");
    }
}

/// `run_coroutine_threadsafe`: from this (plain) thread, `n` sequential
/// `run_coroutine_threadsafe(async move { i + 1 }).result()` into a loop running on another
/// thread. `result()` spins up to 50 us before it parks: wall time is low, CPU time shows the
/// spinning.
pub fn run_coroutine_threadsafe_round_trip(n: u64) -> Sample {
    round_trips(n, |fut| fut.result())
}

/// As [`run_coroutine_threadsafe_round_trip`], but the caller parks at once instead of
/// spinning: it awaits the `ConcurrentFuture` in `futures_lite::future::block_on`, which parks
/// the thread until the loop's completion wakes it (the `_parked` row).
pub fn run_coroutine_threadsafe_parked(n: u64) -> Sample {
    round_trips(n, futures_lite::future::block_on)
}

/// `n` sequential round trips into a loop on another thread, each waited for by `wait`.
fn round_trips(
    n: u64,
    wait: impl Fn(ConcurrentFuture<u64>) -> Result<u64, spindle::BridgeError>,
) -> Sample {
    let lt = LoopThread::start();
    let clock = Clock::start();
    for i in 0..n {
        let fut = expect_ok(
            run_coroutine_threadsafe(async move { i + 1 }, &lt.handle),
            "run_coroutine_threadsafe",
        );
        assert_eq!(expect_ok(wait(fut), "ConcurrentFuture result"), i + 1);
    }
    let sample = clock.stop();
    lt.stop();
    sample
}

/// `idle_loop_thread`: a loop running on its own thread with nothing to do, left alone for
/// `ms` milliseconds after it has settled; its CPU time should be 0 (the loop parks in its
/// poller).
pub fn idle_loop_thread(ms: u64) -> Sample {
    let lt = LoopThread::start();
    crate::settle();
    let clock = Clock::start();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let sample = clock.stop();
    lt.stop();
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_spindle_side_runs_small() {
        call_soon_threadsafe(1_000);
        run_coroutine_threadsafe_round_trip(100);
        run_coroutine_threadsafe_parked(100);
        idle_loop_thread(1);
    }
}
