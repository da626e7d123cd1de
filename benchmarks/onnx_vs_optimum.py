"""Our `onnx-int8` artifact vs the path a user takes today: optimum export + ORTQuantizer (arm64 dynamic preset).

Side by side in one run, same inputs, latency measured round-robin so background load hits both equally.
Prints a table and writes benchmarks/results/onnx_vs_optimum.json.

    python benchmarks/onnx_vs_optimum.py                 # real MiniLM + DistilBERT/MobileBERT-size random
    python benchmarks/onnx_vs_optimum.py --models minilm --rounds 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from slimport import export
from slimport.models.loader import default_model_path, load_model
from slimport.targets import load_target
from slimport.validation.corpus import builtin_corpus
from slimport.validation.inputs import latency_feeds
from slimport.validation.runners.ort import OrtRunner
from slimport.validation.validate import ReferenceOutputs, compute_parity

RESULTS = Path(__file__).parent / "results" / "onnx_vs_optimum.json"


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


def anchor_path(ckpt: Path, task: str, work: Path) -> Path:
    """What a user writes today: optimum's main_export, then ORTQuantizer with the arm64 dynamic preset."""
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    main_export(str(ckpt), work / "fp32", task=task, library_name="transformers", local_files_only=True)
    quantizer = ORTQuantizer.from_pretrained(work / "fp32")
    quantizer.quantize(save_dir=work / "int8", quantization_config=AutoQuantizationConfig.arm64(is_static=False))
    return next((work / "int8").glob("*.onnx"))


def round_robin(runners: dict[str, OrtRunner], feeds: dict[str, np.ndarray], rounds: int,
                clock=time.perf_counter) -> dict[str, float]:
    """Median ms per runner, alternating runners every call after 3 warm-ups each.

    ``clock=time.thread_time`` measures the caller thread's CPU time: with one intra-op thread ORT
    computes on the caller thread, so this figure ignores time spent waiting for a busy CPU.
    """
    times: dict[str, list[float]] = {k: [] for k in runners}
    for runner in runners.values():
        for _ in range(3):
            runner.run(feeds)
    for _ in range(rounds):
        for name, runner in runners.items():
            start = clock()
            runner.run(feeds)
            times[name].append((clock() - start) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_model(name: str, ckpt: Path | None, rounds: int, work: Path) -> dict:
    source = load_model(ckpt)
    target = load_target("onnx-int8")
    ours_report = export(model=ckpt, target=target, out=work / "ours", latency_runs=0)
    ours = work / "ours" / f"{source.name}-onnx-int8" / "model.onnx"
    theirs = anchor_path(source.path, source.task, work / "anchor")
    texts = builtin_corpus("validation").texts
    refs = ReferenceOutputs(source).get(texts, target)
    paths = {"ours": ours, "optimum": theirs}
    parity = {k: compute_parity(OrtRunner(p, 2), refs, source)["task"] for k, p in paths.items()}
    feeds = latency_feeds(source.tokenizer, max(texts, key=len), load_target("ort-mobile-int8").profile)  # 1 x 128
    row = {"model": name, "task": source.task, "size_mb": {"ours": ours.stat().st_size / 1e6,
                                                            "optimum": theirs.stat().st_size / 1e6},
           "parity": parity, "kept_float": [c["name"] for c in ours_report.artifact["precision"].get("kept_float", [])]}
    for threads in (1, 2):
        p50 = round_robin({"ours": OrtRunner(ours, threads), "optimum": OrtRunner(theirs, threads)}, feeds, rounds)
        row[f"p50_ms_t{threads}"] = p50
        row[f"speedup_t{threads}"] = p50["optimum"] / p50["ours"]
    cpu = round_robin({"ours": OrtRunner(ours, 1), "optimum": OrtRunner(theirs, 1)}, feeds, rounds, time.thread_time)
    row["cpu_ms_t1"] = cpu
    row["speedup_cpu_t1"] = cpu["optimum"] / cpu["ours"]
    return row


def _metric(parity: dict) -> str:
    if "pooled_cosine_mean" in parity:
        return f"cos {parity['pooled_cosine_mean']:.4f}/{parity['pooled_cosine_min']:.4f}"
    return f"top1 {parity['task_agreement']:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="minilm,distilbert,mobilebert")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="slimport-bench-") as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            ckpt = None if name == "minilm" else build_random(work / f"ckpt-{name}", name)
            print(f"benchmarking {name} ...", file=sys.stderr)
            rows.append(bench_model(name, ckpt, args.rounds, work / name))
    header = (f"{'model':<11} {'size MB ours/opt':>17} {'parity ours':>22} {'parity optimum':>22} "
              f"{'p50 t1 ours/opt ms':>19} {'x t1':>5} {'p50 t2 ours/opt ms':>19} {'x t2':>5} {'x cpu t1':>8}")
    print(header)
    for r in rows:
        print(f"{r['model']:<11} {r['size_mb']['ours']:>8.1f}/{r['size_mb']['optimum']:<8.1f} "
              f"{_metric(r['parity']['ours']):>22} {_metric(r['parity']['optimum']):>22} "
              f"{r['p50_ms_t1']['ours']:>9.1f}/{r['p50_ms_t1']['optimum']:<9.1f} {r['speedup_t1']:>5.2f} "
              f"{r['p50_ms_t2']['ours']:>9.1f}/{r['p50_ms_t2']['optimum']:<9.1f} {r['speedup_t2']:>5.2f} "
              f"{r['speedup_cpu_t1']:>8.2f}")
    from slimport.validation.latency import host_description

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"host": host_description(), "rounds": args.rounds, "shape": [1, 128],
                                   "rows": rows}, indent=2))
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
