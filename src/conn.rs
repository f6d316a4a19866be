//! One connection as a state machine, apart from the event loop that drives it.
//!
//! A [`Conn`] knows only that bytes came, bytes may go and what time it is. Its worker hands it
//! the socket as an [`Io`], and as an [`Env`] only what a connection uses: its scratch
//! buffers and spill pool, the clock reading, the timeouts, the log, a reading of the server's
//! health and the request counter. It acts on the [`Next`] returned: keep waiting, close the
//! socket, or end the process (`/panic`). Time is whole seconds on the worker's clock, passed
//! in; nothing here reads a clock for a decision or makes a kernel object, so tests and the
//! fuzzer run it in virtual time over a scripted socket.
//!
//! A connection normally touches no buffer of its own. Input is read into the worker's read
//! buffer, every complete request in it is answered into the worker's output buffer, and that
//! is sent in one write. Input that must wait (a request head split across reads, or requests
//! behind a response the client is not reading yet) is kept in the connection's own head
//! buffer, whose memory the kernel provides only when it is first written; a response the
//! client is not reading yet waits in a spill buffer borrowed from the pool, given back as soon
//! as nothing waits in it.

use crate::addr::Addr;
use crate::buf::Buf;
use crate::config::Timeouts;
use crate::http::{self, Context, ReadHealth, Status, HEAD_MAX, JSON_MAX, RESPONSE_MAX};
use crate::log::AccessLog;
use crate::slots::FreeList;
use crate::sys::{self, interest, Errno, Fd};
use crate::time::{Secs, Stamps};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Output built per connection per turn: 16 pipelined answers of any size fit many times over.
pub const OUT_MAX: usize = 16 * 1024;
/// Spill buffers per worker: connections whose responses wait for the client to read them, at
/// the same moment. A connection that needs one when none is free is closed.
pub const SPILL_SLOTS: usize = 128;
/// How long a closing connection may keep sending before it is closed (see `finish`).
pub const LINGER: Secs = Secs(2);

/// Event bits saying the peer closed or the connection failed: read until end of stream.
const PEER_CLOSED: u32 = interest::READ_CLOSED | interest::FAILED;

/// The socket as a connection sees it: non-blocking reads and writes that may take part of
/// what is asked, or fail with `EAGAIN`. [`Fd`] is the one implementation in the server;
/// tests and the fuzzer use a scripted one.
pub trait Io {
    /// Reads into `buf`; `Ok(0)` is end of stream ([`sys::recv`]).
    fn recv(&mut self, buf: &mut [u8]) -> sys::Result<usize>;
    /// Sends some prefix of `buf`; returns its length ([`sys::send`]).
    fn send(&mut self, buf: &[u8]) -> sys::Result<usize>;
    /// Half-closes the sending side ([`sys::shutdown_write`]).
    fn shutdown_write(&mut self);
}

impl Io for Fd {
    fn recv(&mut self, buf: &mut [u8]) -> sys::Result<usize> {
        sys::recv(self, buf)
    }

    fn send(&mut self, buf: &[u8]) -> sys::Result<usize> {
        sys::send(self, buf)
    }

    fn shutdown_write(&mut self) {
        sys::shutdown_write(self)
    }
}

/// What a connection waits for; decides what its deadline means.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub enum Phase {
    /// A request head (from accept, or from its first byte after an idle spell).
    Head,
    /// The next request on a kept-alive connection.
    Idle,
    /// The client to read what is queued for it; more requests may follow.
    Write,
    /// The client to finish sending after the final response (see `finish`).
    Linger,
    /// Nothing: the connection told its worker to close it.
    Closed,
    /// The client to read the final response; then close.
    Final,
    /// The client to read the final response; then linger, as it may still be sending.
    FinalLinger,
}

impl Phase {
    /// The final response is queued: nothing after it is answered.
    fn is_final(self) -> bool {
        matches!(self, Phase::Final | Phase::FinalLinger)
    }
}

/// What the worker does after a call.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub enum Next {
    /// Keep the socket and wait for readiness or the deadline.
    Wait,
    /// Close the socket: the connection holds nothing any more.
    Close,
    /// `/panic`: the answer is sent; flush the log and end the process with status 1.
    Exit,
}

/// A spill buffer: a connection's output that must outlive the turn.
pub struct Spill {
    output: [u8; OUT_MAX],
}

/// A worker's spill buffers and their free list. All-zero is empty (it lives in `.bss`).
pub struct Spills {
    bufs: [Spill; SPILL_SLOTS],
    free: FreeList<SPILL_SLOTS>,
}

impl Spills {
    /// All buffers free.
    pub const EMPTY: Spills = Spills {
        bufs: [const {
            Spill {
                output: [0; OUT_MAX],
            }
        }; SPILL_SLOTS],
        free: FreeList::EMPTY,
    };

    /// Buffer `i`. The index wraps (it never needs to): no panic path.
    fn get(&mut self, i: usize) -> &mut Spill {
        const { assert!(SPILL_SLOTS.is_power_of_two()) };
        &mut self.bufs[i % SPILL_SLOTS]
    }

    /// Buffers lent out now.
    pub fn in_use(&self) -> usize {
        self.free.in_use()
    }
}

/// The worker's buffers for one turn: what was read, and the answers being built.
pub struct Scratch {
    /// Input of the connection being served.
    pub read: [u8; HEAD_MAX],
    /// Output of the connection being served.
    pub out: [u8; OUT_MAX],
    /// A `/healthcheck` body, written before the head that gives its length.
    pub json: [u8; JSON_MAX],
}

impl Scratch {
    /// Zeroed buffers.
    pub const EMPTY: Scratch = Scratch {
        read: [0; HEAD_MAX],
        out: [0; OUT_MAX],
        json: [0; JSON_MAX],
    };
}

/// What a connection borrows from its worker for one call.
pub struct Env<'a> {
    /// The time on the worker's clock: the unit of deadlines.
    pub now: Secs,
    /// The timeouts.
    pub timeouts: &'a Timeouts,
    /// The `Date` value and the log time stamp of this second.
    pub stamps: &'a Stamps,
    /// Shutdown has begun: answer, then close.
    pub draining: bool,
    /// Reads what `/healthcheck` reports; called only for it.
    pub health: &'a dyn ReadHealth,
    /// Counts the requests answered.
    pub requests: &'a AtomicU64,
    /// The access log.
    pub log: &'a mut AccessLog,
    /// Requests are logged.
    pub logging: bool,
    /// The worker's read and output buffers.
    pub scratch: &'a mut Scratch,
    /// The worker's spill buffers.
    pub spills: &'a mut Spills,
    /// The connection's own buffer for input kept between turns.
    pub head: &'a mut [u8; HEAD_MAX],
}

/// One open connection.
pub struct Conn {
    /// The client's address, for the log.
    pub peer: Addr,
    /// When `phase` times out.
    deadline: Secs,
    /// Spill buffer index + 1, or 0.
    spill: u16,
    /// Unanswered input bytes kept in the head buffer.
    pending_in: u16,
    /// Unsent output kept in the spill buffer, `out_start..out_end`.
    out_start: u16,
    out_end: u16,
    phase: Phase,
}

/// Adds to a counter that only the calling worker writes: a plain load and store, no locked
/// instruction on the hot path.
pub fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
}

enum Flushed {
    All,
    Blocked,
    Failed,
}

/// What [`Conn::answer`] did when it answered no `/panic`.
struct Answered {
    /// Input bytes of the requests answered.
    used: usize,
    /// The output buffer filled up before the rest of the input could be answered.
    out_full: bool,
}

impl Conn {
    /// A closed connection: what every free slot holds (all zero but the phase).
    pub const FREE: Conn = Conn {
        peer: Addr {
            ip: [0; 16],
            port: 0,
            v6: false,
        },
        deadline: Secs(0),
        spill: 0,
        pending_in: 0,
        out_start: 0,
        out_end: 0,
        phase: Phase::Head,
    };

    /// A connection just accepted from `peer` at `now`: it has until `now + header_timeout`
    /// to send a request head.
    pub fn open(peer: Addr, now: Secs, header_timeout: Secs) -> Conn {
        Conn {
            peer,
            deadline: now + header_timeout,
            ..Conn::FREE
        }
    }

    /// What the connection waits for.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When the connection times out (see [`Conn::on_timeout`]).
    pub fn deadline(&self) -> Secs {
        self.deadline
    }

    /// True when nothing is in flight: no unanswered input, no unsent output.
    fn quiet(&self) -> bool {
        self.pending_in == 0 && self.out_start == self.out_end
    }

    /// The socket is ready (`bits` as epoll reports them): reads, answers and writes until it
    /// would block.
    pub fn on_ready(&mut self, io: &mut impl Io, bits: u32, env: &mut Env) -> Next {
        if self.phase == Phase::Linger {
            return self.discard_input(io, env);
        }
        // A short read means the socket is empty, unless the peer also closed: then read on to
        // see the end of stream.
        let peer_closed = bits & PEER_CLOSED != 0;
        let had_output = self.out_start != self.out_end;
        let mut can_read = had_output || bits & (interest::READ | PEER_CLOSED) != 0;
        let mut len = self.take_input(env);
        let mut served = false;
        loop {
            match self.flush_output(io, env.spills) {
                Flushed::All => {}
                Flushed::Blocked => break,
                Flushed::Failed => return self.close(env.spills),
            }
            if self.phase.is_final() {
                return self.finish(io, env);
            }
            let Some(Answered { used, out_full }) = self.answer(io, len, env) else {
                return Next::Exit;
            };
            if used > 0 {
                served = true;
                shift(&mut env.scratch.read, used, len);
                len -= used;
            }
            match self.phase {
                Phase::Closed => return Next::Close,
                Phase::Final | Phase::FinalLinger => len = 0, // nothing after a closing request is answered
                _ => {}
            }
            if self.out_start != self.out_end {
                break; // the client is not reading: wait for EPOLLOUT
            }
            if self.phase.is_final() || out_full {
                continue;
            }
            if !can_read {
                break;
            }
            match io.recv(&mut env.scratch.read[len..]) {
                Ok(0) => return self.close(env.spills),
                Ok(n) => {
                    // A short read emptied the socket; edge-triggered epoll reports new data.
                    can_read = peer_closed || len + n == HEAD_MAX;
                    len += n;
                }
                Err(Errno::AGAIN) => break,
                Err(_) => return self.close(env.spills),
            }
        }
        // Empty lines before a request line are ignored (RFC 9112 §2.2): after them the
        // connection is as idle as before.
        let blank = http::empty_lines(&env.scratch.read[..len]);
        self.keep_input(blank, len, env);
        self.settle(served, env);
        Next::Wait
    }

    /// The clock moved to `env.now`: past the deadline the connection closes, telling a client
    /// that sent part of a request head 408 first.
    pub fn on_timeout(&mut self, io: &mut impl Io, env: &mut Env) -> Next {
        if self.phase == Phase::Closed || self.deadline > env.now {
            Next::Wait
        } else if self.phase == Phase::Head && self.pending_in > 0 {
            self.refuse(io, Status::RequestTimeout, env)
        } else {
            self.close(env.spills)
        }
    }

    /// Shutdown began: a connection with nothing in flight closes now; the rest finish.
    pub fn on_drain(&mut self, spills: &mut Spills) -> Next {
        if self.quiet() {
            self.close(spills)
        } else {
            Next::Wait
        }
    }

    /// Drops whatever the connection holds and gives its spill buffer back.
    pub fn close(&mut self, spills: &mut Spills) -> Next {
        self.pending_in = 0;
        self.out_start = 0;
        self.out_end = 0;
        self.release_spill(spills);
        self.phase = Phase::Closed;
        Next::Close
    }

    /// Answers the complete requests at the start of the read buffer into the output buffer
    /// and sends it; `None` when `/panic` was answered.
    #[inline(never)] // smaller out of line
    fn answer(&mut self, io: &mut impl Io, len: usize, env: &mut Env) -> Option<Answered> {
        if len == 0 {
            // The first turn of `on_ready`, before anything was read.
            return Some(Answered {
                used: 0,
                out_full: false,
            });
        }
        let ctx = Context {
            date: &env.stamps.http,
            draining: env.draining,
            health: env.health,
        };
        let read = &mut env.scratch.read;
        let mut b = Buf::new(&mut env.scratch.out);
        let mut used = 0;
        let mut out_full = false;
        let started = if env.logging {
            sys::monotonic_nanos()
        } else {
            0
        };
        while used < len {
            if b.remaining() < RESPONSE_MAX {
                out_full = true;
                break;
            }
            let Some(x) = http::respond(&mut read[used..len], &ctx, &mut b, &mut env.scratch.json)
            else {
                break;
            };
            used += x.consumed;
            bump(env.requests, 1);
            if env.logging {
                let nanos = sys::monotonic_nanos() - started;
                env.log.line(&env.stamps.log, &self.peer, &x, nanos);
            }
            if x.exit {
                let _ = io.send(b.as_bytes());
                return None;
            }
            if !x.keep_alive {
                // Input left over, or an error response: the client may still be sending.
                let linger = used < len || x.status != Status::Ok || len == HEAD_MAX;
                self.phase = if linger {
                    Phase::FinalLinger
                } else {
                    Phase::Final
                };
                break;
            }
        }
        let n = b.len();
        if n > 0 {
            self.send_or_keep(io, n, env);
        }
        Some(Answered { used, out_full })
    }

    /// Sends `out[..n]`; what the socket does not take waits in a spill buffer.
    fn send_or_keep(&mut self, io: &mut impl Io, n: usize, env: &mut Env) {
        let out = &env.scratch.out;
        let sent = match io.send(&out[..n]) {
            Ok(k) => k,
            Err(Errno::AGAIN) => 0,
            Err(_) => {
                self.phase = Phase::Final;
                return;
            }
        };
        if sent == n {
            return;
        }
        let Some(i) = self.spill_of(env.spills) else {
            // No buffer to hold the rest: the response cannot be completed.
            self.close(env.spills);
            return;
        };
        env.spills.get(i).output[..n - sent].copy_from_slice(&out[sent..n]);
        self.out_start = 0;
        self.out_end = (n - sent) as u16;
    }

    /// Sends output kept from earlier turns.
    fn flush_output(&mut self, io: &mut impl Io, spills: &mut Spills) -> Flushed {
        if self.out_start == self.out_end {
            return Flushed::All;
        }
        let spill = spills.get(self.spill as usize - 1);
        match io.send(&spill.output[self.out_start as usize..self.out_end as usize]) {
            Ok(k) => {
                self.out_start += k as u16;
                if self.out_start < self.out_end {
                    return Flushed::Blocked;
                }
                self.out_start = 0;
                self.out_end = 0;
                self.release_spill(spills);
                Flushed::All
            }
            Err(Errno::AGAIN) => Flushed::Blocked,
            Err(_) => Flushed::Failed,
        }
    }

    /// After the final response: close now, or first let the client finish sending so that
    /// unread input does not turn the close into a reset that destroys the response in flight
    /// (RFC 9112 §9.6).
    fn finish(&mut self, io: &mut impl Io, env: &mut Env) -> Next {
        if self.phase == Phase::Final || env.draining {
            return self.close(env.spills);
        }
        io.shutdown_write();
        self.phase = Phase::Linger;
        self.deadline = env.now + LINGER;
        self.discard_input(io, env)
    }

    fn discard_input(&mut self, io: &mut impl Io, env: &mut Env) -> Next {
        loop {
            match io.recv(&mut env.scratch.read) {
                Ok(n) if n > 0 => {}
                Err(Errno::AGAIN) => return Next::Wait,
                _ => return self.close(env.spills),
            }
        }
    }

    /// Answers `status` (best effort) and closes: used when a connection cannot go on.
    fn refuse(&mut self, io: &mut impl Io, status: Status, env: &mut Env) -> Next {
        let mut b = Buf::new(&mut env.scratch.out);
        http::write_error(&mut b, &env.stamps.http, status);
        let _ = io.send(b.as_bytes());
        self.close(env.spills)
    }

    /// Sets what the connection now waits for, and its deadline when that changed.
    fn settle(&mut self, served: bool, env: &Env) {
        let t = env.timeouts;
        let (phase, timeout) = match self.phase {
            Phase::Linger | Phase::Closed => return,
            Phase::Final | Phase::FinalLinger => (self.phase, t.header),
            _ if self.out_start != self.out_end => (Phase::Write, t.header),
            p if self.pending_in > 0 || p == Phase::Head && !served => (Phase::Head, t.header),
            _ => (Phase::Idle, t.idle),
        };
        if phase != self.phase || served {
            self.phase = phase;
            self.deadline = env.now + timeout;
        }
    }

    /// The connection's spill buffer index, borrowing one from the pool if it has none.
    fn spill_of(&mut self, spills: &mut Spills) -> Option<usize> {
        if self.spill == 0 {
            self.spill = spills.free.alloc()? as u16 + 1;
        }
        Some(self.spill as usize - 1)
    }

    /// Returns the spill buffer to the pool once it holds nothing.
    fn release_spill(&mut self, spills: &mut Spills) {
        if self.spill != 0 && self.out_start == self.out_end {
            spills.free.release(self.spill as usize - 1);
            self.spill = 0;
        }
    }

    /// Moves input kept from an earlier turn into the read buffer; returns its length.
    fn take_input(&mut self, env: &mut Env) -> usize {
        let n = (self.pending_in as usize).min(HEAD_MAX); // never more: no panic path
        env.scratch.read[..n].copy_from_slice(&env.head[..n]);
        self.pending_in = 0;
        n
    }

    /// Keeps `read[from..len]` (an incomplete head, or requests waiting behind unsent output)
    /// in the connection's head buffer.
    fn keep_input(&mut self, from: usize, len: usize, env: &mut Env) {
        let kept = env.scratch.read.get(from..len).unwrap_or_default();
        env.head[..kept.len()].copy_from_slice(kept);
        self.pending_in = kept.len() as u16;
    }
}

/// Moves `buf[from..len]` to the front. Chunks of `from` bytes never overlap, so this takes a
/// few memcpy calls instead of memmove (not otherwise linked on arm64).
fn shift(buf: &mut [u8], from: usize, len: usize) {
    let (mut to, mut at) = (0, from);
    while at < len {
        let n = (len - at).min(from);
        let (front, back) = buf.split_at_mut(at);
        front[to..to + n].copy_from_slice(&back[..n]);
        to += n;
        at += n;
    }
}

#[cfg(test)]
mod test {
    //! The connection in virtual time: a scripted socket, a clock that moves only when a test
    //! says so, and the worker's buffers on the heap.
    use super::*;
    use crate::http::Health;
    use crate::script::{buffers, Script};

    /// What a worker lends its connections, owned by the test.
    pub(crate) struct World {
        /// The worker's clock, in seconds.
        pub now: u32,
        pub draining: bool,
        pub timeouts: Timeouts,
        pub stamps: Stamps,
        pub log: Box<AccessLog>,
        pub scratch: Box<Scratch>,
        pub spills: Box<Spills>,
        pub head: Box<[u8; HEAD_MAX]>,
        pub counter: AtomicU64,
    }

    /// What `/healthcheck` reports in these tests.
    fn health() -> Health {
        Health {
            uptime_secs: 7,
            requests: 42,
            connections: 3,
            remaining_secs: 0,
        }
    }

    impl World {
        /// A worker's buffers on the heap and the clock at 0: no kernel object.
        pub fn new(timeouts: Timeouts) -> World {
            World {
                now: 0,
                draining: false,
                timeouts,
                stamps: Stamps::at(784_111_777),
                log: buffers::log(),
                scratch: buffers::scratch(),
                spills: buffers::spills(),
                head: buffers::head(),
                counter: AtomicU64::new(0),
            }
        }

        pub fn env(&mut self) -> Env<'_> {
            Env {
                now: Secs(self.now),
                timeouts: &self.timeouts,
                stamps: &self.stamps,
                draining: self.draining,
                health: &health,
                requests: &self.counter,
                log: &mut self.log,
                logging: false,
                scratch: &mut self.scratch,
                spills: &mut self.spills,
                head: &mut self.head,
            }
        }

        pub fn open(&self) -> Conn {
            Conn::open(
                Addr::v4([127, 0, 0, 1], 4321),
                Secs(self.now),
                self.timeouts.header,
            )
        }

        /// The client sends `bytes`; the connection is told its socket is readable.
        pub fn send(&mut self, c: &mut Conn, io: &mut Script, bytes: &[u8]) -> Next {
            io.input.extend_from_slice(bytes);
            c.on_ready(io, interest::READ, &mut self.env())
        }

        /// The clock moves to `now`.
        pub fn at(&mut self, now: u32, c: &mut Conn, io: &mut Script) -> Next {
            self.now = now;
            c.on_timeout(io, &mut self.env())
        }
    }

    fn config() -> Timeouts {
        Timeouts {
            header: Secs(10),
            idle: Secs(60),
        }
    }

    const GET: &[u8] = b"GET /alwaysok HTTP/1.1\r\nHost: t\r\n\r\n";

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    #[test]
    fn partial_head_gets_408_at_the_header_timeout() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        assert_eq!(w.send(&mut c, &mut io, b"GET / HTTP/1.1\r\nHo"), Next::Wait);
        assert_eq!((c.phase(), c.deadline()), (Phase::Head, Secs(10)));
        assert_eq!(
            (w.spills.in_use(), &w.head[..18]),
            (0, &b"GET / HTTP/1.1\r\nHo"[..]),
            "the partial head waits in the connection's own buffer"
        );
        assert_eq!(w.at(9, &mut c, &mut io), Next::Wait);
        assert!(io.sent.is_empty());
        assert_eq!(w.at(10, &mut c, &mut io), Next::Close);
        assert!(io.text().starts_with("HTTP/1.1 408 Request Timeout\r\n"));
        assert_eq!(w.spills.in_use(), 0);
    }

    #[test]
    fn silent_connection_closes_at_the_header_timeout_without_an_answer() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        assert_eq!(w.at(9, &mut c, &mut io), Next::Wait);
        assert_eq!(w.at(10, &mut c, &mut io), Next::Close);
        assert!(io.sent.is_empty());
    }

    #[test]
    fn empty_lines_after_a_request_leave_the_connection_idle() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        w.now = 5;
        let req = [GET, b"\r\n\r\n"].concat();
        assert_eq!(w.send(&mut c, &mut io, &req), Next::Wait);
        assert_eq!((c.phase(), c.deadline()), (Phase::Idle, Secs(65)));
        // In a read of their own, too.
        w.now = 7;
        assert_eq!(w.send(&mut c, &mut io, b"\r\n"), Next::Wait);
        assert_eq!((c.phase(), c.deadline()), (Phase::Idle, Secs(65)));
        let answered = io.sent.len();
        assert_eq!(w.at(65, &mut c, &mut io), Next::Close);
        assert_eq!(io.sent.len(), answered, "no 408 for empty lines");
        // A CR alone may start a line: the header timeout runs, but once its LF has come the
        // connection holds nothing, and is closed without a 408.
        w.now = 7;
        let (mut c, mut io) = (w.open(), Script::new());
        w.send(&mut c, &mut io, GET);
        let answered = io.sent.len();
        assert_eq!(w.send(&mut c, &mut io, b"\r"), Next::Wait);
        assert_eq!(w.send(&mut c, &mut io, b"\n"), Next::Wait);
        assert_eq!(w.at(17, &mut c, &mut io), Next::Close);
        assert_eq!(
            io.sent.len(),
            answered,
            "no 408 for an empty line in two reads"
        );
        // A new connection that sends only empty lines is closed silently at the header timeout.
        w.now = 7;
        let (mut c, mut io) = (w.open(), Script::new());
        assert_eq!(w.send(&mut c, &mut io, b"\r\n"), Next::Wait);
        assert_eq!(w.at(17, &mut c, &mut io), Next::Close);
        assert!(io.sent.is_empty());
    }

    #[test]
    fn kept_alive_connection_closes_at_the_idle_timeout() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        w.now = 5;
        assert_eq!(w.send(&mut c, &mut io, GET), Next::Wait);
        assert_eq!((c.phase(), c.deadline()), (Phase::Idle, Secs(65)));
        let answered = io.sent.len();
        assert_eq!(w.at(64, &mut c, &mut io), Next::Wait);
        // A request moves the deadline on.
        assert_eq!(w.send(&mut c, &mut io, GET), Next::Wait);
        assert_eq!(c.deadline(), Secs(124));
        assert_eq!(w.at(123, &mut c, &mut io), Next::Wait);
        assert_eq!(w.at(124, &mut c, &mut io), Next::Close);
        assert_eq!(io.sent.len(), 2 * answered, "an idle close sends nothing");
    }

    #[test]
    fn first_byte_after_an_idle_spell_starts_the_header_timeout() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        w.send(&mut c, &mut io, GET);
        w.now = 50;
        assert_eq!(w.send(&mut c, &mut io, b"GET"), Next::Wait);
        assert_eq!((c.phase(), c.deadline()), (Phase::Head, Secs(60)));
        assert_eq!(w.at(60, &mut c, &mut io), Next::Close);
        assert_eq!(count(&io.text(), "408"), 1);
    }

    #[test]
    fn error_answer_lingers_then_closes() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        w.now = 3;
        // No Host on HTTP/1.1: 400, and the client may still be sending.
        assert_eq!(
            w.send(&mut c, &mut io, b"GET / HTTP/1.1\r\n\r\n"),
            Next::Wait
        );
        assert!(io.text().starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(io.text().contains("\r\nConnection: close\r\n"));
        assert!(io.shut, "half-closed");
        assert_eq!((c.phase(), c.deadline()), (Phase::Linger, Secs(3) + LINGER));
        let sent = io.sent.len();
        // What the client still sends is read and dropped, not answered.
        assert_eq!(w.send(&mut c, &mut io, GET), Next::Wait);
        assert!(io.input.is_empty());
        assert_eq!(io.sent.len(), sent);
        assert_eq!(w.at(4, &mut c, &mut io), Next::Wait);
        assert_eq!(w.at(5, &mut c, &mut io), Next::Close);
    }

    #[test]
    fn lingering_ends_at_the_end_of_stream() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        w.send(
            &mut c,
            &mut io,
            b"BREW / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n",
        );
        assert!(io.text().starts_with("HTTP/1.1 413 "));
        assert_eq!(c.phase(), Phase::Linger);
        io.eof = true;
        assert_eq!(w.send(&mut c, &mut io, b"hello"), Next::Close);
    }

    #[test]
    fn closing_answers_close_at_once_when_nothing_else_was_sent() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        let req = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        assert_eq!(w.send(&mut c, &mut io, req), Next::Close);
        assert!(io.text().starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(!io.shut);
    }

    #[test]
    fn head_split_over_many_reads_is_answered_once_whole() {
        let req = b"GET /alwaysok HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n";
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        for (i, b) in req.iter().enumerate() {
            w.now = i as u32 / 8; // a byte every 125 ms
            assert_eq!(w.send(&mut c, &mut io, &[*b]), Next::Wait);
            if i + 1 < req.len() {
                assert!(io.sent.is_empty(), "answered after {} bytes", i + 1);
                assert_eq!(
                    (c.phase(), c.deadline()),
                    (Phase::Head, Secs(10)),
                    "byte {i}"
                );
                assert_eq!(w.head[..=i], req[..=i]);
                assert_eq!(w.spills.in_use(), 0);
            }
        }
        assert!(io.text().starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(io.text().ends_with("{ \"status\": \"OK\" }"));
        assert_eq!((c.phase(), w.spills.in_use()), (Phase::Idle, 0));
    }

    #[test]
    fn reads_of_any_size_give_the_same_answers() {
        // Table-driven: every read size, from one byte to all at once.
        let stream = [
            GET,
            b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n",
            GET,
            b"GET /alwaysok HTTP/1.0\r\n\r\n",
        ]
        .concat();
        let whole = {
            let mut w = World::new(config());
            let (mut c, mut io) = (w.open(), Script::new());
            assert_eq!(w.send(&mut c, &mut io, &stream), Next::Close);
            io.sent
        };
        assert_eq!(count(&String::from_utf8_lossy(&whole), "HTTP/1.1 "), 4);
        for size in 1..=stream.len() {
            let mut w = World::new(config());
            let (mut c, mut io) = (w.open(), Script::new());
            let mut next = Next::Wait;
            for piece in stream.chunks(size) {
                assert_eq!(next, Next::Wait, "closed early with reads of {size}");
                next = w.send(&mut c, &mut io, piece);
            }
            assert_eq!(next, Next::Close, "reads of {size}");
            assert_eq!(io.sent, whole, "reads of {size}");
            assert_eq!(w.spills.in_use(), 0);
        }
    }

    #[test]
    fn pipelined_requests_across_reads_are_answered_in_order_in_one_write_each() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        let first = [GET, b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /healthch"].concat();
        assert_eq!(w.send(&mut c, &mut io, &first), Next::Wait);
        let t = io.text();
        assert_eq!(count(&t, "HTTP/1.1 200 OK"), 2);
        assert!(t.find("{ \"status\"").unwrap() < t.find("Index of").unwrap());
        assert_eq!(c.phase(), Phase::Head, "part of the third request is in");
        assert_eq!(
            w.send(&mut c, &mut io, b"eck HTTP/1.1\r\nHost: t\r\n\r\n"),
            Next::Wait
        );
        assert_eq!(count(&io.text(), "HTTP/1.1 200 OK"), 3);
        assert!(io.text().ends_with("\"requests\":42,\"connections\":3}"));
        assert_eq!(w.counter.load(Relaxed), 3, "requests counted");
    }

    #[test]
    fn a_slow_reader_gets_every_byte_through_partial_writes() {
        let stream = GET.repeat(40);
        let expected = {
            let mut w = World::new(config());
            let (mut c, mut io) = (w.open(), Script::new());
            w.send(&mut c, &mut io, &stream);
            io.sent
        };
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        io.room = 100;
        io.read_max = 500;
        w.now = 1;
        assert_eq!(w.send(&mut c, &mut io, &stream), Next::Wait);
        assert_eq!(io.sent.len(), 100);
        assert_eq!((c.phase(), c.deadline()), (Phase::Write, Secs(11)));
        assert_eq!(w.spills.in_use(), 1, "the rest waits in a spill buffer");
        assert!(!io.input.is_empty(), "no more is read while output waits");
        let mut turns = 0;
        while io.sent.len() < expected.len() {
            turns += 1;
            assert!(turns < 1000, "stuck at {} bytes", io.sent.len());
            io.room = 100;
            let next = c.on_ready(&mut io, interest::WRITE, &mut w.env());
            assert_eq!(next, Next::Wait);
        }
        assert_eq!(io.sent, expected);
        assert!(io.input.is_empty());
        assert_eq!((c.phase(), w.spills.in_use()), (Phase::Idle, 0));
    }

    #[test]
    fn a_reader_that_never_reads_is_closed_at_the_header_timeout() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        io.room = 0;
        assert_eq!(w.send(&mut c, &mut io, GET), Next::Wait);
        assert_eq!((c.phase(), c.deadline()), (Phase::Write, Secs(10)));
        assert_eq!(w.at(10, &mut c, &mut io), Next::Close);
        assert_eq!(w.spills.in_use(), 0);
    }

    #[test]
    fn a_closing_answer_waits_for_the_reader_then_lingers() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        io.room = 10;
        // An error answer to a request with more input behind it.
        assert_eq!(
            w.send(&mut c, &mut io, b"GET / HTTP/1.1\r\n\r\nmore"),
            Next::Wait
        );
        assert_eq!(c.phase(), Phase::FinalLinger);
        io.room = usize::MAX;
        assert_eq!(
            c.on_ready(&mut io, interest::WRITE, &mut w.env()),
            Next::Wait
        );
        assert!(io.text().starts_with("HTTP/1.1 400 ") && io.shut);
        assert_eq!(c.phase(), Phase::Linger);
    }

    #[test]
    fn no_spill_buffer_left_keeps_heads_but_not_unsent_output() {
        let mut w = World::new(config());
        while w.spills.free.alloc().is_some() {}
        let (mut c, mut io) = (w.open(), Script::new());
        // A partial head needs no spill buffer: it is answered once whole.
        assert_eq!(w.send(&mut c, &mut io, b"GET / HTTP/1.1\r\n"), Next::Wait);
        assert_eq!(w.send(&mut c, &mut io, b"Host: x\r\n\r\n"), Next::Wait);
        assert!(io.text().starts_with("HTTP/1.1 200 OK\r\n"));
        // A response the socket does not take cannot be kept: closed.
        let (mut c, mut io) = (w.open(), Script::new());
        io.room = 10;
        assert_eq!(w.send(&mut c, &mut io, GET), Next::Close);
        assert_eq!(io.sent.len(), 10);
    }

    #[test]
    fn drain_closes_quiet_connections_and_lets_the_rest_finish() {
        let mut w = World::new(config());
        let (mut idle, mut io) = (w.open(), Script::new());
        w.send(&mut idle, &mut io, GET);
        assert_eq!(idle.on_drain(&mut w.spills), Next::Close);

        let (mut busy, mut io) = (w.open(), Script::new());
        io.room = 10;
        w.send(&mut busy, &mut io, GET);
        let (mut partial, mut io2) = (w.open(), Script::new());
        w.send(&mut partial, &mut io2, b"GET / HT");
        w.draining = true;
        assert_eq!(busy.on_drain(&mut w.spills), Next::Wait);
        assert_eq!(partial.on_drain(&mut w.spills), Next::Wait);
        // The request that completes gets an answer that closes, without lingering.
        assert_eq!(
            w.send(&mut partial, &mut io2, b"TP/1.1\r\nHost: t\r\n\r\n"),
            Next::Close
        );
        assert!(io2.text().contains("\r\nConnection: close\r\n") && !io2.shut);
        io.room = usize::MAX;
        assert_eq!(
            busy.on_ready(&mut io, interest::WRITE, &mut w.env()),
            Next::Wait
        );
        assert_eq!(busy.on_drain(&mut w.spills), Next::Close);
        assert_eq!(w.spills.in_use(), 0);
    }

    #[test]
    fn end_of_stream_and_failures_close() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        io.input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        io.eof = true;
        let bits = interest::READ | interest::READ_CLOSED;
        assert_eq!(c.on_ready(&mut io, bits, &mut w.env()), Next::Close);
        assert!(io.sent.is_empty());
        assert_eq!(w.spills.in_use(), 0);

        let (mut c, mut io) = (w.open(), Script::new());
        io.fail_sends = true;
        assert_eq!(w.send(&mut c, &mut io, GET), Next::Close);
    }

    #[test]
    fn panic_is_answered_then_reported() {
        let mut w = World::new(config());
        let (mut c, mut io) = (w.open(), Script::new());
        assert_eq!(
            w.send(&mut c, &mut io, b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n"),
            Next::Exit
        );
        assert!(io
            .text()
            .starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    }
}
