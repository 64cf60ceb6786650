//! Issue 13.10: a detached task whose output panics when dropped frees its cell, and the panic
//! is reported to the loop's exception handler.
//!
//! Its own test binary: it counts this thread's live heap bytes with a global allocator, so
//! that a leaked task cell shows.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::rc::Rc;

use spindle_loop::{EventLoop, ExceptionContext, ExceptionKind};

struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed on this thread while counting (`None`: not counting).
    static LIVE: Cell<Option<isize>> = const { Cell::new(None) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        if let Some(bytes) = live.get() {
            live.set(Some(bytes + delta));
        }
    });
}

// SAFETY: forwards every call to `System` unchanged; the counting touches a const-initialised
// thread-local `Cell` (no allocation, no reentrancy).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("output destructor")
    }
}

/// Spawns `n` tasks returning a `PanicOnDrop`, detaches them (handle dropped before they run)
/// and runs them to completion.
fn run_detached(lp: &EventLoop, n: usize) {
    for _ in 0..n {
        drop(lp.create_task(async { PanicOnDrop }).unwrap());
    }
    lp.stop();
    lp.run_forever().unwrap();
}

#[test]
fn a_detached_task_whose_output_panics_on_drop_frees_its_cell_and_is_reported() {
    // The default hook would print (and maybe capture a backtrace, which caches symbols).
    std::panic::set_hook(Box::new(|_| {}));
    let lp = EventLoop::new().unwrap();
    // (reports, reports of this panic), counted without allocating.
    let reports = Rc::new((Cell::new(0usize), Cell::new(0usize)));
    let r = reports.clone();
    lp.set_exception_handler(Some(Rc::new(
        move |_: &EventLoop, ctx: &ExceptionContext| {
            r.0.set(r.0.get() + 1);
            if ctx.kind == ExceptionKind::TaskPanicked
                && ctx.panic.as_deref() == Some("output destructor")
            {
                r.1.set(r.1.get() + 1);
            }
        },
    )));
    // Warm-up: the loop's two queues (swapped every iteration) and the panic machinery make
    // their one-time allocations.
    run_detached(&lp, 8);
    run_detached(&lp, 8);
    assert_eq!(reports.1.get(), 16, "each panic is reported");

    LIVE.with(|live| live.set(Some(0)));
    run_detached(&lp, 8);
    let live = LIVE.with(|live| live.take()).unwrap();
    let _ = std::panic::take_hook();
    assert_eq!(
        live, 0,
        "bytes left allocated by 8 detached tasks (their cells leak)"
    );
    assert_eq!((reports.0.get(), reports.1.get()), (24, 24));
    lp.close().unwrap();
}
