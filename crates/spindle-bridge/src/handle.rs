//! [`LoopHandle`]: the `Send` way into a loop from any thread, and [`ThreadsafeHandle`], the
//! cancellable receipt of one `call_soon_threadsafe`.
//!
//! # Protocol
//!
//! Work crosses into the loop through its inbox ([`Remote::submit`]: a lock-free list whose one
//! compare-and-swap per submission also reads whether the loop is closed or parked, and wakes it
//! only if it is parked, so a burst of submissions to a busy loop costs at most one wake-up
//! syscall). The loop drains the inbox into its one ready queue at the start
//! of each iteration (and after each wait), in arrival order, so threadsafe callbacks from one
//! thread run in the order submitted, in the same FIFO as `call_soon` callbacks. On the loop's
//! own thread while it runs, a threadsafe submission skips the inbox and goes straight into the
//! ready queue, so it keeps its place among `call_soon`s exactly as in asyncio.
//!
//! Each submission carries its work and its receipt's state (see `receipt`): the state goes
//! `PENDING -> STARTED` (the loop runs the work) or `PENDING -> CANCELLED`
//! ([`ThreadsafeHandle::cancel`]: the loop drops the work on its thread when it reaches it). The
//! work travels inline through the inbox ([`Remote::submit_value`]) and the state comes from a
//! chunk the producer thread allocates once per 32 submissions, so a small threadsafe callback
//! costs no allocation of its own. A refused submission (the loop is closed) comes back whole:
//! nobody else has seen it, and it is returned in [`SubmitError`]. So a closure submitted to a
//! closed loop comes back to its caller, and an accepted one runs exactly once (the inbox runs
//! what it accepted even when the loop closes; see `spindle_loop::Remote`).

use std::fmt;

use spindle_loop::{EventLoop, Remote};

use crate::error::{BridgeError, SubmitError};
use crate::receipt::{self, Receipt, Slot, State};

/// Something that accepts work for a loop's thread: the loop's [`Remote`] (and, under loom, the
/// modelled inbox). Refused work comes back.
pub(crate) trait Inbox {
    /// Queues `value` for `run` on the loop's thread; on a closed loop `value` comes back.
    fn submit_value<T, R>(&self, value: T, run: R) -> Result<(), T>
    where
        T: Send + 'static,
        R: FnOnce(T) + Send + 'static;
}

impl Inbox for Remote {
    fn submit_value<T, R>(&self, value: T, run: R) -> Result<(), T>
    where
        T: Send + 'static,
        R: FnOnce(T) + Send + 'static,
    {
        // On the loop's own thread while it runs, straight into its ready queue: one FIFO with
        // `call_soon`, exactly as asyncio (which appends both to `_ready`).
        if let Some(lp) = running_loop(self.loop_id()) {
            // A running loop is never closed (`close()` refuses while it runs), so `call_soon`
            // does not refuse; asking first keeps `value` ours should that ever change.
            if !lp.is_closed() {
                let _ = lp.call_soon(move || run(value));
                return Ok(());
            }
        }
        // Refuses only when the loop is closed.
        Remote::submit_value(self, value, run).map_err(|rejected| rejected.into_inner())
    }
}

/// The loop `loop_id` if it is the one running on this thread.
pub(crate) fn running_loop(loop_id: u64) -> Option<EventLoop> {
    EventLoop::running().filter(|lp| lp.id() == loop_id)
}

/// Submits `value` to `inbox`, to be consumed on the loop's thread by `run`, with no receipt
/// (for callers that never cancel through one); a refused `value` comes back in the error.
pub(crate) fn submit_untracked<I, V, R>(inbox: &I, value: V, run: R) -> Result<(), SubmitError<V>>
where
    I: Inbox + ?Sized,
    V: Send + 'static,
    R: FnOnce(V) + Send + 'static,
{
    inbox
        .submit_value(value, run)
        .map_err(|value| SubmitError::new(value, BridgeError::Closed))
}

/// Submits `value` to `inbox`, to be consumed on the loop's thread by `run` unless the receipt
/// cancels it first; a refused `value` comes back in the error, untouched.
pub(crate) fn submit_value<I, V, R>(
    inbox: &I,
    value: V,
    run: R,
) -> Result<ThreadsafeHandle, SubmitError<V>>
where
    I: Inbox + ?Sized,
    V: Send + 'static,
    R: FnOnce(V) + Send + 'static,
{
    let (slot, receipt) = receipt::next();
    let submitted = inbox.submit_value((slot, value), move |(slot, value): (Slot, V)| {
        // Cancelled first: `value` and `run` are dropped here, on the loop's thread.
        if slot.start() {
            run(value);
        }
    });
    match submitted {
        Ok(()) => Ok(ThreadsafeHandle { receipt }),
        // Nobody else has seen it: the receipt was never handed out, the loop never ran it.
        Err((_slot, value)) => Err(SubmitError::new(value, BridgeError::Closed)),
    }
}

/// The receipt of one [`LoopHandle::call_soon_threadsafe`]: cancel the callback while it has
/// not started (asyncio's `Handle.cancel()`). Cloning gives another receipt for the same
/// callback.
///
/// ```
/// use spindle_bridge::EventLoopExt;
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let handle = lp.handle();
/// let receipt = handle.call_soon_threadsafe(|| unreachable!()).unwrap();
/// assert!(receipt.cancel());
/// assert!(receipt.cancelled());
/// lp.stop();
/// lp.run_forever().unwrap(); // the cancelled callback is dropped, not run
/// ```
#[derive(Clone)]
pub struct ThreadsafeHandle {
    receipt: Receipt,
}

impl ThreadsafeHandle {
    /// Cancels the callback if it has not started: it will never run, and it is dropped on the
    /// loop's thread when the loop reaches it. Returns `true` if this call cancelled it,
    /// `false` if it had already started (or run) or was cancelled before. Thread-safe.
    ///
    /// ```
    /// # use spindle_bridge::EventLoopExt;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let receipt = lp.handle().call_soon_threadsafe(|| ()).unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert!(!receipt.cancel()); // it already ran
    /// ```
    pub fn cancel(&self) -> bool {
        self.receipt.cancel()
    }

    /// Whether the callback was cancelled.
    ///
    /// ```
    /// # use spindle_bridge::EventLoopExt;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let receipt = lp.handle().call_soon_threadsafe(|| ()).unwrap();
    /// assert!(!receipt.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.receipt.state() == State::Cancelled
    }
}

impl fmt::Debug for ThreadsafeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.receipt.state() {
            State::Pending => "pending",
            State::Started => "started",
            State::Cancelled => "cancelled",
        };
        f.debug_struct("ThreadsafeHandle")
            .field("state", &state)
            .finish()
    }
}

/// A `Send + Sync + Clone` handle to one event loop: the only way into it from another thread.
/// Get it with [`EventLoopExt::handle`](crate::EventLoopExt::handle) (`lp.handle()`),
/// [`LoopHandle::new`], or [`LoopHandle::current`].
///
/// ```
/// use spindle_bridge::EventLoopExt;
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let handle = lp.handle();
/// let (tx, rx) = std::sync::mpsc::channel();
/// std::thread::spawn(move || {
///     handle.call_soon_threadsafe(move || tx.send("from the loop").unwrap()).unwrap();
///     handle.stop().unwrap();
/// })
/// .join()
/// .unwrap();
/// lp.run_forever().unwrap();
/// assert_eq!(rx.recv().unwrap(), "from the loop");
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    // The loop crate's own `Arc` (std): this is its refcount, not a bridge protocol.
    remote: std::sync::Arc<Remote>,
}

impl LoopHandle {
    /// The handle of `lp`.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let handle = spindle_bridge::LoopHandle::new(&lp);
    /// assert_eq!(handle.loop_id(), lp.id());
    /// ```
    pub fn new(lp: &EventLoop) -> LoopHandle {
        LoopHandle {
            remote: lp.remote(),
        }
    }

    /// The handle of the loop running on this thread, if any.
    ///
    /// ```
    /// use spindle_bridge::LoopHandle;
    /// assert!(LoopHandle::current().is_none());
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let id = lp.run_until_complete(async { LoopHandle::current().map(|h| h.loop_id()) });
    /// assert_eq!(id.unwrap(), Some(lp.id()));
    /// ```
    pub fn current() -> Option<LoopHandle> {
        EventLoop::running().map(|lp| LoopHandle::new(&lp))
    }

    pub(crate) fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Schedules `f` to run on the loop's thread (asyncio's `call_soon_threadsafe`), in the same
    /// FIFO as `call_soon`: after everything already scheduled. The returned receipt can cancel
    /// it until it starts. On a closed loop, `f` comes back in the error.
    ///
    /// ```
    /// use spindle_bridge::{BridgeError, EventLoopExt};
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let handle = lp.handle();
    /// lp.close().unwrap();
    /// let err = handle.call_soon_threadsafe(|| ()).unwrap_err();
    /// assert_eq!(err.reason(), &BridgeError::Closed);
    /// ```
    pub fn call_soon_threadsafe<F>(&self, f: F) -> Result<ThreadsafeHandle, SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        submit_value(self.remote(), f, |f: F| f())
    }

    /// Asks the loop to stop after its current batch of callbacks (asyncio's
    /// `loop.call_soon_threadsafe(loop.stop)`). [`BridgeError::Closed`] on a closed loop.
    ///
    /// ```
    /// # use spindle_bridge::EventLoopExt;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let handle = lp.handle();
    /// std::thread::spawn(move || handle.stop().unwrap()).join().unwrap();
    /// lp.run_forever().unwrap(); // returns: the stop was waiting in the inbox
    /// ```
    pub fn stop(&self) -> Result<(), BridgeError> {
        if self.remote.stop() {
            Ok(())
        } else {
            Err(BridgeError::Closed)
        }
    }

    /// Wakes the loop if it is parked, or makes its next park return at once, without queueing
    /// anything ([`Remote::wake`]): for a scheduler that put work where the loop looks after
    /// waking (a runtime worker's deque).
    ///
    /// ```
    /// # use spindle_bridge::EventLoopExt;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.handle().wake();
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// ```
    pub fn wake(&self) {
        self.remote.wake();
    }

    /// Whether the loop is inside `run_forever` / `run_until_complete` right now.
    ///
    /// ```
    /// # use spindle_bridge::EventLoopExt;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let handle = lp.handle();
    /// assert!(!handle.is_running());
    /// assert!(lp.run_until_complete(async move { handle.is_running() }).unwrap());
    /// ```
    pub fn is_running(&self) -> bool {
        self.remote.is_running()
    }

    /// Whether the loop is closed (it accepts nothing any more).
    ///
    /// ```
    /// # use spindle_bridge::EventLoopExt;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let handle = lp.handle();
    /// lp.close().unwrap();
    /// assert!(handle.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.remote.is_closed()
    }

    /// How many wake-up syscalls submitters have issued to this loop so far: one at most per
    /// time the loop parked, however many submissions arrived meanwhile.
    ///
    /// ```
    /// # use spindle_bridge::EventLoopExt;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let handle = lp.handle();
    /// for _ in 0..1000 {
    ///     handle.call_soon_threadsafe(|| ()).unwrap();
    /// }
    /// assert_eq!(handle.wakeups(), 0); // the loop never parked: nobody had to wake it
    /// ```
    pub fn wakeups(&self) -> u64 {
        self.remote.wakeups()
    }

    /// The id of the loop (the same as `EventLoop::id`).
    ///
    /// ```
    /// # use spindle_bridge::EventLoopExt;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert_eq!(lp.handle().loop_id(), lp.id());
    /// ```
    pub fn loop_id(&self) -> u64 {
        self.remote.loop_id()
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("loop_id", &self.loop_id())
            .field("running", &self.is_running())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(loom)]
impl Inbox for spindle_loop::__loom::Inbox {
    fn submit_value<T, R>(&self, value: T, run: R) -> Result<(), T>
    where
        T: Send + 'static,
        R: FnOnce(T) + Send + 'static,
    {
        spindle_loop::__loom::Inbox::submit_value(self, value, run)
    }
}
