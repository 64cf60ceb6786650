//! Loom models of the loop's remote inbox (crates/spindle-loop/src/remote/).
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use spindle_loop::__loom::Inbox;

/// Submits a callback that counts its run in `ran`; the inbox must be open.
fn submit_counting(inbox: &Inbox, ran: &Arc<AtomicUsize>) {
    let ran = ran.clone();
    inbox
        .submit(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .map_err(|_| ())
        .expect("the inbox is open");
}

/// Submit vs park: a callback pushed while the loop goes to sleep is never stranded. A lost
/// wake-up shows up as a deadlock (the loop thread parked forever), which loom reports.
#[test]
fn submit_vs_park_loses_no_wakeup() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let ran = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (inbox, ran) = (inbox.clone(), ran.clone());
            thread::spawn(move || {
                submit_counting(&inbox, &ran);
            })
        };
        while ran.load(Ordering::SeqCst) == 0 {
            inbox.park();
            inbox.run_pending();
        }
        producer.join().unwrap();
        assert!(inbox.wakeups() <= 1);
    });
}

/// Two producers, one park: at most one wake-up syscall between them.
#[test]
fn two_submitters_cost_at_most_one_wakeup_per_park() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let ran = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let (inbox, ran) = (inbox.clone(), ran.clone());
                thread::spawn(move || submit_counting(&inbox, &ran))
            })
            .collect();
        let mut parks = 0;
        while ran.load(Ordering::SeqCst) < 2 {
            inbox.park();
            parks += 1;
            inbox.run_pending();
        }
        for p in producers {
            p.join().unwrap();
        }
        assert!(inbox.wakeups() <= parks);
    });
}

/// Submit vs close: each closure either runs (drained right after close) or comes back to its
/// producer, never both, never neither.
#[test]
fn submit_vs_close_each_closure_runs_or_comes_back() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let ran = Arc::new(AtomicUsize::new(0));
        let returned = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (inbox, ran, returned) = (inbox.clone(), ran.clone(), returned.clone());
            thread::spawn(move || {
                let r = ran.clone();
                if let Err(f) = inbox.submit(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                }) {
                    returned.fetch_add(1, Ordering::SeqCst);
                    drop(f);
                }
            })
        };
        inbox.close();
        // The loop's drain right after `close` must find every accepted callback (nothing
        // drains later in the real loop), even one whose producer is still writing it.
        let drained = inbox.run_pending();
        producer.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), drained);
        assert_eq!(
            ran.load(Ordering::SeqCst) + returned.load(Ordering::SeqCst),
            1
        );
    });
}

/// Two producers race for the last slot of a block (three positions to a block under loom, the
/// first slot taken before they start) while the loop drains: the winner installs the next block,
/// the loser waits for it and writes there, the loop frees the old one, and each callback runs
/// exactly once.
#[test]
fn producers_racing_for_a_block_s_last_slot_lose_nothing() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let ran = Arc::new(AtomicUsize::new(0));
        submit_counting(&inbox, &ran);
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let (inbox, ran) = (inbox.clone(), ran.clone());
                thread::spawn(move || {
                    submit_counting(&inbox, &ran);
                })
            })
            .collect();
        let mut drained = 0;
        while drained < 3 {
            inbox.park();
            drained += inbox.run_pending();
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    });
}

/// One producer pushes three callbacks, across a block boundary, while the loop drains: they
/// run in order, each once.
#[test]
fn a_producer_crossing_a_block_keeps_its_order() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let log = Arc::new(loom::sync::Mutex::new(Vec::new()));
        let producer = {
            let (inbox, log) = (inbox.clone(), log.clone());
            thread::spawn(move || {
                for i in 0..3 {
                    let log = log.clone();
                    inbox
                        .submit(move || log.lock().unwrap().push(i))
                        .map_err(|_| ())
                        .expect("the inbox is open");
                }
            })
        };
        let mut drained = 0;
        while drained < 3 {
            inbox.park();
            drained += inbox.run_pending();
        }
        producer.join().unwrap();
        assert_eq!(*log.lock().unwrap(), [0, 1, 2]);
    });
}

/// A scheduler's `wake()` while the loop parks: the park returns (a lost nudge would leave the
/// loop parked forever, which loom reports as a deadlock).
#[test]
fn wake_vs_park_loses_no_wakeup() {
    loom::model(|| {
        let inbox = Arc::new(Inbox::new());
        let waker = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.wake())
        };
        inbox.park();
        waker.join().unwrap();
        assert!(inbox.wakeups() <= 1);
    });
}
