//! A cache prefetch hint, for the loop's batch of ready items (see `Ready::prefetch` in
//! `event_loop`): the memory of items a few places ahead starts loading while the current one
//! runs. On targets without a stable prefetch instruction it does nothing.

/// Asks the CPU to load the cache line at `addr` and its neighbours on both sides (an object
/// of a few lines, `addr` somewhere in its first). Only a hint: never faults, whatever `addr`.
#[inline(always)]
pub(crate) fn prefetch_around(addr: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for offset in [-64isize, 0, 64, 128] {
            // SAFETY: a prefetch is a hint that does not access memory as far as the program
            // is concerned: it never faults, whatever the address, and reads nothing back.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(addr.wrapping_offset(offset).cast()) };
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = addr;
}

/// Asks the CPU to load the one cache line at `addr`. Only a hint, as [`prefetch_around`].
#[inline(always)]
pub(crate) fn prefetch_line(addr: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: as in `prefetch_around`: a hint that never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(addr.cast()) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = addr;
}
