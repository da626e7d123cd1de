"""Static int8: every attention context is quantized over its values' range, so no input can clip it."""

from __future__ import annotations

import copy
import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from slimport import export
from slimport.exporters import onnx_context_range
from slimport.precision.context_range import context_value_pairs
from slimport.validation.runners.ort import ORT_TO_NUMPY, open_session

LAYERS = 2  # the tiny checkpoints'


def _quantizer_ranges(model: onnx.ModelProto) -> dict[str, tuple[float, float]]:
    """The float range each activation ``QuantizeLinear`` can represent, by the tensor it quantizes."""
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    ranges = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in init:
            scale, zero = float(init[node.input[1]]), int(init[node.input[2]])
            info = np.iinfo(init[node.input[2]].dtype)
            ranges[node.input[0]] = ((info.min - zero) * scale, (info.max - zero) * scale)
    return ranges


def _unseen_inputs(vocab: int) -> list[np.ndarray]:
    """Token ids unlike the calibration texts: one token, one token repeated, random ids short and long."""
    rng = np.random.default_rng(7)
    rows = [np.array([101, 2009, 102]), np.array([101] + [1045] * 40 + [102])]
    rows += [np.concatenate([[101], rng.integers(1000, vocab, n), [102]]) for n in (1, 2, 5, 30, 120)]
    return rows


@pytest.mark.parametrize("family", ["bert", "mobilebert", "albert"])
def test_no_input_clips_an_attention_context(tiny, tmp_path, monkeypatch, family):
    """Each layer's context gets its values' range, and on inputs unlike the calibration texts no context
    leaves the range its quantizer can represent (distilbert, electra and roberta are exported static in
    test_export and test_key_trim, which check the count)."""
    caught = {}
    real = onnx_context_range.value_range_overrides

    def spy(path, feeds, excluded=frozenset()):
        caught["typed"] = onnx.load(str(path))
        caught["overrides"] = real(path, feeds, excluded)
        return caught["overrides"]

    monkeypatch.setattr(onnx_context_range, "value_range_overrides", spy)
    ckpt = tiny(family, "feature-extraction")
    report = export(model=ckpt, target="onnx-int8-static", out=tmp_path, latency_runs=0)
    assert report.artifact["precision"]["context_ranges"] == LAYERS
    pairs = context_value_pairs(onnx_context_range.graph_ops(caught["typed"]))
    assert len(pairs) == len(set(pairs.values())) == LAYERS
    for context, bounds in caught["overrides"].items():
        assert bounds[0]["rmin"] < 0 < bounds[0]["rmax"], context

    artifact = onnx.load(str(tmp_path / f"{ckpt.name}-onnx-int8-static" / "model.onnx"))
    ranges = _quantizer_ranges(artifact)
    contexts = [c for c in pairs if c in ranges]
    assert contexts, "no context is quantized"
    probe = copy.deepcopy(artifact)
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(c, onnx.TensorProto.FLOAT, None) for c in contexts)
    session = open_session(probe.SerializeToString(), 1)
    vocab = json.loads((ckpt / "config.json").read_text())["vocab_size"]
    for ids in _unseen_inputs(vocab):
        feeds = {"input_ids": ids[None, :], "attention_mask": np.ones((1, ids.size)),
                 "token_type_ids": np.zeros((1, ids.size))}
        values = session.run(contexts, {i.name: feeds[i.name].astype(ORT_TO_NUMPY[i.type])
                                        for i in session.get_inputs()})
        for name, value in zip(contexts, values, strict=True):
            low, high = ranges[name]
            step = (high - low) / 255
            assert low - step <= value.min() and value.max() <= high + step, (name, ids.size, value.min(),
                                                                              value.max(), low, high)


def test_no_input_clips_an_attention_context_on_litert(tiny, tmp_path, monkeypatch):
    """The same on LiteRT: the QUANTIZE op in front of each quantized context's FULLY_CONNECTED covers every
    value the context takes on inputs unlike the calibration texts (read with all tensors preserved); and
    the calibrated ranges do not depend on the order of the calibration texts."""
    from ai_edge_litert.interpreter import Interpreter

    from slimport.exporters import tflite, tflite_graph

    caught = {}
    real = tflite._calibrate  # noqa: SLF001 - spied on to learn the float graph's contexts

    def spy(fp32, recipe, data):
        caught["pairs"] = context_value_pairs(tflite_graph.graph_ops(tflite_graph.read(fp32)))
        if "orders" not in caught:  # the same texts in reverse order, while the float file exists
            reverse = {key: list(reversed(texts)) for key, texts in data.items()}
            caught["orders"] = (real(fp32, recipe, data)[0], real(fp32, recipe, reverse)[0])
        return real(fp32, recipe, data)

    monkeypatch.setattr(tflite, "_calibrate", spy)
    ckpt = tiny("bert", "feature-extraction")
    report = export(model=ckpt, target="android-int8-static", out=tmp_path, latency_runs=0)
    assert report.artifact["precision"]["context_ranges"] == len(caught["pairs"]) == LAYERS

    # min/max over all calibration texts: the same ranges in any order (a moving average follows the last texts)
    ranges, reordered = caught["orders"]
    assert set(reordered) == set(ranges)
    for name, qsv in ranges.items():
        np.testing.assert_allclose(reordered[name]["min"], qsv["min"], err_msg=name)
        np.testing.assert_allclose(reordered[name]["max"], qsv["max"], err_msg=name)

    path = tmp_path / f"{ckpt.name}-android-int8-static" / "model.tflite"
    model = tflite_graph.read(path)
    subgraph = model.subgraphs[0]
    names = [t.name.decode() if isinstance(t.name, bytes) else t.name for t in subgraph.tensors]
    ranges = {}
    for op in subgraph.operators:
        if tflite_graph.opcode_name(model, op.opcodeIndex) == "QUANTIZE" and names[op.inputs[0]] in caught["pairs"]:
            q = subgraph.tensors[op.outputs[0]].quantization
            scale, zero = float(q.scale[0]), int(q.zeroPoint[0])
            ranges[op.inputs[0]] = ((-128 - zero) * scale, (127 - zero) * scale, scale)
    assert ranges, "no context is quantized"
    interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    runner = interpreter.get_signature_runner("serving_default")
    batch, seq = next(iter(runner.get_input_details().values()))["shape"]
    vocab = json.loads((ckpt / "config.json").read_text())["vocab_size"]
    for ids in _unseen_inputs(vocab):
        ids = ids[:seq]
        feeds = {"input_ids": np.zeros((batch, seq)), "attention_mask": np.zeros((batch, seq)),
                 "token_type_ids": np.zeros((batch, seq))}
        feeds["input_ids"][0, :ids.size], feeds["attention_mask"][0, :ids.size] = ids, 1
        runner(**{k: v.astype(np.int32) for k, v in feeds.items() if k in runner.get_input_details()})
        for index, (low, high, step) in ranges.items():
            value = interpreter.get_tensor(index)
            assert low - step <= value.min() and value.max() <= high + step, (names[index], ids.size, value.min(),
                                                                              value.max(), low, high)
