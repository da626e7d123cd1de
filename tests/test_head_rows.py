"""The head-row trim: a sequence classifier's last layer computes only the row its head reads."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from slimport import export
from slimport.exporters import onnx_head_rows
from slimport.exporters.onnx_index import Constants, inferred_dims
from slimport.targets import load_target
from tests.onnx_helpers import graph_handed_to

LAYERS = 2


def _exported_float_graph(ckpt, tmp_path, monkeypatch) -> onnx.ModelProto:
    """The float graph the exporter hands to the trim (exported, fused as the target says, rewritten)."""
    return graph_handed_to(onnx_head_rows, "trim_head_rows", ckpt, tmp_path / "grab", monkeypatch)


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})


def _linear_rows(model: onnx.ModelProto) -> list:
    """The row count (second last output dim) of every MatMul with a constant weight, in graph order."""
    dims, constants = inferred_dims(model), Constants(model.graph)  # ALBERT's shared weights: Identity nodes
    return [dims[n.output[0]][-2] for n in model.graph.node
            if n.op_type == "MatMul" and constants.is_constant(n.input[1])]


@pytest.mark.parametrize(("family", "trimmed_linears"), [
    ("bert", 4), ("distilbert", 4), ("albert", 4), ("electra", 4), ("roberta", 4),
    ("mobilebert", 8)])  # Q, output, FFN in and out; MobileBERT: its bottlenecks and four stacked FFNs too
def test_classifier_last_layer_computes_only_the_row_its_head_reads(tiny, tmp_path, monkeypatch, family,
                                                                     trimmed_linears):
    """Q, the attention of the first query, the output projection and the FFN of the last layer run on one
    row; keys, values and every earlier layer on all rows; the logits equal the untrimmed graph's on a
    padded batch of three lengths."""
    ckpt = tiny(family, "text-classification")
    before = _exported_float_graph(ckpt, tmp_path, monkeypatch)
    after = copy.deepcopy(before)
    products = onnx_head_rows.trim_head_rows(after)
    assert products >= trimmed_linears + 2, "the Linears plus the scores and context products"

    rows = _linear_rows(after)
    assert rows.count(1) == trimmed_linears
    assert _linear_rows(before).count(1) == 0
    # the inputs are cut to the attended positions first (onnx_sequence_trim): a symbolic row count
    assert 1 not in rows[: len(rows) // LAYERS] and len(rows) == len(_linear_rows(before)), "layer 0 is untouched"

    rng = np.random.default_rng(0)
    mask = np.ones((3, 21), np.int64)
    mask[1, 9:] = 0
    mask[2, 4:] = 0
    feeds = {"input_ids": rng.integers(5, 90, (3, 21)), "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}
    for want, got in zip(_run(before, feeds), _run(after, feeds), strict=True):
        assert want.shape == got.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task", ["feature-extraction", "token-classification", "question-answering"])
def test_graphs_whose_outputs_need_every_row_are_left_unchanged(tiny, tmp_path, monkeypatch, task):
    ckpt = tiny("bert", task)
    model = _exported_float_graph(ckpt, tmp_path, monkeypatch)
    before = model.SerializeToString()
    assert onnx_head_rows.trim_head_rows(model) == 0
    assert model.SerializeToString() == before


def test_a_trim_whose_outputs_disagree_is_not_kept(tiny, tmp_path, monkeypatch):
    ckpt = tiny("distilbert", "text-classification")
    model = _exported_float_graph(ckpt, tmp_path, monkeypatch)
    before = model.SerializeToString()
    monkeypatch.setattr(onnx_head_rows, "same_outputs", lambda a, b: False)
    assert onnx_head_rows.trim_head_rows(model) == 0
    assert model.SerializeToString() == before


@pytest.mark.parametrize("target", ["onnx-int8", "ort-mobile-int8", "onnx-int8-static", "onnx-fp16"])
def test_quantized_classifiers_ship_the_trim_and_pass(tiny, tmp_path, target):
    """Every ONNX precision gets the trim (it runs on the float graph first) and passes its gate; the
    sequence-first layout picks the head's row in its own layout, so no Transpose feeds the head."""
    ckpt = tiny("distilbert", "text-classification")
    report = export(model=ckpt, target=load_target(target), out=tmp_path, latency_runs=3)
    assert report.passed, report.failed_checks
    precision = report.artifact["precision"]
    assert precision["head_row_products"] == 6
    assert precision["sequence_trims"] > 0 and precision["masked_key_trims"] == 0, "the inputs are cut first"
    if target == "onnx-int8":
        model = onnx.load(str(tmp_path / f"{ckpt.name}-{target}" / "model.onnx"))
        producers = {o: n for n in model.graph.node for o in n.output}
        heads = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] in producers
                 and producers[n.input[0]].op_type not in ("Shape", "Constant")]
        assert heads and all(producers[h.input[0]].op_type != "Transpose" for h in heads)
        assert precision["sequence_first_transposes"] > 0
