"""Chat models behind one protocol, :class:`ChatModel`, and the backends that implement it.

:func:`load_model` turns a spec into a model: ``local`` (llama.cpp in-process,
:class:`LocalModel`), ``openai:``/``ollama:``/a URL (:class:`OpenAICompatModel`), ``vllm:``
(:class:`VLLMModel`). :class:`ReplicaPool` balances one model over several servers;
:class:`ScriptedModel` replays replies for tests. Messages are plain OpenAI chat dicts
(:data:`Message`; :func:`system`, :func:`user`, :func:`assistant` and :func:`tool_message` build
them), and a reply is a :class:`Completion`. :class:`GenerateOptions` names the generation
keywords every backend takes.
"""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "ChatModel": "toolpath.llm.base",
    "ChatModelBase": "toolpath.llm.base",
    "Completion": "toolpath.llm.base",
    "GenerateOptions": "toolpath.llm.base",
    "Message": "toolpath.llm.base",
    "StreamEvent": "toolpath.llm.base",
    "ToolCall": "toolpath.llm.base",
    "ToolSpec": "toolpath.llm.base",
    "Usage": "toolpath.llm.base",
    "assistant": "toolpath.llm.base",
    "system": "toolpath.llm.base",
    "tool_message": "toolpath.llm.base",
    "user": "toolpath.llm.base",
    "load_model": "toolpath.llm.specs",
    "LocalModel": "toolpath.llm.local",
    "OpenAICompatModel": "toolpath.llm.openai_compat",
    "VLLMModel": "toolpath.llm.vllm_engine",
    "ReplicaPool": "toolpath.llm.replicas",
    "load_replicas": "toolpath.llm.replicas",
    "ScriptedModel": "toolpath.llm.scripted",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.llm.base import ChatModel as ChatModel
    from toolpath.llm.base import ChatModelBase as ChatModelBase
    from toolpath.llm.base import Completion as Completion
    from toolpath.llm.base import GenerateOptions as GenerateOptions
    from toolpath.llm.base import Message as Message
    from toolpath.llm.base import StreamEvent as StreamEvent
    from toolpath.llm.base import ToolCall as ToolCall
    from toolpath.llm.base import ToolSpec as ToolSpec
    from toolpath.llm.base import Usage as Usage
    from toolpath.llm.base import assistant as assistant
    from toolpath.llm.base import system as system
    from toolpath.llm.base import tool_message as tool_message
    from toolpath.llm.base import user as user
    from toolpath.llm.local import LocalModel as LocalModel
    from toolpath.llm.openai_compat import OpenAICompatModel as OpenAICompatModel
    from toolpath.llm.replicas import ReplicaPool as ReplicaPool
    from toolpath.llm.replicas import load_replicas as load_replicas
    from toolpath.llm.scripted import ScriptedModel as ScriptedModel
    from toolpath.llm.specs import load_model as load_model
    from toolpath.llm.vllm_engine import VLLMModel as VLLMModel
