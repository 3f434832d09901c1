"""The house by layers: the import graph of ``dip/`` (every import statement, at any depth
of the code) has no cycle, imports only go down the layers, and only a few modules read
Hydra or OmegaConf."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dip"

LAYERS = ["errors", "typed", "atomic", "data", "problems", "nets", "plots", "launch", "fitting",
          "runs", "report", "cli", "bench", "__main__", "__init__"]
"""Bottom to top: a module may import its own layer (without a cycle) and those below."""

CONFIG_READERS = {"dip.cli.main", "dip.runs.config", "dip.runs.schema", "dip.runs.plan",
                  "dip.runs.experiments", "dip.launch.sweep", "dip.report.configs"}
"""The modules that may import omegaconf or Hydra: the command, the config and its
schema, the plan that reads a config once, an experiment's declared sweep, the sweep's
Hydra callback and the report's reading of old records."""


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """The dip modules that ``path`` imports (resolved to modules, not names) and the
    third-party top-level packages it imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own, other = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from pkg import mod` imports the module; `from mod import name`, the module
            names = [f"{node.module}.{a.name}" if _exists(f"{node.module}.{a.name}")
                     else node.module for a in node.names]
        else:
            continue
        for name in names:
            (own if name == "dip" or name.startswith("dip.") else other).add(name)
    return {m for m in own if _exists(m)}, {n.split(".")[0] for n in other}


def _exists(module: str) -> bool:
    """Whether ``module`` (dotted) is a module or package of dip."""
    base = PACKAGE.parent / module.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


GRAPH = {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    return LAYERS.index(key)


def test_every_module_has_a_layer():
    for module in GRAPH:
        assert _layer(module) >= 0, module


def test_imports_only_go_down_the_layers():
    up = [(m, d) for m, (deps, _) in GRAPH.items() for d in deps if _layer(d) > _layer(m)]
    assert not up, "imports that go up a layer: " + ", ".join(f"{m} -> {d}" for m, d in up)


def test_the_import_graph_has_no_cycle():
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(GRAPH.get(module, (set(), set()))[0]):
            if dep == module:
                continue
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(dep):] + [dep])
                            if dep in path else f"{module} -> {dep}")
            if dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_few_modules_read_hydra_or_omegaconf():
    readers = {m for m, (_, other) in GRAPH.items() if {"hydra", "omegaconf"} & other}
    assert readers <= CONFIG_READERS, sorted(readers - CONFIG_READERS)
    assert len(CONFIG_READERS) <= 8


def test_the_package_has_few_top_level_modules():
    top = [p for p in PACKAGE.glob("*.py")]
    assert len(top) <= 12, sorted(p.name for p in top)
