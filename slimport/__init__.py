"""slimport: export small language models to ONNX and TFLite/LiteRT (Core ML next), quantize them, and
prove parity with PyTorch and fit to a device profile before release.

Nothing here downloads anything: Hugging Face libraries are forced offline on import.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"

from slimport.errors import GateFailed, InputError, SlimportError  # noqa: E402
from slimport.pipeline import export, validate_artifact  # noqa: E402
from slimport.targets import list_targets, load_target  # noqa: E402
from slimport.validation.report import Report  # noqa: E402

__all__ = ["export", "validate_artifact", "list_targets", "load_target", "Report",
           "SlimportError", "InputError", "GateFailed", "__version__"]
