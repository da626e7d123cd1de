"""A second evaluation path for ML Programs: coremltools' own PyMIL ``value_inference``, op by op.

Used to cross-check :class:`~slimport.validation.mil.MilInterpreter`. It only works on fixed-shape
programs: with flexible shapes PyMIL's ops read the symbolic type (``shape`` returns ``is0``).
PyMIL computes in the tensors' own dtypes (fp16 stays fp16), so small differences against our
evaluator (fp32 compute, fp16 storage) are expected; NaN/inf and gross errors are not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slimport.errors import SlimportError
from slimport.validation.mil import program


def run_with_pymil(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate the saved program at ``path`` on ``feeds`` with PyMIL's ``value_inference``."""
    _spec, main = program.load(path)
    env: dict[str, Any] = {name: np.asarray(feeds[name]).astype(np.int32) for name in main.inputs}
    for op in main.operations:
        program.bind_inputs(op, env)
        if op.op_type == "const":
            env[op.outputs[0].name] = op.outputs[0].val
            continue
        infer = getattr(op, "materialized_val_inference", None) if op.op_type.startswith("constexpr_") else None
        result = infer() if infer is not None else op.value_inference()
        if result is None:
            raise SlimportError(f"PyMIL cannot evaluate op {op.op_type} '{op.name}' (symbolic shape?)")
        for out, val in zip(op.outputs, result if isinstance(result, list | tuple) else [result], strict=True):
            env[out.name] = val
    return {v.name: np.asarray(env[v.name]) for v in main.outputs}
