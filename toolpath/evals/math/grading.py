"""Grading of math answers (GSM8K, MATH) with the ToRA protocol.

:func:`extract_answer` pulls the final answer from a model's text: the last ``\\boxed{}``, then
"The answer is ...", then the last line of the program output, then the last number.
:func:`normalize` puts an answer in a canonical LaTeX-ish form (units, ``$``, ``%``, degree signs,
``\\left``/``\\right``, thousands separators and spacing dropped; ``\\dfrac`` and ``a/b`` become
``\\frac{a}{b}``). :func:`is_strict` accepts only equal normalized strings or exactly equal numbers;
:func:`is_equiv` (the lenient check) also accepts numbers within a relative 1e-4, tuples and
intervals equal element by element, and expressions that ``math-verify`` proves equivalent.

``math-verify`` relies on ``signal.alarm``, which only works in a main thread, and sympy can hang.
So the symbolic step runs in one lazily started worker process (``python -c``, so no fork of a
threaded parent and no re-import of the caller's ``__main__``). Each call may block for at most
``timeout`` seconds; a worker that overruns is killed and replaced on the next call. Calls from
several threads are served one at a time. Importing this module imports neither sympy nor
math-verify.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from toolpath.agents.math.answers import DECIMAL_RE, extract_answer, extract_boxed, normalize

__all__ = [
    "Grade",
    "extract_answer",
    "extract_boxed",
    "grade",
    "gsm8k_gold",
    "is_equiv",
    "is_strict",
    "normalize",
    "shutdown",
]

STARTUP_TIMEOUT = 60.0
"""Seconds for the worker to start and import math-verify (not counted in a call's timeout)."""


def gsm8k_gold(answer_field: str) -> str:
    """The number after ``####`` in a GSM8K answer field, commas removed."""
    if "####" not in answer_field:
        raise ValueError("a GSM8K answer field ends with '#### <number>'")
    return answer_field.rsplit("####", 1)[1].strip().replace(",", "").replace("$", "").strip()


# --------------------------------------------------------------------------- comparison

_FRAC_RE = re.compile(r"^(-?)\\frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}$")
_SCI_RE = re.compile(r"^(-?\d+(?:\.\d+)?)\\(?:times|cdot)10\^\{?(-?\d+)\}?$")


def _to_float(s: str) -> float | None:
    """The value of a normalized plain number, ``\\frac{a}{b}`` or ``a\\times10^{b}``."""
    try:
        if DECIMAL_RE.match(s):
            return float(s)
        frac = _FRAC_RE.match(s)
        if frac:
            value = float(frac.group(2)) / float(frac.group(3))
            return -value if frac.group(1) else value
        sci = _SCI_RE.match(s)
        if sci:
            return float(sci.group(1)) * 10.0 ** int(sci.group(2))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


def _split_top(s: str, sep: str) -> list[str]:
    """Split ``s`` on ``sep`` where it is outside every bracket."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(s):
        if s.startswith(sep, i) and depth == 0:
            parts.append(s[start:i])
            i += len(sep)
            start = i
            continue
        if s[i] in "([{":
            depth += 1
        elif s[i] in ")]}":
            depth -= 1
        i += 1
    parts.append(s[start:])
    return parts


def _sequence(s: str) -> tuple[str, list[str], str] | None:
    """``(open, items, close)`` for a tuple, interval or bare list; None for anything else."""
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]":
        depth = 0
        for i, char in enumerate(s):
            depth += 1 if char in "([{" else -1 if char in ")]}" else 0
            if depth == 0 and i < len(s) - 1:
                break
        else:
            items = _split_top(s[1:-1], ",")
            if len(items) >= 2:
                return s[0], items, s[-1]
            return None
    items = _split_top(s, ",")
    return ("", items, "") if len(items) >= 2 else None


def _is_word(s: str) -> bool:
    return re.fullmatch(r"[A-Za-z][A-Za-z ]+", s) is not None


def _local_equal(p: str, g: str, rel_tol: float) -> bool | None:
    """Compare normalized answers without sympy: True, False, or None (undecided)."""
    if p == g or (_is_word(p) and p.casefold() == g.casefold()):
        return True
    if _is_word(p) or _is_word(g):
        return False
    pf, gf = _to_float(p), _to_float(g)
    if pf is not None and gf is not None:
        return math.isclose(pf, gf, rel_tol=rel_tol, abs_tol=1e-12)
    ps, gs = _split_top(p, "\\cup"), _split_top(g, "\\cup")
    if len(ps) > 1 or len(gs) > 1:
        if len(ps) != len(gs):
            return None
        results = [_local_equal(a, b, rel_tol) for a, b in zip(ps, gs, strict=True)]
        return False if False in results else None if None in results else True
    pseq, gseq = _sequence(p), _sequence(g)
    if pseq is None or gseq is None or len(pseq[1]) != len(gseq[1]):
        return None
    if (pseq[0], pseq[2]) != (gseq[0], gseq[2]):
        return False if pseq[0] and gseq[0] else None
    results = [_local_equal(a, b, rel_tol) for a, b in zip(pseq[1], gseq[1], strict=True)]
    if all(r is True for r in results):
        return True
    return False if pseq[0] and False in results else None


def is_strict(pred: str | None, gold: str) -> bool:
    """The strict check: equal normalized strings, or exactly equal numbers (element-wise for
    tuples and intervals); no symbolic step."""
    if pred is None:
        return False
    return _local_equal(normalize(pred), normalize(gold), 1e-9) is True


def is_equiv(pred: str | None, gold: str, *, timeout: float = 5.0) -> bool:
    """The lenient check: :func:`is_strict`, numbers within a relative 1e-4, tuples/intervals
    element-wise (brackets must match), then math-verify in the worker process.

    Safe from any thread; blocks at most ``timeout`` seconds on the symbolic step (plus the
    worker's one-off start, and any wait behind other threads' calls).
    """
    if pred is None:
        return False
    p, g = normalize(pred), normalize(gold)
    if not p or not g:
        return p == g
    local = _local_equal(p, g, 1e-4)
    if local is not None:
        return local
    return _symbolic_equiv(p, g, timeout)


@dataclass
class Grade:
    """One graded answer: what was extracted, the gold answer and both verdicts."""

    predicted: str | None
    gold: str
    strict: bool
    lenient: bool


def grade(text: str, gold: str, *, program_output: str | None = None) -> Grade:
    """Extract the answer from ``text`` and check it against ``gold`` both ways."""
    predicted = extract_answer(text, program_output=program_output)
    strict = is_strict(predicted, gold)
    lenient = strict or is_equiv(predicted, gold)
    return Grade(predicted=predicted, gold=gold, strict=strict, lenient=lenient)


# --------------------------------------------------------------------------- the worker process


def _worker_argv() -> list[str]:
    """The command that starts a worker (tests replace it)."""
    return [
        sys.executable,
        "-c",
        "from toolpath.evals.math.grading import _worker_loop; _worker_loop()",
    ]


class _Worker:
    """A child process: one ``[pred, gold, timeout]`` JSON line in, one line out ("1" or "0")."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[3])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            _worker_argv(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": path},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.strip())
        self.lines.put("")  # end of file: the worker died

    def reply(self, timeout: float) -> str:
        """The next line from the worker, or "" after ``timeout`` seconds."""
        try:
            return self.lines.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return ""

    def ask(self, pred: str, gold: str, timeout: float) -> bool | None:
        """The worker's verdict, or None when it overran ``timeout`` or died."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps([pred, gold, timeout]) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            return None
        return {"1": True, "0": False}.get(self.reply(timeout))

    def close(self, *, kill: bool = False) -> None:
        """Close its stdin and let it exit (killed at once with ``kill``, or after 2 s)."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=0 if kill else 2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_LOCK = threading.Lock()
_WORKER: _Worker | None = None


def _symbolic_equiv(pred: str, gold: str, timeout: float) -> bool:
    """math-verify's verdict from the worker; False on a timeout (the worker is then killed)."""
    global _WORKER
    with _LOCK:
        if _WORKER is None or _WORKER.proc.poll() is not None:
            _WORKER = _Worker()
            if _WORKER.reply(STARTUP_TIMEOUT) != "ready":
                _WORKER.close(kill=True)
                _WORKER = None
                return False
        verdict = _WORKER.ask(pred, gold, timeout)
        if verdict is None:
            _WORKER.close(kill=True)
            _WORKER = None
        return bool(verdict)


def shutdown() -> None:
    """Stop the worker process, if any (a later call starts a new one)."""
    global _WORKER
    with _LOCK:
        if _WORKER is not None:
            _WORKER.close()
            _WORKER = None


atexit.register(shutdown)


class _WorkerTimeout(BaseException):
    """Raised by SIGALRM in the worker; a BaseException so that math-verify cannot swallow it."""


def _verify_in_worker(pred: str, gold: str, timeout: float) -> bool:
    """math-verify on ``$gold$`` and ``$pred$``, in the worker's main thread under an itimer."""
    import signal

    from math_verify import parse, verify

    def on_alarm(signum: int, frame: object) -> None:
        raise _WorkerTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(0.8 * timeout, 0.05))
    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=None)
        pred_parsed = parse(f"${pred}$", parsing_timeout=None)
        if not gold_parsed or not pred_parsed:
            return False
        if verify(gold_parsed, pred_parsed, timeout_seconds=None):
            return True
        values = [gold_parsed[0], pred_parsed[0]]  # numeric fallback, rel_tol 1e-4
        if all(getattr(v, "is_number", False) and v.is_real for v in values):
            return math.isclose(float(values[0]), float(values[1]), rel_tol=1e-4)
        return False
    except (_WorkerTimeout, Exception):
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _worker_loop() -> None:
    """Body of the worker process: requests on stdin, verdicts on stdout."""
    import logging

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the protocol
    sys.stdout = sys.stderr
    logging.disable(logging.CRITICAL)
    import math_verify  # noqa: F401  (imported before announcing readiness)

    out.write("ready\n")
    for line in sys.stdin:
        try:
            pred, gold, timeout = json.loads(line)
            ok = _verify_in_worker(str(pred), str(gold), float(timeout))
        except (ValueError, TypeError):
            ok = False
        out.write("1\n" if ok else "0\n")
