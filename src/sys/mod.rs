//! The only module that talks to the kernel.
//!
//! Every `unsafe` block of the crate is here, behind safe wrappers: descriptors are owned by
//! [`Fd`] (closed on drop), failures are [`Errno`] values, and `EINTR` is retried in one place,
//! `arch::retry`. Sockets are always opened with `SOCK_NONBLOCK | SOCK_CLOEXEC`.
//!
//! The program has its own entry point, `start::entry`, and makes every system call itself
//! (one `syscall`, `svc 0`, `ecall`, `sc` or `int 0x80` instruction in `arch::raw` or
//! `arch::retry`): musl's start-up code (TLS, errno, stdio set-up) never runs, so no libc
//! function may be called; musl provides only the memory routines (`memcpy`, `memcmp`,
//! `bcmp`), which touch neither errno nor TLS (where the standard library is built from source
//! there is no libc.a, and compiler_builtins provides them; i386 and ppc64le have their own,
//! in `arch/`).
//! `.ci/run` checks which parts of libc.a end up in the binary. The libc crate provides the
//! constants and types: the system call numbers are the kernel's.
//!
//! Layout, by concern and then by architecture (as mio and rustix): this file holds what every
//! concern shares (`syscall!`, [`Errno`], [`Fd`]); each concern has a file of its own,
//! re-exported here, so the rest of the crate names everything as `sys::name`: `net`
//! (sockets), `epoll`, `signals` (shutdown signals and the eventfd wake-up), `clock`, `process`
//! (workers, resources and [`Reserved`] memory), `seccomp` (the lock-down), `args` (arguments
//! and environment), `io` (standard output and small files), `start` (the entry point, after
//! its first instructions) and `vdso` (the vDSO's `clock_gettime`). Everything that differs by CPU is in
//! `arch/`, one file per architecture: `arch/mod.rs` says what such a file provides.
#![allow(unsafe_code)]

use arch::{raw, retry};
use core::ffi::c_int;

/// An error number reported by the kernel.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The operation would block (`EAGAIN`).
    pub const AGAIN: Errno = Errno(libc::EAGAIN);

    /// True when the process or system ran out of descriptors or buffers: `accept` must back off
    /// instead of retrying at once, or a level-triggered listener spins at 100% CPU.
    pub fn is_resource_exhaustion(self) -> bool {
        matches!(
            self.0,
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
        )
    }

    /// True for the errors saying the kernel (or an emulator) lacks a feature.
    pub fn is_unsupported(self) -> bool {
        matches!(self.0, libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP)
    }

    /// A short description for the errors a user can act on; others print as `errno N`.
    pub fn describe(self) -> &'static [u8] {
        match self.0 {
            libc::EADDRINUSE => b"address already in use",
            libc::EACCES => b"permission denied",
            libc::EADDRNOTAVAIL => b"address not available",
            libc::ECONNREFUSED => b"connection refused",
            libc::ETIMEDOUT | libc::EAGAIN | libc::EINPROGRESS => b"timed out",
            libc::ENOSYS | libc::EOPNOTSUPP => b"not supported by the kernel or emulator",
            _ => b"",
        }
    }
}

/// Result of a system call.
pub type Result<T> = core::result::Result<T, Errno>;

/// The kernel's result as a [`Result`]: -4095..=-1 is an [`Errno`].
fn result(r: isize) -> Result<usize> {
    if (-4095..0).contains(&r) {
        Err(Errno(-r as i32))
    } else {
        Ok(r as usize)
    }
}

/// Makes system call `n` with up to five arguments, retrying on `EINTR`, as a [`Result`]; the
/// call takes the first `K` (see `arch::retry`). Inline: each site tests the register `retry`
/// returns.
///
/// # Safety
/// The arguments must be what system call `n` expects: pointers to live memory of the size the
/// call reads or writes.
// size: a `Result` returned through memory would cost every site a stack slot and its loads
// (192 bytes on x86-64 in all).
#[inline(always)]
unsafe fn call<const K: usize>(
    n: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
) -> Result<usize> {
    // SAFETY: passed on from the caller.
    result(unsafe { retry::<K>(n, a, b, c, d, e) })
}

/// System call numbers, as `syscall!` and the seccomp filter name them: the libc crate's
/// (`libc::SYS_*`, the kernel's numbers for the target), and the one it does not name.
mod nr {
    pub(super) use libc::*;
    /// `clock_gettime64` (Linux 5.1): the clock with 64-bit seconds on 32-bit ABIs, whose
    /// `clock_gettime` has 32-bit ones; 403 on each of them.
    #[cfg(target_pointer_width = "32")]
    #[allow(non_upper_case_globals)]
    pub(super) const SYS_clock_gettime64: libc::c_long = 403;
}

/// `syscall!(SYS_name(args..))`: system call `SYS_name` through [`call`], each argument converted
/// to a register with `as usize` (pointers included). The call takes the arguments given: an
/// argument the kernel reads must be given, zero included (the registers after them may hold
/// anything on some architectures, see `arch::retry`). Like [`call`] it is unsafe: each use is
/// an `unsafe` block whose `SAFETY` comment says why its arguments are what the call expects.
macro_rules! syscall {
    ($n:ident($($a:expr),* $(,)?)) => {
        syscall!(@ $n, { <[&str]>::len(&[$(stringify!($a)),*]) }, $($a,)* 0, 0, 0, 0, 0)
    };
    (@ $n:ident, $k:expr, $a:expr, $b:expr, $c:expr, $d:expr, $e:expr $(, $rest:expr)*) => {
        $crate::sys::call::<$k>(
            $crate::sys::nr::$n,
            $a as usize,
            $b as usize,
            $c as usize,
            $d as usize,
            $e as usize,
        )
    };
}

// By concern, as the rest of the crate sees them (re-exported below).
mod arch;
mod args;
mod clock;
mod epoll;
mod io;
mod net;
mod process;
mod seccomp;
mod signals;
mod start;
mod vdso;

pub use args::Args;
pub use clock::{monotonic, monotonic_nanos, wall_clock, Time};
pub use epoll::{interest, Epoll, Event};
pub use io::{read_file, stdout_nonblocking, write, write_parts, MAX_PARTS, STDERR, STDOUT};
pub use net::{accept, connect_with_timeout, listen, local_addr, recv, send, shutdown_write};
pub use process::{
    close_inherited, exit, fd_limit, fork, kill, raise_fd_limit, reap_child, shared_counters,
    usable_cpus, Pid, Process, Reserved,
};
pub use seccomp::{lock_down, seccomp_available};
pub use signals::{eventfd, notify, shutdown_signals, signal, take_signal};

/// An owned file descriptor, closed on drop.
pub struct Fd(c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // close(2): not retried on EINTR, as the descriptor is released either way on Linux.
        // SAFETY: Fd owns the descriptor; nothing else closes it.
        unsafe { raw(libc::SYS_close, self.0 as usize, 0, 0, 0, 0, 0) };
    }
}

impl Fd {
    /// The raw descriptor number, for logs and epoll registration.
    pub fn raw(&self) -> c_int {
        self.0
    }
}

/// Referenced by the precompiled `core` in unoptimised builds (`cargo build`); never called,
/// as every panic aborts.
#[cfg(not(any(test, feature = "hosted")))]
#[no_mangle]
extern "C" fn rust_eh_personality() {}
