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

// The memory routines the compiler calls (`memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`),
// a byte at a time (size: compiler_builtins' word-at-a-time versions take 888 bytes here, these 152),
// and the program copies and compares at most a few KiB at once. Each has a section of its
// own, so that the linker drops those nothing calls. They write only r0, r3-r10 and ctr (and
// cr0 for the comparisons), as the ELFv2 ABI lets a function do.
#[cfg(not(any(test, feature = "hosted")))]
core::arch::global_asm!(
    ".pushsection .text.memcpy,\"ax\",@progbits",
    ".globl memcpy",
    ".type memcpy,@function",
    "memcpy:", // (r3 = dst, r4 = src, r5 = n) -> dst, forwards
    "cmpldi 5, 0",
    "beqlr",
    "mtctr 5",
    "addi 4, 4, -1",
    "addi 9, 3, -1",
    "2:",
    "lbzu 10, 1(4)",
    "stbu 10, 1(9)",
    "bdnz 2b",
    "blr",
    ".size memcpy, .-memcpy",
    ".popsection",
    ".pushsection .text.memmove,\"ax\",@progbits",
    ".globl memmove",
    ".type memmove,@function",
    "memmove:", // as memcpy, backwards when dst lies in (src, src + n)
    "subf 9, 4, 3",
    "cmpld 9, 5",
    "bge memcpy", // dst - src >= n, unsigned: no byte is written before it is read
    "mtctr 5",
    "add 4, 4, 5",
    "add 9, 3, 5",
    "2:",
    "lbzu 10, -1(4)",
    "stbu 10, -1(9)",
    "bdnz 2b",
    "blr",
    ".size memmove, .-memmove",
    ".popsection",
    ".pushsection .text.memset,\"ax\",@progbits",
    ".globl memset",
    ".type memset,@function",
    "memset:", // (r3 = dst, r4 = byte, r5 = n) -> dst
    "cmpldi 5, 0",
    "beqlr",
    "mtctr 5",
    "addi 9, 3, -1",
    "2:",
    "stbu 4, 1(9)",
    "bdnz 2b",
    "blr",
    ".size memset, .-memset",
    ".popsection",
    ".pushsection .text.memcmp,\"ax\",@progbits",
    ".globl memcmp",
    ".type memcmp,@function",
    ".globl bcmp",
    ".type bcmp,@function",
    "memcmp:", // (r3 = a, r4 = b, r5 = n) -> the first difference a[i] - b[i], or 0
    "bcmp:",
    "addi 6, 3, -1",
    "addi 4, 4, -1",
    "li 3, 0",
    "cmpldi 5, 0",
    "beqlr",
    "mtctr 5",
    "2:",
    "lbzu 7, 1(6)",
    "lbzu 8, 1(4)",
    "subf. 3, 8, 7",
    "bnelr",
    "bdnz 2b",
    "blr",
    ".size memcmp, .-memcmp",
    ".size bcmp, .-bcmp",
    ".popsection",
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

// `retry`'s loop, one copy that every call site branches to: the number in r0 and the
// arguments in r3-r7 as `sc` takes them, so that a site sets only the registers its call reads
// (size: each zero is an instruction of four bytes; 440 bytes less in all, 50 sites). `sc`
// may change r0 and r3-r8, so they are kept in the red zone (the 288 bytes below the stack
// pointer, which the kernel skips when it builds a signal frame) and reloaded for a retry only
// (the first attempt uses them as they came); registers a call does not take are stored and
// reloaded as they were. The red zone is the site's to give: an asm block without `nostack`
// may write there (and each site's function has a frame of its own in any case, as the block
// clobbers the link register). r8 is zero: no call takes a sixth argument. It needs no TOC
// pointer, so it has no global entry.
core::arch::global_asm!(
    ".pushsection .text.tinyapi_retry,\"ax\",@progbits",
    ".globl tinyapi_retry",
    ".type tinyapi_retry,@function",
    "tinyapi_retry:",
    "std 0, -48(1)",
    "std 3, -40(1)",
    "std 4, -32(1)",
    "std 5, -24(1)",
    "std 6, -16(1)",
    "std 7, -8(1)",
    "li 8, 0",
    "2:",
    "sc",
    "bnslr+",     // cr0.SO clear: r3 is the result
    "cmpdi 3, 4", // EINTR
    "beq 3f",
    "neg 3, 3",
    "blr",
    "3:", // interrupted: the registers back as they were, and again
    "ld 0, -48(1)",
    "ld 3, -40(1)",
    "ld 4, -32(1)",
    "ld 5, -24(1)",
    "ld 6, -16(1)",
    "ld 7, -8(1)",
    "li 8, 0",
    "b 2b",
    ".size tinyapi_retry, .-tinyapi_retry",
    ".popsection",
);

/// System call `n` until it is not interrupted, with the first `K` of five arguments (the
/// registers of the others are left as they are); the kernel's result (see [`super`]), a
/// failure turned into -errno. Inline: a branch to the loop above, with the clobbers of a call.
///
/// # Safety
/// The arguments must be what system call `n` expects, and it must read none after the first
/// `K`.
#[inline(always)]
pub(in crate::sys) unsafe fn retry<const K: usize>(
    n: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
) -> isize {
    let r: isize;
    macro_rules! branch {
        ($($reg:tt = $v:ident),*) => {
            core::arch::asm!(
                "bl tinyapi_retry",
                inlateout("r0") n => _,
                lateout("r3") r,
                $(in($reg) $v,)*
                // Everything else the loop or `sc` may change, and the link register.
                lateout("r4") _, lateout("r5") _, lateout("r6") _, lateout("r7") _,
                lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
                lateout("r12") _, lateout("cr0") _, lateout("ctr") _, lateout("xer") _,
                lateout("lr") _,
            )
        };
    }
    // SAFETY: the caller vouches for the arguments; every register the loop, `sc` or `bl`
    // may change is an output or a clobber.
    unsafe {
        match K {
            0 => branch!(),
            1 => branch!("r3" = a),
            2 => branch!("r3" = a, "r4" = b),
            3 => branch!("r3" = a, "r4" = b, "r5" = c),
            4 => branch!("r3" = a, "r4" = b, "r5" = c, "r6" = d),
            _ => branch!("r3" = a, "r4" = b, "r5" = c, "r6" = d, "r7" = e),
        }
    }
    r
}
