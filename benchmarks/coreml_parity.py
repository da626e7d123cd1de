"""Core ML targets on Linux: size, parity against PyTorch, conversion time, and a second evaluator.

For each iOS target and model: export (flexible length, as shipped), validate with slimport's ML
Program evaluator on the 77-text corpus, and record size, pooled cosine / top-1, max abs error,
export and validation time. Then export a fixed-shape (1 x 128) twin and run it through both our
evaluator and coremltools' PyMIL ``value_inference``: their largest disagreement is the check
on the runner itself. Prints a table and writes benchmarks/results/coreml_parity.json.

    python benchmarks/coreml_parity.py                    # real MiniLM + DistilBERT/MobileBERT-size random
    python benchmarks/coreml_parity.py --models minilm --targets ios-fp16,ios-int8
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import build_random, write_results

from slimport import export
from slimport.errors import GateFailed
from slimport.models.loader import load_model
from slimport.targets import load_target
from slimport.validation.corpus import builtin_corpus
from slimport.validation.inputs import encode
from slimport.validation.mil import MilInterpreter
from slimport.validation.mil.pymil import run_with_pymil

TARGETS = "ios-fp32,ios-fp16,ios-int8,ios-int4"
DEFAULT_MODELS = "minilm,distilbert,mobilebert"
CROSS_CHECK_TEXTS = 4


def _export(ckpt: Path | None, target: Any, out: Path) -> tuple[Any, float]:
    start = time.perf_counter()
    try:
        report = export(model=ckpt, target=target, out=out, latency_runs=0)
    except GateFailed as failed:
        report = failed.report
    return report, time.perf_counter() - start


def cross_check(ckpt: Path | None, name: str, work: Path) -> float:
    """Largest |ours - PyMIL| over a few texts on a fixed-shape twin of ``name``."""
    target = load_target(name)
    fixed = dataclasses.replace(target, name=f"{name}-fixed",
                                profile=dataclasses.replace(target.profile, static_shape=True))
    report, _ = _export(ckpt, fixed, work)
    path = work / f"{report.model['name']}-{fixed.name}{'' if report.passed else '.FAILED'}" / "model.mlpackage"
    source = load_model(ckpt)
    ours = MilInterpreter(path)
    worst = 0.0
    for text in builtin_corpus("validation").texts[:CROSS_CHECK_TEXTS]:
        feeds = encode(source.tokenizer, [text], fixed.profile)
        feeds = {k: v for k, v in feeds.items() if k in ours.input_names}
        a, b = ours.run(feeds), run_with_pymil(path, feeds)
        for key in a:
            worst = max(worst, float(np.nanmax(np.abs(a[key].astype(np.float64) - b[key].astype(np.float64)))))
    return worst


def bench(name: str, ckpt: Path | None, targets: list[str], work: Path, rows: list[dict[str, Any]],
          results: str) -> None:
    """Append one row per target for model ``name`` to ``rows``, writing the results file after each
    (a long run that is stopped keeps what it measured)."""
    for target in targets:
        report, seconds = _export(ckpt, target, work / target)
        task = report.parity["task"]
        rows.append({
            "model": name, "target": target, "passed": report.passed, "size_mb": report.artifact["size_mb"],
            "parity": {k: v for k, v in task.items() if k != "worst_texts"},
            "max_abs_error": max(o["max_abs_error"] for o in report.parity["outputs"].values()),
            "export_s": report.timings_s.get("export"), "validate_s": report.timings_s.get("validate"),
            "wall_s": seconds, "kept_int8": [c["name"] for c in report.artifact["precision"].get("kept_int8", [])],
            "evaluator_vs_pymil_max_abs": cross_check(ckpt, target, work / f"{target}-fixed"),
        })
        write_results(results, {"rows": rows, "complete": False})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--targets", default=TARGETS)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    name = "coreml_parity" if args.models == DEFAULT_MODELS else f"coreml_parity_{args.models.replace(',', '_')}"
    with tempfile.TemporaryDirectory(prefix="slimport-bench-") as tmp:
        work = Path(tmp)
        for model in args.models.split(","):
            ckpt = None if model == "minilm" else build_random(work / f"ckpt-{model}", model)
            print(f"benchmarking {model} ...", file=sys.stderr)
            bench(model, ckpt, args.targets.split(","), work / model, rows, name)
    print(f"{'model':<11} {'target':<9} {'verdict':<7} {'size MB':>8} {'parity':>26} {'max abs':>9} "
          f"{'export s':>8} {'valid. s':>8} {'ours-PyMIL':>10}")
    for r in rows:
        p = r["parity"]
        metric = (f"cos {p['pooled_cosine_mean']:.5f}/{p['pooled_cosine_min']:.5f}" if "pooled_cosine_mean" in p
                  else f"top1 {p['task_agreement']:.3f}")
        print(f"{r['model']:<11} {r['target']:<9} {'PASS' if r['passed'] else 'FAIL':<7} {r['size_mb']:>8.1f} "
              f"{metric:>26} {r['max_abs_error']:>9.4f} {r['export_s'] or 0:>8.1f} {r['validate_s'] or 0:>8.1f} "
              f"{r['evaluator_vs_pymil_max_abs']:>10.2e}")
    write_results(name, {"rows": rows, "complete": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
