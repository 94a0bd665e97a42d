"""A span exporter that appends one JSON object per finished span to a file.

Each line: ``name``, ``kind`` (``episode``, ``agent``, ``node``, ``model``, ``tool`` or
``other``), ``trace_id`` and ``span_id`` (hex), ``parent_id``, ``start`` and
``end`` (epoch seconds), ``status`` (``ok``, ``error`` or ``unset``), ``error``, ``attributes``
and ``events``. ``toolpath trace view`` reads it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

KINDS = {"invoke_agent": "agent", "chat": "model", "execute_tool": "tool"}


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One span as the JSON object a line holds."""
    attributes = dict(span.attributes or {})
    operation = attributes.get("gen_ai.operation.name")
    kind = KINDS.get(str(operation), "other")
    if "toolpath.node" in attributes or "toolpath.episode" in attributes:
        kind = "node" if "toolpath.node" in attributes else "episode"
    context, parent = span.get_span_context(), span.parent
    code = span.status.status_code
    return {
        "name": span.name,
        "kind": kind,
        "trace_id": f"{context.trace_id:032x}" if context else None,
        "span_id": f"{context.span_id:016x}" if context else None,
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "start": (span.start_time or 0) / 1e9,
        "end": (span.end_time or 0) / 1e9,
        "status": {StatusCode.OK: "ok", StatusCode.ERROR: "error"}.get(code, "unset"),
        "error": span.status.description if code == StatusCode.ERROR else None,
        "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()},
        "events": [
            {"name": e.name, "time": e.timestamp / 1e9, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
    }


class JsonlExporter(SpanExporter):
    """Appends finished spans to ``path`` (its folder is made), one JSON object a line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(s), default=str) + "\n" for s in spans)
        with self._lock:
            if self._file.closed:
                return SpanExportResult.FAILURE
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
