//! `add_signal_handler` / `remove_signal_handler`. Every case runs in a child process (this
//! binary again, one test selected), since `signal-hook` keeps a signal caught for the rest of
//! the process once it had a handler. The child bounds itself: a loop that never sees its
//! signal stops after `LIMIT` and the child fails.

use std::cell::Cell;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use rustix::process::{getpid, kill_process, Signal};
use spindle_loop::io::signals::{SIGKILL, SIGUSR1, SIGUSR2};
use spindle_loop::EventLoop;

const CHILD: &str = "SPINDLE_SIGNAL_CHILD";
const LIMIT: Duration = Duration::from_secs(20);

/// In the parent: runs test `name` in a child process and checks it passed. In the child:
/// runs `body`.
fn in_child(name: &str, body: fn()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1"])
        .env(CHILD, "1")
        .status()
        .unwrap();
    assert!(status.success(), "child {name}: {status}");
}

/// Fails the child if the loop is still running after `LIMIT`.
fn bound(lp: &EventLoop) {
    lp.call_later(LIMIT, || panic!("the signal never reached the loop"))
        .unwrap();
}

#[test]
fn a_signal_handler_runs_on_its_loop() {
    in_child("a_signal_handler_runs_on_its_loop", || {
        let lp = EventLoop::new().unwrap();
        bound(&lp);
        let calls = Rc::new(Cell::new(0));
        let on_thread = std::thread::current().id();
        let (c, l) = (calls.clone(), lp.clone());
        lp.add_signal_handler(SIGUSR1, move || {
            assert_eq!(std::thread::current().id(), on_thread);
            c.set(c.get() + 1);
            // Removing itself from inside the callback is allowed.
            assert!(l.remove_signal_handler(SIGUSR1));
            l.stop();
        })
        .unwrap();
        // Raised from another thread: the self-pipe brings it to the loop's thread.
        std::thread::spawn(|| kill_process(getpid(), Signal::USR1).unwrap())
            .join()
            .unwrap();
        lp.run_forever().unwrap();
        assert_eq!(calls.get(), 1);
        assert!(!lp.remove_signal_handler(SIGUSR1));
    });
}

#[test]
fn two_loops_each_get_the_signal() {
    in_child("two_loops_each_get_the_signal", || {
        let (registered, wait_registered) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            let lp = EventLoop::new().unwrap();
            bound(&lp);
            let l = lp.clone();
            lp.add_signal_handler(SIGUSR2, move || l.stop()).unwrap();
            registered.send(()).unwrap();
            lp.run_forever().unwrap();
            // The handler keeps a clone of the loop: close() breaks that cycle.
            lp.close().unwrap();
        });
        let lp = EventLoop::new().unwrap();
        bound(&lp);
        let l = lp.clone();
        lp.add_signal_handler(SIGUSR2, move || l.stop()).unwrap();
        wait_registered.recv().unwrap();
        kill_process(getpid(), Signal::USR2).unwrap();
        lp.run_forever().unwrap();
        other.join().unwrap();
        lp.close().unwrap();
    });
}

#[test]
fn forbidden_signals_and_closed_loops_are_errors() {
    in_child("forbidden_signals_and_closed_loops_are_errors", || {
        let lp = EventLoop::new().unwrap();
        let forbidden = lp.add_signal_handler(SIGKILL, || ()).unwrap_err();
        assert_eq!(forbidden.kind(), std::io::ErrorKind::InvalidInput);
        assert!(lp.add_signal_handler(-1, || ()).is_err());
        lp.close().unwrap();
        let closed = lp.add_signal_handler(SIGUSR1, || ()).unwrap_err();
        assert_eq!(
            spindle_loop::io::IoError::of(&closed),
            Some(spindle_loop::io::IoError::LoopClosed)
        );
    });
}

#[test]
fn a_dropped_signal_future_leaves_the_handler_that_replaced_it() {
    in_child(
        "a_dropped_signal_future_leaves_the_handler_that_replaced_it",
        || {
            let lp = EventLoop::new().unwrap();
            bound(&lp);
            let calls = Rc::new(Cell::new(0));
            let (c, l) = (calls.clone(), lp.clone());
            lp.run_until_complete(async move {
                let first = spindle_loop::io::signal(SIGUSR1).unwrap();
                // Replaces the future's handler: the loop's handler of SIGUSR1 is now this one.
                let stop = l.clone();
                l.add_signal_handler(SIGUSR1, move || {
                    c.set(c.get() + 1);
                    stop.stop();
                })
                .unwrap();
                drop(first);
            })
            .unwrap();
            assert_eq!(spindle_loop::io::loops_handling(SIGUSR1), 1);
            kill_process(getpid(), Signal::USR1).unwrap();
            // Stopped by the handler (or failed by `bound` if it was removed).
            lp.run_forever().unwrap();
            assert_eq!(calls.get(), 1, "the replacing handler still runs");
            assert!(lp.remove_signal_handler(SIGUSR1));
            lp.close().unwrap();
        },
    );
}
