//! Test support, for the unit tests and the fuzz targets (which build the crate with its
//! `hosted` feature): a scripted socket for [`Conn`](crate::conn::Conn), and a worker's
//! buffers on the heap.

extern crate std;

use crate::conn::Io;
use crate::sys::{self, Errno};
use std::string::String;
use std::vec::Vec;

/// A scripted socket: what the client sent, how much the socket gives and takes at a time.
pub struct Script {
    /// What the client has sent and the connection not yet read.
    pub input: Vec<u8>,
    /// Once `input` is read: end of stream instead of `EAGAIN`.
    pub eof: bool,
    /// Most bytes one read returns.
    pub read_max: usize,
    /// What the send buffer takes before `EAGAIN`.
    pub room: usize,
    /// What the connection sent.
    pub sent: Vec<u8>,
    /// The connection half-closed its sending side.
    pub shut: bool,
    /// Every send fails, as on a reset connection.
    pub fail_sends: bool,
}

impl Default for Script {
    fn default() -> Script {
        Script::new()
    }
}

impl Script {
    /// Nothing sent or arrived yet; reads and sends of any size.
    pub fn new() -> Script {
        Script {
            input: Vec::new(),
            eof: false,
            read_max: usize::MAX,
            room: usize::MAX,
            sent: Vec::new(),
            shut: false,
            fail_sends: false,
        }
    }

    /// What the connection sent, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.sent).into_owned()
    }
}

impl Io for Script {
    fn recv(&mut self, buf: &mut [u8]) -> sys::Result<usize> {
        if self.input.is_empty() {
            return if self.eof { Ok(0) } else { Err(Errno::AGAIN) };
        }
        let n = self.input.len().min(buf.len()).min(self.read_max);
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        Ok(n)
    }

    fn send(&mut self, buf: &[u8]) -> sys::Result<usize> {
        if self.fail_sends {
            return Err(Errno(libc::ECONNRESET));
        }
        if self.room == 0 {
            return Err(Errno::AGAIN);
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        self.sent.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn shutdown_write(&mut self) {
        self.shut = true;
    }
}

/// A worker's buffers, zeroed on the heap (too big for a test thread's stack).
#[allow(unsafe_code)]
pub mod buffers {
    use super::std::boxed::Box;
    use crate::conn::{Scratch, Spills};
    use crate::http::HEAD_MAX;
    use crate::log::AccessLog;

    /// A zeroed `T` on the heap.
    ///
    /// # Safety
    /// All-zero must be a valid `T`.
    unsafe fn zeroed<T>() -> Box<T> {
        // SAFETY: passed on from the caller.
        unsafe { Box::<T>::new_zeroed().assume_init() }
    }

    /// An empty read and output buffer.
    pub fn scratch() -> Box<Scratch> {
        // SAFETY: byte arrays; all-zero is `Scratch::EMPTY`.
        unsafe { zeroed() }
    }

    /// A spill pool with every buffer free.
    pub fn spills() -> Box<Spills> {
        // SAFETY: byte arrays and integers; all-zero is `Spills::EMPTY`.
        unsafe { zeroed() }
    }

    /// A connection's empty head buffer.
    pub fn head() -> Box<[u8; HEAD_MAX]> {
        // SAFETY: a byte array.
        unsafe { zeroed() }
    }

    /// An empty access-log batch.
    pub fn log() -> Box<AccessLog> {
        // SAFETY: a byte array and a length; all-zero is `AccessLog::EMPTY`.
        unsafe { zeroed() }
    }
}
