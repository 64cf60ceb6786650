//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use spindle_loop::{yield_now, Task};
use spindle_policy::Runtime;

/// Runs `fut` on a fresh loop on this thread.
pub fn run<F: Future + 'static>(fut: F) -> F::Output
where
    F::Output: 'static,
{
    spindle_policy::run(fut).expect("the loop runs")
}

/// Lets the other ready tasks of this loop run `n` times.
pub async fn settle(n: usize) {
    for _ in 0..n {
        yield_now().await;
    }
}

/// A local task on the running loop.
pub fn local<F: Future + 'static>(fut: F) -> Task<F::Output>
where
    F::Output: 'static,
{
    spindle_loop::spawn_local(fut).expect("a running loop")
}

/// A runtime of 2 workers.
pub fn runtime() -> Runtime {
    Runtime::builder()
        .worker_threads(2)
        .build()
        .expect("runtime")
}

/// Upper bound for one blocking step of a race test: a hang fails the test instead.
pub const RACE_TIMEOUT: Duration = Duration::from_secs(20);

/// Asserts at compile time that `T` is `Send + Sync`.
pub fn assert_send_sync<T: Send + Sync>() {}
