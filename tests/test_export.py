"""End-to-end exports of tiny checkpoints: every family, every task, every ONNX target."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from slimport import export
from slimport.validation.report import Report

from .conftest import FAMILIES, assert_complete

RUNS = 3  # latency runs: the figures are not under test here, only that they are measured


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_int8_passes_for_every_family(tiny, tmp_path, family):
    ckpt = tiny(family, "text-classification")
    report = export(model=ckpt, target="onnx-int8", out=tmp_path, latency_runs=RUNS)
    folder = tmp_path / f"{ckpt.name}-onnx-int8"
    assert_complete(report, folder)
    assert report.parity["task"]["task_agreement"] >= 0.95
    assert report.artifact["precision"]["weights"].get("int8", 0) > 0


@pytest.mark.parametrize("task", ["feature-extraction", "token-classification", "question-answering", "fill-mask"])
def test_every_task_exports_fp32_exactly(tiny, tmp_path, task):
    ckpt = tiny("bert", task)
    report = export(model=ckpt, target="onnx-fp32", out=tmp_path, latency_runs=RUNS)
    assert_complete(report, tmp_path / f"{ckpt.name}-onnx-fp32")
    for stats in report.parity["outputs"].values():
        assert stats["max_abs_error"] < 1e-3
        assert stats["cosine_min"] > 0.9999
    # question answering is validated and calibrated on (question, context) pairs
    pairs = "consecutive" if task == "question-answering" else None
    assert report.parity["validation_data"].get("pairs") == pairs
    assert report.parity["calibration_data"].get("pairs") == pairs


@pytest.mark.parametrize(("family", "target"), [("distilbert", "onnx-fp16"), ("mobilebert", "onnx-fp16"),
                                               ("distilbert", "onnx-int8-static"), ("electra", "onnx-int8-static")])
def test_other_onnx_recipes(tiny, tmp_path, family, target):
    ckpt = tiny(family, "feature-extraction")
    report = export(model=ckpt, target=target, out=tmp_path, latency_runs=RUNS)
    folder = tmp_path / f"{ckpt.name}-{target}"
    assert_complete(report, folder)
    weights = report.artifact["precision"]["weights"]
    if target == "onnx-fp16":
        assert weights.get("float16", 0) > weights.get("float", 0)
    else:
        ops = ort.InferenceSession(str(folder / "model.onnx")).get_modelmeta()  # loads
        assert ops is not None
        assert weights.get("int8", 0) > 0
        # each of the 2 layers' attention contexts is quantized over its values' range (test_context_range)
        assert report.artifact["precision"]["context_ranges"] == 2


def test_ort_mobile_int8_static_int32_contract(tiny, tmp_path):
    ckpt = tiny("bert", "text-classification")
    report = export(model=ckpt, target="ort-mobile-int8", out=tmp_path, latency_runs=RUNS)
    folder = tmp_path / f"{ckpt.name}-ort-mobile-int8"
    assert_complete(report, folder)
    assert report.artifact["model_file"] == "model.ort"
    assert any(f.endswith(".config") for f in report.artifact["extra_files"])
    for spec in report.artifact["inputs"]:
        assert spec["dtype"] == "int32"
        assert spec["shape"] == [1, 128]
    session = ort.InferenceSession(str(folder / "model.ort"))
    feeds = {i.name: np.ones((1, 128), dtype=np.int32) for i in session.get_inputs()}
    assert session.run(None, feeds)[0].shape == (1, 3)
    from slimport.inspection import inspect_artifact

    info = inspect_artifact(folder)
    assert info["format"] == "ort" and info["verdict"] == "PASS"
    int8_ops = {"MatMulInteger", "DynamicQuantizeLinear", "com.microsoft:DynamicQuantizeMatMul"}
    assert int8_ops & set(info["operators"]), info["operators"]
    assert "attempts" in info["precision"], "selection details survive the .ort conversion"


def test_gate_failure_writes_failed_folder_and_raises(tiny, tmp_path, impossible_target):
    from slimport.errors import GateFailed

    ckpt = tiny("bert", "feature-extraction")
    with pytest.raises(GateFailed, match=r"FAIL .*max_abs_error .* > 0"):
        export(model=ckpt, target=impossible_target, out=tmp_path, latency_runs=0)
    assert not (tmp_path / f"{ckpt.name}-impossible").exists()
    report = Report.read(tmp_path / f"{ckpt.name}-impossible.FAILED")
    assert report.passed is False
    assert report.failed_checks
