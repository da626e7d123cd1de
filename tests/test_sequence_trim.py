"""The sequence trim: a classifier's inputs are cut to the positions its batch attends to."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest

from slimport import export
from slimport.exporters import onnx_sequence_trim
from slimport.targets import load_target
from tests.onnx_helpers import feeds_for, graph_handed_to, right_padded, run


def _float_graph(ckpt, tmp_path, monkeypatch) -> onnx.ModelProto:
    """The float graph the exporter hands to the trim (exported, not yet trimmed)."""
    return graph_handed_to(onnx_sequence_trim, "trim_sequence", ckpt, tmp_path / "grab", monkeypatch)


@pytest.mark.parametrize("family", ["bert", "distilbert", "albert", "electra", "roberta", "mobilebert"])
def test_classifier_runs_on_the_attended_positions_with_the_same_logits(tiny, tmp_path, monkeypatch, family):
    """Every ``[batch, sequence]`` input is cut; the first layer's products really see ``L`` positions
    (``L + 1`` for MobileBERT, whose embedding reads the next token); the logits equal the untrimmed
    graph's on right padding, a full batch, left padding and a hole."""
    ckpt = tiny(family, "text-classification")
    before = _float_graph(ckpt, tmp_path, monkeypatch)
    after = copy.deepcopy(before)
    inputs = [i.name for i in before.graph.input]
    assert onnx_sequence_trim.trim_sequence(after) == len(inputs)
    assert [i.name for i in after.graph.input] == inputs, "the contract keeps its inputs"
    ahead = 1 if family == "mobilebert" else 0
    assert any(n.name.endswith("/ahead") for n in after.graph.node) == bool(ahead)

    first_product = next(n.output[0] for n in after.graph.node if n.op_type == "MatMul")
    seq = 24
    cases = {"right padding": right_padded([5, 9, 3], seq), "full": np.ones((2, seq), np.int64),
             "left padding": right_padded([7, 12], seq)[:, ::-1].copy(),
             "hole": np.array([[1, 1, 0, 1, 1] + [0] * (seq - 5)])}
    for name, mask in cases.items():
        feeds = feeds_for(mask)
        want = run(before, feeds)
        got = run(after, feeds, (first_product,))
        for w, g in zip(want, got, strict=False):
            assert w.shape == g.shape
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=name)
        positions = min(int(np.nonzero(mask.any(axis=0))[0].max()) + 1 + ahead, seq)
        assert got[-1].shape[1] == positions, (name, got[-1].shape)


@pytest.mark.parametrize("task", ["feature-extraction", "token-classification", "question-answering", "fill-mask"])
def test_graphs_with_sequence_outputs_are_left_unchanged(tiny, tmp_path, monkeypatch, task):
    """Their padded rows are part of the output, so no input is cut."""
    model = _float_graph(tiny("bert", task), tmp_path, monkeypatch)
    before = model.SerializeToString()
    assert onnx_sequence_trim.trim_sequence(model) == 0
    assert model.SerializeToString() == before


def test_a_trim_whose_outputs_disagree_is_not_kept(tiny, tmp_path, monkeypatch):
    model = _float_graph(tiny("distilbert", "text-classification"), tmp_path, monkeypatch)
    before = model.SerializeToString()
    monkeypatch.setattr(onnx_sequence_trim, "same_outputs", lambda a, b: False)
    assert onnx_sequence_trim.trim_sequence(model) == 0
    assert model.SerializeToString() == before


def test_padding_no_longer_changes_a_dynamic_int8_answer(tiny, tmp_path):
    """Dynamic int8 takes each activation's range over the positions it computes: with the inputs cut,
    a text padded to 40 positions gets exactly the logits of the same text unpadded. The key trim has
    nothing left to cut and does not run."""
    ckpt = tiny("bert", "text-classification")
    report = export(model=ckpt, target=load_target("onnx-int8"), out=tmp_path, latency_runs=0)
    assert report.passed, report.failed_checks
    precision = report.artifact["precision"]
    assert precision["sequence_trims"] == 3 and precision["masked_key_trims"] == 0
    assert precision["head_row_products"] > 0, "the head-row trim still applies on the cut graph"
    model = onnx.load(str(tmp_path / f"{ckpt.name}-onnx-int8" / "model.onnx"))
    assert not any(n.name.startswith("slimport_key_trim") for n in model.graph.node)
    unpadded = feeds_for(np.ones((1, 9), np.int64))
    padded = feeds_for(right_padded([9], 40))
    np.testing.assert_array_equal(run(model, padded)[0], run(model, unpadded)[0])


def test_static_shape_artifact_keeps_its_fixed_inputs_and_cuts_inside(tiny, tmp_path):
    """``ort-mobile-int8`` (static ``1 x 128``, int32 ids): the artifact still takes exactly the profile's
    shape, and it passes its gate with the trim inside."""
    ckpt = tiny("distilbert", "text-classification")
    report = export(model=ckpt, target=load_target("ort-mobile-int8"), out=tmp_path, latency_runs=3)
    assert report.passed, report.failed_checks
    profile = load_target("ort-mobile-int8").profile
    assert all(i["shape"] == [profile.batch, profile.seq_len] and i["dtype"] == "int32"
               for i in report.artifact["inputs"])
    assert report.artifact["precision"]["sequence_trims"] == 2  # DistilBERT: ids and mask
    assert report.artifact["precision"]["masked_key_trims"] == 0


def test_a_classifier_whose_inputs_are_not_cut_still_gets_the_key_trim(tiny, tmp_path, monkeypatch):
    """What the report says and whether the key trim runs are read off the graph that ships: when the
    sequence trim is refused, the keys are trimmed as before."""
    monkeypatch.setattr(onnx_sequence_trim, "same_outputs", lambda a, b: False)
    ckpt = tiny("bert", "text-classification")
    report = export(model=ckpt, target=load_target("onnx-int8"), out=tmp_path, latency_runs=0)
    assert report.passed, report.failed_checks
    precision = report.artifact["precision"]
    assert precision["sequence_trims"] == 0 and precision["masked_key_trims"] == 2
