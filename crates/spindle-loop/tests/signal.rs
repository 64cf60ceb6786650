//! Unix signals on a loop: `add_signal_handler` / `remove_signal_handler` and `io::signal`.
//! Each test has a signal of its own (the tests run in parallel in one process), raised only
//! while a handler for it is registered; once signal-hook has installed its handler, a late
//! delivery is ignored rather than fatal.
#![cfg(unix)]

use std::cell::Cell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

use spindle_loop::io::{raise, sig, signal, IoError};
use spindle_loop::{timeout, EventLoop};

#[test]
fn a_signal_handler_runs_on_its_loop() {
    let lp = EventLoop::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let (c, l) = (calls.clone(), lp.clone());
    let loop_thread = std::thread::current().id();
    lp.add_signal_handler(sig::SIGURG, move || {
        assert_eq!(std::thread::current().id(), loop_thread);
        c.set(c.get() + 1);
        l.stop();
    })
    .unwrap();
    // Delivered to another thread of the process: the loop's thread still runs the callback.
    std::thread::spawn(|| raise(sig::SIGURG).unwrap())
        .join()
        .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(calls.get(), 1);
    assert!(lp.remove_signal_handler(sig::SIGURG));
    assert!(!lp.remove_signal_handler(sig::SIGURG));
}

#[test]
fn a_second_handler_for_a_signal_replaces_the_first() {
    let lp = EventLoop::new().unwrap();
    let which = Rc::new(Cell::new(""));
    let (w1, w2, l) = (which.clone(), which.clone(), lp.clone());
    lp.add_signal_handler(sig::SIGWINCH, move || w1.set("first"))
        .unwrap();
    lp.add_signal_handler(sig::SIGWINCH, move || {
        w2.set("second");
        l.stop();
    })
    .unwrap();
    raise(sig::SIGWINCH).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(which.get(), "second");
    lp.close().unwrap();
}

#[test]
fn forbidden_signals_are_an_invalid_input_error_not_a_panic() {
    let lp = EventLoop::new().unwrap();
    for s in [sig::SIGKILL, sig::SIGSTOP, sig::SIGSEGV] {
        let err = lp.add_signal_handler(s, || ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
}

#[test]
fn a_signal_handler_on_a_closed_loop_is_loop_closed() {
    let lp = EventLoop::new().unwrap();
    lp.close().unwrap();
    let err = lp.add_signal_handler(sig::SIGURG, || ()).unwrap_err();
    assert_eq!(IoError::of(&err), Some(IoError::LoopClosed));
}

#[test]
fn the_signal_future_resolves_on_the_next_delivery() {
    let lp = EventLoop::new().unwrap();
    let l = lp.clone();
    let out = lp
        .run_until_complete(async move {
            let waiter = l.create_task(signal(sig::SIGPROF)).unwrap();
            // Let the waiter register before the signal is sent.
            spindle_loop::sleep(Duration::from_millis(10)).await;
            std::thread::spawn(|| raise(sig::SIGPROF).unwrap());
            timeout(Duration::from_secs(10), waiter).await
        })
        .unwrap();
    out.expect("the signal future did not resolve")
        .unwrap()
        .unwrap();
}
