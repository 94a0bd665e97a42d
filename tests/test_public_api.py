"""The public API: what each package exports, and that the docs and examples use only that.

A name is public when a package lists it in ``__all__``; the docs, README and examples import
public names from the package that exports them (``from toolpath.tools.catalog import
load_catalog``), never from the module that defines them (``toolpath.tools.catalog.formats``).
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "toolpath"
DOCS = [ROOT / "README.md", ROOT / "docs" / "api.md", ROOT / "docs" / "architecture.md"]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

PACKAGES = sorted(".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py"))
PUBLIC_MODULES = {"toolpath.errors"}
"""Plain modules (not packages) whose names are public: every error is, with its exit code."""

HEAVY = ("langgraph", "openai", "torch", "xllamacpp", "sentence_transformers", "cv2", "typer")
LIGHT_PACKAGES = [p for p in PACKAGES if p not in ("toolpath.tools", "toolpath.cli")]
"""Packages whose import loads none of :data:`HEAVY`; ``toolpath.tools`` imports its built-in
tools (pydantic) and ``toolpath.cli`` the command line (typer)."""


def public_names(module: str) -> set[str]:
    """The names ``module`` makes public: its ``__all__`` (for a public plain module without one,
    its names that do not start with ``_``)."""
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    if names is not None:
        return set(names)
    if module in PUBLIC_MODULES:
        return {n for n in vars(mod) if not n.startswith("_")}
    return set()


def is_package(name: str) -> bool:
    return (ROOT.joinpath(*name.split(".")) / "__init__.py").is_file()


def is_public_module(name: str) -> bool:
    return is_package(name) or name in PUBLIC_MODULES


def resolve(dotted: str) -> Any:
    """The object ``toolpath.a.b.Name`` names, through public names only: each step is a
    subpackage, a public module, or a name in the ``__all__`` of the package before it."""
    parts = dotted.split(".")
    obj: Any = importlib.import_module(parts[0])
    path = parts[0]
    for part in parts[1:]:
        here = f"{path}.{part}"
        if isinstance(obj, ModuleType) and part in public_names(path):
            obj = getattr(obj, part)
        elif isinstance(obj, ModuleType) and is_public_module(here):
            obj = importlib.import_module(here)
        elif isinstance(obj, ModuleType):
            raise LookupError(f"{path} does not export {part!r} (not in its __all__)")
        else:
            obj = getattr(obj, part)  # an attribute of a public object, e.g. a method
        path = here
    return obj


# --- what the packages export ----------------------------------------------------------------


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_has_all(package):
    mod = importlib.import_module(package)
    assert isinstance(getattr(mod, "__all__", None), list | tuple), f"{package} has no __all__"
    assert len(set(mod.__all__)) == len(mod.__all__), f"{package}.__all__ repeats a name"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package):
    mod = importlib.import_module(package)
    missing = []
    for name in getattr(mod, "__all__", ()):
        try:
            getattr(mod, name)
        except (AttributeError, ImportError) as exc:
            missing.append(f"{name}: {exc}")
    assert not missing, f"{package} exports names that do not resolve: {missing}"
    assert set(getattr(mod, "__all__", ())) <= set(dir(mod))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_export_is_shadowed_by_a_submodule(package):
    """A lazily exported name equal to a submodule's name would read as the module once that
    module is imported (the import system sets it on the package)."""
    mod = importlib.import_module(package)
    folder = ROOT.joinpath(*package.split("."))
    for name in getattr(mod, "__all__", ()):
        if (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file():
            importlib.import_module(f"{package}.{name}")
            assert not isinstance(getattr(mod, name), ModuleType), f"{package}.{name}"


def test_top_level_exports_the_builders_and_documents_every_name():
    import toolpath

    builders = {"tool_agent", "alpha_umi_agent", "math_agent", "pot_agent", "cot_agent"}
    builders |= {"costa_agent", "web_agent"}
    basics = {"tool", "Tool", "ToolError", "ToolpathError", "load_model", "ChatModel"}
    assert builders | basics | {"sqlite_checkpointer", "load_catalog"} <= set(toolpath.__all__)
    doc = toolpath.__doc__ or ""
    undocumented = [n for n in toolpath.__all__ if not re.search(rf"`{n}`", doc)]
    assert not undocumented, f"toolpath's docstring does not name {undocumented}"


def test_import_toolpath_is_light():
    code = f"import sys, toolpath; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_a_package_imports_none_of_its_exports():
    code = (
        f"import importlib, sys\nfor p in {LIGHT_PACKAGES!r}: importlib.import_module(p)\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- what the docs and examples use ----------------------------------------------------------

FROM_IMPORT = re.compile(r"^[ \t>]*from\s+(toolpath[\w.]*)\s+import\s+(\([^)]*\)|[^\n#]+)", re.M)
PLAIN_IMPORT = re.compile(r"^[ \t>]*import\s+(toolpath[\w.]*)", re.M)
DOTTED = re.compile(r"(?<![\w/.-])toolpath(?:\.[A-Za-z_]\w*)+")


def imports_in(path: Path) -> list[tuple[str, str | None]]:
    """``(module, name)`` for each ``from module import name`` of toolpath in a file, and
    ``(module, None)`` for each ``import module``."""
    text = path.read_text(encoding="utf-8")
    found: list[tuple[str, str | None]] = []
    if path.suffix == ".py":
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("toolpath"):
                found += [(node.module or "", a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                found += [(a.name, None) for a in node.names if a.name.startswith("toolpath")]
        return found
    for module, names in FROM_IMPORT.findall(text):
        for name in names.strip("() \n").split(","):
            name = name.split(" as ")[0].strip()
            if name:
                found.append((module, name))
    found += [(module, None) for module in PLAIN_IMPORT.findall(text)]
    return found


def dotted_names_in(path: Path) -> set[str]:
    return {m.rstrip(".") for m in DOTTED.findall(path.read_text(encoding="utf-8"))}


DOC_FILES = [*DOCS, *EXAMPLES]


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_docs_and_examples_import_only_public_names(path):
    bad = []
    for module, name in imports_in(path):
        if name is None:
            if not is_public_module(module):
                bad.append(f"import {module}")
        elif not is_public_module(module) or name not in public_names(module):
            bad.append(f"from {module} import {name}")
    assert not bad, f"{path.name} imports names that are not public there: {bad}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_name_the_docs_mention_resolves(path):
    names = dotted_names_in(path) | {
        f"{module}.{name}" for module, name in imports_in(path) if name is not None
    }
    bad = []
    for dotted in sorted(names):
        try:
            resolve(dotted)
        except (LookupError, AttributeError, ImportError) as exc:
            bad.append(f"{dotted}: {exc}")
    assert not bad, f"{path.name} names what is not public: {bad}"


def test_the_doc_checks_see_the_docs():
    """The patterns above find what they look for (so the checks cannot pass vacuously)."""
    api = ROOT / "docs" / "api.md"
    assert ("toolpath", "load_model") in imports_in(api)
    assert "toolpath.tool_agent" in dotted_names_in(api)
    with pytest.raises(LookupError):
        resolve("toolpath.tools.catalog.formats.load_catalog")
    assert resolve("toolpath.tools.catalog.load_catalog") is resolve("toolpath.load_catalog")
