//! [`LoopFuture`]: asyncio's `Future`, a result slot bound to one loop.
//!
//! Done-callbacks are always scheduled with `call_soon` (in the order they were added), never
//! called inline, also when added to a future that is already done. Awaiting it returns a clone of
//! the outcome, so any number of tasks may await the same future. Cancelling a task suspended
//! on a loop future cancels the future (asyncio's rule; see `task::awaited_future`), so its
//! other awaiters see it cancelled too.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::error::{LoopError, TaskError};
use crate::event_loop::Inner;
use crate::exception::{ExceptionContext, ExceptionKind};
use crate::task::CancelAwaited;

/// A done-callback of a [`LoopFuture`]; shared so it can be added twice and removed by identity.
pub type FutureCallback<T> = Rc<dyn Fn(&LoopFuture<T>)>;

/// A future whose result is set by hand (asyncio's `loop.create_future()`).
///
/// ```
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let fut = lp.create_future::<&str>();
/// let setter = fut.clone();
/// lp.call_soon(move || setter.set_result("ready").unwrap()).unwrap();
/// assert_eq!(lp.run_until_complete(fut).unwrap(), Ok("ready"));
/// ```
pub struct LoopFuture<T> {
    cell: Rc<FutureCell<T>>,
    /// This handle, polled inside a task's step, made the future that task's await link (see
    /// `task::awaited_future`); dropping the handle inside a later part of the step (a
    /// `timeout` or `select` letting go of it) takes the link back.
    linked: bool,
}

struct FutureCell<T> {
    owner: Weak<Inner>,
    outcome: RefCell<Option<Result<T, TaskError>>>,
    callbacks: RefCell<Vec<FutureCallback<T>>>,
    wakers: RefCell<Vec<Waker>>,
    retrieved: Cell<bool>,
    created_at: &'static Location<'static>,
}

impl<T> Clone for LoopFuture<T> {
    fn clone(&self) -> Self {
        LoopFuture {
            cell: self.cell.clone(),
            linked: false,
        }
    }
}

impl<T: 'static> LoopFuture<T> {
    pub(crate) fn new(owner: Weak<Inner>, created_at: &'static Location<'static>) -> Self {
        LoopFuture {
            linked: false,
            cell: Rc::new(FutureCell {
                owner,
                outcome: RefCell::new(None),
                callbacks: RefCell::new(Vec::new()),
                wakers: RefCell::new(Vec::new()),
                retrieved: Cell::new(false),
                created_at,
            }),
        }
    }

    /// Marks the future done with `value`. `InvalidState` if it is already done or cancelled.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future();
    /// fut.set_result(1).unwrap();
    /// assert!(fut.set_result(2).is_err());
    /// ```
    pub fn set_result(&self, value: T) -> Result<(), LoopError> {
        self.check_settable(
            "set_result(): the future is already done",
            "set_result(): the future was cancelled",
        )?;
        self.complete(Ok(value));
        Ok(())
    }

    /// Marks the future done with an error (asyncio's `set_exception`). `InvalidState` if it is
    /// already done or cancelled.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future::<()>();
    /// fut.set_exception("no route to host").unwrap();
    /// assert!(lp.run_until_complete(fut).unwrap().is_err());
    /// ```
    pub fn set_exception(
        &self,
        error: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Result<(), LoopError> {
        self.check_settable(
            "set_exception(): the future is already done",
            "set_exception(): the future was cancelled",
        )?;
        self.complete(Err(TaskError::Exception(Arc::from(error.into()))));
        Ok(())
    }

    /// Cancels the future: awaiters get [`TaskError::Cancelled`] and the done-callbacks are
    /// scheduled. Returns `false` if it was already done.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future::<()>();
    /// assert!(fut.cancel());
    /// assert!(fut.cancelled());
    /// assert!(!fut.cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        if self.done() {
            return false;
        }
        self.complete(Err(TaskError::Cancelled));
        true
    }

    /// Whether the future has a result, an error, or was cancelled.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future();
    /// assert!(!fut.done());
    /// fut.set_result(()).unwrap();
    /// assert!(fut.done());
    /// ```
    pub fn done(&self) -> bool {
        self.cell.outcome.borrow().is_some()
    }

    /// Whether the future was cancelled.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future::<()>();
    /// fut.cancel();
    /// assert!(fut.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        matches!(
            &*self.cell.outcome.borrow(),
            Some(Err(TaskError::Cancelled))
        )
    }

    /// The outcome of a done future (asyncio's `result()`, with the error returned instead of
    /// raised). `InvalidState` while it is pending.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future();
    /// assert!(fut.result().is_err());
    /// fut.set_result(9).unwrap();
    /// assert_eq!(fut.result().unwrap(), Ok(9));
    /// ```
    pub fn result(&self) -> Result<Result<T, TaskError>, LoopError>
    where
        T: Clone,
    {
        match &*self.cell.outcome.borrow() {
            Some(outcome) => {
                self.cell.retrieved.set(true);
                Ok(outcome.clone())
            }
            None => Err(LoopError::InvalidState(
                "result(): the future is not done yet",
            )),
        }
    }

    /// Adds a callback scheduled (with `call_soon`) when the future is done, or right away if it
    /// already is. Returns the shared callback for
    /// [`remove_done_callback`](Self::remove_done_callback).
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future::<u8>();
    /// fut.add_done_callback(|f| println!("done: {:?}", f.done()));
    /// fut.set_result(1).unwrap();
    /// ```
    pub fn add_done_callback(
        &self,
        callback: impl Fn(&LoopFuture<T>) + 'static,
    ) -> FutureCallback<T> {
        let callback: FutureCallback<T> = Rc::new(callback);
        self.add_done_callback_shared(&callback);
        callback
    }

    /// Adds the same shared callback again; each copy runs.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future::<u8>();
    /// let cb = fut.add_done_callback(|_| ());
    /// fut.add_done_callback_shared(&cb);
    /// assert_eq!(fut.remove_done_callback(&cb), 2);
    /// ```
    pub fn add_done_callback_shared(&self, callback: &FutureCallback<T>) {
        if self.done() {
            self.schedule_callback(callback.clone());
        } else {
            self.cell.callbacks.borrow_mut().push(callback.clone());
        }
    }

    /// Removes every copy of `callback` not yet scheduled; returns how many.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future::<u8>();
    /// let cb = fut.add_done_callback(|_| unreachable!());
    /// assert_eq!(fut.remove_done_callback(&cb), 1);
    /// fut.set_result(0).unwrap();
    /// ```
    pub fn remove_done_callback(&self, callback: &FutureCallback<T>) -> usize {
        let mut callbacks = self.cell.callbacks.borrow_mut();
        let before = callbacks.len();
        callbacks.retain(|c| !Rc::ptr_eq(c, callback));
        before - callbacks.len()
    }

    /// Where the future was created.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future::<()>();
    /// assert_eq!(fut.created_at().line(), line!() - 1);
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        self.cell.created_at
    }

    fn check_settable(&self, done: &'static str, cancelled: &'static str) -> Result<(), LoopError> {
        match &*self.cell.outcome.borrow() {
            None => Ok(()),
            Some(Err(TaskError::Cancelled)) => Err(LoopError::InvalidState(cancelled)),
            Some(_) => Err(LoopError::InvalidState(done)),
        }
    }

    fn complete(&self, outcome: Result<T, TaskError>) {
        *self.cell.outcome.borrow_mut() = Some(outcome);
        let callbacks = std::mem::take(&mut *self.cell.callbacks.borrow_mut());
        for callback in callbacks {
            self.schedule_callback(callback);
        }
        let wakers = std::mem::take(&mut *self.cell.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
    }

    fn schedule_callback(&self, callback: FutureCallback<T>) {
        let Some(owner) = self.cell.owner.upgrade() else {
            return;
        };
        let fut = self.clone();
        if owner
            .call_soon_internal(move || callback(&fut), self.cell.created_at)
            .is_err()
        {
            tracing::debug!("future done-callback dropped: the loop is closed");
        }
    }
}

impl<T: Clone + 'static> Future for LoopFuture<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = &*self.cell.outcome.borrow() {
            self.cell.retrieved.set(true);
            return Poll::Ready(outcome.clone());
        }
        {
            let mut wakers = self.cell.wakers.borrow_mut();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
        }
        // Cancelling the task suspended here cancels this future (asyncio's `_fut_waiter`).
        let link: Weak<dyn CancelAwaited> = Rc::downgrade(&self.cell) as _;
        let linked = crate::task::note_awaiting_future(link);
        self.get_mut().linked |= linked;
        Poll::Pending
    }
}

impl<T> Drop for LoopFuture<T> {
    fn drop(&mut self) {
        if self.linked {
            let this: *const FutureCell<T> = Rc::as_ptr(&self.cell);
            crate::task::forget_awaited_future(this.cast());
        }
    }
}

impl<T: 'static> CancelAwaited for FutureCell<T> {
    fn cancel_awaited(self: Rc<Self>) -> bool {
        LoopFuture {
            cell: self,
            linked: false,
        }
        .cancel()
    }
}

impl<T> Drop for FutureCell<T> {
    fn drop(&mut self) {
        let failed = matches!(
            &*self.outcome.borrow(),
            Some(Err(TaskError::Exception(_) | TaskError::Panicked(_)))
        );
        if failed && !self.retrieved.get() {
            let mut ctx = ExceptionContext::new(
                ExceptionKind::UnretrievedFutureError,
                "Future exception was never retrieved",
            );
            if let Some(Err(e)) = &*self.outcome.borrow() {
                ctx.panic = Some(e.to_string().into());
            }
            ctx.created_at = Some(self.created_at);
            match self.owner.upgrade() {
                Some(owner) => owner.report(ctx),
                None => crate::exception::default_exception_handler(&ctx),
            }
        }
    }
}

impl<T> fmt::Debug for LoopFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.cell.outcome.borrow() {
            None => "pending",
            Some(Ok(_)) => "finished",
            Some(Err(TaskError::Cancelled)) => "cancelled",
            Some(Err(_)) => "failed",
        };
        f.debug_struct("LoopFuture")
            .field("state", &state)
            .field("created_at", &self.cell.created_at)
            .finish()
    }
}
