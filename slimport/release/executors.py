"""Executors run a release's build tasks: ``local`` (a process pool on this machine, the default) or
``ray`` (one Ray task per (model, target) pair on a Ray cluster; the optional extra ``slimport[ray]``).

Both run :func:`slimport.release.build.build_one`. A Ray task builds into a temp cache on its own
node and sends the finished entry back through Ray's object store as a tar archive, which the driver
unpacks into its cache: the nodes need no shared output folder, only the inputs (checkpoint folders,
target files, validation/calibration data) readable at the same paths, and slimport installed.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import tarfile
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from slimport.errors import InputError, SlimportError, first_line

#: a build task: (cache key, checkpoint folder or None for the embedded model, task, target)
Task = tuple[str, str | None, str | None, str]


@dataclass(frozen=True)
class BuildSettings:
    """What every task of one release shares."""

    cache_dir: Path
    validation: Path | None
    calibration: Path | None
    latency_runs: int
    complete: bool  # mark entries complete (False when the driver times them afterwards)


class Executor(Protocol):
    """Runs build tasks; yields each task with its verdict (True/False) or the exception it raised."""

    name: str
    workers: int

    def run(self, tasks: list[Task], settings: BuildSettings) -> Iterator[tuple[Task, bool | BaseException]]:
        """Build every task into ``settings.cache_dir``, yielding results as they complete."""
        ...


class LocalExecutor:
    """A pool of ``workers`` spawned processes on this machine (torch and fork do not mix)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def run(self, tasks: list[Task], settings: BuildSettings) -> Iterator[tuple[Task, bool | BaseException]]:
        """Build every task in the pool, yielding results as they complete."""
        from slimport.release.build import build_one

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=context) as pool:
            futures = {pool.submit(build_one, task, settings.cache_dir, settings.validation, settings.calibration,
                                   settings.latency_runs, settings.complete): task for task in tasks}
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result()[1]
                except SlimportError as exc:
                    yield futures[future], exc


def pack(folder: Path) -> bytes:
    """``folder`` as an uncompressed tar archive in memory (its entries relative to the folder)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, into: Path) -> None:
    """Extract an archive made by :func:`pack` into ``into`` (tarfile's ``data`` filter: no links out,
    no absolute paths, no device files).

    Python 3.11.0-3.11.3 (e.g. Debian's 3.11.2) have no extraction filters; there every entry must be a
    plain file or folder at a relative path without ``..``, all that :func:`pack` writes."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(into, filter="data")
            return
        for member in archive.getmembers():
            name = Path(member.name)
            if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                raise SlimportError(f"refusing build archive entry {member.name!r}: only plain files and "
                                    "folders inside the entry are accepted")
        archive.extractall(into)  # noqa: S202 - every member checked above


def build_remote(task: Task, settings: BuildSettings) -> tuple[bool, bytes]:
    """Body of a Ray task: build ``task`` into a temp cache on this node; return (passed, packed entry)."""
    from slimport.release.build import build_one

    model_path = task[1]
    if model_path is not None and not Path(model_path).is_dir():
        import socket

        raise InputError(f"model folder {model_path} is not readable on Ray node {socket.gethostname()}; "
                         "inputs must be at the same paths on every node")
    with tempfile.TemporaryDirectory(prefix="slimport-ray-") as tmp:
        key, passed = build_one(task, Path(tmp), settings.validation, settings.calibration, settings.latency_runs,
                                settings.complete)
        return passed, pack(Path(tmp) / key)


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast when a ``host:port`` address does not answer (``ray.init`` retries for minutes)."""
    import socket

    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot connect to Ray at {address}: {first_line(exc)}; start the cluster with "
                         "`ray start --head` or pass its address") from exc


class RayExecutor:
    """One Ray task per (model, target) pair on the cluster at ``address`` (``auto``: the one this
    machine belongs to; None: start a local instance for this run)."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise InputError("the ray executor needs Ray: pip install 'slimport[ray]'") from exc
        self.workers = max(1, workers)
        self._ray = ray
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            _check_reachable(address)
            try:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False,
                         configure_logging=False, include_dashboard=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError(f"cannot connect to Ray at {address or 'a new local instance'}: "
                                 f"{first_line(exc)}") from exc

    def run(self, tasks: list[Task], settings: BuildSettings) -> Iterator[tuple[Task, bool | BaseException]]:
        """Submit every task at once (Ray schedules them on free CPUs); unpack results as they finish."""
        from slimport.release.build import install_entry

        ray = self._ray
        remote = ray.remote(num_cpus=1)(build_remote)
        pending = {remote.remote(task, settings): task for task in tasks}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                task = pending.pop(done[0])
                try:
                    passed, data = ray.get(done[0])
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    yield task, cause if isinstance(cause, SlimportError) else SlimportError(first_line(exc))
                    continue
                except ray.exceptions.RayError as exc:  # node or worker died
                    yield task, SlimportError(f"Ray lost the task: {first_line(exc)}")
                    continue
                staging = Path(tempfile.mkdtemp(prefix=f".{task[0]}.", suffix=".partial", dir=settings.cache_dir))
                unpack(data, staging / "entry")
                install_entry(staging / "entry", settings.cache_dir, task[0], staging)
                yield task, passed
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if self._owns_connection:
                ray.shutdown()


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def check_executor(name: str, address: str | None = None) -> None:
    """Refuse, in one line, an unknown executor or an ``address`` for one that takes none."""
    if name not in EXECUTORS:
        raise InputError(f"unknown executor '{name}'; choose one of {', '.join(EXECUTORS)}")
    if address and name != "ray":
        raise InputError("--address is for --executor ray")


def get_executor(name: str, workers: int, address: str | None = None) -> Executor:
    """The executor called ``name`` (see :data:`EXECUTORS`); ``address`` is Ray's cluster address."""
    check_executor(name, address)
    return RayExecutor(workers, address) if name == "ray" else LocalExecutor(workers)
