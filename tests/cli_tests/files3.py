"""Files for the issue-18 cases (:mod:`tests.cli_tests.cases3`)."""

from __future__ import annotations

import sqlite3
import struct
import zlib
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from tests.cli_tests.files import _jpeg, image_folder, spec_text
from tests.cli_tests.harness import REPO

REPO_RECIPE = str(REPO / "recipes" / "cifar10-gpu.yaml")


def recipe(name: str) -> Callable[[Path], None]:
    """A recipe (no ``name``): two epochs."""
    def make(where: Path) -> None:
        (where / name).write_text("train:\n  epochs: 2\n")
    return make


def second_study(name: str) -> Callable[[Path], None]:
    def make(where: Path) -> None:
        (where / name).write_text(spec_text(name="other"))
    return make


def not_a_database(name: str, content: bytes = b"\x89PNG\r\n\x1a\n not really an image\n") -> Callable[[Path], None]:
    """A file that exists and is not a SQLite database (``x.png``)."""
    def make(where: Path) -> None:
        (where / name).write_bytes(content)
    return make


def empty_sqlite(name: str) -> Callable[[Path], None]:
    """A SQLite database in WAL mode without a table: what an interrupt right after the file was made leaves."""
    def make(where: Path) -> None:
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    return make


def half_migrated_mlflow(where: Path) -> None:
    """The finished study's ``runs/mlflow.db`` set back to an older schema revision with the newer tables still
    there: what an interrupt during MLflow's "Updating database tables" left (rerun: "table webhooks already
    exists")."""
    path = where / "runs" / "mlflow.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '451aebb31d03'")  # MLflow's first revision
        connection.commit()


def optuna_tables_without_version(where: Path) -> None:
    """``runs/optuna.db`` with some of Optuna's tables and no schema version (an interrupted create_all)."""
    path = where / "runs" / "optuna.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name VARCHAR(512))")
        connection.commit()


def read_only_folder(name: str) -> Callable[[Path], None]:
    def make(where: Path) -> None:
        (where / name).mkdir()
        (where / name).chmod(0o555)
    return make


# --- image folders (causes 2 and 8) ----------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk (valid CRC) claiming ``width`` × ``height``, and no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def split_folder(where: Path, bad_split: str, name: str, content: bytes) -> None:
    """``images/{train,validation,test}/{a,b}/`` of valid PNGs, plus ``bad_split/b/name`` holding ``content``."""
    for split in ("train", "validation", "test"):
        image_folder(where / "images", ("a", "b"), per_class=12 if split == "train" else 4)
        for cls in ("a", "b"):
            (where / "images" / split / cls).parent.mkdir(parents=True, exist_ok=True)
            (where / "images" / "images" / cls).rename(where / "images" / split / cls)
        (where / "images" / "images").rmdir()
    (where / "images" / bad_split / "b" / name).write_bytes(content)


def broken_in_split(split: str, name: str, content: bytes) -> Callable[[Path], None]:
    def make(where: Path) -> None:
        split_folder(where, split, name, content)
    return make


def huge_png_header() -> bytes:
    return _png_header(20_000, 20_000)


def cut_jpeg() -> bytes:
    return _jpeg(100)[:120]


def with_link(name: str, target: str) -> Callable[[Path], None]:
    """Two classes of PNGs plus ``images/b/name`` a symlink to ``target`` (missing, or itself: a loop)."""
    def make(where: Path) -> None:
        root = image_folder(where, ("a", "b"))
        (root / "b" / name).symlink_to(target)
    return make


def stray_root_image(name: str) -> Callable[[Path], None]:
    """Two classes of PNGs plus a stray image at the top of the folder, beside the class folders."""
    def make(where: Path) -> None:
        root = image_folder(where, ("a", "b"))
        (root / name).write_bytes(_jpeg(10))
    return make


def stray_nested_image(where: Path) -> None:
    root = image_folder(where, ("a", "b"))
    (root / "a" / "extra").mkdir()
    (root / "a" / "extra" / "deep.png").write_bytes(_jpeg(10))
