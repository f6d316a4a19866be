//! s390x: `svc 0` with the number in r1 and the arguments in r2-r7; the result in r2, nothing
//! else written (the kernel's s390x system call ABI; an `svc` operand of 0 says the number is
//! in r1). Big-endian. Three calls differ from every other architecture's, given here.

/// `AUDIT_ARCH_S390X`: the architecture seccomp reports for this ABI's system calls (31-bit
/// s390 calls report `AUDIT_ARCH_S390`, and the filter kills them).
pub(in crate::sys) const AUDIT_ARCH: u32 = 0x8000_0016;

/// The vDSO's name for `clock_gettime` (version `LINUX_2.6.29`).
pub(in crate::sys) const VDSO_CLOCK_GETTIME: &[u8] = b"__kernel_clock_gettime";

/// An entry of the vDSO's `DT_HASH` table: 8 bytes on s390x (and Alpha), where the gABI says
/// 4 (glibc's and binutils' 64-bit s390 ELF do the same).
pub(in crate::sys) type VdsoHashWord = u64;

/// clone(2)'s first two arguments for a fork: s390x takes the new stack (none: 0) first and
/// the flags (`SIGCHLD` alone) second, the other way round from the rest.
pub(in crate::sys) const CLONE_FORK: [usize; 2] = [0, libc::SIGCHLD as usize];

// The first instructions: pass the initial stack pointer, make the 160-byte frame the
// calling convention wants the caller to provide (its first word, the back chain, 0: the end
// of the stack-frame chain; the kernel leaves the stack 8-byte aligned, as the convention
// wants), and call `entry`. Then an invalid instruction (opcode 0).
#[cfg(not(any(test, feature = "hosted")))]
core::arch::global_asm!(
    ".globl tinyapi_start",
    "tinyapi_start:",
    "lgr %r2, %r15",
    "aghi %r15, -160",
    "lghi %r0, 0",
    "stg %r0, 0(%r15)",
    "brasl %r14, {entry}",
    ".2byte 0",
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
    // SAFETY: the caller vouches for the arguments; `svc 0` writes only r2.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("r1") n,
            inlateout("r2") a => r, in("r3") b, in("r4") c,
            in("r5") d, in("r6") e, in("r7") f,
            options(nostack)
        );
    }
    r
}

/// `mmap` (system call `n`) with its six arguments: s390x's (the old `mmap` of other
/// architectures) takes one pointer to them.
///
/// # Safety
/// The arguments must be what `mmap` expects.
#[inline(always)]
pub(in crate::sys) unsafe fn raw_mmap(
    n: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
    f: usize,
) -> isize {
    let args = [a, b, c, d, e, f];
    // SAFETY: the caller vouches for the arguments; the kernel reads the six words at `args`,
    // live until the call returns.
    unsafe { raw(n, args.as_ptr() as usize, 0, 0, 0, 0, 0) }
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
    // SAFETY: the caller vouches for the arguments; `svc 0` writes only r2, so an interrupted
    // call is made again by reloading r2.
    unsafe {
        core::arch::asm!(
            "2:",
            "lgr %r2, {a}",
            "svc 0",
            "cghi %r2, -4", // -EINTR
            "je 2b",
            a = in(reg) a,
            in("r1") n,
            out("r2") r,
            in("r3") b, in("r4") c, in("r5") d, in("r6") e, in("r7") 0,
            options(nostack)
        );
    }
    r
}
