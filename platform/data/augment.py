"""Training-time augmentation on the CPU, in the loader's ``collate_fn``: random crop with black padding and a
horizontal flip, drawn from a seeded ``torch.Generator`` so a trial's batches are the same every run."""

from __future__ import annotations

import torch
from torch.utils.data import get_worker_info


def augment_batch(
    x: torch.Tensor, *, padding: int, flip: bool, fill: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random crop of each image from its ``padding``-padded copy, then a random horizontal flip.

    ``x`` is (B, C, H, W), already normalised; ``fill`` (C,) is the normalised value of black, so the padding
    is the black border of torchvision's ``RandomCrop(padding)`` applied before normalisation.
    """
    B, C, H, W = x.shape
    if padding > 0:
        padded = fill.view(1, C, 1, 1).expand(B, C, H + 2 * padding, W + 2 * padding).clone()
        padded[:, :, padding : padding + H, padding : padding + W] = x
        top = torch.randint(0, 2 * padding + 1, (B,), generator=generator)
        left = torch.randint(0, 2 * padding + 1, (B,), generator=generator)
        rows = (top[:, None] + torch.arange(H))[:, None, :, None]  # (B, 1, H, 1)
        cols = (left[:, None] + torch.arange(W))[:, None, None, :]  # (B, 1, 1, W)
        x = padded[torch.arange(B)[:, None, None, None], torch.arange(C)[None, :, None, None], rows, cols]
    if flip:
        flipped = torch.rand(B, generator=generator) < 0.5
        x = torch.where(flipped.view(B, 1, 1, 1), x.flip(-1), x)
    return x


class AugmentCollate:
    """``collate_fn`` for the training loader: stack, then :func:`augment_batch` with its own generator.

    In a worker process the generator is re-seeded from the worker's seed (drawn from the loader's seeded
    generator), so every worker draws a different but reproducible stream.
    """

    def __init__(self, padding: int, flip: bool, fill: torch.Tensor, seed: int) -> None:
        self.padding, self.flip, self.fill = padding, flip, fill
        self.generator = torch.Generator().manual_seed(seed)
        self._worker_seed: int | None = None

    def __call__(self, samples: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        info = get_worker_info()
        if info is not None and info.seed != self._worker_seed:
            self._worker_seed = info.seed
            self.generator.manual_seed(info.seed)
        x = torch.stack([s[0] for s in samples])
        y = torch.stack([s[1] for s in samples])
        return augment_batch(x, padding=self.padding, flip=self.flip, fill=self.fill, generator=self.generator), y
