//! The `spindle::sync` rows of `compare` (issue 16), both sides in one file:
//!
//! - `queue_pingpong`: a bounded queue of 1 carries `n` items from one task to another on one
//!   loop; spindle's `Queue::new(1)` against tokio's `mpsc::channel(1)` on a current_thread
//!   runtime. Producer and consumer are both spawned tasks on each side.
//! - `mutex_contended`: `tasks` tasks on 2 workers each take and release a lock `rounds` times,
//!   incrementing a shared counter inside; spindle's `Lock` (FIFO, asyncio's) against
//!   `tokio::sync::Mutex` (FIFO as well) on tokio's multi-thread runtime.
//!
//! Building (warming, settling) and shutting down the runtimes stay outside the clock; each
//! side checks its result after it and reports wall and CPU time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use spindle::sync::{Lock, Queue};

use crate::clock::{Clock, Sample};
use crate::spindle_side::{close, new_loop};
use crate::workload::Workload;
use crate::{expect_ok, sum_below, RT_WORKERS};

/// Items carried by `queue_pingpong`.
pub const QUEUE_PINGPONG_N: u64 = 1_000_000;
/// Tasks of `mutex_contended`.
pub const MUTEX_TASKS: u64 = 8;
/// Lock/unlock pairs per task in `mutex_contended`.
pub const MUTEX_ROUNDS: u64 = 100_000;

/// `queue_pingpong` on one spindle loop.
pub fn queue_pingpong(n: u64) -> Sample {
    let lp = new_loop();
    let spawner = lp.clone();
    let clock = Clock::start();
    let sum = expect_ok(
        lp.run_until_complete(async move {
            let queue = Arc::new(Queue::new(1));
            let rx = queue.clone();
            let consumer = expect_ok(
                spawner.create_task(async move {
                    let mut sum = 0;
                    for _ in 0..n {
                        sum += expect_ok(rx.get().await, "get");
                    }
                    sum
                }),
                "create_task",
            );
            let producer = expect_ok(
                spawner.create_task(async move {
                    for i in 0..n {
                        expect_ok(queue.put(i).await, "put");
                    }
                }),
                "create_task",
            );
            expect_ok(producer.await, "producer");
            expect_ok(consumer.await, "consumer")
        }),
        "run_until_complete",
    );
    let sample = clock.stop();
    assert_eq!(sum, sum_below(n));
    close(lp);
    sample
}

/// `queue_pingpong` on tokio's current_thread runtime with `mpsc::channel(1)`.
pub fn queue_pingpong_tokio(n: u64) -> Sample {
    let rt = crate::peers::tokio_current_thread();
    let clock = Clock::start();
    let sum = rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let consumer = tokio::spawn(async move {
            let mut sum = 0;
            for _ in 0..n {
                sum += rx.recv().await.expect("recv");
            }
            sum
        });
        let producer = tokio::spawn(async move {
            for i in 0..n {
                expect_ok(tx.send(i).await, "send");
            }
        });
        expect_ok(producer.await, "producer");
        expect_ok(consumer.await, "consumer")
    });
    let sample = clock.stop();
    assert_eq!(sum, sum_below(n));
    sample
}

/// `mutex_contended` on a spindle runtime of [`RT_WORKERS`] workers.
pub fn mutex_contended(tasks: u64, rounds: u64) -> Sample {
    // Built, warmed up and settled as every runtime row's.
    let rt = crate::runtime_spindle::runtime(RT_WORKERS);
    let lock = Arc::new(Lock::new());
    // Only the lock holder touches the counter: a load and a store, as `*guard += 1`.
    let counter = Arc::new(AtomicU64::new(0));
    let c = counter.clone();
    let clock = Clock::start();
    expect_ok(
        rt.block_on(async move {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let (lock, c) = (lock.clone(), c.clone());
                    expect_ok(
                        spindle::spawn(async move {
                            for _ in 0..rounds {
                                let _guard = lock.lock().await;
                                c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                            }
                        }),
                        "spawn",
                    )
                })
                .collect();
            for h in handles {
                expect_ok(h.await, "task");
            }
        }),
        "block_on",
    );
    let sample = clock.stop();
    rt.shutdown();
    assert_eq!(counter.load(Ordering::SeqCst), tasks * rounds);
    sample
}

/// `mutex_contended` on tokio's multi-thread runtime with `tokio::sync::Mutex`.
pub fn mutex_contended_tokio(tasks: u64, rounds: u64) -> Sample {
    let rt = crate::runtime_peers::tokio_rt(RT_WORKERS);
    let counter = Arc::new(tokio::sync::Mutex::new(0u64));
    let c = counter.clone();
    let clock = Clock::start();
    rt.block_on(async move {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move {
                    for _ in 0..rounds {
                        *c.lock().await += 1;
                    }
                })
            })
            .collect();
        for h in handles {
            expect_ok(h.await, "task");
        }
    });
    let sample = clock.stop();
    let total = *rt.block_on(counter.lock());
    drop(rt);
    assert_eq!(total, tasks * rounds);
    sample
}

/// The rows of this file, for `rows::all`.
pub fn rows() -> Vec<Workload> {
    vec![
        Workload::new("queue_pingpong", "item", QUEUE_PINGPONG_N, || {
            queue_pingpong(QUEUE_PINGPONG_N)
        })
        .peer("tokio_mpsc_current_thread", || {
            queue_pingpong_tokio(QUEUE_PINGPONG_N)
        }),
        Workload::new(
            "mutex_contended",
            "lock/unlock",
            MUTEX_TASKS * MUTEX_ROUNDS,
            || mutex_contended(MUTEX_TASKS, MUTEX_ROUNDS),
        )
        .peer("tokio_mutex_multi_thread", || {
            mutex_contended_tokio(MUTEX_TASKS, MUTEX_ROUNDS)
        }),
    ]
}
