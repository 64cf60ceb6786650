//! asyncio's socket helpers on the loop (`loop.sock_recv`, `sock_sendall`, `sock_accept`,
//! `sock_connect`), for code ported from asyncio. Thin: each is one call of the socket types.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use spindle_loop::EventLoop;

use crate::tcp::{TcpListener, TcpStream};

/// asyncio's `loop.sock_*` methods on [`EventLoop`].
///
/// ```
/// use spindle_net::{SockExt, TcpListener};
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// let l = lp.clone();
/// let got = lp.run_until_complete(async move {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let client = l.sock_connect(listener.local_addr()?).await?;
///     let (conn, _) = l.sock_accept(&listener).await?;
///     l.sock_sendall(&client, b"ported").await?;
///     let mut buf = [0; 6];
///     let n = l.sock_recv(&conn, &mut buf).await?;
///     std::io::Result::Ok(buf[..n].to_vec())
/// }).unwrap()?;
/// assert_eq!(got, b"ported");
/// # std::io::Result::Ok(())
/// ```
pub trait SockExt {
    /// Receives up to `buf.len()` bytes (`Ok(0)`: the peer closed its side).
    fn sock_recv<'a>(
        &self,
        sock: &'a TcpStream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + 'a;

    /// Sends all of `data`.
    fn sock_sendall<'a>(
        &self,
        sock: &'a TcpStream,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + 'a;

    /// Accepts a connection.
    fn sock_accept<'a>(
        &self,
        listener: &'a TcpListener,
    ) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + 'a;

    /// Connects to `addr`.
    fn sock_connect<A: ToSocketAddrs + 'static>(
        &self,
        addr: A,
    ) -> impl Future<Output = io::Result<TcpStream>> + 'static;
}

// `async fn` would borrow the loop for the future's life too: these futures borrow only the
// socket and the buffer, so a task can keep them without keeping a loop handle borrowed.
#[allow(clippy::manual_async_fn)]
impl SockExt for EventLoop {
    fn sock_recv<'a>(
        &self,
        mut sock: &'a TcpStream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        async move { sock.read(buf).await }
    }

    fn sock_sendall<'a>(
        &self,
        mut sock: &'a TcpStream,
        data: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + 'a {
        async move { sock.write_all(data).await }
    }

    fn sock_accept<'a>(
        &self,
        listener: &'a TcpListener,
    ) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + 'a {
        listener.accept()
    }

    fn sock_connect<A: ToSocketAddrs + 'static>(
        &self,
        addr: A,
    ) -> impl Future<Output = io::Result<TcpStream>> + 'static {
        TcpStream::connect(addr)
    }
}
