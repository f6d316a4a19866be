//! The lock-down: `no_new_privs` and a seccomp-BPF allowlist.

use super::arch::AUDIT_ARCH;
use super::Result;

/// `allowed![SYS_name, ..]`: the system call numbers `SYS_name, ..` (see `nr`); a name may
/// carry a `#[cfg(..)]`.
macro_rules! allowed {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        [$($(#[$m])* super::nr::$name),*]
    };
}

/// The system calls a running worker makes, most frequent first (the filter tests them in
/// order), listed in `allowed.rs`. Everything else (open, execve, connect, mmap, ...) kills
/// the process.
const ALLOWED: &[libc::c_long] = &include!("allowed.rs");

const FILTER_LEN: usize = ALLOWED.len() + 5;

/// The seccomp-BPF program: check the architecture (a call through another ABI, such as x32
/// or i386, is killed), then allow exactly the calls in [`ALLOWED`].
static FILTER: [libc::sock_filter; FILTER_LEN] = {
    const fn op(code: u32, k: u32, jt: usize, jf: usize) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt: jt as u8,
            jf: jf as u8,
            k,
        }
    }
    const LOAD: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    const RET: u32 = libc::BPF_RET | libc::BPF_K;
    let n = ALLOWED.len();
    let mut f = [op(0, 0, 0, 0); FILTER_LEN];
    f[0] = op(LOAD, 4, 0, 0); // seccomp_data.arch
    f[1] = op(JEQ, AUDIT_ARCH, 0, n + 1); // else to KILL
    f[2] = op(LOAD, 0, 0, 0); // seccomp_data.nr
    let mut i = 0;
    while i < n {
        f[3 + i] = op(JEQ, ALLOWED[i] as u32, n - i, 0); // to ALLOW
        i += 1;
    }
    f[3 + n] = op(RET, libc::SECCOMP_RET_KILL_PROCESS, 0, 0);
    f[4 + n] = op(RET, libc::SECCOMP_RET_ALLOW, 0, 0);
    f
};

/// Checks that [`lock_down`] can work here: the kernel has seccomp filters and the action they
/// use ([seccomp(2)] `SECCOMP_GET_ACTION_AVAIL`, Linux 4.14). `ENOSYS` (no seccomp, or an
/// emulator such as qemu-user that does not pass it on), `EINVAL` or `EOPNOTSUPP` (older
/// kernels) mean it cannot. Installs nothing.
///
/// [seccomp(2)]: https://man7.org/linux/man-pages/man2/seccomp.2.html
pub fn seccomp_available() -> Result<()> {
    let action: u32 = libc::SECCOMP_RET_KILL_PROCESS;
    let op = libc::SECCOMP_GET_ACTION_AVAIL;
    // SAFETY: `action` is a live u32, as SECCOMP_GET_ACTION_AVAIL reads.
    unsafe { syscall!(SYS_seccomp(op, 0, &action as *const u32)) }.map(drop)
}

/// Forbids gaining privileges and every system call outside `ALLOWED` for the rest of this
/// process's life ([prctl(2)] `PR_SET_NO_NEW_PRIVS`, [seccomp(2)]). A forbidden call kills the
/// process with SIGSYS: code running inside the server can serve sockets and nothing else.
///
/// [prctl(2)]: https://man7.org/linux/man-pages/man2/prctl.2.html
/// [seccomp(2)]: https://man7.org/linux/man-pages/man2/seccomp.2.html
pub fn lock_down() -> Result<()> {
    // SAFETY: no pointer arguments.
    unsafe { syscall!(SYS_prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) }?;
    let prog = libc::sock_fprog {
        len: FILTER_LEN as u16,
        filter: FILTER.as_ptr() as *mut libc::sock_filter,
    };
    let p = &prog as *const libc::sock_fprog;
    // SAFETY: `p` points to the live `prog`, whose filter is the static `FILTER` of `FILTER_LEN` instructions.
    unsafe { syscall!(SYS_seccomp(libc::SECCOMP_SET_MODE_FILTER, 0, p)) }.map(drop)
}
