"""Calibration ranges for attention contexts that hold for any text, not only the calibration texts.

An attention's context (``softmax(Q.K) . V``, the input of the attention's output Linear) is, for
every query row and head, a convex combination of the value rows: the softmax weights are >= 0 and
sum to 1. So every context element lies within the range of the values. Calibration on the context
itself only sees the attention patterns of the calibration texts, and a text whose attention
concentrates on one token has a context close to that token's value row, outside that range. The real
all-MiniLM-L6-v2 at ``onnx-int8-static`` clipped ``'OK, thanks!'`` at 2.3x the calibrated maximum of
layer 4's context (pooled cosine 0.980); with the value range as the context's range, 0.992.

Each exporter describes its graph as a list of :class:`Op` (its op types mapped to the few kinds that
matter here) and gives the pairs :func:`context_value_pairs` finds to its quantizer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Op:
    """One graph node reduced to what the search needs: its kind and tensor names."""

    #: ``softmax``; ``matmul`` (two activations); ``linear`` (activation x weight, the activation first);
    #: ``move`` (moves or relabels elements without changing values: transpose, reshape, identity);
    #: ``pass`` (may sit between a softmax and the matmul that applies it: cast, dropout); ``other``
    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def context_value_pairs(ops: list[Op]) -> dict[str, str]:
    """Map each Linear input that is an attention context to the value tensor it averages.

    A context is the output of a ``matmul`` whose first operand comes from a ``softmax`` (through
    ``pass`` and ``move`` ops), followed through ``move`` ops as long as each has a single reader, up
    to a tensor that only ``linear`` ops read, as their activation. Its value tensor is the matmul's
    second operand followed back through ``move`` ops to where it was computed (so a quantizer that
    only calibrated that tensor has its range).
    """
    producers = {out: op for op in ops for out in op.outputs}
    readers: dict[str, list[Op]] = {}
    for op in ops:
        for name in op.inputs:
            readers.setdefault(name, []).append(op)

    def origin(name: str, kinds: tuple[str, ...]) -> tuple[str, Op | None]:
        op = producers.get(name)
        while op is not None and op.kind in kinds and op.inputs:
            name = op.inputs[0]
            op = producers.get(name)
        return name, op

    pairs: dict[str, str] = {}
    for op in ops:
        if op.kind != "matmul" or len(op.inputs) < 2:
            continue
        _, weights_from = origin(op.inputs[0], ("pass", "move"))
        if weights_from is None or weights_from.kind != "softmax":
            continue
        tensor = op.outputs[0]
        while len(readers.get(tensor, [])) == 1 and readers[tensor][0].kind == "move" \
                and readers[tensor][0].inputs[0] == tensor:
            tensor = readers[tensor][0].outputs[0]
        linears = readers.get(tensor, [])
        if linears and all(r.kind == "linear" and r.inputs[0] == tensor for r in linears):
            pairs[tensor] = origin(op.inputs[1], ("move",))[0]
    return pairs
