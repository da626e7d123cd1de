"""Core ML runner for decoder ``.mlpackage`` artifacts, on the Linux ML Program evaluator.

The program takes ``input_ids``/``input_pos`` ``[1, T]`` (``T`` from 1 to the prefill length) and the
fixed ``k_cache``/``v_cache``, and returns ``logits``, ``k_new``, ``v_new``
(:mod:`slimport.exporters.coreml_decoder`); the cache is kept by :class:`StaticCacheDecoder`. The
evaluator reproduces the program's arithmetic, not Apple's speed, so decoder latency is not
reported from it (``reference_only``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slimport.errors import InputError
from slimport.validation.runners.static_cache import StaticCacheDecoder


class CoremlDecoder(StaticCacheDecoder):
    """Runs a decoder ``.mlpackage`` with the NumPy evaluator; logits are returned as fp32."""

    name = "slimport-mil-evaluator-decoder"
    reference_only = True

    def __init__(self, model_path: Path, threads: int) -> None:
        from slimport.validation.mil import MilInterpreter

        self._interpreter = MilInterpreter(model_path)  # loads the package once; its spec has the metadata
        metadata = dict(self._interpreter.spec.description.metadata.userDefined)
        if "slimport.prefill_len" not in metadata or "slimport.context" not in metadata:
            raise InputError(f"{model_path.name} is not a slimport decoder program (no slimport.prefill_len / "
                             "slimport.context metadata)")
        self.prefill_len = int(metadata["slimport.prefill_len"])
        self.context = int(metadata["slimport.context"])
        cache = next(f for f in self._interpreter.spec.description.input if f.name == "k_cache")
        self.cache_shape = tuple(int(d) for d in cache.type.multiArrayType.shape)

    def call(self, ids: np.ndarray, positions: np.ndarray, k_cache: np.ndarray,
             v_cache: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One program call."""
        out = self._interpreter.run({"input_ids": ids, "input_pos": positions, "k_cache": k_cache,
                                     "v_cache": v_cache})
        return (np.asarray(out["logits"], np.float32)[0], np.asarray(out["k_new"], np.float32),
                np.asarray(out["v_new"], np.float32))

    def versions(self) -> dict[str, str]:
        """coremltools version (its proto loader and constexpr decoders are used)."""
        from slimport.validation.runners.coreml import evaluator_versions

        return evaluator_versions()
