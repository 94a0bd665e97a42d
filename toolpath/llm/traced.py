"""One ``chat MODEL`` span per model call, for every backend (see :mod:`toolpath.tracing`).

:class:`~toolpath.llm.base.ChatModelBase` wraps the ``complete``, ``acomplete``, ``stream``
and ``astream`` a backend defines with these. When tracing is off a wrapper costs one check.
A call made while another model call is open (a backend delegating to another, or the default
``acomplete`` running ``complete`` on a thread) opens no second span.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import Any

from toolpath import tracing

_inside: ContextVar[bool] = ContextVar("toolpath_model_call", default=False)


def _open(model: Any, messages: Any, options: dict[str, Any]) -> Any:
    name = str(getattr(model, "name", "model"))
    provider = str(getattr(model, "provider", "") or type(model).__name__)
    return tracing.start_model_span(name, provider, messages, options)


def _complete(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def complete(self: Any, messages: Any, **options: Any) -> Any:
        if tracing.active() is None or _inside.get():
            return fn(self, messages, **options)
        span, token = _open(self, messages, options), _inside.set(True)
        try:
            completion = fn(self, messages, **options)
        except BaseException as exc:
            tracing.end_model_span(span, error=exc)
            raise
        finally:
            _inside.reset(token)
        tracing.end_model_span(span, completion)
        return completion

    return complete


def _acomplete(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def acomplete(self: Any, messages: Any, **options: Any) -> Any:
        if tracing.active() is None or _inside.get():
            return await fn(self, messages, **options)
        span, token = _open(self, messages, options), _inside.set(True)
        try:
            completion = await fn(self, messages, **options)
        except BaseException as exc:
            tracing.end_model_span(span, error=exc)
            raise
        finally:
            _inside.reset(token)
        tracing.end_model_span(span, completion)
        return completion

    return acomplete


def _stream(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def stream(self: Any, messages: Any, **options: Any) -> Any:
        if tracing.active() is None or _inside.get():
            return fn(self, messages, **options)
        return _events(self, fn, messages, options)

    return stream


def _events(
    model: Any, fn: Callable[..., Any], messages: Any, options: dict[str, Any]
) -> Iterator[Any]:
    span, completion = _open(model, messages, options), None
    try:
        token = _inside.set(True)
        try:
            events = iter(fn(model, messages, **options))
        finally:
            _inside.reset(token)
        while True:
            token = _inside.set(True)
            try:
                event = next(events, None)
            finally:
                _inside.reset(token)
            if event is None:
                break
            completion = event.completion or completion
            yield event
    except BaseException as exc:
        tracing.end_model_span(span, error=None if isinstance(exc, GeneratorExit) else exc)
        raise
    tracing.end_model_span(span, completion)


def _astream(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def astream(self: Any, messages: Any, **options: Any) -> Any:
        if tracing.active() is None or _inside.get():
            return fn(self, messages, **options)
        return _aevents(self, fn, messages, options)

    return astream


async def _aevents(
    model: Any, fn: Callable[..., Any], messages: Any, options: dict[str, Any]
) -> AsyncIterator[Any]:
    span, completion = _open(model, messages, options), None
    try:
        token = _inside.set(True)
        try:
            events = fn(model, messages, **options).__aiter__()
        finally:
            _inside.reset(token)
        while True:
            token = _inside.set(True)
            try:
                event = await anext(events, None)
            finally:
                _inside.reset(token)
            if event is None:
                break
            completion = event.completion or completion
            yield event
    except BaseException as exc:
        tracing.end_model_span(span, error=None if isinstance(exc, GeneratorExit) else exc)
        raise
    tracing.end_model_span(span, completion)


WRAPPERS = {"complete": _complete, "acomplete": _acomplete, "stream": _stream, "astream": _astream}


def instrument(cls: type) -> None:
    """Wrap the model calls ``cls`` itself defines (once)."""
    for name, wrap in WRAPPERS.items():
        fn = cls.__dict__.get(name)
        if callable(fn) and not getattr(fn, "_toolpath_traced", False):
            wrapped = wrap(fn)
            wrapped._toolpath_traced = True  # type: ignore[attr-defined]
            setattr(cls, name, wrapped)
