//! Unix signal handlers on a loop (asyncio's `add_signal_handler` / `remove_signal_handler`),
//! on the self-pipe of `signal-hook`: no signal code of our own.
//!
//! # Protocol
//!
//! Each `(loop, signal)` registration owns a Unix socket pair. The write end belongs to
//! `signal-hook`'s handler (`low_level::pipe::register`), which on delivery sends one byte,
//! non-blocking (a full socket drops the byte: signals coalesce, as they do in the kernel).
//! The read end is watched by the loop's level-triggered `add_reader`: its callback drains
//! every byte, then calls the user's callback once, on the loop's thread, in the iteration
//! after the signal (so the callback may do anything a loop callback may). Removing the
//! handler, or closing the loop, unregisters the action (which closes the write end) and
//! stops watching the read end.
//!
//! Any loop may register (not only the main thread's, unlike asyncio); several loops may
//! handle the same signal, and each gets every delivery. `signal-hook` never restores the
//! default disposition: once a signal has had a handler, it stays caught (with no action
//! after the last removal) for the rest of the process.
//!
//! The process counts, per signal, the loops that have a handler now ([`loops_handling`]):
//! incremented when a registration is stored, decremented when it is removed (by
//! `remove_signal_handler` or the loop's close). `spindle-policy`'s Ctrl-C handling reads it
//! from its signal-hook action to know whether anybody else takes `SIGINT`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use signal_hook::SigId;

use crate::EventLoop;

/// The signal numbers (`SIGTERM`, `SIGINT`, `SIGUSR1`, ...), as `signal-hook` spells them.
///
/// ```
/// use spindle_loop::io::signals::SIGTERM;
/// assert!(SIGTERM > 0);
/// ```
pub use signal_hook::consts::signal as signals;

/// One registration: the `signal-hook` action and the read end the loop watches.
struct Registration {
    id: SigId,
    reader: Rc<UnixStream>,
}

/// Signal numbers below this are counted in [`HANDLING_LOOPS`] (Linux's are 1..=64, the BSDs'
/// and macOS's fewer).
const COUNTED_SIGNALS: usize = 128;

/// How many loops of the process have a handler of each signal now, by signal number.
static HANDLING_LOOPS: [AtomicUsize; COUNTED_SIGNALS] =
    [const { AtomicUsize::new(0) }; COUNTED_SIGNALS];

fn handling_loops(sig: i32) -> Option<&'static AtomicUsize> {
    usize::try_from(sig)
        .ok()
        .and_then(|i| HANDLING_LOOPS.get(i))
}

/// How many loops of this process have a handler of signal `sig` now (added with
/// [`EventLoop::add_signal_handler`] or [`signal`], not yet removed); 0 for a number outside
/// the counted range (0..128). Async-signal-safe (one atomic load): a `signal-hook` action may
/// call it to know whether a loop will take the signal.
///
/// ```
/// use spindle_loop::{io::{loops_handling, signals::SIGWINCH}, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let before = loops_handling(SIGWINCH);
/// lp.add_signal_handler(SIGWINCH, || {})?;
/// assert_eq!(loops_handling(SIGWINCH), before + 1);
/// lp.remove_signal_handler(SIGWINCH);
/// assert_eq!(loops_handling(SIGWINCH), before);
/// # std::io::Result::Ok(())
/// ```
pub fn loops_handling(sig: i32) -> usize {
    handling_loops(sig).map_or(0, |n| n.load(Ordering::SeqCst))
}

/// A loop's signal registrations, by signal number.
#[derive(Default)]
pub(crate) struct Signals {
    map: HashMap<i32, Registration>,
}

impl Signals {
    /// Unregisters every action (the loop is closing; its watches go with `close_io`).
    pub(crate) fn clear(&mut self) {
        for (sig, registration) in self.map.drain() {
            signal_hook::low_level::unregister(registration.id);
            if let Some(n) = handling_loops(sig) {
                n.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

impl EventLoop {
    /// Calls `callback` on this loop (on its thread, in the iteration after delivery) each time
    /// signal `sig` arrives (asyncio's `add_signal_handler`; deliveries that arrive together
    /// may coalesce into one call). A second handler for the same signal on this loop replaces
    /// the first. See the module docs of `io::signal` for the protocol.
    ///
    /// Errors: `sig` may not be caught (`SIGKILL`, `SIGSTOP`, `SIGSEGV`, ...: `signal-hook`'s
    /// `FORBIDDEN`; `InvalidInput`), `sig` is no signal (the OS's `EINVAL`), the loop is closed
    /// ([`IoError::LoopClosed`](crate::io::IoError)), or no socket could be made.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// use spindle_loop::{io::signals::SIGUSR2, EventLoop};
    ///
    /// let lp = EventLoop::new().unwrap();
    /// let seen = Rc::new(Cell::new(false));
    /// let (s, l) = (seen.clone(), lp.clone());
    /// lp.add_signal_handler(SIGUSR2, move || { s.set(true); l.stop(); })?;
    /// rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::USR2)?;
    /// lp.run_forever().unwrap();
    /// assert!(seen.get());
    /// assert!(lp.remove_signal_handler(SIGUSR2));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn add_signal_handler<F>(&self, sig: i32, callback: F) -> io::Result<()>
    where
        F: FnMut() + 'static,
    {
        self.register_signal_handler(sig, callback).map(drop)
    }

    /// [`add_signal_handler`](Self::add_signal_handler), returning the registration's id (so
    /// a [`SignalFuture`] removes its own handler only, not one that replaced it since).
    fn register_signal_handler<F>(&self, sig: i32, mut callback: F) -> io::Result<SigId>
    where
        F: FnMut() + 'static,
    {
        if self.is_closed() {
            return Err(crate::io::IoError::LoopClosed.into());
        }
        // signal-hook panics on these; asyncio raises a RuntimeError.
        if signal_hook::consts::FORBIDDEN.contains(&sig) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("signal {sig} cannot be caught"),
            ));
        }
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        let reader = Rc::new(reader);
        let drained = reader.clone();
        self.remove_signal_handler(sig);
        self.add_reader(reader.clone(), move || {
            let mut buf = [0; 64];
            while let Ok(1..) = (&*drained).read(&mut buf) {}
            callback();
        })?;
        let id = match signal_hook::low_level::pipe::register(sig, writer) {
            Ok(id) => id,
            Err(e) => {
                self.remove_reader(&*reader);
                return Err(e);
            }
        };
        self.signals()
            .borrow_mut()
            .map
            .insert(sig, Registration { id, reader });
        if let Some(n) = handling_loops(sig) {
            n.fetch_add(1, Ordering::SeqCst);
        }
        Ok(id)
    }

    /// Removes this loop's handler of `sig` (asyncio's `remove_signal_handler`); `true` if
    /// there was one. The signal stays caught by `signal-hook` (see the module docs).
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(!lp.remove_signal_handler(spindle_loop::io::signals::SIGUSR1));
    /// ```
    pub fn remove_signal_handler(&self, sig: i32) -> bool {
        self.remove_signal_registration(sig, None)
    }

    /// Removes this loop's handler of `sig` if it is registration `only` (any, for `None`).
    fn remove_signal_registration(&self, sig: i32, only: Option<SigId>) -> bool {
        let removed = {
            let mut signals = self.signals().borrow_mut();
            match (signals.map.get(&sig), only) {
                (Some(current), Some(id)) if current.id != id => None,
                _ => signals.map.remove(&sig),
            }
        };
        match removed {
            Some(registration) => {
                signal_hook::low_level::unregister(registration.id);
                self.remove_reader(&*registration.reader);
                if let Some(n) = handling_loops(sig) {
                    n.fetch_sub(1, Ordering::SeqCst);
                }
                true
            }
            None => false,
        }
    }

    fn signals(&self) -> &RefCell<Signals> {
        &self.inner.signals
    }
}

/// Waits for one delivery of signal `sig` on the loop running this thread: the handler is
/// registered now (a signal arriving before the first poll is not lost) with
/// [`EventLoop::add_signal_handler`], so it replaces this loop's handler of `sig`; dropping
/// the future removes that handler, unless another one has replaced it since (which stays).
/// `!Send`: it belongs to its loop.
///
/// Errors: no loop runs on this thread ([`IoError::NoRunningLoop`](crate::io::IoError)), and
/// those of `add_signal_handler`.
///
/// ```
/// use spindle_loop::{io::{signal, signals::SIGUSR1}, EventLoop};
/// use rustix::process::{getpid, kill_process, Signal};
///
/// let lp = EventLoop::new().unwrap();
/// lp.run_until_complete(async {
///     let usr1 = signal(SIGUSR1)?;
///     kill_process(getpid(), Signal::USR1)?;
///     usr1.await;
///     std::io::Result::Ok(())
/// }).unwrap()?;
/// # std::io::Result::Ok(())
/// ```
pub fn signal(sig: i32) -> io::Result<SignalFuture> {
    let lp = EventLoop::running().ok_or(crate::io::IoError::NoRunningLoop)?;
    let state = Rc::new(Delivery::default());
    let delivered = state.clone();
    let id = lp.register_signal_handler(sig, move || {
        delivered.fired.set(true);
        if let Some(waker) = delivered.waker.take() {
            waker.wake();
        }
    })?;
    Ok(SignalFuture { lp, sig, id, state })
}

#[derive(Default)]
struct Delivery {
    fired: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

/// The future of [`signal`]: ready once the signal has arrived.
///
/// ```
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// let not_yet = lp.run_until_complete(async {
///     let term = spindle_loop::io::signal(spindle_loop::io::signals::SIGUSR2)?;
///     std::io::Result::Ok(futures_lite::future::poll_once(term).await.is_none())
/// }).unwrap()?;
/// assert!(not_yet);
/// # std::io::Result::Ok(())
/// ```
pub struct SignalFuture {
    lp: EventLoop,
    sig: i32,
    /// This future's registration: what its drop removes, if it is still the loop's handler.
    id: SigId,
    state: Rc<Delivery>,
}

impl Future for SignalFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.fired.get() {
            return Poll::Ready(());
        }
        // The handler runs on this loop's thread, between polls: no race with this store.
        self.state.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for SignalFuture {
    fn drop(&mut self) {
        self.lp.remove_signal_registration(self.sig, Some(self.id));
    }
}

impl std::fmt::Debug for SignalFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalFuture")
            .field("sig", &self.sig)
            .field("fired", &self.state.fired.get())
            .finish()
    }
}
