"""LiteRT export of decoder language models: ``prefill`` and ``decode`` signatures over a fixed KV cache.

litert-torch converts :func:`slimport.models.cached_decoder.cached_module` twice into one
``.tflite``: ``prefill`` takes ``seq_len`` tokens (the profile's prompt length; shorter prompts are
padded, longer ones fed in chunks) and ``decode`` one token. Both read ``k_cache``/``v_cache``
``[layers, 1, kv_heads, context, head_dim]`` (``context`` from the profile, capped at the model's
positions) and return the new rows, which the app writes into its cache. The precision recipe is
the encoder path's ai-edge-quantizer recipe, applied to both signatures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from slimport.errors import InputError, first_line
from slimport.exporters.base import Artifact, ExportContext
from slimport.models.cached_decoder import cached_module, describe_fixed_cache, fixed_shape, sample_call
from slimport.models.loader import ModelSource
from slimport.targets.schema import Target

PREFILL, DECODE = "prefill", "decode"
#: (dtype, mode) recipes for decoders; static int8 would need calibration over both signatures
DECODER_RECIPES = {("fp32", "none"), ("fp16", "none"), ("int8", "dynamic"), ("int8", "weight-only"),
                   ("int4", "dynamic"), ("int4", "weight-only")}


def convert(source: ModelSource, out: Path, prefill_len: int, slots: int) -> Path:
    """The fp32 ``.tflite`` with both signatures."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    import litert_torch

    module = cached_module(source.torch_model, slots)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        edge = (litert_torch.signature(PREFILL, module, sample_kwargs=sample_call(source.config, prefill_len, slots))
                .signature(DECODE, module, sample_kwargs=sample_call(source.config, 1, slots)).convert())
        edge.export(str(out))
    except (ValueError, KeyError, RuntimeError, TypeError, NotImplementedError, AssertionError) as exc:
        raise InputError(f"litert-torch cannot convert the {source.family} decoder: {first_line(exc)}") from exc
    return out


def export_decoder(exporter: Any, source: ModelSource, target: Target, context: ExportContext) -> Artifact:
    """Build the decoder artifact (``exporter`` is the :class:`TfliteExporter`, whose quantizer is shared)."""
    p = target.precision
    if (p.dtype, p.mode) not in DECODER_RECIPES:
        raise InputError(f"target {target.name}: TFLite decoders take fp32, fp16, int8 dynamic/weight-only or int4 "
                         f"dynamic/weight-only, not {p.label}")
    prefill_len, slots = fixed_shape(source.config, target.profile)
    path = convert(source, context.workdir / "fp32" / exporter.model_file, prefill_len, slots)
    if p.dtype != "fp32":
        quantized = context.workdir / p.dtype / exporter.model_file
        exporter._quantize(path, quantized, target, [], [])  # noqa: SLF001 - the encoder path's recipe
        path = quantized
    artifact = exporter._artifact(path, target, PREFILL)  # noqa: SLF001
    artifact.precision = {"signatures": [PREFILL, DECODE], **artifact.precision}
    describe_fixed_cache(artifact, source, target, prefill_len, slots,
                         f"signature '{PREFILL}' takes {prefill_len} tokens (pad the last chunk), '{DECODE}' one")
    return artifact
