"""Scripted policies: deterministic solvers for MiniWoB base tasks that read the page.

The solvers (:data:`~toolpath.evals.web.solvers.SOLVERS`) get a subtask's instruction and
the elements of its part of the page and return the actions that solve it, such as
``[("type", {"ref": 7, "text": "Bob"}), ("click", {"ref": 9})]``. :func:`run_scripted`
plays a whole episode (a base task or a composed page, subtask by subtask in any order, for
the tests of the reward rules) through the same
:class:`~toolpath.tools.web.browser.WebEnv` actions an agent uses. They check that the
pages, the observation and the actions work, and give the latency benchmark real episodes;
they are not agents.

A composed instruction is split back into its subtasks by :func:`split_composed`, which
knows the composer's wording (", and then" and the reverse ", after <doing A>").
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

from toolpath.errors import ConfigError, ToolError
from toolpath.evals.web.compose import VERBS as GERUNDS
from toolpath.evals.web.solvers import MULTI_STEP, SOLVERS, Action, Solver
from toolpath.tools.web.observation import EpisodeStatus

__all__ = [
    "MULTI_STEP",
    "SOLVERS",
    "Action",
    "Solver",
    "run_actions",
    "run_scripted",
    "solve_subtask",
    "split_composed",
]

_KNOWN_VERBS = ("answer", "book", "buy", "check", "choose", "click", "close", "copy", "delete",
    "drag", "draw", "enter", "expand", "fill", "find", "focus", "forward", "go", "guess",
    "highlight", "hit", "log", "login", "mark", "move", "navigate", "open", "paste", "pick",
    "press", "put", "reply", "scroll", "search", "select", "set", "solve", "star", "submit",
    "switch", "type", "use", "write")  # fmt: skip


def _ing(verb: str) -> str:
    """The composer's gerund rule (``ing`` in its runtime)."""
    if verb in GERUNDS:
        return GERUNDS[verb]
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith("ee"):
        return verb[:-1] + "ing"
    return verb + "ing"


_FROM_ING = {_ing(v): v for v in _KNOWN_VERBS}
_AND_GERUND = re.compile(
    r" and (clicking|pressing|selecting|entering|typing|submitting|closing|checking|choosing)\b"
)


def _imperative(part: str) -> str:
    word, _, rest = part.partition(" ")
    verb = _FROM_ING.get(word.lower(), word[:-3] if word.endswith("ing") else word)
    rest = _AND_GERUND.sub(lambda m: " and " + _FROM_ING[m[1]], rest)
    return f"{verb} {rest}".strip()


def split_composed(instruction: str, n: int) -> list[str]:
    """The ``n`` subtask instructions of a composed page, in the order they must be done.

    Reads the composer's wording: "A, and then B, and then C." and "B, and then C, after
    doing A." (A lowercased and made a gerund). Other wordings fall back on the web agent's
    :func:`~toolpath.agents.web.agent.split_instruction`.
    """
    text = " ".join(instruction.split()).strip()
    if n == 1:
        return [text]
    body = text[:-1] if text.endswith(".") else text
    first: list[str] = []
    after = [m for m in re.finditer(r", after (\w+ing)\b", body)]
    if after:
        cut = after[-1]
        first = [_imperative(body[cut.start() + len(", after ") :])]
        body = body[: cut.start()]
    parts = first + body.split(", and then ")
    if len(parts) != n:
        from toolpath.agents.web.agent import split_instruction

        parts = split_instruction(instruction)
    if len(parts) != n:
        raise ConfigError(f"split {instruction!r} into {len(parts)} parts, not {n}")
    return [p[:1].upper() + p[1:].rstrip(".") + "." for p in parts]


async def run_actions(env: Any, actions: Sequence[Action]) -> None:
    """Play ``actions`` on ``env`` (refs stay valid within an episode)."""
    for name, args in actions:
        await getattr(env, name)(**args)


_OUTCOME_JS = "(i) => typeof WOB_COMPOSE === 'object' ? WOB_COMPOSE.outcomes()[i] : null"


async def _has_outcome(env: Any, index: int) -> bool:
    with contextlib.suppress(Exception):
        return await env.page.evaluate(_OUTCOME_JS, index) is not None
    return False


async def solve_subtask(
    env: Any, name: str, part: str, index: int | None, *, rounds: int = 12
) -> list[str]:
    """Solve one subtask of the page ``env`` shows; returns the actions played.

    ``index`` is the subtask's part of a composed page (None: the whole page). A solver
    in :data:`MULTI_STEP` is called again on a fresh observation (a failed action, such as
    a click on a field a popup disabled, only ends that round) until the subtask has an
    outcome, the episode is over or it has nothing left to do.
    """
    if name not in SOLVERS:
        raise ConfigError(f"no scripted policy for {name}")
    played: list[str] = []
    for r in range(rounds if name in MULTI_STEP else 1):
        obs = await env.observe()
        if obs.status.done or (r and index is not None and await _has_outcome(env, index)):
            break
        section = (
            obs.shown if index is None else [e for e in obs.shown if e.section in (index, None)]
        )
        actions = SOLVERS[name](part, section)
        if not actions:
            break
        for action, args in actions:
            played.append(f"{action}({json.dumps(args)})")
            try:
                await getattr(env, action)(**args)
            except ToolError:
                if name not in MULTI_STEP:
                    raise
                break
    return played


async def run_scripted(
    env: Any,
    page: str,
    base: Sequence[str],
    *,
    seed: int = 0,
    order: Sequence[int] | None = None,
) -> EpisodeStatus:
    """Play one episode of ``page`` with the scripted solvers and return its status.

    ``base`` names the page's base tasks in page order (one name for a MiniWoB page).
    ``order`` is which subtasks to solve, in which order (default: all, in order); a
    composed page is expected to punish a wrong order or a missing subtask.
    """
    unknown = [b for b in base if b not in SOLVERS]
    if unknown:
        raise ConfigError(f"no scripted policy for {', '.join(unknown)}")
    obs = await env.reset(page, seed)
    parts = split_composed(obs.instruction, len(base))
    for i in order if order is not None else range(len(base)):
        if (await env.status()).done:
            break
        await solve_subtask(env, base[i], parts[i], i if len(base) > 1 else None)
    return await env.status()
