//! loongarch64: `syscall 0` with the number in a7 and the arguments in a0-a5; the result in a0,
//! and t0-t8 clobbered (the kernel's LoongArch system call ABI).

/// `AUDIT_ARCH_LOONGARCH64`: the architecture seccomp reports for this ABI's system calls.
pub(in crate::sys) const AUDIT_ARCH: u32 = 0xC000_0102;

/// The vDSO's name for `clock_gettime` (version `LINUX_5.10`).
pub(in crate::sys) const VDSO_CLOCK_GETTIME: &[u8] = b"__vdso_clock_gettime";

// The first instructions: clear the frame pointer and the return address (the end of the
// stack-frame chain), pass the initial stack pointer (the kernel leaves it 16-byte aligned, as
// the calling convention wants), and call `entry`.
#[cfg(not(any(test, feature = "hosted")))]
core::arch::global_asm!(
    ".globl tinyapi_start",
    "tinyapi_start:",
    "move $fp, $zero",
    "move $ra, $zero",
    "move $a0, $sp",
    "bl {entry}",
    "break 0",
    entry = sym crate::sys::start::entry,
);

/// One system call with six arguments; the kernel's result (see [`super`]).
///
/// # Safety
/// The arguments must be what system call `n` expects.
#[inline(always)]
pub(in crate::sys) unsafe fn raw(
    n: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
    f: usize,
) -> isize {
    let r: isize;
    // SAFETY: the caller vouches for the arguments; `syscall 0` writes a0 and t0-t8 only.
    unsafe {
        core::arch::asm!(
            "syscall 0",
            in("$a7") n,
            inlateout("$a0") a => r, in("$a1") b, in("$a2") c,
            in("$a3") d, in("$a4") e, in("$a5") f,
            lateout("$t0") _, lateout("$t1") _, lateout("$t2") _, lateout("$t3") _,
            lateout("$t4") _, lateout("$t5") _, lateout("$t6") _, lateout("$t7") _,
            lateout("$t8") _,
            options(nostack, preserves_flags)
        );
    }
    r
}

/// System call `n` with five arguments until it is not interrupted; the kernel's result (see
/// [`super`]).
///
/// # Safety
/// The arguments must be what system call `n` expects.
#[inline(never)]
pub(in crate::sys) unsafe fn retry(
    n: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
) -> isize {
    let r: isize;
    // SAFETY: the caller vouches for the arguments; `syscall 0` keeps a1-a7, so an interrupted
    // call is made again by reloading a0 (`a` and the -EINTR constant sit in registers it keeps).
    unsafe {
        core::arch::asm!(
            "addi.d {eintr}, $zero, -4", // -EINTR
            "2:",
            "move $a0, {a}",
            "syscall 0",
            "beq $a0, {eintr}, 2b",
            a = in(reg) a,
            eintr = out(reg) _,
            in("$a7") n,
            out("$a0") r,
            in("$a1") b, in("$a2") c, in("$a3") d, in("$a4") e, in("$a5") 0,
            out("$t0") _, out("$t1") _, out("$t2") _, out("$t3") _, out("$t4") _,
            out("$t5") _, out("$t6") _, out("$t7") _, out("$t8") _,
            options(nostack, preserves_flags)
        );
    }
    r
}
