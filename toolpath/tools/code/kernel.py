"""A sandboxed Python interpreter for model-written code: a Jupyter kernel in its own process.

Generated code never runs in the host process. Each :class:`PythonKernel` is an ipykernel started
through the launcher in :mod:`toolpath.tools.code.sandbox`, which applies :class:`KernelLimits`
(address space, CPU seconds, processes, file size, no core dumps), gives it a fresh private
working folder and a minimal environment (no API keys), and, when the host runs as root, runs it
under a dedicated unprivileged uid so the process limit really bounds a fork bomb.

:meth:`PythonKernel.execute` sends the code and reads the kernel's output with its own loop (a
round trip of a trivial statement takes a few ms). A run that outlives its timeout is
interrupted; a kernel that is still busy 2 s later, or that died (memory or CPU limit,
``os._exit``), is restarted, and the :class:`ExecResult` says that all state was lost.
:class:`KernelPool` lends kernels to trajectories and resets them in the background, and
:func:`python_tool` wraps a kernel as the ``python`` tool.

Output is capped inside the kernel, before it is sent (:mod:`toolpath.tools.code.guard`, set up
by a silent cell after every start): each cell sends at most the head and tail of
``max_output_chars`` per stream plus a count of what it left out, and no message over 16 MiB.
The same cell kills, when a cell ends, every process that cell started. The host keeps the head
and tail again, drops any single message over 64 MiB (code that undoes the guard: a timeout and a
restart), and never raises on a message it cannot read: it restarts the kernel and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import re
import secrets
import signal
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolpath.errors import KernelError
from toolpath.tools.base import Tool, tool
from toolpath.tools.code import sandbox
from toolpath.tools.code.guard import setup_cell
from toolpath.tools.code.sandbox import KernelProcess

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_MARK = re.compile(r"\n\.\.\. \[(\d+) characters cut\] \.\.\.\n")
_KERNEL_OPTIONS = [
    "--HistoryManager.enabled=False",  # no sqlite file, no history thread
    "--InteractiveShell.colors=nocolor",
    "--InteractiveShell.xmode=Plain",  # plain Python tracebacks
]
_ERROR_LINES = 6
_RESTARTED = "The kernel was restarted: all variables and imports are lost."


@dataclass(frozen=True)
class KernelLimits:
    """Resource limits of a kernel process, applied before it runs any code."""

    memory_mb: int = 2048
    """Address space (``RLIMIT_AS``): big allocations raise MemoryError or kill the kernel."""
    cpu_seconds: int = 120
    """CPU time over the kernel's whole life (``RLIMIT_CPU``); every restart starts afresh."""
    max_processes: int = 64
    """Processes and threads of its uid (``RLIMIT_NPROC``); ipykernel itself uses ~12."""
    file_size_mb: int = 64
    """Largest file the kernel may write (``RLIMIT_FSIZE``)."""
    network: bool = False
    """Let the kernel use the network (TCP and UDP). Off: Landlock denies TCP connect and bind,
    a seccomp filter denies IPv4/IPv6 sockets, and as root the kernel has no network at all."""
    max_output_chars: int = 4000
    """Longer outputs are cut to their head and tail around a ``[N characters cut]`` marker."""


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves)."""
    return _ANSI.sub("", text)


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its head and tail around a marker.

    The marker counts every character left out, including those of inner markers it replaces.
    """
    if len(text) <= limit:
        return text
    head, tail = limit // 2, limit - limit // 2
    middle = text[head : len(text) - tail]
    dropped = len(middle) + sum(int(m[1]) - len(m[0]) for m in _MARK.finditer(middle))
    return f"{text[:head]}\n... [{dropped} characters cut] ...\n{text[len(text) - tail :]}"


class _Capped:
    """Collects streamed text but keeps only its first and last ``keep`` characters.

    ``mark`` matches the kernel's cut markers: the count in each is added to what was cut.
    """

    def __init__(self, keep: int, mark: re.Pattern[str] | None = None) -> None:
        self.keep, self.head, self.tail, self.total, self.hidden = keep, "", "", 0, 0
        self.mark = mark

    def add(self, text: str) -> None:
        if self.mark is not None and "\x00" in text:
            for i, part in enumerate(self.mark.split(text)):
                if i % 2:
                    self.hidden += int(part)
                else:
                    self._add(part)
        else:
            self._add(text)

    def _add(self, text: str) -> None:
        self.total += len(text)
        if len(self.head) < self.keep:
            room = self.keep - len(self.head)
            self.head, text = self.head + text[:room], text[room:]
        self.tail = (self.tail + text)[-self.keep :]

    def value(self) -> str:
        dropped = self.total - len(self.head) - len(self.tail) + self.hidden
        mark = f"\n... [{dropped} characters cut] ...\n" if dropped else ""
        return strip_ansi(self.head + mark + self.tail)


class _Output:
    """Everything one request printed, returned and raised, read off the iopub channel."""

    def __init__(self, keep: int, mark: re.Pattern[str] | None = None) -> None:
        self.keep, self.mark = keep, mark
        self.out, self.err, self.res = (_Capped(keep, mark) for _ in range(3))
        self.errors: list[str] = []

    def collect(self, session: KernelProcess, msg_id: str, seconds: float) -> str:
        """Read until the request is done ("idle"), ``seconds`` pass ("timeout") or death."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            try:
                msg = session.client.iopub_channel.get_msg(timeout=min(left, 0.25))
            except queue.Empty:
                if session.proc.poll() is not None:
                    return "dead"
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                text = content.get("text", "")
                (self.err if content.get("name") == "stderr" else self.out).add(text)
            elif kind == "execute_result":
                self.res.add(content.get("data", {}).get("text/plain", ""))
            elif kind == "display_data":
                self.out.add(content.get("data", {}).get("text/plain", "") + "\n")
            elif kind == "error" and not self.errors:
                error = _format_error(content)
                if self.mark is not None:
                    error = self.mark.sub(lambda m: f"\n... [{m[1]} characters cut] ...\n", error)
                self.errors.append(cut(error, self.keep))
            elif kind == "status" and content.get("execution_state") == "idle":
                return "idle"
        return "timeout"

    def result(self, note: str | None, timed_out: bool, restarted: bool) -> ExecResult:
        """The collected output as an ExecResult; ``note`` (timeout, death) replaces errors."""
        return ExecResult(
            stdout=self.out.value(),
            stderr=self.err.value(),
            result=self.res.value() if self.res.total else None,
            error=note or (self.errors[0] if self.errors else None),
            timed_out=timed_out,
            restarted=restarted,
            max_chars=self.keep,
        )


@dataclass
class ExecResult:
    """What one :meth:`PythonKernel.execute` produced. Every text is ANSI-free."""

    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    """The value of the last expression (``text/plain``), if it had one."""
    error: str | None = None
    """``"ZeroDivisionError: division by zero"`` and the last traceback lines, or a note on a
    timeout or a dead kernel."""
    timed_out: bool = False
    restarted: bool = False
    """The kernel was restarted during this run: all variables and imports are gone."""
    seconds: float = 0.0
    max_chars: int = field(default=4000, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Whether the code ran to the end without an error or a timeout."""
        return self.error is None and not self.timed_out

    def text(self) -> str:
        """What a model reads: stdout, the result, stderr and any error, cut to ``max_chars``."""
        parts = [self.stdout, self.result or "", self.stderr, self.error or ""]
        return cut("\n".join(p.rstrip("\n") for p in parts if p.strip()), self.max_chars)


def _format_error(content: dict[str, Any]) -> str:
    """``ename: evalue`` then the last few traceback lines (without a repeated last line)."""
    ename = content.get("ename", "Error")
    lines = strip_ansi("\n".join(content.get("traceback") or [])).splitlines()
    lines = [x for x in lines if x.strip() and set(x.strip()) != {"-"}]
    if lines and lines[-1].startswith(ename):
        lines.pop()
    lines = [x for x in lines if not x.startswith("Traceback (most recent call last)")]
    summary = strip_ansi(f"{ename}: {content.get('evalue', '')}").rstrip(": ")
    return "\n".join([summary, *lines[-_ERROR_LINES:]])


def _asked_exit(reply: dict[str, Any] | None) -> bool:
    """Whether an execute_reply asks to end the kernel (the code called ``exit()``)."""
    payload = reply["content"].get("payload", []) if reply else []
    return any(p.get("source") == "ask_exit" and not p.get("keepkernel") for p in payload)


def _death_note(code: int | None) -> str:
    """Why the kernel died, for ``ExecResult.error``."""
    how = f"exited with status {code}"
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        why = {"SIGXCPU": " (its CPU-time limit)", "SIGKILL": " (e.g. the CPU-time limit)"}
        how = f"was killed by {name}{why.get(name, '')}"
    return f"KernelDied: the Python process {how} while running this code. {_RESTARTED}"


def _cleanup(box: dict[str, Any]) -> None:
    """Stop a kernel's session and give back its uid (also run at exit by weakref.finalize)."""
    session, lease = box.pop("session", None), box.pop("lease", None)
    if session is not None:
        session.stop()
    if lease is not None:
        lease.release()


class PythonKernel:
    """A persistent, sandboxed Python kernel (see the module docstring). Thread-safe.

    ``startup_code`` (e.g. ``"import math"``) runs after every start and restart. ``start`` is
    optional: the first :meth:`execute` starts the kernel.
    """

    def __init__(
        self,
        limits: KernelLimits = KernelLimits(),
        *,
        startup_code: str | None = None,
        interrupt_grace: float = 2.0,
        start_timeout: float = 30.0,
    ) -> None:
        self.limits, self.startup_code = limits, startup_code
        self.interrupt_grace, self.start_timeout = interrupt_grace, start_timeout
        self._lock = threading.RLock()
        self._box: dict[str, Any] = {}
        nonce = secrets.token_hex(8)
        self._mark = re.compile(f"\x00cut:{nonce}:(\\d+)\x00")
        self._setup = setup_cell(limits.max_output_chars, nonce)
        self._closed = False
        self._finalizer = weakref.finalize(self, _cleanup, self._box)

    def start(self) -> None:
        """Start the kernel (about 0.7 s) unless it runs. Raises KernelError when it cannot."""
        with self._lock:
            if self._closed:
                raise KernelError("this Python kernel was shut down")
            if "session" in self._box:
                return
            limits = {k: v for k, v in asdict(self.limits).items() if k != "max_output_chars"}
            try:
                if "lease" not in self._box and (lease := sandbox.lease_uid()) is not None:
                    self._box["lease"] = lease
                uid = self._box["lease"].uid if "lease" in self._box else None
                session = KernelProcess(limits, uid, _KERNEL_OPTIONS)
            except OSError as exc:
                raise KernelError(f"could not start the Python kernel: {exc}") from exc
            self._box["session"] = session
            try:
                session.wait_ready(self.start_timeout)
                res = self._run(
                    session, self._setup, self.start_timeout, recover=False, silent=True
                )
                if not res.ok:
                    raise KernelError(f"the kernel's output guard failed: {res.text()}")
                if self.startup_code:
                    res = self._run(session, self.startup_code, self.start_timeout, recover=False)
                    if not res.ok:
                        raise KernelError(f"the kernel's startup code failed: {res.text()}")
            except BaseException:
                self._box.pop("session", None)
                session.stop()
                raise

    @property
    def workdir(self) -> Path:
        """The kernel's cwd and HOME: a fresh temporary folder on every (re)start."""
        return self._session().dirs.work

    @property
    def pid(self) -> int:
        """The kernel's process id."""
        return self._session().proc.pid

    @property
    def uid(self) -> int | None:
        """The dedicated uid the kernel runs as (None when the host is not root)."""
        return self._session().uid

    def _session(self) -> KernelProcess:
        session: KernelProcess | None = self._box.get("session")
        if session is None:
            raise KernelError("the Python kernel is not running: call start() first")
        return session

    def execute(self, code: str, timeout: float = 10.0) -> ExecResult:
        """Run ``code`` and return its output; state persists between calls.

        After ``timeout`` seconds the run is interrupted (state kept); if the kernel is not idle
        ``interrupt_grace`` seconds later, or if it dies, it is restarted (state lost) and the
        result says so. Raises KernelError only when the kernel cannot be (re)started.
        """
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        with self._lock:
            self.start()
            started = time.monotonic()
            result = self._run(self._session(), code, timeout)
            result.seconds = time.monotonic() - started
            return result

    async def aexecute(self, code: str, timeout: float = 10.0) -> ExecResult:
        """:meth:`execute` in a worker thread, for async callers."""
        return await asyncio.to_thread(self.execute, code, timeout)

    def _run(
        self,
        session: KernelProcess,
        code: str,
        timeout: float,
        *,
        recover: bool = True,
        silent: bool = False,
    ) -> ExecResult:
        """One execute request: collect its output; interrupt, and restart when ``recover``.

        A message that cannot be read (a bad signature, a broken frame) leaves the channel in
        an unknown state: the run ends with a ProtocolError and the kernel is restarted.
        """
        sink = _Output(self.limits.max_output_chars, self._mark)
        timed_out, note = False, None
        try:
            msg_id = session.client.execute(
                code, silent=silent, allow_stdin=False, stop_on_error=False
            )
            state = sink.collect(session, msg_id, timeout)
            timed_out = state == "timeout"
            if timed_out:  # interrupt; its KeyboardInterrupt traceback gives way to the note
                session.interrupt()
                state = sink.collect(session, msg_id, self.interrupt_grace)
                how = "was interrupted; variables and imports are kept."
                if state != "idle":
                    state, how = "stuck", f"did not stop when interrupted. {_RESTARTED}"
                note = f"TimeoutError: the code ran longer than {timeout:g}s and {how}"
            elif state == "dead":
                note = _death_note(session.proc.poll())
            elif _asked_exit(session.next(session.client.shell_channel, msg_id, 1.0)):
                state, note = "exit", f"SystemExit: the code called exit(). {_RESTARTED}"
        except Exception as exc:  # any unreadable message: restart, never raise
            why = cut(f"{type(exc).__name__}: {exc}", 300)
            state = "broken"
            note = (
                f"ProtocolError: a message from the kernel could not be read ({why}). {_RESTARTED}"
            )
        restarted = state != "idle" and recover
        if restarted:
            self._restart()
        return sink.result(note, timed_out, restarted)

    def _restart(self) -> None:
        with self._lock:
            session = self._box.pop("session", None)
            if session is not None:
                session.stop()
            self.start()

    def reset(self) -> None:
        """Fresh state for the next trajectory, by restarting the kernel (about 0.7 s).

        A restart, not ``%reset -f``: only a new process also drops imported and patched
        modules, threads, child processes, signal handlers, open files and the CPU time used,
        and it gets a new empty workdir. :class:`KernelPool` resets in the background.
        """
        self._restart()

    def shutdown(self) -> None:
        """Stop the kernel and everything it started, and delete its folders. Idempotent."""
        with self._lock:
            self._closed = True
            self._finalizer()

    def __enter__(self) -> PythonKernel:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class KernelPool:
    """Up to ``size`` kernels, each lent to one trajectory at a time, started on demand.

    A returned kernel is reset (restarted) in a background thread before it is lent again, so
    every trajectory starts from a fresh interpreter and an empty workdir. ``prestart=True``
    starts all kernels in the background right away. Waiting in :meth:`akernel` holds no
    thread, so many waiting trajectories cannot starve the event loop's executor.
    """

    def __init__(
        self,
        size: int = 2,
        limits: KernelLimits = KernelLimits(),
        *,
        startup_code: str | None = None,
        prestart: bool = False,
    ) -> None:
        if size < 1:
            raise ValueError("a KernelPool needs size >= 1")
        self.size, self.limits, self.startup_code = size, limits, startup_code
        self._cond = threading.Condition()
        self._idle: list[PythonKernel] = []
        self._all: set[PythonKernel] = set()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._workers = ThreadPoolExecutor(size, thread_name_prefix="toolpath-kernel-reset")
        for _ in range(size if prestart else 0):
            self._workers.submit(self._prestart)

    def _take(self) -> tuple[PythonKernel, bool] | None:
        """Under the lock: an idle kernel, or a new one to start (True), or None when all lent."""
        if self._closed:
            raise KernelError("the kernel pool is closed")
        if self._idle:
            return self._idle.pop(), False
        if len(self._all) < self.size:
            kernel = PythonKernel(self.limits, startup_code=self.startup_code)
            self._all.add(kernel)
            return kernel, True
        return None

    def _notify(self) -> None:
        """Under the lock: wake the threads and coroutines waiting for a kernel."""
        self._cond.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(_wake, future)

    def _drop(self, kernel: PythonKernel) -> None:
        kernel.shutdown()
        with self._cond:
            self._all.discard(kernel)
            self._notify()

    def _start(self, kernel: PythonKernel) -> None:
        try:
            kernel.start()
        except BaseException:
            self._drop(kernel)
            raise

    def _prestart(self) -> None:
        with self._cond:
            taken = self._take() if not self._closed and len(self._all) < self.size else None
        if taken is not None:
            self._settle(*taken)

    def _settle(self, kernel: PythonKernel, fresh: bool) -> None:
        """Start (``fresh``) or reset the kernel, then make it idle; drop it on failure."""
        try:
            kernel.start() if fresh else kernel.reset()
        except Exception:
            self._drop(kernel)
            return
        with self._cond:
            if not self._closed:
                self._idle.append(kernel)
                self._notify()
                return
        kernel.shutdown()

    def _release(self, kernel: PythonKernel, fresh: bool = False) -> None:
        try:
            self._workers.submit(self._settle, kernel, fresh)
        except RuntimeError:  # closed: the executor takes no more work
            kernel.shutdown()

    @contextlib.contextmanager
    def kernel(self) -> Iterator[PythonKernel]:
        """Borrow a kernel for one trajectory (blocks until one is free)."""
        with self._cond:
            while (taken := self._take()) is None:
                self._cond.wait()
        kernel, fresh = taken
        if fresh:
            self._start(kernel)
        try:
            yield kernel
        finally:
            self._release(kernel)

    @contextlib.asynccontextmanager
    async def akernel(self) -> AsyncIterator[PythonKernel]:
        """:meth:`kernel` for asyncio."""
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if (taken := self._take()) is None:
                    wake = loop.create_future()
                    self._waiters.append((loop, wake))
            if taken is not None:
                break
            await wake  # a wake-up call only: cancelling here leaks nothing
        kernel, fresh = taken
        if fresh:
            try:
                await asyncio.to_thread(self._start, kernel)
            except asyncio.CancelledError:  # the thread goes on; hand its kernel back
                self._release(kernel, fresh=True)
                raise
        try:
            yield kernel
        finally:
            self._release(kernel)

    def close(self) -> None:
        """Shut every kernel down, lent ones included. Idempotent."""
        with self._cond:
            self._closed = True
            self._notify()
        self._workers.shutdown(wait=True, cancel_futures=True)
        with self._cond:
            kernels, self._idle = list(self._all), []
        for kernel in kernels:
            kernel.shutdown()

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def python_tool(kernel: PythonKernel, *, timeout: float = 10.0) -> Tool:
    """The ``python`` tool: run code in ``kernel`` and return what a model should read."""

    def python(code: str) -> str:
        """Run Python code in a persistent sandboxed Jupyter kernel and return its output.

        Variables and imports persist between calls. Print what you want to see; the value of
        the last expression is shown too. The working directory is a private temporary folder.
        Long outputs are cut in the middle.

        Args:
            code: The Python source to run.
        """
        return kernel.execute(code, timeout=timeout).text() or "(no output)"

    made = tool(python, name="python")
    made.description += f" Each call may run for at most {timeout:g} seconds."
    return made
