"""The dependency rule, read from the source (``ast``; nothing is imported or run).

Top-level packages: ``app`` uses ``trainers`` and ``ledger``; ``trainers`` uses ``ledger``;
``ledger`` uses neither. No cycle between them.

Inside ``app``, each folder ``app/<domain>/`` is a unit; the loose modules at the root
(``app/cli.py``, ``app/client.py``, ``app/__init__.py``) are one more unit, the root, which
may use every domain and which no domain uses. Between units there is no import cycle, so
each domain can be read, tested and changed knowing only what it uses.

``app/core`` is the floor every domain stands on (database, errors, problems, roles, the log
around a command), so it uses no domain, with two exceptions that exist to wire domains
together and are left out of the graph: ``core/deps.py`` (the Litestar dependencies, which name
domain types) and ``core/commands.py`` (opening a home for a CLI command, with its keyring).

Every import counts: module level, inside functions, under ``TYPE_CHECKING``: a dependency
is a dependency, however late it is paid. Outside ``ledger/`` nothing imports
``ledger._internal`` or touches an attribute named ``store`` (the log's storage is private:
``Log`` has public reads, the app's tables go through ``app.core.database``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import ROOT

PACKAGES = ("ledger", "app", "trainers")
ALLOWED_TOP = {("app", "ledger"), ("app", "trainers"), ("trainers", "ledger")}
WIRING = {"app/core/deps.py", "app/core/commands.py"}  # core files that may name domains
APP_ROOT = "(root)"


@dataclass(frozen=True)
class Import:
    source: str  # path relative to the repository, posix
    line: int
    target: str  # absolute dotted module (or package) name


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _exists(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _sources() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path, tree: ast.AST) -> Iterator[Import]:
    rel = path.relative_to(ROOT).as_posix()
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(rel, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield Import(rel, node.lineno, full if _exists(full) else base)


def _all_imports() -> list[Import]:
    out = []
    for path in _sources():
        out += _imports(path, ast.parse(path.read_text(), str(path)))
    return out


def _top(dotted: str) -> str:
    return dotted.split(".")[0]


def _unit(dotted: str) -> str | None:
    """The app unit a module belongs to: its domain folder, or the root; None outside app."""
    parts = dotted.split(".")
    if parts[0] != "app":
        return None
    if len(parts) > 1 and (ROOT / "app" / parts[1]).is_dir():
        return parts[1]
    return APP_ROOT


def _cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _describe(cycles: list[list[str]], edges: dict[tuple[str, str], list[str]]) -> str:
    lines = []
    for component in cycles:
        lines.append("cycle: " + " <-> ".join(component))
        for (a, b), where in sorted(edges.items()):
            if a in component and b in component:
                lines.append(f"  {a} -> {b}: " + ", ".join(sorted(set(where))[:6])
                             + (" ..." if len(set(where)) > 6 else ""))
    return "\n".join(lines)


def test_no_cycle_between_top_level_packages() -> None:
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for imp in _all_imports():
        a, b = _top(imp.source.replace("/", ".")), _top(imp.target)
        if a != b and b in PACKAGES:
            edges[(a, b)].append(f"{imp.source}:{imp.line}")
    cycles = _cycles(edges)
    assert not cycles, _describe(cycles, edges)


def test_dependencies_point_one_way() -> None:
    """trainers never imports app; ledger imports neither app nor trainers."""
    wrong = [f"{imp.source}:{imp.line} imports {imp.target}" for imp in _all_imports()
             if (_top(imp.source.replace("/", ".")), _top(imp.target)) not in ALLOWED_TOP
             and _top(imp.source.replace("/", ".")) != _top(imp.target) and _top(imp.target) in PACKAGES]
    assert not wrong, "\n".join(wrong)


def test_core_uses_no_domain() -> None:
    """app/core is the floor: only its wiring modules (core/deps.py, core/commands.py) name domains."""
    wrong = [f"{imp.source}:{imp.line} imports {imp.target}" for imp in _all_imports()
             if imp.source.startswith("app/core/") and imp.source not in WIRING
             and _unit(imp.target) not in (None, "core")]
    assert not wrong, "\n".join(wrong)


def test_no_cycle_between_app_domains() -> None:
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for imp in _all_imports():
        if not imp.source.startswith("app/") or imp.source in WIRING:
            continue
        a, b = _unit(imp.source.removesuffix(".py").replace("/", ".")), _unit(imp.target)
        if a is not None and b is not None and a != b:
            edges[(a, b)].append(f"{imp.source}:{imp.line}")
    cycles = _cycles(edges)
    assert not cycles, _describe(cycles, edges)


def test_the_ledger_private_parts_stay_private() -> None:
    """No ``ledger._internal`` import and no ``.store`` attribute outside ledger/."""
    wrong = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("ledger/"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        wrong += [f"{imp.source}:{imp.line} imports {imp.target}" for imp in _imports(path, tree)
                  if imp.target == "ledger._internal" or imp.target.startswith("ledger._internal.")]
        wrong += [f"{rel}:{node.lineno} uses .store" for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and node.attr == "store"]
    assert not wrong, "\n".join(wrong)


def test_the_reader_sees_every_kind_of_import() -> None:
    """The checks above are only as good as this reader: relative, aliased, nested imports."""
    code = ("import ledger.log as L\nfrom ..jobs import service\nfrom . import web\n"
            "def f():\n    from ledger._internal.store import Store\n    return log.store\n")
    path = ROOT / "app" / "portal" / "example.py"
    got = {(i.line, i.target) for i in _imports(path, ast.parse(code))}
    assert got == {(1, "ledger.log"), (2, "app.jobs.service"), (3, "app.portal.web"),
                   (5, "ledger._internal.store")}
    assert _unit("app.jobs.service") == "jobs" and _unit("app.cli") == APP_ROOT
    assert _cycles({("a", "b"): [], ("b", "c"): [], ("c", "a"): [], ("c", "d"): []}) == [["a", "b", "c"]]
