"""Ctrl-C that cannot get lost.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when SIGINT arrives. If
that is a finalizer (``__del__`` of an ONNX Runtime session, a temp file, a weakref callback),
Python prints "Exception ignored in ..." and carries on; a library's bare ``except:`` would swallow
it without a word. The export would then run to the end and publish its folder as if nothing had
happened (seen once in CI: a real SIGINT sent mid-export, exit 3 from the finished gate, nothing on
stderr about the interrupt). The CLI therefore installs :func:`handler`, which
also records the request, and the pipeline calls :func:`check` between stages and right before it
renames a finished folder into place (:func:`slimport.pipeline.swap_into_place`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_requested = threading.Event()


def handler(signum: int, frame: Any) -> None:
    """SIGINT handler: remember the request, then interrupt like Python's default handler."""
    _requested.set()
    raise KeyboardInterrupt


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed since :func:`handling` began, even if the
    first one was swallowed."""
    if _requested.is_set():
        raise KeyboardInterrupt


@contextmanager
def handling() -> Iterator[None]:
    """Install :func:`handler` for the duration (main thread only; elsewhere a no-op), then restore
    the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested.clear()
    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        # None: the previous handler was not installed from Python; Python's own is the nearest
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
        _requested.clear()
