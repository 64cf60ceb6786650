//! Each loop's default blocking pool (asyncio's default executor): created on the first
//! `run_in_executor` / `to_thread`, shut down when the loop closes.
//!
//! The pools live in a thread-local map from loop id to pool: an `EventLoop` is used only on
//! its own thread, so that thread's map is the only one that can hold its pool. The loop's
//! `on_close` hook removes the entry and shuts the pool down (queued jobs resolve with
//! [`BridgeError::Closed`]; running ones finish on their threads, unjoined).
//! [`shutdown_default_executor`] is the graceful way, before the close (`asyncio.run` and
//! `Runner::close` use it): queued and running jobs finish, waited for up to a timeout.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use spindle_loop::{EventLoop, ExceptionContext, ExceptionKind};

use crate::concurrent::{Completer, ConcurrentFuture};
use crate::error::{BridgeError, SubmitError};
use crate::pool::BlockingPool;

thread_local! {
    static LOOP_POOLS: RefCell<HashMap<u64, BlockingPool>> = RefCell::new(HashMap::new());
}

/// The default pool of `lp`, created (and tied to its close) on first use.
fn loop_pool(lp: &EventLoop) -> Result<BlockingPool, BridgeError> {
    if lp.is_closed() {
        return Err(BridgeError::Closed);
    }
    let id = lp.id();
    if let Some(pool) = LOOP_POOLS.with(|pools| pools.borrow().get(&id).cloned()) {
        return Ok(pool);
    }
    let pool = BlockingPool::build(
        BlockingPool::default_size(),
        format!("spindle-blocking-{id}"),
        BridgeError::Closed,
    );
    let on_close = {
        let pool = pool.clone();
        move || {
            // `try_with`: the loop may be dropped while this thread's locals are torn down.
            let _ = LOOP_POOLS.try_with(|pools| pools.borrow_mut().remove(&id));
            pool.shutdown();
        }
    };
    lp.on_close(on_close).map_err(|_| BridgeError::Closed)?;
    LOOP_POOLS.with(|pools| pools.borrow_mut().insert(id, pool.clone()));
    Ok(pool)
}

/// Runs `f` on `lp`'s default pool.
pub(crate) fn run_in_executor<F, T>(
    lp: &EventLoop,
    f: F,
) -> Result<ConcurrentFuture<T>, SubmitError<F>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match loop_pool(lp) {
        Ok(pool) => pool.spawn(f),
        Err(reason) => Err(SubmitError::new(f, reason)),
    }
}

/// Runs the blocking function `f` on a thread of the running loop's default pool and returns a
/// future of its result to await (asyncio's `to_thread`). A panic in `f` comes back as
/// [`BridgeError::Panicked`]. With no loop running on this thread, `f` comes back in a
/// [`BridgeError::NoRunningLoop`] error.
///
/// ```
/// use spindle_bridge::to_thread;
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let sum = lp
///     .run_until_complete(async {
///         let work = to_thread(|| (1..=100u32).sum::<u32>()).unwrap();
///         work.await.unwrap()
///     })
///     .unwrap();
/// assert_eq!(sum, 5050);
/// lp.close().unwrap(); // also shuts the loop's pool down
/// ```
pub fn to_thread<F, T>(f: F) -> Result<ConcurrentFuture<T>, SubmitError<F>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match EventLoop::running() {
        Some(lp) => run_in_executor(&lp, f),
        None => Err(SubmitError::new(f, BridgeError::NoRunningLoop)),
    }
}

/// How long [`shutdown_default_executor`] waits by default: asyncio's `THREAD_JOIN_TIMEOUT`
/// (300 s), which `asyncio.run` passes.
pub const EXECUTOR_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(300);

/// Shuts down the running loop's default pool and waits, at most `timeout`, for its queued and
/// running jobs to finish (asyncio's `loop.shutdown_default_executor(timeout)`). The wait
/// happens on a helper thread while the loop keeps running, so a job that needs the loop (a
/// `call_soon_threadsafe` it waits on) can still finish. Later `to_thread` calls on this loop
/// are refused.
///
/// Jobs that outlive `timeout` go on unjoined; they are reported to the loop's exception
/// handler ([`ExceptionKind::ExecutorShutdownTimeout`]) and the result is
/// [`BridgeError::Timeout`]. With no loop running here: [`BridgeError::NoRunningLoop`].
///
/// ```
/// use std::time::Duration;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use spindle_bridge::{shutdown_default_executor, to_thread};
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let done = Arc::new(AtomicBool::new(false));
/// let d = done.clone();
/// lp.run_until_complete(async move {
///     // Started, not awaited.
///     let _job = to_thread(move || {
///         std::thread::sleep(Duration::from_millis(5));
///         d.store(true, Ordering::SeqCst);
///     });
///     shutdown_default_executor(Duration::from_secs(60)).await.unwrap();
/// })
/// .unwrap();
/// assert!(done.load(Ordering::SeqCst));
/// ```
pub async fn shutdown_default_executor(timeout: Duration) -> Result<(), BridgeError> {
    let lp = EventLoop::running().ok_or(BridgeError::NoRunningLoop)?;
    let Some(pool) = LOOP_POOLS.with(|pools| pools.borrow().get(&lp.id()).cloned()) else {
        return Ok(()); // never used: nothing to wait for
    };
    let (completer, finished) = Completer::pair(BridgeError::Closed);
    let waiting = pool.clone();
    std::thread::Builder::new()
        .name("spindle-executor-shutdown".to_owned())
        .spawn(move || completer.complete(Ok(waiting.shutdown_and_wait(timeout))))
        .map_err(|e| BridgeError::Spawn(e.to_string().into()))?;
    if finished.await? {
        return Ok(());
    }
    let ctx = ExceptionContext::new(
        ExceptionKind::ExecutorShutdownTimeout,
        format!(
            "the loop's default executor did not finish its jobs within {timeout:?}; \
             {} thread(s) still running, left unjoined",
            pool.threads()
        ),
    );
    lp.call_exception_handler(ctx);
    Err(BridgeError::Timeout(timeout))
}
