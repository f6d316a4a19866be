#!/usr/bin/env python3
"""Helpers for bench/run.sh (standard library only).

  tools.py freeport                      print a free TCP port on 127.0.0.1
  tools.py wait PORT SECS                wait until GET /alwaysok answers 200 (exit 1 on timeout)
  tools.py listening PORT SECS           wait until something listens on 127.0.0.1:PORT, without
                                         connecting (reads /proc/net/tcp)
  tools.py get PORT PATH                 print the body of GET PATH (one connection, Connection: close)
  tools.py sample PID...                 print "TICKS RSS_KB BUSY0 ALL0": utime+stime (clock ticks)
                                         and VmRSS summed over each PID and its child processes,
                                         then CPU 0's busy and total ticks from /proc/stat
  tools.py hold PORT N SECS              open N keep-alive connections, one GET /alwaysok on
                                         each, hold them; see hold() for the stdin protocol
  tools.py report RUNS MEMORY META OUT   print the markdown report and write it to OUT
"""

import os
import resource
import select
import socket
import statistics
import sys
import time

REQUEST = b"GET /alwaysok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def freeport():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def wait(port, secs):
    deadline = time.monotonic() + float(secs)
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=1) as s:
                s.sendall(b"GET /alwaysok HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return 0
        except OSError:
            pass
        time.sleep(0.05)
    return 1


def listening(port, secs):
    deadline = time.monotonic() + float(secs)
    want = f"0100007F:{int(port):04X}"
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":  # 0A: TCP_LISTEN
                    return 0
        time.sleep(0.02)
    return 1


def get(port, path):
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    sys.stdout.write(data.partition(b"\r\n\r\n")[2].decode(errors="replace") + "\n")
    return 0


def children(pids):
    """The direct children of `pids` (nginx's workers under its master)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid in pids:
            out.append(int(d))
    return out


def sample(pids):
    pids = [int(p) for p in pids]
    ticks = 0
    rss = 0
    for pid in pids + children(set(pids)):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
        except OSError:
            continue
        # Fields after "(comm)": state is field 3, utime and stime are fields 14 and 15.
        fields = stat[stat.rindex(")") + 2:].split()
        ticks += int(fields[11]) + int(fields[12])
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
    busy = total = 0
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu0 "):
                v = [int(x) for x in line.split()[1:]]
                total = sum(v[:8])
                busy = total - v[3] - v[4]  # less idle and iowait
    print(ticks, rss, busy, total)


def read_response(s):
    """Reads one response with a Content-Length body; returns its status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("connection closed before a response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        body += chunk
    return head.split(b"\r\n")[0]


def alive(socks):
    """Counts sockets the server has not closed (no end of stream, no error pending)."""
    poller = select.poll()
    by_fd = {}
    for s in socks:
        poller.register(s, select.POLLIN | select.POLLRDHUP)
        by_fd[s.fileno()] = s
    gone = 0
    for fd, ev in poller.poll(0):
        if ev & (select.POLLERR | select.POLLHUP | select.POLLRDHUP):
            gone += 1
            continue
        try:
            if by_fd[fd].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                gone += 1
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            gone += 1
    return len(socks) - gone


def hold(port, n, secs):
    """Opens N connections and holds them until stdin closes or SECS pass.

    Prints "ready OPENED FAILED" once they are open. Each line "check" on stdin is answered
    with "alive K". The process raises its own descriptor limit.
    """
    n = int(n)
    deadline = time.monotonic() + float(secs)
    want = n + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    socks = []
    failed = 0
    first_error = ""
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        try:
            s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
            s.sendall(REQUEST)
            status = read_response(s)
            if not status.startswith(b"HTTP/1.1 200"):
                raise OSError(f"status {status!r}")
            socks.append(s)
        except OSError as e:
            failed += 1
            first_error = first_error or str(e)
            try:
                s.close()
            except (OSError, UnboundLocalError):
                pass
    print(f"ready {len(socks)} {failed}", flush=True)
    if first_error:
        print(f"hold: first error: {first_error}", file=sys.stderr, flush=True)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([sys.stdin], [], [], left)
        if not r:
            break
        line = sys.stdin.readline()
        if not line:
            break
        if line.strip() == "check":
            print(f"alive {alive(socks)}", flush=True)
    for s in socks:
        s.close()
    return 0


# ---------------------------------------------------------------------------------------------
# Report

SCENARIOS = [
    ("ka", "keep-alive, {conns} conns"),
    ("close", "new connection per request, {conns} conns"),
    ("pipe", "pipelined x{depth}, {conns} conns"),
    ("log", "access log, keep-alive, {conns} conns"),
    ("mc", "multi-core, unpinned, keep-alive, {conns} conns"),
]

PRIORITY = {
    "rt": "SCHED_RR (chrt -r 1) when pinned, niceness -10 when unpinned; the kernel still "
          "lends other runnable processes up to 50 ms a second, which shows in p99 on a busy "
          "machine",
    "nice": "niceness -10",
    "none": "default",
}

ERRORS = ("connect", "read", "write", "timeout", "status")


def read_tsv(path):
    rows = []
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            if line.strip():
                rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    return rows


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_rate(x):
    return "-" if x is None else f"{x:,.0f}"


def fmt_us(x):
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x / 1000:.2f} ms"
    return f"{x:.0f} µs"


def fmt_cpu(x):
    return "-" if x is None else f"{x:.2f}"


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}×"


def fmt_kb(x):
    return "-" if x is None else f"{x:,.0f} kB"


def groups(rows):
    """(scenario, server) -> list of runs, in first-seen order."""
    out = {}
    for r in rows:
        out.setdefault((r["scenario"], r["server"]), []).append(r)
    return out


def summary(runs):
    ok = [r for r in runs if r["ok"] == "1"]
    errs = {k: sum(int(r.get(k) or 0) for r in runs) for k in ERRORS}
    return {
        "rps": median(num(r["rps"]) for r in ok),
        "p50": median(num(r["p50_us"]) for r in ok),
        "p99": median(num(r["p99_us"]) for r in ok),
        "cpu": median(num(r["cpu_us_req"]) for r in ok),
        "mean": median(num(r.get("mean_us")) for r in ok),
        "errors": errs,
        "runs": len(runs),
        "failed": len(runs) - len(ok),
        "rss": [num(r["rss_kb"]) for r in ok],
    }


def errors_text(s):
    total = sum(s["errors"].values())
    text = "0" if total == 0 else f"{total:,} (" + ", ".join(
        f"{k} {v:,}" for k, v in s["errors"].items() if v) + ")"
    if s["failed"]:
        text += f"; {s['failed']} run(s) failed"
    return text


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def paired(rows, scen, num_server, den_server, field):
    """Per-round ratios num/den (rounds alternate, so each pair ran back to back)."""
    by_round = {}
    for r in rows:
        if r["scenario"] == scen and r["ok"] == "1":
            by_round.setdefault(r["round"], {})[r["server"]] = num(r[field])
    out = []
    for rnd in sorted(by_round, key=int):
        a = by_round[rnd].get(num_server)
        b = by_round[rnd].get(den_server)
        if a is not None and b:
            out.append(a / b)
    return out


def fmt_range(xs):
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.2f}"
    return f"{min(xs):.2f}–{max(xs):.2f}"


def report(runs_path, memory_path, meta_path, out_path):
    meta = {}
    with open(meta_path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    rows = read_tsv(runs_path)
    mem = read_tsv(memory_path) if os.path.exists(memory_path) else []
    g = groups(rows)
    s = {k: summary(v) for k, v in g.items()}
    fill = {"conns": meta.get("conns", "64"), "depth": meta.get("depth", "16")}
    labels = {k: v.format(**fill) for k, v in SCENARIOS}
    lines = []
    out = lines.append

    out(f"Machine: {meta.get('machine', '?')}; {meta.get('date', '?')}")
    out("")
    out(f"tinyapi {meta.get('tinyapi', '?')} vs nginx {meta.get('nginx', '?')}, wrk {meta.get('wrk', '?')}. "
        f"{meta.get('mode', '')}: {meta.get('duration', '?')} s per run, {meta.get('rounds', '?')} "
        f"alternating round(s), medians shown. Pinned runs: server on CPU 0, wrk (1 thread) on CPU 1. "
        f"CPU µs/req = server utime+stime (/proc/PID/stat; nginx master + workers) ÷ requests "
        f"completed; resolution {meta.get('tick_us', '?')} µs of CPU per run. p50/p99 from wrk "
        f"(pipelined: per batch of {fill['depth']}). Scheduling of servers and wrk: "
        f"{PRIORITY.get(meta.get('priority'), meta.get('priority', '?'))}.")
    others = [num(r.get("others_pct")) for r in rows if num(r.get("others_pct")) is not None]
    load = f"Load average {meta.get('load', '?')} at the start, {meta.get('load_end', '?')} at the end"
    if others:
        load += (f"; CPU 0 time used by other processes during pinned runs (time the server "
                 f"left idle or lost): median "
                 f"{statistics.median(others):.0f}%, max {max(others):.0f}%")
    out("")
    out(load + ".")
    out("")
    out("| scenario | server | req/s | p50 | p99 | CPU µs/req | errors |")
    out("|---|---|---:|---:|---:|---:|---|")
    pipe_means = []
    for (scen, server), v in s.items():
        p50, p99 = fmt_us(v["p50"]), fmt_us(v["p99"])
        if scen == "pipe":
            p50 = p99 = "n/a"
            pipe_means.append(f"{server} {fmt_us(v['mean'])}")
        out(f"| {labels.get(scen, scen)} | {server} | {fmt_rate(v['rps'])} | {p50} | "
            f"{p99} | {fmt_cpu(v['cpu'])} | {errors_text(v)} |")
    out("")
    if pipe_means:
        out(f"Pipelined latency: wrk records one sample per batch of {fill['depth']} but corrects "
            f"for coordinated omission with the per-request rate, which breaks its percentiles "
            f"(p99 comes out as 0). Mean per batch instead: {', '.join(pipe_means)}.")
        out("")

    def get(scen, server):
        return s.get((scen, server), {"rps": None, "cpu": None})

    ratio_rows = [
        ("ka", "tinyapi", "nginx", "tinyapi ÷ nginx"),
        ("close", "tinyapi", "nginx", "tinyapi ÷ nginx"),
        ("pipe", "tinyapi", "nginx", "tinyapi ÷ nginx"),
        ("mc", "tinyapi --workers 2", "nginx worker_processes 2", "tinyapi ÷ nginx, 2 workers each"),
        ("mc", "tinyapi --workers 2", "tinyapi --workers 1", "tinyapi 2 workers ÷ 1 worker"),
        ("log", "tinyapi log → /dev/null", "tinyapi log off", "log → /dev/null ÷ log off"),
        ("log", "tinyapi log → file", "tinyapi log off", "log → file ÷ log off"),
    ]
    out("| scenario | ratio | req/s | CPU/req | req/s per round | CPU/req per round |")
    out("|---|---|---:|---:|---:|---:|")
    ratios = {}
    for scen, a, b, what in ratio_rows:
        if (scen, a) not in s or (scen, b) not in s:
            continue
        r_rps = ratio(get(scen, a)["rps"], get(scen, b)["rps"])
        r_cpu = ratio(get(scen, a)["cpu"], get(scen, b)["cpu"])
        ratios[(scen, a, b)] = (r_rps, r_cpu)
        out(f"| {labels.get(scen, scen)} | {what} | {fmt_ratio(r_rps)} | {fmt_ratio(r_cpu)} | "
            f"{fmt_range(paired(rows, scen, a, b, 'rps'))} | "
            f"{fmt_range(paired(rows, scen, a, b, 'cpu_us_req'))} |")
    out("")

    memory = {}
    if mem:
        out("| server | RSS fresh | RSS idle | RSS, 1,000 idle conns | RSS, 10,000 idle conns | "
            "conns still open at 10,000 | RSS after they close | RSS after load runs (min–max) |")
        out("|---|---:|---:|---:|---:|---:|---:|---:|")
        for m in mem:
            server = m["server"]
            memory[server] = m
            after = []
            for (scen, srv), v in s.items():
                if srv == server and scen in ("ka", "close", "pipe"):
                    after += [x for x in v["rss"] if x is not None]
            load = f"{min(after):,.0f}–{max(after):,.0f} kB" if after else "-"
            held = f"{m['alive_10000']} of {m['opened_10000']}"
            if m.get("failed_10000", "0") not in ("0", ""):
                held += f" ({m['failed_10000']} failed to open)"
            out(f"| {server} | {fmt_kb(num(m['fresh_kb']))} | {fmt_kb(num(m['idle_kb']))} | {fmt_kb(num(m['rss_1000_kb']))} | "
                f"{fmt_kb(num(m['rss_10000_kb']))} | {held} | {fmt_kb(num(m['after_kb']))} | {load} |")
        out("")
        out("RSS is VmRSS from /proc/PID/status (nginx: master + worker). Fresh: started, "
            "listening, no connection yet. Idle: after answering one request. Kernel socket "
            "buffers are not part of any process's RSS.")
        out("")

    goals = []

    only = meta.get("only", "ka,close,pipe,log,mc,memory").split(",")

    def goal(ok, text, scen):
        if scen not in only:
            goals.append(f"SKIP {text} (scenario not run)")
        elif ok is None:
            goals.append(f"MISS {text} (not measured)")
        else:
            goals.append(("PASS " if ok else "MISS ") + text)

    ka = ratios.get(("ka", "tinyapi", "nginx"), (None, None))
    close = ratios.get(("close", "tinyapi", "nginx"), (None, None))
    pipe = ratios.get(("pipe", "tinyapi", "nginx"), (None, None))
    log = ratios.get(("log", "tinyapi log → /dev/null", "tinyapi log off"), (None, None))

    def check(x, op, limit):
        if x is None:
            return None
        return x <= limit if op == "<=" else x >= limit

    goal(check(ka[1], "<=", 0.75), f"keep-alive CPU/req ≤ 0.75× nginx: {fmt_ratio(ka[1])}", "ka")
    goal(check(ka[0], ">=", 1.0), f"keep-alive req/s ≥ 1.0× nginx: {fmt_ratio(ka[0])}", "ka")
    goal(check(pipe[0], ">=", 3.0), f"pipelined req/s ≥ 3× nginx: {fmt_ratio(pipe[0])}", "pipe")
    goal(check(close[0], ">=", 1.0), f"new-connection req/s ≥ 1.0× nginx: {fmt_ratio(close[0])}",
         "close")
    goal(check(close[1], "<=", 0.85), f"new-connection CPU/conn ≤ 0.85× nginx: {fmt_ratio(close[1])}",
         "close")
    goal(check(log[1], "<=", 1.15), f"log-on CPU/req ≤ 1.15× log-off: {fmt_ratio(log[1])}", "log")
    t = memory.get("tinyapi", {})
    idle = num(t.get("idle_kb"))
    held = num(t.get("rss_10000_kb"))
    all_open = t.get("alive_10000") == "10000"
    fresh = num(t.get("fresh_kb"))
    goal(check(idle, "<=", 64), f"tinyapi idle RSS ≤ 64 kB: {fmt_kb(idle)} after one request "
         f"({fmt_kb(fresh)} fresh)", "memory")
    held_ok = check(held, "<=", 2048)
    if held_ok and not all_open:
        held_ok = False
    goal(held_ok, f"tinyapi RSS with 10,000 idle connections ≤ 2 MB (2,048 kB): {fmt_kb(held)}"
         + ("" if all_open or not t else f", but only {t.get('alive_10000')} were open"), "memory")
    out("Goals (ratios of medians, same run):")
    out("")
    out("```")
    lines.extend(goals)
    out("```")
    out("")

    out("<details><summary>All runs</summary>")
    out("")
    out("| scenario | server | round | req/s | p50 | p99 | CPU µs/req | requests | RSS after | others on CPU 0 | errors |")
    out("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        errs = ", ".join(f"{k} {r[k]}" for k in ERRORS if r.get(k) not in ("0", "", None)) or "0"
        if r["ok"] != "1":
            errs += f"; FAILED: {r.get('note', '')}"
        out(f"| {r['scenario']} | {r['server']} | {r['round']} | {fmt_rate(num(r['rps']))} | "
            f"{fmt_us(num(r['p50_us'])) if r['scenario'] != 'pipe' else 'n/a'} | "
            f"{fmt_us(num(r['p99_us'])) if r['scenario'] != 'pipe' else 'n/a'} | "
            f"{fmt_cpu(num(r['cpu_us_req']))} | {r['requests']} | {fmt_kb(num(r['rss_kb']))} | "
            f"{(r.get('others_pct') or '-') + ('%' if r.get('others_pct') else '')} | {errs} |")
    out("")
    out("</details>")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(out_path, "w") as f:
        f.write(text)
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "freeport":
        freeport()
        return 0
    if cmd == "wait":
        return wait(*args)
    if cmd == "listening":
        return listening(*args)
    if cmd == "get":
        return get(*args)
    if cmd == "sample":
        sample(args)
        return 0
    if cmd == "hold":
        return hold(*args)
    if cmd == "report":
        return report(*args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
