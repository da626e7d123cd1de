"""Keep converter chatter off the terminal: deprecation notes, tracer warnings, progress printers."""

from __future__ import annotations

import os


def quiet_libraries(debug: bool = False) -> None:
    """Keep converter chatter (deprecation notes, tracer warnings) off the terminal unless --debug."""
    import logging
    import warnings

    if debug:
        return
    # LiteRT/XNNPACK C++ logging and litert-torch's own progress printer; read at their import
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    os.environ.setdefault("TQDM_DISABLE", "1")  # ai-edge-quantizer's progress bars
    warnings.filterwarnings("ignore")
    try:  # import first: torch and transformers (re)set their loggers' levels on import
        import onnxruntime
        import torch  # noqa: F401
        import transformers
        from optimum.utils import logging as optimum_logging

        onnxruntime.set_default_logger_severity(3)
        transformers.logging.set_verbosity_error()
        optimum_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - dependencies of the onnx extra
        pass
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("optimum", "transformers", "onnxruntime", "torch", "torch.utils._pytree", "torchao", "absl",
                 "litert_torch", "ai_edge_quantizer"):
        logging.getLogger(name).setLevel(logging.ERROR)
