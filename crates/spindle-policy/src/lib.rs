//! # spindle-policy: which loop a thread gets
//!
//! Today this crate offers [`get_running_loop`]; the event-loop policy, `run()` and the
//! work-stealing runtime are tracked by the policy and runtime issues.
//!
//! ```
//! use spindle_policy::get_running_loop;
//! assert!(get_running_loop().is_err());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use spindle_loop::EventLoop;

/// The loop running on this thread, or an error if none is (asyncio's `get_running_loop()`).
///
/// ```
/// use spindle_loop::EventLoop;
/// let lp = EventLoop::new().unwrap();
/// let id = lp.run_until_complete(async { spindle_policy::get_running_loop().unwrap().id() }).unwrap();
/// assert_eq!(id, lp.id());
/// ```
pub fn get_running_loop() -> Result<EventLoop, NoRunningLoop> {
    EventLoop::running().ok_or(NoRunningLoop)
}

/// No event loop is running on this thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRunningLoop;

impl std::fmt::Display for NoRunningLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "no running event loop: call this from inside a task or callback of a running loop",
        )
    }
}

impl std::error::Error for NoRunningLoop {}
