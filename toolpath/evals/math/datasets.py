"""Benchmark data: GSM8K, MATH-500 and the full MATH test set, as :class:`Example` lists.

Files are looked up in order: an explicit ``data`` path (a file, or a folder holding
``<name>/<split>.jsonl`` or ``<split>.jsonl``), then :data:`SHARED_DATA`, then the cache
folder :data:`CACHE_DIR`, where :func:`download` puts them.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolpath.errors import DatasetError
from toolpath.evals.harness import Example

log = logging.getLogger(__name__)


def _find_shared_data() -> Path | None:
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            if (folder / "shared" / "data").is_dir():
                return folder / "shared" / "data"
    return None


CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "toolpath" / "data"
"""Where :func:`download` puts data sets by default, and the last place looked."""

SHARED_DATA: Path = (
    Path(os.environ["TOOLPATH_DATA_DIR"])
    if os.environ.get("TOOLPATH_DATA_DIR")
    else _find_shared_data() or CACHE_DIR
)
"""The default data folder: $TOOLPATH_DATA_DIR, else the nearest ``shared/data`` above the
working directory or this package, else :data:`CACHE_DIR`."""

_SOURCES = {  # name -> (default host, path on the host, file under the data folder)
    "gsm8k-test": (
        "https://raw.githubusercontent.com",
        "/openai/grade-school-math/master/grade_school_math/data/test.jsonl",
        "gsm8k/test.jsonl",
    ),
    "gsm8k-train": (
        "https://raw.githubusercontent.com",
        "/openai/grade-school-math/master/grade_school_math/data/train.jsonl",
        "gsm8k/train.jsonl",
    ),
    "math500": (
        "https://huggingface.co",
        "/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl",
        "math500/test.jsonl",
    ),
}


@dataclass
class JsonlReport:
    """What :func:`read_jsonl` saw: how many records it yielded and which lines it skipped."""

    path: Path
    records: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def read_jsonl(
    path: str | Path,
    *,
    on_bad_line: Callable[[int, str], None] | None = None,
    report: JsonlReport | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each JSON object line of ``path``.

    A line that is not a JSON object is logged with its line number, skipped, added to
    ``report.skipped`` and passed to ``on_bad_line(line_number, reason)``; blank lines are
    ignored. A missing file raises :class:`DatasetError` at once.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"data file {path} not found: pass --data with the right path, or download it"
        )
    return _iter_jsonl(path, on_bad_line, report)


def _iter_jsonl(
    path: Path, on_bad_line: Callable[[int, str], None] | None, report: JsonlReport | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
                if not isinstance(obj, dict):
                    raise ValueError(f"a JSON {type(obj).__name__}, not an object")
            except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError too
                reason = str(exc)
                log.warning("%s: line %d skipped: %s", path, lineno, reason)
                if report is not None:
                    report.skipped.append((lineno, reason))
                if on_bad_line is not None:
                    on_bad_line(lineno, reason)
                continue
            if report is not None:
                report.records += 1
            yield lineno, obj


def _resolve(name: str, split: str, data: str | Path | None, label: str) -> Path:
    """The file for ``name``/``split``: explicit ``data``, then SHARED_DATA, then the cache."""
    if data is not None:
        root = Path(data).expanduser()
        if root.is_file():
            return root
        for path in (root / name / f"{split}.jsonl", root / f"{split}.jsonl"):
            if path.is_file():
                return path
        raise DatasetError(
            f"no {label} data at {root}: pass --data as a .jsonl file or a folder "
            f"holding {name}/{split}.jsonl"
        )
    looked = [SHARED_DATA / name / f"{split}.jsonl", CACHE_DIR / name / f"{split}.jsonl"]
    for path in looked:
        if path.is_file():
            return path
    raise DatasetError(
        f"{label} not found (looked in {', '.join(map(str, looked))}): pass --data PATH, "
        f"set TOOLPATH_DATA_DIR, or download it while online with "
        f"toolpath.evals.math.datasets.download({name!r}, {str(CACHE_DIR)!r})"
    )


def _load(
    path: Path,
    convert: Callable[[int, dict[str, Any]], Example],
    limit: int | None,
    report: JsonlReport | None,
) -> list[Example]:
    if limit is not None and limit < 0:
        raise DatasetError(f"limit must be >= 0, not {limit}")
    report = report if report is not None else JsonlReport(path)
    out: list[Example] = []
    for index, (lineno, row) in enumerate(read_jsonl(path, report=report)):
        if limit is not None and len(out) >= limit:
            break
        try:
            out.append(convert(index, row))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("%s: line %d skipped: bad record (%r)", path, lineno, exc)
            report.records -= 1
            report.skipped.append((lineno, f"bad record: {exc!r}"))
    return out


def gsm8k_gold(answer: str) -> str:
    """The final number of a GSM8K solution: what follows ``####``, commas removed."""
    if "####" not in answer:
        raise ValueError("no '####' in the answer")
    return answer.rsplit("####", 1)[1].strip().replace(",", "")


def _gsm8k_example(split: str) -> Callable[[int, dict[str, Any]], Example]:
    def convert(index: int, row: dict[str, Any]) -> Example:
        answer = str(row["answer"])
        return Example(
            id=f"gsm8k-{split}-{index:04d}",
            question=str(row["question"]),
            gold=gsm8k_gold(answer),
            meta={"solution": answer},
        )

    return convert


def _math_example(index: int, row: dict[str, Any]) -> Example:
    level = row.get("level")
    if isinstance(level, str) and level.removeprefix("Level ").strip().isdigit():
        level = int(level.removeprefix("Level ").strip())
    return Example(
        id=str(row["unique_id"]),
        question=str(row["problem"]),
        gold=str(row["answer"]),
        meta={"subject": row.get("subject") or row.get("type"), "level": level},
    )


def gsm8k(
    split: str = "test",
    *,
    data: str | Path | None = None,
    limit: int | None = None,
    report: JsonlReport | None = None,
) -> list[Example]:
    """GSM8K ``split`` ("test" or "train"); ids ``gsm8k-test-0000``…, gold the final number."""
    path = _resolve("gsm8k", split, data, f"GSM8K {split} split")
    return _load(path, _gsm8k_example(split), limit, report)


def math500(
    *, data: str | Path | None = None, limit: int | None = None, report: JsonlReport | None = None
) -> list[Example]:
    """MATH-500; ids are the ``unique_id``s, gold the LaTeX answer, meta subject and level."""
    return _load(_resolve("math500", "test", data, "MATH-500"), _math_example, limit, report)


def math_full(
    *, data: str | Path | None = None, limit: int | None = None, report: JsonlReport | None = None
) -> list[Example]:
    """The full MATH test set (5,000 problems); same shape as :func:`math500`."""
    return _load(_resolve("math", "test", data, "MATH test set"), _math_example, limit, report)


def download(
    name: str,
    dest: Path,
    *,
    base_url: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download data set ``name`` ("gsm8k-test", "gsm8k-train" or "math500") into ``dest``.

    ``dest`` is a data folder (the file goes to ``dest/<name>/<split>.jsonl``, where the
    loaders look) or a ``.jsonl`` path. ``base_url`` replaces the default host.
    ``progress(bytes_done, total_or_None)`` is called as chunks arrive. The file is written
    to ``.part`` and renamed once complete and checked to be JSONL. Returns its path.
    """
    key = {"gsm8k": "gsm8k-test", "math-500": "math500"}.get(name, name)
    if key not in _SOURCES:
        raise DatasetError(f"unknown data set {name!r}; choose one of {', '.join(_SOURCES)}")
    host, url_path, rel = _SOURCES[key]
    url = (base_url or host).rstrip("/") + url_path
    dest = Path(dest).expanduser()
    target = dest if dest.suffix == ".jsonl" else dest / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, part.open("wb") as f:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while chunk := response.read(1 << 16):
                f.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        _check_jsonl(part, url)
        os.replace(part, target)
    except urllib.error.HTTPError as exc:
        raise DatasetError(
            f"downloading {name} from {url} failed: HTTP {exc.code} {exc.reason}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DatasetError(
            f"downloading {name} from {url} failed ({exc}); if offline, copy the file in "
            f"yourself and pass --data"
        ) from exc
    finally:
        part.unlink(missing_ok=True)
    return target


def _check_jsonl(path: Path, url: str) -> None:
    with path.open("rb") as f:
        first = next((line for line in f if line.strip()), b"")
    try:
        ok = isinstance(json.loads(first), dict)
    except ValueError:
        ok = False
    if not ok:
        raise DatasetError(f"{url} did not return JSON lines (got {first[:60]!r})")


def load_hf(name: str, split: str = "test") -> list[Example]:
    """Load ``name`` ("gsm8k" or "math500") with Hugging Face ``datasets`` (online use)."""
    try:
        import datasets
    except ImportError as exc:
        raise DatasetError(
            "loading from Hugging Face needs the datasets library: pip install datasets"
        ) from exc
    if name == "gsm8k":
        rows = datasets.load_dataset("openai/gsm8k", "main", split=split)
        convert: Callable[[int, dict[str, Any]], Example] = _gsm8k_example(split)
    elif name in ("math500", "math-500"):
        rows = datasets.load_dataset("HuggingFaceH4/MATH-500", split=split)
        convert = _math_example
    else:
        raise DatasetError(f"unknown data set {name!r}; choose gsm8k or math500")
    return [convert(i, dict(row)) for i, row in enumerate(rows)]
