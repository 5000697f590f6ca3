"""Ctrl-C while a command is still importing its libraries: one line and exit 130, never a traceback.

The three commands (``platform.study``, ``platform.promote``, ``dashboards``) import Lightning, MLflow and Optuna
for seconds before they create anything; a KeyboardInterrupt raised inside a half-imported library (numpy, torch)
ends in a long traceback. :func:`interrupt_exits` wraps those imports: until they are done, SIGINT writes the
message and exits 130 at once (nothing exists yet to clean up). Standard library only, so it is in place before
anything heavy loads; run from the repository root, ``import platform.startup`` costs nothing more (the package's
``__init__`` is the standard module's code).

After the block, a Ctrl-C that lands in a callback Python cannot raise from (a garbage-collection or weakref
callback, e.g. SQLAlchemy's while MLflow migrates its tables) is not printed as "Exception ignored … Traceback"
and lost: :func:`_pass_interrupts_on` hands it to the main thread, where the command's own handling (one line,
exit 130, nothing left RUNNING) takes it.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
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
        _pass_interrupts_on()


def _pass_interrupts_on() -> None:
    """An interrupt raised where Python can only report it as "unraisable" goes on to the main thread instead."""
    default = sys.unraisablehook
    if getattr(default, "passes_interrupts_on", False):
        return

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            _thread.interrupt_main()
        else:
            default(unraisable)

    hook.passes_interrupts_on = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook
