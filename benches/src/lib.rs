//! Measurement harness for spindle's `compare` binary and criterion benches.
//!
//! A workload side is a function that performs one complete run (its own setup and teardown
//! outside the clock) and returns the [`clock::Sample`] of its timed part: wall time and the
//! process's CPU time (user + sys, every thread). [`workload`] holds the row type, the
//! interleaved measurement and the report (medians and ranges over repeats, ratios
//! spindle/peer: below 1.0 means spindle is faster); [`rows`] lists the rows `compare` runs.
//!
//! The workloads live in pairs of modules, spindle's side apart from its peers'
//! (so the peer side builds and checks on its own):
//!
//! - one event loop: [`spindle_side`] and [`peers`] (tokio, async-task and
//!   plain-std floors), [`local_executor`] (async-executor's `LocalExecutor`);
//! - timers on one loop: [`timers_spindle`] and [`timers_peers`];
//! - the cross-thread bridge: [`bridge_spindle`] and [`bridge_peers`] (tokio and
//!   crossbeam-channel floors);
//! - the combinators (`gather`, `yield_now`): [`combinators_spindle`] and
//!   [`combinators_peers`] (tokio and `futures-util`'s `join_all`);
//! - multi-thread runtimes: [`runtime_spindle`], [`runtime_peers`] (tokio's
//!   multi-thread runtime) and [`runtime_async_executor`] (async-executor run by as many
//!   threads). Each builds its runtime, warms it up ([`WARM_UP_TASKS`] tasks spawned and
//!   awaited) and lets it settle for [`SETTLE`] before the clock starts, the same on every side;
//! - sockets and servers: [`io_rows`] (TCP echo and connect/accept on spindle's loop and
//!   runtime against tokio's, one load generator on a bare `polling` loop) and
//!   [`server_rows`] (spindle's multi-loop `Server` against tokio's multi_thread runtime: an
//!   echo server, and hyper's HTTP/1.1 hello driven by `wrk` or by the same generator).

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use clock::{Clock, Sample};

pub mod bridge_peers;
pub mod bridge_spindle;
pub mod clock;
pub mod combinators_peers;
pub mod combinators_spindle;
pub mod io_rows;
pub mod local_executor;
pub mod peers;
pub mod rows;
pub mod runtime_async_executor;
pub mod runtime_peers;
pub mod runtime_spindle;
pub mod server_rows;
pub mod spindle_side;
pub mod sync_rows;
pub mod timers_peers;
pub mod timers_spindle;
pub mod workload;

/// Number of measured runs when `COMPARE_RUNS` is not set.
pub const DEFAULT_RUNS: usize = 15;

/// `call_soon`: callbacks scheduled (all of them first), then run.
pub const CALL_SOON_N: u64 = 1_000_000;
/// `spawn_many_local`: trivial tasks spawned from inside a running task.
pub const SPAWN_N: u64 = 10_000;
/// `spawn_1m_then_run`: trivial tasks spawned from outside the loop, then run.
pub const SPAWN_1M_N: u64 = 1_000_000;
/// The timer rows' usual size (`timers_*_100k`).
pub const TIMERS_N: u64 = 100_000;
/// The large timer rows' size (`timers_*_1m`).
pub const TIMERS_1M_N: u64 = 1_000_000;
/// The deadlines of the future-timer rows spread over this span per 100k timers (50 ms for
/// 100k, 500 ms for 1M: about as long as creating that many sleeping tasks takes, so the
/// timers are neither all due at once nor idle most of the time).
pub const TIMERS_SPREAD_PER_100K: Duration = Duration::from_millis(50);
/// `timers_due_*`: number of timers, all already due when the loop runs.
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
/// `idle_*` rows: how long a settled loop or runtime is left alone, in milliseconds (the op of
/// those rows is one millisecond).
pub const IDLE_MS: u64 = 100;
/// Worker threads of the multi-thread workloads (the issue's setting: 2 workers); the `/w1`
/// rows run 1.
pub const RT_WORKERS: usize = 2;
/// Tasks each runtime runs (spawned and awaited) after it is built, before the clock starts:
/// every worker has started and run something, on every side alike.
pub const WARM_UP_TASKS: usize = 64;
/// How long a runtime settles after its warm-up, before the clock starts: long enough for
/// every side's workers to stop spinning and park (spindle spins about 20 us, tokio and
/// async-executor less), so that no side starts with its workers awake.
pub const SETTLE: Duration = Duration::from_millis(10);
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

/// Lets a warmed-up runtime settle for [`SETTLE`] (every side calls this after its warm-up).
pub fn settle() {
    std::thread::sleep(SETTLE);
}

/// The span the deadlines of `n` future timers spread over (see [`TIMERS_SPREAD_PER_100K`]).
pub fn timers_spread(n: u64) -> Duration {
    TIMERS_SPREAD_PER_100K * (n.div_ceil(100_000) as u32)
}

/// Offsets from the start for `n` timers spread evenly over `spread` (timer `i` at
/// `spread * (i + 1) / n`), in that order, or shuffled (a fixed-seed Fisher-Yates shuffle, the
/// same on every run and side). Computed before the clock starts.
///
/// ```
/// use std::time::Duration;
/// let d = spindle_benches::timer_offsets(4, Duration::from_millis(4), false);
/// assert_eq!(d, [1, 2, 3, 4].map(Duration::from_millis));
/// let mut s = spindle_benches::timer_offsets(4, Duration::from_millis(4), true);
/// s.sort();
/// assert_eq!(s, d);
/// ```
pub fn timer_offsets(n: u64, spread: Duration, shuffled: bool) -> Vec<Duration> {
    let ns = spread.as_nanos() as u64;
    let mut offsets: Vec<Duration> = (0..n)
        .map(|i| Duration::from_nanos(ns * (i + 1) / n.max(1)))
        .collect();
    if shuffled {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for i in (1..offsets.len()).rev() {
            // xorshift64: a fixed, cheap pseudo-random sequence.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            offsets.swap(i, (x % (i as u64 + 1)) as usize);
        }
    }
    offsets
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
/// sample from the producer's start to the end of `consume`.
fn producer_consumer(produce: impl FnOnce() + Send + 'static, consume: impl FnOnce()) -> Sample {
    let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
    let producer = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            gate.wait();
            let start = Clock::start();
            produce();
            start
        })
    };
    gate.wait();
    consume();
    let end = Clock::start();
    let start = producer.join().expect("producer thread");
    start.until(end)
}

/// The shape of every `call_soon_threadsafe` workload: a producer thread calls `submit(i)` for
/// `i` in `0..n` (each submitting a closure that calls [`sink`]`(i)`), then drops `submit`
/// (which closes a channel); `consume` runs the closures on this thread until the producer is
/// done. Checks every closure ran once and returns the time charged by `producer_consumer`.
pub fn threadsafe_closures<S>(n: u64, mut submit: S, consume: impl FnOnce()) -> Sample
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

/// Whether spindle's runtimes in the I/O and server rows let idle workers help their siblings'
/// pollers (`Builder::io_help`, on by default): `IO_HELP=0` turns it off, for an A/B run.
pub fn io_help() -> bool {
    std::env::var("IO_HELP").map_or(true, |v| v != "0")
}
