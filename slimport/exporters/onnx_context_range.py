"""Calibration ranges for attention contexts that hold for any text, not only the calibration texts.

An attention's context (``softmax(Q.K) . V``, the input of the attention's output Linear) is, for
every query row and head, a convex combination of the value rows: the softmax weights are >= 0 and
sum to 1. So every context element lies within the range of the values. MinMax calibration on the
context itself only sees the attention patterns of the calibration texts, and a text whose attention
concentrates on one token has a context close to that token's value row, outside that range. The real
all-MiniLM-L6-v2 at ``onnx-int8-static`` clipped ``'OK, thanks!'`` at 2.3x the calibrated maximum of
layer 4's context (pooled cosine 0.980); with the value range as the context's range, 0.995.

:func:`context_value_pairs` finds, by structure, each Linear input that carries a context and the value
tensor it averages; :func:`value_range_overrides` measures the values on the calibration inputs and
returns ``quantize_static``'s ``TensorQuantOverrides`` that give each context the range of its values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

#: ops that move or relabel elements without changing any value
_VALUE_PRESERVING = ("Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten")
#: ops allowed between a Softmax and the matmul that applies its weights
_WEIGHT_PASSING = ("Cast", "Identity", "Dropout")


def context_value_pairs(model: onnx.ModelProto) -> dict[str, str]:
    """Map each weighted Linear's input tensor that is an attention context to the value tensor it averages.

    A context is the output of a ``MatMul`` whose first operand is a ``Softmax`` output (through
    ``Cast``/``Identity``/``Dropout``), followed through value-preserving ops (``Transpose``, ``Reshape``,
    ``Identity``...) as long as each has a single reader, up to a tensor that only weighted ``MatMul``/
    ``Gemm`` nodes read as their first input. The value tensor is that ``MatMul``'s second operand.
    """
    graph = model.graph
    weights = {i.name for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def from_softmax(name: str) -> bool:
        node = producers.get(name)
        while node is not None and node.op_type in _WEIGHT_PASSING:
            node = producers.get(node.input[0])
        return node is not None and node.op_type == "Softmax"

    pairs: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] in weights or not from_softmax(node.input[0]):
            continue
        tensor = node.output[0]
        while len(readers.get(tensor, [])) == 1 and readers[tensor][0].op_type in _VALUE_PRESERVING \
                and readers[tensor][0].input[0] == tensor:
            tensor = readers[tensor][0].output[0]
        linears = readers.get(tensor, [])
        if linears and all(r.op_type in ("MatMul", "Gemm") and r.input[0] == tensor and len(r.input) > 1
                           and r.input[1] in weights for r in linears):
            pairs[tensor] = node.input[1]
    return pairs


def value_range_overrides(model_path: Path, feeds: list[dict[str, np.ndarray]]) -> dict[str, list[dict]]:
    """``TensorQuantOverrides`` giving every attention context of ``model_path`` the range of its values
    over ``feeds`` (the calibration inputs), 0 included; empty when the graph has no context to bound."""
    from slimport.validation.runners.ort import open_session

    model = onnx.load(str(model_path))
    pairs = context_value_pairs(model)
    if not pairs or not feeds:
        return {}
    values = sorted(set(pairs.values()))
    listed = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_tensor_value_info(v, onnx.TensorProto.FLOAT, None)
                              for v in values if v not in listed)
    session = open_session(model.SerializeToString(), 1)
    inputs = {i.name for i in session.get_inputs()}
    low = dict.fromkeys(values, 0.0)
    high = dict.fromkeys(values, 0.0)
    for feed in feeds:
        for name, array in zip(values, session.run(values, {k: v for k, v in feed.items() if k in inputs}),
                               strict=True):
            low[name] = min(low[name], float(np.min(array)))
            high[name] = max(high[name], float(np.max(array)))
    return {context: [{"rmin": np.array(low[value], np.float32), "rmax": np.array(high[value], np.float32)}]
            for context, value in pairs.items()}
