//! [`Source`]: an fd-owning I/O object whose readiness comes from a spindle loop.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use crate::remote::poller::Mode;

use super::coop;
use super::reactor::{Entry, Reactor};
use super::readiness::{Direction, Readiness, Shutdown};
use super::IoError;
use crate::context;

/// Where a source is registered: its home loop's reactor and its key there.
struct Home {
    reactor: Arc<Reactor>,
    key: usize,
}

/// An I/O object (a socket, a pipe, any [`AsFd`]) driven by readiness from a spindle loop.
///
/// Operations try their syscall first, wherever the task runs; only when it says
/// `WouldBlock` does the task wait. The first `WouldBlock` registers the fd
/// (edge-triggered) with the loop running on that thread, its **home loop**; from then on that
/// loop's poller reports its readiness and wakes whichever task waits, on whatever thread it
/// runs (a stolen task keeps getting its wake-ups). One reader and one writer may wait at a
/// time (a socket split into halves used by two tasks); a second waiter of the same direction
/// replaces the first.
///
/// A `Source` owns its I/O object, and drops it only after deleting its fd from the poller,
/// so the poller never watches a closed (or reused) fd. It is `Send + Sync` when `T` is.
/// When its home loop closes, waiting operations fail with [`IoError::LoopClosed`].
///
/// The fd must be in non-blocking mode (see [`Source::new`]).
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use spindle_loop::{io::Source, EventLoop};
///
/// let (a, b) = UnixStream::pair()?;
/// let (a, b) = (Source::new(a)?, Source::new(b)?);
/// let lp = EventLoop::new().unwrap();
/// let got = lp.run_until_complete(async move {
///     b.write_with(|mut s| s.write(b"ping")).await?;
///     let mut buf = [0; 4];
///     let n = a.read_with(|mut s| s.read(&mut buf)).await?;
///     std::io::Result::Ok(buf[..n].to_vec())
/// }).unwrap()?;
/// assert_eq!(got, b"ping");
/// # std::io::Result::Ok(())
/// ```
pub struct Source<T: AsFd> {
    /// `None` only after `into_inner` took it (then `Drop` has nothing to close).
    io: Option<T>,
    readiness: Arc<Readiness>,
    home: OnceLock<Home>,
    /// Serialises the first registration (two halves may `WouldBlock` at once on two threads).
    registering: Mutex<()>,
}

impl<T: AsFd> Source<T> {
    /// Wraps `io`, switching its fd to non-blocking mode. Nothing is registered yet: that
    /// happens at the first `WouldBlock`, with the loop running then.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_loop::io::Source::new(a)?;
    /// assert!(a.home_loop().is_none());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn new(io: T) -> io::Result<Self> {
        set_nonblocking(io.as_fd())?;
        Ok(Self::from_nonblocking(io))
    }

    /// Wraps `io` whose fd is already in non-blocking mode (made with `SOCK_NONBLOCK`, say):
    /// [`new`](Self::new) without its `ioctl`. If the fd is in fact blocking, operations
    /// block the loop's thread instead of waiting; nothing unsound happens.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// let a = spindle_loop::io::Source::from_nonblocking(a);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_nonblocking(io: T) -> Self {
        Source {
            io: Some(io),
            readiness: Arc::new(Readiness::new()),
            home: OnceLock::new(),
            registering: Mutex::new(()),
        }
    }

    /// The I/O object.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_loop::io::Source::new(a)?;
    /// assert!(a.get_ref().peer_addr().is_ok());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_ref(&self) -> &T {
        // `io` is `None` only inside `into_inner`, which consumes `self`.
        self.io
            .as_ref()
            .expect("a Source's I/O object is present until into_inner")
    }

    /// The I/O object, mutably (do not replace its fd: the poller may watch it).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut a = spindle_loop::io::Source::new(a)?;
    /// let _ = a.get_mut();
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.io
            .as_mut()
            .expect("a Source's I/O object is present until into_inner")
    }

    /// Deregisters and gives the I/O object back (still non-blocking).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_loop::io::Source::new(a)?.into_inner();
    /// assert!(a.peer_addr().is_ok());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn into_inner(mut self) -> T {
        self.deregister();
        self.io
            .take()
            .expect("a Source's I/O object is present until into_inner")
    }

    /// The id of the loop this source is registered with, once it is.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// assert_eq!(spindle_loop::io::Source::new(a)?.home_loop(), None);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn home_loop(&self) -> Option<u64> {
        self.home.get().map(|home| home.reactor.loop_id())
    }

    /// Runs `op` until it does not say `WouldBlock`, waiting for read readiness in between.
    /// `Pending` (after storing `cx`'s waker) when the source is not readable; an error when
    /// it must wait but no spindle loop runs on this thread, or its home loop has closed.
    ///
    /// A task that keeps finding its source ready is made to yield after a budget of
    /// operations per step (as tokio's `coop`), so it cannot starve its loop.
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::io::Read;
    /// # let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// # std::io::Write::write_all(&mut &b, b"x")?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let n = lp.run_until_complete(async move {
    ///     let mut buf = [0; 8];
    ///     poll_fn(|cx| a.poll_read_with(cx, |mut s| s.read(&mut buf))).await
    /// }).unwrap()?;
    /// assert_eq!(n, 1);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn poll_read_with<R>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_with(cx, Direction::Read, op)
    }

    /// [`poll_read_with`](Self::poll_read_with) for writing.
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::io::Write;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let n = lp.run_until_complete(async move {
    ///     poll_fn(|cx| a.poll_write_with(cx, |mut s| s.write(b"hi"))).await
    /// }).unwrap()?;
    /// assert_eq!(n, 2);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn poll_write_with<R>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_with(cx, Direction::Write, op)
    }

    /// [`poll_read_with`](Self::poll_read_with) for a byte stream (TCP, Unix stream, pipe):
    /// `op` reads into a buffer of `len` bytes. A read shorter than `len` drained the kernel's
    /// buffer, so the readiness is cleared and the next call waits for the loop's next event
    /// instead of making a syscall that would say `WouldBlock` (as tokio does). Not for
    /// datagram sockets, where a short read says nothing about the queue.
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::io::Read;
    /// # let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// # std::io::Write::write_all(&mut &b, b"abc")?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let n = lp.run_until_complete(async move {
    ///     let mut buf = [0; 8];
    ///     poll_fn(|cx| a.poll_read_stream(cx, buf.len(), |mut s| s.read(&mut buf))).await
    /// }).unwrap()?;
    /// assert_eq!(n, 3);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn poll_read_stream(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        op: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_stream(cx, Direction::Read, len, op)
    }

    /// [`poll_write_with`](Self::poll_write_with) for a byte stream: a write shorter than `len`
    /// filled the kernel's buffer, so the readiness is cleared (see
    /// [`poll_read_stream`](Self::poll_read_stream)).
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::io::Write;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let n = lp.run_until_complete(async move {
    ///     poll_fn(|cx| a.poll_write_stream(cx, 2, |mut s| s.write(b"hi"))).await
    /// }).unwrap()?;
    /// assert_eq!(n, 2);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn poll_write_stream(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        op: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_stream(cx, Direction::Write, len, op)
    }

    /// [`poll_read_with`](Self::poll_read_with) as a future.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// # let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let writer = std::thread::spawn(move || (&b).write_all(b"late"));
    /// let mut buf = [0; 4];
    /// let n = lp.run_until_complete(async move { a.read_with(|mut s| s.read(&mut buf)).await })
    ///     .unwrap()?;
    /// assert_eq!(n, 4);
    /// writer.join().unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        std::future::poll_fn(|cx| self.poll_with(cx, Direction::Read, &mut op)).await
    }

    /// [`poll_write_with`](Self::poll_write_with) as a future.
    ///
    /// ```
    /// use std::io::Write;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let n = lp.run_until_complete(async move { a.write_with(|mut s| s.write(b"x")).await })
    ///     .unwrap()?;
    /// assert_eq!(n, 1);
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        std::future::poll_fn(|cx| self.poll_with(cx, Direction::Write, &mut op)).await
    }

    /// Waits until the loop reports the source readable (registering it first if needed).
    /// The readiness may be stale by the time the caller acts: the next syscall can still say
    /// `WouldBlock`, and the caller then waits again (a new source counts as ready).
    ///
    /// ```
    /// # let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// # std::io::Write::write_all(&mut &b, b"x")?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async move { a.readable().await }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_readable(cx)).await
    }

    /// Waits until the loop reports the source writable; see [`readable`](Self::readable).
    ///
    /// ```
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async move { a.writable().await }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_writable(cx)).await
    }

    /// Polls for read readiness: `Ready` when the loop reports the source readable (a new
    /// source counts as ready), else `Pending` with `cx`'s waker stored, after registering
    /// the source with the running loop if it has no home yet. For callers that make their
    /// own syscall: after a `WouldBlock`, call [`clear_readable`](Self::clear_readable)
    /// before polling again, or this keeps answering `Ready`.
    ///
    /// ```
    /// # let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// # std::io::Write::write_all(&mut &b, b"x")?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async move { std::future::poll_fn(|cx| a.poll_readable(cx)).await })
    ///     .unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ensure_registered()?;
        self.poll_ready(cx, Direction::Read).map_ok(|_| ())
    }

    /// Polls for write readiness; see [`poll_readable`](Self::poll_readable).
    ///
    /// ```
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async move { std::future::poll_fn(|cx| a.poll_writable(cx)).await })
    ///     .unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ensure_registered()?;
        self.poll_ready(cx, Direction::Write).map_ok(|_| ())
    }

    /// Forgets the read readiness the loop reported (the caller's own syscall said
    /// `WouldBlock`), so the next [`poll_readable`](Self::poll_readable) waits for a new
    /// event. An event that arrives after this call is kept.
    ///
    /// ```
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// a.clear_readable(); // a new source counts as readable until told otherwise
    /// # std::io::Result::Ok(())
    /// ```
    pub fn clear_readable(&self) {
        if let Some(event) = self.readiness.last_seen(Direction::Read) {
            self.readiness.clear(event);
        }
    }

    /// Forgets the write readiness; see [`clear_readable`](Self::clear_readable).
    ///
    /// ```
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// # let a = spindle_loop::io::Source::new(a)?;
    /// a.clear_writable();
    /// # std::io::Result::Ok(())
    /// ```
    pub fn clear_writable(&self) {
        if let Some(event) = self.readiness.last_seen(Direction::Write) {
            self.readiness.clear(event);
        }
    }

    fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<super::readiness::ReadyEvent>> {
        self.readiness
            .poll_ready(cx, direction)
            .map_err(|Shutdown| IoError::LoopClosed.into())
    }

    fn poll_with<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        if coop::poll_budget(cx).is_pending() {
            return Poll::Pending;
        }
        loop {
            let event = match self.poll_ready(cx, direction) {
                Poll::Ready(Ok(event)) => event,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readiness.clear(event);
                    if let Err(e) = self.ensure_registered() {
                        return Poll::Ready(Err(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                done => {
                    coop::consume();
                    return Poll::Ready(done);
                }
            }
        }
    }

    fn poll_stream(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        len: usize,
        mut op: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let mut seen = None;
        let done = self.poll_with(cx, direction, |io| {
            let event = self.readiness.last_seen(direction);
            let n = op(io)?;
            seen = Some((event, n));
            Ok(n)
        });
        if let (Poll::Ready(Ok(_)), Some((Some(event), n))) = (&done, seen) {
            // Short: the kernel's buffer was drained (filled). Cleared only once registered,
            // so that the next data (space) brings an event; a registration that fails keeps
            // the readiness, and the next call simply tries the syscall.
            // Only where the poller reports end of stream apart (the closed bits, epoll):
            // elsewhere the clear could sleep through a FIN that came with the data.
            if cfg!(target_os = "linux") && n > 0 && n < len && self.ensure_registered().is_ok() {
                self.readiness.clear_ready(event);
            }
        }
        done
    }

    /// Registers the fd with the loop running on this thread unless it has a home already.
    fn ensure_registered(&self) -> io::Result<()> {
        if self.home.get().is_some() {
            return Ok(());
        }
        let reactor = context::with_running(|lp| lp.map(|inner| inner.reactor().clone()))
            .ok_or(IoError::NoRunningLoop)?;
        let _guard = self.registering.lock().unwrap_or_else(|e| e.into_inner());
        if self.home.get().is_some() {
            return Ok(());
        }
        let fd = self.get_ref().as_fd();
        let entry = Entry::Source(fd.as_raw_fd(), self.readiness.clone());
        let key = reactor.register(fd, entry, true, true, Mode::Edge)?;
        let _ = self.home.set(Home { reactor, key });
        Ok(())
    }

    fn deregister(&mut self) {
        if let Some(home) = self.home.take() {
            home.reactor.deregister(home.key);
        }
        // Wakers of tasks that waited on this source: dropped here rather than kept alive
        // by a readiness state nobody will deliver to.
        drop(self.readiness.clear_wakers());
    }
}

impl<T: AsFd> Drop for Source<T> {
    fn drop(&mut self) {
        // Before `io` (which closes the fd) is dropped: the poller must not watch a closed fd.
        self.deregister();
    }
}

impl<T: AsFd> AsFd for Source<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("io", &self.io)
            .field("home_loop", &self.home_loop())
            .finish()
    }
}

/// Switches `fd` to non-blocking mode (one `ioctl(FIONBIO)`).
fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::io::ioctl_fionbio(fd, true)?;
    Ok(())
}
