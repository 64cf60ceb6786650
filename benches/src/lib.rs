//! Measurement harness for spindle's `compare` binary and criterion benches.
//!
//! The harness is deliberately tiny: a workload is a closure that performs one
//! complete run (its own setup and teardown excluded from the clock) and returns
//! the time it wants charged. [`measure`] runs it once to warm up, then
//! [`runs`] more times, and reports the median and minimum time per operation
//! (`compare` interleaves the sides of a workload instead, and takes the same
//! [`median_ns`]). [`print_table`] prints one [`Row`] per (workload, peer) with
//! the ratio spindle/peer as the last column: below 1.0 means spindle is faster.
//!
//! The workloads live in pairs of modules, spindle's side apart from its peers'
//! (so the peer side builds and checks on its own):
//!
//! - one event loop: [`spindle_side`] and [`peers`] (tokio, async-task and
//!   plain-std floors);
//! - the cross-thread bridge: [`bridge_spindle`] and [`bridge_peers`] (tokio and
//!   crossbeam-channel floors);
//! - the combinators (`gather`, `yield_now`): [`combinators_spindle`] and
//!   [`combinators_peers`] (tokio and `futures-util`'s `join_all`);
//! - multi-thread runtimes: [`runtime_spindle`], [`runtime_peers`] (tokio's
//!   multi-thread runtime) and [`runtime_async_executor`] (async-executor run by as many
//!   threads).

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub mod bridge_peers;
pub mod bridge_spindle;
pub mod combinators_peers;
pub mod combinators_spindle;
pub mod io_rows;
pub mod peers;
pub mod runtime_async_executor;
pub mod runtime_peers;
pub mod runtime_spindle;
pub mod spindle_side;
pub mod sync_rows;

/// Number of measured runs when `COMPARE_RUNS` is not set.
pub const DEFAULT_RUNS: usize = 15;

/// `call_soon`: callbacks scheduled (all of them first), then run.
pub const CALL_SOON_N: u64 = 1_000_000;
/// `spawn_many_local`: trivial tasks spawned from inside a running task.
pub const SPAWN_N: u64 = 10_000;
/// `timers_100k`: number of timers.
pub const TIMERS_N: u64 = 100_000;
/// `timers_100k`: the timers' deadlines are spread evenly over this span.
pub const TIMERS_SPREAD: Duration = Duration::from_millis(50);
/// `timers_due_100k`: number of timers, all already due when the loop runs.
pub const TIMERS_DUE_N: u64 = 100_000;
/// `yield_many`: number of tasks.
pub const YIELD_TASKS: u64 = 200;
/// `yield_many`: yields per task.
pub const YIELD_PER_TASK: u64 = 1_000;
/// `call_soon_threadsafe`: closures sent by one producer thread.
pub const THREADSAFE_N: u64 = 1_000_000;
/// `run_coroutine_threadsafe`: sequential round trips from a plain thread.
pub const ROUND_TRIP_N: u64 = 10_000;
/// `gather_ready_tasks`: tasks spawned, then gathered (they are ready at once).
pub const GATHER_N: u64 = 10_000;
/// `yield_now_loop`: yields of one task.
pub const YIELD_NOW_N: u64 = 100_000;
/// Worker threads of the multi-thread workloads (the setting: 2 workers).
pub const RT_WORKERS: usize = 2;
/// Tasks per multi-thread spawn workload (`spawn_many_*`, tokio's own size).
pub const RT_SPAWN_N: u64 = 10_000;
/// Rounds of `rt_ping_pong`.
pub const RT_PING_PONG_N: u64 = 1_000;
/// Depth of `rt_chained_spawn`.
pub const RT_CHAIN_N: u64 = 1_000;

thread_local! {
    /// What the cross-thread closures of the bridge workloads add to, on the consuming thread:
    /// the same cheap, uncontended body on every side.
    static SINK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Adds `i` to this thread's sink (the body of every `call_soon_threadsafe` closure).
pub fn sink(i: u64) {
    SINK.with(|s| s.set(s.get().wrapping_add(i)));
}

/// Takes this thread's sink, leaving 0.
pub fn take_sink() -> u64 {
    SINK.with(|s| s.replace(0))
}

/// `0 + 1 + ... + (n - 1)`: what the sink holds after closures `sink(0..n)` ran.
pub fn sum_below(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Number of measured runs: `COMPARE_RUNS` from the environment if it parses
/// as a positive integer, else [`DEFAULT_RUNS`].
pub fn runs() -> usize {
    std::env::var("COMPARE_RUNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_RUNS)
}

/// Summary of one measured workload, per operation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Median over the measured runs of (charged time / ops), in nanoseconds.
    pub median_ns: f64,
    /// Minimum over the measured runs of (charged time / ops), in nanoseconds.
    pub min_ns: f64,
    /// Number of measured runs (the warm-up run is not counted).
    pub runs: usize,
}

/// Runs `run` once as a warm-up, then `runs` times measured, and returns the
/// median and minimum of `charged / ops` in nanoseconds.
///
/// `run` performs one complete repetition of the workload and returns the time
/// to charge for it; it is expected to keep setup (building a loop or runtime)
/// and teardown out of that time. `ops` is the number of operations one
/// repetition performs. `runs` is clamped to at least 1.
pub fn measure<F: FnMut() -> Duration>(runs: usize, ops: u64, mut run: F) -> Stats {
    let runs = runs.max(1);
    let ops = ops.max(1) as f64;
    let _warm_up = run();
    let per_op: Vec<f64> = (0..runs).map(|_| run().as_nanos() as f64 / ops).collect();
    // `runs >= 1`, so there is a minimum; under `total_cmp` it is what sorting puts first.
    let min_ns = per_op
        .iter()
        .copied()
        .min_by(f64::total_cmp)
        .expect("at least one measured run");
    Stats {
        median_ns: median_ns(per_op),
        min_ns,
        runs,
    }
}

/// The median of `per_op` (sorted with `f64::total_cmp`): the middle element for an odd
/// length, the mean of the two middle elements for an even one; `NaN` when empty.
pub fn median_ns(mut per_op: Vec<f64>) -> f64 {
    if per_op.is_empty() {
        return f64::NAN;
    }
    per_op.sort_by(f64::total_cmp);
    let mid = per_op.len() / 2;
    if per_op.len() % 2 == 1 {
        per_op[mid]
    } else {
        (per_op[mid - 1] + per_op[mid]) / 2.0
    }
}

/// One line of the comparison table: a workload measured on spindle and on one
/// peer. Times are median nanoseconds per operation; `NaN` means the side
/// failed (panicked) and prints as `FAILED`.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Workload name, e.g. `call_soon`.
    pub workload: String,
    /// Spindle's median time per operation, in nanoseconds.
    pub spindle_ns: f64,
    /// Name of the peer this row compares against, e.g. `tokio_current_thread`.
    pub peer_name: String,
    /// The peer's median time per operation, in nanoseconds.
    pub peer_ns: f64,
}

impl Row {
    /// `spindle_ns / peer_ns`: below 1.0 spindle is faster, above 1.0 slower.
    /// `NaN` if either side failed or the peer took no time.
    pub fn ratio(&self) -> f64 {
        if self.peer_ns > 0.0 {
            self.spindle_ns / self.peer_ns
        } else {
            f64::NAN
        }
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns.is_nan() {
        "FAILED".to_owned()
    } else if ns.abs() >= 100.0 {
        format!("{ns:.0}")
    } else if ns.abs() >= 10.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.2}")
    }
}

/// Renders `rows` as an aligned text table: workload, spindle median (ns/op),
/// peer, peer median (ns/op), and the ratio spindle/peer as the last column.
pub fn format_table(rows: &[Row]) -> String {
    let header = [
        "workload",
        "spindle ns/op",
        "peer",
        "peer ns/op",
        "spindle/peer",
    ];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let ratio = r.ratio();
            [
                r.workload.clone(),
                fmt_ns(r.spindle_ns),
                r.peer_name.clone(),
                fmt_ns(r.peer_ns),
                if ratio.is_nan() {
                    "n/a".to_owned()
                } else {
                    format!("{ratio:.2}")
                },
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &cells {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    // Text columns (0 and 2) align left, numbers right.
    let line = |cols: [&str; 5]| {
        let mut s = String::new();
        for (i, (cell, w)) in cols.iter().zip(width).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i == 0 || i == 2 {
                let _ = write!(s, "{cell:<w$}");
            } else {
                let _ = write!(s, "{cell:>w$}");
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header);
    let total: usize = width.iter().sum::<usize>() + 2 * (width.len() - 1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for row in &cells {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

/// Prints [`format_table`] of `rows` to stdout.
pub fn print_table(rows: &[Row]) {
    print!("{}", format_table(rows));
}

/// A one-line description of the machine: `nproc`, `uname -m` and the rustc
/// that compiled this crate, e.g. `machine: nproc=2 arch=x86_64 rustc=rustc 1.95.0 (...)`.
pub fn machine_line() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let arch = std::process::Command::new("uname")
        .arg("-m")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let mut line = format!("machine: nproc={nproc} arch={arch}");
    if let Some(rustc) = option_env!("SPINDLE_BENCHES_RUSTC_VERSION") {
        let _ = write!(line, " rustc={rustc}");
    }
    line
}

/// Unwraps `r`, panicking with `what` and the error's `Display` text on `Err`.
///
/// Spindle's `Rejected<F>`, `LoopError` and `TaskError` all implement
/// `Display`, which explains the failure better than `Debug`.
#[track_caller]
pub fn expect_ok<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

/// A future that returns `Pending` exactly once, waking itself first
/// (`cx.waker().wake_by_ref()`), then `Ready(())` on the next poll.
///
/// Stand-in for a `yield_now` until spindle has one: the `yield_many`
/// workload uses this same future on the spindle and the tokio side, so both
/// measure "reschedule through the waker" and not each runtime's own yield
/// policy (tokio's `yield_now` defers the wake until after the driver poll).
#[derive(Debug, Default)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldOnce {
    yielded: bool,
}

/// Returns a [`YieldOnce`] future.
pub fn yield_once() -> YieldOnce {
    YieldOnce::default()
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            Poll::Ready(())
        } else {
            self.yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// The deadline of timer `i` (0-based) of `n` spread evenly over `spread`
/// after `t0`: timer `n - 1` is due exactly at `t0 + spread`.
pub fn timer_deadline(
    t0: std::time::Instant,
    i: u64,
    n: u64,
    spread: Duration,
) -> std::time::Instant {
    let ns = spread.as_nanos() as u64 * (i + 1) / n.max(1);
    t0 + Duration::from_nanos(ns)
}

/// A deadline already past at `start`, for timer `i` of `n`: the `n` deadlines are spread over
/// the 50 ms before `start` in a scrambled order (a fixed permutation of `0..n`), so a timer
/// structure sees them out of order (the `timers_due_scrambled_100k` row).
pub fn scrambled_past_deadline(start: std::time::Instant, i: u64, n: u64) -> std::time::Instant {
    // An odd multiplier is a permutation modulo a power of two; n need not be one, so take
    // the slot modulo n (a few collisions only add ties).
    let slot = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n.max(1);
    let back = Duration::from_nanos(50_000_000 * slot / n.max(1));
    start.checked_sub(back).unwrap_or(start)
}

/// Runs `produce` on a new thread once this one is ready, and `consume` here; returns the
/// time from the producer's start to the end of `consume`.
fn producer_consumer(produce: impl FnOnce() + Send + 'static, consume: impl FnOnce()) -> Duration {
    let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
    let producer = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            gate.wait();
            let start = std::time::Instant::now();
            produce();
            start
        })
    };
    gate.wait();
    consume();
    let end = std::time::Instant::now();
    let start = producer.join().expect("producer thread");
    end - start
}

/// The shape of every `call_soon_threadsafe` workload: a producer thread calls `submit(i)` for
/// `i` in `0..n` (each submitting a closure that calls [`sink`]`(i)`), then drops `submit`
/// (which closes a channel); `consume` runs the closures on this thread until the producer is
/// done. Checks every closure ran once and returns the time charged by `producer_consumer`.
pub fn threadsafe_closures<S>(n: u64, mut submit: S, consume: impl FnOnce()) -> Duration
where
    S: FnMut(u64) + Send + 'static,
{
    take_sink();
    let elapsed = producer_consumer(
        move || {
            for i in 0..n {
                submit(i);
            }
        },
        consume,
    );
    assert_eq!(take_sink(), sum_below(n));
    elapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_reports_median_and_min() {
        let mut times = [50u64, 10, 30, 20, 40, 999].into_iter().rev();
        // Warm-up takes 999 (discarded), then 40, 20, 30, 10, 50 over 10 ops.
        let s = measure(5, 10, || Duration::from_nanos(times.next().unwrap()));
        assert_eq!(s.runs, 5);
        assert_eq!(s.median_ns, 3.0);
        assert_eq!(s.min_ns, 1.0);
    }

    #[test]
    fn table_has_ratio_last() {
        let rows = [Row {
            workload: "w".into(),
            spindle_ns: 30.0,
            peer_name: "p".into(),
            peer_ns: 20.0,
        }];
        let t = format_table(&rows);
        let last = t.lines().last().unwrap();
        assert!(last.ends_with("1.50"), "{t}");
    }

    #[test]
    fn deadlines_end_at_spread() {
        let t0 = std::time::Instant::now();
        let d = Duration::from_millis(50);
        assert_eq!(timer_deadline(t0, 99, 100, d), t0 + d);
        assert!(timer_deadline(t0, 0, 100, d) > t0);
    }
}

/// Tells a waiting thread when the last of `n` tasks has finished (the "last one to finish
/// sends" pattern of tokio's own multi-thread benchmarks). Clone one per task.
#[derive(Clone)]
pub struct Countdown {
    remaining: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    done: std::sync::mpsc::SyncSender<()>,
}

impl Countdown {
    /// A countdown from `n`, and the receiver that gets one message when it reaches zero.
    pub fn new(n: u64) -> (Countdown, std::sync::mpsc::Receiver<()>) {
        let (done, rx) = std::sync::mpsc::sync_channel(1);
        let remaining = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(n as usize));
        (Countdown { remaining, done }, rx)
    }

    /// One task finished; the last one signals.
    pub fn finish_one(&self) {
        if self
            .remaining
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed)
            == 1
        {
            let _ = self.done.send(());
        }
    }
}
