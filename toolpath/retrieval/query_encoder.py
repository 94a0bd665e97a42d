"""A faster path for embedding a single short query.

Through sentence-transformers' pipeline, one ten-word query costs about 15 ms on one laptop core
with all-MiniLM-L6-v2, and most of that is eager PyTorch's per-operator overhead, not arithmetic.
For the usual layout (a transformer, mean pooling, then optionally normalization),
:func:`build_query_encoder` traces the transformer once with TorchScript, freezes it and does
the pooling by hand, which cuts that overhead. It checks itself against the pipeline on sample
texts of different lengths when it is built, and returns None (keep using the pipeline) when
the layout is different, tracing fails, or the vectors disagree.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]
QueryEncoder = Callable[[str], Vector]
"""``encoder(text)``: the text's unit vector, shape ``(dim,)``."""

_CHECK_TEXTS = (
    "weather",
    "find the weather forecast for a city tomorrow",
    "convert 250 US dollars to euros at today's exchange rate, then book the cheapest "
    "flight from Paris to Tokyo for next Monday and send me the itinerary by email",
)
_MIN_COSINE = 0.9999


def build_query_encoder(model: Any) -> QueryEncoder | None:
    """A traced single-text encoder equivalent to ``model.encode([text], normalize=True)[0]``
    for a sentence-transformers ``model``, or None where that cannot be had safely."""
    modules = list(model)
    names = [type(m).__name__ for m in modules]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    if getattr(modules[1], "pooling_mode", None) not in ("mean", ("mean",), ["mean"]):
        return None
    transformer = getattr(modules[0], "auto_model", None)
    tokenizer = getattr(model, "tokenizer", None)
    if transformer is None or tokenizer is None:
        return None
    max_length = int(getattr(model, "max_seq_length", None) or 512)
    try:
        encoder = _trace(transformer, tokenizer, max_length)
        worst = min(float(np.dot(encoder(t), _reference(model, t))) for t in _CHECK_TEXTS)
    except Exception as exc:  # TorchScript is best effort: any failure keeps the pipeline
        log.debug("query encoder not traced: %s", exc)
        return None
    if worst < _MIN_COSINE:
        log.debug("query encoder disagrees with the pipeline (cosine %.6f); not used", worst)
        return None
    return encoder


def _trace(transformer: Any, tokenizer: Any, max_length: int) -> QueryEncoder:
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=ids, attention_mask=mask).last_hidden_state

    def tokens(text: str) -> tuple[torch.Tensor, torch.Tensor]:
        batch = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"]

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about shape-dependent Python branches
        traced = torch.jit.freeze(torch.jit.trace(Hidden().eval(), tokens(_CHECK_TEXTS[1])))

    def encode(text: str) -> Vector:
        with torch.inference_mode():
            # one unpadded text: every position is a real token, so the mean is over all of them
            hidden = traced(*tokens(text))[0].mean(dim=0)
            hidden = hidden / hidden.norm().clamp_min(1e-12)
        return np.asarray(hidden.numpy(), dtype=np.float32)

    return encode


def _reference(model: Any, text: str) -> Vector:
    vector = model.encode(
        [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vector[0], dtype=np.float32)
