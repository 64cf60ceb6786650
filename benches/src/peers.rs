//! The peers spindle is compared against: tokio (current-thread runtime and
//! `LocalSet`), bare `async-task`, and plain-std floors.
//!
//! Every function performs one complete repetition of a workload and returns
//! the time to charge for it (see [`crate::workload::measure_interleaved`]); runtime construction and
//! teardown stay outside the clock. Each mirrors the function of the same
//! workload in [`crate::spindle_side`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;

use async_task::Runnable;

use crate::clock::{Clock, Sample};
use crate::yield_once;

pub(crate) fn tokio_current_thread() -> tokio::runtime::Runtime {
    // No I/O or time driver: the leanest current-thread configuration, the one
    // tokio's own `rt_current_thread` benchmarks use.
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio current_thread runtime")
}

// ---------------------------------------------------------------- call_soon

/// `call_soon` floor: push `n` boxed closures onto a `VecDeque`, then pop and
/// call them all. The closure body (increment an `Rc<Cell<u64>>`) is the one
/// spindle's side schedules.
pub fn call_soon_vecdeque(n: u64) -> Sample {
    let counter = Rc::new(Cell::new(0u64));
    let clock = Clock::start();
    let mut queue: VecDeque<Box<dyn FnOnce()>> = VecDeque::new();
    for _ in 0..n {
        let c = counter.clone();
        queue.push_back(Box::new(move || c.set(c.get() + 1)));
    }
    while let Some(callback) = queue.pop_front() {
        callback();
    }
    let sample = clock.stop();
    assert_eq!(counter.get(), n);
    sample
}

// --------------------------------------------------------- spawn_many_local

/// `spawn_many_local` on tokio's current-thread runtime: inside `block_on`,
/// `tokio::spawn` `n` empty tasks, then await every `JoinHandle`.
pub fn spawn_many_tokio(n: u64) -> Sample {
    let rt = tokio_current_thread();
    let clock = Clock::start();
    rt.block_on(async move {
        let mut handles = Vec::with_capacity(n as usize);
        for _ in 0..n {
            handles.push(tokio::spawn(async {}));
        }
        for h in handles {
            h.await.expect("tokio task");
        }
    });
    clock.stop()
}

/// `spawn_many_local` on a tokio `LocalSet`: inside `run_until`,
/// `spawn_local` `n` empty tasks, then await every `JoinHandle`.
pub fn spawn_many_tokio_localset(n: u64) -> Sample {
    let rt = tokio_current_thread();
    let local = tokio::task::LocalSet::new();
    let clock = Clock::start();
    rt.block_on(local.run_until(async move {
        let mut handles = Vec::with_capacity(n as usize);
        for _ in 0..n {
            handles.push(tokio::task::spawn_local(async {}));
        }
        for h in handles {
            h.await.expect("tokio local task");
        }
    }));
    clock.stop()
}

thread_local! {
    /// Run queue of the bare async-task floor executor.
    static FLOOR_QUEUE: RefCell<VecDeque<Runnable>> = const { RefCell::new(VecDeque::new()) };
}

fn floor_schedule(runnable: Runnable) {
    FLOOR_QUEUE.with(|q| q.borrow_mut().push_back(runnable));
}

fn floor_spawn<F>(future: F) -> async_task::Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let (runnable, task) = async_task::spawn_local(future, floor_schedule);
    runnable.schedule();
    task
}

/// Runs the floor executor until its queue is empty. The borrow is released
/// before `run` so that polled tasks can schedule more work.
fn floor_run() {
    loop {
        let next = FLOOR_QUEUE.with(|q| q.borrow_mut().pop_front());
        match next {
            Some(runnable) => {
                runnable.run();
            }
            None => break,
        }
    }
}

/// Runs `root` to completion on the floor executor (a bare
/// `async_task::spawn_local` + `VecDeque<Runnable>` loop), starting from a fresh
/// queue so that no run inherits a previous run's capacity.
fn floor_block_on<F>(root: F)
where
    F: Future<Output = ()> + 'static,
{
    FLOOR_QUEUE.with(|q| *q.borrow_mut() = VecDeque::new());
    let task = floor_spawn(root);
    floor_run();
    assert!(task.is_finished(), "floor root task did not finish");
}

/// `spawn_many_local` floor: from inside a root task of the bare async-task
/// executor, spawn `n` empty tasks, then await them all.
pub fn spawn_many_async_task(n: u64) -> Sample {
    let clock = Clock::start();
    floor_block_on(async move {
        let mut tasks = Vec::with_capacity(n as usize);
        for _ in 0..n {
            tasks.push(floor_spawn(async {}));
        }
        for t in tasks {
            t.await;
        }
    });
    clock.stop()
}

/// `spawn_1m_then_run` floor: `n` trivial tasks (each incrementing a counter) spawned onto the
/// bare async-task executor from outside any task, then run.
pub fn spawn_then_run_async_task(n: u64) -> Sample {
    FLOOR_QUEUE.with(|q| *q.borrow_mut() = VecDeque::new());
    let counter = Rc::new(Cell::new(0u64));
    let clock = Clock::start();
    for _ in 0..n {
        let c = counter.clone();
        floor_spawn(async move { c.set(c.get() + 1) }).detach();
    }
    floor_run();
    let sample = clock.stop();
    assert_eq!(counter.get(), n);
    sample
}

// --------------------------------------------------------------- yield_many

/// `yield_many` on tokio's current-thread runtime: inside `block_on`, spawn
/// `tasks` tasks that each await [`crate::YieldOnce`] `yields` times, then
/// await them all. Same yield future as spindle's side.
pub fn yield_many_tokio(tasks: u64, yields: u64) -> Sample {
    yield_many_tokio_with(tasks, yields, yield_once)
}

/// `tasks` tokio tasks on a current-thread runtime, each awaiting `yield_fn()` `yields` times,
/// then all awaited; the whole time.
fn yield_many_tokio_with<Y: std::future::Future<Output = ()> + Send + 'static>(
    tasks: u64,
    yields: u64,
    yield_fn: fn() -> Y,
) -> Sample {
    let rt = tokio_current_thread();
    let clock = Clock::start();
    rt.block_on(async move {
        let mut handles = Vec::with_capacity(tasks as usize);
        for _ in 0..tasks {
            handles.push(tokio::spawn(async move {
                for _ in 0..yields {
                    yield_fn().await;
                }
            }));
        }
        for h in handles {
            h.await.expect("tokio task");
        }
    });
    clock.stop()
}

/// [`yield_many_tokio`] with tokio's own `tokio::task::yield_now` instead of
/// [`crate::YieldOnce`], for reference: tokio defers that wake-up until after
/// its driver has been polled.
pub fn yield_many_tokio_yield_now(tasks: u64, yields: u64) -> Sample {
    yield_many_tokio_with(tasks, yields, tokio::task::yield_now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_run_small() {
        call_soon_vecdeque(100);
        spawn_many_tokio(100);
        spawn_many_tokio_localset(100);
        spawn_many_async_task(100);
        spawn_then_run_async_task(100);
        yield_many_tokio(10, 10);
        yield_many_tokio_yield_now(10, 10);
    }
}
