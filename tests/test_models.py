"""Tests for toolpath.llm.models: registry, cache, part joining and download.

Downloads go to a real HTTP server on 127.0.0.1 started by the tests; nothing touches the
network or the user's cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from toolpath.errors import ChecksumError, ModelNotFoundError, ModelSpecError, ToolpathError
from toolpath.llm import models
from toolpath.llm.models import ModelEntry

PAYLOAD = b"GGUF" + bytes(range(256)) * 200  # 51,204 bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FakeModelServer(ThreadingHTTPServer):
    """Serves ``payload`` at any path. ``mode``: "ok", "corrupt", "drop" (closes the
    connection halfway through the body), "norange" (ignores Range, always 200), "404"."""

    daemon_threads = True

    def __init__(self, payload: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.payload = payload
        self.mode = "ok"
        self.ranges: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/model.gguf"


class _Handler(BaseHTTPRequestHandler):
    server: FakeModelServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        rng = self.headers.get("Range")
        srv.ranges.append(rng)
        assert "toolpath" in self.headers.get("User-Agent", "")
        if srv.mode == "404":
            self.send_error(404)
            return
        data = srv.payload
        if srv.mode == "corrupt":
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start = 0
        if rng and srv.mode != "norange":
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.mode == "drop":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    srv = FakeModelServer(PAYLOAD)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def make_entry(url: str, sha: str = PAYLOAD_SHA, parts: tuple[str, ...] = ()) -> ModelEntry:
    return ModelEntry(
        name="test-model",
        filename="test-model.gguf",
        url=url,
        sha256=sha,
        size=len(PAYLOAD),
        part_modules=parts,
        part_packages=tuple(f"{m}==0" for m in parts) or ("test-model-part1==0",),
        description="a fake model for tests",
    )


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/model.gguf"


# -- registry and explicit paths ---------------------------------------------------------------


def test_registry_and_aliases() -> None:
    assert set(models.REGISTRY) == {models.DEFAULT_MODEL, models.FAST_MODEL}
    assert models.get_entry("fast") is models.REGISTRY["qwen2.5-coder-0.5b"]
    assert models.get_entry("1.5B").name == "qwen2.5-coder-1.5b"
    for entry in models.REGISTRY.values():
        assert len(entry.part_modules) == len(entry.part_packages)
        assert entry.url.endswith(entry.filename)
        assert len(entry.sha256) == 64


def test_unknown_name() -> None:
    with pytest.raises(ModelSpecError, match=r"qwen2\.5-coder-1\.5b"):
        models.get_entry("llama-70b")
    with pytest.raises(ModelSpecError):
        models.resolve("llama-70b", download=False)


def test_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOOLPATH_CACHE_DIR", str(tmp_path / "c"))
    assert models.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TOOLPATH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert models.cache_dir() == tmp_path / "x" / "toolpath" / "models"


def test_explicit_paths(tmp_path: Path) -> None:
    good = tmp_path / "mine.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00rest")
    assert models.resolve(str(good)) == good.resolve()
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        models.resolve(str(tmp_path / "missing.gguf"))
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"hello world")
    with pytest.raises(ToolpathError, match="not a GGUF file"):
        models.resolve(str(bad))


# -- download -------------------------------------------------------------------------------


def test_download_verify_sidecar(server: FakeModelServer, tmp_path: Path) -> None:
    entry = make_entry(server.url)
    path = models.resolve_entry(entry, cache=tmp_path)
    assert path == tmp_path / "test-model.gguf"
    assert path.read_bytes() == PAYLOAD
    sidecar = json.loads((tmp_path / "test-model.gguf.sha256").read_text())
    assert sidecar["sha256"] == PAYLOAD_SHA
    assert sidecar["size"] == len(PAYLOAD)
    assert not (tmp_path / "test-model.gguf.download").exists()
    # second call: served from the cache, trusted through the sidecar, no request, no hashing
    server.mode = "404"
    calls: list[str] = []
    assert models.resolve_entry(entry, cache=tmp_path, progress=lambda s, d, t: calls.append(s))
    assert len(server.ranges) == 1
    assert calls == []


def test_resume_with_range(server: FakeModelServer, tmp_path: Path) -> None:
    entry = make_entry(server.url)
    server.mode = "drop"
    with pytest.raises(ModelNotFoundError, match=r"download from .* failed"):
        models.resolve_entry(entry, cache=tmp_path)
    partial = tmp_path / "test-model.gguf.download"
    have = partial.stat().st_size
    assert 0 < have < len(PAYLOAD)
    assert not (tmp_path / "test-model.gguf").exists()
    server.mode = "ok"
    path = models.resolve_entry(entry, cache=tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert server.ranges[-1] == f"bytes={have}-"
    assert not partial.exists()


def test_resume_falls_back_to_full_download(server: FakeModelServer, tmp_path: Path) -> None:
    (tmp_path / "test-model.gguf.download").write_bytes(b"junk that is no prefix")
    server.mode = "norange"
    path = models.resolve_entry(make_entry(server.url), cache=tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=22-"]


def test_corrupt_download_refused(server: FakeModelServer, tmp_path: Path) -> None:
    server.mode = "corrupt"
    with pytest.raises(ChecksumError, match=f"expected {PAYLOAD_SHA}"):
        models.resolve_entry(make_entry(server.url), cache=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []


def test_wrong_sha_cached_file_refused(server: FakeModelServer, tmp_path: Path) -> None:
    (tmp_path / "test-model.gguf").write_bytes(PAYLOAD[:-1] + b"!")
    with pytest.raises(ChecksumError, match="pull test-model --force"):
        models.resolve_entry(make_entry(server.url), cache=tmp_path)
    assert server.ranges == []  # refused without fetching anything
    assert not (tmp_path / "test-model.gguf.sha256").exists()


def test_stale_sidecar_rechecks(server: FakeModelServer, tmp_path: Path) -> None:
    entry = make_entry(server.url)
    path = models.resolve_entry(entry, cache=tmp_path)
    path.write_bytes(PAYLOAD[:-1] + b"!")  # same size, new mtime: sidecar no longer matches
    with pytest.raises(ChecksumError):
        models.resolve_entry(entry, cache=tmp_path)


def test_unreachable_url(tmp_path: Path) -> None:
    entry = make_entry(dead_url())
    with pytest.raises(ModelNotFoundError) as info:
        models.resolve_entry(entry, cache=tmp_path)
    msg = str(info.value)
    assert "not installed" in msg and "not cached" in msg and entry.url in msg
    assert "refused" in msg.lower()
    assert "toolpath[local]" in msg and "toolpath models pull test-model" in msg


def test_http_error_and_no_download(server: FakeModelServer, tmp_path: Path) -> None:
    server.mode = "404"
    with pytest.raises(ModelNotFoundError, match="404"):
        models.resolve_entry(make_entry(server.url), cache=tmp_path)
    with pytest.raises(ModelNotFoundError, match="downloading is turned off"):
        models.resolve_entry(make_entry(server.url), cache=tmp_path / "c", download=False)
    assert len(server.ranges) == 1


def test_progress_increases(
    server: FakeModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "CHUNK", 4096)
    seen: list[tuple[str, int, int]] = []
    models.resolve_entry(make_entry(server.url), cache=tmp_path, progress=lambda *a: seen.append(a))
    assert len(seen) > 5
    assert {s for s, _, _ in seen} == {"download test-model"}
    done = [d for _, d, _ in seen]
    assert done == sorted(done) and done[-1] == len(PAYLOAD)
    assert all(t == len(PAYLOAD) for _, _, t in seen)


def test_pull_force_refetches(server: FakeModelServer, tmp_path: Path) -> None:
    entry = make_entry(server.url)
    models.REGISTRY[entry.name] = entry
    try:
        assert models.pull("test-model", cache=tmp_path).read_bytes() == PAYLOAD
        assert models.pull("test-model", cache=tmp_path) and len(server.ranges) == 1
        assert models.pull("test-model", cache=tmp_path, force=True).read_bytes() == PAYLOAD
        assert len(server.ranges) == 2
        assert models.status("test-model", tmp_path) == "cached"
    finally:
        del models.REGISTRY[entry.name]


# -- joining installed part packages --------------------------------------------------------


def make_parts(root: Path, chunks: list[bytes], prefix: str = "fakepart") -> tuple[str, ...]:
    """Installed part distributions as pip lays them out: ``<prefix>N/data/partNN.bin`` plus a
    ``<prefix>N-0.1.dist-info`` whose RECORD lists the files (that is how they are found)."""
    for i, chunk in enumerate(chunks, 1):
        name = f"{prefix}{i}"
        pkg = root / name
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        (pkg / "__init__.py").write_text("raise RuntimeError('part packages are never imported')\n")
        info = root / f"{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "RECORD").write_text(
            f"{name}/__init__.py,,\n{name}/data/part{i:02d}.bin,,\n"
            f"{name}-0.1.dist-info/METADATA,,\n{name}-0.1.dist-info/RECORD,,\n"
        )
    return tuple(f"{prefix}{i}" for i in range(1, len(chunks) + 1))


def test_join_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mods = make_parts(tmp_path / "site", [PAYLOAD[:1000], PAYLOAD[1000:30000], PAYLOAD[30000:]])
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    entry = make_entry(dead_url(), parts=mods)
    cache = tmp_path / "cache"
    seen: list[tuple[str, int, int]] = []
    path = models.resolve_entry(entry, cache=cache, progress=lambda *a: seen.append(a))
    assert path.read_bytes() == PAYLOAD
    assert json.loads((cache / "test-model.gguf.sha256").read_text())["sha256"] == PAYLOAD_SHA
    assert not (cache / "test-model.gguf.partial").exists()
    assert seen[-1] == ("join test-model", len(PAYLOAD), len(PAYLOAD))


def test_join_wrong_sha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mods = make_parts(tmp_path / "site", [PAYLOAD[:100], PAYLOAD[100:]], prefix="badpart")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ChecksumError):
        models.resolve_entry(make_entry(dead_url(), sha="0" * 64, parts=mods), cache=tmp_path / "c")
    assert [p.name for p in (tmp_path / "c").iterdir() if not p.name.endswith(".lock")] == []


def test_partial_install_falls_through_to_download(
    server: FakeModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mods = make_parts(tmp_path / "site", [PAYLOAD[:100], PAYLOAD[100:]], prefix="halfpart")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    entry = make_entry(server.url, parts=(*mods, "halfpart3"))
    path = models.resolve_entry(entry, cache=tmp_path / "c")
    assert path.read_bytes() == PAYLOAD
    assert server.ranges == [None]


def test_parts_without_record_are_absent(
    server: FakeModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part whose dist-info has no RECORD (or no data file in it) is not installed."""
    mods = make_parts(tmp_path / "site", [PAYLOAD[:100], PAYLOAD[100:]], prefix="norecpart")
    (tmp_path / "site" / "norecpart2-0.1.dist-info" / "RECORD").unlink()
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    entry = make_entry(server.url, parts=mods)
    assert models._installed_parts(entry) is None
    (tmp_path / "site" / "norecpart2-0.1.dist-info" / "RECORD").write_text("norecpart2/x.py,,\n")
    assert models._installed_parts(entry) is None
    assert models.resolve_entry(entry, cache=tmp_path / "c").read_bytes() == PAYLOAD
    assert server.ranges == [None]


def test_real_fast_parts_found_through_metadata() -> None:
    """The installed 0.5B part packages are located from their RECORDs, none imported."""
    entry = models.get_entry(models.FAST_MODEL)
    if importlib.util.find_spec(entry.part_modules[0]) is None:
        pytest.skip("the 0.5B model part packages are not installed")
    before = set(sys.modules)
    parts = models._installed_parts(entry)
    assert parts is not None and len(parts) == len(entry.part_modules) == 6
    for i, (path, module) in enumerate(zip(parts, entry.part_modules, strict=True), 1):
        assert path.parent.parent.name == module and path.name == f"part{i:02d}.bin"
    assert sum(p.stat().st_size for p in parts) == entry.size
    assert not {m for m in set(sys.modules) - before if m.startswith("pandas_sns")}
    assert models.status(models.FAST_MODEL, Path("/nonexistent")) == "installed (parts)"


def test_status_and_list(tmp_path: Path) -> None:
    rows = models.list_models(cache=tmp_path)
    assert [r["name"] for r in rows] == list(models.REGISTRY)
    assert sum(r["default"] for r in rows) == 1
    assert all(r["status"] in {"cached", "installed (parts)", "not present"} for r in rows)
    fast = models.REGISTRY[models.FAST_MODEL]
    (tmp_path / fast.filename).write_bytes(b"GGUF")
    assert models.status("fast", tmp_path) == "cached"


# -- the real model ---------------------------------------------------------------------------


@pytest.mark.model
def test_real_fast_model_parts_join(tmp_path: Path) -> None:
    if models.status(models.FAST_MODEL, tmp_path) != "installed (parts)":
        pytest.skip("the 0.5B model part packages are not installed")
    entry = models.get_entry(models.FAST_MODEL)
    bad = dataclasses.replace(entry, url=dead_url())  # never touch the real network
    path = models.resolve_entry(bad, cache=tmp_path, download=False)
    assert path.stat().st_size == entry.size
    assert models.sha256_file(path) == entry.sha256
    assert models.resolve(models.FAST_MODEL, cache=tmp_path, download=False) == path


def test_complete_partial_download_answered_416(server: FakeModelServer, tmp_path: Path) -> None:
    (tmp_path / "test-model.gguf.download").write_bytes(PAYLOAD)
    path = models.resolve_entry(make_entry(server.url), cache=tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert server.ranges == [f"bytes={len(PAYLOAD)}-"]


def test_verify(tmp_path: Path) -> None:
    f = tmp_path / "x.gguf"
    f.write_bytes(PAYLOAD)
    models.verify(f, PAYLOAD_SHA)
    with pytest.raises(ChecksumError, match=r"x\.gguf has sha256 .*, expected 0{64}; delete it"):
        models.verify(f, "0" * 64)
