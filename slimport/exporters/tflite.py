"""TFLite/LiteRT exporter: litert-torch conversion -> ai-edge-quantizer recipe -> tensor contract.

The torch module is wrapped (:mod:`slimport.models.wrapper`) so the ``.tflite`` takes int32
``input_ids`` / ``attention_mask`` [/ ``token_type_ids``] at the profile's fixed shape and returns
outputs named for the task, under one named signature (``serving_default`` unless the target's
``signature`` option says otherwise). litert-torch 0.10 cannot export dynamic sequence lengths
(shared/design trial), so TFLite targets need a static-shape profile.

Precision recipes (``[precision]``), all applied with ai-edge-quantizer to the fp32 flatbuffer:

* ``fp16``  -- fp16 weights with DEQUANTIZE ops, fp32 compute (half the size, same kernels);
* ``int8`` ``dynamic`` -- int8 weights (per channel when asked), activations quantized per row at
  run time inside FULLY_CONNECTED (``dynamic_wi8_afp32``); embedding tables int8 too;
* ``int8`` ``weight-only`` -- int8 weights with DEQUANTIZE ops, fp32 kernels;
* ``int8`` ``static``  -- int8 weights and calibrated int8 activations on FULLY_CONNECTED, the
  rest in float (quantizing every op wrecked MiniLM in the trial: cosine 0.45);
* ``int4`` ``dynamic`` / ``weight-only`` -- FULLY_CONNECTED weights int4 per block of ``block_size``
  (32, 64 or 128) with activations quantized at run time (XNNPACK's blockwise int4 kernels) or
  dequantized weights; embedding tables int8.

Decoder LMs (``text-generation``) go through :mod:`slimport.exporters.tflite_decoder`: ``prefill``
and ``decode`` signatures over an explicit fixed KV cache, the same recipes.

Option ``allow_hybrid_ops = false`` (NPU targets) refuses dynamic-range "hybrid" kernels (int8
weights, float activations): NNAPI, GPU and vendor NPU delegates do not take them.

With ``keep_float = ["auto"]`` the shared search (:mod:`slimport.precision.search`) keeps the
most sensitive layers' FULLY_CONNECTED ops in float until the gate holds.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from slimport.errors import InputError, SlimportError, first_line
from slimport.exporters import tflite_graph
from slimport.exporters.base import Artifact, ExportContext, Exporter
from slimport.exporters.tflite_decoder import export_decoder
from slimport.models.loader import ModelSource
from slimport.models.tasks import DECODER_TASKS
from slimport.models.wrapper import model_inputs, sample_inputs, task_module
from slimport.precision.context_range import context_value_pairs
from slimport.precision.search import FloatBase, linear_weights, search_int8
from slimport.targets.schema import Target
from slimport.validation.inputs import batches, max_length

DEFAULT_SIGNATURE = "serving_default"
INT4_BLOCKS = (32, 64, 128)
MODEL_FILE = "model.tflite"


def _recipe(target: Target, excluded_scopes: list[str]) -> list[dict[str, Any]]:
    """ai-edge-quantizer recipe for the target's precision, with ``excluded_scopes`` left in float."""
    from ai_edge_quantizer import qtyping, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    p = target.precision
    ops = qtyping.TFLOperationName
    granularity = qtyping.QuantGranularity.CHANNELWISE if p.per_channel else qtyping.QuantGranularity.TENSORWISE
    manager = recipe_manager.RecipeManager()
    if p.dtype == "fp16":
        manager.add_quantization_config(
            ".*", ops.ALL_SUPPORTED,
            qtyping.OpQuantizationConfig(
                weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
                compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True),
            AlgorithmName.FLOAT_CASTING)
    elif p.dtype == "int4":
        if p.block_size not in INT4_BLOCKS:
            raise InputError(f"target {target.name}: ai-edge-quantizer's int4 blocks are "
                             f"{', '.join(map(str, INT4_BLOCKS))} weights, not {p.block_size}")
        blocks = getattr(qtyping.QuantGranularity, f"BLOCKWISE_{p.block_size}")
        add = manager.add_dynamic_config if p.mode == "dynamic" else manager.add_weight_only_config
        add(".*", ops.FULLY_CONNECTED, 4, blocks)
        # embedding tables: int8 rows
        manager.add_weight_only_config(".*", ops.EMBEDDING_LOOKUP, 8, qtyping.QuantGranularity.CHANNELWISE)
    elif p.mode == "dynamic":
        manager.add_dynamic_config(".*", ops.ALL_SUPPORTED, 8, granularity)
    elif p.mode == "weight-only":
        manager.add_weight_only_config(".*", ops.ALL_SUPPORTED, 8, granularity)
    else:
        manager.add_static_config(".*", ops.FULLY_CONNECTED, 8, 8, granularity)
    for scope in excluded_scopes:
        manager.add_quantization_config(f"^{re.escape(scope)}$", ops.FULLY_CONNECTED, None,
                                        AlgorithmName.NO_QUANTIZE)
    return manager.get_quantization_recipe()


def _calibrate(fp32: Path, recipe: list[dict[str, Any]], data: dict[str, list[dict[str, Any]]]
               ) -> tuple[dict[str, Any], int]:
    """Activation ranges over ``data`` for ai-edge-quantizer: each tensor's minimum and maximum over all
    of it (as ONNX Runtime's MinMax), then every attention context widened to its values' range
    (:mod:`slimport.precision.context_range`); returns the ranges and how many contexts were widened.

    ai-edge-quantizer's own ``Quantizer.calibrate`` keeps an exponential moving average (0.95) of each
    sample's min and max instead, which follows the last samples and clips texts beyond them. On the
    real MiniLM at ``android-int8-static`` (built-in validation texts, pooled cosine min): moving
    average 0.955; with the context bound 0.985; min/max and the bound 0.989.
    """
    from ai_edge_quantizer import calibrator, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(recipe)
    calib = calibrator.Calibrator(str(fp32), qsv_update_func=qsv_utils.min_max_update)
    calib.calibrate(data, manager)
    ranges = calib.get_model_qsvs()
    bounded = 0
    for context, values in context_value_pairs(tflite_graph.graph_ops(tflite_graph.read(fp32))).items():
        if context in ranges and values in ranges:
            ranges[context] = {**ranges[context], "min": np.minimum(ranges[values]["min"], ranges[context]["min"]),
                               "max": np.maximum(ranges[values]["max"], ranges[context]["max"])}
            bounded += 1
    return ranges, bounded


class TfliteExporter(Exporter):
    """Export encoders to LiteRT ``.tflite`` with litert-torch and quantize with ai-edge-quantizer."""

    format = "tflite"
    options = frozenset({"signature", "allow_hybrid_ops"})
    recipes = frozenset({("fp32", "none"), ("fp16", "none"), ("int8", "dynamic"), ("int8", "static"),
                         ("int8", "weight-only"), ("int4", "dynamic"), ("int4", "weight-only")})
    decoders = True
    model_file = MODEL_FILE

    def tool_versions(self) -> dict[str, str]:
        """litert-torch, litert-converter, ai-edge-quantizer and ai-edge-litert versions."""
        from importlib.metadata import version

        return {pkg: version(pkg) for pkg in ("litert-torch", "litert-converter", "ai-edge-quantizer",
                                               "ai-edge-litert")}

    def _signature(self, target: Target) -> str:
        return str(target.options.get("signature", DEFAULT_SIGNATURE))

    # -- stages -------------------------------------------------------------------------------
    def _convert(self, source: ModelSource, target: Target, context: ExportContext, model: Any, tag: str) -> Path:
        """litert-torch conversion of ``model`` (default: the checkpoint's) at the profile's fixed shape."""
        os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
        import litert_torch

        profile = target.profile
        seq_len = max_length(source.tokenizer, profile)
        module = task_module(source, model)
        kwargs = sample_inputs(source, profile.batch, seq_len, model)
        out = context.workdir / tag / MODEL_FILE
        out.parent.mkdir(parents=True)
        try:
            edge = litert_torch.signature(self._signature(target), module, sample_kwargs=kwargs).convert()
            edge.export(str(out))
        except (ValueError, KeyError, RuntimeError, TypeError, NotImplementedError, AssertionError) as exc:
            raise InputError(f"litert-torch cannot convert {source.family}/{source.task}: {first_line(exc)}") from exc
        return out

    def _quantize(self, fp32: Path, out: Path, target: Target, excluded: list[str],
                  calibration: list[dict[str, Any]]) -> int:
        """Apply the target's recipe to ``fp32`` into ``out``, ``excluded`` op scopes left in float; returns
        how many attention contexts got their values' range (static recipes, :func:`_calibrate`)."""
        from ai_edge_quantizer import quantizer

        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            recipe = _recipe(target, excluded)
            q = quantizer.Quantizer(fp32, recipe)
            # its calibration and model writer draw tqdm bars whatever enable_progress_bar says
            with contextlib.redirect_stderr(io.StringIO()):
                result, bounded = _calibrate(fp32, recipe, {self._signature(target): calibration}) \
                    if q.need_calibration else (None, 0)
                quantized = q.quantize(result, enable_progress_bar=False, enable_progress_report=False)
            quantized.export_model(str(out), overwrite=True)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise SlimportError(f"ai-edge-quantizer failed: {first_line(exc)}") from exc
        return bounded

    def _artifact(self, path: Path, target: Target, signature: str | None = None) -> Artifact:
        inputs, outputs = tflite_graph.signature_specs(path, signature or self._signature(target))
        model = tflite_graph.read(path)
        counts = tflite_graph.op_counts(model)
        artifact = Artifact(directory=path.parent, model_file=path.name, format=self.format, inputs=inputs,
                            outputs=outputs)
        artifact.precision = {"weights": tflite_graph.weight_dtypes(model)}
        artifact.runtime = {"hybrid_ops": tflite_graph.hybrid_ops(model)}
        bad = tflite_graph.non_builtin_ops(counts)
        if bad:
            raise InputError(f"the LiteRT graph needs ops outside the builtin set ({', '.join(bad)}); "
                             "a phone's LiteRT runtime cannot run it")
        return artifact

    # -- orchestration --------------------------------------------------------------------------
    def export(self, source: ModelSource, target: Target, context: ExportContext) -> Artifact:
        """Build the artifact for ``target`` and place its files in ``context.output_dir``."""
        self.check_target(target)
        if not target.profile.static_shape:
            raise InputError(f"target {target.name}: TFLite needs a static-shape device profile "
                             f"(profile {target.profile.name} has static_shape = false)")
        if target.profile.input_dtype != "int32":
            raise InputError(f"target {target.name}: LiteRT models take int32 ids; set input_dtype = \"int32\"")
        allow_hybrid = target.options.get("allow_hybrid_ops", True)
        if not isinstance(allow_hybrid, bool):
            raise InputError(f"target {target.name}: allow_hybrid_ops must be true or false, not {allow_hybrid!r}")
        if not allow_hybrid and target.precision.dtype == "int8" and target.precision.mode == "dynamic":
            raise InputError(f"target {target.name}: dynamic int8 builds hybrid (int8-weight, float-activation) "
                             "kernels, which allow_hybrid_ops = false forbids; use mode = \"static\"")
        p = target.precision
        if source.task in DECODER_TASKS:
            chosen = export_decoder(self, source, target, context)
        else:
            fp32 = self._convert(source, target, context, None, "fp32")
            if p.dtype == "fp32":
                chosen = self._artifact(fp32, target)
            elif p.dtype == "fp16":
                out = context.workdir / "fp16" / MODEL_FILE
                self._quantize(fp32, out, target, [], [])
                chosen = self._artifact(out, target)
            else:
                chosen = self._select_int8(source, target, context, fp32)
            chosen.precision = {"signature": self._signature(target), **chosen.precision}
        chosen.precision = {"recipe": p.label, **chosen.precision}
        hybrid = chosen.runtime["hybrid_ops"]
        if hybrid and not allow_hybrid:
            raise SlimportError(f"target {target.name} forbids hybrid ops but the graph has "
                                f"{', '.join(f'{n} x{c}' for n, c in hybrid.items())}")
        chosen.runtime["xnnpack"] = tflite_graph.delegation(chosen.model_path, target.profile.threads)
        share = chosen.runtime["xnnpack"]["delegated_share"]
        if share < 0.9:
            chosen.notes.append(f"XNNPACK takes only {share:.0%} of the ops; the rest run on LiteRT's reference "
                                "kernels (see runtime.xnnpack.not_delegated)")
        return chosen.move_to(context.output_dir)

    def _select_int8(self, source: ModelSource, target: Target, context: ExportContext, fp32: Path) -> Artifact:
        """int8 through the shared search (:func:`slimport.precision.search_int8`)."""
        p = target.precision
        names = model_inputs(source)
        texts = list(context.calibration_texts[: p.calibration_samples])
        feeds = [{k: v.astype(np.int32) for k, v in b.feeds.items() if k in names}
                 for b in batches(source.tokenizer, texts, target.profile)] if p.mode == "static" else []

        def export_float(model: Any, tag: str) -> FloatBase:
            path = fp32 if model is None else self._convert(source, target, context, model, tag)
            weights = linear_weights(model if model is not None else source.torch_model)
            return FloatBase(path, tflite_graph.map_linear_to_ops(tflite_graph.read(path), weights))

        def quantize(base: FloatBase, excluded: list[str], tag: str) -> Artifact:
            out = context.workdir / tag / MODEL_FILE
            bounded = self._quantize(base.path, out, target, excluded, feeds)
            artifact = self._artifact(out, target)
            if p.mode == "static":
                artifact.precision["context_ranges"] = bounded
            return artifact

        return search_int8(source, target, context, export_float, quantize)
