//! One connection as a state machine, apart from the event loop that drives it.
//!
//! A [`Conn`] knows only that bytes came, bytes may go and what time it is. Its worker hands it
//! the socket as an [`Io`], its scratch buffers, spill pool and clock reading as an [`Env`],
//! and acts on the [`Next`] it returns: keep waiting, close the socket, or end the process
//! (`/panic`). Time is whole seconds on the worker's clock, passed in; nothing here reads a
//! clock for a decision, so tests and the fuzzer run it in virtual time over a scripted socket.
//!
//! A connection normally owns no buffer. Input is read into the worker's read buffer, every
//! complete request in it is answered into the worker's output buffer, and that is sent in one
//! write. Only when bytes must wait (a request head split across reads, or a response the
//! client is not reading yet) does the connection borrow a spill buffer from the pool; it
//! gives it back as soon as nothing waits in it.

use crate::addr::Addr;
use crate::buf::Buf;
use crate::config::Config;
use crate::http::{self, Context, Status, HEAD_MAX, RESPONSE_MAX};
use crate::log::AccessLog;
use crate::slots::FreeList;
use crate::sys::{self, interest, Errno, Fd};
use crate::time::Stamps;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Output built per connection per turn: 16 pipelined answers of any size fit many times over.
pub const OUT_MAX: usize = 16 * 1024;
/// Spill buffers per worker: connections that have bytes waiting at the same moment. A client
/// that needs one when none is free is answered 503 and closed.
pub const SPILL_SLOTS: usize = 128;
/// Seconds a closing connection may keep sending before it is closed (see `finish`).
pub const LINGER_SECS: u32 = 2;

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
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
    /// The client to read the final response; then close. (The last two phases are the
    /// final ones.)
    Final,
    /// The client to read the final response; then linger, as it may still be sending.
    FinalLinger,
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

/// A spill buffer: a connection's bytes that must outlive the turn.
pub struct Spill {
    input: [u8; HEAD_MAX],
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
                input: [0; HEAD_MAX],
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
}

impl Scratch {
    /// Zeroed buffers.
    pub const EMPTY: Scratch = Scratch {
        read: [0; HEAD_MAX],
        out: [0; OUT_MAX],
    };
}

/// What a connection borrows from its worker for one call.
pub struct Env<'a> {
    /// Whole seconds on the worker's clock: the unit of deadlines.
    pub now: u32,
    /// Timeouts, whether to log, and the counters.
    pub shared: &'a crate::server::Shared,
    /// The `Date` value and the log time stamp of this second.
    pub stamps: &'a Stamps,
    /// Shutdown has begun: answer, then close.
    pub draining: bool,
    /// Counts the requests answered.
    pub requests: &'a AtomicU64,
    /// The access log.
    pub log: &'a mut AccessLog,
    /// The worker's read and output buffers.
    pub scratch: &'a mut Scratch,
    /// The worker's spill buffers.
    pub spills: &'a mut Spills,
}

/// One open connection.
pub struct Conn {
    /// The client's address, for the log.
    pub peer: Addr,
    /// Seconds at which `phase` times out.
    deadline: u32,
    /// Spill buffer index + 1, or 0.
    spill: u16,
    /// Unanswered input bytes kept in the spill buffer.
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

impl Conn {
    /// A closed connection: what every free slot holds (all zero but the phase).
    pub const FREE: Conn = Conn {
        peer: Addr {
            ip: [0; 16],
            port: 0,
            v6: false,
        },
        deadline: 0,
        spill: 0,
        pending_in: 0,
        out_start: 0,
        out_end: 0,
        phase: Phase::Head,
    };

    /// A connection just accepted from `peer` at `now`: it has `header_timeout` seconds to
    /// send a request head.
    pub fn open(peer: Addr, now: u32, config: &Config) -> Conn {
        Conn {
            peer,
            deadline: now + config.header_timeout,
            ..Conn::FREE
        }
    }

    /// What the connection waits for.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When the connection times out (see [`Conn::on_timeout`]).
    pub fn deadline(&self) -> u32 {
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
            if self.phase >= Phase::Final {
                return self.finish(io, env);
            }
            let Some((used, out_full)) = self.answer(io, len, env) else {
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
            if self.phase >= Phase::Final || out_full {
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
        if len > 0 && !self.keep_input(len, env) {
            return self.refuse(io, Status::Unavailable, env);
        }
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
    /// and sends it. Returns the input bytes used and whether the output filled up first;
    /// `None` when `/panic` was answered.
    #[inline(never)] // smaller out of line
    fn answer(&mut self, io: &mut impl Io, len: usize, env: &mut Env) -> Option<(usize, bool)> {
        if len == 0 {
            return Some((0, false)); // the first turn of `on_ready` before anything was read
        }
        let shared = env.shared;
        let health = || shared.health();
        let ctx = Context {
            date: &env.stamps.http,
            draining: env.draining,
            health: &health,
        };
        let read = &env.scratch.read;
        let mut b = Buf::new(&mut env.scratch.out);
        let mut used = 0;
        let mut out_full = false;
        let started = if env.shared.config.log {
            sys::monotonic()
        } else {
            sys::Time { secs: 0, nanos: 0 }
        };
        while used < len {
            if b.remaining() < RESPONSE_MAX {
                out_full = true;
                break;
            }
            let Some(x) = http::respond(&read[used..len], &ctx, &mut b) else {
                break;
            };
            used += x.consumed;
            bump(env.requests, 1);
            if env.shared.config.log {
                let t = sys::monotonic();
                let nanos =
                    (t.secs - started.secs) * 1_000_000_000 + t.nanos as u64 - started.nanos as u64;
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
        Some((used, out_full))
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
        self.deadline = env.now + LINGER_SECS;
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
        let cfg = &env.shared.config;
        let (phase, secs) = match self.phase {
            Phase::Linger | Phase::Closed => return,
            Phase::Final | Phase::FinalLinger => (self.phase, cfg.header_timeout),
            _ if self.out_start != self.out_end => (Phase::Write, cfg.header_timeout),
            p if self.pending_in > 0 || p == Phase::Head && !served => {
                (Phase::Head, cfg.header_timeout)
            }
            _ => (Phase::Idle, cfg.idle_timeout),
        };
        if phase != self.phase || served {
            self.phase = phase;
            self.deadline = env.now + secs;
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
        if self.spill != 0 && self.quiet() {
            spills.free.release(self.spill as usize - 1);
            self.spill = 0;
        }
    }

    /// Moves input kept from an earlier turn into the read buffer; returns its length.
    fn take_input(&mut self, env: &mut Env) -> usize {
        let n = self.pending_in as usize;
        if n > 0 {
            let kept = &env.spills.get(self.spill as usize - 1).input;
            env.scratch.read[..n].copy_from_slice(&kept[..n]);
            self.pending_in = 0;
            self.release_spill(env.spills);
        }
        n
    }

    /// Keeps `read[..len]` (an incomplete head, or requests waiting behind unsent output).
    fn keep_input(&mut self, len: usize, env: &mut Env) -> bool {
        let Some(i) = self.spill_of(env.spills) else {
            return false;
        };
        env.spills.get(i).input[..len].copy_from_slice(&env.scratch.read[..len]);
        self.pending_in = len as u16;
        true
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
