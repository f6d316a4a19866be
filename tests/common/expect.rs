//! Expected responses, and the normalisation (the `Date` checked, then replaced) that lets a
//! test compare a whole response with one.

use super::*;
use std::time::{SystemTime, UNIX_EPOCH};

/// Body of `/`.
pub const INDEX_BODY: &str = "Index of tinyapi. These aren't the droids you're looking for\n";
/// Body of `/alwaysok`.
pub const ALWAYSOK_BODY: &str = "{ \"status\": \"OK\" }";

/// Checks that a response carries exactly one valid, current `Date` header and replaces its
/// value with `<DATE>`.
#[track_caller]
pub fn normalize(response: &[u8]) -> String {
    let text = String::from_utf8(response.to_vec())
        .unwrap_or_else(|_| panic!("response is not UTF-8: {response:?}"));
    let head_end = text.find("\r\n\r\n").expect("complete head");
    let mut found = None;
    let mut out = String::with_capacity(text.len());
    let mut offset = 0;
    for line in text[..head_end].split("\r\n") {
        if let Some(v) = line.strip_prefix("Date: ") {
            assert!(found.is_none(), "two Date headers in {text:?}");
            check_imf_fixdate(v);
            found = Some(v.to_string());
            out.push_str("Date: <DATE>");
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
        offset += line.len() + 2;
    }
    assert!(found.is_some(), "no Date header in {text:?}");
    out.push_str(&text[offset..]);
    out
}

/// Checks `2026-11-27T06:46:44Z`: an RFC 3339 UTC time to the second, close to now.
#[track_caller]
pub fn check_rfc3339_utc(t: &str) {
    let b = t.as_bytes();
    assert_eq!(b.len(), 20, "time {t:?}");
    let shape_ok = b.iter().enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T',
        13 | 16 => c == b':',
        19 => c == b'Z',
        _ => c.is_ascii_digit(),
    });
    assert!(shape_ok, "time {t:?}");
    let n = |r: std::ops::Range<usize>| t[r].parse::<u64>().unwrap();
    let (mo, d, h, mi, s) = (n(5..7), n(8..10), n(11..13), n(14..16), n(17..19));
    assert!((1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s < 61);
    let secs = days_from_civil(n(0..4), mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs.abs_diff(now) <= 300, "time {t:?} is far from now");
}

/// Asserts that `v` is an IMF-fixdate (RFC 9110 §5.6.7) naming the right weekday and within a
/// few minutes of this machine's clock.
#[track_caller]
pub fn check_imf_fixdate(v: &str) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // from 1970-01-01
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> u64 {
        assert!(
            b[r.clone()].iter().all(u8::is_ascii_digit),
            "Date {v:?}: expected digits at {r:?}"
        );
        v[r].parse().unwrap()
    };
    assert_eq!(b.len(), 29, "Date {v:?} is not an IMF-fixdate");
    assert!(
        b[3] == b','
            && b[4] == b' '
            && b[7] == b' '
            && b[11] == b' '
            && b[16] == b' '
            && b[19] == b':'
            && b[22] == b':'
            && &v[25..] == " GMT",
        "Date {v:?} is not an IMF-fixdate"
    );
    let (day, year) = (digits(5..7), digits(12..16));
    let (h, m, s) = (digits(17..19), digits(20..22), digits(23..25));
    let month = MONTHS
        .iter()
        .position(|&x| x == &v[8..11])
        .unwrap_or_else(|| panic!("Date {v:?}: bad month")) as u64
        + 1;
    assert!(
        (1..=31).contains(&day) && h < 24 && m < 60 && s < 61,
        "Date {v:?}"
    );
    let days = days_from_civil(year, month, day);
    assert_eq!(
        &v[..3],
        DAYS[(days % 7) as usize],
        "Date {v:?}: wrong weekday"
    );
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        secs.abs_diff(now) <= 300,
        "Date {v:?} is {secs}, the clock says {now}"
    );
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
/// A normalized response: status line, the fixed headers in order, `extra` header lines (each
/// ending in CRLF), the blank line and `body` (empty for HEAD).
pub fn response(status: &str, content_type: &str, len: usize, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nServer: tinyapi\r\nDate: <DATE>\r\nContent-Type: {content_type}\r\n\
         Content-Length: {len}\r\n{extra}\r\n{body}"
    )
}

/// `GET /alwaysok` with `extra` header lines.
pub fn alwaysok_response(extra: &str) -> String {
    response(
        "200 OK",
        "application/json",
        ALWAYSOK_BODY.len(),
        extra,
        ALWAYSOK_BODY,
    )
}

/// `GET /` with `extra` header lines.
pub fn index_response(extra: &str) -> String {
    response(
        "200 OK",
        "text/plain; charset=utf-8",
        INDEX_BODY.len(),
        extra,
        INDEX_BODY,
    )
}

/// An error response: `code reason`, the reason as a text body, and `Connection: close`.
pub fn error_response(code: u16, reason: &str) -> String {
    let body = format!("{reason}\n");
    response(
        &format!("{code} {reason}"),
        "text/plain; charset=utf-8",
        body.len(),
        "Connection: close\r\n",
        &body,
    )
}

/// The reason phrase tinyapi sends for `code`.
#[track_caller]
pub fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => panic!("no reason phrase for {code}"),
    }
}

/// The status code of a response.
#[track_caller]
pub fn status_of(response: &str) -> u16 {
    response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

/// `/healthcheck`'s `Content-Type` value and the header after it: its body changes with every
/// request, so no cache may reuse it.
pub const HEALTH_TYPE: &str = "application/json\r\nCache-Control: no-store";

/// The body of `/healthcheck`.
#[derive(Debug)]
pub struct Health {
    pub uptime_seconds: u64,
    pub requests: u64,
    pub connections: u64,
}

impl Health {
    /// Parses a normalized `/healthcheck` response, checking every byte of it.
    #[track_caller]
    pub fn from_response(r: &str) -> Health {
        let (_, body) = r.split_once("\r\n\r\n").expect("complete response");
        let h = Health::from_body(body);
        assert_eq!(
            r,
            response("200 OK", HEALTH_TYPE, body.len(), "", body),
            "healthcheck response"
        );
        h
    }

    /// Parses `{"status":"ok","version":V,"uptime_seconds":N,"requests":N,"connections":N}`:
    /// the exact shape, nothing more or less.
    #[track_caller]
    pub fn from_body(body: &str) -> Health {
        let fail = || -> ! { panic!("unexpected healthcheck body {body:?}") };
        let rest = body
            .strip_prefix(&format!(
                "{{\"status\":\"ok\",\"version\":\"{VERSION}\",\"uptime_seconds\":"
            ))
            .unwrap_or_else(|| fail());
        let mut nums = [0u64; 3];
        let mut rest = rest;
        for (i, sep) in [",\"requests\":", ",\"connections\":", "}"]
            .iter()
            .enumerate()
        {
            let end = rest.find(sep).unwrap_or_else(|| fail());
            let digits = &rest[..end];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                fail();
            }
            nums[i] = digits.parse().unwrap_or_else(|_| fail());
            rest = &rest[end + sep.len()..];
        }
        if !rest.is_empty() {
            fail();
        }
        Health {
            uptime_seconds: nums[0],
            requests: nums[1],
            connections: nums[2],
        }
    }
}

/// Sends `request` on a new connection and expects one complete error response with a code
/// `accept` allows, then the close with nothing after it; then checks that a fresh connection
/// is served. Returns the code.
#[track_caller]
pub fn refused(s: &Server, request: &[u8], accept: impl Fn(u16) -> bool) -> u16 {
    let shown = String::from_utf8_lossy(&request[..request.len().min(120)]).into_owned();
    let mut c = s.connect();
    c.send(request);
    let r = c.normalized(false);
    let code = status_of(&r);
    assert!(accept(code), "unexpected status for {shown:?}: {r:?}");
    assert_eq!(r, error_response(code, reason(code)), "request {shown:?}");
    c.expect_closed(PATIENCE);
    s.assert_serves();
    code
}
