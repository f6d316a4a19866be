//! HTTP/1.x framing: keep-alive, pipelining, persistence rules, and every way a request can be
//! refused. A refused request closes its connection and leaves the server serving others.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn keep_alive_serves_100_requests_on_one_connection() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    for i in 0..100 {
        match i % 4 {
            0 => assert_eq!(c.exchange(GET_OK), alwaysok_response(""), "request {i}"),
            1 => assert_eq!(
                c.exchange("GET / HTTP/1.1\r\nHost: test\r\n\r\n"),
                index_response(""),
                "request {i}"
            ),
            2 => assert_eq!(
                c.exchange("HEAD /alwaysok HTTP/1.1\r\nHost: test\r\n\r\n"),
                response("200 OK", "application/json", 18, "", ""),
                "request {i}"
            ),
            _ => {
                let h = Health::from_response(
                    &c.exchange("GET /healthcheck HTTP/1.1\r\nHost: test\r\n\r\n"),
                );
                assert!(h.requests >= i, "{h:?} after {i} requests");
            }
        }
    }
}

/// Fifty requests of mixed kinds, and the normalized answer expected for each.
fn mixed_requests(n: usize) -> (String, Vec<(bool, String)>) {
    let mut wire = String::new();
    let mut expected = Vec::new();
    for i in 0..n {
        let (req, head_only, resp) = match i % 5 {
            0 => (
                format!("GET /alwaysok?i={i} HTTP/1.1\r\nHost: test\r\n\r\n"),
                false,
                alwaysok_response(""),
            ),
            1 => (
                "GET / HTTP/1.1\r\nHost: test\r\nUser-Agent: pipeline\r\n\r\n".to_string(),
                false,
                index_response(""),
            ),
            2 => (
                format!("HEAD / HTTP/1.1\r\nHost: test\r\nX-Seq: {i}\r\n\r\n"),
                true,
                response(
                    "200 OK",
                    "text/plain; charset=utf-8",
                    INDEX_BODY.len(),
                    "",
                    "",
                ),
            ),
            3 => (
                format!("GET /missing/{i} HTTP/1.1\r\nHost: test\r\n\r\n"),
                false,
                response(
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    10,
                    "",
                    "Not Found\n",
                ),
            ),
            _ => (
                "DELETE /alwaysok HTTP/1.1\r\nHost: test\r\n\r\n".to_string(),
                false,
                response(
                    "405 Method Not Allowed",
                    "text/plain; charset=utf-8",
                    19,
                    "Allow: GET, HEAD\r\n",
                    "Method Not Allowed\n",
                ),
            ),
        };
        wire.push_str(&req);
        expected.push((head_only, resp));
    }
    (wire, expected)
}

#[track_caller]
fn pipeline(n: usize) {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let (wire, expected) = mixed_requests(n);
    c.send(wire.as_bytes()); // one write
    for (i, (head_only, want)) in expected.iter().enumerate() {
        assert_eq!(&c.normalized(*head_only), want, "response {i} of {n}");
    }
    // Still open and in step after the batch.
    assert_eq!(c.exchange(GET_OK), alwaysok_response(""));
}

#[test]
fn fifty_pipelined_requests_in_one_write_are_answered_in_order() {
    pipeline(50);
}

#[test]
fn pipelined_requests_larger_than_the_read_buffer_are_all_answered() {
    // About 20 KiB of requests: more than one 8 KiB read and more than one output batch.
    pipeline(400);
}

#[test]
fn request_split_across_many_writes_is_answered() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    for b in GET_OK.as_bytes() {
        c.send(&[*b]);
        std::thread::yield_now();
    }
    assert_eq!(c.normalized(false), alwaysok_response(""));
    // A pipelined pair cut in the middle of the second head.
    let two = format!("{GET_OK}{GET_OK}");
    let (a, b) = two.split_at(GET_OK.len() + 10);
    c.send(a.as_bytes());
    assert_eq!(c.normalized(false), alwaysok_response(""));
    c.send(b.as_bytes());
    assert_eq!(c.normalized(false), alwaysok_response(""));
}

#[test]
fn http10_closes_by_default() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    assert_eq!(
        c.exchange("GET /alwaysok HTTP/1.0\r\n\r\n"),
        alwaysok_response("Connection: close\r\n")
    );
    c.expect_closed(PATIENCE);
}

#[test]
fn http10_with_keep_alive_stays_open() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    for _ in 0..3 {
        assert_eq!(
            c.exchange("GET /alwaysok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            alwaysok_response("Connection: keep-alive\r\n")
        );
    }
    assert_eq!(
        c.exchange("HEAD / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
        response(
            "200 OK",
            "text/plain; charset=utf-8",
            INDEX_BODY.len(),
            "Connection: keep-alive\r\n",
            ""
        )
    );
    // The last one without keep-alive ends the connection.
    assert_eq!(
        c.exchange("GET / HTTP/1.0\r\n\r\n"),
        index_response("Connection: close\r\n")
    );
    c.expect_closed(PATIENCE);
}

#[test]
fn http11_connection_close_is_honoured() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    assert_eq!(c.exchange(GET_OK), alwaysok_response(""));
    assert_eq!(
        c.exchange("GET /alwaysok HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
        alwaysok_response("Connection: close\r\n")
    );
    c.expect_closed(PATIENCE);
    // A token list containing close counts too.
    let mut c = s.connect();
    assert_eq!(
        c.exchange("GET / HTTP/1.1\r\nHost: test\r\nConnection: TE, Close\r\n\r\n"),
        index_response("Connection: close\r\n")
    );
    c.expect_closed(PATIENCE);
}

#[test]
fn requests_pipelined_after_connection_close_are_not_answered() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.send(format!("GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n{GET_OK}").as_bytes());
    assert_eq!(c.normalized(false), index_response("Connection: close\r\n"));
    c.expect_closed(PATIENCE);
}

// ---------------------------------------------------------------------------------------------
// Refused requests

#[test]
fn head_over_8_kib_is_431_and_closes() {
    let s = Server::start(&[]);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    refused(&s, big.as_bytes(), |c| c == 431);
    // Many small headers adding up to more than 8 KiB.
    let mut many = String::from("GET / HTTP/1.1\r\nHost: test\r\n");
    for i in 0..60 {
        many.push_str(&format!("X-H{i}: {}\r\n", "b".repeat(150)));
    }
    many.push_str("\r\n");
    refused(&s, many.as_bytes(), |c| c == 431);
}

#[test]
fn too_many_header_lines_is_431() {
    let s = Server::start(&[]);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: test\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    refused(&s, many.as_bytes(), |c| c == 431);
}

#[test]
fn giant_request_line_is_414_and_closes() {
    let s = Server::start(&[]);
    let long = format!("GET /{} HTTP/1.1\r\nHost: test\r\n\r\n", "a".repeat(10_000));
    refused(&s, long.as_bytes(), |c| c == 414);
}

#[test]
fn head_of_exactly_8_kib_is_still_accepted() {
    let s = Server::start(&[]);
    let base = "GET /alwaysok HTTP/1.1\r\nHost: test\r\nX-Pad: \r\n\r\n".len();
    let req = format!(
        "GET /alwaysok HTTP/1.1\r\nHost: test\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(8192 - base)
    );
    assert_eq!(req.len(), 8192);
    let mut c = s.connect();
    assert_eq!(c.exchange(&req), alwaysok_response(""));
    assert_eq!(c.exchange(GET_OK), alwaysok_response(""));
}

#[test]
fn request_with_a_body_is_413_and_closes() {
    let s = Server::start(&[]);
    refused(
        &s,
        b"POST /alwaysok HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello",
        |c| c == 413,
    );
    refused(
        &s,
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello",
        |c| c == 413,
    );
}

#[test]
fn transfer_encoding_is_refused_and_closes() {
    let s = Server::start(&[]);
    refused(
        &s,
        b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        |c| (400..500).contains(&c),
    );
}

#[test]
fn malformed_requests_are_400_and_close() {
    let s = Server::start(&[]);
    for req in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET  / HTTP/1.1\r\nHost: test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n", // HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: -1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", // a TLS hello
    ] {
        refused(&s, req, |c| c == 400);
    }
}

#[test]
fn ambiguous_framing_is_400_and_closes() {
    let s = Server::start(&[]);
    // Content-Length with Transfer-Encoding (RFC 9112 §6.3).
    refused(
        &s,
        b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        |c| c == 400,
    );
    // Two Content-Length headers, even equal ones.
    refused(
        &s,
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        |c| c == 400,
    );
    refused(
        &s,
        b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
        |c| c == 400,
    );
}

#[test]
fn obs_fold_is_400_and_closes() {
    let s = Server::start(&[]);
    refused(
        &s,
        b"GET / HTTP/1.1\r\nHost: test\r\nX-Folded: a\r\n b\r\n\r\n",
        |c| c == 400,
    );
}

#[test]
fn bare_lf_is_400_and_closes() {
    let s = Server::start(&[]);
    refused(&s, b"GET / HTTP/1.1\nHost: test\n\n", |c| c == 400);
    refused(&s, b"GET / HTTP/1.1\r\nHost: test\n\r\n", |c| c == 400);
}

#[test]
fn nul_byte_is_refused_and_closes() {
    let s = Server::start(&[]);
    refused(&s, b"GET /\0 HTTP/1.1\r\nHost: test\r\n\r\n", |c| {
        (400..500).contains(&c)
    });
    refused(&s, b"GET / HTTP/1.1\r\nHost: te\0st\r\n\r\n", |c| {
        (400..500).contains(&c)
    });
}

#[test]
fn http09_is_refused_and_closes() {
    let s = Server::start(&[]);
    refused(&s, b"GET /\r\n\r\n", |c| (400..500).contains(&c));
    // A real HTTP/0.9 client sends one line only and waits.
    refused(&s, b"GET /\r\n", |c| (400..500).contains(&c));
}

#[test]
fn unsupported_versions_are_505_and_close() {
    let s = Server::start(&[]);
    refused(&s, b"GET / HTTP/2.0\r\nHost: test\r\n\r\n", |c| c == 505);
    refused(&s, b"GET / HTTP/3.0\r\n\r\n", |c| c == 505);
    refused(&s, b"GET / HTTP/2.1\r\nHost: test\r\n\r\n", |c| c == 505);
}

#[test]
fn later_http_1_minor_versions_are_answered_as_http_1_1() {
    // RFC 9110 §2.5 and §6.2: a server answers in the highest minor version it speaks.
    let s = Server::start(&[]);
    let mut c = s.connect();
    for minor in [2, 9] {
        let r = c.exchange(&format!(
            "GET /alwaysok HTTP/1.{minor}\r\nHost: test\r\n\r\n"
        ));
        assert_eq!(r, alwaysok_response(""), "HTTP/1.{minor}, kept alive");
    }
}

#[test]
fn http2_preface_is_refused_and_closes() {
    let s = Server::start(&[]);
    refused(&s, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", |c| {
        (400..500).contains(&c) || c == 505
    });
}

#[test]
fn an_error_ends_a_keep_alive_connection_after_the_good_requests_before_it() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.send(format!("{GET_OK}{GET_OK}BROKEN\r\n\r\n{GET_OK}").as_bytes());
    assert_eq!(c.normalized(false), alwaysok_response(""));
    assert_eq!(c.normalized(false), alwaysok_response(""));
    assert_eq!(c.normalized(false), error_response(400, "Bad Request"));
    c.expect_closed(PATIENCE);
}

#[test]
fn a_refused_client_that_keeps_sending_still_gets_its_answer() {
    // The server must not reset the connection while unread input is still arriving, or the
    // error response would be destroyed in flight.
    let s = Server::start(&[]);
    let mut c = s.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n");
    c.send(&[b'x'; 32 * 1024]);
    assert_eq!(
        c.normalized(false),
        error_response(413, "Content Too Large")
    );
    let _ = std::io::Write::write_all(&mut c.stream, &[b'y'; 16 * 1024]);
    c.shutdown_write();
    c.expect_closed(Duration::from_secs(5));
    s.assert_serves();
}
