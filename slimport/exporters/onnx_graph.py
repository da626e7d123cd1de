"""Small ONNX graph utilities used by the ONNX exporter and ``slimport inspect``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from slimport.exporters.base import TensorSpec
from slimport.precision.search import fingerprint, fingerprints_match

_ELEM_NAMES = {v: k.lower() for k, v in TensorProto.DataType.items()}
_WEIGHT_OPS = ("MatMul", "Gemm", "Attention", "MatMulInteger", "QAttention")


def tensor_specs(values: Any) -> list[TensorSpec]:
    """TensorSpecs of graph inputs or outputs (dim_param names kept as strings)."""
    specs = []
    for value in values:
        ttype = value.type.tensor_type
        shape: list[int | str] = [d.dim_param if d.dim_param else int(d.dim_value) for d in ttype.shape.dim]
        specs.append(TensorSpec(value.name, _ELEM_NAMES.get(ttype.elem_type, str(ttype.elem_type)), shape))
    return specs


def ensure_contrib_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """Declare the com.microsoft opset when fused contrib ops are present (fusion does not)."""
    has_ops = any(n.domain == "com.microsoft" for n in model.graph.node)
    if has_ops and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def fix_static_shape(model: onnx.ModelProto, batch: int, seq_len: int) -> onnx.ModelProto:
    """Replace the ``batch_size`` and ``sequence_length`` dim params with fixed values (ORT's tools)."""
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

    make_dim_param_fixed(model.graph, "batch_size", batch)
    make_dim_param_fixed(model.graph, "sequence_length", seq_len)
    fix_output_shapes(model)
    return model


def use_int32_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make every int64 graph input int32, with a Cast back to int64 where int64 is consumed.

    Casts to int32 that fusion put behind an input (EmbedLayerNormalization takes int32) are removed.
    """
    graph = model.graph
    casts = []
    for graph_input in graph.input:
        ttype = graph_input.type.tensor_type
        if ttype.elem_type != TensorProto.INT64:
            continue
        original = graph_input.name
        widened = f"{original}_int64"
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name == original:
                    node.input[i] = widened
        _bypass_int32_casts(graph, widened, original)
        ttype.elem_type = TensorProto.INT32
        if any(widened in node.input for node in graph.node) or widened in {o.name for o in graph.output}:
            casts.append(helper.make_node("Cast", [original], [widened], to=TensorProto.INT64, name=f"cast_{original}"))
    for cast in reversed(casts):
        graph.node.insert(0, cast)
    return model


def _bypass_int32_casts(graph: Any, source: str, int32_name: str) -> None:
    """Remove ``Cast(to=int32)`` nodes fed by ``source``; their consumers read ``int32_name``."""
    for node in list(graph.node):
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if node.op_type == "Cast" and list(node.input) == [source] and to == TensorProto.INT32:
            for other in graph.node:
                for i, value in enumerate(other.input):
                    if value == node.output[0]:
                        other.input[i] = int32_name
            graph.node.remove(node)


def fusion_options(model_type: str, fuse_residual_norms: bool, fuse_attention: bool = True) -> Any:
    """``FusionOptions`` for ORT's transformer optimizer; norms are fused with their residual Adds into
    ``SkipLayerNormalization`` only when ``fuse_residual_norms`` (see
    :func:`slimport.exporters.onnx_rewrites.residual_adds_as_sum`); attention is left as MatMuls when
    not ``fuse_attention`` (static int8: the fused ``Attention`` op keeps Q/K/V in float under QDQ)."""
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions(model_type)
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = fuse_residual_norms
    options.enable_attention = fuse_attention
    return options


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Operator type -> count (``domain:op`` for non-default domains)."""
    counts = Counter(f"{n.domain}:{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
                     for n in model.graph.node)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def weight_dtypes(model: onnx.ModelProto) -> dict[str, int]:
    """Initializer element type -> number of values (how much of the model is int8 / fp16 / fp32)."""
    totals: Counter[str] = Counter()
    for init in model.graph.initializer:
        totals[_ELEM_NAMES.get(init.data_type, str(init.data_type))] += int(np.prod(init.dims)) if init.dims else 1
    return dict(totals)


def product_kind(node: Any, weights: set[str]) -> str | None:
    """``"linear"`` for a ``MatMul``/``Gemm`` of an activation by an initializer (``weights``: initializer
    names), ``"matmul"`` for a ``MatMul`` of two activations, else None."""
    if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2 or node.input[0] in weights:
        return None
    if node.input[1] in weights:
        return "linear"
    return "matmul" if node.op_type == "MatMul" else None


def map_linear_to_nodes(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> dict[str, str]:
    """Map torch Linear names to the ONNX node that multiplies by their weight.

    Matching is by weight content (size, sum, abs-sum: invariant to the transposes exporters add),
    so it survives renaming and fusion; a fused Attention node is matched through its Q/K/V thirds.
    """
    inits = {i.name: i for i in model.graph.initializer}
    node_prints: list[tuple[str, tuple[int, float, float]]] = []
    for node in model.graph.node:
        if node.op_type not in _WEIGHT_OPS or len(node.input) < 2 or node.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        parts = np.split(w, 3, axis=-1) if node.op_type == "Attention" and w.shape[-1] % 3 == 0 else [w]
        node_prints.extend((node.name, fingerprint(p)) for p in parts)
    mapping = {}
    for name, weight in weights.items():
        wp = fingerprint(weight)
        for node_name, fp in node_prints:
            if fingerprints_match(wp, fp):
                mapping[name] = node_name
                break
    return mapping


def save(model: onnx.ModelProto, path: Path) -> None:
    """Save with ORT's ``OnnxModel.save`` (adds the com.microsoft opset import fused ops need;
    external data only past protobuf's 2 GB limit)."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    OnnxModel.save(model, str(path), save_as_external_data=payload_bytes(model) > EXTERNAL_DATA_BYTES)


#: past this many bytes of tensors a model is saved with external data (protobuf cannot encode 2 GiB)
EXTERNAL_DATA_BYTES = 1_800_000_000


def payload_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the graph's initializers, counted tensor by tensor: ``model.ByteSize()`` itself fails
    with ``EncodeError`` once the whole model passes protobuf's 2 GiB limit."""
    return sum(t.ByteSize() for t in model.graph.initializer)


def external_files(model: onnx.ModelProto) -> list[str]:
    """Names of the external-data files ``model``'s initializers point to (they travel with the model)."""
    names = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            names.update(e.value for e in tensor.external_data if e.key == "location")
    return sorted(names)


def sort_topologically(graph: Any) -> bool:
    """Order ``graph.node`` so each node follows its inputs' producers; False if that is impossible."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    order, pending = [], list(graph.node)
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                order.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            return False
        pending = rest
    del graph.node[:]
    graph.node.extend(order)
    return True
