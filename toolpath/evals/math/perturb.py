"""GSM8K-dev: GSM8K train problems with their numbers changed and their answers recomputed.

A model trained on GSM8K's train split can remember those answers, so tuning on them rewards
memory as much as method (on the embedded Qwen2.5, train scores ran 5-10 points above test).
A GSM8K solution carries its arithmetic as ``<<expression=result>>`` annotations; this module
changes the question's numbers that the annotations use, replays the annotations with the new
values and takes the new answer from the same step the old one came from.

A problem is kept only when the replay is safe (everything else is left out, never guessed):

- every annotation evaluates to its stated result (plain arithmetic only);
- every number in an annotation is a question number, an earlier result or a small constant
  such as 2, 12, 60 or 100; no value is both a question number and an earlier result;
- a changed number's value does not also occur as a number word ("three", "half", "dozen");
- every recomputed result that was a whole number stays one, and none turns negative;
- the answer is the result of one annotation.
"""

from __future__ import annotations

import ast
import operator
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

_ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w])")
_LITERAL = re.compile(r"\d+(?:\.\d+)?")
CONSTANTS = frozenset(
    Fraction(n) for n in (*range(0, 13), 15, 20, 24, 25, 30, 50, 52, 60, 100, 365, 1000)
) | {Fraction(1, 2), Fraction(1, 4)}
"""Numbers an annotation may use without the question saying them (units, halves, percent)."""
WORDS = {
    "half": 2, "twice": 2, "double": 2, "triple": 3, "dozen": 12, "one": 1, "two": 2,
    "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "quarter": 4, "third": 3,
}  # fmt: skip
_OPS: dict[type, Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


@dataclass(frozen=True)
class Variant:
    """A changed problem: its question, its answer and which numbers changed."""

    question: str
    answer: str
    changed: dict[str, str]


def _value(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def evaluate(expression: str) -> Fraction:
    """An annotation's arithmetic, exactly (``+ - * /``, parentheses, unary minus); anything
    else is a ``ValueError``."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return Fraction(str(node.value))
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(f"not plain arithmetic: {ast.dump(node)[:40]}")

    try:
        return walk(ast.parse(expression.replace("x", "*").replace("÷", "/"), mode="eval"))
    except (SyntaxError, ZeroDivisionError) as exc:
        raise ValueError(str(exc)) from None


def _text(value: Fraction, like: str) -> str:
    if value.denominator == 1:
        number = int(value)
        return f"{number:,}" if "," in like else str(number)
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def perturb(question: str, solution: str, rng: random.Random) -> Variant | None:
    """A variant of the problem (see the module for when there is none)."""
    steps = _ANNOTATION.findall(solution)
    if not steps or "####" not in solution:
        return None
    try:
        results = [_value(r.strip()) for _, r in steps]
        if any(evaluate(e) != r for (e, _), r in zip(steps, results, strict=True)):
            return None
        gold = _value(solution.rsplit("####", 1)[1].strip())
    except (ValueError, ZeroDivisionError):
        return None
    if gold not in results:
        return None
    asked = {_value(m.group()) for m in _NUMBER.finditer(question)}
    if asked & set(results[:-1]) - CONSTANTS:
        return None
    words = {WORDS[w] for w in re.findall(r"[a-z]+", question.lower()) if w in WORDS}
    used: set[Fraction] = set()
    for i, (expression, _) in enumerate(steps):
        for literal in map(Fraction, _LITERAL.findall(expression)):
            if literal not in asked and literal not in results[:i] and literal not in CONSTANTS:
                return None
            if literal in asked:
                used.add(literal)
    movable = [v for v in sorted(used) if v.denominator == 1 and v > 1 and v not in words]
    if not movable:
        return None
    for _ in range(20):
        mapping = {v: _moved(v, rng) for v in movable}
        replayed = _replay(steps, results, mapping)
        if replayed is not None and replayed[results.index(gold)] != gold:
            new_gold = replayed[results.index(gold)]
            return Variant(_rewrite(question, mapping), _text(new_gold, ""), _shown(mapping))
    return None


def _moved(value: Fraction, rng: random.Random) -> Fraction:
    spread = max(1, int(value) // 3)
    while True:
        new = int(value) + rng.randint(-spread, spread)
        if new >= 2 and new != value:
            return Fraction(new)


def _replay(
    steps: list[tuple[str, str]], results: list[Fraction], mapping: dict[Fraction, Fraction]
) -> list[Fraction] | None:
    """The annotations' results with ``mapping`` applied to the question's numbers and each
    earlier result replaced by its new value; ``None`` when a result stops being sensible."""
    earlier: dict[Fraction, Fraction] = {}
    out: list[Fraction] = []
    for (expression, _), old in zip(steps, results, strict=True):

        def swap(m: re.Match[str]) -> str:
            v = Fraction(m.group())
            new = mapping.get(v, earlier.get(v, v))
            return f"({new.numerator}/{new.denominator})"

        try:
            new = evaluate(_LITERAL.sub(swap, expression))
        except ValueError:
            return None
        if (old.denominator == 1 and new.denominator != 1) or (old >= 0 > new):
            return None
        earlier.setdefault(old, new)
        out.append(new)
    return out


def _rewrite(question: str, mapping: dict[Fraction, Fraction]) -> str:
    def swap(m: re.Match[str]) -> str:
        new = mapping.get(_value(m.group()))
        return m.group() if new is None else _text(new, m.group())

    return _NUMBER.sub(swap, question)


def _shown(mapping: dict[Fraction, Fraction]) -> dict[str, str]:
    return {_text(old, ""): _text(new, "") for old, new in mapping.items()}
