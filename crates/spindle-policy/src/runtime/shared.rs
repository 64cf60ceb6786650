//! State shared by every worker of one runtime and every handle to it.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicUsize};
use std::sync::{Arc, OnceLock};

use crossbeam_deque::{Injector, Stealer};
use spindle_loop::{
    spawn_stealable, Runnable, RunnableSlot, Scheduler, SchedulerId, Task, TaskSet,
};

use super::idle::Idle;
use super::metrics::WorkerCounters;
use super::worker::WorkerCore;
use crate::error::{PolicyError, SpawnError};

thread_local! {
    /// The worker core of the runtime worker running on this thread, if any.
    pub(crate) static WORKER: RefCell<Option<Rc<WorkerCore>>> = const { RefCell::new(None) };
    /// The runtime `spawn` goes to from this thread: a worker's, or `block_on`'s caller's.
    pub(crate) static CURRENT: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

pub(crate) struct Shared {
    pub(crate) injector: Injector<Runnable>,
    pub(crate) stealers: Vec<Stealer<Runnable>>,
    /// What each worker publishes for its siblings and for metrics.
    pub(crate) workers: Vec<PerWorker>,
    /// Each worker's open connections, kept by servers through `ConnectionGauge`s (apart from
    /// `workers`: any thread writes them).
    pub(crate) open_connections: Arc<[AtomicUsize]>,
    /// The workers' loop handles, set once every worker has started (before `build()`
    /// returns): how a notification reaches a parked worker.
    pub(crate) loops: OnceLock<Vec<spindle_bridge::LoopHandle>>,
    pub(crate) idle: Idle,
    /// How many workers' loops watched I/O sources when they last parked: while any does,
    /// parking workers do not spin (see `WorkerCore::before_park`).
    pub(crate) io_workers: AtomicUsize,
    /// Each worker's I/O as its siblings help with it (`spindle_loop::io::help`), by worker
    /// index, filled in as workers start.
    /// Whether workers help their siblings' pollers (`Builder::io_help`).
    #[cfg_attr(any(loom, not(target_os = "linux")), allow(dead_code))]
    pub(crate) io_help: bool,
    #[cfg(all(target_os = "linux", not(loom)))]
    pub(crate) io_shares: std::sync::Mutex<Vec<Option<spindle_loop::io::IoShare>>>,
    /// Every idle stealable task; closed at shutdown, which is how the runtime knows it is
    /// shutting down (see `is_shutdown`).
    pub(crate) tasks: TaskSet,
}

/// One worker's shared state, written by that worker all the time (its LIFO slot, its step
/// count, its counters) and read by siblings and `metrics()`. Alone on its cache line(s), so
/// that two workers' writes never share a line (128 bytes: adjacent-line prefetch pairs 64-byte
/// lines).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct PerWorker {
    /// The owner's next step, which a sibling takes only when the owner is stuck (see
    /// `WorkerCore::steal`).
    pub(crate) lifo: RunnableSlot,
    /// The owner's step count, a progress hint for thieves (see `WorkerCore::steal`).
    pub(crate) tick: AtomicU32,
    pub(crate) counters: WorkerCounters,
}

impl Shared {
    pub(crate) fn new(stealers: Vec<Stealer<Runnable>>) -> Self {
        let workers = stealers.len();
        Shared {
            injector: Injector::new(),
            stealers,
            workers: (0..workers).map(|_| PerWorker::default()).collect(),
            open_connections: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            loops: OnceLock::new(),
            idle: Idle::new(workers),
            io_workers: AtomicUsize::new(0),
            io_help: true,
            #[cfg(all(target_os = "linux", not(loom)))]
            io_shares: std::sync::Mutex::new(vec![None; workers]),
            tasks: TaskSet::new(),
        }
    }

    pub(crate) fn num_workers(&self) -> usize {
        self.stealers.len()
    }

    /// Shutdown began: it closes the task set first, and nothing else closes it.
    pub(crate) fn is_shutdown(&self) -> bool {
        self.tasks.is_closed()
    }

    /// Spawns a stealable task: its first step is scheduled as a woken one's is (see
    /// `schedule_here`: on one of our workers it runs next, cache-hot, and what it displaces
    /// goes to the queue, where siblings can steal it; tokio's rule), else onto the injector.
    #[track_caller]
    pub(crate) fn spawn<F>(self: &Arc<Self>, future: F) -> Result<Task<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // A closed task set (shutdown) refuses the future.
        let (runnable, task) = spawn_stealable(future, self)
            .map_err(|rejected| SpawnError::new(rejected.into_inner(), PolicyError::ShutDown))?;
        if let Err(runnable) = Self::schedule_here(SchedulerId::of(self), runnable, false) {
            self.schedule(runnable);
        }
        Ok(task)
    }

    /// Wakes one parked worker if the idle protocol says so.
    #[inline(always)]
    pub(crate) fn notify_one(&self) {
        if let Some(worker) = self.idle.worker_to_notify() {
            self.wake_worker(worker);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_worker(&self, worker: usize) {
        if let Some(handle) = self.loops.get().and_then(|l| l.get(worker)) {
            handle.wake();
        }
    }

    /// Whether any queue holds a task (the last searcher's re-check before it parks).
    pub(crate) fn has_work_anywhere(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }
}

/// Runs a step cancelled, so that its task drops its future (on this thread) and completes:
/// how shutdown disposes of the steps still queued.
pub(crate) fn run_cancelled(runnable: Runnable) {
    runnable.cancel();
    runnable.run();
}

impl Scheduler for Shared {
    /// A task woken away from this runtime's workers: to the injector, and wake a worker.
    fn schedule(&self, runnable: Runnable) {
        self.injector.push(runnable);
        self.notify_one();
    }

    /// A task woken on one of this runtime's workers: into that worker's LIFO slot, with no
    /// atomic on the way (the thread-local says which worker this is); a task that yielded (woke
    /// itself) goes to the back of the queue instead, behind the tasks it yielded to (tokio's
    /// rule, and asyncio's `sleep(0)`).
    fn schedule_here(id: SchedulerId, runnable: Runnable, yielded: bool) -> Result<(), Runnable> {
        let mut runnable = Some(runnable);
        on_worker_of(id, |core| {
            if let Some(runnable) = runnable.take() {
                core.push(runnable, yielded);
            }
        });
        runnable.map_or(Ok(()), Err)
    }

    fn task_set(&self) -> &TaskSet {
        &self.tasks
    }

    /// On one of this runtime's workers: its set, through the worker's own reference (no
    /// touch of the shared reference count, which every worker would contend for).
    fn with_task_set_here<R>(id: SchedulerId, f: &mut dyn FnMut(&TaskSet) -> R) -> Option<R> {
        on_worker_of(id, |core| f(&core.shared().tasks))
    }
}

/// Calls `f` with this thread's worker if it is one of the runtime `id`'s (the fast paths of
/// [`Scheduler`]: a thread-local instead of the shared reference count).
fn on_worker_of<R>(id: SchedulerId, f: impl FnOnce(&WorkerCore) -> R) -> Option<R> {
    WORKER.with(|worker| match worker.borrow().as_ref() {
        Some(core) if core.scheduler_id() == id => Some(f(core)),
        _ => None,
    })
}
