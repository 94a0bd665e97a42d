"""What the math agents share: their state, their nodes' common parts, code extraction, and
the kernel a run uses.

Generated code runs in a sandboxed Jupyter kernel (:mod:`toolpath.tools.code.kernel`), never in
this process. A run takes its kernel from ``config["configurable"]["kernel"]`` (the eval
harness leases one per problem from a pool); without one, the agent uses a kernel of its
own that is reset at the start of every problem. Neither is part of the graph's state, so
a checkpointer stores only plain data.
"""

from __future__ import annotations

import operator
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langgraph.types import Overwrite

from toolpath.agents.base import Status, TraceRecord, generate, model_record
from toolpath.errors import ConfigError, KernelError
from toolpath.llm.base import ChatModel, Message

FENCE = re.compile(r"```(python|py)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL)
CODE_STOP = ["```output", "```Output", "\n```\n\n```"]


class MathState(TypedDict, total=False):
    question: str
    messages: Annotated[list[Message], operator.add]
    code: str | None
    output: str | None
    failed: bool
    why: str | None
    code_changed: bool
    checked: bool
    programs: Annotated[list[str], operator.add]
    rounds: int
    answer: str | None
    status: Status
    trace: Annotated[list[TraceRecord], operator.add]


def initial_state(question: str) -> dict[str, Any]:
    """The input state for one problem. The lists that nodes add to start empty even on a
    checkpointed thread that solved another problem before (a new problem starts afresh)."""
    question = question.strip()
    if not question:
        raise ConfigError("the question is empty; pass the math problem to solve as text")
    return {
        "question": question,
        "messages": Overwrite([]),
        "code": None,
        "programs": Overwrite([]),
        "output": None,
        "failed": False,
        "checked": False,
        "rounds": 0,
        "answer": None,
        "status": "running",
        "trace": Overwrite([]),
    }


def extract_code(text: str) -> str | None:
    """The last fenced Python block in ``text`` (an unclosed last block counts). Blocks marked
    ``python`` come first: an unmarked block after them is usually output the model imagined."""
    blocks = [(lang, b.strip()) for lang, b in FENCE.findall(text or "")]
    marked = [b for lang, b in blocks if lang and b]
    plain = [b for lang, b in blocks if b]
    return (marked or plain or [None])[-1]


def execute(kernel: Any, code: str, timeout: float) -> Any:
    """Run ``code`` in the kernel; a kernel that died (and was restarted) ends the episode
    with :class:`~toolpath.errors.KernelError`, so an eval marks it as an error and moves on."""
    result = kernel.execute(code, timeout=timeout)
    if result.error and result.error.startswith("KernelDied"):
        raise KernelError(result.error)
    return result


_HOW_MANY = re.compile(r"\bhow many\b", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def looks_wrong(output: str, question: str = "") -> str | None:
    """Why a program's output cannot be a usable answer, or None if it might be.

    Besides empty or non-numeric output: when the question asks "how many", a last printed
    value that is negative or not whole (93.33 people, -160 eggs) is implausible.
    """
    text = output.strip()
    if not text:
        return "the program printed nothing; print each subtask's result"
    last = text.splitlines()[-1]
    if any(w in last.lower() for w in ("nan", "inf", "none")) and not any(
        c.isdigit() for c in last
    ):
        return f"the last printed value is {last.lower()!r}, which is not an answer"
    numbers = _NUMBER.findall(last)
    if not numbers:
        return None
    value = float(numbers[-1].replace(",", ""))
    if abs(value) >= 1e15 or 0 < abs(value) < 1e-6:
        return f"the result {numbers[-1]} is implausibly {'large' if abs(value) > 1 else 'small'}"
    count = _HOW_MANY.search(question) and "/" not in last
    if count and (value < 0 or abs(value - round(value)) > 1e-9):
        return (
            f"the question asks how many, but the result {numbers[-1]} is not a whole, "
            "non-negative number; check each step"
        )
    return None


class KernelSource:
    """Gives each run a kernel: the one in the run's config, else the agent's own."""

    def __init__(self) -> None:
        self._own: Any = None
        self._lock = threading.Lock()

    def get(self, config: Any, *, fresh: bool = False) -> Any:
        kernel = ((config or {}).get("configurable") or {}).get("kernel")
        if kernel is not None:
            return kernel
        with self._lock:
            if self._own is None:
                from toolpath.tools.code.kernel import PythonKernel

                self._own = PythonKernel()
                self._own.start()
            elif fresh:
                self._own.reset()
            return self._own

    def close(self) -> None:
        if self._own is not None:
            self._own.shutdown()
            self._own = None


@dataclass(eq=False)
class MathSteps:
    """What a math agent's nodes share: the model and the prompt ``prefix`` (system prompt and
    demonstrations) every request starts with, the options, and the kernel source."""

    model: ChatModel
    prefix: list[Message]
    max_tokens: int = 512
    code_timeout: float = 15.0
    kernels: KernelSource = field(default_factory=KernelSource)
    temperature: float = 0.0

    def reply(
        self, node: str, messages: Sequence[Message], **kwargs: Any
    ) -> tuple[str, TraceRecord]:
        """The model's reply to the prefix and ``messages``, and the call's trace record."""
        kwargs.setdefault("temperature", self.temperature)
        c = generate(
            self.model, [*self.prefix, *messages], node=node, max_tokens=self.max_tokens, **kwargs
        )
        return c.content, model_record(node, c, self.model.name)

    def run(self, code: str, config: Any) -> tuple[Any, float]:
        """Run ``code`` in the run's kernel: its :class:`~toolpath.tools.code.kernel.ExecResult`
        and the seconds it took."""
        start = time.perf_counter()
        result = execute(self.kernels.get(config), code, self.code_timeout)
        return result, time.perf_counter() - start
