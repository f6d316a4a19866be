//! Shared helpers for the black-box tests: run the release binary on port 0, talk to it over
//! loopback with plain sockets, and check exact bytes, exit codes and log lines.
//!
//! Every wait is bounded: sockets carry read and write timeouts, and loops that poll the child
//! have a deadline. A [`Server`] kills its process on drop, so a failing test leaves nothing
//! running.
//!
//! # The binary under test: `TINYAPI_TEST_TARGET`
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
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The native binary (built by cargo with the same profile as the tests). The one under test
/// is [`binary`], which differs from it when `TINYAPI_TEST_TARGET` selects another target.
pub const BIN: &str = env!("CARGO_BIN_EXE_tinyapi");
/// The version the binary reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Generous bound for anything that should happen "at once" (a response, a start-up line).
/// Only reached when something is broken; a noisy machine stays far below it.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Body of `/`.
pub const INDEX_BODY: &str = "Index of tinyapi. These aren't the droids you're looking for\n";
/// Body of `/alwaysok`.
pub const ALWAYSOK_BODY: &str = "{ \"status\": \"OK\" }";

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

// ---------------------------------------------------------------------------------------------
// Output collected from a child

/// The bytes read so far, and whether the pipe has ended.
type Collected = Mutex<(Vec<u8>, bool)>;

/// Bytes read from one of the child's pipes by a background thread, so the pipe never fills.
#[derive(Clone, Default)]
pub struct Captured(Arc<(Collected, Condvar)>);

impl Captured {
    /// Starts draining `source` into a new buffer.
    pub fn drain(mut source: impl Read + Send + 'static) -> Captured {
        let c = Captured::default();
        let sink = c.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 16 * 1024];
            loop {
                let n = source.read(&mut chunk).unwrap_or(0);
                let (lock, cv) = &*sink.0;
                let mut g = lock.lock().unwrap();
                if n == 0 {
                    g.1 = true;
                } else {
                    g.0.extend_from_slice(&chunk[..n]);
                }
                cv.notify_all();
                if n == 0 {
                    return;
                }
            }
        });
        c
    }

    /// Everything read so far, as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0 .0.lock().unwrap().0).into_owned()
    }

    /// Waits until `done(text so far)` holds or the pipe ends; returns the text, or `None` when
    /// the condition never held before `timeout` or the end of the pipe.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.0;
        let mut g = lock.lock().unwrap();
        loop {
            let text = String::from_utf8_lossy(&g.0);
            if done(&text) {
                return Some(text.into_owned());
            }
            let now = Instant::now();
            if g.1 || now >= deadline {
                return None;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Waits for the end of the pipe (the writer exited); returns whether it came in time.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.0;
        let mut g = lock.lock().unwrap();
        while !g.1 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
        true
    }
}

// ---------------------------------------------------------------------------------------------
// A running server

/// A running tinyapi; killed (by PID) and reaped on drop.
pub struct Server {
    pub child: Child,
    /// The address from the start-up line.
    pub addr: SocketAddr,
    /// The start-up line, without its newline.
    pub banner: String,
    pub stdout: Captured,
    pub stderr: Captured,
    exited: Option<ExitStatus>,
    /// When the exit was noticed (within a few milliseconds of it).
    pub exited_at: Option<Instant>,
}

impl Server {
    /// Starts the binary on `127.0.0.1:0` with `args` after it (a later `--listen` wins).
    #[track_caller]
    pub fn start(args: &[&str]) -> Server {
        let mut c = tinyapi();
        c.args(["--listen", "127.0.0.1:0"]).args(args);
        Server::spawn(c)
    }

    /// Starts `command` with piped stdout and stderr and waits for the start-up line.
    #[track_caller]
    pub fn spawn(mut command: Command) -> Server {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("cannot start tinyapi");
        let stdout = Captured::drain(child.stdout.take().unwrap());
        let stderr = Captured::drain(child.stderr.take().unwrap());
        Server::attach(child, stdout, stderr)
    }

    /// Wraps an already started child whose stdout is drained by `stdout`.
    #[track_caller]
    pub fn attach(child: Child, stdout: Captured, stderr: Captured) -> Server {
        let line = stdout.wait_for(PATIENCE, |t| t.contains('\n'));
        let mut s = Server {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            banner: String::new(),
            stdout,
            stderr,
            exited: None,
            exited_at: None,
        };
        let Some(text) = line else {
            let status = s.wait_exit(Duration::from_secs(1));
            panic!(
                "no start-up line (exit {status:?}); stdout {:?}; stderr {:?}",
                s.stdout.text(),
                s.stderr.text()
            );
        };
        s.banner = text.lines().next().unwrap().to_string();
        s.addr = banner_addr(&s.banner);
        s
    }

    /// Wraps a started child whose stdout the test handles itself; `banner` gives the address.
    #[track_caller]
    pub fn attach_with_banner(child: Child, banner: &str, stderr: Captured) -> Server {
        let stdout = Captured::default();
        {
            let mut g = stdout.0 .0.lock().unwrap();
            g.1 = true; // nothing to drain
        }
        Server {
            child,
            addr: banner_addr(banner),
            banner: banner.to_string(),
            stdout,
            stderr,
            exited: None,
            exited_at: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The server's child processes (its workers, when they are processes), read from /proc.
    pub fn children(&self) -> Vec<i32> {
        children_of(self.pid())
    }

    /// Sends `signal` to the server process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the PID of our own child, which is not reaped before drop.
        let r = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(r, 0, "kill({}, {signal})", self.pid());
    }

    /// Waits up to `timeout` for the process to exit; returns its status, or `None` if it is
    /// still running. Once it exited, also waits (boundedly) for its output to be drained.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = wait_child(&mut self.child, timeout);
            if self.exited.is_some() {
                self.exited_at = Some(Instant::now());
                self.stdout.wait_closed(PATIENCE);
                self.stderr.wait_closed(PATIENCE);
            }
        }
        self.exited
    }

    /// Waits for the process to exit and returns its exit code; fails the test if it does not
    /// exit within `timeout` or was killed by a signal.
    #[track_caller]
    pub fn exit_code(&mut self, timeout: Duration) -> i32 {
        match self.wait_exit(timeout) {
            Some(s) => s
                .code()
                .unwrap_or_else(|| panic!("tinyapi ended by a signal: {s:?}")),
            None => panic!(
                "tinyapi still running after {timeout:?}; stderr {:?}",
                self.stderr.text()
            ),
        }
    }

    /// A new client connection.
    #[track_caller]
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// One request on a new connection; returns the first response with the Date checked and
    /// replaced by `<DATE>`.
    #[track_caller]
    pub fn exchange(&self, request: &str) -> String {
        let mut c = self.connect();
        c.send(request.as_bytes());
        let head_only = request.starts_with("HEAD ");
        normalize(&c.response(head_only))
    }

    /// `GET path` on a new connection; returns the normalized response.
    #[track_caller]
    pub fn get(&self, path: &str) -> String {
        self.exchange(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
    }

    /// Asserts that a fresh connection is served normally.
    #[track_caller]
    pub fn assert_serves(&self) {
        assert_eq!(self.get("/alwaysok"), alwaysok_response(""));
    }

    /// Reads `/healthcheck` on a new connection.
    #[track_caller]
    pub fn health(&self) -> Health {
        let r = self.get("/healthcheck");
        Health::from_response(&r)
    }

    /// The number of workers the start-up line announces.
    #[track_caller]
    pub fn workers(&self) -> usize {
        let n = self
            .banner
            .rsplit_once(" (")
            .and_then(|(_, w)| w.split(' ').next());
        n.and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no worker count in start-up line {:?}", self.banner))
    }

    /// Waits until all worker processes are running and returns their PIDs. The start-up line
    /// comes before the workers are forked, so right after it some may not exist yet.
    #[track_caller]
    pub fn wait_workers(&self) -> Vec<i32> {
        let want = self.workers() - 1;
        let deadline = Instant::now() + PATIENCE;
        loop {
            let children = self.children();
            if children.len() == want {
                return children;
            }
            assert!(
                Instant::now() < deadline,
                "expected {want} worker processes, have {children:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until stdout (start-up line, access log, stop line) satisfies `done`; returns it.
    /// Access lines are written by whichever worker served the request, up to 10 ms later and
    /// in no order between workers, so asserting on them must wait for exactly them.
    #[track_caller]
    pub fn wait_stdout(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.stdout.wait_for(PATIENCE, done).unwrap_or_else(|| {
            panic!(
                "stdout never showed {what} within {PATIENCE:?}: {:?}",
                self.stdout.text()
            )
        })
    }

    /// Waits until the server reports `expected` open connections (the asking one included).
    #[track_caller]
    pub fn wait_connections(&self, expected: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let h = self.health();
            if h.connections == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "healthcheck still reports {} connections, expected {expected}",
                h.connections
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if thread::panicking() && self.exited.is_none() {
            // A failing test: say whether the server had died under it.
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                self.stderr.wait_closed(Duration::from_secs(1));
                eprintln!(
                    "tinyapi had exited by itself ({status}); stderr {:?}",
                    self.stderr.text()
                );
            }
        }
        if self.exited.is_none() && self.child.try_wait().ok().flatten().is_none() {
            // Its children first, while their PIDs are certainly still theirs: a child that
            // has not yet asked to die with its parent would otherwise outlive the test.
            for pid in self.children() {
                // SAFETY: kill(2) on a process our child started and has not reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            // SAFETY: kill(2) on our own child's PID; it is reaped just below.
            unsafe { libc::kill(self.pid(), libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("waitpid") {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// The address in `tinyapi 0.1.0 listening on ADDR (N workers)`.
#[track_caller]
pub fn banner_addr(banner: &str) -> SocketAddr {
    let rest = banner
        .strip_prefix(&format!("tinyapi {VERSION} listening on "))
        .unwrap_or_else(|| panic!("unexpected start-up line {banner:?}"));
    let addr = rest.split(' ').next().unwrap();
    addr.parse()
        .unwrap_or_else(|_| panic!("bad address in start-up line {banner:?}"))
}

/// A finished run of the binary (one that is expected to exit by itself).
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `command` to completion, killing it if it takes longer than `timeout`.
#[track_caller]
pub fn run(mut command: Command, timeout: Duration) -> Run {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("cannot start tinyapi");
    let out = Captured::drain(child.stdout.take().unwrap());
    let err = Captured::drain(child.stderr.take().unwrap());
    let status = wait_child(&mut child, timeout);
    let elapsed = started.elapsed();
    let Some(status) = status else {
        // SAFETY: kill(2) on our own, not yet reaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        panic!(
            "tinyapi did not exit within {timeout:?}; stdout {:?}; stderr {:?}",
            out.text(),
            err.text()
        );
    };
    out.wait_closed(PATIENCE);
    err.wait_closed(PATIENCE);
    Run {
        code: status
            .code()
            .unwrap_or_else(|| panic!("ended by a signal: {status:?}")),
        stdout: out.text(),
        stderr: err.text(),
        elapsed,
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// A client connection that keeps unread bytes between responses (for pipelining).
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, PATIENCE)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        Client::wrap(stream)
    }

    /// Wraps a connected stream, setting its timeouts.
    pub fn wrap(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes all of `bytes` in one call.
    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// Reads more bytes into the buffer; returns how many (0 at end of stream).
    #[track_caller]
    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "no response within {PATIENCE:?}; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            }
            Err(e) => panic!(
                "read failed: {e}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Reads one complete response (head, and a body of `Content-Length` bytes unless
    /// `head_only`) and returns its raw bytes.
    #[track_caller]
    pub fn response(&mut self, head_only: bool) -> Vec<u8> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill() == 0 {
                panic!(
                    "connection closed before a complete response head; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let len = if head_only { 0 } else { content_length(&head) };
        while self.buf.len() < head_end + len {
            if self.fill() == 0 {
                panic!(
                    "connection closed inside a response body; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
        self.buf.drain(..head_end + len).collect()
    }

    /// Reads one response and normalizes its Date.
    #[track_caller]
    pub fn normalized(&mut self, head_only: bool) -> String {
        normalize(&self.response(head_only))
    }

    /// Sends `request` and returns the normalized response.
    #[track_caller]
    pub fn exchange(&mut self, request: &str) -> String {
        self.send(request.as_bytes());
        self.normalized(request.starts_with("HEAD "))
    }

    /// Asserts that the server closes the connection (clean end of stream) with no further
    /// bytes, within `timeout`.
    #[track_caller]
    pub fn expect_closed(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("connection still open after {timeout:?}")
                }
                Err(e) => panic!("expected a clean close, got {e}"),
            }
        }
        assert!(
            self.buf.is_empty(),
            "unexpected bytes before the close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    }

    /// Asserts that nothing arrives and the connection stays open for `quiet`.
    #[track_caller]
    pub fn expect_open(&mut self, quiet: Duration) {
        self.stream.set_read_timeout(Some(quiet)).unwrap();
        let mut chunk = [0u8; 64];
        match self.stream.read(&mut chunk) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(0) => panic!("connection closed by the server"),
            Ok(n) => panic!(
                "unexpected bytes {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) => panic!("connection failed: {e}"),
        }
        self.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    }

    /// Half-closes the sending side.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Index of the first occurrence of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `Content-Length` of a response head (0 when absent).
#[track_caller]
pub fn content_length(head: &str) -> usize {
    head.split("\r\n")
        .filter_map(|l| l.split_once(": "))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().expect("Content-Length is a number"))
        .unwrap_or(0)
}

/// Checks that a response carries exactly one valid, current `Date` header and replaces its
/// value with `<DATE>`.
#[track_caller]
pub fn normalize(response: &[u8]) -> String {
    let text = String::from_utf8(response.to_vec())
        .unwrap_or_else(|_| panic!("response is not UTF-8: {response:?}"));
    let head_end = text.find("\r\n\r\n").expect("complete head");
    let mut found = None;
    let mut out = String::with_capacity(text.len());
    let mut offset = 0;
    for line in text[..head_end].split("\r\n") {
        if let Some(v) = line.strip_prefix("Date: ") {
            assert!(found.is_none(), "two Date headers in {text:?}");
            check_imf_fixdate(v);
            found = Some(v.to_string());
            out.push_str("Date: <DATE>");
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
        offset += line.len() + 2;
    }
    assert!(found.is_some(), "no Date header in {text:?}");
    out.push_str(&text[offset..]);
    out
}

/// Asserts that `v` is an IMF-fixdate (RFC 9110 §5.6.7) naming the right weekday and within a
/// few minutes of this machine's clock.
#[track_caller]
pub fn check_imf_fixdate(v: &str) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // from 1970-01-01
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> u64 {
        assert!(
            b[r.clone()].iter().all(u8::is_ascii_digit),
            "Date {v:?}: expected digits at {r:?}"
        );
        v[r].parse().unwrap()
    };
    assert_eq!(b.len(), 29, "Date {v:?} is not an IMF-fixdate");
    assert!(
        b[3] == b','
            && b[4] == b' '
            && b[7] == b' '
            && b[11] == b' '
            && b[16] == b' '
            && b[19] == b':'
            && b[22] == b':'
            && &v[25..] == " GMT",
        "Date {v:?} is not an IMF-fixdate"
    );
    let (day, year) = (digits(5..7), digits(12..16));
    let (h, m, s) = (digits(17..19), digits(20..22), digits(23..25));
    let month = MONTHS
        .iter()
        .position(|&x| x == &v[8..11])
        .unwrap_or_else(|| panic!("Date {v:?}: bad month")) as u64
        + 1;
    assert!(
        (1..=31).contains(&day) && h < 24 && m < 60 && s < 61,
        "Date {v:?}"
    );
    let days = days_from_civil(year, month, day);
    assert_eq!(
        &v[..3],
        DAYS[(days % 7) as usize],
        "Date {v:?}: wrong weekday"
    );
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        secs.abs_diff(now) <= 300,
        "Date {v:?} is {secs}, the clock says {now}"
    );
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------------------------
// Expected responses

/// A normalized response: status line, the fixed headers in order, `extra` header lines (each
/// ending in CRLF), the blank line and `body` (empty for HEAD).
pub fn response(status: &str, content_type: &str, len: usize, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nServer: tinyapi\r\nDate: <DATE>\r\nContent-Type: {content_type}\r\n\
         Content-Length: {len}\r\n{extra}\r\n{body}"
    )
}

/// `GET /alwaysok` with `extra` header lines.
pub fn alwaysok_response(extra: &str) -> String {
    response(
        "200 OK",
        "application/json",
        ALWAYSOK_BODY.len(),
        extra,
        ALWAYSOK_BODY,
    )
}

/// `GET /` with `extra` header lines.
pub fn index_response(extra: &str) -> String {
    response(
        "200 OK",
        "text/plain; charset=utf-8",
        INDEX_BODY.len(),
        extra,
        INDEX_BODY,
    )
}

/// An error response: `code reason`, the reason as a text body, and `Connection: close`.
pub fn error_response(code: u16, reason: &str) -> String {
    let body = format!("{reason}\n");
    response(
        &format!("{code} {reason}"),
        "text/plain; charset=utf-8",
        body.len(),
        "Connection: close\r\n",
        &body,
    )
}

/// The reason phrase tinyapi sends for `code`.
#[track_caller]
pub fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => panic!("no reason phrase for {code}"),
    }
}

/// The status code of a response.
#[track_caller]
pub fn status_of(response: &str) -> u16 {
    response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

/// The body of `/healthcheck`.
#[derive(Debug)]
pub struct Health {
    pub uptime_seconds: u64,
    pub requests: u64,
    pub connections: u64,
}

impl Health {
    /// Parses a normalized `/healthcheck` response, checking every byte of it.
    #[track_caller]
    pub fn from_response(r: &str) -> Health {
        let (_, body) = r.split_once("\r\n\r\n").expect("complete response");
        let h = Health::from_body(body);
        assert_eq!(
            r,
            response("200 OK", "application/json", body.len(), "", body),
            "healthcheck response"
        );
        h
    }

    /// Parses `{"status":"ok","version":V,"uptime_seconds":N,"requests":N,"connections":N}`:
    /// the exact shape, nothing more or less.
    #[track_caller]
    pub fn from_body(body: &str) -> Health {
        let fail = || -> ! { panic!("unexpected healthcheck body {body:?}") };
        let rest = body
            .strip_prefix(&format!(
                "{{\"status\":\"ok\",\"version\":\"{VERSION}\",\"uptime_seconds\":"
            ))
            .unwrap_or_else(|| fail());
        let mut nums = [0u64; 3];
        let mut rest = rest;
        for (i, sep) in [",\"requests\":", ",\"connections\":", "}"]
            .iter()
            .enumerate()
        {
            let end = rest.find(sep).unwrap_or_else(|| fail());
            let digits = &rest[..end];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                fail();
            }
            nums[i] = digits.parse().unwrap_or_else(|_| fail());
            rest = &rest[end + sep.len()..];
        }
        if !rest.is_empty() {
            fail();
        }
        Health {
            uptime_seconds: nums[0],
            requests: nums[1],
            connections: nums[2],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Process and socket utilities

/// Raises this process's open-file soft limit to its hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit fill and read a plain struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        if r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
        }
        r.rlim_cur as u64
    }
}

/// The child processes of `pid` (all its threads'), from /proc.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Waits until process `pid` has ended (gone, or a zombie nobody reaped); false on timeout.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s[s.rfind(')')? + 2..].chars().next());
        if matches!(state, None | Some('Z') | Some('X')) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A loopback port nothing listens on: bound, then released. Another process could take it
/// in between, which on a test machine is unlikely enough.
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Makes dropping `stream` reset the connection (RST) instead of closing it cleanly.
pub fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger struct of the given size from a valid pointer.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER");
}

/// The TCP port process `pid` listens on, from /proc (for a server whose stdout is closed).
pub fn listening_port(pid: i32, timeout: Duration) -> Option<u16> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(p) = find_listening_port(pid) {
            return Some(p);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn find_listening_port(pid: i32) -> Option<u16> {
    tcp_sockets(pid, &["/proc/net/tcp"])
        .into_iter()
        .find_map(|(state, port)| (state == "0A").then_some(port))
}

/// How many TCP connections (sockets not listening, IPv4 or IPv6) process `pid` holds, from
/// /proc.
pub fn tcp_connections(pid: i32) -> usize {
    tcp_sockets(pid, &["/proc/net/tcp", "/proc/net/tcp6"])
        .iter()
        .filter(|(state, _)| state != "0A")
        .count()
}

/// The (state, local port) of each TCP socket that process `pid` has open, from its
/// descriptors and the kernel's `tables`.
fn tcp_sockets(pid: i32, tables: &[&str]) -> Vec<(String, u16)> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: Vec<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let text: String = tables
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .collect();
    // By inode: the kernel's tables can list a socket twice when they change while being read
    // (thousands of connections opening and closing in a test running alongside).
    let sockets: std::collections::BTreeMap<&str, (String, u16)> = text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1 (HEX_IP:HEX_PORT), st field 3 (0A = LISTEN), inode field 9.
            if f.len() > 9 && inodes.iter().any(|i| i == f[9]) {
                let port = u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()?;
                Some((f[9], (f[3].to_string(), port)))
            } else {
                None
            }
        })
        .collect();
    sockets.into_values().collect()
}

/// The value of `field` in /proc/PID/status (`Seccomp`, `NoNewPrivs`, ...), without the tab.
pub fn proc_status(pid: i32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(":\t")?;
        Some(v.to_string())
    })
}

/// CPU time process `pid` has used (user + system, all its threads), from /proc/PID/stat.
#[track_caller]
pub fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // Fields after the command name, which is in parentheses and may contain spaces: the
    // state is field 3, utime field 14, stime field 15.
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// How many descriptors process `pid` has open, from /proc/PID/fd.
pub fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Where `tool` is on `PATH`, if anywhere.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|f| f.is_file())
}
