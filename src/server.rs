//! The event loop: workers, connections and their buffers.
//!
//! Each worker process owns an epoll instance, a table of connections and a pool of spill
//! buffers, all reserved in `.bss` (see `Memory`): nothing is allocated at run time and
//! untouched memory costs no RSS. Each worker has its own listening socket on the same address
//! (`SO_REUSEPORT`), so the kernel spreads new connections evenly and wakes one worker for each.
//!
//! A connection normally owns no buffer. Input is read into the worker's read buffer, every
//! complete request in it is answered into the worker's output buffer, and that is sent in one
//! write. Only when bytes must wait (a request head split across reads, or a response the
//! client is not reading yet) does the connection borrow a spill buffer from the pool.

use crate::addr::Addr;
use crate::buf::Buf;
use crate::config::{Config, MAX_WORKERS};
use crate::http::{self, Context, Health, Status, HEAD_MAX, RESPONSE_MAX};
use crate::log::AccessLog;
use crate::sys::{self, interest, Epoll, Errno, Event, Fd, Process, Reserved};
use crate::time::Stamps;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Connections one worker can hold.
const CONN_SLOTS: usize = 32 * 1024;
/// Spill buffers per worker: connections that have bytes waiting at the same moment. A client
/// that needs one when none is free is answered 503 and closed.
const SPILL_SLOTS: usize = 128;
/// Output built per connection per turn: 16 pipelined answers of any size fit many times over.
const OUT_MAX: usize = 16 * 1024;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;
/// How long accepting pauses after running out of descriptors, instead of spinning.
const ACCEPT_PAUSE_MS: u64 = 100;
/// Longest wait of an access-log line before it is written.
const LOG_DELAY_MS: u64 = 10;
/// Time given to responses in flight after SIGTERM before the remaining connections close.
const DRAIN_MS: u64 = 800;
/// Seconds a closing connection may keep sending before it is closed (see `finish`).
const LINGER_SECS: u32 = 2;
/// Backlog of the listening socket: the kernel caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: i32 = 4096;

const LISTENER: u64 = u64::MAX;
const WAKE: u64 = u64::MAX - 1;
const SIGNALS: u64 = u64::MAX - 2;

/// What an open connection waits for; decides what its deadline means.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Wait {
    /// A request head (from accept, or from its first byte after an idle spell).
    Head = 0,
    /// The next request on a kept-alive connection.
    Idle,
    /// The client to read what is queued for it.
    Write,
    /// The client to finish sending after the final response (see `finish`).
    Linger,
}

struct Conn {
    sock: Option<Fd>,
    peer: Addr,
    /// Seconds since start-up at which `wait` times out.
    deadline: u32,
    /// Next free slot + 1 while this slot is free.
    next_free: u32,
    /// Spill buffer index + 1, or 0.
    spill: u16,
    /// Unanswered input bytes kept in the spill buffer.
    pending_in: u16,
    /// Unsent output kept in the spill buffer, `out_start..out_end`.
    out_start: u16,
    out_end: u16,
    wait: Wait,
    /// Close once the queued output is sent.
    close_after: bool,
    /// When closing, drain the client's input first (it may still be sending).
    linger: bool,
}

impl Conn {
    const FREE: Conn = Conn {
        sock: None,
        peer: Addr {
            ip: [0; 16],
            port: 0,
            v6: false,
        },
        deadline: 0,
        next_free: 0,
        spill: 0,
        pending_in: 0,
        out_start: 0,
        out_end: 0,
        wait: Wait::Head,
        close_after: false,
        linger: false,
    };
}

struct Spill {
    input: [u8; HEAD_MAX],
    output: [u8; OUT_MAX],
}

/// A worker's memory, reserved in `.bss`: every field starts all-zero.
struct Memory {
    conns: [Conn; CONN_SLOTS],
    spills: [Spill; SPILL_SLOTS],
    /// Free spill indexes (a stack of `spill_free` entries).
    spill_stack: [u16; SPILL_SLOTS],
    read: [u8; HEAD_MAX],
    out: [u8; OUT_MAX],
    log: AccessLog,
    events: [Event; EVENTS],
}

static MEMORY: Reserved<Memory> = Reserved::new(Memory {
    conns: [Conn::FREE; CONN_SLOTS],
    spills: [const {
        Spill {
            input: [0; HEAD_MAX],
            output: [0; OUT_MAX],
        }
    }; SPILL_SLOTS],
    spill_stack: [0; SPILL_SLOTS],
    read: [0; HEAD_MAX],
    out: [0; OUT_MAX],
    log: AccessLog::EMPTY,
    events: [Event::EMPTY; EVENTS],
});

/// Shared counters per worker: requests answered, then connections open, each worker's pair
/// on its own cache line (8 × u64) so workers never write the same line.
const COUNTER_STRIDE: usize = 8;

/// Adds to a counter that only the calling worker writes: a plain load and store, no locked
/// instruction on the hot path.
fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
}

fn monotonic_ms() -> u64 {
    let t = sys::monotonic();
    t.secs * 1000 + t.nanos as u64 / 1_000_000
}

/// What every worker shares, set up by `serve` before the workers are forked.
pub struct Shared {
    /// The address every worker's listening socket is bound to.
    pub bound: Addr,
    /// Written once when shutdown begins; every worker watches it.
    pub wake: Fd,
    /// The configuration.
    pub config: Config,
    /// Worker processes.
    pub workers: usize,
    /// Counters in memory shared by all workers (see `COUNTER_STRIDE`).
    pub counters: &'static [AtomicU64],
    /// Monotonic time of start-up, for uptime and deadlines.
    pub started_ms: u64,
}

impl Shared {
    /// Sum of one counter (0: requests, 1: connections) over all workers.
    fn total(&self, field: usize) -> u64 {
        (0..self.workers)
            .map(|w| self.counters[w * COUNTER_STRIDE + field].load(Relaxed))
            .sum()
    }

    fn health(&self) -> Health {
        Health {
            uptime_secs: (monotonic_ms() - self.started_ms) / 1000,
            // Asked while answering a request, which counts as served.
            requests: self.total(0) + 1,
            connections: self.total(1),
        }
    }
}

/// Sets up shared state for `workers` worker processes.
pub fn shared(bound: Addr, wake: Fd, config: Config, workers: usize) -> sys::Result<Shared> {
    let counters = sys::shared_counters(MAX_WORKERS * COUNTER_STRIDE)?;
    Ok(Shared {
        bound,
        wake,
        config,
        workers,
        counters,
        started_ms: monotonic_ms(),
    })
}

/// Starts the server: forks workers 1.. as child processes, each of which runs until it has
/// drained, and returns worker 0, set up and locked down, for this process to [`Worker::run`];
/// it also handles `signals`. When a worker dies otherwise (`/panic` in a child), the whole
/// server exits with status 1, as a single process would.
pub fn start<'a>(
    shared: &'a Shared,
    listener: Fd,
    signals: Fd,
    process: &mut Process,
) -> Worker<'a> {
    let workers = shared.workers;
    let mut children = [0; MAX_WORKERS];
    for (id, child) in children.iter_mut().enumerate().take(workers).skip(1) {
        match sys::fork() {
            Ok(Some(pid)) => *child = pid,
            Ok(None) => {
                drop(signals);
                // A listening socket of its own in the same SO_REUSEPORT group: the kernel
                // spreads connections evenly, where one shared socket would not.
                let defer = shared.config.header_timeout;
                let own = match sys::listen(&shared.bound, LISTEN_BACKLOG, defer, true) {
                    Ok(l) => l,
                    Err(e) => crate::fatal(b"a worker cannot listen", e),
                };
                Worker::new(id, shared, own, None, process).run();
                sys::exit(0);
            }
            Err(e) => crate::fatal(b"cannot fork a worker", e),
        }
    }
    let mut w = Worker::new(0, shared, listener, Some(signals), process);
    w.children = children;
    w
}

/// One worker process's event loop and connections.
pub struct Worker<'a> {
    id: usize,
    /// Worker processes still running (pids; 0 when gone). Only worker 0 has children.
    children: [sys::Pid; MAX_WORKERS],
    epoll: Epoll,
    shared: &'a Shared,
    listener: Fd,
    signals: Option<Fd>,
    mem: &'static mut Memory,
    stamps: Stamps,
    /// Monotonic milliseconds, read once per loop turn.
    now_ms: u64,
    /// Whole seconds since start-up, the unit of connection deadlines.
    now: u32,
    last_sweep: u32,
    accepting: bool,
    resume_accept_ms: u64,
    draining: bool,
    drain_deadline_ms: u64,
    log_due_ms: u64,
    open: u64,
    /// Free connection slot + 1, or 0.
    free_head: u32,
    /// Slots ever used: `conns[..fresh]` is all that sweeps look at.
    fresh: u32,
    spill_free: usize,
    spill_fresh: usize,
}

impl<'a> Worker<'a> {
    fn new(
        id: usize,
        shared: &'a Shared,
        listener: Fd,
        signals: Option<Fd>,
        process: &mut Process,
    ) -> Worker<'a> {
        let Some(mem) = MEMORY.take(process) else {
            crate::fatal(b"internal error", Errno(0))
        };
        let epoll = match Epoll::new() {
            Ok(e) => e,
            Err(e) => crate::fatal(b"cannot create epoll", e),
        };
        // The listener is level-triggered: connections still queued after a wake-up are
        // reported again on the next turn.
        let reg = epoll
            .add(&listener, LISTENER, interest::READ)
            .and_then(|_| epoll.add(&shared.wake, WAKE, interest::READ))
            .and_then(|_| match &signals {
                Some(s) => epoll.add(s, SIGNALS, interest::READ),
                None => Ok(()),
            });
        if let Err(e) = reg {
            crate::fatal(b"cannot watch the listener", e);
        }
        let mut w = Worker {
            id,
            children: [0; MAX_WORKERS],
            epoll,
            shared,
            listener,
            signals,
            mem,
            stamps: Stamps::at(sys::wall_clock().secs),
            now_ms: 0,
            now: 0,
            last_sweep: 0,
            accepting: true,
            resume_accept_ms: 0,
            draining: false,
            drain_deadline_ms: 0,
            log_due_ms: 0,
            open: 0,
            free_head: 0,
            fresh: 0,
            spill_free: 0,
            spill_fresh: 0,
        };
        w.tick();
        if shared.config.seccomp {
            if let Err(e) = sys::lock_down() {
                crate::fatal(b"cannot install the seccomp filter", e);
            }
        }
        w
    }

    /// Serves until the drain after SIGTERM or SIGINT has ended (see [`start`]).
    pub fn run(&mut self) {
        loop {
            let timeout = if self.draining || !self.accepting {
                ACCEPT_PAUSE_MS as i32
            } else if self.mem.log.pending() {
                LOG_DELAY_MS as i32
            } else if self.open > 0 {
                1000 // deadlines are checked once a second
            } else {
                -1
            };
            let n = self.epoll.wait(&mut self.mem.events, timeout).unwrap_or(0);
            self.tick();
            for i in 0..n {
                let ev = self.mem.events[i];
                match ev.token() {
                    LISTENER => self.accept_one(),
                    WAKE => self.begin_drain(),
                    SIGNALS => self.on_signal(),
                    slot => self.drive(slot as usize, ev.bits()),
                }
            }
            if self.now != self.last_sweep {
                self.last_sweep = self.now;
                self.sweep();
            }
            if !self.accepting && !self.draining && self.now_ms >= self.resume_accept_ms {
                self.accepting = self
                    .epoll
                    .add(&self.listener, LISTENER, interest::READ)
                    .is_ok();
            }
            // Log lines wait up to LOG_DELAY_MS: under load one write carries hundreds of them.
            if self.now_ms >= self.log_due_ms {
                self.mem.log.flush();
                self.log_due_ms = self.now_ms + LOG_DELAY_MS;
            }
            let children_left = self.children.iter().any(|&c| c != 0);
            if self.draining
                && (self.open == 0 && !children_left || self.now_ms >= self.drain_deadline_ms)
            {
                for slot in 0..self.fresh as usize {
                    self.close(slot);
                }
                self.mem.log.flush();
                // Workers past the deadline are stopped; each has closed what it could.
                for &c in self.children.iter().filter(|&&c| c != 0) {
                    sys::kill(c);
                }
                return;
            }
        }
    }

    fn tick(&mut self) {
        self.now_ms = monotonic_ms();
        self.now = ((self.now_ms - self.shared.started_ms) / 1000) as u32;
        // A vDSO read, no system call; the strings are re-rendered only when the second changes.
        self.stamps.update(sys::wall_clock().secs);
    }

    // -----------------------------------------------------------------------------------------
    // Accepting and shutting down

    /// Accepts one connection per wake-up, as nginx does by default: the listener is
    /// level-triggered, so more waiting connections are reported on the next turn, and no
    /// accept is wasted on `EAGAIN`.
    fn accept_one(&mut self) {
        if self.draining || !self.accepting {
            return;
        }
        match sys::accept(&self.listener) {
            Ok((sock, peer)) => self.admit(sock, peer),
            Err(e) if e.is_resource_exhaustion() => {
                // A level-triggered listener would report the same pending connection
                // forever: stop watching it for a while (connections closing free fds).
                let _ = self.epoll.delete(&self.listener);
                self.accepting = false;
                self.resume_accept_ms = self.now_ms + ACCEPT_PAUSE_MS;
            }
            Err(_) => {} // EAGAIN (another worker took it), ECONNABORTED: nothing to do
        }
    }

    fn admit(&mut self, sock: Fd, peer: Addr) {
        let full = self.shared.total(1) >= self.shared.config.max_connections;
        let slot = if full { None } else { self.alloc_slot() };
        let Some(slot) = slot else {
            // Over the cap: a clear 503 instead of a silent reset; existing clients are unaffected.
            let mut b = Buf::new(&mut self.mem.out);
            http::write_error(&mut b, &self.stamps.http, Status::Unavailable);
            let _ = sys::send(&sock, b.as_bytes());
            sys::shutdown_write(&sock);
            return;
        };
        let c = &mut self.mem.conns[slot];
        *c = Conn {
            sock: Some(sock),
            peer,
            deadline: self.now + self.shared.config.header_timeout,
            ..Conn::FREE
        };
        self.open += 1;
        bump(&self.shared.counters[self.id * COUNTER_STRIDE + 1], 1);
        // The request is already there (TCP_DEFER_ACCEPT): answer it first. A connection that
        // closes right away is never registered with epoll; edge-triggered registration
        // afterwards still reports data that arrived in between.
        self.drive(slot, interest::READ);
        if let Some(sock) = &self.mem.conns[slot].sock {
            let events = interest::READ | interest::WRITE | interest::READ_CLOSED | interest::EDGE;
            if self.epoll.add(sock, slot as u64, events).is_err() {
                self.close(slot);
            }
        }
    }

    fn on_signal(&mut self) {
        let mut stop = false;
        if let Some(s) = &self.signals {
            while let Ok(signo) = sys::take_signal(s) {
                stop |= signo != sys::signal::CHILD;
            }
        }
        if stop {
            // Drain here first, so that workers ending because of the wake-up are expected.
            sys::notify(&self.shared.wake);
            self.begin_drain();
        }
        while let Some(pid) = sys::reap_child() {
            if let Some(c) = self.children.iter_mut().find(|c| **c == pid) {
                *c = 0;
            }
            if !self.draining {
                // A worker died on its own (`/panic`, or killed): the server is not whole any
                // more, so it ends the way a single process would.
                self.mem.log.flush();
                crate::say(sys::STDERR, &[b"tinyapi: a worker ended; stopping\n"]);
                for &c in self.children.iter().filter(|&&c| c != 0) {
                    sys::kill(c);
                }
                sys::exit(1);
            }
        }
    }

    /// Stops accepting, closes idle connections and lets the rest finish (see `run`).
    fn begin_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.drain_deadline_ms = self.now_ms + DRAIN_MS;
        let _ = self.epoll.delete(&self.shared.wake);
        if self.accepting {
            let _ = self.epoll.delete(&self.listener);
        }
        for slot in 0..self.fresh as usize {
            let c = &self.mem.conns[slot];
            if c.sock.is_some() && c.pending_in == 0 && c.out_start == c.out_end {
                self.close(slot);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Connections

    /// Reads, answers and writes on one connection until it would block.
    fn drive(&mut self, slot: usize, bits: u32) {
        let Some(c) = self.mem.conns.get(slot) else {
            return;
        };
        if c.sock.is_none() {
            return; // closed earlier in this batch of events
        }
        if c.wait == Wait::Linger {
            return self.discard_input(slot);
        }
        // A short read means the socket is empty, unless the peer also closed: then read on to
        // see the end of stream.
        let peer_closed = bits & PEER_CLOSED != 0;
        let had_output = c.out_start != c.out_end;
        let mut can_read = had_output || bits & (interest::READ | PEER_CLOSED) != 0;
        let mut len = self.take_input(slot);
        let mut served = false;
        loop {
            match self.flush_output(slot) {
                Flushed::All => {}
                Flushed::Blocked => break,
                Flushed::Failed => return self.close(slot),
            }
            if self.mem.conns[slot].close_after {
                return self.finish(slot);
            }
            let (used, out_full) = self.answer(slot, len);
            if used > 0 {
                served = true;
                shift(&mut self.mem.read, used, len);
                len -= used;
            }
            let c = &self.mem.conns[slot];
            let Some(sock) = &c.sock else { return };
            if c.close_after {
                len = 0; // nothing after a closing request is answered
            }
            if c.out_start != c.out_end {
                break; // the client is not reading: wait for EPOLLOUT
            }
            if c.close_after || out_full {
                continue;
            }
            if !can_read {
                break;
            }
            match sys::recv(sock, &mut self.mem.read[len..]) {
                Ok(0) => return self.close(slot),
                Ok(n) => {
                    // A short read emptied the socket; edge-triggered epoll reports new data.
                    can_read = peer_closed || len + n == HEAD_MAX;
                    len += n;
                }
                Err(Errno::AGAIN) => break,
                Err(_) => return self.close(slot),
            }
        }
        if len > 0 && !self.keep_input(slot, len) {
            return self.refuse(slot, Status::Unavailable);
        }
        self.settle(slot, served);
    }

    /// Answers the complete requests at the start of the read buffer into the output buffer
    /// and sends it. Returns the input bytes used and whether the output filled up first.
    #[inline(never)] // smaller out of line
    fn answer(&mut self, slot: usize, len: usize) -> (usize, bool) {
        if len == 0 {
            return (0, false); // the first turn of `drive` before anything was read
        }
        let Memory {
            conns,
            read,
            out,
            log,
            ..
        } = &mut *self.mem;
        let c = &mut conns[slot];
        let shared = self.shared;
        let health = || shared.health();
        let ctx = Context {
            date: &self.stamps.http,
            draining: self.draining,
            health: &health,
        };
        let mut b = Buf::new(out);
        let mut used = 0;
        let mut out_full = false;
        let started = if self.shared.config.log {
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
            bump(&self.shared.counters[self.id * COUNTER_STRIDE], 1);
            if self.shared.config.log {
                let t = sys::monotonic();
                let nanos =
                    (t.secs - started.secs) * 1_000_000_000 + t.nanos as u64 - started.nanos as u64;
                log.line(&self.stamps.log, &c.peer, &x, nanos);
            }
            if x.exit {
                if let Some(sock) = &c.sock {
                    let _ = sys::send(sock, b.as_bytes());
                }
                log.flush();
                crate::panic_exit(&self.stamps.log, &c.peer);
            }
            if !x.keep_alive {
                c.close_after = true;
                // Input left over, or an error response: the client may still be sending.
                c.linger = used < len || x.status != Status::Ok || len == HEAD_MAX;
                break;
            }
        }
        let n = b.len();
        if n > 0 {
            self.send_or_keep(slot, n);
        }
        (used, out_full)
    }

    /// Sends `out[..n]`; what the socket does not take waits in a spill buffer.
    fn send_or_keep(&mut self, slot: usize, n: usize) {
        let Some(sock) = &self.mem.conns[slot].sock else {
            return;
        };
        let sent = match sys::send(sock, &self.mem.out[..n]) {
            Ok(k) => k,
            Err(Errno::AGAIN) => 0,
            Err(_) => {
                let c = &mut self.mem.conns[slot];
                c.close_after = true;
                c.linger = false;
                return;
            }
        };
        if sent == n {
            return;
        }
        let Some(i) = self.spill_of(slot) else {
            // No buffer to hold the rest: the response cannot be completed.
            return self.close(slot);
        };
        let Memory {
            conns, spills, out, ..
        } = &mut *self.mem;
        spills[i].output[..n - sent].copy_from_slice(&out[sent..n]);
        conns[slot].out_start = 0;
        conns[slot].out_end = (n - sent) as u16;
    }

    /// Sends output kept from earlier turns.
    fn flush_output(&mut self, slot: usize) -> Flushed {
        let Memory { conns, spills, .. } = &mut *self.mem;
        let c = &mut conns[slot];
        if c.out_start == c.out_end {
            return Flushed::All;
        }
        let Some(sock) = &c.sock else {
            return Flushed::Failed;
        };
        let spill = &spills[c.spill as usize - 1];
        match sys::send(
            sock,
            &spill.output[c.out_start as usize..c.out_end as usize],
        ) {
            Ok(k) => {
                c.out_start += k as u16;
                if c.out_start < c.out_end {
                    return Flushed::Blocked;
                }
                c.out_start = 0;
                c.out_end = 0;
                self.release_spill(slot);
                Flushed::All
            }
            Err(Errno::AGAIN) => Flushed::Blocked,
            Err(_) => Flushed::Failed,
        }
    }

    /// After the final response: close now, or first let the client finish sending so that
    /// unread input does not turn the close into a reset that destroys the response in flight
    /// (RFC 9112 §9.6).
    fn finish(&mut self, slot: usize) {
        let c = &mut self.mem.conns[slot];
        if !c.linger || self.draining {
            return self.close(slot);
        }
        if let Some(sock) = &c.sock {
            sys::shutdown_write(sock);
        }
        c.wait = Wait::Linger;
        c.deadline = self.now + LINGER_SECS;
        self.discard_input(slot);
    }

    fn discard_input(&mut self, slot: usize) {
        loop {
            let Some(sock) = &self.mem.conns[slot].sock else {
                return;
            };
            match sys::recv(sock, &mut self.mem.read) {
                Ok(n) if n > 0 => {}
                Err(Errno::AGAIN) => return,
                _ => return self.close(slot),
            }
        }
    }

    /// Answers `status` (best effort) and closes: used when a connection cannot go on.
    fn refuse(&mut self, slot: usize, status: Status) {
        let mut b = Buf::new(&mut self.mem.out);
        http::write_error(&mut b, &self.stamps.http, status);
        if let Some(sock) = &self.mem.conns[slot].sock {
            let _ = sys::send(sock, b.as_bytes());
        }
        self.close(slot);
    }

    /// Sets what the connection now waits for, and its deadline when that changed.
    fn settle(&mut self, slot: usize, served: bool) {
        let cfg = &self.shared.config;
        let c = &mut self.mem.conns[slot];
        if c.sock.is_none() || c.wait == Wait::Linger {
            return;
        }
        let (wait, secs) = if c.out_start != c.out_end {
            (Wait::Write, cfg.header_timeout)
        } else if c.pending_in > 0 || c.wait == Wait::Head && !served {
            (Wait::Head, cfg.header_timeout)
        } else {
            (Wait::Idle, cfg.idle_timeout)
        };
        if wait != c.wait || served {
            c.wait = wait;
            c.deadline = self.now + secs;
        }
    }

    /// Closes connections whose deadline has passed. A client that sent part of a request
    /// head is told 408 first.
    fn sweep(&mut self) {
        for slot in 0..self.fresh as usize {
            let c = &self.mem.conns[slot];
            if c.sock.is_none() || c.deadline > self.now {
                continue;
            }
            if c.wait == Wait::Head && c.pending_in > 0 {
                self.refuse(slot, Status::RequestTimeout);
            } else {
                self.close(slot);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        let c = &mut self.mem.conns[slot];
        let was_open = c.sock.take().is_some();
        c.pending_in = 0;
        c.out_start = 0;
        c.out_end = 0;
        self.release_spill(slot);
        if was_open {
            self.open -= 1;
            self.shared.counters[self.id * COUNTER_STRIDE + 1].store(self.open, Relaxed);
            self.release_slot(slot);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Slots and spill buffers

    fn alloc_slot(&mut self) -> Option<usize> {
        if self.free_head != 0 {
            let slot = self.free_head as usize - 1;
            self.free_head = self.mem.conns[slot].next_free;
            self.mem.conns[slot].next_free = 0;
            Some(slot)
        } else if (self.fresh as usize) < CONN_SLOTS {
            self.fresh += 1;
            Some(self.fresh as usize - 1)
        } else {
            None
        }
    }

    fn release_slot(&mut self, slot: usize) {
        self.mem.conns[slot].next_free = self.free_head; // 0 ends the list
        self.free_head = slot as u32 + 1;
    }

    /// The connection's spill buffer index, borrowing one from the pool if it has none.
    fn spill_of(&mut self, slot: usize) -> Option<usize> {
        let c = &mut self.mem.conns[slot];
        if c.spill == 0 {
            let i = if self.spill_free > 0 {
                self.spill_free -= 1;
                self.mem.spill_stack[self.spill_free] as usize
            } else if self.spill_fresh < SPILL_SLOTS {
                self.spill_fresh += 1;
                self.spill_fresh - 1
            } else {
                return None;
            };
            c.spill = i as u16 + 1;
        }
        Some(c.spill as usize - 1)
    }

    /// Returns the spill buffer to the pool once it holds nothing.
    fn release_spill(&mut self, slot: usize) {
        let c = &mut self.mem.conns[slot];
        if c.spill != 0 && c.pending_in == 0 && c.out_start == c.out_end {
            self.mem.spill_stack[self.spill_free] = c.spill - 1;
            self.spill_free += 1;
            c.spill = 0;
        }
    }

    /// Moves input kept from an earlier turn into the read buffer; returns its length.
    fn take_input(&mut self, slot: usize) -> usize {
        let Memory {
            conns,
            spills,
            read,
            ..
        } = &mut *self.mem;
        let c = &mut conns[slot];
        let n = c.pending_in as usize;
        if n > 0 {
            read[..n].copy_from_slice(&spills[c.spill as usize - 1].input[..n]);
            c.pending_in = 0;
            self.release_spill(slot);
        }
        n
    }

    /// Keeps `read[..len]` (an incomplete head, or requests waiting behind unsent output).
    fn keep_input(&mut self, slot: usize, len: usize) -> bool {
        let Some(i) = self.spill_of(slot) else {
            return false;
        };
        let Memory {
            conns,
            spills,
            read,
            ..
        } = &mut *self.mem;
        spills[i].input[..len].copy_from_slice(&read[..len]);
        conns[slot].pending_in = len as u16;
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

/// Event bits saying the peer closed or the connection failed: read until end of stream.
const PEER_CLOSED: u32 = interest::READ_CLOSED | interest::FAILED;

enum Flushed {
    All,
    Blocked,
    Failed,
}
