"""The offline HTML trace viewer: reading span JSONL, the page it writes, and that page in a
real headless chromium (timelines, the details panel, messages, errors, lazy timelines)."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from toolpath.tracing.viewer import load_spans, render_html, write_viewer

T0 = 1765000000.0
TRACE_A, TRACE_B = "a" * 32, "b" * 32
MODEL = "qwen2.5-coder-0.5b"
INPUT = [
    {"role": "system", "parts": [{"type": "text", "content": "You are a calculator."}]},
    {"role": "user", "parts": [{"type": "text", "content": "What is 2+3?"}]},
]
OUTPUT = [
    {
        "role": "assistant",
        "parts": [{"type": "tool_call", "id": "c1", "name": "add", "arguments": {"a": 2, "b": 3}}],
        "finish_reason": "tool_call",
    }
]


def span(
    name: str,
    kind: str,
    trace: str,
    sid: str,
    parent: str | None,
    start: float,
    end: float,
    status: str = "ok",
    error: str | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "trace_id": trace,
        "span_id": sid.ljust(16, "0"),
        "parent_id": parent.ljust(16, "0") if parent else None,
        "start": T0 + start,
        "end": T0 + end,
        "status": status,
        "error": error,
        "attributes": attributes,
        "events": [],
    }


def chat(
    trace: str, sid: str, parent: str, start: float, end: float, tin: int, tout: int, **extra: Any
) -> dict[str, Any]:
    """A model span with its token counts."""
    return span(
        f"chat {MODEL}",
        "model",
        trace,
        sid,
        parent,
        start,
        end,
        **{
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": MODEL,
            "gen_ai.usage.input_tokens": tin,
            "gen_ai.usage.output_tokens": tout,
            **extra,
        },
    )


def episodes() -> list[dict[str, Any]]:
    """Two traces: a run that calls a tool and answers, and one whose tool call fails."""
    messages = {
        "gen_ai.input.messages": json.dumps(INPUT),
        "gen_ai.output.messages": json.dumps(OUTPUT),
    }
    return [
        span("invoke_agent react", "agent", TRACE_A, "a1", None, 0.0, 3.0),
        span("node model", "node", TRACE_A, "a2", "a1", 0.0, 1.2, **{"toolpath.node": "model"}),
        chat(TRACE_A, "a3", "a2", 0.05, 1.2, 1234, 56, **messages),
        span("node tools", "node", TRACE_A, "a4", "a1", 1.2, 1.4, **{"toolpath.node": "tools"}),
        span(
            "execute_tool add",
            "tool",
            TRACE_A,
            "a5",
            "a4",
            1.25,
            1.35,
            **{"gen_ai.tool.name": "add", "gen_ai.tool.call.id": "c1"},
        ),
        span("node model", "node", TRACE_A, "a6", "a1", 1.4, 3.0, **{"toolpath.node": "model"}),
        chat(TRACE_A, "a7", "a6", 1.45, 3.0, 1300, 7),
        span("invoke_agent react", "agent", TRACE_B, "b1", None, 10.0, 11.0, "error", "gave up"),
        span("node model", "node", TRACE_B, "b2", "b1", 10.0, 10.5),
        chat(TRACE_B, "b3", "b2", 10.0, 10.5, 200, 9),
        span("node tools", "node", TRACE_B, "b4", "b1", 10.5, 11.0),
        span(
            "execute_tool divide",
            "tool",
            TRACE_B,
            "b5",
            "b4",
            10.6,
            10.7,
            "error",
            "ZeroDivisionError: division by zero",
            **{"gen_ai.tool.name": "divide"},
        ),
    ]


def write_jsonl(path: Path, spans: list[dict[str, Any]], extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(s) for s in spans] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_spans_skips_lines_that_are_not_span_objects(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spans = episodes()
    bad = ("not json at all", '{"name": "truncated', "[1, 2, 3]", "", "   ")
    write_jsonl(tmp_path / "trace.jsonl", spans[:2], bad)
    with caplog.at_level(logging.WARNING, logger="toolpath.tracing.viewer"):
        loaded = load_spans(tmp_path / "trace.jsonl")
    assert loaded == spans[:2]
    assert "skipped 3 line(s)" in caplog.text  # blank lines are not counted
    assert load_spans(tmp_path) == spans[:2]  # a run folder: its trace.jsonl
    page = write_viewer(tmp_path).read_text(encoding="utf-8")
    assert 'data-skipped="3"' in page


def test_missing_sources_name_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no trace\.jsonl in the run folder"):
        load_spans(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        write_viewer(tmp_path / "nope.jsonl")


def test_write_viewer_paths(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "trace.jsonl", episodes())
    assert write_viewer(source) == tmp_path / "trace.html"
    assert write_viewer(tmp_path, tmp_path / "out" / "v.html") == tmp_path / "out" / "v.html"
    assert (tmp_path / "out" / "v.html").is_file()


def embedded(page: str) -> str:
    match = re.search(r'<script type="application/json" id="spans">(.*?)</script>', page, re.S)
    assert match
    return match.group(1)


def test_span_text_cannot_close_the_script_element() -> None:
    hostile = "</script><script>alert(1)</script><!--<script>"
    spans = [span(hostile, "tool", TRACE_A, "x1", None, 0.0, 1.0, note=f"</SCRIPT>{hostile}")]
    page = render_html(spans, "<b>title</b> & </script>")
    assert page.count("</script>") == 2  # the data element's and the code's own
    assert "<b>title</b>" not in page and "&lt;b&gt;title&lt;/b&gt; &amp;" in page
    data = embedded(page)
    assert "</" not in data and "<!--" not in data and "<\\/script>" in data
    assert json.loads(data) == spans  # the escapes are JSON escapes: the text reads back
    assert "__TOOLPATH_" not in page


# ---- the page in a real chromium ------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    from toolpath.errors import MissingDependencyError
    from toolpath.tools.web.browser import FLAGS, chromium_path

    try:
        executable = chromium_path()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=list(FLAGS))
        yield b
        b.close()


def open_page(browser: Any, path: Path) -> tuple[Any, list[str]]:
    """The page at ``path``, plus a list that gathers script errors and off-file requests."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"error: {exc}"))
    page.on(
        "request",
        lambda r: None if r.url.startswith(("file:", "data:")) else problems.append(r.url),
    )
    page.goto(path.as_uri())
    return page, problems


@pytest.mark.browser
def test_viewer_in_chromium(browser: Any, tmp_path: Path) -> None:
    spans = episodes()
    out = write_viewer(write_jsonl(tmp_path / "trace.jsonl", spans))
    page, problems = open_page(browser, out)

    summary = page.locator("#summary").inner_text()
    for label, value in [
        ("Traces", "2"),
        ("Spans", "12"),
        ("Model calls", "3"),
        ("Tool calls", "2"),
        ("Errors", "2"),
        ("Input tokens", "2,734"),
    ]:
        assert re.search(rf"{label}\s+{re.escape(value)}\b", summary, re.I), (label, summary)
    assert page.locator(".trace").count() == 2
    # one bar per span, of its kind, both traces open (only traces beyond the first 3 start closed)
    for kind in ("agent", "node", "model", "tool"):
        expected = [s["span_id"] for s in spans if s["kind"] == kind]
        bars = page.locator(f".span.span-{kind}")
        assert bars.count() == len(expected), kind
        assert sorted(bars.evaluate_all("els => els.map(e => e.dataset.spanId)")) == sorted(
            expected
        )
    assert page.locator(".span").count() == len(spans)
    # the model bar's label: tokens in/out and latency
    first_model = page.locator('.span-model[data-span-id="a300000000000000"]')
    assert "1,234 → 56 tok" in first_model.inner_text() and "1.15 s" in first_model.inner_text()

    # errors: the failed tool and the agent that gave up are red and say why
    errors = page.locator(".span.error")
    assert sorted(errors.evaluate_all("els => els.map(e => e.dataset.spanId)")) == [
        "b100000000000000",
        "b500000000000000",
    ]
    assert page.locator(".trace.has-error").count() == 1
    page.click('.span[data-span-id="b500000000000000"]')
    details = page.locator("#details")
    assert "ZeroDivisionError: division by zero" in details.locator(".errbox").inner_text()
    assert "divide" in details.inner_text()

    # the model span: its attributes, timing and messages
    first_model.click()
    assert "selected" in (first_model.get_attribute("class") or "")
    text = details.inner_text()
    for needle in ("gen_ai.request.model", MODEL, "gen_ai.usage.input_tokens", "1234", "1.15 s"):
        assert needle in text, needle
    messages = details.locator(".msg")
    assert messages.count() == 3
    assert [r.lower() for r in details.locator(".msg .role").all_inner_texts()][:2] == [
        "system",
        "user",
    ]
    assert "What is 2+3?" in messages.nth(1).inner_text()
    assistant = messages.nth(2).inner_text()
    assert "tool call: add (c1)" in assistant and '"a": 2' in assistant

    # a trace header collapses and reopens its timeline
    head = page.locator(".trace").nth(1).locator(".trace-head")
    head.click()
    assert not page.locator(".span-tool.error").is_visible()
    head.click()
    assert page.locator(".span-tool.error").is_visible()
    assert problems == []
    page.close()


@pytest.mark.browser
def test_many_traces_start_collapsed(browser: Any, tmp_path: Path) -> None:
    spans = []
    for n in range(40):
        trace = f"{n:032x}"
        spans += [
            span("invoke_agent react", "agent", trace, f"{n:04x}a", None, n, n + 1),
            span("node model", "node", trace, f"{n:04x}b", f"{n:04x}a", n, n + 1),
            chat(trace, f"{n:04x}c", f"{n:04x}b", n + 0.1, n + 0.9, 10, 2),
        ]
    page, problems = open_page(browser, write_viewer(write_jsonl(tmp_path / "t.jsonl", spans)))
    assert page.locator(".trace").count() == 40
    assert page.locator(".trace.open").count() == 3
    assert page.locator(".span-model").count() == 3  # closed timelines are not built yet
    page.locator(".trace").nth(20).locator(".trace-head").click()
    assert page.locator(".span-model").count() == 4
    page.fill("#q", f"{7:032x}")
    assert page.locator(".trace:visible").count() == 1
    assert problems == []
    page.close()


def record_runs(path: Path) -> list[dict[str, Any]]:
    """Trace two real tool-agent runs (the scripted model, which takes a little time per
    reply) into ``path``: one that computes, one whose tool call fails and is repaired."""
    from toolpath import tracing
    from toolpath.agents.react import tool_agent
    from toolpath.llm.scripted import ScriptedModel
    from toolpath.tools import calculator

    def slowly(reply: dict[str, Any]) -> Any:
        def answer(_messages: Any) -> str:
            time.sleep(0.12)
            return json.dumps(reply)

        return answer

    runs = [
        [
            {"tool": "calculator", "arguments": {"expression": "1234 * 5678"}},
            {"final_answer": "7006652"},
        ],
        [
            {"tool": "calculator", "arguments": {"expression": "1 / 0"}},
            {"tool": "calculator", "arguments": {"expression": "1 / 3"}},
            {"final_answer": "0.3333"},
        ],
    ]
    with tracing.tracing(path, content=True):
        for replies in runs:
            model = ScriptedModel([slowly(r) for r in replies], name="qwen2.5-coder-1.5b")
            tool_agent(model, [calculator]).invoke("What is the value?")
    return load_spans(path)


@pytest.mark.browser
def test_viewer_draws_a_recorded_run(browser: Any, tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    spans = record_runs(tmp_path / "trace.jsonl")
    models = [s for s in spans if s["kind"] == "model"]
    assert len(models) == 5 and len({s["trace_id"] for s in spans}) == 2
    page, problems = open_page(browser, write_viewer(tmp_path))
    bars = page.locator(".span-model")
    assert bars.count() == len(models)  # one bar per model call of the run
    assert sorted(bars.evaluate_all("els => els.map(e => e.dataset.spanId)")) == sorted(
        s["span_id"] for s in models
    )
    first = min(models, key=lambda s: s["start"])
    page.click(f'.span-model[data-span-id="{first["span_id"]}"]')
    details = page.locator("#details").inner_text()
    tokens = first["attributes"]["gen_ai.usage.input_tokens"]
    for needle in (
        "gen_ai.usage.input_tokens",
        str(tokens),
        "qwen2.5-coder-1.5b",
        "What is the value?",
    ):
        assert needle in details, needle
    assert page.locator(".span-tool.error").count() == 1  # the division by zero
    if target := os.environ.get("TOOLPATH_DOCS_SCREENSHOT"):
        page.screenshot(path=target)
    assert problems == []
    page.close()
