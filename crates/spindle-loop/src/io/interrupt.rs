//! Ctrl-C for the length of a run ([`InterruptScope`]): asyncio 3.11's `Runner` SIGINT rules,
//! built on `signal-hook` and the loop's signal handlers (module `signal`).
//!
//! # Protocol
//!
//! - **When.** A scope is entered only when `SIGINT` would have its default effect now (kill the
//!   process): its disposition is `SIG_DFL` (asked with `sigaction(2)`, no change made), or it
//!   is `signal-hook`'s handler installed by an earlier scope and no loop handles `SIGINT`
//!   ([`loops_handling`](super::loops_handling)). A program that set its own handler keeps it,
//!   as asyncio only takes a `SIGINT` still at `default_int_handler`. One scope at a time in
//!   the process.
//! - **The default keeper.** `signal-hook` never gives a signal back to `SIG_DFL`. So the first
//!   scope registers, once for the life of the process, a `signal-hook` action that runs the
//!   default action (`emulate_default_handler`: `SIG_DFL`, then raise) when
//!   `ARMED || (!IN_SCOPE && loops_handling(SIGINT) == 0)`: outside a scope, Ctrl-C kills the
//!   process as before unless a loop handles it; inside one, only a second `SIGINT` does.
//!   Registered first, it runs before every later action of the same signal.
//! - **In a scope.** A loop handler (`add_signal_handler`) calls the scope's callback on the
//!   loop, in the iteration after the signal (the self-pipe wakes the loop); a
//!   `signal_hook::flag` action, registered after the keeper, sets `ARMED`. So the first
//!   `SIGINT` finds `ARMED` false in the keeper and sets it; the second finds it set and kills
//!   the process, from the signal handler itself: it works even if the loop's thread is stuck.
//! - **Leaving.** Dropping the scope removes the loop's `SIGINT` handler and the arming action,
//!   then clears `IN_SCOPE` and `ARMED`: Ctrl-C has its default effect again.
//!
//! Known limit: after the first scope, a `SIGINT` action registered with `signal-hook` directly
//! (not through a loop) does not keep Ctrl-C from killing the process outside a scope: the
//! keeper runs first and cannot see it.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use signal_hook::consts::signal::SIGINT;
use signal_hook::SigId;

use super::loops_handling;
use crate::EventLoop;

/// `signal-hook`'s handler address once the keeper is registered (`None` before the first
/// scope). Its lock also serialises entering and leaving scopes.
static KEEPER: Mutex<Option<usize>> = Mutex::new(None);
/// A scope is alive.
static IN_SCOPE: AtomicBool = AtomicBool::new(false);
/// The scope's first `SIGINT` was delivered: the next one kills the process.
static ARMED: AtomicBool = AtomicBool::new(false);

/// `SIGINT` handled for the length of a run, as asyncio 3.11's `Runner` does: the first
/// `SIGINT` calls the scope's callback on its loop, a second one kills the process as the
/// default disposition would, and once the scope is dropped Ctrl-C has its default effect
/// again. What `spindle-policy`'s `run()` and `Runner` use to cancel their main task. See the
/// module docs of `io::interrupt` for the protocol.
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use spindle_loop::{io::InterruptScope, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let interrupted = Rc::new(Cell::new(false));
/// let seen = interrupted.clone();
/// // `None` if SIGINT already has a handler (or another scope is alive).
/// let scope = InterruptScope::enter(&lp, move || seen.set(true))?;
/// // ... run the loop: a Ctrl-C now calls the callback on it ...
/// drop(scope); // Ctrl-C kills the process again
/// assert!(!interrupted.get());
/// lp.close().unwrap();
/// # std::io::Result::Ok(())
/// ```
pub struct InterruptScope {
    lp: EventLoop,
    arming: SigId,
}

impl InterruptScope {
    /// Takes `SIGINT` for `lp` if it would have its default effect now (see the module docs);
    /// `Ok(None)` otherwise (a handler of the program's, a loop handling `SIGINT`, another
    /// scope alive). While the scope lives, `on_interrupt` runs on `lp`'s thread after each
    /// `SIGINT` that does not kill the process (in practice the first; deliveries close
    /// together may coalesce into one call).
    ///
    /// Errors: `sigaction(2)` or a registration failed, or `lp` is closed.
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let scope = spindle_loop::io::InterruptScope::enter(&lp, || {})?;
    /// drop(scope);
    /// lp.close().unwrap();
    /// # std::io::Result::Ok(())
    /// ```
    pub fn enter<F>(lp: &EventLoop, on_interrupt: F) -> io::Result<Option<InterruptScope>>
    where
        F: FnMut() + 'static,
    {
        let mut keeper = KEEPER.lock().unwrap_or_else(|e| e.into_inner());
        if IN_SCOPE.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let current = sigint_disposition()?;
        let default_now = match *keeper {
            None => current == libc::SIG_DFL,
            Some(hook) => current == hook && loops_handling(SIGINT) == 0,
        };
        if !default_now {
            return Ok(None);
        }
        if keeper.is_none() {
            // SAFETY: the action only loads two atomics, reads `loops_handling` (an atomic
            // load) and calls `emulate_default_handler`, which signal-hook documents as
            // async-signal-safe; it allocates nothing and takes no lock.
            unsafe {
                signal_hook::low_level::register(SIGINT, || {
                    let in_scope = IN_SCOPE.load(Ordering::SeqCst);
                    if ARMED.load(Ordering::SeqCst) || (!in_scope && loops_handling(SIGINT) == 0) {
                        let _ = signal_hook::low_level::emulate_default_handler(SIGINT);
                    }
                })?;
            }
            *keeper = Some(sigint_disposition()?);
        }
        ARMED.store(false, Ordering::SeqCst);
        IN_SCOPE.store(true, Ordering::SeqCst);
        let arming = match signal_hook::flag::register(SIGINT, &ARMED) {
            Ok(id) => id,
            Err(e) => {
                IN_SCOPE.store(false, Ordering::SeqCst);
                return Err(e);
            }
        };
        if let Err(e) = lp.add_signal_handler(SIGINT, on_interrupt) {
            signal_hook::low_level::unregister(arming);
            IN_SCOPE.store(false, Ordering::SeqCst);
            return Err(e);
        }
        Ok(Some(InterruptScope {
            lp: lp.clone(),
            arming,
        }))
    }
}

impl Drop for InterruptScope {
    fn drop(&mut self) {
        let _keeper = KEEPER.lock().unwrap_or_else(|e| e.into_inner());
        // The loop's SIGINT handler, ours unless the run replaced it (then the replacement goes:
        // it was added for the run).
        self.lp.remove_signal_handler(SIGINT);
        signal_hook::low_level::unregister(self.arming);
        ARMED.store(false, Ordering::SeqCst);
        IN_SCOPE.store(false, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for InterruptScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterruptScope")
            .field("loop", &self.lp.id())
            .field("armed", &ARMED.load(Ordering::SeqCst))
            .finish()
    }
}

/// `SIGINT`'s current handler address (`SIG_DFL`, `SIG_IGN`, or a function), asked without
/// changing it.
fn sigint_disposition() -> io::Result<usize> {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only queries; `current` is a valid, writable `sigaction`.
    let rc = unsafe { libc::sigaction(SIGINT, std::ptr::null(), current.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `sigaction` succeeded and filled it (and zeroed bytes are a valid `sigaction`).
    let current = unsafe { current.assume_init() };
    Ok(current.sa_sigaction)
}
