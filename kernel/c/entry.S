/*
 * Entry points.  OpenSBI enters the boot hart at _start in S-mode with
 * a0 = hart id, a1 = DTB; other harts arrive at smp_secondary_entry after
 * SBI HSM hart_start with a0 = hart id, a1 = the kc_cpu we prepared.
 */
#include "kc.h"

    .section .text.entry, "ax"
    .globl _start
_start:
    csrw    sie, zero
    csrci   sstatus, KC_SSTATUS_SIE
    la      t0, trap_vector
    csrw    stvec, t0
    li      t0, KC_SSTATUS_FS_INITIAL
    csrs    sstatus, t0

    /* Stack: kc_stacks[0].  It lies in .bss, which is zeroed below before
     * anything is pushed. */
    la      sp, kc_stacks
    li      t0, KC_STACK_SIZE
    add     sp, sp, t0

    /* Zero .bss on the boot hart only: the others start after it is set
     * up and must not wipe it.  The linker script keeps both ends 8-byte
     * aligned. */
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    la      tp, kc_cpus
    call    kmain
3:  wfi
    j       3b

    .text
    .globl smp_secondary_entry
smp_secondary_entry:
    csrw    sie, zero
    csrci   sstatus, KC_SSTATUS_SIE
    la      t0, trap_vector
    csrw    stvec, t0
    li      t0, KC_SSTATUS_FS_INITIAL
    csrs    sstatus, t0
    mv      tp, a1
    ld      sp, KC_CPU_STACK_TOP(a1)
    call    smp_secondary_main
4:  wfi
    j       4b

    /* Any trap is a bug here (interrupts stay off): report and fail. */
    .align 4
trap_vector:
    csrr    a0, scause
    csrr    a1, sepc
    csrr    a2, stval
    call    kc_trap
5:  j       5b
