"""``slimport release``: build a bundle for a matrix of models and targets; ``slimport verify`` checks one.

load ``release.toml`` (:mod:`.config`) -> plan jobs with content-hash keys (:mod:`.jobs`) -> build the
missing ones into the cache (:mod:`.build`) with an executor (:mod:`.executors`: local processes or
Ray tasks) -> assemble the bundle in a temp
folder with golden vectors (:mod:`.golden`) and a schema-checked manifest (:mod:`.manifest`) ->
rename into place. :mod:`.verify` re-hashes a bundle and re-runs its golden vectors.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slimport.pipeline import partial_dir, swap_into_place
from slimport.release import manifest
from slimport.release.build import COMPLETE, build_all
from slimport.release.config import load_release
from slimport.release.executors import check_executor, get_executor
from slimport.release.jobs import plan
from slimport.release.report_html import write_html
from slimport.release.summary import write_summary
from slimport.release.verify import verify

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "slimport" / "release"


def release(config_path: str | Path, out: str | Path, workers: int | None = None,
            cache_dir: str | Path | None = None, latency_runs: int = 10, baseline: str | Path | None = None,
            log: Callable[[str], None] = lambda _m: None, executor: str = "local",
            address: str | None = None) -> dict[str, Any]:
    """Build the release described by ``config_path`` into the bundle folder ``out``; returns the manifest.

    ``executor`` runs the builds: ``local`` (``workers`` processes) or ``ray`` (one task per pair on the
    Ray cluster at ``address``; a new local instance when None).
    Pairs whose cache key (inputs, recipe, tool versions) is already in ``cache_dir`` are not rebuilt.
    The bundle is assembled beside ``out`` and renamed into place; a failing gate still yields a
    complete bundle whose manifest says which pairs failed (``manifest["passed"]`` is False). With
    ``baseline`` (a previous bundle) the manifest, summary and report show the deltas, and a parity
    drop beyond ``regression_margin`` fails the release.
    """
    config = load_release(config_path)
    previous = manifest.read(Path(baseline).expanduser()) if baseline else None
    jobs = plan(config)
    cache = Path(cache_dir).expanduser() if cache_dir else DEFAULT_CACHE
    workers = workers or config.workers
    check_executor(executor, address)  # before any work; the executor itself is made only if needed
    built = build_all(jobs, cache, workers, config.validation_data, config.calibration_data, latency_runs, log,
                      lambda: get_executor(executor, workers, address))
    out_dir = Path(out).expanduser()
    tmp = partial_dir(out_dir.parent, out_dir.name)
    try:
        entries = []
        for job in jobs:
            folder = tmp / job.model.name / job.target.name
            shutil.copytree(built[job.key].folder, folder, ignore=shutil.ignore_patterns(COMPLETE))
            entries.append(manifest.artifact_entry(tmp, folder, job.key))
        created = datetime.now(UTC).isoformat(timespec="seconds")
        manifest.write(tmp, config.name, config.version, created, entries, previous, config.regression_margin)
        data = manifest.read(tmp)
        write_summary(tmp, data)
        write_html(tmp, data)
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return data


__all__ = ["load_release", "release", "verify"]
