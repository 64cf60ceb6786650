//! Where the second worker's cost on `rt_spawn_many_local` goes (#10): the row's workload on a
//! 2-worker runtime, run 20 times, each run printed with the time per task and, per worker,
//! the steps it ran and what it stole (from [`spindle::Runtime::metrics`]).
//!
//! ```text
//! cargo run --release -p spindle-benches --example steal_probe [RUNS]
//! ```
//!
//! What it shows on the 2-core VM of the README: the runs split in two. In the slow ones the
//! idle worker starts stealing while the spawner is still in its spawning step and runs nearly
//! every task (batches of a few, stolen right behind the pushes), so each task's cell and the
//! workload's shared counters move between the cores; in the fast ones it comes late and runs
//! a few hundred to a couple of thousand.

use std::time::Instant;

use spindle_benches::{runtime_spindle, Countdown, RT_SPAWN_N};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(20, |arg| arg.parse().expect("RUNS: a number"));
    for _ in 0..runs {
        // Built, warmed up and settled as the row's runtime is.
        let rt = runtime_spindle::runtime(2);
        let before = rt.metrics();
        let (countdown, done) = Countdown::new(RT_SPAWN_N);
        let start = Instant::now();
        let spawner = rt
            .spawn(async move {
                for _ in 0..RT_SPAWN_N {
                    let countdown = countdown.clone();
                    drop(spindle::spawn(async move { countdown.finish_one() }).expect("spawn"));
                }
            })
            .expect("spawn");
        done.recv().expect("every task ran");
        let elapsed = start.elapsed();
        drop(spawner);
        let per_worker: Vec<String> = rt
            .metrics()
            .iter()
            .zip(&before)
            .map(|(after, before)| {
                format!(
                    "worker {}: ran {:5}, steals {:4}, stolen {:5}",
                    after.worker,
                    after.tasks_polled - before.tasks_polled,
                    after.steals - before.steals,
                    after.stolen_tasks - before.stolen_tasks,
                )
            })
            .collect();
        println!(
            "{:6.1} ns/task | {}",
            elapsed.as_nanos() as f64 / RT_SPAWN_N as f64,
            per_worker.join(" | ")
        );
        rt.shutdown();
    }
}
