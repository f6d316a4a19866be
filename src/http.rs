//! The HTTP/1.1 layer: request bytes in, response bytes and a connection verdict out.
//!
//! Nothing here touches a socket. [`respond`] takes the bytes received so far on a connection
//! and either asks for more (`None`: the head is incomplete, keep the bytes and read on) or
//! answers the first request, telling how many input bytes it used and whether the connection
//! may carry another request. Contract: when `out` has at least [`RESPONSE_MAX`] bytes of room,
//! the whole response fits; nothing here panics on any input.

use crate::buf::Buf;
use crate::decimal;
use crate::time::HTTP_DATE_LEN;
use core::mem::MaybeUninit;

/// Largest request head accepted: the read buffer of a connection. Bigger heads get 431.
pub const HEAD_MAX: usize = 8192;
/// Upper bound on the size of any response written here (head and body).
pub const RESPONSE_MAX: usize = 512;
/// Header slots handed to httparse; more header lines than this get 431.
const MAX_HEADERS: usize = 64;

/// Body of `/`, as the original service answers it.
pub const INDEX_BODY: &[u8] = b"Index of tinyapi. These aren't the droids you're looking for\n";
/// Body of `/alwaysok`, byte-identical to the original so existing probes keep matching.
pub const ALWAYSOK_BODY: &[u8] = b"{ \"status\": \"OK\" }";
/// Body of the 500 answer to `/panic`, sent just before the process exits.
pub const PANIC_BODY: &[u8] = b"tinyapi is exiting: /panic was requested\n";

const TEXT: &[u8] = b"text/plain; charset=utf-8";
const JSON: &[u8] = b"application/json";
/// `/healthcheck`'s type, and the header that keeps caches from reusing a body that changes with
/// every request (no heuristic freshness, RFC 9111 §4.2.2).
const HEALTH_JSON: &[u8] = b"application/json\r\nCache-Control: no-store";

/// A response status; [`Status::code`] is its number.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub enum Status {
    /// 200 OK
    Ok,
    /// 400 Bad Request: unparseable or ambiguous request (RFC 9112 §3, §6.3).
    BadRequest,
    /// 404 Not Found
    NotFound,
    /// 405 Method Not Allowed, with `Allow` (RFC 9110 §15.5.6).
    MethodNotAllowed,
    /// 408 Request Timeout: the head did not arrive in time.
    RequestTimeout,
    /// 413 Content Too Large: no endpoint takes a request body.
    ContentTooLarge,
    /// 414 URI Too Long: the request line does not fit the read buffer (RFC 9112 §3).
    UriTooLong,
    /// 431 Request Header Fields Too Large (RFC 6585 §5).
    HeadersTooLarge,
    /// 500 Internal Server Error: the answer to `/panic`.
    InternalError,
    /// 501 Not Implemented: a method the server does not recognise (RFC 9110 §9.1).
    NotImplemented,
    /// 503 Service Unavailable: draining, or no room for another connection.
    Unavailable,
    /// 505 HTTP Version Not Supported.
    VersionNotSupported,
}

/// Each status's line after `HTTP/1.1 `, in the order of [`Status`]: the one table of codes and
/// reason phrases. Each ends in LF alone: the reason phrase and LF double as the plain-text
/// body of error responses; [`write`] sends the line with CRLF. One string and the offsets of
/// its lines.
// size: an array of slices would take 16 bytes of pointer and length a line.
const STATUS_LINES: &[u8] = b"200 OK\n\
    400 Bad Request\n\
    404 Not Found\n\
    405 Method Not Allowed\n\
    408 Request Timeout\n\
    413 Content Too Large\n\
    414 URI Too Long\n\
    431 Request Header Fields Too Large\n\
    500 Internal Server Error\n\
    501 Not Implemented\n\
    503 Service Unavailable\n\
    505 HTTP Version Not Supported\n";

/// Where each line of [`STATUS_LINES`] starts, and where the last one ends.
const STATUS_STARTS: [u16; 13] = {
    let mut starts = [0u16; 13];
    let (mut at, mut n) = (0, 1);
    while at < STATUS_LINES.len() {
        if STATUS_LINES[at] == b'\n' {
            starts[n] = at as u16 + 1;
            n += 1;
        }
        at += 1;
    }
    starts
};

impl Status {
    /// The numeric code, read from the status line.
    pub fn code(self) -> u16 {
        let d = self.line();
        (d[0] - b'0') as u16 * 100 + (d[1] - b'0') as u16 * 10 + (d[2] - b'0') as u16
    }

    /// The status line after `HTTP/1.1 `, ending in LF alone (see [`STATUS_LINES`]).
    fn line(self) -> &'static [u8] {
        let i = self as usize;
        &STATUS_LINES[STATUS_STARTS[i] as usize..STATUS_STARTS[i + 1] as usize]
    }

    /// The code and a space, as text (`"404 "`).
    pub fn code_text(self) -> &'static [u8] {
        &self.line()[..4]
    }

    /// The reason phrase followed by a newline: the plain-text body of error responses.
    fn reason_line(self) -> &'static [u8] {
        &self.line()[4..]
    }
}

/// Server state reported by `/healthcheck`.
pub struct Health {
    /// Seconds since start-up.
    pub uptime_secs: u64,
    /// Requests answered so far, all workers together.
    pub requests: u64,
    /// Connections open now, all workers together.
    pub connections: u64,
    /// Seconds left of the shutdown delay (0 when there is none, or it is over).
    pub remaining_secs: u64,
}

/// What `/healthcheck` reads the server's state from: the shared counters, or in tests any
/// function that returns a [`Health`].
pub trait ReadHealth {
    /// The state now.
    fn health(&self) -> Health;
}

impl<F: Fn() -> Health> ReadHealth for F {
    fn health(&self) -> Health {
        self()
    }
}

/// What a response depends on besides the request.
pub struct Context<'a> {
    /// The current `Date` value.
    pub date: &'a [u8; HTTP_DATE_LEN],
    /// Shutdown has begun: answer, then close; `/healthcheck` says 503 "draining".
    pub draining: bool,
    /// Reads the counters; asked only for `/healthcheck`.
    pub health: &'a dyn ReadHealth,
}

/// One answered request.
#[cfg_attr(test, derive(Debug))]
pub struct Exchange<'a> {
    /// Input bytes used (the request head); the next request starts there.
    pub consumed: usize,
    /// The status sent.
    pub status: Status,
    /// Body bytes sent (0 for HEAD).
    pub body_len: usize,
    /// The connection may carry another request; otherwise close it after this response.
    pub keep_alive: bool,
    /// `/panic` was requested: send this response, then end the process with status 1.
    pub exit: bool,
    /// The input as `respond` read it (with a later HTTP/1 minor version rewritten to 1.1):
    /// `method` and `target` point into it.
    pub input: &'a [u8],
    /// The request method (what httparse read of it, when the request line is malformed).
    pub method: &'a [u8],
    /// The request target as sent, empty when unparsed.
    pub target: &'a [u8],
    /// The request line's HTTP version as received, ten times the major plus the minor (11 is
    /// HTTP/1.1, 20 HTTP/2.0); [`NO_VERSION`] when the line could not be read to its version.
    pub version: u8,
}

#[derive(Clone, Copy)]
enum Route {
    Index,
    AlwaysOk,
    Healthcheck,
    Panic,
}

/// [`Exchange::version`] of a request line that could not be read to its version.
pub const NO_VERSION: u8 = u8::MAX;

/// What the HTTP layer makes of the input so far.
#[derive(Clone, Copy)]
enum Verdict {
    /// A well-formed request for this endpoint.
    Serve(Route),
    /// An answer with this status instead.
    Refuse(Status),
    /// The head has not ended: keep the bytes and read on.
    Incomplete,
}

/// Everything [`judge`] decides, in one value.
#[derive(Clone, Copy)]
struct Judgement {
    verdict: Verdict,
    /// Input bytes the request used: its head, or all of the input when the head cannot be
    /// read to its end.
    consumed: usize,
    /// The request lets the connection persist (RFC 9112 §9.3); the answer may still close it.
    keep_alive: bool,
    /// The version as received (see [`Exchange::version`]).
    version: u8,
}

/// The head of a response: what [`write`] says besides the date and the body's length.
struct ResponseHead<'a> {
    status: Status,
    /// False: `Connection: close`.
    keep_alive: bool,
    /// The request's version (see [`Exchange::version`]): HTTP/1.0 is told `keep-alive`.
    version: u8,
    /// The `Content-Type` value, possibly followed by more header lines.
    content_type: &'a [u8],
}

/// The endpoints by path. `*` is the server itself, the target of OPTIONS and CONNECT only
/// (see `path_of`): it answers them 405, and never reaches `Index`.
const ROUTES: [(&[u8], Route); 5] = [
    (b"*", Route::Index),
    (b"/", Route::Index),
    (b"/alwaysok", Route::AlwaysOk),
    (b"/healthcheck", Route::Healthcheck),
    (b"/panic", Route::Panic),
];

/// Answers the first request in `input` into `out`, or returns `None` when its head is still
/// incomplete. See the module documentation for the contract.
///
/// A request line of a later HTTP/1 minor version (`HTTP/1.2`) is rewritten in `input` to
/// `HTTP/1.1`, the version it is answered in (RFC 9110 §2.5, §6.2): httparse knows only 1.0
/// and 1.1. The rewrite waits for the end of the head, so that input kept for another read
/// still says the version as received.
pub fn respond<'a>(
    input: &'a mut [u8],
    ctx: &Context,
    out: &mut Buf,
    json: &mut [u8; JSON_MAX],
) -> Option<Exchange<'a>> {
    let newer = newer_minor(input);
    let input: &'a [u8] = input;
    // Header slots httparse fills itself: nothing to zero (2 KiB) for every request.
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(input, &mut headers);
    let j = judge(parsed, &req, input, ctx.draining, newer);
    let (status, keep_alive, content_type, body) = match j.verdict {
        Verdict::Incomplete => return None,
        Verdict::Serve(Route::Index) => (Status::Ok, j.keep_alive, TEXT, INDEX_BODY),
        Verdict::Serve(Route::AlwaysOk) => (Status::Ok, j.keep_alive, JSON, ALWAYSOK_BODY),
        Verdict::Serve(Route::Healthcheck) => {
            let status = if ctx.draining {
                Status::Unavailable
            } else {
                Status::Ok
            };
            (status, j.keep_alive, HEALTH_JSON, health_json(json, ctx))
        }
        Verdict::Serve(Route::Panic) => (Status::InternalError, false, TEXT, PANIC_BODY),
        // Only the answers to a well-framed request keep the connection; every other error
        // closes.
        Verdict::Refuse(status) => (
            status,
            j.keep_alive
                && matches!(
                    status,
                    Status::NotFound | Status::MethodNotAllowed | Status::NotImplemented
                ),
            TEXT,
            status.reason_line(),
        ),
    };
    let method = req.method.unwrap_or("").as_bytes();
    let head = ResponseHead {
        status,
        keep_alive,
        version: j.version,
        content_type,
    };
    Some(Exchange {
        consumed: j.consumed,
        status,
        body_len: write(out, ctx.date, &head, body, method == b"HEAD"),
        keep_alive,
        exit: matches!(j.verdict, Verdict::Serve(Route::Panic)),
        input,
        method,
        target: req.path.unwrap_or("").as_bytes(),
        version: j.version,
    })
}

/// Decides what to answer (see [`Judgement`]). `newer` is the minor version `newer_minor`
/// rewrote to 1.
fn judge(
    parsed: httparse::Result<usize>,
    req: &httparse::Request,
    input: &[u8],
    draining: bool,
    newer: Option<u8>,
) -> Judgement {
    let version = req
        .version
        .map_or(NO_VERSION, |minor| 10 + newer.unwrap_or(minor));
    let Ok(httparse::Status::Complete(n)) = parsed else {
        let (verdict, line_version) = unfinished(parsed, req, input);
        return Judgement {
            verdict,
            consumed: input.len(),
            keep_alive: false,
            version: line_version.unwrap_or(version),
        };
    };
    let (verdict, keep_alive) = framed(req, &input[..n], draining);
    Judgement {
        verdict,
        consumed: n,
        keep_alive,
        version,
    }
}

/// What to make of input whose head httparse has not read to its end: wait for more, or
/// refuse it. With a 505, the version its request line gives.
// size: out of line, 40 to 80 bytes smaller than inlined into `respond` (x86-64, arm64).
#[inline(never)]
fn unfinished(
    parsed: httparse::Result<usize>,
    req: &httparse::Request,
    input: &[u8],
) -> (Verdict, Option<u8>) {
    let status = match parsed {
        Ok(httparse::Status::Partial) if input.len() < HEAD_MAX => {
            return (Verdict::Incomplete, None)
        }
        // The buffer is full and the head has not ended: 414 while the request line has not
        // ended either (RFC 9112 §3), 431 after it.
        Ok(httparse::Status::Partial) => match req.version {
            None => Status::UriTooLong,
            Some(_) => Status::HeadersTooLarge,
        },
        Err(httparse::Error::Version) => match request_line(input) {
            // httparse stops at the first wrong byte: wait for the whole line before telling
            // a version we do not speak (505) from a malformed line (400).
            None if input.len() < HEAD_MAX => return (Verdict::Incomplete, None),
            Some(line) => match version_of(line) {
                // HTTP/1.2 to 1.9 not yet rewritten: its head has not ended (see `newer_minor`).
                Some(v) if v / 10 == 1 => return (Verdict::Incomplete, None),
                Some(v) => return (Verdict::Refuse(Status::VersionNotSupported), Some(v)),
                None => Status::BadRequest,
            },
            None => Status::BadRequest,
        },
        Err(httparse::Error::TooManyHeaders) => Status::HeadersTooLarge,
        Err(_) | Ok(httparse::Status::Complete(_)) => Status::BadRequest,
    };
    (Verdict::Refuse(status), None)
}

/// What to answer to the complete request head `head`, and whether the connection may persist
/// after it.
fn framed(req: &httparse::Request, head: &[u8], draining: bool) -> (Verdict, bool) {
    let refuse = |status| (Verdict::Refuse(status), false);
    let minor = req.version.unwrap_or(1);

    // Header facts that decide framing and persistence.
    let (mut hosts, mut lengths, mut transfer_coded) = (0, 0, false);
    // Transfer codings named, and whether `chunked` is the last of them (RFC 9112 §6.1).
    let (mut chunked, mut chunked_last) = (0, false);
    let (mut length, mut close, mut keep) = (Some(0), false, false);
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if is(name, b"host") {
            // Host = uri-host [ ":" port ] (RFC 9112 §3.2): an invalid value is a 400 like a
            // missing or repeated Host. It may be empty.
            hosts += 1 + !authority(h.value, false) as u32;
        } else if is(name, b"content-length") {
            lengths += 1;
            length = decimal::parse(h.value, u64::MAX);
        } else if is(name, b"transfer-encoding") {
            transfer_coded = true;
        }
        let connection = is(name, b"connection");
        if connection || is(name, b"transfer-encoding") {
            // A list; empty elements are allowed and ignored (RFC 9110 §5.6.1).
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if connection {
                    close |= is(token, b"close");
                    keep |= is(token, b"keep-alive");
                } else if !token.is_empty() {
                    chunked_last = is(token, b"chunked");
                    chunked += chunked_last as u32;
                }
            }
        }
    }

    // RFC 9112 §2.2: a bare CR or LF where CRLF belongs is invalid; reject rather than guess,
    // so no intermediary can read the head differently (request smuggling).
    // RFC 9112 §3.2: HTTP/1.1 needs exactly one Host; more than one is always an error.
    // RFC 9112 §6.3: Content-Length with Transfer-Encoding, several or invalid lengths, or
    // transfer codings that do not end in one `chunked` leave the body's end unknown: 400 and
    // close.
    if !crlf_only(head)
        || hosts > 1
        || (minor == 1 && hosts == 0)
        || lengths > 1
        || (transfer_coded && (lengths > 0 || chunked != 1 || !chunked_last))
        || length.is_none()
    {
        return refuse(Status::BadRequest);
    }
    if transfer_coded || length != Some(0) {
        return refuse(Status::ContentTooLarge);
    }

    let keep_alive = !draining && !close && (minor == 1 || keep);
    let refuse = |status| (Verdict::Refuse(status), keep_alive);
    let method = method_index(req.method.unwrap_or("").as_bytes());
    let Some(path) = path_of(req.path.unwrap_or("").as_bytes(), method) else {
        return refuse(Status::BadRequest);
    };
    // RFC 9110 §9.1: a method the server does not recognise is 501; one HTTP defines that
    // these resources do not allow is 405 (below).
    let Some(method) = method else {
        return refuse(Status::NotImplemented);
    };
    // A table and one comparison loop: a `match` on the strings compiles to four.
    let Some(&(_, route)) = ROUTES.iter().find(|(p, _)| *p == path) else {
        return refuse(Status::NotFound);
    };
    if method > HEAD {
        return refuse(Status::MethodNotAllowed);
    }
    (Verdict::Serve(route), keep_alive)
}

/// The methods HTTP defines (RFC 9110 §9, and PATCH, RFC 5789), each followed by a space: GET
/// and HEAD are served, the others get 405; any other method gets 501.
const METHODS: &[u8] = b"GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH ";

/// Indexes of [`METHODS`] that requests are checked against.
const HEAD: usize = 1;
const CONNECT: usize = 5;
const OPTIONS: usize = 6;

/// The index of `method` in [`METHODS`], or `None` for a method HTTP does not define.
fn method_index(method: &[u8]) -> Option<usize> {
    let mut rest = METHODS;
    let mut i = 0;
    while let Some(end) = rest.iter().position(|&b| b == b' ') {
        if rest[..end] == *method {
            return Some(i);
        }
        rest = &rest[end + 1..];
        i += 1;
    }
    None
}

/// Writes a complete `status` response that closes the connection, for answers given outside a
/// request (timeouts, overload). Returns the body length.
pub fn write_error(out: &mut Buf, date: &[u8; HTTP_DATE_LEN], status: Status) -> usize {
    let head = ResponseHead {
        status,
        keep_alive: false,
        version: NO_VERSION,
        content_type: TEXT,
    };
    write(out, date, &head, status.reason_line(), false)
}

/// Writes the head and (unless `head_only`) the body; returns the body bytes written.
fn write(
    out: &mut Buf,
    date: &[u8; HTTP_DATE_LEN],
    head: &ResponseHead,
    body: &[u8],
    head_only: bool,
) -> usize {
    let line = head.status.line();
    out.push(b"HTTP/1.1 ");
    out.push(&line[..line.len() - 1]);
    out.push(b"\r\nServer: tinyapi\r\nDate: ");
    out.push(date);
    out.push(b"\r\nContent-Type: ");
    out.push(head.content_type);
    out.push(b"\r\nContent-Length: ");
    out.num(body.len() as u64);
    if head.status == Status::MethodNotAllowed {
        out.push(b"\r\nAllow: GET, HEAD");
    }
    if !head.keep_alive {
        out.push(b"\r\nConnection: close");
    } else if head.version == 10 {
        // HTTP/1.0 persists only when both sides say so (RFC 9112 §9.3).
        out.push(b"\r\nConnection: keep-alive");
    }
    out.push(b"\r\n\r\n");
    if head_only {
        return 0;
    }
    out.push(body);
    body.len()
}

/// Room for the longest `/healthcheck` body (every counter at `u64::MAX`).
pub const JSON_MAX: usize = 192;

/// Writes the `/healthcheck` body into `json`; returns it. The head, written first, gives its
/// length, so the body is made before the head, in a buffer of its own.
// size: writing it as a list of parts, its numbers formatted apart and their lengths summed,
// measured 456 bytes more on x86-64.
fn health_json<'b>(json: &'b mut [u8; JSON_MAX], ctx: &Context) -> &'b [u8] {
    let h = ctx.health.health();
    let mut b = Buf::new(json);
    b.push(if ctx.draining {
        b"{\"status\":\"draining\""
    } else {
        b"{\"status\":\"ok\""
    });
    b.push(b",\"version\":\"");
    b.push(crate::VERSION.as_bytes());
    b.push(b"\",\"uptime_seconds\":");
    b.num(h.uptime_secs);
    b.push(b",\"requests\":");
    b.num(h.requests);
    b.push(b",\"connections\":");
    b.num(h.connections);
    if ctx.draining {
        b.push(b",\"remaining_seconds\":");
        b.num(h.remaining_secs);
    }
    b.byte(b'}');
    let n = b.len();
    &json[..n]
}

/// Byte classes of RFC 3986, one bit each (a mask of [`CLASSES`]).
/// reg-name (§3.2.2): unreserved, pct-encoded and sub-delims.
const REG_NAME: u8 = 1;
/// An IP-literal between brackets: an IPv6 address, IPv4-mapped too (§3.2.2). IPvFuture
/// (`[v1.x]`), which nothing uses, is refused.
const IP_LITERAL: u8 = 2;
/// The path of origin-form and absolute-form: segments of pchar (§3.3).
const PATH: u8 = 4;
/// The query: pchar, `/` and `?` (§3.4). No `#`: a request-target has no fragment.
const QUERY: u8 = 8;
/// A port's digits (§3.2.3).
const DIGIT: u8 = 16;

/// The classes of each visible ASCII byte from `!`, built at compile time: no other byte is
/// in any class.
const CLASSES: [u8; 94] = {
    let mut t = [0u8; 94];
    let mut b = 0;
    while b < 94 {
        let c = b as u8 + b'!';
        let alnum = c.is_ascii_alphanumeric();
        let mut i = 0;
        let (mut sub_delim, mut pchar_extra) = (false, false);
        while i < 17 {
            // unreserved marks and sub-delims, then pchar's own `:` and `@`
            let marks = b"-._~!$&'()*+,;=:@";
            sub_delim |= i < 15 && marks[i] == c;
            pchar_extra |= i >= 15 && marks[i] == c;
            i += 1;
        }
        let reg = alnum || sub_delim || c == b'%';
        let path = reg || pchar_extra || c == b'/';
        t[b] = (reg as u8 * REG_NAME)
            | ((c.is_ascii_hexdigit() || c == b':' || c == b'.') as u8 * IP_LITERAL)
            | (path as u8 * PATH)
            | ((path || c == b'?') as u8 * QUERY)
            | (c.is_ascii_digit() as u8 * DIGIT);
        b += 1;
    }
    t
};

/// True when every byte of `s` is in the classes `mask`, and every `%` starts a `%HH` escape.
#[inline(never)]
fn within(s: &[u8], mask: u8) -> bool {
    let hex = |i: usize| s.get(i).is_some_and(u8::is_ascii_hexdigit);
    s.iter().enumerate().all(|(i, &b)| {
        CLASSES
            .get(b.wrapping_sub(b'!') as usize)
            .is_some_and(|c| c & mask != 0)
            && (b != b'%' || hex(i + 1) && hex(i + 2))
    })
}

/// True when `s` is `uri-host [ ":" port ]` (RFC 3986 §3.2, RFC 9110 §4.2.1): the authority of
/// an http(s) URI (no userinfo, `need_host`) or a `Host` value (which may be empty).
fn authority(s: &[u8], need_host: bool) -> bool {
    // The port's `:` is the first after an IP-literal's `]`, if any.
    let close = s.iter().rposition(|&b| b == b']').map_or(0, |i| i + 1);
    let colon = s[close..]
        .iter()
        .position(|&b| b == b':')
        .map_or(s.len(), |i| close + i);
    let (host, port) = s.split_at(colon);
    let literal = close == host.len()
        && host.len() > 2
        && host[0] == b'['
        && within(&host[1..close - 1], IP_LITERAL);
    (literal || within(host, REG_NAME) && (!host.is_empty() || !need_host))
        && port.get(1..).is_none_or(|digits| within(digits, DIGIT))
}

/// The path a request target routes by, or `None` when the target is not valid for `method`
/// (an index of [`METHODS`])
/// (RFC 9112 §3.2): origin-form, or absolute-form with an http(s) scheme and a host, routed by
/// its path (§3.2.2); `*` only for OPTIONS and authority-form only for CONNECT, both of which
/// route to `*`. The query is not part of routing.
fn path_of(target: &[u8], method: Option<usize>) -> Option<&[u8]> {
    let connect = method == Some(CONNECT);
    if connect || target == b"*" {
        let valid = if connect {
            authority(target, true)
        } else {
            method == Some(OPTIONS)
        };
        return valid.then_some(b"*");
    }
    let mut path = target;
    if !target.starts_with(b"/") {
        // absolute-form: `http` or `https`, `://`, a host, then a path, empty or from `/`.
        let (scheme, rest) = target.split_at(target.iter().position(|&b| b == b':')?);
        let rest = rest.strip_prefix(b"://")?;
        let end = rest
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(rest.len());
        if !(is(scheme, b"http") || is(scheme, b"https")) || !authority(&rest[..end], true) {
            return None;
        }
        path = &rest[end..];
    }
    // The path has no `?`: checked as part of the query, it is checked as a path.
    if !within(path, QUERY) {
        return None;
    }
    let path = &path[..path.iter().position(|&b| b == b'?').unwrap_or(path.len())];
    Some(if path.is_empty() { b"/" } else { path })
}

/// ASCII case-insensitive equality with `lower`, which is lowercase, by a plain loop.
// size: core's unrolled version costs 300 bytes, and these strings are short.
fn is(s: &[u8], lower: &[u8]) -> bool {
    s.len() == lower.len()
        && s.iter()
            .zip(lower)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
}

/// True when every CR is followed by LF and every LF follows a CR.
fn crlf_only(head: &[u8]) -> bool {
    let mut prev = 0;
    for &b in head {
        if (b == b'\n') != (prev == b'\r') {
            return false;
        }
        prev = b;
    }
    true
}

/// The length of the empty lines (CRLF) at the start of `input`, which a server ignores before
/// a request line (RFC 9112 §2.2). A bare LF is not one: like a bare LF anywhere in a head, it
/// gets 400 (`crlf_only`), however the bytes are split into reads.
pub fn empty_lines(input: &[u8]) -> usize {
    let mut n = 0;
    while input.get(n) == Some(&b'\r') && input.get(n + 1) == Some(&b'\n') {
        n += 2;
    }
    n
}

/// The request line of `input` (after empty lines, without its line end); `None` while it has
/// not ended.
fn request_line(input: &[u8]) -> Option<&[u8]> {
    let rest = &input[empty_lines(input)..];
    Some(&rest[..rest.iter().position(|&b| b == b'\r' || b == b'\n')?])
}

/// The version at the end of a request line `METHOD TARGET HTTP/x.y`, as in
/// [`Exchange::version`]; `None` when the line has another shape.
fn version_of(line: &[u8]) -> Option<u8> {
    // Exactly three words: method, target, version.
    let spaces = line.iter().filter(|&&b| b == b' ').count();
    let v = &line[line.iter().rposition(|&b| b == b' ').map_or(0, |i| i + 1)..];
    let like = spaces == 2
        && v.len() == 8
        && v.starts_with(b"HTTP/")
        && v[5].is_ascii_digit()
        && v[6] == b'.'
        && v[7].is_ascii_digit();
    like.then(|| (v[5] - b'0') * 10 + v[7] - b'0')
}

/// For a request line ending in `HTTP/1.2` to `HTTP/1.9`: its minor version, once the line is
/// rewritten to `HTTP/1.1`. The rewrite waits until the head has ended (or filled the buffer);
/// until then httparse refuses the version, and `judge` waits too.
fn newer_minor(input: &mut [u8]) -> Option<u8> {
    let line = request_line(input)?;
    // Where the line ends in `input`.
    let end = line.as_ptr() as usize - input.as_ptr() as usize + line.len();
    let minor = version_of(line).filter(|v| (12..=19).contains(v))? - 10;
    // The head ends at the first empty line after the request line: two LFs with nothing but
    // CR between them (a stray CR is refused later, once the head has ended).
    let mut prev = 0;
    let ended = input[end..].iter().any(|&b| {
        let blank = b == b'\n' && prev == b'\n';
        if b != b'\r' {
            prev = b;
        }
        blank
    });
    if !ended && input.len() < HEAD_MAX {
        return None;
    }
    input[end - 1] = b'1';
    Some(minor)
}

#[cfg(test)]
mod test {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    const DATE: &[u8; 29] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn health() -> Health {
        Health {
            uptime_secs: 7,
            requests: 42,
            connections: 3,
            remaining_secs: 5,
        }
    }

    /// What a response depends on while the server serves (not draining).
    fn serving() -> Context<'static> {
        Context {
            date: DATE,
            draining: false,
            health: &health,
        }
    }

    /// Answers every complete request of `input`; returns the output and the exchanges.
    fn run(input: &[u8], draining: bool) -> (String, Vec<(Status, bool, usize)>) {
        let ctx = Context {
            draining,
            ..serving()
        };
        let mut out = std::vec![0u8; 64 * 1024];
        let mut b = Buf::new(&mut out);
        let mut pos = 0;
        let mut seen = Vec::new();
        let mut input = input.to_vec();
        let len = input.len();
        while let Some(x) = respond(&mut input[pos..], &ctx, &mut b, &mut [0; JSON_MAX]) {
            assert!(x.consumed > 0 && pos + x.consumed <= len);
            pos += x.consumed;
            seen.push((x.status, x.keep_alive, x.consumed));
            if !x.keep_alive {
                break;
            }
        }
        (String::from_utf8(b.as_bytes().to_vec()).unwrap(), seen)
    }

    fn one(input: &str) -> String {
        run(input.as_bytes(), false).0
    }

    #[track_caller]
    fn status_of(input: &[u8]) -> Status {
        let (_, seen) = run(input, false);
        assert_eq!(
            seen.len(),
            1,
            "expected one answer to {:?}",
            String::from_utf8_lossy(input)
        );
        seen[0].0
    }

    fn expect(status: &str, ctype: &str, body: &str, extra: &str) -> String {
        std::format!(
            "HTTP/1.1 {status}\r\nServer: tinyapi\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: {ctype}\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        )
    }

    const T: &str = "text/plain; charset=utf-8";

    #[test]
    fn index() {
        let want = expect(
            "200 OK",
            T,
            "Index of tinyapi. These aren't the droids you're looking for\n",
            "",
        );
        assert_eq!(one("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), want);
    }

    #[test]
    fn alwaysok_matches_the_original_body() {
        let want = expect("200 OK", "application/json", "{ \"status\": \"OK\" }", "");
        assert_eq!(one("GET /alwaysok HTTP/1.1\r\nHost: x\r\n\r\n"), want);
        assert_eq!(
            one("GET /alwaysok?probe=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            want
        );
    }

    #[test]
    fn healthcheck_reports_counters() {
        let body = std::format!(
            "{{\"status\":\"ok\",\"version\":\"{}\",\"uptime_seconds\":7,\"requests\":42,\"connections\":3}}",
            crate::VERSION
        );
        assert_eq!(
            one("GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n"),
            expect("200 OK", HEALTH_TYPE, &body, "")
        );
    }

    #[test]
    fn healthcheck_while_draining_is_503_and_closes() {
        let body = std::format!(
            "{{\"status\":\"draining\",\"version\":\"{}\",\"uptime_seconds\":7,\"requests\":42,\"connections\":3,\"remaining_seconds\":5}}",
            crate::VERSION
        );
        let req = b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n";
        let (out, seen) = run(req, true);
        let want = expect(
            "503 Service Unavailable",
            HEALTH_TYPE,
            &body,
            "Connection: close\r\n",
        );
        assert_eq!(out, want);
        assert_eq!(seen, [(Status::Unavailable, false, req.len())]);
    }

    #[test]
    fn panic_answers_500_closes_and_asks_to_exit() {
        let ctx = serving();
        let mut out = [0u8; RESPONSE_MAX];
        let mut b = Buf::new(&mut out);
        let mut req = b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        let x = respond(&mut req, &ctx, &mut b, &mut [0; JSON_MAX]).unwrap();
        assert!(x.exit && !x.keep_alive);
        let body = "tinyapi is exiting: /panic was requested\n";
        let want = expect(
            "500 Internal Server Error",
            T,
            body,
            "Connection: close\r\n",
        );
        assert_eq!(b.as_bytes(), want.as_bytes());
    }

    #[test]
    fn head_has_the_same_headers_and_no_body() {
        let get = one("GET /alwaysok HTTP/1.1\r\nHost: x\r\n\r\n");
        let head = one("HEAD /alwaysok HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(head, get.strip_suffix("{ \"status\": \"OK\" }").unwrap());
    }

    #[test]
    fn unknown_path_is_404_and_keeps_the_connection() {
        let req = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
        let (out, seen) = run(req, false);
        assert_eq!(out, expect("404 Not Found", T, "Not Found\n", ""));
        assert_eq!(seen, [(Status::NotFound, true, req.len())]);
        assert_eq!(
            status_of(b"GET /alwaysok/extra HTTP/1.1\r\nHost: x\r\n\r\n"),
            Status::NotFound
        );
    }

    #[test]
    fn other_methods_are_405_with_allow() {
        let want = expect(
            "405 Method Not Allowed",
            T,
            "Method Not Allowed\n",
            "Allow: GET, HEAD\r\n",
        );
        for m in ["POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"] {
            assert_eq!(
                one(&std::format!("{m} /alwaysok HTTP/1.1\r\nHost: x\r\n\r\n")),
                want
            );
        }
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let req = "GET /alwaysok HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n";
        let (out, seen) = run(req.as_bytes(), false);
        let want = std::format!(
            "{}{}{}",
            expect("200 OK", "application/json", "{ \"status\": \"OK\" }", ""),
            expect(
                "200 OK",
                T,
                "Index of tinyapi. These aren't the droids you're looking for\n",
                ""
            ),
            // HEAD: the same head, Content-Length included, and no body (RFC 9110 §9.3.2).
            expect("404 Not Found", T, "Not Found\n", "")
                .strip_suffix("Not Found\n")
                .unwrap(),
        );
        assert_eq!(out, want);
        assert_eq!(seen.iter().map(|s| s.2).sum::<usize>(), req.len());
    }

    #[test]
    fn every_prefix_of_a_valid_request_is_incomplete() {
        let ctx = serving();
        for req in [
            &b"GET /alwaysok HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n"[..],
            b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"GET http://h/healthcheck?x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        ] {
            for i in 0..req.len() {
                let mut out = [0u8; RESPONSE_MAX];
                let mut b = Buf::new(&mut out);
                assert!(
                    respond(&mut req.to_vec()[..i], &ctx, &mut b, &mut [0; JSON_MAX]).is_none(),
                    "prefix {i}"
                );
                assert_eq!(b.len(), 0);
            }
            let mut out = [0u8; RESPONSE_MAX];
            let mut req = req.to_vec();
            let x = respond(&mut req, &ctx, &mut Buf::new(&mut out), &mut [0; JSON_MAX]).unwrap();
            assert_eq!((x.status, x.consumed), (Status::Ok, req.len()));
        }
    }

    #[test]
    fn persistence_follows_version_and_connection() {
        let cases: [(&str, bool, &str); 6] = [
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", true, ""),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                false,
                "Connection: close\r\n",
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nConnection: TE, Close\r\n\r\n",
                false,
                "Connection: close\r\n",
            ),
            ("GET / HTTP/1.0\r\n\r\n", false, "Connection: close\r\n"),
            (
                "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                true,
                "Connection: keep-alive\r\n",
            ),
            (
                "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
                false,
                "Connection: close\r\n",
            ),
        ];
        for (req, keep, header) in cases {
            let (out, seen) = run(req.as_bytes(), false);
            assert_eq!(seen[0].1, keep, "{req}");
            let want = expect(
                "200 OK",
                T,
                "Index of tinyapi. These aren't the droids you're looking for\n",
                header,
            );
            assert_eq!(out, want, "{req}");
        }
        // Draining: every answer closes.
        assert!(!run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true).1[0].1);
    }

    #[test]
    fn absolute_form_routes_by_path() {
        for t in [
            "http://example/alwaysok",
            "HTTP://h:80/alwaysok?q",
            "https://h/alwaysok",
        ] {
            assert_eq!(
                status_of(std::format!("GET {t} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes()),
                Status::Ok,
                "{t}"
            );
        }
        assert_eq!(
            status_of(b"GET http://h HTTP/1.1\r\nHost: h\r\n\r\n"),
            Status::Ok
        );
        assert_eq!(
            status_of(b"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n"),
            Status::NotFound
        );
    }

    #[test]
    fn malformed_requests_are_400_and_close() {
        let bad: &[&[u8]] = &[
            b"GARBAGE\r\n\r\n",
            b"GET /\r\n\r\n",                                   // HTTP/0.9
            b"GET / HTTP/1.1\r\n\r\n",                          // no Host
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",    // two Hosts
            b"GET / HTTP/1.1\nHost: x\n\n",                     // bare LF
            b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n",         // bare CR
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", // obs-fold
            b"GET / HTTP/1.1\r\nHost: x\r\nX\0: a\r\n\r\n",     // NUL in name
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n",    // NUL in value
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",  // control byte
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",              // space before colon
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",              // double space
            b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n",         // DEL in target
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"GET / FTP/1.1\r\nHost: x\r\n\r\n",
            b"GET alwaysok HTTP/1.1\r\nHost: x\r\n\r\n", // no leading '/'
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",      // invalid Host
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        ];
        for req in bad {
            let (out, seen) = run(req, false);
            assert_eq!(seen.len(), 1, "{:?}", String::from_utf8_lossy(req));
            assert_eq!(
                seen[0].0,
                Status::BadRequest,
                "{:?}",
                String::from_utf8_lossy(req)
            );
            assert!(!seen[0].1);
            assert_eq!(
                out,
                expect(
                    "400 Bad Request",
                    T,
                    "Bad Request\n",
                    "Connection: close\r\n"
                )
            );
        }
    }

    #[test]
    fn request_bodies_are_refused() {
        for req in [
            &b"POST /alwaysok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"[..],
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ] {
            let (out, seen) = run(req, false);
            assert_eq!(seen[0].0, Status::ContentTooLarge);
            assert!(out.ends_with("Connection: close\r\n\r\nContent Too Large\n"));
        }
        assert_eq!(
            status_of(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
            Status::Ok
        );
    }

    /// `/healthcheck`'s Content-Type line and the one after it.
    const HEALTH_TYPE: &str = "application/json\r\nCache-Control: no-store";

    #[test]
    fn later_http_1_minor_versions_are_answered_as_1_1() {
        for minor in 2..=9 {
            let req = std::format!(
                "\r\nGET /alwaysok HTTP/1.{minor}\r\nHost: x\r\n\r\nGET / HTTP/1.{minor}\r\nHost: x\r\n\r\n"
            );
            let (out, seen) = run(req.as_bytes(), false);
            let want = expect("200 OK", "application/json", "{ \"status\": \"OK\" }", "")
                + &expect(
                    "200 OK",
                    "text/plain; charset=utf-8",
                    std::str::from_utf8(INDEX_BODY).unwrap(),
                    "",
                );
            assert_eq!(out, want, "HTTP/1.{minor}");
            assert_eq!(seen.len(), 2, "kept alive like HTTP/1.1");
            let mut input = req.into_bytes();
            let mut out = [0u8; RESPONSE_MAX];
            let ctx = Context {
                date: DATE,
                draining: false,
                health: &health,
            };
            let x = respond(
                &mut input,
                &ctx,
                &mut Buf::new(&mut out),
                &mut [0; JSON_MAX],
            )
            .unwrap();
            assert_eq!(x.version, 10 + minor, "the version as received");
        }
        // Only the request line's own version counts.
        assert_eq!(
            status_of(b"GET /HTTP/1.2 HTTP/2.0\r\nHost: x\r\n\r\n"),
            Status::VersionNotSupported
        );
    }

    #[test]
    fn unsupported_versions_are_505() {
        for v in ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/2.2"] {
            let req = std::format!("GET / {v}\r\nHost: x\r\n\r\n");
            assert_eq!(
                status_of(req.as_bytes()),
                Status::VersionNotSupported,
                "{v}"
            );
        }
        assert_eq!(
            status_of(b"GET / HTTP/1.10\r\nHost: x\r\n\r\n"),
            Status::BadRequest
        );
    }

    #[test]
    fn oversized_heads_are_431_and_overlong_targets_414() {
        let mut req = std::vec::Vec::from(&b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "[..]);
        req.resize(HEAD_MAX, b'a');
        assert_eq!(status_of(&req), Status::HeadersTooLarge);
        // The request line does not end within the buffer (RFC 9112 §3).
        let mut req = std::vec::Vec::from(&b"\r\nGET /"[..]);
        req.resize(HEAD_MAX, b'a');
        assert_eq!(status_of(&req), Status::UriTooLong);
        let mut req = std::string::String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..MAX_HEADERS {
            req.push_str(&std::format!("X-{i}: v\r\n"));
        }
        req.push_str("\r\n");
        assert_eq!(status_of(req.as_bytes()), Status::HeadersTooLarge);
        // Just under the limit is fine.
        let mut req = std::vec::Vec::from(&b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "[..]);
        req.resize(HEAD_MAX - 4, b'a');
        req.extend_from_slice(b"\r\n\r\n");
        assert_eq!(status_of(&req), Status::Ok);
    }

    #[test]
    fn every_response_fits_response_max() {
        let ctx = Context {
            date: DATE,
            draining: true,
            health: &|| Health {
                uptime_secs: u64::MAX,
                requests: u64::MAX,
                connections: u64::MAX,
                remaining_secs: u64::MAX,
            },
        };
        // Each with the last byte of its body: a cut response would end elsewhere.
        for (req, last) in [
            ("GET /healthcheck HTTP/1.0\r\n\r\n", b'}'),
            ("GET /panic HTTP/1.0\r\n\r\n", b'\n'),
            ("GET / HTTP/1.0\r\n\r\n", b'\n'),
        ] {
            let mut out = [0u8; 2 * RESPONSE_MAX];
            let mut b = Buf::new(&mut out);
            respond(
                &mut req.as_bytes().to_vec(),
                &ctx,
                &mut b,
                &mut [0; JSON_MAX],
            )
            .unwrap();
            assert!(b.len() <= RESPONSE_MAX, "{req:?}: {} bytes", b.len());
            assert_eq!(b.as_bytes().last(), Some(&last), "{req:?}: the body is cut");
        }
        let mut out = [0u8; RESPONSE_MAX];
        let mut b = Buf::new(&mut out);
        write_error(&mut b, DATE, Status::HeadersTooLarge);
        assert!(b.len() < RESPONSE_MAX);
    }

    #[test]
    fn standalone_errors_close() {
        let mut out = [0u8; RESPONSE_MAX];
        let mut b = Buf::new(&mut out);
        let n = write_error(&mut b, DATE, Status::RequestTimeout);
        assert_eq!(n, "Request Timeout\n".len());
        let want = expect(
            "408 Request Timeout",
            T,
            "Request Timeout\n",
            "Connection: close\r\n",
        );
        assert_eq!(b.as_bytes(), want.as_bytes());
    }

    /// The status of a GET for `target` with `host` as the Host value.
    #[track_caller]
    fn get(method: &str, target: &str, host: &str) -> Status {
        status_of(std::format!("{method} {target} HTTP/1.1\r\nHost:{host}\r\n\r\n").as_bytes())
    }

    #[test]
    fn targets_are_checked_by_their_grammar() {
        use Status::*;
        let cases = [
            // origin-form, with pct-encoding and a query of pchar, `/` and `?`
            ("GET", "/alwaysok?a=1&b=/?:@%41", Ok),
            ("GET", "/alwaysok%41", NotFound),
            ("GET", "/a%2", BadRequest),
            ("GET", "/a%zz", BadRequest),
            ("GET", "/a#b", BadRequest),
            ("GET", "/a[b]", BadRequest),
            ("GET", "/a\"b", BadRequest),
            ("GET", "/a{b}", BadRequest),
            ("GET", "/?#", BadRequest),
            ("GET", "alwaysok", BadRequest),
            ("GET", "?x", BadRequest),
            // absolute-form: an http(s) scheme and a host, routed by its path
            ("GET", "http://x/alwaysok", Ok),
            ("GET", "hTTpS://x.example:8080/alwaysok?q", Ok),
            ("GET", "http://[::1]:80/alwaysok", Ok),
            ("GET", "http://127.0.0.1", Ok),
            ("GET", "http://x?q", Ok),
            ("GET", "http://x:/", Ok),
            ("GET", "http://x#/alwaysok", BadRequest),
            ("GET", "http://x#/panic", BadRequest),
            ("GET", "http://x/alwaysok#f", BadRequest),
            ("GET", "http:///alwaysok", BadRequest),
            ("GET", "http://", BadRequest),
            ("GET", "https://:80/", BadRequest),
            ("GET", "http://user@x/alwaysok", BadRequest),
            ("GET", "http://x:8o/", BadRequest),
            ("GET", "http://[::1/", BadRequest),
            ("GET", "http://[]/", BadRequest),
            ("GET", "ftp://x/alwaysok", BadRequest),
            ("GET", "http:/x/alwaysok", BadRequest),
            // `*` for OPTIONS only, authority-form for CONNECT only: both are 405 here
            ("OPTIONS", "*", MethodNotAllowed),
            ("GET", "*", BadRequest),
            ("CONNECT", "x.example:443", MethodNotAllowed),
            ("CONNECT", "/", BadRequest),
            ("CONNECT", ":443", BadRequest),
            ("GET", "x.example:443", BadRequest),
        ];
        for (method, target, want) in cases {
            assert_eq!(get(method, target, " x"), want, "{method} {target}");
        }
    }

    #[test]
    fn host_is_uri_host_and_port() {
        for host in [
            "",
            " example.com",
            " 127.0.0.1:8080",
            " [::1]:80",
            " [::ffff:1.2.3.4]",
            " x:",
            " a%41",
        ] {
            assert_eq!(get("GET", "/", host), Status::Ok, "Host:{host}");
        }
        for host in [
            " a\"b", " a<b", " {", " x:abc", " [::1", " a b", " a/b", " u@x", " [::1]x", " %4",
            " [v1.x]", " [::g]",
        ] {
            assert_eq!(get("GET", "/", host), Status::BadRequest, "Host:{host}");
        }
    }

    #[test]
    fn content_length_may_have_leading_zeros() {
        let req =
            |v: &str| std::format!("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: {v}\r\n\r\n");
        assert_eq!(
            status_of(req("00000000000000000000").as_bytes()),
            Status::Ok
        );
        assert_eq!(
            status_of(req("000000000000000000000000001").as_bytes()),
            Status::ContentTooLarge
        );
        assert_eq!(
            status_of(req("18446744073709551616").as_bytes()),
            Status::BadRequest
        );
    }

    #[test]
    fn transfer_codings_must_end_in_one_chunked() {
        let req =
            |v: &str| std::format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {v}\r\n\r\n");
        for v in ["chunked", "gzip, chunked", "Chunked", ", chunked,"] {
            assert_eq!(status_of(req(v).as_bytes()), Status::ContentTooLarge, "{v}");
        }
        for v in [
            "chunked, identity",
            "foo",
            "chunked, chunked",
            "",
            "chunked;x=1, gzip",
        ] {
            let (_, seen) = run(req(v).as_bytes(), false);
            assert_eq!((seen[0].0, seen[0].1), (Status::BadRequest, false), "{v}");
        }
        // Split over two lines, the last coding is still the last of the last line.
        let two = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(status_of(two.as_bytes()), Status::ContentTooLarge);
    }

    #[test]
    fn unrecognised_methods_are_501_and_keep_the_connection() {
        for m in ["get", "GETT", "MMMMMMMMMMMMMMMM", "PROPFIND", "Get"] {
            let (out, seen) = run(
                std::format!("{m} /alwaysok HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
                false,
            );
            assert_eq!(seen[0].0, Status::NotImplemented, "{m}");
            assert!(seen[0].1, "{m} keeps the connection");
            assert_eq!(
                out,
                expect("501 Not Implemented", T, "Not Implemented\n", "")
            );
        }
        // Known methods: 404 where there is no resource, 405 where there is one.
        assert_eq!(get("POST", "/nope", " x"), Status::NotFound);
        assert_eq!(get("DELETE", "/", " x"), Status::MethodNotAllowed);
    }

    #[test]
    fn versions_0_x_are_505_like_2_0() {
        for v in ["HTTP/0.0", "HTTP/0.9"] {
            let req = std::format!("GET / {v}\r\nHost: x\r\n\r\n");
            assert_eq!(
                status_of(req.as_bytes()),
                Status::VersionNotSupported,
                "{v}"
            );
        }
    }

    #[test]
    fn the_version_is_kept_as_received_while_the_head_is_incomplete() {
        let ctx = serving();
        let head = b"GET /alwaysok HTTP/1.5\r\nHost: x\r\n";
        let mut input = head.to_vec();
        let mut out = [0u8; RESPONSE_MAX];
        assert!(respond(
            &mut input,
            &ctx,
            &mut Buf::new(&mut out),
            &mut [0; JSON_MAX]
        )
        .is_none());
        assert_eq!(input, head, "input kept for the next read is unchanged");
        input.extend_from_slice(b"\r\n");
        let x = respond(
            &mut input,
            &ctx,
            &mut Buf::new(&mut out),
            &mut [0; JSON_MAX],
        )
        .unwrap();
        assert_eq!((x.status, x.version), (Status::Ok, 15));
    }

    #[test]
    fn an_unreadable_request_line_has_no_version() {
        let ctx = serving();
        for req in [
            &b"GET \x01 HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.x\r\n\r\n",
            b"GARBAGE\r\n\r\n",
        ] {
            let mut out = [0u8; RESPONSE_MAX];
            let mut req = req.to_vec();
            let x = respond(&mut req, &ctx, &mut Buf::new(&mut out), &mut [0; JSON_MAX]).unwrap();
            assert_eq!((x.status, x.version), (Status::BadRequest, NO_VERSION));
        }
        let mut out = [0u8; RESPONSE_MAX];
        let mut req = b"GET / HTTP/2.0\r\n\r\n".to_vec();
        let x = respond(&mut req, &ctx, &mut Buf::new(&mut out), &mut [0; JSON_MAX]).unwrap();
        assert_eq!(
            (x.method, x.version),
            (&b"GET"[..], 20),
            "a 505's line is read"
        );
    }

    #[test]
    fn empty_lines_are_counted_whole() {
        assert_eq!(empty_lines(b"\r\n\r\nGET"), 4);
        assert_eq!(empty_lines(b"\r\n\n\r\nGET"), 2, "a bare LF ends them");
        assert_eq!(empty_lines(b"\r\n\r"), 2);
        assert_eq!(empty_lines(b"\rGET"), 0);
        assert_eq!(empty_lines(b""), 0);
    }

    #[test]
    fn status_codes() {
        for (s, code) in [
            (Status::NotImplemented, 501),
            (Status::UriTooLong, 414),
            (Status::BadRequest, 400),
        ] {
            assert_eq!(s.code(), code);
            assert_eq!(s.line()[..4], *std::format!("{code} ").as_bytes());
        }
        assert_eq!(Status::Ok.code(), 200);
        assert_eq!(Status::HeadersTooLarge.code(), 431);
        assert_eq!(Status::VersionNotSupported.code(), 505);
        assert_eq!(Status::NotFound.reason_line(), b"Not Found\n");
    }
}
