//! Spindle's side of every workload.
//!
//! Every function performs one complete repetition and returns the time to
//! charge for it (see [`crate::workload::measure_interleaved`]); building and closing the loop stay
//! outside the clock. Each mirrors the function of the same workload in
//! [`crate::peers`].
//!
//! Results of spindle calls are unwrapped with [`expect_ok`], which panics with
//! the error's `Display` text.

use std::cell::Cell;
use std::rc::Rc;

use spindle::{EventLoop, Task};

use crate::clock::{Clock, Sample};
use crate::{expect_ok, yield_once};

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
pub(crate) fn drain(lp: &EventLoop, counter: &Cell<u64>, n: u64) {
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
pub fn call_soon(n: u64) -> Sample {
    let lp = new_loop();
    let counter = Rc::new(Cell::new(0u64));
    let clock = Clock::start();
    for _ in 0..n {
        let c = counter.clone();
        let _ = expect_ok(lp.call_soon(move || c.set(c.get() + 1)), "call_soon");
    }
    drain(&lp, &counter, n);
    let sample = clock.stop();
    assert_eq!(counter.get(), n);
    close(lp);
    sample
}

/// `spawn_many_local`: inside `run_until_complete`, `create_task` `n` empty
/// tasks, then await every `Task`.
pub fn spawn_many_local(n: u64) -> Sample {
    let lp = new_loop();
    let spawner = lp.clone();
    let clock = Clock::start();
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
    let sample = clock.stop();
    close(lp);
    sample
}

/// `spawn_1m_then_run`: from outside the loop, `create_task` `n` trivial tasks (each
/// incrementing a counter; handles dropped, which detaches), then `stop(); run_forever()`
/// until all have run.
pub fn spawn_then_run(n: u64) -> Sample {
    let lp = new_loop();
    let counter = Rc::new(Cell::new(0u64));
    let clock = Clock::start();
    for _ in 0..n {
        let c = counter.clone();
        drop(expect_ok(
            lp.create_task(async move { c.set(c.get() + 1) }),
            "create_task",
        ));
    }
    drain(&lp, &counter, n);
    let sample = clock.stop();
    close(lp);
    sample
}

/// `yield_many`: inside `run_until_complete`, create `tasks` tasks that each
/// await [`crate::YieldOnce`] `yields` times (spindle has no `yield_now` yet;
/// the tokio side uses the same future), then await them all.
pub fn yield_many(tasks: u64, yields: u64) -> Sample {
    let lp = new_loop();
    let spawner = lp.clone();
    let clock = Clock::start();
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
    let sample = clock.stop();
    close(lp);
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spindle_side_runs_small() {
        call_soon(100);
        spawn_many_local(100);
        spawn_then_run(100);
        yield_many(10, 10);
    }
}
