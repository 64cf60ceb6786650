//! Issue 5: `sleep`, `sleep_until`, `yield_now`.

use std::cell::RefCell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

mod combinators_support;

use combinators_support::{one_iteration, HOUR};
use spindle_loop::{sleep, sleep_until, yield_now, EventLoop, Sleep, TaskError};

fn assert_send_sync<T: Send + Sync>(_: &T) {}

#[test]
fn sleep_waits_at_least_the_duration() {
    let lp = EventLoop::new().unwrap();
    let start = Instant::now();
    lp.run_until_complete(sleep(Duration::from_millis(20)))
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn sleep_until_waits_until_the_deadline() {
    let lp = EventLoop::new().unwrap();
    let at = Instant::now() + Duration::from_millis(15);
    lp.run_until_complete(sleep_until(at)).unwrap();
    assert!(Instant::now() >= at);
}

#[test]
fn sleeping_tasks_wait_side_by_side_in_the_timer_heap() {
    let lp = EventLoop::new().unwrap();
    let a = lp.create_task(sleep(Duration::from_millis(10))).unwrap();
    let b = lp.create_task(sleep(Duration::from_millis(10))).unwrap();
    one_iteration(&lp);
    assert_eq!(lp.stats().timers, 2);
    assert_eq!(lp.run_until_complete(a).unwrap(), Ok(()));
    assert_eq!(lp.run_until_complete(b).unwrap(), Ok(()));
    assert_eq!(lp.stats().timers, 0);
}

/// Logs "A" from a callback scheduled before the task suspends (A schedules "B" for the
/// iteration after), then "resumed" when the task resumes: exactly one iteration means the
/// order A, resumed, B.
fn resumes_after_exactly_one_iteration<F>(suspend: impl FnOnce() -> F + 'static)
where
    F: Future<Output = ()> + 'static,
{
    let lp = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let iterations = lp
        .run_until_complete(async move {
            let lp = EventLoop::running().unwrap();
            let (la, lb) = (l.clone(), l.clone());
            let inner = lp.clone();
            lp.call_soon(move || {
                la.borrow_mut().push("A");
                inner.call_soon(move || lb.borrow_mut().push("B")).unwrap();
            })
            .unwrap();
            let before = lp.stats().iterations;
            suspend().await;
            l.borrow_mut().push("resumed");
            lp.stats().iterations - before
        })
        .unwrap();
    one_iteration(&lp);
    assert_eq!(iterations, 1);
    assert_eq!(*log.borrow(), ["A", "resumed", "B"]);
}

#[test]
fn sleep_zero_yields_exactly_one_iteration_after_the_callbacks_scheduled_before_it() {
    resumes_after_exactly_one_iteration(|| sleep(Duration::ZERO));
}

#[test]
fn yield_now_yields_exactly_one_iteration_after_the_callbacks_scheduled_before_it() {
    resumes_after_exactly_one_iteration(yield_now);
}

#[test]
fn sleep_zero_registers_no_timer() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(sleep(Duration::ZERO)).unwrap();
    one_iteration(&lp);
    assert_eq!(lp.stats().timers, 0);
    assert_eq!(lp.run_until_complete(task).unwrap(), Ok(()));
}

#[test]
fn a_deadline_in_the_past_yields_once_without_a_timer() {
    let lp = EventLoop::new().unwrap();
    let task = lp
        .create_task(sleep_until(Instant::now() - Duration::from_millis(5)))
        .unwrap();
    let r = task.task_ref();
    one_iteration(&lp); // first poll: already due, the task yields (asyncio's sleep(0))
    assert!(!r.done());
    assert_eq!(lp.stats().timers, 0);
    one_iteration(&lp); // the task resumes
    assert!(r.done());
    assert_eq!(lp.run_until_complete(task).unwrap(), Ok(()));
}

#[test]
fn cancelling_a_sleeping_task_removes_its_timer() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(sleep(HOUR)).unwrap();
    let r = task.task_ref();
    one_iteration(&lp);
    assert_eq!(lp.stats().timers, 1);
    assert_eq!(lp.stats().cancelled_timers, 0);
    assert!(task.cancel());
    one_iteration(&lp); // the task's step drops the sleep: its timer counts as cancelled
    assert!(r.cancelled());
    assert_eq!(lp.stats().cancelled_timers, 1);
    one_iteration(&lp); // the heap lets go of the cancelled entry
    assert_eq!(lp.stats().timers, 0);
    assert_eq!(lp.stats().cancelled_timers, 0);
    assert_eq!(
        lp.run_until_complete(task).unwrap(),
        Err(TaskError::Cancelled)
    );
}

#[test]
fn many_cancelled_sleeps_are_swept_by_the_heap_rebuild() {
    let lp = EventLoop::new().unwrap();
    // A live timer due first keeps the cancelled sleeps away from the top of the heap: only a
    // rebuild can remove them.
    let live = lp.call_later(HOUR / 2, || ()).unwrap();
    let tasks: Vec<_> = (0..150)
        .map(|_| lp.create_task(sleep(HOUR)).unwrap())
        .collect();
    one_iteration(&lp);
    assert_eq!(lp.stats().timers, 151);
    for t in &tasks {
        t.cancel();
    }
    one_iteration(&lp);
    assert_eq!(lp.stats().cancelled_timers, 150);
    one_iteration(&lp); // more than half of more than 100 entries are cancelled: rebuild
    assert_eq!(lp.stats().timers, 1);
    assert_eq!(lp.stats().cancelled_timers, 0);
    live.cancel();
}

#[test]
fn a_sleep_dropped_on_another_thread_cancels_its_timer() {
    let lp = EventLoop::new().unwrap();
    let (tx, rx) = mpsc::channel::<Pin<Box<Sleep>>>();
    lp.run_until_complete(async move {
        let mut s = Box::pin(sleep(HOUR));
        std::future::poll_fn(|cx| {
            assert!(s.as_mut().poll(cx).is_pending()); // registers the timer on this loop
            Poll::Ready(())
        })
        .await;
        tx.send(s).unwrap();
    })
    .unwrap();
    assert_eq!(lp.stats().timers, 1);
    let s = rx.recv().unwrap();
    std::thread::spawn(move || drop(s)).join().unwrap();
    assert_eq!(lp.stats().cancelled_timers, 1);
    one_iteration(&lp);
    assert_eq!(lp.stats().timers, 0);
    assert_eq!(lp.stats().cancelled_timers, 0);
}

#[test]
fn a_sleep_handed_to_another_task_wakes_the_task_now_polling_it() {
    let lp = EventLoop::new().unwrap();
    let slot: Rc<RefCell<Option<Pin<Box<Sleep>>>>> = Rc::default();
    let first_slot = slot.clone();
    let first = lp
        .create_task(async move {
            let mut s = Box::pin(sleep(Duration::from_millis(10)));
            std::future::poll_fn(|cx| {
                assert!(s.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            *first_slot.borrow_mut() = Some(s);
        })
        .unwrap();
    lp.run_until_complete(first).unwrap().unwrap();
    let handed = slot.borrow_mut().take().unwrap();
    let second = lp.create_task(handed).unwrap();
    let r = second.task_ref();
    // A later deadline: when it has passed, the handed sleep has fired and woken `second`,
    // which runs before the task of this later sleep.
    lp.run_until_complete(sleep(Duration::from_millis(20)))
        .unwrap();
    assert!(r.done());
    assert_eq!(lp.run_until_complete(second).unwrap(), Ok(()));
}

#[test]
fn sleep_and_yield_now_are_send_and_sync() {
    assert_send_sync(&sleep(Duration::from_millis(1)));
    assert_send_sync(&sleep_until(Instant::now()));
    assert_send_sync(&yield_now());
}

#[test]
fn a_huge_delay_sleeps_practically_forever_without_panicking() {
    let s = sleep(Duration::MAX);
    assert!(s.deadline() > Instant::now() + Duration::from_secs(365 * 24 * 3600));
}

#[test]
#[should_panic(expected = "needs a running event loop")]
fn sleep_polled_outside_a_running_loop_panics_with_a_message_saying_so() {
    let mut s = pin!(sleep(Duration::from_millis(1)));
    let _ = s.as_mut().poll(&mut Context::from_waker(Waker::noop()));
}

#[test]
fn yield_now_needs_no_running_loop() {
    let mut y = pin!(yield_now());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(y.as_mut().poll(&mut cx).is_pending());
    assert!(y.as_mut().poll(&mut cx).is_ready());
}

/// A thousand sleeping tasks whose deadlines come out of order (and some tie) all fall due in
/// one batch, large enough for the loop to prefetch ahead of it: they resume in deadline
/// order, ties in the order they went to sleep; the quarter cancelled while asleep never
/// resume, and once the batch ran no timer, cancelled or not, is left or counted.
#[test]
fn a_large_batch_of_shuffled_deadlines_resumes_in_deadline_order_ties_in_sleep_order() {
    let lp = EventLoop::new().unwrap();
    // Far enough ahead that every task is asleep (with a timer) before the first is due.
    let base = Instant::now() + Duration::from_millis(300);
    let resumed = Rc::new(RefCell::new(Vec::new()));
    let mut expected = Vec::new();
    let mut cancelled = Vec::new();
    let mut x: u64 = 0x9E37_79B9;
    for id in 0..1000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // 400 distinct deadlines for 1000 tasks: many ties, in no order.
        let at = base + Duration::from_micros(x % 400);
        let log = resumed.clone();
        let task = lp
            .create_task(async move {
                sleep_until(at).await;
                log.borrow_mut().push(id);
            })
            .unwrap();
        if id % 4 == 3 {
            cancelled.push(task);
        } else {
            expected.push((at, id));
        }
    }
    one_iteration(&lp); // every task sleeps
    assert_eq!(lp.stats().timers, 1000);
    for task in &cancelled {
        assert!(task.cancel());
    }
    one_iteration(&lp); // the cancelled tasks drop their sleeps
    assert_eq!(lp.stats().cancelled_timers, 250);
    lp.run_until_complete(sleep_until(base + Duration::from_millis(1)))
        .unwrap();
    while resumed.borrow().len() < expected.len() {
        one_iteration(&lp);
    }
    expected.sort();
    let order: Vec<u64> = expected.iter().map(|&(_, id)| id).collect();
    assert_eq!(*resumed.borrow(), order);
    assert_eq!(lp.stats().timers, 0);
    assert_eq!(lp.stats().cancelled_timers, 0);
    for task in cancelled {
        assert_eq!(
            lp.run_until_complete(task).unwrap(),
            Err(TaskError::Cancelled)
        );
    }
    lp.close().unwrap();
}

/// Polls `sleep` once with the running task's waker; gives it back with whether it is
/// still pending.
async fn poll_once(mut sleep: Sleep) -> (Sleep, bool) {
    let pending =
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut sleep).poll(cx).is_pending())).await;
    (sleep, pending)
}

/// A sleep whose timer is on loop `a`, polled on loop `b` once `b` has fired its own timers
/// past the deadline, is still pending: only `a` fires it (a sleep is over without reading its
/// timer only on the loop that holds it).
#[test]
fn a_sleep_is_not_over_by_the_timers_of_a_loop_that_does_not_hold_it() {
    let a = EventLoop::new().unwrap();
    let b = EventLoop::new().unwrap();
    let deadline = Instant::now() + Duration::from_millis(20);
    let (sleep, pending) = a
        .run_until_complete(poll_once(sleep_until(deadline)))
        .unwrap();
    assert!(pending, "the timer is on loop a");
    b.run_until_complete(sleep_until(deadline + Duration::from_millis(5)))
        .unwrap();
    let (sleep, pending) = b.run_until_complete(poll_once(sleep)).unwrap();
    assert!(pending, "loop a has not fired it");
    a.run_until_complete(sleep).unwrap();
    a.close().unwrap();
    b.close().unwrap();
}
