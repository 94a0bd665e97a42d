"""Code that runs inside the kernel: installed by the host right after every (re)start.

:class:`toolpath.tools.code.kernel.PythonKernel` sends this file's source as a silent setup cell
and calls :func:`install`. It uses the standard library and the running ipykernel only: the
kernel may not be able to import toolpath.

- **Output caps.** ``sys.stdout`` and ``sys.stderr`` send a cell's first ``keep`` characters as
  they come, keep its last ``keep`` in memory and only count the rest; when the cell ends they
  send one marker with that count, then the tail. A flood of prints (or of a child process's
  output) never reaches the protocol, and the host sees what it would have kept anyway.
- **Message guard.** Every message the kernel packs (streams, results, displays, errors,
  replies) stays under ``limit`` bytes: longer strings are cut around the same marker. Text that
  cannot be encoded (a lone surrogate) is escaped, instead of the message silently vanishing.
- **Children.** The kernel becomes a child subreaper, and when a cell ends every process it
  started is killed, descendants and daemonized ones included: nothing runs on after its cell.
- **Streams back.** A cell that replaced ``sys.stdout`` or ``sys.stderr`` gets them back at the
  start of the next cell.
- **No raw echo.** ipykernel copies fd-level output to the kernel's log file; that copy goes to
  ``/dev/null`` instead, so a chatty child cannot fill the log to the file-size limit (which
  stops ipykernel's fd reader and then blocks every later child that prints).

The marker is ``NUL cut:<nonce>:<count> NUL``; the host turns it into its own
``[N characters cut]`` note and counts those characters as cut. :func:`setup_cell` (host side)
writes the cell.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

_ITEMS = 1000  # longest list or dict kept in a shrunk message
_DEPTH = 20
KEEP_MAX = 1_000_000
"""Most characters the kernel sends of a stream's head (and tail) per cell, whatever the limits."""
MESSAGE_LIMIT = 16 * 1024 * 1024
"""Largest message the kernel sends (bytes); the host's zmq sockets drop those over 64 MiB."""


@functools.cache
def _source() -> str:
    with open(__file__, encoding="utf-8") as f:
        return f.read()


def setup_cell(keep: int, nonce: str) -> str:
    """(Host side.) The silent cell that installs this module in a kernel, in no global name."""
    return (
        "def _toolpath_guard():\n"
        "    import types\n"
        "    module = types.ModuleType('toolpath_guard')\n"
        f"    exec(compile({_source()!r}, 'toolpath_guard', 'exec'), module.__dict__)\n"
        f"    module.install({min(keep, KEEP_MAX)}, {MESSAGE_LIMIT}, {nonce!r})\n"
        "_toolpath_guard()\n"
        "del _toolpath_guard\n"
    )


def install(keep: int, limit: int, nonce: str) -> None:
    """Cap this kernel's output at ``keep`` characters per stream and cell, messages at ``limit``."""
    from IPython import get_ipython

    shell: Any = get_ipython()

    def mark(count: int) -> str:
        return f"\x00cut:{nonce}:{count}\x00"

    session = shell.kernel.session
    session.pack = _guarded_pack(session.pack, keep, limit, mark)
    if hasattr(shell, "_tee"):  # IPython 9 copies every write of a cell into a list it keeps
        shell._tee = lambda channel: contextlib.nullcontext()
    caps = [_Cap(stream, keep, mark) for stream in (sys.stdout, sys.stderr)]

    def before(*_: object) -> None:
        for cap, name in zip(caps, ("stdout", "stderr"), strict=True):
            cap.reset()
            vars(cap.stream).pop("write", None)  # left by the capture around this setup cell
            if getattr(sys, name) is not cap.stream:  # a cell replaced it: back, for this cell
                setattr(sys, name, cap.stream)
                cap.stream.set_parent(shell.parent_header)

    def after(*_: object) -> None:
        reap()
        for cap in caps:
            _drain(cap)
            cap.finish()

    shell.events.register("pre_run_cell", before)
    shell.events.register("post_run_cell", after)
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    for stream in (sys.stdout, sys.stderr):
        echo = getattr(stream, "_original_stdstream_copy", None)
        with contextlib.suppress(OSError):
            if isinstance(echo, int):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, echo)
                os.close(null)


class _Cap:
    """One stream's cap: its ``write`` sends the head, keeps the tail, counts the middle."""

    def __init__(self, stream: Any, keep: int, mark: Callable[[int], str]) -> None:
        base = type(stream)
        self.stream, self.keep, self.mark = stream, keep, mark
        write = base.write  # a function; or, installed twice, the earlier cap's bound method
        self.send: Callable[[str], Any] = (
            functools.partial(write, stream) if isinstance(write, types.FunctionType) else write
        )
        self.lock = threading.Lock()
        self.sent, self.dropped, self.size, self.writes = 0, 0, 0, 0
        self.tail: list[str] = []
        # a subclass, not an instance attribute: code that patches and restores ``write`` for a
        # cell (IPython's output capture) restores this one. A bound method is not rebound.
        attrs = {"write": self.write, "__module__": base.__module__}
        stream.__class__ = type(base.__name__, (base,), attrs)

    def reset(self) -> None:
        """A new cell: a fresh budget (a tail left by threads between cells is dropped)."""
        with self.lock:
            self.sent, self.dropped, self.size, self.tail = 0, 0, 0, []

    def write(self, text: str) -> int:
        """``stream.write``: as fast as it can be once the head is sent (a flood)."""
        if not isinstance(text, str):
            return self.send(text)  # its TypeError
        n = len(text)
        with self.lock:
            self.writes += 1
            if self.sent >= self.keep:
                self.tail.append(text)
                self.size += n
                if self.size > 2 * self.keep:  # amortized: joins once per ``keep`` characters
                    self._trim()
                return n
            room = self.keep - self.sent
            head = text[:room]
            self.sent += len(head)
            if n > room:
                self.tail.append(text[room:])
                self.size += n - room
                self._trim()
        if head:
            self.send(head)
        return n

    def _trim(self) -> None:
        if self.size > self.keep:
            joined = "".join(self.tail)
            self.dropped += len(joined) - self.keep
            self.tail, self.size = [joined[-self.keep :]], self.keep

    def finish(self) -> None:
        """The cell ended: send the marker and the tail, if the head budget ran out."""
        with self.lock:
            self._trim()
            text = (self.mark(self.dropped) if self.dropped else "") + "".join(self.tail)
            self.sent, self.dropped, self.size, self.tail = 0, 0, 0, []
        if text:
            with contextlib.suppress(Exception):
                self.send(text)


def _drain(cap: _Cap, limit: float = 2.0) -> None:
    """Wait until ipykernel's fd reader has passed on what children wrote to fd 1 or 2.

    A child's output goes through a pipe that a reader thread empties into the stream; when
    the cell ends, up to a pipe buffer (64 KiB) of it can still be in the pipe, and would be
    lost or land in the next cell. Only a cell that left output there waits (at most
    ``limit`` seconds): until the pipe is empty, then until the reader's last chunk is
    written.
    """
    fid = getattr(cap.stream, "_fid", None)
    if not isinstance(fid, int):
        return
    import array
    import fcntl
    import termios
    import time

    pending = array.array("i", [0])
    deadline = time.monotonic() + limit
    waited = False
    while time.monotonic() < deadline:
        try:
            fcntl.ioctl(fid, termios.FIONREAD, pending, True)
        except OSError:
            return
        if not pending[0]:
            break
        waited = True
        time.sleep(0.002)
    seen = -1
    while waited and cap.writes != seen and time.monotonic() < deadline:
        seen = cap.writes
        time.sleep(0.005)


def _guarded_pack(
    pack: Callable[[Any], bytes], keep: int, limit: int, mark: Callable[[int], str]
) -> Callable[[Any], bytes]:
    """``pack`` whose output never exceeds ``limit`` bytes and never fails on bad text."""

    def guarded(obj: Any) -> bytes:
        try:
            data = pack(obj)
        except Exception:  # a lone surrogate, which no encoder accepts
            data = None
        if data is not None and len(data) <= limit:
            return data
        for size, items in ((keep, _ITEMS), (100, 20)):
            with contextlib.suppress(Exception):
                data = pack(_shrunk(obj, size, items, mark, 0))
                if len(data) <= limit:
                    return data
        return pack({})

    return guarded


def _shrunk(obj: Any, keep: int, items: int, mark: Callable[[int], str], depth: int) -> Any:
    """``obj`` with every string cut to head and tail and escaped, containers cut to ``items``."""
    if isinstance(obj, str):
        if len(obj) > 2 * keep:
            obj = obj[:keep] + mark(len(obj) - 2 * keep) + obj[len(obj) - keep :]
        return obj.encode("utf-8", "backslashreplace").decode("utf-8")
    if depth >= _DEPTH and isinstance(obj, (dict, list, tuple)):
        return "..."
    if isinstance(obj, dict):
        return {
            _shrunk(k, keep, items, mark, depth + 1): _shrunk(v, keep, items, mark, depth + 1)
            for k, v in list(obj.items())[:items]
        }
    if isinstance(obj, (list, tuple)):
        return [_shrunk(v, keep, items, mark, depth + 1) for v in obj[:items]]
    return obj


def _children() -> list[int]:
    """The kernel's child processes (those of every thread)."""
    kids: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                kids += map(int, f.read().split())
        except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: scan /proc
            return _children_by_scan()
        except (OSError, ValueError):
            continue
    return kids


def _children_by_scan() -> list[int]:
    me, kids = os.getpid(), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/stat") as f:
            if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                kids.append(int(pid))
    return kids


def reap() -> None:
    """Kill every process the kernel started, until none is left (one syscall when none runs)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return  # no child at all: the common case
    except OSError:
        pass
    for _ in range(64):  # orphans of the killed come back to this subreaper: kill them next
        kids = _children()
        if not kids:
            return
        for pid in kids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in kids:
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
