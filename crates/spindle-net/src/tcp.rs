//! TCP: [`TcpListener`], [`TcpStream`] and its owned halves.

use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use socket2::{Domain, Protocol, Socket, Type};

use crate::async_io::{AsAsync, Async};

/// Resolves `addr` (a literal address resolves at once; a host name goes through the
/// system resolver on this thread, as `std` does: resolve it with `to_thread` first if that
/// may be slow).
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to no socket address",
        ));
    }
    Ok(addrs)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_reuse_port(_: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "one SO_REUSEPORT listener per worker is supported on Linux and Android only",
    ))
}

/// A TCP listening socket.
///
/// ```
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use spindle_net::{TcpListener, TcpStream};
///
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// let inner = lp.clone();
/// let reply = lp.run_until_complete(async move {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let server = inner.create_task(async move {
///         let (mut conn, _) = listener.accept().await?;
///         let mut buf = [0; 4];
///         conn.read_exact(&mut buf).await?;
///         conn.write_all(&buf).await?;
///         std::io::Result::Ok(())
///     }).unwrap();
///     let mut client = TcpStream::connect(addr).await?;
///     client.write_all(b"ping").await?;
///     let mut buf = [0; 4];
///     client.read_exact(&mut buf).await?;
///     server.await.unwrap()?;
///     std::io::Result::Ok(buf)
/// }).unwrap()?;
/// assert_eq!(&reply, b"ping");
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
pub struct TcpListener {
    inner: Async<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (the first resolved address that binds), with `SO_REUSEADDR` set as
    /// asyncio's `create_server` does on Unix, and the system's default backlog.
    ///
    /// ```
    /// let listener = spindle_net::TcpListener::bind("127.0.0.1:0")?;
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with_backlog(addr, 1024)
    }

    /// [`bind`](Self::bind) with a listen backlog of `backlog` pending connections.
    ///
    /// ```
    /// let listener = spindle_net::TcpListener::bind_with_backlog("127.0.0.1:0", 16)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn bind_with_backlog(addr: impl ToSocketAddrs, backlog: i32) -> io::Result<TcpListener> {
        Self::bind_first(&resolve(addr)?, backlog, false)
    }

    /// Binds to the first of `addrs` that binds, with `SO_REUSEADDR`, and `SO_REUSEPORT` too
    /// when `reuse_port` (Linux and Android; elsewhere that is an `Unsupported` error).
    pub(crate) fn bind_first(
        addrs: &[SocketAddr],
        backlog: i32,
        reuse_port: bool,
    ) -> io::Result<TcpListener> {
        let mut last = None;
        for &addr in addrs {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            if reuse_port {
                set_reuse_port(&socket)?;
            }
            match socket
                .bind(&addr.into())
                .and_then(|()| socket.listen(backlog))
            {
                Ok(()) => return Self::from_std(socket.into()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable)))
    }

    /// Wraps a std listener (switched to non-blocking mode).
    ///
    /// ```
    /// let std = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let listener = spindle_net::TcpListener::from_std(std)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: Async::new(listener)?,
        })
    }

    /// Accepts a connection. Errors of `accept(2)` come back as they are (for example
    /// `EMFILE` when the process is out of file descriptors: the listener keeps working once
    /// some are freed, and the pending connection stays in the kernel's backlog).
    ///
    /// ```
    /// # use spindle_net::{TcpListener, TcpStream};
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (conn, peer) = listener.accept().await?;
    ///     assert_eq!(peer, client.local_addr()?);
    ///     std::io::Result::Ok(())
    /// }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a connection (see [`accept`](Self::accept)).
    ///
    /// ```
    /// # use spindle_net::{TcpListener, TcpStream};
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let _client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (_conn, _peer) = std::future::poll_fn(|cx| listener.poll_accept(cx)).await?;
    ///     std::io::Result::Ok(())
    /// }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        // accept4 with SOCK_NONBLOCK: the new socket needs no ioctl of its own.
        let flags = rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC;
        let accepted = self.inner.poll_read_with(cx, |l| {
            let (fd, peer) = rustix::net::acceptfrom_with(l, flags)?;
            let peer = peer
                .and_then(|addr| SocketAddr::try_from(addr).ok())
                .ok_or_else(|| io::Error::other("accept gave no IP peer address"))?;
            Ok((fd, peer))
        });
        accepted.map_ok(|(fd, peer)| {
            let stream = std::net::TcpStream::from(fd);
            let stream = TcpStream {
                inner: Arc::new(Async::from_nonblocking(stream)),
            };
            (stream, peer)
        })
    }

    /// The connections as a stream (never ends; errors are items).
    ///
    /// ```
    /// use futures_lite::StreamExt;
    /// # use spindle_net::{TcpListener, TcpStream};
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let _client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let conn = listener.incoming().next().await.unwrap()?;
    ///     std::io::Result::Ok(())
    /// }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address.
    ///
    /// ```
    /// let listener = spindle_net::TcpListener::bind("127.0.0.1:0")?;
    /// assert!(listener.local_addr()?.ip().is_loopback());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// The std listener underneath.
    ///
    /// ```
    /// let listener = spindle_net::TcpListener::bind("127.0.0.1:0")?;
    /// assert_eq!(listener.get_ref().local_addr()?, listener.local_addr()?);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_ref(&self) -> &std::net::TcpListener {
        self.inner.get_ref()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

/// The stream of [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener
            .poll_accept(cx)
            .map(|accepted| Some(accepted.map(|(stream, _)| stream)))
    }
}

/// A TCP connection. Cheap to clone (the clones share the socket); `Send + Sync`.
///
/// Implements `futures_io::AsyncRead` / `AsyncWrite` (also on `&TcpStream`), and with the
/// `tokio-io` / `hyper` features tokio's and hyper's I/O traits. A half-closed peer reads as
/// `Ok(0)`; writing to a connection the peer reset is an error, as with std.
///
/// One reader and one writer may wait at a time (for example the two halves of
/// [`into_split`](Self::into_split) in two tasks).
#[derive(Debug, Clone)]
pub struct TcpStream {
    inner: Arc<Async<std::net::TcpStream>>,
}

impl TcpStream {
    /// Connects to `addr` (each resolved address in turn), waiting for the handshake on the
    /// running loop. Put it under `spindle_loop::timeout` for a deadline: dropping the future
    /// closes the half-open socket.
    ///
    /// ```
    /// # use spindle_net::{TcpListener, TcpStream};
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    ///     std::io::Result::Ok(())
    /// }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in resolve(addr)? {
            match Self::connect_one(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable)))
    }

    async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let stream = Async::new(std::net::TcpStream::from(socket))?;
        // Writable once the handshake ends; then SO_ERROR says how it ended.
        stream.write_with(connect_finished).await?;
        Ok(TcpStream {
            inner: Arc::new(stream),
        })
    }

    /// Wraps a connected std stream (switched to non-blocking mode).
    ///
    /// ```
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let std = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let stream = spindle_net::TcpStream::from_std(std)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: Arc::new(Async::new(stream)?),
        })
    }

    /// The remote address.
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = spindle_net::TcpStream::from_std(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// assert_eq!(s.peer_addr()?, listener.local_addr()?);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The local address.
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = spindle_net::TcpStream::from_std(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// assert!(s.local_addr()?.ip().is_loopback());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = spindle_net::TcpStream::from_std(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// s.set_nodelay(true)?;
    /// assert!(s.nodelay()?);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = spindle_net::TcpStream::from_std(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// assert!(!s.nodelay()?);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get_ref().nodelay()
    }

    /// Shuts down the read, write, or both halves (`shutdown(2)`): after `Shutdown::Write`
    /// the peer reads end-of-stream.
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = spindle_net::TcpStream::from_std(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// s.shutdown(std::net::Shutdown::Write)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)
    }

    /// Reads without removing the data from the socket's queue.
    ///
    /// ```
    /// # use spindle_net::{TcpListener, TcpStream};
    /// use futures_lite::AsyncWriteExt;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (conn, _) = listener.accept().await?;
    ///     client.write_all(b"hey").await?;
    ///     let mut buf = [0; 3];
    ///     assert_eq!(conn.peek(&mut buf).await?, 3);
    ///     std::io::Result::Ok(())
    /// }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_with(|s| s.peek(buf)).await
    }

    /// Splits the stream into a read half and a write half, usable from two tasks (on two
    /// workers if they are `Send` tasks). Dropping the write half shuts the write side down.
    ///
    /// ```
    /// # use spindle_net::{TcpListener, TcpStream};
    /// use futures_lite::{AsyncReadExt, AsyncWriteExt};
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (conn, _) = listener.accept().await?;
    ///     let (mut read, mut write) = client.into_split();
    ///     write.write_all(b"x").await?;
    ///     let (mut r, mut w) = conn.into_split();
    ///     let mut buf = [0; 1];
    ///     r.read_exact(&mut buf).await?;
    ///     w.write_all(&buf).await?;
    ///     read.read_exact(&mut buf).await?;
    ///     std::io::Result::Ok(())
    /// }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf {
                stream: self.clone(),
            },
            OwnedWriteHalf {
                stream: self,
                shutdown_on_drop: true,
            },
        )
    }

    /// The id of the loop whose poller reports this socket's readiness (its home: the loop
    /// where it first had to wait), once it has one.
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = spindle_net::TcpStream::from_std(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// assert_eq!(s.home_loop(), None); // it never had to wait
    /// # std::io::Result::Ok(())
    /// ```
    pub fn home_loop(&self) -> Option<u64> {
        self.inner.source().home_loop()
    }

    /// The std stream underneath.
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = spindle_net::TcpStream::from_std(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// assert!(s.get_ref().peer_addr().is_ok());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_ref(&self) -> &std::net::TcpStream {
        self.inner.get_ref()
    }
}

/// Whether a non-blocking connect has finished: `WouldBlock` while it is under way, its error
/// if it failed, `Ok` once connected.
fn connect_finished(stream: &std::net::TcpStream) -> io::Result<()> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
            Err(io::Error::from(io::ErrorKind::WouldBlock))
        }
        Err(e) => Err(e),
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

/// The read half of [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    stream: TcpStream,
}

impl OwnedReadHalf {
    /// Joins the halves again (`None` if they came from different streams).
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = spindle_net::TcpStream::from_std(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// let (r, w) = s.into_split();
    /// assert!(r.reunite(w).is_some());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn reunite(self, write: OwnedWriteHalf) -> Option<TcpStream> {
        if !Arc::ptr_eq(&self.stream.inner, &write.stream.inner) {
            return None;
        }
        let mut write = write;
        // Rejoined: the write side stays open.
        write.shutdown_on_drop = false;
        drop(write);
        Some(self.stream)
    }

    /// The whole stream this half belongs to (peer address, options).
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = spindle_net::TcpStream::from_std(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// let (r, _w) = s.into_split();
    /// assert!(r.stream().peer_addr().is_ok());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// The write half of [`TcpStream::into_split`]; dropping it shuts the write side down.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    stream: TcpStream,
    shutdown_on_drop: bool,
}

impl OwnedWriteHalf {
    /// The whole stream this half belongs to (peer address, options).
    ///
    /// ```
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = spindle_net::TcpStream::from_std(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// let (_r, w) = s.into_split();
    /// assert!(w.stream().peer_addr().is_ok());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        // The peer sees end-of-stream, as with tokio's owned write half. An error (the peer
        // is already gone) changes nothing for anyone.
        if self.shutdown_on_drop {
            let _ = self.stream.shutdown(Shutdown::Write);
        }
    }
}

impl AsAsync for TcpStream {
    type Io = std::net::TcpStream;
    fn as_async(&self) -> &Async<std::net::TcpStream> {
        &self.inner
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl AsAsync for OwnedReadHalf {
    type Io = std::net::TcpStream;
    fn as_async(&self) -> &Async<std::net::TcpStream> {
        &self.stream.inner
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }
}

impl AsAsync for OwnedWriteHalf {
    type Io = std::net::TcpStream;
    fn as_async(&self) -> &Async<std::net::TcpStream> {
        &self.stream.inner
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }
}

crate::async_io::stream_io!(TcpStream);
crate::async_io::stream_io!(&TcpStream);
crate::async_io::stream_io!(OwnedReadHalf);
crate::async_io::stream_io!(OwnedWriteHalf);
