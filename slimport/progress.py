"""Progress on stderr (rich): one line per pipeline stage, a bar where the work is countable."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from slimport import interrupts


class Reporter:
    """Shows stages and keeps their wall times (``timings``); silent when ``enabled`` is False."""

    def __init__(self, enabled: bool = True) -> None:
        self.console = Console(stderr=True, quiet=not enabled)
        self.timings: dict[str, float] = {}

    def log(self, message: str) -> None:
        """Print a dim note line."""
        self.console.print(f"[dim]  {message}[/dim]", highlight=False)

    @contextmanager
    def stage(self, key: str, label: str, total: int | None = None) -> Iterator[Callable[[], None]]:
        """Show ``label`` with a spinner (and a bar if ``total``); yields an ``advance()`` callable."""
        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        start = time.perf_counter()
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(label, total=total)
            yield lambda: progress.advance(task)
        interrupts.check()  # a Ctrl-C swallowed inside the stage stops the work here
        elapsed = time.perf_counter() - start
        self.timings[key] = round(self.timings.get(key, 0.0) + elapsed, 3)
        self.console.print(f"[green]✓[/green] {label} [dim]({elapsed:.1f} s)[/dim]", highlight=False)
