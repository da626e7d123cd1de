"""Attention over the keys a batch really has: trailing padding is sliced off before the score matmul.

Apps feed static shapes (the device profile's ``1 x 128``) and pad a 12-token query with 116 masked
positions. Every attention then computes scores, a softmax and a context product over all 128 keys,
although the mask gives the padded ones a weight of exactly zero. On x86 it is worse than wasted
work: the masked scores sit ~1e4 below the row's maximum, ONNX Runtime's softmax kernel evaluates
their exponentials in the denormal range, and a softmax over a padded row took 5-7x as long as over
a full one (measured, ORT 1.31 on this Xeon: 292 us against 43 us for ``4 x 128 x 128``). A short
padded query was slower than a full-length one.

:func:`trim_masked_keys` computes once, from ``attention_mask``, ``L`` = one past the last position
any row of the batch attends to, and slices every attention's key operand, value operand and mask
bias to the first ``L`` positions. Positions past ``L`` are masked in every row, so they only ever
added zeros; rows shorter than ``L`` keep their mask as before. Queries are not touched, so every
output keeps its shape. With no padding (``L`` = sequence length) the slices copy a few small
tensors and nothing else changes; left padding leaves ``L`` at the full length.

Where the key and value come from a projection of the sequence-first hidden states (float and
dynamic int8 graphs), the slice moves up through the bias Add, the scale Mul, the Cast and the
matmul to the projection's input, as long as nothing else reads what it passes: the key and value
projections then compute only the ``L`` rows kept, and in dynamic int8 graphs the two share one
slice of the already quantized (uint8) input, whose scale was taken over every row as before, so
the result is bit-exact.

Sequence classifiers do not get this trim: their inputs are cut to ``L`` before anything else
(:mod:`onnx_sequence_trim`), so no padded key is left. It serves the graphs whose outputs run along
the sequence (feature extraction, token classification, QA, fill-mask), whose padded query rows are
part of the output.

The rewrite recognises attention structurally (``Softmax`` over ``Add``/``Where`` of a Q.K product
and a tensor computed from ``attention_mask``, read by a P.V product) and then proves itself: the
graph runs before and after on a padded two-row batch, and the trimmed graph is kept only when every
output agrees. Anything it is unsure of is left as it was.
"""

from __future__ import annotations

import copy
from typing import Any

import onnx
from onnx import TensorProto, helper

from slimport.exporters.onnx_graph import sort_topologically
from slimport.exporters.onnx_index import (
    Constants,
    inferred_dims,
    int_attr,
    producer_map,
    reader_map,
    remove_unused_nodes,
)
from slimport.exporters.onnx_rewrites import unexpand_mask_conditions
from slimport.exporters.onnx_selfcheck import MASK_INPUT, same_outputs

_PRODUCTS = ("MatMul", "FusedMatMul")
_PREFIX = "slimport_key_trim"


def trim_masked_keys(model: onnx.ModelProto) -> int:
    """Slice every recognised attention's keys to the batch's last attended position, in place;
    returns how many attentions were trimmed (0: the model is unchanged)."""
    if MASK_INPUT not in {i.name for i in model.graph.input}:
        return 0
    work = copy.deepcopy(model)
    if unexpand_mask_conditions(work.graph) and sort_topologically(work.graph):
        remove_unused_nodes(work)  # the Expands
    graph = _Graph(work.graph)
    attentions = [a for n in work.graph.node if (a := graph.attention(n)) is not None]
    if not attentions:
        return 0
    plain = [site for att in attentions for site in att]
    # only axis-0 slices (the sequence-first layout) move; shape inference is not run for others
    ranks = _ranks(work) if any(axis == 0 for _, _, axis in plain) else {}
    hoisted = [graph.hoisted(node, slot, axis, ranks) for node, slot, axis in plain]
    tries = [hoisted, plain] if hoisted != plain else [plain]
    for sites in tries:
        trimmed = work if sites is tries[-1] else copy.deepcopy(work)  # the last try needs no spare copy
        _slice_sites(trimmed.graph, [(_find(trimmed.graph, work.graph, n), slot, axis) for n, slot, axis in sites])
        if sort_topologically(trimmed.graph) and same_outputs(model, trimmed):
            model.CopyFrom(trimmed)
            return len(attentions)
    return 0


def _slice_sites(graph: Any, sites: list[tuple[Any, int, int]]) -> None:
    """Slice each ``node.input[slot]`` along ``axis`` to the first ``L`` positions (one Slice per
    tensor and axis, shared by its readers)."""
    length = attended_length(graph, _PREFIX)
    slices: dict[tuple[str, int], str] = {}
    for node, slot, axis in sites:
        key = (node.input[slot], axis)
        if key not in slices:
            slices[key] = f"{_PREFIX}/{len(slices)}"
            graph.node.append(helper.make_node(
                "Slice", [node.input[slot], f"{_PREFIX}/zero", length, _axis_const(graph, axis)],
                [slices[key]], name=slices[key]))
        node.input[slot] = slices[key]


def _find(copied: Any, original: Any, node: Any) -> Any:
    """The node of the graph ``copied`` (a deep copy of ``original``) at ``node``'s position."""
    return copied.node[next(i for i, n in enumerate(original.node) if n is node)]


class _Graph:
    """The indexes :func:`trim_masked_keys` reads, built once."""

    def __init__(self, graph: Any) -> None:
        self.producers, self.readers = producer_map(graph), reader_map(graph)
        self.inputs = {i.name for i in graph.input}
        self.constants = Constants(graph)

    def attention(self, softmax: Any) -> list[tuple[Any, int, int]] | None:
        """``(node, input slot, key axis)`` of the key operand, the value operand and the mask to slice
        for the attention around ``softmax``, or None when it is not a plain masked attention."""
        if softmax.op_type != "Softmax" or int_attr(softmax, "axis", -1) != -1:
            return None
        masked = self.producers.get(softmax.input[0])
        if masked is None or masked.op_type not in ("Add", "Where"):
            return None
        # Add(scores, bias) in either order, or Where(condition, fill, scores) in either order
        operands = [1, 2] if masked.op_type == "Where" else [0, 1]
        found = [(slot, node) for slot in operands if (node := self.scores_product(masked.input[slot])) is not None]
        if not found:
            return None
        scores_slot, scores = found[0]
        other = operands[1 - operands.index(scores_slot)]
        mask_slot = 0 if masked.op_type == "Where" else other
        if masked.op_type == "Where" and not self.computed_from_mask(masked.input[other], constant_ok=True):
            return None
        if not self.computed_from_mask(masked.input[mask_slot], constant_ok=False):
            return None
        readers = self.readers.get(softmax.output[0], [])
        context = readers[0] if len(readers) == 1 else None
        if context is None or context.op_type not in _PRODUCTS or context.input[0] != softmax.output[0] \
                or _operand_flags(context, "A") != (0, 0):
            return None
        # the mask operand broadcasts against [..., queries, keys]: its last axis is the keys'
        return [(scores, 1, _key_axis(scores, position=-1)), (context, 1, _key_axis(context, position=-2)),
                (masked, mask_slot, -1)]

    def hoisted(self, node: Any, slot: int, axis: int, ranks: dict[str, int]) -> tuple[Any, int, int]:
        """Where the slice of ``node.input[slot]`` along ``axis`` can go instead: as far up as the rows
        of that axis pass through unmixed (:meth:`row_input`) and nothing else reads the tensors
        passed. A key or value projection then computes only the ``L`` rows that are kept."""
        while axis == 0 and _only_reader(self.readers.get(node.input[slot], []), node):
            producer = self.producers.get(node.input[slot])
            up = self.row_input(producer, ranks) if producer is not None else None
            if up is None:
                break
            node, slot = producer, up
        return node, slot, axis

    def row_input(self, node: Any, ranks: dict[str, int]) -> int | None:
        """The input of ``node`` whose axis-0 rows make the output's axis-0 rows one for one, with no
        other input spanning that axis; None when there is none (or a rank is unknown)."""
        out_rank = ranks.get(node.output[0])
        if node.op_type == "Cast" or (node.op_type == "Reshape" and _copies_first_dim(node, self.constants)):
            return 0
        if node.op_type in ("Add", "Mul", "Sub", "Div") and out_rank:
            spanning = [i for i, name in enumerate(node.input) if ranks.get(name, out_rank) >= out_rank]
            return spanning[0] if len(spanning) == 1 else None
        if node.op_type in ("MatMul", "MatMulInteger") and ranks.get(node.input[0], 0) >= 2 \
                and ranks.get(node.input[1]) == 2 and all(ranks.get(z) == 0 for z in node.input[2:3] if z):
            a = self.producers.get(node.input[0])
            return None if a is not None and a.op_type == "DequantizeLinear" else 0  # a QDQ unit stays whole
        return None

    def scores_product(self, name: str) -> Any:
        """The Q.K product behind ``name`` (through an optional Div/Mul by a scale), else None."""
        node = self.producers.get(name)
        if node is not None and node.op_type in ("Div", "Mul"):
            found = [self.producers.get(i) for i in node.input[: 1 if node.op_type == "Div" else 2]]
            node = next((f for f in found if f is not None and f.op_type in _PRODUCTS), None)
        return node if node is not None and node.op_type in _PRODUCTS else None

    def computed_from_mask(self, name: str, constant_ok: bool) -> bool:
        """Whether ``name`` is computed from ``attention_mask`` and constants alone (or is a constant,
        when ``constant_ok``). Shape reads are refused: they would tie the mask to a trimmed tensor."""
        seen, stack, reaches_mask = set(), [name], False
        while stack:
            current = stack.pop()
            if current in seen or current == "":
                continue
            seen.add(current)
            if current == MASK_INPUT:
                reaches_mask = True
                continue
            if current in self.inputs:
                return False
            node = self.producers.get(current)
            if node is None:
                continue  # an initializer
            if node.op_type in ("Shape", "Size") or len(seen) > 64:
                return False
            stack.extend(node.input)
        return reaches_mask or constant_ok


def _operand_flags(node: Any, operand: str) -> tuple[int, int]:
    """``(transBatch, trans)`` of operand ``A`` or ``B`` of a (Fused)MatMul."""
    return int_attr(node, f"transBatch{operand}", 0), int_attr(node, f"trans{operand}", 0)


def _key_axis(product: Any, position: int) -> int:
    """The axis of ``product``'s B operand that ends up at ``position`` (-1: the output's last axis,
    -2: the contracted axis) after FusedMatMul's ``transBatchB`` / ``transB``; negative, so it holds
    at any rank >= 3."""
    trans_batch, trans = _operand_flags(product, "B")
    if trans_batch:
        # [d0, d1, ..., d(r-2), d(r-1)] -> [d1, ..., d(r-2), d0, d(r-1)]: d0 becomes the second last
        axes = {-2: "first", -1: -1}
    else:
        axes = {-2: -2, -1: -1}
    if trans:
        axes = {-2: axes[-1], -1: axes[-2]}
    picked = axes[position]
    return 0 if picked == "first" else picked


def _copies_first_dim(reshape: Any, constants: Constants) -> bool:
    """Whether a ``Reshape``'s constant target shape starts with 0 (copy the input's first dim)."""
    shape = constants.value(reshape.input[1])
    if shape is None or int_attr(reshape, "allowzero", 0):
        return False
    return shape.size > 0 and int(shape.reshape(-1)[0]) == 0


def _only_reader(readers: list[Any], node: Any) -> bool:
    return len(readers) == 1 and readers[0] is node


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> rank, from ONNX Runtime's symbolic shape inference and the initializers; empty if
    it fails, partial where it stops (an unknown rank moves no slice). ONNX's own inference stops at
    the first contrib op; ORT's does too at a ``FusedMatMul`` with ``transBatch``, so it is told to
    give an op it cannot infer its first input's rank, which is right for a batched product. The
    trimmed graph is still checked by running it."""
    dims = inferred_dims(model, partial=True, guess_rank=True) or {}
    return {name: len(d) for name, d in dims.items()}


def attended_length(graph: Any, prefix: str) -> str:
    """Add the nodes computing ``L`` (int64 ``[1]``, named ``<prefix>/length``): one past the last
    position any row of the batch attends to, from ``attention_mask``. Also adds ``<prefix>/zero`` and
    ``<prefix>/one`` (int64 ``[1]``)."""
    p = prefix
    graph.initializer.extend([helper.make_tensor(f"{p}/zero", TensorProto.INT64, [1], [0]),
                              helper.make_tensor(f"{p}/one", TensorProto.INT64, [1], [1])])
    graph.node.extend([
        helper.make_node("Cast", [MASK_INPUT], [f"{p}/mask"], to=TensorProto.FLOAT, name=f"{p}/mask"),
        # an all-zero row gives its last index, so L stays the full length, as the untrimmed softmax
        helper.make_node("ArgMax", [f"{p}/mask"], [f"{p}/last"], axis=-1, keepdims=0, select_last_index=1,
                         name=f"{p}/last"),
        helper.make_node("ReduceMax", [f"{p}/last"], [f"{p}/last_any"], keepdims=1, name=f"{p}/last_any"),
        helper.make_node("Add", [f"{p}/last_any", f"{p}/one"], [f"{p}/length"], name=f"{p}/length")])
    return f"{p}/length"


def _axis_const(graph: Any, axis: int) -> str:
    """Name of an int64 ``[axis]`` initializer (added once)."""
    name = f"{_PREFIX}/axis{axis}"
    if name not in {i.name for i in graph.initializer}:
        graph.initializer.append(helper.make_tensor(name, TensorProto.INT64, [1], [axis]))
    return name
