//! `compare`: spindle against its peers on the same workloads, in one process.
//!
//! ```text
//! cargo run --release -p spindle-benches --bin compare -- [--repeat N] [--quick] [FILTER]
//! benches/run.sh [--quick] [FILTER]        # the README's figures: --repeat 5
//! ```
//!
//! `FILTER` keeps only the workloads whose name contains it. `COMPARE_RUNS` sets the number
//! of interleaved rounds of one measurement (default 15, after one warm-up round); `--repeat N`
//! measures every selected workload N times over and reports the median of the N medians with
//! their range (min-max), and each ratio spindle/peer as the median and range of the N
//! per-repeat ratios. `--quick` is one round, one repeat: a smoke run, not a measurement.
//! Built with `--features mimalloc` (`COMPARE_FEATURES=mimalloc benches/run.sh`), every side
//! allocates through mimalloc instead of the system allocator.
//! `--side NAME[,NAME...]` runs only the sides of those names (e.g. `spindle`, for a profiler;
//! `spindle,tokio_multi_thread` to see whether a third side's runs disturb the other two).
//!
//! Every side reports wall time and CPU time (user + sys of the whole process over the timed
//! part, every thread included) per op. The rows are listed in [`spindle_benches::rows`]
//! (adding one: see there); the `rt_*` rows run 2 workers and again 1 (`/w1`), and a second
//! table gives 2 workers over 1. Progress goes to stderr, the tables to stdout; below 1.0 a
//! ratio means spindle is faster. A side that panics shows as `FAILED` (and the process
//! exits 1 at the end); one run of a side still going after 60 s ends the process (exit 3).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use spindle_benches::workload::{measure_interleaved, Metric, Report, Workload};
use spindle_benches::{rows, runs};

/// `--features mimalloc`: every side allocates through mimalloc (see `benches/Cargo.toml`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long one run of one side of a workload may take before the watchdog
/// gives up: the machine is shared, a hung loop must not spin forever.
const SIDE_TIMEOUT: Duration = Duration::from_secs(60);

/// The side being measured and when it started, for the watchdog.
static CURRENT: Mutex<Option<(String, Instant)>> = Mutex::new(None);

fn set_current(side: Option<String>) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = side.map(|s| (s, Instant::now()));
}

/// Ends the process if one side runs longer than [`SIDE_TIMEOUT`].
fn start_watchdog() {
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(500));
        let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((side, since)) = &*current {
            if since.elapsed() > SIDE_TIMEOUT {
                eprintln!("compare: {side} still running after {SIDE_TIMEOUT:?}; giving up");
                std::process::exit(3);
            }
        }
    });
}

fn main() {
    let mut filter: Option<String> = None;
    let mut repeats = 1usize;
    let mut rounds = runs();
    let mut side: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("usage: compare [--repeat N] [--quick] [--side NAME[,NAME...]] [WORKLOAD_FILTER]");
                println!("  --side NAMES: run only those sides of each row (for profiling)");
                println!("  env COMPARE_RUNS: rounds per measurement (default 15)");
                println!("workloads:");
                for w in rows::all() {
                    println!("  {}", w.name);
                }
                return;
            }
            "--repeat" => {
                repeats = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| {
                        eprintln!("--repeat needs a positive number");
                        std::process::exit(2)
                    });
            }
            "--side" => {
                side = args.next();
            }
            "--quick" => {
                rounds = 1;
                repeats = 1;
            }
            _ => filter = Some(arg),
        }
    }
    println!("{}", spindle_benches::machine_line());
    println!(
        "{repeats} repeat(s) of {rounds} interleaved rounds after 1 warm-up; per op, \
         median (min-max over repeats); cpu = user+sys of the process over the timed part"
    );
    let selected: Vec<Workload> = rows::all()
        .into_iter()
        .filter(|w| filter.as_deref().is_none_or(|f| w.name.contains(f)))
        .map(|mut w| {
            if let Some(side) = &side {
                w.sides.retain(|s| side.split(',').any(|n| n == s.name));
            }
            w
        })
        .filter(|w| !w.sides.is_empty())
        .collect();
    if selected.is_empty() {
        eprintln!("no workload matches {:?}", filter.unwrap_or_default());
        std::process::exit(2);
    }

    start_watchdog();
    let mut report = Report::new(&selected);
    for repeat in 0..repeats {
        eprintln!("repeat {} of {repeats}", repeat + 1);
        let figures = selected
            .iter()
            .map(|w| measure_interleaved(w, rounds, &set_current))
            .collect();
        report.figures.push(figures);
    }
    println!();
    print!("{}", report.table());
    let workers = report.workers_table();
    if workers.lines().count() > 2 {
        println!("\nworkers: 2 against 1 (same body, same sides)");
        print!("{workers}");
    }
    let latency = report.latency_table();
    if latency.lines().count() > 2 {
        println!("\nlatency: p99 of one op, microseconds (rows that time each op)");
        print!("{latency}");
    }
    println!();
    for target in TARGETS {
        target.print(&report);
    }
    if report.any_failed() {
        eprintln!("compare: a side failed (panicked): see FAILED above");
        std::process::exit(1);
    }
}

/// A target of an issue: the ratio `a / b` of one metric at most `max`, judged on the median.
struct Target {
    what: &'static str,
    a: (&'static str, &'static str),
    b: (&'static str, &'static str),
    metric: Metric,
    max: f64,
}

const fn target(
    what: &'static str,
    workload: &'static str,
    peer: &'static str,
    metric: Metric,
    max: f64,
) -> Target {
    Target {
        what,
        a: (workload, "spindle"),
        b: (workload, peer),
        metric,
        max,
    }
}

/// Spindle's time at 2 workers over its time at 1 (`workload` and its `/w1` twin).
const fn workers_target(what: &'static str, two: &'static str, one: &'static str) -> Target {
    Target {
        what,
        a: (two, "spindle"),
        b: (one, "spindle"),
        metric: Metric::Wall,
        max: 1.1,
    }
}

const TARGETS: &[Target] = &[
    target(
        "#6 call_soon <= 1.5x the VecDeque floor",
        "call_soon",
        "vecdeque_floor",
        Metric::Wall,
        1.5,
    ),
    target(
        "spawn on one loop <= 0.6x tokio current_thread",
        "spawn_many_local",
        "tokio_current_thread",
        Metric::Wall,
        0.6,
    ),
    target(
        "#7 1M tasks spawned then run >= 1.2x async-executor's LocalExecutor",
        "spawn_1m_then_run",
        "async_executor_local",
        Metric::Wall,
        1.0 / 1.2,
    ),
    target(
        "#5 shuffled timers, overhead <= 0.8x tokio (100k)",
        "timers_shuffled_100k",
        "tokio_current_thread",
        Metric::Wall,
        0.8,
    ),
    target(
        "#5 shuffled timers, overhead <= 0.8x tokio (1M)",
        "timers_shuffled_1m",
        "tokio_current_thread",
        Metric::Wall,
        0.8,
    ),
    target(
        "#5 shuffled timers, CPU <= 0.8x tokio (100k)",
        "timers_shuffled_100k",
        "tokio_current_thread",
        Metric::Cpu,
        0.8,
    ),
    target(
        "#5 shuffled timers, CPU <= 0.8x tokio (1M)",
        "timers_shuffled_1m",
        "tokio_current_thread",
        Metric::Cpu,
        0.8,
    ),
    target(
        "100k due sleeping tasks <= 0.5x tokio",
        "timers_due_100k",
        "tokio_current_thread",
        Metric::Wall,
        0.5,
    ),
    target(
        "call_soon_threadsafe >= 1.3x tokio's mpsc throughput",
        "call_soon_threadsafe",
        "tokio_mpsc_current_thread",
        Metric::Wall,
        1.0 / 1.3,
    ),
    target(
        "call_soon_threadsafe >= the crossbeam-channel floor",
        "call_soon_threadsafe",
        "crossbeam_channel_floor",
        Metric::Wall,
        1.0,
    ),
    target(
        "run_coroutine_threadsafe round trip <= 0.5x tokio (wall)",
        "run_coroutine_threadsafe",
        "tokio_spawn_oneshot",
        Metric::Wall,
        0.5,
    ),
    target(
        "run_coroutine_threadsafe round trip <= 0.5x tokio (CPU)",
        "run_coroutine_threadsafe",
        "tokio_spawn_oneshot",
        Metric::Cpu,
        0.5,
    ),
    target(
        "run_coroutine_threadsafe, caller parked, <= 0.5x tokio (wall)",
        "run_coroutine_threadsafe_parked",
        "tokio_spawn_oneshot",
        Metric::Wall,
        0.5,
    ),
    target(
        "#8 rt_spawn_many_remote_idle <= 0.8x async-executor",
        "rt_spawn_many_remote_idle",
        "async_executor",
        Metric::Wall,
        0.8,
    ),
    target(
        "#9 rt_yield_many <= 0.7x tokio multi_thread",
        "rt_yield_many",
        "tokio_multi_thread",
        Metric::Wall,
        0.7,
    ),
    target(
        "rt_spawn_many_local <= 0.5x tokio multi_thread",
        "rt_spawn_many_local",
        "tokio_multi_thread",
        Metric::Wall,
        0.5,
    ),
    target(
        "rt_chained_spawn <= 0.5x tokio multi_thread",
        "rt_chained_spawn",
        "tokio_multi_thread",
        Metric::Wall,
        0.5,
    ),
    workers_target(
        "#10 rt_spawn_many_local, 2 workers <= 1.1x 1 worker",
        "rt_spawn_many_local",
        "rt_spawn_many_local/w1",
    ),
    workers_target(
        "#10 rt_spawn_many_remote_idle, 2 workers <= 1.1x 1 worker",
        "rt_spawn_many_remote_idle",
        "rt_spawn_many_remote_idle/w1",
    ),
    target(
        "#16 queue_pingpong <= 0.8x tokio mpsc::channel(1)",
        "queue_pingpong",
        "tokio_mpsc_current_thread",
        Metric::Wall,
        0.8,
    ),
    target(
        "#16 mutex_contended <= 0.8x tokio::sync::Mutex",
        "mutex_contended",
        "tokio_mutex_multi_thread",
        Metric::Wall,
        0.8,
    ),
    target(
        "#14 tcp_echo_1loop <= 0.9x tokio current_thread",
        "tcp_echo_1loop",
        "tokio_current_thread",
        Metric::Wall,
        0.9,
    ),
    target(
        "#14 tcp_echo_rt <= 0.85x tokio multi_thread",
        "tcp_echo_rt",
        "tokio_multi_thread",
        Metric::Wall,
        0.85,
    ),
    target(
        "#14 tcp_connect_accept <= 0.9x tokio multi_thread",
        "tcp_connect_accept",
        "tokio_multi_thread",
        Metric::Wall,
        0.9,
    ),
    target(
        "#15 echo_server_rt <= 0.85x tokio multi_thread",
        "echo_server_rt",
        "tokio_multi_thread",
        Metric::Wall,
        0.85,
    ),
    target(
        "#15 http_hello_rt time per request <= 0.90x tokio+hyper",
        "http_hello_rt",
        "tokio_hyper_multi_thread",
        Metric::Wall,
        0.9,
    ),
    target(
        "#15 http_hello_rt p99 no worse than tokio+hyper",
        "http_hello_rt",
        "tokio_hyper_multi_thread",
        Metric::P99,
        1.0,
    ),
];

impl Target {
    /// Prints whether the median ratio meets the target (skipped when a row was filtered out).
    fn print(&self, report: &Report) {
        let Some(r) = report.ratio(self.a, self.b, self.metric) else {
            return;
        };
        let verdict = if r.median.is_nan() {
            "n/a"
        } else if r.median <= self.max {
            "met"
        } else {
            "NOT met"
        };
        let metric = match self.metric {
            Metric::Wall => "wall",
            Metric::Cpu => "cpu",
            Metric::P99 => "p99",
        };
        println!(
            "target {} ({metric} ratio <= {:.2}): {verdict}, median {:.2} ({:.2}-{:.2})",
            self.what, self.max, r.median, r.min, r.max
        );
    }
}
