"""Exact rewrites of exported encoder graphs that make ONNX Runtime's CPU kernels do less work.

Each rewrite keeps the arithmetic (bit for bit, or up to float rounding where noted), changes only
which kernels ORT picks, and returns how many places it changed so the report can say so:

* :func:`residual_adds_as_sum` -- residual ``Add`` -> ``Sum`` in front of ``LayerNormalization``;
* :func:`masked_fill_as_add` -- ``Where(mask, -inf, scores)`` -> ``scores + Where(mask, -inf, 0)``;
* :func:`constant_reshape_shapes` -- ``Reshape`` shapes computed from ``Shape`` at run time become
  constants (``0`` copies a dim), and the shape arithmetic feeding them disappears;
* :func:`fold_affine_into_linears` -- an elementwise ``* g + b`` after a Linear (MobileBERT's NoNorm)
  moves into the Linear's output columns and bias; it runs on the final float or dynamic-int8 graph.

:func:`apply` runs the ones that suit a precision recipe. Static int8 skips the first two:
``quantize_static`` puts activation QDQ on every ``Add``/``Sum``, and neither a residual stream nor a
mask bias of ``-3.4e38`` survives a per-tensor int8 scale (measured on MiniLM with residual Sums:
pooled cosine min 0.51).

The rewrites that change shapes live in their own modules: :mod:`onnx_head_rows` (a classifier's
last layer computes one row), :mod:`onnx_layout` (attention reads Q/K/V in place) and
:mod:`onnx_key_trim` (keys past the last attended position go). All of them read the graph through
:mod:`onnx_index`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from slimport.exporters.onnx_index import (
    Constants,
    inferred_dims,
    producer_map,
    reader_map,
    remove_unused_nodes,
)

#: a mask fill at least this negative absorbs any real attention score in fp32 (``s + fill == fill``
#: for ``|s| < 1e31``), so adding it equals writing it: fully masked rows stay uniform as with ``Where``
MASK_FILL = -1e30


#: metadata key under which the artifact records what the rewrites changed
METADATA_KEY = "slimport.graph_rewrites"

def apply(model: onnx.ModelProto, dtype: str, mode: str) -> dict[str, int]:
    """Run the rewrites that suit the precision recipe (``dtype``, ``mode``), record their counts in the
    model's metadata, return them.

    Static int8 keeps residual ``Add``s and mask ``Where``s (see the module docstring); fp16 keeps the
    ``Where`` too: the fp16 converter clips the fill to -65504, and ``score + fill`` can then round to
    ``-inf``, which turns a fully masked row into NaN where ``Where`` gives a uniform row.
    """
    static = mode == "static"
    counts = {"constant_reshapes": constant_reshape_shapes(model),
              "residual_sums": 0 if static else residual_adds_as_sum(model),
              "mask_adds": 0 if static or dtype == "fp16" else masked_fill_as_add(model)}
    record(model, counts)
    return counts


def record(model: onnx.ModelProto, counts: dict[str, int]) -> None:
    """Merge ``counts`` into the rewrite record in ``model``'s metadata."""
    merged = {**recorded(model), **counts}
    for prop in [p for p in model.metadata_props if p.key == METADATA_KEY]:
        model.metadata_props.remove(prop)
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(merged))


def recorded(model: onnx.ModelProto) -> dict[str, int]:
    """The counts :func:`apply` and :func:`record` left in ``model`` (empty when neither ran)."""
    return next((json.loads(p.value) for p in model.metadata_props if p.key == METADATA_KEY), {})


def residual_adds_as_sum(model: onnx.ModelProto) -> int:
    """Write each residual ``Add`` that feeds a ``LayerNormalization`` as ``Sum``; returns how many.

    Same arithmetic, different fusion: ONNX Runtime fuses ``Add`` + ``LayerNormalization`` into
    ``SkipLayerNormalization`` (offline in its transformer optimizer, and again at session load), and
    its CPU kernel for that op is a scalar loop. Measured on this host (ORT 1.31, 1 thread, 128 x 384
    fp32): 269 us per ``SkipLayerNormalization`` against 36 us for ``Add`` + ``LayerNormalization``.
    ``Sum`` matches none of its fusion patterns, so the vectorised ``LayerNormalization`` kernel runs.
    Adds with a constant input (biases) are left alone.
    """
    graph = model.graph
    constants = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant"
                                                       for o in n.output}
    producers = producer_map(graph)
    rewritten = 0
    for node in graph.node:
        if node.op_type != "LayerNormalization" or node.domain not in ("", "ai.onnx"):
            continue
        add = producers.get(node.input[0])
        if add is not None and add.op_type == "Add" and not any(i in constants for i in add.input):
            add.op_type = "Sum"
            rewritten += 1
    return rewritten


def masked_fill_as_add(model: onnx.ModelProto) -> int:
    """Rewrite attention ``masked_fill`` (``Where(mask, fill, scores)`` feeding ``Softmax``) as an
    ``Add`` of a small mask bias; returns how many.

    Eager DistilBERT exports its mask as ``Expand`` of the ``[B, 1, 1, S]`` mask to the scores' shape,
    a ``Cast`` and a three-input broadcast ``Where`` over ``[B, heads, S, S]``, in every layer. ORT's
    ``Where`` is far slower than ``Add`` (measured 196 us against 40-80 us per layer at 12 x 128 x 128,
    one thread). The bias ``Where(mask, fill, 0)`` is computed on the unexpanded mask (the ``Expand``
    targets the scores' own shape, so broadcasting in the ``Add`` gives the same result) and ORT's
    common-subexpression pass shares it between layers. Only fills at most :data:`MASK_FILL` qualify,
    where ``scores + fill == fill`` exactly.
    """
    graph = model.graph
    producers, readers = producer_map(graph), reader_map(graph)
    constants = Constants(graph)
    zero = "slimport_mask_zero"
    new_nodes: list[tuple[Any, list[Any]]] = []
    for node in graph.node:
        users = readers.get(node.output[0], [])
        if node.op_type != "Where" or not users or any(u is None or u.op_type != "Softmax" for u in users):
            continue
        cond, fill_name, scores = node.input
        fill = constants.value(fill_name)
        if fill is None or fill.size != 1 or not fill.dtype.kind == "f" or float(fill.reshape(())) > MASK_FILL:
            continue
        small, added = unexpanded_condition(producers, cond, scores, f"{node.name}_bias")
        bias = f"{node.output[0]}_mask_bias"
        added.append(helper.make_node("Where", [small, fill_name, zero], [bias], name=f"{node.name}_mask_bias"))
        node.op_type, node.input[:] = "Add", [scores, bias]
        new_nodes.append((node, added))
    if new_nodes:
        graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), zero))
        for node, added in new_nodes:
            index = list(graph.node).index(node)
            for offset, extra in enumerate(added):
                graph.node.insert(index + offset, extra)
        remove_unused_nodes(model)
    return len(new_nodes)


def unexpanded_condition(producers: dict[str, Any], cond: str, scores: str,
                          prefix: str) -> tuple[str, list[Any]]:
    """``cond`` without an ``Expand`` to ``Shape(scores)`` (through an optional ``Cast`` to bool), and
    the nodes to add for it."""
    cast = producers.get(cond)
    is_bool_cast = cast is not None and cast.op_type == "Cast" and any(
        a.name == "to" and a.i == TensorProto.BOOL for a in cast.attribute)
    expand = producers.get(cast.input[0]) if is_bool_cast else cast
    if expand is None or expand.op_type != "Expand":
        return cond, []
    shape = producers.get(expand.input[1])
    if shape is None or shape.op_type != "Shape" or shape.input[0] != scores or len(shape.attribute):
        return cond, []
    if not is_bool_cast:
        return expand.input[0], []
    small = f"{prefix}_condition"
    return small, [helper.make_node("Cast", [expand.input[0]], [small], to=TensorProto.BOOL, name=small)]


def unexpand_mask_conditions(graph: Any) -> int:
    """Give each masking ``Where`` in front of a ``Softmax`` its condition before the ``Expand`` to the
    scores' shape (``Where`` broadcasts it the same way); returns how many changed. The expanded one
    reads ``Shape(scores)``, which would tie the mask to the untrimmed scores of the key and head-row
    trims (eager DistilBERT in the fp16 and static-int8 graphs, which keep their ``Where``). Nodes
    are appended: sort the graph after a change."""
    producers, changed = producer_map(graph), 0
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        where = producers.get(softmax.input[0])
        if where is None or where.op_type != "Where":
            continue
        small, added = unexpanded_condition(producers, where.input[0], where.input[2], f"{where.name}_trim")
        if small != where.input[0]:
            graph.node.extend(added)
            where.input[0] = small
            changed += 1
    return changed


def constant_reshape_shapes(model: onnx.ModelProto) -> int:
    """Give every ``Reshape`` whose target shape is computed at run time (``Shape`` -> ``Gather`` ->
    ``Unsqueeze`` -> ``Concat``) a constant shape instead, then drop the shape arithmetic left unused;
    returns how many Reshapes changed.

    Symbolic shape inference (ORT's ``SymbolicShapeInference``) names every dim; an output dim equal
    to the input dim at the same position becomes ``0`` (copy), a fixed dim its value, and at most one
    other dim ``-1``. Dynamic batch and sequence length keep working. Per layer this removes four to
    five tiny ops (about 30 us at one thread on this host). A graph the inference cannot follow is
    left as it is.
    """
    dims = inferred_dims(model)
    if dims is None:
        return 0
    constants = {i.name for i in model.graph.initializer}
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] in constants:
            continue
        shape = _constant_shape(dims.get(node.input[0]), dims.get(node.output[0]))
        if shape is None:
            continue
        name = f"{node.name or node.output[0]}_constant_shape"
        model.graph.initializer.append(numpy_helper.from_array(np.array(shape, np.int64), name))
        node.input[1] = name
        rewritten += 1
    if rewritten:
        remove_unused_nodes(model)
    return rewritten


def _constant_shape(source: list[Any] | None, target: list[Any] | None) -> list[int] | None:
    """Reshape's shape input that turns ``source`` dims into ``target`` dims, or None if unsure."""
    if not source or not target or any(d is None for d in target):
        return None
    shape: list[int] = []
    for i, dim in enumerate(target):
        if dim == 0:
            return None
        if isinstance(dim, int):
            shape.append(dim)
        elif isinstance(dim, str) and i < len(source) and source[i] == dim:
            shape.append(0)
        else:
            shape.append(-1)
    return shape if shape.count(-1) <= 1 else None


def fold_affine_into_linears(model: onnx.ModelProto) -> int:
    """Fold an elementwise affine map right after a Linear (``(y + r) * g + b`` with an optional
    residual ``r``: MobileBERT's NoNorm) into the Linear's output columns and bias; returns how many.

    A Linear is ``Add(bias, Mul(int32 product, x_scale * w_scale))`` as ``quantize_dynamic`` writes it
    (``w_scale`` per column absorbs ``g``; the int8 weights stay as they are) or ``Add(bias,
    MatMul(x, W))`` in float (``W``'s columns absorb ``g``); its bias becomes ``bias * g + b``. New
    initializers are written, so tensors the exporter shared between layers stay intact. Without a
    residual the Mul and the Add go away; with one, ``y' + r * g`` is one op fewer, and none when
    ``r`` is another Linear's output read only there (``g`` goes into its columns as well: MobileBERT's
    bottleneck output feeding the attention residual). Exact up to fp32 rounding.
    """
    graph = model.graph
    constants = Constants(graph)
    readers, producers = reader_map(graph), producer_map(graph)
    removed: set[int] = set()
    folded = 0
    for bias_add in list(graph.node):
        if id(bias_add) in removed:
            continue
        linear = _linear(bias_add, constants, producers, readers)
        if linear is None:
            continue
        (column_node, column_slot, column), bias = linear
        first = _only_reader(readers, bias_add.output[0])
        residual_add = first if first is not None and first.op_type == "Add" and first.input[0] != first.input[1] \
            and all(constants.value(i) is None for i in first.input) else None
        mul = _only_reader(readers, residual_add.output[0]) if residual_add is not None else first
        gain = constants.operand(mul, "Mul")
        add = _only_reader(readers, mul.output[0]) if gain is not None else None
        shift = constants.operand(add, "Add")
        if shift is None or gain[1].shape != bias[1].shape or shift[1].shape != bias[1].shape:
            continue
        tag = f"{bias_add.name or bias_add.output[0]}_folded"
        column_node.input[column_slot] = constants.add(f"{tag}_columns", column * gain[1])
        bias_add.input[bias[0]] = constants.add(f"{tag}_bias", bias[1] * gain[1] + shift[1])
        final = add.output[0]
        removed.update((id(add), id(mul)))
        graph.node.remove(add)
        graph.node.remove(mul)
        if residual_add is None:
            bias_add.output[0] = final
        else:
            other = residual_add.input[1] if residual_add.input[0] == bias_add.output[0] else residual_add.input[0]
            residual_add.output[0] = final
            source = producers.get(other)
            source_linear = _linear(source, constants, producers, readers) if source is not None else None
            if source_linear is not None and len(readers.get(other, [])) == 1:
                # the residual is itself a Linear's output read only here: g goes into its columns too
                (node, slot, value), (bias_slot, bias_value) = source_linear
                node.input[slot] = constants.add(f"{tag}_residual_columns", value * gain[1])
                source.input[bias_slot] = constants.add(f"{tag}_residual_bias", bias_value * gain[1])
            else:
                scaled = f"{tag}_residual"
                graph.node.insert(list(graph.node).index(residual_add),
                                  helper.make_node("Mul", [other, mul.input[gain[0]]], [scaled], name=scaled))
                residual_add.input[:] = [bias_add.output[0], scaled]
        readers, producers = reader_map(graph), producer_map(graph)
        folded += 1
    return folded


def _only_reader(readers: dict[str, list[Any]], name: str) -> Any:
    """The node reading ``name`` if there is exactly one reader and it is not a graph output."""
    found = readers.get(name, [])
    return found[0] if len(found) == 1 else None


def _linear(bias_add: Any, constants: Constants, producers: dict[str, Any], readers: dict[str, list[Any]]
            ) -> tuple[tuple[Any, int, np.ndarray], tuple[int, np.ndarray]] | None:
    """``((node, slot, value) of the per-column weight scale or float weight, (slot, value) of the
    bias)`` when ``bias_add`` adds a bias vector to a Linear's product, else None. Every tensor on the
    way must have that one reader, so scaling the columns changes nothing else."""
    bias = constants.operand(bias_add, "Add")
    if bias is None or bias[1].ndim != 1 or bias[1].dtype != np.float32:
        return None
    product = producers.get(bias_add.input[1 - bias[0]])
    if product is None or _only_reader(readers, product.output[0]) != bias_add:
        return None
    if product.op_type == "MatMul":
        node, slot = product, 1
    elif product.op_type == "Mul":
        node = next((producers[i] for i in product.input if i in producers and producers[i].op_type == "Mul"), None)
        found = constants.operand(node, "Mul") if node is not None else None
        if found is None or _only_reader(readers, node.output[0]) != product:
            return None
        slot = found[0]
    else:
        return None
    column = constants.value(node.input[slot])
    if column is None or column.dtype != np.float32 or column.shape[-1:] not in ((), bias[1].shape):
        return None
    return (node, slot, column), bias
