//! Spindle's side of the timer workloads. Each function mirrors the one of the same shape in
//! [`crate::timers_peers`]; building and closing the loop stay outside the clock.
//!
//! The task rows (`timers_in_order_*`, `timers_shuffled_*`, `timers_due_*`) run sleeping tasks
//! on both sides: spindle tasks awaiting [`spindle::sleep_until`] against tokio tasks awaiting
//! `tokio::time::sleep_until`, each counting itself into the same `Arc<AtomicU64>` when it
//! wakes. The callback rows (`call_later_due_100k`, `call_at_due_scrambled_100k`) time
//! spindle's `call_later`/`call_at` against a bare binary heap (tokio has no timer callbacks).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spindle::{sleep_until, yield_now, EventLoop};

use crate::clock::{Clock, Sample};
use crate::expect_ok;
use crate::spindle_side::{close, drain, new_loop};

/// `n` tasks on a fresh loop, task `i` sleeping until `deadline(start, i)`, then counting
/// itself; the sample from `start` until all have counted. With `wait`, the root task first
/// sleeps until `start + wait` (so it does not spin through a spread of future deadlines) and
/// the wall time charged is what is left beyond `wait` (the overhead); then it yields until
/// the last timers have run.
pub fn sleeping_tasks(
    n: u64,
    deadline: impl Fn(Instant, u64) -> Instant,
    wait: Option<Duration>,
) -> Sample {
    let lp = new_loop();
    let spawner = lp.clone();
    let counter = Arc::new(AtomicU64::new(0));
    let done = counter.clone();
    let clock = Clock::start();
    let start = Instant::now();
    // Inside the clock (about 1 ns per timer, the same on both sides), so that the wall time
    // beyond `wait` is measured from `start`, the instant the deadlines count from.
    let deadlines: Vec<Instant> = (0..n).map(|i| deadline(start, i)).collect();
    expect_ok(
        lp.run_until_complete(async move {
            for at in deadlines {
                let c = counter.clone();
                // Dropping the handle detaches the task.
                drop(expect_ok(
                    spawner.create_task(async move {
                        sleep_until(at).await;
                        c.fetch_add(1, Ordering::Relaxed);
                    }),
                    "create_task",
                ));
            }
            if let Some(wait) = wait {
                sleep_until(start + wait).await;
            }
            while counter.load(Ordering::Relaxed) < n {
                yield_now().await;
            }
        }),
        "run_until_complete",
    );
    let sample = clock.stop();
    assert_eq!(done.load(Ordering::Relaxed), n);
    close(lp);
    sample.minus_wall(wait.unwrap_or_default())
}

/// `call_later_due_100k`: `call_later(Duration::ZERO, ..)` `n` times (each incrementing a
/// counter), then `stop(); run_forever()`. Also the criterion `call_later_due` bench.
pub fn call_later_due(n: u64) -> Sample {
    due_callbacks(n, |lp, _start, _i, c| {
        let _ = expect_ok(
            lp.call_later(Duration::ZERO, move || c.set(c.get() + 1)),
            "call_later",
        );
    })
}

/// `call_at_due_scrambled_100k`: as [`call_later_due`], with `call_at` and deadlines already
/// past but scrambled ([`crate::scrambled_past_deadline`]), so they arrive out of order.
pub fn call_at_due_scrambled(n: u64) -> Sample {
    due_callbacks(n, |lp, start, i, c| {
        let deadline = crate::scrambled_past_deadline(start, i, n);
        let _ = expect_ok(lp.call_at(deadline, move || c.set(c.get() + 1)), "call_at");
    })
}

/// The shape of the due-callback workloads: on a new loop, with the clock started at `start`,
/// `schedule(&lp, start, i, counter)` for `i` in `0..n` (each schedules one timer, already
/// due, that increments `counter`), then [`drain`]; checks all `n` ran and closes the loop.
fn due_callbacks<S>(n: u64, mut schedule: S) -> Sample
where
    S: FnMut(&EventLoop, Instant, u64, Rc<Cell<u64>>),
{
    let lp = new_loop();
    let counter = Rc::new(Cell::new(0u64));
    let clock = Clock::start();
    let start = Instant::now();
    for i in 0..n {
        schedule(&lp, start, i, counter.clone());
    }
    drain(&lp, &counter, n);
    let sample = clock.stop();
    assert_eq!(counter.get(), n);
    close(lp);
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_workloads_run_small() {
        let offsets = crate::timer_offsets(100, Duration::from_millis(2), true);
        sleeping_tasks(
            100,
            |s, i| s + offsets[i as usize],
            Some(Duration::from_millis(2)),
        );
        sleeping_tasks(100, |s, _| s, None);
        sleeping_tasks(100, |s, i| crate::scrambled_past_deadline(s, i, 100), None);
        call_later_due(100);
        call_at_due_scrambled(100);
    }
}
