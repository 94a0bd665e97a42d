"""A safe arithmetic calculator tool.

The expression is parsed with :func:`ast.parse` and its tree walked by hand: only numbers,
the operators ``+ - * / // % **``, the constants ``pi e tau`` and a whitelist of functions are
allowed. Nothing is ever evaluated as Python code. Limits on the input length, the nesting, the
exponents and the sizes of integers keep every calculation small and fast.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from toolpath.errors import ToolError
from toolpath.tools.base import tool

Number = int | float

MAX_LENGTH = 500
"""Longest expression accepted, in characters."""
MAX_DEPTH = 200
"""Deepest expression tree accepted (a sum of 200 terms is 200 deep)."""
MAX_EXPONENT = 10_000
"""Largest integer exponent for an integer base other than 0, 1 and -1."""
MAX_FACTORIAL = 5_000
"""Largest argument of ``factorial`` (and of ``perm`` with one argument)."""
MAX_BITS = 200_000
"""Largest integer, in bits, that any step may produce (about 60,000 decimal digits)."""
PRINT_DIGITS = 4_000
"""Integers with more digits than this are printed approximately, in scientific notation."""
_PRINT_LIMIT = 10**PRINT_DIGITS

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}

FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    # name: (function, fewest arguments, most arguments or None for any number)
    "sqrt": (math.sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "log": (math.log, 1, 2),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "exp": (math.exp, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "factorial": (math.factorial, 1, 1),
    "min": (lambda *a: min(a), 1, None),
    "max": (lambda *a: max(a), 1, None),
    "gcd": (math.gcd, 1, None),
    "lcm": (math.lcm, 1, None),
    "comb": (math.comb, 2, 2),
    "perm": (math.perm, 1, 2),
    "hypot": (math.hypot, 1, None),
}
_WHOLE_ONLY = {"factorial", "gcd", "lcm", "comb", "perm"}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_SYMBOLS: dict[type[ast.AST], str] = {ast.BitAnd: "&", ast.BitOr: "|", ast.LShift: "<<"}
_SYMBOLS |= {ast.RShift: ">>", ast.MatMult: "@", ast.Not: "not", ast.Invert: "~"}
_HELP = "use numbers, + - * / // % ** ( ), pi, e, tau and the functions " + ", ".join(FUNCTIONS)


def _error(message: str) -> ToolError:
    return ToolError(f"calculator: {message}")


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression. Anything else raises :class:`ToolError`."""
    text = expression.strip()
    if not text:
        raise _error(f"the expression is empty; {_HELP}")
    if len(text) > MAX_LENGTH:
        raise _error(f"the expression has {len(text)} characters; the limit is {MAX_LENGTH}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = getattr(exc, "msg", None) or type(exc).__name__
        raise _error(f"cannot parse {text[:80]!r}: {reason}") from None
    return _eval(tree.body, 0)


def format_number(value: Number) -> str:
    """Exact text for integers, 12 significant digits for floats."""
    if isinstance(value, float):
        return "0" if value == 0 else format(value, ".12g")
    size = abs(value)
    if size < _PRINT_LIMIT:
        return str(value)
    exp10 = int(size.bit_length() * math.log10(2))  # within one of floor(log10(size))
    while 10**exp10 > size:
        exp10 -= 1
    while 10 ** (exp10 + 1) <= size:
        exp10 += 1
    lead = str(size // 10 ** (exp10 - 11))  # the first 12 digits, truncated
    sign = "-" if value < 0 else ""
    return f"≈{sign}{lead[0]}.{lead[1:].rstrip('0') or '0'}e+{exp10}"


def _eval(node: ast.AST, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise _error(f"the expression is nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, ast.Constant):
        return _literal(node.value)
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        hint = f" (call it, e.g. {node.id}(2))" if node.id in FUNCTIONS else ""
        raise _error(f"unknown name '{node.id}'{hint}; the constants are pi, e, tau")
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.UAdd | ast.USub):
            raise _error(f"unsupported operator '{_SYMBOLS.get(type(node.op), '?')}'; {_HELP}")
        value = _eval(node.operand, depth + 1)
        return value if isinstance(node.op, ast.UAdd) else -value
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.BitXor):
            raise _error("'^' is not a power here; use ** for powers (e.g. 2**10)")
        if type(node.op) not in _BINARY:
            raise _error(f"unsupported operator '{_SYMBOLS.get(type(node.op), '?')}'; {_HELP}")
        left, right = _eval(node.left, depth + 1), _eval(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _checked(lambda: _BINARY[type(node.op)](left, right), "the result")
    if isinstance(node, ast.Call):
        return _call(node, depth)
    if isinstance(node, ast.Tuple):
        raise _error("commas only separate function arguments; write 1000, not 1,000")
    raise _error(f"unsupported syntax '{type(node).__name__}' — {_HELP}")


def _literal(value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "complex numbers are" if isinstance(value, complex) else f"{value!r} is"
        raise _error(f"{kind} not supported; {_HELP}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _error("a number in the expression is too large for a float")
    return value


def _check_power(base: Number, exponent: Number) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int)) or abs(base) <= 1:
        return  # float powers overflow with an error instead of growing without bound
    if abs(exponent) > MAX_EXPONENT:
        raise _error(f"the exponent {exponent} is too large (the limit is {MAX_EXPONENT})")
    if exponent > 0 and abs(base).bit_length() * exponent > MAX_BITS:
        raise _error("the result of ** would be too large")


def _call(node: ast.Call, depth: int) -> Number:
    if not isinstance(node.func, ast.Name):
        raise _error(f"unsupported syntax '{type(node.func).__name__}' — {_HELP}")
    name = node.func.id
    if name not in FUNCTIONS:
        raise _error(f"unknown function '{name}'; the functions are {', '.join(FUNCTIONS)}")
    fn, fewest, most = FUNCTIONS[name]
    if node.keywords:
        raise _error(f"{name}() takes no keyword arguments")
    if not fewest <= len(node.args) <= (most or len(node.args)):
        wanted = f"{fewest}" if fewest == most else f"{fewest} to {most}" if most else f"{fewest}+"
        raise _error(f"{name}() takes {wanted} argument(s), got {len(node.args)}")
    args = [_eval(arg, depth + 1) for arg in node.args]
    if name in _WHOLE_ONLY:
        args = [_whole(name, a) for a in args]
    elif name == "round" and len(args) == 2:
        args[1] = _whole(name, args[1])
    _check_call(name, args)
    return _checked(lambda: fn(*args), f"{name}()")


def _whole(name: str, value: Number) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise _error(f"{name}() needs whole numbers, got {format_number(value)}")
        return int(value)
    return value


def _check_call(name: str, args: list[Any]) -> None:
    """Refuse calls whose result would be needlessly huge or slow to compute."""
    n = args[0]
    if name == "factorial" or (name == "perm" and len(args) == 1):
        if n > MAX_FACTORIAL:
            raise _error(f"{name}() is limited to arguments up to {MAX_FACTORIAL}")
    elif name in ("perm", "comb") and 0 <= args[1] <= n:
        k = args[1] if name == "perm" else min(args[1], n - args[1])
        if k * n.bit_length() > MAX_BITS:
            raise _error(f"the result of {name}() would be too large")
    elif name == "lcm" and sum(abs(a).bit_length() for a in args) > MAX_BITS:
        raise _error("the result of lcm() would be too large")
    elif name == "round" and len(args) == 2 and abs(args[1]) > 300:
        raise _error("round() takes between -300 and 300 digits")


def _checked(compute: Callable[[], Any], what: str) -> Number:
    """Run one step, turning math errors into ToolErrors and refusing huge or non-real results."""
    try:
        value = compute()
    except ZeroDivisionError:
        raise _error("division by zero") from None
    except OverflowError:
        raise _error(f"{what} is too large") from None
    except (ValueError, TypeError) as exc:
        raise _error(f"{what}: {exc}") from None
    if isinstance(value, complex):
        raise _error(f"{what} is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _error(f"{what} is too large" if math.isinf(value) else f"{what} is not a number")
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise _error(f"{what} is too large (more than {MAX_BITS} bits)")
    return value


@tool(timeout=10.0)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression and return the result (integers are exact).

    Supports numbers, + - * / // % ** and parentheses, the constants pi, e, tau, and the
    functions sqrt, abs, round, floor, ceil, log (log(x) or log(x, base)), log10, log2, exp,
    sin, cos, tan, asin, acos, atan (radians), factorial, min, max, gcd, lcm, comb, perm, hypot.
    Use ** for powers, not ^.

    Args:
        expression: The expression to evaluate, e.g. "1234 * 5678" or "(2 + 3) * sqrt(16)".
    """
    return format_number(evaluate(expression))
