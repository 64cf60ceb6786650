//! A tour of spindle, told with the scenarios of the asyncio notes it was built from.
//!
//! Run it with `cargo run --release --example tour`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle::{
    gather, shield, sleep, timeout, wait, wait_for, EventLoop, LoopError, ReturnWhen, TaskError,
};

/// asyncio's documentation example for `gather`: a slow factorial that reports as it goes.
async fn factorial(name: &'static str, number: u64) -> u64 {
    let mut f = 1;
    for i in 2..=number {
        println!("   Task {name}: Compute factorial({number}), currently i={i}...");
        sleep(Duration::from_millis(10)).await;
        f *= i;
    }
    println!("   Task {name}: factorial({number}) = {f}");
    f
}

fn main() -> Result<(), LoopError> {
    let lp = EventLoop::new()?;
    let t0 = lp.time();
    let since = move |at: Instant| at.duration_since(t0).as_secs_f64();

    // 1. Run one coroutine to completion: `loop.run_until_complete(hello())`.
    println!("== 1. run_until_complete(coroutine)");
    let answer = lp.run_until_complete(async move {
        println!("   hello ...");
        sleep(Duration::from_millis(20)).await;
        println!("   ... world");
        42
    })?;
    println!("   the coroutine returned {answer}");

    // 2. Two tasks that sleep concurrently: the whole takes as long as the longer sleep.
    println!("== 2. two tasks sleeping concurrently");
    let started = lp.time();
    let l = lp.clone();
    lp.run_until_complete(async move {
        let say_after = |delay: u64, what: &'static str| async move {
            sleep(Duration::from_millis(delay)).await;
            println!("   {what} (after {delay} ms)");
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

    // 5. gather: three factorial tasks at once; the results come in argument order.
    println!("== 5. gather(factorial(\"A\", 2), factorial(\"B\", 3), factorial(\"C\", 4))");
    let results = lp.run_until_complete(gather([
        factorial("A", 2),
        factorial("B", 3),
        factorial("C", 4),
    ]))?;
    println!(
        "   gather returned {:?}",
        results.map_err(|e| e.to_string())
    );

    // 6. wait_for on a long sleep: the deadline passes, the sleep is cancelled.
    println!("== 6. wait_for(eternity(), 50 ms)");
    let eternity = async {
        sleep(Duration::from_secs(3600)).await;
        println!("   yay!");
    };
    let started = lp.time();
    match lp.run_until_complete(wait_for(eternity, Duration::from_millis(50)))? {
        Err(TaskError::Timeout) => println!(
            "   timeout! after {:.0} ms, and the eternity was cancelled",
            lp.time().duration_since(started).as_secs_f64() * 1000.0
        ),
        other => println!("   unexpected: {other:?}"),
    }

    // 7. wait(FIRST_COMPLETED): returns as soon as one task is done; nothing is cancelled.
    println!("== 7. wait(tasks, return_when=FIRST_COMPLETED)");
    let l = lp.clone();
    lp.run_until_complete(async move {
        let tasks = [30, 10, 20].map(|ms| {
            l.create_task(async move {
                sleep(Duration::from_millis(ms)).await;
                ms
            })
            .unwrap()
        });
        let (done, pending) = wait(tasks, None, ReturnWhen::FirstCompleted)
            .await
            .expect("three tasks");
        for mut task in done {
            println!("   done: the {:?} ms task", task.result().unwrap().unwrap());
        }
        println!(
            "   still pending: {} tasks; they finish on their own",
            pending.len()
        );
        for task in pending {
            let ms = task.await.unwrap();
            println!("   later: the {ms} ms task");
        }
    })?;

    // 8. shield: a timeout around the shield gives up waiting, the work itself goes on.
    println!("== 8. shield(task) under a timeout: the task survives");
    let l = lp.clone();
    lp.run_until_complete(async move {
        let mut task = l
            .create_task(async {
                sleep(Duration::from_millis(60)).await;
                "the report is written"
            })
            .unwrap();
        match timeout(Duration::from_millis(20), shield(&mut task)).await {
            Err(TaskError::Timeout) => println!("   timed out waiting, but the task runs on..."),
            other => println!("   unexpected: {other:?}"),
        }
        println!("   ... and then: {:?}", task.await);
        let owned = l.create_task(sleep(Duration::from_millis(30))).unwrap();
        let survivor = owned.task_ref();
        let out = wait_for(shield(owned), Duration::from_millis(10)).await;
        println!(
            "   wait_for(shield(task)) says {:?}; the task cancelled? {}",
            out,
            survivor.cancelled()
        );
    })?;

    lp.close()?;
    println!(
        "== closed: run_forever now says: {}",
        lp.run_forever().unwrap_err()
    );
    Ok(())
}
