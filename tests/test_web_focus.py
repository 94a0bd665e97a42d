"""The plan-then-act web agent's text rules, without a page: which click finishes a subtask,
what must be typed or ticked before it, and which elements a subtask sees."""

from __future__ import annotations

from toolpath.agents.web.focus import final_target, focus, typed_values, unmet
from toolpath.tools.web.observation import Element, EpisodeStatus, Observation


def test_final_targets_and_typed_values() -> None:
    cases = {
        "Select 91YPF, i6Vdpn2 and click Submit.": "submit",
        'Enter the username "dannie" and the password "yc" into the text fields and press login.': "login",
        'Close the dialog box by clicking the "x".': "x",
        "Click on Tab #3.": "tab #3",
        'Switch between the tabs to find and click on the link "qu".': "qu",
        'Click on the "Ok" button.': "ok",
        "Focus into the textbox.": None,
    }
    for subtask, target in cases.items():
        assert final_target(subtask) == target, subtask
    assert typed_values('Enter the username "dannie" and the password "yc" into the fields') == [
        "dannie",
        "yc",
    ]


def _obs(*elements: Element) -> Observation:
    status = EpisodeStatus(episode=1, done=False, reward=0.0, raw_reward=0.0)
    return Observation("x", elements, status, None, {e.ref: e for e in elements})


def test_unmet_names_what_is_missing_and_focus_keeps_the_dialog_for_its_subtask() -> None:
    login = 'Enter the username "ann" and the password "pw" into the text fields and press login.'
    fields = (Element(1, "input_text", value="ann"), Element(2, "input_password", value=""))
    assert unmet(login, _obs(*fields)) == 'first type "pw" into its field ([2] is still empty)'
    assert unmet(login, _obs(fields[0], Element(2, "input_password", value="pw"))) is None
    boxes = (Element(3, "label", text="abc"), Element(4, "input_checkbox", value=False))
    assert unmet("Select abc and click Submit.", _obs(*boxes)).startswith(
        'first tick the checkbox "abc"'
    )
    page = _obs(
        Element(5, "button", text="Submit", section=0),
        Element(6, "button", text="Login", section=1),
        Element(7, "button", text="Close", classes=("ui-dialog-titlebar-close",)),
        Element(8, "p", text="Lorem ipsum.", section=2),
    )
    subtasks = [
        "Select abc and click Submit.",
        "Log in.",
        'Close the dialog box by clicking the "x".',
    ]
    assert [e.ref for e in focus(page, subtasks, 0).elements] == [5]  # the dialog waits
    assert [e.ref for e in focus(page, subtasks, 2).elements] == [7, 8]
    assert len(focus(page, [*subtasks[:2], "A fourth.", "A fifth."], 0).elements) == 4  # no match
