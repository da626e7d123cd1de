"""ONNX exporter: optimum-onnx export -> ORT transformer fusion (unless the target says ``fuse = false``)
-> shape/dtype contract -> precision -> final rewrites (layout, key trim).

Precision recipes (``[precision]`` of a target):

* ``fp32``  -- the exported graph as is;
* ``fp16``  -- ``OnnxModel.convert_float_to_float16(keep_io_types=True)``: fp16 weights and compute,
  fp32 inputs/outputs;
* ``int8`` ``dynamic`` -- ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, per channel
  when asked; activations quantized at run time);
* ``int8`` ``static``  -- ``quantize_static`` in QDQ format on the Linear layers (MatMul/Gemm with a
  weight: int8 weights and calibrated int8 activations), after fusion of the norms but not of
  attention (the fused ``Attention`` op would keep Q/K/V in float), with every tensor typed first
  (ORT's symbolic shape inference; without it ``quantize_static`` silently leaves activations after a
  contrib op in float). The report's ``precision.linear_activations`` counts what was quantized.

With ``keep_float = ["auto"]`` the shared accuracy-aware selection keeps the most sensitive
``nn.Linear`` layers in float until the gate holds on the calibration texts. Option
``ort_format = true`` converts the result to ONNX Runtime Mobile's ``.ort`` and writes the
reduced-operator config for a custom ORT build.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from slimport.errors import InputError, SlimportError, first_line
from slimport.exporters import (
    onnx_context_range,
    onnx_graph,
    onnx_head_rows,
    onnx_index,
    onnx_key_trim,
    onnx_layout,
    onnx_rewrites,
    onnx_sequence_trim,
)
from slimport.exporters.base import Artifact, ExportContext, Exporter
from slimport.exporters.onnx_decoder import export_decoder, quantize_int4
from slimport.models.loader import ModelSource
from slimport.models.tasks import DECODER_TASKS
from slimport.precision.search import FloatBase, linear_weights, search_int8
from slimport.targets.schema import Target
from slimport.validation.inputs import batches

OPSET = 18
_FUSED_OPS = ("Attention", "EmbedLayerNormalization", "SkipLayerNormalization", "BiasGelu", "FastGelu",
              "Gelu", "LayerNormalization")


class _CalibrationReader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over tokenized calibration texts."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._iter = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:  # pragma: no cover - not used by MinMax
        pass


def _typed_for_static(fp32: Path, out: Path) -> list[str]:
    """Prepare ``fp32`` for ``quantize_static`` in ``out``; returns the MatMuls to leave in float.

    * Each Linear's activation input gets its own ``Identity``: ``quantize_static`` rewires *every*
      reader of a quantized tensor to the dequantized copy, so without it the residual stream and the
      norms would read int8-rounded values too.
    * Every tensor is typed (ORT's symbolic shape inference, which knows the contrib ops fusion adds):
      ``quantize_static`` silently skips tensors whose type it cannot infer, which left activations
      after a fused op in float.
    * The MatMuls that multiply two activations (attention scores and context) are returned to be
      excluded: static int8 is for Linear layers, as on LiteRT.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(fp32))
    weights = {i.name for i in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if onnx_graph.product_kind(node, weights) == "linear":
            base = node.name or node.output[0]  # output names are unique where node names may be empty
            edge = f"{base}/linear_input"
            nodes.append(onnx.helper.make_node("Identity", [node.input[0]], [edge], name=f"{base}/Identity"))
            node.input[0] = edge
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx_graph.save(model, out)
    try:  # on failure the tool dumps the model into the working directory: let that be the work folder
        with contextlib.chdir(out.parent):
            quant_pre_process(str(out.resolve()), str(out.resolve()), skip_optimization=True, auto_merge=True,
                              guess_output_rank=True)
    except Exception as exc:  # noqa: BLE001 - the tool raises bare Exception
        raise SlimportError(f"shape inference before static quantization failed: {first_line(exc)}") from exc
    model = onnx.load(str(out), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if onnx_graph.product_kind(n, weights) == "matmul"]


def quantized_activations(model: onnx.ModelProto) -> dict[str, int]:
    """How many weight-bearing MatMul/Gemm nodes read an int8 (DequantizeLinear) activation, and how many a
    float one: what a static recipe really quantized."""
    weights = {i.name for i in model.graph.initializer}
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    counts = {"int8": 0, "float": 0}
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 and (
                node.input[1] in weights or producers.get(node.input[1]) == "DequantizeLinear"):
            counts["int8" if producers.get(node.input[0]) == "DequantizeLinear" else "float"] += 1
    return counts


class OnnxExporter(Exporter):
    """Export encoders to ONNX (and ORT Mobile's .ort) with fusion and ORT quantization."""

    format = "onnx"
    options = frozenset({"ort_format", "fuse", "opset"})
    recipes = frozenset({("fp32", "none"), ("fp16", "none"), ("int8", "dynamic"), ("int8", "static"),
                         ("int4", "weight-only")})
    decoders = True

    def tool_versions(self) -> dict[str, str]:
        """optimum, optimum-onnx, onnx and onnxruntime versions."""
        from importlib.metadata import version

        return {pkg: version(pkg) for pkg in ("optimum", "optimum-onnx", "onnx", "onnxruntime")}

    # -- stages -------------------------------------------------------------------------------
    def _export_fp32(self, source: ModelSource, target: Target, context: ExportContext,
                     model: Any = None, tag: str = "fp32") -> Path:
        """optimum export of ``model`` (default: the checkpoint's), fusion, then the profile's shape and ids."""
        from optimum.exporters.onnx import onnx_export_from_model

        raw_dir = context.workdir / f"optimum-{tag}"
        try:
            onnx_export_from_model(model if model is not None else source.torch_model, raw_dir, task=source.task,
                                   opset=int(target.options.get("opset", OPSET)), do_validation=False)
        except (ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
            what = f"{source.family}/{source.task}"
            raise InputError(f"optimum cannot export {what} to ONNX: {first_line(exc)}") from exc
        path = raw_dir / "model.onnx"
        # Residual Adds stay apart from their LayerNorms (onnx_rewrites.residual_adds_as_sum), except for
        # static int8: quantize_static would then put per-tensor activation QDQ on the residual stream
        # (measured on MiniLM: pooled cosine min 0.51, against 0.995 with SkipLayerNormalization).
        static = target.precision.mode == "static"
        norms_apart = not static
        if target.options.get("fuse", True):
            from onnxruntime.transformers.optimizer import optimize_model

            options = onnx_graph.fusion_options("bert", not norms_apart, fuse_attention=not static)
            optimized = optimize_model(str(path), model_type="bert", num_heads=0, hidden_size=0, opt_level=0,
                                       optimization_options=options)
            model = onnx_graph.ensure_contrib_opset(optimized.model)
        else:
            model = onnx.load(str(path))
        profile = target.profile
        # before the static shape: the graph inside stays free to run on the positions attended to
        sequence_trims = onnx_sequence_trim.trim_sequence(model)
        if profile.static_shape:
            onnx_graph.fix_static_shape(model, profile.batch, profile.seq_len)
        if profile.input_dtype == "int32":
            onnx_graph.use_int32_inputs(model)
        onnx_rewrites.apply(model, target.precision.dtype, target.precision.mode)
        onnx_rewrites.record(model, {"sequence_trims": sequence_trims,
                                     "head_row_products": onnx_head_rows.trim_head_rows(model)})
        fp32 = context.workdir / tag / "model.onnx"
        fp32.parent.mkdir()
        onnx_graph.save(model, fp32)
        shutil.rmtree(raw_dir, ignore_errors=True)
        return fp32

    def _to_fp16(self, fp32: Path, out: Path) -> None:
        from onnxruntime.transformers.onnx_model import OnnxModel

        model = OnnxModel(onnx.load(str(fp32)))
        model.convert_float_to_float16(keep_io_types=True)
        onnx_graph.save(model.model, out)

    def _quantize(self, fp32: Path, out: Path, target: Target, exclude: list[str],
                  calibration: list[dict[str, np.ndarray]]) -> int:
        """Quantize ``fp32`` into ``out`` by the target's int8 recipe, ``exclude`` left in float; returns how
        many attention contexts got their values' range (static only, :mod:`onnx_context_range`)."""
        from onnx import TensorProto
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

        p = target.precision
        extra = {"DefaultTensorType": TensorProto.FLOAT}
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            if p.mode == "dynamic":
                quantize_dynamic(str(fp32), str(out), per_channel=p.per_channel, weight_type=QuantType.QInt8,
                                 nodes_to_exclude=exclude, extra_options=extra)
            else:
                typed = out.parent / "typed.onnx"
                products = _typed_for_static(fp32, typed)
                # outputs stay float: a quantized Linear output would round the residual stream too
                linear = ["MatMul", "Gemm"]
                overrides = onnx_context_range.value_range_overrides(typed, calibration, frozenset(exclude))
                quantize_static(str(typed), str(out), _CalibrationReader(calibration), quant_format=QuantFormat.QDQ,
                                per_channel=p.per_channel, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8, op_types_to_quantize=linear,
                                nodes_to_exclude=[*exclude, *products],
                                extra_options={**extra, "OpTypesToExcludeOutputQuantization": linear,
                                               "TensorQuantOverrides": overrides})
                typed.unlink()
                return len(overrides)
        except (ValueError, RuntimeError) as exc:
            raise SlimportError(f"onnxruntime quantization failed: {first_line(exc)}") from exc
        return 0

    def _to_ort(self, onnx_path: Path, out_dir: Path) -> list[str]:
        """Convert to .ort (Fixed optimizations, arm target) with ORT's own tool; returns file names."""
        cmd = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(onnx_path),
               "--output_dir", str(out_dir), "--optimization_style", "Fixed", "--target_platform", "arm"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        ort_file = out_dir / f"{onnx_path.stem}.ort"
        if proc.returncode != 0 or not ort_file.is_file():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SlimportError(f"ORT format conversion failed: {tail}")
        configs = sorted(p.name for p in out_dir.glob("*.config"))
        return [ort_file.name, *configs]

    # -- orchestration --------------------------------------------------------------------------
    def export(self, source: ModelSource, target: Target, context: ExportContext) -> Artifact:
        """Build the artifact for ``target`` and place its files in ``context.output_dir``."""
        self.check_target(target)
        if source.task in DECODER_TASKS:
            return export_decoder(self, source, target, context)
        fp32 = self._export_fp32(source, target, context)
        fp32_model = onnx.load(str(fp32), load_external_data=False)
        counts = onnx_graph.op_counts(fp32_model)
        precision: dict[str, Any] = {
            "recipe": target.precision.label,
            "fused_ops": {k: v for k, v in counts.items() if k.split(":")[-1] in _FUSED_OPS},
            **onnx_rewrites.recorded(fp32_model),
        }
        p = target.precision
        if p.dtype == "fp32":
            chosen = self._artifact(fp32, fp32_model)
        elif p.dtype == "fp16":
            out = context.workdir / "fp16" / "model.onnx"
            out.parent.mkdir()
            self._to_fp16(fp32, out)
            chosen = self._artifact(out)
        elif p.dtype == "int4":
            out = context.workdir / "int4" / "model.onnx"
            quantize_int4(fp32, out, p.block_size)
            chosen = self._artifact(out)
        else:
            chosen = self._select_int8(source, target, context, fp32, fp32_model)
        layout = p.dtype == "fp32" or (p.dtype, p.mode) == ("int8", "dynamic")
        precision.update(self._final_rewrites(chosen.model_path, layout))
        final = onnx.load(str(chosen.model_path), load_external_data=False)
        precision.update(chosen.precision, weights=onnx_graph.weight_dtypes(final))
        if (p.dtype, p.mode) == ("int8", "static"):
            precision["linear_activations"] = quantized_activations(final)
        if target.options.get("ort_format"):
            files = self._to_ort(chosen.model_path, context.workdir / "ort")
            chosen = self._artifact(context.workdir / "ort" / files[0], final, extra=files[1:])
            chosen.notes.append("load with ONNX Runtime Mobile; build a reduced runtime with "
                                f"{files[1] if len(files) > 1 else 'the required_operators config'}")
        chosen.precision = precision
        return chosen.move_to(context.output_dir)

    @staticmethod
    def _final_rewrites(path: Path, layout: bool) -> dict[str, int]:
        """The rewrites that run on the chosen file, in place (after the int8 search, whose layer mapping
        needs the exported graph); returns their counts, with how many inputs that file has cut
        (:func:`onnx_sequence_trim.cut_inputs`). With ``layout`` (float and dynamic-int8 graphs):
        :func:`onnx_rewrites.fold_affine_into_linears`, then :func:`onnx_layout.sequence_first_attention`.
        Last, unless the inputs are cut (no padded key is left): :func:`onnx_key_trim.trim_masked_keys`,
        which checks itself by running the graph."""
        model = onnx.load(str(path))
        counts = {"sequence_trims": onnx_sequence_trim.cut_inputs(model)}
        if layout:
            counts["affine_folds"] = onnx_rewrites.fold_affine_into_linears(model)
            if counts["affine_folds"]:
                onnx_index.remove_unused_nodes(model)
            counts["sequence_first_transposes"] = onnx_layout.sequence_first_attention(model)
        counts["masked_key_trims"] = 0 if counts["sequence_trims"] else onnx_key_trim.trim_masked_keys(model)
        if any(v for k, v in counts.items() if k != "sequence_trims"):
            onnx_rewrites.record(model, counts)
            onnx_graph.save(model, path)
        return counts

    def _artifact(self, path: Path, model: onnx.ModelProto | None = None, extra: list[str] | None = None) -> Artifact:
        model = model if model is not None else onnx.load(str(path), load_external_data=False)
        return Artifact(directory=path.parent, model_file=path.name, format=self.format,
                        inputs=onnx_graph.tensor_specs(model.graph.input),
                        outputs=onnx_graph.tensor_specs(model.graph.output),
                        extra_files=[*(extra or []), *onnx_graph.external_files(model)])

    def _select_int8(self, source: ModelSource, target: Target, context: ExportContext, fp32: Path,
                     fp32_model: onnx.ModelProto) -> Artifact:
        """int8 through the shared search (:func:`slimport.precision.search_int8`)."""
        p = target.precision
        id_type = np.int32 if target.profile.input_dtype == "int32" else np.int64
        names = {i.name for i in fp32_model.graph.input}
        calibration = list(context.calibration_texts[: p.calibration_samples])
        feeds = [{k: v.astype(id_type) for k, v in b.feeds.items() if k in names}
                 for b in batches(source.tokenizer, calibration, target.profile)] if p.mode == "static" else []

        def export_float(model: Any, tag: str) -> FloatBase:
            path = fp32 if model is None else self._export_fp32(source, target, context, model, tag)
            graph = fp32_model if model is None else onnx.load(str(path), load_external_data=False)
            weights = linear_weights(model if model is not None else source.torch_model)
            return FloatBase(path, onnx_graph.map_linear_to_nodes(graph, weights))

        def quantize(base: FloatBase, excluded: list[str], tag: str) -> Artifact:
            out = context.workdir / tag / "model.onnx"
            bounded = self._quantize(base.path, out, target, excluded, feeds)
            artifact = self._artifact(out)
            if p.mode == "static":
                artifact.precision = {"context_ranges": bounded}
            return artifact

        return search_int8(source, target, context, export_float, quantize)
