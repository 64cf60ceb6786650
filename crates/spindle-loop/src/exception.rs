//! What the loop reports to its exception handler, and the default handler.
//!
//! asyncio's `call_exception_handler(context)` takes a dict; here it is [`ExceptionContext`], a
//! struct whose [`kind`](ExceptionContext::kind) says what happened and whose optional fields
//! carry the details (the panic message, the task, the callback's name, where it was created).

use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::task::TaskRef;
use crate::EventLoop;

/// A custom exception handler: see [`EventLoop::set_exception_handler`].
pub type ExceptionHandler = Rc<dyn Fn(&EventLoop, &ExceptionContext)>;

/// What kind of event is being reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExceptionKind {
    /// A callback (`call_soon`, `call_later`, threadsafe) panicked; the loop went on.
    CallbackPanicked,
    /// A task's future or its destructor panicked while being dropped.
    TaskPanicked,
    /// A task ended with a panic that nobody retrieved (asyncio: "Task exception was never
    /// retrieved").
    UnretrievedTaskError,
    /// A future's exception was never retrieved before the future was dropped.
    UnretrievedFutureError,
    /// A task was destroyed while still pending, by `close()` or by dropping the loop.
    TaskDestroyedPending,
    /// Debug mode: a callback or task step ran longer than `slow_callback_duration`.
    SlowCallback,
    /// The custom exception handler itself panicked (reported to the default handler).
    HandlerPanicked,
    /// Reported by user code through [`EventLoop::call_exception_handler`].
    User,
    /// Blocking work outlived the timeout of the shutdown of the loop's default executor
    /// (asyncio's warning in `shutdown_default_executor`): it goes on, unjoined.
    ExecutorShutdownTimeout,
}

/// One report to the exception handler.
///
/// ```
/// use spindle_loop::{ExceptionContext, ExceptionKind};
///
/// let ctx = ExceptionContext::new(ExceptionKind::User, "disk is getting full");
/// assert_eq!(ctx.message, "disk is getting full");
/// assert!(ctx.panic.is_none());
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ExceptionContext {
    /// What happened.
    pub kind: ExceptionKind,
    /// A human-readable description.
    pub message: String,
    /// The panic message, when a panic is being reported.
    pub panic: Option<Arc<str>>,
    /// The task concerned, if any.
    pub task: Option<TaskRef>,
    /// The callback concerned (its type name), if any.
    pub callback: Option<&'static str>,
    /// Where the task or callback was created (`#[track_caller]`).
    pub created_at: Option<&'static Location<'static>>,
    /// How long it ran (slow-callback reports).
    pub elapsed: Option<Duration>,
}

impl ExceptionContext {
    /// A context with just a kind and a message; fill in the public fields as needed.
    ///
    /// ```
    /// # use spindle_loop::{ExceptionContext, ExceptionKind};
    /// let mut ctx = ExceptionContext::new(ExceptionKind::User, "oops");
    /// ctx.panic = Some("details".into());
    /// ```
    pub fn new(kind: ExceptionKind, message: impl Into<String>) -> Self {
        ExceptionContext {
            kind,
            message: message.into(),
            panic: None,
            task: None,
            callback: None,
            created_at: None,
            elapsed: None,
        }
    }
}

impl fmt::Debug for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExceptionContext")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("panic", &self.panic)
            .field("task", &self.task.as_ref().map(|t| t.name()))
            .field("callback", &self.callback)
            .field("created_at", &self.created_at)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(panic) = &self.panic {
            write!(f, "; panic: {panic}")?;
        }
        if let Some(task) = &self.task {
            write!(f, "; task: {}", task.name())?;
        }
        if let Some(callback) = self.callback {
            write!(f, "; callback: {callback}")?;
        }
        if let Some(at) = self.created_at {
            write!(f, "; created at {at}")?;
        }
        if let Some(elapsed) = self.elapsed {
            write!(f, "; took {elapsed:?}")?;
        }
        Ok(())
    }
}

/// The default exception handler: a `tracing` event (warning for slow callbacks, error for the
/// rest). Custom handlers may call it to keep the default output.
///
/// ```
/// use spindle_loop::{default_exception_handler, ExceptionContext, ExceptionKind};
///
/// default_exception_handler(&ExceptionContext::new(ExceptionKind::User, "logged via tracing"));
/// ```
pub fn default_exception_handler(ctx: &ExceptionContext) {
    match ctx.kind {
        ExceptionKind::SlowCallback | ExceptionKind::ExecutorShutdownTimeout => {
            tracing::warn!(kind = ?ctx.kind, "{ctx}")
        }
        _ => tracing::error!(kind = ?ctx.kind, "{ctx}"),
    }
}

/// Reports `ctx` to the handler of the loop running on this thread, or to the default handler
/// when none runs here (a stealable task's step run outside a loop).
pub(crate) fn report_to_running_loop(ctx: ExceptionContext) {
    crate::context::with_running(|lp| match lp {
        Some(lp) => lp.report(ctx),
        None => default_exception_handler(&ctx),
    });
}
