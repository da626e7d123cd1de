"""Static int8 on ONNX: every attention context is quantized over the range of the values it averages.

Why that range holds for any text: :mod:`slimport.precision.context_range`. Here the ONNX graph is
described to that module (:func:`graph_ops`), and :func:`value_range_overrides` measures the values on
the calibration inputs and returns ``quantize_static``'s ``TensorQuantOverrides`` for the contexts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from slimport.exporters.onnx_graph import product_kind
from slimport.precision.context_range import Op, context_value_pairs

_KINDS = {"Softmax": "softmax", "Cast": "pass", "Dropout": "pass",
          **dict.fromkeys(("Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten"), "move")}


def graph_ops(model: onnx.ModelProto) -> list[Op]:
    """The graph's nodes as :class:`Op`: a ``MatMul``/``Gemm`` with an initializer as second operand is
    ``linear``, a ``MatMul`` of two activations ``matmul``."""
    weights = {i.name for i in model.graph.initializer}
    return [Op(product_kind(node, weights) or _KINDS.get(node.op_type, "other"), tuple(node.input),
               tuple(node.output)) for node in model.graph.node]


def value_range_overrides(model_path: Path, feeds: list[dict[str, np.ndarray]],
                          excluded: frozenset[str] = frozenset()) -> dict[str, list[dict]]:
    """``TensorQuantOverrides`` giving every quantized attention context of ``model_path`` the range of
    its values over ``feeds`` (the calibration inputs), 0 included. A context whose Linears are all in
    ``excluded`` (node names kept in float) is left out; empty when there is nothing to bound."""
    from slimport.validation.runners.ort import open_session

    if not feeds:
        return {}
    model = onnx.load(str(model_path))
    quantized = {name for node in model.graph.node if node.name not in excluded for name in node.input}
    pairs = {c: v for c, v in context_value_pairs(graph_ops(model)).items() if c in quantized}
    if not pairs:
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
