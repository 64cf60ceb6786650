//! A tour of spindle, told with the scenarios of the asyncio notes it was built from.
//!
//! Run it with `cargo run --release --example tour`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use spindle::{
    gather, get_running_loop, shield, sleep, timeout, wait, wait_for, AutoCreate,
    DefaultEventLoopPolicy, EventLoop, EventLoopPolicy, PolicyError, ReturnWhen, TaskError,
    TaskGroup,
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
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

    // 9. The policy: every thread has its own loop. Each thread asks the policy for its loop
    //    (created on demand, as the default policy does only in the main thread), runs a
    //    coroutine on it, and the policy can list every thread's loop meanwhile.
    println!("== 9. one loop per thread, from the policy");
    let policy = Arc::new(DefaultEventLoopPolicy::new(AutoCreate::EveryThread));
    let all_started = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (policy, all_started) = (policy.clone(), all_started.clone());
            std::thread::Builder::new()
                .name(format!("tour-{i}"))
                .spawn(move || -> Result<String, PolicyError> {
                    let lp = policy.get_event_loop()?;
                    let id = lp.id();
                    let same = policy.get_event_loop()?.id() == id;
                    all_started.wait(); // every thread has its loop now
                    all_started.wait(); // the main thread has listed them
                    let line = lp.run_until_complete(async move {
                        sleep(Duration::from_millis(10 * (3 - i))).await;
                        let running = get_running_loop().map(|l| l.id()).unwrap_or(0);
                        format!(
                            "   thread tour-{i}: loop {id} (stable: {same}), running loop {running}"
                        )
                    })?;
                    lp.close()?;
                    Ok(line)
                })
                .expect("spawn a thread")
        })
        .collect();
    all_started.wait();
    println!(
        "   the policy lists {} loops, one per thread",
        policy.loops().len()
    );
    all_started.wait();
    for thread in threads {
        match thread.join() {
            Ok(Ok(line)) => println!("{line}"),
            Ok(Err(e)) => println!("   a thread failed: {e}"),
            Err(_) => println!("   a thread panicked"),
        }
    }
    println!(
        "   after they closed their loops, the policy lists {}",
        policy.loops().len()
    );
    let orphan = std::thread::Builder::new()
        .name("worker-3".into())
        .spawn(|| spindle::get_event_loop().map(|_| ()))
        .expect("spawn a thread")
        .join()
        .expect("thread");
    println!(
        "   a thread with no loop, under the default policy: {}",
        orphan.unwrap_err()
    );

    // 10. asyncio's Queue example, in a TaskGroup: three workers consume a queue of jobs (how
    //     long to sleep); the body waits with `queue.join()` until every job is done, then
    //     shuts the queue down, which ends the workers, and the group returns when they have.
    //     On a runtime of 2 worker loops, with `Send` children that either loop may run.
    println!("== 10. a Queue of work, three workers in a TaskGroup");
    const JOBS: [u64; 12] = [5, 10, 15, 5, 10, 15, 5, 10, 15, 5, 10, 15];
    let rt = spindle::Runtime::builder().worker_threads(2).build()?;
    let jobs = Arc::new(spindle::sync::Queue::new(4));
    let started = Instant::now();
    let done_per_worker = rt.block_on(TaskGroup::run(move |tg| async move {
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let jobs = jobs.clone();
                tg.spawn(async move {
                    let mut done = 0;
                    while let Ok(ms) = jobs.get().await {
                        sleep(Duration::from_millis(ms)).await;
                        done += 1;
                        let _ = jobs.task_done();
                    }
                    let thread = std::thread::current().name().unwrap_or("?").to_string();
                    println!("   worker-{w} did {done} jobs (ended on {thread})");
                    done
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for ms in JOBS {
            jobs.put(ms).await.map_err(|e| e.to_string())?;
        }
        jobs.join().await; // every job was marked task_done
        jobs.shutdown(false); // the workers' next get() fails: they end
        let mut per_worker = Vec::new();
        for w in workers {
            per_worker.push(w.await.map_err(|e| e.to_string())?);
        }
        Ok::<Vec<usize>, String>(per_worker)
    }))??;
    println!(
        "   {} jobs ({} ms of sleep in all) done as {:?} by the three workers, in {:.0} ms",
        JOBS.len(),
        JOBS.iter().sum::<u64>(),
        done_per_worker?,
        started.elapsed().as_secs_f64() * 1e3
    );
    rt.shutdown();

    // 11. asyncio's streams tutorial: a TCP echo server and a client, on one loop. The server
    //     accepts connections in one task and serves each in a task of its own; the client
    //     sends a message, reads the echo, and closes. (`tcp_echo_server` / `tcp_echo_client`
    //     in asyncio's docs.)
    println!("== 11. a TCP echo server and client on one loop");
    echo_on_one_loop()?;
    Ok(())
}

fn echo_on_one_loop() -> Result<(), Box<dyn std::error::Error>> {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use spindle::net::{TcpListener, TcpStream};

    let lp = EventLoop::new()?;
    let inner = lp.clone();
    lp.run_until_complete(async move {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        println!("   serving on {addr}");
        let server = inner
            .create_task(async move {
                let (mut conn, peer) = listener.accept().await?;
                let mut buf = vec![0; 100];
                let n = conn.read(&mut buf).await?;
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                println!("   server: received {message:?} from {peer}");
                conn.write_all(&buf[..n]).await?;
                println!("   server: sent {message:?}, closing the connection");
                std::io::Result::Ok(())
            })
            .map_err(|e| e.to_string())?;
        let mut client = TcpStream::connect(addr).await?;
        client.write_all(b"Hello World!").await?;
        println!("   client: sent \"Hello World!\"");
        let mut echoed = Vec::new();
        client.read_to_end(&mut echoed).await?; // until the server closes
        println!("   client: received {:?}", String::from_utf8_lossy(&echoed));
        server.await.map_err(|e| e.to_string())??;
        Ok::<(), Box<dyn std::error::Error>>(())
    })??;
    lp.close()?;
    Ok(())
}
