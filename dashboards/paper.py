"""The paper's ablation tables as data, and how a study's results compare with them direction by direction.

Ramachandran et al., "Stand-Alone Self-Attention in Vision Models", NeurIPS 2019 (numbers from PAPER.md:
ImageNet top-1 %, FLOPs in billions with one multiply-add = 2 FLOPs, params in millions; ResNet-50 unless
stated). A study maps to a table by the spec target of the one parameter it varies (``window_size`` and
``model.kernel_size`` are the same factor), not by its name. The paper's numbers come from ImageNet at full
scale; a study's numbers come from its own data and model size, so only *directions* compare: which level is
best and worst, whether each level beats the reference in both, and how well the rankings agree (Kendall's τ).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class PaperRow:
    name: str  # the paper's row
    level: str | None  # the matching level label in a study (None: no counterpart here)
    top1: float
    flops_b: float | None = None
    params_m: float | None = None


@dataclass(frozen=True)
class PaperTable:
    table: str
    title: str
    target: str  # the spec field the study varies
    setting: str
    rows: tuple[PaperRow, ...]
    note: str = ""


TABLE_4 = PaperTable(
    "Table 4", "spatial extent k of the attention window", "model.kernel_size", "ImageNet, ResNet-50, conv stem",
    (PaperRow("3×3", "3", 76.4, 6.6, 18.0), PaperRow("5×5", "5", 77.2, 6.7, 18.0),
     PaperRow("7×7", "7", 77.4, 7.0, 18.0), PaperRow("9×9", "9", 77.7, 7.3, 18.0),
     PaperRow("11×11", "11", 77.6, 7.7, 18.0)),
    "small k hurts; gains plateau near k = 11",
)
TABLE_5 = PaperTable(
    "Table 5", "positional encoding", "model.pos_enc", "ImageNet, ResNet-50 (≈ 2.7 points above Tables 4, 6, 7)",
    (PaperRow("none", "none", 77.6), PaperRow("absolute", "absolute", 78.2),
     PaperRow("relative", "relative", 80.2)),
)
TABLE_7 = PaperTable(
    "Table 7", "attention stem", "model.stem_mixtures", "ImageNet, ResNet-50",
    (PaperRow("plain attention", "1", 76.2, 7.1), PaperRow("conv-produced values", None, 77.2, 7.4),
     PaperRow("spatially-aware values", "4", 77.6, 7.2)),
    "one value mixture (m = 1) is plain attention; the paper does not state m for spatially-aware values, "
    "reimplementations use m = 4",
)
TABLE_3 = PaperTable(
    "Table 3", "which layer groups use attention (conv stem)", "model.attention_groups",
    "ImageNet, ResNet-50 (≈ 2.7 points above Tables 4, 6, 7)",
    (PaperRow("attention everywhere", "1-2-3-4", 80.2, 7.0, 18.0),
     PaperRow("conv in group 1", "2-3-4", 80.7, 7.3, 18.1),
     PaperRow("conv in groups 1–2", "3-4", 80.7, 7.5, 18.5), PaperRow("conv in groups 1–3", "4", 80.2, 8.0, 20.8),
     PaperRow("all conv", "none", 79.5, 8.2, 25.6), PaperRow("attention in group 1 only", "1", 79.7, 7.9, 25.5),
     PaperRow("attention in groups 1–2", "1-2", 79.6, 7.8, 25.0),
     PaperRow("attention in groups 1–3", "1-2-3", 79.9, 7.2, 22.7)),
    "conv early + attention late is best",
)
_TABLE_1 = {  # model -> (conv, conv stem + attention, full attention): (FLOPs B, params M, top-1)
    "resnet26": ((4.7, 13.7, 74.5), (4.5, 10.3, 75.8), (4.7, 10.3, 74.8)),
    "resnet38": ((6.5, 19.6, 76.2), (5.7, 14.1, 77.1), (6.0, 14.1, 76.9)),
    "resnet50": ((8.2, 25.6, 76.9), (7.0, 18.0, 77.4), (7.2, 18.0, 77.6)),
}


def table_1(model_name: str) -> PaperTable:
    """Table 1's column for the study's depth (ResNet-50 when the depth is not one of the paper's)."""
    model = model_name if model_name in _TABLE_1 else "resnet50"
    names = (("baseline conv", "conv"), ("conv stem + attention", "attention"),
             ("full attention (attention stem)", "full"))
    rows = tuple(PaperRow(name, level, top1, flops, params)
                 for (name, level), (flops, params, top1) in zip(names, _TABLE_1[model], strict=True))
    depth = model.removeprefix("resnet")
    return PaperTable("Table 1", "conv, attention or full-attention backbone", "model.backbone",
                      f"ImageNet, ResNet-{depth}", rows)


TABLES = (TABLE_3, TABLE_4, TABLE_5, TABLE_7)


def varied(parameters: Mapping[str, Mapping]) -> list[str]:
    """The spec's search parameters that take more than one value."""
    return [key for key, p in parameters.items()
            if p.get("type", "categorical") != "categorical" or len(p.get("choices") or []) > 1]


def paper_table(parameters: Mapping[str, Mapping], model_name: str,
                targets: Mapping[str, str] | None = None) -> PaperTable | None:
    """The paper table for a study that varies exactly one parameter with a paper counterpart.

    ``targets``: the spec field each parameter sets (a ready name such as ``window_size`` sets
    ``model.kernel_size``; :class:`~.data.StudyInfo` carries them); a parameter without one is its own field.
    """
    factors = varied(parameters)
    if len(factors) != 1:
        return None
    target = (targets or {}).get(factors[0], factors[0])
    if target == "model.backbone":
        return table_1(model_name)
    return next((t for t in TABLES if t.target == target), None)


@dataclass(frozen=True)
class ComparisonRow:
    paper_name: str
    level: str
    paper_top1: float
    paper_delta: float  # vs the paper's value at the anchor level
    ours_mean: float | None
    ours_delta: float | None  # vs our anchor level, sign flipped for minimised metrics (positive = better)
    verdict: str
    agrees: str  # "yes", "yes (significant)", "no", "no (significant)", "—"


@dataclass(frozen=True)
class Comparison:
    table: PaperTable
    anchor: str  # the level both Δ columns are taken against
    rows: tuple[ComparisonRow, ...]
    paper_best: str | None
    paper_worst: str | None
    ours_best: str | None
    ours_worst: str | None
    kendall_tau: float | None
    ranking: str  # "agrees", "partly agrees", "disagrees", "too few levels"
    unmatched: tuple[str, ...] = ()  # paper rows with no level (or no result) in the study


def _sign(x: float, tol: float = 1e-12) -> int:
    return 0 if abs(x) <= tol else (1 if x > 0 else -1)


def compare(table: PaperTable, means: Mapping[str, float | None], verdicts: Mapping[str, str],
            reference: str | None, direction: str) -> Comparison:
    """Our level means (label → mean) and verdicts next to the paper's table, direction by direction."""
    goodness = 1.0 if direction == "maximize" else -1.0
    matched = [r for r in table.rows if r.level is not None and means.get(r.level) is not None]
    levels = [r.level for r in matched if r.level is not None]
    anchor = reference if reference in levels else (levels[0] if levels else "")
    paper_at = {r.level: r.top1 for r in matched}
    rows = []
    for row in matched:
        assert row.level is not None
        ours = means[row.level]
        paper_delta = row.top1 - paper_at[anchor]
        ours_delta = None if ours is None else goodness * (ours - float(means[anchor] or 0.0))
        verdict = verdicts.get(row.level, "")
        if row.level == anchor or ours_delta is None:
            agrees = "—"
        else:
            same = _sign(paper_delta) == _sign(ours_delta)
            significant = verdict in ("better", "worse")
            agrees = ("yes" if same else "no") + (" (significant)" if significant else "")
        rows.append(ComparisonRow(row.name, row.level, row.top1, paper_delta, ours, ours_delta, verdict, agrees))
    tau, ranking = None, "too few levels"
    if len(matched) >= 2:
        ours_scores = [goodness * float(means[level] or 0.0) for level in levels]
        result = stats.kendalltau([r.top1 for r in matched], ours_scores)
        tau = None if result.statistic != result.statistic else float(result.statistic)
        ranking = ("agrees" if tau is not None and tau > 0.999 else
                   "partly agrees" if tau is not None and tau > 0 else "disagrees")

    def pick(scores: dict[str, float], best: bool) -> str | None:
        return (max if best else min)(scores, key=scores.__getitem__) if scores else None

    paper_scores = {level: r.top1 for level, r in zip(levels, matched, strict=True)}
    our_scores = {level: goodness * float(means[level] or 0.0) for level in levels}
    return Comparison(table, anchor, tuple(rows), pick(paper_scores, True), pick(paper_scores, False),
                      pick(our_scores, True), pick(our_scores, False), tau, ranking,
                      tuple(r.name for r in table.rows if r not in matched))


COMPARISON_HEADER = ("paper row", "level", "paper top-1 %", "paper Δ", "ours (mean)",
                     "ours Δ of means (+ = better)", "our verdict", "same direction?")


def comparison_cells(comparison: Comparison) -> list[list[str]]:
    def signed(value: float | None, fmt: str) -> str:
        return "—" if value is None else format(value, fmt)

    return [[r.paper_name, r.level, f"{r.paper_top1:.1f}", signed(r.paper_delta, "+.1f"), signed(r.ours_mean, ".4f"),
             signed(r.ours_delta, "+.4f"), r.verdict, r.agrees] for r in comparison.rows]


def comparison_summary(comparison: Comparison) -> str:
    """One paragraph: best/worst level in the paper vs ours, ranking agreement, and what the numbers are."""
    table = comparison.table
    tau = "—" if comparison.kendall_tau is None else f"{comparison.kendall_tau:+.2f}"
    return (f"{table.table} ({table.title}; {table.setting}). Best level: paper {comparison.paper_best}, ours "
            f"{comparison.ours_best}. Worst level: paper {comparison.paper_worst}, ours {comparison.ours_worst}. "
            f"Ranking {comparison.ranking} (Kendall τ = {tau} over {len(comparison.rows)} matched levels). "
            f"Δ columns are against level {comparison.anchor}; ours Δ is the difference of the two levels' means over "
            "all their seeds (sign flipped when lower is better), while the ablation table's Δ pairs seed with seed "
            "over the seeds both levels ran against the study's reference, so the two differ when the levels ran "
            "different seeds. The paper's numbers are ImageNet top-1 at full "
            f"scale; ours are this study's own data and model size, so compare directions, not values."
            + (f" Paper rows without a result here: {', '.join(comparison.unmatched)}." if comparison.unmatched else "")
            + (f" Note: {table.note}." if table.note else ""))


def comparison_markdown(comparison: Comparison) -> str:
    lines = ["| " + " | ".join(COMPARISON_HEADER) + " |", "|" + "|".join("---" for _ in COMPARISON_HEADER) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in comparison_cells(comparison)]
    return "\n".join([*lines, "", comparison_summary(comparison), ""])
