"""Benchmark data loading: the shared GSM8K / MATH files, bad lines, and download()."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolpath.errors import ConfigError, DatasetError
from toolpath.evals.math import datasets
from toolpath.evals.math.datasets import (
    SHARED_DATA,
    JsonlReport,
    download,
    gsm8k,
    math500,
    math_full,
    read_jsonl,
)

needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "gsm8k" / "test.jsonl").is_file(), reason="shared/data is not present"
)


@needs_shared
def test_gsm8k_from_shared_data() -> None:
    test = gsm8k()
    assert len(test) == 1319
    assert [e.id for e in test[:2]] == ["gsm8k-test-0000", "gsm8k-test-0001"]
    assert test[0].question.startswith("Janet’s ducks lay 16 eggs")
    assert test[0].gold == "18"
    assert test[0].meta["solution"].endswith("#### 18")
    assert all("," not in e.gold and e.gold for e in test)
    train = gsm8k("train", limit=3)
    assert [e.id for e in train] == ["gsm8k-train-0000", "gsm8k-train-0001", "gsm8k-train-0002"]
    assert gsm8k(limit=0) == []


@needs_shared
def test_gsm8k_train_task_leaves_out_the_demonstrations_and_skips() -> None:
    from toolpath.agents.math.prompts import math_demos
    from toolpath.evals.math.tasks import task

    family = task("gsm8k-train")
    first = list(family.load(limit=20))
    assert len(first) == 20
    shown = {d["question"] for d in math_demos()}
    assert shown and not shown & {e.question for e in first}
    # the demos are train lines 2, 4 and 13: 17 of the first 20 lines, then 3 more
    assert "gsm8k-train-0001" not in {e.id for e in first}
    assert first[-1].id == "gsm8k-train-0022"
    later = list(family.load(limit=5, skip=15))
    assert [e.id for e in later] == [e.id for e in first[15:]]
    assert [e.id for e in task("gsm8k").load(limit=2, skip=98)] == [
        "gsm8k-test-0098",
        "gsm8k-test-0099",
    ]
    with pytest.raises(ConfigError):
        family.load(skip=-1)


@needs_shared
def test_math500_and_full_math() -> None:
    problems = math500()
    assert len(problems) == 500 and len({e.id for e in problems}) == 500
    first = problems[0]
    assert first.id == "test/precalculus/807.json"
    assert first.gold == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first.meta == {"subject": "Precalculus", "level": 2}
    assert len(math500(limit=7)) == 7
    full = math_full(limit=5)
    assert full[0].id == "test/algebra/1.json" and full[0].gold == "2"
    assert full[0].meta == {"subject": "Algebra", "level": 3}
    # MATH-500 is a subset of the full test set
    assert set(e.id for e in problems[:20]) <= set(e.id for e in math_full())


def test_explicit_data_file_and_folder(tmp_path: Path) -> None:
    rows = [
        {"question": "How many?", "answer": "Some work\n#### 1,234"},
        {"question": "Negative?", "answer": "#### -7"},
    ]
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for data in (tmp_path, folder, folder / "test.jsonl"):
        got = gsm8k(data=data)
        assert [(e.id, e.gold) for e in got] == [
            ("gsm8k-test-0000", "1234"),
            ("gsm8k-test-0001", "-7"),
        ]
    with pytest.raises(DatasetError, match="--data"):
        gsm8k(data=tmp_path / "nope")
    with pytest.raises(DatasetError, match="no GSM8K train"):
        gsm8k("train", data=tmp_path)


def test_bad_lines_are_reported_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "test.jsonl"
    path.write_bytes(
        b'{"question": "a", "answer": "#### 1"}\n'
        b'{"question": "b", "answer": "#### 2"\n'  # line 2: truncated JSON
        b"\n"
        b"[1, 2]\n"  # line 4: not an object
        b'{"question": "c", "answer": "no marker"}\n'  # line 5: no final answer
        b'{"question": "d", "answer": "#### 4"}\n'
    )
    seen: list[int] = []
    report = JsonlReport(path)
    with caplog.at_level(logging.WARNING):
        rows = list(read_jsonl(path, on_bad_line=lambda n, _why: seen.append(n), report=report))
    assert [n for n, _ in rows] == [1, 5, 6]
    assert seen == [2, 4] and [n for n, _ in report.skipped] == [2, 4]
    assert report.records == 3
    assert "line 2" in caplog.text and "line 4" in caplog.text

    report = JsonlReport(path)
    got = gsm8k(data=path, report=report)
    assert [e.gold for e in got] == ["1", "4"]
    assert [n for n, _ in report.skipped] == [2, 4, 5] and report.records == 2


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetError, match="not found"):
        read_jsonl(tmp_path / "missing.jsonl")  # raised at once, not on first next()
    monkeypatch.setattr(datasets, "SHARED_DATA", tmp_path / "shared")
    monkeypatch.setattr(datasets, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(DatasetError, match="--data") as info:
        math500()
    assert isinstance(info.value, ConfigError)
    assert "TOOLPATH_DATA_DIR" in str(info.value)
    # the cache folder is the last place looked
    (tmp_path / "cache" / "math500").mkdir(parents=True)
    row = {"problem": "1+1?", "answer": "2", "unique_id": "x/1", "subject": "A", "level": 1}
    (tmp_path / "cache" / "math500" / "test.jsonl").write_text(json.dumps(row) + "\n")
    assert [e.id for e in math500()] == ["x/1"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over a folder: (base url, root folder)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    remote = root / "openai/grade-school-math/master/grade_school_math/data/test.jsonl"
    remote.parent.mkdir(parents=True)
    remote.write_text(json.dumps({"question": "2+2?", "answer": "#### 4"}) + "\n")
    calls: list[tuple[int, int | None]] = []
    dest = tmp_path / "data"
    path = download("gsm8k-test", dest, base_url=base, progress=lambda d, t: calls.append((d, t)))
    assert path == dest / "gsm8k" / "test.jsonl"
    assert path.read_bytes() == remote.read_bytes()
    assert calls[-1] == (remote.stat().st_size, remote.stat().st_size)
    assert [e.gold for e in gsm8k(data=dest)] == ["4"]
    assert list(path.parent.glob("*.part")) == []


def test_download_failures(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    dest = tmp_path / "data"
    with pytest.raises(DatasetError, match="HTTP 404"):
        download("math500", dest, base_url=base)
    assert not (dest / "math500" / "test.jsonl").exists()
    assert list((dest / "math500").glob("*")) == []  # no .part left behind

    page = root / "datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl"
    page.parent.mkdir(parents=True)
    page.write_text("<html>not data</html>\n")
    with pytest.raises(DatasetError, match="did not return JSON lines"):
        download("math500", dest, base_url=base)
    assert list((dest / "math500").glob("*")) == []

    with pytest.raises(DatasetError, match="unknown data set"):
        download("imagenet", dest, base_url=base)
    with pytest.raises(DatasetError, match="failed"):
        download("gsm8k-train", dest, base_url="http://127.0.0.1:9", timeout=5)
