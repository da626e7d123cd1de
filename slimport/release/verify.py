"""``slimport verify``: re-hash every file of a bundle against its manifest and re-run the golden vectors."""

from __future__ import annotations

from pathlib import Path

from slimport.release import manifest
from slimport.release.golden import check_golden
from slimport.release.jobs import sha256_file


def verify(bundle: str | Path) -> list[str]:
    """Problems found in ``bundle``, one line each (empty when it is intact)."""
    root = Path(bundle).expanduser()
    data = manifest.read(root)
    problems: list[str] = []
    for entry in data["artifacts"]:
        label = f"{entry['model']}/{entry['target']}"
        intact = True
        for item in entry["files"]:
            path = root / item["path"]
            if not path.is_file():
                problems.append(f"{label}: missing file {item['path']}")
                intact = False
            elif path.stat().st_size != item["bytes"] or sha256_file(path) != item["sha256"]:
                problems.append(f"{label}: {item['path']} does not match its sha256 in the manifest")
                intact = False
        if intact:  # golden vectors only mean something on the files that were released
            try:
                problems += [f"{label}: {p}" for p in check_golden(root / entry["folder"], entry["format"],
                                                                   entry["model_file"])]
            except Exception as exc:  # a runner that cannot load the artifact is a verification failure
                problems.append(f"{label}: golden vectors could not run: {type(exc).__name__}: {str(exc)[:200]}")
    return problems
