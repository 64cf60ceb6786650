//! A tour of spindle, told with the scenarios of the asyncio notes it was built from.
//!
//! Run it with `cargo run --release --example tour`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle::{EventLoop, LoopError, LoopFuture};

/// asyncio's `asyncio.sleep(d)`, built the way asyncio builds it: a future resolved by a timer.
fn sleep(lp: &EventLoop, delay: Duration) -> LoopFuture<()> {
    let fut = lp.create_future();
    let setter = fut.clone();
    lp.call_later(delay, move || {
        let _ = setter.set_result(());
    })
    .expect("the loop is open");
    fut
}

fn main() -> Result<(), LoopError> {
    let lp = EventLoop::new()?;
    let t0 = lp.time();
    let since = move |at: Instant| at.duration_since(t0).as_secs_f64();

    // 1. Run one coroutine to completion: `loop.run_until_complete(hello())`.
    println!("== 1. run_until_complete(coroutine)");
    let l = lp.clone();
    let answer = lp.run_until_complete(async move {
        println!("   hello ...");
        sleep(&l, Duration::from_millis(20)).await.ok();
        println!("   ... world");
        42
    })?;
    println!("   the coroutine returned {answer}");

    // 2. Two tasks that sleep concurrently: the whole takes as long as the longer sleep.
    println!("== 2. two tasks sleeping concurrently");
    let started = lp.time();
    let l = lp.clone();
    lp.run_until_complete(async move {
        let say_after = |delay: u64, what: &'static str| {
            let l2 = l.clone();
            async move {
                sleep(&l2, Duration::from_millis(delay)).await.ok();
                println!("   {what} (after {delay} ms)");
            }
        };
        let first = l.create_task(say_after(100, "hello")).unwrap();
        let second = l.create_task(say_after(200, "world")).unwrap();
        first.await.ok();
        second.await.ok();
    })?;
    println!(
        "   both finished in {:.0} ms, not 300: they slept at the same time",
        lp.time().duration_since(started).as_secs_f64() * 1000.0
    );

    // 3. run_forever, stopped from a future's done-callback.
    println!("== 3. run_forever stopped by a future's done-callback");
    let fut = lp.create_future::<&'static str>();
    let stopper = lp.clone();
    fut.add_done_callback(move |f| {
        println!("   done-callback saw {:?}; stopping the loop", f.result());
        stopper.stop();
    });
    let setter = fut.clone();
    lp.call_later(Duration::from_millis(10), move || {
        setter.set_result("Future is done!").unwrap();
    })
    .expect("open");
    lp.run_forever()?;
    println!("   run_forever returned");

    // 4. call_soon / call_later / call_at, in the order the loop runs them.
    println!("== 4. call_soon, call_later, call_at");
    let log = Rc::new(RefCell::new(Vec::new()));
    let now = lp.time();
    let entry = |name: &'static str| {
        let log = log.clone();
        move || log.borrow_mut().push((name, Instant::now()))
    };
    lp.call_later(Duration::from_millis(30), entry("call_later(30 ms)"))
        .expect("open");
    lp.call_at(
        now + Duration::from_millis(10),
        entry("call_at(now + 10 ms)"),
    )
    .expect("open");
    lp.call_soon(entry("call_soon #1")).expect("open");
    lp.call_later(Duration::ZERO, entry("call_later(0)"))
        .expect("open");
    lp.call_soon(entry("call_soon #2")).expect("open");
    let stopper = lp.clone();
    lp.call_later(Duration::from_millis(40), move || stopper.stop())
        .expect("open");
    lp.run_forever()?;
    for (name, at) in log.borrow().iter() {
        println!("   t={:.4}s  {name}", since(*at));
    }

    lp.close()?;
    println!(
        "== closed: run_forever now says: {}",
        lp.run_forever().unwrap_err()
    );
    Ok(())
}
