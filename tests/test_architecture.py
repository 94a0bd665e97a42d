"""The architecture's rules that a test can check (docs/architecture.md).

- no module over 600 lines;
- every agent builder follows the contract of ``toolpath/agents/base.py``: ``model`` first,
  ``checkpointer=`` accepted, and at most 60 lines (it checks arguments and wires the graph;
  the nodes live elsewhere);
- no import cycle between modules (``lint-imports`` checks the layers and the independence of
  the seed systems; its ``acyclic_siblings`` contract only sees cycles between siblings);
- no module imports another module's ``_private`` names.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import grimp
import pytest

import toolpath

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 600
MAX_BUILDER_LINES = 60

BUILDERS = {
    "tool_agent": "toolpath.agents.react",
    "alpha_umi_agent": "toolpath.agents.alpha_umi.agent",
    "math_agent": "toolpath.agents.math.dotamath",
    "pot_agent": "toolpath.agents.math.baselines",
    "cot_agent": "toolpath.agents.math.baselines",
    "costa_agent": "toolpath.agents.costa.agent",
    "web_agent": "toolpath.agents.web.plan_act",
    "web_react_agent": "toolpath.agents.web.agent",
    "one_step_agent": "toolpath.agents.one_step",
}


def source_of(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_no_module_is_over_600_lines():
    long = {}
    for path in sorted((ROOT / "toolpath").rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            long[str(path.relative_to(ROOT))] = lines
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_module_imports_private_names():
    """What two modules share is public in one of them: no ``from toolpath.x import _name``."""
    bad = []
    for path in sorted((ROOT / "toolpath").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level == 0 and not (node.module or "").startswith("toolpath"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    bad.append(f"{path.relative_to(ROOT)}: {node.module} {alias.name}")
    assert not bad, f"imports of private names: {bad}"


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_builder_is_at_most_60_lines(builder):
    tree = ast.parse(source_of(BUILDERS[builder]).read_text(encoding="utf-8"))
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == builder]
    assert len(defs) == 1, f"{builder} is not a top-level function of {BUILDERS[builder]}"
    (fn,) = defs
    assert fn.end_lineno is not None
    length = fn.end_lineno - fn.lineno + 1
    assert length <= MAX_BUILDER_LINES, (
        f"{builder} is {length} lines (def line to last line); at most {MAX_BUILDER_LINES}: "
        "it should only check its arguments and wire the graph"
    )


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_builder_takes_model_first_and_a_checkpointer(builder):
    fn = getattr(toolpath, builder)
    assert fn.__module__ == BUILDERS[builder]
    params = list(inspect.signature(fn).parameters.values())
    assert params and params[0].name == "model", f"{builder}'s first parameter is not model"
    assert params[0].default is None, f"{builder}(model=None) should mean the default model"
    checkpointer = inspect.signature(fn).parameters.get("checkpointer")
    assert checkpointer is not None, f"{builder} does not accept checkpointer="
    assert checkpointer.kind is inspect.Parameter.KEYWORD_ONLY
    assert checkpointer.default is None


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import graph's cycles: its strongly connected components of two or more modules
    (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
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
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_strongly_connected_finds_a_cycle():
    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=a, imported=b)
    assert strongly_connected(graph) == [["p.a", "p.b", "p.c"]]


def test_no_import_cycles():
    cycles = strongly_connected(grimp.build_graph("toolpath"))
    assert not cycles, f"modules that import each other in a loop: {cycles}"
