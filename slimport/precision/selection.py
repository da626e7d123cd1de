"""Accuracy-aware recipe selection, shared by every exporter.

1. :func:`rank_linear_layers` scores each ``nn.Linear`` from calibration statistics by how badly
   8-bit quantization is expected to hurt it: the input's range over its RMS (a per-tensor
   activation quantizer spends its 256 levels on that range) times the weight's peak over RMS
   (per output channel when the recipe is per-channel).
2. :func:`select_recipe` first tries each recipe *variant* (e.g. no smoothing, then activation
   smoothing at a few strengths) with every layer quantized; the first that clears the gate on
   the calibration texts wins. If none does, it keeps the top-k layers in float on the variant
   that came closest, for k = 1, 2, 4, ... up to ``max_keep``, and stops at the first that passes.

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


def select_recipe(
    variants: list[tuple[str, V]],
    candidates: list[Candidate],
    build: Callable[[V, list[Candidate]], T],
    evaluate: Callable[[T], list[Any]],
    max_keep: int,
    log: Callable[[str], None] = lambda _m: None,
) -> SelectionResult[T]:
    """Try ``variants`` (label, value) fully quantized, then float fallback on the closest one.

    ``build(value, kept)`` returns an artifact; ``evaluate(artifact)`` returns gate checks (objects
    with ``passed``, ``measured``, ``limit`` and ``line()``). Returns the first passing artifact, or
    the last one tried when nothing passes.
    """
    attempts: list[Attempt] = []

    def attempt(label: str, value: V, kept: list[Candidate]) -> tuple[T, list[Any]]:
        artifact = build(value, kept)
        failed = [c for c in evaluate(artifact) if not c.passed]
        attempts.append(Attempt(label, [c.name for c in kept], not failed, [c.line() for c in failed]))
        return artifact, failed

    best: tuple[float, str, V] | None = None
    for label, value in variants:
        artifact, failed = attempt(label, value, [])
        if not failed:
            return SelectionResult(artifact, label, [], attempts, True)
        log(f"{label}: {failed[0].line()}")
        if best is None or _shortfall(failed) < best[0]:
            best = (_shortfall(failed), label, value)
    assert best is not None, "select_recipe needs at least one variant"
    _, label, value = best
    kept: list[Candidate] = []
    for k in _schedule(max_keep, len(candidates)):
        kept = candidates[:k]
        artifact, failed = attempt(label, value, kept)
        if not failed:
            return SelectionResult(artifact, label, kept, attempts, True)
        log(f"{label}, {k} layer(s) kept in float: {failed[0].line()}")
    return SelectionResult(artifact, label, kept, attempts, False)
