//! The remote inbox: the only way into a loop from another thread.
//!
//! # Protocol
//!
//! Producers (any thread) push [`RemoteItem`]s; the loop's own thread drains them into its ready
//! queue at the start of every iteration and after every wait.
//!
//! **No lost wake-up, and one locked instruction per submission.** The queue is our own
//! ([`crate::remote::inbox`]): its tail word carries `PARKED`, `CLOSED` and `FINAL` beside the tail
//! position, so the compare-and-swap that claims a producer's slot also reads whether the loop
//! is parked (and clears it: that producer, and only that one, wakes the loop, so a burst of
//! submissions costs at most one wake-up syscall; [`Remote::wakeups`] counts them) and whether
//! the loop is closed (then the producer claims nothing and takes its closure back). `close`
//! sets `CLOSED` with one `fetch_or`, and the loop then drains every slot claimed before it. So
//! each closure either comes back to its producer or is drained by the loop, never both, never
//! neither. The inbox's docs give the orderings.
//!
//! This replaced a crossbeam channel plus a submitter count and a Dekker fence pair: three more
//! locked instructions per submission, each issued after the slot write and so waiting for the
//! line the loop was reading (measured ~40 ns each).
//!
//! [`Remote::wake`] (a scheduler's nudge, not a queued item) sets `woken` and then looks for
//! `PARKED`; the loop sets `PARKED` and then looks at `woken`; a SeqCst fence on each side
//! makes sure one of them sees the other (Dekker).
//!
//! Task wake-ups ([`RemoteItem::Task`]) are still accepted after CLOSED, because `close` itself
//! wakes pending tasks to drop them on the loop thread; once `close` has drained everything it
//! sets FINAL, after which a stray task wake-up is leaked rather than dropped on a foreign thread
//! (dropping a thread-local task elsewhere would abort the process).

#[allow(unsafe_code)] // Inbox: a lock-free list of slots whose tail word carries the flags
pub(crate) mod inbox;
#[allow(unsafe_code)] // InlineCall: a small closure carried inline through the inbox
pub(crate) mod inline_call;
pub(crate) mod parker;
#[allow(unsafe_code)] // the poller's `add` states its fd contract as an unsafe fn
pub(crate) mod poller;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::error::{LoopError, Rejected};
use crate::remote::inbox::{Inbox, CLOSED, FINAL};
use crate::remote::inline_call::InlineCall;
use crate::remote::parker::Parker;
use crate::sync::{fence, AtomicBool, AtomicU64, Ordering};
use crate::task::TaskRunnable;

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
    queue: Inbox<RemoteItem>,
    parker: Parker,
    /// A pending `wake()`: the next `park` returns at once (tokio's unpark token).
    woken: AtomicBool,
    running: AtomicBool,
    wakeups: AtomicU64,
    loop_id: u64,
    /// Siblings this loop helps while it waits (`io::help`), once a runtime installs them.
    #[cfg(all(not(loom), target_os = "linux"))]
    helping: std::sync::OnceLock<crate::io::help::Helping>,
}

impl Remote {
    pub(crate) fn new(loop_id: u64) -> std::io::Result<Self> {
        Ok(Remote {
            queue: Inbox::new(),
            parker: Parker::new()?,
            woken: AtomicBool::new(false),
            running: AtomicBool::new(false),
            wakeups: AtomicU64::new(0),
            loop_id,
            #[cfg(all(not(loom), target_os = "linux"))]
            helping: std::sync::OnceLock::new(),
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
        let pushed = self.queue.push(
            (value, run),
            |(value, run)| RemoteItem::Call(InlineCall::new(move || run(value))),
            CLOSED,
        );
        match pushed {
            Ok(was_parked) => {
                self.wake_if(was_parked);
                Ok(())
            }
            Err((value, _run)) => Err(Rejected::new(value, LoopError::Closed)),
        }
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
        self.queue.flags() & CLOSED != 0
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
        // Pairs with the fence in `park`: see the module docs.
        fence(Ordering::SeqCst);
        self.wake_if(self.queue.clear_parked());
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
        // Accepted after CLOSED (`close` wakes pending tasks to drop them here), refused after
        // FINAL: the loop is gone and its thread may be too, so leaking the task is the only
        // safe choice (see the module docs).
        match self.queue.push(runnable, RemoteItem::Task, FINAL) {
            Ok(was_parked) => self.wake_if(was_parked),
            Err(runnable) => std::mem::forget(runnable),
        }
    }

    /// Issues the wake-up owed by whoever cleared `PARKED`.
    fn wake_if(&self, was_parked: bool) {
        if was_parked {
            self.wakeups.fetch_add(1, Ordering::Relaxed);
            self.parker.notify();
        }
    }

    /// Loop thread: uses up a pending [`wake`](Self::wake). Every early return of `park` on a
    /// wake goes through here: a wake left set would make every later park return at once (a
    /// busy loop). A load first, so the spin does not write the line on every look.
    fn take_wake(&self) -> bool {
        self.woken.load(Ordering::Relaxed) && self.woken.swap(false, Ordering::Relaxed)
    }

    /// Loop thread: blocks until a producer pushes, a notify arrives, or the timeout passes.
    ///
    /// `spin`: watch the inbox for a short while first (see `spin_for_work`). A loop with I/O
    /// registrations does not: an event that arrives during the spin would wait for it.
    pub(crate) fn park(&self, events: &mut poller::Events, timeout: Option<Duration>, spin: bool) {
        if spin && self.spin_for_work(timeout) {
            return;
        }
        if !self.queue.try_park() {
            return; // something is queued
        }
        // Pairs with the fence in `wake`.
        fence(Ordering::SeqCst);
        if self.take_wake() {
            // If a producer cleared PARKED meanwhile, its notify stays pending in the parker
            // and costs one spurious return from a later wait, which the loop tolerates.
            self.queue.clear_parked();
            return;
        }
        self.wait(events, timeout);
        self.queue.clear_parked();
        self.woken.store(false, Ordering::Relaxed);
    }

    /// The blocking wait of `park`: the poller's own, or the helping one once installed.
    fn wait(&self, events: &mut poller::Events, timeout: Option<Duration>) {
        #[cfg(all(not(loom), target_os = "linux"))]
        if let Some(helping) = self.helping.get() {
            return helping.wait(self.poller(), events, timeout);
        }
        self.parker.wait(events, timeout);
    }

    /// Loop thread, in an iteration that does not park: takes the events of a sibling whose
    /// poller has not been waited on for a while (`io::help`, "a stalled sibling").
    #[inline]
    pub(crate) fn help_stalled_siblings(&self) {
        #[cfg(all(not(loom), target_os = "linux"))]
        if let Some(helping) = self.helping.get() {
            helping.help_stalled();
        }
    }

    /// The helping installed by `help_io_of`, if any.
    #[cfg(all(test, not(loom), target_os = "linux"))]
    pub(crate) fn helping(&self) -> Option<&crate::io::help::Helping> {
        self.helping.get()
    }

    /// Installs the siblings this loop helps while it waits (`io::help`); once per loop.
    #[cfg(all(not(loom), target_os = "linux"))]
    pub(crate) fn help_io_of(&self, siblings: &[crate::io::IoShare]) -> std::io::Result<()> {
        let helping = crate::io::help::Helping::new(self.poller(), siblings)?;
        self.helping.set(helping).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "this loop already helps its siblings",
            )
        })
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
                if !self.queue.is_empty() {
                    return true;
                }
                if self.take_wake() {
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

    /// Loop thread: collects the I/O events ready now, without blocking and without the park
    /// protocol (nobody needs to wake a loop that does not sleep).
    #[cfg(not(loom))]
    pub(crate) fn poll_now(&self, events: &mut poller::Events) {
        self.parker.wait(events, Some(Duration::ZERO));
    }

    /// The loop's poller, where its I/O sources are registered.
    #[cfg(not(loom))]
    pub(crate) fn poller(&self) -> &poller::Poller {
        self.parker.poller()
    }

    /// Loop thread: takes the next item.
    pub(crate) fn pop(&self) -> Option<RemoteItem> {
        self.queue.pop()
    }

    /// Loop thread: whether nothing waits (a snapshot; a slot claimed but not yet written
    /// counts as waiting).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Loop thread: how many items wait (a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }

    /// Loop thread: refuse new callbacks. Those accepted before stay due: `pop` waits for
    /// any still being written.
    pub(crate) fn close(&self) {
        self.queue.close();
    }

    /// Loop thread: the loop has drained everything for the last time.
    pub(crate) fn finalize(&self) {
        self.queue.finalize();
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
