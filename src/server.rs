//! The event loop: accepting, admission, drain and the connection table of one worker.
//!
//! Each worker process owns an epoll instance, a table of connections and a pool of spill
//! buffers, all reserved in `.bss` (see `Memory`): nothing is allocated at run time and
//! untouched memory costs no RSS. Each worker has its own listening socket on the same address
//! (`SO_REUSEPORT`), so the kernel spreads new connections evenly and wakes one worker for each.
//! What a connection does with its bytes is [`crate::conn`]'s business; the loop hands it the
//! socket, its buffers and the time, and closes the socket when told to. Forking and signals
//! are [`crate::supervise`]'s: [`Worker::run`] returns when the signalfd it watches is readable,
//! and [`crate::serve`] decides what the signals mean.

use crate::addr::Addr;
use crate::buf::Buf;
use crate::config::Config;
use crate::conn::{Conn, Env, Next, Phase, Scratch, Spills};
use crate::http::{self, Status, HEAD_MAX};
use crate::log::AccessLog;
use crate::shared::{monotonic, Shared, CONNECTIONS, COUNTER_STRIDE, REQUESTS};
use crate::slots::FreeList;
use crate::sys::{self, interest, Epoll, Event, Fd, Process, Reserved};
use crate::time::{Millis, Secs, Stamps, LOG_STAMP_LEN};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Connections one worker can hold. A power of two: slot indexes, always in range, are taken
/// modulo `CONN_SLOTS` so that indexing has no panic path.
const CONN_SLOTS: usize = 32 * 1024;
const _: () = assert!(CONN_SLOTS.is_power_of_two());
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;
/// How long accepting pauses after running out of descriptors, instead of spinning.
const ACCEPT_PAUSE: Millis = Millis(100);
/// Longest wait of an access-log line before it is written.
const LOG_DELAY: Millis = Millis(10);
/// Time given to responses in flight after SIGTERM before the remaining connections close.
const DRAIN: Millis = Millis(800);
/// How often workers look at `STOP_LINE` during the shutdown delay, which a second signal cuts
/// short.
const DELAY_POLL: Millis = Millis(100);
/// Descriptors a worker keeps besides its connections: stdin, stdout, stderr, the signalfd
/// (worker 0), the listener, the wake-up eventfd and epoll (inherited ones are closed at start),
/// and one kept free, so that a connection over the cap is still accepted and answered.
const OWN_FDS: u64 = 8;
/// Backlog of the listening socket: the kernel caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: i32 = 4096;

const LISTENER: u64 = u64::MAX;
const WAKE: u64 = u64::MAX - 1;
const SIGNALS: u64 = u64::MAX - 2;

/// One entry of the connection table: the socket (`None` while the slot is free) and the
/// connection's state.
struct Slot {
    sock: Option<Fd>,
    conn: Conn,
}

/// A worker's memory, reserved in `.bss`: every field starts all-zero.
struct Memory {
    slots: [Slot; CONN_SLOTS],
    free: FreeList<CONN_SLOTS>,
    spills: Spills,
    scratch: Scratch,
    log: AccessLog,
    events: [Event; EVENTS],
    /// Each slot's buffer for input kept between turns (see `conn`): address space only, until
    /// a connection in the slot keeps a partial head in it (a 4 KiB page per 4 KiB of head).
    heads: [[u8; HEAD_MAX]; CONN_SLOTS],
}

static MEMORY: Reserved<Memory> = Reserved::new(Memory {
    slots: [const {
        Slot {
            sock: None,
            conn: Conn::FREE,
        }
    }; CONN_SLOTS],
    free: FreeList::EMPTY,
    spills: Spills::EMPTY,
    scratch: Scratch::EMPTY,
    log: AccessLog::EMPTY,
    events: [Event::EMPTY; EVENTS],
    heads: [[0; HEAD_MAX]; CONN_SLOTS],
});

/// Opens a listening socket for the server on `addr`; `shared` when each worker binds its own
/// to the same address. The one place listeners are made.
pub fn listen(addr: &Addr, config: &Config, shared: bool) -> sys::Result<Fd> {
    sys::listen(addr, LISTEN_BACKLOG, config.timeouts.header.0, shared)
}

/// Why a connection is driven.
#[derive(Clone, Copy)]
enum Cause {
    /// Its socket is ready: the epoll event bits.
    Ready(u32),
    /// The clock moved: it may have timed out.
    Clock,
}

/// Why [`Worker::run`] returned.
#[derive(PartialEq, Eq)]
pub enum Ended {
    /// Signals are pending on the signalfd (worker 0): read them, then run again.
    Signals,
    /// The drain is over: every connection is closed and the log is flushed.
    Drained,
}

/// One worker process's event loop and connection table.
pub struct Worker<'a> {
    /// This worker's line of the shared counters.
    counters: &'a [AtomicU64; COUNTER_STRIDE],
    epoll: Epoll,
    shared: &'a Shared,
    listener: Fd,
    /// Worker 0: other workers still run, and the drain waits for them (until its deadline).
    others: bool,
    mem: &'static mut Memory,
    stamps: Stamps,
    /// The monotonic clock, read once per loop turn.
    now_ms: Millis,
    /// Whole seconds since start-up, the unit of connection deadlines.
    now: Secs,
    /// No connection's deadline is earlier (it may be later: deadlines move on).
    next_sweep: Secs,
    accepting: bool,
    /// When accepting resumes after a pause; `NEVER` when not paused.
    resume_accept_ms: Millis,
    /// Worker 0: the log time stamps of the shutdown delay's start and end, for the stop line.
    delay_span: [[u8; LOG_STAMP_LEN]; 2],
    /// When the drain ends; `NEVER` before it began (see `draining`).
    drain_deadline_ms: Millis,
    log_due_ms: Millis,
    open: u64,
    /// Connections this worker may hold: its descriptor limit less `OWN_FDS` (see `admit`).
    cap: u64,
    /// Where `shed_idle` starts looking.
    shed_from: usize,
}

impl<'a> Worker<'a> {
    /// Sets up worker `id` on `listener`, watching `signals` too for worker 0.
    pub fn new(
        id: usize,
        shared: &'a Shared,
        listener: Fd,
        signals: Option<&Fd>,
        process: &mut Process,
    ) -> Worker<'a> {
        // Taken once per process: each worker is a process of its own.
        let mem = MEMORY.take(process).unwrap();
        let epoll = match Epoll::new() {
            Ok(e) => e,
            Err(e) => crate::fatal(b"cannot create epoll", e),
        };
        // The listener is level-triggered: connections still queued after a wake-up are
        // reported again on the next turn.
        let reg = epoll
            .add(&listener, LISTENER, interest::READ)
            // Edge-triggered: the eventfd stays readable once written, and is reported only
            // when written (a wake-up with nothing to do: `run` then follows `STOP_LINE`).
            .and_then(|_| epoll.add(&shared.wake, WAKE, interest::READ | interest::EDGE))
            .and_then(|_| match signals {
                Some(s) => epoll.add(s, SIGNALS, interest::READ),
                None => Ok(()),
            });
        if let Err(e) = reg {
            crate::fatal(b"cannot watch the listener", e);
        }
        let mut w = Worker {
            counters: &shared.counters[id],
            epoll,
            shared,
            listener,
            others: false,
            mem,
            stamps: Stamps::at(sys::wall_clock().secs),
            now_ms: Millis(0),
            now: Secs(0),
            next_sweep: Secs::NEVER,
            accepting: true,
            resume_accept_ms: Millis::NEVER,
            delay_span: [[0; LOG_STAMP_LEN]; 2],
            drain_deadline_ms: Millis::NEVER,
            log_due_ms: Millis(0),
            open: 0,
            cap: 0,
            shed_from: CONN_SLOTS, // the search starts at slot 0
        };
        w.cap = sys::fd_limit()
            .saturating_sub(OWN_FDS)
            .min(CONN_SLOTS as u64);
        w.tick();
        w
    }

    /// Serves until the drain after SIGTERM or SIGINT has ended, or (worker 0) until signals
    /// are pending.
    // Out of line: inlined into `serve` it costs more than a call.
    #[inline(never)]
    pub fn run(&mut self) -> Ended {
        loop {
            let mut signalled = false;
            let timeout = self.timeout();
            let n = self.epoll.wait(&mut self.mem.events, timeout).unwrap_or(0);
            self.tick();
            for i in 0..n {
                let ev = self.mem.events[i % EVENTS]; // i < n <= EVENTS: no panic path
                match ev.token() {
                    LISTENER => self.accept_one(),
                    SIGNALS => signalled = true,
                    // WAKE (shutdown began: see below) is no slot, and `drive` does nothing
                    // with it: cheaper than an arm of its own.
                    slot => self.drive(slot as usize, Cause::Ready(ev.bits())),
                }
            }
            // Shutdown began: drain at the end of the delay, which a second signal moves closer.
            // Until then the worker accepts and answers as before, but every answer closes.
            if self.shared.stopping() && self.now_ms >= self.shared.stop_at() {
                self.begin_drain();
            }
            if self.now >= self.next_sweep {
                self.sweep();
            }
            if self.now_ms >= self.resume_accept_ms {
                self.resume_accept_ms = Millis::NEVER;
                self.accepting = self
                    .epoll
                    .add(&self.listener, LISTENER, interest::READ)
                    .is_ok();
            }
            // Log lines wait up to LOG_DELAY: under load one write carries hundreds of them.
            if self.now_ms >= self.log_due_ms {
                self.mem.log.flush();
                self.log_due_ms = self.now_ms + LOG_DELAY;
            }
            if self.draining() && self.open == 0 && !self.others
                || self.now_ms >= self.drain_deadline_ms
            {
                for slot in 0..self.mem.free.high_water() {
                    self.close(slot);
                }
                self.mem.log.flush();
                return Ended::Drained;
            }
            if signalled {
                return Ended::Signals;
            }
        }
    }

    /// Worker 0: whether other workers still run (the drain waits for them until its
    /// deadline).
    pub fn set_others(&mut self, running: bool) {
        self.others = running;
    }

    /// Worker 0: the log time stamps of the shutdown delay's start and end; all zero when there
    /// was none.
    pub fn delay_span(&self) -> &[[u8; LOG_STAMP_LEN]; 2] {
        &self.delay_span
    }

    /// Writes the access-log lines waiting.
    pub fn flush_log(&mut self) {
        self.mem.log.flush();
    }

    /// Milliseconds `epoll_wait` may sleep: until the earliest of the next connection
    /// deadline, the log's, the end of an accept pause, the next look at the shutdown delay
    /// and the end of the drain (each `NEVER` when there is none).
    fn timeout(&self) -> i32 {
        let delay = if !self.shared.stopping() || self.draining() {
            Millis::NEVER
        } else {
            self.now_ms + DELAY_POLL
        };
        let sweep = self.shared.started_ms + self.next_sweep.millis();
        let log = if self.mem.log.pending() {
            self.log_due_ms
        } else {
            Millis::NEVER
        };
        let due = sweep
            .min(log)
            .min(self.resume_accept_ms)
            .min(delay)
            .min(self.drain_deadline_ms);
        due.after(self.now_ms).min(i32::MAX as u64) as i32
    }

    fn tick(&mut self) {
        self.now_ms = monotonic();
        self.now = self.now_ms.secs_since(self.shared.started_ms);
        // A vDSO read, no system call; the strings are re-rendered only when the second changes.
        self.stamps.update(sys::wall_clock().secs);
    }

    // -----------------------------------------------------------------------------------------
    // Accepting and shutting down

    /// Accepts one connection per wake-up, as nginx does by default: the listener is
    /// level-triggered, so more waiting connections are reported on the next turn, and no
    /// accept is wasted on `EAGAIN`.
    fn accept_one(&mut self) {
        if !self.accepting {
            return;
        }
        match sys::accept(&self.listener) {
            Ok((sock, peer)) => self.admit(sock, peer),
            Err(e) if e.is_resource_exhaustion() => {
                // A level-triggered listener would report the same pending connection
                // forever: stop watching it for a while (connections closing free fds).
                let _ = self.epoll.delete(&self.listener);
                self.accepting = false;
                self.resume_accept_ms = self.now_ms + ACCEPT_PAUSE;
            }
            Err(_) => {} // EAGAIN (another worker took it), ECONNABORTED: nothing to do
        }
    }

    /// Takes a new connection into the table. When the server or this worker is full, the
    /// longest-idle keep-alive connections make room, as nginx reuses them; when none is idle,
    /// the new one is answered 503 and closed (a descriptor is kept free for it).
    fn admit(&mut self, sock: Fd, peer: Addr) {
        let full = self.open >= self.cap
            || self.shared.total(CONNECTIONS) >= self.shared.config.max_connections;
        let room = !full || self.shed_idle();
        let slot = if room { self.mem.free.alloc() } else { None };
        let Some(slot) = slot else {
            // A clear 503 instead of a silent reset or a wait; existing clients are unaffected.
            let mut b = Buf::new(&mut self.mem.scratch.out);
            http::write_error(&mut b, &self.stamps.http, Status::Unavailable);
            let _ = sys::send(&sock, b.as_bytes());
            sys::shutdown_write(&sock);
            return;
        };
        let s = &mut self.mem.slots[slot % CONN_SLOTS];
        s.conn = Conn::open(peer, self.now, self.shared.config.timeouts.header);
        // The slot is free, its socket `None`: nothing to close (and no call to a drop that
        // would do nothing).
        core::mem::forget(s.sock.replace(sock));
        self.open += 1;
        self.count_open();
        // The request is already there (TCP_DEFER_ACCEPT): answer it first. A connection that
        // closes right away is never registered with epoll; edge-triggered registration
        // afterwards still reports data that arrived in between.
        self.drive(slot, Cause::Ready(interest::READ));
        if let Some(sock) = &self.mem.slots[slot % CONN_SLOTS].sock {
            let events = interest::READ | interest::WRITE | interest::READ_CLOSED | interest::EDGE;
            if self.epoll.add(sock, slot as u64, events).is_err() {
                self.close(slot);
            }
        }
    }

    /// Closes the longest-idle keep-alive connection (RFC 9112 §9.5 lets a server close an
    /// idle connection at any time); false when none is idle.
    fn shed_idle(&mut self) -> bool {
        // Idle deadlines are the last request plus the same timeout: the earliest is the oldest.
        // Deadlines are whole seconds: among those idle since the same second, the search goes
        // round the table from the last slot shed, not back to the slot just refilled. A free
        // slot is never idle (`Conn::FREE`, or closed).
        let high = self.mem.free.high_water();
        let (mut oldest, mut deadline) = (usize::MAX, Secs::NEVER);
        let mut slot = self.shed_from;
        for _ in 0..high {
            slot = if slot + 1 >= high { 0 } else { slot + 1 };
            let c = &self.mem.slots[slot % CONN_SLOTS].conn;
            if c.phase() == Phase::Idle && c.deadline() < deadline {
                (oldest, deadline) = (slot, c.deadline());
            }
        }
        if oldest == usize::MAX {
            return false;
        }
        self.shed_from = oldest;
        self.close(oldest);
        true
    }

    /// Worker 0, on SIGTERM or SIGINT: starts the shutdown delay if there is one and it has
    /// not begun, otherwise (no delay, or a second signal) makes the drain begin now; and wakes
    /// every worker, itself included, to follow `STOP_LINE`.
    pub fn stop(&mut self) {
        let delay = self.shared.config.shutdown_delay.millis();
        let mut stop_at = self.now_ms;
        // A second signal may come before this worker's own wake-up: ask the shared word.
        let begins = !self.shared.stopping() && delay > Millis(0);
        if begins {
            stop_at = stop_at + delay;
        }
        self.shared.stop_at.store(stop_at.0, Relaxed);
        sys::notify(&self.shared.wake);
        // Said once every worker has been told: a client that reads the line and connects is
        // answered as the delay says.
        if begins {
            self.delay_span[0] = self.stamps.log;
            self.note(b" shutdown delay began\n");
        }
    }

    /// Worker 0 (the only one that stops or has a `delay_span`): a line about the server on
    /// stdout, after the access-log lines before it.
    fn note(&mut self, what: &[u8]) {
        self.mem.log.flush();
        crate::say(sys::STDOUT, &[&self.stamps.log, what]);
    }

    /// True once the drain has begun.
    fn draining(&self) -> bool {
        self.drain_deadline_ms != Millis::NEVER
    }

    /// Stops accepting, closes idle connections and lets the rest finish (see `run`).
    fn begin_drain(&mut self) {
        if self.draining() {
            return;
        }
        self.drain_deadline_ms = self.now_ms + DRAIN;
        if self.delay_span[0][0] != 0 {
            self.delay_span[1] = self.stamps.log;
            self.note(b" shutdown delay ended\n");
        }
        self.resume_accept_ms = Millis::NEVER; // not after all
        if self.accepting {
            let _ = self.epoll.delete(&self.listener);
            self.accepting = false;
        }
        for slot in 0..self.mem.free.high_water() {
            let Memory { slots, spills, .. } = &mut *self.mem;
            let s = &mut slots[slot % CONN_SLOTS];
            if s.sock.is_some() && s.conn.on_drain(spills) == Next::Close {
                self.close(slot);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Connections

    /// Closes connections whose deadline has passed, and finds the next deadline.
    fn sweep(&mut self) {
        self.next_sweep = Secs::NEVER;
        for slot in 0..self.mem.free.high_water() {
            self.drive(slot, Cause::Clock);
        }
    }

    /// Tells the connection in `slot`, if open, what happened, and acts on its answer.
    fn drive(&mut self, slot: usize, cause: Cause) {
        let Memory {
            slots,
            spills,
            scratch,
            log,
            heads,
            ..
        } = &mut *self.mem;
        let (
            Some(Slot {
                sock: Some(sock),
                conn,
            }),
            Some(head),
        ) = (slots.get_mut(slot), heads.get_mut(slot))
        else {
            return; // closed earlier in this batch of events
        };
        let shared = self.shared;
        let mut env = Env {
            now: self.now,
            timeouts: &shared.config.timeouts,
            stamps: &self.stamps,
            draining: shared.stopping(),
            health: shared,
            requests: &self.counters[REQUESTS],
            log,
            logging: shared.config.log,
            scratch,
            spills,
            head,
        };
        let next = match cause {
            Cause::Ready(bits) => conn.on_ready(sock, bits, &mut env),
            Cause::Clock => conn.on_timeout(sock, &mut env),
        };
        match next {
            Next::Wait => self.next_sweep = self.next_sweep.min(conn.deadline()),
            Next::Close => self.close(slot),
            Next::Exit => {
                env.log.flush();
                crate::panic_exit(&self.stamps.log, &conn.peer);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        let Memory { slots, spills, .. } = &mut *self.mem;
        let s = &mut slots[slot % CONN_SLOTS];
        s.conn.close(spills);
        if s.sock.take().is_some() {
            self.open -= 1;
            self.count_open();
            self.mem.free.release(slot);
        }
    }

    /// Publishes the number of open connections, for admission and `/healthcheck`.
    fn count_open(&self) {
        self.counters[CONNECTIONS].store(self.open, Relaxed);
    }
}
