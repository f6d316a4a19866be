//! 32-bit arm (EABI; armv6 in A32 code, armv7 in Thumb-2): `svc 0` with the number in r7 and
//! the arguments in r0-r5; the result in r0, nothing else written (the kernel's arm EABI system
//! call ABI).
//!
//! r7 is Thumb code's frame pointer, which Rust's inline asm cannot name as an operand. So the
//! number comes in r8, and the asm saves r7, moves the number there for the call and restores
//! it; one sequence serves A32 code too, where r7 is a plain callee-saved register. Every operand
//! has a register of its own: none can land in r7, which the compiler does allocate like any
//! other in A32 code and in Thumb functions that keep no frame pointer (an operand there would
//! be overwritten by the number before it is read).

/// `AUDIT_ARCH_ARM`: the architecture seccomp reports for this ABI's system calls (on an arm64
/// kernel, calls through the 64-bit ABI report `AUDIT_ARCH_AARCH64`, and the filter kills them).
pub(in crate::sys) const AUDIT_ARCH: u32 = 0x4000_0028;

/// The vDSO's name for `clock_gettime` with 64-bit seconds (`__kernel_timespec`).
pub(in crate::sys) const VDSO_CLOCK_GETTIME: &[u8] = b"__vdso_clock_gettime64";

// The first instructions: clear the frame pointer and the link register (the end of the
// stack-frame chain), pass the initial stack pointer (the kernel leaves it 16-byte aligned, more
// than the calling convention's 8), and call `entry`. In the instruction set of the rest of the
// program, named explicitly: the assembler's default for module-level asm differs between
// builds (A32 with link-time optimisation, Thumb without), and the kernel starts an entry
// point marked Thumb (odd) in Thumb state, any other in A32 state.
#[cfg(all(not(any(test, feature = "hosted")), target_feature = "thumb-mode"))]
core::arch::global_asm!(
    ".thumb",
    ".globl tinyapi_start",
    ".thumb_func",
    "tinyapi_start:",
    "movs r0, #0",
    "mov r7, r0", // Thumb code's frame pointer
    "mov lr, r0",
    "mov r0, sp",
    "bl {entry}",
    "udf #0",
    entry = sym crate::sys::start::entry,
);
#[cfg(all(not(any(test, feature = "hosted")), not(target_feature = "thumb-mode")))]
core::arch::global_asm!(
    ".arm",
    ".globl tinyapi_start",
    ".type tinyapi_start, %function",
    "tinyapi_start:",
    "mov r11, #0", // A32 code's frame pointer
    "mov lr, #0",
    "mov r0, sp",
    "bl {entry}",
    "udf #0",
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
    // SAFETY: the caller vouches for the arguments; `svc 0` clobbers nothing else, and r7 is
    // restored before the asm ends.
    unsafe {
        core::arch::asm!(
            "push {{r7}}",
            "mov r7, r8",
            "svc 0",
            "pop {{r7}}",
            in("r8") n,
            inlateout("r0") a => r, in("r1") b, in("r2") c,
            in("r3") d, in("r4") e, in("r5") f,
            options(preserves_flags)
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
    // SAFETY: the caller vouches for the arguments; `svc 0` writes only r0, so an interrupted
    // call is made again by reloading r0, and r7 too: a restarted call can leave the number of
    // `restart_syscall` there. r7 is restored before the asm ends.
    unsafe {
        core::arch::asm!(
            "push {{r7}}",
            "2:",
            "mov r7, r8",
            "mov r0, r12",
            "svc 0",
            "cmn r0, #4", // -EINTR
            "beq 2b",
            "pop {{r7}}",
            in("r8") n,
            in("r12") a,
            out("r0") r,
            in("r1") b, in("r2") c, in("r3") d, in("r4") e, in("r5") 0,
        );
    }
    r
}
