//! Fuzzing harness for tinyapi's pure HTTP layer (`src/http.rs` of the server).
//!
//! The pure modules the HTTP layer needs are compiled in here from their source files rather
//! than taken from the tinyapi crate, which also holds the libc and epoll code: these need
//! nothing but `core` and build unchanged for the host with sanitizers. `VERSION` sits at this
//! crate's root because `http.rs` refers to `crate::VERSION`.
//!
//! [`serve`] models one connection of the server (`src/server.rs`): a read buffer of
//! [`HEAD_MAX`] bytes that takes what arrives, answers every complete request at its start, moves
//! the unanswered tail to the front and reads on, until a response closes the connection or the
//! stream ends. [`check`] holds every answer to the contract of [`http::respond`].

#[path = "../../src/addr.rs"]
pub mod addr;
#[path = "../../src/buf.rs"]
pub mod buf;
#[path = "../../src/http.rs"]
pub mod http;
#[path = "../../src/time.rs"]
pub mod time;

/// The server's version, as `/healthcheck` reports it (the `version` of the tinyapi package).
pub const VERSION: &str = "0.1.0";

use buf::Buf;
use http::{Context, Exchange, Health, HEAD_MAX, RESPONSE_MAX};

/// The `Date` of every response: fixed, so that runs compare byte for byte.
pub const DATE: &[u8; time::HTTP_DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

/// Ordinary `/healthcheck` counters.
pub fn small_counters() -> Health {
    Health {
        uptime_secs: 7,
        requests: 42,
        connections: 3,
    }
}

/// The largest counters: the longest `/healthcheck` body there can be.
pub fn max_counters() -> Health {
    Health {
        uptime_secs: u64::MAX,
        requests: u64::MAX,
        connections: u64::MAX,
    }
}

/// The outcome of one request, as far as it must not depend on how the stream was cut into
/// reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The status code sent.
    pub status: u16,
    /// The connection stays open for another request.
    pub keep_alive: bool,
    /// The process exits after this response (`/panic`).
    pub exit: bool,
    /// Input bytes used, for a request that keeps the connection (a closing answer counts
    /// whatever happened to be buffered, which does depend on the reads).
    pub consumed: Option<usize>,
}

/// Everything one connection sent back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    /// The responses, one after the other, as the client receives them.
    pub output: Vec<u8>,
    /// One verdict per response.
    pub verdicts: Vec<Verdict>,
    /// The last response closed the connection.
    pub closed: bool,
}

/// A read size meaning "as much as the buffer takes".
pub const FILL: usize = usize::MAX;

/// Runs one connection that receives `stream`, the way `src/server.rs` does. `read_size(i)` is
/// how many bytes the `i`-th read returns; like recv(2), a read never returns more than the room
/// left in the buffer and what it does not take stays for the next read.
pub fn serve(
    stream: &[u8],
    ctx: &Context,
    mut read_size: impl FnMut(usize) -> usize,
) -> Transcript {
    let mut read = vec![0u8; HEAD_MAX];
    let (mut len, mut fed, mut reads) = (0, 0, 0);
    let mut t = Transcript::default();
    loop {
        // Answer every complete request at the start of the buffer, in order.
        let mut used = 0;
        while used < len {
            let input = &read[used..len];
            // Twice the promised bound, so an oversized response shows instead of being cut.
            let mut out = [0u8; 2 * RESPONSE_MAX];
            let mut b = Buf::new(&mut out);
            let Some(x) = http::respond(input, ctx, &mut b) else {
                assert!(
                    input.len() < HEAD_MAX,
                    "a full buffer of {} bytes got no answer",
                    input.len()
                );
                assert_eq!(b.len(), 0, "output written, yet the head is incomplete");
                break;
            };
            check(input, ctx, &x, b.as_bytes());
            if input.len() == HEAD_MAX
                && find(input, b"\n\r\n").is_none()
                && find(input, b"\n\n").is_none()
            {
                // A full buffer without the end of a head: the head is too large (or malformed).
                assert!(
                    matches!(x.status.code(), 400 | 414 | 431 | 505) && !x.keep_alive,
                    "a full buffer without a complete head got {}",
                    x.status.code()
                );
            }
            used += x.consumed;
            t.output.extend_from_slice(b.as_bytes());
            let closing = !x.keep_alive || x.exit;
            t.verdicts.push(Verdict {
                status: x.status.code(),
                keep_alive: x.keep_alive,
                exit: x.exit,
                consumed: (!closing).then_some(x.consumed),
            });
            if closing {
                // Nothing after a closing response is answered (or, after /panic, the process
                // is gone).
                t.closed = true;
                return t;
            }
        }
        // Keep the incomplete head: move it to the front and read on.
        read.copy_within(used..len, 0);
        len -= used;
        if fed == stream.len() {
            return t;
        }
        let room = HEAD_MAX - len;
        assert!(room > 0, "the buffer is full and nothing was answered");
        let n = read_size(reads).clamp(1, room).min(stream.len() - fed);
        reads += 1;
        read[len..len + n].copy_from_slice(&stream[fed..fed + n]);
        len += n;
        fed += n;
    }
}

/// Checks one answer of [`http::respond`] against its contract: `x` answers the first request of
/// `input`, and `response` is all it wrote.
pub fn check(input: &[u8], ctx: &Context, x: &Exchange, response: &[u8]) {
    let code = x.status.code();
    let shown = || String::from_utf8_lossy(response).into_owned();

    // Framing of the input.
    assert!(
        x.consumed > 0 && x.consumed <= input.len(),
        "consumed {} of {} input bytes",
        x.consumed,
        input.len()
    );

    // Size and shape of the response.
    assert!(
        response.len() <= RESPONSE_MAX,
        "{} bytes exceed RESPONSE_MAX: {:?}",
        response.len(),
        shown()
    );
    assert!(
        response.starts_with(b"HTTP/1.1 "),
        "status line: {:?}",
        shown()
    );
    let head_len = find(response, b"\r\n\r\n")
        .unwrap_or_else(|| panic!("the head does not end with CRLF CRLF: {:?}", shown()))
        + 4;
    let (head, body) = response.split_at(head_len);
    let lines = crlf_lines(&head[..head_len - 4]);
    for line in &lines {
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "bare CR or LF in the head: {:?}",
            shown()
        );
    }

    // Header lines, in the documented order and nothing else.
    let mut want: Vec<Vec<u8>> = Vec::new();
    let status_line = lines[0];
    assert!(
        status_line.len() > 13
            && status_line[9..12] == *format!("{code}").as_bytes()
            && status_line[12] == b' ',
        "status line {:?} for status {code}",
        String::from_utf8_lossy(status_line)
    );
    want.push(status_line.to_vec());
    want.push(b"Server: tinyapi".to_vec());
    want.push([&b"Date: "[..], DATE].concat());
    let content_type = lines.get(3).copied().unwrap_or_default();
    assert!(
        content_type == b"Content-Type: text/plain; charset=utf-8"
            || content_type == b"Content-Type: application/json",
        "content type: {:?}",
        shown()
    );
    want.push(content_type.to_vec());
    let length_line = lines.get(4).copied().unwrap_or_default();
    let length = length_line
        .strip_prefix(b"Content-Length: ")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("Content-Length: {:?}", shown()));
    want.push(format!("Content-Length: {length}").into_bytes());
    if code == 405 {
        want.push(b"Allow: GET, HEAD".to_vec());
    }
    if !x.keep_alive {
        want.push(b"Connection: close".to_vec());
    } else if x.minor == Some(0) {
        want.push(b"Connection: keep-alive".to_vec());
    }
    assert_eq!(
        lines,
        want.iter().map(|l| &l[..]).collect::<Vec<_>>(),
        "header lines of {:?}",
        shown()
    );

    // The body: what Content-Length announces, or nothing at all for HEAD (RFC 9112 §6.3).
    assert_eq!(body.len(), x.body_len, "body_len vs body in {:?}", shown());
    if x.method == b"HEAD" {
        assert_eq!(
            x.body_len,
            0,
            "a body in the {code} answer to HEAD: {:?} for {:?}",
            shown(),
            String::from_utf8_lossy(input)
        );
        assert_head_matches_get(input, ctx, x, head);
    } else {
        assert_eq!(
            length,
            body.len(),
            "Content-Length vs body in {:?}",
            shown()
        );
        assert_known_body(code, ctx, body, status_line);
    }

    // The verdict.
    if code >= 400 && code != 404 && code != 405 {
        assert!(!x.keep_alive, "error {code} keeps the connection");
    }
    if ctx.draining {
        assert!(!x.keep_alive, "draining, yet the connection is kept");
    }
    assert_eq!(x.exit, code == 500, "exit flag with status {code}");
    if x.exit {
        assert!(!x.keep_alive, "/panic keeps the connection");
    }
    if x.keep_alive {
        assert!(x.minor.is_some(), "kept without a parsed version");
        assert!(find(&input[..x.consumed], b"\r\n\r\n").is_some());
    }
    if code == 505 {
        assert!(
            names_other_version(input),
            "505 for a request line that names no version other than 1.0 and 1.1: {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// True when the request line (after any leading empty lines, up to CR, LF or the end of what
/// has arrived) is `METHOD SP TARGET SP HTTP/d.d` with a version other than 1.0 and 1.1: the
/// only request that 505 answers (RFC 9110 §15.6.6); a malformed line is 400.
fn names_other_version(input: &[u8]) -> bool {
    let start = input
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(input.len());
    let line = &input[start..];
    let line = &line[..line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len())];
    let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let v = words.last().copied().unwrap_or_default();
    words.len() == 3
        && v.len() == 8
        && v.starts_with(b"HTTP/")
        && v[5].is_ascii_digit()
        && v[6] == b'.'
        && v[7].is_ascii_digit()
        && v != b"HTTP/1.0"
        && v != b"HTTP/1.1"
}

/// The answer to HEAD has the head of the answer to the same request made with GET (RFC 9110
/// §9.3.2), including its Content-Length.
fn assert_head_matches_get(input: &[u8], ctx: &Context, x: &Exchange, head: &[u8]) {
    // `x.method` points into `input`: swap those four bytes for GET.
    let at = x.method.as_ptr() as usize - input.as_ptr() as usize;
    let get = [&input[..at], b"GET", &input[at + 4..]].concat();
    let mut out = [0u8; 2 * RESPONSE_MAX];
    let mut b = Buf::new(&mut out);
    let Some(y) = http::respond(&get, ctx, &mut b) else {
        // Only a full buffer (414/431) is answered without a complete head; one byte shorter,
        // its GET twin is not full.
        assert!(
            input.len() >= HEAD_MAX,
            "no answer to the GET twin of {:?}",
            String::from_utf8_lossy(input)
        );
        return;
    };
    assert_eq!(
        (y.status.code(), y.keep_alive),
        (x.status.code(), x.keep_alive),
        "HEAD and GET verdicts differ for {:?}",
        String::from_utf8_lossy(input)
    );
    assert!(
        b.as_bytes().starts_with(head) && b.len() == head.len() + y.body_len,
        "HEAD head {:?} vs GET response {:?}",
        String::from_utf8_lossy(head),
        String::from_utf8_lossy(b.as_bytes())
    );
}

/// Every body is one the server knows how to send.
fn assert_known_body(code: u16, ctx: &Context, body: &[u8], status_line: &[u8]) {
    let health = health_body(ctx);
    let ok = match code {
        200 => body == http::INDEX_BODY || body == http::ALWAYSOK_BODY || body == &health[..],
        500 => body == http::PANIC_BODY,
        503 => ctx.draining && body == &health[..],
        // Errors carry their reason phrase.
        _ => body.strip_suffix(b"\n") == Some(&status_line[13..]),
    };
    assert!(
        ok,
        "unexpected body {:?} with status {code}",
        String::from_utf8_lossy(body)
    );
}

/// The `/healthcheck` body for `ctx`, as documented.
fn health_body(ctx: &Context) -> Vec<u8> {
    let h = (ctx.health)();
    format!(
        "{{\"status\":\"{}\",\"version\":\"{VERSION}\",\"uptime_seconds\":{},\"requests\":{},\"connections\":{}}}",
        if ctx.draining { "draining" } else { "ok" },
        h.uptime_secs,
        h.requests,
        h.connections
    )
    .into_bytes()
}

/// The lines of `text`, split at each CRLF.
fn crlf_lines(mut text: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    while let Some(i) = find(text, b"\r\n") {
        lines.push(&text[..i]);
        text = &text[i + 2..];
    }
    lines.push(text);
    lines
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
