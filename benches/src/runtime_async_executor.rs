//! The second peer of [`crate::runtime_spindle`]: `async-executor`'s work-stealing
//! [`Executor`](async_executor::Executor), run by [`RT_WORKERS`] threads (each in
//! `futures_lite::future::block_on(executor.run(..))`, the crate's documented way to run it on
//! several threads). The bodies are those of [`crate::runtime_peers`]; async-executor has no
//! ambient spawn, so a task that spawns captures the executor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_executor::{Executor, Task};

use crate::{expect_ok, yield_once, Countdown, RT_WORKERS};

/// An executor and the threads running it; dropping it stops and joins them.
struct Pool {
    executor: Arc<Executor<'static>>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new() -> Pool {
        let executor = Arc::new(Executor::new());
        let (stops, threads) = (0..RT_WORKERS)
            .map(|_| {
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let executor = executor.clone();
                let thread = std::thread::spawn(move || {
                    futures_lite::future::block_on(executor.run(async {
                        let _ = stopped.await;
                    }));
                });
                (stop, thread)
            })
            .unzip();
        Pool {
            executor,
            stops,
            threads,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stops.clear(); // a dropped sender ends its thread's `run`
        for thread in self.threads.drain(..) {
            // A body's panic already reached the measuring side; nothing to add here.
            let _ = thread.join();
        }
    }
}

fn await_all(handles: Vec<Task<()>>) {
    futures_lite::future::block_on(async move {
        for handle in handles {
            handle.await;
        }
    });
}

/// From inside one task, starts `n` rounds of `round` (see `rounds_from_a_task_tokio`).
fn rounds_from_a_task(n: u64, round: fn(&Arc<Executor<'static>>, Countdown)) -> Duration {
    let pool = Pool::new();
    let (countdown, done_rx) = Countdown::new(n);
    let executor = pool.executor.clone();
    let start = Instant::now();
    pool.executor
        .spawn(async move {
            for _ in 0..n {
                round(&executor, countdown.clone());
            }
        })
        .detach();
    expect_ok(done_rx.recv(), "done");
    start.elapsed()
}

/// `spawn_many_local` on async-executor.
pub fn spawn_many_local(n: u64) -> Duration {
    rounds_from_a_task(n, |executor, countdown| {
        executor
            .spawn(async move { countdown.finish_one() })
            .detach();
    })
}

fn spawn_remote_and_await(executor: &Executor<'static>, n: u64) {
    let handles = (0..n).map(|_| executor.spawn(async {})).collect();
    await_all(handles);
}

/// `spawn_many_remote_idle` on async-executor.
pub fn spawn_many_remote_idle(n: u64) -> Duration {
    let pool = Pool::new();
    let start = Instant::now();
    spawn_remote_and_await(&pool.executor, n);
    start.elapsed()
}

/// `spawn_many_remote_busy` on async-executor.
pub fn spawn_many_remote_busy(n: u64) -> Duration {
    let pool = Pool::new();
    let busy = Arc::new(AtomicBool::new(true));
    for _ in 0..RT_WORKERS * 2 {
        let busy = busy.clone();
        pool.executor
            .spawn(async move {
                while busy.load(Ordering::Relaxed) {
                    yield_once().await;
                }
            })
            .detach();
    }
    let start = Instant::now();
    spawn_remote_and_await(&pool.executor, n);
    let elapsed = start.elapsed();
    busy.store(false, Ordering::Relaxed);
    elapsed
}

/// `yield_many` on async-executor.
pub fn yield_many(tasks: u64, per_task: u64) -> Duration {
    let pool = Pool::new();
    let start = Instant::now();
    let handles = (0..tasks)
        .map(|_| {
            pool.executor.spawn(async move {
                for _ in 0..per_task {
                    yield_once().await;
                }
            })
        })
        .collect();
    await_all(handles);
    start.elapsed()
}

/// `ping_pong` on async-executor.
pub fn ping_pong(n: u64) -> Duration {
    rounds_from_a_task(n, |executor, countdown| {
        let inner = executor.clone();
        executor
            .spawn(async move {
                let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
                let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
                inner
                    .spawn(async move {
                        let _ = rx1.await;
                        let _ = tx2.send(());
                    })
                    .detach();
                let _ = tx1.send(());
                let _ = rx2.await;
                countdown.finish_one();
            })
            .detach();
    })
}

fn chain(executor: Arc<Executor<'static>>, done_tx: mpsc::SyncSender<()>, n: u64) {
    if n == 0 {
        let _ = done_tx.send(());
    } else {
        let next = executor.clone();
        executor
            .spawn(async move { chain(next, done_tx, n - 1) })
            .detach();
    }
}

/// `chained_spawn` on async-executor.
pub fn chained_spawn(n: u64) -> Duration {
    let pool = Pool::new();
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let executor = pool.executor.clone();
    let start = Instant::now();
    pool.executor
        .spawn(async move { chain(executor, done_tx, n) })
        .detach();
    expect_ok(done_rx.recv(), "done");
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each body runs to completion (the countdowns and channels it waits on are reached).
    #[test]
    fn every_body_finishes() {
        spawn_many_local(100);
        spawn_many_remote_idle(100);
        spawn_many_remote_busy(100);
        yield_many(10, 10);
        ping_pong(20);
        chained_spawn(20);
    }
}
