"""Shared fixtures: tiny random checkpoints (hidden 32, 2 layers) built with transformers config classes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from slimport.models.loader import default_model_path

FAMILIES = ("bert", "distilbert", "mobilebert", "albert", "electra", "roberta")

_AUTO = {
    "feature-extraction": "AutoModel",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "fill-mask": "AutoModelForMaskedLM",
}


def tiny_config(family: str, vocab_size: int, num_labels: int = 3):
    """A hidden-32, 2-layer config of ``family`` (vocab of the MiniLM tokenizer)."""
    import transformers as tf

    common = {"vocab_size": vocab_size, "num_labels": num_labels, "initializer_range": 0.2}
    if family == "distilbert":
        return tf.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, **common)
    if family == "mobilebert":
        return tf.MobileBertConfig(hidden_size=32, embedding_size=16, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=64, intra_bottleneck_size=16, true_hidden_size=16,
                                   num_feedforward_networks=2, **common)
    if family == "albert":
        return tf.AlbertConfig(hidden_size=32, embedding_size=16, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, **common)
    if family == "electra":
        return tf.ElectraConfig(hidden_size=32, embedding_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, **common)
    if family == "roberta":
        return tf.RobertaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                max_position_embeddings=520, pad_token_id=0, type_vocab_size=1, **common)
    return tf.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, **common)


def build_tiny(folder: Path, family: str, task: str) -> Path:
    """Save a random tiny checkpoint of ``family`` for ``task`` (safetensors + the MiniLM tokenizer)."""
    import torch
    import transformers as tf

    tokenizer = tf.AutoTokenizer.from_pretrained(default_model_path(), local_files_only=True)
    torch.manual_seed(0)
    model = getattr(tf, _AUTO[task]).from_config(
        tiny_config(family, tokenizer.vocab_size, 2 if task == "question-answering" else 3))
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """``tiny(family, task)`` -> path of a cached tiny checkpoint."""
    cache: dict[tuple[str, str], Path] = {}

    def make(family: str = "bert", task: str = "feature-extraction") -> Path:
        key = (family, task)
        if key not in cache:
            cache[key] = build_tiny(tmp_path_factory.mktemp(f"{family}-{task}"), family, task)
        return cache[key]

    return make


@pytest.fixture
def impossible_target(tmp_path) -> Path:
    """A target whose gate no int8 artifact can meet (exact match demanded)."""
    path = tmp_path / "impossible.toml"
    path.write_text(
        'format = "onnx"\nprofile = "rpi5"\n[precision]\ndtype = "int8"\nmode = "dynamic"\n'
        "[gate]\nmax_abs_error = 0.0\n",
        encoding="utf-8",
    )
    return path


ONNX_TOOLS = ("onnxruntime", "optimum-onnx", "onnx")


def assert_complete(report, folder: Path, tools: tuple[str, ...] = ONNX_TOOLS) -> None:
    """An exported folder is whole: PASS, model, tokenizer, report with versions and figures, no temp left."""
    assert report.passed, report.verdict_line()
    assert (folder / "report.json").is_file()
    assert (folder / report.artifact["model_file"]).is_file()
    assert (folder / "tokenizer" / "tokenizer_config.json").is_file()
    assert not any(p.name.startswith(".") for p in folder.parent.iterdir()), "temp folder left behind"
    umask = os.umask(0)
    os.umask(umask)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask, "ordinary folder permissions, not mkdtemp's 0700"
    data = json.loads((folder / "report.json").read_text())
    assert data["passed"] is True
    for key in ("torch", "transformers", "slimport", *tools):
        assert data["tool_versions"][key] not in ("", "missing")
    latency = data["performance"]["latency"]
    assert latency["p50_ms"] > 0
    assert set(latency["by_input"]) == {"longest text", "shortest text, padded"}
    assert latency["p50_ms"] == max(m["p50_ms"] for m in latency["by_input"].values()), "the slower input is gated"
    assert latency["by_input"][latency["input"]]["p50_ms"] == latency["p50_ms"]
    assert data["performance"]["memory"]["peak_rss_mb"] > 0
    assert "not phone measurements" in data["performance"]["note"]
    assert data["parity"]["validation_data"]["texts"] >= 64
