"""How emlab's modules import: no side effects on the importer, no cycles, every import declared."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "emlab"


def module_names() -> list[str]:
    """Every module of emlab (packages by their ``__init__``), ``__main__`` left out: importing
    it runs the command line."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


THIRD_PARTY = ("torch", "transformers", "peft", "huggingface_hub", "safetensors", "trl")
"""Imported first, so that what they do to the environment on import (peft's torch sets
TORCHINDUCTOR_CACHE_DIR) is not blamed on emlab."""

_IMPORT_ALL = """
import importlib, json, os, sys
for name in json.loads(sys.argv[2]):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
before = dict(os.environ)
failed = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception as e:
        failed[name] = f"{type(e).__name__}: {e}"
after = dict(os.environ)
changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
print(json.dumps({"failed": failed, "changed": changed}))
"""


def test_importing_every_module_leaves_the_environment_unchanged() -> None:
    """A script that imports emlab keeps its own environment (no HF_HUB_OFFLINE set behind its
    back); the ``emlab`` command sets its defaults in ``cli.main`` instead."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "TRANSFORMERS_", "TOKENIZERS_"))
    }
    env["PYTHONPATH"] = str(SRC)
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, json.dumps(module_names()), json.dumps(THIRD_PARTY)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["failed"] == {}
    assert got["changed"] == []


def test_the_command_line_sets_its_defaults_when_it_runs() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["PYTHONPATH"] = str(SRC)
    code = (
        "import atexit, os\n"
        "from emlab import cli\n"
        "print('imported', os.environ.get('HF_HUB_OFFLINE'))\n"
        "atexit.register(lambda: print('ran', os.environ.get('HF_HUB_OFFLINE')))\n"
        "cli.main(['--help'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "imported None"  # importing the CLI set nothing
    assert lines[-1] == "ran 1"  # running it did, for its own process


# --------------------------------------------------------------------------- import graph


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def import_graph() -> dict[str, set[str]]:
    """Module -> the emlab modules it imports anywhere in its code (function-level imports
    included, ``if TYPE_CHECKING:`` blocks left out: they never run)."""
    modules = set(module_names())
    graph: dict[str, set[str]] = {}
    for name in modules:
        path = SRC.joinpath(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {
            id(child)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and _is_type_checking(node)
            for child in ast.walk(node)
        }
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    if sub in modules:
                        edges.add(sub)
                    elif base in modules:
                        edges.add(base)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycles() -> None:
    """A cycle (even through a function-level import) means two modules that cannot be
    understood, tested or moved apart; the import rules of docs/architecture.md forbid them."""
    graph = import_graph()
    assert graph["emlab.study"] and "emlab.records" in graph["emlab.metrics"]  # the walk works
    assert cycles(graph) == []


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# --------------------------------------------------------------------------- declared packages


def _requirement_names(items: list[str]) -> set[str]:
    return {_norm(re.split(r"[<>=!~\[; ]", item, maxsplit=1)[0]) for item in items}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports() -> dict[str, tuple[bool, set[str]]]:
    """Top-level package -> (imported when its module is imported, the files importing it).

    An import inside a function, a ``try`` or an ``if TYPE_CHECKING:`` block runs only when that
    code does; it may come from an optional extra. Any other import must be a core dependency."""
    out: dict[str, tuple[bool, set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        eager = {id(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top in ("emlab", "__future__"):
                    continue
                was_eager, files = out.get(top, (False, set()))
                out[top] = (was_eager or id(node) in eager, files | {path.name})
    return out


def test_every_third_party_import_is_declared() -> None:
    """pyproject.toml declares what src/ imports: module-level imports as core dependencies,
    lazy ones as core or an optional extra (e.g. vllm, inspect-ai). A package that arrives only
    as another's dependency can vanish with that package's next release."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11; the lint environment has it
    project = tomllib.loads((SRC.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = _requirement_names(project["dependencies"])
    extras = _requirement_names(
        [d for group in project["optional-dependencies"].values() for d in group]
    )
    dists = importlib.metadata.packages_distributions()
    wrong = []
    for top, (eager, files) in sorted(third_party_imports().items()):
        # a package not installed here (an extra such as vllm) is named like its module
        names = {_norm(d) for d in dists.get(top, [top])}
        allowed = core if eager else core | extras
        if not names & allowed:
            wrong.append(f"{top} ({', '.join(sorted(files))}): {'core' if eager else 'any'}")
    assert wrong == []
    assert {"torch", "transformers", "vllm"} <= set(third_party_imports())  # the walk works
