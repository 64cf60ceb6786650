//! [`EventLoop`]: one asyncio loop, owned by one thread.
//!
//! # One iteration (`run_once`, after asyncio's `_run_once`)
//!
//! 1. drain the remote inbox (threadsafe callbacks, cross-thread task wake-ups) into the ready
//!    queue (`call_soon` drains it too, first, so the two share one FIFO as in asyncio);
//! 2. choose the wait: none if anything is ready or a stop is pending; else until the earliest
//!    live timer (capped at [`MAX_WAIT`]); else until notified. Park in the poller only if the
//!    wait is not zero (a busy loop makes no syscall at all), then drain the inbox again;
//! 3. move due timers to the back of the ready queue (so `call_later(0, a); call_soon(b)` runs b,
//!    then a), rebuilding the heap first if cancelled entries dominate it;
//! 4. run exactly the items that were ready when the batch started; what they schedule waits for
//!    the next iteration. This gives asyncio's `stop()` semantics: the batch in which `stop()` is
//!    called finishes, then `run_forever` returns.
//!
//! Every callback and task step runs under `catch_unwind`: a panic is reported to the exception
//! handler and the loop goes on.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::callback::{new_callback, Callback};
use crate::context;
use crate::error::{LoopError, Rejected};
use crate::exception::{
    default_exception_handler, ExceptionContext, ExceptionHandler, ExceptionKind,
};
use crate::future::LoopFuture;
use crate::handle::{Handle, TimerHandle};
use crate::registry::TaskRegistry;
use crate::remote::inline_call::InlineCall;
use crate::remote::{Remote, RemoteItem};
use crate::task::{self, Task, TaskHeader, TaskRef, TaskRunnable};
use crate::timers::{Timers, WakeTimer};

/// The longest the loop blocks in one wait, even for a timer further away (asyncio's
/// `MAXIMUM_SELECT_TIMEOUT`): it keeps the poller's timeout argument in range on every platform.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// The default `slow_callback_duration` (asyncio's 100 ms).
pub const DEFAULT_SLOW_CALLBACK: Duration = Duration::from_millis(100);

/// `close()` keeps draining while destructors schedule more work, at most this many rounds
/// (a destructor that reschedules forever must not hang `close`).
const MAX_CLOSE_ROUNDS: usize = 64;

static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// The runtime's side of a worker's loop: lets a scheduler run its stealable tasks inside the
/// loop's iterations and park with its own idle protocol. Installed with
/// [`EventLoop::set_worker_hook`]; a plain loop has none.
///
/// Per iteration the loop asks [`has_stealable`](Self::has_stealable) when choosing its wait (a
/// visible task means no blocking), calls [`before_park`](Self::before_park) /
/// [`after_park`](Self::after_park) around a blocking wait, and calls
/// [`run_stealable`](Self::run_stealable) after its ready batch.
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use spindle_loop::{EventLoop, Park, WorkerHook};
///
/// struct CountIterations(Cell<u32>);
/// impl WorkerHook for CountIterations {
///     fn run_stealable(&self) -> usize { self.0.set(self.0.get() + 1); 0 }
///     fn has_stealable(&self) -> bool { false }
///     fn before_park(&self, _has_io: bool) -> Park { Park::Block { spin: false } }
///     fn after_park(&self) {}
/// }
/// let lp = EventLoop::new().unwrap();
/// let hook = Rc::new(CountIterations(Cell::new(0)));
/// lp.set_worker_hook(Some(hook.clone()));
/// lp.stop();
/// lp.run_forever().unwrap();
/// assert_eq!(hook.0.get(), 1);
/// ```
pub trait WorkerHook {
    /// Runs stealable tasks after the loop's ready batch, within the scheduler's budget;
    /// returns how many steps ran.
    fn run_stealable(&self) -> usize;
    /// Whether stealable work is visible (then the loop does not block this iteration).
    fn has_stealable(&self) -> bool;
    /// The loop is about to block; `has_io` says whether it watches I/O sources. Says whether
    /// to block after all, and whether to watch the inbox for a short while first.
    fn before_park(&self, has_io: bool) -> Park;
    /// The loop is back from blocking (or from deciding not to).
    fn after_park(&self);
    /// The loop starts (`true`) or has finished (`false`) handing its poller's events to their
    /// sources, which wakes the tasks waiting on them (a scheduler may treat the wake-ups of
    /// one poll as one burst). Only called for a poll that returned events.
    fn io_dispatch(&self, _dispatching: bool) {}
}

/// A [`WorkerHook`]'s answer to a loop about to block.
///
/// ```
/// use spindle_loop::Park;
///
/// // A scheduler that found work while searching: the loop must not block.
/// let advice = Park::Stay;
/// assert_ne!(advice, Park::Block { spin: true });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Park {
    /// Work appeared: do not block this iteration.
    Stay,
    /// Block. With `spin`, watch the inbox for a few microseconds first (a producer on another
    /// thread is caught without a park/wake pair of syscalls); without, block at once: on a
    /// machine shared with I/O, a spinning thread takes the core from the one that feeds it.
    Block {
        /// Watch the inbox briefly before blocking.
        spin: bool,
    },
}

/// One item of the ready queue.
///
/// Three words (a callback is a fat pointer, then the tag; checked by
/// `a_ready_item_is_three_words`): threadsafe callbacks are carried inline (see `InlineCall`),
/// too large for this queue, so they wait in `Inner::inbox_calls` and each is queued here as a
/// clone of the loop's `inbox_marker` callback, which runs the next of them. Both queues are
/// FIFO and one marker is queued per callback, so they pair up in order.
pub(crate) enum Ready {
    Callback(Callback),
    Task(TaskRunnable),
    /// A due `Send` sleep's timer, by its slot in the loop's `SleepSlab`: it runs in a
    /// callback's place, with no callback cell (see [`crate::timers`]).
    Wake(usize),
}

/// How many items ahead of the one about to run the batch loop asks the CPU to load (see
/// [`Ready::prefetch`]).
const PREFETCH_AHEAD: usize = 6;

/// The smallest batch the loop prefetches for: the memory of a smaller one is likely in cache
/// already (a few hundred tasks of a few lines each fit in L2), and there the prefetch only
/// costs its instructions (measured: ~2 ns a step, 6%, on 200 tasks yielding in turn).
const PREFETCH_MIN_BATCH: usize = 256;

impl Ready {
    /// Starts loading the memory this item's run will touch first: a task's cell, a sleep's
    /// timer, a callback's cell. A batch's items are often in an order unrelated to where
    /// their memory lies (tasks woken by timers due in deadline order, after spawning in
    /// another), and a batch of thousands leaves none of it in cache; loading a few items
    /// ahead overlaps those misses instead of taking them one after the other. (Measured on
    /// 100,000 shuffled sleeping tasks: see the README's timer section.)
    fn prefetch(&self, timers: &RefCell<Timers>) {
        match self {
            Ready::Callback(callback) => crate::prefetch::prefetch_around(callback.cell_address()),
            // The task's header sits at the start of its cell, the future right after.
            Ready::Task(runnable) => {
                crate::prefetch::prefetch_around((runnable.metadata() as *const TaskHeader).cast())
            }
            Ready::Wake(index) => {
                if let Ok(timers) = timers.try_borrow() {
                    timers.slab_ref().prefetch(*index);
                }
            }
        }
    }
}

/// How reports name a sleep's timer (the callback asyncio's `sleep` schedules).
const SLEEP_TIMER_NAME: &str = "spindle_loop::sleep::Sleep";

/// What `run_item` ran, for debug mode's slow-step report.
enum Ran {
    Callback(Callback),
    Task(Option<TaskRef>, &'static Location<'static>),
    /// A sleep's timer, made at that site.
    Wake(&'static Location<'static>),
}

/// Counters and sizes of one loop, for tests, metrics and tools.
///
/// ```
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// lp.call_soon(|| ()).unwrap();
/// assert_eq!(lp.stats().ready, 1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopStats {
    /// Items in the ready queue.
    pub ready: usize,
    /// Entries in the timer heap, cancelled ones included.
    pub timers: usize,
    /// Cancelled entries still in the timer heap (removed lazily).
    pub cancelled_timers: usize,
    /// Live tasks.
    pub tasks: usize,
    /// Callbacks run so far.
    pub callbacks_run: u64,
    /// Task steps (polls) run so far.
    pub task_steps: u64,
    /// Iterations run so far.
    pub iterations: u64,
    /// Wake-up syscalls other threads issued to this loop.
    pub wakeups: u64,
}

pub(crate) struct Inner {
    id: u64,
    me: Weak<Inner>,
    ready: RefCell<VecDeque<Ready>>,
    /// The batch being run: swapped with `ready` at the start of each batch, so the batch needs
    /// one borrow, and what it schedules lands in `ready` for the next iteration.
    batch: RefCell<VecDeque<Ready>>,
    /// Threadsafe callbacks drained from the inbox, one per `inbox_marker` in the ready queue.
    inbox_calls: RefCell<VecDeque<InlineCall>>,
    /// The callback queued in the ready queue for each threadsafe callback (see `Ready`).
    inbox_marker: Callback,
    timers: RefCell<Timers>,
    /// Every timer with a deadline up to this instant has fired (or was cancelled): the
    /// clock reading of the last due-timers pass whose batch has run all its items. A sleep
    /// polled on this loop with a deadline not later is over without reading its slot (see
    /// [`crate::timers`]).
    timers_fired_through: Cell<Option<Instant>>,
    pub(crate) remote: Arc<Remote>,
    running: Cell<bool>,
    stopping: Cell<bool>,
    closed: Cell<bool>,
    /// Live tasks that have been idle at least once (`Pending`): only those can be out of
    /// every queue, and so need a reference here to stay alive and reachable by `close()`.
    tasks: RefCell<TaskRegistry>,
    /// Live tasks that never returned `Pending`: their runnable is in the ready queue or they
    /// are running their first step. Registering them too would cost each spawn a registry
    /// insert and remove (measured: 8% of a spawn-and-finish).
    unstarted: Cell<usize>,
    handler: RefCell<Option<ExceptionHandler>>,
    debug: Cell<bool>,
    slow_callback: Cell<Duration>,
    pub(crate) events: RefCell<crate::remote::poller::Events>,
    callbacks_run: Cell<u64>,
    task_steps: Cell<u64>,
    iterations: Cell<u64>,
    close_hooks: RefCell<Vec<Box<dyn FnOnce()>>>,
    worker_hook: RefCell<Option<Rc<dyn WorkerHook>>>,
    /// The fds this loop's poller watches (`io`), shared with the sources registered here.
    #[cfg(not(loom))]
    pub(crate) reactor: Arc<crate::io::reactor::Reactor>,
    /// `add_reader` / `add_writer` callbacks, by fd.
    #[cfg(not(loom))]
    pub(crate) watches: RefCell<crate::io::watch::Watches>,
    /// `add_signal_handler` registrations, by signal.
    #[cfg(not(loom))]
    pub(crate) signals: RefCell<crate::io::signal::Signals>,
    /// Scratch buffers of `dispatch_io`, kept to spare an allocation per poll.
    #[cfg(not(loom))]
    pub(crate) io_scratch: RefCell<crate::io::reactor::Scratch>,
}

impl Inner {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    #[inline]
    pub(crate) fn weak(&self) -> Weak<Inner> {
        self.me.clone()
    }

    pub(crate) fn stop(&self) {
        self.stopping.set(true);
    }

    /// The ready queue (the I/O dispatch queues watch callbacks here).
    #[cfg(not(loom))]
    pub(crate) fn ready_queue(&self) -> &RefCell<VecDeque<Ready>> {
        &self.ready
    }

    pub(crate) fn push_ready_task(&self, runnable: TaskRunnable) {
        self.ready.borrow_mut().push_back(Ready::Task(runnable));
    }

    /// A local task was created; it stays unregistered until it first returns `Pending`.
    pub(crate) fn note_unstarted_task(&self) {
        self.unstarted.set(self.unstarted.get() + 1);
    }

    /// A local task returned `Pending` for the first time: the registry keeps it from now on.
    pub(crate) fn register_task(&self, task: TaskRef) {
        self.unstarted.set(self.unstarted.get().saturating_sub(1));
        self.tasks.borrow_mut().insert(task, |index| index);
    }

    /// A local task that never went idle completed: it is in no registry, only counted among
    /// the unstarted (`LocalOwner::unregister` tells the two cases apart).
    #[inline]
    pub(crate) fn note_unstarted_task_done(&self) {
        self.unstarted.set(self.unstarted.get().saturating_sub(1));
    }

    /// A local task that went idle completed: the registry's reference to it.
    pub(crate) fn unregister_task(&self, header: &TaskHeader) -> Option<TaskRef> {
        self.tasks.borrow_mut().remove(header.slot(), header)
    }

    /// Every live task: the registered ones, the unstarted ones waiting in the ready queue,
    /// and the current one if this is its first step.
    fn live_tasks(&self) -> Vec<TaskRef> {
        let mut live = self.tasks.borrow().refs();
        if self.unstarted.get() == 0 {
            return live;
        }
        let unstarted = |item: &Ready| match item {
            Ready::Task(runnable) if !runnable.metadata().is_registered() => {
                Some(TaskRef::new(runnable.waker(), runnable.metadata()))
            }
            _ => None,
        };
        // `batch` is free while an item runs (see `run_once`).
        if let Ok(batch) = self.batch.try_borrow() {
            live.extend(batch.iter().filter_map(unstarted));
        }
        live.extend(self.ready.borrow().iter().filter_map(unstarted));
        if let Some(current) = self.current_task_ref() {
            if !current.header().is_registered() && current.loop_id() == self.id {
                live.push(current);
            }
        }
        live
    }

    /// The task running on this loop right now (it is the running loop, and a task's step is
    /// under way).
    pub(crate) fn current_task_ref(&self) -> Option<TaskRef> {
        if !self.running.get() {
            return None;
        }
        task::current_task_ref()
    }

    pub(crate) fn timer_cancelled(&self) {
        self.timers.borrow_mut().note_cancelled();
    }

    /// Pushes a timer that wakes `waker` at `when` and that any thread may cancel (a `Send`
    /// sleep's; see [`crate::timers`]).
    pub(crate) fn push_wake_timer(
        &self,
        when: Instant,
        waker: &std::task::Waker,
        created_at: &'static Location<'static>,
    ) -> WakeTimer {
        let (timer, old) = self.timers.borrow_mut().push_wake(when, waker, created_at);
        // After the borrow: a waker's drop may run a task's destructor.
        drop(old);
        timer
    }

    pub(crate) fn call_soon_internal<F: FnOnce() + 'static>(
        &self,
        f: F,
        created_at: &'static Location<'static>,
    ) -> Result<Handle, Rejected<F>> {
        if self.closed.get() {
            return Err(Rejected::new(f, LoopError::Closed));
        }
        // One FIFO with `call_soon_threadsafe` (asyncio's single `_ready`): a threadsafe
        // submission that happened before this call runs before it, so what the inbox holds
        // moves to the ready queue first. Costs two loads of the inbox's indices when empty.
        if !self.remote.is_empty() {
            self.drain_remote();
        }
        let cell = new_callback(f, created_at);
        self.ready
            .borrow_mut()
            .push_back(Ready::Callback(cell.clone()));
        Ok(Handle { cell })
    }

    /// Sends `ctx` to the custom handler (falling back to the default one if it panics) or to
    /// the default handler.
    pub(crate) fn report(&self, ctx: ExceptionContext) {
        let handler = self.handler.borrow().clone();
        let me = self.me.upgrade();
        match (handler, me) {
            (Some(handler), Some(me)) => {
                let lp = EventLoop { inner: me };
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| handler(&lp, &ctx))) {
                    default_exception_handler(&ctx);
                    let mut failure = ExceptionContext::new(
                        ExceptionKind::HandlerPanicked,
                        "Unhandled error in exception handler",
                    );
                    failure.panic = Some(task::panic_message(&*payload).into());
                    default_exception_handler(&failure);
                }
            }
            _ => default_exception_handler(&ctx),
        }
    }

    fn drain_remote(&self) {
        // Bounded by what is there now, so producers faster than the loop cannot keep it here.
        let mut budget = self.remote.len();
        if budget == 0 {
            return;
        }
        let mut ready = self.ready.borrow_mut();
        let mut calls = self.inbox_calls.borrow_mut();
        while budget > 0 {
            budget -= 1;
            let Some(item) = self.remote.pop() else { break };
            ready.push_back(self.enqueue(item, &mut calls));
        }
    }

    /// The ready-queue item for one inbox item (a threadsafe callback waits in `calls`).
    fn enqueue(&self, item: RemoteItem, calls: &mut VecDeque<InlineCall>) -> Ready {
        match item {
            RemoteItem::Call(call) => {
                calls.push_back(call);
                Ready::Callback(self.inbox_marker.clone())
            }
            RemoteItem::Task(runnable) => Ready::Task(runnable),
        }
    }

    /// Runs the threadsafe callback the `inbox_marker` just reached stands for.
    pub(crate) fn run_next_inbox_call(&self) {
        let call = self.inbox_calls.borrow_mut().pop_front();
        if let Some(call) = call {
            self.run_remote(|| call.call());
        }
    }

    fn run_once(&self) {
        self.iterations.set(self.iterations.get() + 1);
        self.timers.borrow_mut().maybe_rebuild();
        self.drain_remote();
        let hook = self.worker_hook.borrow().clone();
        let has_io = self.has_io();
        let timeout = if !self.ready.borrow().is_empty()
            || self.stopping.get()
            || hook.as_ref().is_some_and(|h| h.has_stealable())
        {
            Some(Duration::ZERO)
        } else {
            self.timers.borrow_mut().next_deadline().map(|deadline| {
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(MAX_WAIT)
            })
        };
        if timeout != Some(Duration::ZERO) {
            let _span = tracing::trace_span!("spindle.park", ?timeout).entered();
            let park = match &hook {
                Some(hook) => hook.before_park(has_io),
                None => Park::Block { spin: !has_io },
            };
            if let Park::Block { spin } = park {
                self.remote
                    .park(&mut self.events.borrow_mut(), timeout, spin);
            }
            if let Some(hook) = &hook {
                hook.after_park();
            }
            self.drain_remote();
        } else {
            if has_io {
                self.poll_io_now();
            }
            // Busy: a sibling that stopped polling (descheduled, or in a long step) still gets
            // its sockets' events taken (`io::help`).
            self.remote.help_stalled_siblings();
        }
        // I/O events before due timers (asyncio's order).
        self.dispatch_io_events(hook.as_deref());
        let timers_now = self.queue_due_timers();
        self.run_batch();
        if timers_now.is_some() {
            self.timers_fired_through.set(timers_now);
        }
        if let Some(hook) = hook {
            hook.run_stealable();
        }
    }

    /// Hands the last wait's I/O events to their sources and watches; a worker's hook is told
    /// of the burst (see [`WorkerHook::io_dispatch`]).
    fn dispatch_io_events(&self, hook: Option<&dyn WorkerHook>) {
        match hook {
            Some(hook) if self.has_io_events() => {
                hook.io_dispatch(true);
                self.dispatch_io();
                hook.io_dispatch(false);
            }
            _ => self.dispatch_io(),
        }
    }

    /// Moves every due timer to the ready queue, earliest first; returns the clock reading
    /// they were due at (none if there were no timers).
    fn queue_due_timers(&self) -> Option<Instant> {
        let mut timers = self.timers.borrow_mut();
        if timers.is_empty() {
            return None;
        }
        let now = Instant::now();
        let mut ready = self.ready.borrow_mut();
        while let Some(item) = timers.pop_due(now) {
            ready.push_back(item);
        }
        Some(now)
    }

    /// Whether a sleep's timer on this loop with this deadline has fired for sure: every
    /// timer due at the last due-timers pass was run in that iteration's batch, which is
    /// over (see `timers_fired_through`).
    pub(crate) fn timer_fired_by(&self, deadline: Instant) -> bool {
        self.timers_fired_through
            .get()
            .is_some_and(|through| deadline <= through)
    }

    /// Runs the items ready at the start of this iteration (what they schedule waits for the
    /// next one, asyncio's rule).
    fn run_batch(&self) {
        let prefetch = {
            let Ok(mut batch) = self.batch.try_borrow_mut() else {
                // Unreachable: run_once does not nest (run_forever refuses to), but never panic.
                return;
            };
            std::mem::swap(&mut *batch, &mut *self.ready.borrow_mut());
            batch.len() >= PREFETCH_MIN_BATCH
        };
        // Items run with no borrow of `ready` or `batch` held: they may schedule more, and
        // `all_tasks()` looks for unstarted tasks in both.
        loop {
            let item = match self.batch.try_borrow_mut() {
                Ok(mut batch) => {
                    if prefetch {
                        self.prefetch_ahead(&batch);
                    }
                    batch.pop_front()
                }
                Err(_) => None,
            };
            let Some(item) = item else { break };
            self.run_item(item);
        }
    }

    /// Starts loading the memory of the items a few places ahead in `batch` (see
    /// [`Ready::prefetch`]).
    fn prefetch_ahead(&self, batch: &VecDeque<Ready>) {
        if let Some(ahead) = batch.get(PREFETCH_AHEAD) {
            ahead.prefetch(&self.timers);
        }
        // Half as far ahead, what the first prefetch brought in points further: a task's
        // registry slot (a completing task empties it), the task a sleep's timer wakes.
        match batch.get(PREFETCH_AHEAD / 2) {
            Some(Ready::Task(runnable)) => {
                let header = runnable.metadata();
                if header.is_registered() {
                    if let Ok(tasks) = self.tasks.try_borrow() {
                        tasks.prefetch(header.slot());
                    }
                }
            }
            Some(Ready::Wake(index)) => {
                if let Ok(timers) = self.timers.try_borrow() {
                    timers.slab_ref().prefetch_waker(*index);
                }
            }
            _ => {}
        }
    }

    fn run_item(&self, item: Ready) {
        // A task step outside debug mode needs none of the bookkeeping below (the clock, what
        // ran): the most common item of a spawn-heavy loop, taken first.
        let item = match item {
            Ready::Task(runnable) if !self.debug.get() => return self.step_task(runnable),
            item => item,
        };
        let started = self.debug.get().then(Instant::now);
        // What debug mode's slow-step report needs; its name and site are looked up only then.
        let ran = match item {
            Ready::Callback(callback) => {
                if callback.is_cancelled() {
                    return;
                }
                self.callbacks_run.set(self.callbacks_run.get() + 1);
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback.run())) {
                    self.report_callback_panic(payload, callback.name(), callback.created_at());
                }
                Ran::Callback(callback)
            }
            Ready::Wake(index) => {
                // A cancelled sleep's slot only leaves the queue (see `SleepSlab::fire_due`).
                let Some(waker) = self.timers.borrow_mut().slab().fire_due(index) else {
                    return;
                };
                // Woken with no borrow held: the waker may be any executor's.
                let woken = waker.map(|waker| catch_unwind(AssertUnwindSafe(|| waker.wake())));
                let panicked = matches!(woken, Some(Err(_)));
                let mut timers = self.timers.borrow_mut();
                // The site only for a report: read, it would be one more cache line per fire.
                let site =
                    (started.is_some() || panicked).then(|| timers.slab_ref().created_at(index));
                // Freed after the wake-up, so that the site is still this sleep's.
                timers.slab().free_fired(index);
                drop(timers);
                self.callbacks_run.set(self.callbacks_run.get() + 1);
                let Some(site) = site else { return };
                if let Some(Err(payload)) = woken {
                    self.report_callback_panic(payload, SLEEP_TIMER_NAME, site);
                }
                Ran::Wake(site)
            }
            Ready::Task(runnable) => {
                let header = runnable.metadata();
                // Only debug mode's slow-step report needs the task afterwards.
                let task = started.map(|_| TaskRef::new(runnable.waker(), header));
                let created_at = header.created_at();
                self.step_task(runnable);
                Ran::Task(task, created_at)
            }
        };
        if let Some(started) = started {
            self.report_if_slow(started.elapsed(), ran);
        }
    }

    /// Runs one step of a local task, inside its tracing span.
    #[inline]
    fn step_task(&self, runnable: TaskRunnable) {
        self.task_steps.set(self.task_steps.get() + 1);
        let next = task::in_step_span(runnable.metadata().id(), || {
            // Panics inside the task's future are caught by the task itself; this one only
            // guards the loop against a panic in the task cell's own machinery.
            catch_unwind(AssertUnwindSafe(|| runnable.run_handing_back()))
        });
        // Woken during its step (a yield): its next step is ours to queue, as `LocalSchedule`
        // would (every task in the ready queue is this loop's), with no thread-local look-up.
        if let Ok(Some(next)) = next {
            self.push_ready_task(next);
        }
    }

    /// Reports a panic out of a callback (or a sleep timer's waker) to the exception handler.
    fn report_callback_panic(
        &self,
        payload: Box<dyn std::any::Any + Send>,
        name: &'static str,
        created_at: &'static Location<'static>,
    ) {
        let mut ctx = ExceptionContext::new(
            ExceptionKind::CallbackPanicked,
            format!("Exception in callback {name}"),
        );
        ctx.panic = Some(task::panic_message(&*payload).into());
        ctx.callback = Some(name);
        ctx.created_at = Some(created_at);
        drop(payload);
        self.report(ctx);
    }

    /// Debug mode: report a callback or task step that ran longer than the threshold.
    fn report_if_slow(&self, elapsed: Duration, ran: Ran) {
        if elapsed < self.slow_callback.get() {
            return;
        }
        let (what, callback, task, created_at) = match ran {
            // A threadsafe callback's stand-in (see `Ready`): where the loop was made is no help.
            Ran::Callback(cb) if cb.is_threadsafe() => (
                "threadsafe callback".to_string(),
                Some("threadsafe callback"),
                None,
                None,
            ),
            Ran::Callback(cb) => (
                format!("callback {}", cb.name()),
                Some(cb.name()),
                None,
                Some(cb.created_at()),
            ),
            Ran::Wake(created_at) => (
                format!("callback {SLEEP_TIMER_NAME}"),
                Some(SLEEP_TIMER_NAME),
                None,
                Some(created_at),
            ),
            Ran::Task(task, created_at) => (
                format!(
                    "task {}",
                    task.as_ref().map_or_else(|| "?".to_string(), |t| t.name())
                ),
                None,
                task,
                Some(created_at),
            ),
        };
        let mut ctx = ExceptionContext::new(
            ExceptionKind::SlowCallback,
            format!("Executing {what} took {:.3} seconds", elapsed.as_secs_f64()),
        );
        ctx.callback = callback;
        ctx.task = task;
        ctx.created_at = created_at;
        ctx.elapsed = Some(elapsed);
        self.report(ctx);
    }

    /// Drops everything still scheduled, on this thread. See [`EventLoop::close`].
    fn close_now(&self) {
        self.closed.set(true);
        self.remote.close();
        // First: the poller lets go of every fd, and tasks waiting on sources get an error.
        self.close_io();
        for _ in 0..MAX_CLOSE_ROUNDS {
            // Wake every live task so that its runnable lands in a queue, where it is dropped.
            let live = self.tasks.borrow().refs();
            for task in &live {
                task.wake();
            }
            drop(live);
            let mut dropped_any = false;
            loop {
                let item = self.ready.borrow_mut().pop_front();
                let Some(item) = item else { break };
                dropped_any = true;
                self.discard(item);
            }
            while let Some(item) = self.remote.pop() {
                dropped_any = true;
                let item = self.enqueue(item, &mut self.inbox_calls.borrow_mut());
                self.discard(item);
            }
            let timers = self.timers.borrow_mut().drain();
            dropped_any |= !timers.is_empty();
            for item in timers {
                self.discard(item);
            }
            if !dropped_any && self.tasks.borrow().is_empty() {
                break;
            }
        }
        self.remote.finalize();
        let hooks = std::mem::take(&mut *self.close_hooks.borrow_mut());
        for hook in hooks {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(hook)) {
                let mut ctx =
                    ExceptionContext::new(ExceptionKind::CallbackPanicked, "a close hook panicked");
                ctx.panic = Some(task::panic_message(&*payload).into());
                self.report(ctx);
            }
        }
    }

    /// `close()`'s treatment of one scheduled item: local callbacks and tasks are dropped
    /// (asyncio: "pending callbacks will be lost"); threadsafe callbacks that the inbox already
    /// accepted are run, because their producers were told they would be (see `Remote`).
    fn discard(&self, item: Ready) {
        match item {
            Ready::Callback(callback) => self.drop_reporting("a callback", || callback.clear()),
            // The task reports a panic in its future's destructor itself (see `TaskFuture`);
            // this guards `close()` against one from the cell's own machinery.
            Ready::Task(runnable) => {
                self.drop_reporting("a task", || task::discard_runnable(runnable))
            }
            Ready::Wake(index) => {
                let waker = self.timers.borrow_mut().slab().discard(index);
                self.drop_reporting("a sleep's timer", || drop(waker));
            }
        }
    }

    /// Runs a destructor `close()` triggers (`drop`), catching a panic in it and reporting it
    /// to the exception handler: `close()` goes on and drops everything else whatever one
    /// destructor does.
    fn drop_reporting(&self, what: &str, drop: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(drop)) {
            let mut ctx = ExceptionContext::new(
                ExceptionKind::CallbackPanicked,
                format!("{what}'s destructor panicked during close()"),
            );
            ctx.panic = Some(task::panic_message(&*payload).into());
            self.report(ctx);
        }
    }

    /// Runs a threadsafe callback; a panic goes to the exception handler.
    fn run_remote(&self, f: impl FnOnce()) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            let mut ctx = ExceptionContext::new(
                ExceptionKind::CallbackPanicked,
                "Exception in threadsafe callback",
            );
            ctx.panic = Some(task::panic_message(&*payload).into());
            ctx.callback = Some("threadsafe callback");
            drop(payload);
            self.report(ctx);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.get() {
            self.close_now();
        }
    }
}

/// An asyncio event loop, owned by the thread that created it (`!Send`).
///
/// Cloning is cheap and gives another handle to the same loop (it is reference-counted), so a
/// task can keep the loop it runs on. Other threads get in through [`EventLoop::remote`] (or
/// `spindle-bridge`'s `LoopHandle`).
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::EventLoop;
///
/// let lp = EventLoop::new().unwrap();
/// let stopper = lp.clone();
/// lp.call_soon(|| println!("first")).unwrap();
/// lp.call_later(Duration::from_millis(5), move || stopper.stop()).unwrap();
/// lp.run_forever().unwrap();
/// lp.close().unwrap();
/// ```
#[derive(Clone)]
pub struct EventLoop {
    pub(crate) inner: Rc<Inner>,
}

impl EventLoop {
    /// Creates a loop. Debug mode starts on if the environment has `SPINDLE_DEBUG=1`.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(!lp.is_running());
    /// ```
    pub fn new() -> Result<EventLoop, LoopError> {
        let id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        let remote = Arc::new(Remote::new(id).map_err(|e| LoopError::Poller(e.to_string()))?);
        crate::remote::register(&remote);
        let debug = std::env::var_os("SPINDLE_DEBUG").is_some_and(|v| v == "1");
        let inner = Rc::new_cyclic(|me| Inner {
            id,
            me: me.clone(),
            ready: RefCell::new(VecDeque::new()),
            batch: RefCell::new(VecDeque::new()),
            inbox_calls: RefCell::new(VecDeque::new()),
            inbox_marker: crate::callback::new_inbox_marker(me.clone()),
            timers: RefCell::new(Timers::new(id)),
            timers_fired_through: Cell::new(None),
            running: Cell::new(false),
            stopping: Cell::new(false),
            closed: Cell::new(false),
            tasks: RefCell::new(TaskRegistry::default()),
            unstarted: Cell::new(0),
            handler: RefCell::new(None),
            debug: Cell::new(debug),
            slow_callback: Cell::new(DEFAULT_SLOW_CALLBACK),
            events: RefCell::new(crate::remote::poller::Events::new()),
            callbacks_run: Cell::new(0),
            task_steps: Cell::new(0),
            iterations: Cell::new(0),
            close_hooks: RefCell::new(Vec::new()),
            worker_hook: RefCell::new(None),
            #[cfg(not(loom))]
            reactor: Arc::new(crate::io::reactor::Reactor::new(remote.clone())),
            #[cfg(not(loom))]
            watches: RefCell::new(Default::default()),
            #[cfg(not(loom))]
            signals: RefCell::new(Default::default()),
            #[cfg(not(loom))]
            io_scratch: RefCell::new(Default::default()),
            remote,
        });
        Ok(EventLoop { inner })
    }

    /// The loop running on this thread, if any (the basis of `get_running_loop()`). Works inside
    /// callbacks as well as tasks.
    ///
    /// ```
    /// use spindle_loop::EventLoop;
    ///
    /// assert!(EventLoop::running().is_none());
    /// let lp = EventLoop::new().unwrap();
    /// let id = lp.id();
    /// let seen = lp.run_until_complete(async { EventLoop::running().map(|l| l.id()) }).unwrap();
    /// assert_eq!(seen, Some(id));
    /// ```
    pub fn running() -> Option<EventLoop> {
        context::with_running(|lp| {
            lp.map(|inner| EventLoop {
                inner: inner.clone(),
            })
        })
    }

    /// A process-unique id of this loop.
    ///
    /// ```
    /// let a = spindle_loop::EventLoop::new().unwrap();
    /// let b = spindle_loop::EventLoop::new().unwrap();
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The thread-safe side of the loop (inbox, wake-up, threadsafe stop).
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let remote = lp.remote();
    /// std::thread::spawn(move || remote.submit(|| println!("hi")).unwrap()).join().unwrap();
    /// ```
    pub fn remote(&self) -> Arc<Remote> {
        self.inner.remote.clone()
    }

    /// The loop's clock: monotonic, the reference for [`call_at`](Self::call_at).
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t0 = lp.time();
    /// assert!(lp.time() >= t0);
    /// ```
    pub fn time(&self) -> std::time::Instant {
        Instant::now()
    }

    /// Schedules `f` to run on the next iteration, after what is already scheduled (FIFO).
    /// On a closed loop `f` comes back in the error.
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// for i in 0..3 {
    ///     let log = log.clone();
    ///     lp.call_soon(move || log.borrow_mut().push(i)).unwrap();
    /// }
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(*log.borrow(), [0, 1, 2]);
    /// ```
    #[track_caller]
    pub fn call_soon<F: FnOnce() + 'static>(&self, f: F) -> Result<Handle, Rejected<F>> {
        self.inner.call_soon_internal(f, Location::caller())
    }

    /// Schedules `f` to run `delay` from now. A delay too large for the clock (even
    /// `Duration::MAX`) schedules it so far ahead that it never fires; it does not panic.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let stopper = lp.clone();
    /// lp.call_later(Duration::from_millis(1), move || stopper.stop()).unwrap();
    /// lp.call_later(Duration::MAX, || unreachable!()).unwrap();
    /// lp.run_forever().unwrap();
    /// ```
    #[track_caller]
    pub fn call_later<F: FnOnce() + 'static>(
        &self,
        delay: Duration,
        f: F,
    ) -> Result<TimerHandle, Rejected<F>> {
        let when = crate::timers::deadline_after(delay);
        self.call_at_internal(when, f, Location::caller())
    }

    /// Schedules `f` to run at `when` on the loop's clock; a past `when` runs on the next
    /// iteration. Timers due together run earliest first, ties in scheduling order.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let stopper = lp.clone();
    /// let at = lp.time() + Duration::from_millis(2);
    /// lp.call_at(at, move || stopper.stop()).unwrap();
    /// lp.run_forever().unwrap();
    /// assert!(lp.time() >= at);
    /// ```
    #[track_caller]
    pub fn call_at<F: FnOnce() + 'static>(
        &self,
        when: Instant,
        f: F,
    ) -> Result<TimerHandle, Rejected<F>> {
        self.call_at_internal(when, f, Location::caller())
    }

    fn call_at_internal<F: FnOnce() + 'static>(
        &self,
        when: Instant,
        f: F,
        created_at: &'static Location<'static>,
    ) -> Result<TimerHandle, Rejected<F>> {
        if self.inner.closed.get() {
            return Err(Rejected::new(f, LoopError::Closed));
        }
        let cell = new_callback(f, created_at);
        self.inner.timers.borrow_mut().push(when, cell.clone());
        Ok(TimerHandle {
            cell,
            when,
            owner: Rc::downgrade(&self.inner),
        })
    }

    /// Creates a future bound to this loop (asyncio's `create_future`).
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let fut = lp.create_future::<u32>();
    /// assert!(!fut.done());
    /// ```
    #[track_caller]
    pub fn create_future<T: 'static>(&self) -> LoopFuture<T> {
        LoopFuture::new(Rc::downgrade(&self.inner), Location::caller())
    }

    /// Wraps `future` in a task scheduled on this loop. The body does not start before the
    /// loop's next iteration. The future may be `!Send`: it never leaves this thread. On a closed
    /// loop the future comes back in the error.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let task = lp.create_task(async { 6 * 7 }).unwrap();
    /// assert_eq!(lp.run_until_complete(task).unwrap(), Ok(42));
    /// ```
    #[track_caller]
    pub fn create_task<F>(&self, future: F) -> Result<Task<F::Output>, Rejected<F>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if self.inner.closed.get() {
            return Err(Rejected::new(future, LoopError::Closed));
        }
        let (runnable, task) = task::spawn_local(&self.inner, future, Location::caller());
        self.inner.push_ready_task(runnable);
        Ok(task)
    }

    fn check_can_run(&self) -> Result<(), LoopError> {
        if self.inner.closed.get() {
            return Err(LoopError::Closed);
        }
        if self.inner.running.get() {
            return Err(LoopError::Running);
        }
        if context::is_any_running() {
            return Err(LoopError::OtherLoopRunning);
        }
        Ok(())
    }

    /// Runs the loop until [`stop`](Self::stop) is called. If `stop()` was called before, it
    /// runs one iteration (without blocking) and returns. It can be called again afterwards.
    ///
    /// Errors: [`LoopError::Closed`]; [`LoopError::Running`] from inside this loop;
    /// [`LoopError::OtherLoopRunning`] while another loop runs on this thread.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let stopper = lp.clone();
    /// lp.call_soon(move || stopper.stop()).unwrap();
    /// lp.run_forever().unwrap();
    /// ```
    pub fn run_forever(&self) -> Result<(), LoopError> {
        self.check_can_run()?;
        let inner = &self.inner;
        let _span = tracing::debug_span!("spindle.loop", id = inner.id).entered();
        let _context = context::enter(inner.clone());
        let _state = RunState::enter(inner);
        loop {
            inner.run_once();
            if inner.stopping.get() {
                break;
            }
        }
        Ok(())
    }

    /// Runs `future` as a task until it completes and returns its output (asyncio's
    /// `run_until_complete`).
    ///
    /// If the loop is stopped first, it returns [`LoopError::StoppedBeforeComplete`]; the task
    /// stays pending and resumes on the next run. If the task panics, the panic comes back as
    /// [`LoopError::Task`].
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert_eq!(lp.run_until_complete(async { "done" }).unwrap(), "done");
    /// ```
    #[track_caller]
    pub fn run_until_complete<F>(&self, future: F) -> Result<F::Output, LoopError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.check_can_run()?;
        let mut task = self.create_task(future).map_err(|e| e.reason().clone())?;
        task.header().set_stop_on_done(true);
        let ran = self.run_forever();
        // asyncio removes its stop-callback here: a task left pending must not stop a later run.
        task.header().set_stop_on_done(false);
        ran?;
        match task.result() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(LoopError::Task(e)),
            Err(_) => Err(LoopError::StoppedBeforeComplete),
        }
    }

    /// Stops the loop after the current batch of callbacks (or, if it is not running, after the
    /// first iteration of the next run).
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap(); // one iteration, then returns
    /// ```
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// Whether the loop is inside `run_forever` / `run_until_complete`.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let inner = lp.clone();
    /// assert!(lp.run_until_complete(async move { inner.is_running() }).unwrap());
    /// assert!(!lp.is_running());
    /// ```
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Whether the loop was closed.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.close().unwrap();
    /// assert!(lp.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the loop: drops every pending callback, timer and task on this thread (their
    /// destructors run here), reports tasks destroyed while pending, and refuses all scheduling
    /// and running from then on with [`LoopError::Closed`]. Threadsafe callbacks the loop had
    /// already accepted are run rather than dropped, so a producer that was told "accepted" is
    /// never silently let down. Idempotent; an error while the loop is running.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.call_soon(|| unreachable!()).unwrap();
    /// lp.close().unwrap();
    /// lp.close().unwrap();
    /// assert!(lp.call_soon(|| ()).is_err());
    /// ```
    pub fn close(&self) -> Result<(), LoopError> {
        if self.inner.running.get() {
            return Err(LoopError::Running);
        }
        if !self.inner.closed.get() {
            self.inner.close_now();
        }
        Ok(())
    }

    /// Registers `hook` to run at the end of [`close`](Self::close), after every pending
    /// callback and task was dropped (e.g. to shut down a blocking-work pool tied to the loop).
    /// On a closed loop the hook comes back in the error.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let closed = Rc::new(Cell::new(false));
    /// let c = closed.clone();
    /// lp.on_close(move || c.set(true)).unwrap();
    /// lp.close().unwrap();
    /// assert!(closed.get());
    /// ```
    pub fn on_close<F: FnOnce() + 'static>(&self, hook: F) -> Result<(), Rejected<F>> {
        if self.inner.closed.get() {
            return Err(Rejected::new(hook, LoopError::Closed));
        }
        self.inner.close_hooks.borrow_mut().push(Box::new(hook));
        Ok(())
    }

    /// Installs (or removes) the scheduler hook that makes this loop a runtime worker.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.set_worker_hook(None);
    /// ```
    pub fn set_worker_hook(&self, hook: Option<Rc<dyn WorkerHook>>) {
        *self.inner.worker_hook.borrow_mut() = hook;
    }

    /// Replaces the exception handler; `None` restores the default
    /// ([`default_exception_handler`]).
    ///
    /// ```
    /// use std::rc::Rc;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.set_exception_handler(Some(Rc::new(|_lp: &spindle_loop::EventLoop, ctx: &spindle_loop::ExceptionContext| {
    ///     eprintln!("spindle: {ctx}");
    /// })));
    /// assert!(lp.exception_handler().is_some());
    /// lp.set_exception_handler(None);
    /// ```
    pub fn set_exception_handler(&self, handler: Option<ExceptionHandler>) {
        *self.inner.handler.borrow_mut() = handler;
    }

    /// The custom exception handler, if one is set.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(lp.exception_handler().is_none());
    /// ```
    pub fn exception_handler(&self) -> Option<ExceptionHandler> {
        self.inner.handler.borrow().clone()
    }

    /// Reports `ctx` through the loop's exception handler (the custom one, or the default).
    ///
    /// ```
    /// use spindle_loop::{EventLoop, ExceptionContext, ExceptionKind};
    /// let lp = EventLoop::new().unwrap();
    /// lp.call_exception_handler(ExceptionContext::new(ExceptionKind::User, "cache miss storm"));
    /// ```
    pub fn call_exception_handler(&self, ctx: ExceptionContext) {
        self.inner.report(ctx);
    }

    /// Turns debug mode on or off: in debug mode a callback or task step that runs longer than
    /// [`slow_callback_duration`](Self::slow_callback_duration) is reported, with its name and
    /// where it was created.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.set_debug(true);
    /// assert!(lp.debug());
    /// ```
    pub fn set_debug(&self, enabled: bool) {
        self.inner.debug.set(enabled);
    }

    /// Whether debug mode is on.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.set_debug(false);
    /// assert!(!lp.debug());
    /// ```
    pub fn debug(&self) -> bool {
        self.inner.debug.get()
    }

    /// The threshold for slow-callback reports in debug mode (default 100 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert_eq!(lp.slow_callback_duration(), Duration::from_millis(100));
    /// ```
    pub fn slow_callback_duration(&self) -> Duration {
        self.inner.slow_callback.get()
    }

    /// Sets the slow-callback threshold.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.set_slow_callback_duration(Duration::from_millis(10));
    /// assert_eq!(lp.slow_callback_duration(), Duration::from_millis(10));
    /// ```
    pub fn set_slow_callback_duration(&self, threshold: Duration) {
        self.inner.slow_callback.set(threshold);
    }

    /// The task whose step is running on this loop right now, if any.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(lp.current_task().is_none());
    /// ```
    pub fn current_task(&self) -> Option<TaskRef> {
        self.inner.current_task_ref()
    }

    /// Every live (not yet finished) task of this loop.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert_eq!(lp.all_tasks().len(), 1);
    /// lp.run_until_complete(t).unwrap().unwrap();
    /// assert!(lp.all_tasks().is_empty());
    /// ```
    pub fn all_tasks(&self) -> Vec<TaskRef> {
        self.inner.live_tasks()
    }

    /// How many callbacks this loop has run so far (`stats().callbacks_run`, without building
    /// the rest of the stats: a runtime worker publishes it every iteration).
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.call_soon(|| ()).unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(lp.callbacks_run(), 1);
    /// ```
    pub fn callbacks_run(&self) -> u64 {
        self.inner.callbacks_run.get()
    }

    /// Counters and queue sizes.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert_eq!(lp.stats().tasks, 0);
    /// ```
    pub fn stats(&self) -> LoopStats {
        let inner = &self.inner;
        let timers = inner.timers.borrow();
        LoopStats {
            ready: inner.ready.borrow().len(),
            timers: timers.len(),
            cancelled_timers: timers.cancelled(),
            tasks: inner.tasks.borrow().len() + inner.unstarted.get(),
            callbacks_run: inner.callbacks_run.get(),
            task_steps: inner.task_steps.get(),
            iterations: inner.iterations.get(),
            wakeups: inner.remote.wakeups(),
        }
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("id", &self.id())
            .field("running", &self.is_running())
            .field("closed", &self.is_closed())
            .field("debug", &self.debug())
            .finish()
    }
}

/// Marks the loop running for the duration of a run, and resets it on the way out, also when
/// unwinding.
struct RunState<'a> {
    inner: &'a Inner,
}

impl<'a> RunState<'a> {
    fn enter(inner: &'a Inner) -> Self {
        inner.running.set(true);
        inner.remote.set_running(true);
        RunState { inner }
    }
}

impl Drop for RunState<'_> {
    fn drop(&mut self) {
        self.inner.stopping.set(false);
        self.inner.running.set(false);
        self.inner.remote.set_running(false);
    }
}

/// The task running on this thread's loop right now (asyncio's `current_task()`).
///
/// ```
/// use spindle_loop::{current_task, EventLoop};
/// assert!(current_task().is_none());
/// let lp = EventLoop::new().unwrap();
/// assert!(lp.run_until_complete(async { current_task().is_some() }).unwrap());
/// ```
pub fn current_task() -> Option<TaskRef> {
    EventLoop::running().and_then(|lp| lp.current_task())
}

/// Every live task of the loop running on this thread; empty when none runs (asyncio's
/// `all_tasks()`).
///
/// ```
/// use spindle_loop::{all_tasks, EventLoop};
/// let lp = EventLoop::new().unwrap();
/// assert_eq!(lp.run_until_complete(async { all_tasks().len() }).unwrap(), 1);
/// ```
pub fn all_tasks() -> Vec<TaskRef> {
    EventLoop::running()
        .map(|lp| lp.all_tasks())
        .unwrap_or_default()
}

/// Creates a task on the loop running on this thread (asyncio's `asyncio.create_task`). Without
/// a running loop the future comes back with [`LoopError::NoRunningLoop`].
///
/// ```
/// use spindle_loop::{spawn_local, EventLoop, LoopError};
///
/// assert_eq!(spawn_local(async {}).unwrap_err().reason(), &LoopError::NoRunningLoop);
/// let lp = EventLoop::new().unwrap();
/// let out = lp.run_until_complete(async { spawn_local(async { 2 }).unwrap().await.unwrap() });
/// assert_eq!(out.unwrap(), 2);
/// ```
#[track_caller]
pub fn spawn_local<F>(future: F) -> Result<Task<F::Output>, Rejected<F>>
where
    F: Future + 'static,
    F::Output: 'static,
{
    // `create_task` is `#[track_caller]` too: the task records this function's caller.
    match EventLoop::running() {
        Some(lp) => lp.create_task(future),
        None => Err(Rejected::new(future, LoopError::NoRunningLoop)),
    }
}

/// The same as [`spawn_local`], under asyncio's name.
///
/// ```
/// use spindle_loop::{create_task, EventLoop};
/// let lp = EventLoop::new().unwrap();
/// assert_eq!(lp.run_until_complete(async { create_task(async { 3 }).unwrap().await }).unwrap(), Ok(3));
/// ```
#[track_caller]
pub fn create_task<F>(future: F) -> Result<Task<F::Output>, Rejected<F>>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_local(future)
}

#[cfg(test)]
mod tests {
    /// The ready queue moves every item of every iteration: an item must not grow unnoticed.
    #[test]
    fn a_ready_item_is_three_words() {
        assert_eq!(
            std::mem::size_of::<super::Ready>(),
            3 * std::mem::size_of::<usize>()
        );
    }
}
