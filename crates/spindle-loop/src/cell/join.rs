//! [`JoinHandle`]: the task's output, awaited.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use super::{Header, AWAITER, CLOSED, COMPLETED, HANDLE, REFERENCE, RUNNING, SCHEDULED};
use crate::sync::Ordering;
use crate::task::TaskHeader;

/// The task's output, once: resolves to `Some(output)`, or `None` if the task was closed
/// without one (its future dropped unfinished). Dropping it detaches the task, which runs on.
pub(crate) struct JoinHandle<T> {
    ptr: NonNull<()>,
    _output: PhantomData<T>,
}

// SAFETY: the handle takes the output `T` (hence `T: Send`) and otherwise reads the header
// (`Sync`).
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads the header.
unsafe impl<T> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    ///
    /// `ptr` is a new cell whose output type is `T`, with its `HANDLE` bit for this handle.
    pub(crate) unsafe fn from_raw(ptr: NonNull<()>) -> Self {
        JoinHandle {
            ptr,
            _output: PhantomData,
        }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the HANDLE bit keeps the cell alive.
        unsafe { super::header_at(self.ptr.as_ptr()) }
    }

    /// The task's metadata.
    #[inline]
    pub(crate) fn metadata(&self) -> &TaskHeader {
        &self.header().meta
    }

    /// Whether the task has finished (its output is ready, or it was closed without one).
    pub(crate) fn is_finished(&self) -> bool {
        self.header().state.load(Ordering::Acquire) & (CLOSED | COMPLETED) != 0
    }

    /// Detaches the task: it runs on; its output is dropped (here if it is already there).
    pub(crate) fn detach(self) {
        drop(self)
    }

    /// Gives up the handle. Returns the output if the task had completed and it was not taken:
    /// the caller drops it. (`Drop` tries the common case, a task never run, first.)
    fn set_detached(&mut self) -> Option<T> {
        let ptr = self.ptr.as_ptr() as *const ();
        let header = self.header();
        let mut output = None;
        let mut state = header.state.load(Ordering::Acquire);
        loop {
            if state & COMPLETED != 0 && state & CLOSED == 0 {
                // Completed and not taken: take it (closing), drop it after this loop.
                match header.state.compare_exchange_weak(
                    state,
                    state | CLOSED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        // SAFETY: COMPLETED and we set CLOSED: the output is there, ours.
                        output = Some(unsafe { ((header.vtable.output)(ptr) as *mut T).read() });
                        state |= CLOSED;
                    }
                    Err(actual) => state = actual,
                }
            } else {
                // The handle goes; if it was the last holder, see `last_holder_gone`.
                match header.state.compare_exchange_weak(
                    state,
                    state & !HANDLE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        if state & !(REFERENCE - 1) == 0 {
                            // SAFETY: no reference, and the handle just went.
                            unsafe { super::last_holder_gone(ptr, state) };
                        }
                        break;
                    }
                    Err(actual) => state = actual,
                }
            }
        }
        output
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let ptr = self.ptr.as_ptr() as *const ();
        let header = self.header();
        let mut state = header.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                // Closed: if a step is still on its way out, wait for it (it drops the
                // future and then notifies us).
                if state & (SCHEDULED | RUNNING) != 0 {
                    header.register(cx.waker());
                    state = header.state.load(Ordering::Acquire);
                    if state & (SCHEDULED | RUNNING) != 0 {
                        return Poll::Pending;
                    }
                }
                // Take the registration back out; one left by an earlier poller with another
                // waker is woken (it may be waiting on this handle still), as async-task does.
                if let Some(other) = header.take_awaiter(Some(cx.waker())) {
                    other.wake();
                }
                return Poll::Ready(None);
            }
            if state & COMPLETED == 0 {
                header.register(cx.waker());
                state = header.state.load(Ordering::Acquire);
                if state & CLOSED != 0 {
                    continue;
                }
                if state & COMPLETED == 0 {
                    return Poll::Pending;
                }
            }
            // Completed: take the output, closing the task.
            match header.state.compare_exchange(
                state,
                state | CLOSED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if state & AWAITER != 0 {
                        if let Some(other) = header.take_awaiter(Some(cx.waker())) {
                            other.wake();
                        }
                    }
                    // SAFETY: COMPLETED and we set CLOSED: the output is there, ours.
                    return Poll::Ready(Some(unsafe {
                        ((header.vtable.output)(ptr) as *mut T).read()
                    }));
                }
                Err(actual) => state = actual,
            }
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    #[inline]
    fn drop(&mut self) {
        // The common case inline: a task never run, one step reference, the handle going
        // (nothing else to do: the step's reference keeps the cell).
        let fresh = self.header().state.compare_exchange_weak(
            SCHEDULED | HANDLE | REFERENCE,
            SCHEDULED | REFERENCE,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if fresh.is_err() {
            self.detach_slow();
        }
    }
}

impl<T> JoinHandle<T> {
    /// `Drop` for any other state. The output, if taken here, is dropped after the state no
    /// longer names it.
    #[inline(never)]
    fn detach_slow(&mut self) {
        drop(self.set_detached());
    }
}
