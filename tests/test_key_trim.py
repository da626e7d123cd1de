"""Attention keys trimmed to the batch's last attended position: same outputs, less work on padding."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from slimport import export
from slimport.exporters import onnx_index, onnx_key_trim
from slimport.exporters.onnx_rewrites import recorded
from tests.onnx_helpers import feeds_for, right_padded, run

LAYERS = 2  # the tiny checkpoints'


def _exported_before_after(tiny, tmp_path, monkeypatch, family: str, target: str):
    """Export ``family`` to ``target`` and catch the graph just before and after the trim. A token
    classifier: its outputs run along the sequence, so no earlier rewrite cuts the inputs
    (:mod:`onnx_sequence_trim`) and the keys are still there to trim."""
    caught = {}
    real = onnx_key_trim.trim_masked_keys

    def spy(model):
        caught["before"] = copy.deepcopy(model)
        caught["count"] = real(model)
        return caught["count"]

    monkeypatch.setattr(onnx_key_trim, "trim_masked_keys", spy)
    ckpt = tiny(family, "token-classification")
    try:
        report = export(model=ckpt, target=target, out=tmp_path, latency_runs=0)
    except Exception as exc:  # a tiny random model may miss a 4-bit gate; the graphs are what is tested
        report = exc.report
    artifact = onnx.load(str(next(tmp_path.glob(f"{ckpt.name}-{target}*")) / "model.onnx"))
    return report, caught["before"], artifact, caught["count"]


@pytest.mark.parametrize(("family", "target"), [("bert", "onnx-int8"), ("mobilebert", "onnx-int8"),
                                                ("distilbert", "onnx-int8"), ("distilbert", "onnx-fp16"),
                                                ("roberta", "onnx-int8-static")])
def test_trimmed_attention_gives_the_untrimmed_outputs(tiny, tmp_path, monkeypatch, family, target):
    """Every layer is trimmed, the report and the file say so, the softmax really runs over L keys, and
    the outputs equal the untrimmed graph's on right padding, a full batch, left padding and a hole."""
    report, before, after, count = _exported_before_after(tiny, tmp_path, monkeypatch, family, target)
    assert count == LAYERS
    assert report.artifact["precision"]["masked_key_trims"] == recorded(after)["masked_key_trims"] == LAYERS
    assert sum(n.op_type == "Slice" and n.name.startswith("slimport_key_trim") for n in after.graph.node) >= LAYERS
    if target.endswith("static"):  # the contexts found in roberta too (test_context_range)
        assert report.artifact["precision"]["context_ranges"] == LAYERS
    seq = 32
    cases = {"right padding": right_padded([5, 9, 3], seq), "full": np.ones((2, seq), np.int64),
             "left padding": right_padded([7, 12], seq)[:, ::-1].copy(),
             "hole": np.array([[1, 1, 0, 1, 1] + [0] * (seq - 5)])}
    softmax = next(n.output[0] for n in after.graph.node if n.op_type == "Softmax")
    # dynamic int8 (sequence-first layout): the slice moves up to the key and value projections'
    # quantized input, so they compute only the kept rows; the query projection keeps every row
    slices = {n.output[0] for n in after.graph.node if n.name.startswith("slimport_key_trim")}
    projections = [n.output[0] for n in after.graph.node if n.op_type == "MatMulInteger" and n.input[0] in slices]
    assert len(projections) == (2 * LAYERS if target == "onnx-int8" else 0)
    tolerance = 2e-3 if target == "onnx-fp16" else 1e-5
    for name, mask in cases.items():
        feeds = feeds_for(mask)
        ref, got = run(before, feeds), run(after, feeds, [softmax, *projections])
        for r, g in zip(ref, got[: len(ref)], strict=True):
            assert np.abs(r - g).max() <= tolerance * max(1.0, np.abs(r).max()), (name, np.abs(r - g).max())
        last_attended = int(np.nonzero(mask.any(axis=0))[0].max()) + 1
        assert got[len(ref)].shape[-1] == last_attended, (name, got[len(ref)].shape)
        assert all(rows.shape[0] == last_attended for rows in got[len(ref) + 1:]), name


def test_a_bias_that_does_not_mask_is_left_alone(tiny, tmp_path, monkeypatch):
    """A softmax bias computed from the mask that does not zero the padded keys (here ``0.5 * mask``)
    fits the pattern, but the graph's own run before and after disagrees, so nothing changes."""
    _, before, _, _ = _exported_before_after(tiny, tmp_path, monkeypatch, "mobilebert", "onnx-int8")
    model = copy.deepcopy(before)
    graph = model.graph
    graph.initializer.extend([helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
                              helper.make_tensor("axes12", TensorProto.INT64, [2], [1, 2])])
    graph.node.extend([helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
                       helper.make_node("Mul", ["maskf", "half"], ["soft_bias2"]),
                       helper.make_node("Unsqueeze", ["soft_bias2", "axes12"], ["soft_bias"])])
    producers = {o: n for n in graph.node for o in n.output}
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        add = producers[softmax.input[0]]
        add.input[1] = "soft_bias"
    from slimport.exporters.onnx_graph import sort_topologically

    assert sort_topologically(graph)
    untouched = model.SerializeToString()
    assert onnx_key_trim.trim_masked_keys(model) == 0
    assert model.SerializeToString() == untouched


def test_shape_inference_writes_nothing_to_the_current_directory(tmp_path, monkeypatch):
    """ORT's ``SymbolicShapeInference.infer_shapes`` saves ``sym_shape_infer_temp.onnx`` and the weights
    into the current directory when it cannot infer every shape; the trim's rank inference must not,
    and keeps the ranks it did infer. (Incomplete inference is simulated: on the graphs slimport
    exports, guessing ranks completes it.)"""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    real = SymbolicShapeInference._infer_impl

    def incomplete(self, *args, **kwargs):
        real(self, *args, **kwargs)
        return False

    monkeypatch.setattr(SymbolicShapeInference, "_infer_impl", incomplete)
    monkeypatch.chdir(tmp_path)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Mul", ["y", "w"], ["z"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ranks = onnx_key_trim._ranks(model)
    assert ranks.get("y") == 2 and ranks.get("w") == 1
    # the dims the other rewrites read (constant Reshape shapes, layout, head rows) go the same way
    assert onnx_index.inferred_dims(model) is None
    assert onnx_index.inferred_dims(model, partial=True)["y"] == [2, 3]
    assert list(tmp_path.iterdir()) == []
