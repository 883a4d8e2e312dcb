//! Interrupt save/restore from the `critical-section` crate (feature
//! `critical-section`): the allocator's sections become critical sections
//! of whatever implementation the program links (a HAL's, `cortex-m`'s
//! single-core one, a multi-core spinlock...).

use core::mem::{align_of, size_of};

use critical_section::RestoreState;

// The state travels through the C core as a `uintptr_t`.  Every restore
// state the crate offers (`()`, `bool`, `u8`..`u64`) fits on the 64-bit
// targets hartalloc supports.
const _: () = assert!(
    size_of::<RestoreState>() <= size_of::<usize>() && align_of::<RestoreState>() <= align_of::<usize>(),
    "critical_section::RestoreState does not fit in a usize"
);

/// `critical_section::acquire`, its state packed into a `usize`.
pub(crate) fn irq_save() -> usize {
    // SAFETY: the C core pairs every ha_platform_irq_save with an
    // ha_platform_irq_restore on the same CPU, in reverse order of the
    // saves, which is the nesting `release` requires.
    let state = unsafe { critical_section::acquire() };
    let mut word = 0usize;
    // SAFETY: RestoreState fits in `word` (size and alignment asserted
    // above) and is Copy, so overwriting the bytes drops nothing.
    unsafe { (&raw mut word).cast::<RestoreState>().write(state) };
    word
}

/// `critical_section::release` of a state from [`irq_save`].
///
/// # Safety
///
/// `word` is what `irq_save` returned on this CPU, and sections end in the
/// reverse order of their start.
pub(crate) unsafe fn irq_restore(word: usize) {
    // SAFETY: `word` holds the bytes of a RestoreState written by
    // irq_save (the caller's promise).
    let state = unsafe { (&raw const word).cast::<RestoreState>().read() };
    // SAFETY: that state comes from the matching acquire, released in
    // nesting order (the caller's promise).
    unsafe { critical_section::release(state) }
}
