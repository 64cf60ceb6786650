//! A runtime of N workers, each running its own asyncio-style loop: `Send` tasks are balanced
//! across the loops by work stealing, `!Send` tasks stay where they were started, and each
//! worker reports what it ran and how much it stole.
//!
//! `cargo run --release --example workers [N]` (N workers; 2 when N is missing or does not
//! parse). The count is always passed to the builder, so `SPINDLE_WORKERS` is not read here.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use spindle::{get_running_loop, PolicyError, Runtime};

/// Busy work a task does between awaits, so stealing has something to balance.
fn crunch(rounds: u64) -> u64 {
    (0..rounds).fold(0u64, |acc, i| acc.wrapping_mul(31).wrapping_add(i ^ 0x5bd1))
}

fn main() -> Result<(), PolicyError> {
    let workers = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let rt = Runtime::builder()
        .worker_threads(workers)
        .thread_name("worker")
        .build()?;
    println!("runtime with {} workers", rt.worker_threads());

    // 1. Every worker's loop is a full asyncio loop: call_soon / call_later work there.
    for worker in 0..rt.worker_threads() {
        let line = rt
            .spawn_on(worker, move || async move {
                let lp = get_running_loop().expect("a worker runs a loop");
                let fut = lp.create_future::<String>();
                let setter = fut.clone();
                let id = lp.id();
                lp.call_later(Duration::from_millis(5), move || {
                    let who = thread::current().name().unwrap_or("?").to_string();
                    let _ = setter.set_result(format!("loop {id} on {who}: call_later fired"));
                })
                .expect("open loop");
                fut.await.unwrap_or_else(|e| e.to_string())
            })
            .map_err(|e| e.reason().clone())?
            .result()
            .unwrap_or_else(|e| e.to_string());
        println!("  {line}");
    }

    // 2. A burst of Send tasks spawned from one worker: the others steal their share.
    let per_thread: Arc<Vec<AtomicU64>> = Arc::new(
        (0..rt.worker_threads())
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let counts = per_thread.clone();
    let started = Instant::now();
    let total = rt
        .spawn_on(0, move || async move {
            let tasks: Vec<_> = (0..2_000)
                .map(|i| {
                    let counts = counts.clone();
                    spindle::spawn(async move {
                        let name = thread::current().name().unwrap_or("").to_string();
                        if let Some(index) = name
                            .rsplit('-')
                            .next()
                            .and_then(|n| n.parse::<usize>().ok())
                        {
                            counts[index].fetch_add(1, Ordering::Relaxed);
                        }
                        crunch(2_000 + i % 7)
                    })
                    .expect("runtime is up")
                })
                .collect();
            let mut sum = 0u64;
            for task in tasks {
                sum = sum.wrapping_add(task.await.unwrap_or(0));
            }
            sum
        })
        .map_err(|e| e.reason().clone())?
        .result()
        .unwrap_or(0);
    println!(
        "2,000 Send tasks spawned on worker 0 finished in {:.1} ms (checksum {total:x})",
        started.elapsed().as_secs_f64() * 1e3
    );

    // 3. !Send tasks never move: an Rc stays on the worker that created it.
    let stayed = rt
        .spawn_on(rt.worker_threads() - 1, || async {
            let here = thread::current().id();
            let shared = Rc::new(std::cell::Cell::new(0));
            let tasks: Vec<_> = (0..100)
                .map(|_| {
                    let shared = shared.clone();
                    spindle::spawn_local(async move {
                        shared.set(shared.get() + 1);
                        thread::current().id() == here
                    })
                    .expect("running loop")
                })
                .collect();
            let mut all_here = true;
            for t in tasks {
                all_here &= t.await.unwrap_or(false);
            }
            all_here && shared.get() == 100
        })
        .map_err(|e| e.reason().clone())?
        .result()
        .unwrap_or(false);
    println!("100 !Send tasks all ran on the worker that created them: {stayed}");

    // 4. What each worker ran and stole.
    println!("per worker:");
    for (m, ran_here) in rt.metrics().iter().zip(per_thread.iter()) {
        println!(
            "  worker {}: ran {} task steps ({} of the burst), stole {} times ({} tasks), \
             parked {} times, loop callbacks {}",
            m.worker,
            m.tasks_polled,
            ran_here.load(Ordering::Relaxed),
            m.steals,
            m.stolen_tasks,
            m.times_parked,
            m.callbacks_run
        );
    }
    rt.shutdown();
    println!("shut down: every loop stopped, every task dropped on its own thread");
    Ok(())
}
