//! Sockets on a 2-worker runtime: readiness from a socket's home worker reaches its task on
//! another worker, whether the task was stolen or the socket was moved.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use spindle_loop::EventLoop;
use spindle_net::{TcpListener, TcpStream};
use spindle_policy::Runtime;

fn runtime() -> Runtime {
    Runtime::builder().worker_threads(2).build().unwrap()
}

/// An echo server on its own thread's loop (std thread), for clients on the runtime.
fn echo_server() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lp = EventLoop::new().unwrap();
        let l = lp.clone();
        let _ = lp.run_until_complete(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    break;
                };
                l.create_task(async move {
                    let mut buf = [0; 1024];
                    while let Ok(n @ 1..) = conn.read(&mut buf).await {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                })
                .unwrap();
            }
        });
    });
    rx.recv().unwrap()
}

/// Connects to `addr` and makes the socket wait once (a read with nothing sent yet), so it is
/// homed on the worker running the caller; returns it and its home loop's id.
async fn connect_homed_here(addr: std::net::SocketAddr) -> (TcpStream, u64) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0; 4];
    let wait = std::time::Duration::from_millis(5);
    let early = spindle_loop::timeout(wait, s.read(&mut buf)).await;
    assert!(early.is_err(), "nothing was sent yet");
    let home = s.home_loop().expect("registered by the wait");
    (s, home)
}

/// The index of the worker whose loop is `loop_id`.
fn worker_of(rt: &Runtime, loop_id: u64) -> usize {
    rt.loops()
        .iter()
        .position(|l| l.loop_id() == loop_id)
        .expect("a worker's loop")
}

fn running_loop_id() -> u64 {
    EventLoop::running().expect("inside a worker").id()
}

#[test]
fn a_socket_moved_to_a_task_on_another_worker_keeps_working() {
    let rt = runtime();
    let addr = echo_server();
    let loops: Vec<u64> = rt.loops().iter().map(|l| l.loop_id()).collect();
    // Connect and wait once on worker 0: the socket's home is worker 0's loop.
    let stream = rt
        .spawn_on(0, move || async move {
            let (mut s, home) = connect_homed_here(addr).await;
            let mut buf = [0; 4];
            s.write_all(b"home").await.unwrap();
            s.read_exact(&mut buf).await.unwrap();
            (s, home)
        })
        .unwrap()
        .result()
        .unwrap();
    let (stream, home) = stream;
    assert_eq!(home, loops[0]);
    // Worker 1 uses it: every wait is answered by worker 0's poller.
    let (rounds, ran_on) = rt
        .spawn_on(1, move || async move {
            let mut s = stream;
            for i in 0..200u32 {
                s.write_all(&i.to_le_bytes()).await.unwrap();
                let mut buf = [0; 4];
                s.read_exact(&mut buf).await.unwrap();
                assert_eq!(u32::from_le_bytes(buf), i);
            }
            (200, running_loop_id())
        })
        .unwrap()
        .result()
        .unwrap();
    assert_eq!((rounds, ran_on), (200, loops[1]));
    rt.shutdown();
}

#[test]
fn stealable_tasks_keep_using_their_sockets_wherever_they_run() {
    const CLIENTS: usize = 16;
    const ROUNDS: u32 = 100;
    let rt = runtime();
    let addr = echo_server();
    let off_home = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let off_home = off_home.clone();
            rt.spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                for i in 0..ROUNDS {
                    s.write_all(&i.to_le_bytes()).await.unwrap();
                    let mut buf = [0; 4];
                    s.read_exact(&mut buf).await.unwrap();
                    assert_eq!(u32::from_le_bytes(buf), i);
                    // Busy work, so that siblings queue up and the other worker steals.
                    let mut x = 0u64;
                    for k in 0..20_000 {
                        x = x.wrapping_mul(31).wrapping_add(k);
                    }
                    std::hint::black_box(x);
                    let home = s.home_loop();
                    if home != Some(running_loop_id()) {
                        off_home.fetch_add(1, Ordering::Relaxed);
                    }
                }
                ROUNDS
            })
            .unwrap()
        })
        .collect();
    let total: u32 = rt
        .block_on(async move {
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap();
            }
            total
        })
        .unwrap();
    assert_eq!(total, CLIENTS as u32 * ROUNDS);
    // Not asserted (scheduling decides): how many steps ran away from the socket's home.
    eprintln!(
        "steps away from their socket's home worker: {}",
        off_home.load(Ordering::Relaxed)
    );
    rt.shutdown();
}

#[test]
fn a_stolen_task_uses_its_socket_on_another_worker_while_its_home_is_busy() {
    use std::time::Duration;
    let rt = runtime();
    let addr = echo_server();
    let go = Arc::new(spindle_sync::Event::new());
    let (home_tx, home_rx) = std::sync::mpsc::channel();
    let g = go.clone();
    let task = rt
        .spawn(async move {
            let (mut s, home) = connect_homed_here(addr).await;
            let mut buf = [0; 4];
            s.write_all(b"ping").await.unwrap();
            s.read_exact(&mut buf).await.unwrap();
            home_tx.send(home).unwrap();
            // Woken from a plain thread: the task goes to the runtime's injector, and the
            // idle worker takes it while the home worker is busy.
            g.wait().await;
            let resumed_on = running_loop_id();
            s.write_all(b"pong").await.unwrap();
            s.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"pong");
            (home, resumed_on)
        })
        .unwrap();
    let home = home_rx.recv().unwrap();
    let home_worker = worker_of(&rt, home);
    // Keep the home worker busy (a blocking step on its own loop), then wake the task.
    let busy = rt
        .spawn_on(home_worker, || async {
            std::thread::sleep(Duration::from_millis(800));
        })
        .unwrap();
    // Give the busy step time to start (it holds the home worker for 800 ms).
    std::thread::sleep(Duration::from_millis(100));
    go.set();
    let (home, resumed_on) = rt.block_on(task).unwrap().unwrap();
    busy.result().unwrap();
    assert_ne!(
        resumed_on, home,
        "the task should have been stolen by the idle worker"
    );
    rt.shutdown();
}

#[test]
fn an_idle_worker_wakes_the_tasks_of_a_stuck_workers_sockets() {
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};
    let rt = runtime();
    let addr = echo_server();
    let go = Arc::new(spindle_sync::Event::new());
    let replied = Arc::new(AtomicBool::new(false));
    let (home_tx, home_rx) = std::sync::mpsc::channel();
    let (g, r) = (go.clone(), replied.clone());
    let task = rt
        .spawn(async move {
            let (mut s, home) = connect_homed_here(addr).await;
            home_tx.send(home).unwrap();
            g.wait().await;
            let mut buf = [0; 4];
            s.write_all(b"ping").await.unwrap();
            // The echo comes back while the home worker is stuck: only its sibling can see it.
            s.read_exact(&mut buf).await.unwrap();
            r.store(true, Ordering::SeqCst);
        })
        .unwrap();
    let home_worker = worker_of(&rt, home_rx.recv().unwrap());
    // The home worker is stuck in one blocking step until the reply has been read (at most
    // 10 s, so that a broken help fails the test instead of hanging it).
    let seen = replied.clone();
    let stuck = rt
        .spawn_on(home_worker, move || async move {
            let until = Instant::now() + Duration::from_secs(10);
            while !seen.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            seen.load(Ordering::SeqCst)
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    go.set();
    let read_while_stuck = stuck.result().unwrap();
    rt.block_on(task).unwrap().unwrap();
    assert!(
        read_while_stuck,
        "the reply was read only after the socket's home worker came back"
    );
    rt.shutdown();
}
