//! i386 (32-bit x86): `int 0x80` with the number in eax and the arguments in ebx, ecx, edx,
//! esi, edi, ebp; the result in eax, nothing else written (the kernel's i386 system call ABI).
//!
//! Rust's inline asm cannot name esi or ebp as operands (LLVM keeps them for its base and frame
//! pointers), and without them there are fewer free registers than a call has values. So the
//! system calls are functions written whole in asm with the C calling convention: the caller
//! pushes the number and the arguments, and the function loads each into its register, saving
//! and restoring the callee-saved ebx, esi, edi (and ebp) around `int 0x80`. Each of `raw` and
//! `retry` has two: one for any call, and one for calls with three arguments at most, which
//! takes four words on the stack (the number and three arguments) where the other takes seven
//! or six. Four words keep the stack 16-byte aligned at the call without padding, and
//! `raw`/`retry`, inline, pick the short form wherever the last arguments are zero, which the
//! compiler sees at most call sites (size: 272 bytes less in all).
//!
//! This file also holds `memcpy`, `memcmp` and `bcmp`, in place of musl's (see below).

/// `AUDIT_ARCH_I386`: the architecture seccomp reports for this ABI's system calls (on an
/// x86-64 kernel, calls through the 64-bit ABI, x32's included, report `AUDIT_ARCH_X86_64`, and
/// the filter kills them).
pub(in crate::sys) const AUDIT_ARCH: u32 = 0x4000_0003;

/// The vDSO's name for `clock_gettime` with 64-bit seconds (`__kernel_timespec`).
pub(in crate::sys) const VDSO_CLOCK_GETTIME: &[u8] = b"__vdso_clock_gettime64";

// The first instructions: clear the frame pointer (the end of the stack-frame chain), align the
// stack as the calling convention wants (16 bytes at the call, after pushing the one argument),
// pass the initial stack pointer, and call `entry`.
#[cfg(not(any(test, feature = "hosted")))]
core::arch::global_asm!(
    ".globl tinyapi_start",
    "tinyapi_start:",
    "xor ebp, ebp",
    "mov eax, esp",
    "and esp, -16",
    "sub esp, 12",
    "push eax",
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
    // SAFETY: passed on from the caller; tinyapi_raw3 passes zero for d, e and f.
    unsafe {
        if d == 0 && e == 0 && f == 0 {
            tinyapi_raw3(n, a, b, c)
        } else {
            tinyapi_raw(n, a, b, c, d, e, f)
        }
    }
}

/// System call `n` with five arguments until it is not interrupted; the kernel's result (see
/// [`super`]).
///
/// # Safety
/// The arguments must be what system call `n` expects.
#[inline(always)]
pub(in crate::sys) unsafe fn retry(
    n: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
) -> isize {
    // SAFETY: passed on from the caller; tinyapi_retry3 passes zero for d and e.
    unsafe {
        if d == 0 && e == 0 {
            tinyapi_retry3(n, a, b, c)
        } else {
            tinyapi_retry5(n, a, b, c, d, e)
        }
    }
}

unsafe extern "C" {
    /// [`raw`].
    fn tinyapi_raw(
        n: libc::c_long,
        a: usize,
        b: usize,
        c: usize,
        d: usize,
        e: usize,
        f: usize,
    ) -> isize;
    /// [`raw`] with three arguments, and zero for the others.
    fn tinyapi_raw3(n: libc::c_long, a: usize, b: usize, c: usize) -> isize;
    /// [`retry`].
    fn tinyapi_retry5(n: libc::c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize;
    /// [`retry`] with three arguments, and zero for the fourth and fifth.
    fn tinyapi_retry3(n: libc::c_long, a: usize, b: usize, c: usize) -> isize;
}

// The four functions above. Each short form zeroes what its long form loads, then joins it.
// `raw` saves four registers, so n is at [esp + 20] (after the four and the return address);
// `retry` saves three, so n is at [esp + 16]. `int 0x80` keeps the argument registers, so an
// interrupted call is made again by reloading eax.
core::arch::global_asm!(
    ".globl tinyapi_raw, tinyapi_raw3, tinyapi_retry5, tinyapi_retry3",
    "tinyapi_raw3:",
    "push ebp",
    "push ebx",
    "push esi",
    "push edi",
    "xor ebp, ebp",
    "xor esi, esi",
    "xor edi, edi",
    "jmp 1f",
    "tinyapi_raw:",
    "push ebp",
    "push ebx",
    "push esi",
    "push edi",
    "mov esi, [esp + 36]",
    "mov edi, [esp + 40]",
    "mov ebp, [esp + 44]",
    "1:",
    "mov eax, [esp + 20]",
    "mov ebx, [esp + 24]",
    "mov ecx, [esp + 28]",
    "mov edx, [esp + 32]",
    "int 0x80",
    "pop edi",
    "pop esi",
    "pop ebx",
    "pop ebp",
    "ret",
    "tinyapi_retry3:",
    "push ebx",
    "push esi",
    "push edi",
    "xor esi, esi",
    "xor edi, edi",
    "jmp 1f",
    "tinyapi_retry5:",
    "push ebx",
    "push esi",
    "push edi",
    "mov esi, [esp + 32]",
    "mov edi, [esp + 36]",
    "1:",
    "mov ebx, [esp + 20]",
    "mov ecx, [esp + 24]",
    "mov edx, [esp + 28]",
    "2:",
    "mov eax, [esp + 16]",
    "int 0x80",
    "cmp eax, -4", // -EINTR
    "je 2b",
    "pop edi",
    "pop esi",
    "pop ebx",
    "ret",
);

// The memory routines the compiler calls: `memcpy`, and `memcmp` with `bcmp` at the same
// address (memcmp's answer is bcmp's: zero when equal). size: musl's for i386 take 108 bytes (its
// libc.a is position-independent code, and its bcmp a call to memcmp through the GOT); these,
// a `rep movsb` and a `repe cmpsb`, take 54. The direction flag is clear at every call (System
// V ABI), so both go forward. Not in test or hosted builds, which link the C library's.
#[cfg(not(any(test, feature = "hosted")))]
core::arch::global_asm!(
    ".globl memcpy, memcmp, bcmp",
    "memcpy:",
    "push esi",
    "push edi",
    "mov edi, [esp + 12]",
    "mov esi, [esp + 16]",
    "mov ecx, [esp + 20]",
    "mov eax, edi",
    "rep movsb",
    "pop edi",
    "pop esi",
    "ret",
    "memcmp:",
    "bcmp:",
    "push esi",
    "push edi",
    "mov esi, [esp + 12]",
    "mov edi, [esp + 16]",
    "mov ecx, [esp + 20]",
    "xor eax, eax", // 0, and the zero flag set: n = 0 compares equal
    "repe cmpsb",
    "je 2f",
    "movzx eax, byte ptr [esi - 1]",
    "movzx ecx, byte ptr [edi - 1]",
    "sub eax, ecx",
    "2:",
    "pop edi",
    "pop esi",
    "ret",
);
