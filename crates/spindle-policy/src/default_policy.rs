//! [`DefaultEventLoopPolicy`]: each thread has its own loop, as the asyncio notes describe.
//!
//! Per-thread state lives in two places:
//! - the `!Send` current loop of each thread, in a `std::thread_local!` keyed by policy, since a
//!   loop must never leave its thread;
//! - the policy's registry of every thread's loop handle, in a [`thread_local::ThreadLocal`], which
//!   (unlike `std`'s) the policy can enumerate from any thread: [`DefaultEventLoopPolicy::loops`].
//!   A thread's entry is cleared when its loop closes (a close hook) or is unset.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use spindle_bridge::LoopHandle;
use spindle_loop::EventLoop;
use thread_local::ThreadLocal;

use crate::error::{current_thread_label, PolicyError};
use crate::policy::EventLoopPolicy;

/// Which threads get a loop created on demand by `get_event_loop()` when none was ever set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoCreate {
    /// Only the main thread (asyncio's rule). The main thread is the one Rust names `"main"`.
    #[default]
    MainThreadOnly,
    /// Every thread.
    EveryThread,
    /// No thread: a loop must always be set explicitly.
    Never,
}

thread_local! {
    /// Per thread: policy id -> the loop `set_event_loop` set on this thread. An entry exists
    /// once `set_event_loop` was called here (even with `None`): then no loop is ever created on
    /// demand.
    static SLOTS: RefCell<HashMap<u64, Option<EventLoop>>> = RefCell::new(HashMap::new());
}

static NEXT_POLICY_ID: AtomicU64 = AtomicU64::new(1);

/// The default policy: the context is the current thread, and each thread has its own loop.
///
/// - `get_event_loop()` inside a running loop returns that loop;
/// - otherwise the loop set for this thread; if none was ever set, one is created and made
///   current where [`AutoCreate`] allows (by default only in the main thread); after
///   `set_event_loop(None)` none is created again;
/// - anywhere else it is [`PolicyError::NoCurrentLoop`], naming the thread.
///
/// ```
/// use spindle_policy::{AutoCreate, DefaultEventLoopPolicy, EventLoopPolicy};
///
/// let policy = DefaultEventLoopPolicy::new(AutoCreate::Never);
/// let err = std::thread::Builder::new()
///     .name("worker-3".into())
///     .spawn(move || policy.get_event_loop().unwrap_err().to_string())
///     .unwrap()
///     .join()
///     .unwrap();
/// assert!(err.starts_with("no current event loop in thread 'worker-3'"));
/// ```
pub struct DefaultEventLoopPolicy {
    id: u64,
    auto_create: AutoCreate,
    registry: Arc<ThreadLocal<Mutex<Option<LoopHandle>>>>,
}

impl Default for DefaultEventLoopPolicy {
    fn default() -> Self {
        Self::new(AutoCreate::default())
    }
}

impl DefaultEventLoopPolicy {
    /// A policy with the given auto-create rule.
    ///
    /// ```
    /// use spindle_policy::{AutoCreate, DefaultEventLoopPolicy};
    /// let policy = DefaultEventLoopPolicy::new(AutoCreate::EveryThread);
    /// assert_eq!(policy.auto_create(), AutoCreate::EveryThread);
    /// ```
    pub fn new(auto_create: AutoCreate) -> Self {
        DefaultEventLoopPolicy {
            id: NEXT_POLICY_ID.fetch_add(1, Ordering::Relaxed),
            auto_create,
            registry: Arc::new(ThreadLocal::new()),
        }
    }

    /// The auto-create rule.
    ///
    /// ```
    /// use spindle_policy::{AutoCreate, DefaultEventLoopPolicy};
    /// assert_eq!(DefaultEventLoopPolicy::default().auto_create(), AutoCreate::MainThreadOnly);
    /// ```
    pub fn auto_create(&self) -> AutoCreate {
        self.auto_create
    }

    /// The thread-safe handles of every thread's current loop that is still open.
    ///
    /// ```
    /// use spindle_policy::{AutoCreate, DefaultEventLoopPolicy, EventLoopPolicy};
    /// let policy = DefaultEventLoopPolicy::new(AutoCreate::Never);
    /// assert!(policy.loops().is_empty());
    /// let lp = policy.new_event_loop().unwrap();
    /// policy.set_event_loop(Some(lp.clone()));
    /// assert_eq!(policy.loops()[0].loop_id(), lp.id());
    /// lp.close().unwrap(); // a closed loop leaves the registry
    /// assert!(policy.loops().is_empty());
    /// ```
    pub fn loops(&self) -> Vec<LoopHandle> {
        self.registry
            .iter()
            .filter_map(|entry| entry.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .filter(|handle| !handle.is_closed())
            .collect()
    }

    fn may_create_here(&self) -> bool {
        match self.auto_create {
            AutoCreate::EveryThread => true,
            AutoCreate::Never => false,
            AutoCreate::MainThreadOnly => is_main_thread(),
        }
    }

    fn publish(&self, lp: Option<&EventLoop>) {
        let entry = self.registry.get_or(|| Mutex::new(None));
        *entry.lock().unwrap_or_else(|e| e.into_inner()) = lp.map(LoopHandle::new);
        if let Some(lp) = lp {
            // When the loop closes, this thread's entry goes (if it still names this loop).
            let registry = self.registry.clone();
            let loop_id = lp.id();
            let _ = lp.on_close(move || {
                if let Some(entry) = registry.get() {
                    let mut entry = entry.lock().unwrap_or_else(|e| e.into_inner());
                    if entry.as_ref().is_some_and(|h| h.loop_id() == loop_id) {
                        *entry = None;
                    }
                }
            });
        }
    }
}

impl EventLoopPolicy for DefaultEventLoopPolicy {
    fn get_event_loop(&self) -> Result<EventLoop, PolicyError> {
        if let Some(lp) = EventLoop::running() {
            return Ok(lp);
        }
        let existing = SLOTS.with(|slots| slots.borrow().get(&self.id).cloned());
        match existing {
            Some(Some(lp)) => Ok(lp),
            None if self.may_create_here() => {
                let lp = self.new_event_loop()?;
                self.set_event_loop(Some(lp.clone()));
                Ok(lp)
            }
            _ => Err(PolicyError::NoCurrentLoop {
                thread: current_thread_label(),
            }),
        }
    }

    fn set_event_loop(&self, lp: Option<EventLoop>) {
        self.publish(lp.as_ref());
        let previous = SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            std::mem::replace(slots.entry(self.id).or_default(), lp)
        });
        // Dropped outside the borrow: the last handle to a loop closes it, which may call back.
        drop(previous);
    }

    fn new_event_loop(&self) -> Result<EventLoop, PolicyError> {
        Ok(EventLoop::new()?)
    }
}

impl std::fmt::Debug for DefaultEventLoopPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultEventLoopPolicy")
            .field("auto_create", &self.auto_create)
            .field("loops", &self.loops().len())
            .finish()
    }
}

/// Whether this is the main thread: the one Rust names `"main"` (the thread `fn main` runs on).
pub(crate) fn is_main_thread() -> bool {
    std::thread::current().name() == Some("main")
}
