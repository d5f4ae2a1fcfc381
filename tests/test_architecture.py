"""The package's layering: no import loops, and lower layers never import higher ones.

(a) A static scan (``ast``) of every module in ``labelfix/`` builds the graph of imports between
    labelfix modules -- imports inside functions and under ``TYPE_CHECKING`` count too, since a loop
    hidden in a function is still a loop -- and checks it against :data:`LAYERS`.
(b) Every module imports in a fresh interpreter: one subprocess per top-level part of the package
    (``labelfix.learn``, ``labelfix.store``, ...), each importing that part's modules in sorted order,
    which catches what a static scan cannot (a module that only imports after some other one).

A failure lists the offending edges as ``importer -> imported (file:line)``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "labelfix"

# Lower may not import higher. Within one layer, modules may import each other as long as there is
# no loop (test_no_import_loops). Names of parts that do not exist (yet) are harmless: ``detect``
# and ``pipelines`` are the old names of ``suggest`` and ``flows`` (issue 11).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("labelfix.errors", "labelfix.states", "labelfix.internal", "labelfix.schemas",   # 0 (schemas: data files)
     "labelfix._version"),
    ("labelfix.evaluate", "labelfix.ingest_contract"),                                # 1 (ingest_contract: below io and store)
    ("labelfix.io", "labelfix.store"),                                                # 2
    ("labelfix.ingest", "labelfix.export"),                                           # 3
    ("labelfix.learn",),                                                              # 4
    ("labelfix.suggest", "labelfix.detect"),                                          # 5
    ("labelfix.review",),                                                             # 6
    ("labelfix.flows", "labelfix.pipelines"),                                         # 7
    ("labelfix.bench",),                                                              # 8
    ("labelfix.cli", "labelfix.__main__"),                                            # 9
)
# labelfix.learn's training regimes; the rest of learn/ is the ground they share.
LEARN_WINGS: tuple[str, ...] = ("labelfix.learn.head", "labelfix.learn.finetune", "labelfix.learn.adapt")
# The package __init__ is the public face: it may import anything; below it only __version__ is read.
FACE_NAMES_ALLOWED = frozenset({"__version__"})

# Modules that cannot be imported outside their runtime, with the reason (prefixes: submodules too).
IMPORT_SKIPS: dict[str, str] = {
    "labelfix.review.app": "the Streamlit app script draws its UI when imported; `labelfix review` serves it",
}


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``file:line`` (``names``: what ``from target import`` takes;
    ``in_function``: the import statement sits inside a function)."""

    source: str
    target: str
    file: str
    line: int
    names: tuple[str, ...] = ()
    in_function: bool = False

    def __str__(self) -> str:
        where = ", inside a function" if self.in_function else ""
        return f"{self.source} -> {self.target} ({self.file}:{self.line}{where})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    found = {_module_name(path): path for path in sorted((ROOT / PACKAGE).rglob("*.py"))
             if "__pycache__" not in path.parts}
    assert PACKAGE in found, f"no {PACKAGE}/__init__.py under {ROOT}"
    return found


def _known(name: str) -> str | None:
    """The module ``name`` refers to: itself, or the nearest enclosing module that exists."""
    known = modules()
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imports_of(name: str, path: Path) -> list[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    file = path.relative_to(ROOT).as_posix()
    in_functions = {id(inner) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for inner in ast.walk(node)}
    edges: list[Edge] = []
    for node in ast.walk(tree):  # every level: module, class and function bodies, TYPE_CHECKING blocks
        if isinstance(node, ast.Import):
            targets = [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            targets = []
            for alias in node.names:  # `from a.b import c` imports the module a.b.c when there is one
                submodule = f"{base}.{alias.name}"
                targets.append((submodule, ()) if submodule in modules() else (base, (alias.name,)))
        else:
            continue
        for target, names in targets:
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            resolved = _known(target)
            if resolved is not None and resolved != name:
                edges.append(Edge(name, resolved, file, node.lineno, names, id(node) in in_functions))
    return edges


@cache
def import_edges() -> tuple[Edge, ...]:
    return tuple(edge for name, path in modules().items() for edge in _imports_of(name, path))


def layer_of(name: str) -> int | None:
    for level, prefixes in enumerate(LAYERS):
        if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes):
            return level
    return None


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _fail_listing(title: str, lines: list[Edge] | list[str]) -> None:
    """Fail with ``title`` and one line per offending edge (an edge once, even if it imports several names)."""
    pytest.fail(title + "\n  " + "\n  ".join(dict.fromkeys(str(line) for line in lines)), pytrace=False)


# (a) static scan ---------------------------------------------------------------------------------


def test_the_scan_sees_the_package_and_its_imports() -> None:
    # Guards the scan itself: an empty graph would make every check below pass vacuously.
    assert {"labelfix.errors", "labelfix.learn.config", "labelfix.cli.main"} <= set(modules())
    assert any(edge.source == "labelfix.cli.main" and edge.target == "labelfix.errors" for edge in import_edges())
    assert any(edge.in_function for edge in import_edges())  # imports inside functions are seen too


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(name for name in modules() if name != PACKAGE and layer_of(name) is None)
    if unplaced:
        _fail_listing("modules in no layer (add their package to LAYERS in tests/test_architecture.py):",
                      unplaced)


def test_no_import_loops() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for name in modules():
        graph[name]
    for edge in import_edges():
        graph[edge.source].add(edge.target)
    loops = [component for component in _strongly_connected(graph) if len(component) > 1]
    lines = []
    for component in loops:
        members = set(component)
        lines.append("loop: " + ", ".join(component))
        lines += [f"  {edge}" for edge in import_edges() if edge.source in members and edge.target in members]
    if loops:
        _fail_listing("import loops between labelfix modules (break each by moving what both need lower):",
                      lines)


def _upward(edge: Edge) -> bool:
    source, target = layer_of(edge.source), layer_of(edge.target)
    return source is not None and target is not None and target > source


def test_lower_layers_never_import_higher_ones() -> None:
    # Imports of labelfix.bench are test_only_bench_and_cli_import_bench's (bench sits just below cli).
    upward = [edge for edge in import_edges() if _upward(edge) and layer_of(edge.target) != layer_of("labelfix.bench")]
    if upward:
        _fail_listing("imports from a lower layer to a higher one (see LAYERS):",
                      [f"{edge}  [layer {layer_of(edge.source)} -> {layer_of(edge.target)}]" for edge in upward])


def _wing_of(name: str) -> str | None:
    for wing in LEARN_WINGS:
        if name == wing or name.startswith(wing + "."):
            return wing
    return None


def test_learn_wings_stand_on_the_shared_ground() -> None:
    # labelfix.learn: the ground (config, losses, backbones, ...) never imports a wing, and one training
    # regime never imports another, so a regime can be added or changed without touching the others.
    crossing = [edge for edge in import_edges()
                if layer_of(edge.source) == layer_of("labelfix.learn") and _wing_of(edge.target) is not None
                and _wing_of(edge.source) != _wing_of(edge.target)]
    if crossing:
        _fail_listing("learn/ ground importing a wing, or one wing importing another (move what both need to the "
                      "ground):", crossing)


def test_the_package_face_is_imported_only_for_the_version() -> None:
    into_face = [edge for edge in import_edges()
                 if edge.target == PACKAGE and not (edge.names and set(edge.names) <= FACE_NAMES_ALLOWED)]
    if into_face:
        _fail_listing("modules importing the package face (allowed: `from labelfix import __version__`):",
                      into_face)


def _bench_imports_from_outside() -> list[Edge]:
    return [edge for edge in import_edges() if layer_of(edge.target) == layer_of("labelfix.bench")
            and layer_of(edge.source) not in (layer_of("labelfix.bench"), layer_of("labelfix.cli"))]


def _io_store_imports() -> list[Edge]:
    def part(name: str) -> str | None:
        for prefix in ("labelfix.io", "labelfix.store"):
            if name == prefix or name.startswith(prefix + "."):
                return prefix
        return None

    return [edge for edge in import_edges()
            if {part(edge.source), part(edge.target)} == {"labelfix.io", "labelfix.store"}]


def test_only_bench_and_cli_import_bench() -> None:
    outside = _bench_imports_from_outside()
    if outside:
        _fail_listing("production code importing the benchmark package (move what it needs below bench):",
                      outside)


def test_io_and_store_never_import_each_other() -> None:
    crossing = _io_store_imports()
    if crossing:
        _fail_listing("io/ and store/ importing each other (ingest / export are the doors between them):",
                      crossing)


# (b) fresh interpreters --------------------------------------------------------------------------

_IMPORT_EACH = """
import importlib, json, sys, traceback
failures = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException:
        failures[name] = traceback.format_exc(limit=-3)
print(json.dumps(failures))
"""


def _skip_reason(name: str) -> str | None:
    if name.rpartition(".")[2] == "__main__":
        return "a __main__ module runs its program when imported"
    for prefix, reason in IMPORT_SKIPS.items():
        if name == prefix or name.startswith(prefix + "."):
            return reason
    return None


def _parts() -> dict[str, list[str]]:
    """Modules grouped by top-level part (``labelfix.learn``...; the top-level modules together)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in sorted(modules()):
        if _skip_reason(name) is not None:
            continue
        pieces = name.split(".")
        is_package = modules()[name].name == "__init__.py"
        key = ".".join(pieces[:2]) if len(pieces) > 2 or (len(pieces) == 2 and is_package) else PACKAGE
        groups[key].append(name)
    return dict(groups)


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    # `python -c` in ROOT imports this checkout's labelfix first; FiftyOne must not phone home or check its database.
    env = {**os.environ, "FIFTYONE_DO_NOT_TRACK": "true", "FIFTYONE_DATABASE_VALIDATION": "false"}

    def run(names: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", _IMPORT_EACH, *names], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)

    parts = _parts()
    with ThreadPoolExecutor(max_workers=max(1, min(len(parts), os.cpu_count() or 1))) as pool:
        finished = dict(zip(parts, pool.map(run, parts.values())))
    failures: dict[str, str] = {}
    for part, completed in finished.items():
        if completed.returncode != 0:
            failures[part] = f"exit {completed.returncode}: {completed.stderr[-2000:]}"
            continue
        failures.update(json.loads(completed.stdout.strip().splitlines()[-1]))
    if failures:
        pytest.fail("modules that fail to import in a fresh interpreter:\n" + "\n".join(
            f"--- {name}\n{error}" for name, error in sorted(failures.items())), pytrace=False)
