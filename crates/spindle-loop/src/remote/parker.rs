//! The seam between the loop and the operating system: block until notified or a timeout.
//!
//! Normally the loop's [`Poller`] (`poller.rs`): `wait` blocks in epoll/kqueue and `notify` interrupts it
//! (a notification that arrives before `wait` makes the next `wait` return at once, so none is
//! lost). Under `--cfg loom` it is a mutex + condvar with the same sticky-notification contract,
//! which loom can explore.

use std::time::Duration;

use super::poller::Events;
#[cfg(not(loom))]
use super::poller::Poller;

#[cfg(not(loom))]
pub(crate) struct Parker {
    poller: Poller,
}

#[cfg(not(loom))]
impl Parker {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Parker {
            poller: Poller::new()?,
        })
    }

    /// Blocks until [`notify`](Self::notify) or the timeout (`None`: no timeout).
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) {
        // An error here (EINTR is retried inside polling) leaves us with a spurious wake-up,
        // which the loop tolerates: it recomputes its timeout and waits again.
        let _ = self.poller.wait(events, timeout);
    }

    /// The poller itself, for I/O registrations (see `io::reactor`).
    pub(crate) fn poller(&self) -> &Poller {
        &self.poller
    }

    pub(crate) fn notify(&self) {
        // Fails only if the notification pipe/eventfd is broken; the loop then wakes at its
        // next timer, so there is nothing better to do than report it.
        if let Err(e) = self.poller.notify() {
            tracing::error!(error = %e, "spindle: could not wake the event loop");
        }
    }
}

#[cfg(loom)]
pub(crate) struct Parker {
    notified: loom::sync::Mutex<bool>,
    condvar: loom::sync::Condvar,
}

#[cfg(loom)]
impl Parker {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Parker {
            notified: loom::sync::Mutex::new(false),
            condvar: loom::sync::Condvar::new(),
        })
    }

    /// Under loom a timeout is modelled as "may return without a notification": a model that
    /// passes a timeout must not rely on being woken.
    pub(crate) fn wait(&self, _events: &mut Events, timeout: Option<Duration>) {
        let mut notified = self.notified.lock().unwrap();
        if timeout.is_none() {
            while !*notified {
                notified = self.condvar.wait(notified).unwrap();
            }
        }
        *notified = false;
    }

    pub(crate) fn notify(&self) {
        *self.notified.lock().unwrap() = true;
        self.condvar.notify_one();
    }
}
