//! hyper's servers with their graceful shutdown wired to a [`Server`](crate::Server)'s
//! (feature `hyper-server`).
//!
//! # Protocol
//!
//! [`graceful`] drives a hyper connection future and the server's [`ShutdownSignal`]
//! together. Until the signal is raised, it is the connection. When it is raised
//! ([`ServerHandle::shutdown`](crate::ServerHandle::shutdown), after the listeners closed),
//! it calls the connection's `graceful_shutdown()` once and goes on driving it to its end:
//! hyper lets the requests in flight finish (their responses are written whole), closes an
//! idle HTTP/1 connection at once (kept alive, or not yet sent its first request), and sends
//! HTTP/2's `GOAWAY`. A connection
//! that outlives the server's `shutdown_timeout` is then cancelled by the server as any
//! other handler.
//!
//! [`serve_http1`], [`serve_http2`] and [`serve_auto`] (HTTP/1.1 or HTTP/2 prior
//! knowledge, by the first bytes; hyper-util's) build the connection with
//! [`SpindleTimer`] and [`SpindleExecutor`] and serve it so; with a builder of your own, pass
//! its connection to [`graceful`].
//!
//! ```
//! use std::convert::Infallible;
//! use http_body_util::Full;
//! use hyper::{body::Bytes, Request, Response};
//! use spindle_net::{Server, TcpStream};
//!
//! let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
//! let server = Server::bind("127.0.0.1:0");
//! let signal = server.shutdown_signal();
//! let server = server.serve(&rt, move |conn: TcpStream| {
//!     let hello = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
//!     });
//!     let signal = signal.clone();
//!     async move {
//!         let _ = spindle_net::hyper::serve_http1(conn, hello, signal).await;
//!     }
//! })?;
//! // ... requests ...
//! let outcome = rt.block_on(async move { server.shutdown().await }).unwrap();
//! assert!(outcome.graceful());
//! # std::io::Result::Ok(())
//! ```
//!
//! [`SpindleTimer`]: super::SpindleTimer
//! [`SpindleExecutor`]: super::SpindleExecutor

use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;

use hyper::body::{Body, Incoming};
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::{HttpService, Service};
use hyper::{Request, Response};
use hyper_util::server::conn::auto;

use super::{SpindleExecutor, SpindleTimer};
use crate::ShutdownSignal;

type BoxError = Box<dyn StdError + Send + Sync>;

/// A hyper server connection that can be told to finish gracefully: hyper's HTTP/1 and
/// HTTP/2 connections and hyper-util's auto-detecting one.
///
/// ```
/// use std::{convert::Infallible, pin::pin};
/// use spindle_net::{hyper::GracefulConnection, UnixStream};
///
/// /// Shuts `conn` down before it served anything (what `graceful` does when signalled).
/// async fn finish_now<C: GracefulConnection>(conn: C) -> C::Output {
///     let mut conn = pin!(conn);
///     conn.as_mut().graceful_shutdown();
///     conn.await
/// }
///
/// let (server_side, _client) = UnixStream::pair()?;
/// let service = hyper::service::service_fn(|_req| async {
///     Ok::<_, Infallible>(hyper::Response::new(String::new()))
/// });
/// let conn = hyper::server::conn::http1::Builder::new().serve_connection(server_side, service);
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// assert!(lp.run_until_complete(finish_now(conn)).unwrap().is_ok());
/// # std::io::Result::Ok(())
/// ```
pub trait GracefulConnection: Future {
    /// Starts the connection's graceful shutdown (hyper's `graceful_shutdown`); the future
    /// must then be polled to its end.
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for http1::Connection<I, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::Connection::graceful_shutdown(self);
    }
}

impl<I, S, B> GracefulConnection for http1::UpgradeableConnection<I, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin + Send + 'static,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl<I, S, E, B> GracefulConnection for http2::Connection<I, S, E>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin,
    B: Body + 'static,
    B::Error: Into<BoxError>,
    E: Http2ServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}

impl<I, S, E, B> GracefulConnection for auto::Connection<'_, I, S, E>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin + 'static,
    B: Body + 'static,
    B::Error: Into<BoxError>,
    E: auto::HttpServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        auto::Connection::graceful_shutdown(self);
    }
}

/// Drives `conn` to its end, starting its graceful shutdown when `shutdown` is raised (see
/// the module's protocol). Returns the connection's own result. For a connection from a
/// builder of your own (a [`LocalExecutor`](super::LocalExecutor) for `!Send` services,
/// other timeouts, upgrades).
///
/// ```
/// use std::convert::Infallible;
/// use spindle_net::{hyper::{graceful, SpindleTimer}, Server, TcpStream};
///
/// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
/// let server = Server::bind("127.0.0.1:0");
/// let signal = server.shutdown_signal();
/// let server = server.serve(&rt, move |conn: TcpStream| {
///     let service = hyper::service::service_fn(|_req| async {
///         Ok::<_, Infallible>(hyper::Response::new(String::from("hi")))
///     });
///     let conn = hyper::server::conn::http1::Builder::new()
///         .timer(SpindleTimer)
///         .keep_alive(true)
///         .serve_connection(conn, service);
///     let signal = signal.clone();
///     async move {
///         let _ = graceful(conn, signal).await;
///     }
/// })?;
/// rt.block_on(async move { server.shutdown().await }).unwrap();
/// # std::io::Result::Ok(())
/// ```
pub async fn graceful<C: GracefulConnection>(conn: C, shutdown: ShutdownSignal) -> C::Output {
    let mut conn = pin!(conn);
    {
        let mut triggered = pin!(shutdown.triggered());
        let finished = poll_fn(|cx| {
            if let Poll::Ready(out) = conn.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            match triggered.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        if let Some(out) = finished {
            return out;
        }
    }
    conn.as_mut().graceful_shutdown();
    conn.await
}

/// Serves HTTP/1.1 on `io` with `service` (hyper's `http1::Builder` with [`SpindleTimer`],
/// so its 30 s header-read timeout applies), until the peer closes or, after `shutdown` is
/// raised, the request in flight is answered.
///
/// ```
/// use std::convert::Infallible;
/// use spindle_net::{Server, TcpStream};
///
/// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
/// let server = Server::bind("127.0.0.1:0");
/// let signal = server.shutdown_signal();
/// let server = server.serve(&rt, move |conn: TcpStream| {
///     let service = hyper::service::service_fn(|_req| async {
///         Ok::<_, Infallible>(hyper::Response::new(String::from("hi")))
///     });
///     let signal = signal.clone();
///     async move { let _ = spindle_net::hyper::serve_http1(conn, service, signal).await; }
/// })?;
/// rt.block_on(async move { server.shutdown().await }).unwrap();
/// # std::io::Result::Ok(())
/// ```
///
/// [`SpindleTimer`]: super::SpindleTimer
pub async fn serve_http1<I, S, B>(io: I, service: S, shutdown: ShutdownSignal) -> hyper::Result<()>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    let conn = http1::Builder::new()
        .timer(SpindleTimer)
        .serve_connection(io, service);
    graceful(conn, shutdown).await
}

/// Serves HTTP/2 (prior knowledge: no upgrade from HTTP/1) on `io` with `service`, its
/// streams as stealable tasks ([`SpindleExecutor`], so the service's futures must be
/// `Send`), until the peer closes or, after `shutdown` is raised, the streams in flight are
/// answered (the client gets `GOAWAY`).
///
/// ```
/// use std::convert::Infallible;
/// use spindle_net::{Server, TcpStream};
///
/// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
/// let server = Server::bind("127.0.0.1:0");
/// let signal = server.shutdown_signal();
/// let server = server.serve(&rt, move |conn: TcpStream| {
///     let service = hyper::service::service_fn(|_req| async {
///         Ok::<_, Infallible>(hyper::Response::new(String::from("hi")))
///     });
///     let signal = signal.clone();
///     async move { let _ = spindle_net::hyper::serve_http2(conn, service, signal).await; }
/// })?;
/// rt.block_on(async move { server.shutdown().await }).unwrap();
/// # std::io::Result::Ok(())
/// ```
///
/// [`SpindleExecutor`]: super::SpindleExecutor
pub async fn serve_http2<I, S, B>(io: I, service: S, shutdown: ShutdownSignal) -> hyper::Result<()>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin,
    B: Body + 'static,
    B::Error: Into<BoxError>,
    SpindleExecutor: Http2ServerConnExec<S::Future, B>,
{
    let conn = http2::Builder::new(SpindleExecutor)
        .timer(SpindleTimer)
        .serve_connection(io, service);
    graceful(conn, shutdown).await
}

/// Serves HTTP/1.1 or HTTP/2 prior knowledge on `io`, whichever the client speaks
/// (hyper-util's auto builder reads the first bytes for HTTP/2's preface), as
/// [`serve_http1`] and [`serve_http2`] do. A shutdown raised before the client sent
/// enough bytes to tell ends the connection with an error (hyper-util's "cancelled").
///
/// ```
/// use std::convert::Infallible;
/// use spindle_net::{Server, TcpStream};
///
/// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
/// let server = Server::bind("127.0.0.1:0");
/// let signal = server.shutdown_signal();
/// let server = server.serve(&rt, move |conn: TcpStream| {
///     let service = hyper::service::service_fn(|_req| async {
///         Ok::<_, Infallible>(hyper::Response::new(String::from("hi")))
///     });
///     let signal = signal.clone();
///     async move { let _ = spindle_net::hyper::serve_auto(conn, service, signal).await; }
/// })?;
/// rt.block_on(async move { server.shutdown().await }).unwrap();
/// # std::io::Result::Ok(())
/// ```
pub async fn serve_auto<I, S, B>(
    io: I,
    service: S,
    shutdown: ShutdownSignal,
) -> Result<(), BoxError>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    I: Read + Write + Unpin + 'static,
    B: Body + 'static,
    B::Error: Into<BoxError>,
    SpindleExecutor: auto::HttpServerConnExec<S::Future, B>,
{
    let mut builder = auto::Builder::new(SpindleExecutor);
    builder.http1().timer(SpindleTimer);
    builder.http2().timer(SpindleTimer);
    let conn = builder.serve_connection(io, service);
    graceful(conn, shutdown).await
}
