"""Tool versions recorded in every report and manifest."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

BASE_PACKAGES = ("slimport", "torch", "transformers", "tokenizers", "safetensors", "numpy")


def package_versions(names: tuple[str, ...] | list[str] = BASE_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` plus the Python version ("missing" when not installed)."""
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found
