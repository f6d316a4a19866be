#!/usr/bin/env python3
"""bench/svgcheck.py: fails when two pieces of text in a chart overlap, or one is not drawn.

  python3 bench/svgcheck.py [FILE.svg ...]     (no files: every SVG file git tracks)

Each <text> element is drawn alone, by rsvg-convert (librsvg, what GNOME and many converters
use), with everything else in the file hidden; the box around the pixels it inked is that
text's box. Any two boxes that share a pixel are reported, and so is a text that inks nothing
(cut off by the canvas, or empty). Measuring the rendered pixels, rather than estimating
widths from font sizes, catches what a reader sees with the fonts this machine has.

Needs rsvg-convert (Debian's librsvg2-bin) and Pillow, which comes with matplotlib in the
environment of bench/charts.py.
"""

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import charts  # noqa: E402  (bench/charts.py: the virtual environment with Pillow)

SVG = "{http://www.w3.org/2000/svg}"
ZOOM = 2  # rendered at twice the size, so that boxes one pixel apart stay apart


def text_boxes(path, work):
    """[(text, (left, top, right, bottom))] of every <text> in the SVG, in rendered pixels."""
    from PIL import Image
    ET.register_namespace("", SVG[1:-1])
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    tree = ET.parse(path)
    root = tree.getroot()
    texts = list(root.iter(SVG + "text"))
    boxes = []
    for i, t in enumerate(texts):
        # visibility is inherited and may be overridden below: hide all, show this one.
        root.set("visibility", "hidden")
        for other in texts:
            other.attrib.pop("visibility", None)
        t.set("visibility", "visible")
        one = os.path.join(work, f"{i}.svg")
        png = os.path.join(work, f"{i}.png")
        tree.write(one)
        subprocess.run(["rsvg-convert", "-z", str(ZOOM), "-o", png, one], check=True)
        with Image.open(png) as im:
            box = im.getchannel("A").getbbox()
        label = "".join(t.itertext()).strip() or "(empty)"
        boxes.append((label, box))
    return boxes


def overlaps(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def check(path):
    problems = []
    with tempfile.TemporaryDirectory(prefix="svgcheck.") as work:
        boxes = text_boxes(path, work)
    for label, box in boxes:
        if box is None:
            problems.append(f"{label!r} is not drawn")
    drawn = [(label, box) for label, box in boxes if box]
    for i, (la, a) in enumerate(drawn):
        for lb, b in drawn[i + 1:]:
            if overlaps(a, b):
                problems.append(f"{la!r} {a} overlaps {lb!r} {b}")
    return len(boxes), problems


def main():
    charts.use_venv()
    files = sys.argv[1:] or subprocess.run(
        ["git", "ls-files", "*.svg"], cwd=charts.ROOT, capture_output=True, text=True,
        check=True).stdout.split()
    failed = 0
    for f in files:
        path = f if os.path.isabs(f) else os.path.join(charts.ROOT, f)
        if not os.path.exists(path) and os.path.exists(f):
            path = f
        n, problems = check(path)
        for p in problems:
            print(f"svgcheck: {f}: {p}")
        print(f"svgcheck: {f}: {n} texts, {'no overlaps' if not problems else 'FAIL'}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
