"""``toolpath trace view`` and the global ``--trace-to`` / ``--trace-content`` options.

``toolpath --trace-to SPEC COMMAND ...`` traces any command's runs with OpenTelemetry
(:mod:`toolpath.tracing`); ``toolpath eval`` traces into its run folder by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolpath.cli.common import out
from toolpath.errors import ConfigError

TRACE_TO_HELP = (
    "Trace the command's runs with OpenTelemetry into SPEC: a .jsonl file, console, otlp "
    "(OTLP/HTTP to $OTEL_EXPORTER_OTLP_ENDPOINT or 127.0.0.1:4318) or otlp:URL; repeatable. "
    "toolpath eval traces into its --out folder by default (trace.jsonl, drawn as trace.html); "
    "'none' turns that off."
)


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the global tracing options and ``toolpath trace view``."""
    app.callback()(options)
    trace_app = typer.Typer(
        help="Look at OpenTelemetry traces of toolpath runs.", no_args_is_help=True
    )
    trace_app.command("view")(view)
    app.add_typer(trace_app, name="trace")


def options(
    trace_to: Annotated[list[str] | None, typer.Option(metavar="SPEC", help=TRACE_TO_HELP)] = None,
    trace_content: Annotated[
        bool,
        typer.Option(help="Traces also record prompts, completions, tool arguments and results."),
    ] = False,
) -> None:
    """toolpath: LLM agents that use tools, on an embedded offline model or any
    OpenAI-compatible endpoint."""
    from toolpath import tracing
    from toolpath.evals.traces import configure

    specs = list(trace_to or ())
    configure(enabled="none" not in specs, content=trace_content)
    specs = [s for s in specs if s != "none"]
    if specs:
        try:
            tracing.enable(*specs, content=trace_content)
        except ValueError as exc:
            raise ConfigError(f"--trace-to: {exc}") from None
        except ImportError as exc:
            raise ConfigError(str(exc)) from None


def view(
    source: Annotated[
        Path, typer.Argument(help="A trace .jsonl file, or a run folder that holds trace.jsonl.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the page (default: beside the JSONL, .html)."),
    ] = None,
    open_page: Annotated[
        bool, typer.Option("--open", help="Also open the page in the default browser.")
    ] = False,
) -> None:
    """Draw a trace as an offline HTML page and print its path.

    The page shows a timeline of every episode (nodes, model calls, tool calls) with tokens,
    latency and errors; click a span to see its attributes and, when the trace recorded
    content (--trace-content), its messages.
    """
    from toolpath.tracing.viewer import write_viewer

    try:
        page = write_viewer(source, output)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    out.print(str(page), soft_wrap=True, markup=False)
    if open_page:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())
