"""Model specs: one string that selects a backend and a model.

=====================================  ===============================================
``local``                              the default embedded model (qwen2.5-coder-1.5b)
``local:qwen2.5-coder-0.5b``           a registry model (``toolpath models list``)
``local:/path/to/model.gguf``          any GGUF file
``openai:gpt-4o-mini``                 OpenAI (``OPENAI_API_KEY``; ``OPENAI_BASE_URL`` if set)
``openai:MODEL@http://host:8000/v1``   any OpenAI-compatible server (vLLM, llama.cpp, ...)
``http://host:8000/v1#MODEL``          the same, URL first; without ``#MODEL`` the
                                       server's first listed model is used
``ollama:llama3.2``                    Ollama on localhost:11434 (``OLLAMA_HOST`` to change)
``vllm:Qwen/Qwen2.5-7B-Instruct``      vLLM's in-process engine (a Hugging Face model
                                       name or folder; ``pip install 'toolpath[vllm]'``)
=====================================  ===============================================
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import TYPE_CHECKING, Any

from toolpath.errors import EndpointError, ModelSpecError
from toolpath.llm.base import ChatModel

if TYPE_CHECKING:
    from toolpath.llm.models import Progress

EXAMPLES = (
    "local, local:qwen2.5-coder-0.5b, local:/path/model.gguf, openai:gpt-4o-mini, "
    "openai:MODEL@http://127.0.0.1:8000/v1, http://127.0.0.1:8000/v1#MODEL, ollama:llama3.2, "
    "vllm:/path/to/hf-model"
)


def load_model(
    spec: str | ChatModel = "local", *, progress: Progress | None = None, **options: Any
) -> ChatModel:
    """Build the ChatModel a spec names. ``options`` go to the backend's constructor;
    ``progress`` reports joining, verifying or downloading a local model file."""
    if not isinstance(spec, str):
        return spec
    spec = spec.strip()
    scheme, _, rest = spec.partition(":")
    if spec == "local" or scheme == "local":
        from toolpath.llm.local import LocalModel
        from toolpath.llm.models import DEFAULT_MODEL

        return LocalModel(rest or DEFAULT_MODEL, progress=progress, **options)
    if scheme in ("http", "https"):
        url, _, model = spec.partition("#")
        return _openai(model or first_served_model(url), url, options)
    if scheme == "openai" and rest:
        model, _, url = rest.partition("@")
        if not model:
            raise ModelSpecError(f"model spec {spec!r} names no model; e.g. openai:gpt-4o-mini")
        return _openai(model, url or os.environ.get("OPENAI_BASE_URL"), options)
    if scheme == "ollama" and rest:
        host = os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434").rstrip("/")
        host = host if "://" in host else f"http://{host}"
        return _openai(rest, f"{host}/v1", {"api_key": "ollama", **options})
    if scheme == "vllm" and rest:
        from toolpath.llm.vllm_engine import VLLMModel

        return VLLMModel(rest, **options)
    raise ModelSpecError(f"unknown model spec {spec!r}; use one of: {EXAMPLES}")


def _openai(model: str, base_url: str | None, options: dict[str, Any]) -> ChatModel:
    from toolpath.llm.openai_compat import OpenAICompatModel

    return OpenAICompatModel(model, base_url=base_url or None, **options)


def first_served_model(base_url: str, timeout: float = 10.0) -> str:
    """The first model id that an OpenAI-compatible server lists at ``/models``."""
    url = base_url.rstrip("/") + "/models"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.load(resp)
        return str(data["data"][0]["id"])
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise EndpointError(
            f"could not list the models at {url} ({exc}); add the model name as {base_url}#MODEL"
        ) from exc
