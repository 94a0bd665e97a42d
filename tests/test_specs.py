"""Model spec parsing (no model is loaded here) and the cost of `import toolpath`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from toolpath.errors import EndpointError, ModelSpecError
from toolpath.llm.openai_compat import OpenAICompatModel
from toolpath.llm.specs import load_model


@pytest.mark.parametrize("spec", ["bogus", "bogus:x", "openai:", "vllmm:x", "", "ollama:"])
def test_unknown_specs_are_refused(spec):
    with pytest.raises(ModelSpecError) as info:
        load_model(spec)
    assert info.value.exit_code == 2
    assert "local:qwen2.5-coder-0.5b" in str(info.value)


def test_openai_spec_with_url():
    m = load_model("openai:my-model@http://127.0.0.1:8000/v1")
    assert isinstance(m, OpenAICompatModel)
    assert m.name == "my-model"
    assert m.tool_mode == "native"


def test_url_spec_with_model_name():
    m = load_model("http://127.0.0.1:8000/v1#served")
    assert isinstance(m, OpenAICompatModel) and m.name == "served"


def test_url_spec_without_model_needs_a_reachable_server():
    with pytest.raises(EndpointError, match="#MODEL"):
        load_model("http://127.0.0.1:9/v1")


def test_ollama_spec(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "10.0.0.2:11434")
    m = load_model("ollama:llama3.2")
    assert isinstance(m, OpenAICompatModel)
    assert m.name == "llama3.2"


def test_model_objects_pass_through(scripted):
    model = scripted(["hi"])
    assert load_model(model) is model


def test_import_toolpath_is_light():
    code = (
        "import sys, toolpath; heavy = [m for m in ('torch', 'langgraph', 'openai', 'xllamacpp', "
        "'sentence_transformers', 'typer') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
