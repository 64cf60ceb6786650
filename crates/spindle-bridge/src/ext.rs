//! [`EventLoopExt`]: the bridge's methods on [`EventLoop`] (the loop crate knows nothing of
//! threads beyond its own, so they live here).

use spindle_loop::EventLoop;

use crate::concurrent::ConcurrentFuture;
use crate::error::SubmitError;
use crate::handle::LoopHandle;

mod sealed {
    pub trait Sealed {}
    impl Sealed for spindle_loop::EventLoop {}
}

/// Bridge methods on [`EventLoop`]: `lp.handle()` and `lp.run_in_executor(f)`. Import it (or
/// `spindle::prelude::*`) to call them. Sealed: implemented for `EventLoop` only.
///
/// ```
/// use spindle_bridge::EventLoopExt;
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// let handle = lp.handle();
/// assert_eq!(handle.loop_id(), lp.id());
/// ```
pub trait EventLoopExt: sealed::Sealed {
    /// The loop's [`LoopHandle`] (`Send + Sync + Clone`), for other threads.
    ///
    /// ```
    /// use spindle_bridge::EventLoopExt;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let handle = lp.handle();
    /// std::thread::spawn(move || handle.stop().unwrap()).join().unwrap();
    /// lp.run_forever().unwrap();
    /// ```
    fn handle(&self) -> LoopHandle;

    /// Runs the blocking function `f` on the loop's default pool of threads (at most
    /// [`BlockingPool::default_size`](crate::BlockingPool::default_size), asyncio's
    /// `min(32, cores + 4)`) and returns a future of its result, to await on the loop or block
    /// on elsewhere (asyncio's `loop.run_in_executor(None, f)`). The pool starts with the first
    /// call and is shut down when the loop closes: queued jobs then resolve with
    /// [`BridgeError::Closed`](crate::BridgeError::Closed). On a closed loop, `f` comes back in
    /// the error.
    ///
    /// ```
    /// use spindle_bridge::EventLoopExt;
    /// use spindle_loop::EventLoop;
    ///
    /// let lp = EventLoop::new().unwrap();
    /// let read = lp.run_in_executor(|| std::fs::metadata(".").is_ok()).unwrap();
    /// assert_eq!(lp.run_until_complete(read).unwrap(), Ok(true));
    /// lp.close().unwrap();
    /// assert!(lp.run_in_executor(|| ()).is_err());
    /// ```
    fn run_in_executor<F, T>(&self, f: F) -> Result<ConcurrentFuture<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;
}

impl EventLoopExt for EventLoop {
    fn handle(&self) -> LoopHandle {
        LoopHandle::new(self)
    }

    fn run_in_executor<F, T>(&self, f: F) -> Result<ConcurrentFuture<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::executor::run_in_executor(self, f)
    }
}
