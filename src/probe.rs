//! `tinyapi --probe`: a health check client for images without curl or a shell.
//!
//! Connects to the local server, sends `GET /healthcheck`, and exits 0 when the answer is
//! `200`, 1 otherwise. The whole exchange is bounded by [`PROBE_TIMEOUT_MS`].

use crate::addr::Addr;
use crate::buf::Buf;
use crate::sys;

/// Time allowed for each step: connecting, sending, and reading the status line.
pub const PROBE_TIMEOUT_MS: u64 = 2000;

const REQUEST: &[u8] = b"GET /healthcheck HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// Probes the server at `addr`; returns the exit status.
pub fn run(addr: Addr) -> i32 {
    let mut a = [0u8; 64];
    let mut target = Buf::new(&mut a);
    addr.write(&mut target);
    let target = target.as_bytes();
    let mut status = *b"nothing      "; // overwritten by what the server sends
    match check(&addr, &mut status) {
        Ok(()) => {
            crate::say(sys::STDOUT, &[b"tinyapi probe: ", target, b" healthy\n"]);
            0
        }
        Err(Failure::Answered) => {
            crate::say(
                sys::STDERR,
                &[b"tinyapi: probe: ", target, b" answered ", &status, b"\n"],
            );
            1
        }
        Err(Failure::Io(e)) => {
            crate::say_error(b"probe: ", target, e);
            1
        }
    }
}

/// Why a probe failed.
enum Failure {
    /// Connecting, sending or receiving failed.
    Io(sys::Errno),
    /// The server answered with a status other than 200 (the status line is in `status`).
    Answered,
}

impl From<sys::Errno> for Failure {
    fn from(e: sys::Errno) -> Failure {
        Failure::Io(e)
    }
}

/// Sends the request and reads the status line into `status`.
fn check(addr: &Addr, status: &mut [u8; 13]) -> Result<(), Failure> {
    // A blocking socket whose every call (connect included) gives up after the timeout.
    let sock = sys::connect_with_timeout(addr, PROBE_TIMEOUT_MS)?;
    let mut sent = 0;
    while sent < REQUEST.len() {
        sent += sys::send(&sock, &REQUEST[sent..])?;
    }
    let mut got = 0;
    while got < status.len() {
        match sys::recv(&sock, &mut status[got..])? {
            0 => break,
            n => got += n,
        }
    }
    if status == b"HTTP/1.1 200 " {
        Ok(())
    } else {
        Err(Failure::Answered)
    }
}
