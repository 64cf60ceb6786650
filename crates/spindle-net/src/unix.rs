//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`].

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::async_io::{AsAsync, Async};

/// A Unix stream listener.
///
/// ```
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use spindle_net::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("spindle-doc-{}", std::process::id()));
/// let _ = std::fs::remove_file(&dir);
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// lp.run_until_complete({
///     let dir = dir.clone();
///     async move {
///         let listener = UnixListener::bind(&dir)?;
///         let mut client = UnixStream::connect(&dir).await?;
///         let (mut conn, _) = listener.accept().await?;
///         client.write_all(b"hi").await?;
///         let mut buf = [0; 2];
///         conn.read_exact(&mut buf).await?;
///         assert_eq!(&buf, b"hi");
///         std::io::Result::Ok(())
///     }
/// }).unwrap()?;
/// std::fs::remove_file(&dir)?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
pub struct UnixListener {
    inner: Async<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Binds to the socket file `path` (which must not exist yet).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("spindle-bind-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = spindle_net::UnixListener::bind(&path)?;
    /// std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        Self::from_std(std::os::unix::net::UnixListener::bind(path)?)
    }

    /// Wraps a std listener (switched to non-blocking mode).
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("spindle-fromstd-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let std = std::os::unix::net::UnixListener::bind(&path)?;
    /// let l = spindle_net::UnixListener::from_std(std)?;
    /// # std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            inner: Async::new(listener)?,
        })
    }

    /// Accepts a connection.
    ///
    /// See the type's example.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.inner.read_with(|l| l.accept()).await?;
        Ok((UnixStream::from_std(stream)?, addr))
    }

    /// The connections as a stream (never ends; errors are items).
    ///
    /// ```
    /// use futures_lite::StreamExt;
    /// # let path = std::env::temp_dir().join(format!("spindle-inc-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete({ let path = path.clone(); async move {
    ///     let l = spindle_net::UnixListener::bind(&path)?;
    ///     let _c = spindle_net::UnixStream::connect(&path).await?;
    ///     let _conn = l.incoming().next().await.unwrap()?;
    ///     std::io::Result::Ok(())
    /// }}).unwrap()?;
    /// # std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The local address.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("spindle-la-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let l = spindle_net::UnixListener::bind(&path)?;
    /// assert_eq!(l.local_addr()?.as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

/// The stream of [`UnixListener::incoming`].
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Stream for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let accepted = self.listener.inner.poll_read_with(cx, |l| l.accept());
        accepted.map(|r| Some(r.and_then(|(s, _)| UnixStream::from_std(s))))
    }
}

/// A Unix stream connection. Cheap to clone (the clones share the socket); `Send + Sync`.
#[derive(Debug, Clone)]
pub struct UnixStream {
    inner: Arc<Async<std::os::unix::net::UnixStream>>,
}

impl UnixStream {
    /// Connects to the socket file `path`. A Unix connect completes at once unless the
    /// listener's backlog is full; then it waits in the kernel, as std's does.
    ///
    /// See [`UnixListener`]'s example.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        Self::from_std(std::os::unix::net::UnixStream::connect(path)?)
    }

    /// A connected pair.
    ///
    /// ```
    /// let (a, b) = spindle_net::UnixStream::pair()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((Self::from_std(a)?, Self::from_std(b)?))
    }

    /// Wraps a std stream (switched to non-blocking mode).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_net::UnixStream::from_std(a)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: Arc::new(Async::new(stream)?),
        })
    }

    /// Shuts down the read, write, or both halves.
    ///
    /// ```
    /// let (a, _b) = spindle_net::UnixStream::pair()?;
    /// a.shutdown(std::net::Shutdown::Write)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)
    }

    /// The peer's address.
    ///
    /// ```
    /// let (a, _b) = spindle_net::UnixStream::pair()?;
    /// assert!(a.peer_addr()?.is_unnamed());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The std stream underneath.
    ///
    /// ```
    /// let (a, _b) = spindle_net::UnixStream::pair()?;
    /// assert!(a.get_ref().local_addr().is_ok());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_ref(&self) -> &std::os::unix::net::UnixStream {
        self.inner.get_ref()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsAsync for UnixStream {
    type Io = std::os::unix::net::UnixStream;
    fn as_async(&self) -> &Async<std::os::unix::net::UnixStream> {
        &self.inner
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

crate::async_io::stream_io!(UnixStream);
crate::async_io::stream_io!(&UnixStream);

/// A Unix datagram socket. Cheap to clone; `Send + Sync`.
///
/// ```
/// let (a, b) = spindle_net::UnixDatagram::pair()?;
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// let n = lp.run_until_complete(async move {
///     a.send(b"dgram").await?;
///     let mut buf = [0; 8];
///     b.recv(&mut buf).await
/// }).unwrap()?;
/// assert_eq!(n, 5);
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug, Clone)]
pub struct UnixDatagram {
    inner: Arc<Async<std::os::unix::net::UnixDatagram>>,
}

impl UnixDatagram {
    /// Binds to the socket file `path`.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("spindle-dg-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let s = spindle_net::UnixDatagram::bind(&path)?;
    /// # std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        Self::from_std(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address.
    ///
    /// ```
    /// let s = spindle_net::UnixDatagram::unbound()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        Self::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A connected pair.
    ///
    /// ```
    /// let (a, b) = spindle_net::UnixDatagram::pair()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((Self::from_std(a)?, Self::from_std(b)?))
    }

    /// Wraps a std socket (switched to non-blocking mode).
    ///
    /// ```
    /// let s = spindle_net::UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound()?)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: Arc::new(Async::new(socket)?),
        })
    }

    /// Sets the default peer.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("spindle-dgc-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let server = spindle_net::UnixDatagram::bind(&path)?;
    /// let client = spindle_net::UnixDatagram::unbound()?;
    /// client.connect(&path)?;
    /// # std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.inner.get_ref().connect(path)
    }

    /// Sends to `path`.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("spindle-dgs-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let server = spindle_net::UnixDatagram::bind(&path)?;
    /// let client = spindle_net::UnixDatagram::unbound()?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let p = path.clone();
    /// lp.run_until_complete(async move {
    ///     client.send_to(b"x", &p).await?;
    ///     let mut buf = [0; 1];
    ///     server.recv_from(&mut buf).await
    /// }).unwrap()?;
    /// # std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.inner.write_with(|s| s.send_to(buf, path)).await
    }

    /// Receives one datagram and its sender.
    ///
    /// See [`send_to`](Self::send_to).
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read_with(|s| s.recv_from(buf)).await
    }

    /// Sends to the connected peer.
    ///
    /// See the type's example.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_with(|s| s.send(buf)).await
    }

    /// Receives from the connected peer.
    ///
    /// See the type's example.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_with(|s| s.recv(buf)).await
    }

    /// The std socket underneath.
    ///
    /// ```
    /// let s = spindle_net::UnixDatagram::unbound()?;
    /// assert!(s.get_ref().local_addr().is_ok());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_ref(&self) -> &std::os::unix::net::UnixDatagram {
        self.inner.get_ref()
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}
