"""``slimport inspect``: inputs, outputs, operators, size and precision of an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimport.errors import InputError
from slimport.validation.report import REPORT_FILE, Report

MODEL_SUFFIXES = (".onnx", ".ort", ".tflite", ".mlpackage")


def _find_model(path: Path) -> tuple[Path, Report | None]:
    if path.is_dir() and path.suffix != ".mlpackage":
        report = Report.read(path) if (path / REPORT_FILE).is_file() else None
        if report is not None:
            return path / report.artifact["model_file"], report
        models = sorted(p for p in path.iterdir() if p.suffix in MODEL_SUFFIXES)
        if not models:
            raise InputError(f"{path} holds no model file ({', '.join(MODEL_SUFFIXES)}) and no {REPORT_FILE}")
        return models[0], None
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.suffix not in MODEL_SUFFIXES:
        raise InputError(f"cannot inspect {path.name}: supported files are {', '.join(MODEL_SUFFIXES)}")
    return path, None


def _ort_ops(model: Path) -> dict[str, int]:
    """Operator types listed by the reduced-operator config written next to a .ort file."""
    ops: dict[str, int] = {}
    for config in model.parent.glob("*required_operators*.config"):
        for line in config.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or ";" not in line:
                continue
            domain, _version, names = line.split(";", 2)
            for name in names.split(","):
                key = name if domain in ("ai.onnx", "") else f"{domain}:{name}"
                ops[key] = ops.get(key, 0) + 1
    return ops


def _tflite_info(model_path: Path) -> dict[str, Any]:
    """Signatures, tensor contract, operators, builtin check and XNNPACK coverage of a .tflite file."""
    from slimport.exporters import tflite_graph

    try:
        model = tflite_graph.read(model_path)
        signatures = tflite_graph.signatures(model_path)
    except Exception as exc:  # flatbuffer / interpreter errors have no common type
        raise InputError(f"{model_path} is not a readable LiteRT model: {str(exc).strip()[:200]}") from exc
    operators = tflite_graph.op_counts(model)
    first = "serving_default" if "serving_default" in signatures else next(iter(signatures), None)
    inputs, outputs = tflite_graph.signature_specs(model_path, first) if first else ([], [])
    return {
        "format": "tflite",
        "signatures": signatures,
        "inputs": [t.to_dict() for t in inputs],
        "outputs": [t.to_dict() for t in outputs],
        "operators": operators,
        "non_builtin_ops": tflite_graph.non_builtin_ops(operators),
        "xnnpack": tflite_graph.delegation(model_path),
        "weights": tflite_graph.weight_dtypes(model),
    }


def inspect_artifact(path: str | Path) -> dict[str, Any]:
    """Describe an artifact folder or model file (ONNX / ORT / TFLite / Core ML package)."""
    model_path, report = _find_model(Path(path).expanduser())
    files = [model_path] if model_path.is_file() else [f for f in model_path.rglob("*") if f.is_file()]
    size = sum(f.stat().st_size for f in files) / 1e6
    info: dict[str, Any] = {"model_file": str(model_path), "size_mb": round(size, 3)}
    if model_path.suffix == ".onnx":
        import onnx

        from slimport.exporters import onnx_graph

        try:
            model = onnx.load(str(model_path), load_external_data=False)
        except Exception as exc:  # protobuf DecodeError and friends
            raise InputError(f"{model_path} is not a readable ONNX file: {exc}") from exc
        info.update(
            format="onnx",
            opset={o.domain or "ai.onnx": o.version for o in model.opset_import},
            inputs=[t.to_dict() for t in onnx_graph.tensor_specs(model.graph.input)],
            outputs=[t.to_dict() for t in onnx_graph.tensor_specs(model.graph.output)],
            operators=onnx_graph.op_counts(model),
            weights=onnx_graph.weight_dtypes(model),
        )
    elif model_path.suffix == ".tflite":
        info.update(_tflite_info(model_path))
    elif model_path.suffix == ".mlpackage":
        from slimport.validation.mil import program_info

        info.update(format="coreml", **program_info(model_path))
    else:
        from slimport.validation.runners.ort import OrtRunner

        session = OrtRunner(model_path, 1).session
        info.update(
            format="ort",
            inputs=[{"name": i.name, "dtype": i.type, "shape": i.shape} for i in session.get_inputs()],
            outputs=[{"name": o.name, "dtype": o.type, "shape": o.shape} for o in session.get_outputs()],
            operators=_ort_ops(model_path),
        )
    if report is not None:
        info["precision"] = report.artifact.get("precision")
        info["target"] = report.target.get("name")
        info["verdict"] = "PASS" if report.passed else "FAIL"
    return info
