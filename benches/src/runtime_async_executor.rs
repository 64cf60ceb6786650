//! The second peer of [`crate::runtime_spindle`]: `async-executor`'s work-stealing
//! [`Executor`], run by `workers` threads (each in
//! `futures_lite::future::block_on(executor.run(..))`, the crate's documented way to run it on
//! several threads). The bodies are those of [`crate::runtime_peers`]; async-executor has no
//! ambient spawn, so a task that spawns captures the executor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use async_executor::{Executor, Task};

use crate::clock::{Clock, Sample};
use crate::{expect_ok, settle, yield_once, Countdown, WARM_UP_TASKS};

/// An executor and the threads running it; dropping it stops and joins them.
struct Pool {
    executor: Arc<Executor<'static>>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// `workers` threads running a new executor, warmed up and settled.
    fn new(workers: usize) -> Pool {
        let executor = Arc::new(Executor::new());
        let (stops, threads) = (0..workers)
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
        let pool = Pool {
            executor,
            stops,
            threads,
        };
        let warm = (0..WARM_UP_TASKS)
            .map(|_| pool.executor.spawn(yield_once()))
            .collect();
        await_all(warm);
        settle();
        pool
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
fn rounds_from_a_task(
    workers: usize,
    n: u64,
    round: fn(&Arc<Executor<'static>>, Countdown),
) -> Sample {
    let pool = Pool::new(workers);
    let (countdown, done_rx) = Countdown::new(n);
    let executor = pool.executor.clone();
    let clock = Clock::start();
    pool.executor
        .spawn(async move {
            for _ in 0..n {
                round(&executor, countdown.clone());
            }
        })
        .detach();
    expect_ok(done_rx.recv(), "done");
    clock.stop()
}

/// `spawn_many_local` on async-executor.
pub fn spawn_many_local(workers: usize, n: u64) -> Sample {
    rounds_from_a_task(workers, n, |executor, countdown| {
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
pub fn spawn_many_remote_idle(workers: usize, n: u64) -> Sample {
    let pool = Pool::new(workers);
    let clock = Clock::start();
    spawn_remote_and_await(&pool.executor, n);
    clock.stop()
}

/// `spawn_many_remote_busy` on async-executor.
pub fn spawn_many_remote_busy(workers: usize, n: u64) -> Sample {
    let pool = Pool::new(workers);
    let busy = Arc::new(AtomicBool::new(true));
    for _ in 0..workers * 2 {
        let busy = busy.clone();
        pool.executor
            .spawn(async move {
                while busy.load(Ordering::Relaxed) {
                    yield_once().await;
                }
            })
            .detach();
    }
    let clock = Clock::start();
    spawn_remote_and_await(&pool.executor, n);
    let sample = clock.stop();
    busy.store(false, Ordering::Relaxed);
    sample
}

/// `yield_many` on async-executor.
pub fn yield_many(workers: usize, tasks: u64, per_task: u64) -> Sample {
    let pool = Pool::new(workers);
    let clock = Clock::start();
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
    clock.stop()
}

/// `ping_pong` on async-executor.
pub fn ping_pong(workers: usize, n: u64) -> Sample {
    rounds_from_a_task(workers, n, |executor, countdown| {
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
pub fn chained_spawn(workers: usize, n: u64) -> Sample {
    let pool = Pool::new(workers);
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let executor = pool.executor.clone();
    let clock = Clock::start();
    pool.executor
        .spawn(async move { chain(executor, done_tx, n) })
        .detach();
    expect_ok(done_rx.recv(), "done");
    clock.stop()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each body runs to completion (the countdowns and channels it waits on are reached).
    #[test]
    fn every_body_finishes() {
        for workers in [1, 2] {
            spawn_many_local(workers, 100);
            spawn_many_remote_idle(workers, 100);
            spawn_many_remote_busy(workers, 100);
            yield_many(workers, 10, 10);
            ping_pong(workers, 20);
            chained_spawn(workers, 20);
        }
    }
}
