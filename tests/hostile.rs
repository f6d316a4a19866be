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
// Thousands of partial heads

/// Clients holding a partial request head at once: far more than any fixed pool of spare
/// buffers per worker would hold, far fewer than the default connection cap.
const PARTIAL_HEADS: usize = 5_000;

/// The start of a valid request head, without the blank line that would end it.
const PARTIAL_HEAD: &str = "GET /alwaysok HTTP/1.1\r\nHost: test\r\n";

/// Bytes of the buffer each connection slot has for its head (the longest head accepted).
const HEAD_BUFFER: u64 = 8 * 1024;

/// Held by each test that opens thousands of connections: RLIMIT_NOFILE is per process, and
/// this process holds the client ends of every test running at the same time.
static THOUSANDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_head_in_three_writes_is_answered_while_thousands_of_partial_heads_are_held() {
    let _alone = THOUSANDS.lock().unwrap_or_else(|e| e.into_inner());
    // RLIMIT_NOFILE is per process: this process holds the client ends, the server (which
    // raises its own soft limit to the hard one it inherits) the other ends.
    let need = PARTIAL_HEADS as u64 + 1000;
    let limit = raise_nofile();
    if limit < need {
        eprintln!("skipped: open-file hard limit {limit} is below the {need} needed here and in the server");
        return;
    }
    let budget = Duration::from_secs(if emulated() { 180 } else { 60 });
    // Default workers and connection cap. The header timeout is raised only so that no head
    // times out while the last ones are still being opened (slowly, under emulation).
    let s = Server::start(&["--quiet", "--header-timeout", "300"]);
    let workers: Vec<i32> = std::iter::once(s.pid()).chain(s.wait_workers()).collect();
    let rss_before: u64 = workers.iter().map(|&p| rss(p)).sum();

    let t = Instant::now();
    let mut held: Vec<Client> = (0..PARTIAL_HEADS)
        .map(|_| {
            let mut c = s.connect();
            c.send(PARTIAL_HEAD.as_bytes());
            c
        })
        .collect();
    // Each is accepted once its bytes are there (TCP_DEFER_ACCEPT) and read at once.
    s.wait_connections(PARTIAL_HEADS as u64 + 1, budget);
    let filled = t.elapsed();
    let rss_each: Vec<u64> = workers.iter().map(|&p| rss(p)).collect();
    let grown = rss_each.iter().sum::<u64>().saturating_sub(rss_before);
    eprintln!(
        "{PARTIAL_HEADS} partial heads held in {filled:?} by {} worker(s); RSS per worker {:?} \
         KiB, {} KiB more than before",
        workers.len(),
        rss_each.iter().map(|b| b / 1024).collect::<Vec<_>>(),
        grown / 1024
    );

    // A client whose head comes in three writes gets its answer like any other. Each pause
    // lets a part arrive, and be read, on its own (TCP_NODELAY is on).
    let mut c = s.connect();
    let t = Instant::now();
    for (i, part) in ["GET /alwaysok HTTP/1.1\r\n", "Host: test\r\n", "\r\n"]
        .iter()
        .enumerate()
    {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(80));
        }
        c.send(part.as_bytes());
    }
    assert_eq!(c.normalized(false), alwaysok_response(""));
    eprintln!(
        "a head in three writes answered {:?} after its first part",
        t.elapsed()
    );

    // No held client was answered (no 503, no 408) or closed; the heads they sent were kept:
    // ending a few of them gets each its answer.
    let answered: Vec<usize> = (0..PARTIAL_HEADS)
        .filter(|&i| held[i].peek_now().is_some())
        .collect();
    assert!(
        answered.is_empty(),
        "{} clients holding a partial head had an answer or a close, the first {:?}",
        answered.len(),
        &answered[..answered.len().min(10)]
    );
    for (i, c) in held.iter_mut().enumerate().step_by(PARTIAL_HEADS / 10) {
        assert_eq!(c.exchange("\r\n"), alwaysok_response(""), "client {i}");
    }

    // A held head costs at most the pages of its own head buffer, and memory is not touched
    // for connections that never came.
    let most = PARTIAL_HEADS as u64 * HEAD_BUFFER;
    assert!(
        grown <= most,
        "RSS grew by {} KiB with {PARTIAL_HEADS} partial heads held (at most {} KiB)",
        grown / 1024,
        most / 1024
    );
}

// ---------------------------------------------------------------------------------------------
// Running out of descriptors

/// The descriptor limit (`ulimit -n`) of the server in the tests below.
const FD_LIMIT: u64 = 64;

/// Starts one worker whose descriptor limit is [`FD_LIMIT`], with timeouts these tests never
/// reach.
fn start_short_of_descriptors() -> Server {
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
    // SAFETY: setrlimit, close_range and fcntl are async-signal-safe and touch only the child
    // being started.
    unsafe {
        c.pre_exec(|| {
            let l = libc::rlimit {
                rlim_cur: FD_LIMIT,
                rlim_max: FD_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Only stdin, stdout and stderr pass to the server: it counts as its own just the
            // descriptors below those it opens, so one inherited above them (from whatever
            // runs the tests) would take the descriptor it keeps free for refusing.
            let all = libc::syscall(
                libc::SYS_close_range,
                3,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if all != 0 {
                // Before Linux 5.11: those below the limit are the ones that matter.
                for fd in 3..FD_LIMIT as i32 {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                    }
                }
            }
            Ok(())
        });
    }
    Server::spawn(c)
}

#[test]
fn at_the_descriptor_limit_idle_connections_make_room_for_new_ones() {
    let s = start_short_of_descriptors();
    let pid = s.pid();
    // More clients than the server has descriptors, one after another, each kept open and idle
    // after its answer: every one is served, none waits in the listen queue.
    const CLIENTS: usize = 150;
    let mut clients = Vec::with_capacity(CLIENTS);
    let mut most_fds = 0;
    for i in 0..CLIENTS {
        let mut c = s.connect();
        assert_eq!(c.exchange(GET_OK), alwaysok_response(""), "client {i}");
        most_fds = most_fds.max(open_fds(pid));
        clients.push(c);
    }
    assert!(
        most_fds <= FD_LIMIT as usize,
        "the server held {most_fds} descriptors"
    );

    // Each client over the limit closed an idle one, silently (end of stream, nothing before
    // it): the first client went first. Idle deadlines are whole seconds, so among clients
    // idle since the same second the order is not checked.
    let states: Vec<Option<usize>> = clients.iter().map(Client::peek_now).collect();
    assert!(
        states.iter().all(|&s| matches!(s, None | Some(0))),
        "None: open, Some(0): closed, Some(n): n bytes the client never asked for: {states:?}"
    );
    let open = states.iter().filter(|s| s.is_none()).count();
    eprintln!(
        "descriptor limit {FD_LIMIT}: {open} of {CLIENTS} idle clients kept, at most {most_fds} \
         descriptors; by client (o open, - closed): {}",
        states
            .iter()
            .map(|s| if s.is_none() { 'o' } else { '-' })
            .collect::<String>()
    );
    assert!(
        (32..FD_LIMIT as usize).contains(&open),
        "{open} of {CLIENTS} clients kept with {FD_LIMIT} descriptors"
    );
    clients[0].expect_closed(PATIENCE);
    assert_eq!(states[CLIENTS - 1], None, "the last client was closed");
    // Those kept are served again.
    for (i, c) in clients.iter_mut().enumerate() {
        if states[i].is_none() {
            assert_eq!(c.exchange(GET_OK), alwaysok_response(""), "client {i}");
        }
    }
}

#[test]
fn at_the_descriptor_limit_with_nothing_idle_a_new_client_gets_503_at_once() {
    let mut s = start_short_of_descriptors();
    let pid = s.pid();
    let own = open_fds(pid);

    // More clients than the server has room for, each with a partial head: none is idle.
    const CLIENTS: usize = 80;
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|_| {
            let mut c = s.connect();
            c.send(PARTIAL_HEAD.as_bytes());
            c
        })
        .collect();
    // Full once every client is held (quiet, its socket in the server) or refused (answered):
    // a client still in the listen queue is quiet but not held.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let quiet = clients.iter().filter(|c| c.peek_now().is_none()).count();
        // Not tcp_connections: /proc/net/tcp lists every socket of the machine, which under a
        // benchmark alongside takes seconds to read.
        let held = open_fds(pid) - own;
        if quiet == held {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{quiet} clients wait for an answer, the server holds {held}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Those over the limit were answered 503 and closed.
    let (mut refused, held): (Vec<Client>, Vec<Client>) =
        clients.drain(..).partition(|c| c.peek_now().is_some());
    for c in &mut refused {
        assert_eq!(
            c.normalized(false),
            error_response(503, "Service Unavailable")
        );
        c.expect_closed(PATIENCE);
    }
    let fds = open_fds(pid);
    eprintln!(
        "descriptor limit {FD_LIMIT}: {} clients with a partial head held, {} refused; the \
         server has {fds} descriptors open",
        held.len(),
        refused.len()
    );
    assert!(
        !refused.is_empty() && held.len() >= 32,
        "{} held, {} refused",
        held.len(),
        refused.len()
    );
    assert!(fds <= FD_LIMIT as usize, "{fds} descriptors open");

    // Full, and nothing to close: a new client is told so at once and closed, instead of
    // waiting in the listen queue.
    let prompt = Duration::from_secs(if emulated() { 5 } else { 2 });
    let t = Instant::now();
    let mut c = s.connect();
    c.send(GET_OK.as_bytes());
    assert_eq!(
        c.normalized(false),
        error_response(503, "Service Unavailable")
    );
    let took = t.elapsed();
    c.expect_closed(PATIENCE);
    assert!(took < prompt, "503 after {took:?}");
    // The health probe gets the same answer within its own time limit, not a time-out.
    let mut probe = tinyapi();
    probe.args(["--probe", "--listen", &s.addr.to_string()]);
    let r = run(probe, PATIENCE);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (
            1,
            "",
            format!("tinyapi: probe: {} answered HTTP/1.1 503 \n", s.addr).as_str()
        )
    );
    assert!(r.elapsed < prompt, "the probe took {:?}", r.elapsed);

    // Full: refusing must not spin.
    let cpu_before = cpu_time(pid);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let window = t.elapsed();
    let share = (cpu_time(pid) - cpu_before).as_secs_f64() / window.as_secs_f64();
    let filtered = proc_status(pid, "Seccomp").as_deref() == Some("2");
    eprintln!(
        "at the descriptor limit: 503 after {took:?}, probe exit {} after {:?}; server CPU \
         {:.1}% of one core over {window:?}{}",
        r.code,
        r.elapsed,
        share * 100.0,
        if filtered { ", seccomp filter on" } else { "" }
    );
    assert!(
        share < 0.20,
        "the server used {:.0}% of a core while full",
        share * 100.0
    );
    assert!(s.wait_exit(Duration::ZERO).is_none(), "the server died");
    // Refusing works inside the seccomp filter.
    assert!(
        filtered || emulated(),
        "the server is not under the seccomp filter"
    );

    // Once the clients leave, their descriptors are closed and a new client is served.
    drop(held);
    let deadline = Instant::now() + PATIENCE;
    while open_fds(pid) > own {
        assert!(
            Instant::now() < deadline,
            "the server still has {} descriptors open, {own} before the clients came",
            open_fds(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    s.assert_serves();
    s.wait_connections(1, PATIENCE);
    assert!(s.wait_exit(Duration::ZERO).is_none(), "the server died");
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
    let _alone = THOUSANDS.lock().unwrap_or_else(|e| e.into_inner());
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
