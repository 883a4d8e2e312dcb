//! Entry points and the trap vector.
//!
//! OpenSBI enters `_start` in S-mode on one hart (not always hart 0) with
//! a0 = hart id and a1 = the device tree.  Other harts arrive at
//! `_secondary_start` through SBI HSM `hart_start` with a0 = hart id and
//! a1 = the opaque value the boot hart passed: the top of their stack.
//! Every hart keeps its hart id in `tp` (read by [`crate::smp::hart_id`]).

use core::arch::global_asm;

/// Size of the boot hart's stack (in .bss, so reserved with the image).
pub const BOOT_STACK_SIZE: usize = 256 * 1024;

global_asm!(
    r#"
    .section .text.entry
    .globl _start
_start:
    mv      tp, a0
    la      sp, {boot_stack} + {boot_stack_size}
    /* sstatus.FS = Initial: Rust code for rv64gc uses the FPU; SIE off. */
    li      t0, 0x2000
    csrs    sstatus, t0
    csrci   sstatus, 0x2
    csrw    sie, zero
    /* Only the boot hart zeroes .bss, before any Rust code runs. */
    la      t0, _bss_start
    la      t1, _bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:  la      t0, _trap_entry
    csrw    stvec, t0
    call    {boot_main}
3:  wfi
    j       3b

    .section .text
    .globl _secondary_start
    .p2align 2
_secondary_start:
    mv      tp, a0
    mv      sp, a1
    li      t0, 0x2000
    csrs    sstatus, t0
    csrci   sstatus, 0x2
    csrw    sie, zero
    la      t0, _trap_entry
    csrw    stvec, t0
    call    {secondary_main}
4:  wfi
    j       4b

    /* No interrupts are enabled, so any trap is a bug: report it.  Direct
     * mode needs a 4-byte aligned vector. */
    .p2align 2
_trap_entry:
    csrr    a0, scause
    csrr    a1, sepc
    csrr    a2, stval
    call    {trap_fatal}
5:  j       5b
    "#,
    boot_stack = sym BOOT_STACK,
    boot_stack_size = const BOOT_STACK_SIZE,
    boot_main = sym crate::boot_main,
    secondary_main = sym crate::secondary_main,
    trap_fatal = sym trap_fatal,
);

extern "C" {
    fn _secondary_start();
}

/// The address to hand SBI HSM `hart_start`.
pub fn secondary_entry() -> usize {
    _secondary_start as *const () as usize
}

#[repr(C, align(4096))]
struct Stack([u8; BOOT_STACK_SIZE]);

#[no_mangle]
#[link_section = ".bss.stack"]
static mut BOOT_STACK: Stack = Stack([0; BOOT_STACK_SIZE]);

/// Any trap ends the run: print what happened and fail.
extern "C" fn trap_fatal(scause: usize, sepc: usize, stval: usize) -> ! {
    crate::println_force!(
        "[FAIL] trap on hart {}: scause {:#x} ({}), sepc {:#x}, stval {:#x}",
        crate::smp::hart_id(),
        scause,
        trap_name(scause),
        sepc,
        stval
    );
    crate::platform::exit_failure(crate::platform::EXIT_TRAP)
}

fn trap_name(scause: usize) -> &'static str {
    if scause >> (usize::BITS - 1) != 0 {
        return "interrupt";
    }
    match scause {
        0 => "instruction address misaligned",
        1 => "instruction access fault",
        2 => "illegal instruction",
        3 => "breakpoint",
        4 => "load address misaligned",
        5 => "load access fault",
        6 => "store address misaligned",
        7 => "store access fault",
        12 => "instruction page fault",
        13 => "load page fault",
        15 => "store page fault",
        _ => "exception",
    }
}
