"""BFCL data: loading a folder, a wheel, and the download from a (local, real) PyPI server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolpath.errors import ChecksumError, ConfigError, DatasetError
from toolpath.evals.bfcl.data import CATEGORIES, BfclItem, cache_dir, data_dir, load_items
from toolpath.evals.bfcl.matcher import match

FIXTURE = Path(__file__).parent / "fixtures" / "bfcl"
WHEEL_NAME = "bfcl_eval-9.9.9-py3-none-any.whl"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache, temp folder, and an unreachable package index."""
    monkeypatch.setenv("TOOLPATH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TOOLPATH_PYPI_URL", "http://127.0.0.1:9")  # nothing listens there
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path / "cache" / "bfcl"


def make_wheel(path: Path, *, extra: dict[str, str] | None = None) -> Path:
    """A wheel-like zip: the fixture under bfcl_eval/data/, some code, and ``extra``."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("bfcl_eval/__init__.py", "")
        for file in sorted(FIXTURE.rglob("*.json")):
            archive.write(file, f"bfcl_eval/data/{file.relative_to(FIXTURE).as_posix()}")
        for name, text in (extra or {}).items():
            archive.writestr(name, text)
    return path


def test_categories() -> None:
    assert CATEGORIES["simple"] == "simple_python"
    assert set(CATEGORIES) == {"simple", "multiple", "parallel", "parallel_multiple", "irrelevance"}


def test_load_a_folder() -> None:
    items = load_items("simple", FIXTURE)
    assert [i.id for i in items] == ["simple_python_0", "simple_python_1", "simple_python_2"]
    first = items[0]
    assert isinstance(first, BfclItem) and first.category == "simple"
    assert first.question == [{"role": "user", "content": "What is 12 squared?"}]
    assert [f["name"] for f in first.functions] == ["math_tools.power"]
    assert first.answers == [{"math_tools.power": {"base": [12], "exponent": [2], "modulo": [""]}}]
    # several turns: the first only
    assert items[1].question == [
        {"role": "user", "content": "Book a table for 4 at Luigi's in Boston, MA."}
    ]
    assert [m["role"] for m in items[2].question] == ["system", "user"]

    parallel = load_items("parallel", FIXTURE)
    assert [len(i.answers) for i in parallel] == [2, 2]
    irrelevance = load_items("irrelevance", FIXTURE)  # has no possible_answer file
    assert [(i.id, i.answers) for i in irrelevance] == [
        ("irrelevance_0", []),
        ("irrelevance_1", []),
    ]
    # BFCL's own file stems name the same categories
    assert [i.category for i in load_items("simple_python", FIXTURE)] == ["simple"] * 3


@pytest.mark.parametrize("category", ["simple", "parallel", "irrelevance"])
def test_the_ground_truth_matches_itself(category: str) -> None:
    """Calls made of each expected call's first allowed values pass the matcher."""
    for item in load_items(category, FIXTURE):
        calls = [
            {name: {k: v[0] for k, v in args.items() if v[0] != ""}}
            for answer in item.answers
            for name, args in answer.items()
        ]
        assert match(item.functions, calls, item.answers, category).ok, item.id
        if calls:
            assert not match(item.functions, calls[1:], item.answers, category).ok


def test_limit_and_skip() -> None:
    assert [i.id for i in load_items("simple", FIXTURE, skip=1)] == [
        "simple_python_1",
        "simple_python_2",
    ]
    assert [i.id for i in load_items("simple", FIXTURE, skip=1, limit=1)] == ["simple_python_1"]
    assert load_items("simple", FIXTURE, limit=0) == []
    with pytest.raises(ConfigError, match=">= 0"):
        load_items("simple", FIXTURE, limit=-1)


def test_a_folder_holding_bfcl_eval_data(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "site" / "bfcl_eval" / "data")
    assert data_dir(tmp_path / "site") == tmp_path / "site" / "bfcl_eval" / "data"
    assert len(load_items("parallel", tmp_path / "site")) == 2


def test_live_and_unknown_categories_are_refused() -> None:
    with pytest.raises(ConfigError, match="live") as info:
        load_items("live_simple", FIXTURE)
    assert "simple, multiple, parallel, parallel_multiple, irrelevance" in str(info.value)
    with pytest.raises(ConfigError, match=r"unknown BFCL category 'java'.*irrelevance"):
        load_items("java", FIXTURE)


def test_missing_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no BFCL data at .*--data"):
        load_items("simple", tmp_path)
    shutil.copytree(FIXTURE, tmp_path / "data")
    with pytest.raises(DatasetError, match=r"BFCL_v4_multiple\.json is missing"):
        load_items("multiple", tmp_path / "data")

    answers = tmp_path / "data" / "possible_answer" / "BFCL_v4_simple_python.json"
    lines = answers.read_text().splitlines()
    answers.write_text("\n".join(lines[:2]) + "\n")  # no ground truth for the third item
    assert len(load_items("simple", tmp_path / "data", limit=2)) == 2
    with pytest.raises(DatasetError, match="no usable ground truth for simple_python_2"):
        load_items("simple", tmp_path / "data")

    questions = tmp_path / "data" / "BFCL_v4_parallel.json"
    questions.write_text(questions.read_text() + "{not json\n")
    with pytest.raises(DatasetError, match=r"BFCL_v4_parallel\.json, line 3: not JSON"):
        load_items("parallel", tmp_path / "data")
    questions.write_text(json.dumps({"id": "p", "question": "hi", "function": []}) + "\n")
    with pytest.raises(DatasetError, match="record p has no usable question"):
        load_items("parallel", tmp_path / "data")


def test_a_wheel_is_extracted_once_without_the_live_files(tmp_path: Path, _cache: Path) -> None:
    wheel = make_wheel(
        tmp_path / WHEEL_NAME,
        extra={
            "bfcl_eval/data/BFCL_v4_live_simple.json": '{"id": "live_simple_0"}\n',
            "bfcl_eval/data/possible_answer/BFCL_v4_live_simple.json": "{}\n",
            "bfcl_eval/data/../../escape.json": "{}\n",
        },
    )
    folder = data_dir(wheel)
    assert folder.parent == _cache / "wheels"
    assert [i.id for i in load_items("parallel", wheel)] == ["parallel_0", "parallel_1"]
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == [
        ".source.json",
        "BFCL_v4_irrelevance.json",
        "BFCL_v4_parallel.json",
        "BFCL_v4_simple_python.json",
        "possible_answer/BFCL_v4_parallel.json",
        "possible_answer/BFCL_v4_simple_python.json",
    ]
    assert json.loads((folder / ".source.json").read_text())["wheel"] == WHEEL_NAME
    assert not list(tmp_path.rglob("escape.json"))
    assert sorted(p.name for p in (_cache / "wheels").iterdir()) == [folder.name]  # no temp left
    # the second time, the extracted copy is used
    (folder / "BFCL_v4_irrelevance.json").write_text("")
    assert load_items("irrelevance", wheel) == []


def test_a_file_that_is_not_a_wheel(tmp_path: Path, _cache: Path) -> None:
    (tmp_path / "x.whl").write_text("not a zip")
    with pytest.raises(DatasetError, match="not a readable wheel"):
        data_dir(tmp_path / "x.whl")
    with zipfile.ZipFile(tmp_path / "empty.whl", "w") as archive:
        archive.writestr("bfcl_eval/__init__.py", "")
    with pytest.raises(DatasetError, match="no BFCL data under bfcl_eval/data/"):
        data_dir(tmp_path / "empty.whl")
    assert list((_cache / "wheels").iterdir()) == []


# -- the download, from a real HTTP server on 127.0.0.1 ---------------------------------------


@pytest.fixture
def pypi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, bytes]]:
    """A local package index serving ``/pypi/bfcl-eval/json`` and a wheel: (JSON file, wheel)."""
    root = tmp_path / "www"
    (root / "pypi" / "bfcl-eval").mkdir(parents=True)
    (root / "files").mkdir()
    wheel = make_wheel(root / "files" / WHEEL_NAME).read_bytes()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    meta = root / "pypi" / "bfcl-eval" / "json"
    source = {
        "filename": WHEEL_NAME,
        "url": f"{base}/files/{WHEEL_NAME}",
        "digests": {"sha256": hashlib.sha256(wheel).hexdigest()},
        "packagetype": "bdist_wheel",
    }
    sdist = {"filename": "bfcl_eval-9.9.9.tar.gz", "url": f"{base}/files/x.tar.gz"}
    meta.write_text(json.dumps({"info": {"version": "9.9.9"}, "urls": [sdist, source]}))
    monkeypatch.setenv("TOOLPATH_PYPI_URL", base + "/")
    try:
        yield meta, wheel
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download(
    pypi: tuple[Path, bytes], tmp_path: Path, _cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cache_dir() == _cache
    calls: list[tuple[str, int, int]] = []
    folder = data_dir(progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert folder == _cache / "data"
    size = len(pypi[1])
    assert calls[-1] == (f"download {WHEEL_NAME}", size, size)
    source = json.loads((folder / ".source.json").read_text())
    assert source["sha256"] == hashlib.sha256(pypi[1]).hexdigest()
    assert [i.id for i in load_items("parallel")] == ["parallel_0", "parallel_1"]
    assert list((tmp_path / "tmp").iterdir()) == []  # the downloaded wheel is gone
    assert sorted(p.name for p in _cache.iterdir()) == ["data"]
    # from now on the cache answers, even offline
    monkeypatch.setenv("TOOLPATH_PYPI_URL", "http://127.0.0.1:9")
    assert len(load_items("simple", download=False)) == 3


def test_download_with_a_wrong_sha256_caches_nothing(
    pypi: tuple[Path, bytes], tmp_path: Path, _cache: Path
) -> None:
    meta, _ = pypi
    doc = json.loads(meta.read_text())
    doc["urls"][1]["digests"]["sha256"] = "0" * 64
    meta.write_text(json.dumps(doc))
    with pytest.raises(ChecksumError, match="nothing was cached"):
        load_items("simple")
    assert not _cache.exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_download_failures(pypi: tuple[Path, bytes], _cache: Path) -> None:
    meta, _ = pypi
    doc = json.loads(meta.read_text())
    doc["urls"] = doc["urls"][:1]  # only the sdist
    meta.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"no py3-none-any wheel for version 9\.9\.9"):
        data_dir()
    meta.unlink()
    with pytest.raises(DatasetError, match="HTTP 404"):
        data_dir()
    assert not _cache.exists()


def test_offline_or_not_downloading(_cache: Path) -> None:
    with pytest.raises(DatasetError, match=r"could not download.*pip download --no-deps bfcl-eval"):
        load_items("simple")
    with pytest.raises(DatasetError, match=r"downloading is off.*--data"):
        load_items("simple", download=False)
    assert not _cache.exists()
