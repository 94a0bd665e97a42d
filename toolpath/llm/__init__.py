"""Chat models behind one protocol: see :mod:`toolpath.llm.base` and :mod:`toolpath.llm.specs`."""

from toolpath.llm.base import (
    ChatModel,
    ChatModelBase,
    Completion,
    Message,
    StreamEvent,
    ToolCall,
    Usage,
)

__all__ = [
    "ChatModel",
    "ChatModelBase",
    "Completion",
    "Message",
    "StreamEvent",
    "ToolCall",
    "Usage",
]
