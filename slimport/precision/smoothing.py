"""Activation smoothing (SmoothQuant, Xiao et al. 2023) for dynamically quantized Linear layers.

A per-tensor int8 activation quantizer spends its 256 levels on the input's full range; a few
outlier channels (typical after GELU in BERT FFNs) leave the rest with a handful of levels. For
``y = x W^T`` the smoothed layer computes ``(x / s) (W * s)^T`` -- the same function in exact
arithmetic -- with ``s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha)`` per input channel ``j``, which
moves the outliers from the activation into the (per-channel quantized) weight.

The transform is applied to a copy of the torch module before export, so every exporter and
format gets it: the division becomes one elementwise Mul in front of the MatMul. Linears that read
the same tensor (Q/K/V) share one ``s`` (their weights' peaks taken together) and one Mul, so the
exported graph divides once and a dynamic quantizer quantizes that input once for all three.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from slimport.precision.stats import LinearInputStats

MIN_SCALE = 1e-5


def smoothing_scales(stats: list[LinearInputStats], weights: list[np.ndarray], alpha: float) -> np.ndarray:
    """Per-input-channel scales ``s`` shared by torch Linears (``weights`` each ``[out, in]``, ``stats``
    their inputs'): activation and weight peaks are taken over all of them."""
    act = np.clip(np.max([st.channel_absmax for st in stats], axis=0), MIN_SCALE, None)
    wmax = np.clip(np.max([np.abs(w).max(axis=0) for w in weights], axis=0), MIN_SCALE, None)
    return np.clip(act**alpha / wmax ** (1.0 - alpha), MIN_SCALE, None)


def input_groups(stats: dict[str, LinearInputStats]) -> dict[str, list[str]]:
    """Profiled Linears grouped by the input tensor they read: first reader -> all readers
    (``shares_input_with`` links followed to their start)."""
    groups: dict[str, list[str]] = {}
    for name in stats:
        leader, seen = name, {name}
        while (nxt := stats[leader].shares_input_with) in stats and nxt not in seen:
            leader = nxt
            seen.add(leader)
        groups.setdefault(leader, []).append(name)
    return groups


class SharedDivision:
    """Forward pre-hook dividing a Linear's input by ``s``, computed once per input tensor for a group.

    The group's first Linear computes ``x * (1 / s)``; the others get the same tensor back when they
    are handed the very same ``x``, so a traced graph holds one Mul feeding all of them.
    """

    def __init__(self, inverse: Any) -> None:
        self.inverse = inverse
        self._last: tuple[Any, Any] | None = None

    def __call__(self, _module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Replace ``args[0]`` by its division (cached for the same input object)."""
        if self._last is None or self._last[0] is not args[0]:
            self._last = (args[0], args[0] * self.inverse)
        return (self._last[1], *args[1:])

    def reset(self, *_: Any) -> None:
        """Drop the cached input (a forward hook on the whole model: after each forward)."""
        self._last = None


def smoothed_copy(model: Any, stats: dict[str, LinearInputStats], alpha: float) -> Any:
    """A deep copy of ``model`` with every profiled ``nn.Linear`` smoothed at strength ``alpha``."""
    import torch

    smoothed = copy.deepcopy(model)
    modules = {n: m for n, m in smoothed.named_modules() if isinstance(m, torch.nn.Linear) and n in stats}
    for names in input_groups({n: s for n, s in stats.items() if n in modules}).values():
        members = [modules[n] for n in names]
        scales = smoothing_scales([stats[n] for n in names], [m.weight.detach().numpy() for m in members], alpha)
        scale_t = torch.from_numpy(scales.astype(np.float32))
        division = SharedDivision((1.0 / scale_t).contiguous())
        for module in members:
            with torch.no_grad():
                module.weight.mul_(scale_t)
            module.register_forward_pre_hook(division)
        smoothed.register_forward_hook(division.reset)
    return smoothed.eval()
