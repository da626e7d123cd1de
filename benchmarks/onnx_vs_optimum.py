"""Our `onnx-int8` artifact vs the path a user takes today: optimum export + ORTQuantizer (arm64 dynamic preset).

Side by side in one run, same inputs, latency measured round-robin so background load hits both equally.
Prints a table and writes benchmarks/results/onnx_vs_optimum.json.

    python benchmarks/onnx_vs_optimum.py                 # real MiniLM + DistilBERT/MobileBERT-size random
    python benchmarks/onnx_vs_optimum.py --models minilm --rounds 30
    python benchmarks/onnx_vs_optimum.py --repeats 5     # the timing passes 5 times: medians, and the spread

Inputs are 1 x 128: the corpus's longest text (cut at 128 tokens, no padding) for every pass, and
for one more 1-thread pass ("short") a text of about 16 tokens padded to 128, as an app with a static
shape feeds a typical query.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import Timing, run_models, short_text, time_pair

from slimport import export
from slimport.models.loader import load_model
from slimport.targets import load_target
from slimport.validation.corpus import builtin_corpus
from slimport.validation.inputs import latency_feeds
from slimport.validation.runners.ort import OrtRunner
from slimport.validation.validate import ReferenceOutputs, compute_parity


def anchor_path(ckpt: Path, task: str, work: Path) -> Path:
    """What a user writes today: optimum's main_export, then ORTQuantizer with the arm64 dynamic preset."""
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    main_export(str(ckpt), work / "fp32", task=task, library_name="transformers", local_files_only=True)
    quantizer = ORTQuantizer.from_pretrained(work / "fp32")
    quantizer.quantize(save_dir=work / "int8", quantization_config=AutoQuantizationConfig.arm64(is_static=False))
    return next((work / "int8").glob("*.onnx"))


def bench_model(name: str, ckpt: Path | None, timing: Timing, work: Path) -> dict:
    source = load_model(ckpt)
    target = load_target("onnx-int8")
    ours_report = export(model=ckpt, target=target, out=work / "ours", latency_runs=0)
    ours = work / "ours" / f"{source.name}-onnx-int8" / "model.onnx"
    theirs = anchor_path(source.path, source.task, work / "anchor")
    texts = builtin_corpus("validation").texts
    refs = ReferenceOutputs(source).get(texts, target)
    paths = {"ours": ours, "optimum": theirs}
    parity = {k: compute_parity(OrtRunner(p, 2), refs, source)["task"] for k, p in paths.items()}
    profile = load_target("ort-mobile-int8").profile  # 1 x 128
    feeds = latency_feeds(source.tokenizer, max(texts, key=len), profile)
    short = latency_feeds(source.tokenizer, short_text(source.tokenizer, texts), profile)
    row = {"model": name, "task": source.task, "size_mb": {"ours": ours.stat().st_size / 1e6,
                                                            "optimum": theirs.stat().st_size / 1e6},
           "parity": parity, "kept_float": [c["name"] for c in ours_report.artifact["precision"].get("kept_float", [])]}
    time_pair(row, lambda t: {"ours": OrtRunner(ours, t), "optimum": OrtRunner(theirs, t)}, feeds, timing, "optimum",
              short)
    return row


def main(argv: list[str] | None = None) -> int:
    return run_models(argv, __doc__, bench_model, "optimum", "onnx_vs_optimum")


if __name__ == "__main__":
    sys.exit(main())
