//! Build script: bakes the commit into the binary and passes the linker arguments that keep
//! the static binary small and hardened. Each argument says what it saves or protects.

use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TINYAPI_COMMIT={commit}");
    // Rebuild when the commit moves. Git names the files (in a worktree `.git` is a file, and
    // a path that does not exist would make cargo rerun this script on every build).
    for name in ["HEAD", "refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");

    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux-musl") {
        return;
    }
    // musl's libc.a, for memcpy, memmove, memcmp and bcmp only (see src/sys/mod.rs), from the
    // toolchain's self-contained musl for the target. A target whose standard library is built
    // from source (-Zbuild-std) has none: compiler_builtins supplies those routines then
    // (compiler-builtins-mem), and the linker is not asked for a libc.a it cannot find.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    let musl = std::path::Path::new(sysroot.trim())
        .join(format!("lib/rustlib/{target}/lib/self-contained"));
    if musl.join("libc.a").exists() {
        println!("cargo:rustc-link-arg-bins=-L{}", musl.display());
        println!("cargo:rustc-link-arg-bins=-lc");
    }
    // Every target links with rust-lld directly (.cargo/config.toml), through .cargo/lld-trim.
    let args: &[&str] = &[
        // Fully static: no dynamic loader, no shared libraries, nothing else in the image.
        "-static",
        // Drop functions and data nothing refers to (musl's libc.a is linked section by section).
        "--gc-sections",
        // Code and read-only data share one page-aligned segment instead of three: saves ~8 KiB
        // of alignment padding. Segments stay W^X (checked in .ci/run with readelf).
        "-z",
        "noseparate-code",
        // The ELF and program headers share the code's segment instead of taking a read-only
        // one of their own (one program header and its padding less).
        "--no-rosegment",
        // No .eh_frame_hdr: panic = "abort" never unwinds, so the lookup table is dead weight.
        "--no-eh-frame-hdr",
        // No build-id note (size: 36 bytes): the commit is baked in instead.
        "--build-id=none",
        // A non-executable stack, stated explicitly rather than inferred from input objects.
        "-z",
        "noexecstack",
        // No GNU_RELRO segment: only a dynamic loader applies RELRO, and a static non-PIE
        // binary has none (its "relro" page stays writable: see /proc/PID/maps), so the
        // segment bought nothing but ~1.7 KiB of page-alignment padding.
        "-z",
        "norelro",
        // Fold functions whose machine code is identical.
        "--icf=all",
    ];
    for a in args {
        println!("cargo:rustc-link-arg-bins={a}");
    }
    // A linker map (where each input section landed) for bench/sizemap.py, which wants the
    // symbols and section headers too; the loaded bytes are the same either way.
    println!("cargo:rerun-if-env-changed=TINYAPI_LINK_MAP");
    match std::env::var("TINYAPI_LINK_MAP") {
        Ok(map) => println!("cargo:rustc-link-arg-bins=-Map={map}"),
        // Not for lld: tells .cargo/lld-trim to cut the section header table off the linked
        // release binary (size: ~350 bytes; nothing loads it: the kernel and readelf -l need only the
        // program headers). Debug builds keep it, and with it their symbols for debuggers.
        Err(_) if std::env::var("PROFILE").as_deref() == Ok("release") => {
            println!("cargo:rustc-link-arg-bins=--tinyapi-no-section-headers")
        }
        Err(_) => {}
    }
    // The whole layout, instead of ld's default script: one read-only executable segment
    // (code and constants), one read-write segment, and four section headers instead of
    // thirteen (size: ~600 bytes). Unwind tables are dropped (panic = "abort" never unwinds).
    // Binaries only: the library's unit-test harness needs unwind tables to report a failing
    // test.
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let script = std::path::Path::new(&out).join("tinyapi.ld");
    std::fs::write(&script, LAYOUT).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
}

/// The linker script. The C start files rustc passes for musl (crt1.o and the rest) are
/// discarded whole: the program starts at its own entry point (src/sys/start.rs), so musl's
/// start-up, constructors and TLS set-up are never linked. The discard comes first because the
/// first rule that matches an input section places it.
///
/// The program headers are listed (PHDRS) so that there are only the three the kernel reads:
/// no PT_PHDR, which only a dynamic loader looks at (size: 56 bytes). The GOT holds the addresses
/// of the two libc routines the precompiled `core` calls through it (`memcpy`, `bcmp`): in a
/// static binary they are fixed at link time, so it goes with the read-only constants (a GOT
/// the program cannot overwrite), and `.got.plt`, the header of lazy binding that only a
/// dynamic loader fills, is dropped (size: 24 bytes on x86-64, and the data segment takes no file
/// bytes). For the same reason `.data.rel.ro`, constants holding addresses that a dynamic
/// loader would relocate in a position-independent program, is read-only data here: nothing
/// relocates a static non-PIE binary at run time, so nothing writes it (ppc64le's code puts
/// every constant there, 4.6 KiB that would be writable in the data segment). ppc64's
/// `.branch_lt`, the addresses long-branch stubs jump to (fixed at link time, and none in a
/// program this small), goes there too: left to the linker it would follow `.bss` and give
/// the whole of it file bytes. riscv64's `.riscv.attributes` (the ISA extensions the objects
/// were built for, read by linkers and tools, not by the kernel) is dropped with the program
/// header it would get (size: 172 bytes). 32-bit arm's unwind tables, `.ARM.exidx` (an index with a
/// program header of its own) and `.ARM.extab`, go with `.eh_frame`: nothing unwinds with
/// panic = "abort".
const LAYOUT: &str = "\
ENTRY(tinyapi_start)
PHDRS
{
  text PT_LOAD FILEHDR PHDRS FLAGS(5);
  data PT_LOAD FLAGS(6);
  stack PT_GNU_STACK FLAGS(6);
}
SECTIONS
{
  /DISCARD/ : {
    *crt1.o(*) *crti.o(*) *crtn.o(*) *crtbegin.o(*) *crtend.o(*)
    *(.eh_frame) *(.comment) *(.note .note.*) *(.got.plt)
    *(.riscv.attributes)
    *(.ARM.exidx .ARM.exidx.*) *(.ARM.extab .ARM.extab.*)
  }
  . = SEGMENT_START(\"text-segment\", 0x400000) + SIZEOF_HEADERS;
  .text : {
    *(.text .text.*)
    *(.rodata .rodata.*)
    *(.data.rel.ro .data.rel.ro.*)
    *(.got) *(.branch_lt)
  } :text
  . = ALIGN(CONSTANT(MAXPAGESIZE)) + (. & (CONSTANT(MAXPAGESIZE) - 1));
  .data : { *(.data .data.*) } :data
  .bss : { *(.bss .bss.*) *(COMMON) } :data
}
";
