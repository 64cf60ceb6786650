//! [`TaskGroup`]: asyncio's `TaskGroup` (3.11), scoped by a closure.
//!
//! Rust has no async drop, so the group cannot be an `async with` block that waits in its
//! exit. [`TaskGroup::run`] takes the body as a closure instead and does the waiting itself:
//! it polls the body and, beside it, waits until every child has ended.
//!
//! # Rules (asyncio's)
//!
//! - `run` returns when the body *and* every child have ended; a child created by a child (the
//!   handle is `Clone + Send`) counts too.
//! - A child fails when it panics, or, for children made with
//!   [`create_try_task`](TaskGroup::create_try_task) / [`try_spawn`](TaskGroup::try_spawn),
//!   when it returns `Err`. The first failure cancels every other child and the body (the body
//!   future is dropped, as asyncio cancels the task in `async with`); `run` then returns
//!   [`TaskGroupError`], listing every failure (asyncio's `ExceptionGroup`). A child that ends
//!   cancelled is not a failure.
//! - While the group is shutting down (after a failure) or once it has finished, creating a
//!   child is refused and the future comes back ([`TaskGroupRefusal`]).
//! - Cancelling the task that runs the group (dropping `run`'s future) cancels every child.
//!   Their futures are then dropped at their next step on their own loops; that is the one
//!   place where a child ends after the group (asyncio awaits them in `__aexit__`, which Rust's
//!   synchronous `Drop` cannot).
//!
//! # Protocol
//!
//! The group keeps, under one mutex, the live children (a sequence number each, with the
//! child's `TaskRef` once spawned), the failures, a `failed` flag and the waker of `run`.
//! A child's wrapper future records its failure (and cancels its siblings) in the step that
//! fails, and leaves the live set in its `Drop`, after its own future was dropped, so `run`
//! never returns before a child's `Drop` code has run. A child spawned while the group is
//! failing is cancelled as soon as it is registered.

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use spindle_loop::{panic_message, LoopError, Rejected, Task, TaskError, TaskRef};
use spindle_policy::PolicyError;

/// asyncio's `TaskGroup`: structured concurrency. See the [module docs](self) for the rules.
///
/// ```
/// use spindle_sync::TaskGroup;
///
/// let out = spindle_policy::run(TaskGroup::run(|tg| async move {
///     let a = tg.create_task(async { 20 }).unwrap();
///     let b = tg.create_task(async { 22 }).unwrap();
///     a.await.unwrap() + b.await.unwrap()
/// }))
/// .unwrap();
/// assert_eq!(out.unwrap(), 42);
/// ```
#[derive(Clone)]
pub struct TaskGroup {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    /// Live children: sequence number -> the child's task once spawned.
    live: HashMap<u64, Option<TaskRef>>,
    failures: Vec<ChildFailure>,
    /// A child failed (or the run was cancelled): no new children, the others are cancelled.
    failed: bool,
    /// `run` has returned (or was dropped): no new children.
    finished: bool,
    waker: Option<Waker>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under this lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(waker: Option<Waker>) {
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// A child's step failed: note it and, for the first failure, cancel the others.
    fn fail(&self, seq: u64, failure: ChildFailure) {
        let (to_cancel, waker) = {
            let mut st = self.lock();
            st.failures.push(failure);
            let to_cancel = if st.failed {
                Vec::new()
            } else {
                st.failed = true;
                st.live
                    .iter()
                    .filter(|(s, _)| **s != seq)
                    .filter_map(|(_, task)| task.clone())
                    .collect()
            };
            (to_cancel, st.waker.take())
        };
        for task in to_cancel {
            task.cancel();
        }
        Self::wake(waker);
    }

    /// The group ends early (its run was dropped): cancel every child.
    fn abandon(&self) {
        let to_cancel: Vec<TaskRef> = {
            let mut st = self.lock();
            if st.finished {
                return;
            }
            st.finished = true;
            st.failed = true;
            st.live.values().filter_map(Clone::clone).collect()
        };
        for task in to_cancel {
            task.cancel();
        }
    }

    /// A child was spawned: keep its task for cancellation, or cancel it now if the group
    /// failed meanwhile.
    fn register(&self, seq: u64, task: TaskRef) {
        let cancel_now = {
            let mut st = self.lock();
            let failed = st.failed;
            match st.live.get_mut(&seq) {
                Some(slot) => {
                    *slot = Some(task.clone());
                    failed
                }
                None => false, // it has ended already
            }
        };
        if cancel_now {
            task.cancel();
        }
    }

    /// A child has ended (its future was dropped).
    fn leave(&self, seq: u64) {
        let waker = {
            let mut st = self.lock();
            st.live.remove(&seq);
            if st.live.is_empty() {
                st.waker.take()
            } else {
                None
            }
        };
        Self::wake(waker);
    }
}

impl TaskGroup {
    /// Runs `body` with a new group and waits until it and every child have ended. Returns
    /// the body's output, or [`TaskGroupError`] listing every child that failed (the body was
    /// then cancelled, and its output is lost).
    ///
    /// ```
    /// use spindle_sync::TaskGroup;
    ///
    /// let err = spindle_policy::run(TaskGroup::run(|tg| async move {
    ///     tg.create_task(async { panic!("boom") }).unwrap();
    ///     std::future::pending::<()>().await; // cancelled by the failure
    /// }))
    /// .unwrap()
    /// .unwrap_err();
    /// assert_eq!(err.failures().len(), 1);
    /// assert!(err.to_string().contains("boom"));
    /// ```
    pub async fn run<F, Fut, R>(body: F) -> Result<R, TaskGroupError>
    where
        F: FnOnce(TaskGroup) -> Fut,
        Fut: Future<Output = R>,
    {
        let group = TaskGroup {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
            }),
        };
        let inner = group.inner.clone();
        let _abandon_on_drop = Abandon(inner.clone());
        let mut body = Some(Box::pin(body(group)));
        let mut output = None;
        std::future::poll_fn(|cx| loop {
            let failed = inner.lock().failed;
            if failed {
                // The first failure cancels the body (dropped outside the group's lock).
                body = None;
            } else if let Some(running) = body.as_mut() {
                if let Poll::Ready(out) = running.as_mut().poll(cx) {
                    output = Some(out);
                    body = None;
                }
            }
            let mut st = inner.lock();
            if st.failed && body.is_some() {
                continue; // a child failed while the body ran: cancel it now
            }
            if body.is_none() && st.live.is_empty() {
                st.finished = true;
                let failures = std::mem::take(&mut st.failures);
                return Poll::Ready(match output.take() {
                    Some(out) if failures.is_empty() => Ok(out),
                    _ => Err(TaskGroupError { failures }),
                });
            }
            st.waker = Some(cx.waker().clone());
            return Poll::Pending;
        })
        .await
    }

    fn reserve(&self) -> Result<u64, TaskGroupRefusal> {
        let mut st = self.inner.lock();
        if st.finished {
            return Err(TaskGroupRefusal::Finished);
        }
        if st.failed {
            return Err(TaskGroupRefusal::ShuttingDown);
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.live.insert(seq, None);
        Ok(seq)
    }

    fn child<F, K>(&self, future: F) -> Result<Child<F, K>, Rejected<F, TaskGroupRefusal>>
    where
        F: Future,
        K: Outcome<F::Output>,
    {
        match self.reserve() {
            Ok(seq) => Ok(Child {
                group: self.inner.clone(),
                seq,
                pending: Some(future),
                running: None,
                _outcome: PhantomData,
            }),
            Err(refusal) => Err(Rejected::new(future, refusal)),
        }
    }

    fn start_local<F, K>(&self, future: F) -> CreateResult<F, K::Value>
    where
        F: Future + 'static,
        K: Outcome<F::Output> + 'static,
    {
        let child = self.child::<F, K>(future)?;
        let seq = child.seq;
        match spindle_loop::spawn_local(child) {
            Ok(task) => {
                self.inner.register(seq, task.task_ref());
                Ok(ChildTask { task })
            }
            Err(rejected) => {
                let reason = TaskGroupRefusal::Loop(rejected.reason().clone());
                Err(Rejected::new(rejected.into_inner().take_back(), reason))
            }
        }
    }

    fn start_stealable<F, K>(&self, future: F) -> CreateResult<F, K::Value>
    where
        F: Future + Send + 'static,
        K: Outcome<F::Output> + 'static,
        K::Value: Send,
    {
        let child = self.child::<F, K>(future)?;
        let seq = child.seq;
        match spindle_policy::spawn(child) {
            Ok(task) => {
                self.inner.register(seq, task.task_ref());
                Ok(ChildTask { task })
            }
            Err(rejected) => {
                let reason = TaskGroupRefusal::Runtime(rejected.reason().clone());
                Err(Rejected::new(rejected.into_inner().take_back(), reason))
            }
        }
    }

    /// Starts `future` as a child on the running loop (a local task: it may be `!Send`).
    /// It fails the group only by panicking.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use spindle_sync::TaskGroup;
    ///
    /// let out = spindle_policy::run(TaskGroup::run(|tg| async move {
    ///     let local = Rc::new(3); // !Send is fine on one loop
    ///     tg.create_task(async move { *local * 2 }).unwrap().await
    /// }))
    /// .unwrap();
    /// assert_eq!(out.unwrap(), Ok(6));
    /// ```
    #[track_caller]
    pub fn create_task<F>(&self, future: F) -> CreateResult<F, F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.start_local::<F, Plain>(future)
    }

    /// Starts `future` as a child on the running loop; it fails the group by panicking or by
    /// returning `Err` (the error goes into the group's [`TaskGroupError`], and the child's
    /// handle yields it as [`TaskError::Exception`]).
    ///
    /// ```
    /// use spindle_sync::TaskGroup;
    ///
    /// let err = spindle_policy::run(TaskGroup::run(|tg| async move {
    ///     tg.create_try_task(async { "42".parse::<u8>() }).unwrap();
    ///     tg.create_try_task(async { "x".parse::<u8>() }).unwrap();
    /// }))
    /// .unwrap()
    /// .unwrap_err();
    /// assert!(err.to_string().contains("invalid digit"));
    /// ```
    #[track_caller]
    pub fn create_try_task<F, T, E>(&self, future: F) -> CreateResult<F, T>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
        E: Into<Box<dyn Error + Send + Sync>> + 'static,
    {
        self.start_local::<F, Fallible>(future)
    }

    /// Starts a `Send` child on the runtime ([`spindle_policy::spawn`]: any worker may run
    /// it). Call it from a runtime worker or inside `Runtime::block_on`; elsewhere it is
    /// refused with [`TaskGroupRefusal::Runtime`]. It fails the group only by panicking.
    ///
    /// ```
    /// use spindle_policy::Runtime;
    /// use spindle_sync::TaskGroup;
    ///
    /// let rt = Runtime::builder().worker_threads(2).build().unwrap();
    /// let sum = rt
    ///     .block_on(TaskGroup::run(|tg| async move {
    ///         let tasks: Vec<_> = (0..10u64).map(|i| tg.spawn(async move { i }).unwrap()).collect();
    ///         let mut sum = 0;
    ///         for t in tasks {
    ///             sum += t.await.unwrap();
    ///         }
    ///         sum
    ///     }))
    ///     .unwrap();
    /// assert_eq!(sum.unwrap(), 45);
    /// rt.shutdown();
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> CreateResult<F, F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.start_stealable::<F, Plain>(future)
    }

    /// [`spawn`](Self::spawn) for a child that fails the group by returning `Err` too.
    ///
    /// ```
    /// use spindle_policy::Runtime;
    /// use spindle_sync::TaskGroup;
    ///
    /// let rt = Runtime::builder().worker_threads(2).build().unwrap();
    /// let out = rt
    ///     .block_on(TaskGroup::run(|tg| async move {
    ///         tg.try_spawn(async { Err::<(), _>("disk full") }).unwrap();
    ///     }))
    ///     .unwrap();
    /// assert!(out.unwrap_err().to_string().contains("disk full"));
    /// rt.shutdown();
    /// ```
    #[track_caller]
    pub fn try_spawn<F, T, E>(&self, future: F) -> CreateResult<F, T>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Into<Box<dyn Error + Send + Sync>> + 'static,
    {
        self.start_stealable::<F, Fallible>(future)
    }
}

impl fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("TaskGroup")
            .field("live", &st.live.len())
            .field("failures", &st.failures.len())
            .field("failed", &st.failed)
            .field("finished", &st.finished)
            .finish()
    }
}

/// Cancels the children if `run`'s future is dropped before it finished.
struct Abandon(Arc<Inner>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// What creating a child returns: its handle, or the future back with the reason.
pub type CreateResult<F, T> = Result<ChildTask<T>, Rejected<F, TaskGroupRefusal>>;

/// Why a [`TaskGroup`] refused a new child.
///
/// ```
/// use spindle_sync::{TaskGroup, TaskGroupRefusal};
///
/// let escaped = spindle_policy::run(TaskGroup::run(|tg| async move { tg })).unwrap().unwrap();
/// let refused = spindle_policy::run(async move { escaped.create_task(async {}).unwrap_err() });
/// assert_eq!(refused.unwrap().reason(), &TaskGroupRefusal::Finished);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskGroupRefusal {
    /// The group's `run` has returned.
    Finished,
    /// A child failed (or the group was cancelled): the group is cancelling its children.
    ShuttingDown,
    /// The loop refused the task (no running loop, or it is closed).
    Loop(LoopError),
    /// The runtime refused the task (not on a runtime, or it is shut down).
    Runtime(PolicyError),
}

impl fmt::Display for TaskGroupRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskGroupRefusal::Finished => f.write_str(
                "the task group has finished: create children inside TaskGroup::run's body",
            ),
            TaskGroupRefusal::ShuttingDown => {
                f.write_str("the task group is shutting down after a child failed: no new children")
            }
            TaskGroupRefusal::Loop(e) => write!(f, "the loop refused the child: {e}"),
            TaskGroupRefusal::Runtime(e) => write!(f, "the runtime refused the child: {e}"),
        }
    }
}

impl Error for TaskGroupRefusal {}

/// One failed child of a [`TaskGroup`].
///
/// ```
/// use spindle_sync::TaskGroup;
/// let err = spindle_policy::run(TaskGroup::run(|tg| async move {
///     tg.create_task(async { panic!("lost") }).unwrap();
/// }))
/// .unwrap()
/// .unwrap_err();
/// let failure = &err.failures()[0];
/// assert!(failure.error().is_panic());
/// ```
#[derive(Debug, Clone)]
pub struct ChildFailure {
    task_id: Option<u64>,
    name: String,
    error: TaskError,
}

impl ChildFailure {
    /// The failed child's task id (`None` if it could not be known).
    ///
    /// ```
    /// # use spindle_sync::TaskGroup;
    /// # let err = spindle_policy::run(TaskGroup::run(|tg| async move {
    /// #     tg.create_task(async { panic!("x") }).unwrap();
    /// # })).unwrap().unwrap_err();
    /// assert!(err.failures()[0].task_id().is_some());
    /// ```
    pub fn task_id(&self) -> Option<u64> {
        self.task_id
    }

    /// The failed child's task name.
    ///
    /// ```
    /// # use spindle_sync::TaskGroup;
    /// # let err = spindle_policy::run(TaskGroup::run(|tg| async move {
    /// #     tg.create_task(async { panic!("x") }).unwrap();
    /// # })).unwrap().unwrap_err();
    /// assert!(!err.failures()[0].name().is_empty());
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What went wrong: [`TaskError::Panicked`] or [`TaskError::Exception`] (an `Err`).
    ///
    /// ```
    /// # use spindle_sync::TaskGroup;
    /// # let err = spindle_policy::run(TaskGroup::run(|tg| async move {
    /// #     tg.create_try_task(async { Err::<(), _>("no") }).unwrap();
    /// # })).unwrap().unwrap_err();
    /// assert!(matches!(err.failures()[0].error(), spindle_loop::TaskError::Exception(_)));
    /// ```
    pub fn error(&self) -> &TaskError {
        &self.error
    }
}

impl fmt::Display for ChildFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.error)
    }
}

/// asyncio's `ExceptionGroup` for a [`TaskGroup`]: every child that failed, in the order
/// their failures were seen.
///
/// ```
/// use spindle_sync::TaskGroup;
/// let err = spindle_policy::run(TaskGroup::run(|tg| async move {
///     tg.create_try_task(async { Err::<(), _>("first") }).unwrap();
/// }))
/// .unwrap()
/// .unwrap_err();
/// assert_eq!(err.failures().len(), 1);
/// println!("{err}");
/// ```
#[derive(Debug, Clone)]
pub struct TaskGroupError {
    failures: Vec<ChildFailure>,
}

impl TaskGroupError {
    /// The failed children.
    ///
    /// ```
    /// # use spindle_sync::TaskGroup;
    /// # let err = spindle_policy::run(TaskGroup::run(|tg| async move {
    /// #     tg.create_task(async { panic!("x") }).unwrap();
    /// # })).unwrap().unwrap_err();
    /// assert_eq!(err.failures().len(), 1);
    /// ```
    pub fn failures(&self) -> &[ChildFailure] {
        &self.failures
    }
}

impl fmt::Display for TaskGroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} child task(s) of the task group failed; the others and the body were cancelled:",
            self.failures.len()
        )?;
        for failure in &self.failures {
            write!(f, "\n  - {failure}")?;
        }
        Ok(())
    }
}

impl Error for TaskGroupError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.failures
            .first()
            .map(|f| &f.error as &(dyn Error + 'static))
    }
}

/// A child of a [`TaskGroup`]: await it for its value, or its failure as a [`TaskError`].
/// Dropping it does not cancel the child (the group still waits for it).
///
/// ```
/// use spindle_sync::TaskGroup;
/// let out = spindle_policy::run(TaskGroup::run(|tg| async move {
///     let child = tg.create_task(async { 5 }).unwrap();
///     assert!(!child.done());
///     child.await
/// }))
/// .unwrap();
/// assert_eq!(out.unwrap(), Ok(5));
/// ```
pub struct ChildTask<T> {
    task: Task<Result<T, TaskError>>,
}

impl<T> ChildTask<T> {
    /// Requests the child's cancellation (not a failure of the group).
    ///
    /// ```
    /// use spindle_sync::TaskGroup;
    /// let out = spindle_policy::run(TaskGroup::run(|tg| async move {
    ///     let child = tg.create_task(std::future::pending::<()>()).unwrap();
    ///     child.cancel();
    ///     child.await
    /// }))
    /// .unwrap();
    /// assert_eq!(out.unwrap(), Err(spindle_loop::TaskError::Cancelled));
    /// ```
    pub fn cancel(&self) -> bool {
        self.task.cancel()
    }

    /// Whether the child has ended.
    ///
    /// ```
    /// # use spindle_sync::TaskGroup;
    /// spindle_policy::run(TaskGroup::run(|tg| async move {
    ///     assert!(!tg.create_task(async {}).unwrap().done());
    /// })).unwrap().unwrap();
    /// ```
    pub fn done(&self) -> bool {
        self.task.done()
    }

    /// The child's task, type-erased (name it, watch it).
    ///
    /// ```
    /// # use spindle_sync::TaskGroup;
    /// spindle_policy::run(TaskGroup::run(|tg| async move {
    ///     tg.create_task(async {}).unwrap().task_ref().set_name("child");
    /// })).unwrap().unwrap();
    /// ```
    pub fn task_ref(&self) -> TaskRef {
        self.task.task_ref()
    }
}

impl<T> Future for ChildTask<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task)
            .poll(cx)
            .map(|out| out.and_then(|r| r))
    }
}

impl<T> fmt::Debug for ChildTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildTask")
            .field("task", &self.task)
            .finish()
    }
}

/// How a child's output becomes its value or its failure.
trait Outcome<O> {
    type Value;
    fn classify(output: O) -> Result<Self::Value, TaskError>;
}

/// Any output is a value; only a panic fails.
struct Plain;

impl<O> Outcome<O> for Plain {
    type Value = O;
    fn classify(output: O) -> Result<O, TaskError> {
        Ok(output)
    }
}

/// `Err` fails too.
struct Fallible;

impl<T, E: Into<Box<dyn Error + Send + Sync>>> Outcome<Result<T, E>> for Fallible {
    type Value = T;
    fn classify(output: Result<T, E>) -> Result<T, TaskError> {
        output.map_err(|e| TaskError::Exception(Arc::from(e.into())))
    }
}

/// A child's task future: runs the user's future, turns a panic or an `Err` into a failure
/// of the group, leaves the group's live set when dropped.
struct Child<F, K> {
    group: Arc<Inner>,
    seq: u64,
    /// The future until its first poll (so a refused spawn can give it back unpinned).
    pending: Option<F>,
    running: Option<Pin<Box<F>>>,
    _outcome: PhantomData<fn() -> K>,
}

// `F` is never pinned inside `Child`: it is boxed before its first poll.
impl<F, K> Unpin for Child<F, K> {}

impl<F, K> Child<F, K> {
    fn take_back(mut self) -> F {
        match self.pending.take() {
            Some(future) => future,
            None => unreachable!("a refused child was never polled"),
        }
    }
}

impl<F: Future, K: Outcome<F::Output>> Future for Child<F, K> {
    type Output = Result<K::Value, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(future) = this.pending.take() {
            this.running = Some(Box::pin(future));
        }
        let Some(running) = this.running.as_mut() else {
            return Poll::Pending; // polled after it ended: never (the task is done)
        };
        let result = match catch_unwind(AssertUnwindSafe(|| running.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => K::classify(output),
            Err(payload) => Err(TaskError::Panicked(panic_message(&*payload).into())),
        };
        this.running = None; // its Drop runs now, before the group can see it end
        if let Err(error) = &result {
            let task = spindle_loop::current_task();
            let failure = ChildFailure {
                task_id: task.as_ref().map(TaskRef::id),
                name: task.map_or_else(|| format!("child {}", this.seq), |t| t.name()),
                error: error.clone(),
            };
            this.group.fail(this.seq, failure);
        }
        Poll::Ready(result)
    }
}

impl<F, K> Drop for Child<F, K> {
    fn drop(&mut self) {
        // The user's future first: its Drop has run when the group sees this child end.
        self.running = None;
        self.pending = None;
        self.group.leave(self.seq);
    }
}
