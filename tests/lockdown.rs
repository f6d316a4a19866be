//! The locked-down process: once set up, the server and every worker process run with
//! `no_new_privs` under a seccomp-BPF allowlist (src/sys/allowed.rs). Every feature keeps
//! working inside it, `TINYAPI_SECCOMP=off` leaves it out, and a call outside the list ends
//! the process. Where the kernel or emulator has no seccomp the server warns once and serves
//! without it, unless `TINYAPI_SECCOMP=require`.
//!
//! qemu-user does not implement seccomp, so under `TINYAPI_TEST_TARGET=aarch64` the server runs
//! without the filter (and says so), and the tests that need the filter say so and return.

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

macro_rules! require_filter {
    () => {
        if skip_under_emulation("qemu-user does not implement seccomp") {
            return;
        }
    };
}

/// Waits until the server has `workers - 1` worker processes and it and each of them report
/// `Seccomp: 2` (filter mode) and `NoNewPrivs: 1`; returns all their PIDs, the server's first.
#[track_caller]
fn wait_locked(s: &Server, workers: usize) -> Vec<i32> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut pids = vec![s.pid()];
        pids.extend(s.children());
        let state: Vec<(i32, Option<String>, Option<String>)> = pids
            .iter()
            .map(|&p| (p, proc_status(p, "Seccomp"), proc_status(p, "NoNewPrivs")))
            .collect();
        let locked = state
            .iter()
            .all(|(_, f, n)| f.as_deref() == Some("2") && n.as_deref() == Some("1"));
        if pids.len() == workers && locked {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "expected {workers} processes in seccomp filter mode with no_new_privs; \
             (pid, Seccomp, NoNewPrivs): {state:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A server started with `args` whose `workers` processes are all locked down.
#[track_caller]
fn locked(workers: usize, args: &[&str]) -> Server {
    let n = workers.to_string();
    let mut all = vec!["--workers", n.as_str()];
    all.extend_from_slice(args);
    let s = Server::start(&all);
    wait_locked(&s, workers);
    s
}

#[test]
fn the_process_under_test_is_the_selected_build() {
    let s = Server::start(&["--workers", "1"]);
    let exe = std::fs::read_link(format!("/proc/{}/exe", s.pid())).unwrap();
    let want = launcher()[0].canonicalize().unwrap();
    assert_eq!(exe, want, "TINYAPI_TEST_TARGET={:?}", target());
}

#[test]
fn every_process_is_filtered_and_cannot_gain_privileges() {
    require_filter!();
    for workers in [1, 2, 4] {
        let s = locked(workers, &[]);
        for pid in wait_locked(&s, workers) {
            // One filter: nothing stacked before ours, and not installed twice.
            if let Some(n) = proc_status(pid, "Seccomp_filters") {
                assert_eq!(n, "1", "pid {pid} of {workers} workers");
            }
        }
        s.assert_serves();
    }
}

#[test]
fn seccomp_off_installs_no_filter() {
    let mut c = tinyapi();
    c.env("TINYAPI_SECCOMP", "off")
        .args(["--listen", "127.0.0.1:0", "--workers", "3"]);
    let s = Server::spawn(c);
    for _ in 0..6 {
        s.assert_serves();
    }
    let mut pids = vec![s.pid()];
    pids.extend(s.wait_workers());
    for pid in pids {
        assert_eq!(
            proc_status(pid, "Seccomp").as_deref(),
            Some("0"),
            "pid {pid}"
        );
        assert_eq!(
            proc_status(pid, "NoNewPrivs").as_deref(),
            Some("0"),
            "pid {pid}"
        );
    }
}

#[test]
fn invalid_seccomp_values_exit_2_and_empty_means_on() {
    for value in ["bogus", "ON", "Off", "1", "yes", "off "] {
        let mut c = tinyapi();
        c.env("TINYAPI_SECCOMP", value)
            .args(["--listen", "127.0.0.1:0"]);
        let r = run(c, PATIENCE);
        assert_eq!(
            r.code, 2,
            "TINYAPI_SECCOMP={value:?}: stderr {:?}",
            r.stderr
        );
        assert_eq!(r.stdout, "");
        assert_eq!(
            r.stderr,
            format!(
                "tinyapi: invalid value '{value}' for TINYAPI_SECCOMP: expected on, off or require\n"
            )
        );
    }
    require_filter!();
    for value in ["", "on", "require"] {
        let mut c = tinyapi();
        c.env("TINYAPI_SECCOMP", value)
            .args(["--listen", "127.0.0.1:0", "--workers", "2"]);
        let s = Server::spawn(c);
        wait_locked(&s, 2);
        s.assert_serves();
    }
}

#[test]
fn the_start_up_line_comes_after_the_lock_down() {
    require_filter!();
    // The line is printed once the first process is locked down: it is never followed by a
    // failure to install the filter.
    let mut c = tinyapi();
    c.args(["--listen", "127.0.0.1:0", "--workers", "1"]);
    let s = Server::spawn(c);
    assert_eq!(proc_status(s.pid(), "Seccomp").as_deref(), Some("2"));
}

/// A server command where seccomp(2) fails as on a kernel or emulator without it: natively under
/// strace, which makes the call fail with ENOSYS; under emulation as it is (qemu-user has no
/// seccomp). `None` when strace cannot run here.
fn without_seccomp(env: &[(&str, &str)]) -> Option<Command> {
    let mut c = if emulated() {
        tinyapi()
    } else {
        if let Some(why) = strace_unavailable() {
            eprintln!("skipped: {why}");
            return None;
        }
        let mut c = Command::new(find_tool("strace").unwrap());
        c.args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=seccomp"])
            .args(["-e", "inject=seccomp:error=ENOSYS"])
            .args(launcher());
        clean_env(&mut c);
        c
    };
    c.args(["--listen", "127.0.0.1:0", "--workers", "2"])
        .envs(env.iter().copied());
    Some(c)
}

#[test]
fn without_seccomp_support_the_server_warns_once_and_serves() {
    let Some(c) = without_seccomp(&[]) else {
        return;
    };
    let mut s = Server::spawn(c);
    s.assert_serves();
    let server = if emulated() {
        s.pid()
    } else {
        let server = *children_of(s.pid()).first().expect("strace has no child");
        assert_eq!(proc_status(server, "Seccomp").as_deref(), Some("0"));
        server
    };
    // SAFETY: kill(2) on the server process this test started.
    assert_eq!(unsafe { libc::kill(server, libc::SIGTERM) }, 0);
    assert_eq!(s.exit_code(PATIENCE), 0);
    assert_eq!(s.stderr.text(), NO_SECCOMP_WARNING);
}

#[test]
fn seccomp_require_exits_1_where_unsupported() {
    let Some(c) = without_seccomp(&[("TINYAPI_SECCOMP", "require")]) else {
        return;
    };
    let r = run(c, PATIENCE);
    assert_eq!(r.code, 1, "stderr {:?}", r.stderr);
    assert_eq!(r.stdout, "", "no start-up line before a fatal error");
    assert_eq!(
        r.stderr,
        "tinyapi: cannot install the seccomp filter: not supported by the kernel or emulator\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Every feature inside the filter

#[test]
fn requests_access_log_and_probe_work_under_the_filter() {
    require_filter!();
    let s = locked(2, &[]);
    assert_eq!(s.get("/"), index_response(""));
    assert_eq!(s.get("/alwaysok"), alwaysok_response(""));
    assert_eq!(
        s.exchange("HEAD /alwaysok HTTP/1.1\r\nHost: test\r\n\r\n"),
        response("200 OK", "application/json", 18, "", "")
    );
    assert_eq!(
        s.get("/nope"),
        response(
            "404 Not Found",
            "text/plain; charset=utf-8",
            10,
            "",
            "Not Found\n"
        )
    );
    assert_eq!(
        s.exchange("GET / HTTP/1.1\r\n\r\n"),
        error_response(400, "Bad Request")
    );
    let h = s.health();
    assert!(h.requests >= 6, "{h:?}");
    // Pipelined and kept alive.
    let mut c = s.connect();
    c.send(GET_OK.repeat(20).as_bytes());
    for _ in 0..20 {
        assert_eq!(c.normalized(false), alwaysok_response(""));
    }
    let port = c.stream.local_addr().unwrap().port();
    let pipelined = format!(" 127.0.0.1:{port} \"GET /alwaysok HTTP/1.1\" 200 18 ");
    // The 400 may come from the other worker, which flushes its lines on its own schedule.
    s.wait_stdout(
        "20 lines for the pipelined requests and one for the 400",
        |t| t.matches(&pipelined).count() == 20 && t.contains("\"GET / HTTP/1.1\" 400 "),
    );
    let mut probe = tinyapi();
    probe.args(["--probe", "--listen", &s.addr.to_string()]);
    let r = run(probe, PATIENCE);
    assert_eq!(r.code, 0, "probe stderr {:?}", r.stderr);
    // Nothing above made the filter end a process.
    wait_locked(&s, 2);
    assert_eq!(s.stderr.text(), "");
}

#[test]
fn sigterm_under_the_filter_exits_0_within_1s() {
    require_filter!();
    for workers in [1, 2] {
        let mut s = locked(workers, &[]);
        let mut idle = s.connect();
        assert_eq!(idle.exchange(GET_OK), alwaysok_response(""));
        let sent = Instant::now();
        s.signal(libc::SIGTERM);
        let status = s.wait_exit(Duration::from_secs(5));
        let took = s.exited_at.map_or(sent.elapsed(), |t| t - sent);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{workers} workers: {status:?}"
        );
        assert!(
            took <= Duration::from_secs(1),
            "{workers} workers: took {took:?}"
        );
        idle.expect_closed(PATIENCE);
        assert!(s.stdout.text().ends_with("tinyapi stopped\n"));
        assert_eq!(s.stderr.text(), "");
    }
}

#[test]
fn panic_under_the_filter_exits_1() {
    require_filter!();
    for workers in [1, 2] {
        let mut s = locked(workers, &["--quiet"]);
        // Whichever process takes the connection ends; with two workers it may be the child,
        // which the server reaps (wait4) before exiting itself.
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Ok(stream) = std::net::TcpStream::connect(s.addr) {
                let mut c = Client::wrap(stream);
                let _ = std::io::Write::write_all(
                    &mut c.stream,
                    b"GET /panic HTTP/1.1\r\nHost: test\r\n\r\n",
                );
            }
            if let Some(status) = s.wait_exit(Duration::from_millis(100)) {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{workers} workers: still running"
            );
        };
        assert_eq!(status.code(), Some(1), "{workers} workers: {status:?}");
        assert!(
            s.stderr.text().contains("FATAL"),
            "{workers} workers: {:?}",
            s.stderr.text()
        );
        // Killed by the filter would be SIGSYS and no FATAL line.
        assert!(
            !s.stderr.text().contains("seccomp"),
            "{:?}",
            s.stderr.text()
        );
    }
}

#[test]
fn timeouts_under_the_filter() {
    require_filter!();
    let s = locked(2, &["--header-timeout", "1", "--idle-timeout", "1"]);
    let mut partial = s.connect();
    partial.send(b"GET /alwaysok HTTP/1.1\r\nHost: te");
    let mut idle = s.connect();
    assert_eq!(idle.exchange(GET_OK), alwaysok_response(""));
    assert_eq!(
        partial.normalized(false),
        error_response(408, "Request Timeout")
    );
    partial.expect_closed(Duration::from_secs(5));
    idle.expect_closed(Duration::from_secs(5));
    s.assert_serves();
    wait_locked(&s, 2);
}

#[test]
fn connection_cap_under_the_filter() {
    require_filter!();
    let s = locked(1, &["--max-connections", "2"]);
    s.assert_cap_of_two();
    wait_locked(&s, 1);
}

// ---------------------------------------------------------------------------------------------
// The filter itself, seen through strace

/// The system calls the filter allows, by name: the list in src/sys/allowed.rs, from which the
/// server's filter is built, compiled here too (`allowed![SYS_name, ..]`). A name the list
/// gives for one word size only is kept whatever the word size: these tests run on the host,
/// and the binary under test may be a 32-bit one.
fn allowed_calls() -> Vec<String> {
    macro_rules! allowed {
        ($($(#[$m:meta])* $name:ident),* $(,)?) => {
            [$(stringify!($name)),*]
        };
    }
    let names: Vec<String> = include!("../src/sys/allowed.rs")
        .iter()
        .map(|n| n.strip_prefix("SYS_").expect("SYS_name").to_string())
        .collect();
    assert!(names.len() >= 8, "{names:?} from src/sys/allowed.rs");
    names
}

/// Why strace cannot be used here, if it cannot.
fn strace_unavailable() -> Option<String> {
    let Some(strace) = find_tool("strace") else {
        return Some("strace is not installed".into());
    };
    let r = Command::new(strace)
        .args(["-o", "/dev/null", "true"])
        .output();
    match r {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "strace cannot trace here: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("strace does not run: {e}")),
    }
}

macro_rules! require_strace {
    () => {
        require_filter!();
        if let Some(why) = strace_unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// A scratch directory for trace files; removed on drop.
struct TraceDir(PathBuf);

impl TraceDir {
    fn new(tag: &str) -> TraceDir {
        let dir = std::env::temp_dir().join(format!("tinyapi-strace-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        TraceDir(dir)
    }
}

impl Drop for TraceDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server under `strace` with `strace_args`, following its workers.
#[track_caller]
fn traced(strace_args: &[&str], env: &[(&str, &str)], args: &[&str]) -> Server {
    let mut c = Command::new(find_tool("strace").unwrap());
    c.args(["-f", "-qq"]).args(strace_args).args(launcher());
    c.args(["--listen", "127.0.0.1:0"]).args(args);
    clean_env(&mut c);
    c.envs(env.iter().copied());
    Server::spawn(c)
}

/// Sends `signal` to the server that strace started (not to strace).
#[track_caller]
fn signal_traced(s: &Server, signal: i32) {
    let pid = *children_of(s.pid()).first().expect("strace has no child");
    // SAFETY: kill(2) on the process our strace child started; strace reaps it only after
    // it has ended, and we are waiting for that.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Sends `/alwaysok` on new connections until the server ends; returns its exit status.
#[track_caller]
fn hit_until_exit(s: &mut Server) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(s.addr) {
            let _ = std::io::Write::write_all(&mut stream, GET_OK.as_bytes());
        }
        if let Some(status) = s.wait_exit(Duration::from_millis(100)) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server survived the forbidden call"
        );
    }
}

#[test]
fn a_forbidden_call_kills_the_process() {
    require_strace!();
    // strace turns the server's first recvfrom into getpid, a call the allowlist does not
    // hold: the kernel checks the filter after the tracer's change and kills the process.
    let dir = TraceDir::new("forbidden");
    let log = dir.0.join("trace");
    let log = log.to_str().unwrap();
    let inject = "inject=recvfrom:error=ENOSYS:syscall=getpid";
    let trace = [
        "-o",
        log,
        "-e",
        "trace=seccomp,recvfrom,getpid",
        "-e",
        inject,
    ];

    let mut s = traced(&trace, &[], &["--workers", "1"]);
    let status = hit_until_exit(&mut s);
    assert_eq!(status.signal(), Some(libc::SIGSYS), "{status:?}");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("+++ killed by SIGSYS"), "{text}");

    // With two workers, one of them takes the call and dies; the server then exits 1 (or is
    // killed itself, if it took the connection).
    let mut s = traced(&trace, &[], &["--workers", "2"]);
    let status = hit_until_exit(&mut s);
    assert!(
        status.code() == Some(1) || status.signal() == Some(libc::SIGSYS),
        "{status:?}; stderr {:?}",
        s.stderr.text()
    );

    // Without the filter the same call is harmless: the connection fails, the server lives.
    let mut s = traced(&trace, &[("TINYAPI_SECCOMP", "off")], &["--workers", "1"]);
    for _ in 0..3 {
        let mut c = s.connect();
        c.send(GET_OK.as_bytes());
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut c.stream, &mut rest);
        assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    }
    assert!(
        s.wait_exit(Duration::from_millis(200)).is_none(),
        "died without the filter"
    );
    signal_traced(&s, libc::SIGTERM);
    assert_eq!(s.exit_code(PATIENCE), 0);
}

/// The system call names in one process's strace output after its `seccomp(...) = 0` line, or
/// `None` when it never installed the filter.
fn calls_after_lock_down(trace: &str) -> Option<Vec<String>> {
    let mut lines = trace.lines();
    lines.find(|l| l.starts_with("seccomp(SECCOMP_SET_MODE_FILTER") && l.ends_with("= 0"))?;
    Some(
        lines
            .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
            .map(|l| l.trim_start_matches("<... "))
            .map(|l| {
                l.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect(),
    )
}

#[test]
fn after_lock_down_only_allowed_calls_are_made() {
    require_strace!();
    let allowed = allowed_calls();
    let dir = TraceDir::new("allowlist");
    let prefix = dir.0.join("trace");
    let prefix = prefix.to_str().unwrap();
    let mut s = traced(
        &["-ff", "-o", prefix],
        &[],
        &[
            "--workers",
            "2",
            "--max-connections",
            "8",
            "--header-timeout",
            "1",
            "--idle-timeout",
            "1",
        ],
    );
    // Everything the server does: endpoints, errors, pipelining, the log, the cap, both
    // timeouts, clients that vanish, the probe, and a SIGTERM stop.
    let mut partial = s.connect();
    partial.send(b"GET / HTTP/1.1\r\nHo");
    let mut idle = s.connect();
    assert_eq!(idle.exchange(GET_OK), alwaysok_response(""));
    for path in ["/", "/alwaysok", "/healthcheck", "/missing"] {
        s.get(path);
    }
    s.exchange("DELETE / HTTP/1.1\r\nHost: test\r\n\r\n");
    s.exchange("GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nhi");
    s.exchange(&format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(9000)));
    let mut p = s.connect();
    p.send(GET_OK.repeat(50).as_bytes());
    for _ in 0..50 {
        p.normalized(false);
    }
    // Connections are accepted once they send something (TCP_DEFER_ACCEPT).
    let held: Vec<Client> = (0..8)
        .map(|_| {
            let mut c = s.connect();
            c.send(b"G");
            c
        })
        .collect();
    let mut over = s.connect();
    over.send(GET_OK.as_bytes());
    let _ = over.normalized(false);
    drop(held);
    let mut gone = s.connect();
    gone.send(&GET_OK.as_bytes()[..10]);
    set_linger_zero(&gone.stream);
    drop(gone);
    assert_eq!(
        partial.normalized(false),
        error_response(408, "Request Timeout")
    );
    idle.expect_closed(Duration::from_secs(5));
    let mut probe = tinyapi();
    probe.args(["--probe", "--listen", &s.addr.to_string()]);
    assert_eq!(run(probe, PATIENCE).code, 0);
    signal_traced(&s, libc::SIGTERM);
    assert_eq!(s.exit_code(PATIENCE), 0);

    let mut processes = 0;
    let mut seen: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(calls) = calls_after_lock_down(&text) else {
            panic!("{} never installed the filter:\n{text}", name_of(&path));
        };
        processes += 1;
        for call in calls {
            assert!(
                allowed.contains(&call),
                "{}: {call} after lock-down is not in ALLOWED {allowed:?}",
                name_of(&path)
            );
            if !seen.contains(&call) {
                seen.push(call);
            }
        }
    }
    assert_eq!(processes, 2, "one trace per worker process");
    for needed in ["accept4", "recvfrom", "sendto", "epoll_pwait", "write"] {
        assert!(
            seen.iter().any(|c| c == needed),
            "{needed} not traced; saw {seen:?}"
        );
    }
    eprintln!("calls after lock-down: {seen:?} (allowed: {allowed:?})");
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}
