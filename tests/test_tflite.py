"""TFLite/LiteRT exports of tiny checkpoints: every family at android-int8, every task, fp16/static, contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter

from slimport import export, inspection
from slimport.cli import main
from slimport.errors import EXIT_GATE, EXIT_INPUT
from slimport.models.tasks import TASKS
from slimport.targets import load_target
from slimport.validation.inputs import encode

from .conftest import FAMILIES, assert_complete

RUNS = 3
TFLITE_TOOLS = ("litert-torch", "litert-converter", "ai-edge-quantizer", "ai-edge-litert")


def _folder(tmp_path, ckpt, target):
    return tmp_path / f"{ckpt.name}-{target}"


@pytest.mark.parametrize("family", FAMILIES)
def test_android_int8_passes_for_every_family(tiny, tmp_path, family):
    ckpt = tiny(family, "text-classification")
    report = export(model=ckpt, target="android-int8", out=tmp_path, latency_runs=RUNS)
    assert_complete(report, _folder(tmp_path, ckpt, "android-int8"), TFLITE_TOOLS)
    assert report.parity["task"]["task_agreement"] >= 0.95
    weights = report.artifact["precision"]["weights"]
    assert weights.get("int8", 0) > weights.get("float32", 0), "most weights are int8"
    assert report.artifact["runtime"]["xnnpack"]["delegated_share"] > 0.8
    assert report.artifact["precision"]["attempts"], "the accuracy-aware selection ran"


@pytest.mark.parametrize("task", ["feature-extraction", "token-classification", "question-answering", "fill-mask"])
def test_every_task_exports_fp32_exactly(tiny, tmp_path, task):
    ckpt = tiny("bert", task)
    report = export(model=ckpt, target="android-fp32", out=tmp_path, latency_runs=RUNS)
    assert_complete(report, _folder(tmp_path, ckpt, "android-fp32"), TFLITE_TOOLS)
    assert [o["name"] for o in report.artifact["outputs"]] == list(TASKS[task][1])
    for stats in report.parity["outputs"].values():
        assert stats["max_abs_error"] < 1e-4
        assert stats["cosine_min"] > 0.9999


@pytest.mark.parametrize(("family", "target"), [("distilbert", "android-fp16"), ("mobilebert", "android-fp16"),
                                               ("bert", "android-int8-static"), ("roberta", "android-int8-static"),
                                               ("electra", "android-npu-int8"), ("albert", "android-npu-fp16")])
def test_fp16_and_static_targets(tiny, tmp_path, family, target):
    ckpt = tiny(family, "feature-extraction")
    report = export(model=ckpt, target=target, out=tmp_path, latency_runs=RUNS)
    assert_complete(report, _folder(tmp_path, ckpt, target), TFLITE_TOOLS)
    weights = report.artifact["precision"]["weights"]
    assert weights.get("float16" if target.endswith("fp16") else "int8", 0) > 0
    if "npu" in target or "static" in target:
        assert report.artifact["runtime"]["hybrid_ops"] == {}, "static int8 leaves no dynamic-range kernels"
    if "static" in target:  # both layers' contexts quantized over their values' range (test_context_range)
        assert report.artifact["precision"]["context_ranges"] == 2


def test_npu_target_refuses_a_dynamic_recipe(tiny, tmp_path, capsys):
    target = tmp_path / "npu-dyn.toml"
    target.write_text('format = "tflite"\nprofile = "android-flagship"\n[precision]\ndtype = "int8"\n'
                      'mode = "dynamic"\n[gate]\nnonfinite = 0\n[options]\nallow_hybrid_ops = false\n',
                      encoding="utf-8")
    code = main(["export", "--model", str(tiny("bert")), "--target", str(target), "--out", str(tmp_path / "o")])
    assert code == EXIT_INPUT
    assert "hybrid" in capsys.readouterr().err


def test_contract_and_independent_run(tiny, tmp_path):
    """int32 inputs with fixed names and shape, task-named outputs, and the file gives PyTorch's answer
    when run directly with ai-edge-litert (not through slimport's runner)."""
    ckpt = tiny("bert", "question-answering")
    report = export(model=ckpt, target="android-fp32", out=tmp_path, latency_runs=RUNS)
    folder = _folder(tmp_path, ckpt, "android-fp32")
    runner = Interpreter(model_path=str(folder / "model.tflite")).get_signature_runner("serving_default")
    inputs = runner.get_input_details()
    assert set(inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    profile = load_target("android-fp32").profile
    for detail in inputs.values():
        assert detail["dtype"] == np.int32 and list(detail["shape"]) == [profile.batch, profile.seq_len]
    assert set(runner.get_output_details()) == {"start_logits", "end_logits"}

    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    feeds = encode(tokenizer, ["Où est la gare? 🚉 It is next to the café."], profile)
    out = runner(**{k: v.astype(np.int32) for k, v in feeds.items()})
    model = AutoModelForQuestionAnswering.from_pretrained(ckpt, attn_implementation="eager").eval()
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    np.testing.assert_allclose(out["start_logits"], ref.start_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(out["end_logits"], ref.end_logits.numpy(), atol=1e-4)
    assert report.artifact["inputs"][0] == {"name": "input_ids", "dtype": "int32", "shape": [1, profile.seq_len]}


def test_inspect_lists_ops_builtins_and_xnnpack_share(tiny, tmp_path):
    ckpt = tiny("distilbert", "text-classification")
    export(model=ckpt, target="android-int8", out=tmp_path, latency_runs=RUNS)
    info = inspection.inspect_artifact(_folder(tmp_path, ckpt, "android-int8"))
    assert info["format"] == "tflite"
    assert info["operators"]["FULLY_CONNECTED"] > 0
    assert info["non_builtin_ops"] == []
    xnn = info["xnnpack"]
    assert 0 < xnn["delegated_ops"] <= xnn["ops"] == sum(info["operators"].values())
    assert xnn["partitions"] >= 1
    assert info["verdict"] == "PASS"


def test_forced_float_layers_are_reported_and_kept(tiny, tmp_path):
    target = tmp_path / "keep.toml"
    target.write_text('format = "tflite"\nprofile = "android-midrange"\n[precision]\ndtype = "int8"\n'
                      'mode = "dynamic"\nkeep_float = ["*classifier"]\n[gate]\ntask_agreement = 0.9\n',
                      encoding="utf-8")
    ckpt = tiny("distilbert", "text-classification")
    report = export(model=ckpt, target=str(target), out=tmp_path / "out", latency_runs=RUNS)
    assert sorted(report.artifact["precision"]["kept_float_forced"]) == ["classifier", "pre_classifier"]
    assert report.artifact["precision"]["weights"].get("float32", 0) >= 32 * 32, "pre_classifier stays float"


def test_gate_failure_exits_3_and_keeps_failed_folder(tiny, tmp_path, capsys):
    target = tmp_path / "impossible.toml"
    target.write_text('format = "tflite"\nprofile = "android-midrange"\n[precision]\ndtype = "int8"\n'
                      'mode = "dynamic"\n[gate]\nmax_abs_error = 0.0\n', encoding="utf-8")
    ckpt = tiny("bert", "text-classification")
    code = main(["export", "--model", str(ckpt), "--target", str(target), "--out", str(tmp_path / "o"),
                 "--latency-runs", "1", "--quiet"])
    assert code == EXIT_GATE
    assert "max_abs_error" in capsys.readouterr().err
    assert not list((tmp_path / "o").glob(f"{ckpt.name}-impossible/model.tflite"))


def test_dynamic_profile_is_refused_with_a_clear_line(tiny, tmp_path, capsys):
    target = tmp_path / "dyn.toml"
    target.write_text('format = "tflite"\nprofile = "rpi5"\n[precision]\ndtype = "fp32"\n[gate]\nnonfinite = 0\n',
                      encoding="utf-8")
    code = main(["export", "--model", str(tiny("bert")), "--target", str(target), "--out", str(tmp_path)])
    assert code == EXIT_INPUT
    assert "static-shape" in capsys.readouterr().err


def test_non_builtin_op_is_refused(tiny, tmp_path, monkeypatch, capsys):
    from slimport.exporters import tflite_graph

    monkeypatch.setattr(tflite_graph, "op_counts", lambda _model: {"FULLY_CONNECTED": 4, "custom:FlexErf": 1})
    code = main(["export", "--model", str(tiny("bert")), "--target", "android-fp32", "--out", str(tmp_path)])
    assert code == EXIT_INPUT
    err = capsys.readouterr().err
    assert "custom:FlexErf" in err and "builtin" in err
    assert not any(tmp_path.iterdir()), "nothing half-written left behind"
