"""The int8 recipe search every exporter runs, written once.

An exporter supplies two functions:

* ``export_float(model, tag)`` -- export a torch module (the checkpoint's, or a smoothed copy) to
  the exporter's float format and return a :class:`FloatBase`: the file and a map from torch
  ``nn.Linear`` names to the ids of the ops that multiply by their weights in that file;
* ``quantize(base, excluded_ops, tag)`` -- quantize that file, leaving ``excluded_ops`` in float,
  and return an :class:`~slimport.exporters.base.Artifact`.

:func:`search_int8` collects calibration statistics, tries the smoothing variants of the recipe and
then keeps the most sensitive layers in float (:func:`~slimport.precision.selection.select_recipe`)
until the gate holds on the calibration texts, and records in ``artifact.precision`` which layers
stayed in float and why.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slimport.errors import InputError
from slimport.precision.selection import Candidate, rank_linear_layers, select_recipe
from slimport.precision.smoothing import channel_producers, smoothed_copy
from slimport.precision.stats import collect_linear_input_stats

if TYPE_CHECKING:
    from slimport.exporters.base import Artifact, ExportContext
    from slimport.models.loader import ModelSource
    from slimport.targets.schema import Target


@dataclass
class FloatBase:
    """A float artifact file and, per torch ``nn.Linear`` name, the op that applies its weight."""

    path: Path
    layer_ops: dict[str, str]


def fingerprint(array: np.ndarray) -> tuple[int, float, float]:
    """Size, sum and absolute sum of a weight: invariant to the transposes converters add."""
    a = array.astype(np.float64)
    return a.size, float(a.sum()), float(np.abs(a).sum())


def fingerprints_match(a: tuple[int, float, float], b: tuple[int, float, float]) -> bool:
    """True when two fingerprints describe the same weight (up to float rounding)."""
    return a[0] == b[0] and all(abs(x - y) <= 1e-4 * (1.0 + abs(x)) for x, y in zip(a[1:], b[1:], strict=True))


def linear_weights(model: Any) -> dict[str, np.ndarray]:
    """Torch ``nn.Linear`` weights (``[out, in]``) by module name."""
    import torch

    return {n: m.weight.detach().numpy() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def search_int8(
    source: ModelSource,
    target: Target,
    context: ExportContext,
    export_float: Callable[[Any, str], FloatBase],
    quantize: Callable[[FloatBase, list[str], str], Artifact],
) -> Artifact:
    """Quantize to int8 with the shared selection: smoothing variants first, then float fallback.

    Layers named by ``keep_float`` patterns (fnmatch on torch module names) always stay float;
    ``"auto"`` turns on the search. Without ``"auto"`` the first smoothing strength listed (if any)
    is applied and the result returned as is -- the gate still judges it afterwards.
    """
    p = target.precision
    calibration = list(context.calibration_texts[: p.calibration_samples])
    stats = collect_linear_input_stats(source.torch_model, source.tokenizer, calibration, target.profile)
    bases: dict[float, FloatBase] = {0.0: export_float(None, "fp32")}
    producers: dict[str, str] | None = None

    def base(alpha: float) -> FloatBase:
        nonlocal producers
        if alpha not in bases:
            if producers is None:
                producers = channel_producers(source.torch_model, source.tokenizer, calibration[0], target.profile,
                                              stats) if calibration else {}
            smoothed = smoothed_copy(source.torch_model, stats, alpha, producers)
            bases[alpha] = export_float(smoothed, f"smooth{alpha:g}")
        return bases[alpha]

    layer_ops = bases[0.0].layer_ops
    patterns = [k for k in p.keep_float if k != "auto"]
    forced = [n for n in layer_ops if any(fnmatch.fnmatch(n, pat) for pat in patterns)]
    if patterns and not forced:
        raise InputError(f"keep_float patterns {patterns} match no layer; layers look like: "
                         f"{', '.join(list(layer_ops)[:3])}")

    def build(alpha: float, kept: list[Candidate]) -> Artifact:
        chosen = base(alpha)
        layers = sorted({*(c.name for c in kept), *forced})
        excluded = sorted({chosen.layer_ops[n] for n in layers if n in chosen.layer_ops})
        artifact = quantize(chosen, excluded, f"int8-a{alpha:g}-keep{len(layers)}")
        artifact.precision = {**artifact.precision, "kept_float_forced": forced, "smoothing_alpha": alpha or None,
                              "smoothing_folded": sorted(producers or {}) if alpha else []}
        return artifact

    if not p.auto_keep_float:
        return build(p.smoothing[0] if p.smoothing else 0.0, [])
    variants = [("no smoothing", 0.0)] + [(f"smoothing alpha {a:g}", a) for a in p.smoothing]
    weights = linear_weights(source.torch_model)
    candidates = [c for c in rank_linear_layers(weights, stats, p.per_channel)
                  if c.name in layer_ops and c.name not in forced]
    result = select_recipe(variants, candidates, build, context.evaluate, p.max_keep_float, context.log,
                           buy_headroom=p.mode == "static")
    result.artifact.precision.update(result.describe())
    return result.artifact
