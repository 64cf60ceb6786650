//! [`Event`]: asyncio's `Event`, on `event-listener`.
//!
//! A broadcast with no hand-off fits `event-listener` as it is. One asyncio rule needs a
//! generation beside the flag: a task waiting when `set()` ran returns, even if `clear()` ran
//! before it was polled again (asyncio resolves the waiters' futures at `set()`). The state
//! is one atomic word: bit 0 is the flag, the rest counts `set()` calls that raised it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use event_listener::Event as Notify;

const SET: u64 = 1;
const GENERATION: u64 = 2;

/// asyncio's `Event`: a flag that tasks can wait for. `set()` wakes every waiter; `clear()`
/// lowers the flag; `wait()` returns at once while it is set. `Send + Sync`: set it from any
/// thread or loop.
///
/// ```
/// use std::sync::Arc;
/// use spindle_sync::Event;
///
/// let event = Arc::new(Event::new());
/// let setter = event.clone();
/// spindle_policy::run(async move {
///     spindle_loop::spawn_local(async move { setter.set() }).unwrap();
///     event.wait().await;
///     assert!(event.is_set());
/// })
/// .unwrap();
/// ```
pub struct Event {
    state: AtomicU64,
    notify: Notify,
}

impl Event {
    /// A cleared event.
    ///
    /// ```
    /// assert!(!spindle_sync::Event::new().is_set());
    /// ```
    pub const fn new() -> Event {
        Event {
            state: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }

    /// Raises the flag and wakes every waiter (a no-op if it is set).
    ///
    /// ```
    /// let event = spindle_sync::Event::new();
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn set(&self) {
        // SeqCst pairs with the load in `wait` that follows `listen()`: either that load sees
        // the flag, or this notify sees the listener.
        let raised = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                (s & SET == 0).then_some((s + GENERATION) | SET)
            })
            .is_ok();
        if raised {
            self.notify.notify(usize::MAX);
        }
    }

    /// Lowers the flag; tasks waiting when `set()` ran still return.
    ///
    /// ```
    /// let event = spindle_sync::Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        self.state.fetch_and(!SET, Ordering::SeqCst);
    }

    /// Whether the flag is raised.
    ///
    /// ```
    /// assert!(!spindle_sync::Event::default().is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::SeqCst) & SET != 0
    }

    /// Waits until the flag is raised (returns at once if it is). Cancelling it has no effect
    /// on the event or on other waiters.
    ///
    /// ```
    /// static EVENT: spindle_sync::Event = spindle_sync::Event::new();
    /// EVENT.set();
    /// spindle_policy::run(EVENT.wait()).unwrap();
    /// ```
    pub async fn wait(&self) {
        let start = self.state.load(Ordering::SeqCst);
        if start & SET != 0 {
            return;
        }
        loop {
            let listener = self.notify.listen();
            let now = self.state.load(Ordering::SeqCst);
            // Raised, or raised and cleared again since this wait began.
            if now & SET != 0 || now >> 1 != start >> 1 {
                return;
            }
            listener.await;
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
