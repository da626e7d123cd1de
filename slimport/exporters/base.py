"""What every exporter shares: the artifact description, the export context, the exporter base."""

from __future__ import annotations

import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slimport.errors import InputError
from slimport.models.loader import ModelSource
from slimport.targets.schema import Target
from slimport.validation.corpus import TextInput


@contextmanager
def tool_temp_files(folder: Path) -> Iterator[Path]:
    """Point Python's temporary folder at ``folder`` while the block runs.

    The converters keep scratch copies in the system temp folder until their process exits:
    coremltools makes a temporary ``.mlpackage`` (the size of the model) for each program it
    builds and deletes it only at interpreter exit, so a release run over many targets fills
    ``/tmp`` and a killed process leaves them there for good. Inside an export's work folder they
    are removed with it, on success, error or Ctrl-C alike.
    """
    folder.mkdir(parents=True, exist_ok=True)
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = before


@dataclass
class TensorSpec:
    """Name, dtype and shape (ints, or strings for dynamic axes) of one input or output."""

    name: str
    dtype: str
    shape: list[int | str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass
class Artifact:
    """Files an exporter produced in a folder, with the tensor contract and what the recipe did."""

    directory: Path
    model_file: str
    format: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    precision: dict[str, Any] = field(default_factory=dict)
    extra_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: what the target runtime does with the file (e.g. the share of ops a delegate takes over)
    runtime: dict[str, Any] = field(default_factory=dict)
    #: checks the exporter measured itself (e.g. fp16 range), judged with the gate's checks
    checks: list[Any] = field(default_factory=list)

    @property
    def model_path(self) -> Path:
        """Path of the model file."""
        return self.directory / self.model_file

    def size_mb(self) -> float:
        """Size of the model file (and extra model files) in MB (10^6 bytes)."""
        total = 0
        for path in [self.model_path] + [self.directory / f for f in self.extra_files]:
            if path.is_dir():  # packages such as .mlpackage are folders
                total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            elif path.is_file():
                total += path.stat().st_size
        return total / 1e6

    def move_to(self, folder: Path) -> Artifact:
        """Move the model file and extra files into ``folder``; returns the artifact there."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in [self.model_file, *self.extra_files]:
            shutil.move(str(self.directory / name), str(folder / name))
        self.directory = folder
        return self

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for the report."""
        return {
            "format": self.format,
            "model_file": self.model_file,
            "extra_files": list(self.extra_files),
            "size_mb": round(self.size_mb(), 3),
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "precision": self.precision,
            "runtime": self.runtime,
            "notes": list(self.notes),
        }


@dataclass
class ExportContext:
    """What the pipeline hands an exporter besides the model and the target.

    ``workdir`` is scratch space (deleted afterwards); the final files go to ``output_dir``.
    ``evaluate`` runs the artifact on the calibration texts and returns the parity checks of the
    target's gate; exporters use it (through :mod:`slimport.precision.selection`) to choose which
    layers to keep in float.
    """

    workdir: Path
    output_dir: Path
    calibration_texts: tuple[TextInput, ...]
    evaluate: Callable[[Artifact], list[Any]]
    log: Callable[[str], None] = print


class Exporter(ABC):
    """An exporter turns a :class:`ModelSource` into an :class:`Artifact` for one format."""

    format: str = ""
    #: keys an exporter reads from a target's ``[options]``
    options: frozenset[str] = frozenset()
    #: (dtype, mode) precision recipes the exporter builds
    recipes: frozenset[tuple[str, str]] = frozenset()

    #: True when the exporter builds decoder LMs (``text-generation``) too
    decoders = False

    def check_target(self, target: Target) -> None:
        """Refuse, in one line, options this exporter does not read and recipes it does not build."""
        unknown = set(target.options) - self.options
        if unknown:
            raise InputError(f"target {target.name}: unknown {self.format} option(s) {', '.join(sorted(unknown))}; "
                             f"allowed: {', '.join(sorted(self.options)) or 'none'}")
        p = target.precision
        if (p.dtype, p.mode) not in self.recipes:
            offered = ", ".join(f"{d}" if m == "none" else f"{d} mode = \"{m}\"" for d, m in sorted(self.recipes))
            raise InputError(f"target {target.name}: {self.format} exports do not build {p.dtype} mode = "
                             f"\"{p.mode}\"; they offer {offered}")

    @abstractmethod
    def export(self, source: ModelSource, target: Target, context: ExportContext) -> Artifact:
        """Build the artifact for ``target`` inside ``context.workdir``."""

    @abstractmethod
    def tool_versions(self) -> dict[str, str]:
        """Versions of the converter packages this exporter uses."""
