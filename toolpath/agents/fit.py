"""Does a tool do what a request asks? A one-token check that lets a small model decline.

Asked to choose between calling a tool and answering, a small model calls a tool nearly every
time, even one that does something else. Asked the narrower question of whether one tool does
what a request asks, its probability of "yes" separates the two far better, so a fresh
request's calls stand only if one of their tools is likely enough to fit
(:attr:`~toolpath.agents.toolcall.DecideOptions.check_fit`).
"""

from __future__ import annotations

import math

from toolpath.llm.base import Completion, GenerateOptions, Message
from toolpath.tools.base import Tool

FIT_PROMPT = """Request: {request}

Tool: {tool}

Does this tool do what the request asks for, or one of the things it asks for? Answer yes or no."""
FIT_THRESHOLD = 0.7
"""A :attr:`DecideOptions.check_fit` for the embedded 1.5B, tuned on BFCL's dev items (the last
40 of each category), where it let every right tool through and stopped most calls to tools
that did something else. Other models need their own."""
DECLINED = "None of my tools can do this ({tools} does something else)."


FIT_OPTIONS: GenerateOptions = {"max_tokens": 1, "temperature": 0.0, "top_logprobs": 10}
"""A fit check's options: one token, with its likeliest alternatives."""


def fit_messages(request: str, tool: Tool) -> list[Message]:
    """The one message of a fit check of ``tool`` for ``request``."""
    text = FIT_PROMPT.format(request=request, tool=f"{tool.wire_name}: {tool.description}")
    return [{"role": "user", "content": text}]


def fit_of(completion: Completion) -> float | None:
    """The probability of "yes" against "no" in a fit check's reply (None: no log-probabilities,
    or neither word among the likeliest tokens)."""
    if not completion.top_logprobs:
        return None
    yes = no = 0.0
    for token, logprob in completion.top_logprobs[0].items():
        word = token.strip().lower()
        if word in ("yes", "no"):
            p = math.exp(logprob)
            yes, no = (yes + p, no) if word == "yes" else (yes, no + p)
    return yes / (yes + no) if yes + no > 0 else None
