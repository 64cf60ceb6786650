//! `Server`: many connections over two workers, the per-worker limit, graceful shutdown,
//! `abort_clients`, and the shutdown timeout cancelling a stuck handler. Loopback only, bounded
//! in count and time (every wait gives up after `LIMIT` and fails the test).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use spindle_net::{Accept, Server, ServerHandle, TcpStream};
use spindle_policy::Runtime;
use spindle_sync::Event;

mod support;

const LIMIT: Duration = Duration::from_secs(20);

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().worker_threads(workers).build().unwrap()
}

/// Polls `cond` on the running loop until it holds; panics after `LIMIT`.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        spindle_loop::sleep(Duration::from_millis(2)).await;
    }
}

/// Reads an 8-byte id and answers `id * 3 + 1`, then closes.
async fn triple(mut conn: TcpStream) {
    let mut buf = [0; 8];
    if conn.read_exact(&mut buf).await.is_ok() {
        let reply = u64::from_le_bytes(buf) * 3 + 1;
        let _ = conn.write_all(&reply.to_le_bytes()).await;
    }
}

/// `total` round trips from `clients` concurrent client tasks on the calling loop; every
/// reply is checked.
async fn round_trips(addr: SocketAddr, total: u64, clients: u64) {
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            spindle_loop::spawn_local(async move {
                for id in (c..total).step_by(clients as usize) {
                    let mut conn = TcpStream::connect(addr).await.unwrap();
                    conn.write_all(&id.to_le_bytes()).await.unwrap();
                    let mut buf = [0; 8];
                    conn.read_exact(&mut buf).await.unwrap();
                    assert_eq!(u64::from_le_bytes(buf), id * 3 + 1, "reply to {id}");
                }
            })
            .unwrap()
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

fn serve_and_check(accept: Accept, total: u64) -> Vec<u64> {
    let rt = runtime(2);
    let server = Server::bind("127.0.0.1:0")
        .accept(accept)
        .serve(&rt, triple)
        .unwrap();
    let addr = server.local_addrs()[0];
    let handle = server.clone();
    rt.block_on(async move {
        round_trips(addr, total, 32).await;
        handle.shutdown().await
    })
    .unwrap();
    let accepted = server.accepted_connections();
    assert_eq!(accepted.iter().sum::<u64>(), total, "{accepted:?}");
    assert_eq!(server.open_connections(), vec![0, 0]);
    accepted
}

#[test]
#[cfg(target_os = "linux")]
fn two_workers_serve_2000_connections_per_worker_listeners() {
    let accepted = serve_and_check(Accept::PerWorker, 2000);
    println!("SO_REUSEPORT: accepted per worker {accepted:?}");
    // The kernel spreads by a hash of the 4-tuple; 2,000 source ports all hashing to one
    // listener has probability 2^-1999.
    assert!(accepted.iter().all(|&n| n > 0), "{accepted:?}");
}

#[test]
fn two_workers_serve_connections_round_robin() {
    let accepted = serve_and_check(Accept::RoundRobin, 400);
    println!("round-robin: accepted per worker {accepted:?}");
    assert!(accepted.iter().all(|&n| n > 0), "{accepted:?}");
}

/// The first connection's handler holds until `gate`; the others answer at once.
fn gated_server(
    rt: &Runtime,
    max: usize,
    gate: Arc<Event>,
    started: Arc<AtomicUsize>,
) -> ServerHandle {
    Server::bind("127.0.0.1:0")
        .max_connections(max)
        .serve(rt, move |mut conn: TcpStream| {
            let gate = gate.clone();
            let n = started.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut buf = [0; 1];
                conn.read_exact(&mut buf).await.unwrap();
                if n == 0 {
                    gate.wait().await;
                }
                conn.write_all(&buf).await.unwrap();
            }
        })
        .unwrap()
}

#[test]
fn max_connections_holds_then_the_next_is_served() {
    let rt = runtime(1);
    let gate = Arc::new(Event::new());
    let started = Arc::new(AtomicUsize::new(0));
    let server = gated_server(&rt, 1, gate.clone(), started.clone());
    let addr = server.local_addrs()[0];
    rt.block_on(async move {
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(b"a").await.unwrap();
        eventually("the first handler", || started.load(Ordering::SeqCst) == 1).await;
        // The second connection completes in the kernel's backlog but is not accepted.
        let mut second = TcpStream::connect(addr).await.unwrap();
        second.write_all(b"b").await.unwrap();
        spindle_loop::sleep(Duration::from_millis(100)).await;
        assert_eq!(started.load(Ordering::SeqCst), 1, "accepted past the limit");
        assert_eq!(server.open_connections(), vec![1]);
        gate.set();
        let mut buf = [0; 1];
        first.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"a");
        second.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"b");
        assert_eq!(started.load(Ordering::SeqCst), 2);
        assert!(server.shutdown().await.graceful());
    })
    .unwrap();
}

#[test]
fn graceful_shutdown_finishes_in_flight_and_refuses_new() {
    let rt = runtime(2);
    let (server, in_flight) = support::answer_at_shutdown(&rt, LIMIT);
    let addr = server.local_addrs()[0];
    rt.block_on(async move {
        let mut clients = Vec::new();
        for _ in 0..4 {
            let mut conn = TcpStream::connect(addr).await.unwrap();
            conn.write_all(b"req!").await.unwrap();
            clients.push(conn);
        }
        eventually("4 requests in flight", || {
            in_flight.load(Ordering::SeqCst) == 4
        })
        .await;
        let shutting = server.clone();
        let shutdown = spindle_loop::spawn_local(async move { shutting.shutdown().await }).unwrap();
        for conn in &mut clients {
            let mut buf = [0; 4];
            conn.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"bye!");
        }
        // The handlers answered after the signal, which follows the listeners' close.
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        let outcome = shutdown.await.unwrap();
        assert!(outcome.graceful(), "{outcome:?}");
        assert!(!server.is_serving());
        server.wait_closed().await;
    })
    .unwrap();
}

#[test]
fn abort_clients_closes_them() {
    let rt = runtime(2);
    let (server, started) = support::serve_until_peer_closes(Server::bind("127.0.0.1:0"), &rt);
    let addr = server.local_addrs()[0];
    rt.block_on(async move {
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        eventually("3 handlers", || started.load(Ordering::SeqCst) == 3).await;
        server.abort_clients();
        for conn in &mut clients {
            let mut buf = [0; 1];
            // A reset, or end-of-stream if the shutdown's FIN arrived first: closed either way.
            let read = spindle_loop::timeout(LIMIT, conn.read(&mut buf))
                .await
                .unwrap();
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        }
        eventually("no open connection", || {
            server.open_connections() == vec![0, 0]
        })
        .await;
        assert!(
            server.is_serving(),
            "abort_clients does not close the server"
        );
        server.close();
        server.wait_closed().await;
    })
    .unwrap();
}

/// Records the thread it is dropped on.
struct DropProbe(Arc<Mutex<Vec<String>>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        let name = std::thread::current().name().unwrap_or("").to_string();
        self.0.lock().unwrap().push(name);
    }
}

#[test]
fn shutdown_timeout_cancels_a_stuck_handler_and_its_drop_runs_on_a_worker() {
    let rt = runtime(2);
    let drops = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let (probe_drops, counter) = (drops.clone(), started.clone());
    let server = Server::bind("127.0.0.1:0")
        .shutdown_timeout(Duration::from_millis(50))
        .serve(&rt, move |conn: TcpStream| {
            let probe = DropProbe(probe_drops.clone());
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let _keep = (probe, conn);
                future::pending::<()>().await; // ignores the shutdown signal
            }
        })
        .unwrap();
    let addr = server.local_addrs()[0];
    let outcome = rt
        .block_on(async move {
            let _client = TcpStream::connect(addr).await.unwrap();
            eventually("the stuck handler", || started.load(Ordering::SeqCst) == 1).await;
            let outcome = server.shutdown().await;
            assert_eq!(server.open_connections(), vec![0, 0]);
            outcome
        })
        .unwrap();
    assert!(outcome.cancelled() >= 1, "{outcome:?}");
    let drops = drops.lock().unwrap();
    assert_eq!(drops.len(), 1);
    assert!(
        drops[0].starts_with("spindle-worker"),
        "dropped on {:?}",
        drops[0]
    );
}

#[test]
fn bad_settings_are_errors() {
    let rt = runtime(1);
    let zero = Server::bind("127.0.0.1:0")
        .max_connections(0)
        .serve(&rt, triple);
    assert_eq!(zero.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    let unresolvable = Server::bind("no-such-host.invalid:80").serve(&rt, triple);
    assert!(unresolvable.is_err());
}

#[test]
#[cfg(target_os = "linux")]
fn serve_local_keeps_each_connection_on_its_worker() {
    use std::cell::Cell;
    use std::rc::Rc;
    let rt = runtime(2);
    let server = Server::bind("127.0.0.1:0")
        .serve_local(&rt, || {
            // `!Send` per-worker state: the worker's thread, checked by every connection.
            let home = Rc::new(Cell::new(std::thread::current().id()));
            move |conn: TcpStream| {
                let home = home.clone();
                async move {
                    assert_eq!(home.get(), std::thread::current().id());
                    spindle_loop::yield_now().await;
                    assert_eq!(home.get(), std::thread::current().id());
                    triple(conn).await;
                }
            }
        })
        .unwrap();
    let addr = server.local_addrs()[0];
    let handle = server.clone();
    rt.block_on(async move {
        round_trips(addr, 200, 16).await;
        assert!(handle.shutdown().await.graceful());
    })
    .unwrap();
    assert_eq!(server.accepted_connections().iter().sum::<u64>(), 200);
}

#[test]
fn serve_local_needs_per_worker_listeners() {
    let rt = runtime(1);
    let round_robin = Server::bind("127.0.0.1:0")
        .accept(Accept::RoundRobin)
        .serve_local(&rt, || triple);
    assert_eq!(
        round_robin.unwrap_err().kind(),
        std::io::ErrorKind::Unsupported
    );
}

#[test]
fn a_runtime_shutdown_closes_the_server() {
    let rt = runtime(2);
    let server = Server::bind("127.0.0.1:0")
        .serve(&rt, |conn: TcpStream| async move {
            let _keep = conn;
            future::pending::<()>().await;
        })
        .unwrap();
    let addr = server.local_addrs()[0];
    let server = rt
        .block_on(async move {
            let _client = TcpStream::connect(addr).await.unwrap();
            eventually("one open connection", || {
                server.open_connections().iter().sum::<usize>() == 1
            })
            .await;
            server
        })
        .unwrap();
    rt.shutdown();
    // Every acceptor and connection went with the runtime: nothing left to wait for.
    assert!(!server.is_serving());
    assert_eq!(server.open_connections(), vec![0, 0]);
    let lp = spindle_loop::EventLoop::new().unwrap();
    lp.run_until_complete(async move {
        spindle_loop::timeout(LIMIT, server.wait_closed())
            .await
            .unwrap();
    })
    .unwrap();
}

#[test]
fn open_connections_are_counted_in_the_runtime_metrics() {
    const OPEN: usize = 8;
    let rt = runtime(2);
    // RoundRobin spreads the connections over both workers; each stays open until its client
    // closes.
    let (server, _) = support::serve_until_peer_closes(
        Server::bind("127.0.0.1:0").accept(Accept::RoundRobin),
        &rt,
    );
    let addr = server.local_addrs()[0];
    let metrics_open = {
        let handle = rt.handle().clone();
        move || {
            handle
                .metrics()
                .iter()
                .map(|m| m.open_connections)
                .collect::<Vec<_>>()
        }
    };
    rt.block_on(async move {
        let mut clients = Vec::new();
        for _ in 0..OPEN {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        eventually("every connection accepted", || {
            server.open_connections().iter().sum::<usize>() == OPEN
        })
        .await;
        let per_worker = metrics_open();
        assert_eq!(per_worker.iter().sum::<usize>(), OPEN);
        assert_eq!(per_worker, server.open_connections(), "counted per worker");
        assert!(per_worker.iter().all(|&n| n > 0), "{per_worker:?}");
        drop(clients);
        eventually("every connection closed", || {
            server.open_connections() == vec![0, 0]
        })
        .await;
        // The runtime's count falls before the server's.
        assert_eq!(metrics_open(), vec![0, 0]);
        server.close();
        server.wait_closed().await;
    })
    .unwrap();
}
