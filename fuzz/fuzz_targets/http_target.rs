//! The request-target and `Host` grammar (RFC 9112 §3.2, RFC 3986 §3), differentially: a
//! request is built from a fuzzed method, target and Host value, and its status must be the one
//! a second, independent reading of the grammar (`expected` below, written apart from
//! `src/http.rs`) predicts. The answer is also held to `respond`'s contract (`check`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyapi_fuzz::{answers, http::Context, small_counters, DATE};

fuzz_target!(|data: &[u8]| {
    // data: method length, target length, then the three parts; each byte is mapped to
    // visible ASCII, which httparse takes in a target and a header value.
    let [m, t, rest @ ..] = data else { return };
    let visible: Vec<u8> = rest.iter().map(|&b| 0x21 + b % 94).collect();
    let m = (*m as usize % 12).min(visible.len());
    let t = (*t as usize).min(visible.len() - m);
    let (method, rest) = visible.split_at(m);
    let (target, host) = rest.split_at(t);
    let method = match method.first() {
        // Mostly the methods HTTP defines, some fuzzed.
        Some(&b) if b < 0x21 + 9 * 8 => METHODS[(b as usize - 0x21) / 8].as_bytes(),
        _ => method,
    };
    let request = [method, b" ", target, b" HTTP/1.1\r\nHost: ", host, b"\r\n\r\n"].concat();
    let ctx = Context {
        date: DATE,
        draining: false,
        health: &small_counters,
    };
    let t = answers(&request, &ctx);
    let got = t.verdicts.first().map(|v| v.status);
    let want = expected(method, target, host);
    assert_eq!(
        got,
        Some(want),
        "{:?}",
        String::from_utf8_lossy(&request)
    );
});

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The status of `METHOD TARGET HTTP/1.1` with one `Host`, by the grammar.
fn expected(method: &[u8], target: &[u8], host: &[u8]) -> u16 {
    let (Ok(method), Ok(target), Ok(host)) = (
        std::str::from_utf8(method),
        std::str::from_utf8(target),
        std::str::from_utf8(host),
    ) else {
        return 400;
    };
    // method = token (RFC 9110 §9.1); the request line needs a method and a target.
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if method.is_empty() || !method.chars().all(tchar) || target.is_empty() {
        return 400;
    }
    if host_port(host).is_none() {
        return 400;
    }
    let Some(path) = route_path(method, target) else {
        return 400;
    };
    if !METHODS.contains(&method) {
        return 501;
    }
    match path.as_str() {
        "/" | "/alwaysok" | "/healthcheck" if method == "GET" || method == "HEAD" => 200,
        "/panic" if method == "GET" || method == "HEAD" => 500,
        "/" | "/alwaysok" | "/healthcheck" | "/panic" | "*" => 405,
        _ => 404,
    }
}

/// `chars` of RFC 3986 plus `%HH` escapes: every character is unreserved, a sub-delim or in
/// `extra`.
fn made_of(s: &str, extra: &str) -> bool {
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '%' {
            let hex = rest.get(1..3).filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
            if hex.is_none() || rest.len() < 3 {
                return false;
            }
            rest = &rest[3..];
            continue;
        }
        if !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=".contains(c) || extra.contains(c)) {
            return false;
        }
        rest = &rest[1..];
    }
    true
}

/// `uri-host [ ":" port ]`: the host, or `None` when the value has another shape.
fn host_port(s: &str) -> Option<&str> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let (literal, after) = inner.split_once(']')?;
        // IPv6address, IPv4-mapped too: hex digits, ':' and '.' (no IPvFuture).
        let ok = !literal.is_empty()
            && literal.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        if !ok {
            return None;
        }
        (&s[..literal.len() + 2], after)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, &s[h.len()..][..p.len() + 1]),
            None => (s, ""),
        }
    };
    if !host.starts_with('[') && !made_of(host, "") {
        return None;
    }
    match port.strip_prefix(':') {
        Some(digits) if digits.chars().all(|c| c.is_ascii_digit()) => Some(host),
        None if port.is_empty() => Some(host),
        _ => None,
    }
}

/// What the target routes by: a path, or `*` for the server itself.
fn route_path(method: &str, target: &str) -> Option<String> {
    if method == "CONNECT" {
        // authority-form (RFC 9112 §3.2.3); the port is not insisted on.
        return host_port(target).filter(|h| !h.is_empty()).map(|_| "*".into());
    }
    if target == "*" {
        return (method == "OPTIONS").then(|| "*".into());
    }
    let lower = target.to_ascii_lowercase();
    let scheme = ["http://", "https://"].into_iter().find(|s| lower.starts_with(s));
    let (absolute, path_query) = match scheme {
        Some(s) => {
            let rest = &target[s.len()..];
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            host_port(&rest[..end]).filter(|h| !h.is_empty())?;
            (true, &rest[end..])
        }
        None => (false, target),
    };
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let shaped = path.starts_with('/') || absolute && path.is_empty();
    if !shaped || !made_of(path, ":@/") || !made_of(query, ":@/?") {
        return None;
    }
    Some(if path.is_empty() { "/".into() } else { path.into() })
}
