//! UDP and Unix sockets, and `Async<T>` over other fds.

use std::io::Read;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use spindle_loop::EventLoop;
use spindle_net::{Async, UdpSocket, UnixDatagram, UnixListener, UnixStream};

#[test]
fn udp_echo() {
    let lp = EventLoop::new().unwrap();
    let l = lp.clone();
    let replies = lp
        .run_until_complete(async move {
            let server = UdpSocket::bind("127.0.0.1:0")?;
            let addr = server.local_addr()?;
            l.create_task(async move {
                let mut buf = [0; 1500];
                loop {
                    let (n, from) = server.recv_from(&mut buf).await.unwrap();
                    server.send_to(&buf[..n], from).await.unwrap();
                }
            })
            .unwrap();
            let client = UdpSocket::bind("127.0.0.1:0")?;
            client.connect(addr)?;
            let mut replies = Vec::new();
            for i in 0..50u32 {
                client.send(&i.to_le_bytes()).await?;
                let mut buf = [0; 4];
                assert_eq!(client.recv(&mut buf).await?, 4);
                replies.push(u32::from_le_bytes(buf));
            }
            std::io::Result::Ok(replies)
        })
        .unwrap()
        .unwrap();
    assert_eq!(replies, (0..50).collect::<Vec<_>>());
}

#[test]
fn unix_stream_echo() {
    let path = std::env::temp_dir().join(format!("spindle-net-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let lp = EventLoop::new().unwrap();
    let l = lp.clone();
    let p = path.clone();
    let got = lp
        .run_until_complete(async move {
            let listener = UnixListener::bind(&p)?;
            l.create_task(async move {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut buf = [0; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    conn.write_all(&buf[..n]).await.unwrap();
                }
            })
            .unwrap();
            let mut client = UnixStream::connect(&p).await?;
            client.write_all(b"over a unix socket").await?;
            let mut buf = [0; 18];
            client.read_exact(&mut buf).await?;
            std::io::Result::Ok(buf)
        })
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"over a unix socket");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn unix_datagram_echo() {
    let lp = EventLoop::new().unwrap();
    let (a, b) = UnixDatagram::pair().unwrap();
    let l = lp.clone();
    let got = lp
        .run_until_complete(async move {
            l.create_task(async move {
                let mut buf = [0; 64];
                let n = b.recv(&mut buf).await.unwrap();
                b.send(&buf[..n]).await.unwrap();
            })
            .unwrap();
            a.send(b"dgram").await?;
            let mut buf = [0; 5];
            a.recv(&mut buf).await?;
            std::io::Result::Ok(buf)
        })
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"dgram");
}

#[test]
fn async_wraps_a_pipe() {
    // A pipe is no socket: Async<T> drives any fd-owning object.
    let (reader, writer) = std::io::pipe().unwrap();
    let reader = Async::new(reader).unwrap();
    let writer = Async::new(writer).unwrap();
    let lp = EventLoop::new().unwrap();
    let l = lp.clone();
    let got = lp
        .run_until_complete(async move {
            l.create_task(async move {
                spindle_loop::sleep(std::time::Duration::from_millis(5)).await;
                writer
                    .write_with(|mut w| std::io::Write::write(&mut w, b"piped"))
                    .await
                    .unwrap();
            })
            .unwrap();
            let mut buf = [0; 5];
            let n = reader.read_with(|mut r| r.read(&mut buf)).await?;
            std::io::Result::Ok(buf[..n].to_vec())
        })
        .unwrap()
        .unwrap();
    assert_eq!(got, b"piped");
}
