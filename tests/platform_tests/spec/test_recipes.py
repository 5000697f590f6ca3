"""Composable study files: ``STUDY.yaml [RECIPE.yaml ...]`` deep-merged left to right, ``name_suffix``, and the
shipped recipes composed with every shipped study."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from platform.spec import SpecError, load_spec, parse_spec
from platform.spec.compose import compose_files, deep_merge
from tests.platform_tests.studyrun import env
from tests.support.forked import run_forked
from tests.support.limits import HANG_S

REPO = Path(__file__).resolve().parents[3]
STUDIES = sorted((REPO / "studies").glob("*.yaml"))
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
SUFFIXES = {"cpu-digits": "", "cifar10-gpu": "-cifar10", "cifar100-gpu": "-cifar100", "imagenet-gpu": "-imagenet",
            "imagenette-gpu": "-imagenette"}


def test_deep_merge_merges_mappings_and_replaces_everything_else() -> None:
    base = {"data": {"source": "digits", "augment": {"horizontal_flip": False, "random_crop_padding": 2}},
            "search": {"seeds": [0, 1, 2]}, "name": "a"}
    top = {"data": {"augment": {"horizontal_flip": True}, "name": None}, "search": {"seeds": [7]}}
    merged = deep_merge(base, top)
    assert merged == {"data": {"source": "digits", "augment": {"horizontal_flip": True, "random_crop_padding": 2},
                               "name": None}, "search": {"seeds": [7]}, "name": "a"}
    assert base["search"]["seeds"] == [0, 1, 2] and base["data"]["augment"]["horizontal_flip"] is False  # untouched


def test_name_suffixes_apply_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "study.yaml").write_text("name: s\ntrain: {epochs: 2}\n")
    (tmp_path / "one.yaml").write_text("name_suffix: -one\ntrain: {epochs: 3}\n")
    (tmp_path / "two.yaml").write_text("name_suffix: -two\n")
    raw, source = compose_files([tmp_path / "study.yaml", tmp_path / "one.yaml", tmp_path / "two.yaml"])
    assert raw == {"name": "s-one-two", "train": {"epochs": 3}}
    assert source.count(" + ") == 2
    spec = load_spec([tmp_path / "study.yaml", tmp_path / "one.yaml"], ["train.epochs=5"])
    assert (spec.name, spec.train.epochs) == ("s-one", 5)  # --set applies after the files


def test_bad_files_are_spec_errors_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "study.yaml").write_text("name: s\n")
    (tmp_path / "bad.yaml").write_text("name_suffix: [x]\n")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(SpecError, match=r"(?s)bad\.yaml.*name_suffix: expected a non-empty string"):
        load_spec([tmp_path / "study.yaml", tmp_path / "bad.yaml"])
    with pytest.raises(SpecError, match=r"(?s)list\.yaml.*expected a mapping"):
        load_spec([tmp_path / "study.yaml", tmp_path / "list.yaml"])
    with pytest.raises(SpecError, match=r"(?s)missing\.yaml.*file not found"):
        load_spec([tmp_path / "study.yaml", tmp_path / "missing.yaml"])


@pytest.fixture
def data_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local folders the ImageNet recipes name (relative paths start at the working directory)."""
    for folder in ("data/imagenet", "data/imagenette2-320"):
        (tmp_path / folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.usefixtures("data_folders")
@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_every_recipe_composes_with_every_study(recipe: Path) -> None:
    assert set(SUFFIXES) == {r.stem for r in RECIPES}
    for study in STUDIES:
        alone = load_spec(study)
        composed = load_spec([study, recipe])
        assert composed.name == alone.name + SUFFIXES[recipe.stem]
        assert composed.search == alone.search and composed.objective == alone.objective  # the study's question
        if recipe.stem == "cpu-digits":
            assert composed == alone  # the embedded default, spelled out: the same study, so no new name
        else:
            assert composed.execution.accelerator == "gpu" and composed.data != alone.data
            assert composed.data.mode == ("memory" if "cifar" in recipe.stem else "stream")


@pytest.mark.usefixtures("data_folders")
def test_imagenet_recipe_is_the_papers_scaled_recipe() -> None:
    spec = load_spec([REPO / "studies" / "window_size.yaml", REPO / "recipes" / "imagenet-gpu.yaml"])
    train, data = spec.train, spec.data
    assert (train.epochs, train.warmup_epochs, train.optimizer, train.momentum > 0) == (130, 10, "sgd", True)
    assert train.lr == pytest.approx(1.6 * train.batch_size / 4096)  # linear scaling of 1.6 at batch 4096
    assert train.label_smoothing == 0.1 and data.val_fraction == 0.04  # the paper's 4% held-out slice
    assert (data.image_size, data.eval_resize, data.augment.crop_scale) == (224, 256, [0.08, 1.0])


def test_studies_carry_no_pasted_set_blocks() -> None:
    for study in STUDIES:
        lines = [line for line in study.read_text().splitlines() if "--set" in line]
        assert all("n_trials" in line for line in lines), (study.name, lines)  # only search's optional length


def test_cli_merges_recipes_and_prints_the_spec(tmp_path: Path) -> None:
    argv = ["studies/window_size.yaml", "--set", "train.epochs=7", "recipes/cifar10-gpu.yaml",
            "--print-spec"]  # recipes may follow options
    done = run_forked("platform.study", argv, cwd=REPO, env=env(), timeout=HANG_S)  # the command, in a fork
    assert done.returncode == 0, done.stderr
    printed = parse_spec(yaml.safe_load(done.stdout))
    expected = load_spec([REPO / "studies" / "window_size.yaml", REPO / "recipes" / "cifar10-gpu.yaml"],
                         ["train.epochs=7"])
    assert printed == expected and printed.name == "window_size-cifar10" and printed.train.epochs == 7
    bad = run_forked("platform.study", [*argv[:1], str(tmp_path / "none.yaml"), "--print-spec"], cwd=REPO,
                     env=env(), timeout=HANG_S)
    assert bad.returncode == 2 and "none.yaml" in bad.stderr and "file not found" in bad.stderr
