//! Loom models of an I/O source's readiness (crates/spindle-loop/src/io/readiness.rs): the
//! home loop delivering events on one thread while a task, on another, tries its syscall,
//! clears the readiness it saw and stores its waker.
//!
//! Checked: an event delivered at any point between "the syscall said WouldBlock" and "the
//! waker is stored" is never lost (the task is woken, or its next poll sees the readiness);
//! an event delivered after the syscall survives the task's stale clear; shutdown reaches a
//! waiter; a source dropped (its wakers cleared) while the loop delivers an event on another
//! thread wakes or drops each waker exactly once (loom reports a leaked or doubly freed `Arc`);
//! the home loop and a sibling that helps its poller (`io::help`) delivering to the same source
//! at once wake its waiter, and release each waker once.
#![cfg(loom)]

use std::task::{Context, Wake, Waker};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use spindle_loop::__loom::IoReadiness;

struct Flag(AtomicUsize);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn flag() -> (std::sync::Arc<Flag>, Waker) {
    let flag = std::sync::Arc::new(Flag(AtomicUsize::new(0)));
    (flag.clone(), Waker::from(flag))
}

/// The task's side of one read: try (the syscall "would block" unless `data` is set), clear,
/// poll again (which stores the waker). Returns whether it read.
fn try_read(readiness: &IoReadiness, data: &AtomicUsize, waker: &Waker) -> bool {
    let mut cx = Context::from_waker(waker);
    loop {
        let Some(event) = readiness.poll_readable(&mut cx).expect("not shut down") else {
            return false; // waiting: the waker is stored
        };
        if data.load(Ordering::SeqCst) != 0 {
            return true;
        }
        readiness.clear(event);
    }
}

#[test]
fn an_event_between_would_block_and_storing_the_waker_is_not_lost() {
    loom::model(|| {
        let readiness = Arc::new(IoReadiness::default());
        let data = Arc::new(AtomicUsize::new(0));
        let (woken, waker) = flag();
        let home = {
            let (readiness, data) = (readiness.clone(), data.clone());
            thread::spawn(move || {
                data.store(1, Ordering::SeqCst); // the peer writes
                readiness.deliver_readable(); // the poller reports it
            })
        };
        let read = try_read(&readiness, &data, &waker);
        home.join().unwrap();
        if !read {
            // It went to sleep: the event must have woken it, and its retry reads.
            assert_eq!(woken.0.load(Ordering::SeqCst), 1, "the wake-up was lost");
            assert!(try_read(&readiness, &data, &waker));
        }
    });
}

#[test]
fn shutdown_reaches_a_waiter_on_another_thread() {
    loom::model(|| {
        let readiness = Arc::new(IoReadiness::default());
        let data = AtomicUsize::new(0);
        let (woken, waker) = flag();
        let home = {
            let readiness = readiness.clone();
            thread::spawn(move || readiness.deliver_shutdown())
        };
        let mut cx = Context::from_waker(&waker);
        let waiting = match readiness.poll_readable(&mut cx) {
            Ok(Some(event)) => {
                readiness.clear(event);
                matches!(readiness.poll_readable(&mut cx), Ok(None))
            }
            Ok(None) => true,
            Err(_) => false,
        };
        home.join().unwrap();
        let _ = data.load(Ordering::SeqCst);
        if waiting {
            assert_eq!(
                woken.0.load(Ordering::SeqCst),
                1,
                "shutdown did not wake the waiter"
            );
        }
        assert!(readiness.poll_readable(&mut cx).is_err());
    });
}

#[test]
fn dropping_a_source_while_its_home_loop_delivers_wakes_or_drops_each_waker_once() {
    loom::model(|| {
        let readiness = Arc::new(IoReadiness::default());
        let (woken, waker) = flag();
        let mut cx = Context::from_waker(&waker);
        // Waiting for readability.
        let event = readiness.poll_readable(&mut cx).unwrap().unwrap();
        readiness.clear(event);
        assert!(readiness.poll_readable(&mut cx).unwrap().is_none());
        drop(waker);
        let home = {
            let readiness = readiness.clone();
            thread::spawn(move || readiness.deliver_readable())
        };
        readiness.drop_wakers();
        home.join().unwrap();
        // Woken at most once; in every order the waker's Arc is released (loom checks).
        assert!(woken.0.load(Ordering::SeqCst) <= 1);
        drop(woken);
    });
}

#[test]
fn the_home_loop_and_a_helper_delivering_at_once_wake_the_waiter() {
    loom::model(|| {
        let readiness = Arc::new(IoReadiness::default());
        let data = Arc::new(AtomicUsize::new(0));
        let (woken, waker) = flag();
        // The peer wrote twice: one edge reached the home loop's own poll, the next the
        // helper's (each consumes the edge it took; both deliver).
        let deliverers: Vec<_> = (0..2)
            .map(|_| {
                let (readiness, data) = (readiness.clone(), data.clone());
                thread::spawn(move || {
                    data.store(1, Ordering::SeqCst);
                    readiness.deliver_readable();
                })
            })
            .collect();
        let read = try_read(&readiness, &data, &waker);
        for d in deliverers {
            d.join().unwrap();
        }
        if !read {
            assert!(woken.0.load(Ordering::SeqCst) >= 1, "the wake-up was lost");
            assert!(try_read(&readiness, &data, &waker));
        }
    });
}
