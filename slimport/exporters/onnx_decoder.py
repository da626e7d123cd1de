"""ONNX export of decoder language models with an explicit KV cache.

optimum's ``text-generation-with-past`` export gives one ``model.onnx`` that serves both prefill
(past length 0) and decode steps (one token, the previous ``present.*`` fed back as
``past_key_values.*``); the layout ONNX Runtime GenAI and Transformers.js also load. ORT's
transformer optimizer then fuses norms, GELU and rotary embeddings (:func:`fuse_decoder`). Then the
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

import json
import shutil
from pathlib import Path
from typing import Any

import onnx

from slimport.errors import InputError, SlimportError, first_line
from slimport.exporters import onnx_graph
from slimport.exporters.base import Artifact, ExportContext
from slimport.models.cached_decoder import cache_geometry, model_positions
from slimport.models.loader import ModelSource
from slimport.targets.schema import Target

GENERATION_CONFIG = "generation_config.json"
GENAI_CONFIG = "genai_config.json"
#: slimport family -> ONNX Runtime GenAI model type. GenAI's own "gpt2" type expects the combined
#: ``past_%d`` cache of its GPT-2 exports; optimum's separate key/value layout is read by its generic
#: decoder-only path, so GPT-2 is declared with the Llama type (same tokens, tests/test_decoders.py).
GENAI_TYPES = {"gpt2": "llama", "llama": "llama", "phi": "phi", "phi3": "phi3"}


def genai_config(source: ModelSource, model: onnx.ModelProto, filename: str) -> dict[str, Any]:
    """ONNX Runtime GenAI's ``genai_config.json`` for the exported graph, so the folder also loads with
    ``onnxruntime_genai.Model`` (greedy search by default, the model's own context length)."""
    config = source.config
    generation = getattr(source.torch_model, "generation_config", None)
    geometry = cache_geometry(config)
    context = model_positions(config, 2048)
    eos = getattr(generation, "eos_token_id", None) or config.eos_token_id or 0
    eos = eos[0] if isinstance(eos, list) else eos
    bos = getattr(generation, "bos_token_id", None) or config.bos_token_id or eos
    pad = getattr(generation, "pad_token_id", None) or getattr(config, "pad_token_id", None) or eos
    names = {i.name for i in model.graph.input}
    inputs = {"input_ids": "input_ids", "past_key_names": "past_key_values.%d.key",
              "past_value_names": "past_key_values.%d.value"}
    inputs.update({n: n for n in ("attention_mask", "position_ids") if n in names})
    return {
        "model": {
            "bos_token_id": int(bos), "eos_token_id": int(eos), "pad_token_id": int(pad),
            "context_length": int(context), "type": GENAI_TYPES[source.family], "vocab_size": int(config.vocab_size),
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": filename, "head_size": geometry["head_dim"], "hidden_size": geometry["hidden"],
                "num_attention_heads": geometry["heads"], "num_hidden_layers": geometry["layers"],
                "num_key_value_heads": geometry["kv_heads"], "inputs": inputs,
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                            "present_value_names": "present.%d.value"},
            },
        },
        "search": {"diversity_penalty": 0.0, "do_sample": False, "early_stopping": True, "length_penalty": 1.0,
                   "max_length": int(context), "min_length": 0, "no_repeat_ngram_size": 0, "num_beams": 1,
                   "num_return_sequences": 1, "past_present_share_buffer": False, "repetition_penalty": 1.0,
                   "temperature": 1.0, "top_k": 1, "top_p": 1.0},
    }


def export_fp32(source: ModelSource, target: Target, context: ExportContext,
                opset: int) -> tuple[Path, dict[str, int]]:
    """optimum's decoder export with the cache, fused, with the profile's id dtype; returns the fp32 model
    path and the fused operator counts."""
    from optimum.exporters.onnx import onnx_export_from_model

    raw = context.workdir / "optimum-decoder"
    try:
        onnx_export_from_model(source.torch_model, raw, task="text-generation-with-past", opset=opset,
                               do_validation=False)
    except (ValueError, KeyError, RuntimeError, NotImplementedError, TypeError) as exc:
        raise InputError(f"optimum cannot export {source.family} for text generation: {first_line(exc)}") from exc
    model, fused = fuse_decoder(raw / "model.onnx", source, context)
    if target.profile.input_dtype == "int32":
        onnx_graph.use_int32_inputs(model)
    fp32 = context.workdir / "fp32" / "model.onnx"
    fp32.parent.mkdir()
    onnx_graph.save(model, fp32)
    if (raw / GENERATION_CONFIG).is_file():
        shutil.copy(raw / GENERATION_CONFIG, fp32.parent / GENERATION_CONFIG)
    shutil.rmtree(raw, ignore_errors=True)
    return fp32, fused


def fuse_decoder(path: Path, source: ModelSource, context: ExportContext) -> tuple[onnx.ModelProto, dict[str, int]]:
    """ONNX Runtime's transformer optimizer on the decoder graph (``model_type`` gpt2, whose passes also
    match the Llama, Phi and Phi-3 layouts): GELU and rotary embeddings become single kernels. Norms are
    not fused with their residual Adds: ORT's CPU ``SkipLayerNormalization`` kernels are scalar loops
    (see :func:`onnx_rewrites.residual_adds_as_sum`); ONNX Runtime still fuses RMSNorm at session load.
    Attention is not fused, so every weight stays a MatMul for int8/int4 quantization; the ``fuse``
    target option is about encoder graphs. Graphs past
    :data:`onnx_graph.EXTERNAL_DATA_BYTES` are kept plain (the optimizer's copies took a phi-1.5-size
    export from 13.4 GB to past 22 GB of RAM), and so is a graph the optimizer raises on; the log
    says so."""
    from google.protobuf.message import EncodeError
    from onnxruntime.transformers.optimizer import optimize_model

    size = sum(f.stat().st_size for f in path.parent.iterdir() if f.is_file())
    if size > onnx_graph.EXTERNAL_DATA_BYTES:
        context.log(f"decoder fusion skipped for a {size / 1e9:.1f} GB graph, the plain graph is kept: ORT's "
                    "optimizer holds extra copies (a 1.4B-parameter model went past 22 GB)")
        return onnx.load(str(path)), {}
    geometry = cache_geometry(source.config)
    try:
        optimized = optimize_model(str(path), model_type="gpt2", num_heads=geometry["heads"],
                                   hidden_size=geometry["hidden"], opt_level=0,
                                   optimization_options=onnx_graph.fusion_options("gpt2", False))
    except (ValueError, RuntimeError, KeyError, AssertionError, IndexError, TypeError, EncodeError) as exc:
        context.log(f"decoder fusion skipped, the plain graph is kept: {first_line(exc)}")
        return onnx.load(str(path)), {}
    fused = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    return onnx_graph.ensure_contrib_opset(optimized.model), fused


def quantize_int4(fp32: Path, out: Path, block_size: int, decoder: bool = False) -> None:
    """Weight-only 4-bit ``MatMulNBits`` for every MatMul with a constant weight.

    ``decoder``: also the token-embedding ``Gather`` (``GatherBlockQuantized``; the table is most of a
    small LM's size: 131 of 215 MB for a random Phi 1024 x 8 with a 32k vocabulary), and
    ``accuracy_level`` 4 (int8 activations inside MatMulNBits; with the embedding, 1.52x the decode
    tokens/s of optimum + ORT's default int4 in ``benchmarks/decoder_vs_reference.py``). Encoders keep
    both off (MiniLM's 4-bit parity is already at the gate)."""
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
    fp32, fused = export_fp32(source, target, context, int(target.options.get("opset", OPSET)))
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
    (path.parent / GENAI_CONFIG).write_text(json.dumps(genai_config(source, model, path.name), indent=2),
                                            encoding="utf-8")
    extra = [GENAI_CONFIG] + ([GENERATION_CONFIG] if (path.parent / GENERATION_CONFIG).is_file() else [])
    extra += onnx_graph.external_files(model)  # weights past 2 GB live beside the graph
    artifact = Artifact(directory=path.parent, model_file=path.name, format="onnx",
                        inputs=onnx_graph.tensor_specs(model.graph.input),
                        outputs=onnx_graph.tensor_specs(model.graph.output), extra_files=extra)
    quantized_ops = ("MatMulNBits", "GatherBlockQuantized", "MatMulInteger", "DynamicQuantizeLinear")
    artifact.precision = {"recipe": p.label, "fused_ops": fused, "weights": onnx_graph.weight_dtypes(model),
                          "operators": {k: v for k, v in onnx_graph.op_counts(model).items()
                                        if k.split(":")[-1] in quantized_ops},
                          "kv_cache": {"inputs": sum(i.name.startswith("past_key_values.") for i in model.graph.input),
                                       "layout": "[batch, kv_heads, past, head_dim]"}}
    artifact.notes.append("decoder: one model for prefill (past length 0) and decode steps; feed present.* back as "
                          "past_key_values.*")
    artifact.notes.append("decoder: genai_config.json makes the folder an ONNX Runtime GenAI model "
                          "(onnxruntime_genai.Model); its tokenizer wants the tokenizer/ files beside the model")
    return artifact.move_to(context.output_dir)
