"""Scripted policies: deterministic solvers for MiniWoB base tasks that read the page.

A solver gets a subtask's instruction and the elements of its part of the page and
returns the actions that solve it, such as ``[("type", {"ref": 7, "text": "Bob"}),
("click", {"ref": 9})]``. :func:`run_scripted` plays a whole episode (a base task or a
composed page, subtask by subtask in any order, for the tests of the reward rules)
through the same :class:`~toolpath.tools.web.browser.WebEnv` actions an agent uses. They
check that the pages, the observation and the actions work, and give the latency
benchmark real episodes; they are not agents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from toolpath.errors import ConfigError
from toolpath.tools.web.observation import Element, EpisodeStatus

Action = tuple[str, dict[str, Any]]
Solver = Callable[[str, Sequence[Element]], list[Action]]


def _quoted(instruction: str) -> list[str]:
    return re.findall(r'"([^"]*)"', instruction)


def _need(value: Any, what: str) -> Any:
    if value is None or value == []:
        raise ConfigError(f"scripted policy: cannot find {what}")
    return value


def _first(elements: Sequence[Element], test: Callable[[Element], bool], what: str) -> Element:
    found = next((e for e in elements if test(e)), None)
    return _need(found, what)


def _button(elements: Sequence[Element], text: str) -> Element:
    return _first(
        elements,
        lambda e: e.tag == "button" and e.text.strip().lower() == text.lower(),
        f"the {text} button",
    )


def _labelled(elements: Sequence[Element], name: str, kind: str) -> Element:
    """The input of ``kind`` right after the label whose text is ``name``."""
    for i, e in enumerate(elements):
        if e.tag == "label" and e.text.strip() == name:
            for nxt in elements[i + 1 : i + 3]:
                if nxt.tag == kind:
                    return nxt
    raise ConfigError(f"scripted policy: no {kind} labelled {name!r}")


def click_button(instruction: str, els: Sequence[Element]) -> list[Action]:
    text = _need(_quoted(instruction), "the button text")[0]
    target = _first(els, lambda e: e.tag == "button" and e.text == text, f"button {text!r}")
    return [("click", {"ref": target.ref})]


def enter_text(instruction: str, els: Sequence[Element]) -> list[Action]:
    text = _need(_quoted(instruction), "the text")[0]
    fields = [e for e in els if e.id == "tt"] or [e for e in els if e.tag == "input_text"]
    field = _need(fields, "the text field")[0]
    return [("type", {"ref": field.ref, "text": text}), *_submit(instruction, els)]


def login_user(instruction: str, els: Sequence[Element]) -> list[Action]:
    user, password = _need(_quoted(instruction), "the username and password")[:2]
    name = _first(els, lambda e: e.id == "username", "the username field")
    secret = _first(els, lambda e: e.id == "password", "the password field")
    return [
        ("type", {"ref": name.ref, "text": user}),
        ("type", {"ref": secret.ref, "text": password}),
        ("click", {"ref": _button(els, "Login").ref}),
    ]


def enter_password(instruction: str, els: Sequence[Element]) -> list[Action]:
    password = _need(_quoted(instruction), "the password")[0]
    fields = [e for e in els if e.tag == "input_password"][:2]
    _need(fields, "the password fields")
    acts: list[Action] = [("type", {"ref": f.ref, "text": password}) for f in fields]
    return [*acts, *_submit(instruction, els)]


def _submit(instruction: str, els: Sequence[Element]) -> list[Action]:
    """Click Submit when the (sub)instruction asks for it (CompWoB pages often do not)."""
    if "submit" not in instruction.lower():
        return []
    return [("click", {"ref": _button(els, "Submit").ref})]


def _select_names(instruction: str) -> list[str]:
    m = re.search(r"Select (.*?)(?: and click Submit| from the list|\.?$)", instruction, re.I)
    names = _need(m, "what to select").group(1)
    return [] if names == "nothing" else [n.strip() for n in names.split(",") if n.strip()]


def click_checkboxes(instruction: str, els: Sequence[Element]) -> list[Action]:
    wanted = set(_select_names(instruction))
    acts: list[Action] = []
    for i, e in enumerate(els):
        if e.tag == "label" and i + 1 < len(els) and els[i + 1].tag == "input_checkbox":
            box = els[i + 1]
            if (e.text.strip() in wanted) != bool(box.value):
                acts.append(("click", {"ref": box.ref}))
    return [*acts, *_submit(instruction, els)]


def click_option(instruction: str, els: Sequence[Element]) -> list[Action]:
    name = _need(_select_names(instruction), "the option")[0]
    radio = _labelled(els, name, "input_radio")
    return [("click", {"ref": radio.ref}), *_submit(instruction, els)]


def choose_list(instruction: str, els: Sequence[Element]) -> list[Action]:
    m = _need(re.search(r"Select (.*) from the list", instruction), "the list item")
    box = _first(els, lambda e: e.tag == "select", "the list")
    return [("select", {"ref": box.ref, "option": m.group(1)}), *_submit(instruction, els)]


def click_link(instruction: str, els: Sequence[Element]) -> list[Action]:
    text = _need(_quoted(instruction), "the link text")[0]
    link = _first(els, lambda e: "alink" in e.classes and e.text == text, f"link {text!r}")
    return [("click", {"ref": link.ref})]


def click_dialog(instruction: str, els: Sequence[Element]) -> list[Action]:
    close = _first(els, lambda e: "ui-dialog-titlebar-close" in e.classes, "the dialog's x")
    return [("click", {"ref": close.ref})]


def click_tab(instruction: str, els: Sequence[Element]) -> list[Action]:
    m = _need(re.search(r"Tab #(\d+)", instruction), "the tab number")
    tab = _first(els, lambda e: e.tag == "a" and e.text == f"Tab #{m.group(1)}", "the tab")
    return [("click", {"ref": tab.ref})]


_WIDGETS = {
    "radio": "input_radio",
    "checkbox": "input_checkbox",
    "text": "input_text",
    "textarea": "textarea",
    "button": "button",
}


def click_widget(instruction: str, els: Sequence[Element]) -> list[Action]:
    kind = _WIDGETS[_need(_quoted(instruction), "the widget kind")[0]]
    return [("click", {"ref": _first(els, lambda e: e.tag == kind, f"a {kind}").ref})]


def focus_text(instruction: str, els: Sequence[Element]) -> list[Action]:
    return [("click", {"ref": _first(els, lambda e: e.tag == "input_text", "the textbox").ref})]


SOLVERS: dict[str, Solver] = {
    "click-button": click_button,
    "click-checkboxes": click_checkboxes,
    "click-dialog": click_dialog,
    "click-link": click_link,
    "click-option": click_option,
    "click-tab": click_tab,
    "click-widget": click_widget,
    "choose-list": choose_list,
    "enter-password": enter_password,
    "enter-text": enter_text,
    "focus-text": focus_text,
    "login-user": login_user,
}


async def run_actions(env: Any, actions: Sequence[Action]) -> None:
    """Play ``actions`` on ``env`` (refs stay valid within an episode)."""
    for name, args in actions:
        await getattr(env, name)(**args)


async def run_scripted(
    env: Any,
    page: str,
    base: Sequence[str],
    *,
    seed: int = 0,
    order: Sequence[int] | None = None,
) -> EpisodeStatus:
    """Play one episode of ``page`` with the scripted solvers and return its status.

    ``base`` names the page's base tasks in page order (one name for a MiniWoB page).
    ``order`` is which subtasks to solve, in which order (default: all, in order); a
    composed page is expected to punish a wrong order or a missing subtask.
    """
    from toolpath.agents.web.agent import split_instruction

    unknown = [b for b in base if b not in SOLVERS]
    if unknown:
        raise ConfigError(f"no scripted policy for {', '.join(unknown)}")
    obs = await env.reset(page, seed)
    parts = split_instruction(obs.instruction) if len(base) > 1 else [obs.instruction]
    if len(parts) != len(base):
        raise ConfigError(f"split {obs.instruction!r} into {len(parts)} parts, not {len(base)}")
    for i in order if order is not None else range(len(base)):
        if obs.status.done:
            break
        section = [e for e in obs.shown if e.section in (i, None)] if len(base) > 1 else obs.shown
        await run_actions(env, SOLVERS[base[i]](parts[i], section))
        obs = await env.observe()
    return await env.status()
