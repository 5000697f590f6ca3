"""``--dry-run``: the study's design, every trial (design point × seed), with params and FLOPs per point.

Nothing is trained and no store is touched. Data is not loaded either: the model is built for the spec's image
size with 1 input channel for ``digits`` (or ``grayscale: true``) and 3 otherwise, and 10 classes — parameter
counts differ from the real run only in the classifier head.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

import sasa

from ..search import grid_points, resolve
from ..spec import StudySpec

NUM_CLASSES = 10  # the dry run loads no data: models get a 10-class head
MAX_ROWS = 20  # trials printed; the rest are counted


def print_design(spec: StudySpec, *, console: Console) -> None:
    search = spec.search
    seeds = list(search.seeds)
    console.print(f"[bold]{spec.name}[/]: {spec.description or ''}".rstrip(": "))
    console.print(f"design: {search.design}; seeds: {seeds}; objective: {spec.objective.metric} "
                  f"({spec.objective.direction}){' + ' + spec.objective.second if spec.objective.second else ''}")
    channels = spec.data.expected_channels
    size = spec.data.image_size
    if search.design != "grid":
        console.print(f"search: {search.n_trials} sampled points × {len(seeds)} seeds "
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
