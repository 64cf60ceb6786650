//! asyncio's `Queue` rules, one test each.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{local, run, runtime, settle};
use spindle_loop::TaskError;
use spindle_sync::{
    GetNowaitError, LifoQueue, PriorityQueue, PutNowaitError, Queue, QueueShutDown,
};

#[test]
fn queues_are_send_and_sync() {
    common::assert_send_sync::<Queue<String>>();
    common::assert_send_sync::<PriorityQueue<u32>>();
    common::assert_send_sync::<LifoQueue<Vec<u8>>>();
}

#[test]
fn items_come_out_in_put_order() {
    let q = Queue::new(0);
    for i in 0..5 {
        q.put_nowait(i).unwrap();
    }
    let out: Vec<_> = (0..5).map(|_| q.get_nowait().unwrap()).collect();
    assert_eq!(out, [0, 1, 2, 3, 4]);
}

#[test]
fn priority_queue_hands_out_the_smallest_and_lifo_the_newest() {
    let p = PriorityQueue::new(0);
    let l = LifoQueue::new(0);
    for x in [4, 1, 3, 2] {
        p.put_nowait(x).unwrap();
        l.put_nowait(x).unwrap();
    }
    let p_out: Vec<_> = (0..4).map(|_| p.get_nowait().unwrap()).collect();
    let l_out: Vec<_> = (0..4).map(|_| l.get_nowait().unwrap()).collect();
    assert_eq!(p_out, [1, 2, 3, 4]);
    assert_eq!(l_out, [2, 3, 1, 4]);
}

#[test]
fn put_nowait_on_a_full_queue_gives_the_item_back_and_get_nowait_on_empty_is_queue_empty() {
    let q = Queue::new(1);
    assert!(!q.full());
    q.put_nowait(String::from("a")).unwrap();
    assert!(q.full());
    assert_eq!(q.qsize(), 1);
    let err = q.put_nowait(String::from("b")).unwrap_err();
    assert_eq!(err, PutNowaitError::QueueFull(String::from("b")));
    assert_eq!(err.into_inner(), "b");
    assert_eq!(q.get_nowait().unwrap(), "a");
    assert!(q.empty());
    assert_eq!(q.get_nowait(), Err(GetNowaitError::QueueEmpty));
}

#[test]
fn put_waits_while_full_and_putters_go_in_fifo_order() {
    let order = run(async {
        let q = Arc::new(Queue::new(1));
        q.put(0).await.unwrap();
        let putters: Vec<_> = (1..=3)
            .map(|i| {
                let q = q.clone();
                local(async move { q.put(i).await.unwrap() })
            })
            .collect();
        settle(3).await;
        assert_eq!(q.qsize(), 1, "the putters wait while the queue is full");
        let mut order = Vec::new();
        for _ in 0..4 {
            order.push(q.get().await.unwrap());
        }
        for p in putters {
            p.await.unwrap();
        }
        order
    });
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn getters_are_served_in_the_order_they_started_waiting() {
    let got = run(async {
        let q = Arc::new(Queue::new(0));
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let getters: Vec<_> = (0..3)
            .map(|id| {
                let (q, got) = (q.clone(), got.clone());
                local(async move {
                    let item = q.get().await.unwrap();
                    got.lock().unwrap().push((id, item));
                })
            })
            .collect();
        settle(2).await;
        for item in ["a", "b", "c"] {
            q.put(item).await.unwrap();
        }
        // A newcomer cannot take an item handed to a waiting getter.
        assert_eq!(q.get_nowait(), Err(GetNowaitError::QueueEmpty));
        for g in getters {
            g.await.unwrap();
        }
        let got = got.lock().unwrap().clone();
        got
    });
    assert_eq!(got, [(0, "a"), (1, "b"), (2, "c")]);
}

#[test]
fn a_get_cancelled_after_an_item_was_handed_to_it_gives_the_item_back() {
    run(async {
        let q = Arc::new(Queue::new(0));
        let q2 = q.clone();
        let getter = local(async move { q2.get().await });
        settle(2).await; // the getter waits
        q.put_nowait(41).unwrap(); // handed to the waiting getter
        assert_eq!(q.qsize(), 1, "a handed item counts until its getter runs");
        assert!(getter.cancel());
        assert_eq!(getter.await, Err(TaskError::Cancelled));
        assert_eq!(q.get_nowait(), Ok(41), "the item came back to the queue");
    });
}

#[test]
fn a_get_cancelled_after_the_hand_off_passes_the_item_to_the_next_getter() {
    run(async {
        let q = Arc::new(Queue::new(0));
        let (q1, q2) = (q.clone(), q.clone());
        let first = local(async move { q1.get().await });
        let second = local(async move { q2.get().await });
        settle(2).await;
        q.put_nowait("only").unwrap();
        first.cancel();
        assert_eq!(first.await, Err(TaskError::Cancelled));
        assert_eq!(second.await, Ok(Ok("only")));
        assert!(q.empty());
    });
}

#[test]
fn a_put_cancelled_while_waiting_leaves_the_line_and_the_next_putter_goes_in() {
    run(async {
        let q = Arc::new(Queue::new(1));
        q.put_nowait(0).unwrap();
        let (q1, q2) = (q.clone(), q.clone());
        let cancelled = local(async move { q1.put(1).await });
        let kept = local(async move { q2.put(2).await });
        settle(2).await;
        cancelled.cancel();
        assert_eq!(cancelled.await, Err(TaskError::Cancelled));
        assert_eq!(q.get().await, Ok(0));
        assert_eq!(kept.await, Ok(Ok(())));
        assert_eq!(q.get_nowait(), Ok(2));
        assert!(q.empty());
    });
}

#[test]
fn a_get_cancelled_racing_a_put_across_workers_loses_and_duplicates_no_item() {
    const ROUNDS: usize = 200;
    let rt = runtime();
    let (received, left) = rt
        .block_on(async {
            let q = Arc::new(Queue::new(0));
            let mut received = 0usize;
            for round in 0..ROUNDS {
                let q2 = q.clone();
                let getter = spindle_policy::spawn(async move { q2.get().await }).unwrap();
                let q3 = q.clone();
                let putter = spindle_policy::spawn(async move { q3.put(round).await }).unwrap();
                if round % 2 == 0 {
                    spindle_loop::yield_now().await;
                }
                getter.cancel();
                putter.await.unwrap().unwrap();
                if let Ok(Ok(item)) = getter.await {
                    assert_eq!(item, round);
                    received += 1;
                }
                while let Ok(item) = q.get_nowait() {
                    assert_eq!(item, round);
                    received += 1;
                }
            }
            (received, q.qsize())
        })
        .unwrap();
    rt.shutdown();
    assert_eq!(left, 0);
    assert_eq!(received, ROUNDS, "every item put was received exactly once");
}

#[test]
fn task_done_and_join_wait_for_every_item_to_be_processed() {
    run(async {
        let q = Arc::new(Queue::new(0));
        let processed = Arc::new(AtomicUsize::new(0));
        for i in 0..10 {
            q.put_nowait(i).unwrap();
        }
        let (q2, p2) = (q.clone(), processed.clone());
        local(async move {
            while let Ok(_item) = q2.get().await {
                spindle_loop::yield_now().await;
                p2.fetch_add(1, Ordering::SeqCst);
                q2.task_done().unwrap();
            }
        });
        q.join().await;
        assert_eq!(processed.load(Ordering::SeqCst), 10);
        q.shutdown(false);
    });
}

#[test]
fn task_done_called_too_often_is_an_error() {
    let q = Queue::new(0);
    q.put_nowait(()).unwrap();
    q.get_nowait().unwrap();
    q.task_done().unwrap();
    let err = q.task_done().unwrap_err();
    assert!(err.to_string().contains("once per item"));
}

#[test]
fn shutdown_refuses_puts_wakes_waiting_putters_and_getters_and_keeps_items() {
    run(async {
        let full = Arc::new(Queue::new(1));
        full.put_nowait("kept").unwrap();
        let f2 = full.clone();
        let putter = local(async move { f2.put("refused").await });
        let empty = Arc::new(Queue::<u8>::new(0));
        let e2 = empty.clone();
        let getter = local(async move { e2.get().await });
        settle(2).await;
        full.shutdown(false);
        empty.shutdown(false);
        assert_eq!(putter.await.unwrap(), Err(QueueShutDown("refused")));
        assert_eq!(getter.await.unwrap(), Err(QueueShutDown(())));
        assert!(full.is_shut_down());
        assert_eq!(full.put("late").await, Err(QueueShutDown("late")));
        assert_eq!(
            full.get().await,
            Ok("kept"),
            "items put before shutdown stay"
        );
        assert_eq!(full.get().await, Err(QueueShutDown(())));
    });
}

#[test]
fn shutdown_immediate_drops_the_items_and_releases_join() {
    run(async {
        let q = Arc::new(Queue::new(0));
        q.put_nowait(1).unwrap();
        q.put_nowait(2).unwrap();
        let q2 = q.clone();
        let joiner = local(async move { q2.join().await });
        settle(2).await;
        assert!(!joiner.done());
        q.shutdown(true);
        joiner.await.unwrap();
        assert_eq!(q.qsize(), 0);
        assert_eq!(q.get_nowait(), Err(GetNowaitError::QueueShutDown));
    });
}

#[test]
fn a_pipeline_across_two_workers_delivers_every_item_exactly_once() {
    const ITEMS: usize = 20_000;
    const CONSUMERS: usize = 3;
    let rt = runtime();
    let seen = rt
        .block_on(async {
            let q = Arc::new(Queue::new(16));
            let consumers: Vec<_> = (0..CONSUMERS)
                .map(|_| {
                    let q = q.clone();
                    spindle_policy::spawn(async move {
                        let mut got = Vec::new();
                        while let Ok(item) = q.get().await {
                            got.push(item);
                            q.task_done().unwrap();
                        }
                        got
                    })
                    .unwrap()
                })
                .collect();
            let producers: Vec<_> = (0..2)
                .map(|p| {
                    let q = q.clone();
                    spindle_policy::spawn(async move {
                        for i in (p..ITEMS).step_by(2) {
                            q.put(i).await.unwrap();
                        }
                    })
                    .unwrap()
                })
                .collect();
            for p in producers {
                p.await.unwrap();
            }
            q.join().await;
            q.shutdown(false);
            let mut seen = Vec::new();
            for c in consumers {
                seen.extend(c.await.unwrap());
            }
            seen
        })
        .unwrap();
    let metrics = rt.metrics();
    rt.shutdown();
    assert_eq!(seen.len(), ITEMS, "no item lost or duplicated");
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), ITEMS);
    assert!(
        metrics.iter().all(|m| m.tasks_polled > 0),
        "both workers ran tasks: {metrics:?}"
    );
}
