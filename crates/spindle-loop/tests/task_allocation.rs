//! A small task's allocation stays within glibc's fastbin limit (120-byte requests).
//!
//! Why it matters: a stealable task is usually allocated by one worker and freed by another.
//! glibc frees chunks of up to 128 bytes (a 120-byte request plus its size word) into the
//! owning arena's fastbin with one atomic exchange; bigger ones take the arena's lock, which the
//! allocating worker holds in its own `malloc` calls. In `compare`'s `rt_spawn_many_local`
//! (one task spawning 10,000 tasks that the other worker steals), that lock was ~34% of the
//! profile while the task was 168 bytes; at 120 bytes that workload went from ~390 to ~170 ns
//! per task.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use spindle_loop::{spawn_stealable, Inline};

struct Recording;

thread_local! {
    /// The largest allocation made on this thread while recording (`None`: not recording).
    static LARGEST: Cell<Option<usize>> = const { Cell::new(None) };
}

// SAFETY: forwards every call to `System` unchanged; the recording touches a const-initialised
// thread-local `Cell` (no allocation, no reentrancy).
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|largest| {
            if let Some(size) = largest.get() {
                largest.set(Some(size.max(layout.size())));
            }
        });
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// The largest single allocation `f` makes on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(Some(0)));
    f();
    LARGEST.with(|l| l.take()).unwrap_or(0)
}

#[test]
fn a_stealable_task_with_three_words_of_state_fits_a_fastbin() {
    if !cfg!(all(target_os = "linux", target_pointer_width = "64")) {
        return;
    }
    let scheduler = Arc::new(Inline::default());
    // Three words of captured state, as `compare`'s spawn workloads have (an `Arc` counter and
    // a channel sender), in an `async` block, the usual shape of a spawned future (it has no
    // niche: an `Option` around it would cost a word).
    let counter = Arc::new(AtomicUsize::new(0));
    let (done, rx) = std::sync::mpsc::sync_channel::<()>(1);
    let state = (counter.clone(), done);
    assert_eq!(std::mem::size_of_val(&state), 24);
    let mut spawned = None;
    let largest = largest_allocation(|| {
        let task = spawn_stealable(
            async move {
                let (counter, done) = state;
                counter.fetch_add(1, Ordering::Relaxed);
                let _ = done.try_send(());
            },
            &scheduler,
        );
        spawned = Some(task.unwrap_or_else(|_| panic!("the scheduler is open")));
    });
    assert!(
        largest <= 120,
        "a small task allocates {largest} bytes: over the 120-byte fastbin limit"
    );
    let (runnable, task) = spawned.unwrap();
    runnable.run();
    assert!(task.done());
    assert_eq!(counter.load(Ordering::Relaxed), 1);
    assert!(rx.try_recv().is_ok());
}
