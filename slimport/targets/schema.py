"""Dataclasses for targets, device profiles, precision recipes and parity gates."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: gate key -> (direction, description). "min": measured must be >= limit; "max": <= limit.
GATE_KEYS: dict[str, tuple[str, str]] = {
    "output_cosine_mean": ("min", "mean cosine over rows, every output"),
    "output_cosine_min": ("min", "worst-row cosine, every output"),
    "max_abs_error": ("max", "largest absolute error, every output"),
    "min_psnr_db": ("min", "PSNR of every output in dB"),
    "task_agreement": ("min", "top-1 / start-end agreement with PyTorch"),
    "pooled_cosine_mean": ("min", "mean-pooled embedding cosine, mean over texts"),
    "pooled_cosine_min": ("min", "mean-pooled embedding cosine, worst text"),
    "nonfinite": ("max", "count of NaN/Inf values in the outputs"),
    "generation_agreement": ("min", "decoders: share of greedy tokens identical to PyTorch's, mean over prompts"),
}

SIMILARITY_KEYS = ("output_cosine_mean", "output_cosine_min", "task_agreement", "pooled_cosine_mean",
                   "pooled_cosine_min", "generation_agreement")
PRECISION_DTYPES = ("fp32", "fp16", "int8", "int4")
QUANT_MODES = ("none", "dynamic", "static", "weight-only")
INPUT_DTYPES = ("int32", "int64")


@dataclass(frozen=True)
class Profile:
    """A device profile: how the app runs the model and the budgets it must fit."""

    name: str
    description: str
    device: str
    threads: int
    batch: int
    seq_len: int
    static_shape: bool
    input_dtype: str
    size_budget_mb: float
    memory_budget_mb: float
    latency_p50_ms: float
    latency_p90_ms: float
    budget_source: str = ""
    #: decoder LMs: KV-cache slots (prompt + generated tokens) a fixed-cache artifact is built for
    context: int = 512

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass(frozen=True)
class Precision:
    """A precision recipe, interpreted by the exporter of the target's format."""

    dtype: str = "fp32"
    mode: str = "none"
    per_channel: bool = True
    keep_float: tuple[str, ...] = ()
    max_keep_float: int = 8
    #: the first N calibration texts; the built-in corpus has a long text (about 400-1070 tokens) every 13th
    #: line, so any prefix of 13 or more still calibrates positions up to the model's maximum
    calibration_samples: int = 128
    smoothing: tuple[float, ...] = ()
    block_size: int = 32  # int4: weights per quantization block

    @property
    def auto_keep_float(self) -> bool:
        """True when the recipe asks for accuracy-aware selection of float layers."""
        return "auto" in self.keep_float

    @property
    def label(self) -> str:
        """Short human label, e.g. ``int8-dynamic-per-channel``."""
        if self.dtype == "int4":
            return "int4-weight-only-per-block"
        if self.dtype != "int8":
            return self.dtype
        return f"int8-{self.mode}-{'per-channel' if self.per_channel else 'per-tensor'}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        data = asdict(self)
        data["keep_float"] = list(self.keep_float)
        data["smoothing"] = list(self.smoothing)
        if self.dtype != "int4":  # only 4-bit recipes have blocks (and older reports' cache keys stay put)
            del data["block_size"]
        return data


@dataclass(frozen=True)
class Gate:
    """Parity limits; keys from :data:`GATE_KEYS`."""

    limits: dict[str, float] = field(default_factory=dict)

    def tightened(self, fraction: float) -> Gate:
        """A stricter gate: similarity limits (cosines, agreement; at most 1) move ``fraction`` of
        the way to 1. Used when choosing a recipe on calibration texts, so that the choice keeps a
        margin on texts it has not seen."""
        out = {}
        for key, limit in self.limits.items():
            similarity = key in SIMILARITY_KEYS and limit <= 1.0
            out[key] = limit + fraction * (1.0 - limit) if similarity else limit
        return Gate(out)

    def to_dict(self) -> dict[str, float]:
        """JSON-able form."""
        return dict(self.limits)


@dataclass(frozen=True)
class Target:
    """A target = format + precision recipe + device profile + parity gate (+ exporter options)."""

    name: str
    description: str
    format: str
    profile: Profile
    precision: Precision
    gate: Gate
    options: dict[str, Any] = field(default_factory=dict)
    source_file: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the profile nested)."""
        return {
            "name": self.name,
            "description": self.description,
            "format": self.format,
            "profile": self.profile.to_dict(),
            "precision": self.precision.to_dict(),
            "gate": self.gate.to_dict(),
            "options": dict(self.options),
            "source_file": str(self.source_file) if self.source_file else None,
        }
