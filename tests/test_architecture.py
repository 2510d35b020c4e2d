"""The shape of the package, checked on its source: no import cycle, and the layers import
only downward (docs/architecture.md).

Every ``import`` counts, at module level, inside functions and under ``TYPE_CHECKING``: a
cycle that only a lazy or type-only import closes is still a cycle for the reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "netprobe"


def _modules() -> dict[str, tuple[Path, bool]]:
    out: dict[str, tuple[Path, bool]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


def _imported(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, modules: set[str]
) -> Iterator[str]:
    """The netprobe modules one import statement loads: for ``from .x import y``, ``x.y`` when
    it is a module, else ``x``."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    for alias in node.names:
        name = f"{source}.{alias.name}"
        yield name if name in modules else source


def import_graph() -> dict[str, set[str]]:
    """Module -> the netprobe modules it imports (anywhere in its source)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, (path, is_package) in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in _imported(module, is_package, node, set(modules)):
                    if name in modules and name != module:
                        deps.add(name)
        graph[module] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_words_and_rendering_depend_on_no_rule_and_no_probe() -> None:
    """The ladder and the evidence sentences read observations and verdicts; they never call
    back into the rules (``classify/``) nor the probes."""
    graph = import_graph()
    for module in ("netprobe.describe", "netprobe.render", "netprobe.render_pool"):
        below = reachable(graph, module)
        wrong = sorted(m for m in below if m.startswith(("netprobe.classify", "netprobe.probes")))
        assert wrong == [], f"{module} imports {wrong}"


#: Private parts of dependencies that netprobe once used: none may come back.
PRIVATE_APIS = ("anyio._backends", "find_root_task", "_ssl_object=", "TLSStream(")


def test_no_private_api_of_a_dependency() -> None:
    found = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        found += [f"{path.name}: {api}" for api in PRIVATE_APIS if api in text]
    assert found == []


def test_verdicts_are_decided_in_classify_only() -> None:
    """A fault or a warning is built only by the rules: any other module that builds one
    (the orchestrator, a probe, the pool) would be a second place where faults are decided."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("classify/") or rel in ("report.py",):
            continue
        text = path.read_text()
        found += [f"{rel}: {c}" for c in ("Fault(", "ReportWarning(") if c in text]
    assert found == []


def test_probes_and_rules_stay_apart() -> None:
    """Probes observe (they never import a rule); rules are pure (they import no probe and
    no event loop)."""
    graph = import_graph()
    for module, deps in graph.items():
        if module.startswith("netprobe.probes"):
            assert not any(d.startswith("netprobe.classify") for d in deps), module
        if module.startswith("netprobe.classify"):
            assert not any(d.startswith("netprobe.probes") for d in deps), module
    for path in (PACKAGE / "classify").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and not node.level
        }
        # (socket's constants, e.g. getaddrinfo's EAI_* codes, are data, not I/O)
        assert not imported & {"anyio", "asyncio", "sniffio", "ssl", "trio"}, path.name


def test_rule_files_share_no_private_name() -> None:
    """Rule files import each other's public functions only (``from .tls import _ALERTS``
    would tie one rule to another's internals)."""
    for path in (PACKAGE / "classify").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                if node.module.startswith("_"):
                    continue  # the shared input of every rule (_observations.py)
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert private == [], f"{path.name} imports {private} from {node.module}"
