//! Spindle's side of the multi-thread workloads (tokio's `rt_multi_threaded` bench set), on a
//! [`spindle::Runtime`] with `workers` workers. Each function mirrors
//! the one of the same name in [`crate::runtime_peers`]; building, warming up (see
//! [`crate::WARM_UP_TASKS`] and [`crate::SETTLE`]) and shutting down the runtime stay outside
//! the clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use spindle::Runtime;

use crate::clock::{Clock, Sample};
use crate::{expect_ok, settle, yield_once, Countdown, WARM_UP_TASKS};

/// A runtime with `workers` workers, warmed up and settled, as every `rt_*` row's spindle
/// side starts (also the `steal_probe` example's).
pub fn runtime(workers: usize) -> Runtime {
    let rt = expect_ok(
        Runtime::builder().worker_threads(workers).build(),
        "Runtime::build",
    );
    let warm: Vec<_> = (0..WARM_UP_TASKS)
        .map(|_| expect_ok(rt.spawn(yield_once()), "spawn"))
        .collect();
    await_all(&rt, warm);
    settle();
    rt
}

fn spawn<F>(future: F) -> spindle::Task<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    expect_ok(spindle::spawn(future), "spindle::spawn")
}

/// Awaits every handle inside `rt.block_on`.
fn await_all(rt: &Runtime, handles: Vec<spindle::Task<()>>) {
    expect_ok(
        rt.block_on(async move {
            for h in handles {
                expect_ok(h.await, "task");
            }
        }),
        "block_on",
    );
}

/// From inside one task on a fresh runtime, starts `n` rounds of `round` (each calls
/// `finish_one` on its countdown once, when its work is done); the time until the last one is.
fn rounds_from_a_task(workers: usize, n: u64, round: fn(Countdown)) -> Sample {
    let rt = runtime(workers);
    let (countdown, done_rx) = Countdown::new(n);
    let clock = Clock::start();
    let spawner = expect_ok(
        rt.spawn(async move {
            for _ in 0..n {
                round(countdown.clone());
            }
        }),
        "spawn",
    );
    expect_ok(done_rx.recv(), "done");
    let sample = clock.stop();
    drop(spawner);
    rt.shutdown();
    sample
}

/// From inside a task, spawn `n` tasks; the last to run signals completion.
pub fn spawn_many_local(workers: usize, n: u64) -> Sample {
    rounds_from_a_task(workers, n, |countdown| {
        spawn(async move { countdown.finish_one() });
    })
}

/// Spawns `n` empty tasks from this (non-worker) thread, then awaits them all in `block_on`.
fn spawn_remote_and_await(rt: &Runtime, n: u64) {
    let handles: Vec<_> = (0..n)
        .map(|_| expect_ok(rt.spawn(async {}), "spawn"))
        .collect();
    await_all(rt, handles);
}

/// From a thread outside the runtime, spawn `n` tasks on an idle runtime, then await them.
pub fn spawn_many_remote_idle(workers: usize, n: u64) -> Sample {
    let rt = runtime(workers);
    let clock = Clock::start();
    spawn_remote_and_await(&rt, n);
    let sample = clock.stop();
    rt.shutdown();
    sample
}

/// As `spawn_many_remote_idle`, while every worker is kept busy by tasks that keep yielding.
pub fn spawn_many_remote_busy(workers: usize, n: u64) -> Sample {
    let rt = runtime(workers);
    let busy = Arc::new(AtomicBool::new(true));
    for _ in 0..workers * 2 {
        let busy = busy.clone();
        expect_ok(
            rt.spawn(async move {
                while busy.load(Ordering::Relaxed) {
                    yield_once().await;
                }
            }),
            "spawn busy",
        );
    }
    let clock = Clock::start();
    spawn_remote_and_await(&rt, n);
    let sample = clock.stop();
    busy.store(false, Ordering::Relaxed);
    rt.shutdown();
    sample
}

/// `tasks` tasks, each yielding `per_task` times.
pub fn yield_many(workers: usize, tasks: u64, per_task: u64) -> Sample {
    let rt = runtime(workers);
    let clock = Clock::start();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            expect_ok(
                rt.spawn(async move {
                    for _ in 0..per_task {
                        yield_once().await;
                    }
                }),
                "spawn",
            )
        })
        .collect();
    await_all(&rt, handles);
    let sample = clock.stop();
    rt.shutdown();
    sample
}

/// `n` rounds: a task spawns a partner; they exchange one message each way over oneshots.
pub fn ping_pong(workers: usize, n: u64) -> Sample {
    rounds_from_a_task(workers, n, |countdown| {
        spawn(async move {
            let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
            let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
            spawn(async move {
                let _ = rx1.await;
                let _ = tx2.send(());
            });
            let _ = tx1.send(());
            let _ = rx2.await;
            countdown.finish_one();
        });
    })
}

fn chain(done_tx: mpsc::SyncSender<()>, n: u64) {
    if n == 0 {
        let _ = done_tx.send(());
    } else {
        spawn(async move { chain(done_tx, n - 1) });
    }
}

/// Each task spawns the next, `n` deep.
pub fn chained_spawn(workers: usize, n: u64) -> Sample {
    let rt = runtime(workers);
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let clock = Clock::start();
    let first = expect_ok(rt.spawn(async move { chain(done_tx, n) }), "spawn");
    expect_ok(done_rx.recv(), "done");
    let sample = clock.stop();
    drop(first);
    rt.shutdown();
    sample
}

/// `idle_runtime`: a warmed-up, settled runtime left alone for `ms` milliseconds; its CPU time
/// per millisecond should be 0 (parked workers burn nothing).
pub fn idle(workers: usize, ms: u64) -> Sample {
    let rt = runtime(workers);
    let clock = Clock::start();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let sample = clock.stop();
    rt.shutdown();
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each body runs to completion at 1 and 2 workers.
    #[test]
    fn every_body_finishes() {
        for workers in [1, 2] {
            spawn_many_local(workers, 100);
            spawn_many_remote_idle(workers, 100);
            spawn_many_remote_busy(workers, 100);
            yield_many(workers, 10, 10);
            ping_pong(workers, 20);
            chained_spawn(workers, 20);
            idle(workers, 1);
        }
    }
}
