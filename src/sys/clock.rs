//! Clocks: the vDSO's `clock_gettime`, or the system call where there is no vDSO.

use super::vdso;

/// Seconds and nanoseconds of a clock.
#[derive(Clone, Copy)]
pub struct Time {
    /// Whole seconds.
    pub secs: u64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

fn clock(id: libc::clockid_t) -> Time {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // The vDSO answers without entering the kernel (~110 ns less per read); the system call
    // serves where there is none (valgrind, some emulators).
    if !vdso::clock_gettime(id, &mut ts) {
        // SAFETY: `ts` is a writable `timespec`.
        let _ = unsafe { syscall!(SYS_clock_gettime(id, &mut ts as *mut libc::timespec)) };
    }
    Time {
        secs: ts.tv_sec as u64,
        nanos: ts.tv_nsec as u32,
    }
}

/// Wall-clock time since the Unix epoch (for `Date` and log stamps).
pub fn wall_clock() -> Time {
    clock(libc::CLOCK_REALTIME)
}

/// Monotonic time (for durations, uptime and timeouts).
pub fn monotonic() -> Time {
    clock(libc::CLOCK_MONOTONIC)
}

/// Monotonic time in nanoseconds (for durations).
pub fn monotonic_nanos() -> u64 {
    let t = monotonic();
    t.secs * 1_000_000_000 + t.nanos as u64
}
