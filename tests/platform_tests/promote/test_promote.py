"""``python -m platform.promote``: the winner rule, then a real tiny study promoted into the MLflow Model Registry.

The rule is checked on in-memory Optuna studies (fast); the registry behaviour on a real 2 points × 2 seeds study
run by the CLI (module fixture): round trip, idempotency, the ``--force`` rule, verification, failure paths.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from platform.promote.__main__ import main
from platform.promote.champion import NoChampionError, pareto_front, select
from platform.promote.promotion import Promotion, default_model_name, promote
from platform.records import (
    ATTR_MODEL_URI,
    ATTR_PARAMS,
    ATTR_POINT,
    ATTR_RUN,
    ATTR_SEED,
    ATTR_TEST,
    METRIC_TEST_ACC,
    METRIC_VAL_ACC,
    STUDY_SPEC,
    TAG_COMMIT,
    TAG_POINT,
    TAG_SEED,
    TAG_STUDY,
    TAG_TRIAL,
    VERIFY_FAILED,
    VERIFY_PASSED,
    VERSION_DATA_SOURCE,
    VERSION_DESIGN_PREFIX,
    VERSION_FLOPS,
    VERSION_INPUT_MEAN,
    VERSION_INPUT_STD,
    VERSION_METRIC,
    VERSION_PARAMS,
    VERSION_PREFER,
    VERSION_RULE,
    VERSION_RUN,
    VERSION_VALUE,
    VERSION_VERIFIED_ACC,
    VERSION_VERIFY,
    version_metric_tag,
)
from tests.platform_tests.studyrun import REPO, env, run_study, stores, tiny_spec, write_spec
from tests.support.limits import HANG_S

STUDY = "ptiny"


# --- the winner rule (no training) --------------------------------------------------------------------------


def _study(rows: list[tuple[str, int, TrialState, list[float] | None]], directions=("maximize",)) -> optuna.Study:
    study = optuna.create_study(directions=list(directions))
    dist = {"p": CategoricalDistribution(["a", "b", "c"])}
    for point, seed, state, values in rows:
        attrs = {ATTR_POINT: point, ATTR_SEED: seed}
        study.add_trial(create_trial(state=state, values=values, params={"p": point}, distributions=dist,
                                     user_attrs=attrs))
    return study


C, P, F = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL


def test_ablation_picks_best_mean_point_then_its_best_seed() -> None:
    # Point b holds the single best trial (0.95) but a worse mean (0.60) than point a (0.80).
    study = _study([("a", 0, C, [0.78]), ("a", 1, C, [0.82]), ("b", 0, C, [0.95]), ("b", 1, C, [0.25]),
                    ("c", 0, P, None)])
    champion = select(study.trials, design="grid", seeds=[0, 1], direction="maximize")
    assert (champion.trial.number, champion.point_mean, champion.point_seeds) == (1, pytest.approx(0.80), 2)
    assert "mean" in champion.rule
    # The same trials read as a search (or one seed): the single best trial wins.
    assert select(study.trials, design="tpe", seeds=[0, 1], direction="maximize").trial.number == 2
    assert select(study.trials, design="grid", seeds=[0], direction="maximize").trial.number == 2


def test_ablation_uses_complete_seeds_only_and_minimize() -> None:
    # a: one complete seed (0.50) and one failed; b: mean 0.55. Minimising the loss, a wins on its complete seed.
    study = _study([("a", 0, C, [0.50]), ("a", 1, F, None), ("b", 0, C, [0.40]), ("b", 1, C, [0.70])])
    champion = select(study.trials, design="grid", seeds=[0, 1], direction="minimize")
    assert (champion.trial.number, champion.point_seeds) == (0, 1)


def test_ties_go_to_the_earlier_trial_and_more_seeds() -> None:
    study = _study([("a", 0, C, [0.5]), ("b", 0, C, [0.5]), ("b", 1, C, [0.5])])
    assert select(study.trials, design="tpe", seeds=[0], direction="maximize").trial.number == 0
    assert select(study.trials, design="grid", seeds=[0, 1], direction="maximize").trial.number == 1


def test_two_objectives_best_primary_on_the_pareto_front() -> None:
    # (acc, params): #0 dominated by #1; #2 has the best accuracy; #3 ties #2 on accuracy with more params.
    study = _study([("a", 0, C, [0.6, 9.0]), ("b", 0, C, [0.7, 5.0]), ("c", 0, C, [0.9, 8.0]),
                    ("a", 1, C, [0.9, 9.5])], directions=("maximize", "minimize"))
    front = pareto_front(study.trials, "maximize")
    assert sorted(t.number for t in front) == [1, 2]
    champion = select(study.trials, design="nsga2", seeds=[0], direction="maximize", two_objectives=True)
    assert champion.trial.number == 2 and "Pareto" in champion.rule


def test_no_complete_trial_and_bad_explicit_trial_are_errors() -> None:
    study = _study([("a", 0, F, None), ("b", 0, P, None), ("c", 0, C, [0.3])])
    with pytest.raises(NoChampionError, match="no COMPLETE trial"):
        select(study.trials[:2], design="grid", seeds=[0], direction="maximize")
    with pytest.raises(NoChampionError, match="PRUNED, not COMPLETE"):
        select(study.trials, design="grid", seeds=[0], direction="maximize", trial_number=1)
    with pytest.raises(NoChampionError, match="no such trial"):
        select(study.trials, design="grid", seeds=[0], direction="maximize", trial_number=7)
    assert select(study.trials, design="grid", seeds=[0], direction="maximize", trial_number=2).trial.number == 2


def test_default_model_name_is_sanitised() -> None:
    assert default_model_name("window_size") == "sasa-window_size"
    assert default_model_name("a b/c") == "sasa-a-b-c"


# --- a real study, promoted ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("promote")
    # Digits at 16×16, as studies/window_size.yaml: the request documented in docs/registry.md fits its champion.
    spec = write_spec(tmp / f"{STUDY}.yaml", tiny_spec(STUDY, data={"image_size": 16}))
    result = run_study(spec, tmp)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp


def _promote(capsys: pytest.CaptureFixture, tmp: Path, *args: str) -> tuple[int, str, str]:
    """``python -m platform.promote`` in this process (its ``main``); returns (exit code, stdout, stderr)."""
    code = main([*args, "--runs-dir", str(tmp / "runs")])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _client(tmp: Path) -> MlflowClient:
    tracking = stores(tmp)[1]
    return MlflowClient(tracking_uri=tracking, registry_uri=tracking)


def _trials(tmp: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY, storage=stores(tmp)[0]).trials


def _expected_winner(trials: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial:
    """The rule, recomputed here: best mean over seeds (ties: earlier point), then the best seed."""
    points: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for trial in trials:
        points.setdefault(trial.user_attrs[ATTR_POINT], []).append(trial)
    best = max(points.values(), key=lambda ts: (statistics.fmean(t.value for t in ts), -ts[0].number))
    return max(best, key=lambda t: (t.value, -t.number))


def _versions(client: MlflowClient, name: str) -> list:
    return client.search_model_versions(f"name = '{name}'")


def test_promotion_round_trip_registers_verifies_and_loads_anywhere(study_dir: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "platform.promote", str(study_dir / f"{STUDY}.yaml"), "--runs-dir",
         str(study_dir / "runs")],
        cwd=REPO, env=env(), capture_output=True, text=True, timeout=HANG_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    name = default_model_name(STUDY)
    assert "rule: seeded ablation" in result.stdout and "verification passed" in result.stdout
    assert f"models:/{name}@champion" in result.stdout

    winner = _expected_winner(_trials(study_dir))
    client = _client(study_dir)
    version = client.get_model_version_by_alias(name, "champion")
    tags = version.tags
    assert version.run_id == winner.user_attrs[ATTR_RUN] == tags[VERSION_RUN]
    assert version.source == winner.user_attrs[ATTR_MODEL_URI]
    assert tags[TAG_TRIAL] == str(winner.number) and tags[TAG_SEED] == str(winner.user_attrs[ATTR_SEED])
    assert tags[TAG_POINT] == winner.user_attrs[ATTR_POINT] and tags[TAG_STUDY] == STUDY
    assert tags[VERSION_METRIC] == METRIC_VAL_ACC and float(tags[VERSION_VALUE]) == winner.value
    assert float(tags[version_metric_tag(METRIC_TEST_ACC)]) == winner.user_attrs[ATTR_TEST][METRIC_TEST_ACC]
    assert int(tags[VERSION_PARAMS]) == winner.user_attrs[ATTR_PARAMS] and int(tags[VERSION_FLOPS]) > 0
    assert tags[VERSION_DATA_SOURCE] == "digits" and tags[TAG_COMMIT]
    assert tags[VERSION_VERIFY] == VERIFY_PASSED and tags[VERSION_DESIGN_PREFIX + "window_size"] in {"3", "5"}
    assert abs(float(tags[VERSION_VERIFIED_ACC]) - winner.user_attrs[ATTR_TEST][METRIC_TEST_ACC]) <= 1e-4
    assert f"trial #{winner.number}" in version.description and "Rule:" in version.description

    # Load the champion by alias in another program, outside the repo (only the model's own code is there).
    code = (
        "import mlflow, mlflow.pytorch, torch\n"
        f"mlflow.set_tracking_uri({stores(study_dir)[1]!r})\n"
        f"model = mlflow.pytorch.load_model('models:/{name}@champion', map_location='cpu')\n"
        "with torch.no_grad():\n"
        "    logits = model(torch.randn(3, 1, 16, 16))\n"
        "print(tuple(logits.shape), bool(torch.isfinite(logits).all()))\n"
    )
    assert not (tmp_path / "sasa").exists() and not (tmp_path / "platform").exists()
    loaded = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=HANG_S)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip().endswith("(3, 10) True")


def test_promoting_the_same_trial_again_creates_no_new_version(study_dir: Path, capsys) -> None:
    code, out, err = _promote(capsys, study_dir, STUDY, "--name", "idem")
    assert code == 0, err
    client = _client(study_dir)
    assert len(_versions(client, "idem")) == 1
    code, out, err = _promote(capsys, study_dir, STUDY, "--name", "idem")
    assert code == 0, err
    assert "no new version" in out and "already points to idem version 1" in out
    assert len(_versions(client, "idem")) == 1
    assert str(client.get_model_version_by_alias("idem", "champion").version) == "1"


def test_the_python_api_prints_nothing_and_returns_the_promotion(study_dir: Path, capsys) -> None:
    promotion = promote(STUDY, name="quiet", runs_dir=study_dir / "runs")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert isinstance(promotion, Promotion)
    winner = _expected_winner(_trials(study_dir))
    version = _client(study_dir).get_model_version_by_alias("quiet", "champion")
    assert (promotion.name, promotion.alias, promotion.version) == ("quiet", "champion", str(version.version))
    assert promotion.uri == "models:/quiet@champion" and promotion.study == STUDY
    assert (promotion.trial, promotion.run_id, promotion.model_uri) == (
        winner.number, winner.user_attrs[ATTR_RUN], winner.user_attrs[ATTR_MODEL_URI])
    assert (promotion.metric, promotion.direction, promotion.value) == (METRIC_VAL_ACC, "maximize", winner.value)
    assert promotion.test[METRIC_TEST_ACC] == winner.user_attrs[ATTR_TEST][METRIC_TEST_ACC]
    assert promotion.created and promotion.alias_moved and promotion.previous_version is None
    assert promotion.tolerance == 1e-4 and f"{METRIC_TEST_ACC} " in promotion.verification
    assert promotion.rule.startswith("seeded ablation") and promotion.steps[1] == f"rule: {promotion.rule}"
    assert promotion.steps[-1] == f"alias 'champion' → quiet version {promotion.version}"
    assert promotion.lines == (*promotion.steps, "", *promotion.usage)
    assert promotion.usage[0] == "champion: models:/quiet@champion"

    again = promote(STUDY, name="quiet", runs_dir=study_dir / "runs", progress=(seen := []).append)
    assert capsys.readouterr().out == "" and seen == list(again.steps)
    assert not again.created and not again.alias_moved and again.version == promotion.version
    assert seen[-1] == f"alias 'champion' already points to quiet version {promotion.version}"


def test_replacing_a_better_champion_needs_force(study_dir: Path, capsys) -> None:
    trials = _trials(study_dir)
    winner = _expected_winner(trials)
    worse = min(trials, key=lambda t: (t.value, t.number))
    assert worse.value < winner.value, "the fixture study needs two different validation values"
    assert _promote(capsys, study_dir, STUDY, "--name", "forced")[0] == 0

    code, _, err = _promote(capsys, study_dir, STUDY, "--name", "forced", "--trial", str(worse.number))
    assert code == 2 and "--force" in _error_line(err) and "better" in err
    client = _client(study_dir)
    assert len(_versions(client, "forced")) == 1  # refused before registering anything
    assert str(client.get_model_version_by_alias("forced", "champion").version) == "1"

    code, _, err = _promote(capsys, study_dir, STUDY, "--name", "forced", "--trial", str(worse.number), "--force")
    assert code == 0, err
    holder = client.get_model_version_by_alias("forced", "champion")
    assert (str(holder.version), holder.tags[TAG_TRIAL]) == ("2", str(worse.number))
    assert "--trial" in holder.tags[VERSION_RULE]


def test_verification_failure_keeps_the_alias_and_tags_the_version(study_dir: Path, tmp_path: Path, capsys) -> None:
    # An honest mismatch: the same stores, but a prepared-data cache whose test labels were shifted by one class,
    # as if the test split had changed since training. Verification must notice and refuse to move the alias.
    cache = tmp_path / "runs" / "data_cache"
    cache.mkdir(parents=True)
    for source in (study_dir / "runs" / "data_cache").glob("*.pt"):
        payload = torch.load(source, weights_only=True)
        payload["test_y"] = (payload["test_y"] + 1) % len(payload["class_names"])
        torch.save(payload, cache / source.name)
    storage, tracking = stores(study_dir)
    code, _, err = _promote(capsys, tmp_path, STUDY, "--name", "tampered", "--storage", storage,
                            "--tracking-uri", tracking)
    line = _error_line(err)
    assert code == 2 and "verification failed" in line and METRIC_TEST_ACC in line
    client = _client(study_dir)
    (version,) = _versions(client, "tampered")
    assert version.tags[VERSION_VERIFY] == VERIFY_FAILED
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("tampered", "champion")


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bare_study(tmp: Path, name: str, trial: optuna.trial.FrozenTrial) -> None:
    """A study made with Optuna directly in the same storage, carrying the real study's spec."""
    storage = stores(tmp)[0]
    spec = dict(optuna.load_study(study_name=STUDY, storage=storage).user_attrs[STUDY_SPEC], name=name)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.set_user_attr(STUDY_SPEC, spec)
    study.add_trial(trial)


def test_failures_are_one_line_and_exit_2(study_dir: Path, capsys) -> None:
    dist = {"window_size": CategoricalDistribution([3, 5])}
    _bare_study(study_dir, "allfailed", create_trial(state=TrialState.FAIL, params={"window_size": 3},
                                                     distributions=dist, user_attrs={ATTR_POINT: "window_size=3",
                                                                                     ATTR_SEED: 0}))
    _bare_study(study_dir, "nomodel", create_trial(value=0.5, params={"window_size": 3}, distributions=dist,
                                                   user_attrs={ATTR_POINT: "window_size=3", ATTR_SEED: 0}))
    cases = {
        ("nosuchstudy",): "no study named 'nosuchstudy'",
        ("allfailed",): "no COMPLETE trial",
        ("nomodel",): "has no logged model",
        (STUDY, "--tracking-uri", f"http://127.0.0.1:{_closed_port()}"): "unreachable",
        (STUDY, "--tolerance", "-1"): "--tolerance",
        (STUDY, "--alias", "latest"): "--alias",
        (str(study_dir / "missing.yaml"),): "file not found",
    }
    for args, message in cases.items():
        code, _, err = _promote(capsys, study_dir, *args)
        assert code == 2, (args, err)
        assert message in _error_line(err), (args, err)
    assert not _versions(_client(study_dir), "sasa-nomodel")


def test_champion_takes_raw_images_and_answers_over_http(study_dir: Path, capsys, tmp_path: Path) -> None:
    """``mlflow models serve -m models:/NAME@champion --env-manager local`` on loopback answers a JSON request of
    raw [0, 1] images with the logits of backbone((x - mean) / std), the training split's statistics."""
    import json
    import urllib.request

    from tests.support.servers import model_server

    code, out, err = _promote(capsys, study_dir, STUDY)  # the champion (promoted once already, or now)
    assert code == 0, err
    assert "tolerance 0.0001 (the trial trained with precision 32-true" in out
    assert "mlflow models serve -m models:/sasa-ptiny@champion --env-manager local" in out
    name, tracking = default_model_name(STUDY), stores(study_dir)[1]
    version = _client(study_dir).get_model_version_by_alias(name, "champion")
    mean, std = json.loads(version.tags[VERSION_INPUT_MEAN]), json.loads(version.tags[VERSION_INPUT_STD])
    assert "(B, 1, 16, 16) raw images, values in [0, 1]" in version.description  # what the model really takes
    assert "normalisation is inside the model" in version.description

    import mlflow.pytorch

    loaded = mlflow.pytorch.load_model(f"models:/{name}@champion", map_location="cpu").eval()
    images = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))  # raw, values in [0, 1]
    with torch.no_grad():  # the backbone alone, on images normalised here with the version's statistics
        normalised = (images - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
        expected = loaded.backbone(normalised)  # (2, 10)
    assert std != [1.0] and mean != [0.0]  # the normalisation is not the identity, so the check means something

    with model_server(f"models:/{name}@champion", tracking, tmp_path / "serve.log") as base:
        request = urllib.request.Request(f"{base}/invocations", data=json.dumps({"inputs": images.tolist()}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=HANG_S) as response:
            answer = json.loads(response.read())
        # The request docs/registry.md shows for sasa-window_size@champion is the one promotion printed (both
        # come from the registered signature, (-1, 1, 16, 16)); posted as printed, only the port differs.
        printed = _printed_curl(out)
        assert printed == _documented_curl(), (printed, _documented_curl())
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        posted = subprocess.run(["bash", "-c", printed.replace("127.0.0.1:5001", base.removeprefix("http://"))],
                                capture_output=True, text=True, timeout=HANG_S, env={**os.environ, "PATH": path})
    assert posted.returncode == 0, posted.stderr
    documented = json.loads(posted.stdout)
    assert "error_code" not in documented, documented
    assert torch.tensor(documented["predictions"]).shape == (1, 10)
    served = torch.tensor(answer["predictions"])
    assert served.shape == (2, 10)
    torch.testing.assert_close(served, expected, rtol=1e-4, atol=1e-5)


def _printed_curl(out: str) -> str:
    lines = out.splitlines()
    return next(lines[i + 1].strip() for i, line in enumerate(lines) if line.startswith("then, in another shell"))


def _documented_curl() -> str:
    text = (REPO / "docs" / "registry.md").read_text()
    return next(line.strip() for line in text.splitlines() if line.startswith("curl -s 127.0.0.1:5001/invocations"))


# --- which rule chose the champion (issue 24, item 3) -----------------------------------------------------------


def test_the_rule_that_chose_is_recorded_in_tags_and_description(study_dir: Path, capsys) -> None:
    winner = _expected_winner(_trials(study_dir))  # the best mean's best seed
    code, out, err = _promote(capsys, study_dir, STUDY, "--name", "by-mean", "--prefer", "mean")
    assert code == 0, err
    client = _client(study_dir)
    version = client.get_model_version_by_alias("by-mean", "champion")
    assert version.tags[VERSION_PREFER] == "mean" and version.tags[TAG_TRIAL] == str(winner.number)
    assert version.tags[VERSION_RULE].startswith("seeded ablation, --prefer mean: best design point by mean")
    assert f"Rule: {version.tags[VERSION_RULE]} ({VERSION_PREFER} = mean)." in version.description
    assert "notice" not in out.lower()

    # The default rule: the study sets no search.effect, so nothing cheaper is compared (or the best mean is the
    # cheapest point, k=3) and the best mean is kept; the tags and the description say which rule chose it and why.
    code, out, err = _promote(capsys, study_dir, STUDY, "--name", "by-cost")
    assert code == 0, err
    version = client.get_model_version_by_alias("by-cost", "champion")
    assert version.tags[VERSION_PREFER] == "cheapest" and version.tags[TAG_TRIAL] == str(winner.number)
    rule = version.tags[VERSION_RULE]
    why = ("window_size=3 is the cheapest design point with values" if winner.user_attrs[ATTR_POINT] == "window_size=3"
           else "the cheaper design points are not compared: no verdicts without search.effect")
    assert rule.startswith(f"seeded ablation, --prefer cheapest: {why}, so the best design point by mean"), rule
    assert f"rule: {rule}" in out and f"({VERSION_PREFER} = cheapest)." in version.description


def test_a_search_without_confirmation_is_promoted_with_its_notice(study_dir: Path, capsys) -> None:
    """The same trained trials read as a TPE search (a study in the same stores whose stored spec says so): the
    best single trial is promoted, and the command, the tags and the description say it is not confirmed."""
    storage = stores(study_dir)[0]
    source = optuna.load_study(study_name=STUDY, storage=storage)
    spec = dict(source.user_attrs[STUDY_SPEC], name="asearch")
    spec["search"] = {**spec["search"], "design": "tpe", "seeds": [0], "n_trials": len(source.trials), "confirm": False}
    search = optuna.create_study(study_name="asearch", storage=storage, direction="maximize")
    search.set_user_attr(STUDY_SPEC, spec)
    for trial in source.trials:
        search.add_trial(create_trial(state=trial.state, values=trial.values, params=trial.params,
                                      distributions=trial.distributions, user_attrs=trial.user_attrs))
    best = max(source.trials, key=lambda t: (t.value, -t.number))
    code, out, err = _promote(capsys, study_dir, "asearch", "--name", "searched")
    assert code == 0, err
    notices = [line for line in out.splitlines() if line.startswith("notice: ")]
    assert len(notices) == 1 and "tpe search without a confirmation round" in notices[0]
    assert "biased upward" in notices[0] and "rule: best COMPLETE trial" in out
    version = _client(study_dir).get_model_version_by_alias("searched", "champion")
    assert version.tags[VERSION_PREFER] == "best-trial" and version.tags[TAG_TRIAL] == str(best.number)
    assert "selected, not confirmed: biased upward" in version.tags[VERSION_RULE]
    assert "Notice: a tpe search without a confirmation round" in version.description
