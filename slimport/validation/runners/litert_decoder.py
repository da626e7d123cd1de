"""LiteRT runner for decoder ``.tflite`` artifacts with ``prefill`` and ``decode`` signatures.

Both signatures take ``input_ids``/``input_pos`` (int32 ``[1, T]``) and the fixed ``k_cache``/``v_cache``
and return ``logits``, ``k_new``, ``v_new`` (:mod:`slimport.models.cached_decoder`); the cache is
kept by :class:`StaticCacheDecoder`, as an app keeps it. One interpreter serves both signatures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slimport.errors import InputError
from slimport.validation.runners.litert import litert_versions, open_interpreter
from slimport.validation.runners.static_cache import StaticCacheDecoder

PREFILL, DECODE = "prefill", "decode"


class LiteRtDecoder(StaticCacheDecoder):
    """Runs a decoder ``.tflite`` on the CPU (XNNPACK); logits are returned as fp32."""

    name = "ai-edge-litert-decoder"

    def __init__(self, model_path: Path, threads: int) -> None:
        interpreter, signatures = open_interpreter(model_path, threads)
        if PREFILL not in signatures or DECODE not in signatures:
            raise InputError(f"{model_path.name} is not a slimport decoder: it needs '{PREFILL}' and '{DECODE}' "
                             f"signatures (has: {', '.join(signatures)})")
        self._runners = {name: interpreter.get_signature_runner(name) for name in (PREFILL, DECODE)}
        inputs = self._runners[PREFILL].get_input_details()
        self.prefill_len = int(inputs["input_ids"]["shape"][1])
        self.cache_shape = tuple(int(d) for d in inputs["k_cache"]["shape"])
        self.context = self.cache_shape[3]

    def call(self, ids: np.ndarray, positions: np.ndarray, k_cache: np.ndarray,
             v_cache: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One signature call: ``prefill`` for a full chunk, ``decode`` for one token."""
        runner = self._runners[DECODE if ids.shape[1] == 1 else PREFILL]
        out = runner(input_ids=ids, input_pos=positions, k_cache=k_cache, v_cache=v_cache)
        return out["logits"][0], out["k_new"], out["v_new"]

    def versions(self) -> dict[str, str]:
        """ai-edge-litert version."""
        return litert_versions()
