"""Core ML exporter: torch.jit.trace -> coremltools ML Program -> weight compression -> .mlpackage.

The torch module is wrapped (:mod:`slimport.models.wrapper`) so the program takes int32
``input_ids`` / ``attention_mask`` [/ ``token_type_ids``] and returns outputs named for the task.
Sequence length: fixed at the profile's ``seq_len`` for static profiles, else a ``RangeDim`` from 2
to the model's maximum (default the profile's ``seq_len``), which ML Programs support from iOS 16.

Precision recipes (``[precision]``):

* ``fp32`` -- ``compute_precision=FLOAT32``;
* ``fp16`` -- ``compute_precision=FLOAT16`` (the ML Program default): fp16 weights and compute;
* ``int8`` -- fp16 program, then ``linear_quantize_weights`` (symmetric int8, per channel unless
  the recipe says per-tensor).
* ``int4`` -- fp16 program with 4-bit weights: k-means palettization (16-entry table per 16 output
  channels) or symmetric int4 per block of 32 or 16, picked by measured parity (option
  ``int4_method``: ``auto``, ``palette``, ``linear``); sensitive layers stay int8 until the gate
  holds. iOS 18.

Options (``[options]``): ``deployment_target`` (``iOS16``/``iOS17``/``iOS18``, default iOS17),
``compute_units`` (``ALL``, ``CPU_AND_NE``, ``CPU_AND_GPU``, ``CPU_ONLY``; stored in the package's
metadata for the app, default ``ALL``), ``source`` (``trace``, the default, or ``torch.export``:
``torch.export`` + ``run_decompositions({})`` with a dynamic sequence axis).

Decoder LMs (``text-generation``) are converted by :mod:`slimport.exporters.coreml_decoder`: one
program over an explicit fixed KV cache, the recipes above with int4 per block of ``block_size``
(or palettes with ``int4_method = "palette"``) and no layer search.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from slimport.errors import InputError, first_line
from slimport.exporters import coreml_weights
from slimport.exporters.base import Artifact, ExportContext, Exporter, TensorSpec
from slimport.exporters.coreml_decoder import export_decoder
from slimport.models.loader import ModelSource
from slimport.models.tasks import DECODER_TASKS
from slimport.models.wrapper import model_inputs, sample_inputs, task_module
from slimport.targets.schema import Target
from slimport.validation.inputs import max_length

MODEL_FILE = "model.mlpackage"
_SOURCES = ("trace", "torch.export")
_TARGETS = ("iOS16", "iOS17", "iOS18")
_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")
MIN_SEQ = 2  # [CLS] and [SEP]
# 4-bit variants in order of size: label, method, linear block size (palettes fall back to it for
# tables they cannot group). Per-block scales cost 16/block bits per weight.
INT4_VARIANTS = (
    (f"4-bit k-means palette per {coreml_weights.PALETTE_GROUP} channels", "palette", 32),
    ("int4 per-block 32", "linear", 32),
    ("int4 per-block 16", "linear", 16),
)


def quiet_coremltools() -> None:
    """coremltools warns about untested torch/scikit-learn versions and missing macOS proxies on import."""
    import logging

    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.getLogger("coremltools").setLevel(logging.ERROR)


def as_positional(module: Any, inputs: list[str], outputs: list[str]) -> Any:
    """``module`` (keyword inputs, dict output) with positional ``inputs`` and a tuple of ``outputs``, as
    ``torch.jit.trace`` wants it."""
    import torch

    class Positional(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, *args: Any) -> tuple[Any, ...]:
            result = self.inner(**dict(zip(inputs, args, strict=True)))
            return tuple(result[name] for name in outputs)

    return Positional().eval()


def positional(source: ModelSource, model: Any = None) -> tuple[Any, list[str]]:
    """The task module with positional inputs and a tuple output (:func:`as_positional`)."""
    names = model_inputs(source, model)
    return as_positional(task_module(source, model), names, list(source.output_names)), names


def repair_fp16_constants(program: Any) -> list[dict[str, Any]]:
    """Replace float constants whose out-of-fp16-range entries are mask sentinels (``finfo.min``)
    with a finite fp16-safe value (:func:`slimport.precision.fp16.fp16_safe_constant`)."""
    from coremltools.converters.mil import Builder as mb

    from slimport.precision.fp16 import fp16_safe_constant

    repairs = []
    for function in program.functions.values():
        for op in list(function.operations):
            if op.op_type != "const":
                continue
            value = op.outputs[0].val
            safe = fp16_safe_constant(value) if value is not None else None
            if safe is None:
                continue
            with function, mb.set_before_op(op):
                new = mb.const(val=safe, name=f"{op.name}_fp16safe")
            function.replace_uses_of_var_after_op(anchor_op=new.op, old_var=op.outputs[0], new_var=new)
            function.remove_ops([op])
            repairs.append({"constant": op.name, "was": float(np.asarray(value).ravel()[0]),
                            "now": float(np.asarray(safe).ravel()[0]),
                            "used_by": sorted({c.op_type for c in new.child_ops})})
    return repairs


def to_mlprogram(program: Any, source: ModelSource, target: Target, deployment: str,
                 units: str) -> tuple[Any, list[dict[str, Any]]]:
    """Build the ML Program from a fp32 MIL ``program`` at the target's compute precision (fp16 mask
    sentinels repaired first) with slimport's metadata; returns it and the repaired constants."""
    import coremltools as ct

    fp16 = target.precision.dtype != "fp32"
    try:
        repairs = repair_fp16_constants(program) if fp16 else []
        mlmodel = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, deployment),
                             compute_precision=ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32,
                             compute_units=getattr(ct.ComputeUnit, units))
    except (ValueError, RuntimeError, TypeError, NotImplementedError, AssertionError, KeyError) as exc:
        raise InputError(f"coremltools cannot convert {source.family}/{source.task}: {first_line(exc)}") from exc
    mlmodel.short_description = f"{source.name} ({source.task}) exported by slimport for {target.name}"
    mlmodel.user_defined_metadata.update({"slimport.target": target.name, "slimport.compute_units": units,
                                          "slimport.task": source.task})
    return mlmodel, repairs


class CoremlExporter(Exporter):
    """Export encoders to Core ML ML Programs (.mlpackage) with coremltools."""

    format = "coreml"
    options = frozenset({"deployment_target", "compute_units", "source", "int4_method"})
    recipes = frozenset({("fp32", "none"), ("fp16", "none"), ("int8", "weight-only"), ("int4", "weight-only")})
    decoders = True

    def tool_versions(self) -> dict[str, str]:
        """coremltools version."""
        from importlib.metadata import version

        return {"coremltools": version("coremltools")}

    def _options(self, target: Target) -> tuple[str, str]:
        self.check_target(target)
        deployment = str(target.options.get("deployment_target", "iOS17"))
        units = str(target.options.get("compute_units", "ALL"))
        if deployment not in _TARGETS:
            raise InputError(f"target {target.name}: deployment_target must be one of {', '.join(_TARGETS)}")
        if units not in _UNITS:
            raise InputError(f"target {target.name}: compute_units must be one of {', '.join(_UNITS)}")
        if target.options.get("source", "trace") not in _SOURCES:
            raise InputError(f"target {target.name}: source must be one of {', '.join(_SOURCES)}")
        if target.options.get("int4_method", "auto") not in ("auto", *coreml_weights.INT4_METHODS):
            methods = ", ".join(("auto", *coreml_weights.INT4_METHODS))
            raise InputError(f"target {target.name}: int4_method must be one of {methods}")
        return deployment, units

    def _convert(self, source: ModelSource, target: Target, deployment: str, units: str,
                 model: Any = None) -> tuple[Any, list[dict[str, Any]]]:
        """Trace, convert to a MIL program in fp32, repair fp16 mask sentinels, then build the ML Program
        at the target's compute precision; returns it (uncompressed) and the repaired constants."""
        import torch

        quiet_coremltools()
        import coremltools as ct

        profile = target.profile
        module, names = positional(source, model)
        longest = max_length(source.tokenizer, profile)
        example = sample_inputs(source, profile.batch, min(profile.seq_len, longest), model)
        if profile.static_shape:
            length: Any = example["input_ids"].shape[1]
        else:
            length = ct.RangeDim(lower_bound=MIN_SEQ, upper_bound=longest, default=min(profile.seq_len, longest))
        inputs = [ct.TensorType(name=n, shape=(profile.batch, length), dtype=np.int32) for n in names]
        deployment_target = getattr(ct.target, deployment)
        outputs = [ct.TensorType(name=n) for n in source.output_names]
        try:
            if target.options.get("source", "trace") == "torch.export":
                program = ct.convert(self._exported(source, target, model, example, longest), outputs=outputs,
                                     convert_to="milinternal", compute_precision=ct.precision.FLOAT32,
                                     minimum_deployment_target=deployment_target)
            else:
                with torch.no_grad():
                    traced = torch.jit.trace(module, tuple(example[n] for n in names), strict=False)
                program = ct.convert(traced, inputs=inputs, outputs=outputs, convert_to="milinternal",
                                     compute_precision=ct.precision.FLOAT32,
                                     minimum_deployment_target=deployment_target)
        except (ValueError, RuntimeError, TypeError, NotImplementedError, AssertionError, KeyError) as exc:
            raise InputError(f"coremltools cannot convert {source.family}/{source.task}: {first_line(exc)}") from exc
        return to_mlprogram(program, source, target, deployment, units)

    @staticmethod
    def _exported(source: ModelSource, target: Target, model: Any, example: dict[str, Any], longest: int) -> Any:
        """``torch.export`` of the keyword-input task module, decomposed to core ATen as coremltools wants.

        The sequence axis is dynamic from 3 (torch.export rejects MobileBERT's guard at 2) unless the
        profile is static."""
        import torch

        from slimport.models.wrapper import task_module

        dynamic = None
        if not target.profile.static_shape:
            seq = torch.export.Dim("seq", min=MIN_SEQ + 1, max=longest)
            dynamic = {name: {1: seq} for name in example}
        with torch.no_grad():
            exported = torch.export.export(task_module(source, model), (), kwargs=example, dynamic_shapes=dynamic)
        return exported.run_decompositions({})

    def _fp16_checks(self, source: ModelSource, target: Target, context: ExportContext) -> list[Any]:
        """Pre-conversion fp16 range check on the calibration texts: one failing check per weight or
        module output beyond fp16's range (named), plus the largest value that fits."""
        from slimport.precision.fp16 import FP16_MAX, range_findings
        from slimport.validation.gate import Check

        findings = range_findings(source.torch_model, source.tokenizer, context.calibration_texts, target.profile)
        bad = [f for f in findings if f.overflows]
        checks = [Check(f"fp16_range.{f.kind}.{f.name}", f.max_abs, FP16_MAX, "<=", False) for f in bad]
        fits = max((f for f in findings if not f.overflows), key=lambda f: f.max_abs, default=None)
        if fits is not None:
            checks.append(Check("fp16_range.largest_value", fits.max_abs, FP16_MAX, "<=", True))
        if bad:
            context.log(f"{len(bad)} weight(s)/activation(s) overflow fp16, first: {bad[0].kind} {bad[0].name} "
                        f"reaches {bad[0].max_abs:.4g} > {FP16_MAX:g}")
        return checks

    def _save(self, mlmodel: Any, folder: Path, target: Target) -> Artifact:
        """Save ``mlmodel`` as ``folder/model.mlpackage`` and describe it from the saved program."""
        from slimport.validation.mil import program_info

        out = folder / MODEL_FILE
        folder.mkdir(parents=True, exist_ok=True)
        mlmodel.save(str(out))
        info = program_info(out)
        artifact = Artifact(directory=folder, model_file=MODEL_FILE, format=self.format,
                            inputs=[TensorSpec(**t) for t in info["inputs"]],
                            outputs=[TensorSpec(**t) for t in info["outputs"]])
        artifact.precision = {"weights": info["weights"]}
        artifact.runtime = {"operators": info["operators"]}
        return artifact

    def export(self, source: ModelSource, target: Target, context: ExportContext) -> Artifact:
        """Build the .mlpackage for ``target`` and place it in ``context.output_dir``."""
        deployment, units = self._options(target)
        p = target.precision
        if p.dtype == "int4" and deployment != "iOS18":
            raise InputError(f"target {target.name}: 4-bit weights (per block or grouped palettes) need "
                             "deployment_target = \"iOS18\"")
        if target.profile.input_dtype != "int32":
            raise InputError(f"target {target.name}: Core ML programs take int32 ids; set input_dtype = \"int32\"")
        checks = self._fp16_checks(source, target, context) if p.dtype != "fp32" else []
        if source.task in DECODER_TASKS:
            artifact, repairs = export_decoder(self, source, target, context, deployment, units)
        elif p.dtype == "int4":
            mlmodel, repairs = self._convert(source, target, deployment, units)
            artifact = self._select_int4(source, target, context, mlmodel)
        else:
            mlmodel, repairs = self._convert(source, target, deployment, units)
            compressed = coreml_weights.compress(mlmodel, "int8", p.per_channel) if p.dtype == "int8" else mlmodel
            artifact = self._save(compressed, context.workdir / "coreml", target)
        artifact.precision = {"recipe": p.label, "deployment_target": deployment, "compute_units": units,
                              **artifact.precision, "fp16_repairs": repairs}
        artifact.checks = checks
        return artifact.move_to(context.output_dir)

    def _select_int4(self, source: ModelSource, target: Target, context: ExportContext, mlmodel: Any) -> Artifact:
        """4-bit weights with the shared selection: every :data:`INT4_VARIANTS` entry the ``int4_method``
        option allows is measured and the smallest one that holds the gate comfortably kept; if none holds,
        the Linear layers and embedding tables whose 4-bit weights are expected to hurt the output most
        (:func:`rank_by_weight_error`, ranked by per-block int4 error for both methods) stay at int8."""
        from slimport.precision import collect_linear_input_stats, select_recipe
        from slimport.precision.search import linear_weights
        from slimport.precision.selection import (
            embedding_tables,
            fake_quant_blockwise,
            rank_by_weight_error,
            rank_embeddings,
        )

        p = target.precision
        texts = list(context.calibration_texts[: p.calibration_samples])
        weights = linear_weights(source.torch_model)
        tables = embedding_tables(source.torch_model)
        tensors = {**weights, **tables}
        consts = coreml_weights.map_linear_to_consts(mlmodel, tensors)
        stats = collect_linear_input_stats(source.torch_model, source.tokenizer, texts, target.profile)

        def int4(weight: Any) -> Any:
            return fake_quant_blockwise(weight, 4, coreml_weights.INT4_BLOCK)

        ranked = rank_by_weight_error(weights, stats, int4) + rank_embeddings(tables, int4)
        compressible = {n for n, w in tensors.items() if n in consts and w.size > coreml_weights.WEIGHT_THRESHOLD}
        candidates = sorted((c for c in ranked if c.name in compressible), key=lambda c: c.score, reverse=True)

        def build(variant: tuple[str, int], kept: list[Any]) -> Artifact:
            method, block = variant
            compressed = coreml_weights.compress(mlmodel, "int4", keep_int8=[consts[c.name] for c in kept],
                                                 method=method, block=block)
            return self._save(compressed, context.workdir / f"int4-{method}{block}-keep{len(kept)}", target)

        method = str(target.options.get("int4_method", "auto"))
        variants = [(label, (m, block)) for label, m, block in INT4_VARIANTS if method in ("auto", m)]
        result = select_recipe(variants, candidates, build, context.evaluate, p.max_keep_float, context.log,
                               kept_as="int8")
        described = result.describe()
        described["kept_int8"] = described.pop("kept_float")
        result.artifact.precision.update(described)
        return result.artifact
