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


def blank_literals_and_comments(text):
    """The source with comments removed and string and char literals emptied, so that
    neither can hide or invent a path. Handles `//` and nested `/* */` comments, string,
    byte string and raw string literals, and char literals (not lifetimes)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
        elif raw := re.match(r'b?r(#*)"', text[i:]):
            end = '"' + raw.group(1)
            j = text.find(end, i + raw.end())
            i = n if j < 0 else j + len(end)
            out.append('""')
        elif c == '"' or (c == "b" and text.startswith('b"', i) and not _ident_before(text, i)):
            i += 2 if c == "b" else 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and (lit := re.match(r"'(?:\\.[^']*|[^'\\])'", text[i:])):
            i += lit.end()
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _ident_before(text, i):
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")


def strip(text):
    """Drops comments, literals and `#[cfg(test)]`/`#[cfg(all(test, ..))]` items."""
    text = blank_literals_and_comments(text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\((?:test|all\(test[^\]]*)\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        # skip the item: to its `;` or `,` (a field), or its balanced `{ .. }`
        j, depth = m.end(), 0
        while j < len(text):
            c = text[j]
            if c in "{([":
                depth += 1
            elif c in "})]":
                depth -= 1
                if depth < 0:
                    break  # the end of the enclosing item: the skipped one ended before
                if depth == 0 and c == "}":
                    j += 1
                    break
            elif c in ";," and depth == 0:
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
    """Each tree hides a cycle one way the check must see through, and is found; the
    last tree is clean and passes."""
    import subprocess
    import tempfile

    base = {"lib.rs": "mod a;\nmod b;\npub use a::Thing;\n", "a/mod.rs": "pub mod inner;\npub use inner::Thing;\n"}
    trees = [
        # through the facade's re-exports (`crate::Thing` is `a::inner::Thing`)
        ("re-export", {"a/inner.rs": "pub struct Thing;\nfn f() -> crate::b::Other { todo!() }\n",
                        "b.rs": "use crate::Thing;\npub struct Other(Thing);\n"}, "a::inner, b"),
        # a `pub use` of a module that is not a descendant is a dependency
        ("pub use", {"a/inner.rs": "pub use crate::b::Other;\npub struct Thing;\n",
                     "b.rs": "use crate::a::inner::Thing;\n"}, "a::inner, b"),
        # an inline path through a `use` alias reaches the child module
        ("alias", {"a/inner.rs": "pub struct Thing;\nfn f() { crate::b::g() }\n",
                   "b.rs": "use crate::a;\npub fn g() { let _ = a::inner::Thing; }\n"}, "a::inner, b"),
        # literals and comments neither hide nor invent code
        ("// in a string", {"a/inner.rs": "pub struct Thing;\nconst U: &str = \"http://x\"; fn f() { crate::b::g() }\n",
                            "b.rs": "/* crate::nothing */ pub fn g() { let _ = crate::a::inner::Thing; }\n"}, "a::inner, b"),
        ("quote char", {"a/inner.rs": "pub struct Thing;\nconst Q: char = '\"'; fn h() { crate::b::g() } const R: &str = \"\";\n",
                        "b.rs": "pub fn g() { let _ = crate::a::inner::Thing; }\n"}, "a::inner, b"),
        # a `#[cfg(test)]` field is skipped, the code after it is not
        ("cfg(test) field", {"a/inner.rs": "pub struct Thing { #[cfg(test)] x: u8, y: u8 }\nfn f() { crate::b::g() }\n",
                             "b.rs": "pub fn g() { let _ = crate::Thing { y: 0 }; }\n"}, "a::inner, b"),
        # clean: the test module's use is not an edge
        ("clean", {"a/inner.rs": "pub struct Thing;\n#[cfg(test)]\nmod tests { use crate::b::Other; }\n",
                   "b.rs": "use crate::Thing;\npub struct Other(Thing);\n"}, None),
    ]
    for name, files, cycle in trees:
        with tempfile.TemporaryDirectory() as root:
            for path, text in {**base, **files}.items():
                os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
                with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                    f.write(text)
            got = subprocess.run([sys.executable, __file__, root], capture_output=True, text=True)
            if cycle is None:
                assert got.returncode == 0, f"{name}: {got.stdout}"
            else:
                assert got.returncode == 1 and f"modules: {cycle}" in got.stdout, f"{name}: {got.stdout}"
    print(f"self-test: {len(trees) - 1} hidden cycles found, the clean tree passes")
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
        refs, aliases = [], {}
        for public, path, name in use_trees(text):
            full = absolute(path, m, files)
            if full is None:
                continue
            if name != "*":
                aliases[name] = full
            # A re-export of the module's own descendant (`pub use host_calls::create` in
            # `lifecycle`) is its facade; any other `use` is a dependency. The crate root
            # and `rt` are facades throughout.
            inside = "::".join(full).startswith(m + "::") if m else True
            if not (public and (inside or m in ("", "rt"))):
                refs.append(path)
        body = re.sub(r"\buse\s+[^;]+;", "", text)
        refs += re.findall(r"\b(?:crate|super|self)(?:::" + IDENT + r")+", body)
        # inline paths through a `use` alias (`p::c::f` after `use crate::p`) or into a
        # child module (`pool::give`)
        for first, rest in re.findall(r"(?<![:\w])(" + IDENT + r")((?:::" + IDENT + r")+)", body):
            if first in aliases:
                refs.append("crate::" + "::".join(aliases[first]) + rest)
            elif (m + "::" if m else "") + first in files:
                refs.append("self::" + first + rest)
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
