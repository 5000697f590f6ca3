"""``--dry-run``: the study's design, every trial (design point × seed), with params and FLOPs per point.

Nothing is trained and no store is touched. Data is not loaded either: the model is built for the spec's image
size with 1 input channel for ``digits`` (or ``grayscale: true``) and 3 otherwise, and 10 classes — parameter
counts differ from the real run only in the classifier head.

When the study already exists in its Optuna storage (read only; a missing SQLite file is never created), the dry
run also shows each comparison's verdict so far and the seeds it needs for a verdict at 80 % power
(:func:`stored_verdicts`). With ``search.effect`` it states what the seeds budget can decide before it is spent
(:func:`power_lines`: power at 2σ, the smallest difference decided with 80 % power, σ from the stored trials
when they exist).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
import torch
from rich.console import Console
from rich.table import Table

import sasa

from ..data.sources import planned_examples
from ..reports.load import point_info, study_info
from ..reports.views import data, decisions, verdicts
from ..search import grid_points, resolve, sampled_target
from ..spec.study_spec import StudySpec
from ..spec.values import label
from ..stores.connect import open_storage_read_only, study_exists
from ..stores.locations import Stores
from ..stores.sqlite_files import is_empty
from .confirm import budget_lines, dry_run_rows
from .summary import get_verdicts

NUM_CLASSES = 10  # the dry run loads no data: models get a 10-class head
MAX_ROWS = 20  # trials printed; the rest are counted


def _stored_study(spec: StudySpec, stores: Stores) -> optuna.Study | None:
    url = stores.storage_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        return None
    if is_empty(url):  # made but not filled yet: no study in it
        return None
    storage = open_storage_read_only(url)  # a dry run writes nothing, not even Optuna's tables
    return optuna.load_study(study_name=spec.name, storage=storage) if study_exists(storage, spec.name) else None


def stored_verdicts(spec: StudySpec, stores: Stores) -> dict[str, verdicts.Verdict] | None:
    """The verdicts of the stored study of this name (None when there is none, or no ``search.effect``)."""
    if spec.search.effect is None:
        return None
    study = _stored_study(spec, stores)
    return None if study is None else get_verdicts(study, spec.resolved_dict())


def power_lines(spec: StudySpec, stores: Stores) -> list[str]:
    """What the seeds budget can decide (grid designs with ``search.effect``); σ from the stored trials if any."""
    if spec.search.effect is None or spec.search.design != "grid":
        return []
    if (reason := decisions.no_verdicts_reason(spec.resolved_dict()["search"])) is not None:
        return [reason]
    study = _stored_study(spec, stores)
    info = study_info(study, spec.resolved_dict())
    if info.examples is None:  # no trial recorded N yet: the split's size when the spec says it (digits)
        info = replace(info, examples=planned_examples(spec.data, limit_val_batches=spec.train.limit_val_batches))
    points = point_info(study, info) if study is not None else [
        data.PointData(key=p.key, level={n: label(v) for n, v in p.params.items()}, raw_level=dict(p.optuna_params))
        for p in grid_points(spec)]
    found = decisions.study_power(points, info)
    return [] if found is None else found.lines()


def print_verdicts(found: dict[str, verdicts.Verdict], *, console: Console) -> None:
    table = Table(title="stored study: comparisons so far")
    for column in ("design point", "reference", "verdict", "paired seeds", "seeds needed"):
        table.add_column(column, justify="left" if column in ("design point", "reference") else "right")
    for v in found.values():
        table.add_row(v.point, v.reference, v.verdict, str(v.n), verdicts.seeds_label(v.seeds_needed))
    console.print(table)


def print_design(spec: StudySpec, *, console: Console, stored: dict[str, verdicts.Verdict] | None = None,
                 power: list[str] | None = None) -> None:
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
        print_confirmation(spec, console=console)
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
    for line in power or ():
        console.print(line, highlight=False)


def print_confirmation(spec: StudySpec, *, console: Console) -> None:
    """A sampled design's confirmation round: its first trials (finalists by rank × fresh seeds) and its budget."""
    rows = dry_run_rows(spec)
    if rows:
        table = Table(title=f"confirmation round: its first {len(rows)} trials, after the search")
        for column in ("design point", "fresh seed"):
            table.add_column(column, justify="left" if column == "design point" else "right")
        for name, seed in rows[:MAX_ROWS]:
            table.add_row(name, str(seed))
        console.print(table)
    for line in budget_lines(spec):
        console.print(line, highlight=False, soft_wrap=True)
