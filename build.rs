//! Build script: bakes the commit into the binary and passes the linker arguments that keep
//! the static binary small and hardened. Each argument says what it saves or protects.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=TINYAPI_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-changed=build.rs");

    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux-musl") {
        return;
    }
    let args: &[&str] = &[
        // musl's libc.a: with no std, nothing else links the C library the libc crate declares.
        "-lc",
        // Fully static: no dynamic loader, no shared libraries, nothing else in the image.
        "-static",
        // Drop functions and data nothing refers to (musl's libc.a is linked section by section).
        "-Wl,--gc-sections",
        // Code and read-only data share one page-aligned segment instead of three: saves ~8 KiB
        // of alignment padding. Segments stay W^X (checked in .ci/run with readelf).
        "-Wl,-z,noseparate-code",
        // No .eh_frame_hdr: panic = "abort" never unwinds, so the lookup table is dead weight.
        "-Wl,--no-eh-frame-hdr",
        // No build-id note (36 bytes): the commit is baked in instead.
        "-Wl,--build-id=none",
        // A non-executable stack, stated explicitly rather than inferred from input objects.
        "-Wl,-z,noexecstack",
        // No GNU_RELRO segment: only a dynamic loader applies RELRO, and a static non-PIE
        // binary has none (its "relro" page stays writable: see /proc/PID/maps), so the
        // segment bought nothing but ~1.7 KiB of page-alignment padding.
        "-Wl,-z,norelro",
    ];
    // A cross target links with rust-lld directly (see .cargo/config.toml): no C compiler
    // driver in between, so the `-Wl,` wrappers come off.
    let direct = std::env::var("RUSTC_LINKER").is_ok_and(|l| l.contains("lld"));
    let link_arg = |a: &str| {
        for a in if direct {
            a.trim_start_matches("-Wl,").split(',').collect()
        } else {
            vec![a]
        } {
            println!("cargo:rustc-link-arg-bins={a}");
        }
    };
    for a in args {
        link_arg(a);
    }
    if direct {
        // lld only: fold functions whose machine code is identical.
        link_arg("--icf=all");
    }
    // The whole layout, instead of ld's default script: one read-only executable segment
    // (code and constants), one read-write segment, and four section headers instead of
    // thirteen (~600 bytes). Unwind tables are dropped (panic = "abort" never unwinds), except
    // gcc's crtbegin/crtend ones, which their frame registration refers to. Binaries only:
    // the library's unit-test harness needs unwind tables to report a failing test.
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let script = std::path::Path::new(&out).join("tinyapi.ld");
    std::fs::write(&script, LAYOUT).expect("OUT_DIR is writable");
    link_arg(&format!("-Wl,-T,{}", script.display()));
}

/// The linker script. musl's start-up needs the init/fini array bounds; `_end` marks the end
/// of memory the program owns.
const LAYOUT: &str = "\
ENTRY(_start)
SECTIONS
{
  . = SEGMENT_START(\"text-segment\", 0x400000) + SIZEOF_HEADERS;
  .text : {
    KEEP (*(.init))
    *(.text .text.*)
    KEEP (*(.fini))
    *(.rodata .rodata.*)
    KEEP (*crtbegin.o(.eh_frame))
    KEEP (*crtend.o(.eh_frame))
  }
  . = ALIGN(CONSTANT(MAXPAGESIZE)) + (. & (CONSTANT(MAXPAGESIZE) - 1));
  .data : {
    PROVIDE_HIDDEN (__init_array_start = .);
    KEEP (*(SORT_BY_INIT_PRIORITY(.init_array.*)))
    KEEP (*(.init_array))
    PROVIDE_HIDDEN (__init_array_end = .);
    PROVIDE_HIDDEN (__fini_array_start = .);
    KEEP (*(SORT_BY_INIT_PRIORITY(.fini_array.*)))
    KEEP (*(.fini_array))
    PROVIDE_HIDDEN (__fini_array_end = .);
    *(.got) *(.got.plt) *(.igot .igot.plt)
    *(.data .data.*)
  }
  .bss : {
    __bss_start = .;
    *(.bss .bss.*) *(COMMON)
    _end = .;
  }
  /DISCARD/ : { *(.eh_frame) *(.comment) *(.note .note.*) }
}
";
