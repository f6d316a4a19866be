//! `tinyapi --probe`: a health check client for images without curl or a shell.
//!
//! Connects to the local server, sends `GET /healthcheck`, and exits 0 when the answer is
//! `200`, 1 otherwise. The whole exchange is bounded by [`PROBE_TIMEOUT_MS`].

use crate::addr::Addr;
use crate::buf::Buf;
use crate::sys;

/// Time allowed for connecting, sending and reading the status line.
pub const PROBE_TIMEOUT_MS: u64 = 2000;

const REQUEST: &[u8] = b"GET /healthcheck HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tinyapi-probe\r\nConnection: close\r\n\r\n";

/// Probes the server at `addr`; returns the exit status.
pub fn run(addr: Addr) -> i32 {
    let mut a = [0u8; 64];
    let mut target = Buf::new(&mut a);
    addr.write(&mut target);
    match check(&addr) {
        Ok(()) => {
            crate::say(
                sys::STDOUT,
                &[b"tinyapi probe: ", target.as_bytes(), b" healthy\n"],
            );
            0
        }
        Err(Failure::Status(line)) => {
            crate::say(
                sys::STDERR,
                &[
                    b"tinyapi probe: ",
                    target.as_bytes(),
                    b" answered ",
                    line,
                    b"\n",
                ],
            );
            1
        }
        Err(Failure::Sys(e)) => {
            crate::say_error(&[b"probe: ", target.as_bytes()], e);
            1
        }
    }
}

enum Failure {
    Sys(sys::Errno),
    Status(&'static [u8]),
}

impl From<sys::Errno> for Failure {
    fn from(e: sys::Errno) -> Self {
        Failure::Sys(e)
    }
}

const TIMED_OUT: sys::Errno = sys::Errno(libc_etimedout());

const fn libc_etimedout() -> i32 {
    110 // ETIMEDOUT on Linux, all architectures
}

fn check(addr: &Addr) -> Result<(), Failure> {
    let start = now_ms();
    let left = || PROBE_TIMEOUT_MS.saturating_sub(now_ms() - start) as i32;
    let sock = sys::connect(addr)?;
    if !sys::poll(&sock, sys::POLLOUT, left())? {
        return Err(TIMED_OUT.into());
    }
    sys::socket_error(&sock)?;
    let mut sent = 0;
    while sent < REQUEST.len() {
        match sys::send(&sock, &REQUEST[sent..]) {
            Ok(n) => sent += n,
            Err(sys::Errno::AGAIN) if sys::poll(&sock, sys::POLLOUT, left())? => {}
            Err(sys::Errno::AGAIN) => return Err(TIMED_OUT.into()),
            Err(e) => return Err(e.into()),
        }
    }
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < 13 {
        match sys::recv(&sock, &mut buf[got..]) {
            Ok(0) => return Err(Failure::Status(b"nothing (connection closed)")),
            Ok(n) => got += n,
            Err(sys::Errno::AGAIN) if sys::poll(&sock, sys::POLLIN, left())? => {}
            Err(sys::Errno::AGAIN) => return Err(TIMED_OUT.into()),
            Err(e) => return Err(e.into()),
        }
    }
    if &buf[..13] == b"HTTP/1.1 200 " {
        Ok(())
    } else if buf.starts_with(b"HTTP/1.1 503") {
        Err(Failure::Status(b"503 (draining or overloaded)"))
    } else {
        Err(Failure::Status(b"a status other than 200"))
    }
}

fn now_ms() -> u64 {
    let t = sys::monotonic();
    t.secs * 1000 + t.nanos as u64 / 1_000_000
}
