//! Which build the tests run, and how to start it: `TINYAPI_TEST_TARGET`.
//!
//! - unset, empty or `native`: the binary cargo built for these tests (`CARGO_BIN_EXE_tinyapi`).
//! - `aarch64`: the arm64 build of the same profile,
//!   `target/aarch64-unknown-linux-musl/release/tinyapi`, run under `qemu-aarch64-static`
//!   (user-mode emulation) with `TINYAPI_SECCOMP=off`, because qemu-user does not implement
//!   seccomp. Build it first:
//!
//!   ```text
//!   cargo build --release --target aarch64-unknown-linux-musl
//!   TINYAPI_TEST_TARGET=aarch64 cargo test --release
//!   ```
//!
//!   Every command from [`tinyapi`] runs it that way, and [`install_in`] puts qemu next to it
//!   in an empty root. What emulation cannot show (the seccomp filter) is skipped with a
//!   printed `skipped under qemu-aarch64-static: why` line. The PID of a server is qemu's,
//!   which carries the guest's exit status, descriptors, sockets and worker processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The native binary (built by cargo with the same profile as the tests). The one under test
/// is [`binary`], which differs from it when `TINYAPI_TEST_TARGET` selects another target.
pub const BIN: &str = env!("CARGO_BIN_EXE_tinyapi");
/// The version the binary reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Environment variables the binary reads; removed from every child so the machine's
/// environment cannot change what a test sees.
const CONFIG_VARS: &[&str] = &[
    "PORT",
    "TINYAPI_LISTEN",
    "TINYAPI_WORKERS",
    "TINYAPI_MAX_CONNECTIONS",
    "TINYAPI_HEADER_TIMEOUT",
    "TINYAPI_IDLE_TIMEOUT",
    "TINYAPI_LOG",
    "TINYAPI_SECCOMP",
    "TINYAPI_SHUTDOWN_DELAY",
];

/// The emulator that runs the arm64 build on another machine.
pub const QEMU_AARCH64: &str = "qemu-aarch64-static";

/// Which build the tests run (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The binary built for this machine, run directly.
    Native,
    /// The arm64 build, run under [`QEMU_AARCH64`].
    Aarch64,
}

/// The target selected by `TINYAPI_TEST_TARGET`; an unknown value fails the test.
#[track_caller]
pub fn target() -> Target {
    match std::env::var("TINYAPI_TEST_TARGET").as_deref() {
        Err(_) | Ok("") | Ok("native") => Target::Native,
        Ok("aarch64") => Target::Aarch64,
        Ok(other) => panic!("TINYAPI_TEST_TARGET={other:?}: expected aarch64 or native"),
    }
}

/// Whether the binary under test runs under user-mode emulation.
pub fn emulated() -> bool {
    target() != Target::Native
}

/// The binary file under test: [`BIN`], or the build for the selected target with the same
/// target directory and profile. Fails the test when that build is missing or is not an
/// executable for the selected architecture.
#[track_caller]
pub fn binary() -> PathBuf {
    const EM_AARCH64: u16 = 183; // ELF e_machine
    let native = Path::new(BIN);
    if target() == Target::Native {
        return native.to_path_buf();
    }
    // BIN is <target dir>/<triple>/<profile>/tinyapi.
    let profile = native.parent().unwrap();
    let target_dir = profile.parent().unwrap().parent().unwrap();
    let path = target_dir
        .join("aarch64-unknown-linux-musl")
        .join(profile.file_name().unwrap())
        .join("tinyapi");
    let head = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build it with `cargo build --release --target aarch64-unknown-linux-musl`",
            path.display()
        )
    });
    assert!(
        head.len() > 20 && head.starts_with(b"\x7fELF") && head[18..20] == EM_AARCH64.to_le_bytes(),
        "{} is not an arm64 executable",
        path.display()
    );
    // Cargo rebuilds only the native binary for the tests: an older cross build would be
    // tested in its place without a word.
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap();
    if let Some(newer) = newest_source().filter(|(t, _)| *t > built) {
        panic!(
            "{} is older than {}; rebuild it with `cargo build --release --target \
             aarch64-unknown-linux-musl`",
            path.display(),
            newer.1.display()
        );
    }
    path
}

/// The most recently modified file the binary is built from, and when.
fn newest_source() -> Option<(SystemTime, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = ["Cargo.toml", "Cargo.lock", "build.rs", ".cargo/config.toml"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    files.extend(
        std::fs::read_dir(root.join("src"))
            .ok()?
            .filter_map(|e| Some(e.ok()?.path())),
    );
    files
        .into_iter()
        .filter_map(|f| Some((std::fs::metadata(&f).ok()?.modified().ok()?, f)))
        .max()
}

/// The emulator binary, found on `PATH`, when the target needs one.
#[track_caller]
pub fn emulator() -> Option<PathBuf> {
    if !emulated() {
        return None;
    }
    let found = find_tool(QEMU_AARCH64);
    Some(found.unwrap_or_else(|| panic!("{QEMU_AARCH64} is not on PATH")))
}

/// The program and leading arguments that run the binary under test.
#[track_caller]
pub fn launcher() -> Vec<PathBuf> {
    emulator().into_iter().chain([binary()]).collect()
}

/// Copies the binary under test (and its static emulator, when there is one) into `root`; returns
/// the command line prefix that runs it once `root` is the root directory.
#[track_caller]
pub fn install_in(root: &Path) -> Vec<String> {
    let mut prefix = Vec::new();
    if let Some(qemu) = emulator() {
        std::fs::copy(&qemu, root.join(QEMU_AARCH64)).unwrap();
        prefix.push(format!("/{QEMU_AARCH64}"));
    }
    std::fs::copy(binary(), root.join("tinyapi")).unwrap();
    prefix.push("/tinyapi".to_string());
    prefix
}

/// A command running the binary under test with a clean configuration environment.
#[track_caller]
pub fn tinyapi() -> Command {
    let mut launcher = launcher().into_iter();
    let mut c = Command::new(launcher.next().unwrap());
    c.args(launcher);
    clean_env(&mut c);
    c
}

/// Removes the binary's configuration variables from `command`'s environment.
pub fn clean_env(command: &mut Command) -> &mut Command {
    for v in CONFIG_VARS {
        command.env_remove(v);
    }
    command
}

/// The one line a server prints on stderr when it cannot install its seccomp filter because the
/// kernel or emulator lacks seccomp (and `TINYAPI_SECCOMP=require` is not set).
pub const NO_SECCOMP_WARNING: &str = "tinyapi: warning: serving without the seccomp filter \
     (TINYAPI_SECCOMP=require refuses to): not supported by the kernel or emulator\n";

/// What a server that ran without trouble leaves on stderr: nothing natively; under emulation
/// (qemu-user has no seccomp) the warning that it serves without the filter.
pub fn quiet_stderr() -> &'static str {
    if emulated() {
        NO_SECCOMP_WARNING
    } else {
        ""
    }
}

/// Prints why the calling test does not run under emulation and returns true; false natively.
/// Use as `if skip_under_emulation("why") { return; }`.
pub fn skip_under_emulation(why: &str) -> bool {
    if emulated() {
        eprintln!("skipped under {QEMU_AARCH64}: {why}");
    }
    emulated()
}

/// Where `tool` is on `PATH`, if anywhere.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|f| f.is_file())
}
