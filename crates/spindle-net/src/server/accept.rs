//! The acceptors: one per worker (`Accept::PerWorker`) or one for all (`Accept::RoundRobin`),
//! each a local task pinned to its worker's loop.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use spindle_policy::RuntimeHandle;

use super::state::{AcceptorGuard, Slot, State};
use crate::{TcpListener, TcpStream};

/// How long an acceptor pauses after an `accept(2)` error that retrying at once cannot fix
/// (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`, ...): the pending connection stays in the kernel's
/// backlog meanwhile.
pub(super) const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// The acceptor's task: accept until `close()`, respecting every worker's limit. With
/// `own == Some(w)` every connection is counted on worker `w` (its `SO_REUSEPORT` listener);
/// with `None` they go round-robin over the workers with room. `dispatch(worker, slot,
/// stream)` starts the connection (on that worker).
pub(super) async fn run(
    guard: AcceptorGuard,
    own: Option<usize>,
    mut dispatch: impl FnMut(usize, Slot, TcpStream),
) {
    let state = guard.state.clone();
    let Some(listener) = guard.listener.as_ref() else {
        return;
    };
    let workers = state.workers.len();
    let mut next = 0;
    let serve = async {
        loop {
            let worker = match own {
                Some(worker) => {
                    state.until(|s| s.has_room(worker)).await;
                    worker
                }
                None => {
                    let pick = |s: &State| {
                        (0..workers)
                            .map(|i| (next + i) % workers)
                            .find(|&w| s.has_room(w))
                    };
                    state.until(|s| pick(s).is_some()).await;
                    // Only this acceptor adds to the counts: the room it saw is still there.
                    let worker = pick(&state).unwrap_or(next % workers);
                    next = worker + 1;
                    worker
                }
            };
            let stream = accept(listener).await;
            let slot = state.reserve(worker);
            dispatch(worker, slot, stream);
        }
    };
    future::or(serve, state.closing.wait()).await;
    drop(guard); // closes the listener, then counts this acceptor out
}

/// Hands a connection to worker `worker` through `spawn_on` and [`start`]s it there.
pub(super) fn hand_off<H, F>(
    runtime: &RuntimeHandle,
    handler: &Arc<H>,
    worker: usize,
    slot: Slot,
    stream: TcpStream,
) where
    H: Fn(TcpStream) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let handler = handler.clone();
    let started = runtime.spawn_on(worker, move || {
        start(slot, stream, &*handler);
        async {}
    });
    if let Err(e) = started {
        // The runtime is shutting down: the slot and stream drop with `make`.
        tracing::debug!(error = %e.reason(), "server: connection not handed out");
    }
}

/// Accepts one connection, riding out errors: a connection that died in the backlog is
/// skipped, anything else (out of descriptors above all) pauses [`ACCEPT_PAUSE`] and retries.
async fn accept(listener: &TcpListener) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return stream,
            Err(e) if is_transient(&e) => continue,
            Err(e) => {
                if is_fd_limit(&e) {
                    tracing::warn!(error = %e, "server: out of file descriptors; accepting paused");
                } else {
                    tracing::error!(error = %e, "server: accept failed; accepting paused");
                }
                spindle_loop::sleep(ACCEPT_PAUSE).await;
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// `EMFILE` (the process's limit) or `ENFILE` (the system's).
pub(super) fn is_fd_limit(e: &io::Error) -> bool {
    use rustix::io::Errno;
    e.raw_os_error().is_some_and(|code| {
        code == Errno::MFILE.raw_os_error() || code == Errno::NFILE.raw_os_error()
    })
}

/// Registers a connection and builds its handler's future.
fn prepare<F>(
    mut slot: Slot,
    stream: TcpStream,
    handler: impl FnOnce(TcpStream) -> F,
) -> (Slot, F) {
    slot.state().clone().register(&mut slot, stream.clone());
    let connection = handler(stream);
    (slot, connection)
}

/// The connection's task body: the slot rides in it, so it is released wherever the future is
/// dropped (finished or cancelled).
async fn tracked<F: Future<Output = ()>>(slot: Slot, connection: F) {
    let _slot = slot;
    connection.await;
}

/// On the worker the connection is counted on: spawns the handler's future stealable (into
/// this worker's queue, where siblings may steal it).
pub(super) fn start<H, F>(slot: Slot, stream: TcpStream, handler: &H)
where
    H: Fn(TcpStream) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let (slot, connection) = prepare(slot, stream, handler);
    let (state, id) = (slot.state().clone(), slot.id);
    match spindle_policy::spawn(tracked(slot, connection)) {
        Ok(task) => state.set_task(id, task.task_ref()),
        Err(e) => tracing::debug!(error = %e.reason(), "server: connection task not spawned"),
    }
}

/// [`start`] for a `!Send` handler: a local task of this worker's loop (it never moves).
pub(super) fn start_local<H, F>(slot: Slot, stream: TcpStream, handler: &H)
where
    H: Fn(TcpStream) -> F,
    F: Future<Output = ()> + 'static,
{
    let (slot, connection) = prepare(slot, stream, handler);
    let (state, id) = (slot.state().clone(), slot.id);
    match spindle_loop::spawn_local(tracked(slot, connection)) {
        Ok(task) => state.set_task(id, task.task_ref()),
        Err(e) => tracing::debug!(error = %e.reason(), "server: connection task not spawned"),
    }
}
