//! TCP on one loop: echo, many connections, and the errors a caller must get as values.

use std::io::{ErrorKind, Write};
use std::net::Shutdown;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use spindle_loop::{spawn_local, timeout, EventLoop};
use spindle_net::{IoError, SockExt, TcpListener, TcpStream};

/// An echo server on `listener`, one local task per connection.
async fn serve_echo(listener: TcpListener) {
    let mut incoming = listener.incoming();
    while let Some(Ok(mut conn)) = incoming.next().await {
        spawn_local(async move {
            let mut buf = vec![0; 4096];
            while let Ok(n @ 1..) = conn.read(&mut buf).await {
                if conn.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        })
        .unwrap();
    }
}

#[test]
fn tcp_echo_on_one_loop() {
    let lp = EventLoop::new().unwrap();
    let l = lp.clone();
    let out = lp
        .run_until_complete(async move {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            l.create_task(serve_echo(listener)).unwrap();
            let mut client = TcpStream::connect(addr).await?;
            client.set_nodelay(true)?;
            let mut replies = Vec::new();
            for msg in ["one", "two", "three"] {
                client.write_all(msg.as_bytes()).await?;
                let mut buf = vec![0; msg.len()];
                client.read_exact(&mut buf).await?;
                replies.push(String::from_utf8(buf).unwrap());
            }
            std::io::Result::Ok(replies)
        })
        .unwrap()
        .unwrap();
    assert_eq!(out, ["one", "two", "three"]);
    lp.close().unwrap();
}

#[test]
fn a_thousand_concurrent_connections_on_one_loop() {
    const CONNS: usize = 1000;
    let lp = EventLoop::new().unwrap();
    let l = lp.clone();
    let total = lp
        .run_until_complete(async move {
            let listener = TcpListener::bind_with_backlog("127.0.0.1:0", 2048)?;
            let addr = listener.local_addr()?;
            l.create_task(serve_echo(listener)).unwrap();
            let clients: Vec<_> = (0..CONNS)
                .map(|i| {
                    spawn_local(async move {
                        let mut c = TcpStream::connect(addr).await?;
                        let msg = format!("client {i}");
                        c.write_all(msg.as_bytes()).await?;
                        let mut buf = vec![0; msg.len()];
                        c.read_exact(&mut buf).await?;
                        assert_eq!(buf, msg.as_bytes());
                        std::io::Result::Ok(1usize)
                    })
                    .unwrap()
                })
                .collect();
            let mut done = 0;
            for c in clients {
                done += c.await.unwrap()?;
            }
            std::io::Result::Ok(done)
        })
        .unwrap()
        .unwrap();
    assert_eq!(total, CONNS);
    lp.close().unwrap();
}

#[test]
fn connect_refused_is_an_error_not_a_hang() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let lp = EventLoop::new().unwrap();
    let err = lp
        .run_until_complete(async move { TcpStream::connect(("127.0.0.1", port)).await })
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

/// A connected pair on the running loop: a client, and the server's side accepted for it.
async fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (conn, _) = listener.accept().await.unwrap();
    (client, conn)
}

#[test]
fn bind_to_an_address_in_use_is_addr_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = TcpListener::bind(taken.local_addr().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
}

#[test]
fn a_half_closed_peer_reads_as_zero_and_writes_to_a_closed_peer_fail() {
    let lp = EventLoop::new().unwrap();
    lp.run_until_complete(async move {
        let (mut client, conn) = connected_pair().await;
        // The peer half-closes: reads see end-of-stream, as std's do.
        conn.shutdown(Shutdown::Write).unwrap();
        let mut buf = [0; 8];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
        // The peer goes away entirely: writing soon fails (EPIPE / reset), never hangs.
        drop(conn);
        let mut failed = None;
        for _ in 0..100 {
            if let Err(e) = client.write_all(&[0; 1024]).await {
                failed = Some(e);
                break;
            }
            spindle_loop::sleep(Duration::from_millis(1)).await;
        }
        let e = failed.expect("writes to a closed peer kept succeeding");
        assert!(
            matches!(
                e.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "{e:?}"
        );
    })
    .unwrap();
}

#[test]
fn a_reset_by_the_peer_is_connection_reset() {
    let lp = EventLoop::new().unwrap();
    lp.run_until_complete(async move {
        let (mut client, conn) = connected_pair().await;
        // SO_LINGER 0: close sends a RST.
        socket2::SockRef::from(conn.get_ref())
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        (&mut &client).write_all(b"unread").await.unwrap();
        spindle_loop::sleep(Duration::from_millis(5)).await;
        drop(conn);
        let mut buf = [0; 8];
        let e = client.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    })
    .unwrap();
}

#[test]
fn a_socket_used_after_its_loop_closed_reports_loop_closed() {
    let lp = EventLoop::new().unwrap();
    let (client, conn) = lp
        .run_until_complete(async move {
            let (mut client, conn) = connected_pair().await;
            // Wait once, so the client registers with this loop.
            let mut buf = [0; 1];
            assert!(timeout(Duration::from_millis(5), client.read(&mut buf))
                .await
                .is_err());
            (client, conn)
        })
        .unwrap();
    lp.close().unwrap();
    let other = EventLoop::new().unwrap();
    let err = other
        .run_until_complete(async move {
            let mut buf = [0; 1];
            (&client).read(&mut buf).await
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(IoError::of(&err), Some(IoError::LoopClosed));
    drop(conn);
}

#[test]
fn asyncio_s_sock_helpers_work_on_the_loop() {
    let lp = EventLoop::new().unwrap();
    let l = lp.clone();
    let got = lp
        .run_until_complete(async move {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let client = l.sock_connect(listener.local_addr()?).await?;
            let (conn, _) = l.sock_accept(&listener).await?;
            l.sock_sendall(&client, b"sock_sendall").await?;
            let mut buf = [0; 12];
            let mut n = 0;
            while n < 12 {
                n += l.sock_recv(&conn, &mut buf[n..]).await?;
            }
            std::io::Result::Ok(buf)
        })
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"sock_sendall");
}

#[test]
fn a_std_thread_client_talks_to_a_spindle_server() {
    let lp = EventLoop::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"from a thread").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut back).unwrap();
        back
    });
    lp.run_until_complete(timeout(Duration::from_secs(30), async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut all = Vec::new();
        conn.read_to_end(&mut all).await.unwrap();
        conn.write_all(&all).await.unwrap();
    }))
    .unwrap()
    .expect("the server side hung");
    assert_eq!(client.join().unwrap(), b"from a thread");
}

#[test]
fn end_of_stream_arriving_with_the_last_data_is_read_after_a_short_read() {
    // Data and the FIN in one edge: the short read that takes the data must not make the
    // next read sleep through the end of stream (the closed bit stays). Many rounds, as the
    // two may or may not share an edge.
    let lp = EventLoop::new().unwrap();
    lp.run_until_complete(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for round in 0..200 {
            let client = std::net::TcpStream::connect(addr).unwrap();
            let (mut conn, _) = listener.accept().await.unwrap();
            // Wait once, so the connection is registered before the data and FIN come.
            let mut buf = [0u8; 64];
            let early = timeout(Duration::from_millis(1), conn.read(&mut buf)).await;
            assert!(early.is_err(), "round {round}: nothing was sent yet");
            let sender = std::thread::spawn(move || {
                let mut client = client;
                client.write_all(b"abc").unwrap();
                client.shutdown(Shutdown::Write).unwrap();
                client
            });
            let mut all = Vec::new();
            let read = timeout(Duration::from_secs(10), conn.read_to_end(&mut all)).await;
            assert!(
                read.is_ok(),
                "round {round}: the end of stream was never read"
            );
            assert_eq!(all, b"abc");
            drop(sender.join().unwrap());
        }
    })
    .unwrap();
}
