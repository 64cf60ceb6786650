//! Readiness after `WouldBlock` is never lost: bulk transfers through tiny socket buffers,
//! so nearly every read and write has to wait, on one loop and across a runtime's workers.
//! Bounded: a fixed number of bytes, and a deadline that fails the test instead of hanging.

use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use spindle_loop::{timeout, EventLoop};
use spindle_net::{TcpListener, TcpStream};
use spindle_policy::Runtime;

const BYTES: usize = 4 << 20;
const CONNS: usize = 4;

fn tiny_buffers(s: &TcpStream) {
    let sock = socket2::SockRef::from(s.get_ref());
    // Small enough that most reads and writes have to wait (thousands of waits per
    // connection). Not smaller: with a few KiB, loopback TCP itself stalls for seconds in
    // zero-window probes (seen with plain blocking sockets too).
    sock.set_send_buffer_size(32 * 1024).unwrap();
    sock.set_recv_buffer_size(32 * 1024).unwrap();
}

/// Sends `BYTES` of a known pattern one way and echoes a checksum back.
async fn transfer(addr: std::net::SocketAddr) -> u64 {
    let stream = TcpStream::connect(addr).await.unwrap();
    tiny_buffers(&stream);
    let (mut read, mut write) = stream.into_split();
    let sender = async move {
        let chunk: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        let mut sent = 0;
        while sent < BYTES {
            let n = (BYTES - sent).min(chunk.len());
            write.write_all(&chunk[..n]).await.unwrap();
            sent += n;
        }
        write
    };
    let receiver = async move {
        let mut buf = [0; 8];
        read.read_exact(&mut buf).await.unwrap();
        u64::from_le_bytes(buf)
    };
    let (_, sum) = futures_lite::future::zip(sender, receiver).await;
    sum
}

fn expected_sum() -> u64 {
    (0..BYTES).map(|i| ((i % 8192) as u32 % 251) as u64).sum()
}

/// The server: reads everything through a tiny buffer, replies with the byte sum.
async fn sum_server(listener: TcpListener, conns: usize) {
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (mut conn, _) = listener.accept().await.unwrap();
        tiny_buffers(&conn);
        tasks.push(
            spindle_loop::spawn_local(async move {
                let mut buf = vec![0; 1500];
                let (mut sum, mut got) = (0u64, 0usize);
                while got < BYTES {
                    let n = conn.read(&mut buf).await.unwrap();
                    assert!(n > 0, "early end of stream");
                    sum += buf[..n].iter().map(|&b| b as u64).sum::<u64>();
                    got += n;
                }
                conn.write_all(&sum.to_le_bytes()).await.unwrap();
            })
            .unwrap(),
        );
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn readiness_after_would_block_is_never_lost_on_one_loop() {
    let lp = EventLoop::new().unwrap();
    let l = lp.clone();
    let sums = lp
        .run_until_complete(timeout(Duration::from_secs(60), async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = l.create_task(sum_server(listener, CONNS)).unwrap();
            let clients: Vec<_> = (0..CONNS)
                .map(|_| l.create_task(transfer(addr)).unwrap())
                .collect();
            let mut sums = Vec::new();
            for c in clients {
                sums.push(c.await.unwrap());
            }
            server.await.unwrap();
            sums
        }))
        .unwrap()
        .expect("a wake-up was lost: the transfer did not finish in 60 s");
    assert!(sums.iter().all(|&s| s == expected_sum()));
}

#[test]
fn readiness_after_would_block_is_never_lost_across_workers() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    // The server on its own thread's loop; the clients stealable on the runtime.
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let lp = EventLoop::new().unwrap();
        lp.run_until_complete(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            sum_server(listener, CONNS).await
        })
        .unwrap();
    });
    let addr = rx.recv().unwrap();
    let sums = rt
        .block_on(timeout(Duration::from_secs(60), async move {
            let clients: Vec<_> = (0..CONNS)
                .map(|_| spindle_policy::spawn(transfer(addr)).unwrap())
                .collect();
            let mut sums = Vec::new();
            for c in clients {
                sums.push(c.await.unwrap());
            }
            sums
        }))
        .unwrap()
        .expect("a wake-up was lost: the transfer did not finish in 60 s");
    assert!(sums.iter().all(|&s| s == expected_sum()));
    server.join().unwrap();
    rt.shutdown();
}
