//! Spindle's side of the combinator workloads: `gather` over ready tasks and a `yield_now`
//! loop. Each function mirrors the one of the same name in [`crate::combinators_peers`];
//! building and closing the loop stay outside the clock.

use crate::clock::{Clock, Sample};

use spindle::{gather_tasks, yield_now, Task};

use crate::expect_ok;
use crate::spindle_side::{close, new_loop};

/// `gather_ready_tasks`: inside `run_until_complete`, create `n` tasks that return at once,
/// then `gather_tasks` them (results in argument order) and check the sum. The clock covers
/// spawning, running and gathering.
pub fn gather_ready_tasks(n: u64) -> Sample {
    let lp = new_loop();
    let spawner = lp.clone();
    let clock = Clock::start();
    let sum = expect_ok(
        lp.run_until_complete(async move {
            let tasks: Vec<Task<u64>> = (0..n)
                .map(|i| expect_ok(spawner.create_task(async move { i }), "create_task"))
                .collect();
            let values = expect_ok(gather_tasks(tasks).await, "gather");
            values.iter().sum::<u64>()
        }),
        "run_until_complete",
    );
    let sample = clock.stop();
    assert_eq!(sum, crate::sum_below(n));
    close(lp);
    sample
}

/// `yield_now_loop`: one task awaits [`spindle::yield_now`] `n` times.
pub fn yield_now_loop(n: u64) -> Sample {
    let lp = new_loop();
    let clock = Clock::start();
    let count = expect_ok(
        lp.run_until_complete(async move {
            let mut count = 0u64;
            for _ in 0..n {
                yield_now().await;
                count += 1;
            }
            count
        }),
        "run_until_complete",
    );
    let sample = clock.stop();
    assert_eq!(count, n);
    close(lp);
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinator_workloads_run_small() {
        gather_ready_tasks(100);
        yield_now_loop(100);
    }
}
