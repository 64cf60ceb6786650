//! tokio's I/O traits for spindle sockets (feature `tokio-io`), so tokio-based libraries
//! (codecs, TLS, protocol crates) run over spindle sockets.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::async_io::{self, AsAsync, Async};
use crate::tcp::{OwnedReadHalf, OwnedWriteHalf, TcpStream};
use crate::unix::UnixStream;

/// `stream`: a byte stream, where a short read clears the readiness (see `async_io`).
fn poll_read_buf<T: AsFd>(
    io: &Async<T>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
    stream: bool,
) -> Poll<io::Result<()>>
where
    for<'a> &'a T: Read,
{
    let n = ready!(async_io::poll_read(
        io,
        cx,
        buf.initialize_unfilled(),
        stream
    ))?;
    buf.advance(n);
    Poll::Ready(Ok(()))
}

macro_rules! tokio_io {
    ($ty:ty) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                poll_read_buf(AsAsync::as_async(&*self), cx, buf, true)
            }
        }

        impl AsyncWrite for $ty {
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
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                async_io::poll_write_vectored(AsAsync::as_async(&*self), cx, bufs, true)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                async_io::poll_flush(AsAsync::as_async(&*self), cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(AsAsync::shutdown_write(&*self))
            }
        }
    };
}

tokio_io!(TcpStream);
tokio_io!(OwnedReadHalf);
tokio_io!(OwnedWriteHalf);
tokio_io!(UnixStream);

impl<T: AsFd> AsyncRead for Async<T>
where
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_buf(&self, cx, buf, false)
    }
}

impl<T: AsFd> AsyncWrite for Async<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        async_io::poll_write(&self, cx, buf, false)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        async_io::poll_flush(&self, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        async_io::poll_flush(&self, cx)
    }
}
