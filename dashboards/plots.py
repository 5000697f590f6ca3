"""The report's figures as PNG bytes (matplotlib Figures rendered by Agg, no pyplot state, no backend change).

Ablation figures follow the paper's comparisons (Ramachandran et al., 2019): the objective per factor level with
95 % confidence intervals over seeds, validation curves per level, and accuracy against cost (FLOPs, parameters),
the trade-off Tables 1 and 3-7 report. Search studies add parameter importances, the optimisation history,
parallel coordinates and, with two objectives, the Pareto front.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

# No ``matplotlib.use``: figures are drawn by matplotlib.figure.Figure without pyplot state, so the report never
# changes the backend of the process that builds it (a notebook keeps its inline plots).
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 110
REFERENCE_COLOR = "#d62728"
MAIN_COLOR = "#1f77b4"
PARETO_COLOR = "#ff7f0e"


@dataclass(frozen=True)
class LevelPoint:
    """One row of the ablation table as the plots need it."""

    label: str
    x: float | None  # numeric level (single numeric factor) or None for categorical placement
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    seed_values: tuple[float, ...]
    is_reference: bool
    accuracy: float | None  # test accuracy mean (or the objective when no test metric)
    params: int | None
    flops: int | None


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _positions(levels: Sequence[LevelPoint]) -> tuple[list[float], bool]:
    xs = [p.x for p in levels]
    if levels and all(x is not None for x in xs):
        return [float(x) for x in xs if x is not None], True
    return [float(i) for i in range(len(levels))], False


def objective_plot(levels: Sequence[LevelPoint], *, metric: str, direction: str, factor: str) -> bytes:
    """Mean objective per level with 95 % CI error bars and every seed's value as a dot."""
    fig = Figure(figsize=(max(5.0, 0.9 * len(levels) + 2), 3.8))
    ax = fig.add_subplot()
    xs, numeric = _positions(levels)
    for x, point in zip(xs, levels, strict=True):
        color = REFERENCE_COLOR if point.is_reference else MAIN_COLOR
        if point.seed_values:
            ax.scatter([x] * len(point.seed_values), point.seed_values, s=12, color="0.6", zorder=2)
        if point.mean is None:
            continue
        if point.ci_low is not None and point.ci_high is not None:
            ax.errorbar([x], [point.mean], yerr=[[point.mean - point.ci_low], [point.ci_high - point.mean]],
                        fmt="o", color=color, capsize=4, zorder=3)
        else:
            ax.plot([x], [point.mean], "o", color=color, zorder=3)
    if not numeric:
        ax.set_xticks(xs, [p.label for p in levels], rotation=30 if len(levels) > 4 else 0, ha="right"
                      if len(levels) > 4 else "center")
    else:
        ax.set_xticks(xs, [p.label for p in levels])
    ax.set_xlabel(factor)
    ax.set_ylabel(f"{metric} ({'higher' if direction == 'maximize' else 'lower'} is better)")
    ax.set_title("mean ± 95 % CI over seeds (grey: seeds, red: reference)", fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def curves_figure(curves: Sequence[tuple[str, list[int], list[float], list[float], list[float]]], *,
                  metric: str, factor: str = "") -> Figure:
    """``metric`` per epoch: mean over seeds, with the min–max band over seeds; one line per level. With a single
    epoch (1-epoch trials) each level is a point with a min–max bar, on an axis of whole epochs around it."""
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    epochs_seen = sorted({e for _, epochs, *_ in curves for e in epochs})
    single = len(epochs_seen) == 1
    for i, (label, epochs, mean, low, high) in enumerate(curves):
        if single:  # a band over one x is invisible: a bar, the levels spread a little apart to stay readable
            offset = (i - (len(curves) - 1) / 2) * min(0.08, 0.6 / max(len(curves), 1))
            ax.errorbar([e + offset for e in epochs], mean, yerr=[[m - lo for m, lo in zip(mean, low, strict=True)],
                        [hi - m for m, hi in zip(mean, high, strict=True)]], fmt="o", markersize=4, capsize=4,
                        label=label)
            continue
        (line,) = ax.plot(epochs, mean, marker="o", markersize=3, label=label)
        ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if epochs_seen:  # whole epochs only, with half an epoch of room on each side
        ax.set_xlim(epochs_seen[0] - 0.5, epochs_seen[-1] + 0.5)
        if len(epochs_seen) <= 12:
            ax.set_xticks(epochs_seen)
    ax.set_ylabel(metric)
    ax.set_title("validation curves: mean over seeds, band = min–max", fontsize=9)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8, ncols=2 if len(curves) > 6 else 1, title=factor or None, title_fontsize=8)
    return fig


def curves_plot(curves: Sequence[tuple[str, list[int], list[float], list[float], list[float]]], *,
                metric: str, factor: str = "") -> bytes:
    """:func:`curves_figure` as PNG bytes."""
    return _png(curves_figure(curves, metric=metric, factor=factor))


def cost_plot(levels: Sequence[LevelPoint], *, cost: str, accuracy_label: str) -> bytes:
    """Accuracy against ``cost`` ("flops" in G or "params" in M), each point labelled with its level."""
    scale, unit = (1e9, "FLOPs (G)") if cost == "flops" else (1e6, "params (M)")
    fig = Figure(figsize=(5.6, 4.0))
    ax = fig.add_subplot()
    for point in levels:
        value = point.flops if cost == "flops" else point.params
        if value is None or point.accuracy is None:
            continue
        color = REFERENCE_COLOR if point.is_reference else MAIN_COLOR
        ax.scatter([value / scale], [point.accuracy], color=color, zorder=3)
        ax.annotate(point.label, (value / scale, point.accuracy), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    ax.set_xlabel(unit)
    ax.set_ylabel(accuracy_label)
    ax.set_title(f"{accuracy_label} vs {unit} (mean over seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def importance_plot(importances: dict[str, float]) -> bytes:
    fig = Figure(figsize=(5.6, 0.5 * len(importances) + 1.2))
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color=MAIN_COLOR)
    ax.set_xlabel("importance (PED-ANOVA, normalised)")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def history_plot(numbers: Sequence[int], values: Sequence[float], *, metric: str, direction: str) -> bytes:
    """Objective per trial and the best value so far."""
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    ax.scatter(numbers, values, s=14, color=MAIN_COLOR, label="trial")
    best: list[float] = []
    for value in values:
        if not best:
            best.append(value)
        else:
            best.append(max(best[-1], value) if direction == "maximize" else min(best[-1], value))
    ax.step(numbers, best, where="post", color=REFERENCE_COLOR, label="best so far")
    ax.set_xlabel("trial number")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def parallel_plot(axes: Sequence[tuple[str, list[float], list[str] | None]], values: Sequence[float], *,
                  metric: str) -> bytes:
    """Parallel coordinates: one line per trial across normalised parameter axes, coloured by the objective.

    ``axes`` holds (name, values in [0, 1], tick labels for categorical axes or None).
    """
    fig = Figure(figsize=(max(5.0, 1.6 * len(axes) + 2), 4.0))
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["viridis"]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    span = (high - low) or 1.0
    xs = list(range(len(axes)))
    for i, value in enumerate(values):
        ax.plot(xs, [a[1][i] for a in axes], color=cmap((value - low) / span), alpha=0.7, linewidth=1.2)
    for x, (_, _, ticks) in zip(xs, axes, strict=True):
        ax.axvline(x, color="0.7", linewidth=0.8)
        for j, tick in enumerate(ticks or []):
            position = j / max(1, len(ticks or []) - 1)
            ax.annotate(tick, (x, position), textcoords="offset points", xytext=(3, 0), fontsize=7)
    ax.set_xticks(xs, [a[0] for a in axes])
    ax.set_yticks([])
    scalar = matplotlib.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(low, high))
    fig.colorbar(scalar, ax=ax, label=metric)
    ax.set_title("parallel coordinates (axes normalised; categorical levels labelled)", fontsize=9)
    return _png(fig)


def pareto_plot(values: Sequence[float], seconds: Sequence[float], on_front: Sequence[bool], *, metric: str,
                second: str) -> bytes:
    fig = Figure(figsize=(5.6, 4.0))
    ax = fig.add_subplot()
    dominated = [(v, s) for v, s, f in zip(values, seconds, on_front, strict=True) if not f]
    front = sorted((s, v) for v, s, f in zip(values, seconds, on_front, strict=True) if f)
    if dominated:
        ax.scatter([s for _, s in dominated], [v for v, _ in dominated], s=14, color="0.6", label="dominated")
    if front:
        ax.plot([s for s, _ in front], [v for _, v in front], "o-", color=PARETO_COLOR, label="Pareto front")
    if second in ("params", "flops") and seconds and max(seconds) > 1e4:
        ax.set_xscale("log")
    ax.set_xlabel(f"{second} (minimised)")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def normalise(values: Sequence[float], *, log: bool = False) -> list[float]:
    """Map values linearly (or in log space) onto [0, 1]; a constant axis sits at 0.5."""
    data = [math.log(v) if log and v > 0 else float(v) for v in values]
    low, high = (min(data), max(data)) if data else (0.0, 0.0)
    return [0.5 if high == low else (v - low) / (high - low) for v in data]
