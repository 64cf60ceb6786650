//! Loom models of the bridge's cross-thread protocols (crates/spindle-bridge/src/concurrent.rs
//! and handle.rs): a ConcurrentFuture's resolution racing cancel, done-callback registration and
//! a blocked `result()`; a threadsafe callback's receipt racing the loop; submit vs close with
//! the give-back of refused work. A lost wake-up shows up as a deadlock, which loom reports.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use spindle_bridge::__loom::{call_soon_threadsafe, Completer};
use spindle_bridge::BridgeError;
use spindle_loop::__loom::Inbox;

/// Complete vs a blocked `result()`: the waiter is always woken with the value.
#[test]
fn complete_wakes_a_blocked_result() {
    loom::model(|| {
        let (completer, future) = Completer::<u32>::pair(BridgeError::Closed);
        let producer = thread::spawn(move || assert!(completer.complete(Ok(7))));
        assert_eq!(future.result(), Ok(7));
        producer.join().unwrap();
    });
}

/// A completer dropped without completing (its loop closed, its job was dropped) still wakes a
/// blocked `result()`, with its error: the future always resolves.
#[test]
fn dropped_completer_resolves_a_blocked_result() {
    loom::model(|| {
        let (completer, future) = Completer::<u32>::pair(BridgeError::Closed);
        let producer = thread::spawn(move || drop(completer));
        assert_eq!(future.result(), Err(BridgeError::Closed));
        producer.join().unwrap();
    });
}

/// Complete vs cancel vs add_done_callback vs a blocked `result()`, all at once: exactly one
/// resolution wins and the waiter sees it; the callback runs exactly once, after resolution,
/// and sees the same outcome.
#[test]
fn complete_vs_cancel_vs_callback_vs_blocked_result() {
    loom::model(|| {
        let (completer, future) = Completer::<u32>::pair(BridgeError::Closed);
        let future = Arc::new(future);
        let callbacks = Arc::new(AtomicUsize::new(0));
        // What the callback saw: 1 = cancelled, 2 = done with a value.
        let seen = Arc::new(AtomicUsize::new(0));

        let completing = thread::spawn(move || completer.complete(Ok(7)));
        let cancelling = {
            let future = future.clone();
            thread::spawn(move || future.cancel())
        };
        let registering = {
            let (future, callbacks, seen) = (future.clone(), callbacks.clone(), seen.clone());
            thread::spawn(move || {
                future.add_done_callback(move |done| {
                    assert!(done.done());
                    seen.store(if done.cancelled() { 1 } else { 2 }, Ordering::SeqCst);
                    callbacks.fetch_add(1, Ordering::SeqCst);
                });
            })
        };

        let outcome = future.result_timeout(std::time::Duration::from_secs(3600));
        let completed = completing.join().unwrap();
        let cancelled = cancelling.join().unwrap();
        registering.join().unwrap();

        assert!(completed != cancelled, "exactly one resolution wins");
        if cancelled {
            assert_eq!(outcome, Err(BridgeError::Cancelled));
            assert!(future.cancelled());
            assert_eq!(seen.load(Ordering::SeqCst), 1);
        } else {
            assert_eq!(outcome, Ok(7));
            assert!(!future.cancelled());
            assert_eq!(seen.load(Ordering::SeqCst), 2);
        }
        assert!(future.done());
        assert_eq!(callbacks.load(Ordering::SeqCst), 1);
    });
}

/// add_done_callback vs complete: the callback runs exactly once, on one of the two threads.
#[test]
fn callback_registration_vs_complete_runs_it_exactly_once() {
    loom::model(|| {
        let (completer, future) = Completer::<u32>::pair(BridgeError::Closed);
        let callbacks = Arc::new(AtomicUsize::new(0));
        let producer = thread::spawn(move || completer.complete(Ok(1)));
        let c = callbacks.clone();
        future.add_done_callback(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert!(producer.join().unwrap());
        assert_eq!(callbacks.load(Ordering::SeqCst), 1);
    });
}

/// A threadsafe callback's receipt: cancel vs the loop running it. Exactly one wins: either it
/// ran and `cancel()` said false, or it never ran and `cancel()` said true.
#[test]
fn threadsafe_cancel_vs_run_exactly_one_wins() {
    loom::model(|| {
        let inbox = Inbox::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let receipt = call_soon_threadsafe(&inbox, move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .map_err(|_| ())
        .expect("the inbox is open");
        let canceller = thread::spawn(move || receipt.cancel());
        inbox.run_pending();
        let cancelled = canceller.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst) + usize::from(cancelled), 1);
    });
}

/// Submit vs close through the bridge: each closure either runs on the loop or comes back to
/// its producer (who can still run it), never both, never neither.
#[test]
fn threadsafe_submit_vs_close_runs_or_gives_back() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let ran = Arc::new(AtomicUsize::new(0));
        let returned = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (inbox, ran, returned) = (inbox.clone(), ran.clone(), returned.clone());
            thread::spawn(move || {
                let r = ran.clone();
                if let Err(err) = call_soon_threadsafe(&inbox, move || {
                    r.fetch_add(1, Ordering::SeqCst);
                }) {
                    assert_eq!(err.reason(), &BridgeError::Closed);
                    returned.fetch_add(1, Ordering::SeqCst);
                    // The closure that came back is the one submitted: running it counts.
                    (err.into_inner())();
                }
            })
        };
        inbox.close();
        inbox.run_pending();
        producer.join().unwrap();
        inbox.run_pending();
        let (ran, returned) = (ran.load(Ordering::SeqCst), returned.load(Ordering::SeqCst));
        assert_eq!(
            ran, 1,
            "it ran exactly once, on the loop or after coming back"
        );
        assert!(returned <= 1);
    });
}

/// run_coroutine_threadsafe's "always resolves" when the loop closes: the submission carries
/// the completer; whether the closing loop runs it (and it resolves with Closed, as on a closing
/// loop) or refuses it (and dropping it resolves the future), a caller blocked in `result()`
/// always returns.
#[test]
fn a_future_submitted_while_the_loop_closes_always_resolves() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let (completer, future) = Completer::<u32>::pair(BridgeError::Closed);
        let caller = {
            let inbox = inbox.clone();
            thread::spawn(move || {
                let submitted = call_soon_threadsafe(&inbox, move || {
                    completer.complete(Err(BridgeError::Closed));
                });
                drop(submitted);
                future.result()
            })
        };
        inbox.close();
        inbox.run_pending();
        assert_eq!(caller.join().unwrap(), Err(BridgeError::Closed));
    });
}
