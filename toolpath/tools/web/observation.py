"""What a web agent sees of a MiniWoB page and the tools it acts with.

The observation is the instruction plus a compact element list built from the page's own
``core.getDOMInfo()``: one line per element that can be acted on or carries text, with its
ref (the number to act on), tag, id, classes, text and value::

    Instruction: Click on the "Ok" button.
    [4] button "No"
    [6] input_text value=""
    [7] button "Ok"

Layout-only containers (a ``div`` with no text of its own) are left out, and text that
``getDOMInfo`` splits into pseudo-elements is folded into its parent's text, so a simple
task reads in about 100-150 tokens. In a composed page, ``-- part N --`` lines mark where
each subtask's UI starts. The raw HTML of the task area is available on request.

The actions are :class:`~toolpath.tools.base.Tool` s bound to one page: ``click(ref)``,
``type(ref, text)``, ``press(key)``, ``select(ref, option)`` and ``done()``. Their ``ref``
arguments are limited to the refs of the current observation (an enum in the JSON
schema), which keeps a small model's constrained reply on the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from toolpath.tools.base import Tool

TEXT_INPUTS = frozenset(
    [
        "input_text",
        "input_password",
        "input_email",
        "input_number",
        "input_search",
        "input_tel",
        "input_url",
        "textarea",
    ]
)
"""Tags (``getDOMInfo`` style: ``input_<type>``) that take typed text."""

INTERACTIVE = TEXT_INPUTS | frozenset(
    [
        "input_checkbox",
        "input_radio",
        "input_button",
        "input_submit",
        "input_range",
        "input_date",
        "input_time",
        "input_color",
        "button",
        "select",
        "option",
        "a",
        "label",
        "li",
        "summary",
        "circle",
        "rect",
        "polygon",
        "ellipse",
        "path",
        "svg",
        "td",
        "th",
    ]
)
"""Tags listed even when they carry no text."""

MAX_TEXT = 80
MAX_OPTIONS = 12
_NOISE = re.compile(
    r"^ui-(corner|widget|helper|state-default|button-icon|icon|front|draggable|resizable)"
)
"""jQuery UI classes that say nothing about what an element is."""

OBSERVE_JS = """
(opts) => {
  const st = {
    done: WOB_DONE_GLOBAL, reward: WOB_REWARD_GLOBAL, raw_reward: WOB_RAW_REWARD_GLOBAL,
    reason: WOB_REWARD_REASON, episode: WOB_EPISODE_ID, instruction: core.getUtterance(),
    elements: [], html: null,
  };
  if (WOB_DONE_GLOBAL) return st;
  const info = core.getDOMInfo();
  const cls = (c) => typeof c === 'string' ? c : ((c && c.baseVal) || '');
  const visit = (node, section) => {
    const kids = node.children || [];
    const words = kids.filter((k) => k.tag === 't').map((k) => k.text);
    let text = node.text || '';
    if (words.length) text = (text ? text + ' ' : '') + words.join(' ');
    const el = core.previousDOMInfo[node.ref];
    if (el && el.dataset && el.dataset.wobSub !== undefined) section = +el.dataset.wobSub;
    let value = node.value === undefined ? null : node.value;
    let options = null;
    if (el instanceof HTMLSelectElement) {
      options = Array.from(el.options).map((o) => o.text.trim());
      value = el.selectedIndex >= 0 ? el.options[el.selectedIndex].text.trim() : '';
    }
    st.elements.push({
      ref: node.ref, tag: node.tag.toLowerCase(), id: node.id || '', classes: cls(node.classes),
      text: text, value: value, options: options, focused: !!node.focused, section: section,
    });
    for (const k of kids) if (k.tag !== 't') visit(k, section);
  };
  if (info) visit(info, null);
  if (opts.html) st.html = (document.getElementById('wrap') || document.body).outerHTML;
  return st;
}
"""

CLICK_BOX_JS = """
(el) => {
  const rects = [...el.getClientRects()].filter((r) => r.width > 0 && r.height > 0);
  const at = [0.5, 0.25, 0.75, 0.1, 0.9, 0.03, 0.97];
  for (const r of rects) for (const fy of at) for (const fx of at) {
    const x = r.x + r.width * fx, y = r.y + r.height * fy, hit = document.elementFromPoint(x, y);
    if (hit && el.contains(hit)) return {x: x - 0.5, y: y - 0.5, width: 1, height: 1};
  }
  const r = rects[0];
  return r ? {x: r.x, y: r.y, width: r.width, height: r.height} : null;
}
"""
"""Where a click on an element lands: the first point of its boxes (one per line, for a link
that wraps; the centre first, then a grid out to its edges) that the element itself would
receive, not a sibling drawn over it (MiniWoB places some buttons at random, so they can
overlap); else the centre of its first box (out of view or covered everywhere); null when
it takes no space."""


@dataclass(frozen=True)
class Element:
    """One element of the page as ``core.getDOMInfo()`` reports it."""

    ref: int
    tag: str
    id: str = ""
    classes: tuple[str, ...] = ()
    text: str = ""
    value: str | bool | None = None
    focused: bool = False
    section: int | None = None
    """For a composed page: which subtask's UI the element belongs to (0-based)."""
    options: tuple[str, ...] = ()
    """A ``<select>``'s option texts."""

    @property
    def takes_text(self) -> bool:
        return self.tag in TEXT_INPUTS

    @property
    def shown(self) -> bool:
        """Whether the element earns a line: it can be acted on or carries text or a value."""
        return self.tag in INTERACTIVE or bool(self.text) or self.value is not None or self.focused

    def line(self) -> str:
        """``[ref] tag#id.class "text" value="..."``."""
        head = f"[{self.ref}] {self.tag}"
        if self.id and not self.id.startswith("ui-id-"):
            head += f"#{self.id}"
        head += "".join(f".{c}" for c in self.classes if not _NOISE.match(c))
        parts = [head]
        if self.text:
            text = " ".join(self.text.split())
            if len(text) > MAX_TEXT:
                text = text[: MAX_TEXT - 1] + "…"
            parts.append(f'"{text}"')
        if self.options:
            shown = " | ".join(self.options[:MAX_OPTIONS])
            more = len(self.options) - MAX_OPTIONS
            parts.append(f'options="{shown}' + (f' | …{more} more"' if more > 0 else '"'))
        if isinstance(self.value, bool):
            parts.append(f"checked={str(self.value).lower()}")
        elif self.value is not None:
            parts.append(f'value="{self.value}"')
        if self.focused:
            parts.append("focused")
        return " ".join(parts)

    @classmethod
    def from_js(cls, raw: dict[str, Any]) -> Element:
        value = raw.get("value")
        return cls(
            ref=int(raw["ref"]),
            tag=str(raw.get("tag") or ""),
            id=str(raw.get("id") or ""),
            classes=tuple(str(raw.get("classes") or "").split()),
            text=str(raw.get("text") or ""),
            value=value if isinstance(value, bool) or value is None else str(value),
            focused=bool(raw.get("focused")),
            section=raw.get("section"),
            options=tuple(str(o) for o in raw.get("options") or ()),
        )


@dataclass(frozen=True)
class EpisodeStatus:
    """Where the page's episode stands: ``done`` and the page's own rewards.

    ``raw_reward`` is ``WOB_RAW_REWARD_GLOBAL`` (+1 success, -1 failure, 0 while running);
    ``reward`` is MiniWoB's time-discounted one.
    """

    episode: int
    done: bool
    reward: float
    raw_reward: float
    reason: str | None = None

    @property
    def success(self) -> bool:
        return self.done and self.raw_reward > 0

    def describe(self) -> str:
        if not self.done:
            return "The episode is still running."
        why = f" ({self.reason})" if self.reason else ""
        return f"The episode has ended with reward {self.raw_reward:+.2f}{why}."


@dataclass(frozen=True)
class Observation:
    """The instruction, the elements and the episode's status at one moment."""

    instruction: str
    elements: tuple[Element, ...]
    status: EpisodeStatus
    html: str | None = None
    by_ref: dict[int, Element] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_js(cls, raw: dict[str, Any]) -> Observation:
        elements = tuple(Element.from_js(e) for e in raw.get("elements") or [])
        status = EpisodeStatus(
            episode=int(raw.get("episode") or 0),
            done=bool(raw.get("done")),
            reward=float(raw.get("reward") or 0.0),
            raw_reward=float(raw.get("raw_reward") or 0.0),
            reason=raw.get("reason"),
        )
        by_ref = {e.ref: e for e in elements}
        return cls(str(raw.get("instruction") or ""), elements, status, raw.get("html"), by_ref)

    @property
    def shown(self) -> list[Element]:
        """The elements that get a line, in page order."""
        return [e for e in self.elements if e.shown and e.tag != "body"]

    def text(self, *, html: bool = False) -> str:
        """The observation as the model reads it."""
        lines = [f"Instruction: {self.instruction}"]
        if self.status.done:
            lines.append(self.status.describe())
            return "\n".join(lines)
        section: int | None = None
        for e in self.shown:
            if e.section != section:
                part = "elsewhere on the page" if e.section is None else f"part {e.section + 1}"
                lines.append(f"-- {part} --")
                section = e.section
            lines.append(e.line())
        if html and self.html:
            lines += ["HTML:", self.html]
        return "\n".join(lines)


# --------------------------------------------------------------------------- action tools


def _ref_schema(refs: Sequence[int], what: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "description": f"the [number] of {what}"}
    if refs:
        schema["enum"] = sorted(set(refs))
    return schema


def _params(props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


class Page(Protocol):
    """What the action tools drive: one task page (:class:`~toolpath.tools.web.browser.WebEnv`)."""

    async def click(self, ref: int) -> str: ...
    async def type(self, ref: int, text: str) -> str: ...
    async def press(self, key: str) -> str: ...
    async def select(self, ref: int, option: str) -> str: ...
    async def status(self) -> EpisodeStatus: ...


def action_tools(env: Page, obs: Observation | None = None) -> list[Tool]:
    """The action tools bound to ``env``'s page.

    With ``obs``, each ``ref`` is limited to that observation's refs, ``type`` is offered
    only when there is a text field and ``select`` only when there is a ``<select>``.
    """
    shown = obs.shown if obs is not None else []
    all_refs = [e.ref for e in shown]
    text_refs = [e.ref for e in shown if e.takes_text]
    select_refs = [e.ref for e in shown if e.tag == "select"]

    async def click(ref: int) -> str:
        return await env.click(ref)

    async def type_(ref: int, text: str) -> str:
        return await env.type(ref, text)

    async def press(key: str) -> str:
        return await env.press(key)

    async def select(ref: int, option: str) -> str:
        return await env.select(ref, option)

    async def done() -> str:
        return (await env.status()).describe()

    tools = [
        Tool(
            "click",
            "Click the element with this [number].",
            _params({"ref": _ref_schema(all_refs, "the element to click")}),
            click,
        )
    ]
    if obs is None or text_refs:
        props = {
            "ref": _ref_schema(text_refs, "the text field"),
            "text": {"type": "string", "description": "the exact text to type"},
        }
        tools.append(
            Tool("type", "Replace the text in a text field with this text.", _params(props), type_)
        )
    tools.append(
        Tool(
            "press",
            "Press a key on the focused element, e.g. Enter, Tab, Backspace, ArrowDown.",
            _params({"key": {"type": "string", "description": "the key name"}}),
            press,
        )
    )
    if obs is None or select_refs:
        props = {
            "ref": _ref_schema(select_refs, "the <select> list"),
            "option": {"type": "string", "description": "the option's text"},
        }
        tools.append(Tool("select", "Choose an option of a <select> list.", _params(props), select))
    tools.append(
        Tool(
            "done",
            "Say that every subtask is finished (the page itself decides the reward).",
            _params({}),
            done,
        )
    )
    return tools
