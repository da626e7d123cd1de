"""Core ML weight compression: int8 per channel, int4 per block, and int4 with sensitive layers at int8.

coremltools' ``linear_quantize_weights`` compresses ``const`` weights; ``OptimizationConfig``'s
``op_name_configs`` overrides the recipe per weight, which is how the shared selection
(:func:`slimport.precision.selection.select_recipe`) keeps the most sensitive Linear layers at
int8 in a 4-bit program. Torch Linear weights are matched to the program's ``const`` weights by
value (fp16 rounding allowed), so the match survives the converter's renaming.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slimport.errors import SlimportError, first_line

INT4_BLOCK = 32
WEIGHT_THRESHOLD = 2048  # coremltools' default: smaller tensors (biases, LayerNorm) stay float


def _config(dtype: str, per_channel: bool = True) -> Any:
    import coremltools.optimize.coreml as cto

    if dtype == "int4":
        return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int4", granularity="per_block",
                                           block_size=INT4_BLOCK, weight_threshold=WEIGHT_THRESHOLD)
    return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                       granularity="per_channel" if per_channel else "per_tensor",
                                       weight_threshold=WEIGHT_THRESHOLD)


def compress(mlmodel: Any, dtype: str, per_channel: bool = True, keep_int8: list[str] | None = None) -> Any:
    """``linear_quantize_weights`` at ``dtype`` (int8 or int4), with the ``keep_int8`` consts at int8."""
    import coremltools.optimize.coreml as cto

    overrides = {name: _config("int8") for name in keep_int8 or []}
    config = cto.OptimizationConfig(global_config=_config(dtype, per_channel), op_name_configs=overrides)
    try:
        return cto.linear_quantize_weights(mlmodel, config)
    except (ValueError, RuntimeError, NotImplementedError) as exc:
        raise SlimportError(f"coremltools weight quantization failed: {first_line(exc)}") from exc


def map_linear_to_consts(mlmodel: Any, weights: dict[str, np.ndarray]) -> dict[str, str]:
    """Torch module name -> name of the ``const`` op holding its 2-D weight (Linear weight or embedding
    table) in ``mlmodel``'s program."""
    program = mlmodel._mil_program  # noqa: SLF001 - coremltools keeps the MIL program on the model it returns
    if program is None:
        raise SlimportError("the converted Core ML model carries no MIL program to map layers on")
    consts: dict[tuple[int, ...], list[tuple[str, np.ndarray]]] = {}
    for op in program.functions["main"].operations:
        value = op.outputs[0].val if op.op_type == "const" else None
        if isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind == "f":
            consts.setdefault(value.shape, []).append((op.name, value))
    mapping = {}
    for name, weight in weights.items():
        scale = float(np.abs(weight).max()) or 1.0
        for const_name, value in consts.get(weight.shape, []):
            if np.allclose(value.astype(np.float32), weight, rtol=2e-3, atol=2e-3 * scale):
                mapping[name] = const_name
                break
    return mapping
