//! Fuzzing harness for tinyapi: the pure HTTP layer (`src/http.rs`) and the connection state
//! machine (`src/conn.rs`) as the server runs them, taken from the tinyapi crate itself (built
//! with its `hosted` feature: no entry point or panic handler of its own).
//!
//! [`answers`] answers every complete request at the start of a buffer with [`http::respond`]
//! and holds each answer to its contract ([`check`]). [`run`] drives one real [`Conn`] over a
//! scripted socket: the stream arrives in pieces of chosen sizes, the client reads chosen
//! amounts, and the clock moves in chosen steps.

pub use tinyapi::{buf, conn, http, time, VERSION};

use buf::Buf;
use conn::{Conn, Env, Next, Phase, Scratch, Spills};
use http::{Context, Exchange, Health, HEAD_MAX, RESPONSE_MAX};
use std::sync::atomic::AtomicU64;
use tinyapi::addr::Addr;
use tinyapi::config::Timeouts;
use tinyapi::script::{buffers, Script};
use tinyapi::sys::interest;
use tinyapi::time::{Secs, Stamps};

/// The `Date` of every response: fixed, so that runs compare byte for byte.
pub const DATE: &[u8; time::HTTP_DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

/// Ordinary `/healthcheck` counters.
pub fn small_counters() -> Health {
    Health {
        uptime_secs: 7,
        requests: 42,
        connections: 3,
        remaining_secs: 0,
    }
}

/// The largest counters: the longest `/healthcheck` body there can be.
pub fn max_counters() -> Health {
    Health {
        uptime_secs: u64::MAX,
        requests: u64::MAX,
        connections: u64::MAX,
        remaining_secs: u64::MAX,
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

/// Answers every complete request at the start of `input` in order, as the server's answer loop
/// does, holding each answer to the contract of [`http::respond`]; stops after a closing one.
pub fn answers(input: &[u8], ctx: &Context) -> Transcript {
    let mut t = Transcript::default();
    let mut used = 0;
    // `respond` may rewrite a request line's version (HTTP/1.2 is read as 1.1).
    let mut input = input.to_vec();
    while used < input.len() {
        let rest = &mut input[used..];
        // Twice the promised bound, so an oversized response shows instead of being cut.
        let mut out = [0u8; 2 * RESPONSE_MAX];
        let mut b = Buf::new(&mut out);
        let Some(x) = http::respond(rest, ctx, &mut b, &mut [0; http::JSON_MAX]) else {
            assert!(rest.len() < HEAD_MAX, "a full buffer got no answer");
            assert_eq!(b.len(), 0, "output written, yet the head is incomplete");
            break;
        };
        check(x.input, ctx, &x, b.as_bytes());
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
            t.closed = true;
            break;
        }
    }
    t
}

/// How one connection's stream is cut and read: each list is used in turn, one entry per turn.
pub struct Plan<'a> {
    /// Bytes arriving per turn (0: all that is left).
    pub reads: &'a [u8],
    /// Bytes the client reads per turn (0: all there is).
    pub rooms: &'a [u8],
    /// Seconds the clock moves per turn (each entry's lowest bit).
    pub steps: &'a [u8],
}

/// All at once: one read, a client that reads everything, a clock that stands still.
pub const WHOLE: Plan = Plan {
    reads: &[0],
    rooms: &[0],
    steps: &[0],
};

/// What one connection sent back, and how it ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The bytes the client received.
    pub sent: Vec<u8>,
    /// The connection asked to end the process (`/panic`) instead of closing.
    pub exit: bool,
}

/// Timeouts far beyond any run: the clock moves at most a second a turn.
const TIMEOUTS: Timeouts = Timeouts {
    header: Secs(86_400),
    idle: Secs(86_400),
};

/// A worker's buffers and one connection's head buffer.
type Buffers = (Box<Scratch>, Box<Spills>, Box<[u8; HEAD_MAX]>);

thread_local! {
    static BUFFERS: std::cell::Cell<Option<Buffers>> = const {
        std::cell::Cell::new(None)
    };
}

/// Runs one real connection that receives `stream` as `plan` says, until it closes (the
/// client's end of stream follows the last byte) or asks to exit. Checks on the way that the
/// clock (which never reaches a timeout) closes nothing, and that a closed connection has given
/// its spill buffer back.
pub fn run(stream: &[u8], draining: bool, plan: &Plan) -> Outcome {
    let stamps = Stamps::at(784_111_777);
    let mut log = buffers::log();
    // Reused from the last run that gave every spill buffer back (allocating 3 MiB a run
    // would halve the executions per second).
    let (mut scratch, mut spills, mut head) = BUFFERS
        .take()
        .unwrap_or_else(|| (buffers::scratch(), buffers::spills(), buffers::head()));
    let requests = AtomicU64::new(0);
    let peer = Addr::v4([192, 0, 2, 1], 1234);
    let mut c = Conn::open(peer, Secs(0), TIMEOUTS.header);
    let mut io = Script::new();
    let (mut fed, mut now) = (0, 0);
    for turn in 0.. {
        // Every turn feeds, reads or sends a byte, or the connection is stuck.
        assert!(
            turn <= 4 * stream.len() + io.sent.len() + 64,
            "no end after {turn} turns"
        );
        let pick = |list: &[u8]| list[turn % list.len()] as usize;
        let n = match pick(plan.reads) {
            0 => stream.len() - fed,
            n => n.min(stream.len() - fed),
        };
        io.input.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        io.eof = fed == stream.len();
        io.room = match pick(plan.rooms) {
            0 => usize::MAX,
            n => n,
        };
        now += (pick(plan.steps) & 1) as u32;
        let mut env = Env {
            now: Secs(now),
            timeouts: &TIMEOUTS,
            stamps: &stamps,
            draining,
            health: &small_counters,
            requests: &requests,
            log: &mut log,
            logging: false,
            scratch: &mut scratch,
            spills: &mut spills,
            head: &mut head,
        };
        let mut bits = interest::READ | interest::WRITE;
        if io.eof {
            bits |= interest::READ_CLOSED;
        }
        let mut next = c.on_ready(&mut io, bits, &mut env);
        if next == Next::Wait {
            let lingering = c.phase() == Phase::Linger;
            next = c.on_timeout(&mut io, &mut env);
            // Only lingering (LINGER_SECS) ends within the run's time.
            assert!(
                next == Next::Wait || lingering,
                "closed by a clock that never reaches a timeout"
            );
        }
        if next == Next::Wait {
            continue;
        }
        let exit = next == Next::Exit;
        if !exit {
            assert_eq!(
                spills.in_use(),
                0,
                "a closed connection kept a spill buffer"
            );
            BUFFERS.set(Some((scratch, spills, head)));
        }
        return Outcome {
            sent: io.sent,
            exit,
        };
    }
    unreachable!()
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
    // `/healthcheck`'s body changes with every request: it alone forbids caching.
    let no_store = lines.get(4).copied() == Some(&b"Cache-Control: no-store"[..]);
    if no_store {
        want.push(b"Cache-Control: no-store".to_vec());
    }
    let length_line = lines
        .get(4 + no_store as usize)
        .copied()
        .unwrap_or_default();
    let length = length_line
        .strip_prefix(b"Content-Length: ")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("Content-Length: {:?}", shown()));
    // JSON is `/alwaysok`'s fixed body or `/healthcheck`'s counters, which are longer.
    let health =
        content_type == b"Content-Type: application/json" && length != http::ALWAYSOK_BODY.len();
    assert_eq!(no_store, health, "Cache-Control of {:?}", shown());
    want.push(format!("Content-Length: {length}").into_bytes());
    if code == 405 {
        want.push(b"Allow: GET, HEAD".to_vec());
    }
    if !x.keep_alive {
        want.push(b"Connection: close".to_vec());
    } else if x.version == 10 {
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
    if code >= 400 && code != 404 && code != 405 && code != 501 {
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
        assert!(x.version != http::NO_VERSION, "kept without a parsed version");
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
/// has arrived) is `METHOD SP TARGET SP HTTP/d.d` with a major version other than 1: the only
/// request that 505 answers (RFC 9110 §15.6.6; HTTP/1.2 is answered as 1.1); a malformed line
/// is 400.
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
        && v[5] != b'1'
}

/// The answer to HEAD has the head of the answer to the same request made with GET (RFC 9110
/// §9.3.2), including its Content-Length.
fn assert_head_matches_get(input: &[u8], ctx: &Context, x: &Exchange, head: &[u8]) {
    // `x.method` points into `input`: swap those four bytes for GET.
    let at = x.method.as_ptr() as usize - input.as_ptr() as usize;
    let mut get = [&input[..at], b"GET", &input[at + 4..]].concat();
    let mut out = [0u8; 2 * RESPONSE_MAX];
    let mut b = Buf::new(&mut out);
    let Some(y) = http::respond(&mut get, ctx, &mut b, &mut [0; http::JSON_MAX]) else {
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
    let h = ctx.health.health();
    let remaining = if ctx.draining {
        format!(",\"remaining_seconds\":{}", h.remaining_secs)
    } else {
        String::new()
    };
    format!(
        "{{\"status\":\"{}\",\"version\":\"{VERSION}\",\"uptime_seconds\":{},\"requests\":{},\"connections\":{}{remaining}}}",
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
