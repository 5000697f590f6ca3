"""``python -m platform.study.worker STUDY.yaml ...``: one worker process of a study (not a user command).

The main process (:mod:`.__main__`, supervised by :mod:`.workers`) prepares the data, creates the study and the
MLflow parent run, then starts one of these per :class:`~.devices.WorkerPlan`, with the study's own arguments and
the plan in ``SASA_WORKER_PLAN``. A worker joins the study and runs trials until none is left, printing one line
per trial; the main process judges completeness. A worker whose trials use several devices (DDP) is re-run by
Lightning as its follower ranks: those go to :mod:`.follower` before anything else.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys

from ..startup import EXIT_INTERRUPTED, interrupt_exits

PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_parent() -> None:
    """Linux: this worker gets SIGKILL when the main process dies, however it dies (a worker runs in its own process
    group, so a ``kill -9`` of the command's group would not reach it otherwise). Elsewhere: nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    parent = os.environ.get(PARENT_ENV)
    if parent is not None and os.getppid() != int(parent):  # it died before the line above
        os._exit(EXIT_INTERRUPTED)


with interrupt_exits("worker interrupted while starting; the main process decides what runs again"):
    from .arguments import add_study_arguments, exit_on_bad_input, request_from
    from .ddp import ddp_follower_requested
    from .devices import WorkerPlan
    from .follower import run_ddp_follower
    from .run import quiet_libraries, run_worker
    from .workers import PARENT_ENV


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name if __spec__ else __name__}",
        description="A worker process of a sasa-lab study, started by `python -m platform.study` (not by hand): "
        "joins the stored study and runs trials until none is left. The plan comes in SASA_WORKER_PLAN.",
    )
    add_study_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run trials as the plan in ``SASA_WORKER_PLAN`` says; 130 when interrupted."""
    if ddp_follower_requested():
        return run_ddp_follower()
    die_with_parent()  # not a DDP follower rank: the worker that started it is its parent
    args = build_parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    quiet_libraries()
    request = request_from(args)

    def work() -> int:
        spec, stores = request.load()
        return run_worker(spec, stores, WorkerPlan.from_env())

    try:
        return exit_on_bad_input(work, runs_dir=args.runs_dir, resume=False)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    exit_code = main()
    if exit_code == EXIT_INTERRUPTED:  # as the main command: compile threads must not hold the exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)
    sys.exit(exit_code)
