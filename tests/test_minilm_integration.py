"""The real all-MiniLM-L6-v2: quantization damage only shows on real weights."""

from __future__ import annotations

import pytest

from slimport import export

pytestmark = pytest.mark.integration


def test_minilm_onnx_int8_passes_with_accuracy_margin(tmp_path):
    report = export(model=None, target="onnx-int8", out=tmp_path, latency_runs=5)
    task = report.parity["task"]
    assert report.passed, report.verdict_line()
    assert task["pooled_cosine_mean"] >= 0.99 and task["pooled_cosine_min"] >= 0.98
    assert report.artifact["size_mb"] < 40  # int8: about a third of the 86 MB fp32 file at most
    assert report.artifact["precision"]["attempts"], "the selection ran"
