"""What a test saves by running a command through the fork server: ``python -m benchmarks.fork_route [--rounds N]``.

The same two commands, run alternately as a fresh interpreter (``subprocess.run``, what the tests did) and as a
fork of the warm server (:func:`tests.support.forked.run_forked`, what they do now), in one process, so that load
from other work on the machine falls on both alike: a usage error (``python -m platform.study`` with a spec that
does not exist: exit 2) and a one-trial tiny study (digits 8×8, the tests' ``tiny_spec``). The server's own start
(one interpreter's imports, once per test session) is timed apart. Results go to
``benchmarks/results/fork_route.md``; docs/testing.md quotes it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.platform_tests.studyrun import REPO, env, run_study, tiny_spec, write_spec
from tests.support.forked import run_forked

RESULTS = REPO / "benchmarks" / "results" / "fork_route.md"


def _usage(tmp: Path, *, forked: bool) -> float:
    argv = [str(tmp / "missing.yaml"), "--runs-dir", str(tmp / "runs")]
    started = time.monotonic()
    if forked:
        done = run_forked("platform.study", argv, cwd=REPO, env=env())
    else:
        done = subprocess.run([sys.executable, "-m", "platform.study", *argv], cwd=REPO, env=env(), capture_output=True,
                              text=True, timeout=600)
    seconds = time.monotonic() - started
    assert done.returncode == 2 and "missing.yaml" in done.stderr, done.stderr
    return seconds


def _study(tmp: Path, *, forked: bool) -> float:
    one = {"design": "grid", "parameters": {"window_size": [3]}, "seeds": [0]}
    spec = write_spec(tmp / "one.yaml", tiny_spec("one", search=one))
    started = time.monotonic()
    done = run_study(spec, tmp, forked=forked)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fork_route", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="alternating pairs per command (default: 3)")
    parser.add_argument("--note", default="", help="machine and date, written above the table")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        started = time.monotonic()
        _usage(root / "warm", forked=True)  # starts the server: one interpreter's imports, once per session
        server_start = time.monotonic() - started
        times: dict[tuple[str, str], list[float]] = {}
        for index in range(args.rounds):
            for name, command in (("usage error (exit 2)", _usage), ("one-trial tiny study", _study)):
                for route, forked in (("fresh interpreter", False), ("fork server", True)):
                    where = root / f"{index}-{name[:5]}-{forked}"
                    where.mkdir()
                    times.setdefault((name, route), []).append(command(where, forked=forked))

    lines = ["# Fork route", "", args.note, "",
             "Command: `python -m benchmarks.fork_route` "
             f"(--rounds {args.rounds}; each command run alternately both ways, median seconds).", "",
             f"Fork server start (once per test session): {server_start:.1f} s.", "",
             "| command | fresh interpreter s | fork server s | ratio |", "|---|---|---|---|"]
    for name in ("usage error (exit 2)", "one-trial tiny study"):
        fresh = statistics.median(times[(name, "fresh interpreter")])
        fork = statistics.median(times[(name, "fork server")])
        lines.append(f"| {name} | {fresh:.1f} | {fork:.1f} | {fresh / fork:.1f}× |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
