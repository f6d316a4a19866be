//! epoll: readiness of many descriptors in one call.

use super::{Fd, Result};
use core::ffi::c_int;

/// One readiness report from [`Epoll::wait`].
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Event(libc::epoll_event);

impl Event {
    /// An empty event, to fill an array before waiting.
    pub const EMPTY: Event = Event(libc::epoll_event { events: 0, u64: 0 });

    /// The token given at registration.
    pub fn token(&self) -> u64 {
        self.0.u64
    }

    /// The kernel's event bits (`EPOLLIN`, `EPOLLERR`, ...).
    pub fn bits(&self) -> u32 {
        self.0.events
    }
}

/// Readiness interest bits, re-exported so the event loop needs no libc.
pub mod interest {
    /// Data to read (or end of stream, or a pending connection).
    pub const READ: u32 = libc::EPOLLIN as u32;
    /// Room in the send buffer.
    pub const WRITE: u32 = libc::EPOLLOUT as u32;
    /// Peer closed its sending side.
    pub const READ_CLOSED: u32 = libc::EPOLLRDHUP as u32;
    /// Report edges (state changes) only: the owner reads and writes until `EAGAIN`.
    pub const EDGE: u32 = libc::EPOLLET as u32;
    /// Error or hang-up: always reported, never requested.
    pub const FAILED: u32 = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
}

/// An epoll instance ([epoll(7)]).
///
/// [epoll(7)]: https://man7.org/linux/man-pages/man7/epoll.7.html
pub struct Epoll(Fd);

impl Epoll {
    /// Creates a close-on-exec epoll instance ([epoll_create1(2)]).
    ///
    /// [epoll_create1(2)]: https://man7.org/linux/man-pages/man2/epoll_create1.2.html
    pub fn new() -> Result<Epoll> {
        // SAFETY: no pointer arguments.
        unsafe { syscall!(SYS_epoll_create1(libc::EPOLL_CLOEXEC)) }.map(|fd| Epoll(Fd(fd as c_int)))
    }

    /// Watches `fd` for `events`, reporting `token` ([epoll_ctl(2)]).
    ///
    /// [epoll_ctl(2)]: https://man7.org/linux/man-pages/man2/epoll_ctl.2.html
    pub fn add(&self, fd: &Fd, token: u64, events: u32) -> Result<()> {
        let ev = libc::epoll_event { events, u64: token };
        let p = &ev as *const libc::epoll_event;
        // SAFETY: `p` points to the live `ev`; the kernel copies it.
        unsafe { syscall!(SYS_epoll_ctl(self.0 .0, libc::EPOLL_CTL_ADD, fd.0, p)) }.map(drop)
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: &Fd) -> Result<()> {
        // SAFETY: EPOLL_CTL_DEL reads no event: the pointer may be null.
        unsafe { syscall!(SYS_epoll_ctl(self.0 .0, libc::EPOLL_CTL_DEL, fd.0)) }.map(drop)
    }

    /// Waits for events, at most `timeout_ms` (-1: forever) ([epoll_wait(2)], as `epoll_pwait`
    /// with no signal mask: arm64 has no plain `epoll_wait`).
    ///
    /// [epoll_wait(2)]: https://man7.org/linux/man-pages/man2/epoll_wait.2.html
    pub fn wait(&self, events: &mut [Event], timeout_ms: c_int) -> Result<usize> {
        let (p, n) = (events.as_mut_ptr(), events.len());
        // SAFETY: `p` points to `n` writable events; no signal mask.
        unsafe { syscall!(SYS_epoll_pwait(self.0 .0, p, n, timeout_ms, 0)) }
    }
}
