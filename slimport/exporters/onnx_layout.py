"""Sequence-first layout for exported encoder graphs: attention without three of its four transposes.

An eager encoder exports each attention as ``Reshape`` -> ``Transpose`` for Q, K and V, and a
``Transpose`` -> ``Reshape`` back for the context: four copies of a ``[batch, seq, hidden]`` tensor
per layer. ONNX Runtime's ``FusedMatMul`` can read a transposed operand in place (``transBatchA/B``
move the first axis behind the batch axes, ``transB`` swaps the last two), but only when the tensor
is laid out ``[seq, batch, heads, head_dim]``. :func:`sequence_first_attention` therefore flips the
first two axes of every tensor between the attention blocks -- Linears, norms, activations,
residuals and (dynamic) quantization work token by token and do not care; a ``Slice`` or a
one-index ``Gather`` along batch or sequence (a classifier's row pick) takes the other axis -- and
lets the Q/K/V matmuls read their operands in place; the context keeps one ``Transpose``. Where the
flipped part of the graph meets an operation that is not token-wise (an embedding ``Gather``, a
graph output) a ``Transpose`` restores the original layout, so inputs, outputs and dynamic
batch/sequence sizes are those of the original graph, and every value is computed by the same
arithmetic.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import onnx
from onnx import helper

from slimport.exporters.onnx_graph import sort_topologically
from slimport.exporters.onnx_index import (
    ELEMENTWISE_OPS,
    NORM_OPS,
    Constants,
    inferred_dims,
    int_attr,
    perm_of,
    producer_map,
    reader_map,
    remove_unused_nodes,
)

_ROW_LINEAR = frozenset({"MatMul", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"})
_PER_TENSOR_QUANT = frozenset({"DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear"})
# attention: [B, S, H, D] -> Q/V [B, H, S, D] and K^T [B, H, D, S]; the context goes back with _HEADS_FIRST
_HEADS_FIRST, _KEYS_TRANSPOSED = [0, 2, 1, 3], [0, 2, 3, 1]


def _swap(axis: int) -> int:
    """Where ``axis`` goes when the first two axes trade places."""
    return {0: 1, 1: 0}.get(axis, axis)


class _Layout:
    """The flood that decides which tensors flip, and the rewrite that flips them."""

    def __init__(self, model: Any, dims: dict[str, list[Any]]) -> None:
        self.model, self.graph, self.dims = model, model.graph, dims
        self.constants = Constants(self.graph)
        self.producers, self.readers = producer_map(self.graph), reader_map(self.graph)
        self.region: dict[str, None] = {}  # insertion-ordered: the rewrite's output must not depend on hashing
        self.kind: dict[int, str] = {}  # id(node) -> "token" | "transpose" | "other"

    # -- classification ---------------------------------------------------------------------
    def _full(self, name: str) -> bool:
        """A tensor with real batch/sequence axes (not broadcast along them)."""
        d = self.dims.get(name)
        return d is not None and len(d) >= 2 and any(x != 1 for x in d[:-1])

    def _layout_tensors(self, node: Any) -> list[str] | None:
        """The inputs and outputs of ``node`` that flip with its batch/sequence axes if the node is
        token-wise, else None."""
        op, inputs = node.op_type, [i for i in node.input if i]
        if any(name not in self.dims for name in [*inputs, *node.output]):
            return None
        full_in = [i for i in inputs if self._full(i)]
        rank = len(self.dims[node.output[0]])
        if op in ELEMENTWISE_OPS or op in NORM_OPS:
            axis = int_attr(node, "axis", -1)
            if op in NORM_OPS and axis not in (-1, rank - 1):
                return None
            if op in ("Softmax", "LogSoftmax") and self._opset() < 13:
                return None
            if any(len(self.dims[i]) != rank for i in full_in):
                return None
        elif op in _ROW_LINEAR:  # activations [..., K] x weights [K, N]; scales, zero points, bias per column
            if rank < 3 or not self._full(inputs[0]) or len(self.dims[inputs[1]]) != 2 \
                    or not self.constants.is_constant(inputs[1]) or any(self._full(i) for i in inputs[2:]):
                return None
            full_in = inputs[:1]
        elif op in _PER_TENSOR_QUANT:  # one scale for the whole tensor, so no axis to move
            if full_in != inputs[:1] or any(self.dims[i] not in ([], [1]) for i in inputs[1:2]):
                return None
        elif op == "Reshape":  # keeps batch and sequence (copied, or given as the same fixed sizes)
            shape, source = self.constants.value(node.input[1]), self.dims[node.input[0]]
            if shape is None or shape.ndim != 1 or len(shape) < 3 or len(source) < 3:
                return None
            head, tail = [int(x) for x in shape[:2]], [int(x) for x in shape[2:]]
            kept = all(h in (0, -1, d) for h, d in zip(head, source[:2], strict=True))
            if not kept or head.count(-1) > 1 or any(x <= 0 for x in tail) \
                    or any(a.name == "allowzero" and a.i for a in node.attribute):
                return None
            if -1 in head and (any(not isinstance(d, int) for d in source[2:])
                               or math.prod(tail) != math.prod(source[2:])):
                return None  # the -1 could take in part of the tail ([B, S, E] -> [B, S * 2, E / 2])
        elif op == "Transpose":
            perm = perm_of(node)
            if perm is None or perm[:2] != [0, 1]:
                return None
        elif op in ("Slice", "Gather"):  # rows picked along any axis: the flipped copy swaps batch/sequence
            if len(self.dims[inputs[0]]) < 3 or not self._full(inputs[0]) or self._picked_axes(node) is None:
                return None
            if op == "Gather":  # one index drops batch or sequence: what is left is in the original order
                return inputs[:1]
            full_in = inputs[:1]
        else:
            return None
        return [*full_in, *(o for o in node.output if self._full(o))]

    def _picked_axes(self, node: Any) -> list[int] | None:
        """The axes (non-negative) a ``Slice`` with constant axes, or a ``Gather`` of one constant index
        along batch or sequence, picks from; else None."""
        rank = len(self.dims[node.input[0]])
        if node.op_type == "Gather":
            index = self.constants.value(node.input[1])
            axis = int_attr(node, "axis", 0) % rank
            return [axis] if index is not None and index.ndim == 0 and axis < 2 else None
        if len(node.input) < 4 or not node.input[3] or any(not self.constants.is_constant(i)
                                                            for i in node.input[1:] if i):
            return None  # no axes input: the slice covers axes 0.. in order, left as it is
        return [int(a) % rank for a in self.constants.value(node.input[3]).reshape(-1)]

    def _opset(self) -> int:
        return next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 0)

    def _classify(self, node: Any) -> str:
        key = id(node)
        if key not in self.kind:
            tensors = self._layout_tensors(node)
            if tensors is not None:
                self.kind[key] = "token"
                for name in tensors:
                    self._add(name)
            else:
                self.kind[key] = "transpose" if node.op_type == "Transpose" else "other"
        return self.kind[key]

    # -- flood --------------------------------------------------------------------------------
    def _add(self, name: str) -> None:
        if name not in self.region:
            self.region[name] = None
            self.queue.append(name)

    def flood(self, seeds: list[str]) -> None:
        """Grow the flipped region from ``seeds`` through token-wise operations, both ways."""
        self.queue: list[str] = []
        for seed in seeds:
            self._add(seed)
        while self.queue:
            name = self.queue.pop()
            producer = self.producers.get(name)
            for node in [producer, *self.readers.get(name, [])]:
                if node is not None:
                    self._classify(node)

    # -- rewrite ------------------------------------------------------------------------------
    def rewrite(self) -> None:
        """Rename flipped tensors to ``<name>/seq_first``, compose the boundary ``Transpose``s' perms,
        and add a ``Transpose`` wherever the flipped region meets anything else."""
        graph, added = self.graph, []
        flipped = {name: f"{name}/seq_first" for name in self.region}
        outputs = {o.name for o in graph.output}
        for node in list(graph.node):
            kind = self.kind.get(id(node), "other")
            if kind == "other":
                continue
            if kind == "transpose":
                self._compose(node)
            elif node.op_type == "Reshape":
                self._swap_shape_head(node)
            elif node.op_type in ("Slice", "Gather"):
                self._swap_picked_axes(node)
            for slot, name in enumerate(node.input):
                if name in flipped:
                    node.input[slot] = flipped[name]
            for slot, name in enumerate(node.output):
                if name in flipped:
                    node.output[slot] = flipped[name]
        for name, new in flipped.items():
            rank = len(self.dims[name])
            perm = [1, 0, *range(2, rank)]
            producer = self.producers.get(name)
            if producer is None or self.kind.get(id(producer), "other") == "other":
                added.append(helper.make_node("Transpose", [name], [new], perm=perm, name=f"{new}/in"))
            elif name in outputs or any(r is not None and self.kind.get(id(r), "other") == "other"
                                        for r in self.readers.get(name, [])):
                added.append(helper.make_node("Transpose", [new], [name], perm=perm, name=f"{new}/out"))
        graph.node.extend(added)

    def _swap_shape_head(self, node: Any) -> None:
        """A flipped ``Reshape`` that gives batch and sequence as fixed sizes (a static-shape graph) gets
        them in the flipped order; copies (``0``) need no change."""
        shape = self.constants.value(node.input[1])
        if shape[0] != shape[1]:
            swapped = shape.copy()
            swapped[:2] = shape[1::-1]
            name = f"{node.input[1]}/seq_first"
            if name not in self.constants.inits:
                self.constants.add_array(name, swapped)
            node.input[1] = name

    def _swap_picked_axes(self, node: Any) -> None:
        """A flipped ``Slice`` or ``Gather`` picks along the other one of batch and sequence."""
        swapped = [_swap(a) for a in self._picked_axes(node)]
        if node.op_type == "Gather":
            attr = next((a for a in node.attribute if a.name == "axis"), None)
            if attr is None:
                node.attribute.append(helper.make_attribute("axis", swapped[0]))
            else:
                attr.i = swapped[0]
            return
        name = f"{node.input[3]}/seq_first"
        if name not in self.constants.inits:
            self.constants.add_array(name, np.array(swapped, np.int64))
        node.input[3] = name

    def _compose(self, node: Any) -> None:
        """Change a boundary ``Transpose``'s perm so it reads and writes the layouts around it."""
        perm = next(a for a in node.attribute if a.name == "perm")
        old = list(perm.ints)
        flip_in, flip_out = node.input[0] in self.region, node.output[0] in self.region
        order = [_swap(i) for i in range(len(old))] if flip_out else list(range(len(old)))
        perm.ints[:] = [_swap(old[j]) if flip_in else old[j] for j in order]


def _transposed_operand(graph_maps: tuple[dict, dict], name: str, wanted: list[list[int]]) -> tuple[Any, int] | None:
    """``(Transpose node, index of its perm in wanted)`` when ``name`` is written by a Transpose with
    one of the ``wanted`` perms and read by one node only (so the Transpose can go), else None."""
    producers, readers = graph_maps
    node = producers.get(name)
    if node is None or node.op_type != "Transpose" or len(readers.get(name, [])) != 1:
        return None
    perm = perm_of(node)
    return (node, wanted.index(perm)) if perm in wanted else None


def _read_in_place(model: Any) -> int:
    """``MatMul(Transpose(a), Transpose(b))`` of sequence-first operands -> ``FusedMatMul(a, b)`` with
    ``transBatchA/B`` (and ``transB`` for K^T); returns how many Transposes went away."""
    graph = model.graph
    constants = Constants(graph)
    # built once: each Transpose taken has this MatMul (or its scale) as only reader, so no other
    # MatMul's lookups change when it goes
    maps = (producer_map(graph), reader_map(graph))
    removed = 0
    for node in list(graph.node):
        if node.op_type != "MatMul" or node.domain not in ("", "ai.onnx"):
            continue
        attrs = {"transA": 0, "transB": 0, "transBatchA": 0, "transBatchB": 0}
        # Q may be scaled by a scalar after its transpose (DistilBERT): scale first, then read in place
        reader, slot = node, 0
        scale = maps[0].get(node.input[0])
        found = constants.operand(scale, scale.op_type) if scale is not None and scale.op_type in ("Div", "Mul") \
            else None
        if found is not None and found[1].size == 1 and len(maps[1].get(node.input[0], [])) == 1:
            reader, slot = scale, 1 - found[0]
        left = _transposed_operand(maps, reader.input[slot], [[1, 2, 0, 3]])
        if left is not None:
            reader.input[slot] = left[0].input[0]
            graph.node.remove(left[0])
            attrs["transBatchA"] = 1
            removed += 1
        right = _transposed_operand(maps, node.input[1], [[1, 2, 0, 3], [1, 2, 3, 0]])
        if right is not None:
            node.input[1] = right[0].input[0]
            graph.node.remove(right[0])
            attrs.update(transBatchB=1, transB=right[1])
            removed += 1
        if attrs["transBatchA"] or attrs["transBatchB"]:
            node.op_type, node.domain = "FusedMatMul", "com.microsoft"
            node.attribute.extend(helper.make_attribute(k, v) for k, v in {"alpha": 1.0, **attrs}.items())
    return removed


def _seeds(graph: Any) -> list[str]:
    """The ``[B, S, H, D]`` tensors around each attention: Q/K/V before their Transpose, the context after."""
    producers, seeds = producer_map(graph), []
    for node in graph.node:
        perm = perm_of(node) if node.op_type == "Transpose" else None
        source = producers.get(node.input[0]) if perm else None
        if perm in (_HEADS_FIRST, _KEYS_TRANSPOSED) and source is not None and source.op_type == "Reshape":
            seeds.append(node.input[0])
        elif perm == _HEADS_FIRST and source is not None and source.op_type == "MatMul":
            seeds.append(node.output[0])
    return seeds


def sequence_first_attention(model: Any) -> int:
    """Flip the graph between attention blocks to ``[seq, batch, ...]`` so attention matmuls read Q, K
    and V in place; returns how many ``Transpose`` nodes the graph lost (0: left unchanged).

    The rewrite is kept only when it removes more ``Transpose``s than it adds at the region's edges.
    Values are unchanged: every operation computes the same sums in the same order, on permuted axes.
    """
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in model.graph.node
           for a in n.attribute):
        return 0  # subgraphs (If, Loop) read outer tensors by name, which the rename would break
    seeds = _seeds(model.graph)
    dims = inferred_dims(model) if seeds else None
    if not dims:
        return 0
    work = copy.deepcopy(model)
    layout = _Layout(work, dims)
    layout.flood(seeds)
    layout.rewrite()
    _read_in_place(work)
    if not sort_topologically(work.graph):
        return 0
    remove_unused_nodes(work)
    before = sum(n.op_type == "Transpose" for n in model.graph.node)
    after = sum(n.op_type == "Transpose" for n in work.graph.node)
    if after >= before:
        return 0
    del work.graph.value_info[:]
    if not any(o.domain == "com.microsoft" for o in work.opset_import):
        work.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    model.CopyFrom(work)
    return before - after
