"""The streaming data path on data the tests build (no network): an ImageNet-style folder of JPEGs of varied
sizes, parquet shards and a ``save_to_disk`` dataset, each trained one epoch through Lightning; corrupt files;
determinism of the evaluation transform and of seeded training batches (with worker processes)."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from platform.data import (
    DataError,
    EvalTransform,
    TrainTransform,
    build_datamodule,
    cache_file,
    choose_mode,
    prepare_data_once,
    stream_file,
)
from platform.records import METRIC_TRAIN_LOSS, METRIC_VAL_ACC
from platform.spec import AugmentSpec as Augment
from platform.spec import DataSpec as Spec
from platform.training.classifier import SasaClassifier

CLASSES = ("circle", "square", "stripes")
SIZE = 24  # training resolution of these tests


def _picture(kind: int, height: int, width: int, rng: np.random.Generator) -> Image.Image:
    """A colour picture of class ``kind`` (blob / block / stripes on noise) at ``height`` × ``width``."""
    pixels = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    rows, cols = np.mgrid[0:height, 0:width]
    if kind == 0:
        mask = (rows - height / 2) ** 2 + (cols - width / 2) ** 2 < (min(height, width) / 3) ** 2
    elif kind == 1:
        mask = (abs(rows - height / 2) < height / 4) & (abs(cols - width / 2) < width / 4)
    else:
        mask = (cols // 4) % 2 == 0
    pixels[mask] = (220, 120 + 40 * kind, 30)
    return Image.fromarray(pixels)


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _records(n: int, seed: int) -> list[tuple[bytes, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        height, width = (int(v) for v in rng.integers(20, 90, 2))  # varied sizes and aspect ratios
        out.append((_jpeg(_picture(i % 3, height, width, rng)), i % 3))
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train/<class>/*.jpg`` (240 images) and ``val/<class>/*.jpg`` (60): an ImageNet-style folder."""
    root = tmp_path_factory.mktemp("imagenet_style")
    for split, n, seed in (("train", 240, 0), ("val", 60, 1)):
        for i, (data, label) in enumerate(_records(n, seed)):
            where = root / split / CLASSES[label]
            where.mkdir(parents=True, exist_ok=True)
            (where / f"{split}_{i:04d}.jpg").write_bytes(data)
    return root


def _folder_spec(root: Path, **extra: object) -> Spec:
    return Spec(source="local", path=str(root), val_split="validation", image_size=SIZE, mode="stream",
                augment=Augment(horizontal_flip=True, crop_scale=[0.25, 1.0]), **extra)  # fmt: skip


def _setup(spec: Spec, cache: Path, *, seed: int = 0, workers: int = 0, batch_size: int = 32):
    dm = build_datamodule(spec, batch_size=batch_size, seed=seed, cache_dir=cache, num_workers=workers)
    dm.setup("fit")
    return dm


class _BatchProbe(pl.Callback):
    """Records the dtype and value range of the batches the model sees (after the on-device transform)."""

    def __init__(self) -> None:
        self.seen: list[tuple[torch.dtype, tuple[int, ...], float]] = []

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch, batch_idx: int) -> None:
        self.seen.append((batch[0].dtype, tuple(batch[0].shape[1:]), float(batch[0].abs().max())))


def _train_one_epoch(dm) -> _BatchProbe:
    """One epoch of the project's classifier around a tiny conv net (the data path is under test, not the model)."""
    net = nn.Sequential(nn.Conv2d(dm.in_channels, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, dm.num_classes))  # fmt: skip
    module = SasaClassifier({"num_classes": dm.num_classes}, optimizer="sgd", lr=0.05, momentum=0.9,
                            weight_decay=0.0, warmup_epochs=0.0, label_smoothing=0.1, net=net)  # fmt: skip
    probe = _BatchProbe()
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[probe],
                         num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(module, datamodule=dm)
    assert trainer.current_epoch == 1 and METRIC_VAL_ACC in trainer.callback_metrics
    assert torch.isfinite(trainer.callback_metrics[METRIC_TRAIN_LOSS])
    return probe


# ------------------------------------------------------------------------------------------- one epoch each
def test_imagenet_style_folder_trains_one_epoch_with_workers(folder: Path, tmp_path: Path) -> None:
    dm = _setup(_folder_spec(folder), tmp_path, workers=2)
    assert dm.mode == "stream" and dm.class_names == list(CLASSES)
    assert (dm.num_train, dm.num_val, dm.in_channels, dm.image_size) == (204, 60, 3, SIZE)  # test carved: 15%
    assert stream_file(dm.data_spec, tmp_path).is_file() and not cache_file(dm.data_spec, tmp_path).exists()
    x, y = next(iter(dm.train_dataloader()))  # standalone: normalised float, (B, C, S, S)
    assert x.shape == (32, 3, SIZE, SIZE) and x.dtype == torch.float32 and y.dtype == torch.int64
    probe = _train_one_epoch(dm)
    assert len(probe.seen) == 7  # ceil(204 / 32) batches, drop_last=False
    assert all(dtype == torch.float32 and shape == (3, SIZE, SIZE) and top < 20 for dtype, shape, top in probe.seen)


def test_parquet_shards_train_one_epoch(tmp_path: Path) -> None:
    features = datasets.Features({"jpeg": datasets.Image(), "target": datasets.ClassLabel(names=list(CLASSES))})
    records = _records(120, seed=2)
    shards = tmp_path / "shards"
    shards.mkdir()
    for shard in range(3):
        part = records[shard::3]
        table = {"jpeg": [{"bytes": b, "path": None} for b, _ in part], "target": [label for _, label in part]}
        datasets.Dataset.from_dict(table, features=features).to_parquet(shards / f"train-{shard:05d}-of-00003.parquet")
    spec = Spec(source="local", path=str(shards), image_column="jpeg", label_column="target", image_size=SIZE,
                mode="stream", augment=Augment(horizontal_flip=True))  # fmt: skip
    dm = _setup(spec, tmp_path / "cache")
    assert (dm.num_train + dm.num_val + dm.num_test, dm.class_names) == (120, list(CLASSES))
    _train_one_epoch(dm)


def test_save_to_disk_dataset_trains_one_epoch(tmp_path: Path) -> None:
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    train, test = _records(90, seed=3), _records(30, seed=4)
    as_dict = {s: {"image": [Image.open(io.BytesIO(b)) for b, _ in r], "label": [lab for _, lab in r]}
               for s, r in (("train", train), ("test", test))}  # fmt: skip
    datasets.DatasetDict({s: datasets.Dataset.from_dict(d, features=features) for s, d in as_dict.items()}
                         ).save_to_disk(tmp_path / "saved")  # fmt: skip
    spec = Spec(source="local", path=str(tmp_path / "saved"), test_split="test", image_size=SIZE, mode="stream")
    dm = _setup(spec, tmp_path / "cache")
    assert (dm.num_test, dm.class_names) == (30, ["0", "1", "2"])
    _train_one_epoch(dm)


# ---------------------------------------------------------------------------------------------- bad files
@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("damage", ["truncated", "not_an_image"])
def test_corrupt_jpeg_is_reported_by_path(tmp_path: Path, workers: int, damage: str) -> None:
    root = tmp_path / "imgs"
    for i, (data, label) in enumerate(_records(30, seed=5)):
        (root / CLASSES[label]).mkdir(parents=True, exist_ok=True)
        (root / CLASSES[label] / f"{i:03d}.jpg").write_bytes(data)
    bad = root / "square" / "004.jpg"
    good = bad.read_bytes()
    damaged = good[: len(good) // 2] if damage == "truncated" else b"not a jpeg"
    bad.write_bytes(damaged)
    spec = Spec(source="local", path=str(root), image_size=SIZE, mode="stream")
    with pytest.raises(DataError) as caught:  # all 30 images are in the statistics sample: found while preparing
        _setup(spec, tmp_path / "cache", workers=workers)
    assert str(bad) in str(caught.value)
    bad.write_bytes(good)  # prepared on sound data, then the file is damaged: found by the loader (worker or not)
    dm = _setup(spec.model_copy(update={"split_seed": 1}), tmp_path / "cache", workers=workers, batch_size=64)
    bad.write_bytes(damaged)
    loaders = (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader())
    with pytest.raises(DataError) as caught:
        for loader in loaders:
            for _ in loader:
                pass
    assert str(bad) in str(caught.value) and "remove or replace the file" in str(caught.value)


# -------------------------------------------------------------------------------------------- determinism
def test_eval_transform_is_deterministic_and_centre_crops() -> None:
    image = torch.arange(3 * 40 * 60, dtype=torch.int64).remainder(251).to(torch.uint8).view(3, 40, 60)
    transform = EvalTransform(24, 30)
    first, second = transform(image), transform(image)
    assert first.shape == (3, 24, 24) and first.dtype == torch.uint8 and torch.equal(first, second)
    flat = torch.full((3, 40, 60), 7, dtype=torch.uint8)
    flat[:, :, :10] = 200  # a band at the left edge: cut away by the centre crop of the 30 × 45 resize
    assert torch.equal(EvalTransform(24, 30)(flat), torch.full((3, 24, 24), 7, dtype=torch.uint8))


def test_train_transform_crops_resize_and_flips_reproducibly() -> None:
    image = torch.zeros(3, 50, 50, dtype=torch.uint8)
    image[:, :, :25] = 255  # left half white
    whole = TrainTransform(20, scale=(1.0, 1.0), flip=True)  # area 1 of a square image: the whole image
    outs = [whole(image, seed) for seed in range(12)]
    left_white = [bool(o[:, :, :8].float().mean() > 200) for o in outs]
    assert all(o.shape == (3, 20, 20) and o.dtype == torch.uint8 for o in outs)
    assert 0 < sum(left_white) < 12  # both orientations occur: flipped or not
    assert all(torch.equal(whole(image, s), outs[s]) for s in range(12))  # a seed fixes crop and flip
    small = TrainTransform(20, scale=(0.1, 0.2), flip=False)
    crops = {small(image, s).float().mean().item() for s in range(12)}
    assert len(crops) > 3  # different boxes for different seeds


def test_eval_batches_are_the_same_every_pass(folder: Path, tmp_path: Path) -> None:
    dm = _setup(_folder_spec(folder), tmp_path, workers=2)
    loader = dm.val_dataloader()
    first, second = [x for x, _ in loader], [x for x, _ in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_same_seed_same_training_batches_with_workers(folder: Path, tmp_path: Path) -> None:
    spec = _folder_spec(folder)

    def epoch(seed: int) -> list[torch.Tensor]:
        return [x for x, _ in _setup(spec, tmp_path, seed=seed, workers=2, batch_size=64).train_dataloader()]

    first, again, other = epoch(5), epoch(5), epoch(6)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])


# ------------------------------------------------------------------------------------------------- modes
def test_auto_mode_picks_by_decoded_size(folder: Path, tmp_path: Path) -> None:
    spec = _folder_spec(folder).model_copy(update={"mode": "auto"})
    decoded = 300 * 3 * SIZE * SIZE  # bytes of the folder's images as uint8
    assert choose_mode(spec, 300, available=8 * decoded) == "memory"
    assert choose_mode(spec, 300, available=2 * decoded) == "stream"
    assert choose_mode(spec.model_copy(update={"mode": "memory"}), 300, available=1) == "memory"
    memory = _setup(spec.model_copy(update={"mode": "memory"}), tmp_path)
    assert memory.mode == "memory" and prepare_data_once(spec, tmp_path) == cache_file(spec, tmp_path)
    x, _ = next(iter(memory.val_dataloader()))  # the whole image resized (no centre crop) in memory mode
    assert x.shape == (32, 3, SIZE, SIZE)


def test_in_memory_source_streams_from_a_spilled_copy(tmp_path: Path) -> None:
    # digits live only in memory (no arrow files): the index saves them once under the cache folder
    spec = Spec(image_size=16, mode="stream", grayscale=False)
    dm = _setup(spec, tmp_path, batch_size=100)
    assert dm.mode == "stream" and (dm.in_channels, dm.num_classes) == (3, 10)
    assert dm.num_train + dm.num_val + dm.num_test == 1797 and list(tmp_path.glob("*.spill"))
    x, _ = next(iter(dm.val_dataloader()))
    assert x.shape == (100, 3, 16, 16) and torch.equal(x[:, 0], x[:, 1])  # grey digits repeated to 3 channels


def test_corrupt_jpeg_in_memory_mode_is_reported_by_path(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    for i, (data, label) in enumerate(_records(30, seed=6)):
        (root / CLASSES[label]).mkdir(parents=True, exist_ok=True)
        (root / CLASSES[label] / f"{i:03d}.jpg").write_bytes(data)
    bad = root / "circle" / "003.jpg"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated
    with pytest.raises(DataError, match="could not decode image") as caught:
        prepare_data_once(Spec(source="local", path=str(root), image_size=SIZE, mode="memory"), tmp_path / "c")
    assert str(bad) in str(caught.value)
