//! UDP: [`UdpSocket`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use crate::async_io::Async;

/// A UDP socket. Cheap to clone (the clones share the socket); `Send + Sync`.
///
/// ```
/// use spindle_net::UdpSocket;
/// let lp = spindle_loop::EventLoop::new().unwrap();
/// let got = lp.run_until_complete(async {
///     let a = UdpSocket::bind("127.0.0.1:0")?;
///     let b = UdpSocket::bind("127.0.0.1:0")?;
///     a.send_to(b"hello", b.local_addr()?).await?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!(from, a.local_addr()?);
///     std::io::Result::Ok(buf[..n].to_vec())
/// }).unwrap()?;
/// assert_eq!(got, b"hello");
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug, Clone)]
pub struct UdpSocket {
    inner: Arc<Async<std::net::UdpSocket>>,
}

impl UdpSocket {
    /// Binds to `addr`.
    ///
    /// ```
    /// let s = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_ne!(s.local_addr()?.port(), 0);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        Self::from_std(std::net::UdpSocket::bind(addr)?)
    }

    /// Wraps a std socket (switched to non-blocking mode).
    ///
    /// ```
    /// let s = spindle_net::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: Arc::new(Async::new(socket)?),
        })
    }

    /// Sends `buf` to `addr`; returns the bytes sent.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// # lp.run_until_complete(async {
    /// let s = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(s.send_to(b"x", s.local_addr()?).await?, 1);
    /// # std::io::Result::Ok(()) }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to send to"))?;
        self.inner.write_with(|s| s.send_to(buf, addr)).await
    }

    /// Receives one datagram; returns its length and sender.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// # lp.run_until_complete(async {
    /// let s = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// s.send_to(b"me", s.local_addr()?).await?;
    /// let mut buf = [0; 8];
    /// assert_eq!(s.recv_from(&mut buf).await?.0, 2);
    /// # std::io::Result::Ok(()) }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read_with(|s| s.recv_from(buf)).await
    }

    /// Sets the default peer: `send` goes there and `recv` takes only its datagrams.
    ///
    /// ```
    /// let a = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// let b = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// a.connect(b.local_addr()?)?;
    /// assert_eq!(a.peer_addr()?, b.local_addr()?);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.inner.get_ref().connect(addr)
    }

    /// Sends to the connected peer.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// # lp.run_until_complete(async {
    /// let a = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// let b = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// a.connect(b.local_addr()?)?;
    /// b.connect(a.local_addr()?)?;
    /// a.send(b"hi").await?;
    /// let mut buf = [0; 2];
    /// assert_eq!(b.recv(&mut buf).await?, 2);
    /// # std::io::Result::Ok(()) }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_with(|s| s.send(buf)).await
    }

    /// Receives from the connected peer.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// # lp.run_until_complete(async {
    /// let s = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// s.connect(s.local_addr()?)?;
    /// s.send(b"loop").await?;
    /// let mut buf = [0; 4];
    /// assert_eq!(s.recv(&mut buf).await?, 4);
    /// # std::io::Result::Ok(()) }).unwrap()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_with(|s| s.recv(buf)).await
    }

    /// The local address.
    ///
    /// ```
    /// let s = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(s.local_addr()?.ip().is_loopback());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// The connected peer's address.
    ///
    /// ```
    /// let s = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert!(s.peer_addr().is_err()); // not connected
    /// # std::io::Result::Ok(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The std socket underneath (options such as broadcast or multicast).
    ///
    /// ```
    /// let s = spindle_net::UdpSocket::bind("127.0.0.1:0")?;
    /// s.get_ref().set_broadcast(true)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn get_ref(&self) -> &std::net::UdpSocket {
        self.inner.get_ref()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}
