//! Sockets: the listener, accepted connections, the probe's client socket, and reads and
//! writes on them.

use super::{call, Fd, Result};
use crate::addr::Addr;
use core::ffi::c_int;
use core::mem::{size_of, zeroed};

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
    unsafe { call::<3>(n, fd.0 as usize, p as usize, len, 0, 0) }
}

// size: out of line; inlined into `accept` and `local_addr` it costs 144 bytes (x86-64).
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
    unsafe { syscall!(SYS_socket(family, kind, 0)) }.map(|fd| Fd(fd as c_int))
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
    let fd = Fd(unsafe { syscall!(SYS_socket(family, kind, 0)) }? as c_int);
    // A duration, not a date: on 32-bit ABIs the libc crate pairs its 32-bit-seconds `timeval`
    // with the option of the same width (SO_SNDTIMEO_OLD), which every kernel has; 2038 does
    // not reach a timeout of seconds.
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
    unsafe { syscall!(SYS_recvfrom(fd.0, buf.as_mut_ptr(), buf.len(), 0, 0)) }
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
            libc::MSG_NOSIGNAL,
            0
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
