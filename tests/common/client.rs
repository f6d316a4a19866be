//! Client connections: send bytes, read whole responses (pipelining kept), expect a close.

use super::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A valid request with a known answer ([`alwaysok_response`]).
pub const GET_OK: &str = "GET /alwaysok HTTP/1.1\r\nHost: test\r\n\r\n";

/// A client connection that keeps unread bytes between responses (for pipelining).
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, PATIENCE)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        Client::wrap(stream)
    }

    /// Wraps a connected stream, setting its timeouts.
    pub fn wrap(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes all of `bytes` in one call.
    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// Reads more bytes into the buffer; returns how many (0 at end of stream).
    #[track_caller]
    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "no response within {PATIENCE:?}; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            }
            Err(e) => panic!(
                "read failed: {e}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Reads one complete response (head, and a body of `Content-Length` bytes unless
    /// `head_only`) and returns its raw bytes.
    #[track_caller]
    pub fn response(&mut self, head_only: bool) -> Vec<u8> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill() == 0 {
                panic!(
                    "connection closed before a complete response head; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let len = if head_only { 0 } else { content_length(&head) };
        while self.buf.len() < head_end + len {
            if self.fill() == 0 {
                panic!(
                    "connection closed inside a response body; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
        self.buf.drain(..head_end + len).collect()
    }

    /// Reads one response and normalizes its Date.
    #[track_caller]
    pub fn normalized(&mut self, head_only: bool) -> String {
        normalize(&self.response(head_only))
    }

    /// Sends `request` and returns the normalized response.
    #[track_caller]
    pub fn exchange(&mut self, request: &str) -> String {
        self.send(request.as_bytes());
        self.normalized(request.starts_with("HEAD "))
    }

    /// Asserts that the server closes the connection (clean end of stream) with no further
    /// bytes, within `timeout`.
    #[track_caller]
    pub fn expect_closed(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("connection still open after {timeout:?}")
                }
                Err(e) => panic!("expected a clean close, got {e}"),
            }
        }
        assert!(
            self.buf.is_empty(),
            "unexpected bytes before the close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    }

    /// What waits to be read right now, without reading it or waiting: `None` while the
    /// connection is open with nothing for us, `Some(0)` at its end, `Some(n)` for n bytes.
    #[track_caller]
    pub fn peek_now(&self) -> Option<usize> {
        self.stream.set_nonblocking(true).unwrap();
        let mut chunk = [0u8; 4096];
        let got = self.stream.peek(&mut chunk);
        self.stream.set_nonblocking(false).unwrap();
        match got {
            Ok(n) => Some(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => None,
            Err(e) => panic!("peek failed: {e}"),
        }
    }

    /// Half-closes the sending side.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Index of the first occurrence of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `Content-Length` of a response head (0 when absent).
#[track_caller]
pub fn content_length(head: &str) -> usize {
    head.split("\r\n")
        .filter_map(|l| l.split_once(": "))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().expect("Content-Length is a number"))
        .unwrap_or(0)
}

/// A loopback port nothing listens on: bound, then released. Another process could take it
/// in between, which on a test machine is unlikely enough.
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Makes dropping `stream` reset the connection (RST) instead of closing it cleanly.
pub fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger struct of the given size from a valid pointer.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER");
}
