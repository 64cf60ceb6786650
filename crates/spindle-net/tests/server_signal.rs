//! `ServerHandle::shutdown_on_signal`: SIGTERM shuts the server down gracefully, an in-flight
//! request is answered, and new connections are refused. In a child process, since the signal
//! stays caught in the process once it had a handler.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rustix::process::{getpid, kill_process, Signal};
use spindle_loop::io::signals::{SIGINT, SIGKILL, SIGTERM};
use spindle_net::{Server, TcpStream};
use spindle_policy::Runtime;

mod support;
use support::in_child;

#[test]
fn sigterm_shuts_the_server_down_gracefully() {
    in_child("sigterm_shuts_the_server_down_gracefully", || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let (server, in_flight) = support::answer_at_shutdown(&rt, Duration::from_secs(20));
        let addr = server.local_addrs()[0];
        let handle = server.clone();
        rt.block_on(async move {
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(b"req!").await.unwrap();
            while in_flight.load(Ordering::SeqCst) == 0 {
                spindle_loop::sleep(Duration::from_millis(2)).await;
            }
            let shutdown = spindle_loop::spawn_local(async move {
                handle.shutdown_on_signal(&[SIGTERM, SIGINT]).await
            })
            .unwrap();
            // Tasks start in spawn order: the handlers are registered (at the first poll of
            // shutdown_on_signal) before this one sends the signal.
            spindle_loop::spawn_local(async {
                kill_process(getpid(), Signal::TERM).unwrap();
            })
            .unwrap();
            let mut buf = [0; 4];
            client.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"bye!");
            let refused = TcpStream::connect(addr).await.unwrap_err();
            assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
            let outcome = shutdown.await.unwrap().unwrap();
            assert!(outcome.graceful(), "{outcome:?}");
        })
        .unwrap();
        assert!(!server.is_serving());
    });
}

#[test]
fn shutdown_on_signal_rejects_bad_signals() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let server = Server::bind("127.0.0.1:0")
        .serve(&rt, |_: TcpStream| async {})
        .unwrap();
    let handle = server.clone();
    rt.block_on(async move {
        let none = handle.shutdown_on_signal(&[]).await.unwrap_err();
        assert_eq!(none.kind(), std::io::ErrorKind::InvalidInput);
        let kill = handle.shutdown_on_signal(&[SIGKILL]).await.unwrap_err();
        assert_eq!(kill.kind(), std::io::ErrorKind::InvalidInput);
    })
    .unwrap();
    assert!(
        server.is_serving(),
        "a failed call leaves the server serving"
    );
}
