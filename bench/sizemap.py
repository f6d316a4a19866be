#!/usr/bin/env python3
"""Where the bytes of the tinyapi binary go, and which members of musl's libc.a it links.

  python3 bench/sizemap.py [--target TRIPLE]               size map of the release binary
  python3 bench/sizemap.py --check-libc [--target TRIPLE]  exit 1 if a libc.a member outside
                                                           ALLOWED_LIBC is linked
(the default target is the one .cargo/config.toml names)

Builds the release binary, then an unstripped twin in <target dir>/sizemap with a linker map
(build.rs honours TINYAPI_LINK_MAP). The twin has the same profile and only adds `-C strip=none`
to its final link, so crate hashes and code layout stay the same; the report checks that its
loaded bytes equal the release binary's. Each byte of the loaded image (file start to the end
of the last LOAD segment) counts once, from the map's input sections: Rust code by the demangled
path of its function (code inlined into a function counts where that function lives), C code by
object or archive member, pooled and anonymous constants as read-only data, the rest as headers
and fill. Reads lld and GNU ld maps. Needs cargo and c++filt (binutils).
"""

import argparse
import collections
import functools
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# With tinyapi's own entry point, musl's start-up code no longer runs: no thread pointer, no
# TLS, no errno. Any libc function that touches errno or TLS would crash, so only these pure
# memory and string routines (which the compiler itself emits calls to) may stay linked.
ALLOWED_LIBC = ("memcpy", "memmove", "memset", "memcmp", "bcmp", "strlen")

GROUPS = ("tinyapi", "core", "httparse", "itoa", "compiler_builtins", "libc/musl")
TAIL = ("outlined code", "read-only data", "linker-generated", "headers/padding",
        "other/unattributed")
KINDS = ("code", "rodata", "data", "hdr+pad")
SHF_WRITE, SHF_ALLOC, SHT_NOBITS, PT_LOAD = 1, 2, 8, 1

Section = collections.namedtuple("Section", "name type flags addr offset size")
Input = collections.namedtuple("Input", "addr size obj name")


def cargo(args, env=None):
    """Runs `cargo ARGS` in the repository; returns the tinyapi executable it produced."""
    cmd = ["cargo", args[0], "--message-format=json-render-diagnostics", *args[1:]]
    run = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                         stdout=subprocess.PIPE, text=True)
    if run.returncode:
        sys.exit(f"sizemap: `{' '.join(cmd)}` failed")
    messages = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return next(Path(m["executable"]) for m in reversed(messages)
                if m.get("executable") and m["target"]["name"] == "tinyapi")


def build_twin(target):
    """Links the unstripped twin and its map anew; returns (binary, map file)."""
    meta = subprocess.run(["cargo", "metadata", "--format-version=1", "--no-deps"], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True, check=True).stdout
    twin_dir = Path(json.loads(meta)["target_directory"]) / "sizemap"
    map_file = twin_dir / f"{target}.map"
    env = {"CARGO_TARGET_DIR": str(twin_dir), "TINYAPI_LINK_MAP": str(map_file)}
    subprocess.run(["cargo", "clean", "-q", "-p", "tinyapi", "--release", "--target", target],
                   cwd=ROOT, env={**os.environ, **env}, check=True)  # else cargo may not relink
    return cargo(["rustc", "--release", "--target", target, "--bin", "tinyapi",
                  "--", "-C", "strip=none"], env), map_file


def read_elf(path):
    """The file's bytes and what the report needs from its headers (little-endian ELF64)."""
    data = Path(path).read_bytes()
    if data[:6] != b"\x7fELF\x02\x01":
        sys.exit(f"sizemap: {path} is not a little-endian ELF64 file")
    phoff, shoff, _, ehsize, phentsize, phnum, shentsize, shnum, shstrndx = \
        struct.unpack_from("<QQIHHHHHH", data, 0x20)
    raw = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = raw[shstrndx][4]
    sections = [Section(data[strtab + n:data.index(b"\0", strtab + n)].decode(), *rest)
                for n, *rest in raw]
    loads = [struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize) for i in range(phnum)]
    return data, dict(ehsize=ehsize, phoff=phoff, phsize=phnum * phentsize, shoff=shoff,
                      shsize=shnum * shentsize, shnum=shnum, sections=sections,
                      image_end=max(o + size for t, _, o, _, _, size in loads if t == PT_LOAD))


def parse_map(path):
    """(linker, input sections: address, size, object, section name) from an lld or GNU ld map."""
    lines = Path(path).read_text().splitlines()
    if lines and lines[0].split()[:2] == ["VMA", "LMA"]:  # lld: `object:(section)` indented by 9
        lld = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+ {9}(\S.*):\((.*)\)$")
        return "lld", [Input(int(m[1], 16), int(m[2], 16), m[3], m[4])
                       for m in map(lld.match, lines) if m]
    named = re.compile(r"^ ([^\s*]\S*)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(.*))?$")
    wrapped = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    inputs, name = [], None
    for line in lines[lines.index("Linker script and memory map"):]:
        m = named.match(line)
        if m and not m[2]:
            name = m[1]  # a long name: address, size and object follow on the next line
            continue
        w = wrapped.match(line) if name else None
        if m or w:
            section, addr, size, obj = (m[1], *m.group(2, 3, 4)) if m else (name, *w.groups())
            inputs.append(Input(int(addr, 16), int(size, 16), obj.strip(), section))
        name = None
    return "GNU ld", inputs


def section_at(elf, addr):
    """The allocated output section holding ADDR, or None (debug info, symbol tables)."""
    return next((s for s in elf["sections"]
                 if s.flags & SHF_ALLOC and s.addr <= addr < s.addr + s.size), None)


def file_inputs(elf, inputs):
    """(file offset, input section, output section) for each input section with file bytes."""
    return [(out.offset + inp.addr - out.addr, inp, out) for inp in inputs
            for out in [section_at(elf, inp.addr)] if out and out.type != SHT_NOBITS and inp.size]


def demangle(sections):
    """{section name: demangled Rust symbol} for sections named after one (legacy or v0)."""
    if not shutil.which("c++filt"):
        sys.exit("sizemap: c++filt not found; it is part of binutils: apt-get install binutils")
    symbol = re.compile(r"\.(_ZN[\w.$]*?E|_R[0-9A-Z]\w*)(?:\.llvm\.\d+)?(?:\.\d+)?$")
    mangled = {s: m[1] for s in sections for m in [symbol.search(s)] if m}
    out = subprocess.run(["c++filt"], input="\n".join(mangled.values()), stdout=subprocess.PIPE,
                         text=True, check=True).stdout.splitlines()
    return {s: re.sub(r"::h[0-9a-f]{16}$", "", d) for s, d in zip(mangled, out)}


def plain_name(section):
    """The C name in `.text.NAME` (none for a bare `.text`)."""
    parts = re.sub(r"(\.str\d+)?(\.\d+)?$", "", section).split(".")
    return parts[-1] if len(parts) > 2 else ""


def source_modules():
    """{module: source file} for src/NAME.rs and src/NAME/mod.rs."""
    files = sorted((ROOT / "src").glob("*.rs")) + sorted((ROOT / "src").glob("*/mod.rs"))
    return {p.parent.name if p.name == "mod.rs" else p.stem: str(p.relative_to(ROOT))
            for p in files}


def exported_symbols(modules):
    """{unmangled symbol: module} for #[no_mangle] and export_name items, global_asm `.globl`
    names and the panic handler (whose symbol is rust_begin_unwind)."""
    pattern = re.compile(r'no_mangle\)?\][^{;]*?\b(?:fn|static)\s+(?:mut\s+)?(\w+)'
                         r'|export_name\s*=\s*"([^"]+)"|\.globa?l\s+(\w+)|(#\[panic_handler\])')
    return {m[1] or m[2] or m[3] or "rust_begin_unwind": module for module, path in modules.items()
            for m in pattern.finditer((ROOT / path).read_text())}


def owner_path(name):
    """The path a Rust symbol belongs to: `<T as Trait>::f` to T if T is a path, else (a
    primitive, slice, reference or generic parameter) to Trait; `<[T]>::f` to core."""
    name = re.sub(r"\[[0-9a-f]+\]", "", name)  # v0 crate disambiguators
    while name.startswith("<"):
        depth, split = 0, None
        for end, c in enumerate(name):
            depth += (c == "<") - (c == ">")
            if depth == 1 and split is None and name.startswith(" as ", end):
                split = end
            if depth == 0:
                break
        self_ty = re.sub(r"^[&*]*(?:mut |const |dyn )?", "", name[1:split or end])
        trait = name[split + 4:end] if split else ""
        name = self_ty if re.match(r"<|[A-Za-z_]\w*::", self_ty) else trait or "core"
    return name


def row_of(inp, names, exports, modules):
    """(group, row) that an input section's bytes belong to."""
    base = os.path.basename(inp.obj)
    archive = re.search(r"lib(\w+?)(?:-[0-9a-f]+)?\.(a|rlib)\((.*)\)$", inp.obj)
    if re.search(r"\.(cst\d+|str\d+\.\d+)$", inp.name):
        return "read-only data", "merged constants/strings (linker pools)"
    if re.match(r"\.(got|plt|iplt|igot)", inp.name) or inp.obj == "<internal>":
        return "linker-generated", inp.name
    if archive and archive[2] == "rlib":
        return archive[1], archive[1]
    if archive:
        return ("libc/musl" if archive[1] == "c" else f"lib{archive[1]}.a"), base
    if re.match(r"[Sr]?crt\w*\.o$", base):
        return "libc/musl", f"{base} (start file)"
    if not inp.obj.endswith(".rcgu.o"):
        return "other/unattributed", base
    symbol = names.get(inp.name)  # the Rust object: one function or constant per section
    if symbol is None and "OUTLINED_FUNCTION_" in inp.name:
        return "outlined code", "outlined code"  # LLVM's machine outliner: shared by functions
    if symbol is None and "..L" in inp.name:
        return "read-only data", "anonymous Rust constants (strings, tables)"
    path = owner_path(symbol or plain_name(inp.name))
    crate, _, rest = path.partition("::")
    module = exports.get(re.sub(r"^__rustc::", "", path))
    if module or crate == "tinyapi":
        module = module or rest.split("::")[0]
        return "tinyapi", modules.get(module, modules.get("lib", "src/lib.rs"))
    return (crate, crate) if rest else ("other/unattributed", f"Rust object: {inp.name}")


def kind_of(inp, out_section):
    if re.match(r"\.(text|init|fini|plt|iplt)\b", inp.name):
        return "code"
    return "data" if out_section.flags & SHF_WRITE else "rodata"


def claim(owner, start, end, label):
    """Gives the unclaimed bytes of [start, end) to LABEL; returns how many were claimed before."""
    free = [i for i in range(start, min(end, len(owner))) if owner[i] is None]
    for i in free:
        owner[i] = label
    return min(end, len(owner)) - start - len(free)


def attribute(elf, inputs, row):
    """{group: {row: Counter(kind: bytes)}} over the loaded image; sums to its size."""
    owner = [None] * elf["image_end"]
    claim(owner, 0, elf["ehsize"], ("headers/padding", "ELF header", "hdr+pad"))
    claim(owner, elf["phoff"], elf["phoff"] + elf["phsize"],
          ("headers/padding", "program headers", "hdr+pad"))
    for start, inp, out in file_inputs(elf, inputs):
        if claim(owner, start, start + inp.size, (*row(inp), kind_of(inp, out))):
            print(f"sizemap: warning: {inp.obj}:({inp.name}) overlaps another input section; "
                  "the overlap counts for the first", file=sys.stderr)
    table = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
    for label in owner:
        group, row_name, kind = label or ("headers/padding", "alignment fill", "hdr+pad")
        table[group][row_name][kind] += 1
    return table


def file_layout(data, elf):
    """(part, bytes) covering the whole file: loaded image, other sections, section headers."""
    owner = [None] * len(data)
    claim(owner, 0, elf["image_end"], "loaded image")
    for s in elf["sections"]:
        if s.type != SHT_NOBITS and not s.flags & SHF_ALLOC:
            label = ".debug_*" if s.name.startswith(".debug") else s.name
            claim(owner, s.offset, s.offset + s.size, label)
    claim(owner, elf["shoff"], elf["shoff"] + elf["shsize"], f"section headers ({elf['shnum']})")
    return collections.Counter(label or "alignment fill" for label in owner).items()


def loaded_image(data, elf):
    """The loaded image, with the ELF header's section-table fields (offset, count) blanked."""
    image = bytearray(data[:elf["image_end"]])
    image[0x28:0x30], image[0x3c:0x40] = bytes(8), bytes(4)
    return bytes(image)


def libc_members(elf, inputs):
    """{libc.a member: names of its sections} for members with code, data or .bss linked."""
    members = collections.defaultdict(set)
    for inp in inputs:
        m = re.search(r"/libc\.a\((.*)\)$", inp.obj)
        if m and inp.size and section_at(elf, inp.addr):
            members[m[1]].add(plain_name(inp.name) or inp.name)
    return dict(sorted(members.items()))


def print_table(table, modules, total):
    for path in modules.values():  # every library module gets a row, even when all inlined
        if not path.endswith("main.rs"):
            table["tinyapi"][path]["code"] += 0
    for group in GROUPS:  # and so does every crate
        table[group][group]["code"] += 0
    line = "{:<44}" + "{:>8}" * 5 + "{:>7}"
    print(line.format("", *KINDS, "total", "%"))

    def show(name, kinds):
        cells = [kinds[k] for k in KINDS]
        print(line.format(name[:44], *(f"{c:,}" if c else "." for c in cells),
                          f"{sum(cells):,}", f"{100 * sum(cells) / total:.1f}"))

    others = sorted(set(table) - set(GROUPS) - set(TAIL))
    for group in [*GROUPS, *others, *(g for g in TAIL if g in table)]:
        show(group, sum(table[group].values(), collections.Counter()))
        rows = sorted(table[group].items(), key=lambda r: (-sum(r[1].values()), r[0]))
        for row, kinds in rows:
            if row != group:
                show("  " + row, kinds)
    show("total (loaded image of the unstripped twin)",
         sum((k for rows in table.values() for k in rows.values()), collections.Counter()))


def print_top(elf, inputs, names, row, count=15):
    code = [inp for _, inp, out in file_inputs(elf, inputs) if kind_of(inp, out) == "code"]
    print(f"\nThe {count} largest functions")
    for inp in sorted(code, key=lambda inp: -inp.size)[:count]:
        stem = re.sub(r"\.l?o\)?$", "", os.path.basename(inp.obj)).split("(")[-1]
        name = names.get(inp.name) or plain_name(inp.name) or f"{stem} ({inp.name})"
        print(f"{inp.size:>8,}  {row(inp)[1]:<30} {name[:90]}")


def print_libc(members):
    """Lists the members, marking those outside ALLOWED_LIBC; returns those."""
    bad = [m for m in members if re.sub(r"\.l?o$", "", m) not in ALLOWED_LIBC]
    print(f"  {'':<12}{'member':<24}sections linked (NAME for .text.NAME, .bss.NAME, ...)")
    for member, sections in members.items():
        verdict = "NOT ALLOWED" if member in bad else "ok"
        print(f"  {verdict:<12}{member:<24}{' '.join(sorted(sections))}")
    return bad


def report(target, release, twin, map_file):
    (data, elf), (rel_data, rel_elf) = read_elf(twin), read_elf(release)
    (linker, inputs), modules = parse_map(map_file), source_modules()
    names = demangle({inp.name for inp in inputs})
    row = functools.partial(row_of, names=names, exports=exported_symbols(modules), modules=modules)
    print(f"tinyapi size map: {target}, linked by {linker}. Bytes in the file (.bss has none).\n")
    print_table(attribute(elf, inputs, row), modules, elf["image_end"])
    print_top(elf, inputs, names, row)
    print("\nThe total above is the loaded image: file start to the end of the last LOAD segment.")
    for title, path, d, e in ("release binary", release, rel_data, rel_elf), \
                             ("unstripped twin", twin, data, elf):
        shown = path.relative_to(ROOT) if ROOT in path.parents else path
        print(f"{title} {shown}: {len(d):,} bytes")
        for part, n in file_layout(d, e):
            print(f"{n:>10,}  {part}")
    same = loaded_image(rel_data, rel_elf) == loaded_image(data, elf)
    print(f"loaded images identical: {'yes' if same else 'NO: the map describes another build'}; "
          f"release binary - loaded image = {len(rel_data) - rel_elf['image_end']:,} bytes "
          "(section headers and their names)")
    members = libc_members(elf, inputs)
    print(f"\nlibc.a members linked: {len(members)} (allowed after an own entry point: "
          f"{', '.join(ALLOWED_LIBC)}; see --check-libc)")
    print_libc(members)


def check_libc(target, twin, map_file):
    _, elf = read_elf(twin)
    members = libc_members(elf, parse_map(map_file)[1])
    print(f"libc.a members linked into tinyapi for {target}: {len(members)}")
    bad = print_libc(members)
    allowed = ", ".join(ALLOWED_LIBC)
    if bad:
        print(f"FAIL: {len(bad)} libc.a members outside ALLOWED_LIBC ({allowed}): {', '.join(bad)}")
        return 1
    print(f"OK: only members of ALLOWED_LIBC ({allowed}) are linked")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", help="target triple (default: as `cargo build`)")
    parser.add_argument("--check-libc", action="store_true", help="list the linked libc.a "
                        "members; exit 1 if one is outside ALLOWED_LIBC")
    args = parser.parse_args()
    release = cargo(["build", "--release", *(["--target", args.target] if args.target else [])])
    target = release.parent.parent.name  # <target dir>/<triple>/release/tinyapi
    if args.check_libc:
        sys.exit(check_libc(target, *build_twin(target)))
    report(target, release, *build_twin(target))


if __name__ == "__main__":
    main()
