"""Ctrl-C while a command is still importing its libraries: one line and exit 130, never a traceback.

The three commands (``platform.study``, ``platform.promote``, ``dashboards``) import Lightning, MLflow and Optuna
for seconds before they create anything; a KeyboardInterrupt raised inside a half-imported library (numpy, torch)
ends in a long traceback. :func:`interrupt_exits` wraps those imports: until they are done, SIGINT writes the
message and exits 130 at once (nothing exists yet to clean up). Standard library only, so it is in place before
anything heavy loads; run from the repository root, ``import platform.startup`` costs nothing more (the package's
``__init__`` is the standard module's code).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_INTERRUPTED = 130


@contextmanager
def interrupt_exits(message: str) -> Iterator[None]:
    """Within the block, Ctrl-C prints ``message`` on stderr and exits 130 (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum: int, frame: object) -> None:
        os.write(2, f"{message}\n".encode())
        os._exit(EXIT_INTERRUPTED)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
