"""Every script in examples/ runs, on the embedded 0.5B model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXPECT = {
    "tool_agent.py": "answer:",
    "math_agent.py": "answer:",
    "subgraph.py": "after 1 tool call",
    "eval_from_python.py": "dotamath: lenient",
}
ENV = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent)}


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_example_imports_and_shows_its_help(name, tmp_path):
    """Without a model: the script's imports resolve and its options parse."""
    res = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=ENV,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "--model" in res.stdout


@pytest.mark.model
@pytest.mark.parametrize("name", sorted(EXPECT))
def test_example_runs(name, local_model_path, tmp_path):
    args = [sys.executable, str(EXAMPLES / name), "--model", f"local:{local_model_path}"]
    if name == "eval_from_python.py":
        args += ["--out", str(tmp_path / "run"), "--limit", "1"]
    res = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    assert EXPECT[name] in res.stdout
