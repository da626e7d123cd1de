"""Find, parse and validate target and device-profile TOML files."""

from __future__ import annotations

import difflib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from slimport.errors import InputError
from slimport.targets.schema import (
    GATE_KEYS,
    INPUT_DTYPES,
    PRECISION_DTYPES,
    QUANT_MODES,
    Gate,
    Precision,
    Profile,
    Target,
)

_PROFILE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "description": str,
    "device": str,
    "threads": int,
    "batch": int,
    "seq_len": int,
    "static_shape": bool,
    "input_dtype": str,
    "size_budget_mb": (int, float),
    "memory_budget_mb": (int, float),
    "latency_p50_ms": (int, float),
    "latency_p90_ms": (int, float),
    "budget_source": str,
    "context": int,
}
_PRECISION_FIELDS: dict[str, type | tuple[type, ...]] = {
    "dtype": str,
    "mode": str,
    "per_channel": bool,
    "keep_float": list,
    "max_keep_float": int,
    "calibration_samples": int,
    "smoothing": list,
    "block_size": int,
}
_TARGET_FIELDS = {"name", "description", "format", "profile", "precision", "gate", "options"}


def _builtin_dir(kind: str) -> Path:
    return Path(str(resources.files("slimport.targets") / kind))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from exc


def _check_fields(data: dict[str, Any], fields: dict[str, Any], where: str, required: set[str]) -> None:
    for key, value in data.items():
        if key not in fields:
            raise InputError(f"{where}: unknown key '{key}'; allowed: {', '.join(fields)}")
        expected = fields[key]
        if isinstance(value, bool) and expected in (int, (int, float)):
            raise InputError(f"{where}: '{key}' must be a number, not a boolean")
        if not isinstance(value, expected):
            names = expected.__name__ if isinstance(expected, type) else "number"
            raise InputError(f"{where}: '{key}' must be of type {names}, got {value!r}")
    missing = sorted(required - data.keys())
    if missing:
        raise InputError(f"{where}: missing required key(s): {', '.join(missing)}")


def _positive(data: dict[str, Any], keys: list[str], where: str) -> None:
    for key in keys:
        if key in data and data[key] <= 0:
            raise InputError(f"{where}: '{key}' must be > 0, got {data[key]}")


def parse_profile(data: dict[str, Any], where: str) -> Profile:
    """Validate a profile table and build a :class:`Profile`."""
    required = set(_PROFILE_FIELDS) - {"description", "budget_source", "context"}
    _check_fields(data, _PROFILE_FIELDS, where, required)
    _positive(data, ["threads", "batch", "seq_len", "size_budget_mb", "memory_budget_mb",
                     "latency_p50_ms", "latency_p90_ms", "context"], where)
    if data.get("context", data["seq_len"] + 1) <= data["seq_len"]:
        raise InputError(f"{where}: context (KV-cache slots for decoders) must exceed seq_len, the prompt length")
    if data["input_dtype"] not in INPUT_DTYPES:
        raise InputError(f"{where}: input_dtype must be one of {', '.join(INPUT_DTYPES)}")
    if data["latency_p90_ms"] < data["latency_p50_ms"]:
        raise InputError(f"{where}: latency_p90_ms must be >= latency_p50_ms")
    return Profile(**{"description": "", **data})


def parse_precision(data: dict[str, Any], where: str) -> Precision:
    """Validate a precision table and build a :class:`Precision`."""
    _check_fields(data, _PRECISION_FIELDS, where, {"dtype"})
    dtype = data["dtype"]
    if dtype not in PRECISION_DTYPES:
        raise InputError(f"{where}: dtype must be one of {', '.join(PRECISION_DTYPES)}, got '{dtype}'")
    mode = data.get("mode", {"int8": "dynamic", "int4": "weight-only"}.get(dtype, "none"))
    if mode not in QUANT_MODES:
        raise InputError(f"{where}: mode must be one of {', '.join(QUANT_MODES)}, got '{mode}'")
    if (dtype in ("int8", "int4")) != (mode != "none") or (dtype == "int4" and mode == "static"):
        raise InputError(f"{where}: mode '{mode}' does not fit dtype '{dtype}' "
                         "(int8 needs dynamic, static or weight-only; int4 needs weight-only or dynamic)")
    keep = data.get("keep_float", [])
    if not all(isinstance(k, str) for k in keep):
        raise InputError(f"{where}: keep_float must be a list of strings ('auto' or layer-name patterns)")
    _positive(data, ["calibration_samples", "block_size"], where)
    if "block_size" in data and (dtype != "int4" or data["block_size"] not in (16, 32, 64, 128)):
        raise InputError(f"{where}: block_size applies to int4 and must be 16, 32, 64 or 128")
    if data.get("max_keep_float", 0) < 0:
        raise InputError(f"{where}: max_keep_float must be >= 0")
    smoothing = data.get("smoothing", [])
    if not all(isinstance(a, int | float) and not isinstance(a, bool) and 0 < a < 1 for a in smoothing):
        raise InputError(f"{where}: smoothing must be a list of strengths between 0 and 1, e.g. [0.7, 0.5]")
    if smoothing and dtype != "int8":
        raise InputError(f"{where}: smoothing only applies to int8 recipes")
    return Precision(**{**data, "mode": mode, "keep_float": tuple(keep),
                        "smoothing": tuple(float(a) for a in smoothing)})


def parse_gate(data: dict[str, Any], where: str) -> Gate:
    """Validate a gate table and build a :class:`Gate`."""
    limits: dict[str, float] = {}
    for key, value in data.items():
        if key not in GATE_KEYS:
            raise InputError(f"{where}: unknown gate '{key}'; allowed: {', '.join(GATE_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{where}: gate '{key}' must be a number, got {value!r}")
        limits[key] = float(value)
    limits.setdefault("nonfinite", 0.0)
    return Gate(limits)


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return f"{hint}known: {', '.join(sorted(known))}"


def list_profiles() -> list[str]:
    """Names of the built-in device profiles."""
    return sorted(p.stem for p in _builtin_dir("profiles").glob("*.toml"))


def list_targets() -> list[str]:
    """Names of the built-in targets."""
    return sorted(p.stem for p in _builtin_dir("targets").glob("*.toml"))


def load_profile(name_or_path: str, relative_to: Path | None = None) -> Profile:
    """Load a device profile by built-in name or TOML path."""
    path = Path(name_or_path)
    if relative_to is not None and not path.is_absolute():
        candidate = relative_to / path
        path = candidate if candidate.suffix == ".toml" else path
    if path.suffix != ".toml":
        if name_or_path not in list_profiles():
            raise InputError(f"unknown device profile '{name_or_path}'; {_suggest(name_or_path, list_profiles())}")
        path = _builtin_dir("profiles") / f"{name_or_path}.toml"
    return parse_profile(_read_toml(path), str(path))


def load_target(name_or_path: str | Path) -> Target:
    """Load a target by built-in name (``onnx-int8``) or by TOML path (``./my-target.toml``).

    The target's ``profile`` is a built-in profile name, a path relative to the target file,
    or an inline table.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix != ".toml" and not path.is_file():
        if text not in list_targets():
            raise InputError(f"unknown target '{text}'; {_suggest(text, list_targets())}")
        path = _builtin_dir("targets") / f"{text}.toml"
    data = _read_toml(path)
    where = str(path)
    for key in data:
        if key not in _TARGET_FIELDS:
            raise InputError(f"{where}: unknown key '{key}'; allowed: {', '.join(sorted(_TARGET_FIELDS))}")
    for key in ("format", "profile", "precision", "gate"):
        if key not in data:
            raise InputError(f"{where}: missing required key '{key}'")
    profile_ref = data["profile"]
    if isinstance(profile_ref, dict):
        profile = parse_profile(profile_ref, f"{where} [profile]")
    elif isinstance(profile_ref, str):
        profile = load_profile(profile_ref, relative_to=path.parent)
    else:
        raise InputError(f"{where}: 'profile' must be a profile name, a path or a table")
    from slimport.exporters import registered_formats

    fmt = data["format"]
    if fmt not in registered_formats():
        raise InputError(f"{where}: format '{fmt}' has no exporter; available: {', '.join(registered_formats())}")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise InputError(f"{where}: 'options' must be a table")
    return Target(
        name=data.get("name", path.stem),
        description=data.get("description", ""),
        format=fmt,
        profile=profile,
        precision=parse_precision(data["precision"], f"{where} [precision]"),
        gate=parse_gate(data["gate"], f"{where} [gate]"),
        options=options,
        source_file=path,
    )
