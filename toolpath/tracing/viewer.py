"""A self-contained offline HTML viewer for toolpath's span JSONL traces.

:func:`write_viewer` turns a ``trace.jsonl`` (or a run folder holding one) into a single
HTML page: a summary of the run, one collapsible Gantt-like timeline per trace (episode)
and a details panel with a span's attributes, timing, events and chat messages. The page
needs no network: its CSS and JS live in ``viewer.html`` beside this module, and the spans
are embedded as JSON in a ``<script type="application/json" id="spans">`` element.

Each line of the JSONL is one span, as toolpath's JSONL exporter writes it::

    {"name": "chat qwen", "kind": "model", "trace_id": "...", "span_id": "...",
     "parent_id": "..." | null, "start": 1765000000.1, "end": 1765000000.9,
     "status": "ok" | "error" | "unset", "error": null, "attributes": {...}, "events": [...]}

Lines that are not a JSON object are skipped and counted (a warning is logged, and the
page says how many).
"""

from __future__ import annotations

import html
import json
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["TRACE_FILE", "load_spans", "render_html", "write_viewer"]

TRACE_FILE = "trace.jsonl"
"""The span file a run folder holds."""

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"__TOOLPATH_(TITLE|SKIPPED|SPANS)__")


def _trace_file(source: str | Path) -> Path:
    """The JSONL file ``source`` names: itself, or ``trace.jsonl`` inside a folder."""
    path = Path(source)
    if path.is_dir():
        inner = path / TRACE_FILE
        if not inner.is_file():
            raise FileNotFoundError(f"no {TRACE_FILE} in the run folder {path}")
        return inner
    if not path.is_file():
        raise FileNotFoundError(
            f"no trace file at {path} (expected a span JSONL file or a run folder "
            f"containing {TRACE_FILE})"
        )
    return path


def _read(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The spans in ``path`` and how many non-blank lines were not a JSON object."""
    spans: list[dict[str, Any]] = []
    skipped = 0
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                span = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            if isinstance(span, dict):
                spans.append(span)
            else:
                skipped += 1
    if skipped:
        log.warning("%s: skipped %d line(s) that are not JSON span objects", path, skipped)
    return spans, skipped


def load_spans(source: str | Path) -> list[dict[str, Any]]:
    """The spans of a span JSONL file, or of the ``trace.jsonl`` in a run folder.

    Lines that are not JSON objects are skipped with a logged warning giving their count.
    Raises :class:`FileNotFoundError` when there is no such file.
    """
    return _read(_trace_file(source))[0]


def _script_json(value: object) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element.

    ``</`` becomes ``<\\/`` so no string can close the element, and ``<!--`` becomes
    ``\\u003c!--`` so none can switch the HTML parser into its escaped-script states.
    Both are valid JSON string escapes, so ``JSON.parse`` reads the original text back.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("</", "<\\/").replace("<!--", "\\u003c!--")


def _template() -> str:
    package = __package__ or "toolpath.tracing"
    return resources.files(package).joinpath("viewer.html").read_text(encoding="utf-8")


def render_html(spans: list[dict[str, Any]], title: str, *, skipped: int = 0) -> str:
    """The viewer page for ``spans``, titled ``title``.

    ``skipped`` is how many input lines were dropped as unreadable; the page mentions it.
    """
    values = {
        "TITLE": html.escape(title),
        "SKIPPED": str(int(skipped)),
        "SPANS": _script_json(spans),
    }
    # one pass, so text substituted in is never scanned for placeholders again
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], _template())


def write_viewer(source: str | Path, out: str | Path | None = None) -> Path:
    """Write the viewer page for a span JSONL file (or run folder) and return its path.

    ``out`` defaults to the JSONL's path with an ``.html`` suffix (``trace.jsonl`` ->
    ``trace.html``), beside it.
    """
    path = _trace_file(source)
    spans, skipped = _read(path)
    target = Path(out) if out is not None else path.with_suffix(".html")
    title = f"Trace viewer — {path.parent.name}/{path.name}" if path.parent.name else path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(spans, title, skipped=skipped), encoding="utf-8")
    return target
