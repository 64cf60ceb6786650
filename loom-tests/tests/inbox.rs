//! Loom models of the loop's remote inbox (crates/spindle-loop/src/remote.rs).
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use spindle_loop::__loom::Inbox;

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
                inbox
                    .submit(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                    .map_err(|_| ())
                    .expect("the inbox is open");
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
                thread::spawn(move || {
                    let _ = inbox.submit(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                    });
                })
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

/// Submit vs close: each closure either runs (drained after close) or comes back to its
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
        inbox.run_pending();
        producer.join().unwrap();
        // Anything accepted before close is in the queue by now; drain it too.
        inbox.run_pending();
        assert_eq!(
            ran.load(Ordering::SeqCst) + returned.load(Ordering::SeqCst),
            1
        );
    });
}
