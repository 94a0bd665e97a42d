"""The ``toolpath`` command: the Typer app, the ``eval`` group and :func:`main`.

The CLI is thin: it parses, calls the library and prints. Each top-level verb lives in one
module, named like the seed system it fronts, and every module registers its commands the
same way, with ``register(app, eval_app)``; the ``eval`` sub-command of a seed system lives
beside its verb:

=========  =====================================================  ===================
verb       what                                                   module
=========  =====================================================  ===================
run        answer with the tool agent or the α-UMi agent          :mod:`.run`
solve      a math problem (``eval gsm8k``, ``math500``...)        :mod:`.math`
chat       the interactive REPL                                   :mod:`.chat`
costa      an image edit with CoSTA* (``eval costa``)             :mod:`.costa`
export     α-UMi training data (``eval toolbench-static``)        :mod:`.alpha_umi`
web        CompWoB pages (``eval compwob``, ``eval miniwob``)     :mod:`.web`
index      a catalog's embedding index (``eval retrieval``)       :mod:`.retrieval`
tools      the tools of any catalog source                        :mod:`.tools`
mcp        toolpath's agents as an MCP server                     :mod:`.mcp`
trace      draw a run's trace (``--trace-to`` traces any verb)    :mod:`.trace`
models     the embedded model cache                               :mod:`.models`
=========  =====================================================  ===================

Every :class:`~toolpath.errors.ToolpathError` becomes one line on stderr and the error's
exit code (2 for bad input such as an unknown model spec).
"""

from __future__ import annotations

import sys

import typer

from toolpath.cli import (
    alpha_umi,
    bfcl,
    chat,
    costa,
    math,
    mcp,
    models,
    one_step,
    retrieval,
    run,
    tools,
    trace,
    web,
)
from toolpath.errors import ToolpathError

VERBS = (
    run,
    math,
    chat,
    costa,
    alpha_umi,
    bfcl,
    one_step,
    web,
    retrieval,
    tools,
    mcp,
    trace,
    models,
)
"""The verb modules, in the order ``toolpath --help`` lists their verbs (Typer lists the
single commands first, then the groups: ``eval``, ``export``, ``web``, ``index``, ``models``)."""

app = typer.Typer(
    help="toolpath: LLM agents that use tools, on an embedded offline model or any "
    "OpenAI-compatible endpoint.",
    epilog='Examples: toolpath run "What is 1234 * 5678? Use the calculator." --model '
    'local:qwen2.5-coder-0.5b  |  toolpath solve "..."  |  toolpath eval gsm8k --limit 10  |  '
    "toolpath models list. "
    "Errors print one line on stderr; exit codes: 2 bad input, 3 missing model, "
    "4 sha256 mismatch, 5 backend failed after retries, 6 missing extra.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)
eval_app = typer.Typer(
    help="Run a benchmark; a run resumes where it stopped.\n\n"
    "The benchmarks: gsm8k, gsm8k-train, gsm8k-dev, math500, math (DotaMath, PoT, CoT), costa, "
    "toolbench-static (α-UMi), bfcl (function calling), one-step (TPTU), retrieval, miniwob, "
    "compwob.",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")
for _verb in VERBS:
    _verb.register(app, eval_app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map toolpath errors to one line and an exit code."""
    try:
        app(args=argv, standalone_mode=False)
    except ToolpathError as exc:
        message = " ".join(str(exc).split())  # one line, whatever the terminal width
        sys.stderr.write(f"error: {message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 130
    except typer.TyperException as exc:  # usage errors: typer's own (vendored) click
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        return int(getattr(exc, "exit_code", 2))
    finally:
        _end_tracing()
    return 0


def _end_tracing() -> None:
    """Flush and close what ``--trace-to`` opened, and restore the eval defaults."""
    from toolpath import tracing
    from toolpath.evals.traces import configure

    tracing.disable()
    configure()
