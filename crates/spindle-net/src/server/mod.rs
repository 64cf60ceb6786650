//! [`Server`]: a TCP server over a [`Runtime`]'s worker loops, with per-worker backpressure and
//! asyncio's server surface ([`ServerHandle`]), graceful shutdown included.
//!
//! # Protocol
//!
//! - **Acceptors.** With [`Accept::PerWorker`] (the default on Linux) every worker loop gets its
//!   own `SO_REUSEPORT` listener on the same address and its own acceptor, a local task pinned
//!   there with `spawn_on`: the kernel spreads connections over the listeners, nothing is
//!   handed between threads. With [`Accept::RoundRobin`] one acceptor on worker 0 hands each
//!   connection to the next worker with room, through `spawn_on`.
//! - **Connections.** On the worker it is counted on, a connection is registered (its stream,
//!   for `close_clients`) and its handler's future is spawned stealable (`spindle_policy::spawn`:
//!   into that worker's queue, where idle siblings may steal it); its task is recorded (for
//!   `abort_clients` and the shutdown timeout). With [`Server::serve_local`] each worker
//!   builds its own `!Send` handler and its connections are local tasks there, never moving.
//! - **Who counts.** Each worker has an `open` counter. Only the acceptor feeding that worker
//!   increments it, after seeing it below `max_connections` (so the limit holds without a
//!   CAS); the connection's slot, moved into its task's future, decrements it when that future
//!   is dropped (finished or cancelled), on whichever worker ran it. A full worker's acceptor
//!   stops calling `accept(2)`: further connections wait in the kernel's backlog. The slot also
//!   holds the connection in the runtime's metrics (`Runtime::metrics()`'s
//!   `open_connections`, through the worker's `ConnectionGauge`), released just before `open`
//!   falls.
//! - **Who wakes whom.** Every decrement (a connection ending, an acceptor ending) is followed
//!   by a notify of one `event-listener` event; a waiter (a full acceptor, `wait_closed`,
//!   `shutdown`) listens, re-checks the counters, and only then sleeps. The counters are SeqCst
//!   and `event-listener` fences `listen` and `notify` SeqCst: the pair "decrement, notify" /
//!   "listen, re-check" loses no wake-up.
//! - **Errors on accept.** A connection that died in the backlog is skipped; any other error
//!   (`EMFILE`/`ENFILE` above all) pauses that acceptor for 50 ms, then it retries: no spinning,
//!   no dying.
//! - **Closing.** `close()` clears the serving flag and sets the `closing` event; each acceptor
//!   selects on it, ends, and closes its listener before counting itself out (so "no acceptor
//!   left" means "every listener closed": new connections are refused). `shutdown()` then sets
//!   the [`ShutdownSignal`] handlers select on, waits up to `shutdown_timeout` for the open
//!   counts to reach zero, and cancels the tasks left; a cancelled task's future, and every
//!   `Drop` in it, is dropped on the worker that runs it.
//!
//! ```
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//! use spindle_net::{Server, TcpStream};
//!
//! let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
//! let server = Server::bind("127.0.0.1:0")
//!     .serve(&rt, |mut conn: TcpStream| async move {
//!         let mut buf = [0; 64];
//!         while let Ok(n @ 1..) = conn.read(&mut buf).await {
//!             if conn.write_all(&buf[..n]).await.is_err() { break; }
//!         }
//!     })?;
//! let addr = server.local_addrs()[0];
//! let reply = rt.block_on(async move {
//!     let mut client = TcpStream::connect(addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut buf = [0; 5];
//!     client.read_exact(&mut buf).await?;
//!     std::io::Result::Ok(buf)
//! }).unwrap()?;
//! assert_eq!(&reply, b"hello");
//! rt.block_on(async move { server.shutdown().await }).unwrap();
//! # std::io::Result::Ok(())
//! ```

mod accept;
mod handle;
mod state;

use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use spindle_policy::Runtime;
use spindle_sync::Event;

pub use handle::{ServerHandle, ShutdownOutcome, ShutdownSignal};

use crate::tcp::resolve;
use crate::{TcpListener, TcpStream};
use state::{AcceptorGuard, State};

/// How a [`Server`] accepts connections.
///
/// ```
/// use spindle_net::{Accept, Server};
/// let server = Server::bind("127.0.0.1:0").accept(Accept::RoundRobin);
/// # drop(server);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accept {
    /// One `SO_REUSEPORT` listener and acceptor per worker loop; the kernel spreads
    /// connections over them (by a hash of the addresses). Linux and Android only: elsewhere
    /// `serve` fails with `ErrorKind::Unsupported`.
    PerWorker,
    /// One listener; its acceptor (on worker 0) hands connections to the workers in turn,
    /// skipping full ones.
    RoundRobin,
}

impl Default for Accept {
    /// [`PerWorker`](Accept::PerWorker) on Linux and Android, [`RoundRobin`](Accept::RoundRobin)
    /// elsewhere.
    ///
    /// ```
    /// # use spindle_net::Accept;
    /// let accept = Accept::default();
    /// # let _ = accept;
    /// ```
    fn default() -> Accept {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            Accept::PerWorker
        } else {
            Accept::RoundRobin
        }
    }
}

/// A TCP server's settings; [`serve`](Server::serve) starts it on a [`Runtime`].
///
/// ```
/// use std::time::Duration;
/// use spindle_net::{Server, TcpStream};
///
/// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
/// let server = Server::bind("127.0.0.1:0")
///     .max_connections(1000)
///     .backlog(128)
///     .shutdown_timeout(Duration::from_secs(5))
///     .serve(&rt, |conn: TcpStream| async move { drop(conn) })?;
/// assert!(server.is_serving());
/// server.close();
/// rt.block_on(async move { server.wait_closed().await }).unwrap();
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
pub struct Server {
    addrs: io::Result<Vec<SocketAddr>>,
    max_connections: usize,
    backlog: i32,
    shutdown_timeout: Duration,
    accept: Accept,
    shutdown: Arc<Event>,
    shutdown_on_signal: bool,
}

impl Server {
    /// The default per-worker connection limit (actix's).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 25_600;

    /// A server for `addr` (resolved now; a resolution error comes back from
    /// [`serve`](Self::serve)), with the defaults: [`DEFAULT_MAX_CONNECTIONS`](Self::DEFAULT_MAX_CONNECTIONS)
    /// per worker, a backlog of 1024, a 30 s shutdown timeout, [`Accept::default`].
    ///
    /// ```
    /// let server = spindle_net::Server::bind("127.0.0.1:0");
    /// # drop(server);
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> Server {
        Server {
            addrs: resolve(addr),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            backlog: 1024,
            shutdown_timeout: Duration::from_secs(30),
            accept: Accept::default(),
            shutdown: Arc::new(Event::new()),
            shutdown_on_signal: false,
        }
    }

    /// At most `n` connections open per worker (at least 1; 0 makes `serve` fail): a full
    /// worker stops accepting until one of its connections ends.
    ///
    /// ```
    /// let server = spindle_net::Server::bind("127.0.0.1:0").max_connections(64);
    /// # drop(server);
    /// ```
    pub fn max_connections(mut self, n: usize) -> Server {
        self.max_connections = n;
        self
    }

    /// The listen backlog of each listener.
    ///
    /// ```
    /// let server = spindle_net::Server::bind("127.0.0.1:0").backlog(4096);
    /// # drop(server);
    /// ```
    pub fn backlog(mut self, n: i32) -> Server {
        self.backlog = n;
        self
    }

    /// How long [`ServerHandle::shutdown`] waits for connections before cancelling them.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = spindle_net::Server::bind("127.0.0.1:0").shutdown_timeout(Duration::from_secs(1));
    /// # drop(server);
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Server {
        self.shutdown_timeout = timeout;
        self
    }

    /// The accept strategy (see [`Accept`]).
    ///
    /// ```
    /// let server = spindle_net::Server::bind("127.0.0.1:0").accept(spindle_net::Accept::RoundRobin);
    /// # drop(server);
    /// ```
    pub fn accept(mut self, accept: Accept) -> Server {
        self.accept = accept;
        self
    }

    /// Shuts the server down gracefully ([`ServerHandle::shutdown`]: stop accepting, raise the
    /// [`ShutdownSignal`], wait up to `shutdown_timeout`, cancel the rest) when the process
    /// gets `SIGTERM` or `SIGINT` (Ctrl-C). The handlers are registered on worker 0's loop when
    /// `serve` starts it (replacing that loop's own handlers of the two signals), kept during
    /// the shutdown, where a second signal cuts the wait short
    /// ([`ServerHandle::abort_clients`]: the connections left are reset and cancelled at
    /// once), and removed when the shutdown is over or when the server closes by other means;
    /// `wait_closed` tells when it is over. A failure to register them (no file descriptor
    /// left) is logged and the server serves without. Unix.
    ///
    /// Once a signal has had a handler, `signal-hook` keeps it caught: after the shutdown,
    /// `SIGTERM`/`SIGINT` do nothing unless something else handles them. Use
    /// [`ServerHandle::shutdown_on_signal`] to choose the signals or the loop.
    ///
    /// ```
    /// use spindle_net::{Server, TcpStream};
    /// use std::time::Duration;
    ///
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0")
    ///     .shutdown_timeout(Duration::from_secs(10))
    ///     .shutdown_on_signal()
    ///     .serve(&rt, |conn: TcpStream| async move { drop(conn) })?;
    /// # // The doctest stops it without a signal (a SIGTERM would be the `kill` of a real one).
    /// # server.close();
    /// // Serve until `kill -TERM` or Ctrl-C has shut the server down.
    /// rt.block_on(async move { server.wait_closed().await }).unwrap();
    /// # std::io::Result::Ok(())
    /// ```
    pub fn shutdown_on_signal(mut self) -> Server {
        self.shutdown_on_signal = true;
        self
    }

    /// The signal that [`ServerHandle::shutdown`] will raise, for handlers to select on; the
    /// same as [`ServerHandle::shutdown_signal`], available before `serve` so the handler
    /// can capture it.
    ///
    /// ```
    /// let server = spindle_net::Server::bind("127.0.0.1:0");
    /// let signal = server.shutdown_signal();
    /// assert!(!signal.is_triggered());
    /// ```
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        ShutdownSignal::new(self.shutdown.clone())
    }

    /// Binds the listener(s) and starts accepting on `runtime`'s workers; every accepted
    /// connection goes to `handler`, whose future runs as a stealable task. Returns once the
    /// listeners are bound (connections are accepted from then on, the kernel queueing them
    /// until the acceptors run).
    ///
    /// Errors: the address did not resolve or bind, `max_connections` is 0
    /// (`InvalidInput`), [`Accept::PerWorker`] off Linux (`Unsupported`), the runtime is shut
    /// down (`Other`).
    ///
    /// ```
    /// use spindle_net::{Server, TcpStream};
    /// let rt = spindle_policy::Runtime::builder().worker_threads(1).build().unwrap();
    /// let bad = Server::bind("127.0.0.1:0").max_connections(0).serve(&rt, |_: TcpStream| async {});
    /// assert_eq!(bad.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn serve<H, F>(self, runtime: &Runtime, handler: H) -> io::Result<ServerHandle>
    where
        H: Fn(TcpStream) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let round_robin = self.accept == Accept::RoundRobin;
        let rt = runtime.handle().clone();
        self.launch(runtime, |worker, guard| {
            let handler = handler.clone();
            let rt = rt.clone();
            runtime
                .spawn_on(worker, move || {
                    let own = (!round_robin).then_some(worker);
                    accept::run(guard, own, move |to, slot, stream| {
                        if round_robin {
                            accept::hand_off(&rt, &handler, to, slot, stream);
                        } else {
                            accept::start(slot, stream, &*handler);
                        }
                    })
                })
                .map(drop)
                .map_err(|e| e.reason().to_string())
        })
    }

    /// Like [`serve`](Self::serve), for a `!Send` handler: `make` runs once on each worker and
    /// builds that worker's handler (it may hold `Rc`s, `RefCell`s, ...), and each connection
    /// runs as a local task of the worker that accepted it, never moving. Needs
    /// [`Accept::PerWorker`] (a connection cannot be handed to another worker's `!Send`
    /// handler): with [`Accept::RoundRobin`] it fails with `ErrorKind::Unsupported`; other
    /// errors as `serve`.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// use futures_lite::AsyncWriteExt;
    /// use spindle_net::{prelude::*, Server, TcpStream};
    ///
    /// let rt = spindle_policy::Runtime::builder().worker_threads(2).build().unwrap();
    /// let server = Server::bind("127.0.0.1:0").serve_local(&rt, || {
    ///     let served = Rc::new(Cell::new(0u64)); // per worker, no lock
    ///     move |mut conn: TcpStream| {
    ///         let served = served.clone();
    ///         async move {
    ///             served.set(served.get() + 1);
    ///             let _ = conn.write_all(&served.get().to_le_bytes()).await;
    ///         }
    ///     }
    /// });
    /// # #[cfg(target_os = "linux")] {
    /// let server = server?;
    /// let addr = server.local_addrs()[0];
    /// let n = rt.block_on(async move {
    ///     let mut conn = TcpStream::connect(addr).await?;
    ///     let mut buf = [0; 8];
    ///     conn.read_exact(&mut buf).await?;
    ///     std::io::Result::Ok(u64::from_le_bytes(buf))
    /// }).unwrap()?;
    /// assert_eq!(n, 1);
    /// # }
    /// # std::io::Result::Ok(())
    /// ```
    pub fn serve_local<M, H, F>(self, runtime: &Runtime, make: M) -> io::Result<ServerHandle>
    where
        M: Fn() -> H + Send + Sync + 'static,
        H: Fn(TcpStream) -> F + 'static,
        F: Future<Output = ()> + 'static,
    {
        if self.accept != Accept::PerWorker {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "serve_local needs Accept::PerWorker (one listener per worker)",
            ));
        }
        let make = Arc::new(make);
        self.launch(runtime, |worker, guard| {
            let make = make.clone();
            runtime
                .spawn_on(worker, move || {
                    let handler = make();
                    accept::run(guard, Some(worker), move |_, slot, stream| {
                        accept::start_local(slot, stream, &handler);
                    })
                })
                .map(drop)
                .map_err(|e| e.reason().to_string())
        })
    }

    /// Binds the listeners, then starts each one's acceptor with `spawn(worker, guard)`.
    fn launch(
        self,
        runtime: &Runtime,
        mut spawn: impl FnMut(usize, AcceptorGuard) -> Result<(), String>,
    ) -> io::Result<ServerHandle> {
        if self.max_connections == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max_connections must be at least 1",
            ));
        }
        let addrs = self.addrs?;
        let workers = runtime.worker_threads();
        let listeners = match self.accept {
            Accept::PerWorker => {
                let first = TcpListener::bind_first(&addrs, self.backlog, true)?;
                // Port 0: the others join the port the first one got.
                let addr = [first.local_addr()?];
                let mut listeners = vec![first];
                for _ in 1..workers {
                    listeners.push(TcpListener::bind_first(&addr, self.backlog, true)?);
                }
                listeners
            }
            Accept::RoundRobin => vec![TcpListener::bind_first(&addrs, self.backlog, false)?],
        };
        let gauges = (0..workers)
            .map(|worker| runtime.connection_gauge(worker))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io::Error::other)?;
        let state = Arc::new(State::new(
            gauges,
            self.max_connections,
            self.shutdown_timeout,
            self.shutdown,
        ));
        let local_addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        *state.local_addrs.lock().unwrap_or_else(|e| e.into_inner()) = local_addrs;
        let handle = ServerHandle::new(state.clone());
        for (worker, listener) in listeners.into_iter().enumerate() {
            if let Err(reason) = spawn(worker, AcceptorGuard::new(&state, listener)) {
                handle.close(); // the acceptors already started end; this one dropped
                return Err(io::Error::other(format!(
                    "server: cannot start an acceptor on worker {worker}: {reason}"
                )));
            }
        }
        if self.shutdown_on_signal {
            use spindle_loop::io::signals::{SIGINT, SIGTERM};
            let on_signal = handle.clone();
            let started = runtime.spawn_on(0, move || {
                on_signal.shutdown_on_signal_or_close(&[SIGTERM, SIGINT])
            });
            if let Err(e) = started {
                handle.close();
                return Err(io::Error::other(format!(
                    "server: cannot start the signal watch on worker 0: {}",
                    e.reason()
                )));
            }
        }
        Ok(handle)
    }
}
