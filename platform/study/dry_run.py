"""``--dry-run``: the study's design, every trial (design point × seed), with params and FLOPs per point.

Nothing is trained and no store is touched. Data is not loaded either: the model is built for the spec's image
size with 1 input channel for ``digits`` (or ``grayscale: true``) and 3 otherwise, and 10 classes — parameter
counts differ from the real run only in the classifier head.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

import sasa

from ..search import build_model, grid_points, sampled_target
from ..spec import StudySpec

NUM_CLASSES = 10  # the dry run loads no data: models get a 10-class head


def print_design(spec: StudySpec, *, console: Console) -> None:
    search = spec.search
    seeds = list(search.seeds)
    console.print(f"[bold]{spec.name}[/]: {spec.description or ''}".rstrip(": "))
    console.print(f"design: {search.design}; seeds: {seeds}; objective: {spec.objective.metric} "
                  f"({spec.objective.direction}){' + ' + spec.objective.second if spec.objective.second else ''}")
    channels = spec.data.expected_channels
    size = spec.data.image_size
    if search.design != "grid":
        target = sampled_target(spec)
        capped = f" (the space holds only {target})" if search.n_trials and target and target < search.n_trials else ""
        console.print(f"search: {search.n_trials} sampled points{capped} × {len(seeds)} seeds "
                      f"(timeout: {search.timeout or 'none'}) over:")
        for name, param in search.parameters.items():
            console.print(f"  {name}: {param}")
        return
    table = Table(title=f"{len(grid_points(spec)) * len(seeds)} trials")
    for column in ("#", "design point", "seed", "params (M)", "FLOPs (G)"):
        table.add_column(column, justify="left" if column == "design point" else "right")
    number = 0
    for point in grid_points(spec):
        model = build_model(spec, point, num_classes=NUM_CLASSES, in_channels=channels)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        flops = sasa.count_flops(model, (1, channels, size, size)) / 1e9
        for seed in seeds:
            table.add_row(str(number), point.key, str(seed), f"{params:.3f}", f"{flops:.4f}")
            number += 1
    console.print(table)
