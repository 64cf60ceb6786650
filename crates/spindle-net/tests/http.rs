//! hyper on a `Server` (feature `hyper-server`): HTTP/1.1, HTTP/2 and auto-detected round
//! trips through a 2-worker server with hyper clients on spindle, hyper's graceful shutdown
//! driven by the server's (idle keep-alive connections close, in-flight requests finish, new
//! connections are refused), and HTTPS over futures-rustls with a certificate made here.
//! Loopback only; every wait gives up after `LIMIT`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use spindle_net::hyper::{serve_auto, serve_http1, serve_http2, FuturesIo, SpindleExecutor};
use spindle_net::{Server, ServerHandle, ShutdownSignal, TcpStream};
use spindle_policy::Runtime;

const LIMIT: Duration = Duration::from_secs(20);

/// The body `/slow` answers with: larger than one socket buffer, so it arrives in parts.
const SLOW_BODY_LEN: usize = 256 * 1024;

fn runtime() -> Runtime {
    Runtime::builder().worker_threads(2).build().unwrap()
}

/// Polls `cond` on the running loop until it holds; panics after `LIMIT`.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        spindle_loop::sleep(Duration::from_millis(2)).await;
    }
}

/// Fails the test if `fut` takes longer than `LIMIT`.
async fn bounded<T>(fut: impl std::future::Future<Output = T>) -> T {
    spindle_loop::timeout(LIMIT, fut)
        .await
        .expect("timed out after LIMIT")
}

/// `/slow` counts itself in `in_flight`, holds until the server's shutdown has begun, then
/// answers `SLOW_BODY_LEN` bytes; any other path answers `hello <path>`.
async fn routes(
    req: Request<Incoming>,
    signal: ShutdownSignal,
    in_flight: Arc<AtomicUsize>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/slow" {
        in_flight.fetch_add(1, Ordering::SeqCst);
        signal.triggered().await;
        return Ok(Response::new(Full::new(Bytes::from(vec![
            b's';
            SLOW_BODY_LEN
        ]))));
    }
    let body = format!("hello {}", req.uri().path());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

#[derive(Clone, Copy)]
enum Serve {
    Http1,
    Http2,
    Auto,
}

/// A server on `rt` serving `routes` with `serve`; returns it and its `/slow` counter.
fn http_server(rt: &Runtime, serve: Serve) -> (ServerHandle, Arc<AtomicUsize>) {
    let server = Server::bind("127.0.0.1:0").shutdown_timeout(LIMIT);
    let signal = server.shutdown_signal();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let counter = in_flight.clone();
    let server = server
        .serve(rt, move |conn: TcpStream| {
            let (signal, counter) = (signal.clone(), counter.clone());
            let route_signal = signal.clone();
            let service = hyper::service::service_fn(move |req| {
                routes(req, route_signal.clone(), counter.clone())
            });
            async move {
                match serve {
                    Serve::Http1 => serve_http1(conn, service, signal).await.unwrap(),
                    Serve::Http2 => serve_http2(conn, service, signal).await.unwrap(),
                    Serve::Auto => serve_auto(conn, service, signal).await.unwrap(),
                }
            }
        })
        .unwrap();
    (server, in_flight)
}

/// An HTTP/1.1 client connection on spindle: its sender and the task driving it.
async fn http1_client<I>(
    io: I,
) -> (
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    spindle_loop::Task<hyper::Result<()>>,
)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    (sender, spindle_loop::spawn_local(conn).unwrap())
}

/// An HTTP/2 client connection on spindle: its sender and the task driving it.
async fn http2_client<I>(
    io: I,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    spindle_loop::Task<hyper::Result<()>>,
)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::handshake(SpindleExecutor, io)
        .await
        .unwrap();
    (sender, spindle_loop::spawn_local(conn).unwrap())
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path).body(Empty::new()).unwrap()
}

async fn body_of(resp: Response<Incoming>) -> Bytes {
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.into_body().collect().await.unwrap().to_bytes()
}

/// Serves with `serve`; `clients` keep-alive client connections (HTTP/1.1 or HTTP/2) make 3
/// requests each and stay open; the shutdown must close them gracefully (without the
/// shutdown timeout, `LIMIT`, and cancelling) and every client connection must end.
fn round_trips_then_idle_connections_close(serve: Serve, http2: bool) {
    let rt = runtime();
    let (server, _) = http_server(&rt, serve);
    let addr = server.local_addrs()[0];
    let handle = server.clone();
    let outcome = rt
        .block_on(async move {
            // The senders are kept: a client connection stays open while one lives.
            let (mut drivers, mut h1_senders, mut h2_senders) =
                (Vec::new(), Vec::new(), Vec::new());
            for c in 0..8 {
                let stream = TcpStream::connect(addr).await.unwrap();
                let mut bodies = Vec::new();
                if http2 {
                    // HTTP/2: the three requests as concurrent streams of one connection.
                    let (sender, driver) = http2_client(stream).await;
                    drivers.push(driver);
                    let streams: Vec<_> = (0..3)
                        .map(|r| {
                            let mut sender = sender.clone();
                            let req = get(&format!("/{c}/{r}"));
                            spindle_loop::spawn_local(async move { sender.send_request(req).await })
                                .unwrap()
                        })
                        .collect();
                    for s in streams {
                        let resp = s.await.unwrap().unwrap();
                        assert_eq!(resp.version(), hyper::Version::HTTP_2);
                        bodies.push(body_of(resp).await);
                    }
                    h2_senders.push(sender);
                } else {
                    // HTTP/1.1: one after the other on a keep-alive connection.
                    let (mut sender, driver) = http1_client(stream).await;
                    drivers.push(driver);
                    for r in 0..3 {
                        let resp = sender.send_request(get(&format!("/{c}/{r}"))).await;
                        let resp = resp.unwrap();
                        assert_eq!(resp.version(), hyper::Version::HTTP_11);
                        bodies.push(body_of(resp).await);
                    }
                    h1_senders.push(sender);
                }
                let expected: Vec<String> = (0..3).map(|r| format!("hello /{c}/{r}")).collect();
                assert_eq!(bodies, expected);
            }
            // Every client connection is open and idle now.
            let outcome = bounded(handle.shutdown()).await;
            for driver in drivers {
                bounded(driver).await.unwrap().unwrap();
            }
            drop((h1_senders, h2_senders));
            outcome
        })
        .unwrap();
    assert!(outcome.graceful(), "{outcome:?}");
    let accepted = server.accepted_connections();
    assert_eq!(accepted.iter().sum::<u64>(), 8, "{accepted:?}");
    assert_eq!(server.open_connections(), vec![0, 0]);
    rt.shutdown();
}

#[test]
fn serve_http1_round_trips_on_two_workers_and_idle_keep_alive_connections_close_at_shutdown() {
    round_trips_then_idle_connections_close(Serve::Http1, false);
}

#[test]
fn serve_http2_round_trips_on_two_workers_and_idle_connections_get_goaway_at_shutdown() {
    round_trips_then_idle_connections_close(Serve::Http2, true);
}

#[test]
fn serve_auto_speaks_http1_and_http2() {
    round_trips_then_idle_connections_close(Serve::Auto, false);
    round_trips_then_idle_connections_close(Serve::Auto, true);
}

#[test]
fn graceful_shutdown_lets_in_flight_requests_finish_and_refuses_new_connections() {
    let rt = runtime();
    let (server, in_flight) = http_server(&rt, Serve::Auto);
    let addr = server.local_addrs()[0];
    rt.block_on(async move {
        let (mut h1, h1_driver) = http1_client(TcpStream::connect(addr).await.unwrap()).await;
        let (mut h2, h2_driver) = http2_client(TcpStream::connect(addr).await.unwrap()).await;
        let slow1 = spindle_loop::spawn_local(h1.send_request(get("/slow"))).unwrap();
        let slow2 = spindle_loop::spawn_local(h2.send_request(get("/slow"))).unwrap();
        eventually("2 requests in flight", || {
            in_flight.load(Ordering::SeqCst) == 2
        })
        .await;
        let shutting = server.clone();
        let shutdown = spindle_loop::spawn_local(async move { shutting.shutdown().await }).unwrap();
        for slow in [slow1, slow2] {
            let body = bounded(async { body_of(slow.await.unwrap().unwrap()).await }).await;
            assert_eq!(body.len(), SLOW_BODY_LEN);
            assert!(body.iter().all(|&b| b == b's'));
        }
        // The handlers answered after the signal, which follows the listeners' close.
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        let outcome = bounded(shutdown).await.unwrap();
        assert!(outcome.graceful(), "{outcome:?}");
        bounded(h1_driver).await.unwrap().unwrap();
        bounded(h2_driver).await.unwrap().unwrap();
        drop((h1, h2));
    })
    .unwrap();
    rt.shutdown();
}

/// `serve_local`: each worker builds its own `!Send` service state (an `Rc` counter), hyper
/// serves it on that worker's local tasks, and the server's shutdown still ends every idle
/// keep-alive connection gracefully.
#[test]
fn serve_local_serves_a_non_send_service_and_closes_it_gracefully() {
    use std::cell::Cell;
    use std::rc::Rc;

    let rt = runtime();
    let server = Server::bind("127.0.0.1:0").shutdown_timeout(LIMIT);
    let signal = server.shutdown_signal();
    let server = server
        .serve_local(&rt, move || {
            // One per worker, never sent anywhere: requests served by this worker so far.
            let served = Rc::new(Cell::new(0u32));
            let signal = signal.clone();
            move |conn: TcpStream| {
                let served = served.clone();
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let served = served.clone();
                    async move {
                        served.set(served.get() + 1);
                        let body = format!("{} #{}", req.uri().path(), served.get());
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let signal = signal.clone();
                async move { serve_http1(conn, service, signal).await.unwrap() }
            }
        })
        .unwrap();
    let addr = server.local_addrs()[0];
    let handle = server.clone();
    let outcome = rt
        .block_on(async move {
            let (mut drivers, mut senders) = (Vec::new(), Vec::new());
            for c in 0..4 {
                let (mut sender, driver) =
                    http1_client(TcpStream::connect(addr).await.unwrap()).await;
                let mut last = 0;
                for r in 0..3 {
                    let path = format!("/{c}/{r}");
                    let body = body_of(sender.send_request(get(&path)).await.unwrap()).await;
                    let body = String::from_utf8(body.to_vec()).unwrap();
                    let (answered, count) = body.split_once(" #").unwrap();
                    assert_eq!(answered, path);
                    // The worker's own counter: it grows along one connection.
                    let count: u32 = count.parse().unwrap();
                    assert!(count > last, "{body} after #{last}");
                    last = count;
                }
                drivers.push(driver);
                senders.push(sender);
            }
            let outcome = bounded(handle.shutdown()).await;
            for driver in drivers {
                bounded(driver).await.unwrap().unwrap();
            }
            drop(senders);
            outcome
        })
        .unwrap();
    assert!(outcome.graceful(), "{outcome:?}");
    assert_eq!(server.accepted_connections().iter().sum::<u64>(), 4);
    assert_eq!(server.open_connections(), vec![0, 0]);
    rt.shutdown();
}

/// rustls on `ring`. rustls 0.23.48 deprecates it (no post-quantum key exchange), which
/// loopback tests do not need; its default, aws-lc-rs, needs cmake to build.
#[allow(deprecated)]
fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost`, as the server's config and as the client's
/// only root.
fn tls_configs() -> (Arc<ServerConfig>, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = made.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    let mut server = ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (Arc::new(server), cert)
}

fn client_config(roots: RootCertStore, alpn: &[u8]) -> TlsConnector {
    let mut config = ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    connector: &TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<FuturesIo<futures_rustls::client::TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    Ok(FuturesIo::new(connector.connect(name, tcp).await?))
}

#[test]
fn https_round_trips_over_futures_rustls_with_a_certificate_made_here() {
    let rt = runtime();
    let (server_config, cert) = tls_configs();
    let acceptor = TlsAcceptor::from(server_config);
    let server = Server::bind("127.0.0.1:0").shutdown_timeout(LIMIT);
    let signal = server.shutdown_signal();
    let server = server
        .serve(&rt, move |conn: TcpStream| {
            let (acceptor, signal) = (acceptor.clone(), signal.clone());
            async move {
                // A client that rejects the certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(conn).await else {
                    return;
                };
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let body = format!("secure {}", req.uri().path());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                serve_auto(FuturesIo::new(tls), service, signal)
                    .await
                    .unwrap();
            }
        })
        .unwrap();
    let addr = server.local_addrs()[0];
    let handle = server.clone();
    let outcome = rt
        .block_on(async move {
            let mut roots = RootCertStore::empty();
            roots.add(cert).unwrap();
            // HTTP/1.1 over TLS.
            let io = tls_connect(&client_config(roots.clone(), b"http/1.1"), addr).await;
            let (mut h1, h1_driver) = http1_client(io.unwrap()).await;
            let resp = h1.send_request(get("/one")).await.unwrap();
            assert_eq!(body_of(resp).await, "secure /one");
            // HTTP/2 over TLS, negotiated by ALPN.
            let io = tls_connect(&client_config(roots, b"h2"), addr)
                .await
                .unwrap();
            assert_eq!(io.get_ref().get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            let (mut h2, h2_driver) = http2_client(io).await;
            let resp = h2.send_request(get("/two")).await.unwrap();
            assert_eq!(resp.version(), hyper::Version::HTTP_2);
            assert_eq!(body_of(resp).await, "secure /two");
            // A client that does not trust the certificate refuses the handshake.
            let untrusting = client_config(RootCertStore::empty(), b"http/1.1");
            let rejected = tls_connect(&untrusting, addr).await.err().unwrap();
            assert_eq!(
                rejected.kind(),
                std::io::ErrorKind::InvalidData,
                "{rejected}"
            );
            let outcome = bounded(handle.shutdown()).await;
            bounded(h1_driver).await.unwrap().unwrap();
            bounded(h2_driver).await.unwrap().unwrap();
            drop((h1, h2));
            outcome
        })
        .unwrap();
    assert!(outcome.graceful(), "{outcome:?}");
    assert_eq!(server.accepted_connections().iter().sum::<u64>(), 3);
    rt.shutdown();
}
