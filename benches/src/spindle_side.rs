//! Spindle's side of every workload.
//!
//! Every function performs one complete repetition and returns the time to
//! charge for it (see [`crate::measure`]); building and closing the loop stay
//! outside the clock. Each mirrors the function of the same workload in
//! [`crate::peers`].
//!
//! Results of spindle calls are unwrapped with [`expect_ok`], which panics with
//! the error's `Display` text.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle::{EventLoop, Task};

use crate::{expect_ok, timer_deadline, yield_once};

/// Upper bound on `stop(); run_forever()` rounds in [`drain`]; one should do.
const MAX_ROUNDS: usize = 1_000;

pub(crate) fn new_loop() -> EventLoop {
    expect_ok(EventLoop::new(), "EventLoop::new")
}

pub(crate) fn close(lp: EventLoop) {
    expect_ok(lp.close(), "EventLoop::close");
}

/// Runs loop iterations until `counter` reaches `n`.
///
/// `stop()` before `run_forever()` runs exactly one iteration, which runs every
/// callback already scheduled (and every timer already due), so the first
/// round normally finishes the job; the loop is only a guard.
fn drain(lp: &EventLoop, counter: &Cell<u64>, n: u64) {
    for _ in 0..MAX_ROUNDS {
        if counter.get() >= n {
            return;
        }
        lp.stop();
        expect_ok(lp.run_forever(), "EventLoop::run_forever");
    }
    panic!(
        "callbacks not all run after {MAX_ROUNDS} loop iterations: {} of {n}",
        counter.get()
    );
}

/// `call_soon`: schedule `n` callbacks that each increment an `Rc<Cell<u64>>`
/// (the same body as the `VecDeque` floor), then `stop(); run_forever()`.
pub fn call_soon(n: u64) -> Duration {
    let lp = new_loop();
    let counter = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    for _ in 0..n {
        let c = counter.clone();
        let _ = expect_ok(lp.call_soon(move || c.set(c.get() + 1)), "call_soon");
    }
    drain(&lp, &counter, n);
    let elapsed = start.elapsed();
    assert_eq!(counter.get(), n);
    close(lp);
    elapsed
}

/// `spawn_many_local`: inside `run_until_complete`, `create_task` `n` empty
/// tasks, then await every `Task`.
pub fn spawn_many_local(n: u64) -> Duration {
    let lp = new_loop();
    let spawner = lp.clone();
    let start = Instant::now();
    expect_ok(
        lp.run_until_complete(async move {
            let mut tasks: Vec<Task<()>> = Vec::with_capacity(n as usize);
            for _ in 0..n {
                tasks.push(expect_ok(spawner.create_task(async {}), "create_task"));
            }
            for t in tasks {
                expect_ok(t.await, "task");
            }
        }),
        "run_until_complete",
    );
    let elapsed = start.elapsed();
    close(lp);
    elapsed
}

/// A callback that stops `lp` once `counter` has reached `n`, and otherwise
/// re-schedules itself with `call_soon` (only needed if the loop runs timers
/// with equal deadlines out of insertion order).
fn stop_when_done(lp: EventLoop, counter: Rc<Cell<u64>>, n: u64) -> impl FnOnce() + 'static {
    move || {
        if counter.get() >= n {
            lp.stop();
        } else {
            let again = stop_when_done(lp.clone(), counter, n);
            let _ = expect_ok(lp.call_soon(again), "call_soon (stop check)");
        }
    }
}

/// `timers_100k`: `call_at` `n` timers with deadlines spread evenly over
/// `spread`, each incrementing a counter, plus a last timer at `t0 + spread`
/// that stops the loop; then `run_forever()`. Returns wall time (from before
/// the first `call_at`) minus `spread` (the overhead).
pub fn timers(n: u64, spread: Duration) -> Duration {
    let lp = new_loop();
    let counter = Rc::new(Cell::new(0u64));
    let t0 = Instant::now();
    for i in 0..n {
        let c = counter.clone();
        let deadline = timer_deadline(t0, i, n, spread);
        let _ = expect_ok(lp.call_at(deadline, move || c.set(c.get() + 1)), "call_at");
    }
    let stopper = stop_when_done(lp.clone(), counter.clone(), n);
    let _ = expect_ok(lp.call_at(t0 + spread, stopper), "call_at (stop)");
    expect_ok(lp.run_forever(), "EventLoop::run_forever");
    let wall = t0.elapsed();
    assert_eq!(counter.get(), n);
    close(lp);
    wall.saturating_sub(spread)
}

/// `call_later` timers that are due at once (`timers_due_100k`, and the
/// criterion `call_later_due` bench): `call_later(Duration::ZERO, ..)` `n`
/// times (each incrementing a counter), then `stop(); run_forever()`.
pub fn call_later_due(n: u64) -> Duration {
    due_timers(n, |lp, _start, _i, c| {
        let _ = expect_ok(
            lp.call_later(Duration::ZERO, move || c.set(c.get() + 1)),
            "call_later",
        );
    })
}

/// `timers_due_scrambled_100k`: as [`call_later_due`], with `call_at` and deadlines already
/// past but scrambled ([`crate::scrambled_past_deadline`]), so they arrive out of order.
pub fn call_at_due_scrambled(n: u64) -> Duration {
    due_timers(n, |lp, start, i, c| {
        let deadline = crate::scrambled_past_deadline(start, i, n);
        let _ = expect_ok(lp.call_at(deadline, move || c.set(c.get() + 1)), "call_at");
    })
}

/// The shape of the due-timer workloads: on a new loop, with the clock started at `start`,
/// `schedule(&lp, start, i, counter)` for `i` in `0..n` (each schedules one timer, already
/// due, that increments `counter`), then [`drain`]; checks all `n` ran and closes the loop.
fn due_timers<S>(n: u64, mut schedule: S) -> Duration
where
    S: FnMut(&EventLoop, Instant, u64, Rc<Cell<u64>>),
{
    let lp = new_loop();
    let counter = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    for i in 0..n {
        schedule(&lp, start, i, counter.clone());
    }
    drain(&lp, &counter, n);
    let elapsed = start.elapsed();
    assert_eq!(counter.get(), n);
    close(lp);
    elapsed
}

/// `yield_many`: inside `run_until_complete`, create `tasks` tasks that each
/// await [`crate::YieldOnce`] `yields` times (spindle has no `yield_now` yet;
/// the tokio side uses the same future), then await them all.
pub fn yield_many(tasks: u64, yields: u64) -> Duration {
    let lp = new_loop();
    let spawner = lp.clone();
    let start = Instant::now();
    expect_ok(
        lp.run_until_complete(async move {
            let mut handles: Vec<Task<()>> = Vec::with_capacity(tasks as usize);
            for _ in 0..tasks {
                let t = spawner.create_task(async move {
                    for _ in 0..yields {
                        yield_once().await;
                    }
                });
                handles.push(expect_ok(t, "create_task"));
            }
            for t in handles {
                expect_ok(t.await, "task");
            }
        }),
        "run_until_complete",
    );
    let elapsed = start.elapsed();
    close(lp);
    elapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spindle_side_runs_small() {
        call_soon(100);
        spawn_many_local(100);
        timers(100, Duration::from_millis(2));
        call_later_due(100);
        call_at_due_scrambled(100);
        yield_many(10, 10);
    }
}
