//! Entry point and the exception vectors.
//!
//! QEMU (virt, ELF kernel, no firmware) starts every CPU at `_start` at
//! EL1 with the MMU and caches off.  CPU 0 (MPIDR affinity 0) boots: it
//! enables FP/SIMD (Rust code for aarch64-unknown-none uses NEON; without
//! it the first vector instruction traps), takes the boot stack, zeroes
//! .bss, installs the vectors and calls `boot_main` with x0 as QEMU left it
//! (the device tree for a Linux-style Image, 0 for an ELF).  QEMU virt
//! keeps the other CPUs powered off until PSCI CPU_ON starts them at
//! `_secondary_start` with x0 = the top of their stack (smp.rs); should one
//! arrive at `_start` anyway, it parks.

use core::arch::global_asm;

/// Size of the boot stack (in .bss, so reserved with the image).
pub const BOOT_STACK_SIZE: usize = 256 * 1024;

global_asm!(
    r#"
    .section .text.entry
    .globl _start
_start:
    mrs     x1, mpidr_el1
    and     x1, x1, #0xffffff
    cbnz    x1, 9f
    mov     x19, x0
    /* CPACR_EL1.FPEN = 0b11: FP/SIMD at EL1 and EL0 without trapping. */
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    adrp    x1, {boot_stack}
    add     x1, x1, :lo12:{boot_stack}
    mov     x2, #{boot_stack_size}
    add     sp, x1, x2
    /* Zero .bss before any Rust code runs (8-byte aligned by the script). */
    adrp    x1, _bss_start
    add     x1, x1, :lo12:_bss_start
    adrp    x2, _bss_end
    add     x2, x2, :lo12:_bss_end
1:  cmp     x1, x2
    b.hs    2f
    str     xzr, [x1], #8
    b       1b
2:  adrp    x1, _vectors
    add     x1, x1, :lo12:_vectors
    msr     vbar_el1, x1
    isb
    mov     x0, x19
    bl      {boot_main}
9:  wfe
    b       9b

    /* PSCI CPU_ON lands here at EL1, MMU off, x0 = the context id: the
     * top of this CPU's stack. */
    .globl _secondary_start
    .balign 4
_secondary_start:
    mov     sp, x0
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    adrp    x1, _vectors
    add     x1, x1, :lo12:_vectors
    msr     vbar_el1, x1
    isb
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    bl      {secondary_main}
    b       9b

    /* No interrupts are unmasked, so any exception is a bug (or the hlt of
     * semihosting without -semihosting): report it.  16 entries of 0x80
     * bytes; the table is 2 KiB aligned. */
    .section .text
    .balign 2048
_vectors:
    .irp    idx, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .balign 0x80
    mov     x0, #\idx
    b       _trap_common
    .endr
_trap_common:
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      {trap_fatal}
8:  wfe
    b       8b
    "#,
    boot_stack = sym BOOT_STACK,
    boot_stack_size = const BOOT_STACK_SIZE,
    boot_main = sym crate::boot_main,
    secondary_main = sym crate::smp::secondary_main,
    trap_fatal = sym trap_fatal,
);

extern "C" {
    fn _secondary_start();
}

/// The entry point to hand PSCI CPU_ON.
pub fn secondary_entry() -> usize {
    _secondary_start as *const () as usize
}

#[repr(C, align(4096))]
struct Stack([u8; BOOT_STACK_SIZE]);

#[no_mangle]
#[link_section = ".bss.stack"]
static mut BOOT_STACK: Stack = Stack([0; BOOT_STACK_SIZE]);

/// Any exception ends the run: print what happened and fail.
extern "C" fn trap_fatal(vector: usize, esr: usize, elr: usize, far: usize) -> ! {
    crate::println_force!(
        "[FAIL] exception on cpu {}: vector {} ({}, {}), ESR_EL1 {:#x} (EC {:#x}: {}), ELR_EL1 {:#x}, FAR_EL1 {:#x}",
        crate::platform::cpu_id(),
        vector,
        vector_kind(vector),
        vector_origin(vector),
        esr,
        esr >> 26,
        class_name(esr >> 26),
        elr,
        far
    );
    crate::platform::exit_failure(crate::platform::EXIT_TRAP)
}

fn vector_kind(v: usize) -> &'static str {
    ["synchronous", "IRQ", "FIQ", "SError"][v % 4]
}

fn vector_origin(v: usize) -> &'static str {
    ["current EL with SP_EL0", "current EL with SP_ELx", "lower EL, AArch64", "lower EL, AArch32"][(v / 4) % 4]
}

fn class_name(ec: usize) -> &'static str {
    match ec {
        0x00 => "unknown / undefined instruction",
        0x07 => "FP/SIMD access trapped",
        0x15 => "SVC",
        0x16 => "HVC",
        0x17 => "SMC",
        0x20 | 0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 | 0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x3c => "BRK",
        _ => "other",
    }
}
