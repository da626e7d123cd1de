"""The validation stage: parity against PyTorch, latency, peak memory, size, then the gate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimport.models.loader import ModelSource
from slimport.models.tasks import DECODER_TASKS
from slimport.targets.schema import Target
from slimport.validation.corpus import TextInput, text_length
from slimport.validation.gate import Check, budget_checks, parity_checks
from slimport.validation.inputs import Batch, batches, latency_feeds
from slimport.validation.latency import (
    effective_threads,
    measure_peak_memory,
    performance_record,
    worst_case_latency,
)
from slimport.validation.metrics import ParityAccumulator
from slimport.validation.reference import TorchReference
from slimport.validation.runners import Runner, get_native_runner, get_runner

HOST_NOTE = ("Latency and memory were measured on this host's CPU with the profile's thread count "
             "(capped at the host's cores); they are not phone measurements.")


REFERENCE_NOTE = ("This format's runtime does not run on this host: parity was computed with a reference "
                  "evaluator of the exported program, and latency and memory need the device (not measured).")
NATIVE_NOTE = ("Parity was computed twice, with the reference evaluator and with the platform runtime on this "
               "host (parity.native; both are gated); latency and memory are the platform runtime's on this "
               "host's CPU/GPU/NPU, not a phone's.")


class ReferenceOutputs:
    """PyTorch reference outputs per batch, computed once per (texts, profile) and reused."""

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self._reference: TorchReference | None = None
        self._cache: dict[tuple[Any, ...], list[tuple[Batch, dict[str, np.ndarray]]]] = {}

    def get(self, texts: Sequence[TextInput], target: Target) -> list[tuple[Batch, dict[str, np.ndarray]]]:
        """Batches of ``texts`` at the target's profile with their reference outputs."""
        profile = target.profile
        key = (tuple(texts), profile.batch, profile.seq_len, profile.static_shape)
        if key not in self._cache:
            if self._reference is None:
                self._reference = TorchReference(self.source)
            pairs = []
            for batch in batches(self.source.tokenizer, texts, profile):
                pairs.append((batch, self._reference.run(batch.feeds)))
            self._cache[key] = pairs
        return self._cache[key]


def compute_parity(runner: Runner, pairs: list[tuple[Batch, dict[str, np.ndarray]]], source: ModelSource,
                   on_batch: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run every batch through ``runner`` and compare with the reference outputs."""
    acc = ParityAccumulator(source.task, source.output_names)
    for batch, ref in pairs:
        acc.update(ref, runner.run(batch.feeds), batch.mask, batch.answer_context)
        if on_batch:
            on_batch()
    return acc.summary()


def measure_performance(fmt: str, model_path: Path, source: ModelSource, target: Target, texts: Sequence[TextInput],
                        runs: int, warmup: int) -> tuple[dict[str, Any], Runner, Runner | None]:
    """Latency at the profile's full shape and threads, and the runner process's peak memory.

    Latency is timed on the longest text and on the shortest one padded to the same shape, and the
    slower one is reported and gated (:func:`worst_case_latency`); memory on the longest text.

    Returns the performance figures, the format's runner, and the platform runtime's runner where this
    host has one (:func:`get_native_runner`; then it is the one timed, as the format's runner is a
    reference evaluator)."""
    profile = target.profile
    threads = effective_threads(profile.threads)
    runner = get_runner(fmt, model_path, threads)
    reference_only = getattr(runner, "reference_only", False)
    native = get_native_runner(fmt, model_path, threads) if reference_only else None
    timer = native or runner
    feeds = latency_feeds(source.tokenizer, max(texts, key=text_length), profile)
    timed = runs > 0 and not getattr(timer, "reference_only", False)
    inputs = {"longest text": feeds,
              "shortest text, padded": latency_feeds(source.tokenizer, min(texts, key=text_length), profile)}
    latency = worst_case_latency(timer, inputs, runs=runs, warmup=warmup) if timed else None
    spec = f"{type(native).__module__}:{type(native).__qualname__}" if native else None
    memory = measure_peak_memory(fmt, model_path, threads, feeds, runner=spec) if timed else None
    performance = performance_record(
        timer.name, {**runner.versions(), **(native.versions() if native else {})}, profile.threads, threads,
        [profile.batch, int(feeds["input_ids"].shape[1])], latency, memory,
        NATIVE_NOTE if native else REFERENCE_NOTE if reference_only else HOST_NOTE)
    return performance, runner, native


def validate(fmt: str, model_path: Path, size_mb: float, source: ModelSource, target: Target,
             texts: Sequence[TextInput], references: ReferenceOutputs | None = None, runs: int = 30, warmup: int = 5,
             on_batch: Callable[[], None] | None = None) -> tuple[dict[str, Any], dict[str, Any], list[Check]]:
    """Full validation of one artifact: returns (parity, performance, checks). Decoders are
    validated by generation (:func:`slimport.validation.generation.validate_decoder`)."""
    if source.task in DECODER_TASKS:
        from slimport.validation.generation import validate_decoder

        return validate_decoder(fmt, model_path, size_mb, source, target, texts, runs, on_batch)
    references = references or ReferenceOutputs(source)
    pairs = references.get(texts, target)
    performance, runner, native = measure_performance(fmt, model_path, source, target, texts, runs, warmup)
    parity = compute_parity(runner, pairs, source, on_batch)
    parity["reference"] = "pytorch-eager-fp32"
    parity["runner"] = runner.name
    checks = parity_checks(parity, target.gate)
    if native is not None:
        parity["native"] = {"runner": native.name, **compute_parity(native, pairs, source)}
        checks += parity_checks(parity["native"], target.gate, prefix="parity.native")
    memory = performance["memory"]["peak_rss_mb"] if performance["memory"] else None
    checks += budget_checks(target.profile, size_mb, memory, performance["latency"])
    return parity, performance, checks
