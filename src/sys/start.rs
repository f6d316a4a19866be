//! The program's entry point and the one thing it takes from the kernel's start-up data: the
//! vDSO's `clock_gettime`.
//!
//! The kernel starts a static executable at its entry point (`tinyapi_start`, a few
//! instructions per architecture in `arch/`) with the stack pointer on `argc`, then
//! `argv[..argc]`, NULL, `envp[..]`, NULL, and the auxiliary vector of (key, value) pairs
//! ending with `AT_NULL` (System V ABI, "Process Initialization"). [`entry`] reads them and
//! calls [`crate::start`]; nothing else runs before it: there are no constructors, no TLS and
//! no errno to set up, because nothing in the program uses them.

use super::{exit, Args, Process};
use core::ffi::{c_char, c_int};
use core::sync::atomic::{AtomicUsize, Ordering};

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
        find_vdso_clock(end.add(1) as *const [usize; 2]);
        Args { argc, argv, envp }
    };
    exit(crate::start(args, &mut Process(())))
}

/// The vDSO's `clock_gettime`, or 0 when there is none (then the system call serves).
static VDSO_CLOCK: AtomicUsize = AtomicUsize::new(0);

/// `AT_SYSINFO_EHDR`: the auxiliary-vector key whose value is the vDSO's ELF header.
const AT_SYSINFO_EHDR: usize = 33;

/// Looks up the vDSO's `clock_gettime` through its dynamic symbol table ([vdso(7)]).
///
/// # Safety
/// `auxv` must point at the process's auxiliary vector.
///
/// [vdso(7)]: https://man7.org/linux/man-pages/man7/vdso.7.html
unsafe fn find_vdso_clock(mut auxv: *const [usize; 2]) {
    // SAFETY: the vector ends with AT_NULL (0); the vDSO is a complete ELF image mapped by the
    // kernel, whose offsets and counts are consistent (it is the kernel's own build).
    unsafe {
        let mut ehdr = 0;
        while (*auxv)[0] != 0 {
            if (*auxv)[0] == AT_SYSINFO_EHDR {
                ehdr = (*auxv)[1];
            }
            auxv = auxv.add(1);
        }
        if ehdr == 0 {
            return;
        }
        let word = |a: usize| *(a as *const usize);
        let half = |a: usize| *(a as *const u32) as usize;
        // Program headers: the load bias (where the segment holding file offset 0 was put;
        // vDSOs are linked at 0, so the header's address unless a segment says otherwise) and
        // the dynamic section.
        let (phoff, phnum) = (word(ehdr + 0x20), *((ehdr + 0x38) as *const u16) as usize);
        let (mut bias, mut dynamic) = (ehdr, 0);
        for ph in (0..phnum).map(|i| ehdr + phoff + i * 56) {
            match (half(ph), word(ph + 8)) {
                (1, 0) => bias = ehdr - word(ph + 16), // PT_LOAD at offset 0
                (2, _) => dynamic = word(ph + 16),     // PT_DYNAMIC
                _ => {}
            }
        }
        if dynamic == 0 {
            return;
        }
        let (mut strtab, mut symtab, mut count) = (0, 0, 0);
        let mut d = bias + dynamic;
        while word(d) != 0 {
            let at = bias + word(d + 8);
            match word(d) {
                4 => count = half(at + 4), // DT_HASH: nbucket, nchain (the number of symbols)
                5 => strtab = at,          // DT_STRTAB
                6 => symtab = at,          // DT_SYMTAB
                _ => {}
            }
            d += 16;
        }
        if strtab == 0 || symtab == 0 {
            return;
        }
        // Elf64_Sym: st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64. The vDSO
        // defines each of its names once; a value of 0 would be an undefined one.
        for sym in (0..count).map(|i| symtab + i * 24) {
            let value = word(sym + 8);
            let name = super::args::c_str((strtab + half(sym)) as *const c_char);
            if value != 0 && name == super::arch::VDSO_CLOCK_GETTIME {
                VDSO_CLOCK.store(bias + value, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Reads clock `id` into `ts` through the vDSO when there is one; false when there is none.
pub(super) fn vdso_clock(id: libc::clockid_t, ts: &mut libc::timespec) -> bool {
    let f = VDSO_CLOCK.load(Ordering::Relaxed);
    if f == 0 {
        return false;
    }
    type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> c_int;
    // SAFETY: f is the address of the vDSO's clock_gettime, whose C signature this is; it only
    // writes the timespec.
    unsafe { core::mem::transmute::<usize, ClockGettime>(f)(id, ts) == 0 }
}
