"""Can a folder be used or created? Checked without creating anything (the preflight of a study, ``--out``)."""

from __future__ import annotations

import os
from pathlib import Path


def folder_problem(folder: Path, option: str) -> str | None:
    """Why ``folder`` cannot be used or created as a folder (None: it can), without creating anything."""
    shown = f"{option} {folder}"
    if folder.exists():
        if not folder.is_dir():
            return f"{shown}: is a file, not a folder; give a folder"
        return None if os.access(folder, os.W_OK | os.X_OK) else f"{shown}: the folder is not writable"
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{shown}: {parent} is a file, so the folder cannot be created; give a folder path"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{shown}: cannot be created ({parent} is not writable)"
    return None
