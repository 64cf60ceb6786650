//! [`BlockingPool`]: a bounded pool of threads for blocking work (asyncio's default executor,
//! a `ThreadPoolExecutor`).
//!
//! # Protocol
//!
//! One mutex guards the queue and the thread counts; one condvar wakes idle workers. A spawn
//! pushes the job, then wakes an idle worker if there are at least as many idle workers as
//! queued jobs, else starts a new thread while fewer than `max_threads` exist; otherwise the
//! job waits for a busy worker. A worker takes jobs until the queue is empty, then waits; after
//! [`KEEP_ALIVE`] without work (or at shutdown) it exits. Threads are started lazily, so an
//! unused pool costs nothing.
//!
//! Each job is a [`ConcurrentFuture`]'s producing side: it marks the future running before it
//! calls the function (after which `cancel()` fails: a thread cannot be interrupted; a job
//! cancelled while queued is skipped), catches a panic, and completes the future. Its worker
//! counts itself idle just before that completion, so a caller that spawns again as soon as
//! it has the result finds the thread available (it takes the queue before it ever waits). Shutdown
//! refuses new jobs, resolves the queued ones with an error, and lets the running ones finish;
//! their threads then exit. Nothing is joined: a blocking call must not hang a loop's `close()`.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::concurrent::{Completer, ConcurrentFuture};
use crate::error::{BridgeError, SubmitError};
use crate::sync::{lock, wait_timeout, Arc, Condvar, Mutex};

/// How long an idle pool thread waits for work before it exits (tokio's blocking pool uses the
/// same 10 s): long enough that bursts reuse threads, short enough that an idle process sheds
/// them.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// asyncio's default executor size: `min(32, cpu_count + 4)` (I/O-bound work benefits from more
/// threads than cores, up to a cap).
const MAX_DEFAULT_THREADS: usize = 32;
const EXTRA_THREADS: usize = 4;

/// A queued job: called with `Ok(returning)` to run (it calls `returning()` once the work is
/// done, just before it resolves the future), or with the error to resolve its future with
/// instead (shutdown, or no thread could be started).
type Job = Box<dyn FnOnce(Result<&dyn Fn(), BridgeError>) + Send>;

struct PoolInner {
    state: Mutex<PoolState>,
    work: Condvar,
    /// Signalled when a thread exits (`shutdown_and_wait` waits on it).
    exited: Condvar,
    max_threads: usize,
    name: String,
    /// What jobs refused or dropped at shutdown resolve with.
    shut_down_error: BridgeError,
}

struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shut_down: bool,
}

/// A bounded pool of threads that runs blocking functions and hands their results back as
/// [`ConcurrentFuture`]s (blocked on from a plain thread, or awaited from a task). Each loop
/// has a default one behind [`EventLoopExt::run_in_executor`](crate::EventLoopExt::run_in_executor)
/// and [`to_thread`](crate::to_thread); create your own for work that should not compete with
/// it. Cloning gives another handle to the same pool.
///
/// ```
/// use spindle_bridge::BlockingPool;
///
/// let pool = BlockingPool::new(4);
/// let futures: Vec<_> = (0..8).map(|i| pool.spawn(move || i * i).unwrap()).collect();
/// let squares: Vec<i32> = futures.into_iter().map(|f| f.result().unwrap()).collect();
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49]);
/// pool.shutdown();
/// ```
#[derive(Clone)]
pub struct BlockingPool {
    inner: Arc<PoolInner>,
}

impl BlockingPool {
    /// A pool of at most `max_threads` threads (at least 1: a 0 is taken as 1). Threads start
    /// on demand and exit after [`KEEP_ALIVE`] without work.
    ///
    /// ```
    /// let pool = spindle_bridge::BlockingPool::new(0);
    /// assert_eq!(pool.max_threads(), 1);
    /// ```
    pub fn new(max_threads: usize) -> BlockingPool {
        BlockingPool::build(
            max_threads,
            "spindle-blocking".to_owned(),
            BridgeError::PoolShutDown,
        )
    }

    pub(crate) fn build(
        max_threads: usize,
        name: String,
        shut_down_error: BridgeError,
    ) -> BlockingPool {
        BlockingPool {
            inner: Arc::new(PoolInner {
                state: Mutex::new(PoolState {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    shut_down: false,
                }),
                work: Condvar::new(),
                exited: Condvar::new(),
                max_threads: max_threads.max(1),
                name,
                shut_down_error,
            }),
        }
    }

    /// asyncio's default pool size: `min(32, cores + 4)`.
    ///
    /// ```
    /// let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// assert_eq!(spindle_bridge::BlockingPool::default_size(), (cores + 4).min(32));
    /// ```
    pub fn default_size() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores + EXTRA_THREADS).min(MAX_DEFAULT_THREADS)
    }

    /// The most threads this pool runs at once.
    ///
    /// ```
    /// assert_eq!(spindle_bridge::BlockingPool::new(3).max_threads(), 3);
    /// ```
    pub fn max_threads(&self) -> usize {
        self.inner.max_threads
    }

    /// How many pool threads are alive now (busy or idle).
    ///
    /// ```
    /// let pool = spindle_bridge::BlockingPool::new(2);
    /// assert_eq!(pool.threads(), 0); // started on demand
    /// pool.spawn(|| ()).unwrap().result().unwrap();
    /// assert_eq!(pool.threads(), 1);
    /// ```
    pub fn threads(&self) -> usize {
        lock(&self.inner.state).threads
    }

    /// Whether [`shutdown`](Self::shutdown) was called (or the loop owning the pool closed).
    ///
    /// ```
    /// let pool = spindle_bridge::BlockingPool::new(1);
    /// pool.shutdown();
    /// assert!(pool.is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        lock(&self.inner.state).shut_down
    }

    /// Runs `f` on a pool thread and returns a future of its result. A panic in `f` comes back
    /// as [`BridgeError::Panicked`]. On a pool that is shut down, `f` comes back in the error.
    ///
    /// ```
    /// use spindle_bridge::{BlockingPool, BridgeError};
    ///
    /// let pool = BlockingPool::new(1);
    /// assert_eq!(pool.spawn(|| 2 + 2).unwrap().result(), Ok(4));
    /// let boom = pool.spawn(|| -> u8 { panic!("disk on fire") }).unwrap();
    /// assert_eq!(boom.result(), Err(BridgeError::Panicked("disk on fire".into())));
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> Result<ConcurrentFuture<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let mut state = lock(&self.inner.state);
        if state.shut_down {
            return Err(SubmitError::new(f, self.inner.shut_down_error.clone()));
        }
        let (completer, future) = Completer::pair(self.inner.shut_down_error.clone());
        state.queue.push_back(job(f, completer));
        let start_thread = if state.idle >= state.queue.len() {
            self.inner.work.notify_one();
            false
        } else if state.threads < self.inner.max_threads {
            state.threads += 1;
            true
        } else {
            false
        };
        drop(state);
        if start_thread {
            self.start_thread();
        }
        Ok(future)
    }

    /// Stops accepting work. Queued jobs that have not started are dropped and their futures
    /// resolve with an error ([`BridgeError::PoolShutDown`], or [`BridgeError::Closed`] for a
    /// loop's pool); running ones finish, then their threads exit. Does not wait for them.
    /// Idempotent.
    ///
    /// ```
    /// use spindle_bridge::{BlockingPool, BridgeError};
    ///
    /// let pool = BlockingPool::new(1);
    /// pool.shutdown();
    /// let err = pool.spawn(|| ()).unwrap_err();
    /// assert_eq!(err.reason(), &BridgeError::PoolShutDown);
    /// ```
    pub fn shutdown(&self) {
        let dropped = {
            let mut state = lock(&self.inner.state);
            state.shut_down = true;
            std::mem::take(&mut state.queue)
        };
        self.inner.work.notify_all();
        for job in dropped {
            job(Err(self.inner.shut_down_error.clone()));
        }
    }

    /// Stops accepting work like [`shutdown`](Self::shutdown), but lets the queued jobs run as
    /// well, and waits at most `timeout` for every job to finish and every thread to exit
    /// (asyncio's `executor.shutdown(wait=True)`). Returns whether they did; jobs still running
    /// after `timeout` go on, unjoined.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle_bridge::BlockingPool;
    ///
    /// let pool = BlockingPool::new(1);
    /// let job = pool.spawn(|| std::thread::sleep(Duration::from_millis(5))).unwrap();
    /// assert!(pool.shutdown_and_wait(Duration::from_secs(60)));
    /// assert_eq!(job.result(), Ok(()));
    /// assert_eq!(pool.threads(), 0);
    /// ```
    pub fn shutdown_and_wait(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now().checked_add(timeout);
        let mut state = lock(&self.inner.state);
        state.shut_down = true;
        // Idle threads wake, run what is queued, and exit (see `worker`).
        self.inner.work.notify_all();
        while state.threads > 0 {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(std::time::Instant::now()),
                None => Duration::MAX, // a timeout past the clock's range: wait for ever
            };
            if left.is_zero() {
                return false;
            }
            state = wait_timeout(&self.inner.exited, state, left).0;
        }
        true
    }

    /// Starts one worker thread (its slot in `threads` is already counted).
    fn start_thread(&self) {
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name(self.inner.name.clone())
            .spawn(move || worker(&inner));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, pool = %self.inner.name, "spindle: could not start a blocking-pool thread");
            let stranded = {
                let mut state = lock(&self.inner.state);
                state.threads -= 1;
                // With no thread at all, nothing would ever run the queue: fail it now. With
                // some, they will get to it.
                if state.threads == 0 {
                    std::mem::take(&mut state.queue)
                } else {
                    VecDeque::new()
                }
            };
            let error = BridgeError::Spawn(e.to_string().into());
            for job in stranded {
                job(Err(error.clone()));
            }
        }
    }
}

/// Wraps `f` as a job completing `completer`.
fn job<F, T>(f: F, completer: Completer<T>) -> Job
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Box::new(move |go: Result<&dyn Fn(), BridgeError>| match go {
        Err(error) => {
            completer.complete(Err(error));
        }
        Ok(returning) => {
            if !completer.start_running() {
                return; // cancelled while queued
            }
            let outcome = catch_unwind(AssertUnwindSafe(f))
                .map_err(|payload| BridgeError::from_panic(&*payload));
            returning();
            completer.complete(outcome);
        }
    })
}

/// A pool thread: runs jobs until the pool shuts down or it idles for [`KEEP_ALIVE`].
fn worker(inner: &PoolInner) {
    let mut state = lock(&inner.state);
    loop {
        if let Some(job) = state.queue.pop_front() {
            drop(state);
            // Counted idle from just before the job resolves its future: a caller that reacts
            // to the result by spawning again reuses this thread instead of starting another.
            let returned = Cell::new(false);
            let returning = || {
                lock(&inner.state).idle += 1;
                returned.set(true);
            };
            job(Ok(&returning));
            state = lock(&inner.state);
            if returned.get() {
                state.idle -= 1;
            }
            continue;
        }
        if state.shut_down {
            break;
        }
        state.idle += 1;
        let (guard, timed_out) = wait_timeout(&inner.work, state, KEEP_ALIVE);
        state = guard;
        state.idle -= 1;
        if timed_out && state.queue.is_empty() {
            break;
        }
    }
    state.threads -= 1;
    // Pairs with `shutdown_and_wait`'s wait (under the same lock).
    inner.exited.notify_all();
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner.state);
        f.debug_struct("BlockingPool")
            .field("name", &self.inner.name)
            .field("max_threads", &self.inner.max_threads)
            .field("threads", &state.threads)
            .field("idle", &state.idle)
            .field("queued", &state.queue.len())
            .field("shut_down", &state.shut_down)
            .finish()
    }
}
