//! riscv64: `ecall` with the number in a7 and the arguments in a0-a5; the result in a0, nothing
//! else written (the kernel's RISC-V system call ABI, as for arm64).

/// `AUDIT_ARCH_RISCV64`: the architecture seccomp reports for this ABI's system calls.
pub(in crate::sys) const AUDIT_ARCH: u32 = 0xC000_00F3;

/// The vDSO's name for `clock_gettime` (version `LINUX_4.15`).
pub(in crate::sys) const VDSO_CLOCK_GETTIME: &[u8] = b"__vdso_clock_gettime";

// The first instructions: clear the frame pointer and the return address (the end of the
// stack-frame chain), pass the initial stack pointer (the kernel leaves it 16-byte aligned, as
// the calling convention wants), and call `entry`. No `gp` is set up: rust-lld relaxes no
// access to be relative to it unless told to (`--relax-gp`).
#[cfg(not(any(test, feature = "hosted")))]
core::arch::global_asm!(
    ".globl tinyapi_start",
    "tinyapi_start:",
    "li s0, 0",
    "li ra, 0",
    "mv a0, sp",
    "call {entry}",
    "unimp",
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
    // SAFETY: the caller vouches for the arguments; `ecall` writes only a0.
    unsafe {
        core::arch::asm!(
            "ecall",
            in("a7") n,
            inlateout("a0") a => r, in("a1") b, in("a2") c,
            in("a3") d, in("a4") e, in("a5") f,
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
    // SAFETY: the caller vouches for the arguments; `ecall` writes only a0, so an interrupted
    // call is made again by reloading a0.
    unsafe {
        core::arch::asm!(
            "li {eintr}, -4", // -EINTR
            "2:",
            "mv a0, {a}",
            "ecall",
            "beq a0, {eintr}, 2b",
            a = in(reg) a,
            eintr = out(reg) _,
            in("a7") n,
            out("a0") r,
            in("a1") b, in("a2") c, in("a3") d, in("a4") e, in("a5") 0,
            options(nostack, preserves_flags)
        );
    }
    r
}
