//! hyper on spindle's multi-loop `Server`: hello world at `/`, `{"message":"Hello, World!"}` at
//! `/json`, HTTP/1.1 and HTTP/2 prior knowledge (told apart by the first bytes), graceful
//! shutdown on Ctrl-C or SIGTERM (requests in flight finish, idle keep-alive connections
//! close), then each worker's connection count.
//!
//! ```text
//! cargo run --release --example http_server -- [--addr 127.0.0.1:8080] [--workers 2] [--tls] [--smoke]
//! ```
//!
//! - `--workers N` (or `SPINDLE_WORKERS=N`): worker loops, 2 by default.
//! - `--tls`: HTTPS with a self-signed certificate for `localhost` / `127.0.0.1` made at start
//!   (rustls on ring through futures-rustls; HTTP/2 offered by ALPN): `curl -k https://...`.
//! - `--smoke`: serve on a free loopback port (unless `--addr`), make a few requests to itself
//!   (HTTP/1.1 and HTTP/2, over TLS with `--tls`, checking every reply), raise SIGTERM, shut
//!   down, and exit 0 only if all went right (CI runs it).
//!
//! Load it with `wrk -t2 -c64 -d10s http://127.0.0.1:8080/` (`apt-get install -y wrk`).

use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use spindle::net::hyper::{serve_auto, FuturesIo, SpindleExecutor};
use spindle::net::{Server, ServerHandle, TcpStream};
use spindle::spindle_loop::io::signals::{SIGINT, SIGTERM};
use spindle::Runtime;

type BoxError = Box<dyn Error + Send + Sync>;

const JSON: &str = r#"{"message":"Hello, World!"}"#;

/// The command line.
struct Options {
    addr: Option<String>,
    workers: usize,
    tls: bool,
    smoke: bool,
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options {
        addr: None,
        workers: match std::env::var("SPINDLE_WORKERS") {
            Ok(n) => n.parse().map_err(|_| "SPINDLE_WORKERS: not a number")?,
            Err(_) => 2,
        },
        tls: false,
        smoke: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => options.addr = Some(args.next().ok_or("--addr needs an address")?),
            "--workers" => {
                let n = args.next().ok_or("--workers needs a number")?;
                options.workers = n.parse().map_err(|_| "--workers: not a number")?;
            }
            "--tls" => options.tls = true,
            "--smoke" => options.smoke = true,
            other => {
                return Err(format!("unknown argument {other:?} (see the example's docs)").into())
            }
        }
    }
    Ok(options)
}

/// `/` and `/json`; anything else is 404.
async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => ("text/plain", "Hello, World!"),
        (&Method::GET, "/json") => ("application/json", JSON),
        _ => {
            let mut not_found = Response::new(Full::new(Bytes::from_static(b"not found")));
            *not_found.status_mut() = StatusCode::NOT_FOUND;
            return Ok(not_found);
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    Ok(resp)
}

/// rustls on `ring`: rustls 0.23.48 deprecates it for lacking post-quantum key exchange; its
/// default provider, aws-lc-rs, needs cmake to build.
#[allow(deprecated)]
fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost` and `127.0.0.1`: the server's config, and the
/// certificate for a client to trust.
fn self_signed() -> Result<(TlsAcceptor, CertificateDer<'static>), BoxError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let made = rcgen::generate_simple_self_signed(names)?;
    let cert = made.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    let mut config = ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), cert))
}

/// Starts the server on `rt`; `requests` counts the requests served.
fn serve(
    rt: &Runtime,
    addr: &str,
    tls: Option<TlsAcceptor>,
    requests: Arc<AtomicU64>,
) -> std::io::Result<ServerHandle> {
    let server = Server::bind(addr).shutdown_timeout(Duration::from_secs(10));
    let signal = server.shutdown_signal();
    server.serve(rt, move |conn: TcpStream| {
        let (tls, signal, requests) = (tls.clone(), signal.clone(), requests.clone());
        let service = hyper::service::service_fn(move |req| {
            requests.fetch_add(1, Ordering::Relaxed);
            route(req)
        });
        async move {
            // A client going away mid-request is its business: the errors are not reported.
            let _ = match tls {
                None => serve_auto(conn, service, signal).await,
                Some(acceptor) => match acceptor.accept(conn).await {
                    Ok(stream) => serve_auto(FuturesIo::new(stream), service, signal).await,
                    Err(_) => Ok(()), // a failed handshake (a client not trusting us)
                },
            };
        }
    })
}

/// The smoke run's client: HTTP/1.1 requests to `/`, `/json` and a missing page, and one
/// HTTP/2 request, on connections left open (idle) for the shutdown to close. Returns a
/// future that checks, after the shutdown, that both client connections ended cleanly.
async fn smoke_requests(
    addr: SocketAddr,
    cert: Option<CertificateDer<'static>>,
) -> Result<impl std::future::Future<Output = Result<(), BoxError>>, BoxError> {
    let h1 = smoke_connect(addr, cert.as_ref(), b"http/1.1").await?;
    let (mut h1, h1_conn) = hyper::client::conn::http1::handshake(h1).await?;
    let h1_conn = spindle::spawn_local(h1_conn).map_err(|e| e.reason().to_string())?;
    for (path, status, body) in [
        ("/", StatusCode::OK, "Hello, World!"),
        ("/json", StatusCode::OK, JSON),
        ("/missing", StatusCode::NOT_FOUND, "not found"),
    ] {
        let resp = h1.send_request(get(path)?).await?;
        check(resp, path, status, body).await?;
    }
    let h2 = smoke_connect(addr, cert.as_ref(), b"h2").await?;
    let (mut h2, h2_conn) = hyper::client::conn::http2::handshake(SpindleExecutor, h2).await?;
    let h2_conn = spindle::spawn_local(h2_conn).map_err(|e| e.reason().to_string())?;
    let resp = h2.send_request(get("/json")?).await?;
    if resp.version() != hyper::Version::HTTP_2 {
        return Err(format!("HTTP/2 request answered as {:?}", resp.version()).into());
    }
    check(resp, "/json (HTTP/2)", StatusCode::OK, JSON).await?;
    println!("smoke: 4 requests answered right (3 over HTTP/1.1, 1 over HTTP/2)");
    // Both connections stay open, idle, until the server's graceful shutdown closes them.
    Ok(async move {
        let ended = (h1_conn.await, h2_conn.await);
        drop((h1, h2));
        match ended {
            (Ok(Ok(())), Ok(Ok(()))) => Ok(()),
            other => Err(format!("a client connection did not end cleanly: {other:?}").into()),
        }
    })
}

/// A client stream for hyper, plain or TLS.
trait ClientIo: hyper::rt::Read + hyper::rt::Write + Unpin + Send {}

impl<T: hyper::rt::Read + hyper::rt::Write + Unpin + Send> ClientIo for T {}

/// A client stream to `addr`: plain TCP, or TLS trusting only `cert` and asking for `alpn`.
async fn smoke_connect(
    addr: SocketAddr,
    cert: Option<&CertificateDer<'static>>,
    alpn: &[u8],
) -> Result<Box<dyn ClientIo>, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    let Some(cert) = cert else {
        return Ok(Box::new(tcp));
    };
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone())?;
    let mut config = ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = ServerName::try_from("localhost")?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    Ok(Box::new(FuturesIo::new(tls)))
}

fn get(path: &str) -> Result<Request<Empty<Bytes>>, BoxError> {
    Ok(Request::get(path)
        .header(header::HOST, "localhost")
        .body(Empty::new())?)
}

async fn check(
    resp: Response<Incoming>,
    what: &str,
    status: StatusCode,
    body: &str,
) -> Result<(), BoxError> {
    let got_status = resp.status();
    let got = resp.into_body().collect().await?.to_bytes();
    if got_status != status || got != body.as_bytes() {
        return Err(format!("{what}: got {got_status} {got:?}, expected {status} {body:?}").into());
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let options = options()?;
    let rt = Runtime::builder().worker_threads(options.workers).build()?;
    let (tls, cert) = match options.tls {
        true => {
            let (acceptor, cert) = self_signed()?;
            (Some(acceptor), Some(cert))
        }
        false => (None, None),
    };
    let default_addr = if options.smoke {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:8080"
    };
    let addr = options.addr.as_deref().unwrap_or(default_addr);
    let requests = Arc::new(AtomicU64::new(0));
    let server = serve(&rt, addr, tls, requests.clone())?;
    let local = server.local_addrs()[0];
    let scheme = if options.tls { "https" } else { "http" };
    println!(
        "http_server on {scheme}://{local}/ with {} workers (HTTP/1.1 and HTTP/2; Ctrl-C stops)",
        options.workers
    );
    if options.tls {
        println!("self-signed certificate: try curl -k {scheme}://{local}/json");
    } else {
        println!("try: curl {scheme}://{local}/json   or   wrk -t2 -c64 -d10s {scheme}://{local}/");
    }
    let handle = server.clone();
    let smoke = options.smoke;
    let outcome = rt.block_on(async move {
        let client = smoke
            .then(|| {
                spindle::spawn_local(async move {
                    let result = smoke_requests(local, cert).await;
                    // Done (or failed): stop the server the way Ctrl-C or `kill` would.
                    let me = rustix::process::getpid();
                    let _ = rustix::process::kill_process(me, rustix::process::Signal::TERM);
                    result
                })
                .map_err(|e| e.reason().to_string())
            })
            .transpose()?;
        let outcome = handle.shutdown_on_signal(&[SIGINT, SIGTERM]).await?;
        if let Some(client) = client {
            let connections_ended = client.await.map_err(|e| e.to_string())??;
            connections_ended.await?;
            println!("smoke: the idle client connections were closed by the shutdown");
        }
        Result::<_, BoxError>::Ok(outcome)
    })??;
    for (worker, n) in server.accepted_connections().iter().enumerate() {
        println!("worker {worker}: {n} connections");
    }
    println!(
        "{} requests; shut down gracefully: {} ({} connections cancelled)",
        requests.load(Ordering::Relaxed),
        outcome.graceful(),
        outcome.cancelled()
    );
    if smoke && !outcome.graceful() {
        return Err("smoke: the shutdown was not graceful".into());
    }
    Ok(())
}
