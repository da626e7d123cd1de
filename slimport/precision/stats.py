"""Statistics of every ``nn.Linear`` input on calibration text, gathered in one torch pass."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimport.targets.schema import Profile
from slimport.validation.corpus import TextInput
from slimport.validation.inputs import batches


@dataclass
class LinearInputStats:
    """Range, RMS and per-input-channel peak of one Linear layer's input, over all positions run.

    Padding positions are included on purpose: a dynamic quantizer sees them too.
    """

    minimum: float
    maximum: float
    sq_sum: float
    count: int
    channel_absmax: np.ndarray
    #: per-input-channel sum of squares (with ``count / channels`` rows: the second moment per channel)
    channel_sq_sum: np.ndarray | None = None
    #: the first Linear that read the very same input tensor (e.g. ``query`` for ``key`` and ``value``)
    shares_input_with: str | None = None

    @property
    def channel_second_moment(self) -> np.ndarray:
        """Mean of x_j^2 per input channel j."""
        rows = max(self.count // max(len(self.channel_absmax), 1), 1)
        if self.channel_sq_sum is None:
            return np.full(len(self.channel_absmax), self.rms**2)
        return self.channel_sq_sum / rows

    @property
    def rms(self) -> float:
        """Root mean square of the input."""
        return float(np.sqrt(self.sq_sum / max(self.count, 1)))


def collect_linear_input_stats(
    model: Any, tokenizer: Any, texts: Sequence[TextInput], profile: Profile
) -> dict[str, LinearInputStats]:
    """Run ``model`` on ``texts`` at the profile's shape and record every ``nn.Linear`` input.

    Linears called one after another on the same tensor object (Q/K/V projections) are linked
    through ``shares_input_with``. Only the latest input is held, not every activation of a batch.
    """
    import torch

    stats: dict[str, LinearInputStats] = {}
    latest: list[Any] = [None, ""]  # the last Linear input seen and the first Linear that read it

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_module: Any, args: tuple[Any, ...]) -> None:
            if latest[0] is not args[0]:
                latest[:] = [args[0], name]
            x = args[0].detach().double()
            entry = stats.setdefault(name, LinearInputStats(np.inf, -np.inf, 0.0, 0, np.zeros(x.shape[-1])))
            if latest[1] != name:
                entry.shares_input_with = latest[1]
            entry.minimum = min(entry.minimum, float(x.min()))
            entry.maximum = max(entry.maximum, float(x.max()))
            entry.sq_sum += float((x**2).sum())
            entry.count += x.numel()
            rows = x.reshape(-1, x.shape[-1])
            entry.channel_absmax = np.maximum(entry.channel_absmax, rows.abs().amax(0).numpy())
            squares = (rows**2).sum(0).numpy()
            entry.channel_sq_sum = squares if entry.channel_sq_sum is None else entry.channel_sq_sum + squares

        return hook

    hooks = [m.register_forward_pre_hook(make_hook(n)) for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear)]
    try:
        run_with_hooks(model, tokenizer, texts, profile, hooks)
    finally:
        latest[:] = [None, ""]
    return stats


def run_with_hooks(model: Any, tokenizer: Any, texts: Sequence[TextInput], profile: Profile, hooks: list[Any]) -> None:
    """Run ``model`` on ``texts`` batch by batch at the profile's shape, then remove ``hooks``."""
    import torch

    accepted = inspect.signature(model.forward).parameters
    try:
        with torch.inference_mode():
            for batch in batches(tokenizer, texts, profile):
                model(**{k: torch.from_numpy(v) for k, v in batch.feeds.items() if k in accepted})
    finally:
        for h in hooks:
            h.remove()
