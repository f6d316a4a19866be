//! Command line and environment: bad values exit 2, a busy port exits 1, and the built-in
//! probe reports health through its exit status.

mod common;

use common::*;
use std::net::TcpListener;
use std::time::Duration;

/// Runs the binary with `env` and `args`; it must exit by itself.
#[track_caller]
fn run_with(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = tinyapi();
    c.envs(env.iter().copied()).args(args);
    run(c, PATIENCE)
}

/// Asserts exit status 2 with a single stderr line naming `source` and `value`.
#[track_caller]
fn rejected(env: &[(&str, &str)], args: &[&str], source: &str, value: &str) {
    let r = run_with(env, args);
    assert_eq!(
        r.code, 2,
        "env {env:?} args {args:?}: stderr {:?}",
        r.stderr
    );
    assert_eq!(r.stdout, "", "nothing on stdout");
    let line = r.stderr.strip_suffix('\n').unwrap_or(&r.stderr);
    assert!(!line.contains('\n'), "one line on stderr: {:?}", r.stderr);
    assert!(line.starts_with("tinyapi: "), "{line:?}");
    assert!(line.contains(source), "{line:?} does not name {source}");
    assert!(
        line.contains(&format!("'{value}'")),
        "{line:?} does not quote {value:?}"
    );
}

#[test]
fn bad_listen_option_exits_2() {
    rejected(&[], &["--listen", "nope"], "--listen", "nope");
    rejected(
        &[],
        &["--listen=1.2.3.4:99999"],
        "--listen",
        "1.2.3.4:99999",
    );
    rejected(&[], &["--listen", "::1:80"], "--listen", "::1:80");
}

#[test]
fn zero_workers_exits_2() {
    rejected(&[], &["--workers", "0"], "--workers", "0");
    rejected(&[], &["--workers", "two"], "--workers", "two");
    rejected(&[("TINYAPI_WORKERS", "0")], &[], "TINYAPI_WORKERS", "0");
}

#[test]
fn bad_port_variable_exits_2() {
    rejected(&[("PORT", "abc")], &[], "PORT", "abc");
    rejected(&[("PORT", "65536")], &[], "PORT", "65536");
}

#[test]
fn listen_variable_without_port_exits_2() {
    rejected(
        &[("TINYAPI_LISTEN", "1.2.3.4")],
        &[],
        "TINYAPI_LISTEN",
        "1.2.3.4",
    );
}

#[test]
fn other_bad_values_exit_2() {
    rejected(&[], &["--max-connections", "0"], "--max-connections", "0");
    rejected(&[], &["--header-timeout", "0"], "--header-timeout", "0");
    rejected(&[], &["--idle-timeout", "-1"], "--idle-timeout", "-1");
    rejected(&[("TINYAPI_LOG", "maybe")], &[], "TINYAPI_LOG", "maybe");
    rejected(
        &[("TINYAPI_IDLE_TIMEOUT", "soon")],
        &[],
        "TINYAPI_IDLE_TIMEOUT",
        "soon",
    );
}

#[test]
fn unknown_option_exits_2() {
    let r = run_with(&[], &["--frobnicate"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("--frobnicate"), "{:?}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{:?}", r.stderr);
}

#[test]
fn option_without_value_exits_2() {
    let r = run_with(&[], &["--listen"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--listen"), "{:?}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{:?}", r.stderr);
}

#[test]
fn help_and_version_exit_0() {
    let r = run_with(&[], &["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("Usage: tinyapi"), "{:?}", r.stdout);
    assert_eq!(r.stderr, "");
    let r = run_with(&[], &["--version"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with(&format!("tinyapi {VERSION} (")) && r.stdout.ends_with(")\n"),
        "{:?}",
        r.stdout
    );
}

#[test]
fn options_override_the_environment_and_empty_variables_are_unset() {
    let mut c = tinyapi();
    c.env("TINYAPI_LISTEN", "192.0.2.1:9")
        .env("TINYAPI_WORKERS", "")
        .env("PORT", "")
        .env("TINYAPI_LOG", "")
        .env("TINYAPI_HEADER_TIMEOUT", "")
        .args(["--listen", "127.0.0.1:0", "--workers", "1"]);
    let s = Server::spawn(c);
    assert!(s.banner.ends_with("(1 worker)"), "{}", s.banner);
    s.assert_serves();
}

#[test]
fn listen_from_the_environment() {
    let mut c = tinyapi();
    c.env("TINYAPI_LISTEN", "127.0.0.1:0");
    let s = Server::spawn(c);
    assert_eq!(s.addr.ip().to_string(), "127.0.0.1");
    s.assert_serves();
}

#[test]
fn busy_port_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let r = run_with(&[], &["--listen", &addr.to_string()]);
    assert_eq!(r.code, 1, "stderr {:?}", r.stderr);
    assert!(r.stderr.contains(&addr.to_string()), "{:?}", r.stderr);
    assert!(
        r.stderr.contains("address already in use"),
        "{:?}",
        r.stderr
    );
    assert_eq!(r.stdout, "", "no start-up line when nothing is bound");
    drop(taken);
}

#[test]
fn busy_port_from_port_variable_exits_1() {
    // The wildcard address cannot be bound while a loopback listener holds the port.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let r = run_with(&[("PORT", &port.to_string())], &[]);
    assert_eq!(r.code, 1, "stderr {:?}", r.stderr);
    assert!(
        r.stderr.contains(&format!("0.0.0.0:{port}")),
        "{:?}",
        r.stderr
    );
    assert!(
        r.stderr.contains("address already in use"),
        "{:?}",
        r.stderr
    );
    drop(taken);
}

// ---------------------------------------------------------------------------------------------
// Probe

#[test]
fn probe_succeeds_against_a_running_server() {
    let s = Server::start(&[]);
    let addr = s.addr.to_string();
    let r = run_with(&[], &["--probe", "--listen", &addr]);
    assert_eq!(r.code, 0, "stderr {:?}", r.stderr);
    assert_eq!(r.stdout, format!("tinyapi probe: {addr} healthy\n"));
    // The alias, with the address from the environment.
    let r = run_with(&[("TINYAPI_LISTEN", &addr)], &["healthcheck"]);
    assert_eq!(r.code, 0, "stderr {:?}", r.stderr);
    // The probe's request was served and logged like any other.
    s.stdout
        .wait_for(PATIENCE, |t| {
            t.matches("\"GET /healthcheck HTTP/1.1\" 200 ").count() >= 2
        })
        .expect("probe requests in the access log");
}

#[test]
fn probe_uses_the_port_variable_and_a_loopback_address() {
    // With only PORT set the address is the wildcard, which the probe turns into loopback.
    let s = Server::start(&[]);
    let port = s.addr.port().to_string();
    let r = run_with(&[("PORT", &port)], &["--probe"]);
    assert_eq!(r.code, 0, "stderr {:?}", r.stderr);
    assert_eq!(
        r.stdout,
        format!("tinyapi probe: 127.0.0.1:{port} healthy\n")
    );
}

#[test]
fn probe_fails_fast_when_nothing_listens() {
    let port = unused_port();
    let r = run_with(&[], &["--probe", "--listen", &format!("127.0.0.1:{port}")]);
    assert_eq!(r.code, 1);
    assert!(r.elapsed < Duration::from_secs(3), "took {:?}", r.elapsed);
    assert!(
        r.stderr.contains(&format!("127.0.0.1:{port}")),
        "{:?}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
}

#[test]
fn probe_gives_up_on_a_server_that_never_answers() {
    // Connections complete (the kernel's backlog) but nothing is ever read or written.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let r = run_with(&[], &["--probe", "--listen", &addr]);
    assert_eq!(r.code, 1);
    assert!(r.elapsed < Duration::from_secs(4), "took {:?}", r.elapsed);
    assert!(r.stderr.contains("timed out"), "{:?}", r.stderr);
    drop(silent);
}

#[test]
fn probe_fails_on_a_server_that_is_not_healthy() {
    // Anything but a 200 is unhealthy: here a server answering 503 to everything.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap().to_string();
    let t = std::thread::spawn(move || {
        let (mut conn, _) = fake.accept().unwrap();
        conn.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut buf = [0u8; 1024];
        let _ = std::io::Read::read(&mut conn, &mut buf);
        let _ = std::io::Write::write_all(
            &mut conn,
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        );
    });
    let r = run_with(&[], &["--probe", "--listen", &addr]);
    assert_eq!(r.code, 1, "stdout {:?}", r.stdout);
    assert!(r.stderr.contains("503"), "{:?}", r.stderr);
    t.join().unwrap();
}
