//! Worker processes, the process's resources and statically reserved memory.

use super::arch::{raw_mmap, CLONE_FORK};
use super::{raw, result, Result};
use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::mem::size_of;
use core::sync::atomic::{AtomicBool, Ordering};

/// Proof of being the program's one flow of control: made once, in `main`, and passed down
/// by `&mut`. tinyapi has no threads (workers are processes), so holding `&mut Process` means
/// nothing else in this process is running code that could hold another.
pub struct Process(pub(super) ());

/// Memory reserved at build time (in `.bss`: zero pages that cost nothing until touched) and
/// handed out at most once per process, as an exclusive `&'static mut`.
pub struct Reserved<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reachable only through `take`, which hands it out once, to a caller
// holding the process's unique `&mut Process`.
unsafe impl<T: Send> Sync for Reserved<T> {}

impl<T> Reserved<T> {
    /// Wraps a value; with an all-zero `value` the static lands in `.bss`, not in the file.
    pub const fn new(value: T) -> Self {
        Reserved {
            taken: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, on the first call only. A plain load and store, not an atomic swap: the
    /// `&mut Process` rules out a concurrent caller (and an arm64 swap would pull in a CPU
    /// probe that runs at every start).
    #[allow(clippy::mut_from_ref)] // the flag and the token make the borrow unique
    pub fn take(&'static self, _: &mut Process) -> Option<&'static mut T> {
        if self.taken.load(Ordering::Relaxed) {
            return None;
        }
        self.taken.store(true, Ordering::Relaxed);
        // SAFETY: the flag lets one caller past, and `&mut Process` says no other call runs.
        Some(unsafe { &mut *self.value.get() })
    }
}

/// A process id.
pub type Pid = i32;

/// Starts a copy of this process ([clone(2)] with `SIGCHLD`, i.e. fork without musl's
/// atfork machinery, which a single-threaded program does not need). Returns `None` in the
/// child and the child's pid in the parent. The child asks for SIGKILL when its parent dies,
/// so workers never outlive the server.
///
/// [clone(2)]: https://man7.org/linux/man-pages/man2/clone.2.html
pub fn fork() -> Result<Option<Pid>> {
    // SAFETY: no pointer arguments.
    let parent = unsafe { syscall!(SYS_getpid()) };
    let [a, b] = CLONE_FORK;
    // SAFETY: SIGCHLD alone, no CLONE_VM and no stack: a fork, whose child goes on with its own copy of this memory.
    let pid = unsafe { syscall!(SYS_clone(a, b)) }?;
    if pid != 0 {
        return Ok(Some(pid as Pid));
    }
    // SAFETY: no pointer arguments.
    let _ = unsafe { syscall!(SYS_prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL)) };
    // The parent may have died before the request took effect: then nobody will signal.
    // SAFETY: no pointer arguments.
    if unsafe { syscall!(SYS_getppid()) } != parent {
        exit(1);
    }
    Ok(None)
}

/// Reaps one exited child without waiting ([wait4(2)], `WNOHANG`); returns its pid.
///
/// [wait4(2)]: https://man7.org/linux/man-pages/man2/wait4.2.html
pub fn reap_child() -> Option<Pid> {
    // SAFETY: neither a status nor a usage pointer is passed.
    match unsafe { syscall!(SYS_wait4(-1i32, 0, libc::WNOHANG, 0)) } {
        Ok(pid) if pid > 0 => Some(pid as Pid),
        _ => None,
    }
}

/// Sends SIGKILL to a child ([kill(2)]).
///
/// [kill(2)]: https://man7.org/linux/man-pages/man2/kill.2.html
pub fn kill(pid: Pid) {
    // SAFETY: no pointer arguments.
    let _ = unsafe { syscall!(SYS_kill(pid, libc::SIGKILL)) };
}

/// Counters shared by every worker process: anonymous shared memory ([mmap(2)]), zeroed by
/// the kernel, created before the workers are forked so all of them see the same pages.
///
/// [mmap(2)]: https://man7.org/linux/man-pages/man2/mmap.2.html
pub fn shared_counters(n: usize) -> Result<&'static [core::sync::atomic::AtomicU64]> {
    let len = n * size_of::<u64>();
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
    let fd = -1i32 as usize;
    // 32-bit ABIs: mmap2, whose offset counts pages (i386's mmap takes its arguments through
    // memory); the offset is 0 either way.
    #[cfg(target_pointer_width = "64")]
    let mmap = libc::SYS_mmap;
    #[cfg(target_pointer_width = "32")]
    let mmap = libc::SYS_mmap2;
    // SAFETY: an anonymous mapping reads no memory of ours; offset 0.
    let p = result(unsafe { raw_mmap(mmap, 0, len, prot as usize, flags as usize, fd, 0) })?;
    // SAFETY: the mapping is len bytes, page-aligned, zeroed, never unmapped; all-zero is a
    // valid AtomicU64 and atomics make concurrent access from the processes sound.
    Ok(unsafe { core::slice::from_raw_parts(p as *const core::sync::atomic::AtomicU64, n) })
}

/// Ends the whole process (every thread) at once with `code` ([exit_group(2)]).
///
/// [exit_group(2)]: https://man7.org/linux/man-pages/man2/exit_group.2.html
pub fn exit(code: c_int) -> ! {
    loop {
        // SAFETY: exit_group takes only an integer and does not return.
        unsafe { raw(libc::SYS_exit_group, code as usize, 0, 0, 0, 0, 0) };
    }
}

/// The number of CPUs this process may run on ([sched_getaffinity(2)]): respects
/// `taskset` and `docker run --cpuset-cpus`.
///
/// [sched_getaffinity(2)]: https://man7.org/linux/man-pages/man2/sched_getaffinity.2.html
pub fn usable_cpus() -> usize {
    let mut set = [0u64; 16]; // 1024 CPUs, the kernel's default cpumask size
    let p = set.as_mut_ptr();
    // SAFETY: `p` points to `set`, writable for the size passed.
    match unsafe { syscall!(SYS_sched_getaffinity(0, size_of::<[u64; 16]>(), p)) } {
        Ok(_) => (set.iter().map(|w| ones(*w)).sum::<usize>()).max(1),
        Err(_) => 1,
    }
}

/// The number of bits set in `w`: arm64's `cnt` and ppc64le's `popcntd`, elsewhere one turn per
/// bit. x86-64, i386, riscv64gc, s390x (z10) and loongarch64 have no population-count
/// instruction in their baselines (loongarch64's is in LSX), nor has 32-bit arm one for a word
/// (armv7's NEON counts the bits of each byte).
// size: `count_ones` there becomes a longer sequence: 64 to 112 bytes more, 32 on armv7.
fn ones(mut w: u64) -> usize {
    if !cfg!(any(target_arch = "aarch64", target_arch = "powerpc64")) {
        let mut n = 0;
        while w != 0 {
            w &= w - 1;
            n += 1;
        }
        return n;
    }
    w.count_ones() as usize
}

/// worker can hold.
///
/// [setrlimit(2)]: https://man7.org/linux/man-pages/man2/setrlimit.2.html
pub fn raise_fd_limit() {
    let mut lim = fd_limits();
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: the new limit points to the live `lim`; the old one is not asked for.
        let _ = unsafe {
            syscall!(SYS_prlimit64(
                0,
                libc::RLIMIT_NOFILE,
                &lim as *const libc::rlimit,
                0
            ))
        };
    }
}

/// Closes every descriptor above stderr ([close_range(2)]; nothing happens on kernels before
/// 5.9, which lack it).
///
/// [close_range(2)]: https://man7.org/linux/man-pages/man2/close_range.2.html
pub fn close_inherited() {
    // SAFETY: no pointer arguments; closing descriptors this process does not own yet (none
    // is open when the server starts) leaves no `Fd` dangling.
    // Not retried on EINTR, like close(2).
    unsafe { raw(libc::SYS_close_range, 3, u32::MAX as usize, 0, 0, 0, 0) };
}

/// The soft limit on open descriptors ([getrlimit(2)]); unlimited if it cannot be read.
///
/// [getrlimit(2)]: https://man7.org/linux/man-pages/man2/getrlimit.2.html
pub fn fd_limit() -> u64 {
    fd_limits().rlim_cur
}

/// The soft and hard limits on open descriptors; unlimited if they cannot be read.
fn fd_limits() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    let old = &mut lim as *mut libc::rlimit;
    // SAFETY: `old` points to the writable `lim`; no new limit is set.
    let _ = unsafe { syscall!(SYS_prlimit64(0, libc::RLIMIT_NOFILE, 0, old)) };
    lim
}
