"""ML Program ops that decoder programs add to the encoder set in :mod:`slimport.validation.mil.ops`
(one small class per op, registered in the same registry; imported by the interpreter)."""

from __future__ import annotations

from typing import Any

import numpy as np

from slimport.validation.mil.ops import MilOp, register


@register("fill_like")
class FillLike(MilOp):
    """``fill_like(ref_tensor, value)``: a tensor of ``ref_tensor``'s shape filled with ``value``."""

    def run(self, ref_tensor: Any, value: Any = 0.0, **_: Any) -> Any:
        value = np.asarray(value)
        return np.full(np.shape(ref_tensor), value, dtype=value.dtype)
