//! Issue behaviour 7: call_later / call_at.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle_loop::EventLoop;

fn one_iteration(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().unwrap();
}

#[test]
fn call_later_waits_at_least_the_delay_on_the_monotonic_clock() {
    let lp = EventLoop::new().unwrap();
    let fired = Rc::new(RefCell::new(None));
    let (f, stopper) = (fired.clone(), lp.clone());
    let start = lp.time();
    lp.call_later(Duration::from_millis(20), move || {
        *f.borrow_mut() = Some(Instant::now());
        stopper.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    let at = fired.borrow().unwrap();
    assert!(at.duration_since(start) >= Duration::from_millis(20));
}

#[test]
fn a_deadline_in_the_past_runs_on_the_next_iteration() {
    let lp = EventLoop::new().unwrap();
    let ran = Rc::new(RefCell::new(false));
    let r = ran.clone();
    let past = lp.time() - Duration::from_millis(5);
    lp.call_at(past, move || *r.borrow_mut() = true).unwrap();
    one_iteration(&lp);
    assert!(*ran.borrow());
}

#[test]
fn past_deadlines_run_earliest_first_and_equal_deadlines_in_scheduling_order() {
    let lp = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let now = lp.time();
    let at = |ms: u64| now - Duration::from_millis(100) + Duration::from_millis(ms);
    for (name, when) in [
        ("c", at(30)),
        ("a1", at(10)),
        ("b", at(20)),
        ("a2", at(10)),
        ("a3", at(10)),
    ] {
        let log = log.clone();
        lp.call_at(when, move || log.borrow_mut().push(name))
            .unwrap();
    }
    one_iteration(&lp);
    assert_eq!(*log.borrow(), ["a1", "a2", "a3", "b", "c"]);
}

#[test]
fn duration_max_and_far_future_instants_neither_panic_nor_fire() {
    let lp = EventLoop::new().unwrap();
    let t1 = lp
        .call_later(Duration::MAX, || panic!("must not fire"))
        .unwrap();
    let far = lp.time() + Duration::from_secs(10 * 365 * 24 * 3600);
    let t2 = lp.call_at(far, || panic!("must not fire")).unwrap();
    assert!(t1.when() > lp.time());
    // The loop must not block on them (capped wait) nor overflow computing the timeout:
    // a near timer stops it.
    let stopper = lp.clone();
    lp.call_later(Duration::from_millis(1), move || stopper.stop())
        .unwrap();
    lp.run_forever().unwrap();
    assert!(!t1.cancelled() && !t2.cancelled());
    lp.close().unwrap();
}

#[test]
fn cancelled_timer_never_runs() {
    let lp = EventLoop::new().unwrap();
    let t = lp
        .call_later(Duration::ZERO, || panic!("cancelled"))
        .unwrap();
    t.cancel();
    one_iteration(&lp);
    assert_eq!(
        lp.stats().timers,
        0,
        "removed lazily when it reached the top"
    );
}

#[test]
fn cancelled_timers_are_removed_lazily_and_the_heap_rebuilt_past_half_of_over_100() {
    let lp = EventLoop::new().unwrap();
    let far = lp.time() + Duration::from_secs(3600);
    let handles: Vec<_> = (0..200)
        .map(|i| lp.call_at(far + Duration::from_millis(i), || ()).unwrap())
        .collect();
    // Exactly half cancelled, none at the top of the heap: lazily kept, no rebuild (the rule
    // is "more than half").
    for h in &handles[100..] {
        h.cancel();
    }
    one_iteration(&lp);
    let stats = lp.stats();
    assert_eq!((stats.timers, stats.cancelled_timers), (200, 100));
    // One more: more than half of more than 100 are cancelled -> rebuilt on the next iteration.
    handles[50].cancel();
    assert_eq!(lp.stats().cancelled_timers, 101);
    one_iteration(&lp);
    let stats = lp.stats();
    assert_eq!((stats.timers, stats.cancelled_timers), (99, 0));
}

#[test]
fn a_small_heap_is_not_rebuilt_even_if_mostly_cancelled() {
    let lp = EventLoop::new().unwrap();
    let far = lp.time() + Duration::from_secs(3600);
    let handles: Vec<_> = (0..100)
        .map(|i| lp.call_at(far + Duration::from_millis(i), || ()).unwrap())
        .collect();
    for h in &handles[1..] {
        h.cancel();
    }
    one_iteration(&lp);
    assert_eq!(lp.stats().timers, 100);
}
