"""The `toolpath` command: run as a real subprocess, and in process (help, parsing, builders)."""

from __future__ import annotations

import json
import os
import re
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
    assert res.returncode == 2 and "trained or trained-hybrid" in res.stderr


def test_run_help_names_the_roles():
    text = toolpath("run", "--help").stdout
    assert all(opt in text for opt in ("--planner", "--caller", "--summarizer", "--catalog"))


# --- in process: the app's shape, every documented command line, the builder `run` picks ------

VERBS = [
    "run",
    "solve",
    "chat",
    "costa",
    "eval",
    "export",
    "web",
    "index",
    "tools",
    "mcp",
    "trace",
    "models",
]
COMMANDS = [
    ["run"],
    ["solve"],
    ["chat"],
    ["costa"],
    ["models", "list"],
    ["models", "pull"],
    ["models", "path"],
    ["index", "build"],
    ["tools", "list"],
    ["mcp", "serve"],
    ["trace", "view"],
    ["export", "sft"],
    ["web", "generate"],
    *(
        ["eval", name]
        for name in (
            "gsm8k",
            "gsm8k-train",
            "gsm8k-dev",
            "math500",
            "math",
            "costa",
            "toolbench-static",
            "retrieval",
            "miniwob",
            "compwob",
        )
    ),
]
DOCUMENTED = [  # README.md and docs/api.md
    'run "What is 1234 * 5678? Use the calculator." --tools calculator --model local:qwen2.5-coder-0.5b',
    'run "What is 17 * 23?" --model openai:Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000/v1',
    'run "..." --catalog tools.json --planner local --caller local:qwen2.5-coder-0.5b',
    "chat",
    "chat --agent math --model local",
    "models list",
    "models pull qwen2.5-coder-0.5b",
    "models path qwen2.5-coder-1.5b",
    'solve "PROBLEM" --method pot --model local',
    "eval gsm8k --method dotamath,pot,cot --model local --limit 100 --out runs/gsm8k",
    "eval math500 --method dotamath,pot,cot --model local --limit 50 --out runs/math500",
    "eval gsm8k-train --limit 10",
    "trace view runs/gsm8k",
    "trace view runs/trace.jsonl --out page.html --open",
    "eval gsm8k --endpoints http://10.0.0.1:8000/v1,http://10.0.0.2:8000/v1 "
    "--model Qwen/Qwen2.5-7B-Instruct --concurrency 32",
    "eval gsm8k --executor ray --ray-address auto --workers 8 --endpoints http://a/v1",
    'costa "Recolor the red circle blue" --image in.png --alpha 1.0 --out out.png --table c.json',
    "eval costa --tasks 50 --alpha 0,0.5,1,1.5,2 --out runs/costa",
    "index build catalog.json --out runs/index",
    "eval retrieval --catalog catalog.json --queries queries.jsonl --k 1,3,5,10",
    "eval toolbench-static --data glpft.json --planner local --caller local:qwen2.5-coder-0.5b "
    "--summarizer local",
    "eval toolbench-static --data glpft_test.json --model local --out runs/static",
    "export sft --runs DIR --out sft/ --include-failed",
    "web generate --base click-button,enter-text,login-user --out tasks/ --reverse",
    "web generate --random 4 --size 2 --seed 1 --both --out tasks/",
    "eval miniwob --tasks click-button,login-user --model local --seeds 3 --out runs/miniwob",
    "eval compwob --tasks-dir DIR --model local --seeds 3 --variant both --out runs/compwob",
]


def parsed(argv: list[str]) -> tuple[tuple[str, ...], dict[str, object]]:
    """Parse a command line with the real app, every command's body replaced by a recorder."""
    import typer.main

    from toolpath.cli import app

    calls: list[tuple[tuple[str, ...], dict[str, object]]] = []

    def stub(command, path: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            stub(sub, (*path, name))
        command.callback = lambda **options: calls.append((path, options))

    root = typer.main.get_command(app)
    stub(root, ())
    root.main(args=argv, standalone_mode=False)
    return calls[-1]


def test_top_level_help_lists_every_verb_with_one_line_each():
    from typer.testing import CliRunner

    from toolpath.cli import app

    text = CliRunner().invoke(app, ["--help"]).output
    panel = text.split("Commands")[1].split("╰")[0]
    rows = [line.strip("│ ").split() for line in panel.splitlines()[1:]]
    assert [row[0] for row in rows if row] == VERBS  # a wrapped help would add a row


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_explains_itself(command):
    from typer.testing import CliRunner

    from toolpath.cli import app

    res = CliRunner().invoke(app, [*command, "--help"])
    assert res.exit_code == 0, res.output
    usage, summary = [line.strip() for line in res.output.splitlines() if line.strip()][:2]
    assert usage.startswith(f"Usage: root {' '.join(command)} ")
    assert summary.endswith(".") and len(summary.split()) >= 5  # a one-line summary first


@pytest.mark.parametrize("line", DOCUMENTED)
def test_documented_command_lines_parse(line):
    import shlex

    argv = shlex.split(line)
    path, _ = parsed(argv)
    assert list(path) == argv[: len(path)] and path


def test_parsing_keeps_the_option_values():
    path, options = parsed(["eval", "gsm8k-train", "--method", "pot,cot", "--skip", "5"])
    assert path == ("eval", "gsm8k-train")
    assert options["method"] == "pot,cot" and options["skip"] == 5
    assert options["out_dir"] == "runs/gsm8k-train"


def test_eval_refuses_an_unknown_executor():
    res = toolpath("eval", "gsm8k", "--executor", "spark", "--model", "bogus:x")
    assert res.returncode == 2 and "--executor must be local or ray, not 'spark'" in res.stderr


def calc(expression: str) -> str:
    return json.dumps({"tool": "calculator", "arguments": {"expression": expression}})


@pytest.fixture
def models(monkeypatch, scripted):
    """``load_model(spec)`` returns ``models[spec]``, a scripted model (no file, no server)."""
    import toolpath.llm.specs

    table: dict[str, object] = {}
    monkeypatch.setattr(toolpath.llm.specs, "load_model", lambda spec, **kw: table[spec])
    return table


@pytest.fixture
def builders(monkeypatch):
    """Record the arguments of every tool_agent and alpha_umi_agent call (then build)."""
    import toolpath.agents.alpha_umi.agent as alpha_umi
    import toolpath.agents.react as react

    calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    def spy(name: str, build):
        def record(*args, **kwargs):
            calls.append((name, args, kwargs))
            return build(*args, **kwargs)

        return record

    monkeypatch.setattr(react, "tool_agent", spy("tool_agent", react.tool_agent))
    monkeypatch.setattr(
        alpha_umi, "alpha_umi_agent", spy("alpha_umi_agent", alpha_umi.alpha_umi_agent)
    )
    return calls


def test_run_builds_the_single_model_agent(models, builders, scripted):
    from typer.testing import CliRunner

    from toolpath.cli import app

    models["m"] = scripted([calc("1234 * 5678"), json.dumps({"final_answer": "7006652"})])
    res = CliRunner().invoke(app, ["run", "What is 1234 * 5678?", "-m", "m"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "7006652"
    [(name, args, kwargs)] = builders
    assert name == "tool_agent" and args == ()  # keyword arguments only
    assert kwargs["model"] is models["m"] and [t.name for t in kwargs["tools"]] == ["calculator"]
    assert "planner" not in kwargs
    assert re.search(r"^model .*\d+\.\d\ds  \d+\+\d+ tokens$", res.stderr, re.M)
    assert "tool Observation from calculator: 7006652" in res.stderr


def test_run_with_roles_builds_the_alpha_umi_agent(models, builders, scripted, tmp_path):
    from typer.testing import CliRunner

    from toolpath.cli import app

    models["p"] = scripted(["Multiply.\nNext: caller", "Known now. Next: conclusion"], name="P")
    models["c"] = scripted(['Action: calculator\nAction Input: {"expression": "6*7"}'], name="C")
    models["s"] = scripted(["6*7 is 42."], name="S")
    argv = ["run", "What is 6*7?", "--planner", "p", "--caller", "c", "--summarizer", "s"]
    res = CliRunner().invoke(app, [*argv, "--record", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "6*7 is 42."
    [(name, args, kwargs)] = builders
    assert name == "alpha_umi_agent" and args == ()
    assert (kwargs["planner"], kwargs["caller"], kwargs["summarizer"]) == (
        models["p"],
        models["c"],
        models["s"],
    )
    assert kwargs["model"] is None and kwargs["retriever"] is None
    assert re.search(r"planner P \d+\.\d\ds  \d+\+\d+ tokens", res.stderr)
    assert "retrieved calculator" in res.stderr and "tool " in res.stderr
    assert re.search(r"summarizer S .* tokens", res.stderr)
    assert (tmp_path / "trajectories.jsonl").read_text().count("\n") == 1


def test_run_uses_one_model_for_the_roles_not_given(models, builders, scripted):
    from typer.testing import CliRunner

    from toolpath.cli import app

    models["m"] = scripted(["Nothing to call. Next: conclusion", "Hello."], name="M")
    models["p"] = scripted(["Next: conclusion"], name="P")
    res = CliRunner().invoke(app, ["run", "Say hello.", "-m", "m", "--caller", "m"])
    assert res.exit_code == 0, res.output
    [(name, _, kwargs)] = builders
    assert name == "alpha_umi_agent"
    assert kwargs["planner"] is kwargs["caller"] is kwargs["summarizer"] is models["m"]


def test_record_needs_the_multi_role_agent(tmp_path):
    res = toolpath("run", "hi", "--record", str(tmp_path), "-m", "bogus:x")
    assert res.returncode == 2 and "--record saves multi-role runs" in res.stderr
