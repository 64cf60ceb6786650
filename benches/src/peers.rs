//! The peers spindle is compared against: tokio (current-thread runtime and
//! `LocalSet`), bare `async-task`, and plain-std floors.
//!
//! Every function performs one complete repetition of a workload and returns
//! the time to charge for it (see [`crate::measure`]); runtime construction and
//! teardown stay outside the clock. Each mirrors the function of the same
//! workload in [`crate::spindle_side`].

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_task::Runnable;

use crate::{timer_deadline, yield_once};

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
pub fn call_soon_vecdeque(n: u64) -> Duration {
    let counter = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    let mut queue: VecDeque<Box<dyn FnOnce()>> = VecDeque::new();
    for _ in 0..n {
        let c = counter.clone();
        queue.push_back(Box::new(move || c.set(c.get() + 1)));
    }
    while let Some(callback) = queue.pop_front() {
        callback();
    }
    let elapsed = start.elapsed();
    assert_eq!(counter.get(), n);
    elapsed
}

// --------------------------------------------------------- spawn_many_local

/// `spawn_many_local` on tokio's current-thread runtime: inside `block_on`,
/// `tokio::spawn` `n` empty tasks, then await every `JoinHandle`.
pub fn spawn_many_tokio(n: u64) -> Duration {
    let rt = tokio_current_thread();
    let start = Instant::now();
    rt.block_on(async move {
        let mut handles = Vec::with_capacity(n as usize);
        for _ in 0..n {
            handles.push(tokio::spawn(async {}));
        }
        for h in handles {
            h.await.expect("tokio task");
        }
    });
    start.elapsed()
}

/// `spawn_many_local` on a tokio `LocalSet`: inside `run_until`,
/// `spawn_local` `n` empty tasks, then await every `JoinHandle`.
pub fn spawn_many_tokio_localset(n: u64) -> Duration {
    let rt = tokio_current_thread();
    let local = tokio::task::LocalSet::new();
    let start = Instant::now();
    rt.block_on(local.run_until(async move {
        let mut handles = Vec::with_capacity(n as usize);
        for _ in 0..n {
            handles.push(tokio::task::spawn_local(async {}));
        }
        for h in handles {
            h.await.expect("tokio local task");
        }
    }));
    start.elapsed()
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
pub fn spawn_many_async_task(n: u64) -> Duration {
    let start = Instant::now();
    floor_block_on(async move {
        let mut tasks = Vec::with_capacity(n as usize);
        for _ in 0..n {
            tasks.push(floor_spawn(async {}));
        }
        for t in tasks {
            t.await;
        }
    });
    start.elapsed()
}

// -------------------------------------------------------------- timers_100k

/// `timers_100k` on tokio's current-thread runtime with the time driver: one
/// `tokio::spawn`ed task per timer doing `sleep_until(deadline)` then
/// incrementing a counter. Returns wall time minus `spread` (the overhead).
///
/// The counter is an `Arc<AtomicU64>` (relaxed, uncontended) because
/// `tokio::spawn` needs `Send`. Tokio's timer wheel has 1 ms resolution and
/// rounds deadlines up, which shows here as up to ~1 ms / `n` per timer.
pub fn timers_tokio(n: u64, spread: Duration) -> Duration {
    let wall = tokio_timers_at(n, |t0, i| timer_deadline(t0, i, n, spread), Some(spread));
    wall.saturating_sub(spread)
}

/// `timers_100k` floor: a `BinaryHeap<Reverse<(Instant, u64)>>` of deadlines.
/// Each iteration reads the clock once, pops and counts every due entry, then
/// `std::thread::sleep`s until the next deadline. Returns wall time minus
/// `spread` (the overhead).
pub fn timers_binary_heap(n: u64, spread: Duration) -> Duration {
    let counter = Cell::new(0u64);
    let t0 = Instant::now();
    let mut heap = BinaryHeap::new();
    for i in 0..n {
        heap.push(Reverse((timer_deadline(t0, i, n, spread), i)));
    }
    loop {
        let now = Instant::now();
        while let Some(&Reverse((deadline, _))) = heap.peek() {
            if deadline > now {
                break;
            }
            heap.pop();
            counter.set(counter.get() + 1);
        }
        match heap.peek() {
            Some(&Reverse((deadline, _))) => {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            }
            None => break,
        }
    }
    let wall = t0.elapsed();
    assert_eq!(counter.get(), n);
    wall.saturating_sub(spread)
}

/// `timers_due_100k` on tokio's current-thread runtime with the time driver:
/// like [`timers_tokio`] but every task sleeps until an instant taken before
/// any was spawned, so every timer is already due. Returns the whole time.
pub fn timers_due_tokio(n: u64) -> Duration {
    tokio_timers_at(n, |start, _| start, None)
}

/// `timers_due_scrambled_100k` on tokio: as [`timers_due_tokio`], each task sleeping until its
/// own past, scrambled deadline ([`crate::scrambled_past_deadline`]).
pub fn timers_due_scrambled_tokio(n: u64) -> Duration {
    tokio_timers_at(
        n,
        |start, i| crate::scrambled_past_deadline(start, i, n),
        None,
    )
}

/// `n` tasks on a current-thread runtime with the time driver, task `i` sleeping until
/// `deadline(start, i)`, then counting itself (`Arc<AtomicU64>`: `tokio::spawn` needs `Send`);
/// the time from `start` until all have counted. With `sleep_first`, the runtime's own task
/// first sleeps that long after `start` (so it does not spin through a spread of future
/// deadlines), then yields until the last timers, which may share its deadline, have run.
fn tokio_timers_at(
    n: u64,
    deadline: impl Fn(Instant, u64) -> Instant,
    sleep_first: Option<Duration>,
) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio current_thread runtime with time");
    let counter = Arc::new(AtomicU64::new(0));
    let done = counter.clone();
    let start = Instant::now();
    rt.block_on(async move {
        for i in 0..n {
            let c = counter.clone();
            let deadline = tokio::time::Instant::from_std(deadline(start, i));
            // Dropping the JoinHandle detaches the task.
            drop(tokio::spawn(async move {
                tokio::time::sleep_until(deadline).await;
                c.fetch_add(1, Ordering::Relaxed);
            }));
        }
        if let Some(wait) = sleep_first {
            tokio::time::sleep_until(tokio::time::Instant::from_std(start + wait)).await;
        }
        while counter.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
    });
    let elapsed = start.elapsed();
    assert_eq!(done.load(Ordering::Relaxed), n);
    elapsed
}

/// `timers_due_scrambled_100k` floor: the scrambled past deadlines through a bare
/// `BinaryHeap<Reverse<(Instant, u64)>>`, pushed then popped.
pub fn timers_due_scrambled_binary_heap(n: u64) -> Duration {
    timers_due_binary_heap_at(n, |start, i| crate::scrambled_past_deadline(start, i, n))
}

/// `timers_due_100k` floor: push `n` already-due deadlines onto a
/// `BinaryHeap<Reverse<(Instant, u64)>>`, then pop and count them all.
pub fn timers_due_binary_heap(n: u64) -> Duration {
    timers_due_binary_heap_at(n, |start, _| start)
}

/// Pushes deadline `deadline(start, i)` (in the past) for each `i` onto a bare binary heap,
/// then pops and counts every due one; the whole time.
fn timers_due_binary_heap_at(n: u64, deadline: impl Fn(Instant, u64) -> Instant) -> Duration {
    let counter = Cell::new(0u64);
    let start = Instant::now();
    let mut heap = BinaryHeap::new();
    for i in 0..n {
        heap.push(Reverse((deadline(start, i), i)));
    }
    let now = Instant::now();
    while let Some(&Reverse((due, _))) = heap.peek() {
        if due > now {
            break;
        }
        heap.pop();
        counter.set(counter.get() + 1);
    }
    let elapsed = start.elapsed();
    assert_eq!(counter.get(), n);
    elapsed
}

// --------------------------------------------------------------- yield_many

/// `yield_many` on tokio's current-thread runtime: inside `block_on`, spawn
/// `tasks` tasks that each await [`crate::YieldOnce`] `yields` times, then
/// await them all. Same yield future as spindle's side.
pub fn yield_many_tokio(tasks: u64, yields: u64) -> Duration {
    yield_many_tokio_with(tasks, yields, yield_once)
}

/// `tasks` tokio tasks on a current-thread runtime, each awaiting `yield_fn()` `yields` times,
/// then all awaited; the whole time.
fn yield_many_tokio_with<Y: std::future::Future<Output = ()> + Send + 'static>(
    tasks: u64,
    yields: u64,
    yield_fn: fn() -> Y,
) -> Duration {
    let rt = tokio_current_thread();
    let start = Instant::now();
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
    start.elapsed()
}

/// [`yield_many_tokio`] with tokio's own `tokio::task::yield_now` instead of
/// [`crate::YieldOnce`], for reference: tokio defers that wake-up until after
/// its driver has been polled.
pub fn yield_many_tokio_yield_now(tasks: u64, yields: u64) -> Duration {
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
        timers_tokio(100, Duration::from_millis(2));
        timers_binary_heap(100, Duration::from_millis(2));
        timers_due_tokio(100);
        timers_due_binary_heap(100);
        timers_due_scrambled_tokio(100);
        timers_due_scrambled_binary_heap(100);
        yield_many_tokio(10, 10);
        yield_many_tokio_yield_now(10, 10);
    }
}
