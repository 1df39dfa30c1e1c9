#!/usr/bin/env python3
"""The runtime's module graph: which module of `src/` names which, and whether that
graph has a cycle. Exits 1 on a cycle, printing it with one import per edge.

    python3 scripts/module-graph.py [src] [--edges]
    python3 scripts/module-graph.py --self-test

A module is a file (`a/mod.rs` is `a`). An edge is a `crate::`, `super::` or `self::`
path in a `use` line or inline, outside `#[cfg(test)]` items and comments. A path
through a re-export (`crate::Reply`, `crate::lifecycle::create`) is followed to the
module that defines the item, so the facade's aliases hide nothing. Edges into a
module's own children are kept (a parent that uses its child is the child's client).
"""
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_files(src):
    files = {}
    for root, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                rel = os.path.relpath(os.path.join(root, n), src)[:-3].split(os.sep)
                if rel[-1] in ("mod", "lib", "main"):
                    rel = rel[:-1]
                files["::".join(rel)] = os.path.join(root, n)
    return files


def strip(text):
    """Drops comments, string literals and `#[cfg(test)]`/`#[cfg(all(test, ..))]` items."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\((?:test|all\(test[^\]]*)\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        # skip the item: to its `;` or its balanced `{ .. }`, whichever comes first
        j, depth = m.end(), 0
        while j < len(text):
            c = text[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    j += 1
                    break
            elif c == ";" and depth == 0:
                j += 1
                break
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def use_trees(text):
    """Every `use` tree, flattened to full paths with their local names."""
    for m in re.finditer(r"\b((?:pub(?:\([^)]*\))?\s+)?)use\s+([^;]+);", text):
        public = bool(m.group(1))
        for path, name in flatten(m.group(2).replace("\n", " ").strip()):
            yield public, path, name


def flatten(tree, prefix=""):
    tree = tree.strip()
    brace = tree.find("{")
    if brace < 0:
        for part in split_top(tree):
            part = part.strip()
            if not part:
                continue
            path, _, alias = part.partition(" as ")
            path = (prefix + path.strip()).strip(":")
            if path.endswith("::self"):
                path = path[: -len("::self")]
            name = alias.strip() or path.split("::")[-1]
            yield path, name
        return
    head = tree[:brace]
    body = tree[brace + 1 : tree.rindex("}")]
    for part in split_top(body):
        if part.strip():
            yield from flatten(part, prefix + head)


def split_top(s):
    depth, cur = 0, ""
    for c in s:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            yield cur
            cur = ""
        else:
            cur += c
    yield cur


def absolute(path, module, modules):
    """`crate::`/`super::`/`self::` paths, and paths into a child module of `module`
    (`use ffi::abi` in `lib.rs`), as crate paths; `None` for anything else."""
    parts = path.split("::")
    if parts[0] == "crate":
        return parts[1:]
    base = module.split("::") if module else []
    if "::".join(base + parts[:1]) in modules:
        return base + parts
    if parts[0] == "self":
        return base + parts[1:]
    if parts[0] == "super":
        while parts and parts[0] == "super":
            base, parts = base[:-1], parts[1:]
        return base + parts
    return None


def self_test():
    """The check finds a cycle hidden behind the facade's re-exports, and passes the
    same tree once the cycle is cut."""
    import subprocess
    import tempfile

    files = {
        "lib.rs": "mod a;\nmod b;\npub use a::Thing;\n#[cfg(test)]\nmod tests { use crate::b::Other; }\n",
        "a/mod.rs": "pub mod inner;\npub use inner::Thing;\n",
        "a/inner.rs": "pub struct Thing;\nfn f() -> crate::b::Other { todo!() } // crate::a\n",
        "b.rs": "use crate::Thing;\npub struct Other(Thing);\n",
    }
    with tempfile.TemporaryDirectory() as root:
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                f.write(text)
        run = lambda: subprocess.run(
            [sys.executable, __file__, root], capture_output=True, text=True
        )
        found = run()
        assert found.returncode == 1, found.stdout
        assert "cycle of 2 modules: a::inner, b" in found.stdout, found.stdout
        # cut it: `b` no longer names `Thing`; the test module's use is not an edge
        with open(os.path.join(root, "b.rs"), "w", encoding="utf-8") as f:
            f.write("pub struct Other;\n")
        clean = run()
        assert clean.returncode == 0, clean.stdout
    print("self-test: a cycle through a re-export is found; the cut tree passes")
    return 0


def main():
    if "--self-test" in sys.argv:
        return self_test()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src = args[0] if args else "src"
    files = module_files(src)
    texts = {m: strip(open(p, encoding="utf-8").read()) for m, p in files.items()}
    # an inline `pub mod rt { .. }` (the facade's) is a module of its own
    for m in list(texts):
        for inner in re.finditer(r"\bmod (" + IDENT + r")\s*\{", texts[m]):
            start = inner.end()
            depth, j = 1, start
            while depth and j < len(texts[m]):
                depth += {"{": 1, "}": -1}.get(texts[m][j], 0)
                j += 1
            sub = (m + "::" if m else "") + inner.group(1)
            texts[sub] = texts[m][start : j - 1]
            files[sub] = files[m]
            texts[m] = texts[m][: inner.start()] + texts[m][j:]

    # Re-exports: (module, name) -> absolute path; globs: module -> [module]
    exports, globs = {}, {}
    for m, text in texts.items():
        for public, path, name in use_trees(text):
            full = absolute(path, m, files)
            if full is None:
                continue
            if name == "*":
                globs.setdefault(m, []).append("::".join(full[:-1]))
            elif public:
                exports[(m, name)] = full

    def resolve(parts, seen=()):
        """The module defining the item at `parts` (a crate path)."""
        module = ""
        for i, p in enumerate(parts):
            child = (module + "::" if module else "") + p
            if child in files:
                module = child
                continue
            key = (module, p)
            if key in exports and key not in seen:
                return resolve(exports[key] + parts[i + 1 :], seen + (key,))
            for g in globs.get(module, []):
                if (g, p) in exports and (g, p) not in seen:
                    return resolve(exports[(g, p)] + parts[i + 1 :], seen + ((g, p),))
            break
        return module

    edges = {m: {} for m in texts}
    for m, text in texts.items():
        # a `pub use` is the module's facade, not a dependency of its own
        refs = [path for public, path, _ in use_trees(text) if not public]
        body = re.sub(r"\buse\s+[^;]+;", "", text)
        refs += re.findall(r"\b(?:crate|super|self)(?:::" + IDENT + r")+", body)
        for ref in refs:
            full = absolute(ref, m, files)
            if full is None:
                continue
            target = resolve(full)
            # the facade (and the `rt` facade inside it) only re-exports
            if target in ("", "rt") or target == m:
                continue
            edges[m].setdefault(target, ref)

    if "--edges" in sys.argv:
        for m in sorted(edges):
            for t in sorted(edges[m]):
                print(f"{m or 'lib'} -> {t}   ({edges[m][t]})")

    cycles = strongly_connected(edges)
    for c in cycles:
        print(f"cycle of {len(c)} modules: {', '.join(c)}")
        for a in c:
            for b in c:
                if b in edges[a]:
                    print(f"  {a} -> {b}   ({edges[a][b]})")
    print(f"{len(edges)} modules, {sum(len(e) for e in edges.values())} edges, {len(cycles)} cycles")
    return 1 if cycles else 0


def strongly_connected(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
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
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
