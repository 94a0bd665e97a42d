"""How ``toolpath chat`` shows one turn: streamed answer text, tool panels, code and its output.

:class:`TurnView` turns the agent's stream (tokens and node updates) into rich output;
:func:`streamed_answer` reads the answer out of a partial ``{"final_answer": "..."}`` reply as
it streams, and :func:`tool_result` strips the agent-facing wording from a tool observation.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.text import Text

from toolpath.errors import ToolpathError

_ANSWER_START = re.compile(r'\s*\{\s*"final_answer"\s*:\s*"')
_STRING_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.DOTALL)


def streamed_answer(raw: str) -> str:
    """The decoded part of a ``{"final_answer": "..."}`` reply written so far ("" for any
    other reply), so a JSON-mode answer can be shown as it streams, without the JSON."""
    start = _ANSWER_START.match(raw)
    if not start:
        return ""
    body = _STRING_BODY.match(raw, start.end())
    text = body.group(0) if body else ""
    for cut in range(len(text), max(len(text) - 12, -1), -1):  # an escape may be unfinished
        try:
            decoded = json.loads(f'"{text[:cut]}"', strict=False)
        except ValueError:
            continue
        return decoded[:-1] if decoded and "\ud800" <= decoded[-1] <= "\udbff" else decoded
    return ""


def tool_result(name: str, content: str) -> str:
    """A tool message without the agent's instructions around the result or error."""
    from toolpath.agents.toolcall import OBSERVATION, TOOL_ERROR

    for template, key in ((OBSERVATION, "{result}"), (TOOL_ERROR, "{error}")):
        head, _, tail = template.partition(key)
        head = head.format(name=name)
        if content.startswith(head):
            body = content[len(head) :]
            return body.split(tail, 1)[0] if tail else body
    return content


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, ToolpathError) else f"{type(exc).__name__}: {text}"


class TurnView:
    """Renders one turn as its events arrive: answer tokens, tool panels, code panels."""

    def __init__(self, console: Console, *, math: bool, json_mode: bool) -> None:
        self.console, self.math, self.json_mode = console, math, json_mode
        self.raw, self.shown = "", 0
        self.node: str | None = None
        self.midline = self.coding = self.answer_shown = False
        self.calls: dict[str, dict[str, Any]] = {}
        self.trace: list[dict[str, Any]] = []

    def write(self, text: str) -> None:
        if text:
            self.console.out(text, end="", highlight=False)
            self.midline = not text.endswith("\n")

    def end_line(self) -> None:
        if self.midline:
            self.console.out("")
            self.midline = False

    def token(self, node: str, delta: str) -> None:
        """Show a streamed piece: the answer text (not the JSON around it), or math prose
        up to a code fence (the code then appears highlighted once it is complete)."""
        if self.math and node != self.node:
            self.end_line()
            self.console.print(Rule(node, align="left", style="cyan"))
            self.node, self.raw, self.shown, self.coding = node, "", 0, False
        self.raw += delta
        fenced = self.math and "```" in self.raw
        if self.math:
            text = self.raw.split("```", 1)[0] if fenced else self.raw.rstrip("`")
        else:
            text = streamed_answer(self.raw) if self.json_mode else self.raw
        if not self.coding:
            self.write(text[self.shown :])
            self.shown = max(self.shown, len(text))
            if fenced:
                self.coding = True
                self._block(Text("writing code…", style="dim"))

    def update(self, chunk: dict[str, Any]) -> None:
        """Show what a finished node did: tool panels, code and interpreter output."""
        for node, delta in chunk.items():
            if not isinstance(delta, dict):
                continue
            records = delta.get("trace", [])
            self.trace += records
            if node == "model":
                self.answer_shown = self.shown > 0
                for rec in records:
                    if "error" in rec:
                        self._block(Text(f"reply not usable: {rec['error']}", style="dim red"))
                for msg in delta.get("messages", []):
                    self.calls.update({c["id"]: c for c in msg.get("tool_calls") or []})
            elif node == "tools":
                oks = [r.get("ok", True) for r in records if r.get("tool")]
                for i, msg in enumerate(delta.get("messages", [])):
                    call = self.calls.pop(msg.get("tool_call_id", ""), None)
                    self._block(
                        _tool_panel(
                            call, msg.get("content") or "", oks[i] if i < len(oks) else True
                        )
                    )
            elif node == "run_code":
                ok = not delta.get("failed")
                output = (delta.get("output") or "").rstrip() or "(no output)"
                self._block(_panel(Text(output), "interpreter output", "green" if ok else "red"))
            if delta.get("code") and (node == "write_code" or delta.get("code_changed")):
                code = Syntax(delta["code"], "python", background_color="default")
                self._block(_panel(code, "code", "cyan"))
            self.raw, self.shown, self.node, self.coding = "", 0, None, False

    def _block(self, renderable: Any) -> None:
        self.end_line()
        self.console.print(renderable)


def _tool_panel(call: dict[str, Any] | None, content: str, ok: bool) -> Panel:
    """One tool call: its name and JSON arguments, and the result (or error) beneath."""
    fn = (call or {}).get("function") or {"name": "?", "arguments": "{}"}
    try:
        args = json.dumps(json.loads(fn["arguments"]), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        args = str(fn["arguments"])
    result = Text(
        ("result: " if ok else "error: ") + tool_result(fn["name"], content),
        style="" if ok else "red",
    )
    body = Group(Syntax(args, "json", background_color="default"), Rule(style="dim"), result)
    return _panel(body, f"tool · {fn['name']}", "green" if ok else "red")


def _panel(body: Any, title: str, style: str) -> Panel:
    return Panel(body, title=title, title_align="left", border_style=style)
