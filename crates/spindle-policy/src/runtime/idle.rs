//! Which workers are parked, and which are searching for work (after tokio's `idle.rs`).
//!
//! # State
//!
//! One atomic word packs `num_searching` (low half) and `num_unparked` (high half); the list of
//! parked workers (`sleepers`) is behind a mutex taken only on the park/unpark transitions.
//!
//! # Protocol and invariants
//!
//! - **Bounded search.** A worker out of work may become a *searcher* (it steals from the
//!   injector and its siblings) only while `2 * num_searching < num_workers`: at most half the
//!   workers search at once, so an idle runtime does not burn every core on stealing.
//! - **Notify only when nobody searches.** Whoever makes a task visible (push to the injector,
//!   or to a worker's deque) calls [`Idle::worker_to_notify`]: it wakes one parked worker only if
//!   no worker is searching and some worker is parked. A searcher will find the task, so waking
//!   another would only add a syscall. The woken worker is counted unparked *and* searching
//!   before it even runs, so a burst of pushes wakes one worker, not one per push.
//! - **The last searcher re-checks.** A searcher that parks and was the last one
//!   ([`Idle::transition_worker_to_parked`] returns `true`) re-checks every queue first, and
//!   wakes a worker if it finds work. Together with the previous rule this is what makes a
//!   wake-up impossible to lose: a pusher that saw `num_searching > 0` relies on a searcher, and
//!   the last searcher to leave looks again after it has left (the sleepers lock orders the
//!   two).
//! - **The last searcher to find work wakes another** ([`Idle::transition_worker_from_searching`]
//!   returns `true`): work tends to come in bursts, so one more worker starts looking.

use super::sync::{AtomicUsize, Mutex, Ordering};

/// `num_unparked` lives above this many bits of the state word.
const UNPARK_SHIFT: usize = usize::BITS as usize / 2;
const SEARCH_MASK: usize = (1 << UNPARK_SHIFT) - 1;
const UNPARK_ONE: usize = 1 << UNPARK_SHIFT;

/// The idle/searching bookkeeping (public only for the loom models).
pub struct Idle {
    state: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
    num_workers: usize,
}

fn searching(state: usize) -> usize {
    state & SEARCH_MASK
}

fn unparked(state: usize) -> usize {
    state >> UNPARK_SHIFT
}

impl Idle {
    /// All workers start unparked and not searching.
    pub fn new(num_workers: usize) -> Self {
        Idle {
            state: AtomicUsize::new(num_workers << UNPARK_SHIFT),
            sleepers: Mutex::new(Vec::with_capacity(num_workers)),
            num_workers,
        }
    }

    fn lock(&self) -> impl std::ops::DerefMut<Target = Vec<usize>> + '_ {
        // The list is plain data; a panic cannot leave it inconsistent.
        self.sleepers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Work was made visible: the parked worker to wake, if one should be.
    #[inline(always)]
    pub fn worker_to_notify(&self) -> Option<usize> {
        // SeqCst pairs with the SeqCst updates below: a pusher that sees no searcher and all
        // workers unparked relies on those workers finding the task. This check is inlined
        // into every push (most find nobody to wake); the rest is out of line.
        if !self.should_notify(self.state.load(Ordering::SeqCst)) {
            return None;
        }
        self.pop_sleeper()
    }

    /// `worker_to_notify` past its first look: under the lock, looks again and takes a sleeper.
    #[cold]
    #[inline(never)]
    fn pop_sleeper(&self) -> Option<usize> {
        let mut sleepers = self.lock();
        if !self.should_notify(self.state.load(Ordering::SeqCst)) {
            return None;
        }
        let worker = sleepers.pop()?;
        // The woken worker counts as unparked and searching from now on.
        self.state.fetch_add(UNPARK_ONE + 1, Ordering::SeqCst);
        Some(worker)
    }

    #[inline(always)]
    fn should_notify(&self, state: usize) -> bool {
        searching(state) == 0 && unparked(state) < self.num_workers
    }

    /// A worker with nothing to run may search only while fewer than half the workers do.
    /// Returns whether it became a searcher.
    pub fn transition_worker_to_searching(&self) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        if 2 * searching(state) >= self.num_workers {
            return false;
        }
        // A racy admission may let one extra searcher in; the bound is a heuristic.
        self.state.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// A searcher found work. Returns `true` if it was the last searcher (then it should wake
    /// another worker).
    pub fn transition_worker_from_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, Ordering::SeqCst);
        searching(prev) == 1
    }

    /// `worker` is about to park. Returns `true` if it was the last searcher: it must then
    /// re-check every queue before it sleeps.
    pub fn transition_worker_to_parked(&self, worker: usize, is_searching: bool) -> bool {
        let mut sleepers = self.lock();
        let dec = UNPARK_ONE + usize::from(is_searching);
        let prev = self.state.fetch_sub(dec, Ordering::SeqCst);
        sleepers.push(worker);
        is_searching && searching(prev) == 1
    }

    /// `worker` woke up without being notified (a timer, its inbox): take it off the sleepers.
    /// Returns `false` if it was notified (already off the list, counted as searching).
    pub fn unpark_worker_by_id(&self, worker: usize) -> bool {
        let mut sleepers = self.lock();
        match sleepers.iter().position(|&w| w == worker) {
            Some(index) => {
                sleepers.swap_remove(index);
                self.state.fetch_add(UNPARK_ONE, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}
