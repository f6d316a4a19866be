//! ppc64le: `sc` with the number in r0 and the arguments in r3-r8; the result in r3, and a
//! failure flagged by cr0's summary-overflow bit (SO) with the error number positive in r3.
//! r0 and r3-r12, cr0, ctr and xer are clobbered (the kernel's 64-bit PowerPC system call
//! ABI, Documentation/arch/powerpc/syscall64-abi.rst). Little-endian, ELFv2 ABI only.

#[cfg(target_endian = "big")]
compile_error!(
    "big-endian powerpc64 (the ELFv1 ABI: function descriptors, another entry) is not supported"
);

/// `AUDIT_ARCH_PPC64LE`: the architecture seccomp reports for this ABI's system calls
/// (big-endian calls report `AUDIT_ARCH_PPC64`, and the filter kills them).
pub(in crate::sys) const AUDIT_ARCH: u32 = 0xC000_0015;

/// The vDSO's name for `clock_gettime` (version `LINUX_2.6.15`). It returns 0 on success;
/// a failure is flagged as a system call's is, so its nonzero r3 is a failure either way.
pub(in crate::sys) const VDSO_CLOCK_GETTIME: &[u8] = b"__kernel_clock_gettime";

// The first instructions. The kernel enters an ELFv2 program with r12 holding the entry
// address, from which the TOC pointer (r2, the base of the GOT and constants) is computed as
// at any global entry point; then the initial stack pointer is passed, the stack aligned to
// 16 bytes, and a minimal frame (32 bytes) whose back chain is 0 (the end of the stack-frame
// chain) made for `entry`, which saves its link register in it.
#[cfg(not(any(test, feature = "hosted")))]
core::arch::global_asm!(
    ".globl tinyapi_start",
    "tinyapi_start:",
    "addis 2, 12, .TOC.-tinyapi_start@ha",
    "addi 2, 2, .TOC.-tinyapi_start@l",
    "mr 3, 1",
    "clrrdi 1, 1, 4",
    "li 0, 0",
    "stdu 0, -32(1)",
    "bl {entry}",
    "trap",
    entry = sym crate::sys::start::entry,
);

/// One system call with six arguments; the kernel's result (see [`super`]), a failure turned
/// into -errno.
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
    // SAFETY: the caller vouches for the arguments; every register `sc` may change is an
    // output or a clobber.
    unsafe {
        core::arch::asm!(
            "sc",
            "bns+ 2f", // cr0.SO clear: r3 is the result
            "neg 3, 3",
            "2:",
            inlateout("r0") n => _,
            inlateout("r3") a => r,
            inlateout("r4") b => _, inlateout("r5") c => _, inlateout("r6") d => _,
            inlateout("r7") e => _, inlateout("r8") f => _,
            lateout("r9") _, lateout("r10") _, lateout("r11") _, lateout("r12") _,
            lateout("cr0") _, lateout("ctr") _, lateout("xer") _,
            options(nostack)
        );
    }
    r
}

/// System call `n` with five arguments until it is not interrupted; the kernel's result (see
/// [`super`]), a failure turned into -errno.
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
    // SAFETY: the caller vouches for the arguments; `sc` may change r0 and r3-r8, so an
    // interrupted call is made again by reloading all of them from registers it keeps.
    unsafe {
        core::arch::asm!(
            "2:",
            "mr 0, {n}",
            "mr 3, {a}",
            "mr 4, {b}",
            "mr 5, {c}",
            "mr 6, {d}",
            "mr 7, {e}",
            "li 8, 0",
            "sc",
            "bns+ 3f", // cr0.SO clear: r3 is the result
            "cmpdi 3, 4", // EINTR
            "beq 2b",
            "neg 3, 3",
            "3:",
            n = in(reg) n,
            a = in(reg) a, b = in(reg) b, c = in(reg) c, d = in(reg) d, e = in(reg) e,
            out("r0") _, out("r3") r,
            out("r4") _, out("r5") _, out("r6") _, out("r7") _, out("r8") _,
            out("r9") _, out("r10") _, out("r11") _, out("r12") _,
            out("cr0") _, out("ctr") _, out("xer") _,
            options(nostack)
        );
    }
    r
}
