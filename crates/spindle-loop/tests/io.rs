//! I/O readiness in the loop: `add_reader`/`add_writer` (level-triggered), `Source`s
//! (edge-triggered, lazily registered), the budget, and what `close()` does to them.
#![cfg(unix)]

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use spindle_loop::io::{IoError, Source};
use spindle_loop::EventLoop;

/// Runs `lp` for `n` iterations (each `stop()` ends the run after one batch).
fn iterate(lp: &EventLoop, n: usize) {
    for _ in 0..n {
        lp.stop();
        lp.run_forever().unwrap();
    }
}

#[test]
fn a_reader_callback_runs_once_per_iteration_while_the_fd_stays_readable() {
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    lp.add_reader(a.clone(), move || c.set(c.get() + 1))
        .unwrap();
    iterate(&lp, 3);
    assert_eq!(calls.get(), 0, "nothing to read yet");
    b.write_all(b"x").unwrap();
    // The event of iteration k queues the callback, which runs in the same iteration's batch.
    iterate(&lp, 4);
    assert_eq!(
        calls.get(),
        4,
        "level-triggered: once per iteration while readable"
    );
    let mut buf = [0; 1];
    (&*a).read_exact(&mut buf).unwrap();
    iterate(&lp, 3);
    assert_eq!(calls.get(), 4, "drained: no more calls");
}

#[test]
fn a_second_add_reader_replaces_the_callback() {
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l1, l2) = (log.clone(), log.clone());
    lp.add_reader(a.clone(), move || l1.borrow_mut().push("first"))
        .unwrap();
    lp.add_reader(a.clone(), move || l2.borrow_mut().push("second"))
        .unwrap();
    b.write_all(b"x").unwrap();
    iterate(&lp, 1);
    assert_eq!(*log.borrow(), ["second"]);
}

#[test]
fn remove_reader_stops_the_calls_and_says_whether_there_was_one() {
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    lp.add_reader(a.clone(), move || c.set(c.get() + 1))
        .unwrap();
    b.write_all(b"x").unwrap();
    iterate(&lp, 1);
    assert_eq!(calls.get(), 1);
    assert!(lp.remove_reader(&*a));
    assert!(!lp.remove_reader(&*a));
    iterate(&lp, 2);
    assert_eq!(calls.get(), 1);
    assert_eq!(Rc::strong_count(&a), 1, "the loop let go of the fd's owner");
}

#[test]
fn reader_and_writer_on_one_fd_are_independent() {
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let reads = Rc::new(Cell::new(0));
    let writes = Rc::new(Cell::new(0));
    let (r, w) = (reads.clone(), writes.clone());
    lp.add_reader(a.clone(), move || r.set(r.get() + 1))
        .unwrap();
    lp.add_writer(a.clone(), move || w.set(w.get() + 1))
        .unwrap();
    iterate(&lp, 2);
    assert_eq!((reads.get(), writes.get()), (0, 2));
    assert!(lp.remove_writer(&*a));
    b.write_all(b"x").unwrap();
    iterate(&lp, 2);
    assert_eq!((reads.get(), writes.get()), (2, 2));
}

#[test]
fn a_callback_removed_before_its_queued_call_runs_is_not_called() {
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let calls = Rc::new(Cell::new(0));
    // Another watch's callback, queued first in the same iteration, removes the second.
    let (x, mut y) = UnixStream::pair().unwrap();
    let x = Rc::new(x);
    let (lp2, a2) = (lp.clone(), a.clone());
    lp.add_reader(x.clone(), move || {
        lp2.remove_reader(&*a2);
    })
    .unwrap();
    let c = calls.clone();
    lp.add_reader(a.clone(), move || c.set(c.get() + 1))
        .unwrap();
    y.write_all(b"x").unwrap();
    b.write_all(b"x").unwrap();
    iterate(&lp, 2);
    // Depending on the poller's event order the second may have run once before removal;
    // never after it.
    assert!(calls.get() <= 1);
    let before = calls.get();
    iterate(&lp, 2);
    assert_eq!(calls.get(), before);
    // The first callback keeps the loop (a clone of it): close() breaks that cycle.
    lp.close().unwrap();
}

#[test]
fn add_reader_on_a_closed_loop_is_a_loop_closed_error() {
    let lp = EventLoop::new().unwrap();
    lp.close().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let err = lp.add_reader(a, || ()).unwrap_err();
    assert_eq!(IoError::of(&err), Some(IoError::LoopClosed));
}

#[test]
fn close_drops_the_watches_and_their_fd_owners() {
    let lp = EventLoop::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    lp.add_reader(a.clone(), || ()).unwrap();
    assert_eq!(Rc::strong_count(&a), 2);
    lp.close().unwrap();
    assert_eq!(Rc::strong_count(&a), 1);
}

/// A `Source` over one end of a socket pair, and the thread that writes `bytes` into the other
/// end 20 ms later (it returns that end, to keep it open until joined).
fn source_written_later(
    bytes: &'static [u8],
) -> (Source<UnixStream>, std::thread::JoinHandle<UnixStream>) {
    let (a, b) = UnixStream::pair().unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        (&b).write_all(bytes).unwrap();
        b
    });
    (Source::new(a).unwrap(), writer)
}

#[test]
fn a_source_reads_what_a_thread_writes_later() {
    let lp = EventLoop::new().unwrap();
    let (a, writer) = source_written_later(b"hello");
    let got = lp
        .run_until_complete(async move {
            let mut buf = [0; 5];
            let mut filled = 0;
            while filled < 5 {
                filled += a.read_with(|mut s| s.read(&mut buf[filled..])).await?;
            }
            std::io::Result::Ok((buf, a.home_loop()))
        })
        .unwrap()
        .unwrap();
    assert_eq!(&got.0, b"hello");
    assert_eq!(
        got.1,
        Some(lp.id()),
        "registered with the loop where it waited"
    );
    drop(writer.join().unwrap());
}

#[test]
fn a_source_that_must_wait_outside_a_loop_says_no_running_loop() {
    let (a, _b) = UnixStream::pair().unwrap();
    let a = Source::new(a).unwrap();
    let mut buf = [0; 1];
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let r = a.poll_read_with(&mut cx, |mut s| s.read(&mut buf));
    match r {
        std::task::Poll::Ready(Err(e)) => assert_eq!(IoError::of(&e), Some(IoError::NoRunningLoop)),
        other => panic!("expected NoRunningLoop, got {other:?}"),
    }
}

#[test]
fn closing_the_home_loop_wakes_a_waiter_with_loop_closed() {
    let lp = EventLoop::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let a = std::sync::Arc::new(Source::new(a).unwrap());
    let a2 = a.clone();
    let result = Rc::new(RefCell::new(None));
    let r = result.clone();
    let task = lp
        .create_task(async move {
            let mut buf = [0; 1];
            let out = a2.read_with(|mut s| s.read(&mut buf)).await;
            *r.borrow_mut() = Some(out.map_err(|e| IoError::of(&e)));
        })
        .unwrap();
    iterate(&lp, 2);
    assert!(!task.done(), "waiting for readiness");
    drop(task);
    lp.close().unwrap();
    // The waiter was woken and its task dropped at close; a later use errors, never hangs.
    let lp2 = EventLoop::new().unwrap();
    let out = lp2
        .run_until_complete(async move {
            let mut buf = [0; 1];
            a.read_with(|mut s| s.read(&mut buf)).await
        })
        .unwrap();
    assert_eq!(IoError::of(&out.unwrap_err()), Some(IoError::LoopClosed));
}

#[test]
fn a_hot_source_does_not_starve_a_timer_or_a_call_soon() {
    const OPS: u64 = 200_000;
    let lp = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let a = Source::new(a).unwrap();
    // With a byte pending, a zero-length read never blocks and consumes nothing: the source
    // is always ready for this task.
    (&b).write_all(b"x").unwrap();
    let ops = Rc::new(Cell::new(0u64));
    let o = ops.clone();
    let hot = lp
        .create_task(async move {
            while o.get() < OPS {
                a.read_with(|mut s| s.read(&mut [])).await.unwrap();
                o.set(o.get() + 1);
            }
        })
        .unwrap();
    let at_timer = Rc::new(Cell::new(None));
    let at_soon = Rc::new(Cell::new(None));
    let (t, o) = (at_timer.clone(), ops.clone());
    lp.call_later(Duration::from_millis(1), move || t.set(Some(o.get())))
        .unwrap();
    let (s, o, l) = (at_soon.clone(), ops.clone(), lp.clone());
    // Queued behind the hot task's first step.
    lp.call_soon(move || {
        let (s, o) = (s.clone(), o.clone());
        l.call_soon(move || s.set(Some(o.get()))).unwrap();
    })
    .unwrap();
    lp.run_until_complete(hot).unwrap().unwrap();
    let (timer, soon) = (at_timer.get().unwrap(), at_soon.get().unwrap());
    assert!(
        soon < OPS,
        "call_soon waited for the hot task to finish ({soon})"
    );
    assert!(
        timer < OPS,
        "the timer waited for the hot task to finish ({timer})"
    );
    drop(b);
}

#[test]
fn the_budget_makes_a_ready_reader_yield_after_128_operations_per_step() {
    let lp = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    (&b).write_all(&[1u8; 1000]).unwrap();
    let a = Source::new(a).unwrap();
    let steps_before = lp.stats().task_steps;
    let n = lp
        .run_until_complete(async move {
            let mut buf = [0; 1];
            let mut n = 0;
            while n < 1000 {
                n += a.read_with(|mut s| s.read(&mut buf)).await.unwrap();
            }
            n
        })
        .unwrap();
    assert_eq!(n, 1000);
    let steps = lp.stats().task_steps - steps_before;
    // 1000 reads at 128 per step: at least 8 steps; without a budget it would be 1.
    assert!(steps >= 8, "only {steps} steps");
    drop(b);
}

#[test]
fn poll_readable_waits_for_a_new_event_after_clear_readable() {
    let lp = EventLoop::new().unwrap();
    let (a, writer) = source_written_later(b"late");
    let got = lp
        .run_until_complete(async move {
            let mut buf = [0; 4];
            let mut waits = 0;
            loop {
                std::future::poll_fn(|cx| a.poll_readable(cx)).await?;
                match a.get_ref().read(&mut buf) {
                    Ok(n) => return std::io::Result::Ok((n, waits)),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        a.clear_readable();
                        waits += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        })
        .unwrap()
        .unwrap();
    assert_eq!(got.0, 4);
    assert!(
        got.1 >= 1,
        "the first try would block: nothing was written yet"
    );
    // A poll that kept answering Ready after the clear would spin through thousands of
    // failed reads in the 20 ms before the write instead of waiting for the event.
    assert!(got.1 < 100, "{} reads before the data came", got.1);
    drop(writer.join().unwrap());
}
