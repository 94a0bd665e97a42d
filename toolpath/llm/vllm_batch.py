"""The engine loop behind :class:`~toolpath.llm.vllm_engine.VLLMModel`: batching across callers.

One thread owns a ``vllm.LLM``. Callers put :class:`Request` objects in its inbox and wait
on their futures. The loop:

* when idle, waits for a request, then gathers whatever else arrives within the batch
  window (5 ms by default);
* adds all of them to the engine at once (``LLMEngine.add_request``), together with any
  that arrived while the engine was busy;
* runs ``LLMEngine.step()``: one forward pass over *every* running request, the ones
  admitted steps ago included (vLLM's continuous batching), and hands each finished
  request, or each streamed piece, to its caller.

So the pending next requests of all running episodes reach the engine together, never one
at a time. :class:`BatchStats` counts requests, admissions and steps, and the largest and
mean number of requests per step.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from toolpath.errors import BackendError
from toolpath.llm.base import Completion, Message, Usage

OnDelta = Callable[[str], None]


@dataclass
class Request:
    """One chat request on its way through the engine loop."""

    id: str
    prompt: str
    params: Any
    """A ``vllm.SamplingParams``."""
    parse_tools: bool
    on_delta: OnDelta | None = None
    future: Future[Completion] = field(default_factory=Future)
    start: float = field(default_factory=time.monotonic)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    parts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Abort:
    id: str


_STOP = object()


def _resolve(
    req: Request, result: Completion | None = None, error: BaseException | None = None
) -> None:
    """Settle a request's future unless its caller has already cancelled it."""
    try:
        if error is not None:
            req.future.set_exception(error)
        else:
            req.future.set_result(result)  # type: ignore[arg-type]
    except InvalidStateError:
        pass


@dataclass
class BatchStats:
    """What the engine loop did, for tuning and for tests."""

    requests: int = 0
    """Requests admitted to the engine."""
    admissions: int = 0
    """Times one or more new requests were added to the engine together."""
    max_admitted: int = 0
    """The most requests added at once."""
    steps: int = 0
    """Engine steps: each is one forward pass over every running request."""
    max_batch: int = 0
    """The most requests running in one step."""
    batch_sum: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    busy_s: float = 0.0
    """Seconds spent inside ``step()``."""

    def as_dict(self) -> dict[str, Any]:
        mean = self.batch_sum / self.steps if self.steps else 0.0
        rate = self.completion_tokens / self.busy_s if self.busy_s else 0.0
        return {
            "requests": self.requests,
            "admissions": self.admissions,
            "max_admitted": self.max_admitted,
            "steps": self.steps,
            "max_batch": self.max_batch,
            "mean_batch": round(mean, 2),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "busy_s": round(self.busy_s, 3),
            "tokens_per_s": round(rate, 1),
        }


class EngineLoop:
    """The one thread that touches a ``vllm.LLM``: admits requests and steps the engine."""

    def __init__(self, llm: Any, window_s: float) -> None:
        from vllm.sampling_params import RequestOutputKind

        self.llm, self.engine = llm, llm.llm_engine
        self.tokenizer = llm.get_tokenizer()
        self.window_s = window_s
        self.kinds = (RequestOutputKind.FINAL_ONLY, RequestOutputKind.DELTA)
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.running: dict[str, Request] = {}
        self.stats = BatchStats()
        self.failure: str | None = None
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="toolpath-vllm", daemon=True)
        self.thread.start()

    def submit(self, req: Request) -> None:
        if self.failure is not None:
            raise BackendError(f"the vLLM engine has failed ({self.failure}); load the model again")
        if self.closed:
            raise BackendError("this vLLM model was closed; load it again")
        self.inbox.put(req)

    def abort(self, request_id: str) -> None:
        self.inbox.put(_Abort(request_id))

    def stop(self, timeout: float = 30.0) -> None:
        self.closed = True
        self.inbox.put(_STOP)
        self.thread.join(timeout)

    # -- the loop ---------------------------------------------------------------------

    def _take(self) -> list[Any]:
        """What is waiting; when idle, block for the first request plus a short window."""
        items: list[Any] = []
        if not self.running:
            items.append(self.inbox.get())
            deadline = time.monotonic() + self.window_s
            while (left := deadline - time.monotonic()) > 0:
                try:
                    items.append(self.inbox.get(timeout=left))
                except queue.Empty:
                    break
        while True:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                return items

    def _run(self) -> None:
        while True:
            items = self._take()
            new = [r for r in items if isinstance(r, Request)]
            if any(i is _STOP for i in items):
                self._fail(
                    [*new, *self.running.values()], BackendError("the vLLM model was closed")
                )
                return
            if new:
                self._admit(new)
            for item in items:  # after admitting: an abort may follow its request closely
                if isinstance(item, _Abort):
                    self._abort(item.id)
            if self.running:
                self._step()

    def _admit(self, new: list[Request]) -> None:
        admitted = 0
        for req in new:
            if req.future.done():  # cancelled before it got here
                continue
            try:
                ids = self.tokenizer.encode(req.prompt, add_special_tokens=False)
                req.prompt_tokens = len(ids)
                req.params.output_kind = self.kinds[req.on_delta is not None]
                self.engine.add_request(req.id, {"prompt_token_ids": ids}, req.params)
            except Exception as exc:  # e.g. a prompt longer than max_model_len
                _resolve(req, error=BackendError(f"vLLM rejected the request: {exc}"))
                continue
            self.running[req.id] = req
            admitted += 1
        if admitted:
            s = self.stats
            s.requests += admitted
            s.admissions += 1
            s.max_admitted = max(s.max_admitted, admitted)

    def _abort(self, request_id: str) -> None:
        req = self.running.pop(request_id, None)
        if req is None:
            return
        self.engine.abort_request([request_id])
        req.future.cancel()

    def _fail(self, reqs: list[Request], error: BackendError) -> None:
        for req in reqs:
            _resolve(req, error=error)
        self.running.clear()

    def _step(self) -> None:
        n, start = len(self.running), time.perf_counter()
        try:
            outputs = self.engine.step()
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            self._fail(list(self.running.values()), BackendError(f"the vLLM engine failed: {exc}"))
            return
        s = self.stats
        s.busy_s += time.perf_counter() - start
        s.steps += 1
        s.batch_sum += n
        s.max_batch = max(s.max_batch, n)
        for out in outputs:
            req = self.running.get(out.request_id)
            if req is not None:
                self._take_output(req, out)

    def _take_output(self, req: Request, out: Any) -> None:
        piece = out.outputs[0] if out.outputs else None
        if piece is not None:
            req.parts.append(piece.text)
            req.completion_tokens += len(piece.token_ids)
            if req.on_delta is not None and piece.text:
                try:
                    req.on_delta(piece.text)
                except Exception as exc:  # the caller went away (e.g. its event loop closed)
                    self._abort(req.id)
                    _resolve(req, error=BackendError(f"the stream consumer failed: {exc}"))
                    return
        if not out.finished:
            return
        del self.running[req.id]
        req.cached_tokens = int(getattr(out, "num_cached_tokens", 0) or 0)
        reason = (piece.finish_reason if piece is not None else None) or "stop"
        self.stats.prompt_tokens += req.prompt_tokens
        self.stats.completion_tokens += req.completion_tokens
        _resolve(req, result=_completion(req, reason))


def _completion(req: Request, reason: str) -> Completion:
    text = "".join(req.parts)
    message: Message = {"role": "assistant", "content": text}
    if req.parse_tools and (calls := parse_hermes_calls(text)):
        rest = _HERMES.sub("", text).strip()
        message = {"role": "assistant", "content": rest or None, "tool_calls": calls}
        reason = "tool_calls" if reason == "stop" else reason
    usage = Usage(req.prompt_tokens, req.completion_tokens, req.cached_tokens)
    return Completion(message, usage, time.monotonic() - req.start, reason)


_HERMES = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def parse_hermes_calls(text: str) -> list[dict[str, Any]]:
    """OpenAI ``tool_calls`` from Hermes-style ``<tool_call>{"name", "arguments"}</tool_call>``
    blocks (the format of Qwen2.5's chat template). Blocks that are not such JSON are left
    out, and the text then goes to the agent's own parser and repair."""
    calls = []
    for raw in _HERMES.findall(text):
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            return []
        if not isinstance(obj, dict) or "name" not in obj:
            return []
        args = obj.get("arguments", {})
        calls.append(
            {
                "id": "call_" + uuid.uuid4().hex[:12],
                "type": "function",
                "function": {
                    "name": str(obj["name"]),
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return calls
