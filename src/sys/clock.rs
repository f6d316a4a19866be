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

/// A clock reading as the kernel writes it (`__kernel_timespec`): 64-bit seconds on every ABI,
/// so that 32-bit ones pass 2038 too. On 64-bit ABIs this is `timespec` itself; on 32-bit ones
/// `timespec` has 32-bit seconds, and the 64-bit clock is `clock_gettime64`.
#[repr(C)]
pub(super) struct Timespec {
    secs: i64,
    nanos: i64,
}

fn clock(id: libc::clockid_t) -> Time {
    let mut ts = Timespec { secs: 0, nanos: 0 };
    // The vDSO answers without entering the kernel (~110 ns less per read); the system call
    // serves where there is none (valgrind, some emulators).
    if !vdso::clock_gettime(id, &mut ts) {
        let p = &mut ts as *mut Timespec;
        // SAFETY: `p` points to the writable `ts`, the `__kernel_timespec` the call fills.
        #[cfg(target_pointer_width = "64")]
        let _ = unsafe { syscall!(SYS_clock_gettime(id, p)) };
        // SAFETY: as above.
        #[cfg(target_pointer_width = "32")]
        let _ = unsafe { syscall!(SYS_clock_gettime64(id, p)) };
    }
    Time {
        secs: ts.secs as u64,
        nanos: ts.nanos as u32,
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
