//! Request grammar by RFC 9110 and 9112 over real sockets: request targets and their forms,
//! `Host`, `Content-Length` and `Transfer-Encoding` values, methods, versions, overlong request
//! lines and empty lines between requests.

mod common;

use common::*;
use std::io::{ErrorKind, Read};
use std::time::Duration;

/// A request line with this target and `Host: test`.
fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

#[test]
fn a_fragment_in_an_absolute_target_is_400_and_reaches_no_endpoint() {
    let s = Server::start(&["--workers", "1"]);
    for target in [
        "http://x#/alwaysok",
        "http://x#/panic",
        "http://x/panic#frag",
        "/panic#",
    ] {
        refused(&s, &get(target), |c| c == 400);
    }
    // /panic would have ended the process: it still serves.
    assert_eq!(s.get("/alwaysok"), alwaysok_response(""));
}

#[test]
fn an_http_uri_without_a_host_is_400() {
    let s = Server::start(&[]);
    for target in [
        "http:///alwaysok",
        "http://",
        "https://:8080/",
        "http://user@x/alwaysok",
    ] {
        refused(&s, &get(target), |c| c == 400);
    }
    // With a host, absolute-form routes by its path.
    let mut c = s.connect();
    c.send(&get("http://[::1]:8080/alwaysok?q"));
    assert_eq!(c.normalized(false), alwaysok_response(""));
}

#[test]
fn target_forms_follow_the_method() {
    let s = Server::start(&[]);
    // `*` is for OPTIONS only, authority-form for CONNECT only (RFC 9112 §3.2.3, §3.2.4).
    refused(&s, &get("*"), |c| c == 400);
    refused(&s, &get("example.com:443"), |c| c == 400);
    refused(&s, b"CONNECT / HTTP/1.1\r\nHost: test\r\n\r\n", |c| {
        c == 400
    });
    for req in [
        "OPTIONS * HTTP/1.1\r\nHost: test\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    ] {
        let mut c = s.connect();
        assert_eq!(
            c.exchange(req),
            response(
                "405 Method Not Allowed",
                "text/plain; charset=utf-8",
                19,
                "Allow: GET, HEAD\r\n",
                "Method Not Allowed\n"
            ),
            "{req:?}"
        );
    }
}

#[test]
fn host_values_that_are_not_uri_host_and_port_are_400() {
    let s = Server::start(&[]);
    for host in [
        "a\"b", "a<b", "{", "x:abc", "[::1", "a b", "x:80:80", "a%zz",
    ] {
        let req = format!("GET /alwaysok HTTP/1.1\r\nHost: {host}\r\n\r\n");
        refused(&s, req.as_bytes(), |c| c == 400);
    }
    for host in [
        "example.com",
        "127.0.0.1:8080",
        "[::1]",
        "[::1]:80",
        "x:",
        "",
    ] {
        let mut c = s.connect();
        let req = format!("GET /alwaysok HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(c.exchange(&req), alwaysok_response(""), "Host: {host}");
    }
}

#[test]
fn content_length_may_have_any_number_of_leading_zeros() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let req =
        "GET /alwaysok HTTP/1.1\r\nHost: test\r\nContent-Length: 00000000000000000000\r\n\r\n";
    assert_eq!(c.exchange(req), alwaysok_response(""));
    assert_eq!(c.exchange(GET_OK), alwaysok_response(""), "kept alive");
}

#[test]
fn transfer_codings_not_ending_in_chunked_are_400() {
    let s = Server::start(&[]);
    for te in ["chunked, identity", "foo", "chunked, chunked", "gzip"] {
        let req =
            format!("POST /alwaysok HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: {te}\r\n\r\n");
        refused(&s, req.as_bytes(), |c| c == 400);
    }
    let req = "POST /alwaysok HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
    refused(&s, req.as_bytes(), |c| c == 413);
}

#[test]
fn a_request_line_longer_than_the_read_buffer_is_414() {
    let s = Server::start(&[]);
    let target = format!("/{}", "a".repeat(9000));
    refused(&s, &get(&target), |c| c == 414);
    // A long header after a short request line stays 431.
    let req = format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX: {}\r\n\r\n",
        "a".repeat(9000)
    );
    refused(&s, req.as_bytes(), |c| c == 431);
}

#[test]
fn empty_lines_after_a_request_leave_the_connection_idle() {
    let s = Server::start(&["--header-timeout", "1", "--idle-timeout", "10"]);
    let mut c = s.connect();
    c.send(format!("{GET_OK}\r\n\r\n").as_bytes());
    assert_eq!(c.normalized(false), alwaysok_response(""));
    c.send(b"\r\n");
    // Past the header timeout: no unsolicited 408, and the connection still serves.
    c.stream
        .set_read_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    let mut byte = [0u8; 1];
    match c.stream.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence past the header timeout, got {other:?}"),
    }
    c.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(c.exchange(GET_OK), alwaysok_response(""));
}

#[test]
fn unrecognised_methods_are_501_and_keep_the_connection() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let long = "M".repeat(200);
    for method in ["get", "GETT", "PROPFIND", &long] {
        let req = format!("{method} /alwaysok HTTP/1.1\r\nHost: test\r\n\r\n");
        assert_eq!(
            c.exchange(&req),
            response(
                "501 Not Implemented",
                "text/plain; charset=utf-8",
                16,
                "",
                "Not Implemented\n"
            ),
            "{method}"
        );
    }
    assert_eq!(c.exchange(GET_OK), alwaysok_response(""), "kept alive");
    // Methods HTTP defines keep their 405 where the resource exists, 404 where not.
    assert_eq!(
        status_of(&c.exchange("TRACE / HTTP/1.1\r\nHost: t\r\n\r\n")),
        405
    );
    assert_eq!(
        status_of(&c.exchange("PATCH /x HTTP/1.1\r\nHost: t\r\n\r\n")),
        404
    );
}

#[test]
fn versions_0_0_and_0_9_are_505_like_2_0() {
    let s = Server::start(&[]);
    for v in ["HTTP/0.0", "HTTP/0.9", "HTTP/2.0"] {
        let req = format!("GET / {v}\r\nHost: test\r\n\r\n");
        refused(&s, req.as_bytes(), |c| c == 505);
    }
}
