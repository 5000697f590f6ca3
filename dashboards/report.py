"""One study's report: the ablation table, its figures and its text forms (CSV, Markdown), built from the study's
data (:class:`~.data.StudyData`, read by the platform); :mod:`.publish` writes the files and logs them to a run.

The table answers the paper's ablation question (Ramachandran et al., 2019, Tables 3-7) for a study's own data:
per design point, the objective over seeds (mean ± std, 95 % t interval), the cost (params, FLOPs, throughput),
and whether it differs from the reference level — paired by seed, Holm-corrected, with a plain verdict
(:mod:`.stats`).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field

import optuna

from . import cheaper, columns, decisions, finalists, interaction, legend, plots, power, resolution, stats
from .data import Curve, PointData, SearchInfo, StudyData, StudyInfo, best_key, numeric_levels
from .paper import Comparison, compare, paper_table, varied
from .rows import PRUNED, TableRow
from .text import yaml_flow


@dataclass
class Report:
    info: StudyInfo
    rows: list[TableRow]
    test: str
    reference_note: str
    counts: dict[str, int]
    figures: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # file name -> (caption, PNG)
    search: SearchInfo | None = None
    comparison: Comparison | None = None
    power: power.DesignPower | None = None  # what the seeds budget can decide (with search.effect)
    notes: list[str] = field(default_factory=list)
    two_way: interaction.TwoWay | None = None  # a grid over exactly two parameters: main effects, interaction
    finalists: finalists.FinalistsTable | None = None  # a sampled design's confirmation round
    generated: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))

    @property
    def best(self) -> str | None:
        return best_key([r.point for r in self.rows], self.info.direction)


# --- the table ---------------------------------------------------------------------------------------------


def _reference_keys(points: list[PointData], info: StudyInfo) -> tuple[dict[str, str | None], str]:
    return decisions.reference_keys(points, info)


def build_table(points: list[PointData], info: StudyInfo, test: str = "ttest") -> tuple[list[TableRow], str]:
    """Rows of the ablation table with paired tests against the reference and Holm-corrected verdicts."""
    refs, note = _reference_keys(points, info)
    by_key = {p.key: p for p in points}
    values, res = resolution.snap({p.key: p.values for p in points}, decisions.examples_of(info))
    paired: dict[str, stats.PairedResult] = {}
    for point in points:
        ref = refs.get(point.key)
        if ref is not None and ref != point.key and point.values and not decisions.is_pruned(point) \
                and not decisions.is_pruned(by_key[ref]):
            paired[point.key] = stats.paired_test(values[point.key], values[ref], test, res.step)
    keys = list(paired)
    adjusted = dict(zip(keys, stats.holm([paired[k].p_value for k in keys]), strict=True))
    decided = decisions.study_verdicts(points, info, refs)
    effect = decisions.seed_plan(info.spec.get("search", {})).effect
    bounds = stats.metric_bounds(info.metric)
    rows = []
    for point in points:
        ref = refs.get(point.key)
        result = paired.get(point.key)
        decision = decided.get(point.key)
        ci: tuple[float | None, float | None] = (None, None)
        if decision is not None:
            ci = (decision.ci_low, decision.ci_high)
        elif result is not None and ref is not None:
            ci = decisions.delta_interval(point.values, by_key[ref].values, info.metric)
        if decisions.is_pruned(point):
            verdict = PRUNED
        elif not point.values:
            verdict = stats.NO_DATA
        elif ref == point.key:
            verdict = stats.REFERENCE
        elif result is None:
            verdict = "—"  # no reference point in this slice
        elif effect is not None:
            verdict = decision.verdict if decision is not None else "—"  # its reference was pruned
        else:
            verdict = stats.verdict(result, adjusted[point.key], info.direction)
        rows.append(TableRow(point, stats.describe(list(point.values.values()), bounds=bounds), ref, result,
                             adjusted.get(point.key), verdict, decision, *ci))
    return rows, note


def _resolution_notes(report: Report) -> None:
    """The resolution ties were judged at, identical comparisons, and what the seeds budget can decide."""
    info, effect = report.info, decisions.seed_plan(report.info.spec.get("search", {})).effect
    _, res = resolution.snap({r.point.key: r.point.values for r in report.rows}, decisions.examples_of(info))
    if res.examples:
        report.notes.append(f"{info.metric} is a fraction of {res.examples} examples: values are read as k/"
                            f"{res.examples} and differences smaller than one example are ties")
        if effect is not None and effect < res.step:
            report.notes.append(f"search.effect {effect:g} is below one example (1/{res.examples} = "
                                f"{res.step:.4g}): a true difference of ±{effect:g} can give identical "
                                "results every time at this resolution, so identical results cannot show "
                                "equivalence")
    identical = [r.point.key for r in report.rows if r.decision is not None and r.decision.test == "identical"]
    if identical:
        report.notes.append(f"identical on every seed: {', '.join(identical)} — the same {info.metric} as the "
                            "reference seed by seed (the design parameter may not reach training)")
    if (reason := decisions.no_verdicts_reason(info.spec.get("search", {}))) is not None:
        report.notes.append(reason)
    report.notes.extend(decisions.lost_seed_notes({r.point.key: r.decision for r in report.rows if r.decision}))
    if effect is not None:
        report.power = decisions.study_power([r.point for r in report.rows], info,
                                             {r.point.key: r.reference for r in report.rows})
        report.notes.extend(report.power.lines() if report.power is not None else [])


# --- building ----------------------------------------------------------------------------------------------


def _level_points(report: Report) -> list[plots.LevelPoint]:
    info, rows = report.info, report.rows
    varied = [n for n in info.parameters if len({r.point.level.get(n) for r in rows}) > 1]
    single = varied[0] if len(varied) == 1 else None
    xs = numeric_levels([r.point for r in rows], single) if single else None
    use_test = any(r.point.test_acc is not None for r in rows)
    return [
        plots.LevelPoint(
            label=r.point.level[single] if single else r.point.key,
            x=xs[i] if xs else None,
            mean=r.summary.mean, ci_low=r.summary.ci_low, ci_high=r.summary.ci_high,
            seed_values=tuple(r.point.values.values()), is_reference=r.verdict == stats.REFERENCE,
            accuracy=r.point.test_acc if use_test else r.summary.mean,
            params=r.point.params, flops=r.point.flops,
        )
        for i, r in enumerate(rows)
    ]


def _figures(report: Report, curves: list[Curve] | None) -> None:
    info = report.info
    levels = _level_points(report)
    varied = [n for n in info.parameters if len({r.point.level.get(n) for r in report.rows}) > 1]
    factor = varied[0] if len(varied) == 1 else "design point"
    figures = report.figures
    if any(p.mean is not None for p in levels):
        figures["objective.png"] = (f"{info.metric} per {factor}: mean with 95 % CI over seeds",
                                    plots.objective_plot(levels, metric=info.metric, direction=info.direction,
                                                         factor=factor))
    if curves is not None:
        if curves:
            label = {r.point.key: lv.label for r, lv in zip(report.rows, levels, strict=True)}
            figures["curves.png"] = (f"validation curves ({info.metric} per epoch, from MLflow)", plots.curves_plot(
                [(label[c.key], c.epochs, c.mean, c.low, c.high) for c in curves], metric=info.metric, factor=factor))
        else:
            report.notes.append(f"no per-epoch {info.metric} history found in MLflow: validation curves skipped")
    use_test = any(r.point.test_acc is not None for r in report.rows)
    accuracy = (info.test_metric or info.metric) if use_test else info.metric
    for cost in ("flops", "params"):
        if any(getattr(p, cost) is not None and p.accuracy is not None for p in levels):
            unit = "FLOPs (G)" if cost == "flops" else "params (M)"
            figures[f"acc_vs_{cost}.png"] = (f"{accuracy} vs {unit}, labelled by level",
                                             plots.cost_plot(levels, cost=cost, accuracy_label=accuracy))
    if report.search is not None:
        _search_figures(report, report.search)


def _search_figures(report: Report, search: SearchInfo) -> None:
    info, figures = report.info, report.figures
    if search.importances:
        figures["importances.png"] = ("parameter importances", plots.importance_plot(search.importances))
    if search.values:
        figures["history.png"] = ("optimisation history", plots.history_plot(
            search.numbers, search.values, metric=info.metric, direction=info.direction))
        axes = []
        for name, dist in search.distributions.items():
            raw = [p.get(name) for p in search.params]
            if any(v is None for v in raw):  # a conditional parameter: no single axis for it
                continue
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                choices = list(dist.choices)
                denominator = max(1, len(choices) - 1)
                positions = [choices.index(v) / denominator if v in choices else 0.5 for v in raw]
                axes.append((name, positions, [str(c) for c in choices]))
            else:
                numbers = [float(v) for v in raw]
                ends = [f"{min(numbers):.3g}", f"{max(numbers):.3g}"] if min(numbers) < max(numbers) else None
                axes.append((name, plots.normalise(numbers, log=getattr(dist, "log", False)), ends))
        if axes:
            figures["parallel.png"] = ("parallel coordinates", plots.parallel_plot(
                axes, search.values, metric=info.metric))
    if info.second and search.seconds:
        front = set(search.pareto)
        figures["pareto.png"] = (f"Pareto front: {info.metric} vs {info.second}", plots.pareto_plot(
            search.values, search.seconds, [n in front for n in search.numbers], metric=info.metric,
            second=info.second))


def build_report(study: StudyData, *, test: str = "ttest") -> Report:
    """Everything the report shows, computed from the study's data (curves are drawn when it has them)."""
    if test not in stats.TESTS:
        raise ValueError(f"test={test!r} is not valid; choose one of {', '.join(stats.TESTS)}")
    info = study.info
    rows, note = build_table(study.points, info, test)
    report = Report(info=info, rows=rows, test=test, reference_note=note, counts=dict(study.counts),
                    search=study.search)
    table = paper_table(info.parameters, info.model_name, info.targets)
    if table is not None and rows:
        factor = varied(info.parameters)[0]
        means = {r.point.level.get(factor, ""): r.summary.mean for r in rows}
        verdicts = {r.point.level.get(factor, ""): r.verdict for r in rows}
        ref_row = next((r for r in rows if r.verdict == stats.REFERENCE), None)
        reference = ref_row.point.level.get(factor) if ref_row else None
        report.comparison = compare(table, means, verdicts, reference, info.direction)
    pruned = [f"{r.point.key} (epoch {r.point.pruned_at})" for r in rows if r.verdict == PRUNED]
    if pruned:
        report.notes.append(f"pruned design points, not compared (a point is pruned as a whole): {', '.join(pruned)}")
    if not study.points:
        report.notes.append("no trial has a design point yet: nothing to tabulate")
    by_key = {r.point.key: r for r in rows}
    empty = sorted({r.reference for r in rows if r.reference and not by_key[r.reference].point.values})
    if empty:
        report.notes.append(f"the reference {', '.join(empty)} has no complete trial yet: nothing is compared "
                            "with it")
    _resolution_notes(report)
    report.two_way, why = interaction.analyse(study.points, info)
    report.notes.extend([why] if why else [])
    _figures(report, study.curves)
    if report.two_way is not None:
        report.figures["interaction.png"] = (
            f"interaction plot: {info.metric} per {report.two_way.factors[0]}, one line per "
            f"{report.two_way.factors[1]}", interaction.interaction_plot(report.two_way, metric=info.metric,
                                                                         direction=info.direction))
    return report


# --- files ---------------------------------------------------------------------------------------------------


def _context(report: Report, output: str) -> columns.Context:
    return columns.Context(output, report.info.metric, report.best, decimals=columns.report_decimals(report.rows))


def table_csv(report: Report) -> str:
    """The table with full-precision numbers, one row per design point plus one column per parameter."""
    buffer = io.StringIO()
    names = list(report.info.parameters)
    writer = csv.writer(buffer, lineterminator="\n")
    context = _context(report, columns.CSV)
    header = [c.name(report.info.metric) for c in columns.valued(columns.CSV)]
    writer.writerow([*header[:1], *names, *header[1:]])
    for r in report.rows:
        cells = list(columns.values(r, context).values())
        writer.writerow([cells[0], *(r.point.level.get(n, "") for n in names),
                         *("" if c is None else c for c in cells[1:])])
    return buffer.getvalue()


def table_columns(output: str = columns.MARKDOWN) -> list[columns.Column]:
    """The columns of the report's text tables (table.md, report.html)."""
    return columns.shown(output)


def table_header(report: Report, output: str = columns.MARKDOWN) -> list[str]:
    return [c.title(report.info.metric) for c in table_columns(output)]


def table_cells(report: Report, output: str = columns.MARKDOWN) -> list[list[str]]:
    """The formatted table (shared by Markdown and HTML)."""
    return columns.cells(report.rows, _context(report, output), table_columns(output))


def caption(report: Report) -> str:
    info = report.info
    tests = {"ttest": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}
    compared = sum(r.paired is not None and r.paired.p_value is not None for r in report.rows)
    seeds = yaml_flow(info.seeds) if isinstance(info.seeds, list) else f"adaptive {yaml_flow(info.seeds)}"
    text = (f"{info.metric} ({'higher' if info.direction == 'maximize' else 'lower'} is better): mean ± sample std "
            f"over seeds {seeds}; 95 % CI from the t-distribution, kept inside the metric's range. Δ = level − "
            f"reference, paired by seed, with its paired 95 % CI. Reference: {report.reference_note}. ")
    effect = decisions.seed_plan(info.spec.get("search", {})).effect
    if effect is None:
        return text + (f"p: {tests[report.test]}, Holm-corrected over {compared} comparison"
                       f"{'s' if compared != 1 else ''}; verdict at α = {stats.ALPHA}.")
    return text + (f"Verdict with effect ±{effect:g}: better/worse by the paired t-test (test ttest, or the exact sign "
                   f"test when every difference is equal at the metric's resolution) at its group-sequential, Holm "
                   f"threshold; equivalent by TOST (two one-sided paired tests) within ±{effect:g}, or identical "
                   f"(the same value on every seed); else undecided. p vs the threshold of the test that decided "
                   f"(α = {stats.ALPHA}). Seeds needed: paired seeds for a verdict at 80 % power from the spread "
                   "seen so far. Pruned design points are not compared.")


def verdict_legend(report: Report) -> str:
    """The legend line of the report's verdicts (:func:`.legend.verdict_legend` for this study)."""
    info = report.info
    return legend.verdict_legend(effect=decisions.seed_plan(info.spec.get("search", {})).effect,
                                 metric=info.metric, test=report.test)


def best_line(report: Report, *, markdown: bool = False) -> str | None:
    """What the design point with the best mean is (:func:`.legend.best_line`), and the cheaper design points it
    is not decided better than (:func:`.cheaper.cheaper_line`)."""
    found = cheaper.check([r.point for r in report.rows], report.info)
    return legend.best_line(report.best, {r.point.key: r.verdict for r in report.rows}, markdown=markdown,
                            cheaper=cheaper.cheaper_line(found))


def table_markdown(report: Report) -> str:
    header = table_header(report)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in
                                                                range(len(header))) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table_cells(report)]
    best = best_line(report, markdown=True)
    two_way = [interaction.markdown(report.two_way, report.info.metric)] if report.two_way is not None else []
    return "\n".join([*lines, "", verdict_legend(report), *([best] if best else []), "", caption(report), "",
                      *two_way])
