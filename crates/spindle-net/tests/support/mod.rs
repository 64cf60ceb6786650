//! Shared by the tests that run in a child process (this test binary again, one test selected).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use spindle_net::{Server, ServerHandle, TcpStream};
use spindle_policy::Runtime;

const CHILD: &str = "SPINDLE_NET_TEST_CHILD";

/// A server whose handlers read a 4-byte request, count it in the returned counter, hold it
/// in flight until the server's shutdown signal, then answer `bye!`.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn answer_at_shutdown(
    rt: &Runtime,
    shutdown_timeout: Duration,
) -> (ServerHandle, Arc<AtomicUsize>) {
    let server = Server::bind("127.0.0.1:0").shutdown_timeout(shutdown_timeout);
    let signal = server.shutdown_signal();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let counter = in_flight.clone();
    let server = server
        .serve(rt, move |mut conn: TcpStream| {
            let (signal, counter) = (signal.clone(), counter.clone());
            async move {
                let mut buf = [0; 4];
                conn.read_exact(&mut buf).await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                signal.triggered().await;
                conn.write_all(b"bye!").await.unwrap();
            }
        })
        .unwrap();
    (server, in_flight)
}

/// Serves `server` on `rt` with handlers that never answer (and ignore the shutdown signal):
/// each counts itself in the returned counter when it starts and ends only when its peer
/// closes or the connection fails.
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn serve_until_peer_closes(server: Server, rt: &Runtime) -> (ServerHandle, Arc<AtomicUsize>) {
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let server = server
        .serve(rt, move |mut conn: TcpStream| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut buf = [0; 16];
                while let Ok(1..) = conn.read(&mut buf).await {}
            }
        })
        .unwrap();
    (server, started)
}

/// Runs test `name` again in a child process, where `body` runs, and waits for it (bounded: a
/// child still running after 60 s is killed and the test fails).
#[allow(dead_code)] // not every test binary that shares this module uses it
pub fn in_child(name: &str, body: fn()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .spawn()
        .unwrap();
    // Bounded: the child either finishes or is killed.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child {name} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the child {name} failed: {status}");
}

/// Polls `done` every 2 ms until it holds; fails the test with `what` after 20 s (a bound, not
/// a timing assertion: the tests' waits take milliseconds).
#[allow(dead_code)] // not every test binary that shares this module uses it
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what}");
        spindle_loop::sleep(Duration::from_millis(2)).await;
    }
}
