"""One chat model over several replicas of the same model: load balancing and fail-over.

:class:`ReplicaPool` is a :class:`~toolpath.llm.base.ChatModel` that sends each request to
the healthy replica with the fewest requests in flight (ties go round-robin). A replica that
fails (an :class:`~toolpath.errors.EndpointError` after its own retries, or a connection
error) is marked down for a cool-off and the request is retried on another replica, so an
eval loses no episode when a server dies. After its cool-off a replica gets requests again
(the next one is its trial); :meth:`ReplicaPool.probe` checks the down ones at once, and a
request that finds every replica down probes them before giving up with ``EndpointError``.

A streamed request moves to another replica only while nothing has been yielded yet.

:func:`load_replicas` builds a pool over OpenAI-compatible URLs
(``toolpath eval ... --endpoints URL1,URL2``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Unpack

from toolpath.errors import ConfigError, EndpointError
from toolpath.llm.base import (
    ChatModel,
    ChatModelBase,
    Completion,
    GenerateOptions,
    Message,
    StreamEvent,
    as_stream,
)

_FAILOVER = (EndpointError, ConnectionError, TimeoutError)
"""Errors that say the replica, not the request, is at fault: try another replica."""


@dataclass
class _Replica:
    model: ChatModel
    label: str
    in_flight: int = 0
    requests: int = 0
    ok: int = 0
    failures: int = 0
    streak: int = 0
    """Consecutive failures; ``max_failures`` of them mark the replica down."""
    down: bool = False
    retry_at: float = 0.0
    """When down: the ``time.monotonic()`` after which one trial request may go to it."""
    last_error: str | None = None

    def available(self, now: float) -> bool:
        """Up, or down with its cool-off over and no trial request in flight."""
        return not self.down or (now >= self.retry_at and self.in_flight == 0)

    def revive(self) -> None:
        self.down, self.streak, self.retry_at = False, 0, 0.0


def _label(model: ChatModel) -> str:
    return str(getattr(model, "base_url", None) or getattr(model, "name", None) or model)


class ReplicaPool(ChatModelBase):
    """A ChatModel over ``replicas`` (ChatModels serving the same model).

    ``max_failures`` consecutive failures mark a replica down for ``cooldown_s`` seconds.
    All replicas must share a ``tool_mode``; the pool's ``name`` is theirs when they agree.
    """

    logprobs = True  # every replica is an OpenAI-compatible server

    def __init__(
        self,
        replicas: Sequence[ChatModel],
        *,
        cooldown_s: float = 5.0,
        max_failures: int = 1,
        probe_timeout_s: float = 2.0,
        name: str | None = None,
    ) -> None:
        models = list(replicas)
        if not models:
            raise ConfigError("a ReplicaPool needs at least one replica")
        if cooldown_s < 0 or max_failures < 1 or probe_timeout_s <= 0:
            raise ConfigError("cooldown_s must be >= 0, max_failures >= 1 and probe_timeout_s > 0")
        modes = {m.tool_mode for m in models}
        if len(modes) > 1:
            raise ConfigError(f"replicas must share one tool_mode, not {sorted(modes)}")
        names = {m.name for m in models}
        self.name = name or (models[0].name if len(names) == 1 else "replicas")
        self.tool_mode = models[0].tool_mode
        self.cooldown_s, self.max_failures = cooldown_s, max_failures
        self.probe_timeout_s = probe_timeout_s
        labels = [_label(m) for m in models]
        if len(set(labels)) != len(labels):
            labels = [f"{label}#{i}" for i, label in enumerate(labels)]
        self._replicas = [_Replica(m, label) for m, label in zip(models, labels, strict=True)]
        self._lock = threading.Lock()
        self._rr = 0

    @property
    def replicas(self) -> list[ChatModel]:
        return [r.model for r in self._replicas]

    # ----------------------------------------------------------------- choosing and health

    def _acquire(self, tried: set[int]) -> int | None:
        """Take a slot on the best replica not in ``tried``: fewest in flight, ties
        round-robin. ``None`` when none is up."""
        with self._lock:
            now = time.monotonic()
            n = len(self._replicas)
            best: int | None = None
            for k in range(n):
                i = (self._rr + k) % n
                r = self._replicas[i]
                if i in tried or not r.available(now):
                    continue
                if best is None or r.in_flight < self._replicas[best].in_flight:
                    best = i
            if best is not None:
                r = self._replicas[best]
                r.in_flight += 1
                r.requests += 1
                self._rr = (best + 1) % n
            return best

    def _release(self, i: int, *, ok: bool = False, error: BaseException | None = None) -> None:
        """Give back a slot: ``ok`` answered, ``error`` failed over, neither (a rejected
        request, a cancel) says nothing about the replica's health."""
        with self._lock:
            r = self._replicas[i]
            r.in_flight -= 1
            if ok:
                r.ok += 1
                r.revive()
            elif error is not None:
                r.failures += 1
                r.streak += 1
                r.last_error = f"{type(error).__name__}: {error}"
                if r.streak >= self.max_failures:
                    r.down, r.retry_at = True, time.monotonic() + self.cooldown_s

    def _all_down(self, tried: set[int]) -> EndpointError:
        with self._lock:
            parts = [
                f"{r.label} ({r.last_error or 'down'})"
                for i, r in enumerate(self._replicas)
                if i in tried or r.down
            ]
        return EndpointError(
            f"all {len(self._replicas)} replicas failed or are down: {'; '.join(parts)}; "
            "check that the servers are running"
        )

    def _check(self, r: _Replica) -> bool:
        """Whether a replica answers: ``GET {base_url}/models`` for HTTP replicas; a
        replica without a URL cannot be checked cheaply and counts as answering."""
        base_url = getattr(r.model, "base_url", None)
        if not base_url:
            return True
        try:
            url = str(base_url).rstrip("/") + "/models"
            with urllib.request.urlopen(url, timeout=self.probe_timeout_s) as resp:
                json.load(resp)
            return True
        except (OSError, ValueError):
            return False

    def probe(self) -> dict[str, bool]:
        """Check every replica that is down now; bring back those that answer.

        Returns ``{label: healthy}`` for all replicas.
        """
        with self._lock:
            down = [r for r in self._replicas if r.down]
        for r in down:
            if self._check(r):
                with self._lock:
                    r.revive()
        with self._lock:
            return {r.label: not r.down for r in self._replicas}

    def _revive(self, tried: set[int]) -> bool:
        """On demand: probe the down replicas not yet tried by this request."""
        with self._lock:
            candidates = [r for i, r in enumerate(self._replicas) if i not in tried and r.down]
        revived = False
        for r in candidates:
            if self._check(r):
                with self._lock:
                    r.revive()
                revived = True
        return revived

    def _next(self, tried: set[int]) -> int:
        i = self._acquire(tried)
        if i is None and self._revive(tried):
            i = self._acquire(tried)
        if i is None:
            raise self._all_down(tried)
        return i

    async def _anext(self, tried: set[int]) -> int:
        i = self._acquire(tried)
        if i is None and await asyncio.to_thread(self._revive, tried):
            i = self._acquire(tried)
        if i is None:
            raise self._all_down(tried)
        return i

    def stats(self) -> list[dict[str, Any]]:
        """Per replica: ``replica`` (its URL or name), ``requests``, ``ok``, ``failures``,
        ``in_flight``, ``healthy`` and ``last_error``."""
        with self._lock:
            return [
                {
                    "replica": r.label,
                    "requests": r.requests,
                    "ok": r.ok,
                    "failures": r.failures,
                    "in_flight": r.in_flight,
                    "healthy": not r.down,
                    "last_error": r.last_error,
                }
                for r in self._replicas
            ]

    # ----------------------------------------------------------------- the ChatModel calls

    def complete(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Completion:
        """One completion from the best replica, moved to another when that one fails."""
        tried: set[int] = set()
        while True:
            i = self._next(tried)
            with _Try(self, i):
                return self._replicas[i].model.complete(messages, **options)
            tried.add(i)

    async def acomplete(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Completion:
        """Async :meth:`complete`."""
        tried: set[int] = set()
        while True:
            i = await self._anext(tried)
            with _Try(self, i):
                return await self._replicas[i].model.acomplete(messages, **options)
            tried.add(i)

    def stream(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> Iterator[StreamEvent]:
        """Stream from the best replica; moved to another only before the first event."""
        tried: set[int] = set()
        while True:
            i = self._next(tried)
            with _Try(self, i) as attempt:
                for event in self._replicas[i].model.stream(messages, **options):
                    attempt.started = True
                    yield event
                return
            tried.add(i)

    async def astream(
        self, messages: Sequence[Message], **options: Unpack[GenerateOptions]
    ) -> AsyncIterator[StreamEvent]:
        """Async :meth:`stream`, with the same fail-over rule."""
        tried: set[int] = set()
        while True:
            i = await self._anext(tried)
            with _Try(self, i) as attempt:
                async for event in _astream(self._replicas[i].model, messages, options):
                    attempt.started = True
                    yield event
                return
            tried.add(i)

    def close(self) -> None:
        """Close every replica."""
        for r in self._replicas:
            r.model.close()

    async def aclose(self) -> None:
        """Close every replica from inside the event loop."""
        for r in self._replicas:
            aclose = getattr(r.model, "aclose", None)
            if aclose is not None:
                await aclose()
            else:
                r.model.close()

    def __repr__(self) -> str:
        return f"ReplicaPool({[r.label for r in self._replicas]!r})"


class _Try:
    """One try of a request on replica ``i`` of ``pool``; leaving the block gives back its slot.

    A normal end counts as an answer. A fail-over error counts against the replica and, when
    nothing was yielded yet (``started`` is false), is swallowed so that the caller moves on
    to another replica. Any other error (the request's fault, or a cancel) says nothing
    about the replica's health and propagates.
    """

    def __init__(self, pool: ReplicaPool, i: int) -> None:
        self.pool, self.i, self.started = pool, i, False

    def __enter__(self) -> _Try:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            self.pool._release(self.i, ok=True)
            return False
        if isinstance(exc, _FAILOVER):
            self.pool._release(self.i, error=exc)
            return not self.started
        self.pool._release(self.i)
        return False


async def _astream(
    model: ChatModel, messages: Sequence[Message], options: GenerateOptions
) -> AsyncIterator[StreamEvent]:
    """A model's async stream; a bare ChatModel's async completion comes in one piece."""
    if isinstance(model, ChatModelBase):
        async for event in model.astream(messages, **options):
            yield event
    else:
        for event in as_stream(await model.acomplete(messages, **options)):
            yield event


def parse_endpoints(endpoints: str | Sequence[str]) -> list[str]:
    """``"URL1,URL2"`` (or a list of URLs, each possibly comma-separated) as a clean list."""
    items = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    urls = [u.strip() for item in items for u in item.split(",") if u.strip()]
    if not urls:
        raise ConfigError("no endpoints given; pass URLs like http://127.0.0.1:8000/v1")
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise ConfigError(
            f"endpoints must be http(s) URLs of OpenAI-compatible servers, not {bad[0]!r}; "
            "e.g. http://127.0.0.1:8000/v1 (add #MODEL to name the model)"
        )
    return urls


def load_replicas(
    urls: str | Sequence[str],
    model: str | None = None,
    *,
    max_retries: int = 1,
    cooldown_s: float = 5.0,
    max_failures: int = 1,
    **options: Any,
) -> ReplicaPool:
    """A :class:`ReplicaPool` over OpenAI-compatible servers at ``urls``.

    ``urls`` is a list or a comma-separated string; ``URL#MODEL`` names a URL's model.
    ``model`` names the model for the others; without it, the first server that answers
    ``/models`` names it. Each replica retries ``max_retries`` times itself (fewer than a
    lone endpoint's default, since the pool moves a failed request to another replica);
    ``options`` go to every :class:`~toolpath.llm.openai_compat.OpenAICompatModel`.
    """
    from toolpath.llm.openai_compat import OpenAICompatModel
    from toolpath.llm.specs import first_served_model

    pairs = [url.partition("#")[::2] for url in parse_endpoints(urls)]
    if model is None and any(not name for _, name in pairs):
        errors = []
        for url, _ in pairs:
            try:
                model = first_served_model(url, timeout=5.0)
                break
            except EndpointError as exc:
                errors.append(str(exc))
        else:
            raise EndpointError("none of the endpoints listed its models: " + " | ".join(errors))
    try:
        replicas: list[ChatModel] = [
            OpenAICompatModel(name or str(model), base_url=url, max_retries=max_retries, **options)
            for url, name in pairs
        ]
    except TypeError as exc:
        raise ConfigError(f"bad option for an OpenAI-compatible replica: {exc}") from exc
    return ReplicaPool(replicas, cooldown_s=cooldown_s, max_failures=max_failures)
