//! The [`EventLoopPolicy`] trait and the process-wide current policy.
//!
//! As in asyncio, a policy decides which loop `get_event_loop()` returns on each thread. The
//! process has one current policy ([`get_event_loop_policy`]); until one is set, it is a
//! [`DefaultEventLoopPolicy`] with the default settings.

use std::sync::{Arc, RwLock};

use spindle_loop::EventLoop;

use crate::default_policy::DefaultEventLoopPolicy;
use crate::error::PolicyError;

/// Decides which loop each thread gets (asyncio's `AbstractEventLoopPolicy`).
///
/// Loops are `!Send`, so a policy keeps its per-thread state in thread-local storage; the policy
/// object itself is shared by every thread.
///
/// ```
/// use spindle_policy::{EventLoopPolicy, DefaultEventLoopPolicy, AutoCreate};
///
/// let policy = DefaultEventLoopPolicy::new(AutoCreate::EveryThread);
/// let lp = policy.get_event_loop().unwrap();
/// assert_eq!(policy.get_event_loop().unwrap().id(), lp.id());
/// ```
pub trait EventLoopPolicy: Send + Sync {
    /// The current thread's loop: the running one if a loop runs on this thread, else the one
    /// set for this thread (possibly creating it, as the policy allows), else an error.
    fn get_event_loop(&self) -> Result<EventLoop, PolicyError>;

    /// Makes `lp` the current thread's loop (`None`: this thread has none from now on).
    fn set_event_loop(&self, lp: Option<EventLoop>);

    /// A fresh loop, not made current.
    fn new_event_loop(&self) -> Result<EventLoop, PolicyError>;
}

static CURRENT_POLICY: RwLock<Option<Arc<dyn EventLoopPolicy>>> = RwLock::new(None);

/// The process-wide current policy (a default policy until one is set).
///
/// ```
/// let policy = spindle_policy::get_event_loop_policy();
/// let lp = policy.new_event_loop().unwrap();
/// assert!(!lp.is_closed());
/// ```
pub fn get_event_loop_policy() -> Arc<dyn EventLoopPolicy> {
    if let Some(policy) = CURRENT_POLICY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        return policy.clone();
    }
    let mut slot = CURRENT_POLICY.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| Arc::new(DefaultEventLoopPolicy::default()))
        .clone()
}

/// Replaces the process-wide policy; `None` restores a fresh default policy.
///
/// ```
/// use std::sync::Arc;
/// use spindle_policy::{set_event_loop_policy, DefaultEventLoopPolicy, AutoCreate};
///
/// set_event_loop_policy(Some(Arc::new(DefaultEventLoopPolicy::new(AutoCreate::EveryThread))));
/// assert!(spindle_policy::get_event_loop().is_ok());
/// set_event_loop_policy(None);
/// ```
pub fn set_event_loop_policy(policy: Option<Arc<dyn EventLoopPolicy>>) {
    *CURRENT_POLICY.write().unwrap_or_else(|e| e.into_inner()) = policy;
}

/// `get_event_loop_policy().get_event_loop()`.
///
/// ```
/// use spindle_loop::EventLoop;
/// // Inside a running loop it is always that loop, whatever the policy says.
/// let lp = EventLoop::new().unwrap();
/// let id = lp.id();
/// let seen = lp.run_until_complete(async { spindle_policy::get_event_loop().unwrap().id() });
/// assert_eq!(seen.unwrap(), id);
/// ```
pub fn get_event_loop() -> Result<EventLoop, PolicyError> {
    if let Some(lp) = EventLoop::running() {
        return Ok(lp);
    }
    get_event_loop_policy().get_event_loop()
}

/// `get_event_loop_policy().set_event_loop(lp)`.
///
/// ```
/// let lp = spindle_policy::new_event_loop().unwrap();
/// spindle_policy::set_event_loop(Some(lp.clone()));
/// assert_eq!(spindle_policy::get_event_loop().unwrap().id(), lp.id());
/// spindle_policy::set_event_loop(None);
/// ```
pub fn set_event_loop(lp: Option<EventLoop>) {
    get_event_loop_policy().set_event_loop(lp)
}

/// `get_event_loop_policy().new_event_loop()`.
///
/// ```
/// let a = spindle_policy::new_event_loop().unwrap();
/// let b = spindle_policy::new_event_loop().unwrap();
/// assert_ne!(a.id(), b.id());
/// ```
pub fn new_event_loop() -> Result<EventLoop, PolicyError> {
    get_event_loop_policy().new_event_loop()
}

/// The loop running on this thread, or [`PolicyError::NoRunningLoop`]. Works inside callbacks
/// as well as tasks.
///
/// ```
/// use spindle_loop::EventLoop;
/// assert!(spindle_policy::get_running_loop().is_err());
/// let lp = EventLoop::new().unwrap();
/// let inner = lp.clone();
/// lp.call_soon(move || assert_eq!(spindle_policy::get_running_loop().unwrap().id(), inner.id()))
///     .unwrap();
/// lp.stop();
/// lp.run_forever().unwrap();
/// ```
pub fn get_running_loop() -> Result<EventLoop, PolicyError> {
    EventLoop::running().ok_or(PolicyError::NoRunningLoop)
}
