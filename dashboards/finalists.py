"""The finalists of a sampled study: search-phase value (selected, biased), confirmed value, and their verdicts.

A sampled design (tpe, random, cmaes, nsga2) keeps the best of many noisy runs, so a finalist's search-phase value
is biased upward (the winner's curse). Its confirmation round re-runs the finalists on fresh seeds
(``platform/study/confirm.py``); this module turns those runs into the finalists table:

- **search value**: the finalist's mean over its search-phase seeds, *selected*: biased upward by the selection;
- **confirmed**: mean ± 95 % CI over the fresh seeds (an unbiased estimate: those seeds played no part in the
  choice); **curse**: search − confirmed, how much of the search value was luck;
- **vs reference**: each finalist against ``search.reference`` (better / worse / equivalent within ±effect /
  undecided), paired by seed;
- **best vs runner-up** (by confirmed mean): "better" when the best is decided better, "tied within effect" when
  the two are shown equivalent, else "undecided".

The verdicts are :func:`dashboards.verdicts.decide`'s (group-sequential paired tests with Holm over one family:
every finalist-vs-reference comparison plus best-vs-runner-up; the two calls each use that whole family's size, a
conservative split of one Holm family). :func:`finalist_order` and :func:`family_size` are the rules both the
study (``platform/study/confirm.py``) and the simulation (:mod:`.search_simulation`) use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from rich.console import Console

from . import columns, stats, terminal, verdicts
from .data import PointData, StudyInfo
from .decisions import SeedPlan, examples_of

BEST_BETTER = "better"
BEST_TIED = "tied within effect"
BEST_UNDECIDED = "undecided"
SEARCH_LABEL = "search (selected, biased)"
RUNNER_UP = "runner-up"  # the key under which best-vs-runner-up is decided (never a design point's key)


def finalist_order(means: Mapping[str, float], direction: str) -> list[str]:
    """Design point keys best first (ties: the order given, i.e. the earlier trial first)."""
    sign = -1.0 if direction == "maximize" else 1.0
    order = list(means)
    return sorted(order, key=lambda key: (sign * means[key], order.index(key)))


def family_size(finalists: int, *, reference: bool) -> int:
    """Comparisons in the confirmation round's Holm family: each finalist vs the reference, and best vs
    runner-up when there are two points or more."""
    points = finalists + (1 if reference else 0)
    return (finalists if reference else 0) + (1 if points >= 2 else 0)


@dataclass(frozen=True)
class FinalistRow:
    """One finalist: its search value, its confirmed value over fresh seeds, and its verdict vs the reference."""

    key: str
    is_reference: bool
    search_value: float | None
    confirmed: stats.Summary
    curse: float | None  # search value − confirmed mean
    vs_reference: verdicts.Verdict | None


@dataclass(frozen=True)
class FinalistsTable:
    """The table, best confirmed first, and the verdict of the best against the runner-up."""

    rows: list[FinalistRow]
    best: str | None
    runner_up: str | None
    best_vs_runner_up: verdicts.Verdict | None
    effect: float | None
    seeds: str  # how many fresh seeds, e.g. "3–6 fresh seeds (adaptive)"

    @property
    def best_verdict(self) -> str | None:
        """"better", "tied within effect" or "undecided" (None without an effect or a runner-up)."""
        v = self.best_vs_runner_up
        if v is None:
            return None
        return BEST_BETTER if v.verdict == "better" else BEST_TIED if v.verdict == "equivalent" else BEST_UNDECIDED

    def summary(self) -> str:
        """One sentence: the confirmed winner and how it stands against the runner-up."""
        if self.best is None:
            return "confirmation round: no finalist has a confirmed value yet"
        best = next(r for r in self.rows if r.key == self.best)
        text = f"confirmed winner: {self.best} ({_fmt(best.confirmed.mean)} over {best.confirmed.n} fresh seeds)"
        if self.runner_up is not None and self.best_verdict is not None:
            text += f"; vs runner-up {self.runner_up}: {self.best_verdict}"
            if self.best_verdict == BEST_TIED:
                text += f" (±{self.effect:g})"
        elif self.effect is None:
            text += "; no verdicts (set search.effect)"
        return text

    def lines(self) -> list[str]:
        """The table as plain text lines (MLflow description, optuna-dashboard note)."""
        out = [f"finalists, re-run on {self.seeds}; {SEARCH_LABEL} vs confirmed mean [95 % CI]:"]
        for row in self.rows:
            low, high = row.confirmed.ci_low, row.confirmed.ci_high
            ci = f" [{_fmt(low)}, {_fmt(high)}]" if low is not None and high is not None else ""
            verdict = "reference" if row.is_reference else row.vs_reference.verdict if row.vs_reference else "—"
            out.append(f"- {row.key}: search {_fmt(row.search_value)} → confirmed {_fmt(row.confirmed.mean)}{ci} "
                       f"(n={row.confirmed.n}; curse {_fmt(row.curse, signed=True)}); vs reference: {verdict}")
        out.append(self.summary())
        return out


def _fmt(value: float | None, *, signed: bool = False) -> str:
    return "—" if value is None else f"{value:+.4f}" if signed else f"{value:.4f}"


def finalist_table(search: Sequence[PointData], confirmed: Sequence[PointData], *, finalists: Sequence[str],
                   reference: str | None, info: StudyInfo, plan: SeedPlan) -> FinalistsTable:
    """The finalists table from the search-phase and confirmation-round trials of each design point.

    ``finalists``: the chosen design point keys (reference excluded); ``plan``: the confirmation seeds (effect,
    {min, max}); verdicts need ``plan.effect``.
    """
    search_by, confirm_by = {p.key: p for p in search}, {p.key: p for p in confirmed}
    keys = [*finalists, *([reference] if reference is not None else [])]
    bounds = stats.metric_bounds(info.metric)
    values = {k: dict(confirm_by[k].values) for k in keys if k in confirm_by and confirm_by[k].values}
    means = {k: float(sum(v.values()) / len(v)) for k, v in values.items()}
    order = finalist_order(means, info.direction)
    best, runner_up = [*order, None, None][:2]
    family = family_size(len(finalists), reference=reference is not None)
    against_ref: dict[str, verdicts.Verdict] = {}
    head: verdicts.Verdict | None = None
    if plan.effect is not None and family:
        common = {"effect": float(plan.effect), "direction": info.direction, "min_seeds": plan.min_seeds,
                  "max_seeds": plan.max_seeds, "bounds": bounds, "family": family, "examples": examples_of(info),
                  "failed": {k: confirm_by[k].failed_seeds for k in values if confirm_by[k].failed_seeds}}
        if reference in values:
            refs = {k: reference for k in finalists if k in values}
            if refs:
                against_ref = verdicts.decide({k: values[k] for k in (*refs, reference)}, refs, **common)
        if best is not None and runner_up is not None:
            pair = {best: values[best], RUNNER_UP: values[runner_up]}
            failed = {RUNNER_UP: common["failed"].get(runner_up, {}), best: common["failed"].get(best, {})}
            found = verdicts.decide(pair, RUNNER_UP, **{**common, "failed": failed})[best]
            head = _renamed(found, runner_up)
    rows = []
    for key in sorted(keys, key=lambda k: (order.index(k) if k in order else len(order), keys.index(k))):
        point = confirm_by.get(key)
        summary = stats.describe(list(point.values.values()) if point else [], bounds=bounds)
        searched = search_by.get(key)
        search_value = searched.mean if searched is not None else None
        curse = None if search_value is None or summary.mean is None else search_value - summary.mean
        rows.append(FinalistRow(key, key == reference, search_value, summary, curse, against_ref.get(key)))
    seeds = f"{plan.min_seeds}–{plan.max_seeds} fresh seeds (adaptive)" if plan.max_seeds > plan.min_seeds \
        else f"{plan.min_seeds} fresh seeds"
    return FinalistsTable(rows, best, runner_up, head, plan.effect, seeds)


def _renamed(found: verdicts.Verdict, runner_up: str) -> verdicts.Verdict:
    return replace(found, reference=runner_up, note=found.note.replace(RUNNER_UP, runner_up))


HEADERS = ("finalist", "search {metric} (selected, biased)", "confirmed {metric}", "95 % CI", "fresh seeds",
           "curse (search − confirmed)", "vs reference", "Δ vs reference")


def cells(table: FinalistsTable) -> list[list[str]]:
    """The table's cells, one list per finalist in :data:`HEADERS` order (text forms)."""
    out = []
    for row in table.rows:
        c, v = row.confirmed, row.vs_reference
        ci = f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]" if c.ci_low is not None and c.ci_high is not None else "—"
        verdict = "reference" if row.is_reference else v.verdict if v is not None else "—"
        delta = "—" if v is None or v.delta is None else \
            f"{v.delta:+.4f} [{_fmt(v.ci_low, signed=True)}, {_fmt(v.ci_high, signed=True)}]"
        name = f"{row.key} (best)" if row.key == table.best else row.key
        out.append([name, _fmt(row.search_value), _fmt(c.mean), ci, str(c.n), _fmt(row.curse, signed=True),
                    verdict, delta])
    return out


def render(table: FinalistsTable, *, console: Console, metric: str) -> None:
    """Print the table on a rich console (any width: :func:`dashboards.terminal.render_table`) and its verdict."""
    shown = [columns.Column(key=h, header=h, whole=i == 0) for i, h in enumerate(HEADERS)]
    rows = cells(table)
    styles = ["bold" if row.key == table.best else None for row in table.rows]
    terminal.render_table(console, title=f"finalists: confirmation round on {table.seeds}", shown=shown,
                          metric=metric, cells=rows, styles=styles, split=4, second_title="finalists (continued)")
    console.print(table.summary(), highlight=False, soft_wrap=True)


def markdown(table: FinalistsTable, *, metric: str) -> str:
    """The table in Markdown (the HTML report and the MLflow parent run's description)."""
    heads = [h.replace("{metric}", metric) for h in HEADERS]
    lines = [f"**Finalists**: confirmation round on {table.seeds}", "",
             "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(row) + " |" for row in cells(table)]
    return "\n".join([*lines, "", table.summary()])
