"""The app side of an explicit fixed-size KV cache (:mod:`slimport.models.cached_decoder`), shared by
the LiteRT and Core ML decoder runners.

The runner owns ``k_cache``/``v_cache`` ``[layers, 1, kv_heads, context, head_dim]``. A prompt is fed
in chunks of the artifact's prefill length (the last chunk padded with token 0 at the following
positions); each call's ``k_new``/``v_new`` rows are written into the cache at their positions (only
the real tokens' rows). A decode step is one token at the next position. This is exactly what the
sample apps do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from slimport.errors import InputError


class StaticCacheDecoder(ABC):
    """Prefill/step over a fixed cache; subclasses run one call of the model."""

    name = "static-cache"
    #: tokens per prefill call, and cache slots; set by subclasses from the artifact
    prefill_len: int
    context: int
    cache_shape: tuple[int, ...]

    @abstractmethod
    def call(self, ids: np.ndarray, positions: np.ndarray, k_cache: np.ndarray,
             v_cache: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One model call: int32 ``ids``/``positions`` ``[1, T]`` -> logits ``[T, vocab]``, k_new, v_new."""

    def _feed(self, ids: Sequence[int], start: int, cache: tuple[np.ndarray, np.ndarray], tokens: int
              ) -> np.ndarray:
        k_cache, v_cache = cache
        if start + len(ids) > self.context:
            raise InputError(f"the artifact's KV cache holds {self.context} tokens; this prompt and generation need "
                             f"{start + len(ids)}")
        padded = list(ids) + [0] * (tokens - len(ids))
        positions = np.arange(start, start + tokens, dtype=np.int32)
        positions = np.minimum(positions, self.context - 1)  # padded rows past the end: never visible, never kept
        logits, k_new, v_new = self.call(np.asarray([padded], dtype=np.int32), positions[None, :], k_cache, v_cache)
        real = len(ids)
        k_cache[:, :, :, start:start + real] = k_new[:, :, :, :real]
        v_cache[:, :, :, start:start + real] = v_new[:, :, :, :real]
        return logits[:real].astype(np.float32)

    def prefill(self, ids: Sequence[int]) -> tuple[np.ndarray, Any]:
        """Run the prompt in chunks of ``prefill_len`` with an empty cache."""
        cache = (np.zeros(self.cache_shape, np.float32), np.zeros(self.cache_shape, np.float32))
        rows = []
        for start in range(0, len(ids), self.prefill_len):
            rows.append(self._feed(ids[start:start + self.prefill_len], start, cache, self.prefill_len))
        return np.concatenate(rows), (cache, len(ids))

    def step(self, token: int, cache: Any) -> tuple[np.ndarray, Any]:
        """One decode step: the token at the next position. The cache arrays are updated in place."""
        arrays, length = cache
        return self._feed([token], length, arrays, 1), (arrays, length + 1)
