"""Core ML weight compression: int8 per channel, 4-bit (linear per block, or k-means palettization per
grouped channel), and 4-bit with sensitive layers at int8.

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
PALETTE_GROUP = 16  # output channels sharing one 16-entry look-up table (per_grouped_channel, iOS 18)
INT4_METHODS = ("linear", "palette")
WEIGHT_THRESHOLD = 2048  # coremltools' default: smaller tensors (biases, LayerNorm) stay float


def _config(dtype: str, per_channel: bool = True, block: int = INT4_BLOCK) -> Any:
    import coremltools.optimize.coreml as cto

    if dtype == "int4":
        return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int4", granularity="per_block",
                                           block_size=block, weight_threshold=WEIGHT_THRESHOLD)
    return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                       granularity="per_channel" if per_channel else "per_tensor",
                                       weight_threshold=WEIGHT_THRESHOLD)


def _unpalettizable(mlmodel: Any) -> list[str]:
    """Weight consts coremltools would compress but cannot palettize per group of output channels
    (rows not a multiple of :data:`PALETTE_GROUP`, e.g. a 30522-row word-embedding table)."""
    program = mlmodel._mil_program  # noqa: SLF001 - coremltools keeps the MIL program on the model it returns
    names = []
    for op in program.functions["main"].operations:
        value = op.outputs[0].val if op.op_type == "const" else None
        if (isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim >= 2
                and value.size > WEIGHT_THRESHOLD and value.shape[0] % PALETTE_GROUP):
            names.append(op.name)
    return names


def compress(mlmodel: Any, dtype: str, per_channel: bool = True, keep_int8: list[str] | None = None,
             method: str = "linear", block: int = INT4_BLOCK) -> Any:
    """Compress ``mlmodel``'s weights to ``dtype`` (int8, or int4 by ``method``: ``linear`` per block of
    ``block`` weights, or ``palette`` k-means palettization), with the ``keep_int8`` consts at int8.

    Palettization leaves weights it cannot group (see :func:`_unpalettizable`) to linear int4."""
    import coremltools.optimize.coreml as cto

    keep = {name: _config("int8") for name in keep_int8 or []}
    try:
        if dtype == "int4" and method == "palette":
            second = {**{name: _config("int4", block=block) for name in _unpalettizable(mlmodel)}, **keep}
            palette = cto.OpPalettizerConfig(mode="kmeans", nbits=4, granularity="per_grouped_channel",
                                             group_size=PALETTE_GROUP, weight_threshold=WEIGHT_THRESHOLD)
            mlmodel = cto.palettize_weights(mlmodel, cto.OptimizationConfig(
                global_config=palette, op_name_configs=dict.fromkeys(second)))
            if not second:
                return mlmodel
            config = cto.OptimizationConfig(global_config=None, op_name_configs=second)
        else:
            config = cto.OptimizationConfig(global_config=_config(dtype, per_channel, block), op_name_configs=keep)
        return cto.linear_quantize_weights(mlmodel, config)
    except (ValueError, RuntimeError, NotImplementedError) as exc:
        raise SlimportError(f"coremltools weight compression failed: {first_line(exc)}") from exc


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
