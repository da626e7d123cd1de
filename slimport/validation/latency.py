"""Latency (p50/p90 after warm-up) and peak memory of an artifact's runner on this host."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from slimport.errors import SlimportError
from slimport.validation.runners import Runner


def host_description() -> dict[str, object]:
    """CPU model, core count and OS of the machine the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(), "os": platform.platform()}


def effective_threads(requested: int) -> int:
    """The profile's thread count, capped at this host's cores (the report says when it was capped)."""
    return max(1, min(requested, os.cpu_count() or 1))


def measure_latency(runner: Runner, feeds: dict[str, np.ndarray], runs: int = 30, warmup: int = 5) -> dict[str, float]:
    """Time ``runs`` calls after ``warmup`` calls; returns p50/p90/mean/min in milliseconds."""
    for _ in range(warmup):
        runner.run(feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run(feeds)
        times.append((time.perf_counter() - start) * 1000.0)
    arr = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "mean_ms": float(arr.mean()),
        "min_ms": float(arr.min()),
        "runs": runs,
        "warmup": warmup,
    }


def worst_case_latency(runner: Runner, inputs: dict[str, dict[str, np.ndarray]], runs: int = 30,
                        warmup: int = 5) -> dict[str, Any]:
    """Latency on each of ``inputs`` (name -> feeds of the same shape); the slower one's figures (by
    p50), with ``input`` naming it and ``by_input`` holding each input's p50/p90.

    One input is not enough: at a static shape a short text is mostly padding, and padding is not
    free everywhere (ONNX Runtime's softmax over masked keys runs on denormals on x86 and took 5-7x
    as long as over real ones), so the slower input depends on the artifact and the host."""
    measured = {name: measure_latency(runner, feeds, runs=runs, warmup=warmup) for name, feeds in inputs.items()}
    worst = max(measured, key=lambda name: measured[name]["p50_ms"])
    return {**measured[worst], "input": worst,
            "by_input": {name: {"p50_ms": m["p50_ms"], "p90_ms": m["p90_ms"]} for name, m in measured.items()}}


def measure_peak_memory(fmt: str, model_path: Path, threads: int, feeds: dict[str, np.ndarray], runs: int = 5,
                        runner: str | None = None) -> dict:
    """Peak RSS of a fresh process that loads the artifact with its format's runner (or the ``runner``
    class named ``"module:Class"``) and runs it ``runs`` times.

    Returns ``peak_rss_mb`` (whole process) and ``baseline_rss_mb`` (after imports, before loading).
    """
    with tempfile.TemporaryDirectory(prefix="slimport-mem-") as tmp:
        npz = Path(tmp) / "feeds.npz"
        np.savez(npz, **feeds)
        return _probe([runner or fmt, str(model_path), str(threads), str(npz), str(runs)], model_path)


def measure_decoder_peak_memory(runner: str, model_path: Path, threads: int, prompt: list[int],
                                new_tokens: int) -> dict:
    """Peak RSS of a fresh process that loads a decoder artifact with the ``runner`` class
    (``"module:Class"``), prefills ``prompt`` and generates ``new_tokens`` greedily: weights, runtime
    arena and the KV cache at its largest. Same fields as :func:`measure_peak_memory`."""
    with tempfile.TemporaryDirectory(prefix="slimport-mem-") as tmp:
        ids = Path(tmp) / "prompt.npz"
        np.savez(ids, prompt=np.asarray(prompt, dtype=np.int64))
        return _probe(["--decoder", runner, str(model_path), str(threads), str(ids), str(new_tokens)], model_path)


def _probe(args: list[str], model_path: Path) -> dict:
    """Run :mod:`slimport.validation.memprobe` with ``args``; its JSON line."""
    cmd = [sys.executable, "-m", "slimport.validation.memprobe", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SlimportError(f"memory probe failed for {model_path.name}: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def performance_record(runner: str, versions: dict[str, str], requested_threads: int, threads: int,
                       shape: list[int], latency: dict | None, memory: dict | None, note: str) -> dict[str, Any]:
    """The report's ``performance`` section (encoders and decoders alike), with this host's description."""
    return {"host": host_description(), "runner": runner, "runner_versions": versions,
            "threads_requested": requested_threads, "threads_used": threads, "shape": shape,
            "latency": latency, "memory": memory, "note": note}
