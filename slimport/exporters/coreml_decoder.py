"""Core ML export of decoder language models: one ML Program over an explicit fixed KV cache.

``torch.jit.trace`` of :func:`slimport.models.cached_decoder.cached_module` (which builds the 4-D
causal mask itself; the stock ``transformers`` mask builder does not trace under torch 2.13), then
coremltools. ``input_ids``/``input_pos`` are ``[1, T]`` with ``T`` a ``RangeDim`` from 1 to the
prefill length, so the same program serves prefill chunks and single-token decode steps;
``k_cache``/``v_cache`` have the fixed ``[layers, 1, kv_heads, context, head_dim]`` shape. Prefill
length and context are stored in the package metadata (``slimport.prefill_len``,
``slimport.context``) for runners and apps.

Weights: ``fp32``/``fp16`` programs; ``int8`` per channel; ``int4`` per block of the recipe's
``block_size`` (``int4_method = "palette"`` for k-means palettes instead). Decoders get no layer
search: the gate judges the one artifact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slimport.errors import InputError, first_line
from slimport.exporters import coreml_weights
from slimport.exporters.base import Artifact, ExportContext, TensorSpec
from slimport.models.cached_decoder import (
    INPUTS,
    OUTPUTS,
    cache_shape,
    cached_module,
    describe_fixed_cache,
    fixed_shape,
    sample_call,
)
from slimport.models.loader import ModelSource
from slimport.targets.schema import Target

#: tokens in the example call that is traced (any value from 2 keeps the sequence axis symbolic)
TRACE_TOKENS = 8


def _traced(source: ModelSource, slots: int) -> Any:
    import torch

    from slimport.exporters.coreml import as_positional

    module = as_positional(cached_module(source.torch_model, slots), list(INPUTS), list(OUTPUTS))
    example = sample_call(source.config, TRACE_TOKENS, slots)
    with torch.no_grad():
        return torch.jit.trace(module, tuple(example[n] for n in INPUTS), strict=False)


def export_decoder(exporter: Any, source: ModelSource, target: Target, context: ExportContext, deployment: str,
                   units: str) -> tuple[Artifact, list[dict[str, Any]]]:
    """Build the decoder ``.mlpackage`` in the work folder (``exporter`` is the :class:`CoremlExporter`,
    whose ML Program build and save are shared); returns it and the fp16 constant repairs."""
    from slimport.exporters.coreml import quiet_coremltools, to_mlprogram

    quiet_coremltools()
    import coremltools as ct

    p = target.precision
    prefill_len, slots = fixed_shape(source.config, target.profile)
    tokens = ct.RangeDim(lower_bound=1, upper_bound=prefill_len, default=1)
    shape = cache_shape(source.config, slots)
    inputs = [ct.TensorType(name="input_ids", shape=(1, tokens), dtype=np.int32),
              ct.TensorType(name="input_pos", shape=(1, tokens), dtype=np.int32),
              ct.TensorType(name="k_cache", shape=shape, dtype=np.float32),
              ct.TensorType(name="v_cache", shape=shape, dtype=np.float32)]
    try:
        program = ct.convert(_traced(source, slots), inputs=inputs, outputs=[ct.TensorType(name=n) for n in OUTPUTS],
                             convert_to="milinternal", compute_precision=ct.precision.FLOAT32,
                             minimum_deployment_target=getattr(ct.target, deployment))
    except (ValueError, RuntimeError, TypeError, NotImplementedError, AssertionError, KeyError, IndexError) as exc:
        raise InputError(f"coremltools cannot convert the {source.family} decoder: {first_line(exc)}") from exc
    mlmodel, repairs = to_mlprogram(program, source, target, deployment, units)
    mlmodel.user_defined_metadata.update({"slimport.prefill_len": str(prefill_len), "slimport.context": str(slots)})
    if p.dtype in ("int8", "int4"):
        method = "palette" if target.options.get("int4_method") == "palette" else "linear"
        mlmodel = coreml_weights.compress(mlmodel, p.dtype, p.per_channel, method=method, block=p.block_size)
    artifact = exporter._save(mlmodel, context.workdir / "coreml", target)  # noqa: SLF001
    # ML Program outputs carry no shapes; apps read the vocabulary and cache rows from the contract
    tokens_dim = f"1..{prefill_len}"
    layers, _, kv_heads, _, head_dim = shape
    rows: list[int | str] = [layers, 1, kv_heads, tokens_dim, head_dim]
    artifact.outputs = [TensorSpec("logits", "float32", [1, tokens_dim, int(source.config.vocab_size)]),
                        TensorSpec("k_new", "float32", rows), TensorSpec("v_new", "float32", list(rows))]
    describe_fixed_cache(artifact, source, target, prefill_len, slots,
                         f"one program for prefill chunks of up to {prefill_len} tokens and decode steps")
    return artifact, repairs
