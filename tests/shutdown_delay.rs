//! The shutdown delay (`--shutdown-delay`, `TINYAPI_SHUTDOWN_DELAY`): after the first SIGTERM or
//! SIGINT the server keeps accepting and answering, with `/healthcheck` at 503 and every
//! response closing its connection, then drains and exits 0.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// `GET path` on a new connection: the normalized response, or `None` when the connection is
/// refused or fails before a response arrives (the server has stopped accepting).
fn try_get(s: &Server, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&s.addr, PATIENCE).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut r = Vec::new();
    stream.read_to_end(&mut r).ok()?;
    (!r.is_empty()).then(|| normalize(&r))
}

/// The `remaining_seconds` of a draining `/healthcheck` response, checking every other byte.
#[track_caller]
fn draining_health(r: &str) -> u64 {
    let (_, body) = r.split_once("\r\n\r\n").expect("complete response");
    assert_eq!(
        r,
        response(
            "503 Service Unavailable",
            HEALTH_TYPE,
            body.len(),
            "Connection: close\r\n",
            body
        )
    );
    let prefix = format!("{{\"status\":\"draining\",\"version\":\"{VERSION}\",\"uptime_seconds\":");
    let rest = body
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{body:?}"));
    let (_, remaining) = rest
        .split_once(",\"remaining_seconds\":")
        .unwrap_or_else(|| panic!("no remaining_seconds in {body:?}"));
    remaining
        .strip_suffix('}')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{body:?}"))
}

#[test]
fn serves_through_the_delay_with_healthcheck_503_and_closing_answers_then_exits_0() {
    const DELAY: Duration = Duration::from_secs(2);
    let mut s = Server::start(&["--workers", "2", "--shutdown-delay", "2"]);
    s.wait_workers();
    // A pooled keep-alive connection from before the signal.
    let mut pooled = s.connect();
    assert_eq!(pooled.exchange(GET_OK), alwaysok_response(""));

    let signalled = Instant::now();
    s.signal(libc::SIGTERM);
    s.wait_stdout("the delay's first line", |t| {
        t.contains(" shutdown delay began\n")
    });

    // The pooled connection is answered, and told to close.
    assert_eq!(
        pooled.exchange(GET_OK),
        alwaysok_response("Connection: close\r\n")
    );
    pooled.expect_closed(PATIENCE);

    // New connections are accepted and answered (both workers: several connections), each
    // answer closing; readiness probes see 503 with the seconds left.
    let health = draining_health(&s.get("/healthcheck"));
    assert!((1..=2).contains(&health), "remaining_seconds {health}");
    for _ in 0..8 {
        assert_eq!(
            s.get("/alwaysok"),
            alwaysok_response("Connection: close\r\n")
        );
        draining_health(&s.get("/healthcheck"));
    }

    // Keep asking until the server stops answering: the last answer comes near the delay's end.
    let mut last_ok = None;
    while signalled.elapsed() < DELAY + Duration::from_secs(2) {
        match try_get(&s, "/alwaysok") {
            Some(r) => {
                assert_eq!(r, alwaysok_response("Connection: close\r\n"));
                last_ok = Some(signalled.elapsed());
            }
            None => break,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.exit_code(Duration::from_secs(5)), 0);
    let exited = s.exited_at.unwrap() - signalled;
    let last_ok = last_ok.expect("no answer during the delay");
    eprintln!("SIGTERM -> last 200 after {last_ok:?} -> exit after {exited:?}");
    assert!(
        last_ok >= DELAY - Duration::from_millis(300),
        "last answer {last_ok:?} after the signal, delay {DELAY:?}"
    );
    assert!(
        exited >= DELAY && exited <= DELAY + Duration::from_secs(1),
        "exit {exited:?} after the signal, delay {DELAY:?}"
    );

    let out = s.stdout.text();
    let began = out
        .lines()
        .find_map(|l| l.strip_suffix(" shutdown delay began"))
        .unwrap_or_else(|| panic!("{out:?}"));
    let ended = out
        .lines()
        .find_map(|l| l.strip_suffix(" shutdown delay ended"))
        .unwrap_or_else(|| panic!("{out:?}"));
    check_rfc3339_utc(began);
    check_rfc3339_utc(ended);
    assert!(began < ended, "{out:?}");
    assert!(
        out.ends_with(&format!(
            "tinyapi stopped; the shutdown delay ran from {began} to {ended}\n"
        )),
        "{out:?}"
    );
    // Requests during the delay are in the access log with the 503s.
    assert!(
        out.contains("\"GET /healthcheck HTTP/1.1\" 503 "),
        "{out:?}"
    );
    assert_eq!(s.stderr.text(), quiet_stderr());
}

#[test]
fn a_second_signal_skips_the_rest_of_the_delay() {
    for second in [libc::SIGTERM, libc::SIGINT] {
        let mut s = Server::start(&["--workers", "2", "--shutdown-delay", "60"]);
        let workers = s.wait_workers();
        s.signal(libc::SIGTERM);
        s.wait_stdout("the delay's first line", |t| {
            t.contains(" shutdown delay began\n")
        });
        draining_health(&s.get("/healthcheck"));
        let sent = Instant::now();
        s.signal(second);
        assert_eq!(s.exit_code(Duration::from_secs(5)), 0);
        let took = s.exited_at.unwrap() - sent;
        assert!(
            took <= Duration::from_secs(1),
            "took {took:?} after the second signal"
        );
        let out = s.stdout.text();
        assert!(out.contains(" shutdown delay ended\n"), "{out:?}");
        assert!(out.contains("tinyapi stopped; the shutdown delay ran from "));
        for pid in workers {
            assert!(wait_gone(pid, PATIENCE), "worker {pid} outlived the server");
        }
    }
}

#[test]
fn delay_from_the_environment_and_its_bounds() {
    let mut c = tinyapi();
    c.args(["--listen", "127.0.0.1:0", "--workers", "1"])
        .env("TINYAPI_SHUTDOWN_DELAY", "600");
    let mut s = Server::spawn(c);
    s.signal(libc::SIGTERM);
    s.wait_stdout("the delay's first line", |t| {
        t.contains(" shutdown delay began\n")
    });
    let remaining = draining_health(&s.get("/healthcheck"));
    assert!(
        (599..=600).contains(&remaining),
        "remaining_seconds {remaining}"
    );
    s.signal(libc::SIGTERM);
    assert_eq!(s.exit_code(Duration::from_secs(5)), 0);

    for (args, env) in [
        (&["--shutdown-delay", "601"][..], None),
        (&["--shutdown-delay=-1"][..], None),
        (&[][..], Some("ten")),
    ] {
        let mut c = tinyapi();
        c.args(args);
        if let Some(v) = env {
            c.env("TINYAPI_SHUTDOWN_DELAY", v);
        }
        let r = run(c, PATIENCE);
        assert_eq!(r.code, 2, "{args:?} {env:?}");
        let source = if env.is_some() {
            "TINYAPI_SHUTDOWN_DELAY"
        } else {
            "--shutdown-delay"
        };
        assert!(
            r.stderr.starts_with("tinyapi: invalid value '")
                && r.stderr.ends_with(&format!(
                    "' for {source}: expected seconds, from 0 to 600\n"
                )),
            "{:?}",
            r.stderr
        );
    }
}
