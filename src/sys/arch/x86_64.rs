//! x86-64: `syscall` with the number in rax and the arguments in rdi, rsi, rdx, r10, r8, r9;
//! the result in rax; rcx and r11 clobbered (System V ABI, AMD64 supplement, A.2).

/// `AUDIT_ARCH_X86_64`: the architecture seccomp reports for this ABI's system calls (x32 and
/// i386 calls report others, and the filter kills them).
pub(in crate::sys) const AUDIT_ARCH: u32 = 0xC000_003E;

/// The vDSO's name for `clock_gettime`.
pub(in crate::sys) const VDSO_CLOCK_GETTIME: &[u8] = b"__vdso_clock_gettime";

// The first instructions: clear the frame pointer (the end of the stack-frame chain), pass the
// initial stack pointer, align the stack as the calling convention wants, and call `entry`.
#[cfg(not(any(test, feature = "hosted")))]
core::arch::global_asm!(
    ".globl tinyapi_start",
    "tinyapi_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
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
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers only rcx and r11.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => r,
            in("rdi") a, in("rsi") b, in("rdx") c,
            in("r10") d, in("r8") e, in("r9") f,
            lateout("rcx") _, lateout("r11") _,
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
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers only rcx and r11 and
    // keeps the argument registers, so an interrupted call is made again by reloading rax.
    unsafe {
        core::arch::asm!(
            "2:",
            "mov rax, {n}",
            "syscall",
            "cmp rax, -4", // -EINTR
            "je 2b",
            n = in(reg) n,
            out("rax") r,
            in("rdi") a, in("rsi") b, in("rdx") c,
            in("r10") d, in("r8") e, in("r9") 0,
            out("rcx") _, out("r11") _,
            options(nostack)
        );
    }
    r
}
