//! # spindle-net: async sockets on spindle's loops
//!
//! Sockets whose readiness comes from the spindle loop where they first had to wait (their
//! home loop; see `spindle_loop::io`): [`TcpListener`], [`TcpStream`] (with owned halves),
//! [`UdpSocket`], [`UnixListener`], [`UnixStream`], [`UnixDatagram`], and [`Async<T>`] for
//! any other fd-owning object. They are `Send + Sync`, work in local tasks, in stolen `Send`
//! tasks and when moved to a task on another worker, and implement `futures_io`'s
//! `AsyncRead` / `AsyncWrite`; with the `tokio-io` feature tokio's traits, with the `hyper`
//! feature hyper 1.x's (and the [`hyper`] module's `Timer` and `Executor`).
//!
//! [`SockExt`] gives asyncio's `loop.sock_recv` / `sock_sendall` / `sock_accept` /
//! `sock_connect` for ported code.
//!
//! Errors are `std::io::Error`s: the OS's (refused, reset, address in use, `EMFILE`), or
//! spindle's own [`IoError`] inside one (the home loop closed; no
//! loop to wait on).
//!
//! ```
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//! use spindle_net::{TcpListener, TcpStream};
//!
//! // asyncio's streams tutorial: an echo server and a client on one loop.
//! let lp = spindle_loop::EventLoop::new().unwrap();
//! let l = lp.clone();
//! let echoed = lp.run_until_complete(async move {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     l.create_task(async move {
//!         while let Ok((mut conn, _)) = listener.accept().await {
//!             spindle_loop::spawn_local(async move {
//!                 let mut buf = [0; 1024];
//!                 while let Ok(n @ 1..) = conn.read(&mut buf).await {
//!                     if conn.write_all(&buf[..n]).await.is_err() { break; }
//!                 }
//!             }).unwrap();
//!         }
//!     }).unwrap();
//!     let mut client = TcpStream::connect(addr).await?;
//!     client.write_all(b"Hello World!").await?;
//!     let mut buf = [0; 12];
//!     client.read_exact(&mut buf).await?;
//!     std::io::Result::Ok(buf)
//! }).unwrap()?;
//! assert_eq!(&echoed, b"Hello World!");
//! # std::io::Result::Ok(())
//! ```
#![cfg(unix)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod async_io;
#[cfg(feature = "hyper")]
#[allow(unsafe_code)] // hyper's ReadBufCursor: reading into its uninitialised bytes
#[path = "hyper_rt.rs"]
pub mod hyper;
mod server;
mod sock;
mod tcp;
#[cfg(feature = "tokio-io")]
mod tokio_io;
mod udp;
mod unix;

/// The extension traits that give sockets `read`, `write_all`, `read_exact`, ... and
/// listeners' `incoming()` its `next()` (futures-lite's).
///
/// ```
/// use spindle_net::prelude::*;
/// let (mut a, mut b) = spindle_net::UnixStream::pair()?;
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// lp.run_until_complete(async move {
///     a.write_all(b"x").await?;
///     let mut buf = [0; 1];
///     b.read_exact(&mut buf).await
/// }).unwrap()?;
/// # std::io::Result::Ok(())
/// ```
pub mod prelude {
    pub use futures_lite::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, StreamExt};
}

pub use async_io::Async;
pub use server::{Accept, Server, ServerHandle, ShutdownOutcome, ShutdownSignal};
pub use sock::SockExt;
pub use spindle_loop::io::IoError;
pub use tcp::{Incoming, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};
