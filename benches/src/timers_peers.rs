//! The peers of [`crate::timers_spindle`]: tokio's current-thread runtime with its time driver
//! (sleeping tasks, like for like with spindle's), and a bare `BinaryHeap` floor for spindle's
//! timer callbacks.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::{Clock, Sample};

/// `n` tasks on a current-thread runtime with the time driver, task `i` sleeping until
/// `deadline(start, i)`, then counting itself (`Arc<AtomicU64>`: `tokio::spawn` needs `Send`);
/// the sample from `start` until all have counted, with `wait` as in
/// [`crate::timers_spindle::sleeping_tasks`]. Tokio's wheel has 1 ms resolution and rounds
/// deadlines up: the last timer fires up to 1 ms late, which shows in the wall figure only
/// (a parked thread burns no CPU).
pub fn sleeping_tasks_tokio(
    n: u64,
    deadline: impl Fn(Instant, u64) -> Instant,
    wait: Option<Duration>,
) -> Sample {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio current_thread runtime with time");
    let counter = Arc::new(AtomicU64::new(0));
    let done = counter.clone();
    let clock = Clock::start();
    let start = Instant::now();
    // Inside the clock (about 1 ns per timer, the same on both sides), so that the wall time
    // beyond `wait` is measured from `start`, the instant the deadlines count from.
    let deadlines: Vec<Instant> = (0..n).map(|i| deadline(start, i)).collect();
    rt.block_on(async move {
        for at in deadlines {
            let c = counter.clone();
            let at = tokio::time::Instant::from_std(at);
            // Dropping the JoinHandle detaches the task.
            drop(tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                c.fetch_add(1, Ordering::Relaxed);
            }));
        }
        if let Some(wait) = wait {
            tokio::time::sleep_until(tokio::time::Instant::from_std(start + wait)).await;
        }
        while counter.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
    });
    let sample = clock.stop();
    assert_eq!(done.load(Ordering::Relaxed), n);
    sample.minus_wall(wait.unwrap_or_default())
}

/// `call_later_due_100k` floor: push `n` already-due deadlines onto a
/// `BinaryHeap<Reverse<(Instant, u64)>>`, then pop and count them all.
pub fn due_binary_heap(n: u64) -> Sample {
    due_binary_heap_at(n, |start, _| start)
}

/// `call_at_due_scrambled_100k` floor: the scrambled past deadlines through the same heap.
pub fn due_scrambled_binary_heap(n: u64) -> Sample {
    due_binary_heap_at(n, |start, i| crate::scrambled_past_deadline(start, i, n))
}

/// Pushes deadline `deadline(start, i)` (in the past) for each `i` onto a bare binary heap,
/// then pops and counts every due one.
fn due_binary_heap_at(n: u64, deadline: impl Fn(Instant, u64) -> Instant) -> Sample {
    let counter = Cell::new(0u64);
    let clock = Clock::start();
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
    let sample = clock.stop();
    assert_eq!(counter.get(), n);
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_peers_run_small() {
        let offsets = crate::timer_offsets(100, Duration::from_millis(2), true);
        sleeping_tasks_tokio(
            100,
            |s, i| s + offsets[i as usize],
            Some(Duration::from_millis(2)),
        );
        sleeping_tasks_tokio(100, |s, _| s, None);
        due_binary_heap(100);
        due_scrambled_binary_heap(100);
    }
}
