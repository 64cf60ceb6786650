//! tokio's side of the combinator workloads, on its current-thread runtime (no drivers, as in
//! [`crate::peers`]). `futures-util`'s `join_all` is the peer of `gather` (argument order, one
//! output per input; above 30 futures it drives them through a `FuturesOrdered`), and
//! `tokio::task::yield_now` the peer of `spindle::yield_now` (tokio defers that wake-up until
//! after its driver has been polled).

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::peers::tokio_current_thread;

/// `gather_ready_tasks` on tokio: inside `block_on`, spawn `n` tasks that return at once, then
/// `join_all` their `JoinHandle`s and check the sum.
pub fn gather_ready_tasks_join_all(n: u64) -> Duration {
    let rt = tokio_current_thread();
    let start = Instant::now();
    let sum = rt.block_on(async move {
        let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
        join_all(handles)
            .await
            .into_iter()
            .map(|r| r.expect("tokio task"))
            .sum::<u64>()
    });
    let elapsed = start.elapsed();
    assert_eq!(sum, crate::sum_below(n));
    elapsed
}

/// `yield_now_loop` on tokio: one spawned task awaits `tokio::task::yield_now` `n` times.
pub fn yield_now_loop_tokio(n: u64) -> Duration {
    let rt = tokio_current_thread();
    let start = Instant::now();
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
    let elapsed = start.elapsed();
    assert_eq!(count, n);
    elapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinator_peers_run_small() {
        gather_ready_tasks_join_all(100);
        yield_now_loop_tokio(100);
    }
}
