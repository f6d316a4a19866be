//! The vDSO's `clock_gettime` ([vdso(7)]). The kernel maps a small ELF shared object into every
//! process whose functions read the clocks without entering it; its address comes in the
//! auxiliary vector (`AT_SYSINFO_EHDR`), and the function is found once, at start-up, through
//! the object's dynamic symbol table.
//!
//! The image is read through the ELF types of the libc crate, chosen by word size (`Elf64_*` or
//! `Elf32_*`: the vDSO has the word size of the process); the crate has no `ElfN_Dyn`, so
//! [`Dyn`] is here. The vDSO is the kernel's own build: its offsets and counts are consistent,
//! and each of its names is defined once.
//!
//! [vdso(7)]: https://man7.org/linux/man-pages/man7/vdso.7.html

use super::arch::{VdsoHashWord, VDSO_CLOCK_GETTIME};
use super::args::c_str;
use super::clock::Timespec;
use core::ffi::{c_char, c_int};
use core::slice::from_raw_parts;
use core::sync::atomic::{AtomicUsize, Ordering};
#[cfg(target_pointer_width = "32")]
use libc::{Elf32_Ehdr as Ehdr, Elf32_Phdr as Phdr, Elf32_Sym as Sym};
#[cfg(target_pointer_width = "64")]
use libc::{Elf64_Ehdr as Ehdr, Elf64_Phdr as Phdr, Elf64_Sym as Sym};
use libc::{PT_DYNAMIC, PT_LOAD};

/// An entry of the dynamic section (`ElfN_Dyn`): a tag, then a value or an address, each one
/// word. The section ends with a `DT_NULL` entry.
#[repr(C)]
struct Dyn {
    tag: usize,
    value: usize,
}

/// Dynamic-section tags (ELF gABI, "Dynamic Section").
const DT_NULL: usize = 0;
const DT_HASH: usize = 4;
const DT_STRTAB: usize = 5;
const DT_SYMTAB: usize = 6;

/// The vDSO's `clock_gettime`, or 0 when there is none (then the system call serves).
static CLOCK_GETTIME: AtomicUsize = AtomicUsize::new(0);

/// Looks up `clock_gettime` in the vDSO whose ELF header is at `ehdr` (0: no vDSO).
///
/// # Safety
/// `ehdr` must be 0 or the `AT_SYSINFO_EHDR` value the kernel passed this process.
pub(super) unsafe fn find_clock(ehdr: usize) {
    if ehdr == 0 {
        return;
    }
    // SAFETY: the kernel mapped a complete ELF image at `ehdr` (see the module docs), so its
    // header, program headers, dynamic section, symbols and names lie where they say.
    unsafe {
        let header = &*(ehdr as *const Ehdr);
        let phdrs = from_raw_parts(
            (ehdr + header.e_phoff as usize) as *const Phdr,
            header.e_phnum as usize,
        );
        // The load bias (where the segment holding file offset 0 was put; vDSOs are linked at
        // 0, so the header's address unless a segment says otherwise) and the dynamic section.
        let (mut bias, mut dynamic) = (ehdr, 0);
        for ph in phdrs {
            match (ph.p_type, ph.p_offset) {
                (PT_LOAD, 0) => bias = ehdr - ph.p_vaddr as usize,
                (PT_DYNAMIC, _) => dynamic = ph.p_vaddr as usize,
                _ => {}
            }
        }
        if dynamic == 0 {
            return;
        }
        let (mut strtab, mut symtab, mut count) = (0, 0, 0);
        let mut d = (bias + dynamic) as *const Dyn;
        while (*d).tag != DT_NULL {
            let at = bias + (*d).value;
            match (*d).tag {
                // The hash table starts with nbucket and nchain, the number of symbols.
                DT_HASH => count = *(at as *const VdsoHashWord).add(1) as usize,
                DT_STRTAB => strtab = at,
                DT_SYMTAB => symtab = at,
                _ => {}
            }
            d = d.add(1);
        }
        if strtab == 0 || symtab == 0 {
            return;
        }
        for sym in from_raw_parts(symtab as *const Sym, count) {
            let name = c_str((strtab + sym.st_name as usize) as *const c_char);
            // A value of 0 would be an undefined name.
            if sym.st_value != 0 && name == VDSO_CLOCK_GETTIME {
                CLOCK_GETTIME.store(bias + sym.st_value as usize, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Reads clock `id` into `ts` through the vDSO when there is one; false when there is none.
pub(super) fn clock_gettime(id: libc::clockid_t, ts: &mut Timespec) -> bool {
    let f = CLOCK_GETTIME.load(Ordering::Relaxed);
    if f == 0 {
        return false;
    }
    type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut Timespec) -> c_int;
    // SAFETY: f is the address of the vDSO's `VDSO_CLOCK_GETTIME`, whose C signature this is
    // (the 64-bit-time one on 32-bit ABIs); it only writes the timespec.
    unsafe { core::mem::transmute::<usize, ClockGettime>(f)(id, ts) == 0 }
}
