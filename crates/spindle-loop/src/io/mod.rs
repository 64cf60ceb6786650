//! I/O readiness: one poller per loop, sources registered lazily with their home loop, and
//! readiness routed to tasks through their wakers.
//!
//! # The model
//!
//! - **One poller per loop.** The `polling::Poller` a loop parks in is also where its sources
//!   are registered: a worker that owns its sockets needs no lock and no cross-thread hand-off
//!   to serve them, and a loop with none keeps its syscall-free path when work is ready.
//! - **Home loop.** A [`Source`] is registered (edge-triggered) in the poller of the loop that
//!   first sees its syscall say `WouldBlock`; that loop is its home for life.
//! - **Routing.** Operations try the syscall wherever the task runs; on `WouldBlock` they store
//!   the task's waker in the source's `Send + Sync` readiness state. The home loop's poller
//!   reports the event, the loop wakes that waker, and the task's own wake routing (local ->
//!   its loop; stealable -> a worker) brings it back. No event is lost between "try the
//!   syscall" and "store the waker" (see `readiness`; loom model `io_readiness`).
//! - **The iteration.** Once a loop has registrations, `run_once` polls them every iteration
//!   (timeout 0 while work is ready) and queues their wake-ups and callbacks before due timers,
//!   in asyncio's order.
//! - **Callbacks.** [`EventLoop::add_reader`](crate::EventLoop::add_reader) /
//!   [`add_writer`](crate::EventLoop::add_writer) are level-triggered, as asyncio's.
//! - **Signals.** [`EventLoop::add_signal_handler`](crate::EventLoop::add_signal_handler)
//!   watches, with `add_reader`, the read end of `signal-hook`'s self-pipe (module `signal`);
//!   [`InterruptScope`] takes Ctrl-C for the length of a run (module `interrupt`).
//! - **Fairness.** A budget per task step (`coop`) makes a task that always finds its source
//!   ready yield after 128 operations.
//! - **Lifetime.** The poller never watches a closed fd (`reactor`'s invariants). `close()`
//!   of a loop deletes its fds and fails its sources' waiters with [`IoError::LoopClosed`].
//!
//! A home loop stuck in a long callback stalls the readiness of its sources (their tasks on
//! other workers wait for it): keep callbacks short, as in asyncio.

pub(crate) mod coop;
#[cfg(all(not(loom), target_os = "linux"))]
pub(crate) mod help;
#[cfg(not(loom))]
#[allow(unsafe_code)] // sigaction(2) asked for SIGINT's disposition; a signal-hook action
mod interrupt;
#[cfg(not(loom))]
pub(crate) mod reactor;
pub(crate) mod readiness;
#[cfg(not(loom))]
pub(crate) mod signal;
#[cfg(not(loom))]
mod source;
#[cfg(not(loom))]
pub(crate) mod watch;

#[cfg(all(not(loom), target_os = "linux"))]
pub use help::IoShare;
#[cfg(not(loom))]
pub use interrupt::InterruptScope;
#[cfg(not(loom))]
pub use signal::{loops_handling, signal, signals, SignalFuture};
#[cfg(not(loom))]
pub use source::Source;

use std::fmt;

use crate::event_loop::Inner;

/// The loop's side of I/O, called from `run_once` and `close_now`.
#[cfg(not(loom))]
impl Inner {
    pub(crate) fn reactor(&self) -> &std::sync::Arc<reactor::Reactor> {
        &self.reactor
    }

    pub(crate) fn watches(&self) -> &std::cell::RefCell<watch::Watches> {
        &self.watches
    }

    /// Whether the poller watches anything: then every iteration polls it.
    #[inline]
    pub(crate) fn has_io(&self) -> bool {
        self.reactor.has_registrations()
    }

    /// Whether the last wait or poll returned I/O events not yet dispatched.
    #[inline]
    pub(crate) fn has_io_events(&self) -> bool {
        !self.events.borrow().is_empty()
    }

    /// Collects the events ready now (the iteration does not block: work is ready).
    pub(crate) fn poll_io_now(&self) {
        self.remote.poll_now(&mut self.events.borrow_mut());
    }

    /// Hands the events of the last wait or poll to their sources (waking tasks) and queues
    /// the callbacks of watched fds. The events are consumed: a later park that returns
    /// without waiting must not see them again.
    pub(crate) fn dispatch_io(&self) {
        let mut events = self.events.borrow_mut();
        if events.is_empty() {
            return;
        }
        let mut scratch = self.io_scratch.borrow_mut();
        let scratch = &mut *scratch;
        self.reactor
            .dispatch(&events, &mut scratch.sources, &mut scratch.watches);
        events.clear();
        drop(events);
        for (fd, readable, writable) in scratch.watches.drain(..) {
            self.queue_watch(fd, readable, writable);
        }
    }

    /// `close()`: the poller lets go of every fd, sources' waiters are woken with
    /// [`IoError::LoopClosed`], and the watches' callbacks and fd owners are dropped.
    pub(crate) fn close_io(&self) {
        // Signal handlers stop writing before their pipes close with the watches.
        self.signals.borrow_mut().clear();
        self.reactor.close();
        let dropped = self.watches.borrow_mut().clear();
        drop(dropped);
    }
}

/// Under loom there is no poller to register with: a loop has no I/O.
#[cfg(loom)]
impl Inner {
    #[inline]
    pub(crate) fn has_io(&self) -> bool {
        false
    }

    pub(crate) fn poll_io_now(&self) {}

    pub(crate) fn has_io_events(&self) -> bool {
        false
    }

    pub(crate) fn dispatch_io(&self) {}

    pub(crate) fn close_io(&self) {}
}

/// Why an I/O operation of spindle (not the OS) failed. It travels inside an
/// [`std::io::Error`] of kind `Other`; get it back with `error.get_ref()` and `downcast_ref`,
/// or with [`IoError::of`].
///
/// ```
/// use spindle_loop::io::IoError;
/// let e: std::io::Error = IoError::LoopClosed.into();
/// assert_eq!(IoError::of(&e), Some(IoError::LoopClosed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoError {
    /// The source's home loop (or the loop asked to watch an fd) is closed.
    LoopClosed,
    /// The operation had to wait, but no spindle loop runs on this thread to register with.
    NoRunningLoop,
}

impl IoError {
    /// The `IoError` inside `error`, if it is one.
    ///
    /// ```
    /// use spindle_loop::io::IoError;
    /// let os = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// assert_eq!(IoError::of(&os), None);
    /// ```
    pub fn of(error: &std::io::Error) -> Option<IoError> {
        error.get_ref()?.downcast_ref::<IoError>().copied()
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoError::LoopClosed => {
                "the spindle loop this I/O source is registered with is closed; \
                 create the source again on a running loop"
            }
            IoError::NoRunningLoop => {
                "this I/O operation must wait, but no spindle loop runs on this thread; \
                 use it inside a task on an EventLoop or a Runtime"
            }
        })
    }
}

impl std::error::Error for IoError {}

impl From<IoError> for std::io::Error {
    fn from(e: IoError) -> Self {
        std::io::Error::other(e)
    }
}
