//! What the worker processes share: the configuration, the wake-up eventfd, and counters in
//! shared memory (requests, open connections, when the drain begins), from which `/healthcheck`
//! reports. Set up by `serve` before the workers are forked; [`crate::server`] writes its own
//! worker's counters and hands each connection a reading of them (see [`crate::conn::Env`]).

use crate::addr::Addr;
use crate::config::{Config, MAX_WORKERS};
use crate::http::{Health, ReadHealth};
use crate::sys::{self, Fd};
use crate::time::Millis;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Shared counters per worker, each worker's on its own cache line (8 × u64) so workers never
/// write the same line.
pub const COUNTER_STRIDE: usize = 8;
/// Counter: requests answered.
pub const REQUESTS: usize = 0;
/// Counter: connections open now.
pub const CONNECTIONS: usize = 1;
/// The line after the workers' holds one word: when the drain begins (monotonic ms; the end of
/// the shutdown delay, if any), 0 until shutdown begins. Worker 0 writes it, every worker
/// follows it. A line of its own: workers read it for every connection they serve.
const STOP_LINE: usize = MAX_WORKERS;

/// The monotonic clock.
pub fn monotonic() -> Millis {
    let t = sys::monotonic();
    Millis(t.secs * 1000 + t.nanos as u64 / 1_000_000)
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
    /// Counters in memory shared by all workers, one line per worker (see `COUNTER_STRIDE`).
    pub counters: &'static [[AtomicU64; COUNTER_STRIDE]],
    /// Monotonic time of start-up, for uptime and deadlines.
    pub started_ms: Millis,
    /// When the drain begins (see `STOP_LINE`).
    pub stop_at: &'static AtomicU64,
}

impl Shared {
    /// Sum of one counter (`REQUESTS` or `CONNECTIONS`) over all workers.
    pub fn total(&self, field: usize) -> u64 {
        let workers = &self.counters[..self.workers.min(self.counters.len())];
        workers.iter().map(|w| w[field].load(Relaxed)).sum()
    }

    /// When the drain begins; 0 until shutdown begins.
    pub fn stop_at(&self) -> Millis {
        Millis(self.stop_at.load(Relaxed))
    }

    /// True once shutdown has begun.
    pub fn stopping(&self) -> bool {
        self.stop_at() != Millis(0)
    }
}

impl ReadHealth for Shared {
    /// What `/healthcheck` reports.
    fn health(&self) -> Health {
        let now = monotonic();
        Health {
            uptime_secs: now.secs_since(self.started_ms).0 as u64,
            // Asked while answering a request, which counts as served.
            requests: self.total(REQUESTS) + 1,
            connections: self.total(CONNECTIONS),
            remaining_secs: self.stop_at().after(now).div_ceil(1000),
        }
    }
}

/// Sets up shared state for `workers` worker processes.
pub fn shared(bound: Addr, wake: Fd, config: Config, workers: usize) -> sys::Result<Shared> {
    let counters = sys::shared_counters((MAX_WORKERS + 1) * COUNTER_STRIDE)?
        .as_chunks()
        .0;
    Ok(Shared {
        bound,
        wake,
        config,
        workers,
        counters,
        started_ms: monotonic(),
        stop_at: &counters[STOP_LINE][0],
    })
}
