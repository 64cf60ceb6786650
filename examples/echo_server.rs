//! The multi-loop echo server: `spindle::net::Server` on N worker loops (one `SO_REUSEPORT`
//! listener per worker on Linux, the kernel spreading connections), driven by loopback clients
//! on the main thread's loop; prints how many connections each worker accepted, then shuts the
//! server down gracefully.
//!
//! `cargo run --release --example echo_server [WORKERS] [CONNECTIONS]` (2 workers and 1,000
//! connections when missing or unparsable). `--serve ADDR` instead serves on `ADDR` until
//! Ctrl-C (for example `--serve 127.0.0.1:7000`, then `nc 127.0.0.1 7000`).

use std::io;
use std::net::SocketAddr;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use spindle::net::{Server, ServerHandle, TcpStream};
use spindle::Runtime;

/// Echoes until the peer closes or the server shuts down.
async fn echo(mut conn: TcpStream) {
    let mut buf = [0; 4096];
    while let Ok(n @ 1..) = conn.read(&mut buf).await {
        if conn.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// `connections` round trips from 32 concurrent client tasks on the calling loop.
async fn clients(addr: SocketAddr, connections: usize) -> io::Result<()> {
    let tasks: Vec<_> = (0..32)
        .map(|c| {
            spindle::spawn_local(async move {
                for i in (c..connections).step_by(32) {
                    let message = format!("hello {i}");
                    let mut conn = TcpStream::connect(addr).await?;
                    conn.write_all(message.as_bytes()).await?;
                    let mut reply = vec![0; message.len()];
                    conn.read_exact(&mut reply).await?;
                    if reply != message.as_bytes() {
                        return Err(io::Error::other("wrong echo"));
                    }
                }
                io::Result::Ok(())
            })
            .map_err(|e| io::Error::other(e.reason().to_string()))
        })
        .collect::<io::Result<_>>()?;
    for task in tasks {
        task.await.map_err(|e| io::Error::other(e.to_string()))??;
    }
    Ok(())
}

fn report(server: &ServerHandle) {
    for (worker, n) in server.accepted_connections().iter().enumerate() {
        println!("worker {worker}: {n} connections");
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, addr] = args.as_slice() {
        if flag == "--serve" {
            let rt = Runtime::builder().build().map_err(io::Error::other)?;
            let server = Server::bind(addr.as_str()).serve(&rt, echo)?;
            println!(
                "echo server on {:?} with {} workers",
                server.local_addrs(),
                rt.worker_threads()
            );
            rt.block_on(async move { server.serve_forever().await })
                .map_err(io::Error::other)?;
            return Ok(());
        }
    }
    let workers = args.first().and_then(|n| n.parse().ok()).unwrap_or(2);
    let connections = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let rt = Runtime::builder()
        .worker_threads(workers)
        .build()
        .map_err(io::Error::other)?;
    let server = Server::bind("127.0.0.1:0").serve(&rt, echo)?;
    let addr = server.local_addrs()[0];
    println!("echo server on {addr} with {workers} workers; {connections} client connections");
    let handle = server.clone();
    let outcome = rt
        .block_on(async move {
            clients(addr, connections).await?;
            io::Result::Ok(handle.shutdown().await)
        })
        .map_err(io::Error::other)??;
    report(&server);
    println!("shut down gracefully: {}", outcome.graceful());
    Ok(())
}
