"""The `toolpath` command, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def toolpath(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toolpath.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_help_explains_every_command():
    top = toolpath("--help")
    assert top.returncode == 0
    assert "run" in top.stdout and "models" in top.stdout
    run = toolpath("run", "--help")
    assert "--model" in run.stdout and "--tools" in run.stdout and "Model spec" in run.stdout
    models = toolpath("models", "--help")
    for sub in ("list", "pull", "path"):
        assert sub in models.stdout


def test_unknown_model_spec_exits_2_with_one_line():
    res = toolpath("run", "hi", "--model", "bogus:thing")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "unknown model spec 'bogus:thing'" in res.stderr
    assert "local:qwen2.5-coder-0.5b" in res.stderr  # says what would work


def test_unknown_tool_exits_2():
    res = toolpath("run", "hi", "--tools", "nope", "--model", "bogus:x")
    assert res.returncode == 2
    assert "nope" in res.stderr and "calculator" in res.stderr


def test_missing_model_file_exits_3(tmp_path):
    res = toolpath("models", "path", str(tmp_path / "absent.gguf"))
    assert res.returncode == 3
    assert res.stderr.startswith("error: ") and res.stderr.strip().count("\n") == 0


def test_unknown_registry_name_exits_2():
    res = toolpath("models", "path", "qwen-unknown")
    assert res.returncode == 2
    assert "qwen2.5-coder-1.5b" in res.stderr  # lists the known names


@pytest.mark.model
def test_models_path_joins_the_installed_parts(tmp_path):
    res = toolpath(
        "models", "path", "qwen2.5-coder-0.5b", env={"TOOLPATH_CACHE_DIR": str(tmp_path)}
    )
    assert res.returncode == 0, res.stderr
    assert Path(res.stdout.strip()) == tmp_path / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def test_unreachable_endpoint_exits_5_after_retries():
    res = toolpath("run", "hi", "--model", "openai:any@http://127.0.0.1:9/v1", timeout=120)
    assert res.returncode == 5
    assert res.stderr.strip().count("\n") == 0
    assert "127.0.0.1:9" in res.stderr


def test_models_list():
    res = toolpath("models", "list")
    assert res.returncode == 0
    assert "qwen2.5-coder-1.5b" in res.stdout and "qwen2.5-coder-0.5b" in res.stdout


@pytest.mark.model
def test_run_answers_with_a_real_calculator_call(local_model_path):
    cache = str(Path(local_model_path).parent)
    res = toolpath(
        "run",
        "What is 1234 * 5678? Use the calculator.",
        "--model",
        "local:qwen2.5-coder-0.5b",
        env={"TOOLPATH_CACHE_DIR": cache},
    )
    assert res.returncode == 0, res.stderr
    assert "7006652" in res.stdout.replace(",", "")
    assert "tool Observation from calculator: 7006652" in res.stderr


def test_solve_refuses_an_empty_question():
    res = toolpath("solve", "   ", "--model", "bogus:x")
    assert res.returncode == 2
    assert "question is empty" in res.stderr


def test_eval_refuses_unknown_benchmark_and_method():
    bad_bench = toolpath("eval", "gsm9k", "--model", "bogus:x")
    assert bad_bench.returncode == 2 and "gsm8k" in bad_bench.stderr
    bad_method = toolpath("eval", "gsm8k", "--method", "dotamath,magic")
    assert bad_method.returncode == 2 and "magic" in bad_method.stderr


def test_a_usage_error_is_one_message_not_a_traceback():
    res = toolpath("run", "hi", "--bogus-option")
    assert res.returncode == 2
    assert "No such option" in res.stderr and "Traceback" not in res.stderr


def test_solve_and_eval_help():
    assert "boxed" in toolpath("solve", "--help").stdout
    group = toolpath("eval", "--help").stdout
    assert all(name in group for name in ("gsm8k", "math500", "costa", "retrieval"))
    help_text = toolpath("eval", "gsm8k", "--help").stdout
    assert "resumes" in help_text and "--limit" in help_text


def test_costa_refuses_an_unreadable_image(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    res = toolpath("costa", "Crop to the left half", "--image", str(text), "--model", "bogus:x")
    assert res.returncode == 2
    assert "notes.png" in res.stderr and res.stderr.strip().count("\n") == 0


def test_run_with_a_catalog_checks_the_retriever_before_loading_a_model(tmp_path):
    catalog = tmp_path / "tools.json"
    catalog.write_text('[{"name": "ping", "description": "Ping a host.", "parameters": {}}]')
    res = toolpath("run", "hi", "--catalog", str(catalog), "--retriever", "magic", "-m", "bogus:x")
    assert res.returncode == 2 and "dense or bm25" in res.stderr


def test_run_help_names_the_roles():
    text = toolpath("run", "--help").stdout
    assert all(opt in text for opt in ("--planner", "--caller", "--summarizer", "--catalog"))
