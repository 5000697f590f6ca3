"""``python -m dashboards STUDY`` (a study YAML or a study name) or ``python -m dashboards --all``.

Reads the Optuna storage and MLflow read-only, writes the report (``report.html``, ``table.csv``, ``table.md``,
PNGs) to ``--out`` (default ``<runs>/reports/<study>/``); with ``--log`` it also attaches it to the study's parent
MLflow run under ``report/`` (by default nothing is written to the stores). ``--all`` reports every study of the
storage and writes ``index.html`` and ``index.md`` next to them, with the paper's tables beside ours. Exit codes:
0 done, 2 bad input or unreachable store (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .guard import interrupt_exits

with interrupt_exits("interrupted while starting (nothing was written); rerun the same command"):
    import optuna
    from rich.console import Console

    from . import browse, columns
    from .data import ReportError
    from .html import render_index
    from .interaction import caption as interaction_caption
    from .interaction import terminal_lines
    from .lab import compare, labels, load, publish, records, spec, stores
    from .paper import comparison_markdown, varied
    from .report import best_line, caption, table_cells, table_columns, table_markdown, verdict_legend
    from .stats import TESTS
    from .terminal import render_table

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description="Paper-style ablation report of a sasa-lab study: mean ± std and 95 % CI per design point, "
        "paired tests against the reference level (Holm-corrected) with a plain verdict, curves, cost plots.",
        epilog="Exit codes: 0 success, 2 unknown study / bad spec / unreachable store.",
    )
    parser.add_argument("study", nargs="?", help="a study YAML file or the name of a stored study")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output folder (default: <runs>/reports/<study>/, or <runs>/reports/ with --all)")
    parser.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: the spec's, then "
                        "sqlite:///<runs>/optuna.db)")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: the spec's, then "
                        "sqlite:///<runs>/mlflow.db)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="folder of the default stores "
                        "(default: ./runs)")
    parser.add_argument("--all", action="store_true", help="report every study in the storage and write an index")
    parser.add_argument("--test", choices=TESTS, default="ttest",
                        help="paired test across seeds: ttest (scipy ttest_rel, default) or wilcoxon (signed-rank)")
    parser.add_argument("--log", action="store_true", help="also attach the report to the study's parent MLflow "
                        "run (the default only reads the stores; a finished study logs its report itself)")
    parser.add_argument("--no-log", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (the default when the "
                        "output is not a terminal; on a terminal the table fits its width)")
    browse = parser.add_argument_group("read-only views (nothing is written to either store)")
    browse.add_argument("--list", action="store_true", help="every study: design, done/total, pruned/failed, "
                        "running, best, last update")
    browse.add_argument("--export", metavar="STUDY", help="one row per trial joined with its MLflow run, as "
                        "<out>/STUDY-trials.csv and .parquet (--out default: the current folder)")
    browse.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two studies' ablation tables side by side")
    return parser


def _stores(args: argparse.Namespace, study_spec: spec.StudySpec | None) -> stores.Stores:
    return stores.resolve_stores(
        cli_storage=args.storage, cli_tracking=args.tracking_uri,
        spec_storage=study_spec.storage if study_spec else None,
        spec_tracking=study_spec.tracking if study_spec else None, root=args.runs_dir,
    )


def _one(args: argparse.Namespace) -> int:
    """One study's report, always from the spec the study ran with (stored on it): a YAML file only names the
    study and its stores; where it differs from the stored spec in anything that changes results, say so."""
    target = str(args.study)
    file_spec = None
    try:
        kind = spec.study_target(target)  # the shared name rule, before any filesystem access
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    if kind == "file":
        try:
            study_spec = spec.load_spec(target)
        except spec.SpecError as exc:
            raise ReportError(f"{exc.source or target}: " + "; ".join(exc.problems)) from None
        name, file_spec, where = study_spec.name, study_spec.resolved_dict(), _stores(args, study_spec)
    else:
        name, where = target, _stores(args, None)
    study = load.load_study(load.open_optuna(where.storage_url), name, where.storage_url)
    stored = load.stored_spec(study)
    tracking = where.tracking_uri
    if file_spec is None and args.tracking_uri is None:  # a study name: the stored spec may name its tracking
        tracking = stored.get("tracking") or tracking
    notes = []
    changed = compare.result_changes(stored, file_spec) if file_spec is not None else []
    if changed:
        shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
        notes.append(f"{target} differs from the spec study '{name}' ran with ({shown}): the report uses the "
                     "stored spec, the one its trials ran")
    out = args.out or where.root / "reports" / name
    problem = stores.folder_problem(out, "--out")
    if problem:
        raise ReportError(problem)
    outcome = publish.report_study(name, where.storage_url, tracking, out, test=args.test, log=args.log,
                                   notes=notes)
    if args.markdown or not sys.stdout.isatty():
        _print(outcome)
    else:
        print_terminal(outcome, Console(highlight=False))
    return 0


def _print(outcome: publish.Outcome) -> None:
    print(table_markdown(outcome.report))
    for note in outcome.report.notes:
        print(f"note: {note}")
    print(f"report: {outcome.html}")
    if outcome.parent_run_id:
        print(f"logged to MLflow run {outcome.parent_run_id} (artifacts under report/, metrics report/...)")


def print_terminal(outcome: publish.Outcome, console: Console) -> None:
    """The report on a terminal: the table in the widest layout that fits (:mod:`.terminal`, the end-of-study
    summary's), design points by their short labels, then the legend, notes and caption wrapped to the width."""
    report = outcome.report
    info = report.info
    keys = [r.point.key for r in report.rows]
    short = labels.short_labels(keys)
    shown = table_columns(columns.MARKDOWN)
    cells = [[short.get(key, key), *row[1:]] for key, row in zip(keys, table_cells(report), strict=True)]
    render_table(console, title=f"{info.name}: {info.metric} ({info.direction}) by design point", shown=shown,
                 metric=info.metric, cells=cells, styles=[None] * len(cells), split=sum(c.front for c in shown),
                 second_title="statistics and cost")
    lines = [f"design points: {abbreviations}"] if (abbreviations := labels.legend(keys)) else []
    lines += [verdict_legend(report), best_line(report) or ""]
    if report.two_way is not None:  # the two-way table and the contrasts, within the console's width
        lines += [*terminal_lines(report.two_way, info.metric, console.width),
                  interaction_caption(report.two_way, info.metric)]
    lines += [*(f"note: {n}" for n in report.notes), caption(report), f"report: {outcome.html}"]
    if outcome.parent_run_id:
        lines.append(f"logged to MLflow run {outcome.parent_run_id} (artifacts under report/, metrics report/...)")
    for line in lines:
        if line:
            console.print(line, markup=False, overflow="fold")


INDEX_HEADER = ("study", "design", "varied", "trials (ok/pruned/failed)", "best", "reference", "verdicts",
                "paper", "ranking vs paper")


def _index_row(name: str, outcome: publish.Outcome) -> list[str]:
    report = outcome.report
    counts = report.counts
    verdicts: dict[str, int] = {}
    for row in report.rows:
        verdicts[row.verdict] = verdicts.get(row.verdict, 0) + 1
    comparison = report.comparison
    reference = next((r.point.key for r in report.rows if r.verdict == "reference"), "—")
    return [name, report.info.design, ", ".join(varied(report.info.parameters)) or "—",
            f"{counts['complete']}/{counts['pruned']}/{counts['failed']}", report.best or "—", reference,
            ", ".join(f"{n} {v}" for v, n in verdicts.items()) or "—",
            comparison.table.table if comparison else "—", comparison.ranking if comparison else "—"]


def _all(args: argparse.Namespace) -> int:
    where = _stores(args, None)
    storage = load.open_optuna(where.storage_url)
    load.open_mlflow(where.tracking_uri)
    out: Path = args.out or where.root / "reports"
    if stores.folder_problem(out, "--out"):
        raise ReportError(stores.folder_problem(out, "--out"))
    rows, links, comparisons, archived = [], [], [], []
    summaries = {s.study_name: s for s in optuna.get_all_study_summaries(storage, False)}
    for name in load.study_names(storage):
        if records.ARCHIVE_MARK in name:
            started = summaries[name].datetime_start
            archived.append([name, str(summaries[name].n_trials), started.strftime("%Y-%m-%d %H:%M") if started
                             else "—"])
            continue
        try:
            outcome = publish.report_study(name, where.storage_url, where.tracking_uri, out / name, test=args.test,
                                   log=args.log)
        except ReportError as exc:
            rows.append([name, *(["—"] * (len(INDEX_HEADER) - 2)), str(exc)])
            links.append(None)
            continue
        rows.append(_index_row(name, outcome))
        links.append(f"{name}/report.html")
        if outcome.report.comparison is not None:
            comparisons.append((name, outcome.report.comparison))
    out.mkdir(parents=True, exist_ok=True)
    title = f"sasa-lab studies in {stores.redact(where.storage_url)}"
    (out / "index.html").write_text(render_index(title, INDEX_HEADER, rows, links, archived, comparisons),
                                    encoding="utf-8")
    (out / "index.md").write_text(_index_markdown(title, rows, links, archived, comparisons), encoding="utf-8")
    print(f"index: {out / 'index.html'} ({len(rows)} studies, {len(archived)} archived)")
    return 0


def _index_markdown(title: str, rows: list[list[str]], links: list[str | None], archived: list[list[str]],
                    comparisons: list[tuple[str, Any]]) -> str:
    lines = [f"# {title}", "", "| " + " | ".join(INDEX_HEADER) + " |", "|" + "|".join("---" for _ in INDEX_HEADER)
             + "|"]
    for row, link in zip(rows, links, strict=True):
        first = f"[{row[0]}]({link})" if link else row[0]
        lines.append("| " + " | ".join([first, *row[1:]]) + " |")
    for name, comparison in comparisons:
        lines += ["", f"## {name} ↔ paper {comparison.table.table}", "", comparison_markdown(comparison)]
    if archived:
        lines += ["", "## Archived studies", "", "| study | trials | created |", "|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in archived]
    return "\n".join(lines) + "\n"


def _browse(args: argparse.Namespace) -> int:
    """``--list``, ``--export STUDY``, ``--compare A B``: read the stores, never write to them."""
    where = _stores(args, None)
    if args.export:  # the output folder is checked before any store is opened
        problem = stores.folder_problem(args.out or Path("."), "--out")
        if problem:
            raise ReportError(problem)
    storage = load.open_optuna(where.storage_url)
    if args.list:
        lines = browse.list_studies(storage)
        print(f"studies in {stores.redact(where.storage_url)}:")
        print(browse.markdown_table(browse.LIST_HEADER, [line.cells() for line in lines]) if lines else "(none)")
    elif args.export:
        study = load.load_study(storage, args.export, where.storage_url)
        csv_path, parquet_path = browse.export_study(study, load.open_mlflow(where.tracking_uri), args.out or Path("."))
        print(f"exported {len(study.trials)} trials: {csv_path} and {parquet_path}")
    else:
        print(browse.compare_markdown(storage, where.storage_url, *args.compare))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command; Ctrl-C at any moment ends it with one line and exit code 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted: the stores were only read; rerun the same command", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    chosen = [flag for flag, on in (("--list", args.list), ("--export", args.export), ("--compare", args.compare),
                                    ("--all", args.all), ("STUDY", args.study)) if on]
    if chosen and chosen[0] in ("--list", "--export", "--compare"):
        if len(chosen) > 1:
            print(f"error: {chosen[0]} goes alone; also given: {', '.join(chosen[1:])}", file=sys.stderr)
            return EXIT_USAGE
        try:
            return _browse(args)
        except ReportError as exc:
            print(f"error: {stores.redact(' '.join(str(exc).split()))}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:
            return _write_error(args, exc)
    if args.all == (args.study is not None):
        print("error: give a STUDY (YAML file or study name) or --all, not both", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _all(args) if args.all else _one(args)
    except ReportError as exc:
        message = " ".join(str(exc).split())
        print(f"error: {stores.redact(message)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        return _write_error(args, exc)


def _write_error(args: argparse.Namespace, exc: OSError) -> int:
    """A file the report or export could not write (a read-only or impossible --out): one line, exit 2."""
    where = f" ({exc.filename})" if exc.filename else ""
    print(f"error: --out {args.out or 'default'}: cannot write the files there: {exc.strerror or exc}{where}; give "
          "a writable folder", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
