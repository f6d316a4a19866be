//! The access log on stdout, turning it off, and a stdout that nobody reads or that is closed.

mod common;

use common::*;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

/// Splits an access line into (time, peer, request line, status, bytes, duration), checking
/// the fixed punctuation and the duration's `N.NNNms` shape.
#[track_caller]
fn parse_line(line: &str) -> (String, String, String, u16, usize) {
    let bad = || -> ! { panic!("malformed access line {line:?}") };
    let (time, rest) = line.split_once(' ').unwrap_or_else(|| bad());
    let (peer, rest) = rest.split_once(" \"").unwrap_or_else(|| bad());
    let (request, rest) = rest.rsplit_once("\" ").unwrap_or_else(|| bad());
    let f: Vec<&str> = rest.split(' ').collect();
    if f.len() != 3 {
        bad();
    }
    let ms = f[2].strip_suffix("ms").unwrap_or_else(|| bad());
    let (whole, frac) = ms.split_once('.').unwrap_or_else(|| bad());
    if whole.is_empty()
        || frac.len() != 3
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        bad();
    }
    check_rfc3339_utc(time);
    (
        time.to_string(),
        peer.to_string(),
        request.to_string(),
        f[0].parse().unwrap_or_else(|_| bad()),
        f[1].parse().unwrap_or_else(|_| bad()),
    )
}

/// The access lines on stdout (everything after the start-up line).
fn access_lines(out: &str) -> Vec<String> {
    out.lines()
        .skip(1)
        .filter(|l| *l != "tinyapi stopped")
        .map(str::to_string)
        .collect()
}

#[test]
fn access_log_line_format() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let port = c.stream.local_addr().unwrap().port();
    assert_eq!(c.exchange(GET_OK), alwaysok_response(""));
    let out = s
        .stdout
        .wait_for(PATIENCE, |t| t.contains("\"GET /alwaysok HTTP/1.1\""))
        .expect("an access line");
    let lines = access_lines(&out);
    assert_eq!(lines.len(), 1, "{out:?}");
    let (_, peer, request, status, bytes) = parse_line(&lines[0]);
    assert_eq!(peer, format!("127.0.0.1:{port}"));
    assert_eq!(request, "GET /alwaysok HTTP/1.1");
    assert_eq!((status, bytes), (200, 18));
}

#[test]
fn access_log_covers_head_errors_and_http10() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.exchange("HEAD / HTTP/1.1\r\nHost: test\r\n\r\n");
    c.exchange("GET /nope?a=b HTTP/1.1\r\nHost: test\r\n\r\n");
    c.exchange("POST /alwaysok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    c.exchange("GET /alwaysok HTTP/1.2\r\nHost: test\r\n\r\n");
    c.send(b"NONSENSE\r\n\r\n");
    c.normalized(false);
    // The next lines may come from another worker: each only after the ones before.
    s.stdout
        .wait_for(PATIENCE, |t| access_lines(t).len() >= 5)
        .expect("five access lines");
    // A target the grammar refuses is logged as it came, escaped (`"` is not in a URI).
    for (n, req) in [
        (6, &b"GET /nope?a=\"b\" HTTP/1.1\r\nHost: test\r\n\r\n"[..]),
        (7, b"GET /alwaysok HTTP/2.0\r\nHost: test\r\n\r\n"),
    ] {
        let mut c = s.connect();
        c.send(req);
        c.normalized(false);
        s.stdout
            .wait_for(PATIENCE, |t| access_lines(t).len() >= n)
            .expect("another access line");
    }
    let out = s.stdout.text();
    let got: Vec<(String, u16, usize)> = access_lines(&out)
        .iter()
        .map(|l| {
            let (_, _, req, st, n) = parse_line(l);
            (req, st, n)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("HEAD / HTTP/1.1".to_string(), 200, 0),
            ("GET /nope?a=b HTTP/1.1".to_string(), 404, 10),
            ("POST /alwaysok HTTP/1.0".to_string(), 405, 19),
            // The version as received, though answered as HTTP/1.1.
            ("GET /alwaysok HTTP/1.2".to_string(), 200, 18),
            ("-".to_string(), 400, 12),
            ("GET /nope?a=\\x22b\\x22 HTTP/1.1".to_string(), 400, 12),
            ("GET /alwaysok HTTP/2.0".to_string(), 505, 27),
        ]
    );
}

#[test]
fn access_log_keeps_the_version_as_received_and_shows_an_unreadable_line_as_a_dash() {
    let s = Server::start(&["--workers", "1"]);
    // A head split after its request line: the version logged is the one that came.
    let mut c = s.connect();
    c.send(b"GET /alwaysok HTTP/1.5\r\n");
    std::thread::sleep(std::time::Duration::from_millis(200));
    c.send(b"Host: test\r\n\r\n");
    assert_eq!(c.normalized(false), alwaysok_response(""));
    // A request line that cannot be read (a DEL in the target; a version httparse refuses).
    for line in ["GET /a\x7f HTTP/1.1", "GET / HTTP/1.x"] {
        let mut c = s.connect();
        c.send(format!("{line}\r\nHost: test\r\n\r\n").as_bytes());
        assert_eq!(status_of(&c.normalized(false)), 400);
    }
    let out = s
        .stdout
        .wait_for(PATIENCE, |t| access_lines(t).len() >= 3)
        .expect("three access lines");
    let got: Vec<(String, u16)> = access_lines(&out)
        .iter()
        .map(|l| {
            let (_, _, req, st, _) = parse_line(l);
            (req, st)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("GET /alwaysok HTTP/1.5".to_string(), 200),
            ("-".to_string(), 400),
            ("-".to_string(), 400),
        ]
    );
}

#[track_caller]
fn no_access_lines(mut s: Server) {
    for _ in 0..5 {
        s.assert_serves();
    }
    s.get("/nope");
    s.signal(libc::SIGTERM);
    assert_eq!(s.exit_code(PATIENCE), 0);
    assert_eq!(
        s.stdout.text(),
        format!("{}\ntinyapi stopped\n", s.banner),
        "only the start and stop lines"
    );
}

#[test]
fn quiet_writes_no_access_lines() {
    no_access_lines(Server::start(&["--quiet"]));
}

#[test]
fn log_off_variable_writes_no_access_lines() {
    let mut c = tinyapi();
    c.env("TINYAPI_LOG", "off")
        .args(["--listen", "127.0.0.1:0"]);
    no_access_lines(Server::spawn(c));
}

/// A pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors, which we then own.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    }
}

/// Sends `n` requests on one connection in pipelined batches and checks every answer.
#[track_caller]
fn make_log_lines(s: &Server, n: usize) {
    let mut c = s.connect();
    let batch = GET_OK.repeat(50);
    for _ in 0..n / 50 {
        c.send(batch.as_bytes());
        for _ in 0..50 {
            assert_eq!(c.normalized(false), alwaysok_response(""));
        }
    }
}

#[test]
fn keeps_serving_when_nobody_reads_stdout() {
    let (read_end, write_end) = pipe();
    let mut c = tinyapi();
    c.args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(c); // the command holds a copy of the write end
             // Read only the start-up line, then never read again.
    let mut banner = Vec::new();
    let mut byte = [0u8; 1];
    let mut reader = std::fs::File::from(read_end);
    while banner.last() != Some(&b'\n') && banner.len() < 200 {
        match std::io::Read::read(&mut reader, &mut byte) {
            Ok(1) => banner.push(byte[0]),
            _ => break,
        }
    }
    let stderr = Captured::drain(child.stderr.take().unwrap());
    let mut s =
        Server::attach_with_banner(child, String::from_utf8_lossy(&banner).trim_end(), stderr);
    // About 80 bytes a line: 2,000 lines are well over the 64 KiB a pipe holds.
    make_log_lines(&s, 2000);
    s.assert_serves();
    let h = s.health();
    assert!(h.requests >= 2001, "{h:?}");
    // Stopping does not block on the full pipe either.
    s.signal(libc::SIGTERM);
    assert_eq!(s.exit_code(PATIENCE), 0);
    assert_eq!(s.stderr.text(), quiet_stderr());
    drop(reader);
}

#[test]
fn keeps_serving_when_stdout_is_closed() {
    let (read_end, write_end) = pipe();
    drop(read_end); // every write to stdout fails with EPIPE (and raises SIGPIPE)
    let mut c = tinyapi();
    c.args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(c);
    let stderr = Captured::drain(child.stderr.take().unwrap());
    let pid = child.id() as i32;
    let Some(port) = listening_port(pid, PATIENCE) else {
        let status = wait_child(&mut child, std::time::Duration::from_secs(1));
        // SAFETY: kill(2) on our own child before reaping it.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = child.wait();
        panic!(
            "tinyapi never listened with stdout closed (exit {status:?}, stderr {:?})",
            stderr.text()
        );
    };
    let banner = format!("tinyapi {VERSION} listening on 127.0.0.1:{port} (? workers)");
    let mut s = Server::attach_with_banner(child, &banner, stderr);
    make_log_lines(&s, 500);
    s.assert_serves();
    assert!(s.health().requests >= 501);
    // Still a clean stop.
    s.signal(libc::SIGTERM);
    assert_eq!(s.exit_code(PATIENCE), 0);
}
