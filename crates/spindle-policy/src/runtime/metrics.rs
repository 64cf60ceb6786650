//! Per-worker counters, readable from any thread.
//!
//! Two kinds: the worker's own counters ([`WorkerCounters`], written by that worker only, on
//! its cache line), and the open-connection gauges, which servers built on the runtime keep
//! ([`ConnectionGauge`]: incremented where a connection is accepted, decremented wherever its
//! task ends; kept apart from the workers' lines since any thread writes them).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Counters of one worker. Relaxed: they are statistics, ordered with nothing.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    pub(crate) polls: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) stolen_tasks: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) callbacks: AtomicU64,
}

impl WorkerCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters, with `local_queue_depth` (read now from the worker's queue, its stealer)
    /// and `open_connections` (its gauge).
    pub(crate) fn snapshot(
        &self,
        worker: usize,
        local_queue_depth: usize,
        open_connections: usize,
    ) -> WorkerMetrics {
        WorkerMetrics {
            worker,
            tasks_polled: self.polls.load(Ordering::Relaxed),
            steals: self.steals.load(Ordering::Relaxed),
            stolen_tasks: self.stolen_tasks.load(Ordering::Relaxed),
            times_parked: self.parks.load(Ordering::Relaxed),
            callbacks_run: self.callbacks.load(Ordering::Relaxed),
            local_queue_depth,
            open_connections,
        }
    }
}

/// A snapshot of one worker's counters.
///
/// ```
/// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
/// let metrics = rt.metrics();
/// assert_eq!(metrics.len(), 2);
/// assert_eq!(metrics[1].worker, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// The worker's index.
    pub worker: usize,
    /// Steps of stealable tasks it ran.
    pub tasks_polled: u64,
    /// Successful steals (from the injector or a sibling).
    pub steals: u64,
    /// Tasks it moved into its queue by stealing.
    pub stolen_tasks: u64,
    /// How many times it parked.
    pub times_parked: u64,
    /// Callbacks its loop ran (`call_soon` & co., local task steps excluded).
    pub callbacks_run: u64,
    /// Tasks in its local queue when the snapshot was taken (read from the queue itself).
    pub local_queue_depth: usize,
    /// Connections open on it, as counted by the servers running on the runtime (through its
    /// [`ConnectionGauge`], `spindle-net`'s `Server` for one).
    pub open_connections: usize,
}

/// One worker's open-connection gauge, the [`WorkerMetrics::open_connections`] a server keeps:
/// [`open`](Self::open) counts a connection until the returned guard is dropped. Get it with
/// [`RuntimeHandle::connection_gauge`](crate::RuntimeHandle::connection_gauge). `Send + Sync
/// + Clone`; it keeps the counters alive, not the runtime.
///
/// ```
/// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
/// let gauge = rt.handle().connection_gauge(1)?;
/// let conn = gauge.open();
/// assert_eq!(rt.metrics()[1].open_connections, 1);
/// drop(conn);
/// assert_eq!(rt.metrics()[1].open_connections, 0);
/// # Ok::<(), spindle_policy::PolicyError>(())
/// ```
#[derive(Clone)]
pub struct ConnectionGauge {
    counts: Arc<[AtomicUsize]>,
    worker: usize,
}

impl ConnectionGauge {
    /// The gauge of `worker` among `counts` (an index the caller checked).
    pub(crate) fn new(counts: Arc<[AtomicUsize]>, worker: usize) -> ConnectionGauge {
        debug_assert!(worker < counts.len());
        ConnectionGauge { counts, worker }
    }

    fn count(&self) -> &AtomicUsize {
        &self.counts[self.worker]
    }

    /// Counts one more open connection on this worker, until the guard is dropped (on any
    /// thread).
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let gauge = rt.handle().connection_gauge(0)?;
    /// let (a, b) = (gauge.open(), gauge.open());
    /// assert_eq!(gauge.get(), 2);
    /// drop((a, b));
    /// assert_eq!(gauge.get(), 0);
    /// # Ok::<(), spindle_policy::PolicyError>(())
    /// ```
    pub fn open(&self) -> OpenConnection {
        // SeqCst: a reader that saw a server's own count change sees this one too (the server
        // updates this first).
        self.count().fetch_add(1, Ordering::SeqCst);
        OpenConnection {
            gauge: self.clone(),
        }
    }

    /// The connections counted open on this worker now.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// assert_eq!(rt.handle().connection_gauge(0)?.get(), 0);
    /// # Ok::<(), spindle_policy::PolicyError>(())
    /// ```
    pub fn get(&self) -> usize {
        self.count().load(Ordering::SeqCst)
    }

    /// The worker's index.
    ///
    /// ```
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// assert_eq!(rt.handle().connection_gauge(1)?.worker(), 1);
    /// # Ok::<(), spindle_policy::PolicyError>(())
    /// ```
    pub fn worker(&self) -> usize {
        self.worker
    }
}

impl std::fmt::Debug for ConnectionGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionGauge")
            .field("worker", &self.worker)
            .field("open", &self.get())
            .finish()
    }
}

/// One connection counted by a [`ConnectionGauge`]; dropping it counts the connection closed.
///
/// ```
/// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
/// let conn = rt.handle().connection_gauge(0)?.open();
/// std::thread::spawn(move || drop(conn)).join().unwrap();
/// assert_eq!(rt.metrics()[0].open_connections, 0);
/// # Ok::<(), spindle_policy::PolicyError>(())
/// ```
#[derive(Debug)]
#[must_use = "the connection counts as open only while this guard lives"]
pub struct OpenConnection {
    gauge: ConnectionGauge,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.count().fetch_sub(1, Ordering::SeqCst);
    }
}
