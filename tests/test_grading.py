"""Tests of the ToRA-style math grader: extraction, normalization, strict and lenient checks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolpath.evals.math import grading
from toolpath.evals.math.grading import (
    Grade,
    extract_answer,
    extract_boxed,
    grade,
    gsm8k_gold,
    is_equiv,
    is_strict,
    normalize,
    shutdown,
)

pytest.importorskip("math_verify")

DATA = Path("/work/shared/data")

# (pred, gold, lenient, strict)
TABLE: list[tuple[str, str, bool, bool]] = [
    # fractions
    ("\\frac{1}{2}", "1/2", True, True),
    ("0.5", "\\frac{1}{2}", True, True),
    ("\\dfrac12", "\\frac{1}{2}", True, True),
    ("\\frac 34", "0.75", True, True),
    ("\\tfrac{3}{4}", "3/4", True, True),
    ("0.3333", "\\frac{1}{3}", True, False),
    ("\\frac{1}{3}", "0.3", False, False),
    ("1\\frac{4}{5}", "\\frac{9}{5}", True, True),
    # roots
    ("2\\sqrt{2}", "\\sqrt{8}", True, False),
    ("11\\sqrt2", "11\\sqrt{2}", True, True),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", True, False),
    ("\\sqrt{2}", "1.41421", True, False),
    ("\\sqrt{3}", "\\sqrt{2}", False, False),
    # intervals
    ("[-2, 7)", "[-2,7)", True, True),
    ("(-2,7)", "[-2,7)", False, False),
    ("x \\in [-2,7]", "[-2,7]", True, True),
    ("(-\\infty, 0]", "(-\\infty,0]", True, True),
    ("(0,9) \\cup (9,36)", "(0,9)\\cup(9,36)", True, True),
    ("(0,9] \\cup (9,36)", "(0,9)\\cup(9,36)", False, False),
    (
        "\\left(\\frac35,\\frac{8}{3}\\right]",
        "\\left(\\frac{3}{5},\\frac{8}{3}\\right]",
        True,
        True,
    ),
    # units, degrees, percent
    ("5\\text{ cm}", "5", True, True),
    ("864 \\mbox{ inches}^2", "864", True, True),
    ("90^\\circ", "90", True, True),
    ("90^{\\circ}", "90", True, True),
    ("10\\%", "10", True, True),
    ("0.1", "10\\%", False, False),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", True, True),
    ("18 dollars", "18", True, True),
    ("18 dollars.", "\\$18.00", True, True),
    # text answers and choices
    ("\\text{Evelyn}", "Evelyn", True, True),
    ("evelyn", "\\text{Evelyn}", True, True),
    ("\\text{Evlyne}", "\\text{Evelyn}", False, False),
    ("(C)", "\\text{(C)}", True, True),
    ("(B)", "\\text{(C)}", False, False),
    # thousands separators and money
    ("1,000", "1000", True, True),
    ("1,\\!000", "1000", True, True),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100", True, True),
    ("\\$18.90", "18.9", True, True),
    ("\\$32,\\!348", "32348", True, True),
    ("1, 2", "12", False, False),
    # negatives, assignments
    ("-50", "-50", True, True),
    ("-3", "3", False, False),
    ("x=5", "5", True, True),
    ("k = -2", "-2", True, True),
    # tuples and coordinates
    ("(3,\\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)", True, False),
    ("(0.5, 3)", "\\left( \\frac{1}{2}, 3 \\right)", True, True),
    ("(1,2)", "(2,1)", False, False),
    ("(1,2)", "[1,2]", False, False),
    ("-2,1", "1,-2", True, False),
    ("(6,31,-1)", "(6,31,-1)", True, True),
    # expressions, pi, complex, scientific
    ("x^2+2x+1", "(x+1)^2", True, False),
    ("x^2+2x", "(x+1)^2", False, False),
    ("2\\pi", "\\pi \\cdot 2", True, False),
    ("\\pi", "3.1416", True, False),
    ("3.14", "\\pi", False, False),
    ("6 - 5i", "6-5i", True, True),
    ("1.5e3", "1500", True, True),
    ("1.2\\times10^{-3}", "0.0012", True, True),
    (".35625", "0.35625", True, True),
    ("18.0", "18", True, True),
    ("\\cot x", "\\frac{\\cos x}{\\sin x}", True, False),
    ("4210_{5}", "4210_5", True, True),
    ("5x - 7y + 11z + 4 = 0", "5x-7y+11z+4=0", True, True),
]


@pytest.fixture(autouse=True, scope="module")
def _stop_worker() -> Iterator[None]:
    yield
    shutdown()


def test_table_is_large_enough() -> None:
    assert len(TABLE) >= 40


@pytest.mark.parametrize(("pred", "gold", "lenient", "strict"), TABLE)
def test_grading_table(pred: str, gold: str, lenient: bool, strict: bool) -> None:
    assert is_equiv(pred, gold) is lenient
    assert is_strict(pred, gold) is strict
    if strict:
        assert lenient, "a strict match must also be a lenient one"


def test_none_prediction_is_wrong() -> None:
    assert is_equiv(None, "5") is False
    assert is_strict(None, "5") is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\\frac12", "\\frac{1}{2}"),
        ("\\sqrt2", "\\sqrt{2}"),
        ("\\dfrac{3}{4}", "\\frac{3}{4}"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
        ("1,000", "1000"),
        ("(1,000)", "(1,000)"),
        ("1, 200", "1,200"),
        ("(2,12) \\cup (12,102)", "(2,12)\\cup(12,102)"),
        ("3/4", "\\frac{3}{4}"),
        ("0.50", "0.5"),
        ("5.", "5"),
        ("\\$18.90", "18.9"),
        ("\\text{(C)}", "C"),
        ("\\cot x", "\\cot x"),
        ("\\displaystyle \\frac{1}{2}", "\\frac{1}{2}"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_extract_boxed() -> None:
    assert extract_boxed("so \\boxed{\\frac{1}{2}} and \\boxed{\\frac{\\sqrt{3}}{2}}") == (
        "\\frac{\\sqrt{3}}{2}"
    )
    assert extract_boxed("\\fbox{7}") == "7"
    assert extract_boxed("$\\boxed 5$") == "5"
    assert extract_boxed("\\boxed{\\{1,2\\}}") == "\\{1,2\\}"
    assert extract_boxed("nothing here") is None


def test_extract_answer_order() -> None:
    text = "The answer is 3.\nSo \\boxed{4}."
    assert extract_answer(text, program_output="5") == "4"  # boxed wins
    assert extract_answer("Thus the final answer is $\\frac{1}{2}$.") == "\\frac{1}{2}"
    assert extract_answer("We get 7 apples. The answer is 12.", program_output="9") == "12"
    assert extract_answer("THE ANSWER IS 1,000. I hope it is correct.") == "1,000"
    assert extract_answer("I computed 7 things.", program_output="18\n42\n\n") == "42"
    assert extract_answer("She pays 3 * 4 = 12 dollars, so 1,250 in total.") == "1250"
    assert extract_answer("x = 10-4") == "4"
    assert extract_answer("The result is -7") == "-7"
    assert extract_answer("no digits at all") is None
    assert extract_answer("") is None


def test_extract_answer_nested_braces() -> None:
    text = "Hence $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$ is the point."
    assert extract_answer(text) == "\\left( 3, \\frac{\\pi}{2} \\right)"


# Real lines from /work/shared/data/gsm8k/test.jsonl.
GSM8K_LINES = [
    (
        "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 "
        "every day at the farmer’s market.\n#### 18",
        "18",
    ),
    ("It takes 2/2=<<2/2=1>>1 bolt of white fiber\nSo the total is 2+1=<<2+1=3>>3\n#### 3", "3"),
]


@pytest.mark.parametrize(("field", "expected"), GSM8K_LINES)
def test_gsm8k_gold_literal(field: str, expected: str) -> None:
    assert gsm8k_gold(field) == expected


def test_gsm8k_gold_commas_and_errors() -> None:
    assert gsm8k_gold("so...\n#### 1,450,000") == "1450000"
    assert gsm8k_gold("#### -10") == "-10"
    with pytest.raises(ValueError):
        gsm8k_gold("no marker")


def test_gsm8k_gold_on_the_data() -> None:
    path = DATA / "gsm8k" / "test.jsonl"
    if not path.exists():
        pytest.skip("GSM8K data not present")
    rows = [json.loads(line) for line in path.read_text().splitlines()[:200]]
    assert gsm8k_gold(rows[0]["answer"]) == "18"
    assert gsm8k_gold(rows[2]["answer"]) == "70000"
    for row in rows:
        gold = gsm8k_gold(row["answer"])
        float(gold)  # every gold answer is a plain number
        assert is_strict(gold, gold)


def test_math500_first_50_self_consistent() -> None:
    path = DATA / "math500" / "test.jsonl"
    if not path.exists():
        pytest.skip("MATH-500 data not present")
    rows = [json.loads(line) for line in path.read_text().splitlines()[:50]]
    assert len(rows) == 50
    not_self = [r["answer"] for r in rows if not (is_strict(r["answer"], r["answer"]))]
    not_self += [r["answer"] for r in rows if not is_equiv(r["answer"], r["answer"])]
    extracted_bad = [
        (r["answer"], extract_answer(r["solution"]))
        for r in rows
        if not is_equiv(extract_answer(r["solution"]), r["answer"])
    ]
    print(f"MATH-500[:50]: {len(extracted_bad)} extracted answers not equivalent to gold")
    assert not_self == []
    assert extracted_bad == []


def test_grade() -> None:
    result = grade("We find $x=\\boxed{\\frac{\\sqrt{8}}{2}}$.", "\\sqrt{2}")
    assert result == Grade(
        predicted="\\frac{\\sqrt{8}}{2}", gold="\\sqrt{2}", strict=False, lenient=True
    )
    result = grade("print(x)", "42", program_output="42\n")
    assert (result.predicted, result.strict, result.lenient) == ("42", True, True)
    assert grade("no idea", "3") == Grade(predicted=None, gold="3", strict=False, lenient=False)


def test_is_equiv_from_threads() -> None:
    results: list[bool] = []
    errors: list[BaseException] = []

    def work(pred: str) -> None:
        try:
            results.append(is_equiv(pred, "(x+1)^2"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in ("x^2+2x+1", "x^2+1", "x^2+2x+1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(results) == [False, True, True]


async def test_is_equiv_from_asyncio() -> None:
    import asyncio

    assert await asyncio.to_thread(is_equiv, "2\\sqrt{2}", "\\sqrt{8}") is True


def test_slow_sympy_times_out_in_the_worker() -> None:
    is_equiv("\\sqrt{8}", "2\\sqrt{2}")  # the worker is up
    worker = grading._WORKER
    start = time.monotonic()
    assert is_equiv("\\sin(x)^{200}+\\cos(x)^{200}", "1", timeout=1.0) is False
    assert time.monotonic() - start < 3.0
    assert grading._WORKER is worker  # its own alarm fired: no restart was needed


def test_hung_worker_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    shutdown()
    sleeper = "import time; print('ready', flush=True); time.sleep(120)"
    monkeypatch.setattr(grading, "_worker_argv", lambda: [sys.executable, "-c", sleeper])
    start = time.monotonic()
    assert is_equiv("x^2+2x+1", "(x+1)^2", timeout=0.5) is False
    assert time.monotonic() - start < 2.5
    assert grading._WORKER is None  # killed; the next call starts a fresh one
    monkeypatch.undo()
    assert is_equiv("x^2+2x+1", "(x+1)^2") is True


def test_shutdown_then_restart() -> None:
    assert is_equiv("\\frac{\\pi}{2}", "\\pi/2") is True
    shutdown()
    assert grading._WORKER is None
    assert is_equiv("\\frac{\\pi}{2}", "\\pi/2") is True


def test_import_is_cheap() -> None:
    code = (
        "import sys, toolpath.evals.math.grading as g; g.normalize('\\\\frac12'); "
        "print('sympy' in sys.modules or 'math_verify' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
