"""``--dry-run``: the study's design, every trial (design point × seed), with params and FLOPs per point.

Nothing is trained and no store is touched. Data is not loaded either: the model is built for the spec's image
size with 1 input channel for ``digits`` (or ``grayscale: true``) and 3 otherwise, and 10 classes — parameter
counts differ from the real run only in the classifier head.

When the study already exists in its Optuna storage (read only; a missing SQLite file is never created), the dry
run also shows each comparison's verdict so far and the seeds it needs for a verdict at 80 % power
(:func:`stored_verdicts`).
"""

from __future__ import annotations

from pathlib import Path

import optuna
import torch
from rich.console import Console
from rich.table import Table

import sasa

from ..reports.views import verdicts
from ..search import grid_points, resolve, sampled_target
from ..spec.study_spec import StudySpec
from ..stores.connect import open_storage_read_only, study_exists
from ..stores.locations import Stores
from ..stores.sqlite_files import is_empty
from .summary import get_verdicts

NUM_CLASSES = 10  # the dry run loads no data: models get a 10-class head
MAX_ROWS = 20  # trials printed; the rest are counted


def stored_verdicts(spec: StudySpec, stores: Stores) -> dict[str, verdicts.Verdict] | None:
    """The verdicts of the stored study of this name (None when there is none, or no ``search.effect``)."""
    url = stores.storage_url
    if spec.search.effect is None or (url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file()):
        return None
    if is_empty(url):  # made but not filled yet: no study in it
        return None
    storage = open_storage_read_only(url)  # a dry run writes nothing, not even Optuna's tables
    if not study_exists(storage, spec.name):
        return None
    return get_verdicts(optuna.load_study(study_name=spec.name, storage=storage), spec.resolved_dict())


def print_verdicts(found: dict[str, verdicts.Verdict], *, console: Console) -> None:
    table = Table(title="stored study: comparisons so far")
    for column in ("design point", "reference", "verdict", "paired seeds", "seeds needed"):
        table.add_column(column, justify="left" if column in ("design point", "reference") else "right")
    for v in found.values():
        table.add_row(v.point, v.reference, v.verdict, str(v.n), verdicts.seeds_label(v.seeds_needed))
    console.print(table)


def print_design(spec: StudySpec, *, console: Console, stored: dict[str, verdicts.Verdict] | None = None) -> None:
    search = spec.search
    seeds = search.initial_seeds
    if stored:
        print_verdicts(stored, console=console)
    console.print(f"[bold]{spec.name}[/]: {spec.description or ''}".rstrip(": "))
    if search.adaptive:
        console.print(f"adaptive seeds: {seeds} first, then one more per undecided comparison up to "
                      f"{search.seed_bounds[1]} (effect ±{search.effect:g})")
    console.print(f"design: {search.design}; seeds: {seeds}; objective: {spec.objective.metric} "
                  f"({spec.objective.direction}){' + ' + spec.objective.second if spec.objective.second else ''}")
    channels = spec.data.expected_channels
    size = spec.data.image_size
    if search.design != "grid":
        target = sampled_target(spec)
        capped = f" (the space holds only {target})" if search.n_trials and target and target < search.n_trials else ""
        console.print(f"search: {search.n_trials} sampled points{capped} × {len(seeds)} seeds "
                      f"(timeout: {search.timeout or 'none'}) over:")
        for name, param in list(search.parameters.items())[:MAX_ROWS]:
            console.print(f"  {name}: {str(param)[:200]}")
        return
    points = grid_points(spec)
    total = len(points) * len(seeds)
    table = Table(title=f"{total:,} trials" + (f" (first {MAX_ROWS} shown)" if total > MAX_ROWS else ""))
    for column in ("#", "design point", "seed", "params (M)", "FLOPs (G)"):
        table.add_column(column, justify="left" if column == "design point" else "right")
    sizes: dict[str, tuple[float, float]] = {}  # per architecture: built and counted once
    number = 0
    for point in points:
        if number >= MAX_ROWS:
            break
        model_spec, _ = resolve(spec, point)
        key = model_spec.model_dump_json()
        if key not in sizes:
            with torch.device("meta"):  # shapes only: no memory, and no kernel needs this machine's device
                model = model_spec.build(num_classes=NUM_CLASSES, in_channels=channels)
            sizes[key] = (sum(p.numel() for p in model.parameters()) / 1e6,
                          sasa.count_flops(model, (1, channels, size, size)) / 1e9)
        params, flops = sizes[key]
        for seed in seeds[: MAX_ROWS - number]:
            table.add_row(str(number), point.key, str(seed), f"{params:.3f}", f"{flops:.4f}")
            number += 1
    console.print(table)
    if total > number:
        console.print(f"… and {total - number:,} more trials")
