//! Every cross-thread primitive of the bridge, from one place, so that `--cfg loom` swaps in
//! loom's model-checked versions (see `loom-tests/tests/bridge.rs`).
//!
//! Besides the re-exports, two helpers: [`lock`] (a poisoned lock is still usable: nothing in
//! this crate runs user code while holding one) and [`spin_until`], the bounded spin a waiter
//! does before it parks.

use std::sync::PoisonError;
use std::time::Duration;

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU8, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU8, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

/// How long a thread waiting for a result spins before it parks. A round trip into a loop
/// takes a few microseconds when the loop is awake; parking and being woken costs two syscalls
/// and a context switch (about 10 us here). Spinning a bit longer than one round trip catches
/// the common case without parking; the bound keeps a long wait from burning a core.
pub(crate) const SPIN_FOR: Duration = Duration::from_micros(50);

/// Rounds of pure `spin_loop` hints (doubling each round, 1 + 2 + ... + 64 of them) before the
/// spinner starts yielding its time slice: with 2 cores the thread it waits for may need ours.
#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 7;

/// Locks `mutex`, ignoring poisoning: the bridge never runs user code under its locks, so a
/// poisoned lock only means a panic elsewhere on that thread, and the data is consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar`, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` for at most `timeout`, ignoring poisoning; returns the guard and whether
/// the wait timed out. (Under loom the wait never times out: loom has no clock.)
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> (MutexGuard<'a, T>, bool) {
    let (guard, result) = condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(PoisonError::into_inner);
    (guard, result.timed_out())
}

/// Spins until `ready()` returns `true` or about `limit` has passed (the caller looks again).
///
/// Under loom this checks once: spinning adds nothing to a model but states.
pub(crate) fn spin_until(limit: Duration, mut ready: impl FnMut() -> bool) {
    if ready() {
        return;
    }
    #[cfg(loom)]
    {
        let _ = limit;
    }
    #[cfg(not(loom))]
    {
        let start = std::time::Instant::now();
        let mut round = 0u32;
        loop {
            if round < SPIN_ROUNDS {
                for _ in 0..(1u32 << round) {
                    std::hint::spin_loop();
                }
                round += 1;
            } else {
                std::thread::yield_now();
            }
            if ready() || (round >= SPIN_ROUNDS && start.elapsed() >= limit) {
                return;
            }
        }
    }
}
