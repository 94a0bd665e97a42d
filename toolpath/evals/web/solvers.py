"""The scripted solvers of the base tasks that :mod:`toolpath.evals.web.oracle` plays.

A solver gets one subtask's instruction (imperative: "Click on ...") and the elements of
its part of the page as the observation lists them (only visible elements), and returns
the next actions, such as ``[("type", {"ref": 7, "text": "Bob"}), ("click", {"ref": 9})]``.
It reads the page like a model would: quoted text, labels, classes, what is visible. The
solvers in :data:`MULTI_STEP` need to see the page change (open a tab, turn a page, expand a
folder); they are called again on a fresh observation until their subtask has an outcome,
and each call decides from what is on the page now (no memory between calls).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from toolpath.errors import ConfigError
from toolpath.tools.web.observation import Element

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


def _click(e: Element) -> Action:
    return ("click", {"ref": e.ref})


def _type(e: Element, text: str) -> Action:
    return ("type", {"ref": e.ref, "text": text})


def _button(elements: Sequence[Element], text: str) -> Element:
    return _first(
        elements,
        lambda e: e.tag == "button" and e.text.strip().lower() == text.lower(),
        f"the {text} button",
    )


def _submit_button(els: Sequence[Element]) -> Element:
    """The Submit button (``#subbtn`` or a button that says Submit)."""
    return _first(
        els,
        lambda e: e.id == "subbtn" or (e.tag == "button" and e.text.strip().lower() == "submit"),
        "the Submit button",
    )


def _labelled(elements: Sequence[Element], name: str, kind: str) -> Element:
    """The input of ``kind`` right after the label whose text is ``name``."""
    for i, e in enumerate(elements):
        if e.tag == "label" and e.text.strip() == name:
            for nxt in elements[i + 1 : i + 3]:
                if nxt.tag == kind:
                    return nxt
    raise ConfigError(f"scripted policy: no {kind} labelled {name!r}")


def _nth(instruction: str) -> int:
    """The 0-based position in "the 3rd ..." / "the 7th ..."."""
    return int(_need(re.search(r"\b(\d+)(?:st|nd|rd|th)\b", instruction), "a position")[1]) - 1


def _submit(instruction: str, els: Sequence[Element]) -> list[Action]:
    """Click Submit when the (sub)instruction asks for it (CompWoB pages often do not)."""
    if "submit" not in instruction.lower():
        return []
    return [_click(_button(els, "Submit"))]


# --------------------------------------------------------------------------- one step


def click_button(instruction: str, els: Sequence[Element]) -> list[Action]:
    text = _need(_quoted(instruction), "the button text")[0]
    return [_click(_first(els, lambda e: e.tag == "button" and e.text == text, f"button {text!r}"))]


def enter_text(instruction: str, els: Sequence[Element]) -> list[Action]:
    text = _need(_quoted(instruction), "the text")[0]
    fields = [e for e in els if e.id == "tt"] or [e for e in els if e.tag == "input_text"]
    return [_type(_need(fields, "the text field")[0], text), *_submit(instruction, els)]


def login_user(instruction: str, els: Sequence[Element]) -> list[Action]:
    user, password = _need(_quoted(instruction), "the username and password")[:2]
    name = _first(els, lambda e: e.id == "username", "the username field")
    secret = _first(els, lambda e: e.id == "password", "the password field")
    return [_type(name, user), _type(secret, password), _click(_button(els, "Login"))]


def enter_password(instruction: str, els: Sequence[Element]) -> list[Action]:
    password = _need(_quoted(instruction), "the password")[0]
    fields = _need([e for e in els if e.tag == "input_password"][:2], "the password fields")
    return [*(_type(f, password) for f in fields), *_submit(instruction, els)]


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
                acts.append(_click(box))
    return [*acts, *_submit(instruction, els)]


def click_option(instruction: str, els: Sequence[Element]) -> list[Action]:
    name = _need(_select_names(instruction), "the option")[0]
    return [_click(_labelled(els, name, "input_radio")), *_submit(instruction, els)]


def choose_list(instruction: str, els: Sequence[Element]) -> list[Action]:
    m = _need(re.search(r"Select (.*) from the list", instruction), "the list item")
    box = _first(els, lambda e: e.tag == "select", "the list")
    return [("select", {"ref": box.ref, "option": m.group(1)}), *_submit(instruction, els)]


def click_link(instruction: str, els: Sequence[Element]) -> list[Action]:
    text = _need(_quoted(instruction), "the link text")[0]
    link = _first(els, lambda e: "alink" in e.classes and e.text == text, f"link {text!r}")
    return [_click(link)]


def click_dialog(instruction: str, els: Sequence[Element]) -> list[Action]:
    close = _first(els, lambda e: "ui-dialog-titlebar-close" in e.classes, "the dialog's x")
    return [_click(close)]


def click_dialog_2(instruction: str, els: Sequence[Element]) -> list[Action]:
    label = _need(_quoted(instruction), "the button label")[0]
    if label == "x":
        return click_dialog(instruction, els)
    return [_click(_button([e for e in els if "ui-button" in e.classes], label))]


def click_tab(instruction: str, els: Sequence[Element]) -> list[Action]:
    m = _need(re.search(r"Tab #(\d+)", instruction), "the tab number")
    tab = _first(els, lambda e: e.tag == "a" and e.text == f"Tab #{m.group(1)}", "the tab")
    return [_click(tab)]


_WIDGETS = {
    "radio": "input_radio",
    "checkbox": "input_checkbox",
    "text": "input_text",
    "textarea": "textarea",
    "button": "button",
}


def click_widget(instruction: str, els: Sequence[Element]) -> list[Action]:
    kind = _WIDGETS[_need(_quoted(instruction), "the widget kind")[0]]
    return [_click(_first(els, lambda e: e.tag == kind, f"a {kind}"))]


def focus_text(instruction: str, els: Sequence[Element]) -> list[Action]:
    return [_click(_first(els, lambda e: e.tag == "input_text", "the textbox"))]


def focus_text_2(instruction: str, els: Sequence[Element]) -> list[Action]:
    boxes = [e for e in els if e.tag == "input_text"]
    return [_click(_need(boxes[_nth(instruction) : _nth(instruction) + 1], "the textbox")[0])]


def click_test(instruction: str, els: Sequence[Element]) -> list[Action]:
    return [_click(_first(els, lambda e: e.tag == "button", "the button"))]


def click_test_2(instruction: str, els: Sequence[Element]) -> list[Action]:
    names = re.findall(r"button (\w+)", instruction)
    return [_click(_button(els, name)) for name in _need(names, "the button names")]


def click_collapsible(instruction: str, els: Sequence[Element]) -> list[Action]:
    header = _first(els, lambda e: e.tag == "h3", "the section header")
    opened = "ui-accordion-header-active" in header.classes
    return [*([] if opened else [_click(header)]), _click(_submit_button(els))]


def enter_text_2(instruction: str, els: Sequence[Element]) -> list[Action]:
    text = _need(_quoted(instruction), "the text")[0]
    text = text.upper() if "upper case" in instruction else text.lower()
    field = _first(els, lambda e: e.tag == "input_text", "the text field")
    return [_type(field, text), _click(_submit_button(els))]


def form_sequence_2(instruction: str, els: Sequence[Element]) -> list[Action]:
    m = _need(re.search(r"the (\d)\w\w radio.*\"(-?\d+)\" into the (\d)\w\w", instruction), "it")
    radios = [e for e in els if e.tag == "input_radio"]
    boxes = [e for e in els if e.tag == "input_text"]
    radio, box = radios[int(m[1]) - 1], boxes[int(m[3]) - 1]
    return [_click(radio), _type(box, m[2]), _click(_submit_button(els))]


def read_table(instruction: str, els: Sequence[Element]) -> list[Action]:
    key = _need(re.search(r"value of (.+?) into", instruction), "the table key")[1]
    value = _table(els)[key]
    field = _first(els, lambda e: e.tag == "input_text", "the text field")
    return [_type(field, value), _click(_submit_button(els))]


def _table(els: Sequence[Element]) -> dict[str, str]:
    cells = [e.text.strip() for e in els if e.tag == "td"]
    return dict(zip(cells[::2], cells[1::2], strict=False))


def read_table_2(instruction: str, els: Sequence[Element]) -> list[Action]:
    table = _table(els)
    acts = [
        _type(els[i + 1], table[e.text.strip().rstrip(":")])
        for i, e in enumerate(els[:-1])
        if e.tag == "label" and els[i + 1].tag == "input_text"
    ]
    return [*_need(acts, "the labelled fields"), _click(_submit_button(els))]


_FIELDS = {"genre": 0, "director": 1, "year": 2, "date": 2}


def multi_layouts(instruction: str, els: Sequence[Element]) -> list[Action]:
    m = _need(re.search(r"for (.+) movies directed by (.+) from year (\d+)", instruction), "it")
    inputs = [i for i, e in enumerate(els) if e.tag == "input_text"]
    labels = [i for i, e in enumerate(els) if e.tag != "input_text" and _field(e) is not None]
    after = bool(inputs and labels and inputs[0] < labels[0])  # layouts with the label last
    acts: list[Action] = []
    for i in inputs:
        near = [j for j in labels if (j > i if after else j < i)]
        label = els[min(near) if after else max(near)]
        acts.append(_type(els[i], m[1 + _need(_field(label), "a field")]))
    go = [e for e in els if e.text.strip() in ("Submit", "Search", "Go!") and not e.takes_text]
    return [*acts, _click(_need(go, "the search button")[-1])]


def _field(e: Element) -> int | None:
    words = e.text.lower().split()
    return next((_FIELDS[w.strip(":")] for w in words if w.strip(":") in _FIELDS), None)


def use_spinner(instruction: str, els: Sequence[Element]) -> list[Action]:
    want = int(_need(re.search(r"Select (-?\d+)", instruction), "the number")[1])
    box = _first(els, lambda e: "ui-spinner-input" in e.classes, "the spinner")
    have = int(str(box.value or 0))
    arrow = "ui-spinner-up" if want > have else "ui-spinner-down"
    button = _first(els, lambda e: arrow in e.classes, f"the {arrow} arrow")
    return [*[_click(button)] * abs(want - have), _click(_submit_button(els))]


def text_transform(instruction: str, els: Sequence[Element]) -> list[Action]:
    field = _first(els, lambda e: e.tag == "input_text", "the text field")
    text = "".join(e.text for e in els if e.tag == "span" and e.ref < field.ref)
    return [_type(field, _need(text, "the text")), _click(_submit_button(els))]


def find_word(instruction: str, els: Sequence[Element]) -> list[Action]:
    paragraph = _first(els, lambda e: e.tag == "p", "the paragraph")
    word = paragraph.text.split()[_nth(instruction)]
    field = _first(els, lambda e: e.tag == "input_text", "the text field")
    return [_type(field, re.sub(r"[^A-Za-z0-9]", "", word)), _click(_submit_button(els))]


_OPS = {"+": operator.add, "-": operator.sub, "x": operator.mul}


def simple_arithmetic(instruction: str, els: Sequence[Element]) -> list[Action]:
    problem = _first(els, lambda e: e.id == "math-problem", "the problem").text
    a, op, b = _need(re.match(r"\s*(-?\d+)\s*([-+x])\s*(-?\d+)", problem), "the sum").groups()
    field = _first(els, lambda e: e.tag == "input_text", "the answer field")
    return [_type(field, str(_OPS[op](int(a), int(b)))), _click(_submit_button(els))]


def odd_or_even(instruction: str, els: Sequence[Element]) -> list[Action]:
    acts: list[Action] = []
    for i, e in enumerate(els):
        if "display-number" in e.classes:  # Odd before the number, Even after it
            odd = int(e.text) % 2 != 0
            row = reversed(els[:i]) if odd else iter(els[i + 1 :])
            kind = "odd" if odd else "even"
            acts.append(_click(_need(next((b for b in row if kind in b.classes), None), kind)))
    return [*acts, _click(_button(els, "Submit"))]


def copy_paste(instruction: str, els: Sequence[Element]) -> list[Action]:
    source = _first(els, lambda e: e.tag == "textarea", "the text to copy")
    field = _first(els, lambda e: e.id == "answer-input", "the answer field")
    return [_type(field, str(source.value or "")), _click(_submit_button(els))]


# --------------------------------------------------------------------------- several steps


def _visible_link(els: Sequence[Element], text: str) -> Element | None:
    return next((e for e in els if "alink" in e.classes and e.text == text), None)


def click_collapsible_2(instruction: str, els: Sequence[Element]) -> list[Action]:
    target = _need(_quoted(instruction), "the link text")[0]
    link = _visible_link(els, target)
    if link is not None:
        return [_click(link)]
    return [_click(_next_after_active(els, lambda e: e.tag == "h3", "ui-accordion-header-active"))]


def click_tab_2(instruction: str, els: Sequence[Element]) -> list[Action]:
    target = _need(_quoted(instruction), "the link text")[0]
    link = _visible_link(els, target)
    if link is not None:
        return [_click(link)]
    tabs = [e for e in els if e.tag == "a" and e.text.startswith("Tab #")]
    active = next((i for i, e in enumerate(els) if "ui-tabs-active" in e.classes), None)
    now = next((k for k, t in enumerate(tabs) if active is not None and t.ref > els[active].ref), 0)
    return [_click(_need(tabs, "the tabs")[(now + 1) % len(tabs)])]


def _next_after_active(
    els: Sequence[Element], test: Callable[[Element], bool], active_class: str
) -> Element:
    items = _need([e for e in els if test(e)], "the sections")
    now = next((k for k, e in enumerate(items) if active_class in e.classes), -1)
    return items[(now + 1) % len(items)]


def navigate_tree(instruction: str, els: Sequence[Element]) -> list[Action]:
    name = _need(_quoted(instruction), "the name")[-1]
    found = [e for e in els if e.tag == "span" and e.text == name]
    if found:
        return [_click(found[0])]
    closed = [
        els[i + 1]
        for i, e in enumerate(els[:-1])
        if "expandable" in e.classes and "folder" in els[i + 1].classes
    ]
    return [_click(_need(closed, f"{name!r} or a closed folder")[0])]


_MONTHS = "January February March April May June July August September October November December"


def choose_date_easy(instruction: str, els: Sequence[Element]) -> list[Action]:
    date = _need(re.search(r"(\d\d)/(\d\d)/(\d{4})", instruction), "the date")
    field = _first(els, lambda e: e.id == "datepicker", "the date field")
    if field.value == date[0]:
        return [_click(_submit_button(els))]
    month = next((e.text for e in els if "ui-datepicker-month" in e.classes), None)
    year = next((e.text for e in els if "ui-datepicker-year" in e.classes), None)
    if month is None or year is None:
        return [_click(field)]  # opens the calendar
    shown = int(year) * 12 + _MONTHS.split().index(month)
    want = int(date[3]) * 12 + int(date[1]) - 1
    if shown != want:
        arrow = "ui-datepicker-next" if want > shown else "ui-datepicker-prev"
        return [_click(_first(els, lambda e: arrow in e.classes, "the month arrow"))]
    day = str(int(date[2]))
    return [_click(_first(els, lambda e: e.tag == "a" and e.text == day, f"day {day}"))]


def search_engine(instruction: str, els: Sequence[Element]) -> list[Action]:
    term = _need(_quoted(instruction), "the search term")[0]
    box = _first(els, lambda e: e.id == "search-text", "the search box")
    results = [e for e in els if "search-title" in e.classes]
    if box.value != term or not results:
        return [_type(box, term), _click(_first(els, lambda e: e.id == "search", "Search"))]
    page, slot = divmod(_nth(instruction), 3)
    active = next((i for i, e in enumerate(els) if "active" in e.classes), None)
    current = els[active + 1].text if active is not None and active + 1 < len(els) else "1"
    if current == str(page + 1):
        return [_click(results[slot])]
    link = _first(els, lambda e: e.tag == "a" and e.text == str(page + 1), "the page link")
    return [_click(link)]


def use_autocomplete(instruction: str, els: Sequence[Element]) -> list[Action]:
    start, *end = _need(_quoted(instruction), "the start")
    field = _first(els, lambda e: e.id == "tags", "the text field")
    value = str(field.value or "")

    def fits(text: str) -> bool:
        return text.startswith(start) and (not end or text.endswith(end[0]))

    if value != start and fits(value):
        return [_click(_submit_button(els))]
    items = [e for e in els if "ui-menu-item-wrapper" in e.classes and fits(e.text)]
    if items:
        return [_click(items[0])]
    return [_type(field, start), ("press", {"key": "ArrowDown"})]


def login_user_popup(instruction: str, els: Sequence[Element]) -> list[Action]:
    cancel = next((e for e in els if e.id == "popup-cancel"), None)
    if cancel is not None:
        return [_click(cancel)]
    user, password = _need(_quoted(instruction), "the username and password")[:2]
    for field, text in (("username", user), ("password", password)):
        box = _first(els, lambda e, f=field: e.id == f, f"the {field} field")  # type: ignore[misc]
        if box.value != text:
            return [_type(box, text)] if box.focused else [_click(box)]
    return [_click(_submit_button(els))]


def phone_book(instruction: str, els: Sequence[Element]) -> list[Action]:
    m = _need(
        re.search(r"Find (.+) in the contact book.*their (phone|email|address)", instruction), "it"
    )
    name = next((e.text.strip() for e in els if "name" in e.classes and e.tag == "h2"), None)
    if name == m[1]:
        return [_click(_first(els, lambda e: m[2] in e.classes, f"the {m[2]}"))]
    return [_click(_first(els, lambda e: e.tag == "a" and e.text == ">", "the next page"))]


def guess_number(instruction: str, els: Sequence[Element]) -> list[Action]:
    field = _first(els, lambda e: e.tag == "input_number", "the number field")
    guess = 5
    for i, e in enumerate(els[:-1]):
        if e.id in ("higher", "lower") and els[i + 1].text.strip().lstrip("-").isdigit():
            guess = int(els[i + 1].text) + (1 if e.id == "higher" else -1)
    return [_type(field, str(guess)), _click(_submit_button(els))]


SOLVERS: dict[str, Solver] = {
    "choose-date-easy": choose_date_easy,
    "choose-list": choose_list,
    "click-button": click_button,
    "click-button-sequence": click_test_2,
    "click-checkboxes": click_checkboxes,
    "click-checkboxes-large": click_checkboxes,
    "click-checkboxes-transfer": click_checkboxes,
    "click-collapsible": click_collapsible,
    "click-collapsible-2": click_collapsible_2,
    "click-dialog": click_dialog,
    "click-dialog-2": click_dialog_2,
    "click-link": click_link,
    "click-option": click_option,
    "click-tab": click_tab,
    "click-tab-2-easy": click_tab_2,
    "click-tab-2-medium": click_tab_2,
    "click-test": click_test,
    "click-test-2": click_test_2,
    "click-widget": click_widget,
    "copy-paste": copy_paste,
    "enter-password": enter_password,
    "enter-text": enter_text,
    "enter-text-2": enter_text_2,
    "enter-text-dynamic": enter_text,
    "find-word": find_word,
    "focus-text": focus_text,
    "focus-text-2": focus_text_2,
    "form-sequence-2": form_sequence_2,
    "guess-number": guess_number,
    "login-user": login_user,
    "login-user-popup": login_user_popup,
    "multi-layouts": multi_layouts,
    "multi-orderings": multi_layouts,
    "navigate-tree": navigate_tree,
    "odd-or-even": odd_or_even,
    "phone-book": phone_book,
    "read-table": read_table,
    "read-table-2": read_table_2,
    "search-engine": search_engine,
    "simple-arithmetic": simple_arithmetic,
    "text-transform": text_transform,
    "unicode-test": click_button,
    "use-autocomplete": use_autocomplete,
    "use-spinner": use_spinner,
}
"""A solver per base task (several tasks share one)."""

MULTI_STEP = frozenset(
    {
        "choose-date-easy",
        "click-collapsible-2",
        "click-tab-2-easy",
        "click-tab-2-medium",
        "guess-number",
        "login-user-popup",
        "navigate-tree",
        "phone-book",
        "search-engine",
        "use-autocomplete",
    }
)
"""Solvers that act, look at the page again and act again, until their subtask is over."""
