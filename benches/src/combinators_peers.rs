//! tokio's side of the combinator workloads, on its current-thread runtime (no drivers, as in
//! [`crate::peers`]). `futures-util`'s `join_all` is the peer of `gather` (argument order, one
//! output per input; above 30 futures it drives them through a `FuturesOrdered`), and
//! `tokio::task::yield_now` the peer of `spindle::yield_now` (tokio defers that wake-up until
//! after its driver has been polled).

use crate::clock::{Clock, Sample};

use futures_util::future::join_all;

use crate::peers::tokio_current_thread;

/// `gather_ready_tasks` on tokio: inside `block_on`, spawn `n` tasks that return at once, then
/// `join_all` their `JoinHandle`s and check the sum.
pub fn gather_ready_tasks_join_all(n: u64) -> Sample {
    let rt = tokio_current_thread();
    let clock = Clock::start();
    let sum = rt.block_on(async move {
        let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
        join_all(handles)
            .await
            .into_iter()
            .map(|r| r.expect("tokio task"))
            .sum::<u64>()
    });
    let sample = clock.stop();
    assert_eq!(sum, crate::sum_below(n));
    sample
}

/// `gather_ready_tasks` on tokio without a combinator: spawn `n` tasks that return at once,
/// then await their `JoinHandle`s in order and check the sum.
pub fn gather_ready_tasks_in_order(n: u64) -> Sample {
    let rt = tokio_current_thread();
    let clock = Clock::start();
    let sum = rt.block_on(async move {
        let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.expect("tokio task");
        }
        sum
    });
    let sample = clock.stop();
    assert_eq!(sum, crate::sum_below(n));
    sample
}

/// `yield_now_loop` on tokio: one spawned task awaits `tokio::task::yield_now` `n` times.
pub fn yield_now_loop_tokio(n: u64) -> Sample {
    let rt = tokio_current_thread();
    let clock = Clock::start();
    let count = rt.block_on(async move {
        tokio::spawn(async move {
            let mut count = 0u64;
            for _ in 0..n {
                tokio::task::yield_now().await;
                count += 1;
            }
            count
        })
        .await
        .expect("tokio task")
    });
    let sample = clock.stop();
    assert_eq!(count, n);
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinator_peers_run_small() {
        gather_ready_tasks_join_all(100);
        gather_ready_tasks_in_order(100);
        yield_now_loop_tokio(100);
    }
}
