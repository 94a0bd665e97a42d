"""What the plan-then-act web agent knows about one subtask: which elements are its, which
click finishes it, and what must be done before that click.

Everything here is plain text processing on an :class:`~toolpath.tools.web.observation.Observation`,
so it can be tested without a page or a model.

- :func:`focus` picks the current subtask's elements: on a composed page whose parts match the
  subtasks one to one, its own part plus what belongs to no part (dialogs, pop-ups); on any
  other page, every element, those sharing words with the subtask first.
- :func:`final_target` reads which button or link ends a subtask ("... and press Submit",
  'Click on the "OK" button', 'Click on the link "foo"').
- :func:`unmet` is the submit guard: before the final click, every text the subtask asks to
  type must be in a field, and every checkbox it names must be ticked.
"""

from __future__ import annotations

import re
from dataclasses import replace

from toolpath.tools.web.observation import Element, Observation

_QUOTED = re.compile(r'"([^"]+)"')
_FINAL = re.compile(
    r"(?:press|click(?:ing)?(?:\s+on)?|hit|tap)\s+(?:the\s+)?(?:(?:link|button|tab)\s+(?=\"))?"
    r'(?:"([^"]+)"|([^"\s][^"]{0,29}?))\s*(?:button|link)?\s*\.?\s*$',
    re.I,
)
_LINK = re.compile(r'^(?:click|select|choose)\s+(?:on\s+)?(?:the\s+)?\w*\s*"([^"]+)"', re.I)
_TYPED = re.compile(
    r'(?:enter|type|fill(?:\s+in)?|write|username|password)\s+(?:the\s+)?(?:\w+\s+)?"([^"]+)"', re.I
)
_SUBMITS = frozenset(
    ["submit", "ok", "login", "log in", "sign in", "search", "next", "done", "send", "yes", "go"]
)
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "on",
        "into",
        "in",
        "to",
        "of",
        "and",
        "then",
        "click",
        "press",
        "enter",
        "type",
        "select",
        "field",
    ]
)


def final_target(subtask: str) -> str | None:
    """The text of the button, link or tab whose click finishes ``subtask`` (lower case), or
    ``None`` when it names none (then its first effective action finishes it)."""
    text = subtask.strip()
    found = _FINAL.search(text)
    if found:
        return (found.group(1) or found.group(2)).strip().lower()
    link = _LINK.match(text)
    if link:
        return link.group(1).strip().lower()
    return None


def typed_values(subtask: str) -> list[str]:
    """The texts ``subtask`` asks to type into fields ('Enter "abc" into the text field')."""
    return [m.group(1) for m in _TYPED.finditer(subtask)]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


_ALIASES = {"x": {"close", "×", "✕", "x"}}
"""Targets a page shows under another name (a dialog's "x" is its Close button)."""


def matches(element: Element, target: str) -> bool:
    """Whether ``element`` shows ``target`` as its text or value (case-insensitive)."""
    shown = " ".join(element.text.split()).lower()
    value = element.value.lower() if isinstance(element.value, str) else ""
    return bool({shown, value} & _ALIASES.get(target, {target}))


def submit_like(element: Element) -> bool:
    """A button-like element whose text says it submits, logs in, confirms or searches."""
    text = " ".join(element.text.split()).lower()
    value = element.value.lower() if isinstance(element.value, str) else ""
    return element.tag in ("button", "input_submit", "input_button", "a") and (
        text in _SUBMITS or value in _SUBMITS
    )


def focus(obs: Observation, subtasks: list[str], current: int) -> Observation:
    """The observation narrowed (or ordered) for subtask ``current`` (see the module)."""
    shown = obs.shown
    parts = {e.section for e in shown if e.section is not None}
    if len(subtasks) > 1 and parts == set(range(len(subtasks))):
        loose = [e for e in shown if e.section is None]
        owner = _owner(loose, subtasks)
        kept = [
            e
            for e in shown
            if e.section == current or (e.section is None and owner in (None, current))
        ]
        return replace(obs, elements=tuple(kept), by_ref={e.ref: e for e in kept})
    wanted = _words(subtasks[current]) if subtasks else set()
    ranked = sorted(shown, key=lambda e: -len(wanted & _words(f"{e.text} {e.value or ''}")))
    relevant = [e for e in ranked if wanted & _words(f"{e.text} {e.value or ''}")]
    rest = [e for e in shown if e not in relevant]
    ordered = relevant + rest
    return replace(obs, elements=tuple(ordered), by_ref={e.ref: e for e in ordered})


def _owner(loose: list[Element], subtasks: list[str]) -> int | None:
    """The subtask that the elements outside every part (a dialog, a pop-up) belong to: the
    one sharing most words with them, or ``None`` when none shares any."""
    words = _words(" ".join(f"{e.text} {' '.join(e.classes)}" for e in loose))
    if not words:
        return None
    scores = [len(words & _words(s)) for s in subtasks]
    best = max(scores)
    return scores.index(best) if best > 0 and scores.count(best) == 1 else None


def view(obs: Observation) -> str:
    """The element lines of a focused observation, in its order."""
    return "\n".join(e.line() for e in obs.elements if e.tag != "body") or "(nothing to act on)"


def unmet(subtask: str, obs: Observation) -> str | None:
    """Why the final click of ``subtask`` must wait, or ``None`` when it may go ahead: a text
    to type that no field holds yet, or a named checkbox that is not ticked."""
    fields = [e for e in obs.elements if e.takes_text]
    values = {str(e.value or "").strip() for e in fields}
    for text in typed_values(subtask):
        if text.strip() not in values:
            empty = [e for e in fields if not str(e.value or "").strip()]
            where = f" ([{empty[0].ref}] is still empty)" if empty else ""
            return f'first type "{text}" into its field{where}'
    boxes = [e for e in obs.elements if e.tag == "input_checkbox"]
    if boxes and re.match(r"^(select|check|tick|mark)\b", subtask.strip(), re.I):
        names = {q.lower() for q in _QUOTED.findall(subtask)} or _words(
            subtask.split(" and click")[0]
        )
        labels = {e.ref: " ".join(e.text.split()).lower() for e in obs.elements if e.tag == "label"}
        for box in boxes:
            label = labels.get(box.ref - 1, " ".join(box.text.split()).lower())
            if label in names and box.value is not True:
                return f'first tick the checkbox "{label}" ([{box.ref}])'
    return None
