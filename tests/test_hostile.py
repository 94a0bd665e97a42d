"""Hostile generated code against the real sandboxed kernel: floods, stdin, escaping children.

Every case ends with the host alive, nothing changed outside the kernel's work folder, and the
next ``print(1+1)`` giving ``2``. CI runs this module as root and as an unprivileged user
(``setpriv --reuid=65534 --regid=65534 --clear-groups``). Confinement of files and network
(Landlock) has its own cases; these cover output, stdin and processes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

from toolpath.tools.code.kernel import PythonKernel

pytestmark = pytest.mark.hostile

KEEP = 4000  # KernelLimits().max_output_chars


@pytest.fixture(scope="module")
def kernel() -> Iterator[PythonKernel]:
    with PythonKernel() as k:
        yield k


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder outside the work folder that the kernel's user could write to (mode 0777)."""
    with tempfile.TemporaryDirectory(prefix="toolpath-hostile-") as name:
        os.chmod(name, 0o777)
        yield Path(name)


def _still_fine(kernel: PythonKernel, pid: int | None = None) -> None:
    """The kernel answers ``print(1+1)`` with 2 (and is the same process, when ``pid``)."""
    r = kernel.execute("print(1+1)")
    assert (r.stdout, r.error) == ("2\n", None)
    if pid is not None:
        assert kernel.pid == pid, "the kernel was restarted"


def _cut(head: str, dropped: int, tail: str) -> str:
    return f"{head}\n... [{dropped} characters cut] ...\n{tail}"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ------------------------------------------------------------------------------ output


def test_a_50_mb_print(kernel: PythonKernel) -> None:
    pid = kernel.pid
    for _ in range(3):  # IPython 9 keeps a copy of every write: ~50 MB more per print
        r = kernel.execute("print('x' * 50_000_000)", timeout=30)
        assert r.ok and not r.restarted, r.text()
        assert r.stdout == _cut("x" * KEEP, 50_000_001 - 2 * KEEP, "x" * (KEEP - 1) + "\n")
        assert r.seconds < 10
    status = Path(f"/proc/{pid}/status").read_text()
    rss_mb = int(status.split("VmRSS:")[1].split()[0]) / 1024
    assert rss_mb < 120, f"the kernel holds {rss_mb:.0f} MB after printing"  # fresh: ~50 MB
    _still_fine(kernel, pid)


def test_a_flood_of_two_million_lines(kernel: PythonKernel) -> None:
    pid = kernel.pid
    r = kernel.execute("for i in range(2_000_000):\n    print(i)", timeout=90)
    assert r.ok and not r.restarted, r.text()
    total = sum(len(str(i)) + 1 for i in range(2_000_000))
    assert r.stdout.startswith("0\n1\n2\n3\n") and r.stdout.endswith("\n1999998\n1999999\n")
    assert f"\n... [{total - 2 * KEEP} characters cut] ...\n" in r.stdout
    assert len(r.stdout) < 2 * KEEP + 100
    _still_fine(kernel, pid)


def test_a_flood_on_both_streams_from_a_child_process(kernel: PythonKernel) -> None:
    # fd-level output (not print): it used to fill the kernel's log to the file-size limit,
    # after which every child that printed blocked forever
    pid = kernel.pid
    code = (
        "import subprocess\n"
        "subprocess.run('yes out | head -c 100000000; yes err | head -c 100000000 >&2', "
        "shell=True, check=True)"
    )
    r = kernel.execute(code, timeout=60)
    assert r.ok, r.text()
    assert r.stdout.startswith("out\nout\n") and "characters cut] ...\nout\n" in r.stdout
    assert r.stderr.startswith("err\nerr\n") and r.stderr.endswith("err\n")
    for _ in range(2):
        r = kernel.execute("import subprocess\nsubprocess.run(['seq', '100000'], check=True)")
        assert r.ok and r.stdout.startswith("1\n2\n3\n") and "\n99999\n100000\n" in r.stdout
    _still_fine(kernel, pid)


def test_a_huge_error_and_a_huge_result_are_cut(kernel: PythonKernel) -> None:
    pid = kernel.pid
    r = kernel.execute("raise ValueError('e' * 30_000_000)", timeout=30)
    assert r.error is not None and r.error.startswith("ValueError: eeee")
    assert "characters cut]" in r.error and len(r.error) < KEEP + 100
    r = kernel.execute("'r' * 30_000_000", timeout=30)
    assert r.ok and r.result is not None
    assert r.result.startswith("'rrrr") and r.result.endswith("rrrr'")
    assert f"[{30_000_002 - 2 * KEEP} characters cut]" in r.result
    _still_fine(kernel, pid)


def test_text_that_cannot_be_encoded(kernel: PythonKernel) -> None:
    # a lone surrogate made ipykernel drop the message: the output, or even the error, vanished
    pid = kernel.pid
    assert kernel.execute("print('a\\ud800b')").stdout == "a\\ud800b\n"
    r = kernel.execute("raise ValueError('\\ud800')")
    assert not r.ok and r.error is not None and r.error.startswith("ValueError: \\ud800")
    _still_fine(kernel, pid)


def test_replaced_streams_come_back(kernel: PythonKernel) -> None:
    pid = kernel.pid
    r = kernel.execute("import os, sys\nsys.stdout = open(os.devnull, 'w')\nsys.stderr = None")
    assert r.ok, r.text()
    _still_fine(kernel, pid)


def test_code_that_undoes_the_output_guard(kernel: PythonKernel) -> None:
    # the host still never raises: the oversized message is dropped whole, the kernel restarted
    code = (
        "import sys\n"
        "from jupyter_client.session import json_packer\n"
        "get_ipython().kernel.session.pack = json_packer\n"
        "type(sys.stdout).__mro__[1].write(sys.stdout, 'x' * 80_000_000)\n"
        "sys.stdout.flush()"
    )
    start = time.monotonic()
    r = kernel.execute(code, timeout=3)
    assert time.monotonic() - start < 3 + kernel.interrupt_grace + 10
    assert len(r.text()) < 2 * KEEP
    assert r.ok or r.restarted, r.text()
    _still_fine(kernel)
    r = kernel.execute("print('x' * 50_000_000)", timeout=30)  # the guard is back
    assert r.ok and "characters cut]" in r.stdout


def test_messages_the_host_cannot_verify(kernel: PythonKernel) -> None:
    # issue 18's symptom: execute raised "ValueError: Invalid Signature", and so did the next
    # calls, which met the rest of the bad messages; now the run ends in an error and a restart
    r = kernel.execute("get_ipython().kernel.session.key = b'forged'\nprint('hi')", timeout=10)
    assert r.restarted and not r.timed_out
    assert r.error is not None and r.error.startswith("ProtocolError")
    assert "Invalid Signature" in r.error
    _still_fine(kernel)
    _still_fine(kernel)


# ------------------------------------------------------------------------------ stdin


def test_input_fails_at_once(kernel: PythonKernel) -> None:
    pid = kernel.pid
    start = time.monotonic()
    r = kernel.execute("input('your name? ')", timeout=10)
    assert time.monotonic() - start < 5 and not r.timed_out
    assert r.error is not None and r.error.startswith("StdinNotImplementedError")
    assert kernel.execute("import sys\nsys.stdin.read()", timeout=10).result == "''"
    _still_fine(kernel, pid)


# ------------------------------------------------------------------------------ processes


def test_no_child_process_outlives_its_cell(kernel: PythonKernel, outside: Path) -> None:
    """A plain child, a backgrounded grandchild in its own session and a double-forked daemon:
    each would write a file a second later (in the work folder and outside it); all are killed
    when the cell ends."""
    pid, work = kernel.pid, kernel.workdir
    code = f"""
import os, subprocess, time
sleeper = subprocess.Popen(["sleep", "30"])
shell = subprocess.Popen(
    ["/bin/sh", "-c", "(sleep 1; echo x > late-sh; echo x > {outside}/late-sh) & echo $!"],
    stdout=subprocess.PIPE, start_new_session=True,
)
grandchild = int(shell.stdout.readline())
child = os.fork()
if child == 0:  # a daemon: new session, double fork, then write later
    os.setsid()
    if os.fork():
        os._exit(0)
    time.sleep(1)
    for folder in (".", {str(outside)!r}):
        with open(os.path.join(folder, "late-py"), "w") as f:
            f.write("x")
    os._exit(0)
print(sleeper.pid, shell.pid, grandchild, child)
"""
    r = kernel.execute(code, timeout=20)
    assert r.ok, r.text()
    pids = [int(x) for x in r.stdout.split()]
    assert len(pids) == 4
    time.sleep(2)  # the writers would be done by now
    assert not [p for p in pids if _alive(p)]
    assert list(outside.iterdir()) == []
    assert not (work / "late-sh").exists() and not (work / "late-py").exists()
    _still_fine(kernel, pid)


def test_a_child_may_run_during_its_cell(kernel: PythonKernel) -> None:
    pid = kernel.pid
    code = (
        "import subprocess, time\n"
        "p = subprocess.Popen(['sh', '-c', 'sleep 0.3; echo done > child.txt'])\n"
        "p.wait()\n"
        "print(open('child.txt').read().strip(), p.returncode)"
    )
    assert kernel.execute(code, timeout=20).stdout == "done 0\n"
    _still_fine(kernel, pid)


def test_a_c_stack_overflow_crashes_only_the_kernel(kernel: PythonKernel) -> None:
    code = (
        "import sys\n"
        "sys.setrecursionlimit(10**8)\n"
        "x = []\n"
        "for _ in range(10**6):\n"
        "    x = [x]\n"
        "repr(x)"  # C recursion, unchecked at this limit: SIGSEGV
    )
    pid = kernel.pid
    r = kernel.execute(code, timeout=30)
    assert r.restarted and not r.timed_out and kernel.pid != pid
    assert r.error is not None and r.error.startswith("KernelDied"), r.error
    _still_fine(kernel)
