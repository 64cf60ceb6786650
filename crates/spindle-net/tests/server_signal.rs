//! `ServerHandle::shutdown_on_signal` and the `Server::shutdown_on_signal()` setting: SIGTERM
//! (or SIGINT) shuts the server down gracefully, an in-flight request is answered, and new
//! connections are refused. In a child process, since the signal stays caught in the process
//! once it had a handler.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rustix::process::{getpid, kill_process, Signal};
use spindle_loop::io::loops_handling;
use spindle_loop::io::signals::{SIGINT, SIGKILL, SIGTERM};
use spindle_net::{Server, TcpStream};
use spindle_policy::Runtime;

mod support;
use support::{in_child, wait_until};

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

/// A server with the `shutdown_on_signal()` setting whose handlers read a 4-byte request, hold
/// it until the shutdown signal, answer `bye!`, and count themselves in `finished`; a client
/// with a request in flight; then `signal`: the request is answered, the server closes, new
/// connections are refused, and no handler was cancelled.
fn signal_shuts_a_server_built_to_down(signal: Signal, sig: i32) {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let server = Server::bind("127.0.0.1:0")
        .shutdown_timeout(Duration::from_secs(20))
        .shutdown_on_signal();
    let shutdown = server.shutdown_signal();
    let (in_flight, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (started, done) = (in_flight.clone(), finished.clone());
    let server = server
        .serve(&rt, move |mut conn: TcpStream| {
            let (shutdown, started, done) = (shutdown.clone(), started.clone(), done.clone());
            async move {
                let mut buf = [0; 4];
                conn.read_exact(&mut buf).await.unwrap();
                started.fetch_add(1, Ordering::SeqCst);
                shutdown.triggered().await;
                conn.write_all(b"bye!").await.unwrap();
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    let addr = server.local_addrs()[0];
    let handle = server.clone();
    rt.block_on(async move {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"req!").await.unwrap();
        // The request is in flight and worker 0 has its handler of `sig` (registered there
        // once `serve` started it): bounded waits.
        wait_until("never ready", || {
            in_flight.load(Ordering::SeqCst) > 0 && loops_handling(sig) > 0
        })
        .await;
        kill_process(getpid(), signal).unwrap();
        let mut buf = [0; 4];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"bye!");
        spindle_loop::timeout(Duration::from_secs(20), handle.wait_closed())
            .await
            .expect("the server closed");
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        // The watch removes its handlers once its shutdown() has returned, just after.
        wait_until("handlers never removed", || loops_handling(sig) == 0).await;
    })
    .unwrap();
    assert!(!server.is_serving());
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the handler finished, not cancelled"
    );
}

#[test]
fn the_shutdown_on_signal_setting_shuts_down_gracefully_on_sigterm() {
    in_child(
        "the_shutdown_on_signal_setting_shuts_down_gracefully_on_sigterm",
        || signal_shuts_a_server_built_to_down(Signal::TERM, SIGTERM),
    );
}

#[test]
fn the_shutdown_on_signal_setting_shuts_down_gracefully_on_sigint() {
    in_child(
        "the_shutdown_on_signal_setting_shuts_down_gracefully_on_sigint",
        || signal_shuts_a_server_built_to_down(Signal::INT, SIGINT),
    );
}

#[test]
fn the_shutdown_on_signal_setting_lets_go_of_the_signals_when_the_server_closes_otherwise() {
    in_child(
        "the_shutdown_on_signal_setting_lets_go_of_the_signals_when_the_server_closes_otherwise",
        || {
            let rt = Runtime::builder().worker_threads(1).build().unwrap();
            let server = Server::bind("127.0.0.1:0")
                .shutdown_on_signal()
                .serve(&rt, |_: TcpStream| async {})
                .unwrap();
            rt.block_on(async move {
                wait_until("never registered", || {
                    loops_handling(SIGTERM) > 0 && loops_handling(SIGINT) > 0
                })
                .await;
                assert!(server.shutdown().await.graceful());
                wait_until("never removed", || {
                    loops_handling(SIGTERM) + loops_handling(SIGINT) == 0
                })
                .await;
            })
            .unwrap();
        },
    );
}

#[test]
fn a_second_signal_during_the_graceful_shutdown_aborts_the_connections_left() {
    in_child(
        "a_second_signal_during_the_graceful_shutdown_aborts_the_connections_left",
        || {
            let rt = Runtime::builder().worker_threads(2).build().unwrap();
            let server = Server::bind("127.0.0.1:0")
                // Far longer than the test's own bound: only the second signal ends it in time.
                .shutdown_timeout(Duration::from_secs(600))
                .shutdown_on_signal();
            let shutdown = server.shutdown_signal();
            // Stuck handlers: they ignore the shutdown signal, end only when the peer does.
            let (server, started) = support::serve_until_peer_closes(server, &rt);
            let addr = server.local_addrs()[0];
            let handle = server.clone();
            rt.block_on(async move {
                let _client = TcpStream::connect(addr).await.unwrap();
                wait_until("never ready", || {
                    started.load(Ordering::SeqCst) > 0 && loops_handling(SIGTERM) > 0
                })
                .await;
                kill_process(getpid(), Signal::TERM).unwrap();
                // The shutdown began, and its watch has registered anew.
                wait_until("never shutting down", || {
                    shutdown.is_triggered() && loops_handling(SIGTERM) > 0
                })
                .await;
                kill_process(getpid(), Signal::TERM).unwrap();
                spindle_loop::timeout(Duration::from_secs(20), handle.wait_closed())
                    .await
                    .expect("the second signal cut the 600 s grace period short");
            })
            .unwrap();
            assert_eq!(server.open_connections(), vec![0, 0]);
        },
    );
}
