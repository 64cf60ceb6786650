//! Stealable tasks: `Send` futures that any worker loop of a runtime may run.
//!
//! This module gives a scheduler (spindle-policy's `Runtime`) what it needs and nothing more:
//! [`spawn_stealable`] creates a task whose wake-ups go to the scheduler's own function as a
//! [`Runnable`] (which the scheduler puts in its deques and runs on any worker), and a
//! [`TaskSet`] that registers every live stealable task so that shutdown can reach idle ones.
//!
//! A stealable task is the same kind of task as a local one (same header, same [`Task`] handle,
//! same cancellation rule: the future is dropped at its next step, on the worker that runs that
//! step); it differs in its owner: completion unregisters it from its `TaskSet`, and its
//! done-callbacks and reports go to the loop it completed on.
//!
//! # The set's protocol
//!
//! Only an *idle* task needs the set: a queued one sits in its scheduler's queues, where
//! shutdown finds it (a scheduler drains its queues cancelling each step, see
//! [`Runnable::cancel`]). So a task registers the first time it returns `Pending`, and tasks that
//! finish in one step (most short ones) never touch a lock.
//!
//! The set is sharded by task id; each shard is a mutex-protected slab. Registration takes the
//! shard's lock and checks `closed`; [`TaskSet::close`] sets `closed` and then takes every
//! shard's lock once. So a task either registers before `close` passes its shard (and
//! `cancel_all` reaches it) or sees `closed`, cancels itself and reschedules, and its scheduler
//! drops it at its next step. `spawn_stealable` on a closed set hands the future back.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

use crate::sync::{AtomicBool, Mutex, Ordering};

use crate::context;
use crate::error::{LoopError, Rejected};
use crate::event_loop::Inner;
use crate::registry::TaskRegistry;
use crate::task::{
    next_task_id, Task, TaskFuture, TaskHeader, TaskOwner, TaskRef, TaskRunnable, STEALABLE,
};

/// Shard index bits in a stealable task's slot (`slot = index << SHARD_BITS | shard`).
const SHARD_BITS: u32 = 6;
/// At most this many shards; fewer on small machines (4 per core, rounded up to a power of 2).
const MAX_SHARDS: usize = 1 << SHARD_BITS;

/// One scheduled step of a stealable task. `Send`: a scheduler may move it to any worker.
///
/// ```
/// use std::sync::Arc;
/// use spindle_loop::{spawn_stealable, Inline};
///
/// let scheduler = Arc::new(Inline::default());
/// let (runnable, mut task) = spawn_stealable(async { 7 }, &scheduler).unwrap();
/// std::thread::spawn(move || runnable.run()).join().unwrap(); // any thread may run it
/// assert_eq!(task.result().unwrap(), Ok(7));
/// ```
pub struct Runnable(pub(crate) TaskRunnable);

impl Runnable {
    /// Runs one step of the task. Returns `true` if the task woke itself during the step (it
    /// has already been rescheduled).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use spindle_loop::{spawn_stealable, Inline};
    /// let scheduler = Arc::new(Inline::default());
    /// let (runnable, task) = spawn_stealable(async {}, &scheduler).unwrap();
    /// runnable.run();
    /// assert!(task.done());
    /// ```
    pub fn run(self) -> bool {
        crate::task::in_step_span(self.task_id(), || {
            // Panics in the task's future are caught by the task; this only guards the caller
            // against a panic in the task cell's own machinery.
            catch_unwind(AssertUnwindSafe(|| self.0.run())).unwrap_or(false)
        })
    }

    /// Runs one step of the task, as [`run`](Self::run); but if the task woke itself during
    /// the step (a yield) or was woken meanwhile, its next step is returned instead of going
    /// through [`Scheduler::schedule_here`]: a worker that runs steps puts a yielded one at the
    /// back of its own queue directly, with no look-up of which worker it is on.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use spindle_loop::{spawn_stealable, yield_now, Inline};
    ///
    /// let scheduler = Arc::new(Inline::default());
    /// let (runnable, task) = spawn_stealable(async { yield_now().await }, &scheduler).unwrap();
    /// let next = runnable.run_handing_back().expect("the task yielded: its next step is ours");
    /// assert!(next.run_handing_back().is_none());
    /// assert!(task.done());
    /// ```
    pub fn run_handing_back(self) -> Option<Runnable> {
        crate::task::in_step_span(self.task_id(), || {
            // As in `run`: the task catches its future's panics; this guards the machinery.
            catch_unwind(AssertUnwindSafe(|| self.0.run_handing_back()))
                .ok()
                .flatten()
                .map(Runnable)
        })
    }

    /// Marks the task cancelled: when this step runs, the task drops its future and completes
    /// with `Cancelled` instead of being polled (for a scheduler draining its queues at
    /// shutdown).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use spindle_loop::{spawn_stealable, Inline};
    /// let scheduler = Arc::new(Inline::default());
    /// let (runnable, task) = spawn_stealable(async { unreachable!() }, &scheduler).unwrap();
    /// runnable.cancel();
    /// runnable.run();
    /// assert!(task.cancelled());
    /// ```
    pub fn cancel(&self) {
        self.0.metadata().mark_cancel_requested();
    }

    /// The id of the task this step belongs to.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use spindle_loop::{spawn_stealable, Inline};
    /// let scheduler = Arc::new(Inline::default());
    /// let (runnable, task) = spawn_stealable(async {}, &scheduler).unwrap();
    /// assert_eq!(runnable.task_id(), task.id());
    /// ```
    pub fn task_id(&self) -> u64 {
        self.0.metadata().id()
    }
}

impl std::fmt::Debug for Runnable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runnable")
            .field("task_id", &self.task_id())
            .finish()
    }
}

/// The registry of a runtime's live stealable tasks (see the module docs).
///
/// ```
/// use std::sync::Arc;
/// use spindle_loop::{spawn_stealable, Inline, Scheduler};
///
/// let scheduler = Arc::new(Inline::default());
/// let (first, _task) = spawn_stealable(std::future::pending::<()>(), &scheduler).unwrap();
/// first.run(); // pending now: registered
/// assert_eq!(scheduler.task_set().len(), 1);
/// scheduler.task_set().close();
/// assert!(spawn_stealable(async {}, &scheduler).is_err());
/// ```
pub struct TaskSet {
    shards: Box<[Mutex<TaskRegistry>]>,
    closed: AtomicBool,
}

impl Default for TaskSet {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskSet {
    /// An empty, open set.
    ///
    /// ```
    /// assert!(spindle_loop::TaskSet::new().is_empty());
    /// ```
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = (cores * 4).next_power_of_two().min(MAX_SHARDS);
        TaskSet {
            shards: (0..shards)
                .map(|_| Mutex::new(TaskRegistry::default()))
                .collect(),
            closed: AtomicBool::new(false),
        }
    }

    fn shard(&self, index: usize) -> impl std::ops::DerefMut<Target = TaskRegistry> + '_ {
        // Shards only hold plain slab bookkeeping; a panic cannot leave one inconsistent.
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registered (idle at least once, not finished) tasks.
    ///
    /// ```
    /// assert_eq!(spindle_loop::TaskSet::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        (0..self.shards.len()).map(|i| self.shard(i).len()).sum()
    }

    /// Whether no task is live.
    ///
    /// ```
    /// assert!(spindle_loop::TaskSet::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops accepting tasks; returns how many are live. After it returns, no spawn can add a
    /// task (see the module docs).
    ///
    /// ```
    /// let set = spindle_loop::TaskSet::new();
    /// assert_eq!(set.close(), 0);
    /// assert!(set.is_closed());
    /// ```
    pub fn close(&self) -> usize {
        self.closed.store(true, Ordering::Release);
        // Take every lock once: a spawn holding one finishes its insert first.
        for index in 0..self.shards.len() {
            drop(self.shard(index));
        }
        self.len()
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// ```
    /// assert!(!spindle_loop::TaskSet::new().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Every registered task.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use spindle_loop::{spawn_stealable, Inline, Scheduler};
    /// let scheduler = Arc::new(Inline::default());
    /// let (first, task) = spawn_stealable(std::future::pending::<()>(), &scheduler).unwrap();
    /// first.run();
    /// assert_eq!(scheduler.task_set().tasks()[0].id(), task.id());
    /// ```
    pub fn tasks(&self) -> Vec<TaskRef> {
        (0..self.shards.len())
            .flat_map(|index| self.shard(index).refs())
            .collect()
    }

    /// Requests cancellation of every registered task; returns how many were asked. Each finishes at
    /// its next step, on whichever worker runs it.
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # use spindle_loop::{spawn_stealable, Runnable, Scheduler, TaskSet};
    /// #[derive(Default)]
    /// struct Queue { set: TaskSet, steps: Mutex<Vec<Runnable>> }
    /// impl Scheduler for Queue {
    ///     fn schedule(&self, r: Runnable) { self.steps.lock().unwrap().push(r) }
    ///     fn task_set(&self) -> &TaskSet { &self.set }
    /// }
    /// let queue = Arc::new(Queue::default());
    /// let (runnable, task) = spawn_stealable(std::future::pending::<()>(), &queue).unwrap();
    /// runnable.run(); // pending now
    /// assert_eq!(queue.set.cancel_all(), 1);
    /// let step = queue.steps.lock().unwrap().pop().unwrap(); // cancel rescheduled it
    /// step.run();
    /// assert!(task.cancelled());
    /// assert!(queue.set.is_empty());
    /// ```
    pub fn cancel_all(&self) -> usize {
        let tasks = self.tasks();
        tasks.iter().filter(|task| task.cancel()).count()
    }

    /// Registers an idle task (see the module docs); on a closed set the task cancels itself
    /// and reschedules, so its scheduler drops it.
    fn register(&self, header: &TaskHeader, waker: &Waker) {
        let shard_index = (header.id() as usize) & (self.shards.len() - 1);
        let mut shard = self.shard(shard_index);
        if self.is_closed() {
            drop(shard);
            header.mark_cancel_requested();
            waker.wake_by_ref();
            return;
        }
        shard.insert(TaskRef::new(waker.clone(), header), |index| {
            (index << SHARD_BITS) | shard_index
        });
    }

    /// Removes a registered task (see `is_registered`).
    fn remove(&self, header: &TaskHeader) -> Option<TaskRef> {
        let slot = header.slot();
        let (index, shard_index) = (slot >> SHARD_BITS, slot & (MAX_SHARDS - 1));
        self.shard(shard_index).remove(index, header)
    }
}

impl std::fmt::Debug for TaskSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSet")
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// What runs stealable tasks: where their steps go, and the set that registers them. A task
/// holds its scheduler's `Arc` (twice: in its schedule function and in its completion guard).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use spindle_loop::{spawn_stealable, Runnable, Scheduler, TaskSet};
///
/// #[derive(Default)]
/// struct Queue { set: TaskSet, steps: Mutex<Vec<Runnable>> }
/// impl Scheduler for Queue {
///     fn schedule(&self, runnable: Runnable) { self.steps.lock().unwrap().push(runnable) }
///     fn task_set(&self) -> &TaskSet { &self.set }
/// }
/// let queue = Arc::new(Queue::default());
/// let (first, task) = spawn_stealable(async { 1 }, &queue).unwrap();
/// first.run();
/// assert!(task.done());
/// ```
pub trait Scheduler: Send + Sync + 'static {
    /// A step of one of this scheduler's tasks is ready to run (on any thread).
    fn schedule(&self, runnable: Runnable);
    /// The set registering this scheduler's live tasks.
    fn task_set(&self) -> &TaskSet;
    /// The fast path of a wake-up: if the calling thread belongs to the scheduler `id` (say,
    /// one of its workers, found through a thread-local), schedule `runnable` here and return
    /// `Ok`; otherwise hand it back, and it goes to [`schedule`](Self::schedule) through a weak
    /// reference. The default has no fast path.
    ///
    /// `yielded`: the task woke itself during its own step (a yield, as `yield_now` does), so
    /// it belongs behind the work already queued rather than first in line.
    fn schedule_here(id: SchedulerId, runnable: Runnable, yielded: bool) -> Result<(), Runnable>
    where
        Self: Sized,
    {
        let _ = (id, yielded);
        Err(runnable)
    }

    /// The fast path to a task's set: if the calling thread belongs to the scheduler `id`,
    /// call `f` with its [`TaskSet`] and return its result; otherwise return `None` without
    /// calling it, and the set is reached through a weak reference. The default has no fast
    /// path.
    fn with_task_set_here<R>(id: SchedulerId, f: &mut dyn FnMut(&TaskSet) -> R) -> Option<R>
    where
        Self: Sized,
    {
        let _ = (id, f);
        None
    }
}

/// Identifies a scheduler instance (the address of its `Arc`), for
/// [`Scheduler::schedule_here`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerId(usize);

impl SchedulerId {
    /// The id of the scheduler behind `scheduler`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use spindle_loop::{Inline, SchedulerId};
    /// let s = Arc::new(Inline::default());
    /// assert_eq!(SchedulerId::of(&s), SchedulerId::of(&s.clone()));
    /// ```
    pub fn of<S: Scheduler>(scheduler: &Arc<S>) -> Self {
        SchedulerId(Arc::as_ptr(scheduler) as *const () as usize)
    }
}

/// A stealable task's owner: its scheduler's [`TaskSet`], reached through the thread-local fast
/// path ([`Scheduler::with_task_set_here`]) on the scheduler's own threads, else through the
/// header's weak reference (only when an idle task registers or leaves its set).
struct SetOwner<S>(std::marker::PhantomData<fn() -> S>);

impl<S: Scheduler> SetOwner<S> {
    /// Runs `f` on the task's set, if its scheduler still exists.
    fn with_set<R>(header: &TaskHeader, f: impl FnOnce(&TaskSet) -> R) -> Option<R> {
        let mut f = Some(f);
        let here = S::with_task_set_here(SchedulerId(header.scheduler_id()), &mut |set| {
            f.take().map(|f| f(set))
        });
        match here {
            Some(result) => result,
            // Upgrading touches the scheduler's shared reference count (contended between
            // workers): only off the scheduler's threads.
            None => {
                let scheduler = upgrade_scheduler::<S>(header)?;
                f.take().map(|f| f(scheduler.task_set()))
            }
        }
    }
}

/// The task's scheduler, if it still exists. Only while the task's future exists (it is being
/// scheduled, polled or completed): `SetOwner::release` gives up the reference after that.
fn upgrade_scheduler<S: Scheduler>(header: &TaskHeader) -> Option<Arc<S>> {
    let raw = header.scheduler_raw() as *const S;
    if raw.is_null() {
        return None;
    }
    // SAFETY: a non-null pointer is `Weak::<S>::into_raw` of this task's scheduler, set by
    // `spawn_stealable::<_, S>` (the only writer; every caller here is instantiated with the
    // same `S`, through the task's `SetOwner<S>` or its schedule function). That weak
    // reference is released only by `SetOwner::release`, when the future is dropped, and no
    // caller runs after that. `ManuallyDrop`: we borrow the reference, we do not take it.
    let weak = std::mem::ManuallyDrop::new(unsafe { std::sync::Weak::from_raw(raw) });
    weak.upgrade()
}

impl<S: Scheduler> TaskOwner for SetOwner<S> {
    fn unregister(&self, header: &TaskHeader) -> Option<TaskRef> {
        if !header.is_registered() {
            return None; // never went idle: never registered
        }
        Self::with_set(header, |set| set.remove(header)).flatten()
    }

    #[inline]
    fn on_pending(&self, header: &TaskHeader, waker: &Waker) {
        if !header.is_registered() {
            Self::with_set(header, |set| set.register(header, waker));
        }
    }

    fn owner_loop(&self) -> Option<Rc<Inner>> {
        context::with_running(|lp| lp.cloned())
    }

    fn release(&self, header: &TaskHeader) {
        let raw = header.scheduler_raw() as *const S;
        if !raw.is_null() {
            // SAFETY: `Weak::<S>::into_raw` from `spawn_stealable::<_, S>` (see
            // `upgrade_scheduler`); `release` runs once per task, when its future is dropped,
            // so this takes back the reference exactly once. The address stays in the header
            // as the scheduler's id, never dereferenced again: the cell does not schedule a
            // task whose future is gone.
            drop(unsafe { std::sync::Weak::from_raw(raw) });
        }
    }
}

/// Spawns a stealable task: `future` runs in steps that `scheduler` receives as [`Runnable`]s,
/// to run on any thread. The task is registered in the scheduler's [`TaskSet`]; on a closed set
/// the future comes back in the error.
///
/// The first `Runnable` is returned rather than scheduled, so the caller decides where the task
/// starts.
///
/// ```
/// use std::sync::Arc;
/// use spindle_loop::{spawn_stealable, Inline, TaskError};
///
/// let scheduler = Arc::new(Inline::default());
/// let (runnable, mut task) = spawn_stealable(async { "ran" }, &scheduler).unwrap();
/// runnable.run();
/// assert_eq!(task.result().unwrap(), Ok("ran"));
/// ```
#[track_caller]
pub fn spawn_stealable<F, S>(
    future: F,
    scheduler: &Arc<S>,
) -> Result<(Runnable, Task<F::Output>), Rejected<F>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Scheduler,
{
    let created_at = Location::caller();
    if scheduler.task_set().is_closed() {
        return Err(Rejected::new(future, LoopError::Closed));
    }
    let mut header = TaskHeader::new(next_task_id(), STEALABLE, created_at);
    header.set_scheduler(std::sync::Weak::into_raw(Arc::downgrade(scheduler)));
    debug_assert_eq!(header.scheduler_id(), SchedulerId::of(scheduler).0);
    let (runnable, join, waker) =
        crate::cell::spawn::<_, StealableSchedule<S>, _>(header, move |header: &TaskHeader| {
            TaskFuture::new(future, header, SetOwner::<S>(std::marker::PhantomData))
        });
    let handle = Task::new(join, waker);
    Ok((Runnable(runnable), handle))
}

/// A scheduler that runs each step right where it is scheduled (tests, examples, and the
/// simplest possible embedding). Its steps run on the waking thread.
///
/// ```
/// use std::sync::Arc;
/// use spindle_loop::{spawn_stealable, Inline};
/// let inline = Arc::new(Inline::default());
/// let (first, task) = spawn_stealable(async {}, &inline).unwrap();
/// first.run();
/// assert!(task.done());
/// ```
#[derive(Debug, Default)]
pub struct Inline {
    set: TaskSet,
}

impl Scheduler for Inline {
    fn schedule(&self, runnable: Runnable) {
        runnable.run();
    }

    fn task_set(&self) -> &TaskSet {
        &self.set
    }
}

/// The schedule function of stealable tasks: the fast path ([`Scheduler::schedule_here`]) takes
/// no atomic; the slow path upgrades the header's weak reference. If the scheduler is gone, the
/// step is dropped here (a `Send` task may be dropped on any thread).
struct StealableSchedule<S>(std::marker::PhantomData<S>);

impl<S: Scheduler> crate::cell::Schedule for StealableSchedule<S> {
    #[inline]
    fn schedule(runnable: TaskRunnable, yielded: bool) {
        let id = SchedulerId(runnable.metadata().scheduler_id());
        if let Err(Runnable(runnable)) = S::schedule_here(id, Runnable(runnable), yielded) {
            match upgrade_scheduler::<S>(runnable.metadata()) {
                Some(scheduler) => scheduler.schedule(Runnable(runnable)),
                None => drop(runnable),
            }
        }
    }
}
