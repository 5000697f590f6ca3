"""What the table's words mean, said the same way wherever a verdict is shown: the terminal (the report and the
end-of-study summary), ``report.html``/``table.md``, the parent run's MLflow description, the optuna-dashboard
note and the registry version's description all print :func:`verdict_legend` and :func:`best_line`.

Presentation only: the verdicts themselves are decided in :mod:`.verdicts` (with ``search.effect``) and
:mod:`.stats` (without); this module names what those rules are for one study (its effect, α and test).
"""

from __future__ import annotations

from collections.abc import Mapping

from . import stats

DECIDED = ("better", "worse", "equivalent")  # sequential verdicts that end a comparison ("seeds needed" blank)
TEST_NAMES = {"ttest": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}


def is_decided(verdict: str | None) -> bool:
    """Has the comparison reached its verdict (nothing left for more seeds to show)?"""
    return verdict in DECIDED


def verdict_legend(*, effect: float | None, metric: str, test: str = "ttest",
                   alpha: float = stats.ALPHA) -> str:
    """One line: what each verdict word means for this study (Δ, the test, α and, with ``search.effect``, the
    effect), so that "worse" is never read as "worse by at least the effect"."""
    head = f"Legend (Δ = level − reference in {metric}, paired by seed):"
    if effect is None:
        return (f"{head} better / worse = Δ ≠ 0 at Holm-corrected p < {alpha:g} ({TEST_NAMES.get(test, test)}); "
                f"no detectable difference = p ≥ {alpha:g}; needs more seeds = too few seeds to test.")
    return (f"{head} better / worse = Δ ≠ 0 at α {alpha:g} (paired t-test, sequential, Holm), not necessarily by "
            f"±{effect:g}; equivalent = |Δ| < {effect:g} shown (TOST); undecided = neither yet.")


def decided_best(best: str | None, verdicts: Mapping[str, str]) -> bool:
    """Is ``best`` (the best mean) shown to be the best: better than its reference, or the reference every other
    compared point is worse than? Only then do the tables highlight it."""
    if best is None:
        return False
    verdict = verdicts.get(best, "")
    others = [v for k, v in verdicts.items() if k != best and v not in ("", "—", "pruned", stats.NO_DATA)]
    return verdict == stats.BETTER or (verdict == stats.REFERENCE and bool(others)
                                       and all(v == stats.WORSE for v in others))


def best_line(best: str | None, verdicts: Mapping[str, str], *, label: str | None = None,
              markdown: bool = False, cheaper: str | None = None) -> str | None:
    """The sentence about the design point with the best mean, worded as what is known about it.

    ``verdicts``: every design point's verdict word (``reference`` for a reference). Only a point *better* than its
    reference, or a reference every other point is *worse* than, is called the best; otherwise it is the best
    mean only and the line says it is not shown better than the others. ``markdown`` bolds a decided best.
    ``cheaper``: :func:`.cheaper.cheaper_line`, the cheaper points the best is not decided better than, appended."""
    if best is None:
        return None
    line = _best_only(best, verdicts, label=label, markdown=markdown)
    return f"{line} {cheaper}" if cheaper else line


def _best_only(best: str, verdicts: Mapping[str, str], *, label: str | None, markdown: bool) -> str:
    name = label or best
    verdict = verdicts.get(best, "")
    if decided_best(best, verdicts):
        shown = f"**{name}**" if markdown else name
        why = "better than its reference" if verdict == stats.BETTER else "the reference; every other point is worse"
        return f"Best design point by mean: {shown} ({why})."
    what = f"{verdict} vs its reference" if verdict and verdict != stats.REFERENCE else "the reference"
    return (f"Best mean: {name} ({what}) — not shown better than the other design points; by mean only."
            if verdicts else f"Best mean: {name} (no verdicts: by mean only).")
