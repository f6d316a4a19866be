#!/usr/bin/env python3
"""Where the bytes of the tinyapi binary go, and which members of musl's libc.a it links.

  python3 bench/sizemap.py [--target T]                size map of the release binary
  python3 bench/sizemap.py --check-libc [--target T]   the same, and exit 1 if a libc.a member
                                                       outside ALLOWED_LIBC is linked
(T: a row of .cargo/platforms, by name or triple; the default target is the one
.cargo/config.toml names)

Builds the release binary as .cargo/build-target does (the row's toolchain, and -Zbuild-std for a
nightly row), then an unstripped twin in <target dir>/sizemap with rust-lld's
map (build.rs honours TINYAPI_LINK_MAP; the twin keeps the section headers .cargo/lld-trim cuts
off the release binary). The twin only adds `-C strip=none` to the final link, so its loaded
bytes equal the release binary's; the report checks that. Each byte of the loaded image (file
start to the end of the last LOAD segment's file bytes) counts once, from the map's input
sections: Rust code by its function's module file (inlined code counts where it was inlined),
global_asm and #[no_mangle] symbols by the file defining them, C code by archive member, pooled
and anonymous constants as read-only data, the rest as headers and fill. Needs c++filt.
"""

import argparse
import collections
import functools
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import cargo_build  # noqa: E402  (bench/cargo_build.py, shared with bench/compare)

# With tinyapi's own entry point, musl's start-up code no longer runs: no thread pointer, no
# TLS, no errno. Any libc function that touches errno or TLS would crash, so only these pure
# memory and string routines (which the compiler itself emits calls to) may stay linked.
ALLOWED_LIBC = ("memcpy", "memmove", "memset", "memcmp", "bcmp")

GROUPS = ("tinyapi", "core", "httparse", "compiler_builtins", "libc/musl")
TAIL = ("outlined code", "read-only data", "linker-generated", "headers/padding",
        "other/unattributed")
KINDS = ("code", "rodata", "data", "hdr+pad")
SHF_WRITE, SHF_ALLOC, SHT_NOBITS, PT_LOAD = 1, 2, 8, 1

Section = collections.namedtuple("Section", "name type flags addr offset size")
Input = collections.namedtuple("Input", "addr size obj name symbols")


def build_target():
    """.cargo/build-target as a module: the platform table, and how each row is built."""
    loader = importlib.machinery.SourceFileLoader("build_target",
                                                  str(ROOT / ".cargo" / "build-target"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def cargo(args, env=None):
    """Runs `cargo ARGS` in the repository; returns the tinyapi executable it produced."""
    try:
        return Path(cargo_build.executable(args, ROOT, env, name="tinyapi"))
    except RuntimeError as e:
        sys.exit(f"sizemap: {e}")


def build_twin(target, build):
    """Links the unstripped twin and its map anew with BUILD's toolchain and flags; returns
    (binary, map file)."""
    meta = subprocess.run(["cargo", "metadata", "--format-version=1", "--no-deps"], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True, check=True).stdout
    twin_dir = Path(json.loads(meta)["target_directory"]) / "sizemap"
    map_file = twin_dir / f"{target}.map"
    env = {**build.env, "CARGO_TARGET_DIR": str(twin_dir), "TINYAPI_LINK_MAP": str(map_file)}
    subprocess.run(["cargo", "clean", "-q", "-p", "tinyapi", "--release", "--target", target],
                   cwd=ROOT, env={**os.environ, **env}, check=True)  # else cargo may not relink
    return cargo(["rustc", "--release", "--target", target, "--bin", "tinyapi", *build.flags,
                  "--", "-C", "strip=none"], env), map_file


# The layouts of ELF32 and ELF64 by EI_CLASS (1, 2): the header from e_phoff on, a section
# header's first six fields (name type flags addr offset size), a program header's first six
# (ELF32: type offset vaddr paddr filesz memsz; ELF64: type flags offset vaddr paddr filesz), the
# index of p_offset and p_filesz among those, and where the header's section-table fields lie
# (e_shoff; e_shentsize, e_shnum, e_shstrndx).
ELF_CLASS = {
    1: dict(header=(0x1C, "IIIHHHHHH"), section="IIIIII", segment=("IIIIII", 1, 4),
            shoff=slice(0x20, 0x24), shfields=slice(0x2E, 0x34)),
    2: dict(header=(0x20, "QQIHHHHHH"), section="IIQQQQ", segment=("IIQQQQ", 2, 5),
            shoff=slice(0x28, 0x30), shfields=slice(0x3A, 0x40)),
}


def read_elf(path):
    """The file's bytes and what the report needs from its headers (ELF32 or ELF64, read in
    the file's byte order); the loaded image ends with the last LOAD segment's file bytes."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] not in ELF_CLASS or data[5] not in (1, 2):
        sys.exit(f"sizemap: {path} is not an ELF file")
    layout, order = ELF_CLASS[data[4]], "<>"[data[5] - 1]
    at, header = layout["header"]
    phoff, shoff, _, ehsize, phentsize, phnum, shentsize, shnum, shstrndx = \
        struct.unpack_from(order + header, data, at)
    raw = [struct.unpack_from(order + layout["section"], data, shoff + i * shentsize)
           for i in range(shnum)]
    strtab = raw[shstrndx][4] if raw else 0  # none in the release binary (.cargo/lld-trim)
    sections = [Section(data[strtab + n:data.index(b"\0", strtab + n)].decode(), *rest)
                for n, *rest in raw]
    segment, offset, filesz = layout["segment"]
    loads = [struct.unpack_from(order + segment, data, phoff + i * phentsize)
             for i in range(phnum)]
    return data, dict(ehsize=ehsize, phoff=phoff, phsize=phnum * phentsize, shnum=shnum,
                      sections=sections, layout=layout,
                      image_end=max(p[offset] + p[filesz] for p in loads if p[0] == PT_LOAD))


def parse_map(path):
    """Input sections (address, size, object, section name, symbols in it) from rust-lld's map:
    `object:(section)` indented by 9, followed by its symbols indented by 17."""
    lines = Path(path).read_text().splitlines()
    if not lines or lines[0].split()[:2] != ["VMA", "LMA"]:
        sys.exit(f"sizemap: {path} is not a map written by rust-lld")
    line = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+( {9}| {17})(\S.*)$")
    inputs = []
    for m in filter(None, map(line.match, lines)):
        if m[3] == " " * 9 and (obj := re.match(r"(.*):\((.*)\)$", m[4])):
            inputs.append(Input(int(m[1], 16), int(m[2], 16), obj[1], obj[2], []))
        elif m[3] == " " * 17 and inputs:
            inputs[-1].symbols.append(m[4])
    return inputs


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
    # Legacy names end with a hash; v0 names (the nightly's default) carry a disambiguator
    # after each crate name: `core[62a5fd64e9bb18de]::ptr`.
    return {s: re.sub(r"::h[0-9a-f]{16}$|\[[0-9a-f]+\]", "", d) for s, d in zip(mangled, out)}


def plain_name(section):
    """The C name in `.text.NAME` (none for a bare `.text`)."""
    parts = re.sub(r"(\.str\d+)?(\.\d+)?$", "", section).split(".")
    return parts[-1] if len(parts) > 2 else ""


def module_parts(path):
    """The module path of a library source file by its place: () for src/lib.rs, ("sys",) for
    src/sys.rs or src/sys/mod.rs, ("sys", "start") for src/sys/start.rs."""
    parts = path.relative_to(ROOT / "src").with_suffix("").parts
    return parts[:-1] if parts == ("lib",) or parts[-1] == "mod" else parts


def target_arch(target, build):
    """The `target_arch` of a target triple, as rustc names it (i686: x86, armv7: arm)."""
    cfg = subprocess.run(["rustc", "--print", "cfg", "--target", target], cwd=ROOT,
                         env={**os.environ, **build.env}, stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    return re.search(r'^target_arch="(\w+)"$', cfg, re.M)[1]


def arch_tables(arch):
    """({module path: file} for each module a table of `#[cfg_attr(target_arch = "..", path =
    "..")]` lines picks for `arch`, {the files such tables name for other architectures})."""
    table = re.compile(r'((?:#\[cfg_attr\(target_arch = "\w+", path = "[^"]+"\)\]\s*)+)'
                       r'(?:pub(?:\([^)]*\))? )?mod (\w+);')
    line = re.compile(r'target_arch = "(\w+)", path = "([^"]+)"')
    chosen, others = {}, set()
    for path in sorted((ROOT / "src").rglob("*.rs")):
        for m in table.finditer(path.read_text()):
            for a, name in line.findall(m[1]):
                file = str((path.parent / name).relative_to(ROOT))
                if a == arch:
                    chosen[module_parts(path) + (m[2],)] = file
                else:
                    others.add(file)
    return chosen, others


def included_files():
    """The files under src/ that a source file pulls in with `include!("..")`: not modules."""
    return {str((path.parent / m[1]).resolve().relative_to(ROOT))
            for path in sorted((ROOT / "src").rglob("*.rs"))
            for m in re.finditer(r'include!\("([^"]+)"\)', path.read_text())}


def source_modules(arch):
    """{module path: source file} for the library built for `arch` (see module_parts; a file
    picked by an architecture table is its module's, those of other architectures are left
    out); not src/main.rs nor src/bin/, nor files pulled in by include!."""
    chosen, others = arch_tables(arch)
    others |= included_files()
    modules = {}
    for path in sorted((ROOT / "src").rglob("*.rs")):
        parts = path.relative_to(ROOT / "src").with_suffix("").parts
        if parts == ("main",) or parts[0] == "bin" or str(path.relative_to(ROOT)) in others:
            continue
        modules[module_parts(path)] = str(path.relative_to(ROOT))
    return {**modules, **chosen}


def module_file(path, modules):
    """The source file of the innermost module that `tinyapi::PATH`'s last item lives in."""
    parts = path.split("::")[:-1]
    while parts and tuple(parts) not in modules:
        parts.pop()
    return modules.get(tuple(parts), "src/lib.rs")


def exported_symbols(arch):
    """{unmangled symbol: source file} for #[no_mangle] and export_name items, global_asm
    `.globl` names and the panic handler (whose symbol is rust_begin_unwind) under src/, in
    the files built for `arch`."""
    pattern = re.compile(r'no_mangle\)?\][^{;]*?\b(?:fn|static)\s+(?:mut\s+)?(\w+)'
                         r'|export_name\s*=\s*"([^"]+)"|\.globa?l\s+(\w+)|(#\[panic_handler\])')
    others = arch_tables(arch)[1]
    return {m[1] or m[2] or m[3] or "rust_begin_unwind": str(path.relative_to(ROOT))
            for path in sorted((ROOT / "src").rglob("*.rs"))
            if str(path.relative_to(ROOT)) not in others
            for m in pattern.finditer(path.read_text())}


def owner_path(name):
    """The path a Rust symbol belongs to: `<T as Trait>::f` to T if T is a path, else (a
    primitive, slice, reference or generic parameter) to Trait; `<[T]>::f` to core (the v0
    name of what legacy mangling calls `core::slice::<impl [T]>::f`)."""
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
        name = self_ty if re.match(r"<|[A-Za-z_]\w*::", self_ty) else trait or "core::primitive"
    return name


def symbol_of(inp, names):
    """The function or object an input section holds: by the section's name, else (a bare
    .text, as global_asm's) the first symbol the map lists in it but mapping symbols ($x)."""
    return (names.get(inp.name) or plain_name(inp.name)
            or next((s for s in inp.symbols if not s.startswith("$")), ""))


def row_of(inp, names, exports, modules):
    """(group, row) that an input section's bytes belong to."""
    base = os.path.basename(inp.obj)
    archive = re.search(r"lib(\w+?)(?:-[0-9a-f]+)?\.(a|rlib)\((.*)\)$", inp.obj)
    if re.search(r"\.(cst\d+|str\d+\.\d+)$", inp.name):
        return "read-only data", "merged constants/strings (linker pools)"
    if inp.obj == "<internal>":  # lld's own sections: .got, .got.plt
        return "linker-generated", inp.name
    if archive and archive[2] == "rlib":
        return archive[1], archive[1]
    if archive:
        return ("libc/musl" if archive[1] == "c" else f"lib{archive[1]}.a"), base
    if not inp.obj.endswith(".rcgu.o"):
        return "other/unattributed", base
    symbol = names.get(inp.name)  # the Rust object: one function or constant per section
    if symbol is None and "OUTLINED_FUNCTION_" in inp.name:
        return "outlined code", "outlined code"  # LLVM's machine outliner: shared by functions
    if symbol is None and "..L" in inp.name:
        return "read-only data", "anonymous Rust constants (strings, tables)"
    path = owner_path(symbol_of(inp, names))
    crate, _, rest = path.partition("::")
    exported = exports.get(re.sub(r"^__rustc::", "", path))
    if exported or crate == "tinyapi":
        return "tinyapi", exported or module_file(rest, modules)
    return (crate, crate) if rest else ("other/unattributed", f"Rust object: {inp.name}")


def kind_of(inp, out_section):
    """code, rodata or data: by the input section's name, else the output section's flags."""
    if re.match(r"\.(text|plt)\b", inp.name):
        return "code"
    # Read-only by name: the linker script puts them in .text's output section, which a GOT
    # among them marks writable although its segment is not.
    if re.match(r"\.(rodata|got)\b", inp.name):
        return "rodata"
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


def loaded_image(data, elf):
    """The loaded image, with the ELF header's section-table fields blanked: e_shoff,
    e_shentsize, e_shnum, e_shstrndx (.cargo/lld-trim zeroes them in the release binary)."""
    image = bytearray(data[:elf["image_end"]])
    for field in (elf["layout"]["shoff"], elf["layout"]["shfields"]):
        image[field] = bytes(field.stop - field.start)
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


def print_top(elf, inputs, names, row, count=int(os.environ.get("SIZEMAP_TOP", 15))):
    code = [inp for _, inp, out in file_inputs(elf, inputs) if kind_of(inp, out) == "code"]
    print(f"\nThe {count} largest functions")
    for inp in sorted(code, key=lambda inp: -inp.size)[:count]:
        name = symbol_of(inp, names) or inp.name
        print(f"{inp.size:>8,}  {row(inp)[1]:<30} {name[:90]}")


def print_libc(members):
    """Lists the members, marking those outside ALLOWED_LIBC; returns those."""
    bad = [m for m in members if re.sub(r"\.l?o$", "", m) not in ALLOWED_LIBC]
    print(f"\nlibc.a members linked: {len(members)} (allowed: {', '.join(ALLOWED_LIBC)})")
    print(f"  {'':<12}{'member':<24}sections linked (NAME for .text.NAME, .bss.NAME, ...)")
    for member, sections in members.items():
        verdict = "NOT ALLOWED" if member in bad else "ok"
        print(f"  {verdict:<12}{member:<24}{' '.join(sorted(sections))}")
    return bad


def print_files(release, rel_data, rel_elf, twin, data, elf):
    """Reconciles the release binary with its loaded image, and that with the twin's."""
    shown = [path.relative_to(ROOT) if ROOT in path.parents else path for path in (release, twin)]
    print("\nThe total above is the loaded image: file start to the end of the last LOAD "
          "segment's file bytes.")
    print(f"release binary  {shown[0]}: {len(rel_data):,} bytes\n  loaded image "
          f"{rel_elf['image_end']:,} bytes, difference {len(rel_data) - rel_elf['image_end']:,} "
          f"(section headers: {rel_elf['shnum'] or 'none'})")
    same = loaded_image(rel_data, rel_elf) == loaded_image(data, elf)
    print(f"unstripped twin {shown[1]}: {len(data):,} bytes\n  loaded image identical to the "
          "release binary's (ELF header's section-table fields aside): "
          f"{'yes' if same else 'NO: the map describes another build'}")


def report(target, build, release, twin, map_file):
    """Prints the size map; returns the libc.a members linked outside ALLOWED_LIBC."""
    (data, elf), (rel_data, rel_elf) = read_elf(twin), read_elf(release)
    arch = target_arch(target, build)
    inputs, modules = parse_map(map_file), source_modules(arch)
    names = demangle({inp.name for inp in inputs})
    row = functools.partial(row_of, names=names, exports=exported_symbols(arch), modules=modules)
    print(f"tinyapi size map: {target}, built by {build.toolchain}"
          f"{' with -Zbuild-std=core' if build.flags else ''}, linked by rust-lld. "
          "Bytes in the file (.bss has none).\n")
    print_table(attribute(elf, inputs, row), modules, elf["image_end"])
    print_top(elf, inputs, names, row)
    print_files(release, rel_data, rel_elf, twin, data, elf)
    return print_libc(libc_members(elf, inputs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", help="a row of .cargo/platforms, by name or triple "
                        "(default: as `cargo build`)")
    parser.add_argument("--check-libc", action="store_true", help="exit 1 if a libc.a member "
                        "outside ALLOWED_LIBC is linked")
    args = parser.parse_args()
    platforms = build_target()
    if args.target:
        row = next((r for r in platforms.rows() if args.target in (r.name, r.triple)), None)
    else:
        # <target dir>/<triple>/release/tinyapi
        native = cargo(["build", "--release"]).parent.parent.name
        row = next((r for r in platforms.rows() if r.triple == native), None)
    if row is None:
        sys.exit(f"sizemap: {args.target or native} is not a row of .cargo/platforms")
    build = platforms.prepare(row)
    release = Path(platforms.build(row, build)["binary"])
    bad = report(row.triple, build, release, *build_twin(row.triple, build))
    if args.check_libc:
        print(f"FAIL: libc.a members outside ALLOWED_LIBC linked: {', '.join(bad)}" if bad
              else "OK: only libc.a members in ALLOWED_LIBC are linked")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
