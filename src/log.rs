//! The access log: one line per request, batched in memory and written once per loop turn.
//!
//! Format (documented in the README):
//! `2026-11-27T06:46:44Z 127.0.0.1:54321 "GET /alwaysok HTTP/1.1" 200 18 0.021ms`
//! — UTC time, peer address, request line, status, body bytes sent, time from reading the
//! request to having its response ready. Unprintable bytes, `"` and `\` in the target are
//! written as `\xHH`, so a line can neither be split nor forged by a client.

use crate::addr::Addr;
use crate::buf::Buf;
use crate::http::{Exchange, NO_VERSION};
use crate::sys;

/// Size of a worker's log batch; flushed early when a line might not fit.
pub const LOG_MAX: usize = 16 * 1024;
/// Longest target written to the log; longer ones end in `...`.
const TARGET_MAX: usize = 512;
/// Upper bound on one line: the target escaped at 4 bytes a byte plus the fixed fields.
const LINE_MAX: usize = TARGET_MAX * 4 + 160;
/// Pipe writes up to this size are atomic: lines from several workers never interleave.
const PIPE_BUF: usize = 4096;

/// A batch of log lines.
pub struct AccessLog {
    bytes: [u8; LOG_MAX],
    len: usize,
}

impl AccessLog {
    /// An empty batch (all zero, so it can live in `.bss`).
    pub const EMPTY: AccessLog = AccessLog {
        bytes: [0; LOG_MAX],
        len: 0,
    };

    /// Appends the line for one exchange.
    pub fn line(&mut self, stamp: &[u8], peer: &Addr, x: &Exchange, nanos: u64) {
        if LOG_MAX - self.len < LINE_MAX {
            self.flush();
        }
        let mut b = Buf::resume(&mut self.bytes, self.len);
        b.push(stamp);
        b.byte(b' ');
        peer.write(&mut b);
        b.push(b" \"");
        // A request line that could not be read to its version is shown as `-`.
        if x.version != NO_VERSION {
            let v = x.version;
            b.push(x.method);
            b.byte(b' ');
            escaped(&mut b, &x.target[..x.target.len().min(TARGET_MAX)]);
            if x.target.len() > TARGET_MAX {
                b.push(b"...");
            }
            b.push(b" HTTP/");
            // At most 99: one digit each.
            b.push(&[b'0' + v / 10, b'.', b'0' + v % 10]);
        } else {
            b.byte(b'-');
        }
        b.push(b"\" ");
        b.push(x.status.code_text());
        b.num(x.body_len as u64);
        b.byte(b' ');
        b.num(nanos / 1_000_000);
        b.byte(b'.');
        b.padded(nanos / 1000 % 1000, 3);
        b.push(b"ms\n");
        self.len = b.len();
    }

    /// True when lines wait to be written.
    pub fn pending(&self) -> bool {
        self.len > 0
    }

    /// Writes the batch to stdout in atomic chunks cut at line ends. When stdout is closed or
    /// full the rest is dropped: serving matters more than logging.
    pub fn flush(&mut self) {
        let mut start = 0;
        while start < self.len {
            let mut end = self.len.min(start + PIPE_BUF);
            if end < self.len {
                // Cut after the last newline that fits (a line is always shorter than PIPE_BUF).
                end = start
                    + self.bytes[start..end]
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(end - start, |i| i + 1);
            }
            match sys::write(sys::STDOUT, &self.bytes[start..end]) {
                Ok(n) if n > 0 => start += n,
                _ => break,
            }
        }
        self.len = 0;
    }

    /// The bytes waiting to be written (for tests).
    #[cfg(test)]
    fn waiting(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn escaped(b: &mut Buf, s: &[u8]) {
    for &c in s {
        if (0x21..0x7f).contains(&c) && c != b'"' && c != b'\\' {
            b.byte(c);
        } else {
            b.push(b"\\x");
            b.byte(b"0123456789abcdef"[(c >> 4) as usize]);
            b.byte(b"0123456789abcdef"[(c & 15) as usize]);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::http::Status;

    fn exchange<'a>(
        method: &'a [u8],
        target: &'a [u8],
        version: u8,
        status: Status,
    ) -> Exchange<'a> {
        Exchange {
            consumed: 1,
            status,
            body_len: 18,
            keep_alive: true,
            exit: false,
            input: b"",
            method,
            target,
            version,
        }
    }

    #[test]
    fn formats_a_line() {
        let mut log = std::boxed::Box::new(AccessLog::EMPTY);
        let peer = Addr::parse(b"127.0.0.1:54321").unwrap();
        log.line(
            b"2026-11-27T06:46:44Z",
            &peer,
            &exchange(b"GET", b"/alwaysok", 11, Status::Ok),
            21_400,
        );
        assert_eq!(
            log.waiting(),
            b"2026-11-27T06:46:44Z 127.0.0.1:54321 \"GET /alwaysok HTTP/1.1\" 200 18 0.021ms\n"
        );
    }

    #[test]
    fn escapes_and_cuts_hostile_targets() {
        let mut log = std::boxed::Box::new(AccessLog::EMPTY);
        let peer = Addr::parse(b"[::1]:80").unwrap();
        log.line(
            b"T",
            &peer,
            &exchange(b"GET", b"/a\"b\\c\xff", 10, Status::NotFound),
            1_500_000_000,
        );
        assert_eq!(
            log.waiting(),
            b"T [::1]:80 \"GET /a\\x22b\\x5cc\\xff HTTP/1.0\" 404 18 1500.000ms\n"
        );
        let long = std::vec![b'a'; 2000];
        let mut log = std::boxed::Box::new(AccessLog::EMPTY);
        log.line(b"T", &peer, &exchange(b"GET", &long, 11, Status::Ok), 0);
        let line = log.waiting();
        assert!(line.len() < LINE_MAX);
        assert!(std::str::from_utf8(line)
            .unwrap()
            .contains("aaa... HTTP/1.1"));
    }

    #[test]
    fn unparsed_requests_log_a_dash() {
        let mut log = std::boxed::Box::new(AccessLog::EMPTY);
        let peer = Addr::parse(b"1.2.3.4:5").unwrap();
        log.line(
            b"T",
            &peer,
            &exchange(b"", b"", NO_VERSION, Status::BadRequest),
            0,
        );
        assert_eq!(log.waiting(), b"T 1.2.3.4:5 \"-\" 400 18 0.000ms\n");
    }
}
