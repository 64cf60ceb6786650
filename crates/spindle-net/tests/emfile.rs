//! Accept survives running out of file descriptors: `EMFILE` comes back as an error, and the
//! listener accepts again once descriptors are free. Run in a child process with a low
//! `RLIMIT_NOFILE`, so the rest of the test binary keeps its descriptors. A `Server`'s acceptor
//! pauses on `EMFILE` and serves the waiting connection once descriptors are free.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use spindle_loop::EventLoop;
use spindle_net::{Server, TcpListener, TcpStream};
use spindle_policy::Runtime;

mod support;
use support::in_child;

const EMFILE: i32 = 24;

#[test]
fn accept_survives_emfile() {
    in_child("accept_survives_emfile", || {
        limit_descriptors();
        child();
    });
}

#[test]
fn server_accept_pauses_on_emfile_and_resumes() {
    in_child("server_accept_pauses_on_emfile_and_resumes", || {
        limit_descriptors();
        server_child();
    });
}

fn limit_descriptors() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(64),
            maximum: hard,
        },
    )
    .unwrap();
}

/// Fills the descriptor table with duplicates of `fd`.
fn hoard(fd: BorrowedFd<'_>) -> Vec<OwnedFd> {
    let mut hoard: Vec<OwnedFd> = Vec::new();
    loop {
        match fd.try_clone_to_owned() {
            Ok(fd) => hoard.push(fd),
            Err(e) if e.raw_os_error() == Some(EMFILE) => return hoard,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
}

/// A `Server` whose acceptor meets `EMFILE` pauses and retries, then serves the waiting
/// connection once descriptors are free.
fn server_child() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let server = Server::bind("127.0.0.1:0")
        .serve(&rt, |mut conn: TcpStream| async move {
            let mut buf = [0; 4];
            if conn.read_exact(&mut buf).await.is_ok() {
                let _ = conn.write_all(&buf).await;
            }
        })
        .unwrap();
    let addr = server.local_addrs()[0];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut fds = hoard(listener.as_fd());
    // One slot for the client's socket; the server side then has none.
    fds.pop();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    client.write_all(b"ping").unwrap();
    // The acceptor meets EMFILE (again every 50 ms) while the table is full.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.accepted_connections(), vec![0]);
    fds.truncate(fds.len().saturating_sub(4));
    let mut buf = [0; 4];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    assert_eq!(server.accepted_connections(), vec![1]);
    assert!(server.is_serving(), "the acceptor survived");
}

fn child() {
    let lp = EventLoop::new().unwrap();
    lp.run_until_complete(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut hoard = hoard(listener.as_fd());
        // One slot for the client's socket; the server side then has none.
        hoard.pop();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let err = listener.accept().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(EMFILE), "{err}");
        assert_ne!(err.kind(), ErrorKind::WouldBlock);
        // Descriptors free again: the same listener accepts the waiting connection.
        hoard.truncate(hoard.len().saturating_sub(4));
        let (conn, _) = spindle_loop::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("accept hung after EMFILE")
            .unwrap();
        assert!(conn.peer_addr().is_ok());
    })
    .unwrap();
}
