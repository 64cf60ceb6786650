//! Per-worker counters, readable from any thread.

use std::sync::atomic::{AtomicU64, Ordering};

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

    /// The counters, and `local_queue_depth`, read now from the worker's queue (its stealer).
    pub(crate) fn snapshot(&self, worker: usize, local_queue_depth: usize) -> WorkerMetrics {
        WorkerMetrics {
            worker,
            tasks_polled: self.polls.load(Ordering::Relaxed),
            steals: self.steals.load(Ordering::Relaxed),
            stolen_tasks: self.stolen_tasks.load(Ordering::Relaxed),
            times_parked: self.parks.load(Ordering::Relaxed),
            callbacks_run: self.callbacks.load(Ordering::Relaxed),
            local_queue_depth,
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
}
