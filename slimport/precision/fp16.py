"""fp16 safety, format-independent: find what overflows fp16 before conversion, repair mask sentinels.

* :func:`range_findings` runs the fp32 torch model on real text and records the largest absolute
  value of every weight and of every leaf module's output. Anything beyond fp16's 65504 becomes
  ``inf`` in an fp16 program; the finding names the module.
* :func:`fp16_safe_constant` is the repair for the known case: attention-mask sentinels such as
  ``torch.finfo(float32).min`` become fp16 ``-inf``, and ``(1 - mask) * -inf`` gives ``0 * -inf =
  NaN`` (MobileBERT, and BERT with eager attention). A finite ``-1e4`` masks just as well: after
  softmax, ``exp(-1e4)`` is 0 in fp16 as in fp32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slimport.precision.stats import run_with_hooks
from slimport.targets.schema import Profile
from slimport.validation.corpus import TextInput

FP16_MAX = 65504.0
#: constants at least this large are sentinels ("minus infinity" for masks), not real values
SENTINEL = 1e9
SAFE_SENTINEL = 1e4


@dataclass
class RangeFinding:
    """The largest absolute value of a weight or a module output, against fp16's range."""

    name: str
    kind: str  # "weight" or "activation"
    max_abs: float

    @property
    def overflows(self) -> bool:
        """True when the value does not fit fp16 (becomes inf)."""
        return not np.isfinite(self.max_abs) or self.max_abs > FP16_MAX


def range_findings(model: Any, tokenizer: Any, texts: Sequence[TextInput], profile: Profile) -> list[RangeFinding]:
    """Largest |value| of every parameter and every leaf module's float output on ``texts``, in forward
    order (a module's weights before its output, modules as they first return), so the first
    overflow listed is where it starts, not the largest one it causes downstream."""
    import torch

    peaks: dict[str, float] = {}

    def hook(name: str) -> Any:
        def record(_module: Any, _args: Any, output: Any) -> None:
            tensor = output[0] if isinstance(output, tuple) else output
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                peaks[name] = max(peaks.get(name, 0.0), float(tensor.detach().abs().max()))

        return record

    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    run_with_hooks(model, tokenizer, texts, profile, [m.register_forward_hook(hook(n)) for n, m in leaves])
    findings = [RangeFinding(n, "weight", float(p.detach().abs().max())) for n, p in model.named_parameters()]
    findings += [RangeFinding(n, "activation", v) for n, v in peaks.items()]
    position = {name: i for i, name in enumerate(peaks)}  # insertion order: first output of each module

    def forward_order(finding: RangeFinding) -> tuple[int, bool]:
        owner = finding.name.rsplit(".", 1)[0] if finding.kind == "weight" else finding.name
        return position.get(owner, len(position)), finding.kind == "activation"

    return sorted(findings, key=forward_order)


def fp16_safe_constant(value: np.ndarray) -> np.ndarray | None:
    """A finite fp16-safe copy of a float constant whose out-of-range entries are all mask sentinels
    (|v| >= 1e9, e.g. ``finfo.min``); None when the constant fits fp16 or holds real large values."""
    arr = np.asarray(value)
    if arr.dtype.kind != "f" or arr.size == 0:
        return None
    big = np.abs(arr) > FP16_MAX
    if not big.any() or not (np.abs(arr[big]) >= SENTINEL).all():
        return None
    return np.where(big, np.sign(arr) * SAFE_SENTINEL, arr).astype(arr.dtype)
