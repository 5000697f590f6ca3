"""``python -m platform.promote STUDY``: put a study's champion model in the MLflow Model Registry under an alias.

A sasa-lab study compares Stand-Alone Self-Attention designs (Ramachandran et al., NeurIPS 2019: window size,
positional encoding, heads, stem, attention groups) over seeds; promotion turns its winner into a model any
program can load with ``mlflow.pytorch.load_model("models:/NAME@champion")``. Steps:

1. find the study (a YAML path or a study name) in the Optuna storage; use the spec stored with it (what the
   trials actually ran, ``--set`` overrides included);
2. choose the champion trial by the rule of :mod:`.champion` (printed), or ``--trial N``; for a seeded grid
   ``--prefer cheapest`` (default: the cheapest design point shown equivalent or better than the best by mean)
   or ``--prefer mean`` (:mod:`.preference`); a search without a confirmation round gets a one-line notice that
   its champion is a selected single trial (biased upward). ``--dry-run`` prints what each rule would choose and
   stops;
3. refuse to move the alias away from a champion with a better objective value unless ``--force``;
4. register the trial's logged model (``models:/<model_id>``) as a new version of NAME (``sasa-<study>``), with a
   description and ``sasa.*`` tags — unless a version from the same MLflow run exists: then it is reused;
5. verify *before* moving the alias: load ``models:/NAME/<version>``, evaluate it on the study's test split (CPU,
   eval mode, float32) and compare with the trial's logged ``test/acc`` (absolute) and ``test/loss`` (relative)
   within ``--tolerance``. On a mismatch the version is tagged ``sasa.verification=failed``, the alias stays
   where it was and the exit code is 2;
6. set the alias and print ``models:/NAME@ALIAS`` with a load snippet.

Tolerance (default: by the trial's ``train.precision``; 1e-4 for 32-true/64-true, 2e-3 for 16-mixed, 5e-3 for
bf16-mixed): the check repeats the computation that produced the logged numbers — same weights, same cached and
seeded test split, batch norm in eval mode — so for a float32 trial on the CPU it can only differ by float32
rounding (about 1e-7); 1e-4 is below one test example for test sets under 10,000 images, so it accepts the same
predictions only. Mixed-precision trials logged numbers computed in half precision, which the float32
re-evaluation can change by a few borderline predictions: hence their looser default. ``--tolerance`` overrides.

The registered model takes raw images (values in [0, 1]; the normalisation is inside it), so
``mlflow models serve -m models:/NAME@champion --env-manager local`` answers JSON requests of images as they are.

Exit codes: 0 promoted (or already the champion), 2 bad input, no such study, nothing to promote, unreachable
store, a better champion without ``--force``, or failed verification — always one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from ..startup import interrupt_exits

with interrupt_exits("interrupted while starting (nothing was changed); rerun the same command"):
    import optuna

    from ..data.sources import DataError
    from ..spec.errors import SpecError
    from ..stores.connect import StoreError
    from .champion import NoChampionError, PromotionError, one_line
    from .preference import DEFAULT_PREFER, PREFER_RULES
    from .promotion import DEFAULT_ALIAS, preview, promote

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description="Register a study's champion model in the MLflow Model Registry and point an alias at it, "
        "after re-evaluating it on the test split. Winner: for a grid with ≥ 2 seeds a design point by --prefer "
        "(default cheapest), then its best seed; otherwise the best complete trial (two objectives: the best "
        "primary objective on the Pareto front; a sampled search says it is not confirmed).",
        epilog="Exit codes: 0 promoted, 2 bad input / nothing to promote / unreachable store / better champion "
        "without --force / failed verification.",
    )
    parser.add_argument("study", help="study YAML file or study name")
    parser.add_argument("--alias", default=DEFAULT_ALIAS, help="registry alias to move (default: champion)")
    parser.add_argument("--name", help="registered model name (default: sasa-<study>)")
    parser.add_argument("--trial", type=int, metavar="N", help="promote trial N instead of the rule's winner")
    parser.add_argument("--prefer", choices=PREFER_RULES, default=DEFAULT_PREFER,
                        help="seeded grids: 'cheapest' (default) promotes the cheapest design point (FLOPs, then "
                        "params) whose verdict against the best by mean is equivalent or better at search.effect, "
                        "else the best by mean; 'mean' promotes the best by mean whatever it costs")
    parser.add_argument("--dry-run", action="store_true",
                        help="print which trial and design point each --prefer rule would promote; register nothing")
    parser.add_argument("--force", action="store_true",
                        help="replace a current alias holder whose objective value is better")
    parser.add_argument("--tolerance", type=float, default=None, metavar="T",
                        help="largest accepted |re-evaluated − logged| test accuracy (absolute) and test loss "
                        "(relative) (default: by the trial's precision: 1e-4 for 32-true, 2e-3 for 16-mixed, "
                        "5e-3 for bf16-mixed)")
    parser.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: sqlite:///runs/optuna.db)")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking/registry URI "
                        "(default: sqlite:///runs/mlflow.db)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"),
                        help="folder of the default stores and the prepared-data cache (default: ./runs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; Ctrl-C at any moment ends it with one line and exit code 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted: the alias was not moved; rerun the same command", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    """Parse, promote (its steps printed as they happen), then print how to load and serve the champion."""
    args = build_parser().parse_args(argv)
    for name in ("mlflow", "alembic", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        if args.dry_run:
            print("\n".join(preview(args.study, storage=args.storage, tracking_uri=args.tracking_uri,
                                     runs_dir=args.runs_dir)))
            return 0
        promotion = promote(args.study, alias=args.alias, name=args.name, trial=args.trial, force=args.force,
                            tolerance=args.tolerance, storage=args.storage, tracking_uri=args.tracking_uri,
                            runs_dir=args.runs_dir, progress=print, prefer=args.prefer)  # steps as they happen
    except (PromotionError, NoChampionError, StoreError, SpecError, DataError, ValueError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # registry / database errors from mlflow or sqlalchemy: still one line
        print(f"error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    print()
    print("\n".join(promotion.usage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
