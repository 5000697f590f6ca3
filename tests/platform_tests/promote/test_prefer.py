"""``python -m platform.promote --prefer {cheapest,mean}`` and ``--dry-run`` (issue 24, item 3): which design point
each rule chooses on a real store (Optuna SQLite + MLflow, known values: no training), the one-line notice of a
search without a confirmation round, ``--prefer`` validation, and the confirmed-means extension point.

The registry side (the rule recorded in the version's tags and description) is in ``test_promote.py``, on its
trained study."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console

from platform.promote.__main__ import main
from platform.promote.champion import select
from platform.promote.preference import RULE_BEST_TRIAL, RULE_CONFIRMED, PointChoice
from platform.promote.promotion import preview, promote
from platform.records import ATTR_POINT, ATTR_SEED, STUDY_SPEC
from platform.study.summary import get_cheaper, get_summary_info, get_verdicts, render_summary
from tests.dashboards_tests.stored import add_study, make_stores, resolved_spec

SEEDS = range(6)
BASE = {s: 0.90 + 0.004 * ((s * 3) % 5) for s in SEEDS}
GRID = {"design": "grid", "parameters": {"window_size": [5, 7, 9]}, "seeds": list(SEEDS),
        "reference": {"window_size": 7}, "effect": 0.02}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store, two studies: ``cost`` (k=9 best by mean; k=7 equivalent to it at 40 % fewer FLOPs; k=5 worse)
    and ``sampled`` (a TPE search, one seed per configuration)."""
    st = make_stores(tmp_path_factory.mktemp("prefer") / "runs")
    values = {(5,): {s: BASE[s] - 0.05 + 0.002 * (s % 3) for s in SEEDS},
              (7,): {s: BASE[s] - 0.0005 + 0.004 * (s % 3 - 1) for s in SEEDS},
              (9,): dict(BASE)}
    add_study(st, resolved_spec("cost", search=GRID), values,
              cost={(k,): (1000 * k, 100 * k * k) for k in (5, 7, 9)})
    search = {"design": "tpe", "parameters": {"window_size": [3, 5, 7]}, "seeds": [0], "n_trials": 3}
    searched = {(3,): {0: 0.81}, (5,): {0: 0.86}, (7,): {0: 0.84}}
    add_study(st, resolved_spec("sampled", search={**search, "confirm": False}), searched)
    add_study(st, resolved_spec("unconfirmed", search=search), searched)  # its round (on by default) not run yet
    return st.root


def _cli(capsys: pytest.CaptureFixture, runs: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--runs-dir", str(runs)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dry_run_shows_which_point_each_rule_promotes(runs: Path, capsys) -> None:
    code, out, err = _cli(capsys, runs, "cost", "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert "dry run: nothing is registered" in lines[0]
    cheapest = next(line for line in lines if line.startswith("--prefer cheapest (default): "))
    mean = next(line for line in lines if line.startswith("--prefer mean: "))
    assert " · window_size=7 · " in cheapest and cheapest.endswith("= cheapest")
    assert " · window_size=9 · " in mean and mean.endswith("= mean")
    rules = [line.strip() for line in lines if line.startswith("    rule: ")]
    assert rules[0].startswith("rule: seeded ablation, --prefer cheapest: window_size=7 is the cheapest design "
                               "point (FLOPs, then params) shown equivalent or better against the best by mean "
                               "window_size=9 at ±0.02")
    assert "window_size=5 worse, window_size=7 equivalent" in rules[0]
    assert rules[1].startswith("rule: seeded ablation, --prefer mean: best design point by mean")
    assert not any("notice" in line for line in lines)  # a grid is not a selected single trial
    assert preview("cost", runs_dir=runs) == tuple(lines)  # the Python API prints nothing, returns the lines


def test_the_champion_under_each_rule_is_its_points_best_seed(runs: Path) -> None:
    study = optuna.load_study(study_name="cost", storage=f"sqlite:///{runs / 'optuna.db'}")
    trials = study.get_trials(deepcopy=False)
    choice = PointChoice("window_size=9", "window_size=7", "k=7 equivalent")
    for prefer, point in (("cheapest", "window_size=7"), ("mean", "window_size=9")):
        champion = select(trials, design="grid", seeds=list(SEEDS), direction="maximize", prefer=prefer,
                          choice=choice)
        members = [t for t in trials if t.user_attrs[ATTR_POINT] == point]
        best = max(members, key=lambda t: (t.value, -t.number))
        assert (champion.trial.number, champion.prefer, champion.point_seeds) == (best.number, prefer, 6)
    # Without the comparison (or when the cheapest rule keeps the best), cheapest is the best by mean.
    kept = select(trials, design="grid", seeds=list(SEEDS), direction="maximize", prefer="cheapest")
    assert kept.trial.user_attrs[ATTR_POINT] == "window_size=9" and "not compared" in kept.rule


def test_a_search_without_confirmation_says_so_in_one_line(runs: Path, capsys) -> None:
    code, out, err = _cli(capsys, runs, "sampled", "--dry-run")
    assert code == 0, err
    notices = [line.strip() for line in out.splitlines() if "notice:" in line]
    assert len(notices) == 1  # --prefer does not change a search's champion: one choice, one notice
    assert notices[0].startswith("notice: a tpe search without a confirmation round — the champion is its best "
                                 "single trial of 3 complete") and "biased upward" in notices[0]
    assert out.count("· window_size=5 · ") == 1 and f"= {RULE_BEST_TRIAL}" in out
    assert "any --prefer (it applies to seeded grids only): trial #1 · window_size=5 · seed 0" in out
    assert "rule: best COMPLETE trial by the objective (maximize); ties: earlier trial — selected, not confirmed" in out
    code, out, err = _cli(capsys, runs, "unconfirmed", "--dry-run")
    assert code == 0, err
    notices = [line.strip() for line in out.splitlines() if "notice:" in line]
    assert len(notices) == 1 and notices[0].startswith(
        "notice: a tpe search whose confirmation round has no confirmed value yet (rerun the study to finish it)")


def test_prefer_is_validated(runs: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", "--prefer", "fastest", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--prefer" in err and "'cheapest'" in err and "'mean'" in err
    with pytest.raises(ValueError, match="--prefer 'fastest' is not valid; choose one of cheapest, mean"):
        promote("cost", prefer="fastest", runs_dir=runs)
    with pytest.raises(TypeError, match="prefer"):
        promote("cost", prefer=1, runs_dir=runs)  # type: ignore[arg-type]


def test_confirmed_means_choose_the_finalist_extension_point() -> None:
    study = optuna.create_study(direction="maximize")
    dist = {"p": CategoricalDistribution(["a", "b"])}
    for point, seed, value in (("a", 0, 0.95), ("b", 0, 0.90), ("b", 1, 0.91)):
        study.add_trial(create_trial(state=TrialState.COMPLETE, values=[value], params={"p": point},
                                     distributions=dist, user_attrs={ATTR_POINT: point, ATTR_SEED: seed}))
    # The search's best single trial is a (0.95); a confirmation round that found b better promotes b's best seed.
    champion = select(study.trials, design="tpe", seeds=[0], direction="maximize", confirmed={"a": 0.88, "b": 0.90})
    assert (champion.trial.number, champion.prefer, champion.notice) == (2, RULE_CONFIRMED, None)
    assert "confirmed mean 0.9" in champion.rule
    unconfirmed = select(study.trials, design="tpe", seeds=[0], direction="maximize")
    assert unconfirmed.trial.number == 0 and unconfirmed.notice is not None


def test_the_end_of_study_summary_says_the_best_is_not_better_than_a_cheaper_point(runs: Path) -> None:
    """The terminal summary's best-mean line (``platform.study``'s end of study) carries the report's sentence on
    the cheaper points, by short labels."""
    study = optuna.load_study(study_name="cost", storage=f"sqlite:///{runs / 'optuna.db'}")
    spec = study.user_attrs[STUDY_SPEC]
    note = get_cheaper(study, spec)
    assert note == ("k=9 is not decided better than cheaper k=7 (equivalent, 40 % fewer FLOPs); the cheapest shown "
                    "within ±0.02 of it is k=7, which `--prefer cheapest` promotes.")
    out = io.StringIO()
    render_summary(get_summary_info(study), metric="val/acc", direction="maximize", console=Console(
        file=out, width=400, color_system=None), found=get_verdicts(study, spec), effect=0.02, cheaper_note=note)
    best = next(line for line in out.getvalue().splitlines() if line.startswith("Best mean: "))
    assert best.startswith("Best mean: k=9 (window_size=9) (equivalent vs its reference)") and best.endswith(note)
