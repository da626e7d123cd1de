"""Exporters, one module per format, found through a registry keyed by format name."""

from __future__ import annotations

import importlib

from slimport.errors import InputError
from slimport.exporters.base import Artifact, ExportContext, Exporter, TensorSpec

#: format name -> "module:Class"; adding a format = an exporter module, a runner module, target files.
EXPORTERS: dict[str, str] = {
    "onnx": "slimport.exporters.onnx:OnnxExporter",
    "tflite": "slimport.exporters.tflite:TfliteExporter",
    "coreml": "slimport.exporters.coreml:CoremlExporter",
}


def registered_formats() -> list[str]:
    """Format names that have an exporter."""
    return sorted(EXPORTERS)


def get_exporter(fmt: str) -> Exporter:
    """Instantiate the exporter registered for ``fmt``."""
    if fmt not in EXPORTERS:
        raise InputError(f"no exporter for format '{fmt}'; available: {', '.join(registered_formats())}")
    module_name, cls_name = EXPORTERS[fmt].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"the {fmt} exporter needs extra packages: pip install 'slimport[{fmt}]' ({exc})") from exc
    return getattr(module, cls_name)()


__all__ = ["Artifact", "ExportContext", "Exporter", "TensorSpec", "get_exporter", "registered_formats"]
