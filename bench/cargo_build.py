"""The one way the bench programs (compare, sizemap.py) find a binary they build: run cargo with
JSON messages and take the executable it reports, rather than guessing target paths."""

import json
import os
import subprocess


def executable(args, cwd, env=None, name=None):
    """Runs `cargo ARGS` (a subcommand first: build, rustc) in `cwd` with `env` added to the
    environment; returns the path of the last executable it built (of target `name`, if given).
    Raises RuntimeError when cargo fails."""
    cmd = ["cargo", args[0], "--message-format=json-render-diagnostics", *args[1:]]
    run = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})},
                         stdout=subprocess.PIPE, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` in {cwd} failed")
    exe = None
    for line in run.stdout.splitlines():
        if not line.startswith("{"):
            continue
        m = json.loads(line)
        if m.get("executable") and (name is None or m["target"]["name"] == name):
            exe = m["executable"]
    return exe
