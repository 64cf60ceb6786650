//! Issue behaviours 1-3: call_soon order, batch semantics, stop().

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use spindle_loop::EventLoop;

type Log = Rc<RefCell<Vec<&'static str>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, what: &'static str) -> impl FnOnce() + 'static {
    let log = log.clone();
    move || log.borrow_mut().push(what)
}

/// Runs exactly one iteration (asyncio: `loop.stop(); loop.run_forever()`).
fn one_iteration(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().unwrap();
}

#[test]
fn call_soon_runs_callbacks_fifo_each_exactly_once() {
    let lp = EventLoop::new().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    for i in 0..1000 {
        let seen = seen.clone();
        lp.call_soon(move || seen.borrow_mut().push(i)).unwrap();
    }
    one_iteration(&lp);
    one_iteration(&lp);
    assert_eq!(*seen.borrow(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn cancelled_handle_never_runs_even_when_cancelled_earlier_in_the_same_batch() {
    let lp = EventLoop::new().unwrap();
    let log = log();
    let victim_slot: Rc<RefCell<Option<spindle_loop::Handle>>> = Rc::new(RefCell::new(None));
    let slot = victim_slot.clone();
    lp.call_soon(move || slot.borrow().as_ref().unwrap().cancel())
        .unwrap();
    let victim = lp.call_soon(push(&log, "victim")).unwrap();
    *victim_slot.borrow_mut() = Some(victim.clone());
    lp.call_soon(push(&log, "after")).unwrap();
    let direct = lp.call_soon(push(&log, "cancelled-before")).unwrap();
    direct.cancel();
    one_iteration(&lp);
    assert_eq!(*log.borrow(), ["after"]);
    assert!(victim.cancelled());
}

#[test]
fn an_iteration_runs_only_what_was_ready_when_it_began() {
    let lp = EventLoop::new().unwrap();
    let log = log();
    let inner = lp.clone();
    let l = log.clone();
    lp.call_soon(move || {
        l.borrow_mut().push("a");
        inner.call_soon(push(&l, "scheduled-by-a")).unwrap();
    })
    .unwrap();
    lp.call_soon(push(&log, "b")).unwrap();
    one_iteration(&lp);
    assert_eq!(*log.borrow(), ["a", "b"]);
    one_iteration(&lp);
    assert_eq!(*log.borrow(), ["a", "b", "scheduled-by-a"]);
}

#[test]
fn due_timers_run_after_callbacks_that_were_already_ready() {
    let lp = EventLoop::new().unwrap();
    let log = log();
    lp.call_later(Duration::ZERO, push(&log, "a")).unwrap();
    lp.call_soon(push(&log, "b")).unwrap();
    one_iteration(&lp);
    assert_eq!(*log.borrow(), ["b", "a"]);
}

#[test]
fn stop_before_run_forever_runs_one_non_blocking_iteration() {
    let lp = EventLoop::new().unwrap();
    let log = log();
    lp.call_soon(push(&log, "ready")).unwrap();
    // A timer far away must not make the iteration block.
    lp.call_later(Duration::from_secs(3600), push(&log, "later"))
        .unwrap();
    let started = std::time::Instant::now();
    lp.stop();
    lp.run_forever().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(*log.borrow(), ["ready"]);
    assert!(!lp.is_running());
}

#[test]
fn stop_from_a_callback_finishes_the_batch_and_defers_what_it_scheduled() {
    let lp = EventLoop::new().unwrap();
    let log = log();
    let inner = lp.clone();
    let l = log.clone();
    lp.call_soon(move || {
        l.borrow_mut().push("stopper");
        inner.stop();
        inner.call_soon(push(&l, "next-run")).unwrap();
    })
    .unwrap();
    lp.call_soon(push(&log, "rest-of-batch")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["stopper", "rest-of-batch"]);
    // run_forever can be called again; what the batch scheduled runs then.
    one_iteration(&lp);
    assert_eq!(*log.borrow(), ["stopper", "rest-of-batch", "next-run"]);
}

#[test]
fn run_until_complete_runs_what_the_stopped_batch_scheduled() {
    let lp = EventLoop::new().unwrap();
    let log = log();
    let inner = lp.clone();
    let l = log.clone();
    lp.call_soon(move || {
        inner.stop();
        inner.call_soon(push(&l, "deferred")).unwrap();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert!(log.borrow().is_empty());
    lp.run_until_complete(async {}).unwrap();
    assert_eq!(*log.borrow(), ["deferred"]);
}
