//! The work-stealing [`Runtime`]: N worker threads, each running its own asyncio-style loop, with
//! `Send` tasks balanced across them by stealing.
//!
//! # Structure
//!
//! - Every worker installs a loop through the current policy (so `get_running_loop()` and
//!   `get_event_loop()` return it inside any task or callback there) and runs it with
//!   `run_forever`. Its `WorkerHook` (see `worker.rs`) runs stealable tasks after each ready
//!   batch and decides whether the loop may block.
//! - Stealable tasks (`spawn`) are `spindle_loop::spawn_stealable` tasks. A step scheduled on a
//!   worker goes to that worker's `crossbeam_deque::Worker` (a woken task to its LIFO slot);
//!   from anywhere else to the lock-free `Injector`, plus a wake-up of a parked worker as the idle
//!   protocol decides (see `idle.rs`: bounded searchers, notify only when nobody searches, the
//!   last searcher re-checks, no lost wake-up; loom-checked in `loom-tests/`).
//! - Local tasks (`spawn_local`, `spawn_on`) are ordinary loop tasks: they never move.
//! - Timers and I/O live on the loop where a task first registered them; firing wakes the
//!   task's (`Send`) waker, which routes the task back through the scheduler, so a stolen task
//!   still gets its wake-up.
//!
//! # Shutdown
//!
//! `shutdown` closes the task set (a spawn after that returns its future in the error), cancels
//! every stealable task, and stops every loop. Each worker then runs what is left in its queues
//! (cancelled steps: they drop their futures there), closes its loop (dropping its local tasks on
//! their own thread) and exits; the caller joins the threads and runs anything left in the
//! injector. Called (or the runtime dropped) inside one of its own tasks, the caller's worker is
//! stopped like the others but not joined (a thread cannot join itself): it exits by itself once
//! that task's step returns, and `shutdown_timeout` waits only for the other workers.

#[cfg(not(loom))]
mod idle;
#[cfg(loom)]
#[doc(hidden)]
pub mod idle;
mod metrics;
mod shared;
mod sync;
mod worker;

use std::future::Future;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_deque::Worker;
use spindle_bridge::{run_coroutine_threadsafe_with, ConcurrentFuture, LoopHandle};
use spindle_loop::{Runnable, Task};

use crate::error::{PolicyError, SpawnError};
use crate::policy::get_event_loop_policy;
pub use metrics::{ConnectionGauge, OpenConnection, WorkerMetrics};
use shared::{run_cancelled, Shared, CURRENT, WORKER};
use worker::WorkerCore;

type ThreadHook = Arc<dyn Fn() + Send + Sync>;

/// Configures and starts a [`Runtime`].
///
/// ```
/// use spindle_policy::Runtime;
///
/// let rt = Runtime::builder()
///     .worker_threads(2)
///     .thread_name("io-worker")
///     .on_thread_start(|| println!("worker up"))
///     .build()
///     .unwrap();
/// assert_eq!(rt.worker_threads(), 2);
/// ```
#[derive(Clone, Default)]
pub struct Builder {
    workers: Option<usize>,
    thread_name: Option<String>,
    on_start: Option<ThreadHook>,
    on_stop: Option<ThreadHook>,
    /// `io_help(false)` was asked for.
    no_io_help: bool,
}

impl Builder {
    /// Whether an idle worker takes a busy sibling's socket events (default: yes, on Linux;
    /// elsewhere there is nothing to turn on). A worker's sockets are polled by its own loop;
    /// with this, a worker that is idle while a sibling is busy (in a long batch, a long
    /// callback, or descheduled by the OS) also watches that sibling's poller and wakes the
    /// tasks waiting on its sockets from its own thread, as a runtime with one shared poller
    /// would (see `spindle_loop::EventLoop::help_io_of` for the protocol). Turned off, a
    /// sibling only learns of such work when the busy worker queues it and wakes it.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder()
    ///     .worker_threads(2)
    ///     .io_help(false)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(rt.block_on(async { 1 }).unwrap(), 1);
    /// ```
    pub fn io_help(mut self, on: bool) -> Self {
        self.no_io_help = !on;
        self
    }

    /// How many workers (default: `SPINDLE_WORKERS` if set, else the available parallelism).
    /// 0 is refused by [`build`](Self::build).
    ///
    /// ```
    /// let err = spindle_policy::Runtime::builder().worker_threads(0).build().unwrap_err();
    /// assert_eq!(err, spindle_policy::PolicyError::NoWorkers);
    /// ```
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// The workers' thread names are `<name>-<index>` (default `spindle-worker-<index>`).
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).thread_name("w").build().unwrap();
    /// let name = rt.block_on(async {}).map(|_| ());
    /// # drop(name);
    /// ```
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = Some(name.into());
        self
    }

    /// Runs `f` on each worker thread when it starts, before its loop runs.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).on_thread_start(|| ()).build();
    /// assert!(rt.is_ok());
    /// ```
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_start = Some(Arc::new(f));
        self
    }

    /// Runs `f` on each worker thread as it stops, after its loop closed.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).on_thread_stop(|| ()).build();
    /// assert!(rt.is_ok());
    /// ```
    pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_stop = Some(Arc::new(f));
        self
    }

    fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::env::var("SPINDLE_WORKERS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        })
    }

    /// Starts the workers. Errors: no workers, a thread that could not start, a worker loop
    /// that could not be created (the workers already started are shut down).
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// assert_eq!(rt.block_on(async { 1 + 1 }).unwrap(), 2);
    /// ```
    pub fn build(self) -> Result<Runtime, PolicyError> {
        let workers = self.worker_count();
        if workers == 0 {
            return Err(PolicyError::NoWorkers);
        }
        let locals: Vec<Worker<Runnable>> = (0..workers).map(|_| Worker::new_fifo()).collect();
        let mut shared = Shared::new(locals.iter().map(|w| w.stealer()).collect());
        shared.io_help = !self.no_io_help;
        let shared = Arc::new(shared);
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut runtime = Runtime {
            handle: RuntimeHandle {
                shared: shared.clone(),
            },
            threads: Vec::with_capacity(workers),
        };
        let base = self.thread_name.as_deref().unwrap_or("spindle-worker");
        for (index, local) in locals.into_iter().enumerate() {
            let shared = shared.clone();
            let ready = ready_tx.clone();
            let (on_start, on_stop) = (self.on_start.clone(), self.on_stop.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("{base}-{index}"))
                .spawn(move || worker_main(index, shared, local, ready, on_start, on_stop));
            match spawned {
                Ok(thread) => runtime.threads.push(thread),
                Err(e) => {
                    drop(ready_tx);
                    runtime.abort_start(&ready_rx, Vec::new());
                    return Err(PolicyError::ThreadSpawn(e.to_string()));
                }
            }
        }
        drop(ready_tx);
        let mut started: Vec<Option<LoopHandle>> = vec![None; workers];
        for _ in 0..workers {
            let failure = match ready_rx.recv() {
                Ok((index, Ok(handle))) => {
                    started[index] = Some(handle);
                    continue;
                }
                Ok((_, Err(e))) => e,
                Err(_) => "a worker exited while starting".into(),
            };
            runtime.abort_start(&ready_rx, started.into_iter().flatten().collect());
            return Err(PolicyError::WorkerLoop(failure));
        }
        // Every worker is up: notifications can reach them from now on.
        let _ = shared.loops.set(started.into_iter().flatten().collect());
        Ok(runtime)
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("worker_threads", &self.workers)
            .field("thread_name", &self.thread_name)
            .finish_non_exhaustive()
    }
}

/// A worker's start report: its index and its loop's handle, or why it could not start.
type Started = (usize, Result<LoopHandle, String>);
type Ready = mpsc::Sender<Started>;

fn worker_main(
    index: usize,
    shared: Arc<Shared>,
    local: Worker<Runnable>,
    ready: Ready,
    on_start: Option<ThreadHook>,
    on_stop: Option<ThreadHook>,
) {
    if let Some(hook) = &on_start {
        hook();
    }
    let policy = get_event_loop_policy();
    let lp = match policy.new_event_loop() {
        Ok(lp) => lp,
        Err(e) => {
            let _ = ready.send((index, Err(e.to_string())));
            return;
        }
    };
    policy.set_event_loop(Some(lp.clone()));
    let core = Rc::new(WorkerCore::new(index, shared.clone(), local));
    WORKER.with(|w| *w.borrow_mut() = Some(core.clone()));
    CURRENT.with(|c| *c.borrow_mut() = Some(shared.clone()));
    lp.set_worker_hook(Some(core.clone()));
    core.set_event_loop(Some(lp.clone()));
    #[cfg(all(target_os = "linux", not(loom)))]
    if let Some(share) = shared
        .io_shares
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(index)
    {
        *share = Some(lp.io_share());
    }
    // Reported from inside the running loop: when `build()` returns, every loop is running.
    let started = LoopHandle::new(&lp);
    if let Err(rejected) = lp.call_soon(move || {
        let _ = ready.send((index, Ok(started)));
    }) {
        // Unreachable (the loop is new and open); report rather than hang `build()`.
        drop(rejected);
    }
    {
        let _span = tracing::info_span!("spindle.worker", index).entered();
        loop {
            if let Err(e) = lp.run_forever() {
                tracing::error!(worker = index, error = %e, "worker loop could not run");
                break;
            }
            if shared.is_shutdown() {
                break;
            }
        }
        core.drain_for_shutdown();
    }
    lp.set_worker_hook(None);
    core.set_event_loop(None);
    CURRENT.with(|c| c.borrow_mut().take());
    WORKER.with(|w| w.borrow_mut().take());
    drop(core);
    policy.set_event_loop(None);
    // Local tasks and callbacks are dropped here, on their own thread.
    let _ = lp.close();
    if let Some(hook) = &on_stop {
        hook();
    }
}

/// A work-stealing runtime: N worker threads, each running its own spindle loop.
///
/// ```
/// use spindle_policy::Runtime;
///
/// let rt = Runtime::builder().worker_threads(2).build().unwrap();
/// let sum = rt
///     .block_on(async {
///         let tasks: Vec<_> = (0..10u64)
///             .map(|i| spindle_policy::spawn(async move { i * i }).unwrap())
///             .collect();
///         let mut sum = 0;
///         for t in tasks {
///             sum += t.await.unwrap();
///         }
///         sum
///     })
///     .unwrap();
/// assert_eq!(sum, 285);
/// rt.shutdown();
/// ```
pub struct Runtime {
    handle: RuntimeHandle,
    threads: Vec<JoinHandle<()>>,
}

impl Runtime {
    /// A [`Builder`] with the defaults.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A runtime with the default settings.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::new().unwrap();
    /// assert!(rt.worker_threads() >= 1);
    /// ```
    pub fn new() -> Result<Runtime, PolicyError> {
        Builder::default().build()
    }

    /// A `Send + Clone` handle for spawning from other threads.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let handle = rt.handle().clone();
    /// let mut task = std::thread::spawn(move || handle.spawn(async { 3 }).unwrap()).join().unwrap();
    /// # let _ = &mut task;
    /// ```
    pub fn handle(&self) -> &RuntimeHandle {
        &self.handle
    }

    /// How many workers the runtime has.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(3).build().unwrap();
    /// assert_eq!(rt.worker_threads(), 3);
    /// ```
    pub fn worker_threads(&self) -> usize {
        self.handle.shared.num_workers()
    }

    /// Spawns a `Send` task that any worker may run; see [`RuntimeHandle::spawn`].
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// let task = rt.spawn(async { "stolen or not" }).unwrap();
    /// assert_eq!(rt.block_on(task).unwrap(), Ok("stolen or not"));
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Result<Task<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Starts `!Send` work on worker `worker`; see [`RuntimeHandle::spawn_on`].
    ///
    /// ```
    /// use std::rc::Rc;
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// let fut = rt.spawn_on(1, || { let local = Rc::new(5); async move { *local } }).unwrap();
    /// assert_eq!(fut.result().unwrap(), 5);
    /// ```
    pub fn spawn_on<M, F>(
        &self,
        worker: usize,
        make: M,
    ) -> Result<ConcurrentFuture<F::Output>, SpawnError<M>>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn_on(worker, make)
    }

    /// Runs `future` to completion on the calling thread (a loop of its own, as [`run`](crate::run)
    /// does), with `spawn` inside it going to this runtime.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let out = rt.block_on(async { spindle_policy::spawn(async { 7 }).unwrap().await.unwrap() });
    /// assert_eq!(out.unwrap(), 7);
    /// ```
    #[track_caller]
    pub fn block_on<F>(&self, future: F) -> Result<F::Output, PolicyError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let previous = CURRENT.with(|c| c.replace(Some(self.handle.shared.clone())));
        struct Restore(Option<Arc<Shared>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let _restore = Restore(previous);
        crate::run::run(future)
    }

    /// The thread-safe handles of the workers' loops, by worker index.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// assert_eq!(rt.loops().len(), 2);
    /// ```
    pub fn loops(&self) -> Vec<LoopHandle> {
        self.handle.loops()
    }

    /// A snapshot of every worker's counters.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// rt.block_on(async { spindle_policy::spawn(async {}).unwrap().await.unwrap() }).unwrap();
    /// let polled: u64 = rt.metrics().iter().map(|m| m.tasks_polled).sum();
    /// assert!(polled >= 1);
    /// ```
    pub fn metrics(&self) -> Vec<WorkerMetrics> {
        self.handle.metrics()
    }

    /// Worker `worker`'s open-connection gauge (see [`RuntimeHandle::connection_gauge`]).
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let _conn = rt.connection_gauge(0)?.open();
    /// assert_eq!(rt.metrics()[0].open_connections, 1);
    /// # Ok::<(), spindle_policy::PolicyError>(())
    /// ```
    pub fn connection_gauge(&self, worker: usize) -> Result<ConnectionGauge, PolicyError> {
        self.handle.connection_gauge(worker)
    }

    /// Shuts down and waits for every worker: stop the loops, cancel and drop every task on the
    /// thread that owns it, join the threads (see the module docs).
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// rt.spawn(std::future::pending::<()>()).unwrap();
    /// rt.shutdown();
    /// ```
    pub fn shutdown(mut self) {
        self.shutdown_inner(None);
    }

    /// Like [`shutdown`](Self::shutdown), but waits at most `timeout` for the workers; returns
    /// whether all of them finished in time (the others are left to finish on their own).
    /// Called inside one of the runtime's tasks, it waits for the other workers only (its own
    /// exits once the task's step returns).
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// assert!(rt.shutdown_timeout(Duration::from_secs(10)));
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> bool {
        self.shutdown_inner(Some(timeout))
    }

    /// `build()` failed part way: the workers that did start are running their loops, and
    /// only a stop through their handles ends them. Waits for every spawned worker to report
    /// (started, failed, or gone: the channel disconnects when the last one drops its sender),
    /// publishes the started loops (in report order, not by index: shutdown stops them all,
    /// and nothing else uses them after this), then shuts down as usual.
    fn abort_start(&mut self, ready: &mpsc::Receiver<Started>, mut started: Vec<LoopHandle>) {
        started.extend(ready.iter().filter_map(|(_, report)| report.ok()));
        let _ = self.handle.shared.loops.set(started);
        self.shutdown_inner(None);
    }

    fn shutdown_inner(&mut self, timeout: Option<Duration>) -> bool {
        let shared = &self.handle.shared;
        if shared.is_shutdown() {
            return true; // shut down already (`&mut self`: no other caller races this one)
        }
        shared.tasks.close();
        shared.tasks.cancel_all();
        for handle in shared.loops.get().map(Vec::as_slice).unwrap_or_default() {
            let _ = handle.stop();
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut all_joined = true;
        // Called from inside one of the runtime's own tasks: that worker cannot be joined (it
        // is the caller); its loop was stopped above, and it drains and exits by itself once
        // this task's step returns.
        let here = std::thread::current().id();
        let on_a_worker = self.threads.iter().any(|t| t.thread().id() == here);
        for thread in self.threads.drain(..) {
            if thread.thread().id() == here {
                continue;
            }
            match deadline {
                None => {
                    let _ = thread.join();
                }
                Some(deadline) => {
                    while !thread.is_finished() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    if thread.is_finished() {
                        let _ = thread.join();
                    } else {
                        all_joined = false;
                    }
                }
            }
        }
        if all_joined && !on_a_worker {
            // Steps that reached the injector after every worker left: run them here (they
            // are cancelled, so each drops its future and completes). On a worker, that
            // worker's own shutdown drain does it.
            while let crossbeam_deque::Steal::Success(runnable) = shared.injector.steal() {
                run_cancelled(runnable);
            }
        }
        all_joined
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown_inner(None);
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("worker_threads", &self.worker_threads())
            .field("live_tasks", &self.handle.shared.tasks.len())
            .finish()
    }
}

/// A `Send + Sync + Clone` handle to a [`Runtime`]: spawn from any thread.
///
/// ```
/// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
/// let handle = rt.handle().clone();
/// let out = std::thread::spawn(move || {
///     let task = handle.spawn(async { 40 + 2 }).unwrap();
///     spindle_policy::run(task).unwrap()
/// })
/// .join()
/// .unwrap();
/// assert_eq!(out, Ok(42));
/// ```
#[derive(Clone)]
pub struct RuntimeHandle {
    shared: Arc<Shared>,
}

impl RuntimeHandle {
    /// The runtime of the worker (or `block_on`) this thread is running, if any.
    ///
    /// ```
    /// assert!(spindle_policy::RuntimeHandle::current().is_none());
    /// ```
    pub fn current() -> Option<RuntimeHandle> {
        let shared = CURRENT.with(|c| c.borrow().clone())?;
        Some(RuntimeHandle { shared })
    }

    /// Spawns a `Send` task that any worker may run (stealable), from any thread. On a worker
    /// it takes that worker's LIFO slot (it runs next; a task it displaces goes to the queue,
    /// where siblings can steal it); elsewhere it goes to the injector and wakes a parked
    /// worker. After shutdown the future comes back in the error.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// let task = rt.handle().spawn(async { 1 }).unwrap();
    /// assert_eq!(rt.block_on(task).unwrap(), Ok(1));
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Result<Task<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared.spawn(future)
    }

    /// Starts `!Send` work on worker `worker` from anywhere: `make` runs on that worker's thread
    /// and builds the future, which runs there as a local task (it never moves). The result
    /// comes back through a [`ConcurrentFuture`] (blocking `result()`, or await it).
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// let name = rt.handle().spawn_on(0, || async {
    ///     std::thread::current().name().unwrap().to_string()
    /// });
    /// assert_eq!(name.unwrap().result().unwrap(), "spindle-worker-0");
    /// ```
    pub fn spawn_on<M, F>(
        &self,
        worker: usize,
        make: M,
    ) -> Result<ConcurrentFuture<F::Output>, SpawnError<M>>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let workers = self.shared.num_workers();
        if self.shared.is_shutdown() {
            return Err(SpawnError::new(make, PolicyError::ShutDown));
        }
        let Some(handle) = self.shared.loops.get().and_then(|loops| loops.get(worker)) else {
            return Err(SpawnError::new(
                make,
                PolicyError::NoSuchWorker {
                    index: worker,
                    workers,
                },
            ));
        };
        run_coroutine_threadsafe_with(make, handle)
            .map_err(|e| SpawnError::new(e.into_inner(), PolicyError::ShutDown))
    }

    /// The thread-safe handles of the workers' loops, by worker index.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// assert!(rt.handle().loops().iter().all(|l| l.is_running()));
    /// ```
    pub fn loops(&self) -> Vec<LoopHandle> {
        self.shared.loops.get().cloned().unwrap_or_default()
    }

    /// A snapshot of every worker's counters.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// assert_eq!(rt.handle().metrics()[0].worker, 0);
    /// ```
    pub fn metrics(&self) -> Vec<WorkerMetrics> {
        self.shared
            .workers
            .iter()
            .enumerate()
            .zip(&self.shared.stealers)
            .zip(self.shared.open_connections.iter())
            .map(|(((index, worker), queue), open)| {
                let open = open.load(std::sync::atomic::Ordering::SeqCst);
                worker.counters.snapshot(index, queue.len(), open)
            })
            .collect()
    }

    /// Worker `worker`'s open-connection gauge: how a server built on the runtime (such as
    /// `spindle-net`'s `Server`) counts the connections open on each worker, which
    /// [`metrics`](Self::metrics) reports as [`WorkerMetrics::open_connections`].
    ///
    /// Errors: no such worker ([`PolicyError::NoSuchWorker`]).
    ///
    /// ```
    /// use spindle_policy::PolicyError;
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// let conn = rt.handle().connection_gauge(0)?.open();
    /// assert_eq!(rt.metrics().iter().map(|m| m.open_connections).sum::<usize>(), 1);
    /// drop(conn);
    /// assert!(matches!(rt.handle().connection_gauge(2), Err(PolicyError::NoSuchWorker { .. })));
    /// # Ok::<(), PolicyError>(())
    /// ```
    pub fn connection_gauge(&self, worker: usize) -> Result<ConnectionGauge, PolicyError> {
        let workers = self.shared.num_workers();
        if worker >= workers {
            return Err(PolicyError::NoSuchWorker {
                index: worker,
                workers,
            });
        }
        Ok(ConnectionGauge::new(
            self.shared.open_connections.clone(),
            worker,
        ))
    }
}

impl std::fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("worker_threads", &self.shared.num_workers())
            .finish()
    }
}

/// Spawns a `Send` task on the runtime this thread belongs to (a worker, or inside
/// [`Runtime::block_on`]); elsewhere the future comes back with [`PolicyError::NoRuntime`].
///
/// ```
/// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
/// let out = rt.block_on(async {
///     let task = spindle_policy::spawn(async { 2 + 2 }).unwrap();
///     task.await.unwrap()
/// });
/// assert_eq!(out.unwrap(), 4);
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> Result<Task<F::Output>, SpawnError<F>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // No `Arc` clone: the borrow of this thread's slot lasts for the spawn.
    CURRENT.with(|current| match &*current.borrow() {
        None => Err(SpawnError::new(future, PolicyError::NoRuntime)),
        Some(shared) => shared.spawn(future),
    })
}
