//! Hostile clients: request smuggling and protocol abuse, slow heads, running the server out of
//! descriptors, and ten thousand connections at once. Whatever one client does, it gets an
//! error and a closed connection, and the next client is served.
//!
//! The refusals in tests/protocol.rs (CL+TE, duplicate and non-numeric Content-Length,
//! obs-fold, bare LF, NUL, HTTP/0.9, HTTP/1.2 and 2.0, oversized heads) are not repeated here;
//! these are the variants around them.

mod common;

use common::*;
use std::io::{ErrorKind, Read};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// [`refused`] for each request, all on one server, each sent twice: alone, and with a valid
/// request pipelined behind it, which must never be answered.
#[track_caller]
fn all_refused(requests: &[&[u8]]) {
    let s = Server::start(&["--quiet"]);
    for r in requests {
        refused(&s, r, |c| (400..600).contains(&c));
        // The same bytes with a valid request behind them: still one error, then the close.
        let mut smuggled = r.to_vec();
        smuggled.extend_from_slice(GET_OK.as_bytes());
        refused(&s, &smuggled, |c| (400..600).contains(&c));
    }
}

// ---------------------------------------------------------------------------------------------
// Smuggling and framing

#[test]
fn framing_variants_are_refused() {
    all_refused(&[
        // Transfer-Encoding before Content-Length, and on HTTP/1.0.
        b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.0\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        // Two Transfer-Encoding lines; an obfuscated one; one that is not chunked.
        b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: xchunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding:\r\n\r\n",
        // White space between a field name and the colon (RFC 9112 section 5.1).
        b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length : 0\r\n\r\n",
        // Content-Length as a list, signed, hexadecimal, overflowing, empty.
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 0, 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5, 5\r\n\r\nhello",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: +0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 0x0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 18446744073709551616\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: \r\n\r\n",
        // A second Content-Length that differs only in case.
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n",
    ]);
}

#[test]
fn line_ending_abuse_is_refused() {
    all_refused(&[
        // Bare CR: ending the request line, inside a value, before the line's CRLF, as the
        // blank line.
        b"GET / HTTP/1.1\rHost: test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX-A: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX-A: a\r\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\n\r\r\n",
        // Bare LF only after the request line, and only as the blank line.
        b"GET / HTTP/1.1\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\n\n",
        // Obs-fold with a tab, and a first header line that starts with white space.
        b"GET / HTTP/1.1\r\nHost: test\r\nX-A: a\r\n\tb\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: test\r\n\r\n",
        b"GET / HTTP/1.1\r\n\tX-A: a\r\nHost: test\r\n\r\n",
    ]);
}

#[test]
fn control_bytes_in_names_values_and_the_request_line_are_refused() {
    all_refused(&[
        b"GET / HTTP/1.1\r\nHost: test\r\nX\x00A: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX\x01A: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX\x7fA: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX\tA: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX-A: a\x01b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX-A: a\x1bb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX-A: a\x7fb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nX-A: \x00\r\n\r\n",
        b"GET /\x1b HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\nHost: test\r\n\r\n",
        b"G\x00T / HTTP/1.1\r\nHost: test\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\nHost: test\r\n\r\n",
        b"\x00\x00\x00\x00\r\n\r\n",
        b"GET\t/ HTTP/1.1\r\nHost: test\r\n\r\n",
        b" GET / HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\n: empty-name\r\n\r\n",
    ]);
}

#[test]
fn absurdly_long_parts_are_refused() {
    let method = format!("{} / HTTP/1.1\r\nHost: test\r\n\r\n", "A".repeat(10_000));
    let absolute = format!(
        "GET http://test/{} HTTP/1.1\r\nHost: test\r\n\r\n",
        "p".repeat(10_000)
    );
    let name = format!(
        "GET / HTTP/1.1\r\nHost: test\r\n{}: v\r\n\r\n",
        "N".repeat(9_000)
    );
    let host = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", "h".repeat(9_000));
    let endless = format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX-A: {}",
        "v".repeat(64 * 1024)
    );
    all_refused(&[
        method.as_bytes(),
        absolute.as_bytes(),
        name.as_bytes(),
        host.as_bytes(),
        endless.as_bytes(),
    ]);
}

#[test]
fn invalid_versions_are_refused() {
    all_refused(&[
        b"GET / HTTPS/1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1x\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.10\r\nHost: test\r\n\r\n",
        b"GET / http/1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/01.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/ 1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: test\r\n\r\n",
        b"GET / HTTP/0.9\r\nHost: test\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: test\r\n\r\n",
    ]);
}

#[test]
fn requests_smuggled_behind_a_refused_one_are_never_answered() {
    let s = Server::start(&["--quiet"]);
    // Each hides a complete second request where a lenient parser would look for a body or
    // the next head; only the refusal may come back.
    let hidden = "GET /healthcheck HTTP/1.1\r\nHost: test\r\n\r\n";
    let cases = [
        // CL.TE: a front end honouring Content-Length would forward all of it as one request.
        format!(
            "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}",
            5 + hidden.len()
        ),
        // TE.CL: a back end honouring Content-Length: 4 would see the rest as a new request.
        format!(
            "POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n",
            hidden.len()
        ),
        // CL.CL: the first or the second length decides where the next request starts.
        format!(
            "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{hidden}",
            hidden.len()
        ),
        // A body on GET that is itself a request.
        format!(
            "GET / HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{hidden}",
            hidden.len()
        ),
        // Bare LF: a lenient parser would answer this head and then the one behind it.
        format!("GET / HTTP/1.1\nHost: test\n\n{hidden}"),
        // A fold whose continuation is a request line, and another request after the head.
        format!("GET / HTTP/1.1\r\nHost: test\r\nX-A: a\r\n {hidden}{hidden}"),
    ];
    for case in &cases {
        let mut c = s.connect();
        c.send(case.as_bytes());
        let r = c.normalized(false);
        let code = status_of(&r);
        assert!((400..600).contains(&code), "{case:?}: {r:?}");
        // Nothing more, however long we wait for it: the hidden request is not answered.
        c.expect_closed(PATIENCE);
        s.assert_serves();
    }
    // Counted: each refusal, each assert_serves request and this one; no hidden request.
    let h = s.health();
    assert_eq!(h.requests, 2 * cases.len() as u64 + 1, "{h:?}");
}

#[test]
fn a_head_sent_one_byte_at_a_time_still_times_out() {
    // A slow client cannot keep a connection by trickling: the header timeout counts from the
    // first byte of the head, not the last.
    let s = Server::start(&["--quiet", "--header-timeout", "1"]);
    let mut c = s.connect();
    let started = Instant::now();
    let head = b"GET /alwaysok HTTP/1.1\r\nX-Slow: ";
    let mut sent = 0;
    c.stream
        .set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut answered_at = None;
    let mut closed = false;
    // One byte every 150 ms (a value byte forever once the head's start is out) until the
    // answer comes; then only read, until the close.
    while started.elapsed() < Duration::from_secs(6) {
        if answered_at.is_none() {
            let byte = head.get(sent).copied().unwrap_or(b'v');
            if std::io::Write::write_all(&mut c.stream, &[byte]).is_err() {
                break;
            }
            sent += 1;
        }
        match c.stream.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                got.extend_from_slice(&chunk[..n]);
                answered_at.get_or_insert(started.elapsed());
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let Some(took) = answered_at else {
        panic!("no answer after {sent} bytes in {:?}", started.elapsed());
    };
    assert_eq!(
        normalize(&got),
        error_response(408, "Request Timeout"),
        "after {sent} bytes in {took:?}"
    );
    assert!(closed, "the connection stayed open after the 408");
    // Deadlines are checked once a second: the 408 is due one to two seconds after the start,
    // long before the trickle would end.
    assert!(took < Duration::from_secs(4), "408 only after {took:?}");
    s.assert_serves();
}

// ---------------------------------------------------------------------------------------------
// Running out of descriptors

/// Descriptors the exhausted server may hold.
const FD_LIMIT: u64 = 64;

#[test]
fn running_out_of_descriptors_neither_spins_nor_stops_the_server() {
    let mut c = tinyapi();
    c.args([
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--quiet",
        "--header-timeout",
        "60",
        "--idle-timeout",
        "60",
    ]);
    // SAFETY: setrlimit is async-signal-safe and touches only the child being started.
    unsafe {
        c.pre_exec(|| {
            let l = libc::rlimit {
                rlim_cur: FD_LIMIT,
                rlim_max: FD_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut s = Server::spawn(c);
    let pid = s.pid();

    // More clients than the server has descriptors, each with a request waiting.
    const CLIENTS: usize = 150;
    let mut clients: Vec<Option<Client>> = (0..CLIENTS).map(|_| Some(s.connect())).collect();
    for c in clients.iter_mut().flatten() {
        c.send(GET_OK.as_bytes());
    }
    let deadline = Instant::now() + PATIENCE;
    while open_fds(pid) < FD_LIMIT as usize {
        assert!(
            Instant::now() < deadline,
            "the server never used all its descriptors: {} open",
            open_fds(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The connections it took are answered; the others wait in the listen queue.
    let before = wait_answered(&clients, tcp_connections(pid));
    let served = before.iter().filter(|&&a| a).count();
    assert!(
        (32..CLIENTS).contains(&served),
        "{served} of {CLIENTS} clients answered with {FD_LIMIT} descriptors"
    );

    // Exhausted: accepting must back off, not spin on EMFILE.
    let cpu_before = cpu_time(pid);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let window = t.elapsed();
    let filtered = proc_status(pid, "Seccomp").as_deref() == Some("2");
    let share = (cpu_time(pid) - cpu_before).as_secs_f64() / window.as_secs_f64();
    eprintln!(
        "descriptor exhaustion: {served} of {CLIENTS} clients served; server CPU {:.1}% of one \
         core over {window:?}{}",
        share * 100.0,
        if filtered { ", seccomp filter on" } else { "" }
    );
    assert!(
        share < 0.20,
        "the server used {:.0}% of a core while out of descriptors",
        share * 100.0
    );
    assert!(s.wait_exit(Duration::ZERO).is_none(), "the server died");
    // The back-off works inside the seccomp filter (epoll_ctl is on the allowlist).
    assert!(
        filtered || emulated(),
        "the server is not under the seccomp filter"
    );

    // Closing served clients frees descriptors: the server takes waiting ones again.
    const FREED: usize = 10;
    for (c, _) in clients
        .iter_mut()
        .zip(&before)
        .filter(|(_, a)| **a)
        .take(FREED)
    {
        *c = None;
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let newly = answered(&clients)
            .iter()
            .zip(&before)
            .filter(|(now, was)| **now && !**was)
            .count();
        if newly >= FREED / 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{FREED} descriptors freed, but only {newly} waiting clients were answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(clients);

    // With every client gone, a new one is served within a few seconds.
    let t = Instant::now();
    s.assert_serves();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert!(s.wait_exit(Duration::ZERO).is_none(), "the server died");
}

/// Waits until at least `held` of `clients` (the connections the server holds) have an answer
/// waiting; returns which. Each is answered on its own accept, a moment after it.
#[track_caller]
fn wait_answered(clients: &[Option<Client>], held: usize) -> Vec<bool> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = answered(clients);
        let n = now.iter().filter(|&&a| a).count();
        if n >= held {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the server holds {held} connections but answered only {n}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Which of `clients` have an answer waiting to be read (without reading it).
fn answered(clients: &[Option<Client>]) -> Vec<bool> {
    clients
        .iter()
        .map(|c| {
            let Some(c) = c else { return false };
            c.stream.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 64];
            let has = matches!(c.stream.peek(&mut buf), Ok(n) if n > 0);
            c.stream.set_nonblocking(false).unwrap();
            has
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Ten thousand at once

/// Connections held open at the same time.
const FLOOD: usize = 10_000;

/// Opens `FLOOD` connections to `s`, then sends a request on each, then reads every answer.
#[track_caller]
fn flood(s: &Server) {
    let mut clients: Vec<Client> = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let stream = std::net::TcpStream::connect_timeout(&s.addr, PATIENCE)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        clients.push(Client::wrap(stream));
    }
    for c in clients.iter_mut() {
        c.send(GET_OK.as_bytes());
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.response(false);
        assert!(
            r.starts_with(b"HTTP/1.1 200 OK\r\n") && r.ends_with(ALWAYSOK_BODY.as_bytes()),
            "connection {i}: {:?}",
            String::from_utf8_lossy(&r)
        );
    }
    // All still open, the asking one too.
    let h = s.health();
    assert_eq!(h.connections, FLOOD as u64 + 1, "{h:?}");
}

#[test]
fn ten_thousand_concurrent_connections_are_all_answered() {
    // RLIMIT_NOFILE is per process: this process holds the client ends, the server (which
    // raises its own soft limit to the hard one it inherits) the other ends.
    let need = FLOOD as u64 + 1000;
    let limit = raise_nofile();
    if limit < need {
        eprintln!("skipped: open-file hard limit {limit} is below the {need} needed here and in the server");
        return;
    }
    let budget = if emulated() { 120 } else { 60 };
    for workers in ["1", "2"] {
        let s = Server::start(&["--quiet", "--workers", workers]);
        let t = Instant::now();
        flood(&s);
        let took = t.elapsed();
        eprintln!("{FLOOD} connections, {workers} worker(s): {took:?}");
        assert!(took < Duration::from_secs(budget), "took {took:?}");
    }
}
