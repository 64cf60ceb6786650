//! hyper 1.x on spindle (feature `hyper`): its I/O traits for spindle sockets, and the
//! [`Timer`](hyper::rt::Timer) and [`Executor`](hyper::rt::Executor) it asks for;
//! [`FuturesIo`] for other futures-io streams (TLS); with the `hyper-server` feature, hyper's
//! servers with graceful shutdown wired to a [`Server`](crate::Server)'s (module `server`:
//! `graceful`, `serve_http1`, `serve_http2`, `serve_auto`, re-exported here).
//!
//! ```
//! use std::convert::Infallible;
//! use http_body_util::{BodyExt, Empty, Full};
//! use hyper::{body::Bytes, Request, Response};
//! use spindle_net::{hyper::SpindleExecutor, TcpListener, TcpStream};
//!
//! let lp = spindle_loop::EventLoop::new().unwrap();
//! let l = lp.clone();
//! let body = lp.run_until_complete(async move {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     l.create_task(async move {
//!         let (conn, _) = listener.accept().await.unwrap();
//!         let hello = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
//!             Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//!         });
//!         hyper::server::conn::http1::Builder::new()
//!             .serve_connection(conn, hello).await.unwrap();
//!     }).unwrap();
//!     let stream = TcpStream::connect(addr).await?;
//!     let (mut sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
//!     l.create_task(async move { let _ = conn.await; }).unwrap();
//!     let req = Request::get("/").body(Empty::<Bytes>::new()).unwrap();
//!     let resp = sender.send_request(req).await.unwrap();
//!     let body = resp.into_body().collect().await.unwrap().to_bytes();
//!     std::io::Result::Ok(body)
//! }).unwrap()?;
//! assert_eq!(&body[..], b"hello");
//! # std::io::Result::Ok(())
//! ```

use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Read, ReadBufCursor, Write};

#[cfg(feature = "hyper-server")]
#[path = "hyper_server.rs"]
pub mod server;
#[cfg(feature = "hyper-server")]
#[doc(no_inline)]
pub use server::{graceful, serve_auto, serve_http1, serve_http2, GracefulConnection};

use crate::async_io::{self, AsAsync, Async};
use crate::tcp::{OwnedReadHalf, OwnedWriteHalf, TcpStream};
use crate::unix::UnixStream;

/// Reads into hyper's uninitialised buffer without zeroing it first.
fn poll_read_cursor<T: AsFd>(
    io: &Async<T>,
    cx: &mut Context<'_>,
    mut cursor: ReadBufCursor<'_>,
) -> Poll<io::Result<()>> {
    // SAFETY: `as_mut` hands out the cursor's unfilled (possibly uninitialised) bytes; we
    // only let `read(2)` write into them (rustix's `read` takes `&mut [MaybeUninit<u8>]`
    // and never reads them), and `advance` below counts exactly the bytes it initialised.
    let unfilled: &mut [MaybeUninit<u8>] = unsafe { cursor.as_mut() };
    let len = unfilled.len();
    let n = ready!(io.source().poll_read_stream(cx, len, |fd| {
        rustix::io::read(fd, &mut *unfilled)
            .map(|(filled, _)| filled.len())
            .map_err(io::Error::from)
    }))?;
    // SAFETY: `read` initialised the first `n` bytes of the unfilled part (see above).
    unsafe { cursor.advance(n) };
    Poll::Ready(Ok(()))
}

macro_rules! hyper_io {
    ($ty:ty) => {
        impl Read for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: ReadBufCursor<'_>,
            ) -> Poll<io::Result<()>> {
                poll_read_cursor(AsAsync::as_async(&*self), cx, buf)
            }
        }

        impl Write for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                async_io::poll_write(AsAsync::as_async(&*self), cx, buf, true)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                async_io::poll_write_vectored(AsAsync::as_async(&*self), cx, bufs, true)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(())) // sockets have no user-space buffer
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(AsAsync::shutdown_write(&*self))
            }
        }
    };
}

hyper_io!(TcpStream);
hyper_io!(OwnedReadHalf);
hyper_io!(OwnedWriteHalf);
hyper_io!(UnixStream);

/// hyper's I/O traits for any futures-io stream: a TLS stream (futures-rustls' `TlsStream`
/// over a spindle [`TcpStream`]), a compat wrapper, a test double. spindle's own sockets
/// implement hyper's traits directly and need no wrapper.
///
/// futures-io reads into initialised bytes and hyper hands out uninitialised ones: each
/// read zeroes up to [`FuturesIo::MAX_READ`] bytes of hyper's buffer (one TLS record's
/// worth) and reads into them. Vectored writes go through `poll_write_vectored`; flush and
/// shutdown are futures-io's `poll_flush` and `poll_close`.
///
/// ```
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use spindle_net::{hyper::FuturesIo, UnixStream};
///
/// // A hyper client over any futures-io stream (here a plain socket, for brevity).
/// let (a, b) = UnixStream::pair()?;
/// let io = FuturesIo::new(a);
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// let mut b = b;
/// let request = lp.run_until_complete(async move {
///     let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, String>(io).await.unwrap();
///     spindle_loop::spawn_local(async move { let _ = conn.await; }).unwrap();
///     spindle_loop::spawn_local(async move {
///         let _ = sender.send_request(hyper::Request::get("/x").body(String::new()).unwrap()).await;
///     }).unwrap();
///     let mut head = [0; 14];
///     b.read_exact(&mut head).await?;
///     std::io::Result::Ok(head)
/// }).unwrap()?;
/// assert_eq!(&request, b"GET /x HTTP/1.");
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug, Default)]
pub struct FuturesIo<T> {
    inner: T,
}

impl<T> FuturesIo<T> {
    /// How many bytes one read asks the wrapped stream for, at most.
    pub const MAX_READ: usize = 16 * 1024;

    /// Wraps `inner`.
    ///
    /// ```
    /// let (a, _b) = spindle_net::UnixStream::pair()?;
    /// let io = spindle_net::hyper::FuturesIo::new(a);
    /// # drop(io);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn new(inner: T) -> FuturesIo<T> {
        FuturesIo { inner }
    }

    /// The wrapped stream.
    ///
    /// ```
    /// let (a, _b) = spindle_net::UnixStream::pair()?;
    /// let io = spindle_net::hyper::FuturesIo::new(a);
    /// assert!(io.get_ref().peer_addr().is_ok());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    ///
    /// ```
    /// let (a, _b) = spindle_net::UnixStream::pair()?;
    /// let mut io = spindle_net::hyper::FuturesIo::new(a);
    /// let _stream: &mut spindle_net::UnixStream = io.get_mut();
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    ///
    /// ```
    /// let (a, _b) = spindle_net::UnixStream::pair()?;
    /// let a: spindle_net::UnixStream = spindle_net::hyper::FuturesIo::new(a).into_inner();
    /// # drop(a);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: futures_io::AsyncRead + Unpin> Read for FuturesIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut cursor: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: we only write into the unfilled bytes (zeroes, then the inner read's bytes)
        // and `advance` below counts only bytes initialised here.
        let unfilled: &mut [MaybeUninit<u8>] = unsafe { cursor.as_mut() };
        let len = unfilled.len().min(Self::MAX_READ);
        let unfilled = &mut unfilled[..len];
        for byte in unfilled.iter_mut() {
            byte.write(0);
        }
        // SAFETY: every byte of `unfilled` was initialised just above, and `MaybeUninit<u8>`
        // has `u8`'s layout.
        let init: &mut [u8] = unsafe { &mut *(unfilled as *mut [MaybeUninit<u8>] as *mut [u8]) };
        let n = ready!(Pin::new(&mut self.inner).poll_read(cx, init))?;
        if n > len {
            return Poll::Ready(Err(io::Error::other(
                "FuturesIo: the stream reported more bytes read than the buffer holds",
            )));
        }
        // SAFETY: the first `n <= len` unfilled bytes are initialised (zeroed, then read into).
        unsafe { cursor.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: futures_io::AsyncWrite + Unpin> Write for FuturesIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// hyper's timer: spindle's `sleep` (a `Send + Sync` future whose timer lives on the loop
/// where it is first polled).
///
/// ```
/// let builder = hyper::server::conn::http1::Builder::new()
///     .timer(spindle_net::hyper::SpindleTimer)
///     .header_read_timeout(std::time::Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SpindleTimer;

/// The sleep future of [`SpindleTimer`].
pub struct SpindleSleep(spindle_loop::Sleep);

impl Future for SpindleSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for SpindleSleep {}

impl hyper::rt::Timer for SpindleTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SpindleSleep(spindle_loop::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SpindleSleep(spindle_loop::sleep_until(deadline)))
    }
}

/// hyper's executor for its background tasks (HTTP/2 streams, client connections): a
/// stealable task on the runtime this thread belongs to, else a task on the loop running
/// here. With neither, the future is dropped and an error event is logged (hyper cannot be
/// told).
///
/// ```
/// let builder = hyper::server::conn::http2::Builder::new(spindle_net::hyper::SpindleExecutor);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SpindleExecutor;

impl<F> hyper::rt::Executor<F> for SpindleExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        match spindle_policy::spawn(fut) {
            Ok(task) => drop(task), // detached: runs on
            Err(refused) => {
                if let Err(refused) = spindle_loop::spawn_local(refused.into_inner()) {
                    tracing::error!(
                        reason = %refused.reason(),
                        "spindle: hyper's background task was dropped: no runtime or loop runs here"
                    );
                }
            }
        }
    }
}

/// hyper's executor for `!Send` services and bodies (`http2::Builder` with a local
/// executor): tasks on the loop running on this thread, which never leave it.
///
/// ```
/// let builder = hyper::server::conn::http2::Builder::new(spindle_net::hyper::LocalExecutor);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalExecutor;

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        if let Err(refused) = spindle_loop::spawn_local(fut) {
            tracing::error!(
                reason = %refused.reason(),
                "spindle: hyper's local task was dropped: no loop runs here"
            );
        }
    }
}
