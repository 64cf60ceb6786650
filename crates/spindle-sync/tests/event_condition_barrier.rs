//! asyncio's `Event`, `Condition` and `Barrier` rules, one test each.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{local, run, runtime, settle};
use spindle_loop::TaskError;
use spindle_sync::{Barrier, BrokenBarrierError, Condition, Event};

#[test]
fn primitives_are_send_and_sync() {
    common::assert_send_sync::<Event>();
    common::assert_send_sync::<Condition>();
    common::assert_send_sync::<Barrier>();
}

#[test]
fn event_set_wakes_every_waiter_and_wait_on_a_set_event_returns_at_once() {
    run(async {
        let event = Arc::new(Event::new());
        let woken = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (e, w) = (event.clone(), woken.clone());
                local(async move {
                    e.wait().await;
                    w.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        settle(2).await;
        assert_eq!(
            woken.load(Ordering::SeqCst),
            0,
            "nobody passes a cleared event"
        );
        event.set();
        for w in waiters {
            w.await.unwrap();
        }
        assert_eq!(woken.load(Ordering::SeqCst), 3);
        event.wait().await; // set: returns at once
    });
}

#[test]
fn event_waiters_present_at_set_return_even_if_it_is_cleared_before_they_run() {
    run(async {
        let event = Arc::new(Event::new());
        let e = event.clone();
        let waiter = local(async move { e.wait().await });
        settle(2).await;
        event.set();
        event.clear();
        waiter.await.unwrap();
        assert!(!event.is_set());
        let e = event.clone();
        let late = local(async move { e.wait().await });
        settle(3).await;
        assert!(
            !late.done(),
            "a wait that began after clear() waits for the next set()"
        );
        event.set();
        late.await.unwrap();
    });
}

#[test]
fn event_set_from_another_thread_wakes_a_loop() {
    let event = Arc::new(Event::new());
    let e = event.clone();
    let setter = std::thread::spawn(move || e.set());
    run(async move { event.wait().await });
    setter.join().unwrap();
}

#[test]
fn condition_notify_n_wakes_the_n_longest_waiters_in_order() {
    let woken = run(async {
        let cond = Arc::new(Condition::new());
        let woken = Arc::new(Mutex::new(Vec::new()));
        let waiters: Vec<_> = (0..4)
            .map(|id| {
                let (c, w) = (cond.clone(), woken.clone());
                local(async move {
                    let guard = c.lock().await;
                    let _guard = guard.wait().await;
                    w.lock().unwrap().push(id);
                })
            })
            .collect();
        settle(3).await;
        cond.lock().await.notify(2);
        settle(3).await;
        assert_eq!(*woken.lock().unwrap(), [0, 1]);
        cond.lock().await.notify_all();
        for w in waiters {
            w.await.unwrap();
        }
        let woken = woken.lock().unwrap().clone();
        woken
    });
    assert_eq!(woken, [0, 1, 2, 3]);
}

#[test]
fn condition_wait_for_returns_once_the_predicate_holds() {
    run(async {
        let cond = Arc::new(Condition::new());
        let value = Arc::new(AtomicUsize::new(0));
        let (c, v) = (cond.clone(), value.clone());
        let waiter = local(async move {
            let guard = c.lock().await;
            let _guard = guard.wait_for(|| v.load(Ordering::SeqCst) >= 3).await;
            v.load(Ordering::SeqCst)
        });
        for _ in 0..3 {
            settle(2).await;
            let guard = cond.lock().await;
            value.fetch_add(1, Ordering::SeqCst);
            guard.notify_all();
        }
        assert_eq!(waiter.await, Ok(3));
    });
}

#[test]
fn a_condition_waiter_cancelled_after_notify_passes_the_notification_on() {
    run(async {
        let cond = Arc::new(Condition::new());
        let (c1, c2) = (cond.clone(), cond.clone());
        let first = local(async move { drop(c1.lock().await.wait().await) });
        let second = local(async move { drop(c2.lock().await.wait().await) });
        settle(3).await;
        cond.lock().await.notify(1); // goes to `first`
        first.cancel();
        assert_eq!(first.await, Err(TaskError::Cancelled));
        second.await.unwrap(); // hangs if the notification was lost
        assert!(!cond.locked());
    });
}

#[test]
fn condition_works_across_the_loops_of_a_runtime() {
    let rt = runtime();
    let flag = Arc::new(AtomicBool::new(false));
    let cond = Arc::new(Condition::new());
    let (c, f) = (cond.clone(), flag.clone());
    rt.block_on(async move {
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let (c, f) = (c.clone(), f.clone());
                spindle_policy::spawn(async move {
                    let g = c.lock().await;
                    drop(g.wait_for(|| f.load(Ordering::SeqCst)).await);
                })
                .unwrap()
            })
            .collect();
        spindle_loop::yield_now().await;
        let g = c.lock().await;
        f.store(true, Ordering::SeqCst);
        g.notify_all();
        drop(g);
        for w in waiters {
            w.await.unwrap();
        }
    })
    .unwrap();
    rt.shutdown();
}

#[test]
fn barrier_releases_all_parties_with_their_arrival_indices_and_can_be_reused() {
    run(async {
        let barrier = Arc::new(Barrier::new(3));
        for _cycle in 0..2 {
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let b = barrier.clone();
                    local(async move { b.wait().await.unwrap() })
                })
                .collect();
            let mut indices = Vec::new();
            for t in tasks {
                indices.push(t.await.unwrap());
            }
            indices.sort();
            assert_eq!(indices, [0, 1, 2]);
            assert_eq!(barrier.n_waiting(), 0);
        }
    });
}

#[test]
fn barrier_abort_breaks_waiters_and_later_waits_until_reset() {
    run(async {
        let barrier = Arc::new(Barrier::new(3));
        let b = barrier.clone();
        let waiter = local(async move { b.wait().await });
        settle(2).await;
        assert_eq!(barrier.n_waiting(), 1);
        barrier.abort();
        assert_eq!(waiter.await, Ok(Err(BrokenBarrierError)));
        assert!(barrier.broken());
        assert_eq!(barrier.wait().await, Err(BrokenBarrierError));
        barrier.reset();
        assert!(!barrier.broken());
        let b = barrier.clone();
        let partners: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                local(async move { b.wait().await })
            })
            .collect();
        assert!(barrier.wait().await.is_ok(), "usable again after reset");
        for p in partners {
            assert!(p.await.unwrap().is_ok());
        }
    });
}

#[test]
fn barrier_reset_breaks_the_current_waiters_and_starts_afresh() {
    run(async {
        let barrier = Arc::new(Barrier::new(2));
        let b = barrier.clone();
        let waiter = local(async move { b.wait().await });
        settle(2).await;
        barrier.reset();
        assert_eq!(waiter.await, Ok(Err(BrokenBarrierError)));
        assert!(!barrier.broken());
        let b = barrier.clone();
        let pair = local(async move { b.wait().await });
        assert_eq!(barrier.wait().await.map(|_| ()), Ok(()));
        assert!(pair.await.unwrap().is_ok());
    });
}

#[test]
fn a_barrier_waiter_cancelled_before_the_trip_gives_up_its_place() {
    run(async {
        let barrier = Arc::new(Barrier::new(2));
        let b = barrier.clone();
        let quitter = local(async move { b.wait().await });
        settle(2).await;
        assert_eq!(barrier.n_waiting(), 1);
        quitter.cancel();
        assert_eq!(quitter.await, Err(TaskError::Cancelled));
        assert_eq!(
            barrier.n_waiting(),
            0,
            "the cancelled party no longer counts"
        );
        let b = barrier.clone();
        let partner = local(async move { b.wait().await });
        settle(2).await;
        assert!(!partner.done(), "one party is not enough");
        assert_eq!(barrier.wait().await, Ok(1));
        assert_eq!(partner.await, Ok(Ok(0)));
    });
}
