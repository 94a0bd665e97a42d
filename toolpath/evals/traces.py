"""Every eval run traced into its folder: ``trace.jsonl``, drawn as ``trace.html``.

:func:`~toolpath.evals.harness.run_eval` records a trace by default when OpenTelemetry is
installed (extra ``trace``) and no tracing is on already (then the user's own setup gets the
spans instead). Each episode is one trace, rooted in an ``episode ID`` span.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from toolpath import tracing
from toolpath.tracing.viewer import TRACE_FILE

__all__ = ["TRACE_FILE", "VIEW_FILE", "configure", "traced_run", "write_view"]

log = logging.getLogger(__name__)

VIEW_FILE = "trace.html"
_defaults = {"enabled": True, "content": False}


def configure(*, enabled: bool = True, content: bool = False) -> None:
    """Whether eval runs trace into their folders by default, and with content (the CLI's
    ``--trace-to none`` and ``--trace-content``)."""
    _defaults.update(enabled=enabled, content=content)


@contextmanager
def traced_run(out_dir: Path, enabled: bool) -> Iterator[None]:
    """Trace the block into ``out_dir/trace.jsonl`` (appended to, so resumed runs add to it),
    then write ``out_dir/trace.html``."""
    if not (enabled and _defaults["enabled"]) or tracing.active() is not None:
        yield
        return
    try:
        tracing.enable(out_dir / TRACE_FILE, content=_defaults["content"])
    except ImportError:
        log.info("no trace for this run: %s", tracing.INSTALL_HINT)
        yield
        return
    try:
        yield
    finally:
        tracing.disable()
        write_view(out_dir)


def write_view(out_dir: Path) -> Path | None:
    """Draw ``out_dir/trace.jsonl`` as ``out_dir/trace.html`` (``None`` when there is none)."""
    source = out_dir / TRACE_FILE
    if not source.exists():
        return None
    from toolpath.tracing.viewer import write_viewer

    try:
        return write_viewer(source, out_dir / VIEW_FILE)
    except (OSError, ValueError) as exc:
        log.warning("could not draw the trace: %s", exc)
        return None
