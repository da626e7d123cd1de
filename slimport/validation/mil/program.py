"""Load a saved ``.mlpackage`` back into a PyMIL program with coremltools' own proto loader."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from slimport.errors import InputError

_ARRAY_TYPES = {65568: "float32", 65552: "float16", 131104: "int32", 65600: "float64"}


def _quiet() -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("coremltools").setLevel(logging.ERROR)


def load(path: Path) -> tuple[Any, Any]:
    """(spec, PyMIL ``main`` function) of the ML Program saved at ``path``."""
    _quiet()
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto import load as milproto

    path = Path(path)
    try:
        spec = ct.utils.load_spec(str(path))
    except Exception as exc:  # protobuf / package errors have no common type
        raise InputError(f"{path} is not a readable Core ML package: {str(exc).strip()[:200]}") from exc
    if spec.WhichOneof("Type") != "mlProgram":
        raise InputError(f"{path} is not an ML Program (neural-network .mlmodel files are not supported)")
    weights = path / "Data" / "com.apple.CoreML" / "weights"
    program = milproto.load(spec, spec.specificationVersion, str(weights))
    return spec, program.functions["main"]


class _Value:
    """Stands in for a PyMIL symbolic value: ``value_inference`` reads ``var._sym_val.val``."""

    def __init__(self, val: Any) -> None:
        self.val = val


def bind_inputs(op: Any, env: dict[str, Any]) -> None:
    """Give ``op``'s input vars the values computed so far in ``env`` (by var name), so PyMIL's own
    ``value_inference`` / ``materialized_val_inference`` can run on them -- e.g. a ``constexpr_*`` op
    whose table or scale is itself the output of another ``constexpr_*`` op."""
    for param in op.inputs.values():
        for var in param if isinstance(param, list | tuple) else [param]:
            if var.name in env:
                var._sym_val = _Value(env[var.name])  # noqa: SLF001 - PyMIL has no public setter


def _shape(feature: Any) -> list[int | str]:
    array = feature.type.multiArrayType
    ranges = list(array.shapeRange.sizeRanges)
    if ranges:
        return [int(r.lowerBound) if r.lowerBound == r.upperBound else f"{r.lowerBound}..{r.upperBound}"
                for r in ranges]
    if array.enumeratedShapes.shapes:
        return [f"one of {[list(s.shape) for s in array.enumeratedShapes.shapes]}"]
    return [int(d) for d in array.shape]


def _tensor(feature: Any) -> dict[str, Any]:
    dtype = _ARRAY_TYPES.get(feature.type.multiArrayType.dataType, str(feature.type.multiArrayType.dataType))
    return {"name": feature.name, "dtype": dtype, "shape": _shape(feature)}


def _weight_dtype(op: Any, value: np.ndarray) -> str:
    """The MIL element type of a const (4-bit data is held in int8/uint8 arrays), NumPy-style names."""
    from coremltools.converters.mil.mil import types

    try:
        name = types.builtin_to_string(op.outputs[0].dtype)
    except (AttributeError, KeyError, TypeError):
        return str(value.dtype)
    return {"fp16": "float16", "fp32": "float32", "fp64": "float64"}.get(name, name)


def program_info(path: Path) -> dict[str, Any]:
    """Inputs, outputs, op counts, weight element counts by dtype and user metadata of the package at ``path``."""
    spec, main = load(path)
    ops: Counter[str] = Counter()
    weights: Counter[str] = Counter()
    for op in main.operations:
        if op.op_type != "const":
            ops[op.op_type] += 1
            continue
        value = op.outputs[0].val
        if isinstance(value, np.ndarray) and value.size > 1:
            children = {c.op_type for c in op.outputs[0].child_ops}
            compressed = children and all(c.startswith("constexpr_") for c in children)
            weights[f"{_weight_dtype(op, value)}{' (compressed)' if compressed else ''}"] += int(value.size)
    return {
        "inputs": [_tensor(f) for f in spec.description.input],
        "outputs": [_tensor(f) for f in spec.description.output],
        "operators": dict(ops.most_common()),
        "weights": dict(weights),
        "specification_version": int(spec.specificationVersion),
        "metadata": dict(spec.description.metadata.userDefined),
    }
