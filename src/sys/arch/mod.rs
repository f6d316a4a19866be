//! Everything that differs by CPU architecture, one file each, chosen by the table below: the
//! rest of `sys` never names a register or an instruction. A new architecture is a file that
//! provides the items re-exported here, and its line in the table.
//!
//! - `raw(n, a, b, c, d, e, f)`: one system call with six arguments ([syscall(2)]); the
//!   kernel's result, -4095..=-1 being `-errno` (where the kernel reports failure otherwise,
//!   as ppc64 does with a flag, the asm converts). Unused arguments are zero: the kernel
//!   ignores registers a call does not take. `#[inline(always)]`: it is one instruction.
//! - `retry(n, a, b, c, d, e)`: system call `n` until it is not interrupted (`EINTR`); the
//!   kernel's result, as `raw`. Five arguments, not six: then every argument travels in a
//!   register (no call needs a sixth but `mmap`, which goes through `raw_mmap`). The loop is
//!   inside the asm where the kernel keeps the argument registers: a retry reloads one
//!   register, where a loop around `raw` keeps a copy of every argument (size: 32 bytes more on
//!   x86-64, 16 on arm64). `#[inline(never)]`: one copy serves every call site. The rest of
//!   `sys` calls it as `retry::<K>(n, a, b, c, d, e)`, the call taking the first `K`
//!   arguments: below, for every architecture but ppc64le, that passes all five (the others
//!   zero). ppc64le's `retry::<K>` sets only the `K` registers the call reads (`powerpc64.rs`
//!   says why).
//! - `tinyapi_start` (`global_asm!`, not in test or hosted builds): the program's first
//!   instructions, which end the frame-pointer chain and call [`super::start::entry`] with the
//!   initial stack pointer, on a stack aligned as the calling convention wants.
//! - `AUDIT_ARCH`: the `AUDIT_ARCH_*` value seccomp reports for this build's system call ABI;
//!   the filter kills calls made through any other.
//! - `VDSO_CLOCK_GETTIME`: the vDSO's name for `clock_gettime` ([vdso(7)]). The lookup matches
//!   the name alone, whatever the symbol's version (`LINUX_2.6`, ...): a vDSO defines it once.
//!
//! Three more items are the same on every architecture but s390x, given below for the others
//! (a file provides them only where they differ):
//!
//! - `raw_mmap(n, a, b, c, d, e, f)`: `mmap` (system call `n`) with its six arguments; `raw`,
//!   except where `mmap` takes a pointer to them (s390x).
//! - `CLONE_FORK`: clone(2)'s first two arguments for a fork, the flags (`SIGCHLD` alone) and
//!   the new stack (none), in the order the kernel takes them.
//! - `VdsoHashWord`: the type of an entry of the vDSO's `DT_HASH` table (`u32` in the gABI).
//!
//! The functions are unsafe with one contract: the arguments must be what system call `n`
//! expects, pointers to live memory of the size the call reads or writes.
//!
//! On 32-bit ABIs `VDSO_CLOCK_GETTIME` names the clock with 64-bit seconds
//! (`__vdso_clock_gettime64`, as the system call is `clock_gettime64` there). On i386 `raw` and
//! `retry` choose, inline, between calls to functions written in asm (`x86.rs` says why).
//!
//! [syscall(2)]: https://man7.org/linux/man-pages/man2/syscall.2.html
//! [vdso(7)]: https://man7.org/linux/man-pages/man7/vdso.7.html

#[cfg_attr(target_arch = "x86_64", path = "x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "aarch64.rs")]
#[cfg_attr(target_arch = "x86", path = "x86.rs")]
#[cfg_attr(target_arch = "arm", path = "arm.rs")]
#[cfg_attr(target_arch = "riscv64", path = "riscv64.rs")]
#[cfg_attr(target_arch = "powerpc64", path = "powerpc64.rs")]
#[cfg_attr(target_arch = "s390x", path = "s390x.rs")]
#[cfg_attr(target_arch = "loongarch64", path = "loongarch64.rs")]
mod cpu;

#[cfg(target_arch = "powerpc64")]
pub(super) use cpu::retry;
pub(super) use cpu::{raw, AUDIT_ARCH, VDSO_CLOCK_GETTIME};
#[cfg(target_arch = "s390x")]
pub(super) use cpu::{raw_mmap, VdsoHashWord, CLONE_FORK};
#[cfg(not(target_arch = "powerpc64"))]
pub(super) use usual_retry::retry;
#[cfg(not(target_arch = "s390x"))]
pub(super) use {raw as raw_mmap, usual::*};

/// `retry` for the architectures where every call sets all five argument registers.
#[cfg(not(target_arch = "powerpc64"))]
mod usual_retry {
    /// System call `n` until it is not interrupted, through the architecture's `retry`, which
    /// sets all five argument registers whatever `K` says.
    ///
    /// # Safety
    /// The arguments must be what system call `n` expects.
    #[inline(always)]
    pub(in crate::sys) unsafe fn retry<const K: usize>(
        n: libc::c_long,
        a: usize,
        b: usize,
        c: usize,
        d: usize,
        e: usize,
    ) -> isize {
        // SAFETY: passed on from the caller.
        unsafe { super::cpu::retry(n, a, b, c, d, e) }
    }
}

/// The items every architecture but s390x shares (see the module documentation).
#[cfg(not(target_arch = "s390x"))]
mod usual {
    /// clone(2)'s flags and new stack for a fork.
    pub(in crate::sys) const CLONE_FORK: [usize; 2] = [libc::SIGCHLD as usize, 0];

    /// An entry of the vDSO's `DT_HASH` table.
    pub(in crate::sys) type VdsoHashWord = u32;
}
