//! Server rows: spindle's multi-loop [`Server`](spindle::net::Server) against tokio's
//! multi_thread runtime, 2 workers each, driven by the same client.
//!
//! - `echo_server_rt`: [`ECHO_SERVER_CONNS`] connections doing 1 KiB ping-pong round trips
//!   (the echo load of [`crate::io_rows`]) against spindle's `Server` (one `SO_REUSEPORT`
//!   listener per worker, the default on Linux) and tokio's accept loop spawning one task per
//!   connection ([`io_rows::tokio_rt_server`], the server of `tcp_echo_rt`). Per round trip:
//!   wall, CPU of the whole process (the load generator included, the same on both sides), p99.
//! - `http_hello_rt`: hyper 1.x HTTP/1.1 "Hello, World!" with keep-alive, [`HTTP_CONNS`]
//!   connections, on spindle's `Server` (spindle sockets through hyper's `rt` traits) and on
//!   tokio's accept loop (hyper-util's `TokioIo`); the same hyper code on both sides, no hyper
//!   timer on either. Driven by `wrk` when it runs ([`HttpDriver::Wrk`]: per request
//!   1/requests-per-second, CPU of this process, the servers only, and wrk's p99), else by the
//!   project's own keep-alive client on the echo load's generator ([`HttpDriver::Own`]: one
//!   request in flight per connection, per request wall and CPU of the whole process, p99).
//!   `HTTP_LOAD=own` forces the own client.
//!
//! Every server is started once per process, on threads of its own, and reused by every run;
//! the harness's warm-up round runs each side once before the measured rounds, and the own
//! client completes one exchange per connection before its clock starts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

use crate::clock::{Clock, Sample};
use crate::io_rows::{self, echo_body, echo_load, exchange_load, start, ECHO_MSG};
use crate::workload::Workload;

/// Worker threads of every server of these rows, on both sides.
pub const SERVER_WORKERS: usize = 2;
/// Connections of `echo_server_rt`.
pub const ECHO_SERVER_CONNS: usize = 256;
/// Round trips per connection in one run of `echo_server_rt`.
pub const ECHO_SERVER_ROUNDS: usize = 50;
/// Keep-alive connections of `http_hello_rt`.
pub const HTTP_CONNS: usize = 64;
/// Requests per connection in one run of `http_hello_rt` with the own client.
pub const HTTP_ROUNDS: usize = 200;
/// wrk's threads (`-t`).
pub const WRK_THREADS: usize = 2;
/// wrk's duration of one run (`-d`; wrk counts in whole seconds).
pub const WRK_DURATION: &str = "1s";
/// The body of every reply.
pub const HELLO: &[u8] = b"Hello, World!";

/// spindle: `Server` on a 2-worker runtime, per-worker listeners, echoing every connection.
pub fn spindle_echo_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        spindle_server("spindle-echo-server", |conn| async move {
            use futures_lite::{AsyncReadExt, AsyncWriteExt};
            let _ = conn.set_nodelay(true);
            echo_body!(conn, AsyncReadExt::read, AsyncWriteExt::write_all)
        })
    })
}

/// spindle: `Server` on a 2-worker runtime, per-worker listeners, hyper's HTTP/1.1 on every
/// connection.
pub fn spindle_http_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        spindle_server("spindle-http-server", |conn| async move {
            let _ = conn.set_nodelay(true);
            let _ = http1::Builder::new()
                .serve_connection(conn, service_fn(hello))
                .await;
        })
    })
}

/// tokio: a multi_thread runtime with 2 workers, an accept loop task spawning one task per
/// connection that serves hyper's HTTP/1.1 on it.
pub fn tokio_http_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        start("tokio-http-server", |tx| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(SERVER_WORKERS)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let acceptor = tokio::spawn(async move {
                    while let Ok((conn, _)) = listener.accept().await {
                        let _ = conn.set_nodelay(true);
                        let io = hyper_util::rt::TokioIo::new(conn);
                        tokio::spawn(async move {
                            let _ = http1::Builder::new()
                                .serve_connection(io, service_fn(hello))
                                .await;
                        });
                    }
                });
                let _ = acceptor.await;
            });
        })
    })
}

/// Starts a spindle `Server` with `handler` on a runtime of [`SERVER_WORKERS`] workers, on a
/// thread of its own that then waits for the server to close (it never does).
fn spindle_server<F>(
    name: &str,
    handler: impl Fn(spindle::net::TcpStream) -> F + Send + Sync + 'static,
) -> SocketAddr
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    start(name, move |tx| {
        let rt = spindle::Runtime::builder()
            .worker_threads(SERVER_WORKERS)
            .io_help(crate::io_help())
            .build()
            .unwrap();
        let server = spindle::net::Server::bind("127.0.0.1:0")
            .serve(&rt, handler)
            .unwrap();
        tx.send(server.local_addrs()[0]).unwrap();
        let _ = rt.block_on(async move { server.wait_closed().await });
        // The runtime lives as long as the process.
        std::mem::forget(rt);
    })
}

/// The one route of both HTTP servers.
async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(HELLO))))
}

/// What drives `http_hello_rt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpDriver {
    /// `wrk -t WRK_THREADS -c HTTP_CONNS -d WRK_DURATION --latency`, a process of its own.
    Wrk,
    /// The own keep-alive client ([`http_load_own`]) on the calling thread.
    Own,
}

impl HttpDriver {
    /// `wrk` if it runs and `HTTP_LOAD` is not `own`; decided once per process, the reason
    /// printed to stderr.
    pub fn get() -> HttpDriver {
        static DRIVER: OnceLock<HttpDriver> = OnceLock::new();
        *DRIVER.get_or_init(|| {
            if std::env::var("HTTP_LOAD").is_ok_and(|v| v == "own") {
                eprintln!("http_hello_rt: driven by the own client (HTTP_LOAD=own)");
                return HttpDriver::Own;
            }
            match Command::new("wrk").arg("--version").output() {
                Ok(_) => HttpDriver::Wrk,
                Err(e) => {
                    eprintln!("http_hello_rt: wrk does not run ({e}); driven by the own client");
                    HttpDriver::Own
                }
            }
        })
    }

    /// What one op of `http_hello_rt` is, with what its CPU time covers.
    pub fn unit(self) -> &'static str {
        match self {
            HttpDriver::Wrk => "request (wrk: 1/rps; cpu: servers only)",
            HttpDriver::Own => "request (own client; cpu: client included)",
        }
    }
}

/// The request the own client sends, over and over on each connection.
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// The own HTTP load: [`HTTP_CONNS`] keep-alive connections, each sending a GET and reading
/// the whole response (by its `Content-Length`) [`HTTP_ROUNDS`] times, on the echo load's
/// generator ([`exchange_load`]).
pub fn http_load_own(addr: SocketAddr) -> io_rows::IoRun {
    exchange_load(addr, HTTP_CONNS, HTTP_ROUNDS, GET, &hello_reply_len)
}

/// [`http_reply_len`] for the hello servers: panics (failing the side) on anything but a
/// 200 response whose body is [`HELLO`].
fn hello_reply_len(received: &[u8]) -> Option<usize> {
    let reply = http_reply_len(received).expect("a well-formed HTTP/1.1 response");
    if let Some(len) = reply {
        assert_eq!(&received[len - HELLO.len()..len], HELLO, "the hello body");
    }
    reply
}

/// The length of the complete HTTP/1.1 response at the start of `received` (headers, blank
/// line, `Content-Length` bytes of body), `Ok(None)` while it is incomplete, an error when it
/// is not a response with a `Content-Length` (this client reads no other kind).
///
/// ```
/// use spindle_benches::server_rows::http_reply_len;
/// let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
/// assert_eq!(http_reply_len(reply), Ok(Some(reply.len())));
/// assert_eq!(http_reply_len(&reply[..reply.len() - 1]), Ok(None));
/// assert!(http_reply_len(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
/// ```
pub fn http_reply_len(received: &[u8]) -> Result<Option<usize>, String> {
    let Some(head_end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&received[..head_end]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200 ") {
        return Err(format!("status line {status:?}"));
    }
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .ok_or("no content-length")?
        .1
        .trim()
        .parse::<usize>()
        .map_err(|e| format!("content-length: {e}"))?;
    let total = head_end + 4 + length;
    Ok((received.len() >= total).then_some(total))
}

/// What one wrk run reported.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkReport {
    /// Requests completed.
    pub requests: u64,
    /// Requests per second.
    pub rps: f64,
    /// The 99th percentile of the latency distribution (`--latency`).
    pub p99: Duration,
}

/// Reads wrk's output (`--latency`); an error when a figure is missing or wrk reports socket
/// errors or non-2xx replies (a run with failures is not a measurement).
///
/// ```
/// use spindle_benches::server_rows::parse_wrk;
/// let out = "  Latency Distribution\n     50%  549.00us\n     99%    1.17ms\n\
///            \x20 108531 requests in 1.00s, 12.32MB read\nRequests/sec: 108329.51\n";
/// let r = parse_wrk(out).unwrap();
/// assert_eq!((r.requests, r.p99.as_micros()), (108531, 1170));
/// ```
pub fn parse_wrk(out: &str) -> Result<WrkReport, String> {
    let mut requests = None;
    let mut rps = None;
    let mut p99 = None;
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = Some(wrk_duration(v.trim())?);
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            requests = n.trim().parse::<u64>().ok();
        } else if line.starts_with("Socket errors:") || line.starts_with("Non-2xx") {
            return Err(format!("wrk reports failures: {line}"));
        }
    }
    Ok(WrkReport {
        requests: requests.ok_or("no request count")?,
        rps: rps.filter(|r| *r > 0.0).ok_or("no Requests/sec")?,
        p99: p99.ok_or("no 99% line (was --latency given?)")?,
    })
}

/// One of wrk's durations: `549.00us`, `1.17ms`, `2.00s`, `1.50m`.
fn wrk_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("no unit in {s:?}"))?;
    let (value, unit) = s.split_at(split);
    let value: f64 = value.parse().map_err(|e| format!("{s:?}: {e}"))?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unit {unit:?} in {s:?}")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// One wrk run against `addr`: per request 1/rps and this process's CPU time (the servers:
/// wrk is another process), and wrk's p99.
pub fn http_load_wrk(addr: SocketAddr) -> Sample {
    let clock = Clock::start();
    let out = Command::new("wrk")
        .args(["-t", &WRK_THREADS.to_string()])
        .args(["-c", &HTTP_CONNS.to_string()])
        .args(["-d", WRK_DURATION, "--latency"])
        .arg(format!("http://{addr}/"))
        .output()
        .expect("run wrk");
    let spent = clock.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {}", out.status);
    let report = parse_wrk(&text).unwrap_or_else(|e| panic!("{e}; wrk printed:\n{text}"));
    Sample {
        wall: Duration::from_secs_f64(1.0 / report.rps),
        cpu: spent.cpu / report.requests.max(1) as u32,
        p99: Some(report.p99),
    }
}

/// One run of `http_hello_rt` against `addr` with `driver`: per request wall, CPU and p99.
pub fn http_load(driver: HttpDriver, addr: SocketAddr) -> Sample {
    match driver {
        HttpDriver::Wrk => http_load_wrk(addr),
        HttpDriver::Own => {
            let run = http_load_own(addr);
            let n = (HTTP_CONNS * HTTP_ROUNDS) as u32;
            Sample {
                wall: run.elapsed / n,
                cpu: run.cpu / n,
                p99: Some(run.quantile(0.99)),
            }
        }
    }
}

/// One run of `echo_server_rt` against `addr`.
pub fn echo_server_load(addr: SocketAddr) -> io_rows::IoRun {
    echo_load(addr, ECHO_SERVER_CONNS, ECHO_SERVER_ROUNDS, ECHO_MSG)
}

/// The server rows of `compare` (time per round trip or request, wall and CPU, and p99).
pub fn rows() -> Vec<Workload> {
    let driver = HttpDriver::get();
    vec![
        Workload::new(
            "echo_server_rt",
            "round trip",
            (ECHO_SERVER_CONNS * ECHO_SERVER_ROUNDS) as u64,
            || echo_server_load(spindle_echo_server()).sample(),
        )
        .peer("tokio_multi_thread", || {
            echo_server_load(io_rows::tokio_rt_server()).sample()
        }),
        // One op per run: each side reports its figures per request already.
        Workload::new("http_hello_rt", driver.unit(), 1, move || {
            http_load(driver, spindle_http_server())
        })
        .peer("tokio_hyper_multi_thread", move || {
            http_load(driver, tokio_http_server())
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_reply_len_waits_for_the_whole_body_and_splits_pipelined_replies() {
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\ndate: x\r\n\r\nHello, World!";
        let mut two = one.to_vec();
        two.extend_from_slice(one);
        assert_eq!(http_reply_len(&two), Ok(Some(one.len())));
        assert_eq!(http_reply_len(&one[..one.len() - 1]), Ok(None));
        assert_eq!(http_reply_len(&one[..10]), Ok(None));
    }

    #[test]
    fn http_reply_len_rejects_what_it_cannot_delimit() {
        assert!(http_reply_len(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n").is_err());
        assert!(http_reply_len(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(http_reply_len(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
    }

    #[test]
    fn parse_wrk_reads_rps_requests_and_p99_in_every_unit() {
        let out = "Running 1s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n\
                   \x20 Latency Distribution\n     50%  549.00us\n     75%  682.00us\n\
                   \x20    90%  809.00us\n     99%    2.50s\n\
                   \x20 1000 requests in 1.00s, 12.32MB read\nRequests/sec:   998.50\n\
                   Transfer/sec:     12.30MB\n";
        let r = parse_wrk(out).unwrap();
        assert_eq!(r.requests, 1000);
        assert_eq!(r.rps, 998.5);
        assert_eq!(r.p99, Duration::from_millis(2500));
        assert_eq!(wrk_duration("750.00us"), Ok(Duration::from_micros(750)));
    }

    #[test]
    fn parse_wrk_refuses_a_run_with_errors_or_without_latency() {
        let ok = "     99%    1.00ms\n  10 requests in 1.00s, 1KB read\nRequests/sec: 10.00\n";
        assert!(parse_wrk(ok).is_ok());
        let errors = format!("{ok}  Socket errors: connect 0, read 3, write 0, timeout 0\n");
        assert!(parse_wrk(&errors).is_err());
        let non_2xx = format!("{ok}  Non-2xx or 3xx responses: 10\n");
        assert!(parse_wrk(&non_2xx).is_err());
        assert!(parse_wrk("  10 requests in 1.00s, 1KB read\nRequests/sec: 10.00\n").is_err());
    }

    /// Runs `load` on a thread of its own; fails if it takes more than 30 s.
    fn within_30s(load: impl FnOnce() -> io_rows::IoRun + Send + 'static) -> io_rows::IoRun {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(load()));
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the load finished within 30 s")
    }

    #[test]
    fn both_http_servers_answer_hello_to_the_own_client() {
        for addr in [spindle_http_server(), tokio_http_server()] {
            let run = within_30s(move || exchange_load(addr, 2, 3, GET, &hello_reply_len));
            assert_eq!(run.latencies_ns.len(), 6);
        }
    }

    #[test]
    fn both_echo_servers_echo_every_round_trip() {
        for addr in [spindle_echo_server(), io_rows::tokio_rt_server()] {
            let run = within_30s(move || echo_load(addr, 4, 3, ECHO_MSG));
            assert_eq!(run.latencies_ns.len(), 12);
        }
    }
}
