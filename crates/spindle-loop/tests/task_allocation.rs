//! A small task's allocation stays within glibc's fastbin limit (120-byte requests).
//!
//! Why it matters: a stealable task is usually allocated by one worker and freed by another.
//! glibc frees chunks of up to 128 bytes (a 120-byte request plus its size word) into the
//! owning arena's fastbin with one atomic exchange; bigger ones take the arena's lock, which the
//! allocating worker holds in its own `malloc` calls. In `compare`'s `rt_spawn_many_local`
//! (one task spawning 10,000 tasks that the other worker steals), that lock was ~30% of the
//! profile while the task was 168 bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::task::{Context, Poll};

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

/// Three words of state, as `compare`'s spawn workloads capture (an `Arc` counter and a channel
/// sender). A named future rather than an `async` block: a debug build lays async blocks out
/// larger than a release build does, and this test runs in both.
struct ThreeWords {
    counter: Arc<AtomicUsize>,
    done: SyncSender<()>,
}

impl Future for ThreeWords {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.counter.fetch_add(1, Ordering::Relaxed);
        let _ = self.done.try_send(());
        Poll::Ready(())
    }
}

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
    let counter = Arc::new(AtomicUsize::new(0));
    let (done, rx) = std::sync::mpsc::sync_channel::<()>(1);
    let future = ThreeWords {
        counter: counter.clone(),
        done,
    };
    assert_eq!(std::mem::size_of::<ThreeWords>(), 24);
    let mut spawned = None;
    let largest = largest_allocation(|| {
        let task = spawn_stealable(future, &scheduler);
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
