"""Accuracy-aware recipe selection, shared by every exporter.

1. :func:`rank_linear_layers` scores each ``nn.Linear`` from calibration statistics by how badly
   8-bit quantization is expected to hurt it: the input's range over its RMS (a per-tensor
   activation quantizer spends its 256 levels on that range) times the weight's peak over RMS
   (per output channel when the recipe is per-channel).
2. :func:`select_recipe` tries every recipe *variant* (listed cheapest first: no smoothing, then
   activation smoothing at a few strengths, which adds one elementwise Mul per Linear) with every
   layer quantized. The first variant that clears the gate on the calibration texts with
   comfortable headroom (the binding check's margin as a share of its limit's distance from
   perfect, at least :data:`COMFORTABLE_HEADROOM`) wins; if every passing variant is tight, the
   one with the most headroom wins -- a recipe that barely passes on calibration text is the one
   that fails on a user's text. If none passes,
   it keeps the top-k layers in float on the variant that came closest, for k = 1, 2, 4, ... up
   to ``max_keep``, and stops at the first that passes (keeping layers in float costs speed). If
   even ``max_keep`` fails there, the other variants get the same kept layers before giving up.

Exporters build artifacts and map torch module names to their own op names; the search is here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from slimport.precision.stats import LinearInputStats

T = TypeVar("T")
#: a passing variant this far from its limits (share of the way to perfect) is taken without
#: trying to buy more margin with a costlier variant
COMFORTABLE_HEADROOM = 0.5
V = TypeVar("V")


@dataclass
class Candidate:
    """A torch ``nn.Linear`` that could be kept in float, with its sensitivity score and why."""

    name: str
    score: float
    reason: str


@dataclass
class Attempt:
    """One build-and-evaluate round of the selection."""

    variant: str
    kept: list[str]
    passed: bool
    failed: list[str] = field(default_factory=list)
    headroom: float | None = None


@dataclass
class SelectionResult(Generic[T]):
    """The chosen artifact, its variant, the layers kept in float and every attempt made."""

    artifact: T
    variant: str
    kept: list[Candidate]
    attempts: list[Attempt]
    passed: bool

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for the report."""
        return {
            "variant": self.variant,
            "kept_float": [asdict(c) for c in self.kept],
            "attempts": [asdict(a) for a in self.attempts],
            "selection_passed": self.passed,
        }


def _weight_score(weight: np.ndarray, per_channel: bool) -> float:
    w = np.abs(weight.astype(np.float64))
    if per_channel:  # one scale per output channel (row of a torch Linear weight)
        rms = np.sqrt((w**2).mean(axis=1))
        return float(np.mean(np.where(rms > 0, w.max(axis=1) / np.where(rms > 0, rms, 1), 0)))
    rms = float(np.sqrt((w**2).mean()))
    return float(w.max() / rms) if rms > 0 else 0.0


def rank_linear_layers(weights: dict[str, np.ndarray], stats: dict[str, LinearInputStats],
                       per_channel: bool) -> list[Candidate]:
    """Score every Linear (torch ``[out, in]`` weights by name) that has input stats; most sensitive first."""
    candidates = []
    for name, weight in weights.items():
        entry = stats.get(name)
        if entry is None or entry.count == 0 or entry.rms == 0:
            continue
        act = (entry.maximum - entry.minimum) / entry.rms
        wscore = _weight_score(weight, per_channel)
        candidates.append(Candidate(name, act * wscore, f"input range/RMS {act:.1f} x weight peak/RMS {wscore:.1f}"))
    return sorted(candidates, key=lambda c: c.score, reverse=True)


def fake_quant_blockwise(weight: np.ndarray, bits: int = 4, block: int = 32) -> np.ndarray:
    """Symmetric per-block quantize-dequantize of a ``[out, in]`` weight, blocks along the input axis
    (what ``linear_quantize_weights`` does with ``granularity="per_block"``)."""
    out_dim, in_dim = weight.shape
    pad = (-in_dim) % block
    w = np.pad(weight.astype(np.float64), ((0, 0), (0, pad))).reshape(out_dim, -1, block)
    qmax = 2 ** (bits - 1) - 1
    scale = np.abs(w).max(axis=-1, keepdims=True) / qmax
    scale = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.round(w / scale), -qmax - 1, qmax) * scale
    return q.reshape(out_dim, -1)[:, :in_dim]


def rank_by_weight_error(weights: dict[str, np.ndarray], stats: dict[str, LinearInputStats],
                         quantize: Callable[[np.ndarray], np.ndarray]) -> list[Candidate]:
    """Rank Linear layers for a weight-only recipe by the output error it is expected to cause.

    For ``y = x W^T`` with quantized ``W + dW``, E||x dW^T||^2 = sum_j E[x_j^2] ||dW[:, j]||^2, so the
    relative error is that over the same sum with ``W``: the activation statistics weight each input
    channel's share of the weight error. Largest expected relative error first.
    """
    candidates = []
    for name, weight in weights.items():
        entry = stats.get(name)
        if entry is None or entry.count == 0:
            continue
        moment = entry.channel_second_moment
        err = float(moment @ ((quantize(weight) - weight) ** 2).sum(axis=0))
        ref = float(moment @ (weight.astype(np.float64) ** 2).sum(axis=0))
        ratio = np.sqrt(err / ref) if ref > 0 else 0.0
        candidates.append(Candidate(name, ratio, f"expected relative output error {ratio:.4f}"))
    return sorted(candidates, key=lambda c: c.score, reverse=True)


def embedding_tables(model: Any) -> dict[str, np.ndarray]:
    """Torch ``nn.Embedding`` tables (``[rows, hidden]``) by module name."""
    import torch

    return {n: m.weight.detach().numpy() for n, m in model.named_modules() if isinstance(m, torch.nn.Embedding)}


def rank_embeddings(tables: dict[str, np.ndarray], quantize: Callable[[np.ndarray], np.ndarray]) -> list[Candidate]:
    """Score embedding tables for a weight-only recipe: a lookup returns a row as is, so the expected
    relative output error is the table's relative quantization error (rows equally likely)."""
    candidates = []
    for name, table in tables.items():
        ref = float(np.linalg.norm(table))
        ratio = float(np.linalg.norm(quantize(table) - table)) / ref if ref > 0 else 0.0
        candidates.append(Candidate(name, ratio, f"expected relative output error {ratio:.4f} (embedding rows)"))
    return candidates


def _schedule(max_keep: int, available: int) -> list[int]:
    limit = min(max_keep, available)
    steps, k = [], 1
    while k < limit:
        steps.append(k)
        k *= 2
    if limit > 0:
        steps.append(limit)
    return steps


def _shortfall(failed: list[Any]) -> float:
    """How far the failed checks are from their limits (inf when a figure is missing)."""
    total = 0.0
    for check in failed:
        if check.measured is None or not math.isfinite(check.measured):
            return math.inf
        total += abs(check.measured - check.limit)
    return total


def headroom(checks: list[Any]) -> float:
    """Smallest margin over ``checks`` (objects with ``measured``, ``limit``, ``op``), each as a share
    of the distance between its limit and a perfect figure (1 for ``>=`` checks, 0 for ``<=``).

    Checks whose limit is the perfect figure itself (``nonfinite <= 0``) are pass/fail only and do
    not count; inf when no check has room to measure.
    """
    worst = math.inf
    for check in checks:
        if check.measured is None or not math.isfinite(check.measured):
            return -math.inf
        if check.op == ">=" and check.limit < 1.0:
            worst = min(worst, (check.measured - check.limit) / (1.0 - check.limit))
        elif check.op == "<=" and check.limit > 0.0:
            worst = min(worst, (check.limit - check.measured) / check.limit)
    return worst


def select_recipe(
    variants: list[tuple[str, V]],
    candidates: list[Candidate],
    build: Callable[[V, list[Candidate]], T],
    evaluate: Callable[[T], list[Any]],
    max_keep: int,
    log: Callable[[str], None] = lambda _m: None,
    kept_as: str = "float",
    buy_headroom: bool = False,
) -> SelectionResult[T]:
    """Try every variant (label, value) fully quantized, then float fallback on the closest one.

    ``build(value, kept)`` returns an artifact; ``evaluate(artifact)`` returns gate checks (objects
    with ``passed``, ``measured``, ``limit``, ``op`` and ``line()``). Returns
    the first passing variant with comfortable :func:`headroom`, else the passing variant with the
    most headroom, else the first passing fallback (the other variants at ``max_keep`` included; one
    that passes there is tried with the schedule's fewer kept layers too), else the failing one
    closest to the gate at ``max_keep``. ``kept_as`` names what
    kept layers stay at in log lines (float; int8 under a 4-bit recipe).

    With ``buy_headroom`` (static recipes: their activation ranges are fixed on the calibration texts,
    so a user's text can fall outside them), a passing variant that is only tight also gets the float
    fallback, and the first fallback with comfortable headroom wins over it.
    """
    attempts: list[Attempt] = []

    def attempt(label: str, value: V, kept: list[Candidate]) -> tuple[T, list[Any], float]:
        artifact = build(value, kept)
        checks = evaluate(artifact)
        failed = [c for c in checks if not c.passed]
        room = headroom(checks)
        attempts.append(Attempt(label, [c.name for c in kept], not failed, [c.line() for c in failed],
                                round(room, 4) if math.isfinite(room) else None))
        return artifact, failed, room

    passing: list[tuple[float, str, T]] = []
    failing: list[tuple[float, str, V, T]] = []
    for label, value in variants:
        artifact, failed, room = attempt(label, value, [])
        if not failed:
            passing.append((room, label, artifact))
            continue
        log(f"{label}: {failed[0].line()}")
        failing.append((_shortfall(failed), label, value, artifact))
    if passing:  # the cheapest variant with comfortable headroom, else the one with the most
        comfortable = [p for p in passing if p[0] >= COMFORTABLE_HEADROOM]
        room, label, artifact = comfortable[0] if comfortable else max(passing, key=lambda p: p[0])
        if comfortable or not buy_headroom:
            return SelectionResult(artifact, label, [], attempts, True)
        value = dict(variants)[label]
        safest: tuple[float, T, list[Candidate]] = (room, artifact, [])
        for k in _schedule(max_keep, len(candidates)):
            kept = candidates[:k]
            bought, failed, more = attempt(label, value, kept)
            if not failed and more >= COMFORTABLE_HEADROOM:
                return SelectionResult(bought, label, kept, attempts, True)
            if not failed and more > safest[0]:
                safest = (more, bought, kept)
            log(f"{label}, {k} layer(s) kept in {kept_as}: headroom {more:.2f}, wanted {COMFORTABLE_HEADROOM}")
        return SelectionResult(safest[1], label, safest[2], attempts, True)
    assert failing, "select_recipe needs at least one variant"
    failing.sort(key=lambda f: f[0])  # stable: on a tie, the cheaper variant first
    shortfall, label, value, artifact = failing[0]
    kept: list[Candidate] = []
    for k in _schedule(max_keep, len(candidates)):
        kept = candidates[:k]
        artifact, failed, _ = attempt(label, value, kept)
        if not failed:
            return SelectionResult(artifact, label, kept, attempts, True)
        log(f"{label}, {k} layer(s) kept in {kept_as}: {failed[0].line()}")
    # the variant closest fully quantized need not be the closest with layers kept (their margins can
    # differ by a hair there): before failing, the others get the same kept layers, closest first; one
    # that passes then gets the smaller kept sets of the schedule, and the fewest that pass win
    closest = (_shortfall(failed) if kept else shortfall, label, artifact)
    for _, other, other_value, _ in failing[1:] if kept else []:
        tried, failed, _ = attempt(other, other_value, kept)
        if not failed:
            for k in _schedule(max_keep, len(candidates))[:-1]:
                fewer, failed, _ = attempt(other, other_value, candidates[:k])
                if not failed:
                    return SelectionResult(fewer, other, candidates[:k], attempts, True)
            return SelectionResult(tried, other, kept, attempts, True)
        log(f"{other}, {len(kept)} layer(s) kept in {kept_as}: {failed[0].line()}")
        if _shortfall(failed) < closest[0]:
            closest = (_shortfall(failed), other, tried)
    return SelectionResult(closest[2], closest[1], kept, attempts, False)
