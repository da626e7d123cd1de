"""Loading local Hugging Face checkpoints safely (safetensors, no remote code)."""

from slimport.models.loader import ModelSource, default_model_path, load_model
from slimport.models.tasks import SUPPORTED_FAMILIES, TASKS

__all__ = ["ModelSource", "load_model", "default_model_path", "SUPPORTED_FAMILIES", "TASKS"]
