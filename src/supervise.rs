//! Supervision: forking the workers, the shutdown signals, and reaping.
//!
//! The first process runs worker 0 and supervises the others: it forks workers 1.., reads
//! `SIGTERM`, `SIGINT` and `SIGCHLD` from a signalfd (which worker 0's event loop watches),
//! reaps the workers that end and stops those still running. It decides nothing: what a signal
//! or an ended worker means for the server is `serve`'s business (see [`crate::serve`]).

use crate::config::MAX_WORKERS;
use crate::sys::{self, Fd, Pid, Process, Reserved};

/// The first process's view of the workers.
pub struct Supervisor {
    /// SIGTERM, SIGINT and SIGCHLD, as a signalfd.
    pub signals: Fd,
    /// Worker processes still running (pids; 0 when gone).
    children: &'static mut [Pid; MAX_WORKERS],
}

/// The pids of the workers, in `.bss`, not inside [`Supervisor`].
// size: inside it the table would be zeroed on the stack and copied with every move (arm64: 192
// bytes of code).
static CHILDREN: Reserved<[Pid; MAX_WORKERS]> = Reserved::new([0; MAX_WORKERS]);

/// Which worker a process runs, after [`fork_workers`].
pub enum Role {
    /// The first process: worker 0, and the supervisor of the others.
    First(Supervisor),
    /// A forked worker, with its id (1..).
    Other(usize),
}

/// Forks workers 1..`workers` as child processes of this one. In each child it returns
/// `Other(id)`; in this process, once every child is forked, `First` with the signals.
// size: inlined into `serve`, its one caller: out of line it costs more than it saves (~50 bytes).
#[inline(always)]
pub fn fork_workers(workers: usize, signals: Fd, process: &mut Process) -> sys::Result<Role> {
    // Taken once: only the first process supervises.
    let children = CHILDREN.take(process).unwrap();
    for (child, id) in children[1..].iter_mut().zip(1..workers) {
        match sys::fork()? {
            Some(pid) => *child = pid,
            None => return Ok(Role::Other(id)),
        }
    }
    Ok(Role::First(Supervisor { signals, children }))
}

/// What the pending signals said (see [`Supervisor::take_signals`]).
pub struct Signals {
    /// SIGTERM or SIGINT came: stop.
    pub stop: bool,
    /// A worker ended (SIGCHLD) and was reaped.
    pub worker_ended: bool,
}

impl Supervisor {
    /// Reads the pending signals and reaps the workers that ended.
    pub fn take_signals(&mut self) -> Signals {
        let mut stop = false;
        while let Ok(signo) = sys::take_signal(&self.signals) {
            stop |= signo != sys::signal::CHILD;
        }
        let mut worker_ended = false;
        while let Some(pid) = sys::reap_child() {
            if let Some(c) = self.children.iter_mut().find(|c| **c == pid) {
                *c = 0;
            }
            worker_ended = true;
        }
        Signals { stop, worker_ended }
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
