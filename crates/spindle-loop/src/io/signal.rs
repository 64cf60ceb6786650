//! Unix signals on a loop: asyncio's `add_signal_handler` / `remove_signal_handler`, and a
//! [`signal`] future.
//!
//! A signal handler may only do async-signal-safe work, so the handler is signal-hook's
//! self-pipe (`signal_hook::low_level::pipe`): on the signal it writes a byte to a socket
//! pair whose other end the loop watches (`add_reader`), and the loop runs the callback on its
//! own thread, in its next iteration. Any loop may register (asyncio allows only the main
//! thread's); every loop that registered a signal runs its callback when it arrives.
//! No signal code of our own: signal-hook installs, chains and removes the handlers.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use signal_hook::SigId;

use super::{IoError, Source};
use crate::event_loop::EventLoop;

/// One registered signal of a loop: signal-hook's registration and the read end it writes to.
pub(crate) struct SignalWatch {
    id: SigId,
    read_end: Rc<UnixStream>,
}

/// Signals a process cannot (SIGKILL, SIGSTOP) or must not (SIGSEGV, SIGILL, SIGFPE) handle
/// here; signal-hook refuses them by panicking, so they are checked first.
fn check_signal(sig: i32) -> io::Result<()> {
    if signal_hook::consts::FORBIDDEN.contains(&sig) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {sig} cannot be handled by a loop (SIGKILL, SIGSTOP, SIGSEGV, SIGILL and SIGFPE are refused)"),
        ));
    }
    Ok(())
}

/// Reads everything the signal handler wrote (one byte per delivery; several deliveries may
/// have merged).
fn drain(mut read_end: &UnixStream) {
    let mut buf = [0u8; 64];
    while let Ok(1..) = read_end.read(&mut buf) {}
}

impl EventLoop {
    /// Calls `callback` on this loop whenever the process receives signal `sig` (asyncio's
    /// `add_signal_handler`); a second call for the same signal replaces the callback.
    /// Unix only. Several deliveries before the loop gets to run the callback may merge into
    /// one call.
    ///
    /// Errors: the loop is closed; `sig` is SIGKILL, SIGSTOP, SIGSEGV, SIGILL or SIGFPE
    /// (`InvalidInput`) or no signal at all.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// use spindle_loop::EventLoop;
    ///
    /// let lp = EventLoop::new().unwrap();
    /// let got = Rc::new(Cell::new(false));
    /// let (g, l) = (got.clone(), lp.clone());
    /// lp.add_signal_handler(spindle_loop::io::sig::SIGURG, move || { g.set(true); l.stop(); })?;
    /// // (a signal to ourselves; SIGURG is ignored by default, so a stray one harms nothing)
    /// spindle_loop::io::raise(spindle_loop::io::sig::SIGURG)?;
    /// lp.run_forever().unwrap();
    /// assert!(got.get());
    /// assert!(lp.remove_signal_handler(spindle_loop::io::sig::SIGURG));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn add_signal_handler<F>(&self, sig: i32, mut callback: F) -> io::Result<()>
    where
        F: FnMut() + 'static,
    {
        if self.is_closed() {
            return Err(IoError::LoopClosed.into());
        }
        check_signal(sig)?;
        self.remove_signal_handler(sig);
        let (read_end, write_end) = UnixStream::pair()?;
        read_end.set_nonblocking(true)?;
        let read_end = Rc::new(read_end);
        let id = signal_hook::low_level::pipe::register(sig, write_end)?;
        let reader = read_end.clone();
        let watched = self.add_reader(read_end.clone(), move || {
            drain(&reader);
            callback();
        });
        if let Err(e) = watched {
            signal_hook::low_level::unregister(id);
            return Err(e);
        }
        self.inner
            .watches()
            .borrow_mut()
            .signals
            .insert(sig, SignalWatch { id, read_end });
        Ok(())
    }

    /// Stops handling signal `sig` on this loop (asyncio's `remove_signal_handler`); `true`
    /// if it was handled. The signal's disposition is not restored to the default: a later
    /// delivery is ignored (signal-hook keeps its handler installed).
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// assert!(!lp.remove_signal_handler(spindle_loop::io::sig::SIGURG));
    /// ```
    pub fn remove_signal_handler(&self, sig: i32) -> bool {
        let removed = self.inner.watches().borrow_mut().signals.remove(&sig);
        let Some(watch) = removed else {
            return false;
        };
        // First: no more writes to a pipe about to close.
        signal_hook::low_level::unregister(watch.id);
        self.remove_reader(&*watch.read_end);
        true
    }
}

/// The loop is closing: every signal registration of its goes (the read ends are dropped
/// with the watches).
pub(crate) fn unregister_all(signals: &mut std::collections::HashMap<i32, SignalWatch>) {
    for (_, watch) in signals.drain() {
        signal_hook::low_level::unregister(watch.id);
    }
}

/// Waits for the next delivery of signal `sig` to the process (tokio's `signal`), on the
/// loop or runtime worker that polls it. The future is `Send`.
///
/// ```no_run
/// # let lp = spindle_loop::EventLoop::new().unwrap();
/// lp.run_until_complete(async {
///     spindle_loop::io::signal(spindle_loop::io::sig::SIGTERM).await?;
///     println!("terminating");
///     std::io::Result::Ok(())
/// }).unwrap()?;
/// # std::io::Result::Ok(())
/// ```
pub async fn signal(sig: i32) -> io::Result<()> {
    check_signal(sig)?;
    let (read_end, write_end) = UnixStream::pair()?;
    let registration = Registration(signal_hook::low_level::pipe::register(sig, write_end)?);
    let source = Source::new(read_end)?;
    let mut buf = [0u8; 64];
    let read = source.read_with(|mut s| s.read(&mut buf)).await;
    drop(registration);
    read.map(drop)
}

/// Sends signal `sig` to the calling thread (`raise(3)`), e.g. for tests.
///
/// ```
/// spindle_loop::io::raise(spindle_loop::io::sig::SIGWINCH)?; // ignored by default
/// # std::io::Result::Ok(())
/// ```
pub fn raise(sig: i32) -> io::Result<()> {
    check_signal(sig)?;
    signal_hook::low_level::raise(sig)
}

/// Unregisters on drop (the `signal` future dropped while waiting).
struct Registration(SigId);

impl Drop for Registration {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.0);
    }
}
