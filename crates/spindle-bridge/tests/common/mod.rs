//! Shared by the integration tests: a loop running on its own thread, and hang guards.
#![allow(dead_code)]

use std::sync::mpsc;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use spindle_bridge::{ConcurrentFuture, EventLoopExt, LoopHandle};
use spindle_loop::EventLoop;

/// How long a test waits for something that must happen before calling it a hang. Generous:
/// the machine is shared; a correct run never gets near it.
pub const HANG: Duration = Duration::from_secs(30);

/// Waits for `fut`, failing the test (instead of hanging) if it never resolves.
pub fn wait<T>(fut: &ConcurrentFuture<T>) -> Result<T, spindle_bridge::BridgeError> {
    let out = fut.result_timeout(HANG);
    assert!(
        !matches!(out, Err(spindle_bridge::BridgeError::Timeout(_))),
        "the future did not resolve within {HANG:?}"
    );
    out
}

/// An event loop on its own thread. It waits for [`LoopThread::run`] before it starts running
/// (so a test can act on a loop that is not running yet), runs until stopped, then closes.
pub struct LoopThread {
    pub handle: LoopHandle,
    pub thread_id: ThreadId,
    go: Option<mpsc::Sender<Action>>,
    thread: Option<JoinHandle<()>>,
}

enum Action {
    Run,
    Close,
}

impl LoopThread {
    /// A loop thread that starts running at once.
    pub fn start() -> LoopThread {
        let lt = LoopThread::gated();
        lt.run();
        lt
    }

    /// A loop thread that waits for [`run`](Self::run) or [`close_unrun`](Self::close_unrun).
    pub fn gated() -> LoopThread {
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<Action>();
        let thread = thread::spawn(move || {
            let lp = EventLoop::new().expect("a loop");
            tx.send((lp.handle(), thread::current().id()))
                .expect("test alive");
            while let Ok(action) = go_rx.recv() {
                match action {
                    Action::Run => lp.run_forever().expect("run_forever"),
                    Action::Close => break,
                }
            }
            lp.close().expect("close");
        });
        let (handle, thread_id) = rx.recv().expect("the loop thread starts");
        LoopThread {
            handle,
            thread_id,
            go: Some(go_tx),
            thread: Some(thread),
        }
    }

    /// Lets the loop run (again, after a stop).
    pub fn run(&self) {
        if let Some(go) = &self.go {
            go.send(Action::Run).expect("loop thread alive");
        }
    }

    /// Closes the loop on its thread without running it (again).
    pub fn close_unrun(mut self) {
        if let Some(go) = self.go.take() {
            go.send(Action::Close).expect("loop thread alive");
        }
        self.join();
    }

    /// Stops the loop, closes it and joins its thread.
    pub fn finish(mut self) {
        let _ = self.handle.stop();
        self.go = None;
        self.join();
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the loop thread did not panic");
        }
    }
}

impl Drop for LoopThread {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        self.go = None;
        if let Some(thread) = self.thread.take() {
            // No panic here: this may run while a failed test unwinds.
            let _ = thread.join();
        }
    }
}
