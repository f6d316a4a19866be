//! arm64: `svc 0` with the number in x8 and the arguments in x0-x5; the result in x0, nothing
//! else written (the kernel's arm64 system call ABI).

/// `AUDIT_ARCH_AARCH64`: the architecture seccomp reports for this ABI's system calls (32-bit
/// arm calls report another, and the filter kills them).
pub(in crate::sys) const AUDIT_ARCH: u32 = 0xC000_00B7;

/// The vDSO's name for `clock_gettime`.
pub(in crate::sys) const VDSO_CLOCK_GETTIME: &[u8] = b"__kernel_clock_gettime";

// The first instructions: clear the frame pointer and the link register (the end of the
// stack-frame chain), pass the initial stack pointer (the kernel leaves it 16-byte aligned, as
// the calling convention wants), and call `entry`.
#[cfg(not(any(test, feature = "hosted")))]
core::arch::global_asm!(
    ".globl tinyapi_start",
    "tinyapi_start:",
    "mov x29, xzr",
    "mov x30, xzr",
    "mov x0, sp",
    "bl {entry}",
    "brk #0",
    entry = sym crate::sys::start::entry,
);

// size: `memcpy(dst, src, n)`, in place of musl's (396 bytes, unrolled for large copies): 16 bytes
// a step with ldp/stp, which arm64 allows unaligned on normal memory, then single bytes. The
// copies here are header strings and buffers of at most 16 KiB; it returns `dst`, as C says.
#[cfg(not(any(test, feature = "hosted")))]
core::arch::global_asm!(
    ".pushsection .text.memcpy,\"ax\",%progbits",
    ".globl memcpy",
    ".type memcpy, %function",
    "memcpy:",
    "mov x3, x0",
    "1:",
    "subs x2, x2, #16",
    "b.lo 2f",
    "ldp x4, x5, [x1], #16",
    "stp x4, x5, [x3], #16",
    "b 1b",
    "2:",
    "adds x2, x2, #16",
    "b.eq 4f",
    "3:",
    "ldrb w4, [x1], #1",
    "strb w4, [x3], #1",
    "subs x2, x2, #1",
    "b.ne 3b",
    "4:",
    "ret",
    ".size memcpy, . - memcpy",
    ".popsection",
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
    // SAFETY: the caller vouches for the arguments; `svc 0` clobbers nothing else.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a => r, in("x1") b, in("x2") c,
            in("x3") d, in("x4") e, in("x5") f,
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
    // SAFETY: the caller vouches for the arguments; `svc 0` writes only x0, so an interrupted
    // call is made again by reloading x0.
    unsafe {
        core::arch::asm!(
            "2:",
            "mov x0, {a}",
            "svc 0",
            "cmn x0, #4", // -EINTR
            "b.eq 2b",
            a = in(reg) a,
            in("x8") n,
            out("x0") r,
            in("x1") b, in("x2") c, in("x3") d, in("x4") e, in("x5") 0,
            options(nostack)
        );
    }
    r
}
