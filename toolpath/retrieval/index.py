"""A faiss vector index over a tool catalog, saved to disk and cached by content.

- :func:`build_index` makes an exact ``IndexFlatIP`` up to :data:`HNSW_THRESHOLD` vectors and an
  HNSW graph (M=32, efSearch=64, inner product) above that. Vectors are unit length, so the inner
  product is the cosine similarity.
- :meth:`ToolIndex.save` writes a folder with ``index.faiss`` and ``manifest.json`` (tool names,
  embedder name, dimension, kind, content hash); :meth:`ToolIndex.load` reads and checks it.
- :func:`build_or_load` is the cache: the sha256 of the embedder's name and every tool's
  :func:`~toolpath.retrieval.embed.tool_text` names a folder under the cache directory, so the
  same catalog with the same embedder reloads its index without embedding anything. A missing
  folder is built; a stale or corrupt one (hash or names that do not match, unreadable files) is
  rebuilt with a logged warning.

``faiss`` is imported on first use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from toolpath.errors import MissingDependencyError, RetrievalError
from toolpath.retrieval.embed import Progress, Vectors, tool_text
from toolpath.tools.base import Tool

log = logging.getLogger(__name__)

HNSW_THRESHOLD = 50_000
"""Catalogs with more vectors than this get an HNSW index instead of an exact flat one."""
HNSW_M = 32
HNSW_EF_SEARCH = 64
HNSW_EF_CONSTRUCTION = 40
INDEX_FILE = "index.faiss"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
QUERY_THREADS = 1
"""OpenMP threads for a search of a few queries (None: faiss's default, one per core). A single
query is fastest on one thread, and stays fast when the other cores are busy: at 16k tools a
flat search took 1.2 ms on one thread and about 30 ms on two with another process busy."""
_FEW_QUERIES = 8
_OMP = threading.Lock()  # faiss's OpenMP thread count is process-wide

Kind = Literal["flat", "hnsw"]


class TextEncoder(Protocol):
    """What the index needs from an embedder (:class:`~toolpath.retrieval.embed.Embedder`)."""

    name: str

    def encode(self, texts: Sequence[str], *, progress: Progress | None = None) -> Vectors: ...


def faiss_module() -> Any:
    """The ``faiss`` module, or a :class:`MissingDependencyError` saying how to install it."""
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError(
            f"tool retrieval needs faiss ({exc}); pip install 'toolpath[retrieval]'"
        ) from None
    return faiss


def content_hash(embedder_name: str, texts: Sequence[str]) -> str:
    """sha256 (hex) of the embedder name and every text, in order: the cache key."""
    h = hashlib.sha256()
    h.update(f"toolpath-index-v{FORMAT_VERSION}\0{embedder_name}\0{len(texts)}\0".encode())
    for text in texts:
        data = text.encode("utf-8", errors="surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def choose_kind(n: int, hnsw_threshold: int = HNSW_THRESHOLD) -> Kind:
    """``"flat"`` for up to ``hnsw_threshold`` vectors, ``"hnsw"`` above."""
    return "hnsw" if n > hnsw_threshold else "flat"


@dataclass
class ToolIndex:
    """A faiss index whose row ``i`` is the tool ``names[i]``."""

    index: Any
    names: list[str]
    embedder_name: str
    dim: int
    kind: Kind
    content_hash: str
    build_seconds: float = 0.0
    reused: bool = False
    """True when this index was loaded from the cache instead of being built."""
    folder: Path | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.names)

    def search(self, queries: Vectors, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(scores, row ids)`` for each query row (cosine; -1 ids pad short results)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise RetrievalError(
                f"query vectors have dimension {q.shape[1]}, the index {self.dim} "
                f"(built with {self.embedder_name!r}); use the same embedder"
            )
        k = max(1, min(int(k), len(self.names)))
        if QUERY_THREADS is None or len(q) > _FEW_QUERIES:
            scores, ids = self.index.search(q, k)
            return scores, ids
        faiss = faiss_module()
        with _OMP:
            before = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(QUERY_THREADS)
            try:
                scores, ids = self.index.search(q, k)
            finally:
                faiss.omp_set_num_threads(before)
        return scores, ids

    def vector(self, row: int) -> Vectors:
        """The stored unit vector of row ``row``."""
        return np.asarray(self.index.reconstruct(int(row)), dtype=np.float32)

    def vectors(self) -> Vectors:
        """All stored vectors, ``(n, dim)``."""
        return np.asarray(self.index.reconstruct_n(0, len(self.names)), dtype=np.float32)

    def save(self, folder: str | Path) -> Path:
        """Write ``index.faiss`` and ``manifest.json`` into ``folder`` (replaced atomically)."""
        faiss = faiss_module()
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            manifest = {
                "format": FORMAT_VERSION,
                "kind": self.kind,
                "dimension": self.dim,
                "count": len(self.names),
                "embedder": self.embedder_name,
                "content_hash": self.content_hash,
                "build_seconds": round(self.build_seconds, 3),
                "hnsw": {"M": HNSW_M, "efSearch": HNSW_EF_SEARCH} if self.kind == "hnsw" else None,
                "tools": self.names,
            }
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.folder = folder
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, expected_hash: str | None = None) -> ToolIndex:
        """Read an index saved by :meth:`save`; a :class:`RetrievalError` says what is wrong
        (missing or unreadable files, a manifest that does not match the index, or a content
        hash other than ``expected_hash``)."""
        faiss = faiss_module()
        folder = Path(folder)
        manifest_path, index_path = folder / MANIFEST_FILE, folder / INDEX_FILE
        if not manifest_path.is_file() or not index_path.is_file():
            raise RetrievalError(f"no saved index in {folder}")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            names = [str(n) for n in manifest["tools"]]
            kind, dim = manifest["kind"], int(manifest["dimension"])
            embedder, digest = str(manifest["embedder"]), str(manifest["content_hash"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RetrievalError(f"unreadable manifest {manifest_path}: {exc}") from None
        if expected_hash is not None and digest != expected_hash:
            raise RetrievalError(
                f"stale index in {folder}: content hash {digest[:12]}, expected {expected_hash[:12]}"
            )
        try:
            index = faiss.read_index(str(index_path))
        except Exception as exc:
            raise RetrievalError(f"unreadable index file {index_path}: {exc}") from None
        if kind not in ("flat", "hnsw") or index.ntotal != len(names) or index.d != dim:
            raise RetrievalError(
                f"index in {folder} does not match its manifest ({index.ntotal} vectors of "
                f"dimension {index.d}; manifest: {len(names)} tools, dimension {dim}, kind {kind})"
            )
        if kind == "hnsw":
            index.hnsw.efSearch = HNSW_EF_SEARCH
        return cls(index, names, embedder, dim, kind, digest, reused=True, folder=folder)


def build_index(vectors: Vectors, *, hnsw_threshold: int = HNSW_THRESHOLD) -> tuple[Any, Kind]:
    """A faiss index over unit ``vectors``: flat up to ``hnsw_threshold`` rows, HNSW above."""
    faiss = faiss_module()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise RetrievalError(f"expected an (n, dim) array of vectors, got shape {x.shape}")
    kind = choose_kind(len(x), hnsw_threshold)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(x.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index, kind


def build_or_load(
    tools: Sequence[Tool],
    embedder: TextEncoder,
    cache_dir: str | Path | None = None,
    *,
    hnsw_threshold: int = HNSW_THRESHOLD,
    progress: Progress | None = None,
) -> ToolIndex:
    """The index of ``tools``: loaded from ``cache_dir/<content hash>`` when it is there and
    sound, otherwise embedded, built and (with a ``cache_dir``) saved there.

    A cached index of the other kind (the threshold changed) is rebuilt from its stored vectors
    without embedding again.
    """
    if not tools:
        raise RetrievalError("cannot index an empty tool catalog")
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        dup = next(n for n, c in Counter(names).items() if c > 1)
        raise RetrievalError(f"tool names must be unique to index them; {dup!r} repeats")
    texts = [tool_text(t) for t in tools]
    digest = content_hash(embedder.name, texts)
    kind = choose_kind(len(tools), hnsw_threshold)
    folder = Path(cache_dir) / digest[:32] if cache_dir is not None else None
    if folder is not None:
        cached = _load_cached(folder, digest, names)
        if cached is not None and cached.kind == kind:
            log.info("reusing the cached tool index %s (%d tools)", folder, len(cached))
            return cached
        if cached is not None:
            log.warning(
                "cached tool index %s is %s, %s wanted: rebuilding it from its stored vectors",
                folder,
                cached.kind,
                kind,
            )
            start = time.perf_counter()
            index, kind = build_index(cached.vectors(), hnsw_threshold=hnsw_threshold)
            seconds = time.perf_counter() - start
            built = ToolIndex(index, names, embedder.name, cached.dim, kind, digest, seconds)
            built.save(folder)
            return built
    start = time.perf_counter()
    vectors = embedder.encode(texts, progress=progress)
    index, kind = build_index(vectors, hnsw_threshold=hnsw_threshold)
    seconds = time.perf_counter() - start
    built = ToolIndex(index, names, embedder.name, int(vectors.shape[1]), kind, digest, seconds)
    if folder is not None:
        built.save(folder)
        log.info("saved the tool index to %s (%d tools, %s)", folder, len(built), kind)
    return built


def _load_cached(folder: Path, digest: str, names: list[str]) -> ToolIndex | None:
    """The cached index in ``folder``, or None (with a logged notice) when it must be rebuilt."""
    if not folder.exists():
        log.info("no cached tool index at %s: building it", folder)
        return None
    try:
        cached = ToolIndex.load(folder, expected_hash=digest)
        if cached.names != names:
            raise RetrievalError(f"stale index in {folder}: its tool names differ")
    except RetrievalError as exc:
        log.warning("%s: rebuilding the tool index", exc)
        return None
    return cached
