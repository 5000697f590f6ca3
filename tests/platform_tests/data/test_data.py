"""Tests for platform.data (memory mode) / platform.data.sources: every dataset is real and built locally (no
network). The streaming path is in test_data_streaming.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from platform.data import DataError, build_datamodule, cache_file, pad_crop_flip, prepare_data_once
from platform.data.sources import load_source, planned_examples, select_splits
from platform.spec import AugmentSpec as Augment
from platform.spec import DataSpec as Spec
from tests.support.limits import HANG_S

REPO = Path(__file__).resolve().parents[3]


def _splits(dd: datasets.DatasetDict, spec: Spec) -> dict[str, datasets.Dataset]:
    splits, names = select_splits(dd, spec)
    assert names == [str(c) for c in range(10)]
    return splits


def _setup(spec: Spec, cache: Path, *, batch_size: int = 32, seed: int = 0, num_workers: int = 0):
    dm = build_datamodule(spec, batch_size=batch_size, seed=seed, cache_dir=cache, num_workers=num_workers)
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def digits_rows() -> datasets.DatasetDict:
    dd = load_source(Spec())
    return datasets.DatasetDict(train=dd["train"].add_column("row", list(range(len(dd["train"])))))


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("digits_cache")


# --------------------------------------------------------------------------------------------- digits
def test_digits_splits_cover_all_disjoint_and_stratified(digits_rows: datasets.DatasetDict) -> None:
    splits = _splits(digits_rows, Spec())
    rows = {s: set(ds["row"]) for s, ds in splits.items()}
    assert sum(len(r) for r in rows.values()) == 1797
    assert set.union(*rows.values()) == set(range(1797))
    assert not (rows["train"] & rows["val"] or rows["train"] & rows["test"] or rows["val"] & rows["test"])
    assert len(rows["val"]) == len(rows["test"]) == round(0.15 * 1797)
    totals = np.bincount(digits_rows["train"]["label"], minlength=10)
    for split, fraction in (("val", 0.15), ("test", 0.15), ("train", 0.70)):
        counts = np.bincount(splits[split]["label"], minlength=10)
        assert (counts > 0).all()
        assert np.abs(counts - fraction * totals).max() <= 2, (split, counts)


def test_digits_split_depends_only_on_split_seed(digits_rows: datasets.DatasetDict) -> None:
    first = _splits(digits_rows, Spec(split_seed=3))
    again = _splits(digits_rows, Spec(split_seed=3))
    other = _splits(digits_rows, Spec(split_seed=4))
    assert first["val"]["row"] == again["val"]["row"] and first["test"]["row"] == again["test"]["row"]
    assert set(first["val"]["row"]) != set(other["val"]["row"])


def test_digits_max_train_samples_subsets_train_only(digits_rows: datasets.DatasetDict) -> None:
    full = _splits(digits_rows, Spec())
    small = _splits(digits_rows, Spec(max_train_samples=100))
    assert len(small["train"]) == 100 and set(small["train"]["row"]) <= set(full["train"]["row"])
    assert small["val"]["row"] == full["val"]["row"]


def test_digits_normalised_with_train_statistics(digits_cache: Path) -> None:
    dm = _setup(Spec(), digits_cache)
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 1, 16)
    assert dm.num_train + dm.num_val + dm.num_test == 1797
    data = torch.load(cache_file(Spec(), digits_cache), weights_only=True)
    assert data["train_x"].shape == (dm.num_train, 1, 16, 16) and data["train_x"].dtype == torch.uint8  # 1 B/pixel
    train = dm.example_batch(dm.num_train)  # every training image, normalised, not augmented
    val = torch.cat([x for x, _ in dm.val_dataloader()])
    assert train.dtype == val.dtype == torch.float32
    assert abs(train.mean().item()) < 1e-5 and abs(train.std(correction=0).item() - 1) < 1e-4
    assert abs(val.mean().item()) > 1e-4  # val statistics were not used
    # undoing the normalisation gives images in [0, 1] (upscaled 0–16 grey levels)
    raw = train * dm.std[0] + dm.mean[0]
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5


def test_digits_image_size_and_colour(digits_cache: Path) -> None:
    dm = _setup(Spec(image_size=24, grayscale=False), digits_cache)
    x = dm.example_batch(4)
    assert x.shape == (4, 3, 24, 24) and dm.in_channels == 3 and len(dm.mean) == 3
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])  # grey repeated


# ------------------------------------------------------------------------------------------ local data
def _write_imagefolder(root: Path, per_class: int = 10) -> None:
    colours = {"blue": (0, 0, 255), "red": (255, 0, 0)}
    for name, rgb in colours.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.zeros((6, 6, 3), np.uint8) + np.array(rgb, np.uint8)
            pixels[i % 6, :, :] = 128  # make images distinct
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_imagefolder_labels_follow_folder_names(tmp_path: Path) -> None:
    _write_imagefolder(tmp_path / "imgs")
    spec = Spec(source="local", path=str(tmp_path / "imgs"), image_size=6, val_fraction=0.2, test_fraction=0.2)
    dm = _setup(spec, tmp_path / "cache")
    assert dm.class_names == ["blue", "red"] and dm.in_channels == 3
    assert (dm.num_train, dm.num_val, dm.num_test) == (12, 4, 4)
    data = torch.load(cache_file(spec, tmp_path / "cache"), weights_only=True)
    raw = data["train_x"].float()  # uint8 pixels as decoded
    red = raw[:, 0].mean(dim=(1, 2)) > raw[:, 2].mean(dim=(1, 2))
    assert torch.equal(red, data["train_y"] == dm.class_names.index("red"))


def _image_table(n: int, classes: int = 3) -> dict[str, list]:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8)) for _ in range(n)]
    return {"pixels": images, "target": [i % classes for i in range(n)], "note": ["x"] * n}


def test_parquet_with_custom_columns(tmp_path: Path) -> None:
    features = datasets.Features(
        {"pixels": datasets.Image(), "target": datasets.Value("int64"), "note": datasets.Value("string")}
    )
    datasets.Dataset.from_dict(_image_table(30), features=features).to_parquet(tmp_path / "d.parquet")
    spec = Spec(source="local", path=str(tmp_path / "d.parquet"), image_column="pixels", label_column="target",
                image_size=8, val_fraction=0.2, test_fraction=0.2)  # fmt: skip
    dm = _setup(spec, tmp_path / "cache")
    assert dm.class_names == ["0", "1", "2"] and dm.in_channels == 1
    assert (dm.num_train, dm.num_val, dm.num_test) == (18, 6, 6)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (18, 1, 8, 8) and y.dtype == torch.int64


def test_save_to_disk_uses_test_split_and_carves_val(tmp_path: Path) -> None:
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    table = _image_table(20, classes=2)
    train = datasets.Dataset.from_dict({"image": table["pixels"], "label": table["target"]}, features=features)
    unlabeled = datasets.Dataset.from_dict({"text": ["no image, no label"]})  # not named by the spec: ignored
    datasets.DatasetDict(train=train, test=train.select(range(6)), extra=unlabeled).save_to_disk(tmp_path / "saved")
    spec = Spec(source="local", path=str(tmp_path / "saved"), test_split="test", val_fraction=0.2, image_size=5)
    dm = _setup(spec, tmp_path / "cache")
    assert (dm.num_train, dm.num_val, dm.num_test) == (16, 4, 6)
    assert dm.class_names == ["a", "b"]


# ---------------------------------------------------------------------------------------------- errors
def test_missing_and_empty_paths(tmp_path: Path) -> None:
    (tmp_path / "gone").mkdir()
    spec = Spec(source="local", path=str(tmp_path / "gone"))  # the spec checks the path exists ...
    (tmp_path / "gone").rmdir()  # ... but it can vanish before the data is prepared
    with pytest.raises(DataError, match=r"data\.path .*does not exist"):
        prepare_data_once(spec, tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"data\.path .*empty folder"):
        prepare_data_once(Spec(source="local", path=str(tmp_path / "empty")), tmp_path / "cache")
    with pytest.raises(DataError, match=r"data\.train_split 'fit' .*available splits: \['train'\]"):
        prepare_data_once(Spec(train_split="fit"), tmp_path / "cache")


def test_missing_columns_list_available(tmp_path: Path) -> None:
    datasets.Dataset.from_dict(_image_table(12)).to_parquet(tmp_path / "d.parquet")
    spec = Spec(source="local", path=str(tmp_path / "d.parquet"))  # default column names are absent
    with pytest.raises(DataError, match=r"data\.image_column 'image'.*\['pixels', 'target', 'note'\]"):
        prepare_data_once(spec, tmp_path / "cache")
    spec = spec.model_copy(update={"image_column": "pixels"})
    with pytest.raises(DataError, match=r"data\.label_column 'label'.*\['pixels', 'target', 'note'\]"):
        prepare_data_once(spec, tmp_path / "cache")


@pytest.mark.parametrize("labels", [["cat", "dog"] * 6, [0.5, 1.5] * 6], ids=["strings", "floats"])
def test_non_integer_labels_rejected(tmp_path: Path, labels: list) -> None:
    table = _image_table(12)
    datasets.Dataset.from_dict({"image": table["pixels"], "label": labels}).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"data\.label_column 'label' holds .*expected integer class ids"):
        prepare_data_once(Spec(source="local", path=str(tmp_path / "d.parquet")), tmp_path / "cache")


def test_hf_offline_unknown_dataset_is_a_clear_data_error(tmp_path: Path) -> None:
    # HF_HUB_OFFLINE is read when `datasets` is imported, so the real offline behaviour needs a fresh process.
    script = (
        "from types import SimpleNamespace as S\n"
        "from platform.data.sources import DataError, load_source\n"
        "try:\n"
        "    load_source(S(source='hf', name='sasa-lab/no-such-dataset', config=None))\n"
        "except DataError as err:\n"
        "    print(err)\n"
        "    raise SystemExit(3)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=HANG_S)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "'sasa-lab/no-such-dataset'" in done.stdout
    assert "Hub could not be reached" in done.stdout and "source: local" in done.stdout


# ------------------------------------------------------------------------------------------ datamodule
def test_loaders_shapes_and_dtypes(digits_cache: Path) -> None:
    dm = _setup(Spec(), digits_cache, batch_size=50)
    for loader, n in ((dm.train_dataloader(), dm.num_train), (dm.val_dataloader(), dm.num_val),
                      (dm.test_dataloader(), dm.num_test)):  # fmt: skip
        x, y = next(iter(loader))
        assert x.shape == (50, 1, 16, 16) and x.dtype == torch.float32
        assert y.shape == (50,) and y.dtype == torch.int64
        assert sum(len(b[1]) for b in loader) == n  # drop_last=False
    info = dm.dataset_info()
    assert info["source"] == "digits" and info["num_classes"] == 10 and info["channels"] == 1
    assert info["num_train"] + info["num_val"] + info["num_test"] == 1797


def test_augmentation_changes_train_batches_only(digits_cache: Path) -> None:
    plain = _setup(Spec(), digits_cache, seed=7)
    aug_spec = Spec(augment=Augment(random_crop_padding=2, horizontal_flip=True))
    aug = _setup(aug_spec, digits_cache, seed=7)
    (xp, yp), (xa, ya) = next(iter(plain.train_dataloader())), next(iter(aug.train_dataloader()))
    assert torch.equal(yp, ya)  # same seeded shuffle
    assert not torch.equal(xp, xa)
    assert torch.equal(next(iter(plain.val_dataloader()))[0], next(iter(aug.val_dataloader()))[0])
    again = _setup(aug_spec, digits_cache, seed=7)
    assert torch.equal(next(iter(again.train_dataloader()))[0], xa)  # reproducible for a seed
    other = _setup(aug_spec, digits_cache, seed=8)
    assert not torch.equal(next(iter(other.train_dataloader()))[0], xa)


def test_augmentation_in_worker_processes_is_reproducible(digits_cache: Path) -> None:
    spec = Spec(augment=Augment(random_crop_padding=2), max_train_samples=200)
    first = [x for x, _ in _setup(spec, digits_cache, num_workers=2, batch_size=100).train_dataloader()]
    second = [x for x, _ in _setup(spec, digits_cache, num_workers=2, batch_size=100).train_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_pad_crop_flip_is_a_padded_crop_and_flip() -> None:
    x = torch.randn(16, 2, 5, 5)
    fill = torch.tensor([-3.0, 7.0])
    out = pad_crop_flip(x, padding=2, flip=True, fill=fill, generator=torch.Generator().manual_seed(0))
    padded = fill.view(1, 2, 1, 1).expand(16, 2, 9, 9).clone()
    padded[:, :, 2:7, 2:7] = x
    flips = 0
    for b in range(16):
        windows = [padded[b, :, r : r + 5, c : c + 5] for r in range(5) for c in range(5)]
        plain = any(torch.equal(out[b], w) for w in windows)
        flipped = any(torch.equal(out[b], w.flip(-1)) for w in windows)
        assert plain or flipped
        flips += int(flipped and not plain)
    assert 0 < flips < 16


def test_cache_is_reused_and_keyed_by_spec(tmp_path: Path) -> None:
    spec = Spec(max_train_samples=50)
    path = prepare_data_once(spec, tmp_path)
    before = path.stat()
    assert prepare_data_once(spec, tmp_path) == path
    dm = _setup(spec, tmp_path)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    assert dm.num_train == 50
    assert not list(tmp_path.glob("*.tmp"))
    assert cache_file(spec.model_copy(update={"split_seed": 1}), tmp_path) != path
    # the augmentation and worker count do not change the prepared tensors
    loader_only = spec.model_copy(update={"augment": Augment(horizontal_flip=True), "mode": "memory"})
    assert cache_file(loader_only, tmp_path) == path


def test_bad_arguments_and_setup_order(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        build_datamodule(Spec(), batch_size=0, seed=0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="num_workers"):
        build_datamodule(Spec(), batch_size=8, seed=0, cache_dir=tmp_path, num_workers=-1)
    with pytest.raises(ValueError, match=r"moved to execution\.data_workers"):
        Spec(num_workers=2)
    dm = build_datamodule(Spec(), batch_size=8, seed=0, cache_dir=tmp_path)
    with pytest.raises(RuntimeError, match="setup"):
        _ = dm.num_classes


def test_planned_examples_claim_the_digits_split_only_without_a_validation_limit() -> None:
    """The dry run's N: 270 validation digits in full, none claimed when train.limit_val_batches cuts validation
    to some batches (that N depends on the batch size and the ranks; the trials record it)."""
    spec = Spec(source="digits", image_size=8)
    assert planned_examples(spec, limit_val_batches=None) == {"val": 270, "test": 270}
    assert planned_examples(spec, limit_val_batches=2) is None
    assert planned_examples(spec, limit_val_batches=0.5) is None
