"""Where a math answer is in a model's text: the ToRA extraction order.

:func:`extract_answer` looks for the last ``\\boxed{}``, then "The answer is ...", then the last
line of the program output, then the last number. The math agents use it to read their own
answers; :mod:`toolpath.evals.math.grading` uses it before comparing with the gold answer.
"""

from __future__ import annotations

import re

__all__ = ["extract_answer", "extract_boxed", "group_end"]

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_ANSWER_IS_RE = re.compile(r"(?:final\s+answer|the\s+answer)\s*(?:is|:)\s*:?\s*", re.IGNORECASE)
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER_RE = re.compile(r"(?:(?<![\w)])-)?(?:\d+(?:\.\d+)?(?:/\d+)?|\.\d+)")


def group_end(text: str, start: int) -> int | None:
    """Index just past the brace group that opens at ``text[start] == "{"`` (None if unclosed)."""
    depth = 0
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\":  # an escaped character such as \{ or \}
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def extract_boxed(text: str) -> str | None:
    """The content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``)."""
    for match in reversed(list(_BOX_RE.finditer(text))):
        j = match.end()
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            end = group_end(text, j)
            if end is not None:
                return text[j + 1 : end - 1].strip()
        elif j > match.end():  # "\boxed 5": up to the next "$" or line end
            token = re.split(r"[$\n]", text[j:], maxsplit=1)[0].strip().rstrip(".")
            if token:
                return token
    return None


def _after_answer_is(rest: str) -> str:
    """The answer at the start of ``rest`` (the text after "The answer is")."""
    rest = rest.split("\n", 1)[0].strip()
    for opener, closer in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(opener):
            end = rest.find(closer, len(opener))
            if end > 0:
                return rest[len(opener) : end].strip().rstrip(".").strip()
    rest = re.split(r"\.(?:\s|$)", rest, maxsplit=1)[0]
    return rest.strip().rstrip(".").strip()


def extract_answer(text: str, *, program_output: str | None = None) -> str | None:
    """The final answer in ``text``, ToRA order; None when nothing is found.

    Order: the last ``\\boxed{}``; "The answer is X" or "final answer is X" (the last one, case
    insensitive, trailing period dropped); the last non-empty line of ``program_output``; the last
    number in ``text`` (thousands separators dropped).
    """
    boxed = extract_boxed(text)
    if boxed:
        return boxed
    matches = list(_ANSWER_IS_RE.finditer(text))
    if matches:
        answer = _after_answer_is(text[matches[-1].end() :])
        if answer:
            return answer
    if program_output:
        lines = [line.strip() for line in program_output.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    numbers = _NUMBER_RE.findall(_THOUSANDS_RE.sub("", text))
    return numbers[-1] if numbers else None
