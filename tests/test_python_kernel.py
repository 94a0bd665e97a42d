"""The sandboxed Python kernel, with real kernels (no mocks).

Kernels are shared per module where a test leaves no state behind, to keep the suite fast.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

from toolpath.errors import KernelError
from toolpath.tools.code.kernel import (
    ExecResult,
    KernelLimits,
    KernelPool,
    PythonKernel,
    _Capped,
    cut,
    python_tool,
    strip_ansi,
)

ROOT = os.geteuid() == 0
FORK_LIMIT = 16


@pytest.fixture(scope="module")
def kernel() -> Iterator[PythonKernel]:
    """A kernel with the default limits, (re)started while the host has an API key set."""
    with pytest.MonkeyPatch.context() as mp, PythonKernel() as k:
        mp.setenv("OPENAI_API_KEY", "sk-test-must-not-leak")  # also set for every restart
        k.reset()
        yield k


@pytest.fixture(scope="module")
def small() -> Iterator[PythonKernel]:
    """A kernel with tight limits: 512 MB, 16 processes, 1 MB files."""
    with PythonKernel(KernelLimits(memory_mb=512, max_processes=FORK_LIMIT, file_size_mb=1)) as k:
        yield k


def _tasks(uid: int) -> int:
    """Tasks (threads included) the real ``uid`` runs: what RLIMIT_NPROC counts."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid:
            count += int(fields["Threads"])
    return count


# ------------------------------------------------------------------------------ pure helpers


def test_cut_keeps_head_and_tail_and_counts_what_it_drops() -> None:
    assert cut("short", 10) == "short"
    text = "a" * 50 + "b" * 50
    out = cut(text, 20)
    assert out == "a" * 10 + "\n... [80 characters cut] ...\n" + "b" * 10
    # cutting text that already holds a marker counts the characters that marker stood for
    assert "[1060 characters cut]" in cut(
        "x" * 40 + "\n... [1000 characters cut] ...\n" + "y" * 40, 20
    )


def test_strip_ansi() -> None:
    assert strip_ansi("\x1b[31mred\x1b[0m \x1b]0;title\x07ok") == "red ok"


def test_exec_result_text_and_ok() -> None:
    r = ExecResult(stdout="out\n", result="3", stderr="warn\n")
    assert r.ok and r.text() == "out\n3\nwarn"
    assert not ExecResult(error="ValueError: x").ok
    assert not ExecResult(timed_out=True).ok
    assert ExecResult().text() == ""


# ------------------------------------------------------------------------------ basic capture


def test_state_result_stdout_stderr(kernel: PythonKernel) -> None:
    assert kernel.execute("x = 20 + 1").ok
    r = kernel.execute("x * 2")
    assert r.result == "42" and r.stdout == "" and r.error is None
    r = kernel.execute("import sys\nprint('hello', x)\nprint('oops', file=sys.stderr)")
    assert (r.stdout, r.stderr, r.result) == ("hello 21\n", "oops\n", None)
    assert r.text() == "hello 21\noops"
    assert 0 < r.seconds < 5


def test_error_is_named_with_the_last_traceback_lines(kernel: PythonKernel) -> None:
    r = kernel.execute("def f(d):\n    return 1 / d\n\nprint('before')\nf(0)")
    assert not r.ok and not r.timed_out and not r.restarted
    assert r.stdout == "before\n"
    assert r.error is not None
    assert r.error.splitlines()[0] == "ZeroDivisionError: division by zero"
    assert "return 1 / d" in r.error
    assert r.text().startswith("before\nZeroDivisionError: division by zero")
    assert kernel.execute("1 +").error.startswith("SyntaxError")  # type: ignore[union-attr]


def test_ansi_is_stripped(kernel: PythonKernel) -> None:
    r = kernel.execute("print('\\x1b[31mred\\x1b[0m')\nraise ValueError('\\x1b[1mbold\\x1b[0m')")
    assert r.stdout == "red\n"
    assert r.error is not None and "\x1b" not in r.error and "ValueError: bold" in r.error
    assert "\x1b" not in r.text()


def test_long_output_is_cut_to_head_and_tail(kernel: PythonKernel) -> None:
    r = kernel.execute("print('a' * 10000 + 'b' * 10000)")
    text = r.text()
    assert len(text) < 4100
    assert text.startswith("a" * 2000) and text.endswith("b" * 2000)
    assert "\n... [16000 characters cut] ...\n" in text
    many = kernel.execute("for i in range(20000): print(i)").text()  # many small messages
    assert many.startswith("0\n1\n2\n") and many.endswith("19998\n19999")
    assert "characters cut]" in many


def test_a_huge_single_output_is_cut_inside_the_kernel(kernel: PythonKernel) -> None:
    pid = kernel.pid
    r = kernel.execute("print('x' * 10**8)", timeout=20)  # 100 MB: only head and tail are sent
    assert r.ok and not r.restarted and kernel.pid == pid
    cut_out = 10**8 + 1 - 2 * 4000
    assert r.stdout == "x" * 4000 + f"\n... [{cut_out} characters cut] ...\n" + "x" * 3999 + "\n"
    assert kernel.execute("print('ok')").stdout == "ok\n"
    # in a fresh host process (this one's peak depends on earlier tests), peak RSS stays small
    assert _fresh_host_peak_mb("print('x' * 10**8)", timeout=20) < 150  # baseline ~50 MB


def test_output_within_the_limit_is_untouched(kernel: PythonKernel) -> None:
    r = kernel.execute("import sys\nprint('a' * 3999)\nsys.stderr.write('b' * 4000)")
    assert (r.stdout, r.stderr) == ("a" * 3999 + "\n", "b" * 4000)
    # the budget is per cell: the next cell has its own
    r = kernel.execute("for _ in range(3): print('c' * 1000)")
    assert r.stdout == ("c" * 1000 + "\n") * 3


def test_kernel_cut_markers_count_for_the_host() -> None:
    import re

    mark = re.compile("\x00cut:n0nce:(\\d+)\x00")
    capped = _Capped(5, mark)
    capped.add("hello")
    capped.add("\x00cut:n0nce:1000\x00world")
    assert capped.value() == "hello\n... [1000 characters cut] ...\nworld"
    other = _Capped(50, mark)
    other.add("a\x00cut:other:7\x00b")  # another kernel's (or a forged) marker is plain text
    assert other.value() == "a\x00cut:other:7\x00b"


def test_display_and_expression_values(kernel: PythonKernel) -> None:
    r = kernel.execute("from IPython.display import display\ndisplay('shown')\n[1, 2]")
    assert r.stdout == "'shown'\n" and r.result == "[1, 2]"


def test_numpy_and_sympy_import_under_the_default_memory_limit(kernel: PythonKernel) -> None:
    pytest.importorskip("numpy")
    pytest.importorskip("sympy")
    r = kernel.execute(
        "import numpy as np, sympy\nprint(np.arange(10).sum(), sympy.factor('x**2 - 1'))",
        timeout=60,
    )
    assert r.ok, r.text()
    assert r.stdout == "45 (x - 1)*(x + 1)\n"


# ------------------------------------------------------------------------------ isolation


def test_kernel_is_another_process_without_secrets(kernel: PythonKernel) -> None:
    assert kernel.pid != os.getpid()
    r = kernel.execute("import os\nos.getpid(), os.environ.get('OPENAI_API_KEY'), os.getcwd()")
    assert ast.literal_eval(r.result or "") == (kernel.pid, None, str(kernel.workdir))
    r = kernel.execute("print(sorted(k for k in os.environ if 'KEY' in k or 'TOKEN' in k))")
    assert r.stdout == "[]\n"
    assert kernel.execute("os.environ['HOME']").result == repr(str(kernel.workdir))


@pytest.mark.skipif(not ROOT, reason="privileges are dropped only when the host runs as root")
def test_kernel_drops_root(kernel: PythonKernel) -> None:
    r = kernel.execute("import os\nprint(os.getresuid(), os.getresgid(), os.getgroups())")
    uid = kernel.uid
    assert uid is not None and uid != 0
    assert r.stdout == f"{(uid,) * 3} {(uid,) * 3} []\n"
    assert "PermissionError" in (kernel.execute("os.setuid(0)").error or "")
    # the host's environment (and its secrets) cannot be read through /proc either
    r = kernel.execute(f"open('/proc/{os.getpid()}/environ').read()")
    assert r.error is not None and r.error.startswith("PermissionError")
    assert (
        kernel.execute("open('/proc/self/status').read().split('NoNewPrivs:')[1].split()[0]").result
        == "'1'"
    )


def test_files_land_in_the_workdir_which_is_fresh_after_reset() -> None:
    host_cwd = Path.cwd()
    with PythonKernel() as k:
        first = k.workdir
        assert first.is_dir() and list(first.iterdir()) == [] and first != host_cwd
        assert k.execute("open('out.txt', 'w').write('hi')\ny = 1").ok
        assert (first / "out.txt").read_text() == "hi"
        assert not (host_cwd / "out.txt").exists()
        k.reset()
        assert k.workdir != first and not first.exists()
        assert list(k.workdir.iterdir()) == []
        assert k.execute("import os\nos.listdir('.')").result == "[]"
        r = k.execute("y")
        assert r.error is not None and r.error.startswith("NameError")


def test_shutdown_ends_the_process_and_removes_the_folders() -> None:
    k = PythonKernel()
    k.start()
    pid, base = k.pid, k.workdir.parent
    k.shutdown()
    assert not base.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(KernelError):
        k.execute("1")
    k.shutdown()  # idempotent


def test_startup_code_runs_after_every_start() -> None:
    with PythonKernel(startup_code="import math") as k:
        assert k.execute("math.pi > 3").result == "True"
        k.reset()
        assert k.execute("math.tau > 6").result == "True"
    with pytest.raises(KernelError, match="startup code"):
        PythonKernel(startup_code="import no_such_module_xyz").start()


# ------------------------------------------------------------------------------ timeouts


def test_timeout_interrupts_and_keeps_state(kernel: PythonKernel) -> None:
    kernel.execute("kept = 'yes'")
    start = time.monotonic()
    r = kernel.execute("print('started', flush=True)\nwhile True: pass", timeout=1)
    assert time.monotonic() - start < 2.5
    assert r.timed_out and not r.restarted and not r.ok
    assert r.stdout == "started\n"
    assert r.error is not None and r.error.startswith("TimeoutError") and "kept" in r.error
    assert kernel.execute("kept").result == "'yes'"


def test_uninterruptible_c_call_restarts(kernel: PythonKernel) -> None:
    pid = kernel.pid
    kernel.execute("lost = 1")
    r = kernel.execute("sum(range(10**11))", timeout=1)
    assert r.timed_out and r.restarted
    assert r.error is not None and "restarted" in r.error
    assert kernel.pid != pid
    assert kernel.execute("1 + 1").result == "2"
    assert kernel.execute("lost").error.startswith("NameError")  # type: ignore[union-attr]


def test_code_that_swallows_keyboard_interrupt_restarts(kernel: PythonKernel) -> None:
    code = "import time\nwhile True:\n  try:\n    time.sleep(10)\n  except KeyboardInterrupt:\n    pass"
    r = kernel.execute(code, timeout=1)
    assert r.timed_out and r.restarted
    assert kernel.execute("'alive'").result == "'alive'"


# ------------------------------------------------------------------------------ death and limits


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("import os; os._exit(1)", "exited with status 1"),
        ("import os; os.kill(os.getpid(), 9)", "SIGKILL"),
    ],
)
def test_killed_kernel_is_restarted(kernel: PythonKernel, code: str, why: str) -> None:
    pid = kernel.pid
    r = kernel.execute(code)
    assert r.restarted and not r.timed_out and not r.ok
    assert r.error is not None and r.error.startswith("KernelDied") and why in r.error
    assert kernel.pid != pid
    assert kernel.execute("6 * 7").result == "42"


def test_exit_restarts_the_kernel(kernel: PythonKernel) -> None:
    r = kernel.execute("exit()")
    assert r.restarted and r.error is not None and "exit()" in r.error
    assert kernel.execute("1").result == "1"


def test_memory_bombs_are_stopped(small: PythonKernel) -> None:
    r = small.execute("x = bytearray(8 * 1024**3)")
    assert r.error is not None and r.error.startswith("MemoryError")
    r = small.execute("chunks = []\nwhile True:\n    chunks.append(' ' * 10**6)", timeout=30)
    assert not r.ok and not r.timed_out
    assert (r.error or "").startswith("MemoryError") or r.restarted
    small.execute("chunks = None")
    assert small.execute("1 + 1").result == "2"
    # the host never held the memory: measured in a fresh host process
    bomb = "chunks = []\nwhile True:\n    chunks.append(' ' * 10**6)"
    assert _fresh_host_peak_mb(bomb, timeout=30, memory_mb=512) < 150


def _fresh_host_peak_mb(code: str, *, timeout: float, memory_mb: int = 2048) -> float:
    """Run ``code`` in a kernel owned by a new host process; that host's peak RSS in MB."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from toolpath.tools.code.kernel import KernelLimits, PythonKernel\n"
        f"with PythonKernel(KernelLimits(memory_mb={memory_mb})) as k:\n"
        f"    k.execute({code!r}, timeout={timeout})\n"
        "    assert k.execute('1 + 1').result == '2'\n"
        # VmHWM, not ru_maxrss: ru_maxrss survives exec and would carry pytest's own peak
        "import re\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout + 120,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def test_file_size_limit(small: PythonKernel) -> None:
    r = small.execute("open('big', 'wb').write(b'x' * 2 * 1024 * 1024)")
    assert r.error is not None and "File too large" in r.error
    assert small.execute("open('ok', 'wb').write(b'x' * 1000)").result == "1000"


def test_cpu_time_limit_kills_and_restarts() -> None:
    with PythonKernel(KernelLimits(cpu_seconds=2)) as k:
        r = k.execute("while True: pass", timeout=15)
        assert r.restarted and not r.timed_out
        assert any(sig in (r.error or "") for sig in ("SIGXCPU", "SIGKILL")), r.error
        assert k.execute("2 + 2").result == "4"


def test_fork_bomb_is_bounded(small: PythonKernel) -> None:
    code = (
        "import os, time\n"
        "made = 0\n"
        "for _ in range(200):\n"  # bounded even if the limit failed
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        try:\n"
        "            time.sleep(30)\n"
        "        finally:\n"
        "            os._exit(0)\n"
        "    made += 1\n"
        "print(made)"
    )
    pgid = small.pid
    try:
        r = small.execute(code, timeout=20)
        assert r.ok, r.text()
        made = int(r.stdout)
        assert 0 <= made < FORK_LIMIT
        if ROOT:
            assert small.uid is not None and _tasks(small.uid) <= FORK_LIMIT
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # the kernel and every child it forked
    r = small.execute("1 + 1")  # the dead kernel is noticed and replaced
    assert r.restarted and r.error is not None and "KernelDied" in r.error
    assert small.execute("1 + 1").result == "2"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("forked children survived")
    if ROOT:
        assert small.uid is not None and _tasks(small.uid) < FORK_LIMIT  # just the new kernel


# ------------------------------------------------------------------------------ pool and tool


@pytest.fixture(scope="module")
def pool() -> Iterator[KernelPool]:
    with KernelPool(size=2, startup_code="import math") as p:
        yield p


def test_pool_trajectories_get_clean_state(pool: KernelPool) -> None:
    with pool.kernel() as k:
        assert k.execute("secret = 1\nopen('f.txt', 'w').write('x')").ok
        first = k
    with pool.kernel() as a, pool.kernel() as b:  # both kernels: a fresh one and a reset one
        assert first in (a, b) and a is not b
        for k in (a, b):
            assert k.execute("secret").error.startswith("NameError")  # type: ignore[union-attr]
            assert list(k.workdir.iterdir()) == []
            assert k.execute("math.sqrt(16)").result == "4.0"


def test_pool_kernels_run_concurrently_from_threads(pool: KernelPool) -> None:
    both_lent = threading.Barrier(2, timeout=30)
    runs: list[tuple[float, float, str]] = []

    def trajectory() -> None:
        with pool.kernel() as k:
            both_lent.wait()
            start = time.monotonic()
            r = k.execute("import os, time\ntime.sleep(0.5)\nprint(os.getpid())")
            runs.append((start, time.monotonic(), r.stdout.strip()))

    threads = [threading.Thread(target=trajectory) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 2 and runs[0][2] != runs[1][2]
    assert max(r[0] for r in runs) < min(r[1] for r in runs)  # the two runs overlapped


async def test_pool_akernel(pool: KernelPool) -> None:
    async def trajectory(n: int) -> str | None:
        async with pool.akernel() as k:
            return (await k.aexecute(f"{n} * 2")).result

    assert await asyncio.gather(trajectory(1), trajectory(2), trajectory(3)) == ["2", "4", "6"]


async def test_many_waiting_trajectories_do_not_starve_the_executor(pool: KernelPool) -> None:
    # more waiters than the default executor has threads (waiting must not hold a thread)
    async def trajectory(n: int) -> str | None:
        async with pool.akernel() as k:
            return (await k.aexecute(f"{n}")).result

    n = (os.cpu_count() or 1) + 6
    results = await asyncio.wait_for(asyncio.gather(*map(trajectory, range(n))), timeout=30)
    assert results == [str(i) for i in range(n)]


async def test_cancelled_akernel_wait_leaks_nothing(pool: KernelPool) -> None:
    async with pool.akernel() as a, pool.akernel() as b:  # both lent
        waiter = asyncio.ensure_future(pool.akernel().__aenter__())
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert a is not b
    async with pool.akernel() as c, pool.akernel() as d:  # both come back
        assert {c, d} == {a, b}


def test_python_tool(kernel: PythonKernel) -> None:
    python = python_tool(kernel, timeout=5)
    assert python.name == "python"
    assert python.parameters["required"] == ["code"]
    assert "5 seconds" in python.description
    assert python.run({"code": "print(6*7)"}).strip() == "42"
    assert python.run({"code": "z = 1"}) == "(no output)"
    assert python.run({"code": "z + 1"}) == "2"
    assert python.run({"code": "1/0"}).startswith("ZeroDivisionError: division by zero")
    assert asyncio.run(python.arun({"code": "print('async')"})) == "async"
