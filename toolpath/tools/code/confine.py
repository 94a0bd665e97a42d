"""Confinement of a kernel process: Landlock (files, TCP, signals), a network namespace, seccomp.

The launcher (:mod:`toolpath.tools.code.sandbox`, run as a script) loads this file by its path
and applies it before ipykernel starts, while the process still has one thread. Standard library
only (``ctypes`` syscalls), so it costs the kernel's start next to nothing.

- :class:`Landlock` (Linux 5.13+, no privileges needed): files may be read and executed only
  under the Python installation, the ``sys.path`` folders and the system's programs and
  libraries (plus a few files in ``/etc``, ``/dev`` and ``/proc``); read and written only in
  the kernel's own folders. Without ``network``, TCP connect and bind are denied (ABI 4+).
  Signals to processes outside the kernel and abstract Unix sockets are cut off (ABI 6+).
- :func:`new_network_namespace` (root only): the kernel gets an empty network namespace, so
  nothing on the host's network, loopback included, is reachable over any protocol.
- :func:`seccomp` (x86_64 and aarch64): ``EPERM`` for calls that only attack the system
  (``ptrace``, ``mount``, ``bpf``, ``keyctl``, module loading, namespaces, ``io_uring``, ...),
  and without ``network``, ``EACCES`` for IPv4/IPv6/packet sockets (UDP included).

:func:`missing` says, on the host, which of these this machine cannot apply.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import struct
import sys

# Landlock: syscalls (the same number on every architecture) and access rights by ABI version
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_RULESET_VERSION, _RULE_PATH_BENEATH = 1, 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
_FS_FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | 1 << 14 | 1 << 15  # + truncate, ioctl
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2
READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
"""Read and execute (what the Python installation and system libraries get)."""
ALL = (1 << 16) - 1
"""Every file right (the kernel's own folders); masked down to what the ABI knows."""

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt/conda")
"""Programs and shared libraries (read and execute). ``/usr/local`` and ``/usr/share`` too."""
ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "nsswitch.conf",
    "passwd", "group", "host.conf", "hosts", "resolv.conf", "gai.conf", "services", "protocols",
    "mime.types", "ssl", "ca-certificates", "fonts", "matplotlibrc", "os-release", "locale.alias",
)  # fmt: skip
"""Files of ``/etc`` that the dynamic loader, time zones, fonts and (opt-in) networking read."""
DEVICES = {"null": READ | FS_WRITE_FILE | 1 << 14, "zero": READ, "full": READ | FS_WRITE_FILE}
DEVICES |= {"random": READ, "urandom": READ}
PROC_FILES = ("cpuinfo", "meminfo", "stat", "sys/vm/overcommit_memory")
SYS_DIRS = ("/sys/devices/system/cpu", "/sys/fs/cgroup")
"""CPU counts and cgroup limits, read by OpenBLAS, ``os.cpu_count`` replacements, joblib."""

_PINNED: list[int] = []
"""Open fds that keep ``/proc/self`` (a dentry the kernel may otherwise drop) matching its rule."""


class ConfinementWarning(RuntimeWarning):
    """The kernel runs with less confinement than documented (see :func:`missing`)."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _fail(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The Landlock ABI version this Linux kernel offers; 0 when none (or another OS)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = _libc()
    except OSError:
        return 0
    version = libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _RULESET_VERSION)
    return max(0, int(version))


class Landlock:
    """A Landlock ruleset: :meth:`allow` paths, then :meth:`enforce` it on this thread.

    Build it while paths can still be opened (before dropping root: the Python installation may
    sit under a 0700 home), enforce it after ``no_new_privs`` is set and before any thread
    starts, since only the calling thread and its later children are restricted.
    """

    def __init__(self, abi: int, *, network: bool) -> None:
        if abi < 1:
            raise OSError(errno.ENOSYS, "Landlock is not available")
        self.abi, self._libc = abi, _libc()
        self.fs = _FS_BY_ABI[max(k for k in _FS_BY_ABI if k <= abi)]
        net = 0 if network or abi < 4 else _NET_BIND_TCP | _NET_CONNECT_TCP
        scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL if abi >= 6 else 0
        attr = _RulesetAttr(self.fs, net, scoped)
        size = 24 if scoped else 16 if net else 8  # older kernels know a shorter struct
        fd = self._libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
        if fd < 0:
            raise _fail("landlock_create_ruleset")
        self.fd = int(fd)
        self.allowed: list[str] = []

    def allow(self, path: str, access: int, *, pin: bool = False) -> bool:
        """Grant ``access`` beneath ``path`` (a folder or one file); False if it does not exist.

        ``pin`` keeps the path open for the process's life (``/proc/self``).
        """
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            access &= self.fs if is_dir else self.fs & _FS_FILE_ONLY
            rule = _PathBeneath(access, fd)
            if self._libc.syscall(_ADD_RULE, self.fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0):
                raise _fail(f"landlock_add_rule({path})")
        finally:
            if pin:
                _PINNED.append(fd)
            else:
                os.close(fd)
        self.allowed.append(path)
        return True

    def enforce(self) -> None:
        """Restrict this thread (and everything it starts later) to the rules; irreversible.

        Raises OSError when other threads already run: they would stay unrestricted.
        """
        with contextlib.suppress(OSError):
            if len(os.listdir("/proc/self/task")) > 1:
                raise OSError(errno.EBUSY, "Landlock must be enforced before any thread starts")
        if self._libc.syscall(_RESTRICT_SELF, self.fd, 0):
            raise _fail("landlock_restrict_self")
        os.close(self.fd)


def read_paths() -> list[str]:
    """What a kernel reads and executes: the Python installation, sys.path, system libraries.

    ``/`` and the user's home folder are never granted whole, even when on ``sys.path``.
    """
    import pwd

    try:  # the account's home, not $HOME (which is the kernel's workdir)
        home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        home = "/"
    never = {"/", home, os.path.realpath(home)}
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    python |= {os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    found = sorted(python | {p for p in sys.path if p and os.path.exists(p)})
    paths = [p for p in found if os.path.realpath(p) not in never and p not in never]
    paths += [p for p in SYSTEM_DIRS if os.path.exists(p)]
    paths += [f"/etc/{name}" for name in ETC_FILES]
    paths += [f"/proc/{name}" for name in PROC_FILES]
    return paths + list(SYS_DIRS)


def landlock(rw: list[str], *, network: bool, abi: int | None = None) -> Landlock:
    """The kernel's ruleset: :func:`read_paths` read-only, ``rw`` fully, a few devices."""
    ruleset = Landlock(landlock_abi() if abi is None else abi, network=network)
    for path in read_paths():
        ruleset.allow(path, READ)
    for name, access in DEVICES.items():
        ruleset.allow(f"/dev/{name}", access)
    ruleset.allow("/proc/self", READ, pin=True)  # the kernel's own status, fds, maps
    for path in rw:
        if not ruleset.allow(path, ALL):
            raise OSError(errno.ENOENT, f"the kernel's folder {path} is missing")
    return ruleset


def new_network_namespace() -> None:
    """Move this process into a new, empty network namespace (needs ``CAP_SYS_ADMIN``)."""
    if _libc().unshare(0x40000000):  # CLONE_NEWNET (os.unshare is Python 3.12+)
        raise _fail("unshare(CLONE_NEWNET)")


# seccomp: (x86_64, aarch64) numbers of the calls that only attack the system
_DENIED = {
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "mount_setattr": (442, 442), "open_tree": (428, 428), "move_mount": (429, 429),
    "fsopen": (430, 430), "fsconfig": (431, 431), "fsmount": (432, 432), "fspick": (433, 433),
    "unshare": (272, 97), "setns": (308, 268), "bpf": (321, 280), "userfaultfd": (323, 282),
    "perf_event_open": (298, 241), "keyctl": (250, 219), "add_key": (248, 217),
    "request_key": (249, 218), "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "swapon": (167, 224), "swapoff": (168, 225), "reboot": (169, 142), "acct": (163, 89),
    "quotactl": (179, 60), "syslog": (103, 116), "settimeofday": (164, 170),
    "clock_settime": (227, 112), "clock_adjtime": (305, 266), "adjtimex": (159, 171),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "lookup_dcookie": (212, 18), "vhangup": (153, 58),
}  # fmt: skip
_ARCHES = {"x86_64": (0, 0xC000003E), "amd64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}
_ARCHES["arm64"] = _ARCHES["aarch64"]
_CLONE, _CLONE3, _SOCKET = (56, 220), (435, 435), (41, 198)
_CLONE_NAMESPACES = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_INET_FAMILIES = (2, 10, 17)  # AF_INET, AF_INET6, AF_PACKET
_LD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000


def seccomp_filter(machine: str, *, network: bool) -> bytes | None:
    """The classic-BPF program for :func:`seccomp`; None on an architecture it does not know.

    Denied calls fail with ``EPERM``; ``clone`` with namespace flags too; ``clone3`` (whose
    flags a filter cannot read) with ``ENOSYS``, so the C library falls back to ``clone``;
    32-bit and x32 calls on x86_64 with ``ENOSYS``.
    """
    if machine.lower() not in _ARCHES:
        return None
    col, arch = _ARCHES[machine.lower()]
    # instructions (code, jump if true, jump if false, k), jumps naming a label; labels are str
    prog: list[str | tuple[int, int | str, int | str, int]] = [(_LD, 0, 0, 4)]
    prog += [(_JEQ, 0, "nosys", arch), (_LD, 0, 0, 0)]
    if col == 0:
        prog.append((_JGE, "nosys", 0, 0x40000000))  # the x32 ABI
    prog += [(_JEQ, "eperm", 0, nrs[col]) for nrs in _DENIED.values()]
    prog += [(_JEQ, "nosys", 0, _CLONE3[col]), (_JEQ, 0, "not_clone", _CLONE[col])]
    prog += [(_LD, 0, 0, 16), (_JSET, "eperm", "allow", _CLONE_NAMESPACES), "not_clone"]
    if not network:
        prog += [(_JEQ, 0, "allow", _SOCKET[col]), (_LD, 0, 0, 16)]
        prog += [(_JEQ, "eacces", 0, family) for family in _INET_FAMILIES]
    prog += ["allow", (_RET, 0, 0, _ALLOW), "eperm", (_RET, 0, 0, _ERRNO | errno.EPERM)]
    prog += ["eacces", (_RET, 0, 0, _ERRNO | errno.EACCES)]
    prog += ["nosys", (_RET, 0, 0, _ERRNO | errno.ENOSYS)]
    labels: dict[str, int] = {}
    code: list[tuple[int, int | str, int | str, int]] = []
    for op in prog:
        if isinstance(op, str):
            labels[op] = len(code)
        else:
            code.append(op)
    out = b""
    for i, (instruction, *jumps, k) in enumerate(code):
        jt, jf = (labels[j] - i - 1 if isinstance(j, str) else j for j in jumps)
        out += struct.pack("=HBBI", instruction, jt, jf, k)
    return out


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def seccomp(*, network: bool) -> bool:
    """Install :func:`seccomp_filter` on this thread; False on an unknown architecture.

    Needs ``no_new_privs`` (or root). Like Landlock, it binds this thread and later children.
    """
    program = seccomp_filter(os.uname().machine, network=network)
    if program is None:
        return False
    prog = _Fprog(len(program) // 8, program)
    if _libc().prctl(22, 2, ctypes.byref(prog), 0, 0):  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise _fail("seccomp")
    return True


def no_new_privs() -> None:
    """Set ``PR_SET_NO_NEW_PRIVS``: no exec may gain privileges (setuid bits, capabilities)."""
    with contextlib.suppress(OSError, AttributeError):
        _libc().prctl(38, 1, 0, 0, 0)


def _netns_works() -> bool:
    """Whether this root process may create network namespaces (a container may forbid it)."""
    import subprocess

    probe = "import ctypes, sys; sys.exit(ctypes.CDLL(None).unshare(0x40000000) != 0)"
    run = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True)
    return run.returncode == 0


def seccomp_works() -> bool:
    """Whether :func:`seccomp` can install its filter here (a known CPU and a seccomp kernel)."""
    if seccomp_filter(os.uname().machine, network=False) is None:
        return False
    try:
        with open("/proc/self/status") as status:
            return "Seccomp:" in status.read()
    except OSError:
        return False


def missing(*, network: bool) -> list[str]:
    """What this machine cannot confine for a kernel (empty when everything applies).

    Without a seccomp filter, as root, this starts one short Python process to try a network
    namespace.
    """
    abi, root, gaps = landlock_abi(), os.geteuid() == 0, []
    if abi < 1:
        where = "Linux 5.13+ with Landlock enabled" if sys.platform.startswith("linux") else "Linux"
        gaps.append(f"files outside its work folder (Landlock needs {where})")
    filtered = seccomp_works()
    if not filtered:
        gaps.append(f"dangerous system calls (no seccomp filter for {os.uname().machine})")
    if not network and not filtered and not (root and _netns_works()):
        gaps.append("UDP" if abi >= 4 else "the network (Landlock confines TCP from ABI 4 on)")
    if abi < 6 and not root:
        gaps.append("signals to the user's other processes (Landlock scopes them from ABI 6 on)")
    return gaps
