"""Round trip of a warm sandboxed Python kernel, through ``PythonKernel.execute``.

    python benchmarks/kernel_roundtrip.py [--runs 500] [--warmup 50]

Starts one :class:`toolpath.tools.code.kernel.PythonKernel` (default limits, so the sandbox launcher,
resource limits and, as root, the dropped uid are all in place), warms it up, then times
``execute`` for ``x = 1 + 1`` (no output) and ``print(x)`` (one stream message). Also reports the
kernel's start and reset (restart) times. Goal: p50 at most 10 ms for both statements.
"""

from __future__ import annotations

import argparse
import statistics
import time

from toolpath.tools.code.kernel import PythonKernel


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``samples``, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def roundtrips(kernel: PythonKernel, code: str, runs: int, warmup: int) -> list[float]:
    """Milliseconds per ``kernel.execute(code)``, after ``warmup`` untimed runs."""
    samples: list[float] = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        result = kernel.execute(code)
        elapsed = (time.perf_counter() - start) * 1000
        if not result.ok:
            raise SystemExit(f"{code!r} failed: {result.text()}")
        if i >= warmup:
            samples.append(elapsed)
    return samples


def main() -> None:
    """Run the benchmark and print one line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="timed runs per statement")
    parser.add_argument("--warmup", type=int, default=50, help="untimed runs first")
    args = parser.parse_args()

    kernel = PythonKernel()
    start = time.perf_counter()
    kernel.start()
    print(f"start:  {(time.perf_counter() - start) * 1000:8.1f} ms")
    try:
        for code in ("x = 1 + 1", "print(x)"):
            ms = roundtrips(kernel, code, args.runs, args.warmup)
            print(
                f"{code!r:12} p50 {statistics.median(ms):6.2f} ms   p99 {percentile(ms, 99):6.2f} ms"
                f"   mean {statistics.fmean(ms):6.2f} ms   ({len(ms)} runs)"
            )
        start = time.perf_counter()
        kernel.reset()
        print(f"reset:  {(time.perf_counter() - start) * 1000:8.1f} ms")
    finally:
        kernel.shutdown()


if __name__ == "__main__":
    main()
