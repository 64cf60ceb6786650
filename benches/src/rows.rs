//! The rows `compare` runs, in order: one list per concern, [`all`] concatenates them.
//!
//! To add rows, write the sides as functions returning a [`Sample`] (spindle's in one module,
//! the peers' in another, each keeping setup outside its [`Clock`]), then
//! a list here (or in your own module) that makes them [`Workload`]s, and append that list in
//! [`all`]:
//!
//! ```
//! use spindle_benches::clock::Clock;
//! use spindle_benches::workload::Workload;
//!
//! fn my_rows() -> Vec<Workload> {
//!     vec![Workload::new("my_row", "op", 1_000, || Clock::start().stop())
//!         .peer("tokio_something", || Clock::start().stop())]
//! }
//! assert_eq!(my_rows()[0].sides[1].name, "tokio_something");
//! ```
//!
//! Every side of every row reports wall and CPU time; a ratio is judged on the metric its
//! target in `compare` names.

use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Duration;

use crate::clock::Sample;
use crate::workload::{Workload, ONE_WORKER};
use crate::*;

/// Every row, in the order `compare` measures and prints them.
pub fn all() -> Vec<Workload> {
    [
        single_loop(),
        timers(),
        bridge(),
        combinators(),
        runtime(),
        crate::sync_rows::rows(),
        crate::io_rows::rows(),
        crate::server_rows::rows(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Tasks and callbacks on one loop.
pub fn single_loop() -> Vec<Workload> {
    vec![
        Workload::new("call_soon", "callback", CALL_SOON_N, || {
            spindle_side::call_soon(CALL_SOON_N)
        })
        .peer("vecdeque_floor", || peers::call_soon_vecdeque(CALL_SOON_N)),
        Workload::new("spawn_many_local", "task", SPAWN_N, || {
            spindle_side::spawn_many_local(SPAWN_N)
        })
        .peer("tokio_current_thread", || peers::spawn_many_tokio(SPAWN_N))
        .peer("tokio_localset", || {
            peers::spawn_many_tokio_localset(SPAWN_N)
        })
        .peer("async_executor_local", || {
            local_executor::spawn_many_local(SPAWN_N)
        })
        .peer("async_task_floor", || peers::spawn_many_async_task(SPAWN_N)),
        Workload::new("spawn_1m_then_run", "task", SPAWN_1M_N, || {
            spindle_side::spawn_then_run(SPAWN_1M_N)
        })
        .peer("async_executor_local", || {
            local_executor::spawn_then_run(SPAWN_1M_N)
        })
        .peer("async_task_floor", || {
            peers::spawn_then_run_async_task(SPAWN_1M_N)
        }),
        Workload::new("yield_many", "yield", YIELD_TASKS * YIELD_PER_TASK, || {
            spindle_side::yield_many(YIELD_TASKS, YIELD_PER_TASK)
        })
        // Same YieldOnce future on every side: the like-for-like rows.
        .peer("tokio_current_thread", || {
            peers::yield_many_tokio(YIELD_TASKS, YIELD_PER_TASK)
        })
        .peer("async_executor_local", || {
            local_executor::yield_many(YIELD_TASKS, YIELD_PER_TASK)
        })
        // For reference: tokio's own yield_now (wake deferred past the driver poll).
        .peer("tokio_ct_yield_now", || {
            peers::yield_many_tokio_yield_now(YIELD_TASKS, YIELD_PER_TASK)
        }),
    ]
}

/// Sleeping tasks against tokio's (future deadlines in order, shuffled, already due), and
/// spindle's timer callbacks against a bare binary heap.
pub fn timers() -> Vec<Workload> {
    let future_rows = [
        ("timers_in_order_100k", TIMERS_N, false),
        ("timers_shuffled_100k", TIMERS_N, true),
        ("timers_shuffled_1m", TIMERS_1M_N, true),
    ];
    let mut rows: Vec<Workload> = future_rows
        .into_iter()
        .map(|(name, n, shuffled)| {
            let spread = timers_spread(n);
            // Made on the first run of either side (outside the clock), not when the rows are
            // listed: a million shuffled offsets are not free.
            let offsets: Rc<OnceCell<Vec<Duration>>> = Rc::new(OnceCell::new());
            let (a, b) = (offsets.clone(), offsets);
            Workload::new(
                name,
                "sleeping task (wall: beyond the spread)",
                n,
                move || {
                    let offsets = a.get_or_init(|| timer_offsets(n, spread, shuffled));
                    timers_spindle::sleeping_tasks(n, |s, i| s + offsets[i as usize], Some(spread))
                },
            )
            .peer("tokio_current_thread", move || {
                let offsets = b.get_or_init(|| timer_offsets(n, spread, shuffled));
                timers_peers::sleeping_tasks_tokio(n, |s, i| s + offsets[i as usize], Some(spread))
            })
        })
        .collect();
    rows.extend([
        Workload::new("timers_due_100k", "sleeping task", TIMERS_DUE_N, || {
            timers_spindle::sleeping_tasks(TIMERS_DUE_N, |s, _| s, None)
        })
        .peer("tokio_current_thread", || {
            timers_peers::sleeping_tasks_tokio(TIMERS_DUE_N, |s, _| s, None)
        }),
        Workload::new(
            "timers_due_scrambled_100k",
            "sleeping task",
            TIMERS_DUE_N,
            || timers_spindle::sleeping_tasks(TIMERS_DUE_N, scrambled, None),
        )
        .peer("tokio_current_thread", || {
            timers_peers::sleeping_tasks_tokio(TIMERS_DUE_N, scrambled, None)
        }),
        Workload::new(
            "call_later_due_100k",
            "timer callback",
            TIMERS_DUE_N,
            || timers_spindle::call_later_due(TIMERS_DUE_N),
        )
        .peer("binary_heap_floor", || {
            timers_peers::due_binary_heap(TIMERS_DUE_N)
        }),
        Workload::new(
            "call_at_due_scrambled_100k",
            "timer callback",
            TIMERS_DUE_N,
            || timers_spindle::call_at_due_scrambled(TIMERS_DUE_N),
        )
        .peer("binary_heap_floor", || {
            timers_peers::due_scrambled_binary_heap(TIMERS_DUE_N)
        }),
    ]);
    rows
}

/// The scrambled past deadline of timer `i` of [`TIMERS_DUE_N`].
fn scrambled(start: std::time::Instant, i: u64) -> std::time::Instant {
    scrambled_past_deadline(start, i, TIMERS_DUE_N)
}

/// Crossing threads: a loop thread fed by a plain one.
pub fn bridge() -> Vec<Workload> {
    vec![
        Workload::new(
            "call_soon_threadsafe",
            "closure from one producer thread",
            THREADSAFE_N,
            || bridge_spindle::call_soon_threadsafe(THREADSAFE_N),
        )
        .peer("tokio_mpsc_current_thread", || {
            bridge_peers::call_soon_threadsafe_tokio(THREADSAFE_N)
        })
        .peer("crossbeam_channel_floor", || {
            bridge_peers::call_soon_threadsafe_crossbeam(THREADSAFE_N)
        }),
        Workload::new(
            "run_coroutine_threadsafe",
            "round trip from a plain thread (caller spins, then parks)",
            ROUND_TRIP_N,
            || bridge_spindle::run_coroutine_threadsafe_round_trip(ROUND_TRIP_N),
        )
        .peer("tokio_spawn_oneshot", || {
            bridge_peers::round_trip_tokio(ROUND_TRIP_N)
        })
        .peer("crossbeam_ping_pong_floor", || {
            bridge_peers::round_trip_crossbeam(ROUND_TRIP_N)
        }),
        Workload::new(
            "idle_loop_thread",
            "ms idle (cpu should be 0)",
            IDLE_MS,
            || bridge_spindle::idle_loop_thread(IDLE_MS),
        )
        .peer("tokio_current_thread", || {
            bridge_peers::idle_loop_thread_tokio(IDLE_MS)
        }),
        Workload::new(
            "run_coroutine_threadsafe_parked",
            "round trip from a plain thread (caller parks at once)",
            ROUND_TRIP_N,
            || bridge_spindle::run_coroutine_threadsafe_parked(ROUND_TRIP_N),
        )
        .peer("tokio_spawn_oneshot", || {
            bridge_peers::round_trip_tokio(ROUND_TRIP_N)
        }),
    ]
}

/// `gather` and `yield_now` on one loop.
pub fn combinators() -> Vec<Workload> {
    vec![
        Workload::new(
            "gather_ready_tasks",
            "task spawned and gathered",
            GATHER_N,
            || combinators_spindle::gather_ready_tasks(GATHER_N),
        )
        .peer("tokio_ct_join_all", || {
            combinators_peers::gather_ready_tasks_join_all(GATHER_N)
        })
        .peer("tokio_ct_in_order", || {
            combinators_peers::gather_ready_tasks_in_order(GATHER_N)
        })
        .peer("async_executor_local_in_order", || {
            local_executor::gather_in_order(GATHER_N)
        }),
        Workload::new("yield_now_loop", "yield of one task", YIELD_NOW_N, || {
            combinators_spindle::yield_now_loop(YIELD_NOW_N)
        })
        .peer("tokio_ct_yield_now", || {
            combinators_peers::yield_now_loop_tokio(YIELD_NOW_N)
        })
        .peer("async_executor_local", || {
            local_executor::yield_now_loop(YIELD_NOW_N)
        }),
    ]
}

/// The multi-thread set (tokio's `rt_multi_threaded` bench): every row at [`RT_WORKERS`]
/// workers on every side, then its one-worker twin (name ending in [`ONE_WORKER`]).
pub fn runtime() -> Vec<Workload> {
    let mut rows =
        vec![
            Workload::new("idle_runtime", "ms idle (cpu should be 0)", IDLE_MS, || {
                runtime_spindle::idle(RT_WORKERS, IDLE_MS)
            })
            .peer("tokio_multi_thread", || {
                runtime_peers::idle_tokio(RT_WORKERS, IDLE_MS)
            }),
        ];
    for (workers, suffix) in [(RT_WORKERS, ""), (1, ONE_WORKER)] {
        rows.extend(runtime_at(workers, suffix));
    }
    rows
}

/// One multi-thread side: a function of (workers, ops).
type RtSide = fn(usize, u64) -> Sample;

fn runtime_at(workers: usize, suffix: &str) -> Vec<Workload> {
    let rows: [(&str, &str, u64, [RtSide; 3]); 6] = [
        (
            "rt_spawn_many_local",
            "task",
            RT_SPAWN_N,
            [
                runtime_spindle::spawn_many_local,
                runtime_peers::spawn_many_local_tokio,
                runtime_async_executor::spawn_many_local,
            ],
        ),
        (
            "rt_spawn_many_remote_idle",
            "task",
            RT_SPAWN_N,
            [
                runtime_spindle::spawn_many_remote_idle,
                runtime_peers::spawn_many_remote_idle_tokio,
                runtime_async_executor::spawn_many_remote_idle,
            ],
        ),
        (
            "rt_spawn_many_remote_busy",
            "task",
            RT_SPAWN_N,
            [
                runtime_spindle::spawn_many_remote_busy,
                runtime_peers::spawn_many_remote_busy_tokio,
                runtime_async_executor::spawn_many_remote_busy,
            ],
        ),
        (
            "rt_yield_many",
            "yield",
            YIELD_TASKS * YIELD_PER_TASK,
            [
                |w, _| runtime_spindle::yield_many(w, YIELD_TASKS, YIELD_PER_TASK),
                |w, _| runtime_peers::yield_many_tokio(w, YIELD_TASKS, YIELD_PER_TASK),
                |w, _| runtime_async_executor::yield_many(w, YIELD_TASKS, YIELD_PER_TASK),
            ],
        ),
        (
            "rt_ping_pong",
            "round",
            RT_PING_PONG_N,
            [
                runtime_spindle::ping_pong,
                runtime_peers::ping_pong_tokio,
                runtime_async_executor::ping_pong,
            ],
        ),
        (
            "rt_chained_spawn",
            "link",
            RT_CHAIN_N,
            [
                runtime_spindle::chained_spawn,
                runtime_peers::chained_spawn_tokio,
                runtime_async_executor::chained_spawn,
            ],
        ),
    ];
    rows.into_iter()
        .map(|(name, unit, n, [spindle, tokio, ae])| {
            Workload::new(format!("{name}{suffix}"), unit, n, move || {
                spindle(workers, n)
            })
            .peer("tokio_multi_thread", move || tokio(workers, n))
            .peer("async_executor", move || ae(workers, n))
        })
        .collect()
}
