//! tinyapi: the tiny API service (`/`, `/alwaysok`, `/healthcheck`, `/panic`) as a static,
//! `no_std`, heap-free Linux binary of a few kilobytes.
//!
//! Layout: [`http`] is the pure protocol layer (bytes in, bytes out); [`conn`] is one
//! connection as a state machine over an abstract socket and clock; [`server`] is the epoll
//! event loop that drives connections; [`shared`] is what the worker processes share (counters,
//! configuration, the wake-up); [`supervise`] forks the workers, reads the signals and reaps;
//! `serve` and `run` here are the run's sequence, from the configuration to the exit status;
//! [`sys`] is the only module of the server with `unsafe` code and libc calls (`script`, built
//! only for tests and the fuzz targets, allocates zeroed buffers unsafely); [`config`], [`addr`],
//! [`time`], [`log`], [`slots`], [`buf`] and [`cgroup`] are small pure helpers; [`probe`] is
//! the built-in health check client.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![cfg_attr(any(test, feature = "hosted"), allow(dead_code))]

pub mod addr;
pub mod buf;
pub mod cgroup;
pub mod config;
pub mod conn;
pub mod decimal;
pub mod http;
pub mod log;
pub mod probe;
#[cfg(any(test, feature = "hosted"))]
pub mod script;
pub mod server;
pub mod shared;
pub mod slots;
pub mod supervise;
pub mod sys;
pub mod time;

use addr::Addr;
use buf::Buf;
use config::Command;
use core::mem::ManuallyDrop;
use server::{Ended, Worker};
use shared::Shared;
use supervise::Role;
use sys::Errno;

/// The version, as reported by `--version`, the start-up line and `/healthcheck`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the binary was built from (set by `build.rs`; `unknown` outside a git checkout).
pub const COMMIT: &str = env!("TINYAPI_COMMIT");

/// Runs the program; returns the exit status.
pub fn start(args: sys::Args, process: &mut sys::Process) -> i32 {
    let command = match config::parse(&|i| args.get(i), &|name| args.env(name)) {
        Ok(c) => c,
        Err(e) => {
            let message: &[&[u8]] = if e.source.is_empty() {
                &[
                    b"tinyapi: unknown option '",
                    e.value,
                    b"' (see tinyapi --help)\n",
                ]
            } else if e.value.is_empty() {
                &[b"tinyapi: ", e.source, b" needs a value\n"]
            } else {
                &[
                    b"tinyapi: invalid value '",
                    e.value,
                    b"' for ",
                    e.source,
                    b": expected ",
                    e.expected,
                    b"\n",
                ]
            };
            say(sys::STDERR, message);
            return 2;
        }
    };
    match command {
        Command::Help => {
            let _ = sys::write(sys::STDOUT, config::USAGE);
            0
        }
        Command::Version => {
            // One constant made at compile time: cheaper than `say` with the parts.
            let line = concat!(
                "tinyapi ",
                env!("CARGO_PKG_VERSION"),
                " (",
                env!("TINYAPI_COMMIT"),
                ")\n"
            );
            let _ = sys::write(sys::STDOUT, line.as_bytes());
            0
        }
        Command::Probe(c) => probe::run(c.listen.for_local_client()),
        Command::Serve(c) => serve(c, process),
    }
}

/// The cgroup reader's buffers (see [`cgroup::Scratch`]).
static CGROUP: sys::Reserved<cgroup::Scratch> = sys::Reserved::new(cgroup::Scratch::EMPTY);

// size: kept out of line: inlined into `start` it grows the binary by ~260 bytes.
#[inline(never)]
fn serve(mut config: config::Config, process: &mut sys::Process) -> i32 {
    // Descriptors a parent left open would count against each worker's limit unseen (see
    // `server::Worker::new`): the server uses none of them.
    sys::close_inherited();
    // Asked once, here, so that a kernel or emulator without seccomp gets one warning (or,
    // with `require`, one error), not one from each worker.
    if config.seccomp {
        match sys::seccomp_available() {
            Ok(()) => {}
            Err(e) if !config.seccomp_required && e.is_unsupported() => {
                say_error(
                    b"warning: serving without the seccomp filter",
                    b" (TINYAPI_SECCOMP=require refuses to)",
                    e,
                );
                config.seccomp = false;
            }
            Err(e) => fatal(b"cannot install the seccomp filter", e),
        }
    }
    let signals = match sys::shutdown_signals() {
        Ok(s) => s,
        Err(e) => fatal(b"cannot block signals", e),
    };
    sys::raise_fd_limit();
    // By default one worker per usable CPU, fewer when the cgroup's CPU quota allows fewer.
    let workers = match config.workers {
        0 => {
            let cpus = sys::usable_cpus().min(config::MAX_WORKERS);
            let quota = CGROUP
                .take(process)
                .map_or(usize::MAX, |s| cgroup::cpu_limit(sys::read_file, s));
            config.workers_from_quota = quota < cpus;
            cpus.min(quota)
        }
        n => n,
    };
    let listener = match server::listen(&config.listen, &config, workers > 1) {
        Ok(l) => l,
        Err(e) => {
            let mut a = [0u8; 64];
            let mut b = Buf::new(&mut a);
            config.listen.write(&mut b);
            say_error(b"cannot listen on ", b.as_bytes(), e);
            return 1;
        }
    };
    let bound = sys::local_addr(&listener).unwrap_or(config.listen);
    let wake = match sys::eventfd() {
        Ok(w) => w,
        Err(e) => fatal(b"cannot create eventfd", e),
    };
    if config.log {
        sys::stdout_nonblocking();
    }
    let shared = match shared::shared(bound, wake, config, workers) {
        Ok(s) => s,
        Err(e) => fatal(b"cannot map counters", e),
    };
    run(&shared, listener, signals, process)
}

/// The run, once everything the workers share is set up: forks the workers, sets each up,
/// locks it down, announces the server, serves until the drain has ended, and says so; the exit
/// status. Signals reach worker 0's event loop, which returns to say what they were.
// size: inlined into `serve`, its one caller (out of line: ~30 bytes more).
#[inline(always)]
fn run(shared: &Shared, listener: sys::Fd, signals: sys::Fd, process: &mut sys::Process) -> i32 {
    // Neither dropped: the process ends when `run` returns, and the kernel closes what they hold.
    let (id, listener, mut sup) = match supervise::fork_workers(shared.workers, signals, process) {
        Ok(Role::First(sup)) => (0, listener, ManuallyDrop::new(Some(sup))),
        // A listening socket of its own in the same SO_REUSEPORT group: the kernel spreads
        // connections evenly, where one shared socket would not. It replaces (and closes) the
        // copy of the first worker's.
        Ok(Role::Other(id)) => match server::listen(&shared.bound, &shared.config, true) {
            Ok(l) => (id, l, ManuallyDrop::new(None)),
            Err(e) => fatal(b"a worker cannot listen", e),
        },
        Err(e) => fatal(b"cannot fork a worker", e),
    };
    let mut worker = ManuallyDrop::new(Worker::new(
        id,
        shared,
        listener,
        sup.as_ref().map(|s| &s.signals),
        process,
    ));
    if shared.config.seccomp {
        if let Err(e) = sys::lock_down() {
            fatal(b"cannot install the seccomp filter", e);
        }
    }
    // The first worker is locked down: the server is ready, and no fatal error can follow.
    if id == 0 {
        announce(
            &shared.bound,
            shared.workers,
            shared.config.workers_from_quota,
        );
    }
    while worker.run() == Ended::Signals {
        let Some(s) = &mut *sup else { continue };
        let signals = s.take_signals();
        if signals.stop {
            worker.stop();
        }
        // A worker that ends before shutdown began leaves the server incomplete: stop the
        // others and exit with status 1, as a single process would.
        if signals.worker_ended && !shared.stopping() {
            worker.flush_log();
            let _ = sys::write(sys::STDERR, b"tinyapi: a worker ended; stopping\n");
            s.stop_all();
            return 1;
        }
        worker.set_others(s.children_left());
    }
    // Workers still running past the drain's deadline are stopped; each has closed what it
    // could. Then the stop line, with the span of the shutdown delay if there was one.
    if let Some(s) = &*sup {
        s.stop_all();
        let [began, ended] = worker.delay_span();
        let delay = began[0] != 0;
        let line: [&[u8]; 5] = [
            if delay {
                b"tinyapi stopped; the shutdown delay ran from "
            } else {
                b"tinyapi stopped\n"
            },
            began,
            b" to ",
            ended,
            b"\n",
        ];
        let line = &line[..if delay { 5 } else { 1 }];
        say(sys::STDOUT, line);
    }
    0
}

/// Prints the start-up line: `tinyapi VERSION listening on ADDR (N workers)`, with `, from the
/// CPU quota` before the `)` when the quota set the count. Called once the first worker is
/// locked down: the server is ready, and no fatal error can follow the line.
pub fn announce(bound: &Addr, workers: usize, quota: bool) {
    // Written straight into one buffer: cheaper than `say` with the address and the count in
    // buffers of their own. The longest line (an IPv6 address, the quota's tail) has 111 bytes.
    let mut a = [0u8; 128];
    let mut b = Buf::new(&mut a);
    b.push(concat!("tinyapi ", env!("CARGO_PKG_VERSION"), " listening on ").as_bytes());
    bound.write(&mut b);
    b.push(b" (");
    b.num(workers as u64);
    // One string each: the plural is the singular plus `s`, the plain ending the quota's tail.
    b.push(&b" workers"[..7 + (workers != 1) as usize]);
    let tail = b", from the CPU quota)\n";
    b.push(&tail[if quota { 0 } else { tail.len() - 2 }..]);
    let _ = sys::write(sys::STDOUT, b.as_bytes());
}

/// Writes the concatenation of `parts` to `fd` in one write.
pub fn say(fd: i32, parts: &[&[u8]]) {
    sys::write_parts(fd, parts);
}

/// Prints `tinyapi: WHAT DETAIL: REASON` on stderr.
pub fn say_error(what: &[u8], detail: &[u8], e: Errno) {
    let mut d = [0u8; 20];
    let mut n = Buf::new(&mut d);
    n.num(e.0 as u64);
    let d = e.describe();
    let (errno, reason): (&[u8], &[u8]) = if d.is_empty() {
        (b"errno ", n.as_bytes())
    } else {
        (b"", d)
    };
    say(
        sys::STDERR,
        &[b"tinyapi: ", what, detail, b": ", errno, reason, b"\n"],
    );
}

/// Reports a failure the server cannot run without, and exits with status 1.
#[cold]
pub fn fatal(what: &[u8], e: Errno) -> ! {
    say_error(what, b"", e);
    sys::exit(1)
}

/// `/panic`: logs the fatal line on stderr and ends the process with status 1, like the
/// original's `log.Fatal` / `os.Exit(1)`.
pub fn panic_exit(stamp: &[u8], peer: &Addr) -> ! {
    let mut a = [0u8; 64];
    let mut b = Buf::new(&mut a);
    peer.write(&mut b);
    say(
        sys::STDERR,
        &[
            stamp,
            b" FATAL /panic requested by ",
            b.as_bytes(),
            b": exiting with status 1\n",
        ],
    );
    sys::exit(1)
}

#[cfg(all(not(test), not(feature = "hosted"), target_os = "linux"))]
#[panic_handler]
fn on_panic(_: &core::panic::PanicInfo) -> ! {
    // Unreachable by design (no indexing can fail, see each module's contract); should it
    // happen, end loudly instead of limping on. The message is not formatted: that would pull
    // core::fmt into the binary.
    let _ = sys::write(sys::STDERR, b"tinyapi: internal error\n");
    sys::exit(70)
}
