"""GSM8K-dev: train problems with new numbers, answers replayed from the solution's
annotations, and every unsafe case left out."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import pytest

from toolpath.evals.math.perturb import evaluate, perturb
from toolpath.evals.math.tasks import task

NATALIA = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?",
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
)
WENG = (
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
    "babysitting. How much did she earn?",
    "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\n"
    "Working 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10",
)
PERCENT = (  # the annotation uses .2 where the question says 20%: not replayable
    "A shirt costs $40 and is 20% off. What does it cost now?",
    "The discount is 40*.2=<<40*.2=8>>8.\nIt costs 40-8=<<40-8=32>>32.\n#### 32",
)


def test_evaluate_is_exact_and_only_arithmetic():
    assert (
        evaluate("48/2") == 24 and evaluate("0.2*50") == 10 and evaluate("12/60") == Fraction(1, 5)
    )
    assert evaluate("-(3+4)*2") == -14 and evaluate("3 x 4") == 12
    for bad in ("2**3", "__import__('os')", "a+1", "1/0"):
        with pytest.raises(ValueError):
            evaluate(bad)


def test_a_variant_changes_the_inputs_and_replays_the_arithmetic():
    for seed in range(30):
        v = perturb(*NATALIA, random.Random(seed))
        assert v is not None and list(v.changed) == ["48"]
        n = int(v.changed["48"])
        assert f" {n} of her friends" in v.question and n != 48 and n % 2 == 0  # half stays whole
        assert v.answer == str(n + n // 2)
    v = perturb(*WENG, random.Random(3))
    assert v is not None
    rate, minutes = int(v.changed.get("12", 12)), int(v.changed.get("50", 50))
    assert Fraction(rate, 60) * minutes == Fraction(v.answer) and v.answer != "10"
    assert perturb(*NATALIA, random.Random(7)) == perturb(*NATALIA, random.Random(7))


def test_unsafe_problems_are_left_out():
    assert perturb(*PERCENT, random.Random(0)) is None
    wrong = (NATALIA[0], NATALIA[1].replace("<<48/2=24>>", "<<48/2=25>>"))
    assert perturb(*wrong, random.Random(0)) is None  # an annotation that does not hold
    assert perturb(NATALIA[0], "no annotations\n#### 72", random.Random(0)) is None
    words = ("Tom has three boxes of 3 pens. How many pens?", "3*3=<<3*3=9>>9\n#### 9")
    assert perturb(*words, random.Random(0)) is None  # 3 is also "three"


def test_the_dev_benchmark_is_made_from_train(tmp_path: Path):
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    sam = ("Sam has 30 apples and buys 14 more. How many does he have?", "<<30+14=44>>44\n#### 44")
    rows = [NATALIA, PERCENT, sam]
    lines = [json.dumps({"question": q, "answer": a}) for q, a in rows]
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    dev = list(task("gsm8k-dev").load(data=tmp_path))
    assert [e.id for e in dev] == ["gsm8k-dev-0000", "gsm8k-dev-0002"]
    assert dev[0].meta["source"] == "gsm8k-train-0000" and dev[0].question != NATALIA[0]
    assert [e.id for e in task("gsm8k-dev").load(data=tmp_path, limit=1)] == ["gsm8k-dev-0000"]
    assert [e.gold for e in task("gsm8k-dev").load(data=tmp_path)] == [e.gold for e in dev]
