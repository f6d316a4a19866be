//! The program's arguments and environment, as the kernel left them on the initial stack.

/// The program's command-line arguments (without the program name) and environment.
#[derive(Clone, Copy)]
pub struct Args {
    pub(super) argc: usize,
    pub(super) argv: *const *const libc::c_char,
    pub(super) envp: *const *const libc::c_char,
}

/// The bytes of the NUL-terminated string at `p`, without the NUL, found by a plain loop.
///
/// # Safety
/// `p` points to a NUL-terminated string that lives, unchanged, for the whole process.
// size: `CStr` would call musl's `strlen`, 77 bytes more for strings this short.
pub(super) unsafe fn c_str(p: *const libc::c_char) -> &'static [u8] {
    let mut n = 0;
    // The loop counts down a bound no string reaches, which keeps LLVM from making it a
    // strlen call.
    let mut left = isize::MAX as usize;
    // SAFETY: every byte up to the NUL is part of the string (the caller's promise).
    while left > 0 && unsafe { *p.add(n) } != 0 {
        n += 1;
        left -= 1;
    }
    // SAFETY: the `n` bytes before the NUL, live for the whole process.
    unsafe { core::slice::from_raw_parts(p.cast::<u8>(), n) }
}

impl Args {
    /// The `i`-th argument (0: first after the program name).
    pub fn get(&self, i: usize) -> Option<&'static [u8]> {
        if i + 1 >= self.argc {
            return None;
        }
        // SAFETY: the C runtime passes argc valid NUL-terminated strings that live for the
        // whole process.
        Some(unsafe { c_str(*self.argv.add(i + 1)) })
    }

    /// The value of environment variable `name`, if set. Read from `main`'s environment
    /// block directly: getenv(3) would pull in three more string functions.
    pub fn env(&self, name: &[u8]) -> Option<&'static [u8]> {
        let mut p = self.envp;
        loop {
            // SAFETY: envp is a null-terminated array of NUL-terminated strings that live for
            // the whole process and are never modified by this program.
            let entry = unsafe { *p };
            if entry.is_null() {
                return None;
            }
            // SAFETY: a non-null entry of envp is a NUL-terminated string (as above).
            let entry = unsafe { c_str(entry) };
            if let Some(rest) = entry.strip_prefix(name) {
                if let Some(value) = rest.strip_prefix(b"=") {
                    return Some(value);
                }
            }
            // SAFETY: `entry` was not the terminating null, so the array goes on past `p`.
            p = unsafe { p.add(1) };
        }
    }
}
