//! The only module that talks to the kernel.
//!
//! Every `unsafe` block of the crate is here, behind safe wrappers: descriptors are owned by
//! [`Fd`] (closed on drop), failures are [`Errno`] values, and `EINTR` is retried in one place,
//! [`retry`]. Sockets are always opened with `SOCK_NONBLOCK | SOCK_CLOEXEC`.
//!
//! The program has its own entry point, [`entry`], and makes every system call itself (one
//! `syscall` / `svc 0` instruction in [`raw`]): musl's start-up code (TLS, errno, stdio set-up)
//! never runs, so no libc function may be called; musl provides only the memory routines
//! (`memcpy`, `memcmp`, `bcmp`), which touch neither errno nor TLS.
//! `.ci/run` checks which parts of libc.a end up in the binary. The libc crate provides the
//! constants and types: the system call numbers are the kernel's, the same as before.
#![allow(unsafe_code)]

mod start;

use crate::addr::Addr;
use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::mem::{size_of, zeroed};
use core::sync::atomic::{AtomicBool, Ordering};

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

/// One system call with six arguments ([syscall(2)]); the kernel's result, `-errno` on failure.
/// Unused arguments are zero: the kernel ignores registers a call does not take.
///
/// # Safety
/// The arguments must be what system call `n` expects: pointers to live memory of the size the
/// call reads or writes.
///
/// [syscall(2)]: https://man7.org/linux/man-pages/man2/syscall.2.html
#[inline(always)]
unsafe fn raw(
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
    #[cfg(target_arch = "x86_64")]
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
    // SAFETY: the caller vouches for the arguments; `svc 0` clobbers nothing else.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a => r, in("x1") b, in("x2") c,
            in("x3") d, in("x4") e, in("x5") f,
            options(nostack, preserves_flags)
        );
    }
    r
}

/// The kernel's result as a [`Result`]: -4095..=-1 is an [`Errno`].
fn result(r: isize) -> Result<usize> {
    if (-4095..0).contains(&r) {
        Err(Errno(-r as i32))
    } else {
        Ok(r as usize)
    }
}

/// Makes system call `n` with up to five arguments, retrying on `EINTR`, as a [`Result`].
/// Inline: each site tests the register [`retry`] returns, where a `Result` returned through
/// memory would cost every site a stack slot and its loads (192 bytes on x86-64 in all).
///
/// # Safety
/// As for [`raw`].
#[inline(always)]
unsafe fn call(n: libc::c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> Result<usize> {
    // SAFETY: passed on from the caller.
    result(unsafe { retry(n, a, b, c, d, e) })
}

/// The loop of [`call`]: system call `n` until it is not interrupted; the kernel's result.
/// Five arguments, not six: then every argument travels in a register on both targets (no
/// call needs a sixth but `mmap`). The loop is inside the asm, as the kernel keeps the argument
/// registers: a retry reloads one register, where a loop around [`raw`] keeps a copy of every
/// argument (32 bytes more on x86-64, 16 on arm64).
///
/// # Safety
/// As for [`raw`].
#[inline(never)]
unsafe fn retry(n: libc::c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let r: isize;
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers only rcx and r11 and
    // keeps the argument registers, so an interrupted call is made again by reloading rax.
    #[cfg(target_arch = "x86_64")]
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
    // SAFETY: the caller vouches for the arguments; `svc 0` writes only x0, so an interrupted
    // call is made again by reloading x0.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!(
            "2:",
            "mov x0, {a}",
            "svc 0",
            "cmn x0, #4", // -EINTR
            "b.eq 2b",
            a = in(reg) a,
            in("x8") n,
            out("x0") r,
            in("x1") b, in("x2") c, in("x3") d, in("x4") e, in("x5") 0,
            options(nostack)
        );
    }
    r
}

/// `syscall!(SYS_name(args..))`: system call `SYS_name` through [`call`], each argument converted
/// to a register with `as usize` (pointers included), missing ones zero. Like [`call`] it is
/// unsafe: each use is an `unsafe` block whose `SAFETY` comment says why its arguments are
/// what the call expects.
macro_rules! syscall {
    ($n:ident($a:expr, $b:expr, $c:expr, $d:expr, $e:expr)) => {
        call(libc::$n, $a as usize, $b as usize, $c as usize, $d as usize, $e as usize)
    };
    ($n:ident($($a:expr),*)) => {
        syscall!($n($($a,)* 0))
    };
    ($n:ident($($a:expr,)*)) => {
        syscall!($n($($a),*))
    };
}

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

// ---------------------------------------------------------------------------------------------
// Sockets

/// `bind(2)` or `connect(2)` (system call `n`) of `fd` to `addr`: one copy of the code that
/// builds the socket address for both.
fn at_addr(n: libc::c_long, fd: &Fd, addr: &Addr) -> Result<usize> {
    // SAFETY: all-zero is a valid sockaddr_in6 (and, reinterpreted, sockaddr_in).
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    let len = if addr.v6 {
        sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sa.sin6_port = addr.port.to_be();
        sa.sin6_addr.s6_addr = addr.ip;
        size_of::<libc::sockaddr_in6>()
    } else {
        let p = &mut sa as *mut libc::sockaddr_in6 as *mut libc::sockaddr_in;
        // SAFETY: sockaddr_in is smaller than sockaddr_in6 and both are plain old data.
        unsafe {
            (*p).sin_family = libc::AF_INET as libc::sa_family_t;
            (*p).sin_port = addr.port.to_be();
            (*p).sin_addr.s_addr =
                u32::from_ne_bytes([addr.ip[12], addr.ip[13], addr.ip[14], addr.ip[15]]);
        }
        size_of::<libc::sockaddr_in>()
    };
    let p = &sa as *const libc::sockaddr_in6;
    // SAFETY: bind and connect read `len` bytes of the address at `p`.
    unsafe { call(n, fd.0 as usize, p as usize, len, 0, 0) }
}

// Out of line: inlined into `accept` and `local_addr` it costs 144 bytes (x86-64).
#[inline(never)]
fn from_sockaddr(sa: &libc::sockaddr_in6) -> Addr {
    if sa.sin6_family == libc::AF_INET6 as libc::sa_family_t {
        Addr {
            ip: sa.sin6_addr.s6_addr,
            port: u16::from_be(sa.sin6_port),
            v6: true,
        }
    } else {
        let p = sa as *const libc::sockaddr_in6 as *const libc::sockaddr_in;
        // SAFETY: the kernel wrote a sockaddr_in into storage large enough for either.
        let (ip, port) = unsafe { ((*p).sin_addr.s_addr.to_ne_bytes(), (*p).sin_port) };
        Addr::v4(ip, u16::from_be(port))
    }
}

/// Sets socket option `name` to `value` (an int, or a struct such as `timeval`).
fn set_opt<T>(fd: &Fd, level: c_int, name: c_int, value: T) -> Result<()> {
    let v = &value as *const T;
    // SAFETY: `v` points to the live `value`, whose size is passed.
    unsafe { syscall!(SYS_setsockopt(fd.0, level, name, v, size_of::<T>())) }.map(drop)
}

fn stream_socket(addr: &Addr) -> Result<Fd> {
    let family = if addr.v6 {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: no pointer arguments.
    unsafe { syscall!(SYS_socket(family, kind)) }.map(|fd| Fd(fd as c_int))
}

/// Opens a non-blocking listening TCP socket on `addr` ([socket(7)], [listen(2)], [tcp(7)]).
/// Connections are handed over only once their first bytes arrived, or after `defer_secs`.
/// With `shared`, each worker binds its own socket to the same address (`SO_REUSEPORT`) and the
/// kernel spreads new connections evenly over them.
///
/// [socket(7)]: https://man7.org/linux/man-pages/man7/socket.7.html
/// [listen(2)]: https://man7.org/linux/man-pages/man2/listen.2.html
/// [tcp(7)]: https://man7.org/linux/man-pages/man7/tcp.7.html
pub fn listen(addr: &Addr, backlog: c_int, defer_secs: u32, shared: bool) -> Result<Fd> {
    let fd = stream_socket(addr)?;
    // SO_REUSEADDR: a restart may bind while old connections sit in TIME_WAIT.
    set_opt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    set_opt(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, shared as c_int)?;
    // TCP_NODELAY, inherited by every accepted socket (Linux): an answer must not wait for the
    // ACK of the previous one (Nagle + delayed ACK), and no per-connection call is needed.
    set_opt(&fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
    // TCP_DEFER_ACCEPT: accept returns a connection with its request already readable, so it
    // is read and answered at once, often without ever being registered with epoll; clients
    // that connect and send nothing cost no descriptor until the timeout.
    set_opt(
        &fd,
        libc::IPPROTO_TCP,
        libc::TCP_DEFER_ACCEPT,
        defer_secs as c_int,
    )?;
    at_addr(libc::SYS_bind, &fd, addr)?;
    // SAFETY: no pointer arguments.
    unsafe { syscall!(SYS_listen(fd.0, backlog)) }?;
    Ok(fd)
}

/// The address a socket is bound to ([getsockname(2)]): reveals the port chosen for port 0.
///
/// [getsockname(2)]: https://man7.org/linux/man-pages/man2/getsockname.2.html
pub fn local_addr(fd: &Fd) -> Result<Addr> {
    // SAFETY: all-zero is a valid sockaddr_in6.
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    let (p, l) = (
        &mut sa as *mut libc::sockaddr_in6,
        &mut len as *mut libc::socklen_t,
    );
    // SAFETY: `p` and `l` point to `sa` and its length, both live and writable.
    unsafe { syscall!(SYS_getsockname(fd.0, p, l)) }?;
    Ok(from_sockaddr(&sa))
}

/// Accepts a connection as a non-blocking, close-on-exec socket ([accept4(2)]).
///
/// [accept4(2)]: https://man7.org/linux/man-pages/man2/accept4.2.html
pub fn accept(listener: &Fd) -> Result<(Fd, Addr)> {
    // SAFETY: all-zero is a valid sockaddr_in6.
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let (p, l) = (
        &mut sa as *mut libc::sockaddr_in6,
        &mut len as *mut libc::socklen_t,
    );
    // SAFETY: `p` and `l` point to `sa` and its length, both live and writable.
    let fd = unsafe { syscall!(SYS_accept4(listener.0, p, l, flags)) }?;
    let fd = Fd(fd as c_int);
    Ok((fd, from_sockaddr(&sa)))
}

/// Connects a blocking socket whose connect, sends and receives each give up after
/// `timeout_ms` ([socket(7)] `SO_SNDTIMEO`, which Linux applies to connect too, and
/// `SO_RCVTIMEO`). For the probe, a short-lived client.
///
/// [socket(7)]: https://man7.org/linux/man-pages/man7/socket.7.html
pub fn connect_with_timeout(addr: &Addr, timeout_ms: u64) -> Result<Fd> {
    let family = if addr.v6 {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    // SAFETY: no pointer arguments.
    let fd = Fd(unsafe { syscall!(SYS_socket(family, kind)) }? as c_int);
    let tv = libc::timeval {
        tv_sec: (timeout_ms / 1000) as _,
        tv_usec: (timeout_ms % 1000 * 1000) as _,
    };
    set_opt(&fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, tv)?;
    set_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, tv)?;
    at_addr(libc::SYS_connect, &fd, addr)?;
    Ok(fd)
}

/// Reads into `buf` ([recv(2)], as `recvfrom` without an address); `Ok(0)` is end of stream.
///
/// [recv(2)]: https://man7.org/linux/man-pages/man2/recv.2.html
pub fn recv(fd: &Fd, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: `buf` is writable for the length passed; no source address is asked for.
    unsafe { syscall!(SYS_recvfrom(fd.0, buf.as_mut_ptr(), buf.len())) }
}

/// Sends from `buf` without ever raising SIGPIPE ([send(2)], `MSG_NOSIGNAL`).
///
/// [send(2)]: https://man7.org/linux/man-pages/man2/send.2.html
pub fn send(fd: &Fd, buf: &[u8]) -> Result<usize> {
    // SAFETY: `buf` is readable for the length passed; no destination address.
    unsafe {
        syscall!(SYS_sendto(
            fd.0,
            buf.as_ptr(),
            buf.len(),
            libc::MSG_NOSIGNAL
        ))
    }
}

/// Half-closes the sending side ([shutdown(2)]): the peer sees end of stream while unread input
/// can still be drained, so closing does not reset the connection under the last response.
///
/// [shutdown(2)]: https://man7.org/linux/man-pages/man2/shutdown.2.html
pub fn shutdown_write(fd: &Fd) {
    // Failure only means the socket is already shut or reset.
    // SAFETY: no pointer arguments.
    let _ = unsafe { syscall!(SYS_shutdown(fd.0, libc::SHUT_WR)) };
}

// ---------------------------------------------------------------------------------------------
// epoll

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

    /// The raw descriptor number of the instance.
    pub fn raw(&self) -> c_int {
        self.0.raw()
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
        unsafe { syscall!(SYS_epoll_pwait(self.0 .0, p, n, timeout_ms)) }
    }
}

// ---------------------------------------------------------------------------------------------
// Signals and wake-ups

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

// ---------------------------------------------------------------------------------------------
// Process, time, output

/// Writes to a descriptor once ([write(2)]).
///
/// [write(2)]: https://man7.org/linux/man-pages/man2/write.2.html
// Inline: the call site then tests the result in a register; out of line, the Result comes
// back through memory (48 bytes more on x86-64, 80 on arm64).
#[inline(always)]
pub fn write(fd: c_int, buf: &[u8]) -> Result<usize> {
    // SAFETY: `buf` is readable for the length passed.
    unsafe { syscall!(SYS_write(fd, buf.as_ptr(), buf.len())) }
}

/// Most parts [`write_parts`] writes.
pub const MAX_PARTS: usize = 8;

/// Writes the concatenation of `parts` (the first [`MAX_PARTS`]) to `fd` in one system call
/// ([writev(2)]): to a pipe, up to 4 KiB, that is one atomic write, and no buffer is needed.
///
/// [writev(2)]: https://man7.org/linux/man-pages/man2/writev.2.html
pub fn write_parts(fd: c_int, parts: &[&[u8]]) {
    // Each element written once: a zeroed array would be a memset call on arm64.
    let iov: [libc::iovec; MAX_PARTS] = core::array::from_fn(|i| {
        let p = parts.get(i).copied().unwrap_or_default();
        libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        }
    });
    let n = parts.len().min(MAX_PARTS);
    // SAFETY: `iov` holds `n` (ptr, len) pairs of live byte slices, read by the kernel only.
    let _ = unsafe { syscall!(SYS_writev(fd, iov.as_ptr(), n)) };
}

/// Standard output.
pub const STDOUT: c_int = 1;
/// Standard error.
pub const STDERR: c_int = 2;

/// Makes stdout non-blocking when it is a pipe or socket, so a reader that stops reading makes
/// log writes fail with `EAGAIN` (lines dropped) instead of stalling the server.
pub fn stdout_nonblocking() {
    // SAFETY: all-zero is a valid stat (the kernel's layout is musl's on Linux).
    let mut st: libc::stat = unsafe { zeroed() };
    // SAFETY: `st` is a writable `stat`.
    if unsafe { syscall!(SYS_fstat(STDOUT, &mut st as *mut libc::stat)) }.is_ok() {
        let kind = st.st_mode & libc::S_IFMT;
        if kind == libc::S_IFIFO || kind == libc::S_IFSOCK {
            // SAFETY: no pointer arguments.
            if let Ok(flags) = unsafe { syscall!(SYS_fcntl(STDOUT, libc::F_GETFL)) } {
                // SAFETY: no pointer arguments.
                let _ = unsafe {
                    syscall!(SYS_fcntl(
                        STDOUT,
                        libc::F_SETFL,
                        flags | libc::O_NONBLOCK as usize
                    ))
                };
            }
        }
    }
}

/// Ends the whole process (every thread) at once with `code` ([exit_group(2)]).
///
/// [exit_group(2)]: https://man7.org/linux/man-pages/man2/exit_group.2.html
pub fn exit(code: c_int) -> ! {
    loop {
        // SAFETY: exit_group takes only an integer and does not return.
        unsafe { raw(libc::SYS_exit_group, code as usize, 0, 0, 0, 0, 0) };
    }
}

/// Seconds and nanoseconds of a clock.
#[derive(Clone, Copy)]
pub struct Time {
    /// Whole seconds.
    pub secs: u64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

fn clock(id: libc::clockid_t) -> Time {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // The vDSO answers without entering the kernel (~110 ns less per read); the system call
    // serves where there is none (valgrind, some emulators).
    if !start::vdso_clock(id, &mut ts) {
        // SAFETY: `ts` is a writable `timespec`.
        let _ = unsafe { syscall!(SYS_clock_gettime(id, &mut ts as *mut libc::timespec)) };
    }
    Time {
        secs: ts.tv_sec as u64,
        nanos: ts.tv_nsec as u32,
    }
}

/// Wall-clock time since the Unix epoch (for `Date` and log stamps).
pub fn wall_clock() -> Time {
    clock(libc::CLOCK_REALTIME)
}

/// Monotonic time (for durations, uptime and timeouts).
pub fn monotonic() -> Time {
    clock(libc::CLOCK_MONOTONIC)
}

/// Monotonic time in nanoseconds (for durations).
pub fn monotonic_nanos() -> u64 {
    let t = monotonic();
    t.secs * 1_000_000_000 + t.nanos as u64
}

/// The number of CPUs this process may run on ([sched_getaffinity(2)]): respects
/// `taskset` and `docker run --cpuset-cpus`.
///
/// [sched_getaffinity(2)]: https://man7.org/linux/man-pages/man2/sched_getaffinity.2.html
pub fn usable_cpus() -> usize {
    let mut set = [0u64; 16]; // 1024 CPUs, the kernel's default cpumask size
    let p = set.as_mut_ptr();
    // SAFETY: `p` points to `set`, writable for the size passed.
    match unsafe { syscall!(SYS_sched_getaffinity(0, size_of::<[u64; 16]>(), p)) } {
        Ok(_) => (set.iter().map(|w| ones(*w)).sum::<usize>()).max(1),
        Err(_) => 1,
    }
}

/// The number of bits set in `w`, one turn per bit: x86-64's baseline has no popcnt
/// instruction, and `count_ones` there becomes a bit-twiddling sequence 80 bytes longer.
#[cfg(target_arch = "x86_64")]
fn ones(mut w: u64) -> usize {
    let mut n = 0;
    while w != 0 {
        w &= w - 1;
        n += 1;
    }
    n
}

/// The number of bits set in `w` (arm64's `cnt`).
#[cfg(not(target_arch = "x86_64"))]
fn ones(w: u64) -> usize {
    w.count_ones() as usize
}

/// Reads the start of the file at `path` into `into` ([openat(2)], one [read(2)]); returns
/// the number of bytes read, 0 when the file cannot be opened or read. The path ends at its
/// first NUL; without one, nothing is opened. For the small files of `/proc` and `/sys` the
/// one read returns them whole.
///
/// [openat(2)]: https://man7.org/linux/man-pages/man2/openat.2.html
/// [read(2)]: https://man7.org/linux/man-pages/man2/read.2.html
pub fn read_file(path: &[u8], into: &mut [u8]) -> usize {
    let mut n = 0;
    // The kernel reads the path up to its NUL, which this keeps inside `path`. Not contains():
    // that links core's memchr, 160 bytes.
    #[allow(clippy::manual_contains)]
    if path.iter().any(|&b| b == 0) {
        let flags = libc::O_RDONLY | libc::O_CLOEXEC;
        // SAFETY: `path` holds a NUL (checked above), so the kernel reads only inside it.
        if let Ok(fd) = unsafe { syscall!(SYS_openat(libc::AT_FDCWD, path.as_ptr(), flags)) } {
            let fd = Fd(fd as c_int);
            // SAFETY: `into` is writable for the length passed.
            n = unsafe { syscall!(SYS_read(fd.0, into.as_mut_ptr(), into.len())) }.unwrap_or(0);
        }
    }
    n
}

/// Raises the soft limit on open descriptors to the hard limit ([setrlimit(2)]): each
/// connection is a descriptor, and the common soft default of 1024 is far below what one
/// worker can hold.
///
/// [setrlimit(2)]: https://man7.org/linux/man-pages/man2/setrlimit.2.html
pub fn raise_fd_limit() {
    let mut lim = fd_limits();
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: the new limit points to the live `lim`; the old one is not asked for.
        let _ = unsafe {
            syscall!(SYS_prlimit64(
                0,
                libc::RLIMIT_NOFILE,
                &lim as *const libc::rlimit
            ))
        };
    }
}

/// The soft limit on open descriptors ([getrlimit(2)]); unlimited if it cannot be read.
///
/// [getrlimit(2)]: https://man7.org/linux/man-pages/man2/getrlimit.2.html
pub fn fd_limit() -> u64 {
    fd_limits().rlim_cur
}

/// The soft and hard limits on open descriptors; unlimited if they cannot be read.
fn fd_limits() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    let old = &mut lim as *mut libc::rlimit;
    // SAFETY: `old` points to the writable `lim`; no new limit is set.
    let _ = unsafe { syscall!(SYS_prlimit64(0, libc::RLIMIT_NOFILE, 0, old)) };
    lim
}

// ---------------------------------------------------------------------------------------------
// Program arguments and environment

/// The program's command-line arguments (without the program name) and environment.
#[derive(Clone, Copy)]
pub struct Args {
    argc: usize,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
}

/// The bytes of the NUL-terminated string at `p`, without the NUL. A plain loop: `CStr` calls
/// musl's `strlen`, 77 bytes more for strings this short.
///
/// # Safety
/// `p` points to a NUL-terminated string that lives, unchanged, for the whole process.
pub(crate) unsafe fn c_str(p: *const libc::c_char) -> &'static [u8] {
    let mut n = 0;
    // The loop counts down a bound no string reaches, which keeps LLVM from making it a
    // strlen call.
    let mut left = isize::MAX as usize;
    // SAFETY: every byte up to the NUL is part of the string (the caller's promise).
    while left > 0 && unsafe { *p.add(n) } != 0 {
        n += 1;
        left -= 1;
    }
    // SAFETY: the `n` bytes before the NUL, live for the whole process.
    unsafe { core::slice::from_raw_parts(p.cast::<u8>(), n) }
}

impl Args {
    /// The `i`-th argument (0: first after the program name).
    pub fn get(&self, i: usize) -> Option<&'static [u8]> {
        if i + 1 >= self.argc {
            return None;
        }
        // SAFETY: the C runtime passes argc valid NUL-terminated strings that live for the
        // whole process.
        Some(unsafe { c_str(*self.argv.add(i + 1)) })
    }

    /// The value of environment variable `name`, if set. Read from `main`'s environment
    /// block directly: getenv(3) would pull in three more string functions.
    pub fn env(&self, name: &[u8]) -> Option<&'static [u8]> {
        let mut p = self.envp;
        loop {
            // SAFETY: envp is a null-terminated array of NUL-terminated strings that live for
            // the whole process and are never modified by this program.
            let entry = unsafe { *p };
            if entry.is_null() {
                return None;
            }
            // SAFETY: a non-null entry of envp is a NUL-terminated string (as above).
            let entry = unsafe { c_str(entry) };
            if let Some(rest) = entry.strip_prefix(name) {
                if let Some(value) = rest.strip_prefix(b"=") {
                    return Some(value);
                }
            }
            // SAFETY: `entry` was not the terminating null, so the array goes on past `p`.
            p = unsafe { p.add(1) };
        }
    }
}

/// Referenced by the precompiled `core` in unoptimised builds (`cargo build`); never called,
/// as every panic aborts.
#[cfg(not(any(test, feature = "hosted")))]
#[no_mangle]
extern "C" fn rust_eh_personality() {}

// ---------------------------------------------------------------------------------------------
// Worker processes and statically reserved memory

/// Proof of being the program's one flow of control: made once, in `main`, and passed down
/// by `&mut`. tinyapi has no threads (workers are processes), so holding `&mut Process` means
/// nothing else in this process is running code that could hold another.
pub struct Process(());

/// Memory reserved at build time (in `.bss`: zero pages that cost nothing until touched) and
/// handed out at most once per process, as an exclusive `&'static mut`.
pub struct Reserved<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reachable only through `take`, which hands it out once, to a caller
// holding the process's unique `&mut Process`.
unsafe impl<T: Send> Sync for Reserved<T> {}

impl<T> Reserved<T> {
    /// Wraps a value; with an all-zero `value` the static lands in `.bss`, not in the file.
    pub const fn new(value: T) -> Self {
        Reserved {
            taken: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, on the first call only. A plain load and store, not an atomic swap: the
    /// `&mut Process` rules out a concurrent caller (and an arm64 swap would pull in a CPU
    /// probe that runs at every start).
    #[allow(clippy::mut_from_ref)] // the flag and the token make the borrow unique
    pub fn take(&'static self, _: &mut Process) -> Option<&'static mut T> {
        if self.taken.load(Ordering::Relaxed) {
            return None;
        }
        self.taken.store(true, Ordering::Relaxed);
        // SAFETY: the flag lets one caller past, and `&mut Process` says no other call runs.
        Some(unsafe { &mut *self.value.get() })
    }
}

/// A process id.
pub type Pid = i32;

/// Starts a copy of this process ([clone(2)] with `SIGCHLD`, i.e. fork without musl's
/// atfork machinery, which a single-threaded program does not need). Returns `None` in the
/// child and the child's pid in the parent. The child asks for SIGKILL when its parent dies,
/// so workers never outlive the server.
///
/// [clone(2)]: https://man7.org/linux/man-pages/man2/clone.2.html
pub fn fork() -> Result<Option<Pid>> {
    // SAFETY: no pointer arguments.
    let parent = unsafe { syscall!(SYS_getpid()) };
    // SAFETY: SIGCHLD alone, no CLONE_VM and no stack: a fork, whose child goes on with its own copy of this memory.
    let pid = unsafe { syscall!(SYS_clone(libc::SIGCHLD)) }?;
    if pid != 0 {
        return Ok(Some(pid as Pid));
    }
    // SAFETY: no pointer arguments.
    let _ = unsafe { syscall!(SYS_prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL)) };
    // The parent may have died before the request took effect: then nobody will signal.
    // SAFETY: no pointer arguments.
    if unsafe { syscall!(SYS_getppid()) } != parent {
        exit(1);
    }
    Ok(None)
}

/// Reaps one exited child without waiting ([wait4(2)], `WNOHANG`); returns its pid.
///
/// [wait4(2)]: https://man7.org/linux/man-pages/man2/wait4.2.html
pub fn reap_child() -> Option<Pid> {
    // SAFETY: neither a status nor a usage pointer is passed.
    match unsafe { syscall!(SYS_wait4(-1i32, 0, libc::WNOHANG)) } {
        Ok(pid) if pid > 0 => Some(pid as Pid),
        _ => None,
    }
}

/// Sends SIGKILL to a child ([kill(2)]).
///
/// [kill(2)]: https://man7.org/linux/man-pages/man2/kill.2.html
pub fn kill(pid: Pid) {
    // SAFETY: no pointer arguments.
    let _ = unsafe { syscall!(SYS_kill(pid, libc::SIGKILL)) };
}

/// Counters shared by every worker process: anonymous shared memory ([mmap(2)]), zeroed by
/// the kernel, created before the workers are forked so all of them see the same pages.
///
/// [mmap(2)]: https://man7.org/linux/man-pages/man2/mmap.2.html
pub fn shared_counters(n: usize) -> Result<&'static [core::sync::atomic::AtomicU64]> {
    let len = n * size_of::<u64>();
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
    let fd = -1i32 as usize;
    // SAFETY: an anonymous mapping reads no memory of ours; offset 0.
    let p = result(unsafe { raw(libc::SYS_mmap, 0, len, prot as usize, flags as usize, fd, 0) })?;
    // SAFETY: the mapping is len bytes, page-aligned, zeroed, never unmapped; all-zero is a
    // valid AtomicU64 and atomics make concurrent access from the processes sound.
    Ok(unsafe { core::slice::from_raw_parts(p as *const core::sync::atomic::AtomicU64, n) })
}

// ---------------------------------------------------------------------------------------------
// Lock-down

/// The system calls a running worker makes, most frequent first (the filter tests them in
/// order). Everything else (open, execve, connect, mmap, ...) kills the process.
const ALLOWED: [libc::c_long; 15] = [
    libc::SYS_epoll_pwait, // Epoll::wait
    libc::SYS_recvfrom,    // recv
    libc::SYS_sendto,      // send
    libc::SYS_accept4,
    libc::SYS_close,
    libc::SYS_epoll_ctl,
    libc::SYS_write,  // the log, eventfd wake-up
    libc::SYS_writev, // messages (write_parts)
    libc::SYS_read,   // signalfd
    libc::SYS_shutdown,
    libc::SYS_clock_gettime, // only where the vDSO is missing
    libc::SYS_wait4,         // reaping workers
    libc::SYS_kill,          // stopping workers
    libc::SYS_exit_group,
    libc::SYS_restart_syscall,
];

/// The audit architecture the kernel reports for this build's system call ABI.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

const FILTER_LEN: usize = ALLOWED.len() + 5;

/// The seccomp-BPF program: check the architecture (a call through another ABI, such as x32
/// or i386, is killed), then allow exactly the calls in [`ALLOWED`].
static FILTER: [libc::sock_filter; FILTER_LEN] = {
    const fn op(code: u32, k: u32, jt: usize, jf: usize) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt: jt as u8,
            jf: jf as u8,
            k,
        }
    }
    const LOAD: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    const RET: u32 = libc::BPF_RET | libc::BPF_K;
    let n = ALLOWED.len();
    let mut f = [op(0, 0, 0, 0); FILTER_LEN];
    f[0] = op(LOAD, 4, 0, 0); // seccomp_data.arch
    f[1] = op(JEQ, AUDIT_ARCH, 0, n + 1); // else to KILL
    f[2] = op(LOAD, 0, 0, 0); // seccomp_data.nr
    let mut i = 0;
    while i < n {
        f[3 + i] = op(JEQ, ALLOWED[i] as u32, n - i, 0); // to ALLOW
        i += 1;
    }
    f[3 + n] = op(RET, libc::SECCOMP_RET_KILL_PROCESS, 0, 0);
    f[4 + n] = op(RET, libc::SECCOMP_RET_ALLOW, 0, 0);
    f
};

/// Checks that [`lock_down`] can work here: the kernel has seccomp filters and the action they
/// use ([seccomp(2)] `SECCOMP_GET_ACTION_AVAIL`, Linux 4.14). `ENOSYS` (no seccomp, or an
/// emulator such as qemu-user that does not pass it on), `EINVAL` or `EOPNOTSUPP` (older
/// kernels) mean it cannot. Installs nothing.
///
/// [seccomp(2)]: https://man7.org/linux/man-pages/man2/seccomp.2.html
pub fn seccomp_available() -> Result<()> {
    let action: u32 = libc::SECCOMP_RET_KILL_PROCESS;
    let op = libc::SECCOMP_GET_ACTION_AVAIL;
    // SAFETY: `action` is a live u32, as SECCOMP_GET_ACTION_AVAIL reads.
    unsafe { syscall!(SYS_seccomp(op, 0, &action as *const u32)) }.map(drop)
}

/// Forbids gaining privileges and every system call outside `ALLOWED` for the rest of this
/// process's life ([prctl(2)] `PR_SET_NO_NEW_PRIVS`, [seccomp(2)]). A forbidden call kills the
/// process with SIGSYS: code running inside the server can serve sockets and nothing else.
///
/// [prctl(2)]: https://man7.org/linux/man-pages/man2/prctl.2.html
/// [seccomp(2)]: https://man7.org/linux/man-pages/man2/seccomp.2.html
pub fn lock_down() -> Result<()> {
    // SAFETY: no pointer arguments.
    unsafe { syscall!(SYS_prctl(libc::PR_SET_NO_NEW_PRIVS, 1)) }?;
    let prog = libc::sock_fprog {
        len: FILTER_LEN as u16,
        filter: FILTER.as_ptr() as *mut libc::sock_filter,
    };
    let p = &prog as *const libc::sock_fprog;
    // SAFETY: `p` points to the live `prog`, whose filter is the static `FILTER` of `FILTER_LEN` instructions.
    unsafe { syscall!(SYS_seccomp(libc::SECCOMP_SET_MODE_FILTER, 0, p)) }.map(drop)
}
