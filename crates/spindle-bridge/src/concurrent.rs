//! [`ConcurrentFuture`]: the outcome of work running on another thread (Python's
//! `concurrent.futures.Future`), which a plain thread can block on and a task can await.
//!
//! # Protocol
//!
//! One `Shared` per future: a mutex-protected `Slot` (the outcome, the done-callbacks, the waker
//! of an async awaiter, the task to cancel, how many threads are blocked on it), a condvar those
//! threads wait on, and `state`, an atomic mirror of the slot's phase (`RUNNING`, `DONE`,
//! `CANCELLED` bits) so `done()` and the spin in `result()` read one atomic and take no lock.
//!
//! - **Every transition happens under the lock**; `state` is only written there. The first
//!   resolution wins (the work completing, `cancel()`, or the producing side being dropped);
//!   a later one gets its outcome back and drops it outside the lock.
//! - **The resolver takes** the callbacks, the waker, the task and "is anyone blocked?" under
//!   the lock, and acts on them after releasing it: notify the condvar (only if a waiter is
//!   registered: waiters register under the lock before they wait, so none is missed), wake the
//!   awaiter, cancel the task, run the callbacks in the order they were added.
//! - **`add_done_callback`** pushes under the lock if the future is not done; otherwise it runs
//!   the callback at once, on the caller's thread. So each callback runs exactly once: on the
//!   resolving thread, or on the adding thread.
//! - **Values are handed out once** (`result()`, `result_timeout()`, `.await`), then
//!   [`BridgeError::ResultTaken`]; **errors are sticky**: every ask returns the same error.
//! - **User code never runs under the lock** (callbacks, wakers, destructors of values that lost
//!   the race), so a callback may call back into the future.
//!
//! The loom models in `loom-tests/tests/bridge.rs` check complete vs cancel vs
//! `add_done_callback` vs a blocked `result()`.

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use spindle_loop::TaskRef;

use crate::error::BridgeError;
use crate::handle::running_loop;
use crate::sync::{
    lock, spin_until, wait, wait_timeout, Arc, AtomicU8, Condvar, Mutex, Ordering, SPIN_FOR,
};
use spindle_loop::panic_message;

/// The work started and can no longer be cancelled (blocking-pool jobs only: a coroutine can
/// always be cancelled until it is done).
const RUNNING: u8 = 1 << 0;
/// The future is resolved.
const DONE: u8 = 1 << 1;
/// It was resolved by cancellation.
const CANCELLED: u8 = 1 << 2;

type DoneCallback<T> = Box<dyn FnOnce(&ConcurrentFuture<T>) + Send>;

struct Shared<T> {
    state: AtomicU8,
    /// The loop whose task produces the outcome, if any: blocking on it from that loop's own
    /// thread could never end.
    loop_id: Option<u64>,
    slot: Mutex<Slot<T>>,
    resolved: Condvar,
}

struct Slot<T> {
    /// `Some` once resolved, until a value is taken (an error stays).
    outcome: Option<Result<T, BridgeError>>,
    callbacks: Vec<DoneCallback<T>>,
    /// The waker of the task awaiting the future, if any.
    waker: Option<Waker>,
    /// The task running the coroutine, once it exists: `cancel()` cancels it.
    task: Option<TaskRef>,
    /// Threads blocked in `result()` / `result_timeout()`.
    waiters: usize,
}

/// What a resolution does once the lock is released.
struct Resolved<T> {
    callbacks: Vec<DoneCallback<T>>,
    waker: Option<Waker>,
    notify: bool,
    task: Option<TaskRef>,
}

impl<T> Shared<T> {
    fn state(&self) -> u8 {
        // Acquire pairs with the Release `fetch_or` in `resolve_locked`: whoever sees DONE sees
        // everything the resolving thread did before resolving.
        self.state.load(Ordering::Acquire)
    }

    /// Whether the future is resolved (any thread).
    fn is_done(&self) -> bool {
        self.state() & DONE != 0
    }

    /// Whether any of `bits` is set, for a caller that holds the slot's lock. Relaxed: `state`
    /// only changes under that lock.
    fn has_locked(&self, bits: u8) -> bool {
        self.state.load(Ordering::Relaxed) & bits != 0
    }

    /// Resolves with `outcome`; the caller holds the lock and has checked DONE is not set.
    fn resolve_locked(&self, slot: &mut Slot<T>, outcome: Result<T, BridgeError>) -> Resolved<T> {
        let bits = match outcome {
            Err(BridgeError::Cancelled) => DONE | CANCELLED,
            _ => DONE,
        };
        slot.outcome = Some(outcome);
        self.state.fetch_or(bits, Ordering::Release);
        Resolved {
            callbacks: std::mem::take(&mut slot.callbacks),
            waker: slot.waker.take(),
            notify: slot.waiters > 0,
            task: slot.task.take(),
        }
    }
}

/// Resolves `shared` with `outcome` unless it is already resolved; then the outcome comes back
/// (for the caller to drop, outside the lock).
fn resolve<T>(
    shared: &Arc<Shared<T>>,
    outcome: Result<T, BridgeError>,
) -> Result<(), Result<T, BridgeError>> {
    let resolved = try_resolve(shared, outcome, DONE)?;
    fire(shared, resolved);
    Ok(())
}

/// The first half of a resolution, under the lock: refused (the outcome comes back) if any of
/// `refuse` is set.
fn try_resolve<T>(
    shared: &Shared<T>,
    outcome: Result<T, BridgeError>,
    refuse: u8,
) -> Result<Resolved<T>, Result<T, BridgeError>> {
    let mut slot = lock(&shared.slot);
    if shared.has_locked(refuse) {
        return Err(outcome);
    }
    Ok(shared.resolve_locked(&mut slot, outcome))
}

/// The second half of a resolution, with the lock released.
fn fire<T>(shared: &Arc<Shared<T>>, resolved: Resolved<T>) {
    if resolved.notify {
        shared.resolved.notify_all();
    }
    if let Some(waker) = resolved.waker {
        waker.wake();
    }
    drop(resolved.task);
    if !resolved.callbacks.is_empty() {
        let view = ConcurrentFuture {
            shared: shared.clone(),
        };
        for callback in resolved.callbacks {
            run_callback(&view, callback);
        }
    }
}

/// Runs one done-callback; a panic is caught and logged, the other callbacks still run
/// (as in Python's `concurrent.futures`).
fn run_callback<T>(future: &ConcurrentFuture<T>, callback: impl FnOnce(&ConcurrentFuture<T>)) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(future))) {
        tracing::error!(
            panic = %panic_message(&*payload),
            "spindle: a ConcurrentFuture done-callback panicked"
        );
    }
}

/// Takes the outcome: a value once, an error as often as asked.
fn take<T>(slot: &mut Slot<T>) -> Result<T, BridgeError> {
    match slot.outcome.take() {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => {
            slot.outcome = Some(Err(e.clone()));
            Err(e)
        }
        None => Err(BridgeError::ResultTaken),
    }
}

/// The outcome of work running on another thread: a coroutine on a loop
/// ([`run_coroutine_threadsafe`](crate::run_coroutine_threadsafe)) or a blocking function on a
/// pool ([`BlockingPool::spawn`](crate::BlockingPool::spawn),
/// [`to_thread`](crate::to_thread)). `Send` and `Sync` when `T` is `Send`.
///
/// Block on it with [`result`](Self::result) or [`result_timeout`](Self::result_timeout), or
/// `.await` it from a task on any loop. It always resolves: with the work's value, its panic,
/// its cancellation (on either side), or [`BridgeError::Closed`] if the loop closed first.
/// Dropping it detaches the work (it runs on); [`cancel`](Self::cancel) stops it.
///
/// ```
/// use spindle_bridge::BlockingPool;
///
/// let pool = BlockingPool::new(2);
/// let fut = pool.spawn(|| 6 * 7).unwrap();
/// assert_eq!(fut.result(), Ok(42));
/// ```
pub struct ConcurrentFuture<T> {
    shared: Arc<Shared<T>>,
}

impl<T> ConcurrentFuture<T> {
    /// Whether the future is resolved (with a value, an error, or by cancellation).
    ///
    /// ```
    /// # let pool = spindle_bridge::BlockingPool::new(1);
    /// let fut = pool.spawn(|| ()).unwrap();
    /// fut.result_timeout(std::time::Duration::from_secs(60)).unwrap();
    /// assert!(fut.done());
    /// ```
    pub fn done(&self) -> bool {
        self.shared.is_done()
    }

    /// Whether the future was resolved by cancellation (from this side or the loop's).
    ///
    /// ```
    /// # let pool = spindle_bridge::BlockingPool::new(1);
    /// let gate = std::sync::mpsc::channel::<()>();
    /// let busy = pool.spawn(move || gate.1.recv()).unwrap(); // occupies the only thread
    /// let queued = pool.spawn(|| ()).unwrap();
    /// assert!(queued.cancel());
    /// assert!(queued.cancelled());
    /// # drop(gate.0); let _ = busy.result();
    /// ```
    pub fn cancelled(&self) -> bool {
        self.shared.state() & CANCELLED != 0
    }

    /// Cancels the work: the future resolves with [`BridgeError::Cancelled`] at once, and the
    /// coroutine's task is cancelled on its loop (its future is dropped there, at its next
    /// step). Returns `false` if the future was already resolved, or if it is a blocking job
    /// that already started (a thread cannot be interrupted).
    ///
    /// ```
    /// use spindle_bridge::BridgeError;
    /// # let pool = spindle_bridge::BlockingPool::new(1);
    /// # let gate = std::sync::mpsc::channel::<()>();
    /// # let busy = pool.spawn(move || gate.1.recv()).unwrap();
    /// let queued = pool.spawn(|| unreachable!()).unwrap();
    /// assert!(queued.cancel());
    /// assert!(!queued.cancel()); // already resolved
    /// assert_eq!(queued.result(), Err(BridgeError::Cancelled));
    /// # drop(gate.0); let _ = busy.result();
    /// ```
    pub fn cancel(&self) -> bool {
        let Ok(resolved) = try_resolve(&self.shared, Err(BridgeError::Cancelled), DONE | RUNNING)
        else {
            return false;
        };
        if let Some(task) = &resolved.task {
            task.cancel();
        }
        fire(&self.shared, resolved);
        true
    }

    /// Adds a callback run once the future is resolved: on the thread that resolves it (the
    /// loop's, a pool thread's, or the one calling `cancel()`), or at once on this thread if it
    /// already is. Callbacks run in the order they were added; one that panics is logged and
    /// does not stop the others. The callback may take the value with
    /// [`result_timeout`](Self::result_timeout) (it does not block: the future is done); the
    /// owner then gets [`BridgeError::ResultTaken`].
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// # let pool = spindle_bridge::BlockingPool::new(1);
    /// let fut = pool.spawn(|| 5).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// fut.add_done_callback(move |done| {
    ///     tx.send(done.result_timeout(Duration::ZERO)).unwrap();
    /// });
    /// assert_eq!(rx.recv().unwrap(), Ok(5));
    /// ```
    pub fn add_done_callback(&self, callback: impl FnOnce(&ConcurrentFuture<T>) + Send + 'static) {
        {
            let mut slot = lock(&self.shared.slot);
            if !self.shared.has_locked(DONE) {
                slot.callbacks.push(Box::new(callback));
                return;
            }
        }
        run_callback(self, callback);
    }

    /// Blocks this thread until the future resolves, then returns the value or the error.
    ///
    /// It spins briefly first (a round trip into an awake loop takes microseconds), then parks.
    /// Called on the thread of the loop that runs the coroutine, it would wait forever (the loop
    /// cannot run while its thread blocks): it returns [`BridgeError::WouldDeadlock`] instead;
    /// `.await` the future there.
    ///
    /// ```
    /// # let pool = spindle_bridge::BlockingPool::new(1);
    /// let fut = pool.spawn(|| "done").unwrap();
    /// assert_eq!(fut.result(), Ok("done"));
    /// ```
    pub fn result(&self) -> Result<T, BridgeError> {
        if let Some(loop_id) = self.shared.loop_id {
            if !self.done() && running_loop(loop_id).is_some() {
                return Err(BridgeError::WouldDeadlock);
            }
        }
        self.wait(None)
    }

    /// Like [`result`](Self::result), but gives up after `timeout` with
    /// [`BridgeError::Timeout`]; the work is not cancelled and the future can be asked again.
    /// `Duration::ZERO` asks without waiting.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle_bridge::BridgeError;
    /// # let pool = spindle_bridge::BlockingPool::new(1);
    /// let (tx, rx) = std::sync::mpsc::channel::<u32>();
    /// let fut = pool.spawn(move || rx.recv().unwrap()).unwrap();
    /// let short = Duration::from_millis(1);
    /// assert_eq!(fut.result_timeout(short), Err(BridgeError::Timeout(short)));
    /// tx.send(9).unwrap();
    /// assert_eq!(fut.result_timeout(Duration::from_secs(60)), Ok(9));
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, BridgeError> {
        self.wait(Some(timeout))
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<T, BridgeError> {
        let spin = timeout.map_or(SPIN_FOR, |t| t.min(SPIN_FOR));
        spin_until(spin, || self.done());
        // `None` with a timeout: too far away for the clock, i.e. no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let shared = &*self.shared;
        let mut slot = lock(&shared.slot);
        loop {
            if shared.has_locked(DONE) {
                return take(&mut slot);
            }
            match (timeout, deadline) {
                (Some(timeout), Some(deadline)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(BridgeError::Timeout(timeout));
                    }
                    slot.waiters += 1;
                    slot = wait_timeout(&shared.resolved, slot, deadline - now).0;
                }
                _ => {
                    slot.waiters += 1;
                    slot = wait(&shared.resolved, slot);
                }
            }
            slot.waiters -= 1;
        }
    }
}

impl<T> Future for ConcurrentFuture<T> {
    type Output = Result<T, BridgeError>;

    /// Awaiting from a task on any loop: the resolving thread wakes the task (through its
    /// loop's inbox when that is another thread).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let stale = {
            let mut slot = lock(&self.shared.slot);
            if self.shared.has_locked(DONE) {
                return Poll::Ready(take(&mut slot));
            }
            match &slot.waker {
                Some(waker) if waker.will_wake(cx.waker()) => None,
                _ => slot.waker.replace(cx.waker().clone()),
            }
        };
        // A replaced waker is dropped outside the lock.
        drop(stale);
        Poll::Pending
    }
}

impl<T> fmt::Debug for ConcurrentFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentFuture")
            .field("done", &self.done())
            .field("cancelled", &self.cancelled())
            .finish()
    }
}

/// The producing side of a [`ConcurrentFuture`]: the code running the work holds it and
/// [`complete`](Self::complete)s it. Dropped without completing, it resolves the future with
/// the error it was made with, so the future always resolves.
pub struct Completer<T> {
    shared: Arc<Shared<T>>,
    /// What the future resolves with if this is dropped first; `None` once completed.
    on_drop: Option<BridgeError>,
}

impl<T> Completer<T> {
    /// A new pending future and its completer; `on_drop` is what the future resolves with if the
    /// completer is dropped without completing it.
    pub fn pair(on_drop: BridgeError) -> (Completer<T>, ConcurrentFuture<T>) {
        Completer::new(None, on_drop)
    }

    /// Like [`pair`](Self::pair), for work run by a task of the loop `loop_id`.
    pub(crate) fn on_loop(
        loop_id: u64,
        on_drop: BridgeError,
    ) -> (Completer<T>, ConcurrentFuture<T>) {
        Completer::new(Some(loop_id), on_drop)
    }

    fn new(loop_id: Option<u64>, on_drop: BridgeError) -> (Completer<T>, ConcurrentFuture<T>) {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(0),
            loop_id,
            slot: Mutex::new(Slot {
                outcome: None,
                callbacks: Vec::new(),
                waker: None,
                task: None,
                waiters: 0,
            }),
            resolved: Condvar::new(),
        });
        let future = ConcurrentFuture {
            shared: shared.clone(),
        };
        let completer = Completer {
            shared,
            on_drop: Some(on_drop),
        };
        (completer, future)
    }

    /// Resolves the future with `outcome`; `false` (and `outcome` is dropped here) if it was
    /// already resolved, e.g. cancelled.
    pub fn complete(mut self, outcome: Result<T, BridgeError>) -> bool {
        self.on_drop = None;
        resolve(&self.shared, outcome).is_ok()
    }

    /// Whether the future is already resolved (then the work need not run at all).
    pub fn is_done(&self) -> bool {
        self.shared.is_done()
    }

    /// Marks the work started, after which `cancel()` no longer succeeds; `false` if the future
    /// was already resolved (cancelled): do not run the work then.
    pub(crate) fn start_running(&self) -> bool {
        let _slot = lock(&self.shared.slot);
        if self.shared.has_locked(DONE) {
            return false;
        }
        self.shared.state.fetch_or(RUNNING, Ordering::Relaxed);
        true
    }

    /// A link through which the task running the work is recorded, for `cancel()`.
    pub(crate) fn task_link(&self) -> TaskLink<T> {
        TaskLink {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(error) = self.on_drop.take() {
            let _ = resolve(&self.shared, Err(error));
        }
    }
}

impl<T> fmt::Debug for Completer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer")
            .field("done", &self.is_done())
            .finish()
    }
}

/// Records the task running a coroutine in its future, so `cancel()` can reach it.
pub(crate) struct TaskLink<T> {
    shared: Arc<Shared<T>>,
}

impl<T> TaskLink<T> {
    /// Records `task`; if the future was resolved meanwhile (cancelled before the task existed),
    /// nobody wants the task's outcome: cancel it now.
    pub(crate) fn set_task(self, task: TaskRef) {
        let late = {
            let mut slot = lock(&self.shared.slot);
            if self.shared.has_locked(DONE) {
                Some(task)
            } else {
                slot.task = Some(task);
                None
            }
        };
        if let Some(task) = late {
            task.cancel();
        }
    }
}
