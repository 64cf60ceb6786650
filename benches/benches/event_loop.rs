//! Criterion benches for spindle's event loop hot paths (spindle only, plus
//! the `VecDeque` floor for `call_soon`). Each iteration builds a fresh loop
//! outside the clock and times scheduling plus running.
//!
//! ```text
//! cargo bench -p spindle-benches --bench event_loop
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spindle_benches::clock::Sample;
use spindle_benches::{peers, spindle_side, timers_spindle};

const CALL_SOON_PER_ITER: u64 = 10_000;
const SPAWN_PER_ITER: u64 = 1_000;
const TIMERS_PER_ITER: u64 = 10_000;

/// Sums the wall time of `run()` over criterion's `iters` repetitions.
fn repeat(iters: u64, run: impl Fn() -> Sample) -> Duration {
    (0..iters).map(|_| run().wall).sum()
}

fn call_soon(c: &mut Criterion) {
    let mut g = c.benchmark_group("call_soon");
    g.throughput(Throughput::Elements(CALL_SOON_PER_ITER));
    g.bench_function("spindle", |b| {
        b.iter_custom(|iters| repeat(iters, || spindle_side::call_soon(CALL_SOON_PER_ITER)))
    });
    g.bench_function("vecdeque_floor", |b| {
        b.iter_custom(|iters| repeat(iters, || peers::call_soon_vecdeque(CALL_SOON_PER_ITER)))
    });
    g.finish();
}

fn spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn");
    g.throughput(Throughput::Elements(SPAWN_PER_ITER));
    g.bench_function("spindle", |b| {
        b.iter_custom(|iters| repeat(iters, || spindle_side::spawn_many_local(SPAWN_PER_ITER)))
    });
    g.finish();
}

fn call_later(c: &mut Criterion) {
    let mut g = c.benchmark_group("call_later_due");
    g.throughput(Throughput::Elements(TIMERS_PER_ITER));
    g.bench_function("spindle", |b| {
        b.iter_custom(|iters| repeat(iters, || timers_spindle::call_later_due(TIMERS_PER_ITER)))
    });
    g.finish();
}

/// What a task step pays for its `spindle.task` span when no subscriber is installed: the same
/// `trace_span!(..).entered()` the loop opens around every step, against an empty step.
/// Compare the difference with a whole step (`yield_many` in `compare`, about 40 ns).
fn tracing_span(c: &mut Criterion) {
    let mut g = c.benchmark_group("task_step_span_no_subscriber");
    g.bench_function("span_entered", |b| {
        let mut id = 0u64;
        b.iter(|| {
            id = id.wrapping_add(1);
            let _span =
                tracing::trace_span!("spindle.task", id = std::hint::black_box(id)).entered();
            std::hint::black_box(&_span);
        })
    });
    g.bench_function("span_entered_if_dispatcher_set", |b| {
        let mut id = 0u64;
        b.iter(|| {
            id = id.wrapping_add(1);
            let _span = tracing::dispatcher::has_been_set().then(|| {
                tracing::trace_span!("spindle.task", id = std::hint::black_box(id)).entered()
            });
            std::hint::black_box(&_span);
        })
    });
    g.bench_function("no_span", |b| {
        let mut id = 0u64;
        b.iter(|| {
            id = id.wrapping_add(1);
            std::hint::black_box(id);
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = call_soon, spawn, call_later, tracing_span
}
criterion_main!(benches);
