//! Each loop's default blocking pool (asyncio's default executor): created on the first
//! `run_in_executor` / `to_thread`, shut down when the loop closes.
//!
//! The pools live in a thread-local map from loop id to pool: an `EventLoop` is used only on
//! its own thread, so that thread's map is the only one that can hold its pool. The loop's
//! `on_close` hook removes the entry and shuts the pool down (queued jobs resolve with
//! [`BridgeError::Closed`]; running ones finish on their threads, unjoined).

use std::cell::RefCell;
use std::collections::HashMap;

use spindle_loop::EventLoop;

use crate::concurrent::ConcurrentFuture;
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
