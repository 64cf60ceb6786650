//! The remote inbox: the only way into a loop from another thread.
//!
//! # Protocol
//!
//! Producers (any thread) push [`RemoteItem`]s; the loop's own thread drains them into its ready
//! queue at the start of every iteration and after every wait.
//!
//! **No lost wake-up.** Before blocking, the loop stores `parked = true`, issues a SeqCst fence,
//! then checks the queue; a producer pushes, issues a SeqCst fence, then reads `parked`. The two
//! fences order the store-then-load on each side (Dekker), so either the loop sees the item and
//! does not block, or the producer sees `parked` and notifies. Only the producer whose swap moves
//! `parked` from true to false notifies, so a burst of submissions to a busy or parked loop costs
//! at most one wake-up syscall; [`Remote::wakeups`] counts them.
//!
//! **Submit vs close.** `state` holds a CLOSED bit and a count of submitters in flight. A
//! submitter increments the count, checks CLOSED (set: decrement, hand the closure back), pushes,
//! decrements. `close` sets CLOSED, then waits until the count is zero: after that no closure can
//! be accepted, and every accepted one is in the queue, where `close` finds it. So each closure
//! either comes back to its producer or is drained by the loop, never both, never neither.
//!
//! Task wake-ups ([`RemoteItem::Task`]) are still accepted after CLOSED, because `close` itself
//! wakes pending tasks to drop them on the loop thread; once `close` has drained everything it
//! sets FINAL, after which a stray task wake-up is leaked rather than dropped on a foreign thread
//! (dropping a thread-local task elsewhere would abort the process).

use std::collections::HashMap;
#[cfg(loom)]
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::error::{LoopError, Rejected};
use crate::inline_call::InlineCall;
use crate::parker::Parker;
#[cfg(loom)]
use crate::sync::Mutex;
use crate::sync::{fence, spin_wait, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::task::TaskRunnable;

/// Producers cannot submit callbacks any more.
const CLOSED: usize = 1 << 0;
/// The loop is gone: nothing pushed now would ever be drained.
const FINAL: usize = 1 << 1;
/// One submitter in flight (the count lives above the flag bits).
const SUBMITTER: usize = 1 << 2;
/// How long a loop about to park watches its inbox first: about one cross-thread round trip of a
/// busy producer, far below a syscall pair plus a context switch (several microseconds each).
#[cfg(not(loom))]
const PARK_SPIN: Duration = Duration::from_micros(20);
/// Inbox checks between two looks at the clock while spinning.
#[cfg(not(loom))]
const PARK_SPIN_BATCH: u32 = 32;

/// Every live loop's `Remote`, by loop id: how a task's waker finds its loop's inbox from another
/// thread without each task holding a reference count on it (one fewer atomic pair per spawn).
/// Only the cross-thread wake path reads it; loops register in `EventLoop::new` and leave when
/// their `Remote` is dropped.
static DIRECTORY: std::sync::RwLock<Option<HashMap<u64, Weak<Remote>>>> =
    std::sync::RwLock::new(None);

/// Registers a new loop's `Remote`.
pub(crate) fn register(remote: &Arc<Remote>) {
    let mut dir = DIRECTORY.write().unwrap_or_else(|e| e.into_inner());
    dir.get_or_insert_with(HashMap::new)
        .insert(remote.loop_id, Arc::downgrade(remote));
}

/// The `Remote` of loop `loop_id`, if it still exists.
pub(crate) fn lookup(loop_id: u64) -> Option<Arc<Remote>> {
    let dir = DIRECTORY.read().unwrap_or_else(|e| e.into_inner());
    dir.as_ref()?.get(&loop_id)?.upgrade()
}

/// What crosses into a loop from another thread.
pub(crate) enum RemoteItem {
    /// A `call_soon_threadsafe` callback, inline when small (see `InlineCall`).
    Call(InlineCall),
    /// A task woken from another thread (or while its loop was not running).
    Task(TaskRunnable),
}

/// The thread-safe side of one [`EventLoop`](crate::EventLoop): its inbox, its wake-up and the
/// few flags other threads may read. Get it with [`EventLoop::remote`](crate::EventLoop::remote).
///
/// `Remote` is the low-level building block under `spindle-bridge`'s `LoopHandle`: prefer that.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let remote = lp.remote();
/// let ran = Arc::new(AtomicBool::new(false));
/// let r = ran.clone();
/// std::thread::spawn(move || {
///     remote.submit(move || r.store(true, Ordering::SeqCst)).unwrap();
///     remote.stop();
/// })
/// .join()
/// .unwrap();
/// lp.run_forever().unwrap();
/// assert!(ran.load(Ordering::SeqCst));
/// ```
pub struct Remote {
    queue: Inbox,
    parker: Parker,
    parked: AtomicBool,
    /// A pending `wake()`: the next `park` returns at once (tokio's unpark token).
    woken: AtomicBool,
    running: AtomicBool,
    wakeups: AtomicU64,
    /// CLOSED, FINAL and the submitter count. Every submission writes it twice while the loop
    /// keeps reading the fields above (its channel end, `woken`): on a shared cache line each
    /// of those writes was a miss (measured: the two RMWs were three quarters of a producer's
    /// own time in `call_soon_threadsafe`), so it has a line of its own.
    state: CacheLine<AtomicUsize>,
    loop_id: u64,
}

/// A value alone on its cache line (128 bytes: adjacent-line prefetch pairs 64-byte lines).
#[repr(align(128))]
struct CacheLine<T>(T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl Remote {
    pub(crate) fn new(loop_id: u64) -> std::io::Result<Self> {
        Ok(Remote {
            queue: Inbox::new(),
            parker: Parker::new()?,
            parked: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            running: AtomicBool::new(false),
            wakeups: AtomicU64::new(0),
            state: CacheLine(AtomicUsize::new(0)),
            loop_id,
        })
    }

    /// The id of the loop this inbox feeds (the same as [`EventLoop::id`](crate::EventLoop::id)).
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert_eq!(lp.remote().loop_id(), lp.id());
    /// ```
    pub fn loop_id(&self) -> u64 {
        self.loop_id
    }

    /// Schedules `f` to run on the loop's thread, after everything already in its ready queue
    /// (asyncio's `call_soon_threadsafe`). On a closed loop, `f` comes back in the error.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let remote = lp.remote();
    /// lp.close().unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let f = remote.submit(move || tx.send(5).unwrap()).unwrap_err().into_inner();
    /// f(); // it came back: run it here instead
    /// assert_eq!(rx.recv().unwrap(), 5);
    /// ```
    pub fn submit<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), Rejected<F>> {
        self.submit_value(f, |f: F| f())
    }

    /// Like [`submit`](Self::submit), for work in two parts: `value` is consumed by `run` on the
    /// loop's thread, and on a closed loop `value` comes back in the error (`run` is dropped).
    /// This is how a submitter gets its own data back out of a refused callback, which a
    /// closure would keep captured.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let remote = lp.remote();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// remote.submit_value(5, move |n| tx.send(n * 2).unwrap()).unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(rx.recv().unwrap(), 10);
    ///
    /// lp.close().unwrap();
    /// let refused = remote.submit_value(String::from("mine"), drop).unwrap_err();
    /// assert_eq!(refused.into_inner(), "mine");
    /// ```
    pub fn submit_value<T, R>(&self, value: T, run: R) -> Result<(), Rejected<T>>
    where
        T: Send + 'static,
        R: FnOnce(T) + Send + 'static,
    {
        self.accept((value, run), |(value, run)| {
            RemoteItem::Call(InlineCall::new(move || run(value)))
        })
        .map_err(|(value, _run)| Rejected::new(value, LoopError::Closed))
    }

    /// The submit protocol (see the module docs): `value` is queued, or comes back if the
    /// loop is closed.
    fn accept<T>(&self, value: T, wrap: impl FnOnce(T) -> RemoteItem) -> Result<(), T> {
        // Acquire pairs with the AcqRel fetch_or in `close`: if CLOSED is not yet visible, the
        // closer will wait for this submitter's decrement before draining.
        let prev = self.state.fetch_add(SUBMITTER, Ordering::Acquire);
        if prev & CLOSED != 0 {
            self.state.fetch_sub(SUBMITTER, Ordering::Release);
            return Err(value);
        }
        self.queue.push(wrap(value));
        // Release pairs with the Acquire load in `close`'s wait: the push above is visible to
        // the closer once it sees the count drop.
        self.state.fetch_sub(SUBMITTER, Ordering::Release);
        self.notify_if_parked();
        Ok(())
    }

    /// Asks the loop to stop after its current iteration, from any thread (asyncio's
    /// `loop.call_soon_threadsafe(loop.stop)`). Returns `false` if the loop is closed.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let remote = lp.remote();
    /// std::thread::spawn(move || assert!(remote.stop())).join().unwrap();
    /// lp.run_forever().unwrap(); // returns: the stop was waiting in the inbox
    /// ```
    pub fn stop(&self) -> bool {
        let loop_id = self.loop_id;
        self.submit(move || crate::context::stop_running(loop_id))
            .is_ok()
    }

    /// Whether the loop is inside `run_forever` / `run_until_complete` right now.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(!lp.remote().is_running());
    /// ```
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Whether the loop was closed (it accepts no more callbacks).
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let remote = lp.remote();
    /// lp.close().unwrap();
    /// assert!(remote.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// How many wake-up syscalls producers have issued to this loop so far.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let remote = lp.remote();
    /// for _ in 0..100 {
    ///     remote.submit(|| ()).unwrap();
    /// }
    /// // The loop never parked, so nobody had to wake it.
    /// assert_eq!(remote.wakeups(), 0);
    /// ```
    pub fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    /// Wakes the loop if it is parked, or makes its next park return at once: for schedulers
    /// that put work where the loop will look after waking (a worker's deque). Costs a syscall
    /// only if the loop is parked.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.remote().wake();
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// ```
    pub fn wake(&self) {
        self.woken.store(true, Ordering::Relaxed);
        self.notify_if_parked();
    }

    /// Routes a task wake-up into loop `loop_id` from a thread where it is not running. Never
    /// drops the runnable off the loop's thread: if the loop is gone, the task is leaked.
    pub(crate) fn push_task_to(loop_id: u64, runnable: TaskRunnable) {
        match lookup(loop_id) {
            Some(remote) => remote.push_task(runnable),
            None => std::mem::forget(runnable),
        }
    }

    /// Routes a task wake-up into the loop. Never drops the runnable off the loop thread.
    pub(crate) fn push_task(&self, runnable: TaskRunnable) {
        if self.state.load(Ordering::Acquire) & FINAL != 0 {
            // The loop is gone and its thread may be too: leaking one task is the only safe
            // choice (see the module docs).
            std::mem::forget(runnable);
            return;
        }
        self.queue.push(RemoteItem::Task(runnable));
        self.notify_if_parked();
    }

    fn notify_if_parked(&self) {
        // Pairs with the fence in `park`: see the module docs.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::AcqRel) {
            self.wakeups.fetch_add(1, Ordering::Relaxed);
            self.parker.notify();
        }
    }

    /// Loop thread: blocks until a producer pushes, a notify arrives, or the timeout passes.
    pub(crate) fn park(&self, events: &mut polling::Events, timeout: Option<Duration>) {
        if self.spin_for_work(timeout) {
            return;
        }
        self.parked.store(true, Ordering::Relaxed);
        // Pairs with the fence in `notify_if_parked`.
        fence(Ordering::SeqCst);
        if !self.queue.is_empty() || self.woken.swap(false, Ordering::Relaxed) {
            self.parked.store(false, Ordering::Relaxed);
            return;
        }
        self.parker.wait(events, timeout);
        self.parked.store(false, Ordering::Relaxed);
        self.woken.store(false, Ordering::Relaxed);
    }

    /// Loop thread, before parking: watch the inbox for a short while. A producer in the middle
    /// of a burst (or a round trip's next request) is then picked up without a park/notify pair
    /// of syscalls. Bounded by [`PARK_SPIN`], and skipped when the wait would be shorter, so an
    /// idle loop spins once for at most that long and then sleeps. Returns `true` if work came.
    #[cfg(not(loom))]
    fn spin_for_work(&self, timeout: Option<Duration>) -> bool {
        if timeout.is_some_and(|t| t <= PARK_SPIN) {
            return false;
        }
        let deadline = std::time::Instant::now() + PARK_SPIN;
        loop {
            for _ in 0..PARK_SPIN_BATCH {
                if !self.queue.is_empty() || self.woken.load(Ordering::Relaxed) {
                    return true;
                }
                std::hint::spin_loop();
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// Under loom, spinning adds nothing but states to explore.
    #[cfg(loom)]
    fn spin_for_work(&self, _timeout: Option<Duration>) -> bool {
        false
    }

    /// Loop thread: takes the next item.
    pub(crate) fn pop(&self) -> Option<RemoteItem> {
        self.queue.pop()
    }

    /// Loop thread: how many items wait (a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }

    /// Loop thread: refuse new callbacks and wait until no submitter is mid-push.
    pub(crate) fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        // Pairs with the Release decrement in `submit`.
        while self.state.load(Ordering::Acquire) >= SUBMITTER {
            spin_wait();
        }
    }

    /// Loop thread: the loop has drained everything for the last time.
    pub(crate) fn finalize(&self) {
        self.state.fetch_or(FINAL, Ordering::AcqRel);
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let mut dir = DIRECTORY.write().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = dir.as_mut() {
            dir.remove(&self.loop_id);
        }
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("loop_id", &self.loop_id)
            .field("running", &self.is_running())
            .field("closed", &self.is_closed())
            .field("wakeups", &self.wakeups())
            .finish()
    }
}

/// The multi-producer, single-consumer queue under the inbox.
#[cfg(not(loom))]
struct Inbox {
    tx: crossbeam_channel::Sender<RemoteItem>,
    rx: crossbeam_channel::Receiver<RemoteItem>,
}

#[cfg(not(loom))]
impl Inbox {
    fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Inbox { tx, rx }
    }

    fn push(&self, item: RemoteItem) {
        // Both ends live in `self`, so the channel cannot be disconnected.
        let _ = self.tx.send(item);
    }

    fn pop(&self) -> Option<RemoteItem> {
        self.rx.try_recv().ok()
    }

    fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    fn len(&self) -> usize {
        self.rx.len()
    }
}

#[cfg(loom)]
struct Inbox {
    queue: Mutex<VecDeque<RemoteItem>>,
}

#[cfg(loom)]
impl Inbox {
    fn new() -> Self {
        Inbox {
            queue: Mutex::new(VecDeque::new()),
        }
    }

    fn push(&self, item: RemoteItem) {
        self.queue.lock().unwrap().push_back(item);
    }

    fn pop(&self) -> Option<RemoteItem> {
        self.queue.lock().unwrap().pop_front()
    }

    fn is_empty(&self) -> bool {
        self.queue.lock().unwrap().is_empty()
    }

    fn len(&self) -> usize {
        self.queue.lock().unwrap().len()
    }
}
