"""Validation and calibration texts: the built-in corpora and the user's own files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from slimport.errors import InputError

MAX_TEXTS = 10_000


@dataclass(frozen=True)
class Corpus:
    """A list of texts plus where they came from and a content hash (for manifests and caches)."""

    texts: tuple[str, ...]
    source: str
    sha256: str

    def describe(self) -> dict[str, object]:
        """JSON-able summary."""
        return {"source": self.source, "texts": len(self.texts), "sha256": self.sha256}


def _hash(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()


def builtin_corpus(kind: str = "validation") -> Corpus:
    """The built-in ``validation`` (held out) or ``calibration`` corpus shipped with the package."""
    if kind not in ("validation", "calibration"):
        raise ValueError(f"unknown built-in corpus '{kind}'")
    text = (resources.files("slimport.validation") / "data" / f"{kind}.txt").read_text(encoding="utf-8")
    texts = [line for line in text.splitlines() if line.strip()]
    return Corpus(tuple(texts), f"builtin:{kind}", _hash(texts))


def _parse_jsonl_line(line: str, number: int, path: Path) -> str:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    if isinstance(value, dict):
        value = value.get("text")
    if not isinstance(value, str):
        raise InputError(f"{path}:{number}: expected a JSON string or an object with a \"text\" string")
    return value


def load_corpus(path: str | Path) -> Corpus:
    """Read texts from ``path``: one text per line, or JSONL (``.jsonl``) with a ``text`` field.

    Raises :class:`InputError` when the file is missing, unreadable, not UTF-8, malformed or empty.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"data file {file} does not exist or is not a file")
    try:
        raw = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"data file {file} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"cannot read data file {file}: {exc.strerror or exc}") from exc
    is_jsonl = file.suffix in (".jsonl", ".ndjson")
    texts: list[str] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        texts.append(_parse_jsonl_line(line, number, file) if is_jsonl else line)
        if len(texts) > MAX_TEXTS:
            raise InputError(f"data file {file} has more than {MAX_TEXTS} texts; pass a sample")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise InputError(f"data file {file} holds no texts (one text per line, or JSONL with \"text\")")
    return Corpus(tuple(texts), str(file), _hash(texts))
