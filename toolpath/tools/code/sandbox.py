"""The process sandbox behind :mod:`toolpath.tools.code.kernel`: host-side setup and the launcher.

The launcher is this file run as a script (standard library only, so it starts fast)::

    python sandbox.py --memory-mb 2048 --cpu-seconds 120 --max-processes 64 --file-size-mb 64 \\
        --workdir DIR [--rw DIR ...] [--network] [--uid N --gid N] -- -f CONNECTION_FILE [...]

Before any user code exists it sets the resource limits (``RLIMIT_AS``, ``RLIMIT_CPU``,
``RLIMIT_NPROC``, ``RLIMIT_FSIZE``, ``RLIMIT_CORE=0``), starts a new session, as root enters a
new network namespace (unless ``--network``) and drops to the given uid/gid (no supplementary
groups), sets ``no_new_privs``, applies the Landlock rules and the seccomp filter of
:mod:`toolpath.tools.code.confine` (files: read the Python installation and system libraries,
write only ``--workdir`` and the ``--rw`` folders; no TCP unless ``--network``), chdirs into the
workdir, and then runs ipykernel *in the same interpreter*. It does not ``exec`` a new Python:
after the drop the interpreter may be unreachable (a pyenv build under a 0700 ``/root``).
Directories on ``sys.path`` that the sandbox uid cannot read are reached through a directory fd
opened before the drop (``/proc/self/fd/N``), which grants read access to that tree only.

The kernel talks to the host over ZMQ ``ipc`` (Unix sockets in its private ``conn`` folder),
so neither the network namespace nor the TCP rules touch it.

``RLIMIT_NPROC`` counts every task (thread) of a *real uid*, and root ignores it. So as root the
host gives each kernel its own unused uid (:func:`lease_uid`), which makes the limit bound the
kernel alone and lets :func:`kill_uid` reap everything the kernel forked, even processes that
left its process group (in a user namespace without those uids it falls back to ``nobody``,
shared by all kernels). Without root the kernel keeps the host's uid: the limits apply (the
process limit on top of the tasks the user already runs) but the kernel can read what the host
user can.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SANDBOX_UIDS = range(1_000_000, 1_100_000)
"""Uids handed to kernels when the host runs as root: unnamed, one per live kernel."""
NOBODY = 65534
_LOCKS = Path(tempfile.gettempdir()) / "toolpath-sandbox-uids"
_ENV_PASS = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "LD_LIBRARY_PATH")
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_MB = 1024 * 1024
_CONTEXT: Any = None
_WARNED: set[bool] = set()


def is_root() -> bool:
    """Whether the host runs as root (and so can, and must, drop the kernel to another uid)."""
    return os.geteuid() == 0


class UidLease:
    """An unused uid from :data:`SANDBOX_UIDS`, held (by a file lock) until :meth:`release`.

    The locks live in a root-only folder, so host processes never hand out the same uid twice.
    """

    def __init__(self) -> None:
        import fcntl
        import stat

        _LOCKS.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(_LOCKS)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise OSError(f"{_LOCKS} is not a private folder of this user; remove it")
        rng = random.SystemRandom()
        for _ in range(200):
            path = _LOCKS / f"{rng.choice(SANDBOX_UIDS)}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_ino != os.stat(path).st_ino:  # released and unlinked meanwhile
                    raise OSError
            except OSError:
                os.close(fd)
                continue
            self.uid, self._fd, self._path = int(path.stem), fd, path
            kill_uid(self.uid)  # leftovers of a host that died without cleaning up
            return
        raise OSError("no free sandbox uid")

    def release(self) -> None:
        """Give the uid back (after :func:`kill_uid`, so nothing runs under it)."""
        with contextlib.suppress(OSError):
            self._path.unlink()
        os.close(self._fd)


class _SharedUid:
    """``nobody``, where no sandbox uid exists (a user namespace mapping few uids)."""

    uid = NOBODY

    def release(self) -> None:
        """Nothing to give back."""


def lease_uid() -> UidLease | _SharedUid | None:
    """The uid a new kernel drops to: None when the host is not root (no drop possible).

    As root: a dedicated uid, or ``nobody`` where the sandbox uids do not exist (kernels then
    share the process limit, and only their process groups are killed on restart).
    """
    if not is_root():
        return None
    return UidLease() if _uid_mapped(SANDBOX_UIDS[-1]) else _SharedUid()


def _uid_mapped(uid: int) -> bool:
    """Whether ``uid`` exists in this user namespace (a rootless container maps few uids)."""
    try:
        lines = Path("/proc/self/uid_map").read_text().split("\n")
    except OSError:
        return True
    for line in filter(None, (x.split() for x in lines)):
        if int(line[0]) <= uid < int(line[0]) + int(line[2]):
            return True
    return False


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` (a sandbox uid: never root or a real account)."""
    if uid in SANDBOX_UIDS:  # ``kill -1`` as that uid reaches exactly its processes
        with contextlib.suppress(OSError):
            subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=uid, group=uid, extra_groups=[])


@dataclass
class SandboxDirs:
    """A kernel's private folders: ``base`` holds ``work`` (cwd, HOME), ``conn``, ``tmp``, ..."""

    base: Path

    @classmethod
    def create(cls, uid: int | None) -> SandboxDirs:
        """Fresh folders, owned by ``uid`` when given, readable by nobody else."""
        dirs = cls(Path(tempfile.mkdtemp(prefix="toolpath-kernel-")).resolve())
        for path in (dirs.work, dirs.conn, dirs.tmp, dirs.state):
            path.mkdir(mode=0o700)
        if uid is not None:
            for path in (dirs.base, dirs.work, dirs.conn, dirs.tmp, dirs.state):
                os.chown(path, uid, uid)
        return dirs

    work = property(lambda self: self.base / "work", doc="The kernel's cwd and HOME.")
    conn = property(lambda self: self.base / "conn", doc="Connection file and ipc sockets.")
    tmp = property(lambda self: self.base / "tmp", doc="TMPDIR.")
    state = property(lambda self: self.base / "state", doc="IPython/Jupyter/cache folders.")
    log = property(lambda self: self.base / "kernel.log", doc="The kernel's raw stdout/stderr.")

    def remove(self) -> None:
        """Delete everything (after the kernel's processes are gone)."""
        shutil.rmtree(self.base, ignore_errors=True)


def kernel_env(dirs: SandboxDirs) -> dict[str, str]:
    """A minimal environment: no secrets from the host, every config/cache folder private."""
    env = {k: os.environ[k] for k in _ENV_PASS if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    state = dirs.state
    env.update(
        HOME=str(dirs.work),
        TMPDIR=str(dirs.tmp),
        USER="sandbox",
        LOGNAME="sandbox",
        PYTHONDONTWRITEBYTECODE="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        JUPYTER_PLATFORM_DIRS="1",
        JPY_PARENT_PID=str(os.getpid()),  # the kernel exits when the host does
        IPYTHONDIR=str(state / "ipython"),
        JUPYTER_CONFIG_DIR=str(state / "jupyter"),
        JUPYTER_DATA_DIR=str(state / "jupyter"),
        JUPYTER_RUNTIME_DIR=str(state / "jupyter"),
        XDG_CACHE_HOME=str(state / "cache"),
        XDG_CONFIG_HOME=str(state / "config"),
        MPLCONFIGDIR=str(state / "matplotlib"),
        MPLBACKEND="Agg",
        MALLOC_ARENA_MAX="2",  # each arena reserves 64 MiB of address space (RLIMIT_AS)
    )
    for name in _ONE_THREAD:  # BLAS/OpenMP pools would cost tasks and address space
        env[name] = "1"
    return env


def _zmq_context() -> Any:
    """The zmq context of kernel clients: its sockets drop messages over 64 MiB.

    A kernel may print gigabytes in one message; the host would hold it twice (bytes and JSON).
    A dropped message loses the connection briefly, so such a run ends as a timeout.
    """
    global _CONTEXT
    if _CONTEXT is None:
        import zmq

        _CONTEXT = zmq.Context()
        _CONTEXT.setsockopt(zmq.MAXMSGSIZE, 64 * _MB)
    return _CONTEXT


def _warn_unconfined(network: bool) -> None:
    """Warn once per process (and ``network`` setting) about what this machine cannot confine."""
    if network in _WARNED:
        return
    _WARNED.add(network)
    from toolpath.tools.code import confine

    if gaps := confine.missing(network=network):
        warnings.warn(
            f"the Python kernel's sandbox cannot confine {'; '.join(gaps)}: generated code "
            "can reach them (see 'Security model' in the README)",
            confine.ConfinementWarning,
            stacklevel=4,
        )


class KernelProcess:
    """One sandboxed kernel: the launcher's process, a blocking client, the private folders.

    ``limits`` maps the launcher's options (``memory_mb``, ``cpu_seconds``, ``max_processes``,
    ``file_size_mb``, ``network``: a flag) to values; ``uid`` is the uid to drop to (root only).
    """

    def __init__(self, limits: dict[str, int], uid: int | None, kernel_args: list[str]) -> None:
        from jupyter_client.blocking import BlockingKernelClient
        from jupyter_client.connect import write_connection_file

        self.uid = uid
        self.dirs = SandboxDirs.create(uid)
        fname, info = write_connection_file(
            str(self.dirs.conn / "kernel.json"),
            transport="ipc",  # unix sockets in a private folder: no TCP port, no warning
            ip=str(self.dirs.conn / "kernel-ipc"),
            key=secrets.token_hex(32).encode(),
        )
        if uid is not None:
            os.chown(fname, uid, uid)
        argv = [sys.executable, os.path.abspath(__file__), "--workdir", str(self.dirs.work)]
        argv += [f"--rw={path}" for path in (self.dirs.conn, self.dirs.tmp, self.dirs.state)]
        for name, value in limits.items():
            flag = f"--{name.replace('_', '-')}"
            argv += ([flag] if value else []) if isinstance(value, bool) else [flag, str(value)]
        _warn_unconfined(bool(limits.get("network")))
        argv += ["--uid", str(uid), "--gid", str(uid)] if uid is not None else []
        with open(self.dirs.log, "wb") as log:
            self.proc = subprocess.Popen(
                [*argv, "--", "-f", fname, *kernel_args],
                env=kernel_env(self.dirs),
                cwd=self.dirs.work,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, for SIGINT and SIGKILL
            )
        self.client = BlockingKernelClient(context=_zmq_context())
        self.client.load_connection_info(info)
        self.client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)

    @property
    def pid(self) -> int:
        """The kernel's process id (the launcher runs ipykernel itself, so it stays the same)."""
        return self.proc.pid

    def wait_ready(self, timeout: float) -> None:
        """Block until the kernel answers on shell and iopub; else raise KernelError."""
        from toolpath.errors import KernelError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise KernelError(f"the Python kernel exited on start: {self.log_tail()}")
            msg_id = self.client.kernel_info()
            if self.next(self.client.shell_channel, msg_id, 1.0) is None:
                continue
            while (msg := self.next(self.client.iopub_channel, msg_id, 0.3)) is not None:
                if msg["content"].get("execution_state") == "idle":
                    return  # iopub is subscribed too: nothing published from now on is lost
        raise KernelError(f"the Python kernel did not start in {timeout:g}s: {self.log_tail()}")

    def next(self, channel: Any, msg_id: str, timeout: float) -> dict[str, Any] | None:
        """The next message on ``channel`` answering ``msg_id``, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg: dict[str, Any] = channel.get_msg(timeout=left)
            except queue.Empty:
                return None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        return None

    def interrupt(self) -> None:
        """SIGINT to the kernel's process group."""
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGINT)

    def log_tail(self) -> str:
        """The end of the kernel's raw output (start-up errors land there)."""
        flags = os.O_RDONLY | os.O_NOFOLLOW  # the kernel's uid owns the folder
        with contextlib.suppress(OSError), open(os.open(self.dirs.log, flags), "rb") as log:
            log.seek(max(0, os.fstat(log.fileno()).st_size - 1500))
            return log.read().decode(errors="replace").strip() or "(no output)"
        return "(no log)"

    def stop(self) -> None:
        """Kill the kernel and everything it started, and delete its folders."""
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.uid is not None:
            kill_uid(self.uid)  # also whatever left the process group
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.dirs.remove()


# ---------------------------------------------------------------- the launcher (in the kernel)


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    """Lower a limit to ``soft``/``hard`` (never above the current hard limit)."""
    cap = resource.getrlimit(which)[1]
    soft, hard = (x if cap == resource.RLIM_INFINITY else min(x, cap) for x in (soft, hard or soft))
    resource.setrlimit(which, (soft, hard))


def _tasks_of(uid: int) -> int:
    """How many tasks (threads count) the real ``uid`` runs: what ``RLIMIT_NPROC`` counts."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":", 1)
                for line in Path(f"/proc/{pid}/status").read_text().split("\n")
                if ":" in line
            )
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
    return count


def _reach_sys_path(fds: dict[str, int]) -> None:
    """Swap each ``sys.path`` folder this uid cannot read for its pre-opened fd path.

    Packages imported before the drop (``importlib``, ``encodings``, ...) find their submodules
    through ``__path__``, so those lists are rewritten too.
    """
    moved: dict[str, str] = {}
    for entry, fd in fds.items():
        if os.access(entry, os.R_OK | os.X_OK):
            os.close(fd)
        else:
            moved[entry] = f"/proc/self/fd/{fd}"

    def reach(path: str) -> str:
        for old, new in moved.items():
            if path == old or path.startswith(old + os.sep):
                return new + path[len(old) :]
        return path

    sys.path[:] = [reach(p) for p in sys.path]
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [reach(p) for p in search]
    sys.path_importer_cache.clear()


def _sibling(name: str) -> Any:
    """A module beside this file, loaded by its path (the launcher runs outside the package)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_toolpath_sandbox_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    """Apply the limits, drop privileges, confine, enter the workdir, run ipykernel."""
    import argparse

    parser = argparse.ArgumentParser(description="Start an ipykernel in a sandbox.")
    for name in ("memory-mb", "cpu-seconds", "max-processes", "file-size-mb"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--rw", action="append", default=[], help="another folder to write")
    parser.add_argument("--network", action="store_true", help="allow TCP and UDP")
    parser.add_argument("--uid", type=int)
    parser.add_argument("--gid", type=int)
    parser.add_argument("kernel_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    kernel_args = args.kernel_args[1:] if args.kernel_args[:1] == ["--"] else args.kernel_args

    here = os.path.dirname(os.path.abspath(__file__))
    confine = _sibling("confine")
    sys.path[:] = [p for p in sys.path if p not in ("", here)]
    sys.dont_write_bytecode = True
    drop = args.uid is not None and os.geteuid() == 0
    nproc = args.max_processes + (0 if drop else _tasks_of(os.getuid()))
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_FSIZE, args.file_size_mb * _MB)
    _set_limit(resource.RLIMIT_AS, args.memory_mb * _MB)
    _set_limit(resource.RLIMIT_NPROC, nproc)
    _set_limit(resource.RLIMIT_CPU, args.cpu_seconds, args.cpu_seconds + 1)  # SIGXCPU, SIGKILL
    with contextlib.suppress(OSError):  # already a session leader when spawned by the host
        os.setsid()
    if drop and not args.network:
        try:
            confine.new_network_namespace()
        except OSError as exc:  # a container may forbid it: Landlock and seccomp still hold
            print(f"sandbox: no network namespace: {exc}", file=sys.stderr)
    fds = {}
    if drop:
        for entry in sys.path:
            with contextlib.suppress(OSError):
                fds[entry] = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
    abi = confine.landlock_abi()  # the rules open their paths now, while root still can
    ruleset = (
        confine.landlock([args.workdir, *args.rw], network=args.network, abi=abi) if abi else None
    )
    if drop:
        gid = args.gid if args.gid is not None else args.uid
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(args.uid, args.uid, args.uid)
        if os.getresuid() != (args.uid,) * 3 or os.getgroups():
            raise SystemExit("sandbox: dropping privileges failed")
        _reach_sys_path(fds)
    confine.no_new_privs()
    if ruleset is not None:
        ruleset.enforce()
    try:
        confine.seccomp(network=args.network)
    except OSError as exc:  # no seccomp in this Linux kernel: the host warned at start
        print(f"sandbox: no seccomp filter: {exc}", file=sys.stderr)
    os.chdir(args.workdir)
    os.umask(0o077)

    from ipykernel.kernelapp import IPKernelApp

    sys.argv = ["ipykernel_launcher", *kernel_args]
    IPKernelApp.launch_instance()


if __name__ == "__main__":
    main()
