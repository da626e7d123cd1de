"""Golden test vectors: a few tokenized inputs and PyTorch's outputs, for apps and ``slimport verify``.

``golden.json`` beside each artifact holds, per vector, the text, the exact int32 inputs the
artifact takes (already padded/truncated to its profile) and the fp32 PyTorch outputs, plus a
per-output absolute tolerance: twice the largest error the artifact itself showed on these vectors
at release time (at least 1e-4 of the output's scale). An app or ``verify`` that runs the vectors
and stays within the tolerance runs the artifact that was released.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN_FILE = "golden.json"
GOLDEN_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Où est la gare ? 🚉 Ich suche den Bahnhof — 駅はどこですか？",
    "def add(a, b):\n    return a + b  # 2 + 2 == 4",
)


def golden_feeds(tokenizer: Any, profile: Any, input_names: list[str]) -> list[dict[str, np.ndarray]]:
    """The golden texts encoded at ``profile`` (int32, only the artifact's inputs)."""
    from slimport.validation.inputs import encode

    feeds = []
    for text in GOLDEN_TEXTS:
        encoded = encode(tokenizer, [text] * profile.batch, profile)
        feeds.append({k: v.astype(np.int32) for k, v in encoded.items() if k in input_names})
    return feeds


def write_golden(folder: Path, model_path: str | None, task: str | None, target: str) -> Path:
    """Compute the golden vectors of the artifact in ``folder`` and write ``golden.json`` there."""
    from slimport.models.loader import load_model
    from slimport.targets import load_target
    from slimport.validation.reference import TorchReference
    from slimport.validation.report import Report
    from slimport.validation.runners import get_runner

    report = Report.read(folder)
    tgt = load_target(target)
    source = load_model(model_path, task=task)
    names = [i["name"] for i in report.artifact["inputs"]]
    runner = get_runner(tgt.format, folder / report.artifact["model_file"], 1)
    reference = TorchReference(source)
    vectors, worst = [], {}
    for text, feeds in zip(GOLDEN_TEXTS, golden_feeds(source.tokenizer, tgt.profile, names), strict=True):
        expected = reference.run(feeds)
        produced = runner.run(feeds)
        for name, value in expected.items():
            error = float(np.nanmax(np.abs(produced[name].astype(np.float64) - value))) if value.size else 0.0
            scale = float(np.abs(value).max()) if value.size else 1.0
            worst[name] = max(worst.get(name, 0.0), error if np.isfinite(error) else np.inf, 1e-4 * scale)
        vectors.append({"text": text, "inputs": {k: v.tolist() for k, v in feeds.items()},
                        "outputs": {k: np.asarray(v, dtype=np.float32).tolist() for k, v in expected.items()},
                        "shapes": {k: list(v.shape) for k, v in expected.items()}})
    tolerance = {name: 2.0 * value for name, value in worst.items()}
    path = folder / GOLDEN_FILE
    payload = {"reference": "pytorch-eager-fp32", "atol": tolerance, "vectors": vectors}
    path.write_text(json.dumps(payload, allow_nan=True), encoding="utf-8")
    return path


def check_golden(folder: Path, fmt: str, model_file: str) -> list[str]:
    """Run the golden vectors through the artifact's runner; one line per output beyond tolerance."""
    from slimport.validation.runners import get_runner

    data = json.loads((folder / GOLDEN_FILE).read_text(encoding="utf-8"))
    runner = get_runner(fmt, folder / model_file, 1)
    problems = []
    for index, vector in enumerate(data["vectors"]):
        feeds = {k: np.asarray(v, dtype=np.int32) for k, v in vector["inputs"].items()}
        produced = runner.run(feeds)
        for name, values in vector["outputs"].items():
            expected = np.asarray(values, dtype=np.float32).reshape(vector["shapes"][name])
            error = float(np.nanmax(np.abs(produced[name] - expected))) if expected.size else 0.0
            if not np.isfinite(error) or error > data["atol"][name]:
                problems.append(f"golden vector {index} ({vector['text'][:30]!r}): {name} differs by {error:.4g} "
                                f"(tolerance {data['atol'][name]:.4g})")
    return problems
