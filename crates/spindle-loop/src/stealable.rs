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
//! The set is sharded by task id; each shard is a mutex-protected slab. `spawn_stealable` takes
//! the shard's lock, checks `closed`, creates the task and inserts it, all under the lock;
//! [`TaskSet::close`] sets `closed` and then takes every shard's lock once. So a spawn either
//! completes before `close` passes its shard (and `close`/`cancel_all` see the task) or sees
//! `closed` and hands the future back: no task escapes shutdown, none is lost.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;

use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering};

use crate::context;
use crate::error::{LoopError, Rejected};
use crate::event_loop::Inner;
use crate::task::{
    next_task_id, CompletionGuard, Task, TaskFuture, TaskHeader, TaskOwner, TaskRef, TaskRunnable,
    STEALABLE,
};

/// Shard index bits in a stealable task's slot (`slot = index << SHARD_BITS | shard`).
const SHARD_BITS: u32 = 6;
/// At most this many shards; fewer on small machines (4 per core, rounded up to a power of 2).
const MAX_SHARDS: usize = 1 << SHARD_BITS;

/// One scheduled step of a stealable task. `Send`: a scheduler may move it to any worker.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use spindle_loop::{spawn_stealable, Runnable, TaskSet};
///
/// let queue: Arc<Mutex<Vec<Runnable>>> = Arc::default();
/// let q = queue.clone();
/// let set = Arc::new(TaskSet::new());
/// let (runnable, mut task) =
///     spawn_stealable(async { 7 }, move |r| q.lock().unwrap().push(r), &set).unwrap();
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
    /// # use spindle_loop::{spawn_stealable, TaskSet};
    /// let set = Arc::new(TaskSet::new());
    /// let (runnable, task) = spawn_stealable(async {}, |_| (), &set).unwrap();
    /// runnable.run();
    /// assert!(task.done());
    /// ```
    pub fn run(self) -> bool {
        let _span = tracing::trace_span!("spindle.task", id = self.0.metadata().id()).entered();
        // Panics in the task's future are caught by the task; this only guards the caller
        // against a panic in async-task's own machinery.
        catch_unwind(AssertUnwindSafe(|| self.0.run())).unwrap_or(false)
    }

    /// The id of the task this step belongs to.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use spindle_loop::{spawn_stealable, TaskSet};
    /// let set = Arc::new(TaskSet::new());
    /// let (runnable, task) = spawn_stealable(async {}, |_| (), &set).unwrap();
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

#[derive(Default)]
struct Shard {
    slots: Vec<Option<TaskRef>>,
    free: Vec<usize>,
}

/// The registry of a runtime's live stealable tasks (see the module docs).
///
/// ```
/// use std::sync::Arc;
/// use spindle_loop::{spawn_stealable, TaskSet};
///
/// let set = Arc::new(TaskSet::new());
/// let (_runnable, _task) = spawn_stealable(std::future::pending::<()>(), |_| (), &set).unwrap();
/// assert_eq!(set.len(), 1);
/// set.close();
/// assert!(spawn_stealable(async {}, |_| (), &set).is_err());
/// ```
pub struct TaskSet {
    shards: Box<[Mutex<Shard>]>,
    closed: AtomicBool,
    len: AtomicUsize,
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
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            closed: AtomicBool::new(false),
            len: AtomicUsize::new(0),
        }
    }

    fn shard(&self, index: usize) -> impl std::ops::DerefMut<Target = Shard> + '_ {
        // Shards only hold plain slab bookkeeping; a panic cannot leave one inconsistent.
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live tasks in the set.
    ///
    /// ```
    /// assert_eq!(spindle_loop::TaskSet::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
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

    /// Every live task.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use spindle_loop::{spawn_stealable, TaskSet};
    /// let set = Arc::new(TaskSet::new());
    /// let (_r, task) = spawn_stealable(async {}, |_| (), &set).unwrap();
    /// assert_eq!(set.tasks()[0].id(), task.id());
    /// ```
    pub fn tasks(&self) -> Vec<TaskRef> {
        (0..self.shards.len())
            .flat_map(|index| {
                let shard = self.shard(index);
                shard.slots.iter().flatten().cloned().collect::<Vec<_>>()
            })
            .collect()
    }

    /// Requests cancellation of every live task; returns how many were asked. Each finishes at
    /// its next step, on whichever worker runs it.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use spindle_loop::{spawn_stealable, TaskSet};
    /// let set = Arc::new(TaskSet::new());
    /// let (runnable, task) = spawn_stealable(std::future::pending::<()>(), |_| (), &set).unwrap();
    /// assert_eq!(set.cancel_all(), 1);
    /// runnable.run();
    /// assert!(task.cancelled());
    /// assert!(set.is_empty());
    /// ```
    pub fn cancel_all(&self) -> usize {
        let tasks = self.tasks();
        tasks.iter().filter(|task| task.cancel()).count()
    }

    fn remove(&self, header: &TaskHeader) -> Option<TaskRef> {
        let slot = header.slot();
        if slot == usize::MAX {
            return None;
        }
        let (index, shard_index) = (slot >> SHARD_BITS, slot & (MAX_SHARDS - 1));
        let mut shard = self.shard(shard_index);
        let entry = shard.slots.get_mut(index)?;
        if entry.as_ref().is_some_and(|t| t.id() == header.id()) {
            let task = entry.take();
            shard.free.push(index);
            self.len.fetch_sub(1, Ordering::AcqRel);
            task
        } else {
            None
        }
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

/// A stealable task's owner: its set.
struct SetOwner(Arc<TaskSet>);

impl TaskOwner for SetOwner {
    fn unregister(&self, header: &TaskHeader) -> Option<TaskRef> {
        self.0.remove(header)
    }

    fn owner_loop(&self) -> Option<Rc<Inner>> {
        context::with_running(|lp| lp.cloned())
    }
}

/// Spawns a stealable task: `future` runs in steps that `schedule` receives as [`Runnable`]s,
/// to run on any thread. The task is registered in `set`; on a closed set the future comes
/// back in the error.
///
/// The first `Runnable` is returned rather than scheduled, so the caller decides where the task
/// starts.
///
/// ```
/// use std::sync::Arc;
/// use spindle_loop::{spawn_stealable, TaskSet, TaskError};
///
/// let set = Arc::new(TaskSet::new());
/// let (runnable, mut task) = spawn_stealable(async { "ran" }, |r| { r.run(); }, &set).unwrap();
/// runnable.run();
/// assert_eq!(task.result().unwrap(), Ok("ran"));
/// ```
#[track_caller]
pub fn spawn_stealable<F, S>(
    future: F,
    schedule: S,
    set: &Arc<TaskSet>,
) -> Result<(Runnable, Task<F::Output>), Rejected<F>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Fn(Runnable) + Send + Sync + 'static,
{
    let created_at = Location::caller();
    let id = next_task_id();
    let shard_index = (id as usize) & (set.shards.len() - 1);
    let mut shard = set.shard(shard_index);
    if set.is_closed() {
        return Err(Rejected::new(future, LoopError::Closed));
    }
    let header = TaskHeader::new(id, STEALABLE, created_at);
    let owner = SetOwner(set.clone());
    let (runnable, join) = async_task::Builder::new().metadata(header).spawn(
        move |header: &TaskHeader| TaskFuture {
            future: Some(future),
            guard: CompletionGuard {
                header: NonNull::from(header),
                owner,
                armed: true,
            },
        },
        move |runnable| schedule(Runnable(runnable)),
    );
    let task_ref = TaskRef::new(runnable.waker(), runnable.metadata());
    let handle = Task::new(join, &task_ref);
    let index = match shard.free.pop() {
        Some(index) => index,
        None => {
            shard.slots.push(None);
            shard.slots.len() - 1
        }
    };
    task_ref
        .header()
        .set_slot((index << SHARD_BITS) | shard_index);
    shard.slots[index] = Some(task_ref);
    set.len.fetch_add(1, Ordering::AcqRel);
    Ok((Runnable(runnable), handle))
}
