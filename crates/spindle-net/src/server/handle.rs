//! [`ServerHandle`] (asyncio's `Server` surface) and [`ShutdownSignal`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use spindle_sync::Event;

use super::state::State;

/// A running server (asyncio's `Server`): stop it, wait for it, count and close its
/// connections. `Send + Sync + Clone`; dropping every handle leaves the server running until its
/// runtime shuts down.
///
/// Its async methods use timers or wake-ups of the loop they run on: await them on a spindle
/// loop (`Runtime::block_on`, a task).
///
/// ```
/// use spindle_net::{Server, TcpStream};
/// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
/// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
/// let outcome = rt.block_on({
///     let server = server.clone();
///     async move { server.shutdown().await }
/// }).unwrap();
/// assert!(outcome.graceful());
/// assert!(!server.is_serving());
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone)]
pub struct ServerHandle {
    state: Arc<State>,
}

impl ServerHandle {
    pub(super) fn new(state: Arc<State>) -> ServerHandle {
        ServerHandle { state }
    }

    /// Stops accepting (asyncio's `close`): the acceptors end and close their listeners, so
    /// new connections are refused; open connections go on. Idempotent.
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// server.close();
    /// assert!(!server.is_serving());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn close(&self) {
        self.state.serving.store(false, Ordering::SeqCst);
        self.state.closing.set();
    }

    /// Whether the server accepts connections (until [`close`](Self::close)).
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// assert!(server.is_serving());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn is_serving(&self) -> bool {
        self.state.serving.load(Ordering::SeqCst)
    }

    /// The listeners' addresses (asyncio's `sockets`): one per worker with
    /// [`Accept::PerWorker`](super::Accept::PerWorker) (all the same), else one.
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// assert_ne!(server.local_addrs()[0].port(), 0);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.state
            .local_addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the server is closed: [`close`](Self::close) was called (or the runtime
    /// shut down), every listener is closed and every connection has ended (asyncio 3.12's
    /// `wait_closed`).
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// server.close();
    /// rt.block_on(async move { server.wait_closed().await }).unwrap();
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn wait_closed(&self) {
        self.state
            .until(|s| {
                !s.serving.load(Ordering::SeqCst)
                    && s.acceptors.load(Ordering::SeqCst) == 0
                    && s.open_total() == 0
            })
            .await;
    }

    /// Waits while the server accepts: returns once it is closed and every listener is
    /// (asyncio's `serve_forever`, which a `close()` from elsewhere ends).
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// let closer = server.clone();
    /// std::thread::spawn(move || closer.close());
    /// rt.block_on(async move { server.serve_forever().await }).unwrap();
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn serve_forever(&self) {
        self.state
            .until(|s| s.acceptors.load(Ordering::SeqCst) == 0)
            .await;
    }

    /// Shuts both directions of every open connection (asyncio 3.13's `close_clients`): the
    /// handlers read end-of-stream and their writes fail. Returns how many there were.
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// assert_eq!(server.close_clients(), 0);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn close_clients(&self) -> usize {
        self.state.close_clients()
    }

    /// Resets every open connection (asyncio 3.13's `abort_clients`): linger 0, shut down,
    /// and the task cancelled, so the peer gets a reset when the task's future is dropped (on
    /// its worker). Returns how many tasks it cancelled.
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// assert_eq!(server.abort_clients(), 0);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn abort_clients(&self) -> usize {
        self.state.abort_clients()
    }

    /// Graceful shutdown: [`close`](Self::close), wait for the listeners to close, raise the
    /// [`ShutdownSignal`], wait up to the server's `shutdown_timeout` for the connections to
    /// end, then cancel the tasks left (each future is dropped on the worker running it) and
    /// wait for them to go.
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// let outcome = rt.block_on(async move { server.shutdown().await }).unwrap();
    /// assert_eq!(outcome.cancelled(), 0);
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn shutdown(&self) -> ShutdownOutcome {
        let state = &self.state;
        self.close();
        self.serve_forever().await;
        state.shutdown.set();
        let all_ended = |s: &State| s.open_total() == 0;
        let finished = spindle_loop::timeout(state.shutdown_timeout, state.until(all_ended));
        if finished.await.is_ok() {
            return ShutdownOutcome { cancelled: 0 };
        }
        let mut cancelled = state.cancel_all();
        // A task spawned but not yet recorded when we cancelled is caught on a later round.
        while spindle_loop::timeout(RECANCEL, state.until(all_ended))
            .await
            .is_err()
        {
            cancelled += state.cancel_all();
        }
        ShutdownOutcome { cancelled }
    }

    /// Serves until one of the Unix signals `signals` arrives (for example
    /// `[SIGTERM, SIGINT]`), then shuts down gracefully ([`shutdown`](Self::shutdown)). The
    /// handlers are registered on the loop awaiting this (with `spindle_loop::io::signal`, at
    /// the first poll; they replace that loop's own handlers of these signals) and removed
    /// when the first signal arrives; a [`close`](Self::close) from elsewhere does not end
    /// the wait.
    ///
    /// Errors: `signals` is empty (`InvalidInput`), no loop runs on this thread, or a signal
    /// cannot be caught (`SIGKILL`, ...).
    ///
    /// ```
    /// use spindle_loop::io::signals::SIGUSR1;
    /// use spindle_net::{Server, TcpStream};
    ///
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// let outcome = rt.block_on(async move {
    ///     spindle_loop::spawn_local(async {
    ///         // A `kill -USR1` from outside, in a real server.
    ///         let me = rustix::process::getpid();
    ///         rustix::process::kill_process(me, rustix::process::Signal::USR1).unwrap();
    ///     }).unwrap();
    ///     server.shutdown_on_signal(&[SIGUSR1]).await
    /// }).unwrap()?;
    /// assert!(outcome.graceful());
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn shutdown_on_signal(&self, signals: &[i32]) -> std::io::Result<ShutdownOutcome> {
        first_signal(signals)?.await;
        Ok(self.shutdown().await)
    }

    /// What [`Server::shutdown_on_signal`](super::Server::shutdown_on_signal) runs on worker 0:
    /// waits for the first of `signals`, or for the server to close by other means (then the
    /// handlers go and it ends); on a signal shuts down gracefully, and a second signal during
    /// that shutdown cuts it short with [`abort_clients`](Self::abort_clients).
    pub(super) async fn shutdown_on_signal_or_close(self, signals: &[i32]) {
        let signalled = match first_signal(signals) {
            Ok(signalled) => signalled,
            Err(e) => {
                tracing::error!(error = %e, "server: cannot handle {signals:?}; serving without");
                return;
            }
        };
        let signalled = futures_lite::future::or(
            async {
                signalled.await;
                true
            },
            async {
                self.serve_forever().await;
                false
            },
        )
        .await;
        if !signalled {
            return;
        }
        tracing::info!("server: signal received, shutting down gracefully");
        // New handlers for the shutdown (the first ones are gone: a fired `SignalFuture` stays
        // ready, and dropping it after registering anew would remove the new registration).
        let again = first_signal(signals);
        let hurry = async {
            match again {
                Ok(again) => again.await,
                Err(_) => std::future::pending().await,
            }
            tracing::warn!("server: second signal, aborting the connections left");
            self.abort_clients();
            // The shutdown goes on (it now finds every connection ending) and ends the race.
            std::future::pending::<ShutdownOutcome>().await
        };
        futures_lite::future::or(self.shutdown(), hurry).await;
    }

    /// The signal [`shutdown`](Self::shutdown) raises (see [`ShutdownSignal`]).
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// assert!(!server.shutdown_signal().is_triggered());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        ShutdownSignal::new(self.state.shutdown.clone())
    }

    /// Open connections per worker (by the worker they were accepted for), by worker index.
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// assert_eq!(server.open_connections(), vec![0, 0]);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn open_connections(&self) -> Vec<usize> {
        self.state
            .workers
            .iter()
            .map(|w| w.open.load(Ordering::SeqCst))
            .collect()
    }

    /// Connections accepted so far per worker, by worker index.
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// assert_eq!(server.accepted_connections(), vec![0, 0]);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn accepted_connections(&self) -> Vec<u64> {
        self.state
            .workers
            .iter()
            .map(|w| w.accepted.load(Ordering::Relaxed))
            .collect()
    }
}

/// Handlers of `signals` on the loop running this thread, registered now (with
/// `spindle_loop::io::signal`: they replace that loop's own handlers of these signals); the
/// future is ready at the first delivery of any, and dropping it removes them all.
///
/// Errors: `signals` is empty (`InvalidInput`), no loop runs on this thread, or a signal
/// cannot be caught.
fn first_signal(signals: &[i32]) -> std::io::Result<impl Future<Output = ()>> {
    if signals.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "shutdown_on_signal needs at least one signal",
        ));
    }
    let mut waiting = signals
        .iter()
        .map(|&sig| spindle_loop::io::signal(sig))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(std::future::poll_fn(move |cx| {
        let any = waiting
            .iter_mut()
            .any(|s| std::pin::Pin::new(s).poll(cx).is_ready());
        if any {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }))
}

/// How often [`ServerHandle::shutdown`] cancels again what its first round missed.
const RECANCEL: Duration = Duration::from_millis(100);

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("serving", &self.is_serving())
            .field("local_addrs", &self.local_addrs())
            .field("open_connections", &self.open_connections())
            .finish()
    }
}

/// What [`ServerHandle::shutdown`] had to do.
///
/// ```
/// # use spindle_net::{Server, TcpStream};
/// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
/// let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
/// let outcome = rt.block_on(async move { server.shutdown().await }).unwrap();
/// assert!(outcome.graceful());
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownOutcome {
    cancelled: usize,
}

impl ShutdownOutcome {
    /// How many connection tasks were cancelled after the timeout.
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// # let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// let outcome = rt.block_on(async move { server.shutdown().await }).unwrap();
    /// assert_eq!(outcome.cancelled(), 0);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn cancelled(&self) -> usize {
        self.cancelled
    }

    /// Whether every connection ended within the timeout.
    ///
    /// ```
    /// # use spindle_net::{Server, TcpStream};
    /// # let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// # let server = Server::bind("127.0.0.1:0").serve(&rt, |_: TcpStream| async {})?;
    /// assert!(rt.block_on(async move { server.shutdown().await }).unwrap().graceful());
    /// # std::io::Result::Ok(())
    /// ```
    pub fn graceful(&self) -> bool {
        self.cancelled == 0
    }
}

/// Raised by [`ServerHandle::shutdown`] (after the listeners closed): handlers select on
/// [`triggered`](Self::triggered) to finish their current request and end. `Send + Sync +
/// Clone`, like a cancellation token.
///
/// ```
/// use futures_lite::{future, AsyncReadExt};
/// use spindle_net::{Server, TcpStream};
///
/// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
/// let server = Server::bind("127.0.0.1:0");
/// let signal = server.shutdown_signal();
/// let server = server.serve(&rt, move |mut conn: TcpStream| {
///     let signal = signal.clone();
///     async move {
///         let mut buf = [0; 16];
///         // Serve until the peer is done or the server shuts down.
///         let serve = async { while let Ok(1..) = conn.read(&mut buf).await {} };
///         future::or(serve, signal.triggered()).await;
///     }
/// })?;
/// rt.block_on(async move { server.shutdown().await }).unwrap();
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone)]
pub struct ShutdownSignal {
    event: Arc<Event>,
}

impl ShutdownSignal {
    pub(super) fn new(event: Arc<Event>) -> ShutdownSignal {
        ShutdownSignal { event }
    }

    /// Whether the shutdown has begun.
    ///
    /// ```
    /// let signal = spindle_net::Server::bind("127.0.0.1:0").shutdown_signal();
    /// assert!(!signal.is_triggered());
    /// ```
    pub fn is_triggered(&self) -> bool {
        self.event.is_set()
    }

    /// Waits for the shutdown to begin.
    ///
    /// ```
    /// use spindle_net::{Server, TcpStream};
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0");
    /// let signal = server.shutdown_signal();
    /// let server = server.serve(&rt, |_: TcpStream| async {})?;
    /// rt.block_on(async move {
    ///     server.shutdown().await;
    ///     signal.triggered().await; // already raised: returns at once
    /// }).unwrap();
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn triggered(&self) {
        self.event.wait().await;
    }
}

impl std::fmt::Debug for ShutdownSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownSignal")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}
