//! `io_compare`: spindle's TCP servers against tokio's, driven by one load generator that
//! uses neither runtime (see `spindle_benches::io_rows`).
//!
//! ```text
//! cargo run --release -p spindle-benches --bin io_compare [ROW_FILTER]
//! ```
//!
//! Rows: `tcp_echo_1loop`, `tcp_echo_rt`, `tcp_connect_accept`, and the server rows
//! (`spindle_benches::server_rows`) `echo_server_rt` and `http_hello_rt`, the latter always with
//! the own keep-alive client here (`compare` drives it with wrk when wrk runs). `COMPARE_RUNS` sets the
//! measured rounds (default 7, after one warm-up round); each round runs every side once,
//! in turn, the first side alternating. Per side it prints the medians over the rounds of: wall time per round trip,
//! CPU time per round trip (the whole process, load generator included), and the p50 and
//! p99 round-trip latency; then the ratios spindle/tokio (below 1.0: spindle is better).
//!
//! `IO_CONNS=N` runs the `tcp_echo_*` rows over N connections instead of 64 (about the same
//! number of round trips in all): below the load where the load generator and the server are
//! both saturated and pace each other, the servers' own costs show (README, I/O rows).
//!
//! `IO_SIDE=0` (spindle) or `IO_SIDE=1` (tokio) runs one side only, for profiling it alone
//! (`strace -c -f`, `perf stat`): it prints that side's line and no ratio. `IO_HELP=0` builds
//! spindle's 2-worker runtimes with `io_help(false)` (idle workers do not help their siblings'
//! pollers), for an A/B of that protocol.

use std::net::SocketAddr;
use std::time::Duration;

use spindle_benches::io_rows::{
    connect_load, echo_load, spindle_1loop_server, spindle_rt_server, tokio_current_thread_server,
    tokio_rt_server, IoRun, CONNECT_N, ECHO_CONNS, ECHO_MSG, ECHO_ROUNDS,
};
use spindle_benches::server_rows::{
    echo_server_load, http_load_own, spindle_echo_server, spindle_http_server, tokio_http_server,
    ECHO_SERVER_CONNS, ECHO_SERVER_ROUNDS, HTTP_CONNS, HTTP_ROUNDS,
};

/// A side: its name and the function that starts its server (once) and gives its address.
type Side = (&'static str, fn() -> SocketAddr);

struct Row {
    name: &'static str,
    sides: [Side; 2],
    load: fn(SocketAddr) -> IoRun,
    ops: usize,
}

/// The echo rows' connections and round trips per connection: `ECHO_CONNS` x `ECHO_ROUNDS`, or
/// with `IO_CONNS=N` N connections sharing about as many round trips (at least one each).
fn echo_shape() -> (usize, usize) {
    static SHAPE: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();
    *SHAPE.get_or_init(|| {
        let conns = match std::env::var("IO_CONNS") {
            Ok(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    eprintln!("io_compare: IO_CONNS must be a number of connections above 0, not {v:?}");
                    std::process::exit(2);
                }
            },
            Err(_) => ECHO_CONNS,
        };
        (conns, (ECHO_CONNS * ECHO_ROUNDS / conns).max(1))
    })
}

fn echo(addr: SocketAddr) -> IoRun {
    let (conns, rounds) = echo_shape();
    echo_load(addr, conns, rounds, ECHO_MSG)
}

fn connect(addr: SocketAddr) -> IoRun {
    connect_load(addr, CONNECT_N, ECHO_MSG)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let runs: usize = std::env::var("COMPARE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .max(1);
    let echo_ops = {
        let (conns, rounds) = echo_shape();
        conns * rounds
    };
    let rows = [
        Row {
            name: "tcp_echo_1loop",
            sides: [
                ("spindle_1loop", spindle_1loop_server),
                ("tokio_current_thread", tokio_current_thread_server),
            ],
            load: echo,
            ops: echo_ops,
        },
        Row {
            name: "tcp_echo_rt",
            sides: [
                ("spindle_rt2", spindle_rt_server),
                ("tokio_multi_thread2", tokio_rt_server),
            ],
            load: echo,
            ops: echo_ops,
        },
        Row {
            name: "tcp_connect_accept",
            sides: [
                ("spindle_rt2", spindle_rt_server),
                ("tokio_multi_thread2", tokio_rt_server),
            ],
            load: connect,
            ops: CONNECT_N,
        },
        Row {
            name: "echo_server_rt",
            sides: [
                ("spindle_server2", spindle_echo_server),
                ("tokio_multi_thread2", tokio_rt_server),
            ],
            load: echo_server_load,
            ops: ECHO_SERVER_CONNS * ECHO_SERVER_ROUNDS,
        },
        Row {
            name: "http_hello_rt",
            sides: [
                ("spindle_server2_hyper", spindle_http_server),
                ("tokio_multi_thread2_hyper", tokio_http_server),
            ],
            load: http_load_own,
            ops: HTTP_CONNS * HTTP_ROUNDS,
        },
    ];
    println!(
        "{:<20} {:<22} {:>12} {:>12} {:>10} {:>10}",
        "row", "side", "wall/op", "cpu/op", "p50", "p99"
    );
    let only: Option<usize> = std::env::var("IO_SIDE").ok().and_then(|v| v.parse().ok());
    for row in rows.iter().filter(|r| r.name.contains(&filter)) {
        if let Some(side) = only {
            let addr = (row.sides[side].1)();
            (row.load)(addr);
            let runs: Vec<IoRun> = (0..runs).map(|_| (row.load)(addr)).collect();
            print_side(row.name, row.sides[side].0, summarize(&runs, row.ops));
            continue;
        }
        let addrs = row.sides.map(|(_, start)| start());
        // Warm-up round, then the measured ones, sides interleaved.
        for addr in addrs {
            (row.load)(addr);
        }
        let mut results: [Vec<IoRun>; 2] = [Vec::new(), Vec::new()];
        for run in 0..runs {
            // The side that goes first alternates (as in `compare`'s rounds): the run right
            // after the other side's is not the same as the first.
            for turn in 0..2 {
                let i = (run + turn) % 2;
                results[i].push((row.load)(addrs[i]));
            }
        }
        let mut summary = Vec::new();
        for (i, (side, _)) in row.sides.iter().enumerate() {
            let medians = summarize(&results[i], row.ops);
            print_side(row.name, side, medians);
            summary.push(medians);
        }
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-12);
        let (s, t) = (summary[0], summary[1]);
        println!(
            "{:<20} {:<22} {:>12.2} {:>12.2} {:>10.2} {:>10.2}",
            row.name,
            "spindle/tokio",
            ratio(s.0, t.0),
            ratio(s.1, t.1),
            ratio(s.2, t.2),
            ratio(s.3, t.3)
        );
    }
}

/// A side's medians over its runs: wall and CPU time per op, p50 and p99 latency.
fn summarize(runs: &[IoRun], ops: usize) -> (Duration, Duration, Duration, Duration) {
    let per_op = |d: Duration| d / ops as u32;
    (
        median(runs.iter().map(|r| per_op(r.elapsed)).collect()),
        median(runs.iter().map(|r| per_op(r.cpu)).collect()),
        median(runs.iter().map(|r| r.quantile(0.5)).collect()),
        median(runs.iter().map(|r| r.quantile(0.99)).collect()),
    )
}

/// One side's line of the table.
fn print_side(
    row: &str,
    side: &str,
    (wall, cpu, p50, p99): (Duration, Duration, Duration, Duration),
) {
    println!(
        "{:<20} {:<22} {:>10.2}us {:>10.2}us {:>8.1}us {:>8.1}us",
        row,
        side,
        wall.as_secs_f64() * 1e6,
        cpu.as_secs_f64() * 1e6,
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}
