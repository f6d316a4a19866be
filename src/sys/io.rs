//! Standard output and error, and reading small files.

use super::{Fd, Result};
use core::ffi::c_int;
use core::mem::zeroed;

/// Writes to a descriptor once ([write(2)]).
///
/// [write(2)]: https://man7.org/linux/man-pages/man2/write.2.html
// size: inline, the call site tests the result in a register; out of line, the Result comes
// back through memory (48 bytes more on x86-64, 80 on arm64).
#[inline(always)]
pub fn write(fd: c_int, buf: &[u8]) -> Result<usize> {
    // SAFETY: `buf` is readable for the length passed.
    unsafe { syscall!(SYS_write(fd, buf.as_ptr(), buf.len())) }
}

/// Most parts [`write_parts`] writes.
pub const MAX_PARTS: usize = 8;

/// Writes the concatenation of `parts` (the first [`MAX_PARTS`]) to `fd` in one system call
/// ([writev(2)]): to a pipe, up to 4 KiB, that is one atomic write, and no buffer is needed.
///
/// [writev(2)]: https://man7.org/linux/man-pages/man2/writev.2.html
pub fn write_parts(fd: c_int, parts: &[&[u8]]) {
    // Each element written once: a zeroed array would be a memset call on arm64.
    let iov: [libc::iovec; MAX_PARTS] = core::array::from_fn(|i| {
        let p = parts.get(i).copied().unwrap_or_default();
        libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        }
    });
    let n = parts.len().min(MAX_PARTS);
    // SAFETY: `iov` holds `n` (ptr, len) pairs of live byte slices, read by the kernel only.
    let _ = unsafe { syscall!(SYS_writev(fd, iov.as_ptr(), n)) };
}

/// Standard output.
pub const STDOUT: c_int = 1;
/// Standard error.
pub const STDERR: c_int = 2;

/// Makes stdout non-blocking when it is a pipe or socket, so a reader that stops reading makes
/// log writes fail with `EAGAIN` (lines dropped) instead of stalling the server.
pub fn stdout_nonblocking() {
    // SAFETY: all-zero is a valid stat (the kernel's layout is musl's on Linux).
    let mut st: libc::stat = unsafe { zeroed() };
    let p = &mut st as *mut libc::stat;
    // SAFETY: `p` points to the writable `st`.
    #[cfg(all(target_pointer_width = "64", not(target_arch = "loongarch64")))]
    let r = unsafe { syscall!(SYS_fstat(STDOUT, p)) };
    // loongarch64 had no fstat before Linux 6.11: statx of the descriptor itself (an empty
    // path and AT_EMPTY_PATH), asking for its type alone.
    #[cfg(target_arch = "loongarch64")]
    let r = {
        let _ = p;
        // SAFETY: all-zero is a valid statx.
        let mut stx: libc::statx = unsafe { zeroed() };
        let (path, q) = (c"".as_ptr(), &mut stx as *mut libc::statx);
        let (at, mask) = (libc::AT_EMPTY_PATH, libc::STATX_TYPE);
        // SAFETY: `path` is an empty C string and `q` points to the writable `stx`.
        let r = unsafe { syscall!(SYS_statx(STDOUT, path, at, mask, q)) };
        st.st_mode = stx.stx_mode as libc::mode_t;
        r
    };
    // 32-bit ABIs: fstat64 fills musl's `stat` (fstat fills an older, smaller layout).
    // SAFETY: as above.
    #[cfg(target_pointer_width = "32")]
    let r = unsafe { syscall!(SYS_fstat64(STDOUT, p)) };
    if r.is_ok() {
        let kind = st.st_mode & libc::S_IFMT;
        if kind == libc::S_IFIFO || kind == libc::S_IFSOCK {
            // SAFETY: no pointer arguments.
            if let Ok(flags) = unsafe { syscall!(SYS_fcntl(STDOUT, libc::F_GETFL)) } {
                // SAFETY: no pointer arguments.
                let _ = unsafe {
                    syscall!(SYS_fcntl(
                        STDOUT,
                        libc::F_SETFL,
                        flags | libc::O_NONBLOCK as usize
                    ))
                };
            }
        }
    }
}

/// Reads the start of the file at `path` into `into` ([openat(2)], one [read(2)]); returns
/// the number of bytes read, 0 when the file cannot be opened or read. The path ends at its
/// first NUL; without one, nothing is opened. For the small files of `/proc` and `/sys` the
/// one read returns them whole.
///
/// [openat(2)]: https://man7.org/linux/man-pages/man2/openat.2.html
/// [read(2)]: https://man7.org/linux/man-pages/man2/read.2.html
pub fn read_file(path: &[u8], into: &mut [u8]) -> usize {
    let mut n = 0;
    // The kernel reads the path up to its NUL, which this keeps inside `path`. Not contains():
    // that links core's memchr (size: 160 bytes).
    #[allow(clippy::manual_contains)]
    if path.iter().any(|&b| b == 0) {
        let flags = libc::O_RDONLY | libc::O_CLOEXEC;
        // SAFETY: `path` holds a NUL (checked above), so the kernel reads only inside it.
        if let Ok(fd) = unsafe { syscall!(SYS_openat(libc::AT_FDCWD, path.as_ptr(), flags)) } {
            let fd = Fd(fd as c_int);
            // SAFETY: `into` is writable for the length passed.
            n = unsafe { syscall!(SYS_read(fd.0, into.as_mut_ptr(), into.len())) }.unwrap_or(0);
        }
    }
    n
}
