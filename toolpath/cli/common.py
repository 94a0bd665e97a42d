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
