"""Issue 11, in process: the guards behind "every bad input → one line per problem, exit 2, nothing created".

One table per cause class: the safe YAML reader, the study-name rule, numeric bounds, capped problem output, the
preflight's folder and store checks (which must create nothing), worker oversubscription and the capped dry run.
The command-line contract as a whole is tested in ``tests/cli_tests``.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from platform.spec import SpecError, load_spec, name_problem, parse_spec, study_target
from platform.spec.reader import MAX_DEPTH, read_yaml_file, read_yaml_text
from platform.stores import folder_problem, resolve_stores
from platform.study.devices import DevicePlanError, WorkerPlan, plan_workers
from platform.study.dry_run import MAX_ROWS, print_design
from platform.study.preflight import PreflightError, preflight, url_problem

BASE: dict[str, Any] = {
    "name": "guards",
    "data": {"source": "digits", "image_size": 8},
    "model": {"name": "resnet26", "backbone": "conv", "small_input": True, "width": 0.25},
    "train": {"epochs": 1, "warmup_epochs": 0},
    "search": {"design": "grid", "parameters": {"lr": [0.1]}, "seeds": [0]},
}


def _spec(**sections: Any) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    for key, value in sections.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def _bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["a", "a", "a", "a", "a", "a", "a", "a", "a", "a"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join([*lines, f"name: *l{levels}"]) + "\n"


# --- the safe reader --------------------------------------------------------------------------------------

READER_CASES = [
    ("latin-1", "café: 1\n".encode("latin-1"), "not UTF-8"),
    ("deep", ("a: " + "[" * 10_000 + "]" * 10_000 + "\n").encode(), f"deeper than {MAX_DEPTH}"),
    ("alias bomb", _bomb().encode(), "name: "),
    ("syntax", b"a: [1, 2\n", "YAML syntax error"),
    ("duplicate key", b"a: 1\na: 2\n", "duplicate key"),
    ("oversized", b"name: x\n" + b"".join(b"junk_%07d: 1\n" % i for i in range(100_000)), "and 9"),
]


@pytest.mark.parametrize(("content", "expected"), [pytest.param(c, e, id=i) for i, c, e in READER_CASES])
def test_reader_refuses_with_the_file_named(content: bytes, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        read_yaml_file(path, known_keys=("name",))
    text = str(info.value)
    assert str(path) in text and expected in text, text
    assert len(text.splitlines()) <= 22  # capped: 1 head + 20 problems + "… and N more"


def test_reader_names_unreadable_and_folder_paths(tmp_path: Path) -> None:
    for path, expected in ((tmp_path, "not a file"), (tmp_path / "missing.yaml", "file not found")):
        with pytest.raises(SpecError, match=expected):
            read_yaml_file(path)


def test_reader_keeps_the_spec_dialect() -> None:
    assert read_yaml_text("lr: 1e-4\nxs: [1, 2]\n") == {"lr": 1e-4, "xs": [1, 2]}
    assert read_yaml_text("") is None
    assert read_yaml_text(_bomb(3)).get("name") is not None  # 1,000 leaves: aliases below the limit are fine


def test_set_value_goes_through_the_reader(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_spec(), ["train.lr=" + "[" * 5_000 + "]" * 5_000])
    assert "--set train.lr=" in str(info.value) and f"deeper than {MAX_DEPTH}" in str(info.value)


# --- the study-name rule ----------------------------------------------------------------------------------

NAMES = [("ok", True), ("a.b-c_1", True), ("n" * 100, True), ("", False), (".", False), ("..", False),
         ("a/b", False), ("-x", False), (".hidden", False), ("n" * 101, False), ("a b", False), ("é", False)]


@pytest.mark.parametrize(("name", "valid"), NAMES)
def test_one_name_rule_for_spec_promote_and_dashboards(name: str, valid: bool) -> None:
    assert (name_problem(name) is None) is valid
    if valid:
        parse_spec(_spec(name=name))
        assert study_target(name) == "name"
    else:
        with pytest.raises(SpecError, match="name"):
            parse_spec(_spec(name=name))
        if "/" not in name and name_problem(name, stored=True) is not None:  # stored: archived names are longer
            with pytest.raises(ValueError, match="STUDY"):
                study_target(name)


def test_study_target_checks_length_before_the_filesystem() -> None:
    with pytest.raises(ValueError, match="500 characters"):
        study_target("n" * 500)  # would be ENAMETOOLONG if it reached stat()


# --- numeric bounds ---------------------------------------------------------------------------------------

BOUNDS = [
    ({"train": {"lr": math.inf}}, "train.lr"),
    ({"train": {"lr": 1.0e7}}, "train.lr"),
    ({"train": {"weight_decay": math.inf}}, "train.weight_decay"),
    ({"train": {"momentum": math.nan}}, "train.momentum"),
    ({"train": {"gradient_clip_val": math.inf}}, "train.gradient_clip_val"),
    ({"train": {"epochs": 10**12}}, "train.epochs"),
    ({"train": {"max_steps": 10**15}}, "train.max_steps"),
    ({"train": {"batch_size": 10**9}}, "train.batch_size"),
    ({"data": {"image_size": 10**6}}, "data.image_size"),
    ({"data": {"split_seed": -1}}, "data.split_seed"),
    ({"model": {"width": 1e6}}, "model.width"),
    ({"search": {"seeds": [-1]}}, "search.seeds"),
    ({"search": {"seeds": [2**32]}}, "search.seeds"),
    ({"search": {"design": "tpe", "timeout": math.inf, "parameters": {"lr": [0.1, 0.2]}}}, "search.timeout"),
    ({"search": {"design": "tpe", "n_trials": 1,
                 "parameters": {"lr": {"type": "log_float", "low": 1e-3, "high": math.inf}}}}, "search.parameters.lr"),
    ({"execution": {"workers": 10**6}}, "execution.workers"),
]


@pytest.mark.parametrize(("sections", "path"), BOUNDS, ids=[p for _, p in BOUNDS])
def test_every_number_is_bounded(sections: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_spec(**sections))
    assert path in str(info.value)


def test_a_large_but_finite_lr_stays_valid() -> None:
    assert parse_spec(_spec(train={"lr": 1.0e6, "momentum": 0.0})).train.lr == 1.0e6  # the failed-trial test


# --- capped problem output and consistency ----------------------------------------------------------------


def test_problem_output_is_capped(tmp_path: Path) -> None:
    text = yaml.safe_dump(_spec()) + "".join(f"unknown_{i}: 1\n" for i in range(5_000))
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 22 and lines[-1].strip() == "… and 4,980 more unknown keys"


def test_duplicate_explicit_grid_points_are_refused() -> None:
    search = {"parameters": {"lr": [0.1, 0.2]}, "points": [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.1}]}
    with pytest.raises(SpecError, match=r"search\.points\[2\]: repeats design point \[0\]"):
        parse_spec(_spec(search=search))


def test_cpu_workers_beyond_four_per_core_are_refused() -> None:
    args = {"accelerator": "cpu", "devices": "auto", "devices_per_trial": 1, "cuda_count": 0, "cpu_count": 2}
    assert len(plan_workers(**args, workers=8, spec_workers=1)) == 8
    with pytest.raises(DevicePlanError, match="--workers"):
        plan_workers(**args, workers=9, spec_workers=1)
    with pytest.raises(DevicePlanError, match=r"execution\.workers"):
        plan_workers(**args, workers=None, spec_workers=1000)


def test_dry_run_of_a_huge_grid_prints_a_bounded_table() -> None:
    lrs = [round(0.001 * (i + 1), 6) for i in range(100)]
    spec = parse_spec(_spec(search={"parameters": {"lr": lrs, "weight_decay": [1e-4, 2e-4, 3e-4]}, "seeds": [0, 1]}))
    out = io.StringIO()
    print_design(spec, console=Console(file=out, width=120))
    text = out.getvalue()
    assert "600 trials" in text and f"… and {600 - MAX_ROWS} more trials" in text
    assert len(text.splitlines()) < MAX_ROWS + 15


# --- the preflight creates nothing ------------------------------------------------------------------------


def test_folder_problem_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert folder_problem(tmp_path / "new" / "deeper", "--runs-dir") is None
    assert "is a file" in (folder_problem(tmp_path / "file", "--out") or "")
    assert "cannot be created" in (folder_problem(tmp_path / "file" / "runs", "--runs-dir") or "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


URLS = [
    ("not a url", "not a database URL"),
    ("sqlite:///{tmp}/no/such/dir/optuna.db", "does not exist"),
    ("postgresql://user:hunter2@127.0.0.1:9/optuna", "cannot connect"),
]


@pytest.mark.parametrize(("url", "expected"), URLS)
def test_store_urls_are_checked_without_creating_files(url: str, expected: str, tmp_path: Path) -> None:
    problem = url_problem(url.format(tmp=tmp_path), "--storage", tmp_path / "runs")
    assert problem is not None and problem.startswith("--storage") and expected in problem
    assert "hunter2" not in problem
    assert list(tmp_path.iterdir()) == []


def test_sqlite_urls_inside_the_runs_folder_are_fine_before_it_exists(tmp_path: Path) -> None:
    assert url_problem(f"sqlite:///{tmp_path}/runs/optuna.db", "--storage", tmp_path / "runs") is None
    assert list(tmp_path.iterdir()) == []


def test_16_mixed_is_refused_on_a_cpu(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"train\.precision: 16-mixed needs a GPU, and execution\.accelerator is cpu"):
        parse_spec(_spec(train={"precision": "16-mixed"}, execution={"accelerator": "cpu"}))
    spec = parse_spec(_spec(train={"precision": "16-mixed"}, execution={"accelerator": "auto"}))
    stores = resolve_stores(cli_storage=None, cli_tracking=None, spec_storage=None, spec_tracking=None,
                            root=tmp_path / "runs")
    with pytest.raises(PreflightError, match=r"train\.precision: .*\(auto\) resolves to cpu"):
        preflight(spec, stores, WorkerPlan(0, "cpu", 1, 1), cli_storage=None, cli_tracking=None)
    assert list(tmp_path.iterdir()) == []


def test_evaluation_splits_every_ddp_rank_cannot_share_are_refused_by_the_preflight(tmp_path: Path) -> None:
    """10 validation digits (the fewest a stratified split of 10 classes allows) on 16 DDP ranks (a rank would
    evaluate none and the others hang), and 0.3 of the 3 validation batches per rank of 270 digits on 4 ranks
    (int(0.9) = 0): both named, nothing created."""
    spec = parse_spec(_spec(data={"val_fraction": 0.0056}, execution={"accelerator": "cpu", "devices_per_trial": 16}))
    stores = resolve_stores(cli_storage=None, cli_tracking=None, spec_storage=None, spec_tracking=None,
                            root=tmp_path / "runs")
    with pytest.raises(PreflightError, match=r"execution\.devices_per_trial: 16 ranks but the val split has 10"):
        preflight(spec, stores, WorkerPlan(0, "cpu", 16, 1), cli_storage=None, cli_tracking=None)
    spec = parse_spec(_spec(train={"limit_val_batches": 0.3, "batch_size": 32},
                            execution={"accelerator": "cpu", "devices_per_trial": 4}))
    with pytest.raises(PreflightError, match=r"train\.limit_val_batches: 0\.3 of the 3 validation batches"):
        preflight(spec, stores, WorkerPlan(0, "cpu", 4, 1), cli_storage=None, cli_tracking=None)
    assert list(tmp_path.iterdir()) == []
