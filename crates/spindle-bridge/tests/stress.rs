//! The stress test: 4 producer threads x 250,000 `call_soon_threadsafe` into one loop
//! that is stopped and restarted meanwhile, then closed while the producers are still
//! submitting. Every accepted callback runs exactly once, on the loop's thread, in its
//! producer's order; every refused one comes back to its producer.
//!
//! The counts are the in every build: a debug build runs it in about half a second on 2
//! cores. Nothing here depends on timing: the phases are ordered by flags, not sleeps (the
//! stopper's pause only paces it), and every wait is bounded by a hang guard.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::HANG;
use spindle_bridge::{BridgeError, EventLoopExt};
use spindle_loop::EventLoop;

const PRODUCERS: usize = 4;
const PER_PRODUCER: u32 = 250_000;
/// Each producer submits this many, then waits until the loop starts its last round.
const BEFORE_CLOSE: u32 = PER_PRODUCER * 3 / 4;
/// The loop is restarted at least this many times before it is closed.
const MIN_RESTARTS: usize = 20;

thread_local! {
    static ON_LOOP_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Per producer: every sequence number with whether it ran on the loop's thread.
type Log = Mutex<Vec<(u32, bool)>>;

fn record(log: &Log, seq: u32) {
    let on_loop = ON_LOOP_THREAD.with(Cell::get);
    log.lock().unwrap().push((seq, on_loop));
}

#[test]
fn every_accepted_callback_runs_once_in_order_and_every_refused_one_comes_back() {
    let lp = EventLoop::new().unwrap();
    ON_LOOP_THREAD.with(|c| c.set(true));
    let handle = lp.handle();
    let logs: Arc<Vec<Log>> = Arc::new((0..PRODUCERS).map(|_| Mutex::new(Vec::new())).collect());
    let reached = Arc::new(AtomicUsize::new(0));
    let closing = Arc::new(AtomicBool::new(false));

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (handle, logs, reached, closing) = (
                handle.clone(),
                logs.clone(),
                reached.clone(),
                closing.clone(),
            );
            thread::spawn(move || {
                let deadline = Instant::now() + HANG;
                let mut refused = 0u32;
                let mut submit = |seq: u32| {
                    let logs = logs.clone();
                    if let Err(err) = handle.call_soon_threadsafe(move || record(&logs[p], seq)) {
                        assert_eq!(err.reason(), &BridgeError::Closed);
                        refused += 1;
                        // It came back: run it here, off the loop's thread.
                        (err.into_inner())();
                    }
                };
                for seq in 0..BEFORE_CLOSE {
                    submit(seq);
                }
                reached.fetch_add(1, Ordering::SeqCst);
                while !closing.load(Ordering::SeqCst) {
                    assert!(Instant::now() < deadline, "the loop never closed");
                    thread::yield_now();
                }
                // Racing the close.
                for seq in BEFORE_CLOSE..PER_PRODUCER {
                    submit(seq);
                }
                while !handle.is_closed() {
                    assert!(Instant::now() < deadline, "close never finished");
                    thread::yield_now();
                }
                // After the close, a refusal is certain.
                submit(PER_PRODUCER);
                refused
            })
        })
        .collect();

    // Stops the loop again and again while it runs, until it closes.
    let stopper = {
        let handle = handle.clone();
        thread::spawn(move || {
            let mut stops = 0usize;
            while !handle.is_closed() {
                if handle.stop().is_ok() {
                    stops += 1;
                }
                thread::sleep(Duration::from_micros(200));
            }
            stops
        })
    };

    let deadline = Instant::now() + HANG;
    let mut restarts = 0;
    loop {
        lp.run_forever().unwrap();
        restarts += 1;
        if reached.load(Ordering::SeqCst) == PRODUCERS && restarts >= MIN_RESTARTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "producers never reached the close point"
        );
    }
    // Release the producers' last quarter, run one more round while it pours in, and close
    // in the middle of it.
    closing.store(true, Ordering::SeqCst);
    lp.run_forever().unwrap();
    lp.close().unwrap();

    let refused: u32 = producers.into_iter().map(|p| p.join().unwrap()).sum();
    let stops = stopper.join().unwrap();
    assert!(stops >= 1);
    eprintln!("{restarts} restarts, {stops} threadsafe stops, {refused} refused submissions");
    assert!(
        refused >= PRODUCERS as u32,
        "each producer's last submission was refused"
    );

    for (p, log) in logs.iter().enumerate() {
        let log = log.lock().unwrap();
        // Every sequence number exactly once (the last one, submitted after the close, too).
        assert_eq!(log.len() as u32, PER_PRODUCER + 1, "producer {p}");
        let mut seen: Vec<u32> = log.iter().map(|&(seq, _)| seq).collect();
        seen.sort_unstable();
        assert!(
            seen.iter().copied().eq(0..=PER_PRODUCER),
            "producer {p}: lost or doubled"
        );
        // Those that ran on the loop form a prefix, in order; the rest came back.
        let on_loop: Vec<u32> = log.iter().filter(|e| e.1).map(|e| e.0).collect();
        assert!(
            on_loop.iter().copied().eq(0..on_loop.len() as u32),
            "producer {p}: order"
        );
        assert!(on_loop.len() as u32 >= BEFORE_CLOSE);
        assert!((on_loop.len() as u32) < PER_PRODUCER + 1);
    }
    let ran_on_loop: usize = logs
        .iter()
        .map(|l| l.lock().unwrap().iter().filter(|e| e.1).count())
        .sum();
    assert_eq!(
        ran_on_loop as u32 + refused,
        (PER_PRODUCER + 1) * PRODUCERS as u32
    );
}
