//! The peer of [`crate::runtime_spindle`]: tokio's multi-thread runtime with
//! `workers` workers, warmed up and settled as spindle's. Bodies mirror tokio's own
//! `rt_multi_threaded` benchmarks; yields use the shared [`yield_once`] on both sides.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use crate::clock::{Clock, Sample};
use crate::{expect_ok, settle, yield_once, Countdown, WARM_UP_TASKS};

/// A multi-thread runtime with `workers` workers, warmed up and settled.
pub(crate) fn tokio_rt(workers: usize) -> tokio::runtime::Runtime {
    let rt = expect_ok(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build(),
        "tokio runtime",
    );
    let warm: Vec<_> = (0..WARM_UP_TASKS).map(|_| rt.spawn(yield_once())).collect();
    await_all(&rt, warm);
    settle();
    rt
}

/// From inside one task on a fresh runtime, starts `n` rounds of `round` (each calls
/// `finish_one` on its countdown once, when its work is done); the time until the last one is.
fn rounds_from_a_task_tokio(workers: usize, n: u64, round: fn(Countdown)) -> Sample {
    let rt = tokio_rt(workers);
    let (countdown, done_rx) = Countdown::new(n);
    let clock = Clock::start();
    rt.spawn(async move {
        for _ in 0..n {
            round(countdown.clone());
        }
    });
    expect_ok(done_rx.recv(), "done");
    clock.stop()
}

/// `spawn_many_local` on tokio.
pub fn spawn_many_local_tokio(workers: usize, n: u64) -> Sample {
    rounds_from_a_task_tokio(workers, n, |countdown| {
        tokio::spawn(async move { countdown.finish_one() });
    })
}

/// Spawns `n` empty tasks from this (non-worker) thread, then awaits them all in `block_on`.
fn spawn_remote_and_await(rt: &tokio::runtime::Runtime, n: u64) {
    let handles: Vec<_> = (0..n).map(|_| rt.spawn(async {})).collect();
    await_all(rt, handles);
}

/// Awaits every handle inside `rt.block_on`.
fn await_all(rt: &tokio::runtime::Runtime, handles: Vec<tokio::task::JoinHandle<()>>) {
    rt.block_on(async move {
        for h in handles {
            expect_ok(h.await, "task");
        }
    });
}

/// `spawn_many_remote_idle` on tokio.
pub fn spawn_many_remote_idle_tokio(workers: usize, n: u64) -> Sample {
    let rt = tokio_rt(workers);
    let clock = Clock::start();
    spawn_remote_and_await(&rt, n);
    clock.stop()
}

/// `spawn_many_remote_busy` on tokio.
pub fn spawn_many_remote_busy_tokio(workers: usize, n: u64) -> Sample {
    let rt = tokio_rt(workers);
    let busy = Arc::new(AtomicBool::new(true));
    for _ in 0..workers * 2 {
        let busy = busy.clone();
        rt.spawn(async move {
            while busy.load(Ordering::Relaxed) {
                yield_once().await;
            }
        });
    }
    let clock = Clock::start();
    spawn_remote_and_await(&rt, n);
    let sample = clock.stop();
    busy.store(false, Ordering::Relaxed);
    sample
}

/// `yield_many` on tokio.
pub fn yield_many_tokio(workers: usize, tasks: u64, per_task: u64) -> Sample {
    let rt = tokio_rt(workers);
    let clock = Clock::start();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            rt.spawn(async move {
                for _ in 0..per_task {
                    yield_once().await;
                }
            })
        })
        .collect();
    await_all(&rt, handles);
    clock.stop()
}

/// `ping_pong` on tokio.
pub fn ping_pong_tokio(workers: usize, n: u64) -> Sample {
    rounds_from_a_task_tokio(workers, n, |countdown| {
        tokio::spawn(async move {
            let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
            let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let _ = rx1.await;
                let _ = tx2.send(());
            });
            let _ = tx1.send(());
            let _ = rx2.await;
            countdown.finish_one();
        });
    })
}

fn chain_tokio(done_tx: mpsc::SyncSender<()>, n: u64) {
    if n == 0 {
        let _ = done_tx.send(());
    } else {
        tokio::spawn(async move { chain_tokio(done_tx, n - 1) });
    }
}

/// `chained_spawn` on tokio.
pub fn chained_spawn_tokio(workers: usize, n: u64) -> Sample {
    let rt = tokio_rt(workers);
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let clock = Clock::start();
    rt.spawn(async move { chain_tokio(done_tx, n) });
    expect_ok(done_rx.recv(), "done");
    clock.stop()
}

/// `idle_runtime` on tokio (see [`crate::runtime_spindle::idle`]).
pub fn idle_tokio(workers: usize, ms: u64) -> Sample {
    let rt = tokio_rt(workers);
    let clock = Clock::start();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let sample = clock.stop();
    drop(rt);
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each body runs to completion at 1 and 2 workers.
    #[test]
    fn every_body_finishes() {
        for workers in [1, 2] {
            spawn_many_local_tokio(workers, 100);
            spawn_many_remote_idle_tokio(workers, 100);
            spawn_many_remote_busy_tokio(workers, 100);
            yield_many_tokio(workers, 10, 10);
            ping_pong_tokio(workers, 20);
            chained_spawn_tokio(workers, 20);
            idle_tokio(workers, 1);
        }
    }
}
