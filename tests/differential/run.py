#!/usr/bin/env python3
"""Differential test of tinyapi's request parsing against two independent, strict parsers.

The references are h11 (PyPI, pinned in requirements.txt) and Go's net/http server
(goserver/main.go, built with Debian's golang-go). A corpus of requests is generated from
RFC 9112's grammar and its known traps (request smuggling permutations, obs-fold, bare CR and
LF, Host and request-target grammar, methods, versions, pipelining, long heads), each tagged
with the rule that made it, and then mutated (byte flips, insertions, deletions, case changes,
line endings, repeated lines). Every request is sent over loopback to the real release binary
and to each reference; they must agree on how many requests the bytes hold and whether the
connection then ends in a rejection, a close or stays open.

A disagreement must be explained by a class of classes.toml (beside this file) that covers its
direction for that reference: the rule that generated the request, or a trap found in its
bytes (a mutation can make a fragment, a bare CR, an invalid Host...). Any other disagreement
fails the run.

    run.py                     # the full corpus (--count 20000)
    run.py --count 4000        # the bounded run of CI
    run.py --write-table       # also rewrite results.md from this run
    run.py --show CLASS        # print the disagreements of one class
    run.py --reference h11     # h11 only (no Go toolchain needed)
"""

import argparse
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h11

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BINARY = ROOT / "target/x86_64-unknown-linux-musl/release/tinyapi"
CLASSES = HERE / "classes.toml"
TABLE = HERE / "results.md"
GOSERVER = ROOT / "target/diff-goserver"

# tinyapi's read buffer (src/http.rs HEAD_MAX): a longer head is refused (414 or 431).
HEAD_MAX = 8192
# Statuses that answer a request tinyapi parsed: served, 404, 405 and 501 keep the connection
# (an unrecognised method is a well-formed request, RFC 9110 §15.6.2). Every other status is a
# rejection that closes it.
ACCEPTED = {200, 404, 405, 501}
# /panic ends the server: no generated or mutated request may name it.
FORBIDDEN = re.compile(rb"(?i)pan(ic|%)|p%|%70")

# Outcome of one connection: (requests accepted, how it ended). "open": the bytes ended with
# no verdict (complete requests only, or a head still incomplete); "close": a request asked to
# close (Connection: close, HTTP/1.0) and was served; "reject": a request was refused.
OPEN, CLOSE, REJECT = "open", "close", "reject"
# h11 checks a head only once it is complete: "partial" is an incomplete head h11 is waiting on.
# tinyapi refuses invalid bytes as they arrive, or waits too ("open").
PARTIAL = "partial"


# Generation ------------------------------------------------------------------------------------

CRLF = b"\r\n"


def head(line, fields, eol=CRLF, body=b""):
    """A request: its request line, field lines (name, value) or raw lines, a blank line, body."""
    out = line + eol
    for f in fields:
        out += (f if isinstance(f, bytes) else f[0] + b": " + f[1]) + eol
    return out + eol + body


def get(target=b"/", method=b"GET", version=b"HTTP/1.1", fields=((b"Host", b"tinyapi"),), **kw):
    return head(method + b" " + target + b" " + version, list(fields), **kw)


HOST = (b"Host", b"tinyapi")
PATHS = [b"/", b"/alwaysok", b"/healthcheck", b"/nope", b"/a/b/c", b"/alwaysok/"]
KNOWN = [b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"PATCH"]
UNRESERVED = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
SUB_DELIMS = b"!$&'()*+,;="
PCHAR = UNRESERVED + SUB_DELIMS + b":@"
# Bytes outside pchar, "/" and "?" that a lenient parser might let into a target.
NOT_PCHAR = b'"<>\\^`{|}% '
TOKEN = UNRESERVED.replace(b".", b"") + b"!#$%&'*+.^_`|~"


def pick(rng, seq):
    return seq[rng.randrange(len(seq))]


def word(rng, alphabet, lo, hi):
    return bytes(pick(rng, alphabet) for _ in range(rng.randint(lo, hi)))


def pct(rng):
    return b"%" + bytes(pick(rng, b"0123456789ABCDEFabcdef") for _ in range(2))


def valid_path(rng):
    segs = []
    for _ in range(rng.randint(0, 4)):
        s = b"".join(pct(rng) if rng.random() < 0.15 else word(rng, PCHAR, 1, 1)
                     for _ in range(rng.randint(0, 6)))
        segs.append(s)
    p = b"/" + b"/".join(segs)
    if rng.random() < 0.4:
        p += b"?" + word(rng, PCHAR + b"/?", 0, 10)
    return p


def rules(rng):
    """Every generation rule: its class and the requests it makes (deterministic for rng)."""
    r = defaultdict(list)

    # Well-formed requests that both must serve.
    for p in PATHS:
        for m in (b"GET", b"HEAD"):
            for v in (b"HTTP/1.1", b"HTTP/1.0"):
                r["valid"].append(get(p, m, v))
    for _ in range(40):
        fields = [HOST] + rng.sample([(b"User-Agent", b"diff/1"), (b"Accept", b"*/*"),
                                      (b"X-Empty", b""), (b"X-Tab", b"\ta\tb\t"),
                                      (b"Accept-Encoding", b"gzip, br"),
                                      (b"X-Obs-Text", b"caf\xe9"), (b"Expect", b"100-continue"),
                                      (b"Connection", b"keep-alive")], rng.randint(0, 4))
        rng.shuffle(fields)
        r["valid"].append(get(valid_path(rng), pick(rng, [b"GET", b"HEAD"]), fields=fields))
    for _ in range(40):
        r["target-origin"].append(get(valid_path(rng)))
    r["target-origin"] += [get(b"//double"), get(b"/?"), get(b"/??"), get(b"/a?b/c?d"),
                           get(b"/%41%2f"), get(b"/@:!$&'()*+,;=")]
    r["connection"] += [get(fields=[HOST, (b"Connection", b"close")]),
                        get(version=b"HTTP/1.0", fields=[(b"Connection", b"keep-alive")]),
                        get(fields=[HOST, (b"Connection", b"TE, close")]),
                        get(fields=[HOST, (b"Connection", b"Close")])]

    # Methods (RFC 9110 §9): defined ones on served paths get 405, others 501, all parsed.
    for m in KNOWN:
        for p in (b"/", b"/alwaysok", b"/nope"):
            r["method-defined"].append(get(p, m))
    r["method-defined"].append(get(b"*", b"OPTIONS"))
    for m in (b"get", b"Get", b"GETT", b"FOO", b"M-SEARCH", b"PROPFIND", b"X!#$%&'*+.^_`|~",
              b"BREW", b"head"):
        r["method-unrecognised"].append(get(b"/", m))
    for m in (b"GE(T", b"GET/", b"G@T", b"G\"T", b"GE\x7fT", b"G\xc3\xa9T", b"[GET]", b"GE:T"):
        r["method-invalid"].append(get(b"/", m))
    r["method-connect-origin"] += [get(b"/", b"CONNECT"), get(b"/alwaysok", b"CONNECT")]
    r["method-connect"] += [get(b"tinyapi:443", b"CONNECT"), get(b"[::1]:80", b"CONNECT")]

    # Versions (RFC 9112 §2.3, RFC 9110 §2.5, §15.6.6).
    for v in (b"HTTP/1.2", b"HTTP/1.5", b"HTTP/1.9"):
        r["version-later-minor"].append(get(version=v))
    for v in (b"HTTP/0.9", b"HTTP/0.0", b"HTTP/2.0", b"HTTP/3.0", b"HTTP/9.9", b"HTTP/2.1"):
        r["version-other"].append(get(version=v))
    for v in (b"HTTP/1", b"HTTP/1.1.1", b"http/1.1", b"HTTP/11", b"HTTP/1.x", b"HTTP/ 1.1",
              b"HTTPS/1.1", b"HTTP/1.", b"HTTP/.1", b"HTTP/1,1", b"HTTP1.1", b""):
        r["version-malformed"].append(get(version=v))
    r["version-malformed"].append(b"GET /\r\n\r\n")  # HTTP/0.9's simple request

    # Request-target (RFC 9112 §3.2).
    for _ in range(30):
        p = bytearray(valid_path(rng))
        p.insert(rng.randint(1, len(p)), pick(rng, NOT_PCHAR))
        r["target-invalid-char"].append(get(bytes(p)))
    r["target-invalid-char"] += [get(b"/%"), get(b"/%4"), get(b"/%G1"), get(b"/a%zz"),
                                 get(b"/caf\xc3\xa9"), get(b"/\x80"), get(b"/\xff"),
                                 get(b"noslash"), get(b"?q")]
    r["target-fragment"] += [get(b"/#"), get(b"/a#b"), get(b"/?q#f"), get(b"#"), get(b"/#/"),
                             get(b"http://tinyapi/#f"), get(b"/alwaysok#")]
    for t in (b"http://tinyapi/", b"http://tinyapi", b"HTTP://tinyapi/alwaysok",
              b"https://tinyapi:8080/a?b", b"http://[::1]/", b"http://127.0.0.1:80",
              b"http://tinyapi:/", b"hTTpS://a.b-c_d~/x", b"http://tinyapi?q"):
        r["target-absolute"].append(get(t))
    r["host-pct-encoded"] += [get(b"http://%41/"), get(b"http://a%2eb:80/x"),
                              get(fields=[(b"Host", b"%41")]), get(fields=[(b"Host", b"a%2Eb:8")])]
    for t in (b"http://user@tinyapi/", b"http://u:p@tinyapi/", b"http:///alwaysok", b"http://",
              b"http://:80/", b"ftp://tinyapi/", b"file:///etc/passwd", b"http:/tinyapi/",
              b"http:tinyapi/", b"http://tinyapi:8x/", b"http://[::1/", b"http://::1/",
              b"http://tinyapi:80:80/", b"h ttp://x/", b"ws://tinyapi/", b"http://ti nyapi/",
              b"http://tinyapi/a b", b"http://@tinyapi/", b"http://[v1.x]/",
              b"http//tinyapi/"):
        r["target-absolute-invalid"].append(get(t))
    r["target-star"] += [get(b"*"), get(b"*", b"HEAD"), get(b"*", b"POST"), get(b"*/")]
    r["target-authority"] += [get(b"tinyapi:80"), get(b"tinyapi:443", b"HEAD"),
                              get(b"127.0.0.1:8080", b"OPTIONS")]
    for n in (HEAD_MAX - 200, HEAD_MAX - 40):
        r["target-long-fits"].append(get(b"/" + b"a" * n))
    for n in (HEAD_MAX, HEAD_MAX + 100, 12000, 15000):
        r["target-long"].append(get(b"/" + b"a" * n))
    r["head-long"] += [get(fields=[HOST, (b"X-Big", b"v" * n)]) for n in (8200, 10000, 15000)]
    r["head-long"].append(get(fields=[HOST] + [(b"X-%d" % i, b"v" * 100) for i in range(90)]))
    r["head-many-lines"] += [get(fields=[HOST] + [(b"X-%d" % i, b"v") for i in range(n)])
                             for n in (64, 70, 100)]

    # Host (RFC 9112 §3.2, RFC 9110 §7.2).
    for h in (b"tinyapi", b"tinyapi:8080", b"127.0.0.1", b"[::1]", b"[::1]:80", b"",
              b"a.b-c_d~!$&'()*+,;=", b"TINYAPI", b"tinyapi:", b"a,"):
        r["host"].append(get(fields=[(b"Host", h)]))
    for h in (b"a b", b"a/b", b"a@b", b"[::1", b"::1", b"a:b:c", b"a:8x", b"a#", b"a?x",
              b"a\\b", b"a%", b"a%zz", b"[::g]", b"a]", b"a\"b", b"a:-1", b"a<b>"):
        r["host-invalid"].append(get(fields=[(b"Host", h)]))
    r["host-missing"] += [get(fields=[]), get(fields=[(b"Hostname", b"a")]),
                          get(fields=[(b"X-Host", b"a")])]
    r["host-missing-http10"] += [get(version=b"HTTP/1.0", fields=[])]
    r["host-duplicate"] += [get(fields=[HOST, HOST]), get(fields=[HOST, (b"host", b"other")]),
                            get(fields=[HOST, (b"HOST", b"")])]
    r["host-list"] += [get(fields=[(b"Host", b"a, b")]), get(fields=[(b"Host", b"a,b, a")])]

    # Content-Length (RFC 9112 §6.2, §6.3; RFC 9110 §8.6).
    for v in (b"0", b"00", b"000000"):
        r["cl-zero"].append(get(fields=[HOST, (b"Content-Length", v)]))
    for n in (1, 5, 17):
        body = b"x" * n
        r["cl-body"].append(get(fields=[HOST, (b"Content-Length", b"%d" % n)], body=body))
        r["cl-body"].append(get(b"/nope", b"POST", fields=[HOST, (b"Content-Length", b"%d" % n)],
                                body=body) + get())
        r["cl-body"].append(get(fields=[HOST, (b"Content-Length", b"0%d" % n)], body=body))
    for v in (b"+1", b"-1", b"1a", b"", b" ", b"0x1", b"1.0", b"1 1", b"1e1", b"\xd9\xa1",
              b"99999999999999999999999", b"0 0"):
        r["cl-invalid"].append(get(fields=[HOST, (b"Content-Length", v)]))
    for v in (b"0, 0", b"0,0", b"1, 1", b"0,"):
        r["cl-list"].append(get(fields=[HOST, (b"Content-Length", v)], body=b"x" * (v[0] - 48)))
    r["cl-duplicate"] += [get(fields=[HOST, (b"Content-Length", b"0"), (b"Content-Length", b"0")]),
                          get(fields=[HOST, (b"Content-Length", b"1"), (b"Content-Length", b"1")],
                              body=b"x"),
                          get(fields=[HOST, (b"Content-Length", b"0"), (b"content-length", b"00")]),
                          get(fields=[HOST, (b"Content-Length", b"0"), (b"Content-Length", b"5")],
                              body=b"xxxxx")]

    # Transfer-Encoding (RFC 9112 §6.1, §6.3; the smuggling permutations).
    chunked = b"1\r\nx\r\n0\r\n\r\n"
    for v in (b"chunked", b"Chunked", b"CHUNKED", b"gzip, chunked", b"identity, chunked"):
        r["te-chunked"].append(get(fields=[HOST, (b"Transfer-Encoding", v)], body=chunked))
    for v in (b"chunked, identity", b"identity", b"foo", b"chunked, chunked", b"chunked,",
              b"chunked;q=1", b"chunk", b"\"chunked\"", b"chunked\x0b", b"", b"x chunked",
              b"chunked , chunked", b"gzip"):
        r["te-other"].append(get(fields=[HOST, (b"Transfer-Encoding", v)], body=chunked))
    r["te-repeated"] += [get(fields=[HOST, (b"Transfer-Encoding", b"chunked"),
                                     (b"Transfer-Encoding", b"chunked")], body=chunked),
                         get(fields=[HOST, (b"Transfer-Encoding", b"gzip"),
                                     (b"Transfer-Encoding", b"chunked")], body=chunked),
                         get(fields=[HOST, (b"Transfer-Encoding", b"chunked"),
                                     (b"Transfer-Encoding", b"identity")], body=chunked)]
    for cl in (b"0", b"1", b"4"):
        for te in (b"chunked", b"identity", b"chunked, identity"):
            for order in (0, 1):
                f = [(b"Content-Length", cl), (b"Transfer-Encoding", te)]
                r["te-cl"].append(get(fields=[HOST] + (f if order else f[::-1]), body=chunked))
    r["te-http10"].append(get(version=b"HTTP/1.0", fields=[(b"Transfer-Encoding", b"chunked")],
                              body=chunked))
    r["te-smuggle-ws"] += [get(fields=[HOST, b"Transfer-Encoding: \tchunked"], body=chunked),
                           get(fields=[HOST, b"Transfer-Encoding:chunked"], body=chunked),
                           get(fields=[HOST, b"Transfer-Encoding:  chunked  "], body=chunked),
                           get(fields=[HOST, b"Transfer-Encoding:\x0bchunked"], body=chunked),
                           get(fields=[HOST, b"Transfer-Encoding:\x0cchunked"], body=chunked),
                           get(fields=[HOST, b"Transfer_Encoding: chunked"], body=chunked),
                           get(fields=[HOST, b"Transfer-Encodin: chunked"], body=chunked)]

    # Field syntax (RFC 9112 §5, §2.2; RFC 9110 §5.5).
    for n in (b"Host", b"Content-Length", b"Transfer-Encoding", b"X"):
        for ws in (b" ", b"\t", b"  "):
            r["ws-before-colon"].append(get(fields=[HOST, n + ws + b": 0"] if n != b"Host"
                                            else [n + ws + b": tinyapi"]))
    r["obs-fold"] += [get(fields=[HOST, b"X: a", b" b"]), get(fields=[HOST, b"X: a", b"\tb"]),
                      get(fields=[b"Host:", b" tinyapi"]),
                      get(fields=[HOST, b"Transfer-Encoding: identity", b" chunked"],
                          body=chunked),
                      get(fields=[HOST, b"Content-Length:", b" 0"]),
                      get(fields=[b" X: leading", HOST])]
    r["header-name-invalid"] += [get(fields=[HOST, b"X(Y): z"]), get(fields=[HOST, b"X Y: z"]),
                                 get(fields=[HOST, b": z"]), get(fields=[HOST, b"X\x00: z"]),
                                 get(fields=[HOST, b"X\xe9: z"]), get(fields=[HOST, b"no-colon"]),
                                 get(fields=[HOST, b"X\"Y: z"]), get(fields=[HOST, b"[X]: z"])]
    for c in (1, 8, 11, 12, 27, 31, 127):
        r["ctl-in-value"].append(get(fields=[HOST, (b"X", b"a%cb" % c)]))
    r["nul-in-value"] += [get(fields=[HOST, (b"X", b"a\x00b")]), get(fields=[(b"Host", b"a\x00")])]
    r["bare-cr"] += [get(fields=[HOST, (b"X", b"a\rb")]), b"GET / HTTP/1.1\rHost: a\r\n\r\n",
                     get(b"/a\rb"), b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",
                     b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"]
    r["bare-lf"] += [get(eol=b"\n"), get(b"/alwaysok", b"HEAD", eol=b"\n"),
                     b"GET / HTTP/1.1\nHost: a\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\n\r\n",
                     b"GET / HTTP/1.1\r\nHost: a\r\n\n",
                     get(fields=[HOST, (b"Content-Length", b"0")], eol=b"\n") + get()]
    r["request-line-ws"] += [b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
                             b"GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n",
                             b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
                             b" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                             b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
                             b"GET / HTTP/1.1 x\r\nHost: a\r\n\r\n",
                             b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"]
    r["leading-empty-lines"] += [CRLF + get(), CRLF * 3 + get(), b"\n" + get(),
                                 get() + CRLF + get(), get() + CRLF * 2 + get()]
    r["empty-lines-only"] += [CRLF, CRLF * 4, b"\n\n"]
    for v in (b"100-continue", b"100-Continue"):
        r["expect"].append(get(fields=[HOST, (b"Expect", v)]))
    for v in (b"200-ok", b"foo", b"100-continue, foo", b""):
        r["expect-other"].append(get(fields=[HOST, (b"Expect", v)]))
    r["field-value-ws"] += [get(fields=[(b"Host", b" tinyapi ")]),
                            get(fields=[(b"Host", b"\ttinyapi\t")]),
                            get(fields=[HOST, (b"Content-Length", b" 0 ")])]

    # Pipelines: several requests in one write, possibly with a bad one among them.
    singles = [get(), get(b"/alwaysok", b"HEAD"), get(b"/nope"), get(b"/", b"POST"),
               get(b"/", b"FOO"), get(b"/healthcheck"),
               get(version=b"HTTP/1.0", fields=[(b"Connection", b"keep-alive")])]
    bads = [get(b"/#"), get(fields=[HOST, HOST]), get(fields=[HOST, b"X: a", b" b"]),
            get(fields=[HOST, (b"Content-Length", b"1")], body=b"x"), get(version=b"HTTP/2.0"),
            get(fields=[HOST, (b"Transfer-Encoding", b"chunked")], body=chunked)]
    for _ in range(40):
        reqs = [pick(rng, singles) for _ in range(rng.randint(2, 6))]
        r["pipeline"].append(b"".join(reqs))
    for _ in range(20):
        reqs = [pick(rng, singles) for _ in range(rng.randint(1, 4))]
        reqs.insert(rng.randint(0, len(reqs)), pick(rng, bads))
        r["pipeline-with-bad"].append(b"".join(reqs))
    for _ in range(6):
        reqs = [pick(rng, singles) for _ in range(rng.randint(1, 3))]
        reqs.insert(rng.randint(0, len(reqs) - 1), get(fields=[HOST, (b"Connection", b"close")]))
        r["pipeline-close"].append(b"".join(reqs))

    # Incomplete heads: the bytes end before the blank line.
    for cut in (1, 3, 5, 14, 16, 20, 27):
        r["incomplete"].append(get()[:cut])
    r["incomplete"].append(get() + get()[:10])
    return r


def mutate(rng, data):
    """One mutation of data: (operation, new bytes)."""
    op = pick(rng, ["flip", "insert", "delete", "case", "eol", "dup-line"])
    b = bytearray(data)
    interesting = b" \t\r\n\x00:#%/?@[]\x0b,;\"\x7f\xff" + bytes([rng.randrange(256)])
    i = rng.randrange(len(b)) if b else 0
    if op == "flip" and b:
        b[i] = pick(rng, interesting)
    elif op == "insert":
        b[i:i] = bytes([pick(rng, interesting)]) * rng.choice([1, 1, 1, 2])
    elif op == "delete" and b:
        del b[i:i + rng.choice([1, 1, 2, 4])]
    elif op == "case":
        letters = [j for j, c in enumerate(b) if 65 <= c <= 90 or 97 <= c <= 122]
        for j in rng.sample(letters, min(len(letters), rng.randint(1, 3))):
            b[j] ^= 0x20
    elif op == "eol":
        ends = [m.start() for m in re.finditer(rb"\r\n", bytes(b))]
        if ends:
            j = pick(rng, ends)
            b[j:j + 2] = pick(rng, [b"\n", b"\r", b"\n\r", b"\r\r\n", b"\r\n "])
    else:
        lines = bytes(b).split(CRLF)
        if len(lines) > 2:
            j = rng.randrange(1, len(lines) - 1)
            lines.insert(j, lines[j])
        b = bytearray(CRLF.join(lines))
    return op, bytes(b)


def corpus(seed, count):
    """count cases (class, rule, bytes): every generated request once, then mutants of them."""
    rng = random.Random(seed)
    base = [(cls, cls, d) for cls, ds in rules(rng).items() for d in ds]
    base = [c for c in base if not FORBIDDEN.search(c[2])]
    cases = base[:count]
    while len(cases) < count:
        cls, _, data = pick(rng, base)
        op, data = mutate(rng, data)
        if not FORBIDDEN.search(data):
            cases.append(("mutated", "%s(%s)" % (op, cls), data))
    return cases


# The servers and the references ---------------------------------------------------------------

def h11_outcome(data):
    """h11 as a server reading data: (requests it completed, how the connection ended)."""
    c = h11.Connection(h11.SERVER)
    c.receive_data(data)
    n = 0
    try:
        while True:
            e = c.next_event()
            if e is h11.NEED_DATA:
                return n, PARTIAL if c.trailing_data[0] else OPEN
            if e is h11.PAUSED or isinstance(e, h11.ConnectionClosed):
                return n, OPEN
            if isinstance(e, h11.EndOfMessage):
                n += 1
                # 404: a status that neither switches protocols (CONNECT, Upgrade) nor closes.
                c.send(h11.Response(status_code=404, headers=[(b"Content-Length", b"0")]))
                c.send(h11.EndOfMessage())
                if c.our_state is h11.MUST_CLOSE:
                    return n, CLOSE
                c.start_next_cycle()
    except h11.RemoteProtocolError:
        return n, REJECT


class Server:
    """A server process on a loopback port chosen by the kernel, read from its first line."""

    def __init__(self, name, argv, port_pattern):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.search(port_pattern, line)
        if not m:
            raise SystemExit("%s did not start: %r" % (name, line))
        self.port = int(m.group(1))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def start_tinyapi():
    if not BINARY.exists():
        raise SystemExit("no %s: build it with cargo build --release" % BINARY)
    return Server("tinyapi", [str(BINARY), "--listen", "127.0.0.1:0", "--quiet", "--workers", "2"],
                  r" listening on 127\.0\.0\.1:(\d+) ")


def start_go():
    """Builds goserver/ (standard library only, nothing fetched) and starts it."""
    src = HERE / "goserver"
    if not GOSERVER.exists() or GOSERVER.stat().st_mtime < (src / "main.go").stat().st_mtime:
        env = dict(os.environ, GOPROXY="off", GOFLAGS="-mod=mod", CGO_ENABLED="0")
        try:
            subprocess.run(["go", "build", "-o", str(GOSERVER), "."], cwd=src, env=env, check=True)
        except FileNotFoundError:
            raise SystemExit("no go command: apt-get install golang-go, or --reference h11")
    return Server("go", [str(GOSERVER)], r"listening on 127\.0\.0\.1:(\d+)")


def exchange(port, data, timeout=10.0):
    """Sends data on a new connection, ends the sending side, returns all that came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # refused before the end of the bytes; what it answered is still to read
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass
        return got


STATUS_LINE = re.compile(rb"HTTP/1\.([01]) (\d{3}) ")


def parse_responses(raw):
    """The (status, closes) of each response in raw. A HEAD answer carries Content-Length but no
    body: a body never starts with a status line, so one that does is the next response. An
    answer without Content-Length (Go's refusals) runs to the end. An HTTP/1.0 answer closes
    unless it says keep-alive (RFC 9112 §9.3)."""
    out, i = [], 0
    while i < len(raw):
        m = STATUS_LINE.match(raw, i)
        end = raw.find(b"\r\n\r\n", i)
        if not m or end < 0:
            raise ValueError("not a response: %r" % raw[i:i + 200])
        head_ = raw[i:end].decode("latin-1")
        connection = re.search(r"(?im)^connection: *(.*)$", head_)
        connection = connection.group(1).strip().lower() if connection else ""
        closes = connection == "close" or (m.group(1) == b"0" and connection != "keep-alive")
        out.append((int(m.group(2)), closes))
        length = re.search(r"(?im)^content-length: *(\d+)", head_)
        i = end + 4
        if not STATUS_LINE.match(raw, i):
            i = i + int(length.group(1)) if length else len(raw)
    return out


def served(server, data, accepted):
    """(requests answered with a status in accepted, how the connection ended), and the status
    that ended it."""
    n = 0
    for status, closes in parse_responses(exchange(server.port, data)):
        if status not in accepted:
            return (n, REJECT), status
        n += 1
        if closes:
            return (n, CLOSE), status
    return (n, OPEN), None


# Go's server answers every request it parses with 200 (goserver/main.go).
GO_ACCEPTED = {200}
REFERENCES = ["h11", "go"]


# Comparison and classification --------------------------------------------------------------

def compare(t, ref):
    """None when tinyapi's outcome t matches h11's ref, else the direction of the disagreement:
    tinyapi-stops (it served fewer requests, or as many and then refused where h11 did not),
    reference-stops (the reverse) or close-differs (the same requests served, one side keeping
    the connection)."""
    (tn, te), (rn, re_) = t, ref
    if re_ == PARTIAL and tn == rn and te in (OPEN, REJECT):
        # Both wait for the end of the head, or tinyapi has already seen it is invalid.
        return None if te == OPEN else "tinyapi-stops"
    if (tn, te) == (rn, re_):
        return None
    if tn != rn:
        return "tinyapi-stops" if tn < rn else "reference-stops"
    if CLOSE in (te, re_):
        # One side closed after the last request both served; the other read on.
        return "close-differs"
    if te == REJECT or re_ == REJECT:
        return "tinyapi-stops" if te == REJECT else "reference-stops"
    return "close-differs"


TOKEN_RE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
DEFINED = {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE",
           b"PATCH"}
PCHAR_RE = rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
ORIGIN_RE = re.compile(rb"(?:/" + PCHAR_RE + rb"*)+(?:\?(?:" + PCHAR_RE + rb"|[/?])*)?")
REG_NAME = rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"
# IPv6 (and IPv4-mapped) literals; tinyapi refuses IPvFuture (`[v1.x]`), which nothing uses.
IP_LITERAL = rb"\[[0-9A-Fa-f:.]+\]"
HOST_RE = re.compile(rb"(?:" + IP_LITERAL + rb"|" + REG_NAME + rb")(?::[0-9]*)?")
# An http(s) URI needs a host (RFC 9110 §4.2.1): the reg-name may not be empty.
ABSOLUTE_RE = re.compile(rb"(?i:https?)://(?:" + IP_LITERAL + rb"|" + REG_NAME[:-1] + rb"+)(?::[0-9]*)?"
                         rb"(?:(?:/" + PCHAR_RE + rb"*)*)(?:\?(?:" + PCHAR_RE + rb"|[/?])*)?")


def traps(data):
    """The classes of classes.toml whose trap is in data: what can explain a disagreement about a
    mutated request. Each check looks for one feature and knows nothing of the others."""
    found = set()
    if b"HTTP/1.0" in data and b"keep-alive" in data.lower():
        found.add("http10-keep-alive")
    if data[:1] in (b"\r", b"\n") or re.search(rb"\n\r?\n\r?\n.", data, re.S):
        found.add("leading-empty-lines" if data.lstrip(b"\r\n") else "empty-lines-only")
    if re.search(rb"(?:^|\n\r?\n)[\r\n]+$", data):
        # Empty lines, or the start of one, after the last request: no request line yet.
        found.add("empty-lines-only")
    if re.search(rb"(?<!\r)\n", data):
        found.add("bare-lf")
    if re.search(rb"\r(?!\n)", data):
        found.add("bare-cr")
    for m in re.finditer(rb"(?:^|\r?\n)\r?\n?([^\r\n]*)", data):
        line = m.group(1)
        parts = line.split(b" ")
        if len(parts) == 3 and parts[2].startswith(b"HTTP/"):
            method, target, version = parts
            if not TOKEN_RE.fullmatch(method):
                found.add("method-invalid")
            elif method not in DEFINED:
                found.add("method-unrecognised")
            v = re.fullmatch(rb"HTTP/([0-9])\.([0-9])", version)
            if not v:
                found.add("version-malformed")
            elif v.group(1) != b"1":
                found.add("version-other")
            elif v.group(2) not in b"01":
                found.add("version-later-minor")
            if b"#" in target:
                found.add("target-fragment")
            if len(target) > HEAD_MAX - 20:
                found.add("target-long")
            if method == b"CONNECT":
                if re.fullmatch(rb"(?:" + IP_LITERAL + rb"|" + REG_NAME + rb"):[0-9]+", target):
                    found.add("method-connect")
                else:
                    found.add("method-connect-origin")
            elif target == b"*":
                if method != b"OPTIONS":
                    found.add("target-star")
            elif target[:1] == b"/":
                if not ORIGIN_RE.fullmatch(target):
                    found.add("target-invalid-char")
            elif re.match(rb"(?i)[a-z][a-z0-9+.-]*:", target) and b"/" in target:
                if not ABSOLUTE_RE.fullmatch(target):
                    found.add("target-absolute-invalid")
                elif b"%" in target.split(b"/")[2]:
                    found.add("host-pct-encoded")
            elif re.fullmatch(rb"[^/?#]*:[0-9]*", target):
                found.add("target-authority")
            else:
                found.add("target-invalid-char")
        elif line[:1] not in (b" ", b"\t") and len(parts) > 1 and parts[-1].startswith(b"HTTP"):
            found.add("request-line-ws")
    # Field checks per head: a pipeline's requests each have their own Host, Content-Length...
    for head_ in re.split(rb"\r?\n\r?\n", data):
        fields(head_, found)
    return found


def fields(head_, found):
    """Adds to found the traps in the field lines of one head (its request line is skipped)."""
    lines = re.split(rb"\r?\n", head_)
    hosts = Counter()
    for i, line in enumerate(lines):
        if line[:1] in (b" ", b"\t") and i > 0 and lines[i - 1]:
            found.add("obs-fold")
        name, colon, value = line.partition(b":")
        if not colon or (len(line.split(b" ")) == 3 and b" HTTP/" in line):
            continue
        if name[-1:] in (b" ", b"\t"):
            found.add("ws-before-colon")
        if not TOKEN_RE.fullmatch(name.strip()):
            found.add("header-name-invalid")
        value = value.strip(b" \t")
        if b"\x00" in value:
            found.add("nul-in-value")
        if re.search(rb"[\x01-\x08\x0a-\x1f\x7f]", value):
            found.add("ctl-in-value")
        key = name.strip().lower()
        if not key:
            found.add("header-name-invalid")
        if key == b"host":
            if not HOST_RE.fullmatch(value):
                found.add("host-invalid")
            elif b"%" in value:
                found.add("host-pct-encoded")
        elif key == b"connection":
            if not re.fullmatch(rb"[ \t,]*(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t,]*)*", value):
                found.add("connection-invalid")
        elif key == b"expect":
            if value.lower() != b"100-continue":
                found.add("expect-other")
        elif key == b"content-length":
            if not re.fullmatch(rb"[0-9]+", value):
                found.add("cl-list" if b"," in value else "cl-invalid")
            elif int(value):
                found.add("cl-body")
            if re.search(rb"(?i)\ntransfer-encoding", head_):
                found.add("te-cl")
        elif key == b"transfer-encoding":
            if re.search(rb" HTTP/1\.0\r?\n", head_):
                found.add("te-http10")
            codings = [c.strip(b" \t").lower() for c in value.split(b",")]
            found.add("te-chunked" if codings[-1] == b"chunked" and codings.count(b"chunked") == 1
                      else "te-other")
        hosts[key] += 1
    if hosts[b"host"] > 1:
        found.add("host-duplicate")
    if hosts[b"content-length"] > 1:
        found.add("cl-duplicate")
    if hosts[b"transfer-encoding"] > 1:
        found.add("te-repeated")
    if re.search(rb" HTTP/1\.[1-9]\r?\n", head_) and hosts[b"host"] == 0:
        found.add("host-missing")
    if len(head_) > HEAD_MAX - 4:
        found.add("head-long")
    if sum(1 for line in lines if b":" in line) > 64:
        found.add("head-many-lines")


def load_classes():
    with open(CLASSES, "rb") as f:
        doc = tomllib.load(f)
    return ({r: doc.get(r, {}).get("class", {}) for r in REFERENCES},
            {r: doc.get(r, {}).get("pending", {}) for r in REFERENCES})


def explain(case, d, ref, classes, pending):
    """The class (and whether it is pending) that explains disagreement direction d, or None."""
    cls, _, data = case
    candidates = [cls] + sorted(traps(data))
    if ref[1] == PARTIAL:
        # The reference is still waiting for the end of a head tinyapi has refused.
        candidates.insert(0, "head-incomplete")
    for c in candidates:
        if d in classes.get(c, {}).get("directions", []):
            return c, False
    for c in candidates:
        if d in pending.get(c, {}).get("directions", []):
            return c, True
    return None, False


class Tally:
    """One reference's comparison with tinyapi over the run."""

    def __init__(self, name, classes, pending):
        self.name, self.classes, self.pending = name, classes, pending
        self.agree = Counter()              # rule -> requests agreed on
        self.explained = defaultdict(Counter)  # class -> direction -> count
        self.pend = defaultdict(Counter)
        self.examples = defaultdict(list)
        self.unexplained = []
        self.served = defaultdict(list)     # class -> its generated requests that both served

    def add(self, case, t, status, ref):
        d = compare(t, ref)
        if d is None:
            self.agree[case[0]] += 1
            spec = self.classes.get(case[0], {})
            if (t[1] != REJECT and spec.get("verdict") != "both allowed"
                    and "tinyapi-stops" in spec.get("directions", [])):
                # Generated to be refused, yet served as the reference serves it.
                self.served[case[0]].append(case[2])
            return
        c, is_pending = explain(case, d, ref, self.classes, self.pending)
        detail = (case, t, status, ref, d)
        if c is None:
            self.unexplained.append(detail)
            return
        (self.pend if is_pending else self.explained)[c][d] += 1
        self.examples[c].append(detail)

    def show(self, detail):
        case, t, status, ref, d = detail
        return "  %-28s tinyapi %s%s, %s %s: %r" % (
            case[1][:28], "%d %s" % t, " (%s)" % status if status else "", self.name,
            "%d %s" % ref[:2], case[2][:160])

    def report(self, total, verbose):
        print("%s: %d agree, %d disagree" % (self.name, sum(self.agree.values()),
                                             total - sum(self.agree.values())))
        for c in sorted(self.explained):
            for d, k in sorted(self.explained[c].items()):
                print("  %-24s %-16s %5d  %s" % (c, d, k, self.classes[c]["verdict"]))
        for c in sorted(self.pend):
            for d, k in sorted(self.pend[c].items()):
                print("  %-24s %-16s %5d  PENDING: %s" % (c, d, k, self.pending[c]["why"]))
        for c in sorted(set(self.pending) - set(self.pend)):
            print("  %-24s no longer disagrees: remove [%s.pending.%s] from %s"
                  % (c, self.name, c, CLASSES.name))
        for c, reqs in sorted(self.served.items()):
            print("  %-24s %5d served, which the class expects refused, e.g. %r"
                  % (c, len(reqs), reqs[0][:80]))
        for detail in self.unexplained if verbose else self.unexplained[:40]:
            print("UNCLASSIFIED" + self.show(detail))

    def failures(self, strict):
        return len(self.unexplained) + (sum(sum(v.values()) for v in self.pend.values())
                                        if strict else 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20000, help="requests in the corpus")
    ap.add_argument("--seed", type=int, default=9112)
    ap.add_argument("--time-limit", type=float, default=0, help="stop sending after S seconds")
    ap.add_argument("--jobs", type=int, default=8, help="connections at once")
    ap.add_argument("--reference", default=",".join(REFERENCES),
                    help="the references, comma-separated (default: %(default)s)")
    ap.add_argument("--write-table", action="store_true", help="rewrite " + TABLE.name)
    ap.add_argument("--show", metavar="CLASS", help="print the disagreements explained by CLASS")
    ap.add_argument("--verbose", action="store_true", help="print every unclassified one")
    ap.add_argument("--strict", action="store_true",
                    help="pending classes (classes.toml REF.pending) fail the run too")
    args = ap.parse_args()
    refs = args.reference.split(",")
    if set(refs) - set(REFERENCES):
        ap.error("references are %s" % ", ".join(REFERENCES))

    classes, pending = load_classes()
    tallies = {r: Tally(r, classes[r], pending[r]) for r in refs}
    cases = corpus(args.seed, args.count)
    servers = [start_tinyapi()]
    if "go" in refs:
        servers.append(start_go())
    started = time.monotonic()
    per_rule = Counter()

    def one(case):
        if args.time_limit and time.monotonic() - started > args.time_limit:
            return None
        t = served(servers[0], case[2], ACCEPTED)
        outcomes = {"h11": h11_outcome(case[2])}
        if "go" in refs:
            outcomes["go"] = served(servers[1], case[2], GO_ACCEPTED)[0]
            if outcomes["h11"][1] == PARTIAL and outcomes["go"] == (outcomes["h11"][0], REJECT):
                # Go answers 400 when the connection ends inside a head: it was waiting too.
                outcomes["go"] = outcomes["h11"]
        return case, t, outcomes

    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            for res in pool.map(one, cases):
                if res is None:
                    continue
                for s in servers:
                    if not s.alive():
                        raise SystemExit("%s died at %r" % (s.name, res[0][2][:200]))
                case, (t, status), outcomes = res
                per_rule[case[0]] += 1
                for r in refs:
                    tallies[r].add(case, t, status, outcomes[r])
    finally:
        for s in servers:
            s.stop()
    elapsed = time.monotonic() - started

    total = sum(per_rule.values())
    print("differential: %d requests (%d generated, %d mutated) in %.1f s" % (
        total, total - per_rule["mutated"], per_rule["mutated"], elapsed))
    for r in refs:
        if args.show:
            for detail in tallies[r].examples.get(args.show, []):
                print(tallies[r].show(detail))
        tallies[r].report(total, args.verbose)
    if args.write_table:
        write_table(args, total, per_rule, [tallies[r] for r in refs])
    failed = sum(tallies[r].failures(args.strict) for r in refs)
    print("%d passed, %d failed" % (total - failed, failed))
    return 1 if failed else 0


def go_version():
    try:
        return subprocess.run(["go", "version"], capture_output=True, text=True).stdout.split()[2]
    except (FileNotFoundError, IndexError):
        return "?"


def write_table(args, total, per_rule, tallies):
    # The last commit that changed the server's source: what the binary was built from.
    rev = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h", "--", "src",
                          "Cargo.toml", "Cargo.lock", "build.rs"],
                         capture_output=True, text=True).stdout.strip()
    if subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "src"]).returncode:
        rev += " with changes to src/"
    versions = {"h11": "h11 %s" % h11.__version__, "go": "Go's net/http (%s)" % go_version()}
    out = ["# Differential test of request parsing", "",
           "Written by `tests/differential/run.py --write-table` (seed %d, %d requests, "
           "%d of them mutated; tinyapi at %s; references: %s). Do not edit: change "
           "`classes.toml` and rerun." % (args.seed, total, per_rule["mutated"], rev,
                                          ", ".join(versions[t.name] for t in tallies)), "",
           "A disagreement is a request on which tinyapi and a reference differ in the number "
           "of requests served or in how the connection ends (rejected, closed after a served "
           "request, left open). *tinyapi-stops*: tinyapi serves fewer requests, or as many "
           "and then refuses where the reference does not; *reference-stops*: the reverse; "
           "*close-differs*: the same requests served, one side closing. Each is explained by "
           "the rule that generated the request or, for a mutated one, by a trap found in its "
           "bytes. Classes not listed agreed on every request."]
    for t in tallies:
        out += ["", "## %s" % versions[t.name], "",
                "%d requests agree, %d disagree, %d of them unclassified." % (
                    sum(t.agree.values()), total - sum(t.agree.values()), len(t.unexplained)),
                "", "| class | direction | disagreements | verdict | RFC | why |",
                "|---|---|---:|---|---|---|"]
        for c in sorted(t.classes):
            spec = t.classes[c]
            for d in sorted(set(spec["directions"]) | set(t.explained[c])):
                out.append("| `%s` | %s | %d | %s | %s | %s |" % (
                    c, d, t.explained[c][d], spec["verdict"], spec["rfc"], spec["why"]))
        if t.pend:
            out += ["", "Pending: disagreements of the parser before its RFC 9112 "
                    "request-target and field checks; they fail `--strict`, and their entries "
                    "go once the checks are in.", "",
                    "| class | direction | disagreements | why |", "|---|---|---:|---|"]
            for c in sorted(t.pend):
                for d, k in sorted(t.pend[c].items()):
                    out.append("| `%s` | %s | %d | %s |" % (c, d, k, t.pending[c]["why"]))
        if t.served:
            out += ["", "Served, yet to be refused: generated requests of a class that "
                    "tinyapi is to refuse, served by this binary as the reference serves them "
                    "(they agree, so they are not counted above).", "",
                    "| class | requests | e.g. |", "|---|---:|---|"]
            for c, reqs in sorted(t.served.items()):
                out.append("| `%s` | %d | `%s` |" % (c, len(reqs), ascii(reqs[0][:60])[2:-1]
                                                      .replace("|", "\\|")))
    out += ["", "## Requests per generation rule", "",
            "| rule | requests | " + " | ".join("agree (%s)" % t.name for t in tallies) + " |",
            "|---|---:|" + "---:|" * len(tallies)]
    for c in sorted(per_rule):
        out.append("| `%s` | %d | %s |" % (c, per_rule[c], " | ".join(
            str(t.agree[c]) for t in tallies)))
    out.append("")
    TABLE.write_text("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
