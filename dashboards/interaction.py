"""A two-factor grid's report section: the two-way table (cells mean [95 % CI]), main effects and the interaction
with their verdicts, and the interaction plot. The statistics are :mod:`.contrasts`'; this module picks the
factors and the seeds from a study's design points and says what it found in text (Markdown, HTML, terminal).

Only a grid that varies exactly two parameters gets the section; a grid over three or more says in one note that
the interaction analysis needs exactly two factors (it does not pick pairs: a pair's contrasts would average
over, or condition on, the third factor without saying which). Every cell must have complete, unpruned trials;
the contrasts use the seeds every cell has (paired by seed), one look at them.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure

from . import contrasts, decisions, plots, resolution, sequential, stats
from .data import PointData, StudyInfo

WORDS = {sequential.BETTER: "better", sequential.WORSE: "worse", sequential.EQUIVALENT: "equivalent",
         sequential.UNDECIDED: "undecided"}
INTERACTION_WORDS = {sequential.BETTER: "interaction", sequential.WORSE: "interaction",
                     sequential.EQUIVALENT: "no interaction", sequential.UNDECIDED: "undecided"}
EFFECTS_HEADER = ("contrast", "Δ [95 % CI]", "p (Holm)", "verdict")


@dataclass(frozen=True)
class EffectRow:
    """One contrast as the report shows it."""

    kind: str  # contrasts.MAIN or contrasts.INTERACTION
    label: str
    delta: float
    ci_low: float | None
    ci_high: float | None
    p_value: float
    p_holm: float
    p_equivalence: float
    verdict: str


@dataclass(frozen=True)
class TwoWay:
    """The two-factor analysis of a study: factors, levels (baselines first), cells and contrasts."""

    factors: tuple[str, str]
    levels: tuple[tuple[str, ...], tuple[str, ...]]
    cells: dict[tuple[str, str], stats.Summary]
    seeds: tuple[int, ...]
    effect: float | None
    rows: list[EffectRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: tuple[tuple[object, ...], tuple[object, ...]] = ((), ())  # the levels' values (numeric axes for the plot)


def varied_factors(points: Sequence[PointData], info: StudyInfo) -> list[str]:
    """The grid's parameters that take more than one level among the design points."""
    return [n for n in info.parameters if len({p.level.get(n) for p in points}) > 1]


def _levels(points: Sequence[PointData], name: str, baseline: str | None) -> list[str]:
    seen = list(dict.fromkeys(p.level[name] for p in points if name in p.level))
    if baseline in seen:
        seen.remove(baseline)
        seen.insert(0, baseline)
    return seen


def analyse(points: Sequence[PointData], info: StudyInfo) -> tuple[TwoWay | None, str | None]:
    """The two-way analysis, or None and why not (a note for the report; None too when the grid is one-factor)."""
    if info.design != "grid":
        return None, None
    factors = varied_factors(points, info)
    if len(factors) < 2:
        return None, None
    if len(factors) > 2:
        return None, (f"interaction analysis needs exactly two factors; this grid varies {len(factors)} "
                      f"({', '.join(factors)}): main effects and interactions are not computed")
    a, b = factors
    reference = info.reference_levels or {}
    levels = (tuple(_levels(points, a, reference.get(a))), tuple(_levels(points, b, reference.get(b))))
    by_cell = {(p.level.get(a), p.level.get(b)): p for p in points}
    missing = [f"{a}={x},{b}={y}" for x in levels[0] for y in levels[1]
               if (x, y) not in by_cell or not by_cell[(x, y)].values or decisions.is_pruned(by_cell[(x, y)])]
    if missing:
        return None, ("two-factor analysis skipped: every cell needs complete, unpruned trials; missing: "
                      + ", ".join(missing))
    cells = [[by_cell[(x, y)] for y in levels[1]] for x in levels[0]]
    common = set.intersection(*(set(p.values) for row in cells for p in row))
    seeds = tuple(sorted(common))
    bounds = stats.metric_bounds(info.metric)
    summaries = {(x, y): stats.describe(list(by_cell[(x, y)].values.values()), bounds=bounds)
                 for x in levels[0] for y in levels[1]}
    def raw(name: str, labels: tuple[str, ...]) -> tuple[object, ...]:
        return tuple(next(p.raw_level.get(name) for p in points if p.level.get(name) == v) for v in labels)

    effect = decisions.seed_plan(info.spec.get("search", {})).effect
    found = TwoWay((a, b), levels, summaries, seeds, effect, raw=(raw(a, levels[0]), raw(b, levels[1])))
    dropped = sorted(set().union(*(set(p.values) for row in cells for p in row)) - common)
    if dropped:
        found.notes.append(f"two-factor contrasts use the {len(seeds)} seeds every cell has; seeds "
                           f"{', '.join(map(str, dropped))} are left out (not run in every cell)")
    if len(seeds) < 2:
        found.notes.append(f"two-factor contrasts need ≥ 2 seeds shared by every cell; there are {len(seeds)}")
        return found, None
    _contrast_rows(found, {key: p.values for key, p in by_cell.items()}, info)
    return found, None


def _contrast_rows(found: TwoWay, values: Mapping[tuple[str, str], Mapping[int, float]], info: StudyInfo) -> None:
    (a, b), (la, lb), seeds = found.factors, found.levels, found.seeds
    flat = {f"{x}|{y}": dict(values[(x, y)]) for x in la for y in lb}
    snapped, res = resolution.snap(flat, decisions.examples_of(info))
    grid = np.array([[[snapped[f"{x}|{y}"][s] for s in seeds] for y in lb] for x in la])
    listed = contrasts.contrast_list(len(la), len(lb))
    per_seed = contrasts.contrast_values(grid, listed)  # (contrasts, seeds)
    sign = 1 if info.direction == "maximize" else -1
    if found.effect is not None:
        result = contrasts.decide(per_seed[None], listed, effect=float(found.effect), sign=sign, alpha=stats.ALPHA,
                                  step=res.step, counts=res.examples is not None)
    diff_bounds = stats.difference_bounds(stats.metric_bounds(info.metric))
    for j, c in enumerate(listed):
        bounds = diff_bounds if c.kind == contrasts.MAIN or diff_bounds is None else \
            (2 * diff_bounds[0], 2 * diff_bounds[1])
        summary = stats.describe(per_seed[j], bounds=bounds, var_floor=(res.step / c.units) ** 2 / 6.0)
        if c.kind == contrasts.MAIN and c.factor == "A":
            label = f"{a}: {la[c.a]} − {la[0]} (mean over {b})"
        elif c.kind == contrasts.MAIN:
            label = f"{b}: {lb[c.b]} − {lb[0]} (mean over {a})"
        else:
            label = f"{a} {la[c.a]} − {la[0]} at {b}={lb[c.b]} minus at {b}={lb[0]}"
        if found.effect is None:
            verdict, p, p_holm, p_eq = "—", float("nan"), float("nan"), float("nan")
        else:
            code = int(result.verdict[0, j])
            verdict = (INTERACTION_WORDS if c.kind == contrasts.INTERACTION else WORDS)[code]
            p, p_holm, p_eq = (float(x[0, j]) for x in (result.p_value, result.p_holm, result.p_equivalence))
        found.rows.append(EffectRow(c.kind, label, float(summary.mean), summary.ci_low, summary.ci_high, p, p_holm,
                                    p_eq, verdict))


# --- text --------------------------------------------------------------------------------------------------------


def _num(value: float | None, decimals: int = 4, signed: bool = False) -> str:
    return "—" if value is None else f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def cell_text(summary: stats.Summary) -> str:
    """``mean [low, high]`` (the mean alone below two seeds)."""
    if summary.ci_low is None or summary.ci_high is None:
        return _num(summary.mean)
    return f"{_num(summary.mean)} [{_num(summary.ci_low)}, {_num(summary.ci_high)}]"


def table_header(found: TwoWay) -> list[str]:
    a, b = found.factors
    return [f"{a} \\ {b}", *found.levels[1]]


def table_cells(found: TwoWay) -> list[list[str]]:
    """The two-way table: one row per level of the first factor, one column per level of the second."""
    return [[x, *(cell_text(found.cells[(x, y)]) for y in found.levels[1])] for x in found.levels[0]]


def effect_cells(found: TwoWay) -> list[list[str]]:
    def p_text(row: EffectRow) -> str:
        return "—" if row.p_holm != row.p_holm else f"{row.p_holm:.3g}"  # NaN: no verdicts

    return [[r.label, f"{_num(r.delta, signed=True)} [{_num(r.ci_low, signed=True)}, {_num(r.ci_high, signed=True)}]",
             p_text(r), r.verdict] for r in found.rows]


def caption(found: TwoWay, metric: str) -> str:
    """What the two tables show and how the verdicts were reached."""
    a, b = found.factors
    text = (f"Two-way table: {metric} per cell, mean [95 % t CI] over seeds. Contrasts paired by seed over the "
            f"{len(found.seeds)} seeds every cell has; baselines {a}={found.levels[0][0]}, {b}={found.levels[1][0]}. "
            f"Interaction: the difference of differences, (effect of {a} at {b}=level) − (at the baseline), per seed. ")
    if found.effect is None:
        return text + "No verdicts: the spec sets no search.effect."
    return text + (f"Verdicts at effect ±{found.effect:g} for main effects and interactions alike: better / worse "
                   f"(an interaction: 'interaction') at Holm-adjusted p < {stats.ALPHA} over all "
                   f"{len(found.rows)} contrasts; equivalent ('no interaction') by TOST within ±{found.effect:g}; "
                   "else undecided.")


def markdown(found: TwoWay, metric: str) -> str:
    """The section as Markdown (table.md, the non-terminal print)."""
    def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
        esc = [[c.replace("|", "\\|") for c in row] for row in [list(header), *rows]]
        return ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|",
                *("| " + " | ".join(r) + " |" for r in esc[1:])]

    lines = ["## Two factors", "", *table(table_header(found), table_cells(found)), ""]
    if found.rows:
        lines += [*table(EFFECTS_HEADER, effect_cells(found)), ""]
    lines += [f"note: {n}" for n in found.notes]
    return "\n".join([*lines, caption(found, metric), ""])


def terminal_lines(found: TwoWay, metric: str, width: int = 80) -> list[str]:
    """The section as plain lines no longer than ``width``: aligned tables when they fit, else per row its name
    and then its cells on an indented line."""
    lines = textwrap.wrap(f"two factors: {found.factors[0]} × {found.factors[1]} ({metric})", width)
    for header, rows in ((table_header(found), table_cells(found)), (list(EFFECTS_HEADER), effect_cells(found))):
        if not rows:
            continue
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        aligned = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                   strict=True))).rstrip() for r in [header, *rows]]
        if max(len(line) for line in aligned) <= width:
            lines += aligned
            continue
        for row in rows:  # narrower: each row's name, then its cells on an indented line (wrapped if need be)
            lines += textwrap.wrap(row[0], width, subsequent_indent="  ")
            named = [f"{h} {c}" for h, c in zip(header[1:-1], row[1:-1], strict=True)]
            lines += textwrap.wrap(" · ".join([*named, row[-1]]), width, initial_indent="  ",
                                   subsequent_indent="    ")  # the last cell (a verdict, a value) unnamed
    notes = [part for n in found.notes for part in textwrap.wrap(f"note: {n}", width, subsequent_indent="  ")]
    return [*lines, *notes]


# --- the plot ----------------------------------------------------------------------------------------------------


def interaction_plot(found: TwoWay, *, metric: str, direction: str) -> bytes:
    """Lines of the cell means across the first factor's levels, one line per level of the second, with 95 % CI
    bars: parallel lines mean no interaction. Numeric levels sit at their values, others evenly."""
    (a, b), (la, lb) = found.factors, found.levels
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in found.raw[0]) and found.raw[0]
    order = sorted(range(len(la)), key=lambda i: float(found.raw[0][i])) if numeric else list(range(len(la)))
    xs = [float(found.raw[0][i]) for i in order] if numeric else [float(k) for k in range(len(la))]
    fig = Figure(figsize=(5.6, 4.0))
    ax = fig.add_subplot()
    for offset, y in enumerate(lb):
        shift = (offset - (len(lb) - 1) / 2) * 0.02 * ((max(xs) - min(xs)) or 1.0)  # bars side by side
        cells = [found.cells[(la[i], y)] for i in order]
        means = [c.mean for c in cells]
        low = [c.mean - c.ci_low if c.ci_low is not None else 0.0 for c in cells]
        high = [c.ci_high - c.mean if c.ci_high is not None else 0.0 for c in cells]
        ax.errorbar([x + shift for x in xs], means, yerr=[low, high], marker="o", capsize=4, label=y)
    ax.set_xticks(xs, [la[i] for i in order])
    ax.set_xlabel(a)
    ax.set_ylabel(f"{metric} ({'higher' if direction == 'maximize' else 'lower'} is better)")
    ax.set_title("interaction plot: cell mean ± 95 % CI (parallel lines: no interaction)", fontsize=9)
    ax.legend(fontsize=8, title=b, title_fontsize=8)
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=plots.DPI, bbox_inches="tight")
    return buffer.getvalue()
