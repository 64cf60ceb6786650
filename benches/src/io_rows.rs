//! I/O rows: TCP echo servers on spindle and on tokio, driven by one load generator that
//! uses neither runtime (a bare `polling` loop on its own thread, or plain blocking sockets).
//!
//! - `tcp_echo_1loop`: 64 connections, 1 KiB messages, ping-pong round trips, against
//!   spindle's single loop and tokio's current_thread runtime;
//! - `tcp_echo_rt`: the same against 2-worker runtimes (spindle's and tokio's multi_thread);
//! - `tcp_connect_accept`: one new connection per request (connect, 1 KiB each way, close
//!   with a reset so no TIME_WAIT piles up), sequential, against the 2-worker runtimes.
//!
//! Each server is started once per process, on its own threads, and reused by every run, so
//! both sides are equally warm. Both serve the same way: an accept loop task, and per
//! connection a task that reads up to 4 KiB and writes back what it read until end of stream.
//! A run reports its wall time, the CPU time of the whole process (client included: the same
//! client on both sides, so differences are the servers'), and each round trip's latency.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use polling::{Event, Events, PollMode, Poller};

use crate::clock::{Clock, Sample};

/// Connections of the echo rows.
pub const ECHO_CONNS: usize = 64;
/// Round trips per connection in one run of an echo row.
pub const ECHO_ROUNDS: usize = 200;
/// Message size of the echo rows.
pub const ECHO_MSG: usize = 1024;
/// Connections in one run of `tcp_connect_accept`.
pub const CONNECT_N: usize = 1000;

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct IoRun {
    /// Wall time of the run.
    pub elapsed: Duration,
    /// CPU time (user + system) of the process during the run.
    pub cpu: Duration,
    /// Each round trip's latency, in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
}

impl IoRun {
    /// The run's wall and CPU time and its p99 latency, for the harness.
    pub fn sample(&self) -> Sample {
        Sample {
            wall: self.elapsed,
            cpu: self.cpu,
            p99: Some(self.quantile(0.99)),
        }
    }

    /// The `q`-quantile of the latencies (0.5: median, 0.99: p99).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies_ns.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies_ns.len() - 1) as f64 * q).round() as usize;
        Duration::from_nanos(self.latencies_ns[i])
    }
}

/// The per-connection echo: read up to 4 KiB, write it back, until end of stream or error.
/// (Also the echo of [`crate::server_rows`].)
macro_rules! echo_body {
    ($conn:expr, $read:path, $write_all:path) => {{
        let mut conn = $conn;
        let mut buf = vec![0u8; 4096];
        loop {
            match $read(&mut conn, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if $write_all(&mut conn, &buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    }};
}

pub(crate) use echo_body;

/// Starts `serve` on a thread of its own, which reports the listening address.
pub(crate) fn start(
    name: &str,
    serve: impl FnOnce(mpsc::Sender<SocketAddr>) + Send + 'static,
) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || serve(tx))
        .expect("spawn a server thread");
    rx.recv().expect("the server reports its address")
}

/// spindle, one loop on one thread.
pub fn spindle_1loop_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        start("spindle-1loop", |tx| {
            use futures_lite::{AsyncReadExt, AsyncWriteExt};
            let lp = spindle::EventLoop::new().unwrap();
            let _ = lp.run_until_complete(async move {
                let listener = spindle::net::TcpListener::bind("127.0.0.1:0").unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                while let Ok((conn, _)) = listener.accept().await {
                    let _ = conn.set_nodelay(true);
                    let task = spindle::spawn_local(async move {
                        echo_body!(conn, AsyncReadExt::read, AsyncWriteExt::write_all)
                    });
                    drop(task);
                }
            });
        })
    })
}

/// spindle, a 2-worker runtime: the accept loop and every connection are stealable tasks.
pub fn spindle_rt_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        start("spindle-rt", |tx| {
            use futures_lite::{AsyncReadExt, AsyncWriteExt};
            let rt = spindle::Runtime::builder()
                .worker_threads(2)
                .io_help(crate::io_help())
                .build()
                .unwrap();
            let _ = rt.block_on(async move {
                let listener = spindle::net::TcpListener::bind("127.0.0.1:0").unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let acceptor = spindle::spawn(async move {
                    while let Ok((conn, _)) = listener.accept().await {
                        let _ = conn.set_nodelay(true);
                        let task = spindle::spawn(async move {
                            echo_body!(conn, AsyncReadExt::read, AsyncWriteExt::write_all)
                        });
                        drop(task);
                    }
                })
                .unwrap();
                let _ = acceptor.await;
            });
            // The runtime lives as long as the process.
            std::mem::forget(rt);
        })
    })
}

/// tokio, current_thread.
pub fn tokio_current_thread_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        start("tokio-ct", |tx| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(tokio_accept_loop(tx));
        })
    })
}

/// tokio, multi_thread with 2 workers.
pub fn tokio_rt_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        start("tokio-rt", |tx| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let acceptor = tokio::spawn(tokio_accept_loop(tx));
                let _ = acceptor.await;
            });
        })
    })
}

async fn tokio_accept_loop(tx: mpsc::Sender<SocketAddr>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tx.send(listener.local_addr().unwrap()).unwrap();
    while let Ok((conn, _)) = listener.accept().await {
        let _ = conn.set_nodelay(true);
        tokio::spawn(async move { echo_body!(conn, AsyncReadExt::read, AsyncWriteExt::write_all) });
    }
}

/// One client connection of an exchange load: where it is in its round trip.
struct ExchangeConn {
    stream: TcpStream,
    sent_at: Instant,
    /// Bytes of the reply received so far (a reply may come in several reads).
    inbox: Vec<u8>,
    rounds_left: usize,
}

/// How long the complete reply at the start of `received` is, `None` while it is incomplete.
pub type ReplyLen<'a> = &'a dyn Fn(&[u8]) -> Option<usize>;

/// The echo load: `conns` connections to `addr`, each doing `rounds` ping-pong round trips of
/// `msg` bytes (see [`exchange_load`]).
pub fn echo_load(addr: SocketAddr, conns: usize, rounds: usize, msg: usize) -> IoRun {
    let payload = vec![0x5au8; msg];
    exchange_load(addr, conns, rounds, &payload, &|received| {
        (received.len() >= msg).then_some(msg)
    })
}

/// A request/reply load: `conns` connections to `addr`, each sending `request` and waiting
/// for the whole reply (as `reply_len` delimits it) `rounds` times over, one exchange in
/// flight per connection; all driven by one bare `polling` loop on the calling thread.
///
/// Before the clock starts every connection completes one exchange (so the server's accept
/// and per-connection setup are outside the timed part, alike on every server); after it
/// stops, each closes with a reset (SO_LINGER 0: no TIME_WAIT piles up over many runs).
pub fn exchange_load(
    addr: SocketAddr,
    conns: usize,
    rounds: usize,
    request: &[u8],
    reply_len: ReplyLen<'_>,
) -> IoRun {
    let mut load = Exchanges {
        poller: Poller::new().unwrap(),
        clients: (0..conns)
            .map(|_| {
                let stream = TcpStream::connect(addr).unwrap();
                stream.set_nodelay(true).unwrap();
                stream.set_nonblocking(true).unwrap();
                ExchangeConn {
                    stream,
                    sent_at: Instant::now(),
                    inbox: Vec::new(),
                    rounds_left: 0,
                }
            })
            .collect(),
        request,
        reply_len,
        buf: vec![0u8; 64 * 1024],
    };
    for (key, c) in load.clients.iter().enumerate() {
        // SAFETY: each stream is deleted from the poller below, before it is dropped.
        unsafe {
            load.poller
                .add_with_mode(&c.stream, Event::readable(key), PollMode::Level)
                .unwrap()
        };
    }
    load.run(1);
    let clock = Clock::start();
    let mut latencies = load.run(rounds);
    let Sample {
        wall: elapsed, cpu, ..
    } = clock.stop();
    for c in &load.clients {
        load.poller.delete(&c.stream).unwrap();
        socket2::SockRef::from(&c.stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    latencies.sort_unstable();
    IoRun {
        elapsed,
        cpu,
        latencies_ns: latencies,
    }
}

/// The client side of [`exchange_load`]: its connections, registered with its poller.
struct Exchanges<'a> {
    poller: Poller,
    clients: Vec<ExchangeConn>,
    request: &'a [u8],
    reply_len: ReplyLen<'a>,
    buf: Vec<u8>,
}

impl Exchanges<'_> {
    /// Runs `rounds` exchanges on every connection (each sends its first request, then one
    /// per reply); returns each exchange's latency in nanoseconds.
    fn run(&mut self, rounds: usize) -> Vec<u64> {
        let mut latencies = Vec::with_capacity(self.clients.len() * rounds);
        if rounds == 0 {
            return latencies;
        }
        for c in &mut self.clients {
            c.rounds_left = rounds;
            c.sent_at = Instant::now();
            // A request always fits the socket buffer: nothing else is in flight on it.
            c.stream.write_all(self.request).unwrap();
        }
        let mut active = self.clients.len();
        let mut events = Events::new();
        while active > 0 {
            events.clear();
            // No timeout (polling would arm a timerfd for it on every wait): `compare`'s
            // watchdog ends a run that hangs.
            self.poller.wait(&mut events, None).unwrap();
            for ev in events.iter() {
                let c = &mut self.clients[ev.key];
                loop {
                    match c.stream.read(&mut self.buf) {
                        Ok(0) => panic!("the server closed a connection"),
                        Ok(n) => c.inbox.extend_from_slice(&self.buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("load client: {e}"),
                    }
                }
                if let Some(len) = (self.reply_len)(&c.inbox) {
                    latencies.push(c.sent_at.elapsed().as_nanos() as u64);
                    c.inbox.drain(..len);
                    c.rounds_left -= 1;
                    if c.rounds_left == 0 {
                        active -= 1;
                    } else {
                        c.sent_at = Instant::now();
                        c.stream.write_all(self.request).unwrap();
                    }
                }
            }
        }
        latencies
    }
}

/// The connect/accept load: `n` sequential connections, each sending `msg` bytes, reading
/// them back, and closing with a reset (SO_LINGER 0: no TIME_WAIT left behind).
pub fn connect_load(addr: SocketAddr, n: usize, msg: usize) -> IoRun {
    let payload = vec![0xa5u8; msg];
    let mut buf = vec![0u8; msg];
    let mut latencies = Vec::with_capacity(n);
    let clock = Clock::start();
    for _ in 0..n {
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&payload).unwrap();
        s.read_exact(&mut buf).unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
        latencies.push(started.elapsed().as_nanos() as u64);
    }
    let Sample {
        wall: elapsed, cpu, ..
    } = clock.stop();
    latencies.sort_unstable();
    IoRun {
        elapsed,
        cpu,
        latencies_ns: latencies,
    }
}

/// The I/O rows of `compare` (time per round trip or connection, wall and CPU; `io_compare`
/// adds the latency quantiles).
pub fn rows() -> Vec<crate::workload::Workload> {
    use crate::workload::Workload;
    let sample = |run: IoRun| run.sample();
    let echo = move |addr: SocketAddr| sample(echo_load(addr, ECHO_CONNS, ECHO_ROUNDS, ECHO_MSG));
    let connect = move |addr: SocketAddr| sample(connect_load(addr, CONNECT_N, ECHO_MSG));
    let echo_ops = (ECHO_CONNS * ECHO_ROUNDS) as u64;
    vec![
        Workload::new("tcp_echo_1loop", "round trip", echo_ops, move || {
            echo(spindle_1loop_server())
        })
        .peer("tokio_current_thread", move || {
            echo(tokio_current_thread_server())
        }),
        Workload::new("tcp_echo_rt", "round trip", echo_ops, move || {
            echo(spindle_rt_server())
        })
        .peer("tokio_multi_thread", move || echo(tokio_rt_server())),
        Workload::new(
            "tcp_connect_accept",
            "connection",
            CONNECT_N as u64,
            move || connect(spindle_rt_server()),
        )
        .peer("tokio_multi_thread", move || connect(tokio_rt_server())),
    ]
}
