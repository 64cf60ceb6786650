//! The optional traits: tokio's I/O traits (tokio-io) and hyper 1.x (HTTP/1.1 and HTTP/2
//! round trips over spindle sockets, on one loop and on a runtime).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use spindle_loop::EventLoop;
use spindle_net::hyper::{SpindleExecutor, SpindleTimer};
use spindle_net::{TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn hello(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!("hello {}", req.uri().path());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

#[test]
fn tokio_io_traits_read_and_write_spindle_sockets() {
    let lp = EventLoop::new().unwrap();
    let got = lp
        .run_until_complete(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let mut client = TcpStream::connect(listener.local_addr()?).await?;
            let (mut conn, _) = listener.accept().await?;
            AsyncWriteExt::write_all(&mut client, b"tokio traits").await?;
            AsyncWriteExt::shutdown(&mut client).await?;
            let mut all = Vec::new();
            AsyncReadExt::read_to_end(&mut conn, &mut all).await?;
            std::io::Result::Ok(all)
        })
        .unwrap()
        .unwrap();
    assert_eq!(got, b"tokio traits");
}

#[test]
fn hyper_http1_round_trip_on_one_loop() {
    let lp = EventLoop::new().unwrap();
    let l = lp.clone();
    let bodies = lp
        .run_until_complete(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            l.create_task(async move {
                let (conn, _) = listener.accept().await.unwrap();
                hyper::server::conn::http1::Builder::new()
                    .timer(SpindleTimer)
                    .serve_connection(conn, hyper::service::service_fn(hello))
                    .await
                    .unwrap();
            })
            .unwrap();
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
            l.create_task(async move {
                let _ = conn.await;
            })
            .unwrap();
            let mut bodies = Vec::new();
            for path in ["/a", "/b"] {
                let req = Request::get(path).body(Empty::<Bytes>::new()).unwrap();
                let resp = sender.send_request(req).await.unwrap();
                assert!(resp.status().is_success());
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                bodies.push(String::from_utf8(body.to_vec()).unwrap());
            }
            bodies
        })
        .unwrap();
    assert_eq!(bodies, ["hello /a", "hello /b"]);
}

#[test]
fn hyper_http2_round_trip_on_a_runtime() {
    let rt = spindle_policy::Runtime::builder()
        .worker_threads(2)
        .build()
        .unwrap();
    let bodies = rt
        .block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            spindle_policy::spawn(async move {
                let (conn, _) = listener.accept().await.unwrap();
                hyper::server::conn::http2::Builder::new(SpindleExecutor)
                    .timer(SpindleTimer)
                    .serve_connection(conn, hyper::service::service_fn(hello))
                    .await
                    .unwrap();
            })
            .unwrap();
            let stream = TcpStream::connect(addr).await.unwrap();
            let (sender, conn) = hyper::client::conn::http2::handshake(SpindleExecutor, stream)
                .await
                .unwrap();
            spindle_policy::spawn(async move {
                let _ = conn.await;
            })
            .unwrap();
            // Concurrent streams on one connection, from stealable tasks.
            let requests: Vec<_> = (0..8)
                .map(|i| {
                    let mut sender = sender.clone();
                    spindle_policy::spawn(async move {
                        let req = Request::get(format!("/{i}"))
                            .body(Empty::<Bytes>::new())
                            .unwrap();
                        let resp = sender.send_request(req).await.unwrap();
                        let body = resp.into_body().collect().await.unwrap().to_bytes();
                        String::from_utf8(body.to_vec()).unwrap()
                    })
                    .unwrap()
                })
                .collect();
            let mut bodies = Vec::new();
            for r in requests {
                bodies.push(r.await.unwrap());
            }
            bodies
        })
        .unwrap();
    let expected: Vec<String> = (0..8).map(|i| format!("hello /{i}")).collect();
    assert_eq!(bodies, expected);
    rt.shutdown();
}
