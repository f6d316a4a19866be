"""The charts of bench/compare, drawn with matplotlib, and the Python environment they need.

  python3 bench/charts.py      draws bench/chart.svg and bench/scale.svg again from the figures
                               bench/compare saved next to them (bench/results.json,
                               bench/scale.json), without measuring anything

Why matplotlib and not SVG written by hand: the hand-written chart placed every label at a
fixed offset and could not know how wide its text would be, so legends ran into panel titles
and tick labels into each other. matplotlib measures its text and lays the figure out around
it (constrained layout), picks log-axis ticks itself, and writes plain SVG in which text stays
text (svg.fonttype none), which bench/svgcheck.py can then test for overlaps. It is the one
PyPI package the benchmarks need; it goes into a virtual environment under target/, pinned,
and the scripts re-run themselves in it (`use_venv`).

Units: one per axis, said in the axis label, and the labels on the bars in their axis' unit:
KiB (1,024 bytes, the unit /proc counts memory in and the size budget is set in) for sizes and
resident memory, MB (1,000,000 bytes) for the memory of many connections.
"""

import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(ROOT, "target", "bench", "venv")
# Pinned so that two runs draw the same SVG; Pillow (for bench/svgcheck.py) comes with it.
REQUIREMENTS = ["matplotlib==3.10.9"]


def use_venv():
    """Re-executes the running script under the virtual environment's Python, creating the
    environment first when it is missing; returns at once when already inside it."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    stamp = os.path.join(VENV, "requirements.txt")
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if not os.path.exists(stamp) or open(stamp).read() != wanted:
        print(f"charts: installing {' '.join(REQUIREMENTS)} into {VENV}", file=sys.stderr)
        if subprocess.run([sys.executable, "-m", "venv", VENV]).returncode != 0:
            # Debian's Python keeps ensurepip in a package of its own.
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "python3-venv"], check=True)
            subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
        with open(stamp, "w") as f:
            f.write(wanted)
    os.execv(python, [python, os.path.abspath(sys.argv[0]), *sys.argv[1:]])


def _pyplot():
    import matplotlib
    matplotlib.use("svg")
    matplotlib.rcParams.update({
        "svg.fonttype": "none",         # text stays <text>: smaller, selectable, checkable
        "svg.hashsalt": "tinyapi",      # the same ids on every run
        "font.family": "DejaVu Sans",
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    fig.savefig(path, format="svg", metadata={"Date": None})
    import matplotlib.pyplot as plt
    plt.close(fig)


def figures(x):
    """x to three significant figures (all of its integer digits), with thousands separators
    and never an exponent."""
    if x == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    text = f"{round(x, digits):,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _log_ticks(ax, axis):
    """Decade ticks labelled as plain numbers (the values are already in the axis' unit)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    get = ax.xaxis if axis == "x" else ax.yaxis
    get.set_major_locator(LogLocator(base=10))
    get.set_major_formatter(FuncFormatter(lambda v, _: figures(v)))
    get.set_minor_formatter(NullFormatter())


# Colours that stay apart for colour-blind readers (Okabe and Ito).
COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]


def size_chart(rows, path, title):
    """Two panels of horizontal bars on log scales: image bytes, and resident memory idle and
    with 1,000 idle connections. rows: dicts with label, image, idle, held (bytes or None)."""
    plt = _pyplot()
    labels = [r["label"] for r in rows]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 7.2), layout="constrained", gridspec_kw={"height_ratios": [1, 1.6]})
    fig.suptitle(title, fontsize=13, fontweight="bold")
    KiB = 1024

    def panel(ax, heading, series, names, colors):
        ax.set_title(heading, loc="left", fontsize=11)
        height = 0.8 / len(series)
        series = [[v / KiB if v else None for v in s] for s in series]
        values = [v for s in series for v in s if v]
        for k, s in enumerate(series):
            ys = [i + (k - (len(series) - 1) / 2) * height for i in range(len(labels))]
            for y, v in zip(ys, s):
                if v:
                    ax.barh(y, v, height=height * 0.9, color=colors[k])
                    ax.text(v * 1.08, y, f"{figures(v)} KiB", va="center", fontsize=9)
                else:
                    ax.text(min(values) if values else 1, y, "  not measured", va="center",
                            fontsize=9, color="#666666")
        ax.set_xscale("log")
        if values:
            lo = 10 ** math.floor(math.log10(min(values)))
            hi = 10 ** math.ceil(math.log10(max(values)) + 0.4)  # room for the labels
            ax.set_xlim(lo, hi)
        _log_ticks(ax, "x")
        ax.set_xlabel("KiB (1 KiB = 1,024 bytes), log scale")
        ax.set_yticks(range(len(labels)), labels)
        ax.get_yticklabels()[0].set_fontweight("bold")
        ax.invert_yaxis()
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        if len(series) > 1:
            from matplotlib.patches import Patch
            ax.legend(handles=[Patch(color=c, label=n) for c, n in zip(colors, names)],
                      loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(series),
                      frameon=False)

    panel(top, "Container image size", [[r["image"] for r in rows]], ["image"], [COLORS[0]])
    panel(bottom, "Resident memory (VmRSS of the server's processes)",
          [[r["idle"] for r in rows], [r["held"] for r in rows]],
          ["idle, after one request", "holding 1,000 idle keep-alive connections"],
          [COLORS[2], COLORS[1]])
    _save(fig, path)


def scale_chart(scale, path):
    """Memory against connections held, log-log: per server its processes' resident memory
    (solid) and the kernel's added memory, both ends of every connection (dashed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.6), layout="constrained")
    fig.suptitle("Memory against idle keep-alive connections held", fontsize=13,
                 fontweight="bold")
    MB = 1e6
    for i, (key, srv) in enumerate(scale["servers"].items()):
        points = [p for p in srv["points"] if p.get("held")]
        if not points:
            continue
        xs = [p["held"] for p in points]
        ax.plot(xs, [p["rss_bytes"] / MB for p in points], marker="o", color=COLORS[i],
                label=f"{srv['label']}: user space (RSS, {srv['workers']} processes)")
        kernel = [(x, p["kernel_bytes"] / MB) for x, p in zip(xs, points) if p["kernel_bytes"] > 0]
        if kernel:
            ax.plot(*zip(*kernel), marker="s", linestyle="--", color=COLORS[i], alpha=0.7,
                    label=f"{srv['label']}: kernel (slab and socket buffers, both ends)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.set_ylim(10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi)))
    _log_ticks(ax, "y")
    from matplotlib.ticker import FuncFormatter
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("idle keep-alive connections held (log scale)")
    ax.set_ylabel("MB (1 MB = 1,000,000 bytes), log scale")
    ax.grid(which="major", color="#dddddd", linewidth=0.6)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    ax.set_title(scale["meta"]["machine_short"], loc="left", fontsize=9, color="#444444")
    _save(fig, path)


def main():
    use_venv()
    with open(os.path.join(HERE, "results.json")) as f:
        size_chart(json.load(f)["chart"], os.path.join(HERE, "chart.svg"),
                   "tinyapi and the same service in other stacks, FROM scratch")
    scale = os.path.join(HERE, "scale.json")
    if os.path.exists(scale):
        with open(scale) as f:
            scale_chart(json.load(f), os.path.join(HERE, "scale.svg"))


if __name__ == "__main__":
    main()
