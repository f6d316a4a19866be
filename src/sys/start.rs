//! The program's entry point: the arguments, the environment and the one thing the program takes
//! from the auxiliary vector, the vDSO's address.
//!
//! The kernel starts a static executable at its entry point (`tinyapi_start`, a few
//! instructions per architecture in `arch/`) with the stack pointer on `argc`, then
//! `argv[..argc]`, NULL, `envp[..]`, NULL, and the auxiliary vector of (key, value) pairs
//! ending with `AT_NULL` (System V ABI, "Process Initialization"). [`entry`] reads them and
//! calls [`crate::start`]; nothing else runs before it: there are no constructors, no TLS and
//! no errno to set up, because nothing in the program uses them.

use super::{exit, vdso, Args, Process};
use core::ffi::c_char;

/// Runs the program and exits with its status.
///
/// # Safety
/// `sp` must be the initial stack pointer the kernel gave `tinyapi_start`.
pub(super) unsafe extern "C" fn entry(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack layout, described in the module docs.
    let args = unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const c_char;
        let envp = argv.add(argc + 1);
        let mut end = envp;
        while !(*end).is_null() {
            end = end.add(1);
        }
        vdso::find_clock(aux(
            end.add(1) as *const [usize; 2],
            libc::AT_SYSINFO_EHDR as usize,
        ));
        Args { argc, argv, envp }
    };
    exit(crate::start(args, &mut Process(())))
}

/// The value of `key` in the auxiliary vector at `auxv` (pairs of key and value, ending with
/// `AT_NULL`), or 0 when it is not there.
///
/// # Safety
/// `auxv` must point at the process's auxiliary vector.
unsafe fn aux(mut auxv: *const [usize; 2], key: usize) -> usize {
    let mut value = 0;
    // SAFETY: the vector ends with AT_NULL (0), so every pair read is inside it.
    unsafe {
        while (*auxv)[0] != 0 {
            if (*auxv)[0] == key {
                value = (*auxv)[1];
            }
            auxv = auxv.add(1);
        }
    }
    value
}
