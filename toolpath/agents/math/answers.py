"""Where a math answer is in a model's text: the ToRA extraction order.

:func:`extract_answer` looks for the last ``\\boxed{}``, then "The answer is ...", then the last
line of the program output, then the last number. The math agents use it to read their own
answers; :mod:`toolpath.evals.math.grading` uses it before comparing with the gold answer.
:func:`normalize` gives an answer's canonical form: the grader compares these, and the
sampling agent's vote groups answers by them, so both agree on what "the same answer" is.
"""

from __future__ import annotations

import re

__all__ = ["extract_answer", "extract_boxed", "group_end", "normalize"]

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


_UNIT_WORDS = (
    r"units?|dollars?|cents?|degrees?|percent|cm|centimeters?|meters?|km|kilometers?|inch(?:es)?"
    r"|feet|foot|ft|miles?|mph|hours?|hrs?|minutes?|mins?|seconds?|days?|weeks?|months?|years?"
    r"|pounds?|lbs?|kg|grams?|liters?|ml|(?:square|sq\.?|cubic)\s+[a-z]+"
)
_PLAIN_UNIT_RE = re.compile(rf"(?<=[\d}}])\s+(?:{_UNIT_WORDS})(?:\^\{{?\d\}}?)?$", re.IGNORECASE)
_TEXT_RE = re.compile(r"\\text\{([^{}]*)\}")
_TEXT_UNIT_RE = re.compile(r"\\text\{[^{}]*\}(?:\^\{?\d\}?)?")
_ASSIGN_RE = re.compile(r"^(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*(?:=|\\in(?![a-zA-Z]))\s*")
DECIMAL_RE = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def _fix_args(s: str, command: str, nargs: int) -> str:
    """Brace the bare arguments of ``command``: ``\\frac12`` -> ``\\frac{1}{2}``."""
    pattern = re.compile(re.escape(command) + r"(?![a-zA-Z])")
    out: list[str] = []
    i = 0
    while (match := pattern.search(s, i)) is not None:
        out.append(s[i : match.end()])
        k = match.end()
        if command == "\\sqrt" and s.startswith("[", k) and "]" in s[k:]:
            close = s.index("]", k) + 1
            out.append(s[k:close])
            k = close
        for _ in range(nargs):
            while k < len(s) and s[k] == " ":
                k += 1
            if k >= len(s):
                break
            if s[k] == "{":
                end = group_end(s, k)
                if end is None:
                    break
                out.append("{" + _fix_args(s[k + 1 : end - 1], command, nargs) + "}")
                k = end
            elif s[k] == "\\":
                name = re.match(r"\\(?:[a-zA-Z]+|.)", s[k:])
                token = name.group(0) if name else s[k]
                out.append("{" + token + "}")
                k += len(token)
            elif s[k] in "}^_":
                break
            else:
                out.append("{" + s[k] + "}")
                k += 1
        i = k
    out.append(s[i:])
    return "".join(out)


def _strip_text(s: str) -> str:
    """Drop ``\\text{}`` units after a value; unwrap ``\\text{}`` when it is the whole answer."""
    s = re.sub(r"\\text\{\s*(?:and|or)\s*\}", ",", s)
    if not _TEXT_RE.search(s):
        return s
    outside = _TEXT_UNIT_RE.sub("", s).strip()
    if re.search(r"[0-9a-zA-Z]", outside):
        return outside
    return _TEXT_RE.sub(lambda m: m.group(1).strip(), s)


def _strip_spaces(s: str) -> str:
    """Remove whitespace, but keep one space between a command and a letter (``\\cot x``)."""
    s = re.sub(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])", "\\1\x00", s)
    return re.sub(r"\s+", "", s).replace("\x00", " ")


def normalize(ans: str) -> str:
    """Canonical form of an answer string, for comparison (see the module docstring)."""
    s = ans.strip()
    boxed = extract_boxed(s)
    if boxed is not None:
        s = boxed
    s = s.replace("\n", " ").replace("\\displaystyle", "")
    s = re.sub(r"^\\[\[(]|\\[\])]$", "", s.strip()).strip()
    s = re.sub(r"\\(?:textbf|textrm|textit|textup|mathrm|mbox)\s*\{", r"\\text{", s)
    s = re.sub(r"\\[dt]frac(?![a-zA-Z])", r"\\frac", s)
    s = re.sub(r"\\(?:left|right)(?:\.|(?![a-zA-Z]))", "", s)
    # Thousands separators written with a negative thin space: 32,\!348.
    s = re.sub(r"(?<=\d),\\!\s*(?=\d{3}(?!\d))", "", s)
    s = re.sub(r"(?<!\\)\\[!,;:]|\\q?quad(?![a-zA-Z])|~", " ", s)
    s = re.sub(r"(?<!\\)\\ ", " ", s)
    # Degrees, percent, money.
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![a-zA-Z])|\\degree(?![a-zA-Z])|°", "", s)
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    s = re.sub(r"[.\s]+$", "", _strip_text(s))
    s = re.sub(r"[.\s]+$", "", _PLAIN_UNIT_RE.sub("", s))
    if "=" not in _ASSIGN_RE.sub("", s, count=1):
        s = _ASSIGN_RE.sub("", s, count=1)
    s = _fix_args(_fix_args(s, "\\frac", 2), "\\sqrt", 1)
    mixed = re.fullmatch(r"(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}", s.strip())
    if mixed and int(mixed.group(4)) != 0:
        sign, whole, num, den = mixed.groups()
        s = f"{sign}\\frac{{{int(whole) * int(den) + int(num)}}}{{{den}}}"
    slash = re.fullmatch(r"(-?)(\d+)\s*/\s*(\d+)", s.strip())
    if slash:
        s = f"{slash.group(1)}\\frac{{{slash.group(2)}}}{{{slash.group(3)}}}"
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s.strip()):  # 1,000 but not 1, 000
        s = s.replace(",", "")
    s = _strip_spaces(s)
    s = re.sub(r"\^\{(\w)\}", r"^\1", s)
    s = re.sub(r"(\d)_\{(\d+)\}", r"\1_\2", s)
    choice = re.fullmatch(r"\(([A-Ea-e])\)", s)
    if choice:
        s = choice.group(1).upper()
    if DECIMAL_RE.match(s) and "e" not in s.lower():
        if s.startswith(("-.", ".")):
            s = s.replace(".", "0.", 1)
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        if s in ("-0", ""):
            s = "0"
    return s
