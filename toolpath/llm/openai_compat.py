"""Chat backend for any OpenAI-compatible ``/v1/chat/completions`` server.

Works with OpenAI and with local servers (llama.cpp, vLLM, Ollama). The ``openai`` client
is imported lazily and its own retries are off: this module retries 408/429/5xx, timeouts,
connection errors, malformed JSON and replies without choices, with exponential backoff and
full jitter, then gives up with one actionable :class:`EndpointError`. Other 4xx answers
raise :class:`BackendError` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from toolpath.errors import BackendError, ConfigError, EndpointError, NativeToolsUnsupportedError
from toolpath.llm.base import (
    ChatModelBase,
    Completion,
    GenerateOptions,
    Message,
    StreamEvent,
    ToolMode,
    Usage,
    check_options,
    new_call_id,
    stop_list,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

T = TypeVar("T")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
_REFUSES_TOOLS = re.compile(
    r"tool.{0,40}(requires|not supported|unsupported|parser)|does not support tools|--jinja",
    re.IGNORECASE,
)
"""A 400 message saying the server cannot do native tool calls: ``vllm serve`` without its
tool flags, Ollama models without tool support, llama.cpp's server without ``--jinja``."""

_HINTS = {
    "connection": "check that the server is running and the base URL is right",
    "timeout": "the server is stuck or too slow; check its load or raise timeout=",
    "status": "the server is overloaded or failing; check its logs or try again later",
    "malformed": "check that the base URL is an OpenAI-compatible /v1 endpoint",
    "empty": "check the server's logs (the prompt may exceed its context)",
}


class OpenAIOptions(GenerateOptions, total=False):
    """:class:`~toolpath.llm.base.GenerateOptions` plus this backend's own option."""

    extra_body: dict[str, Any] | None
    """Merged over the model's ``extra_body`` into this request's body."""


class _Failure(Exception):
    """One failed try: ``kind`` is a key of ``_HINTS`` (retry) or ``"rejected"`` (do not)."""

    def __init__(self, reason: str, kind: str, retry_after: float | None = None, status: int = 0):
        super().__init__(reason)
        self.reason, self.kind, self.retry_after, self.status = reason, kind, retry_after, status


def _one_line(text: object, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _is_httpx(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is httpx's (or httpx2's) exception class ``name``, without importing it."""
    return any(c.__name__ == name and c.__module__.startswith("httpx") for c in type(exc).__mro__)


def _retry_after(headers: Any) -> float | None:
    """Seconds asked for by ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
        if (value := headers.get("retry-after")) is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _usage(raw: Any) -> Usage:
    raw = raw if isinstance(raw, dict) else {}
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        int(raw.get("prompt_tokens") or 0),
        int(raw.get("completion_tokens") or 0),
        int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
    )


def _tool_call(raw: dict[str, Any]) -> dict[str, Any]:
    """One ``tool_calls`` entry in OpenAI form, its arguments always a JSON string."""
    fn = raw.get("function") or {}
    args = fn.get("arguments")
    args = args if isinstance(args, str) else json.dumps(args if args is not None else {})
    call_id = raw.get("id") or new_call_id()
    function = {"name": fn.get("name") or "", "arguments": args}
    return {"id": call_id, "type": "function", "function": function}


def _parse_completion(body: bytes, start: float) -> Completion:
    """Turn a non-streamed reply body into a :class:`Completion`; bad bodies are retried."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise _Failure(f"malformed JSON body ({_one_line(exc, 80)})", "malformed") from exc
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise _Failure(
            "a reply without choices", "empty" if isinstance(data, dict) else "malformed"
        )
    raw = choices[0].get("message") or {}
    message: Message = {"role": "assistant", "content": raw.get("content")}
    if raw.get("tool_calls"):
        message["tool_calls"] = [_tool_call(tc) for tc in raw["tool_calls"]]
    finish = choices[0].get("finish_reason") or ("tool_calls" if raw.get("tool_calls") else "stop")
    latency = time.monotonic() - start
    completion = Completion(message, _usage(data.get("usage")), latency, finish)
    completion.top_logprobs = _top_logprobs(choices[0].get("logprobs"))
    return completion


def _top_logprobs(raw: Any) -> list[dict[str, float]] | None:
    """OpenAI's ``logprobs.content[i].top_logprobs`` as ``[{token: logprob}]`` (None if absent)."""
    content = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(content, list):
        return None
    out = []
    for position in content:
        top = position.get("top_logprobs") if isinstance(position, dict) else None
        pairs = [(t.get("token"), t.get("logprob")) for t in top or [] if isinstance(t, dict)]
        out.append({str(k): float(v) for k, v in pairs if isinstance(v, int | float)})
    return out


class _StreamState:
    """Accumulates streamed chunks into text, tool calls (by index), usage and finish reason."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.usage = Usage()
        self.finish_reason: str | None = None

    def add(self, chunk: Any) -> str:
        """Take one chunk (a dict or an ``openai`` model); return its text delta."""
        data = chunk if isinstance(chunk, dict) else chunk.to_dict()
        self.usage = _usage(data["usage"]) if data.get("usage") else self.usage
        text = ""
        for choice in data.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                index = tc.get("index")  # servers that omit it: a new id starts a new call
                if index is None:
                    index = len(self.calls) if tc.get("id") else max(self.calls, default=0)
                slot = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
                fn = tc.get("function") or {}
                slot["id"] = tc.get("id") or slot["id"]
                slot["name"] = slot["name"] or fn.get("name") or ""
                args = fn.get("arguments") or ""
                slot["arguments"] += args if isinstance(args, str) else json.dumps(args)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        self.parts.append(text)
        return text

    def completion(self, start: float) -> Completion:
        text = "".join(self.parts)
        content = text if text or not self.calls else None
        message: Message = {"role": "assistant", "content": content}
        if self.calls:
            message["tool_calls"] = [
                _tool_call({"id": c["id"], "function": {**c, "arguments": c["arguments"] or "{}"}})
                for _, c in sorted(self.calls.items())
            ]
        finish = self.finish_reason or ("tool_calls" if self.calls else "stop")
        return Completion(message, self.usage, time.monotonic() - start, finish)


class OpenAICompatModel(ChatModelBase):
    """A chat model behind the OpenAI chat completions API, with robust retries.

    ``api_key`` defaults to ``$OPENAI_API_KEY``, else to a placeholder when ``base_url`` is
    given (local servers need none). ``extra_body`` is merged into every request (e.g.
    ``{"cache_prompt": True}`` for llama.cpp); each call may add its own ``extra_body``.
    ``last_attempts`` is how many tries the last call made (at most ``max_retries + 1``,
    plus one when a server rejects ``stream_options``).
    """

    provider = "openai"

    logprobs = True  # the OpenAI API, vLLM and llama.cpp servers return them

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        tool_mode: ToolMode = "native",
        extra_body: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        key = api_key or os.environ.get("OPENAI_API_KEY") or ("not-needed" if base_url else None)
        if key is None:
            raise ConfigError(
                f"model {model!r} needs an API key: set OPENAI_API_KEY or pass base_url "
                "(e.g. http://127.0.0.1:8080/v1) for a local OpenAI-compatible server"
            )
        if max_retries < 0 or timeout <= 0 or backoff_base < 0 or backoff_max < 0:
            raise ConfigError("timeout must be > 0; max_retries and the backoffs must be >= 0")
        self.model, self.name, self.tool_mode = model, name or model, tool_mode
        url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = url.rstrip("/")
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.extra_body = dict(extra_body or {})
        self.last_attempts = 0
        self._api_key = key
        self._lock = threading.Lock()
        self._client: OpenAI | None = None
        self._aclient: AsyncOpenAI | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None

    def _client_args(self) -> dict[str, Any]:
        """The ``openai`` client's own retries are off: :meth:`_retry` does them."""
        return {
            "api_key": self._api_key,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "max_retries": 0,
        }

    def _sync_client(self) -> OpenAI:
        with self._lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(**self._client_args())
            return self._client

    def _async_client(self) -> AsyncOpenAI:
        """The async client of the running event loop (an async client is bound to one loop)."""
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            import openai

            self._aclient = openai.AsyncOpenAI(**self._client_args())
            self._aclient_loop = loop
        return self._aclient

    async def aclose(self) -> None:
        """Close the HTTP clients from inside the event loop the async calls ran on, so pooled
        keep-alive connections are really closed before the loop ends."""
        aclient, loop = self._aclient, self._aclient_loop
        if aclient is not None and loop is asyncio.get_running_loop():
            self._aclient = self._aclient_loop = None
            await aclient.close()
        self.close()

    def close(self) -> None:
        """Close the HTTP clients. Safe to call twice, and from inside an event loop (where
        :meth:`aclose` is better: this only schedules the async client's close)."""
        client, aclient, loop = self._client, self._aclient, self._aclient_loop
        self._client = self._aclient = self._aclient_loop = None
        if client is not None:
            client.close()
        if aclient is None or loop is None or loop.is_closed():
            return
        if loop.is_running():  # in this thread or another: let the loop close it
            asyncio.run_coroutine_threadsafe(aclient.close(), loop)
        else:
            with contextlib.suppress(RuntimeError):  # another loop runs in this thread
                loop.run_until_complete(aclient.close())

    def _kwargs(self, messages: Sequence[Message], options: OpenAIOptions) -> dict[str, Any]:
        """The ``create()`` arguments for one call, with only the options that are set."""
        check_options(options, OpenAIOptions)
        sent = {
            "tools": list(options.get("tools") or []),
            "stop": stop_list(options.get("stop")),
            "max_tokens": options.get("max_tokens"),
            "response_format": options.get("response_format"),
            "temperature": options.get("temperature", 0.0),
            "extra_body": {**self.extra_body, **(options.get("extra_body") or {})},
        }
        if options.get("top_logprobs"):
            sent.update(logprobs=True, top_logprobs=options["top_logprobs"])
        sent = {k: v for k, v in sent.items() if v is not None and v != [] and v != {}}
        return {"model": self.model, "messages": list(messages), **sent}

    def _classify(self, exc: BaseException) -> _Failure:
        """Sort a failed try into worth retrying (by kind) or ``"rejected"``."""
        import openai

        if isinstance(exc, _Failure):
            return exc
        if isinstance(exc, openai.APITimeoutError) or _is_httpx(exc, "TimeoutException"):
            return _Failure(f"timed out after {self.timeout:g} s", "timeout")
        if isinstance(exc, openai.APIConnectionError) or _is_httpx(exc, "TransportError"):
            text = _one_line(exc.__cause__ or exc)
            refused = "refused" in text.lower()
            return _Failure(
                "connection refused" if refused else f"connection error: {text}", "connection"
            )
        if isinstance(exc, openai.APIStatusError):
            code, body = exc.status_code, exc.body
            msg = _one_line(body.get("message") if isinstance(body, dict) else body or exc.message)
            if code in (408, 429) or code >= 500:
                after = _retry_after(exc.response.headers) if code in (429, 503) else None
                return _Failure(f"HTTP {code}: {msg}", "status", after)
            text = f"{self.base_url} (model {self.model!r}) answered HTTP {code}: {msg}"
            if code in (401, 403):
                text += "; check the API key (set OPENAI_API_KEY or pass api_key=)"
            elif code == 404:
                text += "; check the model name and that the base URL ends in /v1"
            return _Failure(text, "rejected", status=code)
        malformed = isinstance(exc, openai.APIResponseValidationError | ValueError)
        if malformed or _is_httpx(exc, "DecodingError"):
            return _Failure(f"malformed reply ({_one_line(exc, 80)})", "malformed")
        if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
            return _Failure(f"{self.base_url} failed: {_one_line(exc.message)}", "rejected")
        raise exc

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based): full jitter, capped."""
        if retry_after is not None:
            return min(self.backoff_max, retry_after)
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**retry))

    def _after_failure(self, exc: BaseException, kwargs: dict[str, Any], tries: list[int]) -> float:
        """Count a failed try; return the wait before the next one, or raise when done.

        ``tries`` is ``[all tries, retries]``, updated in place.
        """
        failure = self._classify(exc)
        if failure.kind == "rejected":
            if (
                failure.status == 400
                and kwargs.get("tools")
                and _REFUSES_TOOLS.search(failure.reason)
            ):
                raise NativeToolsUnsupportedError(failure.reason) from exc
            if failure.status == 400 and kwargs.pop("stream_options", None) is not None:
                return 0.0  # some servers reject stream_options: try once more without it
            raise BackendError(failure.reason) from exc
        if tries[1] >= self.max_retries:
            verb = "did not answer" if failure.kind in ("connection", "timeout") else "kept failing"
            raise EndpointError(
                f"{self.base_url} {verb} after {tries[0]} tries "
                f"(last error: {failure.reason}); {_HINTS[failure.kind]}"
            ) from exc
        tries[1] += 1
        return self._backoff(tries[1] - 1, failure.retry_after)

    def _retry(self, kwargs: dict[str, Any], attempt: Callable[[], T]) -> T:
        tries = [0, 0]
        while True:
            tries[0] += 1
            self.last_attempts = tries[0]
            try:
                return attempt()
            except Exception as exc:
                delay = self._after_failure(exc, kwargs, tries)
            time.sleep(delay)

    async def _aretry(self, kwargs: dict[str, Any], attempt: Callable[[], Awaitable[T]]) -> T:
        tries = [0, 0]
        while True:
            tries[0] += 1
            self.last_attempts = tries[0]
            try:
                return await attempt()
            except Exception as exc:
                delay = self._after_failure(exc, kwargs, tries)
            await asyncio.sleep(delay)

    def _broken(self, exc: BaseException) -> BackendError:
        """The error for a stream that fails after its first chunk (never retried)."""
        failure = self._classify(exc)
        if failure.kind == "rejected":
            return BackendError(failure.reason)
        return EndpointError(
            f"{self.base_url} broke off the stream ({failure.reason}); not retried "
            "because part of the reply was already delivered"
        )

    def _rest(self, first: Any, chunks: Iterator[Any]) -> Iterator[Any]:
        """A stream's chunks from its ``first``; a failure after it is not retried."""
        yield first
        try:
            yield from chunks
        except Exception as exc:
            raise self._broken(exc) from exc

    async def _arest(self, first: Any, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """:meth:`_rest` for an async stream."""
        yield first
        try:
            async for chunk in chunks:
                yield chunk
        except Exception as exc:
            raise self._broken(exc) from exc

    def complete(self, messages: Sequence[Message], **options: Unpack[OpenAIOptions]) -> Completion:
        """One chat completion, retried on transient failures."""
        kwargs = self._kwargs(messages, options)
        client = self._sync_client()

        def attempt() -> Completion:
            start = time.monotonic()
            raw = client.chat.completions.with_raw_response.create(**kwargs)
            return _parse_completion(raw.content, start)

        return self._retry(kwargs, attempt)

    async def acomplete(
        self, messages: Sequence[Message], **options: Unpack[OpenAIOptions]
    ) -> Completion:
        """Async :meth:`complete` (same options) on ``AsyncOpenAI``."""
        kwargs = self._kwargs(messages, options)
        client = self._async_client()

        async def attempt() -> Completion:
            start = time.monotonic()
            raw = await client.chat.completions.with_raw_response.create(**kwargs)
            return _parse_completion(raw.content, start)

        return await self._aretry(kwargs, attempt)

    def stream(
        self, messages: Sequence[Message], **options: Unpack[OpenAIOptions]
    ) -> Iterator[StreamEvent]:
        """Stream text deltas, then one event with the whole :class:`Completion`.

        Takes :meth:`complete`'s options. Failures before the first chunk are retried like
        :meth:`complete`; later ones raise at once.
        """
        kwargs = self._kwargs(messages, options)
        kwargs.update(stream=True, stream_options={"include_usage": True})
        client, start = self._sync_client(), time.monotonic()

        def attempt() -> tuple[Any, Iterator[Any], Any]:
            stream = client.chat.completions.create(**kwargs)
            chunks = iter(stream)
            try:
                return stream, chunks, next(chunks)
            except BaseException as exc:
                stream.close()
                if isinstance(exc, StopIteration):
                    raise _Failure("a stream without any chunk", "empty") from None
                raise

        stream, chunks, first = self._retry(kwargs, attempt)
        state = _StreamState()
        try:
            for chunk in self._rest(first, chunks):
                if text := state.add(chunk):
                    yield StreamEvent(delta=text)
        finally:
            stream.close()
        yield StreamEvent(completion=state.completion(start))

    async def astream(
        self, messages: Sequence[Message], **options: Unpack[OpenAIOptions]
    ) -> AsyncIterator[StreamEvent]:
        """Async :meth:`stream` (same options and retries)."""
        kwargs = self._kwargs(messages, options)
        kwargs.update(stream=True, stream_options={"include_usage": True})
        client, start = self._async_client(), time.monotonic()

        async def attempt() -> tuple[Any, AsyncIterator[Any], Any]:
            stream = await client.chat.completions.create(**kwargs)
            chunks = stream.__aiter__()
            try:
                return stream, chunks, await chunks.__anext__()
            except BaseException as exc:
                await stream.close()
                if isinstance(exc, StopAsyncIteration):
                    raise _Failure("a stream without any chunk", "empty") from None
                raise

        stream, chunks, first = await self._aretry(kwargs, attempt)
        state = _StreamState()
        try:
            async for chunk in self._arest(first, chunks):
                if text := state.add(chunk):
                    yield StreamEvent(delta=text)
        finally:
            await stream.close()
        yield StreamEvent(completion=state.completion(start))
