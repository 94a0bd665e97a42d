"""Hostile code against the kernel's confinement: files outside its folders, network, syscalls.

Real kernels, real files and real sockets on 127.0.0.1. Every target is made readable (0644)
or writable (0777) for the kernel's uid, so only the sandbox (Landlock, the network namespace,
seccomp) can stop it. Each case ends with the kernel still answering ``print(1+1)``.

CI runs this module as root (the kernel gets a leased uid and a network namespace too) and as an
unprivileged user (Landlock and seccomp alone).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

from toolpath.tools.code import confine, sandbox
from toolpath.tools.code.kernel import KernelLimits, PythonKernel

ROOT = os.geteuid() == 0
ABI = confine.landlock_abi()
pytestmark = pytest.mark.hostile


def _need_landlock() -> None:
    if ABI < 4:
        pytest.skip(f"needs Landlock ABI 4+ (Linux 6.7+); this machine has {ABI}")


@pytest.fixture(scope="module")
def kernel() -> Iterator[PythonKernel]:
    """A kernel with the default limits: no network."""
    _need_landlock()
    with PythonKernel() as k:
        yield k


@pytest.fixture(scope="module")
def online() -> Iterator[PythonKernel]:
    """A kernel with ``KernelLimits(network=True)``."""
    _need_landlock()
    with PythonKernel(KernelLimits(network=True)) as k:
        yield k


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder outside every kernel folder, open to all (0777) like /tmp, with a home inside.

    ``home/.ssh/id_rsa`` and ``home/notes.txt`` are world-readable (0644), ``home/.bashrc``
    world-writable, so the kernel's uid could read and write them without the sandbox.
    """
    base = Path(tempfile.mkdtemp(prefix="toolpath-hostile-", dir="/tmp"))
    home = base / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
    (home / "notes.txt").write_text("shadow-like\n")
    (home / ".bashrc").write_text("# untouched\n")
    for path in (base, home, home / ".ssh"):
        path.chmod(0o777)
    for path in (home / ".ssh" / "id_rsa", home / "notes.txt", home / ".bashrc"):
        path.chmod(0o666)
    yield home
    shutil.rmtree(base, ignore_errors=True)


def _still_works(kernel: PythonKernel) -> None:
    result = kernel.execute("print(1+1)")
    assert result.stdout == "2\n", result.text()


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


# ------------------------------------------------------------------------------ files


@pytest.mark.parametrize("name", [".ssh/id_rsa", "notes.txt"])
def test_files_outside_the_work_folder_cannot_be_read(
    kernel: PythonKernel, outside: Path, name: str
) -> None:
    target = outside / name
    assert target.stat().st_mode & 0o004  # readable by any uid: only the sandbox stops it
    result = kernel.execute(f"print(open({str(target)!r}).read())")
    assert result.error is not None and result.error.startswith("PermissionError"), result.text()
    assert "secret" not in result.text() and "shadow" not in result.text()
    listing = kernel.execute(f"import os\nos.listdir({str(outside)!r})")
    assert listing.error is not None and listing.error.startswith("PermissionError")
    _still_works(kernel)


def test_host_files_cannot_be_read(kernel: PythonKernel) -> None:
    """The project's source, another kernel's folder and the system's secrets stay shut."""
    import toolpath

    source = Path(toolpath.__file__)
    with PythonKernel() as other:
        other.execute("open('mine.txt', 'w').write('private')")
        mine = other.workdir / "mine.txt"
        for path in (source, mine, Path("/etc/shadow"), Path("/etc/hostname")):
            result = kernel.execute(f"open({str(path)!r}, 'rb').read(10)")
            assert result.error is not None, f"{path}: {result.text()}"
            assert result.error.startswith(("PermissionError", "FileNotFoundError"))
        result = kernel.execute(f"open({str(source)!r}, 'rb').read(10)")
        assert result.error is not None and result.error.startswith("PermissionError")
    _still_works(kernel)


def test_writes_outside_the_work_folder_fail(kernel: PythonKernel, outside: Path) -> None:
    before = _tree(outside)
    name = f"toolpath-escape-{secrets.token_hex(4)}"
    targets = [
        outside / ".bashrc",  # an existing file: append
        outside / "new.txt",  # a new file in the home-like folder
        outside / ".ssh" / "authorized_keys",
        Path("/tmp") / name,
        Path(tempfile.gettempdir()) / name,
        kernel.workdir.parent / name,  # the kernel's own base folder, beside work/
    ]
    try:
        for target in targets:
            code = f"open({str(target)!r}, 'a').write('echo pwned\\n')"
            result = kernel.execute(code)
            assert result.error is not None and result.error.startswith("PermissionError"), (
                f"{target}: {result.text()}"
            )
        for code in (  # other ways to change the folder: rename, mkdir, symlink, remove
            f"import os\nos.rename({str(outside / 'notes.txt')!r}, {str(outside / 'x')!r})",
            f"import os\nos.mkdir({str(outside / 'd')!r})",
            f"import os\nos.symlink('/etc/passwd', {str(outside / 'link')!r})",
            f"import os\nos.unlink({str(outside / '.bashrc')!r})",
            f"import shutil\nshutil.copy('/etc/passwd', {str(outside)!r})",
        ):
            result = kernel.execute(code)
            assert result.error is not None and "PermissionError" in result.error, result.text()
        assert _tree(outside) == before
        assert all(not target.exists() for target in targets[3:])
        assert (outside / ".bashrc").read_text() == "# untouched\n"
    finally:
        for target in targets[3:]:
            target.unlink(missing_ok=True)
    ok = kernel.execute(
        "open('inside.txt', 'w').write('fine')\nimport tempfile\ntempfile.mkstemp()"
    )
    assert ok.ok, ok.text()
    assert (kernel.workdir / "inside.txt").read_text() == "fine"
    _still_works(kernel)


# ------------------------------------------------------------------------------ network


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on 127.0.0.1: its port and what the connections it accepted sent."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                received.append(conn.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join(5)
    server.close()


CONNECT = (
    "import socket\n"
    "s = socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
    "s.sendall(b'hello from the kernel')\n"
    "s.close()\n"
    "print('connected')"
)


def test_loopback_tcp_is_unreachable(kernel: PythonKernel, listener: tuple[int, list]) -> None:
    port, received = listener
    result = kernel.execute(CONNECT.format(port=port), timeout=10)
    assert result.error is not None and "connected" not in result.stdout, result.text()
    assert result.error.startswith(("PermissionError", "OSError", "ConnectionRefusedError"))
    bind = kernel.execute("import socket\nsocket.create_server(('127.0.0.1', 0))")
    assert bind.error is not None, bind.text()
    assert received == []
    _still_works(kernel)


def test_udp_is_blocked_too(kernel: PythonKernel) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(1)
        code = (
            "import socket\n"
            "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"u.sendto(b'leak', ('127.0.0.1', {sink.getsockname()[1]}))"
        )
        result = kernel.execute(code)
        assert result.error is not None, result.text()
        with pytest.raises(TimeoutError):
            sink.recv(100)
    _still_works(kernel)


def test_network_true_allows_the_connection(
    online: PythonKernel, listener: tuple[int, list]
) -> None:
    port, received = listener
    result = online.execute(CONNECT.format(port=port), timeout=10)
    assert result.stdout == "connected\n", result.text()
    for _ in range(20):
        if received:
            break
        threading.Event().wait(0.1)
    assert received == [b"hello from the kernel"]
    # files stay confined with the network on
    result = online.execute("open('/etc/hostname').read()")
    assert result.error is not None and result.error.startswith(("PermissionError", "FileNot"))
    _still_works(online)


# ------------------------------------------------------------------------------ processes


@pytest.mark.skipif(not ROOT and ABI < 6, reason="Landlock scopes signals from ABI 6 (Linux 6.12)")
def test_the_host_cannot_be_signalled(kernel: PythonKernel) -> None:
    result = kernel.execute(f"import os\nos.kill({os.getpid()}, 0)")
    assert result.error is not None and result.error.startswith("PermissionError"), result.text()
    assert kernel.execute(f"import os\nos.getppid() == {os.getpid()}").result == "True"
    _still_works(kernel)


@pytest.mark.parametrize(
    ("call", "what"),
    [
        ("l.unshare(0x10000000)", "a user namespace"),  # CLONE_NEWUSER: allowed to all users
        ("l.ptrace(0, 0, 0, 0)", "ptrace"),  # PTRACE_TRACEME
        ("l.syscall(321, 0, 0, 0)", "bpf"),
    ],
)
@pytest.mark.skipif(not confine.seccomp_works(), reason="no seccomp filter for this machine")
def test_dangerous_calls_fail_with_eperm(kernel: PythonKernel, call: str, what: str) -> None:
    # in a forked child, so a call that went through could not disturb the kernel
    code = (
        "import ctypes, os\n"
        "l = ctypes.CDLL(None, use_errno=True)\n"
        "r, w = os.pipe()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        f"    os.write(w, f'{{{call}}} {{ctypes.get_errno()}}'.encode())\n"
        "    os._exit(0)\n"
        "os.close(w)\n"
        "os.waitpid(pid, 0)\n"
        "print(os.read(r, 100).decode())"
    )
    result = kernel.execute(code, timeout=20)
    assert result.stdout.split() == ["-1", "1"], f"{what}: {result.text()}"  # -1, EPERM
    _still_works(kernel)


def test_missing_layers_are_named_and_warned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(confine, "landlock_abi", lambda: 0)
    monkeypatch.setattr(confine, "seccomp_works", lambda: False)
    monkeypatch.setattr(confine, "_netns_works", lambda: False)
    gaps = confine.missing(network=False)
    assert [g.split(" (")[0] for g in gaps][:3] == [
        "files outside its work folder",
        "dangerous system calls",
        "the network",
    ]
    assert not any("network" in g for g in confine.missing(network=True))
    monkeypatch.setattr(sandbox, "_WARNED", set())
    with pytest.warns(confine.ConfinementWarning, match="cannot confine files outside"):
        sandbox._warn_unconfined(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sandbox._warn_unconfined(False)  # once per process
    monkeypatch.setattr(confine, "landlock_abi", lambda: 7)
    monkeypatch.setattr(confine, "seccomp_works", lambda: True)
    assert confine.missing(network=False) == []


def test_seccomp_filter_shape() -> None:
    """The filter ends in its return instructions and jumps only forward within itself."""
    for machine in ("x86_64", "aarch64"):
        for network in (False, True):
            program = confine.seccomp_filter(machine, network=network)
            assert program is not None and len(program) % 8 == 0
            size = len(program) // 8
            for i in range(size):
                code, jt, jf = program[8 * i], program[8 * i + 2], program[8 * i + 3]
                if code == 0x06:
                    continue
                assert i + 1 + max(jt, jf) < size
    assert confine.seccomp_filter("sparc", network=False) is None


@pytest.mark.skipif(not ROOT, reason="only root can give the kernel a network namespace")
def test_as_root_the_kernel_has_its_own_network_namespace(
    kernel: PythonKernel, online: PythonKernel
) -> None:
    ours = os.readlink("/proc/self/ns/net")
    code = "import os\nos.readlink('/proc/self/ns/net')"
    assert kernel.execute(code).result not in (None, repr(ours))
    assert online.execute(code).result == repr(ours)  # network=True: the host's namespace
