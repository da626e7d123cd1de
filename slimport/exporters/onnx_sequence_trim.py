"""A sequence classifier runs on the positions its batch attends to: every input is cut to ``L`` first.

Apps that feed a fixed shape (the static ``1 x 128`` of ``ort-mobile-int8``) or pad a batch to one
length pad a 12-token text with 116 masked positions. The key trim (:mod:`onnx_key_trim`) stops
those positions from being attended to, but every layer still computes them as queries: their
projections, their attention, their feed-forward blocks, for outputs nobody reads. A classifier's
outputs (``logits [batch, labels]``) have no sequence axis, so nothing it returns depends on what a
padded position computes as a query.

:func:`trim_sequence` slices every ``[batch, sequence]`` input to its first ``L`` positions, ``L``
being one past the last position any row attends to (from ``attention_mask``, as the key trim
computes it). The whole graph then runs on ``L`` positions: embeddings, every layer, the head. With no
trailing padding (``L`` = the sequence length) the slices copy the small integer inputs and nothing
else changes; left padding leaves ``L`` at the full length.

It is exact for families whose positions ``< L`` see only positions ``< L``: the real positions
attend only to real ones (the mask) and position ids count from 0 as before. MobileBERT's embedding
reads one token ahead (its trigram input), so its last real position reads the first padded token:
there the inputs are cut to ``L + 1`` (a ``Slice`` past the end stops at the end). The graph is run
before and after on a padded batch (:mod:`onnx_selfcheck`); ``L`` is tried, then ``L + 1``, and the
first that agrees on every output is kept. Graphs with an output along the sequence (feature
extraction, token classification, QA, fill-mask) are left alone: their padded rows are part of the
output.

It runs on the float graph before the profile's static shape is set and before any quantization:
shapes inside the graph stay dynamic while the inputs keep the profile's fixed shape, and dynamic
int8 then takes each activation's range over the positions the text really has, as it would for the
unpadded text. The key trim then has nothing left to cut (:meth:`OnnxExporter._final_rewrites`).
"""

from __future__ import annotations

import copy
from typing import Any

import onnx
from onnx import helper

from slimport.exporters.onnx_graph import sort_topologically
from slimport.exporters.onnx_key_trim import attended_length
from slimport.exporters.onnx_selfcheck import MASK_INPUT, same_outputs

_PREFIX = "slimport_sequence_trim"


def trim_sequence(model: onnx.ModelProto) -> int:
    """Cut every ``[batch, sequence]`` input of a graph without sequence outputs to the positions the
    batch attends to, in place; returns how many inputs were cut (0: the model is unchanged)."""
    inputs = _sequence_inputs(model.graph)
    if not inputs:
        return 0
    for ahead in (0, 1):
        trimmed = copy.deepcopy(model)
        _slice_inputs(trimmed.graph, inputs, ahead)
        if sort_topologically(trimmed.graph) and same_outputs(model, trimmed):
            model.CopyFrom(trimmed)
            return len(inputs)
    return 0


def cut_inputs(model: onnx.ModelProto) -> int:
    """How many graph inputs :func:`trim_sequence` cut in ``model`` (its slices survive quantization:
    the exporter reads this off the graph it ships, not off the graph it started from)."""
    return sum(n.op_type == "Slice" and n.name.startswith(f"{_PREFIX}/") for n in model.graph.node)


def _dim_params(value: Any) -> list[str]:
    """The dims of a graph input or output as written: the dim_param, or '' for a fixed or unnamed dim."""
    return [d.dim_param for d in value.type.tensor_type.shape.dim]


def _sequence_inputs(graph: Any) -> list[str]:
    """Names of the inputs shaped ``[batch, sequence]`` with the mask's sequence dim; empty when there is
    no ``attention_mask`` with a named sequence dim or some output has that dim."""
    dims = {i.name: _dim_params(i) for i in graph.input}
    mask = dims.get(MASK_INPUT, [])
    if len(mask) != 2 or not mask[1]:
        return []
    if any(mask[1] in _dim_params(o) for o in graph.output):
        return []  # a sequence output: its padded rows are part of the result
    return [name for name, d in dims.items() if len(d) == 2 and d[1] == mask[1]]


def _slice_inputs(graph: Any, names: list[str], ahead: int) -> None:
    """Make every reader of ``names`` read the input's first ``L + ahead`` positions instead."""
    sliced = {name: f"{_PREFIX}/{name}" for name in names}
    for node in graph.node:
        node.input[:] = [sliced.get(name, name) for name in node.input]
    length = attended_length(graph, _PREFIX)
    if ahead:
        graph.node.append(helper.make_node("Add", [length, f"{_PREFIX}/one"], [f"{_PREFIX}/ahead"],
                                           name=f"{_PREFIX}/ahead"))
        length = f"{_PREFIX}/ahead"
    for name, new in sliced.items():
        graph.node.append(helper.make_node("Slice", [name, f"{_PREFIX}/zero", length, f"{_PREFIX}/one"], [new],
                                           name=new))
    # shapes recorded along the way name the full sequence; the runtime infers the cut ones itself
    del graph.value_info[:]
