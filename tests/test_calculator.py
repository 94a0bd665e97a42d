"""The built-in calculator: exact results, and every way an expression is refused."""

from __future__ import annotations

import math
import time

import pytest

from toolpath.errors import ToolError
from toolpath.tools.calculator import (
    FUNCTIONS,
    MAX_LENGTH,
    calculator,
    evaluate,
    format_number,
)


def calc(expression: str) -> str:
    return calculator.run({"expression": expression})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1234*5678", "7006652"),
        ("  1234 * 5678  ", "7006652"),
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("2 ** 3 ** 2", "512"),
        ("-2 ** 2", "-4"),
        ("(-2) ** 2", "4"),
        ("+-+3", "-3"),
        ("10 - 4 - 3", "3"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("-7 % 3", "2"),
        ("10 / 4", "2.5"),
        ("10 / 2", "5"),
        ("1 / 3", "0.333333333333"),
        ("0.1 + 0.2", "0.3"),
        ("2 ** -2", "0.25"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("99999999999999999999 + 1", "100000000000000000000"),
        ("1e3", "1000"),
        ("1.5e-7 * 2", "3e-07"),
        ("1e20 * 10", "1e+21"),
        ("-0.0", "0"),
        ("1_000 + 1", "1001"),
        ("pi", "3.14159265359"),
        ("e", "2.71828182846"),
        ("tau / 2", "3.14159265359"),
        ("sqrt(16)", "4"),
        ("sqrt(2)", "1.41421356237"),
        ("abs(-3)", "3"),
        ("round(2.5)", "2"),
        ("round(3.14159, 2)", "3.14"),
        ("round(1234, -2)", "1200"),
        ("floor(-2.5)", "-3"),
        ("ceil(2.1)", "3"),
        ("log(e)", "1"),
        ("log(8, 2)", "3"),
        ("log10(1000)", "3"),
        ("log2(1024)", "10"),
        ("exp(0)", "1"),
        ("sin(pi / 2)", "1"),
        ("cos(0)", "1"),
        ("tan(0)", "0"),
        ("asin(1)", "1.57079632679"),
        ("acos(1)", "0"),
        ("atan(1) * 4", "3.14159265359"),
        ("factorial(20)", "2432902008176640000"),
        ("factorial(10 / 2)", "120"),
        ("min(3, -1, 2)", "-1"),
        ("max(3, -1, 2.5)", "3"),
        ("min(7)", "7"),
        ("gcd(12, 18)", "6"),
        ("lcm(4, 6)", "12"),
        ("comb(5, 2)", "10"),
        ("perm(5, 2)", "20"),
        ("perm(4)", "24"),
        ("hypot(3, 4)", "5"),
        ("sqrt(3**2 + 4**2) * (1 + 1)", "10"),
    ],
)
def test_results(expression: str, expected: str) -> None:
    assert calc(expression) == expected


def test_integers_stay_exact() -> None:
    assert evaluate("3 ** 200") == 3**200
    assert isinstance(evaluate("2 * 3"), int)
    assert isinstance(evaluate("6 / 3"), float)
    assert calc("factorial(25)") == "15511210043330985984000000"


def test_long_sum_is_fine() -> None:
    expression = "+".join(["1"] * 200)
    assert calc(expression) == "200"


def test_huge_integers_print_approximately() -> None:
    assert calc("factorial(5000)") == "≈4.2285779266e+16325"
    assert calc("-(7 ** 10000)") == "≈-9.55872885674e+8450"
    assert format_number(10**5000) == "≈1.0e+5000"
    assert format_number(10**3999) == "1" + "0" * 3999


def test_description_lists_every_function() -> None:
    for name in FUNCTIONS:
        assert name in calculator.description
    assert calculator.parameters["required"] == ["expression"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "calculator: division by zero"),
        ("1 // 0", "calculator: division by zero"),
        ("5 % 0", "calculator: division by zero"),
        ("0 ** -1", "calculator: division by zero"),
        ("log(8, 1)", "calculator: division by zero"),
        ("2 ^ 3", "calculator: '^' is not a power here; use ** for powers (e.g. 2**10)"),
        ("2 & 3", "calculator: unsupported operator '&'"),
        ("1 << 10000000", "calculator: unsupported operator '<<'"),
        ("~1", "calculator: unsupported operator '~'"),
        ("not 1", "calculator: unsupported operator 'not'"),
        (
            "__import__('os')",
            "calculator: unknown function '__import__'; the functions are sqrt, abs",
        ),
        ("__import__", "calculator: unknown name '__import__'; the constants are pi, e, tau"),
        ("x + 1", "calculator: unknown name 'x'; the constants are pi, e, tau"),
        ("sqrt", "calculator: unknown name 'sqrt' (call it, e.g. sqrt(2))"),
        ("eval('1')", "calculator: unknown function 'eval'"),
        ("(1).real", "calculator: unsupported syntax 'Attribute' — use numbers, + - * / // % **"),
        ("math.sqrt(4)", "calculator: unsupported syntax 'Attribute' — use numbers"),
        ("().__class__", "calculator: unsupported syntax 'Attribute'"),
        ("lambda: 1", "calculator: unsupported syntax 'Lambda'"),
        ("[1, 2]", "calculator: unsupported syntax 'List'"),
        ("(lambda: 1)()", "calculator: unsupported syntax 'Lambda'"),
        ("1 if 1 else 2", "calculator: unsupported syntax 'IfExp'"),
        ("1 < 2", "calculator: unsupported syntax 'Compare'"),
        ("'a' * 3", "calculator: 'a' is not supported"),
        ("True + 1", "calculator: True is not supported"),
        ("2j", "calculator: complex numbers are not supported"),
        ("1,000", "calculator: commas only separate function arguments; write 1000, not 1,000"),
        ("max(*[1])", "calculator: unsupported syntax 'Starred'"),
        ("round(2.5, ndigits=1)", "calculator: round() takes no keyword arguments"),
        ("sqrt(1, 2)", "calculator: sqrt() takes 1 argument(s), got 2"),
        ("log()", "calculator: log() takes 1 to 2 argument(s), got 0"),
        ("max()", "calculator: max() takes 1+ argument(s), got 0"),
        ("sqrt(-1)", "calculator: sqrt(): math domain error"),
        ("factorial(-1)", "calculator: factorial(): factorial() not defined for negative values"),
        ("factorial(2.5)", "calculator: factorial() needs whole numbers, got 2.5"),
        ("round(1, 0.5)", "calculator: round() needs whole numbers, got 0.5"),
        ("(-8) ** (1 / 3)", "calculator: the result is not a real number"),
        ("", "calculator: the expression is empty"),
        ("   ", "calculator: the expression is empty"),
        ("1 +", "calculator: cannot parse '1 +': invalid syntax"),
        ("import os", "calculator: cannot parse 'import os': invalid syntax"),
        ("1e999", "calculator: a number in the expression is too large for a float"),
    ],
)
def test_rejections(expression: str, message: str) -> None:
    with pytest.raises(ToolError) as info:
        calc(expression)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("9 ** 9 ** 9", "calculator: the exponent 387420489 is too large (the limit is 10000)"),
        ("2 ** 10001", "calculator: the exponent 10001 is too large (the limit is 10000)"),
        ("(10 ** 9000) ** 10", "calculator: the result of ** would be too large"),
        ("factorial(5001)", "calculator: factorial() is limited to arguments up to 5000"),
        ("factorial(10 ** 100)", "calculator: factorial() is limited to arguments up to 5000"),
        ("perm(100000)", "calculator: perm() is limited to arguments up to 5000"),
        ("comb(10 ** 6, 5 * 10 ** 5)", "calculator: the result of comb() would be too large"),
        ("perm(10 ** 6, 10 ** 5)", "calculator: the result of perm() would be too large"),
        ("lcm(" + ", ".join(["10 ** 9000 + 1"] * 30) + ")", "calculator: the result of lcm()"),
        ("round(5, -10 ** 9)", "calculator: round() takes between -300 and 300 digits"),
        (
            "*".join(["(10 ** 9000)"] * 30),
            "calculator: the result is too large (more than 200000 bits)",
        ),
        ("10.0 ** 400", "calculator: the result is too large"),
        ("1e308 * 10", "calculator: the result is too large"),
        ("exp(1000)", "calculator: exp() is too large"),
        ("sin(10 ** 400)", "calculator: sin() is too large"),
        ("(10 ** 400) / 3", "calculator: the result is too large"),
        ("-" * 250 + "1", "calculator: the expression is nested more than 200 levels deep"),
        ("(" * 250 + "1" + ")" * 250, "calculator: the expression has 501 characters"),
        ("(" * 201 + "1" + ")" * 201, "calculator: cannot parse"),
        ("1+" * 250 + "1", "calculator: the expression has 501 characters; the limit is 500"),
    ],
)
def test_resource_guards(expression: str, message: str) -> None:
    start = time.monotonic()
    with pytest.raises(ToolError) as info:
        calc(expression)
    assert str(info.value).startswith(message), str(info.value)
    assert time.monotonic() - start < 2


def test_length_limit_boundary() -> None:
    assert MAX_LENGTH == 500
    assert calc("1" * 500) == "1" * 500
    with pytest.raises(ToolError, match="has 501 characters"):
        calc("1" * 501)


def test_fine_small_powers_and_floats() -> None:
    assert calc("1 ** 1000000") == "1"
    assert calc("(-1) ** 1000001") == "-1"
    assert calc("0 ** 100000") == "0"
    assert calc("1.0001 ** 20000") == format(1.0001**20000, ".12g")
    assert math.isclose(float(calc("2 ** 0.5")), math.sqrt(2), rel_tol=1e-11)


def test_arguments_are_validated_and_numbers_coerced() -> None:
    assert calculator.run({"expression": 42}) == "42"
    with pytest.raises(ToolError, match="calculator: missing required argument 'expression'"):
        calculator.run({"expr": "1+1"})


def test_calculator_is_still_a_function() -> None:
    assert calculator("6 * 7") == "42"
