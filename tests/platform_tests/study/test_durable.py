"""A finished trial's result on disk (``study.durable``): written whole or not at all, read back as it was."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest
import torch

import sasa
from platform.stores.faults import is_no_space
from platform.study.durable import FINISHED_FILE, Finished, load_finished, save_finished
from platform.training.trainer import TrainOutcome


def _finished() -> Finished:
    net = sasa.create_model("resnet26", num_classes=10, in_channels=1, small_input=True, width=0.25)
    outcome = TrainOutcome(best_value=0.75, best_epoch=1, epochs_run=2, test_metrics={"test/acc": 0.7},
                           throughput=10.0, fit_seconds=3.0, test_seconds=0.5, world_size=1, resumed_from=None,
                           data_wait_fraction=0.1)
    return Finished(outcome, net, torch.rand(2, 1, 8, 8), [0.5], [0.25], [{"metrics": [], "params": [], "tags": []}])


def test_a_saved_result_reads_back_whole(tmp_path: Path) -> None:
    saved = _finished()
    path = save_finished(tmp_path / "trial", saved)
    assert path == tmp_path / "trial" / FINISHED_FILE and sorted(p.name for p in path.parent.iterdir()) == [
        FINISHED_FILE]
    loaded = load_finished(tmp_path / "trial")
    assert loaded is not None and loaded.outcome == saved.outcome and loaded.batches == saved.batches
    assert torch.equal(loaded.example, saved.example)
    for mine, theirs in zip(saved.net.state_dict().values(), loaded.net.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs)


def test_a_damaged_or_missing_file_means_train_again(tmp_path: Path) -> None:
    assert load_finished(tmp_path) is None
    (tmp_path / FINISHED_FILE).write_bytes(b"half a file")
    assert load_finished(tmp_path) is None


class _FillsUp(io.RawIOBase):
    """The file being written, on a disk with ``room`` bytes left: then ENOSPC, as the kernel says it."""

    def __init__(self, handle: io.BufferedIOBase, room: int) -> None:
        self.handle, self.room = handle, room

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.handle.write(data)


def test_a_full_disk_while_saving_raises_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, handle: real_save(obj, _FillsUp(handle, room=4096)))
    with pytest.raises(RuntimeError) as raised:  # torch's own wording of the failed write, the OSError its context
        save_finished(tmp_path / "trial", _finished())
    assert is_no_space(raised.value)
    assert list((tmp_path / "trial").iterdir()) == [], "nothing half-written is left"
