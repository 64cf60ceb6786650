//! Loom models of a `Send` sleep's timer (crates/spindle-loop/src/timers.rs, `WakeTimer`): the
//! sleep may be dropped (cancelled) or polled on any thread while the loop's thread pops or
//! fires its heap entry. Checked: a cancellation is counted towards the heap's rebuild exactly
//! while the entry is in the heap (the count never wraps and ends at zero); fire and cancel
//! have one winner; a poll racing the fire never loses the wake-up.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

use loom::thread;
use spindle_loop::__loom::SleepTimer;

/// A waker that counts its wake-ups.
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<Counter>, Waker) {
    let counter = Arc::new(Counter(AtomicUsize::new(0)));
    (counter.clone(), Waker::from(counter))
}

/// Cancel on another thread vs the loop letting go of the entry: the cancellation is counted
/// at most once, never after the entry left, and the count is back to zero at the end.
#[test]
fn cancel_vs_leaving_the_heap_keeps_the_count_exact() {
    loom::model(|| {
        let (_, waker) = counting_waker();
        let timer = Arc::new(SleepTimer::new(&waker));
        let t = timer.clone();
        let canceller = thread::spawn(move || t.cancel());
        assert!(timer.counted() <= 1);
        timer.leave_heap();
        assert!(timer.counted() <= 1, "the count wrapped below zero");
        canceller.join().unwrap();
        assert!(timer.is_cancelled());
        assert_eq!(timer.counted(), 0);
    });
}

/// Cancelled while in the heap: counted once, and uncounted when the heap lets go.
#[test]
fn a_cancellation_in_the_heap_is_counted_until_the_heap_lets_go() {
    loom::model(|| {
        let (_, waker) = counting_waker();
        let timer = Arc::new(SleepTimer::new(&waker));
        let t = timer.clone();
        thread::spawn(move || t.cancel()).join().unwrap();
        assert_eq!(timer.counted(), 1);
        timer.cancel(); // twice: still once
        assert_eq!(timer.counted(), 1);
        timer.leave_heap();
        assert_eq!(timer.counted(), 0);
    });
}

/// Fire on the loop vs cancel elsewhere: exactly one wins; the sleeper is woken only if the
/// fire won; the count ends at zero.
#[test]
fn fire_vs_cancel_has_one_winner() {
    loom::model(|| {
        let (wakes, waker) = counting_waker();
        let timer = Arc::new(SleepTimer::new(&waker));
        drop(waker);
        let t = timer.clone();
        let canceller = thread::spawn(move || t.cancel());
        timer.pop_and_fire();
        canceller.join().unwrap();
        let woken = wakes.0.load(Ordering::SeqCst);
        assert!(woken <= 1);
        assert_ne!(woken == 1, timer.is_cancelled(), "one winner");
        assert_eq!(timer.counted(), 0);
    });
}

/// A poll with a new waker on another thread vs the fire: either the fire wakes the new waker
/// or the poll sees that it fired. No lost wake-up.
#[test]
fn a_poll_racing_the_fire_never_loses_the_wake_up() {
    loom::model(|| {
        let (old_wakes, old) = counting_waker();
        let timer = Arc::new(SleepTimer::new(&old));
        drop(old);
        let (new_wakes, new) = counting_waker();
        let t = timer.clone();
        let sleeper = thread::spawn(move || t.poll(&new));
        timer.pop_and_fire();
        let saw_fired = sleeper.join().unwrap();
        let woke_new = new_wakes.0.load(Ordering::SeqCst) == 1;
        let woke_old = old_wakes.0.load(Ordering::SeqCst) == 1;
        assert!(saw_fired || woke_new, "lost wake-up");
        assert!(woke_new || woke_old, "the fire woke somebody");
    });
}
