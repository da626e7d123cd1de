"""ONNX export of decoder language models with an explicit KV cache.

optimum's ``text-generation-with-past`` export gives one ``model.onnx`` that serves both prefill
(past length 0) and decode steps (one token, the previous ``present.*`` fed back as
``past_key_values.*``); the layout ONNX Runtime GenAI and Transformers.js also load. Then the
precision recipe:

* ``fp32``; ``fp16`` (weights and compute, fp32 inputs/outputs and cache kept at the graph edge);
* ``int8`` dynamic (``quantize_dynamic``, per channel);
* ``int4`` weight-only: ONNX Runtime's ``MatMulNBits`` (``MatMulNBitsQuantizer``), symmetric, block
  size from the recipe's ``block_size`` (default 32), int8 activations inside the kernel
  (``accuracy_level`` 4); the token embedding too (``GatherBlockQuantized``).

Encoders use :func:`quantize_int4` too (``OnnxExporter``).

Ids are int32 when the profile says so (a Cast to int64 is inserted after each input).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import onnx

from slimport.errors import InputError, SlimportError, first_line
from slimport.exporters import onnx_graph
from slimport.exporters.base import Artifact, ExportContext
from slimport.models.loader import ModelSource
from slimport.targets.schema import Target

GENERATION_CONFIG = "generation_config.json"


def export_fp32(source: ModelSource, target: Target, context: ExportContext, opset: int) -> Path:
    """optimum's decoder export with the cache, the profile's id dtype; returns the fp32 model path."""
    from optimum.exporters.onnx import onnx_export_from_model

    raw = context.workdir / "optimum-decoder"
    try:
        onnx_export_from_model(source.torch_model, raw, task="text-generation-with-past", opset=opset,
                               do_validation=False)
    except (ValueError, KeyError, RuntimeError, NotImplementedError, TypeError) as exc:
        raise InputError(f"optimum cannot export {source.family} for text generation: {first_line(exc)}") from exc
    model = onnx.load(str(raw / "model.onnx"))
    if target.profile.input_dtype == "int32":
        onnx_graph.use_int32_inputs(model)
    fp32 = context.workdir / "fp32" / "model.onnx"
    fp32.parent.mkdir()
    onnx_graph.save(model, fp32)
    if (raw / GENERATION_CONFIG).is_file():
        shutil.copy(raw / GENERATION_CONFIG, fp32.parent / GENERATION_CONFIG)
    shutil.rmtree(raw, ignore_errors=True)
    return fp32


def quantize_int4(fp32: Path, out: Path, block_size: int, decoder: bool = False) -> None:
    """Weight-only 4-bit ``MatMulNBits`` for every MatMul with a constant weight.

    ``decoder``: also the token-embedding ``Gather`` (``GatherBlockQuantized``; the table is most of a
    small LM's size: 131 of 215 MB for a random Phi 1024 x 8 with a 32k vocabulary), and
    ``accuracy_level`` 4 (int8 activations inside MatMulNBits: 1.3x the decode tokens/s of fp32
    activations on this host's CPU, same agreement). Encoders keep both off (MiniLM's 4-bit parity is
    already at the gate)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    out.parent.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    if decoder:
        extra = {"accuracy_level": 4, "op_types_to_quantize": ("MatMul", "Gather"),
                 "quant_axes": (("MatMul", 0), ("Gather", 1))}
    try:
        quantizer = MatMulNBitsQuantizer(onnx.load(str(fp32)), bits=4, block_size=block_size, is_symmetric=True,
                                         **extra)
        quantizer.process()
    except (ValueError, RuntimeError, KeyError) as exc:
        raise SlimportError(f"onnxruntime int4 quantization failed: {first_line(exc)}") from exc
    onnx_graph.save(quantizer.model.model, out)


def export_decoder(exporter: Any, source: ModelSource, target: Target, context: ExportContext) -> Artifact:
    """Build the decoder artifact for ``target`` (``exporter`` is the :class:`OnnxExporter`, whose
    fp16 conversion and ORT quantization are shared)."""
    from slimport.exporters.onnx import OPSET

    if target.options.get("ort_format"):
        raise InputError(f"target {target.name}: the .ort format is not built for decoders yet; use an onnx target")
    fp32 = export_fp32(source, target, context, int(target.options.get("opset", OPSET)))
    p = target.precision
    if p.dtype == "fp32":
        path = fp32
    else:
        path = context.workdir / p.dtype / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        if p.dtype == "fp16":
            exporter._to_fp16(fp32, path)  # noqa: SLF001 - shared with the encoder path
        elif p.dtype == "int8" and p.mode == "dynamic":
            exporter._quantize(fp32, path, target, [], [])  # noqa: SLF001
        elif p.dtype == "int4":
            quantize_int4(fp32, path, p.block_size, decoder=True)
        else:
            raise InputError(f"target {target.name}: decoders take fp32, fp16, int8 dynamic or int4 weight-only")
        if (fp32.parent / GENERATION_CONFIG).is_file():
            shutil.copy(fp32.parent / GENERATION_CONFIG, path.parent / GENERATION_CONFIG)
    model = onnx.load(str(path), load_external_data=False)
    extra = [GENERATION_CONFIG] if (path.parent / GENERATION_CONFIG).is_file() else []
    artifact = Artifact(directory=path.parent, model_file=path.name, format="onnx",
                        inputs=onnx_graph.tensor_specs(model.graph.input),
                        outputs=onnx_graph.tensor_specs(model.graph.output), extra_files=extra)
    quantized_ops = ("MatMulNBits", "GatherBlockQuantized", "MatMulInteger", "DynamicQuantizeLinear")
    artifact.precision = {"recipe": p.label, "weights": onnx_graph.weight_dtypes(model),
                          "operators": {k: v for k, v in onnx_graph.op_counts(model).items()
                                        if k.split(":")[-1] in quantized_ops},
                          "kv_cache": {"inputs": sum(i.name.startswith("past_key_values.") for i in model.graph.input),
                                       "layout": "[batch, kv_heads, past, head_dim]"}}
    artifact.notes.append("decoder: one model for prefill (past length 0) and decode steps; feed present.* back as "
                          "past_key_values.*")
    return artifact.move_to(context.output_dir)
