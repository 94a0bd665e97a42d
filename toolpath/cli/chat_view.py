"""How ``toolpath chat`` shows one turn of each agent as its stream arrives.

Every view takes the run's token events (``token(node, delta)``) and node updates
(``update(chunk)``) and prints with rich; each keeps the run's ``trace``.

- :class:`TurnView`: the tool agent (streamed answer text, a panel per tool call) and DotaMath
  (its prose, the code, the interpreter's output);
- :class:`RoleView`: α-UMi (each role's text under its name, the retrieved tools, tool panels);
- :class:`OneStepView`: TPTU's one-step agent (the plan, each step's result, the answer);
- :class:`CostaView`: CoSTA* (the subtask tree, the chosen tool path, each step's verdict,
  the re-plans); :func:`inline_image` shows a picture in kitty or iTerm2.

The web agent's per-action panels are in :mod:`toolpath.cli.chat_web`.
:func:`streamed_answer` reads the answer out of a partial ``{"final_answer": "..."}`` reply as
it streams, and :func:`tool_result` strips the agent-facing wording from a tool observation.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.text import Text
from rich.tree import Tree

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


class View:
    """What every view shares: the console, whether a line is open, and the run's trace."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.midline = False
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
        """A streamed piece of a model reply (shown by the views that stream text)."""

    def update(self, chunk: Mapping[str, Any]) -> None:
        """A node finished: keep its trace records and show what it did."""
        for node, delta in chunk.items():
            if isinstance(delta, dict):
                self.trace += delta.get("trace", [])
                self.node(node, delta)

    def node(self, node: str, delta: dict[str, Any]) -> None:
        """Show one node's update."""

    def _block(self, renderable: Any) -> None:
        self.end_line()
        self.console.print(renderable)


class TurnView(View):
    """Renders one turn as its events arrive: answer tokens, tool panels, code panels."""

    def __init__(self, console: Console, *, math: bool, json_mode: bool) -> None:
        super().__init__(console)
        self.math, self.json_mode = math, json_mode
        self.raw, self.shown = "", 0
        self.node_name: str | None = None
        self.coding = self.answer_shown = False
        self.calls: dict[str, dict[str, Any]] = {}

    def token(self, node: str, delta: str) -> None:
        """Show a streamed piece: the answer text (not the JSON around it), or math prose
        up to a code fence (the code then appears highlighted once it is complete)."""
        if self.math and node != self.node_name:
            self.end_line()
            self.console.print(Rule(node, align="left", style="cyan"))
            self.node_name, self.raw, self.shown, self.coding = node, "", 0, False
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

    def node(self, node: str, delta: dict[str, Any]) -> None:
        """Show what a finished node did: tool panels, code and interpreter output."""
        records = delta.get("trace", [])
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
                    _tool_panel(call, msg.get("content") or "", oks[i] if i < len(oks) else True)
                )
        elif node == "run_code":
            ok = not delta.get("failed")
            output = (delta.get("output") or "").rstrip() or "(no output)"
            self._block(_panel(Text(output), "interpreter output", "green" if ok else "red"))
        if delta.get("code") and (node == "write_code" or delta.get("code_changed")):
            code = Syntax(delta["code"], "python", background_color="default")
            self._block(_panel(code, "code", "cyan"))
        self.raw, self.shown, self.node_name, self.coding = "", 0, None, False


class RoleView(View):
    """α-UMi: each role's streamed text under a rule with its name, the tools retrieved for
    the task, and a panel per tool call (the caller's action and what came back)."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.role: str | None = None
        self.call: dict[str, Any] | None = None
        self.answer_shown = False

    def token(self, node: str, delta: str) -> None:
        if node != self.role:
            self.end_line()
            self.console.print(Rule(node, align="left", style="cyan"))
            self.role = node
        self.answer_shown = self.answer_shown or node == "summarizer"
        self.write(delta)

    def node(self, node: str, delta: dict[str, Any]) -> None:
        if node == "retrieve":
            tools = ", ".join(delta.get("tools") or []) or "none"
            self._block(Text(f"tools for this task: {tools}", style="dim"))
        elif node == "caller":
            self.call = delta.get("call")
        elif node == "tool":
            call = self.call or {}
            ok = all(r.get("ok", True) for r in delta.get("trace", []))
            said = "\n".join(t.get("value") or "" for t in delta.get("conversation", []))
            args = call.get("arguments")
            shown = {"name": call.get("name") or "?", "arguments": _json(args)}
            self._block(_tool_panel({"function": shown}, said.removeprefix("Error: "), ok))
            self.call = None
        elif node == "planner" and delta.get("status") in ("gave_up", "step_limit", "failed"):
            self._block(Text(f"planner: {delta['status'].replace('_', ' ')}", style="yellow"))
        self.role = None  # the next reply starts under its role's name again


class OneStepView(View):
    """TPTU's one-step agent: the whole plan, each step's result, then the streamed answer."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.plan: list[dict[str, Any]] = []
        self.answer_shown = False

    def token(self, node: str, delta: str) -> None:
        if node == "answer":  # the plan streams as constrained JSON: shown once it is whole
            self.answer_shown = True
            self.write(delta)
        elif node == "plan" and not self.midline:
            self.write("planning the tool calls…")

    def node(self, node: str, delta: dict[str, Any]) -> None:
        if node == "plan":
            self.plan = list(delta.get("plan") or [])
            if self.plan:
                lines = [
                    f"{i}. {s['name']}({_json(s.get('arguments'))})"
                    for i, s in enumerate(self.plan, 1)
                ]
                again = f"re-plan {delta['replans']}: plan" if delta.get("replans") else "plan"
                self._block(_panel(Text("\n".join(lines)), again, "cyan"))
            if delta.get("error"):
                self._block(Text(f"{delta['error']}; planning again", style="yellow"))
        elif node == "run":
            results = list(delta.get("results") or [])
            for i, step in enumerate(self.plan, 1):
                if i <= len(results):
                    body, ok = f"result: {results[i - 1]}", True
                elif i == len(results) + 1 and delta.get("error"):
                    body, ok = f"error: {delta['error']}", False
                else:
                    break
                title = f"step {i} · {step['name']}"
                text = Text(f"{_json(step.get('arguments'))}\n{body}", style="" if ok else "red")
                self._block(_panel(text, title, "green" if ok else "red"))


class CostaView(View):
    """CoSTA*: the subtask tree, the tool path A* chose (again after each failed step), and
    every executed step with its verifier's verdict: ok or failed, quality and cost."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.done = 0  # steps executed and verified so far
        self.replans = 0
        self.types: dict[str, str] = {}

    def token(self, node: str, delta: str) -> None:
        if node == "build_tree" and not self.midline:  # JSON: shown once it is whole
            self.write("building the subtask tree…")

    def update(self, chunk: Mapping[str, Any]) -> None:
        for node, delta in chunk.items():  # CoSTA*'s updates carry the whole trace so far
            if isinstance(delta, dict):
                self.trace = list(delta.get("trace", self.trace))
                self.node(node, delta)

    def node(self, node: str, delta: dict[str, Any]) -> None:
        if node == "build_tree" and delta.get("tree"):
            self.types = {s["id"]: s["type"] for s in delta["tree"]}
            self._block(_panel(subtask_tree(delta["tree"]), "plan: subtask tree", "cyan"))
        elif node == "search":
            if delta.get("status") == "failed":
                self._block(Text(f"no tool path: {delta.get('reason')}", style="red"))
            elif delta.get("plan") is not None:
                title = f"re-plan {self.replans}: tool path" if self.replans else "tool path"
                body = tool_path(delta["plan"], self.types, self.done, delta.get("expanded"))
                self._block(_panel(body, title, "cyan"))
        elif node == "execute" and delta.get("attempts"):
            attempt = delta["attempts"][-1]
            self.done = len(delta.get("executed") or []) or self.done
            self.replans = delta.get("replans", self.replans)
            self._block(step_line(attempt))
            if delta.get("status") == "step_limit":
                self._block(Text(str(delta.get("reason") or "out of re-plans"), style="yellow"))
            elif not attempt["ok"]:
                self._block(Text(f"re-planning around {attempt['tool']}…", style="yellow"))


def subtask_tree(subtasks: Sequence[Mapping[str, Any]]) -> Tree:
    """The subtasks as a tree: each under its first parent (more parents are named)."""
    ids = {str(s["id"]) for s in subtasks}
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for s in subtasks:
        parents = [str(p) for p in s.get("parents") or [] if str(p) in ids]
        children.setdefault(parents[0] if parents else None, []).append(s)
    root = Tree(Text("request", style="dim"), guide_style="dim")

    def add(branch: Tree, s: Mapping[str, Any]) -> None:
        params = " ".join(f"{k}={_json(v)}" for k, v in (s.get("params") or {}).items())
        label = Text(f"{s['id']} ", style="bold").append(str(s["type"]), style="cyan")
        label.append(f" {params}" if params else "")
        parents = [str(p) for p in s.get("parents") or []]
        if len(parents) > 1:
            label.append(f" (after {', '.join(parents)})", style="dim")
        node = branch.add(label)
        for child in children.get(str(s["id"]), []):
            add(node, child)

    for s in children.get(None, []):
        add(root, s)
    return root


def tool_path(
    plan: Sequence[Any], types: Mapping[str, str], done: int, expanded: int | None
) -> Text:
    """The chosen path, one step a line (subtask, tool, estimated cost and quality), the
    steps already executed marked done."""
    text = Text()
    for i, step in enumerate(plan):
        sid, tool = getattr(step, "subtask_id", "?"), getattr(step, "tool", "?")
        text.append(f"{sid} {types.get(sid, '')} → ", style="dim" if i < done else "")
        text.append(tool, style="dim" if i < done else "bold")
        cost, quality = getattr(step, "cost", 0.0), getattr(step, "quality", 0.0)
        note = "done" if i < done else f"est. cost {cost:.4f} s, quality {quality:.2f}"
        text.append(f"  {note}\n", style="dim")
    if expanded is not None:
        text.append(f"A* expanded {expanded} nodes", style="dim")
    text.rstrip()
    return text if text else Text("(empty)")


def step_line(attempt: Mapping[str, Any]) -> Text:
    """One executed step and its verifier's verdict."""
    ok = bool(attempt.get("ok"))
    line = Text("✓ " if ok else "✗ ", style="green" if ok else "red")
    line.append(f"{attempt.get('subtask')} {attempt.get('type', '')} · {attempt.get('tool')} · ")
    line.append("ok" if ok else "failed", style="green" if ok else "red")
    line.append(
        f" · quality {float(attempt.get('quality') or 0):.2f}"
        f" · cost {float(attempt.get('cost') or 0):.4f} s"
    )
    if attempt.get("error"):
        line.append(f" · {one_line_text(str(attempt['error']))}", style="red")
    return line


def one_line_text(text: str, width: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def image_protocol(env: Mapping[str, str] | None = None) -> str | None:
    """The inline-image protocol this terminal speaks, from its environment: ``kitty``
    (TERM=xterm-kitty, or inside kitty), ``iterm`` (TERM_PROGRAM=iTerm.app or WezTerm), or
    ``None`` (no inline images)."""
    env = os.environ if env is None else env
    if env.get("TERM") == "xterm-kitty" or env.get("KITTY_WINDOW_ID"):
        return "kitty"
    if env.get("TERM_PROGRAM") in ("iTerm.app", "WezTerm"):
        return "iterm"
    return None


def inline_image(image: Any, protocol: str, *, width: int = 400) -> str:
    """The escape sequence that draws ``image`` (an RGB array) in the terminal, scaled down to
    at most ``width`` pixels wide, as a PNG: kitty's graphics protocol or iTerm2's."""
    from PIL import Image as PILImage

    picture = PILImage.fromarray(image)
    if picture.width > width:
        picture = picture.resize((width, max(1, picture.height * width // picture.width)))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    data = base64.standard_b64encode(buffer.getvalue()).decode("ascii")
    if protocol == "iterm":
        return f"\x1b]1337;File=inline=1;size={len(buffer.getvalue())}:{data}\x07\n"
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    out = []
    for i, chunk in enumerate(chunks):
        more = 1 if i < len(chunks) - 1 else 0
        head = f"a=T,f=100,m={more}" if i == 0 else f"m={more}"
        out.append(f"\x1b_G{head};{chunk}\x1b\\")
    return "".join(out) + "\n"


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


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
