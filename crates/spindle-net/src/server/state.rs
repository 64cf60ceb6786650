//! The server's shared state: per-worker counts, the connection registry, the acceptors'
//! liveness, and the one `changed` event everybody who waits on them listens to.

use std::collections::HashMap;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use spindle_loop::TaskRef;
use spindle_policy::{ConnectionGauge, OpenConnection};
use spindle_sync::Event;

use crate::TcpListener;
use crate::TcpStream;

/// One worker's counters. `open` has one incrementer (the acceptor that hands connections to
/// this worker) and any number of decrementers (the [`Slot`]s, dropped wherever their task
/// ends); `accepted` only grows. `gauge` is the runtime's count of the same connections (its
/// `WorkerMetrics::open_connections`, which every server on the runtime adds to), moved in
/// step with `open`.
pub(super) struct WorkerCounts {
    pub(super) open: AtomicUsize,
    pub(super) accepted: AtomicU64,
    gauge: ConnectionGauge,
}

/// A connection the server can still reach: its stream (for `close_clients`) and its task
/// (for `abort_clients` and the shutdown timeout).
struct Conn {
    stream: TcpStream,
    task: Option<TaskRef>,
}

#[derive(Default)]
struct Conns {
    next_id: u64,
    map: HashMap<u64, Conn>,
}

pub(super) struct State {
    pub(super) max_connections: usize,
    pub(super) shutdown_timeout: Duration,
    pub(super) workers: Box<[WorkerCounts]>,
    /// `false` from `close()` on.
    pub(super) serving: AtomicBool,
    /// Acceptor tasks not yet ended (their [`AcceptorGuard`]s).
    pub(super) acceptors: AtomicUsize,
    /// Set by `close()`: every acceptor selects on it and ends.
    pub(super) closing: Event,
    /// The graceful-shutdown signal the handlers get ([`ShutdownSignal`](super::ShutdownSignal)).
    pub(super) shutdown: Arc<Event>,
    /// Notified after every decrement of `open` and of `acceptors`.
    pub(super) changed: event_listener::Event,
    pub(super) local_addrs: Mutex<Vec<std::net::SocketAddr>>,
    conns: Mutex<Conns>,
}

impl State {
    /// `gauges`: the runtime's open-connection gauge of each worker, by worker index.
    pub(super) fn new(
        gauges: Vec<ConnectionGauge>,
        max_connections: usize,
        shutdown_timeout: Duration,
        shutdown: Arc<Event>,
    ) -> State {
        let workers = gauges
            .into_iter()
            .map(|gauge| WorkerCounts {
                open: AtomicUsize::new(0),
                accepted: AtomicU64::new(0),
                gauge,
            })
            .collect();
        State {
            max_connections,
            shutdown_timeout,
            workers,
            serving: AtomicBool::new(true),
            acceptors: AtomicUsize::new(0),
            closing: Event::new(),
            shutdown,
            changed: event_listener::Event::new(),
            local_addrs: Mutex::new(Vec::new()),
            conns: Mutex::new(Conns::default()),
        }
    }

    fn conns(&self) -> MutexGuard<'_, Conns> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts
        // and removes): keep using it.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn has_room(&self, worker: usize) -> bool {
        self.workers[worker].open.load(Ordering::SeqCst) < self.max_connections
    }

    pub(super) fn open_total(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.open.load(Ordering::SeqCst))
            .sum()
    }

    /// Waits until `done(self)`. The no-lost-wake-up pair: `listen()` then re-check here,
    /// against "decrement, then `changed.notify`" in [`Slot`] and [`AcceptorGuard`]
    /// (`event-listener` orders `listen` and `notify` with SeqCst fences; the counters are
    /// SeqCst too).
    pub(super) async fn until(&self, done: impl Fn(&State) -> bool) {
        loop {
            if done(self) {
                return;
            }
            let listener = self.changed.listen();
            if done(self) {
                return;
            }
            listener.await;
        }
    }

    /// Counts a new connection on `worker`. Only the acceptor feeding `worker` calls this, after
    /// [`has_room`](Self::has_room) said yes, so the limit holds without a CAS.
    pub(super) fn reserve(self: &Arc<Self>, worker: usize) -> Slot {
        let counts = &self.workers[worker];
        counts.open.fetch_add(1, Ordering::SeqCst);
        counts.accepted.fetch_add(1, Ordering::Relaxed);
        Slot {
            state: self.clone(),
            worker,
            id: None,
            counted: Some(counts.gauge.open()),
        }
    }

    /// Registers a connection's stream; the [`Slot`] removes it again.
    pub(super) fn register(&self, slot: &mut Slot, stream: TcpStream) {
        let mut conns = self.conns();
        let id = conns.next_id;
        conns.next_id += 1;
        conns.map.insert(id, Conn { stream, task: None });
        slot.id = Some(id);
    }

    /// Records the task of a registered connection (unless it already ended).
    pub(super) fn set_task(&self, id: Option<u64>, task: TaskRef) {
        let Some(id) = id else { return };
        if let Some(conn) = self.conns().map.get_mut(&id) {
            conn.task = Some(task);
        }
    }

    /// Shuts both directions of every open connection (asyncio's `close_clients`).
    pub(super) fn close_clients(&self) -> usize {
        let conns = self.conns();
        for conn in conns.map.values() {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        conns.map.len()
    }

    /// Resets every open connection (linger 0, shut down, and its task cancelled: the reset
    /// goes out when the task's future, and with it the stream, is dropped).
    pub(super) fn abort_clients(&self) -> usize {
        for conn in self.conns().map.values() {
            let _ = socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        self.cancel_all()
    }

    /// Cancels every registered connection task; returns how many were still running. The
    /// cancels happen outside the registry's lock: a task dropped at once takes that lock in
    /// its `Slot`'s drop.
    pub(super) fn cancel_all(&self) -> usize {
        let tasks: Vec<TaskRef> = self
            .conns()
            .map
            .values()
            .filter_map(|c| c.task.clone())
            .collect();
        tasks.iter().filter(|task| task.cancel()).count()
    }
}

/// One counted connection: created by the acceptor, moved into the connection's task, dropped
/// when that task's future is dropped (done or cancelled), on whichever worker ran it.
pub(super) struct Slot {
    state: Arc<State>,
    worker: usize,
    pub(super) id: Option<u64>,
    /// The connection in the runtime's metrics; dropped before `open` is decremented, so who
    /// saw the server's count fall sees the runtime's too.
    counted: Option<OpenConnection>,
}

impl Slot {
    pub(super) fn state(&self) -> &Arc<State> {
        &self.state
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.counted.take());
        let state = &self.state;
        if let Some(id) = self.id {
            let conn = state.conns().map.remove(&id);
            drop(conn); // outside the lock: the last clone of a stream closes its fd
        }
        // Decrement, then notify: pairs with `State::until`'s listen-then-check.
        state.workers[self.worker]
            .open
            .fetch_sub(1, Ordering::SeqCst);
        state.changed.notify(usize::MAX);
    }
}

/// Alive as long as an acceptor: owns its listener, closes it first on drop, closes the server
/// (for an acceptor whose loop closed under it), then counts the acceptor out (so "no acceptor
/// left" means "every listener closed").
pub(super) struct AcceptorGuard {
    pub(super) state: Arc<State>,
    pub(super) listener: Option<TcpListener>,
}

impl AcceptorGuard {
    pub(super) fn new(state: &Arc<State>, listener: TcpListener) -> AcceptorGuard {
        state.acceptors.fetch_add(1, Ordering::SeqCst);
        AcceptorGuard {
            state: state.clone(),
            listener: Some(listener),
        }
    }
}

impl Drop for AcceptorGuard {
    fn drop(&mut self) {
        drop(self.listener.take());
        // An acceptor ends on `close()`, or when its loop closes (the runtime shut down): then
        // the server is closed too, so that `wait_closed` returns instead of hanging.
        self.state.serving.store(false, Ordering::SeqCst);
        self.state.closing.set();
        self.state.acceptors.fetch_sub(1, Ordering::SeqCst);
        self.state.changed.notify(usize::MAX);
    }
}
