//! async-executor's [`LocalExecutor`] on the single-loop workloads: the peer for the rows of
//! [`crate::spindle_side`] and [`crate::combinators_spindle`] that run tasks on one thread.
//! Each executor is driven by `futures_lite::future::block_on(executor.run(..))` (its
//! documented way) or, for tasks spawned before it runs, by `try_tick` until none is left.

use std::cell::Cell;
use std::rc::Rc;

use async_executor::{LocalExecutor, Task};

use crate::clock::{Clock, Sample};
use crate::yield_once;

/// Runs `root(&executor)` to completion on a fresh `LocalExecutor` on this thread.
fn block_on_local<T>(root: impl AsyncFnOnce(&LocalExecutor<'static>) -> T) -> T {
    let executor = LocalExecutor::new();
    futures_lite::future::block_on(executor.run(root(&executor)))
}

/// `spawn_many_local`: from inside the executor, spawn `n` empty tasks, then await them all.
pub fn spawn_many_local(n: u64) -> Sample {
    let clock = Clock::start();
    block_on_local(async |ex| {
        let tasks: Vec<Task<()>> = (0..n).map(|_| ex.spawn(async {})).collect();
        for t in tasks {
            t.await;
        }
    });
    clock.stop()
}

/// `spawn_1m_then_run`: `n` trivial tasks (each incrementing a counter) spawned and detached
/// from outside the executor, then run with `try_tick` until none is left.
pub fn spawn_then_run(n: u64) -> Sample {
    let executor = LocalExecutor::new();
    let counter = Rc::new(Cell::new(0u64));
    let clock = Clock::start();
    for _ in 0..n {
        let c = counter.clone();
        executor.spawn(async move { c.set(c.get() + 1) }).detach();
    }
    while executor.try_tick() {}
    let sample = clock.stop();
    assert_eq!(counter.get(), n);
    sample
}

/// `yield_many`: `tasks` tasks each awaiting [`crate::YieldOnce`] `yields` times, all awaited.
pub fn yield_many(tasks: u64, yields: u64) -> Sample {
    let clock = Clock::start();
    block_on_local(async |ex| {
        let handles: Vec<Task<()>> = (0..tasks)
            .map(|_| {
                ex.spawn(async move {
                    for _ in 0..yields {
                        yield_once().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await;
        }
    });
    clock.stop()
}

/// `gather_ready_tasks`: `n` tasks that return at once, their handles awaited in order.
pub fn gather_in_order(n: u64) -> Sample {
    let clock = Clock::start();
    let sum = block_on_local(async |ex| {
        let tasks: Vec<Task<u64>> = (0..n).map(|i| ex.spawn(async move { i })).collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await;
        }
        sum
    });
    let sample = clock.stop();
    assert_eq!(sum, crate::sum_below(n));
    sample
}

/// `yield_now_loop`: one task awaits `futures_lite::future::yield_now` `n` times.
pub fn yield_now_loop(n: u64) -> Sample {
    let clock = Clock::start();
    let count = block_on_local(async |ex| {
        ex.spawn(async move {
            let mut count = 0u64;
            for _ in 0..n {
                futures_lite::future::yield_now().await;
                count += 1;
            }
            count
        })
        .await
    });
    let sample = clock.stop();
    assert_eq!(count, n);
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_executor_workloads_run_small() {
        spawn_many_local(100);
        spawn_then_run(100);
        yield_many(10, 10);
        gather_in_order(100);
        yield_now_loop(100);
    }
}
