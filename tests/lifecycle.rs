//! Start-up, shutdown by signal, workers, timeouts, the connection cap and IPv6.

mod common;

use common::*;
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[test]
fn start_up_line_names_address_and_workers() {
    let s = Server::start(&["--workers", "2"]);
    assert_eq!(
        s.banner,
        format!(
            "tinyapi {VERSION} listening on 127.0.0.1:{} (2 workers)",
            s.addr.port()
        )
    );
    assert_ne!(s.addr.port(), 0, "port 0 is replaced by the bound port");
    let s1 = Server::start(&["--workers", "1"]);
    assert_eq!(
        s1.banner,
        format!(
            "tinyapi {VERSION} listening on 127.0.0.1:{} (1 worker)",
            s1.addr.port()
        )
    );
    // Only the one line until requests arrive.
    assert_eq!(s1.stdout.text(), format!("{}\n", s1.banner));
}

#[track_caller]
fn stops_cleanly_on(signal: i32) {
    let mut s = Server::start(&[]);
    // An idle keep-alive connection: one request answered, then nothing.
    let mut idle = s.connect();
    assert_eq!(idle.exchange(GET_OK), alwaysok_response(""));
    let workers = s.wait_workers();
    let sent = Instant::now();
    s.signal(signal);
    let status = s.wait_exit(Duration::from_secs(5));
    let took = s.exited_at.map_or(sent.elapsed(), |t| t - sent);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit status {status:?}"
    );
    assert!(took <= Duration::from_secs(1), "took {took:?} to stop");
    idle.expect_closed(PATIENCE);
    let out = s.stdout.text();
    assert!(out.ends_with("tinyapi stopped\n"), "stdout {out:?}");
    assert_eq!(s.stderr.text(), quiet_stderr());
    for pid in workers {
        assert!(wait_gone(pid, PATIENCE), "worker {pid} outlived the server");
    }
}

#[test]
fn sigterm_with_an_idle_keep_alive_connection_exits_0_within_1s() {
    stops_cleanly_on(libc::SIGTERM);
}

#[test]
fn sigint_with_an_idle_keep_alive_connection_exits_0_within_1s() {
    stops_cleanly_on(libc::SIGINT);
}

#[test]
fn sigterm_with_no_connections_exits_0() {
    let mut s = Server::start(&["--quiet"]);
    s.signal(libc::SIGTERM);
    assert_eq!(s.exit_code(Duration::from_secs(5)), 0);
    assert_eq!(s.stdout.text(), format!("{}\ntinyapi stopped\n", s.banner));
}

#[test]
fn sigterm_does_not_wait_for_a_half_sent_request() {
    let mut s = Server::start(&[]);
    let mut partial = s.connect();
    partial.send(b"GET /alwaysok HTTP/1.1\r\nHo");
    // Make sure the server has taken the connection before the signal.
    s.wait_connections(2, PATIENCE);
    let sent = Instant::now();
    s.signal(libc::SIGTERM);
    assert_eq!(s.exit_code(Duration::from_secs(5)), 0);
    // Until the exit, not until exit_code returned (it also waits for the output to drain).
    let took = s.exited_at.unwrap() - sent;
    // Generous bound: far below the 10 s header timeout it would otherwise wait for.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut partial.stream, &mut rest);
    assert!(s.stdout.text().ends_with("tinyapi stopped\n"));
}

#[test]
fn both_worker_counts_serve_and_healthcheck_counts_across_workers() {
    for workers in ["1", "2"] {
        let s = Server::start(&["--workers", workers]);
        const N: u64 = 40;
        for _ in 0..N {
            s.assert_serves();
        }
        let h = s.health();
        assert!(h.requests >= N, "workers {workers}: {h:?}");
        // Closed connections leave the count once the server has seen them go.
        s.wait_connections(1, PATIENCE);
    }
}

#[test]
fn workers_do_not_outlive_a_killed_server() {
    // SIGKILL gives the server no chance to stop its workers: they must notice by themselves.
    let mut s = Server::start(&["--workers", "3"]);
    for _ in 0..6 {
        s.assert_serves();
    }
    let workers = s.wait_workers();
    s.signal(libc::SIGKILL);
    assert!(s.wait_exit(PATIENCE).is_some());
    for pid in workers {
        assert!(
            wait_gone(pid, PATIENCE),
            "worker {pid} outlived the killed server"
        );
    }
}

#[test]
fn workers_from_the_environment() {
    let mut c = tinyapi();
    c.env("TINYAPI_WORKERS", "3")
        .args(["--listen", "127.0.0.1:0"]);
    let s = Server::spawn(c);
    assert!(s.banner.ends_with("(3 workers)"), "{}", s.banner);
    s.assert_serves();
}

#[test]
fn partial_head_gets_408_after_the_header_timeout() {
    let s = Server::start(&["--header-timeout", "1"]);
    let mut c = s.connect();
    c.send(b"GET /alwaysok HTTP/1.1\r\nHost: te");
    let r = c.normalized(false);
    assert_eq!(r, error_response(408, "Request Timeout"));
    c.expect_closed(Duration::from_secs(5));
    s.assert_serves();
}

#[test]
fn silent_connection_is_closed_after_the_header_timeout() {
    let s = Server::start(&["--header-timeout", "1"]);
    let mut c = s.connect();
    c.expect_closed(Duration::from_secs(5));
}

#[test]
fn idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = Server::start(&["--idle-timeout", "1"]);
    let mut c = s.connect();
    assert_eq!(c.exchange(GET_OK), alwaysok_response(""));
    c.expect_closed(Duration::from_secs(5));
    s.wait_connections(1, PATIENCE);
}

#[test]
fn active_keep_alive_connection_outlives_the_idle_timeout() {
    // Requests keep arriving more often than the idle timeout: the deadline moves with them.
    // Deadlines are whole seconds checked once a second: 3 s leaves over 2 s between requests.
    let s = Server::start(&["--idle-timeout", "3", "--header-timeout", "3"]);
    let mut c = s.connect();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(4500) {
        assert_eq!(c.exchange(GET_OK), alwaysok_response(""));
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn connections_over_the_cap_get_503_unless_an_idle_one_makes_room() {
    // One worker: which connection it holds decides the answer.
    let s = Server::start(&["--max-connections", "2", "--workers", "1"]);
    s.assert_cap_of_two();
}

#[test]
fn ipv6_loopback() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: ::1 is not bindable on this machine");
        return;
    }
    let s = Server::start(&["--listen", "[::1]:0"]);
    assert!(s.addr.is_ipv6(), "{}", s.banner);
    let prefix = format!("tinyapi {VERSION} listening on [::1]:{} (", s.addr.port());
    assert!(
        s.banner.starts_with(&prefix) && s.banner.ends_with(')'),
        "{:?}",
        s.banner
    );
    let mut c = s.connect();
    let port = c.stream.local_addr().unwrap().port();
    assert_eq!(c.exchange(GET_OK), alwaysok_response(""));
    let line = s
        .stdout
        .wait_for(PATIENCE, |t| t.contains("\"GET /alwaysok HTTP/1.1\""))
        .expect("access log line");
    assert!(
        line.contains(&format!(" [::1]:{port} \"GET /alwaysok HTTP/1.1\" 200 18 ")),
        "{line:?}"
    );
    // The probe speaks IPv6 too.
    let mut probe = tinyapi();
    probe.args(["--probe", "--listen", &s.addr.to_string()]);
    let r = run(probe, PATIENCE);
    assert_eq!(r.code, 0, "stderr {:?}", r.stderr);
}
