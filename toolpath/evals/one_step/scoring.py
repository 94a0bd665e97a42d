"""Exact checks of one episode: does the answer hold the gold values, did the calls cover the
gold calls.

``success``: every gold value is in the final answer. A number matches any number written in
the answer within :data:`REL_TOL` of it (at least :data:`ABS_TOL`; ``1,288,000`` reads as one
number); a text matches as whole words, case, accents and punctuation aside (``"on time"`` is
in ``"Flight LH400 is on time."``).

``calls_match``: each gold call is matched by a distinct executed call of the same tool whose
key arguments are equal: numbers within the tolerance, texts case and spaces aside
(``"48.85, 2.35"`` is ``"48.85,2.35"``). Extra calls are allowed; order is not checked (a
dependent call could not get its argument before the call it depends on).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

REL_TOL = 0.005
ABS_TOL = 0.01
NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")
WHOLE_NUMBER = re.compile(r"\s*(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)\s*")


def close(value: float, gold: float) -> bool:
    """Whether ``value`` is ``gold`` within the tolerance."""
    return abs(value - gold) <= max(ABS_TOL, REL_TOL * abs(gold))


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` (thousands separators allowed)."""
    return [float(m.replace(",", "")) for m in NUMBER.findall(text.replace("\u2212", "-"))]


def as_number(value: Any) -> float | None:
    """A number, or a text that is just a number, as a float; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        whole = WHOLE_NUMBER.fullmatch(value)
        return float(whole.group(1).replace(",", "")) if whole else None
    return None


def words(text: str) -> str:
    """``text`` lowercased, accents and punctuation dropped, single spaces."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain).split())


def holds(answer: str, gold: Any) -> bool:
    """Whether ``answer`` holds one gold value."""
    number = as_number(gold)
    if number is not None:
        return any(close(n, number) for n in numbers_in(answer))
    wanted = words(str(gold))
    return bool(wanted) and f" {wanted} " in f" {words(answer)} "


def answer_matches(answer: str | None, gold: Sequence[Any]) -> bool:
    """Whether ``answer`` holds every gold value (an empty or missing answer holds none)."""
    if not answer or not gold:
        return False
    return all(holds(answer, g) for g in gold)


def same_argument(value: Any, gold: Any) -> bool:
    """Whether an executed call's argument equals the gold one (see the module doc)."""
    a, b = as_number(value), as_number(gold)
    if a is not None and b is not None:
        return close(a, b)
    if value is None or gold is None:
        return value is gold
    return re.sub(r"\s+", "", str(value).lower()) == re.sub(r"\s+", "", str(gold).lower())


def calls_cover(executed: Sequence[dict[str, Any]], gold: Sequence[dict[str, Any]]) -> bool:
    """Whether the executed calls (``{"name", "arguments"}``) cover the gold calls
    (``{"name", "arguments", "key"}``, their arguments concrete values)."""
    used: set[int] = set()
    for want in gold:
        keys = want.get("key", list(want["arguments"]))
        for i, call in enumerate(executed):
            if i in used or call.get("name") != want["name"]:
                continue
            args = call.get("arguments") or {}
            if all(k in args and same_argument(args[k], want["arguments"][k]) for k in keys):
                used.add(i)
                break
        else:
            return False
    return True
