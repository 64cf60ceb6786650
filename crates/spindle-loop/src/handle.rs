//! Scheduled callbacks as the user holds them: [`Handle`] (from `call_soon`) and
//! [`TimerHandle`] (from `call_later` / `call_at`), both sharing the callback's cell with the
//! loop (see `crate::callback`).

use std::fmt;
use std::panic::Location;
use std::rc::Weak;
use std::time::Instant;

use crate::callback::Callback;
use crate::event_loop::Inner;

/// A callback scheduled with [`EventLoop::call_soon`](crate::EventLoop::call_soon).
///
/// Dropping the handle does not cancel the callback.
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// let handle = lp.call_soon(move || r.set(true)).unwrap();
/// handle.cancel();
/// assert!(handle.cancelled());
/// lp.stop();
/// lp.run_forever().unwrap();
/// assert!(!ran.get());
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) cell: Callback,
}

impl Handle {
    /// Cancels the callback: it will not run. Does nothing if it already ran.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let h = lp.call_soon(|| unreachable!()).unwrap();
    /// h.cancel();
    /// # lp.stop(); lp.run_forever().unwrap();
    /// ```
    pub fn cancel(&self) {
        self.cell.cancel();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let h = lp.call_soon(|| ()).unwrap();
    /// assert!(!h.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.cell.is_cancelled()
    }

    /// Where the callback was scheduled (the caller of `call_soon`).
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let h = lp.call_soon(|| ()).unwrap();
    /// assert_eq!(h.created_at().line(), line!() - 1);
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        self.cell.created_at()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("callback", &self.cell.name())
            .field("cancelled", &self.cancelled())
            .field("created_at", &self.created_at())
            .finish()
    }
}

/// A callback scheduled for a point in time with [`EventLoop::call_later`] or
/// [`EventLoop::call_at`].
///
/// [`EventLoop::call_later`]: crate::EventLoop::call_later
/// [`EventLoop::call_at`]: crate::EventLoop::call_at
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let t = lp.call_later(Duration::from_secs(3600), || unreachable!()).unwrap();
/// assert!(t.when() > lp.time());
/// t.cancel();
/// assert!(t.cancelled());
/// ```
#[derive(Clone)]
pub struct TimerHandle {
    pub(crate) cell: Callback,
    pub(crate) when: Instant,
    pub(crate) owner: Weak<Inner>,
}

impl TimerHandle {
    /// Cancels the timer: the callback will not run, and its heap entry is removed lazily.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.call_later(Duration::ZERO, || unreachable!()).unwrap();
    /// t.cancel();
    /// # lp.stop(); lp.run_forever().unwrap();
    /// ```
    pub fn cancel(&self) {
        if self.cell.cancel() {
            if let Some(owner) = self.owner.upgrade() {
                owner.timer_cancelled();
            }
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.call_later(Duration::from_secs(1), || ()).unwrap();
    /// assert!(!t.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.cell.is_cancelled()
    }

    /// When the callback is due, on the loop's clock ([`EventLoop::time`](crate::EventLoop::time)).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let at = Instant::now();
    /// assert_eq!(lp.call_at(at, || ()).unwrap().when(), at);
    /// ```
    pub fn when(&self) -> Instant {
        self.when
    }

    /// Where the timer was scheduled.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.call_at(Instant::now(), || ()).unwrap();
    /// assert!(t.created_at().file().ends_with(".rs"));
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        self.cell.created_at()
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("callback", &self.cell.name())
            .field("when", &self.when)
            .field("cancelled", &self.cancelled())
            .field("created_at", &self.created_at())
            .finish()
    }
}
