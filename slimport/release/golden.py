"""Golden test vectors: a few tokenized inputs and PyTorch's outputs, for apps and ``slimport verify``.

Decoders (``"kind": "generation"``) record per prompt the ids, PyTorch's last-position logits and
greedy tokens, and the tokens the released artifact generated.

``golden.json`` beside each artifact holds, per vector, the text (question-answering models: a
question as ``text`` and its context as ``text_pair``, fed as the pair validation feeds), the exact
int32 inputs the artifact takes (already padded/truncated to its profile) and the fp32 PyTorch outputs, plus a
per-output absolute tolerance: twice the largest error the artifact itself showed on these vectors
at release time (at least 1e-4 of the output's scale). An app or ``verify`` that runs the vectors
and stays within the tolerance runs the artifact that was released.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from slimport.models.tasks import DECODER_TASKS
from slimport.validation.corpus import TextInput

GOLDEN_FILE = "golden.json"
GOLDEN_NEW_TOKENS = 8  # decoders: greedy tokens recorded per golden prompt
GOLDEN_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Où est la gare ? 🚉 Ich suche den Bahnhof — 駅はどこですか？",
    "def add(a, b):\n    return a + b  # 2 + 2 == 4",
)

#: question-answering models: (question, context); the last context is longer than any model takes,
#: so the pair's truncation (the longer text first) is part of what an app must rebuild
GOLDEN_PAIRS = (
    ("What does the fox jump over?", GOLDEN_TEXTS[0]),
    ("Wo ist der Bahnhof? 🚉", GOLDEN_TEXTS[1]),
    ("What does add return?", " ".join([GOLDEN_TEXTS[2]] * 60)),
)


def golden_inputs(task: str) -> tuple[TextInput, ...]:
    """The golden texts of a model of ``task``: (question, context) pairs for question answering."""
    return GOLDEN_PAIRS if task == "question-answering" else GOLDEN_TEXTS


def golden_feeds(tokenizer: Any, profile: Any, input_names: list[str], texts: tuple[TextInput, ...]
                 ) -> list[dict[str, np.ndarray]]:
    """``texts`` (see :func:`golden_inputs`) encoded at ``profile`` (int32, only the artifact's inputs)."""
    from slimport.validation.inputs import encode

    feeds = []
    for text in texts:
        encoded = encode(tokenizer, [text] * profile.batch, profile)
        feeds.append({k: v.astype(np.int32) for k, v in encoded.items() if k in input_names})
    return feeds


def write_golden(folder: Path, model_path: str | None, task: str | None, target: str) -> Path:
    """Compute the golden vectors of the artifact in ``folder`` and write ``golden.json`` there."""
    from slimport.models.loader import load_model
    from slimport.targets import load_target
    from slimport.validation.report import Report

    report = Report.read(folder)
    tgt = load_target(target)
    source = load_model(model_path, task=task)
    if report.model["task"] in DECODER_TASKS:
        payload = _decoder_golden(folder / report.artifact["model_file"], source, tgt)
    else:
        payload = _encoder_golden(folder / report.artifact["model_file"], report, source, tgt)
    path = folder / GOLDEN_FILE
    path.write_text(json.dumps(payload, allow_nan=True), encoding="utf-8")
    return path


def _max_error(produced: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference, in float64; inf when it is not finite, 0 for an empty output."""
    if not np.size(expected):
        return 0.0
    error = float(np.nanmax(np.abs(np.asarray(produced, dtype=np.float64) - expected)))
    return error if np.isfinite(error) else np.inf


def _allowance(error: float, expected: np.ndarray) -> float:
    """The error a vector allows: what the artifact showed, at least 1e-4 of the output's scale."""
    scale = float(np.abs(expected).max()) if np.size(expected) else 1.0
    return max(error, 1e-4 * scale)


def _beyond(error: float, tolerance: float) -> bool:
    """True when a re-run ``error`` fails its ``tolerance`` (a non-finite error always does)."""
    return not np.isfinite(error) or error > tolerance


def _encoder_golden(model_path: Path, report: Any, source: Any, target: Any) -> dict[str, Any]:
    """Golden vectors for an encoder: the exact inputs, PyTorch's outputs and per-output tolerances."""
    from slimport.validation.reference import TorchReference
    from slimport.validation.runners import get_runner

    names = [i["name"] for i in report.artifact["inputs"]]
    runner = get_runner(target.format, model_path, 1)
    reference = TorchReference(source)
    vectors, worst = [], {}
    texts = golden_inputs(source.task)
    for text, feeds in zip(texts, golden_feeds(source.tokenizer, target.profile, names, texts), strict=True):
        expected = reference.run(feeds)
        produced = runner.run(feeds)
        for name, value in expected.items():
            allowed = _allowance(_max_error(produced[name], value), value)
            worst[name] = max(worst.get(name, 0.0), allowed)
        words = {"text": text[0], "text_pair": text[1]} if isinstance(text, tuple) else {"text": text}
        vectors.append({**words, "inputs": {k: v.tolist() for k, v in feeds.items()},
                        "outputs": {k: np.asarray(v, dtype=np.float32).tolist() for k, v in expected.items()},
                        "shapes": {k: list(v.shape) for k, v in expected.items()}})
    tolerance = {name: 2.0 * value for name, value in worst.items()}
    return {"reference": "pytorch-eager-fp32", "atol": tolerance, "vectors": vectors}


def _decoder_golden(model_path: Path, source: Any, target: Any) -> dict[str, Any]:
    """Golden prompts for a decoder: the prompt ids, PyTorch's logits at the last prompt position and
    its greedy tokens, and the tokens the released artifact generates (which ``verify`` expects again)."""
    from slimport.validation.generation import TorchDecoder, artifact_decoder, greedy, prompt_limit, prompts

    artifact = artifact_decoder(target.format, model_path, 1)
    reference = TorchDecoder(source.torch_model)
    limit = prompt_limit(source.config, target.profile.seq_len, GOLDEN_NEW_TOKENS,
                         getattr(artifact, "context", None))
    vectors, worst = [], 0.0
    for text, ids in zip(GOLDEN_TEXTS, prompts(source.tokenizer, GOLDEN_TEXTS, limit), strict=True):
        ref_tokens, ref_rows = greedy(reference, ids, GOLDEN_NEW_TOKENS)
        got_tokens, got_rows = greedy(artifact, ids, GOLDEN_NEW_TOKENS)
        expected, produced = ref_rows[0][-1], got_rows[0][-1]
        worst = max(worst, _allowance(_max_error(produced, expected), expected))
        vectors.append({"text": text, "input_ids": list(ids), "last_logits": expected.astype(np.float32).tolist(),
                        "pytorch_tokens": ref_tokens, "artifact_tokens": got_tokens})
    return {"kind": "generation", "reference": "pytorch-eager-fp32", "new_tokens": GOLDEN_NEW_TOKENS,
            "atol": {"last_logits": 2.0 * worst}, "vectors": vectors}


def _check_decoder_golden(data: dict[str, Any], model_path: Path, fmt: str) -> list[str]:
    from slimport.validation.generation import artifact_decoder, greedy

    artifact = artifact_decoder(fmt, model_path, 1)
    problems = []
    for index, vector in enumerate(data["vectors"]):
        tokens, rows = greedy(artifact, vector["input_ids"], data["new_tokens"])
        error = _max_error(rows[0][-1], np.asarray(vector["last_logits"], dtype=np.float32))
        if _beyond(error, data["atol"]["last_logits"]):
            problems.append(f"golden prompt {index} ({vector['text'][:30]!r}): last-position logits differ by "
                            f"{error:.4g} (tolerance {data['atol']['last_logits']:.4g})")
        if tokens != vector["artifact_tokens"]:
            problems.append(f"golden prompt {index} ({vector['text'][:30]!r}): generates {tokens}, the released "
                            f"artifact generated {vector['artifact_tokens']}")
    return problems


def check_golden(folder: Path, fmt: str, model_file: str) -> list[str]:
    """Run the golden vectors through the artifact's runner; one line per output beyond tolerance
    (decoders: per prompt whose logits or greedy tokens changed)."""
    from slimport.validation.runners import get_runner

    data = json.loads((folder / GOLDEN_FILE).read_text(encoding="utf-8"))
    if data.get("kind") == "generation":
        return _check_decoder_golden(data, folder / model_file, fmt)
    runner = get_runner(fmt, folder / model_file, 1)
    problems = []
    for index, vector in enumerate(data["vectors"]):
        feeds = {k: np.asarray(v, dtype=np.int32) for k, v in vector["inputs"].items()}
        produced = runner.run(feeds)
        for name, values in vector["outputs"].items():
            expected = np.asarray(values, dtype=np.float32).reshape(vector["shapes"][name])
            error = _max_error(produced[name], expected)
            if _beyond(error, data["atol"][name]):
                problems.append(f"golden vector {index} ({vector['text'][:30]!r}): {name} differs by {error:.4g} "
                                f"(tolerance {data['atol'][name]:.4g})")
    return problems
