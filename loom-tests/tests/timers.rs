//! Loom models of a `Send` sleep's timer slot (crates/spindle-loop/src/timers.rs, `SleepSlab`
//! and `WakeTimer`): the sleep may be dropped (cancelled) or polled on any thread while the
//! loop's thread pops, fires, frees and reuses its slot. Checked: a cancellation is counted
//! towards the queue's rebuild exactly while the entry is in the queue (the count never wraps
//! and ends at zero); fire and cancel have one winner; a poll racing the fire never loses the
//! wake-up; a sleep whose slot was freed and reused never touches the slot's next sleep.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

use loom::thread;
use spindle_loop::__loom::SleepSlots;

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

fn wakes(counter: &Counter) -> usize {
    counter.0.load(Ordering::SeqCst)
}

/// Cancel on another thread vs the loop letting go of the slot at `close()`: the cancellation
/// is counted at most once, never after the slot left, and the count is back to zero at the
/// end.
#[test]
fn cancel_vs_leaving_the_queue_keeps_the_count_exact() {
    loom::model(|| {
        let (_, waker) = counting_waker();
        let mut slots = SleepSlots::new();
        let (index, sleeper) = slots.push(&waker);
        let sleeper = Arc::new(sleeper);
        let s = sleeper.clone();
        let canceller = thread::spawn(move || {
            let _ = s.cancel();
        });
        assert!(slots.counted() <= 1);
        slots.discard(index);
        assert!(slots.counted() <= 1, "the count wrapped below zero");
        canceller.join().unwrap();
        assert!(sleeper.is_cancelled());
        assert_eq!(slots.counted(), 0);
    });
}

/// Cancelled while in the queue: counted once, and uncounted when the queue drops the
/// cancelled top.
#[test]
fn a_cancellation_in_the_queue_is_counted_until_the_queue_lets_go() {
    loom::model(|| {
        let (_, waker) = counting_waker();
        let mut slots = SleepSlots::new();
        let (index, sleeper) = slots.push(&waker);
        let sleeper = Arc::new(sleeper);
        let s = sleeper.clone();
        assert!(thread::spawn(move || s.cancel()).join().unwrap());
        assert_eq!(slots.counted(), 1);
        assert!(!sleeper.cancel(), "twice: still once");
        assert_eq!(slots.counted(), 1);
        assert!(slots.drop_if_cancelled(index));
        assert_eq!(slots.counted(), 0);
    });
}

/// Fire on the loop vs cancel elsewhere: exactly one wins; the sleeper is woken only if the
/// fire won; the count ends at zero.
#[test]
fn fire_vs_cancel_has_one_winner() {
    loom::model(|| {
        let (woken, waker) = counting_waker();
        let mut slots = SleepSlots::new();
        let (index, sleeper) = slots.push(&waker);
        drop(waker);
        let sleeper = Arc::new(sleeper);
        let s = sleeper.clone();
        let canceller = thread::spawn(move || s.cancel());
        let fired = slots.pop_and_fire(index);
        let cancelled = canceller.join().unwrap();
        assert_ne!(fired, cancelled, "one winner");
        // A fire that won may still wake nobody: the canceller lets go of the waker before it
        // publishes its cancellation (the sleep is being dropped).
        assert!(
            wakes(&woken) <= usize::from(fired),
            "woken by a fire that lost"
        );
        assert_eq!(slots.counted(), 0);
    });
}

/// A poll with a new waker on another thread vs the fire: either the fire wakes the new waker
/// or the poll sees that it fired. No lost wake-up.
#[test]
fn a_poll_racing_the_fire_never_loses_the_wake_up() {
    loom::model(|| {
        let (old_wakes, old) = counting_waker();
        let mut slots = SleepSlots::new();
        let (index, sleeper) = slots.push(&old);
        drop(old);
        let (new_wakes, new) = counting_waker();
        let poller = thread::spawn(move || sleeper.poll(&new));
        assert!(slots.pop_and_fire(index));
        let saw_fired = poller.join().unwrap();
        let woke_new = wakes(&new_wakes) == 1;
        let woke_old = wakes(&old_wakes) == 1;
        assert!(saw_fired || woke_new, "lost wake-up");
        assert!(woke_new || woke_old, "the fire woke somebody");
    });
}

/// The first sleep of a slot polls (with a stray waker) and is then dropped on another thread
/// while the loop fires it, reuses the slot for a second sleep and fires that one: the second
/// sleep is woken exactly once, by its own waker, is never counted as cancelled, and the stray
/// waker is woken at most once (by the first fire, never by the second).
#[test]
fn a_stale_sleep_never_touches_the_next_sleep_of_its_slot() {
    loom::model(|| {
        let (_, first) = counting_waker();
        let mut slots = SleepSlots::new();
        let (index, sleeper) = slots.push(&first);
        drop(first);
        let (stray_wakes, stray) = counting_waker();
        let stale = thread::spawn(move || {
            sleeper.poll(&stray);
            let _ = sleeper.cancel();
        });
        let first_fired = slots.pop_and_fire(index);
        let stray_after_first = wakes(&stray_wakes);
        let (second_wakes, second) = counting_waker();
        let (reused, next) = slots.push(&second);
        assert_eq!(reused, index, "the freed slot is reused first");
        stale.join().unwrap();
        assert!(
            !next.is_cancelled(),
            "the stale cancel reached the next sleep"
        );
        assert_eq!(slots.counted(), 0);
        assert!(slots.pop_and_fire(reused), "the next sleep fires");
        assert_eq!(wakes(&second_wakes), 1, "the next sleep is woken once");
        assert_eq!(
            wakes(&stray_wakes),
            stray_after_first,
            "the stale waker was woken by the next sleep's fire"
        );
        assert!(stray_after_first <= usize::from(first_fired));
    });
}
