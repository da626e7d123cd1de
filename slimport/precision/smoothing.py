"""Activation smoothing (SmoothQuant, Xiao et al. 2023) for dynamically quantized Linear layers.

A per-tensor int8 activation quantizer spends its 256 levels on the input's full range; a few
outlier channels (typical after GELU in BERT FFNs) leave the rest with a handful of levels. For
``y = x W^T`` the smoothed layer computes ``(x / s) (W * s)^T`` -- the same function in exact
arithmetic -- with ``s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha)`` per input channel ``j``, which
moves the outliers from the activation into the (per-channel quantized) weight.

The transform is applied to a copy of the torch module before export, so every exporter and
format gets it: the division becomes one elementwise Mul in front of the MatMul. Linears that read
the same tensor (Q/K/V) share one ``s`` (their weights' peaks taken together) and one Mul, so the
exported graph divides once and a dynamic quantizer quantizes that input once for all three. Where
the input is channel by channel proportional to another Linear's output (the attention output
projection reads ``softmax(QK^T) V``), the division goes into that Linear's weights instead and
leaves no Mul at all (:func:`channel_producers`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from slimport.precision.stats import LinearInputStats, run_with_hooks
from slimport.targets.schema import Profile

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


def smoothed_copy(model: Any, stats: dict[str, LinearInputStats], alpha: float,
                  producers: dict[str, str] | None = None) -> Any:
    """A deep copy of ``model`` with every profiled ``nn.Linear`` smoothed at strength ``alpha``.

    A Linear named in ``producers`` (:func:`channel_producers`) gets its division folded into its
    producer's output rows; every other group gets a :class:`SharedDivision` (one Mul in the graph).
    """
    import torch

    producers = producers or {}
    smoothed = copy.deepcopy(model)
    modules = {n: m for n, m in smoothed.named_modules() if isinstance(m, torch.nn.Linear)}
    for names in input_groups({n: s for n, s in stats.items() if n in modules}).values():
        members = [modules[n] for n in names]
        scales = smoothing_scales([stats[n] for n in names], [m.weight.detach().numpy() for m in members], alpha)
        scale_t = torch.from_numpy(scales.astype(np.float32))
        with torch.no_grad():
            for module in members:
                module.weight.mul_(scale_t)
        if len(names) == 1 and producers.get(names[0]) in modules:
            producer = modules[producers[names[0]]]
            with torch.no_grad():
                producer.weight.div_(scale_t[:, None])
                if producer.bias is not None:
                    producer.bias.div_(scale_t)
            continue
        division = SharedDivision((1.0 / scale_t).contiguous())
        for module in members:
            module.register_forward_pre_hook(division)
        smoothed.register_forward_hook(division.reset)
    return smoothed.eval()


def channel_producers(model: Any, tokenizer: Any, text: str, profile: Profile,
                      stats: dict[str, LinearInputStats]) -> dict[str, str]:
    """Linears whose whole input is, channel by channel, proportional to an earlier Linear's output:
    consumer name -> producer name (the attention output projection reads ``softmax(QK^T) V``, linear
    in each channel of the value projection).

    For such a pair a smoothing division of the consumer's input folds into the producer's weight rows
    and bias, and no Mul is left in the graph. Candidates are the nearest earlier Linear of matching
    width in the same module subtree, one consumer per producer. Each is proven on ``text``: scaling
    the producer's output channels by random factors must scale the consumer's input by exactly those
    factors (a GELU or a LayerNorm in between fails), and with the consumer's input scaled back the
    model's output must not change (nothing else may read the producer's output).
    """
    import torch

    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n in stats}
    order = [n for n in stats if n in linears]
    candidates: dict[str, str] = {}
    for index, consumer in enumerate(order):
        if stats[consumer].shares_input_with is not None or any(
                stats[o].shares_input_with == consumer for o in order):
            continue  # a grouped input (Q/K/V) has no single producer
        width = linears[consumer].in_features
        earlier = [p for p in reversed(order[:index]) if linears[p].out_features == width]
        if earlier:
            candidates[consumer] = max(earlier, key=lambda p: _shared_prefix(p, consumer))
    chosen = [c for c, p in candidates.items() if list(candidates.values()).count(p) == 1]
    if not chosen:
        return {}
    baseline, reference = _probe(model, tokenizer, text, profile, linears, chosen, None, None)
    generator = torch.Generator().manual_seed(0)
    found = {}
    for consumer in chosen:
        producer = candidates[consumer]
        factors = 0.5 + 1.5 * torch.rand(linears[producer].out_features, generator=generator)
        probed, output = _probe(model, tokenizer, text, profile, linears, [consumer], producer, factors)
        if consumer in baseline and consumer in probed and _close(probed[consumer], baseline[consumer] * factors) \
                and _close(output, reference):
            found[consumer] = producer
    return found


def _close(got: Any, expected: Any) -> bool:
    """Same shape and equal up to fp32 rounding (1e-4 of the largest magnitude)."""
    if got is None or expected is None or got.shape != expected.shape:
        return False
    return float((got - expected).abs().max()) <= 1e-4 * float(expected.abs().max()) + 1e-6


def _shared_prefix(a: str, b: str) -> int:
    """Number of leading dotted name parts ``a`` and ``b`` share."""
    count = 0
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x != y:
            break
        count += 1
    return count


def _probe(model: Any, tokenizer: Any, text: str, profile: Profile, linears: dict[str, Any],
           consumers: list[str], producer: str | None, factors: Any) -> tuple[dict[str, Any], Any]:
    """The inputs of ``consumers`` and the model's first output on ``text``. With ``factors``, the
    ``producer``'s output is multiplied by them and each consumer divides its input by them again
    (after the input is recorded)."""
    captured: dict[str, Any] = {}
    output: list[Any] = [None]

    def capture(name: str) -> Callable[..., None]:
        def hook(_module: Any, args: tuple[Any, ...]) -> None:
            captured.setdefault(name, args[0].detach().clone())
        return hook

    def keep_output(_module: Any, _args: Any, out: Any) -> None:
        if output[0] is None:
            output[0] = (out[0] if isinstance(out, tuple | dict) or hasattr(out, "to_tuple") else out).detach()

    hooks = [linears[c].register_forward_pre_hook(capture(c)) for c in consumers]
    hooks.append(model.register_forward_hook(keep_output))
    if producer is not None:
        hooks.append(linears[producer].register_forward_hook(lambda _m, _a, out: out * factors))
        hooks += [linears[c].register_forward_pre_hook(lambda _m, args: (args[0] / factors, *args[1:]))
                  for c in consumers]
    run_with_hooks(model, tokenizer, [text], profile, hooks)
    return captured, output[0]
