"""What the benchmark scripts share: full-size random checkpoints, round-robin timing, table cells, results."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from slimport.models.loader import default_model_path

RESULTS_DIR = Path(__file__).parent / "results"
BLOCK = 30  # calls per runner before switching to the next (round_robin)
SETTLE = 5  # calls at the start of each block that are run but not timed


class _Runs(Protocol):
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def build_random(folder: Path, family: str) -> Path:
    """A full-size random checkpoint (default config) with the MiniLM tokenizer."""
    import torch
    import transformers as tf

    tokenizer = tf.AutoTokenizer.from_pretrained(default_model_path(), local_files_only=True)
    config = {"distilbert": tf.DistilBertConfig, "mobilebert": tf.MobileBertConfig}[family](num_labels=2)
    torch.manual_seed(0)
    tf.AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def round_robin(runners: dict[str, _Runs], feeds: dict[str, np.ndarray], rounds: int,
                clock: Callable[[], float] = time.perf_counter, block: int = BLOCK) -> dict[str, float]:
    """Median ms per runner over at least ``rounds`` timed calls, alternating runners in blocks of
    ``block`` calls after 3 warm-ups each.

    ``block=1`` alternates call by call, the best defence against load that changes over seconds;
    it suits one thread. With more threads the first ``SETTLE`` calls of each block are not counted:
    ONNX Runtime's idle worker threads keep spinning for a while after a multi-threaded run, and calls
    right after another runner's would share the CPU with them (measured: 2-thread calls alternating
    one by one took 17 ms where the same session alone took 10 ms; blocks of 10 calls still moved the
    2-thread ratio by 0.2 between runs).

    ``clock=time.thread_time`` measures the caller thread's CPU time: with one thread the runtime
    computes on the caller thread, so this figure ignores waiting for a busy CPU.
    """
    times: dict[str, list[float]] = {k: [] for k in runners}
    for runner in runners.values():
        for _ in range(3):
            runner.run(feeds)
    settle = SETTLE if block > 1 else 0
    for _ in range(-(-rounds // (block - settle))):
        for name, runner in runners.items():
            for call in range(block):
                start = clock()
                runner.run(feeds)
                if call >= settle:
                    times[name].append((clock() - start) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def metric(parity: dict[str, Any]) -> str:
    """Short parity cell: pooled cosine mean/min for embeddings, top-1 agreement otherwise."""
    if "pooled_cosine_mean" in parity:
        return f"cos {parity['pooled_cosine_mean']:.4f}/{parity['pooled_cosine_min']:.4f}"
    return f"top1 {parity['task_agreement']:.3f}"


def ratio(row: dict[str, Any], key: str) -> str:
    """A ratio cell: the value, plus the lowest-highest over the repeats when there were several."""
    runs = row.get(f"{key}_runs", [])
    spread = f" ({min(runs):.2f}-{max(runs):.2f})" if len(runs) > 1 else ""
    return f"{row[key]:.2f}{spread}"


def print_table(rows: list[dict[str, Any]], anchor: str) -> None:
    """One line per model: size, parity, p50 at 1 and 2 threads, speed-up ratios (anchor / ours)."""
    print(f"{'model':<11} {'size MB ours/' + anchor:>20} {'parity ours':>22} {'parity ' + anchor:>24} "
          f"{'p50 t1 ours/anchor ms':>22} {'x t1':>5} {'p50 t2 ours/anchor ms':>22} {'x t2':>5} {'x cpu t1':>8}")
    for r in rows:
        print(f"{r['model']:<11} {r['size_mb']['ours']:>10.1f}/{r['size_mb'][anchor]:<9.1f} "
              f"{metric(r['parity']['ours']):>22} {metric(r['parity'][anchor]):>24} "
              f"{r['p50_ms_t1']['ours']:>10.1f}/{r['p50_ms_t1'][anchor]:<11.1f} {ratio(r, 'speedup_t1'):>5} "
              f"{r['p50_ms_t2']['ours']:>10.1f}/{r['p50_ms_t2'][anchor]:<11.1f} {ratio(r, 'speedup_t2'):>5} "
              f"{ratio(r, 'speedup_cpu_t1'):>8}"
              + (f" {r['p50_ms_t1_short']['ours']:>8.1f}/{r['p50_ms_t1_short'][anchor]:<9.1f} "
                 f"{ratio(r, 'speedup_t1_short'):>7}" if "speedup_t1_short" in r else ""))


@dataclass(frozen=True)
class Timing:
    """How much to time: ``rounds`` timed calls per runner in each pass (1 thread, 2 threads, CPU time
    at 1 thread), and the three passes repeated ``repeats`` times; exports and parity run once."""

    rounds: int = 100
    repeats: int = 1


#: row keys per timing pass: (threads, clock, key of the p50s, key of the ratio)
_PASSES = ((1, time.perf_counter, "p50_ms_t1", "speedup_t1"), (2, time.perf_counter, "p50_ms_t2", "speedup_t2"),
           (1, time.thread_time, "cpu_ms_t1", "speedup_cpu_t1"))


def time_pair(row: dict[str, Any], make: Callable[[int], dict[str, _Runs]], feeds: dict[str, np.ndarray],
              timing: Timing, anchor: str, short_feeds: dict[str, np.ndarray] | None = None) -> None:
    """Fill ``row`` with p50 per thread count (1, 2), the caller-thread CPU time at 1 thread, and the
    ratios anchor / ours. With ``timing.repeats`` > 1 each figure is the median over the repeats and
    ``<ratio key>_runs`` lists every repeat's ratio, so one run shows its own spread. ``short_feeds``
    (a short text padded to the same shape) adds a 1-thread pass on them (``p50_ms_t1_short``)."""
    passes = [(*p, feeds) for p in _PASSES]
    if short_feeds is not None:
        passes.append((1, time.perf_counter, "p50_ms_t1_short", "speedup_t1_short", short_feeds))
    results: dict[str, list[dict[str, float]]] = {p50_key: [] for _, _, p50_key, _, _ in passes}
    for _ in range(timing.repeats):
        for threads, clock, p50_key, _, pass_feeds in passes:
            block = 1 if threads == 1 else BLOCK
            results[p50_key].append(round_robin(make(threads), pass_feeds, timing.rounds, clock, block=block))
    for _, _, p50_key, ratio_key, _ in passes:
        runs = results[p50_key]
        row[p50_key] = {name: statistics.median(r[name] for r in runs) for name in runs[0]}
        ratios = [r[anchor] / r["ours"] for r in runs]
        row[ratio_key] = statistics.median(ratios)
        row[f"{ratio_key}_runs"] = ratios


def short_text(tokenizer: Any, texts: list[str], tokens: int = 16) -> str:
    """The text whose token count is closest to ``tokens``: a typical app query, padded by the
    profile's static shape to the full length."""
    return min(texts, key=lambda t: (abs(len(tokenizer(t)["input_ids"]) - tokens), t))


def run_models(argv: list[str] | None, doc: str | None, bench_model: Callable[..., dict[str, Any]], anchor: str,
               results: str, **extra: Any) -> int:
    """The shared ``main``: parse ``--models``/``--rounds``, benchmark each model in a temp folder
    (``minilm`` = the embedded real model, others = full-size random checkpoints), print, write JSON."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="minilm,distilbert,mobilebert")
    parser.add_argument("--rounds", type=int, default=100, help="timed calls per runner and thread count")
    parser.add_argument("--repeats", type=int, default=1,
                        help="repeat the timing passes (not the exports); figures are medians over the repeats")
    args = parser.parse_args(argv)
    timing = Timing(args.rounds, max(1, args.repeats))
    rows = []
    with tempfile.TemporaryDirectory(prefix="slimport-bench-") as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            ckpt = None if name == "minilm" else build_random(work / f"ckpt-{name}", name)
            print(f"benchmarking {name} ...", file=sys.stderr)
            rows.append(bench_model(name, ckpt, timing, work / name))
    print_table(rows, anchor)
    write_results(results, {"rounds": timing.rounds, "repeats": timing.repeats, "shape": [1, 128], **extra,
                            "rows": rows})
    return 0


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` with the host description added."""
    from slimport.validation.latency import host_description

    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host_description(), **payload}, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return path
