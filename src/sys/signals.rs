//! Signals and wake-ups: the shutdown signals through a signalfd, and the eventfd that wakes
//! every worker.

use super::{Fd, Result};
use core::ffi::c_int;
use core::mem::{size_of, zeroed};

/// Blocks SIGTERM, SIGINT and SIGCHLD (for this process and the workers it forks) and returns
/// a signalfd that reports them ([signalfd(2)]). SIGPIPE is blocked too (never read), so
/// writing to a closed stdout is an `EPIPE` error, not death.
///
/// [signalfd(2)]: https://man7.org/linux/man-pages/man2/signalfd.2.html
pub fn shutdown_signals() -> Result<Fd> {
    // The kernel's sigset is one 64-bit word, bit N-1 for signal N (rt_sigprocmask(2)).
    let bit = |sig: c_int| 1u64 << (sig - 1);
    let handled = bit(libc::SIGTERM) | bit(libc::SIGINT) | bit(libc::SIGCHLD);
    let blocked = handled | bit(libc::SIGPIPE);
    // SAFETY: the new mask is a live u64, the kernel's 8-byte sigset; the old one is not asked for.
    unsafe {
        syscall!(SYS_rt_sigprocmask(
            libc::SIG_BLOCK,
            &blocked as *const u64,
            0,
            8
        ))
    }?;
    let flags = libc::SFD_NONBLOCK | libc::SFD_CLOEXEC;
    // SAFETY: the mask is a live u64, the kernel's 8-byte sigset.
    unsafe { syscall!(SYS_signalfd4(-1i32, &handled as *const u64, 8, flags)) }
        .map(|fd| Fd(fd as c_int))
}

/// Signal numbers the server handles.
pub mod signal {
    /// A child process ended.
    pub const CHILD: u32 = libc::SIGCHLD as u32;
}

/// Reads one pending signal from a signalfd; returns its number.
pub fn take_signal(fd: &Fd) -> Result<u32> {
    // SAFETY: all-zero is a valid signalfd_siginfo.
    let mut info: libc::signalfd_siginfo = unsafe { zeroed() };
    let p = &mut info as *mut libc::signalfd_siginfo;
    // SAFETY: `p` points to the writable `info`, of the size passed.
    unsafe { syscall!(SYS_read(fd.0, p, size_of::<libc::signalfd_siginfo>())) }
        .map(|_| info.ssi_signo)
}

/// A non-blocking eventfd ([eventfd(2)]): one write wakes every epoll watching it.
///
/// [eventfd(2)]: https://man7.org/linux/man-pages/man2/eventfd.2.html
pub fn eventfd() -> Result<Fd> {
    // SAFETY: no pointer arguments.
    unsafe { syscall!(SYS_eventfd2(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)) }
        .map(|fd| Fd(fd as c_int))
}

/// Makes an eventfd readable (level-triggered, so it stays readable).
pub fn notify(fd: &Fd) {
    let one: u64 = 1;
    // SAFETY: `one` is a live u64, the 8 bytes an eventfd takes.
    let _ = unsafe { syscall!(SYS_write(fd.0, &one as *const u64, 8)) };
}
