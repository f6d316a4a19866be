//! Which build the tests run, and how to start it: `TINYAPI_TEST_TARGET`.
//!
//! - unset, empty or `native`: the binary cargo built for these tests (`CARGO_BIN_EXE_tinyapi`).
//! - the name of a row of `.cargo/platforms` (`aarch64`, `i686`, `armv7`, `riscv64`, `s390x`,
//!   ...): that row's build of the same profile, `target/<triple>/release/tinyapi`. When it is
//!   missing or older than the sources, the first test that needs it builds it with
//!   `.cargo/build-target <name>`, so one command tests one architecture:
//!
//!   ```text
//!   TINYAPI_TEST_TARGET=riscv64 cargo test --release
//!   ```
//!
//!   A row with an emulator runs under it (qemu-user, found on `PATH`, with `QEMU_CPU` set from
//!   the row's `qemu_cpu`); a row without one (i686 on an x86-64 machine) runs directly, with
//!   its seccomp filter. Every command from [`tinyapi`] runs it that way, and [`install_in`] puts
//!   the emulator next to it in an empty root. qemu-user does not implement seccomp, so an
//!   emulated server serves without the filter and says so once ([`NO_SECCOMP_WARNING`]); the
//!   tests that need the filter print a `skipped under qemu-...: why` line. The PID of an
//!   emulated server is qemu's, which carries the guest's exit status, descriptors, sockets and
//!   worker processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
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

/// The CPU model qemu-user emulates; set from the row's `qemu_cpu`, removed otherwise.
const QEMU_CPU: &str = "QEMU_CPU";

/// The platform table (`name triple platform toolchain emulator qemu_cpu budget`, `-` for none),
/// read when the tests are compiled.
const PLATFORMS: &str = include_str!("../../.cargo/platforms");

/// The program that builds a row's release binary with the toolchain the row names.
const BUILD_TARGET: &str = ".cargo/build-target";

/// A build the tests can run: the native one or a row of `.cargo/platforms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// `native`, or the row's name (`TINYAPI_TEST_TARGET`).
    pub name: &'static str,
    /// The Rust target triple; the binary is `<target dir>/<triple>/<profile>/tinyapi`.
    pub triple: &'static str,
    /// The qemu-user program that runs the binary here; `None` runs it directly.
    pub emulator: Option<&'static str>,
    /// The CPU model for the emulator (`QEMU_CPU`), when its default does not fit.
    pub qemu_cpu: Option<&'static str>,
}

/// The rows of `.cargo/platforms`.
#[track_caller]
pub fn platforms() -> Vec<Target> {
    let cell = |c: &'static str| Some(c).filter(|c| *c != "-");
    PLATFORMS
        .lines()
        .map(|l| l.split('#').next().unwrap())
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [name, triple, _platform, _toolchain, emulator, qemu_cpu, _budget] => Target {
                name,
                triple,
                emulator: cell(emulator),
                qemu_cpu: cell(qemu_cpu),
            },
            _ => panic!(".cargo/platforms: not 7 columns: {l:?}"),
        })
        .collect()
}

/// The target selected by `TINYAPI_TEST_TARGET`; an unknown value fails the test.
#[track_caller]
pub fn target() -> Target {
    match std::env::var("TINYAPI_TEST_TARGET").as_deref() {
        Err(_) | Ok("") | Ok("native") => Target {
            name: "native",
            // BIN is <target dir>/<triple>/<profile>/tinyapi.
            triple: Path::new(BIN)
                .ancestors()
                .nth(2)
                .and_then(|p| p.file_name()?.to_str())
                .unwrap(),
            emulator: None,
            qemu_cpu: None,
        },
        Ok(name) => {
            let rows = platforms();
            let names: Vec<&str> = rows.iter().map(|t| t.name).collect();
            *rows.iter().find(|t| t.name == name).unwrap_or_else(|| {
                panic!(
                    "TINYAPI_TEST_TARGET={name:?}: expected native or a row of \
                     .cargo/platforms: {}",
                    names.join(", ")
                )
            })
        }
    }
}

/// Whether the binary under test runs under user-mode emulation.
pub fn emulated() -> bool {
    target().emulator.is_some()
}

/// What an ELF header says about the machine a file is for.
#[derive(Debug, PartialEq, Eq)]
struct ElfMachine {
    /// `e_machine` (EM_X86_64, EM_AARCH64, ...).
    machine: u16,
    /// `EI_CLASS`: 1 for ELF32, 2 for ELF64.
    class: u8,
    /// `EI_DATA`: 1 for little-endian, 2 for big-endian (the byte order of every later field).
    data: u8,
}

/// The ELF machine of each architecture a triple can start with ([`elf_machine`]).
const MACHINES: &[(&str, ElfMachine)] = &[
    ("x86_64", elf(62, 2, 1)),
    ("aarch64", elf(183, 2, 1)),
    ("i686", elf(3, 1, 1)),
    ("i586", elf(3, 1, 1)),
    ("arm", elf(40, 1, 1)),
    ("thumb", elf(40, 1, 1)),
    ("riscv64", elf(243, 2, 1)),
    ("powerpc64le", elf(21, 2, 1)),
    ("powerpc64", elf(21, 2, 2)),
    ("s390x", elf(22, 2, 2)),
    ("loongarch64", elf(258, 2, 1)),
];

const fn elf(machine: u16, class: u8, data: u8) -> ElfMachine {
    ElfMachine {
        machine,
        class,
        data,
    }
}

/// The ELF machine a binary for `triple` must have: the first entry of [`MACHINES`] whose name
/// begins the triple's architecture (`thumbv7neon` is `thumb`, `armv7` is `arm`).
#[track_caller]
fn elf_machine(triple: &str) -> &'static ElfMachine {
    let arch = triple.split('-').next().unwrap();
    MACHINES
        .iter()
        .find(|(name, _)| arch.starts_with(name))
        .map(|(_, m)| m)
        .unwrap_or_else(|| panic!("no ELF machine for {triple} in tests/common/target.rs"))
}

/// The machine an ELF file's header describes, `e_machine` read in the file's own byte order;
/// `None` if `head` is not the start of an ELF file.
fn read_elf_machine(head: &[u8]) -> Option<ElfMachine> {
    if head.len() < 20 || !head.starts_with(b"\x7fELF") {
        return None;
    }
    let field = [head[18], head[19]];
    let machine = match head[5] {
        1 => u16::from_le_bytes(field),
        2 => u16::from_be_bytes(field),
        _ => return None,
    };
    Some(elf(machine, head[4], head[5]))
}

/// The binary file under test: [`BIN`], or the build for the selected target with the same
/// target directory and profile, built first by [`BUILD_TARGET`] when it is missing or older
/// than the sources. Fails the test when that build fails or is not an executable for the
/// selected architecture.
#[track_caller]
pub fn binary() -> PathBuf {
    // Built and checked once per test program; every test that asks gets the same answer.
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match CHECKED.get_or_init(|| check_binary(target())) {
        Ok(path) => path.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// [`binary`] for `t`: its path, or why it cannot be tested.
fn check_binary(t: Target) -> Result<PathBuf, String> {
    let native = Path::new(BIN);
    let profile = native.parent().unwrap();
    let target_dir = profile.parent().unwrap().parent().unwrap();
    let path = target_dir
        .join(t.triple)
        .join(profile.file_name().unwrap())
        .join("tinyapi");
    if path == native {
        return Ok(path); // cargo built it for these tests
    }
    let build = format!("{BUILD_TARGET} {}", t.name);
    // Cargo rebuilds only the native binary for the tests: an older build for another target
    // would be tested in its place without a word.
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let newer = newest_source().filter(|(when, _)| built.is_none_or(|b| *when > b));
    if let Some((_, source)) = newer {
        if profile.file_name().unwrap() != "release" {
            return Err(format!(
                "{} is missing or older than {}; {build} builds release binaries: run the \
                 tests with `cargo test --release`",
                path.display(),
                source.display()
            ));
        }
        match built {
            Some(_) => eprintln!("{} is older than {}", path.display(), source.display()),
            None => eprintln!("{} is missing", path.display()),
        }
        eprintln!("building it: `{build}`");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(root.join(BUILD_TARGET))
            .arg(t.name)
            .current_dir(root)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(format!("`{build}` failed ({s}): see its output above")),
            Err(e) => return Err(format!("`{build}` did not run: {e}; it needs python3")),
        }
    }
    let head = std::fs::read(&path)
        .map_err(|e| format!("{}: {e}; build it with `{build}`", path.display()))?;
    let want = elf_machine(t.triple);
    let found = read_elf_machine(&head);
    if found.as_ref() != Some(want) {
        return Err(format!(
            "{} is not a {} executable: its ELF header says {found:?}, want {want:?}",
            path.display(),
            t.name
        ));
    }
    Ok(path)
}

/// The most recently modified file the binary is built from (the files cargo watches), and when.
fn newest_source() -> Option<(SystemTime, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = ["Cargo.toml", "Cargo.lock", "build.rs", ".cargo/config.toml"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(path),
                _ => files.push(path),
            }
        }
    }
    files
        .into_iter()
        .filter_map(|f| Some((std::fs::metadata(&f).ok()?.modified().ok()?, f)))
        .max()
}

/// The emulator binary, found on `PATH`, when the target needs one.
#[track_caller]
pub fn emulator() -> Option<PathBuf> {
    let qemu = target().emulator?;
    let found = find_tool(qemu);
    Some(found.unwrap_or_else(|| {
        panic!("{qemu} is not on PATH; Debian's qemu-user-static package has it")
    }))
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
        let name = qemu.file_name().unwrap().to_str().unwrap();
        std::fs::copy(&qemu, root.join(name)).unwrap();
        prefix.push(format!("/{name}"));
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

/// Removes the binary's configuration variables from `command`'s environment, and sets the
/// emulator's CPU model as the target's row says (or removes it).
#[track_caller]
pub fn clean_env(command: &mut Command) -> &mut Command {
    for v in CONFIG_VARS {
        command.env_remove(v);
    }
    match target().qemu_cpu {
        Some(cpu) => command.env(QEMU_CPU, cpu),
        None => command.env_remove(QEMU_CPU),
    }
}

/// The one line a server prints on stderr when it cannot install its seccomp filter because the
/// kernel or emulator lacks seccomp (and `TINYAPI_SECCOMP=require` is not set).
pub const NO_SECCOMP_WARNING: &str = "tinyapi: warning: serving without the seccomp filter \
     (TINYAPI_SECCOMP=require refuses to): not supported by the kernel or emulator\n";

/// What a server that ran without trouble leaves on stderr: nothing when it runs directly;
/// under emulation (qemu-user has no seccomp) the warning that it serves without the filter.
pub fn quiet_stderr() -> &'static str {
    if emulated() {
        NO_SECCOMP_WARNING
    } else {
        ""
    }
}

/// Prints why the calling test does not run under emulation and returns true; false when the
/// binary runs directly. Use as `if skip_under_emulation("why") { return; }`.
pub fn skip_under_emulation(why: &str) -> bool {
    match target().emulator {
        Some(qemu) => {
            eprintln!("skipped under {qemu}: {why}");
            true
        }
        None => false,
    }
}

/// Where `tool` is on `PATH`, if anywhere.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|f| f.is_file())
}
