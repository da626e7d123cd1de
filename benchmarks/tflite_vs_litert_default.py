"""Our `android-int8` artifact vs the plain litert-torch conversion a user writes from its README.

The anchor: wrap the Hugging Face model so it returns one tensor, call
``litert_torch.convert(model, (input_ids, attention_mask), quant_config=quant_recipes.full_dynamic_recipe())``
with int64 sample inputs at 1 x 128, export. Both files run with ai-edge-litert's interpreter
(XNNPACK) side by side in one run, round-robin, same inputs.
Prints a table and writes benchmarks/results/tflite_vs_litert_default.json.

    python benchmarks/tflite_vs_litert_default.py              # real MiniLM + DistilBERT/MobileBERT-size random
    python benchmarks/tflite_vs_litert_default.py --models minilm --rounds 30
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from common import Timing, run_models, short_text, time_pair

from slimport import export
from slimport.models.loader import ModelSource, load_model
from slimport.targets import load_target
from slimport.validation.corpus import builtin_corpus
from slimport.validation.inputs import latency_feeds
from slimport.validation.runners.litert import LiteRtRunner
from slimport.validation.validate import ReferenceOutputs, compute_parity

TARGET = "android-int8"


class AnchorRunner(LiteRtRunner):
    """The README conversion takes positional ``args_0`` (ids) and ``args_1`` (mask) and returns ``output_0``."""

    def __init__(self, model_path: Path, threads: int, output: str) -> None:
        super().__init__(model_path, threads)
        self._output = output

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        renamed = {"args_0": feeds["input_ids"], "args_1": feeds["attention_mask"]}
        return {self._output: next(iter(super().run(renamed).values()))}


def anchor_path(source: ModelSource, work: Path, seq_len: int) -> Path:
    """What a user writes from the litert-torch README, with its default dynamic int8 recipe."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    import litert_torch
    import torch
    from litert_torch.generative.quantize import quant_recipes

    output = source.output_names[0]
    model = source.torch_model

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask)[output]

    ids = torch.ones((1, seq_len), dtype=torch.long)
    edge = litert_torch.convert(Wrapper().eval(), (ids, torch.ones_like(ids)),
                                quant_config=quant_recipes.full_dynamic_recipe())
    path = work / "anchor.tflite"
    work.mkdir(parents=True, exist_ok=True)
    edge.export(str(path))
    return path


def bench_model(name: str, ckpt: Path | None, timing: Timing, work: Path) -> dict[str, Any]:
    """Export ours and the anchor, compare parity on the validation corpus and latency round-robin."""
    source = load_model(ckpt)
    if len(source.output_names) != 1:
        raise SystemExit(f"{name}: the README-style anchor returns one tensor; {source.task} has several")
    target = load_target(TARGET)
    ours_report = export(model=ckpt, target=target, out=work / "ours", latency_runs=0)
    ours = work / "ours" / f"{source.name}-{TARGET}" / "model.tflite"
    theirs = anchor_path(source, work / "anchor", target.profile.seq_len)
    output = source.output_names[0]
    texts = builtin_corpus("validation").texts
    refs = ReferenceOutputs(source).get(texts, target)

    def runners(threads: int) -> dict[str, Any]:
        return {"ours": LiteRtRunner(ours, threads), "litert-default": AnchorRunner(theirs, threads, output)}

    parity = {k: compute_parity(r, refs, source)["task"] for k, r in runners(2).items()}
    feeds = latency_feeds(source.tokenizer, max(texts, key=len), target.profile)
    short = latency_feeds(source.tokenizer, short_text(source.tokenizer, texts), target.profile)
    row: dict[str, Any] = {
        "model": name, "task": source.task,
        "size_mb": {"ours": ours.stat().st_size / 1e6, "litert-default": theirs.stat().st_size / 1e6},
        "parity": parity,
        "recipe": {k: ours_report.artifact["precision"].get(k) for k in ("variant", "kept_float")},
        "xnnpack_share": ours_report.artifact["runtime"]["xnnpack"]["delegated_share"],
    }
    time_pair(row, runners, feeds, timing, "litert-default", short)
    return row


def main(argv: list[str] | None = None) -> int:
    return run_models(argv, __doc__, bench_model, "litert-default", "tflite_vs_litert_default", target=TARGET)


if __name__ == "__main__":
    sys.exit(main())
