"""The bad-input table of issue 11: one row per malformed input a new user might try, grouped by cause.

Each :class:`Case` is a command line (``{spec}``, ``{runs}`` and ``{tmp}`` are filled in with the case's paths),
the files it needs and the words its one-line error must contain (the field, file or option at fault). Unless a
row says otherwise the contract is the one every bad input gets: exit 2, no traceback, at most
:data:`~tests.cli_tests.harness.MAX_LINES` lines of output, within the time limit, and nothing created or
modified in the case's folder, the runs folder, either store, the data cache or the Hugging Face cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.cli_tests import files
from tests.cli_tests.files import spec_text

STUDY = ("{spec}", "--runs-dir", "{runs}")


@dataclass(frozen=True)
class Case:
    id: str
    cause: str  # the cause class of issue 11 (the report groups by it)
    names: tuple[str, ...]  # what the error on stderr must name
    spec: str | None = None  # YAML text for {spec}
    make: Callable[[Path], None] | None = None  # builds files in the case folder
    args: tuple[str, ...] = STUDY
    module: str = "platform.study"
    existing_study: bool = False  # start from a copy of a finished study's runs folder
    expect_exit: int = 2
    forbid: tuple[str, ...] = ()  # must not appear in the output (secrets)
    env: tuple[tuple[str, str], ...] = ()  # environment variables of the case


def _bomb(field: str) -> str:
    return files.alias_bomb(field)


def _big_grid(points: int) -> str:
    """A grid of ``points`` design points over two training parameters (one model architecture)."""
    lrs = [round(0.001 * (i + 1), 6) for i in range(points // 200)]
    decays = [round(1e-6 * (i + 1), 9) for i in range(200)]
    return spec_text(search={"design": "grid", "parameters": {"lr": lrs, "weight_decay": decays}, "seeds": [0]})


NAME_500 = "n" * 500
_TPE = {"design": "tpe", "parameters": {"window_size": [3, 5]}, "seeds": [0]}

CASES: list[Case] = [
    # --- reading the spec file: a shared safe reader ------------------------------------------------------
    Case("spec-not-utf8", "reader", ("study.yaml", "UTF-8"), make=files.not_utf8),
    Case("spec-is-a-directory", "reader", ("study.yaml",), make=files.spec_is_directory),
    Case("spec-unreadable", "reader", ("study.yaml",), make=files.unreadable),
    Case("spec-deep-nesting", "reader", ("study.yaml",), make=files.deep_nesting),
    Case("set-deep-nesting", "reader", ("--set",),
         spec=spec_text(), args=(*STUDY, "--set", "train.lr=" + "[" * 10_000 + "]" * 10_000)),
    Case("alias-bomb-name", "reader", ("name",), spec=_bomb("name")),
    Case("alias-bomb-train-lr", "reader", ("train.lr",), spec=_bomb("train.lr")),
    Case("alias-bomb-description", "reader", ("description",), spec=_bomb("description")),
    Case("spec-10MB-400k-unknown-keys", "bounded output", ("unknown", "more"), make=files.many_unknown_keys),
    Case("20k-even-window-choices", "bounded output", ("search.parameters.window_size", "more"),
         spec=spec_text(search={"parameters": {"window_size": list(range(4, 40_004, 2))}})),
    # --- stores and folders: validate before creating anything -------------------------------------------
    Case("storage-folder-missing-unwritable", "stores", ("--storage",),
         spec=spec_text(), args=(*STUDY, "--storage", "sqlite:////proc/sasa-no-such-dir/optuna.db")),
    Case("storage-folder-missing", "stores", ("--storage", "no/such/dir"),
         spec=spec_text(), args=(*STUDY, "--storage", "sqlite:///{tmp}/no/such/dir/optuna.db")),
    Case("storage-unreachable-postgres", "stores", ("--storage",), forbid=("hunter2",),
         spec=spec_text(), args=(*STUDY, "--storage", "postgresql://user:hunter2@127.0.0.1:9/optuna")),
    Case("storage-not-a-url", "stores", ("--storage",), spec=spec_text(), args=(*STUDY, "--storage", "not a url")),
    Case("storage-in-spec-folder-missing", "stores", ("storage",),
         spec=spec_text(storage="sqlite:////proc/sasa-no-such-dir/optuna.db")),
    Case("tracking-unreachable", "stores", ("--tracking-uri",),
         spec=spec_text(), args=(*STUDY, "--tracking-uri", "http://127.0.0.1:9")),
    Case("tracking-folder-missing", "stores", ("--tracking-uri",),
         spec=spec_text(), args=(*STUDY, "--tracking-uri", "sqlite:///{tmp}/no/such/dir/mlflow.db")),
    Case("runs-dir-is-a-file", "stores", ("--runs-dir",), make=files.existing_file("runsfile"),
         spec=spec_text(), args=("{spec}", "--runs-dir", "{tmp}/runsfile")),
    Case("runs-dir-below-a-file", "stores", ("--runs-dir",), make=files.existing_file("runsfile"),
         spec=spec_text(), args=("{spec}", "--runs-dir", "{tmp}/runsfile/runs")),
    Case("dashboards-out-is-a-file", "stores", ("--out",), module="dashboards", existing_study=True,
         make=files.existing_file("outfile"), args=("bad", "--runs-dir", "{runs}", "--out", "{tmp}/outfile")),
    Case("existing-study-tracking-unreachable", "stores", ("--tracking-uri",), existing_study=True,
         spec=spec_text(), args=(*STUDY, "--tracking-uri", "http://127.0.0.1:9")),
    # --- data: check the source before any cache is built -------------------------------------------------
    Case("local-corrupt-image", "data", ("broken.jpg",), make=files.corrupt_image_dataset,
         spec=spec_text(data={"source": "local", "path": "images", "image_size": 8})),
    Case("local-one-class", "data", ("data.path", "class"), make=files.one_class_dataset,
         spec=spec_text(data={"source": "local", "path": "images", "image_size": 8})),
    Case("hf-dataset-not-cached-offline", "data", ("data.name",),
         spec=spec_text(data={"source": "hf", "name": "sasa-lab/no-such-dataset", "image_size": 8})),
    # --- numbers: bounds on every numeric field ------------------------------------------------------------
    Case("lr-inf", "bounds", ("train.lr",), spec=spec_text(train={"lr": float("inf")})),
    Case("lr-nan", "bounds", ("train.lr",), spec=spec_text(train={"lr": float("nan")})),
    Case("set-lr-inf", "bounds", ("train.lr",), spec=spec_text(), args=(*STUDY, "--set", "train.lr=.inf")),
    Case("weight-decay-inf", "bounds", ("train.weight_decay",), spec=spec_text(train={"weight_decay": float("inf")})),
    Case("momentum-nan", "bounds", ("train.momentum",), spec=spec_text(train={"momentum": float("nan")})),
    Case("gradient-clip-inf", "bounds", ("train.gradient_clip_val",),
         spec=spec_text(train={"gradient_clip_val": float("inf")})),
    Case("epochs-10e12", "bounds", ("train.epochs",), spec=spec_text(train={"epochs": 10**12})),
    Case("max-steps-10e15", "bounds", ("train.max_steps",), spec=spec_text(train={"max_steps": 10**15})),
    Case("image-size-10e6", "bounds", ("data.image_size",), spec=spec_text(data={"image_size": 10**6})),
    Case("width-10e6", "bounds", ("model.width",), spec=spec_text(model={"width": 1e6})),
    Case("seed-negative", "bounds", ("search.seeds",), spec=spec_text(search={"seeds": [-1]})),
    Case("seed-2**32", "bounds", ("search.seeds",), spec=spec_text(search={"seeds": [2**32]})),
    Case("split-seed-negative", "bounds", ("data.split_seed",), spec=spec_text(data={"split_seed": -1})),
    Case("log-float-high-inf", "bounds", ("search.parameters.lr",),
         spec=spec_text(search={"design": "tpe", "n_trials": 1, "seeds": [0],
                                "parameters": {"lr": {"type": "log_float", "low": 0.001, "high": float("inf")}}})),
    Case("tpe-timeout-inf-no-n-trials", "bounds", ("search.timeout",),
         spec=spec_text(search={**_TPE, "timeout": float("inf")})),
    Case("existing-study-lr-inf", "bounds", ("train.lr",), existing_study=True,
         spec=spec_text(train={"lr": float("inf")})),
    # --- settings that cannot work together ---------------------------------------------------------------
    Case("max-steps-shorter-than-an-epoch", "consistency", ("train.max_steps",),
         spec=spec_text(train={"max_steps": 2})),
    Case("precision-16-mixed-on-cpu", "consistency", ("train.precision",),
         spec=spec_text(train={"precision": "16-mixed"})),
    Case("grid-duplicate-explicit-point", "consistency", ("search.points",),
         spec=spec_text(search={"parameters": {"window_size": [3, 5]},
                                "points": [{"window_size": 3}, {"window_size": 3}]})),
    Case("workers-1000-dry-run", "consistency", ("--workers",), spec=spec_text(), args=(*STUDY, "--workers", "1000",
                                                                                       "--dry-run")),
    Case("spec-workers-1000-dry-run", "consistency", ("execution.workers",),
         spec=spec_text(execution={"workers": 1000}), args=(*STUDY, "--dry-run")),
    Case("workers-not-a-count", "consistency", ("--workers", "'auto'"), spec=spec_text(),
         args=(*STUDY, "--workers", "many", "--dry-run")),
    Case("spec-workers-not-a-count", "consistency", ("execution.workers", "'auto'"),
         spec=spec_text(execution={"workers": "many"}), args=(*STUDY, "--dry-run")),
    Case("grid-200k-points", "consistency", ("search.parameters",), spec=_big_grid(200_000)),
    # --- study names: one rule for study, promote and dashboards -----------------------------------------
    Case("name-dotdot", "names", ("name",), spec=spec_text(name="..")),
    Case("name-dot", "names", ("name",), spec=spec_text(name=".")),
    Case("name-slash", "names", ("name",), spec=spec_text(name="a/b")),
    Case("name-500-chars", "names", ("name",), spec=spec_text(name=NAME_500)),
    Case("set-name-dotdot", "names", ("name",), spec=spec_text(), args=(*STUDY, "--set", "name=..")),
    Case("promote-name-dotdot", "names", ("STUDY", "'..'"), module="platform.promote",
         args=("..", "--runs-dir", "{runs}")),
    Case("promote-name-500-chars", "names", ("STUDY",), module="platform.promote",
         args=(NAME_500, "--runs-dir", "{runs}")),
    Case("dashboards-name-dotdot", "names", ("STUDY", "'..'"), module="dashboards",
         args=("..", "--runs-dir", "{runs}")),
    Case("dashboards-name-slash", "names", ("STUDY", "'a/b'"), module="dashboards",
         args=("a/b", "--runs-dir", "{runs}")),
    Case("dashboards-name-500-chars", "names", ("STUDY",), module="dashboards",
         args=(NAME_500, "--runs-dir", "{runs}")),
    # --- a valid but huge design: the dry run must answer at once with bounded output ---------------------
    Case("grid-50k-points-dry-run", "dry run", (), spec=_big_grid(50_000), args=(*STUDY, "--dry-run"),
         expect_exit=0),
]
