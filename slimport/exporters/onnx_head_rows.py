"""The rows a head reads: a classifier that reads one token's vector gets only that row computed.

A sequence classifier (BERT's pooler, DistilBERT's pre-classifier, ELECTRA's and RoBERTa's heads)
reads ``hidden[:, 0]`` of the last layer and nothing else, yet the exported graph computes every row
of that layer: its query projection, the attention of every query, the output projection and the
feed-forward block. Only the keys and values need every row. On a 6-layer encoder that is about a
seventh of the model's matrix work thrown away after the fact.

:func:`trim_head_rows` pulls the row selection (a ``Gather`` of a constant index) up through every
operation that computes each row from the same row of its inputs (elementwise and broadcasting ops,
norms and softmax over other axes, the ``A`` side of a product, ``Transpose``, a ``Reshape`` that
keeps the row axis), as long as everything that reads a tensor wants the same row of it. Where a
tensor is also needed whole (the last layer's input: keys, values) a ``Slice`` takes the row. The
arithmetic of the row is unchanged (a product over one row sums the same terms as over all of them);
the trimmed graph is run against the original on a padded batch and kept only when every output
agrees (:mod:`onnx_selfcheck`).

It runs on the float graph before any quantization, so every precision gets it; dynamic int8 then
quantizes the trimmed Linears' inputs over the row they really read.
"""

from __future__ import annotations

import copy
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
    reader_map,
    remove_unused_nodes,
)
from slimport.exporters.onnx_rewrites import unexpand_mask_conditions
from slimport.exporters.onnx_selfcheck import same_outputs

_PRODUCTS = frozenset({"MatMul", "FusedMatMul", "Gemm"})
_PREFIX = "slimport_head_rows"


def trim_head_rows(model: onnx.ModelProto) -> int:
    """Compute only the row a head reads wherever nothing else reads the rest, in place; returns how
    many Linears and products now compute one row (0: the model is unchanged)."""
    if not _row_reads(model.graph):
        return 0  # no head reads one row: no copy of the weights, no shape inference
    work = copy.deepcopy(model)
    if not sort_topologically(work.graph):
        return 0
    if unexpand_mask_conditions(work.graph):  # Shape(scores) would read every query row
        if not sort_topologically(work.graph):
            return 0
        remove_unused_nodes(work)
    constants = Constants(work.graph)
    roots = _row_reads(work.graph, constants)
    dims = inferred_dims(work, partial=True) if roots else None
    if not dims:
        return 0
    roots = [r for r in roots if _full_at(dims, r[0], r[1])]
    if not roots:
        return 0
    plan = _Plan(work.graph, dims, constants)
    index = roots[0][2]  # heads reading different rows are left to the first one's
    trimmed = plan.demand([(node, axis) for node, axis, i in roots if i == index])
    if not trimmed:
        return 0
    plan.rewrite(index)
    if not sort_topologically(work.graph):
        return 0
    remove_unused_nodes(work)
    if not same_outputs(model, work):
        return 0
    model.CopyFrom(work)
    return trimmed


def _row_reads(graph: Any, constants: Constants | None = None) -> list[tuple[Any, int, int]]:
    """Every :func:`_row_read` of ``graph``."""
    constants = constants if constants is not None else Constants(graph)
    inputs = {i.name for i in graph.input}
    return [r for n in graph.node if (r := _row_read(n, constants, inputs)) is not None]


def _row_read(node: Any, constants: Constants, inputs: set[str]) -> tuple[Any, int, int] | None:
    """``(node, axis, index)`` when ``node`` is a ``Gather`` of one constant index along ``axis`` of a
    computed tensor (not a constant or a graph input): a head reading one row."""
    if node.op_type != "Gather" or constants.is_constant(node.input[0]) or node.input[0] in inputs:
        return None
    index = constants.value(node.input[1])
    if index is None or index.ndim != 0 or index.dtype.kind not in "iu":
        return None
    return node, int_attr(node, "axis", 0), int(index)


def _full_at(dims: dict[str, list[Any]], node: Any, axis: int) -> bool:
    """Whether the gathered tensor has rank 2 or more and more than one row along ``axis`` (a ``Shape``
    read, for one, has rank 1)."""
    shape = dims.get(node.input[0])
    return shape is not None and len(shape) >= 2 and -len(shape) <= axis < len(shape) and shape[axis] != 1


class _Plan:
    """Which nodes compute one row (and along which axis of each input), then the rewrite."""

    def __init__(self, graph: Any, dims: dict[str, list[Any]], constants: Constants) -> None:
        self.graph, self.dims, self.constants = graph, dims, constants
        self.readers = reader_map(graph)
        self.wanted: dict[str, list[tuple[Any, int, int]]] = {}  # tensor -> (reader, slot, axis) wanting a row
        self.rowwise: dict[int, list[int | None]] = {}  # id(node) -> per input: row axis, or None (whole)
        self.roots: list[Any] = []

    def demand(self, roots: list[tuple[Any, int]]) -> int:
        """Walk the graph backwards from the heads' row reads; returns how many products compute one row."""
        for node, axis in roots:
            rank = len(self.dims[node.input[0]])
            self._want(node, 0, axis % rank)
            self.roots.append(node)
        products = 0
        for node in reversed(self.graph.node):
            axis = self._row_axis(node)
            slots = self._input_axes(node, axis) if axis is not None else None
            if slots is None:
                continue
            self.rowwise[id(node)] = slots
            products += node.op_type in _PRODUCTS
            for slot, up in enumerate(slots):
                if up is not None:
                    self._want(node, slot, up)
        return products

    def _want(self, node: Any, slot: int, axis: int) -> None:
        self.wanted.setdefault(node.input[slot], []).append((node, slot, axis))

    def _row_axis(self, node: Any) -> int | None:
        """The axis along which every reader of ``node``'s one used output wants a single row, else None."""
        used = [o for o in node.output if o and o in self.readers]
        if used != [node.output[0]] or used[0] not in self.wanted:
            return None
        wants = self.wanted[used[0]]
        axes = {axis for _, _, axis in wants}
        return axes.pop() if len(wants) == len(self.readers[used[0]]) and len(axes) == 1 else None

    def _input_axes(self, node: Any, axis: int) -> list[int | None] | None:
        """Per input of ``node``: the axis whose one row makes row ``axis`` of the output (None: the
        input is read whole); None when the output's rows are not made that way."""
        out = self.dims.get(node.output[0])
        shapes = [self.dims.get(name) if name else [] for name in node.input]
        if out is None or axis >= len(out) or any(s is None for s in shapes):
            return None
        op, rank = node.op_type, len(out)
        if op in ELEMENTWISE_OPS or op in NORM_OPS:
            if op in NORM_OPS and axis >= int_attr(node, "axis", -1) % rank:
                return None
            return [_broadcast_axis(shape, axis, rank) if name else None
                    for name, shape in zip(node.input, shapes, strict=True)]
        if op == "Transpose":
            order = perm_of(node)
            return [order[axis]] if order else None
        if op == "Reshape":
            return [axis, None] if self._keeps_axis(node, axis) else None
        if op in _PRODUCTS:
            return _product_axes(node, shapes, axis, rank)
        return None

    def _keeps_axis(self, reshape: Any, axis: int) -> bool:
        """Whether a ``Reshape`` with a constant shape leaves ``axis`` and every axis before it as they were."""
        source, target = self.dims.get(reshape.input[0]), self.dims.get(reshape.output[0])
        shape = self.constants.value(reshape.input[1])
        if shape is None or int_attr(reshape, "allowzero", 0) or source is None or target is None:
            return False
        prefix = source[: axis + 1]
        return len(source) > axis and prefix == target[: axis + 1] and None not in prefix

    def rewrite(self, index: int) -> None:
        """Give every reader that wants one row of a whole tensor a ``Slice`` of it (one per tensor and
        axis), shrink the Reshapes' fixed row counts, and point the heads at row 0 of what they read.
        A head whose tensor is not computed row by row is left as it was (a Slice would gain nothing)."""
        made = {o for n in self.graph.node if id(n) in self.rowwise for o in n.output if o}
        heads = {id(r) for r in self.roots}
        roots = {id(r) for r in self.roots if r.input[0] in made}
        slices: dict[tuple[str, int], str] = {}
        for name, wants in self.wanted.items():
            for node, slot, axis in wants:
                if name in made or (id(node) in heads and id(node) not in roots):
                    continue
                key = (name, axis)
                if key not in slices:
                    slices[key] = self._slice(name, axis, index, len(slices))
                node.input[slot] = slices[key]
        for node in self.graph.node:
            if node.op_type == "Reshape" and id(node) in self.rowwise:
                self._one_row_shape(node)
        zero = self.constants.add_array(f"{_PREFIX}/row", np.array(0, np.int64))
        for root in self.roots:
            if id(root) in roots:
                root.input[1] = zero
        # shapes recorded for the trimmed tensors no longer hold
        kept = [v for v in self.graph.value_info if v.name not in made]
        del self.graph.value_info[:]
        self.graph.value_info.extend(kept)

    def _slice(self, name: str, axis: int, index: int, count: int) -> str:
        """Add ``Slice(name)`` keeping row ``index`` along ``axis``; returns its output."""
        out = f"{_PREFIX}/{count}"
        end = index + 1 if index != -1 else np.iinfo(np.int64).max
        starts, ends, axes = (self.constants.add_array(f"{out}/{k}", np.array([v], np.int64))
                              for k, v in (("start", index), ("end", end), ("axis", axis)))
        self.graph.node.append(helper.make_node("Slice", [name, starts, ends, axes], [out], name=out))
        return out

    def _one_row_shape(self, reshape: Any) -> None:
        """A fixed row count in a trimmed ``Reshape``'s shape becomes 1 (``0`` and ``-1`` follow the input)."""
        axis = next(a for a in self.rowwise[id(reshape)] if a is not None)
        shape = self.constants.value(reshape.input[1]).astype(np.int64).copy()
        if shape[axis] > 0:
            shape[axis] = 1
            reshape.input[1] = self.constants.add_array(f"{_PREFIX}/shape/{reshape.output[0]}", shape)


def _broadcast_axis(shape: list[Any], axis: int, out_rank: int) -> int | None:
    """The axis of an input of ``shape`` that broadcasts to output ``axis`` (None: the input has no
    such axis or a size-1 one, and is read whole)."""
    k = axis - (out_rank - len(shape))
    return None if k < 0 or shape[k] == 1 else k


def _product_axes(node: Any, shapes: list[list[Any]], axis: int, rank: int) -> list[int | None] | None:
    """Row axes of a product's inputs: the rows of ``A`` make the output's rows, the columns of ``B``
    its columns, and batch axes broadcast; None for transposed operands (``Gemm``'s ``transA``,
    ``FusedMatMul``'s flags)."""
    flags = ("transA", "transB", "transBatchA", "transBatchB")
    if node.op_type == "Gemm":
        if int_attr(node, "transA", 0) or axis != 0:
            return None
        bias = shapes[2] if len(shapes) > 2 else []
        return [0, None, *([0 if len(bias) == 2 and bias[0] != 1 else None] if len(shapes) > 2 else [])]
    if any(int_attr(node, f, 0) for f in flags) or len(shapes[0]) < 2 or len(shapes[1]) < 2:
        return None
    a, b = shapes[0], shapes[1]
    if axis == rank - 2:
        return [len(a) - 2, None]
    if axis == rank - 1:
        return [None, len(b) - 1]
    return [_broadcast_axis(a[:-2], axis, rank - 2), _broadcast_axis(b[:-2], axis, rank - 2)]
