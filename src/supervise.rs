//! Supervision: forking the workers, the shutdown signals, and reaping.
//!
//! The first process runs worker 0 and supervises the others: it forks workers 1.., reads
//! `SIGTERM`, `SIGINT` and `SIGCHLD` from a signalfd, and when a worker dies on its own
//! (`/panic` in a child) ends the whole server with status 1, as a single process would.

use crate::config::MAX_WORKERS;
use crate::log::AccessLog;
use crate::server::{self, Worker};
use crate::shared::Shared;
use crate::sys::{self, Fd, Pid, Process, Reserved};

/// The first process's view of the workers.
pub struct Supervisor {
    /// SIGTERM, SIGINT and SIGCHLD, as a signalfd watched by worker 0's epoll.
    pub signals: Fd,
    /// Worker processes still running (pids; 0 when gone).
    children: &'static mut [Pid; MAX_WORKERS],
}

/// The pids of the workers, in `.bss`. Inside [`Supervisor`] the table would be zeroed on the
/// stack and copied with every move of the `Worker` holding it (arm64: 192 bytes of code).
static CHILDREN: Reserved<[Pid; MAX_WORKERS]> = Reserved::new([0; MAX_WORKERS]);

/// Runs the server: forks workers 1.. as child processes, each of which runs until it has
/// drained, then runs worker 0, supervising the others, in this process. Prints the start-up
/// line once worker 0 is locked down, and the stop line after the drain. Every process exits
/// with status 0 after its drain.
// Inlined into `serve`: a function that never returns is otherwise kept out of line, which
// saves ~100 bytes on x86-64 but costs ~110 on arm64.
#[inline(always)]
pub fn run(shared: &Shared, listener: Fd, signals: Fd, process: &mut Process) -> ! {
    // Taken once: only the first process supervises.
    let children = CHILDREN.take(process).unwrap();
    // A forked worker breaks out of the loop with its id and listener, so that one call sets
    // up every worker (a second call site costs ~50 bytes).
    let (mut id, mut listener, mut signals) = (0, listener, Some(signals));
    for (i, child) in children.iter_mut().enumerate().take(shared.workers).skip(1) {
        match sys::fork() {
            Ok(Some(pid)) => *child = pid,
            Ok(None) => {
                signals = None;
                // A listening socket of its own in the same SO_REUSEPORT group: the kernel
                // spreads connections evenly, where one shared socket would not. It replaces
                // (and closes) the copy of the first worker's.
                listener = match server::listen(&shared.bound, &shared.config, true) {
                    Ok(l) => l,
                    Err(e) => crate::fatal(b"a worker cannot listen", e),
                };
                id = i;
                break;
            }
            Err(e) => crate::fatal(b"cannot fork a worker", e),
        }
    }
    let sup = signals.map(|signals| Supervisor { signals, children });
    let mut worker = Worker::new(id, shared, listener, sup, process);
    if id == 0 {
        crate::announce(
            &shared.bound,
            shared.workers,
            shared.config.workers_from_quota,
        );
    }
    worker.run();
    sys::exit(0)
}

impl Supervisor {
    /// Reads the pending signals; true when one asks to stop.
    pub fn take_stop(&mut self) -> bool {
        let mut stop = false;
        while let Ok(signo) = sys::take_signal(&self.signals) {
            stop |= signo != sys::signal::CHILD;
        }
        stop
    }

    /// Reaps the workers that ended. One that ends before shutdown began leaves the server
    /// incomplete: then the log is flushed, the other workers are stopped and the process
    /// exits with status 1.
    pub fn reap(&mut self, draining: bool, log: &mut AccessLog) {
        while let Some(pid) = sys::reap_child() {
            if let Some(c) = self.children.iter_mut().find(|c| **c == pid) {
                *c = 0;
            }
            if !draining {
                log.flush();
                let _ = sys::write(sys::STDERR, b"tinyapi: a worker ended; stopping\n");
                self.stop_all();
                sys::exit(1);
            }
        }
    }

    /// True while some worker still runs.
    pub fn children_left(&self) -> bool {
        self.children.iter().any(|&c| c != 0)
    }

    /// Stops the workers still running.
    pub fn stop_all(&self) {
        for &c in self.children.iter().filter(|&&c| c != 0) {
            sys::kill(c);
        }
    }
}
