#!/usr/bin/env python3
"""Checks the crate's module graph: no import cycle between top-level modules of src/, no import
cycle between the files of one module directory, and no module reaching up into the crate root
(`crate::Item` defined in lib.rs). Test code (`#[cfg(test)]` onwards) is left out: tests may
reach anywhere. Prints the edges with --print; exits 1 on a cycle.

Within a directory the edges are between sibling files (`super::waa`, `crate::botguard::waa`,
`use super::{minter, waa::X}`). The directory's `mod.rs` is its face -- it declares and
re-exports its files, and they may use what it defines -- so it is not part of that graph.

Why a script: rustc accepts cycles between modules of one crate, so nothing else would notice
the layering eroding.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
ROOTS = {"lib.rs", "main.rs"}


def top_module(path: pathlib.Path) -> str | None:
    rel = path.relative_to(SRC)
    if len(rel.parts) == 1:
        return None if rel.name in ROOTS else rel.stem
    return rel.parts[0]


def non_test_code(text: str) -> str:
    out = []
    for line in text.splitlines():
        if line.strip().startswith("#[cfg(test)]"):
            break
        if line.strip().startswith("//"):
            continue
        out.append(line)
    return "\n".join(out)


def file_edges() -> dict[str, dict[str, set[str]]]:
    """Per module directory (relative to src/): sibling file -> sibling files it imports."""
    graphs: dict[str, dict[str, set[str]]] = {}
    for d in sorted({p.parent for p in SRC.rglob("*.rs")}):
        if d == SRC:
            continue
        files = {p.stem: p for p in d.glob("*.rs") if p.name != "mod.rs"}
        if len(files) < 2:
            continue
        modpath = "::".join(d.relative_to(SRC).parts)
        super_ref = re.compile(r"\bsuper::([A-Za-z_][A-Za-z0-9_]*)")
        crate_ref = re.compile(r"\bcrate::" + re.escape(modpath) + r"::([A-Za-z_][A-Za-z0-9_]*)")
        super_block = re.compile(r"\bsuper::\{([^;]*)\}", re.S)
        crate_block = re.compile(r"\bcrate::" + re.escape(modpath) + r"::\{([^;]*)\}", re.S)
        graph: dict[str, set[str]] = {f: set() for f in files}
        for stem, p in files.items():
            code = non_test_code(p.read_text())
            names = set(super_ref.findall(code)) | set(crate_ref.findall(code))
            for block in super_block.findall(code) + crate_block.findall(code):
                # Only the first segment of each item at the block's top level names a file.
                depth = 0
                item = ""
                for ch in block + ",":
                    if ch == "{":
                        depth += 1
                    elif ch == "}":
                        depth -= 1
                    if ch == "," and depth == 0:
                        head = item.strip().split("::")[0].strip("{} ")
                        if head:
                            names.add(head)
                        item = ""
                    else:
                        item += ch
            graph[stem] = {n for n in names if n in files and n != stem}
        graphs[modpath] = graph
    return graphs


def cycles_of(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components: any component of two or more is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def main() -> int:
    modules = set()
    for p in SRC.rglob("*.rs"):
        m = top_module(p)
        if m:
            modules.add(m)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    upward: list[str] = []
    use_block = re.compile(r"use\s+crate::\{([^;]*)\};", re.S)
    path_ref = re.compile(r"crate::([A-Za-z_][A-Za-z0-9_]*)")
    for p in sorted(SRC.rglob("*.rs")):
        m = top_module(p)
        if not m:
            continue
        code = non_test_code(p.read_text())
        names = set(path_ref.findall(code))
        for block in use_block.findall(code):
            for item in re.split(r"[,\s]+", block):
                head = item.split("::")[0].strip("{} ")
                if head:
                    names.add(head)
        for n in names:
            if n in modules:
                if n != m:
                    edges[m].add(n)
            elif n not in ("self",):
                upward.append(f"{p.relative_to(SRC)}: crate::{n} (crate root)")
    if "--print" in sys.argv:
        for m in sorted(edges):
            print(f"{m} -> {', '.join(sorted(edges[m])) or '-'}")

    cycles = cycles_of(edges)
    graphs = file_edges()
    if "--print" in sys.argv:
        for d, graph in graphs.items():
            for f in sorted(graph):
                print(f"{d}/{f} -> {', '.join(sorted(graph[f])) or '-'}")
    ok = True
    for c in cycles:
        print("import cycle between modules: " + " <-> ".join(c))
        ok = False
    for d, graph in graphs.items():
        for c in cycles_of(graph):
            print(f"import cycle between files of {d}: " + " <-> ".join(f"{d}/{f}.rs" for f in c))
            ok = False
    for u in upward:
        print("upward import: " + u)
        ok = False
    if ok:
        files = sum(len(g) for g in graphs.values())
        print(
            f"module graph: {len(modules)} modules, {files} files in module dirs, no cycle, "
            "no upward import"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
