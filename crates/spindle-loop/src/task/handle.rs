//! [`Task`]: the awaitable handle of a task, which owns its result.

use super::*;

/// A task on a loop: await it for `Result<T, TaskError>`.
///
/// Dropping the handle detaches the task: it runs on (as in asyncio and tokio). Use
/// [`cancel`](Self::cancel) to stop it. The other operations of [`TaskRef`] are available here
/// too (`id`, `name`, `done`, `add_done_callback`, ...).
///
/// ```
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let inner = lp.clone();
/// let out = lp
///     .run_until_complete(async move {
///         let child = inner.create_task(async { 20 }).unwrap();
///         child.await.unwrap() + 1
///     })
///     .unwrap();
/// assert_eq!(out, 21);
/// ```
pub struct Task<T> {
    join: Option<JoinHandle<Result<T, TaskError>>>,
    /// The task's header and the raw parts of its waker. Borrowed, not counted: `join` (the
    /// cell's handle) keeps the allocation alive while it is `Some`, and every use below
    /// happens while it is (`Drop` uses them before releasing `join`). Building a `TaskRef`
    /// clones the waker, which takes a count of its own.
    ///
    /// The flag says whether the result was taken (`TAKEN`): the handle stays four words (a
    /// spawn-heavy benchmark that keeps its handles measured ~0.45 ns per byte of handle).
    header: FlaggedHeader,
    pub(super) waker_data: *const (),
    pub(super) waker_vtable: &'static RawWakerVTable,
}

// SAFETY: the raw parts only stand for the task's header (`Sync`) and its waker (`Send + Sync`);
// the output `T` crosses threads only if it is `Send`, as with the cell's own handle.
unsafe impl<T: Send> Send for Task<T> {}
// SAFETY: `&Task<T>` only reads the header (`Sync`) and wakes the task.
unsafe impl<T> Sync for Task<T> {}

impl<T> Task<T> {
    pub(crate) fn new(join: JoinHandle<Result<T, TaskError>>, waker: WakerParts) -> Self {
        let header = FlaggedHeader::new(join.metadata());
        Task {
            join: Some(join),
            header,
            waker_data: waker.data,
            waker_vtable: waker.vtable,
        }
    }

    #[inline]
    fn header_ptr(&self) -> NonNull<TaskHeader> {
        self.header.ptr()
    }

    #[inline]
    fn taken(&self) -> bool {
        self.header.is_set()
    }

    /// The task's own waker, borrowed (no reference count taken).
    fn borrowed_waker(&self) -> ManuallyDrop<Waker> {
        // SAFETY: the parts come from a live waker of this task, and the allocation they point
        // to is kept alive by `self.join` (see the field docs). ManuallyDrop: dropping it would
        // release a count we never took.
        ManuallyDrop::new(unsafe {
            Waker::from_raw(RawWaker::new(self.waker_data, self.waker_vtable))
        })
    }

    pub(crate) fn header(&self) -> &TaskHeader {
        // SAFETY: kept alive by `self.join` (see the field docs); `header_ptr` is the header's
        // own address (the `TAKEN` tag cleared).
        unsafe { self.header_ptr().as_ref() }
    }

    /// A shared reference to the task (cancel, name, inspect) that does not own its result.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert_eq!(t.task_ref().id(), t.id());
    /// ```
    pub fn task_ref(&self) -> TaskRef {
        TaskRef {
            waker: (*self.borrowed_waker()).clone(),
            header: self.header_ptr(),
        }
    }

    /// Requests cancellation; see [`TaskRef::cancel`]. `false` if the task is already done.
    ///
    /// ```
    /// # use spindle_loop::TaskError;
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async { unreachable!() }).unwrap();
    /// assert!(t.cancel()); // before its first step: the body never runs
    /// assert_eq!(lp.run_until_complete(t).unwrap(), Err(TaskError::Cancelled));
    /// ```
    pub fn cancel(&self) -> bool {
        self.header().request_cancel(&self.borrowed_waker())
    }

    /// See [`TaskRef::id`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(lp.create_task(async {}).unwrap().id() > 0);
    /// ```
    pub fn id(&self) -> u64 {
        self.header().id
    }

    /// See [`TaskRef::name`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(lp.create_task(async {}).unwrap().name().starts_with("Task-"));
    /// ```
    pub fn name(&self) -> String {
        self.header().name()
    }

    /// See [`TaskRef::set_name`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// t.set_name("io");
    /// assert_eq!(t.name(), "io");
    /// ```
    pub fn set_name(&self, name: impl Into<String>) {
        self.header().slow().name = Some(name.into().into_boxed_str());
    }

    /// See [`TaskRef::done`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(!lp.create_task(async {}).unwrap().done());
    /// ```
    pub fn done(&self) -> bool {
        // DONE is set by the task before the cell stores its output; on another thread the
        // handle could see one without the other. Done means the result can be taken.
        self.header().state() & DONE != 0
            && self.join.as_ref().is_none_or(|join| join.is_finished())
    }

    /// See [`TaskRef::cancelled`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(!lp.create_task(async {}).unwrap().cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.header().state() & CANCELLED != 0
    }

    /// [`TaskRef::panicked`] without building a `TaskRef` (which clones the waker).
    pub(crate) fn panicked(&self) -> bool {
        self.header().state() & FAILED != 0
    }

    /// See [`TaskRef::add_done_callback`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// t.add_done_callback(|task| println!("{} done", task.name()));
    /// ```
    pub fn add_done_callback(
        &self,
        callback: impl Fn(&TaskRef) + Send + Sync + 'static,
    ) -> TaskCallback {
        self.task_ref().add_done_callback(callback)
    }

    /// See [`TaskRef::add_done_callback_shared`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let cb = t.add_done_callback(|_| ());
    /// t.add_done_callback_shared(&cb);
    /// ```
    pub fn add_done_callback_shared(&self, callback: &TaskCallback) {
        self.task_ref().add_done_callback_shared(callback)
    }

    /// See [`TaskRef::remove_done_callback`].
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let cb = t.add_done_callback(|_| ());
    /// assert_eq!(t.remove_done_callback(&cb), 1);
    /// ```
    pub fn remove_done_callback(&self, callback: &TaskCallback) -> usize {
        self.header().remove_callback(callback)
    }

    /// Takes the result of a finished task without waiting (asyncio's `Task.result()`).
    ///
    /// `Err(LoopError::InvalidState)` if the task is not done yet or its result was already
    /// taken; otherwise the task's outcome.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let mut t = lp.create_task(async { 3 }).unwrap();
    /// assert!(t.result().is_err()); // not done yet
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(t.result().unwrap(), Ok(3));
    /// ```
    pub fn result(&mut self) -> Result<Result<T, TaskError>, LoopError> {
        if self.taken() {
            return Err(LoopError::InvalidState(
                "result(): the task's result was already taken",
            ));
        }
        let Some(join) = self.join.as_mut() else {
            return Err(LoopError::InvalidState(
                "result(): the task's result was already taken",
            ));
        };
        if !join.is_finished() {
            return Err(LoopError::InvalidState(
                "result(): the task is not done yet",
            ));
        }
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(join).poll(&mut cx) {
            Poll::Ready(outcome) => Ok(self.take(outcome)),
            Poll::Pending => Err(LoopError::InvalidState(
                "result(): the task is not done yet",
            )),
        }
    }

    fn take(&mut self, outcome: Option<Result<T, TaskError>>) -> Result<T, TaskError> {
        self.header.set();
        match outcome {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => {
                self.header().mark_retrieved();
                Err(e)
            }
            // The cell dropped the future without output: destroyed at close.
            None => Err(TaskError::Cancelled),
        }
    }

    /// Polls for the result without recording an await edge: cancelling the polling task does
    /// not cancel this one (what `shield`, `gather` and `wait_for` need; they cancel children
    /// themselves, or, for `shield`, never).
    pub(crate) fn poll_unlinked(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        assert!(
            !self.taken(),
            "a spindle Task was polled after its result was taken"
        );
        let Some(join) = self.join.as_mut() else {
            return Poll::Ready(Err(TaskError::Cancelled));
        };
        match Pin::new(join).poll(cx) {
            Poll::Ready(outcome) => Poll::Ready(self.take(outcome)),
            // A task awaiting its own handle would wait for ever: fail the await at once
            // (asyncio's "Task cannot await on itself"). Checked only when pending (a running
            // task is never done), so awaiting another task pays nothing for it.
            Poll::Pending if current_task_header() == Some(self.header_ptr()) => {
                Poll::Ready(Err(TaskError::AwaitedItself))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match this.poll_unlinked(cx) {
            Poll::Ready(outcome) => Poll::Ready(outcome),
            Poll::Pending => {
                // Record the await edge for cancellation to flow down (asyncio's _fut_waiter).
                if let Some(current) = current_task_header() {
                    // SAFETY: the current task's header stays valid for the rest of its step,
                    // and this poll runs inside that step (see `current_task_ref`).
                    unsafe { current.as_ref() }.set_awaiting(this.task_ref());
                }
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        // Before `join` goes: it is what keeps the header and waker parts valid.
        if !self.taken() && self.join.is_some() {
            self.header().detach(|| self.task_ref());
        }
        if let Some(join) = self.join.take() {
            join.detach();
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("done", &self.done())
            .field("cancelled", &self.cancelled())
            .finish()
    }
}
