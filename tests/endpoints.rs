//! Every endpoint, byte for byte (the Date value is checked, then masked).

mod common;

use common::*;

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

#[test]
fn get_index() {
    let s = Server::start(&[]);
    assert_eq!(s.get("/"), index_response(""));
}

#[test]
fn head_index_has_the_get_headers_and_no_body() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let r = c.exchange("HEAD / HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(r, response("200 OK", TEXT, INDEX_BODY.len(), "", ""));
    // No body bytes follow: the next response on the connection starts right after the head.
    assert_eq!(
        c.exchange("GET /alwaysok HTTP/1.1\r\nHost: test\r\n\r\n"),
        alwaysok_response("")
    );
}

#[test]
fn get_alwaysok() {
    let s = Server::start(&[]);
    assert_eq!(
        s.get("/alwaysok"),
        "HTTP/1.1 200 OK\r\nServer: tinyapi\r\nDate: <DATE>\r\nContent-Type: application/json\r\n\
         Content-Length: 18\r\n\r\n{ \"status\": \"OK\" }"
    );
}

#[test]
fn head_alwaysok() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let r = c.exchange("HEAD /alwaysok HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(r, response("200 OK", JSON, 18, "", ""));
    assert_eq!(
        c.exchange("GET / HTTP/1.1\r\nHost: test\r\n\r\n"),
        index_response("")
    );
}

#[test]
fn healthcheck_reports_status_version_uptime_requests_connections() {
    let s = Server::start(&[]);
    // The first request of a fresh server: like `connections`, which counts the asking
    // connection, `requests` counts the asking request.
    // (Guards against bumping the counter only after the body is built: "requests":0.)
    let h = s.health();
    assert!(h.requests >= 1, "{h:?}");
    assert!(h.connections >= 1, "{h:?}");
    assert!(h.uptime_seconds < 60, "{h:?}");
    // Counting is monotonic and includes the asking request.
    let h2 = s.health();
    assert!(h2.requests > h.requests, "{h:?} then {h2:?}");
}

#[test]
fn head_healthcheck_has_json_headers_and_no_body() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    let r = c.exchange("HEAD /healthcheck HTTP/1.1\r\nHost: test\r\n\r\n");
    let len = content_length(&r);
    assert_eq!(r, response("200 OK", HEALTH_TYPE, len, "", ""));
    // The advertised length is the GET body's length (same counters, digit for digit
    // except requests, which may have grown by one: one more digit at most).
    let get = c.exchange("GET /healthcheck HTTP/1.1\r\nHost: test\r\n\r\n");
    let body_len = get.split_once("\r\n\r\n").unwrap().1.len();
    assert!(
        body_len == len || body_len == len + 1,
        "HEAD {len}, GET {body_len}"
    );
    Health::from_response(&get);
}

#[test]
fn unknown_path_is_404() {
    let s = Server::start(&[]);
    for path in ["/nope", "/alwaysok/extra", "/ALWAYSOK", "/index.html"] {
        assert_eq!(
            s.get(path),
            response("404 Not Found", TEXT, 10, "", "Not Found\n"),
            "GET {path}"
        );
    }
    // A HEAD answer never has a body (RFC 9110 §9.3.2), whatever its status.
    // A stray "Not Found\n" after the head would be read as the start of the next response.
    let mut c = s.connect();
    assert_eq!(
        c.exchange("HEAD /nope HTTP/1.1\r\nHost: test\r\n\r\n"),
        response("404 Not Found", TEXT, 10, "", ""),
    );
    // Keep-alive survives a 404.
    assert_eq!(
        c.exchange("GET /alwaysok HTTP/1.1\r\nHost: test\r\n\r\n"),
        alwaysok_response("")
    );
}

#[test]
fn other_methods_get_405_with_allow() {
    let s = Server::start(&[]);
    for (method, path) in [
        ("POST", "/alwaysok"),
        ("PUT", "/"),
        ("DELETE", "/healthcheck"),
        ("OPTIONS", "/alwaysok"),
        ("PATCH", "/panic"),
        ("TRACE", "/alwaysok"),
    ] {
        let r = s.exchange(&format!("{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n"));
        assert_eq!(
            r,
            response(
                "405 Method Not Allowed",
                TEXT,
                19,
                "Allow: GET, HEAD\r\n",
                "Method Not Allowed\n"
            ),
            "{method} {path}"
        );
    }
    // A 405 keeps the connection.
    let mut c = s.connect();
    c.exchange("POST /alwaysok HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        c.exchange("GET /alwaysok HTTP/1.1\r\nHost: test\r\n\r\n"),
        alwaysok_response("")
    );
}

#[test]
fn query_string_is_ignored() {
    let s = Server::start(&[]);
    assert_eq!(s.get("/alwaysok?x=1&y=2"), alwaysok_response(""));
    assert_eq!(s.get("/?"), index_response(""));
    assert_eq!(s.get("/?q=droids"), index_response(""));
    Health::from_response(&s.get("/healthcheck?verbose=1"));
    assert_eq!(
        s.get("/nope?x=/alwaysok"),
        response("404 Not Found", TEXT, 10, "", "Not Found\n")
    );
}

#[test]
fn absolute_form_routes_by_path() {
    let s = Server::start(&[]);
    assert_eq!(
        s.exchange("GET http://x/alwaysok HTTP/1.1\r\nHost: x\r\n\r\n"),
        alwaysok_response("")
    );
    assert_eq!(
        s.exchange("GET http://example.com:8080/?a=b HTTP/1.1\r\nHost: x\r\n\r\n"),
        index_response("")
    );
    assert_eq!(
        s.exchange("GET HTTP://x HTTP/1.1\r\nHost: x\r\n\r\n"),
        index_response("")
    );
    Health::from_response(&s.exchange("GET https://x/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n"));
}

#[test]
fn header_names_and_values_do_not_change_the_answer() {
    let s = Server::start(&[]);
    let r = s.exchange(
        "GET /alwaysok HTTP/1.1\r\nhost: test\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\
         X-Forwarded-For: 10.0.0.1\r\nCONNECTION: Keep-Alive\r\n\r\n",
    );
    assert_eq!(r, alwaysok_response(""));
}

#[test]
fn panic_answers_500_and_exits_1() {
    let mut s = Server::start(&[]);
    let mut c = s.connect();
    let port = c.stream.local_addr().unwrap().port();
    c.send(b"GET /panic HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(s.exit_code(PATIENCE), 1);
    // The 500 is best effort: when it arrives it is complete and exact.
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c.stream, &mut got);
    if !got.is_empty() {
        let body = "tinyapi is exiting: /panic was requested\n";
        assert_eq!(
            normalize(&got),
            response(
                "500 Internal Server Error",
                TEXT,
                body.len(),
                "Connection: close\r\n",
                body
            )
        );
    }
    let err = s.stderr.text();
    let fatal = err
        .lines()
        .find(|l| l.contains("FATAL"))
        .unwrap_or_else(|| panic!("no FATAL line on stderr: {err:?}"));
    assert!(
        fatal.contains(&format!("127.0.0.1:{port}")),
        "FATAL line does not name the client: {fatal:?}"
    );
    assert!(
        !s.stdout.text().contains("tinyapi stopped"),
        "a /panic exit is not a clean stop"
    );
}

#[test]
fn panic_exits_1_whichever_worker_answers() {
    for round in 0..4 {
        let mut s = Server::start(&["--workers", "4", "--quiet"]);
        // Spread some connections over the workers first.
        for _ in 0..8 {
            s.assert_serves();
        }
        let workers = s.wait_workers();
        let mut c = s.connect();
        c.send(b"GET /panic HTTP/1.1\r\nHost: test\r\n\r\n");
        assert_eq!(s.exit_code(PATIENCE), 1, "round {round}");
        assert!(
            s.stderr.text().contains("FATAL"),
            "round {round}: {:?}",
            s.stderr.text()
        );
        for pid in workers {
            assert!(
                wait_gone(pid, PATIENCE),
                "round {round}: worker {pid} left running"
            );
        }
    }
}

#[test]
fn head_panic_also_exits_1() {
    let mut s = Server::start(&["--workers", "1"]);
    let mut c = s.connect();
    c.send(b"HEAD /panic HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(s.exit_code(PATIENCE), 1);
    assert!(s.stderr.text().contains("FATAL"), "{:?}", s.stderr.text());
}
