//! A running server: starting it, its captured output, signals and exit; and one-shot runs of
//! the binary that are expected to exit by themselves.

use super::*;
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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

    /// For a server of one worker started with `--max-connections 2`: while two clients are
    /// in the middle of a request (neither idle) a third gets 503 and is closed, and the two
    /// are unaffected; once both are idle, a new client closes the one idle longest (the
    /// first) and is served. The listener defers accepting until a client sends
    /// (TCP_DEFER_ACCEPT): each client sends first.
    #[track_caller]
    pub fn assert_cap_of_two(&self) {
        let mut a = self.connect();
        a.send(b"GET /alwaysok HTTP/1.1\r\n");
        let mut b = self.connect();
        b.send(b"GET /alwaysok HTTP/1.1\r\n");
        let mut c = self.connect();
        c.send(GET_OK.as_bytes());
        assert_eq!(
            c.normalized(false),
            error_response(503, "Service Unavailable")
        );
        c.expect_closed(PATIENCE);
        for x in [&mut a, &mut b] {
            x.send(b"Host: test\r\n\r\n");
            assert_eq!(x.normalized(false), alwaysok_response(""));
        }
        let mut c = self.connect();
        c.send(GET_OK.as_bytes());
        assert_eq!(c.normalized(false), alwaysok_response(""));
        a.expect_closed(PATIENCE);
        assert_eq!(b.exchange(GET_OK), alwaysok_response(""));
        assert_eq!(c.exchange(GET_OK), alwaysok_response(""));
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
