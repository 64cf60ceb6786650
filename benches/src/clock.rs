//! What a workload charges: wall time and the process's CPU time over the timed part.
//!
//! Wall time alone hides spinning: a thread that spins instead of parking answers sooner and
//! burns a core meanwhile. So every timed part is bracketed by a [`Clock`], which reads both the
//! monotonic clock and `getrusage(RUSAGE_SELF)` (user + system time of every thread of the
//! process, the runtime's workers included) at its start and its stop. CPU time counts only
//! what ran on a core: a thread parked in the kernel adds nothing, so an idle runtime shows as
//! 0 CPU per op however long the wall.
//!
//! `getrusage` reports microseconds; a timed part of a workload lasts milliseconds, so the
//! resolution costs well under 1% of a figure.

use std::time::{Duration, Instant};

/// Wall and CPU time of one timed part, and the 99th percentile of its operations' latencies
/// when the workload measures them (the server rows: each request's round trip).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Monotonic wall time.
    pub wall: Duration,
    /// User + system time of the whole process over the same part.
    pub cpu: Duration,
    /// p99 latency of one operation, for workloads that time each one (`None` otherwise).
    pub p99: Option<Duration>,
}

impl Sample {
    /// This sample with `d` taken off the wall time (the idle span of a timer workload whose
    /// deadlines spread over `d`: what is left is the overhead). CPU time stays as is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle_benches::clock::Sample;
    /// let s = Sample { wall: Duration::from_millis(70), cpu: Duration::from_millis(30), p99: None };
    /// let o = s.minus_wall(Duration::from_millis(50));
    /// assert_eq!((o.wall, o.cpu), (Duration::from_millis(20), Duration::from_millis(30)));
    /// ```
    pub fn minus_wall(self, d: Duration) -> Sample {
        Sample {
            wall: self.wall.saturating_sub(d),
            ..self
        }
    }
}

/// A started measurement: [`Clock::start`] before the timed part, [`Clock::stop`] after it.
///
/// ```
/// use spindle_benches::clock::Clock;
/// let clock = Clock::start();
/// let mut x = 0u64;
/// for i in 0..1000 { x = std::hint::black_box(x + i); }
/// let s = clock.stop();
/// assert!(s.wall > std::time::Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall: Instant,
    cpu: Duration,
}

impl Clock {
    /// Reads both clocks.
    pub fn start() -> Clock {
        let cpu = process_cpu_time();
        Clock {
            wall: Instant::now(),
            cpu,
        }
    }

    /// Wall and CPU time since [`start`](Self::start).
    pub fn stop(self) -> Sample {
        let wall = self.wall.elapsed();
        Sample {
            wall,
            cpu: process_cpu_time().saturating_sub(self.cpu),
            p99: None,
        }
    }

    /// Wall and CPU time from this reading to a `later` one (taken on any thread of the
    /// process).
    ///
    /// ```
    /// use spindle_benches::clock::Clock;
    /// let a = Clock::start();
    /// let b = Clock::start();
    /// assert!(a.until(b).wall <= a.until(Clock::start()).wall);
    /// ```
    pub fn until(self, later: Clock) -> Sample {
        Sample {
            wall: later.wall.saturating_duration_since(self.wall),
            cpu: later.cpu.saturating_sub(self.cpu),
            p99: None,
        }
    }
}

/// User + system CPU time of this process so far (all its threads).
///
/// ```
/// let before = spindle_benches::clock::process_cpu_time();
/// assert!(spindle_benches::clock::process_cpu_time() >= before);
/// ```
pub fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory of the size of `rusage`; `RUSAGE_SELF` is a
    // valid `who`, for which `getrusage` cannot fail. It writes the whole struct; it was zeroed
    // anyway, so reading it is sound even if it did not.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
