"""The package's import graph: no cycles, imports flow one way (core -> codegen -> simulate ->
theory / validate -> report -> cli), and every module imports in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import derive

PACKAGE = Path(derive.__file__).resolve().parent

#: the floors, lowest first; a module may import only from its own floor or below
LAYERS = [
    {
        "derive",
        "derive.__init__",
        "derive.errors",
        "derive.symbols",
        "derive.spec",
        "derive.optimizers",
        "derive.noise",
        "derive.regimes",
        "derive.expectation",
        "derive.engine",
        "derive.order2",
        "derive.sde",
        "derive.combination",
        "derive.io",
        "derive.resources",
        "derive.runtime",
        "derive.opaque",
        "derive.bivariate",
        "derive.correlation",
        "derive.pairs",
        "derive.parsing",
        "derive.executor",
        "derive.points",
        "derive.fast",
        "derive.descriptors",
    },
    {"derive.codegen"},
    {"derive.simulate", "derive.plots", "derive.correlated_simulation"},
    {"derive.theory", "derive.validate", "derive.linearised"},
    {"derive.report"},
    {"derive.cli", "derive.__main__", "derive.sweep"},
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every derive module imported anywhere in the file (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "derive"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "derive":
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(name, path) if m in modules and m != name} for name, path in modules.items()}


def _floor(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if (
            any(name == prefix or name.startswith(prefix + ".") for prefix in layer if prefix != "derive")
            or name == "derive"
        ):
            return i
    raise AssertionError(f"module {name} is on no floor of LAYERS: add it")


def test_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt in ("derive",):  # the lazy package root imports nothing eagerly
                continue
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_imports_flow_one_way():
    bad = [
        f"{a} (floor {_floor(a)}) imports {b} (floor {_floor(b)})"
        for a, targets in _graph().items()
        for b in targets
        if _floor(b) > _floor(a)
    ]
    assert not bad, "\n".join(bad)


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(n for n in _modules() if n != "derive.__main__")  # __main__ runs the CLI
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\nprint('ok')"
    res = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_loading_a_builtin_simulator_does_not_import_sympy():
    code = (
        "import sys; from derive.simulate import load_module; from derive.combination import Combination; "
        "load_module(Combination('sgd')); print('sympy' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "False", res.stderr[-2000:]
