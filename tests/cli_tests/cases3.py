"""The bad-input table of issue 18 (round 3): ten causes a new user hit, several inputs each.

Same contract as :mod:`tests.cli_tests.cases` (exit 2, no traceback, bounded output, the field or file named,
nothing created or modified); ``cause`` is the issue's cause number and name.
"""

from __future__ import annotations

from platform.records import METRIC_VAL_ACC
from tests.cli_tests import files3
from tests.cli_tests.cases import STUDY, Case
from tests.cli_tests.files import spec_text

_TRITON = spec_text(model={"backend": "triton"})
_LOCAL = spec_text(data={"source": "local", "path": "images", "image_size": 8})
_STREAM = spec_text(data={"source": "local", "path": "images", "image_size": 8, "mode": "stream",
                          "val_split": "validation", "test_split": "test"})
_LOCAL_STREAM = spec_text(data={"source": "local", "path": "images", "image_size": 8, "mode": "stream"})
_ADAPTIVE = {"parameters": {"window_size": [3, 5]}, "seeds": {"min": 2, "max": 4}, "reference": {"window_size": 3}}

CASES3: list[Case] = [
    # --- 1: the kernel backend, resolved for the trials' device before any work ----------------------------
    Case("triton-on-cpu", "1 backend", ("model.backend", "triton", "TRITON_INTERPRET=1", "torch"), spec=_TRITON),
    Case("triton-on-cpu-dry-run", "1 backend", ("model.backend", "TRITON_INTERPRET=1"), spec=_TRITON,
         args=(*STUDY, "--dry-run")),
    Case("env-sasa-backend-triton", "1 backend", ("SASA_BACKEND", "TRITON_INTERPRET=1"), spec=spec_text(),
         env=(("SASA_BACKEND", "triton"),)),
    Case("env-sasa-backend-triton-dry-run", "1 backend", ("SASA_BACKEND",), spec=spec_text(),
         args=(*STUDY, "--dry-run"), env=(("SASA_BACKEND", "triton"),)),
    Case("set-backend-triton-existing-study", "1 backend", ("model.backend",), spec=spec_text(),
         existing_study=True, args=(*STUDY, "--set", "model.backend=triton")),
    Case("triton-interpret-off", "1 backend", ("model.backend",), spec=_TRITON, env=(("TRITON_INTERPRET", "0"),)),
    # --- 6: bounds that follow from the objective ----------------------------------------------------------
    Case("effect-2-on-val-acc", "6 bounds", ("search.effect", METRIC_VAL_ACC),
         spec=spec_text(search={**_ADAPTIVE, "effect": 2.0})),
    Case("effect-1-on-val-acc-top5", "6 bounds", ("search.effect",),
         spec=spec_text(search={**_ADAPTIVE, "effect": 1.0}, objective={"metric": "val/acc_top5"})),
    Case("set-effect-5", "6 bounds", ("search.effect",), spec=spec_text(search=_ADAPTIVE | {"effect": 0.01}),
         args=(*STUDY, "--set", "search.effect=5")),
    Case("promote-tolerance-inf", "6 bounds", ("--tolerance",), module="platform.promote", existing_study=True,
         args=("bad", "--runs-dir", "{runs}", "--tolerance", "inf")),
    Case("promote-tolerance-1e309", "6 bounds", ("--tolerance",), module="platform.promote", existing_study=True,
         args=("bad", "--runs-dir", "{runs}", "--tolerance", "1e309")),
    # --- 7: the order of files: the study (it holds name) first, recipes after -----------------------------
    Case("recipe-before-study", "7 file order", ("recipe.yaml", "first"), make=files3.recipe("recipe.yaml"),
         spec=spec_text(), args=("{tmp}/recipe.yaml", "{spec}", "--runs-dir", "{runs}")),
    Case("repo-recipe-before-study", "7 file order", ("cifar10-gpu.yaml", "first"), spec=spec_text(),
         args=(files3.REPO_RECIPE, "{spec}", "--runs-dir", "{runs}", "--dry-run")),
    Case("two-study-files", "7 file order", ("other.yaml", "name"), make=files3.second_study("other.yaml"),
         spec=spec_text(), args=("{spec}", "{tmp}/other.yaml", "--runs-dir", "{runs}")),
    Case("recipe-before-study-existing", "7 file order", ("recipe.yaml",), make=files3.recipe("recipe.yaml"),
         spec=spec_text(), existing_study=True, args=("{tmp}/recipe.yaml", "{spec}", "--runs-dir", "{runs}")),
    # --- 3: a store path that exists but is not that store: checked read-only, before anything is created ----
    Case("storage-is-a-png", "3 stores", ("--storage", "x.png", "not a SQLite"), make=files3.not_a_database("x.png"),
         spec=spec_text(), args=(*STUDY, "--storage", "sqlite:///{tmp}/x.png")),
    Case("tracking-is-a-png", "3 stores", ("--tracking-uri", "x.png"), make=files3.not_a_database("x.png"),
         spec=spec_text(), args=(*STUDY, "--tracking-uri", "sqlite:///{tmp}/x.png")),
    Case("tracking-is-a-text-file-dry-run", "3 stores", ("--tracking-uri", "notes.txt"),
         make=files3.not_a_database("notes.txt", b"my notes\n"), spec=spec_text(),
         args=(*STUDY, "--tracking-uri", "sqlite:///{tmp}/notes.txt")),
    Case("spec-storage-is-a-png", "3 stores", ("storage", "x.png"), make=files3.not_a_database("x.png"),
         spec=spec_text(storage="sqlite:///x.png")),
    Case("storage-is-the-mlflow-db", "3 stores", ("--storage", "MLflow"), existing_study=True, spec=spec_text(),
         args=(*STUDY, "--storage", "sqlite:///{runs}/mlflow.db")),
    Case("tracking-is-the-optuna-db", "3 stores", ("--tracking-uri", "Optuna"), existing_study=True,
         spec=spec_text(), args=(*STUDY, "--tracking-uri", "sqlite:///{runs}/optuna.db")),
    Case("dashboards-storage-is-a-png", "3 stores", ("--storage", "x.png"), module="dashboards",
         make=files3.not_a_database("x.png"), args=("--list", "--storage", "sqlite:///{tmp}/x.png")),
    Case("dashboards-tracking-is-a-png", "3 stores", ("--tracking-uri", "x.png"), module="dashboards",
         existing_study=True, make=files3.not_a_database("x.png"),
         args=("bad", "--runs-dir", "{runs}", "--tracking-uri", "sqlite:///{tmp}/x.png", "--out", "{tmp}/rep")),
    Case("promote-tracking-is-a-png", "3 stores", ("--tracking-uri", "x.png"), module="platform.promote",
         existing_study=True, make=files3.not_a_database("x.png"),
         args=("bad", "--runs-dir", "{runs}", "--tracking-uri", "sqlite:///{tmp}/x.png")),
    Case("promote-storage-is-a-png", "3 stores", ("--storage", "x.png"), module="platform.promote",
         make=files3.not_a_database("x.png"), args=("bad", "--runs-dir", "{runs}", "--storage", "sqlite:///{tmp}/x.png")),
    # --- 4: dashboards output paths ------------------------------------------------------------------------
    Case("export-out-is-a-file", "4 output", ("--out",), module="dashboards", existing_study=True,
         make=files3.not_a_database("out.csv", b"a,b\n"), args=("--export", "bad", "--runs-dir", "{runs}", "--out",
                                                                "{tmp}/out.csv")),
    Case("export-out-below-a-file", "4 output", ("--out",), module="dashboards", existing_study=True,
         make=files3.not_a_database("out.csv", b"a,b\n"), args=("--export", "bad", "--runs-dir", "{runs}", "--out",
                                                                "{tmp}/out.csv/sub")),
    Case("export-out-impossible", "4 output", ("--out",), module="dashboards", existing_study=True,
         args=("--export", "bad", "--runs-dir", "{runs}", "--out", "/proc/sasa-no-such/out")),
    Case("export-out-proc-self", "4 output", ("--out",), module="dashboards", existing_study=True,
         args=("--export", "bad", "--runs-dir", "{runs}", "--out", "/proc/self")),
    Case("report-out-impossible", "4 output", ("--out",), module="dashboards", existing_study=True,
         args=("bad", "--runs-dir", "{runs}", "--out", "/proc/sasa-no-such/out")),
    # --- 5: stores left half-made by an interrupted first run (of an older version) ------------------------
    Case("half-migrated-mlflow-db", "5 interrupt", ("mlflow.db", "remove"), existing_study=True, spec=spec_text(),
         make=files3.half_migrated_mlflow),
    Case("half-created-optuna-db", "5 interrupt", ("optuna.db", "remove"), spec=spec_text(),
         make=files3.optuna_tables_without_version),
    Case("dashboards-list-empty-optuna-db", "5 interrupt", ("optuna.db", "no Optuna storage"), module="dashboards",
         make=files3.empty_sqlite("runs/optuna.db"), args=("--list", "--runs-dir", "{runs}")),
    Case("dashboards-report-half-migrated-mlflow", "5 interrupt", ("mlflow.db",), module="dashboards",
         existing_study=True, make=files3.half_migrated_mlflow,
         args=("bad", "--runs-dir", "{runs}", "--out", "{tmp}/rep")),
    Case("dry-run-empty-optuna-db", "5 interrupt", (), spec=spec_text(search={**_ADAPTIVE, "effect": 0.01}),
         make=files3.empty_sqlite("runs/optuna.db"), args=(*STUDY, "--dry-run"), expect_exit=0),
    Case("dry-run-half-created-optuna-db", "5 interrupt", ("optuna.db", "remove"),
         spec=spec_text(search={**_ADAPTIVE, "effect": 0.01}), make=files3.optuna_tables_without_version,
         args=(*STUDY, "--dry-run")),
    # --- 2: stream mode decodes every image of every split it uses, before anything is created --------------
    Case("stream-empty-jpg-in-validation", "2 stream", ("broken.jpg", "validation"), spec=_STREAM,
         make=files3.broken_in_split("validation", "broken.jpg", b"")),
    Case("stream-empty-jpg-in-test", "2 stream", ("broken.jpg", "test"), spec=_STREAM,
         make=files3.broken_in_split("test", "broken.jpg", b"")),
    Case("stream-huge-png-header-in-test", "2 stream", ("huge.png",), spec=_STREAM,
         make=files3.broken_in_split("test", "huge.png", files3.huge_png_header())),
    Case("stream-cut-jpeg-in-validation", "2 stream", ("cut.jpg",), spec=_STREAM,
         make=files3.broken_in_split("validation", "cut.jpg", files3.cut_jpeg())),
    Case("stream-huge-png-header-in-train", "2 stream", ("huge.png",), spec=_STREAM,
         make=files3.broken_in_split("train", "huge.png", files3.huge_png_header())),
    Case("memory-huge-png-header-in-test", "2 stream", ("huge.png",), spec=_STREAM.replace("stream", "memory"),
         make=files3.broken_in_split("test", "huge.png", files3.huge_png_header())),
    # --- 8: image folders with odd entries: named, never dropped -------------------------------------------
    Case("dangling-symlink-jpg", "8 image folder", ("gone.jpg", "link"), spec=_LOCAL,
         make=files3.with_link("gone.jpg", "/nonexistent/x.jpg")),
    Case("self-symlink-jpg", "8 image folder", ("loop.jpg", "link"), spec=_LOCAL,
         make=files3.with_link("loop.jpg", "loop.jpg")),
    Case("dangling-symlink-stream", "8 image folder", ("gone.png",), spec=_LOCAL_STREAM,
         make=files3.with_link("gone.png", "missing.png")),
    Case("stray-image-at-root", "8 image folder", ("stray.jpg", "class folder"), spec=_LOCAL,
         make=files3.stray_root_image("stray.jpg")),
    Case("stray-image-nested", "8 image folder", ("deep.png",), spec=_LOCAL, make=files3.stray_nested_image),
]
