"""Core ML exports of tiny checkpoints, validated on Linux with the ML Program evaluator."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
import torch

from slimport import export, inspection
from slimport.cli import main
from slimport.errors import EXIT_GATE, EXIT_INPUT, GateFailed
from slimport.exporters.coreml import INT4_VARIANTS
from slimport.models.tasks import ENCODER_TASKS, TASKS
from slimport.precision.fp16 import fp16_safe_constant
from slimport.validation.mil.ops import REGISTRY

from .conftest import FAMILIES, build_tiny

COREML_TOOLS = ("coremltools",)


def _folder(tmp_path, ckpt, target):
    return tmp_path / f"{ckpt.name}-{target}"


@pytest.mark.parametrize("family", FAMILIES)
def test_ios_fp16_passes_for_every_family(tiny, tmp_path, family):
    """MobileBERT and BERT (eager attention) build their mask from finfo.min: fp16 -inf unless repaired."""
    ckpt = tiny(family, "text-classification")
    report = export(model=ckpt, target="ios-fp16", out=tmp_path, latency_runs=3)
    folder = _folder(tmp_path, ckpt, "ios-fp16")
    assert report.passed, report.verdict_line()
    assert (folder / "model.mlpackage" / "Manifest.json").is_file()
    assert (folder / "tokenizer" / "tokenizer_config.json").is_file()
    assert report.parity["outputs"]["logits"]["nonfinite"] == 0
    assert report.performance["latency"] is None, "no fake latency from a reference evaluator"
    assert "reference evaluator" in report.performance["note"]
    assert report.tool_versions["coremltools"]
    inputs = report.artifact["inputs"]
    assert all(i["dtype"] == "int32" and i["shape"][1] == "2..512" for i in inputs)


@pytest.mark.parametrize("task", ENCODER_TASKS)
def test_every_task_exports_fp32_exactly(tiny, tmp_path, task):
    ckpt = tiny("bert", task)
    report = export(model=ckpt, target="ios-fp32", out=tmp_path, latency_runs=0)
    assert report.passed, report.verdict_line()
    assert [o["name"] for o in report.artifact["outputs"]] == list(TASKS[task][1])
    for stats in report.parity["outputs"].values():
        assert stats["max_abs_error"] < 1e-4


def test_ios_int8_compresses_weights(tiny, tmp_path, monkeypatch):
    ckpt = tiny("distilbert", "feature-extraction")
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    report = export(model=ckpt, target="ios-int8", out=tmp_path, latency_runs=0)
    assert report.passed, report.verdict_line()
    # coremltools' temporary .mlpackage copies (one per program built) went into the work folder
    # and were removed with it, not left in the system temp folder until the process exits
    assert not list(system_temp.glob("*.mlpackage"))
    assert tempfile.tempdir == str(system_temp)
    weights = report.artifact["precision"]["weights"]
    assert weights.get("int8 (compressed)", 0) > weights.get("float16", 0), weights
    assert report.artifact["runtime"]["operators"].get("constexpr_affine_dequantize", 0) > 0
    info = inspection.inspect_artifact(_folder(tmp_path, ckpt, "ios-int8") / "model.mlpackage")
    assert info["format"] == "coreml" and info["operators"]["linear"] > 0


def test_unrepaired_mask_is_caught_by_the_linux_evaluator(tiny, tmp_path, monkeypatch):
    """Without the sentinel repair the fp16 program yields NaN, and the gate says so."""
    from slimport.exporters import coreml

    monkeypatch.setattr(coreml, "repair_fp16_constants", lambda program: [])
    ckpt = tiny("mobilebert", "text-classification")
    with pytest.raises(GateFailed, match="nonfinite|cosine"):
        export(model=ckpt, target="ios-fp16", out=tmp_path, latency_runs=0)


def test_overflowing_layer_fails_the_fp16_gate_by_name(tmp_path, capsys):
    """The one-line error names where the overflow starts (findings in forward order), not the largest
    value it causes downstream (here the next Linear's input: 5.8e5 against the layer's own 5.3e5 on the
    long calibration texts)."""
    ckpt = build_tiny(tmp_path / "broken", "bert", "feature-extraction")
    from transformers import AutoModel

    model = AutoModel.from_pretrained(ckpt)
    with torch.no_grad():
        model.encoder.layer[0].intermediate.dense.weight.mul_(1e5)
    model.save_pretrained(ckpt)
    code = main(["export", "--model", str(ckpt), "--target", "ios-fp16", "--out", str(tmp_path / "o"),
                 "--latency-runs", "0", "--quiet"])
    assert code == EXIT_GATE
    err = capsys.readouterr().err
    assert "encoder.layer.0.intermediate.dense" in err and "65504" in err


def test_bad_options_and_modes_are_input_errors(tiny, tmp_path, capsys):
    target = tmp_path / "bad.toml"
    target.write_text('format = "coreml"\nprofile = "iphone"\n[precision]\ndtype = "int8"\nmode = "static"\n'
                      '[gate]\nnonfinite = 0\n', encoding="utf-8")
    assert main(["export", "--model", str(tiny("bert")), "--target", str(target), "--out", str(tmp_path)]) == EXIT_INPUT
    assert "weight-only" in capsys.readouterr().err


def test_sentinel_repair_only_touches_sentinels():
    assert fp16_safe_constant(np.array([1.0, 2.0], np.float32)) is None
    assert fp16_safe_constant(np.array([70000.0], np.float32)) is None, "a real large value is not a sentinel"
    fixed = fp16_safe_constant(np.array([np.finfo(np.float32).min, 0.5], np.float32))
    assert fixed is not None and fixed[0] == -1e4 and fixed[1] == 0.5


def test_evaluator_ops_match_numpy():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float16)
    out = REGISTRY["softmax"]("softmax").run(x=x, axis=-1)
    assert np.allclose(out.sum(-1), 1, atol=1e-6)
    ln = REGISTRY["layer_norm"]("layer_norm").run(x=x, axes=np.array([-1]), epsilon=1e-5)
    assert np.allclose(ln.mean(-1), 0, atol=1e-5)
    sliced = REGISTRY["slice_by_index"]("slice_by_index").run(
        x=x, begin=np.array([0, 1, 0]), end=np.array([0, 3, 2]), stride=np.array([1, 1, 1]),
        begin_mask=np.array([True, False, False]), end_mask=np.array([True, False, False]),
        squeeze_mask=np.array([False, False, False]))
    assert sliced.shape == (2, 2, 2)
    gathered = REGISTRY["gather"]("gather").run(x=np.arange(10), indices=np.array([-1, 0]), axis=0)
    assert gathered.tolist() == [9, 0]


def _bert64(tmp_path):
    """Hidden 64 so the Linear weights (64 x 64 and up) are large enough to be compressed; the real
    MiniLM vocabulary (30522 rows: not a multiple of the palette group)."""
    import transformers as tf

    from slimport.models.loader import default_model_path

    tokenizer = tf.AutoTokenizer.from_pretrained(default_model_path(), local_files_only=True)
    torch.manual_seed(0)
    config = tf.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=128, initializer_range=0.2)
    ckpt = tmp_path / "bert64"
    tf.BertModel(config).save_pretrained(ckpt)
    tokenizer.save_pretrained(ckpt)
    return ckpt


def test_ios_int4_palette_variant_runs_on_the_linux_evaluator(tmp_path):
    """Palettized weights (constexpr_lut_to_dense) are evaluated; the word-embedding table, whose row
    count does not divide into palette groups, falls back to linear int4 per block."""
    ckpt = _bert64(tmp_path)
    target = tmp_path / "palette.toml"
    target.write_text('format = "coreml"\nprofile = "iphone"\n[precision]\ndtype = "int4"\nmax_keep_float = 0\n'
                      '[gate]\npooled_cosine_mean = 0.9\nnonfinite = 0\n'
                      '[options]\ndeployment_target = "iOS18"\nint4_method = "palette"\n', encoding="utf-8")
    report = export(model=ckpt, target=str(target), out=tmp_path / "out", latency_runs=0)
    operators = report.artifact["runtime"]["operators"]
    assert operators.get("constexpr_lut_to_dense", 0) >= 8  # 6 Linear per layer x 2 layers, minus small ones
    assert operators.get("constexpr_blockwise_shift_scale", 0) >= 1  # the word embeddings
    assert [a["variant"] for a in report.artifact["precision"]["attempts"]] == [
        "4-bit k-means palette per 16 channels"]
    assert report.passed and report.parity["task"]["pooled_cosine_mean"] > 0.9


def test_ios_int4_keeps_the_most_sensitive_layers_at_int8(tmp_path):
    """A strict gate makes every plain 4-bit variant fail, and the selection keeps ranked layers at
    int8 until it holds."""
    ckpt = _bert64(tmp_path)
    target = tmp_path / "int4-strict.toml"
    target.write_text('format = "coreml"\nprofile = "iphone"\n[precision]\ndtype = "int4"\nmax_keep_float = 16\n'
                      '[gate]\npooled_cosine_min = 0.99995\n[options]\ndeployment_target = "iOS18"\n',
                      encoding="utf-8")
    try:
        report = export(model=ckpt, target=str(target), out=tmp_path / "out", latency_runs=0)
    except GateFailed as failed:
        report = failed.report
    precision = report.artifact["precision"]
    plain = [a for a in precision["attempts"] if not a["kept"]]
    assert [a["variant"] for a in plain] == [label for label, _m, _b in INT4_VARIANTS]
    assert not any(a["passed"] for a in plain)
    assert precision["kept_int8"], "layers were kept at int8"
    assert all(k["reason"].startswith("expected relative output error") for k in precision["kept_int8"])
    assert report.artifact["runtime"]["operators"].get("constexpr_blockwise_shift_scale", 0) > 0


def test_evaluator_agrees_with_coremltools_pymil_on_a_fixed_shape_program(tiny, tmp_path):
    """Second opinion on the runner: coremltools' own value_inference, op by op (fixed shapes only)."""
    from slimport.targets import load_profile
    from slimport.validation.inputs import encode
    from slimport.validation.mil import MilInterpreter
    from slimport.validation.mil.pymil import run_with_pymil

    target = tmp_path / "fixed.toml"
    target.write_text('format = "coreml"\nprofile = "android-midrange"\n[precision]\ndtype = "fp16"\n'
                      '[gate]\nnonfinite = 0\n', encoding="utf-8")
    ckpt = tiny("distilbert", "text-classification")
    assert export(model=ckpt, target=str(target), out=tmp_path / "o", latency_runs=0).passed
    path = tmp_path / "o" / f"{ckpt.name}-fixed" / "model.mlpackage"
    ours = MilInterpreter(path)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    feeds = encode(tokenizer, ["Grüße aus Köln 🍺, see you at 8pm"], load_profile("android-midrange"))
    feeds = {k: v for k, v in feeds.items() if k in ours.input_names}
    a, b = ours.run(feeds)["logits"], run_with_pymil(path, feeds)["logits"]
    assert np.isfinite(b.astype(np.float32)).all()
    assert np.abs(a.astype(np.float32) - b.astype(np.float32)).max() < 1e-2


@pytest.mark.parametrize("family", ["bert", "mobilebert"])
def test_torch_export_source_matches(tiny, tmp_path, family):
    target = tmp_path / "export.toml"
    target.write_text('format = "coreml"\nprofile = "iphone"\n[precision]\ndtype = "fp16"\n'
                      '[gate]\npooled_cosine_min = 0.999\nnonfinite = 0\n[options]\nsource = "torch.export"\n',
                      encoding="utf-8")
    ckpt = tiny(family, "feature-extraction")
    report = export(model=ckpt, target=str(target), out=tmp_path, latency_runs=0)
    assert report.passed, report.verdict_line()
    assert [i["name"] for i in report.artifact["inputs"]][:2] == ["input_ids", "attention_mask"]
    assert [o["name"] for o in report.artifact["outputs"]] == ["last_hidden_state"]


class FakeNativeRunner:
    """Stands in for Core ML's MLModel.predict (macOS only): the evaluator's outputs with a bias, so
    the native figures differ from the evaluator's and can fail the gate on their own."""

    name = "fake-mlmodel-predict"
    reference_only = False

    @staticmethod
    def available() -> bool:
        return True

    def __init__(self, model_path, threads):
        from slimport.validation.runners.coreml import CoremlRunner

        self._inner = CoremlRunner(model_path, threads)
        self.input_names = self._inner.input_names

    def run(self, feeds):
        return {k: v + 0.5 * np.abs(v).mean() for k, v in self._inner.run(feeds).items()}

    def versions(self):
        return {"fake-coreml": "1"}


def test_native_runner_is_reported_and_gated_as_well(tiny, tmp_path, monkeypatch):
    """Where Core ML runs (macOS), validation uses MLModel.predict as well: both parity figures are
    reported and gated, and latency/memory come from the native runtime."""
    from pathlib import Path

    from slimport.validation import runners

    monkeypatch.setitem(runners.NATIVE_RUNNERS, "coreml", f"{__name__}:FakeNativeRunner")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # for the memory probe
    ckpt = tiny("bert", "feature-extraction")
    with pytest.raises(GateFailed) as failed:
        export(model=ckpt, target="ios-fp16", out=tmp_path / "out", latency_runs=3)
    report = failed.value.report
    assert report.parity["runner"] == "slimport-mil-evaluator"
    assert report.parity["native"]["runner"] == "fake-mlmodel-predict"
    failing = [c["name"] for c in report.checks if not c["passed"] and c["name"].startswith("parity.")]
    assert failing and all(name.startswith("parity.native.") for name in failing)  # the evaluator's hold
    assert report.performance["runner"] == "fake-mlmodel-predict"
    assert report.performance["latency"]["p50_ms"] > 0 and report.performance["memory"]["peak_rss_mb"] > 0
    assert report.performance["runner_versions"]["fake-coreml"] == "1"
