//! [`Async<T>`]: any fd-owning I/O object, made async by its home loop's readiness.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use spindle_loop::io::Source;

/// An I/O object (a pipe, an eventfd, a foreign socket, a std socket) driven by spindle's I/O
/// readiness: operations try their syscall first and wait for readiness on `WouldBlock` (see
/// [`Source`]). Implements `futures_io::AsyncRead` / `AsyncWrite` where `&T` reads / writes,
/// and, with the `tokio-io` feature, tokio's traits.
///
/// `Send + Sync` when `T` is: it may be moved to a task on another worker, and used from a
/// stolen task; its readiness keeps coming from the loop where it first had to wait.
///
/// ```
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use spindle_net::Async;
///
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// let (mut a, mut b) = (Async::new(a)?, Async::new(b)?);
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// let echoed = lp.run_until_complete(async move {
///     a.write_all(b"over a pipe-like socket").await?;
///     let mut buf = vec![0; 23];
///     b.read_exact(&mut buf).await?;
///     std::io::Result::Ok(buf)
/// }).unwrap()?;
/// assert_eq!(echoed, b"over a pipe-like socket");
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
pub struct Async<T: AsFd> {
    source: Source<T>,
}

impl<T: AsFd> Async<T> {
    /// Wraps `io`, switching it to non-blocking mode.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_net::Async::new(a)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn new(io: T) -> io::Result<Self> {
        Ok(Async {
            source: Source::new(io)?,
        })
    }

    /// Wraps `io` whose fd is already non-blocking (see [`Source::from_nonblocking`]).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// a.set_nonblocking(true)?;
    /// let a = spindle_net::Async::from_nonblocking(a);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_nonblocking(io: T) -> Self {
        Async {
            source: Source::from_nonblocking(io),
        }
    }

    /// The I/O object.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_net::Async::new(a)?;
    /// assert!(a.get_ref().peer_addr().is_ok());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_ref(&self) -> &T {
        self.source.get_ref()
    }

    /// The I/O object, mutably.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut a = spindle_net::Async::new(a)?;
    /// let _ = a.get_mut();
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.source.get_mut()
    }

    /// Deregisters and gives the I/O object back (still non-blocking).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_net::Async::new(a)?.into_inner();
    /// # std::io::Result::Ok(())
    /// ```
    pub fn into_inner(self) -> T {
        self.source.into_inner()
    }

    /// The underlying readiness source (registration, home loop).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// assert!(spindle_net::Async::new(a)?.source().home_loop().is_none());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn source(&self) -> &Source<T> {
        &self.source
    }

    /// Runs `op` until it does not say `WouldBlock`, waiting for read readiness in between.
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_net::Async::new(a)?;
    /// std::io::Write::write_all(&mut &b, b"!")?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let mut buf = [0; 1];
    /// let n = lp.run_until_complete(async move { a.read_with(|mut s| s.read(&mut buf)).await })
    ///     .unwrap()?;
    /// assert_eq!(n, 1);
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.source.read_with(op).await
    }

    /// Runs `op` until it does not say `WouldBlock`, waiting for write readiness in between.
    ///
    /// ```
    /// use std::io::Write;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_net::Async::new(a)?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let n = lp.run_until_complete(async move { a.write_with(|mut s| s.write(b"!")).await })
    ///     .unwrap()?;
    /// assert_eq!(n, 1);
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.source.write_with(op).await
    }

    /// Polls `op` for reading (see [`Source::poll_read_with`]).
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_net::Async::new(a)?;
    /// std::io::Write::write_all(&mut &b, b"!")?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let mut buf = [0; 1];
    /// let n = lp.run_until_complete(async move {
    ///     std::future::poll_fn(|cx| a.poll_read_with(cx, |mut s| s.read(&mut buf))).await
    /// }).unwrap()?;
    /// assert_eq!(n, 1);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn poll_read_with<R>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.source.poll_read_with(cx, op)
    }

    /// Polls `op` for writing (see [`Source::poll_write_with`]).
    ///
    /// ```
    /// use std::io::Write;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_net::Async::new(a)?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let n = lp.run_until_complete(async move {
    ///     std::future::poll_fn(|cx| a.poll_write_with(cx, |mut s| s.write(b"!"))).await
    /// }).unwrap()?;
    /// assert_eq!(n, 1);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn poll_write_with<R>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.source.poll_write_with(cx, op)
    }

    /// Waits until the loop reports the object readable (see [`Source::readable`]).
    ///
    /// ```
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_net::Async::new(a)?;
    /// std::io::Write::write_all(&mut &b, b"!")?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async move { a.readable().await }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        self.source.readable().await
    }

    /// Waits until the loop reports the object writable (see [`Source::writable`]).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = spindle_net::Async::new(a)?;
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// lp.run_until_complete(async move { a.writable().await }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        self.source.writable().await
    }
}

impl<T: AsFd> AsFd for Async<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.source.as_fd()
    }
}

/// The sockets built on an `Async<T>`: what the trait impls of every flavour (futures-io,
/// tokio, hyper) need from them.
pub(crate) trait AsAsync {
    type Io: AsFd;
    fn as_async(&self) -> &Async<Self::Io>;
    /// `shutdown(Write)`: what closing the writing side means for this socket.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl<S: AsAsync> AsAsync for &S {
    type Io = S::Io;
    fn as_async(&self) -> &Async<Self::Io> {
        (**self).as_async()
    }
    fn shutdown_write(&self) -> io::Result<()> {
        (**self).shutdown_write()
    }
}

/// The poll functions behind every trait impl (futures-io, tokio, hyper) of `Async<T>` and of
/// the sockets built on it. `stream`: a byte stream, where a transfer shorter than asked
/// clears the readiness (see [`Source::poll_read_stream`]); not for datagram sockets or a
/// generic `Async<T>`, where a short transfer says nothing about the queue.
pub(crate) fn poll_read<T: AsFd>(
    a: &Async<T>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
    stream: bool,
) -> Poll<io::Result<usize>>
where
    for<'a> &'a T: Read,
{
    let len = buf.len();
    let op = |mut io: &T| io.read(buf);
    if stream {
        a.source.poll_read_stream(cx, len, op)
    } else {
        a.source.poll_read_with(cx, op)
    }
}

pub(crate) fn poll_read_vectored<T: AsFd>(
    a: &Async<T>,
    cx: &mut Context<'_>,
    bufs: &mut [IoSliceMut<'_>],
    stream: bool,
) -> Poll<io::Result<usize>>
where
    for<'a> &'a T: Read,
{
    let len = bufs.iter().map(|b| b.len()).sum();
    let op = |mut io: &T| io.read_vectored(bufs);
    if stream {
        a.source.poll_read_stream(cx, len, op)
    } else {
        a.source.poll_read_with(cx, op)
    }
}

pub(crate) fn poll_write<T: AsFd>(
    a: &Async<T>,
    cx: &mut Context<'_>,
    buf: &[u8],
    stream: bool,
) -> Poll<io::Result<usize>>
where
    for<'a> &'a T: Write,
{
    let op = |mut io: &T| io.write(buf);
    if stream {
        a.source.poll_write_stream(cx, buf.len(), op)
    } else {
        a.source.poll_write_with(cx, op)
    }
}

pub(crate) fn poll_write_vectored<T: AsFd>(
    a: &Async<T>,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
    stream: bool,
) -> Poll<io::Result<usize>>
where
    for<'a> &'a T: Write,
{
    let len = bufs.iter().map(|b| b.len()).sum();
    let op = |mut io: &T| io.write_vectored(bufs);
    if stream {
        a.source.poll_write_stream(cx, len, op)
    } else {
        a.source.poll_write_with(cx, op)
    }
}

pub(crate) fn poll_flush<T: AsFd>(a: &Async<T>, cx: &mut Context<'_>) -> Poll<io::Result<()>>
where
    for<'a> &'a T: Write,
{
    a.poll_write_with(cx, |mut io| io.flush())
}

/// futures-io's traits for a byte-stream socket built on an `Async<T>` (see `AsAsync`): reads
/// and writes clear the readiness when short, `close` shuts the writing side down.
macro_rules! stream_io {
    ($ty:ty) => {
        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut [u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $crate::async_io::poll_read(
                    $crate::async_io::AsAsync::as_async(&*self),
                    cx,
                    buf,
                    true,
                )
            }

            fn poll_read_vectored(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $crate::async_io::poll_read_vectored(
                    $crate::async_io::AsAsync::as_async(&*self),
                    cx,
                    bufs,
                    true,
                )
            }
        }

        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $crate::async_io::poll_write(
                    $crate::async_io::AsAsync::as_async(&*self),
                    cx,
                    buf,
                    true,
                )
            }

            fn poll_write_vectored(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                $crate::async_io::poll_write_vectored(
                    $crate::async_io::AsAsync::as_async(&*self),
                    cx,
                    bufs,
                    true,
                )
            }

            fn poll_flush(
                self: ::std::pin::Pin<&mut Self>,
                _cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::task::Poll::Ready(Ok(())) // a socket has no user-space buffer to flush
            }

            fn poll_close(
                self: ::std::pin::Pin<&mut Self>,
                _cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::task::Poll::Ready($crate::async_io::AsAsync::shutdown_write(&*self))
            }
        }
    };
}

pub(crate) use stream_io;

macro_rules! futures_io_impls {
    ($ty:ty) => {
        impl<T: AsFd> futures_io::AsyncRead for $ty
        where
            for<'a> &'a T: Read,
        {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                poll_read(&self, cx, buf, false)
            }

            fn poll_read_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                poll_read_vectored(&self, cx, bufs, false)
            }
        }

        impl<T: AsFd> futures_io::AsyncWrite for $ty
        where
            for<'a> &'a T: Write,
        {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                poll_write(&self, cx, buf, false)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                poll_write_vectored(&self, cx, bufs, false)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                poll_flush(&self, cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                poll_flush(&self, cx)
            }
        }
    };
}

futures_io_impls!(Async<T>);
futures_io_impls!(&Async<T>);
