"""A graph's index for the ONNX rewrites: who writes and who reads each tensor, the constants behind
a name, attribute readers, the op classes the shape-changing rewrites move through, and shapes
from ONNX Runtime's symbolic shape inference.

Shared by :mod:`onnx_rewrites` (exact kernel-choice rewrites) and the shape-changing rewrites
:mod:`onnx_head_rows`, :mod:`onnx_layout` and :mod:`onnx_key_trim`. Nothing here changes a graph
but :meth:`Constants.add` (a new initializer) and :func:`remove_unused_nodes`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

#: operations that compute each element from the same element of their (broadcast) inputs
ELEMENTWISE_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Sum", "Pow", "Max", "Min", "Where", "Equal", "Not", "Relu", "Erf", "Tanh",
    "Sigmoid", "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Cast", "Identity", "Clip", "Softplus", "Gelu",
    "FastGelu", "BiasGelu", "QuickGelu"})
#: operations that normalise over the axes from their ``axis`` attribute (default -1) to the last
NORM_OPS = frozenset({"LayerNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization",
                      "SkipSimplifiedLayerNormalization", "Softmax", "LogSoftmax"})


def int_attr(node: Any, name: str, default: int) -> int:
    """The integer attribute ``name`` of ``node``, else ``default``."""
    return next((a.i for a in node.attribute if a.name == name), default)


def perm_of(node: Any) -> list[int] | None:
    """A ``Transpose``'s ``perm`` attribute, else None."""
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), None)



def producer_map(graph: Any) -> dict[str, Any]:
    """Tensor name -> the node that writes it."""
    return {o: n for n in graph.node for o in n.output}



def inferred_dims(model: onnx.ModelProto, partial: bool = False,
                  guess_rank: bool = False) -> dict[str, list[Any]] | None:
    """Tensor name -> dims (an int, a symbolic name, or None when unknown) from ONNX Runtime's
    ``SymbolicShapeInference``, initializers included; tensors of unknown rank are left out. None
    when the inference fails (an optional speed rewrite must never fail an export), or stops short
    of some tensor unless ``partial``. ``guess_rank``: an op it cannot infer gets its first input's
    rank (right for batched products such as ``FusedMatMul`` with ``transBatch``).

    The inference is driven step by step rather than through ``SymbolicShapeInference.infer_shapes``,
    which on an incomplete result saves ``sym_shape_infer_temp.onnx`` and its weights into the
    current directory (the user's) before raising."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    try:
        inference = SymbolicShapeInference(2**31 - 1, True, guess_rank, 0)
        inference._preprocess(model)  # noqa: SLF001 - see above
        complete = False
        while inference.run_:
            complete = inference._infer_impl()  # noqa: SLF001
        inference._update_output_from_vi()  # noqa: SLF001
        inferred = inference.out_mp_.graph
    except Exception:  # noqa: BLE001 - see the docstring
        return None
    if not complete and not partial:
        return None
    dims: dict[str, list[Any]] = {i.name: list(i.dims) for i in inferred.initializer}
    for v in [*inferred.value_info, *inferred.input, *inferred.output]:
        if v.type.tensor_type.HasField("shape"):
            dims[v.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                            for d in v.type.tensor_type.shape.dim]
    return dims



def remove_unused_nodes(model: onnx.ModelProto) -> int:
    """Drop nodes none of whose outputs reach a graph output (``graph.node`` must be in topological
    order), then initializers nothing reads; returns how many nodes went."""
    graph = model.graph
    needed = {o.name for o in graph.output} | {i.name for i in graph.input}  # inputs may have defaults
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    removed = len(graph.node) - len(keep)
    if removed:
        del graph.node[:]
        graph.node.extend(reversed(keep))
    if any(i.name not in needed for i in graph.initializer):
        kept_inits = [i for i in graph.initializer if i.name in needed]
        del graph.initializer[:]
        graph.initializer.extend(kept_inits)
    return removed



class Constants:
    """Constants of a graph: initializers and ``Constant`` nodes, also seen through ``Identity`` nodes
    (exporters share equal tensors that way)."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.inits = {i.name: i for i in graph.initializer}
        # Constant and Identity nodes are never rewritten, so this index stays valid
        self.sources = {n.output[0]: n for n in graph.node if n.op_type in ("Constant", "Identity")}

    def _origin(self, name: str) -> Any:
        """The initializer or ``Constant`` node behind ``name`` (through Identity nodes), else None."""
        for _ in range(8):
            if name in self.inits:
                return self.inits[name]
            node = self.sources.get(name)
            if node is None or node.op_type == "Constant":
                return node
            name = node.input[0]
        return None

    def is_constant(self, name: str) -> bool:
        """Whether ``name`` is a constant (see :meth:`value`), without reading it."""
        return self._origin(name) is not None

    def value(self, name: str) -> np.ndarray | None:
        """The constant behind ``name`` (an initializer or ``Constant``, possibly through Identity
        nodes), else None."""
        origin = self._origin(name)
        if origin is None:
            return None
        if isinstance(origin, onnx.TensorProto):
            return numpy_helper.to_array(origin)
        value = next((a for a in origin.attribute if a.name == "value"), None)
        return numpy_helper.to_array(value.t) if value is not None else None

    def operand(self, node: Any, op: str) -> tuple[int, np.ndarray] | None:
        """``(input slot, value)`` of the single constant input of ``node`` if it is an ``op``."""
        if node is None or node.op_type != op:
            return None
        found = [(slot, v) for slot, name in enumerate(node.input) if (v := self.value(name)) is not None]
        return found[0] if len(found) == 1 else None

    def add(self, name: str, value: np.ndarray) -> str:
        """Append a new fp32 initializer ``name`` holding ``value``; returns ``name``."""
        return self.add_array(name, value.astype(np.float32))

    def add_array(self, name: str, value: np.ndarray) -> str:
        """Append a new initializer ``name`` holding ``value`` in its own dtype; returns ``name``."""
        tensor = numpy_helper.from_array(value, name)
        self.graph.initializer.append(tensor)
        self.inits[name] = tensor
        return name


def reader_map(graph: Any) -> dict[str, list[Any]]:
    """Tensor name -> the nodes that read it (``None`` for a graph output)."""
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    for out in graph.output:
        readers.setdefault(out.name, []).append(None)
    return readers
