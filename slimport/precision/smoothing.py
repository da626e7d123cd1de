"""Activation smoothing (SmoothQuant, Xiao et al. 2023) for dynamically quantized Linear layers.

A per-tensor int8 activation quantizer spends its 256 levels on the input's full range; a few
outlier channels (typical after GELU in BERT FFNs) leave the rest with a handful of levels. For
``y = x W^T`` the smoothed layer computes ``(x / s) (W * s)^T`` -- the same function in exact
arithmetic -- with ``s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha)`` per input channel ``j``, which
moves the outliers from the activation into the (per-channel quantized) weight.

The transform is applied to a copy of the torch module before export, so every exporter and
format gets it: the division becomes one elementwise Mul in front of the MatMul.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from slimport.precision.stats import LinearInputStats

MIN_SCALE = 1e-5


def smoothing_scales(stats: LinearInputStats, weight: np.ndarray, alpha: float) -> np.ndarray:
    """Per-input-channel scales ``s`` for a torch Linear ``weight`` of shape ``[out, in]``."""
    act = np.clip(stats.channel_absmax, MIN_SCALE, None)
    wmax = np.clip(np.abs(weight).max(axis=0), MIN_SCALE, None)
    return np.clip(act**alpha / wmax ** (1.0 - alpha), MIN_SCALE, None)


def smoothed_copy(model: Any, stats: dict[str, LinearInputStats], alpha: float) -> Any:
    """A deep copy of ``model`` with every profiled ``nn.Linear`` smoothed at strength ``alpha``."""
    import torch

    smoothed = copy.deepcopy(model)
    for name, module in smoothed.named_modules():
        if not isinstance(module, torch.nn.Linear) or name not in stats:
            continue
        scales = smoothing_scales(stats[name], module.weight.detach().numpy(), alpha)
        scale_t = torch.from_numpy(scales.astype(np.float32))
        with torch.no_grad():
            module.weight.mul_(scale_t)
        inverse = (1.0 / scale_t).contiguous()
        module.register_forward_pre_hook(lambda _m, args, inv=inverse: (args[0] * inv, *args[1:]))
    return smoothed.eval()
