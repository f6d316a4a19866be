//! i386 (32-bit x86): `int 0x80` with the number in eax and the arguments in ebx, ecx, edx,
//! esi, edi, ebp; the result in eax, nothing else written (the kernel's i386 system call ABI).
//!
//! Rust's inline asm cannot name esi or ebp as operands (LLVM keeps them for its base and frame
//! pointers), and with them out there are fewer free registers than a call has values. So both
//! functions are written whole in asm, as naked functions with the C calling convention: the
//! caller pushes the number and the arguments, and the function loads each into its register,
//! saving and restoring the callee-saved ebx, esi, edi and ebp around the call.

/// `AUDIT_ARCH_I386`: the architecture seccomp reports for this ABI's system calls (on an
/// x86-64 kernel, calls through its 64-bit and x32 ABIs report others, and the filter kills
/// them).
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
#[unsafe(naked)]
pub(in crate::sys) unsafe extern "C" fn raw(
    n: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
    f: usize,
) -> isize {
    // After the four pushes, the return address is at [esp + 16] and the arguments follow it.
    core::arch::naked_asm!(
        "push ebp",
        "push ebx",
        "push esi",
        "push edi",
        "mov eax, [esp + 20]",
        "mov ebx, [esp + 24]",
        "mov ecx, [esp + 28]",
        "mov edx, [esp + 32]",
        "mov esi, [esp + 36]",
        "mov edi, [esp + 40]",
        "mov ebp, [esp + 44]",
        "int 0x80",
        "pop edi",
        "pop esi",
        "pop ebx",
        "pop ebp",
        "ret",
    )
}

/// System call `n` with five arguments until it is not interrupted; the kernel's result (see
/// [`super`]).
///
/// # Safety
/// The arguments must be what system call `n` expects.
#[unsafe(naked)]
pub(in crate::sys) unsafe extern "C" fn retry(
    n: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
) -> isize {
    // As `raw`, but `int 0x80` keeps the argument registers, so an interrupted call is made
    // again by reloading eax.
    core::arch::naked_asm!(
        "push ebx",
        "push esi",
        "push edi",
        "mov ebx, [esp + 20]",
        "mov ecx, [esp + 24]",
        "mov edx, [esp + 28]",
        "mov esi, [esp + 32]",
        "mov edi, [esp + 36]",
        "2:",
        "mov eax, [esp + 16]",
        "int 0x80",
        "cmp eax, -4", // -EINTR
        "je 2b",
        "pop edi",
        "pop esi",
        "pop ebx",
        "ret",
    )
}
