//! One worker: a loop's [`WorkerHook`], its local queue and LIFO slot, stealing, parking.
//!
//! Per loop iteration the worker runs up to [`STEP_BUDGET`] stealable steps after the loop's own
//! ready batch, so callbacks, timers and local tasks keep their turn. It takes the next step
//! from, in order: the injector every [`INJECTOR_INTERVAL`] ticks (so tasks pushed from outside
//! are not starved by a busy local queue), the LIFO slot (the task just spawned or woken on this
//! worker, so a task and the one it hands work to run back to back while their data is in
//! cache; at most [`LIFO_CAP`] slot steps in a row, so two tasks waking each other cannot starve
//! the queue; a task that woke itself, a yield, goes to the back of the queue instead), its
//! local queue, the injector. Out of work, before its loop blocks, it searches (steals a batch
//! from the injector, then from siblings starting at a random one) and parks only if that finds
//! nothing; the handshake is `Idle`'s. It spins between searches, and lets its loop spin on
//! its inbox, only while no worker's loop watches I/O sources: a socket's readiness comes from
//! the kernel, not from a sibling's push, and a spinning worker takes a core from the thread
//! that feeds it. A sibling's last queued task, or the task in its LIFO
//! slot (a [`spindle_loop::RunnableSlot`], so that it can be taken), is that sibling's next step
//! and is stolen only if the sibling made no progress since the thief's previous look: stuck
//! in a long synchronous callback, it must not hold back what it queued. A busy worker never
//! searches, so it also looks, at most every half [`STALL`], for a sibling that has made no
//! step for [`STALL`] with tasks queued (descheduled by the OS, or stuck) and steals a batch
//! from it.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_deque::{Steal, Worker};
use spindle_loop::{Park, Runnable, WorkerHook};

use super::metrics::WorkerCounters;
use super::shared::{run_cancelled, PerWorker, Shared};

/// Stealable steps per loop iteration: enough to amortize an iteration's own bookkeeping (inbox,
/// timers, ready batch; measured: 64 -> 128 took a yield-heavy step from ~31 to ~28 ns), few
/// enough that callbacks and due timers wait at most a few microseconds behind Send tasks.
pub(crate) const STEP_BUDGET: usize = 128;
/// Take from the injector first every this many ticks (tokio's global queue interval).
pub(crate) const INJECTOR_INTERVAL: u32 = 31;
/// LIFO-slot steps in a row before the slot's task goes to the back of the queue (tokio's cap).
pub(crate) const LIFO_CAP: usize = 3;
/// Searches a searcher makes before it parks, a short spin apart: a producer about to push
/// more is caught without a park/unpark round trip (two syscalls and a context switch). Bounded,
/// and only for the one or two workers allowed to search, so an idle runtime stays idle; and
/// only while no worker watches I/O (see `before_park`).
pub(crate) const SEARCH_TRIES: u32 = 8;
/// Spin-loop hints between two searches (about a microsecond in all).
pub(crate) const SEARCH_SPIN: u32 = 64;
/// How long a sibling may make no step, with tasks queued, before a busy worker steals them
/// (`steal_from_stalled`): longer than an iteration of ordinary steps, shorter than an OS time
/// slice (the same bound as a loop's help with a stalled sibling's poller, `io::help`).
pub(crate) const STALL: Duration = Duration::from_micros(500);

pub(crate) struct WorkerCore {
    index: usize,
    shared: Arc<Shared>,
    local: Worker<Runnable>,
    is_searching: Cell<bool>,
    parked: Cell<bool>,
    /// Whether this worker's loop watched I/O sources when it last parked (counted in
    /// `Shared::io_workers`).
    has_io: Cell<bool>,
    /// Whether this worker's loop helps its siblings' pollers (`install_help`).
    io_help: Cell<IoHelp>,
    /// The loop is handing its poller's events to their sources (`io_dispatch`).
    dispatching_io: Cell<bool>,
    /// This worker came back from blocking in its poller (not from a zero-timeout poll).
    woke_from_block: Cell<bool>,
    /// A push during the I/O dispatch found more than one task queued: after the dispatch,
    /// wake a sibling if this worker had been blocked (see `io_dispatch`).
    notify_after_dispatch: Cell<bool>,
    /// A push found more than one task queued while this worker was parked, helping a
    /// sibling's poller: `after_park` decides whether to wake a sibling.
    queued_while_parked: Cell<bool>,
    rng: Cell<u64>,
    /// The worker's loop, for its counters (cleared at shutdown: the loop holds this core).
    event_loop: std::cell::RefCell<Option<spindle_loop::EventLoop>>,
    /// Each sibling's published step count at our last look (see `steal`).
    seen_ticks: Vec<Cell<u32>>,
    /// Each sibling's step count when `steal_from_stalled` last saw it move, and when.
    stall_seen: Vec<Cell<(u32, Instant)>>,
    /// When `steal_from_stalled` looks next.
    next_stall_look: Cell<Instant>,
}

impl WorkerCore {
    pub(crate) fn new(index: usize, shared: Arc<Shared>, local: Worker<Runnable>) -> Self {
        let workers = shared.num_workers();
        let seen_ticks = (0..workers).map(|_| Cell::new(u32::MAX)).collect();
        let started = Instant::now();
        WorkerCore {
            index,
            shared,
            local,
            is_searching: Cell::new(false),
            parked: Cell::new(false),
            has_io: Cell::new(false),
            io_help: Cell::new(IoHelp::NotYet),
            dispatching_io: Cell::new(false),
            woke_from_block: Cell::new(false),
            notify_after_dispatch: Cell::new(false),
            queued_while_parked: Cell::new(false),
            // Any odd seed works for xorshift; spread the workers apart.
            rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0x2545_F491)),
            event_loop: std::cell::RefCell::new(None),
            seen_ticks,
            stall_seen: (0..workers)
                .map(|_| Cell::new((u32::MAX, started)))
                .collect(),
            next_stall_look: Cell::new(started),
        }
    }

    /// The runtime this worker belongs to.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn scheduler_id(&self) -> spindle_loop::SchedulerId {
        spindle_loop::SchedulerId::of(&self.shared)
    }

    /// What this worker publishes (see `PerWorker`).
    fn published(&self) -> &PerWorker {
        &self.shared.workers[self.index]
    }

    fn counters(&self) -> &WorkerCounters {
        &self.published().counters
    }

    /// A step scheduled on this worker's thread: a yielded task (`to_back`) to the back of the
    /// queue, a new or woken one to the LIFO slot.
    pub(crate) fn push(&self, runnable: Runnable, to_back: bool) {
        let lifo_occupied = if to_back {
            self.local.push(runnable);
            self.has_lifo()
        } else {
            // A new or woken task runs next (cache-hot); the one it displaces goes to the queue.
            if let Some(displaced) = self.lifo().replace(runnable) {
                self.local.push(displaced);
            }
            true
        };
        // More than one task waits here: a parked sibling could take some while we are busy
        // (and a worker stuck in a long callback must not hold them back). One task is ours to
        // run next; waking a sibling for it would only bounce it between threads (tokio's rule).
        if self.has_work_for_a_sibling(lifo_occupied) {
            if self.parked.get() {
                // Woken by a sibling's poller that our park helps with (`io::help`): we are
                // still on the sleepers list, so a notify now could pick ourselves and spend
                // an eventfd write on a thread that is awake. See `after_park`.
                self.queued_while_parked.set(true);
            // Our own `On` stands for our siblings': every worker installs its help before the
            // first park after any worker has I/O, so a parked sibling is a helping one.
            } else if self.dispatching_io.get() && self.io_help.get() == IoHelp::On {
                // Woken by our own poller's events: see `io_dispatch`.
                self.notify_after_dispatch.set(true);
            } else {
                self.shared.notify_one();
            }
        }
    }

    /// Whether more than one task waits here (`lifo_occupied`: the LIFO slot holds one) and
    /// no search is on: then a parked sibling could take some (see `push`).
    #[inline]
    fn has_work_for_a_sibling(&self, lifo_occupied: bool) -> bool {
        !self.is_searching.get() && usize::from(lifo_occupied) + self.local.len() > 1
    }

    /// Records whether this worker's loop watches I/O; returns whether any worker's does.
    fn note_io(&self, has_io: bool) -> bool {
        let io_workers = &self.shared.io_workers;
        // Relaxed: a hint deciding whether parking workers spin, ordered with nothing.
        if self.has_io.replace(has_io) != has_io {
            if has_io {
                io_workers.fetch_add(1, Ordering::Relaxed);
            } else {
                io_workers.fetch_sub(1, Ordering::Relaxed);
            }
        }
        has_io || io_workers.load(Ordering::Relaxed) != 0
    }

    /// Once siblings watch I/O: from now on this worker's loop, while it waits, also takes the
    /// events of a sibling's poller while that sibling is busy (`spindle_loop::io::help`).
    #[cfg(all(target_os = "linux", not(loom)))]
    fn install_help(&self) {
        if !self.shared.io_help || self.shared.workers.len() < 2 {
            self.io_help.set(IoHelp::Off);
            return;
        }
        let siblings: Option<Vec<_>> = {
            let shares = self
                .shared
                .io_shares
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            shares
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != self.index)
                .map(|(_, share)| share.clone())
                .collect()
        };
        // Not every sibling has started yet: try again at a later park.
        let Some(siblings) = siblings else { return };
        let installed = match &*self.event_loop.borrow() {
            Some(lp) => lp.help_io_of(&siblings).map_err(|e| {
                tracing::debug!(worker = self.index, error = %e, "spindle: no poller help");
            }),
            None => Err(()),
        };
        self.io_help.set(if installed.is_ok() {
            IoHelp::On
        } else {
            IoHelp::Off
        });
    }

    /// No poller to help with elsewhere (`spindle_loop::io::help` is epoll's).
    #[cfg(not(all(target_os = "linux", not(loom))))]
    fn install_help(&self) {
        self.io_help.set(IoHelp::Off);
    }

    fn next_rand(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    fn pop_injector(&self) -> Option<Runnable> {
        retry(|| self.shared.injector.steal_batch_and_pop(&self.local))
    }

    fn next_step(&self, lifo_steps: &mut usize) -> Option<Runnable> {
        // Relaxed: a progress hint for thieves, ordered with nothing. Single writer: a plain
        // load and store.
        let published = &self.published().tick;
        let tick = published.load(Ordering::Relaxed).wrapping_add(1);
        published.store(tick, Ordering::Relaxed);
        if tick % INJECTOR_INTERVAL == 0 {
            if let Some(runnable) = self.pop_injector() {
                *lifo_steps = 0;
                return Some(runnable);
            }
        }
        if let Some(runnable) = self.lifo().take() {
            if *lifo_steps < LIFO_CAP {
                *lifo_steps += 1;
                return Some(runnable);
            }
            self.local.push(runnable);
        }
        // A step from the queue starts a new chain: the cap counts LIFO steps in a row (tokio's
        // rule), not LIFO steps per budget, which would turn the slot off for the rest of it.
        *lifo_steps = 0;
        self.local.pop().or_else(|| self.pop_injector())
    }

    /// A searcher that found work, by any path, stops searching; the last one to do so wakes
    /// another worker, since work tends to come in bursts (tokio's rule).
    fn stop_searching(&self) {
        if self.is_searching.replace(false) && self.shared.idle.transition_worker_from_searching() {
            self.shared.notify_one();
        }
    }

    /// Searches for work to steal; returns whether some landed in the local queue.
    fn search(&self) -> bool {
        if !self.is_searching.get() {
            if !self.shared.idle.transition_worker_to_searching() {
                return false;
            }
            self.is_searching.set(true);
        }
        let found = self.steal();
        if found {
            self.stop_searching();
        }
        found
    }

    /// Steals into the local queue; returns whether anything came.
    fn steal(&self) -> bool {
        let before = self.local.len();
        let Some(runnable) = self.pop_injector().or_else(|| self.steal_from_sibling()) else {
            return false;
        };
        self.local.push(runnable);
        self.record_steal(before);
        true
    }

    /// A batch from a sibling (starting at a random one) into the local queue, one of it
    /// returned; or a stuck sibling's next step.
    fn steal_from_sibling(&self) -> Option<Runnable> {
        let siblings = self.shared.stealers.len();
        let start = (self.next_rand() % siblings as u64) as usize;
        for offset in 0..siblings {
            let victim = (start + offset) % siblings;
            if victim == self.index {
                continue;
            }
            let stealer = &self.shared.stealers[victim];
            let queued = stealer.len();
            if queued <= 1 {
                // A single queued task, or the one in the owner's LIFO slot, is its owner's
                // next step, unless the owner is stuck (a long synchronous callback): take it
                // only if the owner made no progress since our last look. Stealing it from a
                // busy owner would just bounce a chain of spawns between cores.
                let sibling = &self.shared.workers[victim];
                if queued == 0 && !sibling.lifo.is_occupied() {
                    continue;
                }
                let now = sibling.tick.load(Ordering::Relaxed);
                if self.seen_ticks[victim].replace(now) != now {
                    continue;
                }
                if queued == 0 {
                    if let Some(runnable) = sibling.lifo.take() {
                        return Some(runnable);
                    }
                    continue;
                }
            }
            if let Some(runnable) = retry(|| stealer.steal_batch_and_pop(&self.local)) {
                return Some(runnable);
            }
        }
        None
    }

    /// A busy worker never searches, so tasks queued on a sibling that stopped making steps
    /// (descheduled by the OS while threads outnumber cores, or in a long synchronous step)
    /// would wait for it to come back: once it has made no step for [`STALL`], take a batch
    /// of them (or its LIFO slot's task). Looks at most every half [`STALL`]: one clock read
    /// per iteration otherwise.
    fn steal_from_stalled(&self) {
        let now = Instant::now();
        if now < self.next_stall_look.get() {
            return;
        }
        self.next_stall_look.set(now + STALL / 2);
        for (victim, seen) in self.stall_seen.iter().enumerate() {
            if victim == self.index {
                continue;
            }
            let sibling = &self.shared.workers[victim];
            // Relaxed: a progress hint (see `next_step`).
            let tick = sibling.tick.load(Ordering::Relaxed);
            let (seen_tick, since) = seen.get();
            if tick != seen_tick {
                seen.set((tick, now));
                continue;
            }
            let stealer = &self.shared.stealers[victim];
            if now.duration_since(since) < STALL
                || (stealer.is_empty() && !sibling.lifo.is_occupied())
            {
                continue;
            }
            // Look again a stall from now, whatever this finds.
            seen.set((tick, now));
            let before = self.local.len();
            let stolen =
                retry(|| stealer.steal_batch_and_pop(&self.local)).or_else(|| sibling.lifo.take());
            if let Some(runnable) = stolen {
                self.local.push(runnable);
                self.record_steal(before);
            }
        }
    }

    fn record_steal(&self, before: usize) {
        let counters = self.counters();
        WorkerCounters::add(&counters.steals, 1);
        let moved = self.local.len().saturating_sub(before) as u64;
        WorkerCounters::add(&counters.stolen_tasks, moved);
    }

    /// This worker's LIFO slot (in `Shared`, so a sibling can take from it when we are stuck).
    fn lifo(&self) -> &spindle_loop::RunnableSlot {
        &self.published().lifo
    }

    fn has_lifo(&self) -> bool {
        self.lifo().is_occupied()
    }

    /// Shutdown: run every step left in this worker's queues and the injector, each cancelled
    /// first, so each drops its future (here, on a worker thread) and completes.
    pub(crate) fn drain_for_shutdown(&self) {
        let mut lifo_steps = 0;
        while let Some(runnable) = self.next_step(&mut lifo_steps) {
            lifo_steps = 0;
            // Queued steps of tasks that never went idle were not reached by `cancel_all`.
            run_cancelled(runnable);
        }
    }

    pub(crate) fn set_event_loop(&self, lp: Option<spindle_loop::EventLoop>) {
        *self.event_loop.borrow_mut() = lp;
    }
}

/// Runs a crossbeam steal until it stops asking for a retry.
fn retry(mut steal: impl FnMut() -> Steal<Runnable>) -> Option<Runnable> {
    loop {
        match steal() {
            Steal::Success(runnable) => return Some(runnable),
            Steal::Empty => return None,
            Steal::Retry => continue,
        }
    }
}

impl WorkerHook for WorkerCore {
    fn run_stealable(&self) -> usize {
        // This iteration's I/O burst, if any, was dispatched before this call.
        self.woke_from_block.set(false);
        let mut ran = 0;
        let mut lifo_steps = 0;
        while ran < STEP_BUDGET {
            let Some(runnable) = self.next_step(&mut lifo_steps) else {
                break;
            };
            if ran == 0 {
                // Woken as a searcher and found work here (injector, queue): searching is over.
                self.stop_searching();
            }
            // Counted before it runs, so a task's awaiter that reads the metrics sees its step.
            // Single writer: a plain load and store, no locked instruction.
            let polls = &self.counters().polls;
            polls.store(polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            // A yielded (or meanwhile woken) task comes back here rather than through
            // `schedule_here`: to the back of our queue, as a yield goes.
            if let Some(next) = runnable.run_handing_back() {
                self.push(next, true);
            }
            ran += 1;
        }
        // Busy with anything (stealable steps, local tasks, callbacks): this worker will not
        // search before its next park. Idle: its park searches anyway; the look is one
        // clock read.
        if self.stall_seen.len() > 1 {
            self.steal_from_stalled();
        }
        if let Some(lp) = &*self.event_loop.borrow() {
            self.counters()
                .callbacks
                .store(lp.callbacks_run(), Ordering::Relaxed);
        }
        ran
    }

    fn has_stealable(&self) -> bool {
        self.has_lifo() || !self.local.is_empty() || !self.shared.injector.is_empty()
    }

    fn before_park(&self, has_io: bool) -> Park {
        if self.shared.is_shutdown() {
            return Park::Block { spin: false };
        }
        // Spinning only pays when work comes from other threads' pushes. Once any worker
        // watches sockets, work comes from the kernel, and on a machine with as many busy
        // threads as cores a spinning worker takes the core from the thread that feeds it
        // (measured on `tcp_echo_rt`: the spins were ~10% of the process's CPU).
        let spin = !self.note_io(has_io);
        if self.io_help.get() == IoHelp::NotYet && !spin {
            self.install_help();
        }
        for attempt in 0..SEARCH_TRIES {
            if self.search() {
                return Park::Stay;
            }
            if !spin || !self.is_searching.get() || attempt + 1 == SEARCH_TRIES {
                break; // not spinning, not allowed to search, or done trying
            }
            for _ in 0..SEARCH_SPIN {
                std::hint::spin_loop();
            }
        }
        let was_searching = self.is_searching.replace(false);
        let last_searcher = self
            .shared
            .idle
            .transition_worker_to_parked(self.index, was_searching);
        self.parked.set(true);
        WorkerCounters::add(&self.counters().parks, 1);
        if last_searcher && self.shared.has_work_anywhere() {
            // Work arrived while we were leaving: wake someone (possibly ourselves, whose park
            // then returns at once thanks to the loop's wake token).
            self.shared.notify_one();
        }
        Park::Block { spin }
    }

    fn after_park(&self) {
        let blocked = self.parked.replace(false);
        self.woke_from_block.set(blocked);
        if blocked && !self.shared.idle.unpark_worker_by_id(self.index) {
            // Not on the sleepers list any more: a notifier took us off and counted us as
            // searching.
            self.is_searching.set(true);
        }
        // A help burst queued tasks here during the park (see `push`): off the sleepers list
        // now, it wakes at most one sibling, as a burst of our own poller's does.
        if self.queued_while_parked.replace(false) && self.has_work_for_a_sibling(self.has_lifo()) {
            self.shared.notify_one();
        }
    }

    /// The tasks our own poller's events woke form one burst. While siblings help this
    /// worker's poller, none is woken per task of the burst: a sibling that parked while we
    /// were busy watches our poller and takes the next events itself. Only a burst that
    /// follows a blocking wait wakes one sibling (if more than one task is queued), since a
    /// sibling that parked while we were blocked does not watch us (tokio notifies once after
    /// a park, not per wake-up of its driver, for the same reason).
    fn io_dispatch(&self, dispatching: bool) {
        self.dispatching_io.set(dispatching);
        if dispatching {
            return;
        }
        let woke_from_block = self.woke_from_block.replace(false);
        if self.notify_after_dispatch.replace(false)
            && woke_from_block
            && self.has_work_for_a_sibling(self.has_lifo())
        {
            self.shared.notify_one();
        }
    }
}

/// Whether a worker helps its siblings' pollers (`spindle_loop::io::help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IoHelp {
    /// Not decided yet: decided at the first park once any worker watches I/O.
    NotYet,
    /// Installed: siblings' I/O bursts reach this worker through their pollers.
    On,
    /// Turned off (`Builder::io_help(false)`, one worker, or not on this platform).
    Off,
}
