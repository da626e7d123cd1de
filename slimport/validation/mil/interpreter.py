"""Run an ML Program on Linux: PyMIL ops from coremltools, NumPy kernels from :mod:`.ops`.

``const`` values come from the loaded program, ``constexpr_*`` weight ops are materialized with
coremltools' own ``materialized_val_inference`` (bit-identical to ``decompress_weights``), and every
other op runs through the registry. Each result is stored in the op's declared output dtype, so an
fp16 program keeps fp16 values between ops: an overflow becomes ``inf`` where it would on device.
This checks the converted graph's semantics, not Apple's kernels (accumulation order, ANE fusion).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slimport.errors import SlimportError
from slimport.validation.mil import (
    ops_decoder,  # noqa: F401 - registers its ops
    program,
)
from slimport.validation.mil.ops import REGISTRY


def _nptype(var: Any) -> Any:
    from coremltools.converters.mil.mil import types

    dtype = var.dtype
    try:
        return types.nptype_from_builtin(dtype)
    except (KeyError, TypeError):
        return None


class MilInterpreter:
    """Evaluates the ``main`` function of a saved ML Program op by op."""

    def __init__(self, path: Path) -> None:
        self.spec, self.main = program.load(path)
        self.input_names = list(self.main.inputs)
        self.output_names = [v.name for v in self.main.outputs]
        self._constants: dict[str, Any] = {}
        self._plan: list[tuple[Any, Any]] = []
        unknown = set()
        for op in self.main.operations:
            if op.op_type == "const":
                self._constants[op.outputs[0].name] = op.outputs[0].val
            elif op.op_type.startswith("constexpr_"):
                program.bind_inputs(op, self._constants)
                self._constants[op.outputs[0].name] = self._materialize(op)
            elif op.op_type in REGISTRY:
                self._plan.append((op, REGISTRY[op.op_type](op.op_type)))
            else:
                unknown.add(op.op_type)
        if unknown:
            raise SlimportError(f"cannot validate this Core ML program on Linux: no evaluator for op(s) "
                                f"{', '.join(sorted(unknown))} (slimport/validation/mil/ops.py)")

    @staticmethod
    def _materialize(op: Any) -> Any:
        """The decompressed weight of a ``constexpr_*`` op (iOS18 ops name the method differently)."""
        fn = getattr(op, "materialized_val_inference", None)
        return fn() if fn is not None else op.value_inference()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on ``feeds`` (cast to the program's input dtypes); returns outputs by name."""
        env: dict[str, Any] = dict(self._constants)
        for name, var in self.main.inputs.items():
            env[name] = np.asarray(feeds[name]).astype(_nptype(var) or np.float32)

        def value(v: Any) -> Any:
            if isinstance(v, list | tuple):
                return [value(x) for x in v]
            return env[v.name] if v.name in env else v.val

        for op, kernel in self._plan:
            params = {k: value(v) for k, v in op.inputs.items()}
            try:
                result = kernel.run(**params)
            except Exception as exc:
                raise SlimportError(f"Core ML op {op.op_type} '{op.name}' failed in the Linux evaluator: "
                                    f"{type(exc).__name__}: {str(exc)[:200]}") from exc
            results = result if isinstance(result, list | tuple) else [result]
            for out, val in zip(op.outputs, results, strict=True):
                dtype = _nptype(out)
                arr = np.asarray(val)
                with np.errstate(over="ignore", invalid="ignore"):
                    env[out.name] = arr.astype(dtype) if dtype is not None and arr.dtype != dtype else arr
        return {name: env[name] for name in self.output_names}
