"""Human approval of tool calls, on LangGraph's ``interrupt()``.

Every tool-calling agent takes ``approve=``:

- ``"never"`` (the default): calls run at once;
- ``"always"``: every call waits for a decision;
- a collection of tool names: calls of those tools wait;
- a callable ``(ToolCall) -> bool``: the calls it returns True for wait.

A call that waits pauses the run: ``invoke`` returns the state with LangGraph's
``__interrupt__`` entry, whose value is a :class:`PendingCall` as a dict (``tool``,
``arguments``, ``reason``, ``call_id``). Resume with
``agent.invoke(Command(resume=DECISION), config)`` on the same ``thread_id``; DECISION is

- ``True``, ``"approve"`` or ``{"action": "approve"}``: run the call as it is;
- ``{"action": "edit", "arguments": {...}}``: run it with these arguments, checked against the
  tool's schema again (a bad edit reaches the model as a failed call);
- ``False``, ``"reject"`` or ``{"action": "reject", "message": "..."}``: do not run it; the
  model sees the rejection, and the message, as the call's result.

Pausing needs a checkpointer: an agent given ``approve`` without one gets an in-memory one, so
every run needs ``config={"configurable": {"thread_id": ...}}``; use
:func:`~toolpath.agents.base.sqlite_checkpointer` to pause in one process and resume in
another. The review happens before any call of the turn runs, so resuming (which re-runs the
node) never runs a call twice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from toolpath.errors import ConfigError, ToolArgumentsError
from toolpath.llm.base import ToolCall
from toolpath.tools.base import Tool

Approve = str | Collection[str] | Callable[[ToolCall], bool] | None
"""What ``approve=`` accepts (see the module docstring)."""
REJECTED = "The user rejected this call{why}. Do not call it again; answer without it or ask."


@dataclass(frozen=True)
class PendingCall:
    """What a paused run shows: the call waiting for a decision and the agent's reason."""

    tool: str
    arguments: dict[str, Any]
    reason: str
    call_id: str


@dataclass(frozen=True)
class Decision:
    """A reviewer's answer: ``approve``, ``edit`` (with ``arguments``) or ``reject``."""

    action: str
    arguments: dict[str, Any] | None = None
    message: str = ""


def check_approve(approve: Approve) -> Approve:
    """``approve`` if it is a valid setting, else a :class:`ConfigError` saying what is."""
    if approve is None or approve in ("never", "always") or callable(approve):
        return approve
    if isinstance(approve, str):
        raise ConfigError(
            f"approve={approve!r}: use 'never', 'always', a set of tool names or a function"
        )
    if isinstance(approve, Collection) and all(isinstance(n, str) for n in approve):
        return frozenset(approve)
    raise ConfigError("approve= takes 'never', 'always', a set of tool names or a function")


def needs_approval(approve: Approve, call: ToolCall) -> bool:
    """Whether ``call`` must wait for a decision under ``approve``."""
    if approve is None or approve == "never":
        return False
    if approve == "always":
        return True
    if callable(approve):
        return bool(approve(call))
    return call.name in approve


def parse_decision(value: Any) -> Decision:
    """A :class:`Decision` from a resume value (see the module docstring for the forms)."""
    if value is True or value in ("approve", "approved", "yes", "y"):
        return Decision("approve")
    if value is False or value in ("reject", "rejected", "no", "n"):
        return Decision("reject")
    if isinstance(value, Decision):
        return value
    if isinstance(value, Mapping):
        action = str(value.get("action", "")).lower()
        if action == "approve":
            return Decision("approve")
        if action == "reject":
            return Decision("reject", message=str(value.get("message") or ""))
        if action == "edit" and isinstance(value.get("arguments"), Mapping):
            return Decision("edit", dict(value["arguments"]))
    raise ConfigError(
        f"cannot read the approval decision {value!r}: resume with True, False, "
        '{"action": "approve"}, {"action": "reject", "message": ...} or '
        '{"action": "edit", "arguments": {...}}'
    )


def review(
    calls: Sequence[tuple[str, str, dict[str, Any] | str]],
    tools: Mapping[str, Tool],
    approve: Approve,
    reason: str = "",
) -> dict[int, dict[str, Any] | str]:
    """Ask for a decision on each parsed call ``(id, name, arguments)`` that needs one,
    pausing the run with ``interrupt``.

    Returns, by the call's position, the arguments an approved edit gives (checked against
    the tool's schema), or the text a rejected or badly edited call shows the model instead
    of running. Calls absent from the result run as they are.
    """
    if approve is None or approve == "never":
        return {}
    from langgraph.types import interrupt

    changes: dict[int, dict[str, Any] | str] = {}
    for i, (call_id, name, args) in enumerate(calls):
        if isinstance(args, str) or name not in tools:  # it fails on its own, unasked
            continue
        if not needs_approval(approve, ToolCall(name, args, call_id)):
            continue
        pending = PendingCall(name, args, reason.strip(), call_id)
        decision = parse_decision(interrupt(asdict(pending)))
        if decision.action == "reject":
            why = f": {decision.message}" if decision.message else ""
            changes[i] = REJECTED.format(why=why)
        elif decision.action == "edit":
            assert decision.arguments is not None
            try:
                changes[i] = tools[name].validate(decision.arguments)
            except ToolArgumentsError as exc:
                changes[i] = f"Error: the reviewer's edit is not valid: {exc}"
    return changes


def pausable(approve: Approve, checkpointer: Any) -> Any:
    """The checkpointer an agent needs: ``checkpointer``, or an in-memory one when calls may
    wait for approval and none was given (pausing saves the run)."""
    if checkpointer is not None or approve is None or approve == "never":
        return checkpointer
    from langgraph.checkpoint.memory import InMemorySaver

    return InMemorySaver()
