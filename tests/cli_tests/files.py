"""Inputs that are files rather than YAML text: broken encodings, unreadable paths, YAML bombs, tiny image folders."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import yaml

SPEC = "study.yaml"

# A study small enough to finish in seconds on a 2-core CPU: digits 8×8, quarter-width R26, one trial.
BASE: dict[str, Any] = {
    "name": "bad",
    "data": {"source": "digits", "image_size": 8},
    "model": {"name": "resnet26", "backbone": "attention", "small_input": True, "width": 0.25, "heads": 2},
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "warmup_epochs": 0, "limit_train_batches": 3,
              "limit_val_batches": 2},
    "search": {"design": "grid", "parameters": {"window_size": [3]}, "seeds": [0]},
    "execution": {"accelerator": "cpu"},
}


def spec(**sections: Any) -> dict[str, Any]:
    """BASE with sections merged in (a dict merges into the section, anything else replaces it)."""
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in BASE.items()}
    for key, value in sections.items():
        out[key] = {**out[key], **value} if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def spec_text(**sections: Any) -> str:
    return yaml.safe_dump(spec(**sections), sort_keys=False)


def write_spec(where: Path, text: str | bytes) -> Path:
    path = where / SPEC
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# --- unreadable spec files -------------------------------------------------------------------------------


def not_utf8(where: Path) -> None:
    """A Latin-1 file (é as the single byte 0xE9): valid YAML in spirit, not UTF-8."""
    write_spec(where, (spec_text() + "description: café au lait\n").encode("latin-1"))


def spec_is_directory(where: Path) -> None:
    (where / SPEC).mkdir()


def unreadable(where: Path) -> None:
    """A spec path that exists and is a regular file but cannot be read.

    ``chmod 000`` blocks reading for a normal user only; tests often run as root, where it does not. Then the
    spec is a symlink to ``/proc/self/mem``: a regular file for ``stat``, whose first bytes fail to read with
    EIO (offset 0 is not mapped) in whichever process opens it. No FIFO: opening one would block.
    """
    path = where / SPEC
    if os.geteuid() != 0:
        path.write_text(spec_text())
        path.chmod(0)
    else:
        path.symlink_to("/proc/self/mem")


# --- YAML bombs ------------------------------------------------------------------------------------------


def deep_nesting(where: Path, depth: int = 10_000) -> None:
    """``model:`` holding ``depth`` nested flow sequences ``[[[...]]]``."""
    write_spec(where, "name: bad\nmodel: " + "[" * depth + "]" * depth + "\n")


def alias_bomb(field: str) -> str:
    """Billion laughs: 10 levels of 10 aliases (10**9 leaves once expanded), used as the value of ``field``.

    The YAML itself is ~1 kB and loads instantly (aliases are shared references); only code that walks or
    prints the value pays for the expansion.
    """
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{refs}]")
    body = yaml.safe_dump(spec(), sort_keys=False)
    section, _, key = field.rpartition(".")
    bomb = f"{key}: *l9" if not section else f"{section}:\n  {key}: *l9"
    kept = [line for line in body.splitlines() if not line.startswith(("name:",))] if field == "name" else \
        body.splitlines()
    if section:  # drop the section from the base spec: the bomb's mapping replaces it
        kept = _without_section(kept, section)
    # The anchors are unknown top-level keys; their problems are reported too, which is fine.
    return "\n".join([*lines, *kept, bomb]) + "\n"


def _without_section(lines: list[str], section: str) -> list[str]:
    out, skipping = [], False
    for line in lines:
        if not line.startswith(" "):
            skipping = line.startswith(f"{section}:")
        if not skipping:
            out.append(line)
    return out


def many_unknown_keys(where: Path, count: int = 400_000) -> None:
    """A ~10 MB spec: the base spec plus ``count`` unknown top-level keys."""
    keys = "".join(f"unknown_setting_{i:07d}: 1\n" for i in range(count))
    write_spec(where, spec_text() + keys)


# --- local datasets --------------------------------------------------------------------------------------


def _png(shade: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8), color=shade).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(shade: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color=(shade, shade, shade)).save(buffer, format="JPEG")
    return buffer.getvalue()


def image_folder(where: Path, classes: tuple[str, ...], per_class: int = 12) -> Path:
    """An imagefolder dataset: one sub-folder per class of small PNGs."""
    root = where / "images"
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"{i:02d}.png").write_bytes(_png((40 * index + 3 * i) % 256))
    return root


def corrupt_image_dataset(where: Path) -> None:
    """Two classes of valid PNGs and one JPEG cut to its first 40 bytes (``b/broken.jpg``)."""
    root = image_folder(where, ("a", "b"))
    (root / "b" / "broken.jpg").write_bytes(_jpeg(200)[:40])


def one_class_dataset(where: Path) -> None:
    image_folder(where, ("a",))


def existing_file(name: str) -> Any:
    def make(where: Path) -> None:
        (where / name).write_text("not a folder\n")
    return make
