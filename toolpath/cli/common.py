"""What the command modules share: the consoles, the ``--model`` and role options, command
groups, model loading, progress bars and the checks of choice options.

Every verb module registers its commands the same way, with ``register(app, eval_app)``
(see :mod:`toolpath.cli.app`); :func:`group` builds a verb's sub-commands as one Typer group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from toolpath.errors import ConfigError

if TYPE_CHECKING:
    from toolpath.llm.base import ChatModel
    from toolpath.tools.base import Tool

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

MODEL_HELP = (
    "Model spec: local, local:qwen2.5-coder-0.5b, local:/path/x.gguf, openai:gpt-4o-mini, "
    "openai:MODEL@URL, URL#MODEL or ollama:NAME."
)
ModelOpt = Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)]
RoleOpt = Annotated[
    str | None,
    typer.Option(help="Model spec for this α-UMi role (multi-role mode); default: --model."),
]
"""``--planner``, ``--caller`` and ``--summarizer``: one model spec per α-UMi role."""

Command = Callable[..., None]


def group(help: str, commands: Mapping[str, Command]) -> typer.Typer:
    """A verb with sub-commands (``toolpath models list``...): ``commands`` under their names.

    ``help``'s first line is what ``toolpath --help`` shows for the verb.
    """
    verb = typer.Typer(help=help, no_args_is_help=True)
    for name, command in commands.items():
        verb.command(name)(command)
    return verb


@contextmanager
def progress_bar(
    *, count: bool = False, keep: bool = False
) -> Iterator[Callable[[str, int, int], None]]:
    """Rich progress bars on stderr, one per label, driven by ``(label, done, total)`` calls.

    A bar appears only once something reports progress, so fast paths print nothing.
    ``count``: the bars count items (``done/total``), else bytes (a model download);
    ``keep``: the bars stay on screen when done.
    """
    from rich import progress as rp

    amount = rp.MofNCompleteColumn() if count else rp.DownloadColumn()
    prog = rp.Progress(
        rp.TextColumn("{task.description}"),
        rp.BarColumn(),
        amount,
        rp.TimeRemainingColumn(),
        console=err,
        transient=not keep,
    )
    bars: dict[str, Any] = {}

    def update(label: str, done: int, total: int) -> None:
        if not bars:
            prog.start()
        if label not in bars:
            bars[label] = prog.add_task(label, total=total or None)
        prog.update(bars[label], completed=done, total=total or None)

    try:
        yield update
    finally:
        if bars:
            prog.stop()


def load(spec: str, **options: Any) -> ChatModel:
    """The model of ``spec`` (``options`` go to its backend), with a progress bar while it is
    joined, verified or downloaded."""
    from toolpath.llm.specs import load_model

    with progress_bar() as bar:
        return load_model(spec, progress=bar, **options)


def load_each(specs: Mapping[str, str]) -> dict[str, ChatModel]:
    """``{role: model}`` for ``{role: spec}``; roles with equal specs share one model."""
    loaded: dict[str, ChatModel] = {}
    for spec in specs.values():
        if spec not in loaded:
            loaded[spec] = load(spec)
    return {role: loaded[spec] for role, spec in specs.items()}


def close_all(models: Mapping[str, ChatModel]) -> None:
    """Close each distinct model of ``models`` once."""
    for model in {id(m): m for m in models.values()}.values():
        model.close()


def split(text: str) -> list[str]:
    """The items of a comma-separated option, stripped, empty ones left out."""
    return [part.strip() for part in text.split(",") if part.strip()]


def one_of(value: str, choices: Sequence[str], option: str) -> str:
    """``value`` if it is one of ``choices``, else a :class:`ConfigError` naming ``option``."""
    if value not in choices:
        *rest, last = choices
        listed = f"{', '.join(rest)} or {last}" if rest else last
        raise ConfigError(f"{option} must be {listed}, not {value!r}")
    return value


def all_of(text: str, choices: Sequence[str], what: str) -> list[str]:
    """The comma-separated items of ``text``, each one of ``choices`` (at least one)."""
    items = split(text)
    unknown = [item for item in items if item not in choices]
    if unknown or not items:
        raise ConfigError(
            f"unknown {what} {', '.join(unknown) or '(none)'}; use: {', '.join(choices)}"
        )
    return items


def fmt(value: Any) -> str:
    """A table cell: one decimal for numbers, ``-`` for anything missing."""
    return f"{value:.1f}" if isinstance(value, int | float) else "-"


APPROVE_HELP = (
    "Tool calls that wait for your decision: never, always, or comma-separated tool names. "
    "Each shows in a panel and asks [y]es / [e]dit / [n]o."
)


def approve_setting(text: str) -> Any:
    """``--approve``'s value as an agent's ``approve=`` (never, always, or a set of names)."""
    value = text.strip().lower()
    if value in ("never", "always"):
        return value
    names = set(split(text))
    if not names:
        raise ConfigError("--approve takes never, always, or comma-separated tool names")
    return names


def _read(prompt: str) -> str:
    """A line from stdin, the prompt on stderr (stdout keeps only the answer)."""
    err.print(prompt, end="", markup=False)
    return input()


def ask_approval(
    pending: Mapping[str, Any], console: Console = err, read: Callable[[str], str] = _read
) -> Any:
    """Show a paused tool call in a panel and ask what to do; the value to resume with."""
    import json

    from rich.markup import escape
    from rich.panel import Panel

    args = json.dumps(pending.get("arguments", {}), ensure_ascii=False)
    body = f"[bold]{escape(str(pending.get('tool')))}[/] {escape(args)}"
    if pending.get("reason"):
        body += f"\n[dim]{escape(str(pending['reason']))}[/]"
    console.print(Panel(body, title="approve this tool call?", border_style="yellow"))
    while True:
        try:
            answer = read("[y]es / [e]dit / [n]o: ").strip().lower()
            if answer in ("y", "yes"):
                return {"action": "approve"}
            if answer in ("n", "no"):
                why = read("why (the model sees this; Enter to skip): ").strip()
                return {"action": "reject", "message": why}
            if answer in ("e", "edit"):
                edited = json.loads(read("arguments as a JSON object: "))
                if isinstance(edited, dict):
                    return {"action": "edit", "arguments": edited}
                console.print("[red]the arguments must be a JSON object[/]")
        except ValueError as exc:
            console.print(f"[red]not JSON: {escape(str(exc))}[/]")
        except EOFError:
            return {"action": "reject", "message": "nobody answered the approval prompt"}


def stream_approving(
    agent: Any,
    first: Any,
    config: Any,
    modes: Sequence[str],
    ask: Callable[[Mapping[str, Any]], Any] = ask_approval,
) -> Iterator[tuple[str, Any]]:
    """``agent.stream`` (``modes`` must include ``updates``) that asks about each paused tool
    call and resumes the run with the answer, until the run ends."""
    from langgraph.types import Command

    run_input = first
    while True:
        pending = None
        for mode, chunk in agent.stream(run_input, config, stream_mode=list(modes)):
            if mode == "updates" and "__interrupt__" in chunk:
                pending = chunk["__interrupt__"][0].value
                continue
            yield mode, chunk
        if pending is None:
            return
        run_input = Command(resume=ask(pending))


MaxTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--max-tokens-total", help="Stop the run once its model calls used this many tokens.", min=1
    ),
]
MaxSecondsOpt = Annotated[
    float | None,
    typer.Option("--max-seconds", help="Stop the run after this many seconds.", min=0.001),
]
MaxUsdOpt = Annotated[
    float | None,
    typer.Option(
        "--max-usd",
        help="Stop the run once it cost this many US dollars (local models: $0).",
        min=0.0,
    ),
]
PricesOpt = Annotated[
    str | None,
    typer.Option(
        help='Price table for --max-usd: JSON or TOML {"MODEL": {"input": USD_PER_M, "output": USD_PER_M}}.'
    ),
]


def budget_of(
    tokens: int | None, seconds: float | None, usd: float | None, prices: str | None
) -> Any:
    """The :class:`~toolpath.agents.budget.Budget` the budget options ask for (None: none)."""
    from toolpath.agents.budget import Budget, Prices

    if prices is not None and usd is None:
        raise ConfigError("--prices prices the runs for --max-usd: add --max-usd")
    if tokens is None and seconds is None and usd is None:
        return None
    table = Prices.load(prices) if prices else Prices()
    return Budget(tokens=tokens, seconds=seconds, usd=usd, prices=table)


def catalog_retriever(
    sources: Sequence[str], extra: Sequence[Tool], kind: str, k: int, index_dir: str | None
) -> tuple[list[Tool], Any]:
    """``--catalog``'s tools (plus the built-in ones enabled) and a retriever over them all,
    as ``toolpath run --catalog`` builds them."""
    from toolpath.retrieval.kinds import KINDS, build_retriever
    from toolpath.tools.catalog import load_catalogs

    one_of(kind, KINDS, "--retriever")
    tools = list(load_catalogs(sources))
    names = {t.name for t in tools}
    tools += [t for t in extra if t.name not in names]
    if kind != "bm25":
        err.print(f"[dim]indexing {len(tools)} tools (cached after the first run)...[/]")
    return tools, build_retriever(kind, tools, cache_dir=index_dir, k=k)
