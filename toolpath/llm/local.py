"""The embedded default model: a GGUF file served by llama.cpp through xllamacpp.

xllamacpp starts llama.cpp's own server inside this process, on 127.0.0.1 and a random
port. Requests go through :class:`~toolpath.llm.openai_compat.OpenAICompatModel`, so the
local model and any remote endpoint share one request path (retries, streaming, usage).
llama.cpp keeps each slot's KV cache, and ``cache_prompt`` makes the next turn of a
conversation reuse the prefix it has already read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, Unpack

from toolpath.errors import BackendError, MissingDependencyError
from toolpath.llm.base import ChatModelBase, Completion, Message, StreamEvent, ToolMode
from toolpath.llm.models import Progress, resolve
from toolpath.llm.openai_compat import OpenAICompatModel, OpenAIOptions

_SERVERS: dict[tuple[Any, ...], tuple[Any, str]] = {}
_LOCK = threading.Lock()


def start_server(
    path: Path, *, n_ctx: int = 8192, n_threads: int | None = None, n_parallel: int = 1
) -> tuple[Any, str]:
    """Start (or reuse) an xllamacpp server for ``path``; returns ``(server, base_url)``.

    Servers are shared per (file, settings) within a process, so building several agents
    on the same local model loads the weights once.
    """
    try:
        import xllamacpp
    except ImportError as exc:
        raise MissingDependencyError(
            "the embedded model needs xllamacpp: pip install 'toolpath[local]'"
        ) from exc
    threads = n_threads or max(1, os.cpu_count() or 1)
    key = (str(path), n_ctx, threads, n_parallel)
    with _LOCK:
        if key in _SERVERS:
            return _SERVERS[key]
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx * n_parallel
        params.n_parallel = n_parallel
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.cache_prompt = True
        params.verbosity = -1
        params.use_color = False
        try:
            server = xllamacpp.Server(params)
        except Exception as exc:  # xllamacpp raises plain RuntimeErrors
            raise BackendError(f"llama.cpp could not load {path}: {exc}") from exc
        base_url = str(server.listening_address).rstrip("/") + "/v1"
        _SERVERS[key] = (server, base_url)
        return server, base_url


class LocalModel(ChatModelBase):
    """A local GGUF model. ``model`` is a registry name or a path to a .gguf file.

    Its calls go through :class:`~toolpath.llm.openai_compat.OpenAICompatModel` and take its
    options (:class:`~toolpath.llm.openai_compat.OpenAIOptions`, ``extra_body`` included).
    """

    provider = "llama.cpp"

    tool_mode: ToolMode = "json"
    logprobs = True  # llama.cpp's server returns them

    def __init__(
        self,
        model: str = "qwen2.5-coder-1.5b",
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_parallel: int = 1,
        download: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.path = resolve(model, download=download, progress=progress)
        self.name = f"local:{model}"
        self.server, self.base_url = start_server(
            self.path, n_ctx=n_ctx, n_threads=n_threads, n_parallel=n_parallel
        )
        self._http = OpenAICompatModel(
            model=self.path.stem,
            base_url=self.base_url,
            api_key="local",
            max_retries=1,
            timeout=600.0,
            tool_mode="json",
            extra_body={"cache_prompt": True},
            name=self.name,
        )

    def complete(self, messages: Sequence[Message], **options: Unpack[OpenAIOptions]) -> Completion:
        return self._http.complete(messages, **options)

    async def acomplete(
        self, messages: Sequence[Message], **options: Unpack[OpenAIOptions]
    ) -> Completion:
        return await self._http.acomplete(messages, **options)

    def stream(
        self, messages: Sequence[Message], **options: Unpack[OpenAIOptions]
    ) -> Iterator[StreamEvent]:
        return self._http.stream(messages, **options)

    def astream(
        self, messages: Sequence[Message], **options: Unpack[OpenAIOptions]
    ) -> AsyncIterator[StreamEvent]:
        return self._http.astream(messages, **options)

    def close(self) -> None:
        """Close this model's HTTP clients; the shared server lives until the process exits."""
        self._http.close()

    async def aclose(self) -> None:
        """:meth:`close` from inside the event loop its async calls ran on."""
        await self._http.aclose()
