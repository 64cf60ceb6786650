//! [`InlineCall`]: a `FnOnce() + Send` moved across threads without a heap allocation when it
//! is small.
//!
//! A threadsafe callback used to be one `Box` (or `Arc`) per submission: allocated by the
//! producer thread and freed by the loop's thread. With glibc that cross-thread pattern sends
//! every allocation down malloc's slow path (the producer's thread cache is always empty, the
//! loop's always full), which measured ~40% of a `call_soon_threadsafe`. A closure of at most
//! [`INLINE_WORDS`] words (and at most word alignment) is stored inside the inbox's slot instead
//! (the inbox allocates its slots 31 at a time); a larger one is boxed as before.
//!
//! # Invariant
//!
//! `storage` holds exactly one live value of the type `vtable` was built for (the closure
//! itself, or a `Box` of it) from `new` until either `call` or `Drop` consumes it; each of those
//! takes `self` by value and runs at most once, so the value is read out or dropped exactly once.

use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop, MaybeUninit};

/// Words of closure state stored inline: a receipt (two words) plus a closure of up to four
/// captured words, which covers the usual `move || tx.send(x)` shapes.
pub(crate) const INLINE_WORDS: usize = 6;

type Storage = MaybeUninit<[usize; INLINE_WORDS]>;

/// How to run or drop what `storage` holds (one `'static` table per closure type and layout).
struct VTable {
    /// Reads the value out of the storage and runs it.
    call: unsafe fn(*mut Storage),
    /// Drops the value in place.
    drop: unsafe fn(*mut Storage),
}

/// The two layouts for a closure type `F`.
struct Layouts<F>(PhantomData<F>);

impl<F: FnOnce()> Layouts<F> {
    /// `F` itself lives in the storage.
    const INLINE: VTable = VTable {
        call: call_inline::<F>,
        drop: drop_in_place::<F>,
    };
    /// A `Box<F>` lives in the storage.
    const BOXED: VTable = VTable {
        call: call_boxed::<F>,
        drop: drop_in_place::<Box<F>>,
    };

    /// Whether `F` fits the storage (size and alignment).
    const FITS: bool = mem::size_of::<F>() <= mem::size_of::<Storage>()
        && mem::align_of::<F>() <= mem::align_of::<Storage>();
}

/// # Safety
/// `storage` holds a live `F` (see the module invariant); it is moved out here.
unsafe fn call_inline<F: FnOnce()>(storage: *mut Storage) {
    // SAFETY: the caller guarantees a live, properly aligned `F` (FITS checked its alignment),
    // and never touches it again: reading it out transfers ownership to this frame.
    let f = unsafe { storage.cast::<F>().read() };
    f();
}

/// # Safety
/// `storage` holds a live `Box<F>`; it is moved out here.
unsafe fn call_boxed<F: FnOnce()>(storage: *mut Storage) {
    // SAFETY: as `call_inline`, for the `Box<F>` that `InlineCall::new` stored.
    let f = unsafe { storage.cast::<Box<F>>().read() };
    f();
}

/// # Safety
/// `storage` holds a live `T`; it is dropped here and must not be used again.
unsafe fn drop_in_place<T>(storage: *mut Storage) {
    // SAFETY: the caller guarantees a live `T` that nobody reads afterwards.
    unsafe { storage.cast::<T>().drop_in_place() }
}

/// A type-erased `FnOnce() + Send`, inline when it fits (see the module docs).
pub(crate) struct InlineCall {
    storage: Storage,
    vtable: &'static VTable,
}

// SAFETY: `new` only accepts `Send` closures, and an `InlineCall` is nothing but one of them
// (or a `Box` of one); it is never shared, only moved.
#[allow(unsafe_code)]
unsafe impl Send for InlineCall {}

impl InlineCall {
    /// Erases `f`, inline if it fits, boxed otherwise.
    pub(crate) fn new<F: FnOnce() + Send + 'static>(f: F) -> Self {
        let mut storage = Storage::uninit();
        if Layouts::<F>::FITS {
            // SAFETY: FITS checked that an `F` fits the storage's size and alignment; the
            // storage is fresh, so nothing is overwritten.
            unsafe { storage.as_mut_ptr().cast::<F>().write(f) };
            InlineCall {
                storage,
                vtable: &Layouts::<F>::INLINE,
            }
        } else {
            // SAFETY: a `Box` is one word, word-aligned: it always fits.
            unsafe { storage.as_mut_ptr().cast::<Box<F>>().write(Box::new(f)) };
            InlineCall {
                storage,
                vtable: &Layouts::<F>::BOXED,
            }
        }
    }

    /// Runs the closure (consuming it).
    pub(crate) fn call(self) {
        // `Drop` must not run: `call` moves the value out.
        let mut this = ManuallyDrop::new(self);
        // SAFETY: the storage holds the live value `vtable` was built for (module invariant),
        // and `this` is never dropped or called again, so it is read out exactly once. If the
        // closure panics, the value was already moved out and unwinding drops it there.
        unsafe { (this.vtable.call)(&mut this.storage) }
    }
}

impl Drop for InlineCall {
    fn drop(&mut self) {
        // SAFETY: not called (that consumes `self` without dropping it), so the storage still
        // holds the live value `vtable` was built for; `drop` runs once.
        unsafe { (self.vtable.drop)(&mut self.storage) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts drops of the value it is cloned into.
    struct DropCount(Arc<AtomicUsize>);
    impl Drop for DropCount {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn small_closures_are_inline_and_large_ones_boxed() {
        let small = [1usize; 2];
        let large = [1usize; INLINE_WORDS + 1];
        const { assert!(Layouts::<Box<dyn FnOnce() + Send>>::FITS) };
        let f = move || assert_eq!(small.len(), 2);
        let g = move || assert_eq!(large.len(), INLINE_WORDS + 1);
        assert!(fits(&f));
        assert!(!fits(&g));
    }

    fn fits<F: FnOnce()>(_: &F) -> bool {
        Layouts::<F>::FITS
    }

    /// One call of a closure capturing a guard and `N` words: it runs once, its captures are
    /// dropped once, and it was stored inline exactly when it fits.
    fn call_once_with<const N: usize>(expect_inline: bool) {
        let drops = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let guard = DropCount(drops.clone());
        let payload = [7usize; N];
        let r = ran.clone();
        let f = move || {
            let _keep = &guard;
            assert_eq!(payload.iter().sum::<usize>(), 7 * N);
            r.fetch_add(1, Ordering::SeqCst);
        };
        assert_eq!(fits(&f), expect_inline, "{N} words");
        let call = InlineCall::new(f);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        call.call();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "captures dropped once ({N} words)"
        );
    }

    #[test]
    fn call_runs_once_and_drops_captures_once() {
        // The guard and the `Arc` take two of the words.
        call_once_with::<0>(true);
        call_once_with::<1>(true);
        call_once_with::<{ INLINE_WORDS - 2 }>(true);
        call_once_with::<{ INLINE_WORDS - 1 }>(false);
        call_once_with::<{ INLINE_WORDS * 4 }>(false);
    }

    #[test]
    fn dropping_uncalled_drops_captures_once_inline_and_boxed() {
        let drops = Arc::new(AtomicUsize::new(0));
        let inline = DropCount(drops.clone());
        let boxed = (DropCount(drops.clone()), [0usize; INLINE_WORDS * 2]);
        drop(InlineCall::new(move || drop(inline)));
        drop(InlineCall::new(move || drop(boxed)));
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_panicking_call_drops_its_captures_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCount(drops.clone());
        let call = InlineCall::new(move || {
            let _guard = guard;
            panic!("boom");
        });
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call.call())).is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn over_aligned_closures_are_boxed() {
        #[repr(align(64))]
        struct Aligned(u8);
        let value = Aligned(3);
        let f = move || {
            let whole = value; // captures the aligned struct, not just its field
            assert_eq!(whole.0, 3);
        };
        assert!(!fits(&f));
        InlineCall::new(f).call();
    }
}
