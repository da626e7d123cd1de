"""Accuracy-aware selection of layers to keep in float, shared by every exporter.

1. :func:`rank_linear_layers` runs the fp32 torch model on calibration texts and scores each
   ``nn.Linear`` by how badly 8-bit quantization is expected to hurt it: the input activation's
   range over its RMS (a per-tensor activation quantizer spends its 256 levels on that range) times
   the weight's peak over RMS (per channel when the recipe is per-channel).
2. :func:`select_float_layers` builds the artifact with the top-k layers kept in float for
   k = 0, 1, 2, 4, ... up to the recipe's ``max_keep_float``, evaluates each on the calibration
   texts with the target's parity gate, and stops at the first that passes.

Exporters map torch module names to their own op names; the search and the ranking are here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from slimport.targets.schema import Profile
from slimport.validation.inputs import batches

T = TypeVar("T")


@dataclass
class Candidate:
    """A torch ``nn.Linear`` that could be kept in float, with its sensitivity score and why."""

    name: str
    score: float
    reason: str


@dataclass
class Attempt:
    """One build-and-evaluate round of the selection."""

    kept: list[str]
    passed: bool
    failed: list[str] = field(default_factory=list)


@dataclass
class SelectionResult(Generic[T]):
    """The chosen artifact, the layers kept in float and every attempt made."""

    artifact: T
    kept: list[Candidate]
    attempts: list[Attempt]
    passed: bool

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for the report."""
        return {
            "kept_float": [asdict(c) for c in self.kept],
            "attempts": [asdict(a) for a in self.attempts],
            "selection_passed": self.passed,
        }


def _ratio(peak: float, rms: float) -> float:
    return float(peak / rms) if rms > 0 else 0.0


def _weight_score(weight: np.ndarray, per_channel: bool) -> float:
    w = np.abs(weight.astype(np.float64))
    if per_channel:  # one scale per output channel (row of a torch Linear weight)
        rms = np.sqrt((w**2).mean(axis=1))
        return float(np.mean(np.where(rms > 0, w.max(axis=1) / np.where(rms > 0, rms, 1), 0)))
    return _ratio(float(w.max()), float(np.sqrt((w**2).mean())))


def rank_linear_layers(
    model: Any, tokenizer: Any, texts: Sequence[str], profile: Profile, per_channel: bool
) -> list[Candidate]:
    """Score every ``nn.Linear`` of ``model`` on ``texts``; most sensitive first."""
    import torch

    stats: dict[str, dict[str, float]] = {}
    hooks = []

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_module: Any, args: tuple[Any, ...]) -> None:
            x = args[0].detach().double()
            entry = stats.setdefault(name, {"min": np.inf, "max": -np.inf, "sq": 0.0, "n": 0})
            entry["min"] = min(entry["min"], float(x.min()))
            entry["max"] = max(entry["max"], float(x.max()))
            entry["sq"] += float((x**2).sum())
            entry["n"] += x.numel()

        return hook

    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    for name, module in linears.items():
        hooks.append(module.register_forward_pre_hook(make_hook(name)))
    accepted = inspect.signature(model.forward).parameters
    try:
        with torch.inference_mode():
            for batch in batches(tokenizer, texts, profile):
                feeds = {k: torch.from_numpy(v) for k, v in batch.feeds.items() if k in accepted}
                model(**feeds)
    finally:
        for h in hooks:
            h.remove()
    candidates = []
    for name, module in linears.items():
        entry = stats.get(name)
        if not entry or entry["n"] == 0:
            continue
        rms = float(np.sqrt(entry["sq"] / entry["n"]))
        act = _ratio(entry["max"] - entry["min"], rms)
        wscore = _weight_score(module.weight.detach().numpy(), per_channel)
        candidates.append(Candidate(name, act * wscore,
                                    f"input range/RMS {act:.1f} x weight peak/RMS {wscore:.1f}"))
    return sorted(candidates, key=lambda c: c.score, reverse=True)


def _schedule(max_keep: int, available: int) -> list[int]:
    limit = min(max_keep, available)
    steps, k = [0], 1
    while k < limit:
        steps.append(k)
        k *= 2
    if limit > 0:
        steps.append(limit)
    return steps


def select_float_layers(
    candidates: list[Candidate],
    build: Callable[[list[Candidate]], T],
    evaluate: Callable[[T], list[Any]],
    max_keep: int,
    log: Callable[[str], None] = lambda _m: None,
) -> SelectionResult[T]:
    """Keep the top-k candidates in float for growing k until ``evaluate`` reports no failed check.

    ``build(kept)`` returns an artifact; ``evaluate(artifact)`` returns gate checks (objects with
    ``passed`` and ``line()``). Returns the first passing artifact, or the last one tried.
    """
    attempts: list[Attempt] = []
    artifact: T | None = None
    kept: list[Candidate] = []
    for k in _schedule(max_keep, len(candidates)):
        kept = candidates[:k]
        artifact = build(kept)
        failed = [c for c in evaluate(artifact) if not c.passed]
        attempts.append(Attempt([c.name for c in kept], not failed, [c.line() for c in failed]))
        if not failed:
            return SelectionResult(artifact, kept, attempts, True)
        log(f"{k} layer(s) kept in float: {failed[0].line()}; trying more")
    assert artifact is not None
    return SelectionResult(artifact, kept, attempts, False)
